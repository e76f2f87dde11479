/*
 * fuzz_conn.c - libFuzzer harness over the whole core pipeline: both
 * directions of one connection through conn/parser, events through the
 * JSON encoder.
 *
 * Input: [cfg:1][client cut:2][server cut:2][client length:4][client][server]
 *   cfg bit 0-1: body cap 0 / 16 / 4096 / 65536; bit 2: cut byte by byte too;
 *   bits 3-7: head limit (1 KiB << n, at most 64 KiB).
 *
 * Properties checked (abort on violation, besides ASan/UBSan/leaks):
 *  - the events do not depend on how the bytes were split;
 *  - every event is one JSON object that jansson reads back;
 *  - request/response body sizes never exceed the stream they came from.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/conn.h"
#include "core/event.h"
#include "core/replay.h"

static void emit(void *ctx, struct ht_exchange *ex)
{
    ht_event_format(ex, ctx);
    ht_exchange_free(ex);
}

static void replay(const struct ht_conn_cfg *cfg, const uint8_t *cli, size_t cn,
                   const uint8_t *srv, size_t sn, const struct ht_cuts *cc,
                   const struct ht_cuts *sc, struct ht_buf *out)
{
    struct ht_endpoints ep = { .peer_port = -1, .local_port = -1 };
    struct ht_clock now = { .wall_ns = 1, .mono_ns = 1 };
    struct ht_conn c;
    ht_conn_init(&c, cfg, &ep, "fuzz", 0, emit, out);
    ht_replay(&c, cli, cn, srv, sn, &now, cc, sc);
}

static json_int_t body_size(json_t *ev, const char *dir)
{
    json_t *b = json_object_get(json_object_get(json_object_get(ev, "http"), dir), "body");
    return b ? json_integer_value(json_object_get(b, "size")) : 0;
}

static void check_lines(const struct ht_buf *out, size_t cn, size_t sn)
{
    json_int_t req = 0, resp = 0;
    size_t pos = 0;
    while (pos < out->len) {
        const char *nl = memchr(out->p + pos, '\n', out->len - pos);
        if (!nl)
            abort();                    /* a record without its newline */
        json_error_t err;
        json_t *ev = json_loadb(out->p + pos, (size_t)(nl - out->p) - pos, JSON_ALLOW_NUL, &err);
        if (!json_is_object(ev))
            abort();
        req += body_size(ev, "request");
        resp += body_size(ev, "response");
        json_decref(ev);
        pos = (size_t)(nl - out->p) + 1;
    }
    if (req > (json_int_t)cn || resp > (json_int_t)sn)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t caps[4] = { 0, 16, 4096, 65536 };
    if (size < 9)
        return 0;
    uint8_t cfgb = data[0];
    size_t ccut = (size_t)data[1] << 8 | data[2];
    size_t scut = (size_t)data[3] << 8 | data[4];
    size_t cn = (size_t)data[5] << 24 | (size_t)data[6] << 16 | (size_t)data[7] << 8 | data[8];
    data += 9;
    size -= 9;
    if (cn > size)
        cn = size;
    const uint8_t *cli = data, *srv = data + cn;
    size_t sn = size - cn;
    unsigned shift = (cfgb >> 3) > 6 ? 6 : (cfgb >> 3);
    struct ht_conn_cfg cfg = { .max_body = caps[cfgb & 3], .max_header = 1024u << shift,
                               .mode = "fuzz" };

    struct ht_buf whole = { 0 }, cut = { 0 };
    replay(&cfg, cli, cn, srv, sn, NULL, NULL, &whole);
    check_lines(&whole, cn, sn);

    struct ht_cuts cc = { .split = cn ? ccut % cn : 0 }, sc = { .split = sn ? scut % sn : 0 };
    if (cfgb & 4)
        cc.step = sc.step = 1;
    replay(&cfg, cli, cn, srv, sn, &cc, &sc, &cut);
    if (cut.len != whole.len || (whole.len && memcmp(cut.p, whole.p, whole.len)))
        abort();                        /* framing depends on the split */

    ht_buf_free(&whole);
    ht_buf_free(&cut);
    return 0;
}
