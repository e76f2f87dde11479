/*
 * mkseed.c - turn a golden case (tests/cases/NAME/{client,server}) into a
 * fuzz_conn input (see fuzz_conn.c for the layout). Usage:
 *   mkseed CASE_DIR OUT_FILE
 */
#include <stdio.h>
#include <stdlib.h>

static long slurp(const char *path, unsigned char **out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *out = malloc(n ? (size_t)n : 1);
    if (fread(*out, 1, (size_t)n, f) != (size_t)n)
        n = -1;
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    char path[4096];
    unsigned char *cli, *srv;
    if (argc != 3) {
        fputs("usage: mkseed CASE_DIR OUT_FILE\n", stderr);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/client", argv[1]);
    long cn = slurp(path, &cli);
    snprintf(path, sizeof(path), "%s/server", argv[1]);
    long sn = slurp(path, &srv);
    FILE *o = fopen(argv[2], "wb");
    if (cn < 0 || sn < 0 || !o) {
        perror(argv[1]);
        return 1;
    }
    /* cap 4096, head limit 64 KiB, cuts in the middle */
    unsigned char hdr[9] = { 2 | (6 << 3), (unsigned char)(cn / 2 >> 8), (unsigned char)(cn / 2),
                             (unsigned char)(sn / 2 >> 8), (unsigned char)(sn / 2),
                             (unsigned char)(cn >> 24), (unsigned char)(cn >> 16),
                             (unsigned char)(cn >> 8), (unsigned char)cn };
    fwrite(hdr, 1, sizeof(hdr), o);
    fwrite(cli, 1, (size_t)cn, o);
    fwrite(srv, 1, (size_t)sn, o);
    return fclose(o) ? 1 : 0;
}
