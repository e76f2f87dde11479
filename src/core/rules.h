/*
 * rules.h - what to record: include and exclude rules, sampling, body
 * policy by content type, header allow and deny lists (docs/rules.md).
 *
 * One rule a line, from a file (HTTPTAPE_CONFIG, else
 * $XDG_CONFIG_HOME/httptape/rules.conf, else /etc/httptape/rules.conf) and
 * then from HTTPTAPE_RULES (rules separated by ';'):
 *
 *   exclude COND...            drop exchanges matching every COND
 *   include COND...            with any include rule, keep only exchanges
 *                              matching one of them
 *   sample RATE% [COND...]     of the exchanges the first matching sample
 *                              rule covers, keep RATE% (by trace id, so
 *                              both legs of a trace agree)
 *   body TYPE keep|drop|cap=SIZE   the excerpt of bodies whose media type
 *                              matches the glob TYPE (first rule wins)
 *   header deny|allow NAME,... which header fields the events show
 *   digest sha256              a SHA-256 of every body, whole
 *   progress every=10s|bytes=1m  progress records of long responses
 *   websocket all|data|control|none [cap=SIZE]
 *                              which WebSocket frames get a record (core/ws.h)
 *
 *   COND: path=GLOB method=M,M host=GLOB status=5xx,404 slower=500ms
 *         request-header=NAME[:GLOB] response-header=NAME[:GLOB]
 *
 * Decisions are made as early as what they need is known: at the request
 * head for conditions on the request (so an excluded request's body is not
 * copied), at the end for status and duration.
 *
 * Threading: configured once at start-up (ht_rules_load), then read-only;
 * the evaluation functions are thread-safe.
 */
#ifndef HT_RULES_H
#define HT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/exchange.h"

/* An exchange's fate (ht_exchange.verdict). */
enum ht_verdict { HT_KEEP_UNDECIDED = 0, HT_KEEP, HT_FILTERED, HT_SAMPLED_OUT };

/* Read the rule file (if any) and HTTPTAPE_RULES; replaces what was
 * configured. 0, or -EINVAL with one line in err naming the file and line
 * (or HTTPTAPE_RULES and the rule's number), what is wrong and what was
 * expected. */
int ht_rules_load(char *err, size_t errlen);

/* The same from text (rules separated by newlines or ';'), origin naming
 * it in errors. For tests and ht_rules_load. */
int ht_rules_parse(const char *text, const char *origin, char *err, size_t errlen);

/* Forget every rule (defaults only). */
void ht_rules_reset(void);

/* Where the rules came from ("" when none), for the one-line summary. */
const char *ht_rules_origin(void);

/* The request head of ex is in: decide what can be decided (its verdict,
 * its request body's excerpt cap in ex->excerpt_cap[HT_REQ]). */
void ht_rules_request(struct ht_exchange *ex);

/* The response head is in: the response body's excerpt cap. */
void ht_rules_response(struct ht_exchange *ex);

/* The exchange is finished: its verdict (decides what was left). */
enum ht_verdict ht_rules_final(struct ht_exchange *ex);

/* Does a WebSocket frame with this opcode get a record, and with what
 * excerpt cap (at most max_body)? The last websocket rule decides; by
 * default every frame, capped at max_body. */
bool ht_rules_ws_frame(uint8_t opcode, uint32_t max_body, uint32_t *cap);

/* Progress records of long responses ('progress every=DURATION
 * bytes=SIZE', either or both): false when not asked for. */
bool ht_rules_progress(uint64_t *every_ns, uint64_t *every_bytes);

/* Is a digest of whole bodies asked for ('digest sha256')? */
bool ht_rules_digest(void);

/* Do header rules exist, and is this field name (any case) shown? */
bool ht_rules_filter_headers(void);
bool ht_rules_header_shown(const uint8_t *name, size_t len);

#endif
