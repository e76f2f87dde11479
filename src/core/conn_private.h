/*
 * conn_private.h - what conn.c lends the other modules of one connection
 * (h2.c): not for front ends.
 *
 * Threading: as conn.h (the caller serialises calls on a connection).
 */
#ifndef HT_CONN_PRIVATE_H
#define HT_CONN_PRIVATE_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/conn.h"

/* A new exchange of c, begun now: who and where filled in, the next
 * request_index taken. NULL without memory (not counted: the caller
 * counts it with ht_conn_count_dropped). */
struct ht_exchange *ht_conn_new_exchange(struct ht_conn *c, const struct ht_clock *now);

/* A record of c that is not an exchange (ws.c: frames, tunnels): as
 * ht_conn_new_exchange, but it takes no request_index. */
struct ht_exchange *ht_conn_new_record(struct ht_conn *c, const struct ht_clock *now);

/* One exchange we will not log, counted in counter (a dropped_* of
 * ht_stats) and in exchanges_seen. */
void ht_conn_count_dropped(_Atomic uint64_t *counter);

#endif
