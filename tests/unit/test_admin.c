/*
 * admin.c: who a token names, the JSON of a route as GET /routes shows it,
 * and the API itself served on 127.0.0.1:0 by a real event loop, driven by a
 * small blocking HTTP client in a second thread.
 */
#include "unit.h"
#include "proxy/admin.h"
#include "proxy/adminctl.h"
#include "proxy/inventory.h"
#include "scratch.h"

#include "common/buf.h"
#include "common/clock.h"
#include "proxy/config.h"
#include "proxy/control.h"
#include "proxy/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- admin_authorize ---- */

static char ops_name[] = "ops", ops_secret[] = "s3cret";
static char bot_name[] = "bot", bot_secret[] = "other";

START_TEST(without_tokens_everyone_is_anonymous)
{
    struct config_admin a = {.enabled = 1};
    const char *headers[] = {NULL, "", "Bearer s3cret", "Basic b3BzOnMzY3JldA==", "garbage"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
        ck_assert_pstr_eq(admin_authorize(&a, headers[i]), "anonymous");
}
END_TEST

START_TEST(a_token_names_who_presents_it)
{
    struct admin_token tokens[] = {{ops_name, ops_secret}, {bot_name, bot_secret}};
    struct config_admin a = {.enabled = 1, .tokens = tokens, .ntokens = 2};

    ck_assert_ptr_eq(admin_authorize(&a, "Bearer s3cret"), ops_name);
    ck_assert_ptr_eq(admin_authorize(&a, "Bearer other"), bot_name);
    /* the scheme without case, blanks around the secret trimmed */
    ck_assert_ptr_eq(admin_authorize(&a, "bearer   other  "), bot_name);
    ck_assert_ptr_eq(admin_authorize(&a, "BEARER s3cret"), ops_name);
    ck_assert_ptr_eq(admin_authorize(&a, "Bearer s3cret\t \t"), ops_name);
}
END_TEST

START_TEST(anything_else_is_refused)
{
    struct admin_token tokens[] = {{ops_name, ops_secret}, {bot_name, bot_secret}};
    struct config_admin a = {.enabled = 1, .tokens = tokens, .ntokens = 2};
    const char *refused[] = {
        NULL,
        "",
        "s3cret",
        "Basic s3cret",
        "Basic b3BzOnMzY3JldA==",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearers3cret",
        "Bearer s3cre",   /* a prefix of a secret */
        "Bearer s3cret2", /* a secret is a prefix of it */
        "Bearer S3CRET",  /* secrets compare with case */
        "Bearer 3cret",
        "Bearer s3cret other",
        "Bearer s3cretother",
        "Bearer ops",
        "Bearer other s3cret",
        "Token s3cret",
        "Bearer\ts3cret",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        ck_assert_msg(admin_authorize(&a, refused[i]) == NULL, "'%s' was let in", refused[i]);
}
END_TEST

START_TEST(secrets_that_prefix_each_other_stay_apart)
{
    char short_name[] = "short", short_secret[] = "abc";
    char long_name[] = "long", long_secret[] = "abcdef";
    /* both orders, so neither a first nor a last match can win by position */
    struct admin_token one[] = {{short_name, short_secret}, {long_name, long_secret}};
    struct admin_token two[] = {{long_name, long_secret}, {short_name, short_secret}};
    struct config_admin tables[] = {{.enabled = 1, .tokens = one, .ntokens = 2},
                                    {.enabled = 1, .tokens = two, .ntokens = 2}};
    for (size_t i = 0; i < 2; i++) {
        ck_assert_ptr_eq(admin_authorize(&tables[i], "Bearer abc"), short_name);
        ck_assert_ptr_eq(admin_authorize(&tables[i], "Bearer abcdef"), long_name);
        ck_assert_ptr_null(admin_authorize(&tables[i], "Bearer abcd"));
        ck_assert_ptr_null(admin_authorize(&tables[i], "Bearer ab"));
        ck_assert_ptr_null(admin_authorize(&tables[i], "Bearer abcdefg"));
    }
}
END_TEST

START_TEST(the_first_of_two_equal_secrets_is_credited)
{
    char a_name[] = "first", b_name[] = "second", secret[] = "same";
    struct admin_token tokens[] = {{a_name, secret}, {b_name, secret}};
    struct config_admin a = {.enabled = 1, .tokens = tokens, .ntokens = 2};
    ck_assert_ptr_eq(admin_authorize(&a, "Bearer same"), a_name);
}
END_TEST

/* ---- admin_write_route ---- */

/* The route names are this file's own: counters are process-wide by name. */
static const char ROUTE_TABLE[] =
    "# for admin_write_route\n"
    "upstream legacy http://127.0.0.1:8000/RPC2\n"
    "upstream svc    http://127.0.0.1:9001/rpc kind=json\n"
    "\n"
    "route admin-t-orders xmlrpc orders.* header X-Tenant=acme header X-Client=v\"2.* "
    "-> svc intercept=orders.changed\n"
    "route admin-t-rest   http POST /api/* -> legacy\n";

static json_object *parse_json(struct buf *b)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, b->data, (int)b->len);
    ck_assert_msg(o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
                      (size_t)tok->char_offset == b->len,
                  "not one JSON value: %s", buf_cstr(b));
    json_tokener_free(tok);
    return o;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member '%s'", key);
    return v;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    if (v == NULL)
        return NULL;
    ck_assert_msg(json_object_is_type(v, json_type_string), "'%s' is not a string", key);
    return json_object_get_string(v);
}

