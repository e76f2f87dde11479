#!/usr/bin/env bats
# http2.bats - HTTP/2 servers under `httptape run` and `httptape attach`
# (docs/http2.md): hypercorn serving the FastAPI example over h2c (prior
# knowledge and Upgrade) and over TLS, nginx with http2 over TLS (workers as
# www-data) and over h2c; curl and h2load as clients. Every request a client
# made is one event, with its method, path, status and body sizes.
#
# All on loopback; a CA is made per file with openssl. Each test stops its
# servers in teardown, pass or fail.

load test_helper/common

setup_file() {
    stage_for_others
    make_test_certs
}

teardown_file() {
    unstage
    if [ -n "${TLS_DIR:-}" ]; then rm -rf "$TLS_DIR"; fi
}

setup() {
    test_server_vars
}

need_h2load() {
    command -v h2load >/dev/null || skip "no h2load (nghttp2-client)"
}

# start_hypercorn [FLAGS...]: the FastAPI example under hypercorn, tapped.
start_hypercorn() {
    "$PY" -c 'import hypercorn, h2' 2>/dev/null || skip "no python3-hypercorn / python3-h2"
    start_tapped hypercorn "$LOG" "$PY" -m hypercorn -b "127.0.0.1:$PORT" --root-path "" "$@" \
        "$REPO/examples/fastapi/app.py:app"
    wait_http "$BASE/"
}

teardown() {
    stop_server
}

# nginx_h2_conf DIR LISTEN_FLAGS: an nginx.conf serving DIR/www on $PORT with
# the given listen flags, workers as www-data (Debian's echo module, a
# dependency of nginx-light, for /post).
nginx_h2_conf() {
    local d=$1 flags=$2
    cat >"$d/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
daemon off;
master_process on;
worker_processes 2;
user www-data;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
$(nginx_temp_paths "$d")
    types { text/plain txt; }
    server {
        listen 127.0.0.1:$PORT $flags;
        ssl_certificate $TLS_DIR/cert.pem;
        ssl_certificate_key $TLS_DIR/key.pem;
        root $d/www;
        # The body read before answering: a plain return answers at once
        # and resets the stream, leaving the client's DATA unread.
        location = /post { echo_read_request_body; echo taken; }
    }
}
CONF
}

# start_nginx_tapped DIR: nginx (2 workers as www-data) with DIR's conf,
# under the staged httptape run, listening.
start_nginx_tapped() {
    command -v nginx >/dev/null || skip "no nginx"
    [ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || skip "no nginx echo module"
    id www-data >/dev/null 2>&1 || skip "no user www-data"
    start_bg nginx "$STAGED_HTTPTAPE" run --log "$LOG" -- nginx -p "$1" -e "$1/error.log" -c "$1/nginx.conf"
    track_children nginx $(wait_children "$SERVER_PID" 2)
    wait_http "http://127.0.0.1:$PORT/"
}

# nginx_dir: a fresh nginx prefix under TLS_DIR with www/page.txt (4000 bytes).
nginx_dir() {
    local d
    d=$(mktemp -d "$TLS_DIR/nginx.XXXXXX")
    chmod 755 "$d"
    mkdir -p "$d/www" "$d/temp"
    head -c 3000 /dev/urandom | base64 -w0 >"$d/www/page.txt"
    chmod -R a+rX "$d"
    echo "$d"
}

@test "http2: hypercorn (FastAPI) over h2c with prior knowledge: a GET and a POST, one event each" {
    start_hypercorn
    run curl -s --max-time 20 --http2-prior-knowledge "$BASE/health"
    assert_output '{"ok":true}'
    # (curl 7.88 and hypercorn 0.13 fail a second request on the same h2c
    # connection with --next, untapped too: a connection each.)
    run curl -s --max-time 20 --http2-prior-knowledge -H 'content-type: application/json' \
        -d '{"name":"tape","password":"hunter2"}' "$BASE/submit"
    assert_output '{"status":"received","data":{"name":"tape","password":"hunter2"}}'
    wait_exchanges "$LOG" 2
    run jq -c '[.http.request.method, .url.path, .http.response.status_code, .network.protocol.version,
                .httptape.http2.stream_id, .http.request.body.size, .http.response.body.content,
                .httptape.complete]' <(exchanges "$LOG")
    assert_output - <<'OUT'
["GET","/health",200,"2",1,0,"{\"ok\":true}",true]
["POST","/submit",200,"2",1,36,"{\"status\":\"received\",\"data\":{\"name\":\"tape\",\"password\":\"REDACTED\"}}",true]
OUT
    run jq -sc '[(map(.httptape.connection.id) | unique | length), .[1].http.request.body.content,
                 .[0].http.request.header.host[0]]' <(exchanges "$LOG")
    assert_output "[2,\"{\\\"name\\\":\\\"tape\\\",\\\"password\\\":\\\"REDACTED\\\"}\",\"127.0.0.1:$PORT\"]"
}

