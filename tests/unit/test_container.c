/* Container formats and event assembly against the fixtures of
 * tests/fixtures/container (expected events written independently by
 * gen.py), plus truncation, timeouts, ordering and checkpoint bounds. */
#include "lp_assemble.h"
#include "lp_buf.h"
#include "lp_container.h"
#include "lp_error.h"
#include "lp_metrics.h"
#include "lp_multiline.h"
#include "lp_regex.h"
#include "lp_test.h"
#include "lp_wire.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct got {
    json_t *events; /* array of {offset, stream, message, flags, lines} */
};

static int collect(void *ctx, const struct lp_event *ev)
{
    struct got *g = ctx;
    /* the message as the wire would carry it (invalid UTF-8 replaced) */
    struct lp_buf js = LP_BUF_INIT;
    lp_buf_append_json_string(&js, ev->msg, ev->len);
    json_t *msg = json_loadb(js.data, js.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    lp_buf_release(&js);
    json_t *flags = json_array();
    for (unsigned b = 0; b < LP_REC_FLAG_COUNT; b++)
        if (ev->flags & (1u << b))
            json_array_append_new(flags, json_string(lp_wire_flag_names[b]));
    const char *stream = lp_stream_name(ev->stream);
    json_array_append_new(g->events,
                          json_pack("{s:I,s:o,s:o,s:o,s:i}", "offset", (json_int_t)ev->offset,
                                    "stream", stream ? json_string(stream) : json_null(), "message",
                                    msg, "flags", flags, "lines", (int)ev->lines));
    return 0;
}

/* Reads a fixture log line by line like the shipper does and returns the
 * events. */
static json_t *run_fixture(const char *name, enum lp_cfmt fmt, const char *ml_mode)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/fixtures/container/%s.log", name);
    size_t n;
    char *data = lp_test_read_source(path, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    char err[256];
    struct lp_multiline *ml =
        lp_multiline_new(ml_mode, NULL, NULL, 500, 1 << 20, 2000000000LL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ml);
    struct lp_assembler *a = lp_assembler_new(ml, 256 * 1024, 5000000000LL);
    struct got g = {json_array()};
    struct lp_buf scratch = LP_BUF_INIT;
    size_t off = 0;
    if (fmt == LP_CFMT_AUTO) {
        const char *nl = memchr(data, '\n', n);
        fmt = lp_cfmt_detect(data, nl ? (size_t)(nl - data) : n);
    }
    while (off < n) {
        const char *line = data + off;
        const char *nl = memchr(line, '\n', n - off);
        size_t len = nl ? (size_t)(nl - line) : n - off;
        struct lp_cline c;
        char why[128];
        int rc = lp_cline_decode(fmt, line, len, &scratch, &c, why, sizeof(why));
        CU_ASSERT_EQUAL(lp_assembler_feed(a, &c, off, rc ? LP_REC_MALFORMED : 0, 0, collect, &g),
                        0);
        /* the checkpoint bound never passes an unfinished event */
        uint64_t pending = lp_assembler_pending_offset(a);
        CU_ASSERT(pending == UINT64_MAX || pending <= off);
        off += len + 1;
    }
    lp_assembler_flush(a, 0, 1, collect, &g);
    CU_ASSERT_EQUAL(lp_assembler_pending_offset(a), UINT64_MAX);
    lp_assembler_free(a);
    lp_multiline_free(ml);
    lp_buf_release(&scratch);
    free(data);
    return g.events;
}

static void check_fixture(const char *name, enum lp_cfmt fmt, const char *ml_mode)
{
    json_t *got = run_fixture(name, fmt, ml_mode);
    char path[256];
    snprintf(path, sizeof(path), "tests/fixtures/container/%s.expected.ndjson", name);
    char *exp = lp_test_read_source(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(exp);
    size_t i = 0;
    for (char *line = strtok(exp, "\n"); line; line = strtok(NULL, "\n"), i++) {
        json_t *want = json_loads(line, JSON_ALLOW_NUL, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(want);
        json_t *have = json_array_get(got, i);
        int eq = have && json_equal(want, have);
        if (!eq) {
            char *w = json_dumps(want, JSON_SORT_KEYS),
                 *h = have ? json_dumps(have, JSON_SORT_KEYS) : NULL;
            fprintf(stderr, "\n%s event %zu:\n  want %.300s\n  have %.300s\n", name, i, w,
                    h ? h : "(none)");
            free(w);
            free(h);
        }
        CU_ASSERT(eq);
        json_decref(want);
    }
    CU_ASSERT_EQUAL(json_array_size(got), i);
    free(exp);
    json_decref(got);
}

static void test_docker_fixture(void)
{
    check_fixture("docker", LP_CFMT_AUTO, "off");
}

static void test_cri_fixture(void)
{
    check_fixture("cri", LP_CFMT_AUTO, "off");
}

static void test_multiline_fixtures(void)
{
    check_fixture("java", LP_CFMT_CRI, "java");
    check_fixture("python", LP_CFMT_CRI, "python");
    check_fixture("go", LP_CFMT_CRI, "go");
}

static void test_detect(void)
{
    const char *d = "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-28T07:21:00Z\"}";
    const char *c = "2026-11-28T07:21:00.1Z stderr F boom";
    CU_ASSERT_EQUAL(lp_cfmt_detect(d, strlen(d)), LP_CFMT_DOCKER);
    CU_ASSERT_EQUAL(lp_cfmt_detect(c, strlen(c)), LP_CFMT_CRI);
    CU_ASSERT_EQUAL(lp_cfmt_detect("hello", 5), LP_CFMT_RAW);
    CU_ASSERT_EQUAL(lp_cfmt_detect("{\"a\":1}", 7), LP_CFMT_RAW);
    /* a first line cut at the line cap: Docker by dockerd's opening, CRI by
     * its prefix; a cut Docker object is not whole JSON (#29) */
    size_t cut = 30; /* in the middle of the log value */
    CU_ASSERT_EQUAL(lp_cfmt_detect(d, cut), LP_CFMT_RAW);
    CU_ASSERT_EQUAL(lp_cfmt_detect_cut(d, cut), LP_CFMT_DOCKER);
    CU_ASSERT_EQUAL(lp_cfmt_detect_cut(c, strlen(c) - 2), LP_CFMT_CRI);
    CU_ASSERT_EQUAL(lp_cfmt_detect_cut("{\"a\":1", 6), LP_CFMT_RAW);
    CU_ASSERT_EQUAL(lp_cfmt_detect_cut("{\"log\"", 6), LP_CFMT_RAW);
    CU_ASSERT_EQUAL(lp_cfmt_parse("cri"), LP_CFMT_CRI);
    CU_ASSERT_EQUAL(lp_cfmt_parse("xml"), LP_EINVAL);
}

static void test_decode_errors(void)
{
    struct lp_buf scratch = LP_BUF_INIT;
    struct lp_cline c;
    char why[128];
    const char *bad[] = {"2026-11-28T07:21:00Z stdin F x", "notatime stdout F x",
                         "2026-11-28T07:21:00Z stdout X x", "2026-11-28T07:21:00Z"};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(
            lp_cline_decode(LP_CFMT_CRI, bad[i], strlen(bad[i]), &scratch, &c, why, sizeof(why)),
            LP_ECORRUPT);
        CU_ASSERT_EQUAL(c.len, strlen(bad[i])); /* the raw line is kept */
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "CRI line"));
    }
    const char *dbad[] = {"{\"stream\":\"stdout\"}", "[1]",
                          "{\"log\":\"x\",\"time\":\"yesterday\"}"};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(lp_cline_decode(LP_CFMT_DOCKER, dbad[i], strlen(dbad[i]), &scratch, &c, why,
                                        sizeof(why)),
                        LP_ECORRUPT);
        CU_ASSERT_EQUAL(c.len, strlen(dbad[i]));
        CU_ASSERT_EQUAL(c.partial, 0);
    }
    const char *ok = "2026-11-28T07:21:00Z stdout P:more x y";
    CU_ASSERT_EQUAL(lp_cline_decode(LP_CFMT_CRI, ok, strlen(ok), &scratch, &c, why, sizeof(why)),
                    0);
    CU_ASSERT_EQUAL(c.partial, 1);
    CU_ASSERT_EQUAL(c.len, 3);
    CU_ASSERT_EQUAL(memcmp(c.msg, "x y", 3), 0);
    lp_buf_release(&scratch);
}

