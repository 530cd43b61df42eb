#include "unit.h"
#include "proxy/adminctl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the pure formatters ------------------------------------------------- */

static const char two_routes[] =
    "[{\"name\": \"stock-read\", \"line\": 12, \"match\": \"xmlrpc stock.get\","
    " \"conditions\": [\"header X-Tenant=acme\"], \"action\": \"stock-svc\","
    " \"upstream\": \"stock-svc\", \"kind\": \"json\", \"intercept\": false, \"event_type\": null,"
    " \"counters\": {\"requests\": 10, \"faults\": 1, \"errors\": 0, \"events\": 3},"
    " \"changed\": null},\n"
    " {\"name\": \"everything\", \"line\": 14, \"match\": \"*\", \"conditions\": [],"
    " \"action\": \"legacy\", \"upstream\": \"legacy\", \"kind\": \"xmlrpc\", \"intercept\": true,"
    " \"event_type\": \"orders.changed\","
    " \"counters\": {\"requests\": 1234, \"faults\": 0, \"errors\": 2, \"events\": 0},"
    " \"changed\": null}]\n";

/* Tables are wider than 100 columns; clang-format would split the lines
 * where their alignment could no longer be checked by eye. */
// clang-format off
static const char two_routes_table[] =
    "ROUTE       MATCH                                  ACTION     REQUESTS  FAULTS  ERRORS  EVENTS\n"
    "stock-read  xmlrpc stock.get header X-Tenant=acme  stock-svc        10       1       0       3\n"
    "everything  *                                      legacy         1234       0       2       0\n";
// clang-format on

/* Formats json (a C string) as a routes table; returns the text or NULL. */
static char *routes_table(const char *json)
{
    struct buf out = BUF_INIT;
    if (adminctl_format_routes(json, strlen(json), &out) != 0) {
        ck_assert_uint_eq(out.len, 0);
        buf_dispose(&out);
        return NULL;
    }
    return buf_steal(&out);
}

START_TEST(routes_table_has_aligned_columns)
{
    char *t = routes_table(two_routes);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, two_routes_table);
    free(t);
}
END_TEST

START_TEST(routes_table_widens_for_long_names_and_numbers)
{
    char *t = routes_table(
        "[{\"name\": \"a-route-with-a-really-long-name\", \"match\": \"http POST /api/*\","
        " \"action\": \"shadow legacy stock-svc readonly\","
        " \"counters\": {\"requests\": 12345678901, \"faults\": 7, \"errors\": 1000000,"
        " \"events\": 5}},"
        " {\"name\": \"b\", \"match\": \"*\", \"action\": \"legacy\","
        " \"counters\": {\"requests\": 0, \"faults\": 0, \"errors\": 0, \"events\": 0}}]");
    ck_assert_ptr_nonnull(t);
    // clang-format off
    ck_assert_str_eq(t,
        "ROUTE                            MATCH             ACTION                               REQUESTS  FAULTS   ERRORS  EVENTS\n"
        "a-route-with-a-really-long-name  http POST /api/*  shadow legacy stock-svc readonly  12345678901       7  1000000       5\n"
        "b                                *                 legacy                                      0       0        0       0\n");
    // clang-format on
    free(t);
}
END_TEST

START_TEST(routes_table_notes_flipped_routes)
{
    char *t = routes_table(
        "[{\"name\": \"stock-read\", \"match\": \"xmlrpc stock.get\", \"action\": \"stock-svc\","
        " \"counters\": {\"requests\": 10, \"faults\": 1, \"errors\": 0, \"events\": 3},"
        " \"changed\": {\"at\": \"2026-11-21T10:00:00.000Z\", \"by\": \"ops\","
        " \"before\": \"legacy\"}},"
        " {\"name\": \"rest\", \"match\": \"*\", \"action\": \"legacy\","
        " \"counters\": {\"requests\": 2, \"faults\": 0, \"errors\": 0, \"events\": 0}}]");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t,
                     "ROUTE       MATCH             ACTION     REQUESTS  FAULTS  ERRORS  EVENTS\n"
                     "stock-read  xmlrpc stock.get  stock-svc        10       1       0       3"
                     "  (changed by ops at 2026-11-21T10:00:00.000Z, was legacy)\n"
                     "rest        *                 legacy            2       0       0       0\n");
    free(t);
}
END_TEST

START_TEST(routes_table_tolerates_missing_members)
{
    /* An older or newer proxy may leave members out; blanks and zeros then. */
    char *t = routes_table("[{\"name\": \"a\"}]");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "ROUTE  MATCH  ACTION  REQUESTS  FAULTS  ERRORS  EVENTS\n"
                        "a                            0       0       0       0\n");
    free(t);

    t = routes_table(" [ ] \n");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "ROUTE  MATCH  ACTION  REQUESTS  FAULTS  ERRORS  EVENTS\n");
    free(t);
}
END_TEST

START_TEST(routes_table_counts_columns_not_bytes)
{
    /* "café" is 5 bytes but 4 columns; an escape sequence is neutralised. */
    char *t =
        routes_table("[{\"name\": \"caf\\u00e9\", \"match\": \"*\", \"action\": \"x\"},"
                     " {\"name\": \"evil\\u001b[2J\", \"match\": \"\\u009b\", \"action\": \"y\"}]");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "ROUTE     MATCH  ACTION  REQUESTS  FAULTS  ERRORS  EVENTS\n"
                        "caf\xc3\xa9      *      x              0       0       0       0\n"
                        "evil?[2J  ?      y              0       0       0       0\n");
    free(t);
}
END_TEST

