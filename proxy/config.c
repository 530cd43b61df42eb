#include "proxy/config.h"

#include "common/log.h"
#include "common/mem.h"
#include "interceptors/redact.h"
#include "legacy-adapters/xrdiff.h"
#include "legacy-adapters/restmap.h"
#include "proxy/http.h"
#include "proxy/metrics.h"
#include "proxy/router.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TOKENS 64
/* A rollback guard judges a window only once it holds this many calls:
 * one error out of one call is no rate. */
#define GUARD_MIN_CALLS 20

/* Parsing state for one file. */
struct parser {
    const char *file;
    int line;
    struct buf *errors;
    int nerrors;
    struct config *cfg;
    const char *line_start; /* the current line, for the columns of a route's action */
    char *base_dir;         /* folder of the file, for relative paths; NULL: cwd */
    size_t upstream_cap, route_cap;
    int seen[24]; /* line of the first occurrence of each once-only directive */
};

static void report(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vreport(struct parser *p, const char *kind, const char *fmt, va_list ap)
{
    if (p->errors == NULL)
        return;
    buf_appendf(p->errors, "%s:%d: %s", p->file, p->line, kind);
    buf_vappendf(p->errors, fmt, ap);
    buf_append_char(p->errors, '\n');
}

/* An error: the file is refused. */
static void report(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    p->nerrors++;
    va_start(ap, fmt);
    vreport(p, "", fmt, ap);
    va_end(ap);
}

/* A warning: the file is accepted, and the operator told. */
static void warn(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(p, "warning: ", fmt, ap);
    va_end(ap);
}

/*
 * Generic value setters, shared by directives and key=value options: each
 * writes into base + offset and checks the range. This is what keeps the
 * directive table a table (nginx's ngx_conf_set_msec_slot and friends).
 */
struct setting;
typedef int (*setter_fn)(struct parser *p, const struct setting *s, const char *value, void *base);

struct setting {
    const char *name;
    setter_fn set;
    size_t offset;
    unsigned long long min, max;
    const char *const *words; /* set_word: the accepted words, stored as their index */
};

int config_parse_duration_ms(const char *v, unsigned long long *out)
{
    static const struct {
        const char *suffix;
        unsigned long long ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || v[0] == '-' || v[0] == '+')
        return -1;
    unsigned long long mul = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(end, units[i].suffix) == 0)
            mul = units[i].ms;
    if (mul == 0)
        return -1;
    if (n > ULLONG_MAX / mul)
        return -1;
    *out = n * mul;
    return 0;
}

/* "1024", "16k", "16KB", "10m", "2GB" (powers of 1024). */
static int parse_size(const char *v, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || v[0] == '-' || v[0] == '+')
        return -1;
    unsigned shift = 0;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        break;
    case 'k':
        shift = 10;
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    default:
        return -1;
    }
    if (*end != '\0') {
        const char *unit = end + 1;
        if (*unit != '\0' && strcasecmp(unit, "b") != 0)
            return -1;
    }
    if (n > (ULLONG_MAX >> shift))
        return -1;
    *out = n << shift;
    return 0;
}

static int parse_count(const char *v, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (v[0] < '0' || v[0] > '9')
        return -1;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

/* "25%", "12.5%", "100%" into basis points (2500, 1250, 10000). */
static int parse_percent_bp(const char *v, unsigned *bp)
{
    /* By hand: strtod would also take hex, exponents and "inf". Digits, then
     * an optional fraction of one or two digits (hundredths of a percent). */
    unsigned whole = 0, frac = 0;
    const char *c = v;
    if (!isdigit((unsigned char)*c))
        return -1;
    for (; isdigit((unsigned char)*c) && whole <= 100; c++)
        whole = whole * 10 + (unsigned)(*c - '0');
    if (*c == '.') {
        c++;
        if (!isdigit((unsigned char)*c))
            return -1;
        frac = (unsigned)(*c++ - '0') * 10;
        if (isdigit((unsigned char)*c))
            frac += (unsigned)(*c++ - '0');
    }
    if (strcmp(c, "%") != 0 || whole * 100 + frac > 10000)
        return -1;
    *bp = whole * 100 + frac;
    return 0;
}

/* The C type a numeric setting is stored as. */
enum field_width { FIELD_UNSIGNED, FIELD_SIZE, FIELD_U64 };

/* How a numeric setting reads its text, names its unit, and is stored. */
struct number_kind {
    int (*parse)(const char *v, unsigned long long *out);
    const char *noun; /* "invalid NOUN 'text'" */
    const char *hint; /* what was expected, for the message */
    const char *unit; /* after a range, e.g. " ms" */
    enum field_width width;
};

#define DURATION_HINT " (expected milliseconds, or a number with ms, s, m, h or d)"
#define SIZE_HINT     " (expected bytes, or a number with k, m or g)"
static const struct number_kind durations = {config_parse_duration_ms, "duration", DURATION_HINT,
                                             " ms", FIELD_UNSIGNED};
static const struct number_kind long_durations = {config_parse_duration_ms, "duration",
                                                  DURATION_HINT, " ms", FIELD_U64};
static const struct number_kind sizes = {parse_size, "size", SIZE_HINT, " bytes", FIELD_SIZE};
static const struct number_kind large_sizes = {parse_size, "size", SIZE_HINT, " bytes", FIELD_U64};
static const struct number_kind counts = {parse_count, "number", "", "", FIELD_UNSIGNED};
static const struct number_kind large_counts = {parse_count, "number", "", "", FIELD_SIZE};

static int set_number(struct parser *p, const struct setting *s, const char *value, void *base,
                      const struct number_kind *k)
{
    unsigned long long n;
    if (k->parse(value, &n) != 0) {
        report(p, "%s: invalid %s '%s'%s", s->name, k->noun, value, k->hint);
        return -1;
    }
    if (n < s->min || n > s->max) {
        report(p, "%s: %s is out of range (%llu to %llu%s)", s->name, value, s->min, s->max,
               k->unit);
        return -1;
    }
    void *field = (char *)base + s->offset;
    switch (k->width) {
    case FIELD_UNSIGNED:
        *(unsigned *)field = (unsigned)n;
        break;
    case FIELD_SIZE:
        *(size_t *)field = (size_t)n;
        break;
    case FIELD_U64:
        *(uint64_t *)field = (uint64_t)n;
        break;
    }
    return 0;
}

static int set_duration(struct parser *p, const struct setting *s, const char *value, void *base)
{
    return set_number(p, s, value, base, &durations);
}

static int set_long_duration(struct parser *p, const struct setting *s, const char *value,
                             void *base)
{
    return set_number(p, s, value, base, &long_durations);
}

static int set_size(struct parser *p, const struct setting *s, const char *value, void *base)
{
    return set_number(p, s, value, base, &sizes);
}

static int set_large_size(struct parser *p, const struct setting *s, const char *value, void *base)
{
    return set_number(p, s, value, base, &large_sizes);
}

/* One of s->words, stored as its index in an unsigned (or enum) field. */
static int set_word(struct parser *p, const struct setting *s, const char *value, void *base)
{
    struct buf expected = BUF_INIT;
    for (unsigned i = 0; s->words[i] != NULL; i++) {
        if (strcmp(s->words[i], value) == 0) {
            *(unsigned *)((char *)base + s->offset) = i;
            buf_dispose(&expected);
            return 0;
        }
        buf_appendf(&expected, "%s%s", i == 0 ? "" : s->words[i + 1] ? ", " : " or ", s->words[i]);
    }
    report(p, "%s: '%s' is not %s", s->name, value, buf_cstr(&expected));
    buf_dispose(&expected);
    return -1;
}

static int set_uint(struct parser *p, const struct setting *s, const char *value, void *base)
{
    return set_number(p, s, value, base, &counts);
}

static int set_count(struct parser *p, const struct setting *s, const char *value, void *base)
{
    return set_number(p, s, value, base, &large_counts);
}

static int set_string(struct parser *p, const struct setting *s, const char *value, void *base)
{
    (void)p;
    char **field = (char **)((char *)base + s->offset);
    free(*field);
    *field = mem_strdup(value);
    return 0;
}

static int set_log_level(struct parser *p, const struct setting *s, const char *value, void *base)
{
    enum log_level level;
    if (log_level_parse(value, &level) != 0) {
        report(p, "%s: '%s' is not error, warn, info or debug", s->name, value);
        return -1;
    }
    return set_string(p, s, value, base);
}

/* Applies NAME=VALUE options from argv against a table of settings. */
static int apply_options(struct parser *p, const char *what, char **argv, int argc,
                         const struct setting *table, void *base)
{
    int rc = 0;
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        const struct setting *s = NULL;
        if (eq != NULL) {
            *eq = '\0';
            for (s = table; s->name != NULL && strcmp(s->name, argv[i]) != 0; s++)
                ;
            *eq = '=';
        }
        if (eq == NULL || s->name == NULL) {
            struct buf known = BUF_INIT;
            for (const struct setting *k = table; k->name != NULL; k++)
                buf_appendf(&known, "%s%s=", k == table ? "" : ", ", k->name);
            report(p, "%s: unknown option '%s' (expected %s)", what, argv[i], buf_cstr(&known));
            buf_dispose(&known);
            rc = -1;
            continue;
        }
        if (s->set(p, s, eq + 1, base) != 0)
            rc = -1;
    }
    return rc;
}

