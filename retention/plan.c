/* The retention rules (plan.h): age, then total size, then free space. */
#include "plan.h"
#include "lp_alloc.h"

#include <stdlib.h>
#include <string.h>

const char *lp_rt_why_name(enum lp_rt_why w)
{
    switch (w) {
    case LP_RT_WHY_ARCHIVE_AFTER: return "archive_after";
    case LP_RT_WHY_DELETE_AFTER: return "delete_after";
    case LP_RT_WHY_MAX_TOTAL: return "max_total_bytes";
    case LP_RT_WHY_MIN_FREE: return "min_free_bytes";
    }
    return "?";
}

static int by_policy_age(const void *a, const void *b)
{
    const struct lp_rt_file *x = a, *y = b;
    if (x->policy != y->policy)
        return x->policy < y->policy ? -1 : 1;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->path, y->path);
}

static void push(struct lp_rt_plan *p, enum lp_rt_act act, enum lp_rt_why why, size_t file,
                 int policy, uint64_t est_out)
{
    LP_ALLOC_GROW(p->a, p->n + 1, p->cap, 64);
    p->a[p->n++] = (struct lp_rt_action){act, why, file, policy, est_out};
}

double lp_rt_policy_ratio(const struct lp_rt_file *files, size_t n_files, int policy)
{
    uint64_t in = 0, out = 0;
    for (size_t i = 0; i < n_files; i++)
        if (files[i].policy == policy && files[i].kind == LP_RT_ARCHIVE && files[i].orig_size &&
            files[i].size) {
            in += files[i].orig_size;
            out += files[i].size;
        }
    return in && out ? (double)in / (double)out : 0;
}

/* Per-file state while planning one policy. */
enum { ST_KEEP, ST_ARCHIVE, ST_DELETE };

