#include "unit.h"
#include "proxy/config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct config *parse(const char *text, struct buf *errors)
{
    errors->len = 0;
    return config_parse("routes.conf", text, strlen(text), errors);
}

/* Parses text that must fail and checks that `message` is among the errors. */
static void expect_error(const char *text, const char *message)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse(text, &errors);
    ck_assert_msg(c == NULL, "accepted: %s", text);
    ck_assert_msg(strstr(buf_cstr(&errors), message) != NULL, "errors were:\n%s\nexpected: %s",
                  buf_cstr(&errors), message);
    buf_dispose(&errors);
}

static const char design_example[] =
    "listen   127.0.0.1:8080\n"
    "admin    127.0.0.1:8081\n"
    "workers  2\n"
    "upstream legacy     http://127.0.0.1:8000/RPC2              # kind=xmlrpc is the default\n"
    "upstream stock-svc  http://127.0.0.1:9001/rpc  kind=json timeout=2000\n"
    "events   amqp://guest:guest@127.0.0.1:5672/%2f exchange=strangler.events\n"
    "spool    ./var/spool\n"
    "\n"
    "# name        match                    -> action                         options\n"
    "route stock-read   xmlrpc stock.get     -> stock-svc\n"
    "route stock-write  xmlrpc stock.adjust  -> legacy                        intercept\n"
    "route orders       xmlrpc orders.*      -> legacy                        "
    "intercept=orders.changed\n"
    "route api          http POST /api/*     -> legacy\n"
    "route everything   *                    -> legacy\n";

