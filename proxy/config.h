/*
 * config: routes.conf, parsed into an immutable snapshot.
 *
 * The request path reads configuration only through a struct config that
 * never changes once built. A reload parses the file into a new snapshot and
 * swaps it in; requests in flight keep the snapshot they started with (each
 * holds a reference), so a request sees the old table or the new one, never
 * a mix.
 *
 * The grammar is one directive a line, `#` to the end of the line is a
 * comment, tokens are separated by blanks. Directives are a table of
 * {name, argument count, setter} (see config.c), in the manner of nginx's
 * ngx_command_t; every error is reported as "FILE:LINE: message" and a
 * directive that may appear once is an error the second time.
 *
 *   listen   127.0.0.1:8080
 *   workers  2
 *   upstream legacy     http://127.0.0.1:8000/RPC2
 *   upstream stock-svc  http://127.0.0.1:9001/rpc  kind=json timeout=2000
 *   events   amqp://guest:guest@127.0.0.1:5672/%2f exchange=strangler.events
 *   spool    ./var/spool
 *   route stock-read  xmlrpc stock.get  -> stock-svc
 *   route stock-write xmlrpc stock.adjust -> legacy  intercept
 *   route stock-del   xmlrpc stock.drop -> stock-svc  map=DELETE:/stock/{1}
 *   route everything  *                 -> legacy
 */
#ifndef STRANGLER_PROXY_CONFIG_H
#define STRANGLER_PROXY_CONFIG_H

#include "common/buf.h"
#include "interceptors/intercept.h"
#include "legacy-adapters/adapter.h"
#include "legacy-adapters/xmlrpc.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>

/* A resolved host:port to listen on or connect to. */
struct config_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char *text; /* as written, e.g. "127.0.0.1:8080" */
};

/* An `upstream NAME URL [kind=xmlrpc|json] [timeout=MS] ...` line. */
struct upstream_def {
    char *name;
    char *url;
    const struct adapter_ops *adapter; /* NULL: kind=xmlrpc, bytes forwarded as they are */
    char *kind;                        /* "xmlrpc", "json" */
    char *role;                        /* "new" or "legacy" (role=; by kind when not given) */
    int new_side;                      /* role is "new": its calls count as strangled */
    struct config_addr addr;
    char *host_header;   /* "host:port" for requests that come without a Host */
    char *base_path;     /* path of the URL, "" when none */
    unsigned timeout_ms; /* waiting for the answer */
    unsigned connect_timeout_ms;
    unsigned keepalive;                 /* idle connections kept per worker */
    unsigned keepalive_timeout_ms;      /* an idle connection is closed after this */
    unsigned index;                     /* position in config->upstreams */
    struct upstream_counters *counters; /* process-wide, by name (metrics.h) */
    int line;
};

enum route_match_kind {
    ROUTE_MATCH_NONE = 0,
    ROUTE_MATCH_XMLRPC, /* xmlrpc GLOB: the method name */
    ROUTE_MATCH_HTTP,   /* http METHOD PATH[*] */
    ROUTE_MATCH_ANY,    /* * */
};

/* A `header NAME=VALUE` condition of a route: the request must carry the
 * header (name compared without case) with a value matching the glob VALUE. */
struct route_condition {
    char *name;
    size_t name_len;
    char *value;
    size_t value_len;
};

struct route_counters;
struct target_counters;
struct upstream_counters;

/*
 * What a route does with a call besides sending it to `upstream`
 * (dark launching, issue 6). Every mode names two upstreams: `upstream`,
 * whose answer the client gets unless the mode says otherwise, and
 * `second`. The "new side" is the one being tried, the "legacy side" the
 * one a rollback returns to:
 *   SHADOW   `shadow PRIMARY CANDIDATE [readonly] [sample=N%]`: the client
 *            gets upstream's (PRIMARY's) answer; a copy of the call goes to
 *            second (CANDIDATE) and the two answers are compared. New side:
 *            second.
 *   CANARY   `canary N% NEW REST [sticky=param:N|header:NAME]`: share_bp of
 *            the calls go to second (NEW), the others to upstream (REST).
 *            New side: second.
 *   FALLBACK `fallback PRIMARY BACKUP [readonly]`: calls go to upstream
 *            (PRIMARY); one that gets no answer from it (refused, timed out,
 *            cut) is sent again to second (BACKUP) when the route is
 *            readonly. New side: upstream.
 */
enum route_mode {
    ROUTE_DIRECT = 0, /* `-> UPSTREAM` */
    ROUTE_SHADOW,
    ROUTE_CANARY,
    ROUTE_FALLBACK,
};

