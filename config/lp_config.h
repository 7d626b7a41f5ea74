/* logpipe configuration: YAML files → typed, validated structs.
 *
 * One file with sections kafka, shipper, aggregator, retention, metrics and
 * log; later files override earlier ones (maps deep-merge, scalars and lists
 * replace). ${VAR}, ${VAR:-default} and ${file:PATH} are substituted in
 * values. Durations are stored in milliseconds, sizes in bytes. Field tables
 * (lp_config_fields.c) drive parsing, defaults, validation, the effective
 * config dump and docs/config.md. The only module that includes yaml.h. */
#ifndef LP_CONFIG_H
#define LP_CONFIG_H

#include "lp_kv.h"

#include <stddef.h>
#include <stdint.h>

struct lp_buf;

struct lp_config_kafka {
    char *brokers;
    char *topic;
    char *client_id;
    int64_t max_message_bytes;
    int create_topics; /* the aggregator creates topic and dead-letter topic if missing */
    int64_t topic_partitions;
    int64_t topic_replication_factor;
    struct lp_kvlist properties; /* passed to librdkafka as is (TLS, SASL, ...) */
};

struct lp_config_multiline {
    char *mode; /* off | java | python | go | custom */
    char *start_pattern;
    char *continue_pattern;
    int64_t flush_timeout_ms;
    int64_t max_lines;
    int64_t max_bytes;
    int64_t match_limit;
    int64_t depth_limit;
};

struct lp_config_input {
    char **paths;
    size_t n_paths;
    char **exclude;
    size_t n_exclude;
    char *format;                         /* auto | docker | cri */
    char *encoding;                       /* "": UTF-8 (lp_charset.h) */
    struct lp_config_multiline multiline; /* used when has_multiline */
    int has_multiline;                    /* the input has its own multiline section */
};

/* Pod metadata from the Kubernetes API server (shipper.kubernetes). */
/* How to reach the API server, resolved from a kubeconfig file when
 * shipper.kubernetes.kubeconfig is set (NULL members: not given). */
struct lp_k8s_conn {
    char *server;
    char *token;      /* a static token, or */
    char *token_file; /* one read at every request */
    char *ca_file;
    char *ca_pem; /* certificate-authority-data, decoded */
    size_t ca_pem_len;
    char *cert_file, *key_file; /* client certificate */
    char *cert_pem, *key_pem;
    size_t cert_pem_len, key_pem_len;
    int insecure;  /* insecure-skip-tls-verify */
    char *context; /* the context used, for the logs */
};

void lp_k8s_conn_free(struct lp_k8s_conn *k);

struct lp_config_kubernetes {
    int enabled;
    char *kubeconfig;         /* a kubeconfig file instead of api_url/token_file/ca_file */
    char *context;            /* its context (empty: current-context) */
    struct lp_k8s_conn *conn; /* resolved from kubeconfig at load, or NULL */
    char *api_url;            /* empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT */
    char *token_file;         /* read at every connection (projected tokens rotate) */
    char *ca_file;
    char *node_name;    /* the pods of this node only (spec.nodeName) */
    char **annotations; /* allow-list: keys, or prefixes ending in '*' */
    size_t n_annotations;
    int64_t request_timeout_ms;
    int64_t watch_timeout_ms;
    int64_t retry_initial_ms;
    int64_t retry_max_ms;
    int64_t deleted_grace_ms;
    int64_t max_pods;
    int64_t first_list_wait_ms; /* files of pods wait this long for the first list */
    int64_t hint_cpu_ms;        /* per second and file, for a logpipe.io/multiline pattern */
    int cronjobs;               /* name a CronJob's pods by the CronJob (asks for their Job) */
};

