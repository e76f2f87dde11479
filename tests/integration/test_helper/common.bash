# common.bash - helpers shared by the integration tests that start real
# servers: free ports, background servers (plain or under `httptape run`),
# bounded waits, and reading exchange records out of a log.
#
# Servers are tracked by pid files, so teardown / teardown_file can always
# stop them (stop_server), even after a failed assertion; the workers of a
# prefork server can be tracked too (track_children), and are stopped after
# their master. A server started from a test lives in $BATS_TEST_TMPDIR; one
# started from setup_file lives in $BATS_FILE_TMPDIR. Every wait here is
# bounded.

# The variables set here are used by the .bats files that load this.
# shellcheck disable=SC2034

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

# Debian's python: the pyenv one on PATH has no fastapi/uvicorn.
PY=/usr/bin/python3
HTTPTAPE="${HTTPTAPE_BIN:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build/httptape}"
HTTPTAPE_LIB="$(cd "$(dirname "$HTTPTAPE")" && pwd)/libhttptape.so"
APPS="$BATS_TEST_DIRNAME/apps"
REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"

# Where this scope (a test, or setup_file/teardown_file) keeps its files.
scratch_dir() {
    echo "${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}"
}

# test_server_vars: PORT (free a moment ago), BASE (its URL) and LOG (the
# scope's log.jsonl), the three every test with a server starts from.
test_server_vars() {
    PORT=$(free_port)
    BASE="http://127.0.0.1:$PORT"
    LOG="$(scratch_dir)/log.jsonl"
}

# nginx_temp_paths DIR: the nginx.conf lines (http block) that keep every
# temporary file of nginx under DIR/temp.
nginx_temp_paths() {
    local k
    for k in client_body proxy fastcgi uwsgi scgi; do
        printf '    %s_temp_path %s/temp/%s;\n' "$k" "$1" "${k#client_}"
    done
}

# Prints a TCP port that was free on 127.0.0.1 a moment ago.
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_bg NAME CMD...: runs CMD in the background with stdout+stderr in
# $(scratch_dir)/NAME.out. Sets (and exports) SERVER_PID and SERVER_OUT.
start_bg() {
    local name=$1; shift
    local dir
    dir=$(scratch_dir)
    SERVER_OUT="$dir/$name.out"
    # fd 3 closed: bats would otherwise wait for the server to exit.
    "$@" >"$SERVER_OUT" 2>&1 3>&- &
    SERVER_PID=$!
    echo "$SERVER_PID" >"$dir/$name.pid"
    export SERVER_PID SERVER_OUT
    # `httptape run --log LOG` in the command: stop_server waits for its
    # collector too.
    local a prev="" seen_run=""
    rm -f "$dir/$name.collector"
    for a in "$@"; do
        [ "$a" = run ] && seen_run=1
        if [ -n "$seen_run" ] && [ "$prev" = --log ]; then
            printf '%s\n' "$a" >"$dir/$name.collector"
            break
        fi
        prev=$a
    done
}

# start_tapped NAME LOGFILE CMD...: runs `httptape run --log LOGFILE -- CMD...`
# in the background. run execs CMD, so SERVER_PID is the server's own pid.
start_tapped() {
    local name=$1 log=$2; shift 2
    start_bg "$name" "$HTTPTAPE" run --log "$log" -- "$@"
}

# Shows a server's output (after a failed wait).
show_server_output() {
    local f
    for f in "$(scratch_dir)"/*.out; do
        [ -e "$f" ] || continue
        echo "--- ${f##*/} ---" >&2
        cat "$f" >&2
    done
}

