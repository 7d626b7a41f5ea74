/* The S3 client against the real S3 server (S3Proxy, scripts/services up
 * s3): a small put and get back, a multipart upload (three parts) read back
 * byte for byte, listing across pages and one level of "directories", delete (twice: a missing key
 * is success), 404, server-side copy, HEAD, a storage class change in place, batched deletes of
 * 1000 keys, and wrong credentials: a 403 that is not retryable and whose error text carries no
 * secret. */
#include "lp_buf.h"
#include "lp_error.h"
#include "lp_s3.h"
#include "lp_test.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char endpoint[64], prefix[64];

static struct lp_s3_cfg cfg(const char *secret)
{
    const char *ak = getenv("S3_ACCESS_KEY");
    const char *sk = getenv("S3_SECRET_KEY");
    struct lp_s3_cfg c = {.endpoint = endpoint,
                          .bucket = "logpipe",
                          .access_key_id = ak ? ak : "logpipe-test",
                          .secret_access_key = secret ? secret
                                               : sk   ? sk
                                                      : "logpipe-test-secret",
                          .path_style = 1,
                          .tls_verify = 1,
                          .timeout_ms = 30000,
                          .part_bytes = (size_t)5 << 20};
    return c;
}

static int count_cb(const struct lp_s3_object *o, void *arg)
{
    (void)o;
    (*(size_t *)arg)++;
    return 0;
}

static int dir_cb(const char *dir, void *arg)
{
    struct lp_buf *b = arg;
    lp_buf_puts(b, dir);
    lp_buf_putc(b, ' ');
    return 0;
}

static void test_put_get_multipart(void)
{
    struct lp_s3 s;
    char err[200];
    struct lp_s3_cfg c = cfg(NULL);
    CU_ASSERT_FATAL(lp_s3_init(&s, &c, err, sizeof(err)) == 0);
    struct lp_s3_client cl;
    lp_s3_client_init(&cl, &s);
    struct lp_s3_result r;
    char key[160];
    snprintf(key, sizeof(key), "%s/small key+with spaces.txt", prefix);
    CU_ASSERT_EQUAL(lp_s3_put(&cl, key, "hello\n", 6, "text/plain", NULL, &r), 0);
    struct lp_buf got = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_s3_get(&cl, key, &got, &r), 0);
    CU_ASSERT(got.len == 6 && memcmp(got.data, "hello\n", 6) == 0);
    /* 12 MiB: three parts of 5, 5 and 2 MiB */
    size_t n = (size_t)12 << 20;
    char *big = malloc(n);
    unsigned x = 7;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (char)(x >> 16);
    }
    snprintf(key, sizeof(key), "%s/big.bin", prefix);
    CU_ASSERT_EQUAL(lp_s3_put(&cl, key, big, n, NULL, NULL, &r), 0);
    CU_ASSERT_EQUAL(lp_s3_get(&cl, key, &got, &r), 0);
    CU_ASSERT(got.len == n && memcmp(got.data, big, n) == 0);
    free(big);
    /* missing key: 404 as -ENOENT; delete twice is fine */
    CU_ASSERT_EQUAL(lp_s3_delete(&cl, key, &r), 0);
    CU_ASSERT_EQUAL(lp_s3_delete(&cl, key, &r), 0);
    CU_ASSERT_EQUAL(lp_s3_get(&cl, key, &got, &r), -ENOENT);
    CU_ASSERT_EQUAL(r.status, 404);
    lp_buf_release(&got);
    lp_s3_client_release(&cl);
    lp_s3_release(&s);
}

static void test_list_pages(void)
{
    struct lp_s3 s;
    char err[200];
    struct lp_s3_cfg c = cfg(NULL);
    CU_ASSERT_FATAL(lp_s3_init(&s, &c, err, sizeof(err)) == 0);
    struct lp_s3_client cl;
    lp_s3_client_init(&cl, &s);
    struct lp_s3_result r;
    char key[160];
    for (int i = 0; i < 1010; i++) { /* more than one page of 1000 */
        snprintf(key, sizeof(key), "%s/many/%c/%05d", prefix, i % 2 ? 'a' : 'b', i);
        if (lp_s3_put(&cl, key, "x", 1, NULL, NULL, &r)) {
            CU_FAIL("put");
            break;
        }
    }
    char pfx[160];
    snprintf(pfx, sizeof(pfx), "%s/many/", prefix);
    size_t count = 0;
    CU_ASSERT_EQUAL(lp_s3_list(&cl, pfx, NULL, count_cb, &count, &r), 0);
    CU_ASSERT_EQUAL(count, 1010);
    struct lp_buf dirs = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_s3_list_dirs(&cl, pfx, dir_cb, &dirs, &r), 0);
    char want[400];
    snprintf(want, sizeof(want), "%sa/ %sb/ ", pfx, pfx);
    CU_ASSERT_STRING_EQUAL(dirs.data, want);
    lp_buf_release(&dirs);
    lp_s3_client_release(&cl);
    lp_s3_release(&s);
}

static int class_cb(const struct lp_s3_object *o, void *arg)
{
    snprintf(arg, 64, "%s", o->storage_class);
    return 1;
}

static void collect_failed(const char *key, const char *code, const char *msg, void *arg)
{
    (void)msg;
    lp_buf_appendf(arg, "%s:%s ", key, code);
}

