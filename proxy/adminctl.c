#include "proxy/adminctl.h"

#include "common/jsonw.h"
#include "common/mem.h"
#include "proxy/config.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 2000
#define TOTAL_TIMEOUT_MS   30000
/* A replay answers when it has re-read the whole retained spool. */
#define REPLAY_TIMEOUT_MS (10 * 60 * 1000)
/* A route's JSON is a few hundred bytes; this leaves room for tens of
 * thousands of routes and still bounds what a confused peer can make us
 * hold. */
#define MAX_ANSWER_BYTES (8 * 1024 * 1024)
#define JSON_MAX_DEPTH   16
#define ERROR_LINE_MAX   200
#define TOKEN_ENV        "STRANGLER_ADMIN_TOKEN"

/* Exit codes, as adminctl.h promises them. */
enum rc {
    RC_DONE = 0,
    RC_REFUSED = 1,
    RC_USAGE = 2,
    RC_UNREACHABLE = 3,
};

enum command {
    CMD_NONE = 0,
    CMD_ROUTES,
    CMD_FLIP,
    CMD_RELOAD,
    CMD_REPLAY, /* events replay */
    CMD_METHODS,
};

/* Methods `strangler methods` lists unless --limit says otherwise: a
 * screenful of the busiest, which is what the backlog is about. */
#define METHODS_LIMIT "50"

const char adminctl_usage[] =
    "       strangler [-c FILE] routes [--json] [--admin HOST:PORT] [--token-file PATH]\n"
    "       strangler [-c FILE] flip NAME ACTION... [--admin HOST:PORT] [--token-file PATH]\n"
    "       strangler [-c FILE] reload [--admin HOST:PORT] [--token-file PATH]\n"
    "       strangler [-c FILE] methods [--limit N] [--json] [--admin HOST:PORT]\n"
    "                 [--token-file PATH]\n"
    "       strangler [-c FILE] events replay [--since TIME|SPAN] [--type GLOB]\n"
    "                 [--admin HOST:PORT] [--token-file PATH]\n";

/* ---- reading the answers ------------------------------------------------ */

/*
 * Parses a whole answer. Strict mode and UTF-8 validation because the proxy
 * writes strict JSON: anything looser means we are not talking to it. The
 * depth is ours to choose, not the peer's, and text after the value (but
 * blanks) is an error rather than something silently ignored.
 */
static struct json_object *parse_json(const char *json, size_t len)
{
    struct json_tokener *tok = NULL;
    struct json_object *doc = NULL, *result = NULL;

    if (json == NULL || len == 0 || len > INT_MAX)
        goto out;
    tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    if (tok == NULL)
        goto out;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    doc = json_tokener_parse_ex(tok, json, (int)len);
    if (doc == NULL || json_tokener_get_error(tok) != json_tokener_success)
        goto out;
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
        if (json[i] != ' ' && json[i] != '\t' && json[i] != '\r' && json[i] != '\n')
            goto out;
    result = doc;
    doc = NULL;
out:
    json_object_put(doc);
    if (tok != NULL)
        json_tokener_free(tok);
    return result;
}

/*
 * Member `key` of obj when it has the given type: 0 with *out set (NULL
 * when the member is absent or null, which older and newer proxies may
 * leave out), -1 when it is there with another type: then the answer is
 * not what we think it is, and guessing would print wrong numbers.
 */
static int member(struct json_object *obj, const char *key, enum json_type type,
                  struct json_object **out)
{
    struct json_object *v = NULL;
    if (json_object_object_get_ex(obj, key, &v) && v != NULL && !json_object_is_type(v, type))
        return -1;
    *out = v;
    return 0;
}

static int member_string(struct json_object *obj, const char *key, const char **out)
{
    struct json_object *v = NULL;
    if (member(obj, key, json_type_string, &v) != 0)
        return -1;
    *out = v != NULL ? json_object_get_string(v) : NULL;
    return 0;
}

/* Absent counts as 0: a counter the proxy does not keep has counted nothing. */
static int member_i64(struct json_object *obj, const char *key, int64_t *out)
{
    struct json_object *v = NULL;
    if (member(obj, key, json_type_int, &v) != 0)
        return -1;
    *out = v != NULL ? json_object_get_int64(v) : 0;
    return 0;
}

/*
 * Appends len bytes of text that came off the wire and is going to a
 * terminal, with C0 and C1 control characters as '?': an escape sequence in
 * a route name or an error message must not be able to rewrite what the
 * operator sees. Returns the width in columns, counting code points (the
 * JSON was validated as UTF-8, and route names are not expected to hold
 * double-width characters).
 */
static size_t append_textn(struct buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t width = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
            i++; /* U+0080..U+009F: C1 controls, 0x9b is a CSI on some terminals */
            c = '?';
        } else if (c < 0x20 || c == 0x7f) {
            c = '?';
        }
        buf_append_char(b, (char)c);
        if ((c & 0xc0) != 0x80)
            width++;
    }
    return width;
}

static size_t append_text(struct buf *b, const char *s)
{
    return append_textn(b, s, strlen(s));
}

/* ---- routes --------------------------------------------------------------- */

enum column {
    COL_ROUTE = 0,
    COL_MATCH,
    COL_ACTION,
    COL_REQUESTS, /* this one and those after it are numbers */
    COL_FAULTS,
    COL_ERRORS,
    COL_EVENTS,
    NCOLS_ROUTES,
};

static const char *const route_titles[NCOLS_ROUTES] = {
    "ROUTE", "MATCH", "ACTION", "REQUESTS", "FAULTS", "ERRORS", "EVENTS",
};

