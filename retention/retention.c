/* One retention run (retention.h). */
#define LP_LOG_MODULE "retention"
#include "retention.h"

#include "archive.h"
#include "bucket.h"
#include "indices.h"
#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_file.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_time.h"
#include "plan.h"
#include "scan.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_NS (86400LL * LP_NS_PER_SEC)

struct pmetrics {
    struct lp_counter *archived, *arch_in, *arch_out, *errors, *skipped;
    struct lp_histogram *ratio;
    struct lp_gauge *seg_bytes, *arch_bytes, *open_bytes;
};

struct lp_retention {
    const struct lp_config *cfg;
    struct lp_metrics *m;
    struct lp_metrics *own_metrics;
    struct lp_rt_policy *pols;
    struct lp_rt_select *sel;
    char **roots; /* owned, normalised */
    size_t n;
    struct pmetrics *pm;
    struct lp_rt_bucket *bk; /* bucket policies */
    size_t nb;
    struct pmetrics *bm;
    struct pmetrics *im; /* per index policy */
    struct lp_counter *runs_ok, *runs_err;
    struct lp_gauge *last_run, *last_ok;
    struct lp_histogram *duration;
};

/* ---- report rows (also the audit records) ---- */

enum rt_kind { RT_KIND_FILES, RT_KIND_INDICES, RT_KIND_BUCKET };
enum rt_action { RT_ARCHIVE, RT_DELETE, RT_INDEX_DELETE, RT_SKIP, RT_CLEANUP };
enum rt_result { RT_PLANNED, RT_OK, RT_ERROR, RT_SKIPPED };
static const char *const kind_names[] = {"files", "indices", "bucket"};
static const char *const action_names[] = {"archive", "delete", "index_delete", "skip", "cleanup"};
static const char *const result_names[] = {"planned", "ok", "error", "skipped"};

/* What record() is told about one action; strings are copied. age_ns -1:
 * no age (a directory, an index pattern). */
struct rt_event {
    const char *policy;
    enum rt_kind kind;
    enum rt_action action;
    const char *target;
    const char *dest; /* the archive's path */
    uint64_t bytes;
    uint64_t bytes_out;
    int64_t age_ns;
    const char *reason;
    enum rt_result result;
    const char *error;
};

struct row {
    const char *policy;
    enum rt_action action;
    char *target;
    char *dest;         /* archive path */
    uint64_t bytes;     /* size of the target */
    uint64_t bytes_out; /* archive size (estimated in a dry run) */
    int64_t age_ns;
    char *reason;
    enum rt_result result;
    char *error;
};

struct summary {
    const char *policy;
    const char *kind; /* files | indices */
    size_t archive_n, delete_n, skip_n, error_n;
    uint64_t archive_in, archive_out, delete_bytes;
    size_t kept_n, open_n;
    uint64_t kept_bytes, open_bytes;
};

struct run {
    struct lp_retention *r;
    const struct lp_rt_opts *o;
    int64_t now;
    int audit_fd;
    char run_id[40];
    struct row *rows;
    size_t n_rows, cap;
    struct summary *sum;
    size_t n_sum;
    int failed;
    int stopped;
    int *archive_full; /* per volume index of the current scan */
    size_t n_full;
};

static int stopping(struct run *u)
{
    if (!u->stopped && u->o->should_stop && u->o->should_stop(u->o->ud))
        u->stopped = 1;
    return u->stopped;
}

static void fmt_size(uint64_t b, char *out, size_t n)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 5) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(out, n, "%" PRIu64 " B", b);
    else
        snprintf(out, n, "%.1f %s", v, u[i]);
}

