#!/usr/bin/env bash
# HTTP static files, side by side: `ringport serve` against nginx, with wrk, then large files against
# the loopback limit (iperf3 -Z).
#
# Small files: wrk (one thread, keep-alive) pinned to LOADGEN_CPU against each server pinned to
# SERVER_CPU with one worker, for every file size and connection count; the servers of a cell run back
# to back, in alternating order from one repetition to the next, so a drift of the machine hits them
# all. wrk saturates its own core first on a 2-core machine, so each server's CPU time per request
# (utime + stime from /proc/PID/stat around the wrk run) ranks servers where requests/s cannot.
# Large files: `ringport bench files --protocol http --discard` (bodies spliced into /dev/null, lengths
# only, so the client costs little) against each server, and iperf3 -Z as the loopback limit.
#
# Prints markdown tables on stdout; progress goes to stderr. Raw JSON lines (one per run) go to
# bench/results/http-<timestamp>.jsonl.
#
# Knobs (environment):
#   DURATION=5                 whole seconds per measured run (after a 1 s unmeasured warmup)
#   SIZES="1 64 1024"          file sizes in KiB (random content; "" runs only the large file)
#   CONNS="50 256"             wrk connection counts
#   SERVERS="ringport ringport-nocache nginx"
#                              ringport-nocache is ringport with --cache-mib 0; nginx-ofc is nginx with
#                              open_file_cache (max=1000)
#   RINGPORT_FLAGS=            extra flags of the ringport servers (e.g. "--cache-max-file-kib 64")
#   LARGE=256                  MiB of the large file ("" skips the large-file runs)
#   LARGE_CONNS=2              connections of the large-file runs
#   REPEAT=3                   runs per cell and server; tables show medians
#   SERVER_CPU=0 LOADGEN_CPU=1 CPUs to pin to
#   SETTLE=0                   if > 0: before each run, wait (up to 60 s) until the machine is less than
#                              SETTLE % busy over 1 s; each JSON line has the busy % seen before its run
#   BASE_PORT=18900            first port tried; every run takes a fresh port
#   BUILD=1                    0 skips `cargo build`
#   INSTALL=1                  0 never installs wrk, nginx or iperf3 (servers without a binary are skipped)
#   RINGPORT=target/release/ringport
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH=http
# shellcheck source=bench/lib.sh
source bench/lib.sh
DURATION=${DURATION:-5}
SIZES=${SIZES-"1 64 1024"}
CONNS=${CONNS:-"50 256"}
SERVERS=${SERVERS:-"ringport ringport-nocache nginx"}
LARGE=${LARGE-256}
LARGE_CONNS=${LARGE_CONNS:-2}
REPEAT=${REPEAT:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SETTLE=${SETTLE:-0}
BASE_PORT=${BASE_PORT:-18900}
BUILD=${BUILD:-1}
INSTALL=${INSTALL:-1}
RINGPORT=${RINGPORT:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ringport}
read -r -a ringport_flags <<<"${RINGPORT_FLAGS:-}"


[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, not '$DURATION'"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer, not '$REPEAT'"
[[ $SETTLE =~ ^[0-9]+$ ]] || die "SETTLE must be a percentage, not '$SETTLE'"
for v in $SIZES $CONNS $LARGE $LARGE_CONNS; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "sizes and counts are positive integers, not '$v'"
done
command -v python3 >/dev/null || die "python3 is needed to read the results"


install wrk wrk || die "wrk is needed"
servers=()
for s in $SERVERS; do
    case $s in
    ringport | ringport-nocache) servers+=("$s") ;;
    nginx | nginx-ofc) if install nginx nginx-light nginx; then servers+=("$s"); else note "skipping $s"; fi ;;
    *) note "unknown server '$s' (known: ringport ringport-nocache nginx nginx-ofc); skipping it" ;;
    esac
