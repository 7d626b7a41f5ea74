/* libFuzzer: redaction (aggregator/redact.c) on untrusted bytes: every
 * built-in detector and admin patterns over the input as raw bytes (what
 * a dead-lettered value gets) and, when the input is a JSON object, over
 * it as an event. Traps when a literal rule's text survives in what was
 * redacted; ASan/UBSan watch the rest (the ipv6 and card validators copy
 * matches, the key walk renames members). */
#include "lp_config.h"
#include "redact.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct agg_redactor *rd;

static void init(void)
{
    static const struct lp_config_redact rules[] = {
        {.name = "s", .pattern = "SECRET"},
        {.name = "e", .detector = "email"},
        {.name = "i4", .detector = "ipv4"},
        {.name = "i6", .detector = "ipv6"},
        {.name = "c", .detector = "card"},
        {.name = "b", .detector = "bearer"},
        {.name = "j", .detector = "jwt"},
        {.name = "k", .detector = "aws_key"},
        {.name = "g", .pattern = "(?<k>pw|pass)=(\\S+)", .replacement = "${k}=*** $1$$"},
    };
    char err[256];
    rd = agg_redactor_new(rules, sizeof(rules) / sizeof(rules[0]), NULL, 0, 0, err, sizeof(err));
    if (!rd) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
}

static void no_secret(json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (memmem(json_string_value(v), json_string_length(v), "SECRET", 6))
            __builtin_trap();
        break;
    case JSON_OBJECT:
        json_object_foreach(v, k, x)
        {
            if (strstr(k, "SECRET"))
                __builtin_trap();
            no_secret(x);
        }
        break;
    case JSON_ARRAY:
        json_array_foreach(v, i, x) no_secret(x);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!rd)
        init();
    const char *res;
    size_t n;
    if (agg_redact_bytes(rd, data, size, &res, &n)) {
        if (memmem(res, n, "SECRET", 6))
            __builtin_trap();
    } else if (memmem(data, size, "SECRET", 6)) {
        __builtin_trap(); /* a match left as it was */
    }
    /* as an event: every key is content (none is a field logpipe owns at
     * the top, as a key or a dotted key's first part: those stay, so the check skips
     * inputs that use them) */
    json_t *ev = json_loadb((const char *)data, size, JSON_ALLOW_NUL, NULL);
    if (json_is_object(ev)) {
        static const char *const owned[] = {"@timestamp", "stream", "event", "log", "host",
                                            "container", "kubernetes", "logpipe"};
        int skip = 0;
        const char *k;
        json_t *x;
        json_object_foreach(ev, k, x)
        {
            size_t top = strcspn(k, "."); /* a dotted key is its path */
            for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
                skip |= strlen(owned[i]) == top && strncmp(k, owned[i], top) == 0;
        }
        agg_redact_event(rd, ev);
        if (!skip)
            no_secret(ev);
    }
    json_decref(ev);
    return 0;
}
