#include "legacy-adapters/xrjson.h"

#include "common/jsonw.h"
#include "legacy-adapters/base64.h"

#include <json-c/json.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
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
 * One conversion. json-c saturates integers that overflow int64; positive
 * ones are caught through json_object_get_uint64(), but -9223372036854775809
 * and -9223372036854775808 both read back as INT64_MIN. For those (rare)
 * values the source text is scanned once, lazily, to learn which of the
 * negative literals that saturate are really out of range: `min_exact[k]` is
 * 1 when the k-th such literal in document order is exactly INT64_MIN.
 */
struct conv {
    struct arena *arena;
    const char *json;
    size_t len;
    struct xr_error *err;
    unsigned char *min_exact;
    size_t min_count;
    size_t min_seen;
    int scanned;
    unsigned depth; /* arrays and objects enclosing the value being converted */
    unsigned max_depth;
};

static const char int64_min_digits[] = "9223372036854775808";

/* A negative integer literal (no fraction, no exponent) at or below
 * INT64_MIN: 1 when exactly INT64_MIN, 0 when beyond, -1 when neither. */
static int classify_negative(const char *tok, size_t len)
{
    size_t want = sizeof(int64_min_digits) - 1;

    if (len < 2 || tok[0] != '-')
        return -1;
    size_t digits = len - 1;
    for (size_t i = 1; i < len; i++)
        if (tok[i] < '0' || tok[i] > '9')
            return -1;
    if (digits != want)
        return digits > want ? 0 : -1;
    int cmp = memcmp(tok + 1, int64_min_digits, want);
    return cmp == 0 ? 1 : cmp > 0 ? 0 : -1;
}

static int is_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Walks the JSON text (skipping strings) and classifies every number token. */
static void scan_negative_literals(struct conv *c)
{
    size_t cap = 0;

    c->scanned = 1;
    for (size_t i = 0; i < c->len; i++) {
        char ch = c->json[i];
        if (ch == '"') {
            for (i++; i < c->len && c->json[i] != '"'; i++)
                if (c->json[i] == '\\')
                    i++;
            continue;
        }
        if (!is_number_char(ch))
            continue;
        size_t start = i;
        while (i < c->len && is_number_char(c->json[i]))
            i++;
        int kind = classify_negative(c->json + start, i - start);
        i--; /* the loop's i++ moves past the token */
        if (kind < 0)
            continue;
        if (c->min_count == cap) {
            unsigned char *grown = arena_alloc(c->arena, cap ? cap * 2 : 16);
            if (c->min_count)
                memcpy(grown, c->min_exact, c->min_count);
            c->min_exact = grown;
            cap = cap ? cap * 2 : 16;
        }
        c->min_exact[c->min_count++] = (unsigned char)kind;
    }
}

static int int_fits(struct conv *c, struct json_object *o)
{
    int64_t i = json_object_get_int64(o);

    if (i == INT64_MAX)
        return json_object_get_uint64(o) <= (uint64_t)INT64_MAX;
    if (i != INT64_MIN)
        return 1;
    if (!c->scanned)
        scan_negative_literals(c);
    size_t k = c->min_seen++;
    /* The walk meets values in text order, except where a duplicate key
     * dropped one: then the match may be off by that value, and past the
     * last literal the value is taken as read. */
    return k >= c->min_count || c->min_exact[k];
}

static struct xr_value *convert(struct conv *c, struct json_object *o, const struct path *at);

/*
 * json-c's own depth counts every value, the innermost scalar included, so
 * "[[1]]" is 3 deep to it but "[[]]" only 2. The limit here counts arrays
 * and objects only; json-c runs one level deeper as the guard of its stack.
 */
static int enter(struct conv *c, const struct path *at)
{
    if (++c->depth <= c->max_depth)
        return 0;
    path_error(c->err, XR_FAULT_PARSE, at, "JSON nested deeper than %u levels (max_depth)",
               c->max_depth);
    return -1;
}

static struct xr_value *convert_number(struct conv *c, struct json_object *o, const struct path *at)
{
    if (json_object_is_type(o, json_type_int)) {
        if (!int_fits(c, o)) {
            path_error(c->err, XR_FAULT_INTERNAL, at, "integer beyond the 64-bit range");
            return NULL;
        }
        return xr_value_new_int(c->arena, json_object_get_int64(o));
    }
    double d = json_object_get_double(o);
    if (!isfinite(d)) {
        /* json-c keeps the text of the doubles it parses. Even in strict
         * mode it reads NaN and Infinity, which are not JSON; a literal
         * beyond the double range (1e400) is JSON, with no XML-RPC form. */
        const char *text = json_object_get_string(o);
        const char *digits = text[0] == '-' ? text + 1 : text;
        if (digits[0] >= '0' && digits[0] <= '9')
            path_error(c->err, XR_FAULT_INTERNAL, at, "number %.40s is beyond the double range",
                       text);
        else
            path_error(c->err, XR_FAULT_PARSE, at, "%.20s is not JSON", text);
        return NULL;
    }
    return xr_value_new_double(c->arena, d);
}

static struct xr_value *convert_array(struct conv *c, struct json_object *o, const struct path *at)
{
    struct xr_value *v = xr_value_new(c->arena, XR_ARRAY);
    size_t n = json_object_array_length(o);

    if (enter(c, at) < 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        struct path here = path_element(at, i);
        struct xr_value *child = convert(c, json_object_array_get_idx(o, i), &here);
        if (child == NULL)
            return NULL;
        xr_value_append(v, child);
    }
    c->depth--;
    return v;
}