static int split_host_port(const char *text, char *host, size_t host_size, const char **port)
{
    const char *colon;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        if ((size_t)(close - text - 1) >= host_size)
            return -1;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        *port = close + 2;
        return 0;
    }
    colon = strrchr(text, ':');
    if (colon == NULL || colon == text || (size_t)(colon - text) >= host_size)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    *port = colon + 1;
    return 0;
}

/* Resolves host and port into addr. Blocking (getaddrinfo): main thread. */
static int resolve(struct parser *p, const char *what, const char *host, const char *port,
                   struct config_addr *addr)
{
    struct addrinfo hints = {0}, *res = NULL;
    unsigned long long n;
    if (parse_count(port, &n) != 0 || n > 65535) {
        report(p, "%s: invalid port '%s'", what, port);
        return -1;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        report(p, "%s: cannot resolve '%s': %s", what, host, gai_strerror(rc));
        return -1;
    }
    memcpy(&addr->sa, res->ai_addr, res->ai_addrlen);
    addr->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int parse_addr(struct parser *p, const char *what, const char *text,
                      struct config_addr *addr)
{
    char host[256];
    const char *port;
    if (split_host_port(text, host, sizeof(host), &port) != 0) {
        report(p, "%s: invalid address '%s' (expected HOST:PORT)", what, text);
        return -1;
    }
    if (resolve(p, what, host, port, addr) != 0)
        return -1;
    free(addr->text);
    addr->text = mem_strdup(text);
    return 0;
}

static int addr_is_loopback(const struct config_addr *a)
{
    if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

/* Directive handlers. argv[0] is the directive name. */
struct directive;
typedef int (*directive_fn)(struct parser *p, const struct directive *d, char **argv, int argc);

struct directive {
    const char *name;
    int min_args, max_args; /* after the name; max -1: any */
    directive_fn handle;
    int once;
    struct setting setting; /* for one-value directives */
};

static int do_single(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)argc;
    return d->setting.set(p, &d->setting, argv[1], p->cfg);
}

static int do_listen(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)d;
    (void)argc;
    return parse_addr(p, "listen", argv[1], &p->cfg->listen);
}

static void add_token(struct config_admin *a, const char *name, size_t name_len, const char *secret,
                      size_t secret_len)
{
    a->tokens = mem_realloc(a->tokens, (a->ntokens + 1) * sizeof(*a->tokens));
    a->tokens[a->ntokens].name = mem_strndup(name, name_len);
    a->tokens[a->ntokens].secret = mem_strndup(secret, secret_len);
    a->ntokens++;
}

static int token_name_taken(const struct config_admin *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->ntokens; i++)
        if (strlen(a->tokens[i].name) == len && memcmp(a->tokens[i].name, name, len) == 0)
            return 1;
    return 0;
}

#define TOKEN_LINE_MAX 1024

/*
 * One line of a token file: a bare secret (named "admin"), or NAME SECRET;
 * blanks around the words do not count. Blank lines and lines starting with
 * '#' are skipped. Returns 1 when a token was added, 0 for a skipped line,
 * -1 with the reason in err.
 */
static int read_token_line(const char *path, int n, char *line, struct config_admin *a, char *err,
                           size_t errlen)
{
    char *s = line + strspn(line, " \t");
    size_t len = strcspn(s, "\r\n");
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    s[len] = '\0';
    if (*s == '\0' || *s == '#')
        return 0;
    const char *name = "admin", *secret = s;
    size_t name_len = 5;
    char *blank = strpbrk(s, " \t");
    if (blank != NULL) {
        name = s;
        name_len = (size_t)(blank - s);
        secret = blank + strspn(blank, " \t");
        if (strpbrk(secret, " \t") != NULL) {
            snprintf(err, errlen, "%s:%d: expected SECRET or NAME SECRET", path, n);
            return -1;
        }
    }
    if (token_name_taken(a, name, name_len)) {
        snprintf(err, errlen, "%s:%d: the name '%.*s' is used twice", path, n, (int)name_len, name);
        return -1;
    }
    add_token(a, name, name_len, secret, strlen(secret));
    return 1;
}

int config_read_token_file(const char *path, struct config_admin *a, char *err, size_t errlen)
{
    char line[TOKEN_LINE_MAX];
    int rc = -1, n = 0, added = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        n++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s:%d: the line is longer than %d bytes", path, n,
                     TOKEN_LINE_MAX - 2);
            goto out;
        }
        int r = read_token_line(path, n, line, a, err, errlen);
        if (r < 0)
            goto out;
        added += r;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (added == 0) {
        snprintf(err, errlen, "%s: the file holds no token", path);
        goto out;
    }
    rc = 0;
out:
    explicit_bzero(line, sizeof(line));
    if (f)
        fclose(f);
    return rc;
}

void config_admin_tokens_free(struct config_admin *a)
{
    for (size_t i = 0; i < a->ntokens; i++) {
        /* A secret: do not leave it in freed heap memory. */
        char *secret = a->tokens[i].secret;
        explicit_bzero(secret, strlen(secret));
        free(secret);
        free(a->tokens[i].name);
    }
    free(a->tokens);
    a->tokens = NULL;
    a->ntokens = 0;
}

/* token=file:PATH, relative to the folder of routes.conf like the spool. */
static int read_token_file(struct parser *p, const char *spec, struct config_admin *a)
{
    char err[512];
    struct buf path = BUF_INIT;
    if (spec[5] != '/' && p->base_dir != NULL)
        buf_appendf(&path, "%s/%s", p->base_dir, spec + 5);
    else
        buf_append_str(&path, spec + 5);
    int rc = config_read_token_file(buf_cstr(&path), a, err, sizeof(err));
    if (rc != 0)
        report(p, "admin: token=%s: %s", spec, err);
    buf_dispose(&path);
    return rc;
}

/* Reads admin tokens from where `spec` says. An unset variable is only a
 * warning on loopback, where no token is needed: the file stays usable on a
 * developer's machine. Off loopback it is an error, never an open API. */
static int read_token_source(struct parser *p, const char *spec, int loopback,
                             struct config_admin *a)
{
    if (strncmp(spec, "env:", 4) == 0) {
        const char *v = getenv(spec + 4);
        if (v != NULL && v[0] != '\0') {
            if (token_name_taken(a, "admin", 5)) {
                report(p, "admin: token=%s: a second token named 'admin'", spec);
                return -1;
            }
            add_token(a, "admin", 5, v, strlen(v));
            return 0;
        }
        if (loopback) {
            warn(p,
                 "admin: token=%s: the environment variable is not set; the admin API "
                 "on loopback runs without a token",
                 spec);
            return 0;
        }
        report(p, "admin: token=%s: the environment variable is not set", spec);
        return -1;
    }
    if (strncmp(spec, "file:", 5) == 0)
        return read_token_file(p, spec, a);
    report(p, "admin: token must be env:VARIABLE or file:PATH, so the secret stays out of "
              "routes.conf");
    return -1;
}

