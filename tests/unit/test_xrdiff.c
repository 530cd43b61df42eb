#include "unit.h"
#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"
#include "legacy-adapters/xrdiff.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Each test runs in its own process (Check's fork mode); the fixture gives
 * it a fresh arena, the parser's one-time initialisation and an empty
 * result, disposed afterwards whatever the test did. */
static struct arena *arena;
static struct xrdiff_result res;

static void setup(void)
{
    xr_init();
    arena = arena_new(0);
    memset(&res, 0, sizeof(res));
}

static void teardown(void)
{
    xrdiff_result_dispose(&res);
    arena_free(arena);
    xr_cleanup();
}

#define PROLOGUE "<?xml version=\"1.0\"?>\n"
/* A response whose result is the <value> v. */
#define RESP(v) PROLOGUE "<methodResponse><params><param>" v "</param></params></methodResponse>"
#define FAULT(code, s)                                                                             \
    PROLOGUE "<methodResponse><fault><value><struct>"                                              \
             "<member><name>faultCode</name><value><int>" code "</int></value></member>"           \
             "<member><name>faultString</name><value><string>" s "</string></value></member>"      \
             "</struct></value></fault></methodResponse>"
#define MEMBER(name, value) "<member><name>" name "</name>" value "</member>"
#define STRUCT(members)     "<value><struct>" members "</struct></value>"
#define ARRAY(values)       "<value><array><data>" values "</data></array></value>"
#define STR(s)              "<value><string>" s "</string></value>"
#define INT(s)              "<value><int>" s "</int></value>"
#define DBL(s)              "<value><double>" s "</double></value>"

static struct xr_response parse(const char *xml)
{
    struct xr_response r;
    struct xr_error err;
    memset(&r, 0, sizeof(r));
    memset(&err, 0, sizeof(err));
    int rc = xr_parse_response(arena, xml, strlen(xml), NULL, &r, &err);
    ck_assert_msg(rc == 0, "parse failed: %d %s\n%s", err.code, err.message, xml);
    return r;
}

/* Compares two response bodies; disposes of any earlier result first, so a
 * test may compare several times. */
static int diff_opt(const char *legacy, const char *candidate, const struct xrdiff_options *opt)
{
    struct xr_response l = parse(legacy), c = parse(candidate);
    xrdiff_result_dispose(&res);
    int rc = xrdiff_compare(&l, &c, opt, &res);
    ck_assert_int_eq(rc, res.count > 0 ? 1 : 0);
    ck_assert_uint_le(res.npaths, res.count);
    return rc;
}

static int diff(const char *legacy, const char *candidate)
{
    return diff_opt(legacy, candidate, NULL);
}

static void dump(void)
{
    for (size_t i = 0; i < res.npaths; i++)
        fprintf(stderr, "  [%zu] %s\n", i, res.paths[i]);
}

/* Asserts that res holds exactly the given entries, in order (NULL ends
 * the list), and counted no more. */
static void expect(const char *first, ...)
{
    va_list ap;
    size_t n = 0;

    va_start(ap, first);
    for (const char *want = first; want != NULL; want = va_arg(ap, const char *), n++) {
        if (n >= res.npaths || strcmp(res.paths[n], want) != 0)
            dump();
        ck_assert_msg(n < res.npaths, "missing entry %zu '%s'", n, want);
        ck_assert_str_eq(res.paths[n], want);
    }
    va_end(ap);
    if (res.npaths != n)
        dump();
    ck_assert_uint_eq(res.npaths, n);
    ck_assert_uint_eq(res.count, n);
}

static void expect_equal(void)
{
    if (res.count != 0)
        dump();
    ck_assert_uint_eq(res.count, 0);
    ck_assert_uint_eq(res.npaths, 0);
    ck_assert_ptr_null(res.paths);
}

/* ------------------------------------------------------------------------ */

START_TEST(reordered_struct_members_are_equal)
{
    const char *l = RESP(STRUCT(
        MEMBER("sku", STR("A-1")) MEMBER("qty", INT("5")) MEMBER("tags", ARRAY(STR("x") STR("y")))
            MEMBER("loc", STRUCT(MEMBER("aisle", INT("3")) MEMBER("bin", STR("b"))))));
    const char *c =
        RESP(STRUCT(MEMBER("loc", STRUCT(MEMBER("bin", STR("b")) MEMBER("aisle", INT("3")))) MEMBER(
            "tags", ARRAY(STR("x") STR("y"))) MEMBER("qty", INT("5")) MEMBER("sku", STR("A-1"))));
    ck_assert_int_eq(diff(l, c), 0);
    expect_equal();
    /* Element order in an array does matter. */
    ck_assert_int_eq(diff(RESP(ARRAY(STR("x") STR("y"))), RESP(ARRAY(STR("y") STR("x")))), 1);
    expect("result[0]: value differs", "result[1]: value differs", NULL);
}
END_TEST

