#include "legacy-adapters/xrjson.h"

#include "common/decimal.h"
#include "common/jsonw.h"
#include "common/utf8.h"
#include "legacy-adapters/base64.h"

#include <math.h>
#include <sys/random.h>
#include <sys/types.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_DEPTH 64

/* What the root of a parsed document is called in messages (JSONPath). */
#define PARSE_ROOT "$"

#define APPEND_LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

/*
 * Where a value sits, as a chain of stack-allocated links from the value up
 * to the root. It costs nothing until a message needs it: only then is it
 * rendered, root first, as "params[1].price".
 */
struct path {
    const struct path *up;
    const char *name; /* root: the caller's path; member: its name */
    size_t name_len;
    size_t index; /* array element, when name is NULL */
};

static size_t path_render(const struct path *p, char *out, size_t cap)
{
    size_t n = 0;
    int w;

    if (p->up == NULL) {
        w = snprintf(out, cap, "%.*s", (int)p->name_len, p->name);
    } else {
        n = path_render(p->up, out, cap);
        if (n >= cap)
            return n;
        if (p->name != NULL)
            w = snprintf(out + n, cap - n, ".%.*s", (int)p->name_len, p->name);
        else
            w = snprintf(out + n, cap - n, "[%zu]", p->index);
    }
    return n + (w > 0 ? (size_t)w : 0);
}

