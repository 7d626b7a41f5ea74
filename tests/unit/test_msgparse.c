/* Message parsers (json, logfmt, regex, syslog, access) and timestamp
 * formats: fields as nested ECS objects, failures that change nothing. */
#include "lp_error.h"
#include "lp_metrics.h"
#include "lp_msgparse.h"
#include "lp_regex.h"
#include "lp_test.h"
#include "lp_time.h"
#include "lp_timestamp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t NOW = 1795850460LL * 1000000000LL; /* 2026-11-28T07:21:00Z */

static struct lp_msgparser *mk(const char *kind, const char *pattern, const char *target,
                               const char *tf, const char *tfmt)
{
    struct lp_msgparser_config c = {kind, pattern, target, tf, tfmt};
    char err[256];
    struct lp_msgparser *p = lp_msgparser_new(&c, err, sizeof(err));
    if (!p)
        fprintf(stderr, "\n%s\n", err);
    return p;
}

static json_t *run(struct lp_msgparser *p, const char *msg, int want_rc, char *why)
{
    json_t *ev = json_pack("{s:s,s:s}", "message", msg, "@timestamp", "2026-01-01T00:00:00Z");
    int rc = lp_msgparse(p, msg, strlen(msg), ev, NOW, why, 256);
    if (rc != want_rc)
        fprintf(stderr, "\nparse '%s': rc %d (%s)\n", msg, rc, why);
    CU_ASSERT_EQUAL(rc, want_rc);
    return ev;
}

static const char *str(json_t *ev, const char *path)
{
    return json_string_value(lp_json_get_path(ev, path));
}

static json_int_t num(json_t *ev, const char *path)
{
    return json_integer_value(lp_json_get_path(ev, path));
}

static void test_json(void)
{
    char why[256];
    struct lp_msgparser *p = mk("json", NULL, NULL, "ts", "rfc3339");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    json_t *ev = run(
        p,
        "{\"level\":\"warn\",\"msg\":\"x\",\"message\":\"inner\",\"http.response.status_code\":503,"
        "\"ts\":\"2026-11-28T07:00:00.5Z\",\"user\":{\"id\":7}}",
        0, why);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "inner");
    CU_ASSERT_EQUAL(num(ev, "http.response.status_code"), 503);
    CU_ASSERT_EQUAL(num(ev, "user.id"), 7);
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2026-11-28T07:00:00.500000000Z");
    json_decref(ev);
    /* failures leave the event alone */
    ev = run(p, "{\"a\":", LP_ECORRUPT, why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "invalid JSON"));
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "{\"a\":");
    CU_ASSERT_EQUAL(json_object_size(ev), 2);
    lp_msgparse_mark_failed(p, ev, "{\"a\":", 5, why);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(ev, "error.message"), "json parser: invalid JSON"));
    CU_ASSERT_STRING_EQUAL(str(ev, "event.original"), "{\"a\":");
    json_decref(ev);
    ev = run(p, "[1,2]", LP_ECORRUPT, why);
    json_decref(ev);
    ev = run(p, "{\"ts\":\"yesterday\"}", LP_ECORRUPT, why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "does not match format 'rfc3339'"));
    json_decref(ev);
    lp_msgparser_free(p);
    /* under a target key */
    p = mk("json", NULL, "app", NULL, NULL);
    ev = run(p, "{\"k\":\"v\"}", 0, why);
    CU_ASSERT_STRING_EQUAL(str(ev, "app.k"), "v");
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "{\"k\":\"v\"}");
    json_decref(ev);
    lp_msgparser_free(p);
}