static int64_t get_int(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    ck_assert_msg(json_object_is_type(v, json_type_int), "'%s' is not an integer", key);
    return json_object_get_int64(v);
}

static int get_bool(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    ck_assert_msg(json_object_is_type(v, json_type_boolean), "'%s' is not a boolean", key);
    return json_object_get_boolean(v);
}

static void bump(atomic_uint_fast64_t *counter, int times)
{
    for (int i = 0; i < times; i++)
        metrics_bump(counter);
}

START_TEST(a_route_as_json)
{
    struct buf errors = BUF_INIT, out = BUF_INIT;
    struct config *c = config_parse("t.conf", ROUTE_TABLE, sizeof(ROUTE_TABLE) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    const struct route *r = &c->routes[0];
    /* the figures so far (another suite in the same process may share the
     * registry), then distinct amounts, so a swapped field shows */
    uint64_t base[4] = {metrics_read(&r->counters->requests), metrics_read(&r->counters->faults),
                        metrics_read(&r->counters->errors), metrics_read(&r->counters->events)};
    bump(&r->counters->requests, 7);
    bump(&r->counters->faults, 2);
    bump(&r->counters->errors, 1);
    bump(&r->counters->events, 5);

    buf_append_str(&out, "[");
    admin_write_route(&out, r, NULL);
    buf_append_str(&out, "]");
    json_object *arr = parse_json(&out);
    ck_assert_int_eq(json_object_array_length(arr), 1);
    json_object *o = json_object_array_get_idx(arr, 0);
    ck_assert_int_eq(json_object_object_length(o), 18);
    ck_assert_str_eq(get_str(o, "name"), "admin-t-orders");
    ck_assert_int_eq(get_int(o, "line"), 5);
    ck_assert_str_eq(get_str(o, "match"),
                     "xmlrpc orders.* header X-Tenant=acme header X-Client=v\"2.*");
    json_object *conds = get(o, "conditions");
    ck_assert(json_object_is_type(conds, json_type_array));
    ck_assert_int_eq(json_object_array_length(conds), 2);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(conds, 0)),
                     "header X-Tenant=acme");
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(conds, 1)),
                     "header X-Client=v\"2.*");
    ck_assert_str_eq(get_str(o, "action"), "svc");
    ck_assert_str_eq(get_str(o, "upstream"), "svc");
    ck_assert_str_eq(get_str(o, "kind"), "json");
    ck_assert_str_eq(get_str(o, "side"), "new"); /* a kind=json upstream is a new service */
    ck_assert_int_eq(get_bool(o, "intercept"), 1);
    ck_assert_str_eq(get_str(o, "event_type"), "orders.changed");
    /* a direct route: both sides are its upstream, nothing dark-launched */
    ck_assert_str_eq(get_str(o, "mode"), "direct");
    ck_assert_str_eq(get_str(o, "new_side"), "svc");
    ck_assert_str_eq(get_str(o, "legacy_side"), "svc");
    ck_assert_int_eq(get_bool(o, "readonly"), 0);
    json_object *dl = get(o, "dark_launch");
    ck_assert_int_eq(json_object_object_length(dl), 10);
    ck_assert_int_eq(get_int(dl, "shadow_sent"), 0);
    ck_assert_int_eq(get_int(dl, "rollbacks"), 0);
    json_object *n = get(o, "counters");
    ck_assert_int_eq(json_object_object_length(n), 4);
    ck_assert_int_eq(get_int(n, "requests"), (int64_t)base[0] + 7);
    ck_assert_int_eq(get_int(n, "faults"), (int64_t)base[1] + 2);
    ck_assert_int_eq(get_int(n, "errors"), (int64_t)base[2] + 1);
    ck_assert_int_eq(get_int(n, "events"), (int64_t)base[3] + 5);
    ck_assert_ptr_null(get(o, "changed"));
    json_object_put(arr);

    /* a plain route: no conditions, no interception, the default kind */
    out.len = 0;
    admin_write_route(&out, &c->routes[1], NULL);
    o = parse_json(&out);
    ck_assert_str_eq(get_str(o, "name"), "admin-t-rest");
    ck_assert_int_eq(get_int(o, "line"), 6);
    ck_assert_str_eq(get_str(o, "match"), "http POST /api/*");
    ck_assert_int_eq(json_object_array_length(get(o, "conditions")), 0);
    ck_assert_str_eq(get_str(o, "action"), "legacy");
    ck_assert_str_eq(get_str(o, "upstream"), "legacy");
    ck_assert_str_eq(get_str(o, "kind"), "xmlrpc");
    ck_assert_int_eq(get_bool(o, "intercept"), 0);
    ck_assert_ptr_null(get(o, "event_type"));
    ck_assert_ptr_null(get(o, "changed"));
    json_object_put(o);

    buf_dispose(&out);
    buf_dispose(&errors);
    config_unref(c);
}
END_TEST

