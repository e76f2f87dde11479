/* config.c - settings from HTTPTAPE_* variables and flags (config.h). */
#include "core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

struct size_var {
    const char *name;
    size_t offset;
    uint64_t min, max;
};

static const struct size_var size_vars[] = {
    { "HTTPTAPE_MAX_BODY", offsetof(struct ht_config, max_body), 0, 1u << 30 },
    { "HTTPTAPE_MAX_HEADER", offsetof(struct ht_config, max_header), 1024, 16u << 20 },
    { "HTTPTAPE_QUEUE", offsetof(struct ht_config, queue_len), 16, 1u << 20 },
    { "HTTPTAPE_FLUSH_TIMEOUT_MS", offsetof(struct ht_config, flush_ms), 0, 60000 },
};

static int set_log(struct ht_config *c, const char *value, char *err, size_t errlen)
{
    if (!value[0]) {
        snprintf(err, errlen, "HTTPTAPE_LOG: empty; expected a file path");
        return -EINVAL;
    }
    char cwd[4096];
    int n;
    if (value[0] == '/') {
        n = snprintf(c->log_path, sizeof(c->log_path), "%s", value);
    } else if (getcwd(cwd, sizeof(cwd))) {
        n = snprintf(c->log_path, sizeof(c->log_path), "%s/%s", cwd, value);
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

int ht_config_set(struct ht_config *c, const char *name, const char *value,
                  char *err, size_t errlen)
{
    if (!strcmp(name, "HTTPTAPE_LOG"))
        return set_log(c, value, err, errlen);
    for (size_t i = 0; i < sizeof(size_vars) / sizeof(size_vars[0]); i++) {
        const struct size_var *sv = &size_vars[i];
        if (strcmp(name, sv->name))
            continue;
        uint64_t v;
        if (ht_parse_size(value, &v) || v < sv->min || v > sv->max) {
            snprintf(err, errlen, "%s: invalid value '%s'; expected a number of %s "
                     "from %llu to %llu%s", name, value,
                     strstr(name, "_MS") ? "milliseconds" : "bytes",
                     (unsigned long long)sv->min, (unsigned long long)sv->max,
                     strstr(name, "_MS") ? "" : " (suffixes k, m, g allowed: 64k, 1m)");
            return -EINVAL;
        }
        *(uint32_t *)((char *)c + sv->offset) = (uint32_t)v;
        return 0;
    }
    snprintf(err, errlen, "%s: unknown setting", name);
    return -EINVAL;
}

int ht_config_from_env(struct ht_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->max_body = HT_DEFAULT_MAX_BODY;
    c->max_header = HT_DEFAULT_MAX_HEADER;
    c->queue_len = HT_DEFAULT_QUEUE;
    c->flush_ms = HT_DEFAULT_FLUSH_MS;

    const char *log = getenv("HTTPTAPE_LOG");
    int rc = set_log(c, log ? log : HT_DEFAULT_LOG, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof(size_vars) / sizeof(size_vars[0]); i++) {
        const char *v = getenv(size_vars[i].name);
        if (v && (rc = ht_config_set(c, size_vars[i].name, v, err, errlen)))
            return rc;
    }
    return 0;
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
