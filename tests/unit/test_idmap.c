/* lp_idmap against a plain array: random puts, gets and deletes (the
 * backward-shift deletion must keep every other key reachable), growth, and
 * clustered identities (one device, consecutive inodes: what a file system
 * hands out). */
#include "lp_idmap.h"
#include "lp_test.h"

#include <stdlib.h>

#define KEYS 20000

static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_against_array(void)
{
    static uintptr_t ref[KEYS]; /* value of key i (dev 1 + i % 3, ino 1000 + i), 0 = absent */
    struct lp_idmap m = LP_IDMAP_INIT;
    size_t present = 0;
    int bad = 0;
    for (int round = 0; round < 400000; round++) {
        size_t k = (size_t)(next() % KEYS);
        uint64_t dev = 1 + k % 3, ino = 1000 + k;
        switch (next() % 3) {
        case 0: {
            uintptr_t v = (uintptr_t)(next() | 1);
            present += !ref[k];
            ref[k] = v;
            lp_idmap_put(&m, dev, ino, v);
            break;
        }
        case 1:
            bad += lp_idmap_del(&m, dev, ino) != ref[k];
            present -= !!ref[k];
            ref[k] = 0;
            break;
        default: bad += lp_idmap_get(&m, dev, ino) != ref[k];
        }
        if (round % 50000 == 0)
            for (size_t i = 0; i < KEYS; i++)
                bad += lp_idmap_get(&m, 1 + i % 3, 1000 + i) != ref[i];
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(m.n, present);
    CU_ASSERT(m.n * 10 <= m.cap * 7);
    lp_idmap_clear(&m);
    CU_ASSERT_EQUAL(m.n, 0);
    CU_ASSERT_EQUAL(lp_idmap_get(&m, 1, 1000), 0);
    lp_idmap_release(&m);
    CU_ASSERT_EQUAL(lp_idmap_get(&m, 1, 1000), 0); /* released: empty, usable */
    CU_ASSERT_EQUAL(lp_idmap_del(&m, 1, 1000), 0);
}

static void test_consecutive_inodes(void)
{
    struct lp_idmap m = LP_IDMAP_INIT;
    for (uint64_t i = 0; i < 50000; i++)
        lp_idmap_put(&m, 2049, 5000000 + i, (uintptr_t)i + 1);
    int bad = 0;
    for (uint64_t i = 0; i < 50000; i += 2)
        bad += lp_idmap_del(&m, 2049, 5000000 + i) != (uintptr_t)i + 1;
    for (uint64_t i = 0; i < 50000; i++)
        bad += lp_idmap_get(&m, 2049, 5000000 + i) != (i % 2 ? (uintptr_t)i + 1 : 0);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(m.n, 25000);
    lp_idmap_release(&m);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"against an array", test_against_array},
        {"consecutive inodes", test_consecutive_inodes},
        {NULL, NULL},
    };
    return lp_test_run("idmap", tests);
}
