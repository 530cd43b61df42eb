/*
 * control.c: flips and reloads against a real routes.conf in a temporary
 * directory and a real spool, so each case checks what an operator would
 * see afterwards: the file on disk, the table in force, the install hook's
 * calls, the outcome, the audit entries and the strangler.route.changed
 * events read back from the spool.
 */
#include "unit.h"
#include "proxy/control.h"
#include "scratch.h"

#include "common/buf.h"
#include "common/clock.h"
#include "interceptors/spool.h"
#include "proxy/config.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENT_TYPE "strangler.route.changed"

/* A routes.conf as people keep it: comments, a blank line, columns lined
 * up, options and a trailing comment after an action. stock-read is on
 * line 8, orders on 9, everything on 10; ROUTES_WITH puts its action. */
#define ROUTES_WITH(stock_read_action)                                                             \
    "# routes for the control tests\n"                                                             \
    "events   amqp://127.0.0.1:5672/ source=urn:strangler:test\n"                                  \
    "upstream legacy  http://127.0.0.1:8000/RPC2\n"                                                \
    "upstream svc     http://127.0.0.1:9001/rpc\n"                                                 \
    "upstream other   http://127.0.0.1:9002/rpc\n"                                                 \
    "\n"                                                                                           \
    "# name          match                                   action      options\n"                \
    "route stock-read  xmlrpc stock.get header X-Tenant=acme -> " stock_read_action                \
    " intercept  # moving\n"                                                                       \
    "route orders      xmlrpc orders.*  -> legacy\n"                                               \
    "route everything  *                -> legacy\n"

static const char ROUTES[] = ROUTES_WITH("legacy    ");

/* ROUTES after stock-read was flipped to svc: only the action changed, and
 * the blanks after it grew so that "intercept" kept its column. */
static const char ROUTES_SVC[] = ROUTES_WITH("svc       ");

#define STOCK_READ_LINE  8
#define STOCK_READ_MATCH "xmlrpc stock.get header X-Tenant=acme"

/* ---- the fixture: a scratch directory, a spool, a control ---- */

/* One scratch root for the test case (scratch.h), a directory in it for
 * each test. */
static void make_root(void)
{
    scratch_root_make("control");
}

/* What the install hook saw. */
struct installs {
    int calls;
    struct config *old; /* pointers of the last call, compared, never read */
    struct config *next;
    const char *route; /* whose action in `next` to record */
    char action[64];   /* "" when `next` has no such route */
};

static struct {
    char dir[PATH_MAX];
    char path[PATH_MAX + 300];
    const char *text; /* what the test last wrote to path; NULL: removed */
    char *texts[8];   /* textf()'s strings, freed by teardown */
    size_t ntexts;
    struct spool *spool;
    struct control *ctl;
    struct installs inst;
} fx;

static void count_install(void *arg, struct config *old, struct config *next)
{
    struct installs *in = arg;
    in->calls++;
    in->old = old;
    in->next = next;
    const struct route *r = config_find_route(next, in->route);
    snprintf(in->action, sizeof(in->action), "%s", r ? r->action : "");
}

static void setup(void)
{
    char err[256];
    memset(&fx, 0, sizeof(fx));
    scratch_dir("t", fx.dir, sizeof(fx.dir));
    char spool_dir[PATH_MAX + 16];
    snprintf(spool_dir, sizeof(spool_dir), "%s/spool", fx.dir);
    fx.spool = spool_open(spool_dir, NULL, err, sizeof(err));
    ck_assert_msg(fx.spool != NULL, "%s", err);
    fx.inst.route = "stock-read";
}

static void teardown(void)
{
    control_free(fx.ctl);
    spool_close(fx.spool);
    for (size_t i = 0; i < fx.ntexts; i++)
        free(fx.texts[i]);
    memset(&fx, 0, sizeof(fx));
}

/* Writes `text` to fx.path and remembers it as what the file holds. */
static void put_routes(const char *text)
{
    scratch_write(fx.path, text, 0644);
    fx.text = text;
}

/* Removes fx.path, and remembers that it is gone. */
static void remove_routes(void)
{
    ck_assert_int_eq(unlink(fx.path), 0);
    fx.text = NULL;
}

