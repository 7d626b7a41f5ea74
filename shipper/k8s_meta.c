/* The API server client and pod cache (k8s_meta.h). */
#define LP_LOG_MODULE "kubernetes"
#include "k8s_meta.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_error.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_time.h"
#include "lp_wire.h"

#include <curl/curl.h>
#include <errno.h>
#include <malloc.h> /* malloc_trim (glibc) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The list comes in small pages: a tenant may make every pod on the node
 * as large as the API allows (~1.5 MB each: 250 KiB of annotations, a
 * thousand env entries), and a page is held whole, with its JSON tree,
 * while it is read. 25 pods of that size are ~38 MB of body; 500 were a
 * page of 600 MB. */
#define LIST_PAGE_PODS 25
#define MAX_LIST_BYTES (64u << 20) /* one list page */
#define MAX_EVENT_BYTES (8u << 20) /* one watch event line */

/* ---- snapshots ---- */

static char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || !json_string_length(v) ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return lp_xstrdup(json_string_value(v));
}

/* obj's string members into l (those allow() accepts; allow NULL: all),
 * normalised like the wire's labels. */
static void take_map(json_t *obj, struct lp_kvlist *l, char *const *allow, size_t n_allow,
                     int filter)
{
    if (!json_is_object(obj))
        return;
    size_t n = json_object_size(obj), k = 0;
    struct lp_kv *tmp = lp_xcalloc(n ? n : 1, sizeof(*tmp));
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            continue;
        int ok = !filter;
        for (size_t i = 0; i < n_allow && !ok; i++) {
            size_t al = strlen(allow[i]);
            ok = al && allow[i][al - 1] == '*' ? strncmp(key, allow[i], al - 1) == 0
                                               : strcmp(key, allow[i]) == 0;
        }
        if (!ok)
            continue;
        tmp[k].key = lp_xstrdup(key);
        tmp[k].value = lp_xstrdup(json_string_value(v));
        k++;
    }
    size_t kept = lp_wire_labels_normalize(tmp, k);
    for (size_t i = 0; i < k; i++) {
        if (i < kept)
            lp_kvlist_set(l, tmp[i].key, tmp[i].value);
        free(tmp[i].key);
        free(tmp[i].value);
    }
    free(tmp);
}

/* The controller owner: a ReplicaSet a Deployment made (its name is the
 * Deployment's plus "-" and the pod-template-hash label) is named by the
 * Deployment, without asking the API for the ReplicaSet. */
static void take_owner(struct lp_k8s_pod *p, json_t *meta, json_t *labels)
{
    json_t *refs = json_object_get(meta, "ownerReferences"), *r;
    size_t i;
    json_array_foreach(refs, i, r)
    {
        if (!json_is_true(json_object_get(r, "controller")))
            continue;
        json_t *kind = json_object_get(r, "kind");
        char *name = jstr(r, "name");
        if (!json_is_string(kind) || !name) {
            free(name);
            continue;
        }
        const char *k = json_string_value(kind);
        if (strcmp(k, "ReplicaSet") == 0) {
            json_t *h = json_object_get(labels, "pod-template-hash");
            size_t nl = strlen(name), hl = json_is_string(h) ? json_string_length(h) : 0;
            if (hl && nl > hl + 1 && name[nl - hl - 1] == '-' &&
                strcmp(name + nl - hl, json_string_value(h)) == 0) {
                name[nl - hl - 1] = '\0';
                p->owner_kind = "deployment";
            } else {
                p->owner_kind = "replicaset";
            }
        } else if (strcmp(k, "StatefulSet") == 0) {
            p->owner_kind = "statefulset";
        } else if (strcmp(k, "DaemonSet") == 0) {
            p->owner_kind = "daemonset";
        } else if (strcmp(k, "Job") == 0) {
            p->owner_kind = "job";
        } else if (strcmp(k, "CronJob") == 0) {
            p->owner_kind = "cronjob";
        } else {
            free(name);
            continue;
        }
        p->owner_name = name;
        return;
    }
}

static void take_images(struct lp_k8s_pod *p, json_t *spec, const char *list)
{
    json_t *cs = json_object_get(spec, list), *c;
    size_t i;
    json_array_foreach(cs, i, c)
    {
        json_t *n = json_object_get(c, "name"), *im = json_object_get(c, "image");
        if (json_is_string(n) && json_is_string(im) && p->images.n < 256 &&
            json_string_length(n) < 256 && json_string_length(im) < 4096)
            lp_kvlist_set(&p->images, json_string_value(n), json_string_value(im));
    }
}

