/* NDJSON segment files with per-source watermarks and crash recovery. */
#define LP_LOG_MODULE "segfile"
#include "lp_segfile.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_error.h"
#include "lp_eventid.h"
#include "lp_file.h"
#include "lp_log.h"
#include "lp_json.h"
#include "lp_time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define WBUF_FLUSH (256 * 1024)
#define BASE_MAX 1024              /* <root>/<route>; longer roots are refused */
#define WM_EXPIRE_S (30LL * 86400) /* forget sources quiet for this long */

struct wm {
    char sid[LP_ID_HEX_LEN + 1]; /* "" = empty slot */
    uint64_t off;
    int64_t seen_s;
};

struct lp_segfile {
    char base[BASE_MAX]; /* <root>/<route> */
    size_t max_bytes;
    int64_t max_age_ns;
    int32_t partition;
    int lock_fd; /* holds the partition's writer lock (flock) while open */
    int fd;
    char path[BASE_MAX + 128]; /* the open segment (".open") */
    char **recovered;          /* open segments recovered, closed once watermarks are saved */
    size_t n_recovered;
    char dir[BASE_MAX + 64]; /* its directory */
    size_t size;
    int64_t opened_ns;
    int dir_new; /* directory entries to fsync at the next sync */
    struct lp_buf wbuf;
    struct wm *tab;
    size_t cap, n;
    int wm_dirty;
    /* segments not yet closed and how much of each a sync made durable
     * (saved with the watermarks): recovery cuts an open segment back to
     * it instead of reading sources and offsets out of documents */
    struct open_rec *opens;
    size_t n_opens, cap_opens;
    int legacy; /* state from before the open list (or none): recover from the lines */
};

struct open_rec {
    char rel[160]; /* "<day>/<hour>/<name>.ndjson.open" under base */
    uint64_t size;
};

/* Offsets no file reaches: a watermark beyond is refused (2^62). */
#define WM_OFF_MAX (1ULL << 62)

static int sid_ok(const char *sid)
{
    size_t n = 0;
    for (; sid[n]; n++)
        if (!((sid[n] >= '0' && sid[n] <= '9') || (sid[n] >= 'a' && sid[n] <= 'f')))
            return 0;
    return n == LP_ID_HEX_LEN;
}

static const char *rel_of(const struct lp_segfile *s, const char *path)
{
    size_t bl = strlen(s->base);
    return strncmp(path, s->base, bl) == 0 && path[bl] == '/' ? path + bl + 1 : path;
}

static struct open_rec *open_rec_get(struct lp_segfile *s, const char *rel)
{
    for (size_t i = 0; i < s->n_opens; i++)
        if (strcmp(s->opens[i].rel, rel) == 0)
            return &s->opens[i];
    return NULL;
}

static void open_rec_set(struct lp_segfile *s, const char *rel, uint64_t size)
{
    struct open_rec *o = open_rec_get(s, rel);
    if (!o) {
        if (strlen(rel) >= sizeof(o->rel))
            return; /* cannot happen: names are short; recovered from lines then */
        LP_ALLOC_GROW(s->opens, s->n_opens + 1, s->cap_opens, 4);
        o = &s->opens[s->n_opens++];
        snprintf(o->rel, sizeof(o->rel), "%s", rel);
        o->size = UINT64_MAX;
    }
    if (o->size != size) {
        o->size = size;
        s->wm_dirty = 1;
    }
}

static void open_rec_del(struct lp_segfile *s, const char *rel)
{
    struct open_rec *o = open_rec_get(s, rel);
    if (!o)
        return;
    *o = s->opens[--s->n_opens];
    s->wm_dirty = 1;
}

/* ---- watermark table (open addressing on the source id's hash) ---- */