START_TEST(routes_table_refuses_what_is_not_a_route_list)
{
    static const char *const bad[] = {
        "",
        "not json",
        "{\"name\": \"a\"}",
        "[1]",
        "[{}]",
        "[{\"name\": 5}]",
        "[{\"name\": \"a\", \"counters\": {\"requests\": \"ten\"}}]",
        "[{\"name\": \"a\", \"counters\": [1, 2]}]",
        "[{\"name\": \"a\", \"conditions\": [7]}]",
        "[{\"name\": \"a\", \"changed\": {\"before\": 1}}]",
        "[{\"name\": \"a\"}] trailing",
        "[{\"name\": \"a\"}",
        "[{\"name\": \"\xff\"}]",
        "[{'name': 'a'}]",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf out = BUF_INIT;
        buf_append_str(&out, "kept");
        ck_assert_msg(adminctl_format_routes(bad[i], strlen(bad[i]), &out) == -1, "accepted %s",
                      bad[i]);
        ck_assert_str_eq(buf_cstr(&out), "kept");
        buf_dispose(&out);
    }
    ck_assert_int_eq(adminctl_format_routes(NULL, 0, &(struct buf)BUF_INIT), -1);
}
END_TEST

/* ---- methods ------------------------------------------------------------- */

/* GET /methods as admin_write_methods() writes it (proxy/admin.c). */
#define METHOD_JSON(name, calls, faults, errors, new_calls, legacy_calls, share, p50, p99, route,  \
                    mode, side, upstream)                                                          \
    "{\"method\":" name ",\"calls\":" #calls ",\"faults\":" #faults ",\"errors\":" #errors         \
    ",\"new_calls\":" #new_calls ",\"legacy_calls\":" #legacy_calls ",\"new_share\":" share        \
    ",\"latency_ms\":{\"p50\":" p50 ",\"p99\":" p99 ",\"max\":2000.0},\"bytes_in\":1000,"          \
    "\"bytes_out\":2000,\"first_seen\":\"2026-11-21T10:00:01.000Z\","                              \
    "\"last_seen\":\"2026-11-21T10:59:59.000Z\",\"last_route\":" route ",\"route\":" route         \
    ",\"mode\":" mode ",\"side\":" side ",\"upstream\":" upstream "}"

#define M_STOCK                                                                                    \
    METHOD_JSON("\"stock.get\"", 1200, 3, 1, 900, 296, "0.7525083612040134", "1.25", "12.5",       \
                "\"stock-read\"", "\"direct\"", "\"new\"", "\"stock-svc\"")
#define M_ORDERS                                                                                   \
    METHOD_JSON("\"orders.list\"", 250, 0, 10, 0, 240, "0.0", "150.0", "1234.5", "\"everything\"", \
                "\"direct\"", "\"legacy\"", "\"legacy\"")
#define M_NOWHERE                                                                                  \
    METHOD_JSON("\"x.y\"", 50, 0, 0, 0, 50, "0.0", "0.5", "0.5", "null", "null", "\"none\"", "null")

static const char three_methods[] =
    "{\"since\":\"2026-11-21T10:00:00.000Z\",\"now\":\"2026-11-21T11:00:00.000Z\","
    "\"max_methods\":5000,\"untracked_calls\":0,"
    "\"totals\":{\"calls\":1500,\"new_calls\":900,\"legacy_calls\":590,"
    "\"new_share\":0.6040268456375839},"
    "\"methods\":[" M_STOCK "," M_ORDERS "," M_NOWHERE "]}";

static char *methods_table(const char *json)
{
    struct buf out = BUF_INIT;
    if (adminctl_format_methods(json, strlen(json), &out) != 0) {
        buf_dispose(&out);
        return NULL;
    }
    return buf_steal(&out);
}

START_TEST(methods_table_has_the_share_and_aligned_columns)
{
    char *t = methods_table(three_methods);
    ck_assert_ptr_nonnull(t);
    // clang-format off
    ck_assert_str_eq(t,
        "60.4% of answered calls served by new services (900 new, 590 legacy; 1500 calls since 2026-11-21T10:00:00.000Z)\n"
        "METHOD       SIDE    ROUTE       CALLS  FAULTS  ERRORS  NEW%   P50MS    P99MS\n"
        "stock.get    new     stock-read   1200       3       1  75.3    1.25    12.50  last 2026-11-21T10:59:59.000Z\n"
        "orders.list  legacy  everything    250       0      10   0.0  150.00  1234.50  last 2026-11-21T10:59:59.000Z\n"
        "x.y          none    -              50       0       0   0.0    0.50     0.50  last 2026-11-21T10:59:59.000Z\n");
    // clang-format on
    free(t);
}
END_TEST

START_TEST(methods_table_says_how_many_calls_it_does_not_list)
{
    static const char json[] =
        "{\"since\":\"2026-11-21T10:00:00.000Z\",\"untracked_calls\":7,"
        "\"totals\":{\"calls\":0,\"new_calls\":0,\"legacy_calls\":0,\"new_share\":0.0},"
        "\"methods\":[]}";
    char *t = methods_table(json);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "0.0% of answered calls served by new services (0 new, 0 legacy; 0 calls "
                        "since 2026-11-21T10:00:00.000Z)\n"
                        "7 calls of methods beyond max_methods are not listed\n"
                        "METHOD  SIDE  ROUTE  CALLS  FAULTS  ERRORS  NEW%  P50MS  P99MS\n");
    free(t);
    /* One is enough to say so. */
    struct buf one = BUF_INIT;
    buf_append_str(&one, json);
    char *seven = strstr(one.data, "\"untracked_calls\":7");
    ck_assert_ptr_nonnull(seven);
    seven[strlen("\"untracked_calls\":")] = '1';
    t = methods_table(buf_cstr(&one));
    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(strstr(t, ")\n1 calls of methods beyond max_methods are not listed\n"));
    free(t);
    buf_dispose(&one);
    /* None untracked: no such line. */
    t = methods_table(three_methods);
    ck_assert_ptr_null(strstr(t, "not listed"));
    free(t);
}
END_TEST

#define M_EVIL                                                                                     \
    METHOD_JSON("\"evil\\u001b[2J\\n\\u009b.x\"", 1, 0, 0, 1, 0, "1.0", "1", "2", "\"r\"",         \
                "\"direct\"", "\"new\"", "\"s\"")
