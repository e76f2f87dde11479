#!/usr/bin/env bats
# nginx.bats - Debian's nginx-light under `httptape run`: a master and two
# workers serving static files with sendfile on, keep-alive, under a few
# seconds of wrk load over a 100-byte file, a 20 KB file and a 404. The log
# must agree with nginx's own access log: as many exchanges as access-log
# lines, the same (status, body bytes) pairs, logged by the two workers
# (never the master), and the 20 KB bodies captured from sendfile.
#
# nginx runs in the foreground (daemon off) with every path in the test's
# tmpdir. Teardown stops the master, then any worker it left, pass or fail.

load test_helper/common

setup() {
    command -v nginx >/dev/null || skip "no nginx (scripts/install-deps.sh installs nginx-light)"
    D=$BATS_TEST_TMPDIR
    PORT=$(free_port)
    LOG="$D/log.jsonl"
    BASE="http://127.0.0.1:$PORT"
    mkdir -p "$D/www" "$D/temp"
    head -c 100 /dev/urandom | base64 -w0 | head -c 100 >"$D/www/small.txt"
    head -c 20480 /dev/urandom >"$D/www/big.bin"          # 20 KB, binary
    write_nginx_conf
}

teardown() {
    stop_server
}

write_nginx_conf() {
    cat >"$D/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes ${NGINX_WORKERS:-2};
user root;                      # workers write the log and read the tmpdir
pid $D/nginx.pid;
error_log $D/error.log warn;
events {
    worker_connections 256;
}
http {
    log_format tape '\$status \$body_bytes_sent "\$request"';
    access_log $D/access.log tape;
    client_body_temp_path $D/temp/body;
    proxy_temp_path $D/temp/proxy;
    fastcgi_temp_path $D/temp/fastcgi;
    uwsgi_temp_path $D/temp/uwsgi;
    scgi_temp_path $D/temp/scgi;
    sendfile on;
    keepalive_timeout 30s;
    keepalive_requests 100000;
    types {
        text/plain txt;
        application/octet-stream bin;
    }
    server {
        # reuseport: the kernel spreads connections over both workers
        listen 127.0.0.1:$PORT reuseport;
        root $D/www;
    }
}
CONF
}

# Starts nginx under httptape; sets MASTER and WORKERS (sorted, space-separated).
start_nginx() {
    start_tapped nginx "$LOG" nginx -p "$D" -e "$D/error.log" -c "$D/nginx.conf"
    MASTER=$SERVER_PID
    WORKERS=$(wait_children "$MASTER" "${NGINX_WORKERS:-2}" | tr '\n' ' ')
    # shellcheck disable=SC2086
    track_children nginx $WORKERS
    wait_http "$BASE/"
}

