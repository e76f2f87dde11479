#!/usr/bin/env bash
# bench.sh - `make bench`: what httptape costs a server, next to the other
# ways to get the same HTTP audit log (issue 5). docs/benchmarks.md explains
# every row and how to read the ratios.
#
# Every server runs pinned to one CPU (BENCH_SERVER_CPU, default 0) with all
# its threads (strace; a rival tool beside it during its rows' rounds), so
# their work is charged to the server's own CPU budget; `httptape attach`
# runs on the spare CPU or the server's, one row each, like the collector. The
# httptape collector (a process of its own, started by `httptape run`) runs
# on the spare CPU or on the server's, one row each, and its CPU time is
# counted apart and added (start_tapped); wrk runs pinned to the other (BENCH_CLIENT_CPU,
# default 1): `wrk -t1 -c16 -d$BENCH_SECONDS` (the nginx_h2 group: `h2load -t1
# -c10 -m10 -D $BENCH_SECONDS`, HTTP/2 over TLS). The servers of one group are
# started together, warmed up, and measured in cycles: one round of each
# configuration per cycle, the order reversed every other cycle, so drift
# cancels; a ratio is this configuration / untapped within one cycle, and the
# table shows the median over BENCH_PAIRS cycles.
#
# Progress goes to stderr; the table, resource figures, targets and warnings
# to stdout. Exit 0 when everything ran (targets missed or not), 1 when
# something failed to run, 2 on a bad setting. Every server started is
# stopped on every exit path; every wait and every wrk is bounded, and so is
# the whole run (BENCH_TIMEOUT).
#
# Settings (environment):
#   BENCH_PAIRS=5          cycles (pairs of tapped/untapped rounds)
#   BENCH_SECONDS=5        seconds per wrk round
#   BENCH_WARMUP_SECONDS=1 wrk warm-up per server and workload, not counted
#   BENCH_IDLE_CONNS=2000  idle keep-alive connections for the RSS figure
#   BENCH_REPLAY_EVENTS=300000  exchanges in the synthetic replay figure
#   BENCH_TIMEOUT=...      seconds before the whole run is abandoned
#                          (default: twice the estimate plus 5 minutes)
#   BENCH_KEEP=1           keep the scratch directory (logs, wrk output)
#   BENCH_SERVER_CPU=0, BENCH_CLIENT_CPU=1
#   BENCH_GROUPS="fastapi nginx100 nginx_tls nginx_h2 nginx_rivals nginx20k echo1m resources"
#                          the groups to run (space- or comma-separated; default all);
#                          nginx_h2 needs h2load (nghttp2-client), and is skipped
#                          with a note without it
#   BENCH_INSTALL=1        0: never install the rival tools (tcpdump, httpry,
#                          tshark, mitmproxy) when one is missing
set -uo pipefail      # no -e: a failed round is recorded and the run goes on
cd "$(dirname "$0")/.." || exit 1
REPO=$PWD

PY=/usr/bin/python3       # Debian's python: python3-fastapi, python3-uvicorn
export PYTHONDONTWRITEBYTECODE=1     # no __pycache__ in bench/ or examples/
HTTPTAPE=$REPO/build/httptape
BENCH=$REPO/bench
WRK_DIR=$BENCH/wrk
CONNS=16
H2_CONNS=10         # nginx_h2: h2load's connections, and streams in flight on each
H2_STREAMS=10

PAIRS=${BENCH_PAIRS:-5}
DUR=${BENCH_SECONDS:-5}
WARM=${BENCH_WARMUP_SECONDS:-1}
IDLE_CONNS=${BENCH_IDLE_CONNS:-2000}
REPLAY_EVENTS=${BENCH_REPLAY_EVENTS:-300000}
SRV_CPU=${BENCH_SERVER_CPU:-0}
CLI_CPU=${BENCH_CLIENT_CPU:-1}

say() { printf '[bench %4ds] %s\n' "$SECONDS" "$*" >&2; }

for var in PAIRS DUR WARM IDLE_CONNS REPLAY_EVENTS SRV_CPU CLI_CPU; do
    if ! [[ ${!var} =~ ^[0-9]+$ ]]; then
        echo "bench: $var='${!var}': expected a whole number" >&2
        exit 2
    fi
done
if ((PAIRS < 1 || DUR < 1)); then
    echo "bench: BENCH_PAIRS and BENCH_SECONDS must be at least 1" >&2
    exit 2
fi
ALL_GROUPS="fastapi nginx100 nginx_tls nginx_h2 nginx_rivals nginx20k echo1m resources"
GROUPS_SEL=" $(tr ',' ' ' <<<"${BENCH_GROUPS:-$ALL_GROUPS}") "
for g in $GROUPS_SEL; do
    if [[ " $ALL_GROUPS " != *" $g "* ]]; then
        echo "bench: BENCH_GROUPS: unknown group '$g' (the groups: $ALL_GROUPS)" >&2
        exit 2
    fi
done
[[ -n ${GROUPS_SEL// /} ]] || { echo "bench: BENCH_GROUPS names no group (the groups: $ALL_GROUPS)" >&2; exit 2; }
want() { [[ $GROUPS_SEL == *" $1 "* ]]; }     # want GROUP: is GROUP in this run?

# ---- what the run needs ---------------------------------------------------

missing=()
for tool in wrk taskset jq curl timeout nginx; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
"$PY" -c 'import fastapi, uvicorn' 2>/dev/null || missing+=("python3-fastapi python3-uvicorn")
[[ -x $HTTPTAPE && -f $REPO/build/libhttptape.so ]] || missing+=("build/httptape (run make)")
if ((${#missing[@]})); then
    echo "bench: missing: ${missing[*]} (scripts/install-deps.sh installs the packages)" >&2
    exit 1
fi
HAVE_STRACE=1
command -v strace >/dev/null 2>&1 || HAVE_STRACE=0
HAVE_H2LOAD=1
command -v h2load >/dev/null 2>&1 || HAVE_H2LOAD=0
ncpu=$(nproc --all)
if ((SRV_CPU >= ncpu || CLI_CPU >= ncpu || SRV_CPU == CLI_CPU)); then
    echo "bench: needs two distinct CPUs (server $SRV_CPU, client $CLI_CPU; this machine has $ncpu)" >&2
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/httptape-bench.XXXXXX") || exit 1
mkdir -p "$WORK/logs" "$WORK/wrk" "$WORK/out" "$WORK/www" "$WORK/temp" "$WORK/bin"

# The run measures one build from start to end: a copy of it, so that a
# rebuild during the run cannot mix versions between rounds. `httptape run`
# finds the library beside the executable.
for f in httptape libhttptape.so bench_encoder; do
    [[ -e $REPO/build/$f ]] && cp "$REPO/build/$f" "$WORK/bin/$f"
done
HTTPTAPE=$WORK/bin/httptape
if ! "$HTTPTAPE" run --log "$WORK/bin/check.jsonl" -- true 2>"$WORK/bin/check.err"; then
    echo "bench: the build does not run ($(head -n 1 "$WORK/bin/check.err")); is make still running?" >&2
    rm -rf "$WORK"
    exit 1
fi
BUILD_ID="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$([[ -z $(git -C "$REPO" status --porcelain -- src 2>/dev/null) ]] || echo '+changes'),\
 libhttptape.so sha256 $(sha256sum "$WORK/bin/libhttptape.so" | cut -c1-12)"
: >"$WORK/results.tsv"
: >"$WORK/rows.tsv"
: >"$WORK/resources.tsv"
: >"$WORK/notes.txt"
: >"$WORK/kernel.tsv"

FAILED=0
note() {            # a warning for the final report (and stderr now)
    say "WARNING: $*"
    printf '%s\n' "$*" >>"$WORK/notes.txt"
}
failed() {          # something did not run: the exit status will be 1
    FAILED=1
    note "FAILED: $*"
}
resource() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/resources.tsv"; }

# ---- servers: start, wait, stop ---------------------------------------------

declare -A SERVER_PID=()    # name -> pid (what taskset exec'd into)
declare -A SERVER_LOG=()    # name -> httptape log, for the count checks
declare -A SERVER_REQS=()   # name -> requests wrk completed, warm-ups included
declare -A SERVER_RUNS=()   # name -> wrk runs against it
declare -A SERVER_EXTRA=()  # name -> requests sent by other clients (curl, idle_conns.py)
declare -A ROUND_HOOK=()    # name -> function run as `F start NAME TAG SECONDS` before each
                            # wrk run against NAME and `F stop NAME TAG` after it
                            # (httptape attach, a rival tool); a non-zero status voids the round
declare -A ROUND_PIDS=()    # name -> a process outside the server's tree whose CPU time is
                            # the server's during its rounds (a rival tool, pinned beside it)
declare -A ATTACH_PID=()    # name -> the httptape attach process running for NAME's round
declare -A RIVAL_PID=()     # name -> the rival tool (tcpdump...) running for NAME's round
declare -A COLL_PID=()      # name -> the httptape collector (comm httptape-coll) of a tapped server
declare -A COLL_CPU=()      # name -> the CPU that collector is pinned to
declare -A COLL_TOTAL_US=() # name -> the collector's CPU time over its life, read before the server stops
declare -A SCHEME=()        # name -> the URL scheme wrk uses against it (http unless said)
declare -A LOADGEN=()       # name -> the client that loads it: wrk unless said (h2load: load_cmd)
declare -A INFLIGHT=()      # name -> requests its client may leave in flight at the end of
                            # a run (CONNS unless said): the log may hold that many more
WATCHDOG=

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The pids of PID's descendants, children before grandchildren.
descendants() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2; pids[NR] = $1 }
        END {
            want[root] = 1
            do {
                grew = 0
                for (i in pids) {
                    p = pids[i]
                    if (!(p in want) && (parent[p] in want)) { want[p] = 1; grew = 1; print p }
                }
            } while (grew)
        }'
}

# A bare TCP connect: no HTTP request, so nothing reaches a log.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME PORT CMD...: CMD pinned to the server CPU, output in
# out/NAME.out; waits (30 s at most) until PORT accepts connections.
start_server() {
    local name=$1 port=$2; shift 2
    taskset -c "$SRV_CPU" "$@" >"$WORK/out/$name.out" 2>&1 </dev/null &
    SERVER_PID[$name]=$!
    SERVER_REQS[$name]=0
    SERVER_RUNS[$name]=0
    SERVER_EXTRA[$name]=0
    local deadline=$((SECONDS + 30))
    until port_open "$port"; do
        if ! kill -0 "${SERVER_PID[$name]}" 2>/dev/null || ((SECONDS > deadline)); then
            failed "server $name did not start listening on port $port (its output: $(tail -n 3 "$WORK/out/$name.out" | tr '\n' ' '))"
            stop_server "$name"
            return 1
        fi
        sleep 0.1
    done
}

# stop_server NAME: SIGTERM to the server and everything it started (uvicorn
# shuts down cleanly and httptape writes its final statistics record; nginx's
# worker exits through exit() too; strace's tracee gets its own signal), up
# to 15 s, then SIGKILL.
stop_server() {
    local name=$1 pid=${SERVER_PID[$1]:-}
    [[ -n $pid ]] || return 0
    local all
    all="$(descendants "$pid") $pid"
    # shellcheck disable=SC2086
    kill -TERM $all 2>/dev/null
    local deadline=$((SECONDS + 15)) p alive
    while :; do
        alive=
        for p in $all; do kill -0 "$p" 2>/dev/null && alive+=" $p"; done
        [[ -z $alive ]] && break
        if ((SECONDS > deadline)); then
            note "server $name did not stop within 15 s; killed (pids$alive)"
            # shellcheck disable=SC2086
            kill -KILL $alive 2>/dev/null
            break
        fi
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    unset "SERVER_PID[$name]"
}

# start_tapped NAME PORT PLACE LOG [RUN-OPTION...] -- CMD...: CMD under
# `httptape run --log LOG`, the server pinned to the server CPU; the collector
# (forked by run before it execs the server; it keeps run's affinity) on the
# other CPU (PLACE spare: `taskset -c CLIENT httptape run -- taskset -c
# SERVER CMD`) or on the server's (PLACE same: `taskset -c SERVER httptape run
# -- CMD`). This machine has two CPUs, so the spare CPU is wrk's. Then finds
# the collector (COLL_PID).
start_tapped() {
    local name=$1 port=$2 place=$3 log=$4; shift 4
    local opts=()
    while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    SERVER_LOG[$name]=$log
    case $place in
    spare)
        COLL_CPU[$name]=$CLI_CPU
        start_server "$name" "$port" taskset -c "$CLI_CPU" "$HTTPTAPE" run --log "$log" "${opts[@]}" -- \
            taskset -c "$SRV_CPU" "$@" || return 1 ;;
    same)
        COLL_CPU[$name]=$SRV_CPU
        start_server "$name" "$port" "$HTTPTAPE" run --log "$log" "${opts[@]}" -- "$@" || return 1 ;;
    *) failed "start_tapped $name: unknown placement $place"; return 1 ;;
    esac
    find_collector "$name"
}

# find_collector NAME: sets COLL_PID[NAME] to the collector that writes
# NAME's log: the process named httptape-coll (run names it so) holding the
# log file open (5 s at most).
find_collector() {
    local name=$1 log want p fd deadline=$((SECONDS + 5))
    log=${SERVER_LOG[$1]}
    unset "COLL_PID[$name]"
    while :; do
        want=$(realpath -m "$log")
        for p in $(ps -e -o pid=,comm= | awk '$2 == "httptape-coll" { print $1 }'); do
            for fd in /proc/"$p"/fd/*; do
                if [[ $(readlink "$fd" 2>/dev/null) == "$want" ]]; then
                    COLL_PID[$name]=$p
                    return 0
                fi
            done
        done
        if ((SECONDS > deadline)); then
            failed "server $name: no httptape-coll process holds its log ${log##*/}; its collector's CPU is not counted"
            return 1
        fi
        sleep 0.1
    done
}

