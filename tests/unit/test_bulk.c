/* _bulk bodies, response classification (every verdict), index names. */
#include "lp_bulk.h"
#include "lp_error.h"
#include "lp_test.h"

#include <stdio.h>
#include <string.h>

static void test_body(void)
{
    struct lp_bulk b;
    lp_bulk_init(&b, 300);
    CU_ASSERT_EQUAL(lp_bulk_add(&b, "logs-shop-2026.11.28", "abc", "{\"message\":\"x\"}", 15), 0);
    CU_ASSERT_EQUAL(lp_bulk_add(&b, "logs", "d\"q", "{}", 2), 0);
    CU_ASSERT_STRING_EQUAL(b.body.data,
                           "{\"create\":{\"_index\":\"logs-shop-2026.11.28\",\"_id\":\"abc\"}}\n"
                           "{\"message\":\"x\"}\n"
                           "{\"create\":{\"_index\":\"logs\",\"_id\":\"d\\\"q\"}}\n{}\n");
    CU_ASSERT_EQUAL(b.n, 2);
    CU_ASSERT_EQUAL(lp_bulk_add(&b, "logs", "x", "{\"a\":\n1}", 8), LP_EINVAL);
    char longid[600];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    CU_ASSERT_EQUAL(lp_bulk_add(&b, "logs", longid, "{}", 2), LP_EINVAL);
    size_t before = b.body.len;
    char doc[300];
    memset(doc, 'x', sizeof(doc));
    doc[0] = '"';
    doc[sizeof(doc) - 1] = '"';
    CU_ASSERT_EQUAL(lp_bulk_add(&b, "logs", "big", doc, sizeof(doc)), LP_ETOOBIG);
    CU_ASSERT_EQUAL(b.body.len, before); /* nothing half-added */
    CU_ASSERT_EQUAL(b.n, 2);
    lp_bulk_reset(&b);
    CU_ASSERT_EQUAL(b.n, 0);
    lp_bulk_release(&b);
}

static void test_classify_items(void)
{
    const char *resp =
        "{\"took\":3,\"errors\":true,\"items\":["
        "{\"create\":{\"_index\":\"l\",\"_id\":\"1\",\"status\":201}},"
        "{\"create\":{\"_index\":\"l\",\"_id\":\"2\",\"status\":409,\"error\":{\"type\":\"version_"
        "conflict_engine_exception\",\"reason\":\"[2]: version conflict, document already "
        "exists\"}}},"
        "{\"create\":{\"_index\":\"l\",\"_id\":\"3\",\"status\":400,\"error\":{\"type\":\"mapper_"
        "parsing_exception\",\"reason\":\"failed to parse field [n] of type [long]\"}}},"
        "{\"create\":{\"_index\":\"l\",\"_id\":\"4\",\"status\":429,\"error\":{\"type\":\"es_"
        "rejected_execution_exception\",\"reason\":\"rejected\"}}},"
        "{\"create\":{\"_index\":\"l\",\"_id\":\"5\",\"status\":503,\"error\":{\"type\":"
        "\"unavailable_shards_exception\"}}},"
        "{\"create\":{\"_index\":\"l\",\"_id\":\"6\",\"status\":404,\"error\":{\"type\":\"index_"
        "not_found_exception\",\"reason\":\"no such index\"}}},"
        "{\"create\":{\"_index\":\"l\",\"_id\":\"7\",\"status\":403,\"error\":{\"type\":\"cluster_"
        "block_exception\",\"reason\":\"index [l] blocked by: [FORBIDDEN/12/index read-only / "
        "allow delete (api)]\"}}},"
        "{\"index\":{\"_index\":\"l\",\"_id\":\"8\",\"status\":200}}"
        "]}";
    struct lp_bulk_item it[8];
    char why[256];
    CU_ASSERT_EQUAL_FATAL(lp_bulk_classify(200, resp, strlen(resp), 8, it, why, sizeof(why)),
                          LP_BULK_ITEMS);
    enum lp_item_verdict want[] = {LP_ITEM_OK,    LP_ITEM_OK,   LP_ITEM_DROP,  LP_ITEM_RETRY,
                                   LP_ITEM_RETRY, LP_ITEM_DROP, LP_ITEM_RETRY, LP_ITEM_OK};
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(it[i].verdict, want[i]);
    CU_ASSERT_EQUAL(it[2].status, 400);
    CU_ASSERT_STRING_EQUAL(it[2].reason,
                           "mapper_parsing_exception: failed to parse field [n] of type [long]");
    CU_ASSERT_PTR_NOT_NULL(strstr(it[1].reason, "version_conflict_engine_exception"));
    CU_ASSERT_STRING_EQUAL(it[4].reason, "unavailable_shards_exception");
    CU_ASSERT_STRING_EQUAL(it[0].reason, "");
}