/* {"$base64": "..."} and {"$datetime": "..."}: the contract's tagged forms. */
static struct xr_value *convert_tagged(struct conv *c, const char *key, struct json_object *val,
                                       const struct path *at)
{
    struct path here = path_member(at, key, strlen(key));
    int is_base64 = strcmp(key, "$base64") == 0;

    if (!json_object_is_type(val, json_type_string)) {
        path_error(c->err, XR_FAULT_INTERNAL, &here, "must be a string");
        return NULL;
    }
    const char *s = json_object_get_string(val);
    size_t len = (size_t)json_object_get_string_len(val);
    if (!is_base64)
        return xr_value_new_string(c->arena, XR_DATETIME, s, len);
    struct xr_value *v = xr_value_new(c->arena, XR_BASE64);
    if (base64_decode(c->arena, s, len, &v->u.str.ptr, &v->u.str.len) < 0) {
        path_error(c->err, XR_FAULT_INTERNAL, &here, "not base64");
        return NULL;
    }
    return v;
}

static struct xr_value *convert_object(struct conv *c, struct json_object *o, const struct path *at)
{
    struct json_object_iterator it = json_object_iter_begin(o);
    struct json_object_iterator end = json_object_iter_end(o);

    if (enter(c, at) < 0)
        return NULL;
    if (json_object_object_length(o) == 1) {
        const char *key = json_object_iter_peek_name(&it);
        if (strcmp(key, "$base64") == 0 || strcmp(key, "$datetime") == 0) {
            c->depth--;
            return convert_tagged(c, key, json_object_iter_peek_value(&it), at);
        }
    }
    /* json-c iterates members in insertion order, which is the text's
     * order (a duplicate key keeps the first one's place, the last value). */
    struct xr_value *v = xr_value_new(c->arena, XR_STRUCT);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        size_t key_len = strlen(key);
        struct path here = path_member(at, key, key_len);
        struct xr_value *child = convert(c, json_object_iter_peek_value(&it), &here);
        if (child == NULL)
            return NULL;
        xr_struct_add(c->arena, v, key, child);
    }
    c->depth--;
    return v;
}

/* Recursion is bounded by the tokener's depth limit. */
static struct xr_value *convert(struct conv *c, struct json_object *o, const struct path *at)
{
    switch (json_object_get_type(o)) {
    case json_type_null:
        return xr_value_new(c->arena, XR_NIL);
    case json_type_boolean:
        return xr_value_new_bool(c->arena, json_object_get_boolean(o));
    case json_type_int:
    case json_type_double:
        return convert_number(c, o, at);
    case json_type_string:
        return xr_value_new_string(c->arena, XR_STRING, json_object_get_string(o),
                                   (size_t)json_object_get_string_len(o));
    case json_type_array:
        return convert_array(c, o, at);
    case json_type_object:
        return convert_object(c, o, at);
    }
    path_error(c->err, XR_FAULT_INTERNAL, at, "unknown JSON type");
    return NULL;
}

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void json_error(struct xr_error *err, size_t offset, const char *what)
{
    err->code = XR_FAULT_PARSE;
    snprintf(err->message, sizeof(err->message), "invalid JSON at offset %zu: %s", offset, what);
}

/*
 * Runs json-c over the whole text. A top-level number is only known to be
 * complete when the text ends, which json-c learns from a NUL; so when it
 * asks for more, it is handed the terminator. Returns 0 with *out (NULL is
 * JSON null), or -1 with err.
 */
static int tokenize(struct json_tokener *tok, const char *json, size_t len,
                    struct json_object **out, struct xr_error *err)
{
    struct json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);

    if (e == json_tokener_continue) {
        o = json_tokener_parse_ex(tok, "", 1);
        e = json_tokener_get_error(tok);
        end = len;
    }
    if (e != json_tokener_success) {
        json_object_put(o);
        json_error(err, end, json_tokener_error_desc(e));
        return -1;
    }
    /* json-c stops at a NUL; whatever follows the value must be blank. */
    for (size_t i = end; i < len; i++) {
        if (!is_json_space(json[i])) {
            json_object_put(o);
            json_error(err, i, "unexpected text after the value");
            return -1;
        }
    }
    *out = o;
    return 0;
}

int xrjson_parse(struct arena *a, const char *json, size_t len, const struct xr_limits *lim,
                 struct xr_value **out, struct xr_error *err)
{
    unsigned depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH;
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    struct path top = {NULL, PARSE_ROOT, sizeof(PARSE_ROOT) - 1, 0};
    struct conv c = {a, json, len, err, NULL, 0, 0, 0, 0, depth};
    int rc = -1;

    if (len > INT_MAX - 1) {
        json_error(err, 0, "text too large");
        goto out;
    }
    tok = json_tokener_new_ex(depth >= INT_MAX ? INT_MAX : (int)depth + 1);
    if (tok == NULL) {
        err->code = XR_FAULT_INTERNAL;
        snprintf(err->message, sizeof(err->message), "cannot create a JSON parser");
        goto out;
    }
    /* Strict: no trailing commas, single quotes or leading zeros; and
     * invalid UTF-8 is refused here instead of reaching XML. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    if (tokenize(tok, json, len, &root, err) < 0)
        goto out;
    struct xr_value *v = convert(&c, root, &top);
    if (v == NULL)
        goto out;
    *out = v;
    rc = 0;
out:
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}