/* Fills err with "PATH: message". */
static void path_error(struct xr_error *err, int code, const struct path *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void path_error(struct xr_error *err, int code, const struct path *at, const char *fmt, ...)
{
    char where[160];
    va_list ap;

    path_render(at, where, sizeof(where));
    err->code = code;
    int n = snprintf(err->message, sizeof(err->message), "%s: ", where);
    if (n < 0 || (size_t)n >= sizeof(err->message))
        return;
    va_start(ap, fmt);
    vsnprintf(err->message + n, sizeof(err->message) - (size_t)n, fmt, ap);
    va_end(ap);
}

static struct path path_member(const struct path *up, const char *name, size_t len)
{
    struct path p = {up, name ? name : "", name ? len : 0, 0};
    return p;
}

static struct path path_element(const struct path *up, size_t index)
{
    struct path p = {up, NULL, 0, index};
    return p;
}

/* ------------------------------------------------------------------------ */
/* XML-RPC -> JSON                                                          */

static int write_json(struct buf *out, const struct xr_value *v, const struct path *at,
                      struct xr_error *err);

static int write_double(struct buf *out, double d, const struct path *at, struct xr_error *err)
{
    if (jsonw_double(out, d) == 0)
        return 0;
    /* JSON has no NaN or infinities (RFC 8259, section 6), and writing
     * json-c's NaN/Infinity would hand the service invalid JSON. */
    path_error(err, XR_FAULT_INVALID_PARAMS, at, "%s has no JSON form",
               isnan(d) ? "NaN"
               : d > 0  ? "Infinity"
                        : "-Infinity");
    return -1;
}

static void write_tagged(struct buf *out, const char *key, const struct xr_value *v)
{
    buf_append_char(out, '{');
    jsonw_cstring(out, key);
    buf_append_char(out, ':');
    if (v->type == XR_BASE64) {
        /* The base64 alphabet needs no JSON escaping. */
        buf_append_char(out, '"');
        base64_encode(out, v->u.str.ptr, v->u.str.len);
        buf_append_char(out, '"');
    } else {
        jsonw_string(out, v->u.str.ptr, v->u.str.len);
    }
    buf_append_char(out, '}');
}

static int write_array(struct buf *out, const struct xr_value *v, const struct path *at,
                       struct xr_error *err)
{
    size_t i = 0;

    buf_append_char(out, '[');
    for (const struct xr_value *c = v->u.list.first; c != NULL; c = c->next, i++) {
        struct path here = path_element(at, i);
        if (i > 0)
            buf_append_char(out, ',');
        if (write_json(out, c, &here, err) < 0)
            return -1;
    }
    buf_append_char(out, ']');
    return 0;
}

static int write_object(struct buf *out, const struct xr_value *v, const struct path *at,
                        struct xr_error *err)
{
    buf_append_char(out, '{');
    for (const struct xr_value *m = v->u.list.first; m != NULL; m = m->next) {
        struct path here = path_member(at, m->name, m->name_len);
        if (m != v->u.list.first)
            buf_append_char(out, ',');
        jsonw_string(out, here.name, here.name_len);
        buf_append_char(out, ':');
        if (write_json(out, m, &here, err) < 0)
            return -1;
    }
    buf_append_char(out, '}');
    return 0;
}

/* Recursion is bounded by the depth limits the tree was parsed under. */
static int write_json(struct buf *out, const struct xr_value *v, const struct path *at,
                      struct xr_error *err)
{
    switch (v ? v->type : XR_NIL) { /* no value is null, as xr_write_value writes <nil/> */
    case XR_INT:
        jsonw_i64(out, v->u.i);
        return 0;
    case XR_BOOL:
        if (v->u.b)
            APPEND_LIT(out, "true");
        else
            APPEND_LIT(out, "false");
        return 0;
    case XR_STRING:
        jsonw_string(out, v->u.str.ptr, v->u.str.len);
        return 0;
    case XR_DOUBLE:
        return write_double(out, v->u.d, at, err);
    case XR_DATETIME:
        write_tagged(out, "$datetime", v);
        return 0;
    case XR_BASE64:
        write_tagged(out, "$base64", v);
        return 0;
    case XR_ARRAY:
        return write_array(out, v, at, err);
    case XR_STRUCT:
        return write_object(out, v, at, err);
    case XR_NIL:
    case XR_NONE:
        break;
    }
    APPEND_LIT(out, "null");
    return 0;
}

int xrjson_write_value(struct buf *out, const struct xr_value *v, const char *path,
                       struct xr_error *err)
{
    struct path root = {NULL, path ? path : "", path ? strlen(path) : 0, 0};
    return write_json(out, v, &root, err);
}

/* ------------------------------------------------------------------------ */
/* JSON -> XML-RPC                                                          */

/*
 * The text is read in one pass straight into xr_value nodes in the caller's
 * arena: no intermediate tree, one node per value and one copy per string
 * (the caller may free the text before the tree, so nothing points into it).
 *
 * The grammar is RFC 8259's, read strictly: no comments, trailing commas,
 * single quotes, NaN or Infinity, no leading zeros or bare '.', no control
 * characters in strings and only the escapes of section 7, \u surrogates only
 * as pairs, UTF-8 only as RFC 3629 defines it, whitespace only the four
 * characters of section 2, and one value followed by nothing but whitespace.
 *
 * Three rules come from json-c, which did this job before, so that answers
 * read exactly as they did:
 *  - an object keeps one member per name: in the place of the first, with
 *    the value of the last;
 *  - an array or object one level deeper than max_depth is refused by its
 *    path when it is empty, and as "nesting too deep" at an offset when it is
 *    not (json-c's own limit counted the innermost value too);
 *  - a value with no XML-RPC form (an integer beyond 64 bits, a number beyond
 *    the double range, a bad tagged object) is an error only if it is still
 *    in the tree when the text has been read, and text that is not JSON is a
 *    parse error wherever it is. Such a value is therefore read as a
 *    placeholder and judged at the end (struct deferred).
 */

/* Why a value has no XML-RPC form. */
enum deferred_kind {
    DEFER_NONE = 0,
    DEFER_INTEGER,    /* text: the integer */
    DEFER_DOUBLE,     /* text: the number */
    DEFER_DEPTH,      /* an empty array or object one level too deep */
    DEFER_TAG_TYPE,   /* text: the tag ("$base64"); its value is not a string */
    DEFER_TAG_BASE64, /* text: the tag; its string is not base64 */
};

/*
 * A value with no XML-RPC form stands in the tree as an XR_NONE node, which
 * nothing else produces, whose u.i indexes one of these. A later member of
 * the same name may still replace it, so the first one left in tree order
 * is reported once the text is read: the one json-c's tree, converted value
 * by value, used to fail on.
 */
struct deferred {
    enum deferred_kind kind;
    const char *text; /* the caller's JSON (alive until the parse returns) or a member name */
    size_t len;
};

/* One parse. p only moves forward, and never past end. */
struct reader {
    struct arena *arena;
    const char *start;
    const char *p;
    const char *end;
    struct xr_error *err;
    unsigned depth; /* arrays and objects around the value being read */
    unsigned max_depth;
    struct deferred *deferred; /* arena memory, grown by doubling */
    size_t deferred_count;
    size_t deferred_cap;
};

static struct xr_value *read_value(struct reader *r, const struct path *at);

/*
 * Fills err for text that is not JSON: the offset of the byte at fault, and
 * its line and column too when the text has several lines (a pretty-printed
 * answer is read by line). Returns NULL, for the callers' convenience.
 */
static struct xr_value *syntax_error(struct reader *r, const char *at, const char *what)
{
    size_t offset = (size_t)(at - r->start);
    size_t line = 1;
    const char *line_start = r->start;

    for (const char *q = r->start; q < at; q++) {
        if (*q == '\n') {
            line++;
            line_start = q + 1;
        }
    }
    r->err->code = XR_FAULT_PARSE;
    if (line == 1)
        snprintf(r->err->message, sizeof(r->err->message), "invalid JSON at offset %zu: %s", offset,
                 what);
    else
        snprintf(r->err->message, sizeof(r->err->message),
                 "invalid JSON at offset %zu (line %zu, column %zu): %s", offset, line,
                 (size_t)(at - line_start) + 1, what);
    return NULL;
}

/* What to say when the text stops, or has `what`, where more was needed. */
static struct xr_value *expected(struct reader *r, const char *what)
{
    return syntax_error(r, r->p, r->p == r->end ? "unexpected end of data" : what);
}

/* RFC 8259, section 2: only these four are whitespace (not \f, not \v). */
static void skip_space(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

static int at_char(const struct reader *r, char c)
{
    return r->p < r->end && *r->p == c;
}

/* A placeholder for a value with no XML-RPC form (struct deferred). */
static struct xr_value *defer(struct reader *r, enum deferred_kind kind, const char *text,
                              size_t len)
{
    if (r->deferred_count == r->deferred_cap) {
        size_t cap = r->deferred_cap ? r->deferred_cap * 2 : 8;
        struct deferred *grown = arena_alloc(r->arena, cap * sizeof(*grown));
        if (r->deferred_count > 0)
            memcpy(grown, r->deferred, r->deferred_count * sizeof(*grown));
        r->deferred = grown;
        r->deferred_cap = cap;
    }
    r->deferred[r->deferred_count] = (struct deferred){kind, text, len};
    struct xr_value *v = xr_value_new(r->arena, XR_NONE);
    v->u.i = (int64_t)r->deferred_count++;
    return v;
}

/* Literals ------------------------------------------------------------- */

/* true, false or null, whose first letter is at r->p. */
static struct xr_value *read_literal(struct reader *r, const char *word, const char *what)
{
    for (size_t i = 0; word[i] != '\0'; i++, r->p++)
        if (r->p == r->end || *r->p != word[i])
            return expected(r, what);
    if (word[0] == 'n')
        return xr_value_new(r->arena, XR_NIL);
    return xr_value_new_bool(r->arena, word[0] == 't');
}

/*
 * NaN and Infinity are what some writers (json-c among them) put where JSON
 * has no number. They are named, at the value's path, rather than left as a
 * bare offset.
 */
static struct xr_value *read_not_json(struct reader *r, const struct path *at)
{
    static const char *const names[] = {"NaN", "Infinity", "-Infinity"};
    size_t avail = (size_t)(r->end - r->p);

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);
        if (avail >= n && memcmp(r->p, names[i], n) == 0) {
            path_error(r->err, XR_FAULT_PARSE, at, "%s is not JSON", names[i]);
            return NULL;
        }
    }
    if (*r->p != '-')
        return syntax_error(r, r->p, "unexpected character");
    r->p++;
    return expected(r, "digit expected");
}

