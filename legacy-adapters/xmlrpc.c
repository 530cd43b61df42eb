#include "legacy-adapters/xmlrpc.h"

#include "common/decimal.h"
#include "common/jsonw.h"
#include "common/utf8.h"
#include "legacy-adapters/base64.h"
#include "legacy-adapters/xrjson.h"
#include "legacy-adapters/xrscan.h"

#include <libxml/SAX2.h>
#include <libxml/entities.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#define DEFAULT_MAX_DEPTH    64
#define DEFAULT_MAX_ELEMENTS 1000000

/* How much of an unreadable value a message quotes. */
#define QUOTE_MAX 64

/* Untrusted input: no network, no output on stderr. Entity substitution
 * (NOENT), DTD loading and validation are deliberately absent (FIELD-NOTES). */
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

struct xr_value *xr_value_new(struct arena *a, enum xr_type type)
{
    struct xr_value *v = arena_calloc(a, sizeof(*v));
    v->type = type;
    return v;
}

struct xr_value *xr_value_new_string(struct arena *a, enum xr_type type, const char *s, size_t len)
{
    struct xr_value *v = xr_value_new(a, type);
    v->u.str.ptr = arena_strndup(a, len ? s : "", len);
    v->u.str.len = len;
    return v;
}

struct xr_value *xr_value_new_int(struct arena *a, int64_t i)
{
    struct xr_value *v = xr_value_new(a, XR_INT);
    v->u.i = i;
    return v;
}

struct xr_value *xr_value_new_double(struct arena *a, double d)
{
    struct xr_value *v = xr_value_new(a, XR_DOUBLE);
    v->u.d = d;
    return v;
}

struct xr_value *xr_value_new_bool(struct arena *a, int b)
{
    struct xr_value *v = xr_value_new(a, XR_BOOL);
    v->u.b = b ? 1 : 0;
    return v;
}

void xr_struct_add(struct arena *a, struct xr_value *s, const char *name, struct xr_value *child)
{
    child->name_len = strlen(name);
    child->name = arena_strndup(a, name, child->name_len);
    xr_value_append(s, child);
}

int xr_fault_read(const struct xr_value *v, struct xr_response *out, const char **why)
{
    const struct xr_value *code = xr_struct_get(v, "faultCode");
    const struct xr_value *string = xr_struct_get(v, "faultString");

    if (v == NULL || v->type != XR_STRUCT)
        *why = "the fault value is not a struct";
    else if (code == NULL || code->type != XR_INT)
        *why = "the fault struct has no integer faultCode";
    else if (string == NULL || string->type != XR_STRING)
        *why = "the fault struct has no string faultString";
    else
        *why = NULL;
    if (*why != NULL)
        return -1;
    out->is_fault = 1;
    out->result = NULL;
    out->fault_code = code->u.i;
    out->fault_string = string->u.str.ptr;
    out->fault_string_len = string->u.str.len;
    return 0;
}

void xr_value_append(struct xr_value *list, struct xr_value *child)
{
    child->next = NULL;
    if (list->u.list.last != NULL)
        list->u.list.last->next = child;
    else
        list->u.list.first = child;
    list->u.list.last = child;
    list->u.list.count++;
}

const struct xr_value *xr_struct_get(const struct xr_value *s, const char *name)
{
    if (s == NULL || s->type != XR_STRUCT)
        return NULL;
    size_t len = strlen(name);
    for (const struct xr_value *m = s->u.list.first; m != NULL; m = m->next)
        if (m->name_len == len && memcmp(m->name, name, len) == 0)
            return m;
    return NULL;
}

const char *xr_type_name(enum xr_type type)
{
    switch (type) {
    case XR_INT:
        return "int";
    case XR_BOOL:
        return "boolean";
    case XR_STRING:
        return "string";
    case XR_DOUBLE:
        return "double";
    case XR_DATETIME:
        return "dateTime.iso8601";
    case XR_BASE64:
        return "base64";
    case XR_NIL:
        return "nil";
    case XR_ARRAY:
        return "array";
    case XR_STRUCT:
        return "struct";
    case XR_NONE:
        break;
    }
    return "none";
}

/* libxml2 prints some errors (an encoder's "I/O error") to stderr on its
 * own, outside any parser context, where every client could write lines
 * into the proxy's log at will; parse errors reach us through the
 * context's handler instead. */
static void ignore_generic_error(void *ctx, const char *msg, ...)
{
    (void)ctx, (void)msg;
}

void xr_init(void)
{
    xrjson_seed_hash();
    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, ignore_generic_error);
}

void xr_cleanup(void)
{
    xmlCleanupParser();
}

/* ------------------------------------------------------------------------ */
/* Parsing: the grammar                                                     */

/*
 * What an element is to the grammar. The XML-RPC specification fixes which
 * element may appear inside which, so the parser is a stack of these kinds
 * checked against the table of rules below; no DOM is ever built.
 */
enum node {
    N_NONE = 0,
    N_DOCUMENT, /* the bottom of the stack: holds the root element */
    N_METHOD_CALL,
    N_METHOD_NAME,
    N_METHOD_RESPONSE,
    N_PARAMS,
    N_PARAM,
    N_FAULT,
    N_VALUE,
    N_SCALAR, /* int, string, double...: text that becomes one value */
    N_NIL,
    N_ARRAY,
    N_DATA,
    N_STRUCT,
    N_MEMBER,
    N_NAME,
    N_COUNT
};

#define BIT(n) (1u << (n))

struct element {
    const char *tag;
    size_t len; /* strlen(tag) */
    enum node node;
    enum xr_type type; /* the value a N_SCALAR or N_NIL element makes */
};

#define ELEMENT(tag, node, type)                                                                   \
    {                                                                                              \
        tag, sizeof(tag) - 1, node, type                                                           \
    }

/* Ordered by how often the names occur in real traffic, since lookup is a
 * linear scan. i1, i2 and biginteger are Apache XML-RPC's extensions. */
static const struct element elements[] = {
    ELEMENT("value", N_VALUE, XR_NONE),
    ELEMENT("member", N_MEMBER, XR_NONE),
    ELEMENT("name", N_NAME, XR_NONE),
    ELEMENT("string", N_SCALAR, XR_STRING),
    ELEMENT("int", N_SCALAR, XR_INT),
    ELEMENT("i4", N_SCALAR, XR_INT),
    ELEMENT("struct", N_STRUCT, XR_STRUCT),
    ELEMENT("array", N_ARRAY, XR_ARRAY),
    ELEMENT("data", N_DATA, XR_NONE),
    ELEMENT("boolean", N_SCALAR, XR_BOOL),
    ELEMENT("double", N_SCALAR, XR_DOUBLE),
    ELEMENT("i8", N_SCALAR, XR_INT),
    ELEMENT("dateTime.iso8601", N_SCALAR, XR_DATETIME),
    ELEMENT("base64", N_SCALAR, XR_BASE64),
    ELEMENT("nil", N_NIL, XR_NIL),
    ELEMENT("param", N_PARAM, XR_NONE),
    ELEMENT("params", N_PARAMS, XR_NONE),
    ELEMENT("methodName", N_METHOD_NAME, XR_NONE),
    ELEMENT("methodCall", N_METHOD_CALL, XR_NONE),
    ELEMENT("methodResponse", N_METHOD_RESPONSE, XR_NONE),
    ELEMENT("fault", N_FAULT, XR_NONE),
    ELEMENT("float", N_SCALAR, XR_DOUBLE),
    ELEMENT("i1", N_SCALAR, XR_INT),
    ELEMENT("i2", N_SCALAR, XR_INT),
    ELEMENT("biginteger", N_SCALAR, XR_INT),
};

