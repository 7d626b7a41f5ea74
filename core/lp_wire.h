/* The batch wire format (docs/wire-format.md): one Kafka message carries the
 * lines of one source as compressed NDJSON. The first line is the source
 * object (what all lines share, said once); each following line carries only
 * what varies per line. A per-record mode (one full ECS event per message)
 * serves consumers that cannot decode batches.
 *
 * Encoder and decoder objects have one owning thread; the functions keep no
 * global state. */
#ifndef LP_WIRE_H
#define LP_WIRE_H

#include "lp_buf.h"
#include "lp_codec.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct lp_arena;
struct lp_kv;

#define LP_WIRE_FORMAT 1
#define LP_WIRE_CT_BATCH "application/x-ndjson"
#define LP_WIRE_CT_RECORD "application/json"

/* Header names of a wire message. */
#define LP_WIRE_H_FORMAT "logpipe-format"
#define LP_WIRE_H_CONTENT_TYPE "content-type"
#define LP_WIRE_H_ENCODING "content-encoding"
#define LP_WIRE_H_RECORDS "logpipe-records"

/* What all lines of a batch share. Strings are borrowed (encoder) or live in
 * the decode arena (decoder); NULL = absent. source_id is required. */
struct lp_wire_source {
    const char *source_id;
    const char *host;
    const char *path;
    const char *format; /* "docker", "cri", "raw" */
    const char *container_id;
    const char *container_name;
    const char *k8s_namespace;
    const char *k8s_pod_name;
    const char *k8s_pod_uid;
    const char *k8s_container_name;
    /* from the container runtime (Docker's config.v2.json) or the API server */
    const char *container_image;          /* container.image.name */
    const struct lp_kv *container_labels; /* container.labels, normalised (lp_wire_labels) */
    size_t n_container_labels;
    /* from the Kubernetes API server (the shipper's pod cache) */
    const struct lp_kv *k8s_labels; /* kubernetes.labels, normalised */
    size_t n_k8s_labels;
    const struct lp_kv *k8s_annotations; /* kubernetes.annotations (the allow-list), normalised */
    size_t n_k8s_annotations;
    const char *k8s_node_name;  /* kubernetes.node.name */
    const char *k8s_pod_ip;     /* kubernetes.pod.ip */
    const char *k8s_owner_kind; /* one of lp_wire_owner_kinds: kubernetes.<kind>.name */
    const char *k8s_owner_name;
    const char *parser;     /* logpipe.parser: the pod's parser hint (an aggregator parser name) */
    const char *meta_state; /* logpipe.metadata: "pending" while the pod is not known yet */
    /* Decoder only: the members above as the ECS event renders them (from
     * after log.offset up to logpipe's per-record members), made once per
     * batch instead of once per event; NULL: rendered per event. Not a
     * field (no row in lp_wire_source_fields). A copy that changes a member
     * must clear it. */
    const char *ecs;
    size_t ecs_len;
};

/* The workload kinds a pod's owner is named by (kubernetes.<kind>.name). */
#define LP_WIRE_OWNER_KINDS 6
extern const char *const lp_wire_owner_kinds[LP_WIRE_OWNER_KINDS];
/* 1 when k is one of lp_wire_owner_kinds. */
int lp_wire_owner_kind_known(const char *k);

/* The members of struct lp_wire_source, once: the one table the encoder,
 * the decoder, the ECS renderer and the aggregator's routing read (and
 * tests/unit/test_wire.c checks against lp_ecs_table). key is the member's
 * dotted path, which is the flat key of the batch's source line and the
 * nested path of the ECS event; rows sharing a prefix are adjacent (the
 * renderer nests them in this order). Adding a source field: a member
 * above, a row here (core/lp_wire.c), a row in lp_ecs_table, and whoever
 * fills it (shipper/tail.c). */
enum lp_wire_field_kind {
    LP_WF_STR,    /* const char *; NULL = absent */
    LP_WF_LABELS, /* const struct lp_kv * at off, its count (size_t) at aux */
    LP_WF_OWNER,  /* name at off, kind at aux: key "kubernetes.<kind>.name" */
};
struct lp_wire_field {
    const char *key;
    enum lp_wire_field_kind kind;
    size_t off, aux;
};
extern const struct lp_wire_field lp_wire_source_fields[];
extern const size_t lp_wire_n_source_fields;
/* The table's row for key (an LP_WF_STR or LP_WF_LABELS path), or NULL. */
const struct lp_wire_field *lp_wire_source_field(const char *key);

static inline const char *lp_wire_field_str(const struct lp_wire_source *s,
                                            const struct lp_wire_field *f)
{
    return *(const char *const *)(const void *)((const char *)s + f->off);
}
static inline const struct lp_kv *lp_wire_field_labels(const struct lp_wire_source *s,
                                                       const struct lp_wire_field *f, size_t *n)
{
    *n = *(const size_t *)(const void *)((const char *)s + f->aux);
    return *(const struct lp_kv *const *)(const void *)((const char *)s + f->off);
}

/* Labels as the wire and the ECS event carry them: at most
 * LP_WIRE_MAX_LABELS, keys of 1..LP_WIRE_MAX_LABEL_KEY bytes with '.'
 * replaced by '_' (a dotted key would be an object path to the index),
 * values of at most LP_WIRE_MAX_LABEL_VALUE bytes, the first of two keys
 * that normalise alike kept. lp_wire_labels_normalize applies that to
 * in[0..n) in place (the kept ones first, their count returned); keys are
 * rewritten in place, so they must be writable. */
#define LP_WIRE_MAX_LABELS 128
#define LP_WIRE_MAX_LABEL_KEY 253
#define LP_WIRE_MAX_LABEL_VALUE 4096
size_t lp_wire_labels_normalize(struct lp_kv *in, size_t n);

