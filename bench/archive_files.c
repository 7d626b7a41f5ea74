/* lp-archive-files CODEC LEVEL DST_DIR FILE...: archives each file with the
 * retention worker's lp_archive_file (compress, verify, fsync, rename,
 * unlink) and prints "files bytes_in bytes_out" (bench/retention/run.sh). */
#include "archive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s zstd|gzip LEVEL DST_DIR FILE...\n", argv[0]);
        return 2;
    }
    enum lp_codec codec = strcmp(argv[1], "gzip") == 0 ? LP_CODEC_GZIP : LP_CODEC_ZSTD;
    int level = atoi(argv[2]);
    unsigned long long in = 0, out = 0;
    for (int i = 4; i < argc; i++) {
        struct lp_archive_stats st;
        char err[512];
        if (lp_archive_file(argv[i], argv[3], codec, level, &st, err, sizeof(err))) {
            fprintf(stderr, "lp-archive-files: %s\n", err);
            return 1;
        }
        in += st.bytes_in;
        out += st.bytes_out;
    }
    printf("%d %llu %llu\n", argc - 4, in, out);
    return 0;
}
