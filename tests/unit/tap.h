/*
 * tap.h - a tiny TAP producer for the C unit tests.
 *
 * Each test binary prints "ok N - name" / "not ok N - name" lines and a
 * closing "1..N" plan; scripts/run-tests.sh counts them across suites.
 * Single-threaded.
 */
#ifndef HT_TAP_H
#define HT_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3)))
static inline int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    if (!cond)
        tap_failed++;
    fflush(stdout);
    return cond;
}

/* A diagnostic line, shown by TAP consumers under the failing test. */
__attribute__((format(printf, 1, 2)))
static inline void tap_diag(const char *fmt, ...)
{
    va_list ap;
    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
