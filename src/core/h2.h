/*
 * h2.h - HTTP/2 on one connection (RFC 9113): frames in each direction,
 * HPACK (RFC 7541, libnghttp2's inflater), one exchange per stream, the
 * same exchanges and events as HTTP/1.
 *
 * conn.c switches a connection to HTTP/2 when the client's first bytes are
 * the connection preface (h2c with prior knowledge, or ALPN h2 under TLS:
 * the plaintext starts with it too) or when a server accepts an h2c
 * Upgrade with 101; from then on every call on the connection comes here.
 *
 * Each stream's request head becomes an HTTP/1-shaped head ("GET /p
 * HTTP/2", a Host line from :authority when the request has no Host, then
 * the fields as sent), so redaction and the event writer read it as any
 * other; the event says network.protocol.version "2".
 *
 * Decoder state is exact or given up: bytes lost inside a header block
 * leave that direction's HPACK table unknown, and every header block after
 * it is a gap (capture_gap), never a guess; bytes lost across a frame
 * boundary leave the framing unknown and that direction ends there.
 *
 * Threading: none inside; conn.c's caller serialises calls.
 */
#ifndef HT_H2_H
#define HT_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"

#define HT_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define HT_H2_PREFACE_LEN 24

/* Anomalies of HTTP/2 (exchange h2_anomalies; names in
 * httptape.anomalies, docs/http2.md). */
enum ht_h2_anomaly {
    HT_H2_AN_CLOSED_STREAM      = 1u << 0,  /* a frame on a stream already closed */
    HT_H2_AN_CONNECTION_HEADER  = 1u << 1,  /* connection-specific field (RFC 9113 8.2.2) */
    HT_H2_AN_CONTENT_LENGTH     = 1u << 2,  /* content-length disagrees with the DATA */
    HT_H2_AN_UPPERCASE_NAME     = 1u << 3,  /* a field name with uppercase letters */
    HT_H2_AN_PSEUDO_AFTER       = 1u << 4,  /* a pseudo-header after a regular field */
    HT_H2_AN_HPACK_ERROR        = 1u << 5,  /* a header block HPACK could not decode */
    HT_H2_AN_PSEUDO_INVALID     = 1u << 6,  /* missing, repeated or unknown pseudo-header */
    HT_H2_AN_FIELD_INVALID      = 1u << 7,  /* CR, LF or NUL in a field (written as SP) */
    HT_H2_AN_PROTOCOL_ERROR     = 1u << 8,  /* framing RFC 9113 forbids; the direction stops */
    HT_H2_AN_HEADER_TOO_LARGE   = 1u << 9,  /* head over HTTPTAPE_MAX_HEADER: fields left out */
    HT_H2_AN_HOST_AUTHORITY     = 1u << 10, /* a Host field other than :authority (RFC 9113 8.3.1) */
};
#define HT_H2_AN_COUNT 11

const char *ht_h2_anomaly_name(uint32_t bit);

/* Is buf[0..len) the start of the preface? 1: all of it is there, 0: a
 * prefix of it (more bytes needed), -1: not the preface. */
int ht_h2_preface(const uint8_t *buf, size_t len, size_t already);

/* Make c an HTTP/2 connection. upgraded: the HTTP/1 request an h2c
 * Upgrade turned into stream 1 (its exchange, answered by 101: its real
 * response comes on stream 1), or NULL. 0, or -ENOMEM (c is then left as
 * it was). */
int ht_h2_start(struct ht_conn *c, struct ht_exchange *upgraded);

/* Bytes of direction d. */
void ht_h2_feed(struct ht_conn *c, enum ht_dir d, const uint8_t *buf, size_t len,
                const struct ht_clock *now);

/* n bytes of direction d passed unseen (UINT64_MAX: how many is not
 * known); data is lost only where it must be. */
void ht_h2_lost(struct ht_conn *c, enum ht_dir d, uint64_t n, const struct ht_clock *now);

/* Where sendfile's bytes go (conn.c's ht_conn_feed_unseen): how many of
 * the next bytes of direction d are DATA content, and the exchange whose
 * body they are (NULL when none keeps them); 0 outside DATA content. */
uint64_t ht_h2_body_room(struct ht_conn *c, enum ht_dir d, struct ht_exchange **ex);

/* Pass n <= ht_h2_body_room bytes of DATA content without data (the
 * caller counted them in the body). */
void ht_h2_skip_body(struct ht_conn *c, enum ht_dir d, uint64_t n, const struct ht_clock *now);

/* Is direction d no longer read (framing lost or broken)? */
bool ht_h2_dead(const struct ht_conn *c, enum ht_dir d);

/* Direction d ended. */
void ht_h2_eof(struct ht_conn *c, enum ht_dir d, const struct ht_clock *now);

/* The process or executable behind c changed: streams in flight follow. */
void ht_h2_owner_changed(struct ht_conn *c);

/* The connection is over: every stream still open is emitted with its
 * gaps (and extra_gaps); the HTTP/2 state is freed. */
void ht_h2_finish(struct ht_conn *c, const struct ht_clock *now, uint32_t extra_gaps);

#endif