/* The widest table printed (routes and methods share the code). */
#define NCOLS 10

/* The "counters" member for each number column, from COL_REQUESTS on. */
static const char *const counter_keys[NCOLS_ROUTES - COL_REQUESTS] = {
    "requests",
    "faults",
    "errors",
    "events",
};

/* One line of the table. The bufs are reused from route to route. */
struct row {
    struct buf cell[NCOLS];
    size_t width[NCOLS]; /* in columns, as append_textn() counts them */
    struct buf note;     /* "(changed ...)", empty when never flipped */
};

static void row_clear(struct row *r)
{
    for (int c = 0; c < NCOLS; c++) {
        r->cell[c].len = 0;
        r->width[c] = 0;
    }
    r->note.len = 0;
}

static void row_dispose(struct row *r)
{
    for (int c = 0; c < NCOLS; c++)
        buf_dispose(&r->cell[c]);
    buf_dispose(&r->note);
}

static int describe_change(struct json_object *changed, struct buf *note)
{
    const char *at = NULL, *by = NULL, *before = NULL;
    if (member_string(changed, "at", &at) != 0 || member_string(changed, "by", &by) != 0 ||
        member_string(changed, "before", &before) != 0)
        return -1;
    buf_append_str(note, "(changed");
    if (by != NULL) {
        buf_append_str(note, " by ");
        append_text(note, by);
    }
    if (at != NULL) {
        buf_append_str(note, " at ");
        append_text(note, at);
    }
    if (before != NULL) {
        buf_append_str(note, ", was ");
        append_text(note, before);
    }
    buf_append_char(note, ')');
    return 0;
}

/* Fills r from one element of the routes array; -1 when it is not a route. */
static int fill_row(struct json_object *route, struct row *r)
{
    const char *name = NULL, *match = NULL, *action = NULL;
    struct json_object *conditions = NULL, *counters = NULL, *changed = NULL;

    if (route == NULL || !json_object_is_type(route, json_type_object))
        return -1;
    if (member_string(route, "name", &name) != 0 || name == NULL ||
        member_string(route, "match", &match) != 0 ||
        member_string(route, "action", &action) != 0 ||
        member(route, "conditions", json_type_array, &conditions) != 0 ||
        member(route, "counters", json_type_object, &counters) != 0 ||
        member(route, "changed", json_type_object, &changed) != 0)
        return -1;

    r->width[COL_ROUTE] = append_text(&r->cell[COL_ROUTE], name);
    /* Conditions narrow the match, so they belong in the MATCH column, as
     * routes.conf writes them: `xmlrpc stock.get header X-Tenant=acme`. */
    r->width[COL_MATCH] = append_text(&r->cell[COL_MATCH], match != NULL ? match : "");
    size_t nconditions = conditions != NULL ? json_object_array_length(conditions) : 0;
    for (size_t i = 0; i < nconditions; i++) {
        struct json_object *cond = json_object_array_get_idx(conditions, i);
        if (cond == NULL || !json_object_is_type(cond, json_type_string))
            return -1;
        if (r->cell[COL_MATCH].len > 0) {
            buf_append_char(&r->cell[COL_MATCH], ' ');
            r->width[COL_MATCH]++;
        }
        r->width[COL_MATCH] += append_text(&r->cell[COL_MATCH], json_object_get_string(cond));
    }
    r->width[COL_ACTION] = append_text(&r->cell[COL_ACTION], action != NULL ? action : "");

    for (int c = COL_REQUESTS; c < NCOLS_ROUTES; c++) {
        int64_t n = 0;
        if (counters != NULL && member_i64(counters, counter_keys[c - COL_REQUESTS], &n) != 0)
            return -1;
        buf_append_i64(&r->cell[c], n);
        r->width[c] = r->cell[c].len;
    }
    if (changed != NULL && describe_change(changed, &r->note) != 0)
        return -1;
    return 0;
}

static void append_spaces(struct buf *b, size_t n)
{
    while (n-- > 0)
        buf_append_char(b, ' ');
}

/* A table the commands print: its columns, the first of the numbers
 * (flush right), and how a row is read from one element of the array. */
struct table {
    int ncols;
    const char *const *titles;
    int first_number;
    int (*fill)(struct json_object *element, struct row *r);
};

/* Two blanks between columns; numbers flush right so their digits line
 * up; nothing after the last column but the note, so lines carry no
 * trailing blanks. */
static void render_row(struct buf *out, const struct table *t, const struct row *r,
                       const size_t *width)
{
    for (int c = 0; c < t->ncols; c++) {
        size_t pad = width[c] - r->width[c];
        if (c > 0)
            buf_append_str(out, "  ");
        if (c >= t->first_number)
            append_spaces(out, pad);
        buf_append(out, r->cell[c].data, r->cell[c].len);
        if (c < t->first_number)
            append_spaces(out, pad);
    }
    if (r->note.len > 0) {
        buf_append_str(out, "  ");
        buf_append(out, r->note.data, r->note.len);
    }
    buf_append_char(out, '\n');
}

/*
 * Two passes over the parsed array, the first only measuring, so memory
 * grows with the text printed and not with a row struct per element of an
 * array whose length the peer chose.
 */
