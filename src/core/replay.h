/*
 * replay.h - feeding the two recorded directions of one connection through
 * a conn, as the replay front end does.
 *
 * The directions are fed a message at a time, alternately, so that each
 * response is parsed after the request it answers (HEAD, CONNECT and
 * Upgrade change how a response is framed). Cut points let tests (and
 * packet-shaped captures) deliver the bytes in pieces: no single feed call
 * crosses a cut. The result must not depend on them.
 *
 * Not thread-safe (one conn, one caller).
 */
#ifndef HT_REPLAY_H
#define HT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "core/conn.h"

struct ht_cuts {
    size_t split;       /* a cut at this offset (0: none) */
    size_t step;        /* a cut every step bytes (0: none) */
};

/* Feed both streams, end both directions and finish the connection. */
void ht_replay(struct ht_conn *c, const uint8_t *cli, size_t cn, const uint8_t *srv, size_t sn,
               const struct ht_clock *now, const struct ht_cuts *cli_cuts,
               const struct ht_cuts *srv_cuts);

#endif
