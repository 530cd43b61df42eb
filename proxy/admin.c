#include "proxy/admin.h"

#include "common/clock.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/mem.h"
#include "proxy/dashboard.h"
#include "proxy/eventlog.h"
#include "proxy/metrics.h"
#include "proxy/promtext.h"
#include "proxy/router.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Operators' requests are small: a flip's body is one short JSON object. */
#define ADMIN_MAX_HEAD  (16 * 1024)
#define ADMIN_MAX_BODY  (64 * 1024)
#define ADMIN_TIMEOUT_S 10

struct admin {
    struct evhttp *http;
    struct control *ctl;
    struct config *started; /* the snapshot the API started with; one reference */
    char *address;
    struct admin_events events;  /* all NULL until admin_attach_events() */
    struct inventory *inventory; /* NULL until admin_attach_inventory(), or none */
    struct replay_job *replay;   /* the replay running, or NULL */
    struct event *replay_done;   /* activated by the replay thread when it ends */
    atomic_int stopping;         /* tells a running replay to stop (admin_free) */
};

/* ---- answers ---- */

static void reply(struct evhttp_request *req, int status, const char *type, const char *body,
                  size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    evhttp_send_reply(req, status, NULL, NULL);
}

static void reply_json(struct evhttp_request *req, int status, const struct buf *json)
{
    reply(req, status, "application/json", json->data ? json->data : "", json->len);
}

/* The lines of `lines` (FILE:LINE messages) as a JSON array of strings. */
static void put_lines(struct buf *b, const struct buf *lines)
{
    buf_append_char(b, '[');
    const char *s = lines->data, *end = lines->data + lines->len;
    int first = 1;
    while (s != NULL && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        if (n > 0) {
            if (!first)
                buf_append_char(b, ',');
            jsonw_string(b, s, n);
            first = 0;
        }
        s += n + 1;
    }
    buf_append_char(b, ']');
}

/* {"error": "...", "messages": ["FILE:LINE: ...", ...]}; messages are the
 * lines of `lines`, when there are any. */
static void reply_error(struct evhttp_request *req, int status, const char *error,
                        const struct buf *lines)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"error\":");
    jsonw_cstring(&b, error);
    if (lines != NULL && lines->len > 0) {
        buf_append_str(&b, ",\"messages\":");
        put_lines(&b, lines);
    }
    buf_append_char(&b, '}');
    reply_json(req, status, &b);
    buf_dispose(&b);
}

/* ---- authorization ---- */

/* Equal in time that depends on the configured secret's length only, never
 * on where the first difference is. */