/* Writes `text` as fx.dir/name and loads it. */
static struct config *load_routes(const char *name, const char *text)
{
    struct buf errors = BUF_INIT;
    snprintf(fx.path, sizeof(fx.path), "%s/%s", fx.dir, name);
    put_routes(text);
    struct config *cfg = config_load(fx.path, &errors);
    ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
    buf_dispose(&errors);
    return cfg;
}

/* Writes `text` as fx.dir/name, loads it and puts a control on it that
 * spools its events and counts installs. */
static void start_named(const char *name, const char *text)
{
    fx.ctl = control_new(load_routes(name, text), fx.spool, count_install, &fx.inst);
}

static void start(void)
{
    start_named("routes.conf", ROUTES);
}

/* What printf would make of `format`: a string that lasts until the
 * test's teardown. */
static const char *textf(const char *format, ...) __attribute__((format(printf, 1, 2)));

static const char *textf(const char *format, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    ck_assert_uint_lt(fx.ntexts, sizeof(fx.texts) / sizeof(fx.texts[0]));
    va_start(ap, format);
    buf_vappendf(&b, format, ap);
    va_end(ap);
    buf_cstr(&b);
    fx.texts[fx.ntexts] = buf_steal(&b);
    return fx.texts[fx.ntexts++];
}

/* ---- checks ---- */

static const char *action_of(const char *route)
{
    const struct route *r = config_find_route(control_config(fx.ctl), route);
    ck_assert_msg(r != NULL, "no route %s in force", route);
    return r->action;
}

static void assert_change(const struct control_change *c, const char *route, const char *before,
                          const char *after)
{
    ck_assert_str_eq(c->route, route);
    ck_assert_pstr_eq(c->before, before);
    ck_assert_pstr_eq(c->after, after);
}

/* The install hook was called `calls` times, the last time from `old` to
 * `next`, where stock-read has `action`. */
static void assert_installed(int calls, struct config *old, struct config *next, const char *action)
{
    ck_assert_int_eq(fx.inst.calls, calls);
    ck_assert_ptr_eq(fx.inst.old, old);
    ck_assert_ptr_eq(fx.inst.next, next);
    ck_assert_str_eq(fx.inst.action, action);
}

/* The audit entry of `route`, which must exist, credited to `by`, with
 * `before` (NULL: the route was added) as its action before. */
static const struct control_audit *assert_audit(const char *route, const char *by,
                                                const char *before)
{
    const struct control_audit *a = control_last_change(fx.ctl, route);
    ck_assert_msg(a != NULL, "no audit entry for %s", route);
    ck_assert_str_eq(a->by, by);
    ck_assert_pstr_eq(a->before, before);
    return a;
}

static uint64_t events_spooled(void)
{
    return spool_last_seq(fx.spool);
}

/* Reads every event spooled so far into out (parsed), checking what the
 * spool itself records of each; returns how many there were. */
static size_t read_events(json_object **out, size_t max, int64_t *time_us)
{
    struct spool_event ev;
    struct spool_cursor *cur = spool_cursor_new(fx.spool, 0);
    size_t n = 0;
    int rc;
    while ((rc = spool_cursor_next(cur, &ev)) == 1) {
        ck_assert_uint_lt(n, max);
        ck_assert_uint_eq(ev.seq, n + 1);
        ck_assert_str_eq(ev.type, EVENT_TYPE);
        ck_assert_str_eq(ev.key, EVENT_TYPE);
        char *text = strndup(ev.body, ev.body_len);
        out[n] = json_tokener_parse(text);
        ck_assert_msg(out[n] != NULL, "not JSON: %s", text);
        free(text);
        json_object *id;
        ck_assert(json_object_object_get_ex(out[n], "id", &id));
        ck_assert_str_eq(json_object_get_string(id), ev.id);
        if (time_us != NULL)
            time_us[n] = ev.time_us;
        n++;
    }
    ck_assert_int_eq(rc, 0);
    spool_cursor_free(cur);
    return n;
}

static void free_events(json_object **evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_object_put(evs[i]);
}

