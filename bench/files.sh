#!/usr/bin/env bash
# File downloads, side by side: `ringport serve` against nginx, with iperf3 as the loopback limit.
#
# Every server runs pinned to SERVER_CPU, the load generator (`ringport bench files`) to LOADGEN_CPU.
# By default the generator does not look at the bytes (`--discard`: splice into /dev/null, lengths
# only), so that the server is measured against the loopback limit, not the client; DISCARD=0 makes
# it compare every byte with the local copy instead. ringport is fetched over its nc protocol, nginx
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
#   DISCARD=1                  0: the load generator compares every byte with the local copy
#   SERVER_CPU=0 LOADGEN_CPU=1 CPUs to pin to
#   SETTLE=0                   if > 0: before each run, wait (up to 60 s) until the machine is less than
#                              SETTLE % busy over 1 s; for shared machines, where other work skews figures.
#                              Either way each JSON line has the busy % measured just before its run.
#   BASE_PORT=18800            first port tried; every run takes a fresh port
#   BUILD=1                    0 skips `cargo build`
#   INSTALL=1                  0 never installs nginx or iperf3 (servers without a binary are skipped)
#   RINGPORT=target/release/ringport   the ringport binary (server and load generator)
#   BASELINE=path/to/ringport  another ringport build (an older one, to check a change): adds the server
#                              "baseline", fetched like ringport, side by side with the rest
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BENCH=files
# shellcheck source=bench/lib.sh
source bench/lib.sh
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
FILES=${FILES:-"1:16 256:2"}
BASELINE=${BASELINE:-}
SERVERS=${SERVERS:-"ringport${BASELINE:+ baseline} nginx iperf3"}
REPEAT=${REPEAT:-1}
DISCARD=${DISCARD:-1}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SETTLE=${SETTLE:-0}
BASE_PORT=${BASE_PORT:-18800}
BUILD=${BUILD:-1}
INSTALL=${INSTALL:-1}
RINGPORT=${RINGPORT:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ringport}


[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, not '$DURATION'"
[[ $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "WARMUP must be seconds, not '$WARMUP'"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer, not '$REPEAT'"
[[ $SETTLE =~ ^[0-9]+$ ]] || die "SETTLE must be a percentage, not '$SETTLE'"
for f in $FILES; do
    [[ $f =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || die "FILES takes MIB:CONNS pairs, not '$f'"
done
command -v python3 >/dev/null || die "python3 is needed to read the JSON results"


# --- tools: nginx and iperf3, installed when missing ---------------------------------------------------
servers=()
for s in $SERVERS; do
    case $s in
    ringport) servers+=("$s") ;;
    baseline) if [[ -x $BASELINE ]]; then servers+=(baseline); else note "skipping baseline: set BASELINE to a ringport binary"; fi ;;
    nginx) if install nginx nginx-light nginx; then servers+=(nginx); else note "skipping nginx"; fi ;;
    iperf3) if install iperf3 iperf3; then servers+=(iperf3); else note "skipping iperf3"; fi ;;
    *) note "unknown server '$s' (known: ringport baseline nginx iperf3); skipping it" ;;
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
pin_cpus
discard=()
[[ $DISCARD == 1 ]] && discard=(--discard)
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
        "${discard[@]}" --protocol "$protocol" --conns "$conns" --duration "$DURATION" --warmup "$WARMUP" \
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
    ringport | baseline)
        local bin=$RINGPORT
        [[ $server == baseline ]] && bin=$BASELINE
        if start_server "$port" env RINGPORT_BACKEND=uring \
            "$bin" serve "$www" --listen "127.0.0.1:$port" --threads 1; then
            run_bench "$mib" "$conns" "$server" "$rep" nc
            stop "$server_pid"
        else
            record "$mib" "$conns" "$server" "$rep" bench "" "server did not start"
        fi
        ;;
    nginx)
        if start_server "$port" "$NGINX" -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$(nginx_conf "$port" "$www")"; then
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
names = {"ringport": "ringport", "baseline": "ringport (baseline)", "nginx": "nginx",
         "iperf3": "iperf3 -Z (limit)"}
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