struct lp_k8s_pod *lp_k8s_pod_parse(json_t *pod, char *const *allow, size_t n_allow)
{
    json_t *meta = json_object_get(pod, "metadata");
    if (!json_is_object(meta))
        return NULL;
    struct lp_k8s_pod *p = lp_xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->ns = jstr(meta, "namespace");
    p->name = jstr(meta, "name");
    p->uid = jstr(meta, "uid");
    if (!p->ns || !p->name) {
        lp_k8s_pod_release(p);
        return NULL;
    }
    json_t *labels = json_object_get(meta, "labels");
    json_t *ann = json_object_get(meta, "annotations");
    take_map(labels, &p->labels, NULL, 0, 0);
    take_map(ann, &p->annotations, allow, n_allow, 1);
    take_owner(p, meta, labels);
    json_t *spec = json_object_get(pod, "spec");
    p->node = jstr(spec, "nodeName");
    take_images(p, spec, "containers");
    take_images(p, spec, "initContainers");
    take_images(p, spec, "ephemeralContainers");
    p->ip = jstr(json_object_get(pod, "status"), "podIP");
    if (json_is_object(ann)) {
        json_t *ex = json_object_get(ann, "logpipe.io/exclude");
        p->exclude = json_is_string(ex) && (strcmp(json_string_value(ex), "true") == 0 ||
                                            strcmp(json_string_value(ex), "1") == 0);
        p->parser = jstr(ann, "logpipe.io/parser");
        p->multiline = jstr(ann, "logpipe.io/multiline");
        if (p->parser && strlen(p->parser) > 128) {
            free(p->parser);
            p->parser = NULL;
        }
    }
    return p;
}

void lp_k8s_pod_release(struct lp_k8s_pod *p)
{
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(p->ns);
    free(p->name);
    free(p->uid);
    free(p->node);
    free(p->ip);
    free(p->owner_name);
    free(p->parser);
    free(p->multiline);
    lp_kvlist_release(&p->labels);
    lp_kvlist_release(&p->annotations);
    lp_kvlist_release(&p->images);
    free(p);
}

const char *lp_k8s_pod_image(const struct lp_k8s_pod *p, const char *container)
{
    return container ? lp_kvlist_get(&p->images, container) : NULL;
}

/* ---- the cache ---- */

struct entry {
    struct lp_k8s_pod *pod;
    int64_t deleted_ns; /* monotonic time of deletion, 0: alive */
    int seen;           /* in the current list */
};

struct lp_k8s {
    const struct lp_config_kubernetes *cfg;
    char *url; /* base, without a trailing '/' */
    pthread_t thread;
    int started;
    atomic_int stop;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;

    pthread_mutex_t mu; /* the cache */
    struct entry *e;
    size_t n, cap;
    _Atomic uint64_t gen;
    atomic_int synced;
    _Atomic int64_t last_ok_ns; /* monotonic: the cache was last known current */

    /* the thread's */
    char rv[128];
    struct lp_buf body, line;
    struct lp_buf jbody; /* a Job's answer (cronjob owners) */
    /* Job -> its CronJob ("" when it has none), asked once per Job */
    struct job_owner {
        char *ns, *job, *cronjob;
    } * jobs;
    size_t n_jobs, cap_jobs;
    int offline; /* lp_k8s_new_offline: never asks the server */
    int gone;    /* the watch said 410 */
    int64_t backoff_ms;
    unsigned seed; /* backoff jitter (rand_r) */

    struct lp_gauge *g_pods, *g_age, *g_synced;
    struct lp_counter *c_ok, *c_err, *c_relists, *c_events[4];
    struct lp_counter *c_evicted; /* deleted pods dropped before their grace */
};

static struct entry *find(struct lp_k8s *k, const char *ns, const char *name)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->e[i].pod->ns, ns) == 0 && strcmp(k->e[i].pod->name, name) == 0)
            return &k->e[i];
    return NULL;
}