@test "http2: an h2c Upgrade to hypercorn is one event: the request as stream 1, 101 as interim, the real response" {
    start_hypercorn
    run curl -s --max-time 20 --http2 -w ' %{http_version}' "$BASE/health?probe=1"
    assert_output '{"ok":true} 2'
    wait_exchanges "$LOG" 1
    run jq -c '[.http.request.method, .url.path, .url.query, .httptape.http2.stream_id,
                .httptape.interim_status_codes, .http.response.status_code, .http.response.body.content,
                .http.request.header.upgrade[0], .network.protocol.version, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output '["GET","/health","probe=1",1,[101],200,"{\"ok\":true}","h2c","2",true]'
}

@test "http2: h2load against hypercorn over h2c: each of 200 requests on 4 connections is one event" {
    start_hypercorn
    need_h2load
    run timeout 60 h2load -n 200 -c 4 -m 10 "$BASE/health"
    assert_success
    assert_line --partial 'requests: 200 total, 200 started, 200 done, 200 succeeded'
    wait_exchanges "$LOG" 200
    run jq -sc '[length, (map(select(.url.path == "/health" and .http.response.status_code == 200
                                     and .httptape.complete and .http.response.body.size == 11)) | length),
                 (map(.httptape.connection.id) | unique | length),
                 (group_by(.httptape.connection.id) | map(map(.httptape.http2.stream_id) | unique | length) | add)]' \
        <(exchanges "$LOG")
    assert_output '[200,200,4,200]'
}

@test "http2: nginx http2 over TLS (workers as www-data): curl --http2 and h2load, every request one event with its size" {
    D=$(nginx_dir)
    nginx_h2_conf "$D" "ssl http2"
    start_nginx_tapped "$D"
    BASE="https://localhost:$PORT"
    run curl -s --max-time 20 --cacert "$TLS_DIR/ca.pem" --http2 -o "$D/got.txt" -w '%{http_version}' \
        "$BASE/page.txt" --next --cacert "$TLS_DIR/ca.pem" --http2 -o /dev/null -w '%{http_version}' \
        -d 'password=hunter2' "$BASE/post"
    assert_output '22'
    cmp "$D/got.txt" "$D/www/page.txt"
    need_h2load
    run timeout 60 h2load -n 300 -c 3 -m 20 "$BASE/page.txt"
    assert_line --partial 'requests: 300 total, 300 started, 300 done, 300 succeeded'
    wait_exchanges "$LOG" 302
    run jq -sc '[length,
                 (map(select(.url.path == "/page.txt" and .http.response.status_code == 200 and
                             .http.response.body.size == 4000 and .httptape.complete)) | length),
                 (map(select(.network.protocol.version == "2" and .url.scheme == "https" and
                             .tls.next_protocol == "h2")) | length),
                 (map(select(.http.request.method == "POST")) | .[0] | [.http.request.body.content,
                  .http.response.body.content])]' <(exchanges "$LOG")
    assert_output '[302,301,302,["password=REDACTED","taken\n"]]'
}