/* Which part of a call keeps a canary's choice for it stable. */
enum route_sticky {
    STICKY_NONE = 0, /* a random share of calls */
    STICKY_PARAM,    /* sticky=param:N: the Nth parameter's value */
    STICKY_HEADER,   /* sticky=header:NAME: that request header's value */
};

/* `rollback=errors>5%/1m` or `rollback=mismatches>1%/10m`: the route goes
 * back to its legacy side by itself (a flip by "rollback guard") when the
 * new side's rate over the window crosses the threshold, once the window
 * holds at least min_calls calls. */
struct route_guard {
    int enabled;
    int on_mismatches;     /* 0: errors (no answer, or a fault the proxy made) */
    unsigned threshold_bp; /* basis points: 500 is 5 % */
    unsigned window_ms;
    unsigned min_calls;
};

/* A `route NAME MATCH [header NAME=VALUE]... -> ACTION [options]` line. */
struct route {
    char *name;
    enum route_match_kind match;
    char *pattern; /* XMLRPC: method glob; HTTP: path (without a trailing '*') */
    size_t pattern_len;
    int path_prefix;                    /* HTTP: the path ended in '*' */
    char *http_method;                  /* HTTP: "POST", or "*" for any */
    struct route_condition *conditions; /* all must hold */
    size_t nconditions;
    char *action;        /* as written after "->", e.g. "stock-svc" */
    size_t action_start; /* byte offsets of the action in its line, so a flip */
    size_t action_end;   /* can rewrite it in place (conffile.h) */
    char *upstream_name;
    const struct upstream_def *upstream; /* the action: where calls go */
    int intercept;
    struct intercept_rule rule;      /* strings owned by the route */
    const struct restmap *map;       /* map=METHOD:TEMPLATE, owned; NULL: the RPC contract */
    struct route_counters *counters; /* process-wide, by route name (metrics.h) */
    /* The counters of its calls to upstream [0] and to second [1] (NULL for
     * none), process-wide by route and upstream name. */
    struct target_counters *targets[2];
    int line;

    /* Dark launching (enum route_mode). */
    enum route_mode mode;
    char *second_name;
    const struct upstream_def *second; /* NULL for ROUTE_DIRECT */
    unsigned share_bp;                 /* CANARY: share to second; SHADOW: sample; 10000: all */
    int readonly;                      /* the method changes nothing: safe to repeat */
    enum route_sticky sticky;
    unsigned sticky_param; /* STICKY_PARAM: 1-based */
    char *sticky_header;   /* STICKY_HEADER */
    double tolerance;      /* SHADOW: doubles this close are equal (xrdiff.h) */
    char **ignore;         /* SHADOW: NULL-terminated paths the comparison leaves out */
    struct route_guard guard;
};

/* The upstreams of a route's new and legacy sides (enum route_mode); for a
 * direct route both are its upstream. */
const struct upstream_def *route_new_side(const struct route *r);
const struct upstream_def *route_legacy_side(const struct route *r);

/* Limits and timeouts; each has a directive of the same name. */
struct config_limits {
    size_t max_header_size;            /* request head bytes, 431 beyond */
    size_t max_headers;                /* header fields, 431 beyond */
    size_t max_body_size;              /* request and buffered response bytes, 413 beyond */
    unsigned client_header_timeout_ms; /* from the first byte to the end of the head */
    unsigned client_body_timeout_ms;   /* from the end of the head to the end of the body */
    unsigned keepalive_timeout_ms;     /* idle client connections */
    unsigned send_timeout_ms;          /* no write progress to a client */
    unsigned drain_timeout_ms;         /* SIGTERM: longest wait for requests in flight */
    unsigned max_connections;          /* client connections per worker */
    unsigned xml_max_depth;
    size_t xml_max_elements;
    unsigned max_multicall_calls; /* calls in one system.multicall, -32600 beyond */
    unsigned max_shadows;         /* shadow copies in flight per worker; more are dropped */
};

struct config_events {
    char *url; /* NULL: no broker, the spool is the sink */
    char *exchange;
    unsigned window;
    unsigned heartbeat_s;
    char *source; /* CloudEvents source */
};

/* A credential for the admin API. The name is who a flip or reload is
 * attributed to in the audit log; the secret is never logged. */
struct admin_token {
    char *name;
    char *secret;
};

/*
 * The `admin [ADDR] [token=env:VAR|file:PATH ...]` line (ADDR defaults to
 * loopback, 127.0.0.1:8081). A variable holds one
 * secret, named "admin"; a file holds either one bare secret (also "admin")
 * or one `NAME SECRET` pair a line, so each person or tool has its own.
 */
