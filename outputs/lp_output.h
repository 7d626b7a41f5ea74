/* The output interface: what every aggregator output implements, and the
 * registry that maps a configured `type` to its implementation. Adding an
 * output is one file (out_<type>.c) plus its line in lp_output.c's registry
 * (and its options in the config table).
 *
 * DESIGN. The aggregator's engine owns the threads: a consumer thread and
 * N workers, each worker owning a fixed set of partitions. An output is one
 * shared object (create … close) plus one lane per worker (lane_new …
 * lane_free): a worker calls only its own lane, so per-worker state (open
 * segment files, the chunk of documents being built) needs no lock; what a
 * lane shares with other lanes or the output's own threads is the output's
 * business, stated in its file.
 *
 * Delivery. A document comes from one Kafka message (struct lp_msg, the
 * commit tracker's), whose offset is stored only when nobody holds it.
 *   - An output that delivers later (elasticsearch) takes its own hold of
 *     the message per document in submit (lp_msg_hold) and releases it when
 *     the document is final: indexed, or dead-lettered.
 *   - An output with LP_OUTPUT_SYNCED (file) is acknowledged by the worker,
 *     which keeps its hold on every message it processed until sync() of
 *     each such lane returned 0. After a failed sync the worker resets the
 *     lanes (partition(-1, LP_OUTPUT_ABANDON)) and submits those messages
 *     again, to the synced outputs only (replay = 1); a synced output must
 *     recognise what it already has (the file output's watermarks).
 *   - An output that delivers at once (stdout) neither holds nor syncs.
 * submit never blocks on the output's destination for long: an output that
 * is behind holds documents (counted in lp_part_held), and the engine pauses
 * partitions and stops rendering by that count. */
#ifndef LP_OUTPUT_H
#define LP_OUTPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct lp_config_output;
struct lp_dlq;
struct lp_metrics;
struct lp_msg;
struct lp_ready;

/* What the engine gives an output when it is created. Borrowed: every
 * pointer outlives the output. */
struct lp_output_env {
    const char *topic;  /* the Kafka topic (dead-letter entries name it) */
    struct lp_dlq *dlq; /* where undeliverable documents go */
    struct lp_metrics *metrics;
    struct lp_ready *ready;    /* this output's readiness check, or NULL */
    const char *kept_field;    /* aggregator.content.kept_field */
    const char *const *routes; /* the routes that send to this output (names) */
    size_t n_routes;
};

/* The base every implementation embeds as its first member. */
struct lp_output {
    const struct lp_output_ops *ops;
    const struct lp_config_output *cfg; /* borrowed from the configuration */
    const char *name;                   /* cfg->name */
};

/* One document as a worker hands it to an output. Borrowed for the call,
 * except that an output may parse text into ev when ev is NULL (the engine
 * frees ev after the last output: json_decref). */
struct lp_output_doc {
    struct lp_msg *m; /* the Kafka message it came from (hold it: lp_msg_hold) */
    int32_t partition;
    int64_t kafka_offset;
    const char *route; /* the route's name */
    const char *source_id;
    uint64_t offset;  /* the record's byte offset in its source */
    const char *id;   /* the event id (hex) */
    const char *text; /* the event, one line of JSON without the newline */
    size_t len;
    json_t *ev;         /* the event parsed, or NULL (fast path: text only) */
    const char *stream; /* stdout | stderr | NULL */
    int64_t ts_ns;      /* the record's time (runtime) */
    int64_t now_ns;     /* wall clock when the message was processed */
};

/* submit's answers (>= 0); a negative LP_E* code is a failure: a synced
 * output's lane is broken until the worker resets it. */
enum {
    LP_OUTPUT_OK = 0,      /* taken */
    LP_OUTPUT_SKIPPED = 1, /* already there (a replay): not counted as sent */
    LP_OUTPUT_HANDED = 2,  /* taken, and what the lane held went to the output:
                              the worker may wait for the memory budget now */
};

enum lp_output_part { LP_OUTPUT_OPEN, LP_OUTPUT_CLOSE, LP_OUTPUT_ABANDON };

#define LP_OUTPUT_SYNCED 1u /* durable at sync(); see DESIGN above */

/* Every function gets the output it was created as; lane functions run on
 * that lane's worker thread only, the rest on the engine's thread (create,
 * start, memory from the consumer thread, close after every lane is freed).
 * Optional entries may be NULL. */
struct lp_output_ops {
    const char *name; /* the config's `type` */
    unsigned flags;   /* LP_OUTPUT_SYNCED */
    /* A new output, or NULL with err set. Must not start threads. */
    struct lp_output *(*create)(const struct lp_config_output *cfg, const struct lp_output_env *env,
                                char *err, size_t errlen);
    /* Optional: starts the output's threads. 0 or a negative code. */
    int (*start)(struct lp_output *o);
    /* Per-worker state (NULL is a valid lane) and its end. */
    void *(*lane_new)(struct lp_output *o);
    void (*lane_free)(struct lp_output *o, void *lane);
    /* One document (replay: a synced output's second write after a failed
     * sync). An LP_OUTPUT_* answer or a negative code. */
    int (*submit)(struct lp_output *o, void *lane, struct lp_output_doc *d, int replay);
    /* Optional: the end of a Kafka message: hand over what the lane holds. */
    void (*flush)(struct lp_output *o, void *lane);
    /* Optional (required with LP_OUTPUT_SYNCED): make what was submitted
     * durable. 0 or a negative code (the worker resets and replays). */
    int (*sync)(struct lp_output *o, void *lane);
    /* Optional: about once a second when idle or between messages. */
    void (*tick)(struct lp_output *o, void *lane, int64_t now_ns);
    /* Optional: a partition assigned (OPEN), revoked after sync (CLOSE) or
     * lost (ABANDON; also after a revoke whose drain timed out). Partition
     * -1 with ABANDON: a synced output's sync failed and the worker replays
     * to the synced outputs only; an output that is not synced keeps what
     * it holds. */
    void (*partition)(struct lp_output *o, void *lane, int32_t partition, enum lp_output_part ev);
    /* Optional: bytes its buffers hold now; *reserved: their bound, set
     * aside from the memory budget (may be read before start). */
    size_t (*memory)(struct lp_output *o, size_t *reserved);
    /* Stops (delivering until deadline_ns, monotonic) and frees. What is not
     * delivered by then keeps its holds. Accepts NULL. */
    void (*close)(struct lp_output *o, int64_t deadline_ns);
};

/* The implementation of a configured type, or NULL. */
const struct lp_output_ops *lp_output_find(const char *type);
/* The registry, in order, NULL-terminated (tests, docs). */
extern const struct lp_output_ops *const lp_output_registry[];

extern const struct lp_output_ops lp_output_elasticsearch;
extern const struct lp_output_ops lp_output_file;
extern const struct lp_output_ops lp_output_s3;
extern const struct lp_output_ops lp_output_stdout;

#endif