struct lp_config_shipper {
    char *host_name;
    char *state_dir;
    struct lp_config_input *inputs;
    size_t n_inputs;
    char *read_from; /* head | tail */
    int64_t max_line_bytes;
    int64_t rescan_interval_ms;
    int64_t rotate_wait_ms;
    int64_t max_deleted_open_files;
    int64_t close_inactive_ms;
    int64_t max_open_files;
    int64_t checkpoint_interval_ms;
    int64_t checkpoint_expire_ms;
    int64_t batch_max_records;
    int64_t batch_max_bytes;
    int64_t batch_linger_ms;
    char *compression; /* zstd | gzip | none */
    int64_t compression_level;
    char *mode; /* batch | record */
    int64_t max_inflight_bytes;
    int64_t rate_limit_bytes_per_sec;
    struct lp_config_multiline multiline; /* inputs without their own */
    struct lp_config_kubernetes kubernetes;
};

/* The multiline rules of an input (index, or -1 for the default globs):
 * its own section, or shipper.multiline. */
const struct lp_config_multiline *lp_config_input_multiline(const struct lp_config_shipper *s,
                                                            int input_index);

/* One routing condition on the event field `field` (a dotted path): one of
 * equals / prefix / regex / exists, negated by `not`. */
struct lp_config_match {
    char *field;
    char *equals;
    char *prefix;
    char *regex;
    int exists;
    int negate; /* `not: true` */
};

/* A route's rate limit: at most events_per_second events of one key (the
 * `per` field's value) per second of the lines' own time. */
struct lp_config_rate_limit {
    int64_t events_per_second; /* 0: none */
    char *per;                 /* namespace | pod | container | source | route */
    int64_t max_keys;
};

#define LP_RATIO_ONE 1000000 /* LP_FT_RATIO values are millionths */

struct lp_config_route {
    char *name;
    struct lp_config_match *match; /* all must hold; none = every event */
    size_t n_match;
    char *parser;        /* name in aggregator.parsers, or NULL */
    char **hint_parsers; /* parsers a pod's logpipe.io/parser may pick here */
    size_t n_hint_parsers;
    char **outputs;
    size_t n_outputs;
    int drop;           /* the route's events go nowhere (counted) */
    int64_t sample_ppm; /* share kept, in millionths (LP_RATIO_ONE: all) */
    struct lp_config_rate_limit rate_limit;
};

/* One redaction rule: a built-in detector or a PCRE2 pattern, and what a
 * match becomes. */
struct lp_config_redact {
    char *name;
    char *detector; /* email | ipv4 | ipv6 | card | bearer | jwt | aws_key, or NULL */
    char *pattern;
    char *replacement; /* NULL: "[redacted:<name>]" */
    char **fields;     /* none: every content string */
    size_t n_fields;
};

struct lp_config_parser {
    char *name;
    char *kind; /* json | logfmt | regex | syslog | access */
    char *pattern;
    char *target;
    char *time_field;
    char *time_format;
    char **message_keys; /* none: the built-in list (LP_DEFAULT_MESSAGE_KEYS) */
    size_t n_message_keys;
    int keep_original;
    char *on_failure; /* keep | mark */
};

/* The keys a structured line's message is taken from when a parser names none. */
/* clang-format off */
#define LP_DEFAULT_MESSAGE_KEYS {"message", "msg", "@m", "log", "event"}
/* clang-format on */

/* What a log line's content may do to its event (aggregator.content). */
struct lp_config_content {
    char *kept_field;
    int64_t max_fields;
    int64_t max_depth;
    int64_t max_future_skew_ms;
    int64_t max_age_ms;
    int64_t regex_match_limit;
    int64_t regex_depth_limit;
    char **index_fields; /* content fields index names may use besides owned ones */
    size_t n_index_fields;
};

struct lp_config_enrich {
    struct lp_kvlist add_fields; /* field → static value */
    struct lp_kvlist env_fields; /* field → environment variable */
    struct lp_kvlist rename;     /* from → to */
    struct lp_kvlist copy;       /* from → to */
    char **remove;
    size_t n_remove;
    int normalize_level;
    int ingest_time;
};

