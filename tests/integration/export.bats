#!/usr/bin/env bats
# export.bats - `httptape export`: HAR checked by har-validator and turned
# into curl commands by httpsnippet (compared with our own curl export), curl
# commands sent again to the server giving the same responses, OTLP/JSON
# checked field by field, selection, and streaming output.
#
# One server for the file (export_app.py under `httptape run`), sent a fixed
# set of requests in setup_file; its log is copied to $ORIG for the tests.
# har-validator and httpsnippet come from npm, installed once into
# build/npm-test (tests needing them skip, saying why, without npm or the
# registry).

load test_helper/common

# The requests of setup_file, in order; export keeps that order.
send_requests() {
    local b=$1
    curl -sS -o /dev/null "$b/items/7?q=a%20b&x=1" -H 'X-Test: one'
    curl -sS -o /dev/null -I "$b/items/8"
    curl -sS -o /dev/null -X PUT --data-binary 'hello world' -H 'Content-Type: text/plain' "$b/items/9"
    curl -sS -o /dev/null -X DELETE "$b/items/9"
    curl -sS -o /dev/null -H 'Content-Type: application/json' -d '{"name":"it'\''s","n":[1,2]}' "$b/echo"
    curl -sS -o /dev/null -u bob:secret -d 'user=bob&password=hunter2' "$b/login"
    curl -sS -o /dev/null "$b/bin"
    head -c 300 /dev/urandom >"$BATS_FILE_TMPDIR/random.bin"
    curl -sS -o /dev/null -H 'Content-Type: application/octet-stream' \
        --data-binary @"$BATS_FILE_TMPDIR/random.bin" "$b/bin"
    curl -sS -o /dev/null -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' \
        "$b/fail"
}
NREQ=9

setup_file() {
    test_server_vars
    export PORT BASE LOG
    export ORIG="$BATS_FILE_TMPDIR/orig.jsonl"
    start_tapped app "$LOG" "$PY" "$APPS/export_app.py" "$PORT"
    wait_http "$BASE"
    send_requests "$BASE"
    wait_exchanges "$LOG" "$NREQ"
    exchanges "$LOG" >"$ORIG"
}

teardown_file() {
    stop_server
}

# npm_tools: har-validator and httpsnippet under build/npm-test (installed
# the first time); sets NODE_PATH, or skips the test saying why.
npm_tools() {
    command -v node >/dev/null || skip "node is not installed"
    command -v npm >/dev/null || skip "npm is not installed (apt-get install npm)"
    local dir="$REPO/build/npm-test"
    if [ ! -d "$dir/node_modules/har-validator" ] || [ ! -d "$dir/node_modules/httpsnippet" ]; then
        mkdir -p "$dir"
        timeout 300 npm install --prefix "$dir" --no-audit --no-fund har-validator@5 httpsnippet@2 \
            >"$dir/install.log" 2>&1 ||
            skip "npm install har-validator httpsnippet failed (no registry?): see $dir/install.log"
    fi
    export NODE_PATH="$dir/node_modules"
}

@test "export --format har: har-validator accepts the document" {
    npm_tools
    run --separate-stderr "$HTTPTAPE" export --format har -o "$BATS_TEST_TMPDIR/t.har" "$ORIG"
    assert_success
    run node -e '
        const har = JSON.parse(require("fs").readFileSync(process.argv[1]));
        require("har-validator").har(har)
            .then(() => console.log("valid " + har.log.entries.length))
            .catch(e => { console.log(JSON.stringify(e.errors || e.message)); process.exit(1); });
    ' "$BATS_TEST_TMPDIR/t.har"
    assert_success
    assert_output "valid $NREQ"
}

