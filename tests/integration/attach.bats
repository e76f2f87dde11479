#!/usr/bin/env bats
# attach.bats - `httptape attach` (eBPF) against servers that were started
# untapped: Python's http.server, the statically linked example server
# (which LD_PRELOAD cannot see), nginx with its workers. What is logged
# before, during and after attaching; keep-alive connections joined
# mid-stream; transfers over several iovec entries (writev, recvmsg) and
# body bytes the kernel side skips; --duration, signals and the target's
# exit; error exits; and
# the cross-mode conformance check: the same scripted traffic captured by
# `httptape run` and by `attach` gives the same events.
#
# They need root (or CAP_BPF + CAP_PERFMON), a kernel with BTF and a build
# with the BPF toolchain: `httptape attach --check` decides, and the tests
# that load BPF skip with its reason otherwise. Every server and every
# attach a test starts is stopped by teardown, pass or fail; every wait is
# bounded.

load test_helper/common

STATIC_SERVER="$REPO/build/static-server"
setup_file() {
    local out rc=0
    out=$("$HTTPTAPE" attach --check 2>&1) || rc=$?
    case $rc in
    0) ATTACH_SKIP= ;;
    4 | 5 | 6) ATTACH_SKIP="attach cannot run here: ${out#httptape attach: }" ;;
    *) ATTACH_SKIP= ;;      # anything else is a failure the tests will show
    esac
    export ATTACH_SKIP
}

setup() {
    LOG="$BATS_TEST_TMPDIR/attach.jsonl"
    PORT=$(free_port)
    BASE="http://127.0.0.1:$PORT"
}

teardown() {
    stop_server
    if [ -n "${TLS_DIR:-}" ]; then rm -rf "$TLS_DIR"; fi
}

needs_bpf() {
    if [ -n "$ATTACH_SKIP" ]; then
        skip "$ATTACH_SKIP"
    fi
}

# start_server NAME CMD...: an untapped server; sets SRV_PID.
start_server() {
    local name=$1; shift
    start_bg "$name" "$@"
    SRV_PID=$SERVER_PID
    wait_http "$BASE/"
}

# start_attach PID [FLAGS...]: `httptape attach --pid PID --log $LOG` in the
# background, waiting (bounded) for its "attached" line; sets ATTACH_PID
# and ATTACH_OUT.
start_attach() {
    local pid=$1; shift
    local keep_pid=$SERVER_PID keep_out=$SERVER_OUT
    start_bg attach "$HTTPTAPE" attach --pid "$pid" --log "$LOG" "$@"
    ATTACH_PID=$SERVER_PID
    ATTACH_OUT=$SERVER_OUT
    wait_output "httptape attach: attached to pid $pid"
    SERVER_PID=$keep_pid
    SERVER_OUT=$keep_out
}

# stop_attach: SIGINT, then wait up to 15 s for it to detach and exit 0.
stop_attach() {
    kill -INT "$ATTACH_PID"
    wait_exit "$ATTACH_PID" 15
    rm -f "$(scratch_dir)/attach.pid"
    grep -q "httptape attach: detached from pid" "$ATTACH_OUT" || {
        cat "$ATTACH_OUT" >&2
        return 1
    }
}

# wait_exit PID SECONDS: waits for PID (our child) to exit; its status is
# in EXIT_STATUS. Fails on timeout.
wait_exit() {
    local pid=$1 secs=$2
    for _ in $(seq $((secs * 10))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            EXIT_STATUS=0
            wait "$pid" || EXIT_STATUS=$?
            return 0
        fi
        sleep 0.1
    done
    echo "pid $pid still running after $secs s" >&2
    return 1
}

@test "attach: python http.server: only requests after attaching are logged, with method, path, status and bodies" {
    needs_bpf
    start_server http "$PY" "$APPS/echo_server.py" "$PORT"
    run curl -s --max-time 5 "$BASE/hello?size=7&before=1"
    assert_output "hello f"
    start_attach "$SRV_PID"
    run curl -s --max-time 5 "$BASE/hello?size=12"
    assert_output "hello from e"
    run curl -s --max-time 5 -H 'Content-Type: application/json' -d '{"item":"attached"}' "$BASE/echo"
    assert_output '{"item":"attached"}'
    wait_exchanges "$LOG" 2
    stop_attach
    run jq -c '[.http.request.method, .url.path, .url.query, .http.response.status_code,
                .http.request.body.content, .http.response.body.content, .httptape.mode,
                .process.pid == '"$SRV_PID"', .network.local.port == '"$PORT"',
                .network.peer.address, .httptape.complete]' <(exchanges "$LOG")
    assert_line --index 0 '["GET","/hello","size=12",200,null,"hello from e","attach",true,true,"127.0.0.1",true]'
    assert_line --index 1 '["POST","/echo",null,200,"{\"item\":\"attached\"}","{\"item\":\"attached\"}","attach",true,true,"127.0.0.1",true]'
    assert_equal "${#lines[@]}" 2         # the request made before attaching is not there
    # The statistics record closes the log.
    run jq -c 'select(.httptape.type == "stats") | [.httptape.mode, .httptape.final,
               .httptape.stats.exchanges_written, .httptape.stats.capture_gaps]' "$LOG"
    assert_output '["attach",true,2,0]'
    # After detaching the server serves as before, and nothing more is logged.
    run curl -s --max-time 5 "$BASE/hello?size=5"
    assert_output "hello"
    run count_exchanges "$LOG"
    assert_output 2
}

