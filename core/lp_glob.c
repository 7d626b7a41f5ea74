/* Glob intersection by breadth-first search over the product of the
 * patterns' positions: a state is one position per pattern; an edge either
 * steps one pattern over a '*' without consuming (epsilon) or consumes one
 * character that every pattern accepts at its position. Characters are
 * grouped by how every token treats them, so each group is tried once. */
#include "lp_glob.h"
#include "lp_error.h"
#include "lp_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 512
#define MAX_STATES 100000

struct tok {
    int star;        /* 1: '*' (not '/'), 2: '**' (anything) */
    uint8_t set[32]; /* bytes matched (not for stars) */
};

struct pat {
    struct tok *t;
    size_t n;
};

static void set_add(uint8_t *s, unsigned c)
{
    s[c >> 3] |= (uint8_t)(1u << (c & 7));
}

static int set_has(const uint8_t *s, unsigned c)
{
    return (s[c >> 3] >> (c & 7)) & 1;
}

/* Parses a class starting after '['; returns the index after ']' or 0 when
 * the bracket is not a class (then fnmatch takes '[' literally). */
static size_t parse_class(const unsigned char *p, size_t i, uint8_t *set)
{
    uint8_t s[32] = {0};
    int neg = 0;
    if (p[i] == '!' || p[i] == '^') {
        neg = 1;
        i++;
    }
    int first = 1;
    while (p[i] && (first || p[i] != ']')) {
        unsigned lo = p[i];
        if (lo == '\\' && p[i + 1])
            lo = p[++i];
        i++;
        unsigned hi = lo;
        if (p[i] == '-' && p[i + 1] && p[i + 1] != ']') {
            hi = p[i + 1];
            if (hi == '\\' && p[i + 2]) {
                hi = p[i + 2];
                i++;
            }
            i += 2;
        }
        for (unsigned c = lo; c <= hi && c < 256; c++)
            set_add(s, c);
        first = 0;
    }
    if (p[i] != ']')
        return 0;
    for (int b = 0; b < 32; b++)
        set[b] = neg ? (uint8_t)~s[b] : s[b];
    set[0] &= (uint8_t)~1u; /* never NUL */
    return i + 1;
}

static int compile(const char *pattern, struct pat *out)
{
    const unsigned char *p = (const unsigned char *)pattern;
    size_t len = strlen(pattern);
    if (len > MAX_TOKENS)
        return LP_ETOOBIG;
    out->t = lp_xcalloc(len + 1, sizeof(*out->t));
    out->n = 0;
    for (size_t i = 0; p[i];) {
        struct tok *t = &out->t[out->n];
        if (p[i] == '*') {
            int two = p[i + 1] == '*';
            i += two ? 2 : 1;
            while (p[i] == '*')
                i++;
            if (out->n && out->t[out->n - 1].star) {
                if (two)
                    out->t[out->n - 1].star = 2;
                continue;
            }
            t->star = two ? 2 : 1;
        } else if (p[i] == '?') {
            memset(t->set, 0xff, sizeof(t->set));
            t->set[0] &= (uint8_t)~1u;
            t->set['/' >> 3] &= (uint8_t) ~(1u << ('/' & 7));
            i++;
        } else if (p[i] == '[' && parse_class(p, i + 1, t->set)) {
            i = parse_class(p, i + 1, t->set);
            t->set['/' >> 3] &= (uint8_t) ~(1u << ('/' & 7));
        } else {
            if (p[i] == '\\' && p[i + 1])
                i++;
            set_add(t->set, p[i]);
            i++;
        }
        out->n++;
    }
    return 0;
}

struct state {
    uint16_t pos[LP_GLOB_MAX_PATTERNS];
    uint32_t parent;
    int ch; /* consumed to get here, -1 for epsilon / start */
};

struct search {
    struct state *st;
    size_t n, cap;
    uint32_t *table; /* open addressing: index + 1 */
    size_t table_cap;
    size_t k;
};

