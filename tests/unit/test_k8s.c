/* The shipper's Pod snapshots (k8s_meta.h): what it takes from a real-shaped
 * Pod object (labels, allow-listed annotations, the owning workload, node,
 * pod IP, images, the logpipe.io hints) and what it refuses from a
 * hostile one; the cache fed list pages and watch lines as the API server
 * sends them (no thread, no server). The HTTP client runs against the
 * stand-in API server in tests/integration/test_k8s_e2e.py. */
#include "k8s_meta.h"
#include "lp_config.h"
#include "lp_kv.h"
#include "lp_metrics.h"
#include "lp_error.h"
#include "lp_test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *allow[] = {"team.example.com/owner", "example.org/*"};

static struct lp_k8s_pod *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    struct lp_k8s_pod *p = lp_k8s_pod_parse(j, allow, 2);
    json_decref(j);
    return p;
}

static const char *deployment_pod =
    "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web-7d9f8c6b5-x2k4q\","
    "\"namespace\":\"shop\",\"uid\":\"0b6e9f4e-1111-4c1e-9a3e-2f6f1d2e3a4b\","
    "\"resourceVersion\":\"123\",\"labels\":{\"app.kubernetes.io/name\":\"web\","
    "\"pod-template-hash\":\"7d9f8c6b5\",\"tier\":\"frontend\"},"
    "\"annotations\":{\"team.example.com/owner\":\"checkout\",\"team.example.com/secret\":\"no\","
    "\"example.org/a\":\"1\",\"example.org/b\":\"2\",\"kubectl.kubernetes.io/last-applied-"
    "configuration\":\"{...}\",\"logpipe.io/parser\":\"app-json\",\"logpipe.io/exclude\":\"false\","
    "\"logpipe.io/multiline\":\"java\"},"
    "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"n\"},"
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"web-7d9f8c6b5\","
    "\"uid\":\"x\",\"controller\":true,\"blockOwnerDeletion\":true}]},"
    "\"spec\":{\"nodeName\":\"node-a\",\"initContainers\":[{\"name\":\"init\",\"image\":\"busybox:"
    "1\"}],"
    "\"containers\":[{\"name\":\"app\",\"image\":\"registry.example/web:2.1\"},"
    "{\"name\":\"sidecar\",\"image\":\"envoy:1.29\"}]},"
    "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.1.7\",\"hostIP\":\"192.168.1.10\"}}";

static void test_deployment_pod(void)
{
    struct lp_k8s_pod *p = parse(deployment_pod);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(p->ns, "shop");
    CU_ASSERT_STRING_EQUAL(p->name, "web-7d9f8c6b5-x2k4q");
    CU_ASSERT_STRING_EQUAL(p->uid, "0b6e9f4e-1111-4c1e-9a3e-2f6f1d2e3a4b");
    CU_ASSERT_STRING_EQUAL(p->node, "node-a");
    CU_ASSERT_STRING_EQUAL(p->ip, "10.244.1.7");
    /* the ReplicaSet's name less the pod-template-hash is the Deployment */
    CU_ASSERT_STRING_EQUAL(p->owner_kind, "deployment");
    CU_ASSERT_STRING_EQUAL(p->owner_name, "web");
    /* labels normalised as the wire carries them */
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&p->labels, "app_kubernetes_io/name"), "web");
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&p->labels, "tier"), "frontend");
    CU_ASSERT_EQUAL(p->labels.n, 3);
    /* only the allow-listed annotations, exact keys and prefixes */
    CU_ASSERT_EQUAL(p->annotations.n, 3);
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&p->annotations, "team_example_com/owner"), "checkout");
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&p->annotations, "example_org/b"), "2");
    CU_ASSERT_PTR_NULL(lp_kvlist_get(&p->annotations, "team_example_com/secret"));
    /* hints */
    CU_ASSERT_EQUAL(p->exclude, 0);
    CU_ASSERT_STRING_EQUAL(p->parser, "app-json");
    CU_ASSERT_STRING_EQUAL(p->multiline, "java");
    /* images by container, init containers too */
    CU_ASSERT_STRING_EQUAL(lp_k8s_pod_image(p, "app"), "registry.example/web:2.1");
    CU_ASSERT_STRING_EQUAL(lp_k8s_pod_image(p, "init"), "busybox:1");
    CU_ASSERT_PTR_NULL(lp_k8s_pod_image(p, "nope"));
    CU_ASSERT_PTR_NULL(lp_k8s_pod_image(p, NULL));
    lp_k8s_pod_release(p);
}