START_TEST(int_i4_and_i8_are_one_integer_type)
{
    ck_assert_int_eq(diff(RESP(INT("42")), RESP("<value><i4>42</i4></value>")), 0);
    ck_assert_int_eq(diff(RESP("<value><i4>42</i4></value>"), RESP("<value><i8>42</i8></value>")),
                     0);
    ck_assert_int_eq(diff(RESP(INT("-7")), RESP("<value><i8>-7</i8></value>")), 0);
    expect_equal();
    ck_assert_int_eq(diff(RESP(INT("42")), RESP("<value><i8>43</i8></value>")), 1);
    expect("result: value differs", NULL);
    ck_assert_int_eq(diff(RESP("<value><i8>9007199254740993</i8></value>"),
                          RESP("<value><i8>9007199254740992</i8></value>")),
                     1); /* compared as integers, not through a double */
    expect("result: value differs", NULL);
}
END_TEST

START_TEST(string_and_untyped_value_are_one_type)
{
    ck_assert_int_eq(diff(RESP(STR("hello")), RESP("<value>hello</value>")), 0);
    expect_equal();
    ck_assert_int_eq(diff(RESP(STR("hello")), RESP("<value>hullo</value>")), 1);
    expect("result: value differs", NULL);
    /* Strings keep every byte: trailing blanks are a difference. */
    ck_assert_int_eq(diff(RESP(STR("a")), RESP(STR("a "))), 1);
    expect("result: value differs", NULL);
}
END_TEST

START_TEST(a_deep_change_is_named_by_its_exact_path)
{
    const char *l = RESP(STRUCT(MEMBER(
        "orders",
        ARRAY(STRUCT(MEMBER("lines", ARRAY(STRUCT(MEMBER("qty", INT("1")))))) STRUCT(
            MEMBER("id", STR("o2")) MEMBER(
                "lines", ARRAY(STRUCT(MEMBER("qty", INT("1"))) STRUCT(MEMBER("qty", INT("2")))
                                   STRUCT(MEMBER("qty", INT("3")) MEMBER("sku", STR("s"))))))))));
    const char *c = RESP(STRUCT(MEMBER(
        "orders",
        ARRAY(STRUCT(MEMBER("lines", ARRAY(STRUCT(MEMBER("qty", INT("1")))))) STRUCT(
            MEMBER("id", STR("o2")) MEMBER(
                "lines", ARRAY(STRUCT(MEMBER("qty", INT("1"))) STRUCT(MEMBER("qty", INT("2")))
                                   STRUCT(MEMBER("sku", STR("s")) MEMBER("qty", INT("4"))))))))));
    ck_assert_int_eq(diff(l, c), 1);
    expect("result.orders[1].lines[2].qty: value differs", NULL);
    /* A plain array at the root. */
    ck_assert_int_eq(diff(RESP(ARRAY(INT("1") ARRAY(INT("2") INT("3")))),
                          RESP(ARRAY(INT("1") ARRAY(INT("2") INT("9"))))),
                     1);
    expect("result[1][1]: value differs", NULL);
}
END_TEST

START_TEST(missing_and_extra_members_are_named)
{
    const char *l = RESP(STRUCT(MEMBER("a", INT("1")) MEMBER("b", INT("2")) MEMBER("c", INT("3"))
                                    MEMBER("d", STRUCT(MEMBER("x", INT("1"))))));
    const char *c = RESP(STRUCT(MEMBER("z", INT("9")) MEMBER("c", INT("3")) MEMBER(
        "a", INT("1")) MEMBER("d", STRUCT(MEMBER("y", INT("1")))) MEMBER("e", INT("0"))));
    ck_assert_int_eq(diff(l, c), 1);
    /* The legacy's members in its order, then what only the candidate has,
     * in the candidate's order; a struct member is listed once, not its
     * insides. */
    expect("result.b: missing in candidate", "result.d.x: missing in candidate",
           "result.d.y: only in candidate", "result.z: only in candidate",
           "result.e: only in candidate", NULL);
}
END_TEST

START_TEST(array_length_is_one_entry_plus_the_common_elements)
{
    ck_assert_int_eq(diff(RESP(ARRAY(INT("1") INT("2") INT("3"))), RESP(ARRAY(INT("1") INT("9")))),
                     1);
    expect("result: length 3 vs 2", "result[1]: value differs", NULL);
    ck_assert_int_eq(diff(RESP(STRUCT(MEMBER("items", ARRAY("")))),
                          RESP(STRUCT(MEMBER("items", ARRAY(INT("1") INT("2")))))),
                     1);
    expect("result.items: length 0 vs 2", NULL);
}
END_TEST

