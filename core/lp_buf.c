/* lp_buf: growable, capped, always NUL-terminated byte buffer. */
#include "lp_buf.h"

#include "lp_alloc.h"
#include "lp_error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char lp_buf_empty[1];

void lp_buf_init(struct lp_buf *b, size_t limit)
{
    b->data = lp_buf_empty;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void lp_buf_release(struct lp_buf *b)
{
    if (!b)
        return;
    if (b->cap)
        free(b->data);
    b->data = lp_buf_empty;
    b->len = 0;
    b->cap = 0;
}

int lp_buf_reserve(struct lp_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return LP_ETOOBIG;
    size_t need = b->len + extra + 1; /* + NUL */
    if (b->limit && b->len + extra > b->limit)
        return LP_ETOOBIG;
    if (need <= b->cap)
        return 0;
    /* double, but never round a large exact request up to a power of two */
    size_t ncap = b->cap ? b->cap * 2 : 64;
    if (ncap < need)
        ncap = need;
    if (b->limit && ncap > b->limit + 1)
        ncap = b->limit + 1;
    char *p = b->cap ? lp_xrealloc(b->data, ncap) : lp_xmalloc(ncap);
    if (!b->cap)
        p[0] = '\0';
    b->data = p;
    b->cap = ncap;
    return 0;
}

int lp_buf_append(struct lp_buf *b, const void *p, size_t n)
{
    int rc = lp_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int lp_buf_puts(struct lp_buf *b, const char *s)
{
    return lp_buf_append(b, s, strlen(s));
}

int lp_buf_putc(struct lp_buf *b, char c)
{
    return lp_buf_append(b, &c, 1);
}

int lp_buf_vappendf(struct lp_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, cp);
    va_end(cp);
    if (n < 0)
        return LP_EINVAL;
    if ((size_t)n < sizeof(small))
        return lp_buf_append(b, small, (size_t)n);
    int rc = lp_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int lp_buf_appendf(struct lp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int lp_utf8_next(const unsigned char *s, size_t n, size_t *seqlen)
{
    unsigned char c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) {
        *seqlen = 1;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        *seqlen = 1;
        return 0;
    }
    /* Replace the maximal invalid prefix as one U+FFFD (Unicode's advice). */
    for (size_t i = 1; i < len; i++) {
        unsigned lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < lo_i || s[i] > hi_i) {
            *seqlen = i;
            return 0;
        }
    }
    *seqlen = len;
    return 1;
}

/* 0: copied as is; 1: needs an escape; 2: non-ASCII (UTF-8 check). */
static const unsigned char json_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

int lp_buf_append_json_string(struct lp_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t start_len = b->len;
    /* The common case (no escapes) needs n + 2 bytes; escapes grow it. */
    int rc = lp_buf_reserve(b, n + 2);
    if (rc)
        return rc;
    size_t w = b->len;
    b->data[w++] = '"';
    size_t i = 0;
    while (i < n) {
        /* copy the plain run in one go; skip 8 bytes at a time while none
         * is a control byte, '"', '\\' or non-ASCII (SWAR tests) */
        size_t run = i;
        while (run + 8 <= n) {
            uint64_t v;
            memcpy(&v, p + run, 8);
            const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
            uint64_t ctl = (v - ones * 0x20) & ~v; /* bytes < 0x20 */
            uint64_t q = v ^ (ones * '"'), bs = v ^ (ones * '\\');
            uint64_t hit = (ctl | ((q - ones) & ~q) | ((bs - ones) & ~bs) | v) & high;
            if (hit)
                break;
            run += 8;
        }
        while (run < n && json_class[p[run]] == 0)
            run++;
        if (run > i) {
            memcpy(b->data + w, p + i, run - i);
            w += run - i;
            i = run;
            if (i == n)
                break;
        }
        unsigned char c = p[i];
        char esc[6];
        size_t el, consumed = 1;
        if (json_class[c] == 2) {
            size_t sl;
            if (lp_utf8_next(p + i, n - i, &sl)) {
                memcpy(esc, p + i, sl);
                el = sl;
            } else {
                memcpy(esc, "\xEF\xBF\xBD", 3);
                el = 3;
            }
            consumed = sl;
        } else {
            esc[0] = '\\';
            el = 2;
            switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                el = 6;
            }
        }
        /* an escape may be longer than what it replaces: make room for it
         * and the rest of the input */
        if (el > consumed) {
            b->len = w;
            if ((rc = lp_buf_reserve(b, (n - i) + el + 1)))
                goto fail;
        }
        memcpy(b->data + w, esc, el);
        w += el;
        i += consumed;
    }
    b->data[w++] = '"';
    b->data[w] = '\0';
    b->len = w;
    return 0;
fail:
    lp_buf_truncate(b, start_len);
    return rc;
}

char *lp_buf_detach(struct lp_buf *b, size_t *len)
{
    char *p = b->data;
    if (!b->cap) {
        p = lp_xmalloc(1);
        p[0] = '\0';
    }
    if (len)
        *len = b->len;
    b->data = lp_buf_empty;
    b->len = 0;
    b->cap = 0;
    return p;
}