static struct lp_k8s_pod *owned(const char *kind, const char *name, const char *hash)
{
    char buf[1024];
    snprintf(buf, sizeof(buf),
             "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"labels\":{%s%s%s},"
             "\"ownerReferences\":[{\"kind\":\"%s\",\"name\":\"%s\",\"controller\":true}]}}",
             hash ? "\"pod-template-hash\":\"" : "", hash ? hash : "", hash ? "\"" : "", kind,
             name);
    return parse(buf);
}

static void test_owners(void)
{
    static const struct {
        const char *kind, *name, *hash, *want_kind, *want_name;
    } cases[] = {
        {"ReplicaSet", "api-5f7b9", "5f7b9", "deployment", "api"},
        {"ReplicaSet", "api-5f7b9", NULL, "replicaset", "api-5f7b9"},  /* no hash: a bare RS */
        {"ReplicaSet", "api-5f7b9", "zzz", "replicaset", "api-5f7b9"}, /* not its hash */
        {"ReplicaSet", "5f7b9", "5f7b9", "replicaset", "5f7b9"},       /* nothing before it */
        {"StatefulSet", "db", NULL, "statefulset", "db"},
        {"DaemonSet", "agent", NULL, "daemonset", "agent"},
        {"Job", "backup-29123456", NULL, "job", "backup-29123456"},
        {"CronJob", "nightly", NULL, "cronjob", "nightly"},
        {"Node", "node-a", NULL, NULL, NULL}, /* not a workload */
        {"StatefulSet", "", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lp_k8s_pod *p = owned(cases[i].kind, cases[i].name, cases[i].hash);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        if (cases[i].want_kind) {
            CU_ASSERT_PTR_NOT_NULL_FATAL(p->owner_kind);
            CU_ASSERT_STRING_EQUAL(p->owner_kind, cases[i].want_kind);
            CU_ASSERT_STRING_EQUAL(p->owner_name, cases[i].want_name);
        } else {
            CU_ASSERT_PTR_NULL(p->owner_kind);
            CU_ASSERT_PTR_NULL(p->owner_name);
        }
        lp_k8s_pod_release(p);
    }
    /* a reference that is not the controller names no owner */
    struct lp_k8s_pod *p =
        parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\","
              "\"ownerReferences\":[{\"kind\":\"StatefulSet\",\"name\":\"s\"}]}}");
    CU_ASSERT_PTR_NULL(p->owner_kind);
    lp_k8s_pod_release(p);
}