static int secret_equal(const char *given, size_t given_len, const char *secret)
{
    size_t len = strlen(secret);
    unsigned char diff = given_len != len;
    for (size_t i = 0; i < len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

const char *admin_authorize(const struct config_admin *cfg, const char *authorization)
{
    if (cfg->ntokens == 0)
        return "anonymous";
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    size_t given_len = strlen(given);
    while (given_len > 0 && (given[given_len - 1] == ' ' || given[given_len - 1] == '\t'))
        given_len--;
    /* Every token is compared, so the time taken does not tell which one
     * (or whether any) matched. */
    const char *who = NULL;
    for (size_t i = 0; i < cfg->ntokens; i++)
        if (secret_equal(given, given_len, cfg->tokens[i].secret) && who == NULL)
            who = cfg->tokens[i].name;
    return who;
}

/* ---- routes as JSON ---- */

static void put_key(struct buf *b, const char *name)
{
    jsonw_cstring(b, name);
    buf_append_char(b, ':');
}

/* A number after the JSON text before it (a key, with its comma). */
static void put_u64_after(struct buf *b, const char *before, uint64_t v)
{
    buf_append_str(b, before);
    buf_append_u64(b, v);
}

static void put_string_or_null(struct buf *b, const char *s)
{
    if (s == NULL)
        buf_append_str(b, "null");
    else
        jsonw_cstring(b, s);
}

static void put_counters(struct buf *b, struct route_counters *c)
{
    put_u64_after(b, "{\"requests\":", metrics_read(&c->requests));
    put_u64_after(b, ",\"faults\":", metrics_read(&c->faults));
    put_u64_after(b, ",\"errors\":", metrics_read(&c->errors));
    put_u64_after(b, ",\"events\":", metrics_read(&c->events));
    buf_append_char(b, '}');
}

const char *admin_route_side(const struct route *r)
{
    if (r->mode == ROUTE_CANARY)
        return "canary";
    return r->upstream != NULL && r->upstream->new_side ? "new" : "legacy";
}

/* What a dark-launched route does and how it goes (config.h, enum
 * route_mode): "mode", "new_side", "legacy_side", "share" (the canary's
 * share or the shadow's sample, in percent), "readonly", and under
 * "dark_launch" its live figures. */
static void put_mode(struct buf *b, const struct route *r)
{
    static const char *const modes[] = {"direct", "shadow", "canary", "fallback"};
    struct route_counters *c = r->counters;
    const struct upstream_def *new_side = route_new_side(r), *legacy = route_legacy_side(r);
    uint64_t answered = metrics_read(&c->shadow_matches) + metrics_read(&c->shadow_mismatches);
    put_key(b, "mode");
    jsonw_cstring(b, modes[r->mode]);
    buf_append_char(b, ',');
    put_key(b, "side");
    jsonw_cstring(b, admin_route_side(r));
    buf_append_char(b, ',');
    put_key(b, "new_side");
    put_string_or_null(b, new_side ? new_side->name : NULL);
    buf_append_char(b, ',');
    put_key(b, "legacy_side");
    put_string_or_null(b, legacy ? legacy->name : NULL);
    buf_appendf(b, ",\"share\":%u.%02u,\"readonly\":%s,", r->share_bp / 100, r->share_bp % 100,
                r->readonly ? "true" : "false");
    put_key(b, "dark_launch");
    put_u64_after(b, "{\"shadow_sent\":", metrics_read(&c->shadow_sent));
    put_u64_after(b, ",\"shadow_matches\":", metrics_read(&c->shadow_matches));
    put_u64_after(b, ",\"shadow_mismatches\":", metrics_read(&c->shadow_mismatches));
    put_u64_after(b, ",\"shadow_errors\":", metrics_read(&c->shadow_errors));
    put_u64_after(b, ",\"shadow_dropped\":", metrics_read(&c->shadow_dropped));
    buf_append_str(b, ",\"shadow_latency_ms_avg\":");
    jsonw_double(b, answered
                        ? (double)metrics_read(&c->shadow_latency_us) / 1000.0 / (double)answered
                        : 0.0);
    put_u64_after(b, ",\"canary_new\":", metrics_read(&c->canary_new));
    put_u64_after(b, ",\"canary_rest\":", metrics_read(&c->canary_rest));
    put_u64_after(b, ",\"fallbacks\":", metrics_read(&c->fallbacks));
    put_u64_after(b, ",\"rollbacks\":", metrics_read(&c->rollbacks));
    buf_append_str(b, "},");
}

static void put_changed(struct buf *b, const struct control_audit *changed)
{
    if (changed == NULL) {
        buf_append_str(b, "null");
        return;
    }
    char at[CLOCK_RFC3339_LEN + 1];
    clock_format_rfc3339(at, changed->at_us);
    buf_append_str(b, "{\"at\":");
    jsonw_cstring(b, at);
    buf_append_str(b, ",\"by\":");
    jsonw_cstring(b, changed->by);
    buf_append_str(b, ",\"before\":");
    put_string_or_null(b, changed->before);
    buf_append_char(b, '}');
}

void admin_write_route(struct buf *out, const struct route *r, const struct control_audit *changed)
{
    struct buf match = BUF_INIT;
    config_describe_match(r, &match);
    buf_append_char(out, '{');
    put_key(out, "name");
    jsonw_cstring(out, r->name);
    buf_append_str(out, ",\"line\":");
    jsonw_i64(out, r->line);
    buf_append_char(out, ',');
    put_key(out, "match");
    jsonw_string(out, match.data, match.len);
    buf_append_str(out, ",\"conditions\":[");
    for (size_t i = 0; i < r->nconditions; i++) {
        struct buf k = BUF_INIT;
        buf_appendf(&k, "header %s=%s", r->conditions[i].name, r->conditions[i].value);
        if (i > 0)
            buf_append_char(out, ',');
        jsonw_string(out, k.data, k.len);
        buf_dispose(&k);
    }
    buf_append_str(out, "],");
    put_key(out, "action");
    jsonw_cstring(out, r->action);
    buf_append_char(out, ',');
    put_key(out, "upstream");
    put_string_or_null(out, r->upstream ? r->upstream->name : NULL);
    buf_append_char(out, ',');
    put_key(out, "kind");
    put_string_or_null(out, r->upstream ? r->upstream->kind : NULL);
    buf_append_str(out, r->intercept ? ",\"intercept\":true," : ",\"intercept\":false,");
    put_key(out, "event_type");
    put_string_or_null(out, r->rule.type);
    buf_append_char(out, ',');
    put_mode(out, r);
    put_key(out, "counters");
    put_counters(out, r->counters);
    buf_append_char(out, ',');
    put_key(out, "changed");
    put_changed(out, changed);
    buf_append_char(out, '}');
    buf_dispose(&match);
}

static void reply_route(struct admin *a, struct evhttp_request *req, const char *name)
{
    const struct config *cfg = control_config(a->ctl);
    const struct route *r = config_find_route(cfg, name);
    if (r == NULL) {
        struct buf msg = BUF_INIT;
        buf_appendf(&msg, "no route named '%s'", name);
        reply_error(req, 404, buf_cstr(&msg), NULL);
        buf_dispose(&msg);
        return;
    }
    struct buf b = BUF_INIT;
    admin_write_route(&b, r, control_last_change(a->ctl, name));
    reply_json(req, 200, &b);
    buf_dispose(&b);
}

static void reply_routes(struct admin *a, struct evhttp_request *req)
{
    const struct config *cfg = control_config(a->ctl);
    struct buf b = BUF_INIT;
    buf_append_char(&b, '[');
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (i > 0)
            buf_append_char(&b, ',');
        admin_write_route(&b, &cfg->routes[i], control_last_change(a->ctl, cfg->routes[i].name));
    }
    buf_append_char(&b, ']');
    reply_json(req, 200, &b);
    buf_dispose(&b);
}

/* ---- metrics ---- */

static void reply_metrics(struct admin *a, struct evhttp_request *req)
{
    struct promtext_sources src = {
        .cfg = control_config(a->ctl),
        .spool = a->events.spool,
        .interceptor = a->events.interceptor,
        .publisher = a->events.publisher ? *a->events.publisher : NULL,
        .workers = a->started->workers,
    };
    struct buf b = BUF_INIT;
    promtext_write(&b, &src);
    reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len);
    buf_dispose(&b);
}