enum lp_wire_flag {
    LP_REC_TRUNCATED = 1u << 0,     /* cut at max_line_bytes */
    LP_REC_PARTIAL = 1u << 1,       /* rejoined from runtime partial chunks */
    LP_REC_UTF8_REPLACED = 1u << 2, /* invalid UTF-8 replaced by U+FFFD */
    LP_REC_MALFORMED = 1u << 3,     /* the runtime's line did not decode: kept raw */
};
#define LP_REC_FLAG_COUNT 4
/* Wire name of flag bit i ("truncated", "partial", "utf8_replaced", "malformed"). */
extern const char *const lp_wire_flag_names[LP_REC_FLAG_COUNT];

/* One line. message is not NUL-terminated on input (message_len counts);
 * decoded messages are NUL-terminated too but may contain NUL bytes. */
struct lp_wire_record {
    int64_t ts_ns;      /* @timestamp, ns since the epoch */
    const char *stream; /* "stdout" / "stderr" / NULL */
    uint64_t offset;    /* byte offset of the line start in the source */
    const char *message;
    size_t message_len;
    unsigned flags; /* lp_wire_flag */
    uint32_t lines; /* physical lines joined by multiline (0 or 1 = one) */
    /* Decoder only: the message as it stood in the batch, JSON-escaped
     * without the quotes, when that is exactly what lp_buf_append_json_string
     * writes for message (the shipper's own lines); NULL otherwise. Points
     * into the decoder's scratch buffer: valid until it is reused. Lets the
     * aggregator copy the message instead of escaping it again. */
    const char *message_json;
    size_t message_json_len;
};

/* Header values of a message, parsed or to be written. */
struct lp_wire_meta {
    int format; /* LP_WIRE_FORMAT */
    int batch;  /* 1: batch (x-ndjson), 0: per-record (json) */
    enum lp_codec encoding;
    uint32_t records;
};

/* Parses one header; unknown names are ignored. 0 or LP_EUNSUPP/LP_ECORRUPT
 * with the reason in why. Start from lp_wire_meta_init(). */
void lp_wire_meta_init(struct lp_wire_meta *m);
int lp_wire_meta_header(struct lp_wire_meta *m, const char *name, const void *value, size_t len,
                        char *why, size_t whylen);

/* Builds one batch. Owns its buffer; embed, lp_wire_encoder_init and
 * lp_wire_encoder_release. raw_limit caps the uncompressed NDJSON bytes. */
struct lp_wire_encoder {
    struct lp_buf ndjson;
    uint32_t records;
};
void lp_wire_encoder_init(struct lp_wire_encoder *e, size_t raw_limit);
void lp_wire_encoder_release(struct lp_wire_encoder *e);
/* Starts a batch for src (discarding any previous one). 0, LP_EINVAL (no
 * source id) or LP_ETOOBIG. */
int lp_wire_encoder_begin(struct lp_wire_encoder *e, const struct lp_wire_source *src);
/* Appends a record. LP_ETOOBIG leaves the batch as it was (flush, then
 * begin again and add this record). */
int lp_wire_encoder_add(struct lp_wire_encoder *e, const struct lp_wire_record *r);
static inline size_t lp_wire_encoder_raw_size(const struct lp_wire_encoder *e)
{
    return e->ndjson.len;
}
/* Compresses the batch into value (appended) and fills meta. The encoder
 * keeps its content until the next begin. */
int lp_wire_encoder_finish(struct lp_wire_encoder *e, struct lp_codec_ctx *ctx, enum lp_codec codec,
                           int level, struct lp_buf *value, struct lp_wire_meta *meta);

/* Writes the full ECS event of one record (the per-record message value and
 * the document the aggregator indexes): @timestamp, message, stream,
 * log.offset, log.file.path, host.name, container.*, kubernetes.*, event.id,
 * logpipe.source_id / format / flags / lines. */
int lp_wire_ecs_event(const struct lp_wire_source *src, const struct lp_wire_record *r,
                      struct lp_buf *out);
/* The same with what the aggregator adds without parsing the event: the
 * event id when already computed (NULL: computed here), event.ingested (an
 * RFC 3339 string or NULL) and extra top-level members (extra[0..extra_len):
 * `"k":v,...` without braces, rendered once) appended last. */
int lp_wire_ecs_event_ext(const struct lp_wire_source *src, const struct lp_wire_record *r,
                          const char *event_id, const char *ingested, const char *extra,
                          size_t extra_len, struct lp_buf *out);

/* A decoded message: strings and records in the caller's arena. */
struct lp_wire_batch {
    struct lp_wire_source src;
    struct lp_wire_record *recs;
    size_t n;
};

/* 1 (default): record lines of the encoder's own shape are decoded without
 * jansson; 0: every line goes through jansson (tests compare the two). */
extern int lp_wire_fast_decode;
/* Record lines that went through jansson (test hook: the encoder's own
 * lines never should). */
extern atomic_ulong lp_wire_slow_lines;

/* Decodes one message value given its header meta. Decompression stops at
 * cap bytes. scratch is a reusable work buffer. On error returns LP_ETOOBIG
 * (over cap, or arena limit), LP_ECORRUPT or LP_EUNSUPP and writes a
 * one-line reason into why (for the dead letter). */
int lp_wire_decode(const struct lp_wire_meta *meta, const void *value, size_t len, size_t cap,
                   struct lp_codec_ctx *ctx, struct lp_buf *scratch, struct lp_arena *arena,
                   struct lp_wire_batch *out, char *why, size_t whylen);

#endif
