/* lp_idmap: linear probing keyed by (dev, ino). */
#include "lp_idmap.h"
#include "lp_alloc.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(uint64_t dev, uint64_t ino, size_t cap)
{
    /* splitmix64's finaliser over both halves of the identity */
    uint64_t h = ino ^ (dev * 0x9e3779b97f4a7c15ULL);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return (size_t)h & (cap - 1);
}

void lp_idmap_release(struct lp_idmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

void lp_idmap_clear(struct lp_idmap *m)
{
    if (m->slots)
        memset(m->slots, 0, m->cap * sizeof(*m->slots));
    m->n = 0;
}

uintptr_t lp_idmap_get(const struct lp_idmap *m, uint64_t dev, uint64_t ino)
{
    if (!m->cap)
        return 0;
    for (size_t i = slot_of(dev, ino, m->cap);; i = (i + 1) & (m->cap - 1)) {
        const struct lp_idmap_slot *s = &m->slots[i];
        if (!s->val)
            return 0;
        if (s->dev == dev && s->ino == ino)
            return s->val;
    }
}

static void grow(struct lp_idmap *m)
{
    size_t cap = lp_alloc_nr(m->cap, m->cap + 1, 64); /* a power of two */
    struct lp_idmap_slot *old = m->slots;
    size_t old_cap = m->cap;
    m->slots = lp_xcalloc(cap, sizeof(*m->slots));
    m->cap = cap;
    m->n = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].val)
            lp_idmap_put(m, old[i].dev, old[i].ino, old[i].val);
    free(old);
}

void lp_idmap_put(struct lp_idmap *m, uint64_t dev, uint64_t ino, uintptr_t val)
{
    if ((m->n + 1) * 10 > m->cap * 7)
        grow(m);
    for (size_t i = slot_of(dev, ino, m->cap);; i = (i + 1) & (m->cap - 1)) {
        struct lp_idmap_slot *s = &m->slots[i];
        if (!s->val) {
            *s = (struct lp_idmap_slot){dev, ino, val};
            m->n++;
            return;
        }
        if (s->dev == dev && s->ino == ino) {
            s->val = val;
            return;
        }
    }
}

uintptr_t lp_idmap_del(struct lp_idmap *m, uint64_t dev, uint64_t ino)
{
    if (!m->cap)
        return 0;
    size_t mask = m->cap - 1, i = slot_of(dev, ino, m->cap);
    while (m->slots[i].val && !(m->slots[i].dev == dev && m->slots[i].ino == ino))
        i = (i + 1) & mask;
    uintptr_t val = m->slots[i].val;
    if (!val)
        return 0;
    /* backward shift: move later members of the cluster up into the hole
     * when their home slot is not between the hole and them */
    for (size_t j = (i + 1) & mask; m->slots[j].val; j = (j + 1) & mask) {
        size_t home = slot_of(m->slots[j].dev, m->slots[j].ino, m->cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (struct lp_idmap_slot){0, 0, 0};
    m->n--;
    return val;
}
