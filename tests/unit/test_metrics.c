/*
 * metrics.c: the process-wide registry of counters.
 *
 * The registry is the process's and other suites use it too, so every
 * test names its own routes and upstreams ("tm-..."), compares figures
 * with what they were before it (as if another test had counted first),
 * and never calls metrics_shutdown().
 */
#include "unit.h"
#include "proxy/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(a_route_and_upstream_have_one_set_of_target_counters)
{
    struct target_counters *t = metrics_target_counters("tm-one-r", "tm-one-u", 0);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->route, "tm-one-r");
    ck_assert_str_eq(t->upstream, "tm-one-u");
    ck_assert_int_eq(t->new_side, 0);
    /* The same pair: the same counters, with new_side as asked now. */
    ck_assert_ptr_eq(metrics_target_counters("tm-one-r", "tm-one-u", 1), t);
    ck_assert_int_eq(t->new_side, 1);
    ck_assert_ptr_eq(metrics_target_counters("tm-one-r", "tm-one-u", 0), t);
    ck_assert_int_eq(t->new_side, 0);
    /* Another upstream or another route: others. */
    struct target_counters *u = metrics_target_counters("tm-one-r", "tm-one-v", 1);
    struct target_counters *v = metrics_target_counters("tm-one-s", "tm-one-u", 1);
    ck_assert_ptr_ne(u, t);
    ck_assert_ptr_ne(v, t);
    ck_assert_ptr_ne(u, v);
    ck_assert_int_eq(t->new_side, 0);
    /* The key is the pair, not the two names run together. */
    struct target_counters *ab = metrics_target_counters("tm-ab", "c", 0);
    struct target_counters *a = metrics_target_counters("tm-a", "bc", 0);
    ck_assert_ptr_ne(ab, a);
    /* None at all: a pair of its own too. */
    struct target_counters *none = metrics_target_counters("", "", 0);
    ck_assert_str_eq(none->route, "");
    ck_assert_str_eq(none->upstream, "");
    ck_assert_ptr_eq(metrics_target_counters("", "", 0), none);

    /* Figures carry on from one lookup to the next (a reload's). */
    uint64_t before = metrics_read(&t->outcomes[METRICS_OUTCOME_OK]);
    metrics_observe(t, METRICS_OUTCOME_OK, 100);
    ck_assert_uint_eq(
        metrics_read(
            &metrics_target_counters("tm-one-r", "tm-one-u", 0)->outcomes[METRICS_OUTCOME_OK]),
        before + 1);
    ck_assert_uint_eq(metrics_read(&u->outcomes[METRICS_OUTCOME_OK]), 0);
}
END_TEST

START_TEST(a_route_name_has_one_set_of_route_counters)
{
    struct route_counters *r = metrics_route_counters("tm-route-a");
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->name, "tm-route-a");
    ck_assert_ptr_eq(metrics_route_counters("tm-route-a"), r);
    ck_assert_ptr_ne(metrics_route_counters("tm-route-b"), r);
    uint64_t before = metrics_read(&r->requests);
    metrics_bump(&r->requests);
    metrics_bump(&r->requests);
    ck_assert_uint_eq(metrics_read(&metrics_route_counters("tm-route-a")->requests), before + 2);
    /* A route and a target of the same names are different things. */
    struct target_counters *t = metrics_target_counters("tm-route-a", "", 0);
    ck_assert_ptr_ne((void *)t, (void *)r);
    ck_assert_str_eq(t->route, "tm-route-a");
}
END_TEST

/* The per-bucket counts of t, and its sum, before an observation. */
struct snapshot {
    uint64_t bucket[METRICS_LATENCY_BUCKETS + 1];
    uint64_t outcome[METRICS_OUTCOMES];
    uint64_t sum;
};

static void take(struct target_counters *t, struct snapshot *s)
{
    for (int i = 0; i <= METRICS_LATENCY_BUCKETS; i++)
        s->bucket[i] = metrics_read(&t->latency[i]);
    for (int i = 0; i < METRICS_OUTCOMES; i++)
        s->outcome[i] = metrics_read(&t->outcomes[i]);
    s->sum = metrics_read(&t->latency_sum_us);
}

