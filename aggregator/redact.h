/* Redaction (aggregator.redact): rules that replace what matches them in an
 * event's content before the event reaches any output or the dead letter.
 *
 * A rule is a built-in detector (email, ipv4, ipv6, card, bearer, jwt,
 * aws_key: linear-time patterns, the ip and card ones validated after the
 * match: octets, inet_pton, Luhn) or an admin's PCRE2 pattern, and a
 * replacement (literal for detectors; $1 / ${name} for patterns). Matching
 * runs under the process's PCRE2 limits (lp_regex_setup); a value whose
 * matching a limit stops is replaced whole by "[redacted:RULE]" — it fails
 * closed, never open — and counted.
 *
 * What a rule sees: its `fields` (dotted paths; an object means every
 * string and number below it) or, without fields, every string and number
 * (as its decimal text) the line's content put in the event and the keys of
 * content objects (a parser's dotted keys whole, agg_redact_keys): message, event.original,
 * error.*, the parsed fields, the kept values (content.kept_field). Never
 * the pipeline's identity fields (@timestamp, stream, event.id,
 * event.ingested, log.offset, log.file, host.name, container, kubernetes,
 * the logpipe ids) unless a rule names them.
 *
 * Built once from the configuration, immutable afterwards; every function
 * may be called from any thread (each thread has its own match scratch). */
#ifndef AGG_REDACT_H
#define AGG_REDACT_H

#include "lp_deadletter.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct lp_config_redact;
struct lp_buf;
struct lp_metrics;

struct agg_redactor;

/* NULL with the reason in err (a pattern that does not compile). n may be 0
 * (then NULL without an error: nothing to redact). kept is the kept
 * list's dotted path (content.kept_field); match_limit and depth_limit are
 * PCRE2's per value (0: lp_regex's defaults). */
struct agg_redactor *agg_redactor_new(const struct lp_config_redact *rules, size_t n,
                                      const char *kept, uint32_t match_limit, uint32_t depth_limit,
                                      char *err, size_t errlen);
void agg_redactor_free(struct agg_redactor *rd);

/* Counts per rule in m: values changed (logpipe_aggregator_redacted_total)
 * and values replaced whole because a limit stopped matching
 * (logpipe_aggregator_redact_limited_total). Before any thread redacts. */
void agg_redactor_set_metrics(struct agg_redactor *rd, struct lp_metrics *m);

/* The message of a record without a parser (the fast path): the rules that
 * apply to `message`. 1 when something changed: *res, *res_n is the result,
 * valid until this thread's next call of a function of this file. 0 when s
 * stays as it is. */
int agg_redact_message(const struct agg_redactor *rd, const char *s, size_t n, const char **res,
                       size_t *res_n);

/* Every rule over bytes that are not an event (a dead-lettered raw Kafka
 * value): as agg_redact_message. */
int agg_redact_bytes(const struct agg_redactor *rd, const void *s, size_t n, const char **res,
                     size_t *res_n);

/* The rules over an event in place. Returns the number of values (strings
 * or keys) changed. */
size_t agg_redact_event(const struct agg_redactor *rd, json_t *ev);

/* The content rules (those without fields) over the keys of a parser's
 * fields at every depth (LP_REDACT_KEY_DEPTH at most), each key whole,
 * before the merge splits dotted keys into nested objects: {"users":
 * {"alice@example.com": 1}} would otherwise become users.alice@example.com,
 * a path no part of which matches. Returns the keys changed. rd may be NULL. */
#define LP_REDACT_KEY_DEPTH 64
size_t agg_redact_keys(const struct agg_redactor *rd, json_t *fields);

/* The rules as the dead letter calls them (rd NULL: no rules). */
struct lp_dlq_redactor agg_redactor_dlq(const struct agg_redactor *rd);

#endif
