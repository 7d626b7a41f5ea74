/* libFuzzer: container log decoding (Docker, CRI) and event assembly
 * (partials, multiline, truncation) on arbitrary file contents. Checks the
 * invariants the shipper relies on: events come in increasing offset
 * order, never exceed the line cap, and nothing stays pending after a
 * final flush. */
#include "lp_assemble.h"
#include "lp_buf.h"
#include "lp_buf.h"
#include "lp_container.h"
#include "lp_multiline.h"
#include "lp_wire.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct st {
    uint64_t last;
    int any;
};

static int on_event(void *ctx, const struct lp_event *ev)
{
    struct st *s = ctx;
    if (s->any && ev->offset <= s->last)
        __builtin_trap(); /* order broken */
    if (ev->len > 4096)
        __builtin_trap(); /* cap broken */
    s->last = ev->offset;
    s->any = 1;
    return 0;
}

static int valid_utf8(const char *s, size_t n)
{
    size_t i = 0, sl;
    while (i < n) {
        if (!lp_utf8_next((const unsigned char *)s + i, n - i, &sl))
            return 0;
        i += sl;
    }
    return 1;
}

/* The Docker fast path must agree with jansson wherever both accept. */
static void differential(const char *p, size_t n)
{
    struct lp_buf a = LP_BUF_INIT, b = LP_BUF_INIT;
    struct lp_cline fast, slow;
    char why[128];
    int rf = lp_cline_decode(LP_CFMT_DOCKER, p, n, &a, &fast, why, sizeof(why));
    int rs = lp_docker_decode_slow(p, n, &b, &slow, why, sizeof(why));
    if (rs == 0 &&
        (rf != 0 || fast.len != slow.len || memcmp(fast.msg, slow.msg, slow.len) ||
         fast.partial != slow.partial || fast.stream != slow.stream || fast.ts_ns != slow.ts_ns))
        __builtin_trap();
    if (rs != 0 && rf == 0 && valid_utf8(p, n) && fast.msg != p)
        __builtin_trap(); /* the fast path accepted what jansson rejects */
    lp_buf_release(&a);
    lp_buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] == 0xff) {
        differential((const char *)data + 1, size - 1);
        return 0;
    }
    static const char *const modes[] = {"off", "java", "python", "go"};
    enum lp_cfmt fmt = (enum lp_cfmt)(data[0] % 4);
    char err[128];
    struct lp_multiline *ml =
        lp_multiline_new(modes[(data[0] >> 2) % 4], NULL, NULL, 5, 2048, 1000, err, sizeof(err));
    struct lp_assembler *a = lp_assembler_new(ml, 4096, 1000);
    struct lp_buf scratch = LP_BUF_INIT;
    struct st s = {0, 0};
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    int64_t now = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (fmt == LP_CFMT_AUTO)
            fmt = (data[0] & 0x80) ? lp_cfmt_detect_cut(p, n) : lp_cfmt_detect(p, n);
        struct lp_cline c;
        int rc = lp_cline_decode(fmt, p, n, &scratch, &c, err, sizeof(err));
        lp_assembler_feed(a, &c, (uint64_t)(p - (const char *)data), rc ? LP_REC_MALFORMED : 0, now,
                          on_event, &s);
        now += 100;
        if ((now / 100) % 7 == 0)
            lp_assembler_flush(a, now, 0, on_event, &s);
        p += n + 1;
    }
    lp_assembler_flush(a, now, 1, on_event, &s);
    if (lp_assembler_pending_offset(a) != UINT64_MAX)
        __builtin_trap();
    lp_assembler_free(a);
    lp_multiline_free(ml);
    lp_buf_release(&scratch);
    return 0;
}