static void test_hostile(void)
{
    /* not pods */
    const char *refused[] = {
        "[]",
        "{}",
        "{\"metadata\":[]}",
        "{\"metadata\":{\"name\":\"p\"}}",
        "{\"metadata\":{\"name\":\"p\",\"namespace\":7}}",
        "{\"metadata\":{\"name\":\"\",\"namespace\":\"n\"}}",
        "{\"metadata\":{\"name\":\"p\\u0000q\",\"namespace\":\"n\"}}",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        CU_ASSERT_PTR_NULL(parse(refused[i]));

    /* wrong shapes are skipped, not trusted */
    struct lp_k8s_pod *p =
        parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"labels\":{\"a\":1,\"b\":{},"
              "\"c\":\"x\\u0000y\",\"d.e\":\"ok\",\"d_e\":\"dup\"},\"annotations\":[\"x\"],"
              "\"ownerReferences\":{\"kind\":\"Job\"}},\"spec\":{\"nodeName\":5,\"containers\":"
              "[7,{\"name\":\"app\"},{\"name\":\"a\",\"image\":[]}]},\"status\":[]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->labels.n, 1);
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&p->labels, "d_e"), "ok");
    CU_ASSERT_EQUAL(p->annotations.n, 0);
    CU_ASSERT_PTR_NULL(p->owner_kind);
    CU_ASSERT_PTR_NULL(p->node);
    CU_ASSERT_PTR_NULL(p->ip);
    CU_ASSERT_EQUAL(p->images.n, 0);
    CU_ASSERT_PTR_NULL(p->parser);
    lp_k8s_pod_release(p);

    /* 1000 labels, a 300-byte parser name, exclude spelled otherwise */
    char *big = malloc(200000);
    size_t n = (size_t)snprintf(big, 200000,
                                "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\","
                                "\"annotations\":{\"logpipe.io/exclude\":\"yes\","
                                "\"logpipe.io/parser\":\"%0300d\"},\"labels\":{",
                                0);
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(big + n, 200000 - n, "%s\"l%d\":\"v\"", i ? "," : "", i);
    snprintf(big + n, 200000 - n, "}}}");
    p = parse(big);
    free(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(p->labels.n, 128);
    CU_ASSERT_PTR_NULL(p->parser);
    CU_ASSERT_EQUAL(p->exclude, 0);
    lp_k8s_pod_release(p);

    /* exclude: "true" */
    p = parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"annotations\":"
              "{\"logpipe.io/exclude\":\"true\"}}}");
    CU_ASSERT_EQUAL(p->exclude, 1);
    lp_k8s_pod_release(p);
}

static const char *event(char *buf, size_t n, const char *type, const char *name, const char *uid,
                         const char *version)
{
    snprintf(buf, n,
             "{\"type\":\"%s\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
             "\"namespace\":\"ns\",\"uid\":\"%s\",\"resourceVersion\":\"7\",\"labels\":"
             "{\"version\":\"%s\"}},\"spec\":{\"nodeName\":\"node-a\"}}}",
             type, name, uid, version);
    return buf;
}

/* One watch event of pod ns/name; what lp_k8s_feed_event returns. */
static int feed(struct lp_k8s *k, const char *type, const char *name, const char *uid,
                const char *version)
{
    char buf[1024];
    event(buf, sizeof(buf), type, name, uid, version);
    return lp_k8s_feed_event(k, buf, strlen(buf));
}

/* #29 item 8: one namespace's churn (pods created and deleted fast, each
 * held deleted_grace) filled max_pods and another tenant's new pod shipped
 * without metadata. A deleted pod now makes room for a new one; only live
 * pods can fill the cache. */
