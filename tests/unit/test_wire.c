/* Wire format: round trips in every codec and mode, the vectors published
 * in docs/wire-format.md (byte-exact), and every decode error path. */
#include "lp_arena.h"
#include "lp_buf.h"
#include "lp_ecs.h"
#include "lp_error.h"
#include "lp_test.h"
#include "lp_kv.h"
#include "lp_wire.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct lp_wire_source vsrc = {
    .source_id = "7f2745c1e83bcc4f2b0c19f87a854e17",
    .host = "node-1",
    .path = "/var/log/containers/web-5d8f_shop_nginx-0123abcd.log",
    .format = "cri",
    .container_id = "0123abcd",
    .container_name = "nginx",
    .k8s_namespace = "shop",
    .k8s_pod_name = "web-5d8f",
    .k8s_pod_uid = "8c1f4e2a-77b1-4c3e-9a51-0d6c2f9e1b10",
    .k8s_container_name = "nginx",
};

#define MSG3 "caf\xc3\xa9 \"quoted\" \\ tab\t"
static const struct lp_wire_record vrecs[] = {
    {1795850460123456789LL, "stdout", 0, "GET /cart 200", 13, 0, 0, NULL, 0},
    {1795850460200000000LL, "stderr", 98, "panic: boom\n\tat main.go:12", 26, 0, 2, NULL, 0},
    {1795850461000000000LL, "stdout", 230, MSG3, sizeof(MSG3) - 1,
     LP_REC_TRUNCATED | LP_REC_PARTIAL, 0, NULL, 0},
};
#define NV (sizeof(vrecs) / sizeof(vrecs[0]))

static void encode(enum lp_codec codec, struct lp_buf *value, struct lp_wire_meta *meta,
                   struct lp_buf *ndjson)
{
    struct lp_wire_encoder e;
    lp_wire_encoder_init(&e, 1 << 20);
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_begin(&e, &vsrc), 0);
    for (size_t i = 0; i < NV; i++)
        CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_add(&e, &vrecs[i]), 0);
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_finish(&e, NULL, codec, 0, value, meta), 0);
    if (ndjson)
        lp_buf_append(ndjson, e.ndjson.data, e.ndjson.len);
    lp_wire_encoder_release(&e);
}

static void same_record(const struct lp_wire_record *a, const struct lp_wire_record *b)
{
    CU_ASSERT_EQUAL(a->ts_ns, b->ts_ns);
    CU_ASSERT_STRING_EQUAL(a->stream, b->stream);
    CU_ASSERT_EQUAL(a->offset, b->offset);
    CU_ASSERT_EQUAL(a->message_len, b->message_len);
    CU_ASSERT_EQUAL(memcmp(a->message, b->message, a->message_len), 0);
    CU_ASSERT_EQUAL(a->flags, b->flags);
    CU_ASSERT_EQUAL(a->lines, b->lines);
}

static void same_source(const struct lp_wire_source *s)
{
    CU_ASSERT_STRING_EQUAL(s->source_id, vsrc.source_id);
    CU_ASSERT_STRING_EQUAL(s->host, vsrc.host);
    CU_ASSERT_STRING_EQUAL(s->path, vsrc.path);
    CU_ASSERT_STRING_EQUAL(s->format, vsrc.format);
    CU_ASSERT_STRING_EQUAL(s->container_id, vsrc.container_id);
    CU_ASSERT_STRING_EQUAL(s->k8s_namespace, vsrc.k8s_namespace);
    CU_ASSERT_STRING_EQUAL(s->k8s_pod_name, vsrc.k8s_pod_name);
    CU_ASSERT_STRING_EQUAL(s->k8s_pod_uid, vsrc.k8s_pod_uid);
    CU_ASSERT_STRING_EQUAL(s->k8s_container_name, vsrc.k8s_container_name);
}

static int decode(const struct lp_wire_meta *meta, const void *v, size_t n, size_t cap,
                  struct lp_arena *a, struct lp_wire_batch *b, char *why)
{
    struct lp_buf scratch = LP_BUF_INIT;
    int rc = lp_wire_decode(meta, v, n, cap, NULL, &scratch, a, b, why, 256);
    lp_buf_release(&scratch);
    return rc;
}

