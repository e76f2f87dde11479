/*
 * config.h - httptape's settings and their validation, shared by the
 * preloaded library (reads HTTPTAPE_* from the environment) and the CLI
 * (validates flags before exec). Every variable is documented in
 * docs/configuration.md.
 *
 * Not thread-safe; called once at start-up.
 */
#ifndef HT_CONFIG_H
#define HT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HT_DEFAULT_LOG        "httptape.jsonl"
#define HT_DEFAULT_MAX_BODY   4096u
#define HT_DEFAULT_MAX_HEADER 65536u
#define HT_DEFAULT_H2_MAX_STREAMS 128u
#define HT_DEFAULT_QUEUE      4096u
#define HT_DEFAULT_RING_SIZE  (4u << 20)
#define HT_DEFAULT_FLUSH_MS   2000u
#define HT_DEFAULT_ROTATE_KEEP 5u
#define HT_DEFAULT_STATS_INTERVAL 60u
#define HT_DEFAULT_LOG_MODE   0600u

struct ht_config {
    char log_path[4096];        /* absolute, "-" (standard output), "unix:" and an absolute
                                 * socket path, or "fd:N"; "%p" still unexpanded */
    uint32_t max_body;          /* HTTPTAPE_MAX_BODY */
    uint32_t max_header;        /* HTTPTAPE_MAX_HEADER */
    uint32_t h2_max_streams;    /* HTTPTAPE_H2_MAX_STREAMS */
    uint32_t queue_len;         /* HTTPTAPE_QUEUE */
    uint32_t ring_size;         /* HTTPTAPE_RING_SIZE: record ring per recorded process,
                                 * bytes, rounded up to a power of two */
    uint32_t flush_ms;          /* HTTPTAPE_FLUSH_TIMEOUT_MS */
    uint64_t rotate_size;       /* HTTPTAPE_ROTATE_SIZE, 0 = never */
    uint32_t rotate_keep;       /* HTTPTAPE_ROTATE_KEEP */
    uint32_t stats_interval;    /* HTTPTAPE_STATS_INTERVAL seconds, 0 = final only */
    bool inherit;               /* HTTPTAPE_INHERIT: children keep the preload */
    uint32_t log_mode;          /* HTTPTAPE_LOG_MODE: permission bits of a log we
                                 * create, 0600..0664 (owner rw; no x, no o+w) */
    bool allow_secure;          /* HTTPTAPE_ALLOW_SECURE: record setuid/setgid/
                                 * file-capability processes too */
    bool redact;                /* HTTPTAPE_REDACT (default on) */
    char redact_headers[1024];  /* HTTPTAPE_REDACT_HEADERS, checked (core/redact.h) */
    char redact_query[1024];    /* HTTPTAPE_REDACT_QUERY */
    char redact_fields[1024];   /* HTTPTAPE_REDACT_FIELDS */
    char service_name[129];     /* OTEL_SERVICE_NAME, else HTTPTAPE_SERVICE_NAME; "" = each
                                 * process's executable name */
    char redact_key[257];       /* HTTPTAPE_REDACT_KEY; "" = plain "REDACTED" */
};

/* A size: digits with an optional k/m/g suffix (powers of 1024, any case).
 * 0 and *out set, or -EINVAL (sign, letters, overflow, empty). */
int ht_parse_size(const char *s, uint64_t *out);

/* A boolean: 1/0, true/false, yes/no, on/off (any case). 0 or -EINVAL. */
int ht_parse_bool(const char *s, bool *out);

/* Validate one setting by variable name ("HTTPTAPE_MAX_BODY" ...) and store
 * it in c. 0, or -EINVAL with a one-line reason in err naming the variable
 * and the accepted form. The value quoted in err has its control and
 * non-ASCII bytes written as \n, \r, \t or \xNN, so err is one printable
 * line whatever the value holds. */
int ht_config_set(struct ht_config *c, const char *name, const char *value,
                  char *err, size_t errlen);

/* The defaults of every setting (log path: HT_DEFAULT_LOG, relative). */
void ht_config_defaults(struct ht_config *c);

/* Only the redaction settings (HTTPTAPE_REDACT*) from the environment, over
 * what c holds; for front ends that take no other variable (replay). 0 or
 * -EINVAL with err filled as above. */
int ht_config_redact_from_env(struct ht_config *c, char *err, size_t errlen);

/* Defaults, then every HTTPTAPE_* variable of the environment that is set.
 * A relative log path is made absolute against the current directory.
 * 0, or -EINVAL with err filled as above. */
int ht_config_from_env(struct ht_config *c, char *err, size_t errlen);

/* Is the log path a file (not "-", "unix:PATH" or "fd:N")? */
bool ht_config_log_is_file(const char *log_path);

/* The descriptor an "fd:N" log path names, or -1 for any other path. */
int ht_config_log_fd(const char *log_path);

/* For "fd:N": is descriptor N open in this process? 0, or -EBADF with
 * err saying so. Any other path: 0. */
int ht_config_log_fd_open(const char *log_path, char *err, size_t errlen);

/* Expand "%p" in the log path to pid into out. 0 or -ENAMETOOLONG. */
int ht_config_log_path(const struct ht_config *c, int pid, char *out, size_t outlen);

#endif
