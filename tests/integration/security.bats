#!/usr/bin/env bats
# security.bats - safe by default (docs/security.md): secrets are redacted
# before an event leaves the app (headers, query parameters, JSON and form
# bodies, keyed pseudonyms, HTTPTAPE_REDACT=off), the log is private and
# never written through a symlink, privileged processes are not recorded,
# and every bad HTTPTAPE_* value is one clear line while the app runs on.
#
# Servers (uvicorn with tests/integration/apps/body_app.py, whose /echo
# answers with the request body, or Python's http.server) are started per
# test and stopped in teardown, pass or fail. The privileged-process tests
# need root (to give a copy of a program a set-id bit or a capability and run
# it as nobody) and are skipped otherwise.

load test_helper/common

# What runs as nobody is staged where nobody can reach it (the checkout may
# be under /root, mode 0700).
setup_file() {
    stage_for_others
}

teardown_file() {
    unstage
}

setup() {
    test_server_vars
    WWW="$BATS_TEST_TMPDIR/www"
    mkdir -p "$WWW"
    printf 'hello\n' >"$WWW/a.txt"
    HTTP_SERVER=("$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$WWW")
    PRIV_DIR=
    cd "$BATS_TEST_TMPDIR" || return
}

teardown() {
    stop_server
    if [ -n "$PRIV_DIR" ]; then rm -rf "$PRIV_DIR"; fi
}

# start_echo [VAR=value...]: uvicorn + body_app under httptape run, with
# the given variables in its environment.
start_echo() {
    start_bg uvicorn env "$@" "$HTTPTAPE" run --log "$LOG" -- \
        "$PY" -m uvicorn body_app:app --app-dir "$APPS" --host 127.0.0.1 --port "$PORT" \
        --no-access-log
    wait_http "$BASE/"
}

# post_secrets: one request carrying every kind of secret, and values that
# must stay. Prints the app's answer (the JSON body, echoed).
post_secrets() {
    curl -s --max-time 5 -H 'Authorization: Bearer tok-BEARER-1111' \
        -H 'Cookie: session=ck-SESSION-2222; theme=dark-KEEP' \
        -H 'content-type: application/json' \
        -d '{"user":{"name":"alice-KEEP","password":"pw-NESTED-3333","prefs":{"lang":"en-KEEP"}}}' \
        "$BASE/echo?page=2-KEEP&access_token=qs-ACCESS-4444"
}

# A program's stderr lines that come from httptape.
tape_lines() {
    grep -c '^httptape' "$1" || true
}

@test "security: a bearer token, a session cookie, a nested JSON password and an access_token query parameter are not in the log; other values are" {
    start_echo
    run post_secrets
    assert_success
    assert_output --partial pw-NESTED-3333          # the app itself got everything
    wait_exchanges "$LOG" 1
    for secret in tok-BEARER-1111 ck-SESSION-2222 pw-NESTED-3333 qs-ACCESS-4444; do
        if grep -q -- "$secret" "$LOG"; then
            echo "$secret is in the log:" >&2
            cat "$LOG" >&2
            return 1
        fi
    done
    run jq -c '[.url.path, .url.query, .http.request.header.authorization[0],
                .http.request.header.cookie[0], .http.request.header["content-type"][0]]' \
        <(exchanges "$LOG")
    assert_output '["/echo","page=2-KEEP&access_token=REDACTED","Bearer REDACTED","session=REDACTED; theme=REDACTED","application/json"]'
    run jq -c '.http.request.body.content | fromjson' <(exchanges "$LOG")
    assert_output '{"user":{"name":"alice-KEEP","password":"REDACTED","prefs":{"lang":"en-KEEP"}}}'
    # the echoed response body is redacted the same way
    run jq -c '.http.response.body.content | fromjson | .user' <(exchanges "$LOG")
    assert_output '{"name":"alice-KEEP","password":"REDACTED","prefs":{"lang":"en-KEEP"}}'
    run jq -c '.httptape.redacted' <(exchanges "$LOG")
    assert_output '["query:access_token","header:authorization","header:cookie","body:password"]'
    run grep -c '"complete":true' "$LOG"
    assert_output 1
}

