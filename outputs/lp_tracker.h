/* The commit tracker: which Kafka offsets may be stored.
 *
 * Each consumed message becomes an lp_msg in its partition's list, in
 * offset order. Whoever holds part of the message's work (the worker until
 * its file writes are fsynced, each bulk item until it is final, the dead
 * letter until it is written) holds one count of `pending`; the last
 * release makes the message done. Completions arrive in any order from any
 * thread; only the consumer thread walks the lists: lp_part_advance pops
 * the done messages at the head and returns the offset to store — the
 * unbroken run of done messages, never past a message still in flight.
 *
 * A partition that is revoked or lost while work is in flight is detached:
 * its list is kept (other threads still hold its messages) until every
 * message is done, then freed. */
#ifndef LP_TRACKER_H
#define LP_TRACKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct lp_part;

struct lp_msg {
    struct lp_part *part;
    int64_t offset;
    size_t bytes;
    atomic_int pending;
    struct lp_msg *next;
};

struct lp_part {
    int32_t partition;
    struct lp_msg *head, *tail; /* consumer thread only */
    int64_t next_store;         /* offset after the last done message popped; -1 none */
    int64_t stored;             /* last offset handed to rd_kafka_offsets_store; -1 none */
    int64_t committed;          /* committed offset when assigned; -1 none */
    /* The offset the group has committed for it, as far as this process
     * knows (at assignment, then each commit it made); -1 none. The
     * consumer thread writes, any thread holding one of its messages reads
     * (an output that may forget what it wrote before this offset). */
    _Atomic int64_t group_committed;
    size_t pending_bytes; /* bytes of messages in the list (consumer thread) */
    size_t in_flight;     /* messages in the list (consumer thread) */
    int paused;           /* consumer thread: our view of the pause state */
    struct lp_part *next; /* detached list */
    /* Bytes the outputs hold for this partition's messages, decoded and
     * rendered (documents waiting for the cluster): any thread adds and
     * subtracts (lp_part_held), the consumer reads it for pausing. A
     * compressed message of a million tiny records is 6 KB in
     * pending_bytes and hundreds of MB here. */
    _Atomic size_t held_bytes;
    _Atomic size_t *total_held; /* the aggregator's sum over partitions, or NULL */
};

/* Adds (add = 1) or removes n bytes held for p; any thread, while the
 * caller holds one of p's messages (so p is alive). */
static inline void lp_part_held(struct lp_part *p, size_t n, int add)
{
    if (add)
        atomic_fetch_add_explicit(&p->held_bytes, n, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&p->held_bytes, n, memory_order_relaxed);
    if (p->total_held) {
        if (add)
            atomic_fetch_add_explicit(p->total_held, n, memory_order_relaxed);
        else
            atomic_fetch_sub_explicit(p->total_held, n, memory_order_relaxed);
    }
}

struct lp_part *lp_part_new(int32_t partition);
/* Frees the partition; every message must be done (lp_part_idle). */
void lp_part_free(struct lp_part *p);

/* Appends a message at offset with `holds` counts held (>= 1). */
struct lp_msg *lp_part_push(struct lp_part *p, int64_t offset, size_t bytes, int holds);
/* Adds n holds to a message that is not yet done (the caller holds one). */
static inline void lp_msg_hold(struct lp_msg *m, int n)
{
    atomic_fetch_add_explicit(&m->pending, n, memory_order_relaxed);
}
/* Releases one hold; any thread. */
void lp_msg_release(struct lp_msg *m);

/* Pops done messages at the head. Returns 1 when next_store moved. */
int lp_part_advance(struct lp_part *p);
/* 1 when no message is in flight (after lp_part_advance). */
static inline int lp_part_idle(const struct lp_part *p)
{
    return p->head == NULL;
}

#endif
