#!/usr/bin/env bash
# demo.sh - `make demo`: run the unmodified FastAPI example under `httptape run`,
# send it one POST, and show what httptape recorded.
#
# Expects deps installed and build/ built (make demo does both). Everything it
# writes goes to demo-out/ (gitignored); the server is stopped on every exit path.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3         # Debian's python: it has python3-fastapi and python3-uvicorn
HTTPTAPE=build/httptape
OUT=demo-out
LOG=$OUT/httptape.jsonl
BODY='{"item":"server"}'

section() { printf '\n=== %s ===\n' "$*"; }

server_pid=
stop_server() {
    [[ -n $server_pid ]] || return 0
    kill "$server_pid" 2>/dev/null || true
    # uvicorn shuts down gracefully on SIGTERM; don't let a stuck one hang the demo.
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
trap stop_server EXIT
# Ctrl-C and kill must reach the EXIT trap too: the background server ignores SIGINT.
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "demo: $*" >&2
    echo "--- $OUT/server.log ---" >&2
    cat "$OUT/server.log" >&2 || true
    exit 1
}

# A bare TCP connect: unlike an HTTP probe it leaves no exchange in the log.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[[ -x $HTTPTAPE ]] || { echo "demo: $HTTPTAPE is missing; run 'make demo'" >&2; exit 1; }

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$OUT"
rm -f "$LOG"

section "1. Start the FastAPI app (examples/fastapi/app.py, no logging middleware) under httptape"
server_cmd=("$HTTPTAPE" run --log "$LOG" --
            "$PY" -m uvicorn app:app --app-dir examples/fastapi --host 127.0.0.1 --port "$PORT")
echo "\$ ${server_cmd[*]} >$OUT/server.log 2>&1 &"
"${server_cmd[@]}" >"$OUT/server.log" 2>&1 &
server_pid=$!

deadline=$((SECONDS + 15))
until port_open "$PORT"; do
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited before listening on port $PORT"
    ((SECONDS < deadline)) || fail "nothing listening on 127.0.0.1:$PORT after 15 s"
    sleep 0.2
done
echo "listening on 127.0.0.1:$PORT"

section "2. Send it a JSON POST"
url=http://127.0.0.1:$PORT/submit
echo "\$ curl -s --max-time 10 -X POST -H 'content-type: application/json' -d '$BODY' $url"
answer=$(curl -s --max-time 10 -X POST -H 'content-type: application/json' -d "$BODY" "$url") ||
    fail "curl got no answer from $url"
echo "$answer"

# The writer may lag the response a little; fromjson? skips a half-written last line.
last_exchange() { jq -cR 'fromjson? | select(.httptape.type == "exchange")' "$LOG" 2>/dev/null | tail -n 1; }
deadline=$((SECONDS + 5))
until [[ -s $LOG && -n $(last_exchange) ]]; do
    ((SECONDS < deadline)) || fail "no exchange in $LOG after 5 s"
    sleep 0.2
done

section "3. What httptape recorded, human-readable"
echo "\$ $HTTPTAPE tail -n 10 $LOG"
"$HTTPTAPE" tail -n 10 "$LOG"

section "4. The same exchange as the JSON event in $LOG"
echo "\$ jq 'select(.httptape.type == \"exchange\")' $LOG   # last one"
last_exchange | jq .

section "Done"
echo "The app has no logging code; the log is at $LOG, the server's output at $OUT/server.log."
