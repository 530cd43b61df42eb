/*
 * event.c and intercept.c: the CloudEvent text (parsed back with json-c and
 * checked attribute by attribute, in order) and the events interceptor
 * (what lands in the spool, the on_faults rule, the counters).
 */
#include "unit.h"
#include "interceptors/event.h"
#include "interceptors/intercept.h"
#include "interceptors/spool.h"

#include <json-c/json.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Values for the tests, built with xmlrpc.h's builders in an arena that
 * each test gets fresh. */
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

/* ["AB-1", -3, 2.5, true, nil, {"a": 1}, base64 "hi", dateTime] */
static struct xr_value *sample_params(void)
{
    struct xr_value *params = xr_value_new(arena, XR_ARRAY);
    struct xr_value *st = xr_value_new(arena, XR_STRUCT);
    xr_struct_add(arena, st, "a", xr_value_new_int(arena, 1));
    xr_value_append(params, xr_value_new_string(arena, XR_STRING, "AB-1", 4));
    xr_value_append(params, xr_value_new_int(arena, -3));
    xr_value_append(params, xr_value_new_double(arena, 2.5));
    xr_value_append(params, xr_value_new_bool(arena, 1));
    xr_value_append(params, xr_value_new(arena, XR_NIL));
    xr_value_append(params, st);
    xr_value_append(params, xr_value_new_string(arena, XR_BASE64, "hi", 2));
    xr_value_append(params, xr_value_new_string(arena, XR_DATETIME, "19991231T23:59:59", 17));
    return params;
}

#define TIME_US 1795255200123456LL /* 2026-11-21T10:00:00.123456Z */

static struct event_envelope sample_envelope(void)
{
    struct event_envelope env;
    memset(&env, 0, sizeof(env));
    snprintf(env.id, sizeof(env.id), "%s", "0b3f5a8e-2c1d-4e6f-9a7b-1c2d3e4f5a6b");
    env.type = "legacy.stock.adjust";
    env.source = "urn:strangler:test";
    env.time_us = TIME_US;
    return env;
}

static struct event_exchange sample_exchange(const struct xr_response *resp)
{
    struct event_exchange x;
    memset(&x, 0, sizeof(x));
    x.method = "stock.adjust";
    x.params = sample_params();
    x.response = resp;
    x.route = "stock-write";
    x.upstream = "legacy";
    x.status = 200;
    x.duration_ms = 12.3456;
    x.request_id = "req-1";
    return x;
}

/* Parses text, failing the test unless it is one complete JSON object. */
static json_object *parse(const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    ck_assert_msg(o != NULL && json_tokener_get_error(tok) == json_tokener_success,
                  "not JSON: %.*s", (int)len, text);
    ck_assert_int_eq(json_tokener_get_parse_end(tok), len);
    json_tokener_free(tok);
    ck_assert(json_object_is_type(o, json_type_object));
    return o;
}

static void assert_keys(json_object *o, const char *const *keys, size_t n)
{
    size_t i = 0;
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        ck_assert_uint_lt(i, n);
        ck_assert_str_eq(k, keys[i]);
        i++;
    }
    ck_assert_uint_eq(i, n);
}

static const char *str_of(json_object *o, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "missing %s", key);
    ck_assert_msg(json_object_is_type(v, json_type_string), "%s is not a string", key);
    return json_object_get_string(v);
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "missing %s", key);
    return v;
}

