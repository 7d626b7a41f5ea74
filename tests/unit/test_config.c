/* Configuration: defaults, merging, substitution, units, every error path
 * with its FILE:LINE:COL, redaction, and docs/config.md freshness. */
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_node.h"
#include "lp_redact.h"
#include "lp_error.h"
#include "lp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *fake_env(const char *name)
{
    if (!strcmp(name, "BROKERS"))
        return "kafka-1:9092,kafka-2:9092";
    if (!strcmp(name, "EMPTY"))
        return "";
    if (!strcmp(name, "NODE_NAME"))
        return "node-7";
    return NULL;
}

static struct lp_config *load1(const char *text, struct lp_buf *errs)
{
    const char *names[] = {"test.yaml"};
    const char *texts[] = {text};
    return lp_config_load_texts(names, texts, 1, fake_env, errs);
}

/* Loading must fail with exactly this first error line. */
static void expect_error(const char *text, const char *want)
{
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = load1(text, &errs);
    CU_ASSERT_PTR_NULL(c);
    lp_config_free(c);
    if (!errs.data || strncmp(errs.data, want, strlen(want)) != 0)
        fprintf(stderr, "\n  got:  %s  want: %s\n", errs.len ? errs.data : "(none)", want);
    CU_ASSERT(strncmp(errs.data, want, strlen(want)) == 0);
    lp_buf_release(&errs);
}

static void test_defaults(void)
{
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = lp_config_load(NULL, 0, NULL, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->kafka.brokers, "127.0.0.1:9092");
    CU_ASSERT_EQUAL(c->kafka.max_message_bytes, 1 << 20);
    CU_ASSERT_EQUAL(c->shipper.max_line_bytes, 256 * 1024);
    CU_ASSERT_EQUAL(c->shipper.batch_linger_ms, 200);
    CU_ASSERT_EQUAL(c->shipper.checkpoint_expire_ms, 7LL * 86400 * 1000);
    CU_ASSERT_STRING_EQUAL(c->shipper.compression, "zstd");
    CU_ASSERT_EQUAL(c->shipper.n_inputs, 0);
    CU_ASSERT_STRING_EQUAL(c->shipper.multiline.mode, "off");
    CU_ASSERT_EQUAL(c->metrics.enabled, 1);
    CU_ASSERT_STRING_EQUAL(c->metrics.listen, ""); /* each daemon its own (lp_cli) */
    CU_ASSERT_PTR_NULL(c->shipper.host_name);
    lp_config_free(c);
    lp_buf_release(&errs);
}