/* What bucket retention does: a server-side copy to another prefix, HEAD of
 * the copy, a class change in place, and batched deletes (quiet mode) of
 * keys with XML-special characters, 1000 at once. */
static void test_copy_head_delete_many(void)
{
    struct lp_s3 s;
    char err[200];
    struct lp_s3_cfg c = cfg(NULL);
    CU_ASSERT_FATAL(lp_s3_init(&s, &c, err, sizeof(err)) == 0);
    struct lp_s3_client cl;
    lp_s3_client_init(&cl, &s);
    struct lp_s3_result r;
    char src[160], dst[160];
    snprintf(src, sizeof(src), "%s/live/a&b <c>.ndjson.zst", prefix);
    snprintf(dst, sizeof(dst), "%s/archive/a&b <c>.ndjson.zst", prefix);
    CU_ASSERT_EQUAL(lp_s3_put(&cl, src, "0123456789", 10, NULL, NULL, &r), 0);
    CU_ASSERT_EQUAL(lp_s3_copy(&cl, NULL, src, dst, NULL, &r), 0);
    int64_t size = -1;
    CU_ASSERT_EQUAL(lp_s3_head(&cl, dst, &size, &r), 0);
    CU_ASSERT_EQUAL(size, 10);
    struct lp_buf got = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_s3_get(&cl, dst, &got, &r), 0);
    CU_ASSERT(got.len == 10 && memcmp(got.data, "0123456789", 10) == 0);
    /* a class change in place: the object stays, listed with a class */
    CU_ASSERT_EQUAL(lp_s3_copy(&cl, NULL, dst, dst, "STANDARD_IA", &r), 0);
    CU_ASSERT_EQUAL(lp_s3_get(&cl, dst, &got, &r), 0); /* same bytes after it */
    CU_ASSERT(got.len == 10 && memcmp(got.data, "0123456789", 10) == 0);
    char cls[64] = "";
    CU_ASSERT_EQUAL(lp_s3_list(&cl, dst, NULL, class_cb, cls, &r), 0);
    CU_ASSERT(cls[0] != '\0');
    lp_buf_release(&got);
    CU_ASSERT_EQUAL(lp_s3_head(&cl, "no/such/key", &size, &r), -ENOENT);
    /* copying a missing object fails, not retryable */
    CU_ASSERT_NOT_EQUAL(lp_s3_copy(&cl, NULL, "no/such/key", dst, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.retryable, 0);
    /* 1000 keys in one request, plus the two above */
    static char keys[LP_S3_DELETE_MAX][96];
    const char *kp[LP_S3_DELETE_MAX];
    for (int i = 0; i < LP_S3_DELETE_MAX - 2; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%s/del/%04d'\"", prefix, i);
        kp[i] = keys[i];
        if (lp_s3_put(&cl, keys[i], "x", 1, NULL, NULL, &r)) {
            CU_FAIL("put");
            break;
        }
    }
    kp[LP_S3_DELETE_MAX - 2] = src;
    kp[LP_S3_DELETE_MAX - 1] = dst;
    struct lp_buf failed = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_s3_delete_many(&cl, kp, LP_S3_DELETE_MAX, collect_failed, &failed, &r), 0);
    CU_ASSERT_EQUAL(failed.len, 0);
    size_t count = 0;
    char pfx[160];
    snprintf(pfx, sizeof(pfx), "%s/del/", prefix);
    CU_ASSERT_EQUAL(lp_s3_list(&cl, pfx, NULL, count_cb, &count, &r), 0);
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_EQUAL(lp_s3_head(&cl, src, &size, &r), -ENOENT);
    /* more than the store takes at once is refused here */
    CU_ASSERT_EQUAL(lp_s3_delete_many(&cl, kp, LP_S3_DELETE_MAX + 1, NULL, NULL, &r), LP_EINVAL);
    lp_buf_release(&failed);
    lp_s3_client_release(&cl);
    lp_s3_release(&s);
}

static void test_wrong_secret(void)
{
    struct lp_s3 s;
    char err[200];
    struct lp_s3_cfg c = cfg("not-the-secret-xyz");
    CU_ASSERT_FATAL(lp_s3_init(&s, &c, err, sizeof(err)) == 0);
    struct lp_s3_client cl;
    lp_s3_client_init(&cl, &s);
    struct lp_s3_result r;
    CU_ASSERT_NOT_EQUAL(lp_s3_put(&cl, "x/y", "z", 1, NULL, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_EQUAL(r.retryable, 0);
    CU_ASSERT(strstr(r.message, "not-the-secret") == NULL && strstr(r.code, "not-the") == NULL);
    lp_s3_client_release(&cl);
    lp_s3_release(&s);
}

int main(void)
{
    const char *port = getenv("S3_PORT");
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%s", port ? port : "9410");
    snprintf(prefix, sizeof(prefix), "client-test-%ld", (long)time(NULL));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const struct lp_test tests[] = {
        {"put, get, multipart, delete", test_put_get_multipart},
        {"list pages and dirs", test_list_pages},
        {"copy, head, class change, batched delete", test_copy_head_delete_many},
        {"wrong secret", test_wrong_secret},
        {NULL, NULL},
    };
    int rc = lp_test_run("s3 client", tests);
    curl_global_cleanup();
    return rc;
}
