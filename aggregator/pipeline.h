/* The aggregator's per-event pipeline: a decoded wire record becomes a full
 * ECS event (jansson object), is matched against the ordered routes, parsed
 * with the route's parser and enriched.
 *
 *   route   the first route whose conditions all hold on the unparsed event
 *           (source metadata, stream, message) takes it; none → "default"
 *   parse   the route's parser on `message`; what it finds joins the event
 *           under the content rules (core/lp_ecs.h: owned fields out of
 *           reach, deep merge, type conflicts and caps kept as strings,
 *           time only from time_field within bounds, message from the
 *           message keys); a line it cannot read stays a plain event
 *           (on_failure: mark adds error.message / event.original) — never
 *           a drop
 *   keep    the route's cost controls, before any parsing: drop, sample
 *           (by the event id: a replay keeps the same events), rate limit
 *           (per key and second of the lines' own time)
 *   enrich  static fields, fields from env (read once at build), rename,
 *           copy, remove, log.level normalisation, event.ingested
 *   redact  aggregator.redact's rules (redact.h) on the finished event, and
 *           on the message of fast-path renders
 *
 * Built once from the configuration and shared by the worker threads:
 * immutable afterwards except the rate limiters' windows (each under its
 * own mutex). */
#ifndef AGG_PIPELINE_H
#define AGG_PIPELINE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct lp_config_aggregator;
struct lp_wire_source;
struct lp_wire_record;
struct lp_buf;

/* What a route sends to: indexes into the aggregator's output array. */
struct agg_route_info {
    const char *name;
    const size_t *outputs;
    size_t n_outputs;
};

struct agg_pipeline;

/* output_names[0..n_outputs) are the outputs in the aggregator's order
 * (a route's output list is resolved against it). NULL with err filled. */
struct agg_pipeline *agg_pipeline_new(const struct lp_config_aggregator *cfg,
                                      const char *const *output_names, size_t n_outputs, char *err,
                                      size_t errlen);
void agg_pipeline_free(struct agg_pipeline *p);

size_t agg_pipeline_routes(const struct agg_pipeline *p); /* including "default", last */
const struct agg_route_info *agg_pipeline_route(const struct agg_pipeline *p, size_t i);

/* The index of the route that takes ev. */
size_t agg_pipeline_match(const struct agg_pipeline *p, json_t *ev);

/* What a route's cost controls decide for one record. */
enum agg_verdict {
    AGG_KEEP,
    AGG_DROP_ROUTE,  /* the route drops everything */
    AGG_DROP_SAMPLE, /* outside the route's sample */
    AGG_DROP_RATE,   /* over the route's rate limit */
};
#define AGG_VERDICTS 4
/* Label values of the drop reasons ("" for AGG_KEEP). */
extern const char *const agg_verdict_names[AGG_VERDICTS];

/* The verdict of route for record r of src with event id (hex, as
 * lp_event_id). Sampling depends on the id only; a rate limit counts the
 * record in its key's window (thread-safe). */
enum agg_verdict agg_pipeline_keep(const struct agg_pipeline *p, size_t route,
                                   const struct lp_wire_source *src, const struct lp_wire_record *r,
                                   const char *event_id);

/* Builds the event of one record: ECS fields, route, keep, parse, enrich,
 * redact. Returns the event (a new reference) and the route index in
 * *route; *verdict is the route's keep verdict (when it is not AGG_KEEP the
 * event is returned unparsed, to be dropped); *parse_failed is set when the
 * route's parser failed (the event then carries error.message and
 * event.original). event_id is the record's id (lp_event_id). scratch is a
 * reusable buffer. NULL only when out of memory. */
json_t *agg_pipeline_event(const struct agg_pipeline *p, const struct lp_wire_source *src,
                           const struct lp_wire_record *r, const char *event_id, int64_t now_ns,
                           struct lp_buf *scratch, size_t *route, enum agg_verdict *verdict,
                           int *parse_failed);

/* The redaction rules (NULL: none), for the dead letter. */
const struct agg_redactor *agg_pipeline_redactor(const struct agg_pipeline *p);

/* The fast path (most events: no parser, no object-level enrichment).
 * agg_pipeline_match_record decides the route on the record itself, or
 * returns SIZE_MAX when a condition needs the event object (then use
 * agg_pipeline_event). For a route where agg_pipeline_route_fast is 1,
 * agg_pipeline_render appends the finished event (what
 * agg_pipeline_event + json_dumps would give, the message redacted) to out;
 * event_id may be NULL (computed), ingested comes from
 * agg_pipeline_ingested (NULL when off). The caller asks agg_pipeline_keep
 * first. */
size_t agg_pipeline_match_record(const struct agg_pipeline *p, const struct lp_wire_source *src,
                                 const struct lp_wire_record *r);
int agg_pipeline_route_fast(const struct agg_pipeline *p, size_t route);
/* agg_pipeline_route_fast for a record of src: 0 also when the source
 * carries a parser hint (logpipe.parser) the route will apply — a route
 * without a parser of its own parses with the hinted parser when the
 * aggregator has one of that name (unknown names are counted and ignored). */
int agg_pipeline_fast(const struct agg_pipeline *p, size_t route, const struct lp_wire_source *src);
const char *agg_pipeline_ingested(const struct agg_pipeline *p, int64_t now_ns, char buf[40]);
int agg_pipeline_render(const struct agg_pipeline *p, const struct lp_wire_source *src,
                        const struct lp_wire_record *r, const char *event_id, const char *ingested,
                        struct lp_buf *out);

/* The parser name of route i (NULL: none), for metrics labels. */
const char *agg_pipeline_route_parser(const struct agg_pipeline *p, size_t i);

/* Counts the content rules' work in m (kept values by reason and field,
 * refused times). Call once, before the workers start. */
struct lp_metrics;
void agg_pipeline_set_metrics(struct agg_pipeline *p, struct lp_metrics *m);

/* Applies only the enrichment step (exposed for tests). */
void agg_pipeline_enrich(const struct agg_pipeline *p, json_t *ev, int64_t now_ns);

/* Canonical level name for a level string ("WARNING" → "warn"), or NULL
 * when it is not recognised. */
const char *agg_level_normalize(const char *s);

#endif