/* Publishes p (taking its reference) for its ns/name. Under mu. */
static void upsert(struct lp_k8s *k, struct lp_k8s_pod *p)
{
    struct entry *e = find(k, p->ns, p->name);
    if (e) {
        lp_k8s_pod_release(e->pod);
        e->pod = p;
        e->deleted_ns = 0;
        e->seen = 1;
        return;
    }
    if (k->n >= (size_t)k->cfg->max_pods) {
        /* full: a pod deleted longest ago makes room before its grace ends.
         * A live pod is never refused for a deleted one, so a tenant
         * creating and deleting pods fast cannot make the node's other new
         * pods ship without their metadata (only live pods can fill it) */
        struct entry *old = NULL;
        for (size_t i = 0; i < k->n; i++)
            if (k->e[i].deleted_ns && (!old || k->e[i].deleted_ns < old->deleted_ns))
                old = &k->e[i];
        if (old) {
            lp_k8s_pod_release(old->pod);
            *old = (struct entry){p, 0, 1};
            lp_counter_inc(k->c_evicted);
            return;
        }
        lp_log_ratelimited(LP_LOG_WARN, "pod cache full of live pods; pod not cached",
                           "max_pods=%lld namespace=\"%s\" pod=\"%s\"", (long long)k->cfg->max_pods,
                           p->ns, p->name);
        lp_k8s_pod_release(p);
        return;
    }
    LP_ALLOC_GROW(k->e, k->n + 1, k->cap, 64);
    k->e[k->n++] = (struct entry){p, 0, 1};
}

/* Drops deleted pods past their grace. Under mu. */
static void expire(struct lp_k8s *k, int64_t now)
{
    int64_t grace = k->cfg->deleted_grace_ms * LP_NS_PER_MS;
    size_t j = 0;
    for (size_t i = 0; i < k->n; i++) {
        if (k->e[i].deleted_ns && now - k->e[i].deleted_ns >= grace) {
            lp_k8s_pod_release(k->e[i].pod);
            continue;
        }
        k->e[j++] = k->e[i];
    }
    k->n = j;
}

static void changed(struct lp_k8s *k)
{
    atomic_fetch_add_explicit(&k->gen, 1, memory_order_release);
    lp_gauge_set(k->g_pods, (double)k->n);
}

struct lp_k8s_pod *lp_k8s_lookup(struct lp_k8s *k, const char *ns, const char *name,
                                 const char *uid)
{
    if (!k || !ns || !name)
        return NULL;
    pthread_mutex_lock(&k->mu);
    struct entry *e = find(k, ns, name);
    struct lp_k8s_pod *p = NULL;
    if (e && (!uid || !e->pod->uid || strcmp(uid, e->pod->uid) == 0)) {
        p = e->pod;
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&k->mu);
    return p;
}

uint64_t lp_k8s_generation(struct lp_k8s *k)
{
    return k ? atomic_load_explicit(&k->gen, memory_order_acquire) : 0;
}

int lp_k8s_synced(struct lp_k8s *k)
{
    return k && atomic_load_explicit(&k->synced, memory_order_acquire);
}

void lp_k8s_tick(struct lp_k8s *k)
{
    if (!k)
        return;
    int64_t last = atomic_load_explicit(&k->last_ok_ns, memory_order_relaxed);
    lp_gauge_set(k->g_age, last ? (double)(lp_time_mono_ns() - last) / 1e9 : -1);
    lp_gauge_set(k->g_synced, lp_k8s_synced(k));
}

/* ---- HTTP ---- */

static int stopping(struct lp_k8s *k)
{
    return atomic_load_explicit(&k->stop, memory_order_acquire);
}

static int progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return stopping(ud); /* non-zero aborts the transfer */
}

/* A write callback's answer: p[0..len) appended to b while b stays within
 * cap, else 0 (libcurl ends the transfer). */
static size_t append_capped(struct lp_buf *b, size_t cap, const char *p, size_t len)
{
    if (b->len + len > cap || lp_buf_append(b, p, len))
        return 0;
    return len;
}

static size_t body_cb(char *p, size_t size, size_t n, void *ud)
{
    struct lp_k8s *k = ud;
    return append_capped(&k->body, MAX_LIST_BYTES, p, size * n);
}

static void apply_event(struct lp_k8s *k, const char *line, size_t n);

static size_t watch_cb(char *p, size_t size, size_t n, void *ud)
{
    struct lp_k8s *k = ud;
    size_t len = size * n;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(p + i, '\n', len - i);
        size_t chunk = nl ? (size_t)(nl - (p + i)) : len - i;
        if (k->line.len + chunk > MAX_EVENT_BYTES) {
            lp_log(LP_LOG_WARN, "watch event over the size cap; relisting", "cap=%u",
                   MAX_EVENT_BYTES);
            k->gone = 1;
            return 0;
        }
        lp_buf_append(&k->line, p + i, chunk);
        i += chunk;
        if (nl) {
            apply_event(k, k->line.data, k->line.len);
            lp_buf_reset(&k->line);
            i++;
            if (k->gone)
                return 0; /* 410 inside the stream: end it and relist */
        }
    }
    return len;
}

