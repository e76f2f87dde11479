/*
 * hello.h - the server name (SNI) and the protocols offered (ALPN) of a
 * TLS ClientHello, which travel in the clear: what the log can say of a
 * TLS connection whose plaintext it did not get (docs/tls.md).
 *
 * Pure function of its input; no allocation; thread-safe.
 */
#ifndef HT_COLLECTOR_HELLO_H
#define HT_COLLECTOR_HELLO_H

#include <stddef.h>
#include <stdint.h>

/* The first n bytes of a client's stream. Returns 1 when they hold the
 * first TLS record whole and it is a ClientHello (sni, alpn filled, ""
 * when absent; alpn: the protocols offered, comma-separated, as many as
 * fit whole), 0 when more bytes are needed, -1 when they are not a
 * ClientHello. Bytes outside printable ASCII become '?'. */
int ht_hello_parse(const uint8_t *p, size_t n, char *sni, size_t sni_cap, char *alpn,
                   size_t alpn_cap);

#endif