@test "security: form bodies and the names of HTTPTAPE_REDACT_HEADERS, _QUERY and _FIELDS are redacted" {
    start_echo HTTPTAPE_REDACT_HEADERS=X-Session-Id HTTPTAPE_REDACT_QUERY=sess \
        HTTPTAPE_REDACT_FIELDS=otp,pin
    run curl -s --max-time 5 -H 'X-Session-Id: hdr-5555' -H 'X-Trace: trace-KEEP' \
        -d 'user=bob-KEEP&password=form-6666&otp=otp-7777&new_password=np-8888&remember=yes-KEEP' \
        "$BASE/echo?sess=qs-9999&q=find-KEEP"
    assert_success
    wait_exchanges "$LOG" 1
    for secret in hdr-5555 form-6666 otp-7777 np-8888 qs-9999; do
        run grep -c -- "$secret" "$LOG"
        assert_output 0
    done
    run jq -r '.http.request.body.content, .url.query, .http.request.header["x-session-id"][0],
               .http.request.header["x-trace"][0]' <(exchanges "$LOG")
    assert_output "$(printf '%s\n' \
        'user=bob-KEEP&password=REDACTED&otp=REDACTED&new_password=REDACTED&remember=yes-KEEP' \
        'sess=REDACTED&q=find-KEEP' REDACTED trace-KEEP)"
}

@test "security: HTTPTAPE_REDACT_KEY gives equal pseudonyms for equal secrets, wherever they are" {
    key=0123456789abcdef0123456789abcdef
    start_echo HTTPTAPE_REDACT_KEY=$key
    curl -s --max-time 5 -o /dev/null -H 'Authorization: Bearer same-SECRET-1' "$BASE/echo"
    curl -s --max-time 5 -o /dev/null -H 'content-type: application/json' \
        -d '{"a":[{"token":"same-SECRET-1"}]}' "$BASE/echo?api_key=other-SECRET-2"
    wait_exchanges "$LOG" 2
    run grep -c SECRET "$LOG"
    assert_output 0
    want1=hmac:$("$PY" -c 'import hmac, sys; print(hmac.new(sys.argv[1].encode(), b"same-SECRET-1", "sha256").hexdigest()[:16])' $key)
    want2=hmac:$("$PY" -c 'import hmac, sys; print(hmac.new(sys.argv[1].encode(), b"other-SECRET-2", "sha256").hexdigest()[:16])' $key)
    run jq -r 'select(.http.request.header.authorization) | .http.request.header.authorization[0]' \
        <(exchanges "$LOG")
    assert_output "Bearer $want1"
    run jq -r 'select(.url.query) | (.http.request.body.content | fromjson | .a[0].token), .url.query' \
        <(exchanges "$LOG")
    assert_output "$(printf '%s\napi_key=%s' "$want1" "$want2")"
    # the key itself is nowhere in the log
    run grep -c $key "$LOG"
    assert_output 0
}

@test "security: HTTPTAPE_REDACT=off keeps the values and says so once on stderr" {
    start_echo HTTPTAPE_REDACT=off
    run post_secrets
    assert_success
    wait_exchanges "$LOG" 1
    for secret in tok-BEARER-1111 ck-SESSION-2222 pw-NESTED-3333 qs-ACCESS-4444; do
        run grep -c -- "$secret" "$LOG"
        assert_output 1
    done
    run jq -c '.httptape.redacted' <(exchanges "$LOG")
    assert_output null
    stop_server
    run grep '^httptape' "$SERVER_OUT"
    assert_equal "${#lines[@]}" 1
    assert_output --regexp '^httptape: HTTPTAPE_REDACT=off: .*secrets included \(pid [0-9]+\)$'
}

