#include "unit.h"
#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/restmap.h"
#include "legacy-adapters/xmlrpc.h"

#include <stdio.h>
#include <string.h>

static struct arena *arena;
static struct restmap *map;
static struct xr_value *params;
static struct buf out;
static struct xr_error err;

static void setup(void)
{
    xr_init();
    arena = arena_new(0);
    map = NULL;
    params = NULL;
    out = (struct buf)BUF_INIT;
    memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
    restmap_free(map);
    buf_dispose(&out);
    arena_free(arena);
    xr_cleanup();
}

static void given_map(const char *spec)
{
    char why[256] = "";
    restmap_free(map);
    map = NULL;
    ck_assert_msg(restmap_parse(spec, &map, why, sizeof(why)) == 0, "%s: %s", spec, why);
    ck_assert_ptr_nonnull(map);
}

/* The call's parameters, from the <param> elements of an XML-RPC call. */
static void given_params(const char *xml)
{
    struct buf call = BUF_INIT;
    struct xr_call parsed;
    buf_appendf(&call,
                "<?xml version=\"1.0\"?><methodCall><methodName>m</methodName><params>%s"
                "</params></methodCall>",
                xml);
    int rc = xr_parse_call(arena, call.data, call.len, NULL, XR_PARSE_FULL, &parsed, &err);
    buf_dispose(&call);
    ck_assert_msg(rc == 0, "%s", err.message);
    params = parsed.params;
}

