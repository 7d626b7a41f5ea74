/* C library functions logpipe's library and daemon code must not call, each
 * with what to use instead (after Git's banned.h). Every target under core/,
 * config/, parsers/, outputs/, shipper/, aggregator/ and retention/ is built
 * with -include of this file (tests are not), after the system headers that
 * declare these, so a call is a compile error naming the replacement:
 *   strerror   lp_strerror(-errno) or lp_strerror(rc): one function for
 *              errno values and LP_E* codes (strerror(-LP_ECORRUPT) printed
 *              "Unknown error 10002")
 *   strtok     strtok_r (strtok keeps hidden state: not thread-safe)
 *   sprintf, vsprintf, strcpy, strcat, strncpy, strncat
 *              snprintf / vsnprintf / lp_buf (bounded, always terminated)
 *   gmtime, localtime, ctime, asctime
 *              gmtime_r / localtime_r / strftime (static buffers)
 *   strdup, strndup
 *              lp_xstrdup / lp_xstrndup (lp_alloc.h: abort on failure, one
 *              rule for NULL; ten private copies disagreed on it)
 *   malloc, calloc, realloc
 *              lp_xmalloc / lp_xcalloc / lp_xrealloc / LP_ALLOC_GROW
 *              (lp_alloc.h: one out-of-memory policy instead of a
 *              hand-written abort at each call; free stays free) */
#ifndef LP_BANNED_H
#define LP_BANNED_H

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LP_BANNED(func) sorry_##func##_is_banned_in_logpipe

#undef strerror
#define strerror(e) LP_BANNED(strerror__use_lp_strerror)
#undef strtok
#define strtok(s, d) LP_BANNED(strtok__use_strtok_r)
#undef sprintf
#define sprintf(...) LP_BANNED(sprintf__use_snprintf)
#undef vsprintf
#define vsprintf(...) LP_BANNED(vsprintf__use_vsnprintf)
#undef strcpy
#define strcpy(d, s) LP_BANNED(strcpy__use_snprintf)
#undef strcat
#define strcat(d, s) LP_BANNED(strcat__use_lp_buf)
#undef strncpy
#define strncpy(d, s, n) LP_BANNED(strncpy__use_snprintf)
#undef strncat
#define strncat(d, s, n) LP_BANNED(strncat__use_lp_buf)
#undef strdup
#define strdup(s) LP_BANNED(strdup__use_lp_xstrdup)
#undef strndup
#define strndup(s, n) LP_BANNED(strndup__use_lp_xstrndup)
#undef malloc
#define malloc(n) LP_BANNED(malloc__use_lp_xmalloc)
#undef calloc
#define calloc(n, s) LP_BANNED(calloc__use_lp_xcalloc)
#undef realloc
#define realloc(p, n) LP_BANNED(realloc__use_lp_xrealloc)
#undef gmtime
#define gmtime(t) LP_BANNED(gmtime__use_gmtime_r)
#undef localtime
#define localtime(t) LP_BANNED(localtime__use_localtime_r)
#undef ctime
#define ctime(t) LP_BANNED(ctime__use_strftime)
#undef asctime
#define asctime(t) LP_BANNED(asctime__use_strftime)

#endif
