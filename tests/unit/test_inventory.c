/*
 * inventory.c: the log-linear latency histogram, and the per-worker shards
 * merged into the report GET /methods shows: counts, sides, bytes, times,
 * quantiles, order and the bound on distinct names.
 */
#include "unit.h"
#include "proxy/inventory.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the histogram ---- */

/* Half a sub-bucket of a power of two: 1/32. A little slack for rounding. */
#define MAX_REL_ERROR 0.0313

START_TEST(durations_below_sixteen_us_have_exact_buckets)
{
    for (uint64_t v = 0; v < 16; v++) {
        unsigned b = inventory_bucket_of(v);
        ck_assert_uint_eq(b, v);
        ck_assert(inventory_bucket_value(b) == (double)v);
    }
    /* 16 starts the first log-linear bucket, not a fifteenth's twin. */
    ck_assert_uint_ne(inventory_bucket_of(16), inventory_bucket_of(15));
}
END_TEST

/* The value of v's bucket, relative to v. */
static double rel_error(uint64_t v)
{
    double got = inventory_bucket_value(inventory_bucket_of(v));
    return fabs(got - (double)v) / (double)v;
}

START_TEST(a_buckets_value_is_within_three_percent_of_every_duration_in_it)
{
    const uint64_t top = (uint64_t)1 << 32;
    size_t checked = 0;
    /* A geometric sweep, 0.3 % apart, from 16 us to 71 minutes. */
    for (double d = 16; d < (double)top; d *= 1.003) {
        uint64_t v = (uint64_t)d;
        unsigned b = inventory_bucket_of(v);
        ck_assert_uint_lt(b, INVENTORY_BUCKETS);
        ck_assert_msg(rel_error(v) <= MAX_REL_ERROR, "v=%llu: bucket %u stands for %f",
                      (unsigned long long)v, b, inventory_bucket_value(b));
        checked++;
    }
    ck_assert_uint_gt(checked, 5000);
    /* Both edges of every power of two, where a bucket is widest relative
     * to what it holds (its low edge) or about to double (its high one). */
    for (unsigned e = 4; e < 32; e++) {
        uint64_t p = (uint64_t)1 << e;
        const uint64_t edges[] = {p - 1, p, p + 1, p + p / 16 - 1, p + p / 16, 2 * p - 1};
        for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
            ck_assert_msg(rel_error(edges[i]) <= MAX_REL_ERROR, "v=%llu: off by %f",
                          (unsigned long long)edges[i], rel_error(edges[i]));
    }
    /* Every integer of a stretch, as a dense check. */
    for (uint64_t v = 16; v < 70000; v++)
        ck_assert_msg(rel_error(v) <= MAX_REL_ERROR, "v=%llu", (unsigned long long)v);
}
END_TEST

START_TEST(a_longer_duration_never_gets_a_lower_bucket)
{
    unsigned prev = inventory_bucket_of(0);
    for (uint64_t v = 1; v < 200000; v++) {
        unsigned b = inventory_bucket_of(v);
        ck_assert_msg(b >= prev, "v=%llu: bucket %u after %u", (unsigned long long)v, b, prev);
        ck_assert_msg(b <= prev + 1, "v=%llu skips from bucket %u to %u", (unsigned long long)v,
                      prev, b);
        prev = b;
    }
    for (double d = 200000; d < 1e11; d *= 1.001) {
        unsigned b = inventory_bucket_of((uint64_t)d);
        ck_assert_msg(b >= prev, "v=%.0f: bucket %u after %u", d, b, prev);
        prev = b;
    }
    /* Across each power of two. */
    for (unsigned e = 4; e < 40; e++) {
        uint64_t p = (uint64_t)1 << e;
        ck_assert_uint_le(inventory_bucket_of(p - 1), inventory_bucket_of(p));
        ck_assert_uint_le(inventory_bucket_of(p), inventory_bucket_of(p + 1));
    }
}
END_TEST

