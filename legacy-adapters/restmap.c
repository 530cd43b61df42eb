#include "legacy-adapters/restmap.h"

#include "common/jsonw.h"
#include "common/mem.h"
#include "legacy-adapters/xrjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One piece of a template: literal bytes, or a placeholder. */
struct piece {
    const char *text; /* its bytes in restmap.text ("{2}" for a placeholder) */
    size_t len;
    unsigned param; /* 0: literal; else the placeholder {param} */
};

/*
 * Invariants: the pieces, in order, spell the template; no two literal
 * pieces are adjacent; every param is in 1..RESTMAP_MAX_PARAM and has its
 * bit in `used`; for a method without a body, `used` holds every bit from 1
 * to max_param. Nothing changes after restmap_parse(), so workers share a
 * map without locks.
 */
struct restmap {
    const char *method; /* static */
    int has_body;       /* POST, PUT, PATCH */
    uint64_t used;      /* bit N-1: the template holds {N} */
    unsigned nused;     /* how many distinct parameters it holds */
    unsigned max_param; /* the highest N, 0 when there is no placeholder */
    struct piece *pieces;
    size_t npieces;
    char *text; /* the template as written */
};

/* GET and DELETE carry no body: RFC 9110 (9.3.1, 9.3.5) gives one no
 * meaning there, and intermediaries may drop it. */
static const struct {
    const char *name;
    int has_body;
} methods[] = {
    {"GET", 0}, {"POST", 1}, {"PUT", 1}, {"PATCH", 1}, {"DELETE", 0},
};

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void set_error(struct xr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct xr_error *err, const char *fmt, ...)
{
    va_list ap;
    err->code = XR_FAULT_INVALID_PARAMS;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/* RFC 3986's unreserved characters are the only ones a path segment or a
 * query can carry as they are, whatever the service's router thinks of the
 * others. */
static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "{N}" with N in 1..RESTMAP_MAX_PARAM, written without leading zeros so
 * that one parameter has one spelling. Returns N, or 0. */
static unsigned param_number(const char *s, size_t len)
{
    unsigned n = 0;
    if (len == 0 || len > 2 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        n = n * 10 + (unsigned)(s[i] - '0');
    }
    return n <= RESTMAP_MAX_PARAM ? n : 0;
}

/*
 * Checks the literal character at s, which the template sends as it is:
 * RFC 3986's pchar, '/' and '?' (path and query), or a percent-encoding.
 * Returns how many bytes it takes (3 for "%XX"), or 0 after a message.
 */
static size_t literal_length(const char *s, char *err, size_t errlen)
{
    unsigned char c = (unsigned char)*s;

    if (is_unreserved(c) || strchr("!$&'()*+,;=:@/?", c) != NULL)
        return 1;
    if (c == '%') {
        if (is_hex(s[1]) && is_hex(s[2]))
            return 3;
        fail(err, errlen, "'%%' must start a percent-encoding such as %%2F");
        return 0;
    }
    if (c <= ' ' || c >= 0x7f)
        fail(err, errlen,
             "the template cannot hold blanks, control characters or non-ASCII bytes "
             "(percent-encode them)");
    else
        fail(err, errlen, "'%c' cannot appear in a URL path or query", c);
    return 0;
}

static void add_piece(struct restmap *m, const char *text, size_t len, unsigned param)
{
    struct piece *last = m->npieces > 0 ? &m->pieces[m->npieces - 1] : NULL;
    if (param == 0 && last != NULL && last->param == 0 && last->text + last->len == text) {
        last->len += len;
        return;
    }
    m->pieces[m->npieces++] = (struct piece){text, len, param};
}

/* Splits m->text into pieces. Returns 0, or -1 after a message. */
static int split_template(struct restmap *m, char *err, size_t errlen)
{
    const char *s = m->text;

    while (*s != '\0') {
        if (*s == '{') {
            size_t len = strcspn(s + 1, "{}");
            if (s[1 + len] != '}') {
                fail(err, errlen, "unbalanced '{'");
                return -1;
            }
            unsigned n = param_number(s + 1, len);
            if (n == 0) {
                fail(err, errlen, "'%.*s' is not a parameter number (expected {1} to {%d})",
                     (int)len + 2, s, RESTMAP_MAX_PARAM);
                return -1;
            }
            add_piece(m, s, len + 2, n);
            if ((m->used & ((uint64_t)1 << (n - 1))) == 0)
                m->nused++;
            m->used |= (uint64_t)1 << (n - 1);
            if (n > m->max_param)
                m->max_param = n;
            s += len + 2;
            continue;
        }
        if (*s == '}') {
            fail(err, errlen, "unbalanced '}'");
            return -1;
        }
        size_t len = literal_length(s, err, errlen);
        if (len == 0)
            return -1;
        add_piece(m, s, len, 0);
        s += len;
    }
    return 0;
}

int restmap_parse(const char *spec, struct restmap **out, char *err, size_t errlen)
{
    struct restmap *m = NULL;
    const char *colon = strchr(spec, ':');
    int rc = -1;

    if (colon == NULL) {
        fail(err, errlen, "expected METHOD:TEMPLATE, e.g. GET:/stock/{1}");
        goto out;
    }
    m = mem_calloc(1, sizeof(*m));
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strlen(methods[i].name) == (size_t)(colon - spec) &&
            memcmp(methods[i].name, spec, (size_t)(colon - spec)) == 0) {
            m->method = methods[i].name;
            m->has_body = methods[i].has_body;
        }
    }
    if (m->method == NULL) {
        fail(err, errlen, "unknown method '%.*s' (expected GET, POST, PUT, PATCH or DELETE)",
             (int)(colon - spec), spec);
        goto out;
    }
    if (colon[1] != '/') {
        fail(err, errlen, "the template must start with '/'");
        goto out;
    }
    m->text = mem_strdup(colon + 1);
    /* A piece takes at least one byte: the length bounds their number. */
    m->pieces = mem_calloc(strlen(m->text), sizeof(*m->pieces));
    if (split_template(m, err, errlen) < 0)
        goto out;
    /* Without a body every parameter must go into the target; a gap would
     * leave one out of every call, so the route could never be used. */
    if (!m->has_body && m->nused != m->max_param) {
        unsigned missing = 1;
        while (m->used & ((uint64_t)1 << (missing - 1)))
            missing++;
        fail(err, errlen,
             "%s sends no body, so the template must use every parameter from {1} to {%u}; "
             "{%u} is missing",
             m->method, m->max_param, missing);
        goto out;
    }
    *out = m;
    m = NULL;
    rc = 0;
