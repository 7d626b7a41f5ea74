/* Redaction (aggregator/redact.c): the built-in detectors against what they
 * must and must not take, admin patterns with group references, the event
 * walk (content redacted, identity untouched, keys, kept values), the fast
 * path agreeing with the general one, failing closed at a PCRE2 limit,
 * threads, and the dead letter. */
#include "lp_deadletter.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_ecs.h"
#include "lp_metrics.h"
#include "lp_msgparse.h"
#include "lp_test.h"
#include "lp_time.h"
#include "lp_wire.h"
#include "pipeline.h"
#include "redact.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define load lp_test_config
#define load_errors lp_test_config_errors

/* One detector over s: the result (malloc'd). */
static char *detect(const char *detector, const char *s)
{
    struct lp_config_redact rule = {.name = (char *)detector, .detector = (char *)detector};
    char err[256];
    struct agg_redactor *rd = agg_redactor_new(&rule, 1, NULL, 0, 0, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(rd);
    const char *res;
    size_t n;
    char *out;
    if (agg_redact_message(rd, s, strlen(s), &res, &n)) {
        out = malloc(n + 1);
        memcpy(out, res, n);
        out[n] = '\0';
    } else {
        out = strdup(s);
    }
    agg_redactor_free(rd);
    return out;
}

static void expect(const char *detector, const char *in, const char *want)
{
    char *got = detect(detector, in);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n%s(\"%s\"): got \"%s\", want \"%s\"\n", detector, in, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

static void test_detectors(void)
{
    expect("email", "mail alice.b+x@mail.example.com now", "mail [redacted:email] now");
    expect("email", "<bob@shop.io>, carol_9@EXAMPLE.ORG", "<[redacted:email]>, [redacted:email]");
    expect("email", "user@localhost and a@b", "user@localhost and a@b");
    expect("email", "no at sign here at all", "no at sign here at all");
    /* a local part beyond RFC 5321's 64 characters, and URL-encoded (#29) */
    expect("email",
           "to a123456789b123456789c123456789d123456789e123456789f123456789g123456789@ex.com ok",
           "to [redacted:email] ok");
    expect("email", "GET /u?mail=alice%40example.com&x=1", "GET /u?mail=[redacted:email]&x=1");
    expect("email", "100%40 of nothing", "100%40 of nothing");

    expect("ipv4", "from 10.1.2.3:80 to 192.168.0.254.",
           "from [redacted:ipv4]:80 to [redacted:ipv4].");
    expect("ipv4", "version 300.1.2.3 and 1.2.3", "version 300.1.2.3 and 1.2.3");
    expect("ipv4", "id 12345.1.2.3", "id 12345.1.2.3");

    expect("ipv6", "addr 2001:db8::1 ok", "addr [redacted:ipv6] ok");
    expect("ipv6", "[fe80::1ff:fe23:4567:890a]:443", "[[redacted:ipv6]]:443");
    expect("ipv6", "mapped ::ffff:192.168.1.1 x", "mapped [redacted:ipv6] x");
    expect("ipv6", "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "full [redacted:ipv6]");
    expect("ipv6", "std::string at 12:34:56 mac aa:bb:cc:dd:ee:ff a :: b",
           "std::string at 12:34:56 mac aa:bb:cc:dd:ee:ff a :: b");

    expect("card", "card 4111 1111 1111 1111 end", "card [redacted:card] end");
    expect("card", "mc 5500-0000-0000-0004, amex 378282246310005",
           "mc [redacted:card], amex [redacted:card]");
    expect("card", "luhn fails 4111111111111112", "luhn fails 4111111111111112");
    expect("card", "order 1234567890123452 ts 17958600001234567890",
           "order 1234567890123452 ts 17958600001234567890");
    /* next to another number: the validator runs inside the match, so a
     * run that fails Luhn as a whole is tried shorter and later (#29) */
    expect("card", "charged card 4111111111111111 100 USD", "charged card [redacted:card] 100 USD");
    expect("card", "order 12 4111 1111 1111 1111", "order 12 [redacted:card]");
    expect("card", "qty 7 5500-0000-0000-0004 9", "qty 7 [redacted:card] 9");

    expect("bearer", "Authorization: Bearer abc.def-ghi_123==", "Authorization: [redacted:bearer]");
    expect("bearer", "authorization: bearer  0123456789abcdef", "authorization: [redacted:bearer]");
    expect("bearer", "the bearer of bad news", "the bearer of bad news");

    expect("jwt", "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln_-x; next",
           "token=[redacted:jwt]; next");
    expect("jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "[redacted:jwt]");
    expect("jwt", "xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
           "xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig");

    expect("aws_key", "key AKIAIOSFODNN7EXAMPLE used", "key [redacted:aws_key] used");
    expect("aws_key", "AKIAIOSFODNN7EXAMPLEX and akiaiosfodnn7example",
           "AKIAIOSFODNN7EXAMPLEX and akiaiosfodnn7example");

    /* not UTF-8 around a match: the match still goes, the bytes stay */
    expect("email", "\xff\xfe bob@shop.io \xc3", "\xff\xfe [redacted:email] \xc3");
}

static void test_patterns_and_config(void)
{
    struct lp_config *c =
        load("aggregator:\n"
             "  redact:\n"
             "    - {name: user, pattern: '(user=)\\w+', replacement: '$${1}***'}\n"
             "    - {name: pin, pattern: 'pin:(?<d>\\d{4})', replacement: 'pin:$$'}\n"
             "    - {name: mail, detector: email, replacement: '<e-mail>'}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    struct agg_redactor *rd = agg_redactor_new(c->aggregator.redact, c->aggregator.n_redact, NULL,
                                               0, 0, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(rd);
    const char *in = "login user=alice pin:1234 from a@b.io";
    const char *res;
    size_t n;
    CU_ASSERT_EQUAL(agg_redact_message(rd, in, strlen(in), &res, &n), 1);
    CU_ASSERT_EQUAL(n, strlen("login user=*** pin:$ from <e-mail>"));
    CU_ASSERT_NSTRING_EQUAL(res, "login user=*** pin:$ from <e-mail>", n);
    CU_ASSERT_EQUAL(agg_redact_message(rd, "nothing", 7, &res, &n), 0);
    agg_redactor_free(rd);
    lp_config_free(c);

    /* configuration errors, with their place */
    char *e = load_errors("aggregator:\n  redact:\n    - {name: x}\n");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(e, "test.yaml:3:7: aggregator.redact[0]: needs exactly one of detector, pattern"));
    free(e);
    e = load_errors("aggregator:\n  redact:\n    - {name: x, detector: email, pattern: a}\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "needs exactly one of detector, pattern"));
    free(e);
    e = load_errors("aggregator:\n  redact:\n    - {name: x, detector: phone}\n");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(e, "'phone' is not one of email|ipv4|ipv6|card|bearer|jwt|aws_key"));
    free(e);
    e = load_errors("aggregator:\n  redact:\n    - {name: x, pattern: '(a'}\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "aggregator.redact[0]"));
    free(e);
    e = load_errors("aggregator:\n  redact:\n    - {name: x, pattern: '(a)', replacement: '$2'}\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "test.yaml:3:46: aggregator.redact[0]: replacement refers to "
                                     "a group the pattern does not have"));
    free(e);
    e = load_errors(
        "aggregator:\n  redact:\n    - {name: x, pattern: '(a)', replacement: '$${nope}'}\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "named group"));
    free(e);
    e = load_errors("aggregator:\n  redact:\n    - {name: x, pattern: 'a', replacement: 'US$'}\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "write $$ for $"));
    free(e);
    e = load_errors("aggregator:\n  redact:\n    - {name: x, detector: email, fields: [a..b]}\n"
                    "    - {name: x, detector: card}\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "'a..b' is not a dotted field path"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "rule 'x' is defined twice"));
    free(e);
}

static const char *const OUTS[] = {"files"};

static const char *EVENT_YAML =
    "aggregator:\n"
    "  parsers: [{name: js, kind: json, keep_original: true}, {name: acc, kind: access, "
    "on_failure: mark}]\n"
    "  routes:\n"
    "    - {name: json, match: [{field: kubernetes.container.name, equals: api}], parser: js,"
    " outputs: [files]}\n"
    "    - {name: access, match: [{field: kubernetes.container.name, equals: web}], parser: acc,"
    " outputs: [files]}\n"
    "  redact:\n"
    "    - {name: email, detector: email}\n"
    "    - {name: ip, detector: ipv4}\n"
    "    - {name: card, detector: card}\n"
    "    - {name: secret, pattern: 'hunter2', fields: [user.password, message]}\n"
    "  enrich: {ingest_time: false}\n"
    "  outputs: [{name: files, type: file, path: /tmp/x}]\n";

static json_t *event_of(struct agg_pipeline *p, const struct lp_wire_source *src, const char *line)
{
    struct lp_wire_record r = {.ts_ns = 1795860000LL * LP_NS_PER_SEC,
                               .stream = "stdout",
                               .offset = 77,
                               .message = line,
                               .message_len = strlen(line)};
    struct lp_buf scratch;
    lp_buf_init(&scratch, 0);
    size_t route;
    int failed;
    enum agg_verdict v;
    json_t *ev =
        agg_pipeline_event(p, src, &r, NULL, lp_time_real_ns(), &scratch, &route, &v, &failed);
    lp_buf_release(&scratch);
    CU_ASSERT_EQUAL(v, AGG_KEEP);
    return ev;
}

/* 1 when any string (or key) of v contains needle. */
static int contains(json_t *v, const char *needle)
{
    const char *k;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_STRING: return strstr(json_string_value(v), needle) != NULL;
    case JSON_OBJECT:
        json_object_foreach(v, k, x) if (strstr(k, needle) || contains(x, needle)) return 1;
        return 0;
    case JSON_ARRAY: json_array_foreach(v, i, x) if (contains(x, needle)) return 1; return 0;
    default: return 0;
    }
}

static void test_event_walk(void)
{
    struct lp_config *c = load(EVENT_YAML);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, OUTS, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    /* identity fields that look like what the rules take: they stay */
    struct lp_wire_source src = {.source_id = "0123456789abcdef0123456789abcdef",
                                 .host = "10.0.0.7",
                                 .path = "/var/log/containers/a@b.io_shop_api-1.log",
                                 .k8s_namespace = "shop",
                                 .k8s_pod_name = "10.9.9.9",
                                 .k8s_container_name = "api"};
    const char *line = "{\"message\":\"login by eve@corp.example from 10.2.3.4\","
                       "\"user\":{\"email\":\"eve@corp.example\",\"password\":\"hunter2\","
                       "\"ips\":[\"10.2.3.4\",\"ok\"]},"
                       "\"cards\":{\"4111 1111 1111 1111\":1,\"4111-1111-1111-1111\":2},"
                       "\"host\":{\"name\":\"spoof 10.3.3.3\"},\"note\":\"hunter2 stays here\"}";
    json_t *ev = event_of(p, &src, line);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "message")),
                           "login by [redacted:email] from [redacted:ip]");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "user.email")),
                           "[redacted:email]");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "user.password")),
                           "[redacted:secret]");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(lp_json_get_path(ev, "user.ips"), 0)),
                           "[redacted:ip]");
    /* keys: two that redact alike stay apart */
    json_t *fr = lp_json_get_path(ev, "cards");
    CU_ASSERT_EQUAL(json_object_size(fr), 2);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(fr, "[redacted:card]"));
    CU_ASSERT_PTR_NOT_NULL(json_object_get(fr, "[redacted:card]~2"));
    /* the secret rule names its fields: elsewhere hunter2 stays */
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "note")), "hunter2 stays here");
    /* the original line is content: redacted too */
    const char *orig = json_string_value(lp_json_get_path(ev, "event.original"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
    CU_ASSERT_PTR_NULL(strstr(orig, "eve@corp.example"));
    CU_ASSERT_PTR_NULL(strstr(orig, "10.2.3.4"));
    /* the line's host.name went to the kept list, redacted there */
    CU_ASSERT_FALSE(contains(lp_json_get_path(ev, "logpipe.kept"), "10.3.3.3"));
    /* what the pipeline owns is untouched */
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "host.name")), "10.0.0.7");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "kubernetes.pod.name")),
                           "10.9.9.9");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "log.file.path")), src.path);
    json_decref(ev);

    /* a line the parser cannot read: error.message and event.original redacted */
    src.k8s_container_name = "web";
    ev = event_of(p, &src, "GET by mallory@evil.example from 10.6.6.6");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_FALSE(contains(ev, "mallory@evil.example"));
    CU_ASSERT_FALSE(contains(ev, "10.6.6.6"));
    CU_ASSERT_PTR_NOT_NULL(lp_json_get_path(ev, "error.message"));
    json_decref(ev);
    agg_pipeline_free(p);
    lp_config_free(c);
}

