/* Docker metadata without Kubernetes: the container's name, image and
 * labels (Compose project and service among them) from config.v2.json next
 * to its json-file log (/var/lib/docker/containers/<id>/). The file is
 * dockerd's, but names and labels are chosen by whoever starts the
 * container: read with a size cap, only Name, Config.Image and
 * Config.Labels (never Config.Env: secrets), labels normalised as the wire
 * carries them (lp_wire_labels_normalize). Pure; any thread. */
#ifndef LP_DOCKER_META_H
#define LP_DOCKER_META_H

#include "lp_kv.h"

#include <stddef.h>

#define LP_DOCKER_CONFIG_MAX (4u << 20) /* a larger config.v2.json is not read */

struct lp_docker_meta {
    char *name;  /* without Docker's leading '/'; NULL when absent */
    char *image; /* Config.Image as the container was started with (nginx:1.25) */
    struct lp_kvlist labels;
};

/* Reads the config.v2.json of the container whose log file is log_path
 * (symlinks resolved: a /var/log/containers link of a Docker node points
 * there too). 0 with *m filled (release with lp_docker_meta_release); a
 * negative code (LP_E*) when there is none or it cannot be read, with the
 * reason in why (m is then empty). */
int lp_docker_meta_read(const char *log_path, struct lp_docker_meta *m, char *why, size_t whylen);
/* Same from the text of a config.v2.json (tests, fuzzing). */
int lp_docker_meta_parse(const char *text, size_t len, struct lp_docker_meta *m, char *why,
                         size_t whylen);
void lp_docker_meta_release(struct lp_docker_meta *m);

#endif
