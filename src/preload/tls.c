/*
 * tls.c - the TLS library calls we interpose: OpenSSL 3's SSL_read,
 * SSL_read_ex, SSL_write, SSL_write_ex (the plaintext), SSL_do_handshake
 * and SSL_accept (the session's parameters), SSL_shutdown (the end of
 * the server's plaintext) and SSL_free. docs/tls.md says what is covered.
 *
 * Like the libc hooks, each calls the real function first and returns
 * exactly what it returned, errno as it left it; only calls on an SSL
 * whose socket is a tracked connection are reported. libssl is never
 * linked in: the real functions are found on first use, with
 * dlsym(RTLD_NEXT) when libssl is in the global scope (nginx, curl), else
 * in the libssl a module loaded with dlopen(RTLD_LOCAL) brought in
 * (python's _ssl), which our exported names still interpose.
 *
 * The socket of an SSL is the fd of its read (write) BIO (SSL_get_rfd,
 * SSL_get_wfd). An SSL on memory BIOs (python's asyncio, under uvicorn)
 * has none: a server-side one is bound, at its first call after it read
 * the ClientHello, to the one connection whose client sent a ClientHello
 * with the same client random (SSL_get_client_random; tap.c keeps each
 * connection's), and remembered in a small table until SSL_free. No such
 * connection, or two: it is refused for good, and its plaintext is not
 * recorded (the connection is logged as tls_not_decrypted).
 *
 * Threading: lock-free; the first call of each function resolves it
 * (dlsym takes the loader's lock, once).
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <openssl/ssl.h>

#include "capture/record.h"
#include "preload/tap.h"

#define HT_EXPORT __attribute__((visibility("default")))

/* ---- the real functions ---- */

static struct {
    int (*read)(SSL *, void *, int);
    int (*read_ex)(SSL *, void *, size_t, size_t *);
    int (*write)(SSL *, const void *, int);
    int (*write_ex)(SSL *, const void *, size_t, size_t *);
    int (*do_handshake)(SSL *);
    int (*accept)(SSL *);
    int (*shutdown)(SSL *);
    void (*free)(SSL *);
    int (*get_rfd)(const SSL *);
    int (*get_wfd)(const SSL *);
    int (*is_server)(const SSL *);
    size_t (*client_random)(const SSL *, unsigned char *, size_t);
    const char *(*get_version)(const SSL *);
    const SSL_CIPHER *(*get_current_cipher)(const SSL *);
    const char *(*cipher_name)(const SSL_CIPHER *);
    const char *(*get_servername)(const SSL *, const int);
    void (*alpn_selected)(const SSL *, const unsigned char **, unsigned int *);
} ssl_real;

static void *libssl;                /* a handle on the loaded libssl, when not global */

static int find_libssl(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    (void)ctx;
    const char *name = info->dlpi_name;
    const char *base = name ? strrchr(name, '/') : NULL;
    base = base ? base + 1 : name;
    if (!base || strncmp(base, "libssl.so", 9))
        return 0;
    /* RTLD_NOLOAD: only a library the app already has. */
    void *h = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
    if (h && dlsym(h, "SSL_read")) {
        libssl = h;
        return 1;
    }
    if (h)
        dlclose(h);
    return 0;
}

static void *resolve(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p)
        return p;
    if (!libssl)
        dl_iterate_phdr(find_libssl, NULL);
    return libssl ? dlsym(libssl, name) : NULL;
}

#define SSL_REAL(field, name) \
    (__builtin_expect(ssl_real.field != NULL, 1) ? ssl_real.field : \
     (*(void **)&ssl_real.field = resolve(name), ssl_real.field))

/* A hook whose real function cannot be found (a libssl we cannot reach:
 * loaded with RTLD_DEEPBIND, or gone) fails the call as OpenSSL reports a
 * failure, rather than crash the app. */
#define CALL_REAL(field, name, fail, ...) \
    (SSL_REAL(field, name) ? ssl_real.field(__VA_ARGS__) : (fail))

