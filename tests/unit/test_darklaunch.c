/*
 * darklaunch.c: the canary's side choice (the fixed sticky hash, pinned by
 * vectors that the e2e test and the README's formula share), sticky keys,
 * and the judgement of which faults the proxy made.
 */
#include "unit.h"

#include "proxy/darklaunch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct arena *arena;

static void new_arena(void)
{
    arena = arena_new(0);
}

static void free_arena(void)
{
    arena_free(arena);
    arena = NULL;
}

static uint64_t hash_of(const char *s)
{
    return darklaunch_hash(s, strlen(s));
}

/* The hash is a contract between proxy instances: these values must never
 * change (computed by an independent implementation of FNV-1a 64 +
 * fmix64). */
START_TEST(hash_is_fixed)
{
    ck_assert_uint_eq(hash_of(""), 0xefd01f60ba992926ULL);
    ck_assert_uint_eq(hash_of("a"), 0x82a2a958a9bece5bULL);
    ck_assert_uint_eq(hash_of("cust-1"), 0x25f5f1c71bbace45ULL);
    ck_assert_uint_eq(hash_of("42"), 0x810b196a56ee3cecULL);
    ck_assert_uint_eq(hash_of("acme-7") % DARKLAUNCH_BUCKETS, 8737);
    /* Bytes, not C strings: a NUL inside the key counts. */
    ck_assert_uint_ne(darklaunch_hash("a\0b", 3), darklaunch_hash("a", 1));
}
END_TEST

START_TEST(share_bounds)
{
    for (uint64_t n = 0; n < 30000; n += 7) {
        ck_assert(!darklaunch_in_share(n, 0));
        ck_assert(darklaunch_in_share(n, DARKLAUNCH_BUCKETS));
    }
    ck_assert(darklaunch_in_share(9999, 10000));
    ck_assert(!darklaunch_in_share(2500, 2500));
    ck_assert(darklaunch_in_share(12499, 2500));
}
END_TEST

/* Keys spread over the buckets: a 30 % share takes about 30 % of keys. */
START_TEST(keys_spread_evenly)
{
    char key[32];
    int in = 0;
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(key, sizeof(key), "customer-%d", i);
        in += darklaunch_in_share(darklaunch_hash(key, (size_t)n), 3000);
    }
    ck_assert_int_ge(in, 29000);
    ck_assert_int_le(in, 31000);
}
END_TEST

static const char *key_of(const struct xr_value *v)
{
    static char text[256];
    struct buf b = BUF_INIT;
    darklaunch_value_key(v, &b);
    snprintf(text, sizeof(text), "%.*s", (int)b.len, b.data ? b.data : "");
    buf_dispose(&b);
    return text;
}

START_TEST(value_keys_are_canonical)
{
    ck_assert_str_eq(key_of(xr_value_new_string(arena, XR_STRING, "cust-1", 6)), "cust-1");
    ck_assert_str_eq(key_of(xr_value_new_int(arena, 42)), "42");
    ck_assert_str_eq(key_of(xr_value_new_int(arena, -7)), "-7");
    ck_assert_str_eq(key_of(xr_value_new_bool(arena, 1)), "<value><boolean>1</boolean></value>");
    struct xr_value *st = xr_value_new(arena, XR_STRUCT);
    xr_struct_add(arena, st, "id", xr_value_new_int(arena, 5));
    ck_assert_str_eq(key_of(st),
                     "<value><struct><member><name>id</name><value><int>5</int></value></member>"
                     "</struct></value>");
    ck_assert_str_eq(key_of(NULL), "");
}
END_TEST

static struct route sticky_route(enum route_sticky sticky, unsigned share_bp)
{
    struct route r;
    memset(&r, 0, sizeof(r));
    r.name = "echo";
    r.mode = ROUTE_CANARY;
    r.share_bp = share_bp;
    r.sticky = sticky;
    r.sticky_param = 2;
    r.sticky_header = "X-Customer";
    return r;
}

static struct xr_value *params_of(const char *first, const char *second)
{
    struct xr_value *p = xr_value_new(arena, XR_ARRAY);
    xr_value_append(p, xr_value_new_string(arena, XR_STRING, first, strlen(first)));
    if (second != NULL)
        xr_value_append(p, xr_value_new_string(arena, XR_STRING, second, strlen(second)));
    return p;
}

