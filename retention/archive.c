/* Archiving one closed segment, crash-safely (archive.h). */
#include "archive.h"
#include "lp_alloc.h"

#include "lp_error.h"
#include "lp_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>
#include <zstd.h>

void (*lp_archive_step_hook)(int step);
int (*lp_archive_write_hook)(void);

enum { CHUNK = 1 << 17 };

int lp_archive_name(const char *src, const char *dst_dir, enum lp_codec codec, char *out,
                    size_t outlen)
{
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    const char *ext = codec == LP_CODEC_GZIP ? ".gz" : ".zst";
    int n = snprintf(out, outlen, "%s/%s%s", dst_dir, base, ext);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int dir_of(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return snprintf(out, outlen, ".") < 0 ? -EINVAL : 0;
    size_t n = (size_t)(slash - path);
    if (n >= outlen)
        return -ENAMETOOLONG;
    memcpy(out, path, n ? n : 1);
    out[n ? n : 1] = '\0';
    return 0;
}

static int read_full(int fd, unsigned char *buf, size_t n, size_t *got)
{
    size_t k = 0;
    while (k < n) {
        ssize_t r = read(fd, buf + k, n - k);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        k += (size_t)r;
    }
    *got = k;
    return 0;
}

int lp_archive_hash_file(const char *path, uint64_t *hash, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    XXH3_state_t *st = XXH3_createState();
    unsigned char *buf = lp_xmalloc(CHUNK);
    if (!st)
        abort();
    XXH3_64bits_reset(st);
    uint64_t total = 0;
    int rc;
    for (;;) {
        size_t got;
        if ((rc = read_full(fd, buf, CHUNK, &got)) || got == 0)
            break;
        XXH3_64bits_update(st, buf, got);
        total += got;
    }
    if (!rc) {
        *hash = XXH3_64bits_digest(st);
        *size = total;
    }
    XXH3_freeState(st);
    free(buf);
    close(fd);
    return rc;
}

/* ---- compression (streaming) ---- */

static int write_out(int fd, const void *p, size_t n)
{
    if (lp_archive_write_hook) {
        int rc = lp_archive_write_hook();
        if (rc)
            return rc;
    }
    return lp_write_all(fd, p, n);
}

static int compress_to(int in, int out, enum lp_codec codec, int level, uint64_t pledged,
                       XXH3_state_t *hs, uint64_t *bytes_in, uint64_t *bytes_out)
{
    unsigned char *ibuf = lp_xmalloc(CHUNK), *obuf = lp_xmalloc(CHUNK);
    int rc = 0;
    *bytes_in = *bytes_out = 0;
    ZSTD_CCtx *zc = NULL;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (codec == LP_CODEC_ZSTD) {
        zc = ZSTD_createCCtx();
        if (!zc)
            abort();
        ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level ? level : 3);
        ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 1);
        /* the frame header then records the content size (a closed
         * segment does not change; if it did, compression fails) */
        ZSTD_CCtx_setPledgedSrcSize(zc, pledged);
    } else if (deflateInit2(&zs, level ? level : 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
               Z_OK) {
        abort();
    }
    for (int done = 0; !done && !rc;) {
        size_t got;
        if ((rc = read_full(in, ibuf, CHUNK, &got)))
            break;
        XXH3_64bits_update(hs, ibuf, got);
        *bytes_in += got;
        done = got < CHUNK;
        if (codec == LP_CODEC_ZSTD) {
            ZSTD_inBuffer ib = {ibuf, got, 0};
            ZSTD_EndDirective mode = done ? ZSTD_e_end : ZSTD_e_continue;
            for (;;) {
                ZSTD_outBuffer ob = {obuf, CHUNK, 0};
                size_t left = ZSTD_compressStream2(zc, &ob, &ib, mode);
                if (ZSTD_isError(left)) {
                    rc = LP_ECORRUPT;
                    break;
                }
                if ((rc = write_out(out, obuf, ob.pos)))
                    break;
                *bytes_out += ob.pos;
                if (done ? left == 0 : ib.pos == ib.size)
                    break;
            }
        } else {
            zs.next_in = ibuf;
            zs.avail_in = (uInt)got;
            int flush = done ? Z_FINISH : Z_NO_FLUSH;
            do {
                zs.next_out = obuf;
                zs.avail_out = CHUNK;
                int z = deflate(&zs, flush);
                if (z == Z_STREAM_ERROR) {
                    rc = LP_ECORRUPT;
                    break;
                }
                size_t n = CHUNK - zs.avail_out;
                if ((rc = write_out(out, obuf, n)))
                    break;
                *bytes_out += n;
            } while (zs.avail_out == 0);
        }
    }
    if (zc)
        ZSTD_freeCCtx(zc);
    else
        deflateEnd(&zs);
    free(ibuf);
    free(obuf);
    return rc;
}