static struct lp_cline cri_line(enum lp_stream s, int partial, const char *msg)
{
    struct lp_cline c = {1, s, partial, msg, strlen(msg)};
    return c;
}

static void test_truncation(void)
{
    struct lp_assembler *a = lp_assembler_new(NULL, 10, 1000);
    struct got g = {json_array()};
    struct lp_cline c = cri_line(LP_STREAM_STDOUT, 0, "0123456789abcdef");
    lp_assembler_feed(a, &c, 0, 0, 0, collect, &g);
    /* over-long partial chain: first 10 bytes kept, rest skipped, flagged */
    c = cri_line(LP_STREAM_STDOUT, 1, "abcdefgh");
    lp_assembler_feed(a, &c, 100, 0, 0, collect, &g);
    c = cri_line(LP_STREAM_STDOUT, 1, "ijklmnop");
    lp_assembler_feed(a, &c, 200, 0, 0, collect, &g);
    c = cri_line(LP_STREAM_STDOUT, 0, "qr");
    lp_assembler_feed(a, &c, 300, 0, 0, collect, &g);
    /* never split a UTF-8 sequence: é is 2 bytes at positions 9-10 */
    c = cri_line(LP_STREAM_STDOUT, 0, "123456789\xc3\xa9xyz");
    lp_assembler_feed(a, &c, 400, 0, 0, collect, &g);
    CU_ASSERT_EQUAL_FATAL(json_array_size(g.events), 3);
    json_t *e0 = json_array_get(g.events, 0), *e1 = json_array_get(g.events, 1),
           *e2 = json_array_get(g.events, 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e0, "message")), "0123456789");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(e0, "flags"), 0)),
                           "truncated");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e1, "message")), "abcdefghij");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(e1, "offset")), 100);
    CU_ASSERT_EQUAL(json_array_size(json_object_get(e1, "flags")), 2); /* truncated, partial */
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e2, "message")), "123456789");
    CU_ASSERT_EQUAL(json_array_size(json_object_get(e2, "flags")), 1); /* truncated only */
    json_decref(g.events);
    lp_assembler_free(a);
}

