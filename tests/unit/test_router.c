#include "unit.h"
#include "proxy/router.h"

#include <string.h>

static int glob(const char *pattern, const char *text)
{
    return router_glob_match(pattern, strlen(pattern), text, strlen(text));
}

START_TEST(globs_match_method_names)
{
    ck_assert(glob("stock.get", "stock.get"));
    ck_assert(!glob("stock.get", "stock.gets"));
    ck_assert(!glob("stock.get", "stock.ge"));
    ck_assert(glob("orders.*", "orders.create"));
    ck_assert(glob("orders.*", "orders."));
    ck_assert(!glob("orders.*", "orders"));
    ck_assert(glob("*.get", "stock.get"));
    ck_assert(glob("*.get", "a.b.get"));
    ck_assert(!glob("*.get", "stock.getx"));
    ck_assert(glob("*", ""));
    ck_assert(glob("s?ock.*", "stock.list"));
    ck_assert(glob("*a*b*c", "xxaxxbxxc"));
    ck_assert(!glob("*a*b*c", "xxaxxbxx"));
    ck_assert(glob("**", "anything"));
}
END_TEST

START_TEST(glob_stays_linear_on_hostile_patterns)
{
    /* Exponential backtracking would take ages here. */
    char text[4001];
    memset(text, 'a', 4000);
    text[4000] = '\0';
    ck_assert(!glob("*a*a*a*a*a*a*a*a*a*a*b", text));
}
END_TEST

