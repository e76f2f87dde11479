#!/usr/bin/env bats
# deploy.bats - httptape as users deploy it, through the interface that
# stays: `httptape run --log FILE -- SERVER` and the JSON lines of
# docs/events.md.
#
#   - nginx (master as root, `user www-data;`, 2 workers: Debian's default)
#     and apache2 (prefork and event MPMs, children as www-data), the log in
#     a directory owned by root, mode 0700, that www-data cannot enter (the
#     only thing in its way: the directories above it are 0755): 50
#     requests, keep-alive and not, each logged exactly once with the status
#     and body size the client got, by a worker, never the parent.
#   - no process of the server (nginx master and workers, python's
#     http.server) holds the log's file descriptor: the audited process can
#     neither forge nor truncate the audit log.
#   - `httptape run --log -` writes the JSON lines on its standard output
#     (containers), and nothing else there.
#
# The httptape CLI and library are staged where every user can reach them
# (stage_for_others), as an installed httptape would be; so are each
# server's config and docroot (a fresh 0755 directory under /tmp: the
# checkout and the bats tmpdir may be out of www-data's reach). The server
# configs are fixtures/deploy/*.conf.in.
#
# DEPLOY_UNTAPPED=1 runs every test with the server NOT under httptape and
# checks only what does not need httptape (the server serves the requests
# right, its workers run as www-data, the access log agrees with the client,
# the run's stdout stays clean): it validates the harness, so that a failure
# of the real run is httptape's.
#
# Teardown stops every server (and worker) a test started, pass or fail,
# then anything still holding the test's log (a collector past its time).

load test_helper/common

N=50                            # requests per server: 25 keep-alive + 25 not
FIXTURES="$BATS_TEST_DIRNAME/fixtures/deploy"

setup_file() {
    stage_for_others
}

teardown_file() {
    unstage
}

setup() {
    D=$BATS_TEST_TMPDIR
    PORT=$(free_port)
    BASE="http://127.0.0.1:$PORT"
    # Config, docroot, pid file, error and access logs: every user can read.
    STAGE=$(mktemp -d /tmp/httptape-deploy.XXXXXX)
    chmod 0755 "$STAGE"
    mkdir -p "$STAGE/www/f" "$STAGE/temp" "$STAGE/run"
    # The log's directory, like /var/log/nginx: root's, mode 0700, in a
    # directory every user reaches. Only root (the user who ran `httptape
    # run`) can create or write a file in it; www-data cannot even look.
    LOGDIR="$STAGE/logs"
    mkdir -m 0700 "$LOGDIR"
    LOG="$LOGDIR/log.jsonl"
}

teardown() {
    # A failed test: the server's own error log says what it saw (a worker
    # that could not open the log, say).
    if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -s "${STAGE:-/nonexistent}/error.log" ]; then
        echo "--- the server's error.log: httptape's lines, or its last 5 ---" >&2
        { grep -m 10 '^httptape:' "$STAGE/error.log" || tail -n 5 "$STAGE/error.log"; } | cut -c1-300 >&2
    fi
    stop_server
    [ -z "${LOG:-}" ] || stop_holders "$LOG"
    [ -z "${D:-}" ] || stop_holders "$D/stdout.fifo"
    if [ -n "${STAGE:-}" ]; then rm -rf "$STAGE"; fi
}

untapped() {
    [ "${DEPLOY_UNTAPPED:-0}" = 1 ]
}

# start_deployed NAME CMD...: CMD under `httptape run --log $LOG` (the
# staged CLI), or alone with DEPLOY_UNTAPPED=1. Sets SERVER_PID. With
# NEW_SESSION=1, in a session of its own (setsid, which keeps the pid here),
# as a service manager starts it: apache2 stops by signalling its whole
# process group, which would otherwise hold bats.
start_deployed() {
    local name=$1 pre=()
    shift
    if [ "${NEW_SESSION:-0}" = 1 ]; then pre=(setsid); fi
    if untapped; then
        start_bg "$name" "${pre[@]}" "$@"
    else
        start_bg "$name" "${pre[@]}" "$STAGED_HTTPTAPE" run --log "$LOG" -- "$@"
    fi
}

# render TEMPLATE OUT NAME=VALUE...: TEMPLATE with each @NAME@ replaced.
render() {
    local tpl=$1 out=$2 kv sed_args=()
    shift 2
    for kv in "$@"; do sed_args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${sed_args[@]}" "$tpl" >"$out"
}

# make_docroot: /f/<i>.bin for i in 1..N, each of its own size, except every
# fifth, which is missing (a 404). Readable by everyone.
make_docroot() {
    local i
    for i in $(seq "$N"); do
        [ $((i % 5)) -eq 0 ] && continue
        head -c $((i * 409 + i % 7)) /dev/urandom >"$STAGE/www/f/$i.bin"
    done
    chmod -R a+rX "$STAGE/www"
}