static int format_table(struct json_object *array, const struct table *t, struct buf *out)
{
    struct row r = {0};
    struct buf text = BUF_INIT;
    size_t width[NCOLS] = {0};
    size_t n = json_object_array_length(array);
    int rc = -1;

    for (int c = 0; c < t->ncols; c++)
        width[c] = strlen(t->titles[c]);
    for (size_t i = 0; i < n; i++) {
        row_clear(&r);
        if (t->fill(json_object_array_get_idx(array, i), &r) != 0)
            goto out;
        for (int c = 0; c < t->ncols; c++)
            if (r.width[c] > width[c])
                width[c] = r.width[c];
    }
    row_clear(&r);
    for (int c = 0; c < t->ncols; c++)
        r.width[c] = append_text(&r.cell[c], t->titles[c]);
    render_row(&text, t, &r, width);
    for (size_t i = 0; i < n; i++) {
        row_clear(&r);
        t->fill(json_object_array_get_idx(array, i), &r); /* succeeded above */
        render_row(&text, t, &r, width);
    }
    buf_append(out, text.data, text.len);
    rc = 0;
out:
    row_dispose(&r);
    buf_dispose(&text);
    return rc;
}

static const struct table routes_table = {NCOLS_ROUTES, route_titles, COL_REQUESTS, fill_row};

int adminctl_format_routes(const char *json, size_t len, struct buf *out)
{
    struct json_object *doc = parse_json(json, len);
    int rc = -1;
    if (doc != NULL && json_object_is_type(doc, json_type_array))
        rc = format_table(doc, &routes_table, out);
    json_object_put(doc);
    return rc;
}

/* ---- methods -------------------------------------------------------------- */

enum method_column {
    MCOL_METHOD = 0,
    MCOL_SIDE,
    MCOL_ROUTE,
    MCOL_CALLS, /* numbers from here on */
    MCOL_FAULTS,
    MCOL_ERRORS,
    MCOL_NEW,
    MCOL_P50,
    MCOL_P99,
    NCOLS_METHODS,
};

static const char *const method_titles[NCOLS_METHODS] = {
    "METHOD", "SIDE", "ROUTE", "CALLS", "FAULTS", "ERRORS", "NEW%", "P50MS", "P99MS",
};

static int member_double(struct json_object *obj, const char *key, double *out)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) ||
        (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)))
        return -1;
    *out = json_object_get_double(v);
    return 0;
}

static void put_cell_text(struct row *r, int c, const char *s)
{
    r->width[c] = append_text(&r->cell[c], s != NULL ? s : "-");
}

static void put_cell_number(struct row *r, int c, const char *fmt, double v)
{
    buf_appendf(&r->cell[c], fmt, v);
    r->width[c] = r->cell[c].len;
}

/* Fills r from one element of "methods"; -1 when it is not a method. */
static int fill_method_row(struct json_object *m, struct row *r)
{
    const char *method = NULL, *side = NULL, *route = NULL, *last = NULL;
    int64_t calls = 0, faults = 0, errors = 0;
    double share = 0, p50 = 0, p99 = 0;
    struct json_object *latency = NULL;
    if (m == NULL || !json_object_is_type(m, json_type_object) ||
        member_string(m, "method", &method) != 0 || method == NULL ||
        member_string(m, "side", &side) != 0 || member_string(m, "route", &route) != 0 ||
        member_string(m, "last_seen", &last) != 0 || member_i64(m, "calls", &calls) != 0 ||
        member_i64(m, "faults", &faults) != 0 || member_i64(m, "errors", &errors) != 0 ||
        member_double(m, "new_share", &share) != 0 ||
        member(m, "latency_ms", json_type_object, &latency) != 0 || latency == NULL ||
        member_double(latency, "p50", &p50) != 0 || member_double(latency, "p99", &p99) != 0)
        return -1;
    put_cell_text(r, MCOL_METHOD, method);
    put_cell_text(r, MCOL_SIDE, side);
    put_cell_text(r, MCOL_ROUTE, route);
    put_cell_number(r, MCOL_CALLS, "%.0f", (double)calls);
    put_cell_number(r, MCOL_FAULTS, "%.0f", (double)faults);
    put_cell_number(r, MCOL_ERRORS, "%.0f", (double)errors);
    put_cell_number(r, MCOL_NEW, "%.1f", share * 100);
    put_cell_number(r, MCOL_P50, "%.2f", p50);
    put_cell_number(r, MCOL_P99, "%.2f", p99);
    if (last != NULL) {
        buf_append_str(&r->note, "last ");
        append_text(&r->note, last);
    }
    return 0;
}

static const struct table methods_table = {NCOLS_METHODS, method_titles, MCOL_CALLS,
                                           fill_method_row};

int adminctl_format_methods(const char *json, size_t len, struct buf *out)
{
    struct json_object *doc = parse_json(json, len);
    struct json_object *methods = NULL, *totals = NULL;
    const char *since = NULL;
    int64_t calls = 0, new_calls = 0, legacy_calls = 0, untracked = 0, tracked = 0;
    double share = 0;
    struct buf text = BUF_INIT;
    int rc = -1;

    if (doc == NULL || !json_object_is_type(doc, json_type_object) ||
        member(doc, "methods", json_type_array, &methods) != 0 || methods == NULL ||
        member(doc, "totals", json_type_object, &totals) != 0 || totals == NULL ||
        member_string(doc, "since", &since) != 0 ||
        member_i64(doc, "untracked_calls", &untracked) != 0 ||
        member_i64(doc, "methods_tracked", &tracked) != 0 ||
        member_i64(totals, "calls", &calls) != 0 ||
        member_i64(totals, "new_calls", &new_calls) != 0 ||
        member_i64(totals, "legacy_calls", &legacy_calls) != 0 ||
        member_double(totals, "new_share", &share) != 0)
        goto out;
    /* The headline first: how much of the traffic is strangled. */
    buf_appendf(&text,
                "%.1f%% of answered calls served by new services (%" PRId64 " new, %" PRId64
                " legacy; %" PRId64 " calls since ",
                share * 100, new_calls, legacy_calls, calls);
    append_text(&text, since != NULL ? since : "?");
    buf_append_str(&text, ")\n");
    if (untracked > 0)
        buf_appendf(&text, "%" PRId64 " calls of methods beyond max_methods are not listed\n",
                    untracked);
    /* Nothing reaches out unless the whole answer could be read. */
    if (format_table(methods, &methods_table, &text) != 0)
        goto out;
    size_t listed = json_object_array_length(methods);
    if ((size_t)tracked > listed)
        buf_appendf(&text, "(the %zu most called of %" PRId64 " methods; --limit N for more)\n",
                    listed, tracked);
    buf_append(out, text.data, text.len);
    rc = 0;
out:
    buf_dispose(&text);
    json_object_put(doc);
    return rc;
}

