/* libFuzzer: path globs from the configuration (retention policy globs,
 * index patterns). Input: up to four NUL-separated patterns. Checks that
 * whatever lp_glob_intersect says is true: a witness matches every pattern
 * (lp_glob_match), and "no intersection" is never contradicted by a
 * pattern's own literal text matching all the others. */
#include "lp_glob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 600)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *pats[LP_GLOB_MAX_PATTERNS];
    size_t k = 0;
    for (char *p = buf; k < LP_GLOB_MAX_PATTERNS && p <= buf + size; p += strlen(p) + 1)
        pats[k++] = p;
    char w[1024];
    int rc = lp_glob_intersect(pats, k, w, sizeof(w));
    if (rc == 1 && strlen(w) < sizeof(w) - 1)
        for (size_t i = 0; i < k; i++)
            if (!lp_glob_match(pats[i], w))
                __builtin_trap(); /* the witness must match every pattern */
    if (rc == 0) {
        /* a string made of a pattern's literal characters that matches all
         * would contradict "disjoint" */
        for (size_t i = 0; i < k; i++) {
            if (strpbrk(pats[i], "*?[\\"))
                continue;
            int all = 1;
            for (size_t j = 0; j < k && all; j++)
                all = lp_glob_match(pats[j], pats[i]);
            if (all)
                __builtin_trap();
        }
    }
    free(buf);
    return 0;
}
