/*
 * exchange.h - one request/response exchange as observed on a connection.
 *
 * Built by conn.c on the thread that saw the bytes, then handed (ownership
 * and all) to a sink; from then on it is read-only and touched by one
 * thread at a time. Everything the event needs is inside: raw heads (split
 * into fields only when the event is formatted, off the app's thread), body
 * excerpts up to the configured cap, exact body sizes, and clock readings.
 */
#ifndef HT_EXCHANGE_H
#define HT_EXCHANGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/parser.h"

/* Why an exchange is incomplete (httptape.gaps); names in exchange.c. */
enum ht_gap {
    HT_GAP_NO_REQUEST          = 1u << 0, /* a response nobody asked for */
    HT_GAP_REQUEST_INCOMPLETE  = 1u << 1, /* stream ended mid-request */
    HT_GAP_NO_RESPONSE         = 1u << 2, /* connection ended first */
    HT_GAP_RESPONSE_INCOMPLETE = 1u << 3, /* stream ended mid-response */
    HT_GAP_DESYNC              = 1u << 4, /* framing unreadable; parsing stopped */
    HT_GAP_CAPTURE             = 1u << 5, /* bytes we could not observe */
    HT_GAP_PROCESS_EXIT        = 1u << 6, /* still in flight when the process exited */
    HT_GAP_BODY_NOT_CAPTURED   = 1u << 7, /* body bytes counted but never seen */
    HT_GAP_JOINED              = 1u << 8, /* started where we came into a connection late */
    HT_GAP_CAPTURE_ENDED       = 1u << 9, /* still in flight when capture stopped */
    HT_GAP_AMBIGUOUS_FRAMING   = 1u << 10,/* the server may have framed it otherwise (HT_AN_DOUBT) */
    HT_GAP_TLS_NOT_DECRYPTED   = 1u << 11,/* TLS whose plaintext no covered library gave us */
    HT_GAP_STREAM_RESET        = 1u << 12,/* HTTP/2: RST_STREAM, or after the server's GOAWAY */
};
#define HT_GAP_COUNT 13

const char *ht_gap_name(uint32_t bit);

struct ht_exchange;

/* A body's SHA-256 over every byte of it (rule 'digest sha256'): in the
 * exchange's memory, NULL when not asked for. */
struct ht_digest {
    uint8_t state[208];     /* libsodium's crypto_hash_sha256_state (checked in exchange.c) */
    bool broken;            /* bytes of the body went by unseen: no digest */
};

struct ht_body {
    uint8_t *buf;           /* excerpt: the first len bytes of the body */
    uint32_t len, cap;
    uint64_t size;          /* decoded body length observed */
    bool truncated;         /* the excerpt is not the whole body */
    uint8_t source;         /* enum ht_body_source */
    uint8_t coding;         /* enum ht_coding the excerpt was decoded from, or 0 */
    uint64_t decoded_size;  /* with coding: the decoded body's size when known, else 0 */
    uint32_t coded_len;     /* with coding: the coded bytes the excerpt came from */
    struct ht_file_id *file;/* sendfile: the file (in the exchange's memory), else NULL */
    bool omitted;           /* a body rule (core/rules.h) left the content out */
    struct ht_digest *digest;
    struct ht_multipart *mp;/* multipart/form-data: its parts (core/multipart.h), else NULL */
};

/* Start b's digest (every byte appended from now on); false without
 * memory. */
bool ht_body_digest_start(struct ht_exchange *ex, struct ht_body *b);

/* n bytes of b passed without their content (unseen): its digest, if any,
 * can no longer be had. */
void ht_body_unseen(struct ht_body *b);

/* Summarise b part by part if its head's Content-Type (ct, n bytes) is
 * multipart/form-data; false without memory. */
bool ht_body_multipart_start(struct ht_exchange *ex, struct ht_body *b, const uint8_t *ct,
                             size_t n);

/* Does b still want every byte (a digest or a multipart summary under
 * way)? Then the capture side must not skip its bytes. */
bool ht_body_wants_all(const struct ht_body *b);

/* The digest of b as 64 hex digits and a NUL in hex; false when there is
 * none (not asked for, or bytes unseen). Once per body. */