static void fmt_age(int64_t ns, char *out, size_t n)
{
    int64_t s = ns / LP_NS_PER_SEC;
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(out, n, "%" PRId64 "d%" PRId64 "h", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, n, "%" PRId64 "h%" PRId64 "m", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, n, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    else
        snprintf(out, n, "%" PRId64 "s", s);
}

static void fmt_dur_ms(int64_t ms, char *out, size_t n)
{
    int64_t s = ms / 1000;
    if (ms % 1000)
        snprintf(out, n, "%" PRId64 "ms", ms);
    else if (s % 86400 == 0)
        snprintf(out, n, "%" PRId64 "d", s / 86400);
    else if (s % 3600 == 0)
        snprintf(out, n, "%" PRId64 "h", s / 3600);
    else if (s % 60 == 0)
        snprintf(out, n, "%" PRId64 "m", s / 60);
    else
        snprintf(out, n, "%" PRId64 "s", s);
}

static struct summary *summary_of(struct run *u, const char *policy, enum rt_kind kind)
{
    for (size_t i = 0; i < u->n_sum; i++)
        if (strcmp(u->sum[i].policy, policy) == 0)
            return &u->sum[i];
    u->sum = lp_xreallocarray(u->sum, (u->n_sum + 1), sizeof(*u->sum));
    struct summary *s = &u->sum[u->n_sum++];
    memset(s, 0, sizeof(*s));
    s->policy = policy;
    s->kind = kind_names[kind];
    return s;
}

/* One row as a JSON object: the audit log's lines and the report's actions. */
static void row_json(struct lp_buf *b, const struct row *w)
{
    lp_buf_puts(b, "\"policy\":");
    lp_buf_append_json_string(b, w->policy, strlen(w->policy));
    lp_buf_appendf(b, ",\"action\":\"%s\",\"result\":\"%s\",\"target\":", action_names[w->action],
                   result_names[w->result]);
    lp_buf_append_json_string(b, w->target, strlen(w->target));
    if (w->dest) {
        lp_buf_puts(b, ",\"archive\":");
        lp_buf_append_json_string(b, w->dest, strlen(w->dest));
    }
    lp_buf_appendf(b, ",\"bytes\":%" PRIu64, w->bytes);
    if (w->bytes_out)
        lp_buf_appendf(b, ",\"bytes_out\":%" PRIu64 ",\"ratio\":%.3f", w->bytes_out,
                       (double)w->bytes / (double)w->bytes_out);
    if (w->age_ns >= 0)
        lp_buf_appendf(b, ",\"age_seconds\":%" PRId64, (int64_t)(w->age_ns / LP_NS_PER_SEC));
    if (w->reason) {
        lp_buf_puts(b, ",\"reason\":");
        lp_buf_append_json_string(b, w->reason, strlen(w->reason));
    }
    if (w->error) {
        lp_buf_puts(b, ",\"error\":");
        lp_buf_append_json_string(b, w->error, strlen(w->error));
    }
}

static void audit(struct run *u, const struct row *w)
{
    if (u->audit_fd < 0)
        return;
    struct lp_buf b = LP_BUF_INIT;
    char ts[LP_RFC3339_MAX];
    lp_time_format_rfc3339(lp_time_real_ns(), 3, ts);
    lp_buf_appendf(&b, "{\"@timestamp\":\"%s\",\"run_id\":\"%s\",", ts, u->run_id);
    row_json(&b, w);
    lp_buf_puts(&b, "}\n");
    int rc = lp_write_all(u->audit_fd, b.data, b.len);
    if (rc) {
        lp_log(LP_LOG_ERROR, "cannot write the audit log", "error=\"%s\"", lp_strerror(rc));
        u->failed = 1;
    }
    lp_buf_release(&b);
}

/* Records one action (report, audit, log, summary). */
static void record(struct run *u, const struct rt_event *e)
{
    LP_ALLOC_GROW(u->rows, u->n_rows + 1, u->cap, 64);
    struct row *w = &u->rows[u->n_rows++];
    *w = (struct row){.policy = e->policy,
                      .action = e->action,
                      .target = lp_xstrdup(e->target),
                      .dest = lp_xstrdup(e->dest),
                      .bytes = e->bytes,
                      .bytes_out = e->bytes_out,
                      .age_ns = e->age_ns,
                      .reason = lp_xstrdup(e->reason),
                      .result = e->result,
                      .error = lp_xstrdup(e->error)};
    if (!u->o->dry_run)
        audit(u, w);
    struct summary *s = summary_of(u, e->policy, e->kind);
    if (e->result == RT_ERROR) {
        s->error_n++;
        u->failed = 1;
    } else if (e->result == RT_SKIPPED) {
        s->skip_n++;
    } else if (e->action == RT_ARCHIVE) {
        s->archive_n++;
        s->archive_in += e->bytes;
        s->archive_out += e->bytes_out;
    } else if (e->action == RT_DELETE || e->action == RT_INDEX_DELETE) {
        s->delete_n++;
        s->delete_bytes += e->bytes;
    }
    if (u->o->dry_run)
        return;
    int lvl = e->result == RT_ERROR     ? LP_LOG_ERROR
              : e->result == RT_SKIPPED ? LP_LOG_WARN
                                        : LP_LOG_INFO;
    if (e->error)
        lp_log(lvl, action_names[e->action],
               "policy=%s target=\"%s\" bytes=%" PRIu64 " result=%s reason=\"%s\" error=\"%s\"",
               e->policy, e->target, e->bytes, result_names[e->result], e->reason ? e->reason : "",
               e->error);
    else
        lp_log(lvl, action_names[e->action],
               "policy=%s target=\"%s\" bytes=%" PRIu64 " result=%s reason=\"%s\"", e->policy,
               e->target, e->bytes, result_names[e->result], e->reason ? e->reason : "");
}

/* ---- policies ---- */

static char *norm(const char *dir)
{
    char *d = lp_xstrdup(dir);
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/')
        d[--n] = '\0';
    return d;
}

static struct pmetrics policy_metrics(struct lp_metrics *m, const char *name)
{
    struct pmetrics p = {0};
    char l[256];
    snprintf(l, sizeof(l), "policy=\"%s\"", name);
    static const double ratio_bounds[] = {1, 2, 4, 8, 12, 16, 24, 32, 64};
    p.archived = lp_metrics_counter(m, "logpipe_retention_archived_files_total",
                                    "Segments archived (verified, source removed).", l);
    p.arch_in = lp_metrics_counter(m, "logpipe_retention_archived_bytes_total",
                                   "Segment bytes archived.", l);
    p.arch_out = lp_metrics_counter(m, "logpipe_retention_archive_written_bytes_total",
                                    "Archive bytes written for them.", l);
    p.errors = lp_metrics_counter(m, "logpipe_retention_errors_total",
                                  "Actions that failed or files that could not be read.", l);
    p.skipped = lp_metrics_counter(m, "logpipe_retention_skipped_total",
                                   "Files kept despite a rule (full archive disk, corrupt "
                                   "archive, a data stream's write index, ...).",
                                   l);
    p.ratio = lp_metrics_histogram(m, "logpipe_retention_compression_ratio",
                                   "Content bytes per archive byte of each archived segment.", l,
                                   ratio_bounds, sizeof(ratio_bounds) / sizeof(*ratio_bounds));
    char k[300];
    snprintf(k, sizeof(k), "%s,kind=\"segment\"", l);
    p.seg_bytes = lp_metrics_gauge(m, "logpipe_retention_policy_bytes",
                                   "Bytes a policy holds at the end of the last run.", k);
    snprintf(k, sizeof(k), "%s,kind=\"archive\"", l);
    p.arch_bytes = lp_metrics_gauge(m, "logpipe_retention_policy_bytes",
                                    "Bytes a policy holds at the end of the last run.", k);
    snprintf(k, sizeof(k), "%s,kind=\"open\"", l);
    p.open_bytes = lp_metrics_gauge(m, "logpipe_retention_policy_bytes",
                                    "Bytes a policy holds at the end of the last run.", k);
    return p;
}

static void count_deleted(struct lp_retention *r, const char *policy, const char *reason,
                          uint64_t bytes, int index)
{
    char l[300];
    snprintf(l, sizeof(l), "policy=\"%s\",reason=\"%s\"", policy, reason);
    lp_counter_inc(lp_metrics_counter(
        r->m,
        index ? "logpipe_retention_deleted_indices_total" : "logpipe_retention_deleted_files_total",
        index ? "Indices deleted." : "Segments and archives deleted.", l));
    lp_counter_add(lp_metrics_counter(r->m,
                                      index ? "logpipe_retention_deleted_index_bytes_total"
                                            : "logpipe_retention_deleted_bytes_total",
                                      "Bytes deleted.", l),
                   bytes);
}

struct lp_retention *lp_retention_new(const struct lp_config *cfg, struct lp_metrics *metrics,
                                      char *err, size_t errlen)
{
    struct lp_retention *r = lp_xcalloc(1, sizeof(*r));
    r->cfg = cfg;
    if (!metrics) /* counted all the same, seen by no one */
        metrics = r->own_metrics = lp_metrics_new();
    r->m = metrics;
    const struct lp_config_retention *rc = &cfg->retention;
    /* never empty by accident: config load adds the documented default
     * policies (one per file output, archive after a day) when none is set */
    size_t n = 0, nb = 0;
    for (size_t i = 0; i < rc->n_policies; i++) {
        if (lp_config_policy_bucket(cfg, &rc->policies[i]))
            nb++;
        else
            n++;
    }
    r->pols = lp_xcalloc(n ? n : 1, sizeof(*r->pols));
    r->sel = lp_xcalloc(n ? n : 1, sizeof(*r->sel));
    r->roots = lp_xcalloc(2 * n + 1, sizeof(*r->roots));
    r->pm = lp_xcalloc(n ? n : 1, sizeof(*r->pm));
    r->bk = lp_xcalloc(nb ? nb : 1, sizeof(*r->bk));
    r->bm = lp_xcalloc(nb ? nb : 1, sizeof(*r->bm));
    r->im = lp_xcalloc(rc->n_elasticsearch, sizeof(*r->im));
    for (size_t ci = 0, i = 0; ci < rc->n_policies; ci++) {
        const struct lp_config_retention_policy *c = &rc->policies[ci];
        if (lp_config_policy_bucket(cfg, c)) {
            if (lp_rt_bucket_init(&r->bk[r->nb], cfg, c, err, errlen)) {
                lp_retention_free(r);
                return NULL;
            }
            r->bm[r->nb] = policy_metrics(metrics, c->name);
            r->nb++;
            continue;
        }
        struct lp_rt_policy *p = &r->pols[i];
        const char *root = lp_config_policy_root(cfg, c);
        if (!root) {
            snprintf(err, errlen, "policy %s: no root", c->name);
            lp_retention_free(r);
            return NULL;
        }
        r->n = ++i;
        p->name = c->name;
        r->roots[2 * (i - 1)] = norm(root);
        p->root = r->roots[2 * (i - 1)];
        if (c->archive_root && *c->archive_root) {
            r->roots[2 * (i - 1) + 1] = norm(c->archive_root);
            if (strcmp(r->roots[2 * (i - 1) + 1], p->root) != 0)
                p->archive_root = r->roots[2 * (i - 1) + 1];
        }
        p->archive_after_ns = c->archive_after_ms * LP_NS_PER_MS;
        p->delete_after_ns = c->delete_after_ms * LP_NS_PER_MS;
        p->max_total_bytes = (uint64_t)c->max_total_bytes;
        p->min_free_bytes = (uint64_t)c->min_free_bytes;
        p->prune_unarchived = c->prune_unarchived;
        p->codec = strcmp(c->archive_codec, "gzip") == 0 ? LP_CODEC_GZIP : LP_CODEC_ZSTD;
        p->level = (int)c->archive_level;
        r->sel[i - 1] = (struct lp_rt_select){c->routes, c->n_routes, c->glob};
    }
    for (size_t i = 0; i < n; i++)
        r->pm[i] = policy_metrics(metrics, r->pols[i].name);
    for (size_t i = 0; i < rc->n_elasticsearch; i++)
        r->im[i] = policy_metrics(metrics, rc->elasticsearch[i].name);
    {
        r->runs_ok =
            lp_metrics_counter(metrics, "logpipe_retention_runs_total", "Runs.", "result=\"ok\"");
        r->runs_err = lp_metrics_counter(metrics, "logpipe_retention_runs_total", "Runs.",
                                         "result=\"error\"");
        r->last_run = lp_metrics_gauge(metrics, "logpipe_retention_last_run_timestamp_seconds",
                                       "End of the last run (unix seconds).", NULL);
        r->last_ok = lp_metrics_gauge(metrics, "logpipe_retention_last_success_timestamp_seconds",
                                      "End of the last run without errors (unix seconds).", NULL);
        static const double b[] = {0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600};
        r->duration = lp_metrics_histogram(metrics, "logpipe_retention_run_duration_seconds",
                                           "Duration of runs.", NULL, b, sizeof(b) / sizeof(*b));
    }
    return r;
}

void lp_retention_free(struct lp_retention *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < 2 * r->n; i++) /* r->n counts the policies set up */
        free(r->roots[i]);
    free(r->roots);
    free(r->pols);
    free(r->sel);
    free(r->pm);
    for (size_t i = 0; i < r->nb; i++)
        lp_rt_bucket_release(&r->bk[i]);
    free(r->bk);
    free(r->bm);
    free(r->im);
    lp_metrics_free(r->own_metrics);
    free(r);
}

