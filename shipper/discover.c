/* glob(3)/fnmatch(3) discovery and path metadata. */
#include "discover.h"

#include "lp_config.h"

#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const char *const lp_default_globs[] = {
    "/var/log/containers/*.log",
    "/var/log/pods/*/*/*.log",
    "/var/lib/docker/containers/*/*-json.log",
    NULL,
};

static void copy_field(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (n >= dstlen)
        n = dstlen - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return n > 0;
}

/* A Kubernetes namespace name: a DNS label (RFC 1123), 1-63 of [a-z0-9-],
 * alphanumeric at both ends. */
static int dns_label(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

void lp_path_meta(const char *path, struct lp_path_meta *m)
{
    memset(m, 0, sizeof(*m));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t blen = strlen(base);
    if (blen > 4 && !strcmp(base + blen - 4, ".log")) {
        /* kubelet's name, <pod>_<namespace>_<container>-<id>.log, in any
         * directory (a copy, a bind mount elsewhere): outside /log/containers/
         * the id must be a full 64-hex container id and the namespace a DNS
         * label, so that an ordinary name (app_v2_x-2024.log) is not taken
         * for one */
        int in_containers = strstr(path, "/log/containers/") != NULL;
        const char *u1 = memchr(base, '_', blen);
        const char *u2 = u1 ? memchr(u1 + 1, '_', (size_t)(base + blen - u1 - 1)) : NULL;
        const char *dash = strrchr(base, '-');
        size_t idlen = dash ? (size_t)(base + blen - 4 - dash - 1) : 0;
        if (u1 && u2 && dash && dash > u2 && u1 > base && all_hex(dash + 1, idlen) &&
            (in_containers || (idlen == 64 && dns_label(u1 + 1, (size_t)(u2 - u1 - 1))))) {
            copy_field(m->k8s_pod_name, sizeof(m->k8s_pod_name), base, (size_t)(u1 - base));
            copy_field(m->k8s_namespace, sizeof(m->k8s_namespace), u1 + 1, (size_t)(u2 - u1 - 1));
            copy_field(m->k8s_container_name, sizeof(m->k8s_container_name), u2 + 1,
                       (size_t)(dash - u2 - 1));
            copy_field(m->container_id, sizeof(m->container_id), dash + 1, idlen);
            return;
        }
        if (in_containers)
            return;
    }
    const char *pods = strstr(path, "/log/pods/");
    if (pods) {
        /* <namespace>_<pod>_<uid>/<container>/<n>.log */
        const char *d = pods + 10;
        const char *s1 = strchr(d, '/');
        const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
        if (!s1 || !s2)
            return;
        const char *u1 = memchr(d, '_', (size_t)(s1 - d));
        const char *u2 = u1 ? memchr(u1 + 1, '_', (size_t)(s1 - u1 - 1)) : NULL;
        if (u1 && u2) {
            copy_field(m->k8s_namespace, sizeof(m->k8s_namespace), d, (size_t)(u1 - d));
            copy_field(m->k8s_pod_name, sizeof(m->k8s_pod_name), u1 + 1, (size_t)(u2 - u1 - 1));
            copy_field(m->k8s_pod_uid, sizeof(m->k8s_pod_uid), u2 + 1, (size_t)(s1 - u2 - 1));
        }
        copy_field(m->k8s_container_name, sizeof(m->k8s_container_name), s1 + 1,
                   (size_t)(s2 - s1 - 1));
        return;
    }
    const char *dc = strstr(path, "/docker/containers/");
    if (dc) {
        const char *id = dc + 19, *s = strchr(id, '/');
        if (s && all_hex(id, (size_t)(s - id)))
            copy_field(m->container_id, sizeof(m->container_id), id, (size_t)(s - id));
    }
}

static int excluded(const struct lp_config_input *in, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; in && i < in->n_exclude; i++) {
        const char *pat = in->exclude[i];
        /* a pattern with a '/' matches the whole path, otherwise the name */
        if (fnmatch(pat, strchr(pat, '/') ? path : base, 0) == 0)
            return 1;
    }
    return 0;
}

static size_t expand(const char *pattern, const struct lp_config_input *in, int idx,
                     lp_discover_fn fn, void *ctx)
{
    glob_t g;
    size_t n = 0;
    if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
        return 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat st;
        const char *p = g.gl_pathv[i];
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || excluded(in, p))
            continue;
        fn(ctx, p, idx);
        n++;
    }
    globfree(&g);
    return n;
}

size_t lp_discover(const struct lp_config_input *inputs, size_t n, lp_discover_fn fn, void *ctx)
{
    size_t found = 0;
    if (n == 0) {
        for (int i = 0; lp_default_globs[i]; i++)
            found += expand(lp_default_globs[i], NULL, LP_INPUT_DEFAULT, fn, ctx);
        return found;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < inputs[i].n_paths; j++)
            found += expand(inputs[i].paths[j], &inputs[i], (int)i, fn, ctx);
    return found;
}

void lp_glob_base(const char *pattern, char *out, size_t outlen)
{
    size_t wild = strcspn(pattern, "*?[");
    size_t cut = 0;
    for (size_t i = 0; i < wild; i++)
        if (pattern[i] == '/')
            cut = i + 1;
    if (pattern[wild] == '\0') { /* no wildcard: the file's directory */
        const char *s = strrchr(pattern, '/');
        cut = s ? (size_t)(s - pattern) + 1 : 0;
    }
    copy_field(out, outlen, pattern, cut ? cut : 0);
    if (!cut)
        copy_field(out, outlen, ".", 1);
}

int lp_discover_match(const struct lp_config_input *inputs, size_t n, const char *path)
{
    if (n == 0) {
        for (int i = 0; lp_default_globs[i]; i++)
            if (fnmatch(lp_default_globs[i], path, FNM_PATHNAME) == 0)
                return LP_INPUT_DEFAULT;
        return LP_INPUT_NONE;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < inputs[i].n_paths; j++)
            if (fnmatch(inputs[i].paths[j], path, FNM_PATHNAME) == 0 && !excluded(&inputs[i], path))
                return (int)i;
    return LP_INPUT_NONE;
}