/* Numbers -------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Moves past the digits at r->p; returns how many there were. */
static size_t skip_digits(struct reader *r)
{
    const char *from = r->p;

    while (r->p < r->end && is_digit(*r->p))
        r->p++;
    return (size_t)(r->p - from);
}

/*
 * number = [ minus ] int [ frac ] [ exp ], int = zero / digit1-9 *DIGIT
 * (RFC 8259, section 6). Moves r->p past it; *is_integer tells whether it
 * has neither fraction nor exponent. Returns 0, or -1 with err.
 */
static int scan_number(struct reader *r, int *is_integer)
{
    if (*r->p == '-')
        r->p++;
    if (at_char(r, '0')) {
        r->p++;
        if (r->p < r->end && is_digit(*r->p)) {
            syntax_error(r, r->p, "leading zeros are not JSON");
            return -1;
        }
    } else if (skip_digits(r) == 0) {
        expected(r, "digit expected");
        return -1;
    }
    *is_integer = 1;
    if (at_char(r, '.')) {
        r->p++;
        *is_integer = 0;
        if (skip_digits(r) == 0) {
            expected(r, "digit expected after '.'");
            return -1;
        }
    }
    if (at_char(r, 'e') || at_char(r, 'E')) {
        r->p++;
        *is_integer = 0;
        if (at_char(r, '+') || at_char(r, '-'))
            r->p++;
        if (skip_digits(r) == 0) {
            expected(r, "digit expected in the exponent");
            return -1;
        }
    }
    return 0;
}