/* The kubeconfig's CA and client certificate (files or PEM blobs). */
static void set_tls(CURL *c, const struct lp_k8s_conn *kc)
{
    if (kc->ca_pem) {
        struct curl_blob b = {kc->ca_pem, kc->ca_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
    } else if (kc->ca_file) {
        curl_easy_setopt(c, CURLOPT_CAINFO, kc->ca_file);
    }
    if (kc->cert_pem) {
        struct curl_blob b = {kc->cert_pem, kc->cert_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &b);
    } else if (kc->cert_file) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, kc->cert_file);
    }
    if (kc->key_pem) {
        struct curl_blob b = {kc->key_pem, kc->key_pem_len, CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &b);
    } else if (kc->key_file) {
        curl_easy_setopt(c, CURLOPT_SSLKEY, kc->key_file);
    }
    if (kc->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/* GET url; the answer goes to write_cb. 0 with *status, or -1 (transport). */
static int get(struct lp_k8s *k, const char *url, long timeout_ms,
               size_t (*write_cb)(char *, size_t, size_t, void *), long *status)
{
    CURL *c = curl_easy_init();
    if (!c)
        return LP_EHTTP;
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    const struct lp_k8s_conn *kc = k->cfg->conn;
    const char *tf = kc ? kc->token_file : k->cfg->token_file;
    if (kc && kc->token) {
        struct lp_buf hdr = LP_BUF_INIT;
        lp_buf_appendf(&hdr, "Authorization: Bearer %s", kc->token);
        lp_buf_putc(&hdr, '\0');
        h = curl_slist_append(h, hdr.data);
        lp_buf_release(&hdr);
    } else if (tf && *tf) {
        FILE *f = fopen(tf, "r");
        if (f) {
            char tok[8192];
            size_t n = fread(tok, 1, sizeof(tok) - 1, f);
            fclose(f);
            while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
                n--;
            tok[n] = '\0';
            if (strcspn(tok, "\r\n") != n) { /* a NUL too: strcspn stops there */
                /* one line is one token: more would be headers of ours */
                lp_log_ratelimited(LP_LOG_WARN, "token file holds more than one line; not sent",
                                   "path=\"%s\"", tf);
                n = 0;
                tok[0] = '\0';
            }
            char hdr[8300];
            snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", tok);
            if (n)
                h = curl_slist_append(h, hdr);
        }
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)k->cfg->request_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, k);
    if (kc)
        set_tls(c, kc);
    else if (k->cfg->ca_file && *k->cfg->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, k->cfg->ca_file);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && k->gone) &&
        !(rc == CURLE_OPERATION_TIMEDOUT && write_cb == watch_cb)) {
        if (!stopping(k))
            lp_log(LP_LOG_WARN, "API server request failed", "error=\"%s\"",
                   curl_easy_strerror(rc));
        return LP_EHTTP;
    }
    return 0;
}

static void set_rv(struct lp_k8s *k, json_t *obj)
{
    json_t *rv = json_object_get(json_object_get(obj, "metadata"), "resourceVersion");
    if (json_is_string(rv) && json_string_length(rv) < sizeof(k->rv))
        snprintf(k->rv, sizeof(k->rv), "%s", json_string_value(rv));
}

#define MAX_JOBS 4096 /* Job owners remembered (then forgotten all at once) */
#define MAX_JOB_BYTES (4u << 20)

static size_t jbody_cb(char *p, size_t size, size_t n, void *ud)
{
    struct lp_k8s *k = ud;
    return append_capped(&k->jbody, MAX_JOB_BYTES, p, size * n);
}

/* The CronJob that owns Job ns/job, asked of the API once (batch/v1 jobs
 * get; shipper.kubernetes.cronjobs); NULL when it has none or the answer
 * did not come. The API thread's. */
