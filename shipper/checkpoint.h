/* Shipper checkpoints: per file identity, the line-start offset up to which
 * every event was delivered to Kafka. Saved atomically (temp file, fsync,
 * rename, fsync of the directory); entries of files not seen for a while
 * expire. Owned by the shipper's loop thread. */
#ifndef LP_CHECKPOINT_H
#define LP_CHECKPOINT_H

#include "identity.h"
#include "lp_idmap.h"
#include "lp_eventid.h"

#include <stddef.h>
#include <stdint.h>

struct lp_ckpt_entry {
    uint64_t dev, ino;
    struct lp_head head;
    /* the head the file had before its last truncation (len 0: none): a
     * copytruncate's copy starts with it, so it is not a new generation */
    struct lp_head prev_head;
    uint32_t generation;
    uint64_t offset;    /* delivered up to here (a line start) */
    uint64_t tail_hash; /* lp_tail_hash at offset */
    uint64_t size;      /* file size last seen (what a deletion would lose) */
    char source_id[LP_ID_HEX_LEN + 1];
    char *path;     /* last path seen (owned) */
    int64_t seen_s; /* unix seconds of the last time the file was seen */
    /* closed while idle (close_inactive, or to free a descriptor): the file
     * is not open and is opened again when its size or mtime differs from
     * these, which it had when it was closed */
    int closed;
    int64_t mtime_ns;
};

struct lp_ckpt {
    char *path; /* <state_dir>/checkpoints.json */
    struct lp_ckpt_entry *e;
    size_t n, cap;
    struct lp_idmap ix; /* (dev, ino) -> index in e, plus one */
    int dirty;          /* changed since the last save (put, expire; set it
                         * yourself after changing an entry in place) */
};

/* Loads path (a missing file is an empty set). A corrupt file is renamed
 * to path.corrupt-<time> and reported in err; the set is empty then (files
 * are read again from their heads: duplicates, never loss). Returns 0 or
 * -errno / LP_ECORRUPT with err filled. */
int lp_ckpt_load(struct lp_ckpt *c, const char *path, char *err, size_t errlen);
/* Writes the set atomically and clears dirty. 0 or -errno (err filled). */
int lp_ckpt_save(struct lp_ckpt *c, char *err, size_t errlen);
void lp_ckpt_release(struct lp_ckpt *c);

/* The entry of (dev, ino) or NULL. Pointers are invalidated by add/expire. */
struct lp_ckpt_entry *lp_ckpt_find(struct lp_ckpt *c, uint64_t dev, uint64_t ino);
/* Adds or replaces the entry of (dev, ino); returns it. */
struct lp_ckpt_entry *lp_ckpt_put(struct lp_ckpt *c, const struct lp_ckpt_entry *e);
/* Drops entries not seen since before cutoff_s; returns how many. */
size_t lp_ckpt_expire(struct lp_ckpt *c, int64_t cutoff_s);

#endif
