/*
 * test_collector.c - registration and the collector's loop, with real
 * processes: children register rings (memfd + pidfd over the abstract
 * socket) and write records; the collector hands over every record in
 * order, says each process is gone only after its last record, refuses a
 * caller without the token or with an unsealed ring, and returns once the
 * process it waits for and every registered one are gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "capture/register.h"
#include "capture/ring.h"
#include "collector/collector.h"
#include "tap.h"

#define DATA (64u << 10)
#define PER_CHILD 20000

struct seen {
    int32_t pids[8];
    uint64_t next[8];
    bool gone[8];
    bool gone_early;                /* a record after its process was said gone */
    bool bad;
    int n;
    uint64_t records;
};

static int slot(struct seen *s, int32_t pid)
{
    for (int i = 0; i < s->n; i++)
        if (s->pids[i] == pid)
            return i;
    if (s->n == 8)
        return -1;
    s->pids[s->n] = pid;
    return s->n++;
}

static void on_record(void *ctx, int32_t pid, int32_t ppid, uint16_t type, const void *p,
                      uint32_t len)
{
    (void)ppid;
    struct seen *s = ctx;
    int i = slot(s, pid);
    uint64_t seq;
    if (i < 0 || len < 8 || type != 7) {
        s->bad = true;
        return;
    }
    memcpy(&seq, p, 8);
    if (seq < s->next[i])
        s->bad = true;
    if (s->gone[i])
        s->gone_early = true;
    s->next[i] = seq + 1;
    s->records++;
}

static void on_gone(void *ctx, int32_t pid)
{
    struct seen *s = ctx;
    int i = slot(s, pid);
    if (i >= 0)
        s->gone[i] = true;
}

/* A child: its own ring, registered, then n records (waiting for room
 * when the ring is full, so that none is lost). */
static void child(const struct ht_reg_addr *a, int n, bool seal_ok)
{
    struct ht_ring r;
    void *map;
    int fd;
    if (ht_reg_ring_new(DATA, getpid(), &r, &map, &fd))
        _exit(10);
    if (!seal_ok) {
        /* An unsealed copy of the ring: must be refused. */
        int u = (int)syscall(SYS_memfd_create, "plain", 0);
        if (u < 0 || ftruncate(u, (off_t)ht_reg_map_size(DATA)))
            _exit(11);
        fd = u;
    }
    if (ht_reg_send(a, fd, DATA))
        _exit(12);
    for (uint64_t i = 0; i < (uint64_t)n; i++) {
        struct ht_ring_res res;
        int tries = 0;
        while (!ht_ring_reserve(&r, 7, 8 + (uint32_t)(i % 64), &res)) {
            if (++tries > 200000)
                _exit(13);
            usleep(50);
        }
        memcpy(res.payload, &i, 8);
        ht_ring_commit(&r, &res);
    }
    _exit(0);
}

