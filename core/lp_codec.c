/* zstd and gzip (zlib) behind one interface, with capped streaming
 * decompression: output grows in steps and never past the cap. */
#include "lp_codec.h"

#include "lp_buf.h"
#include "lp_error.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* Frames that do not say their size are decoded through a window buffer
 * the decoder allocates (and keeps): refuse windows over 8 MiB (what zstd
 * uses up to level 19 without --long). Frames that say their size, as
 * logpipe's encoder writes them, are decoded straight into the output with
 * no window buffer at all. */
#define ZSTD_WINDOW_LOG_MAX 23

const char *lp_codec_name(enum lp_codec c)
{
    switch (c) {
    case LP_CODEC_ZSTD: return "zstd";
    case LP_CODEC_GZIP: return "gzip";
    default: return "identity";
    }
}

int lp_codec_parse(const char *name, enum lp_codec *out)
{
    if (strcmp(name, "zstd") == 0)
        *out = LP_CODEC_ZSTD;
    else if (strcmp(name, "gzip") == 0)
        *out = LP_CODEC_GZIP;
    else if (strcmp(name, "identity") == 0 || strcmp(name, "none") == 0)
        *out = LP_CODEC_IDENTITY;
    else
        return LP_EUNSUPP;
    return 0;
}

void lp_codec_ctx_release(struct lp_codec_ctx *ctx)
{
    if (!ctx)
        return;
    ZSTD_freeCCtx(ctx->zc);
    ZSTD_freeDCtx(ctx->zd);
    ctx->zc = NULL;
    ctx->zd = NULL;
}

static int zstd_compress(struct lp_codec_ctx *ctx, int level, const void *src, size_t n,
                         struct lp_buf *out)
{
    ZSTD_CCtx *zc = ctx ? ctx->zc : NULL;
    if (!zc) {
        zc = ZSTD_createCCtx();
        if (!zc)
            return LP_EINVAL;
        if (ctx)
            ctx->zc = zc;
    }
    /* A frame checksum catches corruption that still decodes (flipped
     * literal bytes); 4 bytes per frame. */
    ZSTD_CCtx_reset(zc, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level ? level : 3);
    ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 1);
    size_t bound = ZSTD_compressBound(n);
    int rc = lp_buf_reserve(out, bound);
    if (rc == 0) {
        size_t w = ZSTD_compress2(zc, out->data + out->len, bound, src, n);
        if (ZSTD_isError(w)) {
            rc = LP_EINVAL;
        } else {
            out->len += w;
            out->data[out->len] = '\0';
        }
    }
    if (!ctx)
        ZSTD_freeCCtx(zc);
    return rc;
}

static int gzip_compress(int level, const void *src, size_t n, struct lp_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level ? level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return LP_EINVAL;
    size_t start = out->len;
    int rc = 0;
    zs.next_in = (Bytef *)src;
    int flush;
    do {
        /* zlib counts in uInt: feed huge inputs in slices */
        size_t left = n - (size_t)((const unsigned char *)zs.next_in - (const unsigned char *)src);
        zs.avail_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
        flush = left > (1u << 30) ? Z_NO_FLUSH : Z_FINISH;
        do {
            size_t chunk = deflateBound(&zs, zs.avail_in) + 64;
            if ((rc = lp_buf_reserve(out, chunk)))
                goto out;
            zs.next_out = (Bytef *)out->data + out->len;
            zs.avail_out = (uInt)chunk;
            int zr = deflate(&zs, flush);
            out->len += chunk - zs.avail_out;
            if (zr == Z_STREAM_ERROR) {
                rc = LP_EINVAL;
                goto out;
            }
        } while (zs.avail_out == 0);
    } while (flush != Z_FINISH);
out:
    deflateEnd(&zs);
    if (rc)
        out->len = start;
    lp_buf_truncate(out, out->len);
    return rc;
}

int lp_codec_compress(struct lp_codec_ctx *ctx, enum lp_codec c, int level, const void *src,
                      size_t n, struct lp_buf *out)
{
    switch (c) {
    case LP_CODEC_ZSTD: return zstd_compress(ctx, level, src, n, out);
    case LP_CODEC_GZIP: return gzip_compress(level, src, n, out);
    case LP_CODEC_IDENTITY: return lp_buf_append(out, src, n);
    }
    return LP_EINVAL;
}

/* Grows out by a step for the next decompression output, within cap.
 * Returns the bytes available, 0 when the cap is reached. */
static size_t grow(struct lp_buf *out, size_t produced, size_t cap, size_t hint)
{
    size_t room = cap - produced;
    if (room == 0)
        return 0;
    size_t step = hint < 64 * 1024 ? 64 * 1024 : hint;
    if (step > 4 * 1024 * 1024)
        step = 4 * 1024 * 1024;
    if (step > room)
        step = room;
    if (lp_buf_reserve(out, step))
        return 0;
    return step;
}

/* The decompressed size of src when every frame says its size (the sum),
 * else ZSTD_CONTENTSIZE_UNKNOWN (also for anything malformed: the
 * streaming path then tells what is wrong). */
static unsigned long long sized_total(const void *src, size_t n)
{
    unsigned long long total = 0;
    const char *p = src;
    while (n > 0) {
        unsigned long long fcs = ZSTD_getFrameContentSize(p, n);
        size_t fz = ZSTD_findFrameCompressedSize(p, n);
        if (fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs == ZSTD_CONTENTSIZE_ERROR || ZSTD_isError(fz) ||
            fz > n || fcs > ULLONG_MAX - total)
            return ZSTD_CONTENTSIZE_UNKNOWN;
        total += fcs;
        p += fz;
        n -= fz;
    }
    return total;
}