@test "security: the log is created 0600 whatever the umask; HTTPTAPE_LOG_MODE=0640 widens it" {
    umask 000
    start_tapped http "$LOG" "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
    wait_exchanges "$LOG" 1
    run stat -c %a "$LOG"
    assert_output 600
    stop_server

    umask 027
    start_bg http2 env HTTPTAPE_LOG_MODE=0640 "$HTTPTAPE" run --log "$LOG.2" -- "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
    wait_exchanges "$LOG.2" 1
    run stat -c %a "$LOG.2"
    assert_output 640
}

@test "security: a symlink at the log path is not followed, one line says so, and the app serves" {
    target="$BATS_TEST_TMPDIR/elsewhere"
    : >"$target"
    chmod 644 "$target"
    ln -s "$target" "$LOG"
    start_tapped http "$LOG" "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    for _ in 1 2 3; do
        run curl -s --max-time 5 "$BASE/a.txt"
        assert_success
        assert_output hello
    done
    sleep 0.3                               # the writer had time to try
    stop_server
    [ -L "$LOG" ]
    [ ! -s "$target" ]                      # nothing written through the link
    run stat -c %a "$target"
    assert_output 644
    run grep '^httptape' "$SERVER_OUT"
    assert_equal "${#lines[@]}" 1
    assert_output --partial "$LOG"
}

# ---- where the log may be (docs/security.md, "The log file") ----

# needs_root: these tests give files to nobody, which only root can.
needs_root() {
    [ "$(id -u)" -eq 0 ] || skip "needs root to give files to another user"
    id nobody >/dev/null 2>&1 || skip "needs user nobody"
}

# sticky_dir: a world-writable sticky directory like /tmp, in $STICKY.
sticky_dir() {
    STICKY="$BATS_TEST_TMPDIR/tmp"
    mkdir -p "$STICKY"
    chmod 1777 "$STICKY"
}

# serve_refused LOG WHAT: the tapped server answers 3 requests while the log
# is refused; exactly one line of ours names LOG and says WHAT.
serve_refused() {
    local log=$1 what=$2
    start_tapped http "$log" "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    for _ in 1 2 3; do
        run curl -s --max-time 5 "$BASE/a.txt"
        assert_success
        assert_output hello
    done
    sleep 1.3                               # the writer tried, and checked the path again
    stop_server
    run grep '^httptape' "$SERVER_OUT"
    assert_equal "${#lines[@]}" 1
    assert_output --partial "cannot open log $log: "
    assert_output --partial "$what"
}

@test "security: in a sticky world-writable directory a log file another user created (0666) is refused" {
    needs_root
    sticky_dir
    log="$STICKY/log.jsonl"
    : >"$log"
    chown nobody "$log"
    chmod 666 "$log"
    serve_refused "$log" "owned by uid $(id -u nobody), not by this process's uid 0"
    [ ! -s "$log" ]                         # nothing for nobody to read
}

@test "security: a log path that is a hard link to another file is refused, and that file is untouched" {
    needs_root
    sticky_dir
    printf 'precious\n' >"$BATS_TEST_TMPDIR/precious"
    ln "$BATS_TEST_TMPDIR/precious" "$STICKY/log.jsonl"
    serve_refused "$STICKY/log.jsonl" "it has 2 links"
    run cat "$BATS_TEST_TMPDIR/precious"
    assert_output precious
}

@test "security: a FIFO at the log path is refused without blocking, and a reader gets nothing" {
    needs_root
    sticky_dir
    mkfifo "$STICKY/log.jsonl"
    chown nobody "$STICKY/log.jsonl"
    chmod 666 "$STICKY/log.jsonl"
    start_tapped http "$STICKY/log.jsonl" "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    run curl -s --max-time 5 "$BASE/a.txt"
    assert_output hello
    # Whoever reads the FIFO would get the log: it must get nothing (the
    # reader's own open waits for a writer, so it is bounded by timeout).
    run timeout 2.5 cat "$STICKY/log.jsonl"
    assert_output ""
    run curl -s --max-time 5 "$BASE/a.txt"
    assert_output hello
    stop_server
    run grep '^httptape' "$SERVER_OUT"
    assert_equal "${#lines[@]}" 1
    assert_output --partial "cannot open log $STICKY/log.jsonl: it is a FIFO, not a regular file"
}

