#!/usr/bin/env bats
# logfaults.bats - the log file when the world around it misbehaves, with a
# real tapped server (apps/echo_server.py, a threaded http.server app):
# logrotate's "create" rename, deletion, copytruncate, httptape's own size
# rotation, a full disk, kill -9 under load; also the periodic statistics
# record (HTTPTAPE_STATS_INTERVAL) and HTTPTAPE_INHERIT=0, which keeps the
# library out of the programs the server runs.
#
# Every server is stopped in teardown, pass or fail; the disk-full test's
# tmpfs is unmounted there too. Requests are sent by curl with --max-time,
# and every loop is bounded.

load test_helper/common

setup() {
    test_server_vars
    SMALL="$BATS_TEST_TMPDIR/small"
}

teardown() {
    stop_server
    if mountpoint -q "$SMALL" 2>/dev/null; then
        umount "$SMALL" || umount -l "$SMALL"
    fi
}

# start_echo: apps/echo_server.py under httptape, logging to $LOG.
start_echo() {
    start_tapped echo "$LOG" "$PY" "$APPS/echo_server.py" "$PORT"
    wait_output listening
}

# get FROM TO [SIZE]: GET /hello?size=SIZE&i=FROM..TO on one keep-alive
# connection; each response body is SIZE bytes (default 200: a record of
# about 1 KB in the log).
get() {
    curl -s --max-time 10 -o /dev/null "$BASE/hello?size=${3:-200}&i=[$1-$2]"
}

# ids FILE...: the i of every exchange in FILEs, one a line, in file order.
# Fails when a line is not JSON.
ids() {
    cat "$@" | jq -r 'select(.httptape.type == "exchange") | .url.query | capture("i=(?<i>[0-9]+)").i'
}

# all_json FILE...: every line of every FILE is a JSON object.
all_json() {
    local f
    for f in "$@"; do
        jq -eR 'fromjson | type == "object"' "$f" >/dev/null ||
            { echo "$f has a line that is not a JSON object" >&2; return 1; }
    done
}

# seconds TIMESTAMP: an RFC 3339 UTC timestamp with nanoseconds as seconds.
TO_SECONDS='((.[0:19] + "Z") | fromdate) + ("0" + .[19:-1] | tonumber)'

# stop_echo_normally: SIGTERM (the app exits normally on it), waits for its exit
# status, up to 10 s, then for its collector to write the final statistics
# record and exit.
stop_echo_normally() {
    kill -TERM "$SERVER_PID"
    local rc
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    wait "$SERVER_PID"; rc=$?
    rm -f "$BATS_TEST_TMPDIR/echo.pid"
    [ "$rc" -eq 0 ] || { echo "server exited $rc" >&2; show_server_output; return 1; }
    wait_collector_exit "$LOG"
}

# wait_reopened FROM: a request (i = FROM, FROM+1, ...) every 100 ms until an
# exchange shows up in a file at $LOG again, up to 5 s. Sets NEXT to the
# next unused i and REOPEN_S to how long it took.
wait_reopened() {
    local i=$1 start now
    start=$(date +%s.%N)
    while :; do
        get "$i" "$i"
        i=$((i + 1))
        [ "$(count_exchanges "$LOG")" -ge 1 ] && break
        now=$(date +%s.%N)
        if awk -v a="$start" -v b="$now" 'BEGIN { exit !(b - a > 5) }'; then
            echo "no exchange at $LOG 5 s after it was moved away (sent up to i=$((i - 1)))" >&2
            return 1
        fi
        sleep 0.1
    done
    NEXT=$i
    REOPEN_S=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}

@test "logfaults: a log renamed away (logrotate create) is reopened at its path, and no exchange is lost" {
    start_echo
    get 1 5
    wait_exchanges "$LOG" 5
    mv "$LOG" "$LOG.1"
    wait_reopened 6
    awk -v s="$REOPEN_S" 'BEGIN { exit !(s < 2) }'      # "within about a second"
    last=$((NEXT + 2))
    get "$NEXT" "$last"
    for _ in $(seq 100); do
        [ "$(ids "$LOG.1" "$LOG" | wc -l)" -ge "$last" ] && break
        sleep 0.1
    done
    # Every request once, across the two files; the old file got the first ones.
    run bash -c "$(declare -f ids); ids '$LOG.1' '$LOG' | sort -n"
    assert_output "$(seq 1 "$last")"
    run ids "$LOG.1"
    assert_line --index 0 1
    assert_line --index 4 5
    run ids "$LOG"
    assert_line "$last"
    run stat -c %a "$LOG"
    assert_output 600
    all_json "$LOG" "$LOG.1"
}