static void test_round_trip(void)
{
    const enum lp_codec codecs[] = {LP_CODEC_IDENTITY, LP_CODEC_ZSTD, LP_CODEC_GZIP};
    for (size_t c = 0; c < 3; c++) {
        struct lp_buf value = LP_BUF_INIT;
        struct lp_wire_meta meta;
        encode(codecs[c], &value, &meta, NULL);
        CU_ASSERT_EQUAL(meta.records, NV);
        CU_ASSERT_EQUAL(meta.encoding, codecs[c]);
        struct lp_arena a;
        lp_arena_init(&a, 0, 0);
        struct lp_wire_batch b;
        char why[256];
        unsigned long slow = atomic_load(&lp_wire_slow_lines);
        /* message_json points into the scratch buffer: keep it alive */
        struct lp_buf scratch = LP_BUF_INIT;
        CU_ASSERT_EQUAL_FATAL(lp_wire_decode(&meta, value.data, value.len, 1 << 20, NULL, &scratch,
                                             &a, &b, why, sizeof(why)),
                              0);
        /* the encoder's lines take the fast path, and their escaped messages
         * are kept for copying */
        CU_ASSERT_EQUAL(atomic_load(&lp_wire_slow_lines), slow);
        for (size_t i = 0; i < b.n; i++) {
            struct lp_buf e = LP_BUF_INIT;
            lp_buf_append_json_string(&e, vrecs[i].message, vrecs[i].message_len);
            CU_ASSERT_PTR_NOT_NULL_FATAL(b.recs[i].message_json);
            CU_ASSERT_EQUAL(b.recs[i].message_json_len + 2, e.len);
            CU_ASSERT_EQUAL(memcmp(b.recs[i].message_json, e.data + 1, e.len - 2), 0);
            lp_buf_release(&e);
        }
        lp_buf_release(&scratch);
        same_source(&b.src);
        CU_ASSERT_EQUAL_FATAL(b.n, NV);
        for (size_t i = 0; i < NV; i++)
            same_record(&b.recs[i], &vrecs[i]);
        /* and jansson reads them the same */
        lp_wire_fast_decode = 0;
        CU_ASSERT_EQUAL_FATAL(decode(&meta, value.data, value.len, 1 << 20, &a, &b, why), 0);
        lp_wire_fast_decode = 1;
        CU_ASSERT_EQUAL(atomic_load(&lp_wire_slow_lines), slow + NV);
        CU_ASSERT_EQUAL_FATAL(b.n, NV);
        for (size_t i = 0; i < NV; i++)
            same_record(&b.recs[i], &vrecs[i]);
        lp_arena_release(&a);
        lp_buf_release(&value);
    }
}

static void test_per_record_mode(void)
{
    for (size_t i = 0; i < NV; i++) {
        struct lp_buf ev = LP_BUF_INIT;
        CU_ASSERT_EQUAL_FATAL(lp_wire_ecs_event(&vsrc, &vrecs[i], &ev), 0);
        struct lp_wire_meta meta;
        lp_wire_meta_init(&meta);
        char why[256];
        CU_ASSERT_EQUAL(lp_wire_meta_header(&meta, "logpipe-format", "1", 1, why, 256), 0);
        CU_ASSERT_EQUAL(
            lp_wire_meta_header(&meta, "content-type", "application/json", 16, why, 256), 0);
        CU_ASSERT_EQUAL(meta.batch, 0);
        struct lp_arena a;
        lp_arena_init(&a, 0, 0);
        struct lp_wire_batch b;
        CU_ASSERT_EQUAL_FATAL(decode(&meta, ev.data, ev.len, 1 << 20, &a, &b, why), 0);
        CU_ASSERT_EQUAL_FATAL(b.n, 1);
        same_source(&b.src);
        same_record(&b.recs[0], &vrecs[i]);
        lp_arena_release(&a);
        lp_buf_release(&ev);
    }
}

/* Text of the fenced block after "<!-- vector: NAME -->" in the doc. */
static char *doc_vector(const char *doc, const char *name)
{
    char marker[128];
    snprintf(marker, sizeof(marker), "<!-- vector: %s -->", name);
    const char *p = strstr(doc, marker);
    if (!p)
        return NULL;
    p = strstr(p, "```");
    if (!p)
        return NULL;
    p = strchr(p, '\n') + 1;
    const char *end = strstr(p, "\n```");
    if (!end)
        return NULL;
    return strndup(p, (size_t)(end - p) + 1); /* keep the final newline */
}