/* ---- the method inventory ---- */

static void put_time(struct buf *b, const char *key, int64_t us)
{
    char at[CLOCK_RFC3339_LEN + 1];
    clock_format_rfc3339(at, us);
    put_key(b, key);
    jsonw_cstring(b, at);
}

/* Who serves a method now: the route in force that would take it (by its
 * name alone, as a call to the monolith's one URL), and that route's side. */
static void put_serving(struct buf *b, const struct config *cfg, const char *method)
{
    struct router_request rr = {
        .http_method = "POST",
        .http_method_len = 4,
        .path = "/RPC2",
        .path_len = 5,
        .xmlrpc_method = method,
        .xmlrpc_method_len = strlen(method),
    };
    const struct route *r = router_match(cfg, &rr);
    static const char *const modes[] = {"direct", "shadow", "canary", "fallback"};
    put_key(b, "route");
    put_string_or_null(b, r ? r->name : NULL);
    buf_append_char(b, ',');
    put_key(b, "mode");
    put_string_or_null(b, r ? modes[r->mode] : NULL);
    buf_append_char(b, ',');
    put_key(b, "side");
    jsonw_cstring(b, r ? admin_route_side(r) : "none");
    buf_append_char(b, ',');
    put_key(b, "upstream");
    put_string_or_null(b, r && r->upstream ? r->upstream->name : NULL);
}

static void put_share(struct buf *b, uint64_t new_calls, uint64_t legacy_calls)
{
    uint64_t all = new_calls + legacy_calls;
    put_u64_after(b, "\"new_calls\":", new_calls);
    put_u64_after(b, ",\"legacy_calls\":", legacy_calls);
    buf_append_str(b, ",\"new_share\":");
    jsonw_double(b, all ? (double)new_calls / (double)all : 0.0);
}