static const char *job_cronjob(struct lp_k8s *k, const char *ns, const char *job)
{
    for (size_t i = 0; i < k->n_jobs; i++)
        if (strcmp(k->jobs[i].ns, ns) == 0 && strcmp(k->jobs[i].job, job) == 0)
            return *k->jobs[i].cronjob ? k->jobs[i].cronjob : NULL;
    if (k->offline)
        return NULL;
    char url[2048];
    char *en = curl_easy_escape(NULL, ns, 0), *ej = curl_easy_escape(NULL, job, 0);
    snprintf(url, sizeof(url), "%s/apis/batch/v1/namespaces/%s/jobs/%s", k->url, en ? en : "",
             ej ? ej : "");
    curl_free(en);
    curl_free(ej);
    lp_buf_reset(&k->jbody);
    long status = 0;
    char *cron = NULL;
    /* a 403 (RBAC without batch jobs get) is an answer too: asking again
     * would not change it, and every relist would ask for every Job */
    int answered = get(k, url, (long)k->cfg->request_timeout_ms, jbody_cb, &status) == 0 &&
                   (status == 200 || status == 404 || status == 403);
    if (status == 200) {
        json_t *j = json_loadb(k->jbody.data, k->jbody.len, 0, NULL);
        json_t *refs = json_object_get(json_object_get(j, "metadata"), "ownerReferences"), *r;
        size_t i;
        json_array_foreach(refs, i, r)
        {
            json_t *kind = json_object_get(r, "kind"), *name = json_object_get(r, "name");
            if (json_is_true(json_object_get(r, "controller")) && json_is_string(kind) &&
                strcmp(json_string_value(kind), "CronJob") == 0 && json_is_string(name) &&
                json_string_length(name) && json_string_length(name) < 254 &&
                strlen(json_string_value(name)) == json_string_length(name)) {
                cron = lp_xstrdup(json_string_value(name));
                break;
            }
        }
        json_decref(j);
    } else if (status == 403) {
        lp_log_ratelimited(LP_LOG_WARN,
                           "may not read Jobs (RBAC: batch jobs get); pods of Jobs named by the "
                           "Job until restarted",
                           "namespace=\"%s\" job=\"%s\"", ns, job);
    } else if (status != 404) {
        lp_log_ratelimited(LP_LOG_WARN, "cannot read a Job's owner; named as the Job",
                           "namespace=\"%s\" job=\"%s\" status=%ld", ns, job, status);
    }
    if (!answered)
        return NULL; /* asked again with the next event of its pods */
    if (k->n_jobs >= MAX_JOBS) {
        for (size_t i = 0; i < k->n_jobs; i++) {
            free(k->jobs[i].ns);
            free(k->jobs[i].job);
            free(k->jobs[i].cronjob);
        }
        k->n_jobs = 0;
    }
    LP_ALLOC_GROW(k->jobs, k->n_jobs + 1, k->cap_jobs, 16);
    k->jobs[k->n_jobs++] =
        (struct job_owner){lp_xstrdup(ns), lp_xstrdup(job), cron ? cron : lp_xstrdup("")};
    return cron;
}

/* A pod of a Job that a CronJob made is named by the CronJob. */
static void cronjob_owner(struct lp_k8s *k, struct lp_k8s_pod *p)
{
    if (!k->cfg->cronjobs || !p->owner_kind || strcmp(p->owner_kind, "job") != 0)
        return;
    const char *cron = job_cronjob(k, p->ns, p->owner_name);
    if (cron) {
        free(p->owner_name);
        p->owner_name = lp_xstrdup(cron);
        p->owner_kind = "cronjob";
    }
}

static void apply_event(struct lp_k8s *k, const char *line, size_t n)
{
    json_t *ev = json_loadb(line, n, 0, NULL);
    json_t *type = json_object_get(ev, "type"), *obj = json_object_get(ev, "object");
    if (!json_is_string(type) || !json_is_object(obj)) {
        json_decref(ev);
        return;
    }
    const char *t = json_string_value(type);
    if (strcmp(t, "ERROR") == 0) {
        json_t *code = json_object_get(obj, "code");
        if (json_integer_value(code) == 410)
            k->gone = 1;
        json_decref(ev);
        return;
    }
    static const char *const types[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
    int ti = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(t, types[i]) == 0)
            ti = i;
    if (ti < 0) {
        json_decref(ev);
        return;
    }
    set_rv(k, obj);
    atomic_store_explicit(&k->last_ok_ns, lp_time_mono_ns(), memory_order_relaxed);
    if (ti == 3) {
        lp_counter_inc(k->c_events[ti]);
        json_decref(ev);
        return;
    }
    struct lp_k8s_pod *p = lp_k8s_pod_parse(obj, k->cfg->annotations, k->cfg->n_annotations);
    if (p && ti != 2)
        cronjob_owner(k, p); /* before the cache's lock: it may ask the API */
    if (p) {
        pthread_mutex_lock(&k->mu);
        if (ti == 2) {
            struct entry *e = find(k, p->ns, p->name);
            if (e && !e->deleted_ns)
                e->deleted_ns = lp_time_mono_ns();
            lp_k8s_pod_release(p);
        } else {
            upsert(k, p);
        }
        expire(k, lp_time_mono_ns());
        changed(k);
        pthread_mutex_unlock(&k->mu);
    }
    /* counted once applied: a line read after the count sees the event */
    lp_counter_inc(k->c_events[ti]);
    json_decref(ev);
}

