/* Bucket retention (bucket.h). */
#define LP_LOG_MODULE "retention"
#include "bucket.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_kafka.h"
#include "lp_log.h"
#include "lp_time.h"
#include "lp_s3.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_NS (3600LL * LP_NS_PER_SEC)

int lp_rt_bucket_init(struct lp_rt_bucket *b, const struct lp_config *cfg,
                      const struct lp_config_retention_policy *p, char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    const struct lp_config_output *o = lp_config_policy_bucket(cfg, p);
    if (!o) {
        snprintf(err, errlen, "policy %s: no s3 output named '%s'", p->name,
                 p->output ? p->output : "");
        return LP_EINVAL;
    }
    b->name = p->name;
    b->output = o->name;
    b->cfg = cfg;
    struct lp_s3_cfg sc;
    lp_s3_output_cfg(o, &sc);
    char e[256];
    if (lp_s3_init(&b->live, &sc, e, sizeof(e))) {
        snprintf(err, errlen, "policy %s: output %s: %s", p->name, o->name, e);
        return LP_EINVAL;
    }
    lp_s3_client_init(&b->lc, &b->live);
    b->prefix = lp_s3_output_prefix(o);
    const char *ab = p->archive_bucket && *p->archive_bucket ? p->archive_bucket : o->bucket;
    if (p->archive_prefix && *p->archive_prefix) {
        b->archive_prefix = lp_s3_norm_prefix(p->archive_prefix);
        if (strcmp(ab, o->bucket) != 0) {
            sc.bucket = ab;
            if (lp_s3_init(&b->arch, &sc, e, sizeof(e))) {
                snprintf(err, errlen, "policy %s: archive_bucket: %s", p->name, e);
                lp_rt_bucket_release(b);
                return LP_EINVAL;
            }
            b->has_arch = 1;
            lp_s3_client_init(&b->ac, &b->arch);
        }
    }
    b->archive_class =
        p->archive_storage_class && *p->archive_storage_class ? p->archive_storage_class : NULL;
    b->sel = (struct lp_rt_select){p->routes, p->n_routes, p->glob};
    struct lp_buf d = LP_BUF_INIT;
    lp_buf_appendf(&d, "s3://%s/%s", o->bucket, b->prefix);
    b->root = lp_buf_detach(&d, NULL);
    if (b->archive_prefix) {
        lp_buf_appendf(&d, "s3://%s/%s", ab, b->archive_prefix);
        b->archive_root = lp_buf_detach(&d, NULL);
    }
    b->policy = (struct lp_rt_policy){
        .name = p->name,
        .root = b->root,
        .archive_root = b->archive_root,
        .archive_after_ns = p->archive_after_ms * LP_NS_PER_MS,
        .delete_after_ns = p->delete_after_ms * LP_NS_PER_MS,
        .max_total_bytes = (uint64_t)p->max_total_bytes,
        .prune_unarchived = p->prune_unarchived,
        .codec = LP_CODEC_IDENTITY,
        .ratio_hint = 1, /* archiving does not recompress */
        .volume = -1,
        .archive_volume = -1,
    };
    return 0;
}

void lp_rt_bucket_release(struct lp_rt_bucket *b)
{
    if (!b)
        return;
    lp_s3_client_release(&b->lc);
    lp_s3_release(&b->live);
    if (b->has_arch) {
        lp_s3_client_release(&b->ac);
        lp_s3_release(&b->arch);
    }
    free(b->prefix);
    free(b->archive_prefix);
    free(b->root);
    free(b->archive_root);
    memset(b, 0, sizeof(*b));
}

/* ---- listing ---- */

