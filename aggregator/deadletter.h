/* The dead letter: records that cannot be delivered, kept with the stage
 * (decode, parse, output), the reason and where they came from, as NDJSON
 * in <dir>/dead-letter-<YYYY-MM-DD>-<host>.ndjson, fsynced before the call
 * returns (a dead-lettered record counts as delivered for the commit
 * tracker, so it must be durable first), and optionally copied to a Kafka
 * topic. With redaction rules, an entry is redacted before it is written
 * (and says "redacted":true). Thread-safe. */
#ifndef AGG_DEADLETTER_H
#define AGG_DEADLETTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct agg_dlq;
struct lp_config;
struct lp_metrics;

struct agg_dlq *agg_dlq_new(const struct lp_config *cfg, struct lp_metrics *metrics, char *err,
                            size_t errlen);
void agg_dlq_free(struct agg_dlq *d);

struct agg_dlq_entry {
    const char *stage;  /* decode | parse | output */
    const char *reason; /* one line */
    const char *output; /* output name (stage output) or NULL */
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *event; /* the event as JSON (one line), or NULL */
    size_t event_len;
    const void *raw; /* otherwise the raw Kafka value, stored as base64 */
    size_t raw_len;
};

/* Redaction rules (redact.h) every entry passes first: its event, or its
 * raw value as bytes. Set once, before records are written (NULL: none). */
struct agg_redactor;
void agg_dlq_set_redactor(struct agg_dlq *d, const struct agg_redactor *rd);

/* Writes and fsyncs one record. 0, or -errno after retrying is abandoned
 * because stop was requested (*stop non-zero). Retries a failing disk every
 * second, logging, so a full volume blocks (and backs up) instead of losing. */
int agg_dlq_write(struct agg_dlq *d, const struct agg_dlq_entry *e, const atomic_int *stop);

/* Records written (tests). */
uint64_t agg_dlq_count(struct agg_dlq *d);

#endif