@test "security: a log path through a symlinked directory is refused, and nothing is created behind it" {
    mkdir "$BATS_TEST_TMPDIR/real"
    ln -s "$BATS_TEST_TMPDIR/real" "$BATS_TEST_TMPDIR/link"
    serve_refused "$BATS_TEST_TMPDIR/link/log.jsonl" "$BATS_TEST_TMPDIR/link is a symbolic link"
    [ -z "$(ls -A "$BATS_TEST_TMPDIR/real")" ]
}

@test "security: a log in a directory others can write without the sticky bit, or owned by another user, is refused" {
    needs_root
    mkdir -m 777 "$BATS_TEST_TMPDIR/open"
    chmod 777 "$BATS_TEST_TMPDIR/open"
    serve_refused "$BATS_TEST_TMPDIR/open/log.jsonl" \
        "directory $BATS_TEST_TMPDIR/open (mode 0777) is writable by others and has no sticky bit"
    [ ! -e "$BATS_TEST_TMPDIR/open/log.jsonl" ]
    mkdir -m 755 "$BATS_TEST_TMPDIR/theirs"
    chown nobody "$BATS_TEST_TMPDIR/theirs"
    serve_refused "$BATS_TEST_TMPDIR/theirs/log.jsonl" \
        "directory $BATS_TEST_TMPDIR/theirs is owned by uid $(id -u nobody), neither root nor"
    [ ! -e "$BATS_TEST_TMPDIR/theirs/log.jsonl" ]
}

@test "security: a log renamed away and replaced by another user's file is not reopened into it" {
    needs_root
    sticky_dir
    log="$STICKY/log.jsonl"
    start_tapped http "$log" "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
    wait_exchanges "$log" 1                 # a fresh log in a sticky directory is fine
    run stat -c '%a %u %h' "$log"
    assert_output "600 0 1"
    mv "$log" "$log.1"
    : >"$log"
    chown nobody "$log"
    chmod 666 "$log"
    for _ in 1 2 3 4 5; do                  # over 2.5 s: the writer checks once a second
        curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
        sleep 0.5
    done
    stop_server
    [ ! -s "$log" ]
    run grep '^httptape' "$SERVER_OUT"
    assert_equal "${#lines[@]}" 1
    assert_output --partial "cannot open log $log: it is owned by uid $(id -u nobody)"
}

@test "security: HTTPTAPE_MAX_BODY=banana is named in one line and the app serves, unrecorded" {
    start_bg http env LD_PRELOAD="$HTTPTAPE_LIB" HTTPTAPE_MAX_BODY=banana HTTPTAPE_LOG="$LOG" \
        "${HTTP_SERVER[@]}"
    wait_http "$BASE/"
    run curl -s --max-time 5 "$BASE/a.txt"
    assert_success
    assert_output hello
    stop_server
    run grep '^httptape' "$SERVER_OUT"
    assert_output --regexp "^httptape: HTTPTAPE_MAX_BODY: invalid value 'banana'; expected .*not recording"
    assert_equal "${#lines[@]}" 1
    [ ! -e "$LOG" ]
}

@test "security: httptape run --max-body banana exits 2 with a message, before starting anything" {
    run --separate-stderr "$HTTPTAPE" run --max-body banana -- /bin/sh -c 'echo started'
    assert_failure 2
    assert_output ""
    [[ $stderr == "httptape run: --max-body: invalid value 'banana'; expected"* ]]
}