START_TEST(sticky_keys_come_from_the_param_or_the_header)
{
    struct route rp = sticky_route(STICKY_PARAM, 5000), rh = sticky_route(STICKY_HEADER, 5000);
    struct http_message m;
    struct buf key = BUF_INIT;
    memset(&m, 0, sizeof(m));
    m.nheaders = 2;
    m.headers[0] = (struct http_header){"Host", "x", 4, 1, 0, HTTP_H_HOST};
    m.headers[1] = (struct http_header){"x-customer", "acme-7", 10, 6, 0, HTTP_H_OTHER};

    ck_assert_int_eq(darklaunch_sticky_key(&rp, params_of("a", "cust-1"), &m, &key), 0);
    ck_assert_uint_eq(key.len, 6);
    ck_assert(memcmp(key.data, "cust-1", 6) == 0);
    buf_reset(&key);
    ck_assert_int_eq(darklaunch_sticky_key(&rp, params_of("a", NULL), &m, &key), -1);
    ck_assert_int_eq(darklaunch_sticky_key(&rp, NULL, &m, &key), -1);
    /* Header names compare without case. */
    ck_assert_int_eq(darklaunch_sticky_key(&rh, NULL, &m, &key), 0);
    ck_assert_uint_eq(key.len, 6);
    ck_assert(memcmp(key.data, "acme-7", 6) == 0);
    m.nheaders = 1;
    ck_assert_int_eq(darklaunch_sticky_key(&rh, NULL, &m, &key), -1);
    ck_assert_int_eq(darklaunch_sticky_key(&rh, NULL, NULL, &key), -1);
    buf_dispose(&key);
}
END_TEST

START_TEST(canary_side_is_the_keys_bucket_or_the_draw)
{
    struct route rp = sticky_route(STICKY_PARAM, 5000), rn = sticky_route(STICKY_NONE, 3000);
    int expect = hash_of("cust-1") % DARKLAUNCH_BUCKETS < 5000;
    /* Whatever the draw, a key always lands on its bucket's side. */
    for (uint64_t draw = 0; draw < 20000; draw += 997)
        ck_assert_int_eq(darklaunch_canary_new(&rp, params_of("a", "cust-1"), NULL, draw), expect);
    /* No key: the other side, always. */
    for (uint64_t draw = 0; draw < 20000; draw += 997)
        ck_assert_int_eq(darklaunch_canary_new(&rp, params_of("a", NULL), NULL, draw), 0);
    /* 100 % is every call, with a key or without. */
    struct route all = sticky_route(STICKY_PARAM, 10000);
    ck_assert_int_eq(darklaunch_canary_new(&all, params_of("a", NULL), NULL, 7), 1);
    ck_assert_int_eq(darklaunch_canary_new(&all, params_of("a", "cust-1"), NULL, 7), 1);
    /* Not sticky: the draw decides. */
    ck_assert_int_eq(darklaunch_canary_new(&rn, NULL, NULL, 2999), 1);
    ck_assert_int_eq(darklaunch_canary_new(&rn, NULL, NULL, 3000), 0);
    ck_assert_int_eq(darklaunch_canary_new(&rn, NULL, NULL, 12999), 1);
}
END_TEST

static struct xr_response fault(int64_t code, const char *text)
{
    struct xr_response r = {1, NULL, code, text, strlen(text)};
    return r;
}

START_TEST(faults_made_by_the_proxy_are_told_from_the_services)
{
    struct xr_response made = fault(-32700, "route echo: upstream svc: answered HTTP 200 with "
                                            "invalid JSON");
    struct xr_response transport = fault(-32300, "route echo: upstream svc: connection refused");
    struct xr_response service = fault(-32601, "no method echo");
    struct xr_response own_code = fault(409, "route echo: upstream svc: out of stock");
    struct xr_response other = fault(-32300, "route echo: upstream svc2: connection refused");
    struct xr_response result = {0, xr_value_new_int(arena, 1), 0, NULL, 0};
    ck_assert(darklaunch_made_by_proxy(&made, "echo", "svc"));
    ck_assert(darklaunch_made_by_proxy(&transport, "echo", "svc"));
    ck_assert(!darklaunch_made_by_proxy(&service, "echo", "svc"));
    ck_assert(!darklaunch_made_by_proxy(&own_code, "echo", "svc"));
    ck_assert(!darklaunch_made_by_proxy(&other, "echo", "svc"));
    ck_assert(!darklaunch_made_by_proxy(&result, "echo", "svc"));
    ck_assert(!darklaunch_made_by_proxy(NULL, "echo", "svc"));
    struct xr_response cut = fault(-32300, "route echo: upstream svc");
    ck_assert(!darklaunch_made_by_proxy(&cut, "echo", "svc"));
}
END_TEST

Suite *darklaunch_suite(void)
{
    Suite *s = suite_create("darklaunch");
    TCase *tc = tcase_create("darklaunch");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, new_arena, free_arena);
    tcase_add_test(tc, hash_is_fixed);
    tcase_add_test(tc, share_bounds);
    tcase_add_test(tc, keys_spread_evenly);
    tcase_add_test(tc, value_keys_are_canonical);
    tcase_add_test(tc, sticky_keys_come_from_the_param_or_the_header);
    tcase_add_test(tc, canary_side_is_the_keys_bucket_or_the_draw);
    tcase_add_test(tc, faults_made_by_the_proxy_are_told_from_the_services);
    suite_add_tcase(s, tc);
    return s;
}