/*
 * An integer literal: any that fits in 64 bits is an XR_INT (the XML-RPC
 * writer picks <int> or <i8> by value); a larger one has no XML-RPC form.
 * There are no leading zeros, so up to 19 digits are below 10^19 and cannot
 * overflow a uint64_t, and 20 or more are beyond 2^63.
 */
static struct xr_value *make_integer(struct reader *r, const char *text, size_t len)
{
    int negative = text[0] == '-';
    const char *digits = text + negative;
    size_t n = len - (size_t)negative;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t magnitude = 0;

    if (n > 19)
        return defer(r, DEFER_INTEGER, text, len);
    for (size_t i = 0; i < n; i++)
        magnitude = magnitude * 10 + (uint64_t)(digits[i] - '0');
    if (magnitude > limit)
        return defer(r, DEFER_INTEGER, text, len);
    if (!negative)
        return xr_value_new_int(r->arena, (int64_t)magnitude);
    /* -(2^63) has no positive counterpart to negate. */
    return xr_value_new_int(r->arena, magnitude == limit ? INT64_MIN : -(int64_t)magnitude);
}

/* Numbers longer than this are copied to the heap for strtod(). */
#define NUMBER_INLINE 64

/*
 * A number with a fraction or exponent. strtod() rounds correctly and keeps
 * the sign of -0.0, but needs a terminated string, which the caller's text
 * is not: hence the bounded copy. An underflow reads as the nearest denormal
 * or zero, as it did through json-c; an overflow (1e400) is a number with no
 * double, so no XML-RPC form. The text was checked against the grammar, so
 * strtod's own extensions (hex, "inf", "nan") never get to it.
 */
static struct xr_value *make_double(struct reader *r, const char *text, size_t len)
{
    char local[NUMBER_INLINE];
    char *copy;
    struct xr_value *v;
    double exact;

    if (decimal_parse_exact(text, len, &exact) == 0)
        return xr_value_new_double(r->arena, exact);
    copy = len < sizeof(local) ? local : mem_alloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';
    double d = strtod(copy, NULL);
    if (isfinite(d))
        v = xr_value_new_double(r->arena, d);
    else
        v = defer(r, DEFER_DOUBLE, text, len);
    if (copy != local)
        free(copy);
    return v;
}

static struct xr_value *read_number(struct reader *r)
{
    const char *text = r->p;
    int is_integer = 0;

    if (scan_number(r, &is_integer) < 0)
        return NULL;
    size_t len = (size_t)(r->p - text);
    return is_integer ? make_integer(r, text, len) : make_double(r, text, len);
}

/* Strings -------------------------------------------------------------- */

/*
 * The bytes where a string's scan must stop and look: '"', '\\', the
 * control characters (RFC 8259, section 7 wants them escaped) and every byte
 * from 0x80 on, where UTF-8 needs checking. The rest stand for themselves.
 */
/* clang-format off */
static const unsigned char string_stops[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80 - 0xbf */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xc0 - 0xff */
};
/* clang-format on */

