/*
 * parser.h - incremental HTTP/1.x message framing for one direction of one
 * connection (RFC 9112 sections 2-7).
 *
 * A pull parser: the caller hands it whatever bytes arrived, in any split,
 * and calls ht_parser_next() until it reports HT_PEV_NONE. Each call yields
 * at most one event and says how many input bytes it consumed. The parser
 * never allocates except to grow its head buffer (bounded by head_max), and
 * body bytes are never copied: HT_PEV_BODY points into the caller's buffer.
 * The head buffer is held only while a message is read: at its end it goes
 * to a per-thread stash that the next message on this thread takes from
 * (p->head is valid from HT_PEV_HEAD until HT_PEV_END).
 *
 * Threading: a parser belongs to one connection; the caller serialises
 * calls. Parsers of one thread share its stash; a parser may move between
 * threads (its buffer is then returned to the other thread's stash).
 */
#ifndef HT_PARSER_H
#define HT_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef HT_DIR_DEFINED
#define HT_DIR_DEFINED
enum ht_dir { HT_REQ = 0, HT_RESP = 1 };
#endif

enum ht_framing {
    HT_FRAME_NONE,      /* no body */
    HT_FRAME_LENGTH,    /* Content-Length bytes */
    HT_FRAME_CHUNKED,   /* chunked transfer coding */
    HT_FRAME_CLOSE,     /* response body ends when the server closes */
    HT_FRAME_TUNNEL,    /* 101 / 2xx to CONNECT: the rest is not HTTP */
};

/*
 * Anomalies: facts about the bytes that a reader of an audit log should
 * see. Names (ht_anomaly_name) are the strings in httptape.anomalies and are
 * documented in docs/events.md. Those marked fatal leave no safe reading of
 * the stream: the parser reports HT_PEV_ERROR and stops.
 */
enum ht_anomaly {
    HT_AN_CL_WITH_TE        = 1u << 0,  /* both present; TE wins */
    HT_AN_CL_DUPLICATE      = 1u << 1,  /* repeated, same value */
    HT_AN_CL_CONFLICT       = 1u << 2,  /* fatal: differing values */
    HT_AN_CL_INVALID        = 1u << 3,  /* fatal: not 1*DIGIT, or overflows */
    HT_AN_TE_CHUNKED_NOT_LAST = 1u << 4,/* fatal in requests */
    HT_AN_TE_UNKNOWN        = 1u << 5,  /* a coding we do not know */
    HT_AN_TE_HTTP10         = 1u << 6,  /* Transfer-Encoding in HTTP/1.0 */
    HT_AN_OBS_FOLD          = 1u << 7,  /* line folding, read as one SP */
    HT_AN_BARE_LF           = 1u << 8,  /* LF without CR, accepted */
    HT_AN_BARE_CR           = 1u << 9,  /* CR not followed by LF */
    HT_AN_WS_BEFORE_COLON   = 1u << 10, /* "Name : value" */
    HT_AN_CHUNK_SIZE_INVALID = 1u << 11,/* fatal */
    HT_AN_CHUNK_SIZE_OVERFLOW = 1u << 12,/* fatal */
    HT_AN_START_LINE_INVALID = 1u << 13,/* fatal */
    HT_AN_HEADER_INVALID    = 1u << 14, /* fatal: no colon, bad name */
    HT_AN_HEADER_TOO_LARGE  = 1u << 15, /* fatal: head over head_max */
    HT_AN_CHUNK_EXT_TOO_LONG = 1u << 16,/* fatal: chunk line over limit */
    HT_AN_TRAILER_TOO_LARGE = 1u << 17, /* fatal */
    HT_AN_UNSOLICITED_101   = 1u << 18, /* 101 without an Upgrade request */
    HT_AN_WS_AFTER_START_LINE = 1u << 19,/* indented lines ignored (9112 2.2) */
    HT_AN_MISSING_HOST      = 1u << 20, /* HTTP/1.1 request without Host */
    HT_AN_DUPLICATE_HOST    = 1u << 21, /* more than one Host field line */
    HT_AN_TARGET_FORM       = 1u << 22, /* target form does not fit the method */
    HT_AN_FIELD_VALUE_INVALID = 1u << 23,/* NUL or control bytes in a value */
    HT_AN_TRAILER_FRAMING   = 1u << 24, /* framing field in a trailer section */
    HT_AN_LEADING_EMPTY_LINES = 1u << 25,/* empty lines before a status line */
    HT_AN_DATA_AFTER_CLOSE  = 1u << 26, /* a message after "Connection: close" */
    HT_AN_BODY_ON_BODILESS_METHOD = 1u << 27,/* content on GET, HEAD, DELETE, OPTIONS, TRACE */
    HT_AN_BODY_ON_CONNECT   = 1u << 28, /* CONNECT with Content-Length/TE: read as no body */
    HT_AN_FRAGMENT_IN_TARGET = 1u << 29,/* "#" in the request-target (RFC 9112 3.2) */
    HT_AN_DESYNC_SUSPECTED  = 1u << 30, /* (conn.c) a response no request explains */
};
#define HT_AN_COUNT 31

/* Anomalies that leave the framing in doubt: the server may have read the
 * request stream differently (an exchange carrying one is not complete). */