static void pods_url(struct lp_k8s *k, char *out, size_t n, const char *extra)
{
    char *node = curl_easy_escape(NULL, k->cfg->node_name, 0);
    snprintf(out, n, "%s/api/v1/pods?fieldSelector=spec.nodeName%%3D%s%s", k->url, node ? node : "",
             extra);
    curl_free(node);
}

/* A list's pages: list_begin, list_page for each, list_end once all came. */
static void list_begin(struct lp_k8s *k)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n; i++)
        k->e[i].seen = 0;
    pthread_mutex_unlock(&k->mu);
}

/* One PodList page into the cache; its continue token into cont (empty:
 * the last page). -1 when it is not a PodList. */
static int list_page(struct lp_k8s *k, const char *body, size_t n, char *cont, size_t contlen)
{
    cont[0] = '\0';
    json_t *list = json_loadb(body, n, 0, NULL);
    json_t *items = json_object_get(list, "items"), *it;
    if (!json_is_array(items)) {
        json_decref(list);
        return LP_ECORRUPT;
    }
    size_t i;
    json_array_foreach(items, i, it)
    {
        struct lp_k8s_pod *p = lp_k8s_pod_parse(it, k->cfg->annotations, k->cfg->n_annotations);
        if (!p)
            continue;
        cronjob_owner(k, p); /* outside the cache's lock: it may ask the API */
        pthread_mutex_lock(&k->mu);
        upsert(k, p);
        pthread_mutex_unlock(&k->mu);
    }
    set_rv(k, list);
    json_t *cv = json_object_get(json_object_get(list, "metadata"), "continue");
    if (json_is_string(cv) && json_string_length(cv) && json_string_length(cv) < contlen &&
        strlen(json_string_value(cv)) == json_string_length(cv))
        snprintf(cont, contlen, "%s", json_string_value(cv));
    json_decref(list);
    return 0;
}

/* Pods the list no longer has were deleted while we were not watching. */
static void list_end(struct lp_k8s *k, int64_t began_ns)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < k->n; i++)
        if (!k->e[i].seen && !k->e[i].deleted_ns)
            k->e[i].deleted_ns = began_ns;
    expire(k, lp_time_mono_ns());
    changed(k);
    pthread_mutex_unlock(&k->mu);
    lp_counter_inc(k->c_relists);
    atomic_store_explicit(&k->last_ok_ns, lp_time_mono_ns(), memory_order_relaxed);
    atomic_store_explicit(&k->synced, 1, memory_order_release);
}

/* Lists the node's pods (every page) into the cache. 0 or -1. */
static int do_list(struct lp_k8s *k)
{
    char cont[1024] = "";
    int64_t now = lp_time_mono_ns();
    list_begin(k);
    for (int page = 0; page < 10000; page++) {
        char extra[1200], url[2048];
        char *c = cont[0] ? curl_easy_escape(NULL, cont, 0) : NULL;
        snprintf(extra, sizeof(extra), "&limit=%d%s%s", LIST_PAGE_PODS, c ? "&continue=" : "",
                 c ? c : "");
        curl_free(c);
        pods_url(k, url, sizeof(url), extra);
        lp_buf_reset(&k->body);
        long status = 0;
        if (get(k, url, (long)k->cfg->request_timeout_ms, body_cb, &status))
            return LP_EHTTP;
        if (status != 200) {
            lp_log(LP_LOG_WARN, "API server refused the pod list", "status=%ld body=\"%.200s\"",
                   status, k->body.data);
            return LP_EHTTP;
        }
        if (list_page(k, k->body.data, k->body.len, cont, sizeof(cont))) {
            lp_log(LP_LOG_WARN, "API server's pod list has no items", "url=\"%s\"", k->url);
            return LP_ECORRUPT;
        }
        if (!cont[0])
            break;
    }
    list_end(k, now);
    /* the pages' buffer and their JSON trees go back to the system: a
     * list of large pods must not leave its peak as the shipper's RSS */
    lp_buf_release(&k->body);
    lp_buf_init(&k->body, 0);
    malloc_trim(0);
    return 0;
}

