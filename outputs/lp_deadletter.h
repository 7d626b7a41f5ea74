/* The dead letter: records that cannot be delivered, kept with the stage
 * (decode, parse, output), the reason and where they came from, as NDJSON
 * in <dir>/dead-letter-<YYYY-MM-DD>-<host>.ndjson, fsynced before the call
 * returns (a dead-lettered record counts as delivered for the commit
 * tracker, so it must be durable first), and optionally copied to a Kafka
 * topic. With redaction rules, an entry is redacted before it is written
 * (and says "redacted":true). Thread-safe. */
#ifndef LP_DEADLETTER_H
#define LP_DEADLETTER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct lp_dlq;
struct lp_config;
struct lp_metrics;

struct lp_dlq *lp_dlq_new(const struct lp_config *cfg, struct lp_metrics *metrics, char *err,
                          size_t errlen);
void lp_dlq_free(struct lp_dlq *d);

struct lp_dlq_entry {
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

/* Redaction rules every entry passes first: its event, or its raw value as
 * bytes. The dead letter knows them only through these calls (the rules
 * are the pipeline's: aggregator/redact.h). event redacts a parsed event in
 * place; bytes returns 1 with the result in *res, *res_n (valid until the
 * calling thread's next call) when something changed, else 0. Both may be
 * called from any thread at once. */
struct lp_dlq_redactor {
    const void *rules;
    size_t (*event)(const void *rules, json_t *ev);
    int (*bytes)(const void *rules, const void *s, size_t n, const char **res, size_t *res_n);
};
/* Set once, before records are written (NULL or rules NULL: none); copied. */
void lp_dlq_set_redactor(struct lp_dlq *d, const struct lp_dlq_redactor *rd);

/* Writes and fsyncs one record. 0, or -errno after retrying is abandoned
 * because stop was requested (*stop non-zero). Retries a failing disk every
 * second, logging, so a full volume blocks (and backs up) instead of losing. */
int lp_dlq_write(struct lp_dlq *d, const struct lp_dlq_entry *e, const atomic_int *stop);

/* Records written (tests). */
uint64_t lp_dlq_count(struct lp_dlq *d);

#endif
