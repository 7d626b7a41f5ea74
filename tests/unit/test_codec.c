/* Codecs: round trips, the decompression cap (zip bombs), truncated and
 * corrupt frames, concatenated frames, oversized zstd windows. */
#include "lp_buf.h"
#include "lp_codec.h"
#include "lp_error.h"
#include "lp_test.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static const enum lp_codec all[] = {LP_CODEC_IDENTITY, LP_CODEC_ZSTD, LP_CODEC_GZIP};

static char *sample(size_t n)
{
    char *p = malloc(n);
    unsigned x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245 + 12345;
        p[i] = (i % 64 < 40) ? "abcdefghij"[i % 10] : (char)(x >> 16); /* half compressible */
    }
    return p;
}

static void test_names(void)
{
    enum lp_codec c;
    CU_ASSERT_EQUAL(lp_codec_parse("zstd", &c), 0);
    CU_ASSERT_EQUAL(c, LP_CODEC_ZSTD);
    CU_ASSERT_EQUAL(lp_codec_parse("none", &c), 0);
    CU_ASSERT_EQUAL(c, LP_CODEC_IDENTITY);
    CU_ASSERT_EQUAL(lp_codec_parse("lz4", &c), LP_EUNSUPP);
    CU_ASSERT_STRING_EQUAL(lp_codec_name(LP_CODEC_GZIP), "gzip");
}

static void test_round_trip(void)
{
    struct lp_codec_ctx ctx = LP_CODEC_CTX_INIT;
    size_t sizes[] = {0, 1, 1000, 300000};
    for (size_t ci = 0; ci < 3; ci++) {
        for (size_t si = 0; si < 4; si++) {
            size_t n = sizes[si];
            char *in = sample(n ? n : 1);
            struct lp_buf z = LP_BUF_INIT, out = LP_BUF_INIT;
            CU_ASSERT_EQUAL_FATAL(lp_codec_compress(ci == 1 ? &ctx : NULL, all[ci], 0, in, n, &z),
                                  0);
            if (all[ci] != LP_CODEC_IDENTITY && n == 300000)
                CU_ASSERT(z.len < n);
            CU_ASSERT_EQUAL(lp_codec_decompress(&ctx, all[ci], z.data, z.len, n, &out), 0);
            CU_ASSERT_EQUAL(out.len, n);
            if (n)
                CU_ASSERT_EQUAL(memcmp(out.data, in, n), 0);
            /* one byte less than the content is over the cap */
            if (n) {
                lp_buf_reset(&out);
                CU_ASSERT_EQUAL(lp_codec_decompress(&ctx, all[ci], z.data, z.len, n - 1, &out),
                                LP_ETOOBIG);
                CU_ASSERT_EQUAL(out.len, 0);
            }
            lp_buf_release(&z);
            lp_buf_release(&out);
            free(in);
        }
    }
    lp_codec_ctx_release(&ctx);
}

static void test_zip_bomb(void)
{
    size_t n = 200u << 20; /* 200 MiB of zeros compress to a few KiB */
    char *zeros = calloc(1, n);
    for (size_t ci = 1; ci < 3; ci++) {
        struct lp_buf z = LP_BUF_INIT, out = LP_BUF_INIT;
        CU_ASSERT_EQUAL_FATAL(lp_codec_compress(NULL, all[ci], 1, zeros, n, &z), 0);
        CU_ASSERT(z.len < 1u << 20);
        CU_ASSERT_EQUAL(lp_codec_decompress(NULL, all[ci], z.data, z.len, 4u << 20, &out),
                        LP_ETOOBIG);
        CU_ASSERT_EQUAL(out.len, 0);
        CU_ASSERT(out.cap <= (4u << 20) + 1); /* never allocated past the cap */
        lp_buf_release(&z);
        lp_buf_release(&out);
    }
    free(zeros);
}

static void test_truncated_and_corrupt(void)
{
    char *in = sample(100000);
    for (size_t ci = 1; ci < 3; ci++) {
        struct lp_buf z = LP_BUF_INIT, out = LP_BUF_INIT;
        lp_codec_compress(NULL, all[ci], 0, in, 100000, &z);
        size_t cuts[] = {1, 5, z.len / 2, z.len - 1};
        for (size_t k = 0; k < 4; k++) {
            lp_buf_reset(&out);
            CU_ASSERT_EQUAL(lp_codec_decompress(NULL, all[ci], z.data, cuts[k], 1 << 20, &out),
                            LP_ECORRUPT);
            CU_ASSERT_EQUAL(out.len, 0);
        }
        /* flip a byte in the middle: checksum / structure error */
        z.data[z.len / 2] ^= 0x55;
        lp_buf_reset(&out);
        CU_ASSERT_EQUAL(lp_codec_decompress(NULL, all[ci], z.data, z.len, 1 << 20, &out),
                        LP_ECORRUPT);
        lp_buf_reset(&out);
        CU_ASSERT_EQUAL(lp_codec_decompress(NULL, all[ci], "garbage!", 8, 1 << 20, &out),
                        LP_ECORRUPT);
        CU_ASSERT_EQUAL(lp_codec_decompress(NULL, all[ci], "", 0, 1 << 20, &out), LP_ECORRUPT);
        lp_buf_release(&z);
        lp_buf_release(&out);
    }
    free(in);
}