static struct wm *wm_slot(struct wm *tab, size_t cap, const char *sid)
{
    size_t i = (size_t)XXH3_64bits(sid, strlen(sid)) & (cap - 1);
    while (tab[i].sid[0] && strcmp(tab[i].sid, sid) != 0)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

static struct wm *wm_get(struct lp_segfile *s, const char *sid, int create)
{
    if (strlen(sid) > LP_ID_HEX_LEN)
        return NULL;
    if (create && (s->n + 1) * 10 > s->cap * 7) {
        size_t ncap = lp_alloc_nr(s->cap, s->cap + 1, 256); /* a power of two */
        struct wm *nt = lp_xcalloc(ncap, sizeof(*nt));
        for (size_t i = 0; i < s->cap; i++)
            if (s->tab[i].sid[0])
                *wm_slot(nt, ncap, s->tab[i].sid) = s->tab[i];
        free(s->tab);
        s->tab = nt;
        s->cap = ncap;
    }
    if (!s->cap)
        return NULL;
    struct wm *w = wm_slot(s->tab, s->cap, sid);
    if (!w->sid[0]) {
        if (!create)
            return NULL;
        snprintf(w->sid, sizeof(w->sid), "%s", sid);
        w->off = 0;
        w->seen_s = 0;
        s->n++;
        w->off = UINT64_MAX; /* "nothing yet" until set */
    }
    return w;
}

static void wm_raise(struct lp_segfile *s, const char *sid, uint64_t off, int64_t seen_s)
{
    struct wm *w = wm_get(s, sid, 1);
    if (!w)
        return;
    if (w->off == UINT64_MAX || off > w->off)
        w->off = off;
    if (seen_s > w->seen_s)
        w->seen_s = seen_s;
    s->wm_dirty = 1;
}

/* A watermark from saved state or a segment line: only a source id of ours
 * and an offset a file can have. 0 when refused. */
static int wm_raise_checked(struct lp_segfile *s, const char *sid, json_t *off, int64_t seen_s)
{
    if (!sid_ok(sid) || !json_is_integer(off) || json_integer_value(off) < 0 ||
        (uint64_t)json_integer_value(off) >= WM_OFF_MAX)
        return 0;
    wm_raise(s, sid, (uint64_t)json_integer_value(off), seen_s);
    return 1;
}

/* ---- files ---- */

static void wm_file(const struct lp_segfile *s, char *out, size_t n)
{
    snprintf(out, n, "%s/.state/%d.watermarks.json", s->base, (int)s->partition);
}

static int save_watermarks(struct lp_segfile *s)
{
    if (!s->wm_dirty)
        return 0;
    char path[BASE_MAX + 64], dir[BASE_MAX + 16];
    wm_file(s, path, sizeof(path));
    snprintf(dir, sizeof(dir), "%s/.state", s->base);
    int rc = lp_mkdirs(dir, 0750);
    if (rc)
        return rc;
    int64_t now_s = lp_time_real_ns() / LP_NS_PER_SEC;
    struct lp_buf b = LP_BUF_INIT;
    lp_buf_puts(&b, "{\"version\":2,\"sources\":{");
    const char *sep = "";
    for (size_t i = 0; i < s->cap; i++) {
        const struct wm *w = &s->tab[i];
        if (!w->sid[0] || w->off == UINT64_MAX || w->seen_s < now_s - WM_EXPIRE_S)
            continue;
        lp_buf_appendf(&b, "%s\n\"%s\":[%" PRIu64 ",%lld]", sep, w->sid, w->off,
                       (long long)w->seen_s);
        sep = ",";
    }
    lp_buf_puts(&b, "\n},\"open\":{");
    for (size_t i = 0; i < s->n_opens; i++) {
        lp_buf_appendf(&b, "%s\n", i ? "," : "");
        lp_buf_append_json_string(&b, s->opens[i].rel, strlen(s->opens[i].rel));
        lp_buf_appendf(&b, ":%" PRIu64, s->opens[i].size);
    }
    lp_buf_puts(&b, "\n}}\n");
    rc = lp_file_replace(path, b.data, b.len, 0640);
    if (!rc)
        s->wm_dirty = 0;
    lp_buf_release(&b);
    return rc;
}

static int load_watermarks(struct lp_segfile *s, char *err, size_t errlen)
{
    char path[BASE_MAX + 64];
    wm_file(s, path, sizeof(path));
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        s->legacy = 1; /* no state: whatever segments exist are read line by line */
        if (access(path, F_OK) != 0)
            return 0; /* a new partition */
        snprintf(err, errlen,
                 "%s is corrupt (%s); remove it to rebuild from the segments "
                 "(lines may then be written twice)",
                 path, je.text);
        return LP_ECORRUPT;
    }
    const char *sid;
    json_t *v;
    size_t refused = 0;
    json_object_foreach(json_object_get(root, "sources"), sid, v)
    {
        json_t *off = json_array_get(v, 0), *seen = json_array_get(v, 1);
        if (!json_is_integer(seen) || !wm_raise_checked(s, sid, off, json_integer_value(seen)))
            refused++;
    }
    if (refused)
        lp_log(LP_LOG_WARN, "implausible watermarks refused (their replays may be written again)",
               "path=\"%s\" entries=%zu", path, refused);
    json_t *opens = json_object_get(root, "open");
    s->legacy = !json_is_object(opens); /* version 1: no open list */
    json_object_foreach(opens, sid, v)
    {
        char abs[BASE_MAX + 200];
        snprintf(abs, sizeof(abs), "%s/%s", s->base, sid);
        if (json_is_integer(v) && json_integer_value(v) >= 0 && !strstr(sid, "..") &&
            access(abs, F_OK) == 0) /* closed since: forget it */
            open_rec_set(s, sid, (uint64_t)json_integer_value(v));
    }
    json_decref(root);
    s->wm_dirty = 0;
    return 0;
}

