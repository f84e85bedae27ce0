#!/usr/bin/env bash
# Echo ping-pong, side by side: ringport against tokio, monoio and thread-per-connection peers.
#
# The server runs pinned to SERVER_CPU, the load generator (`ringport bench echo`) to LOADGEN_CPU.
# For each (conns, size) cell every server runs back to back, so a drift of the machine hits them all.
# Prints one markdown table on stdout; progress goes to stderr. Raw JSON lines (one per run, the load
# generator's object plus server/conns/size/rep) go to bench/results/echo-<timestamp>.jsonl.
#
# Knobs (environment):
#   DURATION=5                 seconds per run, passed to `--duration` as given
#   CONNS="1 50 500"           connection counts
#   SIZES="64 4096"            message sizes in bytes
#   SERVERS="ringport ringport-epoll tokio monoio threads"
#   BASELINE=path/to/ringport  another ringport binary (an older build, to check a change): adds the
#                              servers "baseline" and "baseline-epoll", run side by side with the rest
#   REPEAT=1                   runs per cell and server; the table shows the median of each metric
#   SERVER_CPU=0 LOADGEN_CPU=1 CPUs to pin to
#   BASE_PORT=17700            first port tried; every run takes a fresh port (no TIME_WAIT clashes)
#   BUILD=1                    0 skips `cargo build`
#   RINGPORT=target/release/ringport   the ringport binary (server)
#   LOADGEN=$RINGPORT                  the load generator binary
#   LOADGEN_BACKEND=uring      backend of the load generator's own port
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=${DURATION:-5}
CONNS=${CONNS:-"1 50 500"}
SIZES=${SIZES:-"64 4096"}
BASELINE=${BASELINE:-}
SERVERS=${SERVERS:-"ringport ringport-epoll tokio monoio threads${BASELINE:+ baseline baseline-epoll}"}
REPEAT=${REPEAT:-1}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
BASE_PORT=${BASE_PORT:-17700}
BUILD=${BUILD:-1}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
RINGPORT=${RINGPORT:-$BIN/ringport}
LOADGEN=${LOADGEN:-$RINGPORT}
# The ringport servers say their backend on the command line; the load generator keeps one backend
# for every server it measures.
export RINGPORT_BACKEND=${LOADGEN_BACKEND:-uring}

note() { echo "echo.sh: $*" >&2; }
die() {
    note "$*"
    exit 1
}

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer, not '$REPEAT'"
command -v python3 >/dev/null || die "python3 is needed to read the JSON results"

# --- build -------------------------------------------------------------------------------------------
if [[ $BUILD == 1 ]]; then
    # Build only the packages the workspace has, so the peers can be measured before ringport-cli exists.
    members=$(cargo metadata --no-deps --format-version 1 --locked |
        python3 -c 'import json, sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
    pkgs=()
    for p in ringport-cli ringport-peers; do
        if [[ " $members " == *" $p "* ]]; then
            pkgs+=(-p "$p")
        else
            note "package $p is not in the workspace; not building it"
        fi
    done
    if ((${#pkgs[@]})); then
        cargo build --release --locked "${pkgs[@]}" >&2
    fi
fi

# --- what can run --------------------------------------------------------------------------------------
# server_cmd NAME PORT: prints the server's command line, one word per line.
server_cmd() {
    local addr=127.0.0.1:$2
    case $1 in
    ringport) printf '%s\n' "$RINGPORT" echo --listen "$addr" --threads 1 --backend uring ;;
    ringport-epoll) printf '%s\n' "$RINGPORT" echo --listen "$addr" --threads 1 --backend epoll ;;
    tokio) printf '%s\n' "$BIN/peer-tokio-echo" --listen "$addr" --threads 1 ;;
    monoio) printf '%s\n' "$BIN/peer-monoio-echo" --listen "$addr" --threads 1 ;;
    threads) printf '%s\n' "$BIN/peer-threads-echo" --listen "$addr" ;;
    baseline) printf '%s\n' "${BASELINE:-baseline-unset}" echo --listen "$addr" --threads 1 --backend uring ;;
    baseline-epoll) printf '%s\n' "${BASELINE:-baseline-unset}" echo --listen "$addr" --threads 1 --backend epoll ;;
    *) return 1 ;;
    esac
}

[[ -x $LOADGEN ]] || die "load generator $LOADGEN is missing (build ringport-cli, or set LOADGEN)"

servers=()
for s in $SERVERS; do
    if ! cmd=$(server_cmd "$s" 0); then
        note "unknown server '$s' (known: ringport ringport-epoll tokio monoio threads baseline baseline-epoll); skipping it"
    elif [[ ! -x ${cmd%%$'\n'*} ]]; then
        note "server $s: ${cmd%%$'\n'*} is missing; skipping it"
    else
        servers+=("$s")
    fi