static size_t base64_decode(const char *in, unsigned char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0;
    int bits = 0;
    size_t n = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        const char *q = strchr(tbl, *p);
        if (!q || !*p)
            continue; /* newlines */
        acc = (acc << 6) | (unsigned)(q - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

static void test_doc_vectors(void)
{
    char *doc = lp_test_read_source("docs/wire-format.md", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    struct lp_buf value = LP_BUF_INIT, nd = LP_BUF_INIT;
    struct lp_wire_meta meta;
    encode(LP_CODEC_IDENTITY, &value, &meta, &nd);
    char *want = doc_vector(doc, "batch-ndjson");
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_STRING_EQUAL(nd.data, want);
    if (getenv("LP_PRINT_VECTORS"))
        printf("\n--- batch-ndjson\n%s", nd.data);
    free(want);

    struct lp_buf ev = LP_BUF_INIT;
    lp_wire_ecs_event(&vsrc, &vrecs[1], &ev);
    lp_buf_putc(&ev, '\n');
    want = doc_vector(doc, "ecs-event");
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_STRING_EQUAL(ev.data, want);
    if (getenv("LP_PRINT_VECTORS"))
        printf("--- ecs-event\n%s", ev.data);
    free(want);

    /* A zstd batch as bytes: decoding it must give the records above. */
    char *b64 = doc_vector(doc, "batch-zstd-base64");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b64);
    unsigned char *bin = malloc(strlen(b64));
    size_t binlen = base64_decode(b64, bin);
    struct lp_wire_meta zm = {LP_WIRE_FORMAT, 1, LP_CODEC_ZSTD, NV};
    struct lp_arena a;
    lp_arena_init(&a, 0, 0);
    struct lp_wire_batch b;
    char why[256];
    CU_ASSERT_EQUAL_FATAL(decode(&zm, bin, binlen, 1 << 20, &a, &b, why), 0);
    same_source(&b.src);
    CU_ASSERT_EQUAL_FATAL(b.n, NV);
    for (size_t i = 0; i < NV; i++)
        same_record(&b.recs[i], &vrecs[i]);
    if (getenv("LP_PRINT_VECTORS")) {
        struct lp_buf z = LP_BUF_INIT;
        struct lp_wire_meta m2;
        encode(LP_CODEC_ZSTD, &z, &m2, NULL);
        FILE *f = fopen("/tmp/lp-vector.zst", "wb");
        fwrite(z.data, 1, z.len, f);
        fclose(f);
        lp_buf_release(&z);
    }
    lp_arena_release(&a);
    free(bin);
    free(b64);
    lp_buf_release(&ev);
    lp_buf_release(&value);
    lp_buf_release(&nd);
    free(doc);
}

static void expect_error(const struct lp_wire_meta *meta, const char *body, size_t cap, int rc,
                         const char *reason)
{
    struct lp_arena a;
    lp_arena_init(&a, 0, 1 << 20);
    struct lp_wire_batch b;
    char why[256];
    CU_ASSERT_EQUAL(decode(meta, body, strlen(body), cap, &a, &b, why), rc);
    if (!strstr(why, reason))
        fprintf(stderr, "\nreason '%s' lacks '%s'\n", why, reason);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, reason));
    lp_arena_release(&a);
}