CURL_W='%{url_effective} %{http_code} %{size_download} %{num_connects}\n'

# send_requests: requests 1..25 on one keep-alive connection, then 26..50
# each on its own connection (Connection: close), 4 at a time. The client's
# view, "path status size", sorted, goes to $D/client; checks that curl got
# what the docroot holds and that keep-alive was (and was not) used.
send_requests() {
    run curl -s --max-time 30 -o /dev/null -w "$CURL_W" "$BASE/f/[1-25].bin"
    assert_success
    echo "$output" >"$D/client.keepalive"
    run --separate-stderr curl -s --max-time 30 --parallel --parallel-max 4 -H 'Connection: close' \
        -o /dev/null -w "$CURL_W" "$BASE/f/[26-$N].bin"
    assert_success
    echo "$output" >"$D/client.close"

    # One connection for the first 25, 25 connections for the others.
    run awk '{ n += $4 } END { print NR, n }' "$D/client.keepalive"
    assert_output "25 1"
    run awk '{ n += $4 } END { print NR, n }' "$D/client.close"
    assert_output "$((N - 25)) $((N - 25))"

    cat "$D/client.keepalive" "$D/client.close" | sed "s|^$BASE||" |
        awk '{ print $1, $2, $3 }' | sort >"$D/client"
    # What the docroot says each answer is.
    local i expect=()
    for i in $(seq "$N"); do
        if [ -e "$STAGE/www/f/$i.bin" ]; then
            expect+=("/f/$i.bin 200 $(stat -c %s "$STAGE/www/f/$i.bin")")
        else
            expect+=("/f/$i.bin 404")
        fi
    done
    run diff <(printf '%s\n' "${expect[@]}" | sort) <(awk '$2 == 404 { $3 = "" } { sub(/ $/, ""); print }' "$D/client")
    assert_success
}

# assert_access_log_matches_client FORMAT: the server's own access log (lines
# "status bytes "METHOD PATH VERSION"") has the client's N answers.
assert_access_log_matches_client() {
    run diff "$D/client" <(tr -d '"' <"$STAGE/access.log" | awk '{ print $4, $1, $2 }' | sort)
    assert_success
}

# assert_workers_as USER PID...: each PID runs as USER.
assert_workers_as() {
    local user=$1 pid
    shift
    [ "$#" -gt 0 ] || fail "no workers"
    for pid in "$@"; do
        run ps -o user= -p "$pid"
        assert_output "$user"
    done
}