/* The answers of filter_path=errors,items.*.status,items.*.error: an
 * all-created one is read without parsing the items; one with an error,
 * or whose statuses do not number the actions, goes the full way. */
static void test_classify_filtered(void)
{
    struct lp_bulk_item it[3];
    char why[256];
    const char *ok = "{\"errors\":false,\"items\":[{\"create\":{\"status\":201}},"
                     "{\"create\":{\"status\":201}},{\"create\":{\"status\":201}}]}";
    memset(it, 0xff, sizeof(it));
    CU_ASSERT_EQUAL(lp_bulk_classify(200, ok, strlen(ok), 3, it, why, sizeof(why)), LP_BULK_ITEMS);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(it[i].verdict, LP_ITEM_OK);
        CU_ASSERT_EQUAL(it[i].status, 201);
        CU_ASSERT_STRING_EQUAL(it[i].reason, "");
    }
    /* two statuses for three actions: garbled, whatever "errors" says */
    const char *short2 = "{\"errors\" : false,\"items\":[{\"create\":{\"status\":201}},"
                         "{\"create\":{\"status\":201}}]}";
    CU_ASSERT_EQUAL(lp_bulk_classify(200, short2, strlen(short2), 3, it, why, sizeof(why)),
                    LP_BULK_RETRY);
    /* an id that spells "status" is escaped inside its string: not counted */
    const char *tricky =
        "{\"errors\":false,\"items\":[{\"create\":{\"_id\":\"a\\\"status\\\"\","
        "\"status\":201}},{\"create\":{\"status\":201}},{\"create\":{\"status\":201}}]}";
    CU_ASSERT_EQUAL(lp_bulk_classify(200, tricky, strlen(tricky), 3, it, why, sizeof(why)),
                    LP_BULK_ITEMS);
    CU_ASSERT_EQUAL(it[0].verdict, LP_ITEM_OK);
    /* errors true: each item as it says */
    const char *bad =
        "{\"errors\":true,\"items\":[{\"create\":{\"status\":201}},"
        "{\"create\":{\"status\":400,\"error\":{\"type\":\"mapper_parsing_exception\","
        "\"reason\":\"x\"}}},{\"create\":{\"status\":409,\"error\":{\"type\":"
        "\"version_conflict_engine_exception\"}}}]}";
    CU_ASSERT_EQUAL(lp_bulk_classify(200, bad, strlen(bad), 3, it, why, sizeof(why)),
                    LP_BULK_ITEMS);
    CU_ASSERT_EQUAL(it[0].verdict, LP_ITEM_OK);
    CU_ASSERT_EQUAL(it[1].verdict, LP_ITEM_DROP);
    CU_ASSERT_STRING_EQUAL(it[1].reason, "mapper_parsing_exception: x");
    CU_ASSERT_EQUAL(it[2].verdict, LP_ITEM_OK);
    CU_ASSERT_EQUAL(it[2].status, 409);
    /* no "errors" member (an unfiltered, odd answer): the full parse decides */
    const char *plain = "{\"items\":[{\"create\":{\"status\":201}}]}";
    CU_ASSERT_EQUAL(lp_bulk_classify(200, plain, strlen(plain), 1, it, why, sizeof(why)),
                    LP_BULK_ITEMS);
    CU_ASSERT_EQUAL(it[0].status, 201);
}

