/* The shipper's loop: discovery and inotify, reading under backpressure
 * and rate limits, batching deadlines, delivery reports, rotation and
 * truncation checks, checkpoints, graceful shutdown. */
#define LP_LOG_MODULE "shipper"
#include "shipper_int.h"

#include "lp_alloc.h"
#include "lp_file.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_http.h"
#include "lp_log.h"
#include "lp_time.h"

#include "lp_regex.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

static const char *const ns_families[NS_FAMILIES] = {
    "logpipe_shipper_namespace_events_total", "logpipe_shipper_namespace_bytes_total",
    "logpipe_shipper_namespace_excluded_events_total"};
static const char *const ns_helps[NS_FAMILIES] = {
    "Events shipped, by namespace (metrics.max_namespaces series; later ones: _other).",
    "Bytes of the events' messages shipped, by namespace.",
    "Events of pods annotated logpipe.io/exclude, by namespace."};

static void metrics_init(struct lp_shipper *s)
{
    struct lp_metrics *m = s->metrics;
    struct shipper_metrics *x = &s->m;
    s->tenants = lp_tenants_new(m, ns_families, ns_helps, NS_FAMILIES,
                                (size_t)s->cfg->metrics.max_namespaces);
    const char *lost = "logpipe_shipper_bytes_lost_total";
    const char *lost_help = "Bytes that could not be shipped, by reason.";
    x->files = lp_metrics_gauge(m, "logpipe_shipper_files", "Files being tailed.", NULL);
    static const double rb[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    x->rescan_seconds = lp_metrics_histogram(m, "logpipe_shipper_rescan_seconds",
                                             "Time one rescan of the input globs took.", NULL, rb,
                                             sizeof(rb) / sizeof(rb[0]));
    x->bytes_read = lp_metrics_counter(m, "logpipe_shipper_read_bytes_total", "Bytes read.", NULL);
    x->lines_read =
        lp_metrics_counter(m, "logpipe_shipper_read_lines_total", "Physical lines read.", NULL);
    x->excluded = lp_metrics_counter(m, "logpipe_shipper_excluded_events_total",
                                     "Events read but not shipped: their pod is annotated "
                                     "logpipe.io/exclude (their offsets are checkpointed).",
                                     NULL);
    x->hint_bad = lp_metrics_counter(m, "logpipe_shipper_hints_invalid_total",
                                     "Pod hints that could not be applied (a logpipe.io/multiline "
                                     "pattern that does not compile, too many distinct values "
                                     "in use at once).",
                                     NULL);
    x->hint_evicted = lp_metrics_counter(
        m, "logpipe_shipper_hints_evicted_total",
        "Compiled logpipe.io/multiline values no file used any more, freed to make room for "
        "a new value.",
        NULL);
    x->hint_throttled = lp_metrics_counter(
        m, "logpipe_shipper_hints_throttled_total",
        "Times a file's logpipe.io/multiline pattern went over its CPU budget "
        "(shipper.kubernetes.hint_cpu): its lines used the input's own rules for a minute.",
        NULL);
    x->events = lp_metrics_counter(m, "logpipe_shipper_events_total",
                                   "Events after partial and multiline joining.", NULL);
    x->batches = lp_metrics_counter(m, "logpipe_shipper_batches_total", "Batches produced.", NULL);
    x->batch_bytes = lp_metrics_counter(m, "logpipe_shipper_batch_bytes_total",
                                        "Compressed bytes produced.", NULL);
    x->records_produced = lp_metrics_counter(m, "logpipe_shipper_delivered_messages_total",
                                             "Messages acknowledged by Kafka.", NULL);
    x->replays = lp_metrics_counter(m, "logpipe_shipper_replays_total",
                                    "Files re-read from their checkpoint after a failure.", NULL);
    x->truncations = lp_metrics_counter(m, "logpipe_shipper_truncations_total",
                                        "Files seen truncated (copytruncate).", NULL);
    x->rotations =
        lp_metrics_counter(m, "logpipe_shipper_rotations_total", "Files seen rotated away.", NULL);
    x->fatal_rebuilds = lp_metrics_counter(m, "logpipe_shipper_producer_rebuilds_total",
                                           "Producers rebuilt after a fatal error.", NULL);
    x->lost_deleted = lp_metrics_counter(m, lost, lost_help, "reason=\"deleted\"");
    x->lost_truncated = lp_metrics_counter(m, lost, lost_help, "reason=\"truncated\"");
    x->lost_too_large = lp_metrics_counter(m, lost, lost_help, "reason=\"too_large\"");
    x->lost_fd_cap = lp_metrics_counter(m, lost, lost_help, "reason=\"deleted_fd_cap\"");
    x->malformed =
        lp_metrics_counter(m, "logpipe_shipper_malformed_lines_total",
                           "Runtime lines that did not decode (shipped raw, flagged).", NULL);
    x->rate_limited_ms = lp_metrics_counter(m, "logpipe_shipper_rate_limited_milliseconds_total",
                                            "Time files waited for their rate limit.", NULL);
    x->closed_idle = lp_metrics_counter(m, "logpipe_shipper_files_closed_idle_total",
                                        "Files closed while idle (close_inactive, or to free a "
                                        "descriptor at max_open_files).",
                                        NULL);
    x->reopened = lp_metrics_counter(m, "logpipe_shipper_files_reopened_total",
                                     "Idle-closed files opened again because they changed.", NULL);
    x->idle_files =
        lp_metrics_gauge(m, "logpipe_shipper_idle_files",
                         "Files closed while idle, watched by stat at each rescan.", NULL);
    x->files_waiting = lp_metrics_gauge(m, "logpipe_shipper_files_waiting",
                                        "Files found at the last rescan that wait for a "
                                        "descriptor (max_open_files reached, none idle).",
                                        NULL);
    x->inflight_bytes = lp_metrics_gauge(m, "logpipe_shipper_inflight_bytes",
                                         "Bytes produced and not yet acknowledged.", NULL);
    x->lag_bytes = lp_metrics_gauge(m, "logpipe_shipper_lag_bytes",
                                    "Bytes of all files not yet acknowledged.", NULL);
    x->max_lag_bytes = lp_metrics_gauge(m, "logpipe_shipper_max_file_lag_bytes",
                                        "Largest unacknowledged byte count of one file.", NULL);
}

static struct tail *find_tail(struct lp_shipper *s, uint64_t dev, uint64_t ino)
{
    return (struct tail *)lp_idmap_get(&s->tail_ix, dev, ino);
}

/* Every tail is in the list and, by its identity, in the map: discovery
 * looks each file up on every rescan, so the lookup must not walk the list. */
static uint64_t name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

static void link_tail(struct lp_shipper *s, struct tail *t)
{
    t->next = s->tails;
    t->prev = NULL;
    if (s->tails)
        s->tails->prev = t;
    s->tails = t;
    s->ntails++;
    lp_idmap_put(&s->tail_ix, t->dev, t->ino, (uintptr_t)t);
    if (t->wd >= 0 && t->base)
        lp_idmap_put(&s->name_ix, (uint64_t)t->wd, name_hash(t->base), (uintptr_t)t);
}

/* Takes t out of the list and the maps and frees it (its checkpoint entry
 * stays). */
static void drop_tail(struct lp_shipper *s, struct tail *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        s->tails = t->next;
    if (t->next)
        t->next->prev = t->prev;
    s->ntails--;
    if (find_tail(s, t->dev, t->ino) == t)
        lp_idmap_del(&s->tail_ix, t->dev, t->ino);
    if (t->wd >= 0 && t->base &&
        lp_idmap_get(&s->name_ix, (uint64_t)t->wd, name_hash(t->base)) == (uintptr_t)t)
        lp_idmap_del(&s->name_ix, (uint64_t)t->wd, name_hash(t->base));
    tail_free(t);
    lp_gauge_set(s->m.files, (int64_t)s->ntails);
}

/* 1 when closing t loses nothing: read to the size last seen, nothing
 * being assembled (a partial line's parts, a multiline group: closed, the
 * file would not be read again to finish them), batched, in flight or to
 * replay, so its checkpoint entry is its state (close_idle checks the size
 * the file has now). */
static int closable(const struct tail *t)
{
    return t->identified && !t->rotated && !t->deleted && !t->closing && !t->batch_open &&
           !t->ninflight && !t->replay && t->read_off >= t->size_seen &&
           lp_assembler_pending_offset(t->as) == UINT64_MAX;
}

/* Closes an idle file; it stays known by its checkpoint entry, marked
 * closed with the size and mtime it had, and is opened again (resuming at
 * the entry's offset, identity checked as after a restart) once either
 * differs. Returns 1 when closed. */
static int close_idle(struct lp_shipper *s, struct tail *t, const char *why)
{
    struct stat st;
    if (!closable(t) || fstat(t->fd, &st) != 0 || (uint64_t)st.st_size != t->read_off) {
        t->dirty = 1; /* grew since the last look: read it instead */
        return 0;
    }
    tail_checkpoint(t, lp_time_real_ns() / LP_NS_PER_SEC);
    struct lp_ckpt_entry *e = lp_ckpt_find(&s->ckpt, t->dev, t->ino);
    if (!e || e->generation != t->gen || e->offset != t->acked_off)
        return 0; /* its offset cannot be proven: keep it open */
    e->closed = 1;
    e->size = (uint64_t)st.st_size;
    e->mtime_ns = (int64_t)st.st_mtim.tv_sec * LP_NS_PER_SEC + st.st_mtim.tv_nsec;
    s->ckpt.dirty = 1;
    lp_counter_inc(s->m.closed_idle);
    lp_log(LP_LOG_DEBUG, "closed idle file", "path=\"%s\" offset=%llu why=%s", t->path,
           (unsigned long long)t->acked_off, why);
    drop_tail(s, t);
    return 1;
}

static int cmp_idle(const void *a, const void *b)
{
    int64_t x = (*(struct tail *const *)a)->last_growth_ns,
            y = (*(struct tail *const *)b)->last_growth_ns;
    return (x > y) - (x < y);
}

/* A descriptor for one more file: below max_open there is one; at it, the
 * longest-idle closable file is closed. 0 when none can be freed now. */
static int make_room(struct lp_shipper *s)
{
    if (s->ntails < s->max_open)
        return 1;
    if (!s->evict_built) {
        s->evict_built = 1;
        s->evict = lp_xreallocarray(s->evict, (s->ntails ? s->ntails : 1), sizeof(*s->evict));
        s->nevict = s->evict_next = 0;
        for (struct tail *t = s->tails; t; t = t->next)
            if (closable(t))
                s->evict[s->nevict++] = t;
        qsort(s->evict, s->nevict, sizeof(*s->evict), cmp_idle);
    }
    while (s->evict_next < s->nevict) {
        /* each candidate is closed at most once, so none is freed twice */
        if (close_idle(s, s->evict[s->evict_next++], "max_open_files"))
            return 1;
    }
    return 0;
}

static void add_waiter(struct lp_shipper *s, const char *path, int input_idx)
{
    s->waiting++;
    LP_ALLOC_GROW(s->waitq, s->nwaitq + 1, s->capwaitq, 64);
    s->waitq[s->nwaitq].path = lp_xstrdup(path);
    s->waitq[s->nwaitq++].input_idx = input_idx;
}

static void clear_waiters(struct lp_shipper *s)
{
    for (size_t i = 0; i < s->nwaitq; i++)
        free(s->waitq[i].path);
    s->nwaitq = 0;
    s->waiting = 0;
}

static void on_discovered(void *ctx, const char *path, int input_idx);

/* The files that found no descriptor are tried again (every 200 ms) as
 * others become idle, without a whole rescan of the globs. */
static void retry_waiters(struct lp_shipper *s)
{
    struct waiter *q = s->waitq;
    size_t n = s->nwaitq;
    s->waitq = NULL;
    s->nwaitq = s->capwaitq = 0;
    s->waiting = 0;
    s->evict_built = 0;
    for (size_t i = 0; i < n; i++) {
        if (!make_room(s)) {
            /* no descriptor to be had: the rest wait on, not even stat'ed */
            memmove(q, q + i, (n - i) * sizeof(*q));
            s->waitq = q;
            s->nwaitq = s->capwaitq = n - i;
            s->waiting = n - i;
            q = NULL;
            break;
        }
        on_discovered(s, q[i].path, q[i].input_idx);
        free(q[i].path);
    }
    free(q);
    s->evict_built = 0;
    lp_gauge_set(s->m.files, (int64_t)s->ntails);
    lp_gauge_set(s->m.files_waiting, (int64_t)s->waiting);
}

static void on_discovered(void *ctx, const char *path, int input_idx)
{
    struct lp_shipper *s = ctx;
    struct stat st;
    if (stat(path, &st) != 0)
        return;
    struct tail *t = find_tail(s, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (t) {
        t->dirty = 1;
        return; /* also reached through another path (a symlink): one tail */
    }
    struct lp_ckpt_entry *e = lp_ckpt_find(&s->ckpt, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    int reopen = 0;
    if (e && e->closed) {
        int64_t mtime = (int64_t)st.st_mtim.tv_sec * LP_NS_PER_SEC + st.st_mtim.tv_nsec;
        if ((uint64_t)st.st_size == e->size && mtime == e->mtime_ns) {
            /* closed while idle and unchanged: a stat is all it costs */
            int64_t now_s = lp_time_real_ns() / LP_NS_PER_SEC;
            if (now_s - e->seen_s >= CKPT_SEEN_REFRESH_S || strcmp(e->path, path) != 0) {
                free(e->path);
                e->path = lp_xstrdup(path);
                e->seen_s = now_s;
                s->ckpt.dirty = 1;
            }
            s->idle++;
            return;
        }
        reopen = 1;
    }
    if (!make_room(s)) {
        add_waiter(s, path, input_idx);
        return;
    }
    t = tail_open(s, path, input_idx);
    if (!t) {
        if (errno == EMFILE || errno == ENFILE)
            add_waiter(s, path, input_idx);
        return;
    }
    if (reopen)
        lp_counter_inc(s->m.reopened);
    if (!t)
        return;
    link_tail(s, t);
    tail_identify(t);
}

/* Tails the file at open_path as a rotated file known as orig_path (its
 * old name carries the Kubernetes metadata and is what log.file.path said). */
static struct tail *adopt_as(struct lp_shipper *s, const char *open_path, const char *orig_path,
                             int input_idx, const char *why, const struct tail_inherit *inherit)
{
    struct tail *t = tail_open(s, open_path, input_idx);
    if (!t)
        return NULL;
    free(t->path);
    t->path = lp_xstrdup(orig_path);
    lp_path_meta(orig_path, &t->meta);
    t->rotated = 1;
    link_tail(s, t);
    lp_log(LP_LOG_INFO, why, "path=\"%s\" now=\"%s\"", orig_path, open_path);
    t->inherit = inherit;
    tail_identify(t);
    t->inherit = NULL;
    return t;
}

static void adopt_rotated(struct lp_shipper *s, const char *open_path, const char *orig_path,
                          int input_idx, const char *why)
{
    adopt_as(s, open_path, orig_path, input_idx, why, NULL);
}

/* After a restart, a file that was rotated away (renamed to a name the
 * globs do not match) may still hold bytes that were read but never
 * acknowledged. Find it by (dev, inode) next to its old path and drain it
 * from its checkpoint: a rotated file is never abandoned with unread bytes. */
static void recover_rotated(struct lp_shipper *s)
{
    for (size_t i = 0; i < s->ckpt.n; i++) {
        struct lp_ckpt_entry *e = &s->ckpt.e[i];
        if (find_tail(s, e->dev, e->ino))
            continue;
        struct stat st;
        if (stat(e->path, &st) == 0 && (uint64_t)st.st_ino == e->ino &&
            (uint64_t)st.st_dev == e->dev)
            continue; /* still under its name, just not (or no longer) matched */
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", e->path);
        char *slash = strrchr(dir, '/');
        if (!slash)
            continue;
        *slash = '\0';
        DIR *d = opendir(*dir ? dir : "/");
        if (!d && errno != ENOENT)
            continue; /* unreadable: do not guess */
        struct dirent *de;
        char found[2 * PATH_MAX] = "";
        int exists = 0;
        while (d && (de = readdir(d))) {
            char p[2 * PATH_MAX];
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_ino == e->ino &&
                (uint64_t)st.st_dev == e->dev) {
                exists = 1;
                if ((uint64_t)st.st_size > e->offset)
                    snprintf(found, sizeof(found), "%s", p);
                break;
            }
        }
        if (d)
            closedir(d);
        if (!*found && !exists && e->size > e->offset) {
            /* rotated away and deleted while we were stopped, with bytes
             * we had seen but not shipped: gone, and said so */
            lp_counter_add(s->m.lost_deleted, e->size - e->offset);
            lp_log(LP_LOG_ERROR, "file deleted while stopped before it was shipped",
                   "path=\"%s\" offset=%llu size=%llu unread_bytes_lost=%llu", e->path,
                   (unsigned long long)e->offset, (unsigned long long)e->size,
                   (unsigned long long)(e->size - e->offset));
            e->size = e->offset; /* counted once: saved now, not counted again after a crash */
            shipper_write_checkpoints(s);
            continue;
        }
        if (!*found)
            continue;
        char orig[PATH_MAX];
        snprintf(orig, sizeof(orig), "%s", e->path); /* e moves when tails are added */
        int idx = lp_discover_match(s->cfg->shipper.inputs, s->cfg->shipper.n_inputs, orig);
        adopt_rotated(s, found, orig, idx < 0 ? -1 : idx,
                      "draining a file rotated while we were stopped");
    }
}

/* Names of rotated generations the shipper cannot tail (compressed). */
static int compressed_name(const char *name)
{
    static const char *const ext[] = {".gz", ".zst", ".bz2", ".xz", ".lz4", ".zip"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcmp(name + n - k, ext[i]) == 0)
            return 1;
    }
    return 0;
}

struct generation {
    char path[PATH_MAX];
    int64_t mtime_ns;
};

static int by_mtime(const void *a, const void *b)
{
    const struct generation *x = a, *y = b;
    return (x->mtime_ns > y->mtime_ns) - (x->mtime_ns < y->mtime_ns);
}

#define MAX_GENERATIONS 256 /* per tracked file and start: more is a storm of its own */
/* How long a running shipper may take to notice a new file (inotify, or the
 * rescan): a generation written this long before our last sighting may
 * still be one we never saw. A sibling that old and unknown to every
 * checkpoint cannot be one we shipped (entries outlive their files by
 * checkpoint_expire). */
#define GENERATION_SLACK_S 60

/* 1 when the file at p starts as one of the n checkpointed files known
 * (under its name) starts, or started before its last truncation: a copy of
 * it (logrotate's copytruncate), whose lines were shipped already.
 * Unreadable counts as a copy: not shipped on a guess. */
static int copy_of_known(const char *p, const struct lp_ckpt_entry *const *known, size_t n)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    struct lp_head h;
    int rc = lp_head_read_final(fd, &h);
    close(fd);
    if (rc)
        return 1;
    for (size_t i = 0; i < n; i++)
        if ((known[i]->head.len == h.len && known[i]->head.hash == h.hash) ||
            (known[i]->prev_head.len == h.len && known[i]->prev_head.hash == h.hash))
            return 1; /* a copy of it, or of what it held before a truncation */
    return 0;
}

