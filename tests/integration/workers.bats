#!/usr/bin/env bats
# workers.bats - prefork servers under `httptape run`: gunicorn with two
# sync workers and uvicorn --workers 2, over TCP and over a Unix-domain
# socket. Every request is logged exactly once, by the worker that answered
# it (process.pid is that worker's pid, never the arbiter's), and over a
# Unix socket network.local.address is the socket's path.
#
# The app (apps/pid_app.py) answers each request with its own pid, so the
# log can be checked request by request. ?sleep= holds a worker (a blocking
# sleep, also in the ASGI app) so that concurrent requests spread over both.
# Teardown stops the master, then any worker it left behind, pass or fail.

load test_helper/common

N=40

setup() {
    test_server_vars
    SOCK="$BATS_TEST_TMPDIR/s.sock"
    OUT="$BATS_TEST_TMPDIR/answers"
    mkdir -p "$OUT"
}

teardown() {
    stop_server
}

# start_gunicorn BIND: gunicorn, 2 sync workers, on BIND (host:port or unix:PATH).
# Sets MASTER and WORKERS (sorted pids, space-separated).
start_gunicorn() {
    start_tapped gunicorn "$LOG" gunicorn --workers 2 --worker-class sync --bind "$1" \
        --chdir "$APPS" --graceful-timeout 5 pid_app:wsgi
    MASTER=$SERVER_PID
    WORKERS=$(wait_children "$MASTER" 2 | tr '\n' ' ')
    # shellcheck disable=SC2086
    track_children gunicorn $WORKERS
}

# start_uvicorn ARGS...: uvicorn --workers 2 with ARGS (--host/--port or --uds).
# Sets MASTER and WORKERS; the master's other child (multiprocessing's
# resource tracker) is not a worker.
start_uvicorn() {
    start_tapped uvicorn "$LOG" "$PY" -m uvicorn pid_app:asgi --app-dir "$APPS" \
        --workers 2 --no-access-log "$@"
    MASTER=$SERVER_PID
    WORKERS=$(wait_children "$MASTER" 2 spawn_main | tr '\n' ' ')
    # shellcheck disable=SC2086
    # shellcheck disable=SC2046
    track_children uvicorn $(children_of "$MASTER")
    wait_output 'Application startup complete' # both workers: checked by their pids below
}

# wait_socket PATH: waits up to 15 s for a Unix socket at PATH.
wait_socket() {
    for _ in $(seq 150); do
        [ -S "$1" ] && return 0
        sleep 0.1
    done
    echo "no socket at $1 after 15 s" >&2
    show_server_output
    return 1
}

# send_requests [CURL_ARGS...]: N GET /id?i=1..N requests, 8 at a time, each on
# a new connection; answers in $OUT/a_<i>. Then the answers must be N lines
# "i=<i>&sleep=... pid=<pid>".
send_requests() {
    run curl -s --max-time 20 --parallel --parallel-max 8 -H 'Connection: close' \
        "$@" -o "$OUT/a_#1" "http://localhost/id?i=[1-$N]&sleep=0.02"
    assert_success
    run bash -c "cat '$OUT'/a_* | grep -cE '^i=[0-9]+&sleep=0.02 pid=[0-9]+$'"
    assert_output "$N"
}

# Prints "i pid" for every answer, sorted by i.
answered_by() {
    cat "$OUT"/a_* | sed -E 's/^i=([0-9]+)&sleep=[^ ]* pid=([0-9]+)$/\1 \2/' | sort -n
}

# Prints "i pid" for every exchange in the log, sorted by i.
logged_by() {
    exchanges "$LOG" | jq -r '"\(.url.query | capture("i=(?<i>[0-9]+)").i) \(.process.pid)"' | sort -n
}

# check_log: exactly N exchanges, each request once, each logged by the
# worker that answered it, and between them the two workers (not the master).
check_log() {
    wait_exchanges "$LOG" "$N"
    sleep 0.3                         # nothing more may arrive
    run count_exchanges "$LOG"
    assert_output "$N"
    run logged_by
    assert_output "$(answered_by)"
    run jq -r '.process.pid' <(exchanges "$LOG")
    refute_line "$MASTER"
    run bash -c "jq -r '.process.pid' <(jq -c 'select(.httptape.type == \"exchange\")' '$LOG') | sort -nu | tr '\n' ' '"
    assert_output "$WORKERS"
    run jq -sc 'map([.http.request.method, .url.path, .http.response.status_code, .httptape.complete])
                | unique' <(exchanges "$LOG")
    assert_output '[["GET","/id",200,true]]'
}

@test "workers: gunicorn's two sync workers log each of 40 requests once, under their own pids" {
    start_gunicorn "127.0.0.1:$PORT"
    wait_http "$BASE/"
    send_requests --connect-to "localhost:80:127.0.0.1:$PORT"
    check_log
}

@test "workers: uvicorn --workers 2 logs each of 40 requests once, under the workers' pids" {
    start_uvicorn --host 127.0.0.1 --port "$PORT"
    wait_http "$BASE/"
    send_requests --connect-to "localhost:80:127.0.0.1:$PORT"
    check_log
}

@test "workers: exchanges on a TCP socket say network.transport tcp, with the local port" {
    start_gunicorn "127.0.0.1:$PORT"
    wait_http "$BASE/"
    run curl -s --max-time 5 "$BASE/id?i=1"
    assert_success
    wait_exchanges "$LOG" 1
    run jq -c '[.network.transport, .network.local, .network.peer.address]' <(exchanges "$LOG")
    assert_output "[\"tcp\",{\"address\":\"127.0.0.1\",\"port\":$PORT},\"127.0.0.1\"]"
}

@test "workers: gunicorn on a Unix socket logs each of 40 requests once, with the socket path as local address" {
    start_gunicorn "unix:$SOCK"
    wait_socket "$SOCK"
    send_requests --unix-socket "$SOCK"
    check_log
    run jq -sc 'map([.network.transport, .network.local]) | unique' <(exchanges "$LOG")
    assert_output "$(jq -nc --arg s "$SOCK" '[["unix", {address: $s}]]')"
}

@test "workers: uvicorn --uds with 2 workers logs each of 40 requests once, with the socket path as local address" {
    start_uvicorn --uds "$SOCK"
    wait_socket "$SOCK"
    send_requests --unix-socket "$SOCK"
    check_log
    run jq -sc 'map([.network.transport, .network.local]) | unique' <(exchanges "$LOG")
    assert_output "$(jq -nc --arg s "$SOCK" '[["unix", {address: $s}]]')"
}
