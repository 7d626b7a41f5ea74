/* lp_buf, lp_arena, lp_strerror, lp_base64: growth, caps, JSON escaping,
 * UTF-8, RFC 4648 vectors. */
#include "lp_arena.h"
#include "lp_base64.h"
#include "lp_buf.h"
#include "lp_error.h"
#include "lp_test.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>

static void test_append_and_limit(void)
{
    struct lp_buf b;
    lp_buf_init(&b, 10);
    CU_ASSERT_EQUAL(lp_buf_puts(&b, "hello"), 0);
    CU_ASSERT_EQUAL(lp_buf_appendf(&b, "%d", 1234), 0);
    CU_ASSERT_STRING_EQUAL(b.data, "hello1234");
    CU_ASSERT_EQUAL(lp_buf_puts(&b, "xy"), LP_ETOOBIG); /* 11 > 10 */
    CU_ASSERT_STRING_EQUAL(b.data, "hello1234");        /* unchanged */
    CU_ASSERT_EQUAL(lp_buf_putc(&b, '!'), 0);
    CU_ASSERT_EQUAL(b.len, 10);
    size_t n;
    char *p = lp_buf_detach(&b, &n);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_STRING_EQUAL(p, "hello1234!");
    CU_ASSERT_STRING_EQUAL(b.data, ""); /* empty again, never NULL */
    free(p);
    lp_buf_release(&b);
    lp_buf_release(NULL);
}

/* An empty buffer is "" (the shared lp_buf_empty, never written or freed)
 * whether new, reset, released or detached; a zero-filled one is empty to
 * every function. */
static void test_empty(void)
{
    struct lp_buf b = LP_BUF_INIT, c;
    CU_ASSERT_STRING_EQUAL(b.data, "");
    CU_ASSERT_PTR_EQUAL(b.data, lp_buf_empty);
    lp_buf_init(&c, 0);
    CU_ASSERT_PTR_EQUAL(c.data, lp_buf_empty);
    lp_buf_reset(&b); /* no write to the shared byte */
    lp_buf_truncate(&b, 0);
    CU_ASSERT_EQUAL(lp_buf_empty[0], '\0');
    char *p = lp_buf_detach(&b, NULL);
    CU_ASSERT_STRING_EQUAL(p, "");
    CU_ASSERT_PTR_NOT_EQUAL(p, lp_buf_empty);
    free(p);
    CU_ASSERT_EQUAL(lp_buf_puts(&b, "abc"), 0);
    CU_ASSERT_PTR_NOT_EQUAL(b.data, lp_buf_empty);
    lp_buf_truncate(&b, 1);
    CU_ASSERT_STRING_EQUAL(b.data, "a");
    lp_buf_release(&b);
    CU_ASSERT_PTR_EQUAL(b.data, lp_buf_empty);
    lp_buf_release(&b); /* twice is fine */
    struct lp_buf z;
    memset(&z, 0, sizeof(z));
    lp_buf_reset(&z);
    CU_ASSERT_EQUAL(lp_buf_putc(&z, 'x'), 0);
    CU_ASSERT_STRING_EQUAL(z.data, "x");
    lp_buf_release(&z);
    lp_buf_release(&c);
}

static void test_appendf_long(void)
{
    struct lp_buf b = LP_BUF_INIT;
    char big[1000];
    memset(big, 'a', sizeof(big) - 1);
    big[999] = '\0';
    CU_ASSERT_EQUAL(lp_buf_appendf(&b, "<%s>", big), 0);
    CU_ASSERT_EQUAL(b.len, 1001);
    CU_ASSERT_EQUAL(b.data[0], '<');
    CU_ASSERT_EQUAL(b.data[1000], '>');
    lp_buf_release(&b);
}

/* The escaper's output must parse as JSON and round-trip valid UTF-8. */
static void check_json(const char *in, size_t n, const char *want_decoded, size_t want_len)
{
    struct lp_buf b = LP_BUF_INIT;
    CU_ASSERT_EQUAL_FATAL(lp_buf_append_json_string(&b, in, n), 0);
    json_error_t e;
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(json_string_length(v), want_len);
    CU_ASSERT_EQUAL(memcmp(json_string_value(v), want_decoded, want_len), 0);
    json_decref(v);
    lp_buf_release(&b);
}

