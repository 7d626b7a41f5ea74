/* librdkafka helpers shared by the daemons: configuration from key/value
 * pairs with clear errors, librdkafka logs routed into lp_log, and the wire
 * format's headers. The only rdkafka.h user outside the daemons. */
#ifndef LP_KAFKA_H
#define LP_KAFKA_H

#include "lp_kv.h"
#include "lp_wire.h"

#include <librdkafka/rdkafka.h>

/* Returns a new configuration with every pair of props applied in order
 * (later wins), plus logpipe's log callback, or NULL with "key: reason" in
 * err. The caller owns it (rd_kafka_new takes it on success). */
rd_kafka_conf_t *lp_kafka_conf_new(const struct lp_kvlist *props, char *err, size_t errlen);
/* Applies one more pair; 0 or LP_EKAFKA with the reason in err. */
int lp_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                      size_t errlen);

/* One topic for lp_kafka_create_topics. */
struct lp_kafka_new_topic {
    const char *name;
    int partitions;
    int replication_factor;
    int created; /* out: 1 created, 0 already there, -1 refused (reason logged) */
};
/* Creates the topics that do not exist yet through the admin API of rk (any
 * handle type), waiting at most timeout_ms. An existing topic counts as done.
 * Returns 0 when every topic exists now, else LP_EKAFKA with the first
 * refusal in err (each refusal is logged too). */
int lp_kafka_create_topics(rd_kafka_t *rk, struct lp_kafka_new_topic *topics, size_t n,
                           int timeout_ms, char *err, size_t errlen);

/* Headers for a wire message (caller owns; rd_kafka_producev(RD_KAFKA_V_HEADERS)
 * takes them on success). */
rd_kafka_headers_t *lp_kafka_wire_headers(const struct lp_wire_meta *meta);
/* Reads a consumed message's headers into meta. 0, or LP_EUNSUPP /
 * LP_ECORRUPT with the reason in why. */
int lp_kafka_wire_meta(const rd_kafka_message_t *m, struct lp_wire_meta *meta, char *why,
                       size_t whylen);

#endif