/* The admin API's address when the line names none: loopback, so an
 * `admin` line alone never exposes it. */
#define ADMIN_DEFAULT_ADDR "127.0.0.1:8081"

static int do_admin(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)d;
    struct config_admin *a = &p->cfg->admin;
    int first = 1;
    const char *addr = ADMIN_DEFAULT_ADDR;
    if (argc > 1 && strncmp(argv[1], "token=", 6) != 0)
        addr = argv[first++];
    if (parse_addr(p, "admin", addr, &a->addr) != 0)
        return -1;
    for (int i = first; i < argc; i++) {
        if (strncmp(argv[i], "token=", 6) != 0) {
            report(p, "admin: unknown option '%s' (expected token=env:VAR or token=file:PATH)",
                   argv[i]);
            return -1;
        }
        if (read_token_source(p, argv[i] + 6, addr_is_loopback(&a->addr), a) != 0)
            return -1;
    }
    if (a->ntokens == 0 && !addr_is_loopback(&a->addr)) {
        report(p, "admin: %s is not a loopback address; set token= to expose the admin API", addr);
        return -1;
    }
    a->enabled = 1;
    return 0;
}

static const struct setting upstream_options[] = {
    {"kind", set_string, offsetof(struct upstream_def, kind), 0, 0, NULL},
    {"role", set_string, offsetof(struct upstream_def, role), 0, 0, NULL},
    {"timeout", set_duration, offsetof(struct upstream_def, timeout_ms), 1, 3600000, NULL},
    {"connect_timeout", set_duration, offsetof(struct upstream_def, connect_timeout_ms), 1, 600000,
     NULL},
    {"keepalive", set_uint, offsetof(struct upstream_def, keepalive), 0, 100000, NULL},
    {"keepalive_timeout", set_duration, offsetof(struct upstream_def, keepalive_timeout_ms), 1,
     3600000, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* http://host[:port][/path]: the only scheme (TLS to upstreams is not
 * implemented, and silently speaking plain HTTP to https:// would be
 * worse than refusing). */
static int parse_upstream_url(struct parser *p, struct upstream_def *u)
{
    const char *url = u->url;
    if (strncasecmp(url, "http://", 7) != 0) {
        report(p, "upstream %s: URL must start with http:// (got '%s')", u->name, url);
        return -1;
    }
    const char *authority = url + 7;
    const char *slash = strchr(authority, '/');
    size_t alen = slash ? (size_t)(slash - authority) : strlen(authority);
    char hostport[300];
    if (alen == 0 || alen >= sizeof(hostport) - 4) {
        report(p, "upstream %s: URL has no host", u->name);
        return -1;
    }
    memcpy(hostport, authority, alen);
    hostport[alen] = '\0';
    /* Without a port, HTTP's default. */
    int has_port = hostport[alen - 1] != ']' && strrchr(hostport, ':') != NULL &&
                   (hostport[0] != '[' || strstr(hostport, "]:") != NULL);
    if (!has_port) {
        memcpy(hostport + alen, ":80", 4);
    }
    char what[300];
    snprintf(what, sizeof(what), "upstream %s", u->name);
    if (parse_addr(p, what, hostport, &u->addr) != 0)
        return -1;
    if (config_addr_port(&u->addr) == 0) {
        report(p, "upstream %s: port 0 is not a port to connect to", u->name);
        return -1;
    }
    u->host_header = mem_strndup(authority, alen);
    const char *path = slash ? slash : "";
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    u->base_path = mem_strndup(path, plen);
    return 0;
}

static struct upstream_def *add_upstream(struct parser *p)
{
    struct config *c = p->cfg;
    if (c->nupstreams == p->upstream_cap) {
        p->upstream_cap = p->upstream_cap ? p->upstream_cap * 2 : 8;
        c->upstreams = mem_realloc(c->upstreams, p->upstream_cap * sizeof(*c->upstreams));
    }
    struct upstream_def *u = &c->upstreams[c->nupstreams];
    memset(u, 0, sizeof(*u));
    u->index = (unsigned)c->nupstreams++;
    u->line = p->line;
    return u;
}

const struct upstream_def *route_new_side(const struct route *r)
{
    return r->mode == ROUTE_SHADOW || r->mode == ROUTE_CANARY ? r->second : r->upstream;
}

const struct upstream_def *route_legacy_side(const struct route *r)
{
    return r->mode == ROUTE_FALLBACK ? r->second : r->upstream;
}

int config_valid_name(const char *s)
{
    /* A name also appears in admin URLs (/routes/NAME): "." and ".." would
     * be folded away there. */
    if (strspn(s, ".") == strlen(s) || strlen(s) > CONFIG_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

struct action_form;
static const struct action_form *action_form_of(const char *word);

static int do_upstream(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)d;
    if (!config_valid_name(argv[1])) {
        report(p, "upstream: invalid name '%s' (up to %d letters, digits, '-', '_' and '.')",
               argv[1], CONFIG_NAME_MAX);
        return -1;
    }
    if (config_find_upstream(p->cfg, argv[1]) != NULL) {
        report(p, "upstream %s is defined twice", argv[1]);
        return -1;
    }
    if (action_form_of(argv[1]) != NULL || strcmp(argv[1], "readonly") == 0) {
        report(p,
               "upstream: '%s' is a word of actions (shadow, canary, fallback, readonly); pick "
               "another name",
               argv[1]);
        return -1;
    }
    struct upstream_def *u = add_upstream(p);
    u->name = mem_strdup(argv[1]);
    u->counters = metrics_upstream_counters(u->name);
    u->url = mem_strdup(argv[2]);
    u->timeout_ms = 30000;
    u->connect_timeout_ms = 5000;
    u->keepalive = 64;
    u->keepalive_timeout_ms = 4000;
    char what[300];
    snprintf(what, sizeof(what), "upstream %s", u->name);
    int rc = apply_options(p, what, argv + 3, argc - 3, upstream_options, u);
    if (u->kind == NULL)
        u->kind = mem_strdup("xmlrpc");
    if (strcmp(u->kind, "xmlrpc") != 0) {
        u->adapter = adapter_find(u->kind, strlen(u->kind));
        if (u->adapter == NULL) {
            report(p, "upstream %s: unknown kind '%s' (expected xmlrpc or json)", u->name, u->kind);
            rc = -1;
        }
    }
    /* A new service speaks JSON (DESIGN.md); role= says otherwise for one
     * rewritten to speak XML-RPC itself, or for a JSON facade of the
     * legacy. The share of traffic a migration has strangled counts by it. */
    if (u->role == NULL)
        u->role = mem_strdup(u->adapter != NULL ? "new" : "legacy");
    if (strcmp(u->role, "new") != 0 && strcmp(u->role, "legacy") != 0) {
        report(p, "upstream %s: role must be new or legacy (got '%s')", u->name, u->role);
        rc = -1;
    }
    u->new_side = strcmp(u->role, "new") == 0;
    if (parse_upstream_url(p, u) != 0)
        rc = -1;
    return rc;
}

static const struct setting events_options[] = {
    {"exchange", set_string, offsetof(struct config_events, exchange), 0, 0, NULL},
    {"window", set_uint, offsetof(struct config_events, window), 1, 100000, NULL},
    {"heartbeat", set_uint, offsetof(struct config_events, heartbeat_s), 0, 3600, NULL},
    {"source", set_string, offsetof(struct config_events, source), 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

static int do_events(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)d;
    struct config_events *e = &p->cfg->events;
    if (strncmp(argv[1], "amqp://", 7) != 0) {
        /* Not echoed: the URL may hold a password. */
        report(p, "events: URL must start with amqp://");
        return -1;
    }
    e->url = mem_strdup(argv[1]);
    return apply_options(p, "events", argv + 2, argc - 2, events_options, e);
}

/* spool.max_bytes until finish() decides its default. */
#define SPOOL_MAX_UNSET UINT64_MAX

/* In the order of enum spool_fsync and enum spool_full_policy. */
static const char *const fsync_words[] = {"batch", "always", "off", NULL};
static const char *const full_words[] = {"skip", "refuse", NULL};
_Static_assert(SPOOL_FSYNC_BATCH == 0 && SPOOL_FSYNC_ALWAYS == 1 && SPOOL_FSYNC_OFF == 2,
               "fsync_words follows enum spool_fsync");
_Static_assert(SPOOL_FULL_SKIP == 0 && SPOOL_FULL_REFUSE == 1,
               "full_words follows enum spool_full_policy");

#define SPOOL_FIELD(f) offsetof(struct spool_options, f)
static const struct setting spool_options[] = {
    {"segment", set_size, SPOOL_FIELD(segment_bytes), 4096, (unsigned long long)1 << 40, NULL},
    {"fsync", set_word, SPOOL_FIELD(fsync), 0, 0, fsync_words},
    {"fsync_interval", set_duration, SPOOL_FIELD(fsync_interval_ms), 1, 60000, NULL},
    {"max", set_large_size, SPOOL_FIELD(max_bytes), (unsigned long long)1 << 20,
     (unsigned long long)1 << 50, NULL},
    {"retain", set_long_duration, SPOOL_FIELD(retain_ms), 0, 3650ull * 86400000, NULL},
    {"full", set_word, SPOOL_FIELD(full), 0, 0, full_words},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* A path from routes.conf: relative ones are relative to the file's folder. */
static char *file_relative(const struct parser *p, const char *path)
{
    if (path[0] == '/' || p->base_dir == NULL)
        return mem_strdup(path);
    struct buf b = BUF_INIT;
    buf_appendf(&b, "%s/%s", p->base_dir, path);
    return buf_steal(&b);
}

static int do_spool(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)d;
    struct config *c = p->cfg;
    free(c->spool_dir);
    c->spool_dir = file_relative(p, argv[1]);
    return apply_options(p, "spool", argv + 2, argc - 2, spool_options, &c->spool);
}

#define ACCESS_LOG_FIELD(f) offsetof(struct config_access_log, f)
static const struct setting access_log_options[] = {
    {"buffer", set_size, ACCESS_LOG_FIELD(buffer_bytes), 0, 16 << 20, NULL},
    {"flush", set_duration, ACCESS_LOG_FIELD(flush_ms), 1, 60000, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* `access_log PATH|stdout|off [buffer=SIZE] [flush=DURATION]` */
static int do_access_log(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)d;
    struct config_access_log *a = &p->cfg->access_log;
    free(a->path);
    a->path = NULL;
    if (strcmp(argv[1], "off") != 0)
        a->path = strcmp(argv[1], "stdout") == 0 ? mem_strdup("stdout") : file_relative(p, argv[1]);
    return apply_options(p, "access_log", argv + 2, argc - 2, access_log_options, a);
}

/* `error_log PATH|stderr` */
static int do_error_log(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)d;
    (void)argc;
    free(p->cfg->error_log);
    p->cfg->error_log = strcmp(argv[1], "stderr") == 0 ? NULL : file_relative(p, argv[1]);
    return 0;
}

static struct route *add_route(struct parser *p)
{
    struct config *c = p->cfg;
    if (c->nroutes == p->route_cap) {
        p->route_cap = p->route_cap ? p->route_cap * 2 : 16;
        c->routes = mem_realloc(c->routes, p->route_cap * sizeof(*c->routes));
    }
    struct route *r = &c->routes[c->nroutes++];
    memset(r, 0, sizeof(*r));
    r->line = p->line;
    return r;
}

/* Parses the MATCH part of a route, without its conditions. */
static int parse_match_kind(struct parser *p, struct route *r, char **argv, int argc)
{
    if (argc == 1 && strcmp(argv[0], "*") == 0) {
        r->match = ROUTE_MATCH_ANY;
        return 0;
    }
    if (argc == 2 && strcmp(argv[0], "xmlrpc") == 0) {
        r->match = ROUTE_MATCH_XMLRPC;
        r->pattern = mem_strdup(argv[1]);
        r->pattern_len = strlen(argv[1]);
        return 0;
    }
    if (argc == 3 && strcmp(argv[0], "http") == 0) {
        const char *path = argv[2];
        size_t len = strlen(path);
        for (const char *m = argv[1]; *m; m++) {
            if (!(isupper((unsigned char)*m) || (*m == '*' && argv[1][1] == '\0'))) {
                report(p, "route %s: invalid HTTP method '%s' (e.g. POST, or * for any)", r->name,
                       argv[1]);
                return -1;
            }
        }
        if (path[0] != '/') {
            report(p, "route %s: HTTP path must start with '/' (got '%s')", r->name, path);
            return -1;
        }
        r->match = ROUTE_MATCH_HTTP;
        r->http_method = mem_strdup(argv[1]);
        r->path_prefix = path[len - 1] == '*';
        if (r->path_prefix)
            len--;
        if (memchr(path, '*', len) != NULL) {
            report(p, "route %s: '*' is only allowed at the end of a path", r->name);
            return -1;
        }
        r->pattern = mem_strndup(path, len);
        r->pattern_len = len;
        return 0;
    }
    report(p,
           "route %s: invalid match (expected 'xmlrpc GLOB', 'http METHOD PATH' or '*', then "
           "optional 'header NAME=VALUE' conditions)",
           r->name);
    return -1;
}

static int parse_condition(struct parser *p, struct route *r, const char *text)
{
    const char *eq = strchr(text, '=');
    if (eq == NULL || eq == text) {
        report(p, "route %s: invalid condition 'header %s' (expected header NAME=VALUE)", r->name,
               text);
        return -1;
    }
    for (const char *c = text; c < eq; c++)
        if (!http_is_token_char((unsigned char)*c)) {
            report(p, "route %s: invalid header name '%.*s'", r->name, (int)(eq - text), text);
            return -1;
        }
    r->conditions = mem_realloc(r->conditions, (r->nconditions + 1) * sizeof(*r->conditions));
    struct route_condition *k = &r->conditions[r->nconditions++];
    k->name_len = (size_t)(eq - text);
    k->name = mem_strndup(text, k->name_len);
    k->value = mem_strdup(eq + 1);
    k->value_len = strlen(eq + 1);
    return 0;
}

/* Parses the MATCH part of a route (argv up to "->"): the match itself,
 * then any number of `header NAME=VALUE` conditions. */
static int parse_match(struct parser *p, struct route *r, char **argv, int argc)
{
    int first = argc;
    while (first >= 2 && strcmp(argv[first - 2], "header") == 0)
        first -= 2;
    if (parse_match_kind(p, r, argv, first) != 0)
        return -1;
    for (int i = first; i < argc; i += 2)
        if (parse_condition(p, r, argv[i + 1]) != 0)
            return -1;
    return 0;
}

/* An event type is also the default routing key, so it must be a valid
 * topic-exchange word list. */
static int valid_event_type(const char *t)
{
    if (*t == '\0' || strlen(t) > 255)
        return 0;
    for (; *t; t++)
        if (!isalnum((unsigned char)*t) && *t != '.' && *t != '-' && *t != '_')
            return 0;
    return 1;
}

/* intercept=TYPE and key=KEY: both end up in AMQP short strings and the key
 * is matched by topic bindings, hence one rule for both. */
static int set_event_word(struct parser *p, struct route *r, const char *what, const char *value,
                          const char **field)
{
    if (!valid_event_type(value)) {
        report(p, "route %s: invalid %s '%s' (letters, digits, '.', '-', '_')", r->name, what,
               value);
        return -1;
    }
    free((char *)*field);
    *field = mem_strdup(value);
    return 0;
}

static int set_redact(struct parser *p, struct route *r, const char *list)
{
    char why[256];
    struct redact *red = NULL;
    if (r->rule.redact != NULL) {
        report(p, "route %s: redact= is set twice (list every path in one)", r->name);
        return -1;
    }
    if (redact_parse(list, &red, why, sizeof(why)) < 0) {
        report(p, "route %s: redact=%s: %s", r->name, list, why);
        return -1;
    }
    r->rule.redact = red;
    return 0;
}

static int set_map(struct parser *p, struct route *r, const char *opt)
{
    char why[256];
    struct restmap *m = NULL;
    if (r->map != NULL) {
        report(p, "route %s: map= is set twice (a route has one map)", r->name);
        return -1;
    }
    if (restmap_parse(opt + 4, &m, why, sizeof(why)) < 0) {
        report(p, "route %s: %s: %s", r->name, opt, why);
        return -1;
    }
    r->map = m;
    return 0;
}

/* Whether one of the n words before opt has its name (the text before '=';
 * `intercept` and `intercept=TYPE` are one option). */
static int option_given_before(char *const *before, int n, const char *opt)
{
    size_t len = strcspn(opt, "=");
    for (int i = 0; i < n; i++)
        if (strcspn(before[i], "=") == len && strncmp(before[i], opt, len) == 0)
            return 1;
    return 0;
}

/* Frees a NULL-terminated array of strings. */
static void free_strings(char **v)
{
    for (char **s = v; s != NULL && *s != NULL; s++)
        free(*s);
    free(v);
}

/* ignore=result.updated_at,result.items[].price: paths a shadow's
 * comparison leaves out (xrdiff.h). */
static int set_ignore(struct parser *p, struct route *r, const char *list)
{
    char why[256];
    size_t n = 1;
    for (const char *c = list; *c; c++)
        n += *c == ',';
    char **paths = mem_calloc(n + 1, sizeof(*paths));
    const char *start = list;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(start, ",");
        paths[i] = mem_strndup(start, len);
        if (xrdiff_check_path(paths[i], why, sizeof(why)) != 0) {
            report(p, "route %s: ignore=%s: %s", r->name, list, why);
            free_strings(paths);
            return -1;
        }
        start += len + 1;
    }
    r->ignore = paths;
    return 0;
}

static int set_tolerance(struct parser *p, struct route *r, const char *v)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(d >= 0 && d < 1)) {
        report(p, "route %s: tolerance=%s: expected a number from 0 to below 1, such as 1e-9",
               r->name, v);
        return -1;
    }
    r->tolerance = d;
    return 0;
}

