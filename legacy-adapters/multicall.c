#include "legacy-adapters/multicall.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MULTICALL "system.multicall"

int mc_is_multicall(const struct xr_call *call)
{
    return call->method_len == sizeof(MULTICALL) - 1 &&
           memcmp(call->method, MULTICALL, sizeof(MULTICALL) - 1) == 0;
}

/* A request the client got wrong is -32602 in the interop spec: the method
 * exists, its parameters cannot be used. */
static int shape_error(struct xr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int shape_error(struct xr_error *err, const char *fmt, ...)
{
    va_list ap;

    err->code = XR_FAULT_INVALID_PARAMS;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* Reads element i of the multicall array into *out. The members are looked
 * up in one pass rather than with xr_struct_get() because mc_call keeps a
 * mutable pointer to the params node, and xr_struct_get() hands back a const
 * one. As with xr_struct_get(), the first of duplicate members counts. */
static int read_one(struct xr_value *v, size_t i, struct mc_call *out, struct xr_error *err)
{
    struct xr_value *name = NULL;
    struct xr_value *params = NULL;

    if (v->type != XR_STRUCT)
        return shape_error(err, MULTICALL ": call %zu must be a struct, not %s", i,
                           xr_type_name(v->type));
    for (struct xr_value *m = v->u.list.first; m != NULL; m = m->next) {
        if (name == NULL && m->name_len == 10 && memcmp(m->name, "methodName", 10) == 0)
            name = m;
        else if (params == NULL && m->name_len == 6 && memcmp(m->name, "params", 6) == 0)
            params = m;
    }
    if (name == NULL)
        return shape_error(err, MULTICALL ": call %zu: methodName is missing", i);
    if (name->type != XR_STRING)
        return shape_error(err, MULTICALL ": call %zu: methodName must be a string, not %s", i,
                           xr_type_name(name->type));
    if (name->u.str.len == 0)
        return shape_error(err, MULTICALL ": call %zu: methodName is empty", i);
    /* XML cannot carry a NUL, but a tree built from JSON can, and a name
     * that reads differently as a C string than by its length would route
     * one way and be sent another. */
    if (memchr(name->u.str.ptr, '\0', name->u.str.len) != NULL)
        return shape_error(err, MULTICALL ": call %zu: methodName contains a NUL byte", i);
    if (params == NULL)
        return shape_error(err, MULTICALL ": call %zu: params is missing", i);
    if (params->type != XR_ARRAY)
        return shape_error(err, MULTICALL ": call %zu: params must be an array, not %s", i,
                           xr_type_name(params->type));
    out->method = name->u.str.ptr;
    out->method_len = name->u.str.len;
    out->params = params;
    return 0;
}

int mc_read_calls(struct arena *a, const struct xr_call *call, struct mc_call **calls, size_t *n,
                  struct xr_error *err)
{
    struct xr_value *list;
    struct mc_call *out = NULL;
    size_t count;
    size_t i = 0;

    if (call->params == NULL || call->params->type != XR_ARRAY) {
        /* The caller parsed with XR_PARSE_METHOD_ONLY: our bug, not the
         * client's. */
        err->code = XR_FAULT_INTERNAL;
        snprintf(err->message, sizeof(err->message),
                 MULTICALL ": the call was parsed without its parameters");
        return -1;
    }
    if (call->params->u.list.count != 1)
        return shape_error(err, MULTICALL ": takes exactly one parameter, got %zu",
                           call->params->u.list.count);
    list = call->params->u.list.first;
    if (list->type != XR_ARRAY)
        return shape_error(err, MULTICALL ": the parameter must be an array, not %s",
                           xr_type_name(list->type));
    /* count is the number of nodes the parser actually built, each larger
     * than a struct mc_call, so the product below cannot overflow; the
     * parser's element limit is what bounds it. */
    count = list->u.list.count;
    if (count > 0)
        out = arena_alloc(a, count * sizeof(*out));
    for (struct xr_value *v = list->u.list.first; v != NULL && i < count; v = v->next, i++)
        if (read_one(v, i, &out[i], err) < 0)
            return -1;
    *calls = out;
    *n = count;
    return 0;
}

/* A value's ->next and ->name belong to the list it sits in, and
 * xr_value_append() rewrites ->next, so a value already in one list needs a
 * node of its own before it goes into another. Copying that one node is
 * enough: its children stay linked through their own ->next, which only the
 * copied node's list fields point at, and the writer only reads them. */
static struct xr_value *node_copy(struct arena *a, const struct xr_value *v)
{
    struct xr_value *c = arena_alloc(a, sizeof(*c));

    *c = *v;
    c->next = NULL;
    c->name = NULL;
    c->name_len = 0;
    return c;
}

struct xr_value *mc_build_params(struct arena *a, const struct mc_call *calls, const size_t *idx,
                                 size_t k)
{
    struct xr_value *params = xr_value_new(a, XR_ARRAY);
    struct xr_value *list = xr_value_new(a, XR_ARRAY);

    /* Member order as Python's MultiCall sends it, methodName first, so an
     * upstream that reads members positionally sees what it always has. */
    for (size_t i = 0; i < k; i++) {
        const struct mc_call *c = &calls[idx[i]];
        struct xr_value *s = xr_value_new(a, XR_STRUCT);

        xr_struct_add(a, s, "methodName",
                      xr_value_new_string(a, XR_STRING, c->method, c->method_len));
        xr_struct_add(a, s, "params", node_copy(a, c->params));
        xr_value_append(list, s);
    }
    xr_value_append(params, list);
    return params;
}

/* Makes *out a -32603 fault: a malformed answer from upstream is the proxy's
 * failure to serve the call, not the client's mistake. */
static void internal_fault(struct arena *a, struct xr_response *out, const char *who,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void internal_fault(struct arena *a, struct xr_response *out, const char *who,
                           const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;

    if (who != NULL && who[0] != '\0')
        buf_appendf(&b, "%s: ", who);
    va_start(ap, fmt);
    buf_vappendf(&b, fmt, ap);
    va_end(ap);
    out->is_fault = 1;
    out->result = NULL;
    out->fault_code = XR_FAULT_INTERNAL;
    out->fault_string_len = b.len;
    out->fault_string = arena_strndup(a, buf_cstr(&b), b.len);
    buf_dispose(&b);
}

/* Reads answer i of a multicall result into *out. */
static void split_one(struct arena *a, const struct xr_value *v, size_t i, const char *who,
                      struct xr_response *out)
{
    const char *why = NULL;

    if (v->type == XR_ARRAY && v->u.list.count == 1) {
        out->is_fault = 0;
        out->result = v->u.list.first;
        out->fault_code = 0;
        out->fault_string = NULL;
        out->fault_string_len = 0;
        return;
    }
    if (v->type == XR_STRUCT && xr_fault_read(v, out, &why) == 0)
        return;
    if (v->type == XR_STRUCT)
        internal_fault(a, out, who, MULTICALL ": answer %zu is neither [value] nor a fault (%s)", i,
                       why);
    else if (v->type == XR_ARRAY)
        internal_fault(a, out, who,
                       MULTICALL ": answer %zu is neither [value] nor a fault (an array of %zu)", i,
                       v->u.list.count);
    else
        internal_fault(a, out, who, MULTICALL ": answer %zu is neither [value] nor a fault (%s)", i,
                       xr_type_name(v->type));
}

void mc_split_answers(struct arena *a, const struct xr_response *resp, size_t k, const char *who,
                      struct xr_response *out)
{
    const struct xr_value *list = resp->result;
    size_t i = 0;

    if (k == 0)
        return;
    /* A fault for the whole multicall (the upstream does not know
     * system.multicall, say) is the answer to every call in it. */
    if (resp->is_fault) {
        for (i = 0; i < k; i++)
            out[i] = *resp;
        return;
    }
    if (list == NULL)
        internal_fault(a, &out[0], who, MULTICALL ": the answer has no value");
    else if (list->type != XR_ARRAY)
        internal_fault(a, &out[0], who, MULTICALL ": the answer is %s, not an array",
                       xr_type_name(list->type));
    else if (list->u.list.count != k)
        internal_fault(a, &out[0], who, MULTICALL ": %zu answers for %zu calls", list->u.list.count,
                       k);
    else {
        for (const struct xr_value *v = list->u.list.first; v != NULL && i < k; v = v->next, i++)
            split_one(a, v, i, who, &out[i]);
        return;
    }
    /* Without a reliable pairing of answers to calls, no call's answer can
     * be trusted, so all of them get the same fault. */
    for (i = 1; i < k; i++)
        out[i] = out[0];
}

void mc_write_response(struct arena *a, struct buf *out, const struct xr_response *answers,
                       size_t n)
{
    struct xr_value *list = xr_value_new(a, XR_ARRAY);
    struct xr_response r = {0};

    for (size_t i = 0; i < n; i++) {
        const struct xr_response *ans = &answers[i];
        struct xr_value *v;

        if (ans->is_fault) {
            v = xr_value_new(a, XR_STRUCT);
            xr_struct_add(a, v, "faultCode", xr_value_new_int(a, ans->fault_code));
            xr_struct_add(
                a, v, "faultString",
                xr_value_new_string(a, XR_STRING, ans->fault_string, ans->fault_string_len));
        } else {
            v = xr_value_new(a, XR_ARRAY);
            xr_value_append(v, ans->result != NULL ? node_copy(a, ans->result)
                                                   : xr_value_new(a, XR_NIL));
        }
        xr_value_append(list, v);
    }
    r.is_fault = 0;
    r.result = list;
    xr_write_response(out, &r);
}
