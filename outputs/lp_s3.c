/* The S3 client (lp_s3.h). */
#include "lp_s3.h"

#include "lp_alloc.h"
#include "lp_base64.h"
#include "lp_config.h"
#include "lp_error.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 10000L
#define MIN_PART_BYTES ((size_t)5 << 20)
#define PART_ATTEMPTS 3 /* a part is tried again this often before the upload fails */

static char *dup_or_null(const char *s)
{
    return s && *s ? lp_xstrdup(s) : NULL;
}

int lp_s3_init(struct lp_s3 *s, const struct lp_s3_cfg *cfg, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (!cfg->bucket || !*cfg->bucket) {
        snprintf(err, errlen, "no bucket");
        return LP_EINVAL;
    }
    const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
    char def[160];
    const char *ep = cfg->endpoint;
    if (!ep || !*ep) {
        snprintf(def, sizeof(def), "https://s3.%s.amazonaws.com", region);
        ep = def;
    }
    const char *host = NULL;
    if (strncmp(ep, "https://", 8) == 0)
        host = ep + 8;
    else if (strncmp(ep, "http://", 7) == 0)
        host = ep + 7;
    if (!host || !*host || strchr(host, '?') || strchr(host, '@')) {
        snprintf(err, errlen, "endpoint must be http(s)://host[:port] without credentials");
        return LP_EINVAL;
    }
    struct lp_buf b = LP_BUF_INIT;
    size_t hl = strlen(host);
    while (hl && host[hl - 1] == '/')
        hl--;
    if (memchr(host, '/', hl)) {
        snprintf(err, errlen, "endpoint must not have a path (the bucket is its own setting)");
        return LP_EINVAL;
    }
    lp_buf_append(&b, ep, (size_t)(host - ep));
    if (!cfg->path_style) {
        lp_buf_puts(&b, cfg->bucket);
        lp_buf_putc(&b, '.');
    }
    lp_buf_append(&b, host, hl);
    s->base = lp_buf_detach(&b, NULL);
    s->bucket = lp_xstrdup(cfg->bucket);
    lp_buf_appendf(&b, "aws:amz:%s:s3", region);
    s->sigv4 = lp_buf_detach(&b, NULL);
    lp_buf_appendf(&b, "%s:%s", cfg->access_key_id ? cfg->access_key_id : "",
                   cfg->secret_access_key ? cfg->secret_access_key : "");
    s->userpwd = lp_buf_detach(&b, NULL);
    if (cfg->session_token && *cfg->session_token) {
        lp_buf_appendf(&b, "x-amz-security-token: %s", cfg->session_token);
        s->token_header = lp_buf_detach(&b, NULL);
    }
    if (cfg->storage_class && *cfg->storage_class) {
        lp_buf_appendf(&b, "x-amz-storage-class: %s", cfg->storage_class);
        s->class_header = lp_buf_detach(&b, NULL);
    }
    s->ca_file = dup_or_null(cfg->ca_file);
    s->tls_verify = cfg->tls_verify;
    s->path_style = cfg->path_style;
    s->timeout_ms = cfg->timeout_ms > 0 ? (long)cfg->timeout_ms : 60000L;
    s->part_bytes = cfg->part_bytes < MIN_PART_BYTES ? MIN_PART_BYTES : cfg->part_bytes;
    return 0;
}

void lp_s3_release(struct lp_s3 *s)
{
    if (!s)
        return;
    free(s->base);
    free(s->bucket);
    free(s->sigv4);
    if (s->userpwd) /* the secret does not linger in freed memory */
        memset(s->userpwd, 0, strlen(s->userpwd));
    free(s->userpwd);
    free(s->token_header);
    free(s->class_header);
    free(s->ca_file);
    memset(s, 0, sizeof(*s));
}

void lp_s3_client_init(struct lp_s3_client *c, const struct lp_s3 *s)
{
    c->s = s;
    c->curl = curl_easy_init();
    if (!c->curl)
        abort(); /* only fails without memory (lp_alloc.h) */
    lp_buf_init(&c->body, 0);
}

void lp_s3_client_release(struct lp_s3_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
    lp_buf_release(&c->body);
}

void lp_s3_encode_key(struct lp_buf *b, const char *key, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~' || (keep_slash && ch == '/')) {
            lp_buf_putc(b, (char)ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            lp_buf_append(b, e, 3);
        }
    }
}

