/*
 * xrdiff: comparing two XML-RPC answers and naming where they differ.
 *
 * The walk goes down both trees at once, led by the legacy's. On the way
 * it keeps the path it took as a stack of steps (struct seg): a member's
 * name points into the tree, an element is its index. Nothing is formatted
 * until a difference is found: each collected difference costs one
 * allocation, its text (and the array of texts grows by doubling), and an
 * equal answer whose structs are small costs none.
 *
 * Structs are matched by name through an index of the candidate's members
 * sorted by name (struct entry), looked up by binary search for each of the
 * legacy's members: n log n where pairing by linear search would be n^2 on
 * the 10,000-member structs some legacies return. The indexes of the
 * structs on the current path share one stack (struct ctx's idx), which
 * starts in a buffer on the C stack and moves to the heap only for big
 * structs; entries are addressed by offset, since the stack may move.
 *
 * Ignore paths are matched as text, step by step against the path stack,
 * at each member and element. Once no ignore path continues below a node
 * (none has the node's path as a prefix), its subtree is walked without
 * asking, so a large answer pays for ignore paths only near the places they
 * name.
 */
#include "legacy-adapters/xrdiff.h"

#include "common/mem.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One step of the path from the root to the value being compared. */
enum seg_kind {
    SEG_ROOT = 0, /* "result" or "fault": name */
    SEG_MEMBER,   /* a struct member: name, len (the tree's bytes) */
    SEG_INDEX,    /* an array element: index */
};

struct seg {
    enum seg_kind kind;
    const char *name; /* SEG_ROOT, SEG_MEMBER; may be NULL when len is 0 */
    size_t len;
    size_t index; /* SEG_INDEX; for SEG_ROOT, 1 for a fault and 0 for a result */
};

/* One of the candidate's struct members in a struct's index. The index is
 * sorted by (name, pos), so the members of one name form a run in document
 * order; the run's first entry counts in `taken` how many of the run the
 * legacy's members have paired with so far. */
struct entry {
    const struct xr_value *m;
    size_t pos;   /* place in the candidate's struct, from 0 */
    size_t taken; /* meaningful in a run's first entry only */
};

/* Entries of index that fit without touching the heap. */
#define INLINE_ENTRIES 64

struct ctx {
    double tolerance; /* >= 0 */
    const char *const *ignore;
    size_t max_paths; /* > 0 */
    size_t paths_cap; /* room in res->paths */
    struct xrdiff_result *res;
    /* The index stack: idx[0..idx_len) holds the indexes of the structs
     * on the current path, outermost first. idx is inline_idx or heap. */
    struct entry *idx;
    size_t idx_len;
    size_t idx_cap;
    struct entry inline_idx[INLINE_ENTRIES];
    struct seg seg[XRDIFF_MAX_DEPTH + 1]; /* seg[0..depth] is the path */
};

/* ------------------------------------------------------------------------ */
/* Path syntax (xrdiff.h), shared by the reader of ignore paths and the    */
/* writer of reported ones.                                                 */

/* Bytes a member name may hold and still be written `.name`. Bytes from
 * 0x80 up are UTF-8 letters and syntax never uses them. */
static int is_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c >= 0x80;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum step_kind {
    STEP_NAME = 0, /* `.name` or `["name"]` */
    STEP_INDEX,    /* `[N]` */
    STEP_ANY,      /* `[]` */
};

/* One step read from an ignore path. A quoted name is kept as written,
 * escapes and all (they are checked, not decoded: see quoted_is()). */
struct step {
    enum step_kind kind;
    const char *text; /* STEP_NAME: the name's text inside the path */
    size_t len;
    int quoted;
    size_t index; /* STEP_INDEX */
};

/*
 * Reads the root at *pp: `result` or `fault`. Returns 0 and advances *pp,
 * setting *is_fault, or -1 when the path starts with anything else.
 */
static int read_root(const char **pp, int *is_fault)
{
    const char *p = *pp;
    while (is_plain((unsigned char)*p))
        p++;
    size_t len = (size_t)(p - *pp);
    if (len == 6 && memcmp(*pp, "result", 6) == 0)
        *is_fault = 0;
    else if (len == 5 && memcmp(*pp, "fault", 5) == 0)
        *is_fault = 1;
    else
        return -1;
    *pp = p;
    return 0;
}

/*
 * Reads one step at *pp into *st. Returns 1 and advances *pp past it, 0 at
 * the end of the path, or -1 with a static reason in *why and *pp at the
 * offending byte.
 */