START_TEST(a_type_difference_is_named_with_both_types)
{
    ck_assert_int_eq(diff(RESP(INT("5")), RESP(STR("5"))), 1);
    expect("result: type int vs string", NULL);
    /* 5 and 5.0 are different types to a client. */
    ck_assert_int_eq(diff(RESP(INT("5")), RESP(DBL("5.0"))), 1);
    expect("result: type int vs double", NULL);
    ck_assert_int_eq(diff(RESP(STRUCT(MEMBER("v", "<value><nil/></value>"))),
                          RESP(STRUCT(MEMBER("v", INT("0"))))),
                     1);
    expect("result.v: type nil vs int", NULL);
    ck_assert_int_eq(diff(RESP("<value><nil/></value>"), RESP("<value><nil/></value>")), 0);
    ck_assert_int_eq(diff(RESP(ARRAY(STRUCT(MEMBER("a", INT("1"))))), RESP(ARRAY(ARRAY(INT("1"))))),
                     1);
    expect("result[0]: type struct vs array", NULL);
    ck_assert_int_eq(diff(RESP("<value><boolean>1</boolean></value>"), RESP(INT("1"))), 1);
    expect("result: type boolean vs int", NULL);
    ck_assert_int_eq(diff(RESP("<value><boolean>1</boolean></value>"),
                          RESP("<value><boolean>0</boolean></value>")),
                     1);
    expect("result: value differs", NULL);
    ck_assert_int_eq(diff(RESP("<value><dateTime.iso8601>20240102T03:04:05</dateTime.iso8601>"
                               "</value>"),
                          RESP(STR("20240102T03:04:05"))),
                     1);
    expect("result: type dateTime.iso8601 vs string", NULL);
}
END_TEST

START_TEST(a_missing_result_value_is_type_none)
{
    struct xr_response l, c;
    memset(&l, 0, sizeof(l));
    memset(&c, 0, sizeof(c));
    l.result = xr_value_new_int(arena, 1);
    ck_assert_int_eq(xrdiff_compare(&l, &c, NULL, &res), 1);
    expect("result: type int vs none", NULL);
    xrdiff_result_dispose(&res);
    l.result = NULL;
    ck_assert_int_eq(xrdiff_compare(&l, &c, NULL, &res), 0);
    expect_equal();
}
END_TEST

START_TEST(doubles_compare_within_the_tolerance)
{
    struct xrdiff_options opt = {1e-6, NULL, 0};

    /* Exact by default. */
    ck_assert_int_eq(diff(RESP(DBL("0.1")), RESP(DBL("0.1"))), 0);
    ck_assert_int_eq(diff(RESP(DBL("0.1")), RESP(DBL("0.1000000001"))), 1);
    expect("result: value differs", NULL);
    ck_assert_int_eq(diff(RESP(DBL("1.5")), RESP(DBL("1.50"))), 0);

    /* Relative above 1: 1e-6 of 100 is 1e-4. */
    ck_assert_int_eq(diff_opt(RESP(DBL("100.0")), RESP(DBL("100.00009")), &opt), 0);
    ck_assert_int_eq(diff_opt(RESP(DBL("100.0")), RESP(DBL("100.0002")), &opt), 1);
    expect("result: value differs", NULL);
    ck_assert_int_eq(diff_opt(RESP(DBL("1000000")), RESP(DBL("1000000.9")), &opt), 0);
    ck_assert_int_eq(diff_opt(RESP(DBL("1000000")), RESP(DBL("1000001.1")), &opt), 1);
    /* Absolute below 1: 1e-6 whatever the size. */
    ck_assert_int_eq(diff_opt(RESP(DBL("0.0000001")), RESP(DBL("0.0000009")), &opt), 0);
    ck_assert_int_eq(diff_opt(RESP(DBL("0.001")), RESP(DBL("0.0010011")), &opt), 1);
    ck_assert_int_eq(diff_opt(RESP(DBL("-0.5")), RESP(DBL("0.5")), &opt), 1);
    /* Inside containers too, and only doubles get the tolerance. */
    ck_assert_int_eq(diff_opt(RESP(STRUCT(MEMBER("p", DBL("9.99")) MEMBER("q", INT("3")))),
                              RESP(STRUCT(MEMBER("q", INT("4")) MEMBER("p", DBL("9.9900000001")))),
                              &opt),
                     1);
    expect("result.q: value differs", NULL);
    /* A negative or NaN tolerance is exact comparison. */
    opt.tolerance = -1;
    ck_assert_int_eq(diff_opt(RESP(DBL("100.0")), RESP(DBL("100.00009")), &opt), 1);
    opt.tolerance = NAN;
    ck_assert_int_eq(diff_opt(RESP(DBL("100.0")), RESP(DBL("100.00009")), &opt), 1);
}
END_TEST

START_TEST(negative_zero_equals_zero)
{
    struct xr_response l = parse(RESP(DBL("-0.0"))), c = parse(RESP(DBL("0.0")));
    /* The parser keeps the sign, so the comparison is what decides. */
    ck_assert(signbit(l.result->u.d));
    ck_assert(!signbit(c.result->u.d));
    ck_assert_int_eq(xrdiff_compare(&l, &c, NULL, &res), 0);
    expect_equal();
}
END_TEST

