/*
 * export.c - what the export formats share: the request URL, field lookup,
 * timestamps, and writing JSON (see export.h). No state; single-threaded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/export.h"
#include "cli/select.h"

const char *ht_export_header(json_t *rec, const char *dir, const char *name)
{
    json_t *fields = ht_json_path(json_object_get(ht_json_path(rec, "http"), dir), "header");
    return json_string_value(json_array_get(json_object_get(fields, name), 0));
}

/* host[:port] from the fields the event has; writes at most n bytes. */
static void authority(json_t *rec, const char *scheme, char *buf, size_t n)
{
    const char *host = ht_export_header(rec, "request", "host");
    if (host) {
        snprintf(buf, n, "%s", host);
        return;
    }
    const char *addr = json_string_value(ht_json_path(rec, "server.address"));
    json_t *port = ht_json_path(rec, "server.port");
    if (!addr) {
        addr = json_string_value(ht_json_path(rec, "network.local.address"));
        port = ht_json_path(rec, "network.local.port");
    }
    if (!addr || addr[0] == '/') {      /* none, or a Unix socket's path */
        snprintf(buf, n, "localhost");
        return;
    }
    bool v6 = strchr(addr, ':') != NULL;
    long long p = json_integer_value(port);
    bool dflt = !json_is_integer(port) || p == (strcmp(scheme, "https") ? 80 : 443);
    if (dflt)
        snprintf(buf, n, v6 ? "[%s]" : "%s", addr);
    else
        snprintf(buf, n, v6 ? "[%s]:%lld" : "%s:%lld", addr, p);
}

char *ht_export_url(json_t *rec)
{
    const char *scheme = json_string_value(ht_json_path(rec, "url.scheme"));
    const char *path = json_string_value(ht_json_path(rec, "url.path"));
    const char *query = json_string_value(ht_json_path(rec, "url.query"));
    char host[512];
    if (!scheme)
        scheme = "http";
    authority(rec, scheme, host, sizeof(host));
    if (!path || path[0] != '/')
        path = "/";                     /* CONNECT, '*': the URL names the server */
    char *url;
    if (asprintf(&url, "%s://%s%s%s%s", scheme, host, path, query ? "?" : "",
                 query ? query : "") < 0)
        return NULL;
    return url;
}

bool ht_export_time_ns(json_t *rec, uint64_t *ns)
{
    const char *t = json_string_value(json_object_get(rec, "timestamp"));
    struct tm tm = { 0 };
    const char *p = t ? strptime(t, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!p)
        return false;
    uint64_t frac = 0;
    int digits = 0;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (digits < 9) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                digits++;
            }
    if (*p != 'Z')
        return false;
    for (; digits < 9; digits++)
        frac *= 10;
    time_t secs = timegm(&tm);
    if (secs < 0)
        return false;
    *ns = (uint64_t)secs * 1000000000u + frac;
    return true;
}

int ht_export_dump(struct ht_export *x, json_t *v)
{
    if (!v)
        return -ENOMEM;
    int rc = json_dumpf(v, x->out, JSON_COMPACT | JSON_REAL_PRECISION(15));
    return rc || ferror(x->out) ? -EIO : 0;
}