@test "attach: python -m http.server keeps serving files byte for byte, and a big one is logged as a capped excerpt" {
    needs_bpf
    mkdir -p "$BATS_TEST_TMPDIR/www"
    printf 'hello\n' >"$BATS_TEST_TMPDIR/www/a.txt"
    head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/www/bin.dat"
    start_server http "$PY" -m http.server "$PORT" --bind 127.0.0.1 \
        --directory "$BATS_TEST_TMPDIR/www" --protocol HTTP/1.1
    start_attach "$SRV_PID" --max-body 1k
    curl -s --max-time 5 -o "$BATS_TEST_TMPDIR/a" -o "$BATS_TEST_TMPDIR/bin" \
        "$BASE/a.txt" "$BASE/bin.dat"
    cmp "$BATS_TEST_TMPDIR/www/a.txt" "$BATS_TEST_TMPDIR/a"
    cmp "$BATS_TEST_TMPDIR/www/bin.dat" "$BATS_TEST_TMPDIR/bin"
    wait_exchanges "$LOG" 2
    stop_attach
    run jq -c '[.url.path, .http.response.status_code, .http.response.body.size,
                .http.response.body.truncated, .httptape.connection.request_index,
                .httptape.complete]' <(exchanges "$LOG")
    assert_output $'["/a.txt",200,6,null,0,true]\n["/bin.dat",200,300000,true,1,true]'
    exchanges "$LOG" | jq -r 'select(.url.path == "/bin.dat") | .http.response.body.content' |
        base64 -d >"$BATS_TEST_TMPDIR/excerpt"
    cmp <(head -c 1024 "$BATS_TEST_TMPDIR/www/bin.dat") "$BATS_TEST_TMPDIR/excerpt"
}

@test "attach: the static server: httptape run records nothing, attach records everything" {
    needs_bpf
    [ -x "$STATIC_SERVER" ] || fail "no $STATIC_SERVER (make builds it)"
    # No program interpreter: no ld.so, so nothing reads LD_PRELOAD.
    run readelf -l "$STATIC_SERVER"
    assert_success
    refute_output --partial "INTERP"
    # Under `httptape run` the static server works, and nothing is logged.
    start_bg static "$HTTPTAPE" run --log "$BATS_TEST_TMPDIR/run.jsonl" -- "$STATIC_SERVER" "$PORT"
    SRV_PID=$SERVER_PID
    wait_output "listening on $PORT"
    run cat "$SERVER_OUT"
    assert_output --partial "statically linked"            # run's warning
    run curl -s --max-time 5 "$BASE/hello?name=unseen"
    assert_output "hello, unseen"
    sleep 0.5
    run count_exchanges "$BATS_TEST_TMPDIR/run.jsonl"
    assert_output 0
    # The same process, attached to.
    start_attach "$SRV_PID"
    run curl -s --max-time 5 "$BASE/hello?name=seen"
    assert_output "hello, seen"
    curl -s --max-time 5 -o /dev/null -o /dev/null "$BASE/big" "$BASE/chunked"
    run curl -s --max-time 5 -H 'Transfer-Encoding: chunked' -d 'sent in chunks' "$BASE/echo"
    assert_output "sent in chunks"
    run curl -s --max-time 5 -d 'plain body' "$BASE/echo"
    assert_output "plain body"
    run curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$BASE/nothing-here"
    assert_output 404
    wait_exchanges "$LOG" 6
    stop_attach
    run jq -c '[.http.request.method, .url.path, .http.response.status_code,
                .http.request.body.content, .http.response.body.size,
                .http.response.body.truncated, .http.response.header["transfer-encoding"],
                .httptape.complete]' <(exchanges "$LOG")
    assert_output "$(cat <<'EOF'
["GET","/hello",200,null,12,null,null,true]
["GET","/big",200,null,65536,true,null,true]
["GET","/chunked",200,null,40,null,["chunked"],true]
["POST","/echo",200,"sent in chunks",14,null,null,true]
["POST","/echo",200,"plain body",10,null,null,true]
["GET","/nothing-here",404,null,10,null,null,true]
EOF
)"
    run exchanges "$LOG"
    assert_equal "$(jq -r '.http.response.body.content' <<<"${lines[2]}")" \
        "$(printf 'first chunk\nsecond chunk\nthird and last\n')"
    # Still serving after detach.
    run curl -s --max-time 5 "$BASE/hello?name=after"
    assert_output "hello, after"
}

@test "attach: a keep-alive connection open before attaching is joined at its next request and marked" {
    needs_bpf
    start_server static "$STATIC_SERVER" "$PORT"
    go="$BATS_TEST_TMPDIR/go"
    start_bg client "$PY" "$APPS/attach_client.py" "$PORT" get:/hello?name=before "wait:$go" \
        get:/hello?name=after post:/echo:5000 pipe:/hello?name=p1,/hello?name=p2 close
    CLIENT_PID=$SERVER_PID
    CLIENT_OUT=$SERVER_OUT
    for _ in $(seq 50); do grep -q . "$CLIENT_OUT" && break; sleep 0.1; done
    start_attach "$SRV_PID"
    touch "$go"
    wait_exit "$CLIENT_PID" 15
    assert_equal "$EXIT_STATUS" 0
    run cat "$CLIENT_OUT"
    assert_output $'200 14\n200 13\n200 5000\n200 10\n200 10\n200 54'
    wait_exchanges "$LOG" 5
    stop_attach
    # Joined between two requests: every exchange is whole, and says joined.
    run jq -c '[.http.request.method, .url.path, .url.query, .http.response.body.size,
                .httptape.connection.request_index, .httptape.complete, .httptape.gaps,
                .httptape.connection.joined]' <(exchanges "$LOG")
    assert_output "$(cat <<EOF