@test "logfaults: after a log is renamed away (logrotate create) not one batch more goes to the old file" {
    start_echo
    get 1 3
    wait_exchanges "$LOG" 3
    mv "$LOG" "$LOG.1"
    # At once, well inside a second: the writer looks before every batch.
    get 4 8
    for _ in $(seq 100); do
        [ "$(ids "$LOG.1" "$LOG" 2>/dev/null | wc -l)" -ge 8 ] && break
        sleep 0.1
    done
    run ids "$LOG.1"
    assert_output "$(seq 1 3)"
    run ids "$LOG"
    assert_output "$(seq 4 8)"
}

@test "logfaults: a deleted log is re-created at its path with the next exchanges" {
    start_echo
    get 1 5
    wait_exchanges "$LOG" 5
    rm "$LOG"
    wait_reopened 6
    awk -v s="$REOPEN_S" 'BEGIN { exit !(s < 2) }'
    last=$((NEXT + 2))
    get "$NEXT" "$last"
    for _ in $(seq 100); do
        [ "$(count_exchanges "$LOG")" -ge 4 ] && break
        sleep 0.1
    done
    # Exchanges written to the deleted file before the reopen are gone with
    # it; from the first one in the new file on, none is missing.
    run ids "$LOG"
    first=${lines[0]}
    assert_output "$(seq "$first" "$last")"
    all_json "$LOG"
}

@test "logfaults: with the log's directory deleted, exchanges are counted as dropped (said once) until it exists again" {
    LOG="$BATS_TEST_TMPDIR/logs/log.jsonl"
    mkdir -p "${LOG%/*}"
    start_echo
    get 1 3
    wait_exchanges "$LOG" 3
    rm -rf "${LOG%/*}"
    get 4 13                          # into a directory that is gone
    sleep 0.5                         # the writer has looked, and dropped them
    mkdir -p "${LOG%/*}"
    # The path works again: the next exchanges go to a new file there.
    i=13
    for _ in $(seq 25); do
        i=$((i + 1))
        get "$i" "$i"
        sleep 0.2
        [ -e "$LOG" ] && [ "$(count_exchanges "$LOG")" -ge 1 ] && break
    done
    [ "$(count_exchanges "$LOG")" -ge 1 ]
    sent=$i
    stop_echo_normally
    run ids "$LOG"
    assert_equal "${lines[0]}" 14   # none of 4..13 went to the deleted file
    run jq -r 'select(.httptape.type == "stats" and .httptape.final) | .httptape.stats
               | [.exchanges_seen, .exchanges_written, .dropped_write_error] | @tsv' "$LOG"
    read -r seen written dropped <<<"$output"
    assert_equal "$seen" "$sent"
    assert_equal "$dropped" 10
    assert_equal "$written" $((sent - 10))
    assert_equal "$(grep -c 'cannot open log' "$SERVER_OUT")" 1
}

@test "logfaults: copytruncate leaves no NUL bytes: the next exchanges are written from the start of the file" {
    start_echo
    get 1 5
    wait_exchanges "$LOG" 5
    cp "$LOG" "$LOG.1"
    truncate -s 0 "$LOG"
    get 6 10
    wait_exchanges "$LOG" 5
    sleep 0.2                         # nothing more may arrive
    run bash -c "tr -d '\\000' <'$LOG' | cmp -s - '$LOG'"
    assert_success                    # not a single NUL byte
    run head -c 1 "$LOG"
    assert_output '{'
    run ids "$LOG"
    assert_output "$(seq 6 10)"
    run ids "$LOG.1"
    assert_output "$(seq 1 5)"
    all_json "$LOG" "$LOG.1"
}

