#include "proxy/control.h"

#include "common/clock.h"
#include "common/ids.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/mem.h"
#include "interceptors/event.h"
#include "proxy/conffile.h"
#include "proxy/metrics.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_CHANGED_TYPE "strangler.route.changed"
#define ACTION_MAX         512

/* A route's last change; the list only grows with route names ever seen. */
struct audit_entry {
    struct audit_entry *next;
    char *route;
    struct control_audit audit;
};

struct control {
    struct config *cfg; /* in force; one reference */
    struct spool *spool;
    control_install_fn install;
    void *arg;
    struct audit_entry *audits;
};

void control_outcome_init(struct control_outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->status = 200;
}

static struct control_change *add_change(struct control_outcome *o, const char *route,
                                         const char *before, const char *after)
{
    o->changes = mem_realloc(o->changes, (o->nchanges + 1) * sizeof(*o->changes));
    struct control_change *c = &o->changes[o->nchanges++];
    c->route = mem_strdup(route);
    c->before = before ? mem_strdup(before) : NULL;
    c->after = after ? mem_strdup(after) : NULL;
    c->match_before = NULL;
    return c;
}

void control_outcome_dispose(struct control_outcome *o)
{
    for (size_t i = 0; i < o->nchanges; i++) {
        free(o->changes[i].route);
        free(o->changes[i].before);
        free(o->changes[i].after);
        free(o->changes[i].match_before);
    }
    free(o->changes);
    buf_dispose(&o->error);
    buf_dispose(&o->messages);
    o->changes = NULL;
    o->nchanges = 0;
}

static int refuse(struct control_outcome *o, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct control_outcome *o, int status, const char *fmt, ...)
{
    va_list ap;
    o->status = status;
    va_start(ap, fmt);
    buf_vappendf(&o->error, fmt, ap);
    va_end(ap);
    return -1;
}

struct control *control_new(struct config *cfg, struct spool *spool, control_install_fn install,
                            void *arg)
{
    struct control *ctl = mem_calloc(1, sizeof(*ctl));
    ctl->cfg = cfg;
    ctl->spool = spool;
    ctl->install = install;
    ctl->arg = arg;
    atomic_store(&metrics_process()->last_change_us, clock_realtime_us());
    return ctl;
}

void control_free(struct control *ctl)
{
    if (ctl == NULL)
        return;
    while (ctl->audits != NULL) {
        struct audit_entry *e = ctl->audits;
        ctl->audits = e->next;
        free(e->route);
        free(e->audit.by);
        free(e->audit.before);
        free(e);
    }
    config_unref(ctl->cfg);
    free(ctl);
}

struct config *control_config(const struct control *ctl)
{
    return ctl->cfg;
}

const struct control_audit *control_last_change(const struct control *ctl, const char *name)
{
    for (const struct audit_entry *e = ctl->audits; e != NULL; e = e->next)
        if (strcmp(e->route, name) == 0)
            return &e->audit;
    return NULL;
}

static void remember_change(struct control *ctl, const char *route, const char *by,
                            const char *before, int64_t at_us)
{
    struct audit_entry *e;
    for (e = ctl->audits; e != NULL && strcmp(e->route, route) != 0; e = e->next)
        ;
    if (e == NULL) {
        e = mem_calloc(1, sizeof(*e));
        e->route = mem_strdup(route);
        e->next = ctl->audits;
        ctl->audits = e;
    }
    free(e->audit.by);
    free(e->audit.before);
    e->audit.at_us = at_us;
    e->audit.by = mem_strdup(by);
    e->audit.before = before ? mem_strdup(before) : NULL;
}

static void put_member(struct buf *b, const char *name, const char *value)
{
    if (b->len > 1)
        buf_append_char(b, ',');
    jsonw_cstring(b, name);
    buf_append_char(b, ':');
    if (value == NULL)
        buf_append_str(b, "null");
    else
        jsonw_cstring(b, value);
}

/*
 * The strangler.route.changed event: into the spool like any intercepted
 * call, so it reaches the broker with the same guarantees (and in order
 * with the calls around it). `r` is the route as it now stands, or as it
 * stood when a reload removed it.
 */
