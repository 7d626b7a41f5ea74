/* Turns a file's decoded physical lines into events: rejoins runtime
 * partial chunks byte-exact (per stream: stdout and stderr never mix),
 * applies multiline rules per stream, truncates over-long events (flagged,
 * never dropped), flags invalid UTF-8, and emits events in increasing
 * start-offset order so a source's offsets only grow downstream.
 *
 * One assembler per tailed file; owned by the shipper's loop thread. */
#ifndef LP_ASSEMBLE_H
#define LP_ASSEMBLE_H

#include "lp_container.h"
#include "lp_multiline.h"

#include <stddef.h>
#include <stdint.h>

struct lp_event {
    int64_t ts_ns;
    enum lp_stream stream;
    uint64_t offset; /* file offset of the first physical line */
    const char *msg; /* valid only during the callback */
    size_t len;
    unsigned flags; /* LP_REC_* of lp_wire.h */
    uint32_t lines; /* physical lines joined by multiline (1 = none) */
};

/* Receives each finished event; a non-zero return stops the current call
 * and is passed back (the event counts as delivered to the callback). */
typedef int (*lp_event_fn)(void *ctx, const struct lp_event *ev);

struct lp_assembler;

/* ml may be NULL (no multiline) and is borrowed. max_line_bytes caps one
 * event's message. partial_timeout_ns: a partial chunk whose continuation
 * does not come within it is emitted on its own (flagged partial). */
struct lp_assembler *lp_assembler_new(const struct lp_multiline *ml, size_t max_line_bytes,
                                      int64_t partial_timeout_ns);
void lp_assembler_free(struct lp_assembler *a);

/* Feeds one decoded physical line that starts at file offset off; extra
 * flags (e.g. a decode error) are OR-ed into its event. */
int lp_assembler_feed(struct lp_assembler *a, const struct lp_cline *c, uint64_t off,
                      unsigned extra_flags, int64_t now_ns, lp_event_fn fn, void *ctx);

/* Emits what waited too long (multiline flush timeout, partial timeout);
 * with all != 0 everything pending (the file will not grow again). */
int lp_assembler_flush(struct lp_assembler *a, int64_t now_ns, int all, lp_event_fn fn, void *ctx);

/* The smallest start offset of anything fed but not yet emitted, or
 * UINT64_MAX: a checkpoint must not pass it. */
uint64_t lp_assembler_pending_offset(const struct lp_assembler *a);

/* Changes the multiline rules (ml borrowed, NULL: none) for the lines fed
 * from now on: open groups are finished under the old rules first (through
 * fn; partial chunks stay and complete under the new ones). Not from inside
 * fn. */
int lp_assembler_set_multiline(struct lp_assembler *a, const struct lp_multiline *ml,
                               lp_event_fn fn, void *ctx);

/* Nanoseconds spent classifying lines with rules that have their own
 * match limits (a tenant's pattern: lp_multiline_set_limits) since the
 * last call; the count restarts. For a per-file CPU budget. */
uint64_t lp_assembler_take_match_ns(struct lp_assembler *a);

/* Forgets all pending state (the file was truncated or replaced). */
void lp_assembler_reset(struct lp_assembler *a);

#endif