static int read_step(const char **pp, struct step *st, const char **why)
{
    const char *p = *pp;

    memset(st, 0, sizeof(*st));
    if (*p == '\0')
        return 0;
    if (*p == '.') {
        const char *start = ++p;
        while (is_plain((unsigned char)*p))
            p++;
        if (p == start) {
            *why = "expected a member name after '.' (quote others: [\"name\"])";
            goto bad;
        }
        st->kind = STEP_NAME;
        st->text = start;
        st->len = (size_t)(p - start);
        *pp = p;
        return 1;
    }
    if (*p != '[') {
        *why = "expected '.' or '['";
        goto bad;
    }
    p++;
    if (*p == ']') {
        st->kind = STEP_ANY;
    } else if (*p >= '0' && *p <= '9') {
        size_t n = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            size_t d = (size_t)(*p - '0');
            if (n > (SIZE_MAX - d) / 10) {
                *why = "index too large";
                goto bad;
            }
            n = n * 10 + d;
        }
        st->kind = STEP_INDEX;
        st->index = n;
    } else if (*p == '"') {
        const char *start = ++p;
        while (*p != '"') {
            if (*p == '\0') {
                *why = "unterminated quoted name";
                goto bad;
            }
            if (*p != '\\') {
                p++;
                continue;
            }
            if (p[1] == '"' || p[1] == '\\') {
                p += 2;
            } else if (p[1] == 'x' && hex_value((unsigned char)p[2]) >= 0 &&
                       hex_value((unsigned char)p[3]) >= 0) {
                p += 4;
            } else {
                *why = "unknown escape (use \\\", \\\\ or \\xHH)";
                goto bad;
            }
        }
        st->kind = STEP_NAME;
        st->text = start;
        st->len = (size_t)(p - start);
        st->quoted = 1;
        p++;
    } else {
        *why = "expected ']', an index or a quoted name after '['";
        goto bad;
    }
    if (*p != ']') {
        *why = "expected ']'";
        goto bad;
    }
    *pp = p + 1;
    return 1;
bad:
    *pp = p;
    return -1;
}

/* Whether the quoted name q (qlen bytes as written, escapes already
 * checked by read_step()) spells the name's bytes. */
static int quoted_is(const char *q, size_t qlen, const char *name, size_t len)
{
    const char *end = q + qlen;
    size_t i = 0;

    while (q < end) {
        unsigned char c = (unsigned char)*q++;
        if (c == '\\') {
            c = (unsigned char)*q++;
            if (c == 'x') {
                c = (unsigned char)(hex_value((unsigned char)q[0]) * 16 +
                                    hex_value((unsigned char)q[1]));
                q += 2;
            }
        }
        if (i == len || (unsigned char)name[i] != c)
            return 0;
        i++;
    }
    return i == len;
}

static int step_names(const struct step *st, const char *name, size_t len)
{
    if (st->kind != STEP_NAME)
        return 0;
    if (st->quoted)
        return quoted_is(st->text, st->len, name, len);
    return st->len == len && memcmp(st->text, name, len) == 0;
}

static int step_matches(const struct step *st, const struct seg *s)
{
    switch (s->kind) {
    case SEG_MEMBER:
        return step_names(st, s->name, s->len);
    case SEG_INDEX:
        return st->kind == STEP_ANY || (st->kind == STEP_INDEX && st->index == s->index);
    case SEG_ROOT:
        break;
    }
    return 0;
}

enum match {
    MATCH_NONE = 0, /* the ignore path leads elsewhere */
    MATCH_PREFIX,   /* it goes on below this node */
    MATCH_FULL,     /* it names this node */
};

/* How ignore path `path` relates to the node at seg[0..depth]. A path
 * that does not parse matches nothing. */
static enum match match_path(const char *path, const struct seg *seg, size_t depth)
{
    const char *p = path, *why = NULL;
    struct step st;
    int is_fault;

    if (read_root(&p, &is_fault) < 0 || (size_t)is_fault != seg[0].index)
        return MATCH_NONE;
    for (size_t i = 1; i <= depth; i++)
        if (read_step(&p, &st, &why) <= 0 || !step_matches(&st, &seg[i]))
            return MATCH_NONE;
    return *p == '\0' ? MATCH_FULL : MATCH_PREFIX;
}

/* ------------------------------------------------------------------------ */
/* Reporting                                                                */

/* Writes to p when it is set, else only counts: each path is measured,
 * allocated, then written. */