bool ht_body_digest_hex(struct ht_body *b, char hex[65]);

/* How body bytes reached the socket, when not by read/write. */
enum ht_body_source { HT_SRC_IO = 0, HT_SRC_SENDFILE, HT_SRC_SPLICE };

/* The file a body was sent from (sendfile), as the capture side named it:
 * the event's http.response.body.file. */
struct ht_file_id {
    const char *path;       /* NUL-terminated, or NULL when unknown */
    uint64_t ino, size;
    uint32_t dev;           /* major << 20 | minor */
    int64_t mtime_ns;       /* 0 when unknown */
};

/* A connection's endpoints, as strings ready for the event. */
struct ht_endpoints {
    const char *transport;  /* "tcp", "unix" (static), or NULL */
    char peer_addr[64];
    char local_addr[112];   /* room for a Unix socket path */
    int  peer_port, local_port;     /* -1 when not applicable */
};

/* A TLS connection's session, as its front end learnt it (docs/tls.md):
 * strings NUL-terminated, "" when unknown. */
struct ht_tls {
    char version[16];       /* the library's name: "TLSv1.3" */
    char cipher[64];
    char server_name[256];  /* SNI */
    char alpn[32];          /* negotiated (the library said) */
    char alpn_offered[64];  /* the ClientHello's offers, comma-separated */
    bool established;       /* a covered library handed us the plaintext */
    uint64_t raw_bytes[2];  /* ciphertext the socket moved, per direction (see feed.c) */
};

/* A gRPC call (HTTP/2 with content-type application/grpc*): what the
 * event's rpc.* fields say; in the exchange's memory. */
struct ht_grpc {
    uint32_t messages[2];           /* length-prefixed messages, per direction */
    uint32_t compressed[2];         /* ... of them with the compressed flag */
    bool framing_lost[2];           /* bytes of a direction were not seen: counts stop */
    int32_t status;                 /* grpc-status; -1 when none came */
    char message[128];              /* grpc-message as sent (percent-encoded), "" when none */
};

struct ht_field_at;

/* Bytes inside each exchange for its heads and small body excerpts: a
 * typical exchange (two heads, bodies of a few hundred bytes) needs no
 * other allocation. */
#define HT_EXCHANGE_INLINE 2048

struct ht_exchange {
    /* who */
    const char *mode;               /* "preload", "replay", ... (static) */
    const char *service;            /* service.name or NULL (the configuration's) */
    int pid;
    uint32_t max_body;              /* the excerpt cap in force (decoded excerpts too) */
    char exe[16];                   /* process.executable.name or "" */
    char conn_id[32];
    uint64_t request_index;         /* 0-based position on the connection */
    bool conn_joined;               /* the connection was open before capture began */
    struct ht_endpoints ep;

    /* when: wall clock of the first byte, then monotonic offsets (ns) */
    int64_t wall_ns;
    int64_t mono_start;             /* first byte (request, else response) */
    int64_t mono_req_done, mono_resp_start, mono_resp_done;   /* 0 = not seen */

    /* what */
    uint8_t *req_head, *resp_head;  /* raw heads, CRLFs included */
    uint32_t req_head_len, resp_head_len;
    /* Each head's fields as the parser found them (fields.h), so that the
     * writer need not read its lines again; NULL when not kept (too many
     * fields, no memory) and once the head was rewritten (redaction). */
    struct ht_field_at *req_fields, *resp_fields;
    uint32_t req_nfields, resp_nfields;
    struct ht_msg req_msg, resp_msg;
    struct ht_body req_body, resp_body;
    uint16_t interim[4];            /* 1xx statuses before the final one */
    uint8_t n_interim;