/* rollback=errors>5%/1m or rollback=mismatches>1%/10m. */
static int set_guard(struct parser *p, struct route *r, const char *v)
{
    struct route_guard g = {.enabled = 1, .min_calls = GUARD_MIN_CALLS};
    const char *rest = v;
    char pct[32];
    unsigned long long ms;
    if (strncmp(rest, "errors>", 7) == 0) {
        rest += 7;
    } else if (strncmp(rest, "mismatches>", 11) == 0) {
        g.on_mismatches = 1;
        rest += 11;
    } else {
        goto bad;
    }
    size_t n = strcspn(rest, "/");
    if (rest[n] != '/' || n == 0 || n >= sizeof(pct))
        goto bad;
    memcpy(pct, rest, n);
    pct[n] = '\0';
    if (parse_percent_bp(pct, &g.threshold_bp) != 0 || g.threshold_bp == 0 ||
        g.threshold_bp >= 10000 || config_parse_duration_ms(rest + n + 1, &ms) != 0 || ms < 1000 ||
        ms > 86400000)
        goto bad;
    g.window_ms = (unsigned)ms;
    r->guard = g;
    return 0;
bad:
    report(p,
           "route %s: rollback=%s: expected errors>N%%/DURATION or mismatches>N%%/DURATION, "
           "such as errors>5%%/1m (N above 0 and below 100, a window from 1s to 1d)",
           r->name, v);
    return -1;
}