int adminctl_format_json(const char *json, size_t len, struct buf *out)
{
    struct json_object *doc = parse_json(json, len);
    const char *text = NULL;
    int rc = -1;

    if (doc == NULL)
        goto out;
    text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text == NULL)
        goto out;
    buf_append_str(out, text);
    buf_append_char(out, '\n');
    rc = 0;
out:
    json_object_put(doc);
    return rc;
}

/* ---- flip and reload --------------------------------------------------- */

int adminctl_format_flip(const char *json, size_t len, struct buf *out)
{
    struct json_object *doc = parse_json(json, len);
    struct json_object *changed = NULL;
    const char *name = NULL, *action = NULL, *before = NULL;
    struct buf text = BUF_INIT;
    int rc = -1;

    if (doc == NULL || !json_object_is_type(doc, json_type_object))
        goto out;
    if (member_string(doc, "name", &name) != 0 || name == NULL ||
        member_string(doc, "action", &action) != 0 || action == NULL ||
        member(doc, "changed", json_type_object, &changed) != 0 ||
        (changed != NULL && member_string(changed, "before", &before) != 0))
        goto out;
    append_text(&text, name);
    if (before != NULL) {
        buf_append_str(&text, ": ");
        append_text(&text, before);
        buf_append_str(&text, " -> ");
    } else {
        buf_append_str(&text, ": now ");
    }
    append_text(&text, action);
    buf_append_char(&text, '\n');
    buf_append(out, text.data, text.len);
    rc = 0;
out:
    buf_dispose(&text);
    json_object_put(doc);
    return rc;
}

/* "  ROUTE: BEFORE -> AFTER"; a null side is a route the reload added or
 * removed. */
static int describe_reload_change(struct json_object *change, struct buf *text)
{
    const char *route = NULL, *before = NULL, *after = NULL;
    if (change == NULL || !json_object_is_type(change, json_type_object) ||
        member_string(change, "route", &route) != 0 || route == NULL ||
        member_string(change, "before", &before) != 0 ||
        member_string(change, "after", &after) != 0)
        return -1;
    buf_append_str(text, "  ");
    append_text(text, route);
    buf_append_str(text, ": ");
    append_text(text, before != NULL ? before : "(new)");
    buf_append_str(text, " -> ");
    append_text(text, after != NULL ? after : "(removed)");
    buf_append_char(text, '\n');
    return 0;
}

int adminctl_format_reload(const char *json, size_t len, struct buf *out, struct buf *warnings)
{
    struct json_object *doc = parse_json(json, len);
    struct json_object *routes = NULL, *upstreams = NULL, *changed = NULL, *warns = NULL;
    struct buf text = BUF_INIT, wtext = BUF_INIT;
    int64_t nroutes = 0, nupstreams = 0;
    int rc = -1;

    if (doc == NULL || !json_object_is_type(doc, json_type_object))
        goto out;
    /* The counts are what says the reload happened: required, unlike the
     * lists, which an answer may leave out when they are empty. */
    if (member(doc, "routes", json_type_int, &routes) != 0 || routes == NULL ||
        member(doc, "upstreams", json_type_int, &upstreams) != 0 || upstreams == NULL ||
        member(doc, "changed", json_type_array, &changed) != 0 ||
        member(doc, "warnings", json_type_array, &warns) != 0)
        goto out;
    nroutes = json_object_get_int64(routes);
    nupstreams = json_object_get_int64(upstreams);
    buf_appendf(&text, "reloaded: %" PRId64 " route%s, %" PRId64 " upstream%s\n", nroutes,
                nroutes == 1 ? "" : "s", nupstreams, nupstreams == 1 ? "" : "s");
    size_t nchanged = changed != NULL ? json_object_array_length(changed) : 0;
    for (size_t i = 0; i < nchanged; i++)
        if (describe_reload_change(json_object_array_get_idx(changed, i), &text) != 0)
            goto out;
    size_t nwarns = warns != NULL ? json_object_array_length(warns) : 0;
    for (size_t i = 0; i < nwarns; i++) {
        struct json_object *w = json_object_array_get_idx(warns, i);
        if (w == NULL || !json_object_is_type(w, json_type_string))
            goto out;
        append_text(&wtext, json_object_get_string(w));
        buf_append_char(&wtext, '\n');
    }
    buf_append(out, text.data, text.len);
    buf_append(warnings, wtext.data, wtext.len);
    rc = 0;
out:
    buf_dispose(&text);
    buf_dispose(&wtext);
    json_object_put(doc);
    return rc;
}

/* ---- refusals ----------------------------------------------------------- */