#define HT_AN_DOUBT (HT_AN_BODY_ON_BODILESS_METHOD | HT_AN_BODY_ON_CONNECT | HT_AN_DESYNC_SUSPECTED)

/* The snake_case name of one anomaly bit, or NULL. */
const char *ht_anomaly_name(uint32_t bit);

/* Flags describing the request a response answers (set by the caller). */
enum {
    HT_REQF_HEAD    = 1u << 0,
    HT_REQF_CONNECT = 1u << 1,
    HT_REQF_UPGRADE = 1u << 2,
};

/* What the parser learned from a message head; valid from HT_PEV_HEAD
 * until the next message begins. Offsets index ht_parser.head. */
struct ht_msg {
    uint8_t  version_minor;     /* HTTP/1.<minor> */
    uint16_t status;            /* responses */
    uint16_t method_len;        /* requests: method at head[0] */
    uint32_t target_off, target_len;
    uint8_t  framing;           /* enum ht_framing */
    uint8_t  req_flags;         /* requests: HT_REQF_* of this request */
    bool     conn_close;        /* the sender will close after this message */
    uint64_t content_length;    /* when framing == HT_FRAME_LENGTH */
    uint32_t anomalies;         /* enum ht_anomaly bits */
};

enum ht_pev_type {
    HT_PEV_NONE,        /* no event: input consumed, paused or dead */
    HT_PEV_BEGIN,       /* first byte of a message (consumes nothing) */
    HT_PEV_HEAD,        /* head complete: p->head, p->head_len, p->msg, ev->fields */
    HT_PEV_BODY,        /* data/len: decoded body bytes */
    HT_PEV_END,         /* message complete */
    HT_PEV_TUNNEL,      /* data/len: bytes after 101/CONNECT, not HTTP */
    HT_PEV_ERROR,       /* fatal framing error; anomaly says which */
    HT_PEV_TRUNCATED,   /* (from ht_parser_eof) message cut by end of stream */
};

struct ht_field_at;

struct ht_pev {
    enum ht_pev_type type;
    const uint8_t *data;
    size_t len;
    uint32_t anomaly;   /* HT_PEV_ERROR: the fatal bit */
    /* HT_PEV_HEAD: the head's fields as ht_fields_next would find them
     * (fields.h), offsets into p->head, in storage of this thread's valid
     * until its next ht_parser_next; NULL when there were more than
     * HT_FIELDS_LIST_MAX. */
    const struct ht_field_at *fields;
    uint32_t nfields;
};

struct ht_parser {
    uint8_t  dir;           /* enum ht_dir */
    uint8_t  state;
    uint8_t  sub;           /* chunk-line / trailer sub-state */
    uint8_t  req_flags;     /* responses: what the answered request was */
    uint32_t head_max;
    uint8_t *head;          /* start line + fields, CRLFs included */
    uint32_t head_len, head_cap;
    uint32_t line_start;    /* offset in head of the line being read */
    uint32_t aux_len;       /* chunk line / trailer bytes so far */
    bool     skipped_lines; /* empty lines seen before this message */
    uint64_t remaining;     /* body or chunk bytes left */
    uint64_t chunk_size;
    uint64_t body_size;     /* decoded body bytes of this message */
    struct ht_msg msg;
};

/* Initialise for one direction; head_max bounds the head (and trailers).
 * The head buffer grows on demand. Release with ht_parser_free(). */
void ht_parser_init(struct ht_parser *p, enum ht_dir dir, uint32_t head_max);
void ht_parser_free(struct ht_parser *p);

/*
 * Consume bytes from buf[0..len) and report the next event in *ev. Returns
 * the number of bytes consumed (possibly 0, e.g. for BEGIN and END). Call
 * again with the rest until ev->type == HT_PEV_NONE; if bytes remain then,
 * the parser is paused (ht_parser_paused) or dead.
 */
size_t ht_parser_next(struct ht_parser *p, const uint8_t *buf, size_t len,
                      struct ht_pev *ev);

/* End of this direction's stream: END for a close-delimited body,
 * TRUNCATED if a message was in progress, NONE otherwise. */
void ht_parser_eof(struct ht_parser *p, struct ht_pev *ev);

/* A request that asked to leave HTTP (Upgrade, CONNECT) pauses the request
 * parser after it; the caller resumes it when the response declined, or
 * turns it into a tunnel when the response accepted. */
bool ht_parser_paused(const struct ht_parser *p);
void ht_parser_resume(struct ht_parser *p);
void ht_parser_tunnel(struct ht_parser *p);

/* Bytes that passed without our seeing them (sendfile, splice): how many
 * of the next bytes are certainly body data, which can be counted without
 * reading them (0 outside a body; UINT64_MAX for a close-delimited body). */
uint64_t ht_parser_body_room(const struct ht_parser *p);

/* Count n <= ht_parser_body_room() body bytes as seen without data. */
void ht_parser_skip_body(struct ht_parser *p, uint64_t n);

/* Stop parsing for good (used when the other direction desynchronised). */
void ht_parser_kill(struct ht_parser *p);
bool ht_parser_dead(const struct ht_parser *p);

#endif
