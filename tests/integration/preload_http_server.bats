#!/usr/bin/env bats
# preload_http_server.bats - `httptape run` around Python's http.server:
# what each exchange records (method, url, status, sizes, addresses, pid),
# keep-alive and pipelined connections, HEAD, and that the tapped server
# still sends every byte unchanged.
#
# Each test starts its own server (HTTP/1.1 so connections are kept alive)
# and teardown stops it, pass or fail.

load test_helper/common

setup_file() {
    WWW="$BATS_FILE_TMPDIR/www"
    mkdir -p "$WWW"
    printf 'hello\n' >"$WWW/a.txt"
    printf 'bee\n' >"$WWW/b.txt"
    printf 'sea\n' >"$WWW/c.txt"
    head -c 200000 /dev/urandom >"$WWW/bin.dat"   # well over the 4096-byte body cap
    export WWW
}

setup() {
    test_server_vars
    start_tapped http "$LOG" "$PY" -m http.server "$PORT" --bind 127.0.0.1 \
        --directory "$WWW" --protocol HTTP/1.1
    wait_http "$BASE/"
}

teardown() {
    stop_server
}

@test "preload: a GET of a file is logged with method, url, status, sizes, pid and addresses" {
    client_port=$(curl -s --max-time 5 -o "$BATS_TEST_TMPDIR/got" -w '%{local_port}' \
        "$BASE/a.txt?x=1&y=two")
    wait_exchanges "$LOG" 1
    run jq -c '{method: .http.request.method, path: .url.path, query: .url.query,
                status: .http.response.status_code,
                req_size: .http.request.body.size, resp: .http.response.body,
                length: .http.response.header["content-length"],
                version: .network.protocol.version, peer: .network.peer, local: .network.local,
                pid: .process.pid, mode: .httptape.mode,
                index: .httptape.connection.request_index, complete: .httptape.complete}' \
        <(exchanges "$LOG")
    assert_output "$(jq -nc --argjson cp "$client_port" --argjson port "$PORT" --argjson pid "$SERVER_PID" \
        '{method: "GET", path: "/a.txt", query: "x=1&y=two", status: 200,
          req_size: 0, resp: {size: 6, content: "hello\n"}, length: ["6"],
          version: "1.1", peer: {address: "127.0.0.1", port: $cp},
          local: {address: "127.0.0.1", port: $port},
          pid: $pid, mode: "preload", index: 0, complete: true}')"
    run exchanges "$LOG"
    assert_equal "${#lines[@]}" 1
}

@test "preload: a 404 is logged with its status and the size of the error page" {
    size=$(curl -s --max-time 5 -o /dev/null -w '%{size_download}' "$BASE/missing.txt")
    [ "$size" -gt 0 ]
    wait_exchanges "$LOG" 1
    run jq -c '[.url.path, .http.response.status_code, .http.response.body.size, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output "[\"/missing.txt\",404,$size,true]"
}

@test "preload: several URLs on one keep-alive connection give one event each, in order" {
    run curl -s --max-time 5 -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects}\n' \
        "$BASE/a.txt" "$BASE/b.txt" "$BASE/c.txt?n=3"
    assert_success
    assert_output $'1\n0\n0'          # one TCP connection, reused twice
    wait_exchanges "$LOG" 3
    run jq -sc '[.[] | [.url.path, .httptape.connection.request_index, .http.response.body.content]]' \
        <(exchanges "$LOG")
    assert_output '[["/a.txt",0,"hello\n"],["/b.txt",1,"bee\n"],["/c.txt",2,"sea\n"]]'
    run jq -s '[.[].httptape.connection.id] | unique | length' <(exchanges "$LOG")
    assert_output 1
}

@test "preload: three pipelined requests sent in one write give three events in order" {
    run "$PY" "$APPS/pipeline_client.py" "$PORT" /a.txt /b.txt /c.txt
    assert_success
    run grep -c '^HTTP/1.1 200 ' <<<"$output"
    assert_output 3                   # the server answered all three
    wait_exchanges "$LOG" 3
    run jq -sc '[.[] | [.url.path, .httptape.connection.request_index, .http.response.body.size,
                        .httptape.complete]]' <(exchanges "$LOG")
    assert_output '[["/a.txt",0,6,true],["/b.txt",1,4,true],["/c.txt",2,4,true]]'
    run jq -s '[.[].httptape.connection.id] | unique | length' <(exchanges "$LOG")
    assert_output 1
}

@test "preload: a HEAD request is logged with a zero-size response body" {
    run curl -s --max-time 5 -I "$BASE/a.txt"
    assert_success
    assert_line --partial "Content-Length: 6"
    wait_exchanges "$LOG" 1
    run jq -c '[.http.request.method, .http.response.status_code,
                .http.response.header["content-length"], .http.response.body, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output '["HEAD",200,["6"],{"size":0},true]'
}

@test "preload: a binary file downloads byte for byte unchanged through the tapped server" {
    curl -s --max-time 5 -o "$BATS_TEST_TMPDIR/got" "$BASE/bin.dat"
    cmp "$WWW/bin.dat" "$BATS_TEST_TMPDIR/got"
}

@test "preload: a binary response body is logged as a truncated base64 excerpt" {
    curl -s --max-time 5 -o /dev/null "$BASE/bin.dat"
    wait_exchanges "$LOG" 1
    run jq -c '.http.response.body | [.size, .encoding, .truncated]' <(exchanges "$LOG")
    assert_output '[200000,"base64",true]'
    # The excerpt is the first 4096 bytes (the default --max-body) of the file.
    exchanges "$LOG" | jq -r .http.response.body.content | base64 -d >"$BATS_TEST_TMPDIR/excerpt"
    cmp <(head -c 4096 "$WWW/bin.dat") "$BATS_TEST_TMPDIR/excerpt"
}

@test "preload: pipelined requests to an HTTP/1.0 server that closes after one answer log the rest as no_response" {
    port=$(free_port)
    log10="$BATS_TEST_TMPDIR/log10.jsonl"
    start_tapped http10 "$log10" "$PY" -m http.server "$port" --bind 127.0.0.1 --directory "$WWW"
    wait_http "http://127.0.0.1:$port/"
    run "$PY" "$APPS/pipeline_client.py" "$port" /a.txt /b.txt /c.txt
    assert_success
    run grep -c '^HTTP/1.0 200 ' <<<"$output"
    assert_output 1                   # http.server's default HTTP/1.0 closes after one response
    wait_exchanges "$log10" 3
    run jq -sc '[.[] | [.url.path, .httptape.connection.request_index, .http.response.status_code,
                        .httptape.complete, .httptape.gaps]]' <(exchanges "$log10")
    assert_output '[["/a.txt",0,200,true,null],["/b.txt",1,null,false,["no_response"]],["/c.txt",2,null,false,["no_response"]]]'
}