void adminctl_format_error(long status, const char *body, size_t len, struct buf *out)
{
    struct json_object *doc = parse_json(body, len);
    struct json_object *messages = NULL;
    const char *error = NULL;

    if (doc != NULL && json_object_is_type(doc, json_type_object) &&
        member_string(doc, "error", &error) == 0 && error != NULL &&
        member(doc, "messages", json_type_array, &messages) == 0) {
        buf_append_str(out, "strangler: ");
        append_text(out, error);
        buf_append_char(out, '\n');
        size_t n = messages != NULL ? json_object_array_length(messages) : 0;
        for (size_t i = 0; i < n; i++) {
            struct json_object *m = json_object_array_get_idx(messages, i);
            if (m == NULL || !json_object_is_type(m, json_type_string))
                continue; /* the error line above already says what went wrong */
            append_text(out, json_object_get_string(m));
            buf_append_char(out, '\n');
        }
        goto out;
    }

    /* Not the admin API's error shape: something else answered (another
     * server on the port, a proxy in between). Its first line usually says
     * what it is. */
    buf_appendf(out, "strangler: the admin API answered HTTP %ld", status);
    size_t start = 0;
    while (start < len && (body[start] == ' ' || body[start] == '\t' || body[start] == '\r' ||
                           body[start] == '\n'))
        start++;
    size_t end = start;
    while (end < len && body[end] != '\r' && body[end] != '\n' && end - start < ERROR_LINE_MAX)
        end++;
    /* Never cut a UTF-8 sequence in half. */
    if (end < len && body[end] != '\r' && body[end] != '\n')
        while (end > start && ((unsigned char)body[end] & 0xc0) == 0x80)
            end--;
    if (end > start) {
        buf_append_str(out, ": ");
        append_textn(out, body + start, end - start);
    }
    buf_append_char(out, '\n');
out:
    json_object_put(doc);
}

/* ---- the token ---------------------------------------------------------- */

int adminctl_format_replay(const char *json, size_t len, struct buf *out)
{
    struct json_object *o = parse_json(json, len);
    const char *stopped = NULL, *resume = NULL;
    int64_t n;
    int rc = -1;
    /* The count must be there: member_i64() reads an absent one as 0. */
    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "replayed", NULL) || member_i64(o, "replayed", &n) != 0 ||
        n < 0 || member_string(o, "stopped", &stopped) != 0 ||
        member_string(o, "resume_since", &resume) != 0 || (stopped == NULL) != (resume == NULL))
        goto out;
    buf_appendf(out, "replayed %lld event%s: the publisher sends %s again\n", (long long)n,
                n == 1 ? "" : "s", n == 1 ? "it" : "them");
    if (stopped != NULL) {
        buf_append_str(out, "stopped early: ");
        append_text(out, stopped);
        buf_append_str(out, "\nresume with: strangler events replay --since ");
        append_text(out, resume);
        buf_append_str(out, " (and the same --type)\n");
    }
    rc = stopped != NULL ? 1 : 0;
out:
    json_object_put(o);
    return rc;
}

int adminctl_read_token_file(const char *path, char **secret, char *err, size_t err_size)
{
    struct config_admin tokens = {0};
    if (config_read_token_file(path, &tokens, err, err_size) != 0)
        return -1;
    *secret = mem_strdup(tokens.tokens[0].secret);
    config_admin_tokens_free(&tokens);
    return 0;
}