#define M_CAFE                                                                                     \
    METHOD_JSON("\"caf\\u00e9\"", 1, 0, 0, 1, 0, "1.0", "1", "2", "\"r\"", "\"direct\"",           \
                "\"new\"", "\"s\"")

START_TEST(methods_table_neutralises_control_characters)
{
    /* A method name comes from a client: an escape sequence in it must not
     * reach the terminal, and columns count characters, not bytes. */
    static const char json[] =
        "{\"since\":\"2026\\u001b[2J\",\"untracked_calls\":0,"
        "\"totals\":{\"calls\":2,\"new_calls\":2,\"legacy_calls\":0,\"new_share\":1.0},"
        "\"methods\":[" M_EVIL "," M_CAFE "]}";
    char *t = methods_table(json);
    ck_assert_ptr_nonnull(t);
    for (const char *p = t; *p; p++)
        ck_assert_msg((unsigned char)*p >= 0x20 || *p == '\n', "control character %#x in\n%s",
                      (unsigned char)*p, t);
    ck_assert_ptr_null(strstr(t, "\xc2\x9b"));
    // clang-format off
    ck_assert_str_eq(t,
        "100.0% of answered calls served by new services (2 new, 0 legacy; 2 calls since 2026?[2J)\n"
        "METHOD        SIDE  ROUTE  CALLS  FAULTS  ERRORS   NEW%  P50MS  P99MS\n"
        "evil?[2J??.x  new   r          1       0       0  100.0   1.00   2.00  last 2026-11-21T10:59:59.000Z\n"
        "caf\xc3\xa9          new   r          1       0       0  100.0   1.00   2.00  last 2026-11-21T10:59:59.000Z\n");
    // clang-format on
    free(t);
}
END_TEST

START_TEST(methods_table_tolerates_absent_optional_members)
{
    /* No since, no last_seen, no route or side: "?" and "-", no note. */
    static const char json[] =
        "{\"untracked_calls\":0,"
        "\"totals\":{\"calls\":1,\"new_calls\":0,\"legacy_calls\":1,\"new_share\":0},"
        "\"methods\":[{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p50\":0,\"p99\":0}}]}";
    char *t = methods_table(json);
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t, "0.0% of answered calls served by new services (0 new, 1 legacy; 1 calls "
                        "since ?)\n"
                        "METHOD  SIDE  ROUTE  CALLS  FAULTS  ERRORS  NEW%  P50MS  P99MS\n"
                        "a       -     -          0       0       0   0.0   0.00   0.00\n");
    free(t);
}
END_TEST

START_TEST(methods_table_refuses_what_is_not_a_methods_answer)
{
    static const char totals[] =
        "\"totals\":{\"calls\":1,\"new_calls\":1,\"legacy_calls\":0,\"new_share\":1.0}";
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"methods\":[]}",
        "{\"totals\":{\"calls\":1,\"new_calls\":1,\"legacy_calls\":0,\"new_share\":1.0}}",
        "{\"methods\":{}, \"totals\":{\"calls\":1,\"new_calls\":1,\"legacy_calls\":0,"
        "\"new_share\":1.0}}",
        "{\"methods\":[], \"totals\":[]}",
        "{\"methods\":[], \"totals\":{\"calls\":1,\"new_calls\":1,\"legacy_calls\":0}}",
        "{\"methods\":[], \"totals\":{\"calls\":\"1\",\"new_calls\":1,\"legacy_calls\":0,"
        "\"new_share\":1.0}}",
        "{\"methods\":[], \"totals\":{\"calls\":1,\"new_calls\":1,\"legacy_calls\":0,"
        "\"new_share\":\"all\"}}",
        "{\"methods\":[], \"since\":5, \"totals\":{\"calls\":1,\"new_calls\":1,"
        "\"legacy_calls\":0,\"new_share\":1.0}}",
        "{\"methods\":[], \"untracked_calls\":\"none\", \"totals\":{\"calls\":1,"
        "\"new_calls\":1,\"legacy_calls\":0,\"new_share\":1.0}}",
        "{\"methods\":[], \"totals\":{\"calls\":1,\"new_calls\":1,\"legacy_calls\":0,"
        "\"new_share\":1.0}} trailing",
        "{\"methods\":[], \"totals\":{\"calls\":1,\"new_calls\":1,\"legacy_calls\":0,"
        "\"new_share\":1.0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf out = BUF_INIT;
        ck_assert_msg(adminctl_format_methods(bad[i], strlen(bad[i]), &out) == -1, "accepted %s",
                      bad[i]);
        buf_dispose(&out);
    }
    /* Elements of "methods" that are no method. */
    static const char *const elements[] = {
        "1",
        "null",
        "{}",
        "{\"method\":5,\"new_share\":0,\"latency_ms\":{\"p50\":0,\"p99\":0}}",
        "{\"method\":\"a\",\"latency_ms\":{\"p50\":0,\"p99\":0}}",
        "{\"method\":\"a\",\"new_share\":0}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":[]}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p99\":0}}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p50\":0}}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p50\":\"1\",\"p99\":0}}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p50\":0,\"p99\":0},\"calls\":1.5}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p50\":0,\"p99\":0},\"side\":1}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p50\":0,\"p99\":0},\"route\":[]}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p50\":0,\"p99\":0},"
        "\"last_seen\":0}",
        "{\"method\":\"a\",\"new_share\":0,\"latency_ms\":{\"p50\":0,\"p99\":0},\"errors\":\"0\"}",
    };
    for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++) {
        struct buf doc = BUF_INIT, out = BUF_INIT;
        /* a good method first: the bad one is found wherever it is */
        buf_appendf(&doc,
                    "{%s,\"methods\":[{\"method\":\"ok\",\"new_share\":0,"
                    "\"latency_ms\":{\"p50\":0,\"p99\":0}},%s]}",
                    totals, elements[i]);
        ck_assert_msg(adminctl_format_methods(doc.data, doc.len, &out) == -1, "accepted %s",
                      doc.data);
        buf_dispose(&doc);
        buf_dispose(&out);
    }
    /* The good one alone is fine: what failed above was the bad one. */
    struct buf doc = BUF_INIT, out = BUF_INIT;
    buf_appendf(&doc,
                "{%s,\"methods\":[{\"method\":\"ok\",\"new_share\":0,"
                "\"latency_ms\":{\"p50\":0,\"p99\":0}}]}",
                totals);
    ck_assert_int_eq(adminctl_format_methods(doc.data, doc.len, &out), 0);
    buf_dispose(&doc);
    buf_dispose(&out);
    ck_assert_int_eq(adminctl_format_methods(NULL, 0, &out), -1);
    buf_dispose(&out);
}
END_TEST