/* Watches from k->rv until the server ends it (0), a 410 (k->gone), or an
 * error (-1). */
static int do_watch(struct lp_k8s *k)
{
    char extra[300], url[2048];
    long secs = (long)(k->cfg->watch_timeout_ms / 1000);
    snprintf(extra, sizeof(extra),
             "&watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld&resourceVersion=%s",
             secs > 0 ? secs : 1, k->rv);
    pods_url(k, url, sizeof(url), extra);
    lp_buf_reset(&k->line);
    k->gone = 0;
    long status = 0;
    int rc = get(k, url, (long)k->cfg->watch_timeout_ms + 30000, watch_cb, &status);
    if (status == 410)
        k->gone = 1;
    if (rc || k->gone)
        return LP_EHTTP;
    if (status != 200) {
        lp_log(LP_LOG_WARN, "API server refused the watch", "status=%ld", status);
        return LP_EHTTP;
    }
    atomic_store_explicit(&k->last_ok_ns, lp_time_mono_ns(), memory_order_relaxed);
    return 0;
}

/* Waits ms or until stop. */
static void nap(struct lp_k8s *k, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&k->stop_mu);
    while (!stopping(k) && pthread_cond_timedwait(&k->stop_cv, &k->stop_mu, &ts) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&k->stop_mu);
}

static void failed(struct lp_k8s *k)
{
    lp_counter_inc(k->c_err);
    /* jitter: between half and all of the delay */
    int64_t d = k->backoff_ms / 2 + (int64_t)(rand_r(&k->seed) % (unsigned)(k->backoff_ms / 2 + 1));
    nap(k, d);
    k->backoff_ms *= 2;
    if (k->backoff_ms > k->cfg->retry_max_ms)
        k->backoff_ms = k->cfg->retry_max_ms;
}

static void *run(void *arg)
{
    struct lp_k8s *k = arg;
    int need_list = 1;
    k->backoff_ms = k->cfg->retry_initial_ms;
    while (!stopping(k)) {
        if (need_list) {
            if (do_list(k)) {
                failed(k);
                continue;
            }
            lp_counter_inc(k->c_ok);
            need_list = 0;
            k->backoff_ms = k->cfg->retry_initial_ms;
        }
        if (do_watch(k)) {
            if (stopping(k))
                break;
            if (k->gone) {
                lp_log(LP_LOG_INFO, "watch resourceVersion too old (410 Gone); relisting", "rv=%s",
                       k->rv);
                need_list = 1;
                continue; /* at once: the server is there */
            }
            /* resumed from the last resourceVersion, as client-go does: only
             * a 410 (history compacted past it) costs a relist */
            failed(k);
            continue;
        }
        lp_counter_inc(k->c_ok);
        k->backoff_ms = k->cfg->retry_initial_ms;
    }
    return NULL;
}

static struct lp_k8s *k8s_new(const struct lp_config_kubernetes *cfg, struct lp_metrics *m);