START_TEST(every_bucket_is_the_bucket_of_its_own_value)
{
    /* Bucket values strictly increase, and each lies in its own bucket: no
     * bucket is unreachable or stands for a value another one holds. */
    double prev = -1;
    for (unsigned b = 0; b < INVENTORY_BUCKETS; b++) {
        double v = inventory_bucket_value(b);
        ck_assert_msg(v > prev, "bucket %u: %f after %f", b, v, prev);
        ck_assert_msg(inventory_bucket_of((uint64_t)v) == b, "bucket %u stands for %f, in %u", b, v,
                      inventory_bucket_of((uint64_t)v));
        prev = v;
    }
}
END_TEST

START_TEST(durations_beyond_two_to_the_32_share_the_last_bucket)
{
    const uint64_t top = (uint64_t)1 << 32;
    unsigned last = inventory_bucket_of(top - 1);
    ck_assert_uint_lt(last, INVENTORY_BUCKETS);
    const uint64_t huge[] = {top,       top + 1, top * 2, (uint64_t)1 << 40, (uint64_t)1 << 63,
                             UINT64_MAX};
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++)
        ck_assert_uint_eq(inventory_bucket_of(huge[i]), last);
    /* It is the highest bucket there is, and stands for about 2^32 us. */
    for (uint64_t v = 1; v < top; v = v * 3 + 1)
        ck_assert_uint_le(inventory_bucket_of(v), last);
    ck_assert(fabs(inventory_bucket_value(last) - (double)top) / (double)top <= MAX_REL_ERROR);
}
END_TEST

/* ---- recording and reports ---- */

#define T0 1795255200000000ll /* 2026-11-21T10:00:00Z */

/* One call; the figures not given are zero. */
struct call_spec {
    const char *route;
    int answered, fault, error, new_side;
    uint64_t duration_us, bytes_in, bytes_out;
    int64_t at_us;
};

static void record(struct inventory *inv, unsigned shard, const char *method,
                   const struct call_spec *spec)
{
    struct inventory_call c = {
        .method = method,
        .method_len = strlen(method),
        .route = spec->route,
        .answered = spec->answered,
        .fault = spec->fault,
        .error = spec->error,
        .new_side = spec->new_side,
        .duration_us = spec->duration_us,
        .bytes_in = spec->bytes_in,
        .bytes_out = spec->bytes_out,
        .at_us = spec->at_us,
    };
    struct inventory_shard *s = inventory_shard(inv, shard);
    ck_assert_ptr_nonnull(s);
    inventory_record(s, &c);
}

/* A plain answered call through route "r" at T0 + at. */
static void record_ok(struct inventory *inv, unsigned shard, const char *method,
                      uint64_t duration_us, int64_t at)
{
    struct call_spec c = {
        .route = "r", .answered = 1, .duration_us = duration_us, .at_us = T0 + at};
    record(inv, shard, method, &c);
}

/* The report's entry for `method`, or NULL. */
static const struct inventory_method *find(const struct inventory_report *r, const char *method)
{
    for (size_t i = 0; i < r->nmethods; i++)
        if (strcmp(r->methods[i].method, method) == 0)
            return &r->methods[i];
    return NULL;
}

static void assert_near(double got, double want, double rel, const char *what)
{
    ck_assert_msg(fabs(got - want) <= rel * want, "%s: %f, expected %f within %.1f%%", what, got,
                  want, rel * 100);
}

START_TEST(an_empty_inventory_reports_nothing)
{
    struct inventory *inv = inventory_new(2, 10, T0);
    ck_assert_ptr_nonnull(inventory_shard(inv, 0));
    ck_assert_ptr_nonnull(inventory_shard(inv, 1));
    ck_assert_ptr_ne(inventory_shard(inv, 0), inventory_shard(inv, 1));
    ck_assert_ptr_null(inventory_shard(inv, 2));
    struct inventory_report r;
    memset(&r, 0xa5, sizeof(r));
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 0);
    ck_assert_uint_eq(r.untracked_calls, 0);
    ck_assert_int_eq(r.since_us, T0);
    ck_assert_uint_eq(r.max_methods, 10);
    inventory_report_dispose(&r);
    ck_assert_ptr_null(r.methods);
    ck_assert_uint_eq(r.nmethods, 0);
    inventory_free(inv);
    inventory_free(NULL);
}
END_TEST