static void test_logfmt(void)
{
    char why[256];
    struct lp_msgparser *p = mk("logfmt", NULL, NULL, "time", "epoch");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    json_t *ev = run(p,
                     "level=info msg=\"order placed\" order_id=42 user=café cached "
                     "time=1795850400123 escaped=\"a \\\"b\\\"\"",
                     0, why);
    CU_ASSERT_STRING_EQUAL(str(ev, "level"), "info");
    /* the parser's view: msg is a field (the aggregator's message_keys make it the message) */
    CU_ASSERT_STRING_EQUAL(str(ev, "msg"), "order placed");
    CU_ASSERT_EQUAL(num(ev, "order_id"), 42);
    CU_ASSERT_STRING_EQUAL(str(ev, "user"), "café");
    CU_ASSERT(json_is_true(lp_json_get_path(ev, "cached")));
    CU_ASSERT_STRING_EQUAL(str(ev, "escaped"), "a \"b\"");
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2026-11-28T07:20:00.123000000Z"); /* epoch ms */
    json_decref(ev);
    ev = run(p, "a=\"unterminated", LP_ECORRUPT, why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "unterminated"));
    json_decref(ev);
    ev = run(p, "   ", LP_ECORRUPT, why);
    json_decref(ev);
    lp_msgparser_free(p);
}

