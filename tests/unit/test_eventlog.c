#include "unit.h"
#include "scratch.h"

#include "common/buf.h"
#include "proxy/eventlog.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* 2026-11-21T10:00:00Z */
#define T0_US (1795255200ll * 1000000)

static void make_root(void)
{
    scratch_root_make("eventlog");
}

static int64_t since(const char *text)
{
    int64_t us = -1;
    char why[256];
    ck_assert_msg(eventlog_parse_since(text, T0_US, &us, why, sizeof(why)) == 0, "%s: %s", text,
                  why);
    return us;
}

START_TEST(since_reads_rfc3339_times_and_spans)
{
    ck_assert_int_eq(since("2026-11-21T10:00:00Z"), T0_US);
    ck_assert_int_eq(since("2026-11-21t10:00:00z"), T0_US);
    ck_assert_int_eq(since("2026-11-21 10:00:00Z"), T0_US);
    ck_assert_int_eq(since("2026-11-21T11:30:00+01:30"), T0_US);
    ck_assert_int_eq(since("2026-11-21T09:00:00-01:00"), T0_US);
    ck_assert_int_eq(since("2026-11-21T10:00:00.25Z"), T0_US + 250000);
    ck_assert_int_eq(since("2026-11-21T10:00:00.000001Z"), T0_US + 1);
    ck_assert_int_eq(since("90s"), T0_US - 90ll * 1000000);
    ck_assert_int_eq(since("15m"), T0_US - 15ll * 60 * 1000000);
    ck_assert_int_eq(since("24h"), T0_US - 24ll * 3600 * 1000000);
    ck_assert_int_eq(since("7d"), T0_US - 7ll * 86400 * 1000000);

    static const char *const bad[] = {"yesterday",
                                      "2026-11-21",
                                      "2026-11-21T10:00Z",
                                      "2026-11-21T10:00:00",
                                      "2026-13-01T00:00:00Z",
                                      "2026-11-21T10:00:00.Z",
                                      "2026-11-21T10:00:00+1",
                                      "10 minutes",
                                      "-5m",
                                      "99999999999d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us = 7;
        char why[256];
        ck_assert_msg(eventlog_parse_since(bad[i], T0_US, &us, why, sizeof(why)) == -1,
                      "accepted %s", bad[i]);
        ck_assert_int_eq(us, 7);
        ck_assert_ptr_nonnull(strstr(why, "neither an RFC 3339 time"));
    }
}
END_TEST

START_TEST(the_filter_takes_time_and_type)
{
    struct spool_event ev = {.seq = 1,
                             .time_us = T0_US,
                             .id = "i",
                             .type = "legacy.stock.adjust",
                             .key = "k",
                             .body = "{}",
                             .body_len = 2};
    struct eventlog_filter any = {0};
    ck_assert(eventlog_match(&any, &ev));
    struct eventlog_filter f = {.since_us = T0_US, .type_glob = "legacy.stock.*"};
    ck_assert(eventlog_match(&f, &ev));
    f.since_us = T0_US + 1;
    ck_assert(!eventlog_match(&f, &ev));
    f.since_us = 0;
    f.type_glob = "legacy.orders.*";
    ck_assert(!eventlog_match(&f, &ev));
    f.type_glob = "*.adjust";
    ck_assert(eventlog_match(&f, &ev));
}
END_TEST

START_TEST(a_tail_line_wraps_the_event_as_it_is)
{
    static const char body[] = "{\"id\":\"e1\",\"data\":{\"a\":[1,\"\\u00e9\"]}}";
    struct spool_event ev = {.seq = 42,
                             .time_us = T0_US,
                             .id = "e1",
                             .type = "t",
                             .key = "k\"q",
                             .body = body,
                             .body_len = sizeof(body) - 1};
    struct buf out = BUF_INIT;
    eventlog_write_line(&out, &ev, 1);
    eventlog_write_line(&out, &ev, 0);
    ck_assert_str_eq(buf_cstr(&out), "{\"seq\":42,\"key\":\"k\\\"q\",\"confirmed\":true,\"event\":"
                                     "{\"id\":\"e1\",\"data\":{\"a\":[1,\"\\u00e9\"]}}}\n"
                                     "{\"seq\":42,\"key\":\"k\\\"q\",\"confirmed\":false,\"event\":"
                                     "{\"id\":\"e1\",\"data\":{\"a\":[1,\"\\u00e9\"]}}}\n");
    buf_dispose(&out);
}
END_TEST

static void append(struct spool *s, const char *id, const char *type, int64_t time_us)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"type\":\"%s\"}", id, type);
    struct spool_event ev = {.time_us = time_us,
                             .id = id,
                             .type = type,
                             .key = type,
                             .body = body,
                             .body_len = strlen(body)};
    ck_assert_int_eq(spool_append(s, &ev), 0);
}

