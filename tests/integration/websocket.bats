#!/usr/bin/env bats
# websocket.bats - after a 101 to websocket (docs/events.md, "WebSocket and
# tunnel records"): a python3-websockets echo server under `httptape run`,
# its client sending text (a JSON one with a password), binary, a ping and
# a close; each frame one record tied to the upgrade exchange, with
# permessage-deflate inflated, the password redacted, and one tunnel record
# with the bytes and frames each way when the connection ends.

load test_helper/common

setup() {
    test_server_vars
    unset HTTPTAPE_RULES
    export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/xdg"
    "$PY" -c 'import websockets' 2>/dev/null || skip "no python3-websockets"
}

teardown() {
    stop_server
}

frames() {
    jq -c 'select(.httptape.type == "websocket_frame") | [.websocket.direction, .websocket.opcode,
           .websocket.compressed, .websocket.content // .websocket.close_reason // .websocket.body.size,
           .websocket.close_code, .httptape.connection.request_index]' "$LOG"
}

@test "websocket: an echo server's frames each way are records of their own, inflated, redacted, closed, and the tunnel is summed up" {
    start_tapped ws "$LOG" "$PY" "$APPS/ws_echo.py" "$PORT"
    wait_output listening
    run timeout 30 "$PY" "$APPS/ws_client.py" "$PORT"
    assert_success
    assert_output - <<'OUT'
hello
{"user":"tape","password":"hunter2"}
3000
pong
closed 1000 done
OUT
    stop_server
    run jq -c '[.http.request.method, .url.path, .http.response.status_code, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output '["GET","/chat",101,true]'
    run frames
    assert_output - <<'OUT'
["client","text",true,"hello",null,0]
["server","text",true,"hello",null,0]
["client","text",true,"{\"user\":\"tape\",\"password\":\"REDACTED\"}",null,0]
["server","text",true,"{\"user\":\"tape\",\"password\":\"REDACTED\"}",null,0]
["client","binary",true,3000,null,0]
["server","binary",true,3000,null,0]
["client","ping",null,"p1",null,0]
["server","pong",null,"p1",null,0]
["client","text",true,"bye",null,0]
["server","close",null,"done",1000,0]
["client","close",null,"done",1000,0]
OUT
    run jq -c 'select(.httptape.type == "tunnel") | [.tunnel.protocol, .tunnel.frames, (.tunnel.bytes.client > 0),
               (.tunnel.bytes.server > 0), (.tunnel.duration_ns > 0), .httptape.complete]' "$LOG"
    assert_output '["websocket",{"client":6,"server":5,"logged":11},true,true,true,true]'
    grep -q hunter2 "$LOG" && { echo "the password is in the log" >&2; false; } || true
    # tail shows a line per frame and one for the tunnel.
    run "$HTTPTAPE" tail -n 20 "$LOG"
    assert_line --regexp '^[-0-9T:.]+Z WS client text [0-9]+B "hello" \[[-0-9a-f]+#0\]$'
    assert_line --regexp '^[-0-9T:.]+Z WS server close 6B code=1000 "done" \['
    assert_line --regexp '^[-0-9T:.]+Z TUNNEL websocket client=[0-9]+B server=[0-9]+B frames=6/5 '
}

@test "websocket: 'websocket control' logs only control frames; the tunnel record still counts them all" {
    HTTPTAPE_RULES='websocket control' start_tapped ws "$LOG" "$PY" "$APPS/ws_echo.py" "$PORT"
    wait_output listening
    run timeout 30 "$PY" "$APPS/ws_client.py" "$PORT"
    assert_success
    stop_server
    run frames
    assert_output - <<'OUT'
["client","ping",null,"p1",null,0]
["server","pong",null,"p1",null,0]
["server","close",null,"done",1000,0]
["client","close",null,"done",1000,0]
OUT
    run jq -c 'select(.httptape.type == "tunnel") | .tunnel.frames' "$LOG"
    assert_output '{"client":6,"server":5,"logged":4}'
}