static void test_decode_errors(void)
{
    struct lp_wire_meta m = {LP_WIRE_FORMAT, 1, LP_CODEC_IDENTITY, 0};
    const char *src = "{\"logpipe.format\":1,\"logpipe.source_id\":\"s\"}\n";
    char body[512];
    expect_error(&m, "", 100, LP_ECORRUPT, "empty batch");
    expect_error(&m, "not json\n", 100, LP_ECORRUPT, "line 1: invalid JSON");
    expect_error(&m, "[1]\n", 100, LP_ECORRUPT, "not a JSON object");
    expect_error(&m, "{\"logpipe.source_id\":\"s\"}\n", 100, LP_ECORRUPT, "without logpipe.format");
    expect_error(&m, "{\"logpipe.format\":2,\"logpipe.source_id\":\"s\"}\n", 100, LP_EUNSUPP,
                 "unsupported logpipe.format");
    expect_error(&m, "{\"logpipe.format\":1}\n", 100, LP_ECORRUPT, "missing logpipe.source_id");
    snprintf(body, sizeof(body), "%s{\"log.offset\":1,\"message\":\"m\"}\n", src);
    expect_error(&m, body, 1000, LP_ECORRUPT, "line 2: @timestamp");
    snprintf(body, sizeof(body),
             "%s{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"log.offset\":-1,\"message\":\"m\"}\n",
             src);
    expect_error(&m, body, 1000, LP_ECORRUPT, "log.offset");
    snprintf(body, sizeof(body),
             "%s{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"log.offset\":1,\"message\":5}\n", src);
    expect_error(&m, body, 1000, LP_ECORRUPT, "message missing or not a string");
    snprintf(body, sizeof(body),
             "%s{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"log.offset\":1,\"message\":\"m\","
             "\"message\":\"n\"}\n",
             src);
    expect_error(&m, body, 1000, LP_ECORRUPT, "invalid JSON");
    snprintf(body, sizeof(body),
             "%s{\"@timestamp\":\"2026-01-01T00:00:00Z\",\"log.offset\":1,\"message\":\"m\"}\n",
             src);
    expect_error(&m, body, 20, LP_ETOOBIG, "exceeds the cap");
    m.records = 5;
    expect_error(&m, body, 1000, LP_ECORRUPT,
                 "record count mismatch: 5 records in header, 1 in body");
    m.records = 1;
    struct lp_wire_meta z = m;
    z.encoding = LP_CODEC_ZSTD;
    expect_error(&z, body, 1000, LP_ECORRUPT, "zstd payload is corrupt");
    struct lp_wire_meta nofmt = m;
    nofmt.format = 0;
    expect_error(&nofmt, body, 1000, LP_EUNSUPP, "missing logpipe-format");
}

static void test_headers(void)
{
    struct lp_wire_meta m;
    char why[256];
    lp_wire_meta_init(&m);
    CU_ASSERT_EQUAL(lp_wire_meta_header(&m, "logpipe-format", "2", 1, why, 256), LP_EUNSUPP);
    CU_ASSERT_EQUAL(lp_wire_meta_header(&m, "content-encoding", "br", 2, why, 256), LP_EUNSUPP);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "content-encoding 'br'"));
    CU_ASSERT_EQUAL(lp_wire_meta_header(&m, "content-type", "text/plain", 10, why, 256),
                    LP_EUNSUPP);
    CU_ASSERT_EQUAL(lp_wire_meta_header(&m, "logpipe-records", "12x", 3, why, 256), LP_ECORRUPT);
    CU_ASSERT_EQUAL(lp_wire_meta_header(&m, "logpipe-records", "99999999999", 11, why, 256),
                    LP_ECORRUPT);
    CU_ASSERT_EQUAL(lp_wire_meta_header(&m, "Content-Encoding", "gzip", 4, why, 256), 0);
    CU_ASSERT_EQUAL(m.encoding, LP_CODEC_GZIP);
    CU_ASSERT_EQUAL(lp_wire_meta_header(&m, "logpipe-records", "2000", 4, why, 256), 0);
    CU_ASSERT_EQUAL(m.records, 2000);
    CU_ASSERT_EQUAL(lp_wire_meta_header(&m, "x-other", "whatever", 8, why, 256), 0);
}

static void test_encoder_limits(void)
{
    struct lp_wire_encoder e;
    lp_wire_encoder_init(&e, 800);
    struct lp_wire_source nosrc = {0};
    CU_ASSERT_EQUAL(lp_wire_encoder_begin(&e, &nosrc), LP_EINVAL);
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_begin(&e, &vsrc), 0);
    size_t added = 0;
    int rc;
    while ((rc = lp_wire_encoder_add(&e, &vrecs[0])) == 0)
        added++;
    CU_ASSERT_EQUAL(rc, LP_ETOOBIG);
    CU_ASSERT(added >= 1);
    CU_ASSERT_EQUAL(e.records, added);
    size_t before = lp_wire_encoder_raw_size(&e);
    CU_ASSERT(before <= 800);
    CU_ASSERT_EQUAL(e.ndjson.data[before - 1], '\n'); /* the failed add left no partial line */
    lp_wire_encoder_release(&e);
}