static void put_method(struct buf *b, const struct config *cfg, const struct inventory_method *m)
{
    buf_append_str(b, "{\"method\":");
    jsonw_cstring(b, m->method);
    put_u64_after(b, ",\"calls\":", m->calls);
    put_u64_after(b, ",\"faults\":", m->faults);
    put_u64_after(b, ",\"errors\":", m->errors);
    buf_append_char(b, ',');
    put_share(b, m->new_calls, m->legacy_calls);
    buf_append_str(b, ",\"latency_ms\":{\"p50\":");
    jsonw_double(b, m->p50_ms);
    buf_append_str(b, ",\"p99\":");
    jsonw_double(b, m->p99_ms);
    buf_append_str(b, ",\"max\":");
    jsonw_double(b, m->max_ms);
    put_u64_after(b, "},\"bytes_in\":", m->bytes_in);
    put_u64_after(b, ",\"bytes_out\":", m->bytes_out);
    buf_append_char(b, ',');
    put_time(b, "first_seen", m->first_seen_us);
    buf_append_char(b, ',');
    put_time(b, "last_seen", m->last_seen_us);
    buf_append_char(b, ',');
    put_key(b, "last_route");
    put_string_or_null(b, m->route);
    buf_append_char(b, ',');
    put_serving(b, cfg, m->method);
    buf_append_char(b, '}');
}

void admin_write_methods(struct buf *out, const struct config *cfg,
                         const struct inventory_report *r, int64_t now_us)
{
    buf_append_char(out, '{');
    put_time(out, "since", r->since_us);
    buf_append_char(out, ',');
    put_time(out, "now", now_us);
    put_u64_after(out, ",\"max_methods\":", r->max_methods);
    put_u64_after(out, ",\"methods_tracked\":", r->tracked);
    put_u64_after(out, ",\"untracked_calls\":", r->untracked_calls);
    put_u64_after(out, ",\"totals\":{\"calls\":", r->calls);
    buf_append_char(out, ',');
    put_share(out, r->new_calls, r->legacy_calls);
    buf_append_str(out, "},\"methods\":[");
    for (size_t i = 0; i < r->nmethods; i++) {
        if (i > 0)
            buf_append_char(out, ',');
        put_method(out, cfg, &r->methods[i]);
    }
    buf_append_str(out, "]}");
}

/* GET /methods?limit=N: the N most called (all without a limit). Returns
 * 0, or -1 when the query is not one. */
static int read_limit(struct evhttp_request *req, size_t *limit)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq params;
    int rc = 0;
    *limit = SIZE_MAX;
    if (query == NULL)
        return 0;
    if (evhttp_parse_query_str(query, &params) != 0)
        return -1;
    const char *v = evhttp_find_header(&params, "limit");
    if (v != NULL) {
        char *end = NULL;
        unsigned long long n = strtoull(v, &end, 10);
        if (v[0] < '0' || v[0] > '9' || *end != '\0' || n == 0)
            rc = -1;
        *limit = (size_t)n;
    }
    evhttp_clear_headers(&params);
    return rc;
}

static void reply_methods(struct admin *a, struct evhttp_request *req)
{
    size_t limit;
    if (a->inventory == NULL) {
        reply_error(req, 404, "the method inventory is off (max_methods 0)", NULL);
        return;
    }
    if (read_limit(req, &limit) != 0) {
        reply_error(req, 400, "limit must be a positive number (GET /methods?limit=50)", NULL);
        return;
    }
    struct inventory_report r;
    struct buf b = BUF_INIT;
    inventory_report_top(a->inventory, limit, &r);
    admin_write_methods(&b, control_config(a->ctl), &r, clock_realtime_us());
    reply_json(req, 200, &b);
    inventory_report_dispose(&r);
    buf_dispose(&b);
}

void admin_attach_inventory(struct admin *a, struct inventory *inv)
{
    a->inventory = inv;
}

/* ---- changes ---- */

static void put_changes(struct buf *b, const struct control_outcome *o)
{
    buf_append_char(b, '[');
    for (size_t i = 0; i < o->nchanges; i++) {
        const struct control_change *c = &o->changes[i];
        if (i > 0)
            buf_append_char(b, ',');
        buf_append_str(b, "{\"route\":");
        jsonw_cstring(b, c->route);
        buf_append_str(b, ",\"before\":");
        put_string_or_null(b, c->before);
        buf_append_str(b, ",\"after\":");
        put_string_or_null(b, c->after);
        buf_append_char(b, '}');
    }
    buf_append_char(b, ']');
}

static void handle_reload(struct admin *a, struct evhttp_request *req, const char *who)
{
    struct control_outcome o;
    control_outcome_init(&o);
    if (control_reload(a->ctl, who, &o) != 0) {
        reply_error(req, o.status, buf_cstr(&o.error), &o.messages);
        goto out;
    }
    const struct config *cfg = control_config(a->ctl);
    struct buf b = BUF_INIT;
    buf_append_str(&b, "{\"routes\":");
    buf_append_u64(&b, cfg->nroutes);
    buf_append_str(&b, ",\"upstreams\":");
    buf_append_u64(&b, cfg->nupstreams);
    buf_append_str(&b, ",\"changed\":");
    put_changes(&b, &o);
    buf_append_str(&b, ",\"warnings\":");
    put_lines(&b, &o.messages);
    buf_append_char(&b, '}');
    reply_json(req, 200, &b);
    buf_dispose(&b);
out:
    control_outcome_dispose(&o);
}