START_TEST(event_has_every_attribute_in_order)
{
    struct buf b = BUF_INIT;
    struct xr_error err = {0};
    struct xr_value *result = xr_value_new(arena, XR_STRUCT);
    xr_struct_add(arena, result, "ok", xr_value_new(arena, XR_BOOL));
    xr_struct_add(arena, result, "left", xr_value_new_int(arena, 7));
    result->u.list.first->u.b = 1;
    struct xr_response resp = {0, result, 0, NULL, 0};
    struct event_envelope env = sample_envelope();
    struct event_exchange x = sample_exchange(&resp);

    ck_assert_int_eq(event_write(&b, &env, &x, &err), 0);
    json_object *o = parse(b.data, b.len);
    static const char *const attrs[] = {"specversion",     "id",      "source", "type", "time",
                                        "datacontenttype", "subject", "data"};
    assert_keys(o, attrs, 8);
    ck_assert_str_eq(str_of(o, "specversion"), "1.0");
    ck_assert_str_eq(str_of(o, "id"), env.id);
    ck_assert_str_eq(str_of(o, "source"), "urn:strangler:test");
    ck_assert_str_eq(str_of(o, "type"), "legacy.stock.adjust");
    ck_assert_str_eq(str_of(o, "time"), "2026-11-21T10:00:00.123Z");
    ck_assert_str_eq(str_of(o, "datacontenttype"), "application/json");
    ck_assert_str_eq(str_of(o, "subject"), "stock.adjust");

    json_object *data = member(o, "data");
    static const char *const fields[] = {"method",   "params", "result",      "route",
                                         "upstream", "status", "duration_ms", "request_id"};
    assert_keys(data, fields, 8);
    ck_assert_str_eq(str_of(data, "method"), "stock.adjust");
    ck_assert_str_eq(str_of(data, "route"), "stock-write");
    ck_assert_str_eq(str_of(data, "upstream"), "legacy");
    ck_assert_str_eq(str_of(data, "request_id"), "req-1");
    ck_assert_int_eq(json_object_get_int(member(data, "status")), 200);
    json_object *dur = member(data, "duration_ms");
    ck_assert(json_object_is_type(dur, json_type_double));
    ck_assert_double_eq_tol(json_object_get_double(dur), 12.346, 1e-9);
    ck_assert_ptr_nonnull(strstr(b.data, "\"duration_ms\":12.346,"));

    json_object *params = member(data, "params");
    ck_assert(json_object_is_type(params, json_type_array));
    ck_assert_uint_eq(json_object_array_length(params), 8);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(params, 0)), "AB-1");
    ck_assert_int_eq(json_object_get_int64(json_object_array_get_idx(params, 1)), -3);
    ck_assert_double_eq(json_object_get_double(json_object_array_get_idx(params, 2)), 2.5);
    ck_assert(json_object_get_boolean(json_object_array_get_idx(params, 3)));
    ck_assert(json_object_is_type(json_object_array_get_idx(params, 4), json_type_null));
    ck_assert_int_eq(json_object_get_int(member(json_object_array_get_idx(params, 5), "a")), 1);
    ck_assert_str_eq(str_of(json_object_array_get_idx(params, 6), "$base64"), "aGk=");
    ck_assert_str_eq(str_of(json_object_array_get_idx(params, 7), "$datetime"),
                     "19991231T23:59:59");

    json_object *res = member(data, "result");
    ck_assert(json_object_get_boolean(member(res, "ok")));
    ck_assert_int_eq(json_object_get_int(member(res, "left")), 7);
    ck_assert(!json_object_object_get_ex(data, "fault", NULL));
    json_object_put(o);
    buf_dispose(&b);
}
END_TEST

START_TEST(fault_answer_has_null_result_and_fault_object)
{
    struct buf b = BUF_INIT;
    struct xr_error err = {0};
    struct xr_response resp = {1, NULL, -32500, "out of \"stock\"", 14};
    struct event_envelope env = sample_envelope();
    struct event_exchange x = sample_exchange(&resp);
    x.status = 200;

    ck_assert_int_eq(event_write(&b, &env, &x, &err), 0);
    json_object *o = parse(b.data, b.len);
    json_object *data = member(o, "data");
    static const char *const fields[] = {"method",   "params", "result",      "fault",     "route",
                                         "upstream", "status", "duration_ms", "request_id"};
    assert_keys(data, fields, 9);
    ck_assert(json_object_is_type(member(data, "result"), json_type_null));
    json_object *fault = member(data, "fault");
    static const char *const fkeys[] = {"faultCode", "faultString"};
    assert_keys(fault, fkeys, 2);
    ck_assert_int_eq(json_object_get_int64(member(fault, "faultCode")), -32500);
    ck_assert_str_eq(str_of(fault, "faultString"), "out of \"stock\"");
    json_object_put(o);
    buf_dispose(&b);
}
END_TEST