/*
 * Which children each kind of element may hold. `once` children may occur
 * at most once each; a `single` element holds at most one child in all (a
 * <value> has one type, a <param> one value, a response params or fault).
 * Kinds with no entry hold text only.
 */
struct rule {
    unsigned allowed;
    unsigned once;
    int single;
};

static const struct rule rules[N_COUNT] = {
    [N_DOCUMENT] = {BIT(N_METHOD_CALL) | BIT(N_METHOD_RESPONSE), 0, 1},
    [N_METHOD_CALL] = {BIT(N_METHOD_NAME) | BIT(N_PARAMS), BIT(N_METHOD_NAME) | BIT(N_PARAMS), 0},
    [N_METHOD_RESPONSE] = {BIT(N_PARAMS) | BIT(N_FAULT), 0, 1},
    [N_PARAMS] = {BIT(N_PARAM), 0, 0},
    [N_PARAM] = {BIT(N_VALUE), 0, 1},
    [N_FAULT] = {BIT(N_VALUE), 0, 1},
    [N_VALUE] = {BIT(N_SCALAR) | BIT(N_NIL) | BIT(N_ARRAY) | BIT(N_STRUCT), 0, 1},
    [N_ARRAY] = {BIT(N_DATA), 0, 1},
    [N_DATA] = {BIT(N_VALUE), 0, 0},
    [N_STRUCT] = {BIT(N_MEMBER), 0, 0},
    [N_MEMBER] = {BIT(N_NAME) | BIT(N_VALUE), BIT(N_NAME) | BIT(N_VALUE), 0},
};

/*
 * One open element. `value` depends on the kind: for N_VALUE the value its
 * child made (arrays, structs and nil are set when they open, scalars when
 * they end); for N_PARAMS, N_ARRAY, N_DATA and N_STRUCT the list being
 * filled; for N_PARAM, N_MEMBER and N_FAULT the value of their <value>.
 */
#define PARSER_FIRST_FRAMES 24

struct frame {
    enum node node;
    enum xr_type type; /* what a N_SCALAR, N_NIL, N_ARRAY or N_STRUCT makes */
    const char *tag;   /* local name, from the table of elements */
    unsigned seen;     /* BIT() of every kind of child seen so far */
    struct xr_value *value;
    const char *name; /* N_MEMBER: its <name>, once that has ended */
    size_t name_len;
};

/*
 * One parse. Only the innermost open element collects text, and its text is
 * dropped whenever an element opens or closes. text/text_len is that text:
 * while it came in one piece that lasts as long as the body (the fast path's
 * usual case), it points there and nothing is copied; otherwise the pieces
 * are gathered in the buffer `gather`, shared by all elements, so a
 * document costs one growing allocation for text however many strings it
 * holds. libxml2's pieces are always gathered.
 */
struct parser {
    struct arena *arena;
    xmlParserCtxtPtr ctxt; /* NULL on the fast path */
    enum node root;        /* N_METHOD_CALL or N_METHOD_RESPONSE */
    int flags;
    unsigned max_depth;
    size_t max_elements;
    size_t elements;
    struct frame *stack; /* stack[0] is the document; stack[depth] the innermost element */
    unsigned depth;
    unsigned cap;
    /* The first frames: an XML-RPC call nests a few levels, so the stack
     * is only allocated for the rare deep document. */
    struct frame first_frames[PARSER_FIRST_FRAMES];
    const char *text;
    size_t text_len;
    struct buf gather;
    int failed;    /* err holds the cause; the parser has been stopped */
    int call_root; /* the root is <methodCall>, or a DOCTYPE says it is */
    int finished;  /* XR_PARSE_METHOD_ONLY got what it wanted and stopped */
    struct xr_error err;
    struct xr_error first; /* libxml2's first error (code 0: none yet) */
    const char *method;
    size_t method_len;
    struct xr_value *params;
    struct xr_value *fault;
};

static struct parser *parser_of(void *ctx)
{
    return ((xmlParserCtxtPtr)ctx)->_private;
}

static void vfail(struct parser *p, int code, int with_line, const char *fmt, va_list ap)
{
    size_t n = 0;

    if (p->failed)
        return;
    p->failed = 1;
    /* On the fast path a failure only means "hand over to libxml2", which
     * parses the body again and words the failure itself. */
    if (p->ctxt == NULL)
        return;
    p->err.code = code;
    if (with_line) {
        int w = snprintf(p->err.message, sizeof(p->err.message),
                         "line %d: ", xmlSAX2GetLineNumber(p->ctxt));
        n = w > 0 ? (size_t)w : 0;
    }
    vsnprintf(p->err.message + n, sizeof(p->err.message) - n, fmt, ap);
    xmlStopParser(p->ctxt);
}

/* Records the first failure, prefixed with the current line, and stops the
 * parser: libxml2 makes no more callbacks after xmlStopParser(). */
static void fail(struct parser *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct parser *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, code, 1, fmt, ap);
    va_end(ap);
}

/* The same without the line, for messages about the document as a whole. */
static void fail_doc(struct parser *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_doc(struct parser *p, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, code, 0, fmt, ap);
    va_end(ap);
}

static const struct element *element_find(const char *tag, size_t len)
{
    /* The length and the last byte rule out almost every other name
     * before the bytes are compared. */
    for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++) {
        const struct element *e = &elements[i];
        if (e->len == len && e->tag[len - 1] == tag[len - 1] && xrscan_same(e->tag, tag, len))
            return e;
    }
    return NULL;
}

