/* logpipe-shipper engine: discovers container log files, tails them, turns
 * lines into events and ships them to Kafka in wire-format batches, with
 * checkpoints that only advance over delivered data.
 *
 * Threads: everything runs on the caller's thread (the loop thread), except
 * librdkafka's own threads; delivery reports are served by rd_kafka_poll
 * from lp_shipper_step. */
#ifndef LP_SHIPPER_H
#define LP_SHIPPER_H

#include <stddef.h>
#include <stdint.h>

struct lp_config;
struct lp_metrics;
struct lp_ready;
struct lp_shipper;

/* Borrows cfg and metrics (they must outlive the shipper); kafka_ready may
 * be NULL. Loads checkpoints, creates the producer, discovers files.
 * Returns NULL with the reason in err. */
struct lp_shipper *lp_shipper_new(const struct lp_config *cfg, struct lp_metrics *metrics,
                                  struct lp_ready *kafka_ready, char *err, size_t errlen);
/* One loop iteration: waits up to timeout_ms for file events, reads,
 * batches, produces, serves delivery reports, rotates, checkpoints. */
int lp_shipper_step(struct lp_shipper *s, int timeout_ms);
/* Graceful stop: stops reading, sends open batches, waits up to
 * timeout_ms for their delivery reports, saves checkpoints. Returns 0 when
 * everything sent was acknowledged. */
int lp_shipper_shutdown(struct lp_shipper *s, int timeout_ms);
/* Frees everything (no flush: use shutdown first for a graceful stop). */
void lp_shipper_free(struct lp_shipper *s);

/* Test hook: makes the producer fail as librdkafka 2.0.2's idempotence bug
 * does (rd_kafka_test_fatal_error); the shipper must rebuild and replay. */
int lp_shipper_test_fatal(struct lp_shipper *s);

/* Diagnostic: prints every tail's offsets and delivery state to stderr
 * (tests print it when a file does not catch up). */
void lp_shipper_debug(const struct lp_shipper *s);

/* Test hooks: files tailed, and bytes still unacknowledged across them. */
size_t lp_shipper_files(const struct lp_shipper *s);
uint64_t lp_shipper_lag_bytes(const struct lp_shipper *s);

#endif