START_TEST(missing_parts_are_null)
{
    struct buf b = BUF_INIT;
    struct xr_error err = {0};
    struct event_envelope env = sample_envelope();
    struct event_exchange x = sample_exchange(NULL);
    x.params = NULL;
    x.route = NULL;
    x.upstream = NULL;
    x.request_id = NULL;
    x.duration_ms = -0.0004; /* rounds to 0.000, without a stray minus */

    ck_assert_int_eq(event_write(&b, &env, &x, &err), 0);
    json_object *o = parse(b.data, b.len);
    json_object *data = member(o, "data");
    ck_assert(json_object_is_type(member(data, "params"), json_type_null));
    ck_assert(json_object_is_type(member(data, "result"), json_type_null));
    ck_assert(json_object_is_type(member(data, "route"), json_type_null));
    ck_assert(json_object_is_type(member(data, "upstream"), json_type_null));
    ck_assert(json_object_is_type(member(data, "request_id"), json_type_null));
    ck_assert_ptr_nonnull(strstr(b.data, "\"duration_ms\":0.000,"));

    b.len = 0;
    x.duration_ms = NAN;
    ck_assert_int_eq(event_write(&b, &env, &x, &err), 0);
    json_object_put(o);
    o = parse(b.data, b.len);
    ck_assert(json_object_is_type(member(member(o, "data"), "duration_ms"), json_type_null));
    json_object_put(o);
    buf_dispose(&b);
}
END_TEST

