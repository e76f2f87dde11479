#!/usr/bin/env bats
# preload_fastapi.bats - `httptape run` around uvicorn: the FastAPI demo app
# from examples/ answers its README POST at once and the exchange is logged
# in full; large and chunked uploads reach an app unchanged and are logged
# with their full size.
#
# Each test starts its own uvicorn; teardown stops it, pass or fail.

load test_helper/common

setup() {
    test_server_vars
}

teardown() {
    stop_server
}

# start_uvicorn MODULE:APP APP_DIR
start_uvicorn() {
    start_tapped uvicorn "$LOG" "$PY" -m uvicorn "$1" --app-dir "$2" \
        --host 127.0.0.1 --port "$PORT" --no-access-log
    wait_http "$BASE/"
}

@test "fastapi: the README POST to /submit is answered at once and logged as one exchange" {
    start_uvicorn app:app "$REPO/examples/fastapi"
    run curl -s --max-time 5 -X POST -H 'content-type: application/json' \
        -d '{"item":"server"}' "$BASE/submit"
    assert_success
    assert_output '{"status":"received","data":{"item":"server"}}'
    answer=$output
    wait_exchanges "$LOG" 1
    run exchanges "$LOG"
    assert_equal "${#lines[@]}" 1
    run jq -c '{method: .http.request.method, path: .url.path, status: .http.response.status_code,
                req: .http.request.body, resp_content: .http.response.body.content,
                resp_size: .http.response.body.size, pid: .process.pid,
                complete: .httptape.complete, timed: (.httptape.duration_ns > 0)}' \
        <(exchanges "$LOG")
    assert_output "$(jq -nc --arg a "$answer" --argjson pid "$SERVER_PID" \
        '{method: "POST", path: "/submit", status: 200,
          req: {size: 17, content: "{\"item\":\"server\"}"},
          resp_content: $a, resp_size: ($a | length), pid: $pid,
          complete: true, timed: true}')"
}

@test "fastapi: a 300000-byte chunked upload reaches the app intact and is logged with its full size" {
    start_uvicorn body_app:app "$APPS"
    head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/up.bin"
    run curl -s --max-time 10 -H 'Transfer-Encoding: chunked' -H 'content-type: application/octet-stream' \
        --data-binary @"$BATS_TEST_TMPDIR/up.bin" "$BASE/sha256"
    assert_success
    want=$(sha256sum "$BATS_TEST_TMPDIR/up.bin" | cut -d' ' -f1)
    assert_output "{\"sha256\":\"$want\",\"size\":300000}"
    wait_exchanges "$LOG" 1
    run jq -c '[.http.request.header["transfer-encoding"], .http.request.body.size,
                .http.request.body.truncated, .http.response.status_code, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output '[["chunked"],300000,true,200,true]'
}

@test "fastapi: a 1 MiB random body comes back with the same sha256 and is logged with size 1048576" {
    start_uvicorn body_app:app "$APPS"
    head -c 1048576 /dev/urandom >"$BATS_TEST_TMPDIR/up.bin"
    run curl -s --max-time 10 -H 'content-type: application/octet-stream' \
        --data-binary @"$BATS_TEST_TMPDIR/up.bin" "$BASE/sha256"
    assert_success
    want=$(sha256sum "$BATS_TEST_TMPDIR/up.bin" | cut -d' ' -f1)
    assert_output "{\"sha256\":\"$want\",\"size\":1048576}"
    wait_exchanges "$LOG" 1
    run jq -c '[.http.request.header["content-length"], .http.request.body.size,
                .http.request.body.truncated, .http.response.status_code, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output '[["1048576"],1048576,true,200,true]'
}

@test "fastapi: an upload sent with Expect: 100-continue logs the interim 100 and the final 200" {
    start_uvicorn body_app:app "$APPS"
    run curl -s --max-time 5 -H 'Expect: 100-continue' -H 'content-type: text/plain' \
        --data-binary 'expect me' "$BASE/echo"
    assert_success
    assert_output 'expect me'
    wait_exchanges "$LOG" 1
    run jq -c '[.http.request.body.content, .httptape.interim_status_codes,
                .http.response.status_code, .http.response.body.content, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output '["expect me",[100],200,"expect me",true]'
}

@test "fastapi: a gzip'd response (GZipMiddleware) is logged decoded, its secret redacted, with its size as sent" {
    start_uvicorn gzip_app:app "$REPO/tests/integration/apps"
    run curl -s --max-time 5 -H 'Accept-Encoding: gzip' -o "$BATS_TEST_TMPDIR/body.gz" \
        -w '%{size_download}' "$BASE/account"
    assert_success
    sent=$output
    [ "$(gzip -dc "$BATS_TEST_TMPDIR/body.gz" | jq -r .password)" = hunter2 ]   # the client got it all
    plain=$(gzip -dc "$BATS_TEST_TMPDIR/body.gz" | wc -c)
    wait_exchanges "$LOG" 1
    run jq -c 'select(.url.path == "/account") | .http.response | [.header["content-encoding"][0],
               .body.size, .body.content_encoding, (.body.content | fromjson | .password, .user),
               .body.decoded_size, .body.encoding]' <(exchanges "$LOG")
    assert_output "[\"gzip\",$sent,\"gzip\",\"REDACTED\",\"bob\",$plain,null]"
}