START_TEST(one_method_in_several_shards_is_merged)
{
    struct inventory *inv = inventory_new(3, 100, T0);
    /* A shard per worker, and none past them. */
    ck_assert_ptr_nonnull(inventory_shard(inv, 2));
    ck_assert_ptr_ne(inventory_shard(inv, 0), inventory_shard(inv, 1));
    ck_assert_ptr_ne(inventory_shard(inv, 1), inventory_shard(inv, 2));
    ck_assert_ptr_null(inventory_shard(inv, 3));
    /* Worker 0: three calls a new service took, one a fault, one that got
     * no answer (so neither side counts it). */
    struct call_spec a[] = {
        {"r-new", 1, 0, 0, 1, 1000, 10, 100, T0 + 1000},
        {"r-new", 1, 1, 0, 1, 2000, 20, 200, T0 + 2000},
        {"r-new", 0, 0, 1, 1, 3000, 0, 0, T0 + 3000},
    };
    /* Worker 1: two the legacy answered, the first call of all and the
     * last. */
    struct call_spec b[] = {
        {"r-old", 1, 0, 0, 0, 4000, 1, 2, T0 + 500},
        {"r-latest", 1, 1, 0, 0, 5000, 3, 4, T0 + 5000},
    };
    for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
        record(inv, 0, "stock.get", &a[i]);
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
        record(inv, 1, "stock.get", &b[i]);
    /* Worker 2: another method, later still: it does not touch stock.get. */
    struct call_spec other = {"r-x", 1, 0, 0, 1, 9000, 7, 8, T0 + 6000};
    record(inv, 2, "stock.put", &other);

    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 2);
    ck_assert_uint_eq(r.untracked_calls, 0);
    const struct inventory_method *m = &r.methods[0];
    ck_assert_str_eq(m->method, "stock.get");
    ck_assert_uint_eq(m->calls, 5);
    ck_assert_uint_eq(m->faults, 2);
    ck_assert_uint_eq(m->errors, 1);
    ck_assert_uint_eq(m->new_calls, 2);
    ck_assert_uint_eq(m->legacy_calls, 2);
    ck_assert_uint_eq(m->bytes_in, 34);
    ck_assert_uint_eq(m->bytes_out, 306);
    ck_assert_int_eq(m->first_seen_us, T0 + 500);
    ck_assert_int_eq(m->last_seen_us, T0 + 5000);
    ck_assert_str_eq(m->route, "r-latest");
    ck_assert(m->max_ms == 5.0);
    /* 1, 2, 3, 4, 5 ms: the median is the third. */
    assert_near(m->p50_ms, 3.0, 0.032, "p50");
    assert_near(m->p99_ms, 5.0, 0.032, "p99");

    const struct inventory_method *o = &r.methods[1];
    ck_assert_str_eq(o->method, "stock.put");
    ck_assert_uint_eq(o->calls, 1);
    ck_assert_uint_eq(o->new_calls, 1);
    ck_assert_uint_eq(o->legacy_calls, 0);
    ck_assert_int_eq(o->first_seen_us, T0 + 6000);
    ck_assert_int_eq(o->last_seen_us, T0 + 6000);
    ck_assert_str_eq(o->route, "r-x");
    ck_assert(o->max_ms == 9.0);
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

