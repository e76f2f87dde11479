/*
 * bench_encoder.c - how many events per second one writer sustains.
 *
 *   build/bench_encoder [N [fastapi|nginx]]
 *
 * A typical exchange (fastapi, the default: a JSON POST and its JSON
 * answer, about 560 bytes as an event; nginx: wrk's GET of a 100-byte file
 * and nginx's answer, about 1.1 KB) is built through the real parser and
 * pairing, then:
 *  1. formatted N times (the encoder alone, one thread);
 *  2. parsed, paired and formatted N times afresh: the collector's work on
 *     an exchange but for reading the ring and writing the log;
 *  3. pushed N times through the real sink (queue + writer thread + a log
 *     file in /tmp), timing until the writer has written them all.
 * Prints one line per figure. Not a test: numbers depend on the machine;
 * under `valgrind --tool=callgrind` the instruction counts are not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/conn.h"
#include "core/event.h"
#include "core/sink.h"
#include "core/stats.h"

static const char req[] =
    "POST /submit HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\n"
    "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"item\":\"server\"}";
static const char resp[] =
    "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 00:00:00 GMT\r\nserver: uvicorn\r\n"
    "content-length: 46\r\ncontent-type: application/json\r\n\r\n"
    "{\"status\":\"received\",\"data\":{\"item\":\"server\"}}";
static const char ng_req[] =
    "GET /small.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
static const char ng_resp[] =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 18:05:24 GMT\r\n"
    "Content-Type: text/plain\r\nContent-Length: 100\r\n"
    "Last-Modified: Mon, 07 Dec 2026 17:56:57 GMT\r\nConnection: keep-alive\r\n"
    "ETag: \"6b16f369-64\"\r\nAccept-Ranges: bytes\r\n\r\n"
    "QXThkxs9WjvmDEaP88dx6iBuOd84NGbz/mvsK7C4JeacMq8ImbFLtOAhhMils+OwJQet3ilRx/RSVudXLsbk+8rfWrVdEDhcpD+q";
static const char *the_req = req, *the_resp = resp;

static struct ht_exchange *made;

static void keep(void *ctx, struct ht_exchange *ex)
{
    (void)ctx;
    made = ex;
}

static struct ht_exchange *typical(void)
{
    static const struct ht_conn_cfg cfg = { .max_body = 4096, .max_header = 65536, .mode = "preload" };
    struct ht_endpoints ep = { .transport = "tcp", .peer_addr = "127.0.0.1", .peer_port = 51234,
                               .local_addr = "127.0.0.1", .local_port = 8000 };
    struct ht_clock now = { .wall_ns = 1763769600000000000LL, .mono_ns = 1000 };
    struct ht_conn c;
    ht_conn_init(&c, &cfg, &ep, "4242-1", 4242, keep, NULL);
    ht_conn_feed(&c, HT_REQ, (const uint8_t *)the_req, strlen(the_req), &now, 0);
    now.mono_ns += 50000;
    ht_conn_feed(&c, HT_RESP, (const uint8_t *)the_resp, strlen(the_resp), &now, 0);
    ht_conn_finish(&c, &now, 0);
    return made;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    if (argc > 2 && !strcmp(argv[2], "nginx")) {
        the_req = ng_req;
        the_resp = ng_resp;
    } else if (argc > 2 && strcmp(argv[2], "fastapi")) {
        fprintf(stderr, "usage: bench_encoder [N [fastapi|nginx]]\n");
        return 2;
    }
    struct ht_exchange *ex = typical();
    struct ht_buf out = { 0 };

    ht_event_format(ex, &out);
    size_t one = out.len;
    double t0 = seconds();
    for (long i = 0; i < n; i++) {
        ht_buf_reset(&out);
        ht_event_format(ex, &out);
    }
    double fmt = seconds() - t0;
    printf("encoder: %.0f events/s formatted (%zu-byte event, %.2f us each)\n",
           n / fmt, one - 1, fmt / n * 1e6);

    /* Parse, pair and format, a new exchange each time. */
    t0 = seconds();
    for (long i = 0; i < n; i++) {
        struct ht_exchange *e = typical();
        ht_buf_reset(&out);
        ht_event_format(e, &out);
        ht_exchange_free(e);
    }
    double all = seconds() - t0;
    printf("pipeline: %.0f exchanges/s parsed, paired and formatted (%.2f us each)\n",
           n / all, all / n * 1e6);

    /* Through the sink: queue, writer thread, file. */
    long m = n < 100000 ? n : 100000;
    struct ht_config cfg;
    char err[256];
    char path[] = "/tmp/bench_encoder_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || ht_config_from_env(&cfg, err, sizeof(err)))
        return 1;
    close(fd);
    snprintf(cfg.log_path, sizeof(cfg.log_path), "%s", path);
    cfg.queue_len = (uint32_t)m + 16;
    cfg.stats_interval = 0;
    ht_sink_configure(&cfg, "preload");
    if (ht_sink_start())
        return 1;
    struct ht_exchange **copies = malloc((size_t)m * sizeof(*copies));
    for (long i = 0; i < m; i++)
        copies[i] = typical();
    t0 = seconds();
    for (long i = 0; i < m; i++)
        ht_sink_push(copies[i]);
    while (HT_STAT_GET(exchanges_written) + HT_STAT_GET(dropped_queue_full) < (uint64_t)m)
        usleep(1000);
    double sink = seconds() - t0;
    printf("writer: %.0f events/s written to a file by one writer thread (%ld events, %llu dropped)\n",
           m / sink, m, (unsigned long long)HT_STAT_GET(dropped_queue_full));
    ht_sink_shutdown();
    unlink(path);
    free(copies);
    ht_exchange_free(ex);
    ht_buf_free(&out);
    return 0;
}
