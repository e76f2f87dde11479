#!/usr/bin/env bats
# install.bats - `make install DESTDIR=... PREFIX=/usr` and what it lays out:
# the installed httptape records a real server with the library it finds
# under lib/<triplet>/httptape/ (relative to itself: DESTDIR is not the
# root), the library finds the installed httptape as its collector, the man
# pages render without warnings, --version prints git describe, bash
# completion completes, make uninstall removes it all. The .deb (make deb)
# is built and checked only with HTTPTAPE_TEST_DEB=1: it compiles everything
# again.
#
# setup_file installs once, from a build directory of its own (BUILD=...),
# so the checkout's build/ keeps its PREFIX; servers are started per test
# and stopped in teardown, pass or fail.

load test_helper/common

setup_file() {
    ROOT="$BATS_FILE_TMPDIR/root"
    TRIPLET=$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH)
    export ROOT TRIPLET
    make -C "$REPO" -j2 --no-print-directory install BUILD="$BATS_FILE_TMPDIR/build" \
        DESTDIR="$ROOT" PREFIX=/usr >"$BATS_FILE_TMPDIR/make.out" 2>&1 ||
        { tail -30 "$BATS_FILE_TMPDIR/make.out" >&2; return 1; }
}

setup() {
    WWW="$BATS_TEST_TMPDIR/www"
    mkdir -p "$WWW"
    printf 'hello\n' >"$WWW/a.txt"
    test_server_vars
    cd "$BATS_TEST_TMPDIR" || return
}

teardown() {
    stop_server
}

# record_with BIN: BIN run records GET /a.txt on python's http.server.
record_with() {
    start_bg http env -u HTTPTAPE_LIBRARY -u HTTPTAPE_COLLECTOR_BIN "$1" run --log "$LOG" -- \
        "$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$WWW"
    wait_http "$BASE/"
    run curl -s --max-time 5 "$BASE/a.txt"
    assert_output hello
    wait_exchanges "$LOG" 1
    run jq -r '[.http.request.method, .url.path, .http.response.status_code, .http.response.body.content] | join(" ")' \
        <(exchanges "$LOG")
    assert_output "GET /a.txt 200 hello"
}

@test "install: binary, library under lib/<triplet>/httptape, man pages, completion" {
    [ -n "$TRIPLET" ]
    [ -x "$ROOT/usr/bin/httptape" ]
    [ -f "$ROOT/usr/lib/$TRIPLET/httptape/libhttptape.so" ]
    [ -f "$ROOT/usr/share/man/man1/httptape.1" ]
    [ -f "$ROOT/usr/share/man/man5/httptape-events.5" ]
    [ -f "$ROOT/usr/share/man/man5/httptape-config.5" ]
    [ -f "$ROOT/usr/share/bash-completion/completions/httptape" ]
    # The paths compiled in are the final ones, without DESTDIR.
    run grep -c "^/usr/lib/$TRIPLET/httptape\$" <(strings "$ROOT/usr/bin/httptape")
    assert_output 1
}

@test "install: the installed run preloads the installed library (found relative to itself)" {
    run env -u HTTPTAPE_LIBRARY "$ROOT/usr/bin/httptape" run -- /usr/bin/env
    assert_success
    assert_line "LD_PRELOAD=$ROOT/usr/lib/$TRIPLET/httptape/libhttptape.so"
}

@test "install: the installed run records python's http.server" {
    record_with "$ROOT/usr/bin/httptape"
}

@test "install: the installed library starts the installed httptape as its collector" {
    start_bg http env -u HTTPTAPE_COLLECTOR -u HTTPTAPE_COLLECTOR_BIN HTTPTAPE_LOG="$LOG" \
        LD_PRELOAD="$ROOT/usr/lib/$TRIPLET/httptape/libhttptape.so" \
        "$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$WWW"
    wait_http "$BASE/"
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
    wait_exchanges "$LOG" 1
    # The collector lives as long as the server: it is the installed binary.
    local coll
    coll=$(pgrep -f "httptape collect --for $SERVER_PID" | head -1)
    [ -n "$coll" ]
    run readlink "/proc/$coll/exe"
    assert_output "$ROOT/usr/bin/httptape"
}

