#!/usr/bin/env bats
# tls.bats - HTTPS servers under `httptape run` (docs/tls.md): the plaintext
# OpenSSL hands the server is logged as the cleartext of a plain socket
# would be (url.scheme https, the tls.* fields), never the ciphertext; a
# server whose TLS library we do not cover (node, OpenSSL linked in
# statically) gives one tls_not_decrypted record per connection, not junk.
#
# A CA and a certificate for localhost are made per file with openssl; all
# on loopback. Each test stops its servers in teardown, pass or fail.

load test_helper/common

setup_file() {
    stage_for_others
    # www-data (nginx's workers) must reach the certificates and the files.
    make_test_certs
}

teardown_file() {
    unstage
    if [ -n "${TLS_DIR:-}" ]; then rm -rf "$TLS_DIR"; fi
}

setup() {
    test_server_vars
    BASE="https://localhost:$PORT"
}

teardown() {
    stop_server
}

tcurl() {
    curl -s --max-time 20 --cacert "$TLS_DIR/ca.pem" "$@"
}

@test "tls: nginx listen ssl (workers as www-data): GET and POST on one keep-alive connection are logged in plaintext" {
    command -v nginx >/dev/null || skip "no nginx"
    id www-data >/dev/null 2>&1 || skip "no user www-data"
    D=$(mktemp -d "$TLS_DIR/nginx.XXXXXX")
    chmod 755 "$D"
    mkdir -p "$D/www" "$D/temp"
    head -c 3000 /dev/urandom | base64 -w0 >"$D/www/page.txt"
    chmod -R a+rX "$D"
    cat >"$D/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
user www-data;
pid $D/nginx.pid;
error_log $D/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
$(nginx_temp_paths "$D")
    sendfile on;
    types { text/plain txt; }
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate $TLS_DIR/cert.pem;
        ssl_certificate_key $TLS_DIR/key.pem;
        root $D/www;
        location = /post { return 200 "taken\n"; }
    }
}
CONF
    start_bg nginx "$STAGED_HTTPTAPE" run --log "$LOG" -- nginx -p "$D" -e "$D/error.log" -c "$D/nginx.conf"
    track_children nginx $(wait_children "$SERVER_PID" 2)
    wait_http "http://127.0.0.1:$PORT/"
    run tcurl -o "$D/got.txt" -w '%{num_connects}\n' "$BASE/page.txt" \
        --next --cacert "$TLS_DIR/ca.pem" -w '%{num_connects}\n' -o /dev/null -d 'name=tape&password=hunter2' "$BASE/post"
    assert_success
    assert_output $'1\n0'           # the POST went on the GET's connection
    cmp "$D/got.txt" "$D/www/page.txt"
    wait_exchanges "$LOG" 2
    run jq -c '[.http.request.method, .url.scheme, .url.path, .http.response.status_code,
                .http.response.body.size, .httptape.complete, .tls.protocol.name,
                (.tls.protocol.version | test("^1\\.[23]$")), (.tls.cipher | length > 0),
                .tls.client.server_name, .tls.next_protocol, .tls.established,
                (.httptape.tls_raw_bytes.received > 0), (.httptape.tls_raw_bytes.sent > 0)]' \
        <(exchanges "$LOG")
    assert_output - <<'OUT'
["GET","https","/page.txt",200,4000,true,"tls",true,true,"localhost","http/1.1",true,true,true]
["POST","https","/post",200,6,true,"tls",true,true,"localhost","http/1.1",true,true,true]
OUT
    # One connection, served by a worker (as www-data), the body redacted.
    run jq -sc '[(map(.httptape.connection.id) | unique | length),
                 (.[0].process.pid != '"$SERVER_PID"'),
                 .[1].http.request.body.content, .[1].httptape.redacted]' <(exchanges "$LOG")
    assert_output '[1,true,"name=tape&password=REDACTED",["body:password"]]'
}

