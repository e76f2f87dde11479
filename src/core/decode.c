/* decode.c - Content-Encoding of body excerpts (decode.h). */
#include "core/decode.h"

#include <brotli/decode.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/text.h"

enum ht_coding ht_coding_of(const uint8_t *v, size_t n)
{
    while (n && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (!n || ht_ascii_is(v, n, "identity"))
        return HT_CODING_NONE;
    if (ht_ascii_is(v, n, "gzip") || ht_ascii_is(v, n, "x-gzip"))
        return HT_CODING_GZIP;
    if (ht_ascii_is(v, n, "deflate"))
        return HT_CODING_DEFLATE;
    if (ht_ascii_is(v, n, "br"))
        return HT_CODING_BR;
    return HT_CODING_OTHER;             /* compress, zstd, "gzip, br", ... */
}

const char *ht_coding_name(enum ht_coding c)
{
    switch (c) {
    case HT_CODING_GZIP: return "gzip";
    case HT_CODING_DEFLATE: return "deflate";
    case HT_CODING_BR: return "br";
    default: return NULL;
    }
}

/* Room for at least one more byte in out, doubling up to cap. */
static int grow(struct ht_decoded *out, size_t *room, size_t cap)
{
    if (*room > out->len)
        return 0;
    size_t want = *room ? *room * 2 : 4096;
    if (want > cap)
        want = cap;
    uint8_t *nb = realloc(out->buf, want);
    if (!nb)
        return -ENOMEM;
    out->buf = nb;
    *room = want;
    return 0;
}

/* windowBits 15 + 32: a gzip or zlib header, detected; -15: raw deflate. */
static int inflate_as(int bits, const uint8_t *in, size_t n, size_t cap, struct ht_decoded *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, bits) != Z_OK)
        return -ENOMEM;
    size_t room = 0;
    int rc = 0;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)(n > UINT32_MAX ? UINT32_MAX : n);
    while (out->len < cap) {
        if ((rc = grow(out, &room, cap)))
            break;
        z.next_out = out->buf + out->len;
        z.avail_out = (uInt)(room - out->len);
        int zr = inflate(&z, Z_SYNC_FLUSH);
        out->len = room - z.avail_out;
        if (zr == Z_STREAM_END) {
            out->ended = true;
            break;
        }
        if (zr == Z_BUF_ERROR || (zr == Z_OK && z.avail_in == 0 && z.avail_out > 0))
            break;                      /* the excerpt ends before the stream */
        if (zr != Z_OK) {
            rc = out->len ? 0 : -EINVAL;    /* bad data: what came before it stands */
            break;
        }
    }
    out->full = !out->ended && out->len >= cap;
    inflateEnd(&z);
    return rc;
}

static int unbrotli(const uint8_t *in, size_t n, size_t cap, struct ht_decoded *out)
{
    BrotliDecoderState *st = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    if (!st)
        return -ENOMEM;
    size_t room = 0, avail_in = n;
    const uint8_t *next_in = in;
    int rc = 0;
    while (out->len < cap) {
        if ((rc = grow(out, &room, cap)))
            break;
        size_t avail_out = room - out->len;
        uint8_t *next_out = out->buf + out->len;
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(st, &avail_in, &next_in, &avail_out, &next_out, NULL);
        out->len = room - avail_out;
        if (r == BROTLI_DECODER_RESULT_SUCCESS) {
            out->ended = true;
            break;
        }
        if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
            break;
        if (r == BROTLI_DECODER_RESULT_ERROR) {
            rc = out->len ? 0 : -EINVAL;
            break;
        }
    }
    out->full = !out->ended && out->len >= cap;
    BrotliDecoderDestroyInstance(st);
    return rc;
}

int ht_decode(enum ht_coding c, const uint8_t *in, size_t n, size_t cap, struct ht_decoded *out)
{
    memset(out, 0, sizeof(*out));
    int rc;
    switch (c) {
    case HT_CODING_GZIP:
        rc = inflate_as(15 + 32, in, n, cap, out);
        break;
    case HT_CODING_DEFLATE:
        /* RFC 9110 8.4.1.2: the zlib format; some servers send raw deflate. */
        rc = inflate_as(15, in, n, cap, out);
        if (rc == -EINVAL) {
            free(out->buf);
            memset(out, 0, sizeof(*out));
            rc = inflate_as(-15, in, n, cap, out);
        }
        break;
    case HT_CODING_BR:
        rc = unbrotli(in, n, cap, out);
        break;
    default:
        return -EINVAL;
    }
    if (rc) {
        free(out->buf);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