static void test_churn_cannot_blind_others(void)
{
    struct lp_config_kubernetes cfg = {.enabled = 1, .deleted_grace_ms = 600000, .max_pods = 50};
    struct lp_metrics *m = lp_metrics_new();
    struct lp_k8s *k = lp_k8s_new_offline(&cfg, m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    const char *empty = "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"1\"},"
                        "\"items\":[]}";
    int more;
    CU_ASSERT_EQUAL(lp_k8s_feed_list(k, empty, strlen(empty), 0, &more), 0);
    char buf[512], name[32], uid[32];
    /* the noisy tenant: 500 pods created and deleted */
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "churn-%d", i);
        snprintf(uid, sizeof(uid), "u-%d", i);
        for (int d = 0; d < 2; d++) {
            snprintf(buf, sizeof(buf),
                     "{\"type\":\"%s\",\"object\":{\"metadata\":{\"name\":\"%s\","
                     "\"namespace\":\"noisy\",\"uid\":\"%s\"}}}",
                     d ? "DELETED" : "ADDED", name, uid);
            CU_ASSERT_EQUAL(lp_k8s_feed_event(k, buf, strlen(buf)), 0);
        }
    }
    /* another tenant's new pod: cached, with its labels */
    snprintf(buf, sizeof(buf),
             "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"api-1\","
             "\"namespace\":\"shop\",\"uid\":\"s1\",\"labels\":{\"app\":\"api\"}}}}");
    CU_ASSERT_EQUAL(lp_k8s_feed_event(k, buf, strlen(buf)), 0);
    struct lp_k8s_pod *p = lp_k8s_lookup(k, "shop", "api-1", "s1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&p->labels, "app"), "api");
    lp_k8s_pod_release(p);
    /* the most recently deleted of the noisy pods is still held (grace) */
    p = lp_k8s_lookup(k, "noisy", "churn-499", NULL);
    CU_ASSERT_PTR_NOT_NULL(p);
    lp_k8s_pod_release(p);
    CU_ASSERT(lp_counter_get(lp_metrics_counter(m, "logpipe_shipper_k8s_deleted_evicted_total", "",
                                                NULL)) >= 450);
    /* live pods only: the cache still refuses past max_pods */
    for (int i = 0; i < 60; i++) {
        snprintf(buf, sizeof(buf),
                 "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"live-%d\","
                 "\"namespace\":\"noisy\",\"uid\":\"l%d\"}}}",
                 i, i);
        lp_k8s_feed_event(k, buf, strlen(buf));
    }
    p = lp_k8s_lookup(k, "noisy", "live-59", NULL);
    CU_ASSERT_PTR_NULL(p); /* full of live pods */
    p = lp_k8s_lookup(k, "shop", "api-1", "s1");
    CU_ASSERT_PTR_NOT_NULL(p); /* a live pod is never evicted */
    lp_k8s_pod_release(p);
    lp_k8s_stop(k);
    lp_metrics_free(m);
}

