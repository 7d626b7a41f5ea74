/* Walks the policies' trees (scan.h). */
#include "scan.h"

#include "archive.h"
#include "lp_alloc.h"
#include "lp_glob.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int ends_with(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && memcmp(s + n - k, suf, k) == 0;
}

int lp_rt_selected(const struct lp_rt_select *sel, const char *rel)
{
    if (sel->n_routes) {
        const char *slash = strchr(rel, '/');
        size_t n = slash ? (size_t)(slash - rel) : strlen(rel);
        int hit = 0;
        for (size_t i = 0; i < sel->n_routes && !hit; i++)
            hit = strlen(sel->routes[i]) == n && strncmp(sel->routes[i], rel, n) == 0;
        if (!hit || !slash)
            return 0;
    }
    if (!sel->glob || !*sel->glob)
        return 1;
    /* the glob matches the path or one of its leading directories */
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", rel);
    for (char *s = buf;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            int hit = lp_glob_match(sel->glob, buf);
            *s = c;
            if (hit)
                return 1;
            if (!c)
                return 0;
        }
    }
}

/* The volume of path (or of its nearest existing parent). */
static int volume_of(struct lp_rt_scan *s, const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    struct stat sb;
    while (stat(p, &sb) != 0) {
        char *slash = strrchr(p, '/');
        if (!slash)
            snprintf(p, sizeof(p), ".");
        else if (slash == p)
            p[1] = '\0';
        else
            *slash = '\0';
        if (stat(p, &sb) == 0)
            break;
        if (strcmp(p, ".") == 0 || strcmp(p, "/") == 0)
            return LP_RT_NO_VOLUME;
    }
    for (size_t i = 0; i < s->n_vols; i++)
        if (s->devs[i] == sb.st_dev)
            return (int)i;
    struct statvfs vf;
    if (statvfs(p, &vf) != 0)
        return LP_RT_NO_VOLUME;
    s->vols = lp_xreallocarray(s->vols, s->n_vols + 1, sizeof(*s->vols));
    s->devs = lp_xreallocarray(s->devs, s->n_vols + 1, sizeof(*s->devs));
    s->vols[s->n_vols].free_bytes = (uint64_t)vf.f_bavail * vf.f_frsize;
    s->devs[s->n_vols] = sb.st_dev;
    return (int)s->n_vols++;
}

static void problem(struct lp_rt_scan *s, int policy, const char *path, int err)
{
    s->problems = lp_xreallocarray(s->problems, (s->n_problems + 1), sizeof(*s->problems));
    s->problems[s->n_problems++] = (struct lp_rt_problem){policy, lp_xstrdup(path), err};
}

static void add_file(struct lp_rt_scan *s, struct lp_rt_file *f)
{
    LP_ALLOC_GROW(s->files, s->n_files + 1, s->cap, 256);
    s->files[s->n_files++] = *f;
}

struct walk {
    struct lp_rt_scan *s;
    const struct lp_rt_select *sel;
    int policy;
    int archives_only; /* walking an archive_root */
    size_t base_len;   /* length of the root prefix including the '/' */
};