START_TEST(nan_and_infinities)
{
    struct xrdiff_options opt = {1e300, NULL, 0};
    ck_assert_int_eq(diff(RESP(DBL("nan")), RESP(DBL("nan"))), 0);
    ck_assert_int_eq(diff(RESP(DBL("inf")), RESP(DBL("inf"))), 0);
    ck_assert_int_eq(diff(RESP(DBL("nan")), RESP(DBL("0"))), 1);
    ck_assert_int_eq(diff(RESP(DBL("inf")), RESP(DBL("-inf"))), 1);
    /* No tolerance makes an infinity equal to a number. */
    ck_assert_int_eq(diff_opt(RESP(DBL("inf")), RESP(DBL("1e308")), &opt), 1);
    ck_assert_int_eq(diff_opt(RESP(DBL("nan")), RESP(DBL("1")), &opt), 1);
}
END_TEST

START_TEST(ignore_paths_exact_and_any_index)
{
    static const char *const exact[] = {"result.updated_at", NULL};
    static const char *const any[] = {"result.items[].price", NULL};
    static const char *const one[] = {"result.items[1].price", NULL};
    const char *l = RESP(STRUCT(MEMBER("updated_at", STR("t1")) MEMBER("n", INT("1")) MEMBER(
        "items", ARRAY(STRUCT(MEMBER("sku", STR("a")) MEMBER("price", DBL("1.0")))
                           STRUCT(MEMBER("sku", STR("b")) MEMBER("price", DBL("2.0")))))));
    const char *c = RESP(STRUCT(MEMBER("updated_at", STR("t2")) MEMBER("n", INT("2")) MEMBER(
        "items", ARRAY(STRUCT(MEMBER("sku", STR("a")) MEMBER("price", DBL("1.5")))
                           STRUCT(MEMBER("sku", STR("B")) MEMBER("price", DBL("2.5")))))));
    struct xrdiff_options opt = {0, NULL, 0};

    ck_assert_int_eq(diff(l, c), 1);
    expect("result.updated_at: value differs", "result.n: value differs",
           "result.items[0].price: value differs", "result.items[1].sku: value differs",
           "result.items[1].price: value differs", NULL);
    opt.ignore = exact;
    diff_opt(l, c, &opt);
    expect("result.n: value differs", "result.items[0].price: value differs",
           "result.items[1].sku: value differs", "result.items[1].price: value differs", NULL);
    opt.ignore = any;
    diff_opt(l, c, &opt);
    expect("result.updated_at: value differs", "result.n: value differs",
           "result.items[1].sku: value differs", NULL);
    opt.ignore = one;
    diff_opt(l, c, &opt);
    expect("result.updated_at: value differs", "result.n: value differs",
           "result.items[0].price: value differs", "result.items[1].sku: value differs", NULL);
    /* An ignored member may also be missing on one side. */
    opt.ignore = exact;
    ck_assert_int_eq(diff_opt(RESP(STRUCT(MEMBER("updated_at", STR("t")) MEMBER("n", INT("1")))),
                              RESP(STRUCT(MEMBER("n", INT("1")))), &opt),
                     0);
    ck_assert_int_eq(diff_opt(RESP(STRUCT(MEMBER("n", INT("1")))),
                              RESP(STRUCT(MEMBER("updated_at", STR("t")) MEMBER("n", INT("1")))),
                              &opt),
                     0);
    /* A path that does not parse ignores nothing. */
    static const char *const broken[] = {"result.n.", "result.updated_at x", NULL};
    opt.ignore = broken;
    diff_opt(l, c, &opt);
    ck_assert_uint_eq(res.count, 5);
}
END_TEST

START_TEST(an_ignore_path_leaves_out_its_whole_subtree)
{
    static const char *const meta[] = {"result.meta", NULL};
    static const char *const all[] = {"result", NULL};
    static const char *const nested[] = {"result[][]", NULL};
    const char *l =
        RESP(STRUCT(MEMBER("meta", STRUCT(MEMBER("a", STRUCT(MEMBER("b", INT("1"))))
                                              MEMBER("x", INT("1")))) MEMBER("v", INT("1"))));
    const char *c =
        RESP(STRUCT(MEMBER("meta", STRUCT(MEMBER("a", STRUCT(MEMBER("b", INT("2"))))
                                              MEMBER("y", ARRAY("")))) MEMBER("v", INT("2"))));
    struct xrdiff_options opt = {0, meta, 0};

    diff(l, c);
    expect("result.meta.a.b: value differs", "result.meta.x: missing in candidate",
           "result.meta.y: only in candidate", "result.v: value differs", NULL);
    diff_opt(l, c, &opt);
    expect("result.v: value differs", NULL);
    /* A type change at the ignored node itself is left out too. */
    ck_assert_int_eq(diff_opt(RESP(STRUCT(MEMBER("meta", INT("1")))),
                              RESP(STRUCT(MEMBER("meta", ARRAY(INT("1"))))), &opt),
                     0);
    opt.ignore = all;
    ck_assert_int_eq(diff_opt(l, c, &opt), 0);
    opt.ignore = nested;
    ck_assert_int_eq(diff_opt(RESP(ARRAY(ARRAY(INT("1")) ARRAY(INT("2") INT("3")) INT("4"))),
                              RESP(ARRAY(ARRAY(INT("9")) ARRAY(INT("8")) INT("5"))), &opt),
                     1);
    /* result[1] is an array whose length is not ignored: only its
     * elements are. */
    expect("result[1]: length 2 vs 1", "result[2]: value differs", NULL);
}
END_TEST

