/* Compression codecs for batches and archives: zstd, gzip, identity.
 * Decompression always runs against a hard output cap, so a zip bomb ends
 * in LP_ETOOBIG instead of an OOM, and a truncated frame in LP_ECORRUPT. */
#ifndef LP_CODEC_H
#define LP_CODEC_H

#include <stddef.h>

struct lp_buf;

enum lp_codec { LP_CODEC_IDENTITY = 0, LP_CODEC_ZSTD, LP_CODEC_GZIP };

/* "identity", "zstd", "gzip" (the wire's content-encoding names). */
const char *lp_codec_name(enum lp_codec c);
/* Name → codec ("none" is accepted for identity). 0 or LP_EUNSUPP. */
int lp_codec_parse(const char *name, enum lp_codec *out);

/* Reusable compression state (zstd contexts are expensive to create).
 * One owning thread. Embed zeroed (LP_CODEC_CTX_INIT) and release. */
struct lp_codec_ctx {
    void *zc; /* ZSTD_CCtx */
    void *zd; /* ZSTD_DCtx */
};
/* clang-format off */
#define LP_CODEC_CTX_INIT {NULL, NULL}
/* clang-format on */
void lp_codec_ctx_release(struct lp_codec_ctx *ctx);

/* Appends the compressed form of src[0..n) to out. level: zstd 1..19,
 * gzip 1..9, 0 = the codec's default. ctx may be NULL (slower).
 * 0, LP_ETOOBIG (out's limit) or LP_EINVAL. */
int lp_codec_compress(struct lp_codec_ctx *ctx, enum lp_codec c, int level, const void *src,
                      size_t n, struct lp_buf *out);

/* Appends the decompressed form of src[0..n) to out, producing at most cap
 * bytes. Concatenated frames/members are accepted. Returns 0, LP_ETOOBIG
 * (more than cap bytes, or a zstd frame of unknown size with a window over
 * 8 MiB), or LP_ECORRUPT
 * (invalid, truncated, trailing garbage). On error out is restored to its
 * length on entry. */
int lp_codec_decompress(struct lp_codec_ctx *ctx, enum lp_codec c, const void *src, size_t n,
                        size_t cap, struct lp_buf *out);

/* The decompressed size of src[0..n) as the data states it (zstd frames
 * that all say their size; identity: n), or 0 when it does not say (gzip,
 * zstd streamed without a size, or not decodable). Cheap: reads headers
 * only. A stated size is a claim: lp_codec_decompress still enforces it. */
size_t lp_codec_stated_size(enum lp_codec c, const void *src, size_t n);

#endif
