/*
 * export_curl.c - each exchange as one curl command that sends its request
 * again: method, URL, header fields and body.
 *
 * One command a line, preceded by a '#' comment naming the exchange, so the
 * output runs as a shell script. Left out: Host (it is in the URL),
 * Content-Length and Transfer-Encoding (curl frames the body itself), and
 * Content-Encoding when the log holds the body decoded. A base64 body is
 * piped through `base64 -d` into --data-binary @-. What the log cannot give
 * back is said on stderr, once per exchange: redacted values (they stay as
 * the log has them, REDACTED or hmac:..., placeholders to fill in), and body
 * excerpts shorter than the body. Single-threaded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/export.h"
#include "cli/select.h"
#include "core/text.h"

/* Writes s[0..n) as the inside of a single-quoted POSIX shell word. */
static void quote_inner(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'')
            fputs("'\\''", out);
        else
            putc(s[i], out);
    }
}

static void quote(FILE *out, const char *s, size_t n)
{
    putc('\'', out);
    quote_inner(out, s, n);
    putc('\'', out);
}

static void quote_str(FILE *out, const char *s)
{
    quote(out, s, strlen(s));
}

static bool skipped_field(const char *name, json_t *body)
{
    return !strcmp(name, "host") || !strcmp(name, "content-length") ||
           !strcmp(name, "transfer-encoding") ||
           (!strcmp(name, "content-encoding") && json_object_get(body, "content_encoding"));
}

static void put_headers(FILE *out, json_t *rec, json_t *body)
{
    json_t *fields = ht_json_path(rec, "http.request.header");
    const char *name;
    json_t *vals, *v;
    size_t i;
    json_object_foreach(fields, name, vals) {
        if (skipped_field(name, body))
            continue;
        json_array_foreach(vals, i, v) {
            fputs(" \\\n  --header '", out);
            quote_inner(out, name, strlen(name));
            fputs(": ", out);
            quote_inner(out, json_string_value(v), json_string_length(v));
            putc('\'', out);
        }
    }
}

/* The URL has characters curl would read as a glob: turn globbing off. */
static bool needs_globoff(const char *url)
{
    return strpbrk(url, "[]{}") != NULL;
}

/* Says on stderr what the command cannot reproduce; true if anything. */
static bool warn(struct ht_export *x, json_t *rec, const char *url, json_t *body)
{
    json_t *red = ht_json_path(rec, "httptape.redacted");
    json_t *size = json_object_get(body, "size");
    json_t *content = json_object_get(body, "content");
    bool said = false;
    if (json_array_size(red)) {
        char *list = json_dumps(red, JSON_COMPACT);
        fprintf(stderr, "%s: %s: redacted in the log, left as placeholders: %s\n",
                x->prog, url, list ? list : "?");
        free(list);
        said = true;
    }
    if (json_integer_value(size) > 0 && (!content || json_is_true(json_object_get(body, "truncated")))) {
        fprintf(stderr, "%s: %s: the log kept %s of the %lld-byte request body; the command "
                "sends only that\n", x->prog, url, content ? "the start" : "none",
                (long long)json_integer_value(size));
        said = true;
    }
    return said;
}

/*
 * The body as base64 when it cannot be a shell word: logged as base64, or
 * text holding NUL. Returns the log's own string, a malloc'd one, or NULL
 * (plain text, or no memory: then the text is written as it is).
 */
static char *body_base64(json_t *body)
{
    json_t *content = json_object_get(body, "content");
    const char *text = json_string_value(content);
    const char *enc = json_string_value(json_object_get(body, "encoding"));
    size_t n = json_string_length(content);
    if (!text)
        return NULL;
    if (enc && !strcmp(enc, "base64"))
        return (char *)text;
    if (!memchr(text, 0, n))
        return NULL;
    char *b = malloc(ht_base64_len(n) + 1);
    if (b)
        ht_base64_encode((const uint8_t *)text, n, b);
    return b;
}

static int begin(struct ht_export *x)
{
    fputs("#!/bin/sh\n# curl commands exported by httptape; one per exchange.\n", x->out);
    return ferror(x->out) ? -EIO : 0;
}

static void put_comment(FILE *out, json_t *rec)
{
    json_t *red = ht_json_path(rec, "httptape.redacted");
    const char *ts = json_string_value(json_object_get(rec, "timestamp"));
    json_t *status = ht_json_path(rec, "http.response.status_code");
    fprintf(out, "\n# %s", ts ? ts : "-");
    if (json_is_integer(status))
        fprintf(out, " status %lld", (long long)json_integer_value(status));
    if (json_array_size(red)) {
        const char *sep = " redacted: ";
        size_t i;
        json_t *v;
        json_array_foreach(red, i, v) {
            const char *s = json_string_value(v);
            for (fputs(sep, out); s && *s; s++)
                putc(*s == '\n' ? ' ' : *s, out);   /* a comment stays one line */
            sep = ",";
        }
    }
    putc('\n', out);
}

static int entry(struct ht_export *x, json_t *rec)
{
    FILE *out = x->out;
    json_t *body = ht_json_path(rec, "http.request.body");
    json_t *content = json_object_get(body, "content");
    char *b64 = body_base64(body);
    const char *method = json_string_value(ht_json_path(rec, "http.request.method"));
    const char *ver = json_string_value(ht_json_path(rec, "network.protocol.version"));
    const char *scheme = json_string_value(ht_json_path(rec, "url.scheme"));
    char *url = ht_export_url(rec);
    if (!url)
        return -ENOMEM;
    x->warnings += warn(x, rec, url, body);
    put_comment(out, rec);
    if (b64) {
        fputs("printf %s ", out);
        quote_str(out, b64);
        fputs(" | base64 -d | ", out);
    }
    fputs("curl", out);
    if (method && !strcmp(method, "HEAD"))
        fputs(" --head", out);          /* --request HEAD would wait for a body */
    else {
        fputs(" --request ", out);
        quote_str(out, method ? method : "GET");
    }
    fputs(" \\\n  --url ", out);
    quote_str(out, url);
    if (needs_globoff(url))
        fputs(" --globoff", out);
    if (ver && !strcmp(ver, "1.0"))
        fputs(" --http1.0", out);
    else if (ver && !strcmp(ver, "2"))
        fputs(scheme && !strcmp(scheme, "https") ? " --http2" : " --http2-prior-knowledge", out);
    put_headers(out, rec, body);
    if (b64)
        fputs(" \\\n  --data-binary @-", out);
    else if (content) {
        fputs(" \\\n  --data-binary ", out);
        quote(out, json_string_value(content), json_string_length(content));
    }
    putc('\n', out);
    free(url);
    if (b64 != json_string_value(content))
        free(b64);
    return ferror(out) ? -EIO : 0;
}

static int end(struct ht_export *x)
{
    return fflush(x->out) || ferror(x->out) ? -EIO : 0;
}

const struct ht_export_format ht_export_curl = { "curl", begin, entry, end };