static const char *target(const char *base_path)
{
    out.len = 0;
    int rc = restmap_write_target(map, base_path, params, &out, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    return buf_cstr(&out);
}

static const char *body(void)
{
    out.len = 0;
    int rc = restmap_write_body(map, params, &out, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
    return buf_cstr(&out);
}

static void expect_target_refused(const char *message)
{
    out.len = 0;
    ck_assert_int_eq(restmap_write_target(map, "/api", params, &out, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_INVALID_PARAMS);
    ck_assert_str_eq(err.message, message);
}

static void expect_body_refused(const char *message)
{
    out.len = 0;
    ck_assert_int_eq(restmap_write_body(map, params, &out, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_INVALID_PARAMS);
    ck_assert_str_eq(err.message, message);
}

#define P(type, text) "<param><value><" type ">" text "</" type "></value></param>"

/* ------------------------------------------------------------------------ */

START_TEST(parses_each_method_and_placeholders_anywhere)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    char spec[64];

    given_params(P("string", "a") P("string", "b"));
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        snprintf(spec, sizeof(spec), "%s:/x/{1}?y={2}", methods[i]);
        given_map(spec);
        ck_assert_str_eq(restmap_method(map), methods[i]);
        ck_assert_str_eq(target(""), "/x/a?y=b");
    }
    given_map("GET:/");
    given_params("");
    ck_assert_str_eq(target("/svc"), "/svc/");
    /* Every character RFC 3986 allows in a path and a query, as it is. */
    given_map("POST:/a-._~!$&'()*+,;=:@/%2F%c3%A9?q=/?{1}&{1}x{2}");
    given_params(P("int", "1") P("int", "2"));
    ck_assert_str_eq(target(""), "/a-._~!$&'()*+,;=:@/%2F%c3%A9?q=/?1&1x2");
    given_map("PUT:/{64}");
    ck_assert_str_eq(restmap_method(map), "PUT");
}
END_TEST

START_TEST(refuses_bad_specs_naming_the_problem)
{
    static const struct {
        const char *spec, *message;
    } cases[] = {
        {"GET:/stock/{x}", "'{x}' is not a parameter number (expected {1} to {64})"},
        {"GET:/stock/{0}", "'{0}' is not a parameter number (expected {1} to {64})"},
        {"GET:/stock/{65}", "'{65}' is not a parameter number (expected {1} to {64})"},
        {"GET:/stock/{01}", "'{01}' is not a parameter number (expected {1} to {64})"},
        {"GET:/stock/{}", "'{}' is not a parameter number (expected {1} to {64})"},
        {"GET:/stock/{-1}", "'{-1}' is not a parameter number (expected {1} to {64})"},
        {"GET:/stock/{100}", "'{100}' is not a parameter number (expected {1} to {64})"},
        {"FETCH:/stock/{1}", "unknown method 'FETCH' (expected GET, POST, PUT, PATCH or DELETE)"},
        {"get:/stock/{1}", "unknown method 'get' (expected GET, POST, PUT, PATCH or DELETE)"},
        {":/stock", "unknown method '' (expected GET, POST, PUT, PATCH or DELETE)"},
        {"GET", "expected METHOD:TEMPLATE, e.g. GET:/stock/{1}"},
        {"", "expected METHOD:TEMPLATE, e.g. GET:/stock/{1}"},
        {"GET:stock/{1}", "the template must start with '/'"},
        {"GET:", "the template must start with '/'"},
        {"GET:/stock/{1", "unbalanced '{'"},
        {"GET:/stock/{1{2}", "unbalanced '{'"},
        {"GET:/stock/{", "unbalanced '{'"},
        {"GET:/stock/1}", "unbalanced '}'"},
        {"GET:/stock/}{1}", "unbalanced '}'"},
        {"GET:/stock/{1}#top", "'#' cannot appear in a URL path or query"},
        {"GET:/a|b", "'|' cannot appear in a URL path or query"},
        {"GET:/a\"b", "'\"' cannot appear in a URL path or query"},
        {"GET:/a[1]", "'[' cannot appear in a URL path or query"},
        {"GET:/a b",
         "the template cannot hold blanks, control characters or non-ASCII bytes (percent-encode "
         "them)"},
        {"GET:/a\tb",
         "the template cannot hold blanks, control characters or non-ASCII bytes (percent-encode "
         "them)"},
        {"GET:/\xc3\xa9",
         "the template cannot hold blanks, control characters or non-ASCII bytes (percent-encode "
         "them)"},
        {"GET:/a%2", "'%' must start a percent-encoding such as %2F"},
        {"GET:/a%zz", "'%' must start a percent-encoding such as %2F"},
        {"GET:/stock/{2}",
         "GET sends no body, so the template must use every parameter from {1} to {2}; {1} is "
         "missing"},
        {"DELETE:/a/{1}/{3}",
         "DELETE sends no body, so the template must use every parameter from {1} to {3}; {2} is "
         "missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char why[256] = "untouched";
        struct restmap *m = (struct restmap *)&why; /* set only on success */
        ck_assert_msg(restmap_parse(cases[i].spec, &m, why, sizeof(why)) == -1, "accepted %s",
                      cases[i].spec);
        ck_assert_ptr_eq(m, (struct restmap *)&why);
        ck_assert_str_eq(why, cases[i].message);
    }
    /* Bodies may take what the template leaves, so gaps are fine there. */
    given_map("PUT:/stock/{2}");
    /* A short buffer gets a cut message, never an overrun. */
    char tiny[8];
    struct restmap *m = NULL;
    ck_assert_int_eq(restmap_parse("FETCH:/", &m, tiny, sizeof(tiny)), -1);
    ck_assert_str_eq(tiny, "unknown");
    restmap_free(NULL);
}
END_TEST

START_TEST(placeholders_are_percent_encoded_scalars)
{
    given_map("GET:/stock/{1}/{2}/{3}/{4}/{5}/{6}?at={7}&n={8}");
    given_params(P("string", "a b/c?d#e%f\xc3\xa9~_-.Z9") P("int", "-42") P("boolean", "1")
                     P("boolean", "0") P("double", "0.1") P("double", "1e300")
                         P("dateTime.iso8601", "20260101T10:11:12") P("i8", "9007199254740993"));
    ck_assert_str_eq(target("/api"), "/api/stock/a%20b%2Fc%3Fd%23e%25f%C3%A9~_-.Z9/-42/true/false/"
                                     "0.1/1e%2B300?at=20260101T10%3A11%3A12&n="
                                     "9007199254740993");
    given_params(P("string", "x") P("double", "24") P("double", "-0.0") P("int", "0")
                     P("string", "y") P("string", "&amp;=?") P("string", "") P("string", ""));
    ck_assert_str_eq(target(""), "/stock/x/24.0/-0.0/0/y/%26%3D%3F?at=&n=");
}
END_TEST

START_TEST(targets_join_the_base_path_with_one_slash)
{
    static const struct {
        const char *base, *target;
    } cases[] = {
        {"/rpc", "/rpc/stock/A?w=1"}, {"/rpc/", "/rpc/stock/A?w=1"}, {"", "/stock/A?w=1"},
        {NULL, "/stock/A?w=1"},       {"/", "/stock/A?w=1"},         {"//", "/stock/A?w=1"},
        {"rpc", "/rpc/stock/A?w=1"},  {"/a/b", "/a/b/stock/A?w=1"},
    };
    given_map("GET:/stock/{1}?w={2}");
    given_params(P("string", "A") P("int", "1"));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_str_eq(target(cases[i].base), cases[i].target);
}
END_TEST

/* Calls whose target cannot be written: {map, <param>s, message}. */
struct refusal {
    const char *map, *params, *message;
};

static void expect_refusals(const struct refusal *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        given_map(cases[i].map);
        given_params(cases[i].params);
        expect_target_refused(cases[i].message);
    }
}

#define SCALARS_ONLY "; only strings, numbers, booleans and dates go into a path"
#define NOT_FINITE   " is a double that is not finite (NaN or infinity)"

START_TEST(what_cannot_go_into_a_target_is_refused)
{
    static const struct refusal cases[] = {
        {"GET:/stock/{1}",
         "<param><value><struct><member><name>a</name><value><int>1</int></value></member>"
         "</struct></value></param>",
         "map: parameter 1 is a struct" SCALARS_ONLY},
        {"GET:/stock/{1}", "<param><value><array><data></data></array></value></param>",
         "map: parameter 1 is an array" SCALARS_ONLY},
        {"GET:/stock/{1}", "<param><value><nil/></value></param>",
         "map: parameter 1 is nil" SCALARS_ONLY},
        {"POST:/stock?at={2}", P("int", "1") P("base64", "AP8="),
         "map: parameter 2 is base64" SCALARS_ONLY},
        {"GET:/stock/{1}", P("double", "nan"), "map: parameter 1" NOT_FINITE},
        {"GET:/stock/{1}", P("double", "-inf"), "map: parameter 1" NOT_FINITE},
        {"POST:/stock/{3}?w={5}", "", "map: the call has 0 parameters, the template uses {5}"},
        {"POST:/stock/{3}?w={5}", P("int", "1"),
         "map: the call has 1 parameter, the template uses {5}"},
        {"POST:/stock/{3}?w={5}", P("int", "1") P("int", "2") P("int", "3") P("int", "4"),
         "map: the call has 4 parameters, the template uses {5}"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}
END_TEST

#define SEGMENT                                                                                    \
    "; an empty, '.' or '..' segment (or one hidden behind an encoded slash) would address "       \
    "another resource"

START_TEST(parameters_cannot_make_another_path)
{
    static const struct refusal cases[] = {
        {"DELETE:/stock/{1}", P("string", ".."),
         "map: parameter 1 makes the path segment '..'" SEGMENT},
        {"DELETE:/stock/{1}", P("string", "."),
         "map: parameter 1 makes the path segment '.'" SEGMENT},
        {"DELETE:/stock/{1}", P("string", ""),
         "map: parameter 1 makes the path segment ''" SEGMENT},
        /* Two placeholders can make one: the last one is named. */
        {"GET:/a/{1}{2}/b?q={3}", P("string", ".") P("string", ".") P("string", ""),
         "map: parameter 2 makes the path segment '..'" SEGMENT},
        {"GET:/a/{1}{2}/b?q={3}", P("string", "") P("string", "") P("string", ""),
         "map: parameter 2 makes the path segment ''" SEGMENT},
        {"GET:/a/v{1}/.{2}", P("string", "") P("string", "."),
         "map: parameter 2 makes the path segment '..'" SEGMENT},
        {"GET:/a/{1}?{2}", P("string", "..") P("string", "."),
         "map: parameter 1 makes the path segment '..'" SEGMENT},
        /* Issue 4 review: a service that decodes %2F before it normalises
         * would see ../admin. */
        {"GET:/stock/{1}", P("string", "../admin"),
         "map: parameter 1 makes the path segment '..%2Fadmin'" SEGMENT},
        {"GET:/stock/{1}", P("string", "a\\..\\b"),
         "map: parameter 1 makes the path segment 'a%5C..%5Cb'" SEGMENT},
        {"GET:/stock/{1}", P("string", "x/."),
         "map: parameter 1 makes the path segment 'x%2F.'" SEGMENT},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));

    /* Dots among other characters, dots in the query, and literal text
     * around a placeholder are all fine. */
    given_map("GET:/a/{1}{2}/b?q={3}");
    given_params(P("string", "...") P("string", "x") P("string", ".."));
    ck_assert_str_eq(target(""), "/a/...x/b?q=..");
    given_map("GET:/a/v{1}/.{2}");
    given_params(P("string", "") P("string", "x"));
    ck_assert_str_eq(target(""), "/a/v/.x");
    /* A slash inside a value is data, as long as no piece is a dot-segment. */
    given_map("GET:/stock/{1}");
    given_params(P("string", "bolt 6mm/a..b/.c"));
    ck_assert_str_eq(target(""), "/stock/bolt%206mm%2Fa..b%2F.c");
}
END_TEST

#define DELTA                                                                                      \
    "<param><value><struct><member><name>delta</name><value><int>-2</int></value></member>"        \
    "</struct></value></param>"

START_TEST(bodies_hold_the_parameters_the_template_leaves)
{
    /* GET and DELETE: everything is in the target. */
    given_map("GET:/stock/{1}");
    given_params(P("string", "A"));
    ck_assert_str_eq(body(), "");
    given_map("DELETE:/x");
    given_params("");
    ck_assert_str_eq(body(), "");

    /* POST, PUT, PATCH: nothing, one value, an array of several. */
    given_map("PUT:/stock/{1}");
    given_params(P("string", "A"));
    ck_assert_str_eq(body(), "");
    given_params(P("string", "A") DELTA);
    ck_assert_str_eq(body(), "{\"delta\":-2}");
    given_map("PATCH:/stock/{2}");
    given_params(P("double", "1.5") P("string", "A"));
    ck_assert_str_eq(body(), "1.5");
    given_map("POST:/stock/{2}");
    given_params(P("int", "7") P("string", "A") DELTA "<param><value><nil/></value></param>");
    ck_assert_str_eq(body(), "[7,{\"delta\":-2},null]");
    given_map("POST:/orders");
    given_params(P("base64", "AP8=") P("dateTime.iso8601", "20260101T00:00:00"));
    ck_assert_str_eq(body(), "[{\"$base64\":\"AP8=\"},{\"$datetime\":\"20260101T00:00:00\"}]");
    given_params("<param><value><array><data></data></array></value></param>");
    ck_assert_str_eq(body(), "[]");
}
END_TEST

START_TEST(bodies_that_cannot_be_sent_are_refused)
{
    given_map("GET:/stock/{1}");
    given_params(P("string", "A") P("int", "2") P("int", "3"));
    expect_body_refused("map: GET takes 1 parameter (all in its template), the call has 3");
    given_map("DELETE:/stock");
    given_params(P("string", "A"));
    expect_body_refused("map: DELETE takes 0 parameters (all in its template), the call has 1");
    given_map("GET:/a/{1}/{2}");
    given_params(P("string", "A") P("int", "2") P("int", "3"));
    expect_body_refused("map: GET takes 2 parameters (all in its template), the call has 3");

    /* The value's place in the call names it, as in the RPC contract. */
    given_map("PUT:/stock/{1}");
    given_params(P("string", "A") "<param><value><struct><member><name>price</name><value>"
                                  "<double>nan</double></value></member></struct></value></param>");
    expect_body_refused("params[1].price: NaN has no JSON form");
    given_map("POST:/x/{2}");
    given_params(P("int", "1") P("int", "2") P("double", "inf"));
    expect_body_refused("params[2]: Infinity has no JSON form");
}
END_TEST

Suite *restmap_suite(void)
{
    Suite *s = suite_create("restmap");
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, parses_each_method_and_placeholders_anywhere);
    tcase_add_test(tc, refuses_bad_specs_naming_the_problem);
    suite_add_tcase(s, tc);

    tc = tcase_create("target");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, placeholders_are_percent_encoded_scalars);
    tcase_add_test(tc, targets_join_the_base_path_with_one_slash);
    tcase_add_test(tc, what_cannot_go_into_a_target_is_refused);
    tcase_add_test(tc, parameters_cannot_make_another_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("body");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bodies_hold_the_parameters_the_template_leaves);
    tcase_add_test(tc, bodies_that_cannot_be_sent_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
