/* test_hello.c - SNI and ALPN from a TLS ClientHello (collector/hello.h):
 * a hello built here whole, at every split point, with lying lengths
 * (under ASan nothing is read past the buffer), and bytes that are not
 * TLS at all. */
#include <stdlib.h>
#include <string.h>

#include "collector/hello.h"
#include "tap.h"

struct out {
    uint8_t b[1024];
    size_t n;
};

static void put(struct out *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void u8(struct out *o, unsigned v) { o->b[o->n++] = (uint8_t)v; }
static void u16(struct out *o, unsigned v) { u8(o, v >> 8); u8(o, v & 0xff); }

/* Patch a 16-bit length at at: what follows it up to the end. */
static void len16(struct out *o, size_t at) { o->b[at] = (uint8_t)((o->n - at - 2) >> 8); o->b[at + 1] = (uint8_t)(o->n - at - 2); }

/* A ClientHello record: SNI name (NULL: none), ALPN list (NULL: none). */
static void hello(struct out *o, const char *sni, const char *const *alpn)
{
    o->n = 0;
    u8(o, 0x16); u16(o, 0x0301); u16(o, 0);            /* record, length patched */
    u8(o, 1); u8(o, 0); u16(o, 0);                      /* client_hello, 24-bit length patched */
    u16(o, 0x0303);
    uint8_t random[32] = { 7 };
    put(o, random, 32);
    u8(o, 32); put(o, random, 32);                      /* session id */
    u16(o, 4); u16(o, 0x1301); u16(o, 0x1302);          /* cipher suites */
    u8(o, 1); u8(o, 0);                                 /* compression */
    size_t ext = o->n;
    u16(o, 0);
    u16(o, 43); u16(o, 3); u8(o, 2); u16(o, 0x0304);    /* supported_versions, first */
    if (sni) {
        u16(o, 0);
        size_t l = o->n; u16(o, 0);
        size_t list = o->n; u16(o, 0);
        u8(o, 0); u16(o, (unsigned)strlen(sni)); put(o, sni, strlen(sni));
        len16(o, list); len16(o, l);
    }
    if (alpn) {
        u16(o, 16);
        size_t l = o->n; u16(o, 0);
        size_t list = o->n; u16(o, 0);
        for (const char *const *p = alpn; *p; p++) {
            u8(o, (unsigned)strlen(*p));
            put(o, *p, strlen(*p));
        }
        len16(o, list); len16(o, l);
    }
    len16(o, ext);
    len16(o, 3);
    size_t hl = o->n - 9;
    o->b[6] = (uint8_t)(hl >> 16); o->b[7] = (uint8_t)(hl >> 8); o->b[8] = (uint8_t)hl;
}

/* Parse a heap copy of exactly n bytes, so ASan sees any overread. */
static int parse(const uint8_t *p, size_t n, char *sni, char *alpn)
{
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    int r = ht_hello_parse(c, n, sni, 256, alpn, 64);
    free(c);
    return r;
}

int main(void)
{
    struct out o;
    char sni[256], alpn[64];
    const char *const protos[] = { "h2", "http/1.1", NULL };

    hello(&o, "api.example.com", protos);
    int r = parse(o.b, o.n, sni, alpn);
    tap_ok(r == 1 && !strcmp(sni, "api.example.com") && !strcmp(alpn, "h2,http/1.1"),
           "a whole ClientHello: SNI and the protocols offered (%d, %s, %s)", r, sni, alpn);

    int early = 0;
    for (size_t k = 0; k < o.n; k++)
        early += parse(o.b, k, sni, alpn) != 0;
    tap_ok(early == 0, "every prefix of it asks for more bytes (%d did not)", early);

    hello(&o, NULL, NULL);
    r = parse(o.b, o.n, sni, alpn);
    tap_ok(r == 1 && !sni[0] && !alpn[0], "no SNI, no ALPN: both empty");

    /* Lengths inside that point past the record: read no further. */
    hello(&o, "x.test", protos);
    int bad = 0;
    for (size_t at = 9; at < o.n; at++) {
        uint8_t save = o.b[at];
        o.b[at] = 0xff;
        r = parse(o.b, o.n, sni, alpn);
        bad += r == 0;              /* the record is whole: never "more" */
        o.b[at] = save;
    }
    tap_ok(bad == 0, "a byte set to 0xff anywhere inside: parsed or refused, never read past");

    r = parse((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, sni, alpn);
    tap_ok(r == -1, "an HTTP request is not a ClientHello");
    uint8_t alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 };
    tap_ok(parse(alert, sizeof(alert), sni, alpn) == -1, "a TLS alert is not a ClientHello");
    uint8_t srv[] = { 0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00 };
    tap_ok(parse(srv, sizeof(srv), sni, alpn) == -1, "a ServerHello is not a ClientHello");
    return tap_done();
}