/* Observes one call of duration us and checks that exactly bucket `want`
 * and outcome `o` went up by one, and the sum by us. */
static void observe_into(struct target_counters *t, enum metrics_outcome o, uint64_t us, int want)
{
    struct snapshot before, after;
    take(t, &before);
    metrics_observe(t, o, us);
    take(t, &after);
    for (int i = 0; i <= METRICS_LATENCY_BUCKETS; i++)
        ck_assert_msg(after.bucket[i] - before.bucket[i] == (uint64_t)(i == want),
                      "%" PRIu64 " us: bucket %d went from %" PRIu64 " to %" PRIu64
                      " (expected bucket %d)",
                      us, i, before.bucket[i], after.bucket[i], want);
    for (int i = 0; i < METRICS_OUTCOMES; i++)
        ck_assert_uint_eq(after.outcome[i] - before.outcome[i], (uint64_t)(i == (int)o));
    ck_assert_uint_eq(after.sum - before.sum, us);
}

START_TEST(a_duration_lands_in_the_first_bucket_whose_bound_holds_it)
{
    struct target_counters *t = metrics_target_counters("tm-le", "tm-le-u", 1);
    /* The bounds are increasing, from half a millisecond to ten seconds. */
    ck_assert_uint_eq(metrics_latency_bounds_us[0], 500);
    ck_assert_uint_eq(metrics_latency_bounds_us[METRICS_LATENCY_BUCKETS - 1], 10000000);
    for (int i = 1; i < METRICS_LATENCY_BUCKETS; i++)
        ck_assert_uint_gt(metrics_latency_bounds_us[i], metrics_latency_bounds_us[i - 1]);

    observe_into(t, METRICS_OUTCOME_OK, 0, 0);
    for (int i = 0; i < METRICS_LATENCY_BUCKETS; i++) {
        uint64_t bound = metrics_latency_bounds_us[i];
        /* le is inclusive: the bound itself is in its bucket... */
        observe_into(t, METRICS_OUTCOME_OK, bound, i);
        /* ...one microsecond more is in the next (the last: +Inf). */
        observe_into(t, METRICS_OUTCOME_FAULT, bound + 1, i + 1);
        observe_into(t, METRICS_OUTCOME_TIMEOUT, bound - 1, i);
    }
    /* Past every bound: the +Inf slot. */
    observe_into(t, METRICS_OUTCOME_TIMEOUT, 3600ull * 1000000, METRICS_LATENCY_BUCKETS);
    observe_into(t, METRICS_OUTCOME_CLIENT_CLOSED, (uint64_t)1 << 50, METRICS_LATENCY_BUCKETS);
}
END_TEST

START_TEST(every_outcome_and_the_sum_are_counted)
{
    struct target_counters *t = metrics_target_counters("tm-sum", "tm-sum-u", 0);
    struct snapshot before, after;
    take(t, &before);
    uint64_t total = 0;
    for (int o = 0; o < METRICS_OUTCOMES; o++)
        for (int k = 0; k <= o; k++) {
            uint64_t us = 1000u * (uint64_t)(o + 1) + (uint64_t)k;
            metrics_observe(t, (enum metrics_outcome)o, us);
            total += us;
        }
    take(t, &after);
    uint64_t counted = 0;
    for (int o = 0; o < METRICS_OUTCOMES; o++)
        ck_assert_uint_eq(after.outcome[o] - before.outcome[o], (uint64_t)o + 1);
    for (int i = 0; i <= METRICS_LATENCY_BUCKETS; i++)
        counted += after.bucket[i] - before.bucket[i];
    ck_assert_uint_eq(counted, (uint64_t)METRICS_OUTCOMES * (METRICS_OUTCOMES + 1) / 2);
    ck_assert_uint_eq(after.sum - before.sum, total);
}
END_TEST

