/* Checkpoint file: one JSON document, written temp → fsync → rename →
 * fsync(dir) so a crash leaves the old or the new file, never a torn one. */
#include "checkpoint.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_error.h"
#include "lp_file.h"
#include "lp_time.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lp_ckpt_release(struct lp_ckpt *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->e[i].path);
    free(c->e);
    free(c->path);
    lp_idmap_release(&c->ix);
    memset(c, 0, sizeof(*c));
}

struct lp_ckpt_entry *lp_ckpt_find(struct lp_ckpt *c, uint64_t dev, uint64_t ino)
{
    uintptr_t i = lp_idmap_get(&c->ix, dev, ino);
    return i ? &c->e[i - 1] : NULL;
}

struct lp_ckpt_entry *lp_ckpt_put(struct lp_ckpt *c, const struct lp_ckpt_entry *e)
{
    struct lp_ckpt_entry *slot = lp_ckpt_find(c, e->dev, e->ino);
    if (slot) {
        free(slot->path);
    } else {
        LP_ALLOC_GROW(c->e, c->n + 1, c->cap, 64);
        slot = &c->e[c->n++];
        lp_idmap_put(&c->ix, e->dev, e->ino, (uintptr_t)c->n);
    }
    *slot = *e;
    slot->path = lp_xstrdup(e->path ? e->path : "");
    c->dirty = 1;
    return slot;
}

size_t lp_ckpt_expire(struct lp_ckpt *c, int64_t cutoff_s)
{
    size_t w = 0, dropped = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->e[i].seen_s < cutoff_s) {
            free(c->e[i].path);
            dropped++;
            continue;
        }
        c->e[w++] = c->e[i];
    }
    c->n = w;
    if (dropped) {
        c->dirty = 1;
        lp_idmap_clear(&c->ix);
        for (size_t i = 0; i < c->n; i++)
            lp_idmap_put(&c->ix, c->e[i].dev, c->e[i].ino, (uintptr_t)i + 1);
    }
    return dropped;
}

static int hex64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s ? s : "", &end, 16);
    if (!s || errno || *end || end == s)
        return LP_ECORRUPT;
    *out = v;
    return 0;
}

int lp_ckpt_load(struct lp_ckpt *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->path = lp_xstrdup(path);
    json_error_t je;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open %s: %s", path, lp_strerror(-errno));
        return -errno;
    }
    json_t *root = json_loadf(f, 0, &je);
    fclose(f);
    json_t *files = root ? json_object_get(root, "files") : NULL;
    int bad =
        !root || json_integer_value(json_object_get(root, "version")) != 1 || !json_is_array(files);
    size_t i;
    json_t *it;
    if (!bad) {
        json_array_foreach(files, i, it)
        {
            struct lp_ckpt_entry e = {0};
            const char *sid = json_string_value(json_object_get(it, "source_id"));
            json_t *dev = json_object_get(it, "dev"), *ino = json_object_get(it, "ino"),
                   *off = json_object_get(it, "offset"), *gen = json_object_get(it, "generation"),
                   *hl = json_object_get(it, "head_len"), *seen = json_object_get(it, "seen");
            if (!json_is_integer(dev) || !json_is_integer(ino) || !json_is_integer(off) ||
                !json_is_integer(gen) || !json_is_integer(hl) || !json_is_integer(seen) || !sid ||
                strlen(sid) != LP_ID_HEX_LEN ||
                hex64(json_string_value(json_object_get(it, "head_hash")), &e.head.hash) ||
                hex64(json_string_value(json_object_get(it, "tail_hash")), &e.tail_hash)) {
                bad = 1;
                break;
            }
            e.dev = (uint64_t)json_integer_value(dev);
            e.ino = (uint64_t)json_integer_value(ino);
            e.offset = (uint64_t)json_integer_value(off);
            e.generation = (uint32_t)json_integer_value(gen);
            e.head.len = (uint32_t)json_integer_value(hl);
            e.seen_s = json_integer_value(seen);
            json_t *size = json_object_get(it, "size"); /* absent in older files */
            e.size = json_is_integer(size) ? (uint64_t)json_integer_value(size) : e.offset;
            json_t *phl = json_object_get(it, "prev_head_len"); /* only after a truncation */
            if (json_is_integer(phl) &&
                !hex64(json_string_value(json_object_get(it, "prev_head_hash")), &e.prev_head.hash))
                e.prev_head.len = (uint32_t)json_integer_value(phl);
            json_t *mtime = json_object_get(it, "closed_mtime_ns"); /* only when closed */
            e.closed = json_is_integer(mtime);
            e.mtime_ns = e.closed ? json_integer_value(mtime) : 0;
            memcpy(e.source_id, sid, LP_ID_HEX_LEN + 1);
            e.path = (char *)json_string_value(json_object_get(it, "path"));
            lp_ckpt_put(c, &e);
        }
    }
    json_decref(root);
    c->dirty = 0;
    if (bad) {
        for (size_t k = 0; k < c->n; k++)
            free(c->e[k].path);
        c->n = 0;
        lp_idmap_clear(&c->ix);
        char aside[4096];
        snprintf(aside, sizeof(aside), "%s.corrupt-%lld", path,
                 (long long)(lp_time_real_ns() / LP_NS_PER_SEC));
        rename(path, aside);
        snprintf(err, errlen,
                 "checkpoint file %s is corrupt (%s); moved to %s, files are read "
                 "again from their start (duplicates are removed downstream)",
                 path, root ? "unexpected content" : je.text, aside);
        return LP_ECORRUPT;
    }
    return 0;
}

int lp_ckpt_save(struct lp_ckpt *c, char *err, size_t errlen)
{
    struct lp_buf b = LP_BUF_INIT;
    lp_buf_puts(&b, "{\"version\":1,\"files\":[");
    for (size_t i = 0; i < c->n; i++) {
        const struct lp_ckpt_entry *e = &c->e[i];
        lp_buf_appendf(&b,
                       "%s\n{\"dev\":%" PRIu64 ",\"ino\":%" PRIu64 ",\"head_len\":%u,"
                       "\"head_hash\":\"%016" PRIx64 "\",\"generation\":%u,\"offset\":%" PRIu64
                       ",\"tail_hash\":\"%016" PRIx64 "\",\"size\":%" PRIu64
                       ",\"source_id\":\"%s\",",
                       i ? "," : "", e->dev, e->ino, e->head.len, e->head.hash, e->generation,
                       e->offset, e->tail_hash, e->size, e->source_id);
        if (e->prev_head.len)
            lp_buf_appendf(&b, "\"prev_head_len\":%u,\"prev_head_hash\":\"%016" PRIx64 "\",",
                           e->prev_head.len, e->prev_head.hash);
        if (e->closed)
            lp_buf_appendf(&b, "\"closed_mtime_ns\":%lld,", (long long)e->mtime_ns);
        lp_buf_appendf(&b, "\"seen\":%lld,\"path\":", (long long)e->seen_s);
        lp_buf_append_json_string(&b, e->path ? e->path : "", e->path ? strlen(e->path) : 0);
        lp_buf_putc(&b, '}');
    }
    lp_buf_puts(&b, "\n]}\n");

    int rc = lp_file_replace(c->path, b.data, b.len, 0640);
    if (rc)
        snprintf(err, errlen, "cannot write %s: %s", c->path, lp_strerror(rc));
    else
        c->dirty = 0;
    lp_buf_release(&b);
    return rc;
}