["GET","/hello","name=after",13,0,true,null,true]
["POST","/echo",null,5000,1,true,null,true]
["GET","/hello","name=p1",10,2,true,null,true]
["GET","/hello","name=p2",10,3,true,null,true]
["GET","/",null,54,4,true,null,true]
EOF
)"
    grep -q '(1 joined)' "$ATTACH_OUT"
}

# keepalive_attach READY ARGS...: python http.server, and one keep-alive
# connection (apps/keepalive_client.py PORT GO ARGS...) that waits for GO
# once its output has READY lines; attach then, let it go on, wait for it
# (exit 0) and detach. The client's output is in $output.
keepalive_attach() {
    local ready=$1; shift
    start_server http "$PY" "$APPS/echo_server.py" "$PORT"
    go="$BATS_TEST_TMPDIR/go"
    start_bg client "$PY" "$APPS/keepalive_client.py" "$PORT" "$go" "$@"
    CLIENT_PID=$SERVER_PID
    CLIENT_OUT=$SERVER_OUT
    for _ in $(seq 50); do [ "$(grep -c . "$CLIENT_OUT")" -ge "$ready" ] && break; sleep 0.1; done
    start_attach "$SRV_PID"
    touch "$go"
    wait_exit "$CLIENT_PID" 15
    assert_equal "$EXIT_STATUS" 0
    wait_exchanges "$LOG" 3
    stop_attach
    grep -q '(1 joined)' "$ATTACH_OUT"
    run cat "$CLIENT_OUT"
}

@test "attach: python http.server: a keep-alive connection joined mid-way logs its next 3 requests complete, all marked joined" {
    needs_bpf
    keepalive_attach 2 2 3
    assert_output $'200 10\n200 11\n200 12\n200 13\n200 14'
    # At most one incomplete (the one in flight when we came in: none here),
    # the 3 requests made after attaching complete, every one says joined.
    run jq -s -c '[(map(select(.httptape.complete | not)) | length),
                   map(select(.httptape.complete) | .url.query),
                   (map(.httptape.connection.joined) | unique)]' <(exchanges "$LOG")
    assert_output '[0,["size=12&n=2","size=13&n=3","size=14&n=4"],[true]]'
}

@test "attach: python http.server: joined inside a request, only that exchange is incomplete; the next 3 are complete and marked joined" {
    needs_bpf
    keepalive_attach 3 2 3 inflight
    assert_output $'200 10\n200 11\nsent half\n200 20\n200 13\n200 14\n200 15'
    # The POST under way is the one incomplete exchange (its response,
    # without the request we came in after), saying why.
    run jq -s -c '[map(select(.httptape.complete | not) | .httptape.gaps),
                   map(select(.httptape.complete) | .url.query),
                   (map(.httptape.connection.joined) | unique)]' <(exchanges "$LOG")
    assert_output '[[["no_request","joined_mid_connection"]],["size=13&n=3","size=14&n=4","size=15&n=5"],[true]]'
}

@test "attach: --duration detaches by itself and the server keeps serving" {
    needs_bpf
    start_server static "$STATIC_SERVER" "$PORT"
    start=$SECONDS
    run timeout 30 "$HTTPTAPE" attach --pid "$SRV_PID" --log "$LOG" --duration 2
    assert_success
    assert_line --index 0 --partial "attached to pid $SRV_PID (static-server)"
    assert_line --index 1 --regexp "^httptape attach: detached from pid $SRV_PID after 2\.[0-9] s: "
    [ $((SECONDS - start)) -lt 20 ]
    run curl -s --max-time 5 "$BASE/hello"
    assert_output "hello, world"
    run jq -c 'select(.httptape.type == "stats") | .httptape.final' "$LOG"
    assert_output true
}

@test "attach: SIGTERM detaches and writes the exchanges seen so far" {
    needs_bpf
    start_server static "$STATIC_SERVER" "$PORT"
    start_attach "$SRV_PID"
    curl -s --max-time 5 -o /dev/null "$BASE/hello?name=term"
    kill -TERM "$ATTACH_PID"
    wait_exit "$ATTACH_PID" 15
    assert_equal "$EXIT_STATUS" 0
    run jq -c '[.url.query, .httptape.complete]' <(exchanges "$LOG")
    assert_output '["name=term",true]'
    run curl -s --max-time 5 "$BASE/hello"
    assert_output "hello, world"
}

@test "attach: when the process exits, attach ends and says so" {
    needs_bpf
    start_server static "$STATIC_SERVER" "$PORT"
    start_attach "$SRV_PID"
    curl -s --max-time 5 -o /dev/null "$BASE/hello"
    stop_pid "$SRV_PID"
    wait_exit "$ATTACH_PID" 15
    assert_equal "$EXIT_STATUS" 0
    run cat "$ATTACH_OUT"
    assert_output --partial "(it exited)"
    run count_exchanges "$LOG"
    assert_output 1
}