START_TEST(a_result_against_a_fault_is_one_root_difference)
{
    static const char *const ignore[] = {"result", "fault", NULL};
    struct xrdiff_options opt = {0, ignore, 0};
    const char *result = RESP(STRUCT(MEMBER("a", INT("1")) MEMBER("b", INT("2"))));
    const char *fault = FAULT("4", "Too many parameters");

    ck_assert_int_eq(diff(result, fault), 1);
    expect("result: result vs fault", NULL);
    ck_assert_int_eq(diff(fault, result), 1);
    expect("fault: fault vs result", NULL);
    /* The kind of answer is never ignored. */
    ck_assert_int_eq(diff_opt(result, fault, &opt), 1);
    expect("result: result vs fault", NULL);
}
END_TEST

START_TEST(two_faults_compare_code_and_string)
{
    static const char *const no_string[] = {"fault.faultString", NULL};
    static const char *const no_fault[] = {"fault", NULL};
    struct xrdiff_options opt = {0, no_string, 0};

    ck_assert_int_eq(diff(FAULT("4", "Too many"), FAULT("4", "Too many")), 0);
    ck_assert_int_eq(diff(FAULT("4", "Too many"), FAULT("-32602", "Too many")), 1);
    expect("fault.faultCode: value differs", NULL);
    ck_assert_int_eq(diff(FAULT("4", "Too many"), FAULT("5", "too many")), 1);
    expect("fault.faultCode: value differs", "fault.faultString: value differs", NULL);
    ck_assert_int_eq(diff_opt(FAULT("4", "Too many"), FAULT("4", "too many"), &opt), 0);
    ck_assert_int_eq(diff_opt(FAULT("4", "Too many"), FAULT("5", "too many"), &opt), 1);
    expect("fault.faultCode: value differs", NULL);
    opt.ignore = no_fault;
    ck_assert_int_eq(diff_opt(FAULT("4", "Too many"), FAULT("5", "too many"), &opt), 0);
}
END_TEST

START_TEST(base64_compares_bytes_and_datetime_its_text)
{
#define B64(s) "<value><base64>" s "</base64></value>"
#define DT(s)  "<value><dateTime.iso8601>" s "</dateTime.iso8601></value>"
    /* "hello world" encoded in one line and wrapped: the same bytes. */
    ck_assert_int_eq(diff(RESP(B64("aGVsbG8gd29ybGQ=")), RESP(B64("aGVsbG8g\nd29y\nbGQ="))), 0);
    ck_assert_int_eq(diff(RESP(B64("aGVsbG8gd29ybGQ=")), RESP(B64("aGVsbG8gd29ybGU="))), 1);
    expect("result: value differs", NULL);
    /* Bytes after a NUL count. */
    ck_assert_int_eq(diff(RESP(B64("AAE=")), RESP(B64("AAI="))), 1);
    ck_assert_int_eq(diff(RESP(B64("")), RESP(B64("AA=="))), 1);

    ck_assert_int_eq(diff(RESP(DT("20240102T03:04:05")), RESP(DT("20240102T03:04:05"))), 0);
    ck_assert_int_eq(diff(RESP(DT("20240102T03:04:05")), RESP(DT("20240102T03:04:06"))), 1);
    expect("result: value differs", NULL);
    /* The same instant in another spelling breaks the legacy's clients. */
    ck_assert_int_eq(diff(RESP(DT("20240102T03:04:05")), RESP(DT("2024-01-02T03:04:05"))), 1);
    expect("result: value differs", NULL);
#undef B64
#undef DT
}
END_TEST

START_TEST(max_paths_caps_collection_but_not_counting)
{
    char l[4096], c[4096];
    size_t ll = 0, cl = 0;
    struct xrdiff_options opt = {0, NULL, 3};

    ll += (size_t)snprintf(l + ll, sizeof(l) - ll, "%s",
                           PROLOGUE "<methodResponse><params>"
                                    "<param><value><array><data>");
    cl += (size_t)snprintf(c + cl, sizeof(c) - cl, "%s",
                           PROLOGUE "<methodResponse><params>"
                                    "<param><value><array><data>");
    for (int i = 0; i < 40; i++) {
        ll += (size_t)snprintf(l + ll, sizeof(l) - ll, "<value><int>%d</int></value>", i);
        cl += (size_t)snprintf(c + cl, sizeof(c) - cl, "<value><int>%d</int></value>", i + 1);
    }
    snprintf(l + ll, sizeof(l) - ll, "%s",
             "</data></array></value></param></params>"
             "</methodResponse>");
    snprintf(c + cl, sizeof(c) - cl, "%s",
             "</data></array></value></param></params>"
             "</methodResponse>");

    ck_assert_int_eq(diff_opt(l, c, &opt), 1);
    ck_assert_uint_eq(res.count, 40);
    ck_assert_uint_eq(res.npaths, 3);
    ck_assert_str_eq(res.paths[0], "result[0]: value differs");
    ck_assert_str_eq(res.paths[2], "result[2]: value differs");
    /* 0 means the default. */
    diff(l, c);
    ck_assert_uint_eq(res.count, 40);
    ck_assert_uint_eq(res.npaths, XRDIFF_DEFAULT_MAX_PATHS);
    ck_assert_str_eq(res.paths[31], "result[31]: value differs");
    opt.max_paths = 1000;
    diff_opt(l, c, &opt);
    ck_assert_uint_eq(res.count, 40);
    ck_assert_uint_eq(res.npaths, 40);
    ck_assert_str_eq(res.paths[39], "result[39]: value differs");
}
END_TEST