START_TEST(the_route_is_the_latest_calls_whichever_shard_has_it)
{
    struct inventory *inv = inventory_new(2, 100, T0);
    struct call_spec late = {.route = "late", .answered = 1, .at_us = T0 + 9000};
    struct call_spec early = {.route = "early", .answered = 1, .at_us = T0 + 1};
    /* m1: the latest call in the first shard; m2: in the second. */
    record(inv, 0, "m1", &late);
    record(inv, 1, "m1", &early);
    record(inv, 0, "m2", &early);
    record(inv, 1, "m2", &late);
    /* In one shard: a later call moves the route on. */
    record(inv, 0, "m3", &early);
    record(inv, 0, "m3", &late);
    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 3);
    const char *names[] = {"m1", "m2", "m3"};
    for (size_t i = 0; i < 3; i++) {
        const struct inventory_method *m = find(&r, names[i]);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m->route, "late");
        ck_assert_int_eq(m->first_seen_us, T0 + 1);
        ck_assert_int_eq(m->last_seen_us, T0 + 9000);
    }
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

START_TEST(calls_without_a_route_keep_none)
{
    struct inventory *inv = inventory_new(1, 100, T0);
    struct call_spec c = {.route = NULL, .error = 1, .at_us = T0 + 5};
    record(inv, 0, "nowhere.call", &c);
    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 1);
    ck_assert_ptr_null(r.methods[0].route);
    ck_assert_uint_eq(r.methods[0].errors, 1);
    ck_assert_uint_eq(r.methods[0].new_calls + r.methods[0].legacy_calls, 0);
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

START_TEST(quantiles_of_a_uniform_spread)
{
    /* 1..1000 ms once each: p50 is 500 ms, p99 990 ms. In one shard, then
     * dealt over three: the merged histogram must say the same. */
    for (unsigned nshards = 1; nshards <= 3; nshards += 2) {
        struct inventory *inv = inventory_new(nshards, 100, T0);
        for (unsigned i = 1; i <= 1000; i++)
            record_ok(inv, i % nshards, "uniform", (uint64_t)i * 1000, i);
        struct inventory_report r;
        inventory_report(inv, &r);
        ck_assert_uint_eq(r.nmethods, 1);
        const struct inventory_method *m = &r.methods[0];
        ck_assert_uint_eq(m->calls, 1000);
        assert_near(m->p50_ms, 500, 0.04, "p50");
        assert_near(m->p99_ms, 990, 0.04, "p99");
        ck_assert(m->max_ms == 1000.0);
        inventory_report_dispose(&r);
        inventory_free(inv);
    }
}
END_TEST

