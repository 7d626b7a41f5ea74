/* A small client of the S3 API over libcurl: what the object-storage
 * output, bucket retention and replay need (put, multipart put, get,
 * delete, list), for AWS S3 and the S3-compatible stores (MinIO, Ceph RGW,
 * SeaweedFS, GCS interop, R2, S3Proxy).
 *
 * The rules, in one place:
 * - requests are signed with AWS Signature V4 by libcurl
 *   (CURLOPT_AWS_SIGV4); the payload's SHA-256 is sent and signed
 *   (x-amz-content-sha256) and every body also carries Content-MD5, so the
 *   store refuses a body that changed on the way: a 200 means the object
 *   holds exactly the bytes hashed here;
 * - query strings are built sorted and percent-encoded (libcurl 7.88 signs
 *   them as given);
 * - virtual-hosted addressing (https://<bucket>.<host>/<key>) unless
 *   path_style (https://<host>/<bucket>/<key>, what most self-hosted stores
 *   want); the endpoint defaults to https://s3.<region>.amazonaws.com;
 * - only http and https; TLS verified unless tls_verify is 0; requests
 *   bounded by timeout_ms (connection by the smaller of it and 10 s);
 * - credentials are never logged nor put in an error text.
 *
 * A struct lp_s3 is immutable after lp_s3_init: threads share it. A
 * struct lp_s3_client (one easy handle, its connection kept alive) is one
 * thread's. */
#ifndef LP_S3_H
#define LP_S3_H

#include "lp_buf.h"

#include <stddef.h>
#include <stdint.h>

struct lp_s3_cfg {
    const char *endpoint; /* NULL or "": AWS for the region */
    const char *region;   /* NULL or "": us-east-1 */
    const char *bucket;
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL or "": none */
    const char *storage_class; /* NULL or "": the bucket's default */
    const char *ca_file;
    int tls_verify;
    int path_style;
    int64_t timeout_ms;
    size_t part_bytes; /* multipart above this size (>= 5 MiB) */
};

struct lp_s3 {
    char *base; /* scheme://host[:port] without '/' (virtual-hosted: bucket. prepended) */
    char *bucket;
    char *sigv4; /* "aws:amz:<region>:s3" */
    char *userpwd;
    char *token_header;
    char *class_header;
    char *ca_file;
    int tls_verify;
    int path_style;
    long timeout_ms;
    size_t part_bytes;
};

/* The result of one call: status is the last HTTP status (0: no answer),
 * code the store's error code (<Code> of its error document) or a
 * transport error, retryable whether trying again may help (no answer,
 * timeouts, 5xx, 503 SlowDown, 429, 408). */
struct lp_s3_result {
    long status;
    int retryable;
    char code[64];
    char message[192];
};

struct lp_s3_client {
    const struct lp_s3 *s;
    void *curl;
    struct lp_buf body; /* the last answer's body */
};

/* 0, or LP_EINVAL with err set (no bucket, a bad endpoint). */
int lp_s3_init(struct lp_s3 *s, const struct lp_s3_cfg *cfg, char *err, size_t errlen);
void lp_s3_release(struct lp_s3 *s);

void lp_s3_client_init(struct lp_s3_client *c, const struct lp_s3 *s);
void lp_s3_client_release(struct lp_s3_client *c);

/* Every call: 0 on success, a negative LP_E* code otherwise with r filled
 * (r may be NULL). */

/* Writes data as key (one PUT, or a multipart upload above part_bytes;
 * a failed multipart upload is aborted). content_encoding may be NULL. */
int lp_s3_put(struct lp_s3_client *c, const char *key, const void *data, size_t len,
              const char *content_type, const char *content_encoding, struct lp_s3_result *r);
/* Reads key into out (replaced). A missing key: LP_ENOENT (status 404). */
int lp_s3_get(struct lp_s3_client *c, const char *key, struct lp_buf *out, struct lp_s3_result *r);
/* Deletes key (a missing key is success, as S3 answers). */
int lp_s3_delete(struct lp_s3_client *c, const char *key, struct lp_s3_result *r);

/* The size of key (HEAD) in *size. A missing key: LP_ENOENT. */
int lp_s3_head(struct lp_s3_client *c, const char *key, int64_t *size, struct lp_s3_result *r);
/* Copies src_bucket/src_key (src_bucket NULL: this bucket) to key in this
 * bucket on the store's side (CopyObject, objects up to 5 GiB), metadata
 * kept; with storage_class (NULL: the client's) the copy is of that class —
 * key == src_key then changes an object's class in place. */
int lp_s3_copy(struct lp_s3_client *c, const char *src_bucket, const char *src_key, const char *key,
               const char *storage_class, struct lp_s3_result *r);
/* Deletes keys[0..n) (n <= LP_S3_DELETE_MAX) in one DeleteObjects request.
 * 0 when every key is gone; keys the store refused are passed to failed
 * (may be NULL) and the call returns LP_EHTTP with code "PartialDelete". */
#define LP_S3_DELETE_MAX 1000
int lp_s3_delete_many(struct lp_s3_client *c, const char *const *keys, size_t n,
                      void (*failed)(const char *key, const char *code, const char *message,
                                     void *arg),
                      void *arg, struct lp_s3_result *r);

/* One listed object. */
struct lp_s3_object {
    const char *key;
    int64_t size;
    const char *last_modified; /* ISO 8601, as the store gives it */
    const char *storage_class; /* "STANDARD" when the store does not say */
    const char *etag;          /* "" when the store does not say */
};
/* Calls fn for every key under prefix, in the store's (lexicographic)
 * order, after start_after (NULL: from the start), page by page. fn
 * returns 0 to go on, non-zero to stop (then lp_s3_list returns 0). With
 * fn NULL, only asks for the first page (can we list the bucket?). */
int lp_s3_list(struct lp_s3_client *c, const char *prefix, const char *start_after,
               int (*fn)(const struct lp_s3_object *o, void *arg), void *arg,
               struct lp_s3_result *r);

/* Calls fn for every "directory" one level under prefix (the common
 * prefixes up to the next '/', each ending in '/'). As lp_s3_list. */
int lp_s3_list_dirs(struct lp_s3_client *c, const char *prefix,
                    int (*fn)(const char *dir, void *arg), void *arg, struct lp_s3_result *r);

/* Exposed for tests and the fuzz target: the text of the first <tag> in
 * the XML at xml[0..n) from *pos on, entities decoded, into out; *pos moves
 * past it. 1 found, 0 not found. */
int lp_s3_xml_next(const char *xml, size_t n, size_t *pos, const char *tag, struct lp_buf *out);

/* A key prefix as keys start with it: "" or "<p>/", without leading or
 * doubled trailing slashes (heap; NULL reads as ""). */
char *lp_s3_norm_prefix(const char *p);

/* The key with every byte but A-Za-z0-9-._~/ percent-encoded (S3's URI
 * encoding of a key), appended to b. */
void lp_s3_encode_key(struct lp_buf *b, const char *key, int keep_slash);

/* The client settings of an s3 output (aggregator.outputs, shared with
 * logpipe-replay and retention, which read its bucket by its name): its
 * keys, or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
 * from the environment when access_key_id is unset. Pointers borrow from o
 * and the environment. */
struct lp_config_output;
void lp_s3_output_cfg(const struct lp_config_output *o, struct lp_s3_cfg *c);
/* The output's key prefix as keys start with it: "" or "<prefix>/" without
 * leading or doubled slashes (heap; the caller frees it). */
char *lp_s3_output_prefix(const struct lp_config_output *o);

#endif