/* The output types the config accepts: each has an implementation in the
 * outputs' registry (outputs/lp_output.c; test_config holds them equal). */
#define LP_CONFIG_OUTPUT_TYPES "elasticsearch|file|s3|stdout"
enum lp_output_kind {
    LP_OUTPUT_ES,
    LP_OUTPUT_FILE,
    LP_OUTPUT_S3,
    LP_OUTPUT_STDOUT,
    LP_OUTPUT_KINDS /* none: no or an unknown type */
};
/* The kinds' type names, in LP_CONFIG_OUTPUT_TYPES's order. */
extern const char *const lp_output_kind_name[LP_OUTPUT_KINDS];
struct lp_config_output;
enum lp_output_kind lp_config_output_kind(const struct lp_config_output *o);

struct lp_config_output {
    char *name;
    char *type; /* one of LP_CONFIG_OUTPUT_TYPES */
    /* elasticsearch */
    char *url;
    char *index;
    int data_stream;
    char *username;
    char *password;
    char *api_key;
    char *ca_file;
    int tls_verify;
    char *compression; /* gzip | none */
    int64_t max_inflight_requests;
    int64_t bulk_max_bytes;
    int64_t bulk_max_actions;
    int64_t flush_interval_ms;
    int64_t request_timeout_ms;
    int64_t retry_initial_ms;
    int64_t retry_max_ms;
    int install_template;
    char *template_name;
    char *labels_mapping;  /* auto | object */
    char *dynamic_scalars; /* keyword | native */
    int64_t field_budget;  /* 0 = off */
    /* file */
    char *path;
    int64_t max_segment_bytes;
    int64_t max_segment_age_ms;
    /* s3 (also ca_file, tls_verify, request_timeout, retry_*,
     * max_inflight_requests) */
    char *bucket;
    char *endpoint;
    char *region;
    char *prefix;
    int path_style;
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
    char *storage_class;
    char *object_compression; /* zstd | gzip | none */
    int64_t max_object_bytes;
    int64_t max_object_records;
    int64_t max_object_age_ms;
    int64_t part_size;
};

struct lp_config_default_route {
    char *parser;
    char **hint_parsers;
    size_t n_hint_parsers;
    char **outputs;
    size_t n_outputs;
};

struct lp_config_aggregator {
    char *group_id;
    int64_t workers;
    int64_t max_decompressed_bytes;
    int64_t max_pending_bytes;
    int64_t commit_interval_ms;
    int64_t drain_timeout_ms;
    char *dead_letter_dir;
    char *dead_letter_topic;
    struct lp_config_parser *parsers;
    size_t n_parsers;
    struct lp_config_route *routes;
    size_t n_routes;
    struct lp_config_default_route default_route;
    struct lp_config_enrich enrich;
    struct lp_config_content content;
    struct lp_config_redact *redact;
    size_t n_redact;
    struct lp_config_output *outputs; /* none: one file output "files" (see docs) */
    size_t n_outputs;
};

/* One retention policy over the file output's segments (and their
 * archives). Durations/sizes of 0 mean "not set". */
struct lp_config_retention_policy {
    char *name;
    char *output;  /* an aggregator file output: its path is the root */
    char *path;    /* or the root directory itself */
    char **routes; /* first directory level under the root; none = all */
    size_t n_routes;
    char *glob; /* fnmatch pattern on the path under the root ('*' crosses '/') */
    int64_t archive_after_ms;
    char *archive_codec;         /* zstd | gzip */
    int64_t archive_level;       /* 0 = the codec's default */
    char *archive_root;          /* NULL: next to the segment */
    char *archive_prefix;        /* s3: where archived objects move (NULL: they stay) */
    char *archive_bucket;        /* s3: NULL: the output's bucket */
    char *archive_storage_class; /* s3: NULL: the bucket's default */
    int64_t delete_after_ms;
    int64_t max_total_bytes;
    int64_t min_free_bytes;
    int prune_unarchived; /* max_total_bytes may delete segments not archived yet */
};