/* Frees a secret without leaving it in freed heap memory. */
static void free_secret(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* ---- the command line --------------------------------------------------- */

struct options {
    enum command command;
    const char *admin;      /* --admin HOST:PORT, NULL: from the config */
    const char *token_file; /* --token-file PATH */
    int json;               /* routes --json, methods --json */
    const char *since;      /* events replay --since */
    const char *type;       /* events replay --type */
    const char *limit;      /* methods --limit */
    const char **words;     /* the arguments that are not options, argc entries */
    int nwords;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "strangler: MESSAGE" and the usage lines; returns -1. */
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("strangler: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage:\n%s", adminctl_usage);
    return -1;
}

/*
 * HOST:PORT as --admin takes it: a name or IPv4 address, or an IPv6 address
 * in brackets, then a port. The text is pasted into a URL, where a '/', '@'
 * or '?' would change which server the token is sent to.
 */
static int valid_hostport(const char *s)
{
    const char *port;
    if (s[0] == '[') {
        size_t n = strspn(s + 1, "0123456789abcdefABCDEF:.");
        if (n == 0 || s[1 + n] != ']' || s[2 + n] != ':')
            return 0;
        port = s + n + 3;
    } else {
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
        if (n == 0 || s[n] != ':')
            return 0;
        port = s + n + 1;
    }
    size_t digits = strspn(port, "0123456789");
    if (digits == 0 || digits > 5 || port[digits] != '\0')
        return 0;
    unsigned long v = strtoul(port, NULL, 10);
    return v >= 1 && v <= 65535;
}

/* Matches "--NAME VALUE" and "--NAME=VALUE": 1 with *value set (NULL when
 * the value is missing), 0 when argv[*i] is another argument. */
static int take_value(const char *name, int argc, char **argv, int *i, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

/* Returns 0 to go on, 1 when help was printed, -1 after a usage message. */
static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct {
        const char *name;
        enum command command;
        int min_words, max_words;
    } commands[] = {
        {"routes", CMD_ROUTES, 0, 0},
        {"flip", CMD_FLIP, 2, INT_MAX},
        {"reload", CMD_RELOAD, 0, 0},
        {"events", CMD_REPLAY, 1, 1}, /* the word is "replay" (tail reads files: eventlog.h) */
        {"methods", CMD_METHODS, 0, 0},
    };
    int only_words = 0, min_words = 0, max_words = 0;

    if (argc < 1 || argv[0] == NULL)
        return usage_error("no admin command given");
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(argv[0], commands[k].name) == 0) {
            o->command = commands[k].command;
            min_words = commands[k].min_words;
            max_words = commands[k].max_words;
        }
    }
    if (o->command == CMD_NONE)
        return usage_error("unknown command '%s'", argv[0]);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = NULL;
        if (only_words || a[0] != '-' || a[1] == '\0') {
            o->words[o->nwords++] = a;
        } else if (strcmp(a, "--") == 0) {
            only_words = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage:\n%s", adminctl_usage);
            return 1;
        } else if (take_value("--admin", argc, argv, &i, &value)) {
            if (value == NULL)
                return usage_error("--admin needs HOST:PORT");
            if (o->admin != NULL)
                return usage_error("--admin is given twice");
            if (!valid_hostport(value))
                return usage_error("--admin: '%s' is not HOST:PORT", value);
            o->admin = value;
        } else if (take_value("--token-file", argc, argv, &i, &value)) {
            if (value == NULL || value[0] == '\0')
                return usage_error("--token-file needs a PATH");
            if (o->token_file != NULL)
                return usage_error("--token-file is given twice");
            o->token_file = value;
        } else if (strcmp(a, "--json") == 0 &&
                   (o->command == CMD_ROUTES || o->command == CMD_METHODS)) {
            o->json = 1;
        } else if (o->command == CMD_REPLAY && take_value("--since", argc, argv, &i, &value)) {
            if (value == NULL || value[0] == '\0')
                return usage_error("--since needs a TIME (2026-11-21T10:00:00Z) or a SPAN (24h)");
            o->since = value;
        } else if (o->command == CMD_METHODS && take_value("--limit", argc, argv, &i, &value)) {
            if (value == NULL || value[0] < '1' || value[0] > '9' ||
                strspn(value, "0123456789") != strlen(value) || strlen(value) > 9)
                return usage_error("--limit needs a positive NUMBER of methods");
            o->limit = value;
        } else if (o->command == CMD_REPLAY && take_value("--type", argc, argv, &i, &value)) {
            if (value == NULL || value[0] == '\0')
                return usage_error("--type needs a GLOB (legacy.stock.*)");
            o->type = value;
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    if (o->command == CMD_REPLAY && (o->nwords == 0 || strcmp(o->words[0], "replay") != 0))
        return usage_error("events: %s%s%s (expected tail or replay)",
                           o->nwords ? "unknown subcommand '" : "subcommand missing",
                           o->nwords ? o->words[0] : "", o->nwords ? "'" : "");
    if (o->nwords < min_words)
        return usage_error("%s: %s missing", argv[0],
                           o->nwords == 0 ? "NAME and ACTION are" : "ACTION is");
    if (o->nwords > max_words)
        return usage_error("unexpected argument '%s'", o->words[max_words]);
    return 0;
}

/* ---- where to, with what ------------------------------------------------ */

/* The admin API's base URL ("http://HOST:PORT") and the token to send. */
struct target {
    char *url;
    char *token; /* NULL: no Authorization header */
};

static void target_dispose(struct target *t)
{
    free(t->url);
    free_secret(t->token);
}

/* The URL of the admin address in the config. An address that listens on
 * every interface includes loopback, the one address sure to reach it from
 * this machine, so that is where we connect. */
static char *url_from_config(const struct config_admin *a)
{
    struct buf url = BUF_INIT;
    const struct sockaddr_storage *sa = &a->addr.sa;
    buf_append_str(&url, "http://");
    if (sa->ss_family == AF_INET &&
        ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY))
        buf_appendf(&url, "127.0.0.1:%u", config_addr_port(&a->addr));
    else if (sa->ss_family == AF_INET6 &&
             IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
        buf_appendf(&url, "[::1]:%u", config_addr_port(&a->addr));
    else
        buf_append_str(&url, a->addr.text);
    return buf_steal(&url);
}

/* A token is pasted into a header line; CR or LF in it would add headers
 * of its own. */
static int token_is_sendable(const char *token)
{
    for (const unsigned char *p = (const unsigned char *)token; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return token[0] != '\0';
}

/* Settles URL and token by the precedence adminctl.h describes. Returns an
 * exit code; RC_DONE with *t filled. */
static int resolve_target(const char *config_path, const struct options *o, struct target *t)
{
    struct config *cfg = NULL;
    struct buf messages = BUF_INIT;
    char *url = NULL, *token = NULL;
    char err[512];
    const char *env = getenv(TOKEN_ENV);
    int rc = RC_USAGE, need_config;

    if (o->token_file != NULL) {
        if (adminctl_read_token_file(o->token_file, &token, err, sizeof(err)) != 0) {
            fprintf(stderr, "strangler: --token-file %s\n", err);
            goto out;
        }
    } else if (env != NULL && env[0] != '\0') {
        token = mem_strdup(env);
    }

    /* With --admin, a routes.conf that is not there is no error: the admin
     * API may be on another machine, and the token, if any, comes from
     * elsewhere. One that is there but broken is, since we were about to
     * take its token. */
    need_config = o->admin == NULL || token == NULL;
    if (need_config && (o->admin == NULL || access(config_path, F_OK) == 0 || errno != ENOENT)) {
        cfg = config_load(config_path, &messages);
        if (cfg == NULL) {
            fputs(buf_cstr(&messages), stderr);
            goto out;
        }
        if (token == NULL && cfg->admin.ntokens > 0)
            token = mem_strdup(cfg->admin.tokens[0].secret);
        if (o->admin == NULL) {
            if (!cfg->admin.enabled) {
                fprintf(stderr,
                        "strangler: %s has no admin line; add `admin HOST:PORT` there or pass "
                        "--admin HOST:PORT\n",
                        config_path);
                goto out;
            }
            if (config_addr_port(&cfg->admin.addr) == 0) {
                fprintf(stderr,
                        "strangler: %s: the admin address %s has port 0 (picked at start); "
                        "pass --admin HOST:PORT\n",
                        config_path, cfg->admin.addr.text);
                goto out;
            }
            url = url_from_config(&cfg->admin);
        }
    }
    if (o->admin != NULL) {
        struct buf b = BUF_INIT;
        buf_appendf(&b, "http://%s", o->admin);
        url = buf_steal(&b);
    }
    if (token != NULL && !token_is_sendable(token)) {
        fputs("strangler: the admin token is empty or holds control characters\n", stderr);
        goto out;
    }
    t->url = url;
    url = NULL;
    t->token = token;
    token = NULL;
    rc = RC_DONE;
out:
    free(url);
    free_secret(token);
    buf_dispose(&messages);
    config_unref(cfg);
    return rc;
}

/* ---- the request -------------------------------------------------------- */

struct answer {
    long status;
    struct buf body;
    int too_large; /* the body passed MAX_ANSWER_BYTES; reading stopped */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t n = size * nmemb; /* size is 1, says CURLOPT_WRITEFUNCTION */
    if (n > MAX_ANSWER_BYTES - a->body.len) {
        a->too_large = 1;
        return 0; /* anything but n makes curl fail the transfer */
    }
    buf_append(&a->body, data, n);
    return n;
}

static int add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *longer = curl_slist_append(*list, line);
    if (longer == NULL)
        return -1;
    *list = longer;
    return 0;
}