/* The names in one directory, sorted: every tracked name of a directory
 * is looked up in one reading of it (a flat directory of n tracked files
 * costs one readdir, not n). */
struct listing {
    char dir[PATH_MAX]; /* "" = none read */
    char **names;
    size_t n, cap;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void listing_clear(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    *l = (struct listing){0};
}

/* 0, or -1 when dir cannot be read (the listing is then empty). */
static int listing_read(struct listing *l, const char *dir)
{
    if (l->dir[0] && strcmp(l->dir, dir) == 0)
        return 0;
    listing_clear(l);
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    snprintf(l->dir, sizeof(l->dir), "%s", dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        LP_ALLOC_GROW(l->names, l->n + 1, l->cap, 64);
        l->names[l->n++] = lp_xstrdup(de->d_name);
    }
    closedir(d);
    if (l->n)
        qsort(l->names, l->n, sizeof(*l->names), by_name);
    return 0;
}

/* The first name of l not sorting before prefix (names starting with it
 * follow, contiguous). */
static size_t listing_lower(const struct listing *l, const char *prefix)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(l->names[mid], prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The generations of the file at `path` (written since since_s; known: its n
 * checkpoint entries) that were created and rotated away while we were
 * stopped, or just before we were killed (faster than we noticed: our
 * checkpoints still refreshed seen_s): siblings named <name>.<suffix>
 * (logrotate's .1, Docker's -json.log.1, kubelet's 0.log.<time>) that no
 * checkpoint knows, nothing tails and no input matches, written at most
 * generation_slack() before we last saw the file, and not a copy of a file
 * we knew. Drained oldest first, from their heads, under the tracked name:
 * their lines were never shipped. Older siblings were there before we
 * tracked the name (not ours). */
/* Where the file at path really is, as its directory and name (pointers
 * into real): a /var/log/containers link points into /var/log/pods, where
 * rotation leaves its generations and copies. 0, or -1 without a name. */
static int real_dir_base(const char *path, char real[PATH_MAX], const char **dir, const char **base)
{
    if (!realpath(path, real))
        snprintf(real, PATH_MAX, "%s", path);
    char *slash = strrchr(real, '/');
    if (!slash || !slash[1])
        return LP_EINVAL;
    *slash = '\0';
    *dir = *real ? real : "/";
    *base = slash + 1;
    return 0;
}

/* 1 when name is <base>.<suffix> (base bl bytes long, matched already)
 * and not a compressed generation. */
static int sibling_name(const char *name, size_t bl)
{
    return name[bl] == '.' && name[bl + 1] && !compressed_name(name);
}

static void recover_generations_of(struct lp_shipper *s, struct listing *l, const char *path,
                                   int64_t since_s, const struct lp_ckpt_entry *const *known,
                                   size_t n_known)
{
    char real[PATH_MAX];
    const char *dir, *base;
    if (real_dir_base(path, real, &dir, &base) || listing_read(l, dir))
        return;
    size_t bl = strlen(base);
    struct generation *g = NULL;
    size_t n = 0, cap = 0;
    for (size_t k = listing_lower(l, base);
         k < l->n && strncmp(l->names[k], base, bl) == 0 && n < MAX_GENERATIONS; k++) {
        const char *name = l->names[k];
        if (!sibling_name(name, bl))
            continue;
        char p[PATH_MAX];
        struct stat st;
        if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p) || stat(p, &st) != 0 ||
            !S_ISREG(st.st_mode) || st.st_size == 0 || (int64_t)st.st_mtim.tv_sec < since_s ||
            lp_ckpt_find(&s->ckpt, (uint64_t)st.st_dev, (uint64_t)st.st_ino) ||
            find_tail(s, (uint64_t)st.st_dev, (uint64_t)st.st_ino) ||
            lp_discover_match(s->cfg->shipper.inputs, s->cfg->shipper.n_inputs, p) !=
                LP_INPUT_NONE ||
            copy_of_known(p, known, n_known))
            continue;
        LP_ALLOC_GROW(g, n + 1, cap, 8);
        snprintf(g[n].path, sizeof(g[n].path), "%s", p);
        g[n++].mtime_ns = (int64_t)st.st_mtim.tv_sec * LP_NS_PER_SEC + st.st_mtim.tv_nsec;
    }
    if (n)
        qsort(g, n, sizeof(*g), by_mtime);
    int idx = lp_discover_match(s->cfg->shipper.inputs, s->cfg->shipper.n_inputs, path);
    for (size_t i = 0; i < n; i++)
        adopt_rotated(s, g[i].path, path, idx < 0 ? -1 : idx,
                      "draining a generation rotated in and out while we were stopped");
    free(g);
}

/* 1 when the file at p is a copy of e's file holding more than e shipped:
 * the same first line, the same bytes before e->offset, and more after. */
static int copy_of_entry(const char *p, const struct lp_ckpt_entry *e, int64_t *mtime_ns)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st = {0};
    struct lp_head h;
    uint64_t th;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > e->offset &&
             lp_head_read_final(fd, &h) == 0 && h.len == e->head.len && h.hash == e->head.hash &&
             lp_tail_hash(fd, e->offset, &th) == 0 && th == e->tail_hash;
    close(fd);
    *mtime_ns = (int64_t)st.st_mtim.tv_sec * LP_NS_PER_SEC + st.st_mtim.tv_nsec;
    return ok;
}

