/* The dead letter (lp_deadletter.h). */
#define LP_LOG_MODULE "deadletter"
#include "lp_deadletter.h"
#include "lp_alloc.h"
#include "lp_error.h"

#include "lp_base64.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_file.h"
#include "lp_kafka.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_time.h"

#include <jansson.h>

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

struct lp_dlq {
    pthread_mutex_t mu;
    char *dir;
    char host[128];
    char day[16]; /* of the open file */
    int fd;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    struct lp_metrics *metrics;
    uint64_t count;
    /* keys (stage + event id, or stage + Kafka position for raw messages)
     * of the entries in today's file: a record read again after a crash or
     * a rebalance is not dead-lettered twice */
    uint64_t *seen;
    size_t n_seen, cap_seen;
    struct lp_dlq_redactor redact; /* under mu; .rules NULL: none */
};

void lp_dlq_set_redactor(struct lp_dlq *d, const struct lp_dlq_redactor *rd)
{
    pthread_mutex_lock(&d->mu);
    d->redact = rd && rd->rules ? *rd : (struct lp_dlq_redactor){0};
    pthread_mutex_unlock(&d->mu);
}

/* The entry's identity: its stage and the event id, or for a raw message
 * its Kafka position. 0 when the line is not one of ours. */
static uint64_t entry_key(const char *line, size_t n)
{
    const char *end = line + n;
    const char *st = memmem(line, n, "\"stage\":\"", 9);
    if (!st)
        return 0;
    st += 9;
    const char *sq = memchr(st, '"', (size_t)(end - st));
    if (!sq)
        return 0;
    char key[512];
    size_t kl = (size_t)(sq - st) < 64 ? (size_t)(sq - st) : 64;
    memcpy(key, st, kl);
    const char *ev = memmem(sq, (size_t)(end - sq), ",\"event\":{", 10);
    const char *id = ev ? memmem(ev, (size_t)(end - ev), "\"event\":{\"id\":\"", 15) : NULL;
    if (id && end - id >= 15 + 32) {
        memcpy(key + kl, "|id|", 4);
        memcpy(key + kl + 4, id + 15, 32);
        kl += 36;
    } else {
        const char *k = memmem(sq, (size_t)(end - sq), "\"kafka\":{", 9);
        const char *ke = k ? memchr(k, '}', (size_t)(end - k)) : NULL;
        if (!ke || (size_t)(ke - k) > sizeof(key) - kl - 8)
            return 0;
        memcpy(key + kl, "|kafka|", 7);
        memcpy(key + kl + 7, k, (size_t)(ke - k));
        kl += 7 + (size_t)(ke - k);
    }
    uint64_t v = XXH3_64bits(key, kl);
    return v ? v : 1;
}

static int seen_has(const struct lp_dlq *d, uint64_t k)
{
    if (!d->cap_seen)
        return 0;
    for (size_t i = k & (d->cap_seen - 1);; i = (i + 1) & (d->cap_seen - 1)) {
        if (d->seen[i] == k)
            return 1;
        if (!d->seen[i])
            return 0;
    }
}

static void seen_add(struct lp_dlq *d, uint64_t k)
{
    if (!k || seen_has(d, k))
        return;
    if ((d->n_seen + 1) * 2 > d->cap_seen) {
        size_t nc = d->cap_seen ? d->cap_seen * 2 : 1024;
        uint64_t *ns = lp_xcalloc(nc, sizeof(*ns));
        for (size_t i = 0; i < d->cap_seen; i++) {
            if (!d->seen[i])
                continue;
            size_t j = d->seen[i] & (nc - 1);
            while (ns[j])
                j = (j + 1) & (nc - 1);
            ns[j] = d->seen[i];
        }
        free(d->seen);
        d->seen = ns;
        d->cap_seen = nc;
    }
    size_t j = k & (d->cap_seen - 1);
    while (d->seen[j])
        j = (j + 1) & (d->cap_seen - 1);
    d->seen[j] = k;
    d->n_seen++;
}

/* Loads the keys of the entries already in the file at path. */
static void seen_load(struct lp_dlq *d, const char *path)
{
    d->n_seen = 0;
    if (d->cap_seen)
        memset(d->seen, 0, d->cap_seen * sizeof(*d->seen));
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0)
        seen_add(d, entry_key(line, (size_t)n));
    free(line);
    fclose(f);
}

