/* Internals shared by the shipper's modules (tail, batch, produce, loop).
 * Every object here belongs to the loop thread.
 *
 * DESIGN: a tail reads one file and feeds its assembler; events go into the
 * tail's open batch; a closed batch becomes an in-flight entry in the
 * tail's FIFO when produced. A delivery report marks its entry; the
 * checkpoint (acked_off) advances over the unbroken prefix of delivered
 * entries, each carrying the resume offset computed when its batch closed:
 * the smallest offset from which re-reading reproduces every event not in
 * that batch or an earlier one. A failed entry makes the tail replay from
 * acked_off once its other entries have reported. */
#ifndef LP_SHIPPER_INT_H
#define LP_SHIPPER_INT_H

#include "checkpoint.h"
#include "lp_idmap.h"
#include "discover.h"
#include "docker_meta.h"
#include "k8s_meta.h"
#include "identity.h"
#include "lp_assemble.h"
#include "lp_buf.h"
#include "lp_charset.h"
#include "lp_codec.h"
#include "lp_container.h"
#include "lp_metrics.h"
#include "lp_tenants.h"
#include "lp_wire.h"
#include "shipper.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>

struct lp_config;
struct lp_ready;

/* An unchanged checkpoint entry is rewritten this often, so that its seen
 * time (expiry, and the age a rewrite while stopped is judged against)
 * stays recent. */
#define CKPT_SEEN_REFRESH_S 60

enum entry_state { ENTRY_PENDING = 0, ENTRY_OK, ENTRY_FAILED };

struct inflight {
    struct tail *t;
    struct inflight *next;
    uint32_t gen;
    uint64_t resume_off;
    size_t bytes;
    enum entry_state state;
};

/* The identity a copytruncate's copy takes over from the file it copied
 * (truncated while we were stopped): its lines continue that file's source
 * id, generation and offsets, so a line shipped before is recognised by its
 * event id downstream. */
struct tail_inherit {
    uint32_t gen;
    uint64_t offset;
    char sid[LP_ID_HEX_LEN + 1];
};

/* The shipper's per-namespace counters (lp_tenants), in this order. */
enum { NS_EVENTS, NS_BYTES, NS_EXCLUDED, NS_FAMILIES };

struct tail {
    struct lp_shipper *s;
    struct lp_counter *const *ns; /* its namespace's counters (NULL: off) */
    struct lp_charset *cs;        /* its input's encoding to UTF-8 (NULL: UTF-8) */
    struct tail *next, *prev;     /* the shipper's list: removal is O(1) */
    char *path;
    int input_idx;
    int fd;
    uint64_t dev, ino;
    int identified; /* head fingerprint known, source id assigned */
    struct lp_head head;
    struct lp_head prev_head; /* before the last truncation (lp_ckpt_entry) */
    uint32_t gen;
    uint32_t min_gen;                   /* after a truncation: ids must differ from before */
    int truncated_running;              /* truncation seen while running, loss already counted:
                                         * the next identification counts nothing */
    const struct tail_inherit *inherit; /* set only while identifying a copy */
    char sid[LP_ID_HEX_LEN + 1];
    enum lp_cfmt fmt;
    struct lp_path_meta meta;
    struct lp_docker_meta docker; /* Docker without Kubernetes: config.v2.json */
    struct lp_k8s_pod *pod;       /* from the API cache (shipper.kubernetes), or NULL */
    uint64_t pod_gen;             /* the cache generation it was looked up at */
    int pod_looked;
    int excluded; /* the pod says logpipe.io/exclude: lines are read, not shipped */
    const struct lp_multiline *ml_want; /* the rules the pod's hint asks for */
    const struct lp_multiline *ml_have; /* the rules the assembler has now */
    int ml_change;                      /* ml_want differs from the assembler's */
    int ml_hinted;                      /* ml_have is a pod hint's (metered) */
    int64_t hint_tokens_ns;             /* the hint's CPU budget left (token bucket) */
    int64_t hint_refill_ns;             /* when it was last refilled */
    int64_t hint_off_until_ns;          /* over budget: the hint is not used until then */
    struct lp_wire_source src;
    int wd;     /* inotify watch of the file's directory, -1 if none */
    char *base; /* file name within that directory (for inotify) */

    uint64_t read_off; /* next byte to read */
    uint64_t line_off; /* start of the incomplete line held in `line` */
    struct lp_buf line;
    int skipping; /* dropping the rest of an over-long physical line */
    struct lp_assembler *as;
    int dirty;          /* may have unread bytes */
    uint64_t size_seen; /* size at the last stat */

