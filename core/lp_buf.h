/* Growable byte buffer with an optional size cap (Git's strbuf, with a limit):
 * the bytes are always NUL-terminated so data can be used as a C string. */
#ifndef LP_BUF_H
#define LP_BUF_H

#include <stdarg.h>
#include <stddef.h>

/* Owns data (heap) once it holds something. Embed it and use
 * lp_buf_init/LP_BUF_INIT and lp_buf_release. One thread at a time. limit
 * == 0 means no cap; otherwise growing past limit bytes of content fails
 * with LP_ETOOBIG and leaves the buffer unchanged.
 *
 * data is never NULL and always NUL-terminated: an empty buffer (cap == 0)
 * points at lp_buf_empty, a shared "" that nobody writes (Git's slopbuf).
 * A zero-filled struct (calloc) is an empty buffer to every function
 * here, but its data is NULL until the first append: initialise it. */
struct lp_buf {
    char *data;
    size_t len;
    size_t cap; /* 0: data is lp_buf_empty (or NULL, zero-filled) */
    size_t limit;
};

extern char lp_buf_empty[1];
/* clang-format off */
#define LP_BUF_INIT {lp_buf_empty, 0, 0, 0}
/* clang-format on */

void lp_buf_init(struct lp_buf *b, size_t limit);
/* Frees the bytes; the buffer is empty and reusable afterwards. NULL is ok. */
void lp_buf_release(struct lp_buf *b);
/* Shortens the content to n <= len bytes, keeping the allocation. */
static inline void lp_buf_truncate(struct lp_buf *b, size_t n)
{
    b->len = n;
    if (b->cap)
        b->data[n] = '\0';
}
/* Empties the buffer, keeping its allocation. */
static inline void lp_buf_reset(struct lp_buf *b)
{
    lp_buf_truncate(b, 0);
}
/* Makes room for extra more bytes. 0 or LP_ETOOBIG. Aborts on OOM. */
int lp_buf_reserve(struct lp_buf *b, size_t extra);
/* Appends; 0 or LP_ETOOBIG (nothing appended). */
int lp_buf_append(struct lp_buf *b, const void *p, size_t n);
int lp_buf_puts(struct lp_buf *b, const char *s);
int lp_buf_putc(struct lp_buf *b, char c);
int lp_buf_appendf(struct lp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int lp_buf_vappendf(struct lp_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends s[0..n) as a quoted JSON string. Invalid UTF-8 sequences become
 * U+FFFD and control characters are escaped, so the result is always valid
 * JSON whatever the input bytes. 0 or LP_ETOOBIG. */
int lp_buf_append_json_string(struct lp_buf *b, const char *s, size_t n);
/* Takes the bytes out: the caller owns the returned pointer (free with free());
 * the buffer is left empty. Never NULL (an empty buffer gives ""). */
char *lp_buf_detach(struct lp_buf *b, size_t *len);

/* Length of the longest prefix of s[0..n) that is valid UTF-8, and how to
 * step over the next invalid sequence: shared by the JSON writer and the
 * shipper's line sanitiser. Returns 1 and sets *seqlen when s starts with a
 * valid sequence, 0 otherwise (*seqlen = bytes to replace, >= 1). */
int lp_utf8_next(const unsigned char *s, size_t n, size_t *seqlen);

#endif