# start_nginx_master: nginx (master_process on, 2 workers, sendfile) serving
# $D/www on $PORT; sets D, MASTER and OLD (the workers' pids).
start_nginx_master() {
    command -v nginx >/dev/null || skip "no nginx (scripts/install-deps.sh installs nginx-light)"
    D=$BATS_TEST_TMPDIR
    mkdir -p "$D/www" "$D/temp"
    printf 'small file\n' >"$D/www/small.txt"
    head -c 20000 /dev/urandom >"$D/www/big.bin"
    cat >"$D/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
user root;
pid $D/nginx.pid;
error_log $D/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $D/temp/body;
    proxy_temp_path $D/temp/proxy;
    fastcgi_temp_path $D/temp/fastcgi;
    uwsgi_temp_path $D/temp/uwsgi;
    scgi_temp_path $D/temp/scgi;
    sendfile on;
    types { text/plain txt; application/octet-stream bin; }
    server { listen 127.0.0.1:$PORT; root $D/www; }
}
CONF
    start_bg nginx nginx -p "$D" -e "$D/error.log" -c "$D/nginx.conf"
    MASTER=$SERVER_PID
    OLD=$(wait_children "$MASTER" 2 | tr '\n' ' ')
    # shellcheck disable=SC2086
    track_children nginx $OLD
    wait_http "$BASE/"
}

@test "attach: --children follows nginx's workers, those running and those forked later" {
    needs_bpf
    start_nginx_master
    old=$OLD
    start_attach "$MASTER" --children
    curl -s --max-time 5 -o /dev/null "$BASE/small.txt"
    wait_exchanges "$LOG" 1
    # A reload forks new workers; the old ones finish and exit.
    kill -HUP "$MASTER"
    new=
    for _ in $(seq 100); do
        new=$(children_of "$MASTER" | grep -vxF -f <(tr ' ' '\n' <<<"$old" | grep .) | tr '\n' ' ')
        [ "$(wc -w <<<"$new")" -ge 2 ] && break
        sleep 0.1
    done
    [ "$(wc -w <<<"$new")" -ge 2 ] || fail "no new workers after SIGHUP"
    # shellcheck disable=SC2086
    track_children nginx $new
    sleep 0.5
    curl -s --max-time 5 -o /dev/null -o /dev/null "$BASE/small.txt" "$BASE/big.bin"
    wait_exchanges "$LOG" 3
    stop_attach
    run jq -c '[.url.path, .http.response.status_code, .http.response.body.size,
                .http.response.body.source, .httptape.complete]' <(exchanges "$LOG")
    assert_output $'["/small.txt",200,11,"sendfile",true]\n["/small.txt",200,11,"sendfile",true]\n["/big.bin",200,20000,"sendfile",true]'
    # The first from an old worker, the others from a new one; never the master.
    run jq -r '.process.pid' <(exchanges "$LOG")
    grep -qwF "${lines[0]}" <<<"$old"
    grep -qwF "${lines[1]}" <<<"$new"
    grep -qwF "${lines[2]}" <<<"$new"
    # The excerpt of the 20000-byte body is the file's first 4096 bytes.
    exchanges "$LOG" | jq -r 'select(.url.path == "/big.bin") | .http.response.body.content' |
        base64 -d >"$D/excerpt"
    cmp <(head -c 4096 "$D/www/big.bin") "$D/excerpt"
}

@test "attach: --children follows a connection a forking server hands to the child it forks" {
    needs_bpf
    start_server forking "$PY" "$APPS/attach_forking_server.py" "$PORT"
    start_attach "$SRV_PID" --children
    run curl -s --max-time 5 "$BASE/hello?name=a" "$BASE/hello?name=b"
    assert_output $'hello, a\nhello, b'
    run curl -s --max-time 5 -d 'forked body' "$BASE/echo"
    assert_output "forked body"
    wait_exchanges "$LOG" 3
    stop_attach
    run jq -c '[.http.request.method, .url.query, .http.request.body.content,
                .http.response.body.content, .httptape.connection.request_index,
                .process.pid != '"$SRV_PID"', .httptape.complete]' <(exchanges "$LOG")
    assert_output "$(cat <<'EOF'
["GET","name=a",null,"hello, a\n",0,true,true]
["GET","name=b",null,"hello, b\n",1,true,true]
["POST",null,"forked body","forked body",0,true,true]
EOF
)"
    # Each connection was served by its own child, not by the server itself.
    run jq -r '.process.pid' <(exchanges "$LOG")
    [ "${lines[0]}" = "${lines[1]}" ]
    [ "${lines[0]}" != "${lines[2]}" ]
}

@test "attach: a server in a chroot: files it sends with sendfile are logged as excerpts" {
    needs_bpf
    command -v unshare >/dev/null && command -v chroot >/dev/null || skip "needs unshare and chroot"
    # A small root: /usr bound read-only (in a mount namespace of the
    # server's own, gone when it exits), Debian's /bin, /lib, /lib64 links,
    # the app and the files it serves.
    jail="$BATS_TEST_TMPDIR/jail"
    mkdir -p "$jail/usr" "$jail/app" "$jail/www"
    for d in bin lib lib64; do ln -s "usr/$d" "$jail/$d"; done
    cp "$APPS/echo_server.py" "$jail/app/"
    printf 'hello from the jail\n' >"$jail/www/small.txt"
    head -c 5000 /dev/urandom >"$jail/www/bin.dat"
    # unshare and chroot exec: the pid is the server's.
    start_server jailed unshare --mount --propagation private sh -c \
        'mount --bind /usr "$1/usr" && mount -o remount,bind,ro "$1/usr" &&
         exec chroot "$1" /usr/bin/python3 /app/echo_server.py "$2" --files /www' \
        sh "$jail" "$PORT"
    [ "$(readlink "/proc/$SRV_PID/root")" = "$jail" ]
    start_attach "$SRV_PID" --max-body 1k
    run curl -s --max-time 5 "$BASE/sendfile/small.txt"
    assert_output "hello from the jail"
    curl -s --max-time 5 -o "$BATS_TEST_TMPDIR/bin" "$BASE/sendfile/bin.dat"
    cmp "$jail/www/bin.dat" "$BATS_TEST_TMPDIR/bin"
    wait_exchanges "$LOG" 2
    stop_attach
    run jq -c '[.url.path, .http.response.body.size, .http.response.body.source,
                .http.response.body.truncated, .httptape.complete]' <(exchanges "$LOG")
    assert_output $'["/sendfile/small.txt",20,"sendfile",null,true]\n["/sendfile/bin.dat",5000,"sendfile",true,true]'
    run jq -r 'select(.url.path == "/sendfile/small.txt") | .http.response.body.content' \
        <(exchanges "$LOG")
    assert_output "hello from the jail"
    exchanges "$LOG" | jq -r 'select(.url.path == "/sendfile/bin.dat") | .http.response.body.content' |
        base64 -d >"$BATS_TEST_TMPDIR/excerpt"
    cmp <(head -c 1024 "$jail/www/bin.dat") "$BATS_TEST_TMPDIR/excerpt"
}

