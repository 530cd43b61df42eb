/*
 * redact.c: parsing redact=... (each reason word for word), what a path
 * matches (any depth, arrays transparent, unbroken chains, exact names),
 * what a redacted copy shares with and leaves of the original, and the
 * events interceptor writing redacted events into a real spool.
 *
 * Values are written as JSON and rendered back to JSON (xrjson.h), so each
 * expectation reads as the event would show it.
 */
#include "unit.h"
#include "scratch.h"
#include "interceptors/intercept.h"
#include "interceptors/redact.h"
#include "interceptors/spool.h"
#include "legacy-adapters/xrjson.h"

#include <json-c/json.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Each test gets a fresh arena for its values and for the copies. */
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

/* The value the JSON text stands for, in the test's arena. */
static struct xr_value *val(const char *json)
{
    struct xr_value *v = NULL;
    struct xr_error err = {0};
    ck_assert_msg(xrjson_parse(arena, json, strlen(json), NULL, &v, &err) == 0, "%s: %s", json,
                  err.message);
    return v;
}

/* v as compact JSON, in the arena so a test may compare several. */
static const char *json_of(const struct xr_value *v)
{
    struct buf b = BUF_INIT;
    struct xr_error err = {0};
    ck_assert_int_eq(xrjson_write_value(&b, v, "v", &err), 0);
    char *s = arena_strndup(arena, b.data, b.len);
    buf_dispose(&b);
    return s;
}

