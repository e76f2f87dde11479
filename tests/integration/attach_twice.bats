#!/usr/bin/env bats
# attach_twice.bats - `httptape attach` on a server that already runs under
# `httptape run`: attach warns once that the exchanges will be logged twice,
# and the two logs' connection ids never collide (each capture session has
# its own tag in the id: <pid>-<session>-<n>, docs/events.md).
#
# Needs what attach needs (root or CAP_BPF + CAP_PERFMON, kernel BTF, a
# build with the BPF toolchain): `httptape attach --check` decides, the test
# skips with its reason otherwise. The server and attach are stopped in
# teardown, pass or fail; every wait is bounded.

load test_helper/common

setup() {
    local out rc=0
    out=$("$HTTPTAPE" attach --check 2>&1) || rc=$?
    case $rc in
    4 | 5 | 6) skip "attach cannot run here: ${out#httptape attach: }" ;;
    esac
    RUN_LOG="$BATS_TEST_TMPDIR/run.jsonl"
    ATTACH_LOG="$BATS_TEST_TMPDIR/attach.jsonl"
    WWW="$BATS_TEST_TMPDIR/www"
    mkdir -p "$WWW"
    printf 'hello\n' >"$WWW/a.txt"
    PORT=$(free_port)
    BASE="http://127.0.0.1:$PORT"
}

teardown() {
    stop_server
}

@test "attach: on a process under run it warns once, and the two logs' connection ids differ" {
    start_tapped http "$RUN_LOG" "$PY" -m http.server "$PORT" --bind 127.0.0.1 \
        --directory "$WWW" --protocol HTTP/1.1
    local srv=$SERVER_PID
    wait_http "$BASE/"
    start_bg attach "$HTTPTAPE" attach --pid "$srv" --log "$ATTACH_LOG"
    local att=$SERVER_PID
    wait_output "httptape attach: attached to pid $srv"
    for i in 1 2 3; do
        curl -s --max-time 5 -o /dev/null "$BASE/a.txt?n=$i"
    done
    wait_exchanges "$RUN_LOG" 3
    wait_exchanges "$ATTACH_LOG" 3
    kill -INT "$att"
    for _ in $(seq 150); do kill -0 "$att" 2>/dev/null || break; sleep 0.1; done

    run grep -c "already has libhttptape.so loaded" "$SERVER_OUT"
    assert_output 1
    grep -F "httptape attach: warning: pid $srv already has libhttptape.so" "$SERVER_OUT"

    # Both logs have the three exchanges; no id is in both.
    local ids_run ids_att
    ids_run=$(exchanges "$RUN_LOG" | jq -r .httptape.connection.id | sort -u)
    ids_att=$(exchanges "$ATTACH_LOG" | jq -r .httptape.connection.id | sort -u)
    [ "$(wc -l <<<"$ids_run")" -eq 3 ] && [ "$(wc -l <<<"$ids_att")" -eq 3 ]
    run comm -12 <(echo "$ids_run") <(echo "$ids_att")
    assert_output ""
    # <pid>-<8 hex digits>-<n>, one session tag per log, a different one in each.
    for id in $ids_run $ids_att; do
        [[ $id =~ ^$srv-[0-9a-f]{8}-[0-9]+$ ]] || { echo "bad id '$id'" >&2; false; }
    done
    [ "$(cut -d- -f2 <<<"$ids_run" | sort -u | wc -l)" -eq 1 ]
    [ "$(cut -d- -f2 <<<"$ids_run" | sort -u)" != "$(cut -d- -f2 <<<"$ids_att" | sort -u)" ]
}

@test "attach: a process without the library gets no warning" {
    start_bg http "$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$WWW"
    local srv=$SERVER_PID
    wait_http "$BASE/"
    start_bg attach "$HTTPTAPE" attach --pid "$srv" --log "$ATTACH_LOG" --duration 1
    wait_output "httptape attach: attached to pid $srv"
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    run grep -c "libhttptape.so" "$SERVER_OUT"
    assert_output 0
}