START_TEST(replay_appends_the_matching_history_once)
{
    char dir[PATH_MAX], why[256];
    scratch_dir("replay", dir, sizeof(dir));
    struct spool *s = spool_open(dir, NULL, why, sizeof(why));
    ck_assert_msg(s != NULL, "%s", why);
    append(s, "a", "legacy.stock.adjust", T0_US - 7200 * 1000000ll);
    append(s, "b", "orders.changed", T0_US);
    append(s, "c", "legacy.stock.adjust", T0_US + 1);
    append(s, "d", "legacy.stock.get", T0_US + 2);
    ck_assert_int_eq(spool_confirm(s, 4), 0);

    struct eventlog_replay_result res;
    struct eventlog_filter f = {.since_us = T0_US, .type_glob = "legacy.stock.*"};
    ck_assert_int_eq(eventlog_replay(s, &f, NULL, &res), 0);
    ck_assert_uint_eq(res.replayed, 2);
    ck_assert_int_eq(res.resume_us, 0);
    ck_assert_uint_eq(spool_last_seq(s), 6);

    /* The copies are the events as they were, in their order, after the rest. */
    struct spool_cursor *c = spool_cursor_new(s, 4);
    struct spool_event ev;
    const char *want[] = {"c", "d"};
    for (size_t i = 0; i < 2; i++) {
        ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
        ck_assert_str_eq(ev.id, want[i]);
        ck_assert_str_eq(ev.key, ev.type);
        ck_assert_int_eq(ev.time_us, T0_US + 1 + (int64_t)i);
        char body[128];
        snprintf(body, sizeof(body), "{\"id\":\"%s\",\"type\":\"%s\"}", ev.id, ev.type);
        ck_assert_uint_eq(ev.body_len, strlen(body));
        ck_assert(memcmp(ev.body, body, ev.body_len) == 0);
    }
    ck_assert_int_eq(spool_cursor_next(c, &ev), 0);
    spool_cursor_free(c);

    /* Everything, the first copies included: each once. */
    struct eventlog_filter all = {0};
    ck_assert_int_eq(eventlog_replay(s, &all, NULL, &res), 0);
    ck_assert_uint_eq(res.replayed, 6);
    ck_assert_uint_eq(spool_last_seq(s), 12);
    spool_close(s);
}
END_TEST

START_TEST(replay_stops_when_asked_and_says_where_to_resume)
{
    char dir[PATH_MAX], why[256];
    scratch_dir("replay-stop", dir, sizeof(dir));
    struct spool *s = spool_open(dir, NULL, why, sizeof(why));
    ck_assert_msg(s != NULL, "%s", why);
    append(s, "a", "x.skipped", T0_US);
    append(s, "b", "x.wanted", T0_US + 7);
    struct eventlog_replay_result res;
    struct eventlog_filter f = {.type_glob = "x.wanted"};
    atomic_int stop = 1;
    ck_assert_int_eq(eventlog_replay(s, &f, &stop, &res), 1);
    ck_assert_uint_eq(res.replayed, 0);
    ck_assert_int_eq(res.resume_us, T0_US + 7);
    ck_assert_str_eq(res.why, "the proxy is stopping");
    ck_assert_uint_eq(spool_last_seq(s), 2);
    spool_close(s);
}
END_TEST

/* Eight confirmed events of 100 KB under a 1 MB cap: replaying them all
 * would leave no room for live traffic, so the replay stops once its
 * copies, unconfirmed, fill half the cap, and says where to resume. */
START_TEST(replay_keeps_half_the_cap_for_live_traffic)
{
    char dir[PATH_MAX], why[256];
    static char body[100 * 1024];
    memset(body, 'x', sizeof(body));
    scratch_dir("replay-cap", dir, sizeof(dir));
    struct spool_options opt = {.segment_bytes = 128 * 1024,
                                .max_bytes = 1 << 20,
                                /* Events are stamped T0_US: history
                                 * kept for years, whenever this runs. */
                                .retain_ms = 10ull * 365 * 24 * 3600 * 1000,
                                .fsync = SPOOL_FSYNC_OFF};
    struct spool *s = spool_open(dir, &opt, why, sizeof(why));
    ck_assert_msg(s != NULL, "%s", why);
    for (int i = 0; i < 8; i++) {
        char id[8];
        snprintf(id, sizeof(id), "e%d", i);
        struct spool_event ev = {.time_us = T0_US + i,
                                 .id = id,
                                 .type = "t",
                                 .key = "t",
                                 .body = body,
                                 .body_len = sizeof(body)};
        ck_assert_int_eq(spool_append(s, &ev), 0);
    }
    ck_assert_int_eq(spool_confirm(s, 8), 0);

    struct eventlog_replay_result res;
    struct eventlog_filter all = {0};
    ck_assert_int_eq(eventlog_replay(s, &all, NULL, &res), 1);
    ck_assert_ptr_nonnull(strstr(res.why, "half the spool's cap"));
    ck_assert_uint_gt(res.replayed, 0);
    ck_assert_uint_lt(res.replayed, 8);
    ck_assert_int_eq(res.resume_us, T0_US + (int64_t)res.replayed);
    ck_assert_uint_ge(spool_unconfirmed_bytes(s), (1u << 20) / 2);
    ck_assert_uint_eq(spool_last_seq(s), 8 + res.replayed);
    spool_close(s);
}
END_TEST

Suite *eventlog_suite(void)
{
    Suite *s = suite_create("eventlog");
    TCase *tc = tcase_create("eventlog");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_unchecked_fixture(tc, make_root, scratch_root_remove);
    tcase_add_test(tc, since_reads_rfc3339_times_and_spans);
    tcase_add_test(tc, the_filter_takes_time_and_type);
    tcase_add_test(tc, a_tail_line_wraps_the_event_as_it_is);
    tcase_add_test(tc, replay_appends_the_matching_history_once);
    tcase_add_test(tc, replay_stops_when_asked_and_says_where_to_resume);
    tcase_add_test(tc, replay_keeps_half_the_cap_for_live_traffic);
    suite_add_tcase(s, tc);
    return s;
}
