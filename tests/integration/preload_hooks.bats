#!/usr/bin/env bats
# preload_hooks.bats - the hooks against what apps really do: calls libc
# rejects (NULL and bad pointers), fork-per-connection servers, closefrom
# and vfork children, recvmmsg/sendmmsg, stdio and io_uring on a
# connection, and the fd numbers the app gets. The C apps are built into
# the test's directory with cc; each server handles a fixed number of
# connections and exits on its own (so its final statistics record is
# written), and teardown stops whatever is left.

load test_helper/common

setup() {
    test_server_vars
}

teardown() {
    stop_server
}

# build NAME SOURCE [CC ARGS...]: compiles apps/SOURCE into the test dir.
build() {
    local name=$1 src=$2; shift 2
    cc -O1 -Wall -o "$BATS_TEST_TMPDIR/$name" "$APPS/$src" "$@"
}

# serve MODE COUNT [LOGPATH]: the C server under `httptape run`.
serve() {
    build hooks_server hooks_server.c
    start_tapped srv "$LOG" "$BATS_TEST_TMPDIR/hooks_server" "$PORT" "$@"
    wait_output listening
}

# get PATH...: one request (one connection) per path.
get() {
    local p
    for p in "$@"; do
        curl -s --max-time 5 -o /dev/null "$BASE$p" || return 1
    done
}

# wait_exit: the server exits by itself after its connections (10 s at most).
wait_exit() {
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "server $SERVER_PID still running after 10 s" >&2
    show_server_output
    return 1
}

# final_stats: the final statistics records, one compact object a line.
final_stats() {
    jq -c 'select(.httptape.type == "stats" and .httptape.final) | .httptape.stats' "$LOG"
}

# sum_stat FIELD: FIELD summed over every process's final record.
sum_stat() {
    final_stats | jq -s "map(.$1) | add // 0"
}

@test "hooks: calls libc rejects (NULL msghdr, bad offset or addrlen pointer) fail as without the library" {
    build badargs hooks_badargs.c
    run "$BATS_TEST_TMPDIR/badargs"
    assert_success
    plain=$output
    assert_line --partial "sendmsg(tracked, NULL)"
    HTTPTAPE_LOG="$LOG" LD_PRELOAD="$HTTPTAPE_LIB" run "$BATS_TEST_TMPDIR/badargs"
    assert_success
    assert_equal "$output" "$plain"
}

