/* Deterministic ids: the source id of a tailed file and the event id of a
 * line. The same line read twice, by any process, gets the same event id;
 * it is the Elasticsearch _id (op_type create) that removes duplicates. */
#ifndef LP_EVENTID_H
#define LP_EVENTID_H

#include <stddef.h>
#include <stdint.h>

#define LP_ID_HEX_LEN 32 /* 128 bits as lowercase hex, without NUL */

/* Source id = xxh3-128 over (host id, device, inode, fingerprint of the
 * file's head, generation), as 32 lowercase hex digits plus NUL in out.
 * The generation changes when the shipper sees the file truncated, so
 * offsets never go backwards within one source id. Byte layout hashed (all
 * integers little-endian): "lp-src-1\0" host_id "\0" dev(8) ino(8)
 * fingerprint(8) generation(4). */
void lp_source_id(const char *host_id, uint64_t dev, uint64_t ino, uint64_t fingerprint,
                  uint32_t generation, char out[LP_ID_HEX_LEN + 1]);

/* Event id = xxh3-128 over (source id bytes, line-start offset as 8 bytes
 * little-endian), seed 0, as 32 lowercase hex digits (high 64 bits first)
 * plus NUL. The one function used by shipper and aggregator. */
void lp_event_id(const char *source_id, size_t source_id_len, uint64_t offset,
                 char out[LP_ID_HEX_LEN + 1]);

#endif