struct lp_dlq *lp_dlq_new(const struct lp_config *cfg, struct lp_metrics *metrics, char *err,
                          size_t errlen)
{
    const struct lp_config_aggregator *a = &cfg->aggregator;
    int rc = lp_mkdirs(a->dead_letter_dir, 0750);
    if (rc) {
        snprintf(err, errlen, "dead letter directory %s: %s", a->dead_letter_dir, lp_strerror(rc));
        return NULL;
    }
    struct lp_dlq *d = lp_xcalloc(1, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    d->dir = lp_xstrdup(a->dead_letter_dir);
    d->fd = -1;
    d->metrics = metrics;
    if (gethostname(d->host, sizeof(d->host) - 1))
        snprintf(d->host, sizeof(d->host), "localhost");
    for (char *p = d->host; *p; p++)
        if (*p == '/')
            *p = '_';
    if (a->dead_letter_topic && *a->dead_letter_topic) {
        rd_kafka_conf_t *kc = lp_kafka_conf_new(&cfg->kafka.properties, err, errlen);
        if (!kc || lp_kafka_conf_set(kc, "bootstrap.servers", cfg->kafka.brokers, err, errlen) ||
            lp_kafka_conf_set(kc, "client.id", cfg->kafka.client_id, err, errlen)) {
            if (kc)
                rd_kafka_conf_destroy(kc);
            lp_dlq_free(d);
            return NULL;
        }
        char kerr[512];
        d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, kerr, sizeof(kerr));
        if (!d->rk) {
            snprintf(err, errlen, "dead letter producer: %s", kerr);
            rd_kafka_conf_destroy(kc);
            lp_dlq_free(d);
            return NULL;
        }
        d->rkt = rd_kafka_topic_new(d->rk, a->dead_letter_topic, NULL);
    }
    return d;
}

void lp_dlq_free(struct lp_dlq *d)
{
    if (!d)
        return;
    if (d->rk) {
        rd_kafka_flush(d->rk, 5000);
        if (d->rkt)
            rd_kafka_topic_destroy(d->rkt);
        rd_kafka_destroy(d->rk);
    }
    if (d->fd >= 0)
        close(d->fd);
    pthread_mutex_destroy(&d->mu);
    free(d->dir);
    free(d->seen);
    free(d);
}

static int open_today(struct lp_dlq *d, int64_t now_ns)
{
    char day[16];
    time_t t = (time_t)(now_ns / LP_NS_PER_SEC);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    if (d->fd >= 0 && strcmp(day, d->day) == 0)
        return 0;
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    char path[4200];
    snprintf(path, sizeof(path), "%s/dead-letter-%s-%s.ndjson", d->dir, day, d->host);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    if (strcmp(day, d->day) != 0 || !d->cap_seen)
        seen_load(d, path);
    int rc = lp_fsync_dir(d->dir);
    if (rc) {
        close(fd);
        return rc;
    }
    d->fd = fd;
    memcpy(d->day, day, sizeof(day));
    return 0;
}

/* The entry as one NDJSON line (ending in a newline), redacted under the
 * rules. */