@test "attach: the same traffic gives the same events under run and under attach" {
    needs_bpf
    mkdir -p "$BATS_TEST_TMPDIR/files"
    head -c 30000 /dev/urandom >"$BATS_TEST_TMPDIR/files/blob.bin"
    # keep-alive, a body over the 4096-byte cap both ways, chunked request
    # and response, pipelining, sendfile, splice, and a last request (a 404) that
    # closes the connection.
    traffic() {
        "$PY" "$APPS/attach_client.py" "$PORT" get:/hello?size=10 get:/hello?size=10000 \
            post:/echo:100 post:/echo:9000 chunk:/echo:5000 \
            pipe:/hello?size=5,/hello?size=6000,/hello?size=7 \
            get:/sendfile/blob.bin get:/splice/blob.bin close >/dev/null &&
        curl -s --max-time 5 -o /dev/null -H 'X-Second: yes' "$BASE/hello?size=3" \
            --next -s --max-time 5 -o /dev/null -d 'form=1&b=2' "$BASE/echo"
    }
    # Everything but how, when and by which process it was captured.
    normalise() {
        jq -c 'select(.httptape.type == "exchange")
               | del(.timestamp, .httptape.mode, .httptape.connection.id, .process.pid,
                     .httptape.timing, .httptape.duration_ns, .network.peer.port, .client.port,
                     .http.response.header.date)' "$1" | jq -S -c . | sort
    }
    start_bg run "$HTTPTAPE" run --log "$BATS_TEST_TMPDIR/run.jsonl" -- \
        "$PY" "$APPS/echo_server.py" "$PORT" --files "$BATS_TEST_TMPDIR/files"
    wait_http "$BASE/"
    traffic
    wait_exchanges "$BATS_TEST_TMPDIR/run.jsonl" 13
    stop_server run

    start_server plain "$PY" "$APPS/echo_server.py" "$PORT" --files "$BATS_TEST_TMPDIR/files"
    start_attach "$SRV_PID"
    traffic
    wait_exchanges "$LOG" 13
    stop_attach

    normalise "$BATS_TEST_TMPDIR/run.jsonl" >"$BATS_TEST_TMPDIR/run.norm"
    normalise "$LOG" >"$BATS_TEST_TMPDIR/attach.norm"
    run wc -l <"$BATS_TEST_TMPDIR/run.norm"
    assert_output 13
    run diff "$BATS_TEST_TMPDIR/run.norm" "$BATS_TEST_TMPDIR/attach.norm"
    assert_success
    # The modes differ, and only they.
    run jq -r 'select(.httptape.type == "exchange") | .httptape.mode' "$LOG"
    assert_equal "$(sort -u <<<"$output")" attach
    run jq -r 'select(.httptape.type == "exchange") | .httptape.mode' "$BATS_TEST_TMPDIR/run.jsonl"
    assert_equal "$(sort -u <<<"$output")" preload
}

@test "attach: bytes lost to a full ring buffer are gaps in their exchange and counted, never silent" {
    needs_bpf
    start_server static "$STATIC_SERVER" "$PORT"
    # 8 KiB holds one 4 KiB piece of the 64 KiB /big response, not two.
    start_attach "$SRV_PID" --ring-size 8k
    curl -s --max-time 5 -o /dev/null "$BASE/hello?name=1"
    curl -s --max-time 5 -o /dev/null "$BASE/big"
    curl -s --max-time 5 -o /dev/null "$BASE/hello?name=2"
    wait_exchanges "$LOG" 3
    stop_attach
    run jq -c '[.url.path, .http.response.body.size, .httptape.complete, .httptape.gaps]' \
        <(exchanges "$LOG")
    assert_output $'["/hello",9,true,null]\n["/big",65536,false,["capture_gap"]]\n["/hello",9,true,null]'
    run jq -c 'select(.httptape.type == "stats") | .httptape.stats.capture_gaps > 0' "$LOG"
    assert_output true
    run cat "$ATTACH_OUT"
    assert_output --regexp "not everything was seen: [0-9]+ records lost to a full ring buffer"
}