/* The string member `key` of o; NULL when it is JSON null. It must exist. */
static const char *member(json_object *o, const char *key)
{
    json_object *v;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member '%s'", key);
    if (v == NULL)
        return NULL;
    ck_assert_msg(json_object_is_type(v, json_type_string), "'%s' is not a string", key);
    return json_object_get_string(v);
}

/* Checks a strangler.route.changed CloudEvent, envelope and data. */
static void assert_event(json_object *ev, const char *route, const char *match, const char *before,
                         const char *after, const char *by, const char *reason, int line)
{
    json_object *data, *v;
    ck_assert_str_eq(member(ev, "specversion"), "1.0");
    ck_assert_str_eq(member(ev, "type"), EVENT_TYPE);
    ck_assert_str_eq(member(ev, "source"), "urn:strangler:test");
    ck_assert_str_eq(member(ev, "subject"), route);
    ck_assert_str_eq(member(ev, "datacontenttype"), "application/json");
    ck_assert_uint_eq(strlen(member(ev, "id")), 36);
    ck_assert_uint_eq(strlen(member(ev, "time")), CLOCK_RFC3339_LEN);
    ck_assert(json_object_object_get_ex(ev, "data", &data));
    ck_assert(json_object_is_type(data, json_type_object));
    ck_assert_int_eq(json_object_object_length(data), 8);
    ck_assert_str_eq(member(data, "route"), route);
    ck_assert_str_eq(member(data, "match"), match);
    ck_assert_pstr_eq(member(data, "before"), before);
    ck_assert_pstr_eq(member(data, "after"), after);
    ck_assert_str_eq(member(data, "by"), by);
    ck_assert_str_eq(member(data, "reason"), reason);
    ck_assert_str_eq(member(data, "config"), fx.path);
    ck_assert(json_object_object_get_ex(data, "line", &v));
    ck_assert(json_object_is_type(v, json_type_int));
    ck_assert_int_eq(json_object_get_int(v), line);
}

/* Nothing was applied: the very same snapshot in force, stock-read still
 * on legacy, and no install, no event, no audit entry. */
static void assert_nothing_applied(struct config *cfg)
{
    ck_assert_ptr_eq(control_config(fx.ctl), cfg);
    ck_assert_str_eq(action_of("stock-read"), "legacy");
    ck_assert_int_eq(fx.inst.calls, 0);
    ck_assert_uint_eq(events_spooled(), 0);
    ck_assert_ptr_null(control_last_change(fx.ctl, "stock-read"));
}

/* Whatever was refused left everything as it was: the file (what the test
 * last wrote, and the very same file as `st`; or still no file at all) and
 * all assert_nothing_applied() checks. */
static void assert_untouched(struct config *cfg, const struct stat *st)
{
    struct stat now;
    if (fx.text == NULL) {
        ck_assert_int_eq(access(fx.path, F_OK), -1);
    } else {
        scratch_assert_file(fx.path, fx.text);
        ck_assert_int_eq(stat(fx.path, &now), 0);
        ck_assert_uint_eq(now.st_ino, st->st_ino);
    }
    assert_nothing_applied(cfg);
}

/* Flips `route` to `action` as "ops" (a reload by "ops" when route is
 * NULL) and expects a refusal: -1 with `status`, exactly `error` and
 * exactly `messages` (either unchecked when NULL), no changes, and
 * everything untouched, the audit of `route` included. */
static void expect_refused(const char *route, const char *action, int status, const char *error,
                           const char *messages)
{
    struct control_outcome o;
    struct stat st = {0};
    struct config *cfg = control_config(fx.ctl);
    if (fx.text != NULL)
        ck_assert_int_eq(stat(fx.path, &st), 0);
    control_outcome_init(&o);
    if (route != NULL)
        ck_assert_int_eq(control_flip(fx.ctl, "ops", route, action, &o), -1);
    else
        ck_assert_int_eq(control_reload(fx.ctl, "ops", &o), -1);
    ck_assert_int_eq(o.status, status);
    if (error != NULL)
        ck_assert_str_eq(buf_cstr(&o.error), error);
    if (messages != NULL)
        ck_assert_str_eq(buf_cstr(&o.messages), messages);
    ck_assert_uint_eq(o.nchanges, 0);
    ck_assert_ptr_null(o.changes);
    control_outcome_dispose(&o);
    assert_untouched(cfg, &st);
    if (route != NULL)
        ck_assert_ptr_null(control_last_change(fx.ctl, route));
}

