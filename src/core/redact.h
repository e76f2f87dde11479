/*
 * redact.h - takes secrets out of an exchange record before it is
 * formatted, in place, so no encoder ever sees them (docs/security.md).
 *
 * What is rewritten:
 *   - header values: authorization, proxy-authorization, cookie, set-cookie,
 *     x-api-key, and the names of HTTPTAPE_REDACT_HEADERS. The auth scheme
 *     ("Bearer"), cookie names and Set-Cookie attributes stay;
 *   - query parameter values in the request target, and in the URLs of
 *     Referer, Location and Content-Location, whose names are sensitive
 *     (default list + HTTPTAPE_REDACT_QUERY); parameters split on '&' and
 *     ';', a sensitive value runs to the next '&';
 *   - the password of userinfo ("user:pass@", or a lone user part) in those
 *     URLs and in an absolute-form target;
 *   - values of sensitive fields at any depth of JSON bodies and in
 *     application/x-www-form-urlencoded bodies (default list +
 *     HTTPTAPE_REDACT_FIELDS), both directions.
 * A value becomes "REDACTED", or with a key "hmac:" + 16 hex digits of
 * HMAC-SHA-256(key, value) (libsodium), so equal secrets correlate.
 *
 * Names are compared ignoring case, '-' and '_' ("accessToken" ==
 * "access-token" == "ACCESS_TOKEN"), after percent- or JSON-unescaping, and
 * in every list a name ending in password, passwd, secret, token, apikey,
 * privatekey or signature is sensitive too ("X-Auth-Token", "db_password").
 * Form bodies use the query and the field lists. A leading UTF-8 BOM is
 * skipped; a body labelled JSON that is not bracketed is read as a form.
 * Bodies other than JSON
 * (by Content-Type, or complete and parsed by jansson) and form-urlencoded
 * are not read, nor content-encoded ones; an excerpt cut at the cap is
 * redacted as far as it goes.
 *
 * Threading: ht_redact_configure / ht_redact_set are for start-up, before
 * any exchange is redacted (not thread-safe). ht_redact_exchange and
 * ht_redact_exchange_with are thread-safe for distinct exchanges: they
 * only read the configuration.
 */
#ifndef HT_REDACT_H
#define HT_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/exchange.h"
#include "core/fields.h"

#define HT_REDACT_MAX_NAMES 32      /* extra names per variable */
#define HT_REDACT_NAME_MAX  64      /* bytes per extra name */
#define HT_REDACT_KEY_MIN   16      /* bytes of HTTPTAPE_REDACT_KEY */
#define HT_REDACT_KEY_MAX   256

/* The three name lists. */
enum ht_redact_list { HT_REDACT_HEADERS, HT_REDACT_QUERY, HT_REDACT_FIELDS };

struct ht_redact_cfg {
    bool enabled;
    uint8_t n_extra[3];                             /* per enum ht_redact_list */
    char extra[3][HT_REDACT_MAX_NAMES][HT_REDACT_NAME_MAX + 1];  /* normalised */
    uint64_t headers_gen;   /* which extra header names (a new value each time they are set) */
    size_t key_len;                                 /* 0: plain "REDACTED" */
    uint8_t key[HT_REDACT_KEY_MAX];
};

/*
 * Check one comma-separated list of extra names (the value of var, e.g.
 * "HTTPTAPE_REDACT_HEADERS"); spaces around names are ignored, "" is an
 * empty list. When cfg is not NULL the names are stored in it. 0, or
 * -EINVAL with one line in err naming var and the accepted form.
 */
int ht_redact_parse_names(struct ht_redact_cfg *cfg, enum ht_redact_list which,
                          const char *var, const char *csv, char *err, size_t errlen);

/* Check HTTPTAPE_REDACT_KEY ("" = no key). The error never quotes it. */
int ht_redact_check_key(const char *key, char *err, size_t errlen);

/*
 * Build a configuration: enabled, the three lists (NULL or "" = defaults
 * only) and the HMAC key (NULL or "" = plain "REDACTED"). 0, or -EINVAL
 * with err as above (cfg is then unusable).
 */
int ht_redact_cfg_build(struct ht_redact_cfg *cfg, const char *headers_csv,
                        const char *query_csv, const char *fields_csv,
                        const char *key, bool enabled, char *err, size_t errlen);

/* Make cfg the process-wide configuration (copied). Until the first call,
 * redaction is on with the default lists and no key. */
void ht_redact_set(const struct ht_redact_cfg *cfg);

/* ht_redact_cfg_build + ht_redact_set; on error the configuration in
 * force is left alone. */
int ht_redact_configure(const char *headers_csv, const char *query_csv,
                        const char *fields_csv, const char *key, bool enabled,
                        char *err, size_t errlen);

/* Whether the process-wide configuration redacts. */
bool ht_redact_enabled(void);

/*
 * Rewrite ex in place with the process-wide configuration: heads (target
 * offsets in req_msg follow), body excerpts (len/cap change; size and
 * truncated keep describing the body as sent), and ex->redacted lists what
 * was replaced. Safe on any exchange: NULL heads, no body, a head that
 * failed to copy. A second call on the same exchange does nothing.
 *
 * Returns the number of values replaced (0 when disabled), or -ENOMEM:
 * then a head that could not be rebuilt has its secret bytes overwritten
 * with '*' in place and a body excerpt that could not be rebuilt is
 * dropped (len 0, truncated), so nothing sensitive is left either way.
 */
int ht_redact_exchange(struct ht_exchange *ex);

/* The same with an explicit configuration (tests, other front ends). */
int ht_redact_exchange_with(const struct ht_redact_cfg *cfg, struct ht_exchange *ex);

/* ht_redact_exchange for a caller that found the heads' fields already
 * (ht_fields_list: the event writer); a list whose head was rewritten is
 * filled again, so after the call each still describes its head. */
int ht_redact_exchange_listed(struct ht_exchange *ex, struct ht_fields_list *req,
                              struct ht_fields_list *resp);

/*
 * Walk ex->redacted: prev NULL gives the first name ("header:cookie",
 * "query:access_token", "body:password"), then each next one, then NULL.
 * Names are printable ASCII. ex->redacted.more is true when some did not
 * fit.
 */
const char *ht_redact_next(const struct ht_exchange *ex, const char *prev);

/* Is a body field (a multipart part) of this name secret under the
 * configuration in force? Then it is noted in ex's list ("body:NAME") and
 * true is returned: its value must not be shown. */
bool ht_redact_body_field(struct ht_exchange *ex, const char *name);

#endif