@test "export --format har: the fields map from the events" {
    run --separate-stderr "$HTTPTAPE" export "$ORIG"       # har is the default
    assert_success
    har=$output
    # Every top-level part, pages empty, one entry per exchange in log order.
    assert_equal "$(jq -c '.log | [.version, .creator.name, .pages, (.entries | length)]' <<<"$har")" \
        "[\"1.2\",\"httptape\",[],$NREQ]"
    assert_equal "$(jq -r '[.log.entries[].request.method] | join(" ")' <<<"$har")" \
        "GET HEAD PUT DELETE POST POST GET POST GET"
    # The first: URL, query pairs decoded, headers as name/value, a text body.
    e0=$(jq -c '.log.entries[0]' <<<"$har")
    assert_equal "$(jq -r .request.url <<<"$e0")" "$BASE/items/7?q=a%20b&x=1"
    assert_equal "$(jq -c .request.queryString <<<"$e0")" '[{"name":"q","value":"a b"},{"name":"x","value":"1"}]'
    assert_equal "$(jq -r '.request.headers[] | select(.name == "x-test") | .value' <<<"$e0")" one
    assert_equal "$(jq -r .response.content.text <<<"$e0")" '{"id": "7", "q": "a b", "x-test": "one"}'
    assert_equal "$(jq -r '[.response.status, .response.content.mimeType, .response.content.size] | @tsv' <<<"$e0")" \
        "$(printf '200\tapplication/json\t40')"
    # Timings: from httptape.timing.*, never negative, time their sum.
    run jq -e '[.log.entries[] | .timings as $t
                | ($t.send >= 0 and $t.wait >= 0 and $t.receive >= 0)
                  and ((.time - ($t.send + $t.wait + $t.receive)) | fabs < 0.000001)] | all' <<<"$har"
    assert_success
    assert_equal "$(jq -r '.log.entries[0] | (.timings.wait + .timings.send) * 1000000 | round' <<<"$har")" \
        "$(jq -rs '.[0].httptape.timing.response_start_ns' "$ORIG")"
    # Binary bodies: the response's base64 with encoding, the request's
    # with the custom _encoding (HAR has none for requests).
    assert_equal "$(jq -r '.log.entries[6].response.content | [.encoding, (.text | @base64d | length)] | @tsv' <<<"$har")" \
        "$(printf 'base64\t256')"
    assert_equal "$(jq -r '.log.entries[7].request.postData._encoding' <<<"$har")" base64
    assert_equal "$(jq -r '.log.entries[7].request.postData.text' <<<"$har" | base64 -d | cmp - "$BATS_FILE_TMPDIR/random.bin" && echo same)" same
    # A form body: params too; its redacted password as the log has it.
    assert_equal "$(jq -c '.log.entries[5].request.postData.params' <<<"$har")" \
        '[{"name":"user","value":"bob"},{"name":"password","value":"REDACTED"}]'
}

@test "export --format curl: httpsnippet's curl from our HAR asks for the same requests" {
    npm_tools
    "$HTTPTAPE" export --format har -o "$BATS_TEST_TMPDIR/t.har" "$ORIG"
    "$HTTPTAPE" export --format curl -o "$BATS_TEST_TMPDIR/ours.sh" "$ORIG" 2>/dev/null
    node -e '
        const HTTPSnippet = require("httpsnippet");
        const har = JSON.parse(require("fs").readFileSync(process.argv[1]));
        for (const e of har.log.entries)
            console.log(new HTTPSnippet(e.request).convert("shell", "curl"));
    ' "$BATS_TEST_TMPDIR/t.har" >"$BATS_TEST_TMPDIR/theirs.sh"
    "$PY" "$REPO/tests/tools/curl_requests.py" "$BATS_TEST_TMPDIR/ours.sh" >"$BATS_TEST_TMPDIR/ours.req"
    "$PY" "$REPO/tests/tools/curl_requests.py" "$BATS_TEST_TMPDIR/theirs.sh" >"$BATS_TEST_TMPDIR/theirs.req"
    assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/ours.req")" "$NREQ"
    # httpsnippet cannot send a binary body (HAR has no encoding for it):
    # entry 8 (POST /bin) is compared without its body.
    run diff <(jq -c 'if .path == "/bin" and .method == "POST" then del(.body64, .form) else . end' \
                   "$BATS_TEST_TMPDIR/ours.req") \
             <(jq -c 'if .path == "/bin" and .method == "POST" then del(.body64, .form) else . end' \
                   "$BATS_TEST_TMPDIR/theirs.req")
    assert_success
}