static void test_classify_requests(void)
{
    struct lp_bulk_item it[2];
    char why[256];
    CU_ASSERT_EQUAL(lp_bulk_classify(413, "", 0, 2, it, why, sizeof(why)), LP_BULK_SPLIT);
    CU_ASSERT_EQUAL(lp_bulk_classify(401, "", 0, 2, it, why, sizeof(why)), LP_BULK_HALT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "credentials"));
    CU_ASSERT_EQUAL(lp_bulk_classify(403, "", 0, 2, it, why, sizeof(why)), LP_BULK_HALT);
    CU_ASSERT_EQUAL(lp_bulk_classify(429, "", 0, 2, it, why, sizeof(why)), LP_BULK_RETRY);
    CU_ASSERT_EQUAL(lp_bulk_classify(502, "", 0, 2, it, why, sizeof(why)), LP_BULK_RETRY);
    CU_ASSERT_EQUAL(lp_bulk_classify(0, "", 0, 2, it, why, sizeof(why)),
                    LP_BULK_RETRY); /* no response */
    CU_ASSERT_EQUAL(lp_bulk_classify(400, "{\"error\":\"x\"}", 13, 2, it, why, sizeof(why)),
                    LP_BULK_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "HTTP 400"));
    /* garbled 200s: retry the whole request (safe: ids are deterministic) */
    const char *one = "{\"errors\":false,\"items\":[{\"create\":{\"status\":201}}]}";
    CU_ASSERT_EQUAL(lp_bulk_classify(200, one, strlen(one), 2, it, why, sizeof(why)),
                    LP_BULK_RETRY);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "1 items for 2 actions"));
    CU_ASSERT_EQUAL(lp_bulk_classify(200, "<html>", 6, 2, it, why, sizeof(why)), LP_BULK_RETRY);
    const char *nostatus = "{\"items\":[{\"create\":{}},{\"create\":{\"status\":201}}]}";
    CU_ASSERT_EQUAL(lp_bulk_classify(200, nostatus, strlen(nostatus), 2, it, why, sizeof(why)),
                    LP_BULK_RETRY);
}

static void test_index_names(void)
{
    json_t *ev =
        json_pack("{s:{s:s},s:{s:s}}", "kubernetes", "namespace", "Shop", "log", "level", "warn");
    char out[300];
    int64_t ts = 1795850460LL * 1000000000LL; /* 2026-11-28T07:21:00Z */
    CU_ASSERT_EQUAL(lp_index_name("logs-{kubernetes.namespace}-%Y.%m.%d", ev, ts, out, sizeof(out)),
                    0);
    CU_ASSERT_STRING_EQUAL(out, "logs-shop-2026.11.28");
    CU_ASSERT_EQUAL(lp_index_name("logs-{service.name}-%Y.%m.%d.%H", ev, ts, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "logs-unknown-2026.11.28.07");
    json_object_set_new(json_object_get(ev, "kubernetes"), "namespace", json_string("a/b c*"));
    CU_ASSERT_EQUAL(lp_index_name("_x-{kubernetes.namespace}", ev, ts, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "x-a_b_c_");
    CU_ASSERT_EQUAL(lp_index_name("logs", ev, ts, out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "logs");
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CU_ASSERT_EQUAL(lp_index_name(big, ev, ts, out, sizeof(out)), LP_ETOOBIG);
    json_decref(ev);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"body", test_body},
        {"classify items", test_classify_items},
        {"classify requests", test_classify_requests},
        {"classify filtered answers", test_classify_filtered},
        {"index names", test_index_names},
        {NULL, NULL},
    };
    return lp_test_run("bulk", tests);
}