# Each HTTPTAPE_* variable with a bad value: under LD_PRELOAD the program
# runs and prints exactly what it would (nothing of ours on stdout), one
# line on stderr names the variable and the accepted form; httptape run
# refuses it with exit 2.
@test "security: every HTTPTAPE_* variable is validated: one line naming it, the program runs; httptape run exits 2" {
    many=$(printf 'n%d,' $(seq 40))
    bad=(
        HTTPTAPE_LOG= HTTPTAPE_MAX_BODY=banana HTTPTAPE_MAX_HEADER=12 HTTPTAPE_QUEUE=0
        HTTPTAPE_FLUSH_TIMEOUT_MS=-1 HTTPTAPE_ROTATE_SIZE=1x HTTPTAPE_ROTATE_KEEP=0
        HTTPTAPE_STATS_INTERVAL=1.5 HTTPTAPE_INHERIT=maybe HTTPTAPE_LOG_MODE=0777
        HTTPTAPE_ALLOW_SECURE=perhaps HTTPTAPE_REDACT=sometimes "HTTPTAPE_REDACT_HEADERS=x y"
        "HTTPTAPE_REDACT_QUERY=$many" "HTTPTAPE_REDACT_FIELDS=a,b$(printf '\t')c"
        HTTPTAPE_REDACT_KEY=short-KEY-9999
    )
    for setting in "${bad[@]}"; do
        var=${setting%%=*}
        run --separate-stderr env LD_PRELOAD="$HTTPTAPE_LIB" "$setting" /bin/echo app-output
        assert_success
        assert_output app-output
        if [ "${#stderr_lines[@]}" -ne 1 ] || [[ ${stderr_lines[0]} != "httptape: $var"* ]] ||
           [[ ${stderr_lines[0]} != *expected* ]] || [[ ${stderr_lines[0]} == *KEY-9999* ]]; then
            echo "$setting: stderr was:" >&2
            printf '%s\n' "${stderr_lines[@]}" >&2
            return 1
        fi
        run --separate-stderr env "$setting" "$HTTPTAPE" run -- /bin/echo app-output
        assert_failure 2
        assert_output ""
        [[ $stderr == "httptape run: $var"* ]]
    done
}

# ---- privileged processes ----

# priv_dir: a directory other users can read, for programs run as nobody
# (with the CLI and library staged by setup_file).
priv_dir() {
    [ "$(id -u)" -eq 0 ] || skip "needs root to set set-id bits and capabilities"
    command -v setpriv >/dev/null || skip "needs setpriv (util-linux)"
    id nobody >/dev/null 2>&1 && id daemon >/dev/null 2>&1 || skip "needs users nobody and daemon"
    PRIV_DIR=$(mktemp -d /tmp/httptape-sec.XXXXXX)
    chmod 755 "$PRIV_DIR"
    cd "$PRIV_DIR" || return              # a working directory nobody can enter
}

as_nobody() {
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
}

@test "security: httptape run warns that a setuid target cannot be recorded, and still runs it" {
    priv_dir
    cp /usr/bin/true "$PRIV_DIR/suid-true"
    chown daemon "$PRIV_DIR/suid-true"
    chmod 4755 "$PRIV_DIR/suid-true"
    run --separate-stderr "$HTTPTAPE" run -- "$PRIV_DIR/suid-true"
    assert_success
    assert_equal "${#stderr_lines[@]}" 1
    [[ $stderr == "httptape run: warning: $PRIV_DIR/suid-true is setuid, "*"'httptape attach'"* ]]
    # the same program without the bit: no warning
    chmod 0755 "$PRIV_DIR/suid-true"
    run --separate-stderr "$HTTPTAPE" run -- "$PRIV_DIR/suid-true"
    assert_success
    assert_equal "$stderr" ""
}