/* Runtime metadata (image, labels) through a batch and the ECS event, and
 * hostile labels from a producer: normalised, capped, never an error. */
static void test_runtime_metadata(void)
{
    struct lp_kv labels[] = {{"com.docker.compose.project", "shop"},
                             {"com.docker.compose.service", "web"},
                             {"com_docker_compose_project", "dup after dedot"},
                             {"", "empty key"}};
    struct lp_kv copy[4];
    char keys[4][64];
    for (int i = 0; i < 4; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%s", labels[i].key);
        copy[i].key = keys[i];
        copy[i].value = labels[i].value;
    }
    size_t nl = lp_wire_labels_normalize(copy, 4);
    CU_ASSERT_EQUAL_FATAL(nl, 2);
    CU_ASSERT_STRING_EQUAL(copy[0].key, "com_docker_compose_project");
    CU_ASSERT_STRING_EQUAL(copy[0].value, "shop");
    CU_ASSERT_STRING_EQUAL(copy[1].key, "com_docker_compose_service");
    struct lp_wire_source src = {.source_id = "0123456789abcdef0123456789abcdef",
                                 .host = "h",
                                 .path = "/var/lib/docker/containers/ab/ab-json.log",
                                 .format = "docker",
                                 .container_id = "ab",
                                 .container_name = "shop-web-1",
                                 .container_image = "nginx:1.25",
                                 .container_labels = copy,
                                 .n_container_labels = nl};
    struct lp_wire_encoder e;
    lp_wire_encoder_init(&e, 1 << 20);
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_begin(&e, &src), 0);
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_add(&e, &vrecs[0]), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.ndjson.data, "\"container.image.name\":\"nginx:1.25\","
                                                 "\"container.labels\":{\"com_docker_compose_"
                                                 "project\":\"shop\""));
    struct lp_buf value = LP_BUF_INIT;
    struct lp_wire_meta meta;
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_finish(&e, NULL, LP_CODEC_ZSTD, 0, &value, &meta), 0);
    lp_wire_encoder_release(&e);
    struct lp_arena a;
    lp_arena_init(&a, 0, 0);
    struct lp_wire_batch b;
    char why[256];
    /* the records point into the decompressed scratch: it lives as long as b */
    struct lp_buf scratch = LP_BUF_INIT;
    CU_ASSERT_EQUAL_FATAL(lp_wire_decode(&meta, value.data, value.len, 1 << 20, NULL, &scratch, &a,
                                         &b, why, sizeof(why)),
                          0);
    CU_ASSERT_STRING_EQUAL(b.src.container_image, "nginx:1.25");
    CU_ASSERT_EQUAL_FATAL(b.src.n_container_labels, 2);
    CU_ASSERT_STRING_EQUAL(b.src.container_labels[1].value, "web");
    struct lp_buf ev = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_wire_ecs_event(&b.src, &b.recs[0], &ev), 0);
    lp_buf_putc(&ev, '\0');
    CU_ASSERT_PTR_NOT_NULL(strstr(ev.data, "\"container\":{\"id\":\"ab\",\"name\":\"shop-web-1\","
                                           "\"image\":{\"name\":\"nginx:1.25\"},\"labels\":{"
                                           "\"com_docker_compose_project\":\"shop\","
                                           "\"com_docker_compose_service\":\"web\"}}"));
    /* the per-record mode reads the same back from the event */
    struct lp_wire_meta rm = {LP_WIRE_FORMAT, 0, LP_CODEC_IDENTITY, 1};
    struct lp_wire_batch rb;
    ev.len--; /* without the NUL */
    CU_ASSERT_EQUAL_FATAL(decode(&rm, ev.data, ev.len, 1 << 20, &a, &rb, why), 0);
    CU_ASSERT_STRING_EQUAL(rb.src.container_image, "nginx:1.25");
    CU_ASSERT_EQUAL(rb.src.n_container_labels, 2);
    lp_buf_release(&ev);
    lp_buf_release(&scratch);
    lp_buf_release(&value);

    /* a producer's labels: non-strings, NULs, long keys and 1000 labels */
    struct lp_buf nd = LP_BUF_INIT;
    lp_buf_puts(&nd, "{\"logpipe.format\":1,\"logpipe.source_id\":\"s\",\"container.labels\":{"
                     "\"n\":1,\"o\":{},\"nul\":\"a\\u0000b\",\"a.b\":\"x\",\"a_b\":\"y\"");
    lp_buf_appendf(&nd, ",\"%0300d\":\"long\"", 7);
    for (int i = 0; i < 1000; i++)
        lp_buf_appendf(&nd, ",\"k%d\":\"v\"", i);
    lp_buf_puts(&nd, "}}\n{\"@timestamp\":\"2026-11-28T10:00:00Z\",\"log.offset\":0,"
                     "\"message\":\"m\"}\n");
    struct lp_wire_meta im = {LP_WIRE_FORMAT, 1, LP_CODEC_IDENTITY, 1};
    CU_ASSERT_EQUAL_FATAL(decode(&im, nd.data, nd.len, 1 << 20, &a, &b, why), 0);
    CU_ASSERT_EQUAL(b.src.n_container_labels, LP_WIRE_MAX_LABELS);
    CU_ASSERT_STRING_EQUAL(b.src.container_labels[0].key, "a_b");
    CU_ASSERT_STRING_EQUAL(b.src.container_labels[0].value, "x");
    CU_ASSERT_STRING_EQUAL(b.src.container_labels[1].key, "k0");
    lp_buf_release(&nd);
    nd = (struct lp_buf)LP_BUF_INIT;
    lp_buf_puts(&nd,
                "{\"logpipe.format\":1,\"logpipe.source_id\":\"s\",\"container.labels\":[]}\n"
                "{\"@timestamp\":\"2026-11-28T10:00:00Z\",\"log.offset\":0,\"message\":\"m\"}\n");
    CU_ASSERT_EQUAL(decode(&im, nd.data, nd.len, 1 << 20, &a, &b, why), LP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "container.labels is not an object"));
    lp_buf_release(&nd);
    lp_arena_release(&a);
}