/* ---- plain counts ---- */

struct count_row {
    char upstream[64], label[64];
    uint64_t value;
};

struct counts {
    const char *upstream; /* only this upstream's rows */
    struct count_row rows[128];
    size_t n;
    size_t total; /* rows seen for the upstream, kept or not */
};

static void add_row(struct counts *c, const char *label, uint64_t value)
{
    c->total++;
    if (c->n == sizeof(c->rows) / sizeof(c->rows[0]))
        return;
    struct count_row *r = &c->rows[c->n++];
    snprintf(r->upstream, sizeof(r->upstream), "%s", c->upstream);
    snprintf(r->label, sizeof(r->label), "%s", label);
    r->value = value;
}

/* The fault codes of an upstream as /metrics lists them: in the order
 * they came, then "other". */
static void adapter_faults_of(const char *upstream, struct counts *c)
{
    struct metrics_fault_code codes[METRICS_MAX_FAULT_CODES];
    size_t n;
    uint64_t other;
    memset(c, 0, sizeof(*c));
    c->upstream = upstream;
    metrics_read_faults(metrics_upstream_counters(upstream), codes, &n, &other);
    for (size_t i = 0; i < n; i++) {
        char label[32];
        snprintf(label, sizeof(label), "%" PRId64, codes[i].code);
        add_row(c, label, codes[i].count);
    }
    if (other > 0)
        add_row(c, "other", other);
}

/* The kinds of failure an upstream had, in the order of the enum. */
static void upstream_errors_of(const char *upstream, struct counts *c)
{
    struct upstream_counters *u = metrics_upstream_counters(upstream);
    memset(c, 0, sizeof(*c));
    c->upstream = upstream;
    for (int e = 0; e < METRICS_UPSTREAM_ERRORS; e++)
        if (metrics_read(&u->errors[e]) > 0)
            add_row(c, metrics_upstream_error_name(e), metrics_read(&u->errors[e]));
}

static void fault(const char *upstream, int64_t code)
{
    metrics_count_adapter_fault(metrics_upstream_counters(upstream), code);
}

static void failure(const char *upstream, enum metrics_upstream_error e)
{
    metrics_count_upstream_error(metrics_upstream_counters(upstream), e);
}

/* The count under label, or -1 when there is no row. */
static int64_t count_of(const struct counts *c, const char *label)
{
    int64_t found = -1;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->rows[i].label, label) == 0) {
            ck_assert_msg(found < 0, "label %s listed twice for %s", label, c->upstream);
            found = (int64_t)c->rows[i].value;
        }
    return found;
}

START_TEST(fault_codes_past_the_cap_are_counted_as_other)
{
    struct counts c;
    adapter_faults_of("tm-faulty", &c);
    ck_assert_uint_eq(c.total, 0);

    /* The cap's worth of distinct codes, each its own row, in order. */
    for (int64_t code = 1; code <= METRICS_MAX_FAULT_CODES; code++)
        fault("tm-faulty", code * 10 - 640);
    fault("tm-faulty", 10 - 640);
    adapter_faults_of("tm-faulty", &c);
    ck_assert_uint_eq(c.total, METRICS_MAX_FAULT_CODES);
    for (int64_t code = 1; code <= METRICS_MAX_FAULT_CODES; code++) {
        char label[32];
        snprintf(label, sizeof(label), "%" PRId64, code * 10 - 640);
        ck_assert_str_eq(c.rows[code - 1].label, label);
        ck_assert_uint_eq(c.rows[code - 1].value, code == 1 ? 2 : 1);
    }
    ck_assert_int_eq(count_of(&c, "other"), -1);

    /* Ten more distinct codes, one twice: all "other". */
    for (int64_t code = 1000; code < 1010; code++)
        fault("tm-faulty", code);
    fault("tm-faulty", 1005);
    fault("tm-faulty", INT64_MIN);
    /* Codes it knew are still counted under their own. */
    fault("tm-faulty", 20 - 640);
    adapter_faults_of("tm-faulty", &c);
    ck_assert_uint_eq(c.total, METRICS_MAX_FAULT_CODES + 1);
    ck_assert_int_eq(count_of(&c, "other"), 12);
    ck_assert_str_eq(c.rows[METRICS_MAX_FAULT_CODES].label, "other");
    ck_assert_int_eq(count_of(&c, "-620"), 2);
    ck_assert_int_eq(count_of(&c, "1000"), -1);
    ck_assert_int_eq(count_of(&c, "1005"), -1);

    /* Another service has a cap of its own. */
    fault("tm-faulty-2", 1000);
    fault("tm-faulty-2", -32601);
    fault("tm-faulty-2", -32601);
    adapter_faults_of("tm-faulty-2", &c);
    ck_assert_uint_eq(c.total, 2);
    ck_assert_int_eq(count_of(&c, "1000"), 1);
    ck_assert_int_eq(count_of(&c, "-32601"), 2);
    ck_assert_int_eq(count_of(&c, "other"), -1);
    /* and did not change the first one's figures */
    adapter_faults_of("tm-faulty", &c);
    ck_assert_int_eq(count_of(&c, "other"), 12);
}
END_TEST

