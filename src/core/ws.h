/*
 * ws.h - what goes over a connection after it left HTTP/1 (101 Switching
 * Protocols, or a 2xx to CONNECT): WebSocket frames (RFC 6455) read in
 * both directions and logged as records of their own, tied to the upgrade
 * exchange by connection id and request_index; for any tunnel, one record
 * when it ends with its bytes each way and its lifetime (docs/events.md,
 * "WebSocket and tunnel records").
 *
 * Records travel as exchanges (the sink's unit) whose kind says what they
 * are; event.c writes them in their own shape.
 *
 * Threading: none inside; conn.c's caller serialises calls.
 */
#ifndef HT_WS_H
#define HT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"

/* ht_exchange.kind */
enum ht_record_kind { HT_KIND_EXCHANGE = 0, HT_KIND_WS_FRAME, HT_KIND_TUNNEL, HT_KIND_PROGRESS };

/* WebSocket opcodes (RFC 6455 5.2). */
enum { HT_WS_CONT = 0, HT_WS_TEXT = 1, HT_WS_BINARY = 2, HT_WS_CLOSE = 8, HT_WS_PING = 9,
       HT_WS_PONG = 10 };

/* A frame's or a tunnel's facts (in the record's memory). */
struct ht_wsrec {
    uint8_t dir;                    /* frame: enum ht_dir of its sender */
    uint8_t opcode;
    bool fin;
    bool masked;
    bool compressed;                /* permessage-deflate (RSV1): the excerpt is inflated */
    int32_t close_code;             /* close frame: its code, -1 none */
    uint64_t size;                  /* frame: payload bytes */
    /* tunnel */
    char protocol[24];              /* "websocket", "connect", or the Upgrade token */
    uint64_t bytes[2];              /* per direction, after the upgrade */
    uint64_t frames[2];             /* websocket: frames per direction */
    uint64_t frames_logged;
    bool cut;                       /* the tunnel's bytes were not all seen */
};

const char *ht_ws_opcode_name(uint8_t op);

/* The connection left HTTP after exchange up (its response ended): from
 * now on its bytes come to ht_ws_feed. websocket: frames are read (the
 * 101 answered an Upgrade: websocket). 0 or -ENOMEM. */
int ht_ws_start(struct ht_conn *c, const struct ht_exchange *up, const char *protocol,
                bool websocket);

/* Tunnel bytes of direction d. */
void ht_ws_feed(struct ht_conn *c, enum ht_dir d, const uint8_t *buf, size_t len,
                const struct ht_clock *now);

/* n bytes of direction d passed unseen: counted; frames stop there. */
void ht_ws_lost(struct ht_conn *c, enum ht_dir d, uint64_t n);

/* The connection ended: the tunnel record goes out; state freed. */
void ht_ws_finish(struct ht_conn *c, const struct ht_clock *now);

/* A long response of ex is under way (rule 'progress'): a progress record
 * when its interval or byte count has passed since the last one (the
 * first counts from the response's start). Called as body bytes come. */
void ht_ws_progress(struct ht_conn *c, struct ht_exchange *ex, const struct ht_clock *now);

#endif
