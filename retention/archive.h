/* Archiving one closed segment, crash-safely (docs/retention.md, "Archiving, crash-safely"):
 *
 *   1. compress the source to "<dst>.archiving" while hashing it (xxh3-64)
 *      (keeping the source's modification time)
 *   2. fsync the temp file, then read it back, decompress and hash: the two
 *      hashes and sizes must match, or the temp file is removed and the
 *      source kept (LP_ECORRUPT)
 *   3. rename the temp file to its final name, fsync the directory
 *   4. unlink the source, fsync its directory
 *
 * A crash anywhere leaves the source, or a verified archive, or both —
 * never neither, and never a partial archive under a final name. A rerun
 * that finds both verifies the archive against the source and finishes
 * (idempotent); lp_archive_clean_temps removes the "<archive>.archiving"
 * files a crash left in steps 1-2.
 * Streaming, so memory does not grow with the segment. Any thread; no
 * shared state. */
#ifndef LP_ARCHIVE_H
#define LP_ARCHIVE_H

#include "lp_codec.h"

#include <stddef.h>
#include <stdint.h>

#define LP_ARCHIVE_TMP_SUFFIX ".archiving"

struct lp_archive_stats {
    uint64_t bytes_in;  /* source bytes */
    uint64_t bytes_out; /* archive bytes */
    int resumed;        /* a verified archive was already there: only the source went */
};

/* The archive name of a segment: "<base>.zst" or "<base>.gz" in dst_dir. */
int lp_archive_name(const char *src, const char *dst_dir, enum lp_codec codec, char *out,
                    size_t outlen);

/* Archives src into dst_dir (created if missing) with codec LP_CODEC_ZSTD or
 * LP_CODEC_GZIP at level. 0, -errno (nothing lost: the source stays; a full
 * disk is -ENOSPC) or LP_ECORRUPT (verification failed, or an existing
 * archive does not match the source: both kept). err gets one line. */
int lp_archive_file(const char *src, const char *dst_dir, enum lp_codec codec, int level,
                    struct lp_archive_stats *st, char *err, size_t errlen);

/* Decompresses an archive and returns its content's xxh3-64 and size.
 * 0, -errno or LP_ECORRUPT. */
int lp_archive_verify(const char *archive, enum lp_codec codec, uint64_t *hash, uint64_t *size);

/* xxh3-64 and size of a plain file. 0 or -errno. */
int lp_archive_hash_file(const char *path, uint64_t *hash, uint64_t *size);

/* The content size an archive declares (zstd frame header; gzip ISIZE, mod
 * 2^32) without decompressing it; 0 when it does not say. 0, -errno or
 * LP_ECORRUPT. */
int lp_archive_content_size(const char *archive, enum lp_codec codec, uint64_t *size);

/* Removes "*.archiving" files left by interrupted archiving under dir (recursively).
 * Returns how many were removed, or -errno. */
int lp_archive_clean_temps(const char *dir);

/* Test hook: when set, lp_archive_file calls it between steps with the step
 * number (1 after compressing, 2 after verifying, 3 after the rename); the
 * crash tests kill the process there. */
extern void (*lp_archive_step_hook)(int step);
/* Test hook: when set, called before each write to the temp file; a
 * nonzero return (e.g. -ENOSPC) is taken as that write's error. */
extern int (*lp_archive_write_hook)(void);

#endif
