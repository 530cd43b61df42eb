#include "legacy-adapters/xmlrpc.h"

#include "common/jsonw.h"
#include "common/utf8.h"
#include "legacy-adapters/base64.h"

#include <libxml/SAX2.h>
#include <libxml/entities.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_DEPTH    64
#define DEFAULT_MAX_ELEMENTS 1000000

/* How much of an unreadable value a message quotes. */
#define QUOTE_MAX 64

/* Untrusted input: no network, no output on stderr. Entity substitution
 * (NOENT), DTD loading and validation are deliberately absent (FIELD-NOTES). */
#define PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

#define APPEND_LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

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

void xr_init(void)
{
    xmlInitParser();
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
    enum node node;
    enum xr_type type; /* the value a N_SCALAR or N_NIL element makes */
};

/* Ordered by how often the names occur in real traffic, since lookup is a
 * linear scan. i1, i2 and biginteger are Apache XML-RPC's extensions. */
static const struct element elements[] = {
    {"value", N_VALUE, XR_NONE},
    {"member", N_MEMBER, XR_NONE},
    {"name", N_NAME, XR_NONE},
    {"string", N_SCALAR, XR_STRING},
    {"int", N_SCALAR, XR_INT},
    {"i4", N_SCALAR, XR_INT},
    {"struct", N_STRUCT, XR_STRUCT},
    {"array", N_ARRAY, XR_ARRAY},
    {"data", N_DATA, XR_NONE},
    {"boolean", N_SCALAR, XR_BOOL},
    {"double", N_SCALAR, XR_DOUBLE},
    {"i8", N_SCALAR, XR_INT},
    {"dateTime.iso8601", N_SCALAR, XR_DATETIME},
    {"base64", N_SCALAR, XR_BASE64},
    {"nil", N_NIL, XR_NIL},
    {"param", N_PARAM, XR_NONE},
    {"params", N_PARAMS, XR_NONE},
    {"methodName", N_METHOD_NAME, XR_NONE},
    {"methodCall", N_METHOD_CALL, XR_NONE},
    {"methodResponse", N_METHOD_RESPONSE, XR_NONE},
    {"fault", N_FAULT, XR_NONE},
    {"float", N_SCALAR, XR_DOUBLE},
    {"i1", N_SCALAR, XR_INT},
    {"i2", N_SCALAR, XR_INT},
    {"biginteger", N_SCALAR, XR_INT},
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
struct frame {
    enum node node;
    enum xr_type type; /* what a N_SCALAR, N_NIL, N_ARRAY or N_STRUCT makes */
    const char *tag;   /* local name, owned by the parser's dictionary */
    unsigned seen;     /* BIT() of every kind of child seen so far */
    struct xr_value *value;
    const char *name; /* N_MEMBER: its <name>, once that has ended */
    size_t name_len;
};

/*
 * One parse. The text buffer is shared by all elements: only the innermost
 * open element collects text, and it is emptied whenever an element opens
 * or closes, so a document costs one growing allocation for text however
 * many strings it holds.
 */
struct parser {
    struct arena *arena;
    xmlParserCtxtPtr ctxt;
    enum node root; /* N_METHOD_CALL or N_METHOD_RESPONSE */
    int flags;
    unsigned max_depth;
    size_t max_elements;
    size_t elements;
    struct frame *stack; /* stack[0] is the document; stack[depth] the innermost element */
    unsigned depth;
    unsigned cap;
    struct buf text;
    int failed;   /* err holds the cause; the parser has been stopped */
    int finished; /* XR_PARSE_METHOD_ONLY got what it wanted and stopped */
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

static const struct element *element_find(const char *tag)
{
    /* Comparing the first byte first skips most strcmp() calls. */
    for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++)
        if (elements[i].tag[0] == tag[0] && strcmp(elements[i].tag, tag) == 0)
            return &elements[i];
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
 * strtod() must consume exactly the trimmed text; the NUL it needs is the
 * one buf_cstr() put after the untrimmed text, and strtod stops at the
 * trailing whitespace anyway. Exponents, "nan" and "inf" are accepted
 * because Python's xmlrpc.client writes repr(float) and reads with float().
 * strtod's hexadecimal and "nan(...)" forms are doubles in no XML-RPC
 * dialect, so they are refused.
 */
static int parse_double(const char *s, size_t len, double *out)
{
    char *end = NULL;

    if (len == 0 || memchr(s, 'x', len) || memchr(s, 'X', len) || memchr(s, '(', len))
        return -1;
    double d = strtod(s, &end);
    if (end != s + len)
        return -1;
    *out = d;
    return 0;
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
    const char *s = buf_cstr(&p->text);
    size_t len = p->text.len;
    struct xr_value *v = NULL;

    if (f->type == XR_STRING) /* strings keep every byte, whitespace included */
        return xr_value_new_string(p->arena, XR_STRING, s, len);
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
        if (base64_decode(p->arena, p->text.data, p->text.len, &v->u.str.ptr, &v->u.str.len) < 0)
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
/* Parsing: SAX callbacks                                                   */

static struct frame *push(struct parser *p, const struct element *e, const char *tag)
{
    if (p->depth + 1 >= p->cap) {
        p->cap *= 2;
        p->stack = mem_realloc(p->stack, p->cap * sizeof(*p->stack));
    }
    struct frame *f = &p->stack[++p->depth];
    memset(f, 0, sizeof(*f));
    f->node = e->node;
    f->type = e->type;
    f->tag = tag;
    return f;
}

/* Checks that `e` may open inside `parent` and records it as seen. */
static int check_child(struct parser *p, struct frame *parent, const struct element *e,
                       const char *tag)
{
    const struct rule *r = &rules[parent->node];

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
    if (parent->node == N_VALUE && !is_blank(p->text.data, p->text.len)) {
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

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int nb_namespaces, const xmlChar **namespaces, int nb_attributes,
                     int nb_defaulted, const xmlChar **attributes)
{
    struct parser *p = parser_of(ctx);
    const char *tag = (const char *)localname; /* prefixes (ex:i8) are ignored */

    (void)prefix, (void)uri, (void)nb_namespaces, (void)namespaces;
    (void)nb_attributes, (void)nb_defaulted, (void)attributes;
    if (p->failed || p->finished)
        return;
    if (++p->elements > p->max_elements) {
        fail(p, XR_FAULT_PARSE, "more than %zu XML elements (max_elements)", p->max_elements);
        return;
    }
    if (p->depth >= p->max_depth) {
        fail(p, XR_FAULT_PARSE, "XML nested deeper than %u elements (max_depth)", p->max_depth);
        return;
    }
    const struct element *e = element_find(tag);
    if (e == NULL) {
        fail(p, XR_FAULT_INVALID_REQUEST, "unknown element <%s>", tag);
        return;
    }
    struct frame *parent = &p->stack[p->depth];
    if (check_child(p, parent, e, tag) < 0)
        return;
    struct frame *f = push(p, e, tag);
    open_element(p, &p->stack[p->depth - 1], f);
    p->text.len = 0;
}

static void on_text(void *ctx, const xmlChar *ch, int len)
{
    struct parser *p = parser_of(ctx);
    struct frame *f = &p->stack[p->depth];

    if (p->failed || p->finished)
        return;
    switch (f->node) {
    case N_SCALAR:
    case N_NAME:
    case N_METHOD_NAME:
        buf_append(&p->text, ch, (size_t)len);
        return;
    case N_VALUE:
        /* Text in a <value> is an untyped string until a type element
         * shows up (then it must have been whitespace). */
        if (f->seen == 0) {
            buf_append(&p->text, ch, (size_t)len);
            return;
        }
        break;
    default:
        break;
    }
    if (!is_blank((const char *)ch, (size_t)len))
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
        v = xr_value_new_string(p->arena, XR_STRING, p->text.data, p->text.len);
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
    const char *s = p->text.data;
    size_t len = p->text.len;

    trim(&s, &len);
    if (len == 0) {
        fail(p, XR_FAULT_INVALID_REQUEST, "empty <methodName>");
        return;
    }
    p->method = arena_strndup(p->arena, s, len);
    p->method_len = len;
    if (p->flags & XR_PARSE_METHOD_ONLY) {
        /* Routing needs nothing more; the rest is parsed (once) only if
         * the route sends the call to an adapter. */
        p->finished = 1;
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
        parent->name = arena_strndup(p->arena, p->text.data ? p->text.data : "", p->text.len);
        parent->name_len = p->text.len;
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

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    struct parser *p = parser_of(ctx);

    (void)localname, (void)prefix, (void)uri;
    if (p->failed || p->finished)
        return;
    end_element(p, &p->stack[p->depth], &p->stack[p->depth - 1]);
    p->depth--;
    p->text.len = 0;
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
    (void)name, (void)external_id, (void)system_id;
    fail_doc(parser_of(ctx), XR_FAULT_PARSE, "DOCTYPE is not allowed");
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
/* Parsing: driving libxml2                                                 */

static void parser_init(struct parser *p, struct arena *a, const struct xr_limits *lim,
                        enum node root, int flags)
{
    memset(p, 0, sizeof(*p));
    p->arena = a;
    p->root = root;
    p->flags = flags;
    p->max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH;
    p->max_elements = lim && lim->max_elements ? lim->max_elements : DEFAULT_MAX_ELEMENTS;
    p->cap = 32;
    p->stack = mem_alloc(p->cap * sizeof(*p->stack));
    memset(&p->stack[0], 0, sizeof(p->stack[0]));
    p->stack[0].node = N_DOCUMENT;
    p->stack[0].tag = "document";
}

static void parser_dispose(struct parser *p)
{
    free(p->stack);
    buf_dispose(&p->text);
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
    else
        rc = 0;
out:
    if (ctxt != NULL)
        xmlFreeParserCtxt(ctxt);
    return rc;
}

int xr_parse_call(struct arena *a, const char *body, size_t len, const struct xr_limits *lim,
                  int flags, struct xr_call *out, struct xr_error *err)
{
    struct parser p;
    int rc = -1;

    parser_init(&p, a, lim, N_METHOD_CALL, flags);
    if (run(&p, body, len, err) < 0)
        goto out;
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

int xr_parse_response(struct arena *a, const char *body, size_t len, const struct xr_limits *lim,
                      struct xr_response *out, struct xr_error *err)
{
    struct parser p;
    int rc = -1;

    parser_init(&p, a, lim, N_METHOD_RESPONSE, XR_PARSE_FULL);
    if (run(&p, body, len, err) < 0)
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

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

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

/*
 * Appends text escaped for element content. & < > are escaped as usual, and
 * CR as &#13; because a literal CR is turned into LF by every XML parser
 * (XML 1.0, 2.11). Bytes XML cannot carry at all (control characters other
 * than tab, LF and CR, invalid UTF-8, e.g. from a JSON "\u0001") become
 * U+FFFD: a well-formed answer with a visible replacement beats one that
 * the client cannot parse.
 */
static void write_text(struct buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;

    buf_reserve(out, len);
    while (i < len) {
        unsigned char c = p[i];
        if ((c >= 0x20 && c < 0x80 && c != '&' && c != '<' && c != '>') || c == '\t' || c == '\n') {
            run++;
            i++;
            continue;
        }
        buf_append(out, s + i - run, run);
        run = 0;
        if (c >= 0x80) {
            size_t n = xml_char_len(p + i, len - i);
            if (n == 0) {
                APPEND_LIT(out, "\xef\xbf\xbd");
                i++;
            } else {
                buf_append(out, s + i, n);
                i += n;
            }
            continue;
        }
        if (c == '&')
            APPEND_LIT(out, "&amp;");
        else if (c == '<')
            APPEND_LIT(out, "&lt;");
        else if (c == '>')
            APPEND_LIT(out, "&gt;");
        else if (c == '\r')
            APPEND_LIT(out, "&#13;");
        else
            APPEND_LIT(out, "\xef\xbf\xbd");
        i++;
    }
    buf_append(out, s + i - run, run);
}

static void write_int(struct buf *out, int64_t i)
{
    /* <int> is 32 bits by the spec; wider values need the i8 extension. */
    int wide = i < INT32_MIN || i > INT32_MAX;
    if (wide)
        APPEND_LIT(out, "<i8>");
    else
        APPEND_LIT(out, "<int>");
    buf_append_i64(out, i);
    if (wide)
        APPEND_LIT(out, "</i8>");
    else
        APPEND_LIT(out, "</int>");
}

static void write_double(struct buf *out, double d)
{
    char tmp[32];
    size_t n;

    /* Python writes repr(float): "nan", "inf", "-inf", and reads them back. */
    if (isnan(d)) {
        n = (size_t)snprintf(tmp, sizeof(tmp), "nan");
    } else if (isinf(d)) {
        n = (size_t)snprintf(tmp, sizeof(tmp), "%s", d > 0 ? "inf" : "-inf");
    } else {
        n = jsonw_format_double(tmp, d);
    }
    APPEND_LIT(out, "<double>");
    buf_append(out, tmp, n);
    APPEND_LIT(out, "</double>");
}

static void write_members(struct buf *out, const struct xr_value *v)
{
    for (const struct xr_value *m = v->u.list.first; m != NULL; m = m->next) {
        APPEND_LIT(out, "<member><name>");
        write_text(out, m->name ? m->name : "", m->name ? m->name_len : 0);
        APPEND_LIT(out, "</name>");
        xr_write_value(out, m);
        APPEND_LIT(out, "</member>");
    }
}

/* Recursion is bounded by the depth limits the tree was parsed under. */
void xr_write_value(struct buf *out, const struct xr_value *v)
{
    APPEND_LIT(out, "<value>");
    switch (v ? v->type : XR_NIL) {
    case XR_INT:
        write_int(out, v->u.i);
        break;
    case XR_BOOL:
        if (v->u.b)
            APPEND_LIT(out, "<boolean>1</boolean>");
        else
            APPEND_LIT(out, "<boolean>0</boolean>");
        break;
    case XR_STRING:
        APPEND_LIT(out, "<string>");
        write_text(out, v->u.str.ptr, v->u.str.len);
        APPEND_LIT(out, "</string>");
        break;
    case XR_DOUBLE:
        write_double(out, v->u.d);
        break;
    case XR_DATETIME:
        APPEND_LIT(out, "<dateTime.iso8601>");
        write_text(out, v->u.str.ptr, v->u.str.len);
        APPEND_LIT(out, "</dateTime.iso8601>");
        break;
    case XR_BASE64:
        APPEND_LIT(out, "<base64>");
        base64_encode(out, v->u.str.ptr, v->u.str.len);
        APPEND_LIT(out, "</base64>");
        break;
    case XR_ARRAY:
        APPEND_LIT(out, "<array><data>");
        for (const struct xr_value *c = v->u.list.first; c != NULL; c = c->next)
            xr_write_value(out, c);
        APPEND_LIT(out, "</data></array>");
        break;
    case XR_STRUCT:
        APPEND_LIT(out, "<struct>");
        write_members(out, v);
        APPEND_LIT(out, "</struct>");
        break;
    case XR_NIL:
    case XR_NONE:
        APPEND_LIT(out, "<nil/>");
        break;
    }
    APPEND_LIT(out, "</value>");
}

void xr_write_call(struct buf *out, const char *method, size_t method_len,
                   const struct xr_value *params)
{
    APPEND_LIT(out, "<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    write_text(out, method, method_len);
    APPEND_LIT(out, "</methodName><params>");
    if (params != NULL && params->type == XR_ARRAY) {
        for (const struct xr_value *c = params->u.list.first; c != NULL; c = c->next) {
            APPEND_LIT(out, "<param>");
            xr_write_value(out, c);
            APPEND_LIT(out, "</param>");
        }
    }
    APPEND_LIT(out, "</params></methodCall>\n");
}

/* The fault struct exactly as Python's xmlrpc.client.dumps(Fault) shapes
 * it: faultCode first, as an <int>, then faultString as a <string>. */
static void write_fault_body(struct buf *out, int64_t code, const char *message, size_t len)
{
    APPEND_LIT(out, "<?xml version=\"1.0\"?>\n<methodResponse><fault><value><struct>"
                    "<member><name>faultCode</name><value>");
    write_int(out, code);
    APPEND_LIT(out, "</value></member><member><name>faultString</name><value><string>");
    write_text(out, message ? message : "", message ? len : 0);
    APPEND_LIT(out, "</string></value></member></struct></value></fault></methodResponse>\n");
}

void xr_write_response(struct buf *out, const struct xr_response *r)
{
    if (r->is_fault) {
        write_fault_body(out, r->fault_code, r->fault_string, r->fault_string_len);
        return;
    }
    /* A missing result is written as <nil/>, which Python always reads. */
    APPEND_LIT(out, "<?xml version=\"1.0\"?>\n<methodResponse><params><param>");
    xr_write_value(out, r->result);
    APPEND_LIT(out, "</param></params></methodResponse>\n");
}

void xr_write_fault(struct buf *out, int64_t code, const char *message, size_t len)
{
    write_fault_body(out, code, message, len);
}