# coll_snapshot NAME...: the collectors' CPU time so far (COLL_TOTAL_US),
# read just before their servers stop (the collector's last drain, after
# that, is not in it).
coll_snapshot() {
    local name
    for name in "$@"; do
        [[ -n ${COLL_PID[$name]:-} ]] && kill -0 "${COLL_PID[$name]}" 2>/dev/null &&
            COLL_TOTAL_US[$name]=$(tree_run_us "${COLL_PID[$name]}")
    done
    return 0
}

# shellcheck disable=SC2317  # reached through the traps
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $WATCHDOG ]]; then
        # shellcheck disable=SC2046
        kill $(descendants "$WATCHDOG") "$WATCHDOG" 2>/dev/null
        wait "$WATCHDOG" 2>/dev/null
    fi
    local name
    for name in "${!ATTACH_PID[@]}"; do attach_end "$name"; done
    for name in "${!RIVAL_PID[@]}"; do rival_end "$name"; done
    for name in "${!SERVER_PID[@]}"; do stop_server "$name"; done
    local ip; for ip in ${IDLE_PIDS[@]+"${IDLE_PIDS[@]}"} ${IDLE_PID:-}; do kill "$ip" 2>/dev/null; done
    if [[ ${BENCH_KEEP:-0} == 1 || $rc -ne 0 ]]; then
        say "scratch directory kept: $WORK ($(du -sh "$WORK" 2>/dev/null | cut -f1))"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "stopped (SIGTERM or BENCH_TIMEOUT)"; exit 143' TERM
trap 'exit 141' PIPE     # stdout closed early (| head): still clean up

# All threads of a server's processes must be on the server CPU (ours too).
check_affinity() {
    local name=$1 pid=${SERVER_PID[$1]:-} p t cpus
    [[ -n $pid ]] || return 0
    for p in $pid $(descendants "$pid"); do
        for t in /proc/"$p"/task/*; do
            cpus=$(awk '/^Cpus_allowed_list/ { print $2 }' "$t/status" 2>/dev/null) || continue
            [[ -z $cpus || $cpus == "$SRV_CPU" ]] ||
                note "server $name: thread ${t##*/} may run on CPUs $cpus, not only $SRV_CPU"
        done
    done
    p=${COLL_PID[$name]:-}
    [[ -n $p ]] || return 0
    for t in /proc/"$p"/task/*; do
        cpus=$(awk '/^Cpus_allowed_list/ { print $2 }' "$t/status" 2>/dev/null) || continue
        [[ -z $cpus || $cpus == "${COLL_CPU[$name]}" ]] ||
            note "server $name: collector thread ${t##*/} may run on CPUs $cpus, not only ${COLL_CPU[$name]}"
    done
}

# ---- wrk ----------------------------------------------------------------------