int lp_archive_verify(const char *archive, enum lp_codec codec, uint64_t *hash, uint64_t *size)
{
    int fd = open(archive, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unsigned char *ibuf = lp_xmalloc(CHUNK), *obuf = lp_xmalloc(CHUNK);
    XXH3_state_t *hs = XXH3_createState();
    if (!hs)
        abort();
    XXH3_64bits_reset(hs);
    uint64_t total = 0;
    int rc = 0, ended = 0;
    ZSTD_DCtx *zd = NULL;
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (codec == LP_CODEC_ZSTD) {
        zd = ZSTD_createDCtx();
        if (!zd)
            abort();
        ZSTD_DCtx_setParameter(zd, ZSTD_d_windowLogMax, 27);
    } else if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        abort();
    }
    for (;;) {
        size_t got;
        if ((rc = read_full(fd, ibuf, CHUNK, &got)))
            break;
        if (got == 0)
            break;
        if (codec == LP_CODEC_ZSTD) {
            ZSTD_inBuffer ib = {ibuf, got, 0};
            while (ib.pos < ib.size && !rc) {
                ZSTD_outBuffer ob = {obuf, CHUNK, 0};
                size_t r = ZSTD_decompressStream(zd, &ob, &ib);
                if (ZSTD_isError(r))
                    rc = LP_ECORRUPT;
                XXH3_64bits_update(hs, obuf, ob.pos);
                total += ob.pos;
                ended = r == 0;
            }
        } else {
            zs.next_in = ibuf;
            zs.avail_in = (uInt)got;
            while (zs.avail_in > 0 && !rc && !ended) {
                zs.next_out = obuf;
                zs.avail_out = CHUNK;
                int z = inflate(&zs, Z_NO_FLUSH);
                if (z != Z_OK && z != Z_STREAM_END)
                    rc = LP_ECORRUPT;
                size_t n = CHUNK - zs.avail_out;
                XXH3_64bits_update(hs, obuf, n);
                total += n;
                ended = z == Z_STREAM_END;
            }
            if (ended && zs.avail_in > 0)
                rc = LP_ECORRUPT; /* trailing bytes */
        }
        if (rc)
            break;
    }
    if (!rc && !ended)
        rc = LP_ECORRUPT; /* truncated */
    if (!rc) {
        *hash = XXH3_64bits_digest(hs);
        *size = total;
    }
    if (zd)
        ZSTD_freeDCtx(zd);
    else
        inflateEnd(&zs);
    XXH3_freeState(hs);
    free(ibuf);
    free(obuf);
    close(fd);
    return rc;
}

static void step(int n)
{
    if (lp_archive_step_hook)
        lp_archive_step_hook(n);
}