static void test_concatenated_and_trailing(void)
{
    for (size_t ci = 1; ci < 3; ci++) {
        struct lp_buf z = LP_BUF_INIT, out = LP_BUF_INIT;
        lp_codec_compress(NULL, all[ci], 0, "hello ", 6, &z);
        lp_codec_compress(NULL, all[ci], 0, "world", 5, &z);
        CU_ASSERT_EQUAL(lp_codec_decompress(NULL, all[ci], z.data, z.len, 100, &out), 0);
        CU_ASSERT_STRING_EQUAL(out.data, "hello world");
        lp_buf_append(&z, "xx", 2); /* trailing garbage is not a valid frame */
        lp_buf_reset(&out);
        CU_ASSERT_EQUAL(lp_codec_decompress(NULL, all[ci], z.data, z.len, 100, &out), LP_ECORRUPT);
        lp_buf_release(&z);
        lp_buf_release(&out);
    }
}

static void test_zstd_window_too_large(void)
{
    /* A streaming frame without a content size declares a 1 GiB window:
     * decoding it would need that much memory, so it is refused. */
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 30);
    char src[1000];
    memset(src, 'a', sizeof(src));
    char dst[2000];
    ZSTD_outBuffer ob = {dst, sizeof(dst), 0};
    ZSTD_inBuffer ib = {src, sizeof(src), 0};
    ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_continue); /* size unknown at frame start */
    ZSTD_inBuffer none = {src, 0, 0};
    size_t r = ZSTD_compressStream2(cc, &ob, &none, ZSTD_e_end);
    CU_ASSERT_EQUAL_FATAL(r, 0);
    ZSTD_freeCCtx(cc);
    struct lp_buf out = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_codec_decompress(NULL, LP_CODEC_ZSTD, dst, ob.pos, 1 << 20, &out),
                    LP_ETOOBIG);
    lp_buf_release(&out);
}

/* A frame of windowLog wlog, with or without its content size. */
static size_t zstd_frame(int wlog, int sized, const char *src, size_t n, char *dst, size_t cap)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, wlog);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    if (sized)
        ZSTD_CCtx_setPledgedSrcSize(cc, n);
    ZSTD_outBuffer ob = {dst, cap, 0};
    ZSTD_inBuffer ib = {src, n, 0};
    if (!sized) /* all input at once with e_end would let it write the size */
        ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_continue);
    size_t r = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
    ZSTD_freeCCtx(cc);
    return r == 0 ? ob.pos : 0;
}

static void test_zstd_window_sized(void)
{
    /* Unknown size: the window is what the decoder must allocate, so 16 MiB
     * (windowLog 24) is refused while 8 MiB is fine; a frame that says its
     * size is decoded into the output without a window, whatever it says. */
    enum { N = 200000 };
    char *src = malloc(N), *dst = malloc(N);
    for (size_t i = 0; i < N; i++)
        src[i] = (char)('a' + (i * 7 + i / 13) % 26);
    struct lp_buf out = LP_BUF_INIT;
    size_t z = zstd_frame(24, 0, src, N, dst, N);
    CU_ASSERT_FATAL(z > 0);
    CU_ASSERT_EQUAL(lp_codec_decompress(NULL, LP_CODEC_ZSTD, dst, z, 1 << 20, &out), LP_ETOOBIG);
    z = zstd_frame(23, 0, src, N, dst, N);
    CU_ASSERT_EQUAL(lp_codec_decompress(NULL, LP_CODEC_ZSTD, dst, z, 1 << 20, &out), 0);
    CU_ASSERT(out.len == N && memcmp(out.data, src, N) == 0);
    lp_buf_reset(&out);
    z = zstd_frame(27, 1, src, N, dst, N);
    CU_ASSERT_EQUAL(lp_codec_decompress(NULL, LP_CODEC_ZSTD, dst, z, 1 << 20, &out), 0);
    CU_ASSERT(out.len == N && memcmp(out.data, src, N) == 0);
    lp_buf_reset(&out);
    /* a frame that says it is over the cap is refused before any work */
    CU_ASSERT_EQUAL(lp_codec_decompress(NULL, LP_CODEC_ZSTD, dst, z, N - 1, &out), LP_ETOOBIG);
    CU_ASSERT_EQUAL(out.len, 0);
    /* a damaged frame of known size is corrupt */
    z = zstd_frame(20, 1, src, N, dst, N);
    CU_ASSERT_FATAL(z > 8);
    dst[z - 1] ^= 0x55; /* the checksum */
    CU_ASSERT_EQUAL(lp_codec_decompress(NULL, LP_CODEC_ZSTD, dst, z, 1 << 20, &out), LP_ECORRUPT);
    lp_buf_release(&out);
    free(src);
    free(dst);
}

static void test_identity_cap(void)
{
    struct lp_buf out = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_codec_decompress(NULL, LP_CODEC_IDENTITY, "abc", 3, 2, &out), LP_ETOOBIG);
    CU_ASSERT_EQUAL(lp_codec_decompress(NULL, LP_CODEC_IDENTITY, "abc", 3, 3, &out), 0);
    CU_ASSERT_STRING_EQUAL(out.data, "abc");
    lp_buf_release(&out);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"names", test_names},
        {"round trip", test_round_trip},
        {"zip bomb", test_zip_bomb},
        {"truncated and corrupt", test_truncated_and_corrupt},
        {"concatenated and trailing", test_concatenated_and_trailing},
        {"zstd window too large", test_zstd_window_too_large},
        {"zstd window, sized frames", test_zstd_window_sized},
        {"identity cap", test_identity_cap},
        {NULL, NULL},
    };
    return lp_test_run("codec", tests);
}