START_TEST(json_is_printed_pretty)
{
    static const char in[] = "[{\"name\":\"a/b\",\"counters\":{\"requests\":1},\"changed\":null}]";
    struct buf out = BUF_INIT;
    ck_assert_int_eq(adminctl_format_json(in, strlen(in), &out), 0);
    ck_assert_str_eq(buf_cstr(&out), "[\n"
                                     "  {\n"
                                     "    \"name\": \"a/b\",\n"
                                     "    \"counters\": {\n"
                                     "      \"requests\": 1\n"
                                     "    },\n"
                                     "    \"changed\": null\n"
                                     "  }\n"
                                     "]\n");
    out.len = 0;
    ck_assert_int_eq(adminctl_format_json("{", 1, &out), -1);
    ck_assert_uint_eq(out.len, 0);
    buf_dispose(&out);
}
END_TEST

START_TEST(issue5_replay_says_how_many)
{
    static const struct {
        const char *json, *line;
    } cases[] = {
        {"{\"replayed\": 6}", "replayed 6 events: the publisher sends them again\n"},
        {"{\"replayed\": 1}", "replayed 1 event: the publisher sends it again\n"},
        {"{\"replayed\": 3, \"stopped\": \"full\", \"resume_since\": \"2026-11-21T10:00:00.000Z\"}",
         "replayed 3 events: the publisher sends them again\nstopped early: full\n"
         "resume with: strangler events replay --since 2026-11-21T10:00:00.000Z (and the same "
         "--type)\n"},
        {"{\"replayed\": 3, \"stopped\": \"full\"}", NULL},
        {"{\"replayed\": -1}", NULL},
        {"{\"replayed\": \"6\"}", NULL},
        {"[6]", NULL},
        {"six", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out = BUF_INIT;
        int rc = adminctl_format_replay(cases[i].json, strlen(cases[i].json), &out);
        if (cases[i].line != NULL) {
            ck_assert_int_eq(rc, strstr(cases[i].json, "stopped") != NULL ? 1 : 0);
            ck_assert_str_eq(buf_cstr(&out), cases[i].line);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_uint_eq(out.len, 0);
        }
        buf_dispose(&out);
    }
}
END_TEST

static char *flip_line(const char *json)
{
    struct buf out = BUF_INIT;
    if (adminctl_format_flip(json, strlen(json), &out) != 0) {
        ck_assert_uint_eq(out.len, 0);
        buf_dispose(&out);
        return NULL;
    }
    return buf_steal(&out);
}

START_TEST(flip_says_before_and_after)
{
    char *l = flip_line("{\"name\": \"stock-read\", \"line\": 12, \"match\": \"xmlrpc stock.get\","
                        " \"action\": \"stock-svc\", \"counters\": {\"requests\": 0},"
                        " \"changed\": {\"at\": \"2026-11-21T10:00:00.000Z\", \"by\": \"ops\","
                        " \"before\": \"legacy\"}}");
    ck_assert_str_eq(l, "stock-read: legacy -> stock-svc\n");
    free(l);

    l = flip_line("{\"name\": \"stock-read\", \"action\": \"shadow legacy stock-svc readonly\","
                  " \"changed\": {\"before\": \"legacy\"}}");
    ck_assert_str_eq(l, "stock-read: legacy -> shadow legacy stock-svc readonly\n");
    free(l);

    l = flip_line("{\"name\": \"stock-read\", \"action\": \"stock-svc\", \"changed\": null}");
    ck_assert_str_eq(l, "stock-read: now stock-svc\n");
    free(l);
}
END_TEST

START_TEST(flip_refuses_what_is_not_a_route)
{
    ck_assert_ptr_null(flip_line("[]"));
    ck_assert_ptr_null(flip_line("{\"name\": \"a\"}"));
    ck_assert_ptr_null(flip_line("{\"action\": \"b\"}"));
    ck_assert_ptr_null(flip_line("{\"name\": \"a\", \"action\": \"b\", \"changed\": \"yes\"}"));
    ck_assert_ptr_null(
        flip_line("{\"name\": \"a\", \"action\": \"b\", \"changed\": {\"before\": 1}}"));
    ck_assert_ptr_null(flip_line("ok"));
}
END_TEST

START_TEST(reload_lists_changes_and_warnings)
{
    static const char in[] =
        "{\"routes\": 4, \"upstreams\": 2,"
        " \"changed\": [{\"route\": \"stock-read\", \"before\": \"legacy\", \"after\": "
        "\"stock-svc\"},"
        " {\"route\": \"new-one\", \"before\": null, \"after\": \"legacy\"},"
        " {\"route\": \"old-one\", \"before\": \"legacy\", \"after\": null}],"
        " \"warnings\": [\"routes.conf:3: warning: admin: token=env:X: not set\"]}";
    struct buf out = BUF_INIT, warnings = BUF_INIT;
    ck_assert_int_eq(adminctl_format_reload(in, strlen(in), &out, &warnings), 0);
    ck_assert_str_eq(buf_cstr(&out), "reloaded: 4 routes, 2 upstreams\n"
                                     "  stock-read: legacy -> stock-svc\n"
                                     "  new-one: (new) -> legacy\n"
                                     "  old-one: legacy -> (removed)\n");
    ck_assert_str_eq(buf_cstr(&warnings), "routes.conf:3: warning: admin: token=env:X: not set\n");

    out.len = warnings.len = 0;
    static const char one[] =
        "{\"routes\": 1, \"upstreams\": 1, \"changed\": [], \"warnings\": []}";
    ck_assert_int_eq(adminctl_format_reload(one, strlen(one), &out, &warnings), 0);
    ck_assert_str_eq(buf_cstr(&out), "reloaded: 1 route, 1 upstream\n");
    ck_assert_uint_eq(warnings.len, 0);
    buf_dispose(&out);
    buf_dispose(&warnings);
}
END_TEST

START_TEST(reload_refuses_what_is_not_a_reload_answer)
{
    static const char *const bad[] = {
        "[]",
        "{\"upstreams\": 2}",
        "{\"routes\": \"4\", \"upstreams\": 2}",
        "{\"routes\": 4, \"upstreams\": 2, \"changed\": [{\"before\": \"a\"}]}",
        "{\"routes\": 4, \"upstreams\": 2, \"changed\": [1]}",
        "{\"routes\": 4, \"upstreams\": 2, \"warnings\": [1]}",
        "{\"routes\": 4, \"upstreams\": 2, \"warnings\": \"w\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf out = BUF_INIT, warnings = BUF_INIT;
        ck_assert_msg(adminctl_format_reload(bad[i], strlen(bad[i]), &out, &warnings) == -1,
                      "accepted %s", bad[i]);
        ck_assert_uint_eq(out.len, 0);
        ck_assert_uint_eq(warnings.len, 0);
        buf_dispose(&out);
        buf_dispose(&warnings);
    }
}
END_TEST

static char *error_text(long status, const char *body)
{
    struct buf out = BUF_INIT;
    adminctl_format_error(status, body, body != NULL ? strlen(body) : 0, &out);
    return buf_steal(&out);
}

START_TEST(refusals_print_the_error_and_its_messages)
{
    char *t = error_text(409, "{\"error\": \"routes.conf would not load\","
                              " \"messages\": [\"routes.conf:12: upstream 'nope' is not defined\","
                              " \"routes.conf:14: another\"]}");
    ck_assert_str_eq(t, "strangler: routes.conf would not load\n"
                        "routes.conf:12: upstream 'nope' is not defined\n"
                        "routes.conf:14: another\n");
    free(t);

    t = error_text(404, "{\"error\": \"no route named 'x'\"}");
    ck_assert_str_eq(t, "strangler: no route named 'x'\n");
    free(t);
}
END_TEST

START_TEST(refusals_from_something_else_show_its_first_line)
{
    char *t = error_text(502, "\n  <html><body>Bad Gateway</body></html>\r\nmore\n");
    ck_assert_str_eq(t, "strangler: the admin API answered HTTP 502: <html><body>Bad "
                        "Gateway</body></html>\n");
    free(t);

    t = error_text(500, "");
    ck_assert_str_eq(t, "strangler: the admin API answered HTTP 500\n");
    free(t);
    t = error_text(500, NULL);
    ck_assert_str_eq(t, "strangler: the admin API answered HTTP 500\n");
    free(t);

    t = error_text(400, "{\"message\": \"x\"}");
    ck_assert_str_eq(t, "strangler: the admin API answered HTTP 400: {\"message\": \"x\"}\n");
    free(t);

    /* A long line is cut, and never inside a UTF-8 sequence. */
    char body[300];
    memset(body, 'x', sizeof(body));
    memcpy(body + 199, "\xc3\xa9", 2);
    body[sizeof(body) - 1] = '\0';
    t = error_text(503, body);
    ck_assert_uint_eq(strlen(t), strlen("strangler: the admin API answered HTTP 503: ") + 199 + 1);
    ck_assert(t[strlen(t) - 2] == 'x');
    free(t);

    t = error_text(418, "tea\x1b[31m");
    ck_assert_str_eq(t, "strangler: the admin API answered HTTP 418: tea?[31m\n");
    free(t);
}
END_TEST

/* ---- the token file -------------------------------------------------------- */

/* Writes text to a new temporary file; returns its path (free it). */
static char *temp_file(const char *text)
{
    char *path = strdup("/tmp/strangler-adminctl-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int read_token(const char *text, char **secret, char *err, size_t err_size)
{
    char *path = temp_file(text);
    int rc = adminctl_read_token_file(path, secret, err, err_size);
    unlink(path);
    free(path);
    return rc;
}

START_TEST(token_file_gives_the_first_secret)
{
    static const char *const good[][2] = {
        {"s3cret\n", "s3cret"},
        {"s3cret", "s3cret"},
        {"# the admin token\n\n   \n  ops  s3cret  \r\n", "s3cret"},
        {"ops one\nci two\n", "one"},
        {"\tbare-one\t\nci two\n", "bare-one"},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char *secret = NULL, err[256] = "";
        ck_assert_msg(read_token(good[i][0], &secret, err, sizeof(err)) == 0, "%s", err);
        ck_assert_str_eq(secret, good[i][1]);
        free(secret);
    }
}
END_TEST

START_TEST(token_file_errors_name_the_file_not_the_secret)
{
    char *secret = NULL, err[256] = "";
    ck_assert_int_eq(read_token("# nothing\n\n", &secret, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ": the file holds no token"));
    ck_assert_int_eq(read_token("", &secret, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ": the file holds no token"));
    ck_assert_int_eq(read_token("# c\nops s3cret extra\n", &secret, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":2: expected SECRET or NAME SECRET"));
    ck_assert_ptr_null(strstr(err, "s3cret"));
    ck_assert_ptr_null(secret);

    char long_line[1100];
    memset(long_line, 'k', sizeof(long_line) - 2);
    long_line[sizeof(long_line) - 2] = '\n';
    long_line[sizeof(long_line) - 1] = '\0';
    ck_assert_int_eq(read_token(long_line, &secret, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":1: the line is longer than"));

    ck_assert_int_eq(
        adminctl_read_token_file("/nonexistent/strangler/token", &secret, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "/nonexistent/strangler/token: No such file or directory");
    ck_assert_ptr_null(secret);
}
END_TEST

/* ---- adminctl_main against a fake admin API ----------------------------- */

/* One canned answer on 127.0.0.1, to one connection; the request is kept. */
struct fake {
    int fd;
    char addr[64]; /* "127.0.0.1:PORT" */
    struct buf reply;
    struct buf request;
    pthread_t thread;
};

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1)
        return NULL;
    int c = accept(f->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t need = SIZE_MAX;
    while (f->request.len < need) {
        char chunk[4096];
        ssize_t n = recv(c, chunk, sizeof(chunk), 0);
        if (n <= 0)
            break;
        buf_append(&f->request, chunk, (size_t)n);
        const char *req = buf_cstr(&f->request);
        const char *end = strstr(req, "\r\n\r\n");
        if (end != NULL && need == SIZE_MAX) {
            const char *cl = strcasestr(req, "\r\nContent-Length:");
            size_t body = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            need = (size_t)(end - req) + 4 + body;
        }
    }
    ck_assert_int_eq(send(c, f->reply.data, f->reply.len, MSG_NOSIGNAL), (ssize_t)f->reply.len);
    close(c);
    return NULL;
}

static void fake_start(struct fake *f, const char *status_line, const char *body)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    memset(f, 0, sizeof(*f));
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(f->fd, 0);
    ck_assert_int_eq(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(f->fd, 4), 0);
    ck_assert_int_eq(getsockname(f->fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", ntohs(sin.sin_port));
    buf_appendf(&f->reply,
                "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                "Connection: close\r\n\r\n%s",
                status_line, strlen(body), body);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

/* Waits for the one exchange; returns the request as received. */
static const char *fake_finish(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->fd);
    return buf_cstr(&f->request);
}

static void fake_dispose(struct fake *f)
{
    buf_dispose(&f->reply);
    buf_dispose(&f->request);
}

static void slurp(FILE *f, struct buf *into)
{
    char chunk[4096];
    size_t n;
    rewind(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(into, chunk, n);
    buf_cstr(into);
    fclose(f);
}

/* Runs adminctl_main with stdout and stderr captured. argv ends in NULL. */
static int run(const char *config_path, char **argv, struct buf *out, struct buf *err)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    FILE *o = tmpfile(), *e = tmpfile();
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_nonnull(e);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    int rc = adminctl_main(config_path, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    out->len = err->len = 0;
    slurp(o, out);
    slurp(e, err);
    return rc;
}

#define SECRET "s3cret-do-not-print"

START_TEST(routes_sends_the_token_from_the_token_file)
{
    struct fake f;
    struct buf out = BUF_INIT, err = BUF_INIT;
    char *token = temp_file("# for the tests\nops " SECRET "\n");
    unsetenv("STRANGLER_ADMIN_TOKEN");
    setenv("STRANGLER_ADMIN_TOKEN", "from-the-environment", 1);
    fake_start(&f, "200 OK", two_routes);
    char *argv[] = {"routes", "--admin", f.addr, "--token-file", token, NULL};
    int rc = run("/nonexistent/routes.conf", argv, &out, &err);
    const char *req = fake_finish(&f);
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, buf_cstr(&err));
    ck_assert_str_eq(buf_cstr(&out), two_routes_table);
    ck_assert_uint_eq(err.len, 0);
    ck_assert_msg(strncmp(req, "GET /routes HTTP/1.1\r\n", 22) == 0, "%s", req);
    ck_assert_ptr_nonnull(strstr(req, "\r\nAuthorization: Bearer " SECRET "\r\n"));
    ck_assert_ptr_null(strstr(req, "Expect:"));
    unlink(token);
    free(token);
    fake_dispose(&f);
    buf_dispose(&out);
    buf_dispose(&err);
}
END_TEST

START_TEST(routes_json_prints_the_answer_pretty)
{
    struct fake f;
    struct buf out = BUF_INIT, err = BUF_INIT;
    unsetenv("STRANGLER_ADMIN_TOKEN");
    fake_start(&f, "200 OK", "[{\"name\":\"a\"}]");
    char *argv[] = {"routes", "--json", "--admin=", NULL};
    char admin[80];
    snprintf(admin, sizeof(admin), "--admin=%s", f.addr);
    argv[2] = admin;
    int rc = run("/nonexistent/routes.conf", argv, &out, &err);
    const char *req = fake_finish(&f);
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, buf_cstr(&err));
    ck_assert_str_eq(buf_cstr(&out), "[\n  {\n    \"name\": \"a\"\n  }\n]\n");
    /* No config and no token anywhere: no Authorization at all. */
    ck_assert_ptr_null(strstr(req, "Authorization"));
    fake_dispose(&f);
    buf_dispose(&out);
    buf_dispose(&err);
}
END_TEST

START_TEST(flip_puts_the_joined_action)
{
    struct fake f;
    struct buf out = BUF_INIT, err = BUF_INIT;
    setenv("STRANGLER_ADMIN_TOKEN", SECRET, 1);
    fake_start(&f, "200 OK",
               "{\"name\": \"a/b\", \"line\": 3, \"match\": \"*\", \"action\": \"shadow legacy "
               "stock-svc\", \"changed\": {\"at\": \"2026-11-21T10:00:00.000Z\", \"by\": "
               "\"admin\", \"before\": \"legacy\"}}");
    char *argv[] = {"flip", "a/b", "shadow", "--admin", f.addr, "legacy", "stock-svc", NULL};
    int rc = run("/nonexistent/routes.conf", argv, &out, &err);
    const char *req = fake_finish(&f);
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, buf_cstr(&err));
    ck_assert_str_eq(buf_cstr(&out), "a/b: legacy -> shadow legacy stock-svc\n");
    ck_assert_msg(strncmp(req, "PUT /routes/a%2Fb HTTP/1.1\r\n", 28) == 0, "%s", req);
    ck_assert_ptr_nonnull(strstr(req, "\r\nAuthorization: Bearer " SECRET "\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nContent-Type: application/json\r\n"));
    const char *body = strstr(req, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body + 4, "{\"action\": \"shadow legacy stock-svc\"}");
    ck_assert_ptr_null(strstr(buf_cstr(&out), SECRET));
    ck_assert_ptr_null(strstr(buf_cstr(&err), SECRET));
    fake_dispose(&f);
    buf_dispose(&out);
    buf_dispose(&err);
}
END_TEST

START_TEST(flip_refused_prints_the_messages_and_exits_1)
{
    struct fake f;
    struct buf out = BUF_INIT, err = BUF_INIT;
    setenv("STRANGLER_ADMIN_TOKEN", SECRET, 1);
    fake_start(&f, "409 Conflict",
               "{\"error\": \"the new routes.conf does not load\","
               " \"messages\": [\"routes.conf:12: route stock-read: no upstream 'nope'\"]}");
    char *argv[] = {"flip", "stock-read", "nope", "--admin", f.addr, NULL};
    int rc = run("/nonexistent/routes.conf", argv, &out, &err);
    fake_finish(&f);
    ck_assert_int_eq(rc, 1);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_str_eq(buf_cstr(&err), "strangler: the new routes.conf does not load\n"
                                     "routes.conf:12: route stock-read: no upstream 'nope'\n");
    fake_dispose(&f);
    buf_dispose(&out);
    buf_dispose(&err);
}
END_TEST

START_TEST(reload_uses_the_config_address_and_its_first_token)
{
    struct fake f;
    struct buf out = BUF_INIT, err = BUF_INIT, conf_text = BUF_INIT;
    unsetenv("STRANGLER_ADMIN_TOKEN");
    char *tokens = temp_file("ops " SECRET "\nci other-secret\n");
    fake_start(&f, "200 OK",
               "{\"routes\": 4, \"upstreams\": 2, \"changed\": [{\"route\": \"stock-read\","
               " \"before\": \"legacy\", \"after\": \"stock-svc\"}],"
               " \"warnings\": [\"routes.conf:3: warning: something\"]}");
    buf_appendf(&conf_text, "admin %s token=file:%s\n", f.addr, tokens);
    char *conf = temp_file(buf_cstr(&conf_text));
    char *argv[] = {"reload", NULL};
    int rc = run(conf, argv, &out, &err);
    const char *req = fake_finish(&f);
    ck_assert_msg(rc == 0, "rc %d, stderr: %s", rc, buf_cstr(&err));
    ck_assert_str_eq(buf_cstr(&out), "reloaded: 4 routes, 2 upstreams\n"
                                     "  stock-read: legacy -> stock-svc\n");
    ck_assert_str_eq(buf_cstr(&err), "routes.conf:3: warning: something\n");
    ck_assert_msg(strncmp(req, "POST /reload HTTP/1.1\r\n", 23) == 0, "%s", req);
    ck_assert_ptr_nonnull(strstr(req, "\r\nAuthorization: Bearer " SECRET "\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nContent-Length: 0\r\n"));
    unlink(conf);
    unlink(tokens);
    free(conf);
    free(tokens);
    fake_dispose(&f);
    buf_dispose(&out);
    buf_dispose(&err);
    buf_dispose(&conf_text);
}
END_TEST

START_TEST(unauthorized_without_a_token_says_how_to_send_one)
{
    struct fake f;
    struct buf out = BUF_INIT, err = BUF_INIT;
    unsetenv("STRANGLER_ADMIN_TOKEN");
    fake_start(&f, "401 Unauthorized", "{\"error\": \"a bearer token is required\"}");
    char *argv[] = {"routes", "--admin", f.addr, NULL};
    int rc = run("/nonexistent/routes.conf", argv, &out, &err);
    fake_finish(&f);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(buf_cstr(&err), "strangler: a bearer token is required\n"
                                     "strangler: no token was sent; pass --token-file PATH or "
                                     "set STRANGLER_ADMIN_TOKEN\n");
    fake_dispose(&f);
    buf_dispose(&out);
    buf_dispose(&err);
}
END_TEST

START_TEST(an_unreadable_answer_exits_3)
{
    struct fake f;
    struct buf out = BUF_INIT, err = BUF_INIT;
    unsetenv("STRANGLER_ADMIN_TOKEN");
    fake_start(&f, "200 OK", "<html>hello</html>");
    char *argv[] = {"routes", "--admin", f.addr, NULL};
    int rc = run("/nonexistent/routes.conf", argv, &out, &err);
    fake_finish(&f);
    ck_assert_int_eq(rc, 3);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "answered something unreadable (HTTP 200)"));
    fake_dispose(&f);
    buf_dispose(&out);
    buf_dispose(&err);
}
END_TEST