@test "attach: request bodies of every size around the one-record copies are logged whole" {
    needs_bpf
    start_server http "$PY" "$APPS/echo_server.py" "$PORT"
    start_attach "$SRV_PID" --max-body 8k
    local n sizes=(1 255 256 257 975 976 977 1023 1024 1025 4096 5000)
    for n in "${sizes[@]}"; do
        head -c "$n" /dev/zero | tr '\0' x >"$BATS_TEST_TMPDIR/body"
        run curl -s --max-time 5 --data-binary @"$BATS_TEST_TMPDIR/body" "$BASE/echo"
        assert_equal "${#output}" "$n"
    done
    wait_exchanges "$LOG" "${#sizes[@]}"
    stop_attach
    run jq -c '[(.http.request.body.content | length), (.http.response.body.content | length),
                .httptape.complete, (.httptape.gaps // [] | length)]' <(exchanges "$LOG")
    for i in "${!sizes[@]}"; do
        assert_line --index "$i" "[${sizes[$i]},${sizes[$i]},true,0]"
    done
}

@test "attach: responses written with writev in several segments are logged whole, in one record or in pieces" {
    needs_bpf
    start_server http "$PY" "$APPS/echo_server.py" "$PORT"
    start_attach "$SRV_PID" --max-body 8k
    # The head is one segment, each part another: one record up to 4
    # segments and 2 KiB, pieces past that (5 segments, 2067 bytes, 5 KiB).
    local i parts=(100 1,1 10,0,30 63,64,65 5,5,5,5 900,1000 1000,1000 300,5000)
    for i in "${!parts[@]}"; do
        curl -s --max-time 5 -o "$BATS_TEST_TMPDIR/body.$i" "$BASE/writev?parts=${parts[$i]}"
        assert_equal "$(wc -c <"$BATS_TEST_TMPDIR/body.$i")" "$((${parts[$i]//,/+}))"
    done
    wait_exchanges "$LOG" "${#parts[@]}"
    stop_attach
    run jq -c '[.url.query, .http.response.body.size, .httptape.complete, .httptape.gaps]' \
        <(exchanges "$LOG")
    for i in "${!parts[@]}"; do
        assert_line --index "$i" "[\"parts=${parts[$i]}\",$(wc -c <"$BATS_TEST_TMPDIR/body.$i"),true,null]"
        exchanges "$LOG" | jq -j --arg q "parts=${parts[$i]}" \
            'select(.url.query == $q) | .http.response.body.content // ""' >"$BATS_TEST_TMPDIR/logged"
        cmp "$BATS_TEST_TMPDIR/body.$i" "$BATS_TEST_TMPDIR/logged"
    done
}

@test "attach: requests read with recvmsg into several buffers are logged whole" {
    needs_bpf
    # --gather: every read fills buffers of 7 and 93 bytes before the rest.
    start_server http "$PY" "$APPS/echo_server.py" "$PORT" --gather
    start_attach "$SRV_PID" --max-body 8k
    local n sizes=(1 60 200 900 1500 3000)
    for n in "${sizes[@]}"; do
        head -c "$n" /dev/zero | tr '\0' y >"$BATS_TEST_TMPDIR/body"
        run curl -s --max-time 5 --data-binary @"$BATS_TEST_TMPDIR/body" "$BASE/echo?n=$n"
        assert_equal "$output" "$(cat "$BATS_TEST_TMPDIR/body")"
    done
    wait_exchanges "$LOG" "${#sizes[@]}"
    stop_attach
    run jq -c '[.url.query, .http.request.body.content, .http.response.body.size,
                .httptape.complete, .httptape.gaps]' <(exchanges "$LOG")
    for i in "${!sizes[@]}"; do
        n=${sizes[$i]}
        assert_line --index "$i" "[\"n=$n\",\"$(head -c "$n" /dev/zero | tr '\0' y)\",$n,true,null]"
    done
}

@test "attach: a chunked response past --max-body, written with writev, is skipped in the kernel and logged whole" {
    needs_bpf
    start_server http "$PY" "$APPS/echo_server.py" "$PORT"
    start_attach "$SRV_PID" --max-body 1k --verbose
    # Each chunk's data but its first KiB goes by uncopied; the writev that
    # ends it carries the chunk's CRLF and the next size line in segments
    # after the skipped bytes, from the middle of one.
    curl -s --max-time 10 -o "$BATS_TEST_TMPDIR/body" "$BASE/writev-chunked?chunks=3&size=40000"
    assert_equal "$(wc -c <"$BATS_TEST_TMPDIR/body")" 120000
    wait_exchanges "$LOG" 1
    stop_attach
    run jq -c '[.http.response.body.size, .http.response.body.truncated,
                .http.response.header["transfer-encoding"], .httptape.complete, .httptape.gaps]' \
        <(exchanges "$LOG")
    assert_output '[120000,true,["chunked"],true,null]'
    exchanges "$LOG" | jq -j '.http.response.body.content' >"$BATS_TEST_TMPDIR/excerpt"
    cmp <(head -c 1024 "$BATS_TEST_TMPDIR/body") "$BATS_TEST_TMPDIR/excerpt"
    grep -Eq 'httptape attach: [1-9][0-9]{4,} body bytes past the excerpt cap were counted without being copied' \
        "$ATTACH_OUT"
}

