#!/usr/bin/env bats
# run.bats - the `httptape run` command line: flag and command errors and
# their exit codes, LD_PRELOAD handling, the log file's mode and %p name,
# a bad HTTPTAPE_* setting seen by the library itself, and --max-body 0.
#
# Servers (Python's http.server) are started per test and stopped in
# teardown, pass or fail.

load test_helper/common

setup() {
    WWW="$BATS_TEST_TMPDIR/www"
    mkdir -p "$WWW"
    printf 'hello\n' >"$WWW/a.txt"
    test_server_vars
    HTTP_SERVER=("$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$WWW")
    cd "$BATS_TEST_TMPDIR" || return  # a default ./httptape.jsonl lands here, not in the repo
}

teardown() {
    stop_server
}

@test "run: --max-body banana exits 2 naming --max-body" {
    run --separate-stderr "$HTTPTAPE" run --max-body banana -- /bin/true
    assert_failure 2
    assert_output ""
    [[ $stderr == *--max-body* ]]
}

@test "run: no command exits 2 with usage on stderr" {
    run --separate-stderr "$HTTPTAPE" run
    assert_failure 2
    [[ $stderr == *"usage: httptape run"* ]]
    run --separate-stderr "$HTTPTAPE" run --log "$LOG" --
    assert_failure 2
}

@test "run: a command that does not exist exits 127 naming it" {
    run -127 --separate-stderr "$HTTPTAPE" run -- "$BATS_TEST_TMPDIR/no-such-server"
    assert_failure 127
    [[ $stderr == *no-such-server* ]]
}

@test "run: --log into a missing directory exits 2 before starting the command" {
    run --separate-stderr "$HTTPTAPE" run --log "$BATS_TEST_TMPDIR/nodir/t.jsonl" -- \
        /bin/sh -c 'echo started'
    assert_failure 2
    assert_output ""
    [[ $stderr == *nodir* ]]
}

@test "run: an existing LD_PRELOAD is kept after ours" {
    other=$(ldconfig -p | awk '$1 == "libm.so.6" && /x86-64/ { print $NF; exit }')
    [ -e "$other" ]
    run env LD_PRELOAD="$other" "$HTTPTAPE" run -- /usr/bin/env
    assert_success
    assert_line "LD_PRELOAD=$HTTPTAPE_LIB $other"
}

@test "run: a nested run does not add the library twice" {
    run "$HTTPTAPE" run -- "$HTTPTAPE" run -- /usr/bin/env
    assert_success
    assert_line "LD_PRELOAD=$HTTPTAPE_LIB"
}

@test "run: the log file is created mode 0600 once a request was served" {
    umask 000                         # the mode must not come from the umask
    start_tapped http "$LOG" "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
    wait_exchanges "$LOG" 1
    run stat -c %a "$LOG"
    assert_output 600
}

@test "run: --log with %p writes to a file named after the server's pid" {
    start_tapped http "$BATS_TEST_TMPDIR/t-%p.jsonl" "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
    wait_exchanges "$BATS_TEST_TMPDIR/t-$SERVER_PID.jsonl" 1
    run jq -r .url.path <(exchanges "$BATS_TEST_TMPDIR/t-$SERVER_PID.jsonl")
    assert_output /a.txt
    [ ! -e "$BATS_TEST_TMPDIR/t-%p.jsonl" ]
}

@test "run: a bad HTTPTAPE_MAX_BODY in the environment is reported once and the server runs unrecorded" {
    start_bg http env LD_PRELOAD="$HTTPTAPE_LIB" HTTPTAPE_MAX_BODY=banana HTTPTAPE_LOG="$LOG" \
        "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    run curl -s --max-time 5 "$BASE/a.txt"
    assert_success
    assert_output hello
    stop_server
    run grep -c httptape "$SERVER_OUT"
    assert_output 1
    run grep httptape "$SERVER_OUT"
    assert_output --partial HTTPTAPE_MAX_BODY
    [ ! -e "$LOG" ]
}

@test "run: --max-body 0 logs body sizes but no content" {
    start_bg http "$HTTPTAPE" run --max-body 0 --log "$LOG" -- "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
    curl -s --max-time 5 -o /dev/null -d 'some=form' "$BASE/a.txt"   # 501, but has a request body
    wait_exchanges "$LOG" 2
    run jq -c '[.http.request.body.size, .http.response.body.size,
                (.http.request.body | has("content")), (.http.response.body | has("content"))]' \
        <(exchanges "$LOG")
    assert_line --index 0 '[0,6,false,false]'
    assert_line --index 1 --regexp '^\[9,[1-9][0-9]*,false,false\]$'
}