static void test_ordering_and_timeouts(void)
{
    struct lp_assembler *a = lp_assembler_new(NULL, 1000, 5000);
    struct got g = {json_array()};
    struct lp_cline c = cri_line(LP_STREAM_STDOUT, 1, "held ");
    lp_assembler_feed(a, &c, 10, 0, 0, collect, &g);
    c = cri_line(LP_STREAM_STDERR, 0, "later offset");
    lp_assembler_feed(a, &c, 20, 0, 0, collect, &g);
    /* stderr's event waits behind stdout's partial: offsets stay ordered */
    CU_ASSERT_EQUAL(json_array_size(g.events), 0);
    CU_ASSERT_EQUAL(lp_assembler_pending_offset(a), 10);
    lp_assembler_flush(a, 4999, 0, collect, &g);
    CU_ASSERT_EQUAL(json_array_size(g.events), 0);
    /* the continuation never came: after the timeout the chunk goes alone */
    lp_assembler_flush(a, 5000, 0, collect, &g);
    CU_ASSERT_EQUAL_FATAL(json_array_size(g.events), 2);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(g.events, 0), "offset")), 10);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(g.events, 0), "message")), "held ");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(g.events, 1), "offset")), 20);
    CU_ASSERT_EQUAL(lp_assembler_pending_offset(a), UINT64_MAX);
    json_decref(g.events);
    lp_assembler_free(a);
}