/* "<dir>/<p>-<koff>.ndjson.open" → "<dir>/<p>-<koff>.ndjson" */
static int finalize(const char *open_path)
{
    char final[PATH_MAX];
    size_t n = strlen(open_path);
    if (n < 5 || n - 5 >= sizeof(final))
        return LP_EINVAL;
    memcpy(final, open_path, n - 5);
    final[n - 5] = '\0';
    if (rename(open_path, final))
        return -errno;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", open_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return lp_fsync_dir(dir);
}

static void free_recovered(struct lp_segfile *s)
{
    for (size_t i = 0; i < s->n_recovered; i++)
        free(s->recovered[i]);
    free(s->recovered);
    s->recovered = NULL;
    s->n_recovered = 0;
}

/* Cuts a torn last line, raises watermarks from the lines, and lists it
 * for closing. */
static int recover_from_lines(struct lp_segfile *s, const char *path);

/* An open segment after a crash: cut back to what the last sync made
 * durable (saved with the watermarks, which hold its lines' sources and
 * offsets): what follows was never committed and comes again from Kafka.
 * A segment no sync recorded has no committed line: it goes. Lists the
 * segment for closing. Nothing a document says is trusted. */
static int recover_segment(struct lp_segfile *s, const char *path)
{
    if (s->legacy)
        return recover_from_lines(s, path);
    struct open_rec *o = open_rec_get(s, rel_of(s, path));
    if (!o) {
        lp_log(LP_LOG_INFO,
               "removing an open segment no sync recorded (nothing of it was "
               "committed; it comes again from Kafka)",
               "path=\"%s\"", path);
        if (unlink(path) && errno != ENOENT)
            return -errno;
        return 0;
    }
    struct stat st;
    if (stat(path, &st))
        return -errno;
    if ((uint64_t)st.st_size > o->size) {
        lp_log(LP_LOG_WARN, "cutting an open segment back to its last sync after a crash",
               "path=\"%s\" bytes=%llu", path,
               (unsigned long long)((uint64_t)st.st_size - o->size));
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        int rc = ftruncate(fd, (off_t)o->size) || fsync(fd) ? -errno : 0;
        close(fd);
        if (rc)
            return rc;
    } else if ((uint64_t)st.st_size < o->size) {
        lp_log(LP_LOG_ERROR,
               "an open segment is shorter than its last sync recorded (the "
               "file system lost synced data)",
               "path=\"%s\" bytes=%llu recorded=%llu", path, (unsigned long long)st.st_size,
               (unsigned long long)o->size);
    }
    lp_log(LP_LOG_INFO, "recovered an open segment", "path=\"%s\" bytes=%llu", path,
           (unsigned long long)o->size);
    s->recovered = lp_xreallocarray(s->recovered, s->n_recovered + 1, sizeof(*s->recovered));
    s->recovered[s->n_recovered] = lp_xstrdup(path);
    s->n_recovered++;
    return 0;
}

/* State from before the open list (or none at all): cuts a torn last line,
 * raises watermarks from the lines' logpipe.source_id / log.offset (fields
 * only the pipeline sets, checked for plausibility), lists it for closing. */