void lp_rt_plan(const struct lp_rt_policy *pols, size_t n_pols, struct lp_rt_file *files,
                size_t n_files, struct lp_rt_volume *vols, size_t n_vols, int64_t now_ns,
                int phases, struct lp_rt_plan *out)
{
    if (n_files > 1)
        qsort(files, n_files, sizeof(*files), by_policy_age);
    unsigned char *st = lp_xcalloc(n_files ? n_files : 1, 1);
    size_t *act_of = lp_xcalloc(n_files ? n_files : 1, sizeof(*act_of)); /* archive action + 1 */
    size_t lo = 0;
    for (size_t pi = 0; pi < n_pols; pi++) {
        const struct lp_rt_policy *p = &pols[pi];
        while (lo < n_files && files[lo].policy < (int)pi)
            lo++;
        size_t hi = lo;
        while (hi < n_files && files[hi].policy == (int)pi)
            hi++;
        double ratio = lp_rt_policy_ratio(files + lo, hi - lo, (int)pi);
        if (ratio <= 0)
            ratio = p->ratio_hint;
            /* the archived size we expect for a segment (its own size when
             * nothing tells: the safe side for the size rules) */
#define EST(f) (ratio > 0 ? (uint64_t)((double)(f)->size / ratio) + 1 : (f)->size)
        if (phases & LP_RT_PHASE_AGE) {
            for (size_t i = lo; i < hi; i++) {
                struct lp_rt_file *f = &files[i];
                int64_t age = now_ns - f->mtime_ns;
                if (p->delete_after_ns && age >= p->delete_after_ns &&
                    (f->kind == LP_RT_ARCHIVE || !p->archive_after_ns ||
                     age >= p->archive_after_ns)) {
                    st[i] = ST_DELETE;
                    push(out, LP_RT_DO_DELETE, LP_RT_WHY_DELETE_AFTER, i, (int)pi, 0);
                } else if (f->kind == LP_RT_SEGMENT && p->archive_after_ns &&
                           age >= p->archive_after_ns) {
                    st[i] = ST_ARCHIVE;
                    push(out, LP_RT_DO_ARCHIVE, LP_RT_WHY_ARCHIVE_AFTER, i, (int)pi,
                         ratio > 0 ? EST(f) : 0);
                    act_of[i] = out->n;
                }
            }
        }
        if (!(phases & LP_RT_PHASE_SIZE)) {
            lo = hi;
            continue;
        }
        /* what stays, in bytes (archives-to-be at their estimate) */
        uint64_t total = 0;
        for (size_t i = lo; i < hi; i++)
            if (st[i] == ST_KEEP)
                total += files[i].size;
            else if (st[i] == ST_ARCHIVE)
                total += EST(&files[i]);
        /* deletions by age and archiving free space on their volumes */
        for (size_t i = lo; i < hi; i++) {
            struct lp_rt_file *f = &files[i];
            if (f->volume < 0 || (size_t)f->volume >= n_vols)
                continue;
            if (st[i] == ST_DELETE) {
                vols[f->volume].free_bytes += f->disk;
            } else if (st[i] == ST_ARCHIVE && p->archive_volume >= 0 &&
                       (size_t)p->archive_volume < n_vols) {
                vols[f->volume].free_bytes += f->disk;
                uint64_t e = EST(f);
                struct lp_rt_volume *av = &vols[p->archive_volume];
                av->free_bytes = av->free_bytes > e ? av->free_bytes - e : 0;
            }
        }
        /* turning a planned archive into a deletion drops its action */
#define DROP_ARCHIVE(i)                                                          \
    do {                                                                         \
        if (act_of[i])                                                           \
            out->a[act_of[i] - 1].act = LP_RT_DO_DELETE,                         \
                               out->a[act_of[i] - 1].why = (enum lp_rt_why) - 1; \
    } while (0)
        if (p->max_total_bytes) {
            for (size_t i = lo; i < hi && total > p->max_total_bytes; i++) {
                struct lp_rt_file *f = &files[i];
                if (st[i] == ST_DELETE)
                    continue;
                if (st[i] == ST_KEEP && f->kind == LP_RT_SEGMENT && p->archive_after_ns &&
                    !p->prune_unarchived)
                    continue; /* not archived yet: the cap is over what was kept */
                uint64_t held = st[i] == ST_ARCHIVE ? EST(f) : f->size;
                if (st[i] == ST_ARCHIVE && p->archive_volume >= 0 &&
                    (size_t)p->archive_volume < n_vols)
                    vols[p->archive_volume].free_bytes += EST(f);
                else if (f->volume >= 0 && (size_t)f->volume < n_vols)
                    vols[f->volume].free_bytes += f->disk;
                DROP_ARCHIVE(i);
                st[i] = ST_DELETE;
                total -= held;
                push(out, LP_RT_DO_DELETE, LP_RT_WHY_MAX_TOTAL, i, (int)pi, 0);
            }
        }
        if (p->min_free_bytes && p->volume >= 0 && (size_t)p->volume < n_vols) {
            struct lp_rt_volume *v = &vols[p->volume];
            for (size_t i = lo; i < hi && v->free_bytes < p->min_free_bytes; i++) {
                struct lp_rt_file *f = &files[i];
                if (st[i] == ST_DELETE)
                    continue;
                if (st[i] == ST_ARCHIVE) {
                    /* its segment's space is counted as freed already;
                     * not writing its archive helps only on this volume */
                    if (p->archive_volume != p->volume)
                        continue;
                    v->free_bytes += EST(f);
                } else if (f->volume != p->volume) {
                    continue;
                } else {
                    v->free_bytes += f->disk;
                }
                DROP_ARCHIVE(i);
                st[i] = ST_DELETE;
                push(out, LP_RT_DO_DELETE, LP_RT_WHY_MIN_FREE, i, (int)pi, 0);
            }
        }
#undef DROP_ARCHIVE
#undef EST
        lo = hi;
    }
    /* drop the archive actions replaced by deletions */
    size_t w = 0;
    for (size_t r = 0; r < out->n; r++)
        if (!(out->a[r].act == LP_RT_DO_DELETE && (int)out->a[r].why == -1))
            out->a[w++] = out->a[r];
    out->n = w;
    free(st);
    free(act_of);
}

void lp_rt_plan_release(struct lp_rt_plan *p)
{
    free(p->a);
    memset(p, 0, sizeof(*p));
}