static int parse_route_option(struct parser *p, struct route *r, const char *opt)
{
    if (strcmp(opt, "intercept") == 0) {
        r->intercept = 1;
        return 0;
    }
    if (strncmp(opt, "intercept=", 10) == 0) {
        r->intercept = 1;
        return set_event_word(p, r, "event type", opt + 10, &r->rule.type);
    }
    if (strncmp(opt, "key=", 4) == 0)
        return set_event_word(p, r, "routing key", opt + 4, &r->rule.key);
    if (strcmp(opt, "on=all") == 0 || strcmp(opt, "on=success") == 0) {
        r->rule.on_faults = opt[3] == 'a';
        return 0;
    }
    if (strncmp(opt, "on=", 3) == 0) {
        report(p, "route %s: on=%s: expected on=success (the default) or on=all (faults too)",
               r->name, opt + 3);
        return -1;
    }
    if (strncmp(opt, "redact=", 7) == 0)
        return set_redact(p, r, opt + 7);
    if (strncmp(opt, "map=", 4) == 0)
        return set_map(p, r, opt);
    if (strncmp(opt, "ignore=", 7) == 0)
        return set_ignore(p, r, opt + 7);
    if (strncmp(opt, "tolerance=", 10) == 0)
        return set_tolerance(p, r, opt + 10);
    if (strncmp(opt, "rollback=", 9) == 0)
        return set_guard(p, r, opt + 9);
    report(p,
           "route %s: unknown option '%s' (expected intercept, intercept=TYPE, key=KEY, "
           "on=success|all, redact=PATHS, map=METHOD:PATH, ignore=PATHS, tolerance=X or "
           "rollback=errors|mismatches>N%%/DURATION)",
           r->name, opt);
    return -1;
}

/*
 * The actions that name two upstreams (enum route_mode in config.h): the
 * keyword, how many words always follow it, and which optional words may
 * come after those (each at most once).
 */
struct action_form {
    const char *keyword;
    enum route_mode mode;
    int fixed;                   /* words after the keyword */
    const char *const *optional; /* prefixes: "readonly" exact, "sample=" a value */
};

static const char *const shadow_words[] = {"readonly", "sample=", NULL};
static const char *const canary_words[] = {"sticky=", NULL};
static const char *const fallback_words[] = {"readonly", NULL};
static const struct action_form action_forms[] = {
    {"shadow", ROUTE_SHADOW, 2, shadow_words},
    {"canary", ROUTE_CANARY, 3, canary_words},
    {"fallback", ROUTE_FALLBACK, 2, fallback_words},
};

static const struct action_form *action_form_of(const char *word)
{
    for (size_t i = 0; i < sizeof(action_forms) / sizeof(action_forms[0]); i++)
        if (strcmp(action_forms[i].keyword, word) == 0)
            return &action_forms[i];
    return NULL;
}

/* Whether word is one of form's optional words ("sample=" matches
 * "sample=25%", "readonly" only itself). */
static int is_optional_word(const struct action_form *form, const char *word)
{
    for (const char *const *w = form->optional; *w != NULL; w++) {
        size_t n = strlen(*w);
        if ((*w)[n - 1] == '=' ? strncmp(word, *w, n) == 0 : strcmp(word, *w) == 0)
            return 1;
    }
    return 0;
}

/* How many of the words after "->" are the action (the rest are options).
 * parse_action() and config_action_is_whole() share it, so that a flip is
 * checked against the grammar the file is read with. */
static int action_word_count(char **argv, int argc)
{
    const struct action_form *form = argc > 0 ? action_form_of(argv[0]) : NULL;
    if (form == NULL)
        return argc > 0 ? 1 : 0;
    int n = 1 + form->fixed < argc ? 1 + form->fixed : argc;
    while (n < argc && is_optional_word(form, argv[n]))
        n++;
    return n;
}

static int tokenize(char *line, char **argv);

int config_action_is_whole(const char *action)
{
    char *copy = mem_strdup(action);
    char *argv[MAX_TOKENS];
    int argc = tokenize(copy, argv);
    int whole = argc > 0 && action_word_count(argv, argc) == argc;
    free(copy);
    return whole;
}

