#!/usr/bin/env bats
# rules.bats - what to record (docs/rules.md): include/exclude rules, body
# policy by content type and header lists, from HTTPTAPE_RULES and from a
# rule file, with real servers under `httptape run`; a mistake in the rules
# is one line naming where it is. (Sampling across two legs of a trace:
# nginx.bats.)

load test_helper/common

setup() {
    test_server_vars
    unset HTTPTAPE_RULES HTTPTAPE_CONFIG
    export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/xdg"      # no rule file of the machine's
}

teardown() {
    stop_server
}

stats() {
    jq -c 'select(.httptape.type == "stats" and .httptape.final) | .httptape.stats' "$LOG"
}

@test "rules: /health excluded under wrk: none of it logged, every one counted as filtered; the rest logged" {
    HTTPTAPE_RULES='exclude path=/health' start_tapped uvicorn "$LOG" "$PY" -m uvicorn app:app \
        --app-dir "$REPO/examples/fastapi" --host 127.0.0.1 --port "$PORT" --no-access-log
    wait_http "$BASE/"
    run timeout 30 wrk -t1 -c4 -d2s "$BASE/health"
    assert_success
    done=$(awk '/requests in/ {print $1}' <<<"$output")
    for i in 1 2 3 4 5; do
        curl -s --max-time 5 -o /dev/null -H 'content-type: application/json' -d "{\"n\":$i}" "$BASE/submit"
    done
    wait_exchanges "$LOG" 5
    stop_server
    run jq -r '.url.path' <(exchanges "$LOG")
    assert_output $'/submit\n/submit\n/submit\n/submit\n/submit'
    # wrk counts what it had answered; up to one request per connection
    # may have been cut at the end.
    filtered=$(stats | jq .filtered)
    [ "$filtered" -ge "$done" ] && [ "$filtered" -le $((done + 4)) ] ||
        { echo "filtered $filtered, wrk $done" >&2; false; }
    run stats
    assert_output --partial "\"exchanges_written\":5,"
    seen=$(stats | jq '.exchanges_seen - .exchanges_written - .exchanges_dropped - .filtered - .sampled_out')
    [ "$seen" -eq 0 ]
}

@test "rules: an image's size is logged and its content left out by default; 'body image/* keep' keeps it, 'header deny' hides a field" {
    mkdir -p "$BATS_TEST_TMPDIR/www"
    head -c 3000 /dev/urandom >"$BATS_TEST_TMPDIR/www/pic.png"
    printf 'hello\n' >"$BATS_TEST_TMPDIR/www/note.txt"
    start_tapped web "$LOG" "$PY" -m http.server -b 127.0.0.1 -d "$BATS_TEST_TMPDIR/www" "$PORT"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/pic.png"
    curl -s --max-time 5 -o /dev/null "$BASE/note.txt"
    wait_exchanges "$LOG" 2
    stop_server
    run jq -c '[.url.path, .http.response.header."content-type"[0], .http.response.body.size,
                .http.response.body.content, .http.response.body.omitted]' <(exchanges "$LOG")
    assert_output - <<'OUT'
["/pic.png","image/png",3000,null,"body_rule"]
["/note.txt","text/plain",6,"hello\n",null]
OUT
    rm -f "$LOG"
    HTTPTAPE_RULES='body image/* keep; header deny user-agent,server' start_tapped web "$LOG" \
        "$PY" -m http.server -b 127.0.0.1 -d "$BATS_TEST_TMPDIR/www" "$PORT"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/pic.png"
    wait_exchanges "$LOG" 1
    run jq -c '[.http.response.body.encoding, .http.response.body.omitted,
                .http.request.header."user-agent", .http.response.header.server,
                (.http.request.header.host | length)]' <(exchanges "$LOG")
    assert_output '["base64",null,null,null,1]'
}

@test "rules: from a rule file (HTTPTAPE_CONFIG, else XDG_CONFIG_HOME/httptape/rules.conf): kept only what it includes" {
    mkdir -p "$XDG_CONFIG_HOME/httptape"
    printf '# errors and slow ones only\ninclude status=4xx,5xx\ninclude slower=2s\n' \
        >"$XDG_CONFIG_HOME/httptape/rules.conf"
    start_tapped uvicorn "$LOG" "$PY" -m uvicorn app:app --app-dir "$REPO/examples/fastapi" \
        --host 127.0.0.1 --port "$PORT" --no-access-log
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/health"
    curl -s --max-time 5 -o /dev/null "$BASE/nowhere"
    curl -s --max-time 5 -o /dev/null -H 'content-type: application/json' -d '{' "$BASE/submit"
    wait_exchanges "$LOG" 2
    stop_server
    run jq -c '[.url.path, .http.response.status_code]' <(exchanges "$LOG")
    assert_output $'["/nowhere",404]\n["/submit",500]'
    run stats
    assert_output --partial '"filtered":1,'
}