int shipper_drain_copy(struct lp_shipper *s, const char *path, int input_idx,
                       const struct lp_ckpt_entry *e)
{
    char real[PATH_MAX];
    const char *dir, *base;
    struct listing l = {0};
    if (real_dir_base(path, real, &dir, &base) || listing_read(&l, dir))
        return 0;
    size_t bl = strlen(base);
    char best[PATH_MAX] = "";
    int64_t best_mtime = INT64_MIN;
    for (size_t k = listing_lower(&l, base), tried = 0;
         k < l.n && strncmp(l.names[k], base, bl) == 0 && tried < MAX_GENERATIONS; k++) {
        const char *name = l.names[k];
        char p[PATH_MAX];
        struct stat st;
        int64_t mtime;
        if (!sibling_name(name, bl) ||
            snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p) || stat(p, &st) != 0 ||
            lp_ckpt_find(&s->ckpt, (uint64_t)st.st_dev, (uint64_t)st.st_ino) ||
            find_tail(s, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
            continue;
        tried++;
        if (copy_of_entry(p, e, &mtime) && mtime > best_mtime) { /* the latest copy */
            snprintf(best, sizeof(best), "%s", p);
            best_mtime = mtime;
        }
    }
    listing_clear(&l);
    if (!*best)
        return 0;
    struct tail_inherit inh = {.gen = e->generation, .offset = e->offset};
    memcpy(inh.sid, e->source_id, sizeof(inh.sid));
    char orig[PATH_MAX];
    snprintf(orig, sizeof(orig), "%s", e->path ? e->path : path); /* e may move */
    return adopt_as(s, best, orig, input_idx,
                    "draining the copy of a file truncated while we were stopped", &inh) != NULL;
}

static int by_path(const void *a, const void *b)
{
    const struct lp_ckpt_entry *const *x = a, *const *y = b;
    return strcmp((*x)->path, (*y)->path);
}

/* GENERATION_SLACK_S, or two rescan intervals when longer, but at most half
 * of checkpoint_expire (entries must outlive what it lets in). */
static int64_t generation_slack(const struct lp_config_shipper *c)
{
    int64_t slack = GENERATION_SLACK_S, rescan = c->rescan_interval_ms / 1000;
    int64_t expire = c->checkpoint_expire_ms / 1000;
    if (2 * rescan > slack)
        slack = 2 * rescan;
    return slack > expire / 2 ? expire / 2 : slack;
}

/* A rotation storm while we were stopped leaves generations we never saw:
 * for each tracked name (its latest sighting), drain them. */
static void recover_generations(struct lp_shipper *s)
{
    size_t n = s->ckpt.n;
    if (!n)
        return;
    /* the checkpoint set grows as tails are adopted: work on a copy */
    struct lp_ckpt_entry *copy = lp_xcalloc(n, sizeof(*copy));
    const struct lp_ckpt_entry **by = lp_xcalloc(n, sizeof(*by));
    for (size_t i = 0; i < n; i++) {
        copy[i] = s->ckpt.e[i];
        copy[i].path = lp_xstrdup(s->ckpt.e[i].path ? s->ckpt.e[i].path : "");
        by[i] = &copy[i];
    }
    qsort(by, n, sizeof(*by), by_path);
    struct listing l = {0};
    int64_t slack = generation_slack(&s->cfg->shipper);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        int64_t seen = by[i]->seen_s;
        while (++j < n && strcmp(by[j]->path, by[i]->path) == 0)
            if (by[j]->seen_s > seen)
                seen = by[j]->seen_s;
        if (*by[i]->path)
            recover_generations_of(s, &l, by[i]->path, seen - slack, by + i, j - i);
        i = j;
    }
    listing_clear(&l);
    for (size_t i = 0; i < n; i++)
        free(copy[i].path);
    free(copy);
    free(by);
}