static int pidfd_of(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static void test_children(void)
{
    struct ht_reg_addr a;
    ht_reg_new(&a, getpid());
    struct seen s = { 0 };
    struct ht_coll_ops ops = { .record = on_record, .process_gone = on_gone, .ctx = &s };
    /* The process waited for: a child that lives a little longer than the others. */
    pid_t waited = fork();
    if (waited == 0) {
        usleep(300000);
        _exit(0);
    }
    int err = 0;
    struct ht_collector *c = ht_coll_new(&a, pidfd_of(waited), &ops, &err);
    tap_ok(c != NULL, "collector: listens on its abstract address (%d)", err);
    if (!c)
        return;
    pid_t kids[3];
    for (int k = 0; k < 3; k++)
        if ((kids[k] = fork()) == 0)
            child(&a, PER_CHILD, true);
    /* A caller with the wrong token. */
    struct ht_reg_addr wrong = a;
    wrong.token[0] ^= 1;
    pid_t bad = fork();
    if (bad == 0)
        child(&wrong, 10, true);
    pid_t unsealed = fork();
    if (unsealed == 0)
        child(&a, 10, false);

    alarm(60);                  /* bounded: a hang fails the whole binary */
    ht_coll_run(c, NULL, false);
    alarm(0);
    int st, ok_exit = 1;
    for (int k = 0; k < 3; k++)
        ok_exit &= waitpid(kids[k], &st, 0) == kids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    waitpid(waited, &st, 0);
    waitpid(bad, &st, 0);
    waitpid(unsealed, &st, 0);
    struct ht_coll_counts k;
    ht_coll_counts(c, &k);
    bool all = s.n == 3;
    for (int i = 0; i < s.n; i++)
        all &= s.next[i] == PER_CHILD && s.gone[i];
    tap_ok(ok_exit && all && !s.bad && s.records == 3 * PER_CHILD,
           "collector: 3 registered processes x %d records: all handed over, in order, then each said gone",
           PER_CHILD);
    tap_ok(!s.gone_early, "collector: no record comes after its process was said gone");
    tap_ok(k.refused == 2 && k.processes == 3,
           "collector: a caller without the token and an unsealed ring are refused (%llu refused)",
           (unsigned long long)k.refused);
    ht_coll_free(c);
}

/* A writer that stalls between reserving and committing (stopped, paging)
 * for longer than any give-up time: its record and the ones after it come
 * out whole and in order once it goes on; nothing is skipped under it. */
static void stalled_child(const struct ht_reg_addr *a)
{
    struct ht_ring r;
    void *map;
    int fd;
    if (ht_reg_ring_new(DATA, getpid(), &r, &map, &fd) || ht_reg_send(a, fd, DATA))
        _exit(10);
    struct ht_ring_res first;
    if (!ht_ring_reserve(&r, 7, 64, &first))
        _exit(11);
    uint64_t zero = 0;
    memcpy(first.payload, &zero, 8);
    usleep(2600000);
    memset((uint8_t *)first.payload + 8, 0xab, 56);
    ht_ring_commit(&r, &first);
    for (uint64_t i = 1; i < 100; i++) {
        struct ht_ring_res res;
        if (!ht_ring_reserve(&r, 7, 64, &res))
            _exit(12);
        memcpy(res.payload, &i, 8);
        memset((uint8_t *)res.payload + 8, 0xab, 56);
        ht_ring_commit(&r, &res);
    }
    _exit(0);
}

static struct {
    uint64_t next, got;
    bool bad;
} stall;

static void on_stalled(void *ctx, int32_t pid, int32_t ppid, uint16_t type, const void *p,
                       uint32_t len)
{
    uint64_t seq;
    (void)ctx, (void)pid, (void)ppid, (void)type;
    memcpy(&seq, p, 8);
    const uint8_t *b = p;
    for (uint32_t i = 8; i < len; i++)
        stall.bad |= b[i] != 0xab;
    stall.bad |= seq != stall.next || len != 64;
    stall.next = seq + 1;
    stall.got++;
}

static void test_stalled_writer(void)
{
    struct ht_reg_addr a;
    ht_reg_new(&a, getpid());
    struct seen s = { 0 };
    struct ht_coll_ops ops = { .record = on_stalled, .process_gone = on_gone, .ctx = &s };
    pid_t kid = fork();
    if (kid == 0) {
        usleep(100000);
        stalled_child(&a);
    }
    int err = 0;
    struct ht_collector *c = ht_coll_new(&a, pidfd_of(kid), &ops, &err);
    alarm(60);
    ht_coll_run(c, NULL, false);
    alarm(0);
    int st;
    waitpid(kid, &st, 0);
    tap_ok(c && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !stall.bad && stall.got == 100,
           "collector: a writer stalled 2.6 s inside a record: it and the 99 after it come out whole, "
           "in order (%llu)", (unsigned long long)stall.got);
    ht_coll_free(c);
}

/* A source besides the rings (attach's BPF ring buffer in real use): a
 * pipe a child writes one byte per record into. */
struct pipe_src {
    int fd;
    size_t got, drains;
    volatile int *stop;
    size_t stop_after;              /* set *stop on this drain (0: never) */
    bool endless;                   /* every drain hands over one record */
};

static size_t drain_pipe(void *ctx)
{
    struct pipe_src *p = ctx;
    char buf[64];
    size_t n = 0;
    ssize_t r;
    if (++p->drains == p->stop_after)
        *p->stop = 1;
    if (p->endless)
        return 1;
    while ((r = read(p->fd, buf, sizeof(buf))) > 0)
        n += (size_t)r;
    p->got += n;
    return n;
}

static void test_source(void)
{
    int pfd[2];
    if (pipe2(pfd, O_NONBLOCK | O_CLOEXEC)) {
        tap_ok(0, "collector: a pipe for the source");
        return;
    }
    pid_t kid = fork();
    if (kid == 0) {
        for (int i = 0; i < 50; i++) {
            (void)!write(pfd[1], "r", 1);
            usleep(1000);
        }
        _exit(0);
    }
    close(pfd[1]);
    struct ht_coll_ops ops = { 0 };
    struct pipe_src src = { .fd = pfd[0] };
    struct ht_coll_source cs = { .drain = drain_pipe, .fd = pfd[0], .ctx = &src };
    int err = 0;
    struct ht_collector *c = ht_coll_new(NULL, pidfd_of(kid), &ops, &err);
    bool added = c && ht_coll_add_source(c, &cs) == 0;
    alarm(60);
    if (added)
        ht_coll_run(c, NULL, false);
    alarm(0);
    waitpid(kid, NULL, 0);
    drain_pipe(&src);               /* the caller drains a source last */
    tap_ok(added && src.got == 50 && src.drains > 2,
           "collector: with no registration socket, a source is drained by the loop until the "
           "process waited for is gone (%zu records, %zu drains)", src.got, src.drains);
    ht_coll_free(c);
    close(pfd[0]);

    /* Records that never stop flowing do not hold off a stop. */
    volatile int stop = 0;
    struct pipe_src endless = { .fd = -1, .stop = &stop, .stop_after = 1000, .endless = true };
    cs = (struct ht_coll_source){ .drain = drain_pipe, .fd = -1, .ctx = &endless };
    c = ht_coll_new(NULL, -1, &ops, &err);
    added = c && ht_coll_add_source(c, &cs) == 0;
    alarm(60);
    if (added)
        ht_coll_run(c, &stop, true);
    alarm(0);
    tap_ok(added && endless.drains == 1000,
           "collector: a stop is taken on the next pass even while a source always has records "
           "(%zu drains)", endless.drains);
    ht_coll_free(c);
}

static void test_no_collector(void)
{
    struct ht_reg_addr a;
    ht_reg_new(&a, getpid());
    struct ht_ring r;
    void *map;
    int fd;
    int rc = ht_reg_ring_new(DATA, getpid(), &r, &map, &fd);
    int sent = rc ? rc : ht_reg_send(&a, fd, DATA);
    tap_ok(sent == -ECONNREFUSED, "register: with no collector listening, registering fails at once (%d)",
           sent);
    tap_ok(fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK, "register: a new ring's memfd is sealed against shrinking");
    close(fd);
    munmap(map, ht_reg_map_size(DATA));
}

static void test_addr(void)
{
    struct ht_reg_addr a, b;
    char s[128];
    ht_reg_new(&a, 42);
    ht_reg_format(&a, s, sizeof(s));
    tap_ok(ht_reg_parse(s, &b) == 0 && !strcmp(a.name, b.name) && !memcmp(a.token, b.token, 16),
           "register: an address survives formatting and parsing (%s)", s);
    tap_ok(ht_reg_parse("x", &b) == -EINVAL && ht_reg_parse("a:00", &b) == -EINVAL &&
           ht_reg_parse("A B:00000000000000000000000000000000", &b) == -EINVAL,
           "register: malformed HTTPTAPE_COLLECTOR values are refused");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_addr();
    test_no_collector();
    test_children();
    test_stalled_writer();
    test_source();
    return tap_done();
}