@test "logfaults: HTTPTAPE_ROTATE_SIZE=64k rotates the log to log.1, log.2, ... and loses no exchange" {
    export HTTPTAPE_ROTATE_SIZE=64k   # HTTPTAPE_ROTATE_KEEP: the default, 5
    start_echo
    get 1 100 1600                    # ~2.4 KB a record: ~240 KB in all
    for _ in $(seq 100); do
        [ "$(ids "$LOG" "$LOG".* 2>/dev/null | wc -l)" -ge 100 ] && break
        sleep 0.1
    done
    [ -e "$LOG.1" ]
    [ -e "$LOG.2" ]
    [ -e "$LOG.3" ]
    [ ! -e "$LOG.6" ]
    # Every exchange once, oldest in the highest-numbered file.
    files=()
    for n in 5 4 3 2 1; do
        if [ -e "$LOG.$n" ]; then files+=("$LOG.$n"); fi
    done
    files+=("$LOG")
    run ids "${files[@]}"
    assert_output "$(seq 1 100)"
    all_json "${files[@]}"
    # A rotated file is about the rotation size (it is rotated at a record boundary).
    for f in "${files[@]}"; do
        [ "$f" = "$LOG" ] && continue
        size=$(stat -c %s "$f")
        if [ "$size" -lt $((32 * 1024)) ] || [ "$size" -gt $((128 * 1024)) ]; then
            echo "$f: $size bytes, not about 64 KiB" >&2
            false
        fi
        [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ]   # whole lines only
    done
}

@test "logfaults: HTTPTAPE_ROTATE_KEEP=2 keeps log.1 and log.2 only, dropping the oldest records" {
    export HTTPTAPE_ROTATE_SIZE=16k HTTPTAPE_ROTATE_KEEP=2
    start_echo
    get 1 100 1600                    # ~240 KB: many rotations of 16 KB
    for _ in $(seq 100); do
        ids "$LOG" 2>/dev/null | grep -qx 100 && break
        sleep 0.1
    done
    sleep 0.2
    run bash -c "cd '$BATS_TEST_TMPDIR' && ls -d log.jsonl*"
    assert_output $'log.jsonl\nlog.jsonl.1\nlog.jsonl.2'
    all_json "$LOG.2" "$LOG.1" "$LOG"
    # What is kept is the newest records, in order, without a hole, up to the last.
    run ids "$LOG.2" "$LOG.1" "$LOG"
    first=${lines[0]}
    [ "$first" -gt 1 ]
    assert_output "$(seq "$first" 100)"
}

@test "logfaults: on a full disk the app answers every request promptly and the lost exchanges are counted" {
    mkdir -p "$SMALL"
    mount -t tmpfs -o size=1m tmpfs "$SMALL" 2>"$BATS_TEST_TMPDIR/mount.err" ||
        skip "cannot mount a tmpfs here (needs CAP_SYS_ADMIN): $(cat "$BATS_TEST_TMPDIR/mount.err")"
    LOG="$SMALL/log.jsonl"
    start_echo
    get 1 3
    wait_exchanges "$LOG" 3
    dd if=/dev/zero of="$SMALL/fill" bs=4k 2>/dev/null || true   # until ENOSPC
    run df --output=avail -B1 "$SMALL"
    assert_line --index 1 --regexp '^ *0$'

    # 40 requests while nothing can be written, each on its own connection.
    for i in $(seq 4 43); do
        curl -s --max-time 5 -o /dev/null -w '%{http_code} %{time_total}\n' \
            "$BASE/hello?size=1000&i=$i" >>"$BATS_TEST_TMPDIR/times"
    done
    run awk '$1 != 200' "$BATS_TEST_TMPDIR/times"
    assert_output ""                  # all answered
    run awk '$2 >= 1' "$BATS_TEST_TMPDIR/times"
    assert_output ""                  # none waited a second
    sleep 0.3                         # the writer has tried, and failed

    rm "$SMALL/fill"
    # Space again: new exchanges are written (one request every 200 ms, up to
    # 5 s, until one of them is in the log: the writer naps up to 100 ms).
    i=43
    for _ in $(seq 25); do
        i=$((i + 1))
        get "$i" "$i"
        sleep 0.2
        ids "$LOG" 2>/dev/null | awk '$1 >= 44' | grep -q . && break
    done
    ids "$LOG" | awk '$1 >= 44' | grep -q .
    sent=$i

    stop_echo_normally
    all_json "$LOG"                   # no partial line anywhere
    run jq -c 'select(.httptape.type == "stats" and .httptape.final) | .httptape.stats' "$LOG"
    assert_equal "${#lines[@]}" 1
    stats=$output
    run jq -r '[.exchanges_seen, .exchanges_written, .exchanges_dropped, .dropped_write_error]
               | map(tostring) | join(" ")' <<<"$stats"
    read -r seen written dropped write_errors <<<"$output"
    assert_equal "$seen" "$sent"
    assert_equal "$seen" $((written + dropped))
    [ "$write_errors" -gt 0 ]
    assert_equal "$(count_exchanges "$LOG")" "$written"
}