static int recover_from_lines(struct lp_segfile *s, const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return -errno;
    }
    size_t n = (size_t)st.st_size;
    char *data = lp_xmalloc(n ? n : 1);
    ssize_t r = n ? pread(fd, data, n, 0) : 0;
    if (r != (ssize_t)n) {
        free(data);
        close(fd);
        return -EIO;
    }
    size_t keep = n;
    while (keep && data[keep - 1] != '\n')
        keep--;
    if (keep != n) {
        lp_log(LP_LOG_WARN, "cutting a torn last line from a segment after a crash",
               "path=\"%s\" bytes=%zu", path, n - keep);
        if (ftruncate(fd, (off_t)keep) || fsync(fd)) {
            free(data);
            close(fd);
            return -errno;
        }
    }
    close(fd);
    int64_t now_s = lp_time_real_ns() / LP_NS_PER_SEC;
    size_t lines = 0, unknown = 0;
    for (size_t i = 0; i < keep;) {
        char *nl = memchr(data + i, '\n', keep - i);
        size_t len = (size_t)(nl - (data + i));
        json_t *o = json_loadb(data + i, len, JSON_ALLOW_NUL, NULL);
        json_t *sid = lp_json_get_path(o, "logpipe.source_id");
        json_t *off = lp_json_get_path(o, "log.offset");
        if (!json_is_string(sid) || !wm_raise_checked(s, json_string_value(sid), off, now_s))
            unknown++;
        json_decref(o);
        lines++;
        i += len + 1;
    }
    free(data);
    if (unknown)
        lp_log(LP_LOG_WARN,
               "segment lines without a plausible logpipe.source_id/log.offset: "
               "their replays cannot be recognised",
               "path=\"%s\" lines=%zu", path, unknown);
    lp_log(LP_LOG_INFO, "recovered an open segment", "path=\"%s\" lines=%zu", path, lines);
    /* renamed to its final name only once the watermarks it raised are
     * saved (lp_segfile_open): a closed segment is never rescanned, so
     * closing it first could lose its lines from the watermarks */
    s->recovered = lp_xreallocarray(s->recovered, s->n_recovered + 1, sizeof(*s->recovered));
    s->recovered[s->n_recovered] = lp_xstrdup(path);
    s->n_recovered++;
    return 0;
}

/* Finds this partition's ".open" segments under <base>/<day>/<hour>/. */
static int recover_all(struct lp_segfile *s, char *err, size_t errlen)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%d-", (int)s->partition);
    DIR *days = opendir(s->base);
    if (!days)
        return 0;
    struct dirent *d;
    int rc = 0;
    while (!rc && (d = readdir(days))) {
        if (d->d_name[0] == '.')
            continue;
        char dp[BASE_MAX + 80];
        snprintf(dp, sizeof(dp), "%s/%.64s", s->base, d->d_name);
        DIR *hours = opendir(dp);
        if (!hours)
            continue;
        struct dirent *h;
        while (!rc && (h = readdir(hours))) {
            if (h->d_name[0] == '.')
                continue;
            char hp[BASE_MAX + 100];
            snprintf(hp, sizeof(hp), "%s/%.16s", dp, h->d_name);
            DIR *files = opendir(hp);
            if (!files)
                continue;
            struct dirent *f;
            while (!rc && (f = readdir(files))) {
                size_t l = strlen(f->d_name);
                if (strncmp(f->d_name, prefix, strlen(prefix)) || l < 12 ||
                    strcmp(f->d_name + l - 12, ".ndjson.open"))
                    continue;
                char fp[BASE_MAX + 320];
                snprintf(fp, sizeof(fp), "%s/%.200s", hp, f->d_name);
                rc = recover_segment(s, fp);
                if (rc)
                    snprintf(err, errlen, "cannot recover %s: %s", fp, lp_strerror(rc));
            }
            closedir(files);
        }
        closedir(hours);
    }
    closedir(days);
    return rc;
}

/* One writer per (route, partition), also across processes that share the
 * volume: a revoked owner whose worker is still writing its queue (past the
 * drain timeout) keeps the lock until it closes its segments, and the next
 * owner cannot open (so cannot recover, or write the same lines again)
 * before. The kernel drops the lock of a process that dies. flock, not
 * fcntl: its locks belong to the open file, so a second open in the same
 * process conflicts too. -EAGAIN while another writer holds it. */
