/* Message parsers for the aggregator: they read an event's message and add
 * structured fields to the event (a jansson object, ECS names as nested
 * objects: "http.response.status_code" → {"http":{"response":{...}}}).
 *
 *   json    the message is a JSON object: merged into the event, or put
 *           under `target`
 *   logfmt  key=value pairs (quoted values, bare keys = true)
 *   regex   PCRE2 (JIT) named groups; "__" in a group name stands for "."
 *           (PCRE2 names cannot contain dots): (?<http__request__method>\S+)
 *   syslog  RFC 5424 and RFC 3164 (PRI optional)
 *   access  common / combined access logs (nginx, apache)
 *
 * A parser is immutable once built and may be shared by worker threads.
 * A failed parse changes nothing in the event and returns a reason: the
 * caller keeps the raw message and records error.message / event.original
 * (lp_msgparse_mark_failed) — an event is never dropped. */
#ifndef LP_MSGPARSE_H
#define LP_MSGPARSE_H

#include "lp_json.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct lp_msgparser_config {
    const char *kind;        /* json | logfmt | regex | syslog | access */
    const char *pattern;     /* regex: the PCRE2 pattern */
    const char *target;      /* json/logfmt: put fields under this key (NULL: merge) */
    const char *time_field;  /* field holding the event time (NULL: the kind's default) */
    const char *time_format; /* lp_timestamp format (NULL: the kind's default) */
};

struct lp_msgparser;

/* Returns a parser or NULL with the reason (unknown kind, a PCRE2 error
 * with its offset, an unsupported time format) in err. */
struct lp_msgparser *lp_msgparser_new(const struct lp_msgparser_config *cfg, char *err,
                                      size_t errlen);
void lp_msgparser_free(struct lp_msgparser *p);

/* Parses msg[0..len) into a new object of fields (*fields, a new
 * reference; under `target` when configured). The parser writes nothing
 * else: the caller decides what of it joins the event (the aggregator's
 * content merge keeps pipeline-owned fields out of reach). now_ns resolves
 * year-less times. Returns 0, or LP_ECORRUPT with a one-line reason in why
 * (and *fields NULL). */
int lp_msgparse_fields(const struct lp_msgparser *p, const char *msg, size_t len, int64_t now_ns,
                       json_t **fields, char *why, size_t whylen);

/* The time in the parser's time field of fields: 0 with *ns set, 1 when the
 * parser has no time field or the message none, LP_ECORRUPT when it does
 * not parse with the time format. The syslog parser's time field is
 * "@timestamp" (it writes the line's own time there as RFC 3339). */
int lp_msgparse_time(const struct lp_msgparser *p, json_t *fields, int64_t now_ns, int64_t *ns);
/* The parser's time field (dotted path) or NULL. */
const char *lp_msgparser_time_field(const struct lp_msgparser *p);

/* The parser's view without the aggregator's rules, for tests and tools:
 * fields set into ev by path, a time sets @timestamp (an unparsable time
 * fails). A failure changes nothing in ev. */
int lp_msgparse(const struct lp_msgparser *p, const char *msg, size_t len, json_t *ev,
                int64_t now_ns, char *why, size_t whylen);

/* Records a failed parse in ev: error.message = "<parser>: <why>" and
 * event.original = the raw message. */
void lp_msgparse_mark_failed(const struct lp_msgparser *p, json_t *ev, const char *msg, size_t len,
                             const char *why);

#endif