/* A header name: one HTTP token. */
static int is_token(const char *s)
{
    for (; *s != '\0'; s++)
        if (!http_is_token_char((unsigned char)*s))
            return 0;
    return 1;
}

/* sticky=param:N or sticky=header:NAME. */
static int parse_sticky(struct parser *p, struct route *r, const char *v)
{
    unsigned long long n;
    if (strncmp(v, "param:", 6) == 0 && parse_count(v + 6, &n) == 0 && n >= 1 && n <= 1000) {
        r->sticky = STICKY_PARAM;
        r->sticky_param = (unsigned)n;
        return 0;
    }
    if (strncmp(v, "header:", 7) == 0 && v[7] != '\0' && is_token(v + 7)) {
        r->sticky = STICKY_HEADER;
        r->sticky_header = mem_strdup(v + 7);
        return 0;
    }
    report(p, "route %s: sticky=%s: expected param:N (N from 1) or header:NAME", r->name, v);
    return -1;
}

static int parse_action_word(struct parser *p, struct route *r, const char *w)
{
    if (strcmp(w, "readonly") == 0) {
        r->readonly = 1;
        return 0;
    }
    if (strncmp(w, "sample=", 7) == 0) {
        if (parse_percent_bp(w + 7, &r->share_bp) == 0)
            return 0;
        report(p, "route %s: %s: expected a share from 0%% to 100%%, such as sample=25%%", r->name,
               w);
        return -1;
    }
    return parse_sticky(p, r, w + 7); /* the only other optional word: sticky= */
}

/* shadow/canary/fallback: the fixed words, then the optional ones. */
static int parse_two_target_action(struct parser *p, struct route *r, const struct action_form *f,
                                   char **argv, int used)
{
    int first = 1;
    if (used < 1 + f->fixed) {
        report(p, "route %s: expected '%s'", r->name,
               f->mode == ROUTE_SHADOW   ? "shadow PRIMARY CANDIDATE [readonly] [sample=N%]"
               : f->mode == ROUTE_CANARY ? "canary N% NEW REST [sticky=param:N|header:NAME]"
                                         : "fallback PRIMARY BACKUP [readonly]");
        return -1;
    }
    r->mode = f->mode;
    r->share_bp = 10000;
    if (f->mode == ROUTE_CANARY) {
        if (parse_percent_bp(argv[1], &r->share_bp) != 0) {
            report(p, "route %s: canary %s: expected a share from 0%% to 100%%, such as 10%%",
                   r->name, argv[1]);
            return -1;
        }
        first = 2;
    }
    /* CANARY names the new side first; upstream stays the default side. */
    int primary = f->mode == ROUTE_CANARY ? first + 1 : first;
    int second = f->mode == ROUTE_CANARY ? first : first + 1;
    r->upstream_name = mem_strdup(argv[primary]);
    r->second_name = mem_strdup(argv[second]);
    for (int i = 1 + f->fixed; i < used; i++) {
        if (option_given_before(argv + 1 + f->fixed, i - (1 + f->fixed), argv[i])) {
            report(p, "route %s: %.*s is set twice", r->name, (int)strcspn(argv[i], "="), argv[i]);
            return -1;
        }
        if (parse_action_word(p, r, argv[i]) != 0)
            return -1;
    }
    return 0;
}

/*
 * Parses the ACTION after "->" and remembers where it sits in the line, so
 * that a flip can rewrite exactly those bytes: an upstream name, or one of
 * the two-upstream forms above. Returns the number of words it took, or -1
 * after reporting an error.
 */
static int parse_action(struct parser *p, struct route *r, char **argv, int argc)
{
    int used = action_word_count(argv, argc);
    const struct action_form *form = action_form_of(argv[0]);
    /* The upstreams are looked up once the whole file is read, so routes
     * may name upstreams declared further down. */
    if (form == NULL)
        r->upstream_name = mem_strdup(argv[0]);
    else if (parse_two_target_action(p, r, form, argv, used) != 0)
        return -1;
    r->action_start = (size_t)(argv[0] - p->line_start);
    r->action_end = (size_t)(argv[used - 1] - p->line_start) + strlen(argv[used - 1]);
    /* The words, one blank apart (the line's own blanks became NULs when
     * it was split into words). */
    struct buf text = BUF_INIT;
    for (int i = 0; i < used; i++)
        buf_appendf(&text, "%s%s", i > 0 ? " " : "", argv[i]);
    r->action = buf_steal(&text);
    return used;
}

static int do_route(struct parser *p, const struct directive *d, char **argv, int argc)
{
    (void)d;
    int arrow = 0;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "->") == 0) {
            arrow = i;
            break;
        }
    if (!config_valid_name(argv[1])) {
        report(p, "route: invalid name '%s' (up to %d letters, digits, '-', '_' and '.')", argv[1],
               CONFIG_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < p->cfg->nroutes; i++)
        if (strcmp(p->cfg->routes[i].name, argv[1]) == 0) {
            report(p, "route %s is defined twice (first on line %d)", argv[1],
                   p->cfg->routes[i].line);
            return -1;
        }
    if (arrow == 0 || arrow + 1 >= argc) {
        report(p, "route %s: expected 'route NAME MATCH -> UPSTREAM [options]'", argv[1]);
        return -1;
    }
    struct route *r = add_route(p);
    r->name = mem_strdup(argv[1]);
    r->counters = metrics_route_counters(r->name);
    if (parse_match(p, r, argv + 2, arrow - 2) != 0)
        return -1;
    int used = parse_action(p, r, argv + arrow + 1, argc - arrow - 1);
    if (used < 0)
        return -1;
    int rc = 0;
    for (int i = arrow + 1 + used; i < argc; i++) {
        /* map= and redact= say more about themselves (parse_route_option). */
        int own_check = strncmp(argv[i], "map=", 4) == 0 || strncmp(argv[i], "redact=", 7) == 0;
        if (!own_check &&
            option_given_before(argv + arrow + 1 + used, i - (arrow + 1 + used), argv[i])) {
            report(p, "route %s: %.*s is set twice", r->name, (int)strcspn(argv[i], "="), argv[i]);
            rc = -1;
        } else if (parse_route_option(p, r, argv[i]) != 0) {
            rc = -1;
        }
    }
    /* Event shaping only means something on a route that raises events.
     * redact= also covers a shadow's mismatch events, and must survive the
     * rollback of a shadow to a direct route (check_mode warns then). */
    if (rc == 0 && !r->intercept && (r->rule.key || r->rule.on_faults)) {
        report(p, "route %s: key= and on= shape intercepted events: add intercept", r->name);
        rc = -1;
    }
    return rc;
}

#define LIMIT(name, setter, field, min, max)                                                       \
    {                                                                                              \
        name, 1, 1, do_single, 1,                                                                  \
        {                                                                                          \
            name, setter, offsetof(struct config, field), min, max, NULL                           \
        }                                                                                          \
    }

static const struct directive directives[] = {
    {"listen", 1, 1, do_listen, 1, {0}},
    {"admin", 0, -1, do_admin, 1, {0}},
    {"workers",
     1,
     1,
     do_single,
     1,
     {"workers", set_uint, offsetof(struct config, workers), 1, 64, NULL}},
    {"upstream", 2, -1, do_upstream, 0, {0}},
    {"events", 1, -1, do_events, 1, {0}},
    {"spool", 1, -1, do_spool, 1, {0}},
    {"route", 1, -1, do_route, 0, {0}},
    {"log_level",
     1,
     1,
     do_single,
     1,
     {"log_level", set_log_level, offsetof(struct config, log_level), 0, 0, NULL}},
    LIMIT("max_header_size", set_size, limits.max_header_size, 1024, 1 << 20),
    LIMIT("max_headers", set_count, limits.max_headers, 1, HTTP_MAX_HEADERS),
    LIMIT("max_body_size", set_size, limits.max_body_size, 1024, (unsigned long long)1 << 32),
    LIMIT("client_header_timeout", set_duration, limits.client_header_timeout_ms, 1, 3600000),
    LIMIT("client_body_timeout", set_duration, limits.client_body_timeout_ms, 1, 3600000),
    LIMIT("keepalive_timeout", set_duration, limits.keepalive_timeout_ms, 1, 3600000),
    LIMIT("send_timeout", set_duration, limits.send_timeout_ms, 1, 3600000),
    LIMIT("drain_timeout", set_duration, limits.drain_timeout_ms, 0, 3600000),
    LIMIT("max_connections", set_uint, limits.max_connections, 1, 1000000),
    LIMIT("xml_max_depth", set_uint, limits.xml_max_depth, 8, 10000),
    LIMIT("xml_max_elements", set_count, limits.xml_max_elements, 16, 100000000),
    LIMIT("max_multicall_calls", set_uint, limits.max_multicall_calls, 1, 100000),
    LIMIT("max_shadows", set_uint, limits.max_shadows, 0, 100000),
    LIMIT("max_methods", set_count, max_methods, 0, 1000000),
    {"access_log", 1, 3, do_access_log, 1, {0}},
    {"error_log", 1, 1, do_error_log, 1, {0}},
};