    /* progress */
    bool req_begun, req_head_done, req_done;
    bool resp_begun, resp_head_done, resp_done;
    uint32_t anomalies;             /* enum ht_anomaly, both directions */
    uint32_t h2_stream;             /* HTTP/2: the stream's id; 0 for HTTP/1 */
    uint32_t h2_anomalies;          /* HTTP/2: enum ht_h2_anomaly (core/h2.h) */
    bool h2_pushed;                 /* HTTP/2: a server push (PUSH_PROMISE) */
    struct ht_grpc *grpc;           /* a gRPC call (core/h2.c), else NULL */
    uint8_t verdict;                /* enum ht_verdict (core/rules.h) */
    uint8_t kind;                   /* enum ht_record_kind (core/ws.h): 0, an exchange */
    struct ht_wsrec *ws;            /* a WebSocket frame's or a tunnel's record, else NULL */
    uint32_t excerpt_cap[2];        /* per body: max_body, or less by a body rule */
    int64_t progress_ns;            /* the last progress record (rule 'progress'), 0 none */
    uint64_t progress_bytes;        /* ... and the response bytes then */
    uint32_t gaps;                  /* enum ht_gap */
    struct ht_tls *tls;             /* over TLS: its session (owned), else NULL */

    /* Filled by ht_redact_exchange (core/redact.h, which walks it): what
     * was replaced, NUL-separated ("header:authorization", "query:token",
     * "body:password"), ended by an empty name; more when some did not
     * fit; done once redaction has run. All zero in a new exchange. */
    struct {
        char names[240];
        uint8_t count;
        bool more, done;
    } redacted;

    /* Memory (exchange.c): heads and body excerpts come first from inl[],
     * then from malloc; the exchange itself comes from a recycling pool.
     * ht_exchange_new zeroes everything above this line only. */
    uint32_t inl_used;
    _Atomic uint32_t pool_depth;
    struct ht_exchange *pool_next;
    _Alignas(8) uint8_t inl[HT_EXCHANGE_INLINE];
};

/* A zeroed exchange; NULL on allocation failure. Exchanges are recycled
 * through a lock-free pool: an exchange made on an app thread and freed on
 * the writer thread comes back to the app thread without malloc or free
 * (a cross-thread free costs glibc an arena lock on both sides). The pool
 * holds at most HT_EXCHANGE_POOL_MAX idle exchanges, each thread's own
 * cache at most HT_EXCHANGE_CACHE_MAX (given back when the thread exits).
 * Thread-safe; not async-signal-safe. */
#define HT_EXCHANGE_POOL_MAX 256
#define HT_EXCHANGE_CACHE_MAX 64
struct ht_exchange *ht_exchange_new(void);

/* Free an exchange and everything it owns (to the pool, or to malloc when
 * the pool is full). NULL is fine. Thread-safe. */
void ht_exchange_free(struct ht_exchange *ex);

/* n bytes owned by ex: from its inline space when they fit, else malloc;
 * NULL on allocation failure. */
void *ht_exchange_alloc(struct ht_exchange *ex, size_t n);

/* Give back p (from ht_exchange_alloc, or malloc'd and handed to ex); NULL
 * is fine. Inline space is not reused: it is all reclaimed with ex. */
void ht_exchange_release(struct ht_exchange *ex, void *p);

/* Keep up to cap bytes of body data in b (a body of ex); always count
 * them. Returns 0, or -ENOMEM (the excerpt is then marked truncated and
 * the size still counts). */
int ht_body_append(struct ht_exchange *ex, struct ht_body *b, const uint8_t *data, size_t len,
                   uint32_t cap);

/* Copy a head of ex into *dst (replacing what was there); 0 or -ENOMEM. */
int ht_head_copy(struct ht_exchange *ex, uint8_t **dst, uint32_t *dst_len, const uint8_t *src,
                 uint32_t len);

/* Keep a copy of the n fields the parser found in a head just copied with
 * ht_head_copy into *dst (fields NULL: none kept); without memory none are
 * kept, and the writer reads the head's lines itself. */
void ht_head_fields(struct ht_exchange *ex, struct ht_field_at **dst, uint32_t *dst_n,
                    const struct ht_field_at *fields, uint32_t n);

/* Mark ex as carried over TLS: a copy of *t goes with it. 0 or -ENOMEM. */
int ht_exchange_set_tls(struct ht_exchange *ex, const struct ht_tls *t);

/* complete == no gaps. */
static inline bool ht_exchange_complete(const struct ht_exchange *ex) { return ex->gaps == 0; }

#endif
