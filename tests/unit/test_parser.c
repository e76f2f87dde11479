/*
 * test_parser.c - the HTTP/1.x parser on one direction, case by case.
 *
 * Every case is fed whole, at every two-way split point and byte by byte;
 * each way must give the same summary of events, equal to the expected
 * one. The input is copied to a heap block of exactly its size so ASan
 * catches any read past the end.
 *
 * Summary grammar: per message "H<...>" for the head (request: method,
 * target, minor version; response: status, minor version) and framing,
 * "[body]" for the decoded body bytes, "E" at its end; "!name" for a fatal
 * error; "T<n>" for tunnel bytes; "+anomaly" for each non-fatal anomaly of
 * the message; at the end of input "|eof:" and what ht_parser_eof said.
 */
#include <stdlib.h>
#include <string.h>

#include "core/parser.h"
#include "tap.h"

struct pcase {
    const char *name;
    enum ht_dir dir;
    uint8_t req_flags;      /* responses: the request was HEAD/CONNECT/Upgrade */
    const char *in;
    const char *want;
};

static const char *framing_name(uint8_t f)
{
    static const char *const n[] = { "none", "len", "chunked", "close", "tunnel" };
    return f < 5 ? n[f] : "?";
}

struct sum {
    char s[8192];
    size_t n;
    size_t tunnel;
};

static void put(struct sum *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct sum *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->s + o->n, sizeof(o->s) - o->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        o->n += (size_t)k < sizeof(o->s) - o->n ? (size_t)k : sizeof(o->s) - o->n - 1;
}

static void put_anomalies(struct sum *o, uint32_t an)
{
    for (unsigned i = 0; i < HT_AN_COUNT; i++)
        if (an & (1u << i))
            put(o, "+%s", ht_anomaly_name(1u << i));
}

static void on_event(struct ht_parser *p, const struct ht_pev *ev, struct sum *o, bool *in_body)
{
    if (ev->type != HT_PEV_TUNNEL && o->tunnel) {
        put(o, "T%zu", o->tunnel);
        o->tunnel = 0;
    }
    switch (ev->type) {
    case HT_PEV_HEAD:
        if (p->dir == HT_REQ)
            put(o, "H<%.*s %.*s 1.%u %s>", (int)p->msg.method_len, (const char *)p->head,
                (int)p->msg.target_len, (const char *)p->head + p->msg.target_off,
                p->msg.version_minor, framing_name(p->msg.framing));
        else
            put(o, "H<%u 1.%u %s>", p->msg.status, p->msg.version_minor,
                framing_name(p->msg.framing));
        break;
    case HT_PEV_BODY:
        if (!*in_body)
            put(o, "[");
        *in_body = true;
        put(o, "%.*s", (int)ev->len, (const char *)ev->data);
        break;
    case HT_PEV_END:
        if (*in_body)
            put(o, "]");
        *in_body = false;
        put_anomalies(o, p->msg.anomalies);
        put(o, "E");
        break;
    case HT_PEV_TUNNEL:
        o->tunnel += ev->len;
        break;
    case HT_PEV_ERROR:
        if (*in_body)
            put(o, "]");
        *in_body = false;
        put_anomalies(o, p->msg.anomalies & ~ev->anomaly);
        put(o, "!%s", ev->anomaly ? ht_anomaly_name(ev->anomaly) : "internal");
        break;
    default:
        break;
    }
}

