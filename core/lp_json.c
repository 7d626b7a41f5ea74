/* Dotted paths in jansson objects (lp_json.h). */
#include "lp_json.h"

#include <stdio.h>
#include <string.h>

void lp_json_set_path(json_t *obj, const char *path, json_t *value)
{
    char key[256];
    const char *dot;
    while ((dot = strchr(path, '.')) != NULL && (size_t)(dot - path) < sizeof(key)) {
        memcpy(key, path, (size_t)(dot - path));
        key[dot - path] = '\0';
        json_t *next = json_object_get(obj, key);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(obj, key, next);
        }
        obj = next;
        path = dot + 1;
    }
    json_object_set_new(obj, path, value);
}

json_t *lp_json_get_path(json_t *obj, const char *path)
{
    json_t *v = json_object_get(obj, path);
    if (v)
        return v;
    char key[256];
    const char *dot;
    while (obj && (dot = strchr(path, '.')) != NULL && (size_t)(dot - path) < sizeof(key)) {
        memcpy(key, path, (size_t)(dot - path));
        key[dot - path] = '\0';
        obj = json_object_get(obj, key);
        path = dot + 1;
    }
    return obj ? json_object_get(obj, path) : NULL;
}

int lp_json_scalar_text(json_t *v, const char **s, size_t *n, char *tmp, size_t tmplen)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        *s = json_string_value(v);
        *n = json_string_length(v);
        return 1;
    case JSON_INTEGER:
        *n = (size_t)snprintf(tmp, tmplen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: *n = (size_t)snprintf(tmp, tmplen, "%.17g", json_real_value(v)); break;
    case JSON_TRUE: *n = (size_t)snprintf(tmp, tmplen, "true"); break;
    case JSON_FALSE: *n = (size_t)snprintf(tmp, tmplen, "false"); break;
    default: return 0;
    }
    *s = tmp;
    return 1;
}
