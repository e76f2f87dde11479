/*
 * test_config.c - unit tests for config.c: the one-line error a bad
 * HTTPTAPE_* value gets stays one printable line whatever the value holds.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "core/config.h"
#include "tap.h"

static bool printable_line(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* A value with a newline and an ESC sequence, for each kind of setting. */
static void test_set_escapes(void)
{
    static const char *const vars[] = {
        "HTTPTAPE_MAX_BODY", "HTTPTAPE_QUEUE", "HTTPTAPE_LOG_MODE", "HTTPTAPE_INHERIT",
        "HTTPTAPE_REDACT", "HTTPTAPE_REDACT_HEADERS", "HTTPTAPE_REDACT_QUERY",
        "HTTPTAPE_REDACT_FIELDS", "HTTPTAPE_SERVICE_NAME", "OTEL_SERVICE_NAME",
    };
    const char *bad = "1\n\x1b[2Jforged line";
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        struct ht_config c;
        char err[512] = "";
        ht_config_defaults(&c);
        int rc = ht_config_set(&c, vars[i], bad, err, sizeof(err));
        tap_ok(rc < 0 && printable_line(err), "%s: error with newline+ESC is one printable line",
               vars[i]);
        if (!printable_line(err) || rc >= 0)
            tap_diag("rc %d err '%s'", rc, err);
        if (!strcmp(vars[i], "HTTPTAPE_MAX_BODY"))
            tap_ok(strstr(err, "'1\\n\\x1b[2Jforged line'") != NULL,
                   "HTTPTAPE_MAX_BODY: the value is shown escaped (\\n, \\x1b): %s", err);
    }
}

/* ht_config_from_env reads HTTPTAPE_LOG and the rest the same way. */
static void test_env_escapes(void)
{
    struct ht_config c;
    char err[512] = "";
    setenv("HTTPTAPE_LOG", "/tmp/x.jsonl", 1);
    setenv("HTTPTAPE_FLUSH_TIMEOUT_MS", "5\r\x1b]0;title\x07", 1);
    int rc = ht_config_from_env(&c, err, sizeof(err));
    tap_ok(rc < 0 && printable_line(err) && strstr(err, "5\\r\\x1b]0;title\\x07"),
           "from_env: HTTPTAPE_FLUSH_TIMEOUT_MS error is escaped: %s", err);
    unsetenv("HTTPTAPE_FLUSH_TIMEOUT_MS");
}

/* A short buffer: the escaped line is cut whole, never mid-escape. */
static void test_short_buffer(void)
{
    struct ht_config c;
    char err[24];
    ht_config_defaults(&c);
    int rc = ht_config_set(&c, "HTTPTAPE_MAX_BODY", "\x1b\x1b\x1b\x1b\x1b", err, sizeof(err));
    size_t n = strlen(err);
    tap_ok(rc < 0 && n < sizeof(err) && printable_line(err) &&
           (n < 4 || err[n - 1] != '\\'),
           "short buffer: '%s' is terminated and printable", err);
}

/* service.name: OTEL_SERVICE_NAME over HTTPTAPE_SERVICE_NAME over nothing. */
static void test_service_name(void)
{
    struct ht_config c;
    char err[512] = "";
    unsetenv("OTEL_SERVICE_NAME");
    unsetenv("HTTPTAPE_SERVICE_NAME");
    tap_ok(ht_config_from_env(&c, err, sizeof(err)) == 0 && c.service_name[0] == 0,
           "service name: none by default (each process's executable name is used)");
    setenv("HTTPTAPE_SERVICE_NAME", "checkout", 1);
    tap_ok(ht_config_from_env(&c, err, sizeof(err)) == 0 && !strcmp(c.service_name, "checkout"),
           "service name: HTTPTAPE_SERVICE_NAME");
    setenv("OTEL_SERVICE_NAME", "caf\xc3\xa9-api", 1);
    tap_ok(ht_config_from_env(&c, err, sizeof(err)) == 0 &&
           !strcmp(c.service_name, "caf\xc3\xa9-api"), "service name: OTEL_SERVICE_NAME wins, UTF-8 allowed");
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    tap_ok(ht_config_set(&c, "HTTPTAPE_SERVICE_NAME", longname, err, sizeof(err)) < 0 &&
           strstr(err, "HTTPTAPE_SERVICE_NAME") &&
           ht_config_set(&c, "OTEL_SERVICE_NAME", "\xff", err, sizeof(err)) < 0 &&
           ht_config_set(&c, "OTEL_SERVICE_NAME", "a\tb", err, sizeof(err)) < 0,
           "service name: too long, not UTF-8 or with a control character is refused: %s", err);
    setenv("OTEL_SERVICE_NAME", "", 1);
    tap_ok(ht_config_from_env(&c, err, sizeof(err)) == 0 && !strcmp(c.service_name, "checkout"),
           "service name: an empty OTEL_SERVICE_NAME is as if not set");
    unsetenv("OTEL_SERVICE_NAME");
    unsetenv("HTTPTAPE_SERVICE_NAME");
}

/* The log's destinations: a file, "-", "unix:PATH", "fd:N". */
static void test_log_forms(void)
{
    struct ht_config c;
    char err[512] = "";
    ht_config_defaults(&c);
    tap_ok(ht_config_set(&c, "HTTPTAPE_LOG", "unix:/run/ship.sock", err, sizeof(err)) == 0 &&
           !strcmp(c.log_path, "unix:/run/ship.sock") && !ht_config_log_is_file(c.log_path),
           "unix:/run/ship.sock is a socket destination");
    tap_ok(ht_config_set(&c, "HTTPTAPE_LOG", "unix:ship.sock", err, sizeof(err)) == 0 &&
           !strncmp(c.log_path, "unix:/", 6) && strstr(c.log_path, "/ship.sock"),
           "unix:ship.sock is made absolute: %s", c.log_path);
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'a', 150);
    tap_ok(ht_config_set(&c, "HTTPTAPE_LOG", longpath, err, sizeof(err)) < 0 &&
           strstr(err, "107 bytes"), "a socket path over 107 bytes is refused: %s", err);
    tap_ok(ht_config_set(&c, "HTTPTAPE_LOG", "fd:7", err, sizeof(err)) == 0 &&
           ht_config_log_fd(c.log_path) == 7 && !ht_config_log_is_file(c.log_path),
           "fd:7 names descriptor 7");
    tap_ok(ht_config_set(&c, "HTTPTAPE_LOG", "fd:x", err, sizeof(err)) < 0 &&
           ht_config_set(&c, "HTTPTAPE_LOG", "fd:", err, sizeof(err)) < 0 &&
           ht_config_set(&c, "HTTPTAPE_LOG", "fd:-1", err, sizeof(err)) < 0,
           "fd: without a number is refused: %s", err);
    tap_ok(ht_config_log_fd_open("fd:2", err, sizeof(err)) == 0 &&
           ht_config_log_fd_open("fd:987654", err, sizeof(err)) == -EBADF,
           "fd:987654 is not open: %s", err);
    tap_ok(ht_config_set(&c, "HTTPTAPE_LOG", "/tmp/x.jsonl", err, sizeof(err)) == 0 &&
           ht_config_log_is_file(c.log_path) && ht_config_log_fd(c.log_path) == -1,
           "/tmp/x.jsonl is a file");
}

int main(void)
{
    test_service_name();
    test_log_forms();
    test_set_escapes();
    test_env_escapes();
    test_short_buffer();
    return tap_done();
}
