/* The configuration schema: every key, its type, default, range and
 * documentation. Adding a key here adds it to parsing, validation,
 * --check-config output and docs/config.md (regenerate with
 * `cmake --build build --target config-doc`). */
#include "lp_config.h"
#include "lp_fields.h"

#define OFF(type, member) offsetof(struct type, member)
/* clang-format off */
#define END {NULL, 0, 0, NULL, 0, 0, NULL, 0, NULL, 0, 0, NULL}
/* clang-format on */
#define DAY (86400LL * 1000)
/* clang-format off */
#define STR(s, m, d, doc) {#m, LP_FT_STRING, OFF(s, m), d, 0, 0, NULL, 0, NULL, 0, 0, doc}
#define ENUM(s, m, d, ch, doc) {#m, LP_FT_ENUM, OFF(s, m), d, 0, 0, ch, 0, NULL, 0, 0, doc}
#define INT(s, m, d, lo, hi, doc) {#m, LP_FT_INT, OFF(s, m), d, lo, hi, NULL, 0, NULL, 0, 0, doc}
#define DUR(s, m, d, lo, hi, doc) \
    {#m, LP_FT_DURATION, OFF(s, m##_ms), d, lo, hi, NULL, 0, NULL, 0, 0, doc}
#define SIZE(s, m, d, lo, hi, doc) {#m, LP_FT_SIZE, OFF(s, m), d, lo, hi, NULL, 0, NULL, 0, 0, doc}
#define BOOL(s, m, d, doc) {#m, LP_FT_BOOL, OFF(s, m), d, 0, 1, NULL, 0, NULL, 0, 0, doc}
#define STRLIST(s, m, d, doc) \
    {#m, LP_FT_STRLIST, OFF(s, m), d, 0, 0, NULL, 0, NULL, 0, OFF(s, n_##m), doc}
/* clang-format on */

static const struct lp_field kafka_fields[] = {
    STR(lp_config_kafka, brokers, "127.0.0.1:9092",
        "Bootstrap brokers, comma-separated host:port."),
    STR(lp_config_kafka, topic, "logpipe.logs", "Topic that carries log batches."),
    STR(lp_config_kafka, client_id, "logpipe", "Client id reported to the brokers."),
    SIZE(lp_config_kafka, max_message_bytes, "1MiB", 1024, 256LL << 20,
         "Largest message produced; must not exceed the topic's max.message.bytes. A batch "
         "is closed before its compressed size would pass it."),
    BOOL(lp_config_kafka, create_topics, "false",
         "The aggregator creates the topic and aggregator.dead_letter_topic when they are "
         "missing, through the Kafka admin API, before it subscribes (its user needs CREATE). "
         "An existing topic is left as it is; a refusal is logged and the aggregator goes on."),
    INT(lp_config_kafka, topic_partitions, "12", 1, 10000,
        "create_topics: partitions of a created topic (the most aggregators that share the "
        "work; the dead-letter topic gets 1)."),
    INT(lp_config_kafka, topic_replication_factor, "3", 1, 32,
        "create_topics: replication factor of created topics (at most the brokers)."),
    {"properties", LP_FT_MAP, OFF(lp_config_kafka, properties), NULL, 0, 0, NULL, 0, NULL, 0, 0,
     "librdkafka settings passed through as is (security.protocol, ssl.*, sasl.*, ...). "
     "sasl.* values are redacted in --check-config output."},
    END,
};

static const struct lp_field multiline_fields[] = {
    ENUM(lp_config_multiline, mode, "off", "off|java|python|go|custom",
         "Joins stack traces into one event after partial-line reassembly: built-in rules "
         "for java, python and go, or custom patterns."),
    STR(lp_config_multiline, start_pattern, NULL,
        "custom: PCRE2 pattern matching the first line of an event."),
    STR(lp_config_multiline, continue_pattern, NULL,
        "custom: PCRE2 pattern matching continuation lines."),
    DUR(lp_config_multiline, flush_timeout, "2s", 10, 600000,
        "An event with no further line for this long is complete."),
    INT(lp_config_multiline, max_lines, "500", 1, 100000, "Most lines joined into one event."),
    INT(lp_config_multiline, match_limit, "100000", 1000, 100000000,
        "PCRE2 match limit of the custom patterns (backtracking steps per line): a line that "
        "costs more counts as not matching, and is counted."),
    INT(lp_config_multiline, depth_limit, "10000", 100, 10000000,
        "PCRE2 depth limit of the custom patterns (nested backtracking per line)."),
    SIZE(lp_config_multiline, max_bytes, "1MiB", 1024, 64LL << 20,
         "Most bytes joined into one event."),
    END,
};

static const struct lp_field input_fields[] = {
    STRLIST(lp_config_input, paths, NULL, "Glob patterns of files to tail."),
    STRLIST(lp_config_input, exclude, NULL, "Glob patterns of files to skip."),
    ENUM(lp_config_input, format, "auto", "auto|docker|cri|raw",
         "Container log format; auto detects it per file from the first whole line read."),
    STR(lp_config_input, encoding, "",
        "The encoding the application writes its lines in, converted to UTF-8 (glibc's "
        "iconv names: GBK, GB18030, BIG5, SHIFT_JIS, EUC-KR, WINDOWS-1250 to WINDOWS-1258, "
        "KOI8-R, CP866, ...); a byte sequence the encoding does not have becomes U+FFFD and "
        "flags the event utf8_replaced. Empty: UTF-8. For raw and CRI files: Docker's "
        "json-file has already replaced what was not UTF-8. UTF-16 and UTF-32 are refused "
        "(a file in them cannot be split into lines byte by byte)."),
    {"multiline", LP_FT_SECTION, OFF(lp_config_input, multiline), NULL, 0, 0, NULL, LP_F_PRESENCE,
     multiline_fields, 0, OFF(lp_config_input, has_multiline),
     "Multiline rules of this input's files, replacing shipper.multiline for them (unset: "
     "shipper.multiline applies). A key not set here takes the default listed below, not "
     "shipper.multiline's."},
    END,
};

static const struct lp_field kubernetes_fields[] = {
    BOOL(lp_config_kubernetes, enabled, "false",
         "Enrich every source with its pod's labels, allowed annotations, owner workload, node, "
         "pod IP and container image from the API server (a list+watch cache of this node's "
         "pods), and read the logpipe.io/* annotation hints."),
    STR(lp_config_kubernetes, kubeconfig, NULL,
        "A kubeconfig file (outside a cluster): its context's server, certificate authority "
        "(file or -data), and token, tokenFile or client certificate replace api_url, "
        "token_file and ca_file. Relative paths are the file's directory's. exec and "
        "auth-provider credentials are refused. Read at start."),
    STR(lp_config_kubernetes, context, NULL,
        "The kubeconfig context to use; empty: its current-context."),
    STR(lp_config_kubernetes, api_url, NULL,
        "The API server; empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (in "
        "a pod)."),
    STR(lp_config_kubernetes, token_file, "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "Bearer token, read at every connection (projected tokens rotate); empty: none."),
    STR(lp_config_kubernetes, ca_file, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        "CA bundle of the API server's certificate."),
    STR(lp_config_kubernetes, node_name, NULL,
        "This node's name (set it from the downward API as ${NODE_NAME}); only its pods are "
        "watched. Required when enabled."),
    STRLIST(lp_config_kubernetes, annotations, NULL,
            "Annotations copied to kubernetes.annotations: keys, or prefixes ending in '*' "
            "(e.g. \"team.example.com/*\"). Empty: none (the logpipe.io/* hints are read "
            "either way)."),
    DUR(lp_config_kubernetes, request_timeout, "30s", 1000, 600000,
        "Timeout of a list request (and of connecting)."),
    DUR(lp_config_kubernetes, watch_timeout, "5m", 1000, 3600000,
        "A watch is ended and resumed (from its resourceVersion) after this long."),
    DUR(lp_config_kubernetes, retry_initial, "1s", 10, 600000,
        "First retry delay after a failed request; doubles, with jitter. The cache stays "
        "meanwhile (logpipe_shipper_k8s_cache_age_seconds grows)."),
    DUR(lp_config_kubernetes, retry_max, "60s", 10, 3600000, "Longest retry delay."),
    DUR(lp_config_kubernetes, deleted_grace, "10m", 0, 86400000,
        "A deleted pod's metadata is kept this long, for the lines read after its deletion "
        "(less when the cache is at max_pods: the pod deleted longest ago makes room)."),
    DUR(lp_config_kubernetes, first_list_wait, "60s", 0, 3600000,
        "At start, files that name a pod are not read until the first pod list completed, "
        "for at most this long: the backlog ships with its pod's labels, owner and hints, "
        "and logpipe.io/exclude is honoured for it. Past it (the API server unreachable) "
        "they ship flagged pending. 0: do not wait."),
    DUR(lp_config_kubernetes, hint_cpu, "20ms", 1, 1000,
        "CPU time one file may spend per second matching its pod's logpipe.io/multiline "
        "pattern (averaged over 10 s: bursts of up to ten times it pass). Past it the file's "
        "lines use the input's own multiline rules for a minute (counted, logged), so one "
        "tenant's costly pattern cannot take the shipper's CPU from the node's other pods."),
    INT(lp_config_kubernetes, max_pods, "5000", 1, 1000000,
        "Most pods cached (a node runs at most a few hundred); deleted pods are dropped first "
        "when it is reached, a live pod never."),
    BOOL(lp_config_kubernetes, cronjobs, "true",
         "Name the pods of a Job that a CronJob made by the CronJob (kubernetes.cronjob.name): "
         "the Job is asked for once (RBAC: get on batch jobs). Off: they are named by the "
         "Job."),
    END,
};

static const struct lp_field shipper_fields[] = {
    STR(lp_config_shipper, host_name, NULL,
        "host.name of every event; empty means the node's hostname (set it from the "
        "Kubernetes downward API as ${NODE_NAME})."),
    STR(lp_config_shipper, state_dir, "/var/lib/logpipe",
        "Directory for checkpoints; must survive restarts (a hostPath on Kubernetes)."),
    {"inputs", LP_FT_LIST, OFF(lp_config_shipper, inputs), NULL, 0, 0, NULL, 0, input_fields,
     sizeof(struct lp_config_input), OFF(lp_config_shipper, n_inputs),
     "Files to tail. Empty means the defaults: /var/log/containers/*.log, "
     "/var/log/pods/*/*/*.log and /var/lib/docker/containers/*/*-json.log, format auto."},
    ENUM(lp_config_shipper, read_from, "head", "head|tail",
         "Where to start in a file first seen at start-up with no checkpoint."),
    SIZE(lp_config_shipper, max_line_bytes, "256KiB", 1024, 64LL << 20,
         "Longer lines are truncated and flagged, never dropped."),
    DUR(lp_config_shipper, rescan_interval, "10s", 100, DAY,
        "Periodic glob rescan and stat poll, for events inotify misses."),
    DUR(lp_config_shipper, rotate_wait, "30s", 0, DAY,
        "A rotated file is closed after this long without growth, once read to its end."),
    INT(lp_config_shipper, max_deleted_open_files, "64", 1, 100000,
        "Deleted-but-unread files kept open; beyond it the oldest are drained first."),
    DUR(lp_config_shipper, close_inactive, "5m", 0, DAY,
        "A file read to its end and acknowledged that has not grown for this long is closed "
        "(its position stays in the checkpoints) and opened again when it grows: a node with "
        "many quiet containers holds few descriptors. 0 keeps every file open."),
    INT(lp_config_shipper, max_open_files, "0", 0, 10000000,
        "Most files open at once; beyond it the longest-idle acknowledged files are closed "
        "early, and new files wait for a descriptor (logpipe_shipper_files_waiting). 0 means "
        "the open-file limit (raised to the hard limit at start) minus 256 for sockets."),
    DUR(lp_config_shipper, checkpoint_interval, "1s", 10, 3600000,
        "How often delivered offsets are saved."),
    DUR(lp_config_shipper, checkpoint_expire, "7d", 60000, 3650 * DAY,
        "Checkpoints of files not seen for this long are forgotten."),
    INT(lp_config_shipper, batch_max_records, "2000", 1, 1000000, "Most lines in one batch."),
    SIZE(lp_config_shipper, batch_max_bytes, "256KiB", 1024, 256LL << 20,
         "Most uncompressed bytes in one batch."),
    DUR(lp_config_shipper, batch_linger, "200ms", 0, 60000,
        "How long a batch waits for more lines before it is sent."),
    ENUM(lp_config_shipper, compression, "zstd", "zstd|gzip|none", "Batch compression."),
    INT(lp_config_shipper, compression_level, "3", 0, 19,
        "Codec level (zstd 1-19, gzip 1-9, 0 = the codec's default)."),
    ENUM(lp_config_shipper, mode, "batch", "batch|record",
         "batch: the wire format's compressed NDJSON batches; record: one ECS event per "
         "message (compression by librdkafka) for consumers that cannot decode batches."),
    SIZE(lp_config_shipper, max_inflight_bytes, "8MiB", 1 << 20, 8LL << 30,
         "Bytes produced but not yet acknowledged; beyond it reading pauses (backpressure)."),
    SIZE(lp_config_shipper, rate_limit_bytes_per_sec, "0", 0, 1LL << 40,
         "Per-container read rate limit (0 = none); slows reading, never drops."),
    {"multiline", LP_FT_SECTION, OFF(lp_config_shipper, multiline), NULL, 0, 0, NULL, 0,
     multiline_fields, 0, 0, "Multiline joining (per stream)."},
    {"kubernetes", LP_FT_SECTION, OFF(lp_config_shipper, kubernetes), NULL, 0, 0, NULL, 0,
     kubernetes_fields, 0, 0,
     "Pod metadata from the API server (docs/shipper.md \"Kubernetes metadata\")."},
    END,
};

static const struct lp_field match_fields[] = {
    STR(lp_config_match, field, NULL, "Event field (dotted path, e.g. kubernetes.namespace)."),
    STR(lp_config_match, equals, NULL, "The field's value equals this string."),
    STR(lp_config_match, prefix, NULL, "The field's value starts with this string."),
    STR(lp_config_match, regex, NULL, "The field's value matches this PCRE2 pattern."),
    BOOL(lp_config_match, exists, "false", "The field is present (with any value)."),
    {"not", LP_FT_BOOL, OFF(lp_config_match, negate), "false", 0, 1, NULL, 0, NULL, 0, 0,
     "Negates the condition."},
    END,
};

static const struct lp_field rate_limit_fields[] = {
    INT(lp_config_rate_limit, events_per_second, "0", 0, 1000000000,
        "Most events kept per key and second of the lines' own time (the runtime's time of "
        "the line, not the aggregator's clock: catching up on a backlog is not limited); 0: "
        "no limit."),
    ENUM(lp_config_rate_limit, per, "namespace", "namespace|pod|container|source|route",
         "The key: kubernetes.namespace, the pod (namespace/name), the container "
         "(container.id), the source (logpipe.source_id) or the whole route. A source without "
         "the field (no Kubernetes path) counts under its source."),
    INT(lp_config_rate_limit, max_keys, "10000", 1, 10000000,
        "Most keys tracked; past it the keys idle longest are forgotten."),
    END,
};

static const struct lp_field route_fields[] = {
    STR(lp_config_route, name, NULL, "Route name: used in metrics and in file output paths."),
    {"match", LP_FT_LIST, OFF(lp_config_route, match), NULL, 0, 0, NULL, 0, match_fields,
     sizeof(struct lp_config_match), OFF(lp_config_route, n_match),
     "Conditions that must all hold (none: every event). Exactly one of equals, prefix, "
     "regex, exists per condition."},
    STR(lp_config_route, parser, NULL, "Parser (a name in aggregator.parsers) for the message."),
    STRLIST(lp_config_route, hint_parsers, NULL,
            "Parsers (names in aggregator.parsers) a pod's logpipe.io/parser hint may select "
            "for this route's events when the route names no parser. Empty (the default): "
            "hints are not followed here (counted in "
            "logpipe_aggregator_parser_hint_refused_total) -- a tenant must not pick a parser "
            "that moves @timestamp into another day's index."),
    STRLIST(lp_config_route, outputs, NULL,
            "Outputs (names in aggregator.outputs); none with drop."),
    BOOL(lp_config_route, drop, "false",
         "The route's events go to no output: dropped and counted "
         "(logpipe_aggregator_dropped_total{reason=\"route\"}), their offsets committed. "
         "A route that drops has no outputs."),
    {"sample", LP_FT_RATIO, OFF(lp_config_route, sample_ppm), "1", 0, LP_RATIO_ONE, NULL, 0, NULL,
     0, 0,
     "Share of the route's events kept (0.1 or 10%), decided by the event id: a replay "
     "keeps exactly the events the first pass kept. The others are dropped and counted "
     "(reason=\"sample\")."},
    {"rate_limit", LP_FT_SECTION, OFF(lp_config_route, rate_limit), NULL, 0, 0, NULL, 0,
     rate_limit_fields, 0, 0,
     "Drops (and counts, reason=\"rate_limit\") what one key sends over a rate, instead of "
     "slowing the partition: an admin's explicit choice (the shipper keeps backpressure)."},
    END,
};

static const struct lp_field parser_fields[] = {
    STR(lp_config_parser, name, NULL, "Parser name, referenced by routes."),
    ENUM(lp_config_parser, kind, "json", "json|logfmt|regex|syslog|access",
         "json: a JSON object message; logfmt: key=value pairs; regex: PCRE2 named groups "
         "(\"__\" in a group name stands for \".\"); syslog: RFC 5424 / 3164; access: "
         "common/combined access logs (nginx, apache)."),
    STR(lp_config_parser, pattern, NULL, "regex: the PCRE2 pattern."),
    STR(lp_config_parser, target, NULL,
        "json/logfmt: put the fields under this key instead of merging them into the event."),
    STR(lp_config_parser, time_field, NULL,
        "Field holding the event time, moved to @timestamp (default: the kind's own)."),
    STR(lp_config_parser, time_format, NULL,
        "rfc3339, epoch_s, epoch_ms, epoch_ns or a strptime-style format such as "
        "%d/%b/%Y:%H:%M:%S %z."),
    STRLIST(lp_config_parser, message_keys, NULL,
            "json/logfmt/regex/syslog: the first of these keys holding a string becomes the "
            "event's message (and leaves the fields). Empty: message, msg, @m, log, event. A "
            "line with none of them keeps the raw line as its message."),
    BOOL(lp_config_parser, keep_original, "false",
         "Keep the raw line in event.original (stored, not indexed) when it parsed."),
    ENUM(lp_config_parser, on_failure, "keep", "keep|mark",
         "A line the parser cannot read (plain text on a json route): keep it as a plain "
         "event, or mark it with error.message and event.original. Counted either way."),
    END,
};

static const struct lp_field content_fields[] = {
    STR(lp_config_content, kept_field, "logpipe.kept",
        "Where values a line cannot put where it wants are kept (an owned field, a type "
        "the index template maps differently, over a cap, a mapping conflict, a time out of "
        "bounds): a list of {field, value, reason}, values as strings. Must be under logpipe."),
    INT(lp_config_content, max_fields, "1000", 1, 100000,
        "Most fields one line's content adds; the rest is kept as strings."),
    INT(lp_config_content, max_depth, "20", 1, 100,
        "Deepest object nesting one line's content adds; deeper values are kept as strings."),
    DUR(lp_config_content, max_future_skew, "1d", 0, 3650 * DAY,
        "A time_field value further than this ahead of the runtime's time of the line is "
        "refused: @timestamp stays the runtime's, the value is kept."),
    DUR(lp_config_content, max_age, "7d", 0, 36500 * DAY,
        "A time_field value older than this before the runtime's time of the line is refused "
        "the same way (0: no limit)."),
    INT(lp_config_content, regex_match_limit, "100000", 1000, 100000000,
        "PCRE2 match limit of regex parsers and route conditions (backtracking steps per "
        "line): a line that costs more is kept unparsed (or does not match), and is counted."),
    INT(lp_config_content, regex_depth_limit, "10000", 100, 10000000,
        "PCRE2 depth limit of regex parsers and route conditions (nested backtracking per "
        "line)."),
    STRLIST(lp_config_content, index_fields, NULL,
            "Content fields an elasticsearch index name may use as {field}; owned fields "
            "(kubernetes.*, container.*, host.name, stream, ...) are always allowed."),
    END,
};

static const struct lp_field redact_fields[] = {
    STR(lp_config_redact, name, NULL, "Rule name: metrics label and default replacement."),
    ENUM(lp_config_redact, detector, NULL, "email|ipv4|ipv6|card|bearer|jwt|aws_key",
         "A built-in detector: e-mail addresses, IPv4 and IPv6 addresses (validated), payment "
         "card numbers (13-19 digits, spaces or dashes between, Luhn check), bearer tokens "
         "(\"Bearer <token>\"), JSON Web Tokens, AWS access key ids. Give detector or "
         "pattern."),
    {"pattern", LP_FT_STRING, OFF(lp_config_redact, pattern), NULL, 0, 0, NULL, LP_F_SECRET, NULL,
     0, 0,
     "A PCRE2 pattern; every match is replaced. The replacement may use its groups: $1, "
     "and $${1} or $${name} (the configuration substitutes ${...}, so those braces are "
     "written $${). Printed as <redacted> by --check-config: a pattern often spells the "
     "secret it removes."},
    STR(lp_config_redact, replacement, NULL, "What a match becomes; empty: [redacted:NAME]."),
    STRLIST(lp_config_redact, fields, NULL,
            "Event fields (dotted paths; an object: every string in it) the rule applies "
            "to. Empty: every string the line's content made (message, event.original, "
            "parsed fields, kept values, error.message, and their keys), never the "
            "pipeline's own (@timestamp, host, container, kubernetes, log.file, logpipe "
            "ids)."),
    END,
};

/* clang-format off */
#define MAP(s, m, doc) {#m, LP_FT_MAP, OFF(s, m), NULL, 0, 0, NULL, 0, NULL, 0, 0, doc}
/* clang-format on */

static const struct lp_field enrich_fields[] = {
    MAP(lp_config_enrich, add_fields, "Static fields set on every event (dotted path: value)."),
    MAP(lp_config_enrich, env_fields,
        "Fields set from environment variables read at start (dotted path: VARIABLE)."),
    MAP(lp_config_enrich, rename, "Fields moved (from: to), after parsing."),
    MAP(lp_config_enrich, copy, "Fields copied (from: to), after parsing."),
    STRLIST(lp_config_enrich, remove, NULL, "Fields removed, after renames and copies."),
    BOOL(lp_config_enrich, normalize_level, "true",
         "log.level (or level, severity) mapped to one of trace, debug, info, warn, error, "
         "fatal."),
    BOOL(lp_config_enrich, ingest_time, "true", "Sets event.ingested to the processing time."),
    END,
};

/* Keys of aggregator.outputs items; T: the output types that take the key
 * (LP_F_OUT_*: check_output refuses it on another type, docs/config.md
 * names them). */
#define OES LP_F_OUT_ES
#define OFILE LP_F_OUT_FILE
#define OS3 LP_F_OUT_S3
/* clang-format off */
#define OSTR(T, m, d, doc) {#m, LP_FT_STRING, OFF(lp_config_output, m), d, 0, 0, NULL, T, NULL, 0, 0, doc}
#define OENUM(T, m, d, ch, doc) \
    {#m, LP_FT_ENUM, OFF(lp_config_output, m), d, 0, 0, ch, T, NULL, 0, 0, doc}
#define OINT(T, m, d, lo, hi, doc) \
    {#m, LP_FT_INT, OFF(lp_config_output, m), d, lo, hi, NULL, T, NULL, 0, 0, doc}
#define ODUR(T, m, d, lo, hi, doc) \
    {#m, LP_FT_DURATION, OFF(lp_config_output, m##_ms), d, lo, hi, NULL, T, NULL, 0, 0, doc}
#define OSIZE(T, m, d, lo, hi, doc) \
    {#m, LP_FT_SIZE, OFF(lp_config_output, m), d, lo, hi, NULL, T, NULL, 0, 0, doc}
#define OBOOL(T, m, d, doc) {#m, LP_FT_BOOL, OFF(lp_config_output, m), d, 0, 1, NULL, T, NULL, 0, 0, doc}
/* clang-format on */

const struct lp_field lp_config_output_fields[] = {
    STR(lp_config_output, name, NULL, "Output name, referenced by routes."),
    ENUM(lp_config_output, type, NULL, LP_CONFIG_OUTPUT_TYPES,
         "elasticsearch (also OpenSearch), file (NDJSON segments), s3 (objects in S3 or an "
         "S3-compatible store) or stdout (debugging)."),
    OSTR(OES, url, NULL, "base URL, e.g. https://es:9200."),
    OSTR(OES, index, "logs-%Y.%m.%d",
         "index name template: {field.path} takes an event value, %Y %m %d %H "
         "the event time (UTC). With data_stream, the stream name."),
    OBOOL(OES, data_stream, "false", "index is a data stream (the template declares it)."),
    OSTR(OES, username, NULL, "basic auth user."),
    {"password", LP_FT_STRING, OFF(lp_config_output, password), NULL, 0, 0, NULL, LP_F_SECRET | OES,
     NULL, 0, 0, "basic auth password (use ${file:...})."},
    {"api_key", LP_FT_STRING, OFF(lp_config_output, api_key), NULL, 0, 0, NULL, LP_F_SECRET | OES,
     NULL, 0, 0, "API key (the base64 id:key), sent as Authorization: ApiKey."},
    OSTR(OES | OS3, ca_file, NULL, "CA bundle for TLS."),
    OBOOL(OES | OS3, tls_verify, "true", "verify the server certificate."),
    OENUM(OES, compression, "gzip", "gzip|none", "request bodies."),
    OINT(OES | OS3, max_inflight_requests, "4", 1, 64,
         "requests in flight at once (bulk requests; for s3, uploads)."),
    OSIZE(OES, bulk_max_bytes, "5MiB", 4096, 512LL << 20,
          "most uncompressed bytes in one bulk request."),
    OINT(OES, bulk_max_actions, "5000", 1, 1000000, "most documents in one bulk request."),
    ODUR(OES, flush_interval, "500ms", 1, 60000,
         "a partly filled bulk request is sent after this long."),
    ODUR(OES | OS3, request_timeout, "60s", 100, 3600000,
         "a request without an answer for this long is retried."),
    ODUR(OES | OS3, retry_initial, "200ms", 1, 3600000,
         "first retry delay; doubles per attempt, with jitter."),
    ODUR(OES | OS3, retry_max, "30s", 1, 3600000,
         "longest retry delay. Retries never stop; consumption pauses "
         "instead."),
    OBOOL(OES, install_template, "true", "install an index template with ECS mappings at start."),
    OSTR(OES, template_name, "logpipe", "the template's name."),
    OENUM(OES, labels_mapping, "auto", "auto|object",
          "how the template maps kubernetes.labels, kubernetes.annotations and "
          "container.labels. auto: as one field each (flat_object on OpenSearch 2.7+, flattened "
          "on Elasticsearch 7.3+), so a new label never adds a field to the index and cannot hit "
          "its field limit; searchable by dotted path (on OpenSearch not aggregatable). object: "
          "one mapped field per key (the older behaviour)."),
    OENUM(OES, dynamic_scalars, "keyword", "keyword|native",
          "how the template maps fields it does not know. keyword: every string, "
          "number and boolean as a keyword (a number as its JSON text) and no date guessing, so "
          "a field has one type in every index: a data view over several indices (namespaces, "
          "days) has no type conflicts when two apps log user_id as a number and as a string. "
          "native: the cluster's dynamic mapping (numbers as long/float, date detection) — "
          "ranges and sums on app fields, and conflicts across indices."),
    OINT(OES, field_budget, "200", 0, 100000,
         "most fields the template does not map that one source (namespace, "
         "else container) adds to one index, per aggregator; its later new fields are kept "
         "(aggregator.content.kept_field) instead of mapped, so one tenant cannot use up the "
         "index's field limit (index.mapping.total_fields.limit, 1000) for the others. 0: "
         "off."),
    OSTR(OFILE, path, NULL, "root directory of the segments."),
    OSIZE(OFILE, max_segment_bytes, "128MiB", 4096, 64LL << 30,
          "a segment is closed at this size."),
    ODUR(OFILE, max_segment_age, "5m", 1000, DAY, "a segment is closed at this age."),
    OSTR(OS3, bucket, NULL, "the bucket (it must exist)."),
    OSTR(OS3, endpoint, NULL,
         "http(s)://host[:port] of an S3-compatible store (MinIO, Ceph RGW, SeaweedFS, "
         "R2, GCS interop); unset: AWS S3 for the region."),
    OSTR(OS3, region, "us-east-1", "the region requests are signed for."),
    OSTR(OS3, prefix, "",
         "key prefix; objects are <prefix>/<route>/YYYY/MM/DD/HH/<topic>-<partition>-"
         "<first offset>.ndjson.zst."),
    OBOOL(OS3, path_style, "false",
          "path-style addressing (https://host/bucket/key), which most self-hosted stores "
          "want; false: virtual-hosted (https://bucket.host/key)."),
    {"access_key_id", LP_FT_STRING, OFF(lp_config_output, access_key_id), NULL, 0, 0, NULL,
     LP_F_SECRET | OS3, NULL, 0, 0,
     "access key id; unset: AWS_ACCESS_KEY_ID (and AWS_SECRET_ACCESS_KEY, "
     "AWS_SESSION_TOKEN) from the environment."},
    {"secret_access_key", LP_FT_STRING, OFF(lp_config_output, secret_access_key), NULL, 0, 0, NULL,
     LP_F_SECRET | OS3, NULL, 0, 0, "secret access key (use ${file:...})."},
    {"session_token", LP_FT_STRING, OFF(lp_config_output, session_token), NULL, 0, 0, NULL,
     LP_F_SECRET | OS3, NULL, 0, 0, "session token of temporary credentials."},
    OSTR(OS3, storage_class, NULL,
         "storage class of the objects (STANDARD_IA, ...); unset: the bucket's default."),
    OENUM(OS3, object_compression, "zstd", "zstd|gzip|none",
          "compression of the objects (.ndjson.zst, .ndjson.gz, .ndjson)."),
    OSIZE(OS3, max_object_bytes, "64MiB", 4096, 4LL << 30,
          "a partition's batch is closed and uploaded at this many uncompressed bytes."),
    OINT(OS3, max_object_records, "1000000", 1, 1000000000, "... or at this many records."),
    ODUR(OS3, max_object_age, "5m", 1000, DAY, "... or this long after its first record."),
    OSIZE(OS3, part_size, "16MiB", 5LL << 20, 5LL << 30,
          "objects larger than this go up as multipart uploads of parts this size."),
    END,
};

static const struct lp_field default_route_fields[] = {
    STR(lp_config_default_route, parser, NULL, "Parser for events no route matched."),
    STRLIST(lp_config_default_route, hint_parsers, NULL,
            "As a route's hint_parsers, for events no route matched."),
    STRLIST(lp_config_default_route, outputs, NULL,
            "Outputs for events no route matched (empty: every output)."),
    END,
};

static const struct lp_field aggregator_fields[] = {
    STR(lp_config_aggregator, group_id, "logpipe-aggregator", "Kafka consumer group."),
    INT(lp_config_aggregator, workers, "2", 1, 256,
        "Worker threads; partitions are spread over them, each keeps its order."),
    SIZE(lp_config_aggregator, max_decompressed_bytes, "64MiB", 1 << 20, 1LL << 30,
         "Cap on one batch's decompressed size; larger batches go to the dead letter."),
    SIZE(lp_config_aggregator, max_pending_bytes, "256MiB", 1 << 20, 64LL << 30,
         "The memory budget for what is consumed but not yet durable in every output, in "
         "real bytes: the compressed Kafka messages plus the documents rendered from them "
         "that the outputs hold (waiting for Elasticsearch), and the workers' decode working "
         "sets (a decompressed message and its records). A partition over its share is "
         "paused (backpressure) until it drains to half; a worker renders no more of a "
         "message while the outputs and decode working sets hold more than what remains of "
         "it once librdkafka's prefetch queue (an eighth, at most 32 MiB), the elasticsearch "
         "outputs' request bodies and a 16 MiB baseline are set aside (at least half). Set it "
         "to about half of the container's memory limit."),
    DUR(lp_config_aggregator, commit_interval, "1s", 10, 600000,
        "How often stored offsets are committed."),
    DUR(lp_config_aggregator, drain_timeout, "30s", 0, 3600000,
        "On a rebalance or shutdown, how long to wait for in-flight records to become durable "
        "before committing what is done (the rest is read again by the next owner)."),
    STR(lp_config_aggregator, dead_letter_dir, "/var/lib/logpipe/dead-letter",
        "Where records that cannot be delivered are kept, with the stage and reason."),
    STR(lp_config_aggregator, dead_letter_topic, NULL,
        "Optional Kafka topic that also receives dead letters."),
    {"parsers", LP_FT_LIST, OFF(lp_config_aggregator, parsers), NULL, 0, 0, NULL, 0, parser_fields,
     sizeof(struct lp_config_parser), OFF(lp_config_aggregator, n_parsers),
     "Named message parsers."},
    {"routes", LP_FT_LIST, OFF(lp_config_aggregator, routes), NULL, 0, 0, NULL, 0, route_fields,
     sizeof(struct lp_config_route), OFF(lp_config_aggregator, n_routes),
     "Ordered routing rules; the first whose conditions hold takes the event."},
    {"default_route", LP_FT_SECTION, OFF(lp_config_aggregator, default_route), NULL, 0, 0, NULL, 0,
     default_route_fields, 0, 0, "Events no route matched (route name \"default\")."},
    {"enrich", LP_FT_SECTION, OFF(lp_config_aggregator, enrich), NULL, 0, 0, NULL, 0, enrich_fields,
     0, 0, "Enrichment applied to every event after parsing."},
    {"content", LP_FT_SECTION, OFF(lp_config_aggregator, content), NULL, 0, 0, NULL, 0,
     content_fields, 0, 0,
     "What a line's content may do to its event: owned fields are out of its reach "
     "(docs/fields.md)."},
    {"redact", LP_FT_LIST, OFF(lp_config_aggregator, redact), NULL, 0, 0, NULL, 0, redact_fields,
     sizeof(struct lp_config_redact), OFF(lp_config_aggregator, n_redact),
     "Redaction rules, applied in order to every event after parsing and enrichment and "
     "before any output or the dead letter (docs/aggregator.md \"Redaction\")."},
    {"outputs", LP_FT_LIST, OFF(lp_config_aggregator, outputs), NULL, 0, 0, NULL, 0,
     lp_config_output_fields, sizeof(struct lp_config_output), OFF(lp_config_aggregator, n_outputs),
     "Named outputs. None configured means one file output named \"files\" with path "
     "/var/lib/logpipe/segments."},
    END,
};

static const struct lp_field retention_policy_fields[] = {
    STR(lp_config_retention_policy, name, NULL, "Policy name (audit log, metrics, --dry-run)."),
    STR(lp_config_retention_policy, output, NULL,
        "An aggregator output of type file (its path is the root) or s3 (the policy then "
        "covers its bucket under its prefix: bucket retention), in the same configuration. "
        "Give output or path."),
    STR(lp_config_retention_policy, path, NULL, "Root directory of the segments."),
    STRLIST(lp_config_retention_policy, routes, NULL,
            "Routes (the first directory level under the root) this policy covers; empty: all."),
    STR(lp_config_retention_policy, glob, NULL,
        "Pattern on the path under the root; it selects a file when it matches the path or "
        "one of its directories, e.g. \"nginx/2026-11-*\" (the segments of those days). '*' "
        "and '?' stay within a directory, '**' crosses them; empty: every path."),
    DUR(lp_config_retention_policy, archive_after, NULL, 1000, 3650 * DAY,
        "Archive closed segments older than this (by modification time, the segment's last "
        "write)."),
    ENUM(lp_config_retention_policy, archive_codec, "zstd", "zstd|gzip", "Archive format."),
    INT(lp_config_retention_policy, archive_level, "0", 0, 19,
        "Compression level; 0 = the codec's default (zstd 3, gzip 6). gzip takes 1-9."),
    STR(lp_config_retention_policy, archive_root, NULL,
        "Directory (possibly another filesystem) that receives the archives, mirroring the "
        "tree under the root; empty: next to the segment."),
    STR(lp_config_retention_policy, archive_prefix, NULL,
        "s3 policies: archiving moves an object to this key prefix (in archive_bucket, or "
        "the output's bucket), keeping its path under the output's prefix."),
    STR(lp_config_retention_policy, archive_bucket, NULL,
        "s3 policies: the bucket archived objects move to (same endpoint and credentials); "
        "empty: the output's bucket."),
    STR(lp_config_retention_policy, archive_storage_class, NULL,
        "s3 policies: the storage class archived objects get (e.g. STANDARD_IA, GLACIER_IR); "
        "without archive_prefix the class changes in place."),
    DUR(lp_config_retention_policy, delete_after, NULL, 1000, 36500 * DAY,
        "Delete archives (or, without archive_after, closed segments) older than this. "
        "Archives keep their segment's modification time, so ages count from the last write."),
    SIZE(lp_config_retention_policy, max_total_bytes, NULL, 1, 1LL << 60,
         "Most bytes (closed segments and archives) this policy keeps; the oldest are deleted "
         "first (with archive_after: archives, and segments not archived yet only with "
         "prune_unarchived)."),
    BOOL(lp_config_retention_policy, prune_unarchived, "false",
         "With archive_after: let max_total_bytes delete closed segments that are not archived "
         "yet (oldest first, after the archives). By default it deletes only archives (and "
         "segments old enough to be archived, instead of archiving them), so a cap never "
         "deletes what was never archived. Without archive_after segments are all there is "
         "and the cap deletes them."),
    SIZE(lp_config_retention_policy, min_free_bytes, NULL, 1, 1LL << 60,
         "Emergency pruning: while the root's filesystem has less free space, the policy's "
         "oldest files are deleted (logged at error level)."),
    END,
};

static const struct lp_field index_policy_fields[] = {
    STR(lp_config_index_policy, name, NULL, "Policy name (audit log, metrics, --dry-run)."),
    STR(lp_config_index_policy, url, NULL, "Base URL of the cluster, e.g. https://es:9200."),
    STR(lp_config_index_policy, username, NULL, "Basic auth user."),
    {"password", LP_FT_STRING, OFF(lp_config_index_policy, password), NULL, 0, 0, NULL, LP_F_SECRET,
     NULL, 0, 0, "Basic auth password (use ${file:...})."},
    {"api_key", LP_FT_STRING, OFF(lp_config_index_policy, api_key), NULL, 0, 0, NULL, LP_F_SECRET,
     NULL, 0, 0, "API key (the base64 id:key), sent as Authorization: ApiKey."},
    STR(lp_config_index_policy, ca_file, NULL, "CA bundle for TLS."),
    BOOL(lp_config_index_policy, tls_verify, "true", "Verify the server certificate."),
    STR(lp_config_index_policy, index_pattern, NULL,
        "Index or data stream names, '*' wildcards, comma-separated (e.g. \"logs-*\"). "
        "Indices whose name starts with '.' are only touched as backing indices of a "
        "matching data stream; a data stream's write index is never deleted."),
    DUR(lp_config_index_policy, delete_after, NULL, 1000, 36500 * DAY,
        "Delete indices whose data is older than this."),
    ENUM(lp_config_index_policy, date_from, "auto", "auto|name|creation",
         "An index's date: name (a %Y.%m.%d or %Y-%m-%d date in the name; the index holds "
         "that day), creation (its creation date; for a data stream's backing index, the "
         "creation of the next one, when it stopped taking writes), or auto (name when it "
         "has a date, else creation)."),
    DUR(lp_config_index_policy, request_timeout, "30s", 100, 3600000,
        "Timeout of one request to the cluster."),
    END,
};

static const struct lp_field retention_fields[] = {
    DUR(lp_config_retention, interval, "5m", 1000, DAY, "Daemon mode: time between runs."),
    STR(lp_config_retention, audit_log, "/var/lib/logpipe/retention-audit.ndjson",
        "NDJSON log of every action taken or skipped (not written by --dry-run). Also the "
        "lock that keeps two workers from running at once."),
    BOOL(lp_config_retention, verify_before_delete, "true",
         "Decompress an archive before deleting it for age; a corrupt one is reported and "
         "kept."),
    {"policies", LP_FT_LIST, OFF(lp_config_retention, policies), NULL, 0, 0, NULL, 0,
     retention_policy_fields, sizeof(struct lp_config_retention_policy),
     OFF(lp_config_retention, n_policies),
     "Segment policies; no two may select the same file. With neither policies nor "
     "elasticsearch configured: one policy per aggregator file output (named after it), "
     "archiving with zstd after 1d and deleting nothing."},
    {"elasticsearch", LP_FT_LIST, OFF(lp_config_retention, elasticsearch), NULL, 0, 0, NULL, 0,
     index_policy_fields, sizeof(struct lp_config_index_policy),
     OFF(lp_config_retention, n_elasticsearch), "Index retention policies."},
    END,
};

static const struct lp_field metrics_fields[] = {
    BOOL(lp_config_metrics, enabled, "true", "Serve /metrics, /healthz and /readyz."),
    STR(lp_config_metrics, listen, "",
        "Address of the endpoint (host:port; 0.0.0.0:9464 in a pod). Empty: each daemon its "
        "own, so that three daemons reading one file can run side by side: "
        "127.0.0.1:9464 the shipper, 127.0.0.1:9465 retention, 127.0.0.1:9466 the "
        "aggregator."),
    INT(lp_config_metrics, max_namespaces, "200", 0, 100000,
        "Namespaces counted in series of their own by the per-namespace volume metrics "
        "(logpipe_shipper_namespace_*, logpipe_aggregator_namespace_*): the first this many "
        "seen (label log_namespace); later ones count under \"_other\", lines without one under "
        "\"_none\" (docs/metrics.md \"Per-namespace volume\"). 0: off."),
    END,
};

static const struct lp_field log_fields[] = {
    ENUM(lp_config_log, level, "info", "error|warn|info|debug", "Least severe level logged."),
    ENUM(lp_config_log, format, "logfmt", "logfmt|json", "Log line format on stderr."),
    END,
};

/* clang-format off */
#define SECTION(m, t, doc) \
    {#m, LP_FT_SECTION, OFF(lp_config, m), NULL, 0, 0, NULL, 0, t, 0, 0, doc}
/* clang-format on */

const struct lp_field lp_config_root[] = {
    SECTION(kafka, kafka_fields, "Kafka connection, shared by shipper and aggregator."),
    SECTION(shipper, shipper_fields, "logpipe-shipper: tailing and delivery to Kafka."),
    SECTION(aggregator, aggregator_fields, "logpipe-aggregator: consuming and outputs."),
    SECTION(retention, retention_fields, "logpipe-retention: archiving and pruning."),
    SECTION(metrics, metrics_fields, "The metrics and health endpoint of every daemon."),
    SECTION(log, log_fields, "Logging of every daemon."),
    END,
};