void shipper_write_checkpoints(struct lp_shipper *s)
{
    char err[512];
    if (lp_ckpt_save(&s->ckpt, err, sizeof(err)))
        lp_log(LP_LOG_ERROR, "cannot save checkpoints", "error=\"%s\"", err);
}

static void rescan(struct lp_shipper *s)
{
    int64_t t0 = lp_time_mono_ns();
    clear_waiters(s);
    s->idle = 0;
    s->evict_built = 0;
    lp_discover(s->cfg->shipper.inputs, s->cfg->shipper.n_inputs, on_discovered, s);
    s->evict_built = 0; /* candidates may be freed from now on */
    lp_histogram_observe(s->m.rescan_seconds, (double)(lp_time_mono_ns() - t0) / 1e9);
    lp_gauge_set(s->m.files, (int64_t)s->ntails);
    lp_gauge_set(s->m.idle_files, (int64_t)s->idle);
    lp_gauge_set(s->m.files_waiting, (int64_t)s->waiting);
    if (s->waiting)
        lp_log_ratelimited(LP_LOG_WARN, "files wait for a descriptor",
                           "waiting=%zu open=%zu max_open_files=%zu", s->waiting, s->ntails,
                           s->max_open);
}

int shipper_watch(struct lp_shipper *s, const char *dir, uint32_t mask)
{
    if (s->ino_fd < 0)
        return LP_EINVAL;
    /* IN_MASK_ADD: a file's watch must not drop the glob's events */
    int wd = inotify_add_watch(s->ino_fd, dir, mask | IN_MASK_ADD);
    if (wd < 0)
        return -errno;
    if (lp_idmap_get(&s->watch_ix, (uint64_t)wd, 0))
        return wd;
    s->watches = lp_xreallocarray(s->watches, (s->nwatches + 1), sizeof(*s->watches));
    s->watches[s->nwatches].wd = wd;
    s->watches[s->nwatches].dir = lp_xstrdup(dir);
    s->nwatches++;
    lp_idmap_put(&s->watch_ix, (uint64_t)wd, 0, (uintptr_t)s->nwatches);
    return wd;
}