START_TEST(the_design_example_parses)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse(design_example, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->listen.text, "127.0.0.1:8080");
    ck_assert_int_eq(c->workers, 2);
    ck_assert_int_eq(c->admin.enabled, 1);
    ck_assert_uint_eq(c->nupstreams, 2);
    ck_assert_str_eq(c->upstreams[0].kind, "xmlrpc");
    ck_assert_ptr_null(c->upstreams[0].adapter);
    ck_assert_str_eq(c->upstreams[0].base_path, "/RPC2");
    ck_assert_str_eq(c->upstreams[0].host_header, "127.0.0.1:8000");
    ck_assert_str_eq(c->upstreams[1].kind, "json");
    ck_assert_ptr_nonnull(c->upstreams[1].adapter);
    ck_assert_uint_eq(c->upstreams[1].timeout_ms, 2000);
    ck_assert_str_eq(c->upstreams[1].base_path, "/rpc");
    ck_assert_str_eq(c->events.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
    ck_assert_str_eq(c->events.exchange, "strangler.events");
    ck_assert_str_eq(c->spool_dir, "./var/spool");

    ck_assert_uint_eq(c->nroutes, 5);
    ck_assert_int_eq(c->routes[0].match, ROUTE_MATCH_XMLRPC);
    ck_assert_str_eq(c->routes[0].pattern, "stock.get");
    ck_assert_ptr_eq(c->routes[0].upstream, &c->upstreams[1]);
    ck_assert_int_eq(c->routes[0].intercept, 0);
    ck_assert_int_eq(c->routes[1].intercept, 1);
    ck_assert_ptr_null(c->routes[1].rule.type);
    ck_assert_str_eq(c->routes[2].rule.type, "orders.changed");
    ck_assert_int_eq(c->routes[3].match, ROUTE_MATCH_HTTP);
    ck_assert_str_eq(c->routes[3].http_method, "POST");
    ck_assert_str_eq(c->routes[3].pattern, "/api/");
    ck_assert_int_eq(c->routes[3].path_prefix, 1);
    ck_assert_int_eq(c->routes[4].match, ROUTE_MATCH_ANY);
    ck_assert_int_eq(c->routes[4].line, 14);
    ck_assert_int_eq(c->needs_params, 1);
    ck_assert_int_eq(c->has_xmlrpc_routes, 1);
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

START_TEST(defaults_and_limits)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse("upstream l http://127.0.0.1:8000\n"
                             "route all * -> l\n"
                             "max_body_size 2m\nclient_header_timeout 5s\nxml_max_depth 32\n",
                             &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->listen.text, "127.0.0.1:8080");
    ck_assert_int_eq(c->workers, 1);
    ck_assert_uint_eq(c->limits.max_body_size, 2 * 1024 * 1024);
    ck_assert_uint_eq(c->limits.client_header_timeout_ms, 5000);
    ck_assert_uint_eq(c->xr_limits.max_depth, 32);
    ck_assert_str_eq(c->upstreams[0].base_path, "");
    ck_assert_str_eq(c->upstreams[0].host_header, "127.0.0.1:8000");
    ck_assert_ptr_null(c->events.url);
    ck_assert_int_eq(c->needs_params, 0);
    ck_assert_int_eq(c->has_xmlrpc_routes, 0);
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

START_TEST(errors_name_file_and_line)
{
    expect_error("listen 127.0.0.1:8080\n\nbogus 1\n", "routes.conf:3: unknown directive 'bogus'");
    expect_error("listen 127.0.0.1:1\nlisten 127.0.0.1:2\n",
                 "routes.conf:2: listen is set twice (first on line 1)");
    expect_error("workers 0\n", "routes.conf:1: workers: 0 is out of range");
    expect_error("workers two\n", "routes.conf:1: workers: invalid number 'two'");
    expect_error("workers\n", "routes.conf:1: workers: expected 1 argument, got 0");
    expect_error("upstream a ftp://x\n", "routes.conf:1: upstream a: URL must start with http://");
    expect_error("upstream a http://127.0.0.1:1 kind=soap\n", "unknown kind 'soap'");
    expect_error("upstream a http://127.0.0.1:1 speed=9\n", "unknown option 'speed=9'");
    expect_error("upstream a http://127.0.0.1:1\nupstream a http://127.0.0.1:2\n",
                 "routes.conf:2: upstream a is defined twice");
    expect_error("upstream a http://127.0.0.1:1 timeout=soon\n", "invalid duration 'soon'");
    expect_error("route r * -> nowhere\n", "routes.conf:1: route r: unknown upstream 'nowhere'");
    expect_error("upstream a http://127.0.0.1:1\nroute r xmlrpc -> a\n", "route r: invalid match");
    expect_error("upstream a http://127.0.0.1:1\nroute r * a\n", "expected 'route NAME MATCH ->");
    expect_error("upstream a http://127.0.0.1:1\nroute r http get /x -> a\n",
                 "invalid HTTP method 'get'");
    expect_error("upstream a http://127.0.0.1:1\nroute r http GET x -> a\n",
                 "HTTP path must start with '/'");
    expect_error("upstream a http://127.0.0.1:1\nroute r * -> a loud\n",
                 "route r: unknown option 'loud'");
    expect_error("upstream a http://127.0.0.1:1\nroute r * -> a\nroute r * -> a\n",
                 "routes.conf:3: route r is defined twice (first on line 2)");
    expect_error("upstream j http://127.0.0.1:1 kind=json\nroute r http POST /x -> j\n",
                 "needs XML-RPC calls");
    expect_error("max_body_size 10q\n", "max_body_size: invalid size '10q'");
    expect_error("listen nowhere\n", "listen: invalid address 'nowhere'");
    expect_error("log_level verbose\n", "routes.conf:1: log_level: 'verbose' is not error");
    expect_error("upstream z http://127.0.0.1:0/\n", "upstream z: port 0 is not a port");
}
END_TEST

START_TEST(events_url_password_never_echoed)
{
    struct buf errors = BUF_INIT;
    ck_assert_ptr_null(parse("events http://user:s3cret@host/\n", &errors));
    ck_assert_ptr_null(strstr(buf_cstr(&errors), "s3cret"));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "routes.conf:1: events"));
    buf_dispose(&errors);
}
END_TEST