/* Index retention on an Elasticsearch/OpenSearch cluster. */
struct lp_config_index_policy {
    char *name;
    char *url;
    char *username;
    char *password;
    char *api_key;
    char *ca_file;
    int tls_verify;
    char *index_pattern;
    int64_t delete_after_ms;
    char *date_from; /* auto | name | creation */
    int64_t request_timeout_ms;
};

struct lp_config_retention {
    int64_t interval_ms;
    char *audit_log;
    int verify_before_delete;
    struct lp_config_retention_policy *policies; /* none: see docs (per file output) */
    size_t n_policies;
    struct lp_config_index_policy *elasticsearch;
    size_t n_elasticsearch;
};

struct lp_config_metrics {
    int enabled;
    char *listen;
    int64_t max_namespaces; /* per-namespace series (lp_tenants.h); 0: off */
};

struct lp_config_log {
    char *level;  /* error | warn | info | debug */
    char *format; /* logfmt | json */
};

struct lp_config {
    struct lp_config_kafka kafka;
    struct lp_config_shipper shipper;
    struct lp_config_aggregator aggregator;
    struct lp_config_retention retention;
    struct lp_config_metrics metrics;
    struct lp_config_log log;
};

/* Where the default file output (no aggregator.outputs) writes. */
#define LP_DEFAULT_SEGMENTS_DIR "/var/lib/logpipe/segments"

/* The root directory of a retention policy: its path, or the path of the
 * aggregator file output it names (NULL when that does not resolve). */
const char *lp_config_policy_root(const struct lp_config *c,
                                  const struct lp_config_retention_policy *p);

/* The s3 output a retention policy covers (bucket retention), or NULL. */
const struct lp_config_output *lp_config_policy_bucket(const struct lp_config *c,
                                                       const struct lp_config_retention_policy *p);

/* Environment lookup for substitution; NULL means getenv. */
typedef const char *(*lp_config_getenv_fn)(const char *name);

/* Loads files[0..n) in order (n == 0: embedded defaults only). Returns a
 * new config (free with lp_config_free), or NULL with every problem found
 * appended to errs as "FILE:LINE:COL: message" lines. */
struct lp_config *lp_config_load(const char *const *files, size_t n, lp_config_getenv_fn env,
                                 struct lp_buf *errs);
/* Same from in-memory YAML texts named names[i] (tests, fuzzing). */
struct lp_config *lp_config_load_texts(const char *const *names, const char *const *texts, size_t n,
                                       lp_config_getenv_fn env, struct lp_buf *errs);
void lp_config_free(struct lp_config *c);

/* Appends the effective configuration as YAML. With redact, secrets (keys
 * named password/secret/token/key or ending so, and every sasl.* property)
 * are printed as "<redacted>". section limits the dump to one section
 * (NULL: all). */
int lp_config_dump(const struct lp_config *c, const char *section, int redact, struct lp_buf *out);
/* Appends one line per setting that works but exposes a credential:
 * a kubeconfig with insecure-skip-tls-verify, a plain-HTTP API server (the
 * bearer token in clear), an elasticsearch output with a password or API
 * key over http://. Returns how many. --check-config prints them. */
size_t lp_config_warnings(const struct lp_config *c, struct lp_buf *out);
/* Appends the Markdown reference of every key (docs/config.md). */
int lp_config_reference(struct lp_buf *out);
/* 1 when a key name must be redacted. */
int lp_config_key_is_secret(const char *key);

/* Parsers shared with other modules: "250ms", "5s", "1h", "30d" → ms and
 * "64KiB", "5MiB", "1GB", "512" → bytes. 0 or LP_EINVAL. */
int lp_parse_duration_ms(const char *s, int64_t *ms);
int lp_parse_size(const char *s, int64_t *bytes);

#endif