static const char *watch_dir(const struct lp_shipper *s, int wd)
{
    uintptr_t i = lp_idmap_get(&s->watch_ix, (uint64_t)wd, 0);
    return i ? s->watches[i - 1].dir : NULL;
}

static void watch_globs(struct lp_shipper *s)
{
    const struct lp_config_shipper *c = &s->cfg->shipper;
    char base[PATH_MAX];
    for (size_t i = 0; i < (c->n_inputs ? c->n_inputs : 1); i++) {
        size_t np = c->n_inputs ? c->inputs[i].n_paths : 3;
        for (size_t j = 0; j < np; j++) {
            lp_glob_base(c->n_inputs ? c->inputs[i].paths[j] : lp_default_globs[j], base,
                         sizeof(base));
            size_t bl = strlen(base);
            if (bl > 1 && base[bl - 1] == '/')
                base[bl - 1] = '\0';
            shipper_watch(s, base, IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR);
        }
    }
}

/* A matched file renamed to a name no input matches, before we ever opened
 * it (a rotation storm outruns discovery): tail it under its old name. */
static void adopt_moved(struct lp_shipper *s, const char *from, const char *to)
{
    struct stat st;
    if (stat(to, &st) != 0 || !S_ISREG(st.st_mode) ||
        find_tail(s, (uint64_t)st.st_dev, (uint64_t)st.st_ino))
        return;
    if (lp_discover_match(s->cfg->shipper.inputs, s->cfg->shipper.n_inputs, to) != LP_INPUT_NONE)
        return; /* still matched under its new name: discovery takes it */
    int idx = lp_discover_match(s->cfg->shipper.inputs, s->cfg->shipper.n_inputs, from);
    adopt_rotated(s, to, from, idx < 0 ? -1 : idx,
                  "file rotated before it was opened; draining it");
}

static void on_move(struct lp_shipper *s, const struct inotify_event *ev)
{
    const char *dir = watch_dir(s, ev->wd);
    if (!dir || !ev->len)
        return;
    char path[2 * PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, ev->name);
    if (ev->mask & IN_MOVED_FROM) {
        if (lp_discover_match(s->cfg->shipper.inputs, s->cfg->shipper.n_inputs, path) ==
            LP_INPUT_NONE)
            return;
        struct move *m = &s->moves[s->move_next++ % MOVES_MAX];
        free(m->from);
        m->cookie = ev->cookie;
        m->from = lp_xstrdup(path);
        return;
    }
    for (size_t i = 0; i < MOVES_MAX; i++) {
        struct move *m = &s->moves[i];
        if (m->from && m->cookie == ev->cookie) {
            adopt_moved(s, m->from, path);
            free(m->from);
            m->from = NULL;
            return;
        }
    }
}

/* *out: the compiled rules, or NULL when mode is off. */
static int compile_multiline(const struct lp_config_multiline *m, const char *what,
                             struct lp_multiline **out, char *err, size_t errlen)
{
    *out = NULL;
    if (strcmp(m->mode, "off") == 0)
        return 0;
    char why[512];
    *out = lp_multiline_new(m->mode, m->start_pattern, m->continue_pattern, (uint32_t)m->max_lines,
                            (size_t)m->max_bytes, m->flush_timeout_ms * LP_NS_PER_MS, why,
                            sizeof(why));
    if (!*out) {
        snprintf(err, errlen, "%s: %s", what, why);
        return LP_EINVAL;
    }
    lp_multiline_set_limits(*out, (uint32_t)m->match_limit, (uint32_t)m->depth_limit);
    return 0;
}

const struct lp_multiline *shipper_multiline(const struct lp_shipper *s, int input_idx)
{
    const struct lp_config_shipper *c = &s->cfg->shipper;
    if (input_idx >= 0 && (size_t)input_idx < c->n_inputs && c->inputs[input_idx].has_multiline)
        return s->ml_in[input_idx];
    return s->ml;
}

/* Frees the oldest hint slot no file uses (wants or has in its
 * assembler): cycling through values must not take hints from everyone
 * until a restart. 1 when one was freed. O(files), only when the table is
 * full. */
static int evict_hint(struct lp_shipper *s)
{
    for (size_t i = 0; i < s->n_ml_hints; i++) {
        struct ml_hint *h = &s->ml_hints[i];
        int used = 0;
        for (struct tail *t = s->tails; t && !used && h->ml; t = t->next)
            used = t->ml_want == h->ml || t->ml_have == h->ml;
        if (used)
            continue;
        free(h->value);
        lp_multiline_free(h->ml);
        memmove(h, h + 1, (s->n_ml_hints - i - 1) * sizeof(*h));
        s->n_ml_hints--;
        lp_counter_inc(s->m.hint_evicted);
        return 1;
    }
    return 0;
}

const struct lp_multiline *shipper_hint_multiline(struct lp_shipper *s, int input_idx,
                                                  const char *value, int *ok)
{
    *ok = 1;
    for (size_t i = 0; i < s->n_ml_hints; i++) {
        struct ml_hint *h = &s->ml_hints[i];
        if (h->input_idx == input_idx && strcmp(h->value, value) == 0) {
            *ok = !h->bad;
            return h->bad ? shipper_multiline(s, input_idx) : h->ml;
        }
    }
    if (s->n_ml_hints >= SHIPPER_MAX_ML_HINTS && !evict_hint(s)) {
        lp_counter_inc(s->m.hint_bad);
        lp_log_ratelimited(LP_LOG_WARN,
                           "too many distinct logpipe.io/multiline hints in use; ignored",
                           "value=\"%.100s\" max=%d", value, SHIPPER_MAX_ML_HINTS);
        *ok = 0;
        return shipper_multiline(s, input_idx);
    }
    const struct lp_config_multiline *m = lp_config_input_multiline(&s->cfg->shipper, input_idx);
    int builtin =
        strcmp(value, "java") == 0 || strcmp(value, "python") == 0 || strcmp(value, "go") == 0;
    struct ml_hint h = {input_idx, lp_xstrdup(value), NULL, 0};
    if (strcmp(value, "off") != 0) {
        char why[512];
        h.ml = lp_multiline_new(builtin ? value : "custom", builtin ? NULL : value, NULL,
                                (uint32_t)m->max_lines, (size_t)m->max_bytes,
                                m->flush_timeout_ms * LP_NS_PER_MS, why, sizeof(why));
        if (h.ml) {
            uint32_t ml = (uint32_t)m->match_limit, dl = (uint32_t)m->depth_limit;
            if (!builtin) { /* a tenant's pattern: a tenant's share of backtracking */
                ml = ml && ml < SHIPPER_HINT_MATCH_LIMIT ? ml : SHIPPER_HINT_MATCH_LIMIT;
                dl = dl && dl < SHIPPER_HINT_DEPTH_LIMIT ? dl : SHIPPER_HINT_DEPTH_LIMIT;
            }
            lp_multiline_set_limits(h.ml, ml, dl);
        } else {
            h.bad = 1;
            lp_counter_inc(s->m.hint_bad);
            lp_log(LP_LOG_WARN,
                   "a pod's logpipe.io/multiline hint does not compile; its input's "
                   "rules apply",
                   "value=\"%.200s\" reason=\"%s\"", value, why);
        }
    }
    LP_ALLOC_GROW(s->ml_hints, s->n_ml_hints + 1, s->cap_ml_hints, 8);
    s->ml_hints[s->n_ml_hints++] = h;
    *ok = !h.bad;
    return h.bad ? shipper_multiline(s, input_idx) : h.ml;
}

