/* lp-topic-dump: prints every record of a logpipe topic as one JSON line
 * (source id, path, offset, stream, flags, message) for test scripts.
 * Usage: lp-topic-dump BROKERS TOPIC [TIMEOUT_MS] */
#include "lp_buf.h"
#include "lp_consume.h"
#include "lp_eventid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print(void *ctx, const struct lp_wire_source *src, const struct lp_wire_record *r)
{
    struct lp_buf *b = ctx;
    char id[LP_ID_HEX_LEN + 1];
    lp_event_id(src->source_id, strlen(src->source_id), r->offset, id);
    lp_buf_reset(b);
    lp_buf_appendf(b,
                   "{\"event_id\":\"%s\",\"source_id\":\"%s\",\"offset\":%llu,\"flags\":%u,"
                   "\"lines\":%u,\"path\":",
                   id, src->source_id, (unsigned long long)r->offset, r->flags, r->lines);
    lp_buf_append_json_string(b, src->path ? src->path : "", src->path ? strlen(src->path) : 0);
    lp_buf_puts(b, ",\"stream\":");
    lp_buf_append_json_string(b, r->stream ? r->stream : "", r->stream ? strlen(r->stream) : 0);
    lp_buf_puts(b, ",\"message\":");
    lp_buf_append_json_string(b, r->message, r->message_len);
    lp_buf_puts(b, "}\n");
    fwrite(b->data, 1, b->len, stdout);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BROKERS TOPIC [TIMEOUT_MS]\n", argv[0]);
        return 2;
    }
    struct lp_buf b = LP_BUF_INIT;
    long bad = 0;
    long n = lp_consume_all(argv[1], argv[2], argc > 3 ? atoi(argv[3]) : 60000, print, &b, &bad);
    lp_buf_release(&b);
    fprintf(stderr, "messages=%ld undecodable=%ld\n", n, bad);
    return n < 0 || bad ? 1 : 0;
}