static void test_multiline_caps_and_timeout(void)
{
    char err[256];
    struct lp_multiline *ml =
        lp_multiline_new("custom", "^\\d{4}-", NULL, 3, 1 << 20, 100, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ml);
    struct lp_assembler *a = lp_assembler_new(ml, 1 << 20, 1000);
    struct got g = {json_array()};
    const char *lines[] = {"2026-01-01 first", "  a", "  b", "  c", "  d"};
    for (int i = 0; i < 5; i++) {
        struct lp_cline c = cri_line(LP_STREAM_STDOUT, 0, lines[i]);
        lp_assembler_feed(a, &c, (uint64_t)i * 10, 0, 0, collect, &g);
    }
    /* max_lines 3: the group closes and "  c" starts the next one */
    CU_ASSERT_EQUAL_FATAL(json_array_size(g.events), 1);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(g.events, 0), "message")),
        "2026-01-01 first\n  a\n  b");
    CU_ASSERT_EQUAL(lp_assembler_pending_offset(a), 30);
    lp_assembler_flush(a, 100, 0, collect, &g); /* flush timeout */
    CU_ASSERT_EQUAL_FATAL(json_array_size(g.events), 2);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(g.events, 1), "message")), "  c\n  d");
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_array_get(g.events, 1), "lines")), 2);
    json_decref(g.events);
    lp_assembler_free(a);
    lp_multiline_free(ml);

    /* before a file's first start line, each line is an event by itself
     * (Fluent Bit's dockermode_firstline_detection: three events) */
    ml = lp_multiline_new("custom", "^\\d{4}-", NULL, 500, 1 << 20, 100, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ml);
    a = lp_assembler_new(ml, 1 << 20, 1000);
    g.events = json_array();
    const char *first[] = {"Single log", "Second log", "Third log", "2026-01-01 start", "  cont"};
    for (int i = 0; i < 5; i++) {
        struct lp_cline c = cri_line(LP_STREAM_STDOUT, 0, first[i]);
        lp_assembler_feed(a, &c, (uint64_t)i * 10, 0, 0, collect, &g);
    }
    lp_assembler_flush(a, 100, 0, collect, &g);
    CU_ASSERT_EQUAL_FATAL(json_array_size(g.events), 4);
    static const char *want[] = {"Single log", "Second log", "Third log",
                                 "2026-01-01 start\n  cont"};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(json_array_get(g.events, (size_t)i), "message")),
            want[i]);
    json_decref(g.events);
    lp_assembler_free(a);
    lp_multiline_free(ml);

    /* rules with their own PCRE2 limits (a shipper input's section): a line
     * that the process's limits allow costs these rules too much, counts
     * as not matching (a continuation) and is counted */
    struct lp_metrics *mx = lp_metrics_new();
    struct lp_counter *limited = lp_metrics_counter(mx, "t_limited_total", "t", NULL);
    lp_regex_setup(LP_REGEX_MATCH_LIMIT, LP_REGEX_DEPTH_LIMIT, limited);
    char costly[32];
    memset(costly, 'a', 20);
    memcpy(costly + 20, "!", 2);
    struct lp_multiline *wide =
        lp_multiline_new("custom", "^(a|aa)+$|!$", NULL, 500, 1 << 20, 100, err, sizeof(err));
    struct lp_multiline *tight =
        lp_multiline_new("custom", "^(a|aa)+$|!$", NULL, 500, 1 << 20, 100, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(wide);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tight);
    lp_multiline_set_limits(tight, 1000, 100);
    struct lp_ml_state st = {0};
    CU_ASSERT_EQUAL(lp_multiline_classify(wide, &st, costly, 21), LP_ML_START);
    CU_ASSERT_EQUAL(lp_counter_get(limited), 0);
    st = (struct lp_ml_state){0};
    CU_ASSERT_NOT_EQUAL(lp_multiline_classify(tight, &st, costly, 21), LP_ML_START);
    CU_ASSERT_EQUAL(lp_counter_get(limited), 1);
    lp_multiline_free(wide);
    lp_multiline_free(tight);
    lp_regex_setup(LP_REGEX_MATCH_LIMIT, LP_REGEX_DEPTH_LIMIT, NULL);
    lp_metrics_free(mx);

    CU_ASSERT_PTR_NULL(lp_multiline_new("custom", "([", NULL, 3, 100, 100, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(err, "start_pattern: missing terminating ] for character class at offset 2"));
    CU_ASSERT_PTR_NULL(lp_multiline_new("custom", NULL, NULL, 3, 100, 100, err, sizeof(err)));
    CU_ASSERT_PTR_NULL(lp_multiline_new("cobol", NULL, NULL, 3, 100, 100, err, sizeof(err)));
}