out:
    restmap_free(m);
    return rc;
}

void restmap_free(struct restmap *m)
{
    if (m == NULL)
        return;
    free(m->pieces);
    free(m->text);
    free(m);
}

const char *restmap_method(const struct restmap *m)
{
    return m->method;
}

void restmap_append_base_path(struct buf *out, const char *base_path)
{
    size_t n = base_path ? strlen(base_path) : 0;

    while (n > 0 && base_path[n - 1] == '/')
        n--;
    if (n > 0 && base_path[0] != '/')
        buf_append_char(out, '/');
    buf_append(out, base_path, n);
}

void restmap_append_encoded(struct buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            buf_append_char(out, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(out, esc, sizeof(esc));
        }
    }
}

/* Parameter n (1-based) of params; the caller checked that it exists. */
static const struct xr_value *param_at(const struct xr_value *params, unsigned n)
{
    const struct xr_value *v = params->u.list.first;
    while (--n > 0)
        v = v->next;
    return v;
}

/* "a struct", "an array", "nil", "base64": for messages. */
static const char *kind_of(enum xr_type t)
{
    switch (t) {
    case XR_STRUCT:
        return "a struct";
    case XR_ARRAY:
        return "an array";
    default:
        return xr_type_name(t);
    }
}

/* Appends parameter n's text, percent-encoded. Scalars only: a struct has
 * no one spelling in a URL that every REST router would agree on. */
static int append_param(struct buf *out, const struct xr_value *v, unsigned n, struct xr_error *err)
{
    char text[32];
    size_t len;

    switch (v->type) {
    case XR_STRING:
    case XR_DATETIME:
        restmap_append_encoded(out, v->u.str.ptr, v->u.str.len);
        return 0;
    case XR_INT:
        len = (size_t)snprintf(text, sizeof(text), "%" PRId64, v->u.i);
        break;
    case XR_BOOL:
        len = (size_t)snprintf(text, sizeof(text), "%s", v->u.b ? "true" : "false");
        break;
    case XR_DOUBLE:
        if (!isfinite(v->u.d)) {
            set_error(err, "map: parameter %u is a double that is not finite (NaN or infinity)", n);
            return -1;
        }
        len = jsonw_format_double(text, v->u.d);
        break;
    default:
        set_error(err,
                  "map: parameter %u is %s; only strings, numbers, booleans and dates go into "
                  "a path",
                  n, kind_of(v->type));
        return -1;
    }
    restmap_append_encoded(out, text, len);
    return 0;
}

/* Where the path segment being written starts in out, and the last
 * parameter written into it (0: none). */