@test "http2: hypercorn over TLS (ALPN h2): the plaintext's HTTP/2 is logged, url.scheme https" {
    start_hypercorn --certfile "$TLS_DIR/cert.pem" --keyfile "$TLS_DIR/key.pem"
    run curl -s --max-time 20 --cacert "$TLS_DIR/ca.pem" --http2 -w ' %{http_version}' \
        "https://localhost:$PORT/health"
    assert_output '{"ok":true} 2'
    wait_exchanges "$LOG" 1
    run jq -c '[.http.request.method, .url.scheme, .url.path, .http.response.status_code,
                .network.protocol.version, .tls.next_protocol, .httptape.complete]' <(exchanges "$LOG")
    assert_output '["GET","https","/health",200,"2","h2",true]'
}

@test "http2: attach on nginx serving h2c: requests made while attached are one event each, version 2" {
    command -v nginx >/dev/null || skip "no nginx"
    "$HTTPTAPE" attach --check >/dev/null 2>&1 || skip "attach cannot run here"
    D=$(nginx_dir)
    nginx_h2_conf "$D" "http2"
    sed -i 's/^worker_processes 2;/worker_processes 1;/' "$D/nginx.conf"
    start_bg nginx nginx -p "$D" -e "$D/error.log" -c "$D/nginx.conf"
    local worker
    worker=$(wait_children "$SERVER_PID" 1)
    track_children nginx "$worker"
    wait_http "$BASE/"
    start_bg attach "$HTTPTAPE" attach --pid "$worker" --log "$LOG"
    wait_output "attached to pid"
    need_h2load
    run timeout 60 h2load -n 50 -c 2 -m 5 "$BASE/page.txt"
    assert_line --partial 'requests: 50 total, 50 started, 50 done, 50 succeeded'
    run curl -s --max-time 20 --http2-prior-knowledge -o /dev/null -w '%{http_version}' "$BASE/page.txt"
    assert_output '2'
    wait_exchanges "$LOG" 51
    run jq -sc '[length, (map(select(.url.path == "/page.txt" and .http.response.status_code == 200 and
                                     .http.response.body.size == 4000 and .network.protocol.version == "2"
                                     and .httptape.mode == "attach" and .httptape.complete)) | length)]' \
        <(exchanges "$LOG")
    assert_output '[51,51]'
}

@test "http2: nginx h2c with sendfile on: DATA sent from a 100 KB file is counted whole, its excerpt read from the file" {
    D=$(nginx_dir)
    head -c 75000 /dev/urandom | base64 -w0 >"$D/www/big.txt"
    chmod a+r "$D/www/big.txt"
    nginx_h2_conf "$D" "http2"
    sed -i 's/^    access_log off;/    access_log off;\n    sendfile on;/' "$D/nginx.conf"
    start_nginx_tapped "$D"
    need_h2load
    run timeout 60 h2load -n 40 -c 2 -m 4 "$BASE/big.txt"
    assert_line --partial 'requests: 40 total, 40 started, 40 done, 40 succeeded'
    wait_exchanges "$LOG" 40
    run jq -sc '[length, (map(select(.http.response.status_code == 200 and .http.response.body.size == 100000
                                     and .http.response.body.source == "sendfile" and .httptape.complete
                                     and .http.response.body.truncated)) | length),
                 (map(.http.response.body.content) | unique | length)]' <(exchanges "$LOG")
    assert_output '[40,40,1]'
    exchanges "$LOG" | head -1 | jq -j '.http.response.body.content' | cmp - <(head -c 4096 "$D/www/big.txt")
}

