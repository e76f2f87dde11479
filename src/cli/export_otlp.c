/*
 * export_otlp.c - exchanges as OTLP/JSON logs, in the OpenTelemetry
 * Collector file exporter's format: one ExportLogsServiceRequest
 * ({"resourceLogs": [...]}) per line.
 *
 * Consecutive exchanges of one resource (service.name, process.pid,
 * process.executable.name) share a line, up to HT_OTLP_BATCH records; a
 * line is written as its records come (the opening, each LogRecord, the
 * closing), so nothing is held. Each LogRecord: timeUnixNano (and
 * observedTimeUnixNano) from .timestamp, traceId/spanId/flags from the
 * event's trace_id/span_id/trace_flags, severity ERROR for a 5xx or an
 * incomplete exchange (INFO otherwise), body "METHOD PATH STATUS", and
 * every other field flattened to dotted attribute keys (arrays of scalars
 * as arrayValue; int64 as decimal strings, per the protobuf JSON mapping).
 * Single-threaded.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/export.h"
#include "cli/select.h"

#define HT_OTLP_BATCH 512

/* Fields that are not attributes: the record's own or the resource's. */
static const char *const not_attributes[] = {
    "timestamp", "trace_id", "span_id", "trace_flags",
    "service.name", "process.pid", "process.executable.name",
};

static bool is_attribute(const char *key)
{
    for (size_t i = 0; i < sizeof(not_attributes) / sizeof(not_attributes[0]); i++)
        if (!strcmp(key, not_attributes[i]))
            return false;
    return true;
}

/* An AnyValue for a scalar or an array of them; NULL for null and objects. */
static json_t *any_value(json_t *v)
{
    char num[32];
    size_t i;
    json_t *item, *vals;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_pack("{s:O}", "stringValue", v);
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return json_pack("{s:s}", "intValue", num);
    case JSON_REAL:
        return json_pack("{s:f}", "doubleValue", json_real_value(v));
    case JSON_TRUE:
    case JSON_FALSE:
        return json_pack("{s:b}", "boolValue", json_is_true(v));
    case JSON_ARRAY:
        vals = json_array();
        json_array_foreach(v, i, item) {
            json_t *a = any_value(item);
            if (a)
                json_array_append_new(vals, a);
        }
        return json_pack("{s:{s:o}}", "arrayValue", "values", vals);
    default:
        return NULL;
    }
}

/* Appends {key, value} for every scalar under v, keys joined with dots. */
static void flatten(json_t *attrs, json_t *v, char *key, size_t len, size_t cap)
{
    if (!json_is_object(v)) {
        json_t *a = is_attribute(key) ? any_value(v) : NULL;
        if (a)
            json_array_append_new(attrs, json_pack("{s:s,s:o}", "key", key, "value", a));
        return;
    }
    const char *k;
    json_t *child;
    json_object_foreach(v, k, child) {
        size_t kl = strlen(k);
        if (len + 1 + kl >= cap)
            continue;               /* a key longer than any event has */
        size_t at = len;
        if (len)
            key[at++] = '.';
        memcpy(key + at, k, kl + 1);
        flatten(attrs, child, key, at + kl, cap);
        key[len] = 0;
    }
}

static json_t *attributes(json_t *rec)
{
    char key[1024] = "";
    json_t *attrs = json_array();
    if (attrs)
        flatten(attrs, rec, key, 0, sizeof(key));
    return attrs;
}

static void add_trace(json_t *lr, json_t *rec)
{
    json_t *trace = json_object_get(rec, "trace_id");
    json_t *span = json_object_get(rec, "span_id");
    const char *flags = json_string_value(json_object_get(rec, "trace_flags"));
    if (json_is_string(trace))
        json_object_set(lr, "traceId", trace);
    if (json_is_string(span))
        json_object_set(lr, "spanId", span);
    if (flags)
        json_object_set_new(lr, "flags", json_integer(strtol(flags, NULL, 16) & 0xff));
}

static bool is_error(json_t *rec)
{
    json_int_t status = json_integer_value(ht_json_path(rec, "http.response.status_code"));
    return status >= 500 || json_is_false(ht_json_path(rec, "httptape.complete"));
}

static json_t *log_record(json_t *rec)
{
    char body[512], when[24] = "0";
    uint64_t ns;
    const char *m = json_string_value(ht_json_path(rec, "http.request.method"));
    const char *p = json_string_value(ht_json_path(rec, "url.path"));
    json_t *status = ht_json_path(rec, "http.response.status_code");
    snprintf(body, sizeof(body), "%s %s %lld", m ? m : "-", p ? p : "-",
             json_is_integer(status) ? (long long)json_integer_value(status) : 0LL);
    if (ht_export_time_ns(rec, &ns))
        snprintf(when, sizeof(when), "%" PRIu64, ns);
    bool err = is_error(rec);
    json_t *lr = json_pack("{s:s,s:s,s:i,s:s,s:{s:s},s:o}",
                           "timeUnixNano", when, "observedTimeUnixNano", when,
                           "severityNumber", err ? 17 : 9, "severityText", err ? "ERROR" : "INFO",
                           "body", "stringValue", body, "attributes", attributes(rec));
    if (lr)
        add_trace(lr, rec);
    return lr;
}

/* ---- batches -------------------------------------------------------------------- */

static json_t *resource(json_t *rec)
{
    json_t *attrs = json_array();
    static const char *const keys[] = { "service.name", "process.pid", "process.executable.name" };
    for (size_t i = 0; i < 3; i++) {
        json_t *a = any_value(ht_json_path(rec, keys[i]));
        if (a)
            json_array_append_new(attrs, json_pack("{s:s,s:o}", "key", keys[i], "value", a));
    }
    return json_pack("{s:o}", "attributes", attrs);
}

static int close_batch(struct ht_export *x)
{
    if (x->batch_key)
        fputs("]}]}]}\n", x->out);
    free(x->batch_key);
    x->batch_key = NULL;
    x->batch_n = 0;
    return ferror(x->out) ? -EIO : 0;
}

/* Starts a line for rec's resource unless the open one is for it too. */
static int open_batch(struct ht_export *x, json_t *rec)
{
    json_t *res = resource(rec);
    char *key = res ? json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int rc = key ? 0 : -ENOMEM;
    if (!rc && x->batch_key && !strcmp(key, x->batch_key) && x->batch_n < HT_OTLP_BATCH) {
        fputc(',', x->out);
    } else if (!rc && !(rc = close_batch(x))) {
        fputs("{\"resourceLogs\":[{\"resource\":", x->out);
        rc = ht_export_dump(x, res);
        fputs(",\"scopeLogs\":[{\"scope\":{\"name\":\"httptape\"},\"logRecords\":[", x->out);
        x->batch_key = key;
        key = NULL;
    }
    free(key);
    json_decref(res);
    return rc;
}

static int begin(struct ht_export *x)
{
    (void)x;
    return 0;
}

static int entry(struct ht_export *x, json_t *rec)
{
    int rc = open_batch(x, rec);
    json_t *lr = rc ? NULL : log_record(rec);
    if (!rc)
        rc = ht_export_dump(x, lr);
    x->batch_n++;
    json_decref(lr);
    return rc;
}

static int end(struct ht_export *x)
{
    return close_batch(x);
}

const struct ht_export_format ht_export_otlp = { "otlp", begin, entry, end };