/* Flips `route` to `action` as `by` and expects it done: 200, no error,
 * and the one change from `before` to `after`. */
static void expect_flipped(const char *by, const char *route, const char *action,
                           const char *before, const char *after)
{
    struct control_outcome o;
    control_outcome_init(&o);
    ck_assert_int_eq(control_flip(fx.ctl, by, route, action, &o), 0);
    ck_assert_int_eq(o.status, 200);
    ck_assert_str_eq(buf_cstr(&o.error), "");
    ck_assert_uint_eq(o.nchanges, 1);
    assert_change(&o.changes[0], route, before, after);
    control_outcome_dispose(&o);
}

/* ---- outcomes ---- */

START_TEST(outcome_lifecycle)
{
    struct control_outcome o;
    memset(&o, 0xff, sizeof(o));
    control_outcome_init(&o);
    ck_assert_int_eq(o.status, 200);
    ck_assert_uint_eq(o.error.len, 0);
    ck_assert_uint_eq(o.messages.len, 0);
    ck_assert_ptr_null(o.changes);
    ck_assert_uint_eq(o.nchanges, 0);
    control_outcome_dispose(&o);
    control_outcome_dispose(&o); /* twice is harmless */
    control_free(NULL);
}
END_TEST

/* ---- flips ---- */

START_TEST(flip_writes_the_file_then_installs_and_audits)
{
    struct control_outcome o;
    json_object *evs[4];
    int64_t when[4];
    start();
    struct config *old = control_config(fx.ctl);
    int64_t t0 = clock_realtime_us();

    control_outcome_init(&o);
    ck_assert_int_eq(control_flip(fx.ctl, "ops", "stock-read", "svc", &o), 0);
    int64_t t1 = clock_realtime_us();
    ck_assert_int_eq(o.status, 200);
    ck_assert_str_eq(buf_cstr(&o.error), "");
    /* the edited text was parsed like a reload: its warnings come back */
    ck_assert_str_eq(buf_cstr(&o.messages),
                     textf("%s:5: warning: upstream other is not used by any route\n", fx.path));
    ck_assert_uint_eq(o.nchanges, 1);
    assert_change(&o.changes[0], "stock-read", "legacy", "svc");
    control_outcome_dispose(&o);

    /* on disk: the original, byte for byte, but for the action */
    scratch_assert_file(fx.path, ROUTES_SVC);

    /* in force: a new snapshot, read from the new text */
    struct config *now = control_config(fx.ctl);
    ck_assert_ptr_ne(now, old);
    ck_assert_str_eq(action_of("stock-read"), "svc");
    ck_assert_str_eq(config_find_route(now, "stock-read")->upstream->name, "svc");
    ck_assert_str_eq(action_of("orders"), "legacy");
    ck_assert_uint_eq(now->text_len, strlen(ROUTES_SVC));
    ck_assert_str_eq(now->text, ROUTES_SVC);

    /* installed once, old -> new */
    assert_installed(1, old, now, "svc");

    /* audited */
    const struct control_audit *a = assert_audit("stock-read", "ops", "legacy");
    ck_assert_int_ge(a->at_us, t0);
    ck_assert_int_le(a->at_us, t1);

    /* announced */
    ck_assert_uint_eq(read_events(evs, 4, when), 1);
    assert_event(evs[0], "stock-read", STOCK_READ_MATCH, "legacy", "svc", "ops", "flip",
                 STOCK_READ_LINE);
    ck_assert_int_eq(when[0], a->at_us);
    char at[CLOCK_RFC3339_LEN + 1];
    clock_format_rfc3339(at, a->at_us);
    ck_assert_str_eq(member(evs[0], "time"), at);
    free_events(evs, 1);
}
END_TEST

