/* The YAML document as a tree of nodes that remember file:line:col, after
 * ${...} substitution, so every later error can point at its source.
 * Internal to config/, and to the aggregator's --test files (aggregator/cfgtest.c),
 * whose mistakes point at their source the same way. Single-threaded. */
#ifndef LP_NODE_H
#define LP_NODE_H

#include <stddef.h>

struct lp_buf;

enum lp_node_type { LP_NODE_NULL, LP_NODE_SCALAR, LP_NODE_MAP, LP_NODE_SEQ };

struct lp_node {
    enum lp_node_type type;
    const char *file; /* borrowed from the loader's file-name list */
    int line, col;    /* 1-based */
    char *text;       /* SCALAR: value after substitution (NUL-terminated) */
    size_t len;
    int quoted; /* SCALAR: single or double quoted in the source */
    /* MAP: keys[i] → items[i]; SEQ: items[i] */
    struct lp_node **keys;
    struct lp_node **items;
    size_t n, cap;
};

/* Environment lookup used by substitution (getenv by default; tests swap it). */
typedef const char *(*lp_getenv_fn)(const char *name);

/* Parses a YAML file (or, when text != NULL, the given text under the name
 * path) into a MAP node; an empty document gives an empty map. Errors are
 * appended to errs as "FILE:LINE:COL: message\n" lines. Returns NULL on
 * YAML that does not parse; a substitution that fails is reported and its
 * value left empty, and the tree is returned (the caller checks errs). */
struct lp_node *lp_node_parse_file(const char *path, const char *text, size_t textlen,
                                   lp_getenv_fn env, struct lp_buf *errs);
/* The top-level sections the running daemon reads (NULL-terminated, kept by
 * pointer; NULL, the default: all). In the others, ${VAR} of a variable not
 * set and ${file:...} of a file that is not there are empty instead of
 * errors: one file serves three daemons, each with only its own secrets.
 * Syntax errors are reported everywhere. Set once, before loading. */
void lp_node_set_used_sections(const char *const *sections);
/* 1 when the running daemon reads top-level section key (see above). */
int lp_node_section_used(const char *key);

/* Merges src into dst: maps deep-merge, scalars and lists replace. Takes
 * ownership of src (freed). */
void lp_node_merge(struct lp_node *dst, struct lp_node *src);
/* Frees a tree. NULL ok. */
void lp_node_free(struct lp_node *n);
/* Value of key in a MAP node or NULL. */
struct lp_node *lp_node_get(const struct lp_node *map, const char *key);
const char *lp_node_type_name(enum lp_node_type t);

/* Appends "FILE:LINE:COL: message\n" for node n. */
void lp_node_error(struct lp_buf *errs, const struct lp_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