static int only_blanks(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

static const char body_not_json[] = "the body is not JSON";

/* The request's body as a JSON object, strictly parsed. Returns it (the
 * caller puts it), or NULL with *why set (to body_not_json when it is not
 * JSON at all). */
static json_object *read_json_object(struct evhttp_request *req, const char **why)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in); /* at most ADMIN_MAX_BODY */
    json_object *body = NULL;
    char *text = mem_alloc(len + 1);
    json_tokener *tok = json_tokener_new();
    if (tok == NULL)
        goto out;
    evbuffer_copyout(in, text, len);
    text[len] = '\0';
    /* Strict: no single quotes, no comments, nothing json-c would guess. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    body = json_tokener_parse_ex(tok, text, (int)len);
    if (body == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !only_blanks(text + json_tokener_get_parse_end(tok),
                     len - json_tokener_get_parse_end(tok))) {
        *why = body_not_json;
        json_object_put(body);
        body = NULL;
    } else if (!json_object_is_type(body, json_type_object)) {
        *why = "the body is not a JSON object";
        json_object_put(body);
        body = NULL;
    }
out:
    if (tok != NULL)
        json_tokener_free(tok);
    free(text);
    return body;
}

/* Member `key` of obj when it is a string without NUL bytes; NULL when
 * absent or null. Sets *bad when it is there but is something else. */
static const char *string_member(json_object *obj, const char *key, int *bad)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
        return NULL;
    const char *s = json_object_get_string(v);
    if (!json_object_is_type(v, json_type_string) ||
        strlen(s) != (size_t)json_object_get_string_len(v)) {
        *bad = 1;
        return NULL;
    }
    return s;
}

/* The "action" of a flip's body, {"action": "stock-svc"}, copied into
 * action (size bytes). Returns 0, or -1 with a reason in why. */
static int read_action(struct evhttp_request *req, char *action, size_t size, const char **why)
{
    int bad = 0, rc = -1;
    json_object *body = read_json_object(req, why);
    const char *s = body ? string_member(body, "action", &bad) : NULL;
    if (body == NULL && *why == body_not_json) {
        *why = "the body is not JSON (expected {\"action\": \"UPSTREAM\"})";
        goto out;
    }
    if (s == NULL) {
        *why = "expected {\"action\": \"UPSTREAM\"}";
        goto out;
    }
    if (strlen(s) >= size) {
        *why = "the action is too long";
        goto out;
    }
    memcpy(action, s, strlen(s) + 1);
    rc = 0;
out:
    json_object_put(body);
    return rc;
}

static void handle_flip(struct admin *a, struct evhttp_request *req, const char *name,
                        const char *who)
{
    char action[1024];
    const char *why = NULL;
    struct control_outcome o;
    control_outcome_init(&o);
    if (read_action(req, action, sizeof(action), &why) != 0) {
        reply_error(req, 400, why, NULL);
        goto out;
    }
    if (control_flip(a->ctl, who, name, action, &o) != 0) {
        reply_error(req, o.status, buf_cstr(&o.error), &o.messages);
        goto out;
    }
    reply_route(a, req, name);
out:
    control_outcome_dispose(&o);
}

/* ---- events ---- */

/*
 * A replay reads the whole retained spool, so it runs on a thread of its
 * own: the main loop goes on serving the API and signals meanwhile. The
 * thread reports back through `done`, an event it activates (libevent's
 * locking makes that safe from another thread), and the answer is sent
 * from the main loop. One replay at a time. A client that hangs up before
 * the end loses only the answer; the replay completes.
 */
struct replay_job {
    struct admin *a;
    struct evhttp_request *req; /* NULL once the client hung up */
    struct eventlog_filter f;
    char *since; /* as the client wrote it, for the log; NULL: all */
    char *type;  /* owned copy behind f.type_glob */
    char *who;
    pthread_t thread;
    struct eventlog_replay_result result;
    int rc;
};

static void replay_job_free(struct replay_job *job)
{
    free(job->since);
    free(job->type);
    free(job->who);
    free(job);
}