static int zstd_decompress(struct lp_codec_ctx *ctx, const void *src, size_t n, size_t cap,
                           struct lp_buf *out)
{
    ZSTD_DCtx *zd = ctx ? ctx->zd : NULL;
    if (!zd) {
        zd = ZSTD_createDCtx();
        if (!zd)
            return LP_EINVAL;
        if (ctx)
            ctx->zd = zd;
    }
    ZSTD_DCtx_reset(zd, ZSTD_reset_session_and_parameters);
    ZSTD_DCtx_setParameter(zd, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
    size_t start = out->len;
    int rc = 0;
    ZSTD_inBuffer in = {src, n, 0};
    size_t last = 0; /* 0 when the last frame was complete */
    unsigned long long fcs = ZSTD_getFrameContentSize(src, n);
    size_t hint = (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR && fcs <= cap)
                      ? (size_t)fcs + 1
                      : n * 4;
    if (n == 0) {
        rc = LP_ECORRUPT;
        goto out;
    }
    unsigned long long total = sized_total(src, n);
    if (total != ZSTD_CONTENTSIZE_UNKNOWN) {
        /* every frame says its size: one pass into the output, or refused
         * before any work when over the cap */
        if (total > cap || lp_buf_reserve(out, (size_t)total)) { /* + its NUL */
            rc = LP_ETOOBIG;
            goto out;
        }
        size_t w = ZSTD_decompressDCtx(zd, out->data + out->len, (size_t)total, src, n);
        if (ZSTD_isError(w) || w != total)
            rc = LP_ECORRUPT;
        else
            out->len += w;
        goto out;
    }
    while (in.pos < in.size || last != 0) {
        size_t avail = grow(out, out->len - start, cap, hint);
        /* One spare byte tells "exactly cap" from "more than cap". */
        char spare;
        ZSTD_outBuffer ob = avail ? (ZSTD_outBuffer){out->data + out->len, avail, 0}
                                  : (ZSTD_outBuffer){&spare, 1, 0};
        size_t before_in = in.pos;
        last = ZSTD_decompressStream(zd, &ob, &in);
        if (ZSTD_isError(last)) {
            rc = ZSTD_getErrorCode(last) == ZSTD_error_frameParameter_windowTooLarge ? LP_ETOOBIG
                                                                                     : LP_ECORRUPT;
            goto out;
        }
        if (!avail) {
            if (ob.pos) {
                rc = LP_ETOOBIG;
                goto out;
            }
        } else {
            out->len += ob.pos;
        }
        if (ob.pos == 0 && in.pos == before_in && last != 0) {
            /* no progress: input exhausted inside a frame */
            if (in.pos == in.size) {
                rc = LP_ECORRUPT;
                goto out;
            }
        }
    }
out:
    if (!ctx)
        ZSTD_freeDCtx(zd);
    if (rc)
        out->len = start;
    lp_buf_truncate(out, out->len);
    return rc;
}

static int gzip_decompress(const void *src, size_t n, size_t cap, struct lp_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return LP_EINVAL;
    size_t start = out->len;
    int rc = 0;
    const unsigned char *p = src;
    size_t consumed = 0;
    if (n == 0) {
        rc = LP_ECORRUPT;
        goto out;
    }
    for (;;) {
        size_t left = n - consumed;
        zs.next_in = (Bytef *)p + consumed;
        zs.avail_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
        size_t avail = grow(out, out->len - start, cap, n * 4);
        unsigned char spare;
        zs.next_out = avail ? (Bytef *)out->data + out->len : &spare;
        zs.avail_out = avail ? (uInt)(avail > (1u << 30) ? (1u << 30) : avail) : 1;
        uInt had_out = zs.avail_out, had_in = zs.avail_in;
        int zr = inflate(&zs, Z_NO_FLUSH);
        size_t produced = had_out - zs.avail_out;
        consumed += had_in - zs.avail_in;
        if (!avail && produced) {
            rc = LP_ETOOBIG;
            goto out;
        }
        if (avail)
            out->len += produced;
        if (zr == Z_STREAM_END) {
            if (consumed == n)
                break;
            /* another gzip member follows */
            if (inflateReset(&zs) != Z_OK) {
                rc = LP_ECORRUPT;
                goto out;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && consumed == n && produced == 0) {
            rc = LP_ECORRUPT; /* truncated */
            goto out;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = LP_ECORRUPT;
            goto out;
        }
    }
out:
    inflateEnd(&zs);
    if (rc)
        out->len = start;
    lp_buf_truncate(out, out->len);
    return rc;
}

size_t lp_codec_stated_size(enum lp_codec c, const void *src, size_t n)
{
    if (c == LP_CODEC_IDENTITY)
        return n;
    if (c != LP_CODEC_ZSTD || n == 0)
        return 0;
    unsigned long long total = sized_total(src, n);
    return total == ZSTD_CONTENTSIZE_UNKNOWN || total > SIZE_MAX ? 0 : (size_t)total;
}

int lp_codec_decompress(struct lp_codec_ctx *ctx, enum lp_codec c, const void *src, size_t n,
                        size_t cap, struct lp_buf *out)
{
    /* Lend the cap to the buffer so its growth never allocates past it. */
    size_t saved = out->limit;
    if (cap < SIZE_MAX - out->len && (!saved || out->len + cap < saved))
        out->limit = out->len + cap;
    int rc = LP_EINVAL;
    switch (c) {
    case LP_CODEC_ZSTD: rc = zstd_decompress(ctx, src, n, cap, out); break;
    case LP_CODEC_GZIP: rc = gzip_decompress(src, n, cap, out); break;
    case LP_CODEC_IDENTITY: rc = n > cap ? LP_ETOOBIG : lp_buf_append(out, src, n); break;
    }
    out->limit = saved;
    return rc;
}
