/* Dotted paths ("kubernetes.pod.name") in jansson objects: what the
 * parsers, the pipeline, the outputs and the wire decoder share. Pure
 * functions of their arguments; the caller owns the objects. */
#ifndef LP_JSON_H
#define LP_JSON_H

#include <jansson.h>

/* Sets a dotted path in obj, creating intermediate objects; an existing
 * non-object on the way is replaced. Takes a reference to value. */
void lp_json_set_path(json_t *obj, const char *path, json_t *value);
/* The value at a dotted path (nested objects, or a literal dotted key) or
 * NULL. */
json_t *lp_json_get_path(json_t *obj, const char *path);
/* The text of a scalar as routes match it (and --test compares it):
 * strings as they are, numbers and booleans as JSON writes them, in tmp.
 * 0 when v is not a scalar. */
int lp_json_scalar_text(json_t *v, const char **s, size_t *n, char *tmp, size_t tmplen);

#endif