static void test_values_and_substitution(void)
{
    const char *text = "kafka:\n"
                       "  brokers: ${BROKERS}\n"
                       "  max_message_bytes: 8MiB\n"
                       "  topic: \"logs-${ENVNAME:-dev}\"\n"
                       "  properties:\n"
                       "    security.protocol: SASL_SSL\n"
                       "    sasl.password: hunter2\n"
                       "    ssl.key.password: pw\n"
                       "    ssl.ca.location: /etc/ca.pem\n"
                       "shipper:\n"
                       "  host_name: ${NODE_NAME}\n"
                       "  state_dir: $${literal}\n"
                       "  batch_linger: 250ms\n"
                       "  max_line_bytes: 1MiB\n"
                       "  max_inflight_bytes: 1GB\n"
                       "  checkpoint_expire: 30d\n"
                       "  inputs:\n"
                       "    - paths: [/var/log/containers/*.log]\n"
                       "      exclude: ['*_kube-system_*']\n"
                       "      format: cri\n"
                       "    - paths: /data/app.log\n"
                       "  multiline: {mode: java, flush_timeout: 1s}\n"
                       "metrics:\n"
                       "  enabled: false\n"
                       "retention:\n"
                       "  interval:\n"
                       "  audit_log: \"${EMPTY:-/tmp/audit}\"\n";
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = load1(text, &errs);
    if (!c)
        fprintf(stderr, "\n%s", errs.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->kafka.brokers, "kafka-1:9092,kafka-2:9092");
    CU_ASSERT_STRING_EQUAL(c->kafka.topic, "logs-dev");
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&c->kafka.properties, "sasl.password"), "hunter2");
    CU_ASSERT_STRING_EQUAL(c->shipper.host_name, "node-7");
    CU_ASSERT_STRING_EQUAL(c->shipper.state_dir, "${literal}");
    CU_ASSERT_EQUAL(c->shipper.batch_linger_ms, 250);
    CU_ASSERT_EQUAL(c->shipper.max_line_bytes, 1 << 20);
    CU_ASSERT_EQUAL(c->shipper.max_inflight_bytes, 1000000000);
    CU_ASSERT_EQUAL(c->shipper.checkpoint_expire_ms, 30LL * 86400 * 1000);
    CU_ASSERT_EQUAL_FATAL(c->shipper.n_inputs, 2);
    CU_ASSERT_EQUAL(c->shipper.inputs[0].n_paths, 1);
    CU_ASSERT_STRING_EQUAL(c->shipper.inputs[0].exclude[0], "*_kube-system_*");
    CU_ASSERT_STRING_EQUAL(c->shipper.inputs[0].format, "cri");
    CU_ASSERT_STRING_EQUAL(c->shipper.inputs[1].paths[0], "/data/app.log"); /* scalar → list */
    CU_ASSERT_STRING_EQUAL(c->shipper.inputs[1].format, "auto");            /* element default */
    CU_ASSERT_STRING_EQUAL(c->shipper.multiline.mode, "java");
    CU_ASSERT_EQUAL(c->shipper.multiline.flush_timeout_ms, 1000);
    CU_ASSERT_EQUAL(c->shipper.multiline.max_lines, 500);
    CU_ASSERT_EQUAL(c->metrics.enabled, 0);
    CU_ASSERT_EQUAL(c->retention.interval_ms, 5 * 60 * 1000); /* empty value keeps default */
    CU_ASSERT_STRING_EQUAL(c->retention.audit_log, "/tmp/audit");

    struct lp_buf dump = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_config_dump(c, NULL, 1, &dump), 0);
    CU_ASSERT_PTR_NULL(strstr(dump.data, "hunter2"));
    CU_ASSERT_PTR_NULL(strstr(dump.data, "\"pw\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "\"sasl.password\": \"<redacted>\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "\"ssl.key.password\": \"<redacted>\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "\"ssl.ca.location\": \"/etc/ca.pem\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "  batch_linger: 250ms\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(dump.data, "  max_line_bytes: 1MiB\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(dump.data, "    - paths:\n        - \"/var/log/containers/*.log\"\n"));

    /* The dump is itself a valid configuration that loads to the same values. */
    struct lp_buf plain = LP_BUF_INIT, errs2 = LP_BUF_INIT, dump2 = LP_BUF_INIT;
    lp_config_dump(c, NULL, 0, &plain);
    struct lp_config *c2 = load1(plain.data, &errs2);
    if (!c2)
        fprintf(stderr, "\n%s\n%s", plain.data, errs2.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    lp_config_dump(c2, NULL, 0, &dump2);
    CU_ASSERT_STRING_EQUAL(plain.data, dump2.data);
    lp_config_free(c2);
    lp_buf_release(&plain);
    lp_buf_release(&errs2);
    lp_buf_release(&dump2);

    lp_buf_reset(&dump);
    CU_ASSERT_EQUAL(lp_config_dump(c, "metrics", 1, &dump), 0);
    CU_ASSERT_STRING_EQUAL(dump.data,
                           "metrics:\n  enabled: false\n  listen: \"\"\n  max_namespaces: 200\n");
    CU_ASSERT_EQUAL(lp_config_dump(c, "nope", 1, &dump), LP_ENOTFOUND);
    lp_buf_release(&dump);
    lp_config_free(c);
    lp_buf_release(&errs);
}

/* An input's multiline section replaces shipper.multiline for its files;
 * inputs without one use shipper.multiline. */
static void test_input_multiline(void)
{
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = load1("shipper:\n"
                                "  multiline: {mode: python, max_lines: 50}\n"
                                "  inputs:\n"
                                "    - paths: [/var/log/pods/java_*/*/*.log]\n"
                                "      multiline: {mode: java, flush_timeout: 500ms}\n"
                                "    - paths: [/var/log/pods/raw_*/*/*.log]\n"
                                "      multiline: {mode: \"off\"}\n"
                                "    - paths: [/var/log/pods/*/*/*.log]\n",
                                &errs);
    if (!c)
        fprintf(stderr, "\n%s", errs.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const struct lp_config_multiline *m0 = lp_config_input_multiline(&c->shipper, 0);
    CU_ASSERT_STRING_EQUAL(m0->mode, "java");
    CU_ASSERT_EQUAL(m0->flush_timeout_ms, 500);
    CU_ASSERT_EQUAL(m0->max_lines, 500); /* its own default, not shipper.multiline's */
    CU_ASSERT_STRING_EQUAL(lp_config_input_multiline(&c->shipper, 1)->mode, "off");
    const struct lp_config_multiline *m2 = lp_config_input_multiline(&c->shipper, 2);
    CU_ASSERT_PTR_EQUAL(m2, &c->shipper.multiline);
    CU_ASSERT_STRING_EQUAL(m2->mode, "python");
    CU_ASSERT_EQUAL(m2->max_lines, 50);
    CU_ASSERT_PTR_EQUAL(lp_config_input_multiline(&c->shipper, -1), &c->shipper.multiline);
    /* the dump keeps the difference: the third input has no section of its own */
    struct lp_buf dump = LP_BUF_INIT, errs2 = LP_BUF_INIT;
    lp_config_dump(c, "shipper", 0, &dump);
    struct lp_config *c2 = load1(dump.data, &errs2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    CU_ASSERT_EQUAL(c2->shipper.inputs[0].has_multiline, 1);
    CU_ASSERT_EQUAL(c2->shipper.inputs[1].has_multiline, 1);
    CU_ASSERT_EQUAL(c2->shipper.inputs[2].has_multiline, 0);
    CU_ASSERT_STRING_EQUAL(lp_config_input_multiline(&c2->shipper, 0)->mode, "java");
    lp_config_free(c2);
    lp_buf_release(&dump);
    lp_buf_release(&errs2);
    lp_config_free(c);
    lp_buf_release(&errs);
    expect_error("shipper:\n  inputs:\n    - paths: [/x]\n      multiline:\n        mode: custom\n",
                 "test.yaml:5:9: shipper.inputs[0].multiline: mode custom needs start_pattern\n");
    expect_error("shipper:\n  inputs:\n    - paths: [/x]\n      multiline: {mode: jav}\n",
                 "test.yaml:4:25: shipper.inputs[0].multiline.mode: 'jav' is not one of "
                 "off|java|python|go|custom\n");
}

static void test_merge(void)
{
    const char *names[] = {"base.yaml", "prod.yaml"};
    const char *texts[] = {"kafka:\n  brokers: a:1\n  topic: t1\n"
                           "  properties: {acks: all, linger.ms: '5'}\n"
                           "shipper:\n  inputs:\n    - paths: [/a, /b]\n",
                           "kafka:\n  topic: t2\n  properties: {linger.ms: '50'}\n"
                           "shipper:\n  inputs:\n    - paths: [/c]\n"};
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = lp_config_load_texts(names, texts, 2, fake_env, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->kafka.brokers, "a:1"); /* kept from base */
    CU_ASSERT_STRING_EQUAL(c->kafka.topic, "t2");    /* scalar replaced */
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&c->kafka.properties, "acks"), "all"); /* deep merge */
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&c->kafka.properties, "linger.ms"), "50");
    CU_ASSERT_EQUAL_FATAL(c->shipper.n_inputs, 1); /* list replaced, not appended */
    CU_ASSERT_STRING_EQUAL(c->shipper.inputs[0].paths[0], "/c");
    lp_config_free(c);

    /* errors in the overriding file point into it */
    const char *bad[] = {"kafka:\n  topic: t1\n", "kafka:\n  topik: t2\n"};
    c = lp_config_load_texts(names, bad, 2, fake_env, &errs);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_STRING_EQUAL(errs.data,
                           "prod.yaml:2:3: unknown key 'kafka.topik'; did you mean 'topic'?\n");
    lp_buf_release(&errs);
}