static int take_lock(struct lp_segfile *s, char *err, size_t errlen)
{
    char dir[BASE_MAX + 16], path[BASE_MAX + 64];
    snprintf(dir, sizeof(dir), "%s/.state", s->base);
    int rc = lp_mkdirs(dir, 0750);
    if (rc) {
        snprintf(err, errlen, "cannot create %s: %s", dir, lp_strerror(rc));
        return rc;
    }
    snprintf(path, sizeof(path), "%s/%d.lock", dir, (int)s->partition);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (s->lock_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open %s: %s", path, lp_strerror(rc));
        return rc;
    }
    while (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        rc = -errno;
        if (rc == -EWOULDBLOCK) /* EAGAIN on Linux */
            snprintf(err, errlen,
                     "%s: another writer (the partition's previous owner, still "
                     "closing its segments) holds it",
                     path);
        else
            snprintf(err, errlen, "cannot lock %s: %s", path, lp_strerror(rc));
        return rc;
    }
    return 0;
}

struct lp_segfile *lp_segfile_open(const struct lp_segfile_config *cfg, int32_t partition,
                                   char *err, size_t errlen)
{
    struct lp_segfile *s = lp_xcalloc(1, sizeof(*s));
    s->fd = -1;
    s->lock_fd = -1;
    s->partition = partition;
    s->max_bytes = cfg->max_bytes ? cfg->max_bytes : 128u << 20;
    s->max_age_ns = cfg->max_age_ns ? cfg->max_age_ns : 3600 * LP_NS_PER_SEC;
    lp_buf_init(&s->wbuf, 0);
    if (strlen(cfg->root) + strlen(cfg->route) + 2 > sizeof(s->base)) {
        snprintf(err, errlen, "output path too long (%zu bytes, at most %d): %.80s/...",
                 strlen(cfg->root) + strlen(cfg->route) + 1, BASE_MAX - 1, cfg->root);
        goto fail;
    }
    size_t rl = strlen(cfg->root);
    memcpy(s->base, cfg->root, rl);
    s->base[rl] = '/';
    memcpy(s->base + rl + 1, cfg->route, strlen(cfg->route) + 1);
    int rc = lp_mkdirs(s->base, 0750);
    if (rc) {
        snprintf(err, errlen, "cannot create %s: %s", s->base, lp_strerror(rc));
        goto fail;
    }
    if (take_lock(s, err, errlen) || load_watermarks(s, err, errlen) || recover_all(s, err, errlen))
        goto fail;
    if ((rc = save_watermarks(s))) {
        snprintf(err, errlen, "cannot save watermarks under %s: %s", s->base, lp_strerror(rc));
        goto fail;
    }
    for (size_t i = 0; i < s->n_recovered; i++) {
        if ((rc = finalize(s->recovered[i])))
            lp_log(LP_LOG_WARN, "cannot close a recovered segment; it is recovered again later",
                   "path=\"%s\" error=\"%s\"", s->recovered[i], lp_strerror(rc));
        else
            open_rec_del(s, rel_of(s, s->recovered[i]));
    }
    free_recovered(s);
    s->legacy = 0; /* from here on every open segment is recorded at its syncs */
    return s;
fail:
    lp_segfile_abandon(s);
    return NULL;
}

