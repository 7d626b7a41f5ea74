/* RFC 3339 formatting and parsing; clocks move forward. */
#include "lp_error.h"
#include "lp_test.h"
#include "lp_time.h"

#include <string.h>

static void test_format(void)
{
    char out[LP_RFC3339_MAX];
    lp_time_format_rfc3339(0, 0, out);
    CU_ASSERT_STRING_EQUAL(out, "1970-01-01T00:00:00Z");
    lp_time_format_rfc3339(1764314460123456789LL, 9, out);
    CU_ASSERT_STRING_EQUAL(out, "2025-11-28T07:21:00.123456789Z");
    lp_time_format_rfc3339(1764314460123456789LL, 3, out);
    CU_ASSERT_STRING_EQUAL(out, "2025-11-28T07:21:00.123Z");
    lp_time_format_rfc3339(-1, 9, out);
    CU_ASSERT_STRING_EQUAL(out, "1969-12-31T23:59:59.999999999Z");
}

static void expect(const char *s, int64_t want)
{
    int64_t ns = 0;
    CU_ASSERT_EQUAL(lp_time_parse_rfc3339(s, strlen(s), &ns), 0);
    CU_ASSERT_EQUAL(ns, want);
}

static void test_parse(void)
{
    expect("2025-11-28T07:21:00.123456789Z", 1764314460123456789LL);
    expect("2025-11-28T07:21:00Z", 1764314460000000000LL);
    expect("2025-11-28T07:21:00.5Z", 1764314460500000000LL);
    expect("2025-11-28T09:21:00.123+02:00", 1764314460123000000LL);
    expect("2025-11-28T07:21:00.1234567891Z", 1764314460123456789LL); /* extra digits dropped */
    expect("2024-02-29T00:00:00Z", 1709164800000000000LL);
    expect("2261-12-31T23:59:59Z", 9214646399000000000LL);
    expect("1678-01-01T00:00:00Z", -9214560000000000000LL);
    int64_t ns;
    /* found by fuzzing: years outside 64-bit nanoseconds overflowed */
    const char *bad[] = {"",
                         "2025-11-28",
                         "2025-13-01T00:00:00Z",
                         "2025-11-28T07:21:00",
                         "2025-11-28T07:21:00.Z",
                         "2025-11-28T07:21:00Zjunk",
                         "2025-11-28T25:00:00Z",
                         "2826-02-08T00:00:00Z",
                         "9999-12-31T23:59:59.999999999Z",
                         "0000-01-01T00:00:00Z",
                         NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_EQUAL(lp_time_parse_rfc3339(bad[i], strlen(bad[i]), &ns), LP_EINVAL);
}

static void test_clocks(void)
{
    int64_t a = lp_time_mono_ns(), b = lp_time_mono_ns();
    CU_ASSERT(b >= a);
    CU_ASSERT(lp_time_real_ns() > 1700000000LL * LP_NS_PER_SEC);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"format", test_format},
        {"parse", test_parse},
        {"clocks", test_clocks},
        {NULL, NULL},
    };
    return lp_test_run("time", tests);
}
