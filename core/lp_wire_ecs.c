/* The full ECS event of one record (lp_wire.h): the document the aggregator
 * indexes and the per-record message value. Hand-rolled for the
 * aggregator's hot path; the source's members come from
 * lp_wire_source_fields, nested by their dotted keys. */
#include "lp_wire.h"
#include "lp_wire_int.h"

#include "lp_error.h"
#include "lp_eventid.h"
#include "lp_kv.h"
#include "lp_time.h"

#include <string.h>

/* Writes members named by dotted paths as nested objects. open[0..open_len)
 * is the parent path of the last member written with its trailing '.'
 * ("kubernetes.pod."); callers keep each object's members adjacent. Starts
 * inside an object that already has a member. */
struct nest {
    struct lp_buf *b;
    char open[96];
    size_t open_len;
};

/* Closes the objects path does not share with the last member, opens the
 * ones it needs and writes ,"leaf": */
static int nest_key(struct nest *w, const char *path, size_t len)
{
    size_t plen = len;
    while (plen && path[plen - 1] != '.')
        plen--;
    int rc, opened = 0;
    if (plen != w->open_len || memcmp(path, w->open, plen) != 0) {
        if (plen >= sizeof(w->open))
            return LP_ETOOBIG;
        size_t common = 0;
        for (size_t i = 0; i < plen && i < w->open_len && path[i] == w->open[i]; i++)
            if (path[i] == '.')
                common = i + 1;
        for (size_t i = common; i < w->open_len; i++)
            if (w->open[i] == '.' && (rc = lp_buf_putc(w->b, '}')))
                return rc;
        for (size_t i = common, start = common; i < plen; i++) {
            if (path[i] != '.')
                continue;
            if ((rc = lp_buf_puts(w->b, opened ? "\"" : ",\"")) ||
                (rc = lp_buf_append(w->b, path + start, i - start)) ||
                (rc = lp_buf_append(w->b, "\":{", 3)))
                return rc;
            opened = 1;
            start = i + 1;
        }
        memcpy(w->open, path, plen);
        w->open_len = plen;
    }
    if ((rc = lp_buf_puts(w->b, opened ? "\"" : ",\"")) ||
        (rc = lp_buf_append(w->b, path + plen, len - plen)))
        return rc;
    return lp_buf_append(w->b, "\":", 2);
}

static int nest_end(struct nest *w)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < w->open_len; i++)
        if (w->open[i] == '.')
            rc = lp_buf_putc(w->b, '}');
    w->open_len = 0;
    return rc;
}

static int nest_str(struct nest *w, const char *path, size_t len, const char *v)
{
    int rc = nest_key(w, path, len);
    return rc ? rc : lp_buf_append_json_string(w->b, v, strlen(v));
}

/* The source's members, in the table's order. */
static int put_source(struct nest *w, const struct lp_wire_source *s)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < lp_wire_n_source_fields; i++) {
        const struct lp_wire_field *f = &lp_wire_source_fields[i];
        const char *v;
        size_t n = 0;
        char key[64];
        switch (f->kind) {
        case LP_WF_STR:
            if ((v = lp_wire_field_str(s, f)))
                rc = nest_str(w, f->key, strlen(f->key), v);
            break;
        case LP_WF_LABELS: {
            const struct lp_kv *l = lp_wire_field_labels(s, f, &n);
            if (!n)
                break;
            int first = 1;
            rc = nest_key(w, f->key, strlen(f->key));
            rc = rc ? rc : lp_buf_putc(w->b, '{');
            for (size_t k = 0; !rc && k < n; k++)
                rc = lp_wire_put_str(w->b, &first, l[k].key, l[k].value);
            rc = rc ? rc : lp_buf_putc(w->b, '}');
            break;
        }
        case LP_WF_OWNER:
            if ((v = lp_wire_owner_key(s, f, key)))
                rc = nest_str(w, key, strlen(key), v);
            break;
        }
    }
    return rc;
}

int lp_wire_ecs_source(const struct lp_wire_source *s, struct lp_buf *out)
{
    struct nest w = {.b = out, .open = "log.", .open_len = 4};
    int rc = put_source(&w, s);
    if (!rc && (w.open_len != 8 || memcmp(w.open, "logpipe.", 8) != 0))
        rc = LP_EINVAL; /* the event renderer continues inside "logpipe" */
    return rc;
}

int lp_wire_ecs_event(const struct lp_wire_source *s, const struct lp_wire_record *r,
                      struct lp_buf *b)
{
    return lp_wire_ecs_event_ext(s, r, NULL, NULL, NULL, 0, b);
}

int lp_wire_ecs_event_ext(const struct lp_wire_source *s, const struct lp_wire_record *r,
                          const char *event_id, const char *ingested, const char *extra,
                          size_t extra_len, struct lp_buf *b)
{
    char ts[LP_RFC3339_MAX], idbuf[LP_ID_HEX_LEN + 1];
    const char *id = event_id;
    lp_time_format_rfc3339(r->ts_ns, 9, ts);
    if (!id) {
        lp_event_id(s->source_id, strlen(s->source_id), r->offset, idbuf);
        id = idbuf;
    }
    int rc;
#define TRY(x)          \
    do {                \
        if ((rc = (x))) \
            return rc;  \
    } while (0)
    TRY(lp_buf_puts(b, "{\"@timestamp\":\""));
    TRY(lp_buf_puts(b, ts));
    TRY(lp_buf_puts(b, "\",\"message\":"));
    if (r->message_json) {
        TRY(lp_buf_putc(b, '"'));
        TRY(lp_buf_append(b, r->message_json, r->message_json_len));
        TRY(lp_buf_putc(b, '"'));
    } else {
        TRY(lp_buf_append_json_string(b, r->message, r->message_len));
    }
    if (r->stream) {
        TRY(lp_buf_puts(b, ",\"stream\":"));
        TRY(lp_buf_append_json_string(b, r->stream, strlen(r->stream)));
    }
    TRY(lp_buf_puts(b, ",\"event\":{\"id\":\""));
    TRY(lp_buf_puts(b, id));
    if (ingested) {
        TRY(lp_buf_puts(b, "\",\"ingested\":\""));
        TRY(lp_buf_puts(b, ingested));
    }
    TRY(lp_buf_puts(b, "\"}"));
    struct nest w = {.b = b, .open_len = 0};
    {
        char num[24];
        size_t k = sizeof(num);
        uint64_t v = r->offset;
        do {
            num[--k] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        TRY(nest_key(&w, "log.offset", 10));
        TRY(lp_buf_append(b, num + k, sizeof(num) - k));
    }
    if (s->ecs) {
        TRY(lp_buf_append(b, s->ecs, s->ecs_len));
        memcpy(w.open, "logpipe.", 8);
        w.open_len = 8;
    } else {
        TRY(put_source(&w, s));
    }
    if (r->flags) {
        TRY(nest_key(&w, "logpipe.flags", 13));
        TRY(lp_wire_put_flag_array(b, r->flags));
    }
    if (r->lines > 1) {
        TRY(nest_key(&w, "logpipe.lines", 13));
        TRY(lp_buf_appendf(b, "%u", r->lines));
    }
    TRY(nest_end(&w));
    if (extra_len) {
        TRY(lp_buf_putc(b, ','));
        TRY(lp_buf_append(b, extra, extra_len));
    }
    TRY(lp_buf_putc(b, '}'));
#undef TRY
    return 0;
}
