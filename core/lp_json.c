/* Dotted paths in jansson objects (lp_json.h). */
#include "lp_json.h"

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
