/* The commit tracker (lp_tracker.h). */
#include "lp_tracker.h"
#include "lp_alloc.h"

#include <stdlib.h>

struct lp_part *lp_part_new(int32_t partition)
{
    struct lp_part *p = lp_xcalloc(1, sizeof(*p));
    p->partition = partition;
    p->next_store = -1;
    p->stored = -1;
    p->committed = -1;
    atomic_init(&p->group_committed, -1);
    return p;
}

void lp_part_free(struct lp_part *p)
{
    if (!p)
        return;
    struct lp_msg *m = p->head;
    while (m) {
        struct lp_msg *n = m->next;
        free(m);
        m = n;
    }
    free(p);
}

struct lp_msg *lp_part_push(struct lp_part *p, int64_t offset, size_t bytes, int holds)
{
    struct lp_msg *m = lp_xcalloc(1, sizeof(*m));
    m->part = p;
    m->offset = offset;
    m->bytes = bytes;
    atomic_init(&m->pending, holds);
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    p->in_flight++;
    p->pending_bytes += bytes;
    return m;
}

void lp_msg_release(struct lp_msg *m)
{
    /* after the last release the consumer thread may free m at any moment:
     * touch nothing of it afterwards */
    atomic_fetch_sub_explicit(&m->pending, 1, memory_order_acq_rel);
}

int lp_part_advance(struct lp_part *p)
{
    int moved = 0;
    while (p->head && atomic_load_explicit(&p->head->pending, memory_order_acquire) == 0) {
        struct lp_msg *m = p->head;
        p->next_store = m->offset + 1;
        p->head = m->next;
        if (!p->head)
            p->tail = NULL;
        p->in_flight--;
        p->pending_bytes -= m->bytes;
        free(m);
        moved = 1;
    }
    return moved;
}