struct segment {
    size_t start;
    unsigned param;
};

/*
 * Called at the end of each path segment. A parameter that leaves its
 * segment empty, "." or ".." would address another resource: "" turns
 * DELETE /stock/{1} into DELETE /stock/, and dot-segments are removed
 * before routing (RFC 3986, 5.2.4), so /stock/.. is "/".
 */
static int is_dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

/* An encoded slash or backslash (%2F, %5C, either case): a service that
 * decodes before it routes sees a segment boundary there. */
static int is_encoded_separator(const char *s, size_t left)
{
    return left >= 3 && s[0] == '%' &&
           ((s[1] == '2' && (s[2] == 'F' || s[2] == 'f')) ||
            (s[1] == '5' && (s[2] == 'C' || s[2] == 'c')));
}

/* Whether the segment, split at encoded separators too, holds a "." or
 * ".." piece: "..%2Fadmin" is one segment to us but "../admin" to a
 * service that decodes %2F before it normalises the path. */
static int hides_dot_segment(const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || is_encoded_separator(s + i, len - i)) {
            if (is_dot_segment(s + start, i - start))
                return 1;
            if (i < len)
                i += 2;
            start = i + 1;
        }
    }
    return 0;
}

static int end_segment(const struct buf *out, struct segment *seg, struct xr_error *err)
{
    size_t len = out->len - seg->start;
    const char *s = len > 0 ? out->data + seg->start : "";

    if (seg->param != 0 && (len == 0 || hides_dot_segment(s, len))) {
        set_error(err,
                  "map: parameter %u makes the path segment '%.*s'; an empty, '.' or '..' "
                  "segment (or one hidden behind an encoded slash) would address another "
                  "resource",
                  seg->param, (int)len, s);
        return -1;
    }
    seg->param = 0;
    return 0;
}

/* Appends a literal piece, keeping track of where the path's segments end
 * and where the query begins. */
static int append_literal(struct buf *out, const struct piece *p, struct segment *seg,
                          int *in_query, struct xr_error *err)
{
    for (size_t i = 0; i < p->len; i++) {
        char c = p->text[i];
        if (!*in_query && (c == '/' || c == '?') && end_segment(out, seg, err) < 0)
            return -1;
        buf_append_char(out, c);
        if (c == '?')
            *in_query = 1;
        if (!*in_query && c == '/')
            seg->start = out->len;
    }
    return 0;
}

int restmap_write_target(const struct restmap *m, const char *base_path,
                         const struct xr_value *params, struct buf *out, struct xr_error *err)
{
    size_t count = params->u.list.count;
    struct segment seg = {out->len, 0};
    int in_query = 0;

    if (m->max_param > count) {
        set_error(err, "map: the call has %zu parameter%s, the template uses {%u}", count,
                  plural(count), m->max_param);
        return -1;
    }
    restmap_append_base_path(out, base_path);
    for (size_t i = 0; i < m->npieces; i++) {
        const struct piece *p = &m->pieces[i];
        if (p->param == 0) {
            if (append_literal(out, p, &seg, &in_query, err) < 0)
                return -1;
            continue;
        }
        if (append_param(out, param_at(params, p->param), p->param, err) < 0)
            return -1;
        if (!in_query)
            seg.param = p->param;
    }
    return in_query ? 0 : end_segment(out, &seg, err);
}

static int uses(const struct restmap *m, size_t n)
{
    return n <= RESTMAP_MAX_PARAM && (m->used & ((uint64_t)1 << (n - 1))) != 0;
}

int restmap_write_body(const struct restmap *m, const struct xr_value *params, struct buf *out,
                       struct xr_error *err)
{
    size_t count = params->u.list.count, left = 0, n = 0;
    char path[32];

    for (size_t i = 1; i <= count; i++)
        left += !uses(m, i);
    int several = left > 1;
    if (left == 0)
        return 0;
    if (!m->has_body) {
        set_error(err, "map: %s takes %u parameter%s (all in its template), the call has %zu",
                  m->method, m->nused, plural(m->nused), count);
        return -1;
    }
    if (several)
        buf_append_char(out, '[');
    for (const struct xr_value *v = params->u.list.first; v != NULL; v = v->next) {
        if (uses(m, ++n))
            continue;
        /* Named as the RPC contract names them, by their place in the call. */
        snprintf(path, sizeof(path), "params[%zu]", n - 1);
        if (xrjson_write_value(out, v, path, err) < 0)
            return -1;
        if (--left > 0)
            buf_append_char(out, ',');
    }
    if (several)
        buf_append_char(out, ']');
    return 0;
}