static void test_errors(void)
{
    expect_error("kafka:\n  brokrs: x\n",
                 "test.yaml:2:3: unknown key 'kafka.brokrs'; did you mean 'brokers'?\n");
    expect_error("shiper:\n  x: 1\n",
                 "test.yaml:1:1: unknown key 'shiper'; did you mean 'shipper'?\n");
    expect_error("kafka:\n  zzzzzz: 1\n", "test.yaml:2:3: unknown key 'kafka.zzzzzz'\n");
    expect_error("shipper:\n  batch_linger: 5 parsecs\n",
                 "test.yaml:2:17: shipper.batch_linger: expected a duration (e.g. 250ms, 5s, 1h, "
                 "30d), got '5 parsecs'\n");
    expect_error("shipper:\n  batch_linger: 5\n",
                 "test.yaml:2:17: shipper.batch_linger: expected a duration");
    expect_error("shipper:\n  max_line_bytes: lots\n",
                 "test.yaml:2:19: shipper.max_line_bytes: expected a size (e.g. 512, 64KiB, 5MiB, "
                 "1GB), got 'lots'\n");
    expect_error("shipper:\n  max_line_bytes: 10\n",
                 "test.yaml:2:19: shipper.max_line_bytes: '10' is out of range [1KiB, 64MiB]\n");
    expect_error("shipper:\n  batch_max_records: -3\n",
                 "test.yaml:2:22: shipper.batch_max_records: '-3' is out of range [1, 1000000]\n");
    expect_error("shipper:\n  batch_max_records: many\n",
                 "test.yaml:2:22: shipper.batch_max_records: expected an integer, got 'many'\n");
    expect_error("shipper:\n  compression: lz4\n",
                 "test.yaml:2:16: shipper.compression: 'lz4' is not one of zstd|gzip|none\n");
    expect_error("metrics:\n  enabled: maybe\n",
                 "test.yaml:2:12: metrics.enabled: expected true or false, got 'maybe'\n");
    expect_error("kafka:\n  brokers: [a, b]\n",
                 "test.yaml:2:12: kafka.brokers: expected a string, got a list\n");
    expect_error("kafka: 5\n", "test.yaml:1:8: kafka: expected a mapping, got a scalar\n");
    expect_error("kafka:\n  properties:\n    acks: [1]\n",
                 "test.yaml:3:11: kafka.properties.acks: expected a string value, got a list\n");
    expect_error("shipper:\n  inputs:\n    - format: cri\n",
                 "test.yaml:3:7: shipper.inputs[0]: needs at least one path\n");
    expect_error("shipper:\n  inputs:\n    - paths: [/x]\n      formt: cri\n",
                 "test.yaml:4:7: unknown key 'shipper.inputs[0].formt'; did you mean 'format'?\n");
    expect_error("shipper:\n  multiline:\n    mode: custom\n",
                 "test.yaml:3:5: shipper.multiline: mode custom needs start_pattern\n");
    expect_error("kafka:\n  brokers: ${KAFKA_BROKERS_UNSET}\n",
                 "test.yaml:2:12: environment variable KAFKA_BROKERS_UNSET is not set (write "
                 "${KAFKA_BROKERS_UNSET:-default} to give a default)\n");
    expect_error("kafka:\n  topic: \"pre-${MISSING}\"\n",
                 "test.yaml:2:15: environment variable MISSING is not set");
    expect_error("kafka:\n  topic: ${bad name}\n",
                 "test.yaml:2:10: invalid substitution '${bad name}'");
    expect_error("kafka:\n  topic: ${OPEN\n", "test.yaml:2:10: unterminated ${");
    expect_error(
        "kafka:\n  topic: ${file:/nonexistent/secret}\n",
        "test.yaml:2:10: cannot read ${file:/nonexistent/secret}: No such file or directory\n");
    expect_error("kafka:\n  topic: a\n  topic: b\n",
                 "test.yaml:3:3: duplicate key 'topic' (first at line 2)\n");
    expect_error("kafka:\n  brokers: [unclosed\n", "test.yaml:3:1: invalid YAML: ");
    /* an encoding iconv does not know, or one that cannot be framed */
    expect_error("shipper:\n  inputs:\n    - {paths: [/x], encoding: klingon}\n",
                 "test.yaml:3:31: shipper.inputs[0].encoding: 'klingon': not an encoding iconv "
                 "knows");
    expect_error("shipper:\n  inputs:\n    - {paths: [/x], encoding: UTF-16LE}\n",
                 "test.yaml:3:31: shipper.inputs[0].encoding: 'UTF-16LE': UTF-16 and UTF-32");
    /* a key of another output type, refused where it stands (the type
     * given before or after it) */
    expect_error("aggregator:\n  outputs:\n    - {name: f, type: file, path: /x, index: logs}\n",
                 "test.yaml:3:39: aggregator.outputs[0].index: a key of elasticsearch outputs; "
                 "this output is type file\n");
    expect_error("aggregator:\n  outputs:\n    - bucket: b\n      name: e\n      type: "
                 "elasticsearch\n      url: http://x:9200\n",
                 "test.yaml:3:7: aggregator.outputs[0].bucket: a key of s3 outputs; this "
                 "output is type elasticsearch\n");
    expect_error("aggregator:\n  outputs:\n    - {name: s, type: stdout, request_timeout: 5s}\n",
                 "test.yaml:3:31: aggregator.outputs[0].request_timeout: a key of "
                 "elasticsearch, s3 outputs; this output is type stdout\n");
    expect_error("- a\n- b\n",
                 "test.yaml:1:1: the top level must be a mapping of sections, not a list\n");
    expect_error("base: &b {x: 1}\nkafka: *b\n",
                 "test.yaml:2:8: YAML aliases (*b) are not supported\n");
    expect_error("kafka:\n  brokers: \"\"\n", "test.yaml:2:12: kafka.brokers must not be empty\n");
    expect_error("shipper:\n  max_line_bytes: 512KiB\n",
                 "test.yaml:2:19: shipper.max_line_bytes must be at most a quarter of "
                 "kafka.max_message_bytes");

    /* every error is reported, not just the first */
    struct lp_buf errs = LP_BUF_INIT;
    CU_ASSERT_PTR_NULL(load1("kafka:\n  brokrs: x\nshipper:\n  batch_linger: x\n", &errs));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "test.yaml:2:3:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "\ntest.yaml:4:17:"));
    lp_buf_release(&errs);

    /* a file that does not exist */
    const char *missing[] = {"/nonexistent/logpipe.yaml"};
    CU_ASSERT_PTR_NULL(lp_config_load(missing, 1, NULL, &errs));
    CU_ASSERT_STRING_EQUAL(
        errs.data,
        "/nonexistent/logpipe.yaml:1:1: cannot open config file: No such file or directory\n");
    lp_buf_release(&errs);
}

