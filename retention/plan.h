/* Retention planning: which closed segments and archives each policy
 * archives or deletes, and why. Pure (no I/O, the clock passed in), so the
 * rules are unit-tested with a fake clock; scan.c fills the inputs from the
 * file tree, retention.c carries the actions out.
 *
 * Rules, per policy, over its files oldest first (modification time, then
 * path):
 *   1. age: a closed segment older than delete_after is deleted (it would
 *      only be archived to be deleted); else older than archive_after it is
 *      archived. An archive older than delete_after is deleted.
 *   2. max_total_bytes: while the policy's bytes (archives, closed segments,
 *      archives-to-be at their estimated size) exceed it, the oldest file
 *      left is deleted — with archive_after, never a segment that is not
 *      archived (nor to be) unless prune_unarchived: a cap deletes what was
 *      kept, not what was never archived.
 *   3. min_free_bytes: while the volume of the policy's root has less free
 *      space (counting what earlier deletions and archiving free), the
 *      oldest file left on that volume is deleted — emergency pruning.
 * Open segments are never inputs. An archive's size after compression is
 * estimated with the policy's ratio so far (1 when unknown), so rules 2-3
 * in a dry run are estimates; a real run applies them after archiving, to
 * the files as they are then. */
#ifndef LP_RT_PLAN_H
#define LP_RT_PLAN_H

#include "lp_codec.h"

#include <stddef.h>
#include <stdint.h>

enum lp_rt_kind { LP_RT_SEGMENT, LP_RT_ARCHIVE };

struct lp_rt_file {
    char *path; /* as opened */
    char *rel;  /* the segment's path under the root (an archive's without its suffix) */
    int policy;
    enum lp_rt_kind kind;
    enum lp_codec codec; /* archives */
    uint64_t size;       /* st_size */
    uint64_t disk;       /* allocated bytes (st_blocks * 512) */
    uint64_t orig_size;  /* archives: content size from the header, 0 = unknown */
    int64_t mtime_ns;
    int volume;  /* index into the volumes (LP_RT_NO_VOLUME: none, a bucket) */
    int pending; /* bucket: its batch may still be rewritten (a ledger record is
                  * open): never moved, see bucket.h */
};

#define LP_RT_NO_VOLUME (-1) /* a policy's or file's volume: none (a bucket) */

struct lp_rt_policy {
    const char *name;
    const char *root;
    const char *archive_root;                  /* NULL: next to the segment */
    int64_t archive_after_ns, delete_after_ns; /* 0 = off */
    uint64_t max_total_bytes, min_free_bytes;  /* 0 = off */
    int prune_unarchived; /* max_total_bytes may delete segments not archived yet */
    enum lp_codec codec;
    int level;
    double ratio_hint;  /* expected ratio when no archive tells (0: unknown) */
    int volume;         /* the root's volume */
    int archive_volume; /* where archives go */
};

struct lp_rt_volume {
    uint64_t free_bytes; /* available to us (statvfs f_bavail) */
};

enum lp_rt_act { LP_RT_DO_ARCHIVE, LP_RT_DO_DELETE };

enum lp_rt_why {
    LP_RT_WHY_ARCHIVE_AFTER,
    LP_RT_WHY_DELETE_AFTER,
    LP_RT_WHY_MAX_TOTAL,
    LP_RT_WHY_MIN_FREE,
};

struct lp_rt_action {
    enum lp_rt_act act;
    enum lp_rt_why why;
    size_t file; /* index into files */
    int policy;
    uint64_t est_out; /* archive: estimated archive size, 0 = unknown */
};

enum { LP_RT_PHASE_AGE = 1, LP_RT_PHASE_SIZE = 2, LP_RT_PHASE_ALL = 3 };

struct lp_rt_plan {
    struct lp_rt_action *a;
    size_t n, cap;
};

/* Plans the given phases over files (reordered: sorted by policy, then
 * oldest first). volumes[].free_bytes is updated with what the plan frees.
 * Actions come in execution order: per policy, archives and deletions by
 * age, then size, then free space. */
void lp_rt_plan(const struct lp_rt_policy *pols, size_t n_pols, struct lp_rt_file *files,
                size_t n_files, struct lp_rt_volume *vols, size_t n_vols, int64_t now_ns,
                int phases, struct lp_rt_plan *out);
void lp_rt_plan_release(struct lp_rt_plan *p);

/* The compression ratio (content / archive bytes) of a policy's archives
 * whose content size is known; 0 when none is. */
double lp_rt_policy_ratio(const struct lp_rt_file *files, size_t n_files, int policy);

const char *lp_rt_why_name(enum lp_rt_why w);

#endif
