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
    case JSON_ARRAY: json_array_foreach(v, i, x) no_secret(x); break;
    default: break;
    }
}

/* ---- the planted-value oracle (#29): values a rule must find, put in
 * every position content can reach — a key, a dotted key's part, a nested
 * key, a number, an array element, next to other digits — around the
 * fuzzer's bytes (each planted value has a space on both sides, so no
 * input byte can make it legitimately something else). None may survive
 * agg_redact_keys (a parser's fields) followed by agg_redact_event. */

static const char *const PLANTED[] = {"4111111111111111",         "4111 1111 1111 1111",
                                      "5500-0000-0000-0004",      "5500000000000004",
                                      "planted.user@example.com", "planted.user%40example.com"};
#define N_PLANTED (sizeof(PLANTED) / sizeof(PLANTED[0]))

static int has_planted(const char *s, size_t n)
{
    for (size_t i = 0; i < N_PLANTED; i++)
        if (memmem(s, n, PLANTED[i], strlen(PLANTED[i])))
            return 1;
    return 0;
}

static void no_planted(json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (has_planted(json_string_value(v), json_string_length(v)))
            __builtin_trap();
        break;
    case JSON_INTEGER:
        if (json_integer_value(v) == 4111111111111111LL ||
            json_integer_value(v) == 5500000000000004LL)
            __builtin_trap();
        break;
    case JSON_OBJECT:
        json_object_foreach(v, k, x)
        {
            if (has_planted(k, strlen(k)))
                __builtin_trap();
            no_planted(x);
        }
        break;
    case JSON_ARRAY: json_array_foreach(v, i, x) no_planted(x); break;
    default: break;
    }
}

/* piece a, " <planted> ", piece b (NUL bytes of the input become 'x') */
static char *around(const char *a, const char *planted, const char *b)
{
    size_t n = strlen(a) + strlen(planted) + strlen(b) + 3;
    char *s = malloc(n);
    if (!s)
        abort();
    snprintf(s, n, "%s %s %s", a, planted, b);
    return s;
}

static void set_key(json_t *obj, char *key, json_t *v)
{
    json_object_set_new_nocheck(obj, key, v); /* the input's bytes: not always UTF-8 */
    free(key);
}

static void planted(const uint8_t *data, size_t size)
{
    if (has_planted((const char *)data, size))
        return; /* the input holds one already, perhaps glued to digits */
    char p[4][256];
    size_t q = size / 4;
    for (int i = 0; i < 4; i++) {
        size_t n = q < sizeof(p[i]) - 1 ? q : sizeof(p[i]) - 1;
        for (size_t k = 0; k < n; k++)
            p[i][k] = data[(size_t)i * q + k] ? (char)data[(size_t)i * q + k] : 'x';
        p[i][n] = '\0';
    }
    json_t *f = json_object(), *deep = json_object(), *arr = json_array(), *inner = json_object();
    set_key(f, around(p[0], PLANTED[0], p[1]), json_integer(1));
    set_key(deep, around(p[3], PLANTED[2], p[0]), json_string("v"));
    char dotted[600];
    snprintf(dotted, sizeof(dotted), "%s.x. %s .%s", p[1], PLANTED[4], p[2]);
    json_object_set_new_nocheck(f, dotted, deep);
    json_object_set_new(f, "n", json_integer(4111111111111111LL));
    char *el = around(p[2], PLANTED[1], p[3]);
    json_array_append_new(arr, json_string_nocheck(el));
    free(el);
    json_array_append_new(arr, json_integer(5500000000000004LL));
    set_key(inner, around(p[0], PLANTED[5], p[1]),
            json_pack("[I,s]", (json_int_t)4111111111111111LL, "x"));
    json_array_append_new(arr, inner);
    json_object_set_new(f, "arr", arr);
    char next_to[640];
    snprintf(next_to, sizeof(next_to), "%s 12 %s 100 %s", p[0], PLANTED[0], p[1]);
    json_object_set_new_nocheck(f, "s", json_string_nocheck(next_to));
    json_t *ev = json_object();
    agg_redact_keys(rd, f); /* as a parser's fields, before the merge */
    json_object_set_new(ev, "f", f);
    agg_redact_event(rd, ev);
    no_planted(ev);
    json_decref(ev);
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
        static const char *const owned[] = {"@timestamp", "stream",    "event",      "log",
                                            "host",       "container", "kubernetes", "logpipe"};
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
    planted(data, size);
    return 0;
}