/* Run one case with pieces no longer than step and a cut at split. */
static void run(const struct pcase *c, size_t split, size_t step, struct sum *o)
{
    size_t n = strlen(c->in);
    uint8_t *buf = malloc(n ? n : 1);
    memcpy(buf, c->in, n);
    struct ht_parser p;
    ht_parser_init(&p, c->dir, 1024);
    p.req_flags = c->req_flags;
    memset(o, 0, sizeof(*o));
    bool in_body = false;

    size_t pos = 0;
    while (pos < n) {
        size_t len = n - pos;
        if (step && len > step)
            len = step;
        if (split > pos && len > split - pos)
            len = split - pos;
        /* Give the parser a private copy of exactly this piece. */
        uint8_t *piece = malloc(len);
        memcpy(piece, buf + pos, len);
        size_t off = 0;
        for (;;) {
            struct ht_pev ev;
            off += ht_parser_next(&p, piece + off, len - off, &ev);
            if (ev.type == HT_PEV_NONE)
                break;
            on_event(&p, &ev, o, &in_body);
        }
        free(piece);
        if (off < len && ht_parser_paused(&p)) {
            put(o, "|paused");
            break;
        }
        pos += len;
    }
    if (o->tunnel)
        put(o, "T%zu", o->tunnel);
    struct ht_pev ev;
    ht_parser_eof(&p, &ev);
    if (in_body)
        put(o, "]");
    put(o, "|eof:%s", ev.type == HT_PEV_END ? "end" : ev.type == HT_PEV_TRUNCATED ? "truncated" : "none");
    ht_parser_free(&p);
    free(buf);
}

