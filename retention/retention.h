/* logpipe-retention runs: scan, plan (plan.h), archive and delete segments,
 * delete old indices, write the audit log, count metrics, report.
 *
 * A real run holds an exclusive lock on the audit log (a second worker
 * fails fast), removes the temp files of interrupted archiving, archives
 * and deletes by age, scans again and applies max_total_bytes and
 * min_free_bytes to what is left, then index policies. A dry run changes
 * nothing (no lock, no audit) and prints the same actions with estimated
 * sizes. Single-threaded. */
#ifndef LP_RETENTION_H
#define LP_RETENTION_H

#include <stdint.h>
#include <stdio.h>

struct lp_config;
struct lp_metrics;
struct lp_retention;

struct lp_rt_opts {
    int dry_run;
    int json;       /* report as JSON instead of tables */
    int64_t now_ns; /* 0: the real clock */
    FILE *report;   /* where the report goes; NULL: none */
    /* asked between actions: nonzero stops the run (NULL: never) */
    int (*should_stop)(void *ud);
    void *ud;
};

/* cfg and metrics (may be NULL) are borrowed for the worker's life. */
struct lp_retention *lp_retention_new(const struct lp_config *cfg, struct lp_metrics *metrics,
                                      char *err, size_t errlen);
void lp_retention_free(struct lp_retention *r);

/* One run. 0 when every action succeeded, 1 when something failed or was
 * kept for inspection (details in the log, the audit log and the report). */
int lp_retention_run(struct lp_retention *r, const struct lp_rt_opts *o);

#endif