/* A source with every member of lp_wire_source_fields set to a value of its
 * own; values[i] is row i's (the owner's name for the owner row). */
static struct lp_kv tbl_labels[3][2] = {
    {{"app", "web"}, {"tier", "front"}},
    {{"team", "shop"}, {"zone", "a"}},
    {{"note", "n1"}, {"sha", "abc"}},
};
static void fill_source(struct lp_wire_source *s, char values[][48])
{
    memset(s, 0, sizeof(*s));
    size_t nl = 0;
    for (size_t i = 0; i < lp_wire_n_source_fields; i++) {
        const struct lp_wire_field *f = &lp_wire_source_fields[i];
        snprintf(values[i], 48, "v%zu-%s", i, f->key);
        if (f->kind == LP_WF_LABELS) {
            CU_ASSERT_FATAL(nl < 3);
            *(const struct lp_kv **)(void *)((char *)s + f->off) = tbl_labels[nl++];
            *(size_t *)(void *)((char *)s + f->aux) = 2;
        } else {
            *(const char **)(void *)((char *)s + f->off) = values[i];
            if (f->kind == LP_WF_OWNER)
                *(const char **)(void *)((char *)s + f->aux) = "statefulset";
        }
    }
}

static json_t *nested(json_t *o, const char *path)
{
    char key[64];
    const char *p = path;
    for (const char *dot; o && (dot = strchr(p, '.')); p = dot + 1) {
        snprintf(key, sizeof(key), "%.*s", (int)(dot - p), p);
        o = json_object_get(o, key);
    }
    return o ? json_object_get(o, p) : NULL;
}

/* Row i of the table as the source s holds it, against the JSON value v. */
static void same_as_row(const struct lp_wire_source *s, const struct lp_wire_field *f, json_t *v,
                        const char *where)
{
    if (f->kind == LP_WF_LABELS) {
        size_t n;
        const struct lp_kv *l = lp_wire_field_labels(s, f, &n);
        CU_ASSERT_EQUAL(json_object_size(v), n);
        for (size_t k = 0; k < n; k++)
            CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(v, l[k].key)), l[k].value);
    } else {
        const char *want = lp_wire_field_str(s, f);
        if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
            fprintf(stderr, "\n%s: %s is not '%s'\n", where, f->key, want);
        CU_ASSERT_STRING_EQUAL(json_string_value(v), want);
    }
}