static void format_entry(struct lp_dlq *d, const struct lp_dlq_entry *e, int64_t now,
                         struct lp_buf *b)
{
    char ts[LP_RFC3339_MAX];
    lp_time_format_rfc3339(now, 3, ts);
    lp_buf_appendf(b, "{\"@timestamp\":\"%s\",\"stage\":", ts);
    lp_buf_append_json_string(b, e->stage, strlen(e->stage));
    lp_buf_puts(b, ",\"reason\":");
    lp_buf_append_json_string(b, e->reason, strlen(e->reason));
    if (e->output) {
        lp_buf_puts(b, ",\"output\":");
        lp_buf_append_json_string(b, e->output, strlen(e->output));
    }
    lp_buf_puts(b, ",\"kafka\":{\"topic\":");
    lp_buf_append_json_string(b, e->topic ? e->topic : "", e->topic ? strlen(e->topic) : 0);
    lp_buf_appendf(b, ",\"partition\":%d,\"offset\":%lld}", (int)e->partition,
                   (long long)e->offset);
    pthread_mutex_lock(&d->mu);
    struct lp_dlq_redactor r = d->redact;
    pthread_mutex_unlock(&d->mu);
    const void *rd = r.rules;
    const char *event = e->event, *raw = e->raw;
    size_t event_len = e->event_len, raw_len = e->raw_len;
    char *dumped = NULL;
    if (rd && event) {
        /* the event as an event (a byte-level rule could cut its JSON) */
        json_t *ev = json_loadb(event, event_len, JSON_ALLOW_NUL, NULL);
        if (ev) {
            r.event(rd, ev);
            dumped = json_dumps(ev, JSON_COMPACT | JSON_ENCODE_ANY);
            json_decref(ev);
        }
        if (dumped) {
            event = dumped;
            event_len = strlen(dumped);
        } else {
            raw = event; /* not JSON after all: redacted as bytes below */
            raw_len = event_len;
            event = NULL;
        }
    }
    if (rd && !event && raw) {
        const char *res;
        size_t n;
        if (r.bytes(rd, raw, raw_len, &res, &n)) {
            raw = res; /* this thread's redaction scratch, until its next call */
            raw_len = n;
        }
    }
    if (event) {
        lp_buf_puts(b, ",\"event\":");
        lp_buf_append(b, event, event_len);
    } else if (raw) {
        lp_buf_puts(b, ",\"raw_base64\":\"");
        lp_base64_encode(b, raw, raw_len);
        lp_buf_putc(b, '"');
    }
    if (rd)
        lp_buf_puts(b, ",\"redacted\":true");
    lp_buf_puts(b, "}\n");
    free(dumped);
}

int lp_dlq_write(struct lp_dlq *d, const struct lp_dlq_entry *e, const atomic_int *stop)
{
    int64_t now = lp_time_real_ns();
    struct lp_buf line, *b = &line;
    lp_buf_init(b, 0);
    format_entry(d, e, now, b);
    int rc;
    int64_t last_log = 0;
    uint64_t key = entry_key(b->data, b->len);
    int dup = 0;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        rc = open_today(d, now);
        if (!rc && key && seen_has(d, key)) {
            dup = 1; /* already dead-lettered (a replay): once is enough */
            pthread_mutex_unlock(&d->mu);
            break;
        }
        if (!rc)
            rc = lp_write_all(d->fd, b->data, b->len);
        if (!rc)
            rc = fsync(d->fd) ? -errno : 0;
        if (!rc) {
            d->count++;
            seen_add(d, key);
            if (d->rkt)
                rd_kafka_produce(d->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, b->data,
                                 b->len - 1, NULL, 0, NULL);
        } else if (d->fd >= 0) {
            /* a failed write may have left part of a line; O_APPEND puts the
             * retry after it, so a reader skips at most one torn line */
            close(d->fd);
            d->fd = -1;
        }
        pthread_mutex_unlock(&d->mu);
        if (!rc || (stop && atomic_load_explicit(stop, memory_order_acquire)))
            break;
        if (lp_time_mono_ns() - last_log > 10 * LP_NS_PER_SEC) {
            lp_log(LP_LOG_ERROR, "cannot write the dead letter; retrying (records wait)",
                   "dir=\"%s\" error=\"%s\"", d->dir, lp_strerror(rc));
            last_log = lp_time_mono_ns();
        }
        sleep(1);
    }
    lp_buf_release(b);
    if (dup) {
        lp_counter_inc(
            lp_metrics_counter(d->metrics, "logpipe_aggregator_dead_letter_replays_skipped_total",
                               "Records not dead-lettered again (already there).", NULL));
        return 0;
    }
    if (!rc) {
        char labels[96];
        snprintf(labels, sizeof(labels), "stage=\"%s\"", e->stage);
        lp_counter_inc(lp_metrics_counter(d->metrics, "logpipe_aggregator_dead_letters_total",
                                          "Records written to the dead letter, by stage.", labels));
        if (d->rk)
            rd_kafka_poll(d->rk, 0);
    }
    return rc;
}

uint64_t lp_dlq_count(struct lp_dlq *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t n = d->count;
    pthread_mutex_unlock(&d->mu);
    return n;
}
