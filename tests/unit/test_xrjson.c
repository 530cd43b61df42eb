#include "unit.h"
#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"
#include "legacy-adapters/base64.h"
#include "legacy-adapters/xrjson.h"

#include <json-c/json.h>

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct arena *arena;
static struct xr_error err;

static void setup(void)
{
    xr_init();
    arena = arena_new(0);
    memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
    arena_free(arena);
    xr_cleanup();
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

/* JSON text of v (in the arena), or NULL with err set. */
static const char *to_json(const struct xr_value *v, const char *path)
{
    struct buf b = BUF_INIT;
    int rc = xrjson_write_value(&b, v, path, &err);
    char *s = rc == 0 ? arena_strndup(arena, b.data ? b.data : "", b.len) : NULL;
    buf_dispose(&b);
    return s;
}

static const char *to_xml(const struct xr_value *v)
{
    struct buf b = BUF_INIT;
    xr_write_value(&b, v);
    char *s = arena_strndup(arena, b.data, b.len);
    buf_dispose(&b);
    return s;
}

static struct xr_value *from_json_len(const char *json, size_t len, const struct xr_limits *lim)
{
    struct xr_value *v = NULL;
    int rc = xrjson_parse(arena, json, len, lim, &v, &err);
    ck_assert_msg(rc == 0, "%s: %d %s", json, err.code, err.message);
    ck_assert_ptr_nonnull(v);
    return v;
}

static struct xr_value *from_json(const char *json)
{
    return from_json_len(json, strlen(json), NULL);
}

static void expect_json_fail_len(const char *json, size_t len, int code, const char *needle)
{
    struct xr_value *v = (struct xr_value *)1;
    int rc = xrjson_parse(arena, json, len, NULL, &v, &err);
    ck_assert_msg(rc == -1, "%s should fail", json);
    ck_assert_msg(v == (struct xr_value *)1, "out set on failure");
    ck_assert_msg(err.code == code, "%s: code %d, want %d (%s)", json, err.code, code, err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' lacks '%s'", err.message, needle);
}

static void expect_json_fail(const char *json, int code, const char *needle)
{
    expect_json_fail_len(json, strlen(json), code, needle);
}

/*
 * Deep equality: same type, same bits for doubles (so -0.0 differs from
 * 0.0), same bytes for strings and member names, same children in order.
 * Reports the first difference.
 */
static int equal(const struct xr_value *a, const struct xr_value *b, char *why, size_t cap)
{
    if (a->type != b->type) {
        snprintf(why, cap, "type %s vs %s", xr_type_name(a->type), xr_type_name(b->type));
        return 0;
    }
    if ((a->name == NULL) != (b->name == NULL) ||
        (a->name && (a->name_len != b->name_len || memcmp(a->name, b->name, a->name_len)))) {
        snprintf(why, cap, "member name '%s' vs '%s'", a->name ? a->name : "(null)",
                 b->name ? b->name : "(null)");
        return 0;
    }
    switch (a->type) {
    case XR_INT:
        if (a->u.i == b->u.i)
            return 1;
        snprintf(why, cap, "int %lld vs %lld", (long long)a->u.i, (long long)b->u.i);
        return 0;
    case XR_BOOL:
        if (a->u.b == b->u.b)
            return 1;
        snprintf(why, cap, "boolean");
        return 0;
    case XR_DOUBLE:
        if (memcmp(&a->u.d, &b->u.d, sizeof(double)) == 0)
            return 1;
        snprintf(why, cap, "double %.17g vs %.17g", a->u.d, b->u.d);
        return 0;
    case XR_STRING:
    case XR_DATETIME:
    case XR_BASE64:
        if (a->u.str.len == b->u.str.len && memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0)
            return 1;
        snprintf(why, cap, "%s '%.40s' (%zu) vs '%.40s' (%zu)", xr_type_name(a->type), a->u.str.ptr,
                 a->u.str.len, b->u.str.ptr, b->u.str.len);
        return 0;
    case XR_ARRAY:
    case XR_STRUCT:
        if (a->u.list.count != b->u.list.count) {
            snprintf(why, cap, "%s of %zu vs %zu", xr_type_name(a->type), a->u.list.count,
                     b->u.list.count);
            return 0;
        }
        for (const struct xr_value *x = a->u.list.first, *y = b->u.list.first; x != NULL;
             x = x->next, y = y->next)
            if (!equal(x, y, why, cap))
                return 0;
        return 1;
    case XR_NIL:
    case XR_NONE:
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* XML-RPC -> JSON                                                          */

START_TEST(writes_every_type)
{
    struct xr_value *b = xr_value_new(arena, XR_BOOL);
    ck_assert_str_eq(to_json(xr_value_new_int(arena, INT64_MIN), "p"), "-9223372036854775808");
    ck_assert_str_eq(to_json(b, "p"), "false");
    b->u.b = 1;
    ck_assert_str_eq(to_json(b, "p"), "true");
    ck_assert_str_eq(to_json(xr_value_new_string(arena, XR_STRING, "a\"\\\n\x01\xc3\xa9", 7), "p"),
                     "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"");
    ck_assert_str_eq(to_json(xr_value_new_double(arena, 1.0), "p"), "1.0");
    ck_assert_str_eq(to_json(xr_value_new_double(arena, -0.0), "p"), "-0.0");
    ck_assert_str_eq(to_json(xr_value_new_double(arena, 0.1), "p"), "0.1");
    ck_assert_str_eq(to_json(xr_value_new_double(arena, 1e-300), "p"), "1e-300");
    ck_assert_str_eq(to_json(xr_value_new_double(arena, DBL_MAX), "p"), "1.7976931348623157e+308");
    ck_assert_str_eq(to_json(xr_value_new(arena, XR_NIL), "p"), "null");
    ck_assert_str_eq(to_json(NULL, "p"), "null");
    ck_assert_str_eq(to_json(xr_value_new_string(arena, XR_BASE64, "\0\xff\0h", 4), "p"),
                     "{\"$base64\":\"AP8AaA==\"}");
    ck_assert_str_eq(to_json(xr_value_new_string(arena, XR_DATETIME, "19991231T23:59:59", 17), "p"),
                     "{\"$datetime\":\"19991231T23:59:59\"}");

    struct xr_value *s = xr_value_new(arena, XR_STRUCT);
    xr_struct_add(arena, s, "z", xr_value_new_int(arena, 1));
    xr_struct_add(arena, s, "a\"b", xr_value_new(arena, XR_ARRAY));
    xr_struct_add(arena, s, "z", xr_value_new(arena, XR_STRUCT));
    struct xr_value *a = xr_value_new(arena, XR_ARRAY);
    xr_value_append(a, xr_value_new_int(arena, 2147483648LL));
    xr_value_append(a, s);
    xr_value_append(a, xr_value_new_string(arena, XR_STRING, "", 0));
    ck_assert_str_eq(to_json(a, "p"), "[2147483648,{\"z\":1,\"a\\\"b\":[],\"z\":{}},\"\"]");
}
END_TEST

START_TEST(non_finite_doubles_are_refused_with_their_path)
{
    struct xr_value *params = xr_value_new(arena, XR_ARRAY);
    struct xr_value *item = xr_value_new(arena, XR_STRUCT);
    xr_value_append(params, xr_value_new_int(arena, 1));
    xr_value_append(params, item);
    xr_struct_add(arena, item, "sku", xr_value_new_string(arena, XR_STRING, "x", 1));
    xr_struct_add(arena, item, "price", xr_value_new_double(arena, NAN));
    ck_assert_ptr_null(to_json(params, "params"));
    ck_assert_int_eq(err.code, XR_FAULT_INVALID_PARAMS);
    ck_assert_str_eq(err.message, "params[1].price: NaN has no JSON form");

    item->u.list.last->u.d = INFINITY;
    ck_assert_ptr_null(to_json(params, "params"));
    ck_assert_str_eq(err.message, "params[1].price: Infinity has no JSON form");

    struct xr_value *deep = xr_value_new(arena, XR_ARRAY);
    xr_value_append(deep, xr_value_new_double(arena, -INFINITY));
    item->u.list.last->u.d = 2.0;
    xr_struct_add(arena, item, "tiers", deep);
    ck_assert_ptr_null(to_json(params, "params"));
    ck_assert_str_eq(err.message, "params[1].tiers[0]: -Infinity has no JSON form");
    ck_assert_ptr_null(to_json(xr_value_new_double(arena, NAN), "result"));
    ck_assert_str_eq(err.message, "result: NaN has no JSON form");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* JSON -> XML-RPC                                                          */

START_TEST(parses_every_type)
{
    struct xr_value *v = from_json(" [1, -2, 2.5, true, false, null, \"s\\u00e9\\ud83d\\ude00\","
                                   " [], {}, {\"$base64\": \"aGk=\"}, {\"$datetime\": \"x\"}] ");
    ck_assert_int_eq(v->type, XR_ARRAY);
    ck_assert_uint_eq(v->u.list.count, 11);
    const struct xr_value *c = v->u.list.first;
    ck_assert_int_eq(c->type, XR_INT);
    ck_assert_int_eq(c->u.i, 1);
    c = c->next;
    ck_assert_int_eq(c->u.i, -2);
    c = c->next;
    ck_assert_int_eq(c->type, XR_DOUBLE);
    ck_assert(c->u.d == 2.5);
    c = c->next;
    ck_assert_int_eq(c->type, XR_BOOL);
    ck_assert_int_eq(c->u.b, 1);
    c = c->next;
    ck_assert_int_eq(c->u.b, 0);
    c = c->next;
    ck_assert_int_eq(c->type, XR_NIL);
    c = c->next;
    ck_assert_int_eq(c->type, XR_STRING);
    ck_assert_str_eq(c->u.str.ptr, "s\xc3\xa9\xf0\x9f\x98\x80");
    ck_assert_uint_eq(c->u.str.len, 7);
    c = c->next;
    ck_assert_int_eq(c->type, XR_ARRAY);
    ck_assert_uint_eq(c->u.list.count, 0);
    c = c->next;
    ck_assert_int_eq(c->type, XR_STRUCT);
    ck_assert_uint_eq(c->u.list.count, 0);
    c = c->next;
    ck_assert_int_eq(c->type, XR_BASE64);
    ck_assert_uint_eq(c->u.str.len, 2);
    ck_assert_str_eq(c->u.str.ptr, "hi");
    c = c->next;
    ck_assert_int_eq(c->type, XR_DATETIME);
    ck_assert_str_eq(c->u.str.ptr, "x");

    ck_assert_int_eq(from_json("null")->type, XR_NIL);
    ck_assert_int_eq(from_json("42")->u.i, 42);
    ck_assert_int_eq(from_json("\"s\"")->type, XR_STRING);
    ck_assert_int_eq(from_json(" true ")->u.b, 1);
}
END_TEST

START_TEST(numbers_keep_their_kind_and_int32_decides_int_or_i8)
{
    struct xr_value *v = from_json("[2147483647, 2147483648, -2147483648, -2147483649, 1.0, 1e5,"
                                   " -0.0, -0, 9223372036854775807, -9223372036854775808]");
    const struct xr_value *c = v->u.list.first;
    ck_assert_str_eq(to_xml(c), "<value><int>2147483647</int></value>");
    c = c->next;
    ck_assert_str_eq(to_xml(c), "<value><i8>2147483648</i8></value>");
    c = c->next;
    ck_assert_str_eq(to_xml(c), "<value><int>-2147483648</int></value>");
    c = c->next;
    ck_assert_str_eq(to_xml(c), "<value><i8>-2147483649</i8></value>");
    c = c->next;
    ck_assert_int_eq(c->type, XR_DOUBLE); /* integral, but written as a double */
    ck_assert_str_eq(to_xml(c), "<value><double>1.0</double></value>");
    c = c->next;
    ck_assert_int_eq(c->type, XR_DOUBLE);
    ck_assert(c->u.d == 100000.0);
    c = c->next;
    ck_assert_int_eq(c->type, XR_DOUBLE);
    ck_assert(signbit(c->u.d));
    c = c->next;
    ck_assert_int_eq(c->type, XR_INT);
    ck_assert_int_eq(c->u.i, 0);
    c = c->next;
    ck_assert(c->u.i == INT64_MAX);
    c = c->next;
    ck_assert(c->u.i == INT64_MIN);
}
END_TEST

START_TEST(integers_beyond_64_bits_are_refused_with_their_path)
{
    expect_json_fail("9223372036854775808", XR_FAULT_INTERNAL,
                     "$: integer beyond the 64-bit range");
    expect_json_fail("[1, 18446744073709551616]", XR_FAULT_INTERNAL, "$[1]: integer");
    expect_json_fail("{\"a\": [0, 0, {\"b\": 99999999999999999999999}]}", XR_FAULT_INTERNAL,
                     "$.a[2].b: integer beyond the 64-bit range");
    expect_json_fail("-9223372036854775809", XR_FAULT_INTERNAL, "$: integer");
    expect_json_fail("[-9223372036854775808, \"-9223372036854775809\", -1e-9223372036854775809,"
                     " -99999999999999999999]",
                     XR_FAULT_INTERNAL, "$[3]: integer beyond the 64-bit range");
    /* Exactly INT64_MIN, even next to out-of-range look-alikes in strings. */
    struct xr_value *v = from_json("[\"-9223372036854775809\", -9223372036854775808]");
    ck_assert(v->u.list.last->u.i == INT64_MIN);
    expect_json_fail("[1e400]", XR_FAULT_INTERNAL, "$[0]: number 1e400 is beyond the double range");
    expect_json_fail("{\"x\": -1e999}", XR_FAULT_INTERNAL, "$.x: number -1e999");
}
END_TEST

START_TEST(text_that_is_not_json_is_a_parse_error)
{
    expect_json_fail("", XR_FAULT_PARSE, "invalid JSON at offset 0: ");
    expect_json_fail("   ", XR_FAULT_PARSE, "invalid JSON");
    expect_json_fail("[1] x", XR_FAULT_PARSE, "offset 4");
    expect_json_fail("[1] [2]", XR_FAULT_PARSE, "invalid JSON");
    expect_json_fail("[1,]", XR_FAULT_PARSE, "offset 3: unexpected character");
    expect_json_fail("{\"a\": 'b'}", XR_FAULT_PARSE, "invalid JSON");
    expect_json_fail("[1, 2", XR_FAULT_PARSE, "offset 5");
    expect_json_fail("tru", XR_FAULT_PARSE, "invalid JSON");
    expect_json_fail("<html>", XR_FAULT_PARSE, "offset 0");
    expect_json_fail("01", XR_FAULT_PARSE, "invalid JSON");
    expect_json_fail("\"\xff\"", XR_FAULT_PARSE, "utf-8");
    expect_json_fail("[NaN]", XR_FAULT_PARSE, "$[0]: NaN is not JSON");
    expect_json_fail("{\"a\": Infinity}", XR_FAULT_PARSE, "$.a: Infinity is not JSON");
    expect_json_fail("-Infinity", XR_FAULT_PARSE, "$: -Infinity is not JSON");
    static const char nul[] = "[1]\0[2]";
    expect_json_fail_len(nul, sizeof(nul) - 1, XR_FAULT_PARSE, "offset 3");
    static const char nul_in_string[] = "[\"a\0b\"]";
    expect_json_fail_len(nul_in_string, sizeof(nul_in_string) - 1, XR_FAULT_PARSE, "invalid");
}
END_TEST

START_TEST(depth_is_limited)
{
    struct xr_limits lim = {.max_depth = 5, .max_elements = 0};
    struct xr_value *v = NULL;

    /* Five arrays and objects deep, whatever is innermost. */
    from_json_len("[[[[{\"a\":1}]]]]", 15, &lim);
    from_json_len("[[[[[1]]]]]", 11, &lim);
    from_json_len("[[[[[]]]]]", 10, &lim);
    from_json_len("[[[[{\"$base64\":\"\"}]]]]", 22, &lim);
    ck_assert_int_eq(xrjson_parse(arena, "[[[[[[]]]]]]", 12, &lim, &v, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    ck_assert_str_eq(err.message, "$[0][0][0][0][0]: JSON nested deeper than 5 levels (max_depth)");
    ck_assert_int_eq(xrjson_parse(arena, "[[[[{\"a\":[1]}]]]]", 17, &lim, &v, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    ck_assert_int_eq(xrjson_parse(arena, "[[[[[[1]]]]]]", 13, &lim, &v, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    ck_assert_ptr_nonnull(strstr(err.message, "nesting too deep"));

    /* The default is 64 levels; far deeper is refused by the tokenizer. */
    char deep[20002];
    for (int i = 0; i < 64; i++) {
        deep[i] = '[';
        deep[64 + i] = ']';
    }
    from_json_len(deep, 128, NULL);
    for (int i = 0; i < 65; i++) {
        deep[i] = '[';
        deep[65 + i] = ']';
    }
    ck_assert_int_eq(xrjson_parse(arena, deep, 130, NULL, &v, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    ck_assert_ptr_nonnull(strstr(err.message, "64"));
    for (int i = 0; i < 10000; i++) {
        deep[i] = '[';
        deep[10000 + i] = ']';
    }
    ck_assert_int_eq(xrjson_parse(arena, deep, 20000, NULL, &v, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
}
END_TEST

START_TEST(tagged_objects_become_base64_and_datetime)
{
    struct xr_value *v = from_json("{\"$base64\": \"AP8A\\naA==\"}");
    ck_assert_int_eq(v->type, XR_BASE64);
    ck_assert_uint_eq(v->u.str.len, 4);
    ck_assert_int_eq(memcmp(v->u.str.ptr, "\0\xff\0h", 4), 0);
    v = from_json("{\"$base64\": \"\"}");
    ck_assert_int_eq(v->type, XR_BASE64);
    ck_assert_uint_eq(v->u.str.len, 0);
    v = from_json("{\"$datetime\": \"19991231T23:59:59\"}");
    ck_assert_int_eq(v->type, XR_DATETIME);
    ck_assert_str_eq(v->u.str.ptr, "19991231T23:59:59");
    ck_assert_str_eq(to_xml(v),
                     "<value><dateTime.iso8601>19991231T23:59:59</dateTime.iso8601></value>");

    /* With any other member they are plain structs. */
    v = from_json("{\"$base64\": \"!!\", \"other\": 1}");
    ck_assert_int_eq(v->type, XR_STRUCT);
    ck_assert_uint_eq(v->u.list.count, 2);
    ck_assert_str_eq(v->u.list.first->name, "$base64");
    v = from_json("{\"$datetime\": 1, \"$base64\": 2}");
    ck_assert_int_eq(v->type, XR_STRUCT);
    v = from_json("{\"$other\": \"x\"}");
    ck_assert_int_eq(v->type, XR_STRUCT);

    expect_json_fail("[{\"$base64\": \"a\"}]", XR_FAULT_INTERNAL, "$[0].$base64: not base64");
    expect_json_fail("{\"$base64\": \"a!==\"}", XR_FAULT_INTERNAL, "not base64");
    expect_json_fail("{\"$base64\": 5}", XR_FAULT_INTERNAL, "$.$base64: must be a string");
    expect_json_fail("{\"$datetime\": null}", XR_FAULT_INTERNAL, "$.$datetime: must be a string");
}
END_TEST

START_TEST(objects_keep_member_order)
{
    struct xr_value *v = from_json("{\"z\": 1, \"a\": 2, \"m\": {\"y\": 3, \"b\": 4}, \"\": 5}");
    const char *names[] = {"z", "a", "m", ""};
    const struct xr_value *c = v->u.list.first;
    for (int i = 0; i < 4; i++, c = c->next) {
        ck_assert_str_eq(c->name, names[i]);
        ck_assert_uint_eq(c->name_len, strlen(names[i]));
    }
    ck_assert_str_eq(xr_struct_get(v, "m")->u.list.first->name, "y");
    ck_assert_str_eq(to_json(v, "r"), "{\"z\":1,\"a\":2,\"m\":{\"y\":3,\"b\":4},\"\":5}");
    /* json-c keeps one member per key: the first one's place, the last value. */
    v = from_json("{\"a\": 1, \"b\": 2, \"a\": 3}");
    ck_assert_uint_eq(v->u.list.count, 2);
    ck_assert_str_eq(v->u.list.first->name, "a");
    ck_assert_int_eq(v->u.list.first->u.i, 3);
}
END_TEST

START_TEST(strings_keep_nul_and_control_characters)
{
    struct xr_value *v = from_json("\"a\\u0000b\\t\\r\\n\\\"\"");
    ck_assert_uint_eq(v->u.str.len, 7);
    ck_assert_int_eq(memcmp(v->u.str.ptr, "a\0b\t\r\n\"", 7), 0);
    ck_assert_str_eq(to_json(v, "x"), "\"a\\u0000b\\t\\r\\n\\\"\"");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Randomized round trip: XML -> parse -> JSON -> parse -> XML -> parse.    */

static uint64_t rng_state;

/* xorshift64*: small, fast and the same sequence everywhere. */
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static unsigned below(unsigned n)
{
    return (unsigned)(rng() % n);
}

static void append_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(b, u, n);
}

/* A code point XML 1.0 can carry, biased towards the troublesome ones. */
static unsigned random_char(void)
{
    static const char special[] = "<>&\"' \t\r\n]]>\\/$";
    unsigned cp;
    switch (below(8)) {
    case 0:
    case 1:
        return (unsigned char)special[below(sizeof(special) - 1)];
    case 2:
    case 3:
        return 0x20 + below(0x5f);
    case 4:
        return 0x80 + below(0x780);
    case 5:
        cp = 0x800 + below(0xfffe - 0x800);
        return cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp;
    case 6:
        return 0x10000 + below(0x100000);
    default:
        return 'a' + below(26);
    }
}

static void random_text(struct buf *b, unsigned max)
{
    unsigned n = below(max + 1);
    for (unsigned i = 0; i < n; i++)
        append_utf8(b, random_char());
}

static struct xr_value *random_value(int depth);

static struct xr_value *random_string(enum xr_type type)
{
    struct buf b = BUF_INIT;
    if (type == XR_DATETIME) {
        /* dateTime text is trimmed when read, so none at its ends. */
        buf_appendf(&b, "%04u%02u%02uT%02u:%02u:%02u", below(10000), below(13), below(32),
                    below(24), below(60), below(60));
        if (below(2))
            buf_append_str(&b, "Z");
    } else if (type == XR_BASE64) {
        unsigned n = below(40);
        for (unsigned i = 0; i < n; i++)
            buf_append_char(&b, (char)below(256));
    } else {
        random_text(&b, 24);
    }
    struct xr_value *v = xr_value_new_string(arena, type, b.data, b.len);
    buf_dispose(&b);
    return v;
}

static struct xr_value *random_int(void)
{
    static const int64_t edges[] = {
        0, 1, -1, INT32_MAX, INT32_MIN, INT32_MAX + 1LL, INT32_MIN - 1LL, INT64_MAX, INT64_MIN};
    switch (below(3)) {
    case 0:
        return xr_value_new_int(arena, edges[below(sizeof(edges) / sizeof(edges[0]))]);
    case 1:
        return xr_value_new_int(arena, (int64_t)(int32_t)rng());
    default:
        return xr_value_new_int(arena, (int64_t)rng());
    }
}

static struct xr_value *random_double(void)
{
    for (;;) {
        uint64_t bits = rng();
        double d;
        memcpy(&d, &bits, sizeof(d));
        if (isfinite(d))
            return xr_value_new_double(arena, d);
    }
}

static struct xr_value *random_list(enum xr_type type, int depth)
{
    struct xr_value *v = xr_value_new(arena, type);
    unsigned n = below(6);
    for (unsigned i = 0; i < n; i++) {
        struct xr_value *child = random_value(depth + 1);
        if (type == XR_STRUCT) {
            /* Unique names, never starting with '$' (a lone "$base64"
             * member would read back as base64: the contract's one
             * ambiguity). The index prefix keeps them unique. */
            struct buf name = BUF_INIT;
            buf_appendf(&name, "%u", i);
            random_text(&name, 8);
            child->name = arena_strndup(arena, name.data, name.len);
            child->name_len = name.len;
            buf_dispose(&name);
        }
        xr_value_append(v, child);
    }
    return v;
}

static struct xr_value *random_value(int depth)
{
    unsigned kinds = depth < 5 ? 11 : 9;
    switch (below(kinds)) {
    case 0:
        return random_int();
    case 1: {
        struct xr_value *v = xr_value_new(arena, XR_BOOL);
        v->u.b = (int)below(2);
        return v;
    }
    case 2:
    case 3:
        return random_string(XR_STRING);
    case 4:
        return random_double();
    case 5:
        return random_string(XR_DATETIME);
    case 6:
        return random_string(XR_BASE64);
    case 7:
        return xr_value_new(arena, XR_NIL);
    case 8:
        return random_int();
    case 9:
        return random_list(XR_ARRAY, depth);
    default:
        return random_list(XR_STRUCT, depth);
    }
}

static struct xr_value *xml_round(const struct xr_value *params)
{
    struct buf b = BUF_INIT;
    struct xr_call call;
    xr_write_call(&b, "round.trip", 10, params);
    int rc = xr_parse_call(arena, b.data, b.len, NULL, XR_PARSE_FULL, &call, &err);
    ck_assert_msg(rc == 0, "XML parse: %s\n%.*s", err.message, (int)b.len, b.data);
    ck_assert_str_eq(call.method, "round.trip");
    buf_dispose(&b);
    return call.params;
}

static struct xr_value *json_round(const struct xr_value *params)
{
    struct buf b = BUF_INIT;
    struct xr_value *v = NULL;
    ck_assert_int_eq(xrjson_write_value(&b, params, "params", &err), 0);
    int rc = xrjson_parse(arena, b.data, b.len, NULL, &v, &err);
    ck_assert_msg(rc == 0, "JSON parse: %s\n%.*s", err.message, (int)b.len, b.data);
    buf_dispose(&b);
    return v;
}

static void expect_equal(const struct xr_value *a, const struct xr_value *b, int round,
                         const char *stage)
{
    char why[256] = "";
    ck_assert_msg(equal(a, b, why, sizeof(why)), "round %d, %s: %s", round, stage, why);
}

START_TEST(random_trees_survive_xml_and_json_round_trips)
{
    rng_state = 0x5eed5eed12345678ULL;
    for (int round = 0; round < 3000; round++) {
        struct xr_value *params = xr_value_new(arena, XR_ARRAY);
        unsigned n = 1 + below(3);
        for (unsigned i = 0; i < n; i++)
            xr_value_append(params, random_value(0));
        struct xr_value *v1 = xml_round(params);
        expect_equal(params, v1, round, "XML");
        struct xr_value *v2 = json_round(v1);
        expect_equal(params, v2, round, "JSON");
        struct xr_value *v3 = xml_round(v2);
        expect_equal(params, v3, round, "XML again");
        if (round % 100 == 99)
            arena_reset(arena);
    }
}
END_TEST

START_TEST(equality_helper_sees_differences)
{
    /* The round-trip test is only as good as its comparison. */
    char why[256];
    struct xr_value *a = from_json("[1, 0.0, \"x\", {\"k\": [true]}]");
    ck_assert(equal(a, from_json("[1, 0.0, \"x\", {\"k\": [true]}]"), why, sizeof(why)));
    ck_assert(!equal(a, from_json("[1, -0.0, \"x\", {\"k\": [true]}]"), why, sizeof(why)));
    ck_assert(!equal(a, from_json("[1, 0.0, \"y\", {\"k\": [true]}]"), why, sizeof(why)));
    ck_assert(!equal(a, from_json("[1, 0.0, \"x\", {\"j\": [true]}]"), why, sizeof(why)));
    ck_assert(!equal(a, from_json("[1, 0.0, \"x\", {\"k\": [false]}]"), why, sizeof(why)));
    ck_assert(!equal(a, from_json("[1, 0.0, \"x\", {\"k\": [true, 1]}]"), why, sizeof(why)));
    ck_assert(!equal(a, from_json("[1.0, 0.0, \"x\", {\"k\": [true]}]"), why, sizeof(why)));
    ck_assert(!equal(a, from_json("[2, 0.0, \"x\", {\"k\": [true]}]"), why, sizeof(why)));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Strict RFC 8259, and the rules kept from json-c                          */

struct refusal {
    const char *text;
    size_t len; /* 0: strlen(text) */
    const char *needle;
};

static void expect_refusals(const struct refusal *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        expect_json_fail_len(cases[i].text, len, XR_FAULT_PARSE, cases[i].needle);
    }
}

START_TEST(what_json_c_let_through_is_refused)
{
    /* json-c 0.16 accepts all of these in strict mode; RFC 8259 (and RFC
     * 3629 for UTF-8) does not, and neither does xrjson. */
    static const struct refusal cases[] = {
        {"\"a\tb\"", 0, "offset 2: control character in string"},
        {"[\"\x01\"]", 0, "offset 2: control character"},
        {"\"\\ud800\"", 0, "offset 1: lone surrogate"},
        {"\"\\udc00\"", 0, "lone surrogate"},
        {"\"\\ud800\\u0041\"", 0, "lone surrogate"},
        {"\"\\ude00\\ud83d\"", 0, "lone surrogate"},
        {"\"x\\ud83d\"", 0, "offset 2: lone surrogate"},
        {"-01", 0, "offset 2: leading zeros"},
        {"[00]", 0, "offset 2: leading zeros"},
        {"01.5", 0, "leading zeros"},
        {"1.", 0, "offset 2: unexpected end of data"},
        {"[1.]", 0, "offset 3: digit expected after '.'"},
        {"-.5", 0, "offset 1: digit expected"},
        {"1.e5", 0, "offset 2: digit expected after '.'"},
        {"{'a': 1}", 0, "offset 1: quoted object property name expected"},
        {"\"\xc0\x80\"", 0, "offset 1: invalid utf-8"},
        {"\"\xe0\x80\x80\"", 0, "invalid utf-8"},
        {"\"\xed\xa0\x80\"", 0, "invalid utf-8"},
        {"\"\xf4\x90\x80\x80\"", 0, "invalid utf-8"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}
END_TEST

START_TEST(only_rfc8259_is_json)
{
    static const struct refusal cases[] = {
        {"[1,\f2]", 0, "offset 3: unexpected character"},
        {"\v1", 0, "offset 0"},
        {"\xef\xbb\xbf"
         "1",
         0, "offset 0: unexpected character"},
        {"\"\\x41\"", 0, "offset 2: invalid escape sequence"},
        {"\"\\U0041\"", 0, "invalid escape"},
        {"\"\\u00G0\"", 0, "offset 1: invalid \\u escape"},
        {"[\"\\u12\"]", 0, "invalid \\u escape"},
        {"\"\\", 0, "unexpected end of data"},
        {"\"abc", 0, "offset 4: unexpected end of data"},
        {"[1 2]", 0, "offset 3: array value separator ',' expected"},
        {"{\"a\" 1}", 0, "offset 5: object property name separator ':' expected"},
        {"{\"a\": 1 \"b\": 2}", 0, "offset 8: object value separator ',' expected"},
        {"{\"a\": 1,}", 0, "offset 8: quoted object property name expected"},
        {"{,}", 0, "offset 1: quoted"},
        {"{\"a\":}", 0, "offset 5: unexpected character"},
        {"/*x*/1", 0, "offset 0"},
        {"1//x", 0, "offset 1: unexpected text after the value"},
        {"truex", 0, "offset 4"},
        {"[True]", 0, "offset 1: unexpected character"},
        {"[nul]", 0, "offset 4: null expected"},
        {"fals", 0, "offset 4: unexpected end of data"},
        {"+1", 0, "offset 0"},
        {"0x10", 0, "offset 1"},
        {"1e", 0, "offset 2: unexpected end of data"},
        {"[1e+]", 0, "offset 4: digit expected in the exponent"},
        {"-", 0, "offset 1: unexpected end of data"},
        {"[-a]", 0, "offset 2: digit expected"},
        {"-Inf", 0, "offset 1: digit expected"},
        {".5", 0, "offset 0"},
        {"1ee5", 0, "offset 2"},
        {"[1]]", 0, "offset 3: unexpected text after the value"},
        {"[\"a\"\"b\"]", 0, "offset 4: array value separator"},
        {"\"a\0b\"", 5, "offset 2: control character"},
        {"\"\xc3\"", 0, "offset 1: invalid utf-8"},
        {"\xc3\xa9", 0, "offset 0: unexpected character"},
        {"[1,\n 2,\n x]", 0, "offset 9 (line 3, column 2): unexpected character"},
        {"{\r\n\"a\":\r\n\t?}", 0, "(line 3, column 2)"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
    expect_json_fail_len(NULL, 0, XR_FAULT_PARSE,
                         "invalid JSON at offset 0: unexpected end of data");
}
END_TEST

/* The double strtod() reads from text. */
static double read_double(const char *text)
{
    return strtod(text, NULL);
}

START_TEST(doubles_are_read_correctly_rounded)
{
    static const char *const texts[] = {
        "-0.0",
        "0.0",
        "1e-300",
        "5e-324",
        "4.9406564584124654e-324",
        "2.4703282292062328e-324",
        "2.4703282292062327e-324",
        "2.2250738585072014e-308",
        "2.2250738585072011e-308",
        "1.7976931348623157e308",
        "1.7976931348623158e+308",
        "1e-400",
        "-1e-400",
        "0.1",
        "1E2",
        "1e+2",
        "100e-2",
        "9007199254740993.0",
        "0.30000000000000004",
        "1.00000000000000011102230246251565404236316680908203125",
        "123456789012345678901234567890.5",
        "1000000000000000000000000000000000000000000000000000000000000000000000000000000.5e-50",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct xr_value *v = from_json(texts[i]);
        double want = read_double(texts[i]);
        ck_assert_msg(v->type == XR_DOUBLE, "%s: %s", texts[i], xr_type_name(v->type));
        ck_assert_msg(memcmp(&v->u.d, &want, sizeof(want)) == 0, "%s: %.17g, want %.17g", texts[i],
                      v->u.d, want);
    }
    ck_assert(signbit(from_json("-0.0")->u.d));
    ck_assert(signbit(from_json("-1e-400")->u.d)); /* underflow keeps the sign too */
    ck_assert(from_json("5e-324")->u.d == 4.9406564584124654e-324);
    ck_assert(from_json("1.7976931348623157e308")->u.d == DBL_MAX);
    expect_json_fail("1.7976931348623159e308", XR_FAULT_INTERNAL,
                     "$: number 1.7976931348623159e308");
    /* A 120-digit number is cut to 40 characters in the message. */
    char big[140];
    memset(big, '9', 120);
    memcpy(big + 120, ".0e300", 7);
    expect_json_fail(big, XR_FAULT_INTERNAL,
                     "$: number 9999999999999999999999999999999999999999 is beyond");
}
END_TEST

START_TEST(integers_at_the_64_bit_edges)
{
    struct xr_value *v = from_json("[2147483647, 2147483648, -2147483648, -2147483649,"
                                   " 9223372036854775807, -9223372036854775808, -0, 0,"
                                   " 1000000000000000000, -999999999999999999]");
    static const int64_t want[] = {INT32_MAX,
                                   INT32_MAX + 1LL,
                                   INT32_MIN,
                                   INT32_MIN - 1LL,
                                   INT64_MAX,
                                   INT64_MIN,
                                   0,
                                   0,
                                   1000000000000000000LL,
                                   -999999999999999999LL};
    const struct xr_value *c = v->u.list.first;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++, c = c->next) {
        ck_assert_int_eq(c->type, XR_INT);
        ck_assert_msg(c->u.i == want[i], "[%zu]: %lld", i, (long long)c->u.i);
    }
    expect_json_fail("[9223372036854775808]", XR_FAULT_INTERNAL, "$[0]: integer beyond");
    expect_json_fail("[-9223372036854775809]", XR_FAULT_INTERNAL, "$[0]: integer beyond");
    expect_json_fail("[10000000000000000000]", XR_FAULT_INTERNAL, "$[0]: integer beyond");
    expect_json_fail("[-18446744073709551617]", XR_FAULT_INTERNAL, "$[0]: integer beyond");
}
END_TEST

START_TEST(a_value_without_form_counts_only_if_it_stays)
{
    struct xr_limits lim = {.max_depth = 2, .max_elements = 0};
    struct xr_value *v = NULL;

    /* A later member of the same name replaces it, as in json-c. */
    v = from_json("{\"a\": 1e400, \"b\": [], \"a\": 1}");
    ck_assert_uint_eq(v->u.list.count, 2);
    ck_assert_int_eq(v->u.list.first->u.i, 1);
    v = from_json("{\"a\": {\"$base64\": \"!\"}, \"a\": 99999999999999999999, \"a\": null}");
    ck_assert_int_eq(v->u.list.first->type, XR_NIL);

    /* Text that is not JSON is that, wherever it is. */
    expect_json_fail("[99999999999999999999, ]", XR_FAULT_PARSE, "offset 23: unexpected character");
    expect_json_fail("[1e400, NaN]", XR_FAULT_PARSE, "$[1]: NaN is not JSON");

    /* Otherwise the first left in the tree: a replaced member keeps its place. */
    expect_json_fail("{\"a\": 1, \"b\": 1e400, \"a\": 99999999999999999999}", XR_FAULT_INTERNAL,
                     "$.a: integer beyond the 64-bit range");
    ck_assert_int_eq(xrjson_parse(arena, "[1e400, [[]]]", 13, &lim, &v, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_INTERNAL);
    ck_assert_str_eq(err.message, "$[0]: number 1e400 is beyond the double range");
    ck_assert_int_eq(xrjson_parse(arena, "[[{ }], 1e400]", 14, &lim, &v, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    ck_assert_str_eq(err.message, "$[0][0]: JSON nested deeper than 2 levels (max_depth)");
    ck_assert_int_eq(xrjson_parse(arena, "{\"x\": [[]], \"x\": 2}", 19, &lim, &v, &err), 0);
    ck_assert_int_eq(v->u.list.first->u.i, 2);
    ck_assert_int_eq(xrjson_parse(arena, "[[[\"\"]]]", 8, &lim, &v, &err), -1);
    ck_assert_str_eq(err.message, "invalid JSON at offset 3: nesting too deep");

    /* Tagged objects are judged after the one-member-per-name rule. */
    v = from_json("{\"$base64\": 5, \"$base64\": \"aGk=\"}");
    ck_assert_int_eq(v->type, XR_BASE64);
    ck_assert_str_eq(v->u.str.ptr, "hi");
    v = from_json("{\"$datetime\": \"x\", \"$datetime\": \"y\"}");
    ck_assert_int_eq(v->type, XR_DATETIME);
    ck_assert_str_eq(v->u.str.ptr, "y");
    expect_json_fail("{\"$base64\": \"aGk=\", \"$base64\": 1e400}", XR_FAULT_INTERNAL,
                     "$.$base64: must be a string");
    expect_json_fail("[{\"$datetime\": [1]}]", XR_FAULT_INTERNAL,
                     "$[0].$datetime: must be a string");
}
END_TEST

START_TEST(member_names_are_decoded_and_kept_whole)
{
    /* Names compare decoded: "\u0061" is "a". */
    struct xr_value *v = from_json("{\"a\": 1, \"\\u0061\": 2}");
    ck_assert_uint_eq(v->u.list.count, 1);
    ck_assert_int_eq(v->u.list.first->u.i, 2);

    /* json-c cut names at \u0000 (and then merged "a\0b" with "a\0c");
     * RFC 8259 names are strings like any other, so they are kept whole. */
    v = from_json("{\"a\\u0000b\": 1, \"a\\u0000c\": 2, \"$base64\\u0000\": \"aGk=\"}");
    ck_assert_uint_eq(v->u.list.count, 3);
    ck_assert_uint_eq(v->u.list.first->name_len, 3);
    ck_assert_int_eq(memcmp(v->u.list.first->name, "a\0b", 4), 0);
    ck_assert_int_eq(memcmp(v->u.list.first->next->name, "a\0c", 4), 0);
    v = from_json("{\"$base64\\u0000\": \"aGk=\"}");
    ck_assert_int_eq(v->type, XR_STRUCT);

    /* json-c 0.16 turned these pairs into U+FFFD (see the differential
     * test below); they are U+1D800 and U+10DFFF. */
    v = from_json("[\"\\ud836\\udc00\", \"\\udbf7\\udfff\"]");
    ck_assert_str_eq(v->u.list.first->u.str.ptr, "\xf0\x9d\xa0\x80");
    ck_assert_str_eq(v->u.list.last->u.str.ptr, "\xf4\x8d\xbf\xbf");

    /* Past a few members names are found through a hash table: the same
     * rule must hold there, for every member. */
    struct buf b = BUF_INIT;
    buf_append_char(&b, '{');
    for (int i = 0; i < 300; i++)
        buf_appendf(&b, "\"k%d\": %d, ", i, i);
    for (int i = 0; i < 300; i += 7)
        buf_appendf(&b, "\"k%d\": %d, ", i, -i);
    buf_append_str(&b, "\"k299\": \"last\"}");
    v = from_json_len(b.data, b.len, NULL);
    buf_dispose(&b);
    ck_assert_uint_eq(v->u.list.count, 300);
    const struct xr_value *m = v->u.list.first;
    for (int i = 0; i < 300; i++, m = m->next) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        ck_assert_str_eq(m->name, name);
        if (i == 299)
            ck_assert_str_eq(m->u.str.ptr, "last");
        else
            ck_assert_int_eq(m->u.i, i % 7 == 0 ? -i : i);
    }
    ck_assert_ptr_eq(v->u.list.last, xr_struct_get(v, "k299"));
}
END_TEST

START_TEST(the_tree_outlives_the_text)
{
    /* The caller may free the text first: nothing may point into it. */
    static const char json[] = "{\"plain\": \"abc\", \"esc\\u00e9\": \"a\\nb\", \"d\": "
                               "{\"$datetime\": \"x\"}, \"b\": {\"$base64\": \"aGk=\"}}";
    char *text = mem_strndup(json, sizeof(json) - 1);
    struct xr_value *v = NULL;

    ck_assert_int_eq(xrjson_parse(arena, text, sizeof(json) - 1, NULL, &v, &err), 0);
    memset(text, '#', sizeof(json) - 1);
    free(text);
    const struct xr_value *m = v->u.list.first;
    ck_assert_str_eq(m->name, "plain");
    ck_assert_str_eq(m->u.str.ptr, "abc");
    m = m->next;
    ck_assert_str_eq(m->name, "esc\xc3\xa9");
    ck_assert_str_eq(m->u.str.ptr, "a\nb");
    m = m->next;
    ck_assert_str_eq(m->name, "d");
    ck_assert_str_eq(m->u.str.ptr, "x");
    m = m->next;
    ck_assert_str_eq(m->u.str.ptr, "hi");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Differential test against json-c                                         */

/*
 * Thousands of texts, valid ones from the generator below and the same
 * mutated, go through xrjson_parse and through json-c in strict mode, the
 * parser xrjson used before. They must agree: xrjson accepts exactly when
 * json-c accepts and the value has an XML-RPC form, and the trees are then
 * equal, doubles to the bit and members in order; when the value has no
 * form, the error is the same, message included.
 *
 * Where json-c 0.16 is more lenient than RFC 8259, RFC 8259 wins (an
 * independent recognizer, below, decides) and xrjson must refuse the text as
 * not JSON. The cases seen: NaN, Infinity and -Infinity; raw control
 * characters in strings; lone or reversed \u surrogates (json-c writes
 * U+FFFD); leading zeros after a minus or before a fraction ("-01", "00",
 * "01.5"); a '.' without digits on one side ("1.", "-.5"); single-quoted
 * member names; UTF-8 that RFC 3629 forbids (overlong forms, encoded
 * surrogates, code points above U+10FFFF).
 *
 * Two more differences are json-c losing data, and such texts are only
 * counted: it cuts member names at \u0000, which xrjson keeps whole; and it
 * decodes a \u surrogate pair to U+FFFD when the low 16 bits of the code
 * point fall in D800-DFFF (U+1D800, U+2D836, ...: 32 of the 1024 high
 * surrogates), which xrjson decodes right. json-c is never stricter than
 * RFC 8259 but for its depth limit, which xrjson shares.
 */

/* A recognizer of RFC 8259 JSON text, written apart from xrjson.c so that
 * the two do not share mistakes; depth aside, it knows no limits. */
struct rfc {
    const unsigned char *p;
    const unsigned char *end;
    int name_with_nul;   /* a member name holds \u0000 */
    int lost_pair;       /* a surrogate pair json-c decodes to U+FFFD */
    int negative_beyond; /* an integer below INT64_MIN, which json-c reads as INT64_MIN */
};

static int rfc_value(struct rfc *s, int depth);

static void rfc_space(struct rfc *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Takes one byte in [lo, hi]. */
static int rfc_range(struct rfc *s, unsigned lo, unsigned hi)
{
    if (s->p == s->end || *s->p < lo || *s->p > hi)
        return 0;
    s->p++;
    return 1;
}

static int rfc_take(struct rfc *s, char c)
{
    return rfc_range(s, (unsigned char)c, (unsigned char)c);
}

static int rfc_tails(struct rfc *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!rfc_range(s, 0x80, 0xbf))
            return 0;
    return 1;
}

/* UTF8-2, UTF8-3 and UTF8-4 of RFC 3629, section 4, as written there. */
static int rfc_utf8(struct rfc *s)
{
    unsigned c = *s->p++;

    if (c >= 0xc2 && c <= 0xdf)
        return rfc_tails(s, 1);
    if (c == 0xe0)
        return rfc_range(s, 0xa0, 0xbf) && rfc_tails(s, 1);
    if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
        return rfc_tails(s, 2);
    if (c == 0xed)
        return rfc_range(s, 0x80, 0x9f) && rfc_tails(s, 1);
    if (c == 0xf0)
        return rfc_range(s, 0x90, 0xbf) && rfc_tails(s, 2);
    if (c >= 0xf1 && c <= 0xf3)
        return rfc_tails(s, 3);
    if (c == 0xf4)
        return rfc_range(s, 0x80, 0x8f) && rfc_tails(s, 2);
    return 0;
}

static int rfc_hex4(struct rfc *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        if (s->p == s->end || !isxdigit(*s->p))
            return 0;
        unsigned c = *s->p++;
        *v = *v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return 1;
}

/* After "\u": one code point, a surrogate only as a high-low pair. */
static int rfc_unicode(struct rfc *s, unsigned *cp)
{
    unsigned lo;

    if (!rfc_hex4(s, cp) || (*cp >= 0xdc00 && *cp <= 0xdfff))
        return 0;
    if (*cp < 0xd800 || *cp > 0xdbff)
        return 1;
    if (!(rfc_take(s, '\\') && rfc_take(s, 'u') && rfc_hex4(s, &lo) && lo >= 0xdc00 &&
          lo <= 0xdfff))
        return 0;
    *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
    s->lost_pair |= (*cp & 0xf800) == 0xd800;
    return 1;
}

static int rfc_string(struct rfc *s, int is_name)
{
    unsigned cp;

    if (!rfc_take(s, '"'))
        return 0;
    for (;;) {
        if (s->p == s->end)
            return 0;
        unsigned c = *s->p;
        if (c >= 0x80) {
            if (!rfc_utf8(s))
                return 0;
            continue;
        }
        s->p++;
        if (c == '"')
            return 1;
        if (c < 0x20)
            return 0;
        if (c != '\\')
            continue;
        if (s->p == s->end)
            return 0;
        c = *s->p++;
        if (c == 'u') {
            if (!rfc_unicode(s, &cp))
                return 0;
            s->name_with_nul |= is_name && cp == 0;
        } else if (c == 0 || strchr("\"\\/bfnrt", (int)c) == NULL) {
            return 0;
        }
    }
}

static int rfc_digits(struct rfc *s)
{
    const unsigned char *from = s->p;

    while (s->p < s->end && isdigit(*s->p))
        s->p++;
    return s->p > from;
}

static int rfc_number(struct rfc *s)
{
    int negative = rfc_take(s, '-');
    const unsigned char *digits = s->p;
    int integer = 1;

    if (!rfc_take(s, '0')) {
        if (!rfc_range(s, '1', '9'))
            return 0;
        rfc_digits(s);
    }
    size_t n = (size_t)(s->p - digits);
    if (rfc_take(s, '.')) {
        integer = 0;
        if (!rfc_digits(s))
            return 0;
    }
    if (rfc_take(s, 'e') || rfc_take(s, 'E')) {
        integer = 0;
        if (!rfc_take(s, '+'))
            rfc_take(s, '-');
        if (!rfc_digits(s))
            return 0;
    }
    if (integer && negative &&
        (n > 19 || (n == 19 && memcmp(digits, "9223372036854775808", 19) > 0)))
        s->negative_beyond = 1;
    return 1;
}

static int rfc_literal(struct rfc *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return 0;
    s->p += n;
    return 1;
}

/* An array (members 0) or object, its opening bracket at s->p. */
static int rfc_list(struct rfc *s, char close, int members, int depth)
{
    s->p++;
    rfc_space(s);
    if (rfc_take(s, close))
        return 1;
    do {
        rfc_space(s);
        if (members && !(rfc_string(s, 1) && (rfc_space(s), rfc_take(s, ':'))))
            return 0;
        if (!rfc_value(s, depth + 1))
            return 0;
        rfc_space(s);
    } while (rfc_take(s, ','));
    return rfc_take(s, close);
}

static int rfc_value(struct rfc *s, int depth)
{
    rfc_space(s);
    if (s->p == s->end || depth > 1000) /* far beyond any text made here */
        return 0;
    switch (*s->p) {
    case '{':
        return rfc_list(s, '}', 1, depth);
    case '[':
        return rfc_list(s, ']', 0, depth);
    case '"':
        return rfc_string(s, 0);
    case 't':
        return rfc_literal(s, "true");
    case 'f':
        return rfc_literal(s, "false");
    case 'n':
        return rfc_literal(s, "null");
    default:
        return rfc_number(s);
    }
}

static int rfc_valid(const char *text, size_t len, struct rfc *s)
{
    memset(s, 0, sizeof(*s));
    s->p = (const unsigned char *)text;
    s->end = s->p + len;
    if (!rfc_value(s, 0))
        return 0;
    rfc_space(s);
    return s->p == s->end;
}

/*
 * json-c as xrjson.c used it: strict, UTF-8 checked, its depth limit one
 * above max_depth, a top-level number completed by a NUL, whitespace only
 * after the value. Returns 1 with *out (NULL is null), or 0 with the reason.
 */
static int jsonc_parse(const char *text, size_t len, unsigned max_depth, struct json_object **out,
                       const char **why)
{
    struct json_tokener *tok = json_tokener_new_ex((int)max_depth + 1);
    ck_assert_ptr_nonnull(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);

    if (e == json_tokener_continue) {
        o = json_tokener_parse_ex(tok, "", 1);
        e = json_tokener_get_error(tok);
        end = len;
    }
    json_tokener_free(tok);
    *why = json_tokener_error_desc(e);
    for (size_t i = end; e == json_tokener_success && i < len; i++) {
        if (strchr(" \t\r\n", text[i]) == NULL || text[i] == '\0') {
            e = json_tokener_error_parse_unexpected;
            *why = "text after the value";
        }
    }
    if (e != json_tokener_success) {
        json_object_put(o);
        return 0;
    }
    *out = o;
    return 1;
}

/* What xrjson must answer for a text json-c and RFC 8259 both accept. */
struct expect {
    int ok;
    int ambiguous; /* met an INT64_MIN that may stand for a literal beyond it */
    int code;
    char message[256];
};

/* Walks json-c's tree as xrjson.c converted it, to the first value with no
 * XML-RPC form, and writes down the error it must give. */
struct oracle {
    unsigned max_depth;
    int negative_beyond;
    struct buf path;
    struct expect *want;
};

static int oracle_fail(struct oracle *o, int code, const char *tag, const char *what)
{
    char where[160];

    snprintf(where, sizeof(where), "%.*s%s%s", (int)o->path.len, o->path.data, tag ? "." : "",
             tag ? tag : "");
    o->want->ok = 0;
    o->want->code = code;
    /* what is short: the message is never cut after it. */
    snprintf(o->want->message, sizeof(o->want->message), "%s: %.90s", where, what);
    return -1;
}

static int oracle_number(struct oracle *o, struct json_object *j)
{
    char what[96];

    if (json_object_is_type(j, json_type_double)) {
        if (isfinite(json_object_get_double(j)))
            return 0;
        snprintf(what, sizeof(what), "number %.40s is beyond the double range",
                 json_object_get_string(j));
        return oracle_fail(o, XR_FAULT_INTERNAL, NULL, what);
    }
    int64_t i = json_object_get_int64(j);
    if (i == INT64_MAX && json_object_get_uint64(j) > (uint64_t)INT64_MAX)
        return oracle_fail(o, XR_FAULT_INTERNAL, NULL, "integer beyond the 64-bit range");
    if (i == INT64_MIN && o->negative_beyond) {
        o->want->ambiguous = 1;
        return -1;
    }
    return 0;
}

/* "$base64" or "$datetime" when j is such a tagged object, else NULL. */
static const char *tag_of(struct json_object *j)
{
    if (!json_object_is_type(j, json_type_object) || json_object_object_length(j) != 1)
        return NULL;
    struct json_object_iterator it = json_object_iter_begin(j);
    const char *key = json_object_iter_peek_name(&it);
    return strcmp(key, "$base64") == 0 || strcmp(key, "$datetime") == 0 ? key : NULL;
}

static int oracle_tagged(struct oracle *o, struct json_object *j, const char *tag)
{
    struct json_object *s = json_object_object_get(j, tag);
    const char *bytes;
    size_t n;

    if (!json_object_is_type(s, json_type_string))
        return oracle_fail(o, XR_FAULT_INTERNAL, tag, "must be a string");
    if (strcmp(tag, "$base64") == 0 &&
        base64_decode(arena, json_object_get_string(s), (size_t)json_object_get_string_len(s),
                      &bytes, &n) < 0)
        return oracle_fail(o, XR_FAULT_INTERNAL, tag, "not base64");
    return 0;
}

static int oracle_walk(struct oracle *o, struct json_object *j, unsigned depth);

static int oracle_container(struct oracle *o, struct json_object *j, unsigned depth)
{
    size_t mark = o->path.len;
    int rc = 0;
    char what[64];

    if (depth + 1 > o->max_depth) {
        snprintf(what, sizeof(what), "JSON nested deeper than %u levels (max_depth)", o->max_depth);
        return oracle_fail(o, XR_FAULT_PARSE, NULL, what);
    }
    if (json_object_is_type(j, json_type_array)) {
        for (size_t i = 0; rc == 0 && i < json_object_array_length(j); i++) {
            buf_appendf(&o->path, "[%zu]", i);
            rc = oracle_walk(o, json_object_array_get_idx(j, i), depth + 1);
            o->path.len = mark;
        }
        return rc;
    }
    const char *tag = tag_of(j);
    if (tag != NULL)
        return oracle_tagged(o, j, tag);
    struct json_object_iterator it = json_object_iter_begin(j);
    struct json_object_iterator end = json_object_iter_end(j);
    for (; rc == 0 && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        buf_appendf(&o->path, ".%s", json_object_iter_peek_name(&it));
        rc = oracle_walk(o, json_object_iter_peek_value(&it), depth + 1);
        o->path.len = mark;
    }
    return rc;
}

static int oracle_walk(struct oracle *o, struct json_object *j, unsigned depth)
{
    switch (json_object_get_type(j)) {
    case json_type_int:
    case json_type_double:
        return oracle_number(o, j);
    case json_type_array:
    case json_type_object:
        return oracle_container(o, j, depth);
    default:
        return 0;
    }
}

static void oracle_expect(struct json_object *j, unsigned max_depth, int negative_beyond,
                          struct expect *want)
{
    struct oracle o = {max_depth, negative_beyond, BUF_INIT, want};

    memset(want, 0, sizeof(*want));
    want->ok = 1;
    buf_append_str(&o.path, "$");
    oracle_walk(&o, j, 0);
    buf_dispose(&o.path);
}

/* Equality of xrjson's tree and json-c's, as the contract maps one to the
 * other; the first difference goes to why. */
static int same_tree(const struct xr_value *v, struct json_object *j, char *why, size_t cap);

static int same_type(const struct xr_value *v, enum xr_type type, char *why, size_t cap)
{
    if (v->type == type)
        return 1;
    snprintf(why, cap, "%s where json-c has %s", xr_type_name(v->type), xr_type_name(type));
    return 0;
}

static int same_bytes(const char *what, const char *a, size_t a_len, const char *b, size_t b_len,
                      char *why, size_t cap)
{
    if (a_len == b_len && memcmp(a, b, a_len) == 0)
        return 1;
    snprintf(why, cap, "%s '%.*s' (%zu) vs json-c '%.*s' (%zu)", what, (int)a_len, a, a_len,
             (int)b_len, b, b_len);
    return 0;
}

static int same_tagged(const struct xr_value *v, struct json_object *j, const char *tag, char *why,
                       size_t cap)
{
    struct json_object *s = json_object_object_get(j, tag);
    const char *text = json_object_get_string(s);
    size_t len = (size_t)json_object_get_string_len(s);
    const char *bytes;
    size_t n;

    if (strcmp(tag, "$datetime") == 0)
        return same_type(v, XR_DATETIME, why, cap) &&
               same_bytes("dateTime", v->u.str.ptr, v->u.str.len, text, len, why, cap);
    ck_assert_int_eq(base64_decode(arena, text, len, &bytes, &n), 0);
    return same_type(v, XR_BASE64, why, cap) &&
           same_bytes("base64", v->u.str.ptr, v->u.str.len, bytes, n, why, cap);
}

static int same_list(const struct xr_value *v, struct json_object *j, char *why, size_t cap)
{
    int is_array = json_object_is_type(j, json_type_array);
    size_t n = is_array ? json_object_array_length(j) : (size_t)json_object_object_length(j);
    const struct xr_value *c = v->u.list.first;

    if (!same_type(v, is_array ? XR_ARRAY : XR_STRUCT, why, cap))
        return 0;
    if (v->u.list.count != n) {
        snprintf(why, cap, "%zu children where json-c has %zu", v->u.list.count, n);
        return 0;
    }
    if (is_array) {
        for (size_t i = 0; i < n; i++, c = c->next)
            if (!same_tree(c, json_object_array_get_idx(j, i), why, cap))
                return 0;
        return 1;
    }
    struct json_object_iterator it = json_object_iter_begin(j);
    struct json_object_iterator end = json_object_iter_end(j);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it), c = c->next) {
        const char *key = json_object_iter_peek_name(&it);
        if (!same_bytes("name", c->name, c->name_len, key, strlen(key), why, cap) ||
            !same_tree(c, json_object_iter_peek_value(&it), why, cap))
            return 0;
    }
    return 1;
}

static int same_tree(const struct xr_value *v, struct json_object *j, char *why, size_t cap)
{
    const char *tag = tag_of(j);
    double d;

    if (tag != NULL)
        return same_tagged(v, j, tag, why, cap);
    switch (json_object_get_type(j)) {
    case json_type_null:
        return same_type(v, XR_NIL, why, cap);
    case json_type_boolean:
        if (!same_type(v, XR_BOOL, why, cap))
            return 0;
        if (v->u.b == json_object_get_boolean(j))
            return 1;
        snprintf(why, cap, "boolean %d", v->u.b);
        return 0;
    case json_type_int:
        if (!same_type(v, XR_INT, why, cap))
            return 0;
        if (v->u.i == json_object_get_int64(j))
            return 1;
        snprintf(why, cap, "int %lld vs json-c %lld", (long long)v->u.i,
                 (long long)json_object_get_int64(j));
        return 0;
    case json_type_double:
        d = json_object_get_double(j);
        if (!same_type(v, XR_DOUBLE, why, cap))
            return 0;
        if (memcmp(&v->u.d, &d, sizeof(d)) == 0)
            return 1;
        snprintf(why, cap, "double %.17g vs json-c %.17g (%s)", v->u.d, d,
                 json_object_get_string(j));
        return 0;
    case json_type_string:
        return same_type(v, XR_STRING, why, cap) &&
               same_bytes("string", v->u.str.ptr, v->u.str.len, json_object_get_string(j),
                          (size_t)json_object_get_string_len(j), why, cap);
    case json_type_array:
    case json_type_object:
        return same_list(v, j, why, cap);
    }
    snprintf(why, cap, "json-c type %d", (int)json_object_get_type(j));
    return 0;
}

/* A text for a failure message: printable, escaped, cut short. */
static const char *shown(const char *text, size_t len)
{
    struct buf b = BUF_INIT;

    for (size_t i = 0; i < len && b.len < 400; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f)
            buf_append_char(&b, (char)c);
        else
            buf_appendf(&b, "\\x%02x", c);
    }
    char *s = arena_strndup(arena, b.data ? b.data : "", b.len);
    buf_dispose(&b);
    return s;
}

/* How often each outcome was met, so the test can tell it covered them. */
struct tally {
    unsigned texts;
    unsigned accepted;
    unsigned no_form;   /* JSON with no XML-RPC form */
    unsigned not_json;  /* refused by both */
    unsigned lenient;   /* json-c accepts, RFC 8259 does not */
    unsigned too_deep;  /* json-c's depth limit */
    unsigned lost;      /* json-c cuts a member name or loses a character */
    unsigned ambiguous; /* json-c's INT64_MIN stands for a literal beyond it */
};

/* The verdict of json-c and RFC 8259 on one text, checked against xrjson. */
static void differ(const char *text, size_t len, unsigned max_depth, struct tally *t)
{
    struct xr_limits lim = {.max_depth = max_depth, .max_elements = 0};
    unsigned depth = max_depth ? max_depth : 64;
    struct rfc syntax;
    struct json_object *j = NULL;
    const char *jc_why = NULL;
    struct xr_value *v = NULL;
    struct xr_error e = {0};
    struct expect want;
    char why[256] = "";

    int rfc_ok = rfc_valid(text, len, &syntax);
    int jc_ok = jsonc_parse(text, len, depth, &j, &jc_why);
    int rc = xrjson_parse(arena, text, len, &lim, &v, &e);
    t->texts++;
    if (!rfc_ok || !jc_ok) {
        if (rfc_ok && strcmp(jc_why, "nesting too deep") != 0)
            ck_abort_msg("json-c refuses RFC 8259 JSON (%s): %s", jc_why, shown(text, len));
        if (rc != -1 || e.code != XR_FAULT_PARSE)
            ck_abort_msg("not JSON (RFC 8259 %d, json-c %s) but xrjson: %d %d %s\n%s", rfc_ok,
                         jc_ok ? "accepts" : jc_why, rc, e.code, e.message, shown(text, len));
        t->lenient += jc_ok;
        t->too_deep += rfc_ok;
        t->not_json += !rfc_ok && !jc_ok;
        goto out;
    }
    if (syntax.name_with_nul || syntax.lost_pair) {
        t->lost++;
        goto out;
    }
    oracle_expect(j, depth, syntax.negative_beyond, &want);
    if (want.ambiguous) {
        /* Either reading may be right; xrjson must pick one of them. */
        if (!(rc == 0 && same_tree(v, j, why, sizeof(why))) &&
            !(rc == -1 && e.code == XR_FAULT_INTERNAL))
            ck_abort_msg("INT64_MIN or beyond: %d %s\n%s", rc, e.message, shown(text, len));
        t->ambiguous++;
    } else if (want.ok) {
        if (rc != 0)
            ck_abort_msg("json-c accepts, xrjson: %d %s\n%s", e.code, e.message, shown(text, len));
        if (!same_tree(v, j, why, sizeof(why)))
            ck_abort_msg("trees differ: %s\n%s", why, shown(text, len));
        t->accepted++;
    } else {
        if (rc != -1 || e.code != want.code || strcmp(e.message, want.message) != 0)
            ck_abort_msg("want %d '%s', xrjson %d %d '%s'\n%s", want.code, want.message, rc, e.code,
                         e.message, shown(text, len));
        t->no_form++;
    }
out:
    json_object_put(j);
}

/* Generator of valid JSON text --------------------------------------- */

static void gen_value(struct buf *b, unsigned depth, unsigned limit);

/* Whitespace of all four kinds, now and then. */
static void gen_space(struct buf *b)
{
    static const char *const blanks[] = {" ", "\n", "\t", "\r\n", " \t  "};
    if (below(4) == 0)
        buf_append_str(b, blanks[below(5)]);
}

static void gen_u_escape(struct buf *b, unsigned v)
{
    if (below(2))
        buf_appendf(b, "\\u%04x", v);
    else
        buf_appendf(b, "\\u%04X", v);
}

/* A string's inside: every short escape, \u escapes (pairs for the astral
 * planes), raw UTF-8 of every length, plain ASCII. */
static void gen_chars(struct buf *b, unsigned max, int nul)
{
    static const char *const escapes[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"};
    unsigned n = below(max + 1);

    for (unsigned i = 0; i < n; i++) {
        unsigned cp;
        switch (below(9)) {
        case 0:
            buf_append_str(b, escapes[below(8)]);
            break;
        case 1:
            cp = below(3) == 0 ? below(0x100) : below(2) ? below(0xd800) : 0xe000 + below(0x2000);
            gen_u_escape(b, cp == 0 && !nul ? 1 : cp);
            break;
        case 2:
            cp = below(0x100000);
            gen_u_escape(b, 0xd800 + (cp >> 10));
            gen_u_escape(b, 0xdc00 + (cp & 0x3ff));
            break;
        case 3:
            append_utf8(b, 0x80 + below(0x780));
            break;
        case 4:
            cp = 0x800 + below(0xf800);
            append_utf8(b, cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
            break;
        case 5:
            append_utf8(b, 0x10000 + below(0x100000));
            break;
        default:
            cp = 0x20 + below(0x5f);
            buf_append_char(b, cp == '"' || cp == '\\' ? 'q' : (char)cp);
            break;
        }
    }
}

static void gen_string(struct buf *b)
{
    buf_append_char(b, '"');
    gen_chars(b, 12, 1);
    buf_append_char(b, '"');
}

/* Member names: often from a small pool, so that objects repeat names and
 * meet the tags; "\u0061" is "a" once decoded. */
static void gen_name(struct buf *b, int many)
{
    static const char *const pool[] = {"a", "b", "id", "$base64", "$datetime", "$x", "", "\\u0061"};

    buf_append_char(b, '"');
    if (many)
        buf_appendf(b, "k%u", below(80));
    else if (below(2))
        buf_append_str(b, pool[below(8)]);
    else
        gen_chars(b, 6, 0);
    buf_append_char(b, '"');
}

static void gen_digits(struct buf *b, unsigned min, unsigned max)
{
    unsigned n = min + below(max - min + 1);
    for (unsigned i = 0; i < n; i++)
        buf_append_char(b, (char)('0' + below(10)));
}

/* A number of any shape the grammar allows. */
static void gen_decimal(struct buf *b)
{
    if (below(2))
        buf_append_char(b, '-');
    if (below(4) == 0) {
        buf_append_char(b, '0');
    } else {
        buf_append_char(b, (char)('1' + below(9)));
        gen_digits(b, 0, below(4) ? 6 : 24);
    }
    if (below(2)) {
        buf_append_char(b, '.');
        gen_digits(b, 1, below(4) ? 6 : 24);
    }
    if (below(3) == 0) {
        buf_append_char(b, below(2) ? 'e' : 'E');
        if (below(2))
            buf_append_char(b, below(2) ? '+' : '-');
        gen_digits(b, 1, 3);
    }
}

static void gen_number(struct buf *b)
{
    static const char *const edges[] = {"0",
                                        "-0",
                                        "1",
                                        "-1",
                                        "2147483647",
                                        "2147483648",
                                        "-2147483648",
                                        "-2147483649",
                                        "9223372036854775807",
                                        "-9223372036854775808",
                                        "9223372036854775808",
                                        "-9223372036854775809",
                                        "18446744073709551615",
                                        "18446744073709551616",
                                        "0.0",
                                        "-0.0",
                                        "1e-300",
                                        "5e-324",
                                        "2.4703282292062328e-324",
                                        "2.2250738585072014e-308",
                                        "1.7976931348623157e308",
                                        "1.7976931348623159e308",
                                        "1e400",
                                        "-1e400",
                                        "1e-400",
                                        "-1e-400",
                                        "0.1",
                                        "1E5",
                                        "1e+5",
                                        "-1.5E-7",
                                        "9007199254740993.0",
                                        "123456789012345678901234567890.5"};
    uint64_t bits;
    double d;

    switch (below(6)) {
    case 0:
    case 1:
        buf_append_str(b, edges[below(sizeof(edges) / sizeof(edges[0]))]);
        break;
    case 2:
        buf_appendf(b, "%lld", (long long)(int64_t)rng());
        break;
    case 3:
        do {
            bits = rng();
            memcpy(&d, &bits, sizeof(d));
        } while (!isfinite(d));
        buf_appendf(b, "%.17g", d);
        break;
    default:
        gen_decimal(b);
        break;
    }
}

/* {"$base64": ...} or {"$datetime": ...}, right or wrong. */
static void gen_tagged(struct buf *b, unsigned depth, unsigned limit)
{
    static const char *const bad[] = {"\"a\"", "\"a!==\"", "\"====\"", "\"aGk\"", "5", "null"};
    unsigned char bytes[24];
    unsigned n = below(sizeof(bytes) + 1);

    buf_append_char(b, '{');
    gen_space(b);
    if (below(2)) {
        buf_append_str(b, "\"$base64\":");
        gen_space(b);
        if (below(4) == 0) {
            buf_append_str(b, bad[below(sizeof(bad) / sizeof(bad[0]))]);
        } else {
            for (unsigned i = 0; i < n; i++)
                bytes[i] = (unsigned char)below(256);
            buf_append_char(b, '"');
            base64_encode(b, bytes, n);
            if (below(4) == 0)
                buf_append_str(b, "\\n");
            buf_append_char(b, '"');
        }
    } else {
        buf_append_str(b, "\"$datetime\":");
        gen_space(b);
        if (below(4) == 0)
            gen_value(b, depth + 1, limit);
        else
            gen_string(b);
    }
    gen_space(b);
    buf_append_char(b, '}');
}

static void gen_list(struct buf *b, int object, unsigned depth, unsigned limit)
{
    int many = object && below(8) == 0;
    unsigned n = many ? 30 + below(60) : below(6);

    buf_append_char(b, object ? '{' : '[');
    gen_space(b);
    for (unsigned i = 0; i < n; i++) {
        if (i > 0)
            buf_append_char(b, ',');
        gen_space(b);
        if (object) {
            gen_name(b, many);
            gen_space(b);
            buf_append_char(b, ':');
            gen_space(b);
        }
        /* A big object's values are kept plain, so that its tree, and so
         * its names, get compared rather than an error. */
        if (many)
            buf_appendf(b, "%u", below(1000));
        else
            gen_value(b, depth + 1, limit);
        gen_space(b);
    }
    buf_append_char(b, object ? '}' : ']');
}

/* A value `depth` arrays and objects deep. Containers come while depth <=
 * limit, so one level past a max_depth of `limit` is reached too. */
static void gen_value(struct buf *b, unsigned depth, unsigned limit)
{
    switch (below(depth <= limit ? 12 : 8)) {
    case 0:
        buf_append_str(b, "null");
        break;
    case 1:
        buf_append_str(b, below(2) ? "true" : "false");
        break;
    case 2:
    case 3:
    case 4:
        gen_number(b);
        break;
    case 5:
    case 6:
    case 7:
        gen_string(b);
        break;
    case 8:
    case 9:
        gen_list(b, 0, depth, limit);
        break;
    case 10:
        gen_list(b, 1, depth, limit);
        break;
    default:
        gen_tagged(b, depth, limit);
        break;
    }
}

/* Where to break a text: half the time next to punctuation, where one
 * byte more or less turns JSON into something that looks like it. */
static size_t mutation_point(const struct buf *b)
{
    size_t at = b->len ? below((unsigned)b->len) : 0;

    if (below(2))
        return at;
    for (size_t k = 0; k < b->len; k++) {
        size_t i = (at + k) % b->len;
        if (b->data[i] != '\0' && strchr(",:[]{}\"", b->data[i]) != NULL)
            return i;
    }
    return at;
}

/* Breaks a text the ways texts break: a byte changed, the end cut off, a
 * stray token put in, a byte lost. */
static void mutate(struct buf *b)
{
    static const char *const tokens[] = {",",
                                         "]",
                                         "}",
                                         "[",
                                         "{",
                                         ":",
                                         "\"",
                                         "NaN",
                                         "Infinity",
                                         "-Infinity",
                                         "-",
                                         "01",
                                         "-01",
                                         "1.",
                                         ".5",
                                         "1e",
                                         "+1",
                                         "0x1",
                                         "'a'",
                                         "\x01",
                                         "\x7f",
                                         "\xff",
                                         "\xc0\x80",
                                         "\xed\xa0\x80",
                                         "\xf4\x90\x80\x80",
                                         "\xe2\x82",
                                         "\\x",
                                         "\\ud800",
                                         "\\udc00",
                                         "\\u12",
                                         "/*c*/",
                                         "//",
                                         "\f",
                                         "\v",
                                         "\xef\xbb\xbf",
                                         "tru",
                                         "nul",
                                         "True",
                                         "null",
                                         "1e400",
                                         "99999999999999999999",
                                         "-9223372036854775809",
                                         "\\u0000",
                                         "\\",
                                         " ",
                                         "\t",
                                         "[[[[[[[[[["};
    static const char interesting[] = "\"\\,:[]{}0-.eE+ \x01\x1f\x80\xbf\xc3\xff\f";
    size_t at = mutation_point(b);
    struct buf out = BUF_INIT;

    switch (below(5)) {
    case 0:
        if (b->len > 0)
            b->data[at] = below(2) ? interesting[below(sizeof(interesting) - 1)] : (char)below(256);
        return;
    case 1:
        b->len = below((unsigned)b->len + 1);
        return;
    case 2:
        if (b->len > 0) {
            memmove(b->data + at, b->data + at + 1, b->len - at - 1);
            b->len--;
        }
        return;
    default:
        buf_append(&out, b->data, at);
        if (below(8) == 0)
            buf_append(&out, "", 1); /* a NUL */
        else
            buf_append_str(&out, tokens[below(sizeof(tokens) / sizeof(tokens[0]))]);
        buf_append(&out, b->data + at, b->len - at);
        buf_dispose(b);
        *b = out;
        return;
    }
}

START_TEST(parses_as_json_c_did_where_rfc8259_agrees)
{
    static const unsigned depths[] = {0, 0, 0, 2, 3, 4, 6};
    struct tally t = {0};

    rng_state = 0xd1ffe7e57c0ffee5ULL;
    for (int round = 0; round < 10000; round++) {
        unsigned max_depth = depths[below(sizeof(depths) / sizeof(depths[0]))];
        struct buf text = BUF_INIT;
        gen_space(&text);
        gen_value(&text, 0, max_depth ? max_depth : 5);
        gen_space(&text);
        differ(text.data, text.len, max_depth, &t);
        for (int m = 0; m < 3; m++) {
            mutate(&text);
            differ(text.data ? text.data : "", text.len, max_depth, &t);
        }
        buf_dispose(&text);
        if (round % 100 == 99)
            arena_reset(arena);
    }
    /* Every outcome was met often enough to mean something. */
    fprintf(stderr,
            "xrjson differential: %u texts, %u accepted, %u with no XML-RPC form, %u not JSON, "
            "%u json-c lenient, %u too deep, %u json-c losing data, %u ambiguous\n",
            t.texts, t.accepted, t.no_form, t.not_json, t.lenient, t.too_deep, t.lost, t.ambiguous);
    ck_assert_uint_ge(t.accepted, 6000);
    ck_assert_uint_ge(t.no_form, 400);
    ck_assert_uint_ge(t.not_json, 13000);
    ck_assert_uint_ge(t.lenient, 250);
    ck_assert_uint_ge(t.too_deep, 100);
    ck_assert_uint_ge(t.lost, 80);
    ck_assert_uint_le(t.ambiguous, t.texts / 100);
}
END_TEST

Suite *xrjson_suite(void)
{
    Suite *s = suite_create("xrjson");
    TCase *tc = tcase_create("write");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, writes_every_type);
    tcase_add_test(tc, non_finite_doubles_are_refused_with_their_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("parse");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, parses_every_type);
    tcase_add_test(tc, numbers_keep_their_kind_and_int32_decides_int_or_i8);
    tcase_add_test(tc, integers_beyond_64_bits_are_refused_with_their_path);
    tcase_add_test(tc, text_that_is_not_json_is_a_parse_error);
    tcase_add_test(tc, depth_is_limited);
    tcase_add_test(tc, tagged_objects_become_base64_and_datetime);
    tcase_add_test(tc, objects_keep_member_order);
    tcase_add_test(tc, strings_keep_nul_and_control_characters);
    tcase_add_test(tc, what_json_c_let_through_is_refused);
    tcase_add_test(tc, only_rfc8259_is_json);
    tcase_add_test(tc, doubles_are_read_correctly_rounded);
    tcase_add_test(tc, integers_at_the_64_bit_edges);
    tcase_add_test(tc, a_value_without_form_counts_only_if_it_stays);
    tcase_add_test(tc, member_names_are_decoded_and_kept_whole);
    tcase_add_test(tc, the_tree_outlives_the_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, random_trees_survive_xml_and_json_round_trips);
    tcase_add_test(tc, equality_helper_sees_differences);
    suite_add_tcase(s, tc);

    tc = tcase_create("differential");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, parses_as_json_c_did_where_rfc8259_agrees);
    suite_add_tcase(s, tc);
    return s;
}