@test "attach: --kernel-stats says at detach what the BPF programs cost, per program" {
    needs_bpf
    start_server http "$PY" "$APPS/echo_server.py" "$PORT"
    start_attach "$SRV_PID" --kernel-stats
    for _ in 1 2 3; do
        run curl -s --max-time 5 "$BASE/hello?size=5"
        assert_output "hello"
    done
    wait_exchanges "$LOG" 3
    stop_attach
    # One line on stdout, before the detached line: total time, runs, the
    # mean, and each program that ran (runs/ns).
    run grep '^httptape attach: kernel side: ' "$ATTACH_OUT"
    assert_line --regexp '^httptape attach: kernel side: [0-9]+ ns in [0-9]+ program runs \([0-9]+ ns per run; per program, runs/ns: .*exit_accept4 [1-9][0-9]*/[0-9]+.*\)$'
    local ns runs
    ns=$(sed -n 's/.*kernel side: \([0-9]*\) ns in \([0-9]*\) program runs.*/\1/p' "$ATTACH_OUT")
    runs=$(sed -n 's/.*kernel side: \([0-9]*\) ns in \([0-9]*\) program runs.*/\2/p' "$ATTACH_OUT")
    ((ns > 0 && runs >= 3))
    [[ $output == *"exit_sendto "* || $output == *"exit_write "* || $output == *"exit_writev "* ]]
    # Without the flag, no such line.
    start_attach "$SRV_PID"
    stop_attach
    run grep -c 'kernel side' "$ATTACH_OUT"
    assert_output 0
}

@test "attach: no such pid exits 3 with one line" {
    [ "$ATTACH_SKIP" = "${ATTACH_SKIP#*unavailable in this build}" ] ||
        skip "$ATTACH_SKIP"
    # A pid that was just used and has exited.
    sh -c 'exit 0' &
    gone=$!
    wait "$gone"
    run "$HTTPTAPE" attach --pid "$gone" --log "$LOG"
    assert_equal "$status" 3
    assert_output "httptape attach: no process with pid $gone"
    [ ! -e "$LOG" ]
}

@test "attach: bad flags exit 2 with one line naming the flag" {
    run "$HTTPTAPE" attach
    assert_equal "$status" 2
    assert_line --index 0 "httptape attach: --pid PID is required"
    run "$HTTPTAPE" attach --pid abc
    assert_equal "$status" 2
    assert_output --partial "--pid: invalid value 'abc'"
    run "$HTTPTAPE" attach --pid 1 --duration -3
    assert_equal "$status" 2
    assert_output --partial "--duration: invalid value '-3'"
    run "$HTTPTAPE" attach --pid 1 --ring-size 3000
    assert_equal "$status" 2
    assert_output --partial "--ring-size: invalid value '3000'"
    run "$HTTPTAPE" attach --pid 1 --max-body lots
    assert_equal "$status" 2
    assert_output --partial "--max-body: invalid value 'lots'"
    run "$HTTPTAPE" attach --pid 1 --log /nonexistent-dir/x.jsonl
    assert_equal "$status" 2
    assert_output "httptape attach: --log: directory /nonexistent-dir does not exist"
}

@test "attach: not root is refused with exit 4 before anything loads" {
    needs_bpf
    command -v setpriv >/dev/null || skip "no setpriv (util-linux)"
    start_server static "$STATIC_SERVER" "$PORT"
    run setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
        "$HTTPTAPE" attach --pid "$SRV_PID"
    assert_equal "$status" 4
    assert_output "httptape attach: needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs"
}

@test "attach: --pid of an nginx master (its workers accept) records the workers, and says so" {
    needs_bpf
    start_nginx_master
    start_attach "$MASTER"
    grep -q "httptape attach: pid $MASTER listens, and its children (.*) accept on the same sockets: recording them too" "$ATTACH_OUT"
    curl -s --max-time 5 -o /dev/null "$BASE/small.txt"
    wait_exchanges "$LOG" 1
    stop_attach
    run jq -r '[.url.path, .process.pid] | @tsv' <(exchanges "$LOG")
    assert_output --regexp $'^/small.txt\t[0-9]+$'
    grep -qwF "$(cut -f2 <<<"$output")" <<<"$OLD"       # a worker, not the master

    # --no-children: the master alone, as asked (it accepts nothing).
    : >"$LOG"
    start_attach "$MASTER" --no-children --duration 3
    run grep -c "recording them too" "$ATTACH_OUT"
    assert_output 0
    curl -s --max-time 5 -o /dev/null "$BASE/small.txt"
    wait_exit "$ATTACH_PID" 15
    assert_equal "$(count_exchanges "$LOG")" 0
}

# ---- TLS: uprobes on the target's OpenSSL (docs/tls.md, "Under attach") ----

@test "attach: nginx https (worker as www-data): HTTP/1.1 and h2 over TLS are logged in plaintext through libssl's uprobes" {
    needs_bpf
    command -v nginx >/dev/null || skip "no nginx"
    id www-data >/dev/null 2>&1 || skip "no user www-data"
    make_test_certs
    local D H2PORT
    D=$(mktemp -d "$TLS_DIR/nginx.XXXXXX")
    H2PORT=$(free_port)
    chmod 755 "$D"
    mkdir -p "$D/www" "$D/temp"
    head -c 3000 /dev/urandom | base64 -w0 >"$D/www/page.txt"
    chmod -R a+rX "$D"
    cat >"$D/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
daemon off;
worker_processes 1;
user www-data;
pid $D/nginx.pid;
error_log $D/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
$(nginx_temp_paths "$D")
    types { text/plain txt; }
    ssl_certificate $TLS_DIR/cert.pem;
    ssl_certificate_key $TLS_DIR/key.pem;
    server {
        listen 127.0.0.1:$PORT ssl;
        listen 127.0.0.1:$H2PORT ssl http2;
        root $D/www;
        location = /post { echo_read_request_body; echo taken; }
    }
}
CONF
    start_server nginx nginx -p "$D" -e "$D/error.log" -c "$D/nginx.conf"
    local worker
    worker=$(wait_children "$SRV_PID" 1)
    track_children nginx "$worker"
    start_attach "$worker" --verbose
    grep -q "TLS: libssl" "$ATTACH_OUT"
    local c=(curl -s --max-time 20 --cacert "$TLS_DIR/ca.pem")
    run "${c[@]}" -o "$BATS_TEST_TMPDIR/got.txt" -w '%{num_connects}' "https://localhost:$PORT/page.txt" \
        --next "${c[@]:1}" -w '%{num_connects}' -d 'name=tape&password=hunter2' "https://localhost:$PORT/post"
    assert_output $'1taken\n0'           # the POST went on the GET's connection
    cmp "$BATS_TEST_TMPDIR/got.txt" "$D/www/page.txt"
    run "${c[@]}" --http2 -o /dev/null -w '%{http_version}' "https://localhost:$H2PORT/page.txt"
    assert_output 2
    wait_exchanges "$LOG" 3
    stop_attach
    run jq -c '[.http.request.method, .url.scheme, .url.path, .http.response.status_code,
                .http.response.body.size, .http.request.body.content, .network.protocol.version,
                .tls.established, .tls.client.server_name, .httptape.mode, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output - <<'OUT'