/* Values content can put where a string rule never looked (#29): numbers
 * (JSON, and logfmt's digit strings turned integers), dotted keys split
 * into nested objects before redaction, numbers in arrays. */
static void test_numbers_and_dotted_keys(void)
{
    const char *yaml =
        "aggregator:\n"
        "  parsers: [{name: js, kind: json}, {name: lf, kind: logfmt}]\n"
        "  routes:\n"
        "    - {name: json, match: [{field: kubernetes.container.name, equals: api}], parser: js,"
        " outputs: [files]}\n"
        "    - {name: logfmt, match: [{field: kubernetes.container.name, equals: lf}], parser: lf,"
        " outputs: [files]}\n"
        "  redact:\n"
        "    - {name: email, detector: email}\n"
        "    - {name: card, detector: card}\n"
        "    - {name: acct, pattern: '\\b99887766\\b'}\n"
        "  enrich: {ingest_time: false}\n"
        "  outputs: [{name: files, type: file, path: /tmp/x}]\n";
    struct lp_config *c = load(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, OUTS, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct lp_wire_source src = {.source_id = "0123456789abcdef0123456789abcdef",
                                 .host = "n1",
                                 .path = "/var/log/containers/x_shop_api-1.log",
                                 .k8s_namespace = "shop",
                                 .k8s_pod_name = "x",
                                 .k8s_container_name = "api"};
    json_t *ev = event_of(p, &src,
                          "{\"card\":4111111111111111,\"big\":6222222222222222222,"
                          "\"nums\":[1,5500000000000004],\"acct\":99887766,\"n\":42,"
                          "\"users\":{\"alice@example.com\":\"active\","
                          "\"x\":{\"bob.smith@corp.example.org\":{\"n\":1}}},"
                          "\"a.b\":{\"carol@ex.io\":2}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    char *dump = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    CU_ASSERT_PTR_NULL(strstr(dump, "4111111111111111"));
    CU_ASSERT_PTR_NULL(strstr(dump, "5500000000000004"));
    CU_ASSERT_PTR_NULL(strstr(dump, "6222222222222222222")); /* 19 digits */
    CU_ASSERT_PTR_NULL(strstr(dump, "99887766"));
    CU_ASSERT_PTR_NULL(strstr(dump, "alice"));
    CU_ASSERT_PTR_NULL(strstr(dump, "bob.smith"));
    CU_ASSERT_PTR_NULL(strstr(dump, "smith@corp"));
    CU_ASSERT_PTR_NULL(strstr(dump, "carol"));
    if (strstr(dump, "alice") || strstr(dump, "4111"))
        printf("\n%s\n", dump);
    free(dump);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "card")), "[redacted:card]");
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "acct")), "[redacted:acct]");
    CU_ASSERT_EQUAL(json_integer_value(lp_json_get_path(ev, "n")), 42); /* a number stays one */
    CU_ASSERT_EQUAL(json_integer_value(json_array_get(lp_json_get_path(ev, "nums"), 0)), 1);
    CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(ev, "users.[redacted:email]")),
                           "active");
    json_decref(ev);

    src.k8s_container_name = "lf";
    ev = event_of(p, &src, "msg=pay card=4111111111111111 to=dave@shop.example acct=99887766");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    dump = json_dumps(ev, JSON_COMPACT);
    CU_ASSERT_PTR_NULL(strstr(dump, "4111111111111111"));
    CU_ASSERT_PTR_NULL(strstr(dump, "dave@"));
    CU_ASSERT_PTR_NULL(strstr(dump, "99887766"));
    free(dump);
    json_decref(ev);
    agg_pipeline_free(p);
    lp_config_free(c);
}

