/* config.v2.json → name, image, labels (docker_meta.h). */
#include "docker_meta.h"

#include "lp_alloc.h"
#include "lp_error.h"
#include "lp_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void lp_docker_meta_release(struct lp_docker_meta *m)
{
    free(m->name);
    free(m->image);
    lp_kvlist_release(&m->labels);
    memset(m, 0, sizeof(*m));
}

static char *str_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || !json_string_length(v) ||
        strlen(json_string_value(v)) != json_string_length(v))
        return NULL; /* absent, not a string, or with a NUL inside */
    return lp_xstrdup(json_string_value(v));
}

int lp_docker_meta_parse(const char *text, size_t len, struct lp_docker_meta *m, char *why,
                         size_t whylen)
{
    memset(m, 0, sizeof(*m));
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(root)) {
        snprintf(why, whylen, "not a JSON object (%s at line %d)", root ? "not an object" : je.text,
                 je.line);
        json_decref(root);
        return LP_ECORRUPT;
    }
    m->name = str_member(root, "Name");
    if (m->name && m->name[0] == '/')
        memmove(m->name, m->name + 1, strlen(m->name));
    if (m->name && !*m->name) {
        free(m->name);
        m->name = NULL;
    }
    json_t *cfg = json_object_get(root, "Config");
    if (json_is_object(cfg)) {
        m->image = str_member(cfg, "Image");
        json_t *labels = json_object_get(cfg, "Labels");
        if (json_is_object(labels)) {
            /* normalised like the wire's (dots, caps, duplicates) */
            size_t n = json_object_size(labels), k = 0;
            struct lp_kv *tmp = lp_xcalloc(n ? n : 1, sizeof(*tmp));
            const char *key;
            json_t *v;
            json_object_foreach(labels, key, v)
            {
                if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
                    continue;
                tmp[k].key = lp_xstrdup(key);
                tmp[k].value = lp_xstrdup(json_string_value(v));
                k++;
            }
            size_t kept = lp_wire_labels_normalize(tmp, k);
            for (size_t i = 0; i < kept; i++)
                lp_kvlist_set(&m->labels, tmp[i].key, tmp[i].value);
            for (size_t i = 0; i < k; i++) {
                free(tmp[i].key);
                free(tmp[i].value);
            }
            free(tmp);
        }
    }
    json_decref(root);
    return 0;
}

int lp_docker_meta_read(const char *log_path, struct lp_docker_meta *m, char *why, size_t whylen)
{
    memset(m, 0, sizeof(*m));
    char *real = realpath(log_path, NULL);
    if (!real) {
        snprintf(why, whylen, "%s", lp_strerror(-errno));
        return LP_EINVAL;
    }
    char *slash = strrchr(real, '/');
    if (slash)
        *slash = '\0';
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/config.v2.json", real);
    free(real);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(why, whylen, "path too long");
        return LP_ETOOBIG;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(why, whylen, "%s: %s", path, lp_strerror(-errno));
        return LP_EINVAL;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (off_t)LP_DOCKER_CONFIG_MAX) {
        snprintf(why, whylen, "%s: not a regular file of at most %u bytes", path,
                 LP_DOCKER_CONFIG_MAX);
        close(fd);
        return LP_ETOOBIG;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = lp_xmalloc(size + 1);
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    int rc = lp_docker_meta_parse(buf, got, m, why, whylen);
    free(buf);
    return rc;
}