/* A struct {name: 1} against {name: 2}, built so that any byte may be in
 * the name. */
static void diff_name(const char *name, const char *want)
{
    struct xr_response l, c;
    memset(&l, 0, sizeof(l));
    memset(&c, 0, sizeof(c));
    l.result = xr_value_new(arena, XR_STRUCT);
    c.result = xr_value_new(arena, XR_STRUCT);
    xr_struct_add(arena, l.result, name, xr_value_new_int(arena, 1));
    xr_struct_add(arena, c.result, name, xr_value_new_int(arena, 2));
    xrdiff_result_dispose(&res);
    ck_assert_int_eq(xrdiff_compare(&l, &c, NULL, &res), 1);
    expect(want, NULL);

    /* The path as reported is a valid ignore path that ignores it. */
    char path[256], why[256] = "";
    const char *colon = strstr(want, ": value differs");
    ck_assert_ptr_nonnull(colon);
    snprintf(path, sizeof(path), "%.*s", (int)(colon - want), want);
    ck_assert_msg(xrdiff_check_path(path, why, sizeof(why)) == 0, "%s: %s", path, why);
    const char *ignore[] = {path, NULL};
    struct xrdiff_options opt = {0, ignore, 0};
    xrdiff_result_dispose(&res);
    ck_assert_msg(xrdiff_compare(&l, &c, &opt, &res) == 0, "'%s' did not ignore '%s'", path, name);
}

START_TEST(member_names_that_need_it_are_quoted)
{
    diff_name("plain_Name-1", "result.plain_Name-1: value differs");
    diff_name("prix_unitaire_\xc3\xa9t\xc3\xa9",
              "result.prix_unitaire_\xc3\xa9t\xc3\xa9: value differs");
    diff_name("a.b", "result[\"a.b\"]: value differs");
    diff_name("x[0]", "result[\"x[0]\"]: value differs");
    diff_name("say \"hi\"", "result[\"say \\\"hi\\\"\"]: value differs");
    diff_name("back\\slash", "result[\"back\\\\slash\"]: value differs");
    diff_name("tab\there\x7f", "result[\"tab\\x09here\\x7f\"]: value differs");
    diff_name("", "result[\"\"]: value differs");
    diff_name("a: b", "result[\"a: b\"]: value differs");

    /* Quoted names on the way to an array element, from XML. */
    ck_assert_int_eq(diff(RESP(STRUCT(MEMBER("a.b", ARRAY(STRUCT(MEMBER("c", INT("1"))))))),
                          RESP(STRUCT(MEMBER("a.b", ARRAY(STRUCT(MEMBER("c", INT("2")))))))),
                     1);
    expect("result[\"a.b\"][0].c: value differs", NULL);
    /* "a.b" and a.b are different paths. */
    ck_assert_int_eq(
        diff(RESP(STRUCT(MEMBER("a.b", INT("1")) MEMBER("a", STRUCT(MEMBER("b", INT("1")))))),
             RESP(STRUCT(MEMBER("a.b", INT("2")) MEMBER("a", STRUCT(MEMBER("b", INT("2"))))))),
        1);
    expect("result[\"a.b\"]: value differs", "result.a.b: value differs", NULL);

    /* Ignore paths may quote any name, and spell any byte as \xHH. */
    static const char *const ignore[] = {"result[\"a\\x2eb\"]", "result[\"a\"][\"b\"]", NULL};
    struct xrdiff_options opt = {0, ignore, 0};
    ck_assert_int_eq(
        diff_opt(RESP(STRUCT(MEMBER("a.b", INT("1")) MEMBER("a", STRUCT(MEMBER("b", INT("1")))))),
                 RESP(STRUCT(MEMBER("a.b", INT("2")) MEMBER("a", STRUCT(MEMBER("b", INT("2")))))),
                 &opt),
        0);
}
END_TEST

START_TEST(duplicate_member_names_pair_by_occurrence)
{
    const char *l = RESP(STRUCT(MEMBER("a", INT("1")) MEMBER("b", INT("0")) MEMBER("a", INT("2"))));
    ck_assert_int_eq(diff(l, l), 0);
    ck_assert_int_eq(
        diff(l, RESP(STRUCT(MEMBER("a", INT("1")) MEMBER("a", INT("2")) MEMBER("b", INT("0"))))),
        0);
    ck_assert_int_eq(
        diff(l, RESP(STRUCT(MEMBER("a", INT("2")) MEMBER("a", INT("1")) MEMBER("b", INT("0"))))),
        1);
    expect("result.a: value differs", "result.a: value differs", NULL);
    ck_assert_int_eq(diff(l, RESP(STRUCT(MEMBER("b", INT("0")) MEMBER("a", INT("1"))))), 1);
    expect("result.a: missing in candidate", NULL);
    ck_assert_int_eq(diff(RESP(STRUCT(MEMBER("a", INT("1")))), l), 1);
    /* What is left over comes in the candidate's order. */
    expect("result.b: only in candidate", "result.a: only in candidate", NULL);
}
END_TEST