#define NDIRECTIVES (sizeof(directives) / sizeof(directives[0]))
_Static_assert(NDIRECTIVES <= sizeof(((struct parser *)0)->seen) / sizeof(int),
               "parser.seen must have a slot per directive");

static void set_defaults(struct config *c)
{
    c->workers = 1;
    c->limits.max_header_size = 16 * 1024;
    c->limits.max_headers = 100;
    c->limits.max_body_size = 16 * 1024 * 1024;
    c->limits.client_header_timeout_ms = 10000;
    c->limits.client_body_timeout_ms = 30000;
    c->limits.keepalive_timeout_ms = 75000;
    c->limits.send_timeout_ms = 30000;
    c->limits.drain_timeout_ms = 30000;
    c->limits.max_connections = 100000;
    c->limits.xml_max_depth = 64;
    c->limits.xml_max_elements = 1000000;
    c->limits.max_multicall_calls = 1000;
    c->limits.max_shadows = 256;
    c->max_methods = 5000;
    c->access_log.buffer_bytes = 64 * 1024;
    c->access_log.flush_ms = 1000;
    /* fsync=batch: a machine crash loses at most the last 100 ms, and
     * clients never wait for the disk. retain=24h: a service that arrives a
     * day late can still replay. max=2GB: a broker outage of hours at
     * thousands of events a second fits. */
    c->spool.segment_bytes = 64 * 1024 * 1024;
    c->spool.fsync = SPOOL_FSYNC_BATCH;
    c->spool.fsync_interval_ms = 100;
    c->spool.max_bytes = SPOOL_MAX_UNSET; /* see finish(): it depends on the events line */
    c->spool.retain_ms = 24ull * 3600 * 1000;
    c->spool.full = SPOOL_FULL_SKIP;
}

/* Splits a line into blank-separated tokens in place. A '#' at the start of
 * a token begins a comment (inside a token it is data: URLs and passwords
 * may contain one). Returns the count, or -1 when there are too many. */
static int tokenize(char *line, char **argv)
{
    int argc = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        if (*s == '\0' || *s == '#')
            return argc;
        if (argc == MAX_TOKENS)
            return -1;
        argv[argc++] = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '\r')
            s++;
        if (*s)
            *s++ = '\0';
    }
}

static void parse_line(struct parser *p, char *line)
{
    char *argv[MAX_TOKENS];
    p->line_start = line;
    int argc = tokenize(line, argv);
    if (argc < 0) {
        report(p, "too many words on one line (at most %d)", MAX_TOKENS);
        return;
    }
    if (argc == 0)
        return;
    for (size_t i = 0; i < NDIRECTIVES; i++) {
        const struct directive *d = &directives[i];
        if (strcmp(d->name, argv[0]) != 0)
            continue;
        int nargs = argc - 1;
        if (nargs < d->min_args || (d->max_args >= 0 && nargs > d->max_args)) {
            report(p, "%s: expected %d%s argument%s, got %d", d->name, d->min_args,
                   d->max_args < 0 ? " or more" : (d->max_args > d->min_args ? "+" : ""),
                   d->min_args == 1 && d->max_args == 1 ? "" : "s", nargs);
            return;
        }
        if (d->once && p->seen[i]) {
            report(p, "%s is set twice (first on line %d)", d->name, p->seen[i]);
            return;
        }
        p->seen[i] = p->line;
        d->handle(p, d, argv, argc);
        return;
    }
    report(p, "unknown directive '%s'", argv[0]);
}

/* What a route's mode asks of its upstreams and options. */
static void check_mode(struct parser *p, const struct route *r)
{
    if (r->mode == ROUTE_DIRECT) {
        /* A warning, not an error: a rollback flips the action and leaves
         * the options on the line, ready for the next ramp. */
        if (r->guard.enabled || r->ignore != NULL || r->tolerance != 0)
            warn(p,
                 "route %s: ignore=, tolerance= and rollback= do nothing until the action is "
                 "a shadow, canary or fallback",
                 r->name);
        if (r->rule.redact != NULL && !r->intercept)
            warn(p, "route %s: redact= does nothing on a route that neither intercepts nor shadows",
                 r->name);
        return;
    }
    if (r->upstream != NULL && r->second != NULL && r->upstream == r->second)
        report(p, "route %s: both sides are upstream %s", r->name, r->upstream->name);
    if (r->mode != ROUTE_SHADOW &&
        (r->ignore != NULL || r->tolerance != 0 || r->guard.on_mismatches))
        report(p,
               "route %s: ignore=, tolerance= and rollback=mismatches only mean something "
               "for a shadow, whose answers are compared",
               r->name);
    if (r->match != ROUTE_MATCH_XMLRPC && r->match != ROUTE_MATCH_ANY)
        report(p,
               "route %s: shadow, canary and fallback work on XML-RPC calls; use an xmlrpc "
               "match",
               r->name);
    if (r->mode == ROUTE_SHADOW && !r->readonly)
        warn(p,
             "route %s: every call is also sent to %s, which must then only pretend to "
             "change anything (X-Strangler-Shadow: 1); add readonly if the method changes "
             "nothing",
             r->name, r->second_name);
    if (r->mode == ROUTE_FALLBACK && !r->readonly)
        warn(p,
             "route %s: without readonly a call %s did not answer is never sent to %s (it "
             "may have been done); add readonly if the method changes nothing",
             r->name, r->upstream_name, r->second_name);
}

/* The counters of the route's calls to each upstream it names. */
static void count_targets(struct route *r)
{
    const struct upstream_def *to[2] = {r->upstream, r->second};
    for (size_t k = 0; k < 2; k++)
        if (to[k] != NULL)
            r->targets[k] = metrics_target_counters(r->name, to[k]->name, to[k]->new_side);
}

/* Second pass: what can only be checked once every line was read. */
static void resolve_routes(struct parser *p)
{
    struct config *c = p->cfg;
    for (size_t i = 0; i < c->nroutes; i++) {
        struct route *r = &c->routes[i];
        p->line = r->line;
        if (r->upstream_name == NULL)
            continue; /* its line was refused already */
        r->upstream = config_find_upstream(c, r->upstream_name);
        if (r->upstream == NULL)
            report(p, "route %s: unknown upstream '%s'", r->name, r->upstream_name);
        if (r->second_name != NULL) {
            r->second = config_find_upstream(c, r->second_name);
            if (r->second == NULL)
                report(p, "route %s: unknown upstream '%s'", r->name, r->second_name);
        }
        check_mode(p, r);
        count_targets(r);
        if (r->upstream != NULL && r->upstream->adapter != NULL && r->match != ROUTE_MATCH_XMLRPC &&
            r->match != ROUTE_MATCH_ANY)
            report(p, "route %s: upstream %s (kind=%s) needs XML-RPC calls; use an xmlrpc match",
                   r->name, r->upstream->name, r->upstream->kind);
        if (r->match == ROUTE_MATCH_XMLRPC)
            c->has_xmlrpc_routes = 1;
        if (r->intercept || (r->upstream != NULL && r->upstream->adapter != NULL) ||
            r->mode != ROUTE_DIRECT)
            c->needs_params = 1;
    }
}

