/* File identity for tailing: (dev, inode) plus a fingerprint of the file's
 * first line (at most 1 KiB; a short file is identified once its first line
 * is complete) plus a hash of the bytes just before a saved offset. Resuming
 * needs all three to match; inode reuse and truncation are told apart.
 * Pure I/O helpers on an open fd; any thread. */
#ifndef LP_IDENTITY_H
#define LP_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define LP_HEAD_MAX 1024  /* fingerprint window cap */
#define LP_TAIL_WINDOW 64 /* bytes before a saved offset that must still match */

struct lp_head {
    uint32_t len;  /* bytes hashed: the first line with its newline, or LP_HEAD_MAX */
    uint64_t hash; /* xxh3-64 */
};

/* Fingerprints the head of fd. Returns 0, LP_EAGAIN when the file has no
 * complete first line yet and is shorter than LP_HEAD_MAX (try later), or
 * -errno. */
int lp_head_read(int fd, struct lp_head *out);
/* Like lp_head_read, but accepts a file that will not grow again and has no
 * complete first line (a rotated file ending mid-line): hashes what there
 * is. 0, LP_EAGAIN for an empty file, or -errno. */
int lp_head_read_final(int fd, struct lp_head *out);
/* 1 when the first want->len bytes of fd still hash to want->hash. */
int lp_head_matches(int fd, const struct lp_head *want);
/* xxh3-64 of the LP_TAIL_WINDOW bytes before offset (fewer near the start).
 * 0 or -errno (short read = -ENODATA). */
int lp_tail_hash(int fd, uint64_t offset, uint64_t *out);

#endif