# assert_log_matches_client: the log holds exactly the N exchanges the
# client saw: same paths, statuses and body sizes, each once, complete; the
# 25 keep-alive ones on one connection (request_index 0..24), the others on
# a connection each. Call after the server is stopped and the log drained.
assert_log_matches_client() {
    run count_exchanges "$LOG"
    assert_output "$N"
    run diff "$D/client" <(exchanges "$LOG" |
        jq -r '"\(.url.path) \(.http.response.status_code) \(.http.response.body.size)"' | sort)
    assert_success
    run bash -c "jq -c 'select(.httptape.type == \"exchange\" and .httptape.complete != true)' '$LOG' | head -5"
    assert_output ''
    # keep-alive: one connection id, request indexes 0..24 in order.
    run bash -c "jq -r 'select(.httptape.type == \"exchange\")
        | select(.url.path | ltrimstr(\"/f/\") | rtrimstr(\".bin\") | tonumber <= 25)
        | \"\(.httptape.connection.id) \(.httptape.connection.request_index)\"' '$LOG' |
        sort -k2n | awk '{ ids[\$1] = 1; idx = idx \$2 \" \" } END { print length(ids), idx }'"
    assert_output "1 $(seq -s ' ' 0 24) "
    run bash -c "jq -r 'select(.httptape.type == \"exchange\")
        | select(.url.path | ltrimstr(\"/f/\") | rtrimstr(\".bin\") | tonumber > 25)
        | \"\(.httptape.connection.id) \(.httptape.connection.request_index)\"' '$LOG' |
        sort -u | awk '{ n++; if (\$2 != 0) bad++ } END { print n, bad + 0 }'"
    assert_output "$((N - 25)) 0"
}

# logged_pids: the process.pid values of the log's exchanges, sorted, unique.
logged_pids() {
    exchanges "$LOG" | jq -r '.process.pid' | sort -un
}

# wait_gone PID...: waits up to 10 s for every PID to exit.
wait_gone() {
    local pid alive
    for _ in $(seq 100); do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
    echo "still running 10 s after the stop:" >&2
    describe_pids "$@" >&2
    return 1
}

# drain_log: after the server has stopped: waits (up to 10 s) until no
# process holds the log any more, i.e. what recorded it has written all it
# had. Not an assertion: a collector that keeps the log open is checked by
# the counts that follow, and stopped by teardown.
drain_log() {
    untapped && return 0
    wait_no_holders "$LOG" 10 || echo "(going on with the log as it is)" >&2
}

# ---------------------------------------------------------------- nginx

# start_nginx USER: nginx (fixtures/deploy/nginx.conf.in, workers as USER)
# under httptape. Sets MASTER and WORKERS (sorted, space-separated).
start_nginx() {
    command -v nginx >/dev/null || skip "no nginx (scripts/install-deps.sh installs nginx-light)"
    id www-data >/dev/null 2>&1 || skip "no user www-data"
    render "$FIXTURES/nginx.conf.in" "$STAGE/nginx.conf" DIR="$STAGE" PORT="$PORT" USER="$1"
    start_deployed nginx nginx -p "$STAGE" -e "$STAGE/error.log" -c "$STAGE/nginx.conf"
    MASTER=$SERVER_PID
    WORKERS=$(wait_children "$MASTER" 2 'worker process' | tr '\n' ' ')
    # shellcheck disable=SC2086
    track_children nginx $WORKERS
    wait_http "$BASE/"
}

# quit_nginx: graceful stop (QUIT: the workers finish and exit), bounded.
quit_nginx() {
    kill -QUIT "$MASTER"
    # shellcheck disable=SC2086
    wait_gone "$MASTER" $WORKERS
}

@test "deploy: nginx with its workers as www-data (Debian's default) logs every request" {
    make_docroot
    start_nginx www-data
    # shellcheck disable=SC2086
    assert_workers_as www-data $WORKERS
    run ps -o user= -p "$MASTER"
    assert_output root

    send_requests
    if ! untapped; then
        wait_exchanges "$LOG" "$N"
        # Every exchange by one of the two workers, never the master.
        run logged_pids
        for pid in $output; do
            [[ " $WORKERS " == *" $pid "* ]] || fail "exchange logged by pid $pid, not a worker ($WORKERS)"
        done
    fi
    quit_nginx
    assert_access_log_matches_client
    untapped && return 0
    drain_log
    assert_log_matches_client
}

# ---------------------------------------------------------------- apache2

# start_apache MPM: apache2 -DFOREGROUND with fixtures/deploy/apache2.conf.in
# and the MPM (prefork or event) under httptape. Sets MASTER and WORKERS (its
# first children: prefork forks more as needed).
start_apache() {
    command -v apache2 >/dev/null || skip "no apache2 (scripts/install-deps.sh installs apache2-bin)"
    [ -e "/usr/lib/apache2/modules/mod_mpm_$1.so" ] || skip "no mod_mpm_$1"
    id www-data >/dev/null 2>&1 || skip "no user www-data"
    render "$FIXTURES/apache2.conf.in" "$STAGE/apache2.conf" DIR="$STAGE" PORT="$PORT" MPM="$1"
    NEW_SESSION=1 start_deployed apache2 apache2 -f "$STAGE/apache2.conf" -DFOREGROUND
    MASTER=$SERVER_PID
    WORKERS=$(wait_children "$MASTER" 2 '^apache2 ' | tr '\n' ' ')
    # shellcheck disable=SC2086
    track_children apache2 $WORKERS
    wait_http "$BASE/"
}

# deploy_apache MPM: the apache2 test, for one MPM.
deploy_apache() {
    make_docroot
    start_apache "$1"
    # shellcheck disable=SC2086
    assert_workers_as www-data $WORKERS
    run ps -o user= -p "$MASTER"
    assert_output root

    send_requests
    # Children prefork forked for the load: stopped with the others.
    # shellcheck disable=SC2046
    track_children apache2 $(children_of "$MASTER" '^apache2 ')
    if ! untapped; then
        wait_exchanges "$LOG" "$N"
        # Every exchange by a child (as www-data), never the parent.
        run logged_pids
        for pid in $output; do
            [ "$pid" != "$MASTER" ] || fail "exchange logged by the parent, pid $pid"
            if kill -0 "$pid" 2>/dev/null; then
                [ "$(ps -o ppid= -p "$pid" | tr -d ' ')" = "$MASTER" ] ||
                    fail "exchange logged by pid $pid, not a child of $MASTER"
                [ "$(ps -o user= -p "$pid")" = www-data ] || fail "pid $pid is not www-data"
            fi
        done
    fi
    local all
    all=$(children_of "$MASTER" '^apache2 ' | tr '\n' ' ')
    kill -TERM "$MASTER"
    # shellcheck disable=SC2086
    wait_gone "$MASTER" $all
    assert_access_log_matches_client
    untapped && return 0
    drain_log
    assert_log_matches_client
}

@test "deploy: apache2 with the prefork MPM, its workers as www-data, logs every request" {
    deploy_apache prefork
}

@test "deploy: apache2 with the event MPM, its workers as www-data, logs every request" {
    deploy_apache event
}

# ------------------------------------------------- the log's descriptor

# assert_no_server_process_holds_log: no process of the server SERVER_PID
# (it, and its descendants running the same executable) has an open file
# descriptor on the log. Checked while the server runs, after it has served
# and the requests are in the log.
assert_no_server_process_holds_log() {
    local procs pid fd held=()
    procs=" $(server_processes "$SERVER_PID" | tr '\n' ' ') "
    [ "$procs" != "  " ] || fail "no server processes found under $SERVER_PID"
    while read -r pid fd; do
        [ -n "$pid" ] || continue
        [[ "$procs" == *" $pid "* ]] && held+=("$(describe_pids "$pid") has fd $fd -> $LOG")
    done < <(fd_holders "$LOG")
    if [ "${#held[@]}" -gt 0 ]; then
        printf '%s\n' "the server's processes ($procs) hold the log:" "${held[@]}" >&2
        return 1
    fi
}

@test "deploy: no process of the server holds the log's file descriptor (nginx master and workers)" {
    make_docroot
    # Workers as root, so that they COULD open the log: none may hold it.
    start_nginx root
    run --separate-stderr curl -s --max-time 20 --parallel --parallel-max 4 -H 'Connection: close' \
        -o /dev/null -w '%{http_code}\n' "$BASE/f/[1-10].bin"
    assert_success
    if ! untapped; then
        wait_exchanges "$LOG" 10
    fi
    run server_processes "$MASTER"
    assert_equal "$(echo "$output" | wc -l)" 3        # master and 2 workers
    assert_no_server_process_holds_log
    quit_nginx
}

@test "deploy: no process of the server holds the log's file descriptor (python http.server)" {
    make_docroot
    start_deployed http_server "$PY" -m http.server --bind 127.0.0.1 --directory "$STAGE/www" "$PORT"
    wait_http "$BASE/"
    run curl -s --max-time 20 -o /dev/null -w '%{http_code}\n' "$BASE/f/[1-3].bin"
    assert_success
    assert_output "$(printf '200\n200\n200')"
    if ! untapped; then
        wait_exchanges "$LOG" 3
    fi
    assert_no_server_process_holds_log
}

# ---------------------------------------------------------- --log -

@test "deploy: \`httptape run --log -\` writes JSON lines to standard output" {
    make_docroot
    # The run's stdout is a pipe, as in a container; cat copies it to
    # $D/stdout and exits when the last writer has closed it.
    mkfifo "$D/stdout.fifo"
    start_bg reader cat "$D/stdout.fifo"
    READER=$SERVER_PID
    OUT=$D/reader.out
    # http.server logs its requests to stderr, but prints its banner on
    # stdout: the wrapper sends the server's own stdout to stderr too, so
    # the run's stdout is httptape's alone. exec: the server keeps the pid.
    local tap=("$STAGED_HTTPTAPE" run --log - --)
    if untapped; then tap=(); fi
    # In $D: a `-` taken for a file name lands there, not in the checkout.
    (cd "$D" && exec "${tap[@]}" sh -c 'exec "$@" >&2' sh \
        "$PY" -m http.server --bind 127.0.0.1 --directory "$STAGE/www" "$PORT") \
        >"$D/stdout.fifo" 2>"$D/server.out" 3>&- &
    SERVER_PID=$!
    echo "$SERVER_PID" >"$D/server.pid"
    wait_http "$BASE/"

    run curl -s --max-time 20 -o /dev/null -w '%{http_code}\n' "$BASE/f/{1,2,5}.bin"
    assert_success
    assert_output "$(printf '200\n200\n404')"
    untapped || wait_exchanges "$OUT" 3
    stop_server server
    # The server is gone: the output ends (EOF) within 10 s.
    wait_gone "$READER"
    # The server's own request log went to stderr.
    run grep -c '"GET /f/[125].bin HTTP/1.1"' "$D/server.out"
    assert_output 3
    if untapped; then
        run cat "$OUT"
        assert_output ''
        return 0
    fi
    # Every line of stdout is a JSON object, an exchange or stats record.
    run jq -R -r 'fromjson | .httptape.type' "$OUT"
    assert_success
    run bash -c "jq -R -r 'fromjson | .httptape.type' '$OUT' | grep -cvxE 'exchange|stats'"
    assert_output 0
    local got
    got=$(exchanges "$OUT" | jq -r '"\(.url.path) \(.http.response.status_code)"' | sort)
    assert_equal "$got" "$(printf '/f/1.bin 200\n/f/2.bin 200\n/f/5.bin 404')"
}
