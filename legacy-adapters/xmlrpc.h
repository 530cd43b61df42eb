/*
 * xmlrpc: XML-RPC values, parsed from and written to the wire.
 *
 * Every XML-RPC body the proxy needs to understand goes through here once:
 * the router reads the method name, the adapter maps the parameters to JSON,
 * the interceptor puts them in an event, all from the same parsed tree.
 *
 * Parsing uses libxml2's SAX2 interface with the options that are safe for
 * untrusted input (no network, no DTD loading, no entity substitution), and a
 * DOCTYPE stops the parser outright, so billion laughs, quadratic blowup and
 * XXE never get to expand (see FIELD-NOTES.md). Depth and element count are
 * bounded by struct xr_limits; the caller bounds the body size.
 *
 * Most bodies never reach libxml2, though: a strict scanner (xrscan.h)
 * reads the plain UTF-8 XML that clients send, several times faster, into
 * the same trees through the same grammar. It hands anything else, and
 * every error, to libxml2, which parses the body again from the start; the
 * results, error codes and messages are libxml2's either way.
 *
 * Values live in a caller-supplied arena: nothing here is freed one by one,
 * the tree goes away with the request's arena.
 *
 * Types follow the XML-RPC specification plus the common extensions that
 * Python's xmlrpc.client speaks: <i8>, <nil/>, and namespaced forms such as
 * <ex:i8> (the prefix is ignored).
 */
#ifndef STRANGLER_ADAPTERS_XMLRPC_H
#define STRANGLER_ADAPTERS_XMLRPC_H

#include "common/buf.h"
#include "common/mem.h"

#include <stddef.h>
#include <stdint.h>

/* Fault codes of the XML-RPC interoperability spec ("specs for fault code
 * interoperability", Dan Libby), used for every fault Strangler makes. */
enum xr_fault_code {
    XR_FAULT_PARSE = -32700,            /* not well formed */
    XR_FAULT_ENCODING = -32701,         /* unsupported encoding */
    XR_FAULT_CHAR = -32702,             /* invalid character for encoding */
    XR_FAULT_INVALID_REQUEST = -32600,  /* not XML-RPC, or wrong shape */
    XR_FAULT_METHOD_NOT_FOUND = -32601, /* no such method / no route */
    XR_FAULT_INVALID_PARAMS = -32602,   /* parameters cannot be used */
    XR_FAULT_INTERNAL = -32603,         /* the server's own failure */
    XR_FAULT_APPLICATION = -32500,      /* the service failed */
    XR_FAULT_SYSTEM = -32400,           /* system error */
    XR_FAULT_TRANSPORT = -32300,        /* upstream unreachable, timed out */
};

enum xr_type {
    XR_NONE = 0,
    XR_INT,      /* <int>, <i4>, <i8> and friends; 64 bits */
    XR_BOOL,     /* <boolean> 0 or 1 */
    XR_STRING,   /* <string> or untyped <value> text */
    XR_DOUBLE,   /* <double> */
    XR_DATETIME, /* <dateTime.iso8601>, kept as the text that was sent */
    XR_BASE64,   /* <base64>, kept decoded */
    XR_NIL,      /* <nil/> */
    XR_ARRAY,
    XR_STRUCT,
};

/*
 * One value. Arrays and structs hold their children as a singly linked list
 * (first/last/count), in document order; a struct's children carry their
 * member names, duplicates and order kept exactly as received.
 */
struct xr_value {
    enum xr_type type;
    struct xr_value *next; /* next sibling inside the enclosing array/struct */
    const char *name;      /* member name (NUL-terminated) inside a struct, else NULL */
    size_t name_len;
    union {
        int64_t i;           /* XR_INT */
        int b;               /* XR_BOOL: 0 or 1 */
        double d;            /* XR_DOUBLE */
        struct {             /* XR_STRING, XR_DATETIME, XR_BASE64 (decoded bytes) */
            const char *ptr; /* NUL-terminated for convenience; may contain NULs (base64) */
            size_t len;
        } str;
        struct { /* XR_ARRAY, XR_STRUCT */
            struct xr_value *first;
            struct xr_value *last;
            size_t count;
        } list;
    } u;
};

/* A parsed <methodCall>. */
struct xr_call {
    const char *method; /* NUL-terminated */
    size_t method_len;
    struct xr_value *params; /* XR_ARRAY of the <param> values; NULL with XR_PARSE_METHOD_ONLY */
};

/* A parsed <methodResponse>, or one the proxy is about to write. */
struct xr_response {
    int is_fault;
    struct xr_value *result; /* the single result value; NULL when is_fault */
    int64_t fault_code;      /* when is_fault */
    const char *fault_string;
    size_t fault_string_len;
};

/* Bounds on what a parse may build. Zero in a field means the default. */
struct xr_limits {
    unsigned max_depth;  /* XML element nesting; default 64 */
    size_t max_elements; /* elements in the document; default 1,000,000 */
};

/* What went wrong: an interop fault code and a message naming the cause,
 * e.g. {-32700, "line 3: opening and ending tag mismatch: value and param"}. */
struct xr_error {
    int code;
    char message[256];
    /* xr_parse_call only: the document is a <methodCall> (its root element
     * was one, or its DOCTYPE named one), so it is a call even though it
     * could not be read: a client's call, to be answered with a fault, not
     * some other XML. */
    int call_root;
};

