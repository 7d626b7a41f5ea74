/* Log line assembly: logfmt or JSON, one write(2) per line. */
#include "lp_log.h"
#include "lp_error.h"

#include "lp_buf.h"
#include "lp_time.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    return LP_EINVAL;
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
                    if (*p == 'u' && strlen(p) >= 5) {
                        lp_buf_putc(&v, (char)strtol((char[]){p[3], p[4], 0}, NULL, 16));
                        p += 4;
                    } else {
                        lp_buf_putc(&v, *p == 'n'   ? '\n'
                                        : *p == 't' ? '\t'
                                        : *p == 'r' ? '\r'
                                                    : *p);
                    }
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
        lp_buf_append_json_string(b, v.data, v.len);
        lp_buf_release(&v);
    }
}

/* One %s value into a logfmt line: inside a quoted value of the format
 * quotes, backslashes and control bytes are escaped (\n, \t, \r, other
 * controls as \u00XX); a bare value is quoted when it needs it. Values come
 * from log content (an OpenSearch reason echoes a field, a path is a
 * container's): none may end the line or start another key. */
static void put_value(struct lp_buf *b, const char *s, size_t max, int quoted)
{
    size_t n = strnlen(s, max);
    if (n == 0)
        return; /* as printf: key= stays key= (or "" where the format quotes) */
    int bare_ok = 1;
    for (size_t i = 0; i < n && bare_ok; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\' ||
            s[i] == 0x7f)
            bare_ok = 0;
    if (!quoted && bare_ok) {
        lp_buf_append(b, s, n);
        return;
    }
    if (!quoted)
        lp_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            lp_buf_putc(b, '\\');
            lp_buf_putc(b, (char)c);
        } else if (c == '\n') {
            lp_buf_puts(b, "\\n");
        } else if (c == '\t') {
            lp_buf_puts(b, "\\t");
        } else if (c == '\r') {
            lp_buf_puts(b, "\\r");
        } else if (c < ' ' || c == 0x7f) {
            lp_buf_appendf(b, "\\u%04x", c);
        } else {
            lp_buf_putc(b, (char)c);
        }
    }
    if (!quoted)
        lp_buf_putc(b, '"');
}

/* The spec handed to snprintf below is rebuilt from the caller's format,
 * which the compiler checked against its arguments (lp_log_emit's format
 * attribute): not a literal, but not data either. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* The caller's key=value format with every %s escaped (put_value); other
 * conversions (numbers, chars, pointers) are formatted as printf would.
 * Quotes in the format's own text delimit quoted values. */
static void format_kv(struct lp_buf *b, const char *fmt, va_list ap)
{
    int quoted = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            if (*f == '"')
                quoted = !quoted;
            lp_buf_putc(b, *f);
            continue;
        }
        /* one conversion: %[flags][width][.prec][length]conv */
        f++;
        if (*f == '%') {
            lp_buf_putc(b, '%');
            continue;
        }
        /* the spec again, with '*' width and precision made numbers */
        char spec[48] = "%";
        size_t sl = 1;
        int width = -1, prec = -1;
        while (*f && strchr("-+ #0", *f) && sl < 8)
            spec[sl++] = *f++;
        if (*f == '*') {
            width = va_arg(ap, int);
            f++;
        } else if (*f >= '0' && *f <= '9') {
            width = 0;
            while (*f >= '0' && *f <= '9')
                width = width * 10 + (*f++ - '0');
        }
        if (*f == '.') {
            f++;
            prec = 0;
            if (*f == '*') {
                prec = va_arg(ap, int);
                f++;
            } else {
                while (*f >= '0' && *f <= '9')
                    prec = prec * 10 + (*f++ - '0');
            }
        }
        if (width > 1000)
            width = 1000;
        if (prec > 1000 && *f != 's')
            prec = 1000;
        if (width >= 0)
            sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, "%d", width);
        if (prec >= 0 && *f != 's')
            sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, ".%d", prec);
        char len[3] = "";
        if ((f[0] == 'h' && f[1] == 'h') || (f[0] == 'l' && f[1] == 'l')) {
            len[0] = f[0], len[1] = f[1];
            f += 2;
        } else if (*f && strchr("hlzjtL", *f)) {
            len[0] = *f++;
        }
        if (!*f)
            break;
        size_t ll = strlen(len);
        memcpy(spec + sl, len, ll);
        spec[sl + ll] = *f;
        spec[sl + ll + 1] = '\0';
        char tmp[1100];
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            put_value(b, s ? s : "(null)", prec >= 0 ? (size_t)prec : SIZE_MAX, quoted);
            continue;
        }
        case 'd':
        case 'i':
        case 'u':
        case 'x':
        case 'X':
        case 'o':
        case 'c':
            if (!strcmp(len, "ll"))
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, long long));
            else if (!strcmp(len, "l"))
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, long));
            else if (!strcmp(len, "z"))
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, size_t));
            else if (!strcmp(len, "j"))
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, intmax_t));
            else if (!strcmp(len, "t"))
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, ptrdiff_t));
            else
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, int));
            break;
        case 'f':
        case 'F':
        case 'g':
        case 'G':
        case 'e':
        case 'E':
            if (!strcmp(len, "L"))
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, long double));
            else
                snprintf(tmp, sizeof(tmp), spec, va_arg(ap, double));
            break;
        case 'p': snprintf(tmp, sizeof(tmp), spec, va_arg(ap, void *)); break;
        default: tmp[0] = '\0'; break; /* unknown: nothing (the format is ours) */
        }
        if (*f == 'c')
            put_value(b, tmp, SIZE_MAX, quoted);
        else
            lp_buf_puts(b, tmp);
    }
}

#pragma GCC diagnostic pop

void lp_log_emit(int level, const char *module, const char *msg, const char *kvfmt, ...)
{
    struct lp_buf kvb;
    lp_buf_init(&kvb, 1024);
    va_list ap;
    va_start(ap, kvfmt);
    format_kv(&kvb, kvfmt, ap);
    va_end(ap);
    lp_buf_putc(&kvb, '\0');
    const char *kv = kvb.data;
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
    if (b.len) {
        ssize_t w = write(STDERR_FILENO, b.data, b.len);
        (void)w; /* nowhere left to report a failed log write */
    }
    lp_buf_release(&b);
    lp_buf_release(&kvb);
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