START_TEST(a_changed_route_says_when_by_whom_and_from_what)
{
    struct buf errors = BUF_INIT, out = BUF_INIT;
    struct config *c = config_parse("t.conf", ROUTE_TABLE, sizeof(ROUTE_TABLE) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    char by[] = "ops", before[] = "legacy";
    /* 2026-11-21T10:00:00.123456Z */
    struct control_audit audit = {.at_us = 1795255200123456, .by = by, .before = before};

    admin_write_route(&out, &c->routes[0], &audit);
    json_object *o = parse_json(&out);
    json_object *ch = get(o, "changed");
    ck_assert(json_object_is_type(ch, json_type_object));
    ck_assert_int_eq(json_object_object_length(ch), 3);
    ck_assert_str_eq(get_str(ch, "at"), "2026-11-21T10:00:00.123Z");
    ck_assert_str_eq(get_str(ch, "by"), "ops");
    ck_assert_str_eq(get_str(ch, "before"), "legacy");
    ck_assert_str_eq(get_str(o, "action"), "svc");
    json_object_put(o);

    /* added by a reload: nothing before */
    audit.before = NULL;
    audit.at_us = 0;
    out.len = 0;
    admin_write_route(&out, &c->routes[0], &audit);
    o = parse_json(&out);
    ch = get(o, "changed");
    ck_assert_str_eq(get_str(ch, "at"), "1970-01-01T00:00:00.000Z");
    ck_assert_str_eq(get_str(ch, "by"), "ops");
    ck_assert_ptr_null(get(ch, "before"));
    json_object_put(o);

    buf_dispose(&out);
    buf_dispose(&errors);
    config_unref(c);
}
END_TEST

/* ---- the server ---- */

static void make_root(void)
{
    scratch_root_make("admin");
}

/* One request of the client thread and the raw answer it got. */
struct exchange {
    const char *request;
    struct buf answer;
    int rc; /* 0: read to the end; -1: errno-style failure, in err */
    char err[128];
};

struct client {
    char host[64];
    unsigned short port;
    struct exchange *ex;
    size_t nex;
    struct event_base *base;
};

/* Sends one request on a new connection and reads until the server closes
 * it. Every wait is bounded by SO_RCVTIMEO/SO_SNDTIMEO. */
static void call(const struct client *cl, struct exchange *x)
{
    struct timeval tv = {5, 0};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(cl->port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    x->rc = -1;
    if (fd < 0 || inet_pton(AF_INET, cl->host, &sin.sin_addr) != 1 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        snprintf(x->err, sizeof(x->err), "connect: %s", strerror(errno));
        goto out;
    }
    size_t len = strlen(x->request), off = 0;
    while (off < len) {
        ssize_t n = write(fd, x->request + off, len - off);
        if (n <= 0) {
            snprintf(x->err, sizeof(x->err), "write: %s", strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    for (;;) {
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            snprintf(x->err, sizeof(x->err), "read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        buf_append(&x->answer, chunk, (size_t)n);
    }
    x->rc = 0;
out:
    if (fd >= 0)
        close(fd);
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    for (size_t i = 0; i < cl->nex; i++)
        call(cl, &cl->ex[i]);
    /* thread-safe: evthread_use_pthreads() was called before the base */
    event_base_loopexit(cl->base, NULL);
    return NULL;
}

/* An answer: its status and where its body starts. */
struct answer {
    int status;
    const char *body; /* into the exchange's buffer */
};

static struct answer parse_answer(struct exchange *x)
{
    struct answer a = {0, NULL};
    ck_assert_msg(x->rc == 0, "%s: %s", x->request, x->err);
    const char *text = buf_cstr(&x->answer);
    ck_assert_msg(sscanf(text, "HTTP/1.1 %d ", &a.status) == 1, "no status line: %s", text);
    const char *end = strstr(text, "\r\n\r\n");
    ck_assert_msg(end != NULL, "no end of head: %s", text);
    a.body = end + 4;
    return a;
}

/* Whether the head of x holds the header line `line` ("Name: value"). */
static int has_header(struct exchange *x, const char *line)
{
    const char *text = buf_cstr(&x->answer);
    const char *end = strstr(text, "\r\n\r\n");
    size_t n = strlen(line);
    for (const char *s = strstr(text, "\r\n"); s != NULL && s < end; s = strstr(s + 2, "\r\n"))
        if (strncasecmp(s + 2, line, n) == 0 && s[2 + n] == '\r')
            return 1;
    return 0;
}

static json_object *body_json(struct answer a)
{
    json_object *o = json_tokener_parse(a.body);
    ck_assert_msg(o != NULL, "not JSON: %s", a.body);
    return o;
}

#define AUTH_OPS "Authorization: Bearer s3cret\r\n"
#define AUTH_BOT "Authorization: Bearer other\r\n"
#define CLOSE    "Host: t\r\nConnection: close\r\n"

START_TEST(the_api_on_a_real_loop)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], tokens[PATH_MAX + 32], err[256] = "";
    struct buf text = BUF_INIT, errors = BUF_INIT;
    scratch_dir("api", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/routes.conf", dir);
    snprintf(tokens, sizeof(tokens), "%s/tokens", dir);
    scratch_write(tokens, "# who  secret\nops s3cret\nbot other\n", 0600);
    buf_appendf(&text,
                "admin 127.0.0.1:0 token=file:%s\n"
                "upstream legacy http://127.0.0.1:8000/RPC2\n"
                "upstream svc    http://127.0.0.1:9001/rpc\n"
                "route admin-s-read xmlrpc stock.get -> legacy  # moving\n"
                "route admin-s-rest * -> legacy\n",
                tokens);
    scratch_write(path, buf_cstr(&text), 0644);
    struct config *cfg = config_load(path, &errors);
    ck_assert_msg(cfg != NULL, "%s", buf_cstr(&errors));
    ck_assert_uint_eq(cfg->admin.ntokens, 2);

    ck_assert_int_eq(evthread_use_pthreads(), 0);
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    struct control *ctl = control_new(cfg, NULL, NULL, NULL);
    struct admin *adm = admin_start(base, ctl, err, sizeof(err));
    ck_assert_msg(adm != NULL, "%s", err);

    struct exchange ex[] = {
        {.request = "GET /healthz HTTP/1.1\r\n" CLOSE "\r\n"},
        {.request = "GET /routes HTTP/1.1\r\n" CLOSE "\r\n"},
        {.request = "GET /routes HTTP/1.1\r\n" CLOSE "Authorization: Bearer s3cre\r\n\r\n"},
        {.request = "GET /routes HTTP/1.1\r\n" CLOSE AUTH_OPS "\r\n"},
        {.request = "PUT /routes/admin-s-read HTTP/1.1\r\n" CLOSE AUTH_BOT
                    "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n"
                    "{\"action\": \"svc\"}"},
        {.request = "PUT /routes/nope HTTP/1.1\r\n" CLOSE AUTH_OPS
                    "Content-Length: 17\r\n\r\n{\"action\": \"svc\"}"},
        {.request = "PUT /routes/admin-s-read HTTP/1.1\r\n" CLOSE AUTH_OPS
                    "Content-Length: 8\r\n\r\nnot json"},
        {.request = "PUT /routes/admin-s-read HTTP/1.1\r\n" CLOSE AUTH_OPS
                    "Content-Length: 15\r\n\r\n{\"action\": \"x\"}"},
        {.request = "POST /reload HTTP/1.1\r\n" CLOSE AUTH_OPS "Content-Length: 0\r\n\r\n"},
        {.request = "GET /routes/admin-s-read HTTP/1.1\r\n" CLOSE AUTH_OPS "\r\n"},
        {.request = "GET /reload HTTP/1.1\r\n" CLOSE AUTH_OPS "\r\n"},
        {.request = "GET /elsewhere HTTP/1.1\r\n" CLOSE AUTH_OPS "\r\n"},
    };
    size_t nex = sizeof(ex) / sizeof(ex[0]);

    struct client cl = {.ex = ex, .nex = nex, .base = base};
    const char *addr = admin_address(adm);
    const char *colon = strrchr(addr, ':');
    ck_assert_ptr_nonnull(colon);
    ck_assert_uint_lt((size_t)(colon - addr), sizeof(cl.host));
    memcpy(cl.host, addr, (size_t)(colon - addr));
    cl.port = (unsigned short)strtoul(colon + 1, NULL, 10);
    ck_assert_str_eq(cl.host, "127.0.0.1");
    ck_assert_uint_ne(cl.port, 0);

    /* the loop runs until the client is done, and never longer than this */
    struct timeval limit = {20, 0};
    ck_assert_int_eq(event_base_loopexit(base, &limit), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, client_main, &cl), 0);
    ck_assert_int_ge(event_base_dispatch(base), 0);
    pthread_join(th, NULL);

    /* /healthz needs no token */
    struct answer a = parse_answer(&ex[0]);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(a.body, "ok");

    /* no token, a wrong token */
    for (size_t i = 1; i <= 2; i++) {
        a = parse_answer(&ex[i]);
        ck_assert_int_eq(a.status, 401);
        ck_assert(has_header(&ex[i], "WWW-Authenticate: Bearer realm=\"strangler\""));
        json_object *o = body_json(a);
        ck_assert_str_eq(get_str(o, "error"),
                         "a valid admin token is required (Authorization: Bearer TOKEN)");
        json_object_put(o);
    }

    /* the table */
    a = parse_answer(&ex[3]);
    ck_assert_int_eq(a.status, 200);
    ck_assert(has_header(&ex[3], "Content-Type: application/json"));
    json_object *o = body_json(a);
    ck_assert_int_eq(json_object_array_length(o), 2);
    json_object *r0 = json_object_array_get_idx(o, 0);
    ck_assert_str_eq(get_str(r0, "name"), "admin-s-read");
    ck_assert_str_eq(get_str(r0, "action"), "legacy");
    ck_assert_ptr_null(get(r0, "changed"));
    ck_assert_str_eq(get_str(json_object_array_get_idx(o, 1), "name"), "admin-s-rest");
    json_object_put(o);

    /* a flip answers with the route as it now stands, credited to bot */
    a = parse_answer(&ex[4]);
    ck_assert_int_eq(a.status, 200);
    o = body_json(a);
    ck_assert_str_eq(get_str(o, "name"), "admin-s-read");
    ck_assert_str_eq(get_str(o, "action"), "svc");
    ck_assert_str_eq(get_str(o, "upstream"), "svc");
    json_object *ch = get(o, "changed");
    ck_assert_str_eq(get_str(ch, "by"), "bot");
    ck_assert_str_eq(get_str(ch, "before"), "legacy");
    json_object_put(o);

    a = parse_answer(&ex[5]);
    ck_assert_int_eq(a.status, 404);
    o = body_json(a);
    ck_assert_str_eq(get_str(o, "error"), "no route named 'nope'");
    json_object_put(o);

    a = parse_answer(&ex[6]);
    ck_assert_int_eq(a.status, 400);
    o = body_json(a);
    ck_assert_str_eq(get_str(o, "error"),
                     "the body is not JSON (expected {\"action\": \"UPSTREAM\"})");
    json_object_put(o);

    /* a refused action comes back with the file's FILE:LINE message */
    a = parse_answer(&ex[7]);
    ck_assert_int_eq(a.status, 400);
    o = body_json(a);
    ck_assert_str_eq(get_str(o, "error"), "route admin-s-read: the action 'x' was refused");
    json_object *msgs = get(o, "messages");
    ck_assert_int_eq(json_object_array_length(msgs), 1);
    struct buf want = BUF_INIT;
    buf_appendf(&want, "%s:4: route admin-s-read: unknown upstream 'x'", path);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(msgs, 0)), buf_cstr(&want));
    buf_dispose(&want);
    json_object_put(o);

    /* the file holds the flip, so a reload changes nothing */
    a = parse_answer(&ex[8]);
    ck_assert_int_eq(a.status, 200);
    o = body_json(a);
    ck_assert_int_eq(get_int(o, "routes"), 2);
    ck_assert_int_eq(get_int(o, "upstreams"), 2);
    ck_assert_int_eq(json_object_array_length(get(o, "changed")), 0);
    ck_assert_int_eq(json_object_array_length(get(o, "warnings")), 0);
    json_object_put(o);

    a = parse_answer(&ex[9]);
    ck_assert_int_eq(a.status, 200);
    o = body_json(a);
    ck_assert_str_eq(get_str(o, "action"), "svc");
    ck_assert_str_eq(get_str(get(o, "changed"), "by"), "bot");
    json_object_put(o);

    a = parse_answer(&ex[10]);
    ck_assert_int_eq(a.status, 405);
    ck_assert(has_header(&ex[10], "Allow: POST"));

    a = parse_answer(&ex[11]);
    ck_assert_int_eq(a.status, 404);

    ck_assert_str_eq(config_find_route(control_config(ctl), "admin-s-read")->action, "svc");
    /* the flip went to disk, layout kept, and is what is in force */
    char *flipped = strstr(text.data, "-> legacy  # moving");
    ck_assert_ptr_nonnull(flipped);
    memcpy(flipped, "-> svc     # moving", strlen("-> svc     # moving"));
    ck_assert_str_eq(control_config(ctl)->text, buf_cstr(&text));
    scratch_assert_file(path, buf_cstr(&text));
    admin_free(adm);
    control_free(ctl);
    event_base_free(base);
    for (size_t i = 0; i < nex; i++)
        buf_dispose(&ex[i].answer);
    buf_dispose(&text);
    buf_dispose(&errors);
    admin_free(NULL);
}
END_TEST

/* ---- admin_write_methods ---- */

static const char METHODS_TABLE[] =
    "upstream legacy http://127.0.0.1:8000/RPC2\n"
    "upstream svc    http://127.0.0.1:9001/rpc kind=json\n"
    "route admin-m-read   xmlrpc stock.get -> svc\n"
    "route admin-m-canary xmlrpc orders.* -> canary 10% svc legacy\n"
    "route admin-m-shadow xmlrpc audit.* -> shadow legacy svc "
    "readonly\n"
    "route admin-m-api    http POST /api/* -> legacy\n";

#define M_T0 1795255200000000ll /* 2026-11-21T10:00:00Z */

static void record_call(struct inventory *inv, unsigned shard, const char *method,
                        const char *route, int answered, int fault, int error, int new_side,
                        uint64_t us, int64_t at)
{
    struct inventory_call c = {.method = method,
                               .method_len = strlen(method),
                               .route = route,
                               .answered = answered,
                               .fault = fault,
                               .error = error,
                               .new_side = new_side,
                               .duration_us = us,
                               .bytes_in = 100,
                               .bytes_out = 10,
                               .at_us = M_T0 + at};
    inventory_record(inventory_shard(inv, shard), &c);
}

static double get_double(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    ck_assert_msg(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int),
                  "'%s' is not a number", key);
    return json_object_get_double(v);
}

/* The element of the methods array for `method`. */
static json_object *method_of(json_object *methods, const char *method)
{
    for (size_t i = 0; i < json_object_array_length(methods); i++) {
        json_object *m = json_object_array_get_idx(methods, i);
        if (strcmp(get_str(m, "method"), method) == 0)
            return m;
    }
    ck_abort_msg("no method %s", method);
    return NULL;
}

START_TEST(methods_as_json_say_who_serves_each_now)
{
    struct buf errors = BUF_INIT, out = BUF_INIT;
    struct config *c = config_parse("t.conf", METHODS_TABLE, sizeof(METHODS_TABLE) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    struct inventory *inv = inventory_new(2, 100, M_T0);
    /* stock.get: 3 calls the new service answered (one a fault), over two
     * workers. */
    record_call(inv, 0, "stock.get", "admin-m-read", 1, 0, 0, 1, 1000, 10);
    record_call(inv, 1, "stock.get", "admin-m-read", 1, 1, 0, 1, 2000, 20);
    record_call(inv, 1, "stock.get", "admin-m-read", 1, 0, 0, 1, 3000, 30);
    /* orders.list: one each side of the canary. */
    record_call(inv, 0, "orders.list", "admin-m-canary", 1, 0, 0, 0, 5000, 40);
    record_call(inv, 0, "orders.list", "admin-m-canary", 1, 0, 0, 1, 5000, 50);
    /* audit.x: the shadow's primary, the legacy, answers. */
    record_call(inv, 1, "audit.x", "admin-m-shadow", 1, 0, 0, 0, 700, 60);
    /* A method no route takes any more, which only ever failed, with a
     * name that needs escaping. */
    record_call(inv, 0, "misc.\"odd\"\x01", NULL, 0, 0, 1, 0, 100, 5);
    struct inventory_report r;
    inventory_report(inv, &r);
    admin_write_methods(&out, c, &r, M_T0 + 3600ll * 1000000);

    json_object *o = parse_json(&out);
    ck_assert_str_eq(get_str(o, "since"), "2026-11-21T10:00:00.000Z");
    ck_assert_str_eq(get_str(o, "now"), "2026-11-21T11:00:00.000Z");
    ck_assert_int_eq(get_int(o, "max_methods"), 100);
    ck_assert_int_eq(get_int(o, "untracked_calls"), 0);
    json_object *totals = get(o, "totals");
    ck_assert_int_eq(get_int(totals, "calls"), 7);
    ck_assert_int_eq(get_int(totals, "new_calls"), 4);
    ck_assert_int_eq(get_int(totals, "legacy_calls"), 2);
    ck_assert(fabs(get_double(totals, "new_share") - 4.0 / 6.0) < 1e-12);

    json_object *methods = get(o, "methods");
    ck_assert(json_object_is_type(methods, json_type_array));
    ck_assert_int_eq(json_object_array_length(methods), 4);
    /* Most called first. */
    ck_assert_str_eq(get_str(json_object_array_get_idx(methods, 0), "method"), "stock.get");
    ck_assert_str_eq(get_str(json_object_array_get_idx(methods, 1), "method"), "orders.list");

    json_object *m = method_of(methods, "stock.get");
    ck_assert_int_eq(get_int(m, "calls"), 3);
    ck_assert_int_eq(get_int(m, "faults"), 1);
    ck_assert_int_eq(get_int(m, "errors"), 0);
    ck_assert_int_eq(get_int(m, "new_calls"), 3);
    ck_assert_int_eq(get_int(m, "legacy_calls"), 0);
    ck_assert(get_double(m, "new_share") == 1.0);
    json_object *lat = get(m, "latency_ms");
    ck_assert(fabs(get_double(lat, "p50") - 2.0) < 2.0 * 0.032);
    ck_assert(fabs(get_double(lat, "p99") - 3.0) < 3.0 * 0.032);
    ck_assert(get_double(lat, "max") == 3.0);
    ck_assert_int_eq(get_int(m, "bytes_in"), 300);
    ck_assert_int_eq(get_int(m, "bytes_out"), 30);
    ck_assert_str_eq(get_str(m, "first_seen"), "2026-11-21T10:00:00.000Z");
    ck_assert_str_eq(get_str(m, "last_seen"), "2026-11-21T10:00:00.000Z");
    ck_assert_str_eq(get_str(m, "last_route"), "admin-m-read");
    ck_assert_str_eq(get_str(m, "route"), "admin-m-read");
    ck_assert_str_eq(get_str(m, "mode"), "direct");
    ck_assert_str_eq(get_str(m, "side"), "new");
    ck_assert_str_eq(get_str(m, "upstream"), "svc");

    m = method_of(methods, "orders.list");
    ck_assert(get_double(m, "new_share") == 0.5);
    ck_assert_str_eq(get_str(m, "route"), "admin-m-canary");
    ck_assert_str_eq(get_str(m, "mode"), "canary");
    ck_assert_str_eq(get_str(m, "side"), "canary");

    m = method_of(methods, "audit.x");
    ck_assert_str_eq(get_str(m, "route"), "admin-m-shadow");
    ck_assert_str_eq(get_str(m, "mode"), "shadow");
    ck_assert_str_eq(get_str(m, "side"), "legacy");
    ck_assert_str_eq(get_str(m, "upstream"), "legacy");

    m = method_of(methods, "misc.\"odd\"\x01");
    ck_assert_int_eq(get_int(m, "errors"), 1);
    ck_assert(get_double(m, "new_share") == 0);
    ck_assert_ptr_null(get(m, "last_route"));
    ck_assert_ptr_null(get(m, "route"));
    ck_assert_ptr_null(get(m, "mode"));
    ck_assert_str_eq(get_str(m, "side"), "none");
    ck_assert_ptr_null(get(m, "upstream"));
    json_object_put(o);

    /* What `strangler methods` makes of it. */
    struct buf table = BUF_INIT;
    ck_assert_int_eq(adminctl_format_methods(out.data, out.len, &table), 0);
    ck_assert_msg(strncmp(buf_cstr(&table),
                          "66.7% of answered calls served by new services (4 new, 2 legacy; 7 "
                          "calls since 2026-11-21T10:00:00.000Z)\n",
                          strlen("66.7% of answered calls served by new services (4 new, 2 legacy; "
                                 "7 calls since 2026-11-21T10:00:00.000Z)\n")) == 0,
                  "%s", buf_cstr(&table));
    ck_assert_ptr_nonnull(strstr(buf_cstr(&table), "misc.\"odd\"?"));
    buf_dispose(&table);

    inventory_report_dispose(&r);
    inventory_free(inv);
    buf_dispose(&out);
    buf_dispose(&errors);
    config_unref(c);
}
END_TEST

START_TEST(a_routes_side)
{
    struct buf errors = BUF_INIT;
    struct config *c = config_parse("t.conf", METHODS_TABLE, sizeof(METHODS_TABLE) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(admin_route_side(config_find_route(c, "admin-m-read")), "new");
    ck_assert_str_eq(admin_route_side(config_find_route(c, "admin-m-canary")), "canary");
    ck_assert_str_eq(admin_route_side(config_find_route(c, "admin-m-shadow")), "legacy");
    ck_assert_str_eq(admin_route_side(config_find_route(c, "admin-m-api")), "legacy");
    config_unref(c);

    /* The side is the upstream's role, not its kind. */
    static const char roles[] = "upstream facade http://127.0.0.1:1/rpc kind=json role=legacy\n"
                                "upstream rewrite http://127.0.0.1:2/RPC2 role=new\n"
                                "route admin-m-facade xmlrpc a.* -> facade\n"
                                "route admin-m-rewrite xmlrpc b.* -> rewrite\n"
                                "route admin-m-fallback xmlrpc c.* -> fallback rewrite facade\n";
    c = config_parse("t.conf", roles, sizeof(roles) - 1, &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    ck_assert_str_eq(admin_route_side(config_find_route(c, "admin-m-facade")), "legacy");
    ck_assert_str_eq(admin_route_side(config_find_route(c, "admin-m-rewrite")), "new");
    ck_assert_str_eq(admin_route_side(config_find_route(c, "admin-m-fallback")), "new");
    config_unref(c);
    buf_dispose(&errors);
}
END_TEST

Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("authorize");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, without_tokens_everyone_is_anonymous);
    tcase_add_test(tc, a_token_names_who_presents_it);
    tcase_add_test(tc, anything_else_is_refused);
    tcase_add_test(tc, secrets_that_prefix_each_other_stay_apart);
    tcase_add_test(tc, the_first_of_two_equal_secrets_is_credited);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, a_route_as_json);
    tcase_add_test(tc, a_changed_route_says_when_by_whom_and_from_what);
    tcase_add_test(tc, methods_as_json_say_who_serves_each_now);
    tcase_add_test(tc, a_routes_side);
    suite_add_tcase(s, tc);

    tc = tcase_create("server");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_unchecked_fixture(tc, make_root, scratch_root_remove);
    tcase_add_test(tc, the_api_on_a_real_loop);
    suite_add_tcase(s, tc);
    return s;
}