START_TEST(nan_param_is_an_error)
{
    struct buf b = BUF_INIT;
    struct xr_error err = {0};
    struct event_envelope env = sample_envelope();
    struct event_exchange x = sample_exchange(NULL);
    struct xr_value *params = xr_value_new(arena, XR_ARRAY);
    xr_value_append(params, xr_value_new_int(arena, 1));
    xr_value_append(params, xr_value_new_double(arena, NAN));
    x.params = params;

    ck_assert_int_eq(event_write(&b, &env, &x, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_INVALID_PARAMS);
    ck_assert_ptr_nonnull(strstr(err.message, "params"));
    buf_dispose(&b);
}
END_TEST

START_TEST(nan_result_is_an_error)
{
    struct buf b = BUF_INIT;
    struct xr_error err = {0};
    struct xr_response resp = {0, xr_value_new_double(arena, INFINITY), 0, NULL, 0};
    struct event_envelope env = sample_envelope();
    struct event_exchange x = sample_exchange(&resp);

    ck_assert_int_eq(event_write(&b, &env, &x, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "result"));
    buf_dispose(&b);
}
END_TEST

START_TEST(default_type_is_legacy_dot_method)
{
    struct buf b = BUF_INIT;
    event_default_type(&b, "stock.adjust");
    ck_assert_str_eq(buf_cstr(&b), "legacy.stock.adjust");
    buf_dispose(&b);
}
END_TEST

/* ---- the events interceptor ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct fixture {
    char dir[64];
    struct spool *spool;
    struct interceptor *ic;
};

static void fixture_open(struct fixture *f)
{
    char err[256];
    snprintf(f->dir, sizeof(f->dir), "/tmp/strangler-event-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    f->spool = spool_open(f->dir, NULL, err, sizeof(err));
    ck_assert_msg(f->spool != NULL, "%s", err);
    f->ic = interceptor_events_new(f->spool, "urn:strangler:test");
}

static void fixture_close(struct fixture *f)
{
    interceptor_free(f->ic);
    spool_close(f->spool);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Reads spooled event `seq`, checks the body is the CloudEvent for it and
 * that the record's id, type and key agree with the body. */
static void expect_spooled(struct spool *s, uint64_t seq, const char *type, const char *key)
{
    struct spool_cursor *c = spool_cursor_new(s, seq - 1);
    struct spool_event ev;
    ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
    ck_assert_uint_eq(ev.seq, seq);
    ck_assert_str_eq(ev.type, type);
    ck_assert_str_eq(ev.key, key);
    json_object *o = parse(ev.body, ev.body_len);
    ck_assert_str_eq(str_of(o, "id"), ev.id);
    ck_assert_str_eq(str_of(o, "type"), type);
    ck_assert_str_eq(str_of(o, "source"), "urn:strangler:test");
    ck_assert_uint_eq(strlen(ev.id), IDS_UUID_LEN);
    ck_assert_int_ne(ev.time_us, 0);
    json_object_put(o);
    spool_cursor_free(c);
}

START_TEST(interceptor_spools_events_with_type_and_key)
{
    struct fixture f;
    struct interceptor_stats st;
    fixture_open(&f);
    struct event_exchange x = sample_exchange(NULL);
    struct intercept_rule plain = {NULL, NULL, 0, NULL};
    struct intercept_rule typed = {"orders.changed", NULL, 0, NULL};
    struct intercept_rule keyed = {"orders.changed", "orders.eu", 0, NULL};

    ck_assert_int_eq(interceptor_record(f.ic, &plain, &x), 0);
    ck_assert_int_eq(interceptor_record(f.ic, &typed, &x), 0);
    ck_assert_int_eq(interceptor_record(f.ic, &keyed, &x), 0);
    ck_assert_int_eq(interceptor_record(f.ic, NULL, &x), 0);
    expect_spooled(f.spool, 1, "legacy.stock.adjust", "legacy.stock.adjust");
    expect_spooled(f.spool, 2, "orders.changed", "orders.changed");
    expect_spooled(f.spool, 3, "orders.changed", "orders.eu");
    expect_spooled(f.spool, 4, "legacy.stock.adjust", "legacy.stock.adjust");
    interceptor_get_stats(f.ic, &st);
    ck_assert_uint_eq(st.recorded, 4);
    ck_assert_uint_eq(st.skipped, 0);
    fixture_close(&f);
}
END_TEST

START_TEST(faults_are_recorded_only_with_on_faults)
{
    struct fixture f;
    struct interceptor_stats st;
    fixture_open(&f);
    struct xr_response fault = {1, NULL, -32601, "no", 2};
    struct event_exchange x = sample_exchange(&fault);
    struct intercept_rule no = {NULL, NULL, 0, NULL};
    struct intercept_rule yes = {NULL, NULL, 1, NULL};

    ck_assert_int_eq(interceptor_record(f.ic, &no, &x), 0);
    ck_assert_uint_eq(spool_last_seq(f.spool), 0);
    ck_assert_int_eq(interceptor_record(f.ic, &yes, &x), 0);
    ck_assert_uint_eq(spool_last_seq(f.spool), 1);
    interceptor_get_stats(f.ic, &st);
    ck_assert_uint_eq(st.recorded, 1);
    ck_assert_uint_eq(st.skipped, 0);
    fixture_close(&f);
}
END_TEST

START_TEST(unwritable_events_are_skipped)
{
    struct fixture f;
    struct interceptor_stats st;
    char method[400];
    fixture_open(&f);
    struct event_exchange x = sample_exchange(NULL);
    struct xr_value *params = xr_value_new(arena, XR_ARRAY);
    xr_value_append(params, xr_value_new_double(arena, NAN));
    x.params = params;
    ck_assert_int_eq(interceptor_record(f.ic, NULL, &x), -1);

    /* A method name too long for an AMQP type / routing key. */
    x = sample_exchange(NULL);
    memset(method, 'm', sizeof(method) - 1);
    method[sizeof(method) - 1] = '\0';
    x.method = method;
    ck_assert_int_eq(interceptor_record(f.ic, NULL, &x), -1);

    interceptor_get_stats(f.ic, &st);
    ck_assert_uint_eq(st.recorded, 0);
    ck_assert_uint_eq(st.skipped, 2);
    ck_assert_uint_eq(spool_last_seq(f.spool), 0);
    fixture_close(&f);
}
END_TEST

/* interceptor_record_data: an event about a call rather than the call (a
 * shadow's mismatch), with the data object as it was given. */
START_TEST(record_data_spools_the_data_as_given)
{
    struct fixture f;
    struct interceptor_stats st;
    static const char data[] = "{\"route\":\"stock-read\",\"differences\":1}";
    fixture_open(&f);
    ck_assert_int_eq(
        interceptor_record_data(f.ic, "strangler.shadow.mismatch", "stock.get", data, strlen(data)),
        0);
    expect_spooled(f.spool, 1, "strangler.shadow.mismatch", "strangler.shadow.mismatch");
    struct spool_cursor *c = spool_cursor_new(f.spool, 0);
    struct spool_event ev;
    ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
    json_object *o = parse(ev.body, ev.body_len);
    ck_assert_str_eq(str_of(o, "subject"), "stock.get");
    ck_assert_str_eq(str_of(o, "specversion"), "1.0");
    json_object *d = NULL;
    ck_assert(json_object_object_get_ex(o, "data", &d));
    ck_assert_str_eq(json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN),
                     "{\"route\":\"stock-read\",\"differences\":1}");
    json_object_put(o);
    spool_cursor_free(c);
    interceptor_get_stats(f.ic, &st);
    ck_assert_uint_eq(st.recorded, 1);
    fixture_close(&f);
}
END_TEST