@test "rules: a mistake in the rule file is one line naming file and line, and run does not start the server" {
    printf 'exclude path=/health\ninclude staus=5xx\n' >"$BATS_TEST_TMPDIR/rules.conf"
    HTTPTAPE_CONFIG="$BATS_TEST_TMPDIR/rules.conf" run "$HTTPTAPE" run --log "$LOG" -- true
    assert_failure 2
    assert_output "httptape run: $BATS_TEST_TMPDIR/rules.conf:2: unknown condition 'staus=5xx' (expected path=, method=, host=, status=, slower=, request-header= or response-header=)"
    HTTPTAPE_RULES='sample ten' run "$HTTPTAPE" run --log "$LOG" -- true
    assert_failure 2
    assert_output "httptape run: HTTPTAPE_RULES: rule 1: 'sample' needs a rate from 0% to 100%, such as 'sample 10%'"
}

@test "rules: 'digest sha256' gives the SHA-256 of whole bodies, past the excerpt cap, as sent" {
    # (One write of 1 MiB is a quarter of the default ring: it would be cut,
    # its middle counted, not copied, and the body would have no digest.)
    HTTPTAPE_RING_SIZE=16m HTTPTAPE_RULES='digest sha256' start_tapped echo "$LOG" "$PY" \
        "$APPS/echo_server.py" "$PORT"
    wait_http "$BASE/"
    head -c 1048577 /dev/urandom >"$BATS_TEST_TMPDIR/in.bin"
    curl -s --max-time 20 -H 'content-type: application/octet-stream' \
        --data-binary @"$BATS_TEST_TMPDIR/in.bin" -o "$BATS_TEST_TMPDIR/out.bin" "$BASE/echo"
    cmp "$BATS_TEST_TMPDIR/in.bin" "$BATS_TEST_TMPDIR/out.bin"
    wait_exchanges "$LOG" 1
    want=$(sha256sum <"$BATS_TEST_TMPDIR/in.bin" | cut -d' ' -f1)
    run jq -r '.http.request.body.sha256, .http.response.body.sha256, .http.request.body.size,
               .http.request.body.truncated' <(exchanges "$LOG")
    assert_output "$want"$'\n'"$want"$'\n1048577\ntrue'
}

@test "rules: a multipart upload (curl -F: a text field, a secret one, a 300 KB image) is summarised part by part, whole" {
    start_tapped echo "$LOG" "$PY" "$APPS/echo_server.py" "$PORT"
    wait_http "$BASE/"
    head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/cat.png"
    curl -s --max-time 20 -o /dev/null -F 'title=my cat' -F 'password=hunter2' \
        -F "photo=@$BATS_TEST_TMPDIR/cat.png;type=image/png" "$BASE/echo"
    wait_exchanges "$LOG" 1
    run jq -c '.http.request.body | [.parts, .parts_incomplete, .content]' <(exchanges "$LOG")
    assert_output '[[{"name":"title","size":6,"content":"my cat"},{"name":"password","size":7,"content":"REDACTED"},{"name":"photo","filename":"cat.png","content_type":"image/png","size":300000}],null,null]'
    run jq -c '.httptape.redacted' <(exchanges "$LOG")
    assert_output '["body:password"]'
    # The echo's response is the same multipart body: summarised the same way.
    run jq -c '.http.response.body.parts[1]' <(exchanges "$LOG")
    assert_output '{"name":"password","size":7,"content":"REDACTED"}'
    ! grep -q hunter2 "$LOG"
}

@test "rules: 'progress bytes=50' makes a long event stream visible while it runs: a progress record at each 50 bytes, then the exchange" {
    HTTPTAPE_RULES='progress bytes=50' start_tapped sse "$LOG" "$PY" "$APPS/sse_server.py" "$PORT"
    wait_http "$BASE/"
    run curl -s --max-time 10 "$BASE/events"
    assert_line 'data: 19'
    wait_exchanges "$LOG" 1
    # Events of 9 and 10 bytes: 50 bytes are passed at 54, then 110, then 160.
    run jq -c 'select(.httptape.type != "stats") | [.httptape.type, .progress.response_bytes,
               .progress.status_code, .http.response.body.size, .httptape.connection.request_index]' "$LOG"
    assert_output - <<'OUT'
["progress",54,200,null,0]
["progress",110,200,null,0]
["progress",160,200,null,0]
["exchange",null,null,190,0]
OUT
    run jq -s '[.[] | select(.httptape.type == "progress") | .progress.elapsed_ns] | . == sort and .[0] > 0' "$LOG"
    assert_output true
}
