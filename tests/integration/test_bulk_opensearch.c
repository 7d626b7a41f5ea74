/* lp_bulk against the real OpenSearch node: create with event ids, a replay
 * answers 409 (already there), a mapping conflict is a per-item 400 that
 * goes to the dead letter while its neighbours succeed; gzip bodies too.
 * LP_OPENSEARCH_URL (http://127.0.0.1:9200). */
#include "lp_buf.h"
#include "lp_bulk.h"
#include "lp_codec.h"
#include "lp_test.h"
#include "lp_test_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *es;
static char index_name[64];

static long http(const char *method, const char *path, const char *ctype, const char *encoding,
                 const void *body, size_t len, struct lp_buf *out)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", es, path);
    return lp_test_http(method, url, ctype, encoding, body, len, out);
}

static void send_and_classify(struct lp_bulk *b, int gzip, struct lp_bulk_item *items,
                              enum lp_bulk_verdict *v)
{
    struct lp_buf out = LP_BUF_INIT, z = LP_BUF_INIT;
    const void *body = b->body.data;
    size_t len = b->body.len;
    if (gzip) {
        CU_ASSERT_EQUAL_FATAL(lp_codec_compress(NULL, LP_CODEC_GZIP, 0, body, len, &z), 0);
        body = z.data;
        len = z.len;
    }
    long st = http("POST", "/_bulk", "application/x-ndjson", gzip ? "gzip" : NULL, body, len, &out);
    char why[256];
    *v = lp_bulk_classify(st, out.data, out.len, b->n, items, why, sizeof(why));
    if (*v != LP_BULK_ITEMS)
        fprintf(stderr, "\nbulk: %s\n", why);
    lp_buf_release(&out);
    lp_buf_release(&z);
}

static void test_bulk_semantics(void)
{
    struct lp_buf out = LP_BUF_INIT;
    char path[128];
    snprintf(path, sizeof(path), "/%s", index_name);
    const char *mapping = "{\"mappings\":{\"properties\":{\"n\":{\"type\":\"long\"},"
                          "\"@timestamp\":{\"type\":\"date\"}}}}";
    CU_ASSERT_EQUAL_FATAL(
        http("PUT", path, "application/json", NULL, mapping, strlen(mapping), &out), 200);

    struct lp_bulk b;
    lp_bulk_init(&b, 1 << 20);
    const char *docs[] = {
        "{\"@timestamp\":\"2026-11-28T07:21:00Z\",\"message\":\"a\",\"n\":1}",
        "{\"@timestamp\":\"2026-11-28T07:21:01Z\",\"message\":\"b\",\"n\":2}",
        "{\"@timestamp\":\"2026-11-28T07:21:02Z\",\"message\":\"c\",\"n\":\"not a number\"}"};
    const char *ids[] = {"e9cc0a349479a35e9f0fb5bac711b5ac", "606bee2e8ed83454452310c4301bdd20",
                         "3552c604b4dde58de4acdf7857260150"};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(lp_bulk_add(&b, index_name, ids[i], docs[i], strlen(docs[i])), 0);
    struct lp_bulk_item it[3];
    enum lp_bulk_verdict v;
    send_and_classify(&b, 0, it, &v);
    CU_ASSERT_EQUAL_FATAL(v, LP_BULK_ITEMS);
    CU_ASSERT_EQUAL(it[0].status, 201);
    CU_ASSERT_EQUAL(it[0].verdict, LP_ITEM_OK);
    CU_ASSERT_EQUAL(it[1].verdict, LP_ITEM_OK);
    CU_ASSERT_EQUAL(it[2].status, 400);
    CU_ASSERT_EQUAL(it[2].verdict, LP_ITEM_DROP);
    CU_ASSERT_PTR_NOT_NULL(strstr(it[2].reason, "mapper_parsing_exception"));

    /* the same request again, gzip-compressed: already there = success */
    send_and_classify(&b, 1, it, &v);
    CU_ASSERT_EQUAL_FATAL(v, LP_BULK_ITEMS);
    CU_ASSERT_EQUAL(it[0].status, 409);
    CU_ASSERT_EQUAL(it[0].verdict, LP_ITEM_OK);
    CU_ASSERT_EQUAL(it[1].status, 409);
    CU_ASSERT_EQUAL(it[1].verdict, LP_ITEM_OK);
    CU_ASSERT_EQUAL(it[2].verdict, LP_ITEM_DROP);

    snprintf(path, sizeof(path), "/%s/_refresh", index_name);
    http("POST", path, "application/json", NULL, "", 0, &out);
    snprintf(path, sizeof(path), "/%s/_count", index_name);
    CU_ASSERT_EQUAL(http("GET", path, "application/json", NULL, NULL, 0, &out), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "\"count\":2"));
    snprintf(path, sizeof(path), "/%s", index_name);
    CU_ASSERT_EQUAL(http("DELETE", path, "application/json", NULL, NULL, 0, &out), 200);
    lp_bulk_release(&b);
    lp_buf_release(&out);
}

int main(void)
{
    es = getenv("LP_OPENSEARCH_URL") ? getenv("LP_OPENSEARCH_URL") : "http://127.0.0.1:9200";
    snprintf(index_name, sizeof(index_name), "lp-bulk-%d", (int)getpid());
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const struct lp_test tests[] = {
        {"bulk semantics", test_bulk_semantics},
        {NULL, NULL},
    };
    int rc = lp_test_run("bulk-opensearch", tests);
    curl_global_cleanup();
    return rc;
}