/* curl_slist_free_all() does not wipe, and one of the lines holds the
 * token. */
static void free_headers(struct curl_slist *list)
{
    for (struct curl_slist *h = list; h != NULL; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(list);
}

/*
 * Sets h up for one request to url; the headers it adds are appended to
 * *headers (the caller frees them after the transfer). Returns CURLE_OK,
 * or the code of the first option that failed.
 */
static CURLcode prepare(CURL *h, const struct target *t, const char *method, const char *url,
                        const char *body, long timeout_ms, struct curl_slist **headers,
                        struct answer *a, char *errbuf)
{
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    struct buf auth = BUF_INIT;
    /* An empty Expect: keeps curl from waiting for a 100-continue the
     * proxy would never send (FIELD-NOTES.md, libcurl). */
    if (add_header(headers, "Expect:") != 0 ||
        add_header(headers, "Accept: application/json") != 0 ||
        (body != NULL && add_header(headers, "Content-Type: application/json") != 0))
        goto out;
    if (t->token != NULL) {
        buf_append_str(&auth, "Authorization: Bearer ");
        buf_append_str(&auth, t->token);
        int added = add_header(headers, buf_cstr(&auth));
        explicit_bzero(auth.data, auth.cap);
        if (added != 0)
            goto out;
    }
    /*
     * One request per process, so no connection is worth keeping, and a
     * PUT must never be replayed on a fresh connection behind our back
     * (FIELD-NOTES.md). No proxy from the environment either: the token
     * goes to the admin API and nowhere else.
     */
    if ((cc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf)) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_URL, url)) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http")) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_PROXY, "")) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS)) !=
            CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms)) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L)) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_USERAGENT, "strangler-adminctl")) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers)) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body)) != CURLE_OK ||
        (cc = curl_easy_setopt(h, CURLOPT_WRITEDATA, a)) != CURLE_OK)
        goto out;
    if (body != NULL) {
        /* POSTFIELDS with a custom method is how curl sends a PUT from
         * memory; for POST the method is already right. */
        if ((cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body)) != CURLE_OK ||
            (cc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body))) != CURLE_OK ||
            (strcmp(method, "POST") != 0 &&
             (cc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method)) != CURLE_OK))
            goto out;
    }
    cc = CURLE_OK;
out:
    buf_dispose(&auth);
    return cc;
}

/*
 * Makes one request and fills *a with the status and body. body NULL means
 * none (GET); otherwise it is sent as JSON. It gives up after timeout_ms.
 * Returns 0, or -1 after printing why there is no answer.
 */