["GET","https","/page.txt",200,4000,null,"1.1",true,"localhost","attach",true]
["POST","https","/post",200,6,"name=tape&password=REDACTED","1.1",true,"localhost","attach",true]
["GET","https","/page.txt",200,4000,null,"2",true,"localhost","attach",true]
OUT
}

@test "attach: python http.server wrapped with ssl: bodies of 0 B to 1 MiB round-trip and are logged whole in size, in plaintext" {
    needs_bpf
    make_test_certs
    start_server echo "$PY" "$APPS/echo_server.py" "$PORT" --tls "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"
    start_attach "$SRV_PID"
    local sizes=(0 1 16385 1048577) n
    for n in "${sizes[@]}"; do
        head -c "$n" /dev/urandom >"$BATS_TEST_TMPDIR/in.$n"
        curl -s --max-time 20 --cacert "$TLS_DIR/ca.pem" --data-binary @"$BATS_TEST_TMPDIR/in.$n" \
            -H 'content-type: application/octet-stream' -o "$BATS_TEST_TMPDIR/out.$n" \
            "https://localhost:$PORT/echo"
        cmp "$BATS_TEST_TMPDIR/in.$n" "$BATS_TEST_TMPDIR/out.$n"
    done
    wait_exchanges "$LOG" "${#sizes[@]}"
    stop_attach
    run jq -c '[.url.scheme, .http.request.body.size, .http.response.body.size, .httptape.complete,
                .tls.established]' <(exchanges "$LOG")
    assert_output - <<'OUT'
["https",0,0,true,true]
["https",1,1,true,true]
["https",16385,16385,true,true]
["https",1048577,1048577,true,true]
OUT
    # The excerpt is the body as the app received it.
    jq -r 'select(.http.request.body.size == 16385) | .http.request.body.content' <(exchanges "$LOG") |
        base64 -d | cmp - <(head -c 4096 "$BATS_TEST_TMPDIR/in.16385")
}

@test "attach: uvicorn --ssl-keyfile (asyncio's memory BIOs: no socket to tie the plaintext to) gives one tls_not_decrypted record per connection, no junk" {
    needs_bpf
    make_test_certs
    start_bg uvicorn "$PY" -m uvicorn app:app --app-dir "$REPO/examples/fastapi" --host 127.0.0.1 \
        --port "$PORT" --ssl-keyfile "$TLS_DIR/key.pem" --ssl-certfile "$TLS_DIR/cert.pem"
    SRV_PID=$SERVER_PID
    wait_http "$BASE/"
    start_attach "$SRV_PID"
    run curl -s --max-time 20 --cacert "$TLS_DIR/ca.pem" "https://localhost:$PORT/health"
    assert_output '{"ok":true}'
    wait_exchanges "$LOG" 1
    stop_attach
    run jq -c '[.http, .url.scheme, .httptape.gaps, .tls.client.server_name, .tls.established]' \
        <(exchanges "$LOG")
    assert_output '[{},"https",["tls_not_decrypted"],"localhost",false]'
    run jq -c 'select(.httptape.type == "stats") | .httptape.stats.connections_tls_not_decrypted' "$LOG"
    assert_output 1
}

@test "attach: node https (OpenSSL linked in, memory BIOs): probed in the executable, each connection one tls_not_decrypted record, no junk" {
    needs_bpf
    command -v node >/dev/null || skip "no node"
    make_test_certs
    cat >"$BATS_TEST_TMPDIR/https.js" <<'JS'
const https = require('https'), fs = require('fs');
https.createServer({ cert: fs.readFileSync(process.argv[3]), key: fs.readFileSync(process.argv[4]) },
    (req, res) => { req.resume(); req.on('end', () => res.end('node tls\n')); })
    .listen(Number(process.argv[2]), '127.0.0.1');
JS
    start_server node node "$BATS_TEST_TMPDIR/https.js" "$PORT" "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"
    start_attach "$SRV_PID" --verbose
    grep -q "TLS: OpenSSL linked into the executable" "$ATTACH_OUT" ||
        skip "this node has no OpenSSL symbols"
    run curl -s --max-time 20 --cacert "$TLS_DIR/ca.pem" "https://localhost:$PORT/x"
    assert_output 'node tls'
    wait_exchanges "$LOG" 1
    stop_attach
    run jq -c '[.http, .url.scheme, .httptape.gaps]' <(exchanges "$LOG")
    assert_output '[{},"https",["tls_not_decrypted"]]'
}