static void *run_replay(void *arg)
{
    struct replay_job *job = arg;
    job->rc = eventlog_replay(job->a->events.spool, &job->f, &job->a->stopping, &job->result);
    event_active(job->a->replay_done, EV_TIMEOUT, 0);
    return NULL;
}

static void on_replay_client_gone(struct evhttp_connection *evcon, void *arg)
{
    struct admin *a = arg;
    (void)evcon;
    if (a->replay != NULL)
        a->replay->req = NULL;
}

static void reply_replay(struct evhttp_request *req, const struct replay_job *job)
{
    const struct eventlog_replay_result *r = &job->result;
    char resume[CLOCK_RFC3339_LEN + 1] = "";
    struct buf b = BUF_INIT;
    if (job->rc < 0) {
        reply_error(req, 500, r->why, NULL);
        return;
    }
    buf_append_str(&b, "{\"replayed\":");
    buf_append_u64(&b, r->replayed);
    if (job->rc > 0) {
        clock_format_rfc3339(resume, r->resume_us);
        buf_append_str(&b, ",\"stopped\":");
        jsonw_cstring(&b, r->why);
        buf_append_str(&b, ",\"resume_since\":");
        jsonw_cstring(&b, resume);
    }
    buf_append_char(&b, '}');
    reply_json(req, 200, &b);
    buf_dispose(&b);
}

/* On the main loop, once the replay thread is done. */
static void on_replay_done(evutil_socket_t fd, short what, void *arg)
{
    struct admin *a = arg;
    struct replay_job *job = a->replay;
    (void)fd;
    (void)what;
    pthread_join(job->thread, NULL);
    a->replay = NULL;
    if (job->rc < 0)
        log_error("admin: replay by %s failed after %llu events: %s", job->who,
                  (unsigned long long)job->result.replayed, job->result.why);
    else
        log_info("admin: replay by %s: %llu events since %s of type %s queued for publishing%s%s",
                 job->who, (unsigned long long)job->result.replayed,
                 job->since ? job->since : "the start of retention",
                 job->f.type_glob ? job->f.type_glob : "*", job->rc > 0 ? "; stopped: " : "",
                 job->rc > 0 ? job->result.why : "");
    if (job->req != NULL) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(job->req), NULL, NULL);
        reply_replay(job->req, job);
    }
    replay_job_free(job);
}

/* Reads {"since": TIME|SPAN, "type": GLOB}, both optional (an empty body
 * replays everything retained), into job. Returns 0, or -1 after answering. */
static int read_replay_request(struct evhttp_request *req, struct replay_job *job)
{
    static const char shape[] = "expected {\"since\": \"2026-11-21T10:00:00Z\" or \"1h\", "
                                "\"type\": \"GLOB\"}, both optional";
    const char *why = shape, *since = NULL, *type = NULL;
    char reason[512];
    int bad = 0, rc = -1;
    json_object *body = NULL;
    if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > 0) {
        body = read_json_object(req, &why);
        since = body ? string_member(body, "since", &bad) : NULL;
        type = body ? string_member(body, "type", &bad) : NULL;
        if (body == NULL || bad) {
            reply_error(req, 400, body == NULL ? why : shape, NULL);
            goto out;
        }
    }
    if (since != NULL && eventlog_parse_since(since, clock_realtime_us(), &job->f.since_us, reason,
                                              sizeof(reason)) != 0) {
        reply_error(req, 400, reason, NULL);
        goto out;
    }
    job->since = since ? mem_strdup(since) : NULL;
    job->type = type ? mem_strdup(type) : NULL;
    job->f.type_glob = job->type;
    rc = 0;
out:
    json_object_put(body);
    return rc;
}

/* POST /events/replay: answered when the replay is done, with
 * {"replayed": N} and, when it stopped early, "stopped" (why) and
 * "resume_since" (the time to replay from next). */
static void handle_replay(struct admin *a, struct evhttp_request *req, const char *who)
{
    if (a->events.spool == NULL) {
        reply_error(req, 503, "events are not wired to this admin API", NULL);
        return;
    }
    if (a->replay != NULL) {
        reply_error(req, 409, "a replay is already running; wait for its answer", NULL);
        return;
    }
    struct replay_job *job = mem_calloc(1, sizeof(*job));
    job->a = a;
    job->req = req;
    job->who = mem_strdup(who);
    if (read_replay_request(req, job) != 0) {
        replay_job_free(job);
        return;
    }
    if (pthread_create(&job->thread, NULL, run_replay, job) != 0) {
        reply_error(req, 500, "cannot start the replay thread", NULL);
        replay_job_free(job);
        return;
    }
    a->replay = job;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_replay_client_gone, a);
}

