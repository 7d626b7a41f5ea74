/* Log line assembly: logfmt or JSON, one write(2) per line. */
#include "lp_log.h"

#include "lp_buf.h"
#include "lp_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

_Atomic int lp_log_threshold = LP_LOG_INFO;
static _Atomic int log_format = LP_LOG_LOGFMT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void lp_log_setup(enum lp_log_level level, enum lp_log_format format)
{
    atomic_store(&lp_log_threshold, (int)level);
    atomic_store(&log_format, (int)format);
}

int lp_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return LP_LOG_WARN;
    return -1;
}

/* logfmt value: bare when it has no space, quote, '=' or control byte. */
static void logfmt_value(struct lp_buf *b, const char *s)
{
    int bare = *s != '\0';
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == '\\')
            bare = 0;
    if (bare) {
        lp_buf_puts(b, s);
        return;
    }
    lp_buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            lp_buf_putc(b, '\\');
            lp_buf_putc(b, *p);
        } else if (*p == '\n') {
            lp_buf_puts(b, "\\n");
        } else if ((unsigned char)*p < ' ') {
            lp_buf_putc(b, ' ');
        } else {
            lp_buf_putc(b, *p);
        }
    }
    lp_buf_putc(b, '"');
}

/* Turns the caller's `k=v k2="v 2"` into JSON members. Anything that does
 * not look like a key=value pair is kept under "extra" rather than lost. */
static void kv_to_json(struct lp_buf *b, const char *kv)
{
    const char *p = kv;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ')
            p++;
        if (*p != '=' || p == k) {
            lp_buf_puts(b, ",\"extra\":");
            lp_buf_append_json_string(b, k, strlen(k));
            return;
        }
        size_t klen = (size_t)(p - k);
        p++;
        struct lp_buf v = LP_BUF_INIT;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1]) {
                    p++;
                    lp_buf_putc(&v, *p == 'n' ? '\n' : *p);
                } else {
                    lp_buf_putc(&v, *p);
                }
                p++;
            }
            if (*p == '"')
                p++;
        } else {
            const char *vs = p;
            while (*p && *p != ' ')
                p++;
            lp_buf_append(&v, vs, (size_t)(p - vs));
        }
        lp_buf_putc(b, ',');
        lp_buf_append_json_string(b, k, klen);
        lp_buf_putc(b, ':');
        lp_buf_append_json_string(b, v.data ? v.data : "", v.len);
        lp_buf_release(&v);
    }
}

void lp_log_emit(int level, const char *module, const char *msg, const char *kvfmt, ...)
{
    char kv[1024];
    va_list ap;
    va_start(ap, kvfmt);
    int n = vsnprintf(kv, sizeof(kv), kvfmt, ap);
    va_end(ap);
    if (n < 0)
        kv[0] = '\0';
    char ts[LP_RFC3339_MAX];
    lp_time_format_rfc3339(lp_time_real_ns(), 3, ts);
    if (level < 0 || level > LP_LOG_DEBUG)
        level = LP_LOG_ERROR;

    struct lp_buf b;
    lp_buf_init(&b, 8192);
    if (atomic_load_explicit(&log_format, memory_order_relaxed) == LP_LOG_JSON) {
        lp_buf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":", ts, level_names[level]);
        lp_buf_append_json_string(&b, module, strlen(module));
        lp_buf_puts(&b, ",\"msg\":");
        lp_buf_append_json_string(&b, msg, strlen(msg));
        kv_to_json(&b, kv);
        lp_buf_puts(&b, "}\n");
    } else {
        lp_buf_appendf(&b, "ts=%s level=%s module=%s msg=", ts, level_names[level], module);
        logfmt_value(&b, msg);
        if (kv[0]) {
            lp_buf_putc(&b, ' ');
            lp_buf_puts(&b, kv);
        }
        lp_buf_putc(&b, '\n');
    }
    if (b.data) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void)w; /* nowhere left to report a failed log write */
    }
    lp_buf_release(&b);
}

int lp_ratelimit_allow(struct lp_ratelimit *rl, uint32_t burst, int64_t window_ns,
                       uint32_t *suppressed)
{
    int64_t now = lp_time_mono_ns();
    int64_t start = atomic_load_explicit(&rl->window_start, memory_order_relaxed);
    if (start == 0 || now - start >= window_ns) {
        if (atomic_compare_exchange_strong(&rl->window_start, &start, now))
            atomic_store(&rl->count, 0);
    }
    if (atomic_fetch_add(&rl->count, 1) < burst) {
        *suppressed = atomic_exchange(&rl->suppressed, 0);
        return 1;
    }
    atomic_fetch_add(&rl->suppressed, 1);
    return 0;
}
