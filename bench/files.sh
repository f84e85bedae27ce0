#!/usr/bin/env bash
# File downloads, side by side: `ringport serve` against nginx, with iperf3 as the loopback limit.
#
# Every server runs pinned to SERVER_CPU, the load generator (`ringport bench files`, which checks
# every byte against the local copy) to LOADGEN_CPU. ringport is fetched over its nc protocol, nginx
# over HTTP/1.1 keep-alive, both by the same client. For each file every server runs back to back,
# so a drift of the machine hits them all. Prints one markdown table on stdout; progress goes to
# stderr. Raw JSON lines (one per run: the load generator's object, or iperf3's figures, plus
# file/server/rep) go to bench/results/files-<timestamp>.jsonl.
#
# Knobs (environment):
#   DURATION=5                 whole seconds per run (`--duration` and iperf3's `-t`)
#   WARMUP=1                   seconds of unmeasured warmup per load generator run
#   FILES="1:16 256:2"         MIB:CONNS pairs: a random file of MIB MiB fetched over CONNS connections
#   SERVERS="ringport nginx iperf3"
#   REPEAT=1                   runs per file and server; the table shows the median of each metric
#   SERVER_CPU=0 LOADGEN_CPU=1 CPUs to pin to
#   SETTLE=0                   if > 0: before each run, wait (up to 60 s) until the machine is less than
#                              SETTLE % busy over 1 s; for shared machines, where other work skews figures.
#                              Either way each JSON line has the busy % measured just before its run.
#   BASE_PORT=18800            first port tried; every run takes a fresh port
#   BUILD=1                    0 skips `cargo build`
#   INSTALL=1                  0 never installs nginx or iperf3 (servers without a binary are skipped)
#   RINGPORT=target/release/ringport   the ringport binary (server and load generator)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
FILES=${FILES:-"1:16 256:2"}
SERVERS=${SERVERS:-"ringport nginx iperf3"}
REPEAT=${REPEAT:-1}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SETTLE=${SETTLE:-0}
BASE_PORT=${BASE_PORT:-18800}
BUILD=${BUILD:-1}
INSTALL=${INSTALL:-1}
RINGPORT=${RINGPORT:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ringport}

note() { echo "files.sh: $*" >&2; }
die() {
    note "$*"
    exit 1
}

