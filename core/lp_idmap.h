/* A hash map from a file identity (device, inode) to a value: open
 * addressing with linear probing and backward-shift deletion, grown at 70%
 * load, so lookups stay O(1) with tens of thousands of files (the shipper's
 * open files and checkpoint entries). Value 0 means "absent" and cannot be
 * stored. One owning thread. */
#ifndef LP_IDMAP_H
#define LP_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct lp_idmap_slot {
    uint64_t dev, ino;
    uintptr_t val; /* 0 = empty slot */
};

struct lp_idmap {
    struct lp_idmap_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
};

/* clang-format off */
#define LP_IDMAP_INIT {NULL, 0, 0}
/* clang-format on */

void lp_idmap_release(struct lp_idmap *m);
/* Empties the map, keeping its slots. */
void lp_idmap_clear(struct lp_idmap *m);
/* The value of (dev, ino), or 0. */
uintptr_t lp_idmap_get(const struct lp_idmap *m, uint64_t dev, uint64_t ino);
/* Sets (dev, ino) to val (non-zero), replacing any value. Aborts on OOM. */
void lp_idmap_put(struct lp_idmap *m, uint64_t dev, uint64_t ino, uintptr_t val);
/* Removes (dev, ino); returns its value, or 0 when absent. */
uintptr_t lp_idmap_del(struct lp_idmap *m, uint64_t dev, uint64_t ino);

#endif