enum xr_parse_flags {
    XR_PARSE_FULL = 0,
    /* Stop once <methodName> is read: for routing, when nothing needs the
     * parameters. params stays NULL. */
    XR_PARSE_METHOD_ONLY = 1,
    /* For tests and fuzzing only. Bodies in the subset of XML that clients
     * really send are read by a hand-written scanner (xrscan.h); anything
     * else, errors included, by libxml2. These bits pin one path:
     * NO_FAST_PATH parses with libxml2 alone; FAST_PATH_ONLY fails with
     * XR_FAULT_INTERNAL and "the fast path declined the body" where the
     * scanner would hand over to libxml2. */
    XR_PARSE_NO_FAST_PATH = 2,
    XR_PARSE_FAST_PATH_ONLY = 4,
};

/* Call once from the main thread before any parse (libxml2's own rule). */
void xr_init(void);
void xr_cleanup(void);

/*
 * Parses a <methodCall> of `len` bytes. On success fills *out (pointing into
 * arena memory) and returns 0. On failure returns -1 and describes the cause
 * in *err with the fault code a client should get (-32700 for XML that is
 * not well formed or hits a limit or a DOCTYPE, -32600 for well-formed XML
 * that is not a methodCall, -32602 for a value that cannot be read, such as
 * <int>12x</int> or bad base64).
 */
int xr_parse_call(struct arena *a, const char *body, size_t len, const struct xr_limits *lim,
                  int flags, struct xr_call *out, struct xr_error *err);

/* Parses a <methodResponse> the same way: a result or a fault. */
int xr_parse_response(struct arena *a, const char *body, size_t len, const struct xr_limits *lim,
                      struct xr_response *out, struct xr_error *err);

/* xr_parse_response with xr_parse_flags, for tests and fuzzing:
 * XR_PARSE_METHOD_ONLY means nothing for a response. */
int xr_parse_response_flags(struct arena *a, const char *body, size_t len,
                            const struct xr_limits *lim, int flags, struct xr_response *out,
                            struct xr_error *err);

/*
 * A look at the start of an answer the proxy streams without reading it:
 * is it a fault? Skips a byte order mark, the XML declaration, comments
 * and blanks, then expects <methodResponse> and tells <fault> from
 * <params>. For a fault, the faultCode's integer is looked for in the same
 * bytes. Returns XR_SNIFF_MORE when `len` bytes are not enough to tell
 * (the caller may try again with more), XR_SNIFF_FAULT with *code set
 * (*code_known 0 when the code was not within the bytes), or XR_SNIFF_NOT_FAULT
 * for a result or anything that is no methodResponse. Never allocates;
 * for figures and logs only: routing and events use xr_parse_response().
 */
enum xr_sniff { XR_SNIFF_NOT_FAULT = 0, XR_SNIFF_FAULT, XR_SNIFF_MORE };
enum xr_sniff xr_sniff_response(const char *data, size_t len, int64_t *code, int *code_known);

/*
 * A glance at a call for the method inventory, where no route needs the
 * name: the text of the first <methodName> element in the first bytes of
 * body, when it is plain (letters, digits and _ . : / -, at most 255 bytes)
 * and nothing before it could change what it means (no comment, CDATA,
 * DOCTYPE, or processing instruction other than a leading XML
 * declaration). Returns 1 with *name and *len pointing into body, or 0 when
 * the glance cannot tell: the caller then parses. Never for routing.
 */
int xr_peek_method_name(const char *body, size_t len, const char **name, size_t *name_len);

/* Appends "<?xml ...?><methodCall>...</methodCall>" for method(params). */
void xr_write_call(struct buf *out, const char *method, size_t method_len,
                   const struct xr_value *params);

/* Appends a complete <methodResponse>: the result, or the fault. */
void xr_write_response(struct buf *out, const struct xr_response *r);

/* Appends a complete fault <methodResponse> with the given code and message. */
void xr_write_fault(struct buf *out, int64_t code, const char *message, size_t len);

/* Appends one <value>...</value>. Integers outside 32 bits are written as
 * <i8>; doubles in the shortest form that reads back exactly. */
void xr_write_value(struct buf *out, const struct xr_value *v);

/* Builders, for values made from JSON or by the proxy. All memory is the
 * arena's. */
struct xr_value *xr_value_new(struct arena *a, enum xr_type type);
struct xr_value *xr_value_new_string(struct arena *a, enum xr_type type, const char *s, size_t len);
struct xr_value *xr_value_new_int(struct arena *a, int64_t i);
struct xr_value *xr_value_new_double(struct arena *a, double d);
struct xr_value *xr_value_new_bool(struct arena *a, int b);
/* Appends child to an XR_ARRAY or XR_STRUCT (for a struct, set child->name
 * first, or use xr_struct_add). */
void xr_value_append(struct xr_value *list, struct xr_value *child);
/* Appends child to an XR_STRUCT as member `name` (copied into the arena). */
void xr_struct_add(struct arena *a, struct xr_value *s, const char *name, struct xr_value *child);

/*
 * Reads a fault value, {faultCode: int, faultString: string}, into *out.
 * Returns 0, or -1 with a static reason in *why when v is not shaped so.
 * Shared by <fault> responses and the JSON contract's fault answers.
 */
int xr_fault_read(const struct xr_value *v, struct xr_response *out, const char **why);

/* Finds the first member called `name` in an XR_STRUCT, or NULL. */
const struct xr_value *xr_struct_get(const struct xr_value *s, const char *name);

/* "int", "string", ...: the XML-RPC element name of a type, for messages. */
const char *xr_type_name(enum xr_type type);

#endif
