/* real.c - resolving the real libc functions (real.h). */
#include "preload/real.h"

#include <dlfcn.h>

struct ht_real ht_real;

#define BIND(field, name) \
    do { if (!ht_real.field) *(void **)&ht_real.field = dlsym(RTLD_NEXT, name); } while (0)

void ht_real_init(void)
{
    BIND(accept, "accept");
    BIND(accept4, "accept4");
    BIND(read, "read");
    BIND(readv, "readv");
    BIND(recv, "recv");
    BIND(recvfrom, "recvfrom");
    BIND(recvmsg, "recvmsg");
    BIND(write, "write");
    BIND(writev, "writev");
    BIND(send, "send");
    BIND(sendto, "sendto");
    BIND(sendmsg, "sendmsg");
    BIND(recvmmsg, "recvmmsg");
    BIND(sendmmsg, "sendmmsg");
    BIND(fdopen, "fdopen");
    BIND(closefrom, "closefrom");
    BIND(uring_queue_init, "io_uring_queue_init");
    BIND(uring_queue_init_params, "io_uring_queue_init_params");
    BIND(uring_queue_init_mem, "io_uring_queue_init_mem");
    BIND(uring_setup, "io_uring_setup");
    BIND(close, "close");
    BIND(shutdown, "shutdown");
    BIND(read_chk, "__read_chk");
    BIND(recv_chk, "__recv_chk");
    BIND(recvfrom_chk, "__recvfrom_chk");
    BIND(sendfile, "sendfile");
    BIND(sendfile64, "sendfile64");
    BIND(splice, "splice");
    BIND(copy_file_range, "copy_file_range");
    BIND(dup, "dup");
    BIND(dup2, "dup2");
    BIND(dup3, "dup3");
    BIND(fcntl, "fcntl");
    BIND(fcntl64, "fcntl64");
    BIND(close_range, "close_range");
}