/* The fast path (no parser) renders the redacted message exactly as the
 * general path does. */
static void test_fast_path_agrees(void)
{
    struct lp_config *c = load("aggregator:\n"
                               "  redact: [{name: e, detector: email}, {name: c, detector: card},"
                               " {name: n, pattern: '\\d{3}', fields: [user]}]\n"
                               "  enrich: {ingest_time: false}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    const char *outs[] = {"files"};
    struct agg_pipeline *p = agg_pipeline_new(&c->aggregator, outs, 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct lp_wire_source src = {.source_id = "0123456789abcdef0123456789abcdef",
                                 .host = "n1",
                                 .path = "/var/log/containers/p_ns_c-1.log",
                                 .k8s_namespace = "ns"};
    const char *lines[] = {"paid with 4111-1111-1111-1111 by x@y.org (ref 123)", "nothing to see",
                           "\"quoted\" \\ x@y.org\ttab \xe2\x82\xac", "bad utf8 \xff x@y.org \xc3"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        /* as the decoder gives the shipper's lines: with the message's
         * escaped form, which the fast path copies when nothing changed */
        struct lp_buf esc = LP_BUF_INIT;
        CU_ASSERT_EQUAL_FATAL(lp_buf_append_json_string(&esc, lines[i], strlen(lines[i])), 0);
        struct lp_wire_record r = {.ts_ns = 1795860000LL * LP_NS_PER_SEC,
                                   .stream = "stderr",
                                   .offset = i,
                                   .message = lines[i],
                                   .message_len = strlen(lines[i]),
                                   .message_json = esc.data + 1,
                                   .message_json_len = esc.len - 2};
        size_t route = agg_pipeline_match_record(p, &src, &r);
        CU_ASSERT_EQUAL_FATAL(route, 0);
        CU_ASSERT_TRUE(agg_pipeline_route_fast(p, route));
        struct lp_buf fast, slow;
        lp_buf_init(&fast, 0);
        lp_buf_init(&slow, 0);
        CU_ASSERT_EQUAL(agg_pipeline_render(p, &src, &r, NULL, NULL, &fast), 0);
        int failed;
        enum agg_verdict v;
        json_t *ev = agg_pipeline_event(p, &src, &r, NULL, 0, &slow, &route, &v, &failed);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
        json_t *fev = json_loadb(fast.data, fast.len, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(fev);
        CU_ASSERT_TRUE(json_equal(ev, fev));
        CU_ASSERT_FALSE(contains(fev, "x@y.org"));
        CU_ASSERT_FALSE(contains(fev, "4111"));
        if (i == 0) /* the digits rule names user: the message keeps 123 */
            CU_ASSERT_PTR_NOT_NULL(
                strstr(json_string_value(json_object_get(fev, "message")), "(ref 123)"));
        json_decref(ev);
        json_decref(fev);
        lp_buf_release(&fast);
        lp_buf_release(&slow);
        lp_buf_release(&esc);
    }
    agg_pipeline_free(p);
    lp_config_free(c);
}

/* A rule whose matching a limit stops replaces the whole value: closed,
 * never open. */
static void test_fails_closed(void)
{
    struct lp_config_redact rule = {.name = "nested", .pattern = "(a+)+$"};
    char err[256];
    struct agg_redactor *rd = agg_redactor_new(&rule, 1, NULL, 1000, 100, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(rd);
    char s[64];
    memset(s, 'a', 40);
    memcpy(s + 40, "b secret", 9);
    const char *res;
    size_t n;
    CU_ASSERT_EQUAL(agg_redact_message(rd, s, strlen(s), &res, &n), 1);
    CU_ASSERT_NSTRING_EQUAL(res, "[redacted:nested]", n);
    CU_ASSERT_EQUAL(n, strlen("[redacted:nested]"));
    agg_redactor_free(rd);
}

struct thr {
    const struct agg_redactor *rd;
    int bad;
};

static void *redact_many(void *arg)
{
    struct thr *t = arg;
    char line[256];
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(line, sizeof(line),
                         "user%d@shop.example paid with 4111 1111 1111 1111 "
                         "from 10.0.%d.%d",
                         i, i % 250, i % 200);
        const char *res;
        size_t rn;
        if (!agg_redact_message(t->rd, line, (size_t)n, &res, &rn) || memmem(res, rn, "@shop", 5) ||
            memmem(res, rn, "4111", 4) || memmem(res, rn, "10.0.", 5))
            t->bad++;
    }
    return NULL;
}

static void test_threads(void)
{
    struct lp_config_redact rules[] = {{.name = "e", .detector = "email"},
                                       {.name = "c", .detector = "card"},
                                       {.name = "i", .detector = "ipv4"}};
    char err[256];
    struct agg_redactor *rd = agg_redactor_new(rules, 3, NULL, 0, 0, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(rd);
    pthread_t th[4];
    struct thr t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){rd, 0};
        pthread_create(&th[i], NULL, redact_many, &t[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(t[i].bad, 0);
    }
    agg_redactor_free(rd);
}

/* What the dead letter holds under redaction rules: the event redacted as
 * an event, a raw value redacted as bytes, and said so. */
static void test_dead_letter(void)
{
    char dir[] = "/tmp/lp-redact-dlq-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "aggregator:\n  dead_letter_dir: %s\n  redact: [{name: e, detector: email}]\n", dir);
    struct lp_config *c = load(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[256];
    struct lp_metrics *m = lp_metrics_new();
    struct lp_dlq *d = lp_dlq_new(c, m, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct agg_redactor *rd =
        agg_redactor_new(c->aggregator.redact, 1, NULL, 0, 0, err, sizeof(err));
    struct lp_dlq_redactor dr = agg_redactor_dlq(rd);
    lp_dlq_set_redactor(d, &dr);
    const char *ev =
        "{\"event\":{\"id\":\"00000000000000000000000000000001\"},"
        "\"message\":\"mapping error for ann@x.example\",\"a\":{\"b\":\"ann@x.example\"}}";
    struct lp_dlq_entry e1 = {
        "output", "mapper_parsing_exception", "es", "t", 0, 1, ev, strlen(ev), NULL, 0};
    CU_ASSERT_EQUAL(lp_dlq_write(d, &e1, NULL), 0);
    const char *raw = "not ours: {\"mail\":\"ann@x.example\"}";
    struct lp_dlq_entry e2 = {"decode", "no header", NULL, "t", 0, 2, NULL, 0, raw, strlen(raw)};
    CU_ASSERT_EQUAL(lp_dlq_write(d, &e2, NULL), 0);
    lp_dlq_free(d);
    agg_redactor_free(rd);
    lp_metrics_free(m);
    /* read the day's file */
    DIR *dd = opendir(dir);
    struct dirent *de;
    char path[1024] = "";
    while ((de = readdir(dd)) != NULL)
        if (strncmp(de->d_name, "dead-letter-", 12) == 0)
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
    closedir(dd);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        n++;
        CU_ASSERT_PTR_NULL(strstr(line, "ann@x.example"));
        CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"redacted\":true"));
        json_t *j = json_loads(line, 0, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        if (n == 1) {
            CU_ASSERT_STRING_EQUAL(json_string_value(lp_json_get_path(j, "event.a.b")),
                                   "[redacted:e]");
        } else {
            /* base64 of the redacted value */
            const char *b64 = json_string_value(json_object_get(j, "raw_base64"));
            CU_ASSERT_PTR_NOT_NULL_FATAL(b64);
            CU_ASSERT_STRING_EQUAL(b64, "bm90IG91cnM6IHsibWFpbCI6IltyZWRhY3RlZDplXSJ9");
        }
        json_decref(j);
    }
    fclose(f);
    CU_ASSERT_EQUAL(n, 2);
    unlink(path);
    rmdir(dir);
    lp_config_free(c);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"built-in detectors", test_detectors},
        {"patterns, replacements and config errors", test_patterns_and_config},
        {"event walk: content redacted, identity untouched", test_event_walk},
        {"numbers and dotted keys", test_numbers_and_dotted_keys},
        {"fast path renders what the general path makes", test_fast_path_agrees},
        {"a limit fails closed", test_fails_closed},
        {"threads", test_threads},
        {"dead letter", test_dead_letter},
        {NULL, NULL},
    };
    return lp_test_run("redact", tests);
}
