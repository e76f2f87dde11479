/*
 * test_fields.c - the one reader of a kept head's field lines (fields.h):
 * line ends with and without CR, obs-fold continuations (and one right
 * after the start line, which continues nothing), lines without a colon,
 * whitespace before the colon, an empty value continued on the next line,
 * a last line with no LF.
 */
#include <string.h>

#include "core/fields.h"
#include "tap.h"

struct got {
    char name[32], value[64], span[64];
    int folded;
};

static int read_all(const char *head, struct got *g, int max)
{
    const uint8_t *h = (const uint8_t *)head;
    size_t n = strlen(head), pos = ht_fields_start(h, n);
    struct ht_field f;
    int k = 0;
    while (k < max && ht_fields_next(h, n, &pos, &f)) {
        snprintf(g[k].name, sizeof(g[k].name), "%.*s", (int)f.name_len, head + f.name);
        snprintf(g[k].value, sizeof(g[k].value), "%.*s", (int)(f.value_end - f.value), head + f.value);
        snprintf(g[k].span, sizeof(g[k].span), "%.*s", (int)(f.span_end - f.value), head + f.value);
        g[k].folded = f.fold_to > f.fold_from;
        k++;
    }
    return k;
}

int main(void)
{
    struct got g[8];
    int n = read_all("GET / HTTP/1.1\r\nHost: a\r\nX-A:  1 \r\n\r\nbody: no\r\n", g, 8);
    tap_ok(n == 2 && !strcmp(g[0].name, "Host") && !strcmp(g[0].value, "a") &&
           !strcmp(g[1].name, "X-A") && !strcmp(g[1].value, "1"),
           "fields: names and trimmed values, up to the empty line only");
    n = read_all("GET / HTTP/1.1\nHost: a\nX-B: 2\n\n", g, 8);
    tap_ok(n == 2 && !strcmp(g[1].value, "2"), "fields: bare LF line ends");
    n = read_all("GET / HTTP/1.1\r\n folded-onto-nothing\r\nX-C: one\r\n  two \r\n\tthree\r\nX-D: d\r\n\r\n", g, 8);
    tap_ok(n == 2 && !strcmp(g[0].name, "X-C") && !strcmp(g[0].value, "one") && g[0].folded &&
           !strcmp(g[0].span, "one\r\n  two \r\n\tthree") && !strcmp(g[1].name, "X-D") && !g[1].folded,
           "fields: obs-fold lines continue the field before; after the start line they are passed over");
    n = read_all("GET / HTTP/1.1\r\nno colon here\r\nName : v\r\nE:\r\n cont\r\n\r\n", g, 8);
    tap_ok(n == 2 && !strcmp(g[0].name, "Name") && !strcmp(g[0].value, "v") &&
           !strcmp(g[1].name, "E") && !strcmp(g[1].value, "") && !strcmp(g[1].span, "\r\n cont"),
           "fields: a line without a colon is passed over; 'Name :' loses its space; an empty value may continue");
    n = read_all("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2", g, 8);
    tap_ok(n == 2 && !strcmp(g[1].value, "2"), "fields: a last line with no LF still counts");
    n = read_all("GET / HTTP/1.1", g, 8);
    tap_ok(n == 0, "fields: a head of only a start line has none");
    return tap_done();
}