# How much of each CPU something other than the server (CPU 0) or wrk
# (CPU 1) used during a round: the machine may be shared, and a round that
# lost its CPU to someone else says little. busy(cpu) counts user, system and
# steal ticks (steal: other VMs), and nice ticks only when this script itself
# runs niced: work at a positive nice value yields to the servers and wrk,
# so it is reported apart (W_NICED*). The server's own time comes from its
# threads' schedstat, wrk's from the shell's reaped-children times.
TICK_MS=$((1000 / $(getconf CLK_TCK)))
OUR_NICE=$(($(nice)))
cpu_busy_ms() {     # prints "busy niced" in ms
    local name u n sy _idle _iow _irq _sirq steal _rest
    while read -r name u n sy _idle _iow _irq _sirq steal _rest; do
        if [[ $name == "cpu$1" ]]; then
            if ((OUR_NICE == 0)); then
                echo "$(((u + sy + steal) * TICK_MS)) $((n * TICK_MS))"
            else
                echo "$(((u + n + sy + steal) * TICK_MS)) 0"
            fi
            return
        fi
    done </proc/stat
}
tree_run_us() {     # CPU time of PID's processes, all threads, in us
    local total=0 p t ns
    for p in "$1" $(descendants "$1"); do
        for t in /proc/"$p"/task/*/schedstat; do
            { read -r ns _ <"$t"; } 2>/dev/null && total=$((total + ns / 1000))
        done
    done
    echo "$total"
}
# Sets CHILD_MS to the CPU time of the children this shell reaped (`times`);
# runs in this shell, not a subshell, or it would see none.
child_cpu_ms() {
    times >"$WORK/times.txt"
    local u s ms=0 f
    { read -r _; read -r u s; } <"$WORK/times.txt"
    for f in "$u" "$s"; do
        [[ $f =~ ^([0-9]+)m([0-9]+)\.([0-9]{3})s$ ]] &&
            ms=$((ms + 10#${BASH_REMATCH[1]} * 60000 + 10#${BASH_REMATCH[2]} * 1000 + 10#${BASH_REMATCH[3]}))
    done
    CHILD_MS=$ms
}

# extra_run_us NAME: CPU time (us) of the process that works for server NAME
# from outside its tree during a round (ROUND_PIDS: a rival tool), or 0.
extra_run_us() {
    local pid=${ROUND_PIDS[$1]:-}
    if [[ -n $pid ]]; then tree_run_us "$pid"; else echo 0; fi
}

# load_cmd NAME URL SCRIPT SECONDS OUT: sets LOAD_CMD to the client that
# loads server NAME (LOADGEN: wrk unless said) for SECONDS. wrk prints the
# BENCH line itself (bench/wrk/report.lua); h2load (the nginx_h2 group) is
# given the same line afterwards from its summary (bench/h2load_line.py). No
# --log-file for h2load: it would cost it one write(2) per request, on the
# CPU the spare-CPU collector shares, only to get latency percentiles.
load_cmd() {
    local name=$1 url=$2 script=$3 secs=$4
    case ${LOADGEN[$name]:-wrk} in
    wrk) LOAD_CMD=(wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 10s --latency -s "$script" "$url") ;;
    h2load) LOAD_CMD=(h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D "$secs" "$url") ;;
    esac
}

# run_wrk NAME TAG URL SCRIPT SECONDS: one bounded run of NAME's client
# (load_cmd: wrk, or h2load in the nginx_h2 group) against server
# NAME; sets W_RPS W_P50 W_P99 W_REQS W_ERRS, W_SRV and W_CPU_US (the
# server's CPU, ROUND_PIDS included) and W_EXTRA_US (ROUND_PIDS' share per
# request); W_SRV_US, the server's CPU time in the round (us, ROUND_PIDS
# included), and for a server with a collector (COLL_PID) W_COLL_US, the
# collector's, and W_COLL, its share of the CPU it is pinned to (charged to
# that CPU, not to "other load"). Returns 1 if wrk or the round hook failed,
# or the collector is gone.
run_wrk() {
    local name=$1 tag=$2 url=$3 script=$4 secs=$5
    local out="$WORK/wrk/$tag.txt" line
    local srv_a ext_a cpu0_a cpu1_a nice0_a nice1_a wrk_a t0 srv_b ext_b cpu0_b cpu1_b nice0_b nice1_b t1 win
    local hook=${ROUND_HOOK[$name]:-} hook_rc=0 coll coll_a=0 coll_b=0 coll_gone=0
    local tool=${LOADGEN[$name]:-wrk}
    load_cmd "$name" "$url" "$script" "$secs"
    if [[ -n $hook ]] && ! "$hook" start "$name" "$tag" "$secs"; then
        return 1        # the hook said why; nothing was measured
    fi
    coll=${COLL_PID[$name]:-}   # attach's hook makes one for its round
    srv_a=$(tree_run_us "${SERVER_PID[$name]}")
    ext_a=$(extra_run_us "$name")
    [[ -n $coll ]] && coll_a=$(tree_run_us "$coll")
    read -r cpu0_a nice0_a < <(cpu_busy_ms "$SRV_CPU")
    read -r cpu1_a nice1_a < <(cpu_busy_ms "$CLI_CPU")
    child_cpu_ms; wrk_a=$CHILD_MS
    t0=${EPOCHREALTIME/./}
    timeout -k 5 $((secs + 30)) taskset -c "$CLI_CPU" "${LOAD_CMD[@]}" >"$out" 2>&1
    local rc=$?
    t1=${EPOCHREALTIME/./}
    child_cpu_ms
    read -r cpu0_b nice0_b < <(cpu_busy_ms "$SRV_CPU")
    read -r cpu1_b nice1_b < <(cpu_busy_ms "$CLI_CPU")
    srv_b=$(tree_run_us "${SERVER_PID[$name]}")
    ext_b=$(extra_run_us "$name")
    [[ -n $coll ]] && coll_b=$(tree_run_us "$coll")
    [[ -n $coll ]] && ! kill -0 "$coll" 2>/dev/null && coll_gone=1
    if [[ -n $hook ]]; then "$hook" stop "$name" "$tag" || hook_rc=1; fi
    win=$(((t1 - t0) / 1000))
    ((win > 0)) || win=1
    local ext_us=$((ext_b - ext_a))
    local srv_us=$((srv_b - srv_a + ext_us))
    local srv_ms=$((srv_us / 1000))
    local coll_us=$((coll_b - coll_a)) coll_ms0=0 coll_ms1=0
    if ((coll_gone)); then
        failed "$tool $tag (server $name): its collector (pid $coll) is gone"
        coll_us=0
        hook_rc=1
    fi
    ((coll_us > 0)) || coll_us=0
    if [[ -n $coll && ${COLL_CPU[$name]} == "$SRV_CPU" ]]; then coll_ms0=$((coll_us / 1000))
    else coll_ms1=$((coll_us / 1000))
    fi
    W_SRV_US=$srv_us
    W_COLL_US=$coll_us
    W_COLL=$((100 * coll_us / 1000 / win))
    W_OTHER0=$((100 * (cpu0_b - cpu0_a - srv_ms - coll_ms0) / win))
    W_OTHER1=$((100 * (cpu1_b - cpu1_a - (CHILD_MS - wrk_a) - coll_ms1) / win))
    W_SRV=$((100 * srv_ms / win))       # the server's own use of its CPU
    W_NICED0=$((100 * (nice0_b - nice0_a) / win))
    W_NICED1=$((100 * (nice1_b - nice1_a) / win))
    ((W_OTHER0 > 0)) || W_OTHER0=0
    ((W_OTHER1 > 0)) || W_OTHER1=0
    # after the counters: this helper's CPU time is not the client's
    if [[ $tool == h2load ]]; then line=$("$PY" "$BENCH/h2load_line.py" "$out" 2>/dev/null)
    else line=$(grep -m1 '^BENCH ' "$out")
    fi
    if ((rc != 0)) || [[ -z $line ]]; then
        failed "$tool $tag (server $name) exited $rc: $(tail -n 2 "$out" | tr '\n' ' ')"
        return 1
    fi
    field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $line"; }
    W_RPS=$(field rps)
    W_P50=$(field p50_us)
    W_P99=$(field p99_us)
    W_REQS=$(field requests)
    W_ERRS=$(($(field errors_connect) + $(field errors_read) + $(field errors_write) +
              $(field errors_status) + $(field errors_timeout)))
    SERVER_REQS[$name]=$((SERVER_REQS[$name] + W_REQS))
    SERVER_RUNS[$name]=$((SERVER_RUNS[$name] + 1))
    if ((W_ERRS > 0)); then
        note "$tool $tag (server $name): $W_ERRS errors (${line#BENCH })"
    fi
    if ((W_REQS == 0)); then
        failed "$tool $tag (server $name): no request completed"
        return 1
    fi
    ((hook_rc == 0)) || return 1
    W_CPU_US=$((srv_us / W_REQS))              # server CPU per request, us
    W_EXTRA_US=$((ext_us / W_REQS))
}

# measure_cycles WORKLOAD PATH SCRIPT SERVER...: warm every server up, then
# BENCH_PAIRS cycles of one round each (order reversed on even cycles).
measure_cycles() {
    local workload=$1 path=$2 script=$3; shift 3
    local servers=("$@") name c i order extra
    for name in "${servers[@]}"; do
        [[ -n ${SERVER_PID[$name]:-} ]] || continue
        say "  warm-up $workload on $name (${WARM}s)"
        run_wrk "$name" "$workload-$name-warmup" "${SCHEME[$name]:-http}://127.0.0.1:${PORT[$name]}$path" "$script" "$WARM"
    done
    for ((c = 1; c <= PAIRS; c++)); do
        order=("${servers[@]}")
        if ((c % 2 == 0)); then
            order=()
            for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[$i]}"); done
        fi
        for name in "${order[@]}"; do
            [[ -n ${SERVER_PID[$name]:-} ]] || continue
            if run_wrk "$name" "$workload-$name-c$c" "${SCHEME[$name]:-http}://127.0.0.1:${PORT[$name]}$path" "$script" "$DUR"; then
                printf '%s/%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$name" \
                    "$c" "$W_RPS" "$W_P50" "$W_P99" "$W_REQS" "$W_ERRS" "$W_OTHER0" "$W_OTHER1" "$W_SRV" \
                    "$W_CPU_US" "$W_SRV_US" "$W_COLL_US" "$W_COLL" >>"$WORK/results.tsv"
                extra=
                case ${ROUND_HOOK[$name]:-} in
                attach_hook)
                    extra=" (kernel side: $((ATTACH_KNS[$name] / W_REQS)) ns per request)"
                    printf '%s/%s\t%d\t%s\n' "$workload" "$name" "$c" \
                        "$((ATTACH_KNS[$name] / W_REQS))" >>"$WORK/kernel.tsv" ;;
                rival_hook) extra=" (${RIVAL_KIND[$name]}: ${W_EXTRA_US}us)" ;;
                esac
                [[ -n ${COLL_PID[$name]:-} ]] &&
                    extra+="; collector on CPU ${COLL_CPU[$name]}: ${W_COLL}%, $((W_COLL_US / W_REQS)).$((W_COLL_US * 10 / W_REQS % 10))us per request"
                say "  cycle $c/$PAIRS $workload $name: $(printf '%.0f' "$W_RPS") req/s," \
                    "$( ((W_P50 > 0)) && echo "p50 ${W_P50}us, p99 ${W_P99}us" || echo "no latency figures");" \
                    "server used ${W_SRV}% of CPU $SRV_CPU, ${W_CPU_US}us per request$extra;" \
                    "others used ${W_OTHER0}%" \
                    "of CPU $SRV_CPU, ${W_OTHER1}% of CPU $CLI_CPU (niced: ${W_NICED0}%, ${W_NICED1}%)"
            fi
        done
    done
}

row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$WORK/rows.tsv"; }

# CPU busy share (all CPUs) over one second while this script runs nothing:
# anything else running on the machine skews the ratios. Work at a positive
# nice value (column 2 of /proc/stat) is reported apart: it yields the CPU
# to the servers and wrk, so it matters far less.
check_idle() {
    local a b
    read -ra a </proc/stat; sleep 1; read -ra b </proc/stat
    local total=0 idle nice i
    for ((i = 1; i < ${#a[@]}; i++)); do total=$((total + b[i] - a[i])); done
    ((total > 0)) || total=1
    idle=$((b[4] - a[4] + b[5] - a[5]))
    nice=$((b[2] - a[2]))
    local busy=$((100 * (total - idle - nice) / total)) niced=$((100 * nice / total))
    if ((busy > 10)); then
        note "the machine was ${busy}% busy with other work $1 (plus ${niced}% niced; one-second sample): ratios are noisier than usual"
    else
        say "machine idle check $1: ${busy}% busy, ${niced}% niced"
    fi
}

# ---- logs: valid JSON lines, and counts that add up ---------------------------------

declare -A APP_LOG=()       # name -> the baseline app's own JSON-lines log
declare -A SERVER_BODY=()   # name -> the file every request to it gets (nginx): "whole" checks the bodies
JQ_FULL_MAX=$((64 * 1024 * 1024))

# check_file LOG [BODY]: every line strict JSON (bench/check_log.py, which also
# counts records; its summary is appended to logcheck.jsonl) and, as a second
# opinion, jq: over the whole log when it is small, over its first and last
# 20000 lines otherwise (jq reads ~15 MB/s here; the Python check reads all).
check_file() {
    local log=$1 body=()
    [[ -e $log ]] || return 0
    [[ -n ${2:-} ]] && body=(--body "$2")
    local jq_in
    if (($(stat -c %s "$log") <= JQ_FULL_MAX)); then
        jq_in=(cat "$log")
    else
        # shellcheck disable=SC2016  # $1 is sh's
        jq_in=(sh -c 'head -n 20000 "$1"; tail -n 20000 "$1"' sh "$log")
    fi
    if ! "${jq_in[@]}" | jq -c 'if type == "object" then empty else error("not an object") end' \
            >/dev/null 2>"$WORK/out/jq.err"; then
        note "${log##*/}: jq: not valid JSON lines: $(head -n 1 "$WORK/out/jq.err")"
    fi
    "$PY" "$BENCH/check_log.py" "${body[@]}" "$log" >>"$WORK/logcheck.jsonl" ||
        failed "bench/check_log.py failed on ${log##*/}"
}

