/* replay.c - alternate, message-at-a-time feeding of two streams (replay.h). */
#include "core/replay.h"

static size_t piece(size_t pos, size_t n, const struct ht_cuts *cuts)
{
    size_t len = n - pos;
    if (!cuts)
        return len;
    if (cuts->step && len > cuts->step - pos % cuts->step)
        len = cuts->step - pos % cuts->step;
    if (cuts->split > pos && len > cuts->split - pos)
        len = cuts->split - pos;
    return len;
}

/* Feed one direction until one message ends, it pauses, or input runs out.
 * Returns bytes consumed. */
static size_t feed_message(struct ht_conn *c, enum ht_dir d, const uint8_t *s, size_t n,
                           size_t pos, const struct ht_clock *now, const struct ht_cuts *cuts)
{
    size_t start = pos;
    uint64_t ended = c->messages[d];
    while (pos < n && c->messages[d] == ended) {
        size_t len = piece(pos, n, cuts);
        size_t used = ht_conn_feed(c, d, s + pos, len, now, HT_FEED_ONE_MESSAGE);
        pos += used;
        if (used < len && c->messages[d] == ended)
            break;              /* paused: the other side must decide */
    }
    return pos - start;
}

void ht_replay(struct ht_conn *c, const uint8_t *cli, size_t cn, const uint8_t *srv, size_t sn,
               const struct ht_clock *now, const struct ht_cuts *cli_cuts,
               const struct ht_cuts *srv_cuts)
{
    size_t ci = 0, si = 0;
    for (;;) {
        size_t a = feed_message(c, HT_REQ, cli, cn, ci, now, cli_cuts);
        ci += a;
        if (ci == cn)
            ht_conn_eof(c, HT_REQ, now);
        size_t b = feed_message(c, HT_RESP, srv, sn, si, now, srv_cuts);
        si += b;
        if (a == 0 && b == 0)
            break;
    }
    /* Whatever is left: a side paused with nothing to decide it. */
    while (ci < cn) {
        size_t len = piece(ci, cn, cli_cuts);
        ht_conn_feed(c, HT_REQ, cli + ci, len, now, 0);
        ci += len;
    }
    while (si < sn) {
        size_t len = piece(si, sn, srv_cuts);
        ht_conn_feed(c, HT_RESP, srv + si, len, now, 0);
        si += len;
    }
    ht_conn_finish(c, now, 0);
}