/* Independent mistakes are all reported in one run, whatever their kind:
 * a variable, an unknown key, a type, a pattern, two policies. */
static void test_all_mistakes_at_once(void)
{
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = load1("shipper:\n"
                                "  host_name: \"${UNSET_XYZ_VAR}\"\n"
                                "  bogus_key: 1\n"
                                "aggregator:\n"
                                "  workers: many\n"
                                "  routes:\n"
                                "    - {name: r, match: [{field: a, regex: \"(unclosed\"}]}\n"
                                "retention:\n"
                                "  policies:\n"
                                "    - {name: a, path: /s, archive_after: 1d}\n"
                                "    - {name: b, path: /s, delete_after: 2d}\n",
                                &errs);
    CU_ASSERT_PTR_NULL(c);
    static const char *const want[] = {
        "test.yaml:2:15: environment variable UNSET_XYZ_VAR is not set",
        "test.yaml:3:3: unknown key 'shipper.bogus_key'",
        "test.yaml:5:12: aggregator.workers",
        "test.yaml:7:43: aggregator.routes[0].match[0]: bad pattern",
        "test.yaml:11:7: retention.policies[1] 'b' overlaps policy 'a'",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++) {
        if (!strstr(errs.data, want[i]))
            fprintf(stderr, "missing: %s\nin:\n%s\n", want[i], errs.data);
        CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, want[i]));
    }
    lp_config_free(c);
    lp_buf_release(&errs);
}

