/* What the pipeline owns in an event and how parsed content joins it.
 *
 * One table (lp_ecs.c) names every field logpipe sets or maps in the index
 * template, with its mapping type and whether the pipeline owns it. It
 * drives three things: the content merge below, the index template's
 * properties (out_elasticsearch.c) and docs/fields.md (a unit test compares them).
 *
 * The merge puts a parser's fields into the event key by key (deep): nothing
 * replaces a whole object, and a value is never written where it would
 * overwrite an owned field or where its shape differs from the mapping
 * (a string where an object is mapped, an object where a string is mapped,
 * text in a long). Such a value is kept in the kept list (default
 * logpipe.kept) as an entry {field: dotted path, value: string, reason}:
 * three mapped fields whatever a line contains, so the kept place can
 * neither conflict nor add fields to the index. Depth and field count are
 * capped; what is over the caps is kept the same way.
 *
 * All functions are pure and thread-safe; the table is immutable. */
#ifndef LP_ECS_H
#define LP_ECS_H

#include <jansson.h>
#include <stddef.h>

/* lp_ecs_field.owned bits */
#define LP_ECS_OWNED 1
#define LP_ECS_KEYED 2 /* keys are data (labels): mapped as one flat field where it can be */

enum lp_ecs_type {
    LP_ECS_OBJECT,
    LP_ECS_KEYWORD,
    LP_ECS_TEXT,
    LP_ECS_LONG,
    LP_ECS_DATE,
    LP_ECS_DATE_NANOS,
    LP_ECS_STORED, /* keyword kept in _source only: not indexed, no doc values */
};

struct lp_ecs_field {
    const char *path;
    enum lp_ecs_type type;
    int owned; /* set by the pipeline only; owns the whole subtree of an object
                * (LP_ECS_KEYED too: an object whose keys are data) */
    const char *doc;
};

/* The table, and its length. */
extern const struct lp_ecs_field lp_ecs_table[];
extern const size_t lp_ecs_count;

/* The entry for a dotted path, or NULL. */
const struct lp_ecs_field *lp_ecs_lookup(const char *path);
/* 1 when the path or one of its ancestors is owned by the pipeline. */
int lp_ecs_owned(const char *path);
/* The nearest table entry at or above path (for metric labels), or NULL. */
const struct lp_ecs_field *lp_ecs_nearest(const char *path);

struct lp_metrics;
/* Increments metric{field=...} for a content field path: logpipe's own
 * fields by their table path, up to 100 others by their first component,
 * then "other" (bounded cardinality). Any thread. */
void lp_ecs_count_field(struct lp_metrics *m, const char *metric, const char *help,
                        const char *path);

#define LP_ECS_KEPT_DEFAULT "logpipe.kept"

/* The template's "properties" object for the table (a new reference), the
 * kept list's mapping at kept (NULL: the default); keyed objects (labels)
 * mapped as {"type": flat_type} when it is not NULL ("flat_object",
 * "flattened"), else as objects with dynamic keys. */
json_t *lp_ecs_template_properties(const char *kept, const char *flat_type);

struct lp_ecs_merge_opts {
    const char *kept;  /* dotted path of the kept object, e.g. "logpipe.kept" */
    size_t max_fields; /* leaves merged from one event's content */
    size_t max_depth;  /* object nesting below the top level */
};

/* Called once per kept value: path is the field the content wanted,
 * reason "owned", "type", "depth", "fields" or "name". */
typedef void (*lp_ecs_kept_fn)(void *ud, const char *path, const char *reason);

/* Merges fields (borrowed) into ev. Returns the number of values kept. */
size_t lp_ecs_merge(json_t *ev, json_t *fields, const struct lp_ecs_merge_opts *o,
                    lp_ecs_kept_fn on_kept, void *ud);

/* Appends {field: path, value, reason} to the kept list at the dotted path
 * kept (created when missing), value (borrowed) as a string (JSON text
 * when it is not one). Used by the merge, time bounds and mapping-conflict
 * healing. */
void lp_ecs_keep(json_t *ev, const char *kept, const char *path, json_t *value, const char *reason);

/* Removes the value at a dotted path (nested objects; emptied parents go
 * too) and returns it (a new reference), or NULL when absent. */
json_t *lp_ecs_take(json_t *ev, const char *path);

#endif