done
((${#servers[@]})) || die "no server to run"

# Pinning needs taskset and the two CPUs; without them the runs still work, unpinned.
server_pin=()
loadgen_pin=()
if command -v taskset >/dev/null && taskset -c "$SERVER_CPU,$LOADGEN_CPU" true 2>/dev/null; then
    server_pin=(taskset -c "$SERVER_CPU")
    loadgen_pin=(taskset -c "$LOADGEN_CPU")
else
    note "cannot pin to CPUs $SERVER_CPU and $LOADGEN_CPU (taskset missing or too few CPUs); running unpinned"
fi

# A bound on each load generator run, so a hung run cannot stall the whole table.
if [[ $DURATION =~ ^[0-9]+$ ]]; then
    run_limit=$((DURATION + 60))
else
    run_limit=600
fi

# --- runs ----------------------------------------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
jsonl=bench/results/echo-$stamp.jsonl
log=bench/results/echo-$stamp.log
: >"$jsonl"

server_pid=
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

next_port=$BASE_PORT
# take_port: sets $port to the next port that nothing listens on.
take_port() {
    while port_open "$next_port"; do
        next_port=$((next_port + 1))
    done
    port=$next_port
    next_port=$((next_port + 1))
}

# record JSON SERVER CONNS SIZE REP [FAILED]: appends one line to the JSONL file.
record() {
    python3 - "$@" >>"$jsonl" <<'PY'
import json, sys
raw, server, conns, size, rep = sys.argv[1:6]
meta = {"server": server, "conns": int(conns), "size": int(size), "rep": int(rep)}
if len(sys.argv) > 6:
    obj = {"failed": sys.argv[6]}
else:
    lines = [l for l in raw.splitlines() if l.strip().startswith("{")]
    try:
        obj = json.loads(lines[-1])
    except (IndexError, ValueError):
        obj = {"failed": "load generator printed no JSON object"}
print(json.dumps({**meta, **obj}))
PY
}

# run_one SERVER CONNS SIZE REP
run_one() {
    local server=$1 conns=$2 size=$3 rep=$4 port out i
    take_port
    mapfile -t cmd < <(server_cmd "$server" "$port")
    echo "== $server conns=$conns size=$size rep=$rep port=$port" >>"$log"
    "${server_pin[@]}" "${cmd[@]}" >>"$log" 2>&1 &
    server_pid=$!

    for ((i = 0; i < 200; i++)); do
        port_open "$port" && break
        if ! kill -0 "$server_pid" 2>/dev/null; then
            break
        fi
        sleep 0.05
    done
    if ! kill -0 "$server_pid" 2>/dev/null || ! port_open "$port"; then
        note "$server did not start listening on port $port (see $log)"
        stop_server
        record "" "$server" "$conns" "$size" "$rep" "server did not start"
        return
    fi

    note "$server: conns=$conns size=$size rep=$rep/$REPEAT"
    if out=$(timeout "$run_limit" "${loadgen_pin[@]}" "$LOADGEN" bench echo \
        --addr "127.0.0.1:$port" --conns "$conns" --size "$size" --duration "$DURATION" \
        --server-pid "$server_pid" --json 2>>"$log"); then
        record "$out" "$server" "$conns" "$size" "$rep"
    else
        note "$server: load generator failed (exit $?; see $log)"
        record "" "$server" "$conns" "$size" "$rep" "load generator failed"
    fi
    stop_server
}

for conns in $CONNS; do
    for size in $SIZES; do
        for ((rep = 1; rep <= REPEAT; rep++)); do
            for server in "${servers[@]}"; do
                run_one "$server" "$conns" "$size" "$rep"
            done
        done
    done
done

# --- table ---------------------------------------------------------------------------------------------
python3 - "$jsonl" "${servers[*]}" <<'PY' | tee "bench/results/echo-$stamp.md"
import json, statistics, sys
from collections import defaultdict

path, order = sys.argv[1], sys.argv[2].split()
runs = defaultdict(list)
failed = defaultdict(list)
for line in open(path):
    r = json.loads(line)
    key = (r["conns"], r["size"], r["server"])
    (failed if "failed" in r else runs)[key].append(r)

def median(key, field):
    vals = [r[field] for r in runs.get(key, []) if r.get(field) is not None]
    return statistics.median(vals) if vals else None

def num(v, fmt):
    return "–" if v is None else format(v, fmt)

def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"

cells = sorted({(c, s) for c, s, _ in list(runs) + list(failed)})
print("| conns | size | server | rt/s | p99 µs | CPU ns/rt | rt/s vs ringport | CPU/rt vs ringport |")
print("|---:|---:|---|---:|---:|---:|---:|---:|")
notes = []
for conns, size in cells:
    base = (conns, size, "ringport")
    base_rt = median(base, "round_trips_per_sec")
    base_cpu = median(base, "server_cpu_ns_per_rt")
    for server in order:
        key = (conns, size, server)
        if key not in runs and key not in failed:
            continue
        if key not in runs:
            print(f"| {conns} | {size} | {server} | failed | | | | |")
            continue
        rt = median(key, "round_trips_per_sec")
        cpu = median(key, "server_cpu_ns_per_rt")
        print(f"| {conns} | {size} | {server} | {num(rt, ',.0f')} | {num(median(key, 'p99_us'), ',.0f')} "
              f"| {num(cpu, ',.0f')} | {ratio(rt, base_rt)} | {ratio(cpu, base_cpu)} |")
        errors = sum(r.get("errors") or 0 for r in runs[key])
        if errors:
            notes.append(f"{server} at {conns} conns, {size} B: {errors} errors")
        if key in failed:
            notes.append(f"{server} at {conns} conns, {size} B: {len(failed[key])} failed run(s)")
if notes:
    print()
    for n in notes:
        print(f"- {n}")
PY
note "raw results: $jsonl (log: $log)"