/* One file, three daemons: each resolves only its own sections' secrets. */
static void test_sections_in_use(void)
{
    static const char text[] =
        "kafka: {brokers: \"k:9092\"}\n"
        "shipper: {host_name: \"${HOST_UNSET_XYZ:-node-1}\"}\n"
        "aggregator:\n"
        "  outputs:\n"
        "    - {name: search, type: elasticsearch, url: \"http://es:9200\",\n"
        "       password: \"${ES_PASSWORD_UNSET_XYZ}\"}\n"
        "    - {name: s, type: s3, bucket: b, access_key_id: k,\n"
        "       secret_access_key: \"${file:/nonexistent/s3-secret}\"}\n";
    static const char *const shipper[] = {"kafka", "shipper", "metrics", "log", NULL};
    static const char *const aggregator[] = {"kafka", "aggregator", "metrics", "log", NULL};
    struct lp_buf errs = LP_BUF_INIT;
    lp_node_set_used_sections(shipper);
    struct lp_config *c = load1(text, &errs);
    if (!c)
        fprintf(stderr, "%s", errs.data);
    CU_ASSERT_PTR_NOT_NULL(c); /* the aggregator's secrets are not the shipper's business */
    if (c)
        CU_ASSERT_STRING_EQUAL(c->shipper.host_name, "node-1");
    lp_config_free(c);
    lp_buf_reset(&errs);
    lp_node_set_used_sections(aggregator);
    c = load1(text, &errs);
    CU_ASSERT_PTR_NULL(c); /* the aggregator needs them */
    CU_ASSERT_PTR_NOT_NULL(
        strstr(errs.data, "environment variable ES_PASSWORD_UNSET_XYZ is not set"));
    lp_config_free(c);
    /* a mistake in a section the daemon does not read stops the daemons that
     * read it, not this one */
    lp_buf_reset(&errs);
    lp_node_set_used_sections(shipper);
    c = load1("retention: {policies: [{name: p, path: /x}]}\n", &errs);
    CU_ASSERT_PTR_NOT_NULL(c);
    lp_config_free(c);
    static const char *const retention[] = {"kafka",   "aggregator", "retention",
                                            "metrics", "log",        NULL};
    lp_node_set_used_sections(retention);
    c = load1("retention: {policies: [{name: p, path: /x}]}\n", &errs);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "does nothing"));
    lp_config_free(c);
    /* syntax is checked in every section */
    lp_buf_reset(&errs);
    lp_node_set_used_sections(shipper);
    c = load1("aggregator: {outputs: [{name: x, type: file, path: \"${bad-name}\"}]}\n", &errs);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "invalid substitution"));
    lp_config_free(c);
    lp_node_set_used_sections(NULL);
    lp_buf_release(&errs);
}

static void test_file_substitution(void)
{
    char dir[] = "/tmp/lp-config-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char secret[256], cfg[256];
    snprintf(secret, sizeof(secret), "%s/pw", dir);
    snprintf(cfg, sizeof(cfg), "%s/logpipe.yaml", dir);
    FILE *f = fopen(secret, "w");
    fputs("s3cret\n", f);
    fclose(f);
    f = fopen(cfg, "w");
    fputs("kafka:\n  properties:\n    sasl.password: ${file:pw}\n", f); /* relative to cfg */
    fclose(f);
    const char *files[] = {cfg};
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = lp_config_load(files, 1, NULL, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&c->kafka.properties, "sasl.password"), "s3cret");
    lp_config_free(c);
    lp_buf_release(&errs);
    unlink(secret);
    unlink(cfg);
    rmdir(dir);
}

/* shipper.kubernetes.kubeconfig: the context's server, CA data (decoded),
 * token or relative tokenFile; errors point into the kubeconfig. */