START_TEST(an_unreachable_api_exits_3)
{
    struct buf out = BUF_INIT, err = BUF_INIT, expected = BUF_INIT;
    /* A port that was just free: nothing listens there. */
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
    setenv("STRANGLER_ADMIN_TOKEN", SECRET, 1);
    char *argv[] = {"reload", "--admin", addr, NULL};
    int rc = run("/nonexistent/routes.conf", argv, &out, &err);
    ck_assert_int_eq(rc, 3);
    buf_appendf(&expected, "strangler: cannot reach the admin API at http://%s: ", addr);
    ck_assert_msg(strncmp(buf_cstr(&err), buf_cstr(&expected), expected.len) == 0, "%s",
                  buf_cstr(&err));
    ck_assert_ptr_null(strstr(buf_cstr(&err), SECRET));
    buf_dispose(&out);
    buf_dispose(&err);
    buf_dispose(&expected);
}
END_TEST

START_TEST(usage_errors_exit_2)
{
    static const char *const cases[][6] = {
        {"status"},
        {"routes", "--verbose"},
        {"routes", "extra"},
        {"reload", "--json"},
        {"flip"},
        {"flip", "stock-read"},
        {"flip", "stock-read", "legacy", "--admin"},
        {"routes", "--admin", "localhost"},
        {"routes", "--admin", "localhost:0"},
        {"routes", "--admin", "localhost:99999"},
        {"routes", "--admin", "evil.com/x:80"},
        {"routes", "--admin", "user@host:80"},
        {"routes", "--admin", "[::1]8081"},
        {"routes", "--admin", "::1:8081"},
        {"routes", "--admin", "a:1", "--admin", "b:2"},
        {"routes", "--token-file"},
        {"events"},
        {"events", "rewind"},
        {"events", "replay", "--since"},
        {"events", "replay", "--type", ""},
        {"events", "replay", "extra"},
        {"routes", "--since", "1h"},
    };
    struct buf out = BUF_INIT, err = BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[7] = {NULL};
        for (int k = 0; k < 6 && cases[i][k] != NULL; k++)
            argv[k] = (char *)cases[i][k];
        int rc = run("/nonexistent/routes.conf", argv, &out, &err);
        ck_assert_msg(rc == 2, "%s %s: rc %d", argv[0], argv[1] ? argv[1] : "", rc);
        ck_assert_msg(strncmp(buf_cstr(&err), "strangler: ", 11) == 0, "%s", buf_cstr(&err));
        ck_assert_ptr_nonnull(strstr(buf_cstr(&err), "usage:"));
    }
    char *none[] = {NULL};
    ck_assert_int_eq(run("/nonexistent/routes.conf", none, &out, &err), 2);

    char *help[] = {"flip", "--help", NULL};
    ck_assert_int_eq(run("/nonexistent/routes.conf", help, &out, &err), 0);
    ck_assert_str_eq(buf_cstr(&out) + strlen("usage:\n"), adminctl_usage);
    buf_dispose(&out);
    buf_dispose(&err);
}
END_TEST

