#include "examples/stock-service/event.h"

#include "common/mem.h"

#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Returns the string member `key` of obj when it is a string of 1..max bytes
 * without NUL (the model keys by C strings), else NULL.
 */
static const char *get_string(struct json_object *obj, const char *key, size_t max)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len == 0 || len > max || strlen(s) != len)
        return NULL;
    return s;
}

/* Reads the integer member `key` when it is an integer >= 0. Returns 0 or -1. */
static int get_count(struct json_object *obj, const char *key, int64_t *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
        return -1;
    int64_t n = json_object_get_int64(v);
    if (n < 0)
        return -1;
    *out = n;
    return 0;
}

static void push(struct event *ev, size_t *cap, const struct model_op *op)
{
    if (ev->n_ops == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        ev->ops = mem_realloc(ev->ops, *cap * sizeof(*ev->ops));
    }
    ev->ops[ev->n_ops++] = *op;
}

/*
 * A stock record as the shop returns it: {"sku", "name", "qty", "price"}.
 * Only sku and qty are required; the JSON contract maps an XML-RPC double
 * to a number, and one that happens to be whole may arrive as an integer.
 */
static int record_op(struct json_object *rec, struct model_op *op)
{
    if (!json_object_is_type(rec, json_type_object))
        return -1;
    memset(op, 0, sizeof(*op));
    op->kind = MODEL_OP_UPSERT;
    op->sku = get_string(rec, "sku", MODEL_MAX_SKU_LEN);
    if (op->sku == NULL || get_count(rec, "qty", &op->qty) != 0)
        return -1;

    struct json_object *v;
    if (json_object_object_get_ex(rec, "name", &v) && json_object_is_type(v, json_type_string)) {
        size_t len = (size_t)json_object_get_string_len(v);
        const char *name = json_object_get_string(v);
        if (len <= MODEL_MAX_NAME_LEN && strlen(name) == len)
            op->name = name;
    }
    if (json_object_object_get_ex(rec, "price", &v) &&
        (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))) {
        double price = json_object_get_double(v);
        /* json-c accepts NaN and Infinity, which JSON (and GET /model)
         * cannot carry. */
        if (isfinite(price)) {
            op->has_price = 1;
            op->price = price;
        }
    }
    return 0;
}

static void derive_ops(struct event *ev, struct json_object *data, const char *learn_from)
{
    size_t cap = 0;
    struct json_object *result;
    const char *upstream = get_string(data, "upstream", SIZE_MAX);
    if (upstream == NULL || strcmp(upstream, learn_from) != 0)
        return; /* not the system of record: possibly our own answer */
    if (!json_object_object_get_ex(data, "result", &result) || result == NULL)
        return; /* a fault: the proxy writes "result": null */

    const char *method = get_string(data, "method", SIZE_MAX);
    struct model_op op;

    if (json_object_is_type(result, json_type_object) && record_op(result, &op) == 0) {
        push(ev, &cap, &op);
        return;
    }

    if (method != NULL && strcmp(method, "stock.list") == 0 &&
        json_object_is_type(result, json_type_array)) {
        size_t n = json_object_array_length(result);
        for (size_t i = 0; i < n; i++) {
            if (record_op(json_object_array_get_idx(result, i), &op) == 0)
                push(ev, &cap, &op);
        }
        return;
    }

    struct json_object *items;
    if (method != NULL && strcmp(method, "orders.create") == 0 &&
        json_object_is_type(result, json_type_object) &&
        json_object_object_get_ex(result, "items", &items) &&
        json_object_is_type(items, json_type_array)) {
        size_t n = json_object_array_length(items);
        for (size_t i = 0; i < n; i++) {
            struct json_object *item = json_object_array_get_idx(items, i);
            if (!json_object_is_type(item, json_type_object))
                continue;
            memset(&op, 0, sizeof(op));
            op.kind = MODEL_OP_SET_QTY;
            op.sku = get_string(item, "sku", MODEL_MAX_SKU_LEN);
            if (op.sku != NULL && get_count(item, "remaining", &op.qty) == 0)
                push(ev, &cap, &op);
        }
    }
}

int event_decode(struct event *ev, const char *body, size_t len, const char *learn_from,
                 const char **err)
{
    int rc = -1;
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;

    memset(ev, 0, sizeof(*ev));
    if (len == 0 || len > EVENT_MAX_BODY) {
        *err = len == 0 ? "empty body" : "event too large";
        goto out;
    }
    tok = json_tokener_new_ex(EVENT_MAX_DEPTH);
    if (tok == NULL) {
        *err = "out of memory";
        goto out;
    }
    root = json_tokener_parse_ex(tok, body, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        *err = "body is not JSON";
        goto out;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        char c = body[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            *err = "trailing bytes after the JSON value";
            goto out;
        }
    }
    if (!json_object_is_type(root, json_type_object)) {
        *err = "event is not a JSON object";
        goto out;
    }
    ev->id = get_string(root, "id", EVENT_MAX_ID_LEN);
    if (ev->id == NULL) {
        *err = "event has no usable \"id\"";
        goto out;
    }

    struct json_object *data;
    if (json_object_object_get_ex(root, "data", &data) &&
        json_object_is_type(data, json_type_object))
        derive_ops(ev, data, learn_from);

    ev->root = root;
    root = NULL;
    rc = 0;
out:
    if (rc != 0) {
        free(ev->ops);
        memset(ev, 0, sizeof(*ev));
    }
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return rc;
}

void event_dispose(struct event *ev)
{
    free(ev->ops);
    json_object_put(ev->root);
    memset(ev, 0, sizeof(*ev));
}
