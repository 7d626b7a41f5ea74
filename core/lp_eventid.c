/* Source and event ids with xxh3-128 (libxxhash). */
#include "lp_eventid.h"
#include "lp_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void hex128(XXH128_hash_t h, char out[LP_ID_HEX_LEN + 1])
{
    /* one per record in the aggregator: no printf */
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[i] = digits[(h.high64 >> (60 - 4 * i)) & 15];
        out[16 + i] = digits[(h.low64 >> (60 - 4 * i)) & 15];
    }
    out[32] = '\0';
}

/* One-shot xxh3-128 over a || b (the library's streaming state is only
 * available with static linking; inputs here are small). */
static XXH128_hash_t hash2(const void *a, size_t alen, const void *b, size_t blen)
{
    unsigned char stackbuf[512];
    unsigned char *buf = alen + blen <= sizeof(stackbuf) ? stackbuf : lp_xmalloc(alen + blen);
    memcpy(buf, a, alen);
    memcpy(buf + alen, b, blen);
    XXH128_hash_t h = XXH3_128bits(buf, alen + blen);
    if (buf != stackbuf)
        free(buf);
    return h;
}

void lp_source_id(const char *host_id, uint64_t dev, uint64_t ino, uint64_t fingerprint,
                  uint32_t generation, char out[LP_ID_HEX_LEN + 1])
{
    static const char tag[] = "lp-src-1"; /* versioned: a layout change renames ids */
    size_t hl = strlen(host_id) + 1;
    size_t head_len = sizeof(tag) + hl;
    unsigned char *head = lp_xmalloc(head_len);
    memcpy(head, tag, sizeof(tag)); /* includes the NUL */
    memcpy(head + sizeof(tag), host_id, hl);
    unsigned char tail[28];
    put_le64(tail, dev);
    put_le64(tail + 8, ino);
    put_le64(tail + 16, fingerprint);
    for (int i = 0; i < 4; i++)
        tail[24 + i] = (unsigned char)(generation >> (8 * i));
    hex128(hash2(head, head_len, tail, sizeof(tail)), out);
    free(head);
}

void lp_event_id(const char *source_id, size_t source_id_len, uint64_t offset,
                 char out[LP_ID_HEX_LEN + 1])
{
    unsigned char le[8];
    put_le64(le, offset);
    hex128(hash2(source_id, source_id_len, le, sizeof(le)), out);
}