@test "logfaults: after kill -9 under load every complete line of the log is valid JSON" {
    start_echo
    head -c 600 /dev/urandom | base64 -w0 >"$BATS_TEST_TMPDIR/body"
    printf 'wrk.method = "POST"\nwrk.body = "%s"\n' "$(cat "$BATS_TEST_TMPDIR/body")" \
        >"$BATS_TEST_TMPDIR/post.lua"
    server=$SERVER_PID
    start_bg wrk timeout 10 wrk -t2 -c8 -d5s --timeout 2s -s "$BATS_TEST_TMPDIR/post.lua" "$BASE/echo"
    sleep 1.5
    kill -KILL "$server"
    wait "$server" 2>/dev/null || true
    rm -f "$BATS_TEST_TMPDIR/echo.pid"
    stop_server wrk
    # Only a last line without its newline may be cut short.
    if [ -n "$(tail -c 1 "$LOG")" ]; then
        head -n -1 "$LOG" >"$BATS_TEST_TMPDIR/complete"
    else
        cp "$LOG" "$BATS_TEST_TMPDIR/complete"
    fi
    whole=$(wc -l <"$BATS_TEST_TMPDIR/complete")
    [ "$whole" -ge 20 ]               # it was under load
    all_json "$BATS_TEST_TMPDIR/complete"
}

@test "logfaults: HTTPTAPE_STATS_INTERVAL=1 writes a statistics record every second" {
    export HTTPTAPE_STATS_INTERVAL=1
    start_echo
    get 1 3
    wait_exchanges "$LOG" 3
    for _ in $(seq 60); do
        [ "$(jq -c 'select(.httptape.type == "stats")' "$LOG" | wc -l)" -ge 3 ] && break
        sleep 0.1
    done
    run jq -c "select(.httptape.type == \"stats\")
               | [.process.pid, (.httptape.final // false), .httptape.stats.exchanges_seen]" "$LOG"
    [ "${#lines[@]}" -ge 3 ]
    # Each is this process's, none is the final record, the third counts what was served.
    assert_line --index 2 "[$SERVER_PID,false,3]"
    refute_output --partial true
    # About a second apart.
    run jq -sr "map(select(.httptape.type == \"stats\") | .timestamp | $TO_SECONDS)
                | [range(1; length) as \$k | .[\$k] - .[\$k - 1]]
                | map(select(. < 0.5 or . > 2)) | length" "$LOG"
    assert_output 0
    stop_echo_normally
    run jq -c 'select(.httptape.type == "stats") | .httptape.final' "$LOG"
    assert_line --index $((${#lines[@]} - 1)) true
}

@test "logfaults: by default a program the server runs inherits the library in LD_PRELOAD" {
    start_echo
    curl -s --max-time 10 -o "$BATS_TEST_TMPDIR/env" "$BASE/env"
    grep -q '^PATH=' "$BATS_TEST_TMPDIR/env"   # it is the child's environment
    run grep '^LD_PRELOAD=' "$BATS_TEST_TMPDIR/env"
    assert_output --regexp "^LD_PRELOAD=(.* )?$HTTPTAPE_LIB( .*)?$"
}

@test "logfaults: HTTPTAPE_INHERIT=0 keeps the library out of the programs the server runs, not out of the server" {
    other=$(ldconfig -p | awk '$1 == "libm.so.6" && /x86-64/ { print $NF; exit }')
    [ -e "$other" ]
    export HTTPTAPE_INHERIT=0 LD_PRELOAD="$other"
    start_echo
    curl -s --max-time 10 -o "$BATS_TEST_TMPDIR/env" "$BASE/env"
    grep -q '^PATH=' "$BATS_TEST_TMPDIR/env"   # it is the child's environment
    run grep '^LD_PRELOAD=' "$BATS_TEST_TMPDIR/env"
    refute_output --partial libhttptape
    assert_output "LD_PRELOAD=$other" # the app's own preloads are left alone
    # The server itself is still recorded.
    wait_exchanges "$LOG" 1
    run jq -c '[.url.path, .http.response.status_code]' <(exchanges "$LOG")
    assert_output '["/env",200]'
}