struct tokens {
    char **v;
    size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct listing {
    struct lp_rt_bucket *b;
    struct lp_rt_file *files;
    size_t n, cap;
    const char *bucket; /* for the paths */
    size_t strip;       /* bytes of the prefix the rel path starts after */
    const char *skip;   /* keys starting with this are not ours (NULL: none) */
    const char *skip2;
    int archive;         /* listing the archive prefix */
    struct tokens *open; /* the open ledger records' "<topic>-<partition>-<first>" */
};

/* The end of the hour in rel (<route>/YYYY/MM/DD/HH/...), or 0. */
static int64_t hour_end(const char *rel)
{
    const char *s = strchr(rel, '/');
    int y, mo, d, h, n = 0;
    if (!s || sscanf(s + 1, "%4d/%2d/%2d/%2d/%n", &y, &mo, &d, &h, &n) != 4 || n != 14)
        return 0;
    char ts[32];
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:00:00Z", y, mo, d, h);
    int64_t ns;
    if (lp_time_parse_rfc3339(ts, strlen(ts), &ns))
        return 0;
    return ns + HOUR_NS;
}

/* 1 when the object's name is one an open ledger record names. */
static int is_pending(const struct tokens *t, const char *rel)
{
    if (!t || !t->n)
        return 0;
    const char *base = strrchr(rel, '/');
    base = base ? base + 1 : rel;
    const char *ext = strstr(base, ".ndjson");
    if (!ext)
        return 0;
    char tok[512];
    size_t l = (size_t)(ext - base);
    if (l >= sizeof(tok))
        return 0;
    memcpy(tok, base, l);
    tok[l] = '\0';
    const char *k = tok;
    return bsearch(&k, t->v, t->n, sizeof(*t->v), cmp_str) != NULL;
}

static int on_object(const struct lp_s3_object *o, void *arg)
{
    struct listing *l = arg;
    struct lp_rt_bucket *b = l->b;
    if ((l->skip && strncmp(o->key, l->skip, strlen(l->skip)) == 0) ||
        (l->skip2 && strncmp(o->key, l->skip2, strlen(l->skip2)) == 0))
        return 0;
    const char *rel = o->key + l->strip;
    if (!*rel || !lp_rt_selected(&b->sel, rel))
        return 0;
    int64_t t = hour_end(rel);
    if (!t && (!o->last_modified ||
               lp_time_parse_rfc3339(o->last_modified, strlen(o->last_modified), &t)))
        t = 0;
    struct lp_buf path = LP_BUF_INIT;
    lp_buf_appendf(&path, "s3://%s/%s", l->bucket, o->key);
    int archived = l->archive || (!b->archive_prefix && b->archive_class &&
                                  strcmp(o->storage_class, b->archive_class) == 0);
    uint64_t size = o->size > 0 ? (uint64_t)o->size : 0;
    LP_ALLOC_GROW(l->files, l->n + 1, l->cap, 256);
    l->files[l->n++] = (struct lp_rt_file){
        .path = lp_buf_detach(&path, NULL),
        .rel = lp_xstrdup(rel),
        .policy = 0,
        .kind = archived ? LP_RT_ARCHIVE : LP_RT_SEGMENT,
        .codec = LP_CODEC_IDENTITY,
        .size = size,
        .disk = size,
        .orig_size = archived ? size : 0,
        .mtime_ns = t,
        .volume = -1,
        .pending = !archived && is_pending(l->open, rel),
    };
    return 0;
}

/* An open ledger record: <topic>/<partition>/<first>-<end>.json. */
struct rec {
    char *token; /* "<topic>-<partition>-<first>", as its objects' names start */
    char *topic;
    int32_t partition;
    int64_t end;
};

struct recs {
    struct rec *v;
    size_t n, cap;
    size_t strip;
};

static int on_record(const struct lp_s3_object *o, void *arg)
{
    struct recs *l = arg;
    const char *rel = o->key + l->strip;
    const char *s1 = strchr(rel, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    const char *dash = s2 ? strchr(s2 + 1, '-') : NULL;
    if (!dash)
        return 0;
    struct lp_buf t = LP_BUF_INIT;
    lp_buf_append(&t, rel, (size_t)(s1 - rel));
    char *topic = lp_xstrdup(t.data);
    lp_buf_putc(&t, '-');
    lp_buf_append(&t, s1 + 1, (size_t)(s2 - s1 - 1));
    lp_buf_putc(&t, '-');
    lp_buf_append(&t, s2 + 1, (size_t)(dash - s2 - 1));
    LP_ALLOC_GROW(l->v, l->n + 1, l->cap, 64);
    l->v[l->n++] = (struct rec){lp_buf_detach(&t, NULL), topic, (int32_t)strtol(s1 + 1, NULL, 10),
                                strtoll(dash + 1, NULL, 10)};
    return 0;
}

/* Marks closed (end = -1) the records the aggregators' consumer group has
 * committed past: their batches are complete and will not be written
 * again. Without an answer from Kafka every record stays open (the safe
 * side: their objects wait). */
static void close_committed(const struct lp_config *cfg, struct recs *rs)
{
    if (!rs->n || !cfg->kafka.brokers || !*cfg->kafka.brokers)
        return;
    char err[512];
    rd_kafka_conf_t *kc = lp_kafka_conf_new(&cfg->kafka.properties, err, sizeof(err));
    if (kc && (lp_kafka_conf_set(kc, "bootstrap.servers", cfg->kafka.brokers, err, sizeof(err)) ||
               lp_kafka_conf_set(kc, "group.id", cfg->aggregator.group_id, err, sizeof(err)) ||
               lp_kafka_conf_set(kc, "enable.auto.commit", "false", err, sizeof(err)))) {
        rd_kafka_conf_destroy(kc);
        kc = NULL;
    }
    rd_kafka_t *rk = kc ? rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err)) : NULL;
    if (!rk) {
        if (kc)
            rd_kafka_conf_destroy(kc);
        lp_log(LP_LOG_WARN,
               "cannot ask Kafka for the committed offsets; objects of open "
               "ledger records are not moved",
               "error=\"%s\"", err);
        return;
    }
    /* only asks (OffsetFetch): never joins the group nor commits */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)rs->n);
    for (size_t i = 0; i < rs->n; i++)
        rd_kafka_topic_partition_list_add(l, rs->v[i].topic, rs->v[i].partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, l, 10000);
    if (e) {
        lp_log(LP_LOG_WARN,
               "cannot ask Kafka for the committed offsets; objects of open "
               "ledger records are not moved",
               "error=\"%s\"", rd_kafka_err2str(e));
    } else {
        for (size_t i = 0; i < rs->n; i++) {
            rd_kafka_topic_partition_t *p =
                rd_kafka_topic_partition_list_find(l, rs->v[i].topic, rs->v[i].partition);
            if (p && !p->err && p->offset >= 0 && rs->v[i].end <= p->offset)
                rs->v[i].end = -1;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static int list_into(struct listing *l, struct lp_s3_client *c, const char *base,
                     struct lp_s3_result *r)
{
    struct lp_rt_bucket *b = l->b;
    if (!b->sel.n_routes)
        return lp_s3_list(c, base, NULL, on_object, l, r);
    for (size_t i = 0; i < b->sel.n_routes; i++) {
        struct lp_buf p = LP_BUF_INIT;
        lp_buf_appendf(&p, "%s%s/", base, b->sel.routes[i]);
        int rc = lp_s3_list(c, p.data, NULL, on_object, l, r);
        lp_buf_release(&p);
        if (rc)
            return rc;
    }
    return 0;
}

static void list_error(char *err, size_t errlen, const char *what, const char *bucket,
                       const struct lp_s3_result *r)
{
    snprintf(err, errlen, "cannot list %s in bucket %s: %s%s%s", what, bucket,
             r->code[0] ? r->code : "error", r->message[0] ? ": " : "", r->message);
}

int lp_rt_bucket_scan(struct lp_rt_bucket *b, struct lp_rt_file **files, size_t *n, char *err,
                      size_t errlen)
{
    struct tokens open = {0};
    struct lp_s3_result r;
    struct lp_buf ledger = LP_BUF_INIT, meta = LP_BUF_INIT;
    lp_buf_appendf(&meta, "%s_logpipe/", b->prefix);
    lp_buf_appendf(&ledger, "%s_logpipe/ledger/%s/", b->prefix, b->output);
    struct listing l = {.b = b, .open = &open};
    int rc = 0;
    if (b->archive_prefix) {
        /* archived objects are never pending, so their listing comes first
         * only for the order of the report; the ledger is read just before
         * the live objects so that what it says is as fresh as can be */
        l.bucket = b->has_arch ? b->arch.bucket : b->live.bucket;
        l.strip = strlen(b->archive_prefix);
        l.archive = 1;
        rc = list_into(&l, b->has_arch ? &b->ac : &b->lc, b->archive_prefix, &r);
        if (rc)
            list_error(err, errlen, "the archive prefix", l.bucket, &r);
    }
    if (!rc) {
        struct recs rs = {.strip = ledger.len};
        rc = lp_s3_list(&b->lc, ledger.data, NULL, on_record, &rs, &r);
        if (rc)
            list_error(err, errlen, "the ledger", b->live.bucket, &r);
        else if (b->archive_prefix)
            close_committed(b->cfg, &rs);
        for (size_t i = 0; i < rs.n; i++) {
            if (rs.v[i].end >= 0) {
                LP_ALLOC_GROW(open.v, open.n + 1, open.cap, 64);
                open.v[open.n++] = rs.v[i].token;
            } else {
                free(rs.v[i].token);
            }
            free(rs.v[i].topic);
        }
        free(rs.v);
        if (open.n > 1)
            qsort(open.v, open.n, sizeof(*open.v), cmp_str);
    }
    if (!rc) {
        l.bucket = b->live.bucket;
        l.strip = strlen(b->prefix);
        l.archive = 0;
        l.skip = meta.data;
        l.skip2 =
            b->archive_prefix && !b->has_arch && *b->archive_prefix ? b->archive_prefix : NULL;
        rc = list_into(&l, &b->lc, b->prefix, &r);
        if (rc)
            list_error(err, errlen, "the objects", b->live.bucket, &r);
    }
    for (size_t i = 0; i < open.n; i++)
        free(open.v[i]);
    free(open.v);
    lp_buf_release(&ledger);
    lp_buf_release(&meta);
    if (rc) {
        lp_rt_bucket_files_release(l.files, l.n);
        *files = NULL;
        *n = 0;
        return rc;
    }
    *files = l.files;
    *n = l.n;
    return 0;
}

void lp_rt_bucket_files_release(struct lp_rt_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(files[i].path);
        free(files[i].rel);
    }
    free(files);
}

/* ---- actions ---- */

/* The key in "s3://<bucket>/<key>". */
static const char *key_of(const struct lp_rt_file *f)
{
    const char *k = strchr(f->path + 5, '/');
    return k ? k + 1 : "";
}

char *lp_rt_bucket_archive_dest(const struct lp_rt_bucket *b, const struct lp_rt_file *f)
{
    struct lp_buf d = LP_BUF_INIT;
    if (b->archive_prefix)
        lp_buf_appendf(&d, "%s%s", b->archive_root, f->rel);
    else
        lp_buf_appendf(&d, "%s (%s)", f->path, b->archive_class ? b->archive_class : "");
    return lp_buf_detach(&d, NULL);
}

static void s3_error(char *err, size_t errlen, const char *what, const struct lp_s3_result *r)
{
    snprintf(err, errlen, "%s: %s%s%s (HTTP %ld)", what, r->code[0] ? r->code : "error",
             r->message[0] ? ": " : "", r->message, r->status);
}

int lp_rt_bucket_archive(struct lp_rt_bucket *b, const struct lp_rt_file *f, int *moved, char *err,
                         size_t errlen)
{
    struct lp_s3_result r;
    const char *key = key_of(f);
    *moved = 0;
    if (!b->archive_prefix) { /* the class, in place */
        if (lp_s3_copy(&b->lc, NULL, key, key, b->archive_class, &r)) {
            s3_error(err, errlen, "changing the storage class", &r);
            return LP_EHTTP;
        }
        return 0;
    }
    struct lp_s3_client *c = b->has_arch ? &b->ac : &b->lc;
    struct lp_buf dst = LP_BUF_INIT;
    lp_buf_appendf(&dst, "%s%s", b->archive_prefix, f->rel);
    int rc = lp_s3_copy(c, b->live.bucket, key, dst.data, b->archive_class, &r);
    if (rc) {
        s3_error(err, errlen, "copy", &r);
    } else {
        int64_t size = -1;
        rc = lp_s3_head(c, dst.data, &size, &r);
        if (rc)
            s3_error(err, errlen, "checking the copy", &r);
        else if (size != (int64_t)f->size) {
            snprintf(err, errlen,
                     "the copy has %" PRId64 " bytes, the object %" PRIu64 "; source kept", size,
                     f->size);
            rc = LP_ECORRUPT;
        }
    }
    lp_buf_release(&dst);
    if (rc)
        return rc;
    *moved = 1;
    return 0;
}

struct del_failed {
    const struct lp_rt_file *const *files;
    size_t n;
    int *ok;
    char **errs;
};

static void on_failed(const char *key, const char *code, const char *message, void *arg)
{
    struct del_failed *d = arg;
    for (size_t i = 0; i < d->n; i++)
        if (d->ok[i] && strcmp(key_of(d->files[i]), key) == 0) {
            d->ok[i] = 0;
            struct lp_buf e = LP_BUF_INIT;
            lp_buf_appendf(&e, "delete: %s%s%s", code, *message ? ": " : "", message);
            free(d->errs[i]);
            d->errs[i] = lp_buf_detach(&e, NULL);
        }
}

void lp_rt_bucket_delete(struct lp_rt_bucket *b, const struct lp_rt_file *const *files, size_t n,
                         int *ok, char **errs)
{
    const char **keys = lp_xcalloc(LP_S3_DELETE_MAX, sizeof(*keys));
    for (size_t at = 0; at < n; at += LP_S3_DELETE_MAX) {
        size_t m = n - at < LP_S3_DELETE_MAX ? n - at : LP_S3_DELETE_MAX;
        /* one batch per bucket: a move's source is in the live bucket,
         * an archive may be in the archive bucket */
        for (int which = 0; which < 2; which++) {
            struct lp_s3_client *c = which ? &b->ac : &b->lc;
            const char *bucket = which ? b->arch.bucket : b->live.bucket;
            if (which && !b->has_arch)
                break;
            size_t k = 0;
            const struct lp_rt_file *batch[LP_S3_DELETE_MAX];
            size_t idx[LP_S3_DELETE_MAX];
            for (size_t i = 0; i < m; i++) {
                const struct lp_rt_file *f = files[at + i];
                size_t bl = strlen(bucket);
                if (strncmp(f->path + 5, bucket, bl) != 0 || f->path[5 + bl] != '/')
                    continue;
                batch[k] = f;
                idx[k] = at + i;
                keys[k++] = key_of(f);
            }
            if (!k)
                continue;
            int *bok = lp_xcalloc(k, sizeof(*bok));
            char **berr = lp_xcalloc(k, sizeof(*berr));
            for (size_t i = 0; i < k; i++)
                bok[i] = 1;
            struct del_failed d = {batch, k, bok, berr};
            struct lp_s3_result r;
            int rc = lp_s3_delete_many(c, keys, k, on_failed, &d, &r);
            for (size_t i = 0; i < k; i++) {
                if (rc && strcmp(r.code, "PartialDelete") != 0 && bok[i]) {
                    /* the request itself failed: nothing is known gone */
                    bok[i] = 0;
                    char e[400];
                    s3_error(e, sizeof(e), "delete", &r);
                    berr[i] = lp_xstrdup(e);
                }
                ok[idx[i]] = bok[i];
                errs[idx[i]] = berr[i];
            }
            free(bok);
            free(berr);
        }
    }
    free(keys);
}
