/* What the Kubernetes API server answers, as untrusted bytes: pod objects
 * (lp_k8s_pod_parse) and the pod cache fed list pages and watch lines
 * (lp_k8s_feed_list, lp_k8s_feed_event), then looked up. Traps when a
 * snapshot breaks what the wire promises (label caps and normalisation, a
 * known owner kind). The first byte picks the mode; lines are split at
 * '\n'. */
#include "k8s_meta.h"
#include "lp_config.h"
#include "lp_kv.h"
#include "lp_metrics.h"
#include "lp_wire.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_kv(const struct lp_kvlist *l)
{
    if (l->n > LP_WIRE_MAX_LABELS)
        __builtin_trap();
    for (size_t i = 0; i < l->n; i++) {
        size_t kl = strlen(l->items[i].key);
        if (!kl || kl > LP_WIRE_MAX_LABEL_KEY || strchr(l->items[i].key, '.') ||
            strlen(l->items[i].value) > LP_WIRE_MAX_LABEL_VALUE)
            __builtin_trap();
    }
}

static void check_pod(const struct lp_k8s_pod *p)
{
    if (!p->ns || !*p->ns || !p->name || !*p->name)
        __builtin_trap();
    check_kv(&p->labels);
    check_kv(&p->annotations);
    if (!p->owner_kind != !p->owner_name)
        __builtin_trap();
    if (p->owner_kind) {
        int known = 0;
        for (int i = 0; i < LP_WIRE_OWNER_KINDS; i++)
            known |= strcmp(p->owner_kind, lp_wire_owner_kinds[i]) == 0;
        if (!known || !*p->owner_name)
            __builtin_trap();
    }
    if (p->parser && strlen(p->parser) > 128)
        __builtin_trap();
}

static char *allow[] = {"team.example.com/*", "owner"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 2 == 0) {
        json_t *j = json_loadb(text, n, JSON_ALLOW_NUL, NULL);
        struct lp_k8s_pod *p = lp_k8s_pod_parse(j, allow, 2);
        if (p) {
            check_pod(p);
            (void)lp_k8s_pod_image(p, "app");
        }
        lp_k8s_pod_release(p);
        json_decref(j);
        return 0;
    }
    struct lp_config_kubernetes cfg = {.enabled = 1,
                                       .annotations = allow,
                                       .n_annotations = 2,
                                       .deleted_grace_ms = data[0] & 2 ? 0 : 600000,
                                       .max_pods = 16};
    struct lp_metrics *m = lp_metrics_new();
    struct lp_k8s *k = lp_k8s_new_offline(&cfg, m);
    int first = 1;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (text + i)) : n - i;
        /* a line that looks like a list is a page, the others watch events */
        if (len > 1 && text[i] == '{' && memmem(text + i, len, "\"items\"", 7)) {
            int more = 0;
            if (lp_k8s_feed_list(k, text + i, len, first, &more) == 0)
                first = !more;
        } else {
            (void)lp_k8s_feed_event(k, text + i, len);
        }
        i += len + 1;
    }
    static const char *const names[] = {"a", "b", "web-1", "p", "x"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct lp_k8s_pod *p = lp_k8s_lookup(k, "ns", names[i], NULL);
        if (p)
            check_pod(p);
        lp_k8s_pod_release(p);
    }
    lp_k8s_stop(k);
    lp_metrics_free(m);
    return 0;
}