void admin_attach_events(struct admin *a, const struct admin_events *events)
{
    a->events = *events;
}

/* ---- dispatch ---- */

static int method_is(struct evhttp_request *req, enum evhttp_cmd_type cmd)
{
    return evhttp_request_get_command(req) == cmd;
}

static void reply_bad_method(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    reply_error(req, 405, "method not allowed here", NULL);
}

static void dispatch(struct admin *a, struct evhttp_request *req, const char *path, const char *who)
{
    if (strcmp(path, "/routes") == 0) {
        if (method_is(req, EVHTTP_REQ_GET) || method_is(req, EVHTTP_REQ_HEAD))
            reply_routes(a, req);
        else
            reply_bad_method(req, "GET");
        return;
    }
    if (strncmp(path, "/routes/", 8) == 0 && config_valid_name(path + 8)) {
        if (method_is(req, EVHTTP_REQ_GET) || method_is(req, EVHTTP_REQ_HEAD))
            reply_route(a, req, path + 8);
        else if (method_is(req, EVHTTP_REQ_PUT))
            handle_flip(a, req, path + 8, who);
        else
            reply_bad_method(req, "GET, PUT");
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        if (method_is(req, EVHTTP_REQ_GET) || method_is(req, EVHTTP_REQ_HEAD))
            reply_metrics(a, req);
        else
            reply_bad_method(req, "GET");
        return;
    }
    if (strcmp(path, "/methods") == 0) {
        if (method_is(req, EVHTTP_REQ_GET) || method_is(req, EVHTTP_REQ_HEAD))
            reply_methods(a, req);
        else
            reply_bad_method(req, "GET");
        return;
    }
    if (strcmp(path, "/reload") == 0) {
        if (method_is(req, EVHTTP_REQ_POST))
            handle_reload(a, req, who);
        else
            reply_bad_method(req, "POST");
        return;
    }
    if (strcmp(path, "/events/replay") == 0) {
        if (method_is(req, EVHTTP_REQ_POST))
            handle_replay(a, req, who);
        else
            reply_bad_method(req, "POST");
        return;
    }
    reply_error(req, 404,
                "no such endpoint (try GET /, GET /routes, PUT /routes/NAME, GET /methods, "
                "GET /metrics, POST /reload, POST /events/replay)",
                NULL);
}

/*
 * The tokens that guard the API. A reload may rotate them; but the API
 * keeps listening where it started until a restart, so a snapshot whose
 * admin line moved or went away must not decide who may use it there (it
 * could leave a non-loopback address without a token): the tokens it
 * started with stay in force.
 */
static const struct config_admin *tokens_in_force(const struct admin *a)
{
    const struct config_admin *now = &control_config(a->ctl)->admin;
    const struct config_admin *then = &a->started->admin;
    if (now->enabled && strcmp(now->addr.text, then->addr.text) == 0)
        return now;
    return then;
}

/* The dashboard's files need no token: they hold no data, and the page
 * asks for the token before it asks the API for any. */
static void reply_asset(struct evhttp_request *req, const struct dashboard_asset *asset)
{
    if (!method_is(req, EVHTTP_REQ_GET) && !method_is(req, EVHTTP_REQ_HEAD)) {
        reply_bad_method(req, "GET");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "Content-Security-Policy",
                      "default-src 'self'; frame-ancestors 'none'; base-uri 'none'");
    reply(req, 200, asset->content_type, (const char *)asset->data, asset->len);
}

/* Whether `host` (a Host header's value) names this machine's loopback:
 * localhost, 127.0.0.0/8 or [::1], with or without a port. */
