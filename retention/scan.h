/* Scanning the policies' trees into plan inputs: closed segments
 * ("*.ndjson") and archives ("*.ndjson.zst", "*.ndjson.gz") under each
 * policy's root (and archive_root), matched by route and glob; open
 * segments ("*.ndjson.open") and interrupted archives ("*.archiving") are
 * only counted. Symbolic links are not followed. */
#ifndef LP_RT_SCAN_H
#define LP_RT_SCAN_H

#include "plan.h"

#include <sys/types.h>

struct lp_config_retention_policy;

struct lp_rt_pstat {
    size_t open_segments;
    uint64_t open_bytes;
    size_t temps;
    size_t segments, archives;
    uint64_t segment_bytes, archive_bytes;
    int root_missing;
};

/* A file or directory that could not be read. */
struct lp_rt_problem {
    int policy;
    char *path;
    int err; /* errno */
};

struct lp_rt_scan {
    struct lp_rt_file *files;
    size_t n_files, cap;
    struct lp_rt_volume *vols;
    dev_t *devs;
    size_t n_vols;
    struct lp_rt_pstat *pstat; /* per policy */
    struct lp_rt_problem *problems;
    size_t n_problems;
};

/* The policy's route/glob selection of a path under its root. */
struct lp_rt_select {
    char *const *routes;
    size_t n_routes;
    const char *glob;
};

/* Scans every policy; pols[i].volume / archive_volume are set. sel[i] is
 * policy i's selection. 0 (out of memory aborts). */
int lp_rt_scan(struct lp_rt_scan *s, struct lp_rt_policy *pols, const struct lp_rt_select *sel,
               size_t n_pols);
void lp_rt_scan_release(struct lp_rt_scan *s);

/* 1 when rel (a segment's path under the root) is selected: its first
 * directory is one of the routes (if any), and the glob (if any, lp_glob.h)
 * matches rel or one of its leading directories. */
int lp_rt_selected(const struct lp_rt_select *sel, const char *rel);

#endif
