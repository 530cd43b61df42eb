#include "proxy/router.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

int router_glob_match(const char *glob, size_t glob_len, const char *text, size_t text_len)
{
    /* Greedy matching with one backtrack point: the most recent '*'. A
     * later star supersedes an earlier one, which keeps this linear in
     * practice and never exponential, whatever the pattern. */
    size_t g = 0, t = 0;
    size_t star = (size_t)-1, star_text = 0;

    while (t < text_len) {
        if (g < glob_len && (glob[g] == '?' || (glob[g] != '*' && glob[g] == text[t]))) {
            g++;
            t++;
        } else if (g < glob_len && glob[g] == '*') {
            star = g++;
            star_text = t;
        } else if (star != (size_t)-1) {
            g = star + 1;
            t = ++star_text;
        } else {
            return 0;
        }
    }
    while (g < glob_len && glob[g] == '*')
        g++;
    return g == glob_len;
}

static int match_http(const struct route *rt, const struct router_request *r)
{
    if (!(rt->http_method[0] == '*' && rt->http_method[1] == '\0') &&
        (strlen(rt->http_method) != r->http_method_len ||
         memcmp(rt->http_method, r->http_method, r->http_method_len) != 0))
        return 0;
    if (rt->path_prefix)
        return r->path_len >= rt->pattern_len && memcmp(r->path, rt->pattern, rt->pattern_len) == 0;
    return r->path_len == rt->pattern_len && memcmp(r->path, rt->pattern, rt->pattern_len) == 0;
}

/* A header that appears more than once holds the condition when any of its
 * fields does. */
static int condition_holds(const struct route_condition *k, const struct http_message *m)
{
    if (m == NULL)
        return 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *h = &m->headers[i];
        if (h->name_len == k->name_len && http_token_eq(h->name, h->name_len, k->name) &&
            router_glob_match(k->value, k->value_len, h->value, h->value_len))
            return 1;
    }
    return 0;
}

static int conditions_hold(const struct route *rt, const struct router_request *r)
{
    for (size_t i = 0; i < rt->nconditions; i++)
        if (!condition_holds(&rt->conditions[i], r->headers))
            return 0;
    return 1;
}

/* A glob of stars only: the route takes a call whatever its name. */
static int takes_any_method(const struct route *rt)
{
    return rt->pattern_len > 0 && strspn(rt->pattern, "*") == rt->pattern_len;
}

const struct route *router_match(const struct config *c, const struct router_request *r)
{
    for (size_t i = 0; i < c->nroutes; i++) {
        const struct route *rt = &c->routes[i];
        if (rt->nconditions > 0 && !conditions_hold(rt, r))
            continue;
        switch (rt->match) {
        case ROUTE_MATCH_ANY:
            return rt;
        case ROUTE_MATCH_XMLRPC:
            if (r->xmlrpc_method != NULL &&
                router_glob_match(rt->pattern, rt->pattern_len, r->xmlrpc_method,
                                  r->xmlrpc_method_len))
                return rt;
            if (r->unreadable_call && takes_any_method(rt))
                return rt;
            break;
        case ROUTE_MATCH_HTTP:
            if (match_http(rt, r))
                return rt;
            break;
        case ROUTE_MATCH_NONE:
            break;
        }
    }
    return NULL;
}

/* Longest glob the inclusion test looks at; longer ones are never reported
 * as covered (the table below is quadratic in the lengths). */
#define COVERS_MAX_GLOB 256

/*
 * Dynamic programming over suffixes: at[i][j] says whether outer[i..]
 * covers inner[j..]. A '*' in outer may absorb any run of inner's symbols,
 * stars included; a '*' or '?' in inner can only be absorbed by a symbol of
 * outer that matches at least as much.
 */
int router_glob_covers(const char *outer, const char *inner)
{
    size_t n = strlen(outer), m = strlen(inner);
    if (n > COVERS_MAX_GLOB || m > COVERS_MAX_GLOB)
        return 0;
    size_t w = m + 1;
    unsigned char *at = mem_calloc((n + 1) * w, 1);
    /* Only stars are left in outer: they cover an inner that is used up. */
    at[n * w + m] = 1;
    for (size_t i = n; i-- > 0;)
        at[i * w + m] = outer[i] == '*' && at[(i + 1) * w + m];
    for (size_t i = n; i-- > 0;) {
        for (size_t j = m; j-- > 0;) {
            char o = outer[i], c = inner[j];
            int v;
            if (o == '*')
                v = at[(i + 1) * w + j] || at[i * w + j + 1];
            else if (c == '*')
                v = 0;
            else if (o == '?' || o == c)
                v = at[(i + 1) * w + j + 1];
            else
                v = 0;
            at[i * w + j] = (unsigned char)v;
        }
    }
    int covers = at[0];
    free(at);
    return covers;
}

/* Every condition of a is implied by one of b's. */
static int conditions_cover(const struct route *a, const struct route *b)
{
    for (size_t i = 0; i < a->nconditions; i++) {
        const struct route_condition *ka = &a->conditions[i];
        int implied = 0;
        for (size_t k = 0; k < b->nconditions && !implied; k++) {
            const struct route_condition *kb = &b->conditions[k];
            implied = ka->name_len == kb->name_len &&
                      http_token_eq(ka->name, ka->name_len, kb->name) &&
                      router_glob_covers(ka->value, kb->value);
        }
        if (!implied)
            return 0;
    }
    return 1;
}

static int http_method_covers(const struct route *a, const char *method)
{
    return strcmp(a->http_method, "*") == 0 || strcmp(a->http_method, method) == 0;
}

static int http_covers(const struct route *a, const struct route *b)
{
    switch (b->match) {
    case ROUTE_MATCH_HTTP:
        if (!http_method_covers(a, b->http_method))
            return 0;
        if (a->path_prefix)
            return b->pattern_len >= a->pattern_len &&
                   memcmp(b->pattern, a->pattern, a->pattern_len) == 0;
        return !b->path_prefix && strcmp(a->pattern, b->pattern) == 0;
    case ROUTE_MATCH_XMLRPC:
        /* XML-RPC calls are POSTs, to whatever path the client uses. */
        return http_method_covers(a, "POST") && a->path_prefix && strcmp(a->pattern, "/") == 0;
    case ROUTE_MATCH_ANY:
    case ROUTE_MATCH_NONE:
        return 0;
    }
    return 0;
}

int router_route_covers(const struct route *a, const struct route *b)
{
    if (!conditions_cover(a, b))
        return 0;
    switch (a->match) {
    case ROUTE_MATCH_ANY:
        return 1;
    case ROUTE_MATCH_XMLRPC:
        return b->match == ROUTE_MATCH_XMLRPC && router_glob_covers(a->pattern, b->pattern);
    case ROUTE_MATCH_HTTP:
        return http_covers(a, b);
    case ROUTE_MATCH_NONE:
        return 0;
    }
    return 0;
}