START_TEST(flip_to_the_current_action_changes_nothing)
{
    struct control_outcome o;
    struct stat before, after;
    start();
    struct config *cfg = control_config(fx.ctl);
    ck_assert_int_eq(stat(fx.path, &before), 0);

    /* as written, and with blanks that normalise to it */
    const char *same[] = {"legacy", "  legacy\t"};
    for (size_t i = 0; i < 2; i++) {
        control_outcome_init(&o);
        ck_assert_int_eq(control_flip(fx.ctl, "ops", "stock-read", same[i], &o), 0);
        ck_assert_int_eq(o.status, 200);
        ck_assert_str_eq(buf_cstr(&o.error), "");
        ck_assert_uint_eq(o.messages.len, 0);
        ck_assert_uint_eq(o.nchanges, 0);
        control_outcome_dispose(&o);
    }
    ck_assert_int_eq(stat(fx.path, &after), 0);
    ck_assert_uint_eq(after.st_ino, before.st_ino);
    ck_assert_int_eq(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
    ck_assert_int_eq(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    assert_untouched(cfg, &before);
}
END_TEST

START_TEST(flip_of_an_unknown_route_is_404)
{
    start();
    expect_refused("nope", "svc", 404, "no route named 'nope'", NULL);
}
END_TEST

START_TEST(flip_to_an_unknown_upstream_is_400_with_the_line)
{
    start();
    expect_refused(
        "stock-read", "x", 400, "route stock-read: the action 'x' was refused",
        textf("%s:%d: route stock-read: unknown upstream 'x'\n", fx.path, STOCK_READ_LINE));
}
END_TEST

START_TEST(flip_refuses_what_is_not_an_action)
{
    start();
    /* an option smuggled in through the action field, on a route that has
     * options of its own and on one that has none */
    expect_refused("stock-read", "legacy intercept", 400,
                   "route stock-read: 'legacy intercept' is not an action (expected an "
                   "upstream name)",
                   NULL);
    expect_refused("stock-read", "svc intercept=orders.changed", 400,
                   "route stock-read: 'svc intercept=orders.changed' is not an action "
                   "(expected an upstream name)",
                   NULL);
    /* two words, the second not an option either */
    expect_refused("stock-read", "svc other", 400,
                   "route stock-read: 'svc other' is not an action (expected an upstream name)",
                   NULL);
    /* what would end or break the line */
    const char *bad[] = {"svc#x", "#",       "svc # comment", "svc\n",
                         "svc\r", "s\x01vc", "svc\x7f",       "\x1b[0m"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused("stock-read", bad[i], 400, "an action cannot hold control characters or '#'",
                       NULL);
    /* nothing */
    expect_refused("stock-read", "", 400, "an action is 1 to 512 characters", NULL);
    expect_refused("stock-read", " ", 400, "the action is empty", NULL);
    expect_refused("stock-read", " \t \t", 400, "the action is empty", NULL);
    /* too long to be one */
    char longest[514];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    expect_refused("stock-read", longest, 400, "an action is 1 to 512 characters", NULL);
}
END_TEST

START_TEST(flip_normalises_blanks_in_the_action)
{
    json_object *evs[2];
    start();
    expect_flipped("ops", "stock-read", "  svc \t ", "legacy", "svc");
    scratch_assert_file(fx.path, ROUTES_SVC);
    ck_assert_str_eq(action_of("stock-read"), "svc");
    ck_assert_int_eq(fx.inst.calls, 1);
    ck_assert_str_eq(fx.inst.action, "svc");
    ck_assert_uint_eq(read_events(evs, 2, NULL), 1);
    assert_event(evs[0], "stock-read", STOCK_READ_MATCH, "legacy", "svc", "ops", "flip",
                 STOCK_READ_LINE);
    free_events(evs, 1);
}
END_TEST

/* text with the one occurrence of `from` replaced by `to`; free() it. */
static char *subst(const char *text, const char *from, const char *to)
{
    const char *hit = strstr(text, from);
    ck_assert_msg(hit != NULL, "'%s' not found", from);
    ck_assert_msg(strstr(hit + 1, from) == NULL, "'%s' found twice", from);
    struct buf b = BUF_INIT;
    buf_append(&b, text, (size_t)(hit - text));
    buf_append_str(&b, to);
    buf_append_str(&b, hit + strlen(from));
    return buf_steal(&b);
}

START_TEST(flip_after_an_edit_on_disk_is_409_until_reloaded)
{
    struct control_outcome o;
    start();
    char *edited = subst(ROUTES, "orders.*  -> legacy", "orders.*  -> other");
    put_routes(edited);

    /* the operator's edit is neither overwritten nor applied */
    expect_refused("stock-read", "svc", 409,
                   textf("%s was changed on disk since it was loaded; reload it first "
                         "(POST /reload), then flip",
                         fx.path),
                   NULL);
    ck_assert_str_eq(action_of("orders"), "legacy");

    /* once reloaded, the same flip goes through, on top of the edit */
    control_outcome_init(&o);
    ck_assert_int_eq(control_reload(fx.ctl, "SIGHUP", &o), 0);
    ck_assert_uint_eq(o.nchanges, 1);
    assert_change(&o.changes[0], "orders", "legacy", "other");
    control_outcome_dispose(&o);
    ck_assert_int_eq(fx.inst.calls, 1);

    expect_flipped("ops", "stock-read", "svc", "legacy", "svc");
    char *both = subst(ROUTES_SVC, "orders.*  -> legacy", "orders.*  -> other");
    scratch_assert_file(fx.path, both);
    ck_assert_str_eq(action_of("stock-read"), "svc");
    ck_assert_str_eq(action_of("orders"), "other");
    ck_assert_int_eq(fx.inst.calls, 2);
    ck_assert_uint_eq(events_spooled(), 2);
    free(both);
    free(edited);
}
END_TEST

START_TEST(flip_when_the_file_is_gone_is_500)
{
    start();
    remove_routes();
    expect_refused("stock-read", "svc", 500, textf("%s: %s", fx.path, strerror(ENOENT)), NULL);
}
END_TEST

/* A failed atomic write at `step` with errno `err`: refused with 500,
 * nothing applied, the file as it was. */
static void expect_write_failure(const char *step, int err)
{
    expect_refused("stock-read", "svc", 500,
                   textf("the flip was not applied: %s: %s: %s", fx.path, step, strerror(err)),
                   NULL);
}

START_TEST(flip_into_a_read_only_directory_is_500)
{
    /* root writes into a 0500 directory regardless; the next test makes
     * the write fail for root too */
    if (geteuid() == 0)
        return;
    start();
    ck_assert_int_eq(chmod(fx.dir, 0500), 0);
    expect_write_failure("create temporary file", EACCES);
    ck_assert_int_eq(chmod(fx.dir, 0700), 0);
}
END_TEST

START_TEST(flip_that_cannot_create_the_temporary_is_500)
{
    /* ".<name>.XXXXXX" is 8 bytes longer than the name: past NAME_MAX, so
     * the write fails even for root, after the file was read and checked */
    char name[251];
    memset(name, 'r', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    start_named(name, ROUTES);
    expect_write_failure("create temporary file", ENAMETOOLONG);
}
END_TEST

START_TEST(flip_works_without_a_spool_or_a_hook)
{
    fx.ctl = control_new(load_routes("routes.conf", ROUTES), NULL, NULL, NULL);
    expect_flipped("ops", "stock-read", "svc", "legacy", "svc");
    scratch_assert_file(fx.path, ROUTES_SVC);
    ck_assert_str_eq(action_of("stock-read"), "svc");
    ck_assert_ptr_nonnull(control_last_change(fx.ctl, "stock-read"));
    ck_assert_uint_eq(events_spooled(), 0);
}
END_TEST

/* ---- reloads ---- */

START_TEST(reload_installs_and_announces_each_change)
{
    struct control_outcome o;
    json_object *evs[8];
    start();
    struct config *old = control_config(fx.ctl);
    /* stock-read moves, orders goes, inventory comes */
    char *a = subst(ROUTES, "-> legacy     intercept", "-> svc        intercept");
    char *b = subst(a, "route orders      xmlrpc orders.*  -> legacy\n",
                    "route inventory   xmlrpc inventory.* -> other\n");
    put_routes(b);

    int64_t t0 = clock_realtime_us();
    control_outcome_init(&o);
    ck_assert_int_eq(control_reload(fx.ctl, "SIGHUP", &o), 0);
    ck_assert_int_eq(o.status, 200);
    ck_assert_str_eq(buf_cstr(&o.error), "");
    ck_assert_uint_eq(o.messages.len, 0); /* every upstream is used now */
    ck_assert_uint_eq(o.nchanges, 3);
    assert_change(&o.changes[0], "stock-read", "legacy", "svc");
    assert_change(&o.changes[1], "inventory", NULL, "other");
    assert_change(&o.changes[2], "orders", "legacy", NULL);
    control_outcome_dispose(&o);

    struct config *now = control_config(fx.ctl);
    ck_assert_ptr_ne(now, old);
    ck_assert_uint_eq(now->nroutes, 3);
    ck_assert_str_eq(now->text, b);
    ck_assert_str_eq(action_of("stock-read"), "svc");
    ck_assert_str_eq(action_of("inventory"), "other");
    ck_assert_ptr_null(config_find_route(now, "orders"));
    scratch_assert_file(fx.path, b); /* a reload reads, never writes */

    assert_installed(1, old, now, "svc");

    ck_assert_int_ge(assert_audit("inventory", "SIGHUP", NULL)->at_us, t0);
    assert_audit("orders", "SIGHUP", "legacy");
    assert_audit("stock-read", "SIGHUP", "legacy");
    ck_assert_ptr_null(control_last_change(fx.ctl, "everything"));

    /* a removed route is described as it stood, from the old table */
    ck_assert_uint_eq(read_events(evs, 8, NULL), 3);
    assert_event(evs[0], "stock-read", STOCK_READ_MATCH, "legacy", "svc", "SIGHUP", "reload",
                 STOCK_READ_LINE);
    assert_event(evs[1], "inventory", "xmlrpc inventory.*", NULL, "other", "SIGHUP", "reload", 9);
    assert_event(evs[2], "orders", "xmlrpc orders.*", "legacy", NULL, "SIGHUP", "reload", 9);
    free_events(evs, 3);
    free(a);
    free(b);
}
END_TEST

/* Issue 3 review: a reload that widens a match moves methods as surely as
 * a flip, so it is a change too, with the former match in its event. */
START_TEST(issue3_reload_that_changes_a_match_is_a_change)
{
    struct control_outcome o;
    json_object *evs[4], *data;
    start();
    char *b = subst(ROUTES, "xmlrpc orders.*  -> legacy", "xmlrpc order*    -> legacy");
    put_routes(b);
    control_outcome_init(&o);
    ck_assert_int_eq(control_reload(fx.ctl, "ops", &o), 0);
    ck_assert_uint_eq(o.nchanges, 1);
    assert_change(&o.changes[0], "orders", "legacy", "legacy");
    ck_assert_str_eq(o.changes[0].match_before, "xmlrpc orders.*");
    control_outcome_dispose(&o);
    ck_assert_uint_eq(read_events(evs, 4, NULL), 1);
    ck_assert(json_object_object_get_ex(evs[0], "data", &data));
    ck_assert_str_eq(member(data, "match"), "xmlrpc order*");
    ck_assert_str_eq(member(data, "match_before"), "xmlrpc orders.*");
    assert_audit("orders", "ops", "legacy");
    free_events(evs, 1);
    free(b);
}
END_TEST

START_TEST(reload_of_an_unchanged_file_installs_without_changes)
{
    struct control_outcome o;
    start();
    struct config *old = control_config(fx.ctl);
    control_outcome_init(&o);
    ck_assert_int_eq(control_reload(fx.ctl, "ops", &o), 0);
    ck_assert_uint_eq(o.nchanges, 0);
    /* an accepted file's warnings */
    ck_assert_str_eq(buf_cstr(&o.messages),
                     textf("%s:4: warning: upstream svc is not used by any route\n"
                           "%s:5: warning: upstream other is not used by any route\n",
                           fx.path, fx.path));
    control_outcome_dispose(&o);
    assert_installed(1, old, control_config(fx.ctl), "legacy");
    ck_assert_uint_eq(events_spooled(), 0);
    ck_assert_ptr_null(control_last_change(fx.ctl, "stock-read"));
}
END_TEST

START_TEST(reload_of_a_bad_file_keeps_the_table)
{
    start();
    struct config *cfg = control_config(fx.ctl);
    char *bad = subst(ROUTES, "orders.*  -> legacy", "orders.*  -> nope");
    put_routes(bad);

    /* refused, with the file's errors; the running table, the file with
     * its errors and everything else as they were */
    expect_refused(NULL, NULL, 400, textf("%s has errors; the running table stays", fx.path),
                   textf("%s:9: route orders: unknown upstream 'nope'\n", fx.path));
    ck_assert_str_eq(cfg->text, ROUTES);
    ck_assert_str_eq(action_of("orders"), "legacy");
    ck_assert_ptr_null(control_last_change(fx.ctl, "orders"));
    free(bad);
}
END_TEST

START_TEST(reload_of_a_missing_file_keeps_the_table)
{
    start();
    remove_routes();
    expect_refused(NULL, NULL, 400, NULL,
                   textf("%s:0: cannot open: %s\n", fx.path, strerror(ENOENT)));
}
END_TEST

/* ---- audit ---- */

START_TEST(last_change_follows_each_route)
{
    json_object *evs[4];
    start();
    /* never changed: no entry, for a known route or an unknown name */
    ck_assert_ptr_null(control_last_change(fx.ctl, "stock-read"));
    ck_assert_ptr_null(control_last_change(fx.ctl, "orders"));
    ck_assert_ptr_null(control_last_change(fx.ctl, "nope"));

    expect_flipped("alice", "stock-read", "svc", "legacy", "svc");
    ck_assert_ptr_null(control_last_change(fx.ctl, "orders"));
    int64_t first = assert_audit("stock-read", "alice", "legacy")->at_us;

    /* and back: the entry is replaced, not added to */
    expect_flipped("bob", "stock-read", "legacy", "svc", "legacy");
    scratch_assert_file(fx.path, ROUTES);
    ck_assert_int_ge(assert_audit("stock-read", "bob", "svc")->at_us, first);
    ck_assert_ptr_null(control_last_change(fx.ctl, "orders"));

    /* another route gets its own entry */
    expect_flipped("carol", "orders", "other", "legacy", "other");
    assert_audit("orders", "carol", "legacy");
    assert_audit("stock-read", "bob", "svc");

    ck_assert_int_eq(fx.inst.calls, 3);
    ck_assert_uint_eq(read_events(evs, 4, NULL), 3);
    assert_event(evs[0], "stock-read", STOCK_READ_MATCH, "legacy", "svc", "alice", "flip",
                 STOCK_READ_LINE);
    assert_event(evs[1], "stock-read", STOCK_READ_MATCH, "svc", "legacy", "bob", "flip",
                 STOCK_READ_LINE);
    assert_event(evs[2], "orders", "xmlrpc orders.*", "legacy", "other", "carol", "flip", 9);
    free_events(evs, 3);
}
END_TEST

Suite *control_suite(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("control");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_unchecked_fixture(tc, make_root, scratch_root_remove);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, flip_writes_the_file_then_installs_and_audits);
    tcase_add_test(tc, flip_to_the_current_action_changes_nothing);
    tcase_add_test(tc, flip_of_an_unknown_route_is_404);
    tcase_add_test(tc, flip_to_an_unknown_upstream_is_400_with_the_line);
    tcase_add_test(tc, flip_refuses_what_is_not_an_action);
    tcase_add_test(tc, flip_normalises_blanks_in_the_action);
    tcase_add_test(tc, flip_after_an_edit_on_disk_is_409_until_reloaded);
    tcase_add_test(tc, flip_when_the_file_is_gone_is_500);
    tcase_add_test(tc, flip_into_a_read_only_directory_is_500);
    tcase_add_test(tc, flip_that_cannot_create_the_temporary_is_500);
    tcase_add_test(tc, flip_works_without_a_spool_or_a_hook);
    tcase_add_test(tc, reload_installs_and_announces_each_change);
    tcase_add_test(tc, issue3_reload_that_changes_a_match_is_a_change);
    tcase_add_test(tc, reload_of_an_unchanged_file_installs_without_changes);
    tcase_add_test(tc, reload_of_a_bad_file_keeps_the_table);
    tcase_add_test(tc, reload_of_a_missing_file_keeps_the_table);
    tcase_add_test(tc, last_change_follows_each_route);
    tcase_add_test(tc, outcome_lifecycle);
    suite_add_tcase(s, tc);
    return s;
}
