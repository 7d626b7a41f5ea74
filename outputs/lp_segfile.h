/* The file output's storage for one (route, partition): NDJSON segments
 *   <root>/<route>/<YYYY-MM-DD>/<HH>/<partition>-<first kafka offset>.ndjson
 * written as "<name>.open" until closed (retention never touches .open
 * files), rolled by size and age, and per-source watermarks (the highest
 * line offset written for each source id) that skip replayed lines, so each
 * line lands in the files once (docs/delivery.md).
 *
 * Durability: lp_segfile_sync fsyncs the segment and then saves the
 * watermarks atomically; only after it returns 0 may the caller store the
 * Kafka offsets of what it wrote. The saved state also records how many
 * bytes of each .open segment a sync made durable. After a crash,
 * lp_segfile_open cuts each .open segment of its partition back to that
 * size (what lies beyond was never synced, so its Kafka offsets were never
 * stored and it comes again), removes .open segments the state does not
 * know, and closes them: the watermarks come from the file output's own
 * state, never from document content a log line could forge. Only state
 * from before that record (version 1) is recovered from the lines, with
 * implausible offsets refused.
 *
 * Kept per partition, so a partition's next owner (after a rebalance or a
 * crash) continues its predecessor's state where aggregators share the
 * volume. One writer at a time: lp_segfile_open takes an exclusive lock
 * (flock on <root>/<route>/.state/<partition>.lock) held until close or
 * abandon, and fails while another open store holds it. One owning thread
 * (the partition's worker). */
#ifndef LP_SEGFILE_H
#define LP_SEGFILE_H

#include <stddef.h>
#include <stdint.h>

struct lp_segfile_config {
    const char *root;
    const char *route;
    size_t max_bytes;   /* roll when a segment reaches this size */
    int64_t max_age_ns; /* roll when a segment is this old */
};

struct lp_segfile;

/* Opens (and recovers) the state of one partition. NULL with err filled. */
struct lp_segfile *lp_segfile_open(const struct lp_segfile_config *cfg, int32_t partition,
                                   char *err, size_t errlen);
/* Writes one event line (JSON without a newline) of source_id at line
 * offset `offset`, from Kafka offset kafka_offset. Returns 1 written, 0
 * skipped (at or below the source's watermark: already in the files), or
 * -errno (the segment is then unusable until reopened). now_ns is wall-clock
 * time, used for the directory of a new segment. */
int lp_segfile_write(struct lp_segfile *s, const char *source_id, uint64_t offset,
                     int64_t kafka_offset, const char *line, size_t len, int64_t now_ns);
/* Makes everything written so far durable. 0 or -errno. */
int lp_segfile_sync(struct lp_segfile *s);
/* Rolls the segment when it is too big or too old (sync, close, rename). */
int lp_segfile_tick(struct lp_segfile *s, int64_t now_ns);
/* Syncs, closes the open segment (renamed to its final name) and frees. */
int lp_segfile_close(struct lp_segfile *s);
/* Frees without syncing (a lost assignment: the next owner recovers). */
void lp_segfile_abandon(struct lp_segfile *s);

/* Test hooks. */
uint64_t lp_segfile_watermark(const struct lp_segfile *s, const char *source_id, int *found);
const char *lp_segfile_current_path(const struct lp_segfile *s);

#endif
