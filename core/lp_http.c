/* Metrics and health endpoint on libmicrohttpd's internal polling thread. */
#define LP_LOG_MODULE "http"
#include "lp_http.h"
#include "lp_error.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_log.h"
#include "lp_metrics.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_CHECKS 32

struct lp_ready {
    char name[64];
    _Atomic int up;
    int external; /* a dependency's state: /readyz?strict=1 only */
};

struct lp_http {
    struct MHD_Daemon *d;
    struct lp_metrics *metrics;
    unsigned port;
    _Atomic size_t nchecks;
    struct lp_ready checks[MAX_CHECKS];
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, size_t len)
{
    /* MHD frees body (malloc'd) when done with the response. */
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    struct lp_http *h = cls;
    struct lp_buf b = LP_BUF_INIT;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        lp_buf_puts(&b, "method not allowed\n");
        char *body = lp_buf_detach(&b, NULL);
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", body, strlen(body));
    }
    unsigned status = MHD_HTTP_OK;
    const char *type = "text/plain; charset=utf-8";
    if (strcmp(url, "/metrics") == 0) {
        lp_metrics_render(h->metrics, &b);
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(url, "/healthz") == 0) {
        lp_buf_puts(&b, "ok\n");
    } else if (strcmp(url, "/readyz") == 0) {
        const char *strict = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "strict");
        int all = strict && strcmp(strict, "0") != 0;
        size_t n = atomic_load(&h->nchecks);
        for (size_t i = 0; i < n; i++) {
            if (atomic_load_explicit(&h->checks[i].up, memory_order_relaxed))
                continue;
            if (h->checks[i].external && !all) {
                lp_buf_appendf(&b,
                               "down, not counted: %s (an outage of a dependency, not of this "
                               "process; /readyz?strict=1 counts it)\n",
                               h->checks[i].name);
                continue;
            }
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
            lp_buf_appendf(&b, "not ready: %s\n", h->checks[i].name);
        }
        if (status == MHD_HTTP_OK)
            lp_buf_puts(&b, "ready\n");
    } else {
        status = MHD_HTTP_NOT_FOUND;
        lp_buf_puts(&b, "not found: try /metrics, /healthz or /readyz\n");
    }
    size_t len;
    char *body = lp_buf_detach(&b, &len);
    return reply(c, status, type, body, len);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (strstr(msg, "Failed to bind to port"))
        return; /* it names port 0 (we pass the address); lp_http_start says it with ours */
    lp_log(LP_LOG_WARN, "microhttpd", "detail=\"%s\"", msg);
}

/* Splits "host:port" / "[v6]:port" and resolves it numerically. */
static int resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                   size_t errlen)
{
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof(host))
            goto bad;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof(host))
            goto bad;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = colon + 1;
    }
    if (!*port)
        goto bad;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", addr, gai_strerror(rc));
        return LP_EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
bad:
    snprintf(err, errlen, "listen address '%s' is not host:port", addr);
    return LP_EINVAL;
}

struct lp_http *lp_http_start(const char *addr, struct lp_metrics *metrics, char *err,
                              size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (resolve(addr, &ss, &sl, err, errlen))
        return NULL;
    struct lp_http *h = lp_xcalloc(1, sizeof(*h));
    h->metrics = metrics;
    /* epoll (or poll), never select(): on a node with thousands of open log
     * files the endpoint's sockets are far above FD_SETSIZE */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, handler, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                            NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen,
                 "cannot listen on %s: the address is in use (another daemon with the same "
                 "metrics.listen?) or not permitted",
                 addr);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    lp_log(LP_LOG_INFO, "serving metrics and health", "addr=%s port=%u", addr, h->port);
    return h;
}

void lp_http_stop(struct lp_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}

unsigned lp_http_port(const struct lp_http *h)
{
    return h->port;
}

struct lp_ready *lp_http_ready_check(struct lp_http *h, const char *name)
{
    return lp_http_ready_check_external(h, name, 0);
}

struct lp_ready *lp_http_ready_check_external(struct lp_http *h, const char *name, int external)
{
    size_t i = atomic_load(&h->nchecks);
    if (i >= MAX_CHECKS)
        return NULL;
    struct lp_ready *r = &h->checks[i];
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->external = external;
    atomic_store(&r->up, 0);
    atomic_store(&h->nchecks, i + 1); /* publish after the name is written */
    return r;
}

void lp_ready_set(struct lp_ready *r, int up)
{
    if (r)
        atomic_store_explicit(&r->up, up ? 1 : 0, memory_order_relaxed);
}
