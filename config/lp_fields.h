/* Field tables: one row per configuration key. Internal to config/. */
#ifndef LP_FIELDS_H
#define LP_FIELDS_H

#include <stddef.h>
#include <stdint.h>

enum lp_ftype {
    LP_FT_SECTION,  /* nested table at offset (sub) */
    LP_FT_LIST,     /* array of sub-table structs: pointer at offset, count at count_offset */
    LP_FT_STRING,   /* char * */
    LP_FT_ENUM,     /* char *, one of choices "a|b|c" */
    LP_FT_BOOL,     /* int */
    LP_FT_INT,      /* int64_t within [min, max] */
    LP_FT_DURATION, /* int64_t ms within [min, max] */
    LP_FT_SIZE,     /* int64_t bytes within [min, max] */
    LP_FT_STRLIST,  /* char ** at offset, count at count_offset */
    LP_FT_MAP,      /* struct lp_kvlist of string → string */
    LP_FT_RATIO,    /* int64_t in millionths within [min, max]: "0.1", "10%", "1" */
};

/* LP_F_PRESENCE: a SECTION that may be absent; count_offset is the offset
 * of an int set to 1 when the file gives it (the dump leaves it out
 * otherwise, so that a dumped configuration loads to the same meaning). */
enum { LP_F_SECRET = 1, LP_F_REQUIRED = 2, LP_F_PRESENCE = 4 };

/* A key of aggregator.outputs that only these output types take (none of
 * the bits: every type, such as name and type). The one statement of which
 * output takes which key: the check refuses it on another type with its
 * position, and docs/config.md names the types. */
enum {
    LP_F_OUT_ES = 1 << 8,
    LP_F_OUT_FILE = 1 << 9,
    LP_F_OUT_S3 = 1 << 10,
    LP_F_OUT_STDOUT = 1 << 11,
    LP_F_OUT_ANY = LP_F_OUT_ES | LP_F_OUT_FILE | LP_F_OUT_S3 | LP_F_OUT_STDOUT,
};

struct lp_field {
    const char *name;
    enum lp_ftype type;
    size_t offset;
    const char *def; /* default, in config syntax; NULL = none / empty */
    int64_t min, max;
    const char *choices;
    unsigned flags;
    const struct lp_field *sub; /* SECTION, LIST: terminated by a NULL name */
    size_t elem_size;           /* LIST */
    size_t count_offset;        /* LIST, STRLIST */
    const char *doc;
};

/* The top-level table (sections), and the keys of an aggregator output. */
extern const struct lp_field lp_config_root[];
extern const struct lp_field lp_config_output_fields[];

#endif
