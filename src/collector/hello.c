/* hello.c - SNI and ALPN from a TLS ClientHello (hello.h; RFC 8446 4.1.2,
 * RFC 6066 3, RFC 7301 3.1). Every length is checked against what is left. */
#include "collector/hello.h"

#include <string.h>

/* A bounded reader over one buffer; a short read sets bad. */
struct rd {
    const uint8_t *p;
    size_t n, at;
    int bad;
};

static unsigned u8(struct rd *r)
{
    if (r->at + 1 > r->n) {
        r->bad = 1;
        return 0;
    }
    return r->p[r->at++];
}

static unsigned u16(struct rd *r)
{
    unsigned hi = u8(r);
    return hi << 8 | u8(r);
}

static void skip(struct rd *r, size_t k)
{
    if (r->at + k > r->n)
        r->bad = 1;
    else
        r->at += k;
}

/* A sub-reader over the next k bytes, which r passes over. */
static struct rd sub(struct rd *r, size_t k)
{
    struct rd s = { r->p + r->at, k, 0, 0 };
    if (r->at + k > r->n) {
        r->bad = 1;
        s.n = 0;
    } else {
        r->at += k;
    }
    return s;
}

static void put(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    if (!cap)
        return;
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
    dst[n] = 0;
}

static void server_name(struct rd e, char *sni, size_t cap)
{
    struct rd list = sub(&e, u16(&e));
    while (!list.bad && list.at < list.n) {
        unsigned type = u8(&list);
        unsigned len = u16(&list);
        if (list.bad || list.at + len > list.n)
            return;
        if (type == 0) {            /* host_name */
            put(sni, cap, list.p + list.at, len);
            return;
        }
        skip(&list, len);
    }
}

/* The protocols offered, comma-separated, as many as fit whole. */
static void protocols(struct rd e, char *alpn, size_t cap)
{
    struct rd list = sub(&e, u16(&e));
    size_t used = 0;
    while (!list.bad && list.at < list.n) {
        unsigned len = u8(&list);
        if (list.bad || !len || list.at + len > list.n || used + len + 2 > cap)
            return;
        if (used)
            alpn[used++] = ',';
        put(alpn + used, cap - used, list.p + list.at, len);
        used += len;
        skip(&list, len);
    }
}

int ht_hello_parse(const uint8_t *p, size_t n, char *sni, size_t sni_cap, char *alpn,
                   size_t alpn_cap)
{
    if (sni_cap)
        sni[0] = 0;
    if (alpn_cap)
        alpn[0] = 0;
    if (n >= 1 && p[0] != 0x16)
        return -1;
    if (n >= 2 && p[1] != 0x03)
        return -1;
    if (n < 5)
        return 0;
    size_t rec = (size_t)p[3] << 8 | p[4];
    if (n < 5 + rec)
        return 0;
    struct rd r = { p + 5, rec, 0, 0 };
    if (u8(&r) != 1)                /* handshake type client_hello */
        return -1;
    size_t hl = (size_t)u8(&r) << 16;
    hl |= u16(&r);
    /* A ClientHello longer than its first record (rare): what the record
     * holds is read. */
    struct rd h = sub(&r, hl <= r.n - r.at ? hl : r.n - r.at);
    skip(&h, 2 + 32);               /* legacy_version, random */
    skip(&h, u8(&h));               /* legacy_session_id */
    skip(&h, u16(&h));              /* cipher_suites */
    skip(&h, u8(&h));               /* legacy_compression_methods */
    if (h.bad)
        return -1;
    if (h.at == h.n)
        return 1;                   /* no extensions */
    struct rd ext = sub(&h, u16(&h));
    while (!ext.bad && ext.at + 4 <= ext.n) {
        unsigned type = u16(&ext);
        unsigned len = u16(&ext);
        struct rd e = sub(&ext, len);
        if (ext.bad)
            break;
        if (type == 0)
            server_name(e, sni, sni_cap);
        else if (type == 16)
            protocols(e, alpn, alpn_cap);
    }
    return 1;
}