/*
 * Finds the closing quote of the string whose text starts at r->p, and
 * checks on the way everything but the \u escapes: UTF-8 by RFC 3629 (no
 * overlong forms, no encoded surrogates), no raw control characters, and
 * only the escape letters of RFC 8259, section 7. Sets *close, and *escaped
 * when there is anything to decode. Returns 0, or -1 with err.
 */
static int scan_string(struct reader *r, const char **close, int *escaped)
{
    const unsigned char *p = (const unsigned char *)r->p;
    const unsigned char *end = (const unsigned char *)r->end;
    unsigned cp;

    for (;;) {
        while (p < end && !string_stops[*p])
            p++;
        if (p == end)
            break;
        if (*p == '"') {
            *close = (const char *)p;
            return 0;
        }
        const char *at = (const char *)p;
        if (*p == '\\') {
            if (p + 1 == end)
                break;
            if (memchr("\"\\/bfnrtu", p[1], 9) == NULL) {
                syntax_error(r, at + 1, "invalid escape sequence");
                return -1;
            }
            *escaped = 1;
            p += 2;
        } else if (*p < 0x20) {
            syntax_error(r, at, "control character in string");
            return -1;
        } else {
            size_t n = utf8_decode(p, (size_t)(end - p), &cp);
            if (n == 0) {
                syntax_error(r, at, "invalid utf-8 string");
                return -1;
            }
            p += n;
        }
    }
    syntax_error(r, r->end, "unexpected end of data");
    return -1;
}

/* The value of four hex digits, or -1. */
static long hex4(const char *s)
{
    long v = 0;

    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Writes cp (at most U+10FFFF, no surrogate) as UTF-8; returns its length. */
static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * The \u escape at s (its backslash), inside a string that closes at
 * `close`: writes its character as UTF-8 at *w and returns how many bytes of
 * text it took. A surrogate pair is one character (RFC 8259, section 7); a
 * lone surrogate is refused, since no UTF-8 can carry it. Returns 0 with err
 * when the escape is bad.
 */
static size_t decode_unicode(struct reader *r, const char *s, const char *close, char **w)
{
    long hi = close - s >= 6 ? hex4(s + 2) : -1;
    long lo = -1;

    if (hi < 0) {
        syntax_error(r, s, "invalid \\u escape");
        return 0;
    }
    if (hi < 0xd800 || hi > 0xdfff) {
        *w += put_utf8(*w, (unsigned long)hi);
        return 6;
    }
    if (hi <= 0xdbff && close - s >= 12 && s[6] == '\\' && s[7] == 'u')
        lo = hex4(s + 8);
    if (lo < 0xdc00 || lo > 0xdfff) {
        syntax_error(r, s, "lone surrogate in a \\u escape");
        return 0;
    }
    *w +=
        put_utf8(*w, 0x10000 + ((unsigned long)(hi - 0xd800) << 10) + (unsigned long)(lo - 0xdc00));
    return 12;
}

static char unescape(char c)
{
    switch (c) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    default: /* '"', '\\', '/' */
        return c;
    }
}

/*
 * Decodes the string from r->p to `close` into arena memory. No escape is
 * shorter than what it stands for, so the text's length bounds the result.
 */
static int decode_string(struct reader *r, const char *close, const char **out, size_t *len)
{
    char *buf = arena_alloc(r->arena, (size_t)(close - r->p) + 1);
    char *w = buf;
    const char *s = r->p;

    while (s < close) {
        const char *esc = memchr(s, '\\', (size_t)(close - s));
        size_t run = (size_t)((esc ? esc : close) - s);
        memcpy(w, s, run);
        w += run;
        s += run;
        if (esc == NULL)
            break;
        if (s[1] == 'u') {
            size_t n = decode_unicode(r, s, close, &w);
            if (n == 0)
                return -1;
            s += n;
        } else {
            *w++ = unescape(s[1]);
            s += 2;
        }
    }
    *w = '\0';
    *out = buf;
    *len = (size_t)(w - buf);
    return 0;
}

/*
 * Reads the string whose opening quote is at r->p into one NUL-terminated
 * arena copy (it may hold NULs of its own, from \u0000: *len counts them).
 */