@test "install: every man page renders without warnings" {
    local page
    for page in "$ROOT"/usr/share/man/man1/httptape.1 "$ROOT"/usr/share/man/man5/*.5; do
        run --separate-stderr env MANWIDTH=80 man --warnings -l "$page"
        assert_success
        [ -z "$stderr" ] || { echo "$page: $stderr" >&2; return 1; }
        [ "${#lines[@]}" -gt 20 ]
        run --separate-stderr groff -man -ww -z "$page"
        [ -z "$stderr" ] || { echo "$page: $stderr" >&2; return 1; }
    done
    run env MANWIDTH=80 man -l "$ROOT/usr/share/man/man1/httptape.1"
    assert_output --partial "/usr/lib/$TRIPLET/httptape/libhttptape.so"
}

@test "install: --version and version print git describe" {
    git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout"
    local want
    want="httptape $(git -C "$REPO" describe --tags --always --dirty)"
    run "$ROOT/usr/bin/httptape" --version
    assert_success
    assert_output "$want"
    run "$ROOT/usr/bin/httptape" version
    assert_output "$want"
}

@test "install: bash completion completes commands and flags" {
    # shellcheck disable=SC1091
    source "$ROOT/usr/share/bash-completion/completions/httptape"
    run complete -p httptape
    assert_output "complete -F _httptape httptape"
    COMP_WORDS=(httptape ta) COMP_CWORD=1
    _httptape
    [ "${COMPREPLY[*]}" = tail ]
    COMP_WORDS=(httptape run --max-) COMP_CWORD=2
    _httptape
    [ "${COMPREPLY[*]}" = "--max-body --max-header" ]
    COMP_WORDS=(httptape attach --no) COMP_CWORD=2
    _httptape
    [ "${COMPREPLY[*]}" = --no-children ]
}

@test "install: make uninstall removes every installed file" {
    local root="$BATS_TEST_TMPDIR/root"
    cp -a "$ROOT" "$root"
    run make -C "$REPO" --no-print-directory uninstall BUILD="$BATS_FILE_TMPDIR/build" \
        DESTDIR="$root" PREFIX=/usr
    assert_success
    run find "$root" -type f
    assert_output ""
    [ ! -e "$root/usr/lib/$TRIPLET/httptape" ]
}

@test "deb: make deb builds a lintian-clean package that installs the same layout and records" {
    [ "${HTTPTAPE_TEST_DEB:-0}" = 1 ] || skip "set HTTPTAPE_TEST_DEB=1 (make deb compiles everything again)"
    local deb="$BATS_FILE_TMPDIR/deb"
    run make -C "$REPO" --no-print-directory deb BUILD="$deb"
    assert_success
    refute_line --regexp '^[EW]: '
    local pkg
    pkg=$(ls "$deb"/deb/httptape_*.deb)
    run dpkg-deb -c "$pkg"
    assert_line --regexp " \./usr/bin/httptape$"
    assert_line --regexp " \./usr/lib/$TRIPLET/httptape/libhttptape\.so$"
    assert_line --regexp " \./usr/share/man/man1/httptape\.1\.gz$"
    assert_line --regexp " \./usr/share/man/man5/httptape-events\.5\.gz$"
    assert_line --regexp " \./usr/share/man/man5/httptape-config\.5\.gz$"
    assert_line --regexp " \./usr/share/bash-completion/completions/httptape$"
    dpkg-deb -x "$pkg" "$BATS_TEST_TMPDIR/pkg"
    run "$BATS_TEST_TMPDIR/pkg/usr/bin/httptape" --version
    assert_output "httptape $("$REPO/scripts/version.sh")"
    record_with "$BATS_TEST_TMPDIR/pkg/usr/bin/httptape"
}