done
((${#servers[@]})) || die "no server to run"
limit=0
[[ -n $LARGE ]] && install iperf3 iperf3 && limit=1
NGINX=$(command -v nginx || true)

if [[ $BUILD == 1 ]]; then
    cargo build --release --locked -p ringport-cli >&2
fi
[[ -x $RINGPORT ]] || die "$RINGPORT is missing (build ringport-cli, or set RINGPORT)"

pin_cpus
run_limit=$((DURATION + 60))
hz=$(getconf CLK_TCK)

www=$tmp/www
mkdir -p "$www"
for kib in $SIZES; do
    head -c $((kib << 10)) /dev/urandom >"$www/${kib}k.bin"
done
[[ -n $LARGE ]] && head -c $((LARGE << 20)) /dev/urandom >"$www/${LARGE}m.bin"
# Old enough for ringport's cache to take them (it skips files changed in the last 2 s).
touch -d '1 hour ago' "$www"/*

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
jsonl=bench/results/http-$stamp.jsonl
log=bench/results/http-$stamp.log
: >"$jsonl"

# cpu_ticks PID: utime + stime of PID so far, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# start SERVER PORT: starts SERVER pinned on PORT (sets $server_pid); false if it did not start.
start() {
    local server=$1 port=$2
    case $server in
    ringport | ringport-nocache)
        local cache=()
        [[ $server == ringport-nocache ]] && cache=(--cache-mib 0)
        start_server "$port" "$RINGPORT" -q serve "$www" --listen "127.0.0.1:$port" --threads 1 \
            "${cache[@]}" "${ringport_flags[@]}"
        ;;
    nginx) start_server "$port" "$NGINX" -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$(nginx_conf "$port" "$www")" ;;
    nginx-ofc)
        start_server "$port" "$NGINX" -e "$tmp/nginx/error.log" -p "$tmp/nginx" \
            -c "$(nginx_conf "$port" "$www" "open_file_cache max=1000;")"
        ;;
    esac
}

# record KEY=VALUE...: appends one JSON line (numbers stay numbers).
record() {
    python3 - "$@" >>"$jsonl" <<'PY'
import json, sys
out = {}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    try:
        out[k] = json.loads(v)
    except ValueError:
        out[k] = v
print(json.dumps(out))
PY
}

# wrk_run SERVER KIB CONNS REP
wrk_run() {
    local server=$1 kib=$2 conns=$3 rep=$4 background= port c0 c1 out
    settle
    take_port
    echo "== $server ${kib}k conns=$conns rep=$rep port=$port" >>"$log"
    if ! start "$server" "$port"; then
        record kind=wrk server="$server" kib="$kib" conns="$conns" rep="$rep" failed='"server did not start"'
        return
    fi
    note "$server: ${kib} KiB × $conns conns, rep $rep/$REPEAT"
    local url=http://127.0.0.1:$port/${kib}k.bin
    timeout "$run_limit" "${loadgen_pin[@]}" wrk -t1 -c"$conns" -d1s "$url" >>"$log" 2>&1 || true
    c0=$(cpu_ticks "$server_pid")
    if out=$(timeout "$run_limit" "${loadgen_pin[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" --latency "$url" 2>>"$log"); then
        c1=$(cpu_ticks "$server_pid")
        echo "$out" >>"$log"
        record kind=wrk server="$server" kib="$kib" conns="$conns" rep="$rep" background="${background:-null}" \
            server_cpu_s="$(python3 -c "print(($c1 - $c0) / $hz)")" \
            "$(WRK="$out" KIB="$kib" python3 - <<'PY'
import json, os, re
out, kib = os.environ["WRK"], int(os.environ["KIB"])
def num(v, unit):
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    return float(v) * scale
total = int(re.search(r"(\d+) requests in", out).group(1))
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
errors += int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
print("wrk=" + json.dumps({"requests": total, "rps": rps, "mb_per_sec": rps * kib * 1024 / 1e6,
                           "p99_ms": num(*p99.groups()) if p99 else None, "errors": errors}))
PY
)"
    else
        record kind=wrk server="$server" kib="$kib" conns="$conns" rep="$rep" failed='"wrk failed"'
    fi
    stop "$server_pid"
}

# large_run SERVER REP: the large file with the discarding client, or iperf3 -Z.
large_run() {
    local server=$1 rep=$2 background= port out
    settle
    take_port
    echo "== large $server rep=$rep port=$port" >>"$log"
    if [[ $server == iperf3 ]]; then
        start_server "$port" iperf3 -s -p "$port" -1 || return 0
        note "iperf3 -Z: loopback limit, rep $rep/$REPEAT"
        if out=$(timeout "$run_limit" "${loadgen_pin[@]}" iperf3 -c 127.0.0.1 -p "$port" -Z -t "$DURATION" -J 2>>"$log"); then
            record kind=large server=iperf3 rep="$rep" background="${background:-null}" \
                "mb_per_sec=$(IPERF="$out" python3 -c 'import json,os; print(json.loads(os.environ["IPERF"])["end"]["sum_received"]["bits_per_second"] / 8e6)')"
        fi
        stop "$server_pid"
        return 0
    fi
    start "$server" "$port" || return 0
    note "$server: ${LARGE} MiB × $LARGE_CONNS conns (discarding client), rep $rep/$REPEAT"
    if out=$(timeout "$run_limit" "${loadgen_pin[@]}" "$RINGPORT" bench files --addr "127.0.0.1:$port" \
        --name "${LARGE}m.bin" --size $((LARGE << 20)) --discard --protocol http --conns "$LARGE_CONNS" \
        --duration "$DURATION" --warmup 1 --server-pid "$server_pid" --json 2>>"$log"); then
        record kind=large server="$server" rep="$rep" background="${background:-null}" "bench=$out"
    else
        record kind=large server="$server" rep="$rep" failed='"load generator failed"'
    fi
    stop "$server_pid"
}

for ((rep = 1; rep <= REPEAT; rep++)); do
    order=("${servers[@]}")
    if ((rep % 2 == 0)); then
        order=()
        for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
    fi
    for kib in $SIZES; do
        for conns in $CONNS; do
            for server in "${order[@]}"; do
                wrk_run "$server" "$kib" "$conns" "$rep"
            done
        done
    done
    if [[ -n $LARGE ]]; then
        for server in "${order[@]}"; do
            large_run "$server" "$rep"
        done
        ((limit)) && large_run iperf3 "$rep"
    fi
done

python3 - "$jsonl" "${servers[*]}" <<'PY' | tee "bench/results/http-$stamp.md"
import json, statistics, sys
from collections import defaultdict

path, order = sys.argv[1], sys.argv[2].split()
wrk, large, failed = defaultdict(list), defaultdict(list), []
for line in open(path):
    r = json.loads(line)
    if "failed" in r:
        failed.append(r)
    elif r["kind"] == "wrk":
        w = r["wrk"]
        w["cpu_us_per_req"] = r["server_cpu_s"] / w["requests"] * 1e6 if w["requests"] else None
        w["background"] = r.get("background")
        wrk[(r["kib"], r["conns"], r["server"])].append(w)
    else:
        large[r["server"]].append(r.get("bench") or r)

def med(rows, field):
    vals = [x[field] for x in rows if x.get(field) is not None]
    return statistics.median(vals) if vals else None

def f(v, fmt):
    return "–" if v is None else format(v, fmt)

def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"

print("| file | conns | server | req/s | MB/s | p99 ms | server CPU µs/req | req/s vs nginx | CPU/req vs nginx |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
errors = []
for kib, conns in sorted({(k, c) for k, c, _ in wrk}):
    base = wrk.get((kib, conns, "nginx"), [])
    b_rps, b_cpu = med(base, "rps"), med(base, "cpu_us_per_req")
    for server in order:
        rows = wrk.get((kib, conns, server))
        if not rows:
            continue
        rps, cpu = med(rows, "rps"), med(rows, "cpu_us_per_req")
        size = f"{kib} KiB" if kib < 1024 else f"{kib // 1024} MiB"
        print(f"| {size} | {conns} | {server} | {f(rps, ',.0f')} | {f(med(rows, 'mb_per_sec'), ',.0f')} "
              f"| {f(med(rows, 'p99_ms'), '.2f')} | {f(cpu, '.2f')} | {ratio(rps, b_rps)} | {ratio(cpu, b_cpu)} |")
        e = sum(x["errors"] for x in rows)
        if e:
            errors.append(f"{server}, {size} × {conns}: {e} wrk errors or non-2xx responses")
if large:
    limit = med(large.get("iperf3", []), "mb_per_sec")
    nginx = large.get("nginx", [])
    print()
    print(f"| large file, discarding client | server | MB/s | server CPU s/GB | vs nginx | % of iperf3 -Z |")
    print("|---|---|---:|---:|---:|---:|")
    for server in order + ["iperf3"]:
        rows = large.get(server)
        if not rows:
            continue
        mbs = med(rows, "mb_per_sec")
        pct = "100%" if server == "iperf3" else ("–" if not limit or mbs is None else f"{mbs / limit:.0%}")
        print(f"| {rows[0].get('name', 'loopback')} | {server} | {f(mbs, ',.0f')} | "
              f"{f(med(rows, 'server_cpu_s_per_gb'), '.3f')} | "
              f"{'–' if server == 'iperf3' else ratio(mbs, med(nginx, 'mb_per_sec'))} | {pct} |")
        e = sum(x.get("errors") or 0 for x in rows)
        if e:
            errors.append(f"{server}, large file: {e} errors")
bg = [x["background"] for rows in wrk.values() for x in rows if isinstance(x.get("background"), int)]
notes = errors + [f"{r['server']}: failed run ({r['failed']})" for r in failed]
if bg:
    notes.append(f"other work kept the machine {min(bg)}–{max(bg)} % busy in the second before each run")
if notes:
    print()
    for n in notes:
        print(f"- {n}")
PY
note "raw results: $jsonl (log: $log)"
