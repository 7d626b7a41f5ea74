/* Legacy encodings to UTF-8 (lp_charset.h). */
#include "lp_charset.h"

#include "lp_alloc.h"
#include "lp_buf.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct lp_charset {
    iconv_t cd;
};

static int is_utf8(const char *name)
{
    return strcasecmp(name, "utf-8") == 0 || strcasecmp(name, "utf8") == 0;
}

const char *lp_charset_check(const char *name)
{
    if (!name || !*name || is_utf8(name))
        return NULL;
    if (strncasecmp(name, "utf-16", 6) == 0 || strncasecmp(name, "utf16", 5) == 0 ||
        strncasecmp(name, "utf-32", 6) == 0 || strncasecmp(name, "utf32", 5) == 0 ||
        strncasecmp(name, "ucs-2", 5) == 0 || strncasecmp(name, "ucs2", 4) == 0 ||
        strncasecmp(name, "ucs-4", 5) == 0 || strncasecmp(name, "ucs4", 4) == 0)
        return "UTF-16 and UTF-32 files cannot be split into lines byte by byte (not "
               "supported yet)";
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return "not an encoding iconv knows (iconv --list names them)";
    /* a newline must stay one byte 0x0A: an ASCII superset */
    char in[] = "a\nb", out[16], *ip = in, *op = out;
    size_t il = 3, ol = sizeof(out);
    size_t r = iconv(cd, &ip, &il, &op, &ol);
    iconv_close(cd);
    if (r == (size_t)-1 || sizeof(out) - ol != 3 || memcmp(out, "a\nb", 3) != 0)
        return "not an ASCII superset: its newline is not the byte 0x0A";
    return NULL;
}

struct lp_charset *lp_charset_open(const char *name)
{
    if (lp_charset_check(name) || !name || !*name || is_utf8(name))
        return NULL;
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return NULL;
    struct lp_charset *cs = lp_xcalloc(1, sizeof(*cs));
    cs->cd = cd;
    return cs;
}

void lp_charset_close(struct lp_charset *cs)
{
    if (!cs)
        return;
    iconv_close(cs->cd);
    free(cs);
}

int lp_charset_to_utf8(struct lp_charset *cs, const char *in, size_t n, struct lp_buf *out)
{
    lp_buf_reset(out);
    iconv(cs->cd, NULL, NULL, NULL, NULL); /* each line from the initial state */
    char *ip = (char *)in;
    size_t il = n;
    int replaced = 0;
    while (il) {
        /* a code page character is at most 4 bytes of UTF-8 per input byte */
        if (lp_buf_reserve(out, il * 4 + 8))
            break; /* over the buffer's limit: what fits */
        char *op = out->data + out->len;
        size_t ol = out->cap - out->len - 1, before = ol;
        size_t r = iconv(cs->cd, &ip, &il, &op, &ol);
        out->len += before - ol;
        if (r != (size_t)-1)
            break;
        if (errno == E2BIG)
            continue;
        /* EILSEQ, or EINVAL (a sequence cut at the end): one byte is U+FFFD */
        replaced = 1;
        ip++;
        il--;
        lp_buf_append(out, "\xef\xbf\xbd", 3);
        iconv(cs->cd, NULL, NULL, NULL, NULL);
    }
    /* flush a stateful encoding's shift back */
    char *op = out->data + out->len;
    size_t ol = out->cap > out->len + 1 ? out->cap - out->len - 1 : 0, before = ol;
    if (ol && iconv(cs->cd, NULL, NULL, &op, &ol) != (size_t)-1)
        out->len += before - ol;
    if (out->cap)
        out->data[out->len] = '\0';
    return replaced;
}
