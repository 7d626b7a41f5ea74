/* shipper.kubernetes.kubeconfig: the file read and checked at load time
 * (clusters, users, contexts; errors at its positions) into the
 * connection the shipper's pod cache uses (lp_config.h: lp_k8s_conn). */
#include "lp_config_int.h"

#include "lp_alloc.h"
#include "lp_error.h"
#include "lp_base64.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *no_env(const char *name)
{
    (void)name;
    return NULL; /* a kubeconfig is taken as written: no ${...} */
}

/* The `member` map of the item named `name` in the list `list` of a
 * kubeconfig (clusters, users, contexts); errors at the list or the item. */
static const struct lp_node *kc_named(struct ctx *c, const struct lp_node *root, const char *list,
                                      const char *name, const char *member,
                                      const struct lp_node *at)
{
    const struct lp_node *l = lp_node_get(root, list);
    for (size_t i = 0; l && l->type == LP_NODE_SEQ && i < l->n; i++) {
        const struct lp_node *it = l->items[i], *nm = lp_node_get(it, "name");
        if (it->type != LP_NODE_MAP || !nm || nm->type != LP_NODE_SCALAR ||
            strcmp(nm->text, name) != 0)
            continue;
        const struct lp_node *m = lp_node_get(it, member);
        if (!m || m->type != LP_NODE_MAP) {
            lp_node_error(c->errs, m ? m : it, "kubeconfig: %s \"%s\" has no %s mapping", list,
                          name, member);
            return NULL;
        }
        return m;
    }
    lp_node_error(c->errs, at, "kubeconfig: no %s named \"%s\"", list, name);
    return NULL;
}

/* A scalar member (NULL when absent; an error when not a scalar). */
static const char *kc_str(struct ctx *c, const struct lp_node *map, const char *key)
{
    const struct lp_node *n = lp_node_get(map, key);
    if (!n || n->type == LP_NODE_NULL)
        return NULL;
    if (n->type != LP_NODE_SCALAR) {
        lp_node_error(c->errs, n, "kubeconfig: %s must be a string", key);
        return NULL;
    }
    return n->len ? n->text : NULL;
}

/* A path as kubectl resolves it: relative to the kubeconfig's directory. */
static char *kc_path(const char *kcfile, const char *p)
{
    const char *slash = strrchr(kcfile, '/');
    if (!p)
        return NULL;
    if (p[0] == '/' || !slash)
        return lp_xstrdup(p);
    struct lp_buf b = LP_BUF_INIT;
    lp_buf_append(&b, kcfile, (size_t)(slash - kcfile) + 1);
    lp_buf_puts(&b, p);
    lp_buf_putc(&b, '\0');
    return b.data;
}

/* A *-data member, base64-decoded (NULL when absent or invalid: reported). */
static char *kc_data(struct ctx *c, const struct lp_node *map, const char *key, size_t *len)
{
    const char *v = kc_str(c, map, key);
    if (!v)
        return NULL;
    struct lp_buf b = LP_BUF_INIT;
    if (lp_base64_decode(v, strlen(v), &b) || !b.len) {
        lp_node_error(c->errs, lp_node_get(map, key), "kubeconfig: %s is not base64", key);
        lp_buf_release(&b);
        return NULL;
    }
    *len = b.len;
    lp_buf_putc(&b, '\0');
    return b.data;
}

void lp_k8s_conn_free(struct lp_k8s_conn *k)
{
    if (!k)
        return;
    free(k->server);
    free(k->token);
    free(k->token_file);
    free(k->ca_file);
    free(k->ca_pem);
    free(k->cert_file);
    free(k->key_file);
    free(k->cert_pem);
    free(k->key_pem);
    free(k->context);
    free(k);
}

/* Reads the kubeconfig into k->conn: the context's cluster (server, CA,
 * insecure-skip-tls-verify) and user (token, tokenFile, client certificate
 * and key, as files or -data). Errors point into the kubeconfig. */
void lp_cfg_resolve_kubeconfig(struct ctx *c, struct lp_config_kubernetes *k)
{
    const char *path = k->kubeconfig;
    struct lp_node *root = lp_node_parse_file(path, NULL, 0, no_env, c->errs);
    if (!root)
        return;
    struct lp_k8s_conn *kc = lp_xcalloc(1, sizeof(*kc));
    const char *ctx_name =
        k->context && *k->context ? k->context : kc_str(c, root, "current-context");
    const struct lp_node *cx, *cl, *us;
    if (!ctx_name) {
        lp_node_error(c->errs, root,
                      "kubeconfig %s: no current-context (set "
                      "shipper.kubernetes.context)",
                      path);
        goto out;
    }
    const struct lp_node *cur = lp_node_get(root, "current-context");
    if (!(cx = kc_named(c, root, "contexts", ctx_name, "context",
                        k->context && *k->context ? root : cur)))
        goto out;
    kc->context = lp_xstrdup(ctx_name);
    const char *cluster = kc_str(c, cx, "cluster"), *user = kc_str(c, cx, "user");
    if (!cluster) {
        lp_node_error(c->errs, cx, "kubeconfig: context \"%s\" names no cluster", ctx_name);
        goto out;
    }
    if (!(cl = kc_named(c, root, "clusters", cluster, "cluster", lp_node_get(cx, "cluster"))))
        goto out;
    const char *server = kc_str(c, cl, "server");
    if (!server || (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)) {
        lp_node_error(c->errs, server ? lp_node_get(cl, "server") : cl,
                      "kubeconfig: cluster \"%s\" needs a server (http:// or https://)", cluster);
        goto out;
    }
    kc->server = lp_xstrdup(server);
    kc->ca_file = kc_path(path, kc_str(c, cl, "certificate-authority"));
    kc->ca_pem = kc_data(c, cl, "certificate-authority-data", &kc->ca_pem_len);
    const char *insecure = kc_str(c, cl, "insecure-skip-tls-verify");
    kc->insecure = insecure && strcmp(insecure, "true") == 0;
    if (user) {
        if (!(us = kc_named(c, root, "users", user, "user", lp_node_get(cx, "user"))))
            goto out;
        static const char *const refused[] = {"exec", "auth-provider", "username", "password"};
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
            if (lp_node_get(us, refused[i]))
                lp_node_error(c->errs, lp_node_get(us, refused[i]),
                              "kubeconfig: user \"%s\": %s credentials are not supported (use a "
                              "token, tokenFile or client certificate)",
                              user, refused[i]);
        const char *tok = kc_str(c, us, "token");
        for (const char *q = tok; q && *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                lp_node_error(c->errs, lp_node_get(us, "token"),
                              "kubeconfig: user \"%s\": the token has control characters", user);
                tok = NULL;
                break;
            }
        kc->token = tok ? lp_xstrdup(tok) : NULL;
        kc->token_file = kc_path(path, kc_str(c, us, "tokenFile"));
        kc->cert_file = kc_path(path, kc_str(c, us, "client-certificate"));
        kc->key_file = kc_path(path, kc_str(c, us, "client-key"));
        kc->cert_pem = kc_data(c, us, "client-certificate-data", &kc->cert_pem_len);
        kc->key_pem = kc_data(c, us, "client-key-data", &kc->key_pem_len);
        if (!(kc->cert_file || kc->cert_pem) != !(kc->key_file || kc->key_pem))
            lp_node_error(c->errs, us,
                          "kubeconfig: user \"%s\": a client certificate needs "
                          "its key and the other way round",
                          user);
    }
out:
    lp_node_free(root);
    lp_k8s_conn_free(k->conn);
    k->conn = kc;
}

/* The node of list `key` item i under map (or a fallback), for positions. */