char *lp_s3_norm_prefix(const char *p)
{
    struct lp_buf b = LP_BUF_INIT;
    p = p ? p : "";
    while (*p == '/')
        p++;
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/')
        pl--;
    lp_buf_append(&b, p, pl);
    if (pl)
        lp_buf_putc(&b, '/');
    return lp_buf_detach(&b, NULL);
}

static void entity_decode(struct lp_buf *out, const char *s, size_t n)
{
    static const struct {
        const char *name;
        char ch;
    } ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '&') {
            lp_buf_putc(out, s[i]);
            continue;
        }
        size_t rest = n - i - 1;
        const char *t = s + i + 1;
        int done = 0;
        for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]) && !done; k++) {
            size_t el = strlen(ents[k].name);
            if (rest >= el && memcmp(t, ents[k].name, el) == 0) {
                lp_buf_putc(out, ents[k].ch);
                i += el;
                done = 1;
            }
        }
        if (!done && rest >= 2 && t[0] == '#') {
            /* a numeric reference below 128 (keys we write are ASCII); any
             * other is kept as written */
            size_t j = 1;
            unsigned v = 0;
            int hexa = j < rest && (t[j] == 'x' || t[j] == 'X');
            j += (size_t)hexa;
            size_t digits = 0;
            for (; j < rest && digits < 6; j++, digits++) {
                char ch = t[j];
                unsigned d;
                if (ch >= '0' && ch <= '9')
                    d = (unsigned)(ch - '0');
                else if (hexa && ch >= 'a' && ch <= 'f')
                    d = (unsigned)(ch - 'a' + 10);
                else if (hexa && ch >= 'A' && ch <= 'F')
                    d = (unsigned)(ch - 'A' + 10);
                else
                    break;
                v = v * (hexa ? 16u : 10u) + d;
            }
            if (digits && j < rest && t[j] == ';' && v > 0 && v < 128) {
                lp_buf_putc(out, (char)v);
                i += j + 1;
                done = 1;
            }
        }
        if (!done)
            lp_buf_putc(out, '&');
    }
}

/* The raw text of the first <tag> from *pos on: [*start, *start + *len). */
static int xml_span(const char *xml, size_t n, size_t *pos, const char *tag, size_t *start_out,
                    size_t *len_out)
{
    char open[80], close[82];
    int ol = snprintf(open, sizeof(open), "<%s>", tag);
    int cl = snprintf(close, sizeof(close), "</%s>", tag);
    if (ol <= 0 || cl <= 0 || (size_t)cl >= sizeof(close))
        return 0;
    size_t i = *pos;
    while (i + (size_t)ol <= n) {
        const char *hit = memchr(xml + i, '<', n - i);
        if (!hit)
            return 0;
        i = (size_t)(hit - xml);
        if (i + (size_t)ol > n)
            return 0;
        if (memcmp(xml + i, open, (size_t)ol) != 0) {
            i++;
            continue;
        }
        size_t start = i + (size_t)ol;
        for (size_t j = start; j + (size_t)cl <= n; j++) {
            if (xml[j] == '<' && memcmp(xml + j, close, (size_t)cl) == 0) {
                *start_out = start;
                *len_out = j - start;
                *pos = j + (size_t)cl;
                return 1;
            }
        }
        return 0;
    }
    return 0;
}

int lp_s3_xml_next(const char *xml, size_t n, size_t *pos, const char *tag, struct lp_buf *out)
{
    size_t start, len;
    if (!xml_span(xml, n, pos, tag, &start, &len))
        return 0;
    lp_buf_reset(out);
    entity_decode(out, xml + start, len);
    return 1;
}

/* ---- one request ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct lp_buf *b = arg;
    size_t len = size * n;
    if (b->len + len > (256u << 20))
        return 0; /* no answer we need is this big */
    lp_buf_append(b, p, len);
    return len;
}

struct hdrs {
    char etag[80];
    char content_type[128];
    char content_encoding[64];
};

/* The value of header "name:" in p[0..len) into out (trimmed), if it is. */
static void header_value(const char *p, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(p, name, nl) != 0)
        return;
    size_t i = nl;
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        i++;
    size_t j = len;
    while (j > i && (p[j - 1] == '\r' || p[j - 1] == '\n' || p[j - 1] == ' '))
        j--;
    size_t l = j - i < outlen - 1 ? j - i : outlen - 1;
    memcpy(out, p + i, l);
    out[l] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct hdrs *h = arg;
    size_t len = size * n;
    header_value(p, len, "etag:", h->etag, sizeof(h->etag));
    header_value(p, len, "content-type:", h->content_type, sizeof(h->content_type));
    header_value(p, len, "content-encoding:", h->content_encoding, sizeof(h->content_encoding));
    return len;
}

