/* Elasticsearch/OpenSearch _bulk: request bodies (op_type create with the
 * event id as _id, so a replay answers 409 = already indexed), index names
 * from templates, and the classification of responses into what to do
 * with each item and with the request. Pure functions and objects owned by
 * one thread (an output's sender). */
#ifndef LP_BULK_H
#define LP_BULK_H

#include "lp_buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A request body being built. Embed, lp_bulk_init / lp_bulk_release. */
struct lp_bulk {
    struct lp_buf body; /* NDJSON: action line, document line, ... */
    size_t n;           /* actions */
};

void lp_bulk_init(struct lp_bulk *b, size_t max_body_bytes);
void lp_bulk_release(struct lp_bulk *b);
void lp_bulk_reset(struct lp_bulk *b);
/* Appends {"create":{"_index":index,"_id":id}} and the document (one line
 * of JSON, no newline). 0, LP_EINVAL (an _id over 512 bytes, a document
 * with a newline) or LP_ETOOBIG (the body cap: send, then add again). */
int lp_bulk_add(struct lp_bulk *b, const char *index, const char *id, const char *doc, size_t len);

enum lp_item_verdict {
    LP_ITEM_OK = 0, /* 200/201, and 409 = already there (our ids are deterministic) */
    LP_ITEM_RETRY,  /* 429, 5xx, 408, a 403 cluster block (disk full): retry later */
    LP_ITEM_DROP,   /* 400/404 and other 4xx: dead letter with the reason */
};

struct lp_bulk_item {
    enum lp_item_verdict verdict;
    int status;
    char reason[200]; /* "mapper_parsing_exception: failed to parse field [x]" */
};

enum lp_bulk_verdict {
    LP_BULK_ITEMS = 0, /* look at each item */
    LP_BULK_RETRY,     /* the whole request again (429, 5xx, garbled response) */
    LP_BULK_SPLIT,     /* 413: too large, send halves */
    LP_BULK_HALT,      /* 401/403: credentials or permissions: stop and alert */
    LP_BULK_FAIL,      /* another 4xx for the whole request: every item is dropped */
};

/* The query string of _bulk requests: the answer keeps only what
 * lp_bulk_classify reads (errors, each item's status and error), about 25
 * bytes per item instead of about 250, and an all-created answer
 * ("errors":false) is classified without parsing its items. */
#define LP_BULK_FILTER_PATH "filter_path=errors,items.*.status,items.*.error"

/* Classifies the response (HTTP status and body) to a request of n actions;
 * with LP_BULK_ITEMS, items[0..n) are filled in request order. A 200 whose
 * items do not number n is a garbled response: LP_BULK_RETRY. why gets a
 * one-line reason for anything but success. */
enum lp_bulk_verdict lp_bulk_classify(long http_status, const char *body, size_t len, size_t n,
                                      struct lp_bulk_item *items, char *why, size_t whylen);

/* Index name from a template: {field.path} is replaced by the event's
 * value (missing: "unknown"), strftime-style %Y %m %d %H (UTC) by the
 * event time ts_ns. The result is lowercased and characters Elasticsearch
 * refuses in index names become '_'. 0 or LP_ETOOBIG (over 255 bytes). */
int lp_index_name(const char *tmpl, json_t *ev, int64_t ts_ns, char *out, size_t outlen);

#endif
