#include "unit.h"

#include "proxy/guard.h"
#include "proxy/metrics.h"

#include <event2/event.h>
#include <string.h>

struct trips {
    int n;
    char route[64];
    uint64_t calls, bad;
};

static void on_trip(void *arg, const char *route, uint64_t calls, uint64_t bad)
{
    struct trips *t = arg;
    t->n++;
    snprintf(t->route, sizeof(t->route), "%s", route);
    t->calls = calls;
    t->bad = bad;
}

/* errors>10%/10s: slices of one second. */
static struct route guarded(const char *name)
{
    struct route r;
    memset(&r, 0, sizeof(r));
    r.name = (char *)name;
    r.counters = metrics_route_counters(name);
    r.guard = (struct route_guard){
        .enabled = 1, .threshold_bp = 1000, .window_ms = 10000, .min_calls = 20};
    return r;
}

START_TEST(a_guard_trips_once_past_its_rate_and_minimum)
{
    struct event_base *base = event_base_new();
    struct trips t = {0};
    struct route r = guarded("guard-trips");
    ck_assert_int_eq(guard_start(base, on_trip, &t), 0);

    /* 2 bad out of 19: above 10 %, but too few calls to judge. */
    for (int i = 0; i < 19; i++)
        guard_record(&r, i < 2, 100000);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(t.n, 0);
    /* The 20th call: 2 of 20 is 10 %, not above it. */
    guard_record(&r, 0, 100000);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(t.n, 0);
    /* 3 of 21 is. */
    guard_record(&r, 1, 100500);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(t.n, 1);
    ck_assert_str_eq(t.route, "guard-trips");
    ck_assert_uint_eq(t.calls, 21);
    ck_assert_uint_eq(t.bad, 3);
    /* Reported once, until reset. */
    for (int i = 0; i < 50; i++)
        guard_record(&r, 1, 101000);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(t.n, 1);
    guard_reset(r.counters);
    for (int i = 0; i < 20; i++)
        guard_record(&r, 1, 102000);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(t.n, 2);
    ck_assert_uint_eq(t.calls, 20);
    guard_stop();
    event_base_free(base);
}
END_TEST

START_TEST(old_slices_leave_the_window)
{
    struct event_base *base = event_base_new();
    struct trips t = {0};
    struct route r = guarded("guard-window");
    ck_assert_int_eq(guard_start(base, on_trip, &t), 0);
    /* 10 bad calls, then 11 s later 20 good ones: the bad ones are gone. */
    for (int i = 0; i < 10; i++)
        guard_record(&r, 1, 200000);
    for (int i = 0; i < 20; i++)
        guard_record(&r, 0, 211000);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(t.n, 0);
    /* Within the window they still count: 10 bad + 20 good 5 s later. */
    for (int i = 0; i < 10; i++)
        guard_record(&r, 1, 300000);
    for (int i = 0; i < 20; i++)
        guard_record(&r, 0, 305000);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(t.n, 1);
    ck_assert_uint_eq(t.bad, 10);
    guard_stop();
    event_base_free(base);
}
END_TEST

START_TEST(a_route_without_a_guard_is_never_judged)
{
    struct event_base *base = event_base_new();
    struct trips t = {0};
    struct route r = guarded("guard-none");
    r.guard.enabled = 0;
    ck_assert_int_eq(guard_start(base, on_trip, &t), 0);
    for (int i = 0; i < 100; i++)
        guard_record(&r, 1, 400000);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(t.n, 0);
    guard_stop();
    event_base_free(base);
}
END_TEST

Suite *guard_suite(void)
{
    Suite *s = suite_create("guard");
    TCase *tc = tcase_create("guard");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, a_guard_trips_once_past_its_rate_and_minimum);
    tcase_add_test(tc, old_slices_leave_the_window);
    tcase_add_test(tc, a_route_without_a_guard_is_never_judged);
    suite_add_tcase(s, tc);
    return s;
}