static void same_source_as(const struct lp_wire_source *a, const struct lp_wire_source *b)
{
    for (size_t i = 0; i < lp_wire_n_source_fields; i++) {
        const struct lp_wire_field *f = &lp_wire_source_fields[i];
        if (f->kind == LP_WF_LABELS) {
            size_t na, nb;
            const struct lp_kv *la = lp_wire_field_labels(a, f, &na);
            const struct lp_kv *lb = lp_wire_field_labels(b, f, &nb);
            CU_ASSERT_EQUAL_FATAL(na, nb);
            for (size_t k = 0; k < na; k++) {
                CU_ASSERT_STRING_EQUAL(la[k].key, lb[k].key);
                CU_ASSERT_STRING_EQUAL(la[k].value, lb[k].value);
            }
            continue;
        }
        CU_ASSERT_STRING_EQUAL(lp_wire_field_str(a, f), lp_wire_field_str(b, f));
        if (f->kind == LP_WF_OWNER)
            CU_ASSERT_STRING_EQUAL(*(const char *const *)(const void *)((const char *)a + f->aux),
                                   *(const char *const *)(const void *)((const char *)b + f->aux));
    }
}

/* The source-field table drives the encoder, both decoders and the ECS
 * renderer: every row round-trips, lands at its key, and is documented in
 * lp_ecs_table; every member of the struct has a row. */
