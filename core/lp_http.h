/* The daemons' HTTP endpoint (libmicrohttpd, its own thread):
 *   /metrics  Prometheus text of a registry
 *   /healthz  200 while the process serves requests (liveness)
 *   /readyz   200 when every registered readiness check is up, else 503
 *             with the names of the checks that are down. Checks of an
 *             external dependency (an output's sink) are listed when down
 *             but counted only by /readyz?strict=1: an OpenSearch outage
 *             makes no pod unready, so it neither stops a rollout's pods
 *             nor, through a PodDisruptionBudget, a node's drain. */
#ifndef LP_HTTP_H
#define LP_HTTP_H

#include <stddef.h>

struct lp_metrics;
struct lp_http;
struct lp_ready; /* one readiness check */

/* Starts serving on addr ("127.0.0.1:9464", "[::1]:9464"; port 0 picks a
 * free port). Borrows metrics, which must outlive the server. Returns NULL
 * and fills err on failure. Call from the main thread. */
struct lp_http *lp_http_start(const char *addr, struct lp_metrics *metrics, char *err,
                              size_t errlen);
/* Stops the server thread and frees everything (checks included). NULL ok. */
void lp_http_stop(struct lp_http *h);
/* The TCP port actually bound. */
unsigned lp_http_port(const struct lp_http *h);

/* Registers a readiness check, initially down. At most 32 checks. The handle
 * lives as long as the server; NULL when full. Call before serving traffic. */
struct lp_ready *lp_http_ready_check(struct lp_http *h, const char *name);
/* The same, for the state of an external dependency when external is 1
 * (counted by /readyz?strict=1 only). */
struct lp_ready *lp_http_ready_check_external(struct lp_http *h, const char *name, int external);
/* Marks a check up (1) or down (0). Any thread, lock-free. NULL is ignored. */
void lp_ready_set(struct lp_ready *r, int up);

#endif