@test "tls: python http.server wrapped with ssl: bodies of 0 B to 5 MiB round-trip byte for byte and are logged whole in size" {
    start_tapped echo "$LOG" "$PY" "$APPS/echo_server.py" "$PORT" --tls "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"
    wait_http "http://127.0.0.1:$PORT/"
    local sizes=(0 1 16383 16385 1048577 5242880) n
    for n in "${sizes[@]}"; do
        head -c "$n" /dev/urandom >"$BATS_TEST_TMPDIR/in.$n"
        tcurl -H 'content-type: application/octet-stream' -H 'authorization: Bearer sekrit' \
            --data-binary @"$BATS_TEST_TMPDIR/in.$n" -o "$BATS_TEST_TMPDIR/out.$n" "$BASE/echo"
        cmp "$BATS_TEST_TMPDIR/in.$n" "$BATS_TEST_TMPDIR/out.$n"
    done
    wait_exchanges "$LOG" "${#sizes[@]}"
    run jq -c '[.url.scheme, .http.request.body.size, .http.response.body.size, .httptape.complete,
                .tls.established, .http.request.header.authorization[0]]' <(exchanges "$LOG")
    assert_output - <<'OUT'
["https",0,0,true,true,"Bearer REDACTED"]
["https",1,1,true,true,"Bearer REDACTED"]
["https",16383,16383,true,true,"Bearer REDACTED"]
["https",16385,16385,true,true,"Bearer REDACTED"]
["https",1048577,1048577,true,true,"Bearer REDACTED"]
["https",5242880,5242880,true,true,"Bearer REDACTED"]
OUT
    # The excerpt is the body's first 4096 bytes as the app received them
    # (random bytes are not UTF-8: base64).
    run jq -r 'select(.http.request.body.size == 16385) | .http.request.body | .encoding, .truncated' \
        <(exchanges "$LOG")
    assert_output $'base64\ntrue'
    jq -r 'select(.http.request.body.size == 16385) | .http.request.body.content' <(exchanges "$LOG") |
        base64 -d | cmp - <(head -c 4096 "$BATS_TEST_TMPDIR/in.16385")
}

@test "tls: a client that gives up in the handshake (untrusted certificate) leaves no record, and the next one is logged" {
    start_tapped echo "$LOG" "$PY" "$APPS/echo_server.py" "$PORT" --tls "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"
    wait_http "http://127.0.0.1:$PORT/"
    run curl -s --max-time 10 "$BASE/hello?size=5"      # no --cacert: curl refuses the server
    assert_failure 60
    run tcurl "$BASE/hello?size=5"
    assert_success
    wait_exchanges "$LOG" 1
    stop_server
    run jq -c '[.url.path, .httptape.complete]' <(exchanges "$LOG")
    assert_output '["/hello",true]'
    # wait_http's probe, the refused client, the good one; none undecrypted.
    run jq -sc 'map(select(.httptape.type == "stats" and .httptape.final)) |
                map(.httptape.stats | [.connections, .connections_tls_not_decrypted]) | .[0]' "$LOG"
    assert_output '[3,0]'
}

@test "tls: uvicorn --ssl-keyfile/--ssl-certfile (asyncio, memory BIOs): the FastAPI README POST is logged in plaintext" {
    start_tapped uvicorn "$LOG" "$PY" -m uvicorn app:app --app-dir "$REPO/examples/fastapi" \
        --host 127.0.0.1 --port "$PORT" --no-access-log \
        --ssl-keyfile "$TLS_DIR/key.pem" --ssl-certfile "$TLS_DIR/cert.pem"
    wait_http "http://127.0.0.1:$PORT/"
    run tcurl -X POST -H 'content-type: application/json' -d '{"item":"server"}' "$BASE/submit"
    assert_success
    assert_output '{"status":"received","data":{"item":"server"}}'
    wait_exchanges "$LOG" 1
    run jq -c '[.http.request.method, .url.scheme, .url.path, .http.request.body.content,
                .http.response.status_code, .http.response.body.content, .httptape.complete,
                .tls.client.server_name, .tls.established, .process.pid]' <(exchanges "$LOG")
    assert_output "$(jq -nc --argjson pid "$SERVER_PID" '["POST","https","/submit","{\"item\":\"server\"}",200,
        "{\"status\":\"received\",\"data\":{\"item\":\"server\"}}",true,"localhost",true,$pid]')"
}

@test "tls: node https (OpenSSL linked in statically): one tls_not_decrypted record per connection, counted, said once" {
    command -v node >/dev/null || skip "no node"
    cat >"$BATS_TEST_TMPDIR/https.js" <<'JS'
const https = require('https'), fs = require('fs');
const [port, cert, key] = process.argv.slice(2);
https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) },
    (req, res) => { req.resume(); req.on('end', () => res.end('node tls\n')); })
    .listen(+port, '127.0.0.1');
