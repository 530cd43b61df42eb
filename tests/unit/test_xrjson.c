#include "unit.h"
#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"
#include "legacy-adapters/xrjson.h"

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
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, random_trees_survive_xml_and_json_round_trips);
    tcase_add_test(tc, equality_helper_sees_differences);
    suite_add_tcase(s, tc);
    return s;
}