static struct lp_k8s *k8s_new(const struct lp_config_kubernetes *cfg, struct lp_metrics *m)
{
    struct lp_k8s *k = lp_xcalloc(1, sizeof(*k));
    k->cfg = cfg;
    k->seed = (unsigned)lp_time_mono_ns();
    pthread_mutex_init(&k->mu, NULL);
    pthread_mutex_init(&k->stop_mu, NULL);
    pthread_cond_init(&k->stop_cv, NULL);
    lp_buf_init(&k->body, 0);
    lp_buf_init(&k->line, 0);
    lp_buf_init(&k->jbody, 0);
    k->g_pods = lp_metrics_gauge(m, "logpipe_shipper_k8s_pods",
                                 "Pods in the API cache (this node's, and deleted ones within "
                                 "deleted_grace).",
                                 NULL);
    k->g_age = lp_metrics_gauge(m, "logpipe_shipper_k8s_cache_age_seconds",
                                "Seconds since the pod cache was last known current (a list, "
                                "a watch event or a watch that ended normally); -1 before the "
                                "first.",
                                NULL);
    k->g_synced = lp_metrics_gauge(m, "logpipe_shipper_k8s_synced",
                                   "1 once the first pod list filled the cache.", NULL);
    k->c_ok = lp_metrics_counter(m, "logpipe_shipper_k8s_requests_total",
                                 "API server lists and watches, by result.", "result=\"ok\"");
    k->c_err = lp_metrics_counter(m, "logpipe_shipper_k8s_requests_total",
                                  "API server lists and watches, by result.", "result=\"error\"");
    k->c_relists = lp_metrics_counter(m, "logpipe_shipper_k8s_lists_total",
                                      "Full pod lists (start, 410 Gone, after errors).", NULL);
    k->c_evicted = lp_metrics_counter(
        m, "logpipe_shipper_k8s_deleted_evicted_total",
        "Deleted pods dropped from the cache before deleted_grace to make room for a new pod "
        "(max_pods reached).",
        NULL);
    static const char *const types[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
    for (int i = 0; i < 4; i++) {
        char l[64];
        snprintf(l, sizeof(l), "type=\"%s\"", types[i]);
        k->c_events[i] = lp_metrics_counter(m, "logpipe_shipper_k8s_watch_events_total",
                                            "Watch events applied to the pod cache, by type.", l);
    }
    return k;
}

struct lp_k8s *lp_k8s_start(const struct lp_config_kubernetes *cfg, struct lp_metrics *m, char *err,
                            size_t errlen)
{
    char u[512];
    if (cfg->conn) {
        snprintf(u, sizeof(u), "%s", cfg->conn->server);
        if (cfg->conn->insecure)
            lp_log(LP_LOG_WARN,
                   "kubeconfig says insecure-skip-tls-verify: the API server's "
                   "certificate is not verified",
                   "context=\"%s\"", cfg->conn->context);
    } else if (cfg->api_url && *cfg->api_url) {
        snprintf(u, sizeof(u), "%s", cfg->api_url);
    } else {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !*host) {
            snprintf(err, errlen,
                     "shipper.kubernetes: no api_url and no KUBERNETES_SERVICE_HOST (not in a "
                     "pod?)");
            return NULL;
        }
        snprintf(u, sizeof(u), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
                 port && *port ? port : "443");
    }
    if (strncasecmp(u, "http://", 7) == 0)
        lp_log(LP_LOG_WARN, "the API server is plain HTTP: the bearer token travels in clear", "%s",
               "");
    struct lp_k8s *k = k8s_new(cfg, m);
    k->url = lp_xstrdup(u);
    size_t ul = strlen(k->url);
    while (ul && k->url[ul - 1] == '/')
        k->url[--ul] = '\0';
    if (pthread_create(&k->thread, NULL, run, k)) {
        snprintf(err, errlen, "cannot start the Kubernetes client thread");
        lp_k8s_stop(k);
        return NULL;
    }
    k->started = 1;
    return k;
}

struct lp_k8s *lp_k8s_new_offline(const struct lp_config_kubernetes *cfg, struct lp_metrics *m)
{
    struct lp_k8s *k = k8s_new(cfg, m);
    k->offline = 1;
    return k;
}

int lp_k8s_feed_event(struct lp_k8s *k, const char *line, size_t n)
{
    k->gone = 0;
    apply_event(k, line, n);
    return k->gone;
}

int lp_k8s_feed_list(struct lp_k8s *k, const char *body, size_t n, int first, int *more)
{
    char cont[1024];
    if (first)
        list_begin(k);
    int rc = list_page(k, body, n, cont, sizeof(cont));
    *more = !rc && cont[0];
    if (!rc && !*more)
        list_end(k, lp_time_mono_ns());
    return rc;
}

void lp_k8s_stop(struct lp_k8s *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->stop_mu);
    atomic_store_explicit(&k->stop, 1, memory_order_release);
    pthread_cond_broadcast(&k->stop_cv);
    pthread_mutex_unlock(&k->stop_mu);
    if (k->started)
        pthread_join(k->thread, NULL);
    for (size_t i = 0; i < k->n; i++)
        lp_k8s_pod_release(k->e[i].pod);
    free(k->e);
    lp_buf_release(&k->body);
    lp_buf_release(&k->jbody);
    for (size_t i = 0; i < k->n_jobs; i++) {
        free(k->jobs[i].ns);
        free(k->jobs[i].job);
        free(k->jobs[i].cronjob);
    }
    free(k->jobs);
    lp_buf_release(&k->line);
    pthread_mutex_destroy(&k->mu);
    pthread_mutex_destroy(&k->stop_mu);
    pthread_cond_destroy(&k->stop_cv);
    free(k->url);
    free(k);
}
