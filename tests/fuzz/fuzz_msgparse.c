/* libFuzzer: every message parser on arbitrary messages, its fields merged
 * into an event by the content rules (core/lp_ecs.h): the owned fields come
 * out unchanged, depth stays capped, the event renders as valid JSON. */
#include "lp_ecs.h"
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

/* Depth of objects in v (arrays looked into). */
static size_t depth(json_t *v)
{
    size_t d = 0, i;
    const char *k;
    json_t *x;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x)
        {
            size_t e = depth(x) + 1;
            if (e > d)
                d = e;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            size_t e = depth(x);
            if (e > d)
                d = e;
        }
    }
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!parsers[0])
        init();
    if (size < 1)
        return 0;
    struct lp_msgparser *p = parsers[data[0] % 6];
    /* what the aggregator does: the parser's fields, merged by the content
     * rules into an event whose owned fields must come out unchanged */
    json_t *ev = json_pack("{s:s,s:s,s:{s:s},s:{s:i,s:{s:s}},s:{s:s},s:{s:s},s:{s:s}}",
                           "@timestamp", "2026-11-28T10:00:00.000000000Z", "message", "m", "event",
                           "id", "e1", "log", "offset", 42, "file", "path", "/p", "host", "name",
                           "h", "kubernetes", "namespace", "ns", "logpipe", "source_id", "s1");
    char *before = json_dumps(ev, JSON_SORT_KEYS);
    char why[256];
    json_t *fields = NULL;
    int rc = lp_msgparse_fields(p, (const char *)data + 1, size - 1, 1795850460LL * 1000000000LL,
                                &fields, why, sizeof(why));
    if (rc != 0 && fields)
        __builtin_trap(); /* a failure returns no fields */
    if (rc == 0) {
        int64_t ns;
        (void)lp_msgparse_time(p, fields, 0, &ns);
        struct lp_ecs_merge_opts o = {LP_ECS_KEPT_DEFAULT, 1000, 20};
        lp_ecs_merge(ev, fields, &o, NULL, NULL);
        json_decref(fields);
        if (depth(ev) > 22)
            __builtin_trap(); /* the depth cap (+ the kept list's own two levels) */
        /* every owned value is as it was */
        json_t *b = json_loads(before, 0, NULL);
        if (strcmp(json_string_value(json_object_get(ev, "@timestamp")),
                   "2026-11-28T10:00:00.000000000Z") ||
            strcmp(json_string_value(lp_json_get_path(ev, "event.id")), "e1") ||
            json_integer_value(lp_json_get_path(ev, "log.offset")) != 42 ||
            strcmp(json_string_value(lp_json_get_path(ev, "log.file.path")), "/p") ||
            strcmp(json_string_value(lp_json_get_path(ev, "host.name")), "h") ||
            !json_equal(json_object_get(ev, "kubernetes"), json_object_get(b, "kubernetes")) ||
            strcmp(json_string_value(lp_json_get_path(ev, "logpipe.source_id")), "s1"))
            __builtin_trap(); /* content changed an owned field */
        json_decref(b);
        char *text = json_dumps(ev, JSON_COMPACT);
        json_t *back = text ? json_loads(text, JSON_ALLOW_NUL, NULL) : NULL;
        if (!back)
            __builtin_trap(); /* the event no longer renders as JSON */
        json_decref(back);
        free(text);
    } else {
        lp_msgparse_mark_failed(p, ev, (const char *)data + 1, size - 1, why);
    }
    free(before);
    json_decref(ev);
    return 0;
}