/* ---- segment actions ---- */

static const char *dirname_into(const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s", path);
    char *s = strrchr(out, '/');
    if (!s)
        snprintf(out, n, ".");
    else if (s == out)
        out[1] = '\0';
    else
        *s = '\0';
    return out;
}

static void reason_text(const struct lp_rt_policy *p, enum lp_rt_why why, char *out, size_t n)
{
    char d[32], a[32];
    switch (why) {
    case LP_RT_WHY_ARCHIVE_AFTER:
        fmt_dur_ms(p->archive_after_ns / LP_NS_PER_MS, d, sizeof(d));
        snprintf(out, n, "archive_after %s", d);
        break;
    case LP_RT_WHY_DELETE_AFTER:
        fmt_dur_ms(p->delete_after_ns / LP_NS_PER_MS, d, sizeof(d));
        snprintf(out, n, "delete_after %s", d);
        break;
    case LP_RT_WHY_MAX_TOTAL:
        fmt_size(p->max_total_bytes, a, sizeof(a));
        snprintf(out, n, "max_total_bytes %s", a);
        break;
    case LP_RT_WHY_MIN_FREE:
        fmt_size(p->min_free_bytes, a, sizeof(a));
        snprintf(out, n, "min_free_bytes %s (emergency)", a);
        break;
    }
}

/* The event of an action on one file, to be completed with what happened. */
static struct rt_event file_event(const struct run *u, const struct lp_rt_policy *p,
                                  const struct lp_rt_file *f, enum rt_action action,
                                  const char *reason)
{
    return (struct rt_event){.policy = p->name,
                             .kind = RT_KIND_FILES,
                             .action = action,
                             .target = f->path,
                             .bytes = f->size,
                             .age_ns = u->now - f->mtime_ns,
                             .reason = reason};
}

/* Records ev with its outcome. */
static void record_result(struct run *u, struct rt_event *ev, enum rt_result result,
                          const char *error)
{
    ev->result = result;
    ev->error = error;
    record(u, ev);
}

/* Where archiving f puts it: its directory in dst_dir and the archive's
 * path in dst. 0, or an error text. */
static const char *archive_dest(const struct lp_rt_policy *p, const struct lp_rt_file *f,
                                char *dst_dir, size_t dlen, char *dst, size_t len)
{
    if (p->archive_root) {
        char rd[PATH_MAX];
        dirname_into(f->rel, rd, sizeof(rd));
        if ((size_t)snprintf(dst_dir, dlen, "%s/%s", p->archive_root, rd) >= dlen)
            return "archive path too long";
    } else {
        dirname_into(f->path, dst_dir, dlen);
    }
    if (lp_archive_name(f->path, dst_dir, p->codec, dst, len))
        return "name too long";
    return NULL;
}

