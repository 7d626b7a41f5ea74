/* Index retention against Elasticsearch/OpenSearch: lists the indices and
 * data streams an index policy selects, dates each one, and deletes those
 * older than delete_after.
 *
 * The date of an index is the end of the data it can hold:
 *   - a data stream's backing index: the creation of the next backing index
 *     (when rollover stopped its writes); the write index is never deleted;
 *   - date_from name/auto: a %Y.%m.%d or %Y-%m-%d date in the name, plus
 *     one day (or one hour when an hour follows: %Y.%m.%d.%H);
 *   - date_from creation/auto without a date in the name: creation date.
 * Indices whose name starts with '.' are only considered as backing
 * indices of a matching data stream. */
#ifndef LP_RT_INDICES_H
#define LP_RT_INDICES_H

#include <stddef.h>
#include <stdint.h>

struct lp_config_index_policy;

struct lp_rt_index {
    char *name;
    char *stream;            /* data stream, or NULL */
    int64_t end_ns;          /* end of its data; 0 when unknown */
    const char *date_source; /* "name", "creation", "rollover" */
    uint64_t bytes;          /* store size */
    int64_t docs;
    const char *skip; /* why it is never deleted, or NULL */
};

struct lp_rt_indices {
    struct lp_rt_index *ix;
    size_t n;
};

/* Lists and dates the policy's indices (sorted by end date, oldest first).
 * 0, or LP_EHTTP with err set (nothing should be deleted then). */
int lp_rt_indices_list(const struct lp_config_index_policy *p, struct lp_rt_indices *out, char *err,
                       size_t errlen);
void lp_rt_indices_release(struct lp_rt_indices *l);

/* Deletes one index. 0 (deleted, or already gone: *gone = 1) or LP_EHTTP/LP_EINVAL with
 * err set. */
int lp_rt_index_delete(const struct lp_config_index_policy *p, const char *index, int *gone,
                       char *err, size_t errlen);

/* The end of the data a name's date covers (exposed for tests); 0 when
 * the name holds no valid date. */
int64_t lp_rt_index_name_end(const char *name);

#endif