/* XML's whitespace (XML 1.0, production S). */
static int is_xml_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_xml_space((unsigned char)s[i]))
            return 0;
    return 1;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && is_xml_space((unsigned char)**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_xml_space((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

/* ------------------------------------------------------------------------ */
/* Parsing: scalar values                                                   */

/* Decimal with an optional sign, within int64 (XML-RPC's i8 and Apache's
 * biginteger as far as 64 bits reach). Returns 0, or -1 for junk or overflow. */
static int parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;

    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return -1;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return 0;
}

/*
 * strtod() must consume exactly the trimmed text, which is copied to get
 * the NUL strtod needs (on the fast path the text lies in the body).
 * Exponents, "nan" and "inf" are accepted because Python's xmlrpc.client
 * writes repr(float) and reads with float(). strtod's hexadecimal and
 * "nan(...)" forms are doubles in no XML-RPC dialect, so they are refused.
 */
static int parse_double(const char *s, size_t len, double *out)
{
    char small[64];
    char *copy = NULL, *z = small, *end = NULL;
    double d;
    int rc = -1;

    if (len == 0 || memchr(s, 'x', len) || memchr(s, 'X', len) || memchr(s, '(', len))
        goto out;
    if (decimal_parse_exact(s, len, out) == 0) {
        rc = 0;
        goto out;
    }
    if (len >= sizeof(small))
        z = copy = mem_alloc(len + 1);
    memcpy(z, s, len);
    z[len] = '\0';
    d = strtod(z, &end);
    if (end != z + len)
        goto out;
    *out = d;
    rc = 0;
out:
    free(copy);
    return rc;
}

static void fail_value(struct parser *p, const struct frame *f, const char *s, size_t len)
{
    int shown = len > QUOTE_MAX ? QUOTE_MAX : (int)len;
    fail(p, XR_FAULT_INVALID_PARAMS, "invalid <%s> value '%.*s%s'", f->tag, shown, s,
         len > QUOTE_MAX ? "..." : "");
}

/* Turns the text collected by a scalar element into its value, or fails. */
static struct xr_value *scalar_value(struct parser *p, const struct frame *f)
{
    const char *s = p->text;
    size_t len = p->text_len;
    struct xr_value *v = NULL;

    if (f->type == XR_STRING) /* strings keep every byte, whitespace included */
        return xr_value_new_string(p->arena, XR_STRING, s, len);
    /* Numbers may carry blanks around them, as the legacy's own readers
     * (Python's int() and float()) allow; a boolean or a date may not, and
     * the legacy refuses them: a call it would refuse must not run on a new
     * service instead. */
    if (f->type == XR_INT || f->type == XR_DOUBLE)
        trim(&s, &len);
    switch (f->type) {
    case XR_INT:
        v = xr_value_new(p->arena, XR_INT);
        if (parse_i64(s, len, &v->u.i) < 0)
            goto bad;
        return v;
    case XR_BOOL:
        /* The specification allows exactly 0 and 1. */
        if (len != 1 || (s[0] != '0' && s[0] != '1'))
            goto bad;
        v = xr_value_new(p->arena, XR_BOOL);
        v->u.b = s[0] == '1';
        return v;
    case XR_DOUBLE:
        v = xr_value_new(p->arena, XR_DOUBLE);
        if (parse_double(s, len, &v->u.d) < 0)
            goto bad;
        return v;
    case XR_DATETIME:
        return xr_value_new_string(p->arena, XR_DATETIME, s, len);
    case XR_BASE64:
        v = xr_value_new(p->arena, XR_BASE64);
        if (base64_decode(p->arena, p->text, p->text_len, &v->u.str.ptr, &v->u.str.len) < 0)
            goto bad;
        return v;
    default:
        break;
    }
bad:
    fail_value(p, f, s, len);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Parsing: text                                                            */

static void text_drop(struct parser *p)
{
    p->text_len = 0;
    p->gather.len = 0;
}

/*
 * Adds a piece of text to the innermost element's. A `stable` piece lasts
 * as long as the body; the first one is kept where it is, and only a second
 * piece makes both be copied together.
 */
static void text_add(struct parser *p, const char *s, size_t len, int stable)
{
    if (len == 0)
        return;
    if (p->text_len == 0 && stable) {
        p->text = s;
        p->text_len = len;
        return;
    }
    if (p->text_len != 0 && p->gather.len == 0) /* the text so far is a view */
        buf_append(&p->gather, p->text, p->text_len);
    buf_append(&p->gather, s, len);
    p->text = p->gather.data;
    p->text_len = p->gather.len;
}

/* ------------------------------------------------------------------------ */
/* Parsing: the grammar's events, from libxml2's callbacks or the scanner   */

static struct frame *push(struct parser *p, const struct element *e)
{
    if (p->depth + 1 >= p->cap) {
        p->cap *= 2;
        if (p->stack == p->first_frames) {
            p->stack = mem_alloc(p->cap * sizeof(*p->stack));
            memcpy(p->stack, p->first_frames, sizeof(p->first_frames));
        } else {
            p->stack = mem_realloc(p->stack, p->cap * sizeof(*p->stack));
        }
    }
    struct frame *f = &p->stack[++p->depth];
    memset(f, 0, sizeof(*f));
    f->node = e->node;
    f->type = e->type;
    f->tag = e->tag;
    return f;
}

/* Checks that `e` may open inside `parent` and records it as seen. */
static int check_child(struct parser *p, struct frame *parent, const struct element *e)
{
    const struct rule *r = &rules[parent->node];
    const char *tag = e->tag;

    if (parent->node == N_DOCUMENT && e->node == N_METHOD_CALL)
        p->call_root = 1;
    if (parent->node == N_DOCUMENT && e->node != p->root) {
        fail(p, XR_FAULT_INVALID_REQUEST, "root element is <%s>, expected <%s>", tag,
             p->root == N_METHOD_CALL ? "methodCall" : "methodResponse");
        return -1;
    }
    if (!(r->allowed & BIT(e->node))) {
        fail(p, XR_FAULT_INVALID_REQUEST, "unexpected <%s> in <%s>", tag, parent->tag);
        return -1;
    }
    if (r->single && parent->seen != 0) {
        fail(p, XR_FAULT_INVALID_REQUEST, "unexpected second element <%s> in <%s>", tag,
             parent->tag);
        return -1;
    }
    if (r->once & BIT(e->node) & parent->seen) {
        fail(p, XR_FAULT_INVALID_REQUEST, "more than one <%s> in <%s>", tag, parent->tag);
        return -1;
    }
    /* A <value> that gets a type element had only whitespace around it. */
    if (parent->node == N_VALUE && !is_blank(p->text, p->text_len)) {
        fail(p, XR_FAULT_INVALID_REQUEST, "text mixed with <%s> in <value>", tag);
        return -1;
    }
    parent->seen |= BIT(e->node);
    return 0;
}

/* Gives a newly opened element what it fills, linking it to its parent. */
static void open_element(struct parser *p, struct frame *parent, struct frame *f)
{
    switch (f->node) {
    case N_PARAMS:
        f->value = xr_value_new(p->arena, XR_ARRAY);
        p->params = f->value;
        break;
    case N_ARRAY:
    case N_STRUCT:
    case N_NIL:
        f->value = xr_value_new(p->arena, f->type);
        parent->value = f->value;
        break;
    case N_DATA:
        f->value = parent->value;
        break;
    default:
        break;
    }
}

/* An element called `tag` (its local name) opens inside the innermost one. */
static void start_element(struct parser *p, const char *tag, size_t len)
{
    if (++p->elements > p->max_elements) {
        fail(p, XR_FAULT_PARSE, "more than %zu XML elements (max_elements)", p->max_elements);
        return;
    }
    if (p->depth >= p->max_depth) {
        fail(p, XR_FAULT_PARSE, "XML nested deeper than %u elements (max_depth)", p->max_depth);
        return;
    }
    const struct element *e = element_find(tag, len);
    if (e == NULL) {
        fail(p, XR_FAULT_INVALID_REQUEST, "unknown element <%.*s>", (int)len, tag);
        return;
    }
    struct frame *parent = &p->stack[p->depth];
    if (check_child(p, parent, e) < 0)
        return;
    struct frame *f = push(p, e);
    open_element(p, &p->stack[p->depth - 1], f);
    text_drop(p);
}

/* Whether text inside f is kept; elsewhere only whitespace may occur.
 * Text in a <value> is an untyped string until a type element shows up
 * (then it must have been whitespace). */
static int collects_text(const struct frame *f)
{
    static const unsigned char keeps[N_COUNT] = {
        [N_SCALAR] = 1, [N_NAME] = 1, [N_METHOD_NAME] = 1, [N_VALUE] = 1};

    return keeps[f->node] && (f->node != N_VALUE || f->seen == 0);
}

/* Character data inside the innermost element (see text_add for stable). */
static void add_text(struct parser *p, const char *s, size_t len, int stable)
{
    struct frame *f = &p->stack[p->depth];

    if (collects_text(f))
        text_add(p, s, len, stable);
    else if (!is_blank(s, len))
        fail(p, XR_FAULT_INVALID_REQUEST, "unexpected text in <%s>", f->tag);
}

/* A finished <value> hands its value to whatever holds it. */
static void deliver(struct frame *parent, struct xr_value *v)
{
    if (parent->node == N_DATA)
        xr_value_append(parent->value, v);
    else
        parent->value = v; /* N_PARAM, N_MEMBER, N_FAULT */
}

static void end_value(struct parser *p, struct frame *f, struct frame *parent)
{
    struct xr_value *v = f->value;

    /* <value>text</value> and <value/> are strings (XML-RPC spec: "If no
     * type is indicated, the type is string"), whitespace kept. */
    if (f->seen == 0)
        v = xr_value_new_string(p->arena, XR_STRING, p->text, p->text_len);
    deliver(parent, v);
}

static void end_member(struct parser *p, struct frame *f, struct frame *parent)
{
    if (!(f->seen & BIT(N_NAME))) {
        fail(p, XR_FAULT_INVALID_REQUEST, "struct member without <name>");
        return;
    }
    if (!(f->seen & BIT(N_VALUE))) {
        fail(p, XR_FAULT_INVALID_REQUEST, "struct member '%.*s' without <value>",
             f->name_len > QUOTE_MAX ? QUOTE_MAX : (int)f->name_len, f->name);
        return;
    }
    f->value->name = f->name;
    f->value->name_len = f->name_len;
    xr_value_append(parent->value, f->value);
}

static void end_method_name(struct parser *p)
{
    const char *s = p->text;
    size_t len = p->text_len;

    /* Kept as sent, blanks included: the legacy looks the name up as it
     * is, so " stock.adjust" is no method there, and must not become
     * stock.adjust on the way to a new service. */
    if (len == 0 || is_blank(s, len)) {
        fail(p, XR_FAULT_INVALID_REQUEST, "empty <methodName>");
        return;
    }
    p->method = arena_strndup(p->arena, s, len);
    p->method_len = len;
    if (p->flags & XR_PARSE_METHOD_ONLY) {
        /* Routing needs nothing more; the rest is parsed (once) only if
         * the route sends the call to an adapter. */
        p->finished = 1;
        if (p->ctxt != NULL)
            xmlStopParser(p->ctxt);
    }
}

static void end_params(struct parser *p, const struct frame *f)
{
    if (p->root == N_METHOD_RESPONSE && f->value->u.list.count != 1)
        fail(p, XR_FAULT_INVALID_REQUEST,
             "<params> of a <methodResponse> must hold exactly one <param>, not %zu",
             f->value->u.list.count);
}

static void end_fault(struct parser *p, struct frame *f)
{
    if (f->value == NULL) {
        fail(p, XR_FAULT_INVALID_REQUEST, "<fault> without <value>");
        return;
    }
    p->fault = f->value;
}

static void end_element(struct parser *p, struct frame *f, struct frame *parent)
{
    switch (f->node) {
    case N_SCALAR:
        parent->value = scalar_value(p, f);
        break;
    case N_VALUE:
        end_value(p, f, parent);
        break;
    case N_NAME:
        /* Member names are kept as sent, like Python's unmarshaller does. */
        parent->name = arena_strndup(p->arena, p->text_len ? p->text : "", p->text_len);
        parent->name_len = p->text_len;
        break;
    case N_MEMBER:
        end_member(p, f, parent);
        break;
    case N_PARAM:
        if (f->value == NULL)
            fail(p, XR_FAULT_INVALID_REQUEST, "<param> without <value>");
        else
            xr_value_append(parent->value, f->value);
        break;
    case N_PARAMS:
        end_params(p, f);
        break;
    case N_METHOD_NAME:
        end_method_name(p);
        break;
    case N_FAULT:
        end_fault(p, f);
        break;
    case N_METHOD_CALL:
        if (!(f->seen & BIT(N_METHOD_NAME)))
            fail(p, XR_FAULT_INVALID_REQUEST, "<methodCall> without <methodName>");
        break;
    case N_METHOD_RESPONSE:
        if (f->seen == 0)
            fail(p, XR_FAULT_INVALID_REQUEST, "<methodResponse> without <params> or <fault>");
        break;
    default:
        break;
    }
}

/* The innermost element ends. */
static void end_innermost(struct parser *p)
{
    end_element(p, &p->stack[p->depth], &p->stack[p->depth - 1]);
    p->depth--;
    text_drop(p);
}

/* ------------------------------------------------------------------------ */
/* Parsing: libxml2's SAX callbacks                                         */

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int nb_namespaces, const xmlChar **namespaces, int nb_attributes,
                     int nb_defaulted, const xmlChar **attributes)
{
    struct parser *p = parser_of(ctx);
    const char *tag = (const char *)localname; /* prefixes (ex:i8) are ignored */

    (void)prefix, (void)uri, (void)nb_namespaces, (void)namespaces;
    (void)nb_attributes, (void)nb_defaulted, (void)attributes;
    if (!p->failed && !p->finished)
        start_element(p, tag, strlen(tag));
}

static void on_text(void *ctx, const xmlChar *ch, int len)
{
    struct parser *p = parser_of(ctx);

    /* libxml2's buffer is reused after the callback: never stable. */
    if (!p->failed && !p->finished)
        add_text(p, (const char *)ch, (size_t)len, 0);
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    struct parser *p = parser_of(ctx);

    (void)localname, (void)prefix, (void)uri;
    if (!p->failed && !p->finished)
        end_innermost(p);
}

/*
 * The DTD hooks. A DOCTYPE stops the parse before its internal subset is
 * read, so no entity is ever declared: billion laughs, quadratic blowup and
 * XXE have nothing to expand (FIELD-NOTES.md). The entity callbacks below
 * are a second line of defence should a declaration ever get through.
 */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
    struct parser *p = parser_of(ctx);
    (void)name, (void)external_id, (void)system_id;
    /* XML-RPC has no use for a DOCTYPE, and the name it declares proves
     * nothing (billion laughs declares "lolz" around a <methodCall>): a body
     * posted to an XML-RPC endpoint with one is an attack or a mistake, and
     * either way it is refused as the call it pretends to be, with a fault
     * from a route that would have parsed it. */
    p->call_root = 1;
    fail_doc(p, XR_FAULT_PARSE, "DOCTYPE is not allowed");
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                           const xmlChar *system_id, xmlChar *content)
{
    (void)name, (void)type, (void)public_id, (void)system_id, (void)content;
    fail(parser_of(ctx), XR_FAULT_PARSE, "entity declarations are not allowed");
}

static void on_unparsed_entity_decl(void *ctx, const xmlChar *name, const xmlChar *public_id,
                                    const xmlChar *system_id, const xmlChar *notation)
{
    (void)name, (void)public_id, (void)system_id, (void)notation;
    fail(parser_of(ctx), XR_FAULT_PARSE, "entity declarations are not allowed");
}

static xmlEntityPtr on_get_entity(void *ctx, const xmlChar *name)
{
    /* &lt; and friends never get here (libxml2 resolves them first), but
     * answering for them keeps this safe should that change. */
    xmlEntityPtr predefined = xmlGetPredefinedEntity(name);
    if (predefined != NULL)
        return predefined;
    fail(parser_of(ctx), XR_FAULT_PARSE, "entity references are not allowed (&%s;)",
         (const char *)name);
    return NULL;
}

static xmlEntityPtr on_get_parameter_entity(void *ctx, const xmlChar *name)
{
    fail(parser_of(ctx), XR_FAULT_PARSE, "entity references are not allowed (%%%s;)",
         (const char *)name);
    return NULL;
}

static void on_reference(void *ctx, const xmlChar *name)
{
    fail(parser_of(ctx), XR_FAULT_PARSE, "entity references are not allowed (&%s;)",
         (const char *)name);
}

static void strip_trailing_space(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* Turns one of libxml2's complaints into an interop fault. */
static void libxml_error(const xmlError *e, struct xr_error *err)
{
    if (e->code == XML_ERR_UNSUPPORTED_ENCODING || e->code == XML_ERR_UNKNOWN_ENCODING)
        err->code = XR_FAULT_ENCODING;
    else if (e->code == XML_ERR_INVALID_CHAR || e->code == XML_ERR_INVALID_ENCODING ||
             e->code == XML_I18N_CONV_FAILED)
        err->code = XR_FAULT_CHAR;
    else
        err->code = XR_FAULT_PARSE;
    snprintf(err->message, sizeof(err->message), "line %d: %s", e->line,
             e->message ? e->message : "XML is not well formed");
    strip_trailing_space(err->message);
}

/*
 * libxml2 keeps parsing after a fatal error to find more, and its "last
 * error" is often a consequence ("Premature end of data") of the first one,
 * which is the one worth reporting. Namespace errors (an undeclared ex:
 * prefix) and warnings do not make a document ill-formed and are ignored.
 */
static void on_error(void *ctx, xmlErrorPtr e)
{
    struct parser *p = parser_of(ctx);

    if (p->first.code != 0 || e->level < XML_ERR_ERROR || e->domain == XML_FROM_NAMESPACE)
        return;
    libxml_error(e, &p->first);
    /* libxml2's push parser calls a body that stops inside an element
     * "Extra content at the end of the document", which sends a reader
     * looking for bytes that are not there: say what happened. */
    if (e->code == XML_ERR_DOCUMENT_END && p->depth > 0)
        snprintf(p->first.message, sizeof(p->first.message),
                 "line %d: the body ends inside <%s>: it was cut short", e->line,
                 p->stack[p->depth].tag);
}

/*
 * The handler starts from libxml2's SAX2 defaults (for the SAX2 magic that
 * selects startElementNs) and then switches off everything that would build
 * a document, a DTD or load anything. libxml2 still passes the parser
 * context as the callbacks' ctx, and our state hangs off ctxt->_private.
 */
static void sax_init(xmlSAXHandler *h)
{
    xmlSAXVersion(h, 2);
    h->internalSubset = on_doctype;
    h->externalSubset = NULL;
    h->isStandalone = NULL;
    h->hasInternalSubset = NULL;
    h->hasExternalSubset = NULL;
    h->resolveEntity = NULL;
    h->getEntity = on_get_entity;
    h->getParameterEntity = on_get_parameter_entity;
    h->entityDecl = on_entity_decl;
    h->unparsedEntityDecl = on_unparsed_entity_decl;
    h->notationDecl = NULL;
    h->attributeDecl = NULL;
    h->elementDecl = NULL;
    h->setDocumentLocator = NULL;
    h->startDocument = NULL;
    h->endDocument = NULL;
    h->startElement = NULL;
    h->endElement = NULL;
    h->startElementNs = on_start;
    h->endElementNs = on_end;
    h->reference = on_reference;
    h->characters = on_text;
    h->cdataBlock = on_text; /* CDATA sections are text (XML 1.0, 2.7) */
    h->ignorableWhitespace = on_text;
    h->processingInstruction = NULL;
    h->comment = NULL;
    h->warning = NULL;
    h->error = NULL;
    h->fatalError = NULL;
    h->serror = on_error;
}

/* ------------------------------------------------------------------------ */
/* Parsing: driving the scanner or libxml2                                  */

/* Puts p back where a parse starts, keeping its limits and allocations. */
static void parser_restart(struct parser *p)
{
    p->ctxt = NULL;
    p->elements = 0;
    p->depth = 0;
    text_drop(p);
    p->failed = 0;
    p->finished = 0;
    p->call_root = 0;
    memset(&p->err, 0, sizeof(p->err));
    memset(&p->first, 0, sizeof(p->first));
    p->method = NULL;
    p->method_len = 0;
    p->params = NULL;
    p->fault = NULL;
    memset(&p->stack[0], 0, sizeof(p->stack[0]));
    p->stack[0].node = N_DOCUMENT;
    p->stack[0].tag = "document";
}

static void parser_init(struct parser *p, struct arena *a, const struct xr_limits *lim,
                        enum node root, int flags)
{
    memset(p, 0, sizeof(*p));
    p->arena = a;
    p->root = root;
    p->flags = flags;
    p->max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH;
    p->max_elements = lim && lim->max_elements ? lim->max_elements : DEFAULT_MAX_ELEMENTS;
    p->cap = PARSER_FIRST_FRAMES;
    p->stack = p->first_frames;
    parser_restart(p);
}

static void parser_dispose(struct parser *p)
{
    if (p->stack != p->first_frames)
        free(p->stack);
    buf_dispose(&p->gather);
}

static void set_error(struct xr_error *err, int code, const char *message)
{
    err->code = code;
    snprintf(err->message, sizeof(err->message), "%s", message);
}

static void not_well_formed(const struct parser *p, xmlParserCtxtPtr ctxt, struct xr_error *err)
{
    const xmlError *last = xmlCtxtGetLastError(ctxt);

    if (p->first.code != 0)
        *err = p->first;
    else if (last != NULL && last->code != 0)
        libxml_error(last, err);
    else
        set_error(err, XR_FAULT_PARSE, "XML is not well formed");
}

/*
 * libxml2's push parser copies only what it is fed, so the body goes in
 * chunks: a method-only parse (the router's, on every request) stops after
 * the first few KB instead of copying a large body whole, as
 * xmlCreateMemoryParserCtxt() would. The later chunks are large to keep the
 * per-chunk bookkeeping negligible.
 */
#define FIRST_CHUNK 4096
#define CHUNK       65536

static void feed(struct parser *p, xmlParserCtxtPtr ctxt, const char *body, size_t len)
{
    size_t off = 0;

    for (size_t n = FIRST_CHUNK;; n = CHUNK) {
        if (n > len - off)
            n = len - off;
        int last = off + n == len;
        /* The return value is not the verdict: a namespace error makes it
         * nonzero while the document stays well formed. */
        xmlParseChunk(ctxt, body + off, (int)n, last);
        off += n;
        if (last || p->failed || p->finished || !ctxt->wellFormed)
            return;
    }
}

/*
 * Runs one parse of `body` into p, with a fresh context: libxml2's rule is
 * one context per document, and creating one is cheap next to a parse.
 * Returns 0 or -1 with *err set.
 */
static int run(struct parser *p, const char *body, size_t len, struct xr_error *err)
{
    xmlSAXHandler sax;
    xmlParserCtxtPtr ctxt = NULL;
    int rc = -1;

    if (len == 0) {
        set_error(err, XR_FAULT_PARSE, "empty body");
        goto out;
    }
    if (len > INT_MAX) {
        set_error(err, XR_FAULT_PARSE, "body too large for the XML parser");
        goto out;
    }
    sax_init(&sax);
    /* No first chunk: libxml2 then detects the encoding (byte order mark,
     * UTF-16) from the first bytes it is fed. The handler is copied; the
     * callbacks get the context as ctx, and find p in ctxt->_private. */
    ctxt = xmlCreatePushParserCtxt(&sax, NULL, NULL, 0, NULL);
    if (ctxt == NULL) {
        set_error(err, XR_FAULT_INTERNAL, "cannot create an XML parser");
        goto out;
    }
    ctxt->_private = p;
    p->ctxt = ctxt;
    xmlCtxtUseOptions(ctxt, PARSE_OPTIONS);
    feed(p, ctxt, body, len);
    if (p->failed)
        *err = p->err;
    else if (p->finished)
        rc = 0;
    else if (!ctxt->wellFormed)
        not_well_formed(p, ctxt, err);
    else if (p->depth != 0 || p->stack[0].seen == 0)
        /* libxml2 2.9.14 can halt on an encoder error in a later chunk
         * (a declared UTF-7 or Shift-JIS body with a bad byte) and still
         * call the document well formed: whatever it says, a parse that
         * did not close its root element read no document. */
        set_error(err, XR_FAULT_CHAR, "the body could not be decoded in its declared encoding");
    else
        rc = 0;
out:
    if (ctxt != NULL)
        xmlFreeParserCtxt(ctxt);
    return rc;
}

/*
 * The fast path: the scanner's tokens drive the same grammar as libxml2's
 * callbacks. Returns 0 when the document (or, with XR_PARSE_METHOD_ONLY,
 * the part up to the method name) was read and accepted, and -1 when the
 * scanner declined it or the grammar failed; then nothing in p is to be
 * used, and the values made so far stay unused in the arena until it goes.
 */
static int run_fast(struct parser *p, const char *body, size_t len)
{
    struct xrscan s;

    xrscan_init(&s, body, len);
    while (!p->failed && !p->finished) {
        switch (xrscan_next(&s)) {
        case XRSCAN_START:
            start_element(p, s.name, s.name_len);
            /* Whitespace where add_text() would ignore it need not be
             * scanned as text at all. */
            s.skip_blank = !collects_text(&p->stack[p->depth]);
            break;
        case XRSCAN_END:
            end_innermost(p);
            s.skip_blank = !collects_text(&p->stack[p->depth]);
            break;
        case XRSCAN_TEXT:
            add_text(p, s.text, s.text_len, s.text_stable);
            break;
        case XRSCAN_DONE:
            return 0;
        case XRSCAN_DECLINE:
            return -1;
        }
    }
    return p->failed ? -1 : 0;
}

/*
 * Parses the body into p: with the scanner when it can, else (or when
 * XR_PARSE_NO_FAST_PATH says so) with libxml2 from the start, so that every
 * error is libxml2's or the grammar's as libxml2 feeds it, with its line.
 */
static int parse_body(struct parser *p, const char *body, size_t len, struct xr_error *err)
{
    if (!(p->flags & XR_PARSE_NO_FAST_PATH)) {
        if (run_fast(p, body, len) == 0)
            return 0;
        if (p->flags & XR_PARSE_FAST_PATH_ONLY) {
            set_error(err, XR_FAULT_INTERNAL, "the fast path declined the body");
            return -1;
        }
        parser_restart(p);
    }
    return run(p, body, len, err);
}

int xr_parse_call(struct arena *a, const char *body, size_t len, const struct xr_limits *lim,
                  int flags, struct xr_call *out, struct xr_error *err)
{
    struct parser p;
    int rc = -1;

    parser_init(&p, a, lim, N_METHOD_CALL, flags);
    if (parse_body(&p, body, len, err) < 0) {
        err->call_root = p.call_root;
        goto out;
    }
    out->method = p.method;
    out->method_len = p.method_len;
    out->params = NULL;
    if (!(flags & XR_PARSE_METHOD_ONLY))
        out->params = p.params ? p.params : xr_value_new(a, XR_ARRAY); /* <params> is optional */
    rc = 0;
out:
    parser_dispose(&p);
    return rc;
}

/* A fault's value must be the struct the spec describes. */
static int read_fault(const struct xr_value *v, struct xr_response *out, struct xr_error *err)
{
    const char *why;
    if (xr_fault_read(v, out, &why) != 0) {
        err->code = XR_FAULT_INVALID_REQUEST;
        snprintf(err->message, sizeof(err->message), "<fault>: %s", why);
        return -1;
    }
    return 0;
}

int xr_parse_response_flags(struct arena *a, const char *body, size_t len,
                            const struct xr_limits *lim, int flags, struct xr_response *out,
                            struct xr_error *err)
{
    struct parser p;
    int rc = -1;

    /* METHOD_ONLY would stop at a <methodName>, which no response has. */
    parser_init(&p, a, lim, N_METHOD_RESPONSE, flags & ~XR_PARSE_METHOD_ONLY);
    if (parse_body(&p, body, len, err) < 0)
        goto out;
    if (p.fault != NULL) {
        if (read_fault(p.fault, out, err) < 0)
            goto out;
    } else {
        out->is_fault = 0;
        out->result = p.params->u.list.first;
        out->fault_code = 0;
        out->fault_string = NULL;
        out->fault_string_len = 0;
    }
    rc = 0;
out:
    parser_dispose(&p);
    return rc;
}

int xr_parse_response(struct arena *a, const char *body, size_t len, const struct xr_limits *lim,
                      struct xr_response *out, struct xr_error *err)
{
    return xr_parse_response_flags(a, body, len, lim, XR_PARSE_FULL, out, err);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

/*
 * buf_append for the writer's many short pieces. Inline, so that a literal
 * tag costs a capacity check and a fixed-size copy, not a call; the buffer
 * is reserved up front (estimate()), so the check rarely fails.
 */
static inline void put(struct buf *b, const void *s, size_t n)
{
    if (n == 0) /* also keeps memcpy's pointers non-null for an empty buf */
        return;
    if (n > b->cap - b->len)
        buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

/*
 * Length of the UTF-8 sequence at s that is a character XML 1.0 allows
 * (production Char), or 0. Surrogates, overlong forms, code points above
 * U+10FFFF and U+FFFE/U+FFFF are all refused.
 */
static size_t xml_char_len(const unsigned char *s, size_t avail)
{
    unsigned cp;
    size_t n = utf8_decode(s, avail, &cp);
    if (n == 0 || cp == 0xfffe || cp == 0xffff)
        return 0;
    return n;
}

/* The bytes write_text() must look at: & < >, control characters other
 * than tab and LF, and every byte of a multi-byte sequence's start. */
/* clang-format off */
static const unsigned char needs_care[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x80 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x90 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xa0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xb0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xc0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xd0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xe0 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0xf0 */
};
/* clang-format on */

/* What write_text() writes for a byte that needs care and is not the start
 * of a valid UTF-8 character. */
static void put_escaped(struct buf *out, unsigned char c)
{
    if (c == '&')
        PUT_LIT(out, "&amp;");
    else if (c == '<')
        PUT_LIT(out, "&lt;");
    else if (c == '>')
        PUT_LIT(out, "&gt;");
    else if (c == '\r')
        PUT_LIT(out, "&#13;");
    else
        PUT_LIT(out, "\xef\xbf\xbd");
}

/*
 * Appends text escaped for element content. & < > are escaped as usual, and
 * CR as &#13; because a literal CR is turned into LF by every XML parser
 * (XML 1.0, 2.11). Bytes XML cannot carry at all (control characters other
 * than tab, LF and CR, invalid UTF-8, e.g. from a JSON "\u0001") become
 * U+FFFD: a well-formed answer with a visible replacement beats one that
 * the client cannot parse. Runs that need nothing, valid multi-byte
 * characters included, are copied in one piece.
 */
static void write_text(struct buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;

    while (p < end) {
        if (!needs_care[*p]) {
            p++;
            continue;
        }
        if (*p >= 0x80) {
            size_t n = xml_char_len(p, (size_t)(end - p));
            if (n != 0) {
                p += n;
                continue;
            }
        }
        put(out, run, (size_t)(p - run));
        put_escaped(out, *p);
        run = ++p;
    }
    put(out, run, (size_t)(p - run));
}

static void write_int(struct buf *out, int64_t i)
{
    /* <int> is 32 bits by the spec; wider values need the i8 extension. */
    if (i < INT32_MIN || i > INT32_MAX) {
        PUT_LIT(out, "<i8>");
        buf_append_i64(out, i);
        PUT_LIT(out, "</i8>");
    } else {
        PUT_LIT(out, "<int>");
        buf_append_i64(out, i);
        PUT_LIT(out, "</int>");
    }
}

static void write_double(struct buf *out, double d)
{
    char tmp[32];

    /* Python writes repr(float): "nan", "inf", "-inf", and reads them back. */
    PUT_LIT(out, "<double>");
    if (isnan(d))
        PUT_LIT(out, "nan");
    else if (isinf(d) && d > 0)
        PUT_LIT(out, "inf");
    else if (isinf(d))
        PUT_LIT(out, "-inf");
    else
        put(out, tmp, jsonw_format_double(tmp, d));
    PUT_LIT(out, "</double>");
}

/*
 * About how many bytes write_value() appends for v: exact for the markup,
 * with room for a few escapes in text, so that the output buffer is
 * allocated once instead of doubling its way up. Text with many escapes
 * makes the buffer grow as usual. Recursion is bounded like
 * write_value()'s.
 */
static size_t estimate(const struct xr_value *v)
{
    size_t n = sizeof("<value></value>") - 1;

    switch (v ? v->type : XR_NIL) {
    case XR_INT:
        return n + sizeof("<int></int>-9223372036854775808") - 1;
    case XR_BOOL:
        return n + sizeof("<boolean>0</boolean>") - 1;
    case XR_DOUBLE:
        return n + sizeof("<double></double>-1.2345678901234567e-308") - 1;
    case XR_STRING:
    case XR_DATETIME:
        return n + sizeof("<dateTime.iso8601></dateTime.iso8601>") - 1 + v->u.str.len +
               v->u.str.len / 16;
    case XR_BASE64:
        return n + sizeof("<base64></base64>") - 1 + (v->u.str.len + 2) / 3 * 4;
    case XR_ARRAY:
    case XR_STRUCT:
        n += sizeof("<array><data></data></array>") - 1;
        for (const struct xr_value *c = v->u.list.first; c != NULL; c = c->next) {
            n += estimate(c);
            if (v->type == XR_STRUCT)
                n += sizeof("<member><name></name></member>") - 1 + c->name_len;
        }
        return n;
    default:
        return n + sizeof("<nil/>") - 1;
    }
}

static void write_value(struct buf *out, const struct xr_value *v);

static void write_members(struct buf *out, const struct xr_value *v)
{
    for (const struct xr_value *m = v->u.list.first; m != NULL; m = m->next) {
        PUT_LIT(out, "<member><name>");
        write_text(out, m->name ? m->name : "", m->name ? m->name_len : 0);
        PUT_LIT(out, "</name>");
        write_value(out, m);
        PUT_LIT(out, "</member>");
    }
}

/* Recursion is bounded by the depth limits the tree was parsed under. */
static void write_value(struct buf *out, const struct xr_value *v)
{
    PUT_LIT(out, "<value>");
    switch (v ? v->type : XR_NIL) {
    case XR_INT:
        write_int(out, v->u.i);
        break;
    case XR_BOOL:
        if (v->u.b)
            PUT_LIT(out, "<boolean>1</boolean>");
        else
            PUT_LIT(out, "<boolean>0</boolean>");
        break;
    case XR_STRING:
        PUT_LIT(out, "<string>");
        write_text(out, v->u.str.ptr, v->u.str.len);
        PUT_LIT(out, "</string>");
        break;
    case XR_DOUBLE:
        write_double(out, v->u.d);
        break;
    case XR_DATETIME:
        PUT_LIT(out, "<dateTime.iso8601>");
        write_text(out, v->u.str.ptr, v->u.str.len);
        PUT_LIT(out, "</dateTime.iso8601>");
        break;
    case XR_BASE64:
        PUT_LIT(out, "<base64>");
        base64_encode(out, v->u.str.ptr, v->u.str.len);
        PUT_LIT(out, "</base64>");
        break;
    case XR_ARRAY:
        PUT_LIT(out, "<array><data>");
        for (const struct xr_value *c = v->u.list.first; c != NULL; c = c->next)
            write_value(out, c);
        PUT_LIT(out, "</data></array>");
        break;
    case XR_STRUCT:
        PUT_LIT(out, "<struct>");
        write_members(out, v);
        PUT_LIT(out, "</struct>");
        break;
    case XR_NIL:
    case XR_NONE:
        PUT_LIT(out, "<nil/>");
        break;
    }
    PUT_LIT(out, "</value>");
}

void xr_write_value(struct buf *out, const struct xr_value *v)
{
    buf_reserve(out, estimate(v));
    write_value(out, v);
}

/* Room for a call or response around its values: the XML declaration and
 * the elements of xr_write_call() and write_fault_body(). */
#define ENVELOPE 256

void xr_write_call(struct buf *out, const char *method, size_t method_len,
                   const struct xr_value *params)
{
    int list = params != NULL && params->type == XR_ARRAY;

    buf_reserve(out, ENVELOPE + method_len + (list ? estimate(params) : 0));
    PUT_LIT(out, "<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    write_text(out, method, method_len);
    PUT_LIT(out, "</methodName><params>");
    if (list) {
        for (const struct xr_value *c = params->u.list.first; c != NULL; c = c->next) {
            PUT_LIT(out, "<param>");
            write_value(out, c);
            PUT_LIT(out, "</param>");
        }
    }
    PUT_LIT(out, "</params></methodCall>\n");
}

/* The fault struct exactly as Python's xmlrpc.client.dumps(Fault) shapes
 * it: faultCode first, as an <int>, then faultString as a <string>. */
static void write_fault_body(struct buf *out, int64_t code, const char *message, size_t len)
{
    buf_reserve(out, ENVELOPE + len);
    PUT_LIT(out, "<?xml version=\"1.0\"?>\n<methodResponse><fault><value><struct>"
                 "<member><name>faultCode</name><value>");
    write_int(out, code);
    PUT_LIT(out, "</value></member><member><name>faultString</name><value><string>");
    write_text(out, message ? message : "", message ? len : 0);
    PUT_LIT(out, "</string></value></member></struct></value></fault></methodResponse>\n");
}

void xr_write_response(struct buf *out, const struct xr_response *r)
{
    if (r->is_fault) {
        write_fault_body(out, r->fault_code, r->fault_string, r->fault_string_len);
        return;
    }
    /* A missing result is written as <nil/>, which Python always reads. */
    buf_reserve(out, ENVELOPE + estimate(r->result));
    PUT_LIT(out, "<?xml version=\"1.0\"?>\n<methodResponse><params><param>");
    write_value(out, r->result);
    PUT_LIT(out, "</param></params></methodResponse>\n");
}

void xr_write_fault(struct buf *out, int64_t code, const char *message, size_t len)
{
    write_fault_body(out, code, message, len);
}

/* ---- a glance at a streamed answer ---- */

/* Skips blanks, the XML declaration and comments from *p. Returns 0, or
 * -1 when the bytes end inside one of them. */
static int sniff_skip_prolog(const char **p, const char *end)
{
    for (;;) {
        while (*p < end && (**p == ' ' || **p == '\t' || **p == '\r' || **p == '\n'))
            (*p)++;
        const char *close = NULL;
        if (end - *p >= 2 && memcmp(*p, "<?", 2) == 0)
            close = "?>";
        else if (end - *p >= 4 && memcmp(*p, "<!--", 4) == 0)
            close = "-->";
        else
            return *p < end && (end - *p >= 4 || **p != '<') ? 0 : -1;
        const char *stop = memmem(*p, (size_t)(end - *p), close, strlen(close));
        if (stop == NULL)
            return -1;
        *p = stop + strlen(close);
    }
}

/* Whether the bytes at p open element `name` (followed by '>', '/' or a
 * blank). -1 when they end too soon to tell. */
static int sniff_opens(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);
    if ((size_t)(end - p) < n + 1)
        return memcmp(p, name, (size_t)(end - p) < n ? (size_t)(end - p) : n) == 0 ? -1 : 0;
    char after = p[n];
    return memcmp(p, name, n) == 0 && (after == '>' || after == '/' || after == ' ' ||
                                       after == '\t' || after == '\r' || after == '\n');
}

static const char *sniff_skip_blanks(const char *q, const char *end)
{
    while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t'))
        q++;
    return q;
}

/* The integer of the fault's faultCode member: the text of its <value>,
 * or of the <int>, <i4> or <i8> inside it. Returns 0 when it is not within
 * the bytes whole (the text must end before the bytes do) or is no 64-bit
 * integer. */
static int sniff_fault_code(const char *p, const char *end, int64_t *code)
{
    const char *q = memmem(p, (size_t)(end - p), "faultCode", 9);
    if (q == NULL || (q = memmem(q, (size_t)(end - q), "<value", 6)) == NULL ||
        (q = memchr(q, '>', (size_t)(end - q))) == NULL)
        return 0;
    q = sniff_skip_blanks(q + 1, end);
    static const char *const tags[] = {"<int>", "<i4>", "<i8>"};
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        size_t n = strlen(tags[i]);
        if ((size_t)(end - q) >= n && memcmp(q, tags[i], n) == 0) {
            q = sniff_skip_blanks(q + n, end);
            break;
        }
    }
    int neg = q < end && (*q == '-' || *q == '+') ? *q++ == '-' : 0;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    const char *digits = q;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        if (v > (limit - (uint64_t)(*q - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    /* No digits, or digits the bytes cut off: the code is not known. */
    if (q == digits || q >= end ||
        (*q != '<' && *q != ' ' && *q != '\n' && *q != '\r' && *q != '\t'))
        return 0;
    *code = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

enum xr_sniff xr_sniff_response(const char *data, size_t len, int64_t *code, int *code_known)
{
    const char *p = data, *end = data + len;
    *code = 0;
    *code_known = 0;
    if (len < 3 && memcmp(p, "\xef\xbb\xbf", len) == 0)
        return XR_SNIFF_MORE; /* perhaps a byte order mark, cut short */
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3;
    if (sniff_skip_prolog(&p, end) != 0)
        return XR_SNIFF_MORE;
    int r = sniff_opens(p, end, "<methodResponse");
    if (r <= 0)
        return r < 0 ? XR_SNIFF_MORE : XR_SNIFF_NOT_FAULT;
    p = memchr(p, '>', (size_t)(end - p));
    if (p == NULL)
        return XR_SNIFF_MORE;
    p++;
    if (sniff_skip_prolog(&p, end) != 0)
        return XR_SNIFF_MORE;
    r = sniff_opens(p, end, "<fault");
    if (r <= 0)
        return r < 0 ? XR_SNIFF_MORE : XR_SNIFF_NOT_FAULT;
    *code_known = sniff_fault_code(p, end, code);
    return XR_SNIFF_FAULT;
}

/* ---- a glance at a call's method name ---- */

/* How far into a call its method name is looked for, and its longest. */
#define PEEK_WINDOW             512
#define INVENTORY_NAME_PEEK_MAX 255

int xr_peek_method_name(const char *body, size_t len, const char **name, size_t *name_len)
{
    static const char open[] = "<methodName>", close[] = "</methodName>";
    size_t window = len < PEEK_WINDOW ? len : PEEK_WINDOW;
    const char *start = memmem(body, window, open, sizeof(open) - 1);
    if (start == NULL)
        return 0;
    /* Markup that could hide or fake the element: leave it to the parser.
     * A processing instruction can hold "<methodName>" as plain text
     * (XML 1.0, section 2.6), so the only "<?" allowed before the name is
     * the XML declaration at the very start, whose content (version,
     * encoding and standalone values) cannot hold '<' or "?>" in a document
     * the parser accepts (issue 9: fuzz/fuzz_xmlrpc_call checks the glance
     * against the parser). */
    size_t before = (size_t)(start - body);
    if (memmem(body, before, "<!", 2) != NULL)
        return 0;
    const char *pi = memmem(body, before, "<?", 2);
    if (pi != NULL) {
        const char *decl_end = memmem(body, before, "?>", 2);
        if (pi != body || before < 6 || memcmp(body, "<?xml", 5) != 0 ||
            memchr(" \t\r\n", body[5], 4) == NULL || decl_end == NULL ||
            memmem(decl_end, before - (size_t)(decl_end - body), "<?", 2) != NULL)
            return 0;
    }
    const char *text = start + sizeof(open) - 1, *end = body + len;
    size_t n = 0;
    while (text + n < end && n <= INVENTORY_NAME_PEEK_MAX &&
           (isalnum((unsigned char)text[n]) || strchr("_.:/-", text[n]) != NULL) && text[n] != '\0')
        n++;
    if (n == 0 || n > INVENTORY_NAME_PEEK_MAX || (size_t)(end - (text + n)) < sizeof(close) - 1 ||
        memcmp(text + n, close, sizeof(close) - 1) != 0)
        return 0;
    *name = text;
    *name_len = n;
    return 1;
}