START_TEST(a_config_that_does_not_load_exits_2)
{
    struct buf out = BUF_INIT, err = BUF_INIT;
    unsetenv("STRANGLER_ADMIN_TOKEN");
    char *argv[] = {"routes", NULL};
    ck_assert_int_eq(run("/nonexistent/routes.conf", argv, &out, &err), 2);
    ck_assert_msg(strncmp(buf_cstr(&err), "/nonexistent/routes.conf:", 25) == 0, "%s",
                  buf_cstr(&err));

    char *conf = temp_file("listen 127.0.0.1:8080\nbogus directive\n");
    ck_assert_int_eq(run(conf, argv, &out, &err), 2);
    ck_assert_msg(strstr(buf_cstr(&err), ":2: ") != NULL, "%s", buf_cstr(&err));
    /* With --admin too: the token would have come from this file. */
    char *with_admin[] = {"routes", "--admin", "127.0.0.1:1", NULL};
    ck_assert_int_eq(run(conf, with_admin, &out, &err), 2);
    unlink(conf);
    free(conf);

    conf = temp_file("listen 127.0.0.1:8080\n");
    ck_assert_int_eq(run(conf, argv, &out, &err), 2);
    ck_assert_msg(strstr(buf_cstr(&err), "has no admin line") != NULL, "%s", buf_cstr(&err));
    unlink(conf);
    free(conf);
    buf_dispose(&out);
    buf_dispose(&err);
}
END_TEST