static void test_json_escape(void)
{
    check_json("plain", 5, "plain", 5);
    check_json("q\"b\\n\n\t\x01", 9, "q\"b\\n\n\t\x01", 9);
    check_json("nul\0x", 5, "nul\0x", 5);
    check_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
               "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
    /* invalid: lone continuation, overlong, surrogate, truncated 3-byte */
    check_json("a\x80z", 3, "a\xef\xbf\xbdz", 5);
    check_json("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6);
    check_json("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9);
    check_json("x\xe2\x82", 3, "x\xef\xbf\xbd", 4);
    struct lp_buf b = LP_BUF_INIT;
    lp_buf_append_json_string(&b, "\x1f", 1);
    CU_ASSERT_STRING_EQUAL(b.data, "\"\\u001f\"");
    lp_buf_release(&b);
}

static void test_json_escape_limit_rolls_back(void)
{
    struct lp_buf b;
    lp_buf_init(&b, 8);
    lp_buf_puts(&b, "ab");
    CU_ASSERT_EQUAL(lp_buf_append_json_string(&b, "\n\n\n\n", 4), LP_ETOOBIG);
    CU_ASSERT_STRING_EQUAL(b.data, "ab");
    lp_buf_release(&b);
}

static void test_arena(void)
{
    struct lp_arena a;
    lp_arena_init(&a, 1024, 4096);
    char *s = lp_arena_strndup(&a, "hello world", 5);
    CU_ASSERT_STRING_EQUAL(s, "hello");
    void *p1 = lp_arena_alloc(&a, 10), *p2 = lp_arena_alloc(&a, 10);
    CU_ASSERT_EQUAL(((uintptr_t)p1) % 16, 0);
    CU_ASSERT_EQUAL(((uintptr_t)p2) % 16, 0);
    CU_ASSERT_PTR_NOT_NULL(lp_arena_alloc(&a, 2000)); /* oversized block */
    CU_ASSERT_PTR_NULL(lp_arena_alloc(&a, 4000));     /* would pass the limit */
    lp_arena_reset(&a);
    CU_ASSERT(lp_arena_bytes(&a) <= 2048);
    CU_ASSERT_PTR_NOT_NULL(lp_arena_alloc(&a, 100));
    lp_arena_release(&a);
    lp_arena_release(NULL);
}

static void test_strerror(void)
{
    CU_ASSERT_STRING_EQUAL(lp_strerror(0), "success");
    CU_ASSERT_STRING_EQUAL(lp_strerror(LP_ETOOBIG), "size limit exceeded");
    CU_ASSERT_STRING_EQUAL(lp_strerror(LP_ECORRUPT), "corrupt or truncated data");
    CU_ASSERT_STRING_EQUAL(lp_strerror(-2), "No such file or directory");
    CU_ASSERT_STRING_EQUAL(lp_strerror(LP_ELAST), "unknown error");
    CU_ASSERT_STRING_EQUAL(lp_strerror(5), "unknown error");
}

static void test_base64(void)
{
    /* RFC 4648 section 10 */
    static const char *const vec[][2] = {{"", ""},
                                         {"f", "Zg=="},
                                         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="},
                                         {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        struct lp_buf e = LP_BUF_INIT, d = LP_BUF_INIT;
        lp_base64_encode(&e, vec[i][0], strlen(vec[i][0]));
        CU_ASSERT_EQUAL(e.len, strlen(vec[i][1]));
        CU_ASSERT(e.len == 0 || memcmp(e.data, vec[i][1], e.len) == 0);
        CU_ASSERT_EQUAL(lp_base64_decode(vec[i][1], strlen(vec[i][1]), &d), 0);
        CU_ASSERT_EQUAL(d.len, strlen(vec[i][0]));
        CU_ASSERT(d.len == 0 || memcmp(d.data, vec[i][0], d.len) == 0);
        lp_buf_release(&e);
        lp_buf_release(&d);
    }
    /* every byte value, with line breaks as PEM-like data has them */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    struct lp_buf e = LP_BUF_INIT, d = LP_BUF_INIT;
    lp_base64_encode(&e, all, sizeof(all));
    lp_buf_putc(&e, '\0');
    struct lp_buf wrapped = LP_BUF_INIT;
    for (size_t i = 0; i < e.len - 1; i += 64) {
        lp_buf_append(&wrapped, e.data + i, e.len - 1 - i < 64 ? e.len - 1 - i : 64);
        lp_buf_puts(&wrapped, "\r\n");
    }
    CU_ASSERT_EQUAL(lp_base64_decode(wrapped.data, wrapped.len, &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.len, 256);
    CU_ASSERT(memcmp(d.data, all, 256) == 0);
    lp_buf_release(&e);
    lp_buf_release(&d);
    lp_buf_release(&wrapped);
    /* unpadded is accepted; the rest is refused */
    d = (struct lp_buf)LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_base64_decode("Zm9vYg", 6, &d), 0);
    CU_ASSERT_EQUAL(d.len, 4);
    static const char *const bad[] = {"Zm9v!", "Z", "Zm9vY", "Zg=", "Zg===", "Zg==Zg==", "Zm-_"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lp_buf_reset(&d);
        CU_ASSERT_EQUAL(lp_base64_decode(bad[i], strlen(bad[i]), &d), LP_ECORRUPT);
    }
    lp_buf_release(&d);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"append and limit", test_append_and_limit},
        {"appendf long", test_appendf_long},
        {"json escape", test_json_escape},
        {"json escape limit rolls back", test_json_escape_limit_rolls_back},
        {"arena", test_arena},
        {"strerror", test_strerror},
        {"base64", test_base64},
        {"empty buffers", test_empty},
        {NULL, NULL},
    };
    return lp_test_run("buf", tests);
}
