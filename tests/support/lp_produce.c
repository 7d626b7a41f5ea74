/* lp-produce BROKERS TOPIC PARTITION FILE [NAME=VALUE ...]: produces the
 * bytes of FILE as one message with the given headers and waits for its
 * delivery report (tests: hand-made wire messages, corrupt batches).
 * Exit 0 when delivered. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int delivered = -1;

static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    delivered = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!delivered)
        fprintf(stderr, "lp-produce: %s\n", rd_kafka_err2str(m->err));
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s BROKERS TOPIC PARTITION FILE [NAME=VALUE ...]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[4], "rb");
    if (!f) {
        perror(argv[4]);
        return 1;
    }
    static char buf[16 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", argv[1], err, sizeof(err)) ||
        rd_kafka_conf_set(c, "message.max.bytes", "20000000", err, sizeof(err))) {
        fprintf(stderr, "lp-produce: %s\n", err);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(c, dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "lp-produce: %s\n", err);
        return 1;
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    for (int i = 5; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            continue;
        rd_kafka_header_add(h, argv[i], eq - argv[i], eq + 1, (ssize_t)strlen(eq + 1));
    }
    rd_kafka_resp_err_t e =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION(atoi(argv[3])),
                          RD_KAFKA_V_VALUE(buf, n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) {
        fprintf(stderr, "lp-produce: %s\n", rd_kafka_err2str(e));
        rd_kafka_headers_destroy(h);
        return 1;
    }
    rd_kafka_flush(rk, 30000);
    rd_kafka_destroy(rk);
    return delivered == 1 ? 0 : 1;
}
