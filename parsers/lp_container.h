/* Container runtime log formats: one physical line of a Docker json-file or
 * CRI log file → timestamp, stream, partial flag and message bytes.
 * Pure functions; any thread. */
#ifndef LP_CONTAINER_H
#define LP_CONTAINER_H

#include <stddef.h>
#include <stdint.h>

struct lp_buf;

enum lp_cfmt { LP_CFMT_AUTO = 0, LP_CFMT_DOCKER, LP_CFMT_CRI, LP_CFMT_RAW };
enum lp_stream { LP_STREAM_STDOUT = 0, LP_STREAM_STDERR, LP_STREAM_NONE, LP_STREAM_COUNT };

/* "auto", "docker", "cri", "raw" → format; LP_EINVAL when unknown. */
int lp_cfmt_parse(const char *name);
const char *lp_cfmt_name(enum lp_cfmt f);
const char *lp_stream_name(enum lp_stream s); /* NULL for LP_STREAM_NONE */

/* One decoded physical line. msg points into the input line (CRI, raw) or
 * into the caller's scratch buffer (Docker); valid until either changes. */
struct lp_cline {
    int64_t ts_ns; /* runtime timestamp; 0 when the line has none */
    enum lp_stream stream;
    int partial; /* 1: more chunks of this message follow */
    const char *msg;
    size_t len;
};

/* Guesses the format from a file's first line (without its newline):
 * a JSON object with "log" → docker, "<RFC3339> stdout|stderr P|F " → cri,
 * anything else → raw. */
enum lp_cfmt lp_cfmt_detect(const char *line, size_t n);
/* The same for a first line cut short (longer than the reader's line cap):
 * the JSON cannot be whole, so Docker is told by dockerd's envelope
 * opening ({"log":"); CRI by its prefix as above. */
enum lp_cfmt lp_cfmt_detect_cut(const char *line, size_t n);

/* Decodes one line (without its newline). Docker: {"log":..,"stream":..,
 * "time":..}; a log value without a trailing "\n" is a partial chunk (the
 * 16 KiB split), the trailing "\n" is removed otherwise. CRI:
 * "<time> <stream> <P|F> <message>". raw: the line as is.
 * Returns 0, or LP_ECORRUPT with a reason in why (the caller keeps the raw
 * line as the message and flags it: nothing is dropped). */
int lp_cline_decode(enum lp_cfmt fmt, const char *line, size_t n, struct lp_buf *scratch,
                    struct lp_cline *out, char *why, size_t whylen);

/* The general Docker decoder (jansson) that lp_cline_decode falls back to
 * when dockerd's fixed layout does not match; exposed for differential
 * tests of the fast path. */
int lp_docker_decode_slow(const char *line, size_t n, struct lp_buf *scratch, struct lp_cline *out,
                          char *why, size_t whylen);

#endif