static void test_kubeconfig(void)
{
    char dir[] = "/tmp/lp-kubeconfig-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char kc[256], text[2048];
    snprintf(kc, sizeof(kc), "%s/config", dir);
    FILE *f = fopen(kc, "w");
    /* "-----BEGIN CERTIFICATE-----\n" in base64 */
    fputs("apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
          "clusters:\n"
          "  - name: dev-cluster\n"
          "    cluster:\n"
          "      server: https://127.0.0.1:6443\n"
          "      certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
          "  - name: prod-cluster\n"
          "    cluster: {server: https://10.0.0.1, certificate-authority: ca/prod.crt}\n"
          "contexts:\n"
          "  - {name: dev, context: {cluster: dev-cluster, user: dev-user}}\n"
          "  - {name: prod, context: {cluster: prod-cluster, user: prod-user}}\n"
          "  - {name: sso, context: {cluster: prod-cluster, user: sso-user}}\n"
          "  - {name: lost, context: {cluster: nowhere}}\n"
          "users:\n"
          "  - {name: dev-user, user: {token: dev-token-123}}\n"
          "  - {name: prod-user, user: {tokenFile: tokens/prod}}\n"
          "  - name: sso-user\n"
          "    user:\n"
          "      exec: {command: aws, args: [eks, get-token]}\n",
          f);
    fclose(f);
    struct lp_buf errs = LP_BUF_INIT;
    snprintf(text, sizeof(text),
             "shipper:\n  kubernetes: {enabled: true, node_name: n1, kubeconfig: %s}\n", kc);
    struct lp_config *c = load1(text, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const struct lp_k8s_conn *k = c->shipper.kubernetes.conn;
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_STRING_EQUAL(k->server, "https://127.0.0.1:6443");
    CU_ASSERT_STRING_EQUAL(k->token, "dev-token-123");
    CU_ASSERT_EQUAL(k->ca_pem_len, 28);
    CU_ASSERT_PTR_NOT_NULL(k->ca_pem && strstr(k->ca_pem, "BEGIN CERTIFICATE"));
    CU_ASSERT_STRING_EQUAL(k->context, "dev");
    lp_config_free(c);

    snprintf(
        text, sizeof(text),
        "shipper:\n  kubernetes: {enabled: true, node_name: n1, kubeconfig: %s, context: prod}\n",
        kc);
    c = load1(text, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    k = c->shipper.kubernetes.conn;
    char want[300];
    snprintf(want, sizeof(want), "%s/tokens/prod", dir); /* relative to the kubeconfig */
    CU_ASSERT_STRING_EQUAL(k->token_file, want);
    snprintf(want, sizeof(want), "%s/ca/prod.crt", dir);
    CU_ASSERT_STRING_EQUAL(k->ca_file, want);
    CU_ASSERT_PTR_NULL(k->token);
    lp_config_free(c);

    /* errors, at their place in the kubeconfig */
    static const struct {
        const char *context, *want;
    } bad[] = {
        {"sso", "config:21:13: kubeconfig: user \"sso-user\": exec credentials are not supported"},
        {"lost", "config:15:37: kubeconfig: no clusters named \"nowhere\""},
        {"staging", "config:1:1: kubeconfig: no contexts named \"staging\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 "shipper:\n  kubernetes: {enabled: true, node_name: n1, kubeconfig: %s, "
                 "context: %s}\n",
                 kc, bad[i].context);
        lp_buf_reset(&errs);
        c = load1(text, &errs);
        CU_ASSERT_PTR_NULL(c);
        lp_config_free(c);
        char *at = strstr(errs.data, "config:");
        if (!at || strncmp(at, bad[i].want, strlen(bad[i].want)) != 0)
            fprintf(stderr, "\n  got:  %s  want: %s\n", errs.len ? errs.data : "(none)",
                    bad[i].want);
        CU_ASSERT(at && strncmp(at, bad[i].want, strlen(bad[i].want)) == 0);
    }
    /* a missing file */
    snprintf(text, sizeof(text),
             "shipper:\n  kubernetes: {enabled: true, node_name: n1, kubeconfig: %s/none}\n", dir);
    lp_buf_reset(&errs);
    c = load1(text, &errs);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "/none"));
    lp_buf_release(&errs);
    unlink(kc);
    rmdir(dir);
}

static void test_units(void)
{
    int64_t v;
    CU_ASSERT(lp_parse_duration_ms("250ms", &v) == 0 && v == 250);
    CU_ASSERT(lp_parse_duration_ms("5s", &v) == 0 && v == 5000);
    CU_ASSERT(lp_parse_duration_ms("1h", &v) == 0 && v == 3600000);
    CU_ASSERT(lp_parse_duration_ms("30d", &v) == 0 && v == 30LL * 86400000);
    CU_ASSERT(lp_parse_duration_ms("2w", &v) == 0 && v == 14LL * 86400000);
    CU_ASSERT(lp_parse_duration_ms("1500us", &v) == 0 && v == 1);
    CU_ASSERT(lp_parse_duration_ms("5", &v) == LP_EINVAL);
    CU_ASSERT(lp_parse_duration_ms("-5s", &v) == LP_EINVAL);
    CU_ASSERT(lp_parse_duration_ms("5 s", &v) == 0 && v == 5000);
    CU_ASSERT(lp_parse_duration_ms("99999999999999999999d", &v) == LP_EINVAL);
    CU_ASSERT(lp_parse_duration_ms("9999999999999999d", &v) == LP_EINVAL); /* overflow */
    CU_ASSERT(lp_parse_size("64KiB", &v) == 0 && v == 65536);
    CU_ASSERT(lp_parse_size("5MiB", &v) == 0 && v == 5 << 20);
    CU_ASSERT(lp_parse_size("1GB", &v) == 0 && v == 1000000000);
    CU_ASSERT(lp_parse_size("512", &v) == 0 && v == 512);
    CU_ASSERT(lp_parse_size("1.5MiB", &v) == LP_EINVAL);
    CU_ASSERT(lp_parse_size("1XB", &v) == LP_EINVAL);
    CU_ASSERT(lp_parse_size("", &v) == LP_EINVAL);
}

static void test_secret_names(void)
{
    CU_ASSERT(lp_config_key_is_secret("password"));
    CU_ASSERT(lp_config_key_is_secret("sasl.username"));
    CU_ASSERT(lp_config_key_is_secret("ssl.key.password"));
    CU_ASSERT(lp_config_key_is_secret("api_key"));
    CU_ASSERT(lp_config_key_is_secret("token"));
    CU_ASSERT(lp_config_key_is_secret("client_secret"));
    CU_ASSERT(!lp_config_key_is_secret("ssl.key.location"));
    CU_ASSERT(!lp_config_key_is_secret("monkey"));
    CU_ASSERT(!lp_config_key_is_secret("brokers"));
    /* librdkafka's TLS material and passwords, whatever the case */
    CU_ASSERT(lp_config_key_is_secret("ssl.key.pem"));
    CU_ASSERT(lp_config_key_is_secret("ssl.keystore.password"));
    CU_ASSERT(lp_config_key_is_secret("ssl.certificate.pem"));
    CU_ASSERT(lp_config_key_is_secret("ssl_key"));
    CU_ASSERT(lp_config_key_is_secret("sasl.oauthbearer.client.secret"));
    CU_ASSERT(lp_config_key_is_secret("SSL.KEY.PASSWORD"));
    CU_ASSERT(!lp_config_key_is_secret("ssl.keystore.location"));
    CU_ASSERT(!lp_config_key_is_secret("ssl.ca.location"));
    char u[128];
    CU_ASSERT_EQUAL(lp_redact_url("https://elastic:s3cr@t@es.example:9200/x?y", u, sizeof(u)), 1);
    CU_ASSERT_STRING_EQUAL(u, "https://<redacted>@es.example:9200/x?y");
    CU_ASSERT_EQUAL(lp_redact_url("http://127.0.0.1:9200/a@b", u, sizeof(u)), 0);
    CU_ASSERT_STRING_EQUAL(u, "http://127.0.0.1:9200/a@b");
    CU_ASSERT_EQUAL(lp_redact_url("not a url", u, sizeof(u)), 0);
}

/* --check-config's dump hides TLS keys and URL userinfo */
static void test_dump_redacts(void)
{
    struct lp_buf errs = LP_BUF_INIT, out = LP_BUF_INIT;
    const char *names[] = {"x.yaml"};
    const char *texts[] = {
        "kafka:\n"
        "  properties: {ssl.key.pem: \"-----BEGIN PRIVATE KEY-----MIIE\", ssl.key.password: pw1,"
        " ssl.ca.location: /etc/ca.pem}\n"
        "aggregator:\n"
        "  outputs:\n"
        "    - {name: es, type: elasticsearch, url: 'https://elastic:hunter2@es:9200'}\n"};
    struct lp_config *c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(lp_config_dump(c, NULL, 1, &out), 0);
    lp_buf_putc(&out, '\0');
    CU_ASSERT_PTR_NULL(strstr(out.data, "BEGIN PRIVATE KEY"));
    CU_ASSERT_PTR_NULL(strstr(out.data, "pw1"));
    CU_ASSERT_PTR_NULL(strstr(out.data, "hunter2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "https://<redacted>@es:9200"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "/etc/ca.pem"));
    lp_config_free(c);
    lp_buf_release(&errs);
    lp_buf_release(&out);
}

/* #29: --check-config (run by the systemd units at every start, into the
 * journal) printed URLs of 2 KiB or more whole and redaction patterns (often
 * the secret they remove); insecure API server settings passed silently. */
static void test_dump_secrets_and_warnings(void)
{
    struct lp_buf errs = LP_BUF_INIT, out = LP_BUF_INIT, text = LP_BUF_INIT;
    lp_buf_puts(&text,
                "aggregator:\n  outputs:\n"
                "    - {name: es, type: elasticsearch, url: 'http://elastic:s3cr3tpw@es:9200/");
    for (int i = 0; i < 3000; i++)
        lp_buf_putc(&text, 'p');
    lp_buf_puts(&text, "'}\n"
                       "  redact:\n"
                       "    - {name: db, pattern: 'Xq9-prod-db-passw0rd'}\n"
                       "shipper:\n  kubernetes: {enabled: true, node_name: n1, "
                       "api_url: 'http://10.0.0.1:8080'}\n");
    const char *names[] = {"x.yaml"}, *texts[] = {text.data};
    struct lp_config *c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    if (!c)
        fprintf(stderr, "%s", errs.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(lp_config_dump(c, NULL, 1, &out), 0);
    lp_buf_putc(&out, '\0');
    CU_ASSERT_PTR_NULL(strstr(out.data, "s3cr3tpw"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "http://<redacted>@es:9200/ppp"));
    CU_ASSERT_PTR_NULL(strstr(out.data, "Xq9-prod-db-passw0rd"));
    lp_buf_reset(&out);
    /* the password in the URL's userinfo over http; the API server's http */
    size_t n = lp_config_warnings(c, &out);
    lp_buf_putc(&out, '\0');
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "API server (api_url) is plain HTTP"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "aggregator.outputs[0] (es): credentials"));
    CU_ASSERT_PTR_NULL(strstr(out.data, "s3cr3tpw"));
    lp_config_free(c);

    /* a kubeconfig that skips TLS verification; an output's password over http */
    char dir[] = "/tmp/lp-kc-insecure-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char kc[256], yaml[1024];
    snprintf(kc, sizeof(kc), "%s/config", dir);
    FILE *f = fopen(kc, "w");
    fputs("apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
          "clusters: [{name: c, cluster: {server: 'https://10.0.0.2:6443', "
          "insecure-skip-tls-verify: true}}]\n"
          "contexts: [{name: lab, context: {cluster: c, user: u}}]\n"
          "users: [{name: u, user: {token: t0k3n}}]\n",
          f);
    fclose(f);
    snprintf(yaml, sizeof(yaml),
             "shipper:\n  kubernetes: {enabled: true, node_name: n1, kubeconfig: %s}\n"
             "aggregator:\n  outputs:\n"
             "    - {name: es, type: elasticsearch, url: 'http://es:9200', username: u, "
             "password: pw}\n",
             kc);
    texts[0] = yaml;
    lp_buf_reset(&errs);
    c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    if (!c)
        fprintf(stderr, "%s", errs.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    lp_buf_reset(&out);
    CU_ASSERT_EQUAL(lp_config_warnings(c, &out), 2);
    lp_buf_putc(&out, '\0');
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "insecure-skip-tls-verify"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "aggregator.outputs[0] (es)"));
    lp_buf_reset(&out);
    CU_ASSERT_EQUAL(lp_config_dump(c, NULL, 1, &out), 0);
    lp_buf_putc(&out, '\0');
    CU_ASSERT_PTR_NULL(strstr(out.data, "t0k3n"));
    lp_config_free(c);
    unlink(kc);
    rmdir(dir);

    /* an s3 output: a store over plain HTTP warns (not on loopback); its
     * secret is redacted; a wrong endpoint and a key without a secret are
     * errors at their line */
    texts[0] = "aggregator:\n  outputs:\n"
               "    - {name: b, type: s3, bucket: x, endpoint: 'http://minio.lab:9000', "
               "access_key_id: AKIAEXAMPLE, secret_access_key: s3-sekr1t}\n"
               "    - {name: l, type: s3, bucket: x, endpoint: 'http://127.0.0.1:9000'}\n";
    lp_buf_reset(&errs);
    c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    lp_buf_reset(&out);
    CU_ASSERT_EQUAL(lp_config_warnings(c, &out), 1);
    lp_buf_putc(&out, '\0');
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out.data, "aggregator.outputs[0] (b): the object store is plain"));
    lp_buf_reset(&out);
    CU_ASSERT_EQUAL(lp_config_dump(c, NULL, 1, &out), 0);
    lp_buf_putc(&out, '\0');
    CU_ASSERT_PTR_NULL(strstr(out.data, "s3-sekr1t"));
    CU_ASSERT_PTR_NULL(strstr(out.data, "AKIAEXAMPLE"));
    lp_config_free(c);
    texts[0] = "aggregator:\n  outputs:\n"
               "    - {name: b, type: s3, bucket: x, endpoint: 'minio:9000', "
               "access_key_id: k}\n"
               "    - {name: n, type: s3}\n";
    lp_buf_reset(&errs);
    c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    CU_ASSERT_PTR_NULL(c);
    lp_buf_putc(&errs, '\0');
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "x.yaml:3:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "endpoint must start with http:// or https://"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "access_key_id without secret_access_key"));
    CU_ASSERT_PTR_NOT_NULL(strstr(errs.data, "type s3 needs a bucket"));
    lp_config_free(c);
    lp_buf_release(&errs);
    lp_buf_release(&out);
    lp_buf_release(&text);
}

