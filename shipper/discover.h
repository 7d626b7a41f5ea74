/* Finding files to tail: input globs minus excludes, and the Kubernetes /
 * container metadata that the standard log paths carry. Pure; any thread. */
#ifndef LP_DISCOVER_H
#define LP_DISCOVER_H

#include <stddef.h>

struct lp_config_input;

struct lp_path_meta {
    char k8s_namespace[256];
    char k8s_pod_name[256];
    char k8s_pod_uid[64];
    char k8s_container_name[256];
    char container_id[128];
};

/* The default inputs used when shipper.inputs is empty. */
extern const char *const lp_default_globs[];

/* Parses the metadata of a path (fields it does not carry are ""):
 *   /var/log/containers/<pod>_<namespace>_<container>-<id>.log
 *   /var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log
 *   /var/lib/docker/containers/<id>/<id>-json.log  */
void lp_path_meta(const char *path, struct lp_path_meta *m);

/* Calls fn(ctx, path, input_index) for every regular file (symlinks
 * followed) that matches an input's paths and none of its excludes. With
 * n == 0 the default globs are used (input_index LP_INPUT_DEFAULT). Returns how many
 * matched. */
typedef void (*lp_discover_fn)(void *ctx, const char *path, int input_index);
size_t lp_discover(const struct lp_config_input *inputs, size_t n, lp_discover_fn fn, void *ctx);

/* Which input a path belongs to: its index, LP_INPUT_DEFAULT for the
 * default globs, or LP_INPUT_NONE when no input matches it (or an exclude
 * does). */
#define LP_INPUT_DEFAULT (-1)
#define LP_INPUT_NONE (-2)
int lp_discover_match(const struct lp_config_input *inputs, size_t n, const char *path);

/* The directory part of a glob before its first wildcard ("/var/log/pods/"
 * for "/var/log/pods/ * / * / *.log"), for an inotify watch. */
void lp_glob_base(const char *pattern, char *out, size_t outlen);

#endif