/* A route that an earlier one always takes first is a mistake the file
 * itself shows: say so, with both lines. */
static void warn_shadowed_routes(struct parser *p)
{
    const struct config *c = p->cfg;
    for (size_t j = 1; j < c->nroutes; j++) {
        for (size_t i = 0; i < j; i++) {
            if (!router_route_covers(&c->routes[i], &c->routes[j]))
                continue;
            p->line = c->routes[j].line;
            warn(p, "route %s can never match: route %s (line %d) takes all it would",
                 c->routes[j].name, c->routes[i].name, c->routes[i].line);
            break;
        }
    }
}

/* An upstream nothing routes to is harmless (a new service waiting for its
 * flip), but often a typo in a route: worth a warning. */
static void warn_unused_upstreams(struct parser *p)
{
    const struct config *c = p->cfg;
    for (size_t u = 0; u < c->nupstreams; u++) {
        int used = 0;
        for (size_t i = 0; i < c->nroutes && !used; i++)
            used = c->routes[i].upstream == &c->upstreams[u] ||
                   c->routes[i].second == &c->upstreams[u];
        if (used)
            continue;
        p->line = c->upstreams[u].line;
        warn(p, "upstream %s is not used by any route", c->upstreams[u].name);
    }
}

static void finish(struct parser *p)
{
    struct config *c = p->cfg;
    p->line = 0;
    if (c->listen.text == NULL)
        parse_addr(p, "listen", "127.0.0.1:8080", &c->listen);
    if (c->events.exchange == NULL)
        c->events.exchange = mem_strdup("strangler.events");
    if (c->events.source == NULL) {
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        struct buf src = BUF_INIT;
        buf_appendf(&src, "strangler://%s", host);
        c->events.source = buf_steal(&src);
    }
    if (c->spool_dir == NULL) {
        struct buf path = BUF_INIT;
        buf_appendf(&path, "%s/var/spool", p->base_dir ? p->base_dir : ".");
        c->spool_dir = buf_steal(&path);
    }
    /* max=2GB by default only where a broker confirms: without an events
     * line the spool is the only sink, nothing ever leaves it, and a default
     * cap would turn that sink into one that skips events past 2 GB. */
    if (c->spool.max_bytes == SPOOL_MAX_UNSET)
        c->spool.max_bytes = c->events.url != NULL ? (uint64_t)2 << 30 : 0;
    if (c->log_level == NULL)
        c->log_level = mem_strdup("info");
    c->unrouted = metrics_target_counters("", "", 0);
    c->xr_limits.max_depth = c->limits.xml_max_depth;
    c->xr_limits.max_elements = c->limits.xml_max_elements;
}

static void free_addr(struct config_addr *a)
{
    free(a->text);
}

static void free_config(struct config *c)
{
    for (size_t i = 0; i < c->nupstreams; i++) {
        struct upstream_def *u = &c->upstreams[i];
        free(u->name);
        free(u->url);
        free(u->kind);
        free(u->role);
        free(u->host_header);
        free(u->base_path);
        free_addr(&u->addr);
    }
    free(c->upstreams);
    for (size_t i = 0; i < c->nroutes; i++) {
        struct route *r = &c->routes[i];
        free(r->name);
        free(r->pattern);
        free(r->http_method);
        free(r->upstream_name);
        free(r->second_name);
        free(r->sticky_header);
        free_strings(r->ignore);
        free(r->action);
        for (size_t k = 0; k < r->nconditions; k++) {
            free(r->conditions[k].name);
            free(r->conditions[k].value);
        }
        free(r->conditions);
        free((char *)r->rule.type);
        free((char *)r->rule.key);
        redact_free((struct redact *)r->rule.redact);
        restmap_free((struct restmap *)r->map);
    }
    free(c->routes);
    free_addr(&c->listen);
    free_addr(&c->admin.addr);
    config_admin_tokens_free(&c->admin);
    free(c->events.url);
    free(c->events.exchange);
    free(c->events.source);
    free(c->spool_dir);
    free(c->log_level);
    free(c->error_log);
    free(c->access_log.path);
    free(c->path);
    free(c->text);
    free(c);
}

static struct config *parse_text(const char *name, char *base_dir, const char *text, size_t len,
                                 struct buf *errors)
{
    struct parser p = {0};
    p.file = name;
    p.errors = errors;
    p.base_dir = base_dir;
    p.cfg = mem_calloc(1, sizeof(*p.cfg));
    atomic_init(&p.cfg->refs, 1);
    p.cfg->path = mem_strdup(name);
    p.cfg->text = mem_strndup(text, len);
    p.cfg->text_len = len;
    set_defaults(p.cfg);

    const char *s = text, *end = text + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t line_len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        char *line = mem_strndup(s, line_len);
        p.line++;
        if (memchr(s, '\0', line_len) != NULL)
            report(&p, "NUL byte in the file");
        else
            parse_line(&p, line);
        free(line);
        s += line_len + 1;
    }
    resolve_routes(&p);
    if (p.nerrors == 0) {
        warn_shadowed_routes(&p);
        warn_unused_upstreams(&p);
    }
    finish(&p);
    if (p.nerrors > 0) {
        free_config(p.cfg);
        return NULL;
    }
    return p.cfg;
}

struct config *config_parse(const char *name, const char *text, size_t len, struct buf *errors)
{
    return parse_text(name, NULL, text, len, errors);
}

static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return mem_strdup(".");
    if (slash == path)
        return mem_strdup("/");
    return mem_strndup(path, (size_t)(slash - path));
}

struct config *config_parse_as(const char *path, const char *text, size_t len, struct buf *errors)
{
    char *dir = folder_of(path);
    struct config *c = parse_text(path, dir, text, len, errors);
    free(dir);
    return c;
}

struct config *config_load(const char *path, struct buf *errors)
{
    struct config *c = NULL;
    struct buf text = BUF_INIT;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errors)
            buf_appendf(errors, "%s:0: cannot open: %s\n", path, strerror(errno));
        goto out;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&text, chunk, n);
    if (ferror(f)) {
        if (errors)
            buf_appendf(errors, "%s:0: cannot read: %s\n", path, strerror(errno));
        goto out;
    }
    c = config_parse_as(path, text.data ? text.data : "", text.len, errors);
out:
    if (f)
        fclose(f);
    buf_dispose(&text);
    return c;
}

struct config *config_ref(struct config *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void config_unref(struct config *c)
{
    if (c == NULL)
        return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        free_config(c);
}

char *config_addr_text(const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    struct buf text = BUF_INIT;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        buf_appendf(&text, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        buf_appendf(&text, "%s:%u", host, ntohs(in->sin_port));
    }
    return buf_steal(&text);
}

unsigned config_addr_port(const struct config_addr *a)
{
    if (a->sa.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&a->sa)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&a->sa)->sin_port);
}

const struct upstream_def *config_find_upstream(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nupstreams; i++)
        if (strcmp(c->upstreams[i].name, name) == 0)
            return &c->upstreams[i];
    return NULL;
}

const struct route *config_find_route(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nroutes; i++)
        if (strcmp(c->routes[i].name, name) == 0)
            return &c->routes[i];
    return NULL;
}

void config_describe_match(const struct route *r, struct buf *out)
{
    switch (r->match) {
    case ROUTE_MATCH_XMLRPC:
        buf_appendf(out, "xmlrpc %s", r->pattern);
        break;
    case ROUTE_MATCH_HTTP:
        buf_appendf(out, "http %s %s%s", r->http_method, r->pattern, r->path_prefix ? "*" : "");
        break;
    case ROUTE_MATCH_ANY:
    case ROUTE_MATCH_NONE:
        buf_append_char(out, '*');
        break;
    }
    for (size_t i = 0; i < r->nconditions; i++)
        buf_appendf(out, " header %s=%s", r->conditions[i].name, r->conditions[i].value);
}