struct lp_shipper *lp_shipper_new(const struct lp_config *cfg, struct lp_metrics *metrics,
                                  struct lp_ready *kafka_ready, char *err, size_t errlen)
{
    struct lp_shipper *s = lp_xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->metrics = metrics;
    s->kafka_ready = kafka_ready;
    s->ino_fd = -1;
    metrics_init(s);
    const struct lp_config_shipper *c = &cfg->shipper;
    /* before the tails (and their multiline patterns) exist */
    lp_regex_setup((uint32_t)c->multiline.match_limit, (uint32_t)c->multiline.depth_limit,
                   lp_metrics_counter(metrics, "logpipe_shipper_regex_limited_total",
                                      "Lines a multiline pattern gave up on (PCRE2 match or "
                                      "depth limit): they count as not matching.",
                                      NULL));
    if (c->host_name && *c->host_name)
        snprintf(s->host, sizeof(s->host), "%s", c->host_name);
    else if (gethostname(s->host, sizeof(s->host) - 1) != 0)
        snprintf(s->host, sizeof(s->host), "unknown");
    lp_codec_parse(c->compression, &s->codec);
    s->record_mode = strcmp(c->mode, "record") == 0;
    /* room for one maximal line, escaped, beyond the batch size */
    s->batch_raw_limit = (size_t)c->batch_max_bytes + (size_t)c->max_line_bytes * 6 + 65536;
    s->rbuf_size = READ_CHUNK;
    s->rbuf = lp_xmalloc(s->rbuf_size);
    lp_buf_init(&s->scratch, (size_t)c->max_line_bytes * 2 + 65536);
    lp_buf_init(&s->conv, (size_t)c->max_line_bytes * 4 + 65536);
    lp_buf_init(&s->evbuf, 0);
    if (compile_multiline(&c->multiline, "shipper.multiline", &s->ml, err, errlen))
        goto fail;
    s->ml_in = lp_xcalloc(c->n_inputs ? c->n_inputs : 1, sizeof(*s->ml_in));
    for (size_t i = 0; i < c->n_inputs; i++) {
        char what[64];
        snprintf(what, sizeof(what), "shipper.inputs[%zu].multiline", i);
        if (c->inputs[i].has_multiline &&
            compile_multiline(&c->inputs[i].multiline, what, &s->ml_in[i], err, errlen))
            goto fail;
    }
    int mrc = lp_mkdirs(c->state_dir, 0750); /* with its parents, as the other daemons do */
    if (mrc) {
        snprintf(err, errlen, "cannot create state_dir %s: %s", c->state_dir, lp_strerror(mrc));
        goto fail;
    }
    char path[PATH_MAX], why[1024];
    snprintf(path, sizeof(path), "%s/checkpoints.json", c->state_dir);
    int rc = lp_ckpt_load(&s->ckpt, path, why, sizeof(why));
    if (rc == LP_ECORRUPT)
        lp_log(LP_LOG_ERROR, "corrupt checkpoints", "detail=\"%s\"", why);
    else if (rc) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    if (produce_init(s, err, errlen))
        goto fail;
    s->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->ino_fd < 0)
        lp_log(LP_LOG_WARN, "inotify unavailable; polling only", "error=\"%s\"",
               lp_strerror(-errno));
    else
        watch_globs(s);
    s->max_open = (size_t)c->max_open_files;
    if (!s->max_open) {
        struct rlimit rl;
        rlim_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        s->max_open = lim == RLIM_INFINITY || lim > (1u << 24) ? (1u << 24)
                      : lim > 256 + 16                         ? (size_t)lim - 256
                                                               : 16;
    }
    if (c->kubernetes.enabled && !(s->k8s = lp_k8s_start(&c->kubernetes, metrics, err, errlen)))
        goto fail;
    if (s->k8s && c->kubernetes.first_list_wait_ms > 0)
        s->k8s_hold_until_ns = lp_time_mono_ns() + c->kubernetes.first_list_wait_ms * LP_NS_PER_MS;
    s->startup_scan = 1;
    rescan(s);
    recover_rotated(s);
    recover_generations(s);
    s->startup_scan = 0;
    int64_t now = lp_time_mono_ns();
    s->next_rescan_ns = now + c->rescan_interval_ms * LP_NS_PER_MS;
    s->next_ckpt_ns = now + c->checkpoint_interval_ms * LP_NS_PER_MS;
    lp_log(LP_LOG_INFO, "shipper started", "host=%s files=%zu topic=%s brokers=%s mode=%s", s->host,
           s->ntails, cfg->kafka.topic, cfg->kafka.brokers, c->mode);
    return s;
fail:
    lp_shipper_free(s);
    return NULL;
}

/* A write in a watched directory: the open file of that name reads soon;
 * a file closed while idle is opened again at once (not at the next
 * rescan), so it is not rotated away unread. */
static void on_modify(struct lp_shipper *s, const struct inotify_event *ev)
{
    struct tail *t =
        (struct tail *)lp_idmap_get(&s->name_ix, (uint64_t)ev->wd, name_hash(ev->name));
    if (t && t->wd == ev->wd && strcmp(t->base, ev->name) == 0) {
        t->dirty = 1;
        return;
    }
    const char *dir = watch_dir(s, ev->wd);
    char path[2 * PATH_MAX];
    struct stat st;
    if (!dir || (size_t)snprintf(path, sizeof(path), "%s/%s", dir, ev->name) >= sizeof(path) ||
        stat(path, &st) != 0)
        return;
    if ((t = find_tail(s, (uint64_t)st.st_dev, (uint64_t)st.st_ino))) {
        t->dirty = 1;
        return;
    }
    const struct lp_ckpt_entry *e =
        lp_ckpt_find(&s->ckpt, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (!e || !e->closed)
        return; /* not ours, or not yet discovered: the rescan decides */
    char found[PATH_MAX];
    snprintf(found, sizeof(found), "%s", e->path); /* the name discovery knows it by */
    int idx = lp_discover_match(s->cfg->shipper.inputs, s->cfg->shipper.n_inputs, found);
    if (idx != LP_INPUT_NONE)
        on_discovered(s, found, idx);
    s->evict_built = 0; /* its candidates may be freed from now on */
}

static void drain_inotify(struct lp_shipper *s)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(s->ino_fd, buf, sizeof(buf));
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_Q_OVERFLOW))
                s->next_rescan_ns = 0; /* new files: rescan now */
            if (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO))
                on_move(s, ev);
            if (ev->mask & (IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_Q_OVERFLOW))
                for (struct tail *t = s->tails; t; t = t->next)
                    t->dirty = 1; /* check rotation soon; cheap */
            if (ev->len && (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)))
                on_modify(s, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
}