struct req {
    const char *method; /* GET PUT POST DELETE HEAD */
    const char *key;    /* NULL: the bucket itself */
    const char *query;  /* sorted and encoded, or NULL */
    const void *body;
    size_t len;
    const char *content_type;
    const char *content_encoding;
    int with_class;             /* send the storage class (object writes) */
    const char *const *headers; /* more, NULL-terminated (NULL: none) */
    int errors_inside;          /* a 200's body lists per-key errors (DeleteObjects) */
};

static void digest(const EVP_MD *md, const void *p, size_t n, unsigned char *out, unsigned *outlen)
{
    if (!EVP_Digest(p, n, out, outlen, md, NULL))
        abort(); /* only fails without memory (lp_alloc.h) */
}

static void set_result(struct lp_s3_result *r, long status, const char *code, const char *msg)
{
    if (!r)
        return;
    r->status = status;
    r->retryable = status == 0 || status >= 500 || status == 429 || status == 408 ||
                   (code && (strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
                             strcmp(code, "InternalError") == 0));
    snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
    snprintf(r->message, sizeof(r->message), "%s", msg ? msg : "");
}

/* Runs one request; the answer's body is in c->body, its headers of
 * interest in *hd_out (optional). 0 on 2xx. */
static int perform(struct lp_s3_client *c, const struct req *q, struct hdrs *hd_out,
                   struct lp_s3_result *r)
{
    const struct lp_s3 *s = c->s;
    CURL *e = c->curl;
    struct lp_buf url = LP_BUF_INIT, tmp = LP_BUF_INIT;
    lp_buf_puts(&url, s->base);
    if (s->path_style) {
        lp_buf_putc(&url, '/');
        lp_s3_encode_key(&url, s->bucket, 0);
    }
    lp_buf_putc(&url, '/');
    if (q->key)
        lp_s3_encode_key(&url, q->key, 1);
    if (q->query) {
        lp_buf_putc(&url, '?');
        lp_buf_puts(&url, q->query);
    }
    unsigned char sha[EVP_MAX_MD_SIZE], md5[EVP_MAX_MD_SIZE];
    unsigned shalen = 0, md5len = 0;
    digest(EVP_sha256(), q->body ? q->body : "", q->len, sha, &shalen);
    struct curl_slist *h = NULL;
    lp_buf_puts(&tmp, "x-amz-content-sha256: ");
    for (unsigned i = 0; i < shalen; i++)
        lp_buf_appendf(&tmp, "%02x", sha[i]);
    h = curl_slist_append(h, tmp.data);
    if (q->body) {
        digest(EVP_md5(), q->body, q->len, md5, &md5len);
        lp_buf_reset(&tmp);
        lp_buf_puts(&tmp, "Content-MD5: ");
        lp_base64_encode(&tmp, md5, md5len);
        h = curl_slist_append(h, tmp.data);
        lp_buf_reset(&tmp);
        lp_buf_appendf(&tmp, "Content-Type: %s",
                       q->content_type ? q->content_type : "application/octet-stream");
        h = curl_slist_append(h, tmp.data);
        if (q->content_encoding) {
            lp_buf_reset(&tmp);
            lp_buf_appendf(&tmp, "Content-Encoding: %s", q->content_encoding);
            h = curl_slist_append(h, tmp.data);
        }
        h = curl_slist_append(h, "Expect:");
    }
    if (s->token_header)
        h = curl_slist_append(h, s->token_header);
    if (q->with_class && s->class_header)
        h = curl_slist_append(h, s->class_header);
    for (size_t i = 0; q->headers && q->headers[i]; i++)
        h = curl_slist_append(h, q->headers[i]);
    lp_buf_release(&tmp);