    struct lp_wire_encoder enc;
    int batch_open;
    int64_t batch_started_ns;

    struct inflight *fifo, *fifo_last;
    size_t ninflight;
    uint64_t acked_off;
    int replay;
    int sent_in_feed; /* record mode: a message was produced during this feed */

    int rotated; /* the path no longer names this file */
    int deleted; /* no links left */
    int closing; /* drained: waiting for reports before close */
    int64_t last_growth_ns;
    int64_t deleted_since_ns;

    double tokens; /* rate limit bucket (bytes) */
    int64_t tokens_ns;
    int64_t limited_until_ns; /* rate limited: no reading before this */
};

struct shipper_metrics {
    struct lp_gauge *files;
    struct lp_histogram *rescan_seconds;
    struct lp_counter *bytes_read, *lines_read, *events, *batches, *batch_bytes;
    struct lp_counter *excluded;       /* events of pods annotated logpipe.io/exclude */
    struct lp_counter *hint_bad;       /* logpipe.io/multiline values that do not compile */
    struct lp_counter *hint_evicted;   /* hint slots freed for a new value */
    struct lp_counter *hint_throttled; /* files whose hint went over its CPU budget */
    struct lp_counter *records_produced, *replays, *truncations, *rotations, *fatal_rebuilds;
    struct lp_counter *lost_deleted, *lost_truncated, *lost_too_large, *lost_fd_cap;
    struct lp_counter *malformed, *rate_limited_ms, *closed_idle, *reopened;
    struct lp_gauge *idle_files, *files_waiting;
    struct lp_gauge *inflight_bytes, *lag_bytes, *max_lag_bytes;
    struct lp_histogram *delivery_latency;
};

/* inotify bookkeeping: watched directories, and renames in progress. */
struct watch {
    int wd;
    char *dir;
};
struct move {
    uint32_t cookie;
    char *from; /* full path of a matched file being renamed */
};
#define MOVES_MAX 64
struct waiter {
    char *path;
    int input_idx;
};

struct lp_shipper {
    const struct lp_config *cfg;
    struct lp_k8s *k8s; /* NULL: shipper.kubernetes off */
    /* until the first pod list completed (or this passes, monotonic ns):
     * files that name a pod are not read; 0 once over */
    int64_t k8s_hold_until_ns;
    int64_t next_k8s_tick_ns;
    struct lp_metrics *metrics;
    struct shipper_metrics m;
    struct lp_tenants *tenants; /* per-namespace volume (metrics.max_namespaces) */
    struct lp_ready *kafka_ready;
    char host[256];
    enum lp_codec codec;
    int record_mode;
    size_t batch_raw_limit;
    struct lp_multiline *ml;     /* shipper.multiline; NULL when off */
    struct lp_multiline **ml_in; /* per input: its own rules (NULL: off or none) */
    /* rules compiled from pods' logpipe.io/multiline hints, by input and value */
    struct ml_hint {
        int input_idx;
        char *value;
        struct lp_multiline *ml; /* NULL: "off", or it did not compile (bad) */
        int bad;
    } * ml_hints;
    size_t n_ml_hints, cap_ml_hints;
    struct lp_ckpt ckpt;
    struct tail *tails;
    size_t ntails;
    struct lp_idmap tail_ix;   /* (dev, ino) -> struct tail *, one per identity */
    struct lp_idmap name_ix;   /* (inotify wd, hash of base) -> struct tail * */
    size_t max_open;           /* most tails at once (shipper.max_open_files) */
    struct tail **evict;       /* during a rescan at max_open: closable tails, */
    size_t nevict, evict_next; /* longest idle first (built when first needed) */
    int evict_built;
    size_t waiting, idle;    /* this rescan: files with no descriptor; closed idle */
    struct waiter *waitq;    /* the files waiting, retried every 200 ms without */
    size_t nwaitq, capwaitq; /* a whole rescan */
    int64_t next_retry_ns;
    rd_kafka_t *rk;
    int fatal;
    int kafka_up; /* metadata seen since the last all-brokers-down */
    size_t inflight_bytes;
    int stopping;
    int ino_fd;
    struct watch *watches;
    size_t nwatches;
    struct lp_idmap watch_ix; /* (wd, 0) -> index in watches, plus one */
    struct move moves[MOVES_MAX];
    size_t move_next;
    int64_t next_rescan_ns, next_ckpt_ns, next_flush_ns;
    int startup_scan; /* the first scan applies read_from */
    char *rbuf;
    size_t rbuf_size;
    struct lp_buf scratch; /* docker decode */
    struct lp_buf conv;    /* a line converted from its input's encoding */
    struct lp_buf evbuf;   /* record mode */
    struct lp_codec_ctx cctx;
};