struct out {
    char *p;
    size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->p != NULL && n > 0)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_name(struct out *o, const char *name, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len && is_plain((unsigned char)name[i]); i++)
        ;
    if (len > 0 && i == len) {
        put(o, ".", 1);
        put(o, name, len);
        return;
    }
    put(o, "[\"", 2);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(o, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            put(o, esc, 4);
        } else {
            put(o, name + i, 1);
        }
    }
    put(o, "\"]", 2);
}

static void put_entry(struct out *o, const struct seg *seg, size_t depth, const char *what)
{
    char num[32];

    for (size_t i = 0; i <= depth; i++) {
        switch (seg[i].kind) {
        case SEG_ROOT:
            put(o, seg[i].name, seg[i].len);
            break;
        case SEG_MEMBER:
            put_name(o, seg[i].name, seg[i].len);
            break;
        case SEG_INDEX: {
            int n = snprintf(num, sizeof(num), "[%zu]", seg[i].index);
            put(o, num, (size_t)n);
            break;
        }
        }
    }
    put(o, ": ", 2);
    put(o, what, strlen(what));
}

/* Counts one difference at seg[0..depth] and, below the cap, collects it. */
static void report(struct ctx *c, size_t depth, const char *what)
{
    struct xrdiff_result *res = c->res;
    struct out o = {NULL, 0};

    res->count++;
    if (res->npaths >= c->max_paths)
        return;
    if (res->npaths == c->paths_cap) {
        size_t cap = c->paths_cap == 0 ? 4 : c->paths_cap * 2;
        if (cap > c->max_paths || cap < c->paths_cap)
            cap = c->max_paths;
        res->paths = mem_realloc(res->paths, cap * sizeof(*res->paths));
        c->paths_cap = cap;
    }
    put_entry(&o, c->seg, depth, what);
    o.p = mem_alloc(o.len + 1);
    o.len = 0;
    put_entry(&o, c->seg, depth, what);
    o.p[o.len] = '\0';
    res->paths[res->npaths++] = o.p;
}

/*
 * Decides whether the node at seg[0..depth] is compared at all. `live`
 * says whether any ignore path may still apply here (one matched the
 * parent's path as a prefix). Returns 0 when an ignore path names the
 * node; else 1, with *child_live set when one goes on below it.
 */