START_TEST(fault_codes_print_whole)
{
    struct counts c;
    fault("tm-codes", INT64_MAX);
    fault("tm-codes", INT64_MIN);
    fault("tm-codes", 0);
    adapter_faults_of("tm-codes", &c);
    ck_assert_uint_eq(c.total, 3);
    ck_assert_int_eq(count_of(&c, "9223372036854775807"), 1);
    ck_assert_int_eq(count_of(&c, "-9223372036854775808"), 1);
    ck_assert_int_eq(count_of(&c, "0"), 1);
}
END_TEST

START_TEST(upstream_errors_are_counted_per_upstream_and_kind)
{
    struct counts c;
    failure("tm-up-a", METRICS_UPSTREAM_CONNECT);
    failure("tm-up-a", METRICS_UPSTREAM_TIMEOUT);
    failure("tm-up-a", METRICS_UPSTREAM_CONNECT);
    failure("tm-up-b", METRICS_UPSTREAM_CONNECT);
    failure("tm-up-a", METRICS_UPSTREAM_CLOSED);
    upstream_errors_of("tm-up-a", &c);
    ck_assert_uint_eq(c.total, 3);
    /* in the order of the kinds */
    ck_assert_str_eq(c.rows[0].label, "connect");
    ck_assert_uint_eq(c.rows[0].value, 2);
    ck_assert_str_eq(c.rows[1].label, "timeout");
    ck_assert_uint_eq(c.rows[1].value, 1);
    ck_assert_str_eq(c.rows[2].label, "closed");
    ck_assert_uint_eq(c.rows[2].value, 1);
    upstream_errors_of("tm-up-b", &c);
    ck_assert_uint_eq(c.total, 1);
    ck_assert_int_eq(count_of(&c, "connect"), 1);
    /* Errors and adapter faults are different families. */
    adapter_faults_of("tm-up-a", &c);
    ck_assert_uint_eq(c.total, 0);
}
END_TEST