static uint64_t hash_pos(const uint16_t *pos, size_t k)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < k; i++) {
        h ^= pos[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* Adds a state unless seen; returns 1 when added, 0 when seen, -1 when full. */
static int add_state(struct search *s, const uint16_t *pos, uint32_t parent, int ch)
{
    size_t mask = s->table_cap - 1;
    for (size_t h = hash_pos(pos, s->k) & mask;; h = (h + 1) & mask) {
        uint32_t v = s->table[h];
        if (!v)
            break;
        if (memcmp(s->st[v - 1].pos, pos, s->k * sizeof(*pos)) == 0)
            return 0;
    }
    if (s->n >= MAX_STATES)
        return LP_ETOOBIG;
    LP_ALLOC_GROW(s->st, s->n + 1, s->cap, 1024);
    if ((s->n + 1) * 2 > s->table_cap) {
        size_t nc = s->table_cap * 2;
        uint32_t *nt = lp_xcalloc(nc, sizeof(*nt));
        for (size_t i = 0; i < s->n; i++) {
            size_t h = hash_pos(s->st[i].pos, s->k) & (nc - 1);
            while (nt[h])
                h = (h + 1) & (nc - 1);
            nt[h] = (uint32_t)i + 1;
        }
        free(s->table);
        s->table = nt;
        s->table_cap = nc;
    }
    struct state *n = &s->st[s->n];
    memset(n, 0, sizeof(*n));
    memcpy(n->pos, pos, s->k * sizeof(*pos));
    n->parent = parent;
    n->ch = ch;
    size_t h = hash_pos(pos, s->k) & (s->table_cap - 1);
    while (s->table[h])
        h = (h + 1) & (s->table_cap - 1);
    s->table[h] = (uint32_t)s->n + 1;
    s->n++;
    return 1;
}

/* One representative byte per class of bytes that every token treats alike
 * (prefers printable ones, for a readable witness). */
static size_t alphabet(const struct pat *p, size_t k, unsigned char *out)
{
    size_t n = 0;
    static const unsigned order_lo = 0x20;
    unsigned cand[255];
    size_t nc = 0;
    for (unsigned c = order_lo; c < 0x7f; c++)
        cand[nc++] = c;
    for (unsigned c = 1; c < 256; c++)
        if (c < order_lo || c >= 0x7f)
            cand[nc++] = c;
    uint64_t *sig = lp_xcalloc(nc, sizeof(*sig));
    for (size_t ci = 0; ci < nc; ci++) {
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < p[i].n; j++) {
                h ^= p[i].t[j].star ? 2u + (cand[ci] == '/')
                                    : (uint64_t)set_has(p[i].t[j].set, cand[ci]);
                h *= 1099511628211ULL;
            }
        sig[ci] = h;
        int dup = 0;
        for (size_t e = 0; e < ci && !dup; e++) {
            if (sig[e] != h)
                continue;
            /* equal hashes: compare exactly */
            int same = 1;
            for (size_t i = 0; i < k && same; i++)
                for (size_t j = 0; j < p[i].n && same; j++)
                    if (p[i].t[j].star
                            ? (cand[ci] == '/') != (cand[e] == '/')
                            : set_has(p[i].t[j].set, cand[ci]) != set_has(p[i].t[j].set, cand[e]))
                        same = 0;
            dup = same;
        }
        if (!dup)
            out[n++] = (unsigned char)cand[ci];
    }
    free(sig);
    return n;
}

int lp_glob_intersect(const char *const *patterns, size_t k, char *witness, size_t witness_len)
{
    if (k == 0 || k > LP_GLOB_MAX_PATTERNS)
        return LP_EINVAL;
    struct pat p[LP_GLOB_MAX_PATTERNS];
    memset(p, 0, sizeof(p));
    int rc = 0;
    for (size_t i = 0; i < k; i++)
        if (compile(patterns[i], &p[i]))
            rc = LP_ETOOBIG;
    unsigned char alpha[256];
    size_t na = rc ? 0 : alphabet(p, k, alpha);
    struct search s = {.k = k, .table_cap = 4096};
    s.table = lp_xcalloc(s.table_cap, sizeof(*s.table));
    uint16_t start[LP_GLOB_MAX_PATTERNS] = {0};
    if (!rc)
        add_state(&s, start, 0, -1);
    size_t found = SIZE_MAX;
    for (size_t q = 0; !rc && q < s.n && found == SIZE_MAX; q++) {
        uint16_t pos[LP_GLOB_MAX_PATTERNS];
        memcpy(pos, s.st[q].pos, sizeof(pos));
        int done = 1;
        for (size_t i = 0; i < k; i++)
            done &= pos[i] == p[i].n;
        if (done) {
            found = q;
            break;
        }
        /* epsilon: one pattern leaves a star */
        for (size_t i = 0; i < k && !rc; i++) {
            if (pos[i] < p[i].n && p[i].t[pos[i]].star) {
                uint16_t np[LP_GLOB_MAX_PATTERNS];
                memcpy(np, pos, sizeof(np));
                np[i]++;
                if (add_state(&s, np, (uint32_t)q, -1) < 0)
                    rc = LP_ETOOBIG;
            }
        }
        /* a character every pattern takes */
        for (size_t a = 0; a < na && !rc; a++) {
            uint16_t np[LP_GLOB_MAX_PATTERNS];
            int ok = 1;
            for (size_t i = 0; i < k && ok; i++) {
                if (pos[i] >= p[i].n)
                    ok = 0;
                else if (p[i].t[pos[i]].star == 2 || (p[i].t[pos[i]].star == 1 && alpha[a] != '/'))
                    np[i] = pos[i];
                else if (p[i].t[pos[i]].star)
                    ok = 0;
                else if (set_has(p[i].t[pos[i]].set, alpha[a]))
                    np[i] = (uint16_t)(pos[i] + 1);
                else
                    ok = 0;
            }
            if (ok && add_state(&s, np, (uint32_t)q, alpha[a]) < 0)
                rc = LP_ETOOBIG;
        }
    }
    if (!rc && found != SIZE_MAX) {
        rc = 1;
        if (witness && witness_len) {
            size_t len = 0;
            for (size_t q = found; q; q = s.st[q].parent)
                len += s.st[q].ch >= 0;
            size_t w = len < witness_len - 1 ? len : witness_len - 1;
            witness[w] = '\0';
            size_t at = len;
            for (size_t q = found; q; q = s.st[q].parent) {
                if (s.st[q].ch < 0)
                    continue;
                at--;
                if (at < w)
                    witness[at] = (char)s.st[q].ch;
            }
        }
    } else if (!rc && witness && witness_len) {
        witness[0] = '\0';
    }
    for (size_t i = 0; i < k; i++)
        free(p[i].t);
    free(s.st);
    free(s.table);
    return rc;
}

int lp_glob_match(const char *pattern, const char *s)
{
    struct pat p;
    if (compile(pattern, &p))
        return 0;
    /* the set of pattern positions alive after each character */
    size_t n = p.n;
    unsigned char *cur = lp_xcalloc(n + 1, 1), *nxt = lp_xcalloc(n + 1, 1);
    cur[0] = 1;
    for (const unsigned char *c = (const unsigned char *)s;; c++) {
        for (size_t i = 0; i < n; i++) /* epsilon: leave a star */
            if (cur[i] && p.t[i].star)
                cur[i + 1] = 1;
        if (!*c)
            break;
        memset(nxt, 0, n + 1);
        int any = 0;
        for (size_t i = 0; i < n; i++) {
            if (!cur[i])
                continue;
            if (p.t[i].star == 2 || (p.t[i].star == 1 && *c != '/'))
                nxt[i] = any = 1;
            else if (!p.t[i].star && set_has(p.t[i].set, *c))
                nxt[i + 1] = any = 1;
        }
        unsigned char *t = cur;
        cur = nxt;
        nxt = t;
        if (!any)
            break;
    }
    int ok = cur[n];
    free(cur);
    free(nxt);
    free(p.t);
    return ok;
}

int lp_glob_escape(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *s; s++) {
        int esc = *s == '*' || *s == '?' || *s == '[' || *s == ']' || *s == '\\';
        if (n + (size_t)esc + 2 > outlen)
            return LP_ETOOBIG;
        if (esc)
            out[n++] = '\\';
        out[n++] = *s;
    }
    if (n + 1 > outlen)
        return LP_ETOOBIG;
    out[n] = '\0';
    return (int)n;
}