/* shipper.c */
/* Adds (or extends) an inotify watch on dir; returns the wd or a negative
 * code (-errno; LP_EINVAL without inotify). */
int shipper_watch(struct lp_shipper *s, const char *dir, uint32_t mask);
/* Saves the checkpoint set as it stands (errors are logged). Loop thread. */
void shipper_write_checkpoints(struct lp_shipper *s);
/* A file truncated while we were stopped, whose checkpoint entry e still had
 * bytes to ship: finds its copy next to path (logrotate's copytruncate:
 * <name>.<suffix>, not compressed) that starts as e's file started and
 * holds e's bytes up to e->offset, and drains it from there under e's
 * identity. 1 when one was adopted (nothing is lost), else 0. Borrows e,
 * which may move (the caller looks it up again). Loop thread. */
int shipper_drain_copy(struct lp_shipper *s, const char *path, int input_idx,
                       const struct lp_ckpt_entry *e);

/* The compiled multiline rules of an input (-1: the default globs), or
 * NULL when it joins no lines. */
const struct lp_multiline *shipper_multiline(const struct lp_shipper *s, int input_idx);
/* The rules a pod's logpipe.io/multiline hint names for a file of input
 * input_idx: "java", "python", "go", "off", or any other value as a custom
 * start pattern (PCRE2; a matching line begins an event), with the input's
 * limits and flush timeout. Compiled once per value (at most
 * SHIPPER_MAX_ML_HINTS values; when all are taken, a value no file uses
 * any more is evicted); *ok = 0 when the value does not compile or every
 * slot is in use (counted, logged; the input's rules stay). Loop thread. */
#define SHIPPER_MAX_ML_HINTS 64
/* A pod's own pattern is a tenant's: it matches every line of that pod on
 * a node's shared shipper, so it gets far less backtracking than an admin's
 * input pattern (at most these, or the input's limits when lower). A
 * pattern that hits them counts the line as not matching. */
#define SHIPPER_HINT_MATCH_LIMIT 2000
#define SHIPPER_HINT_DEPTH_LIMIT 200
const struct lp_multiline *shipper_hint_multiline(struct lp_shipper *s, int input_idx,
                                                  const char *value, int *ok);

/* tail.c */
struct tail *tail_open(struct lp_shipper *s, const char *path, int input_idx);
void tail_free(struct tail *t);
int tail_identify(struct tail *t);
size_t tail_read(struct tail *t, size_t budget, int64_t now_ns);
void tail_check(struct tail *t, int64_t now_ns);
void tail_rewind(struct tail *t, uint64_t off);
uint64_t tail_resume_offset(const struct tail *t);
/* Looks the tail's pod up again when the API cache changed (shipper.kubernetes). */
void tail_meta_refresh(struct tail *t);
void tail_checkpoint(struct tail *t, int64_t now_s);
/* Ships a last line that has no newline (the file will not grow again). */
void tail_finish_line(struct tail *t, int64_t now_ns);

/* batch.c */
int batch_on_event(void *ctx, const struct lp_event *ev);
/* Closes the open batch; its resume offset is min(assembler pending,
 * line_off): call it only between feeds (never from batch_on_event). */
void batch_close(struct tail *t);
/* After each physical line's feed: closes a full batch, and in record mode
 * lifts the last message's resume offset past the line just consumed. */
void batch_after_line(struct tail *t);
void batch_tick(struct tail *t, int64_t now_ns);
void batch_replay_if_due(struct tail *t);
void batch_delivered(struct inflight *e, rd_kafka_resp_err_t err);
void batch_discard(struct tail *t);

/* produce.c */
int produce_init(struct lp_shipper *s, char *err, size_t errlen);
void produce_free(struct lp_shipper *s);
/* 0: produced (the value's bytes now belong to librdkafka); otherwise the
 * caller replays from the checkpoint (queue full, unknown topic, ...). */
int produce_send(struct lp_shipper *s, struct tail *t, struct lp_buf *value,
                 const struct lp_wire_meta *meta, uint64_t resume_off);
void produce_poll(struct lp_shipper *s, int timeout_ms);
void produce_rebuild_if_fatal(struct lp_shipper *s);

#endif
