#!/usr/bin/env bats
# tail.bats - `httptape tail`: the last N records, the human and --json
# formats, error exits, and -f following appends, truncation and replacement.
#
# Every command runs under `timeout`; every wait polls for at most 5 s; the
# background `tail -f` is always stopped in teardown, even when a test fails.

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    HT="${HTTPTAPE_BIN:-$BATS_TEST_DIRNAME/../../build/httptape}"
    FIX="$BATS_TEST_DIRNAME/fixtures/tail-sample.jsonl"
    LOG="$BATS_TEST_TMPDIR/log.jsonl"
    OUT="$BATS_TEST_TMPDIR/out"
    ERR="$BATS_TEST_TMPDIR/err"
    TAIL_PID=
}

teardown() {
    stop_tail || true
}

# One exchange record whose path is /$1.
record() {
    printf '{"timestamp":"2026-11-21T23:57:12.123456789Z","url":{"path":"/%s"},' "$1"
    printf '"http":{"request":{"method":"GET","body":{"size":0}},'
    printf '"response":{"status_code":200,"body":{"size":5}}},'
    printf '"httptape":{"type":"exchange","duration_ns":1500}}\n'
}

# Starts `httptape tail -f ARGS... $LOG` in the background (fd 3 closed so
# bats does not wait for it).
start_tail() {
    "$HT" tail -f "$@" "$LOG" >"$OUT" 2>"$ERR" 3>&- &
    TAIL_PID=$!
}

# Stops the background tail: SIGTERM (or $1), up to 2 s, then SIGKILL.
# Sets TAIL_STATUS to its exit status.
stop_tail() {
    [ -n "$TAIL_PID" ] || return 0
    kill "-${1:-TERM}" "$TAIL_PID" 2>/dev/null || true
    for _ in $(seq 20); do
        kill -0 "$TAIL_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$TAIL_PID" 2>/dev/null || true
    TAIL_STATUS=0
    wait "$TAIL_PID" || TAIL_STATUS=$?
    TAIL_PID=
}

# Waits up to 5 s for a line of $OUT containing $1.
wait_for_output() {
    for _ in $(seq 50); do
        grep -qF -- "$1" "$OUT" && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$1' in output:" >&2
    cat "$OUT" >&2
    echo "stderr:" >&2
    cat "$ERR" >&2
    return 1
}

