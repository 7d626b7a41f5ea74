/* Base64 (RFC 4648, standard alphabet): the dead letter's raw values and
 * kubeconfig's *-data members. Pure functions, any thread. */
#ifndef LP_BASE64_H
#define LP_BASE64_H

#include <stddef.h>

struct lp_buf;

/* Appends the encoding of p[0..n) (with '=' padding) to b. */
void lp_base64_encode(struct lp_buf *b, const void *p, size_t n);

/* Appends the bytes in[0..n) encodes to out. Whitespace is skipped and the
 * padding may be left out; anything else outside the alphabet, a '=' that
 * is not at the end, or a length that cannot be an encoding gives LP_ECORRUPT (out
 * then holds what was decoded before it). */
int lp_base64_decode(const char *in, size_t n, struct lp_buf *out);

#endif