START_TEST(answered_calls_are_split_by_side)
{
    uint64_t new0, all0, new1, all1;
    metrics_answered_calls(&new0, &all0);
    ck_assert_uint_le(new0, all0);
    struct target_counters *n = metrics_target_counters("tm-ans", "tm-ans-new", 1);
    struct target_counters *l = metrics_target_counters("tm-ans", "tm-ans-old", 0);
    /* Every outcome once on the new side, some twice on the legacy. */
    for (int o = 0; o < METRICS_OUTCOMES; o++) {
        metrics_observe(n, (enum metrics_outcome)o, 1000);
        metrics_observe(l, (enum metrics_outcome)o, 1000);
        metrics_observe(l, (enum metrics_outcome)o, 1000);
    }
    metrics_answered_calls(&new1, &all1);
    /* Answered: ok, fault, client_error and server_error; not the rest. */
    ck_assert_uint_eq(new1 - new0, 4);
    ck_assert_uint_eq(all1 - all0, 4 + 8);

    /* Only answered outcomes count. */
    metrics_observe(n, METRICS_OUTCOME_TIMEOUT, 1);
    metrics_observe(n, METRICS_OUTCOME_UPSTREAM_ERROR, 1);
    metrics_observe(n, METRICS_OUTCOME_REFUSED, 1);
    metrics_observe(n, METRICS_OUTCOME_NO_ROUTE, 1);
    metrics_observe(n, METRICS_OUTCOME_CLIENT_CLOSED, 1);
    metrics_answered_calls(&new1, &all1);
    ck_assert_uint_eq(new1 - new0, 4);
    ck_assert_uint_eq(all1 - all0, 12);
    metrics_observe(n, METRICS_OUTCOME_SERVER_ERROR, 1);
    metrics_observe(l, METRICS_OUTCOME_CLIENT_ERROR, 1);
    metrics_answered_calls(&new1, &all1);
    ck_assert_uint_eq(new1 - new0, 5);
    ck_assert_uint_eq(all1 - all0, 14);

    /* A role changed by a reload: the upstream's calls count as its side
     * says now. */
    metrics_target_counters("tm-ans", "tm-ans-new", 0);
    metrics_answered_calls(&new1, &all1);
    ck_assert_uint_eq(new1 - new0, 0);
    ck_assert_uint_eq(all1 - all0, 14);
    metrics_target_counters("tm-ans", "tm-ans-old", 1);
    metrics_answered_calls(&new1, &all1);
    ck_assert_uint_eq(new1 - new0, 9);
}
END_TEST

START_TEST(outcomes_have_their_label_names)
{
    static const char *const want[METRICS_OUTCOMES] = {
        [METRICS_OUTCOME_OK] = "ok",
        [METRICS_OUTCOME_FAULT] = "fault",
        [METRICS_OUTCOME_CLIENT_ERROR] = "client_error",
        [METRICS_OUTCOME_SERVER_ERROR] = "server_error",
        [METRICS_OUTCOME_UPSTREAM_ERROR] = "upstream_error",
        [METRICS_OUTCOME_TIMEOUT] = "timeout",
        [METRICS_OUTCOME_REFUSED] = "refused",
        [METRICS_OUTCOME_NO_ROUTE] = "no_route",
        [METRICS_OUTCOME_CLIENT_CLOSED] = "client_closed",
    };
    for (int o = 0; o < METRICS_OUTCOMES; o++) {
        ck_assert_ptr_nonnull(want[o]);
        ck_assert_str_eq(metrics_outcome_name((enum metrics_outcome)o), want[o]);
    }
    /* Past the end: a name still, and none of those. */
    const char *past = metrics_outcome_name(METRICS_OUTCOMES);
    ck_assert_ptr_nonnull(past);
    for (int o = 0; o < METRICS_OUTCOMES; o++)
        ck_assert_str_ne(past, want[o]);
}
END_TEST

struct order {
    const char *names[3];
    int seen[3];
    int next;
    int wrong;
};

static void note_target(void *arg, struct target_counters *t)
{
    struct order *o = arg;
    for (int i = 0; i < 3; i++)
        if (strcmp(t->route, o->names[i]) == 0) {
            if (i != o->next)
                o->wrong = 1;
            o->seen[i]++;
            o->next = i + 1;
        }
}