@test "tail: renders the sample log one line per record" {
    run --separate-stderr timeout 5 "$HT" tail --stats "$FIX"
    assert_success
    assert_output - <<'EOF'
2026-11-21T23:57:12.123Z GET /items?page=2&sort=name 200 4.56ms req=0B resp=1532B [c1#0]
2026-11-21T23:57:12.200Z POST /items 201 850ns req=27B resp=0B [c1#1]
2026-11-21T23:57:12.987Z GET /stream 200 12.3us req=0B resp=65536B INCOMPLETE(response_body_truncated,capture_lost) anomalies=bare_lf,duplicate_content_length [c2#3]
2026-11-21T23:57:13.000Z PUT /upload - 1.23s req=1048576B resp=- INCOMPLETE(no_response)
2026-11-21T23:57:14.000Z -- stats pid 4242: exchanges=3 bytes_logged=41230 dropped=0 queue_high_water=2
2026-11-21T23:57:14.500Z -- start record
2026-11-21T23:57:15.250Z DELETE /a\x1b[31mb 204 1.00ms req=- resp=-
2026-11-21T23:57:16.000Z -- stats pid 4242: exchanges=4 bytes_logged=41230 dropped=0 queue_high_water=2 (final)
EOF
}

@test "tail: shows the last 10 of a 25-record file by default" {
    for i in $(seq 25); do record "r$i"; done >"$LOG"
    run timeout 5 "$HT" tail "$LOG"
    assert_success
    assert_equal "${#lines[@]}" 10
    assert_line --index 0 --partial " GET /r16 200 "
    assert_line --index 9 --partial " GET /r25 200 "
}

@test "tail: -n 3 shows the last three records (a line that is not JSON counts, stats do not)" {
    run --separate-stderr timeout 5 "$HT" tail -n 3 "$FIX"
    assert_success
    assert_equal "$stderr" "httptape tail: line 7: not a JSON object"
    assert_equal "${#lines[@]}" 2
    assert_line --index 0 "2026-11-21T23:57:14.500Z -- start record"
    assert_line --index 1 --partial " DELETE "
}

# One stats record of process $1 with exchanges=$2.
stats_record() {
    printf '{"timestamp":"2026-11-21T23:58:00Z","process":{"pid":%s},' "$1"
    printf '"httptape":{"type":"stats","stats":{"exchanges":%s}}}\n' "$2"
}

# Exchanges /r1../r6 with a stats record after each (the periodic statistics on).
interleaved_log() {
    for i in $(seq 6); do record "r$i"; stats_record 7 "$i"; done
}

@test "tail: -n 3 counts exchanges, not the statistics records between them" {
    interleaved_log >"$LOG"
    for src in file stdin; do
        if [ "$src" = file ]; then
            run --separate-stderr timeout 5 "$HT" tail -n 3 "$LOG"
        else
            run --separate-stderr timeout 5 "$HT" tail -n 3 - <"$LOG"
        fi
        assert_success
        assert_equal "${#lines[@]}" 3
        assert_line --index 0 --partial " GET /r4 200 "
        assert_line --index 2 --partial " GET /r6 200 "
        refute_output --partial "-- stats"
    done
}

@test "tail: --stats shows the statistics records among the last N exchanges" {
    interleaved_log >"$LOG"
    for src in file stdin; do
        if [ "$src" = file ]; then
            run --separate-stderr timeout 5 "$HT" tail --stats -n 3 "$LOG"
        else
            run --separate-stderr timeout 5 "$HT" tail --stats -n 3 - <"$LOG"
        fi
        assert_success
        assert_equal "${#lines[@]}" 7
        assert_line --index 0 "2026-11-21T23:58:00.000Z -- stats pid 7: exchanges=3"
        assert_line --index 1 --partial " GET /r4 200 "
        assert_line --index 5 --partial " GET /r6 200 "
        assert_line --index 6 "2026-11-21T23:58:00.000Z -- stats pid 7: exchanges=6"
    done
}

@test "tail: a log of mostly statistics records still shows the last N exchanges" {
    { record first; for i in $(seq 5000); do stats_record 7 "$i"; done; record a
      for i in $(seq 5000); do stats_record 7 "$i"; done; record b; } >"$LOG"
    run --separate-stderr timeout 5 "$HT" tail -n 3 "$LOG"
    assert_success
    assert_equal "${#lines[@]}" 3
    assert_line --index 0 --partial " GET /first 200 "
    assert_line --index 2 --partial " GET /b 200 "
}

@test "tail: -f shows appended statistics records only with --stats" {
    interleaved_log >"$LOG"
    start_tail -n 1
    wait_for_output " GET /r6 200 "
    { stats_record 8 1; record r7; } >>"$LOG"
    wait_for_output " GET /r7 200 "
    stop_tail
    run cat "$OUT"
    refute_output --partial "-- stats"
    start_tail --stats -n 1      # r7, and the stats records since r6
    wait_for_output " GET /r7 200 "
    { stats_record 8 2; record r8; } >>"$LOG"
    wait_for_output " GET /r8 200 "
    run cat "$OUT"
    assert_equal "${#lines[@]}" 5
    assert_line --index 0 "2026-11-21T23:58:00.000Z -- stats pid 7: exchanges=6"
    assert_line --index 1 "2026-11-21T23:58:00.000Z -- stats pid 8: exchanges=1"
    assert_line --index 2 --partial " GET /r7 200 "
    assert_line --index 3 "2026-11-21T23:58:00.000Z -- stats pid 8: exchanges=2"
    assert_line --index 4 --partial " GET /r8 200 "
}

@test "tail: -n 0 shows nothing" {
    run timeout 5 "$HT" tail -n 0 "$FIX"
    assert_success
    assert_output ""
}

@test "tail: --json passes records through byte for byte" {
    timeout 5 "$HT" tail --json --stats -n 100 "$FIX" >"$OUT" 2>"$ERR"
    sed '4d;7d' "$FIX" >"$BATS_TEST_TMPDIR/expected"   # the two non-objects
    cmp "$BATS_TEST_TMPDIR/expected" "$OUT"
    timeout 5 "$HT" tail --json -n 3 "$FIX" >"$OUT" 2>"$ERR"
    cmp <(sed -n '8,9p' "$FIX") "$OUT"    # line 7 is not an object, 10 is stats
}

@test "tail: an incomplete exchange shows its gaps, anomalies and connection" {
    run --separate-stderr timeout 5 "$HT" tail "$FIX"
    assert_line "2026-11-21T23:57:12.987Z GET /stream 200 12.3us req=0B resp=65536B INCOMPLETE(response_body_truncated,capture_lost) anomalies=bare_lf,duplicate_content_length [c2#3]"
}

@test "tail: an exchange without a response shows dashes" {
    run --separate-stderr timeout 5 "$HT" tail "$FIX"
    assert_line "2026-11-21T23:57:13.000Z PUT /upload - 1.23s req=1048576B resp=- INCOMPLETE(no_response)"
}

@test "tail: a stats record lists its counters in file order" {
    run --separate-stderr timeout 5 "$HT" tail --stats "$FIX"
    assert_line "2026-11-21T23:57:14.000Z -- stats pid 4242: exchanges=3 bytes_logged=41230 dropped=0 queue_high_water=2"
    assert_line --partial "-- stats pid 4242: exchanges=4 bytes_logged=41230 dropped=0 queue_high_water=2 (final)"
}

@test "tail: a line that is not a JSON object is reported on stderr and skipped" {
    run --separate-stderr timeout 5 "$HT" tail --stats "$FIX"
    assert_success
    assert_equal "$stderr" "httptape tail: line 4: not a JSON object
httptape tail: line 7: not a JSON object"
    assert_equal "${#lines[@]}" 8
    refute_output --partial "not json"
}

@test "tail: - reads standard input" {
    run --separate-stderr bash -c 'cat "$1" | timeout 5 "$2" tail --stats -n 2 -' _ "$FIX" "$HT"
    assert_success
    assert_equal "${#lines[@]}" 3
    assert_line --index 2 --partial "(final)"
}

@test "tail: --help prints usage on stdout and exits 0" {
    run --separate-stderr timeout 5 "$HT" tail --help
    assert_success
    assert_line --index 0 --partial "usage: httptape tail"
    assert_equal "$stderr" ""
}

@test "tail: a bad flag or line count exits 2 with a usage hint" {
    run --separate-stderr timeout 5 "$HT" tail --bogus "$FIX"
    assert_failure 2
    assert_output ""
    assert_equal "${stderr_lines[0]}" "httptape tail: unknown option '--bogus'"
    assert_equal "${stderr_lines[1]:0:6}" "usage:"
    run --separate-stderr timeout 5 "$HT" tail -n lots "$FIX"
    assert_failure 2
    run --separate-stderr timeout 5 "$HT" tail
    assert_failure 2
}

@test "tail: a missing file exits 1 naming the file" {
    run --separate-stderr timeout 5 "$HT" tail "$BATS_TEST_TMPDIR/nope.jsonl"
    assert_failure 1
    assert_equal "$stderr" "httptape tail: cannot open '$BATS_TEST_TMPDIR/nope.jsonl': No such file or directory"
}

@test "tail: -f prints records appended after it started" {
    record first >"$LOG"
    start_tail -n 1
    wait_for_output " /first "
    record second >>"$LOG"
    record third >>"$LOG"
    wait_for_output " /third "
    stop_tail
    assert_equal "$TAIL_STATUS" 0
    run cat "$OUT"
    assert_equal "${#lines[@]}" 3
    assert_line --index 1 --partial " /second "
}

@test "tail: -f holds a partial line until its newline arrives" {
    record first >"$LOG"
    start_tail
    wait_for_output " /first "
    record held | tr -d '\n' >>"$LOG"
    sleep 0.6                          # three polls
    run grep -c "/held" "$OUT"
    assert_output 0
    echo >>"$LOG"
    wait_for_output " /held "
    run cat "$ERR"
    assert_output ""
}

@test "tail: -f starts again when the file is truncated" {
    for i in $(seq 5); do record "old$i"; done >"$LOG"
    start_tail -n 1
    wait_for_output " /old5 "
    : >"$LOG"
    record fresh >>"$LOG"
    wait_for_output " /fresh "
    grep -qF "file truncated" "$ERR"
}

@test "tail: -f prints every line of a file truncated and refilled between two looks" {
    for i in $(seq 4); do record "old$i"; done >"$LOG"
    start_tail -n 4
    wait_for_output " /old4 "
    # One open(O_TRUNC) and six lines, faster than a poll: the file is longer
    # than before when tail next looks, and has the same inode.
    for i in $(seq 6); do record "new$i"; done >"$LOG"
    wait_for_output " /new6 "
    sleep 0.3                          # a late extra line would show by now
    for i in $(seq 6); do
        grep -qF " /new$i " "$OUT" || { cat "$OUT" >&2; false; }
    done
    run grep -c . "$OUT"
    assert_output 10
    grep -qF "file truncated" "$ERR"
}

@test "tail: -f notices a refill of the same length with different content" {
    for i in $(seq 4); do record "old$i"; done >"$LOG"
    start_tail -n 4
    wait_for_output " /old4 "
    sleep 0.3
    # Same size as before, then two more lines: only the content says it changed.
    { for i in $(seq 4); do record "new$i"; done; record "new5"; record "new6"; } >"$LOG.tmp"
    cat "$LOG.tmp" >"$LOG"
    wait_for_output " /new6 "
    sleep 0.3
    run grep -c " /new" "$OUT"
    assert_output 6
}

@test "tail: -f survives the file being replaced" {
    record first >"$LOG"
    start_tail
    wait_for_output " /first "
    record new1 >"$BATS_TEST_TMPDIR/new.jsonl"
    record last-of-old >>"$LOG"        # the old file is finished first
    mv "$BATS_TEST_TMPDIR/new.jsonl" "$LOG"
    wait_for_output " /new1 "
    record new2 >>"$LOG"
    wait_for_output " /new2 "
    grep -qF " /last-of-old " "$OUT"
    run grep -c . "$OUT"
    assert_output 4
}

@test "tail: -f waits for a deleted file to reappear" {
    record first >"$LOG"
    start_tail
    wait_for_output " /first "
    rm "$LOG"
    sleep 0.5
    record again >"$LOG"
    wait_for_output " /again "
}

@test "tail: -f stops cleanly on SIGINT" {
    record first >"$LOG"
    start_tail
    wait_for_output " /first "
    stop_tail INT
    assert_equal "$TAIL_STATUS" 0
}

# ---- selection (--status, --path, --method, --slower-than, --grep) ----------

# xrec METHOD PATH STATUS DURATION_NS [REQ_BODY [RESP_BODY [RESP_ENCODING]]]:
# one exchange record; an empty STATUS or DURATION leaves the field out.
xrec() {
    jq -nc --arg m "$1" --arg p "$2" --arg s "$3" --arg d "$4" \
        --arg qb "${5:-}" --arg rb "${6:-}" --arg re "${7:-}" '
        {timestamp: "2026-11-21T23:57:12.123456789Z", url: {path: $p},
         http: {request: {method: $m, body: ({size: ($qb | length)}
                                             + if $qb != "" then {content: $qb} else {} end)},
                response: ({body: ({size: ($rb | length)}
                                   + if $rb != "" then {content: $rb} else {} end
                                   + if $re != "" then {encoding: $re} else {} end)}
                           + if $s != "" then {status_code: ($s | tonumber)} else {} end)},
         httptape: ({type: "exchange"}
                    + if $d != "" then {duration_ns: ($d | tonumber)} else {} end)}'
}

# A log with one record of each kind the filters tell apart.
selection_log() {
    {
        xrec GET /api/items/1 200 1500000
        xrec POST /api/items 201 250000000 '{"name":"needle-in-request"}'
        xrec GET /api/items/2 404 800
        xrec DELETE /api/items/3 500 2000000000
        xrec GET /static/app.js 503 300000 '' 'AAEC/w==' base64
        xrec PUT /upload '' '' 'x'
        printf '{"timestamp":"2026-11-21T23:57:14.000Z","process":{"pid":1},"httptape":{"type":"stats","stats":{"exchanges":6}}}\n'
        xrec GET /api/users/7 302 90000000 '' 'a response with needle-in-response'
    } >"$LOG"
}

# Paths of the exchange lines tail printed, one a line.
shown_paths() {
    awk '$2 != "--" { print $3 }'
}

@test "tail --status: an exact code, a class, and a list of both" {
    selection_log
    run --separate-stderr "$HT" tail --status 5xx "$LOG"
    assert_success
    assert_equal "$(shown_paths <<<"$output" | tr '\n' ' ')" "/api/items/3 /static/app.js "
    run --separate-stderr "$HT" tail --status 404 "$LOG"
    assert_equal "$(shown_paths <<<"$output")" "/api/items/2"
    run --separate-stderr "$HT" tail --status=2xx,302,5XX "$LOG"
    assert_equal "$(shown_paths <<<"$output" | tr '\n' ' ')" \
        "/api/items/1 /api/items /api/items/3 /static/app.js /api/users/7 "
}

@test "tail --path: an fnmatch glob on url.path; '*' also crosses '/'" {
    selection_log
    run --separate-stderr "$HT" tail --path '/api/items/*' "$LOG"
    assert_equal "$(shown_paths <<<"$output" | tr '\n' ' ')" "/api/items/1 /api/items/2 /api/items/3 "
    run --separate-stderr "$HT" tail --path '/api/*' "$LOG"
    assert_equal "$(shown_paths <<<"$output" | wc -l)" 5
    run --separate-stderr "$HT" tail --path '/static/*.[jc]s' "$LOG"
    assert_equal "$(shown_paths <<<"$output")" "/static/app.js"
}

@test "tail --method: one method or a list, in any case" {
    selection_log
    run --separate-stderr "$HT" tail --method post "$LOG"
    assert_equal "$(shown_paths <<<"$output")" "/api/items"
    run --separate-stderr "$HT" tail --method DELETE,put "$LOG"
    assert_equal "$(shown_paths <<<"$output" | tr '\n' ' ')" "/api/items/3 /upload "
}

@test "tail --slower-than: durations in us, ms and s; unfinished exchanges never match" {
    selection_log
    run --separate-stderr "$HT" tail --slower-than 200ms "$LOG"
    assert_equal "$(shown_paths <<<"$output" | tr '\n' ' ')" "/api/items /api/items/3 "
    run --separate-stderr "$HT" tail --slower-than 1s "$LOG"
    assert_equal "$(shown_paths <<<"$output")" "/api/items/3"
    run --separate-stderr "$HT" tail --slower-than 1us "$LOG"
    assert_equal "$(shown_paths <<<"$output" | wc -l)" 5       # not /api/items/2 (800 ns), not /upload
    run --separate-stderr "$HT" tail --slower-than 200 "$LOG"
    assert_failure 2
    assert_equal "$stderr" "httptape tail: bad value '200' for --slower-than (want a duration with a unit: 200ms, 1.5s, 800us)
usage: httptape tail [-f|--follow] [-n N|--lines N] [--json] [SELECTION] FILE... (see 'httptape tail --help')"
}

@test "tail --grep: text in request bodies, response bodies, and base64 bodies decoded" {
    selection_log
    run --separate-stderr "$HT" tail --grep needle-in "$LOG"
    assert_equal "$(shown_paths <<<"$output" | tr '\n' ' ')" "/api/items /api/users/7 "
    run --separate-stderr "$HT" tail --grep "$(printf '\x02\xff')" "$LOG"
    assert_equal "$(shown_paths <<<"$output")" "/static/app.js"
    run --separate-stderr "$HT" tail --grep nowhere "$LOG"
    assert_success
    assert_output ""
}

@test "tail: filters combine, and -n counts only the selected records" {
    selection_log
    run --separate-stderr "$HT" tail --method GET --status 2xx,3xx,4xx --path '/api/*' "$LOG"
    assert_equal "$(shown_paths <<<"$output" | tr '\n' ' ')" "/api/items/1 /api/items/2 /api/users/7 "
    run --separate-stderr "$HT" tail -n 2 --method GET "$LOG"
    assert_equal "$(shown_paths <<<"$output" | tr '\n' ' ')" "/static/app.js /api/users/7 "
    run --separate-stderr "$HT" tail -n 1 --json --status 404 - <"$LOG"
    assert_equal "$(jq -r .url.path <<<"$output")" /api/items/2
}

@test "tail --no-stats: statistics records hidden again after --stats" {
    selection_log
    run --separate-stderr "$HT" tail --stats "$LOG"
    assert_line --partial " -- stats pid 1: exchanges=6"
    run --separate-stderr "$HT" tail --stats --no-stats "$LOG"
    refute_line --partial " -- stats "
    assert_equal "${#lines[@]}" 7
}

@test "tail: several files, and a quoted glob of files, each under a header" {
    mkdir "$BATS_TEST_TMPDIR/logs"
    record one >"$BATS_TEST_TMPDIR/logs/a.jsonl"
    record two >"$BATS_TEST_TMPDIR/logs/b.jsonl"
    record three >"$BATS_TEST_TMPDIR/logs/c.txt"
    run --separate-stderr "$HT" tail "$BATS_TEST_TMPDIR/logs/*.jsonl" "$BATS_TEST_TMPDIR/logs/c.txt"
    assert_success
    assert_output - <<EOF
==> $BATS_TEST_TMPDIR/logs/a.jsonl <==
2026-11-21T23:57:12.123Z GET /one 200 1.50us req=0B resp=5B

==> $BATS_TEST_TMPDIR/logs/b.jsonl <==
2026-11-21T23:57:12.123Z GET /two 200 1.50us req=0B resp=5B

==> $BATS_TEST_TMPDIR/logs/c.txt <==
2026-11-21T23:57:12.123Z GET /three 200 1.50us req=0B resp=5B
EOF
    run --separate-stderr "$HT" tail --json "$BATS_TEST_TMPDIR"/logs/*
    assert_equal "$(jq -r .url.path <<<"$output" | tr '\n' ' ')" "/one /two /three "
    run --separate-stderr "$HT" tail "$BATS_TEST_TMPDIR/logs/*.none"
    assert_failure 2
    assert_equal "${stderr_lines[0]}" "httptape tail: no file matches '$BATS_TEST_TMPDIR/logs/*.none'"
    run --separate-stderr "$HT" tail -f "$BATS_TEST_TMPDIR/logs/*.jsonl"
    assert_failure 2
}