static void do_archive(struct run *u, const struct lp_rt_policy *p, struct pmetrics *pm,
                       const struct lp_rt_file *f, const char *reason, uint64_t est)
{
    struct rt_event ev = file_event(u, p, f, RT_ARCHIVE, reason);
    char dst_dir[PATH_MAX], dst[PATH_MAX + 16];
    const char *why = archive_dest(p, f, dst_dir, sizeof(dst_dir), dst, sizeof(dst));
    if (why) {
        record_result(u, &ev, RT_ERROR, why);
        return;
    }
    ev.dest = dst;
    if (u->o->dry_run) {
        ev.bytes_out = est;
        record_result(u, &ev, RT_PLANNED, NULL);
        return;
    }
    if (p->archive_volume >= 0 && (size_t)p->archive_volume < u->n_full &&
        u->archive_full[p->archive_volume]) {
        lp_counter_inc(pm->skipped);
        ev.reason = "the archive disk was full earlier in this run; source kept";
        record_result(u, &ev, RT_SKIPPED, NULL);
        return;
    }
    struct lp_archive_stats st;
    char err[PATH_MAX + 200];
    int rc = lp_archive_file(f->path, dst_dir, p->codec, p->level, &st, err, sizeof(err));
    if (rc == -ENOSPC || rc == -EDQUOT) {
        if (p->archive_volume >= 0 && (size_t)p->archive_volume < u->n_full)
            u->archive_full[p->archive_volume] = 1;
        lp_log(LP_LOG_ERROR, "archive disk full: archiving stops for this run, sources kept",
               "policy=%s dir=\"%s\"", p->name, dst_dir);
    }
    if (rc) {
        lp_counter_inc(pm->errors);
        record_result(u, &ev, RT_ERROR, err);
        return;
    }
    lp_counter_inc(pm->archived);
    lp_counter_add(pm->arch_in, st.bytes_in);
    lp_counter_add(pm->arch_out, st.bytes_out);
    if (st.bytes_out && pm->ratio)
        lp_histogram_observe(pm->ratio, (double)st.bytes_in / (double)st.bytes_out);
    char rs[300];
    snprintf(rs, sizeof(rs), "%s%s", reason,
             st.resumed ? "; an earlier run had written and verified the archive" : "");
    ev.bytes = st.bytes_in;
    ev.bytes_out = st.bytes_out;
    ev.reason = rs;
    record_result(u, &ev, RT_OK, NULL);
}

static void do_delete(struct run *u, const struct lp_rt_policy *p, struct pmetrics *pm,
                      const struct lp_rt_file *f, enum lp_rt_why why, const char *reason)
{
    struct rt_event ev = file_event(u, p, f, RT_DELETE, reason);
    if (u->o->dry_run) {
        record_result(u, &ev, RT_PLANNED, NULL);
        return;
    }
    if (f->kind == LP_RT_ARCHIVE && why == LP_RT_WHY_DELETE_AFTER &&
        u->r->cfg->retention.verify_before_delete) {
        uint64_t h, sz;
        int rc = lp_archive_verify(f->path, f->codec, &h, &sz);
        if (rc) {
            char e[300];
            snprintf(e, sizeof(e), "%s", lp_strerror(rc < 0 ? rc : LP_ECORRUPT));
            lp_counter_inc(pm->errors);
            lp_log(LP_LOG_ERROR,
                   "corrupt archive kept for inspection; delete it by hand once "
                   "checked",
                   "policy=%s path=\"%s\" error=\"%s\"", p->name, f->path, e);
            ev.reason = "archive does not decompress: kept for inspection";
            record_result(u, &ev, RT_ERROR, e);
            return;
        }
    }
    if (why == LP_RT_WHY_MIN_FREE)
        lp_log(LP_LOG_ERROR,
               "EMERGENCY PRUNING: the volume is below min_free_bytes; deleting "
               "the oldest data",
               "policy=%s path=\"%s\" bytes=%" PRIu64, p->name, f->path, f->size);
    char dir[PATH_MAX];
    dirname_into(f->path, dir, sizeof(dir));
    if (unlink(f->path) && errno != ENOENT) {
        char e[256];
        snprintf(e, sizeof(e), "%s", lp_strerror(-errno));
        lp_counter_inc(pm->errors);
        record_result(u, &ev, RT_ERROR, e);
        return;
    }
    lp_fsync_dir(dir);
    count_deleted(u->r, p->name, lp_rt_why_name(why), f->size, 0);
    record_result(u, &ev, RT_OK, NULL);
}

static void execute(struct run *u, struct lp_rt_scan *sc, struct lp_rt_plan *plan)
{
    struct lp_retention *r = u->r;
    free(u->archive_full);
    u->n_full = sc->n_vols;
    u->archive_full = lp_xcalloc(sc->n_vols ? sc->n_vols : 1, sizeof(int));
    for (size_t i = 0; i < plan->n; i++) {
        if (stopping(u)) {
            lp_log(LP_LOG_WARN, "stopping: run interrupted", "left=%zu", plan->n - i);
            u->failed = 1;
            return;
        }
        const struct lp_rt_action *a = &plan->a[i];
        const struct lp_rt_policy *p = &r->pols[a->policy];
        const struct lp_rt_file *f = &sc->files[a->file];
        char reason[128];
        reason_text(p, a->why, reason, sizeof(reason));
        if (a->act == LP_RT_DO_ARCHIVE)
            do_archive(u, p, &r->pm[a->policy], f, reason, a->est_out);
        else
            do_delete(u, p, &r->pm[a->policy], f, a->why, reason);
    }
}

static void scan_problems(struct run *u, const struct lp_rt_scan *sc)
{
    for (size_t i = 0; i < sc->n_problems; i++) {
        const struct lp_rt_problem *q = &sc->problems[i];
        const struct lp_rt_policy *p = &u->r->pols[q->policy];
        lp_counter_inc(u->r->pm[q->policy].errors);
        record(u, &(struct rt_event){.policy = p->name,
                                     .kind = RT_KIND_FILES,
                                     .action = RT_SKIP,
                                     .target = q->path,
                                     .age_ns = -1,
                                     .reason = "cannot be read",
                                     .result = RT_ERROR,
                                     .error = lp_strerror(-q->err)});
    }
}

static void tally(struct run *u, const struct lp_rt_scan *sc)
{
    struct lp_retention *r = u->r;
    for (size_t i = 0; i < r->n; i++) {
        struct summary *s = summary_of(u, r->pols[i].name, RT_KIND_FILES);
        const struct lp_rt_pstat *ps = &sc->pstat[i];
        s->open_n = ps->open_segments;
        s->open_bytes = ps->open_bytes;
        lp_gauge_set(r->pm[i].open_bytes, (int64_t)ps->open_bytes);
        lp_gauge_set(r->pm[i].seg_bytes, (int64_t)ps->segment_bytes);
        lp_gauge_set(r->pm[i].arch_bytes, (int64_t)ps->archive_bytes);
    }
}

