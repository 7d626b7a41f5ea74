/* Base64 encoding and strict decoding (lp_base64.h). */
#include "lp_base64.h"
#include "lp_error.h"

#include "lp_buf.h"

static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void lp_base64_encode(struct lp_buf *b, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        lp_buf_append(b, q, 4);
    }
}

static int value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return LP_ECORRUPT;
}

int lp_base64_decode(const char *in, size_t n, struct lp_buf *out)
{
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = value(c);
        if (v < 0 || pad)
            return LP_ECORRUPT; /* not base64, or data after the padding */
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        digits++;
        if (bits >= 8) {
            bits -= 8;
            lp_buf_putc(out, (char)((acc >> bits) & 0xFF));
        }
    }
    /* a last group of one digit cannot encode a byte; the padding, when
     * present, completes the group */
    if (digits % 4 == 1 || pad > 2 || (pad && (digits + (size_t)pad) % 4 != 0))
        return LP_ECORRUPT;
    return 0;
}