static int host_is_loopback(const char *host)
{
    char name[256];
    size_t n = strlen(host);
    if (n == 0 || n >= sizeof(name))
        return 0;
    memcpy(name, host, n + 1);
    char *colon = name[0] == '[' ? strstr(name, "]:") : strrchr(name, ':');
    if (colon != NULL)
        colon[name[0] == '[' ? 1 : 0] = '\0';
    struct in_addr v4;
    return strcasecmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0 ||
           (inet_pton(AF_INET, name, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127);
}

/*
 * A web page the operator happens to visit must not use the API through
 * the operator's browser. A browser says where a request comes from
 * (Origin): one from another origin than the API's own (the dashboard's)
 * is refused. Without a token, a page could also rebind its own name to
 * 127.0.0.1 and be "same origin": then the Host it sends is its own name,
 * so only a loopback Host, or the admin address itself, is served. Tools
 * such as curl and `strangler` send neither an Origin nor a strange Host.
 */
static const char *foreign_request(const struct admin *a, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *host = evhttp_find_header(in, "Host");
    const char *origin = evhttp_find_header(in, "Origin");
    if (origin != NULL &&
        (host == NULL || strncmp(origin, "http://", 7) != 0 || strcmp(origin + 7, host) != 0))
        return "cross-origin requests are refused";
    if (tokens_in_force(a)->ntokens > 0)
        return NULL; /* the token says who it is; no page can read it */
    if (host != NULL && !host_is_loopback(host) && strcmp(host, a->address) != 0)
        return "without an admin token only loopback names are served (Host)";
    return NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct admin *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path == NULL || path[0] == '\0')
        path = "/";
    if (strcmp(path, "/healthz") == 0) {
        reply(req, 200, "text/plain; charset=utf-8", "ok", 2);
        return;
    }
    /* Browsers ask for an icon with every page; there is none, and the
     * question needs no token (nor a line in the log saying it had none). */
    if (strcmp(path, "/favicon.ico") == 0) {
        reply(req, 204, "image/x-icon", "", 0);
        return;
    }
    const struct dashboard_asset *asset = dashboard_find(path);
    if (asset != NULL) {
        reply_asset(req, asset);
        return;
    }
    const char *foreign = foreign_request(a, req);
    if (foreign != NULL) {
        log_warn("admin: %s refused: %s", path, foreign);
        reply_error(req, 403, foreign, NULL);
        return;
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *who = admin_authorize(tokens_in_force(a), auth);
    if (who == NULL) {
        log_warn("admin: %s %s refused: %s", method_is(req, EVHTTP_REQ_GET) ? "GET" : "request",
                 path, auth ? "wrong token" : "no token");
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"strangler\"");
        reply_error(req, 401, "a valid admin token is required (Authorization: Bearer TOKEN)",
                    NULL);
        return;
    }
    dispatch(a, req, path, who);
}

/* ---- the server ---- */

static char *address_text(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return mem_strdup("?");
    return config_addr_text((const struct sockaddr *)&ss);
}

static int open_socket(const struct config_addr *addr, char *err, size_t errlen)
{
    int one = 1;
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)&addr->sa, addr->len) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "admin %s: %s", addr->text, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

struct admin *admin_start(struct event_base *base, struct control *ctl, char *err, size_t errlen)
{
    const struct config_admin *cfg = &control_config(ctl)->admin;
    struct admin *a = mem_calloc(1, sizeof(*a));
    int fd = open_socket(&cfg->addr, err, errlen);
    if (fd < 0)
        goto fail;
    a->ctl = ctl;
    a->started = config_ref(control_config(ctl));
    a->http = evhttp_new(base);
    if (a->http == NULL) {
        snprintf(err, errlen, "admin: cannot create the HTTP server");
        close(fd);
        goto fail;
    }
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEAD);
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
    evhttp_set_allowed_methods(a->http,
                               EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_POST);
    evhttp_set_gencb(a->http, on_request, a);
    if (evhttp_accept_socket_with_handle(a->http, fd) == NULL) {
        snprintf(err, errlen, "admin %s: cannot accept connections", cfg->addr.text);
        close(fd);
        goto fail;
    }
    a->address = address_text(fd);
    a->replay_done = event_new(base, -1, 0, on_replay_done, a);
    if (a->replay_done == NULL) {
        snprintf(err, errlen, "admin: cannot create the replay event");
        goto fail;
    }
    return a;
fail:
    admin_free(a);
    return NULL;
}

void admin_free(struct admin *a)
{
    if (a == NULL)
        return;
    if (a->replay != NULL) {
        /* The replay stops at its next event; its answer is not sent. */
        atomic_store(&a->stopping, 1);
        pthread_join(a->replay->thread, NULL);
        replay_job_free(a->replay);
        a->replay = NULL; /* evhttp_free() below may still call on_replay_client_gone */
    }
    if (a->replay_done != NULL)
        event_free(a->replay_done);
    if (a->http != NULL)
        evhttp_free(a->http);
    config_unref(a->started);
    free(a->address);
    free(a);
}

const char *admin_address(const struct admin *a)
{
    return a->address;
}
