/* Bucket retention: the policies whose output is an s3 output cover that
 * output's objects in its bucket under its prefix, with the same rules as
 * local segments (plan.h) and the same report and audit log (retention.c).
 *
 * What an object is, for the rules:
 * - a "segment" (live) is an object the output wrote, under its prefix
 *   (never the ledger, `_logpipe/`); an "archive" is one retention archived:
 *   moved under archive_prefix (in archive_bucket or the same bucket), or,
 *   without archive_prefix, changed in place to archive_storage_class;
 * - its path under the prefix (or the archive prefix) is what routes and
 *   glob select: <route>/YYYY/MM/DD/HH/<topic>-<partition>-<first>.<ext>;
 * - its age counts from the end of the hour in its key, the hour of its
 *   events (a function of the records: the same on every run, kept by
 *   archiving, as archives keep a segment's time on disk); an object whose
 *   key has no hour counts from its LastModified;
 * - archiving copies on the store's side (CopyObject, metadata kept),
 *   checks the copy's size with HEAD, then deletes the source; deletions go
 *   in batches of up to 1000 keys (DeleteObjects). An archive whose source
 *   could not be deleted is reported as an error and finished by the next
 *   run (the copy is idempotent: same key, same bytes);
 * - an object named by an open ledger record (its batch may not be
 *   committed yet) is never moved: a recovering owner would write it again
 *   under its old key and it would then exist twice. A record is closed
 *   when the aggregators' consumer group (aggregator.group_id, asked with
 *   an OffsetFetch, never joined) has committed past its end; the output
 *   deletes such records itself but keeps the newest per partition. When
 *   Kafka does not answer, every record counts as open. An object may be
 *   deleted either way (a rewrite only brings it back, and the next run
 *   deletes it again).
 *
 * One struct lp_rt_bucket per policy, used by one thread. */
#ifndef LP_RT_BUCKET_H
#define LP_RT_BUCKET_H

#include "lp_s3.h"
#include "plan.h"
#include "scan.h"

#include <stddef.h>

struct lp_config;
struct lp_config_retention_policy;

struct lp_rt_bucket {
    const struct lp_config *cfg;
    const char *name;   /* the policy's */
    const char *output; /* the s3 output's */
    struct lp_s3 live, arch;
    int has_arch; /* arch is a bucket of its own */
    struct lp_s3_client lc, ac;
    char *prefix;              /* the output's: "" or "<p>/" */
    char *archive_prefix;      /* "" or "<p>/"; NULL: objects are not moved */
    const char *archive_class; /* NULL: unchanged */
    struct lp_rt_select sel;
    struct lp_rt_policy policy; /* for lp_rt_plan (root: "s3://bucket/prefix") */
    char *root, *archive_root;  /* display: s3://bucket/prefix */
};

/* 0, or LP_EINVAL with err set (a bad endpoint). */
int lp_rt_bucket_init(struct lp_rt_bucket *b, const struct lp_config *cfg,
                      const struct lp_config_retention_policy *p, char *err, size_t errlen);
void lp_rt_bucket_release(struct lp_rt_bucket *b);

/* The policy's objects (policy index 0, volume -1). Each file's path is
 * "s3://<bucket>/<key>". 0, or a negative LP_E* code with err set (nothing
 * may then be done: a partial listing would misjudge max_total_bytes). */
int lp_rt_bucket_scan(struct lp_rt_bucket *b, struct lp_rt_file **files, size_t *n, char *err,
                      size_t errlen);
void lp_rt_bucket_files_release(struct lp_rt_file *files, size_t n);

/* Where archiving f puts it, "s3://<bucket>/<key>" (heap). */
char *lp_rt_bucket_archive_dest(const struct lp_rt_bucket *b, const struct lp_rt_file *f);

/* Archives f. *moved is set when the source is now to be deleted (a move,
 * not a class change in place). 0, or a negative code with err set. */
int lp_rt_bucket_archive(struct lp_rt_bucket *b, const struct lp_rt_file *f, int *moved, char *err,
                         size_t errlen);

/* Deletes files[0..n) (any number, in batches); ok[i] is set to 1 for the
 * ones gone, errs[i] (heap, may stay NULL) says why another was not. */
void lp_rt_bucket_delete(struct lp_rt_bucket *b, const struct lp_rt_file *const *files, size_t n,
                         int *ok, char **errs);

#endif