static int read_string(struct reader *r, const char **out, size_t *len)
{
    const char *close = NULL;
    int escaped = 0;

    r->p++;
    if (scan_string(r, &close, &escaped) < 0)
        return -1;
    if (escaped) {
        if (decode_string(r, close, out, len) < 0)
            return -1;
    } else {
        *len = (size_t)(close - r->p);
        *out = arena_strndup(r->arena, r->p, *len);
    }
    r->p = close + 1;
    return 0;
}

static struct xr_value *read_string_value(struct reader *r)
{
    struct xr_value *v = xr_value_new(r->arena, XR_STRING);

    if (read_string(r, &v->u.str.ptr, &v->u.str.len) < 0)
        return NULL;
    return v;
}

/* Arrays and objects --------------------------------------------------- */

/*
 * An array or object one level deeper than max_depth, its opening bracket
 * just read. json-c's limit counted the innermost value too: it let an
 * empty one through to the conversion, which refused it by path, and called
 * anything inside "nesting too deep". Both are kept.
 */
static struct xr_value *too_deep(struct reader *r, char close)
{
    skip_space(r);
    if (!at_char(r, close))
        return expected(r, "nesting too deep");
    r->p++;
    return defer(r, DEFER_DEPTH, NULL, 0);
}

/*
 * After an element or member: 1 past a ',', 0 past the closing bracket, or
 * -1 with err (`what` names the separator that was due).
 */
static int list_continues(struct reader *r, char close, const char *what)
{
    skip_space(r);
    if (at_char(r, ',')) {
        r->p++;
        return 1;
    }
    if (at_char(r, close)) {
        r->p++;
        return 0;
    }
    expected(r, what);
    return -1;
}

static struct xr_value *read_array(struct reader *r, const struct path *at)
{
    struct xr_value *v;
    int more = 1;

    r->p++;
    if (r->depth >= r->max_depth)
        return too_deep(r, ']');
    v = xr_value_new(r->arena, XR_ARRAY);
    skip_space(r);
    if (at_char(r, ']')) {
        r->p++;
        return v;
    }
    r->depth++;
    for (size_t i = 0; more > 0; i++) {
        struct path here = path_element(at, i);
        struct xr_value *child = read_value(r, &here);
        if (child == NULL)
            return NULL;
        xr_value_append(v, child);
        more = list_continues(r, ']', "array value separator ',' expected");
    }
    r->depth--;
    return more < 0 ? NULL : v;
}

/*
 * The names of one object's members so far, for json-c's rule of one member
 * per name. Up to INDEX_FROM members are compared one by one; from there an
 * open-addressing hash table keeps an object with thousands of names linear
 * rather than quadratic in time.
 */
#define INDEX_FROM 32

struct names {
    struct xr_value **slots; /* heap; NULL until INDEX_FROM members; at most half full */
    size_t mask;             /* slot count - 1, a power of two minus one */
};

/*
 * The names come from a new service's answer, which may echo keys a client
 * chose, so the table must not be floodable with names picked to collide:
 * FNV-1a starts from a secret the process draws once (xrjson_seed_hash),
 * and a final avalanche makes every bit of the state reach the slot index
 * (with plain FNV the low bits of the index depend on the low bits of the
 * state only, which an attacker can search for offline).
 */
static uint64_t hash_seed = 14695981039346656037ULL;

void xrjson_seed_hash(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), 0) == (ssize_t)sizeof(seed))
        hash_seed ^= seed;
}