@test "http2: a grpcio server: unary, server-streaming and failing calls, each one event with rpc.* and its messages counted" {
    "$PY" -c 'import grpc' 2>/dev/null || skip "no python3-grpcio"
    start_tapped grpc "$LOG" "$PY" "$APPS/grpc_server.py" "$PORT"
    wait_output serving
    run timeout 60 "$PY" "$APPS/grpc_client.py" "$PORT"
    assert_success
    assert_output - <<'OUT'
Say hello grpc OK
Count 0,1,2 OK
Missing no such thing NOT_FOUND
OUT
    wait_exchanges "$LOG" 3
    run jq -c '[.url.path, .rpc.system, .rpc.service, .rpc.method, .rpc.grpc.status_code,
                .httptape.grpc.request_messages, .httptape.grpc.response_messages,
                .httptape.grpc.status_message, .network.protocol.version, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output - <<'OUT'
["/demo.Echo/Say","grpc","demo.Echo","Say",0,1,1,null,"2",true]
["/demo.Echo/Count","grpc","demo.Echo","Count",0,1,3,null,"2",true]
["/demo.Echo/Missing","grpc","demo.Echo","Missing",5,1,0,"no such thing","2",true]
OUT
    # The message bytes are the body excerpt: 5-byte prefix, then "hello grpc".
    run jq -r 'select(.rpc.method == "Say") | .http.request.body.size' <(exchanges "$LOG")
    assert_output 15
}

@test "http2: node's http2 module over h2c: a GET and a 50 KB POST echoed, one event each with exact sizes" {
    command -v node >/dev/null || skip "no node"
    start_tapped node "$LOG" node "$APPS/node_h2_server.js" "$PORT"
    wait_output listening
    run curl -s --max-time 20 --http2-prior-knowledge "$BASE/hello"
    assert_output 'hello from node h2'
    head -c 50000 /dev/urandom >"$BATS_TEST_TMPDIR/in.bin"
    curl -s --max-time 20 --http2-prior-knowledge --data-binary @"$BATS_TEST_TMPDIR/in.bin" \
        -o "$BATS_TEST_TMPDIR/out.bin" "$BASE/echo"
    cmp "$BATS_TEST_TMPDIR/in.bin" "$BATS_TEST_TMPDIR/out.bin"
    wait_exchanges "$LOG" 2
    run jq -c '[.http.request.method, .url.path, .http.response.status_code, .http.request.body.size,
                .http.response.body.size, .network.protocol.version, .httptape.complete]' <(exchanges "$LOG")
    assert_output - <<'OUT'
["GET","/hello",200,0,18,"2",true]
["POST","/echo",200,50000,50000,"2",true]
OUT
}

@test "http2: nginx's server push (http2_push) is its own event, marked pushed, beside the page that caused it" {
    command -v nghttp >/dev/null || skip "no nghttp (nghttp2-client)"
    D=$(nginx_dir)
    printf '<html>hi</html>\n' >"$D/www/index.html"
    printf 'body{}\n' >"$D/www/style.css"
    chmod a+r "$D/www/"*
    nginx_h2_conf "$D" "http2"
    sed -i 's|^        root \(.*\);|        root \1;\n        location = /index.html { http2_push /style.css; }|' "$D/nginx.conf"
    sed -i 's/^    types { text\/plain txt; }/    types { text\/plain txt; text\/html html; text\/css css; }/' "$D/nginx.conf"
    start_nginx_tapped "$D"
    run timeout 20 nghttp -n -s "$BASE/index.html"
    assert_success
    assert_line --regexp ' 200 +16 /index.html$'
    assert_line --regexp ' 200 +7 /style.css$'
    wait_exchanges "$LOG" 2
    run jq -sc 'sort_by(.url.path) | map([.url.path, .http.response.status_code, .http.response.body.size,
                (.httptape.http2.stream_id % 2), .httptape.http2.pushed, .httptape.complete])' <(exchanges "$LOG")
    assert_output '[["/index.html",200,16,1,null,true],["/style.css",200,7,0,true,true]]'
}
