/* libFuzzer: the bulk-response classifier on arbitrary response bodies
 * (a proxy or a broken node can answer anything). */
#include "lp_bulk.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = data[0] % 8;
    struct lp_bulk_item items[8];
    char why[256];
    enum lp_bulk_verdict v =
        lp_bulk_classify(200, (const char *)data + 1, size - 1, n, items, why, sizeof(why));
    if (v != LP_BULK_ITEMS && v != LP_BULK_RETRY)
        __builtin_trap(); /* a 200 is items or a retry, nothing else */
    for (size_t i = 0; v == LP_BULK_ITEMS && i < n; i++)
        if (items[i].verdict > LP_ITEM_DROP)
            __builtin_trap();
    return 0;
}