/* ---- memory-BIO SSLs bound to a connection ---- */

#define BOUND_SLOTS 4096            /* power of two */
#define BOUND_PROBES 16
#define GONE ((const void *)1)
#define REFUSED (-2)                /* bound_fd: no connection is this SSL's */

static struct {
    _Atomic(const void *) ssl;
    _Atomic int fd;
} bound[BOUND_SLOTS];

static unsigned slot_hash(const void *s)
{
    return (unsigned)(((uintptr_t)s * 0x9e3779b97f4a7c15ull) >> 40) & (BOUND_SLOTS - 1);
}

static int bound_fd(const SSL *s)
{
    for (unsigned i = 0, h = slot_hash(s); i < BOUND_PROBES; i++) {
        const void *k = atomic_load_explicit(&bound[(h + i) & (BOUND_SLOTS - 1)].ssl,
                                             memory_order_acquire);
        if (k == s)
            return atomic_load_explicit(&bound[(h + i) & (BOUND_SLOTS - 1)].fd, memory_order_relaxed);
        if (!k)
            return -1;
    }
    return -1;
}

static void bound_put(const SSL *s, int fd)
{
    for (unsigned i = 0, h = slot_hash(s); i < BOUND_PROBES; i++) {
        unsigned j = (h + i) & (BOUND_SLOTS - 1);
        const void *k = atomic_load(&bound[j].ssl);
        if ((k == NULL || k == GONE) &&
            atomic_compare_exchange_strong(&bound[j].ssl, &k, (const void *)GONE)) {
            atomic_store(&bound[j].fd, fd);
            atomic_store_explicit(&bound[j].ssl, (const void *)s, memory_order_release);
            return;
        }
    }
    /* Full: its plaintext is not recorded (the connection is then logged
     * as tls_not_decrypted). */
}

static void bound_drop(const SSL *s)
{
    for (unsigned i = 0, h = slot_hash(s); i < BOUND_PROBES; i++) {
        unsigned j = (h + i) & (BOUND_SLOTS - 1);
        const void *k = atomic_load(&bound[j].ssl);
        if (k == s) {
            atomic_store(&bound[j].ssl, GONE);
            return;
        }
        if (!k)
            return;
    }
}

/* ---- which connection ---- */

/* Bind a server-side memory-BIO SSL to the connection that carried its
 * ClientHello: the fd, or -1 (not yet: it has read no ClientHello). */
static int bind_by_random(SSL *s)
{
    unsigned char r[32] = { 0 };
    if (CALL_REAL(is_server, "SSL_is_server", 0, s) != 1 ||
        CALL_REAL(client_random, "SSL_get_client_random", 0, s, r, sizeof(r)) != sizeof(r))
        return -1;
    unsigned char any = 0;
    for (size_t i = 0; i < sizeof(r); i++)
        any |= r[i];
    if (!any)
        return -1;                  /* all zero: no ClientHello read yet */
    int fd = ht_tap_tls_find(s, r);
    bound_put(s, fd >= 0 ? fd : REFUSED);
    return fd;
}

/* The tracked connection s reads (write: writes) on, or -1; may_bind: a
 * memory-BIO SSL not bound yet may be bound now. */
static int conn_of(SSL *s, bool write, bool may_bind)
{
    int fd = write ? CALL_REAL(get_wfd, "SSL_get_wfd", -1, s) : CALL_REAL(get_rfd, "SSL_get_rfd", -1, s);
    if (fd >= 0)
        return ht_tracked(fd) ? fd : -1;
    /* No socket: a memory BIO. */
    fd = bound_fd(s);
    if (fd >= 0)
        return ht_tap_tls_bound(fd, s) ? fd : -1;
    if (fd == REFUSED || !may_bind)
        return -1;
    return bind_by_random(s);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src ? src : "", n);
    dst[n] = 0;
}

/* What the library says of the session (called once or twice per
 * connection, by ht_tap_tls_used). */
