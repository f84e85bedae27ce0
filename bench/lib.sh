# Shared by the benchmark scripts (bench/files.sh, bench/http.sh): process cleanup by PID, tools
# installed when missing, free ports, pinned servers, machine load, the nginx configuration.
# Source it with BENCH set (the script's name); the functions below read the knobs BASE_PORT, INSTALL,
# SETTLE, SERVER_CPU and LOADGEN_CPU and the run log $log when they are called.

note() { echo "$BENCH.sh: $*" >&2; }
die() {
    note "$*"
    exit 1
}

# --- cleanup: every process started here is killed by its PID ------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringport-$BENCH.XXXXXX")
pids=()
policy_rc=
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    [[ -n $policy_rc ]] && rm -f "$policy_rc"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: kills one process started here and forgets it.
stop() {
    local pid=$1 keep=() p
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${pids[@]}"; do
        [[ $p == "$pid" ]] || keep+=("$p")
    done
    pids=("${keep[@]}")
}

# --- tools: installed when missing ------------------------------------------------------------------
apt_updated=0
# candidate PKG: prints the version apt would install, or nothing.
candidate() {
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}
# install CMD PKG...: installs the first PKG apt knows, unless CMD is already there.
install() {
    local cmd=$1 pkg
    shift
    command -v "$cmd" >/dev/null && return 0
    if [[ $INSTALL != 1 ]] || ! command -v apt-get >/dev/null || ((EUID != 0)); then
        note "$cmd is missing and cannot be installed here (INSTALL=$INSTALL, root: $((EUID == 0)))"
        return 1
    fi
    for _ in 1 2; do
        for pkg in "$@"; do
            if [[ -n $(candidate "$pkg") ]]; then
                note "installing $pkg"
                # Installing must not start a system-wide service (nginx on port 80).
                if [[ ! -e /usr/sbin/policy-rc.d ]]; then
                    policy_rc=/usr/sbin/policy-rc.d
                    printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
                    chmod +x "$policy_rc"
                fi
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >&2
                [[ -n $policy_rc ]] && rm -f "$policy_rc" && policy_rc=
                command -v "$cmd" >/dev/null && return 0
            fi
        done
        ((apt_updated)) && break
        note "apt-get update (no candidate for $*)"
        apt-get update -q >&2
        apt_updated=1
    done
    note "could not install $cmd"
    return 1
}

# --- ports, servers, machine load -------------------------------------------------------------------
# listening PORT: whether something listens on 127.0.0.1:PORT (read from /proc, without connecting:
# a probe connection would be the one client of `iperf3 -s -1`).
listening() {
    local hex
    hex=$(printf ':%04X' "$1")
    awk -v p="$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6
}

# cpu_jiffies: prints the busy and total jiffies of all CPUs so far (/proc/stat; idle and iowait are
# not busy).
cpu_jiffies() {
    awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}

# busy_since BUSY TOTAL: prints the percentage of CPU time that was busy since that reading.
busy_since() {
    local busy total
    read -r busy total < <(cpu_jiffies)
    echo $(((busy - $1) * 100 / (total - $2 > 0 ? total - $2 : 1)))
}

# settle: sets $background to how busy the machine is over 1 s (nothing of this script runs then); with
# SETTLE set, first waits (60 s at most) until that is below SETTLE %.
settle() {
    local start=$SECONDS b t
    while :; do
        read -r b t < <(cpu_jiffies)
        sleep 1
        background=$(busy_since "$b" "$t")
        ((SETTLE == 0 || background < SETTLE)) && return 0
        if ((SECONDS - start >= 60)); then
            note "machine still $background % busy after 60 s; running anyway"
            return 0
        fi
        note "machine $background % busy; waiting for < $SETTLE %"
    done
}

# take_port: sets $port to the next port that nothing listens on (from BASE_PORT on).
take_port() {
    : "${next_port:=$BASE_PORT}"
    while listening "$next_port"; do
        next_port=$((next_port + 1))
    done
    port=$next_port
    next_port=$((next_port + 1))
}

# start_server PORT CMD...: starts a pinned server, sets $server_pid, waits until it listens.
start_server() {
    local port=$1 i
    shift
    "${server_pin[@]}" "$@" >>"$log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    for ((i = 0; i < 200; i++)); do
        listening "$port" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    note "$* did not start listening on port $port (see $log)"
    stop "$server_pid"
    return 1
}

# nginx_conf PORT ROOT [DIRECTIVE...]: writes the configuration of one nginx run (one worker, sendfile,
# no access log, keep-alive without a request limit) serving ROOT, with extra http-level DIRECTIVEs, and
# prints its path.
nginx_conf() {
    local port=$1 root=$2 dir=$tmp/nginx
    shift 2
    local conf=$dir/nginx-$port.conf extra=
    mkdir -p "$dir"
    (($#)) && extra=$(printf '    %s\n' "$@")
    cat >"$conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $dir/nginx-$port.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    sendfile on;
    tcp_nopush on;
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
$extra
    server {
        listen 127.0.0.1:$port;
        root $root;
    }
}
EOF
    echo "$conf"
}

# pin_cpus: sets server_pin and loadgen_pin to the taskset prefixes for SERVER_CPU and LOADGEN_CPU (empty,
# with a note, where taskset or the CPUs are missing).
pin_cpus() {
    server_pin=()
    loadgen_pin=()
    if command -v taskset >/dev/null && taskset -c "$SERVER_CPU,$LOADGEN_CPU" true 2>/dev/null; then
        server_pin=(taskset -c "$SERVER_CPU")
        loadgen_pin=(taskset -c "$LOADGEN_CPU")
    else
        note "cannot pin to CPUs $SERVER_CPU and $LOADGEN_CPU (taskset missing or too few CPUs); running unpinned"
    fi
}