# check_counts NAME: the server's httptape log against what wrk (h2load) and
# the other clients sent. Every request wrk completed must be there; at most
# INFLIGHT (CONNS for wrk) more per run (requests in flight when wrk
# stopped). Records the drops as the resource drops_NAME ("dropped seen
# queue_full records_lost record_bytes_lost whole sent slack": whole, the
# exchanges logged whole, of the sent requests the clients completed; slack,
# the most that may have been in flight at the runs' ends), and for a server
# with a collector collrate_NAME ("written collector_us": the collector's CPU
# over its life).
check_counts() {
    local name=$1 log=${SERVER_LOG[$1]}
    local s
    s=$(jq -c --arg f "$log" 'select(.file == $f)' "$WORK/logcheck.jsonl")
    [[ -n $s ]] || { note "$name: no log at ${log##*/}"; return; }
    local ex inc bad nfinal seen written dropped perr gaps qfull rlost rblost whole
    read -r ex inc bad nfinal seen written dropped qfull perr gaps rlost rblost whole < <(jq -r '
        [.exchanges, .incomplete, .bad_lines, (.final | length),
         ([.final[].exchanges_seen] | add // 0), ([.final[].exchanges_written] | add // 0),
         ([.final[].exchanges_dropped] | add // 0), ([.final[].dropped_queue_full] | add // 0),
         ([.final[].parse_errors] | add // 0), ([.final[].capture_gaps] | add // 0),
         ([.final[].records_lost // 0] | add // 0), ([.final[].record_bytes_lost // 0] | add // 0),
         (.whole // 0)] | @tsv' <<<"$s")
    local sent=$((SERVER_REQS[$name] + SERVER_EXTRA[$name])) slack=$((${INFLIGHT[$name]:-$CONNS} * SERVER_RUNS[$name]))
    say "  $name: $ex exchanges logged ($inc incomplete); final stats: seen $seen, written $written," \
        "dropped $dropped, records lost $rlost ($rblost bytes); $whole exchanges whole; clients completed $sent requests"
    ((bad == 0)) || note "$name: $bad lines of ${log##*/} are not JSON objects ($(jq -r .first_bad <<<"$s"))"
    if ((nfinal == 0)); then
        note "$name: no final statistics record in ${log##*/}"
        return
    fi
    resource "drops_$name" "$dropped $seen $qfull $rlost $rblost $whole $sent $slack"
    [[ -n ${COLL_TOTAL_US[$name]:-} ]] && resource "collrate_$name" "$written ${COLL_TOTAL_US[$name]}"
    ((rlost == 0)) || note "$name: $rlost capture records ($rblost bytes) lost: the ring was full"
    ((whole >= sent)) || note "$name: $whole exchanges logged whole; clients completed $sent requests"
    ((seen == written + dropped)) ||
        note "$name: final stats do not add up: seen $seen != written $written + dropped $dropped"
    ((written == ex)) || note "$name: final stats say $written written but the log holds $ex exchanges"
    ((seen >= sent && seen <= sent + slack)) ||
        note "$name: httptape saw $seen exchanges; clients completed $sent (expected $sent..$((sent + slack)))"
    ((inc <= slack)) || note "$name: $inc incomplete exchanges (more than the $slack requests ${LOADGEN[$name]:-wrk} can leave in flight)"
    ((perr == 0)) || note "$name: $perr parse errors"
    ((gaps == 0)) || note "$name: $gaps capture gaps"
    ((dropped == 0)) || note "$name: $dropped of $seen exchanges dropped ($qfull because the queue was full)"
    if [[ -n ${ATTACH_TARGET[$name]:-} ]]; then
        # One attach run per wrk run, each closing the log with its own final
        # record; wrk's requests are all made while attached.
        local runs=${ATTACH_RUNS[$name]}
        resource "attach_$name" "$dropped $seen $qfull $gaps $runs"
        ((nfinal == runs)) ||
            note "$name: $nfinal final statistics records in ${log##*/} for $runs attach runs"
        ((ATTACH_SAID[$name] == 0)) ||
            note "$name: httptape attach wrote to stderr in ${ATTACH_SAID[$name]} of $runs runs (first: ${ATTACH_FIRST[$name]})"
    fi
}

# check_app_log NAME: a baseline app's own log, one line per request answered.
check_app_log() {
    local name=$1 log=${APP_LOG[$1]} lines bad
    [[ -e $log ]] || { note "$name: no app log ${log##*/}"; return; }
    read -r lines bad < <(jq -r --arg f "$log" 'select(.file == $f) | [.lines, .bad_lines] | @tsv' \
        "$WORK/logcheck.jsonl")
    local sent=${SERVER_REQS[$name]:-0} slack=$((CONNS * ${SERVER_RUNS[$name]:-0}))
    say "  $name: $lines lines in its own log; wrk completed $sent requests"
    ((bad == 0)) || note "$name: $bad lines of ${log##*/} are not JSON objects"
    ((lines >= sent && lines <= sent + slack)) ||
        note "$name: its log has $lines lines; wrk completed $sent requests"
}

# check_logs NAME...: once the servers have stopped, check their logs, then
# delete them (unless BENCH_KEEP=1): gigabytes of logs left for the kernel
# to write back would disturb the next group.
check_logs() {
    local name
    for name in "$@"; do
        if [[ -n ${SERVER_LOG[$name]:-} ]]; then
            check_file "${SERVER_LOG[$name]}" "${SERVER_BODY[$name]:-}"
            check_counts "$name"
            [[ ${BENCH_KEEP:-0} == 1 ]] || rm -f "${SERVER_LOG[$name]}"
        fi
        if [[ -n ${APP_LOG[$name]:-} ]]; then
            check_file "${APP_LOG[$name]}"
            check_app_log "$name"
            [[ ${BENCH_KEEP:-0} == 1 ]] || rm -f "${APP_LOG[$name]}"
        fi
    done
}

# ---- httptape attach: attached for each wrk run ------------------------------------

# An attach server is a plain server (started like the untapped one) with a
# round hook: before each wrk run against it, warm-up included, `httptape
# attach --kernel-stats` is started pinned to the spare CPU or to the
# server's (PLACE, as the collector of the run rows), and wrk starts only once
# attach has printed its "attached to pid" line (its programs are in place);
# after wrk, attach gets SIGINT and detaches. Attaching (a fraction of a
# second) and detaching (about a second) are outside the measured window.
# During the window the attach process is the row's collector (COLL_PID: its
# CPU time is counted apart and added, as for the run rows); the BPF
# programs run in the server's threads, so their time is the server's, and
# attach's "kernel side" line gives it (ATTACH_KNS: all our programs' run
# time during the round, printed per request). Every run appends to the
# server's one log and closes it with its own final statistics record
# (under attach's own pid).
declare -A ATTACH_TARGET=() # name -> the pid attach records (uvicorn; nginx's worker)
declare -A ATTACH_RUNS=()   # name -> attach runs that attached
declare -A ATTACH_SAID=()   # name -> runs in which attach wrote to stderr
declare -A ATTACH_FIRST=()  # name -> the first such line
declare -A ATTACH_CPU=()    # name -> the CPU attach runs on
declare -A ATTACH_KNS=()    # name -> ns its BPF programs ran during the last round
ATTACH_WAIT=15              # seconds for attach to say "attached"
ATTACH_STOP_WAIT=30         # seconds for it to detach and exit after SIGINT

# attach_server NAME TARGET_PID LOG PLACE: makes server NAME an attach
# server, attach on the spare CPU (PLACE spare) or the server's (same).
attach_server() {
    local name=$1 target=$2 log=$3 place=$4
    [[ -n ${SERVER_PID[$name]:-} && -n $target ]] || return 1
    ATTACH_CPU[$name]=$SRV_CPU
    [[ $place == spare ]] && ATTACH_CPU[$name]=$CLI_CPU
    ATTACH_TARGET[$name]=$target
    SERVER_LOG[$name]=$log
    ATTACH_RUNS[$name]=0
    ATTACH_SAID[$name]=0
    ROUND_HOOK[$name]=attach_hook
}

# shellcheck disable=SC2317  # reached through ROUND_HOOK (and cleanup)
attach_hook() {     # start NAME TAG SECONDS | stop NAME TAG
    case $1 in
    start) attach_start "$2" "$3" "$4" ;;
    stop) attach_stop "$2" "$3" ;;
    esac
}

# attach_start NAME TAG SECONDS: attach to NAME's target for a wrk run of
# SECONDS; returns once attached (ATTACH_WAIT s at most), 1 if it did not.
# --duration only bounds it should this script die without cleaning up: it
# outlasts the longest wrk run (timeout SECONDS + 30, then 5 s to the kill).
# shellcheck disable=SC2317  # reached through ROUND_HOOK (and cleanup)
attach_start() {
    local name=$1 tag=$2 secs=$3 pid
    local out=$WORK/out/$tag.attach.out err=$WORK/out/$tag.attach.err
    taskset -c "${ATTACH_CPU[$name]}" "$HTTPTAPE" attach --pid "${ATTACH_TARGET[$name]}" --kernel-stats \
        --log "${SERVER_LOG[$name]}" --duration $((secs + 60)) >"$out" 2>"$err" </dev/null &
    pid=$!
    ATTACH_PID[$name]=$pid
    local deadline=$((SECONDS + ATTACH_WAIT))
    until grep -q '^httptape attach: attached to pid' "$out" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
            attach_end "$name"
            failed "httptape attach to $name (pid ${ATTACH_TARGET[$name]}, $tag) did not attach within" \
                "${ATTACH_WAIT} s (exit $ATTACH_RC): $(cat "$out" "$err" 2>/dev/null | tail -n 2 | tr '\n' ' ')"
            return 1
        fi
        sleep 0.05
    done
    ATTACH_RUNS[$name]=$((ATTACH_RUNS[$name] + 1))
    COLL_PID[$name]=$pid
    COLL_CPU[$name]=${ATTACH_CPU[$name]}
}

# attach_end NAME: SIGINT to NAME's attach process, ATTACH_STOP_WAIT s for it
# to detach and exit, then SIGKILL (the kernel removes its programs when its
# descriptors close). Sets ATTACH_RC to its exit status.
# shellcheck disable=SC2317  # reached through ROUND_HOOK (and cleanup)
attach_end() {
    local name=$1 pid=${ATTACH_PID[$1]:-}
    ATTACH_RC=0
    [[ -n $pid ]] || return 0
    unset "COLL_PID[$name]"
    kill -INT "$pid" 2>/dev/null
    local deadline=$((SECONDS + ATTACH_STOP_WAIT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS > deadline)); then
            note "httptape attach on $name did not exit within ${ATTACH_STOP_WAIT} s of SIGINT; killed"
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null
    ATTACH_RC=$?
    unset "ATTACH_PID[$name]"
}

# attach_stop NAME TAG: detach after the wrk run; returns 1 (the round is
# void) if attach had ended before the run did or did not detach cleanly.
# shellcheck disable=SC2317  # reached through ROUND_HOOK (and cleanup)
attach_stop() {
    local name=$1 tag=$2 alive=1
    local out=$WORK/out/$tag.attach.out err=$WORK/out/$tag.attach.err
    [[ -n ${ATTACH_PID[$name]:-} ]] || return 0
    kill -0 "${ATTACH_PID[$name]}" 2>/dev/null || alive=0
    attach_end "$name"
    if [[ -s $err ]]; then
        ATTACH_SAID[$name]=$((ATTACH_SAID[$name] + 1))
        [[ -n ${ATTACH_FIRST[$name]:-} ]] || ATTACH_FIRST[$name]="$tag: $(head -n 1 "$err")"
    fi
    if ((!alive)); then
        failed "httptape attach on $name ended before the wrk run did ($tag, exit $ATTACH_RC):" \
            "$(cat "$out" "$err" | tail -n 2 | tr '\n' ' ')"
        return 1
    fi
    if ((ATTACH_RC != 0)) || ! grep -q '^httptape attach: detached from pid' "$out"; then
        failed "httptape attach on $name ($tag) exited $ATTACH_RC after SIGINT, without its 'detached' line:" \
            "$(cat "$out" "$err" | tail -n 2 | tr '\n' ' ')"
        return 1
    fi
    ATTACH_KNS[$name]=$(sed -n 's/^httptape attach: kernel side: \([0-9]*\) ns.*/\1/p' "$out")
    if [[ -z ${ATTACH_KNS[$name]} ]]; then
        ATTACH_KNS[$name]=0
        note "httptape attach on $name ($tag) printed no kernel-side figure"
    fi
}

# nginx_worker NAME: sets NGINX_WORKER to the pid of nginx NAME's one worker
# (the master's only child), waiting 10 s at most for it.
nginx_worker() {
    local master=${SERVER_PID[$1]:-} kids deadline=$((SECONDS + 10))
    NGINX_WORKER=
    [[ -n $master ]] || return 1
    while :; do
        kids=$(ps -o pid= --ppid "$master" | tr -d ' ')
        if [[ -n $kids && $(wc -w <<<"$kids") -eq 1 ]]; then
            NGINX_WORKER=$kids
            return 0
        fi
        if ((SECONDS > deadline)); then
            failed "nginx $1: expected one worker under master $master, found: ${kids:-none}"
            return 1
        fi
        sleep 0.1
    done
}

# ---- the rival tools: tcpdump, httpry, tshark, mitmdump (nginx_rivals) -------------

# A rival row is a plain nginx like the untapped one, and a tool that runs
# only during that server's own wrk runs, warm-up included (a round hook, as
# for attach): started pinned to the server's CPU before wrk; wrk starts once
# the tool says it is capturing (mitmdump: once its port accepts); after wrk
# and the counters, the tool gets SIGINT and the script waits for it to write
# out and exit. Its CPU time during the window is the server's (ROUND_PIDS);
# its CPU time over the whole run, catch-up after the window included, is
# kept apart (RIVAL_CPU). One output file per run, counted by bench/rivals.py
# once the group has stopped. The capture tools filter on nginx's port in the
# kernel (BPF), so the other servers' rounds cost them nothing; mitmdump is a
# reverse proxy, and wrk talks to it (PORT[NAME] is mitmdump's port).
declare -A RIVAL_KIND=()    # name -> tcpdump | httpry | tshark | mitmdump
declare -A RIVAL_NGINX=()   # name -> its nginx's port
declare -A RIVAL_FILES=()   # name -> the output files of its runs
declare -A RIVAL_ERRS=()    # name -> the tool's stderr files (closing statistics)
declare -A RIVAL_CPU=()     # name -> the tool's CPU time over all its runs, ms
declare -A RIVAL_CPU_A=()   # name -> CHILD_MS before the running tool was reaped
RIVAL_WAIT=30               # seconds for a tool to start capturing or listening
RIVAL_STOP_WAIT=120         # seconds for it to write out and exit after SIGINT
RIVAL_TOOLS=(tcpdump httpry tshark mitmdump)
declare -A RIVAL_PACKAGE=([tcpdump]=tcpdump [httpry]=httpry [tshark]=tshark [mitmdump]=mitmproxy)
RIVALS_HAVE=()              # the tools present (rows to run)
read -ra TSHARK_FIELDS <<<"$("$PY" "$BENCH/rivals.py" fields)"

# bench_deps: sets RIVALS_HAVE. A missing tool is installed on demand
# (scripts/install-deps.sh --bench: as root, or through sudo; not with
# BENCH_INSTALL=0); one still missing after that leaves its row out, with
# a note.
bench_deps() {
    local t miss=()
    for t in "${RIVAL_TOOLS[@]}"; do command -v "$t" >/dev/null 2>&1 || miss+=("$t"); done
    if ((${#miss[@]})) && [[ ${BENCH_INSTALL:-1} != 0 ]]; then
        say "installing the rival tools missing here (${miss[*]}): scripts/install-deps.sh --bench"
        timeout 900 "$REPO/scripts/install-deps.sh" --bench </dev/null >"$WORK/out/install-deps.out" 2>&1 ||
            say "scripts/install-deps.sh --bench failed: $(tail -n 1 "$WORK/out/install-deps.out")"
    fi
    RIVALS_HAVE=()
    for t in "${RIVAL_TOOLS[@]}"; do
        if command -v "$t" >/dev/null 2>&1; then
            RIVALS_HAVE+=("$t")
        else
            note "$t is not installed and could not be installed: the nginx $t row is skipped (apt-get install ${RIVAL_PACKAGE[$t]})"
        fi
    done
}

# shellcheck disable=SC2317  # reached through ROUND_HOOK
rival_hook() {      # start NAME TAG SECONDS | stop NAME TAG
    case $1 in
    start) rival_start "$2" "$3" "$4" ;;
    stop) rival_stop "$2" "$3" ;;
    esac
}

# rival_start NAME TAG SECONDS: the tool of rival row NAME, for one wrk run
# of SECONDS; returns once it captures or listens (RIVAL_WAIT s at most).
# timeout(1) bounds it should this script die without cleaning up; it
# passes SIGINT on to the tool.
# shellcheck disable=SC2317  # reached through ROUND_HOOK
rival_start() {
    local name=$1 tag=$2 secs=$3 kind=${RIVAL_KIND[$1]} np=${RIVAL_NGINX[$1]}
    local base=$WORK/rivals/$tag out=$WORK/out/$tag.rival.out err=$WORK/out/$tag.rival.err
    local file ready='' cmd pid f
    case $kind in
    tcpdump)        # -Z root: Debian's tcpdump drops to user tcpdump, which cannot write here
        file=$base.pcap ready='listening on'
        cmd=(tcpdump -i lo -Z root -w "$file" "tcp port $np") ;;
    httpry)
        file=$base.httpry.log ready='Starting capture'
        cmd=(httpry -i lo -o "$file" "tcp port $np") ;;
    tshark)         # the records go to stdout: the file
        file=$base.tshark.tsv out=$file ready='Capturing on'
        cmd=(tshark -n -i lo -f "tcp port $np" -Y http -T fields)
        for f in "${TSHARK_FIELDS[@]}"; do cmd+=(-e "$f"); done ;;
    mitmdump)       # -q: flows saved, not printed
        file=$base.flows
        cmd=(mitmdump -q --mode "reverse:http://127.0.0.1:$np" --listen-host 127.0.0.1
             --listen-port "${PORT[$name]}" -w "$file") ;;
    esac
    taskset -c "$SRV_CPU" timeout -s INT -k 10 $((secs + 60 + RIVAL_STOP_WAIT)) "${cmd[@]}" \
        >"$out" 2>"$err" </dev/null &
    pid=$!
    RIVAL_PID[$name]=$pid
    RIVAL_FILES[$name]+=" $file"
    RIVAL_ERRS[$name]+=" $err"
    local deadline=$((SECONDS + RIVAL_WAIT))
    while :; do
        if [[ -n $ready ]]; then grep -q "$ready" "$err" 2>/dev/null && break
        else port_open "${PORT[$name]}" && break
        fi
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS > deadline)); then
            rival_end "$name"
            failed "$kind for $name ($tag) did not start within ${RIVAL_WAIT} s: $(tail -n 2 "$err" | tr '\n' ' ')"
            return 1
        fi
        sleep 0.05
    done
    ROUND_PIDS[$name]=$pid
}

# rival_end NAME: SIGINT to NAME's tool, RIVAL_STOP_WAIT s for it to write
# out and exit, then SIGKILL; adds its CPU time to RIVAL_CPU. Sets RIVAL_RC.
# shellcheck disable=SC2317  # reached through ROUND_HOOK (and cleanup)
rival_end() {
    local name=$1 pid=${RIVAL_PID[$1]:-} p
    RIVAL_RC=0
    [[ -n $pid ]] || return 0
    unset "ROUND_PIDS[$name]"
    # The shell's reaped-children time before and after reaping the tool
    # (and nothing else: wrk has been reaped already) is the tool's CPU time.
    child_cpu_ms
    RIVAL_CPU_A[$name]=$CHILD_MS
    kill -INT "$pid" 2>/dev/null
    local deadline=$((SECONDS + RIVAL_STOP_WAIT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS > deadline)); then
            note "${RIVAL_KIND[$name]} on $name did not exit within ${RIVAL_STOP_WAIT} s of SIGINT; killed"
            for p in $(descendants "$pid") "$pid"; do kill -KILL "$p" 2>/dev/null; done
            break
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null
    RIVAL_RC=$?
    child_cpu_ms
    RIVAL_CPU[$name]=$((${RIVAL_CPU[$name]:-0} + CHILD_MS - ${RIVAL_CPU_A[$name]:-$CHILD_MS}))
    unset "RIVAL_PID[$name]"
}

# rival_stop NAME TAG: after the wrk run; 1 (the round is void) if the tool
# had ended before the run did.
# shellcheck disable=SC2317  # reached through ROUND_HOOK
rival_stop() {
    local name=$1 tag=$2 alive=1 t0=$SECONDS
    [[ -n ${RIVAL_PID[$name]:-} ]] || return 0
    kill -0 "${RIVAL_PID[$name]}" 2>/dev/null || alive=0
    rival_end "$name"
    ((SECONDS - t0 < 5)) || say "  ${RIVAL_KIND[$name]} ($tag) took $((SECONDS - t0)) s to write out and exit"
    if ((!alive)); then
        failed "${RIVAL_KIND[$name]} on $name ended before the wrk run did ($tag, exit $RIVAL_RC):" \
            "$(tail -n 2 "$WORK/out/$tag.rival.err" | tr '\n' ' ')"
        return 1
    fi
}

# rival_count NAME KIND FILE...: what NAME recorded, against the requests
# its clients completed (bench/rivals.py; outside every timed window).
rival_count() {
    local name=$1 kind=$2; shift 2
    local errs=() e
    for e in ${RIVAL_ERRS[$name]:-}; do errs+=(--stderr "$e"); done
    "$PY" "$BENCH/rivals.py" count --out "$WORK/rivals.jsonl" --key "$RIVAL_WORKLOAD/$name" --kind "$kind" \
        --body "$WORK/www/small.txt" --sent $((SERVER_REQS[$name] + SERVER_EXTRA[$name])) \
        --runs "${SERVER_RUNS[$name]:-0}" ${RIVAL_CPU[$name]:+--tool-cpu-ms "${RIVAL_CPU[$name]}"} \
        ${errs[@]+"${errs[@]}"} -- "$@" 2>"$WORK/out/rivals-$name.err" | while read -r line; do say "  $line"; done
    [[ ${PIPESTATUS[0]} == 0 ]] ||
        failed "bench/rivals.py could not count $name: $(tail -n 1 "$WORK/out/rivals-$name.err")"
}

# ---- plan -----------------------------------------------------------------------

# httptape attach rows: only where BPF programs can be loaded (root or
# CAP_BPF + CAP_PERFMON, a kernel with BTF, a build with the BPF toolchain).
ATTACH_OK=0
if attach_check=$(timeout 60 "$HTTPTAPE" attach --check 2>&1); then
    ATTACH_OK=1
else
    note "httptape attach rows skipped: \`httptape attach --check\` says: $(tail -n 1 <<<"$attach_check")"
fi
# Servers per group, the attach server included where attach works.
n_attach=0 n_servers=0
want fastapi && n_servers=$((n_servers + 6 + ATTACH_OK)) n_attach=$((n_attach + ATTACH_OK))
want nginx100 && n_servers=$((n_servers + 4 + 2 * ATTACH_OK)) n_attach=$((n_attach + 2 * ATTACH_OK))
want nginx20k && n_servers=$((n_servers + 4 + 2 * ATTACH_OK)) n_attach=$((n_attach + 2 * ATTACH_OK))
want nginx_tls && n_servers=$((n_servers + 3))
if want nginx_h2 && ! ((HAVE_H2LOAD)); then
    note "h2load is not installed: the nginx_h2 group is skipped (apt-get install nghttp2-client)"
    GROUPS_SEL=${GROUPS_SEL/ nginx_h2 / }
fi
want nginx_h2 && n_servers=$((n_servers + 3))
want echo1m && n_servers=$((n_servers + 2))
n_rivals=0
if want nginx_rivals; then
    bench_deps
    n_rivals=${#RIVALS_HAVE[@]}
    n_servers=$((n_servers + 2 + HAVE_STRACE + n_rivals))
fi

rounds=$((PAIRS * n_servers))
warmups=$n_servers
# each attach run: ~0.2 s to attach, ~1 s to detach; each rival run about
# 2 s to start and stop its tool; counting what the rivals recorded, about
# a minute; the resource figures, about 90 s
estimate=$((rounds * DUR + rounds / 2 + warmups * WARM + warmups / 2 + 2 * (PAIRS + 1) * n_attach +
            2 * (PAIRS + 1) * n_rivals + (n_rivals ? 60 : 0) + $(want resources && echo 90 || echo 10)))
LIMIT=${BENCH_TIMEOUT:-$((2 * estimate + 300))}
say "$rounds measured rounds of ${DUR}s ($PAIRS cycles), warm-ups, resource figures and log checks:" \
    "expect about $((estimate / 60)) min $((estimate % 60)) s; abandoned after ${LIMIT}s"
say "scratch directory: $WORK"
(sleep "$LIMIT" && say "BENCH_TIMEOUT (${LIMIT}s) reached" && kill -TERM $$) 2>/dev/null &
WATCHDOG=$!
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
# This script and its helpers (checks, jq, python) stay off the server's CPU.
taskset -p -c "$CLI_CPU" $$ >/dev/null
check_idle "before the run"

# ---- 1. uvicorn + FastAPI, POST /submit, small JSON --------------------------------

UVICORN=("$PY" -m uvicorn --app-dir "$BENCH" --host 127.0.0.1 --no-access-log --log-level warning)
declare -A PORT=()
resource groups "${GROUPS_SEL# }"

if want fastapi; then   # the whole section

FA_SERVERS=(fa_bare fa_tape fa_tapes fa_mw fa_asgi fa_strace)
((ATTACH_OK)) && FA_SERVERS+=(fa_attach)
say "uvicorn + FastAPI: starting ${#FA_SERVERS[@]} servers on CPU $SRV_CPU"
for name in "${FA_SERVERS[@]}"; do PORT[$name]=$(free_port); done
start_server fa_bare "${PORT[fa_bare]}" "${UVICORN[@]}" --port "${PORT[fa_bare]}" app_bare:app
start_tapped fa_tape "${PORT[fa_tape]}" spare "$WORK/logs/fastapi-httptape.jsonl" -- \
    "${UVICORN[@]}" --port "${PORT[fa_tape]}" app_bare:app
start_tapped fa_tapes "${PORT[fa_tapes]}" same "$WORK/logs/fastapi-httptape-same.jsonl" -- \
    "${UVICORN[@]}" --port "${PORT[fa_tapes]}" app_bare:app
APP_LOG[fa_mw]=$WORK/logs/fastapi-middleware.app.jsonl
APP_LOG[fa_asgi]=$WORK/logs/fastapi-asgi.app.jsonl
start_server fa_mw "${PORT[fa_mw]}" env BENCH_APP_LOG="${APP_LOG[fa_mw]}" \
    "${UVICORN[@]}" --port "${PORT[fa_mw]}" app_middleware:app
start_server fa_asgi "${PORT[fa_asgi]}" env BENCH_APP_LOG="${APP_LOG[fa_asgi]}" \
    "${UVICORN[@]}" --port "${PORT[fa_asgi]}" app_asgi:app
if ((HAVE_STRACE)); then
    start_server fa_strace "${PORT[fa_strace]}" strace -f -s 65536 -o "$WORK/logs/fastapi.strace" \
        "${UVICORN[@]}" --port "${PORT[fa_strace]}" app_bare:app
else
    note "strace is not installed: the strace row is skipped (apt-get install strace)"
fi
# httptape attach: a plain uvicorn (like fa_bare), attached for each of its
# wrk runs (the attach section above).
if ((ATTACH_OK)); then
    if ! { start_server fa_attach "${PORT[fa_attach]}" "${UVICORN[@]}" --port "${PORT[fa_attach]}" app_bare:app &&
           attach_server fa_attach "${SERVER_PID[fa_attach]}" "$WORK/logs/fastapi-attach.jsonl" same; }; then
        stop_server fa_attach       # never measured without attach under its row
    fi
fi
for name in "${FA_SERVERS[@]}"; do check_affinity "$name"; done

row fastapi/fa_bare   "uvicorn+FastAPI POST /submit: untapped"                      fastapi/fa_bare
row fastapi/fa_tape   "uvicorn+FastAPI: httptape run, collector on the spare CPU"   fastapi/fa_bare
row fastapi/fa_tapes  "uvicorn+FastAPI: httptape run, collector on the server's CPU" fastapi/fa_bare
row fastapi/fa_mw     "uvicorn+FastAPI: body-logging @app.middleware(\"http\")"      fastapi/fa_bare
row fastapi/fa_asgi   "uvicorn+FastAPI: raw-ASGI stack (body cache, timing, JSON log)" fastapi/fa_bare
row fastapi/fa_strace "uvicorn+FastAPI: strace -f -s 65536 -o FILE"                  fastapi/fa_bare
((ATTACH_OK)) &&
    row fastapi/fa_attach "uvicorn+FastAPI: httptape attach, attach on the server's CPU" fastapi/fa_bare

measure_cycles fastapi /submit "$WRK_DIR/post_json.lua" "${FA_SERVERS[@]}"
coll_snapshot "${FA_SERVERS[@]}"
for name in "${FA_SERVERS[@]}"; do stop_server "$name"; done
say "checking the FastAPI logs"
check_logs fa_tape fa_tapes fa_mw fa_asgi fa_attach
[[ ${BENCH_KEEP:-0} == 1 ]] || rm -f "$WORK/logs/fastapi.strace"
check_idle "after the FastAPI rounds"
fi  # want fastapi

# ---- 2. nginx, 1 worker: 100-byte and 20 KB static files (sendfile) ----------------------

head -c 100 /dev/urandom | base64 -w0 | head -c 100 >"$WORK/www/small.txt"
head -c 20480 /dev/urandom >"$WORK/www/big.bin"

# nginx_conf NAME PORT: writes conf/NAME/nginx.conf from bench/nginx.conf.in.
nginx_conf() {
    local dir=$WORK/nginx/$1
    mkdir -p "$dir/temp"
    ln -sfn "$WORK/www" "$dir/www"
    sed -e "s#@DIR@#$dir#g" -e "s#@PORT@#$2#g" "$BENCH/nginx.conf.in" >"$dir/nginx.conf"
    NGINX=(nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf")
}

# nginx_group WORKLOAD PATH LABEL: four fresh nginx (untapped; httptape,
# default settings, with the collector on the spare CPU and on the server's;
# httptape --max-body 0, collector on the spare CPU), and a fifth under
# httptape attach when
# attach works here, measured on one file, then stopped and their logs
# checked. One group per file keeps each tapped log (and its
# drop count) to one workload.
nginx_group() {
    local w=$1 path=$2 label=$3 name
    local plain=${w/nginx/ng}_plain tape=${w/nginx/ng}_tape tape0=${w/nginx/ng}_tape0 att=${w/nginx/ng}_attach
    local tapes=${w/nginx/ng}_tapes atts=${w/nginx/ng}_attachs
    local servers=("$plain" "$tape" "$tapes" "$tape0")
    ((ATTACH_OK)) && servers+=("$att" "$atts")
    say "nginx, $label: starting ${#servers[@]} servers (1 worker each) on CPU $SRV_CPU"
    for name in "${servers[@]}"; do PORT[$name]=$(free_port); done
    nginx_conf "$plain" "${PORT[$plain]}"
    start_server "$plain" "${PORT[$plain]}" "${NGINX[@]}"
    nginx_conf "$tape" "${PORT[$tape]}"
    start_tapped "$tape" "${PORT[$tape]}" spare "$WORK/logs/$w-httptape.jsonl" -- "${NGINX[@]}"
    nginx_conf "$tapes" "${PORT[$tapes]}"
    start_tapped "$tapes" "${PORT[$tapes]}" same "$WORK/logs/$w-httptape-same.jsonl" -- "${NGINX[@]}"
    nginx_conf "$tape0" "${PORT[$tape0]}"
    start_tapped "$tape0" "${PORT[$tape0]}" spare "$WORK/logs/$w-httptape-maxbody0.jsonl" --max-body 0 -- \
        "${NGINX[@]}"
    # --max-body 0 logs no content: whole there is a complete exchange of the right size
    for name in "$tape" "$tapes" "$att" "$atts"; do SERVER_BODY[$name]=$WORK/www$path; done
    if ((ATTACH_OK)); then
        # A plain nginx; attach records its one worker (the process that
        # accepts and serves), not the master.
        local a place
        for a in "$att" "$atts"; do
            place=spare
            [[ $a == "$atts" ]] && place=same
            nginx_conf "$a" "${PORT[$a]}"
            if ! { start_server "$a" "${PORT[$a]}" "${NGINX[@]}" && nginx_worker "$a" &&
                   attach_server "$a" "$NGINX_WORKER" "$WORK/logs/$w-$a.jsonl" "$place"; }; then
                stop_server "$a"    # never measured without attach under its row
            fi
        done
    fi
    sleep 0.5     # the workers
    for name in "${servers[@]}"; do check_affinity "$name"; done
    row "$w/$plain" "$label: untapped" "$w/$plain"
    row "$w/$tape" "$label: httptape, collector on the spare CPU (bodies up to 4 KiB)" "$w/$plain"
    row "$w/$tapes" "$label: httptape, collector on the server's CPU (bodies up to 4 KiB)" "$w/$plain"
    row "$w/$tape0" "$label: httptape --max-body 0, collector on the spare CPU" "$w/$plain"
    ((ATTACH_OK)) && row "$w/$att" "$label: httptape attach, attach on the spare CPU" "$w/$plain" &&
        row "$w/$atts" "$label: httptape attach, attach on the server's CPU" "$w/$plain"
    measure_cycles "$w" "$path" "$WRK_DIR/get.lua" "${servers[@]}"
    coll_snapshot "${servers[@]}"
    for name in "${servers[@]}"; do stop_server "$name"; done
    say "checking the nginx logs"
    check_logs "$tape" "$tapes" "$tape0" "$att" "$atts"
}
want nginx100 && nginx_group nginx100 /small.txt "nginx 100 B file"

# ---- 2a. nginx 100 B over https (nginx_tls) and over HTTP/2 (nginx_h2) ---------------------
# The nginx100 workload over TLS (docs/tls.md): wrk speaks https on its
# keep-alive connections (one handshake each), nginx decrypts with Debian's
# OpenSSL 3 (TLS 1.2: nginx 1.22's default ssl_protocols goes no higher),
# httptape records the plaintext at SSL_read/SSL_write. A
# self-signed certificate made here with openssl. No attach row: attach
# does not see TLS plaintext yet. nginx_h2 is the same group with `listen
# ... ssl http2` and h2load (LOADGEN) instead of wrk: H2_CONNS connections
# (ALPN h2), H2_STREAMS streams in flight on each (docs/http2.md).

# tls_cert: the group's self-signed certificate, made once per run in
# $WORK/tls.
tls_cert() {
    local cert=$WORK/tls
    [[ -s $cert/cert.pem ]] && return 0
    mkdir -p "$cert"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$cert/key.pem" -out "$cert/cert.pem" \
        -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>"$cert/err"
}

# tls_conf NAME [LISTEN-PARAMETER...]: nginx_conf with the server's listen
# made ssl (and the parameters, e.g. http2); sets NGINX.
tls_conf() {
    local name=$1 cert=$WORK/tls; shift
    nginx_conf "$name" "${PORT[$name]}"
    sed -i "s#^\( *listen 127.0.0.1:${PORT[$name]}\);#\1 ssl${*:+ $*}; ssl_certificate $cert/cert.pem; ssl_certificate_key $cert/key.pem;#" \
        "$WORK/nginx/$name/nginx.conf"
}

# tls_group WORKLOAD PREFIX LABEL [LOADGEN [LISTEN-PARAMETER...]]: three
# fresh nginx over https, PREFIX_plain (untapped), PREFIX_tape and
# PREFIX_tapes (httptape, default settings, the collector on the spare CPU
# and on the server's), loaded by wrk or LOADGEN; measured, stopped, their
# logs checked.
tls_group() {
    local w=$1 p=$2 label=$3 loadgen=${4:-wrk} name; shift $(($# < 4 ? $# : 4))
    local servers=("${p}_plain" "${p}_tape" "${p}_tapes")
    if ! tls_cert; then
        failed "$w: openssl could not make a certificate: $(tail -n 1 "$WORK/tls/err")"
        return 1
    fi
    say "nginx, $label: starting ${#servers[@]} servers (1 worker each) on CPU $SRV_CPU"
    for name in "${servers[@]}"; do
        PORT[$name]=$(free_port) SCHEME[$name]=https LOADGEN[$name]=$loadgen
        [[ $loadgen == h2load ]] && INFLIGHT[$name]=$((H2_CONNS * H2_STREAMS))
    done
    tls_conf "${p}_plain" "$@"
    start_server "${p}_plain" "${PORT[${p}_plain]}" "${NGINX[@]}"
    tls_conf "${p}_tape" "$@"
    start_tapped "${p}_tape" "${PORT[${p}_tape]}" spare "$WORK/logs/$w-httptape.jsonl" -- "${NGINX[@]}"
    tls_conf "${p}_tapes" "$@"
    start_tapped "${p}_tapes" "${PORT[${p}_tapes]}" same "$WORK/logs/$w-httptape-same.jsonl" -- "${NGINX[@]}"
    for name in "${p}_tape" "${p}_tapes"; do SERVER_BODY[$name]=$WORK/www/small.txt; done
    sleep 0.5     # the workers
    for name in "${servers[@]}"; do check_affinity "$name"; done
    row "$w/${p}_plain" "$label: untapped" "$w/${p}_plain"
    row "$w/${p}_tape" "$label: httptape, collector on the spare CPU (bodies up to 4 KiB)" "$w/${p}_plain"
    row "$w/${p}_tapes" "$label: httptape, collector on the server's CPU (bodies up to 4 KiB)" "$w/${p}_plain"
    measure_cycles "$w" /small.txt "$WRK_DIR/get.lua" "${servers[@]}"
    coll_snapshot "${servers[@]}"
    for name in "${servers[@]}"; do stop_server "$name"; done
    say "checking the nginx $w logs"
    check_logs "${p}_tape" "${p}_tapes"
}
want nginx_tls && tls_group nginx_tls tls "nginx 100 B file over https (TLS 1.2, keep-alive)"
want nginx_h2 && tls_group nginx_h2 h2 "nginx 100 B file over HTTP/2 (https, h2load -c$H2_CONNS -m$H2_STREAMS)" \
    h2load http2

# ---- 2b. nginx 100 B: the tools a user would pick instead (nginx_rivals) --------------------

# Fresh nginx, as in the 100 B group: untapped, httptape (default settings),
# strace, and one per rival tool present (the section above). After the
# rounds, what each recorded is counted against what wrk completed.
RIVAL_WORKLOAD=rivals100
rivals_group() {
    local w=$RIVAL_WORKLOAD label="nginx 100 B file, rivals" name np t
    local servers=(rv_plain rv_tape)
    ((HAVE_STRACE)) && servers+=(rv_strace)
    for t in "${RIVALS_HAVE[@]}"; do servers+=("rv_$t"); done
    mkdir -p "$WORK/rivals"
    say "$label: starting ${#servers[@]} servers (1 worker each) on CPU $SRV_CPU"
    for name in "${servers[@]}"; do
        np=$(free_port)
        PORT[$name]=$np
        nginx_conf "$name" "$np"
        case $name in
        rv_plain) start_server "$name" "$np" "${NGINX[@]}" ;;
        rv_tape)
            SERVER_BODY[$name]=$WORK/www/small.txt
            start_tapped "$name" "$np" spare "$WORK/logs/$w-httptape.jsonl" -- "${NGINX[@]}" ;;
        rv_strace) start_server "$name" "$np" strace -f -s 65536 -o "$WORK/logs/$w.strace" "${NGINX[@]}" ;;
        *)
            RIVAL_KIND[$name]=${name#rv_}
            RIVAL_NGINX[$name]=$np
            [[ $name == rv_mitmdump ]] && PORT[$name]=$(free_port)   # wrk talks to mitmdump
            start_server "$name" "$np" "${NGINX[@]}" && ROUND_HOOK[$name]=rival_hook ;;
        esac
    done
    if ! ((HAVE_STRACE)); then
        note "strace is not installed: the nginx strace row is skipped (apt-get install strace)"
    fi
    sleep 0.5     # the workers
    for name in "${servers[@]}"; do check_affinity "$name"; done
    row "$w/rv_plain" "$label: untapped" "$w/rv_plain"
    row "$w/rv_tape" "$label: httptape, collector on the spare CPU (bodies up to 4 KiB)" "$w/rv_plain"
    ((HAVE_STRACE)) && row "$w/rv_strace" "$label: strace -f -s 65536 -o FILE" "$w/rv_plain"
    for t in "${RIVALS_HAVE[@]}"; do
        case $t in
        tcpdump) row "$w/rv_$t" "$label: tcpdump -i lo -w FILE 'tcp port P'" "$w/rv_plain" ;;
        httpry) row "$w/rv_$t" "$label: httpry -i lo -o FILE 'tcp port P'" "$w/rv_plain" ;;
        tshark) row "$w/rv_$t" "$label: tshark -i lo -f 'tcp port P' -Y http -T fields (${#TSHARK_FIELDS[@]} fields) > FILE" "$w/rv_plain" ;;
        mitmdump) row "$w/rv_$t" "$label: mitmdump -q --mode reverse:http://127.0.0.1:P -w FILE (wrk hits mitmdump)" "$w/rv_plain" ;;
        esac
    done
    measure_cycles "$w" /small.txt "$WRK_DIR/get.lua" "${servers[@]}"
    coll_snapshot "${servers[@]}"
    for name in "${servers[@]}"; do stop_server "$name"; done
    say "counting what each recorded"
    # shellcheck disable=SC2086  # the file lists: paths of this run's scratch directory
    for name in "${servers[@]}"; do
        ((SERVER_RUNS[$name] > 0)) || continue
        case $name in
        rv_plain) ;;
        rv_tape) rival_count "$name" httptape "${SERVER_LOG[$name]}" ;;
        rv_strace) rival_count "$name" strace "$WORK/logs/$w.strace" ;;
        rv_tcpdump) rival_count "$name" pcap ${RIVAL_FILES[$name]} ;;
        *) rival_count "$name" "${RIVAL_KIND[$name]}" ${RIVAL_FILES[$name]} ;;
        esac
    done
    check_logs rv_tape
    [[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$WORK/rivals" "$WORK/logs/$w.strace"
}
if want nginx_rivals; then
    rivals_group
    check_idle "after the rival tools' rounds"
fi

want nginx20k && nginx_group nginx20k /big.bin "nginx 20 KB file (sendfile)"

# ---- 3. 1 MiB POST to an echo app (the copying cost) --------------------------------------

if want echo1m; then    # the whole section
say "echo app: starting 2 servers on CPU $SRV_CPU"
for name in echo_plain echo_tape; do PORT[$name]=$(free_port); done
start_server echo_plain "${PORT[echo_plain]}" "${UVICORN[@]}" --port "${PORT[echo_plain]}" echo_app:app
start_tapped echo_tape "${PORT[echo_tape]}" spare "$WORK/logs/echo-httptape.jsonl" -- \
    "${UVICORN[@]}" --port "${PORT[echo_tape]}" echo_app:app
for name in echo_plain echo_tape; do check_affinity "$name"; done
row echo1m/echo_plain "uvicorn echo app, 1 MiB POST: untapped"      echo1m/echo_plain
row echo1m/echo_tape  "uvicorn echo app, 1 MiB POST: httptape run, collector on the spare CPU"  echo1m/echo_plain
measure_cycles echo1m /echo "$WRK_DIR/post_1m.lua" echo_plain echo_tape
for name in echo_plain echo_tape; do stop_server "$name"; done
check_logs echo_tape
check_idle "after the throughput rounds"
fi  # want echo1m

# ---- 4. resource figures ----------------------------------------------------------------

# rss_kb PID: VmRSS of PID and all its descendants, in kB.
rss_kb() {
    local total=0 p v
    for p in "$1" $(descendants "$1"); do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# open_idle NAME COUNT TAG FD: COUNT more keep-alive connections to nginx
# NAME (one request each), held idle by bench/idle_conns.py until file
# descriptor FD (its stdin fifo, opened here) is closed. Sets IDLE_PIDS.
open_idle() {
    local name=$1 count=$2 tag=$3 fd=$4 port=${PORT[$1]}
    local fifo=$WORK/idle-$name-$tag.fifo out=$WORK/out/idle-$name-$tag.out
    mkfifo "$fifo"
    taskset -c "$CLI_CPU" "$PY" "$BENCH/idle_conns.py" 127.0.0.1 "$port" "$count" /small.txt \
        <"$fifo" >"$out" 2>&1 &
    IDLE_PIDS+=("$!")
    IDLE_PID=$!
    eval "exec $fd>\"\$fifo\""
    local deadline=$((SECONDS + 60))
    until grep -q '^ready' "$out" 2>/dev/null; do
        if ! kill -0 "$IDLE_PID" 2>/dev/null || ((SECONDS > deadline)); then
            failed "idle connections to $name: $(tail -n 2 "$out" | tr '\n' ' ')"
            return 1
        fi
        sleep 0.2
    done
    SERVER_EXTRA[$name]=$((SERVER_EXTRA[$name] + count))
}

# close_idle: EOF on every idle_conns.py's stdin; they close their connections.
close_idle() {
    exec 8>&- 9>&-
    local p
    for p in "${IDLE_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    IDLE_PIDS=()
    IDLE_PID=
}

# idle_rss NAME: RSS of nginx NAME (master and worker) before, with half of
# IDLE_CONNS idle keep-alive connections, and with all of them. Sets
# IDLE_PER, the RSS each further connection adds (the slope between half
# and all: fixed costs such as httptape's ring are not in it), and
# IDLE_ALL, (all - before) / IDLE_CONNS, fixed costs in.
IDLE_PIDS=()
idle_rss() {
    local name=$1 port=${PORT[$1]} before mid after half=$((IDLE_CONNS / 2))
    curl -s -o /dev/null "http://127.0.0.1:$port/small.txt"   # makes httptape's ring, if any
    SERVER_EXTRA[$name]=$((SERVER_EXTRA[$name] + 1))
    sleep 0.5
    before=$(rss_kb "${SERVER_PID[$name]}")
    open_idle "$name" "$half" a 8 || { close_idle; return 1; }
    sleep 1       # let the collector log the exchanges and settle
    mid=$(rss_kb "${SERVER_PID[$name]}")
    open_idle "$name" "$((IDLE_CONNS - half))" b 9 || { close_idle; return 1; }
    sleep 1
    after=$(rss_kb "${SERVER_PID[$name]}")
    close_idle
    say "  $name: RSS ${before} kB -> ${mid} kB with $half idle connections -> ${after} kB with $IDLE_CONNS"
    IDLE_PER=$(( (after - mid) * 1024 / (IDLE_CONNS - half) ))
    IDLE_ALL=$(( (after - before) * 1024 / IDLE_CONNS ))
}

# mem_kb PID: "rss pss rss_shmem" of PID alone, in kB (smaps_rollup; the
# ring is shared memory, so its pages count in full in the RSS of the app and
# of the collector, and half in each one's PSS).
mem_kb() {
    local rss pss shm
    read -r rss pss < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r + 0, p + 0 }' \
        "/proc/$1/smaps_rollup" 2>/dev/null)
    shm=$(awk '/^RssShmem:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    echo "${rss:-0} ${pss:-0} ${shm:-0}"
}

if want resources; then     # the whole section
say "resources: memory per process and per idle keep-alive connection ($IDLE_CONNS connections, nginx)"
resource idle_conns "$IDLE_CONNS"
for name in ng_idle_plain ng_idle_tape; do PORT[$name]=$(free_port); done
nginx_conf ng_idle_plain "${PORT[ng_idle_plain]}"
start_server ng_idle_plain "${PORT[ng_idle_plain]}" "${NGINX[@]}"
nginx_conf ng_idle_tape "${PORT[ng_idle_tape]}"
SERVER_BODY[ng_idle_tape]=$WORK/www/small.txt
start_tapped ng_idle_tape "${PORT[ng_idle_tape]}" spare "$WORK/logs/nginx-idle-httptape.jsonl" -- "${NGINX[@]}"
sleep 0.5
if [[ -n ${SERVER_PID[ng_idle_plain]:-} && -n ${SERVER_PID[ng_idle_tape]:-} ]]; then
    # Per process: after 3 s of wrk at full rate (the ring has wrapped round
    # many times, so all of it is resident), the memory of nginx's master and
    # of its one worker (the process that accepts: the one with a ring), and
    # of the collector.
    for name in ng_idle_plain ng_idle_tape; do
        run_wrk "$name" "mem-$name" "http://127.0.0.1:${PORT[$name]}/small.txt" "$WRK_DIR/get.lua" 3 || continue
        sleep 1
        nginx_worker "$name" || continue
        resource "mem_master_$name" "$(mem_kb "${SERVER_PID[$name]}")"
        resource "mem_worker_$name" "$(mem_kb "$NGINX_WORKER")"
        [[ -n ${COLL_PID[$name]:-} ]] && resource "mem_collector_$name" "$(mem_kb "${COLL_PID[$name]}")"
        say "  $name: master $(mem_kb "${SERVER_PID[$name]}"), worker $(mem_kb "$NGINX_WORKER")" \
            "(RSS, PSS, RSS shared memory, kB)${COLL_PID[$name]:+; collector $(mem_kb "${COLL_PID[$name]}")}"
    done
    if idle_rss ng_idle_plain; then
        resource idle_rss_per_conn_plain "$IDLE_PER"
        resource idle_rss_all_plain "$IDLE_ALL"
    fi
    if idle_rss ng_idle_tape; then
        resource idle_rss_per_conn_tape "$IDLE_PER"
        resource idle_rss_all_tape "$IDLE_ALL"
    fi
else
    resource idle_error "a server did not start"
fi
stop_server ng_idle_plain
stop_server ng_idle_tape
check_logs ng_idle_tape

# The collector: nginx tapped at full rate on the 100 B file, the collector
# on the spare CPU; its CPU time during the wrk run (every thread's
# schedstat) and over its life (read before nginx stops: start-up and the
# idle naps in, its last drain out), against the exchanges it wrote (the
# final statistics record).
WRITER_SECS=$((DUR > 5 ? DUR : 5))
say "resources: the collector under nginx at full rate (${WRITER_SECS}s)"
PORT[ng_writer]=$(free_port)
nginx_conf ng_writer "${PORT[ng_writer]}"
SERVER_BODY[ng_writer]=$WORK/www/small.txt
if start_tapped ng_writer "${PORT[ng_writer]}" spare "$WORK/logs/nginx-collector-httptape.jsonl" -- "${NGINX[@]}"; then
    sleep 0.5
    check_affinity ng_writer
    if run_wrk ng_writer collector "http://127.0.0.1:${PORT[ng_writer]}/small.txt" "$WRK_DIR/get.lua" "$WRITER_SECS"; then
        resource writer_seconds "$WRITER_SECS"
        resource writer_wrk_rps "$W_RPS"
        resource writer_round "$W_REQS $W_COLL_US $W_COLL"
        sleep 0.5      # the collector drains the ring
    fi
    coll_snapshot ng_writer
    stop_server ng_writer
    check_logs ng_writer
    grep -q "^collrate_ng_writer" "$WORK/resources.tsv" ||
        failed "collector figure: no collector CPU time or no final statistics record"
fi

# Synthetic: one thread parsing, building and writing typical events
# (httptape replay over a long keep-alive connection of FastAPI exchanges).
say "resources: synthetic replay of $REPLAY_EVENTS exchanges"
mkdir -p "$WORK/replay"
if "$PY" "$BENCH/mkstream.py" "$WORK/replay" "$REPLAY_EVENTS"; then
    c2s=$WORK/replay/127.000.000.001.40000-127.000.000.001.08000
    s2c=$WORK/replay/127.000.000.001.08000-127.000.000.001.40000
    cat "$c2s" "$s2c" >/dev/null     # into the page cache before the clock starts
    t0=$(date +%s%N)
    timeout 120 taskset -c "$SRV_CPU" "$HTTPTAPE" replay "$c2s" "$s2c" >"$WORK/logs/replay.jsonl"
    rc=$?
    t1=$(date +%s%N)
    lines=$(wc -l <"$WORK/logs/replay.jsonl")
    bytes=$(wc -c <"$WORK/logs/replay.jsonl")
    if ((rc == 0 && lines == REPLAY_EVENTS)); then
        resource replay_events "$REPLAY_EVENTS"
        resource replay_rate "$("$PY" -c "print($lines / (($t1 - $t0) / 1e9))")"
        resource replay_event_bytes $((bytes / lines))
    else
        failed "httptape replay exited $rc with $lines of $REPLAY_EVENTS events"
        resource replay_error "replay exited $rc, $lines events"
    fi
    rm -f "$c2s" "$s2c"
    check_file "$WORK/logs/replay.jsonl"
    [[ ${BENCH_KEEP:-0} == 1 ]] || rm -f "$WORK/logs/replay.jsonl"
fi
if [[ -x $WORK/bin/bench_encoder ]]; then
    say "resources: build/bench_encoder"
    if enc=$(timeout 120 taskset -c "$SRV_CPU" "$WORK/bin/bench_encoder" 2>"$WORK/out/bench_encoder.err"); then
        resource encoder_line "$(tail -n 1 <<<"$enc")"
    else
        failed "build/bench_encoder failed: $(tail -n 2 "$WORK/out/bench_encoder.err" | tr '\n' ' ')"
    fi
fi
fi  # want resources

# ---- report ---------------------------------------------------------------------------------

say "done in $((SECONDS / 60)) min $((SECONDS % 60)) s"
{
    echo "httptape benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc --all) CPUs," \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r);" \
        "server on CPU $SRV_CPU, wrk -t1 -c$CONNS$(want nginx_h2 && echo " (nginx_h2: h2load -t1 -c$H2_CONNS -m$H2_STREAMS)") on CPU $CLI_CPU; $PAIRS cycles of ${DUR}s rounds;" \
        "run took $((SECONDS / 60)) min $((SECONDS % 60)) s; build $BUILD_ID$([[ $GROUPS_SEL == " $ALL_GROUPS " ]] || echo "; groups:$GROUPS_SEL")"
    echo
    "$PY" "$BENCH/report.py" "$WORK"
} || failed "bench/report.py failed"
exit "$FAILED"