static void test_regex(void)
{
    char why[256], err[256];
    struct lp_msgparser *p = mk(
        "regex", "^(?<log__level>[A-Z]+) \\[(?<process__thread__name>[^\\]]+)\\] (?<message>.*)$",
        NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    json_t *ev = run(p, "ERROR [worker-3] disk full", 0, why);
    CU_ASSERT_STRING_EQUAL(str(ev, "log.level"), "ERROR");
    CU_ASSERT_STRING_EQUAL(str(ev, "process.thread.name"), "worker-3");
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "disk full");
    json_decref(ev);
    ev = run(p, "lowercase line", LP_ECORRUPT, why);
    CU_ASSERT_STRING_EQUAL(why, "no match");
    json_decref(ev);
    /* a line crafted against a backtracking pattern: the match limit stops
     * it (kept unparsed by the caller, counted) instead of a worker
     * spending seconds on it */
    struct lp_metrics *mx = lp_metrics_new();
    struct lp_counter *limited = lp_metrics_counter(mx, "t_limited_total", "t", NULL);
    lp_regex_setup(LP_REGEX_MATCH_LIMIT, LP_REGEX_DEPTH_LIMIT, limited);
    struct lp_msgparser *bt = mk("regex", "^(?<k>(a|aa)+)+$", NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bt);
    char evil[64];
    memset(evil, 'a', 48);
    memcpy(evil + 48, "!", 2);
    ev = run(bt, evil, LP_ECORRUPT, why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "match limit"));
    CU_ASSERT_EQUAL(lp_counter_get(limited), 1);
    json_decref(ev);
    ev = run(bt, "aaaa", 0, why); /* an ordinary line still matches */
    CU_ASSERT_STRING_EQUAL(str(ev, "k"), "aaaa");
    json_decref(ev);
    lp_msgparser_free(bt);
    lp_regex_setup(LP_REGEX_MATCH_LIMIT, LP_REGEX_DEPTH_LIMIT, NULL);
    lp_metrics_free(mx);
    lp_msgparser_free(p);
    struct lp_msgparser_config bad = {"regex", "(?<x>[", NULL, NULL, NULL};
    CU_ASSERT_PTR_NULL(lp_msgparser_new(&bad, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "regex: missing terminating ]"));
    struct lp_msgparser_config nogroups = {"regex", "^x$", NULL, NULL, NULL};
    CU_ASSERT_PTR_NULL(lp_msgparser_new(&nogroups, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no named groups"));
    struct lp_msgparser_config unknown = {"xml", NULL, NULL, NULL, NULL};
    CU_ASSERT_PTR_NULL(lp_msgparser_new(&unknown, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown parser 'xml'"));
    struct lp_msgparser_config badtime = {"json", NULL, NULL, "t", "%Q"};
    CU_ASSERT_PTR_NULL(lp_msgparser_new(&badtime, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unsupported time format"));
}

static void test_access(void)
{
    char why[256];
    struct lp_msgparser *p = mk("access", NULL, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    json_t *ev = run(p,
                     "10.0.0.7 - alice [28/Nov/2026:08:21:00 +0100] \"GET /cart?id=1 HTTP/1.1\" "
                     "200 512 \"https://shop/\" \"curl/8.5.0\"",
                     0, why);
    CU_ASSERT_STRING_EQUAL(str(ev, "source.address"), "10.0.0.7");
    CU_ASSERT_STRING_EQUAL(str(ev, "user.name"), "alice");
    CU_ASSERT_STRING_EQUAL(str(ev, "http.request.method"), "GET");
    CU_ASSERT_STRING_EQUAL(str(ev, "url.original"), "/cart?id=1");
    CU_ASSERT_STRING_EQUAL(str(ev, "http.version"), "1.1");
    CU_ASSERT_EQUAL(num(ev, "http.response.status_code"), 200);
    CU_ASSERT_EQUAL(num(ev, "http.response.body.bytes"), 512);
    CU_ASSERT_STRING_EQUAL(str(ev, "http.request.referrer"), "https://shop/");
    CU_ASSERT_STRING_EQUAL(str(ev, "user_agent.original"), "curl/8.5.0");
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2026-11-28T07:21:00.000000000Z");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "time"));
    json_decref(ev);
    /* common log format, no body */
    ev = run(p, "::1 - - [28/Nov/2026:07:21:00 +0000] \"HEAD / HTTP/1.0\" 304 -", 0, why);
    CU_ASSERT_EQUAL(num(ev, "http.response.status_code"), 304);
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "http.response.body.bytes"));
    json_decref(ev);
    ev = run(p, "not an access log", LP_ECORRUPT, why);
    json_decref(ev);
    lp_msgparser_free(p);
}

static void test_syslog(void)
{
    char why[256];
    struct lp_msgparser *p = mk("syslog", NULL, NULL, NULL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    json_t *ev = run(p,
                     "<165>1 2026-11-28T07:21:00.003Z web-1 nginx 1234 ID47 [exampleSDID@32473 "
                     "iut=\"3\" eventSource=\"App\"] request done",
                     0, why);
    CU_ASSERT_EQUAL(num(ev, "log.syslog.facility.code"), 20);
    CU_ASSERT_EQUAL(num(ev, "log.syslog.severity.code"), 5);
    CU_ASSERT_STRING_EQUAL(str(ev, "host.hostname"), "web-1");
    CU_ASSERT_STRING_EQUAL(str(ev, "process.name"), "nginx");
    CU_ASSERT_EQUAL(num(ev, "process.pid"), 1234);
    CU_ASSERT_STRING_EQUAL(str(ev, "event.code"), "ID47");
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "request done");
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2026-11-28T07:21:00.003000000Z");
    CU_ASSERT_PTR_NOT_NULL(strstr(str(ev, "log.syslog.structured_data"), "iut=\"3\""));
    json_decref(ev);
    ev = run(p, "<34>1 - - - - - - no fields", 0, why);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "no fields");
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2026-01-01T00:00:00Z"); /* kept */
    json_decref(ev);
    /* RFC 3164, December line read in late November: the closest year */
    ev = run(p, "<13>Nov 28 07:20:59 node-3 sshd[811]: Accepted publickey for root", 0, why);
    CU_ASSERT_STRING_EQUAL(str(ev, "host.hostname"), "node-3");
    CU_ASSERT_STRING_EQUAL(str(ev, "process.name"), "sshd");
    CU_ASSERT_EQUAL(num(ev, "process.pid"), 811);
    CU_ASSERT_STRING_EQUAL(str(ev, "message"), "Accepted publickey for root");
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2026-11-28T07:20:59.000000000Z");
    json_decref(ev);
    ev = run(p, "Dec 31 23:59:59 node-3 cron: tick", 0, why); /* no PRI; last year */
    CU_ASSERT_STRING_EQUAL(str(ev, "@timestamp"), "2025-12-31T23:59:59.000000000Z");
    CU_ASSERT_PTR_NULL(lp_json_get_path(ev, "log.syslog.severity.code"));
    json_decref(ev);
    ev = run(p, "<13>1 notatime h a p m - x", LP_ECORRUPT, why);
    json_decref(ev);
    ev = run(p, "hello world", LP_ECORRUPT, why);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "neither RFC 5424 nor RFC 3164"));
    json_decref(ev);
    lp_msgparser_free(p);
}

static void expect_ts(const char *fmt, const char *s, int64_t want)
{
    int64_t ns = 0;
    int rc = lp_timestamp_parse(fmt, s, strlen(s), NOW, &ns);
    if (rc || ns != want)
        fprintf(stderr, "\n%s / %s: rc %d got %lld want %lld\n", fmt, s, rc, (long long)ns,
                (long long)want);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(ns, want);
}

static void test_timestamps(void)
{
    int64_t s = 1795850460LL * 1000000000LL;
    expect_ts("rfc3339", "2026-11-28T07:21:00Z", s);
    expect_ts("epoch", "1795850460", s);
    expect_ts("epoch", "1795850460.25", s + 250000000);
    expect_ts("epoch", "1795850460000", s);
    expect_ts("epoch", "1795850460000000", s);
    expect_ts("epoch", "1795850460000000000", s);
    expect_ts("epoch_s", "1795850460", s);
    expect_ts("epoch_ms", "1795850460001", s + 1000000);
    expect_ts("epoch_ns", "1795850460000000007", s + 7);
    expect_ts("%Y-%m-%d %H:%M:%S.%f", "2026-11-28 07:21:00.123", s + 123000000);
    expect_ts("%d/%b/%Y:%H:%M:%S %z", "28/Nov/2026:02:21:00 -0500", s);
    expect_ts("%b %e %H:%M:%S", "Nov  28 07:21:00", s);
    int64_t ns;
    CU_ASSERT_EQUAL(lp_timestamp_parse("epoch", "-5", 2, NOW, &ns), LP_EINVAL);
    CU_ASSERT_EQUAL(lp_timestamp_parse("epoch", "12x", 3, NOW, &ns), LP_EINVAL);
    CU_ASSERT_EQUAL(lp_timestamp_parse("%Y-%m-%d", "2026-13-01", 10, NOW, &ns), LP_EINVAL);
    CU_ASSERT_EQUAL(lp_timestamp_parse("%Y-%m-%d", "2026-11-28 trailing", 19, NOW, &ns), LP_EINVAL);
    expect_ts("epoch_ms", "1795850460001.5", s + 1000000 + 500000);
    expect_ts("epoch_s", "1795850460.123456789999", s + 123456789);
    /* what UBSan saw overflow: no time, not undefined behaviour */
    static const char *const absurd[][2] = {
        {"epoch", "1.5e300"},
        {"epoch_s", "1.5e300"},
        {"epoch_s", "9223372036.9"},
        {"epoch_s", "99999999999999999999"},
        {"epoch_ns", "9223372036854775808"},
        {"epoch", "1."},
        {"epoch", ".5"},
        {"%Y-%m-%d", "9999-12-31"},
        {"%Y-%m-%d", "0001-01-01"},
        {"rfc3339", "9999-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < sizeof(absurd) / sizeof(absurd[0]); i++)
        CU_ASSERT_EQUAL(
            lp_timestamp_parse(absurd[i][0], absurd[i][1], strlen(absurd[i][1]), NOW, &ns),
            LP_EINVAL);
    CU_ASSERT(lp_timestamp_format_valid("%d/%b/%Y:%H:%M:%S %z"));
    CU_ASSERT(lp_timestamp_format_valid("epoch_ms"));
    CU_ASSERT(!lp_timestamp_format_valid("%Q"));
    CU_ASSERT(!lp_timestamp_format_valid("plain text"));
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"json", test_json},
        {"logfmt", test_logfmt},
        {"regex", test_regex},
        {"access", test_access},
        {"syslog", test_syslog},
        {"timestamps", test_timestamps},
        {NULL, NULL},
    };
    return lp_test_run("msgparse", tests);
}