static int counting_record(void *state, const struct intercept_rule *rule,
                           const struct event_exchange *x)
{
    (void)rule;
    (void)x;
    int *n = state;
    return ++*n % 2 == 0 ? -1 : 0;
}

static void counting_destroy(void *state)
{
    free(state);
}

START_TEST(wrapper_counts_and_destroys_state)
{
    static const struct interceptor_ops ops = {
        .name = "counting", .record = counting_record, .destroy = counting_destroy};
    struct interceptor_stats st;
    struct interceptor *ic = interceptor_new(&ops, calloc(1, sizeof(int)));
    struct event_exchange x = sample_exchange(NULL);
    for (int i = 0; i < 5; i++)
        interceptor_record(ic, NULL, &x);
    interceptor_get_stats(ic, &st);
    ck_assert_uint_eq(st.recorded, 3);
    ck_assert_uint_eq(st.skipped, 2);
    /* Without a record_data op, such events are not this interceptor's:
     * refused and counted as skipped, and nothing else breaks. */
    ck_assert_int_eq(interceptor_record_data(ic, "strangler.shadow.mismatch", "m", "{}", 2), -1);
    interceptor_get_stats(ic, &st);
    ck_assert_uint_eq(st.skipped, 3);
    interceptor_free(ic);
    interceptor_free(NULL);
}
END_TEST

Suite *event_suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("event");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, new_arena, free_arena);
    tcase_add_test(tc, event_has_every_attribute_in_order);
    tcase_add_test(tc, fault_answer_has_null_result_and_fault_object);
    tcase_add_test(tc, missing_parts_are_null);
    tcase_add_test(tc, nan_param_is_an_error);
    tcase_add_test(tc, nan_result_is_an_error);
    tcase_add_test(tc, default_type_is_legacy_dot_method);
    suite_add_tcase(s, tc);

    TCase *ti = tcase_create("interceptor");
    tcase_set_timeout(ti, UNIT_TIMEOUT);
    tcase_add_checked_fixture(ti, new_arena, free_arena);
    tcase_add_test(ti, interceptor_spools_events_with_type_and_key);
    tcase_add_test(ti, faults_are_recorded_only_with_on_faults);
    tcase_add_test(ti, unwritable_events_are_skipped);
    tcase_add_test(ti, wrapper_counts_and_destroys_state);
    tcase_add_test(ti, record_data_spools_the_data_as_given);
    suite_add_tcase(s, ti);
    return s;
}