/* Dry run, a policy with no archive yet: the ratio of its oldest segment's
 * first 4 MiB at the policy's codec and level, for the estimates. */
static void sample_ratios(struct lp_retention *r, const struct lp_rt_scan *sc)
{
    enum { SAMPLE = 4 << 20 };
    for (size_t i = 0; i < r->n; i++) {
        struct lp_rt_policy *p = &r->pols[i];
        p->ratio_hint = 0;
        if (!p->archive_after_ns || lp_rt_policy_ratio(sc->files, sc->n_files, (int)i) > 0)
            continue;
        const struct lp_rt_file *oldest = NULL;
        for (size_t k = 0; k < sc->n_files; k++) {
            const struct lp_rt_file *f = &sc->files[k];
            if (f->policy == (int)i && f->kind == LP_RT_SEGMENT && f->size &&
                (!oldest || f->mtime_ns < oldest->mtime_ns))
                oldest = f;
        }
        if (!oldest)
            continue;
        FILE *in = fopen(oldest->path, "rb");
        if (!in)
            continue;
        char *buf = lp_xmalloc(SAMPLE);
        size_t n = fread(buf, 1, SAMPLE, in);
        fclose(in);
        struct lp_buf out = LP_BUF_INIT;
        if (n && lp_codec_compress(NULL, p->codec, p->level, buf, n, &out) == 0 && out.len)
            p->ratio_hint = (double)n / (double)out.len;
        lp_buf_release(&out);
        free(buf);
    }
}

/* A dry run's view of the files after the age actions of plan: deleted
 * ones gone, archived ones replaced by their archive at its estimated size
 * (on the archive's volume), free space moved accordingly. */
static void simulate_age(const struct lp_retention *r, const struct lp_rt_scan *sc,
                         const struct lp_rt_plan *plan, struct lp_rt_scan *out)
{
    memset(out, 0, sizeof(*out));
    unsigned char *fate = lp_xcalloc(sc->n_files ? sc->n_files : 1, 1); /* 1 gone, 2 archived */
    uint64_t *est = lp_xcalloc(sc->n_files ? sc->n_files : 1, sizeof(*est));
    for (size_t i = 0; i < plan->n; i++) {
        fate[plan->a[i].file] = plan->a[i].act == LP_RT_DO_DELETE ? 1 : 2;
        est[plan->a[i].file] = plan->a[i].est_out;
    }
    out->n_vols = sc->n_vols;
    out->vols = lp_xcalloc(sc->n_vols ? sc->n_vols : 1, sizeof(*out->vols));
    memcpy(out->vols, sc->vols, sc->n_vols * sizeof(*out->vols));
    out->pstat = lp_xcalloc(r->n ? r->n : 1, sizeof(*out->pstat));
    memcpy(out->pstat, sc->pstat, r->n * sizeof(*out->pstat));
    out->files = lp_xcalloc(sc->n_files ? sc->n_files : 1, sizeof(*out->files));
    for (size_t i = 0; i < sc->n_files; i++) {
        const struct lp_rt_file *f = &sc->files[i];
        const struct lp_rt_policy *p = &r->pols[f->policy];
        int vol_ok = f->volume >= 0 && (size_t)f->volume < out->n_vols;
        if (fate[i] == 1) {
            if (vol_ok)
                out->vols[f->volume].free_bytes += f->disk;
            continue;
        }
        struct lp_rt_file g = *f;
        char dst_dir[PATH_MAX], dst[PATH_MAX + 16];
        if (fate[i] == 2 && !archive_dest(p, f, dst_dir, sizeof(dst_dir), dst, sizeof(dst))) {
            uint64_t size = est[i] ? est[i] : f->size;
            if (vol_ok)
                out->vols[f->volume].free_bytes += f->disk;
            if (p->archive_volume >= 0 && (size_t)p->archive_volume < out->n_vols) {
                struct lp_rt_volume *av = &out->vols[p->archive_volume];
                av->free_bytes = av->free_bytes > size ? av->free_bytes - size : 0;
            }
            g.path = lp_xstrdup(dst);
            g.kind = LP_RT_ARCHIVE;
            g.codec = p->codec;
            g.orig_size = f->size;
            g.size = g.disk = size;
            g.volume = p->archive_volume;
        } else {
            g.path = lp_xstrdup(f->path);
        }
        g.rel = lp_xstrdup(f->rel);
        out->files[out->n_files++] = g;
    }
    out->cap = sc->n_files;
    free(fate);
    free(est);
}

static void run_files(struct run *u)
{
    struct lp_retention *r = u->r;
    if (!r->n)
        return;
    if (!u->o->dry_run) {
        for (size_t i = 0; i < r->n; i++) {
            const char *dirs[2] = {r->pols[i].root, r->pols[i].archive_root};
            for (int k = 0; k < 2; k++) {
                if (!dirs[k])
                    continue;
                int n = lp_archive_clean_temps(dirs[k]);
                if (n > 0) {
                    char why[96];
                    snprintf(why, sizeof(why), "removed %d temp file(s) of interrupted archiving",
                             n);
                    record(u, &(struct rt_event){.policy = r->pols[i].name,
                                                 .kind = RT_KIND_FILES,
                                                 .action = RT_CLEANUP,
                                                 .target = dirs[k],
                                                 .age_ns = -1,
                                                 .reason = why,
                                                 .result = RT_OK});
                }
            }
        }
    }
    struct lp_rt_scan sc;
    lp_rt_scan(&sc, r->pols, r->sel, r->n);
    scan_problems(u, &sc);
    for (size_t i = 0; i < r->n; i++)
        if (sc.pstat[i].root_missing)
            lp_log(LP_LOG_INFO, "policy root does not exist (yet): nothing to do",
                   "policy=%s root=\"%s\"", r->pols[i].name, r->pols[i].root);
    if (u->o->dry_run)
        sample_ratios(r, &sc);
    struct lp_rt_plan plan = {0};
    lp_rt_plan(r->pols, r->n, sc.files, sc.n_files, sc.vols, sc.n_vols, u->now, LP_RT_PHASE_AGE,
               &plan);
    execute(u, &sc, &plan);
    if (!stopping(u)) {
        /* sizes and free space, on what is there after the age rules: a
         * real run scans again; a dry run takes the files as the age rules
         * leave them (archives at their estimated size), so that it shows
         * exactly the steps a run takes */
        struct lp_rt_scan next;
        if (u->o->dry_run)
            simulate_age(r, &sc, &plan, &next);
        else
            lp_rt_scan(&next, r->pols, r->sel, r->n);
        lp_rt_plan_release(&plan);
        lp_rt_scan_release(&sc);
        sc = next;
        lp_rt_plan(r->pols, r->n, sc.files, sc.n_files, sc.vols, sc.n_vols, u->now,
                   LP_RT_PHASE_SIZE, &plan);
        execute(u, &sc, &plan);
        if (plan.n && !u->o->dry_run) {
            lp_rt_scan_release(&sc);
            lp_rt_scan(&sc, r->pols, r->sel, r->n);
        }
    }
    /* what is kept */
    for (size_t i = 0; i < r->n; i++) {
        struct summary *s = summary_of(u, r->pols[i].name, RT_KIND_FILES);
        s->kept_n = 0;
        s->kept_bytes = 0;
    }
    /* a dry run keeps what it would not delete, archives at their estimate */
    uint64_t *after = lp_xmalloc((sc.n_files ? sc.n_files : 1) * sizeof(*after));
    for (size_t i = 0; i < sc.n_files; i++)
        after[i] = sc.files[i].size;
    for (size_t i = 0; u->o->dry_run && i < plan.n; i++) {
        if (plan.a[i].act == LP_RT_DO_DELETE)
            after[plan.a[i].file] = UINT64_MAX;
        else if (plan.a[i].est_out)
            after[plan.a[i].file] = plan.a[i].est_out;
    }
    for (size_t i = 0; i < sc.n_files; i++) {
        if (after[i] == UINT64_MAX)
            continue;
        struct summary *s = summary_of(u, r->pols[sc.files[i].policy].name, RT_KIND_FILES);
        s->kept_n++;
        s->kept_bytes += after[i];
    }
    free(after);
    tally(u, &sc);
    lp_rt_plan_release(&plan);
    lp_rt_scan_release(&sc);
}