# wait_http URL: waits up to 15 s until the URL's host:port accepts a TCP
# connection. No request is sent, so nothing shows up in a log. Fails (and
# prints the server output) on timeout or if the server exited.
wait_http() {
    local hostport=${1#*://}
    hostport=${hostport%%/*}
    local host=${hostport%:*} port=${hostport##*:}

    for _ in $(seq 150); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        if [ -n "${SERVER_PID:-}" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server (pid $SERVER_PID) exited before listening on $host:$port" >&2
            show_server_output
            return 1
        fi
        sleep 0.1
    done
    echo "nothing listening on $host:$port after 15 s" >&2
    show_server_output
    return 1
}

# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL; reaps it when it is ours.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# stop_server [NAME...]: stops the named servers, or every server this scope
# started. Safe to call twice and when nothing was started.
stop_server() {
    local dir f
    dir=$(scratch_dir)
    local files=()
    if [ $# -gt 0 ]; then
        for f in "$@"; do files+=("$dir/$f.pid"); done
    else
        files=("$dir"/*.pid)
    fi
    local c pid rc=0
    for f in "${files[@]}"; do
        [ -e "$f" ] || continue
        stop_pid "$(cat "$f")"
        rm -f "$f"
        # Children recorded with track_children: the server stops its own
        # workers; these are the ones it left behind (it was killed).
        c=${f%.pid}.children
        if [ -e "$c" ]; then
            while read -r pid; do stop_pid "$pid"; done <"$c"
            rm -f "$c"
        fi
        # A server under `httptape run`: its collector writes the final
        # statistics record after the server is gone; a test reads it next.
        c=${f%.pid}.collector
        if [ -e "$c" ]; then
            wait_collector_exit "$(cat "$c")" || rc=1
            rm -f "$c"
        fi
    done
    return "$rc"
}

# children_of PID [PATTERN]: the pids of PID's child processes (only those
# whose command line matches PATTERN, a pgrep -f pattern), sorted, one a line.
children_of() {
    if [ $# -gt 1 ]; then
        pgrep -P "$1" -f "$2" | sort -n
    else
        pgrep -P "$1" | sort -n
    fi
}

# wait_children PID N [PATTERN]: waits up to 15 s until PID has N children
# (matching PATTERN), then prints their pids like children_of.
wait_children() {
    local pid=$1 n=$2 have=0
    shift 2
    for _ in $(seq 150); do
        have=$(children_of "$pid" "$@" | wc -l)
        if [ "$have" -ge "$n" ]; then
            children_of "$pid" "$@"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "waited 15 s for $n children of $pid, found $have" >&2
    show_server_output
    return 1
}

# track_children NAME PID...: stop_server NAME (or stop_server) also stops
# these pids, after the server NAME itself (so a prefork master gets to stop
# its own workers first, and does not respawn them).
track_children() {
    local name=$1; shift
    printf '%s\n' "$@" >>"$(scratch_dir)/$name.children"
}

# Number of complete exchange records in LOGFILE (a half-written last line
# is not counted).
count_exchanges() {
    [ -e "$1" ] || { echo 0; return; }
    jq -R 'fromjson? | select(.httptape.type == "exchange")' "$1" 2>/dev/null | jq -s length
}

# wait_exchanges LOGFILE N: waits up to 10 s for N exchange records (the
# time is bounded, however long counting a big log takes).
wait_exchanges() {
    local log=$1 n=$2 have=0
    local deadline=$((SECONDS + 10))
    while :; do
        have=$(count_exchanges "$log")
        [ "$have" -ge "$n" ] && return 0
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.05
    done
    echo "waited 10 s for $n exchange records in $log, found $have; its last lines:" >&2
    if [ -e "$log" ]; then
        tail -n 20 "$log" | cut -c1-400 >&2
    else
        echo "(no log file)" >&2
    fi
    show_server_output
    return 1
}

# exchanges LOGFILE: the exchange records, one compact JSON object a line.
# A line that is not JSON makes this fail.
exchanges() {
    jq -c 'select(.httptape.type == "exchange")' "$1"
}

# wait_output TEXT: waits up to 15 s for TEXT in the last server's output.
wait_output() {

    for _ in $(seq 150); do
        grep -qF -- "$1" "$SERVER_OUT" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "no '$1' in $SERVER_OUT" >&2
    show_server_output
    return 1
}

# stage_for_others: copies the CLI and the library into a fresh directory
# every user can reach (a checkout under /root, mode 0700, is out of reach
# of nobody), for tests that run them as another user. Sets STAGE_DIR,
# STAGED_HTTPTAPE and STAGED_LIB (the staged CLI finds the library next to
# itself). Call from setup_file, and unstage from teardown_file.
stage_for_others() {
    STAGE_DIR=$(mktemp -d /tmp/httptape-stage.XXXXXX)
    chmod 755 "$STAGE_DIR"
    cp "$HTTPTAPE" "$STAGE_DIR/httptape"
    cp "$HTTPTAPE_LIB" "$STAGE_DIR/libhttptape.so"
    chmod 755 "$STAGE_DIR/httptape" "$STAGE_DIR/libhttptape.so"
    STAGED_HTTPTAPE=$STAGE_DIR/httptape
    STAGED_LIB=$STAGE_DIR/libhttptape.so
    export STAGE_DIR STAGED_HTTPTAPE STAGED_LIB
}

unstage() {
    if [ -n "${STAGE_DIR:-}" ]; then rm -rf "$STAGE_DIR"; fi
}

# make_test_certs: a CA and a certificate for localhost and 127.0.0.1 (made
# with openssl) in a fresh directory that www-data can read; sets and
# exports TLS_DIR (ca.pem, cert.pem, key.pem). rm -rf it when done.
make_test_certs() {
    TLS_DIR=$(mktemp -d /tmp/httptape-tls.XXXXXX)
    chmod 755 "$TLS_DIR"
    export TLS_DIR
    (
        cd "$TLS_DIR"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj /CN=httptape-test-ca 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.csr -subj /CN=localhost \
            2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext.cnf
        openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem \
            -days 2 -extfile ext.cnf 2>/dev/null
    )
    chmod 644 "$TLS_DIR"/*.pem
}

# ---- deploy.bats helpers: processes of a server, and who holds a file ----
# (added for deploy.bats; generic, usable by any suite)

# process_tree PID: PID and every descendant of it (children, their
# children, ...), one a line, PID first. Bounded at 1000 processes.
process_tree() {
    local pids=("$1") i=0 c
    while [ "$i" -lt "${#pids[@]}" ] && [ "${#pids[@]}" -lt 1000 ]; do
        for c in $(pgrep -P "${pids[$i]}"); do pids+=("$c"); done
        i=$((i + 1))
    done
    printf '%s\n' "${pids[@]}"
}

# server_processes PID: the processes of the server PID: PID and those of
# its descendants that run the same executable (an nginx master and its
# workers, an apache2 parent and its children). A helper of ours forked
# before the server was exec'ed (a collector) runs another executable and is
# not listed.
server_processes() {
    local exe pid
    exe=$(readlink "/proc/$1/exe") || return 1
    for pid in $(process_tree "$1"); do
        [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && echo "$pid"
    done
    return 0
}

# fd_holders FILE: "PID FD" for every open file descriptor of any process
# that points at FILE (also once FILE is deleted), one a line. One find over
# /proc, so it is quick however many processes there are.
fd_holders() {
    local path
    path=$(realpath -m -- "$1")
    find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -type l -printf '%h/%f %l\n' 2>/dev/null |
        awk -v p="$path" '{
            link = $1; $1 = ""; sub(/^ /, "")
            if ($0 == p || $0 == p " (deleted)") { split(link, a, "/"); print a[3], a[5] }
        }'
}

# describe_pids PID...: "pid PID user USER: CMDLINE" for each, for messages.
describe_pids() {
    local pid
    for pid in "$@"; do
        echo "pid $pid user $(ps -o user= -p "$pid" 2>/dev/null || echo '?'):" \
            "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || echo '(gone)')"
    done
}

# wait_no_holders FILE SECONDS: waits up to SECONDS (at most 60) until no
# process holds FILE open. Fails, naming the holders, on timeout.
wait_no_holders() {
    local file=$1 secs=${2:-10} held
    [ "$secs" -le 60 ] || secs=60
    local deadline=$((SECONDS + secs))
    while :; do
        held=$(fd_holders "$file")
        [ -z "$held" ] && return 0
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.1
    done
    echo "$file still open $secs s later, by:" >&2
    # shellcheck disable=SC2046
    describe_pids $(echo "$held" | awk '{print $1}' | sort -un) >&2
    return 1
}

# wait_collector_exit LOG [SECONDS]: waits (up to SECONDS, default 10) until
# no collector started by `httptape run --log LOG` is left: it writes the
# final statistics record after the server exits, so a test that reads that
# record waits for this first. Found by name (httptape-coll) and by LOG in
# its command line (the collector is a fork of run, so it has run's), not by
# who holds the log: a collector between two opens of a deleted or full log
# holds none.
wait_collector_exit() {
    local log=$1 secs=${2:-10} p left
    local deadline=$((SECONDS + secs))
    while :; do
        left=""
        for p in $(pgrep -x httptape-coll); do
            tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$log" && left+=" $p"
        done
        [ -z "$left" ] && return 0
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.1
    done
    echo "the collector of $log is still running $secs s later:" >&2
    # shellcheck disable=SC2086
    describe_pids $left >&2
    return 1
}

# stop_holders FILE: stops every process (other than this shell) that holds
# FILE open: for a teardown, a helper of the test's own server that outlived
# it, found by the test's own file. Safe when there is none.
stop_holders() {
    local pid
    for pid in $(fd_holders "$1" | awk '{print $1}' | sort -un); do
        [ "$pid" = "$$" ] || [ "$pid" = "${BASHPID:-}" ] && continue
        stop_pid "$pid"
    done
}
# ---- end of deploy.bats helpers ----
