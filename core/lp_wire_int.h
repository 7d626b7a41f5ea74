/* What the wire's encoder (lp_wire.c) and ECS renderer (lp_wire_ecs.c)
 * share; not for other modules. */
#ifndef LP_WIRE_INT_H
#define LP_WIRE_INT_H

#include "lp_buf.h"
#include "lp_wire.h"

/* ,"key":"value" when v is set (no comma when *first, which it clears). */
int lp_wire_put_str(struct lp_buf *b, int *first, const char *key, const char *v);
/* ["truncated","partial",...] for the set bits of flags. */
int lp_wire_put_flag_array(struct lp_buf *b, unsigned flags);
/* The owner row's key ("kubernetes.<kind>.name") into key and its name, or
 * NULL when there is no owner or its kind is not known. */
const char *lp_wire_owner_key(const struct lp_wire_source *s, const struct lp_wire_field *f,
                              char key[64]);
/* The source's part of its ECS events (lp_wire_source.ecs) into out;
 * LP_EINVAL when it cannot be cached (no logpipe.source_id). */
int lp_wire_ecs_source(const struct lp_wire_source *s, struct lp_buf *out);

#endif
