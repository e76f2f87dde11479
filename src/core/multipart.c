/*
 * multipart.c - part-by-part summary of a multipart/form-data body
 * (multipart.h).
 *
 * The body is read as if it began with CRLF, so every delimiter is
 * "\r\n--BOUNDARY". A boundary has no CR in it, so a partial match can
 * only restart at a CR: bytes matched so far that turn out not to be a
 * delimiter are content, and matching starts again at the byte that broke
 * it. One byte at a time: this runs for multipart bodies only.
 */
#include "core/multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"

enum { S_PRE, S_AFTER, S_HEAD, S_BODY, S_END };

bool ht_mp_boundary(const uint8_t *ct, size_t n, char out[HT_MP_BOUNDARY + 1])
{
    if (n < 19 || strncasecmp((const char *)ct, "multipart/form-data", 19))
        return false;
    for (size_t i = 19; i + 9 <= n; i++) {
        if (strncasecmp((const char *)ct + i, "boundary=", 9))
            continue;
        size_t s = i + 9, e;
        if (s < n && ct[s] == '"') {
            s++;
            for (e = s; e < n && ct[e] != '"'; e++)
                ;
        } else {
            for (e = s; e < n && ct[e] != ';' && ct[e] != ' ' && ct[e] != '\t'; e++)
                ;
        }
        if (e == s || e - s > HT_MP_BOUNDARY || memchr(ct + s, '\r', e - s))
            return false;
        memcpy(out, ct + s, e - s);
        out[e - s] = 0;
        return true;
    }
    return false;
}

void ht_mp_init(struct ht_multipart *m, const char *boundary)
{
    memset(m, 0, sizeof(*m));
    size_t n = strlen(boundary);
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, n);
    m->dlen = (uint8_t)(4 + n);
    /* The body's start stands in for the first delimiter's CRLF. */
    m->wlen = 2;
    m->state = S_PRE;
}

static struct ht_mp_part *current(struct ht_multipart *m)
{
    return m->in_part ? &m->parts[m->nparts - 1] : NULL;
}

static bool is_text(const char *ct)
{
    return !ct[0] || !strncasecmp(ct, "text/", 5) || !strcasecmp(ct, "application/json") ||
           !strcasecmp(ct, "application/x-www-form-urlencoded");
}

/* Content bytes of the part being read. */
static void content(struct ht_multipart *m, const uint8_t *p, size_t n)
{
    struct ht_mp_part *pt = current(m);
    if (!pt || m->state != S_BODY)
        return;
    pt->size += n;
    if (!is_text(pt->content_type))
        return;
    size_t room = HT_MP_TEXT - pt->text_len, k = n < room ? n : room;
    memcpy(pt->text + pt->text_len, p, k);
    pt->text_len += (uint16_t)k;
    pt->text_cut |= k < n;
}

/* The value of param (name="x") in a Content-Disposition value, into out. */
static void disposition_param(const char *v, const char *param, char *out, size_t cap)
{
    size_t pl = strlen(param);
    for (const char *p = v; (p = strcasestr(p, param)); p += pl) {
        if (p != v && p[-1] != ' ' && p[-1] != ';' && p[-1] != '\t')
            continue;
        const char *s = p + pl;
        if (*s != '=')
            continue;
        s++;
        size_t n = 0;
        if (*s == '"') {
            s++;
            while (s[n] && s[n] != '"')
                n++;
        } else {
            while (s[n] && s[n] != ';' && s[n] != ' ')
                n++;
        }
        if (n >= cap)
            n = cap - 1;
        memcpy(out, s, n);
        out[n] = 0;
        return;
    }
}

/* A part's head is in (m->head, without its final CRLF CRLF). */
static void part_begin(struct ht_multipart *m)
{
    if (m->nparts == HT_MP_PARTS) {
        m->more++;
        m->in_part = false;
        return;
    }
    struct ht_mp_part *pt = &m->parts[m->nparts++];
    memset(pt, 0, sizeof(*pt));
    m->in_part = true;
    char line[HT_MP_HEAD + 1];
    size_t pos = 0;
    while (pos < m->hlen) {
        size_t e = pos;
        while (e < m->hlen && m->head[e] != '\r' && m->head[e] != '\n')
            e++;
        memcpy(line, m->head + pos, e - pos);
        line[e - pos] = 0;
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = 0;
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (!strcasecmp(line, "content-disposition")) {
                disposition_param(v, "name", pt->name, sizeof(pt->name));
                disposition_param(v, "filename", pt->filename, sizeof(pt->filename));
            } else if (!strcasecmp(line, "content-type")) {
                size_t n = strcspn(v, "; \t");
                if (n >= sizeof(pt->content_type))
                    n = sizeof(pt->content_type) - 1;
                memcpy(pt->content_type, v, n);
                pt->content_type[n] = 0;
            }
        }
        pos = e;
        while (pos < m->hlen && (m->head[pos] == '\r' || m->head[pos] == '\n'))
            pos++;
    }
}

/* One byte after a delimiter: "--" ends the body, CRLF starts a part's
 * head (whitespace before it is transport padding). */
static void after(struct ht_multipart *m, uint8_t c)
{
    if (m->hlen == 0 && (c == ' ' || c == '\t'))
        return;
    m->head[m->hlen++] = c;
    if (m->hlen < 2)
        return;
    if (m->head[0] == '-' && m->head[1] == '-') {
        m->state = S_END;
        m->ended = true;
    } else if (m->head[0] == '\r' && m->head[1] == '\n') {
        m->state = S_HEAD;
    } else {
        m->broken = true;
    }
    m->hlen = 0;
}

static void head_byte(struct ht_multipart *m, uint8_t c)
{
    if (m->hlen == HT_MP_HEAD) {
        m->broken = true;
        return;
    }
    m->head[m->hlen++] = c;
    size_t n = m->hlen;
    bool empty = n == 2 && m->head[0] == '\r' && m->head[1] == '\n';
    if (empty || (n >= 4 && !memcmp(m->head + n - 4, "\r\n\r\n", 4))) {
        m->hlen = empty ? 0 : (uint16_t)(n - 4);
        part_begin(m);
        m->hlen = 0;
        m->state = S_BODY;
    }
}

void ht_mp_feed(struct ht_multipart *m, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && !m->broken && m->state != S_END; i++) {
        uint8_t c = p[i];
        if (m->state == S_AFTER) {
            after(m, c);
            continue;
        }
        if (m->state == S_HEAD) {
            head_byte(m, c);
            continue;
        }
        /* S_PRE, S_BODY: looking for the delimiter. */
        if (c == m->delim[m->wlen]) {
            if (++m->wlen == m->dlen) {
                m->wlen = 0;
                m->in_part = m->in_part && m->state == S_BODY;
                m->state = S_AFTER;
                m->hlen = 0;
            }
            continue;
        }
        /* Not a delimiter after all: what matched is content. */
        if (m->wlen)
            content(m, m->delim, m->wlen);
        m->wlen = 0;
        if (c == '\r')
            m->wlen = 1;
        else
            content(m, &c, 1);
    }
}