static void test_cache(void)
{
    struct lp_config_kubernetes cfg = {.enabled = 1, .deleted_grace_ms = 600000, .max_pods = 4};
    struct lp_metrics *m = lp_metrics_new();
    struct lp_k8s *k = lp_k8s_new_offline(&cfg, m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    CU_ASSERT_EQUAL(lp_k8s_synced(k), 0);
    uint64_t g0 = lp_k8s_generation(k);

    /* a list in two pages */
    int more = 0;
    const char *page1 = "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"5\","
                        "\"continue\":\"abc\"},\"items\":[{\"metadata\":{\"name\":\"a\","
                        "\"namespace\":\"ns\",\"uid\":\"ua\"}},{\"metadata\":{\"name\":\"b\","
                        "\"namespace\":\"ns\",\"uid\":\"ub\"}}]}";
    const char *page2 = "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"5\"},"
                        "\"items\":[{\"metadata\":{\"name\":\"c\",\"namespace\":\"ns\"}}, 7]}";
    CU_ASSERT_EQUAL(lp_k8s_feed_list(k, page1, strlen(page1), 1, &more), 0);
    CU_ASSERT_EQUAL(more, 1);
    CU_ASSERT_EQUAL(lp_k8s_synced(k), 0); /* not before the last page */
    CU_ASSERT_EQUAL(lp_k8s_feed_list(k, page2, strlen(page2), 0, &more), 0);
    CU_ASSERT_EQUAL(more, 0);
    CU_ASSERT_EQUAL(lp_k8s_synced(k), 1);
    CU_ASSERT(lp_k8s_generation(k) != g0);
    struct lp_k8s_pod *a = lp_k8s_lookup(k, "ns", "a", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    lp_k8s_pod_release(a);
    /* the path's uid must match: a pod recreated under its name is another */
    CU_ASSERT_PTR_NULL(lp_k8s_lookup(k, "ns", "a", "other-uid"));
    a = lp_k8s_lookup(k, "ns", "a", "ua");
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NULL(lp_k8s_lookup(k, "other", "a", NULL));
    CU_ASSERT_PTR_NULL(lp_k8s_lookup(k, "ns", "zz", NULL));

    /* MODIFIED publishes a new snapshot; a reference to the old one stays valid */
    uint64_t g1 = lp_k8s_generation(k);
    CU_ASSERT_EQUAL(feed(k, "MODIFIED", "a", "ua", "v2"), 0);
    CU_ASSERT(lp_k8s_generation(k) != g1);
    CU_ASSERT_PTR_NULL(lp_kvlist_get(&a->labels, "version"));
    lp_k8s_pod_release(a);
    a = lp_k8s_lookup(k, "ns", "a", NULL);
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&a->labels, "version"), "v2");
    lp_k8s_pod_release(a);

    /* ADDED up to max_pods (4), then not cached */
    CU_ASSERT_EQUAL(feed(k, "ADDED", "d", "ud", "v1"), 0);
    CU_ASSERT_EQUAL(feed(k, "ADDED", "e", "ue", "v1"), 0);
    struct lp_k8s_pod *d = lp_k8s_lookup(k, "ns", "d", NULL);
    CU_ASSERT_PTR_NOT_NULL(d);
    lp_k8s_pod_release(d);
    CU_ASSERT_PTR_NULL(lp_k8s_lookup(k, "ns", "e", NULL));

    /* DELETED: kept for deleted_grace */
    CU_ASSERT_EQUAL(feed(k, "DELETED", "b", "ub", "v1"), 0);
    struct lp_k8s_pod *b = lp_k8s_lookup(k, "ns", "b", NULL);
    CU_ASSERT_PTR_NOT_NULL(b);
    lp_k8s_pod_release(b);

    /* 410 Gone in the stream; other errors and garbage change nothing */
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                       "\"reason\":\"Expired\"}}";
    CU_ASSERT_EQUAL(lp_k8s_feed_event(k, gone, strlen(gone)), 1);
    uint64_t g2 = lp_k8s_generation(k);
    const char *junk[] = {"",
                          "{",
                          "[]",
                          "null",
                          "{\"type\":5,\"object\":{}}",
                          "{\"type\":\"ADDED\",\"object\":[]}",
                          "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}",
                          "{\"type\":\"RESTARTED\",\"object\":{}}",
                          "{\"type\":\"ERROR\",\"object\":{\"code\":\"410\"}}",
                          "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":"
                          "\"99\"}}}"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        CU_ASSERT_EQUAL(lp_k8s_feed_event(k, junk[i], strlen(junk[i])), 0);
    CU_ASSERT_EQUAL(lp_k8s_generation(k), g2);
    CU_ASSERT_EQUAL(lp_k8s_feed_list(k, "{\"items\":{}}", 12, 1, &more), LP_ECORRUPT);

    /* a relist without c: c counts as deleted (kept for the grace) */
    const char *relist = "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"9\"},"
                         "\"items\":[{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\"}}]}";
    CU_ASSERT_EQUAL(lp_k8s_feed_list(k, relist, strlen(relist), 1, &more), 0);
    struct lp_k8s_pod *c = lp_k8s_lookup(k, "ns", "c", NULL);
    CU_ASSERT_PTR_NOT_NULL(c);
    lp_k8s_pod_release(c);
    lp_k8s_stop(k);

    /* with no grace, deleted pods go at once */
    cfg.deleted_grace_ms = 0;
    k = lp_k8s_new_offline(&cfg, m);
    CU_ASSERT_EQUAL(lp_k8s_feed_list(k, page2, strlen(page2), 1, &more), 0);
    c = lp_k8s_lookup(k, "ns", "c", NULL);
    CU_ASSERT_PTR_NOT_NULL(c); /* a caller's reference outlives the entry */
    CU_ASSERT_EQUAL(feed(k, "DELETED", "c", "", "v1"), 0);
    CU_ASSERT_PTR_NULL(lp_k8s_lookup(k, "ns", "c", NULL));
    CU_ASSERT_STRING_EQUAL(c->name, "c");
    lp_k8s_pod_release(c);
    lp_k8s_stop(k);
    lp_metrics_free(m);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"deployment pod", test_deployment_pod},
        {"owners", test_owners},
        {"hostile pods", test_hostile},
        {"cache", test_cache},
        {"one namespace's churn cannot blind the others", test_churn_cannot_blind_others},
        {NULL, NULL},
    };
    return lp_test_run("k8s", tests);
}
