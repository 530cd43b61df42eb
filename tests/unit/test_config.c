#include "unit.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "legacy-adapters/restmap.h"

#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
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
    ck_assert_uint_eq(c->admin.ntokens, 0);
    ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "routes.conf:1: warning: admin: token="));
    config_unref(c);

    setenv("STRANGLER_TEST_TOKEN", "letmein", 1);
    c = parse("admin 0.0.0.0:8081 token=env:STRANGLER_TEST_TOKEN\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_uint_eq(c->admin.ntokens, 1);
    ck_assert_str_eq(c->admin.tokens[0].name, "admin");
    ck_assert_str_eq(c->admin.tokens[0].secret, "letmein");
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
    expect_error(buf_cstr(&text), "the file holds no token");
    unlink(path);
    buf_dispose(&text);
}
END_TEST

/* A token file names each person's or tool's token, for the audit log. */
START_TEST(admin_token_file_names_each_token)
{
    char path[] = "/tmp/strangler-token-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char body[] = "# who  secret\nops s3cret-ops\n\ndeploy-bot  s3cret-bot\n";
    ck_assert_int_eq(write(fd, body, sizeof(body) - 1), (int)sizeof(body) - 1);
    close(fd);
    struct buf text = BUF_INIT, errors = BUF_INIT;
    buf_appendf(&text, "admin 0.0.0.0:8081 token=file:%s\n", path);
    struct config *c = parse(buf_cstr(&text), &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_uint_eq(c->admin.ntokens, 2);
    ck_assert_str_eq(c->admin.tokens[0].name, "ops");
    ck_assert_str_eq(c->admin.tokens[0].secret, "s3cret-ops");
    ck_assert_str_eq(c->admin.tokens[1].name, "deploy-bot");
    ck_assert_str_eq(c->admin.tokens[1].secret, "s3cret-bot");
    config_unref(c);

    fd = open(path, O_WRONLY | O_TRUNC);
    const char dup[] = "ops a\nops b\n";
    ck_assert_int_eq(write(fd, dup, sizeof(dup) - 1), (int)sizeof(dup) - 1);
    close(fd);
    expect_error(buf_cstr(&text), ":2: the name 'ops' is used twice");
    fd = open(path, O_WRONLY | O_TRUNC);
    const char three[] = "ops a b\n";
    ck_assert_int_eq(write(fd, three, sizeof(three) - 1), (int)sizeof(three) - 1);
    close(fd);
    expect_error(buf_cstr(&text), ":1: expected SECRET or NAME SECRET");
    unlink(path);
    buf_dispose(&text);
    buf_dispose(&errors);
}
END_TEST

/* Issue 3 review: the proxy and the CLI read token files alike (blanks
 * around words do not count), and a relative path is the config's
 * folder's, like the spool. */
START_TEST(issue3_token_files_ignore_blanks_and_resolve_beside_the_config)
{
    char dir[] = "/tmp/strangler-tokens-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct buf path = BUF_INIT, conf = BUF_INIT, errors = BUF_INIT;
    buf_appendf(&path, "%s/tokens", dir);
    FILE *f = fopen(buf_cstr(&path), "w");
    ck_assert_ptr_nonnull(f);
    fputs("  ops   s3cret \t\r\n", f);
    fclose(f);
    buf_appendf(&conf, "%s/routes.conf", dir);
    f = fopen(buf_cstr(&conf), "w");
    ck_assert_ptr_nonnull(f);
    fputs("admin 0.0.0.0:8081 token=file:tokens\n", f);
    fclose(f);
    struct config *c = config_load(buf_cstr(&conf), &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->admin.tokens[0].name, "ops");
    ck_assert_str_eq(c->admin.tokens[0].secret, "s3cret");
    config_unref(c);
    unlink(buf_cstr(&path));
    unlink(buf_cstr(&conf));
    rmdir(dir);
    buf_dispose(&path);
    buf_dispose(&conf);
    buf_dispose(&errors);
}
END_TEST

/* Issue 3 review: names travel in admin URLs, where "." and ".." fold. */
START_TEST(issue3_names_of_only_dots_are_refused)
{
    expect_error("upstream .. http://127.0.0.1:1\n", "upstream: invalid name '..'");
    expect_error("upstream l http://127.0.0.1:1\nroute . * -> l\n", "route: invalid name '.'");
    struct buf errors = BUF_INIT;
    struct config *c = parse("upstream l http://127.0.0.1:1\nroute a.b * -> l\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

/* The admin API is on loopback unless the line says otherwise. */
START_TEST(admin_address_defaults_to_loopback)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse("admin\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert(c->admin.enabled);
    ck_assert_str_eq(c->admin.addr.text, "127.0.0.1:8081");
    config_unref(c);
    setenv("STRANGLER_TEST_TOKEN", "letmein", 1);
    c = parse("admin token=env:STRANGLER_TEST_TOKEN\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->admin.addr.text, "127.0.0.1:8081");
    ck_assert_uint_eq(c->admin.ntokens, 1);
    config_unref(c);
    buf_dispose(&errors);
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

/* Parses text that must load, and returns its warnings. */
static void expect_warnings(const char *text, const char *expected)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse(text, &errors);
    ck_assert_msg(c != NULL, "refused: %s", buf_cstr(&errors));
    ck_assert_str_eq(buf_cstr(&errors), expected);
    config_unref(c);
    buf_dispose(&errors);
}

START_TEST(check_warns_about_routes_that_can_never_match)
{
    expect_warnings("upstream legacy http://127.0.0.1:8000\n"
                    "upstream svc http://127.0.0.1:9001 kind=json\n"
                    "route orders   xmlrpc orders.*          -> legacy\n"
                    "route create   xmlrpc orders.create     -> svc\n"
                    "route gets     xmlrpc *.get             -> svc\n"
                    "route stock    xmlrpc stock.get         -> svc\n"
                    "route acme     xmlrpc stock.* header X-Tenant=acme -> svc\n"
                    "route acme-eu  xmlrpc stock.put header X-Tenant=acme header X-Zone=eu -> svc\n"
                    "route api      http * /api/*            -> legacy\n"
                    "route api-v1   http GET /api/v1/*       -> legacy\n"
                    "route all-post http POST /*             -> legacy\n"
                    "route late     xmlrpc misc.ping         -> legacy\n"
                    "route rest     *                        -> legacy\n"
                    "route never    http GET /health         -> legacy\n",
                    "routes.conf:4: warning: route create can never match: route orders (line 3) "
                    "takes all it would\n"
                    "routes.conf:6: warning: route stock can never match: route gets (line 5) "
                    "takes all it would\n"
                    "routes.conf:8: warning: route acme-eu can never match: route acme (line 7) "
                    "takes all it would\n"
                    "routes.conf:10: warning: route api-v1 can never match: route api (line 9) "
                    "takes all it would\n"
                    "routes.conf:12: warning: route late can never match: route all-post (line "
                    "11) takes all it would\n"
                    "routes.conf:14: warning: route never can never match: route rest (line 13) "
                    "takes all it would\n");
    /* Narrower first is the right order: no warning. Conditions on the
     * earlier route keep the later one reachable. */
    expect_warnings("upstream legacy http://127.0.0.1:8000\n"
                    "route create   xmlrpc orders.create     -> legacy\n"
                    "route orders   xmlrpc orders.*          -> legacy\n"
                    "route acme     * header X-Tenant=acme   -> legacy\n"
                    "route api      http GET /api            -> legacy\n"
                    "route api2     http GET /api/*          -> legacy\n"
                    "route rest     *                        -> legacy\n",
                    "");
}
END_TEST

START_TEST(check_warns_about_unused_upstreams)
{
    expect_warnings("upstream legacy http://127.0.0.1:8000\n"
                    "upstream stock-svc http://127.0.0.1:9001 kind=json\n"
                    "upstream spare http://127.0.0.1:9002\n"
                    "route rest * -> legacy\n",
                    "routes.conf:2: warning: upstream stock-svc is not used by any route\n"
                    "routes.conf:3: warning: upstream spare is not used by any route\n");
}
END_TEST

START_TEST(route_conditions_and_actions_are_checked)
{
    expect_error("upstream l http://127.0.0.1:1\nroute r * header X-Tenant -> l\n",
                 "routes.conf:2: route r: invalid condition 'header X-Tenant' (expected header "
                 "NAME=VALUE)");
    expect_error("upstream l http://127.0.0.1:1\nroute r * header =x -> l\n",
                 "routes.conf:2: route r: invalid condition 'header =x'");
    expect_error("upstream l http://127.0.0.1:1\nroute r * header X(y)=1 -> l\n",
                 "routes.conf:2: route r: invalid header name 'X(y)'");
    expect_error("upstream l http://127.0.0.1:1\nroute r * header -> l\n",
                 "routes.conf:2: route r: invalid match");
    expect_error("upstream l http://127.0.0.1:1\n\nroute r xmlrpc a.* -> nope\n",
                 "routes.conf:3: route r: unknown upstream 'nope'");
}
END_TEST

/* A flip rewrites the action in place: the parser remembers its columns. */
START_TEST(routes_remember_where_their_action_is)
{
    static const char text[] = "upstream legacy http://127.0.0.1:8000\n"
                               "  route  stock-read\txmlrpc stock.get  ->   legacy   intercept\n";
    struct buf errors = BUF_INIT;
    struct config *c = parse(text, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    const struct route *r = config_find_route(c, "stock-read");
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(config_find_route(c, "stock"));
    ck_assert_str_eq(r->action, "legacy");
    const char *line = strchr(text, '\n') + 1;
    ck_assert_uint_eq(r->action_end - r->action_start, 6);
    ck_assert_int_eq(memcmp(line + r->action_start, "legacy", 6), 0);
    ck_assert_int_eq(r->line, 2);
    ck_assert_str_eq(c->text, text);
    struct buf m = BUF_INIT;
    config_describe_match(r, &m);
    ck_assert_str_eq(buf_cstr(&m), "xmlrpc stock.get");
    buf_dispose(&m);
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

/* map=METHOD:TEMPLATE: checked when the file is read, kept by the route
 * whatever its action, so a flip to the legacy and back keeps it. */
START_TEST(issue4_routes_take_one_map)
{
    static const char text[] =
        "upstream legacy http://127.0.0.1:8000/RPC2\n"
        "upstream stock-svc http://127.0.0.1:9001/api kind=json\n"
        "route stock-read xmlrpc stock.get -> stock-svc map=GET:/stock/{1}?w={2} intercept\n"
        "route stock-drop xmlrpc stock.drop -> legacy map=DELETE:/stock/{1}\n"
        "route everything * -> legacy\n";
    struct buf errors = BUF_INIT;
    struct config *c = parse(text, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(buf_cstr(&errors), "");
    const struct route *r = config_find_route(c, "stock-read");
    ck_assert_ptr_nonnull(r->map);
    ck_assert_str_eq(restmap_method(r->map), "GET");
    ck_assert_int_eq(r->intercept, 1);
    r = config_find_route(c, "stock-drop");
    ck_assert_ptr_nonnull(r->map);
    ck_assert_str_eq(restmap_method(r->map), "DELETE");
    ck_assert_ptr_null(r->upstream->adapter);
    ck_assert_ptr_null(config_find_route(c, "everything")->map);
    config_unref(c);
    buf_dispose(&errors);

    static const struct {
        const char *option, *message;
    } bad[] = {
        {"map=GET:/stock/{x}",
         "route stock-read: map=GET:/stock/{x}: '{x}' is not a parameter number (expected {1} to "
         "{64})"},
        {"map=FETCH:/stock/{1}", "route stock-read: map=FETCH:/stock/{1}: unknown method 'FETCH' "
                                 "(expected GET, POST, PUT, PATCH or DELETE)"},
        {"map=GET:stock/{1}", "route stock-read: map=GET:stock/{1}: the template must start with "
                              "'/'"},
        {"map=GET:/stock/{1", "route stock-read: map=GET:/stock/{1: unbalanced '{'"},
        {"map=GET", "route stock-read: map=GET: expected METHOD:TEMPLATE, e.g. GET:/stock/{1}"},
        {"map=", "route stock-read: map=: expected METHOD:TEMPLATE, e.g. GET:/stock/{1}"},
        {"map=GET:/stock/{1} map=PUT:/stock/{1}",
         "route stock-read: map= is set twice (a route has one map)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char conf[512], want[512];
        snprintf(conf, sizeof(conf),
                 "upstream stock-svc http://127.0.0.1:9001/api kind=json\n"
                 "# comment\n"
                 "\n"
                 "route stock-read xmlrpc stock.get -> stock-svc intercept %s\n",
                 bad[i].option);
        snprintf(want, sizeof(want), "routes.conf:4: %s\n", bad[i].message);
        expect_error(conf, want);
    }
}
END_TEST

START_TEST(issue5_spool_options_and_their_defaults)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse("spool ./s\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_int_eq(c->spool.fsync, SPOOL_FSYNC_BATCH);
    ck_assert_uint_eq(c->spool.fsync_interval_ms, 100);
    ck_assert_uint_eq(c->spool.max_bytes, 0); /* no events line: the spool is the sink */
    ck_assert_uint_eq(c->spool.retain_ms, 24ull * 3600 * 1000);
    ck_assert_int_eq(c->spool.full, SPOOL_FULL_SKIP);
    ck_assert_uint_eq(c->spool.segment_bytes, 64u << 20);
    config_unref(c);

    c = parse("events amqp://127.0.0.1/ \nspool ./s\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_uint_eq(c->spool.max_bytes, (uint64_t)2 << 30);
    config_unref(c);

    c = parse("spool ./s fsync=always max=3GB retain=7d full=refuse segment=1MB "
              "fsync_interval=5ms\n",
              &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_int_eq(c->spool.fsync, SPOOL_FSYNC_ALWAYS);
    ck_assert_uint_eq(c->spool.max_bytes, (uint64_t)3 << 30);
    ck_assert_uint_eq(c->spool.retain_ms, 7ull * 86400 * 1000);
    ck_assert_int_eq(c->spool.full, SPOOL_FULL_REFUSE);
    ck_assert_uint_eq(c->spool.segment_bytes, 1u << 20);
    ck_assert_uint_eq(c->spool.fsync_interval_ms, 5);
    config_unref(c);

    c = parse("spool ./s fsync=off retain=0\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_int_eq(c->spool.fsync, SPOOL_FSYNC_OFF);
    ck_assert_uint_eq(c->spool.retain_ms, 0);
    config_unref(c);
    buf_dispose(&errors);

    expect_error("spool ./s fsync=sometimes\n",
                 "routes.conf:1: fsync: 'sometimes' is not batch, always or off");
    expect_error("spool ./s full=drop\n", "routes.conf:1: full: 'drop' is not skip or refuse");
    expect_error("spool ./s max=1k\n", "routes.conf:1: max: 1k is out of range");
    expect_error("spool ./s retain=forever\n", "routes.conf:1: retain: invalid duration 'forever'");
}
END_TEST

START_TEST(issue5_routes_shape_their_events)
{
    static const char head[] = "upstream a http://127.0.0.1:1\n";
    struct buf errors = BUF_INIT;
    struct buf text = BUF_INIT;
    buf_appendf(&text,
                "%sroute r xmlrpc * -> a intercept=t.x key=k.y on=all redact=password\n"
                "route s * -> a intercept on=success\n",
                head);
    struct config *c = parse(buf_cstr(&text), &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->routes[0].rule.type, "t.x");
    ck_assert_str_eq(c->routes[0].rule.key, "k.y");
    ck_assert_int_eq(c->routes[0].rule.on_faults, 1);
    ck_assert_ptr_nonnull(c->routes[0].rule.redact);
    ck_assert_int_eq(c->routes[1].rule.on_faults, 0);
    ck_assert_ptr_null(c->routes[1].rule.redact);
    ck_assert_ptr_null(c->routes[1].rule.key);
    config_unref(c);

    static const struct {
        const char *options, *message;
    } bad[] = {
        {"key=k.x", "route r: key= and on= shape intercepted events: add intercept"},
        {"on=all", "route r: key= and on= shape intercepted events: add intercept"},
        {"intercept on=sometimes", "route r: on=sometimes: expected on=success"},
        {"intercept key=a/b", "route r: invalid routing key 'a/b'"},
        {"intercept redact=a,,b", "route r: redact=a,,b: "},
        {"intercept redact=a redact=b", "route r: redact= is set twice"},
        {"intercept key=a key=b", "route r: key is set twice"},
        {"intercept intercept=t", "route r: intercept is set twice"},
        {"intercept on=all on=success", "route r: on is set twice"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_dispose(&text);
        buf_appendf(&text, "%sroute r * -> a %s\n", head, bad[i].options);
        expect_error(buf_cstr(&text), bad[i].message);
    }
    buf_dispose(&text);
    buf_dispose(&errors);
}
END_TEST

START_TEST(issue6_dark_launch_actions_parse)
{
    static const char head[] = "upstream legacy http://127.0.0.1:1/RPC2\n"
                               "upstream svc http://127.0.0.1:2/rpc kind=json\n";
    struct buf errors = BUF_INIT, text = BUF_INIT;
    buf_appendf(&text,
                "%sroute a xmlrpc a.* -> shadow legacy svc readonly sample=25%% intercept "
                "ignore=result.updated_at,result.items[].price tolerance=1e-9 "
                "rollback=mismatches>1%%/10m\n"
                "route b xmlrpc b.* -> canary 12.5%% svc legacy sticky=param:1 "
                "rollback=errors>5%%/1m\n"
                "route c xmlrpc c.* -> canary 10%% svc legacy sticky=header:X-Customer\n"
                "route d xmlrpc d.* -> fallback svc legacy readonly\n"
                "route e * -> legacy\n",
                head);
    struct config *c = parse(buf_cstr(&text), &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(buf_cstr(&errors), "");
    const struct route *a = &c->routes[0], *b = &c->routes[1], *cr = &c->routes[2];
    const struct route *d = &c->routes[3], *e = &c->routes[4];
    const struct upstream_def *legacy = &c->upstreams[0], *svc = &c->upstreams[1];

    ck_assert_int_eq(a->mode, ROUTE_SHADOW);
    ck_assert_str_eq(a->action, "shadow legacy svc readonly sample=25%");
    ck_assert_ptr_eq(a->upstream, legacy);
    ck_assert_ptr_eq(a->second, svc);
    ck_assert_int_eq(a->readonly, 1);
    ck_assert_uint_eq(a->share_bp, 2500);
    ck_assert_int_eq(a->intercept, 1);
    ck_assert_str_eq(a->ignore[0], "result.updated_at");
    ck_assert_str_eq(a->ignore[1], "result.items[].price");
    ck_assert_ptr_null(a->ignore[2]);
    ck_assert(a->tolerance == 1e-9);
    ck_assert_int_eq(a->guard.enabled, 1);
    ck_assert_int_eq(a->guard.on_mismatches, 1);
    ck_assert_uint_eq(a->guard.threshold_bp, 100);
    ck_assert_uint_eq(a->guard.window_ms, 600000);
    ck_assert_ptr_eq(route_new_side(a), svc);
    ck_assert_ptr_eq(route_legacy_side(a), legacy);

    ck_assert_int_eq(b->mode, ROUTE_CANARY);
    ck_assert_uint_eq(b->share_bp, 1250);
    ck_assert_ptr_eq(b->second, svc);
    ck_assert_ptr_eq(b->upstream, legacy);
    ck_assert_int_eq(b->sticky, STICKY_PARAM);
    ck_assert_uint_eq(b->sticky_param, 1);
    ck_assert_int_eq(b->guard.on_mismatches, 0);
    ck_assert_uint_eq(b->guard.threshold_bp, 500);
    ck_assert_ptr_eq(route_new_side(b), svc);
    ck_assert_ptr_eq(route_legacy_side(b), legacy);
    ck_assert_int_eq(cr->sticky, STICKY_HEADER);
    ck_assert_str_eq(cr->sticky_header, "X-Customer");

    ck_assert_int_eq(d->mode, ROUTE_FALLBACK);
    ck_assert_ptr_eq(d->upstream, svc);
    ck_assert_ptr_eq(d->second, legacy);
    ck_assert_ptr_eq(route_new_side(d), svc);
    ck_assert_ptr_eq(route_legacy_side(d), legacy);

    ck_assert_int_eq(e->mode, ROUTE_DIRECT);
    ck_assert_ptr_eq(route_new_side(e), legacy);
    ck_assert_ptr_eq(route_legacy_side(e), legacy);
    config_unref(c);

    /* A flip's action is checked against the same grammar. */
    ck_assert(config_action_is_whole("shadow legacy svc readonly sample=5%"));
    ck_assert(config_action_is_whole("canary 5% svc legacy sticky=param:2"));
    ck_assert(config_action_is_whole("fallback svc legacy"));
    ck_assert(!config_action_is_whole("fallback svc legacy intercept"));
    ck_assert(!config_action_is_whole("svc readonly"));
    buf_dispose(&text);
    buf_dispose(&errors);
}
END_TEST

START_TEST(issue6_dark_launch_mistakes_are_named)
{
    static const char head[] = "upstream legacy http://127.0.0.1:1/RPC2\n"
                               "upstream svc http://127.0.0.1:2/rpc kind=json\n";
    static const struct {
        const char *route, *message;
    } bad[] = {
        {"route r xmlrpc r.* -> shadow legacy", "route r: expected 'shadow PRIMARY CANDIDATE"},
        {"route r xmlrpc r.* -> canary 10% svc", "route r: expected 'canary N% NEW REST"},
        {"route r xmlrpc r.* -> canary ten svc legacy", "route r: canary ten: expected a share"},
        {"route r xmlrpc r.* -> canary 101% svc legacy", "route r: canary 101%: expected a share"},
        {"route r xmlrpc r.* -> canary 0x10% svc legacy",
         "route r: canary 0x10%: expected a share"},
        {"route r xmlrpc r.* -> canary 1e1% svc legacy", "route r: canary 1e1%: expected a share"},
        {"route r xmlrpc r.* -> canary 1.234% svc legacy", "route r: canary 1.234%: expected"},
        {"route r xmlrpc r.* -> canary 5.% svc legacy", "route r: canary 5.%: expected a share"},
        {"route r xmlrpc r.* -> fallback svc legacy readonly rollback=errors>100%/1m",
         "route r: rollback=errors>100%/1m: expected"},
        {"route r xmlrpc r.* -> shadow legacy svc sample=half", "route r: sample=half: expected"},
        {"route r xmlrpc r.* -> canary 1% svc legacy sticky=cookie:x", "route r: sticky=cookie:x"},
        {"route r xmlrpc r.* -> canary 1% svc legacy sticky=param:0", "route r: sticky=param:0"},
        {"route r xmlrpc r.* -> shadow legacy nope", "route r: unknown upstream 'nope'"},
        {"route r xmlrpc r.* -> shadow svc svc", "route r: both sides are upstream svc"},
        {"route r xmlrpc r.* -> shadow legacy svc readonly readonly",
         "route r: readonly is set twice"},
        {"route r http GET /x -> fallback svc legacy readonly", "use an xmlrpc match"},
        {"route r xmlrpc r.* -> fallback svc legacy readonly tolerance=0.1", "only mean something"},
        {"route r xmlrpc r.* -> fallback svc legacy readonly rollback=errors>0%/1m",
         "route r: rollback=errors>0%/1m: expected"},
        {"route r xmlrpc r.* -> fallback svc legacy readonly rollback=errors>5%/10ms",
         "route r: rollback=errors>5%/10ms: expected"},
        {"route r xmlrpc r.* -> shadow legacy svc readonly ignore=result..x",
         "route r: ignore=result..x: "},
        {"route r xmlrpc r.* -> shadow legacy svc readonly tolerance=-1",
         "route r: tolerance=-1: expected"},
    };
    struct buf text = BUF_INIT;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_dispose(&text);
        buf_appendf(&text, "%s%s\n", head, bad[i].route);
        expect_error(buf_cstr(&text), bad[i].message);
    }
    expect_error("upstream shadow http://127.0.0.1:1\n", "'shadow' is a word of actions");
    expect_error("upstream readonly http://127.0.0.1:1\n", "'readonly' is a word of actions");
    buf_dispose(&text);
}
END_TEST

START_TEST(issue6_check_warns_about_shadows_and_fallbacks_that_write)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse("upstream legacy http://127.0.0.1:1/RPC2\n"
                             "upstream svc http://127.0.0.1:2/rpc kind=json\n"
                             "route s xmlrpc s.* -> shadow legacy svc\n"
                             "route f xmlrpc f.* -> fallback svc legacy\n",
                             &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "routes.conf:3: warning: route s: every call "
                                                    "is also sent to svc"));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "routes.conf:4: warning: route f: without "
                                                    "readonly a call svc did not answer"));
    /* svc is used, as a second side */
    ck_assert_ptr_null(strstr(buf_cstr(&errors), "not used by any route"));
    config_unref(c);

    /* Rolled back: the guard's options stay on the line, and only warn. */
    c = parse("upstream legacy http://127.0.0.1:1/RPC2\n"
              "route s xmlrpc s.* -> legacy rollback=errors>5%/1m tolerance=0.1\n",
              &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "routes.conf:2: warning: route s: ignore=, "
                                                    "tolerance= and rollback= do nothing"));
    config_unref(c);

    /* redact= on a route that raises no events only warns (a rolled-back
     * shadow keeps it on its line). */
    c = parse("upstream legacy http://127.0.0.1:1/RPC2\n"
              "route s xmlrpc s.* -> legacy redact=password\n",
              &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&errors), "routes.conf:2: warning: route s: redact= does "
                                                    "nothing"));
    config_unref(c);

    /* A shadow's mismatch events are redacted without intercept. */
    c = parse("upstream legacy http://127.0.0.1:1/RPC2\n"
              "upstream svc http://127.0.0.1:2/rpc kind=json\n"
              "route s xmlrpc s.* -> shadow legacy svc readonly redact=password\n",
              &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_ptr_nonnull(c->routes[0].rule.redact);
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

/* Which side an upstream is on: by its kind unless role= says. */
START_TEST(upstream_roles_default_by_kind_and_can_be_set)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse("upstream l  http://127.0.0.1:1/RPC2\n"
                             "upstream j  http://127.0.0.1:2/rpc kind=json\n"
                             "upstream jl http://127.0.0.1:3/rpc kind=json role=legacy\n"
                             "upstream xn http://127.0.0.1:4/RPC2 role=new\n"
                             "upstream xl http://127.0.0.1:5/RPC2 kind=xmlrpc role=legacy\n"
                             "route cfg-role-j  xmlrpc j.*  -> j\n"
                             "route cfg-role-jl xmlrpc jl.* -> jl\n"
                             "route cfg-role-xn xmlrpc xn.* -> xn\n"
                             "route cfg-role-c  xmlrpc c.*  -> canary 5% xn xl\n"
                             "route cfg-role-l  *           -> l\n",
                             &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    static const struct {
        const char *name, *role;
        int new_side;
    } want[] = {
        {"l", "legacy", 0}, {"j", "new", 1},     {"jl", "legacy", 0},
        {"xn", "new", 1},   {"xl", "legacy", 0},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct upstream_def *u = config_find_upstream(c, want[i].name);
        ck_assert_ptr_nonnull(u);
        ck_assert_str_eq(u->role, want[i].role);
        ck_assert_msg(u->new_side == want[i].new_side, "%s: new_side %d", u->name, u->new_side);
    }
    /* Each route counts its calls per upstream, on the upstream's side. */
    const struct route *j = config_find_route(c, "cfg-role-j");
    ck_assert_ptr_nonnull(j->targets[0]);
    ck_assert_ptr_null(j->targets[1]);
    ck_assert_str_eq(j->targets[0]->route, "cfg-role-j");
    ck_assert_str_eq(j->targets[0]->upstream, "j");
    ck_assert_int_eq(j->targets[0]->new_side, 1);
    ck_assert_int_eq(config_find_route(c, "cfg-role-jl")->targets[0]->new_side, 0);
    ck_assert_int_eq(config_find_route(c, "cfg-role-xn")->targets[0]->new_side, 1);
    ck_assert_int_eq(config_find_route(c, "cfg-role-l")->targets[0]->new_side, 0);
    const struct route *canary = config_find_route(c, "cfg-role-c");
    ck_assert_str_eq(canary->targets[0]->upstream, "xl"); /* REST */
    ck_assert_int_eq(canary->targets[0]->new_side, 0);
    ck_assert_str_eq(canary->targets[1]->upstream, "xn"); /* NEW */
    ck_assert_int_eq(canary->targets[1]->new_side, 1);
    /* The calls no route takes have counters of their own. */
    ck_assert_ptr_nonnull(c->unrouted);
    ck_assert_str_eq(c->unrouted->route, "");
    ck_assert_str_eq(c->unrouted->upstream, "");
    config_unref(c);

    /* A reload that changes a role: the same counters, on the other side. */
    c = parse("upstream j http://127.0.0.1:2/rpc kind=json role=legacy\n"
              "route cfg-role-j xmlrpc j.* -> j\n",
              &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_int_eq(c->routes[0].targets[0]->new_side, 0);
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

START_TEST(an_unknown_role_is_an_error)
{
    expect_error("listen 127.0.0.1:8080\nupstream a http://127.0.0.1:1 role=boss\n",
                 "routes.conf:2: upstream a: role must be new or legacy (got 'boss')\n");
    expect_error("upstream a http://127.0.0.1:1 kind=json role=\n",
                 "routes.conf:1: upstream a: role must be new or legacy (got '')\n");
    expect_error("upstream a http://127.0.0.1:1 role=New\n",
                 "routes.conf:1: upstream a: role must be new or legacy (got 'New')\n");
}
END_TEST

START_TEST(access_log_and_error_log)
{
    struct buf errors = BUF_INIT;
    /* Neither: no access log, the error log on stderr. */
    struct config *c = parse("workers 1\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_ptr_null(c->access_log.path);
    ck_assert_uint_eq(c->access_log.buffer_bytes, 64 * 1024);
    ck_assert_uint_eq(c->access_log.flush_ms, 1000);
    ck_assert_ptr_null(c->error_log);
    config_unref(c);

    c = parse("access_log off buffer=8k\nerror_log stderr\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_ptr_null(c->access_log.path);
    ck_assert_ptr_null(c->error_log);
    config_unref(c);

    c = parse("access_log stdout flush=2s\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->access_log.path, "stdout");
    ck_assert_uint_eq(c->access_log.buffer_bytes, 64 * 1024);
    ck_assert_uint_eq(c->access_log.flush_ms, 2000);
    config_unref(c);

    c = parse("access_log /var/log/strangler/access.log buffer=0\n"
              "error_log /var/log/strangler/error.log\n",
              &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->access_log.path, "/var/log/strangler/access.log");
    ck_assert_uint_eq(c->access_log.buffer_bytes, 0);
    ck_assert_uint_eq(c->access_log.flush_ms, 1000);
    ck_assert_str_eq(c->error_log, "/var/log/strangler/error.log");
    config_unref(c);

    /* Relative paths are the file's folder's, as the spool's are... */
    static const char text[] = "access_log logs/access.log buffer=32k flush=250ms\n"
                               "error_log logs/error.log\n";
    c = config_parse_as("/etc/strangler/routes.conf", text, sizeof(text) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->access_log.path, "/etc/strangler/logs/access.log");
    ck_assert_uint_eq(c->access_log.buffer_bytes, 32 * 1024);
    ck_assert_uint_eq(c->access_log.flush_ms, 250);
    ck_assert_str_eq(c->error_log, "/etc/strangler/logs/error.log");
    config_unref(c);
    /* ...but stdout, stderr and off are words, not files. */
    static const char words[] = "access_log stdout\nerror_log stderr\n";
    c = config_parse_as("/etc/strangler/routes.conf", words, sizeof(words) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->access_log.path, "stdout");
    ck_assert_ptr_null(c->error_log);
    config_unref(c);
    /* Text without a file: relative to the working directory. */
    c = parse("access_log logs/access.log\nerror_log e.log\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(c->access_log.path, "logs/access.log");
    ck_assert_str_eq(c->error_log, "e.log");
    config_unref(c);
    buf_dispose(&errors);

    expect_error("access_log stdout flush=0\n", "routes.conf:1: flush: 0 is out of range");
    expect_error("access_log stdout flush=2m\n", "routes.conf:1: flush: 2m is out of range");
    expect_error("access_log stdout flush=soon\n", "routes.conf:1: flush: invalid duration 'soon'");
    expect_error("access_log stdout buffer=17m\n", "routes.conf:1: buffer: 17m is out of range");
    expect_error("access_log stdout buffer=big\n", "routes.conf:1: buffer: invalid size 'big'");
    expect_error("access_log a.log level=1\n",
                 "routes.conf:1: access_log: unknown option 'level=1' (expected buffer=, flush=)");
    expect_error("access_log\n", "routes.conf:1: access_log: expected 1");
    expect_error("error_log\n", "routes.conf:1: error_log: expected 1 argument, got 0");
    expect_error("error_log a b\n", "routes.conf:1: error_log: expected 1 argument, got 2");
}
END_TEST

START_TEST(max_methods_has_a_default_and_a_range)
{
    struct buf errors = BUF_INIT;
    struct config *c = parse("workers 1\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_uint_eq(c->max_methods, 5000);
    config_unref(c);
    c = parse("max_methods 20000\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_uint_eq(c->max_methods, 20000);
    config_unref(c);
    c = parse("max_methods 0\n", &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_uint_eq(c->max_methods, 0);
    config_unref(c);
    buf_dispose(&errors);
    expect_error("max_methods 1000001\n", "routes.conf:1: max_methods: 1000001 is out of range");
    expect_error("max_methods lots\n", "routes.conf:1: max_methods: invalid number 'lots'");
}
END_TEST

START_TEST(the_new_directives_may_appear_once)
{
    expect_error("access_log off\n\naccess_log stdout\n",
                 "routes.conf:3: access_log is set twice (first on line 1)");
    expect_error("error_log stderr\nerror_log e.log\n",
                 "routes.conf:2: error_log is set twice (first on line 1)");
    expect_error("max_methods 10\nmax_methods 10\n",
                 "routes.conf:2: max_methods is set twice (first on line 1)");
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
    tcase_add_test(tc, admin_token_file_names_each_token);
    tcase_add_test(tc, admin_address_defaults_to_loopback);
    tcase_add_test(tc, issue3_token_files_ignore_blanks_and_resolve_beside_the_config);
    tcase_add_test(tc, issue3_names_of_only_dots_are_refused);
    tcase_add_test(tc, comments_only_at_token_start);
    tcase_add_test(tc, every_error_is_reported_not_just_the_first);
    tcase_add_test(tc, load_reports_a_missing_file);
    tcase_add_test(tc, references_keep_a_snapshot_alive);
    tcase_add_test(tc, check_warns_about_routes_that_can_never_match);
    tcase_add_test(tc, check_warns_about_unused_upstreams);
    tcase_add_test(tc, route_conditions_and_actions_are_checked);
    tcase_add_test(tc, routes_remember_where_their_action_is);
    tcase_add_test(tc, issue4_routes_take_one_map);
    tcase_add_test(tc, issue5_spool_options_and_their_defaults);
    tcase_add_test(tc, issue5_routes_shape_their_events);
    tcase_add_test(tc, issue6_dark_launch_actions_parse);
    tcase_add_test(tc, issue6_dark_launch_mistakes_are_named);
    tcase_add_test(tc, issue6_check_warns_about_shadows_and_fallbacks_that_write);
    tcase_add_test(tc, upstream_roles_default_by_kind_and_can_be_set);
    tcase_add_test(tc, an_unknown_role_is_an_error);
    tcase_add_test(tc, access_log_and_error_log);
    tcase_add_test(tc, max_methods_has_a_default_and_a_range);
    tcase_add_test(tc, the_new_directives_may_appear_once);
    suite_add_tcase(s, tc);
    return s;
}