static const struct pcase cases[] = {
    { "simple GET", HT_REQ, 0,
      "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n",
      "H<GET /a?b=1 1.1 none>E|eof:none" },
    { "keep-alive and pipelining: three requests in one buffer", HT_REQ, 0,
      "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.0\r\n\r\n",
      "H<GET /1 1.1 none>EH<POST /2 1.1 len>[abc]EH<GET /3 1.0 none>E|eof:none" },
    { "leading empty lines before a request are skipped", HT_REQ, 0,
      "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "H<GET / 1.1 none>E|eof:none" },
    { "chunked request with extensions and trailers", HT_REQ, 0,
      "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=val\r\nhello\r\n6 ; q=\"x\"\r\n world\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n",
      "H<POST /u 1.1 chunked>[hello world]E|eof:none" },
    { "chunk sizes are hex, any case", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
      "H<POST / 1.1 chunked>[0123456789abcdefghij]E|eof:none" },
    { "request without length has no body", HT_REQ, 0,
      "DELETE /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n",
      "H<DELETE /x 1.1 none>EH<GET /y 1.1 none>E|eof:none" },
    { "Content-Length 0", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
      "H<POST / 1.1 len>E|eof:none" },
    { "request cut mid-body", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
      "H<POST / 1.1 len>[abc]|eof:truncated" },
    { "request cut mid-head", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost:",
      "|eof:truncated" },
    { "Transfer-Encoding overrides Content-Length, flagged", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "H<POST / 1.1 chunked>[abc]+content_length_with_transfer_encodingE|eof:none" },
    { "conflicting Content-Length is fatal", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "!conflicting_content_length|eof:none" },
    { "repeated identical Content-Length is read, flagged", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
      "H<POST / 1.1 len>[abc]+duplicate_content_lengthE|eof:none" },
    { "signed Content-Length is fatal", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
      "!invalid_content_length|eof:none" },
    { "empty Content-Length is fatal", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n",
      "!invalid_content_length|eof:none" },
    { "chunked not final in a request is fatal", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "!chunked_not_final|eof:none" },
    { "0x chunk size is fatal", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
      "H<POST / 1.1 chunked>!invalid_chunk_size|eof:none" },
    { "overflowing chunk size is fatal", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
      "H<POST / 1.1 chunked>!chunk_size_overflow|eof:none" },
    { "bare LF line endings are accepted and flagged", HT_REQ, 0,
      "GET /lf HTTP/1.1\nHost: x\n\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
      "H<GET /lf 1.1 none>+bare_lfEH<GET /next 1.1 none>E|eof:none" },
    { "a bare CR inside a field value is flagged", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nX-Long-Name: 0123456789\rabcdef\r\n\r\n",
      "H<GET / 1.1 none>+bare_crE|eof:none" },
    { "a CR before CR LF is a bare CR", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nX: v\r\r\n\r\n",
      "H<GET / 1.1 none>+bare_crE|eof:none" },
    { "a bare CR in the request target is flagged, and the line is invalid", HT_REQ, 0,
      "GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n",
      "+bare_cr!invalid_start_line|eof:none" },
    { "controls in a field value are flagged wherever they are", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nX-A: abcdefghijklmnop\x01q\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: x\r\nX-B: abcdefghijklmnopqrstuvw\x7f\r\n\r\n"
      "GET / HTTP/1.1\r\nHost: x\r\nX-C: tab\there and \xc3\xa9 obs-text\r\n\r\n",
      "H<GET / 1.1 none>+invalid_field_valueEH<GET / 1.1 none>+invalid_field_valueE"
      "H<GET / 1.1 none>E|eof:none" },
    { "obs-fold is accepted and flagged", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n  b\r\n\r\n",
      "H<GET / 1.1 none>+obs_foldE|eof:none" },
    { "folded Transfer-Encoding is read unfolded", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip,\r\n chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
      "H<POST / 1.1 chunked>[z]+obs_foldE|eof:none" },
    { "whitespace before colon is flagged", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nX-Name : x\r\n\r\n",
      "H<GET / 1.1 none>+whitespace_before_colonE|eof:none" },
    { "invalid request line is fatal", HT_REQ, 0,
      "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
      "!invalid_start_line|eof:none" },
    { "HTTP/0.9 style request line is fatal", HT_REQ, 0,
      "GET /\r\n\r\n",
      "!invalid_start_line|eof:none" },
    { "header line without colon is fatal", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n",
      "!invalid_header_field|eof:none" },
    { "head over the limit is fatal", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nX: "
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789\r\n\r\n",
      "!header_too_large|eof:none" },
    { "Upgrade request pauses the request side", HT_REQ, 0,
      "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
      "H<GET /ws 1.1 none>E|paused|eof:none" },
    { "CONNECT pauses the request side", HT_REQ, 0,
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01",
      "H<CONNECT example.com:443 1.1 none>E|paused|eof:none" },

    { "whitespace-preceded lines after the request line are ignored, flagged", HT_REQ, 0,
      "GET / HTTP/1.1\r\n X-Hidden: 1\r\nHost: x\r\n\r\n",
      "H<GET / 1.1 none>+whitespace_after_start_lineE|eof:none" },
    { "HTTP/1.1 request without Host is flagged", HT_REQ, 0,
      "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
      "H<GET / 1.1 none>+missing_hostE|eof:none" },
    { "HTTP/1.0 request without Host is fine", HT_REQ, 0,
      "GET / HTTP/1.0\r\n\r\n",
      "H<GET / 1.0 none>E|eof:none" },
    { "two Host field lines are flagged", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "H<GET / 1.1 none>+duplicate_hostE|eof:none" },
    { "asterisk-form with GET is flagged", HT_REQ, 0,
      "GET * HTTP/1.1\r\nHost: x\r\n\r\n",
      "H<GET * 1.1 none>+invalid_target_formE|eof:none" },
    { "asterisk-form with OPTIONS is fine", HT_REQ, 0,
      "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
      "H<OPTIONS * 1.1 none>E|eof:none" },
    { "CONNECT with an origin-form target is flagged", HT_REQ, 0,
      "CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n",
      "H<CONNECT /x 1.1 none>+invalid_target_formE|eof:none" },
    { "GET with a Content-Length body is framed by it, flagged", HT_REQ, 0,
      "GET /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /",
      "H<GET /p 1.1 len>[GET /]+body_on_bodiless_methodE|eof:none" },
    { "chunked HEAD, DELETE, OPTIONS and TRACE bodies are flagged", HT_REQ, 0,
      "HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"
      "DELETE / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb"
      "OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nc"
      "TRACE / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nd",
      "H<HEAD / 1.1 chunked>[a]+body_on_bodiless_methodE"
      "H<DELETE / 1.1 len>[b]+body_on_bodiless_methodE"
      "H<OPTIONS * 1.1 len>[c]+body_on_bodiless_methodE"
      "H<TRACE / 1.1 len>[d]+body_on_bodiless_methodE|eof:none" },
    { "GET with Content-Length 0, and POST with a body, are fine", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\ne",
      "H<GET / 1.1 len>EH<POST / 1.1 len>[e]E|eof:none" },
    { "CONNECT with Content-Length has no body, flagged", HT_REQ, 0,
      "CONNECT h:443 HTTP/1.0\r\nContent-Length: 10\r\n\r\nblarfcicle",
      "H<CONNECT h:443 1.0 none>+body_on_connectE|paused|eof:none" },
    { "chunked CONNECT has no body, flagged", HT_REQ, 0,
      "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "H<CONNECT h:443 1.1 none>+body_on_connectE|paused|eof:none" },
    { "a fragment in the request-target is flagged", HT_REQ, 0,
      "GET /a?b=1#frag HTTP/1.1\r\nHost: x\r\n\r\n",
      "H<GET /a?b=1#frag 1.1 none>+fragment_in_targetE|eof:none" },
    { "a fragment in an absolute-form target is flagged", HT_REQ, 0,
      "GET http://h/a#f HTTP/1.1\r\nHost: h\r\n\r\n",
      "H<GET http://h/a#f 1.1 none>+fragment_in_targetE|eof:none" },
    { "absolute-form target is fine", HT_REQ, 0,
      "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n",
      "H<GET http://example.com/a?b 1.1 none>E|eof:none" },
    { "control bytes in a field value are flagged", HT_REQ, 0,
      "GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n",
      "H<GET / 1.1 none>+invalid_field_valueE|eof:none" },
    { "Transfer-Encoding with an invalid Content-Length: TE frames, both flagged", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
      "H<POST / 1.1 chunked>[z]+content_length_with_transfer_encoding+invalid_content_lengthE|eof:none" },
    { "Content-Length in a trailer is flagged", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nContent-Length: 5\r\n\r\n",
      "H<POST / 1.1 chunked>[z]+framing_field_in_trailerE|eof:none" },
    { "a trailer line without a colon is fatal", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nnocolon\r\n\r\n",
      "H<POST / 1.1 chunked>[z]!invalid_header_field|eof:none" },
    { "last chunk of several zeros", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0001\r\nz\r\n000\r\n\r\n",
      "H<POST / 1.1 chunked>[z]E|eof:none" },
    { "leading zeros in Content-Length", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 003\r\n\r\nabc",
      "H<POST / 1.1 len>[abc]E|eof:none" },
    { "double space in the request line is fatal", HT_REQ, 0,
      "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
      "!invalid_start_line|eof:none" },
    { "lowercase protocol name is fatal", HT_REQ, 0,
      "GET / http/1.1\r\nHost: x\r\n\r\n",
      "!invalid_start_line|eof:none" },
    { "Transfer-Encoding in HTTP/1.0 is read and flagged", HT_REQ, 0,
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
      "H<POST / 1.0 chunked>[z]+transfer_encoding_in_http10E|eof:none" },
    { "an unknown coding before chunked is flagged, chunked frames", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
      "H<POST / 1.1 chunked>[z]+unknown_transfer_codingE|eof:none" },
    { "chunked twice is fatal in a request", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "!chunked_not_final|eof:none" },
    { "Transfer-Encoding split over two field lines", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
      "H<POST / 1.1 chunked>[z]E|eof:none" },

    { "chunk data not followed by CRLF is fatal", HT_REQ, 0,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
      "H<POST / 1.1 chunked>[abc]!invalid_chunk_size|eof:none" },

    { "response with Content-Length", HT_RESP, 0,
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
      "H<200 1.1 len>[hello]EH<404 1.1 len>E|eof:none" },
    { "response to HEAD has no body whatever its Content-Length", HT_RESP, HT_REQF_HEAD,
      "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
      "H<200 1.1 none>E|eof:none" },
    { "204 and 304 have no body", HT_RESP, 0,
      "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
      "H<204 1.1 none>EH<304 1.1 none>E|eof:none" },
    { "interim 1xx responses are their own messages", HT_RESP, 0,
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      "H<100 1.1 none>EH<103 1.1 none>EH<200 1.1 len>[ok]E|eof:none" },
    { "close-delimited response ends at end of stream", HT_RESP, 0,
      "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it",
      "H<200 1.0 close>[all of it]|eof:end" },
    { "chunked response", HT_RESP, 0,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "H<200 1.1 chunked>[abc]E|eof:none" },
    { "response with unknown final coding is close-delimited", HT_RESP, 0,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nzzz",
      "H<200 1.1 close>[zzz]|eof:end" },
    { "101 switches to a tunnel", HT_RESP, HT_REQF_UPGRADE,
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi",
      "H<101 1.1 tunnel>ET4|eof:none" },
    { "2xx to CONNECT is a tunnel", HT_RESP, HT_REQF_CONNECT,
      "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
      "H<200 1.1 tunnel>ET3|eof:none" },
    { "status line without reason phrase", HT_RESP, 0,
      "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
      "H<200 1.1 len>[x]E|eof:none" },
    { "invalid status line is fatal", HT_RESP, 0,
      "HTTP/1.1 2000 OK\r\n\r\n",
      "!invalid_start_line|eof:none" },
    { "response cut mid-chunk", HT_RESP, 0,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
      "H<200 1.1 chunked>[abc]|eof:truncated" },
    { "empty lines before a status line are flagged", HT_RESP, 0,
      "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "H<200 1.1 len>+leading_empty_linesE|eof:none" },
    { "status below 100 is fatal", HT_RESP, 0,
      "HTTP/1.1 099 Odd\r\n\r\n",
      "!invalid_start_line|eof:none" },
    { "101 without an upgrade request is flagged, still a tunnel", HT_RESP, 0,
      "HTTP/1.1 101 Switching Protocols\r\n\r\nxy",
      "H<101 1.1 tunnel>+unsolicited_101ET2|eof:none" },
    { "response with Content-Length and chunked: chunked frames, flagged", HT_RESP, 0,
      "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      "H<200 1.1 chunked>[ok]+content_length_with_transfer_encodingE|eof:none" },
    { "chunked response to HEAD has no body", HT_RESP, HT_REQF_HEAD,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "H<200 1.1 none>E|eof:none" },
    { "non-2xx to CONNECT has a body", HT_RESP, HT_REQF_CONNECT,
      "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno",
      "H<407 1.1 len>[no]E|eof:none" },
};

/* Feed a whole message; returns where its head was held (at HT_PEV_HEAD). */
static const uint8_t *feed_message(struct ht_parser *p, const char *msg)
{
    size_t off = 0, len = strlen(msg);
    const uint8_t *held = NULL;
    struct ht_pev ev;
    do {
        off += ht_parser_next(p, (const uint8_t *)msg + off, len - off, &ev);
        if (ev.type == HT_PEV_HEAD)
            held = p->head;
    } while (ev.type != HT_PEV_NONE);
    return held;
}

/* An idle keep-alive connection holds no head buffer: it is lent for a
 * message and given back at its end, and the next message (on any
 * parser of this thread) takes the same one. */
static void test_idle_buffers(void)
{
    struct ht_parser a, b;
    ht_parser_init(&a, HT_REQ, 65536);
    ht_parser_init(&b, HT_REQ, 65536);
    const uint8_t *lent = feed_message(&a, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    tap_ok(lent && a.head == NULL, "parser: after a whole message the head buffer was given back");
    const uint8_t *again = feed_message(&b, "GET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    tap_ok(again == lent && b.head == NULL,
           "parser: the next message, on another connection of the thread, reuses it");
    ht_parser_free(&a);
    ht_parser_free(&b);
}

int main(void)
{
    test_idle_buffers();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct pcase *c = &cases[i];
        size_t n = strlen(c->in);
        struct sum whole, other;
        run(c, 0, 0, &whole);
        if (!tap_ok(!strcmp(whole.s, c->want), "parser: %s (whole)", c->name)) {
            tap_diag("want: %s", c->want);
            tap_diag("got:  %s", whole.s);
        }
        bool same = true;
        for (size_t k = 1; k < n && same; k++) {
            run(c, k, 0, &other);
            if (strcmp(other.s, whole.s)) {
                same = false;
                tap_diag("split at %zu: %s", k, other.s);
            }
        }
        tap_ok(same, "parser: %s (every two-way split)", c->name);
        run(c, 0, 1, &other);
        if (!tap_ok(!strcmp(other.s, whole.s), "parser: %s (byte by byte)", c->name))
            tap_diag("got:  %s", other.s);
    }
    return tap_done();
}