START_TEST(targets_are_listed_in_the_order_they_were_made)
{
    struct order o = {{"tm-ord-2", "tm-ord-1", "tm-ord-3"}, {0}, 0, 0};
    for (int i = 0; i < 3; i++)
        metrics_target_counters(o.names[i], "u", 0);
    /* Looking one up again does not move it. */
    metrics_target_counters("tm-ord-2", "u", 1);
    metrics_foreach_target(note_target, &o);
    ck_assert_int_eq(o.wrong, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(o.seen[i], 1);
}
END_TEST

START_TEST(the_process_figures_are_one_set)
{
    struct process_counters *p = metrics_process();
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_eq(metrics_process(), p);
    metrics_mark_start(1795255200000000ll);
    ck_assert_int_eq(atomic_load(&p->started_us), 1795255200000000ll);
    metrics_mark_start(1795255200000001ll);
    ck_assert_int_eq(atomic_load(&p->started_us), 1795255200000001ll);
}
END_TEST

/* ---- threads ---- */

#define THREADS 4
#define ROUNDS  5000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        /* A snapshot being built looks the counters up while others count. */
        struct target_counters *t = metrics_target_counters("tm-threads", "tm-threads-u", 1);
        metrics_observe(t, i % 2 ? METRICS_OUTCOME_OK : METRICS_OUTCOME_FAULT, 600);
        metrics_bump(&metrics_route_counters("tm-threads")->requests);
        if (i % 50 == 0) {
            fault("tm-threads-u", i % 3);
            failure("tm-threads-u", METRICS_UPSTREAM_TIMEOUT);
        }
    }
    return NULL;
}

START_TEST(counting_from_many_threads_loses_nothing)
{
    struct target_counters *t = metrics_target_counters("tm-threads", "tm-threads-u", 1);
    struct route_counters *r = metrics_route_counters("tm-threads");
    uint64_t ok0 = metrics_read(&t->outcomes[METRICS_OUTCOME_OK]);
    uint64_t fault0 = metrics_read(&t->outcomes[METRICS_OUTCOME_FAULT]);
    uint64_t b0 = metrics_read(&t->latency[1]), sum0 = metrics_read(&t->latency_sum_us);
    uint64_t req0 = metrics_read(&r->requests);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_uint_eq(metrics_read(&t->outcomes[METRICS_OUTCOME_OK]) - ok0, THREADS * ROUNDS / 2);
    ck_assert_uint_eq(metrics_read(&t->outcomes[METRICS_OUTCOME_FAULT]) - fault0,
                      THREADS * ROUNDS / 2);
    /* 600 us: the 1 ms bucket. */
    ck_assert_uint_eq(metrics_read(&t->latency[1]) - b0, THREADS * ROUNDS);
    ck_assert_uint_eq(metrics_read(&t->latency_sum_us) - sum0, 600ull * THREADS * ROUNDS);
    ck_assert_uint_eq(metrics_read(&r->requests) - req0, THREADS * ROUNDS);
    struct counts c;
    adapter_faults_of("tm-threads-u", &c);
    ck_assert_uint_eq(c.total, 3);
    uint64_t faults = 0;
    for (size_t i = 0; i < c.n; i++)
        faults += c.rows[i].value;
    ck_assert_uint_eq(faults, THREADS * (ROUNDS / 50));
    upstream_errors_of("tm-threads-u", &c);
    ck_assert_int_eq(count_of(&c, "timeout"), THREADS * (ROUNDS / 50));
}
END_TEST

Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, a_route_and_upstream_have_one_set_of_target_counters);
    tcase_add_test(tc, a_route_name_has_one_set_of_route_counters);
    tcase_add_test(tc, a_duration_lands_in_the_first_bucket_whose_bound_holds_it);
    tcase_add_test(tc, every_outcome_and_the_sum_are_counted);
    tcase_add_test(tc, fault_codes_past_the_cap_are_counted_as_other);
    tcase_add_test(tc, fault_codes_print_whole);
    tcase_add_test(tc, upstream_errors_are_counted_per_upstream_and_kind);
    tcase_add_test(tc, answered_calls_are_split_by_side);
    tcase_add_test(tc, outcomes_have_their_label_names);
    tcase_add_test(tc, targets_are_listed_in_the_order_they_were_made);
    tcase_add_test(tc, the_process_figures_are_one_set);
    tcase_add_test(tc, counting_from_many_threads_loses_nothing);
    suite_add_tcase(s, tc);
    return s;
}