struct config_admin {
    int enabled;
    struct config_addr addr;
    struct admin_token *tokens; /* none: the API is open (loopback only) */
    size_t ntokens;
};

/* `access_log PATH|stdout|off [buffer=SIZE] [flush=DURATION]`: one JSON
 * line per request (accesslog.h). */
struct config_access_log {
    char *path;          /* NULL: off; "stdout"; else a file, relative to routes.conf */
    size_t buffer_bytes; /* per worker; 0 writes each line at once */
    unsigned flush_ms;   /* a buffered line waits at most this long */
};

struct config {
    atomic_uint refs;
    char *path; /* the file this came from */
    char *text; /* its text as read, NUL-terminated: a flip edits this copy */
    size_t text_len;
    struct config_addr listen;
    unsigned workers;
    struct config_admin admin;
    struct upstream_def *upstreams;
    size_t nupstreams;
    struct route *routes;
    size_t nroutes;
    struct config_events events;
    char *spool_dir;            /* relative paths resolved against the file's folder */
    struct spool_options spool; /* fsync=, max=, retain=, full=, segment= */
    char *log_level;            /* "info" unless set */
    char *error_log;            /* NULL: stderr */
    struct config_access_log access_log;
    struct config_limits limits;
    struct xr_limits xr_limits;
    struct target_counters *unrouted; /* calls and requests no route took (metrics.h) */
    size_t max_methods;               /* methods the inventory tracks (inventory.h) */
    int needs_params; /* some route adapts or intercepts, so calls are parsed fully */
    int has_xmlrpc_routes;
};

/*
 * Reads and validates `path`. Returns a snapshot with one reference, or NULL
 * when the file has errors. Each error is appended to `errors` as a line
 * "FILE:LINE: message\n", each warning as "FILE:LINE: warning: message\n"
 * (a file with only warnings loads; errors may be NULL). Resolves host
 * names, so call it from the main thread, never from a worker.
 */
struct config *config_load(const char *path, struct buf *errors);

/* Same, from text in memory; `name` stands for the file in messages and
 * relative paths resolve against the working directory. */
struct config *config_parse(const char *name, const char *text, size_t len, struct buf *errors);

/* Same, for text that is about to become the file at `path` (a flip):
 * messages name path, and relative paths resolve against its folder. */
struct config *config_parse_as(const char *path, const char *text, size_t len, struct buf *errors);

/* Reads a duration as routes.conf writes them: "2000" (milliseconds),
 * "500ms", "2s", "1m", "24h", "7d". Returns 0, or -1 when it is not one. */
int config_parse_duration_ms(const char *text, unsigned long long *ms);

/* Nonzero when every word of `action` (text as written after "->") belongs
 * to the action, so that nothing else, such as an option, would slip into a
 * route's line with it. */
int config_action_is_whole(const char *action);

/* Longest upstream or route name. */
#define CONFIG_NAME_MAX 200

/* Nonzero when s may name an upstream or a route: letters, digits, '-',
 * '_' and '.', not only dots, at most CONFIG_NAME_MAX bytes. */
int config_valid_name(const char *s);

/*
 * Reads a token file into a (appending; names must stay unique): one bare
 * SECRET, named "admin", or NAME SECRET lines; blank lines and '#' comments
 * are skipped, blanks around words ignored. The admin line and the command
 * line client both read token files with this, so they agree on what a file
 * says. Returns 0, or -1 with "PATH:LINE: why" (never the secret) in err.
 */
int config_read_token_file(const char *path, struct config_admin *a, char *err, size_t errlen);

/* Frees a's tokens, wiping the secrets first. */
void config_admin_tokens_free(struct config_admin *a);

/* The route called `name`, or NULL. */
const struct route *config_find_route(const struct config *c, const char *name);

/* Appends the MATCH part of a route as routes.conf would say it, e.g.
 * "xmlrpc stock.get" or "http POST /api/PREFIX*", then each condition
 * (" header X-Tenant=acme"). */
void config_describe_match(const struct route *r, struct buf *out);

/* Takes another reference. Thread-safe. */
struct config *config_ref(struct config *c);

/* Drops a reference; the last one frees the snapshot. NULL is a no-op. */
void config_unref(struct config *c);

/* "host:port" (or "[v6host]:port") for a socket address; the caller frees
 * it. */
char *config_addr_text(const struct sockaddr *sa);

/* The port of an address (0: "pick one", for listen addresses). */
unsigned config_addr_port(const struct config_addr *a);

/* The upstream called `name`, or NULL. */
const struct upstream_def *config_find_upstream(const struct config *c, const char *name);

#endif
