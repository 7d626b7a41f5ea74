/* Legacy encodings of old applications' logs (shipper.inputs[].encoding):
 * a line in a code page (GBK, GB18030, Big5, Shift_JIS, EUC-KR, Windows-
 * 1250..1258, KOI8-R, CP866, ...) converted to UTF-8 with glibc's iconv.
 * Only encodings where a newline is the byte 0x0A and no other character
 * contains it (ASCII supersets) can be framed into lines as the files are
 * read; UTF-16 and UTF-32 cannot and are refused (lp_charset_check).
 * A converter has one owning thread. */
#ifndef LP_CHARSET_H
#define LP_CHARSET_H

#include <stddef.h>

struct lp_buf;
struct lp_charset;

/* NULL when name is usable, else why not (static text). */
const char *lp_charset_check(const char *name);
/* A converter from name to UTF-8 (NULL: name is empty, UTF-8 or refused
 * by lp_charset_check; nothing to convert). */
struct lp_charset *lp_charset_open(const char *name);
void lp_charset_close(struct lp_charset *cs);
/* Replaces out's content with in[0..n) converted to UTF-8; a sequence the
 * encoding does not have becomes U+FFFD (returns 1 then, else 0). */
int lp_charset_to_utf8(struct lp_charset *cs, const char *in, size_t n, struct lp_buf *out);

#endif