static void walk(struct walk *w, const char *dir, int depth)
{
    struct lp_rt_scan *s = w->s;
    if (depth > 32) {
        problem(s, w->policy, dir, ELOOP);
        return;
    }
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT)
            problem(s, w->policy, dir, errno);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *nm = e->d_name;
        if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
            continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof(p), "%s/%s", dir, nm) >= (int)sizeof(p)) {
            problem(s, w->policy, dir, ENAMETOOLONG);
            continue;
        }
        struct stat sb;
        if (fstatat(dirfd(d), nm, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                problem(s, w->policy, p, errno);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            walk(w, p, depth + 1);
            continue;
        }
        if (!S_ISREG(sb.st_mode))
            continue;
        size_t n = strlen(nm);
        const char *rel = p + w->base_len;
        struct lp_rt_pstat *ps = &s->pstat[w->policy];
        if (ends_with(nm, n, LP_ARCHIVE_TMP_SUFFIX)) {
            ps->temps++;
            continue;
        }
        struct lp_rt_file f = {
            .policy = w->policy,
            .size = (uint64_t)sb.st_size,
            .disk = (uint64_t)sb.st_blocks * 512,
            .mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec,
            .volume = -1,
        };
        size_t strip = 0;
        if (ends_with(nm, n, ".ndjson.zst")) {
            f.kind = LP_RT_ARCHIVE;
            f.codec = LP_CODEC_ZSTD;
            strip = 4;
        } else if (ends_with(nm, n, ".ndjson.gz")) {
            f.kind = LP_RT_ARCHIVE;
            f.codec = LP_CODEC_GZIP;
            strip = 3;
        } else if (!w->archives_only && ends_with(nm, n, ".ndjson")) {
            f.kind = LP_RT_SEGMENT;
        } else if (!w->archives_only && ends_with(nm, n, ".ndjson.open")) {
            char r[PATH_MAX];
            snprintf(r, sizeof(r), "%.*s", (int)(strlen(rel) - 5), rel);
            if (lp_rt_selected(w->sel, r)) {
                ps->open_segments++;
                ps->open_bytes += (uint64_t)sb.st_size;
            }
            continue;
        } else {
            continue;
        }
        char r[PATH_MAX];
        snprintf(r, sizeof(r), "%.*s", (int)(strlen(rel) - strip), rel);
        if (!lp_rt_selected(w->sel, r))
            continue;
        if (f.kind == LP_RT_ARCHIVE) {
            /* a header that cannot be read is found again by verification */
            if (lp_archive_content_size(p, f.codec, &f.orig_size))
                f.orig_size = 0;
            ps->archives++;
            ps->archive_bytes += f.size;
        } else {
            ps->segments++;
            ps->segment_bytes += f.size;
        }
        f.path = lp_xstrdup(p);
        f.rel = lp_xstrdup(r);
        f.volume = -2; /* set below, per directory volume */
        add_file(s, &f);
    }
    closedir(d);
}

int lp_rt_scan(struct lp_rt_scan *s, struct lp_rt_policy *pols, const struct lp_rt_select *sel,
               size_t n_pols)
{
    memset(s, 0, sizeof(*s));
    s->pstat = lp_xcalloc(n_pols ? n_pols : 1, sizeof(*s->pstat));
    for (size_t i = 0; i < n_pols; i++) {
        struct lp_rt_policy *p = &pols[i];
        p->volume = volume_of(s, p->root);
        p->archive_volume = p->archive_root ? volume_of(s, p->archive_root) : p->volume;
        struct stat sb;
        if (stat(p->root, &sb) != 0) {
            if (errno == ENOENT)
                s->pstat[i].root_missing = 1;
            else
                problem(s, (int)i, p->root, errno);
        }
        size_t first = s->n_files;
        struct walk w = {s, &sel[i], (int)i, 0, strlen(p->root) + 1};
        if (strcmp(p->root, "/") == 0)
            w.base_len = 1;
        walk(&w, p->root, 0);
        for (size_t k = first; k < s->n_files; k++)
            s->files[k].volume = p->volume;
        if (p->archive_root) {
            first = s->n_files;
            struct walk wa = {s, &sel[i], (int)i, 1, strlen(p->archive_root) + 1};
            walk(&wa, p->archive_root, 0);
            for (size_t k = first; k < s->n_files; k++)
                s->files[k].volume = p->archive_volume;
        }
    }
    return 0;
}

void lp_rt_scan_release(struct lp_rt_scan *s)
{
    for (size_t i = 0; i < s->n_files; i++) {
        free(s->files[i].path);
        free(s->files[i].rel);
    }
    for (size_t i = 0; i < s->n_problems; i++)
        free(s->problems[i].path);
    free(s->files);
    free(s->vols);
    free(s->devs);
    free(s->pstat);
    free(s->problems);
    memset(s, 0, sizeof(*s));
}