static struct redact *parse_ok(const char *list)
{
    struct redact *r = NULL;
    char why[128] = "";
    ck_assert_msg(redact_parse(list, &r, why, sizeof(why)) == 0, "'%s': %s", list, why);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Parses `list` into a redact, applies it to the JSON value `in` and
 * checks the result's JSON, and that the original still reads as `in`. */
static void expect_redacted(const char *list, const char *in, const char *expected)
{
    struct redact *r = parse_ok(list);
    const struct xr_value *v = val(in);
    const char *before = json_of(v);
    const struct xr_value *out = redact_value(r, v, arena);
    ck_assert_str_eq(json_of(out), expected);
    ck_assert_str_eq(json_of(v), before);
    redact_free(r);
}

/* ---- parsing ---- */

static void expect_parse_error(const char *list, const char *reason)
{
    static char somewhere;
    struct redact *sentinel = (struct redact *)(void *)&somewhere;
    struct redact *r = sentinel;
    char why[128] = "";
    ck_assert_int_eq(redact_parse(list, &r, why, sizeof(why)), -1);
    ck_assert_str_eq(why, reason);
    ck_assert_ptr_eq(r, sentinel); /* out-parameters are set only on success */
}

START_TEST(parse_accepts_names_and_dotted_paths)
{
    static const char *const good[] = {"password",  "card.number",       "password,card.number",
                                       "a.b.c.d,x", "password,password", "Sé cret"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        redact_free(parse_ok(good[i]));
    redact_free(NULL);
}
END_TEST

START_TEST(parse_refuses_empty_paths)
{
    expect_parse_error("a,,b", "empty path in 'a,,b'");
    expect_parse_error("", "empty path in ''");
    expect_parse_error(",", "empty path in ','");
    expect_parse_error("password,", "empty path in 'password,'");
    expect_parse_error(",password", "empty path in ',password'");
}
END_TEST

START_TEST(parse_refuses_empty_member_names)
{
    expect_parse_error("card..number", "empty member name in 'card..number'");
    expect_parse_error(".number", "empty member name in '.number'");
    expect_parse_error("card.", "empty member name in 'card.'");
    expect_parse_error(".", "empty member name in '.'");
    /* The path at fault is quoted, not the whole list. */
    expect_parse_error("password,card..number,pin", "empty member name in 'card..number'");
}
END_TEST

START_TEST(parse_reason_fits_its_buffer)
{
    struct redact *r = NULL;
    char why[8];
    memset(why, 'x', sizeof(why));
    ck_assert_int_eq(redact_parse("a,,b", &r, why, sizeof(why)), -1);
    ck_assert_str_eq(why, "empty p");
    ck_assert_int_eq(redact_parse("a..b", &r, why, 0), -1); /* writes nothing */
    ck_assert_str_eq(why, "empty p");
    ck_assert_ptr_null(r);
}
END_TEST

/* ---- matching ---- */

START_TEST(top_level_member_is_redacted)
{
    expect_redacted("password", "[{\"user\":\"bob\",\"password\":\"hunter2\"}]",
                    "[{\"user\":\"bob\",\"password\":\"[redacted]\"}]");
    expect_redacted("password", "{\"password\":\"hunter2\"}", "{\"password\":\"[redacted]\"}");
}
END_TEST

START_TEST(single_name_matches_at_any_depth)
{
    expect_redacted("password",
                    "[{\"a\":{\"b\":[[{\"password\":1}]],\"password\":2}},\"password\"]",
                    "[{\"a\":{\"b\":[[{\"password\":\"[redacted]\"}]],"
                    "\"password\":\"[redacted]\"}},\"password\"]");
}
END_TEST

START_TEST(dotted_path_matches_at_several_depths)
{
    /* params[0].card.number and params[1].order.card.number */
    expect_redacted("card.number",
                    "[{\"card\":{\"number\":\"4111\",\"exp\":\"12/30\"}},"
                    "{\"order\":{\"card\":{\"number\":\"5500\"}}}]",
                    "[{\"card\":{\"number\":\"[redacted]\",\"exp\":\"12/30\"}},"
                    "{\"order\":{\"card\":{\"number\":\"[redacted]\"}}}]");
    /* result.customers[i].card.number: arrays of structs are walked */
    expect_redacted("card.number",
                    "{\"customers\":[{\"id\":1,\"card\":{\"number\":\"4111\"}},"
                    "{\"id\":2},{\"id\":3,\"card\":{\"number\":\"5500\"}}]}",
                    "{\"customers\":[{\"id\":1,\"card\":{\"number\":\"[redacted]\"}},"
                    "{\"id\":2},{\"id\":3,\"card\":{\"number\":\"[redacted]\"}}]}");
}
END_TEST

START_TEST(arrays_between_path_members_are_transparent)
{
    expect_redacted("card.number", "{\"card\":[{\"number\":1},[{\"number\":2}],{\"cvv\":3}]}",
                    "{\"card\":[{\"number\":\"[redacted]\"},[{\"number\":\"[redacted]\"}],"
                    "{\"cvv\":3}]}");
}
END_TEST

START_TEST(dotted_path_needs_the_whole_chain)
{
    const char *in = "[{\"number\":1,\"cart\":{\"number\":2},\"card\":{\"details\":{\"number\":3}},"
                     "\"order\":{\"number\":4,\"Card\":{\"number\":5}}},\"card\",\"number\"]";
    struct redact *r = parse_ok("card.number");
    const struct xr_value *v = val(in);
    ck_assert_ptr_eq(redact_value(r, v, arena), v);
    redact_free(r);
    /* Longer than any chain in the value. */
    r = parse_ok("x.card.number");
    v = val("{\"card\":{\"number\":1}}");
    ck_assert_ptr_eq(redact_value(r, v, arena), v);
    redact_free(r);
}
END_TEST

START_TEST(names_compare_exactly)
{
    expect_redacted("password",
                    "{\"Password\":1,\"PASSWORD\":2,\"password \":3,\"passwor\":4,\"password\":5}",
                    "{\"Password\":1,\"PASSWORD\":2,\"password \":3,\"passwor\":4,"
                    "\"password\":\"[redacted]\"}");
}
END_TEST

START_TEST(container_member_is_replaced_whole)
{
    expect_redacted("card", "[{\"card\":{\"number\":\"4111\",\"exp\":\"12/30\"},\"n\":1}]",
                    "[{\"card\":\"[redacted]\",\"n\":1}]");
    expect_redacted("cards", "{\"cards\":[{\"number\":\"4111\"}],\"n\":1}",
                    "{\"cards\":\"[redacted]\",\"n\":1}");
    /* The first match wins: nothing below it is walked any more. */
    expect_redacted("a.a", "{\"a\":{\"a\":{\"a\":{\"a\":1}},\"b\":2}}",
                    "{\"a\":{\"a\":\"[redacted]\",\"b\":2}}");
}
END_TEST

START_TEST(several_paths_apply_together)
{
    expect_redacted(
        "password,card.number,pin",
        "[\"bob\",{\"password\":\"p\",\"card\":{\"number\":\"4111\",\"pin\":\"1234\"}}]",
        "[\"bob\",{\"password\":\"[redacted]\",\"card\":{\"number\":\"[redacted]\","
        "\"pin\":\"[redacted]\"}}]");
}
END_TEST

START_TEST(no_match_returns_the_value_itself)
{
    struct redact *r = parse_ok("password,card.number");
    const struct xr_value *v =
        val("[{\"user\":\"bob\",\"number\":1,\"list\":[1,{\"x\":[]}]},7,{}]");
    size_t used = arena_used(arena);
    ck_assert_ptr_eq(redact_value(r, v, arena), v);
    ck_assert_uint_eq(arena_used(arena), used); /* nothing allocated either */
    const struct xr_value *scalar = val("\"password\"");
    ck_assert_ptr_eq(redact_value(r, scalar, arena), scalar);
    ck_assert_ptr_null(redact_value(r, NULL, arena));
    ck_assert_ptr_eq(redact_value(NULL, v, arena), v);
    redact_free(r);
}
END_TEST

/* Looks member `name` up, failing the test when it is missing. */
static const struct xr_value *get(const struct xr_value *s, const char *name)
{
    const struct xr_value *m = xr_struct_get(s, name);
    ck_assert_msg(m != NULL, "no member %s", name);
    return m;
}

START_TEST(copy_keeps_siblings_in_order_and_shares_them)
{
    struct redact *r = parse_ok("password");
    const struct xr_value *v =
        val("[{\"user\":\"bob\",\"password\":\"p\",\"prefs\":{\"lang\":\"fr\"},\"tags\":[1,2]},"
            "{\"other\":true}]");
    const struct xr_value *out = redact_value(r, v, arena);
    ck_assert_ptr_ne(out, v);
    ck_assert_int_eq(out->type, XR_ARRAY);
    ck_assert_uint_eq(out->u.list.count, 2);

    const struct xr_value *in0 = v->u.list.first, *out0 = out->u.list.first;
    static const char *const names[] = {"user", "password", "prefs", "tags"};
    const struct xr_value *m = out0->u.list.first;
    ck_assert_uint_eq(out0->u.list.count, 4);
    for (size_t i = 0; i < 4; i++, m = m->next) {
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m->name, names[i]);
        ck_assert_uint_eq(m->name_len, strlen(names[i]));
    }
    ck_assert_ptr_null(m);
    ck_assert_ptr_eq(out0->u.list.last, xr_struct_get(out0, "tags"));
    ck_assert_int_eq(get(out0, "password")->type, XR_STRING);
    ck_assert_str_eq(get(out0, "password")->u.str.ptr, REDACT_PLACEHOLDER);
    ck_assert_uint_eq(get(out0, "password")->u.str.len, strlen(REDACT_PLACEHOLDER));
    /* Unchanged subtrees are shared, not copied. */
    ck_assert_ptr_eq(get(out0, "prefs")->u.list.first, get(in0, "prefs")->u.list.first);
    ck_assert_ptr_eq(get(out0, "tags")->u.list.first, get(in0, "tags")->u.list.first);
    ck_assert_ptr_eq(out0->next->u.list.first, in0->next->u.list.first);
    redact_free(r);
}
END_TEST

START_TEST(original_tree_is_not_modified)
{
    struct redact *r = parse_ok("password,card.number");
    const char *in =
        "[{\"password\":\"p\",\"card\":{\"number\":\"4111\"},\"z\":[{\"password\":1}]}]";
    const struct xr_value *v = val(in);
    const struct xr_value *first = v->u.list.first;
    const struct xr_value *members[4];
    size_t n = 0;
    for (const struct xr_value *m = first->u.list.first; m != NULL; m = m->next)
        members[n++] = m;
    ck_assert_uint_eq(n, 3);

    const struct xr_value *out = redact_value(r, v, arena);
    ck_assert_ptr_ne(out, v);
    ck_assert_str_eq(json_of(v), in);
    /* The same nodes, linked the same way. */
    ck_assert_ptr_eq(v->u.list.first, first);
    ck_assert_ptr_null(first->next);
    ck_assert_ptr_eq(first->u.list.first, members[0]);
    ck_assert_ptr_eq(members[0]->next, members[1]);
    ck_assert_ptr_eq(members[1]->next, members[2]);
    ck_assert_ptr_null(members[2]->next);
    ck_assert_ptr_eq(first->u.list.last, members[2]);
    ck_assert_str_eq(members[0]->u.str.ptr, "p");
    redact_free(r);
}
END_TEST

/* ---- the events interceptor ---- */

static void make_root(void)
{
    scratch_root_make("redact");
}

static struct {
    char dir[PATH_MAX];
    struct spool *spool;
    struct interceptor *ic;
} fx;

static void open_spool(void)
{
    char err[256];
    scratch_dir("t", fx.dir, sizeof(fx.dir));
    fx.spool = spool_open(fx.dir, NULL, err, sizeof(err));
    ck_assert_msg(fx.spool != NULL, "%s", err);
    fx.ic = interceptor_events_new(fx.spool, "urn:strangler:test");
}

static void close_spool(void)
{
    interceptor_free(fx.ic);
    spool_close(fx.spool);
    memset(&fx, 0, sizeof(fx));
}

#define SECRET_PASSWORD "hunter2-secret"
#define SECRET_CARD     "4111111111111111"
#define SECRET_CARD_2   "5500005555555559"

static const char *const LOGIN_PARAMS =
    "[\"bob\",{\"password\":\"" SECRET_PASSWORD "\",\"card\":{\"number\":\"" SECRET_CARD "\","
    "\"exp\":\"12/30\"}}]";
static const char *const LOGIN_RESULT = "{\"ok\":true,\"customers\":[{\"name\":\"Ann\",\"card\":"
                                        "{\"number\":\"" SECRET_CARD_2 "\"}}]}";

/* The spooled event `seq`, parsed; its body text goes to *body. */
static json_object *spooled(uint64_t seq, char **body)
{
    struct spool_cursor *c = spool_cursor_new(fx.spool, seq - 1);
    struct spool_event ev;
    ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
    ck_assert_uint_eq(ev.seq, seq);
    *body = arena_strndup(arena, ev.body, ev.body_len);
    spool_cursor_free(c);
    json_object *o = json_tokener_parse(*body);
    ck_assert_msg(o != NULL, "not JSON: %s", *body);
    return o;
}

/* The string at a path of object keys and array indexes ("#0"). */
static const char *str_at(json_object *o, const char *const *path, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (path[i][0] == '#') {
            ck_assert(json_object_is_type(o, json_type_array));
            o = json_object_array_get_idx(o, (size_t)(path[i][1] - '0'));
        } else {
            ck_assert_msg(json_object_object_get_ex(o, path[i], &o), "no %s", path[i]);
        }
        ck_assert_msg(o != NULL, "nothing at %s", path[i]);
    }
    ck_assert(json_object_is_type(o, json_type_string));
    return json_object_get_string(o);
}

