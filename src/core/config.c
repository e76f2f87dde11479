/* config.c - settings from HTTPTAPE_* variables and flags (config.h). */
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/redact.h"
#include "core/text.h"

int ht_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    if (!s || !s[0])
        return -EINVAL;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0)
        return -EINVAL;
    unsigned shift = 0;
    switch (s[i]) {
    case 0: break;
    case 'k': case 'K': shift = 10; i++; break;
    case 'm': case 'M': shift = 20; i++; break;
    case 'g': case 'G': shift = 30; i++; break;
    default: return -EINVAL;
    }
    if (s[i] || (shift && v > (UINT64_MAX >> shift)))
        return -EINVAL;
    *out = v << shift;
    return 0;
}

/* Plain digits, no suffix. */
static int ht_parse_count(const char *s, uint64_t *out)
{
    uint64_t v;
    size_t n = strlen(s);
    if (!n || s[n - 1] < '0' || s[n - 1] > '9')
        return -EINVAL;
    return ht_parse_size(s, &v) ? -EINVAL : (*out = v, 0);
}

int ht_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

enum unit { U_BYTES, U_COUNT, U_MS, U_SECONDS };

struct num_var {
    const char *name;
    size_t offset;
    uint8_t width;              /* 4 or 8 bytes */
    uint8_t unit;
    uint64_t min, max;
};

#define NUM(field, w, u, lo, hi) offsetof(struct ht_config, field), w, u, lo, hi
static const struct num_var num_vars[] = {
    { "HTTPTAPE_MAX_BODY", NUM(max_body, 4, U_BYTES, 0, 1u << 30) },
    { "HTTPTAPE_MAX_HEADER", NUM(max_header, 4, U_BYTES, 1024, 16u << 20) },
    { "HTTPTAPE_H2_MAX_STREAMS", NUM(h2_max_streams, 4, U_COUNT, 1, 65536) },
    { "HTTPTAPE_QUEUE", NUM(queue_len, 4, U_COUNT, 16, 1u << 20) },
    { "HTTPTAPE_FLUSH_TIMEOUT_MS", NUM(flush_ms, 4, U_MS, 0, 60000) },
    { "HTTPTAPE_ROTATE_SIZE", NUM(rotate_size, 8, U_BYTES, 0, 1ULL << 50) },
    { "HTTPTAPE_ROTATE_KEEP", NUM(rotate_keep, 4, U_COUNT, 1, 1000) },
    { "HTTPTAPE_STATS_INTERVAL", NUM(stats_interval, 4, U_SECONDS, 0, 86400) },
    { "HTTPTAPE_RING_SIZE", NUM(ring_size, 4, U_BYTES, 64u << 10, 1u << 30) },
};

static const char *const unit_words[] = { "bytes", "items", "milliseconds", "seconds" };

static int set_log(struct ht_config *c, const char *value, char *err, size_t errlen)
{
    if (!value[0]) {
        snprintf(err, errlen, "HTTPTAPE_LOG: empty; expected a file path, -, unix:PATH "
                 "or fd:N");
        return -EINVAL;
    }
    char cwd[4096];
    int n;
    if (!strcmp(value, "-")) {
        strcpy(c->log_path, "-");       /* the collector's standard output */
        return 0;
    }
    if (!strncmp(value, "fd:", 3)) {
        size_t digits = strspn(value + 3, "0123456789");
        if (!digits || value[3 + digits] || digits > 9) {
            snprintf(err, errlen, "HTTPTAPE_LOG: '%s': expected fd: and a descriptor "
                     "number, e.g. fd:3", value);
            return -EINVAL;
        }
        snprintf(c->log_path, sizeof(c->log_path), "%s", value);
        return 0;
    }
    /* unix:PATH, a Unix stream socket; a relative PATH as for a file. */
    const char *prefix = !strncmp(value, "unix:", 5) ? "unix:" : "";
    value += strlen(prefix);
    if (*prefix && (!value[0] || strlen(value) >= 108)) {
        snprintf(err, errlen, "HTTPTAPE_LOG: unix: needs a socket path of 1 to 107 "
                 "bytes, e.g. unix:/run/shipper.sock");
        return -EINVAL;
    }
    if (value[0] == '/') {
        n = snprintf(c->log_path, sizeof(c->log_path), "%s%s", prefix, value);
    } else if (getcwd(cwd, sizeof(cwd))) {
        n = snprintf(c->log_path, sizeof(c->log_path), "%s%s/%s", prefix, cwd, value);
    } else {
        snprintf(err, errlen, "HTTPTAPE_LOG: relative path '%s' but the current "
                 "directory is unknown; give an absolute path", value);
        return -EINVAL;
    }
    if (n < 0 || (size_t)n >= sizeof(c->log_path)) {
        snprintf(err, errlen, "HTTPTAPE_LOG: path too long");
        return -EINVAL;
    }
    return 0;
}

/* Permission bits for a new log: octal, owner read+write, no execute or
 * special bits, not writable by others (anyone could forge records). */