/* ---- buckets ---- */

/* The deletions of one bucket policy waiting for their batch: plain
 * deletions, and the sources of archives copied (their row says archive). */
struct pending_del {
    const struct lp_rt_file **f;
    struct rt_event *ev; /* reason and dest owned */
    enum lp_rt_why *why;
    size_t n, cap;
};

static void flush_deletes(struct run *u, size_t bi, struct pending_del *pd)
{
    if (!pd->n)
        return;
    struct lp_retention *r = u->r;
    struct lp_rt_bucket *b = &r->bk[bi];
    struct pmetrics *pm = &r->bm[bi];
    int *ok = lp_xcalloc(pd->n, sizeof(*ok));
    char **errs = lp_xcalloc(pd->n, sizeof(*errs));
    lp_rt_bucket_delete(b, pd->f, pd->n, ok, errs);
    for (size_t i = 0; i < pd->n; i++) {
        struct rt_event *ev = &pd->ev[i];
        if (!ok[i]) {
            lp_counter_inc(pm->errors);
            char e[600];
            snprintf(e, sizeof(e), "%s%s", errs[i] ? errs[i] : "not deleted",
                     ev->action == RT_ARCHIVE
                         ? "; copied to the archive, the source stays (the next run "
                           "finishes the move)"
                         : "");
            record_result(u, ev, RT_ERROR, e);
        } else if (ev->action == RT_ARCHIVE) {
            lp_counter_inc(pm->archived);
            lp_counter_add(pm->arch_in, ev->bytes);
            lp_counter_add(pm->arch_out, ev->bytes_out);
            record_result(u, ev, RT_OK, NULL);
        } else {
            count_deleted(r, b->name, lp_rt_why_name(pd->why[i]), ev->bytes, 0);
            record_result(u, ev, RT_OK, NULL);
        }
        free((char *)ev->reason);
        free((char *)ev->dest);
        free(errs[i]);
    }
    free(ok);
    free(errs);
    pd->n = 0;
}

static void queue_delete(struct run *u, size_t bi, struct pending_del *pd,
                         const struct lp_rt_file *f, const struct rt_event *ev, enum lp_rt_why why)
{
    if (pd->n == pd->cap) {
        pd->cap = lp_alloc_nr(pd->cap, pd->n + 1, 256);
        pd->f = lp_xreallocarray(pd->f, pd->cap, sizeof(*pd->f));
        pd->ev = lp_xreallocarray(pd->ev, pd->cap, sizeof(*pd->ev));
        pd->why = lp_xreallocarray(pd->why, pd->cap, sizeof(*pd->why));
    }
    pd->f[pd->n] = f;
    pd->ev[pd->n] = *ev;
    pd->ev[pd->n].reason = lp_xstrdup(ev->reason);
    pd->ev[pd->n].dest = lp_xstrdup(ev->dest);
    pd->why[pd->n] = why;
    pd->n++;
    if (pd->n >= 1000)
        flush_deletes(u, bi, pd);
}

static void run_bucket(struct run *u, size_t bi)
{
    struct lp_retention *r = u->r;
    struct lp_rt_bucket *b = &r->bk[bi];
    struct pmetrics *pm = &r->bm[bi];
    struct summary *s = summary_of(u, b->name, RT_KIND_BUCKET);
    struct lp_rt_file *files = NULL;
    size_t n = 0;
    char err[1024];
    if (lp_rt_bucket_scan(b, &files, &n, err, sizeof(err))) {
        lp_counter_inc(pm->errors);
        record(u, &(struct rt_event){.policy = b->name,
                                     .kind = RT_KIND_BUCKET,
                                     .action = RT_SKIP,
                                     .target = b->root,
                                     .age_ns = -1,
                                     .reason = "cannot list the bucket; nothing done",
                                     .result = RT_ERROR,
                                     .error = err});
        return;
    }
    /* sizes are exact (archiving does not recompress): one pass plans
     * age and size together, in a real run as in a dry run */
    struct lp_rt_plan plan = {0};
    lp_rt_plan(&b->policy, 1, files, n, NULL, 0, u->now, LP_RT_PHASE_ALL, &plan);
    unsigned char *gone = lp_xcalloc(n ? n : 1, 1);
    struct pending_del pd = {0};
    for (size_t i = 0; i < plan.n; i++) {
        if (stopping(u)) {
            lp_log(LP_LOG_WARN, "stopping: run interrupted", "left=%zu", plan.n - i);
            u->failed = 1;
            break;
        }
        const struct lp_rt_action *a = &plan.a[i];
        const struct lp_rt_file *f = &files[a->file];
        char reason[160];
        reason_text(&b->policy, a->why, reason, sizeof(reason));
        struct rt_event ev = {.policy = b->name,
                              .kind = RT_KIND_BUCKET,
                              .action = a->act == LP_RT_DO_ARCHIVE ? RT_ARCHIVE : RT_DELETE,
                              .target = f->path,
                              .bytes = f->size,
                              .age_ns = u->now - f->mtime_ns,
                              .reason = reason};
        if (a->act == LP_RT_DO_DELETE) {
            gone[a->file] = 1;
            if (u->o->dry_run)
                record_result(u, &ev, RT_PLANNED, NULL);
            else
                queue_delete(u, bi, &pd, f, &ev, a->why);
            continue;
        }
        char *dest = lp_rt_bucket_archive_dest(b, f);
        ev.dest = dest;
        ev.bytes_out = f->size;
        if (f->pending && b->archive_prefix) {
            lp_counter_inc(pm->skipped);
            ev.reason = "its batch may still be rewritten (open ledger record): not moved";
            record_result(u, &ev, RT_SKIPPED, NULL);
        } else if (u->o->dry_run) {
            record_result(u, &ev, RT_PLANNED, NULL);
        } else {
            int moved = 0;
            if (lp_rt_bucket_archive(b, f, &moved, err, sizeof(err))) {
                lp_counter_inc(pm->errors);
                record_result(u, &ev, RT_ERROR, err);
            } else if (moved) {
                queue_delete(u, bi, &pd, f, &ev, a->why);
            } else {
                lp_counter_inc(pm->archived);
                lp_counter_add(pm->arch_in, f->size);
                lp_counter_add(pm->arch_out, f->size);
                record_result(u, &ev, RT_OK, NULL);
            }
        }
        free(dest);
    }
    flush_deletes(u, bi, &pd);
    free(pd.f);
    free(pd.ev);
    free(pd.why);
    /* what the policy holds afterwards (a dry run: as planned) */
    uint64_t live = 0, arch = 0;
    for (size_t i = 0; i < n; i++) {
        if (gone[i])
            continue;
        s->kept_n++;
        s->kept_bytes += files[i].size;
        if (files[i].kind == LP_RT_ARCHIVE)
            arch += files[i].size;
        else
            live += files[i].size;
    }
    lp_gauge_set(pm->seg_bytes, (int64_t)live);
    lp_gauge_set(pm->arch_bytes, (int64_t)arch);
    free(gone);
    lp_rt_plan_release(&plan);
    lp_rt_bucket_files_release(files, n);
}

