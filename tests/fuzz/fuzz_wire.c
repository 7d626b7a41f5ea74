/* libFuzzer: the wire-format decoder on untrusted Kafka message values.
 * First byte picks encoding and mode, the rest is the value. */
#include "lp_arena.h"
#include "lp_buf.h"
#include "lp_wire.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct lp_wire_meta meta = {LP_WIRE_FORMAT, !(data[0] & 4), (enum lp_codec)(data[0] % 3),
                                (uint32_t)(data[0] >> 4)};
    struct lp_buf scratch = LP_BUF_INIT;
    struct lp_arena arena;
    lp_arena_init(&arena, 0, 8 << 20);
    struct lp_wire_batch b;
    char why[256];
    lp_wire_fast_decode = 1;
    int rc_fast = lp_wire_decode(&meta, data + 1, size - 1, 1 << 20, NULL, &scratch, &arena, &b,
                                 why, sizeof(why));
    {
        /* the fast path for record lines must agree with jansson exactly */
        struct lp_arena a2;
        lp_arena_init(&a2, 0, 8 << 20);
        struct lp_buf s2 = LP_BUF_INIT;
        struct lp_wire_batch bj;
        char why2[256];
        lp_wire_fast_decode = 0;
        int rc_json = lp_wire_decode(&meta, data + 1, size - 1, 1 << 20, NULL, &s2, &a2, &bj, why2,
                                     sizeof(why2));
        lp_wire_fast_decode = 1;
        if ((rc_fast == 0) != (rc_json == 0))
            __builtin_trap();
        if (rc_fast == 0) {
            if (bj.n != b.n)
                __builtin_trap();
            for (size_t i = 0; i < b.n; i++) {
                const struct lp_wire_record *x = &b.recs[i], *y = &bj.recs[i];
                if (x->ts_ns != y->ts_ns || x->offset != y->offset || x->flags != y->flags ||
                    x->lines != y->lines || x->message_len != y->message_len ||
                    memcmp(x->message, y->message, x->message_len) != 0 ||
                    (!x->stream) != (!y->stream) ||
                    (x->stream && strcmp(x->stream, y->stream) != 0))
                    __builtin_trap();
                if (x->message_json) {
                    /* the raw slice must be exactly our escaping of the message */
                    struct lp_buf e = LP_BUF_INIT;
                    lp_buf_append_json_string(&e, x->message, x->message_len);
                    if (e.len != x->message_json_len + 2 ||
                        memcmp(e.data + 1, x->message_json, x->message_json_len) != 0)
                        __builtin_trap();
                    lp_buf_release(&e);
                }
            }
        }
        lp_buf_release(&s2);
        lp_arena_release(&a2);
    }
    if (rc_fast == 0) {
        /* whatever decodes must re-encode and decode to the same records */
        struct lp_wire_encoder e;
        lp_wire_encoder_init(&e, 0);
        if (lp_wire_encoder_begin(&e, &b.src) == 0) {
            for (size_t i = 0; i < b.n; i++)
                lp_wire_encoder_add(&e, &b.recs[i]);
            struct lp_buf v = LP_BUF_INIT;
            struct lp_wire_meta m2;
            lp_wire_encoder_finish(&e, NULL, LP_CODEC_IDENTITY, 0, &v, &m2);
            struct lp_wire_batch b2;
            struct lp_buf s2 = LP_BUF_INIT;
            int rc = lp_wire_decode(&m2, v.data, v.len, 64 << 20, NULL, &s2, &arena, &b2, why,
                                    sizeof(why));
            if (rc != 0 || b2.n != b.n)
                __builtin_trap();
            for (size_t i = 0; i < b.n; i++)
                if (b2.recs[i].offset != b.recs[i].offset ||
                    b2.recs[i].message_len < b.recs[i].message_len / 2)
                    __builtin_trap();
            lp_buf_release(&s2);
            lp_buf_release(&v);
        }
        lp_wire_encoder_release(&e);
    }
    lp_arena_release(&arena);
    lp_buf_release(&scratch);
    return 0;
}