/* {m00000: 0, m00001: 1, ...} with n members, in reverse order when asked. */
static struct xr_value *big_struct(size_t n, int reverse, size_t changed)
{
    struct xr_value *s = xr_value_new(arena, XR_STRUCT);
    char name[32];
    for (size_t k = 0; k < n; k++) {
        size_t i = reverse ? n - 1 - k : k;
        snprintf(name, sizeof(name), "m%05zu", i);
        xr_struct_add(arena, s, name, xr_value_new_int(arena, (int64_t)(i == changed ? i + 1 : i)));
    }
    return s;
}

START_TEST(a_struct_of_10000_members_compares_quickly)
{
    struct xr_response l, c;
    memset(&l, 0, sizeof(l));
    memset(&c, 0, sizeof(c));
    l.result = big_struct(10000, 0, 10000);
    c.result = big_struct(10000, 1, 10000);
    ck_assert_int_eq(xrdiff_compare(&l, &c, NULL, &res), 0);
    expect_equal();

    c.result = big_struct(10000, 1, 1234);
    ck_assert_int_eq(xrdiff_compare(&l, &c, NULL, &res), 1);
    expect("result.m01234: value differs", NULL);
    xrdiff_result_dispose(&res);

    /* Nested in an array, with an ignore path that goes on below them: 20
     * such structs, every member checked against it. */
    static const char *const ignore[] = {"result[].m00007.x", NULL};
    struct xrdiff_options opt = {0, ignore, 0};
    l.result = xr_value_new(arena, XR_ARRAY);
    c.result = xr_value_new(arena, XR_ARRAY);
    for (int i = 0; i < 20; i++) {
        xr_value_append(l.result, big_struct(10000, 0, 10000));
        xr_value_append(c.result, big_struct(10000, i % 2, i == 15 ? 9999 : 10000));
    }
    ck_assert_int_eq(xrdiff_compare(&l, &c, &opt, &res), 1);
    expect("result[15].m09999: value differs", NULL);
}
END_TEST

START_TEST(nesting_beyond_the_limit_is_reported_not_walked)
{
    struct xr_response l, c;
    memset(&l, 0, sizeof(l));
    memset(&c, 0, sizeof(c));
    /* [[[...[1]...]]] 300 deep on both sides, the innermost different. */
    struct xr_value *li = xr_value_new_int(arena, 1), *ci = xr_value_new_int(arena, 2);
    for (int i = 0; i < 300; i++) {
        struct xr_value *la = xr_value_new(arena, XR_ARRAY), *ca = xr_value_new(arena, XR_ARRAY);
        xr_value_append(la, li);
        xr_value_append(ca, ci);
        li = la;
        ci = ca;
    }
    l.result = li;
    c.result = ci;
    ck_assert_int_eq(xrdiff_compare(&l, &c, NULL, &res), 1);
    ck_assert_uint_eq(res.count, 1);
    char want[2048];
    size_t n = (size_t)snprintf(want, sizeof(want), "result");
    for (int i = 0; i < XRDIFF_MAX_DEPTH; i++)
        n += (size_t)snprintf(want + n, sizeof(want) - n, "[0]");
    snprintf(want + n, sizeof(want) - n, ": deeper than %d levels, not compared", XRDIFF_MAX_DEPTH);
    ck_assert_str_eq(res.paths[0], want);
}
END_TEST

START_TEST(check_path_accepts_good_paths)
{
    static const char *const good[] = {"result",
                                       "fault",
                                       "fault.faultCode",
                                       "fault.faultString",
                                       "fault[\"faultCode\"]",
                                       "result.updated_at",
                                       "result.items[].price",
                                       "result.items[2].sku",
                                       "result[0]",
                                       "result[][]",
                                       "result[\"a.b\"]",
                                       "result[\"say \\\"hi\\\"\"].x",
                                       "result[\"\"]",
                                       "result[\"a\\x20b\\x2Cc\"]",
                                       "result[\"back\\\\slash\"]",
                                       "result.\xc3\xa9t\xc3\xa9",
                                       "result.m-1_2"};
    char why[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        why[0] = '\0';
        ck_assert_msg(xrdiff_check_path(good[i], why, sizeof(why)) == 0, "'%s' refused: %s",
                      good[i], why);
    }
    ck_assert_int_eq(xrdiff_check_path("result.a", NULL, 0), 0);
}
END_TEST

