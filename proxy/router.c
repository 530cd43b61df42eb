#include "proxy/router.h"

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

const struct route *router_match(const struct config *c, const struct router_request *r)
{
    for (size_t i = 0; i < c->nroutes; i++) {
        const struct route *rt = &c->routes[i];
        switch (rt->match) {
        case ROUTE_MATCH_ANY:
            return rt;
        case ROUTE_MATCH_XMLRPC:
            if (r->xmlrpc_method != NULL &&
                router_glob_match(rt->pattern, rt->pattern_len, r->xmlrpc_method,
                                  r->xmlrpc_method_len))
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