JS
    start_tapped node "$LOG" node "$BATS_TEST_TMPDIR/https.js" "$PORT" "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"
    wait_http "http://127.0.0.1:$PORT/"
    run tcurl "$BASE/a" "$BASE/b" "$BASE/c"         # one keep-alive connection
    assert_output $'node tls\nnode tls\nnode tls'
    run tcurl -d x=1 "$BASE/d"
    assert_output 'node tls'
    stop_server
    run jq -c '[.url.scheme, .tls.client.server_name, .tls.client.supported_protocols,
                .tls.established, .httptape.gaps, .httptape.complete, .http,
                (.httptape.tls_raw_bytes.received > 0), (.httptape.tls_raw_bytes.sent > 0)]' \
        <(exchanges "$LOG")
    assert_output - <<'OUT'
["https","localhost",["h2","http/1.1"],false,["tls_not_decrypted"],false,{},true,true]
["https","localhost",["h2","http/1.1"],false,["tls_not_decrypted"],false,{},true,true]
OUT
    run jq -s 'map(select(.httptape.type == "stats" and .httptape.final)) | map(.httptape.stats.connections_tls_not_decrypted) | add' "$LOG"
    assert_output 2
    run grep -c 'gap tls_not_decrypted' "$SERVER_OUT"
    assert_output 1
}

# membio_run MODE N: starts membio_server.py MODE under httptape, runs N
# curls at once, each with two keep-alive GETs of its own paths, stops the
# server, and checks that the log has every request on the client port
# curl used for it.
membio_run() {
    local mode=$1 n=$2 i pids=()
    start_tapped "$mode" "$LOG" "$PY" "$APPS/membio_server.py" "$mode" "$PORT" \
        "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"
    wait_http "http://127.0.0.1:$PORT/"
    for i in $(seq "$n"); do
        tcurl -o /dev/null -w '%{local_port} /c'"$i"'/a\n' "$BASE/c$i/a" \
            --next --cacert "$TLS_DIR/ca.pem" --max-time 20 -o /dev/null \
            -w '%{local_port} /c'"$i"'/b\n' "$BASE/c$i/b" >"$BATS_TEST_TMPDIR/sent.$i" &
        pids+=($!)
    done
    wait "${pids[@]}"           # the curls only (each has --max-time)
    cat "$BATS_TEST_TMPDIR"/sent.[0-9]* >"$BATS_TEST_TMPDIR/sent.raw"
    sort "$BATS_TEST_TMPDIR/sent.raw" >"$BATS_TEST_TMPDIR/sent"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/sent")" -eq $((2 * n)) ]
    wait_exchanges "$LOG" $((2 * n))
    stop_server
    run diff "$BATS_TEST_TMPDIR/sent" \
        <(exchanges "$LOG" | jq -r 'select(.url.path) | "\(.client.port) \(.url.path)"' | sort)
    assert_success
    run jq -sc 'map(select(.url.path)) | [length, (map(.http.response.body.content == .url.path) | all)]' \
        <(exchanges "$LOG")
    assert_output "[$((2 * n)),true]"
    run jq -s 'map(select(.httptape.type == "stats" and .httptape.final)) |
               map(.httptape.stats.connections_tls_not_decrypted) | add' "$LOG"
    assert_output 0
}

@test "tls: an asyncio server (memory BIOs, one thread) with concurrent clients: every exchange on its own connection" {
    membio_run asyncio 6
}

@test "tls: a memory-BIO server that reads two sockets before either SSL starts: the SSL is bound by its ClientHello's random, not by the last read" {
    membio_run batch 4
}

@test "tls: two connections carrying one ClientHello (a replayed one): neither memory-BIO SSL is bound, both are tls_not_decrypted, the client is served" {
    start_tapped batch "$LOG" "$PY" "$APPS/membio_server.py" batch "$PORT" "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"
    wait_http "http://127.0.0.1:$PORT/"
    run timeout 30 "$PY" "$APPS/replay_hello_client.py" "$PORT" "$TLS_DIR/ca.pem"
    assert_success
    assert_output /replayed
    stop_server
    run jq -c '[.url.path, .tls.established, .httptape.gaps]' <(exchanges "$LOG")
    assert_output - <<'OUT'
[null,false,["tls_not_decrypted"]]
[null,false,["tls_not_decrypted"]]
OUT
    run jq -s 'map(select(.httptape.type == "stats" and .httptape.final)) | map(.httptape.stats.connections_tls_not_decrypted) | add' "$LOG"
    assert_output 2
}
