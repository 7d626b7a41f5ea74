/* Pod metadata from the Kubernetes API server: a list+watch cache of the
 * pods on this node (fieldSelector spec.nodeName), kept by one background
 * thread with libcurl and jansson.
 *
 * The thread lists the node's pods, then watches from the list's
 * resourceVersion (ADDED / MODIFIED / DELETED / BOOKMARK); a watch that
 * ends or fails is resumed from the last resourceVersion, a 410 Gone (the
 * version is too old: the server compacted its history) relists. Any failure keeps the cache as it
 * is and retries with backoff (retry_initial doubling to retry_max, with jitter): an API outage
 * makes the cache stale, never the shipper slow — lookups only read the cache, and a pod not known
 * yet ships with its path metadata (logpipe.metadata: pending). A deleted pod stays deleted_grace
 * long, for the lines read after its deletion.
 *
 * What the API says is treated as input: objects and lines are size-capped,
 * labels and annotations normalised and capped as the wire carries them
 * (lp_wire_labels_normalize), unknown shapes ignored.
 *
 * Threads: lp_k8s_start / lp_k8s_stop / lp_k8s_tick from the shipper's
 * thread; lp_k8s_lookup and lp_k8s_generation from any thread; snapshots
 * are immutable and reference-counted (any thread may release one). */
#ifndef LP_K8S_META_H
#define LP_K8S_META_H

#include "lp_kv.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct lp_config_kubernetes;
struct lp_metrics;

/* What the shipper attaches to a pod's sources. Immutable once published. */
struct lp_k8s_pod {
    atomic_int refs;
    char *ns, *name, *uid;
    char *node, *ip;
    const char *owner_kind; /* one of lp_wire_owner_kinds, or NULL */
    char *owner_name;
    struct lp_kvlist labels;      /* normalised (dots to _, caps) */
    struct lp_kvlist annotations; /* the allow-listed ones, normalised */
    struct lp_kvlist images;      /* container name -> image */
    /* hints: annotations logpipe.io/exclude, logpipe.io/parser, logpipe.io/multiline */
    int exclude;
    char *parser;
    char *multiline;
};

/* Builds a snapshot from a Pod object (tests, fuzzing; the watch's own
 * parser). allow[0..n_allow) is the annotation allow-list (keys, or
 * prefixes ending in '*'). NULL when it is not a pod with a namespace and
 * a name. */
struct lp_k8s_pod *lp_k8s_pod_parse(json_t *pod, char *const *allow, size_t n_allow);
void lp_k8s_pod_release(struct lp_k8s_pod *p);
/* The image of container `name` of the pod (NULL: unknown). */
const char *lp_k8s_pod_image(const struct lp_k8s_pod *p, const char *container);

struct lp_k8s;

/* Starts the client (the thread lists at once). NULL with err on a bad
 * configuration (no api_url and no KUBERNETES_SERVICE_HOST). */
struct lp_k8s *lp_k8s_start(const struct lp_config_kubernetes *cfg, struct lp_metrics *m, char *err,
                            size_t errlen);
void lp_k8s_stop(struct lp_k8s *k);

/* A reference to the pod ns/name (with uid when the path gave it: a pod
 * recreated under the same name is another pod), or NULL when not known.
 * Release with lp_k8s_pod_release. */
struct lp_k8s_pod *lp_k8s_lookup(struct lp_k8s *k, const char *ns, const char *name,
                                 const char *uid);
/* Changes whenever the cache does: a source looks its pod up again only
 * then. */
uint64_t lp_k8s_generation(struct lp_k8s *k);
/* 1 once the first list has filled the cache. */
int lp_k8s_synced(struct lp_k8s *k);
/* Sets the cache-age gauge (call about once a second). */
void lp_k8s_tick(struct lp_k8s *k);

/* Tests and fuzzing: a cache with no thread and no server (free with
 * lp_k8s_stop), fed what the API server would send: one watch stream line
 * (1 when it says 410 Gone: a relist is due), or one PodList page (first:
 * a new list begins; *more: a continue token came; after the last page the
 * pods the list did not have count as deleted). LP_ECORRUPT: not a
 * PodList. */
struct lp_k8s *lp_k8s_new_offline(const struct lp_config_kubernetes *cfg, struct lp_metrics *m);
int lp_k8s_feed_event(struct lp_k8s *k, const char *line, size_t n);
int lp_k8s_feed_list(struct lp_k8s *k, const char *body, size_t n, int first, int *more);

#endif