static struct config *table(void)
{
    static const char text[] = "upstream legacy http://127.0.0.1:8000/RPC2\n"
                               "upstream svc http://127.0.0.1:9001/rpc kind=json\n"
                               "route read   xmlrpc stock.get -> svc\n"
                               "route orders xmlrpc orders.* -> legacy intercept\n"
                               "route health http GET /health -> legacy\n"
                               "route api    http * /api/* -> legacy\n"
                               "route rest   * -> legacy\n";
    struct buf errors = BUF_INIT;
    struct config *c = config_parse("t.conf", text, sizeof(text) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    buf_dispose(&errors);
    return c;
}

static const char *route_for(const struct config *c, const char *method, const char *path,
                             const char *call)
{
    struct router_request r = {
        .http_method = method,
        .http_method_len = strlen(method),
        .path = path,
        .path_len = strlen(path),
        .xmlrpc_method = call,
        .xmlrpc_method_len = call ? strlen(call) : 0,
    };
    const struct route *rt = router_match(c, &r);
    return rt ? rt->name : "(none)";
}

START_TEST(first_match_wins_in_file_order)
{
    struct config *c = table();
    ck_assert_str_eq(route_for(c, "POST", "/RPC2", "stock.get"), "read");
    ck_assert_str_eq(route_for(c, "POST", "/RPC2", "orders.create"), "orders");
    ck_assert_str_eq(route_for(c, "POST", "/RPC2", "stock.adjust"), "rest");
    ck_assert_str_eq(route_for(c, "GET", "/health", NULL), "health");
    ck_assert_str_eq(route_for(c, "POST", "/health", NULL), "rest");
    ck_assert_str_eq(route_for(c, "GET", "/healthz", NULL), "rest");
    ck_assert_str_eq(route_for(c, "DELETE", "/api/x/y", NULL), "api");
    ck_assert_str_eq(route_for(c, "GET", "/api/", NULL), "api");
    ck_assert_str_eq(route_for(c, "GET", "/api", NULL), "rest");
    config_unref(c);
}
END_TEST

START_TEST(a_body_that_is_not_a_call_skips_xmlrpc_routes)
{
    struct config *c = table();
    /* same path, no method name: only non-xmlrpc routes are candidates */
    ck_assert_str_eq(route_for(c, "POST", "/RPC2", NULL), "rest");
    config_unref(c);
}
END_TEST

START_TEST(no_route_matches_without_a_catch_all)
{
    static const char text[] = "upstream l http://127.0.0.1:8000\nroute r xmlrpc a.* -> l\n";
    struct buf errors = BUF_INIT;
    struct config *c = config_parse("t.conf", text, sizeof(text) - 1, &errors);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(route_for(c, "POST", "/RPC2", "b.x"), "(none)");
    ck_assert_str_eq(route_for(c, "GET", "/", NULL), "(none)");
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

/* Routes a parsed request head, so header conditions see real headers. */
static const char *route_for_head(const struct config *c, const char *head, const char *call)
{
    static struct http_request req;
    struct http_error err;
    struct http_limits lim = {16384, HTTP_MAX_HEADERS};
    ck_assert_int_gt(http_parse_request(head, strlen(head), &lim, &req, &err), 0);
    struct router_request r = {
        .http_method = req.method,
        .http_method_len = req.method_len,
        .path = req.path,
        .path_len = req.path_len,
        .xmlrpc_method = call,
        .xmlrpc_method_len = call ? strlen(call) : 0,
        .headers = &req.msg,
    };
    const struct route *rt = router_match(c, &r);
    return rt ? rt->name : "(none)";
}

START_TEST(header_conditions_narrow_any_route)
{
    static const char text[] = "upstream legacy http://127.0.0.1:8000/RPC2\n"
                               "upstream svc http://127.0.0.1:9001/rpc kind=json\n"
                               "route acme  xmlrpc stock.* header X-Tenant=acme -> svc\n"
                               "route beta  * header X-Tenant=beta header X-Client=v2.* -> svc\n"
                               "route rest  * -> legacy\n";
    struct buf errors = BUF_INIT;
    struct config *c = config_parse("t.conf", text, sizeof(text) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_uint_eq(c->routes[1].nconditions, 2);
    ck_assert_str_eq(c->routes[1].conditions[1].value, "v2.*");

    const char *acme = "POST /RPC2 HTTP/1.1\r\nHost: x\r\nx-tenant: acme\r\n\r\n";
    ck_assert_str_eq(route_for_head(c, acme, "stock.get"), "acme");
    ck_assert_str_eq(route_for_head(c, acme, "orders.get"), "rest");
    /* values compare exactly, names without case */
    const char *acme2 = "POST /RPC2 HTTP/1.1\r\nHost: x\r\nX-Tenant: acme2\r\n\r\n";
    ck_assert_str_eq(route_for_head(c, acme2, "stock.get"), "rest");
    /* every condition must hold */
    const char *beta1 = "POST /RPC2 HTTP/1.1\r\nHost: x\r\nX-Tenant: beta\r\n\r\n";
    ck_assert_str_eq(route_for_head(c, beta1, "stock.get"), "rest");
    const char *beta2 =
        "POST /RPC2 HTTP/1.1\r\nHost: x\r\nX-Client: v2.7\r\nX-Tenant: beta\r\n\r\n";
    ck_assert_str_eq(route_for_head(c, beta2, "stock.get"), "beta");
    /* a repeated header holds the condition when any of its fields does */
    const char *twice = "GET / HTTP/1.1\r\nHost: x\r\nX-Tenant: zeta\r\nX-Tenant: beta\r\n"
                        "X-Client: v2.0\r\n\r\n";
    ck_assert_str_eq(route_for_head(c, twice, NULL), "beta");
    /* without headers to look at, no condition holds */
    ck_assert_str_eq(route_for(c, "POST", "/RPC2", "stock.get"), "rest");
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

static int covers(const char *outer, const char *inner)
{
    return router_glob_covers(outer, inner);
}

START_TEST(glob_inclusion)
{
    ck_assert(covers("*", "anything.at.all"));
    ck_assert(covers("*", "*"));
    ck_assert(covers("*", ""));
    ck_assert(covers("stock.*", "stock.get"));
    ck_assert(covers("stock.*", "stock.*"));
    ck_assert(covers("stock.*", "stock.g*"));
    ck_assert(covers("*.get", "stock.get"));
    ck_assert(covers("*a*", "a*"));
    ck_assert(covers("s?ock.get", "stock.get"));
    ck_assert(covers("s*", "s?ock"));
    ck_assert(covers("stock.get", "stock.get"));
    ck_assert(!covers("stock.get", "stock.*"));
    ck_assert(!covers("stock.*", "*"));
    ck_assert(!covers("*.get", "stock.*"));
    ck_assert(!covers("stock.*", "stocks.get"));
    ck_assert(!covers("s?ock", "s*ock"));
    ck_assert(!covers("stock.get", "stock.ge?"));
    ck_assert(!covers("?", ""));
}
END_TEST

/* Issue 4: a <methodCall> whose name cannot be read (a DOCTYPE, broken
 * markup) is still a call: it takes the first xmlrpc route that takes any
 * method, never one that needs a name to match. */
START_TEST(issue4_an_unreadable_call_takes_only_routes_for_any_method)
{
    static const char text[] = "upstream legacy http://127.0.0.1:8000/RPC2\n"
                               "upstream svc http://127.0.0.1:9001/rpc kind=json\n"
                               "route stock xmlrpc stock.* -> svc\n"
                               "route all   xmlrpc **      -> svc\n"
                               "route rest  *              -> legacy\n";
    struct buf errors = BUF_INIT;
    struct config *c = config_parse("t.conf", text, sizeof(text) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    struct router_request r = {.http_method = "POST",
                               .http_method_len = 4,
                               .path = "/RPC2",
                               .path_len = 5,
                               .unreadable_call = 1};
    ck_assert_str_eq(router_match(c, &r)->name, "all");
    r.unreadable_call = 0; /* not a call at all: only non-xmlrpc routes */
    ck_assert_str_eq(router_match(c, &r)->name, "rest");
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, globs_match_method_names);
    tcase_add_test(tc, glob_stays_linear_on_hostile_patterns);
    tcase_add_test(tc, first_match_wins_in_file_order);
    tcase_add_test(tc, a_body_that_is_not_a_call_skips_xmlrpc_routes);
    tcase_add_test(tc, no_route_matches_without_a_catch_all);
    tcase_add_test(tc, header_conditions_narrow_any_route);
    tcase_add_test(tc, glob_inclusion);
    tcase_add_test(tc, issue4_an_unreadable_call_takes_only_routes_for_any_method);
    suite_add_tcase(s, tc);
    return s;
}