static size_t name_hash(const char *s, size_t len)
{
    uint64_t h = hash_seed;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    /* The 64-bit finaliser of MurmurHash3: each output bit depends on all
     * input bits. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (size_t)h;
}

static int same_name(const struct xr_value *m, const char *name, size_t len)
{
    return m->name_len == len && memcmp(m->name, name, len) == 0;
}

/* The slot that holds the member called `name`, or the empty one for it. */
static struct xr_value **names_slot(const struct names *n, const char *name, size_t len)
{
    size_t i = name_hash(name, len) & n->mask;

    while (n->slots[i] != NULL && !same_name(n->slots[i], name, len))
        i = (i + 1) & n->mask;
    return &n->slots[i];
}

/* (Re)builds the table from obj's members, with room for as many again. */
static void names_rebuild(struct names *n, const struct xr_value *obj)
{
    size_t cap = 4 * INDEX_FROM;

    while (cap < 4 * obj->u.list.count)
        cap *= 2;
    free(n->slots);
    n->slots = mem_calloc(cap, sizeof(*n->slots));
    n->mask = cap - 1;
    for (struct xr_value *m = obj->u.list.first; m != NULL; m = m->next)
        *names_slot(n, m->name, m->name_len) = m;
}

/* The member of obj called `name`, or NULL. */
static struct xr_value *names_find(const struct names *n, const struct xr_value *obj,
                                   const char *name, size_t len)
{
    if (n->slots != NULL)
        return *names_slot(n, name, len);
    for (struct xr_value *m = obj->u.list.first; m != NULL; m = m->next)
        if (same_name(m, name, len))
            return m;
    return NULL;
}

/*
 * Adds child, named, to obj; or, when obj has a member of that name, gives
 * that member child's value and keeps its place (json-c's rule).
 */
static void add_member(struct names *n, struct xr_value *obj, struct xr_value *child)
{
    struct xr_value *same = names_find(n, obj, child->name, child->name_len);

    if (same != NULL) {
        same->type = child->type;
        same->u = child->u;
        return;
    }
    xr_value_append(obj, child);
    if (n->slots != NULL && 2 * obj->u.list.count <= n->mask + 1)
        *names_slot(n, child->name, child->name_len) = child;
    else if (n->slots != NULL || obj->u.list.count >= INDEX_FROM)
        names_rebuild(n, obj);
}

/* name ':' value, from r->p; returns the value with its name set. */
static struct xr_value *read_member(struct reader *r, const struct path *at)
{
    const char *name;
    size_t len;

    skip_space(r);
    if (!at_char(r, '"'))
        return expected(r, "quoted object property name expected");
    if (read_string(r, &name, &len) < 0)
        return NULL;
    skip_space(r);
    if (!at_char(r, ':'))
        return expected(r, "object property name separator ':' expected");
    r->p++;
    struct path here = path_member(at, name, len);
    struct xr_value *v = read_value(r, &here);
    if (v != NULL) {
        v->name = name;
        v->name_len = len;
    }
    return v;
}

/* The members of a non-empty object, up to and past its closing brace. */
static int read_members(struct reader *r, struct xr_value *obj, const struct path *at)
{
    struct names names = {NULL, 0};
    int more = 1;

    while (more > 0) {
        struct xr_value *child = read_member(r, at);
        if (child == NULL) {
            more = -1;
            goto out;
        }
        add_member(&names, obj, child);
        more = list_continues(r, '}', "object value separator ',' expected");
    }
out:
    free(names.slots);
    return more;
}

/*
 * {"$base64": "..."} and {"$datetime": "..."}: an object whose one member
 * (after the one-per-name rule) has either name is that type. Returns the
 * value the object stands for: obj itself when it is a plain struct.
 */
static struct xr_value *tagged(struct reader *r, struct xr_value *obj)
{
    const struct xr_value *m = obj->u.list.first;
    struct xr_value *v;

    if (obj->u.list.count != 1)
        return obj;
    int is_base64 = same_name(m, "$base64", 7);
    if (!is_base64 && !same_name(m, "$datetime", 9))
        return obj;
    if (m->type != XR_STRING)
        return defer(r, DEFER_TAG_TYPE, m->name, m->name_len);
    if (!is_base64) {
        /* The string is the member's arena copy: no second one. */
        v = xr_value_new(r->arena, XR_DATETIME);
        v->u.str = m->u.str;
        return v;
    }
    v = xr_value_new(r->arena, XR_BASE64);
    if (base64_decode(r->arena, m->u.str.ptr, m->u.str.len, &v->u.str.ptr, &v->u.str.len) < 0)
        return defer(r, DEFER_TAG_BASE64, m->name, m->name_len);
    return v;
}

static struct xr_value *read_object(struct reader *r, const struct path *at)
{
    struct xr_value *obj;

    r->p++;
    if (r->depth >= r->max_depth)
        return too_deep(r, '}');
    obj = xr_value_new(r->arena, XR_STRUCT);
    skip_space(r);
    if (at_char(r, '}')) {
        r->p++;
        return obj;
    }
    r->depth++;
    if (read_members(r, obj, at) < 0)
        return NULL;
    r->depth--;
    return tagged(r, obj);
}

/* Recursion is bounded by max_depth (read_array, read_object). */
static struct xr_value *read_value(struct reader *r, const struct path *at)
{
    skip_space(r);
    if (r->p == r->end)
        return syntax_error(r, r->p, "unexpected end of data");
    switch (*r->p) {
    case '{':
        return read_object(r, at);
    case '[':
        return read_array(r, at);
    case '"':
        return read_string_value(r);
    case 't':
        return read_literal(r, "true", "boolean expected");
    case 'f':
        return read_literal(r, "false", "boolean expected");
    case 'n':
        return read_literal(r, "null", "null expected");
    case '-':
        if (r->end - r->p > 1 && r->p[1] == 'I')
            return read_not_json(r, at);
        return read_number(r);
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return read_number(r);
    case 'N':
    case 'I':
        return read_not_json(r, at);
    default:
        return syntax_error(r, r->p, "unexpected character");
    }
}

/* Renders a placeholder's reason (struct deferred) at its path. */
static void deferred_error(const struct reader *r, const struct deferred *d, const struct path *at)
{
    struct path tag = path_member(at, d->text, d->len);
    int shown = d->len < 40 ? (int)d->len : 40;

    switch (d->kind) {
    case DEFER_INTEGER:
        path_error(r->err, XR_FAULT_INTERNAL, at, "integer beyond the 64-bit range");
        return;
    case DEFER_DOUBLE:
        path_error(r->err, XR_FAULT_INTERNAL, at, "number %.*s is beyond the double range", shown,
                   d->text);
        return;
    case DEFER_DEPTH:
        path_error(r->err, XR_FAULT_PARSE, at, "JSON nested deeper than %u levels (max_depth)",
                   r->max_depth);
        return;
    case DEFER_TAG_TYPE:
        path_error(r->err, XR_FAULT_INTERNAL, &tag, "must be a string");
        return;
    case DEFER_TAG_BASE64:
        path_error(r->err, XR_FAULT_INTERNAL, &tag, "not base64");
        return;
    case DEFER_NONE:
        break;
    }
    path_error(r->err, XR_FAULT_INTERNAL, at, "no XML-RPC form");
}

/*
 * Finds the first placeholder left in the finished tree, in tree order, and
 * reports it. Returns 0 when there is none: every value without a form was
 * replaced by a later member of the same name. Recursion is bounded by
 * max_depth, as the tree's depth is.
 */
static int report_deferred(const struct reader *r, const struct xr_value *v, const struct path *at)
{
    size_t i = 0;

    if (v->type == XR_NONE) {
        deferred_error(r, &r->deferred[v->u.i], at);
        return -1;
    }
    if (v->type != XR_ARRAY && v->type != XR_STRUCT)
        return 0;
    for (const struct xr_value *c = v->u.list.first; c != NULL; c = c->next, i++) {
        struct path here =
            v->type == XR_ARRAY ? path_element(at, i) : path_member(at, c->name, c->name_len);
        if (report_deferred(r, c, &here) < 0)
            return -1;
    }
    return 0;
}

int xrjson_parse(struct arena *a, const char *json, size_t len, const struct xr_limits *lim,
                 struct xr_value **out, struct xr_error *err)
{
    const char *text = json ? json : "";
    struct reader r = {
        .arena = a,
        .start = text,
        .p = text,
        .end = text + len,
        .err = err,
        .max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH,
    };
    struct path top = {NULL, PARSE_ROOT, sizeof(PARSE_ROOT) - 1, 0};
    struct xr_value *v = read_value(&r, &top);

    if (v == NULL)
        return -1;
    skip_space(&r);
    if (r.p != r.end) {
        syntax_error(&r, r.p, "unexpected text after the value");
        return -1;
    }
    if (r.deferred_count > 0 && report_deferred(&r, v, &top) < 0)
        return -1;
    *out = v;
    return 0;
}
