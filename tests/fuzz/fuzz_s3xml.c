/* libFuzzer: what an S3-compatible store answers (error documents,
 * ListObjectsV2 pages, CreateMultipartUpload): the tag scanner and entity
 * decoding must stay inside the input and terminate, and a decoded value
 * is never longer than its raw text. */
#include "lp_buf.h"
#include "lp_s3.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tags[] = {
        "Contents", "Key", "Size", "Code", "Message", "UploadId", "NextContinuationToken",
        "Prefix"};
    const char *x = (const char *)data;
    struct lp_buf b = LP_BUF_INIT;
    for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++) {
        size_t pos = 0, last = 0;
        int guard = 0;
        while (lp_s3_xml_next(x, size, &pos, tags[t], &b)) {
            if (pos <= last || pos > size || b.len > size)
                __builtin_trap(); /* no progress, out of bounds, or grown */
            last = pos;
            if (++guard > 100000)
                __builtin_trap();
        }
    }
    lp_buf_release(&b);
    return 0;
}