int lp_archive_file(const char *src, const char *dst_dir, enum lp_codec codec, int level,
                    struct lp_archive_stats *st, char *err, size_t errlen)
{
    char dst[4200], tmp[4300], sdir[4096];
    memset(st, 0, sizeof(*st));
    int rc;
    if (codec != LP_CODEC_ZSTD && codec != LP_CODEC_GZIP) {
        snprintf(err, errlen, "unsupported archive codec");
        return LP_EINVAL;
    }
    if ((rc = lp_archive_name(src, dst_dir, codec, dst, sizeof(dst))) ||
        (rc = dir_of(src, sdir, sizeof(sdir)))) {
        snprintf(err, errlen, "%s: name too long", src);
        return rc;
    }
    snprintf(tmp, sizeof(tmp), "%s" LP_ARCHIVE_TMP_SUFFIX, dst);
    struct stat sb;
    if (stat(dst, &sb) == 0) {
        /* a previous run got past the rename: finish it if the archive
         * holds exactly the source */
        uint64_t ha, sa, hs, ss;
        if ((rc = lp_archive_hash_file(src, &hs, &ss))) {
            snprintf(err, errlen, "%s: %s", src, lp_strerror(rc));
            return rc;
        }
        if ((rc = lp_archive_verify(dst, codec, &ha, &sa)) || ha != hs || sa != ss) {
            snprintf(err, errlen,
                     "%s exists but does not hold %s (%s); both kept, check them by hand", dst, src,
                     rc ? "undecodable" : "different content");
            return rc ? rc : LP_ECORRUPT;
        }
        st->resumed = 1;
        st->bytes_in = ss;
        st->bytes_out = (uint64_t)sb.st_size;
        if (unlink(src) && errno != ENOENT) {
            rc = -errno;
            snprintf(err, errlen, "removing %s: %s", src, lp_strerror(-errno));
            return rc;
        }
        return lp_fsync_dir(sdir);
    }
    if ((rc = lp_mkdirs(dst_dir, 0750))) {
        snprintf(err, errlen, "%s: %s", dst_dir, lp_strerror(rc));
        return rc;
    }
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", src, lp_strerror(-errno));
        return rc;
    }
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", tmp, lp_strerror(-errno));
        close(in);
        return rc;
    }
    XXH3_state_t *hs = XXH3_createState();
    if (!hs)
        abort();
    XXH3_64bits_reset(hs);
    struct stat ss;
    rc = fstat(in, &ss) ? -errno : 0;
    if (!rc)
        rc = compress_to(in, out, codec, level, (uint64_t)ss.st_size, hs, &st->bytes_in,
                         &st->bytes_out);
    uint64_t src_hash = XXH3_64bits_digest(hs);
    XXH3_freeState(hs);
    close(in);
    /* the archive keeps the segment's modification time (ages count from
     * the last write, as with gzip) */
    if (!rc) {
        struct timespec ts[2] = {ss.st_atim, ss.st_mtim};
        if (futimens(out, ts))
            rc = -errno;
    }
    if (!rc && fsync(out))
        rc = -errno;
    if (close(out) && !rc)
        rc = -errno;
    if (rc) {
        snprintf(err, errlen, "writing %s: %s", tmp, lp_strerror(rc));
        unlink(tmp);
        return rc;
    }
    step(1);
    uint64_t ah, as;
    rc = lp_archive_verify(tmp, codec, &ah, &as);
    if (rc || ah != src_hash || as != st->bytes_in) {
        snprintf(err, errlen, "verifying %s failed (%s); source kept", tmp,
                 rc ? "undecodable" : "content differs");
        unlink(tmp);
        return rc ? rc : LP_ECORRUPT;
    }
    step(2);
    if (rename(tmp, dst)) {
        rc = -errno;
        snprintf(err, errlen, "renaming %s: %s", tmp, lp_strerror(-errno));
        unlink(tmp);
        return rc;
    }
    if ((rc = lp_fsync_dir(dst_dir))) {
        snprintf(err, errlen, "fsync %s: %s", dst_dir, lp_strerror(rc));
        return rc; /* the source stays; a rerun verifies and finishes */
    }
    step(3);
    if (unlink(src)) {
        rc = -errno;
        snprintf(err, errlen, "removing %s: %s", src, lp_strerror(-errno));
        return rc;
    }
    return lp_fsync_dir(sdir);
}

int lp_archive_content_size(const char *archive, enum lp_codec codec, uint64_t *size)
{
    int fd = open(archive, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unsigned char b[32];
    int rc = 0;
    *size = 0;
    if (codec == LP_CODEC_ZSTD) {
        ssize_t n = pread(fd, b, sizeof(b), 0);
        unsigned long long cs =
            n > 0 ? ZSTD_getFrameContentSize(b, (size_t)n) : ZSTD_CONTENTSIZE_ERROR;
        if (cs == ZSTD_CONTENTSIZE_ERROR)
            rc = LP_ECORRUPT;
        else if (cs != ZSTD_CONTENTSIZE_UNKNOWN)
            *size = cs;
    } else {
        struct stat sb;
        if (fstat(fd, &sb) || sb.st_size < 18 || pread(fd, b, 4, sb.st_size - 4) != 4)
            rc = LP_ECORRUPT;
        else
            *size = (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 |
                    (uint64_t)b[3] << 24; /* ISIZE: the size mod 2^32 */
    }
    close(fd);
    return rc;
}

int lp_archive_clean_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int removed = 0;
    struct dirent *e;
    size_t sl = strlen(LP_ARCHIVE_TMP_SUFFIX);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char p[4200];
        if (snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= (int)sizeof(p))
            continue;
        struct stat sb;
        if (lstat(p, &sb))
            continue;
        if (S_ISDIR(sb.st_mode)) {
            int r = lp_archive_clean_temps(p);
            if (r > 0)
                removed += r;
            continue;
        }
        size_t n = strlen(e->d_name);
        if (S_ISREG(sb.st_mode) && n > sl &&
            strcmp(e->d_name + n - sl, LP_ARCHIVE_TMP_SUFFIX) == 0 && unlink(p) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