static void session_info(const void *p, struct ht_rec_tls *r)
{
    const SSL *s = p;
    copy_str(r->version, sizeof(r->version), CALL_REAL(get_version, "SSL_get_version", NULL, s));
    const SSL_CIPHER *c = CALL_REAL(get_current_cipher, "SSL_get_current_cipher", NULL, s);
    if (c)
        copy_str(r->cipher, sizeof(r->cipher), CALL_REAL(cipher_name, "SSL_CIPHER_get_name", NULL, c));
    copy_str(r->server_name, sizeof(r->server_name),
             CALL_REAL(get_servername, "SSL_get_servername", NULL, s, TLSEXT_NAMETYPE_host_name));
    const unsigned char *a = NULL;
    unsigned int an = 0;
    if (SSL_REAL(alpn_selected, "SSL_get0_alpn_selected"))
        ssl_real.alpn_selected(s, &a, &an);
    if (a && an) {
        if (an >= sizeof(r->alpn))
            an = sizeof(r->alpn) - 1;
        memcpy(r->alpn, a, an);
        r->alpn[an] = 0;
    }
}

/* After a call on s: n > 0 plaintext bytes moved in direction d (n 0:
 * none); established: the handshake is done. */
static void after(SSL *s, enum ht_dir d, const void *buf, size_t n, bool established)
{
    if (!ht_fdtab_size)
        return;
    int saved = errno;
    int fd = conn_of(s, d == HT_RESP, true);
    if (fd >= 0) {
        ht_tap_tls_used(fd, session_info, s, established);
        if (n > 0)
            ht_tap_tls_plain(fd, d, buf, n);
    }
    errno = saved;
}

/* ---- the hooks ---- */

HT_EXPORT int SSL_read(SSL *s, void *buf, int num)
{
    int r = CALL_REAL(read, "SSL_read", -1, s, buf, num);
    after(s, HT_REQ, buf, r > 0 ? (size_t)r : 0, r > 0);
    return r;
}

HT_EXPORT int SSL_read_ex(SSL *s, void *buf, size_t num, size_t *readbytes)
{
    int r = CALL_REAL(read_ex, "SSL_read_ex", 0, s, buf, num, readbytes);
    after(s, HT_REQ, buf, r == 1 ? *readbytes : 0, r == 1);
    return r;
}

HT_EXPORT int SSL_write(SSL *s, const void *buf, int num)
{
    int r = CALL_REAL(write, "SSL_write", -1, s, buf, num);
    after(s, HT_RESP, buf, r > 0 ? (size_t)r : 0, r > 0);
    return r;
}

HT_EXPORT int SSL_write_ex(SSL *s, const void *buf, size_t num, size_t *written)
{
    int r = CALL_REAL(write_ex, "SSL_write_ex", 0, s, buf, num, written);
    after(s, HT_RESP, buf, r == 1 ? *written : 0, r == 1);
    return r;
}

HT_EXPORT int SSL_do_handshake(SSL *s)
{
    int r = CALL_REAL(do_handshake, "SSL_do_handshake", -1, s);
    after(s, HT_REQ, NULL, 0, r == 1);
    return r;
}

HT_EXPORT int SSL_accept(SSL *s)
{
    int r = CALL_REAL(accept, "SSL_accept", -1, s);
    after(s, HT_REQ, NULL, 0, r == 1);
    return r;
}

/* The server's plaintext ends: a close-delimited response is complete. */
HT_EXPORT int SSL_shutdown(SSL *s)
{
    int r = CALL_REAL(shutdown, "SSL_shutdown", -1, s);
    if (r >= 0 && ht_fdtab_size) {
        int saved = errno;
        int fd = conn_of(s, true, false);
        if (fd >= 0)
            ht_tap_eof(fd, HT_RESP);
        errno = saved;
    }
    return r;
}

HT_EXPORT void SSL_free(SSL *s)
{
    if (s && ht_fdtab_size)
        bound_drop(s);
    if (SSL_REAL(free, "SSL_free"))
        ssl_real.free(s);
}