@test "export --format curl: the commands sent again get the same responses" {
    run --separate-stderr "$HTTPTAPE" export --format curl -o "$BATS_TEST_TMPDIR/replay.sh" "$ORIG"
    assert_success
    # Redacted values are left as placeholders, and said on stderr.
    assert_equal "${stderr_lines[0]}" \
        "httptape export: $BASE/login: redacted in the log, left as placeholders: [\"header:authorization\",\"body:password\"]"
    grep -qF -- "--header 'authorization: Basic REDACTED'" "$BATS_TEST_TMPDIR/replay.sh"
    grep -qF -- "--data-binary 'user=bob&password=REDACTED'" "$BATS_TEST_TMPDIR/replay.sh"
    # The script runs as it is (sh); the server, still tapped, logs the replay.
    run sh "$BATS_TEST_TMPDIR/replay.sh"
    assert_success
    wait_exchanges "$LOG" $((NREQ * 2))
    # Request and response of each replayed exchange against its original.
    key='[.http.request.method, .url.path, .url.query, .http.request.body.content,
          .http.response.status_code, .http.response.header."content-type",
          .http.response.body.content]'
    orig=$(jq -c "$key" "$ORIG")
    again=$(exchanges "$LOG" | tail -n "$NREQ" | jq -c "$key")
    assert_equal "$again" "$orig"
}