START_TEST(quantiles_pick_the_right_rank)
{
    /* 99 fast calls and one slow: the slow one is not the 99th percentile
     * (rank 99 of 100 is fast), but it is the max. */
    struct inventory *inv = inventory_new(2, 100, T0);
    for (int i = 0; i < 99; i++)
        record_ok(inv, (unsigned)i % 2, "one-slow", 1000, i);
    record_ok(inv, 1, "one-slow", 1000000, 100);
    /* Two slow calls out of 100: now it is. */
    for (int i = 0; i < 98; i++)
        record_ok(inv, 0, "two-slow", 1000, i);
    record_ok(inv, 0, "two-slow", 1000000, 100);
    record_ok(inv, 1, "two-slow", 1000000, 101);
    /* Half at 2 ms, half at 50 ms: the median is the 50th, a fast one. */
    for (int i = 0; i < 100; i++)
        record_ok(inv, 0, "halves", i < 50 ? 50000 : 2000, i);
    /* One call of 7 us: an exact bucket, so exact quantiles. */
    record_ok(inv, 1, "tiny", 7, 1);
    /* One of 1234567 us: the max is the duration itself, not a bucket's. */
    record_ok(inv, 1, "odd", 1234567, 1);

    struct inventory_report r;
    inventory_report(inv, &r);
    const struct inventory_method *m = find(&r, "one-slow");
    ck_assert_ptr_nonnull(m);
    assert_near(m->p50_ms, 1, 0.032, "one-slow p50");
    assert_near(m->p99_ms, 1, 0.032, "one-slow p99");
    ck_assert(m->max_ms == 1000.0);
    m = find(&r, "two-slow");
    ck_assert_ptr_nonnull(m);
    assert_near(m->p50_ms, 1, 0.032, "two-slow p50");
    assert_near(m->p99_ms, 1000, 0.032, "two-slow p99");
    m = find(&r, "halves");
    ck_assert_ptr_nonnull(m);
    assert_near(m->p50_ms, 2, 0.032, "halves p50");
    assert_near(m->p99_ms, 50, 0.032, "halves p99");
    ck_assert(m->max_ms == 50.0);
    m = find(&r, "tiny");
    ck_assert_ptr_nonnull(m);
    ck_assert(m->p50_ms == 0.007);
    ck_assert(m->p99_ms == 0.007);
    ck_assert(m->max_ms == 0.007);
    m = find(&r, "odd");
    ck_assert_ptr_nonnull(m);
    ck_assert(fabs(m->max_ms - 1234.567) < 1e-9);
    assert_near(m->p50_ms, 1234.567, 0.032, "odd p50");
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

START_TEST(methods_come_by_calls_then_by_name)
{
    struct inventory *inv = inventory_new(2, 100, T0);
    /* c: 5; a and b: 3 each (a over both shards); d: 1. Recorded in an
     * order that is none of those. */
    const struct {
        const char *name;
        unsigned shard;
        int times;
    } plan[] = {{"d", 1, 1}, {"b", 0, 3}, {"a", 1, 1}, {"c", 0, 2}, {"a", 0, 2}, {"c", 1, 3}};
    for (size_t i = 0; i < sizeof(plan) / sizeof(plan[0]); i++)
        for (int k = 0; k < plan[i].times; k++)
            record_ok(inv, plan[i].shard, plan[i].name, 100, (int64_t)i);
    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 4);
    const char *order[] = {"c", "a", "b", "d"};
    const uint64_t calls[] = {5, 3, 3, 1};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_str_eq(r.methods[i].method, order[i]);
        ck_assert_uint_eq(r.methods[i].calls, calls[i]);
    }
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

START_TEST(a_report_leaves_the_figures_as_they_were)
{
    struct inventory *inv = inventory_new(2, 100, T0);
    record_ok(inv, 0, "x", 100, 1);
    record_ok(inv, 1, "x", 100, 2);
    struct inventory_report r;
    for (int round = 1; round <= 2; round++) {
        inventory_report(inv, &r);
        ck_assert_uint_eq(r.nmethods, 1);
        ck_assert_uint_eq(r.methods[0].calls, 2 * (uint64_t)round);
        inventory_report_dispose(&r);
        record_ok(inv, 0, "x", 100, 3);
        record_ok(inv, 1, "x", 100, 4);
    }
    inventory_free(inv);
}
END_TEST

START_TEST(names_beyond_the_bound_are_only_counted)
{
    struct inventory *inv = inventory_new(1, 2, T0);
    record_ok(inv, 0, "a", 100, 1);
    record_ok(inv, 0, "b", 100, 2);
    for (int i = 0; i < 3; i++)
        record_ok(inv, 0, "c", 100, 3);
    /* Names already known keep counting. */
    record_ok(inv, 0, "a", 100, 4);
    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 2);
    ck_assert_uint_eq(r.untracked_calls, 3);
    ck_assert_uint_eq(r.max_methods, 2);
    ck_assert_ptr_null(find(&r, "c"));
    ck_assert_uint_eq(find(&r, "a")->calls, 2);
    ck_assert_uint_eq(find(&r, "b")->calls, 1);
    inventory_report_dispose(&r);

    /* A reload raises the bound: c gets in; d, past the new one, not. */
    inventory_set_max_methods(inv, 3);
    record_ok(inv, 0, "c", 100, 5);
    record_ok(inv, 0, "d", 100, 6);
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 3);
    ck_assert_uint_eq(r.max_methods, 3);
    ck_assert_uint_eq(r.untracked_calls, 4);
    ck_assert_uint_eq(find(&r, "c")->calls, 1);
    ck_assert_ptr_null(find(&r, "d"));
    inventory_report_dispose(&r);

    /* Lowering it keeps the names tracked, and they keep counting. */
    inventory_set_max_methods(inv, 1);
    record_ok(inv, 0, "b", 100, 7);
    record_ok(inv, 0, "e", 100, 8);
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 3);
    ck_assert_uint_eq(r.max_methods, 1);
    ck_assert_uint_eq(find(&r, "b")->calls, 2);
    ck_assert_ptr_null(find(&r, "e"));
    ck_assert_uint_eq(r.untracked_calls, 5);
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