static int enter(const struct ctx *c, size_t depth, int live, int *child_live)
{
    *child_live = 0;
    if (!live)
        return 1;
    for (const char *const *p = c->ignore; *p != NULL; p++) {
        enum match m = match_path(*p, c->seg, depth);
        if (m == MATCH_FULL)
            return 0;
        if (m == MATCH_PREFIX)
            *child_live = 1;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Comparing                                                                */

static const char *type_name(const struct xr_value *v)
{
    return v == NULL ? "none" : xr_type_name(v->type);
}

/* The rule in xrdiff.h: IEEE equality first (so -0.0 == 0.0 and an
 * infinity equals itself), NaN equal to NaN, then the tolerance scaled by
 * the larger magnitude but never below 1. */
static int doubles_equal(double a, double b, double tolerance)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return 1;
    if (isinf(a) || isinf(b) || tolerance == 0)
        return 0;
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    if (scale < 1)
        scale = 1;
    return fabs(a - b) <= tolerance * scale;
}

static int bytes_equal(const struct xr_value *a, const struct xr_value *b)
{
    return a->u.str.len == b->u.str.len &&
           (a->u.str.len == 0 || memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0);
}

static int name_cmp(const struct xr_value *a, const struct xr_value *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int d = n > 0 ? memcmp(a->name, b->name, n) : 0;
    if (d != 0)
        return d;
    return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static int by_name_then_pos(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    int d = name_cmp(a->m, b->m);
    if (d != 0)
        return d;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static int by_pos(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* Makes room for n more entries on the index stack and returns the
 * offset of the first. Pop by setting idx_len back to it. */
static size_t index_push(struct ctx *c, size_t n)
{
    size_t base = c->idx_len;

    if (n > c->idx_cap - base) {
        size_t cap = c->idx_cap * 2 > base + n ? c->idx_cap * 2 : base + n;
        if (c->idx == c->inline_idx) {
            struct entry *heap = mem_alloc(cap * sizeof(*heap));
            memcpy(heap, c->inline_idx, base * sizeof(*heap));
            c->idx = heap;
        } else {
            c->idx = mem_realloc(c->idx, cap * sizeof(*c->idx));
        }
        c->idx_cap = cap;
    }
    c->idx_len += n;
    return base;
}

/* The candidate's member that pairs with the legacy's member m: the next
 * unpaired one of the same name in the index e[0..n), or NULL. */
static const struct xr_value *take_partner(struct entry *e, size_t n, const struct xr_value *m)
{
    size_t lo = 0, hi = n;

    while (lo < hi) { /* the first entry whose name is not below m's */
        size_t mid = lo + (hi - lo) / 2;
        if (name_cmp(e[mid].m, m) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n || name_cmp(e[lo].m, m) != 0)
        return NULL;
    size_t k = e[lo].taken++;
    if (k >= n - lo || name_cmp(e[lo + k].m, m) != 0)
        return NULL;
    return e[lo + k].m;
}

static void compare_value(struct ctx *c, const struct xr_value *l, const struct xr_value *r,
                          size_t depth, int live);

static void set_member(struct ctx *c, size_t depth, const struct xr_value *m)
{
    c->seg[depth].kind = SEG_MEMBER;
    c->seg[depth].name = m->name;
    c->seg[depth].len = m->name_len;
}

static void compare_struct(struct ctx *c, const struct xr_value *l, const struct xr_value *r,
                           size_t depth, int live)
{
    size_t n = r->u.list.count, base = index_push(c, n), unpaired = 0;
    const struct xr_value *m;
    int child_live;

    n = 0;
    for (m = r->u.list.first; m != NULL && n < r->u.list.count; m = m->next, n++) {
        struct entry *e = &c->idx[base + n];
        e->m = m;
        e->pos = n;
        e->taken = 0;
    }
    qsort(c->idx + base, n, sizeof(struct entry), by_name_then_pos);

    for (m = l->u.list.first; m != NULL; m = m->next) {
        /* c->idx is read afresh each time: comparing a member's value may
         * push nested indexes and move the stack. */
        const struct xr_value *partner = take_partner(c->idx + base, n, m);
        set_member(c, depth + 1, m);
        if (!enter(c, depth + 1, live, &child_live))
            continue;
        if (partner == NULL)
            report(c, depth + 1, "missing in candidate");
        else
            compare_value(c, m, partner, depth + 1, child_live);
    }

    /* What no legacy member took: past `taken` in each run. Gather those
     * entries at the front (the index is done with) and list them in the
     * candidate's order. */
    struct entry *e = c->idx + base;
    for (size_t i = 0; i < n;) {
        const struct xr_value *head = e[i].m;
        size_t start = i, taken = e[i].taken;
        for (; i < n && name_cmp(e[i].m, head) == 0; i++)
            if (i - start >= taken)
                e[unpaired++] = e[i];
    }
    qsort(e, unpaired, sizeof(struct entry), by_pos);
    for (size_t i = 0; i < unpaired; i++) {
        set_member(c, depth + 1, e[i].m);
        if (enter(c, depth + 1, live, &child_live))
            report(c, depth + 1, "only in candidate");
    }
    c->idx_len = base;
}

static void compare_array(struct ctx *c, const struct xr_value *l, const struct xr_value *r,
                          size_t depth, int live)
{
    const struct xr_value *a = l->u.list.first, *b = r->u.list.first;
    int child_live;

    if (l->u.list.count != r->u.list.count) {
        char what[64];
        snprintf(what, sizeof(what), "length %zu vs %zu", l->u.list.count, r->u.list.count);
        report(c, depth, what);
    }
    for (size_t i = 0; a != NULL && b != NULL; a = a->next, b = b->next, i++) {
        c->seg[depth + 1].kind = SEG_INDEX;
        c->seg[depth + 1].index = i;
        if (enter(c, depth + 1, live, &child_live))
            compare_value(c, a, b, depth + 1, child_live);
    }
}

/* Compares the values at seg[0..depth], which ignore paths have let
 * through; `live` is enter()'s child_live for them. */
static void compare_value(struct ctx *c, const struct xr_value *l, const struct xr_value *r,
                          size_t depth, int live)
{
    char what[96];
    int same = 1;

    if (l == NULL || r == NULL || l->type != r->type) {
        if (l == NULL && r == NULL)
            return;
        snprintf(what, sizeof(what), "type %s vs %s", type_name(l), type_name(r));
        report(c, depth, what);
        return;
    }
    switch (l->type) {
    case XR_INT: /* <int>, <i4> and <i8> alike: the parser keeps 64 bits */
        same = l->u.i == r->u.i;
        break;
    case XR_BOOL:
        same = l->u.b == r->u.b;
        break;
    case XR_DOUBLE:
        same = doubles_equal(l->u.d, r->u.d, c->tolerance);
        break;
    case XR_STRING:
    case XR_DATETIME: /* the text as sent: see xrdiff.h */
    case XR_BASE64:   /* decoded bytes */
        same = bytes_equal(l, r);
        break;
    case XR_NIL:
    case XR_NONE:
        break;
    case XR_ARRAY:
    case XR_STRUCT:
        if (depth >= XRDIFF_MAX_DEPTH) {
            snprintf(what, sizeof(what), "deeper than %d levels, not compared", XRDIFF_MAX_DEPTH);
            report(c, depth, what);
        } else if (l->type == XR_ARRAY) {
            compare_array(c, l, r, depth, live);
        } else {
            compare_struct(c, l, r, depth, live);
        }
        break;
    }
    if (!same)
        report(c, depth, "value differs");
}

static void set_root(struct ctx *c, int is_fault)
{
    c->seg[0].kind = SEG_ROOT;
    c->seg[0].name = is_fault ? "fault" : "result";
    c->seg[0].len = is_fault ? 5 : 6;
    c->seg[0].index = (size_t)is_fault;
}

/* A fault's two members, at fault.faultCode and fault.faultString. */
static void compare_faults(struct ctx *c, const struct xr_response *l, const struct xr_response *r,
                           int live)
{
    int child_live;

    c->seg[1].kind = SEG_MEMBER;
    c->seg[1].name = "faultCode";
    c->seg[1].len = 9;
    if (enter(c, 1, live, &child_live) && l->fault_code != r->fault_code)
        report(c, 1, "value differs");
    c->seg[1].name = "faultString";
    c->seg[1].len = 11;
    if (enter(c, 1, live, &child_live) &&
        (l->fault_string_len != r->fault_string_len ||
         (l->fault_string_len > 0 &&
          memcmp(l->fault_string, r->fault_string, l->fault_string_len) != 0)))
        report(c, 1, "value differs");
}

int xrdiff_compare(const struct xr_response *legacy, const struct xr_response *candidate,
                   const struct xrdiff_options *opt, struct xrdiff_result *res)
{
    struct ctx c;
    int live, child_live;

    memset(res, 0, sizeof(*res));
    c.tolerance = 0;
    c.ignore = NULL;
    c.max_paths = XRDIFF_DEFAULT_MAX_PATHS;
    if (opt != NULL) {
        if (opt->tolerance > 0) /* false for NaN too */
            c.tolerance = opt->tolerance;
        c.ignore = opt->ignore;
        if (opt->max_paths > 0)
            c.max_paths = opt->max_paths;
    }
    c.paths_cap = 0;
    c.res = res;
    c.idx = c.inline_idx;
    c.idx_len = 0;
    c.idx_cap = INLINE_ENTRIES;
    live = c.ignore != NULL && c.ignore[0] != NULL;

    set_root(&c, legacy->is_fault);
    if (legacy->is_fault != candidate->is_fault) /* never ignored: see xrdiff.h */
        report(&c, 0, legacy->is_fault ? "fault vs result" : "result vs fault");
    else if (!enter(&c, 0, live, &child_live))
        ; /* the whole answer is ignored */
    else if (legacy->is_fault)
        compare_faults(&c, legacy, candidate, child_live);
    else
        compare_value(&c, legacy->result, candidate->result, 0, child_live);

    if (c.idx != c.inline_idx)
        free(c.idx);
    return res->count > 0 ? 1 : 0;
}

void xrdiff_result_dispose(struct xrdiff_result *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->npaths; i++)
        free(res->paths[i]);
    free(res->paths);
    res->paths = NULL;
    res->npaths = 0;
    res->count = 0;
}

static void fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

int xrdiff_check_path(const char *path, char *why, size_t whylen)
{
    const char *p = path, *reason = NULL;
    struct step st;
    size_t nsteps = 0;
    int is_fault, rc;

    if (path == NULL || *path == '\0') {
        fail(why, whylen, "empty path");
        return -1;
    }
    if (read_root(&p, &is_fault) < 0) {
        fail(why, whylen, "'%s': a path starts with result or fault", path);
        return -1;
    }
    while ((rc = read_step(&p, &st, &reason)) > 0) {
        nsteps++;
        if (is_fault && (nsteps > 1 || !(step_names(&st, "faultCode", 9) ||
                                         step_names(&st, "faultString", 11)))) {
            fail(why, whylen,
                 "'%s': a fault's paths are fault, fault.faultCode and fault.faultString", path);
            return -1;
        }
    }
    if (rc < 0) {
        fail(why, whylen, "'%s': %s at offset %zu", path, reason, (size_t)(p - path));
        return -1;
    }
    return 0;
}