@test "export --format otlp: OTLP/JSON logs, field by field" {
    run --separate-stderr "$HTTPTAPE" export --format otlp "$ORIG"
    assert_success
    otlp=$output
    # One process: one line, one resource, one scope, a record per exchange.
    assert_equal "${#lines[@]}" 1
    assert_equal "$(jq -r '.resourceLogs | length' <<<"$otlp")" 1
    rl=$(jq -c '.resourceLogs[0]' <<<"$otlp")
    pid=$(jq -r '.[0].process.pid' <(jq -s . "$ORIG"))
    assert_equal "$(jq -c '[.resource.attributes[] | {(.key): .value}] | add' <<<"$rl")" \
        "{\"service.name\":{\"stringValue\":\"python3\"},\"process.pid\":{\"intValue\":\"$pid\"},\"process.executable.name\":{\"stringValue\":\"python3\"}}"
    assert_equal "$(jq -r '.scopeLogs[0].scope.name' <<<"$rl")" httptape
    assert_equal "$(jq -r '.scopeLogs[0].logRecords | length' <<<"$rl")" "$NREQ"
    # timeUnixNano: the event's timestamp in ns since the epoch, as a string.
    want=$(jq -r '.timestamp | (sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601 | tostring)
                  + (capture("\\.(?<f>[0-9]+)Z$").f + "000000000")[:9]' "$ORIG" | tr '\n' ' ')
    got=$(jq -r '.scopeLogs[0].logRecords[] | .timeUnixNano' <<<"$rl" | tr '\n' ' ')
    assert_equal "$got" "$want"
    # Attributes: the event's fields, flattened, typed as OTLP AnyValues.
    r0=$(jq -c '.scopeLogs[0].logRecords[0] | [.attributes[] | {(.key): .value}] | add' <<<"$rl")
    assert_equal "$(jq -c '."http.request.method"' <<<"$r0")" '{"stringValue":"GET"}'
    assert_equal "$(jq -c '."url.path"' <<<"$r0")" '{"stringValue":"/items/7"}'
    assert_equal "$(jq -c '."http.response.status_code"' <<<"$r0")" '{"intValue":"200"}'
    assert_equal "$(jq -c '."http.request.header.x-test"' <<<"$r0")" '{"arrayValue":{"values":[{"stringValue":"one"}]}}'
    assert_equal "$(jq -c '."httptape.complete"' <<<"$r0")" '{"boolValue":true}'
    assert_equal "$(jq -c '[."timestamp", ."service.name", ."trace_id"]' <<<"$r0")" '[null,null,null]'
    # Every attribute value is one AnyValue kind.
    run jq -e '[.resourceLogs[].scopeLogs[].logRecords[].attributes[].value | keys | length == 1] | all' <<<"$otlp"
    assert_success
    # Body, severity; traceId/spanId/flags from the traceparent of /fail.
    last=$(jq -c '.scopeLogs[0].logRecords[-1]' <<<"$rl")
    assert_equal "$(jq -c '[.body.stringValue, .severityNumber, .severityText, .traceId, .spanId, .flags]' <<<"$last")" \
        '["GET /fail 500",17,"ERROR","0af7651916cd43dd8448eb211c80319c","b7ad6b7169203331",1]'
    assert_equal "$(jq -c '.scopeLogs[0].logRecords[0] | [.severityText, has("traceId")]' <<<"$rl")" '["INFO",false]'
}

@test "export: selection flags, statistics records skipped, several files" {
    stats='{"timestamp":"2026-11-22T00:31:09Z","process":{"pid":1},"httptape":{"type":"stats","stats":{}}}'
    { cat "$ORIG"; echo "$stats"; } >"$BATS_TEST_TMPDIR/with-stats.jsonl"
    run --separate-stderr "$HTTPTAPE" export --format otlp "$BATS_TEST_TMPDIR/with-stats.jsonl"
    assert_equal "$(jq '[.resourceLogs[].scopeLogs[].logRecords[]] | length' <<<"$output")" "$NREQ"
    run --separate-stderr "$HTTPTAPE" export --status 5xx,204 "$ORIG"
    assert_equal "$(jq -c '[.log.entries[].response.status]' <<<"$output")" '[204,500]'
    run --separate-stderr "$HTTPTAPE" export --format curl --method post --path '/bin' "$ORIG"
    assert_equal "$(grep -c '^printf %s' <<<"$output")" 1
    assert_equal "$(grep -c -- '--url ' <<<"$output")" 1
    run --separate-stderr "$HTTPTAPE" export --grep hello "$ORIG" "$ORIG"
    assert_equal "$(jq -r '[.log.entries[].request.url] | join(" ")' <<<"$output")" "$BASE/items/9 $BASE/items/9"
    run --separate-stderr "$HTTPTAPE" export --format otlp --grep nothing-like-this "$ORIG"
    assert_success
    assert_output ""
    run --separate-stderr "$HTTPTAPE" export --grep nothing-like-this "$ORIG"
    assert_equal "$(jq -c .log.entries <<<"$output")" '[]'
}

@test "export: bad usage exits 2; an unreadable file 1, the others still exported" {
    run --separate-stderr "$HTTPTAPE" export --format xml "$ORIG"
    assert_failure 2
    assert_equal "${stderr_lines[0]}" "httptape export: unknown format 'xml' (want har, curl or otlp)"
    run --separate-stderr "$HTTPTAPE" export --format har
    assert_failure 2
    run --separate-stderr "$HTTPTAPE" export "$BATS_TEST_TMPDIR/missing.jsonl" "$ORIG"
    assert_failure 1
    assert_equal "$(jq '.log.entries | length' <<<"$output")" "$NREQ"
}

@test "export: a line that is not JSON is skipped with a warning" {
    { head -n 1 "$ORIG"; echo 'not json'; tail -n 1 "$ORIG"; } >"$BATS_TEST_TMPDIR/mixed.jsonl"
    run --separate-stderr "$HTTPTAPE" export "$BATS_TEST_TMPDIR/mixed.jsonl"
    assert_success
    assert_equal "$stderr" "httptape export: $BATS_TEST_TMPDIR/mixed.jsonl:2: not a JSON object"
    assert_equal "$(jq '.log.entries | length' <<<"$output")" 2
}

@test "export: memory stays flat on a big log (HAR, curl, OTLP written as read)" {
    [ -x /usr/bin/time ] || skip "/usr/bin/time is not installed"
    big="$BATS_TEST_TMPDIR/big.jsonl"
    for _ in $(seq 3000); do cat "$ORIG"; done >"$big"       # 27000 exchanges
    for f in har curl otlp; do
        /usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" \
            "$HTTPTAPE" export --format "$f" -o "$BATS_TEST_TMPDIR/big.$f" "$big" 2>/dev/null
        rss=$(tail -n 1 "$BATS_TEST_TMPDIR/rss")
        echo "$f: max RSS ${rss} KiB for $(du -k "$big" | cut -f1) KiB of log" >&3
        [ "$rss" -lt 20000 ]
    done
    assert_equal "$(jq '.log.entries | length' "$BATS_TEST_TMPDIR/big.har")" $((NREQ * 3000))
}