START_TEST(the_bound_is_per_shard_and_untracked_calls_add_up)
{
    struct inventory *inv = inventory_new(2, 1, T0);
    record_ok(inv, 0, "a", 100, 1);
    record_ok(inv, 1, "b", 100, 2);
    record_ok(inv, 0, "b", 100, 3); /* shard 0 is full */
    record_ok(inv, 1, "a", 100, 4); /* and so is shard 1 */
    record_ok(inv, 1, "b", 100, 5);
    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 2);
    ck_assert_uint_eq(find(&r, "a")->calls, 1);
    ck_assert_uint_eq(find(&r, "b")->calls, 2);
    ck_assert_uint_eq(r.untracked_calls, 2);
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

/* A worker records a call when it ends, with the time it began (proxy.c's
 * report_call), so a slow call that began first is recorded after a quick
 * one that began later. */
START_TEST(first_seen_is_the_earliest_call_in_a_shard_too)
{
    struct inventory *inv = inventory_new(1, 100, T0);
    struct call_spec quick = {.route = "r", .answered = 1, .duration_us = 1000, .at_us = T0 + 2};
    struct call_spec slow = {.route = "r", .answered = 1, .duration_us = 9000000, .at_us = T0 + 1};
    record(inv, 0, "m", &quick);
    record(inv, 0, "m", &slow);
    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_int_eq(r.methods[0].first_seen_us, T0 + 1);
    ck_assert_int_eq(r.methods[0].last_seen_us, T0 + 2);
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

START_TEST(with_max_methods_zero_every_call_is_untracked)
{
    struct inventory *none = inventory_new(1, 0, T0);
    record_ok(none, 0, "a", 100, 1);
    record_ok(none, 0, "b", 100, 1);
    struct inventory_report r;
    inventory_report(none, &r);
    ck_assert_uint_eq(r.nmethods, 0);
    ck_assert_uint_eq(r.untracked_calls, 2);
    ck_assert_uint_eq(r.max_methods, 0);
    inventory_report_dispose(&r);
    inventory_free(none);
}
END_TEST

START_TEST(names_too_long_or_empty_are_untracked)
{
    char name[INVENTORY_NAME_MAX + 2];
    memset(name, 'm', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct inventory *inv = inventory_new(1, 100, T0);
    struct inventory_call c = {.method = name, .answered = 1, .at_us = T0};
    /* The longest allowed... */
    c.method_len = INVENTORY_NAME_MAX;
    inventory_record(inventory_shard(inv, 0), &c);
    /* ...one more byte, and nothing at all. */
    c.method_len = INVENTORY_NAME_MAX + 1;
    inventory_record(inventory_shard(inv, 0), &c);
    c.method_len = 0;
    inventory_record(inventory_shard(inv, 0), &c);
    c.method = NULL;
    inventory_record(inventory_shard(inv, 0), &c);
    /* The name is method_len bytes, not up to a NUL. */
    c.method = "stock.get.extra";
    c.method_len = 9;
    inventory_record(inventory_shard(inv, 0), &c);

    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, 2);
    ck_assert_uint_eq(r.untracked_calls, 3);
    const struct inventory_method *m = find(&r, "stock.get");
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->calls, 1);
    name[INVENTORY_NAME_MAX] = '\0';
    m = find(&r, name);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(strlen(m->method), INVENTORY_NAME_MAX);
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

START_TEST(a_table_that_grows_keeps_every_count)
{
    /* 1000 names, well past the first 64 slots, called 1 to 7 times each;
     * the second shard sees every third name too. */
    enum { N = 1000 };
    struct inventory *inv = inventory_new(2, 5000, T0);
    char name[32];
    for (int round = 0; round < 7; round++)
        for (int i = 0; i < N; i++) {
            if (round > i % 7)
                continue;
            snprintf(name, sizeof(name), "svc%d.method", i);
            record_ok(inv, 0, name, 100, round);
            if (i % 3 == 0 && round == 0)
                record_ok(inv, 1, name, 100, round);
        }
    struct inventory_report r;
    inventory_report(inv, &r);
    ck_assert_uint_eq(r.nmethods, N);
    ck_assert_uint_eq(r.untracked_calls, 0);
    uint64_t total = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "svc%d.method", i);
        const struct inventory_method *m = find(&r, name);
        ck_assert_msg(m != NULL, "%s is missing", name);
        uint64_t want = (uint64_t)(i % 7) + 1 + (i % 3 == 0);
        ck_assert_msg(m->calls == want, "%s: %llu calls, expected %llu", name,
                      (unsigned long long)m->calls, (unsigned long long)want);
        total += m->calls;
    }
    /* And the order holds over the whole list. */
    for (size_t i = 1; i < r.nmethods; i++) {
        const struct inventory_method *a = &r.methods[i - 1], *b = &r.methods[i];
        ck_assert(a->calls > b->calls ||
                  (a->calls == b->calls && strcmp(a->method, b->method) < 0));
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < r.nmethods; i++)
        sum += r.methods[i].calls;
    ck_assert_uint_eq(sum, total);
    inventory_report_dispose(&r);
    inventory_free(inv);
}
END_TEST