static int call(const struct target *t, const char *method, const char *path, const char *body,
                long timeout_ms, struct answer *a)
{
    CURL *h = NULL;
    struct curl_slist *headers = NULL;
    struct buf url = BUF_INIT;
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    int rc = -1;

    buf_appendf(&url, "%s%s", t->url, path);
    h = curl_easy_init();
    if (h == NULL || (cc = prepare(h, t, method, buf_cstr(&url), body, timeout_ms, &headers, a,
                                   errbuf)) != CURLE_OK) {
        /* Only out-of-memory or a libcurl built without HTTP gets here. */
        fprintf(stderr, "strangler: cannot prepare the request to %s: %s\n", t->url,
                errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    cc = curl_easy_perform(h);
    if (a->too_large) {
        fprintf(stderr, "strangler: the admin API at %s answered more than %d bytes\n", t->url,
                MAX_ANSWER_BYTES);
        goto out;
    }
    if (cc == CURLE_OK)
        cc = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    if (cc != CURLE_OK) {
        size_t n = strlen(errbuf);
        while (n > 0 && errbuf[n - 1] == '\n')
            errbuf[--n] = '\0';
        fprintf(stderr, "strangler: cannot reach the admin API at %s: %s\n", t->url,
                n > 0 ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    rc = 0;
out:
    free_headers(headers);
    if (h != NULL)
        curl_easy_cleanup(h);
    buf_dispose(&url);
    return rc;
}

/* Percent-encodes all but RFC 3986's unreserved characters: a route name
 * becomes one path segment whatever it holds. */
static void append_path_segment(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_append_char(b, (char)*p);
        } else {
            buf_append_char(b, '%');
            buf_append_char(b, hex[*p >> 4]);
            buf_append_char(b, hex[*p & 0x0f]);
        }
    }
}

/* fwrite() with an empty buf would pass it NULL, which its declaration
 * forbids even for zero bytes. */
static void emit(FILE *f, const struct buf *b)
{
    if (b->len > 0)
        fwrite(b->data, 1, b->len, f);
}

static void put_optional_string(struct buf *b, const char *s)
{
    if (s == NULL)
        buf_append_str(b, "null");
    else
        jsonw_cstring(b, s);
}

static int run_command(const struct options *o, const struct target *t)
{
    struct buf path = BUF_INIT, body = BUF_INIT, action = BUF_INIT;
    struct buf text = BUF_INIT, warnings = BUF_INIT;
    struct answer a = {0, BUF_INIT, 0};
    const char *method = "GET";
    int rc = RC_UNREACHABLE, formatted = -1;

    switch (o->command) {
    case CMD_ROUTES:
        buf_append_str(&path, "/routes");
        break;
    case CMD_METHODS:
        buf_appendf(&path, "/methods?limit=%s", o->limit ? o->limit : METHODS_LIMIT);
        break;
    case CMD_FLIP:
        /* ACTION is routes.conf syntax and may be several words
         * (`shadow legacy stock-svc readonly`); the shell split them. */
        for (int i = 1; i < o->nwords; i++) {
            if (i > 1)
                buf_append_char(&action, ' ');
            buf_append_str(&action, o->words[i]);
        }
        buf_append_str(&path, "/routes/");
        append_path_segment(&path, o->words[0]);
        buf_append_str(&body, "{\"action\": ");
        jsonw_string(&body, action.data, action.len);
        buf_append_char(&body, '}');
        method = "PUT";
        break;
    case CMD_RELOAD:
        buf_append_str(&path, "/reload");
        buf_append_str(&body, ""); /* a POST, with an empty body */
        method = "POST";
        break;
    case CMD_REPLAY:
        buf_append_str(&path, "/events/replay");
        buf_append_str(&body, "{\"since\": ");
        put_optional_string(&body, o->since);
        buf_append_str(&body, ", \"type\": ");
        put_optional_string(&body, o->type);
        buf_append_char(&body, '}');
        method = "POST";
        break;
    case CMD_NONE:
        goto out;
    }

    if (call(t, method, buf_cstr(&path), strcmp(method, "GET") == 0 ? NULL : buf_cstr(&body),
             o->command == CMD_REPLAY ? REPLAY_TIMEOUT_MS : TOTAL_TIMEOUT_MS, &a) != 0)
        goto out;
    if (a.status >= 400 && a.status <= 599) {
        adminctl_format_error(a.status, a.body.data, a.body.len, &text);
        if (a.status == 401 && t->token == NULL)
            buf_appendf(&text, "strangler: no token was sent; pass --token-file PATH or set %s\n",
                        TOKEN_ENV);
        emit(stderr, &text);
        rc = RC_REFUSED;
        goto out;
    }
    if (a.status >= 200 && a.status <= 299) {
        if ((o->command == CMD_ROUTES || o->command == CMD_METHODS) && o->json)
            formatted = adminctl_format_json(a.body.data, a.body.len, &text);
        else if (o->command == CMD_ROUTES)
            formatted = adminctl_format_routes(a.body.data, a.body.len, &text);
        else if (o->command == CMD_METHODS)
            formatted = adminctl_format_methods(a.body.data, a.body.len, &text);
        else if (o->command == CMD_FLIP)
            formatted = adminctl_format_flip(a.body.data, a.body.len, &text);
        else if (o->command == CMD_REPLAY)
            formatted = adminctl_format_replay(a.body.data, a.body.len, &text);
        else
            formatted = adminctl_format_reload(a.body.data, a.body.len, &text, &warnings);
    }
    if (formatted < 0) {
        fprintf(stderr, "strangler: the admin API at %s answered something unreadable (HTTP %ld)\n",
                t->url, a.status);
        goto out;
    }
    emit(stdout, &text);
    fflush(stdout); /* before the warnings, so a terminal shows them in order */
    emit(stderr, &warnings);
    /* A replay that stopped early did part of the job: say so in the code. */
    rc = formatted == 0 ? RC_DONE : RC_REFUSED;
out:
    buf_dispose(&path);
    buf_dispose(&body);
    buf_dispose(&action);
    buf_dispose(&text);
    buf_dispose(&warnings);
    buf_dispose(&a.body);
    return rc;
}

int adminctl_main(const char *config_path, int argc, char **argv)
{
    struct options o = {0};
    struct target t = {0};
    int rc = RC_USAGE, curl_ready = 0;

    o.words = mem_calloc(argc > 0 ? (size_t)argc : 1, sizeof(*o.words));
    int parsed = parse_options(argc, argv, &o);
    if (parsed != 0) {
        rc = parsed > 0 ? RC_DONE : RC_USAGE;
        goto out;
    }
    rc = resolve_target(config_path, &o, &t);
    if (rc != RC_DONE)
        goto out;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("strangler: cannot initialise libcurl\n", stderr);
        rc = RC_UNREACHABLE;
        goto out;
    }
    curl_ready = 1;
    rc = run_command(&o, &t);
out:
    if (curl_ready)
        curl_global_cleanup();
    target_dispose(&t);
    free(o.words);
    return rc;
}
