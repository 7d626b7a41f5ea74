/* Durable file writes shared by checkpoints, watermarks and segments:
 * temp file → write → fsync → rename → fsync of the directory, so a crash
 * leaves the old content or the new one, never a torn file. */
#ifndef LP_FILE_H
#define LP_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all of p[0..n) (retrying short writes and EINTR). 0 or -errno. */
int lp_write_all(int fd, const void *p, size_t n);
/* Creates dir and its missing parents with mode (like mkdir -p). 0 or -errno. */
int lp_mkdirs(const char *dir, mode_t mode);
/* fsyncs a directory (to persist entries created or renamed in it). */
int lp_fsync_dir(const char *dir);
/* Replaces path with data atomically and durably ("<path>.tmp" is the
 * temporary). 0 or -errno; on error the old file is untouched. */
int lp_file_replace(const char *path, const void *data, size_t n, mode_t mode);

#endif