static void run_buckets(struct run *u)
{
    for (size_t i = 0; i < u->r->nb && !stopping(u); i++)
        run_bucket(u, i);
}

/* ---- indices ---- */

static void run_indices(struct run *u)
{
    const struct lp_config_retention *rc = &u->r->cfg->retention;
    for (size_t i = 0; i < rc->n_elasticsearch; i++) {
        if (stopping(u))
            return;
        const struct lp_config_index_policy *p = &rc->elasticsearch[i];
        struct pmetrics *pm = &u->r->im[i];
        struct summary *s = summary_of(u, p->name, RT_KIND_INDICES);
        struct lp_rt_indices l;
        char err[1024];
        if (lp_rt_indices_list(p, &l, err, sizeof(err))) {
            lp_counter_inc(pm->errors);
            record(u, &(struct rt_event){.policy = p->name,
                                         .kind = RT_KIND_INDICES,
                                         .action = RT_SKIP,
                                         .target = p->index_pattern,
                                         .age_ns = -1,
                                         .reason = "cannot list the indices; nothing deleted",
                                         .result = RT_ERROR,
                                         .error = err});
            continue;
        }
        char reason[96], d[32];
        fmt_dur_ms(p->delete_after_ms, d, sizeof(d));
        for (size_t k = 0; k < l.n; k++) {
            const struct lp_rt_index *x = &l.ix[k];
            int64_t age = x->end_ns ? u->now - x->end_ns : -1;
            if (x->skip) {
                s->kept_n++;
                s->kept_bytes += x->bytes;
                continue;
            }
            if (age < p->delete_after_ms * LP_NS_PER_MS) {
                s->kept_n++;
                s->kept_bytes += x->bytes;
                continue;
            }
            snprintf(reason, sizeof(reason), "delete_after %s (date from %s)", d, x->date_source);
            struct rt_event ev = {.policy = p->name,
                                  .kind = RT_KIND_INDICES,
                                  .action = RT_INDEX_DELETE,
                                  .target = x->name,
                                  .bytes = x->bytes,
                                  .age_ns = age,
                                  .reason = reason};
            if (u->o->dry_run) {
                record_result(u, &ev, RT_PLANNED, NULL);
                continue;
            }
            int gone;
            if (lp_rt_index_delete(p, x->name, &gone, err, sizeof(err))) {
                lp_counter_inc(pm->errors);
                record_result(u, &ev, RT_ERROR, err);
                continue;
            }
            count_deleted(u->r, p->name, "delete_after", x->bytes, 1);
            if (gone)
                ev.reason = "already gone";
            record_result(u, &ev, RT_OK, NULL);
        }
        lp_rt_indices_release(&l);
    }
}

/* ---- report ---- */

static void report_table(struct run *u, FILE *out)
{
    char ts[LP_RFC3339_MAX];
    lp_time_format_rfc3339(u->now, 0, ts);
    fprintf(out, "logpipe-retention %s at %s%s\n\n", u->o->dry_run ? "--dry-run" : "run", ts,
            u->o->dry_run ? " (nothing is changed; sizes after archiving are estimates)" : "");
    if (u->n_rows) {
        fprintf(out, "%-16s %-13s %-8s %10s %10s %8s  %-34s %s\n", "POLICY", "ACTION", "RESULT",
                "SIZE", "AFTER", "AGE", "REASON", "TARGET");
        for (size_t i = 0; i < u->n_rows; i++) {
            const struct row *w = &u->rows[i];
            char sz[32] = "-", af[32] = "-", age[32] = "-";
            if (w->bytes || w->action != RT_CLEANUP)
                fmt_size(w->bytes, sz, sizeof(sz));
            if (w->bytes_out)
                fmt_size(w->bytes_out, af, sizeof(af));
            else if (w->action == RT_ARCHIVE)
                snprintf(af, sizeof(af), "?");
            if (w->age_ns >= 0)
                fmt_age(w->age_ns, age, sizeof(age));
            fprintf(out, "%-16s %-13s %-8s %10s %10s %8s  %-34s %s%s%s\n", w->policy,
                    action_names[w->action], result_names[w->result], sz, af, age,
                    w->reason ? w->reason : "", w->target, w->error ? "  error: " : "",
                    w->error ? w->error : "");
        }
    } else {
        fprintf(out, "no action due\n");
    }
    fprintf(out, "\n%-16s %-8s %18s %18s %12s %18s %14s %6s %6s\n", "POLICY", "KIND",
            "ARCHIVE (files)", "DELETE (files)", "FREES", "KEPT (files)", "OPEN (never)", "SKIP",
            "ERRORS");
    for (size_t i = 0; i < u->n_sum; i++) {
        const struct summary *s = &u->sum[i];
        char a[32], d[32], fr[32], k[32], o[32], c1[48], c2[48], c3[48], c4[48];
        fmt_size(s->archive_in, a, sizeof(a));
        fmt_size(s->delete_bytes, d, sizeof(d));
        uint64_t frees =
            s->delete_bytes + (s->archive_in > s->archive_out ? s->archive_in - s->archive_out : 0);
        fmt_size(frees, fr, sizeof(fr));
        fmt_size(s->kept_bytes, k, sizeof(k));
        fmt_size(s->open_bytes, o, sizeof(o));
        snprintf(c1, sizeof(c1), "%s (%zu)", a, s->archive_n);
        snprintf(c2, sizeof(c2), "%s (%zu)", d, s->delete_n);
        snprintf(c3, sizeof(c3), "%s (%zu)", k, s->kept_n);
        snprintf(c4, sizeof(c4), "%s (%zu)", o, s->open_n);
        fprintf(out, "%-16s %-8s %18s %18s %12s %18s %14s %6zu %6zu\n", s->policy, s->kind, c1, c2,
                fr, c3, c4, s->skip_n, s->error_n);
    }
}