START_TEST(admin_needs_a_token_off_loopback)
{
    expect_error("admin 0.0.0.0:8081\n", "not a loopback address");
    expect_error("admin 127.0.0.1:8081 token=hunter2\n", "token must be env:VARIABLE or file:PATH");
    unsetenv("STRANGLER_TEST_MISSING_TOKEN");
    expect_error("admin 0.0.0.0:8081 token=env:STRANGLER_TEST_MISSING_TOKEN\n",
                 "routes.conf:1: admin: token=env:STRANGLER_TEST_MISSING_TOKEN: the environment "
                 "variable is not set");
    /* On loopback a missing token is a warning: the file still loads. */
    struct buf errors = BUF_INIT;
    struct config *c =
        parse("admin 127.0.0.1:8081 token=env:STRANGLER_TEST_MISSING_TOKEN\n", &errors);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(c->admin.token);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "routes.conf:1: warning: admin: token="));
    config_unref(c);

    setenv("STRANGLER_TEST_TOKEN", "letmein", 1);
    c = parse("admin 0.0.0.0:8081 token=env:STRANGLER_TEST_TOKEN\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->admin.token, "letmein");
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

START_TEST(issue2_empty_admin_token_file_is_refused)
{
    char path[] = "/tmp/strangler-token-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "\n", 1), 1);
    close(fd);
    struct buf text = BUF_INIT;
    buf_appendf(&text, "admin 0.0.0.0:8081 token=file:%s\n", path);
    expect_error(buf_cstr(&text), "the token is empty");
    unlink(path);
    buf_dispose(&text);
}
END_TEST

START_TEST(comments_only_at_token_start)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse("# a comment line\n"
                             "upstream a http://127.0.0.1:1   # trailing comment\n"
                             "route r xmlrpc a#b -> a\n",
                             &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->routes[0].pattern, "a#b");
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

START_TEST(every_error_is_reported_not_just_the_first)
{
    struct buf errors = BUF_INIT;
    ck_assert_ptr_null(parse("bogus\nworkers 0\nroute r * -> x\n", &errors));
    const char *text = buf_cstr(&errors);
    ck_assert_ptr_nonnull(strstr(text, "routes.conf:1:"));
    ck_assert_ptr_nonnull(strstr(text, "routes.conf:2:"));
    ck_assert_ptr_nonnull(strstr(text, "routes.conf:3:"));
    buf_dispose(&errors);
}
END_TEST

START_TEST(load_reports_a_missing_file)
{
    struct buf errors = BUF_INIT;
    ck_assert_ptr_null(config_load("/nonexistent/routes.conf", &errors));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "/nonexistent/routes.conf:0: cannot open"));
    buf_dispose(&errors);
}
END_TEST

START_TEST(references_keep_a_snapshot_alive)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse("upstream a http://127.0.0.1:1\nroute r * -> a\n", &errors);
    ck_assert_ptr_nonnull(c);
    struct config *again = config_ref(c);
    config_unref(c);
    ck_assert_str_eq(again->routes[0].name, "r"); /* still valid under ASan */
    config_unref(again);
    config_unref(NULL);
    buf_dispose(&errors);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, the_design_example_parses);
    tcase_add_test(tc, defaults_and_limits);
    tcase_add_test(tc, errors_name_file_and_line);
    tcase_add_test(tc, events_url_password_never_echoed);
    tcase_add_test(tc, admin_needs_a_token_off_loopback);
    tcase_add_test(tc, issue2_empty_admin_token_file_is_refused);
    tcase_add_test(tc, comments_only_at_token_start);
    tcase_add_test(tc, every_error_is_reported_not_just_the_first);
    tcase_add_test(tc, load_reports_a_missing_file);
    tcase_add_test(tc, references_keep_a_snapshot_alive);
    suite_add_tcase(s, tc);
    return s;
}
