/*
 * test_jsonw.c - the event encoder's string escaping, against jansson:
 * every byte that JSON requires escaped, at every offset of strings around
 * the 8-byte steps of the fast scan, reads back as the bytes written.
 */
#include <jansson.h>
#include <string.h>

#include "core/buf.h"
#include "core/jsonw.h"
#include "tap.h"

/* Encode s as {"k":"..."} and read it back; true when it round-trips. */
static bool round_trip(const uint8_t *s, size_t n)
{
    struct ht_buf b = { 0 };
    struct ht_jw w;
    ht_jw_init(&w, &b);
    ht_jw_open(&w, NULL);
    ht_jw_str_bytes(&w, "k", s, n);
    ht_jw_close(&w);
    json_error_t err;
    json_t *j = json_loadb(b.p, b.len, JSON_ALLOW_NUL, &err);
    json_t *v = json_object_get(j, "k");
    bool ok = !w.err && v && json_string_length(v) == n && !memcmp(json_string_value(v), s, n);
    json_decref(j);
    ht_buf_free(&b);
    return ok;
}

int main(void)
{
    /* Each byte that needs escaping, a neighbour of each class boundary,
     * and multi-byte UTF-8 (left as is). */
    static const uint8_t special[] = { 0x00, 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1f,
                                       0x20, '"',  '\\', '/',  0x21, 0x5b, 0x5d, 0x7f };
    int bad = 0, total = 0;
    for (size_t len = 1; len <= 24; len++)
        for (size_t at = 0; at < len; at++)
            for (size_t k = 0; k < sizeof(special); k++) {
                uint8_t s[32];
                memset(s, 'a', len);
                s[at] = special[k];
                total++;
                if (!round_trip(s, len)) {
                    if (!bad)
                        tap_diag("first failure: byte 0x%02x at %zu of %zu", special[k], at, len);
                    bad++;
                }
            }
    tap_ok(bad == 0, "jsonw: %d of %d strings with one special byte round-trip", total - bad, total);

    /* Two specials in one 8-byte word, and every byte that needs escaping
     * in one string. */
    bad = 0;
    for (size_t a = 0; a < 16; a++)
        for (size_t c = a + 1; c < 16; c++) {
            uint8_t s[16];
            memset(s, 'x', sizeof(s));
            s[a] = '"';
            s[c] = 0x01;
            bad += !round_trip(s, sizeof(s));
        }
    uint8_t all[34];
    for (int i = 0; i < 32; i++)
        all[i] = (uint8_t)i;
    all[32] = '"';
    all[33] = '\\';
    tap_ok(bad == 0 && round_trip(all, sizeof(all)),
           "jsonw: pairs of specials in a word, and all 34 escaped bytes in a row, round-trip");

    static const uint8_t utf8[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \"q\"";
    tap_ok(round_trip(utf8, sizeof(utf8) - 1), "jsonw: UTF-8 text with quotes round-trips");
    return tap_done();
}