/* Bytes the tail may read now under its rate limit (token bucket, 1 s
 * burst). When the bucket is nearly empty the tail sleeps until it holds a
 * useful chunk again, so a limited file costs no busy looping. */
static size_t rate_budget(struct tail *t, int64_t now_ns)
{
    double rate = (double)t->s->cfg->shipper.rate_limit_bytes_per_sec;
    if (rate <= 0)
        return SIZE_MAX;
    if (now_ns < t->limited_until_ns)
        return 0;
    double dt = (double)(now_ns - t->tokens_ns) / 1e9;
    t->tokens_ns = now_ns;
    t->tokens += dt * rate;
    if (t->tokens > rate)
        t->tokens = rate;
    double chunk = rate < 16384 ? rate : 16384;
    if (t->tokens < chunk) {
        int64_t wait_ns = (int64_t)((chunk - t->tokens) / rate * 1e9) + 1;
        t->limited_until_ns = now_ns + wait_ns;
        lp_counter_add(t->s->m.rate_limited_ms, (uint64_t)(wait_ns / LP_NS_PER_MS));
        return 0;
    }
    return (size_t)t->tokens;
}

static int can_read(const struct lp_shipper *s, const struct tail *t)
{
    /* a pod's file waits for the first pod list (k8s_hold_until_ns) */
    if (s->k8s_hold_until_ns && t->meta.k8s_namespace[0] && t->meta.k8s_pod_name[0])
        return 0;
    /* without a producer (a rebuild failed) reading would only replay */
    return !s->stopping && s->rk && t->identified && !t->replay && !t->closing &&
           s->inflight_bytes < (size_t)s->cfg->shipper.max_inflight_bytes;
}

/* The hold on pods' files ends when the first list completed, or when
 * first_list_wait passed (the API server unreachable: pending it is). */
static void end_k8s_hold(struct lp_shipper *s, int64_t now)
{
    int synced = lp_k8s_synced(s->k8s);
    if (!synced && now < s->k8s_hold_until_ns)
        return;
    s->k8s_hold_until_ns = 0;
    if (synced)
        lp_log(LP_LOG_INFO, "first pod list complete; reading the pods' files", "%s", "");
    else
        lp_log(LP_LOG_WARN,
               "no pod list within first_list_wait; the backlog ships with path metadata "
               "(logpipe.metadata: pending)",
               "wait_ms=%lld", (long long)s->cfg->shipper.kubernetes.first_list_wait_ms);
    for (struct tail *t = s->tails; t; t = t->next)
        t->dirty = 1;
}

/* A rotated or deleted file that has been read to its end and stayed
 * quiet for rotate_wait is flushed, then closed once its batches report. */
static void maybe_close(struct lp_shipper *s, struct tail *t, int64_t now_ns)
{
    int64_t inactive = s->cfg->shipper.close_inactive_ms * LP_NS_PER_MS;
    if (inactive > 0 && closable(t) && now_ns - t->last_growth_ns >= inactive) {
        close_idle(s, t, "close_inactive");
        return;
    }
    if (!t->closing) {
        if (!(t->rotated || t->deleted) || t->dirty)
            return;
        if (!t->identified && tail_identify(t) != 0) {
            /* empty, and gone from its name: nothing to ship */
            if (now_ns - t->last_growth_ns >= s->cfg->shipper.rotate_wait_ms * LP_NS_PER_MS)
                t->closing = 1;
            if (!t->closing)
                return;
        }
        if (t->identified && t->read_off < t->size_seen)
            return; /* identified just now: read it first */
        int64_t wait = s->cfg->shipper.rotate_wait_ms * LP_NS_PER_MS;
        if (!t->deleted && now_ns - t->last_growth_ns < wait)
            return;
        tail_finish_line(t, now_ns); /* a last line without a newline */
        lp_assembler_flush(t->as, now_ns, 1, batch_on_event, t);
        batch_after_line(t);
        batch_close(t);
        t->closing = 1;
    }
    if (t->ninflight || t->replay)
        return;
    tail_checkpoint(t, lp_time_real_ns() / LP_NS_PER_SEC);
    lp_log(LP_LOG_INFO, "closed", "path=\"%s\" offset=%llu rotated=%d deleted=%d", t->path,
           (unsigned long long)t->acked_off, t->rotated, t->deleted);
    drop_tail(s, t);
}

/* Deleted files hold disk space: beyond the cap, the oldest is dropped
 * with its unread bytes counted as lost. */
static void enforce_deleted_cap(struct lp_shipper *s)
{
    size_t held = 0;
    for (struct tail *t = s->tails; t; t = t->next)
        held += t->deleted && !t->closing;
    while (held > (size_t)s->cfg->shipper.max_deleted_open_files) {
        struct tail *oldest = NULL;
        for (struct tail *t = s->tails; t; t = t->next)
            if (t->deleted && !t->closing &&
                (!oldest || t->deleted_since_ns < oldest->deleted_since_ns))
                oldest = t;
        if (!oldest)
            return;
        struct stat st;
        uint64_t lost = fstat(oldest->fd, &st) == 0 && (uint64_t)st.st_size > oldest->read_off
                            ? (uint64_t)st.st_size - oldest->read_off
                            : 0;
        lp_counter_add(s->m.lost_fd_cap, lost);
        lp_log(LP_LOG_ERROR, "too many deleted files held open; dropping the oldest",
               "path=\"%s\" unread_bytes_lost=%llu cap=%lld", oldest->path,
               (unsigned long long)lost, (long long)s->cfg->shipper.max_deleted_open_files);
        oldest->dirty = 0;
        oldest->closing = 1;
        held--;
    }
}

static void save_checkpoints(struct lp_shipper *s)
{
    int64_t now_s = lp_time_real_ns() / LP_NS_PER_SEC;
    for (struct tail *t = s->tails; t; t = t->next)
        tail_checkpoint(t, now_s);
    lp_ckpt_expire(&s->ckpt, now_s - s->cfg->shipper.checkpoint_expire_ms / 1000);
    if (s->ckpt.dirty)
        shipper_write_checkpoints(s);
}

/* From the sizes seen by the last checks: no syscall, so every step. */
static void update_lag(struct lp_shipper *s)
{
    uint64_t total = 0, max = 0;
    for (struct tail *t = s->tails; t; t = t->next) {
        uint64_t size = t->size_seen > t->read_off ? t->size_seen : t->read_off;
        uint64_t lag = size > t->acked_off ? size - t->acked_off : 0;
        total += lag;
        if (lag > max)
            max = lag;
    }
    lp_gauge_set(s->m.lag_bytes, (int64_t)total);
    lp_gauge_set(s->m.max_lag_bytes, (int64_t)max);
}