static int open_segment(struct lp_segfile *s, int64_t kafka_offset, int64_t now_ns)
{
    time_t t = (time_t)(now_ns / LP_NS_PER_SEC);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(s->dir, sizeof(s->dir), "%s/%04d-%02d-%02d/%02d", s->base, (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100);
    int rc = lp_mkdirs(s->dir, 0750);
    if (rc)
        return rc;
    /* "<p>-<first offset>.ndjson", or "<p>-<offset>-<n>.ndjson" when a
     * segment (or its archive) of that name exists: after a rollback to the
     * same committed offset a new segment must not replace an old one */
    for (int n = 0;; n++) {
        char stem[BASE_MAX + 100];
        if (n == 0)
            snprintf(stem, sizeof(stem), "%s/%d-%lld.ndjson", s->dir, (int)s->partition,
                     (long long)kafka_offset);
        else
            snprintf(stem, sizeof(stem), "%s/%d-%lld-%d.ndjson", s->dir, (int)s->partition,
                     (long long)kafka_offset, n);
        static const char *const taken[] = {"", ".zst", ".gz", ".zst.archiving", ".gz.archiving"};
        int exists = 0;
        for (size_t k = 0; k < sizeof(taken) / sizeof(*taken) && !exists; k++) {
            char p[BASE_MAX + 128];
            struct stat sb;
            snprintf(p, sizeof(p), "%s%s", stem, taken[k]);
            exists = stat(p, &sb) == 0;
        }
        if (exists)
            continue;
        snprintf(s->path, sizeof(s->path), "%s.open", stem);
        s->fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
        if (s->fd >= 0)
            break;
        if (errno != EEXIST || n > 10000)
            return -errno;
    }
    struct stat st;
    s->size = fstat(s->fd, &st) == 0 ? (size_t)st.st_size : 0;
    s->opened_ns = now_ns;
    s->dir_new = 1;
    return 0;
}

int lp_segfile_write(struct lp_segfile *s, const char *source_id, uint64_t offset,
                     int64_t kafka_offset, const char *line, size_t len, int64_t now_ns)
{
    struct wm *w = wm_get(s, source_id, 0);
    if (w && w->off != UINT64_MAX && offset <= w->off)
        return 0; /* already in the files: a replay */
    if (s->fd < 0) {
        int rc = open_segment(s, kafka_offset, now_ns);
        if (rc)
            return rc;
    }
    lp_buf_append(&s->wbuf, line, len);
    lp_buf_putc(&s->wbuf, '\n');
    s->size += len + 1;
    wm_raise(s, source_id, offset, now_ns / LP_NS_PER_SEC);
    if (s->wbuf.len >= WBUF_FLUSH) {
        int rc = lp_write_all(s->fd, s->wbuf.data, s->wbuf.len);
        lp_buf_reset(&s->wbuf);
        if (rc)
            return rc;
    }
    return 1;
}

int lp_segfile_sync(struct lp_segfile *s)
{
    int rc = 0;
    if (s->fd >= 0) {
        if (s->wbuf.len) {
            rc = lp_write_all(s->fd, s->wbuf.data, s->wbuf.len);
            lp_buf_reset(&s->wbuf);
            if (rc)
                return rc;
        }
        if (fsync(s->fd))
            return -errno;
        if (s->dir_new) {
            /* the new file's entry, and the day/hour directories above it */
            if ((rc = lp_fsync_dir(s->dir)))
                return rc;
            char up[sizeof(s->dir)];
            snprintf(up, sizeof(up), "%s", s->dir);
            char *slash = strrchr(up, '/');
            if (slash) {
                *slash = '\0';
                lp_fsync_dir(up);
                slash = strrchr(up, '/');
                if (slash) {
                    *slash = '\0';
                    lp_fsync_dir(up);
                }
            }
            s->dir_new = 0;
        }
        /* durable up to here: what recovery cuts back to */
        open_rec_set(s, rel_of(s, s->path), s->size);
    }
    return save_watermarks(s);
}

static int roll(struct lp_segfile *s)
{
    int rc = lp_segfile_sync(s);
    if (rc || s->fd < 0)
        return rc;
    close(s->fd);
    s->fd = -1;
    rc = finalize(s->path);
    if (!rc)
        open_rec_del(s, rel_of(s, s->path)); /* gone from the file at the next save */
    return rc;
}

int lp_segfile_tick(struct lp_segfile *s, int64_t now_ns)
{
    if (s->fd >= 0 && (s->size >= s->max_bytes || now_ns - s->opened_ns >= s->max_age_ns))
        return roll(s);
    return 0;
}

int lp_segfile_close(struct lp_segfile *s)
{
    if (!s)
        return 0;
    int rc = roll(s);
    lp_segfile_abandon(s);
    return rc;
}

void lp_segfile_abandon(struct lp_segfile *s)
{
    if (!s)
        return;
    free_recovered(s);
    if (s->fd >= 0)
        close(s->fd);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the writer lock */
    lp_buf_release(&s->wbuf);
    free(s->tab);
    free(s->opens);
    free(s);
}

uint64_t lp_segfile_watermark(const struct lp_segfile *s, const char *source_id, int *found)
{
    struct wm *w = wm_get((struct lp_segfile *)s, source_id, 0);
    *found = w && w->off != UINT64_MAX;
    return *found ? w->off : 0;
}

const char *lp_segfile_current_path(const struct lp_segfile *s)
{
    return s->fd >= 0 ? s->path : NULL;
}