# wrk_paced DURATION PATH...: wrk (2 threads, 8 connections) for DURATION,
# rotating over PATHs, each connection waiting 10 ms between requests: a few
# thousand requests, well under what the log writer keeps up with (an
# unpaced wrk would fill its queue, and drops are counted, not logged).
wrk_paced() {
    local duration=$1; shift
    {
        printf 'local paths = {'
        printf ' "%s",' "$@"
        printf ' }\n'
        cat <<'LUA'
local n = 0
request = function()
    n = n + 1
    return wrk.format("GET", paths[n % #paths + 1])
end
delay = function()
    return 10
end
LUA
    } >"$D/paced.lua"
    run timeout 20 wrk -t2 -c8 -d"$duration" --timeout 5s -s "$D/paced.lua" "$BASE"
    assert_success
}

# A file's excerpt is kept only once the file has not changed for 2 s
# (HT_FILEDATA_SETTLED_NS): setup's files were just written.
settle_files() {
    sleep 2.1
}

# Stops nginx gracefully (QUIT: workers finish their connections and exit),
# up to 10 s; stop_server in teardown does the rest if it hangs.
quit_nginx() {
    kill -QUIT "$MASTER"
    for _ in $(seq 100); do
        kill -0 "$MASTER" 2>/dev/null || break
        sleep 0.1
    done
    local pid
    for pid in "$MASTER" $WORKERS; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "nginx process $pid still running 10 s after QUIT" >&2
            return 1
        fi
    done
}

@test "nginx: under wrk load the log has one exchange per access-log line with the same statuses and body sizes" {
    start_nginx
    wrk_paced 3s /small.txt /big.bin /missing
    quit_nginx
    served=$(wc -l <"$D/access.log")
    [ "$served" -ge 300 ]             # real load, not a handful
    wait_exchanges "$LOG" "$served"
    run count_exchanges "$LOG"
    assert_output "$served"
    # The multiset of (status, body bytes) pairs is the same on both sides.
    awk '{ print $1, $2 }' "$D/access.log" | sort >"$D/nginx.pairs"
    exchanges "$LOG" | jq -r '"\(.http.response.status_code) \(.http.response.body.size)"' | sort >"$D/tape.pairs"
    diff "$D/nginx.pairs" "$D/tape.pairs"
    # All three kinds were served.
    run bash -c "cut -d' ' -f1,2 '$D/nginx.pairs' | sort -u"
    assert_line "200 100"
    assert_line "200 20480"
    assert_line --regexp '^404 [1-9][0-9]*$'
}

@test "nginx: an unpaced burst into a small queue wakes the writer early and is logged whole" {
    # The writer naps 20 ms between batches, 100 ms once idle; at nginx's
    # unpaced rate here more than a 512-exchange queue arrives in 100 ms.
    # The push that fills half the queue wakes the writer, so
    # nothing is dropped.
    HTTPTAPE_QUEUE=512 start_nginx
    sleep 0.5                         # the writers back off to their idle nap
    run timeout 20 wrk -t1 -c4 -d1s --timeout 5s "$BASE/small.txt"
    assert_success
    quit_nginx
    served=$(wc -l <"$D/access.log")
    [ "$served" -ge 2000 ]            # several queues' worth per worker
    # One final record per worker that served (reuseport may give one worker
    # every connection), none with a drop.
    run jq -s '[.[] | select(.httptape.type == "stats" and .httptape.final)] |
               [length > 0, (map(.httptape.stats.dropped_queue_full) | add)]' -c "$LOG"
    assert_output '[true,0]'
    run count_exchanges "$LOG"
    assert_output "$served"
}

@test "nginx: exchanges are logged by the two worker processes, not by the master" {
    start_nginx
    wrk_paced 1s /small.txt
    quit_nginx
    served=$(wc -l <"$D/access.log")
    wait_exchanges "$LOG" "$served"
    run jq -r '.process.pid' <(exchanges "$LOG")
    refute_line "$MASTER"
    run bash -c "jq -r 'select(.httptape.type == \"exchange\") | .process.pid' '$LOG' | sort -nu | tr '\n' ' '"
    assert_output "$WORKERS"
    # A connection belongs to one worker: its id names that worker's pid.
    run jq -r 'select((.httptape.connection.id | split("-")[0]) != (.process.pid | tostring))' \
        <(exchanges "$LOG")
    assert_output ""
}

@test "nginx: a 20 KB file sent with sendfile is logged with source sendfile, its size and its first 4096 bytes" {
    start_nginx
    run curl -s --max-time 5 -o "$D/got" -w '%{http_code} %{size_download}' "$BASE/big.bin" \
        --next -s --max-time 5 -o "$D/got-small" -w ' %{http_code} %{size_download}' "$BASE/small.txt"
    assert_success
    assert_output "200 20480 200 100"
    cmp "$D/www/big.bin" "$D/got"                     # the client got every byte unchanged
    wait_exchanges "$LOG" 2
    run jq -c 'select(.url.path == "/big.bin") | [.http.response.body.source, .http.response.body.size,
               .http.response.body.encoding, .http.response.body.truncated, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output '["sendfile",20480,"base64",true,true]'
    exchanges "$LOG" | jq -r 'select(.url.path == "/big.bin") | .http.response.body.content' |
        base64 -d >"$D/excerpt"
    cmp <(head -c 4096 "$D/www/big.bin") "$D/excerpt"
    # The small file's content is logged whole, however nginx sent it.
    run jq -r 'select(.url.path == "/small.txt") | .http.response.body.content' <(exchanges "$LOG")
    assert_output "$(cat "$D/www/small.txt")"
}

@test "nginx: wrk load over sendfile leaves every 20 KB response logged with source sendfile and the file's first bytes" {
    start_nginx
    wrk_paced 2s /big.bin
    quit_nginx
    served=$(wc -l <"$D/access.log")
    [ "$served" -ge 100 ]
    wait_exchanges "$LOG" "$served"
    want=$(head -c 4096 "$D/www/big.bin" | base64 -w0)
    # Every response that went out whole: sendfile, the file's first 4096 bytes.
    whole=$(grep -c '^200 20480 ' "$D/access.log")
    [ "$whole" -ge 100 ]
    run jq -sc --arg want "$want" 'map(select(.http.response.body.size == 20480)
        | [.http.response.body.source, .http.response.body.content == $want]) | group_by(.)
        | map([.[0], length])' <(exchanges "$LOG")
    assert_output "[[[\"sendfile\",true],$whole]]"
}

@test "nginx: a file sent with sendfile is named in the event: its path, size, inode, device and modification time" {
    start_nginx
    curl -s --max-time 5 -o /dev/null "$BASE/big.bin"
    wait_exchanges "$LOG" 1
    run jq -c 'select(.url.path == "/big.bin") | .http.response.body.file' <(exchanges "$LOG")
    # What stat says of the file, in the event's shape.
    want=$("$PY" - "$D/www/big.bin" <<'PY'
import datetime, json, os, sys
st = os.stat(sys.argv[1])
t = datetime.datetime.fromtimestamp(st.st_mtime_ns // 10**9, datetime.timezone.utc)
print(json.dumps({"path": os.path.realpath(sys.argv[1]), "size": st.st_size, "inode": st.st_ino,
                  "device": "%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev)),
                  "modified": t.strftime("%Y-%m-%dT%H:%M:%S.") + "%09dZ" % (st.st_mtime_ns % 10**9)},
                 separators=(",", ":")))
PY
)
    assert_output "$want"
}

@test "nginx: a worker reads each file's excerpt back once, not once per response, and every response still carries it" {
    command -v strace >/dev/null || skip "no strace (scripts/install-deps.sh installs it)"
    # Eight files in turns (more than would fit a table where two could
    # share a slot without the chance of their meeting being small).
    for f in 1 2 3 4 5 6; do head -c $((1000 * f)) /dev/urandom >"$D/www/f$f.bin"; done
    start_nginx
    settle_files
    # Both workers traced for the preads our library makes (nginx itself
    # sends these files with sendfile and reads nothing of them).
    # shellcheck disable=SC2086
    strace -f -e trace=pread64 -o "$D/strace" $(printf -- '-p %s ' $WORKERS) 2>"$D/strace.err" &
    tracer=$!
    for _ in $(seq 50); do grep -q attached "$D/strace.err" && break; sleep 0.1; done
    sleep 0.2
    for i in $(seq 10); do
        curl -s --max-time 5 -o /dev/null "$BASE/big.bin?i=$i" "$BASE/small.txt?i=$i" \
            "$BASE/f1.bin?i=$i" "$BASE/f2.bin?i=$i" "$BASE/f3.bin?i=$i" "$BASE/f4.bin?i=$i" \
            "$BASE/f5.bin?i=$i" "$BASE/f6.bin?i=$i"
    done
    wait_exchanges "$LOG" 80
    kill -INT "$tracer"; wait "$tracer" || true
    # At most once per worker and file: 16 preads for 80 responses.
    preads=$(grep -c 'pread64(' "$D/strace" || true)
    [ "$preads" -ge 1 ] && [ "$preads" -le 16 ] || { cat "$D/strace" >&2; false; }
    # Every response carries its own file's first bytes (base64, or the
    # small text file as it is).
    run "$PY" - "$D/www" <(exchanges "$LOG") <<'PY'
import base64, json, sys
www, n, right = sys.argv[1], 0, 0
for line in open(sys.argv[2]):
    e = json.loads(line)
    if not (e.get("url", {}).get("query") or "").startswith("i="):
        continue
    n += 1
    want = open(www + e["url"]["path"], "rb").read()[:4096]
    b = e["http"]["response"]["body"]
    got = base64.b64decode(b["content"]) if b.get("encoding") == "base64" else b["content"].encode()
    right += got == want and e["httptape"]["complete"]
print(n, right)
PY
    assert_output "80 80"
}

@test "nginx: a file rewritten in place with its size and mtime put back is read again, not logged with its old bytes" {
    NGINX_WORKERS=1
    write_nginx_conf
    start_nginx
    settle_files
    curl -s --max-time 5 -o /dev/null "$BASE/small.txt?v=1" "$BASE/small.txt?v=1b"
    old=$(cat "$D/www/small.txt")
    # Same inode, same size, mtime put back (cp -p, rsync -t --inplace, a
    # fixed SOURCE_DATE_EPOCH): only the ctime says it changed.
    "$PY" - "$D/www/small.txt" <<'PY'
import os, sys
st = os.stat(sys.argv[1])
with open(sys.argv[1], "r+b") as f:
    f.write(b"NEW" * 33 + b"!")
os.utime(sys.argv[1], ns=(st.st_atime_ns, st.st_mtime_ns))
PY
    curl -s --max-time 5 -o /dev/null "$BASE/small.txt?v=2"
    wait_exchanges "$LOG" 3
    run jq -c --arg old "$old" --arg new "$(cat "$D/www/small.txt")" '
        select(.url.query // "" | startswith("v=")) |
        [.url.query, .http.response.body.content | if . == $old then "old" elif . == $new then "new" else . end]' \
        <(exchanges "$LOG")
    assert_output $'["v=1","old"]\n["v=1b","old"]\n["v=2","new"]'
}

@test "nginx: after its collector is killed, a worker sends each file's excerpt again to the new one" {
    NGINX_WORKERS=1
    write_nginx_conf
    settle_files
    start_nginx
    curl -s --max-time 5 -o /dev/null "$BASE/big.bin?before"     # its excerpt is kept
    wait_exchanges "$LOG" 1
    old=$(fd_holders "$LOG" | awk '{print $1}' | sort -un)
    [ "$(echo "$old" | wc -w)" -eq 1 ]
    kill -9 "$old"
    # The worker notices within a few seconds (no heartbeat for 3 s) and
    # starts a collector of its own on a new ring.
    # (A worker's stderr is nginx's error log.)
    for i in $(seq 60); do
        curl -s --max-time 5 -o /dev/null "$BASE/small.txt?wait=$i"
        cat "$SERVER_OUT" "$D/error.log" | grep -q "a new collector takes over" && break
        sleep 0.1
    done
    cat "$SERVER_OUT" "$D/error.log" | grep -q "a new collector takes over"
    for i in 1 2 3; do
        curl -s --max-time 5 -o /dev/null "$BASE/big.bin?after=$i"
    done
    for _ in $(seq 50); do
        [ "$(grep -c 'after=3' "$LOG")" -ge 1 ] && break
        sleep 0.1
    done
    big=$(head -c 4096 "$D/www/big.bin" | base64 -w0)
    run jq -c --arg big "$big" 'select(.url.query // "" | startswith("after=")) |
        [.http.response.body.content == $big, .httptape.complete]' <(exchanges "$LOG")
    assert_output $'[true,true]\n[true,true]\n[true,true]'
}

@test "nginx: nginx in front of uvicorn, both recorded: the two legs share the trace id, each says client, server, user agent, executable and service" {
    APP_PORT=$(free_port)
    APP_LOG="$D/app.jsonl"
    OTEL_SERVICE_NAME=shop-api start_tapped uvicorn "$APP_LOG" "$PY" -m uvicorn app:app \
        --app-dir "$REPO/examples/fastapi" --host 127.0.0.1 --port "$APP_PORT" --no-access-log
    wait_http "http://127.0.0.1:$APP_PORT/"
    # The server block proxies to the app, passing the client on.
    sed -i "s|        root $D/www;|        location / {\n            proxy_pass http://127.0.0.1:$APP_PORT;\n            proxy_set_header X-Forwarded-For 192.0.2.7;\n        }|" "$D/nginx.conf"
    start_nginx
    tp=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
    run curl -s --max-time 5 -A probe/1.0 -H "traceparent: $tp" -H 'X-Request-Id: r-77' \
        -H 'content-type: application/json' -d '{"item":"server"}' "$BASE/submit"
    assert_success
    assert_output '{"status":"received","data":{"item":"server"}}'
    leg() {
        jq -c 'select(.url.path == "/submit") | [.trace_id, .span_id, .trace_flags, .client.address,
               .server.port, .user_agent.original, .httptape.request_id, .url.scheme,
               .process.executable.name, .service.name]' <(exchanges "$1")
    }
    for _ in $(seq 100); do
        [ -n "$(leg "$LOG")" ] && [ -n "$(leg "$APP_LOG")" ] && break
        sleep 0.1
    done
    run leg "$LOG"
    assert_output "[\"4bf92f3577b34da6a3ce929d0e0e4736\",\"00f067aa0ba902b7\",\"01\",\"127.0.0.1\",$PORT,\"probe/1.0\",\"r-77\",\"http\",\"nginx\",\"nginx\"]"
    run leg "$APP_LOG"
    assert_output "[\"4bf92f3577b34da6a3ce929d0e0e4736\",\"00f067aa0ba902b7\",\"01\",\"192.0.2.7\",$APP_PORT,\"probe/1.0\",\"r-77\",\"http\",\"python3\",\"shop-api\"]"
}

@test "nginx: sample 10% in front of uvicorn, both recorded: of 10,000 traced requests each leg keeps 10% +- 2%, the same traces" {
    APP_PORT=$(free_port)
    APP_LOG="$D/app.jsonl"
    export HTTPTAPE_RULES='sample 10%'
    start_tapped uvicorn "$APP_LOG" "$PY" -m uvicorn app:app \
        --app-dir "$REPO/examples/fastapi" --host 127.0.0.1 --port "$APP_PORT" --no-access-log
    wait_http "http://127.0.0.1:$APP_PORT/"
    sed -i "s|        root $D/www;|        location / {\n            proxy_pass http://127.0.0.1:$APP_PORT;\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n        }|" "$D/nginx.conf"
    start_nginx
    unset HTTPTAPE_RULES
    run timeout 120 "$PY" "$APPS/traced_client.py" 127.0.0.1 "$PORT" /health 10000
    assert_success
    assert_output 10000
    stop_server
    traces() { jq -r 'select(.url.path == "/health") | .trace_id' <(exchanges "$1") | sort; }
    kept=$(traces "$LOG" | wc -l)
    [ "$kept" -ge 800 ] && [ "$kept" -le 1200 ] || { echo "nginx kept $kept" >&2; false; }
    diff <(traces "$LOG") <(traces "$APP_LOG")
    [ "$(traces "$LOG" | uniq | wc -l)" -eq "$kept" ]
    # Every request is logged or counted as sampled out, on both legs.
    for f in "$LOG" "$APP_LOG"; do
        run jq -s --argjson kept "$kept" '[.[] | select(.httptape.type == "stats" and .httptape.final)] |
            map(.httptape.stats.sampled_out) | add + $kept' "$f"
        assert_output 10000
    done
}
