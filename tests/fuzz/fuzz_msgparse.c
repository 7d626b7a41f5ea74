/* libFuzzer: every message parser on arbitrary messages. A failed parse
 * must leave the event exactly as it was. */
#include "lp_msgparse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct lp_msgparser *parsers[6];

static void init(void)
{
    static const struct lp_msgparser_config cfgs[] = {
        {"json", NULL, NULL, "ts", "rfc3339"},
        {"json", NULL, "app", "t", "epoch"},
        {"logfmt", NULL, NULL, "time", "%Y-%m-%d %H:%M:%S.%f"},
        {"regex", "^(?<log__level>[A-Z]+) (?<process__pid>\\d+) (?<message>.*)$", NULL, NULL, NULL},
        {"syslog", NULL, NULL, NULL, NULL},
        {"access", NULL, NULL, NULL, NULL},
    };
    char err[256];
    for (int i = 0; i < 6; i++)
        if (!(parsers[i] = lp_msgparser_new(&cfgs[i], err, sizeof(err))))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!parsers[0])
        init();
    if (size < 1)
        return 0;
    struct lp_msgparser *p = parsers[data[0] % 6];
    json_t *ev = json_pack("{s:s,s:{s:s}}", "message", "m", "host", "name", "h");
    char *before = json_dumps(ev, JSON_SORT_KEYS);
    char why[256];
    int rc = lp_msgparse(p, (const char *)data + 1, size - 1, ev, 1795850460LL * 1000000000LL,
                         why, sizeof(why));
    char *after = json_dumps(ev, JSON_SORT_KEYS);
    if (rc != 0 && strcmp(before, after) != 0)
        __builtin_trap(); /* a failure changed the event */
    if (rc != 0)
        lp_msgparse_mark_failed(p, ev, (const char *)data + 1, size - 1, why);
    free(before);
    free(after);
    json_decref(ev);
    return 0;
}