Suite *adminctl_suite(void)
{
    Suite *s = suite_create("adminctl");
    TCase *tc = tcase_create("adminctl");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, routes_table_has_aligned_columns);
    tcase_add_test(tc, routes_table_widens_for_long_names_and_numbers);
    tcase_add_test(tc, routes_table_notes_flipped_routes);
    tcase_add_test(tc, routes_table_tolerates_missing_members);
    tcase_add_test(tc, routes_table_counts_columns_not_bytes);
    tcase_add_test(tc, routes_table_refuses_what_is_not_a_route_list);
    tcase_add_test(tc, methods_table_has_the_share_and_aligned_columns);
    tcase_add_test(tc, methods_table_says_how_many_calls_it_does_not_list);
    tcase_add_test(tc, methods_table_neutralises_control_characters);
    tcase_add_test(tc, methods_table_tolerates_absent_optional_members);
    tcase_add_test(tc, methods_table_refuses_what_is_not_a_methods_answer);
    tcase_add_test(tc, json_is_printed_pretty);
    tcase_add_test(tc, flip_says_before_and_after);
    tcase_add_test(tc, flip_refuses_what_is_not_a_route);
    tcase_add_test(tc, reload_lists_changes_and_warnings);
    tcase_add_test(tc, reload_refuses_what_is_not_a_reload_answer);
    tcase_add_test(tc, refusals_print_the_error_and_its_messages);
    tcase_add_test(tc, refusals_from_something_else_show_its_first_line);
    tcase_add_test(tc, token_file_gives_the_first_secret);
    tcase_add_test(tc, token_file_errors_name_the_file_not_the_secret);
    tcase_add_test(tc, routes_sends_the_token_from_the_token_file);
    tcase_add_test(tc, routes_json_prints_the_answer_pretty);
    tcase_add_test(tc, flip_puts_the_joined_action);
    tcase_add_test(tc, flip_refused_prints_the_messages_and_exits_1);
    tcase_add_test(tc, reload_uses_the_config_address_and_its_first_token);
    tcase_add_test(tc, unauthorized_without_a_token_says_how_to_send_one);
    tcase_add_test(tc, an_unreadable_answer_exits_3);
    tcase_add_test(tc, issue5_replay_says_how_many);
    tcase_add_test(tc, an_unreachable_api_exits_3);
    tcase_add_test(tc, usage_errors_exit_2);
    tcase_add_test(tc, a_config_that_does_not_load_exits_2);
    suite_add_tcase(s, tc);
    return s;
}