@test "security: httptape run warns about file capabilities (found along PATH) and static binaries" {
    priv_dir
    command -v setcap >/dev/null || skip "needs setcap (libcap2-bin)"
    cp /usr/bin/true "$PRIV_DIR/cap-true"
    setcap cap_net_bind_service+ep "$PRIV_DIR/cap-true" 2>/dev/null ||
        skip "this file system does not take file capabilities"
    run --separate-stderr as_nobody env PATH="$PRIV_DIR:/usr/bin:/bin" "$STAGED_HTTPTAPE" run -- cap-true
    assert_success
    [[ $stderr == "httptape run: warning: $PRIV_DIR/cap-true has file capabilities, "* ]]

    printf 'int main(void) { return 0; }\n' >"$PRIV_DIR/s.c"
    cc -static -o "$PRIV_DIR/static-true" "$PRIV_DIR/s.c" 2>/dev/null || skip "no static libc to link with"
    run --separate-stderr "$HTTPTAPE" run -- "$PRIV_DIR/static-true"
    assert_success
    [[ $stderr == "httptape run: warning: $PRIV_DIR/static-true is statically linked, "* ]]
    # a script is run by its (dynamic) interpreter: no warning
    printf '#!/bin/sh\nexit 0\n' >"$PRIV_DIR/script"
    chmod 755 "$PRIV_DIR/script"
    run --separate-stderr "$HTTPTAPE" run -- "$PRIV_DIR/script"
    assert_success
    assert_equal "$stderr" ""
}

@test "security: in a setuid process the library stays inert (one line) unless HTTPTAPE_ALLOW_SECURE=1" {
    priv_dir
    cp "$(readlink -f "$PY")" "$PRIV_DIR/py"
    chown daemon "$PRIV_DIR/py"
    chmod 4755 "$PRIV_DIR/py"
    # ld.so ignores an LD_PRELOAD path in a set-id process, so the library is
    # loaded by hand: its constructor is what is under test.
    load="import ctypes; ctypes.CDLL('$STAGED_LIB'); print('app ran')"
    run --separate-stderr as_nobody env HTTPTAPE_LOG=/tmp/x "$PRIV_DIR/py" -c "$load"
    assert_success
    assert_output "app ran"
    [[ $stderr == *"httptape: this process runs with privileges its invoker lacks"*"HTTPTAPE_ALLOW_SECURE=1"* ]]
    run --separate-stderr as_nobody env HTTPTAPE_ALLOW_SECURE=1 "$PRIV_DIR/py" -c "$load"
    assert_success
    assert_output "app ran"
    assert_equal "$(grep -c '^httptape' <<<"$stderr")" 0
    # the same program without the bit: no line
    chmod 0755 "$PRIV_DIR/py"
    run --separate-stderr as_nobody "$PRIV_DIR/py" -c "$load"
    assert_success
    assert_equal "$(grep -c '^httptape' <<<"$stderr")" 0
}

@test "security: a setuid server under httptape run serves normally and nothing is recorded" {
    priv_dir
    cp "$(readlink -f "$PY")" "$PRIV_DIR/py"
    chown daemon "$PRIV_DIR/py"
    chmod 4755 "$PRIV_DIR/py"
    log="$PRIV_DIR/log.jsonl"
    start_bg http setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
        "$STAGED_HTTPTAPE" run --log "$log" -- "$PRIV_DIR/py" -m http.server "$PORT" --bind 127.0.0.1 \
        --directory "$PRIV_DIR"
    wait_http "$BASE/"
    run curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$BASE/"
    assert_output 200
    sleep 0.3
    [ ! -e "$log" ]
    run grep -c '^httptape run: warning: .* is setuid' "$SERVER_OUT"
    assert_output 1
}

@test "security: the app closing every descriptor (close, closerange) does not close the log; later exchanges are logged" {
    start_tapped closer "$LOG" "$PY" "$APPS/closer_app.py" "$PORT"
    wait_http "http://127.0.0.1:$PORT/"
    run curl -s --max-time 5 "http://127.0.0.1:$PORT/first"
    assert_output "ok"
    wait_exchanges "$LOG" 1
    run curl -s --max-time 5 "http://127.0.0.1:$PORT/closeall"
    assert_output "ok"
    run curl -s --max-time 5 "http://127.0.0.1:$PORT/after"
    assert_output "ok"
    wait_exchanges "$LOG" 3
    run jq -r 'select(.httptape.type == "exchange") | .url.path' "$LOG"
    assert_output "/first
/closeall
/after"
}