static void raise_event(struct control *ctl, const struct route *r, const char *reason,
                        const char *who, const struct control_change *c, int64_t at_us)
{
    if (ctl->spool == NULL)
        return;
    struct buf data = BUF_INIT, match = BUF_INIT, body = BUF_INIT;
    config_describe_match(r, &match);
    buf_append_char(&data, '{');
    put_member(&data, "route", c->route);
    put_member(&data, "match", buf_cstr(&match));
    if (c->match_before != NULL)
        put_member(&data, "match_before", c->match_before);
    put_member(&data, "before", c->before);
    put_member(&data, "after", c->after);
    put_member(&data, "by", who);
    put_member(&data, "reason", reason);
    put_member(&data, "config", ctl->cfg->path);
    buf_append_str(&data, ",\"line\":");
    jsonw_i64(&data, r->line);
    buf_append_char(&data, '}');

    struct event_envelope env = {
        .type = ROUTE_CHANGED_TYPE, .source = ctl->cfg->events.source, .time_us = at_us};
    ids_new_uuid(env.id);
    event_write_with_data(&body, &env, c->route, data.data, data.len);
    struct spool_event ev = {
        .time_us = at_us,
        .id = env.id,
        .type = ROUTE_CHANGED_TYPE,
        .key = ROUTE_CHANGED_TYPE,
        .body = body.data,
        .body_len = body.len,
    };
    if (spool_append(ctl->spool, &ev) != 0)
        log_error("audit: the %s event for route %s could not be spooled", ROUTE_CHANGED_TYPE,
                  c->route);
    buf_dispose(&data);
    buf_dispose(&match);
    buf_dispose(&body);
}

/* Logs, remembers and announces each change of o, made by `who`. */
static void audit_changes(struct control *ctl, const struct config *old, const char *reason,
                          const char *who, const struct control_outcome *o)
{
    int64_t now = clock_realtime_us();
    for (size_t i = 0; i < o->nchanges; i++) {
        const struct control_change *c = &o->changes[i];
        const struct route *r = config_find_route(ctl->cfg, c->route);
        if (r == NULL)
            r = config_find_route(old, c->route);
        log_info("audit: %s by %s: route %s: %s -> %s (%s:%d)", reason, who, c->route,
                 c->before ? c->before : "(new)", c->after ? c->after : "(removed)", ctl->cfg->path,
                 r->line);
        remember_change(ctl, c->route, who, c->before, now);
        raise_event(ctl, r, reason, who, c, now);
    }
}

/* The match of a route as routes.conf says it, in the caller's buf. */
static const char *match_of(const struct route *r, struct buf *b)
{
    b->len = 0;
    config_describe_match(r, b);
    return buf_cstr(b);
}

/* The routes whose action or match differs between two snapshots, by name:
 * a reload that widens a match moves methods as surely as a flip does. */
static void diff_routes(const struct config *old, const struct config *next,
                        struct control_outcome *o)
{
    struct buf was = BUF_INIT, now = BUF_INIT;
    for (size_t i = 0; i < next->nroutes; i++) {
        const struct route *n = &next->routes[i];
        const struct route *before = config_find_route(old, n->name);
        if (before == NULL) {
            add_change(o, n->name, NULL, n->action);
            continue;
        }
        int moved = strcmp(match_of(before, &was), match_of(n, &now)) != 0;
        if (moved || strcmp(before->action, n->action) != 0) {
            struct control_change *c = add_change(o, n->name, before->action, n->action);
            if (moved)
                c->match_before = mem_strdup(buf_cstr(&was));
        }
    }
    for (size_t i = 0; i < old->nroutes; i++)
        if (config_find_route(next, old->routes[i].name) == NULL)
            add_change(o, old->routes[i].name, old->routes[i].action, NULL);
    buf_dispose(&was);
    buf_dispose(&now);
}

/* Makes next the snapshot in force (taking over its reference). */
static void install(struct control *ctl, struct config *next)
{
    struct config *old = ctl->cfg;
    ctl->cfg = next;
    atomic_store(&metrics_process()->last_change_us, clock_realtime_us());
    if (ctl->install != NULL)
        ctl->install(ctl->arg, old, next);
    config_unref(old);
}

int control_reload(struct control *ctl, const char *who, struct control_outcome *o)
{
    struct config *next = config_load(ctl->cfg->path, &o->messages);
    if (next == NULL) {
        metrics_bump(&metrics_process()->reloads_failed);
        return refuse(o, 400, "%s has errors; the running table stays", ctl->cfg->path);
    }
    metrics_bump(&metrics_process()->reloads);
    struct config *old = config_ref(ctl->cfg);
    diff_routes(old, next, o);
    install(ctl, next);
    log_info("reloaded %s (by %s): %zu routes, %zu upstreams, %zu changed", ctl->cfg->path, who,
             ctl->cfg->nroutes, ctl->cfg->nupstreams, o->nchanges);
    audit_changes(ctl, old, "reload", who, o);
    config_unref(old);
    return 0;
}

/* Collapses blanks to single spaces and trims; refuses what cannot sit on
 * one routes.conf line as an action. Returns the normalised text or NULL. */