[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, not '$DURATION'"
[[ $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "WARMUP must be seconds, not '$WARMUP'"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer, not '$REPEAT'"
[[ $SETTLE =~ ^[0-9]+$ ]] || die "SETTLE must be a percentage, not '$SETTLE'"
for f in $FILES; do
    [[ $f =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || die "FILES takes MIB:CONNS pairs, not '$f'"
done
command -v python3 >/dev/null || die "python3 is needed to read the JSON results"

# --- cleanup: every process started here is killed by its PID ------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringport-files.XXXXXX")
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

# --- tools: nginx and iperf3, installed when missing ---------------------------------------------------
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

servers=()
for s in $SERVERS; do
    case $s in
    ringport) servers+=("$s") ;;
    nginx) if install nginx nginx-light nginx; then servers+=(nginx); else note "skipping nginx"; fi ;;
    iperf3) if install iperf3 iperf3; then servers+=(iperf3); else note "skipping iperf3"; fi ;;
    *) note "unknown server '$s' (known: ringport nginx iperf3); skipping it" ;;
    esac
done
((${#servers[@]})) || die "no server to run"
NGINX=$(command -v nginx || true)

# --- build -------------------------------------------------------------------------------------------
if [[ $BUILD == 1 ]]; then
    cargo build --release --locked -p ringport-cli >&2
fi
[[ -x $RINGPORT ]] || die "$RINGPORT is missing (build ringport-cli, or set RINGPORT)"

# Pinning needs taskset and the two CPUs; without them the runs still work, unpinned.
server_pin=()
loadgen_pin=()
if command -v taskset >/dev/null && taskset -c "$SERVER_CPU,$LOADGEN_CPU" true 2>/dev/null; then
    server_pin=(taskset -c "$SERVER_CPU")
    loadgen_pin=(taskset -c "$LOADGEN_CPU")
else
    note "cannot pin to CPUs $SERVER_CPU and $LOADGEN_CPU (taskset missing or too few CPUs); running unpinned"
fi
run_limit=$((${WARMUP%.*} + 1 + DURATION + 60))

# --- the files ---------------------------------------------------------------------------------------
www=$tmp/www
mkdir -p "$www" "$tmp/nginx"
for f in $FILES; do
    mib=${f%%:*}
    [[ -e $www/${mib}m.bin ]] && continue
    note "writing a random ${mib} MiB file"
    head -c $((mib << 20)) /dev/urandom >"$www/${mib}m.bin"
done

# --- runs ----------------------------------------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
jsonl=bench/results/files-$stamp.jsonl
log=bench/results/files-$stamp.log
: >"$jsonl"

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

next_port=$BASE_PORT
# take_port: sets $port to the next port that nothing listens on.
take_port() {
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

# nginx_conf PORT: writes the configuration of one nginx run and prints its path.
nginx_conf() {
    local dir=$tmp/nginx conf=$tmp/nginx/nginx-$1.conf
    cat >"$conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $dir/nginx-$1.pid;
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
    server {
        listen 127.0.0.1:$1;
        root $www;
    }
}
EOF
    echo "$conf"
}

# record FILE_MIB CONNS SERVER REP KIND RAW [FAILED]: appends one line to the JSONL file. KIND is
# `bench` (RAW: the load generator's output) or `iperf3` (RAW: iperf3's JSON).
record() {
    BACKGROUND=${background:-} python3 - "$@" >>"$jsonl" <<'PY'
import json, os, sys
mib, conns, server, rep, kind, raw = sys.argv[1:7]
meta = {"file_mib": int(mib), "conns": int(conns), "server": server, "rep": int(rep)}
if os.environ.get("BACKGROUND"):
    # How busy all CPUs were over the second before the server started: other work on the machine.
    meta["background_busy_pct"] = int(os.environ["BACKGROUND"])
obj = None
if len(sys.argv) > 7:
    obj = {"failed": sys.argv[7]}
elif kind == "iperf3":
    try:
        end = json.loads(raw)["end"]
        bps = end["sum_received"]["bits_per_second"]
        obj = {"mb_per_sec": bps / 8e6, "bits_per_second": bps,
               "cpu_utilization_percent": end.get("cpu_utilization_percent")}
    except (ValueError, KeyError, TypeError):
        obj = {"failed": "iperf3 printed no result"}
else:
    lines = [l for l in raw.splitlines() if l.strip().startswith("{")]
    try:
        obj = json.loads(lines[-1])
    except (IndexError, ValueError):
        obj = {"failed": "load generator printed no JSON object"}
print(json.dumps({**meta, **obj}))
PY
}

# run_bench MIB CONNS SERVER REP PROTOCOL: the load generator against the server on $port.
run_bench() {
    local mib=$1 conns=$2 server=$3 rep=$4 protocol=$5 out
    note "$server: ${mib} MiB × $conns conns, rep $rep/$REPEAT"
    if out=$(timeout "$run_limit" "${loadgen_pin[@]}" "$RINGPORT" bench files \
        --addr "127.0.0.1:$port" --name "${mib}m.bin" --file "$www/${mib}m.bin" \
        --protocol "$protocol" --conns "$conns" --duration "$DURATION" --warmup "$WARMUP" \
        --server-pid "$server_pid" --json 2>>"$log"); then
        record "$mib" "$conns" "$server" "$rep" bench "$out"
    else
        note "$server: load generator failed (see $log)"
        record "$mib" "$conns" "$server" "$rep" bench "" "load generator failed"
    fi
}

# run_one MIB CONNS SERVER REP
run_one() {
    local mib=$1 conns=$2 server=$3 rep=$4 out background=
    settle
    take_port
    echo "== $server ${mib} MiB conns=$conns rep=$rep port=$port" >>"$log"
    case $server in
    ringport)
        if start_server "$port" env RINGPORT_BACKEND=uring \
            "$RINGPORT" serve "$www" --listen "127.0.0.1:$port" --threads 1; then
            run_bench "$mib" "$conns" "$server" "$rep" nc
            stop "$server_pid"
        else
            record "$mib" "$conns" "$server" "$rep" bench "" "server did not start"
        fi
        ;;
    nginx)
        if start_server "$port" "$NGINX" -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$(nginx_conf "$port")"; then
            run_bench "$mib" "$conns" "$server" "$rep" http
            stop "$server_pid"
        else
            record "$mib" "$conns" "$server" "$rep" bench "" "server did not start"
        fi
        ;;
    iperf3)
        if start_server "$port" iperf3 -s -p "$port" -1; then
            note "iperf3: loopback limit, rep $rep/$REPEAT"
            if out=$(timeout "$run_limit" "${loadgen_pin[@]}" iperf3 -c 127.0.0.1 -p "$port" -Z \
                -t "$DURATION" -J 2>>"$log"); then
                record "$mib" "$conns" "$server" "$rep" iperf3 "$out"
            else
                note "iperf3 client failed (see $log)"
                record "$mib" "$conns" "$server" "$rep" iperf3 "" "iperf3 client failed"
            fi
            stop "$server_pid"
        else
            record "$mib" "$conns" "$server" "$rep" iperf3 "" "server did not start"
        fi
        ;;
    esac
}

for f in $FILES; do
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for server in "${servers[@]}"; do
            run_one "${f%%:*}" "${f##*:}" "$server" "$rep"
        done
    done
done

# --- table ---------------------------------------------------------------------------------------------
python3 - "$jsonl" "${servers[*]}" <<'PY' | tee "bench/results/files-$stamp.md"
import json, statistics, sys
from collections import defaultdict

path, order = sys.argv[1], sys.argv[2].split()
names = {"ringport": "ringport", "nginx": "nginx", "iperf3": "iperf3 -Z (limit)"}
runs = defaultdict(list)
failed = defaultdict(list)
for line in open(path):
    r = json.loads(line)
    key = (r["file_mib"], r["conns"], r["server"])
    (failed if "failed" in r else runs)[key].append(r)

def median(key, field):
    vals = [r[field] for r in runs.get(key, []) if r.get(field) is not None]
    return statistics.median(vals) if vals else None

def num(v, fmt, scale=1):
    return "–" if v is None else format(v * scale, fmt)

def ratio(a, b, fmt):
    return "–" if a is None or not b else format(a / b, fmt)

cells = sorted({(m, c) for m, c, _ in list(runs) + list(failed)})
print("| file | server | MB/s | downloads/s | p99 ms | server CPU s/GB | vs nginx | % of iperf3 limit |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
notes = []
for mib, conns in cells:
    nginx = median((mib, conns, "nginx"), "mb_per_sec")
    limit = median((mib, conns, "iperf3"), "mb_per_sec")
    for server in order:
        key = (mib, conns, server)
        label = f"{mib} MiB × {conns} conns"
        if key not in runs and key not in failed:
            continue
        if key not in runs:
            print(f"| {label} | {names[server]} | failed | | | | | |")
            continue
        mbs = median(key, "mb_per_sec")
        if server == "iperf3":
            print(f"| {label} | {names[server]} | {num(mbs, ',.0f')} | – | – | – | – | 100% |")
            continue
        print(f"| {label} | {names[server]} | {num(mbs, ',.0f')} "
              f"| {num(median(key, 'downloads_per_sec'), ',.1f')} "
              f"| {num(median(key, 'p99_us'), ',.1f', 1e-3)} "
              f"| {num(median(key, 'server_cpu_s_per_gb'), '.3f')} "
              f"| {ratio(mbs, nginx, '.2f') + '×' if nginx and mbs is not None else '–'} "
              f"| {ratio(mbs, limit, '.0%')} |")
        errors = sum(r.get("errors") or 0 for r in runs[key])
        if errors:
            first = next((r["first_error"] for r in runs[key] if r.get("first_error")), "")
            notes.append(f"{names[server]}, {label}: {errors} errors (first: {first})")
        if key in failed:
            notes.append(f"{names[server]}, {label}: {len(failed[key])} failed run(s)")
background = [r["background_busy_pct"] for rs in runs.values() for r in rs
              if "background_busy_pct" in r]
if background:
    notes.append(f"other work kept the machine {min(background)}–{max(background)} % busy "
                 "in the second before each run")
if notes:
    print()
    for n in notes:
        print(f"- {n}")
PY
note "raw results: $jsonl (log: $log)"