    struct hdrs hd;
    memset(&hd, 0, sizeof(hd));
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     s->timeout_ms < CONNECT_TIMEOUT_MS ? s->timeout_ms : CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(e, CURLOPT_USERPWD, s->userpwd);
    if (s->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    if (!s->tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(e, CURLOPT_URL, url.data);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (strcmp(q->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(q->method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
    if (q->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
    } else if (strcmp(q->method, "POST") == 0 || strcmp(q->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    lp_buf_reset(&c->body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &hd);
    CURLcode cc = curl_easy_perform(e);
    curl_slist_free_all(h);
    lp_buf_release(&url);
    long status = 0;
    if (cc != CURLE_OK) {
        set_result(r, 0, cc == CURLE_OPERATION_TIMEDOUT ? "Timeout" : "Transport",
                   curl_easy_strerror(cc));
        return LP_EHTTP;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (hd_out)
        *hd_out = hd;
    struct lp_buf code = LP_BUF_INIT, msg = LP_BUF_INIT;
    size_t pos = 0;
    /* CompleteMultipartUpload can answer 200 with an error document */
    int err_doc =
        !q->errors_inside && c->body.len && memmem(c->body.data, c->body.len, "<Error>", 7) != NULL;
    if (status >= 200 && status < 300 && !err_doc) {
        set_result(r, status, NULL, NULL);
        return 0;
    }
    if (c->body.len) {
        lp_s3_xml_next(c->body.data, c->body.len, &pos, "Code", &code);
        pos = 0;
        lp_s3_xml_next(c->body.data, c->body.len, &pos, "Message", &msg);
    }
    char fallback[32];
    snprintf(fallback, sizeof(fallback), "HTTP %ld", status);
    set_result(r, status == 200 ? 500 : status, code.len ? code.data : fallback,
               msg.len ? msg.data : NULL);
    if (r && status == 200)
        r->retryable = 1; /* an error inside a 200 is the store's, try again */
    lp_buf_release(&code);
    lp_buf_release(&msg);
    return status == 404 ? -ENOENT : LP_EHTTP;
}

static int put_once(struct lp_s3_client *c, const char *key, const void *data, size_t len,
                    const char *ct, const char *ce, struct lp_s3_result *r)
{
    struct req q = {"PUT", key, NULL, data ? data : "", len, ct, ce, 1, NULL, 0};
    return perform(c, &q, NULL, r);
}

static int multipart(struct lp_s3_client *c, const char *key, const unsigned char *data, size_t len,
                     const char *ct, const char *ce, struct lp_s3_result *r)
{
    struct req q = {"POST", key, "uploads=", NULL, 0, ct, ce, 1, NULL, 0};
    /* the content headers belong to the object: send them on create */
    struct lp_buf id = LP_BUF_INIT, query = LP_BUF_INIT, done = LP_BUF_INIT;
    int rc = perform(c, &q, NULL, r);
    size_t pos = 0;
    if (rc == 0 && !lp_s3_xml_next(c->body.data, c->body.len, &pos, "UploadId", &id)) {
        set_result(r, 500, "NoUploadId", "the store's answer to CreateMultipartUpload has no id");
        rc = LP_EHTTP;
    }
    if (rc) {
        lp_buf_release(&id);
        return rc;
    }
    struct lp_buf enc_id = LP_BUF_INIT;
    lp_s3_encode_key(&enc_id, id.data, 0);
    lp_buf_puts(&done, "<CompleteMultipartUpload>");
    size_t part_bytes = c->s->part_bytes;
    int part = 0;
    for (size_t off = 0; off < len && rc == 0; off += part_bytes) {
        part++;
        size_t n = len - off < part_bytes ? len - off : part_bytes;
        lp_buf_reset(&query);
        lp_buf_appendf(&query, "partNumber=%d&uploadId=%s", part, enc_id.data);
        struct hdrs ph;
        memset(&ph, 0, sizeof(ph));
        const char *etag = ph.etag;
        for (int attempt = 0; attempt < PART_ATTEMPTS; attempt++) {
            struct req pq = {"PUT", key, query.data, data + off, n, NULL, NULL, 0, NULL, 0};
            rc = perform(c, &pq, &ph, r);
            if (rc == 0 || (r && !r->retryable))
                break;
        }
        if (rc == 0 && !etag[0]) {
            set_result(r, 500, "NoETag", "the store's answer to UploadPart has no ETag");
            rc = LP_EHTTP;
        }
        if (rc == 0)
            lp_buf_appendf(&done, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", part,
                           etag);
    }
    lp_buf_puts(&done, "</CompleteMultipartUpload>");
    lp_buf_reset(&query);
    lp_buf_appendf(&query, "uploadId=%s", enc_id.data);
    if (rc == 0) {
        struct req cq = {"POST", key, query.data, done.data, done.len, "application/xml",
                         NULL,   0,   NULL,       0};
        rc = perform(c, &cq, NULL, r);
    }
    if (rc) { /* no parts left behind (best effort: a lifecycle rule is the backstop) */
        struct lp_s3_result ignored;
        struct req aq = {"DELETE", key, query.data, NULL, 0, NULL, NULL, 0, NULL, 0};
        perform(c, &aq, NULL, &ignored);
    }
    lp_buf_release(&id);
    lp_buf_release(&enc_id);
    lp_buf_release(&query);
    lp_buf_release(&done);
    return rc;
}

int lp_s3_put(struct lp_s3_client *c, const char *key, const void *data, size_t len,
              const char *content_type, const char *content_encoding, struct lp_s3_result *r)
{
    if (len > c->s->part_bytes)
        return multipart(c, key, data, len, content_type, content_encoding, r);
    return put_once(c, key, data, len, content_type, content_encoding, r);
}

int lp_s3_get(struct lp_s3_client *c, const char *key, struct lp_buf *out, struct lp_s3_result *r)
{
    struct req q = {"GET", key, NULL, NULL, 0, NULL, NULL, 0, NULL, 0};
    int rc = perform(c, &q, NULL, r);
    if (rc == 0) {
        lp_buf_reset(out);
        lp_buf_append(out, c->body.data, c->body.len);
    }
    return rc;
}

int lp_s3_delete(struct lp_s3_client *c, const char *key, struct lp_s3_result *r)
{
    struct req q = {"DELETE", key, NULL, NULL, 0, NULL, NULL, 0, NULL, 0};
    int rc = perform(c, &q, NULL, r);
    if (rc == -ENOENT) {
        set_result(r, 204, NULL, NULL);
        return 0;
    }
    return rc;
}

int lp_s3_head(struct lp_s3_client *c, const char *key, int64_t *size, struct lp_s3_result *r)
{
    struct req q = {"HEAD", key, NULL, NULL, 0, NULL, NULL, 0, NULL, 0};
    int rc = perform(c, &q, NULL, r);
    curl_off_t len = -1;
    if (rc == 0 && size) {
        curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
        *size = (int64_t)len;
    }
    return rc;
}

int lp_s3_copy(struct lp_s3_client *c, const char *src_bucket, const char *src_key, const char *key,
               const char *storage_class, struct lp_s3_result *r)
{
    /* In place, some stores (S3Proxy) refuse COPY as "nothing changes":
     * REPLACE, sending the object's own content headers back, is what
     * every store takes. */
    int in_place =
        strcmp(src_key, key) == 0 && (!src_bucket || strcmp(src_bucket, c->s->bucket) == 0);
    struct hdrs cur;
    memset(&cur, 0, sizeof(cur));
    if (in_place) {
        struct req hq = {"HEAD", key, NULL, NULL, 0, NULL, NULL, 0, NULL, 0};
        int rc = perform(c, &hq, &cur, r);
        if (rc)
            return rc;
    }
    struct lp_buf src = LP_BUF_INIT, cls = LP_BUF_INIT, ct = LP_BUF_INIT, ce = LP_BUF_INIT;
    lp_buf_puts(&src, "x-amz-copy-source: /");
    lp_s3_encode_key(&src, src_bucket ? src_bucket : c->s->bucket, 0);
    lp_buf_putc(&src, '/');
    lp_s3_encode_key(&src, src_key, 1);
    const char *h[6] = {src.data, in_place ? "x-amz-metadata-directive: REPLACE"
                                           : "x-amz-metadata-directive: COPY"};
    size_t nh = 2;
    if (storage_class && *storage_class) {
        lp_buf_appendf(&cls, "x-amz-storage-class: %s", storage_class);
        h[nh++] = cls.data;
    }
    if (in_place && cur.content_type[0]) {
        lp_buf_appendf(&ct, "Content-Type: %s", cur.content_type);
        h[nh++] = ct.data;
    }
    if (in_place && cur.content_encoding[0]) {
        lp_buf_appendf(&ce, "Content-Encoding: %s", cur.content_encoding);
        h[nh++] = ce.data;
    }
    struct req q = {"PUT", key, NULL, NULL, 0, NULL, NULL, !(storage_class && *storage_class),
                    h,     0};
    int rc = perform(c, &q, NULL, r);
    lp_buf_release(&src);
    lp_buf_release(&cls);
    lp_buf_release(&ct);
    lp_buf_release(&ce);
    return rc;
}

static void xml_escape(struct lp_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': lp_buf_puts(b, "&amp;"); break;
        case '<': lp_buf_puts(b, "&lt;"); break;
        case '>': lp_buf_puts(b, "&gt;"); break;
        case '"': lp_buf_puts(b, "&quot;"); break;
        case '\'': lp_buf_puts(b, "&apos;"); break;
        default:
            if ((unsigned char)*s < 0x20) /* XML 1.0 cannot carry it raw */
                lp_buf_appendf(b, "&#%d;", (unsigned char)*s);
            else
                lp_buf_putc(b, *s);
        }
    }
}

int lp_s3_delete_many(struct lp_s3_client *c, const char *const *keys, size_t n,
                      void (*failed)(const char *key, const char *code, const char *message,
                                     void *arg),
                      void *arg, struct lp_s3_result *r)
{
    if (n > LP_S3_DELETE_MAX) {
        set_result(r, 400, "TooManyKeys", "at most 1000 keys per request");
        return LP_EINVAL;
    }
    struct lp_buf body = LP_BUF_INIT;
    lp_buf_puts(&body,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
    for (size_t i = 0; i < n; i++) {
        lp_buf_puts(&body, "<Object><Key>");
        xml_escape(&body, keys[i]);
        lp_buf_puts(&body, "</Key></Object>");
    }
    lp_buf_puts(&body, "</Delete>");
    struct req q = {"POST", NULL, "delete=", body.data, body.len, "application/xml",
                    NULL,   0,    NULL,      1};
    int rc = perform(c, &q, NULL, r);
    lp_buf_release(&body);
    if (rc)
        return rc;
    /* Quiet: the answer names only the keys that failed */
    struct lp_buf key = LP_BUF_INIT, code = LP_BUF_INIT, msg = LP_BUF_INIT;
    const char *xml = c->body.data;
    size_t len = c->body.len, pos = 0, is, il;
    int bad = 0;
    while (xml_span(xml, len, &pos, "Error", &is, &il)) {
        size_t ip = 0;
        lp_buf_reset(&key);
        lp_buf_reset(&code);
        lp_buf_reset(&msg);
        lp_s3_xml_next(xml + is, il, &ip, "Key", &key);
        ip = 0;
        lp_s3_xml_next(xml + is, il, &ip, "Code", &code);
        ip = 0;
        lp_s3_xml_next(xml + is, il, &ip, "Message", &msg);
        bad++;
        if (failed)
            failed(key.len ? key.data : "", code.len ? code.data : "Error", msg.len ? msg.data : "",
                   arg);
    }
    lp_buf_release(&key);
    lp_buf_release(&code);
    lp_buf_release(&msg);
    if (bad) {
        char m[64];
        snprintf(m, sizeof(m), "%d of %zu keys not deleted", bad, n);
        set_result(r, 200, "PartialDelete", m);
        return LP_EHTTP;
    }
    return 0;
}

/* 1 when a ListObjectsV2 answer says more pages follow, with their token
 * in token (val: scratch). */
static int next_page(const char *xml, size_t n, struct lp_buf *token, struct lp_buf *val)
{
    size_t pos = 0;
    if (!lp_s3_xml_next(xml, n, &pos, "IsTruncated", val) || strcmp(val->data, "true") != 0)
        return 0;
    pos = 0;
    return lp_s3_xml_next(xml, n, &pos, "NextContinuationToken", token) && token->len;
}

int lp_s3_list(struct lp_s3_client *c, const char *prefix, const char *start_after,
               int (*fn)(const struct lp_s3_object *o, void *arg), void *arg,
               struct lp_s3_result *r)
{
    struct lp_buf query = LP_BUF_INIT, token = LP_BUF_INIT, key = LP_BUF_INIT, val = LP_BUF_INIT,
                  mod = LP_BUF_INIT, cls = LP_BUF_INIT, etag = LP_BUF_INIT;
    int rc = 0, stop = 0;
    for (int page = 0; !stop; page++) {
        /* the parameters in code-point order, values encoded ('/' too) */
        lp_buf_reset(&query);
        if (token.len) {
            lp_buf_puts(&query, "continuation-token=");
            lp_s3_encode_key(&query, token.data, 0);
            lp_buf_putc(&query, '&');
        }
        lp_buf_puts(&query, "list-type=2&prefix=");
        lp_s3_encode_key(&query, prefix ? prefix : "", 0);
        if (start_after && *start_after && !token.len) {
            lp_buf_puts(&query, "&start-after=");
            lp_s3_encode_key(&query, start_after, 0);
        }
        struct req q = {"GET", NULL, query.data, NULL, 0, NULL, NULL, 0, NULL, 0};
        rc = perform(c, &q, NULL, r);
        if (rc)
            break;
        size_t pos = 0;
        const char *xml = c->body.data;
        size_t n = c->body.len;
        if (!fn)
            break; /* a look at the bucket: the first page answered */
        size_t is, il;
        while (!stop && xml_span(xml, n, &pos, "Contents", &is, &il)) {
            const char *item = xml + is;
            size_t ip = 0;
            if (!lp_s3_xml_next(item, il, &ip, "Key", &key))
                continue;
            struct lp_s3_object o = {key.data, -1, "", "STANDARD", ""};
            ip = 0;
            if (lp_s3_xml_next(item, il, &ip, "Size", &val))
                o.size = strtoll(val.data, NULL, 10);
            ip = 0;
            if (lp_s3_xml_next(item, il, &ip, "LastModified", &mod))
                o.last_modified = mod.data;
            ip = 0;
            if (lp_s3_xml_next(item, il, &ip, "StorageClass", &cls) && cls.len)
                o.storage_class = cls.data;
            ip = 0;
            if (lp_s3_xml_next(item, il, &ip, "ETag", &etag))
                o.etag = etag.data;
            stop = fn(&o, arg);
        }
        if (!next_page(xml, n, &token, &val))
            break;
    }
    lp_buf_release(&query);
    lp_buf_release(&token);
    lp_buf_release(&key);
    lp_buf_release(&val);
    lp_buf_release(&mod);
    lp_buf_release(&cls);
    lp_buf_release(&etag);
    return rc;
}

int lp_s3_list_dirs(struct lp_s3_client *c, const char *prefix,
                    int (*fn)(const char *dir, void *arg), void *arg, struct lp_s3_result *r)
{
    struct lp_buf query = LP_BUF_INIT, token = LP_BUF_INIT, dir = LP_BUF_INIT, val = LP_BUF_INIT;
    int rc = 0, stop = 0;
    while (!stop) {
        lp_buf_reset(&query);
        if (token.len) {
            lp_buf_puts(&query, "continuation-token=");
            lp_s3_encode_key(&query, token.data, 0);
            lp_buf_putc(&query, '&');
        }
        lp_buf_puts(&query, "delimiter=%2F&list-type=2&prefix=");
        lp_s3_encode_key(&query, prefix ? prefix : "", 0);
        struct req q = {"GET", NULL, query.data, NULL, 0, NULL, NULL, 0, NULL, 0};
        rc = perform(c, &q, NULL, r);
        if (rc)
            break;
        const char *xml = c->body.data;
        size_t n = c->body.len, pos = 0, is, il;
        while (!stop && xml_span(xml, n, &pos, "CommonPrefixes", &is, &il)) {
            size_t ip = 0;
            if (lp_s3_xml_next(xml + is, il, &ip, "Prefix", &dir))
                stop = fn(dir.data, arg);
        }
        if (!next_page(xml, n, &token, &val))
            break;
    }
    lp_buf_release(&query);
    lp_buf_release(&token);
    lp_buf_release(&dir);
    lp_buf_release(&val);
    return rc;
}

/* ---- an s3 output's settings (lp_s3.h) ---- */

void lp_s3_output_cfg(const struct lp_config_output *o, struct lp_s3_cfg *c)
{
    const char *key_id = o->access_key_id, *secret = o->secret_access_key,
               *token = o->session_token;
    if (!key_id || !*key_id) {
        key_id = getenv("AWS_ACCESS_KEY_ID");
        secret = getenv("AWS_SECRET_ACCESS_KEY");
        token = getenv("AWS_SESSION_TOKEN");
    }
    *c = (struct lp_s3_cfg){o->endpoint,
                            o->region,
                            o->bucket,
                            key_id,
                            secret,
                            token,
                            o->storage_class,
                            o->ca_file,
                            o->tls_verify,
                            o->path_style,
                            o->request_timeout_ms,
                            (size_t)o->part_size};
}

char *lp_s3_output_prefix(const struct lp_config_output *o)
{
    return lp_s3_norm_prefix(o->prefix);
}