static int set_log_mode(struct ht_config *c, const char *value, char *err, size_t errlen)
{
    size_t n = strlen(value);
    unsigned long v = 0;
    bool ok = n >= 3 && n <= 4;
    for (size_t i = 0; ok && i < n; i++) {
        ok = value[i] >= '0' && value[i] <= '7';
        v = v * 8 + (unsigned long)(value[i] - '0');
    }
    if (!ok || (v & ~0666ul) || (v & 0600) != 0600 || (v & 0002)) {
        snprintf(err, errlen, "HTTPTAPE_LOG_MODE: invalid value '%.32s'; expected an octal "
                 "mode from 0600 to 0664 such as 0640: owner read and write, no execute or "
                 "special bits, not writable by others", value);
        return -EINVAL;
    }
    c->log_mode = (uint32_t)v;
    return 0;
}

static int set_bool(bool *out, const char *name, const char *value, char *err, size_t errlen)
{
    if (ht_parse_bool(value, out)) {
        snprintf(err, errlen, "%s: invalid value '%.32s'; expected 1 or 0 (true/false, "
                 "yes/no, on/off)", name, value);
        return -EINVAL;
    }
    return 0;
}

/* HTTPTAPE_REDACT_HEADERS/QUERY/FIELDS: checked by core/redact.c, kept as given. */
static int set_names(char *dst, size_t dstlen, enum ht_redact_list which, const char *name,
                     const char *value, char *err, size_t errlen)
{
    int rc = ht_redact_parse_names(NULL, which, name, value, err, errlen);
    if (rc)
        return rc;
    if (strlen(value) >= dstlen) {
        snprintf(err, errlen, "%s: too long (%zu bytes); expected at most %zu bytes of "
                 "comma-separated names", name, strlen(value), dstlen - 1);
        return -EINVAL;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

/*
 * Error lines quote the value given, which may hold a newline or an ESC
 * sequence: written raw, that would split the one line or drive the
 * terminal. Bytes outside printable ASCII become \n, \r, \t or \xNN
 * (backslash itself is left alone, so escaping twice changes nothing).
 */
static void escape_err(char *err, size_t errlen)
{
    char out[1024];
    size_t o = 0, lim = errlen < sizeof(out) ? errlen : sizeof(out);
    if (!errlen)
        return;
    for (const unsigned char *p = (const unsigned char *)err; *p; p++) {
        char e[5];
        size_t k = 2;
        if (*p == '\n' || *p == '\r' || *p == '\t')
            e[0] = '\\', e[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        else if (*p < 0x20 || *p >= 0x7f)
            k = (size_t)snprintf(e, sizeof(e), "\\x%02x", *p);
        else
            e[0] = (char)*p, k = 1;
        if (o + k >= lim)
            break;
        memcpy(out + o, e, k);
        o += k;
    }
    memcpy(err, out, o);
    err[o] = 0;
}

/* A service name: up to 128 bytes of printable text (UTF-8 allowed), no
 * control characters; empty is as if not set. */
static int set_service(struct ht_config *c, const char *name, const char *value,
                       char *err, size_t errlen)
{
    size_t n = strlen(value);
    if (!n)
        return 0;
    bool ok = n < sizeof(c->service_name) && ht_utf8_valid((const uint8_t *)value, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)value[i] >= 0x20 && value[i] != 0x7f;
    if (!ok) {
        snprintf(err, errlen, "%s: invalid value '%.80s'; expected a name of up to %zu printable "
                 "characters (e.g. checkout-api)", name, value, sizeof(c->service_name) - 1);
        return -EINVAL;
    }
    memcpy(c->service_name, value, n + 1);
    return 0;
}

static int config_set(struct ht_config *c, const char *name, const char *value,
                      char *err, size_t errlen)
{
    if (!strcmp(name, "HTTPTAPE_SERVICE_NAME") || !strcmp(name, "OTEL_SERVICE_NAME"))
        return set_service(c, name, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_LOG"))
        return set_log(c, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_INHERIT"))
        return set_bool(&c->inherit, name, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_ALLOW_SECURE"))
        return set_bool(&c->allow_secure, name, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_REDACT"))
        return set_bool(&c->redact, name, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_LOG_MODE"))
        return set_log_mode(c, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_REDACT_HEADERS"))
        return set_names(c->redact_headers, sizeof(c->redact_headers), HT_REDACT_HEADERS,
                         name, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_REDACT_QUERY"))
        return set_names(c->redact_query, sizeof(c->redact_query), HT_REDACT_QUERY,
                         name, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_REDACT_FIELDS"))
        return set_names(c->redact_fields, sizeof(c->redact_fields), HT_REDACT_FIELDS,
                         name, value, err, errlen);
    if (!strcmp(name, "HTTPTAPE_REDACT_KEY")) {
        int rc = ht_redact_check_key(value, err, errlen);
        if (!rc)
            memcpy(c->redact_key, value, strlen(value) + 1);    /* checked: <= 256 */
        return rc;
    }
    for (size_t i = 0; i < sizeof(num_vars) / sizeof(num_vars[0]); i++) {
        const struct num_var *nv = &num_vars[i];
        if (strcmp(name, nv->name))
            continue;
        uint64_t v;
        bool suffix_ok = nv->unit == U_BYTES;
        if ((suffix_ok ? ht_parse_size(value, &v) : ht_parse_count(value, &v)) ||
            v < nv->min || v > nv->max) {
            snprintf(err, errlen, "%s: invalid value '%s'; expected a number of %s "
                     "from %llu to %llu%s", name, value, unit_words[nv->unit],
                     (unsigned long long)nv->min, (unsigned long long)nv->max,
                     suffix_ok ? " (suffixes k, m, g allowed: 64k, 1m)" : "");
            return -EINVAL;
        }
        if (nv->width == 8)
            *(uint64_t *)((char *)c + nv->offset) = v;
        else
            *(uint32_t *)((char *)c + nv->offset) = (uint32_t)v;
        return 0;
    }
    snprintf(err, errlen, "%s: unknown setting", name);
    return -EINVAL;
}

int ht_config_set(struct ht_config *c, const char *name, const char *value,
                  char *err, size_t errlen)
{
    int rc = config_set(c, name, value, err, errlen);
    if (rc)
        escape_err(err, errlen);
    return rc;
}

void ht_config_defaults(struct ht_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->log_path, sizeof(c->log_path), "%s", HT_DEFAULT_LOG);
    c->max_body = HT_DEFAULT_MAX_BODY;
    c->max_header = HT_DEFAULT_MAX_HEADER;
    c->h2_max_streams = HT_DEFAULT_H2_MAX_STREAMS;
    c->queue_len = HT_DEFAULT_QUEUE;
    c->ring_size = HT_DEFAULT_RING_SIZE;
    c->flush_ms = HT_DEFAULT_FLUSH_MS;
    c->rotate_keep = HT_DEFAULT_ROTATE_KEEP;
    c->stats_interval = HT_DEFAULT_STATS_INTERVAL;
    c->inherit = true;
    c->log_mode = HT_DEFAULT_LOG_MODE;
    c->redact = true;
}

/* Settings that are not numbers, in the order they are checked. */
static const char *const redact_vars[] = {
    "HTTPTAPE_REDACT", "HTTPTAPE_REDACT_HEADERS", "HTTPTAPE_REDACT_QUERY",
    "HTTPTAPE_REDACT_FIELDS", "HTTPTAPE_REDACT_KEY",
};
static const char *const other_vars[] = {
    "HTTPTAPE_INHERIT", "HTTPTAPE_LOG_MODE", "HTTPTAPE_ALLOW_SECURE",
    "HTTPTAPE_SERVICE_NAME", "OTEL_SERVICE_NAME",       /* the later one wins */
};

static int vars_from_env(struct ht_config *c, const char *const *names, size_t n,
                         char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(names[i]);
        int rc = v ? ht_config_set(c, names[i], v, err, errlen) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

int ht_config_redact_from_env(struct ht_config *c, char *err, size_t errlen)
{
    return vars_from_env(c, redact_vars, sizeof(redact_vars) / sizeof(redact_vars[0]),
                         err, errlen);
}

int ht_config_from_env(struct ht_config *c, char *err, size_t errlen)
{
    ht_config_defaults(c);
    const char *log = getenv("HTTPTAPE_LOG");
    int rc = set_log(c, log ? log : HT_DEFAULT_LOG, err, errlen);
    if (rc) {
        escape_err(err, errlen);
        return rc;
    }
    for (size_t i = 0; i < sizeof(num_vars) / sizeof(num_vars[0]); i++) {
        const char *v = getenv(num_vars[i].name);
        if (v && (rc = ht_config_set(c, num_vars[i].name, v, err, errlen)))
            return rc;
    }
    rc = vars_from_env(c, other_vars, sizeof(other_vars) / sizeof(other_vars[0]), err, errlen);
    return rc ? rc : ht_config_redact_from_env(c, err, errlen);
}

int ht_config_log_path(const struct ht_config *c, int pid, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *s = c->log_path; *s; s++) {
        char tmp[16];
        const char *piece = s;
        size_t n = 1;
        if (s[0] == '%' && s[1] == 'p') {
            n = (size_t)snprintf(tmp, sizeof(tmp), "%d", pid);
            piece = tmp;
            s++;
        }
        if (o + n >= outlen)
            return -ENAMETOOLONG;
        memcpy(out + o, piece, n);
        o += n;
    }
    out[o] = 0;
    return 0;
}

bool ht_config_log_is_file(const char *log_path)
{
    return strcmp(log_path, "-") && strncmp(log_path, "unix:", 5) && strncmp(log_path, "fd:", 3);
}

int ht_config_log_fd(const char *log_path)
{
    return strncmp(log_path, "fd:", 3) ? -1 : atoi(log_path + 3);
}

int ht_config_log_fd_open(const char *log_path, char *err, size_t errlen)
{
    int fd = ht_config_log_fd(log_path);
    if (fd < 0 || fcntl(fd, F_GETFD) >= 0)
        return 0;
    snprintf(err, errlen, "%s: descriptor %d is not open", log_path, fd);
    return -EBADF;
}
