/* Head fingerprints and tail hashes with pread (the fd's offset is left alone). */
#include "identity.h"

#include "lp_error.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

static ssize_t pread_full(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int lp_head_read(int fd, struct lp_head *out)
{
    char buf[LP_HEAD_MAX];
    ssize_t n = pread_full(fd, buf, sizeof(buf), 0);
    if (n < 0)
        return (int)n;
    const char *nl = memchr(buf, '\n', (size_t)n);
    size_t len;
    if (nl)
        len = (size_t)(nl - buf) + 1;
    else if ((size_t)n == sizeof(buf))
        len = sizeof(buf);
    else
        return LP_EAGAIN;
    out->len = (uint32_t)len;
    out->hash = XXH3_64bits(buf, len);
    return 0;
}

int lp_head_matches(int fd, const struct lp_head *want)
{
    char buf[LP_HEAD_MAX];
    if (want->len == 0 || want->len > sizeof(buf))
        return 0;
    ssize_t n = pread_full(fd, buf, want->len, 0);
    return n == (ssize_t)want->len && XXH3_64bits(buf, want->len) == want->hash;
}

int lp_tail_hash(int fd, uint64_t offset, uint64_t *out)
{
    char buf[LP_TAIL_WINDOW];
    size_t want = offset < LP_TAIL_WINDOW ? (size_t)offset : LP_TAIL_WINDOW;
    ssize_t n = pread_full(fd, buf, want, (off_t)(offset - want));
    if (n < 0)
        return (int)n;
    if ((size_t)n != want)
        return -ENODATA;
    *out = XXH3_64bits(buf, want);
    return 0;
}

int lp_head_read_final(int fd, struct lp_head *out)
{
    int rc = lp_head_read(fd, out);
    if (rc != LP_EAGAIN)
        return rc;
    char buf[LP_HEAD_MAX];
    ssize_t n = pread_full(fd, buf, sizeof(buf), 0);
    if (n < 0)
        return (int)n;
    if (n == 0)
        return LP_EAGAIN;
    out->len = (uint32_t)n;
    out->hash = XXH3_64bits(buf, (size_t)n);
    return 0;
}