int lp_shipper_step(struct lp_shipper *s, int timeout_ms)
{
    const struct lp_config_shipper *c = &s->cfg->shipper;
    int64_t now = lp_time_mono_ns();
    int busy = 0;
    for (struct tail *t = s->tails; t; t = t->next) {
        if (!t->dirty || !can_read(s, t))
            continue;
        if (now >= t->limited_until_ns)
            busy = 1;
        else if ((t->limited_until_ns - now) / LP_NS_PER_MS < timeout_ms)
            timeout_ms = (int)((t->limited_until_ns - now) / LP_NS_PER_MS) + 1;
    }
    if (s->ino_fd >= 0) {
        struct pollfd pfd = {s->ino_fd, POLLIN, 0};
        poll(&pfd, 1, busy ? 0 : timeout_ms);
        drain_inotify(s);
    } else if (!busy) {
        usleep((useconds_t)timeout_ms * 1000);
    }
    now = lp_time_mono_ns();

    if (s->k8s_hold_until_ns)
        end_k8s_hold(s, now);
    if (s->k8s && now >= s->next_k8s_tick_ns) {
        lp_k8s_tick(s->k8s);
        s->next_k8s_tick_ns = now + LP_NS_PER_SEC;
    }
    if (now >= s->next_rescan_ns) {
        rescan(s);
        for (struct tail *t = s->tails; t; t = t->next) {
            if (!t->identified)
                tail_identify(t);
            t->dirty = 1; /* stat poll: inotify misses events */
        }
        s->next_rescan_ns = now + c->rescan_interval_ms * LP_NS_PER_MS;
        s->next_retry_ns = now + 200 * LP_NS_PER_MS;
    } else if (s->nwaitq && now >= s->next_retry_ns) {
        /* files waiting for a descriptor get one as soon as others idle */
        retry_waiters(s);
        s->next_retry_ns = now + 200 * LP_NS_PER_MS;
    }

    /* read: round-robin one chunk per file per pass, so one busy file
     * cannot starve the others */
    int progress = 1;
    for (int pass = 0; progress && pass < 16; pass++) {
        progress = 0;
        for (struct tail *t = s->tails; t; t = t->next) {
            if (!t->dirty)
                continue;
            tail_check(t, now);
            if (!t->identified)
                tail_identify(t);
            if (!can_read(s, t))
                continue;
            size_t budget = rate_budget(t, now);
            if (budget == 0)
                continue;
            size_t got = tail_read(t, budget, now);
            if (got > 0) {
                progress = 1;
                if (s->cfg->shipper.rate_limit_bytes_per_sec > 0)
                    t->tokens -= (double)got;
            }
        }
        produce_poll(s, 0);
    }

    for (struct tail *t = s->tails; t; t = t->next) {
        lp_assembler_flush(t->as, now, 0, batch_on_event, t);
        batch_after_line(t);
        batch_tick(t, now);
        batch_replay_if_due(t);
    }
    produce_poll(s, 0);
    produce_rebuild_if_fatal(s);
    enforce_deleted_cap(s);
    for (struct tail *t = s->tails, *n; t; t = n) {
        n = t->next;
        maybe_close(s, t, now);
    }
    update_lag(s);
    if (now >= s->next_ckpt_ns) {
        save_checkpoints(s);
        s->next_ckpt_ns = now + c->checkpoint_interval_ms * LP_NS_PER_MS;
    }
    return 0;
}

int lp_shipper_shutdown(struct lp_shipper *s, int timeout_ms)
{
    s->stopping = 1;
    /* Send what is batched. Events still inside the assembler (an
     * incomplete partial or multiline group) are not flushed: the
     * checkpoint stays before them and they are read again next time. */
    for (struct tail *t = s->tails; t; t = t->next)
        batch_close(t);
    int64_t deadline = lp_time_mono_ns() + (int64_t)timeout_ms * LP_NS_PER_MS;
    while (s->rk && rd_kafka_outq_len(s->rk) > 0 && lp_time_mono_ns() < deadline)
        rd_kafka_poll(s->rk, 100);
    int pending = s->rk ? rd_kafka_outq_len(s->rk) : 0;
    save_checkpoints(s);
    lp_log(pending ? LP_LOG_WARN : LP_LOG_INFO, "shipper stopped",
           "unacknowledged_messages=%d files=%zu", pending, s->ntails);
    return pending ? LP_EAGAIN : 0;
}

void lp_shipper_free(struct lp_shipper *s)
{
    if (!s)
        return;
    for (struct tail *t = s->tails, *n; t; t = n) {
        n = t->next;
        tail_free(t);
    }
    s->tails = NULL;
    lp_k8s_stop(s->k8s);
    lp_idmap_release(&s->tail_ix);
    lp_idmap_release(&s->name_ix);
    lp_idmap_release(&s->watch_ix);
    free(s->evict);
    clear_waiters(s);
    free(s->waitq);
    produce_free(s); /* reports of detached entries free them */
    lp_tenants_free(s->tenants);
    if (s->ino_fd >= 0)
        close(s->ino_fd);
    for (size_t i = 0; i < s->nwatches; i++)
        free(s->watches[i].dir);
    free(s->watches);
    for (size_t i = 0; i < MOVES_MAX; i++)
        free(s->moves[i].from);
    lp_ckpt_release(&s->ckpt);
    lp_multiline_free(s->ml);
    for (size_t i = 0; s->ml_in && i < s->cfg->shipper.n_inputs; i++)
        lp_multiline_free(s->ml_in[i]);
    free(s->ml_in);
    for (size_t i = 0; i < s->n_ml_hints; i++) {
        free(s->ml_hints[i].value);
        lp_multiline_free(s->ml_hints[i].ml);
    }
    free(s->ml_hints);
    lp_buf_release(&s->scratch);
    lp_buf_release(&s->conv);
    lp_buf_release(&s->evbuf);
    lp_codec_ctx_release(&s->cctx);
    free(s->rbuf);
    free(s);
}

size_t lp_shipper_files(const struct lp_shipper *s)
{
    return s->ntails;
}

uint64_t lp_shipper_lag_bytes(const struct lp_shipper *s)
{
    uint64_t total = 0;
    for (const struct tail *t = s->tails; t; t = t->next) {
        struct stat st;
        if (fstat(t->fd, &st) == 0 && (uint64_t)st.st_size > t->acked_off)
            total += (uint64_t)st.st_size - t->acked_off;
    }
    return total;
}

int lp_shipper_test_fatal(struct lp_shipper *s)
{
    if (!s->rk)
        return LP_EKAFKA;
    return rd_kafka_test_fatal_error(s->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                     "test: sequence desynchronization")
               ? LP_EKAFKA
               : 0;
}

void lp_shipper_debug(const struct lp_shipper *s)
{
    fprintf(stderr, "rk=%p fatal=%d inflight=%zu\n", (void *)s->rk, s->fatal, s->inflight_bytes);
    for (const struct tail *t = s->tails; t; t = t->next)
        fprintf(stderr,
                "tail %s ident=%d read=%llu line=%llu acked=%llu size=%llu ninfl=%zu replay=%d "
                "dirty=%d gen=%u head_state=%d open=%d pending=%llu\n",
                t->path, t->identified, (unsigned long long)t->read_off,
                (unsigned long long)t->line_off, (unsigned long long)t->acked_off,
                (unsigned long long)t->size_seen, t->ninflight, t->replay, t->dirty, t->gen,
                t->fifo ? (int)t->fifo->state : -1, t->batch_open,
                (unsigned long long)lp_assembler_pending_offset(t->as));
}
