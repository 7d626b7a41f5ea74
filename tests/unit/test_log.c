/* Logging: logfmt and JSON lines on stderr, level filtering that skips
 * argument evaluation, per-call-site rate limiting. */
#define LP_LOG_MODULE "testmod"
#include "lp_buf.h"
#include "lp_log.h"
#include "lp_error.h"
#include "lp_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr redirected to a temporary file; returns what it wrote. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/lp-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    struct lp_buf b = LP_BUF_INIT;
    char chunk[4096];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof(chunk))) > 0)
        lp_buf_append(&b, chunk, (size_t)r);
    close(fd);
    unlink(path);
    return lp_buf_detach(&b, NULL);
}

static int evaluated;
static const char *side_effect(void)
{
    evaluated++;
    return "x";
}

static void emit_logfmt(void)
{
    lp_log_setup(LP_LOG_INFO, LP_LOG_LOGFMT);
    lp_log(LP_LOG_INFO, "batch sent", "records=%d topic=%s", 12, "logs");
    lp_log(LP_LOG_DEBUG, "hidden", "v=%s", side_effect());
    lp_log(LP_LOG_ERROR, "plain", "%s", "");
}

static void test_logfmt(void)
{
    evaluated = 0;
    char *out = capture(emit_logfmt);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out, " level=info module=testmod msg=\"batch sent\" records=12 topic=logs\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " level=error module=testmod msg=plain\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "hidden"));
    CU_ASSERT_EQUAL(evaluated, 0); /* arguments of a filtered level are not evaluated */
    CU_ASSERT_EQUAL(strncmp(out, "ts=20", 5), 0);
    free(out);
}

static void emit_json(void)
{
    lp_log_setup(LP_LOG_DEBUG, LP_LOG_JSON);
    lp_log(LP_LOG_WARN, "slow \"output\"", "output=es latency_ms=%d reason=\"queue full\"", 1500);
    lp_log_setup(LP_LOG_INFO, LP_LOG_LOGFMT);
}

static void test_json(void)
{
    char *out = capture(emit_json);
    json_error_t e;
    json_t *o = json_loads(out, JSON_DISABLE_EOF_CHECK, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "level")), "warn");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "module")), "testmod");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "msg")), "slow \"output\"");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "output")), "es");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "latency_ms")), "1500");
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "reason")), "queue full");
    json_decref(o);
    free(out);
}

/* what an OpenSearch reason echoing a log line's field could hold */
static const char *const HOSTILE = "x\" forged=1\nts=2026 level=error msg=\"fake\"\t\x01\\";

static void emit_hostile(void)
{
    lp_log_setup(LP_LOG_INFO, LP_LOG_LOGFMT);
    lp_log(LP_LOG_WARN, "refused", "reason=\"%s\" path=%s n=%zu id=%lld c=%c w=%5d", HOSTILE,
           "/var/log/a b.log", (size_t)7, -3LL, 'q', 42);
    lp_log_setup(LP_LOG_INFO, LP_LOG_JSON);
    lp_log(LP_LOG_WARN, "refused", "reason=\"%s\" path=%s", HOSTILE, "/var/log/a b.log");
    lp_log_setup(LP_LOG_INFO, LP_LOG_LOGFMT);
}

static void test_values_escaped(void)
{
    char *out = capture(emit_hostile);
    /* two lines, whatever the values hold */
    char *nl = strchr(out, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    CU_ASSERT_PTR_NOT_NULL(strchr(nl + 1, '\n'));
    CU_ASSERT_PTR_NULL(strchr(strchr(nl + 1, '\n') + 1, '\n'));
    *nl = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "reason=\"x\\\" forged=1\\nts=2026 level=error "
                                       "msg=\\\"fake\\\"\\t\\u0001\\\\\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " path=\"/var/log/a b.log\" n=7 id=-3 c=q w=   42"));
    json_error_t e;
    json_t *o = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "reason")), HOSTILE);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "path")), "/var/log/a b.log");
    CU_ASSERT_PTR_NULL(json_object_get(o, "forged"));
    json_decref(o);
    free(out);
}

static void emit_many(void)
{
    for (int i = 0; i < 25; i++)
        lp_log_ratelimited(LP_LOG_ERROR, "bad record", "n=%d", i);
}

static void test_ratelimit(void)
{
    char *out = capture(emit_many);
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 10); /* burst of 10 per 10 s window */
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "n=9 suppressed=0\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "n=10 "));
    free(out);

    struct lp_ratelimit rl = {0};
    uint32_t sup;
    CU_ASSERT(lp_ratelimit_allow(&rl, 2, 1000000000LL, &sup));
    CU_ASSERT(lp_ratelimit_allow(&rl, 2, 1000000000LL, &sup));
    CU_ASSERT(!lp_ratelimit_allow(&rl, 2, 1000000000LL, &sup));
    CU_ASSERT(!lp_ratelimit_allow(&rl, 2, 1000000000LL, &sup));
    /* a new window reports what was suppressed */
    CU_ASSERT(lp_ratelimit_allow(&rl, 2, 1, &sup));
    CU_ASSERT_EQUAL(sup, 2);
}

static void test_level_names(void)
{
    CU_ASSERT_EQUAL(lp_log_level_parse("debug"), LP_LOG_DEBUG);
    CU_ASSERT_EQUAL(lp_log_level_parse("warning"), LP_LOG_WARN);
    CU_ASSERT_EQUAL(lp_log_level_parse("loud"), LP_EINVAL);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"logfmt", test_logfmt},
        {"json", test_json},
        {"values escaped: no forged lines or keys", test_values_escaped},
        {"ratelimit", test_ratelimit},
        {"level names", test_level_names},
        {NULL, NULL},
    };
    return lp_test_run("log", tests);
}
