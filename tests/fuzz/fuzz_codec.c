/* libFuzzer: zstd and gzip decompression with the output cap. The cap must
 * hold whatever the input claims. */
#include "lp_buf.h"
#include "lp_codec.h"
#include "lp_error.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const size_t cap = 256 * 1024;
    enum lp_codec c = (data[0] & 1) ? LP_CODEC_GZIP : LP_CODEC_ZSTD;
    struct lp_buf out = LP_BUF_INIT;
    int rc = lp_codec_decompress(NULL, c, data + 1, size - 1, cap, &out);
    if (out.len > cap || out.cap > cap + 1)
        __builtin_trap();
    if (rc == 0) {
        /* round trip what decoded */
        struct lp_buf z = LP_BUF_INIT, back = LP_BUF_INIT;
        if (lp_codec_compress(NULL, c, 1, out.data, out.len, &z) != 0 ||
            lp_codec_decompress(NULL, c, z.data, z.len, cap, &back) != 0 || back.len != out.len)
            __builtin_trap();
        lp_buf_release(&z);
        lp_buf_release(&back);
    } else if (rc != LP_ETOOBIG && rc != LP_ECORRUPT) {
        __builtin_trap();
    }
    lp_buf_release(&out);
    return 0;
}
