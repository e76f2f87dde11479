#!/usr/bin/env bash
# install-deps.sh - install every Debian package httptape needs to build, test and demo.
#
#   scripts/install-deps.sh           what the build, `make test` and the demo need
#   scripts/install-deps.sh --bench   that, plus the tools only `make bench` compares
#                                     against (BENCH_PACKAGES; scripts/bench.sh asks for
#                                     them itself when one is missing)
#
# Idempotent and quick: packages already installed are left alone, and apt-get is not
# run at all when nothing is missing. `apt-get update` runs only if an install fails
# (a fresh container has no package lists), then the install is retried once.
# Runs as root (CI), through sudo otherwise; without either it names what is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

with_bench=0
for arg in "$@"; do
    case $arg in
    --bench) with_bench=1 ;;
    *) echo "install-deps: unknown argument '$arg' (usage: install-deps.sh [--bench])" >&2; exit 2 ;;
    esac
done

PACKAGES=(
    # build: compiler, make, and jansson, which the event writer links against
    gcc make pkg-config libjansson-dev
    # TLS: OpenSSL's headers, for the types of the interposed SSL_* calls (libssl
    # itself is never linked in; src/preload/tls.c)
    libssl-dev
    # redaction: HMAC-SHA-256 pseudonyms (HTTPTAPE_REDACT_KEY), libsodium
    libsodium-dev
    # sanitizers and fuzzing: `make asan`, tests/fuzz (clang 14 runtimes on Debian 12)
    clang llvm libclang-rt-14-dev
    # tests: bats suites and their helpers, HTTP clients, JSON checks, load generator
    bats bats-support bats-assert curl jq wrk ca-certificates
    # test and demo servers: the FastAPI example under uvicorn, on Debian's own python
    python3 python3-fastapi python3-uvicorn
    # tests: process inspection (ps, pgrep) and listening sockets (ss)
    procps iproute2
    # make bench: the strace baseline row
    strace
    # tests: real prefork servers (nginx's sendfile, gunicorn's workers) and
    # mount(8) for the disk-full test on a tiny tmpfs
    nginx-light gunicorn util-linux
    # tests: apache2's prefork and event MPMs with children as www-data
    # (deploy.bats runs /usr/sbin/apache2 with its own config: the binary
    # and modules only, no service)
    apache2-bin
    # tests: setcap, for the file-capability case in security.bats
    libcap2-bin
    # attach (eBPF): libbpf and the libraries it links, bpftool for vmlinux.h and
    # the skeleton (clang and llvm, above, compile the BPF side)
    libbpf-dev bpftool libelf-dev zlib1g-dev
    # gzip, deflate and br body excerpts, decoded (src/core/decode.c)
    libbrotli-dev
    # HTTP/2: HPACK with libnghttp2's inflater (src/core/h2.c); tests: h2load
    # and nghttp (nghttp2-client), hypercorn serving the FastAPI example over
    # HTTP/2 (python3-h2 is its HTTP/2 stack), a grpcio server and client
    libnghttp2-dev nghttp2-client python3-hypercorn python3-h2 python3-grpcio
    # tests: a WebSocket echo server and client (websocket.bats)
    python3-websockets
)
# make bench only (--bench): the capture tools and the proxy its nginx rows
# compare httptape with (docs/benchmarks.md, "The rival tools"). tshark's
# debconf question (non-root capture) takes its default under noninteractive.
BENCH_PACKAGES=(tcpdump httpry tshark mitmproxy)
if ((with_bench)); then
    PACKAGES+=("${BENCH_PACKAGES[@]}")
fi
# node: the Node.js test server; only when no node is on PATH, so that a node
# installed some other way (nvm, a tarball) is never shadowed or replaced.
if ! command -v node >/dev/null 2>&1; then
    PACKAGES+=(nodejs)
fi

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: no dpkg-query: not a Debian system; install these by hand:" >&2
    echo "  ${PACKAGES[*]}" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

if ((EUID == 0)); then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: missing ${#missing[@]} packages and not root (no sudo):" >&2
    echo "  ${missing[*]}" >&2
    echo "install-deps: as root run: apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

# env, because sudo resets the environment and would drop DEBIAN_FRONTEND.
apt_get() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q "$@"
}

# Installing nginx starts its service on port 80 (invoke-rc.d). The tests start
# their own nginx, so a policy-rc.d that denies every start (exit 101) is put in
# place for the install, and removed after it, only if it was not there before.
POLICY=/usr/sbin/policy-rc.d
own_policy=0
nginx_before=$(pgrep -x nginx 2>/dev/null || true)
if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\n# install-deps.sh: no service starts during the install\nexit 101\n' |
        "${as_root[@]}" tee "$POLICY" >/dev/null
    "${as_root[@]}" chmod 755 "$POLICY"
    own_policy=1
fi
cleanup() {
    if ((own_policy)); then
        "${as_root[@]}" rm -f "$POLICY"
    fi
    # An nginx the install started anyway (no nginx ran before it): stop it.
    if [[ -z "$nginx_before" ]] && pgrep -x nginx >/dev/null 2>&1; then
        echo "install-deps: stopping the nginx the install started"
        "${as_root[@]}" nginx -s stop 2>/dev/null ||
            { [[ -s /run/nginx.pid ]] && "${as_root[@]}" kill "$(cat /run/nginx.pid)"; } || true
    fi
}
trap cleanup EXIT

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
if ! apt_get install -y --no-install-recommends "${missing[@]}"; then
    echo "install-deps: install failed; running apt-get update and retrying once"
    apt_get update
    apt_get install -y --no-install-recommends "${missing[@]}"
fi
echo "install-deps: installed ${#missing[@]} packages: ${missing[*]}"