@test "hooks: python's ForkingMixIn http.server logs each of 3 requests once, from the child that served it" {
    start_tapped srv "$LOG" "$PY" "$APPS/hooks_forking_server.py" "$PORT" 3
    wait_output listening
    get /one /two /three
    wait_exit
    wait_exchanges "$LOG" 3
    run jq -rs 'map(select(.httptape.type == "exchange")) | sort_by(.url.path) | .[] |
                [.url.path, .http.response.status_code, (.httptape.gaps // [] | join(","))] | @tsv' "$LOG"
    assert_output "$(printf '/one\t200\t\n/three\t200\t\n/two\t200\t')"
    # Each child says what it did in its own final record; the parent
    # logged nothing for its copies.
    run bash -c "jq -r 'select(.httptape.type == \"exchange\") | .process.pid' '$LOG' | sort -u | wc -l"
    assert_output 3
    refute_line "$SERVER_PID"
    assert_equal "$(sum_stat exchanges_written)" 3
    assert_equal "$(sum_stat exchanges_seen)" 3
    assert_equal "$(sum_stat exchanges_dropped)" 0
}

@test "hooks: a C server that forks after accept logs each of 3 requests once, under the children's pids" {
    serve fork 3
    get /a /b /c
    wait_exit
    wait_exchanges "$LOG" 3
    run jq -rs 'map(select(.httptape.type == "exchange")) | sort_by(.url.path) | .[] |
                [.url.path, .http.response.status_code, .httptape.complete,
                 .process.pid != '"$SERVER_PID"'] | @tsv' "$LOG"
    assert_output "$(printf '/a\t200\ttrue\ttrue\n/b\t200\ttrue\ttrue\n/c\t200\ttrue\ttrue')"
    assert_equal "$(sum_stat exchanges_written)" 3
}

@test "hooks: a parent that read the request before forking logs no false no_response for its copy" {
    serve fork-early 3
    get /a /b /c
    wait_exit
    wait_exchanges "$LOG" 3
    sleep 0.3
    run jq -rs 'map(select(.httptape.type == "exchange")) | sort_by(.url.path) | .[] |
                [.url.path, .http.response.status_code, (.httptape.gaps // [] | join(","))] | @tsv' "$LOG"
    assert_output "$(printf '/a\t200\t\n/b\t200\t\n/c\t200\t')"
}

@test "hooks: closefrom() in the app between requests leaves the log open: all 4 exchanges are logged" {
    serve closefrom 4
    get /a /b /c /d
    wait_exit
    wait_exchanges "$LOG" 4
    run jq -r 'select(.httptape.type == "exchange") | .url.path' "$LOG"
    assert_output "$(printf '/a\n/b\n/c\n/d')"
    assert_equal "$(sum_stat exchanges_written)" 4
}

@test "hooks: the server holds no fd of the log; a vfork child's dup2() onto every number leaves recording alone" {
    serve vfork 4 "$(realpath -m "$LOG")"
    get /a /b /c /d
    wait_exit
    # The collector owns the log: no number of the server's points at it.
    run grep -c '^log fd -1$' "$SERVER_OUT"
    assert_output 4
    wait_exchanges "$LOG" 4
    run jq -r 'select(.httptape.type == "exchange") | .url.path' "$LOG"
    assert_output "$(printf '/a\n/b\n/c\n/d')"
    assert_equal "$(sum_stat exchanges_written)" 4
}

@test "hooks: a server reading with recvmmsg and answering with sendmmsg has its exchanges logged whole" {
    serve mmsg 3
    get /a /b /c
    wait_exit
    wait_exchanges "$LOG" 3
    run jq -r 'select(.httptape.type == "exchange") | [.url.path, .http.response.status_code,
               .http.response.body.size, .httptape.complete] | @tsv' "$LOG"
    assert_output "$(printf '/a\t200\t6\ttrue\n/b\t200\t6\ttrue\n/c\t200\t6\ttrue')"
}

@test "hooks: connections served through stdio (fdopen) are counted unseen and said once, none logged" {
    serve fdopen 3
    get /a /b /c
    wait_exit
    assert_equal "$(count_exchanges "$LOG")" 0
    run grep -c "through stdio (fdopen)" "$SERVER_OUT"
    assert_output 1
    assert_equal "$(sum_stat connections_unseen_stdio)" 3
    assert_equal "$(sum_stat connections_unseen)" 3
}

@test "hooks: a process using io_uring (liburing) logs no false no_response; its one-way connections are counted" {
    # A stand-in liburing: the server calls io_uring_queue_init from it and
    # answers with the raw write system call, which is what a ring's sends
    # look like from here (no libc call to see).
    printf 'int io_uring_queue_init(unsigned e, void *r, unsigned f)\n{ (void)e; (void)r; (void)f; return 0; }\n' \
        >"$BATS_TEST_TMPDIR/uring.c"
    cc -shared -fPIC -o "$BATS_TEST_TMPDIR/liburing.so" "$BATS_TEST_TMPDIR/uring.c"
    build hooks_server hooks_server.c -DHT_URING -L"$BATS_TEST_TMPDIR" -luring \
        -Wl,-rpath,"$BATS_TEST_TMPDIR"
    start_tapped srv "$LOG" "$BATS_TEST_TMPDIR/hooks_server" "$PORT" uring 3
    wait_output listening
    get /a /b /c
    wait_exit
    assert_equal "$(count_exchanges "$LOG")" 0
    run grep -c "uses io_uring" "$SERVER_OUT"
    assert_output 1
    assert_equal "$(sum_stat connections_unseen_io_uring)" 3
}

@test "hooks: fcntl(F_DUPFD, 512) gives the app 512, as without the library, and the log goes on" {
    serve dupfd 3 "$(realpath -m "$LOG")"
    get /a /b /c
    wait_exit
    run grep '^dupfd' "$SERVER_OUT"
    assert_output "$(printf 'dupfd 512\ndupfd 512\ndupfd 512')"
    wait_exchanges "$LOG" 3
    assert_equal "$(sum_stat exchanges_written)" 3
}

@test "hooks: a read that began on a connection whose fd another thread closed and reused gives its bytes to neither" {
    build fdreuse_server fdreuse_server.c -lpthread
    start_tapped srv "$LOG" "$BATS_TEST_TMPDIR/fdreuse_server" "$PORT"
    run timeout 20 "$PY" - "$PORT" "$SERVER_OUT" <<'PY'
import socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
def wait_for(word):
    for _ in range(400):
        try:
            if word in open(out).read():
                return
        except FileNotFoundError:
            pass
        time.sleep(0.025)
    sys.exit("no %r from the server" % word)
def connect():
    for _ in range(400):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            time.sleep(0.025)
a = connect()
wait_for("blocked")
b = connect()
wait_for("reused 1")
req_a = b"GET /from-A HTTP/1.1\r\nHost: x\r\n\r\n"
a.sendall(req_a)
wait_for("a-read %d" % len(req_a))
b.sendall(b"GET /from-B HTTP/1.1\r\nHost: x\r\n\r\n")
print(b.recv(4096).decode().split("\r\n")[0], len(req_a))
PY
    assert_success
    assert_output "HTTP/1.1 200 OK 33"
    wait_exit
    wait_no_holders "$LOG"
    # B's connection holds B's request only, whole; A's bytes are counted.
    run jq -c 'select(.httptape.type == "exchange") | [.url.path, .httptape.connection.request_index,
               .httptape.complete]' "$LOG"
    assert_output '["/from-B",0,true]'
    assert_equal "$(sum_stat bytes_unattributed)" 33
}