static void test_reference_is_fresh(void)
{
    struct lp_buf ref = LP_BUF_INIT;
    lp_config_reference(&ref);
    char *doc = lp_test_read_source("docs/config.md", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    if (strcmp(doc, ref.data) != 0)
        fprintf(stderr,
                "\ndocs/config.md is stale: run `cmake --build build --target config-doc`\n");
    CU_ASSERT_STRING_EQUAL(doc, ref.data);
    CU_ASSERT_PTR_NOT_NULL(strstr(ref.data, "| `shipper.inputs[].paths` | list of strings |"));
    free(doc);
    lp_buf_release(&ref);
}

/* no fixed number of policies (a 256 KiB stack array once capped it at 64);
 * the checks between policies still run over all of them */
static void test_many_policies(void)
{
    struct lp_buf y = LP_BUF_INIT, errs = LP_BUF_INIT;
    lp_buf_puts(&y, "retention:\n  policies:\n");
    for (int i = 0; i < 200; i++)
        lp_buf_appendf(&y, "    - {name: p%d, path: /data/seg%d, archive_after: 1d}\n", i, i);
    struct lp_config *c = load1(y.data, &errs);
    CU_ASSERT_PTR_NOT_NULL(c);
    if (c)
        CU_ASSERT_EQUAL(c->retention.n_policies, 200);
    lp_config_free(c);
    lp_buf_puts(&y, "    - {name: late, path: /data/seg150/x, archive_after: 2d}\n");
    lp_buf_reset(&errs);
    c = load1(y.data, &errs);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(errs.data, "retention.policies[200] 'late' overlaps policy 'p150'"));
    lp_config_free(c);
    lp_buf_release(&y);
    lp_buf_release(&errs);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"defaults", test_defaults},
        {"values and substitution", test_values_and_substitution},
        {"merge", test_merge},
        {"multiline per input", test_input_multiline},
        {"errors", test_errors},
        {"any number of retention policies", test_many_policies},
        {"file substitution", test_file_substitution},
        {"each daemon its own sections' secrets", test_sections_in_use},
        {"every independent mistake at once", test_all_mistakes_at_once},
        {"units", test_units},
        {"kubeconfig", test_kubeconfig},
        {"secret names", test_secret_names},
        {"dump redacts keys and URL userinfo", test_dump_redacts},
        {"dump: long URLs, redact patterns; insecure settings warned",
         test_dump_secrets_and_warnings},
        {"reference is fresh", test_reference_is_fresh},
        {NULL, NULL},
    };
    return lp_test_run("config", tests);
}
