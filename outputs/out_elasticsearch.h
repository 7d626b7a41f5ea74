/* The Elasticsearch/OpenSearch output: a sender thread per output that
 * batches documents into _bulk requests (op_type create, _id = event id,
 * gzip bodies) and keeps up to max_inflight_requests in flight with libcurl
 * multi.
 *
 *   item 200/201/409     done (409: a replay of a document already there)
 *   item 429/5xx         retried alone, capped exponential backoff with
 *                        jitter, without limit (consumption pauses instead)
 *   item 400 mapping     a mapping conflict (mapper_parsing_exception,
 *                        illegal_argument_exception, document_parsing_
 *                        exception): the refused field moves to the kept
 *                        list as a string and the document is sent again
 *                        (a few rounds, one field each, then every field
 *                        the template does not map); only a refusal after
 *                        that dead-letters it, as it was first sent
 *   item 400/404/...     dead letter with the reason, then done
 *   request failure      (connect, timeout, 429, 5xx, garbled) every item
 *                        again after a backoff; readiness false meanwhile
 *   413                  the request cap is halved and the items resent; a
 *                        single document over the cluster's limit is dead-
 *                        lettered
 *   401/403              the output halts with a clear error, readiness
 *                        false; it tries again every retry_max
 *
 * On start it installs an index template with ECS mappings (unless
 * install_template is false), before sending any document.
 *
 * The engine reaches it through lp_output_elasticsearch (lp_output.h); the
 * functions below are that table's and the tests'. Threads: new, start,
 * stop on the engine's thread; doc_new, doc_link, submit on a worker (its
 * lane); everything else runs on the output's sender thread, which takes
 * submitted documents from a list under the output's mutex. */
#ifndef LP_OUT_ELASTICSEARCH_H
#define LP_OUT_ELASTICSEARCH_H

#include <stddef.h>
#include <stdint.h>

struct lp_es;
struct lp_msg;
struct lp_dlq;
struct lp_config_output;
struct lp_metrics;
struct lp_ready;

/* Bytes the output's request bodies and response buffers hold (counted in
 * the memory budget with the documents). Any thread. */
size_t lp_es_buffer_bytes(struct lp_es *es);
struct lp_es *lp_es_new(const struct lp_config_output *cfg, const char *topic, struct lp_dlq *dlq,
                        struct lp_metrics *metrics, struct lp_ready *ready, char *err,
                        size_t errlen);
/* Starts the sender thread. 0 or -errno. */
int lp_es_start(struct lp_es *es);
/* Stops the sender: keeps sending until nothing is queued or deadline_ns
 * (monotonic) passes, then returns; documents not indexed by then keep
 * their holds (their offsets are not stored). Frees everything. */
void lp_es_stop(struct lp_es *es, int64_t deadline_ns);

/* A document built by a worker, handed over with lp_es_submit. */
struct lp_es_doc;
/* Builds a document of message m (takes one hold of m, released when the
 * document is final). index and doc are copied. */
struct lp_es_doc *lp_es_doc_new(struct lp_msg *m, int32_t partition, int64_t kafka_offset,
                                const char *index, const char *id, const char *doc, size_t len);
/* Hands a chain of documents (linked by lp_es_doc_link) to the sender. */
void lp_es_doc_link(struct lp_es_doc **head, struct lp_es_doc **tail, struct lp_es_doc *d);
void lp_es_submit(struct lp_es *es, struct lp_es_doc *head, struct lp_es_doc *tail, size_t n);

/* The index template for `index` (pattern, ECS mappings) as JSON: for tests
 * and for operators who install it themselves; kept is where the kept list
 * is mapped (NULL: logpipe.kept); flat_type how labels are mapped (NULL:
 * objects; "flat_object", "flattened": lp_es_flat_type); scalars_as_keyword
 * maps every unmapped number and boolean as a keyword too (dynamic_scalars).
 * The caller frees. */
char *lp_es_template_body(const char *index, int data_stream, const char *kept,
                          const char *flat_type, int scalars_as_keyword);
/* The one-field type for keyed objects a cluster has, from its GET /
 * answer: "flat_object" (OpenSearch 2.7+), "flattened" (Elasticsearch
 * 7.3+), or NULL. */
const char *lp_es_flat_type(const char *root_json, size_t len);

/* Where healed conflicts keep the refused value (default logpipe.kept).
 * Before lp_es_start. */
void lp_es_set_kept_field(struct lp_es *es, const char *kept_field);

/* The field a mapping error reason names, into field[0..len): 1, or 0 when
 * the reason is not a mapping error or names none (exposed for tests). */
int lp_es_conflict_field(const char *reason, char *field, size_t len);

/* Documents queued or in flight (tests, metrics). */
size_t lp_es_queued(struct lp_es *es);

#endif
