/* logpipe-aggregator's engine: a consumer group member that decodes wire
 * batches, runs the pipeline and writes to the outputs, storing a Kafka
 * offset only once every record up to it is durable in every output it was
 * routed to (lp_tracker.h).
 *
 * Threads: the caller's (consumer: poll, dispatch, rebalance, offsets,
 * pause/resume), `workers` workers (a partition always goes to the same
 * worker, so its order holds; decode, pipeline, file and stdout outputs),
 * one sender per Elasticsearch output, and the dead letter's callers. */
#ifndef AGG_AGGREGATOR_H
#define AGG_AGGREGATOR_H

#include <stddef.h>
#include <stdint.h>

struct lp_config;
struct lp_metrics;
struct lp_http;
struct lp_aggregator;

/* Builds everything and joins the group. http may be NULL (no readiness
 * checks). NULL with err filled. */
struct lp_aggregator *lp_aggregator_new(const struct lp_config *cfg, struct lp_metrics *metrics,
                                        struct lp_http *http, char *err, size_t errlen);
/* One round: polls Kafka for up to timeout_ms, dispatches what arrived,
 * stores and commits offsets, pauses and resumes partitions. */
void lp_aggregator_step(struct lp_aggregator *a, int timeout_ms);
/* Graceful stop: stops consuming, drains in-flight work (up to the
 * configured drain_timeout), commits what is durable, leaves the group.
 * 0, or LP_EKAFKA when something could not be committed (it is read again). */
int lp_aggregator_shutdown(struct lp_aggregator *a);
void lp_aggregator_free(struct lp_aggregator *a);

#endif