static char *normalise_action(const char *action, struct control_outcome *o)
{
    struct buf b = BUF_INIT;
    size_t len = strlen(action);
    if (len == 0 || len > ACTION_MAX) {
        refuse(o, 400, "an action is 1 to %d characters", ACTION_MAX);
        goto fail;
    }
    for (const char *s = action; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == '\t') {
            if (b.len > 0 && b.data[b.len - 1] != ' ')
                buf_append_char(&b, ' ');
        } else if (c < 0x20 || c == 0x7f || c == '#') {
            refuse(o, 400, "an action cannot hold control characters or '#'");
            goto fail;
        } else {
            buf_append_char(&b, (char)c);
        }
    }
    if (b.len > 0 && b.data[b.len - 1] == ' ')
        b.len--;
    if (b.len == 0) {
        refuse(o, 400, "the action is empty");
        goto fail;
    }
    return buf_steal(&b);
fail:
    buf_dispose(&b);
    return NULL;
}

/*
 * The text the running table came from with route r's action replaced,
 * parsed into a snapshot. Returns it, or NULL with o filled.
 */
static struct config *edit_action(struct control *ctl, const struct route *r, const char *action,
                                  struct buf *text, struct control_outcome *o)
{
    const struct config *cur = ctl->cfg;
    /* The words must all be the action: "legacy intercept" would otherwise
     * slip an option in through the action field. */
    if (!config_action_is_whole(action)) {
        refuse(o, 400, "route %s: '%s' is not an action (expected an upstream name)", r->name,
               action);
        return NULL;
    }
    if (conffile_replace_span(cur->text, cur->text_len, r->line, r->action_start, r->action_end,
                              action, text) != 0) {
        refuse(o, 500, "route %s: its action was not found on line %d", r->name, r->line);
        return NULL;
    }
    struct config *next = config_parse_as(cur->path, text->data, text->len, &o->messages);
    if (next == NULL) {
        refuse(o, 400, "route %s: the action '%s' was refused", r->name, action);
        return NULL;
    }
    /* What the file now says is the action must be the action asked for. */
    const struct route *nr = config_find_route(next, r->name);
    if (nr == NULL || strcmp(nr->action, action) != 0) {
        config_unref(next);
        refuse(o, 400, "route %s: '%s' is not an action (expected an upstream name)", r->name,
               action);
        return NULL;
    }
    return next;
}

/* A flip edits the text the running table came from: if routes.conf holds
 * something else now (an edit not reloaded yet), writing the flip would
 * apply that edit unseen, or lose it. Returns 0, or -1 with o filled. */
static int check_file_unchanged(const struct control *ctl, struct control_outcome *o)
{
    char err[512];
    struct buf disk = BUF_INIT;
    int rc = -1;
    if (conffile_read(ctl->cfg->path, &disk, err, sizeof(err)) != 0) {
        refuse(o, 500, "%s", err);
        goto out;
    }
    if (disk.len != ctl->cfg->text_len ||
        (disk.len > 0 && memcmp(disk.data, ctl->cfg->text, disk.len) != 0)) {
        refuse(o, 409,
               "%s was changed on disk since it was loaded; reload it first (POST /reload), "
               "then flip",
               ctl->cfg->path);
        goto out;
    }
    rc = 0;
out:
    buf_dispose(&disk);
    return rc;
}

int control_flip(struct control *ctl, const char *who, const char *name, const char *action,
                 struct control_outcome *o)
{
    char err[512];
    struct buf text = BUF_INIT;
    struct config *next = NULL;
    char *want = normalise_action(action, o);
    int rc = -1;
    if (want == NULL)
        goto out;
    const struct route *r = config_find_route(ctl->cfg, name);
    if (r == NULL) {
        refuse(o, 404, "no route named '%s'", name);
        goto out;
    }
    if (strcmp(r->action, want) == 0) {
        rc = 0; /* already so: nothing to write, nothing to announce */
        goto out;
    }
    if (check_file_unchanged(ctl, o) != 0)
        goto out;
    next = edit_action(ctl, r, want, &text, o);
    /* Parsing resolves host names and may take a while: the file is
     * checked again just before it is replaced. */
    if (next == NULL || check_file_unchanged(ctl, o) != 0)
        goto out;
    if (conffile_write_atomic(ctl->cfg->path, text.data, text.len, err, sizeof(err)) != 0) {
        refuse(o, 500, "the flip was not applied: %s", err);
        goto out;
    }
    struct config *old = config_ref(ctl->cfg);
    add_change(o, name, r->action, want);
    install(ctl, next);
    next = NULL;
    audit_changes(ctl, old, "flip", who, o);
    config_unref(old);
    rc = 0;
out:
    metrics_bump(rc == 0 ? &metrics_process()->flips : &metrics_process()->flips_refused);
    if (rc != 0 && o->error.len > 0)
        log_warn("flip by %s: route %s: refused: %s", who, name, buf_cstr(&o->error));
    config_unref(next);
    free(want);
    buf_dispose(&text);
    return rc;
}