Suite *inventory_suite(void)
{
    Suite *s = suite_create("inventory");
    TCase *tc = tcase_create("histogram");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, durations_below_sixteen_us_have_exact_buckets);
    tcase_add_test(tc, a_buckets_value_is_within_three_percent_of_every_duration_in_it);
    tcase_add_test(tc, a_longer_duration_never_gets_a_lower_bucket);
    tcase_add_test(tc, every_bucket_is_the_bucket_of_its_own_value);
    tcase_add_test(tc, durations_beyond_two_to_the_32_share_the_last_bucket);
    suite_add_tcase(s, tc);

    tc = tcase_create("report");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, an_empty_inventory_reports_nothing);
    tcase_add_test(tc, one_method_in_several_shards_is_merged);
    tcase_add_test(tc, the_route_is_the_latest_calls_whichever_shard_has_it);
    tcase_add_test(tc, calls_without_a_route_keep_none);
    tcase_add_test(tc, quantiles_of_a_uniform_spread);
    tcase_add_test(tc, quantiles_pick_the_right_rank);
    tcase_add_test(tc, methods_come_by_calls_then_by_name);
    tcase_add_test(tc, a_report_leaves_the_figures_as_they_were);
    tcase_add_test(tc, names_beyond_the_bound_are_only_counted);
    tcase_add_test(tc, the_bound_is_per_shard_and_untracked_calls_add_up);
    tcase_add_test(tc, with_max_methods_zero_every_call_is_untracked);
    tcase_add_test(tc, names_too_long_or_empty_are_untracked);
    tcase_add_test(tc, a_table_that_grows_keeps_every_count);
    tcase_add_test(tc, first_seen_is_the_earliest_call_in_a_shard_too);
    suite_add_tcase(s, tc);

    return s;
}