START_TEST(check_path_refuses_bad_paths_with_a_reason)
{
    static const struct {
        const char *path;
        const char *why;
    } bad[] = {
        {"", "empty path"},
        {"params[0]", "'params[0]': a path starts with result or fault"},
        {"results.a", "'results.a': a path starts with result or fault"},
        {".a", "'.a': a path starts with result or fault"},
        {"result.", "'result.': expected a member name after '.' (quote others: [\"name\"]) at "
                    "offset 7"},
        {"result..a", "'result..a': expected a member name after '.' (quote others: "
                      "[\"name\"]) at offset 7"},
        {"result.a.b c", "'result.a.b c': expected '.' or '[' at offset 10"},
        {"result.a:b", "'result.a:b': expected '.' or '[' at offset 8"},
        {"result[", "'result[': expected ']', an index or a quoted name after '[' at offset 7"},
        {"result[x]", "'result[x]': expected ']', an index or a quoted name after '[' at offset 7"},
        {"result[1", "'result[1': expected ']' at offset 8"},
        {"result[-1]", "'result[-1]': expected ']', an index or a quoted name after '[' at offset "
                       "7"},
        {"result[99999999999999999999999]", "'result[99999999999999999999999]': index too large "
                                            "at offset 26"},
        {"result[\"a", "'result[\"a': unterminated quoted name at offset 9"},
        {"result[\"a\"", "'result[\"a\"': expected ']' at offset 10"},
        {"result[\"a\\n\"]", "'result[\"a\\n\"]': unknown escape (use \\\", \\\\ or \\xHH) at "
                             "offset 9"},
        {"result[\"a\\x4\"]", "'result[\"a\\x4\"]': unknown escape (use \\\", \\\\ or \\xHH) at "
                              "offset 9"},
        {"fault.code", "'fault.code': a fault's paths are fault, fault.faultCode and "
                       "fault.faultString"},
        {"fault[0]", "'fault[0]': a fault's paths are fault, fault.faultCode and "
                     "fault.faultString"},
        {"fault.faultCode.x", "'fault.faultCode.x': a fault's paths are fault, fault.faultCode "
                              "and fault.faultString"},
    };
    char why[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(why, 0, sizeof(why));
        ck_assert_msg(xrdiff_check_path(bad[i].path, why, sizeof(why)) == -1, "'%s' accepted",
                      bad[i].path);
        ck_assert_str_eq(why, bad[i].why);
    }
    /* The reason is cut to fit, and NULL/0 is allowed. */
    char small[8];
    ck_assert_int_eq(xrdiff_check_path("result..", small, sizeof(small)), -1);
    ck_assert_uint_eq(strlen(small), 7);
    ck_assert_int_eq(xrdiff_check_path("result..", NULL, 0), -1);
}
END_TEST

START_TEST(dispose_empties_and_may_repeat)
{
    diff(RESP(INT("1")), RESP(INT("2")));
    ck_assert_uint_eq(res.npaths, 1);
    xrdiff_result_dispose(&res);
    ck_assert_ptr_null(res.paths);
    ck_assert_uint_eq(res.npaths, 0);
    ck_assert_uint_eq(res.count, 0);
    xrdiff_result_dispose(&res);
    xrdiff_result_dispose(NULL);
}
END_TEST

Suite *xrdiff_suite(void)
{
    Suite *s = suite_create("xrdiff");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reordered_struct_members_are_equal);
    tcase_add_test(tc, int_i4_and_i8_are_one_integer_type);
    tcase_add_test(tc, string_and_untyped_value_are_one_type);
    tcase_add_test(tc, a_deep_change_is_named_by_its_exact_path);
    tcase_add_test(tc, missing_and_extra_members_are_named);
    tcase_add_test(tc, array_length_is_one_entry_plus_the_common_elements);
    tcase_add_test(tc, a_type_difference_is_named_with_both_types);
    tcase_add_test(tc, a_missing_result_value_is_type_none);
    tcase_add_test(tc, doubles_compare_within_the_tolerance);
    tcase_add_test(tc, negative_zero_equals_zero);
    tcase_add_test(tc, nan_and_infinities);
    tcase_add_test(tc, ignore_paths_exact_and_any_index);
    tcase_add_test(tc, an_ignore_path_leaves_out_its_whole_subtree);
    tcase_add_test(tc, a_result_against_a_fault_is_one_root_difference);
    tcase_add_test(tc, two_faults_compare_code_and_string);
    tcase_add_test(tc, base64_compares_bytes_and_datetime_its_text);
    tcase_add_test(tc, max_paths_caps_collection_but_not_counting);
    tcase_add_test(tc, member_names_that_need_it_are_quoted);
    tcase_add_test(tc, duplicate_member_names_pair_by_occurrence);
    tcase_add_test(tc, a_struct_of_10000_members_compares_quickly);
    tcase_add_test(tc, nesting_beyond_the_limit_is_reported_not_walked);
    tcase_add_test(tc, check_path_accepts_good_paths);
    tcase_add_test(tc, check_path_refuses_bad_paths_with_a_reason);
    tcase_add_test(tc, dispose_empties_and_may_repeat);
    suite_add_tcase(s, tc);
    return s;
}
