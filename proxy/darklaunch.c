/*
 * darklaunch: side choices and answer judgements of dark launching (see
 * darklaunch.h).
 */
#include "proxy/darklaunch.h"

#include <string.h>

void darklaunch_value_key(const struct xr_value *v, struct buf *out)
{
    if (v == NULL)
        return;
    switch (v->type) {
    case XR_STRING:
        buf_append(out, v->u.str.ptr, v->u.str.len);
        return;
    case XR_INT:
        buf_append_i64(out, v->u.i);
        return;
    default:
        xr_write_value(out, v);
        return;
    }
}

uint64_t darklaunch_hash(const char *key, size_t len)
{
    /* FNV-1a 64 (offset basis and prime from the FNV reference). */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    /* MurmurHash3's fmix64: FNV's low bits are weak for short keys, and
     * the bucket is the hash modulo 10000. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

int darklaunch_in_share(uint64_t n, unsigned share_bp)
{
    return n % DARKLAUNCH_BUCKETS < share_bp;
}

/* Parameter n (from 1) of a call, or NULL. */
static const struct xr_value *param(const struct xr_value *params, unsigned n)
{
    if (params == NULL || params->type != XR_ARRAY || n == 0 || n > params->u.list.count)
        return NULL;
    const struct xr_value *v = params->u.list.first;
    for (unsigned i = 1; i < n && v != NULL; i++)
        v = v->next;
    return v;
}

int darklaunch_sticky_key(const struct route *r, const struct xr_value *params,
                          const struct http_message *headers, struct buf *out)
{
    switch (r->sticky) {
    case STICKY_PARAM: {
        const struct xr_value *v = param(params, r->sticky_param);
        if (v == NULL)
            return -1;
        darklaunch_value_key(v, out);
        return 0;
    }
    case STICKY_HEADER: {
        const struct http_header *h =
            headers != NULL ? http_find_header(headers, r->sticky_header) : NULL;
        if (h == NULL)
            return -1;
        buf_append(out, h->value, h->value_len);
        return 0;
    }
    case STICKY_NONE:
        break;
    }
    return -1;
}

int darklaunch_canary_new(const struct route *r, const struct xr_value *params,
                          const struct http_message *headers, uint64_t draw)
{
    if (r->sticky == STICKY_NONE)
        return darklaunch_in_share(draw, r->share_bp);
    /* 100 % means every call, keyed or not. */
    if (r->share_bp >= DARKLAUNCH_BUCKETS)
        return 1;
    struct buf key = BUF_INIT;
    int to_new = 0;
    if (darklaunch_sticky_key(r, params, headers, &key) == 0)
        to_new =
            darklaunch_in_share(darklaunch_hash(key.data ? key.data : "", key.len), r->share_bp);
    buf_dispose(&key);
    return to_new;
}

int darklaunch_made_by_proxy(const struct xr_response *r, const char *route, const char *upstream)
{
    if (r == NULL || !r->is_fault || r->fault_code < -32768 || r->fault_code > -32000 ||
        r->fault_string == NULL)
        return 0;
    const char *s = r->fault_string;
    size_t len = r->fault_string_len, rl = strlen(route), ul = strlen(upstream);
    /* "route " ROUTE ": upstream " UPSTREAM ": " */
    if (len < 6 + rl + 11 + ul + 2)
        return 0;
    return memcmp(s, "route ", 6) == 0 && memcmp(s + 6, route, rl) == 0 &&
           memcmp(s + 6 + rl, ": upstream ", 11) == 0 && memcmp(s + 17 + rl, upstream, ul) == 0 &&
           memcmp(s + 17 + rl + ul, ": ", 2) == 0;
}