static void report_json(struct run *u, FILE *out)
{
    struct lp_buf b = LP_BUF_INIT;
    char ts[LP_RFC3339_MAX];
    lp_time_format_rfc3339(u->now, 3, ts);
    lp_buf_appendf(&b, "{\"dry_run\":%s,\"now\":\"%s\",\"run_id\":\"%s\",\"ok\":%s,\"actions\":[",
                   u->o->dry_run ? "true" : "false", ts, u->run_id, u->failed ? "false" : "true");
    for (size_t i = 0; i < u->n_rows; i++) {
        lp_buf_puts(&b, i ? ",{" : "{");
        row_json(&b, &u->rows[i]);
        lp_buf_puts(&b, "}");
    }
    lp_buf_puts(&b, "],\"policies\":[");
    for (size_t i = 0; i < u->n_sum; i++) {
        const struct summary *s = &u->sum[i];
        uint64_t frees =
            s->delete_bytes + (s->archive_in > s->archive_out ? s->archive_in - s->archive_out : 0);
        lp_buf_appendf(&b, "%s{\"name\":", i ? "," : "");
        lp_buf_append_json_string(&b, s->policy, strlen(s->policy));
        lp_buf_appendf(&b,
                       ",\"kind\":\"%s\",\"archive_files\":%zu,\"archive_bytes\":%" PRIu64
                       ",\"archive_bytes_after\":%" PRIu64 ",\"delete_count\":%zu"
                       ",\"delete_bytes\":%" PRIu64 ",\"bytes_freed\":%" PRIu64
                       ",\"kept_count\":%zu,\"kept_bytes\":%" PRIu64 ",\"open_segments\":%zu"
                       ",\"open_bytes\":%" PRIu64 ",\"skipped\":%zu,\"errors\":%zu}",
                       s->kind, s->archive_n, s->archive_in, s->archive_out, s->delete_n,
                       s->delete_bytes, frees, s->kept_n, s->kept_bytes, s->open_n, s->open_bytes,
                       s->skip_n, s->error_n);
    }
    lp_buf_puts(&b, "]}\n");
    fwrite(b.data, 1, b.len, out);
    lp_buf_release(&b);
}

/* ---- the run ---- */

static int open_audit(struct run *u)
{
    const char *path = u->r->cfg->retention.audit_log;
    if (!path || !*path)
        return 0;
    char dir[PATH_MAX];
    dirname_into(path, dir, sizeof(dir));
    int rc = lp_mkdirs(dir, 0750);
    int fd = rc ? -1 : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        lp_log(LP_LOG_ERROR, "cannot open the audit log; nothing done", "path=\"%s\" error=\"%s\"",
               path, lp_strerror(rc ? rc : -errno));
        return LP_EINVAL;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        lp_log(LP_LOG_ERROR,
               "another logpipe-retention is running (it holds the audit log "
               "lock); nothing done",
               "path=\"%s\"", path);
        close(fd);
        return LP_EAGAIN;
    }
    u->audit_fd = fd;
    return 0;
}

int lp_retention_run(struct lp_retention *r, const struct lp_rt_opts *o)
{
    struct run u = {.r = r, .o = o, .audit_fd = -1};
    int64_t t0 = lp_time_mono_ns();
    u.now = o->now_ns ? o->now_ns : lp_time_real_ns();
    snprintf(u.run_id, sizeof(u.run_id), "%" PRIx64 "-%x", (uint64_t)lp_time_real_ns(),
             (unsigned)getpid());
    if (!o->dry_run && open_audit(&u)) {
        lp_counter_inc(r->runs_err);
        return 1;
    }
    if (!o->dry_run)
        lp_log(LP_LOG_INFO, "run started",
               "run_id=%s policies=%zu bucket_policies=%zu index_policies=%zu", u.run_id, r->n,
               r->nb, r->cfg->retention.n_elasticsearch);
    run_files(&u);
    run_buckets(&u);
    run_indices(&u);
    if (u.audit_fd >= 0) {
        if (fsync(u.audit_fd)) {
            lp_log(LP_LOG_ERROR, "cannot fsync the audit log", "error=\"%s\"", lp_strerror(-errno));
            u.failed = 1;
        }
        close(u.audit_fd); /* releases the lock */
    }
    if (o->report) {
        if (o->json)
            report_json(&u, o->report);
        else
            report_table(&u, o->report);
        fflush(o->report);
    }
    double secs = (double)(lp_time_mono_ns() - t0) / 1e9;
    if (!o->dry_run) {
        int64_t end = lp_time_real_ns() / LP_NS_PER_SEC;
        lp_counter_inc(u.failed ? r->runs_err : r->runs_ok);
        lp_gauge_set(r->last_run, end);
        if (!u.failed)
            lp_gauge_set(r->last_ok, end);
        if (r->duration)
            lp_histogram_observe(r->duration, secs);
        uint64_t arch = 0, del = 0;
        for (size_t i = 0; i < u.n_sum; i++) {
            arch += u.sum[i].archive_n;
            del += u.sum[i].delete_n;
        }
        lp_log(u.failed ? LP_LOG_WARN : LP_LOG_INFO, "run finished",
               "run_id=%s archived=%" PRIu64 " deleted=%" PRIu64 " failed=%d seconds=%.3f",
               u.run_id, arch, del, u.failed, secs);
    }
    for (size_t i = 0; i < u.n_rows; i++) {
        free(u.rows[i].target);
        free(u.rows[i].dest);
        free(u.rows[i].reason);
        free(u.rows[i].error);
    }
    free(u.rows);
    free(u.sum);
    free(u.archive_full);
    return u.failed;
}
