/* Test support: read a whole logpipe topic from the beginning and decode
 * every message (both wire modes), for tests that check what arrived. */
#ifndef LP_CONSUME_H
#define LP_CONSUME_H

#include "lp_wire.h"

#include <stddef.h>

/* Called for each record; src and r are valid during the call only. */
typedef void (*lp_consume_fn)(void *ctx, const struct lp_wire_source *src,
                              const struct lp_wire_record *r);

/* Reads every partition of topic from the beginning until each one reports
 * its end (or timeout_ms passes). Returns the number of messages, or -1 with
 * the reason on stderr (undecodable messages count as errors in *bad). */
long lp_consume_all(const char *brokers, const char *topic, int timeout_ms, lp_consume_fn fn,
                    void *ctx, long *bad);

#endif