#define STR_AT(o, ...)                                                                             \
    str_at((o), (const char *const[]){__VA_ARGS__},                                                \
           sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

START_TEST(event_is_written_redacted)
{
    struct redact *r = parse_ok("password,card.number");
    struct xr_response resp = {0, val(LOGIN_RESULT), 0, NULL, 0};
    struct event_exchange x = {
        .method = "user.login",
        .params = val(LOGIN_PARAMS),
        .response = &resp,
        .route = "login",
        .upstream = "legacy",
        .status = 200,
        .duration_ms = 1.0,
        .request_id = "req-1",
    };
    struct intercept_rule plain = {NULL, NULL, 0, NULL};
    struct intercept_rule redacting = {NULL, NULL, 0, r};
    char *body = NULL;

    /* Without redact the secrets are there: the check below means something. */
    ck_assert_int_eq(interceptor_record(fx.ic, &plain, &x), 0);
    json_object *o = spooled(1, &body);
    ck_assert_ptr_nonnull(strstr(body, SECRET_PASSWORD));
    ck_assert_ptr_nonnull(strstr(body, SECRET_CARD));
    ck_assert_ptr_nonnull(strstr(body, SECRET_CARD_2));
    json_object_put(o);

    ck_assert_int_eq(interceptor_record(fx.ic, &redacting, &x), 0);
    o = spooled(2, &body);
    ck_assert_ptr_null(strstr(body, SECRET_PASSWORD));
    ck_assert_ptr_null(strstr(body, SECRET_CARD));
    ck_assert_ptr_null(strstr(body, SECRET_CARD_2));
    ck_assert_str_eq(STR_AT(o, "data", "params", "#1", "password"), "[redacted]");
    ck_assert_str_eq(STR_AT(o, "data", "params", "#1", "card", "number"), "[redacted]");
    ck_assert_str_eq(STR_AT(o, "data", "params", "#1", "card", "exp"), "12/30");
    ck_assert_str_eq(STR_AT(o, "data", "params", "#0"), "bob");
    ck_assert_str_eq(STR_AT(o, "data", "result", "customers", "#0", "card", "number"),
                     "[redacted]");
    ck_assert_str_eq(STR_AT(o, "data", "result", "customers", "#0", "name"), "Ann");
    ck_assert_str_eq(STR_AT(o, "data", "method"), "user.login");
    json_object_put(o);

    /* The exchange itself, which the client and upstream see, is intact. */
    ck_assert_str_eq(json_of(x.params), LOGIN_PARAMS);
    ck_assert_str_eq(json_of(resp.result), LOGIN_RESULT);
    redact_free(r);
}
END_TEST

START_TEST(fault_string_is_not_redacted)
{
    struct redact *r = parse_ok("password");
    struct xr_response fault = {1, NULL, -32500, "bad password for bob", 20};
    struct event_exchange x = {
        .method = "user.login",
        .params = val("[{\"password\":\"" SECRET_PASSWORD "\"}]"),
        .response = &fault,
        .status = 200,
    };
    struct intercept_rule rule = {NULL, NULL, 1, r};
    char *body = NULL;

    ck_assert_int_eq(interceptor_record(fx.ic, &rule, &x), 0);
    json_object *o = spooled(1, &body);
    ck_assert_ptr_null(strstr(body, SECRET_PASSWORD));
    ck_assert_str_eq(STR_AT(o, "data", "params", "#0", "password"), "[redacted]");
    ck_assert_str_eq(STR_AT(o, "data", "fault", "faultString"), "bad password for bob");
    json_object_put(o);
    redact_free(r);
}
END_TEST

START_TEST(unanswered_call_is_redacted_too)
{
    struct redact *r = parse_ok("password");
    struct event_exchange x = {
        .method = "user.login",
        .params = val("[{\"password\":\"" SECRET_PASSWORD "\"}]"),
        .response = NULL,
    };
    struct intercept_rule rule = {NULL, NULL, 0, r};
    char *body = NULL;

    ck_assert_int_eq(interceptor_record(fx.ic, &rule, &x), 0);
    json_object *o = spooled(1, &body);
    ck_assert_ptr_null(strstr(body, SECRET_PASSWORD));
    ck_assert_str_eq(STR_AT(o, "data", "params", "#0", "password"), "[redacted]");
    json_object_put(o);
    redact_free(r);
}
END_TEST

Suite *redact_suite(void)
{
    Suite *s = suite_create("redact");

    TCase *tp = tcase_create("parse");
    tcase_set_timeout(tp, UNIT_TIMEOUT);
    tcase_add_test(tp, parse_accepts_names_and_dotted_paths);
    tcase_add_test(tp, parse_refuses_empty_paths);
    tcase_add_test(tp, parse_refuses_empty_member_names);
    tcase_add_test(tp, parse_reason_fits_its_buffer);
    suite_add_tcase(s, tp);

    TCase *tv = tcase_create("value");
    tcase_set_timeout(tv, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tv, new_arena, free_arena);
    tcase_add_test(tv, top_level_member_is_redacted);
    tcase_add_test(tv, single_name_matches_at_any_depth);
    tcase_add_test(tv, dotted_path_matches_at_several_depths);
    tcase_add_test(tv, arrays_between_path_members_are_transparent);
    tcase_add_test(tv, dotted_path_needs_the_whole_chain);
    tcase_add_test(tv, names_compare_exactly);
    tcase_add_test(tv, container_member_is_replaced_whole);
    tcase_add_test(tv, several_paths_apply_together);
    tcase_add_test(tv, no_match_returns_the_value_itself);
    tcase_add_test(tv, copy_keeps_siblings_in_order_and_shares_them);
    tcase_add_test(tv, original_tree_is_not_modified);
    suite_add_tcase(s, tv);

    TCase *ti = tcase_create("interceptor");
    tcase_set_timeout(ti, UNIT_TIMEOUT);
    tcase_add_unchecked_fixture(ti, make_root, scratch_root_remove);
    tcase_add_checked_fixture(ti, new_arena, free_arena);
    tcase_add_checked_fixture(ti, open_spool, close_spool);
    tcase_add_test(ti, event_is_written_redacted);
    tcase_add_test(ti, fault_string_is_not_redacted);
    tcase_add_test(ti, unanswered_call_is_redacted_too);
    suite_add_tcase(s, ti);
    return s;
}