/* A pod's multiline hint changes the rules mid-file: the open group is
 * finished under the old rules, a partial chunk waits and completes under
 * the new ones, and switching to none or back is the same. */
static void test_multiline_switch(void)
{
    char err[256];
    struct lp_multiline *ml =
        lp_multiline_new("custom", "^\\d{4}-", NULL, 500, 1 << 20, 100, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ml);
    struct lp_assembler *a = lp_assembler_new(NULL, 1 << 20, 1000);
    struct got g = {json_array()};
    uint64_t off = 0;
#define FEED(text, partial)                                                   \
    do {                                                                      \
        struct lp_cline c = cri_line(LP_STREAM_STDOUT, partial, text);        \
        CU_ASSERT_EQUAL(lp_assembler_feed(a, &c, off, 0, 0, collect, &g), 0); \
        off += 10;                                                            \
    } while (0)
    FEED("plain one", 0);
    FEED("  not joined", 0); /* no rules yet */
    CU_ASSERT_EQUAL(lp_assembler_set_multiline(a, ml, collect, &g), 0);
    FEED("2026-01-01 start", 0);
    FEED("  joined", 0);
    FEED("half ", 1); /* a partial chunk when the rules change again */
    CU_ASSERT_EQUAL(lp_assembler_set_multiline(a, ml, collect, &g), 0); /* the same: nothing */
    CU_ASSERT_EQUAL(json_array_size(g.events), 2);
    CU_ASSERT_EQUAL(lp_assembler_set_multiline(a, NULL, collect, &g), 0);
    /* the group was finished under the old rules; the partial still waits */
    CU_ASSERT_EQUAL_FATAL(json_array_size(g.events), 3);
    CU_ASSERT_STRING_EQUAL(
        json_string_value(json_object_get(json_array_get(g.events, 2), "message")),
        "2026-01-01 start\n  joined");
    CU_ASSERT_EQUAL(lp_assembler_pending_offset(a), 40);
    FEED("and half", 0);
    FEED("  alone", 0);
    lp_assembler_flush(a, 0, 1, collect, &g);
    CU_ASSERT_EQUAL_FATAL(json_array_size(g.events), 5);
    static const char *want[] = {"plain one", "  not joined", "2026-01-01 start\n  joined",
                                 "half and half", "  alone"};
    for (size_t i = 0; i < 5; i++)
        CU_ASSERT_STRING_EQUAL(
            json_string_value(json_object_get(json_array_get(g.events, i), "message")), want[i]);
    /* offsets only grow */
    for (size_t i = 1; i < 5; i++)
        CU_ASSERT(json_integer_value(json_object_get(json_array_get(g.events, i), "offset")) >
                  json_integer_value(json_object_get(json_array_get(g.events, i - 1), "offset")));
#undef FEED
    json_decref(g.events);
    lp_assembler_free(a);
    lp_multiline_free(ml);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"docker fixture", test_docker_fixture},
        {"cri fixture", test_cri_fixture},
        {"multiline fixtures", test_multiline_fixtures},
        {"detect", test_detect},
        {"decode errors", test_decode_errors},
        {"truncation", test_truncation},
        {"ordering and timeouts", test_ordering_and_timeouts},
        {"multiline caps and timeout", test_multiline_caps_and_timeout},
        {"multiline rules switched", test_multiline_switch},
        {NULL, NULL},
    };
    return lp_test_run("container", tests);
}