static void test_field_table(void)
{
    /* every member is a pointer or a count named by exactly one row */
    size_t slots = 0;
    for (size_t i = 0; i < lp_wire_n_source_fields; i++)
        slots += lp_wire_source_fields[i].kind == LP_WF_STR ? 1 : 2;
    /* + the rendering the decoder caches (ecs, ecs_len) */
    CU_ASSERT_EQUAL((slots + 2) * sizeof(void *), sizeof(struct lp_wire_source));
    for (size_t i = 0; i < lp_wire_n_source_fields; i++)
        for (size_t j = 0; j < i; j++) {
            CU_ASSERT_NOT_EQUAL(lp_wire_source_fields[i].off, lp_wire_source_fields[j].off);
            CU_ASSERT_STRING_NOT_EQUAL(lp_wire_source_fields[i].key, lp_wire_source_fields[j].key);
        }

    char values[32][48];
    CU_ASSERT_FATAL(lp_wire_n_source_fields <= 32);
    struct lp_wire_source src;
    fill_source(&src, values);
    struct lp_wire_record rec = {.ts_ns = 1795850460123456789LL,
                                 .stream = "stdout",
                                 .offset = 42,
                                 .message = "m",
                                 .message_len = 1,
                                 .flags = LP_REC_PARTIAL,
                                 .lines = 2};

    /* the batch: each row under its flat key */
    struct lp_wire_encoder e;
    lp_wire_encoder_init(&e, 1 << 20);
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_begin(&e, &src), 0);
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_add(&e, &rec), 0);
    json_error_t je;
    json_t *line =
        json_loadb(e.ndjson.data, strcspn(e.ndjson.data, "\n"), JSON_REJECT_DUPLICATES, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    for (size_t i = 0; i < lp_wire_n_source_fields; i++) {
        const struct lp_wire_field *f = &lp_wire_source_fields[i];
        const char *k = f->kind == LP_WF_OWNER ? "kubernetes.statefulset.name" : f->key;
        same_as_row(&src, f, json_object_get(line, k), "batch");
    }
    CU_ASSERT_EQUAL(json_object_size(line), lp_wire_n_source_fields + 1); /* + logpipe.format */
    json_decref(line);

    /* decoded back, member for member */
    struct lp_buf value = LP_BUF_INIT, scratch = LP_BUF_INIT;
    struct lp_wire_meta meta;
    CU_ASSERT_EQUAL_FATAL(lp_wire_encoder_finish(&e, NULL, LP_CODEC_ZSTD, 0, &value, &meta), 0);
    lp_wire_encoder_release(&e);
    struct lp_arena a;
    lp_arena_init(&a, 0, 0);
    struct lp_wire_batch b;
    char why[256];
    CU_ASSERT_EQUAL_FATAL(lp_wire_decode(&meta, value.data, value.len, 1 << 20, NULL, &scratch, &a,
                                         &b, why, sizeof(why)),
                          0);
    same_source_as(&src, &b.src);
    /* the decoder's cached rendering of the source is the renderer's */
    CU_ASSERT_PTR_NOT_NULL(b.src.ecs);
    struct lp_buf ev1 = LP_BUF_INIT, ev2 = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_wire_ecs_event(&src, &b.recs[0], &ev1), 0);
    CU_ASSERT_EQUAL(lp_wire_ecs_event(&b.src, &b.recs[0], &ev2), 0);
    CU_ASSERT_STRING_EQUAL(ev1.data, ev2.data);
    lp_buf_release(&ev1);
    lp_buf_release(&ev2);

    /* the ECS event: each row at its nested path, no member twice */
    struct lp_buf ev = LP_BUF_INIT;
    CU_ASSERT_EQUAL_FATAL(lp_wire_ecs_event(&src, &rec, &ev), 0);
    json_t *doc = json_loadb(ev.data, ev.len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        fprintf(stderr, "\n%s\n%s\n", je.text, ev.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    for (size_t i = 0; i < lp_wire_n_source_fields; i++) {
        const struct lp_wire_field *f = &lp_wire_source_fields[i];
        const char *k = f->kind == LP_WF_OWNER ? "kubernetes.statefulset.name" : f->key;
        same_as_row(&src, f, nested(doc, k), "event");
        /* documented as a field logpipe owns */
        const struct lp_ecs_field *ef = lp_ecs_lookup(k);
        CU_ASSERT_PTR_NOT_NULL(ef);
        if (ef)
            CU_ASSERT(ef->owned & LP_ECS_OWNED);
        if (!ef)
            fprintf(stderr, "\n%s is not in lp_ecs_table\n", k);
    }
    CU_ASSERT_EQUAL(json_integer_value(nested(doc, "logpipe.lines")), 2);
    CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(nested(doc, "logpipe.flags"), 0)),
                           "partial");
    CU_ASSERT_EQUAL(json_integer_value(nested(doc, "log.offset")), 42);
    json_decref(doc);
    for (size_t i = 0; i < LP_WIRE_OWNER_KINDS; i++) {
        char k[64];
        snprintf(k, sizeof(k), "kubernetes.%s.name", lp_wire_owner_kinds[i]);
        CU_ASSERT_PTR_NOT_NULL(lp_ecs_lookup(k));
    }

    /* and the per-record mode reads the event back into the same source */
    struct lp_wire_meta rm = {LP_WIRE_FORMAT, 0, LP_CODEC_IDENTITY, 1};
    struct lp_wire_batch rb;
    CU_ASSERT_EQUAL_FATAL(
        lp_wire_decode(&rm, ev.data, ev.len, 1 << 20, NULL, &scratch, &a, &rb, why, sizeof(why)),
        0);
    same_source_as(&src, &rb.src);
    CU_ASSERT_EQUAL(rb.recs[0].flags, rec.flags);
    CU_ASSERT_EQUAL(rb.recs[0].lines, rec.lines);

    /* rows are found by key; the owner row and unknown keys are not */
    CU_ASSERT_EQUAL(lp_wire_source_field("kubernetes.pod.ip")->off,
                    offsetof(struct lp_wire_source, k8s_pod_ip));
    CU_ASSERT_PTR_NULL(lp_wire_source_field("kubernetes.*.name"));
    CU_ASSERT_PTR_NULL(lp_wire_source_field("kubernetes.pod"));
    lp_buf_release(&ev);
    lp_buf_release(&scratch);
    lp_buf_release(&value);
    lp_arena_release(&a);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"round trip", test_round_trip},
        {"per-record mode", test_per_record_mode},
        {"doc vectors", test_doc_vectors},
        {"decode errors", test_decode_errors},
        {"headers", test_headers},
        {"encoder limits", test_encoder_limits},
        {"runtime metadata", test_runtime_metadata},
        {"source field table", test_field_table},
        {NULL, NULL},
    };
    return lp_test_run("wire", tests);
}
