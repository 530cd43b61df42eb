/*
 * promtext.c: GET /metrics in Prometheus text format 0.0.4. The text is
 * read back with a small parser of the format's grammar, so that what is
 * checked is what a scraper would read: every sample well formed and in a
 * family with its HELP and TYPE, counters named _total, histograms
 * cumulative up to +Inf, label values escaped.
 *
 * The metrics registry is the process's: each test names its own routes
 * and upstreams ("tm-...").
 */
#include "unit.h"
#include "proxy/promtext.h"
#include "scratch.h"

#include "common/buf.h"
#include "proxy/config.h"
#include "proxy/metrics.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading the format back ---- */

#define MAX_LABELS 8

struct sample {
    char *name;
    const char *family;
    int nlabels;
    char *key[MAX_LABELS], *value[MAX_LABELS]; /* values unescaped */
    double v;
    int line;
};

struct family {
    char *name;
    char type[16];
    int has_help, has_type;
};

/*
 * What a text says, or why it is not the format. Every string is recorded
 * in `allocs`, so that a fault found deep in the reading can jump out
 * (longjmp) and scrape_free() still frees everything.
 */
struct scrape {
    struct sample *samples;
    size_t nsamples;
    struct family *families;
    size_t nfamilies;
    void **allocs;
    size_t nallocs;
    struct buf key_a, key_b;
    jmp_buf *out;
    char error[512];
};

static void refuse(struct scrape *sc, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void refuse(struct scrape *sc, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(sc->error, sizeof(sc->error), "line %d: ", line);
    va_start(ap, fmt);
    vsnprintf(sc->error + n, sizeof(sc->error) - (size_t)n, fmt, ap);
    va_end(ap);
    longjmp(*sc->out, 1);
}

#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            refuse(sc, line, __VA_ARGS__);                                                         \
    } while (0)

static char *keep(struct scrape *sc, char *p)
{
    sc->allocs = realloc(sc->allocs, (sc->nallocs + 1) * sizeof(*sc->allocs));
    sc->allocs[sc->nallocs++] = p;
    return p;
}

static int is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static int is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

/* A metric name (colons allowed) or a label name at *p; moves past it. */
static char *read_name(struct scrape *sc, const char **p, int line, int colons)
{
    const char *s = *p;
    REQUIRE(is_name_start(*s) && (colons || *s != ':'), "no name at '%s'", s);
    while (is_name_char(*s) && (colons || *s != ':'))
        s++;
    char *name = keep(sc, strndup(*p, (size_t)(s - *p)));
    *p = s;
    return name;
}

static struct family *family_of(const struct scrape *sc, const char *name)
{
    for (size_t i = 0; i < sc->nfamilies; i++)
        if (strcmp(sc->families[i].name, name) == 0)
            return &sc->families[i];
    return NULL;
}

static struct family *add_family(struct scrape *sc, char *name)
{
    struct family *f = family_of(sc, name);
    if (f != NULL)
        return f;
    sc->families = realloc(sc->families, (sc->nfamilies + 1) * sizeof(*sc->families));
    f = &sc->families[sc->nfamilies++];
    memset(f, 0, sizeof(*f));
    f->name = name;
    return f;
}

/* A comment line: # HELP NAME TEXT or # TYPE NAME TYPE (other comments
 * are allowed and ignored). Returns the index of the family a TYPE opens,
 * or -1. */
static long read_comment(struct scrape *sc, const char *l, int line)
{
    int help = strncmp(l, "# HELP ", 7) == 0, type = strncmp(l, "# TYPE ", 7) == 0;
    if (!help && !type)
        return -1;
    const char *p = l + 7;
    struct family *f = add_family(sc, read_name(sc, &p, line, 1));
    REQUIRE(*p == ' ', "'%s': no blank after the name", l);
    p++;
    if (help) {
        REQUIRE(!f->has_help, "a second HELP for %s", f->name);
        REQUIRE(!f->has_type, "HELP for %s after its TYPE", f->name);
        f->has_help = 1;
        REQUIRE(*p != '\0', "HELP without text");
        /* In HELP text a backslash escapes only \ and n. */
        for (; *p; p++)
            if (*p == '\\') {
                REQUIRE(p[1] == '\\' || p[1] == 'n', "bad escape in HELP");
                p++;
            }
        return -1;
    }
    REQUIRE(!f->has_type, "a second TYPE for %s", f->name);
    REQUIRE(strcmp(p, "counter") == 0 || strcmp(p, "gauge") == 0 || strcmp(p, "histogram") == 0 ||
                strcmp(p, "summary") == 0 || strcmp(p, "untyped") == 0,
            "unknown type '%s'", p);
    snprintf(f->type, sizeof(f->type), "%s", p);
    f->has_type = 1;
    return f - sc->families;
}

/* A label value at *p (past its opening quote), unescaped. */
static char *read_label_value(struct scrape *sc, const char **p, int line)
{
    const char *s = *p;
    char *v = keep(sc, malloc(strlen(s) + 1)), *o = v;
    for (;; s++) {
        REQUIRE(*s != '\0', "unterminated label value");
        if (*s == '"')
            break;
        if (*s == '\\') {
            s++;
            REQUIRE(*s == '\\' || *s == '"' || *s == 'n', "bad escape \\%c", *s);
            *o++ = *s == 'n' ? '\n' : *s;
            continue;
        }
        *o++ = *s;
    }
    *o = '\0';
    *p = s + 1;
    return v;
}

static double read_value(struct scrape *sc, const char *p, int line)
{
    if (strcmp(p, "+Inf") == 0)
        return INFINITY;
    if (strcmp(p, "-Inf") == 0)
        return -INFINITY;
    if (strcmp(p, "NaN") == 0)
        return NAN;
    char *end = NULL;
    REQUIRE(*p == '-' || *p == '+' || isdigit((unsigned char)*p), "value '%s'", p);
    double v = strtod(p, &end);
    REQUIRE(end != p && *end == '\0', "value '%s' is not a float", p);
    return v;
}

static void read_sample(struct scrape *sc, const struct family *current, const char *l, int line)
{
    struct sample s = {0};
    const char *p = l;
    s.line = line;
    s.name = read_name(sc, &p, line, 1);
    if (*p == '{') {
        p++;
        while (*p != '}') {
            REQUIRE(s.nlabels < MAX_LABELS, "too many labels");
            char *key = read_name(sc, &p, line, 0);
            for (int i = 0; i < s.nlabels; i++)
                REQUIRE(strcmp(s.key[i], key) != 0, "label %s twice", key);
            REQUIRE(strncmp(key, "__", 2) != 0, "reserved label %s", key);
            REQUIRE(p[0] == '=' && p[1] == '"', "expected =\" after %s", key);
            p += 2;
            s.key[s.nlabels] = key;
            s.value[s.nlabels++] = read_label_value(sc, &p, line);
            if (*p == ',')
                p++;
            else
                REQUIRE(*p == '}', "expected , or } at '%s'", p);
        }
        p++;
    }
    REQUIRE(*p == ' ', "expected a blank before the value in '%s'", l);
    p++;
    /* No timestamps here: one value, then the end of the line. */
    REQUIRE(strchr(p, ' ') == NULL, "more than a value in '%s'", l);
    s.v = read_value(sc, p, line);

    /* The sample belongs to the family whose TYPE came last. */
    REQUIRE(current != NULL, "sample %s before any TYPE", s.name);
    size_t fl = strlen(current->name);
    int ok = strcmp(s.name, current->name) == 0;
    if (!ok && strcmp(current->type, "histogram") == 0 && strncmp(s.name, current->name, fl) == 0)
        ok = strcmp(s.name + fl, "_bucket") == 0 || strcmp(s.name + fl, "_sum") == 0 ||
             strcmp(s.name + fl, "_count") == 0;
    REQUIRE(ok, "sample %s outside its family (%s)", s.name, current->name);
    REQUIRE(current->has_help, "family %s has no HELP", current->name);
    s.family = current->name;
    sc->samples = realloc(sc->samples, (sc->nsamples + 1) * sizeof(*sc->samples));
    sc->samples[sc->nsamples++] = s;
}

/* The label's value in s, or NULL. */
static const char *label(const struct sample *s, const char *key)
{
    for (int i = 0; i < s->nlabels; i++)
        if (strcmp(s->key[i], key) == 0)
            return s->value[i];
    return NULL;
}

/* s's labels (but `le` unless with_le) as one text, to compare series. */
static const char *series_key(const struct sample *s, int with_le, struct buf *out)
{
    out->len = 0;
    for (int i = 0; i < s->nlabels; i++) {
        if (!with_le && strcmp(s->key[i], "le") == 0)
            continue;
        buf_appendf(out, "%s=%s\x1f", s->key[i], s->value[i]);
    }
    return buf_cstr(out);
}

/* Histograms: per series, buckets by increasing le, counts cumulative,
 * the last le +Inf and _count equal to it, and one _sum. */
static void check_histograms(struct scrape *sc)
{
    for (size_t i = 0; i < sc->nsamples; i++) {
        const struct sample *s = &sc->samples[i];
        const struct family *f = family_of(sc, s->family);
        size_t fl = strlen(s->family);
        int line = s->line;
        if (strcmp(f->type, "histogram") != 0) {
            continue;
        } else if (strcmp(s->name + fl, "_count") != 0) {
            REQUIRE(strcmp(s->name, s->family) != 0, "histogram %s without a suffix", s->name);
            continue;
        }
        const char *key = series_key(s, 0, &sc->key_a);
        double prev_le = -INFINITY, prev_v = 0, inf = -1;
        int buckets = 0, sums = 0;
        for (size_t k = 0; k < sc->nsamples; k++) {
            const struct sample *b = &sc->samples[k];
            line = b->line;
            if (strcmp(b->family, s->family) != 0 || strcmp(b->name + fl, "_count") == 0 ||
                strcmp(series_key(b, 0, &sc->key_b), key) != 0)
                continue;
            if (strcmp(b->name + fl, "_sum") == 0) {
                sums++;
                REQUIRE(b->v >= 0, "negative sum");
                continue;
            }
            const char *le = label(b, "le");
            REQUIRE(le != NULL, "a bucket without le");
            double lev = read_value(sc, le, b->line);
            REQUIRE(lev > prev_le, "le=%s after %g", le, prev_le);
            REQUIRE(b->v >= prev_v, "bucket count %g below the previous %g", b->v, prev_v);
            REQUIRE(inf < 0, "a bucket after +Inf");
            if (isinf(lev))
                inf = b->v;
            prev_le = lev;
            prev_v = b->v;
            buckets++;
        }
        line = s->line;
        REQUIRE(buckets >= 2, "%s has %d buckets", s->name, buckets);
        REQUIRE(inf >= 0, "no +Inf bucket");
        REQUIRE(inf == s->v, "_count %g, +Inf bucket %g", s->v, inf);
        REQUIRE(sums == 1, "%d sums", sums);
    }
}

/* Reads and checks the whole text: 0, or -1 with the fault in sc->error.
 * Free sc with scrape_free() either way. */
static int scrape_check(const char *text, struct scrape *sc)
{
    jmp_buf out;
    memset(sc, 0, sizeof(*sc));
    sc->out = &out;
    if (setjmp(out) != 0)
        return -1;
    size_t len = strlen(text);
    int line = 0;
    REQUIRE(len > 0 && text[len - 1] == '\n', "the text does not end with a newline");
    char *copy = keep(sc, strdup(text));
    long current = -1;
    for (char *l = copy, *nl; *l != '\0'; l = nl + 1) {
        nl = strchr(l, '\n');
        *nl = '\0';
        line++;
        REQUIRE(strchr(l, '\r') == NULL, "carriage return");
        if (*l == '\0')
            continue;
        if (*l == '#') {
            long f = read_comment(sc, l, line);
            if (f >= 0)
                current = f;
            continue;
        }
        read_sample(sc, current >= 0 ? &sc->families[current] : NULL, l, line);
    }

    /* Every family has HELP and TYPE; every counter is named _total. */
    line = 0;
    for (size_t i = 0; i < sc->nfamilies; i++) {
        const struct family *f = &sc->families[i];
        REQUIRE(f->has_type && f->has_help, "family %s lacks HELP or TYPE", f->name);
        size_t n = strlen(f->name);
        REQUIRE(strcmp(f->type, "counter") != 0 ||
                    (n > 6 && strcmp(f->name + n - 6, "_total") == 0),
                "counter %s does not end in _total", f->name);
    }
    /* No series twice. */
    for (size_t i = 0; i < sc->nsamples; i++) {
        const char *a = series_key(&sc->samples[i], 1, &sc->key_a);
        for (size_t k = i + 1; k < sc->nsamples; k++) {
            line = sc->samples[k].line;
            REQUIRE(strcmp(sc->samples[i].name, sc->samples[k].name) != 0 ||
                        strcmp(a, series_key(&sc->samples[k], 1, &sc->key_b)) != 0,
                    "the same series as line %d", sc->samples[i].line);
        }
    }
    check_histograms(sc);
    return 0;
}

static void scrape_free(struct scrape *sc)
{
    for (size_t i = 0; i < sc->nallocs; i++)
        free(sc->allocs[i]);
    free(sc->allocs);
    free(sc->samples);
    free(sc->families);
    buf_dispose(&sc->key_a);
    buf_dispose(&sc->key_b);
    memset(sc, 0, sizeof(*sc));
}

/* Reads text that must be the format. */
static void scrape_parse(const char *text, struct scrape *sc)
{
    if (scrape_check(text, sc) != 0) {
        char why[sizeof(sc->error)];
        snprintf(why, sizeof(why), "%s", sc->error);
        scrape_free(sc);
        /* Check carries messages of a few KB at most. */
        ck_abort_msg("not the exposition format: %s (in %zu bytes starting \"%.300s\")", why,
                     strlen(text), text);
    }
}

/*
 * The sample `name` whose labels are exactly the NULL-terminated key,
 * value pairs given, or NULL.
 */
static const struct sample *vfind(const struct scrape *sc, const char *name, va_list ap)
{
    const char *keys[MAX_LABELS], *values[MAX_LABELS];
    int n = 0;
    for (const char *k; (k = va_arg(ap, const char *)) != NULL && n < MAX_LABELS; n++) {
        keys[n] = k;
        values[n] = va_arg(ap, const char *);
    }
    for (size_t i = 0; i < sc->nsamples; i++) {
        const struct sample *s = &sc->samples[i];
        if (strcmp(s->name, name) != 0 || s->nlabels != n)
            continue;
        int match = 1;
        for (int k = 0; k < n && match; k++) {
            const char *v = label(s, keys[k]);
            match = v != NULL && strcmp(v, values[k]) == 0;
        }
        if (match)
            return s;
    }
    return NULL;
}

static const struct sample *find(const struct scrape *sc, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const struct sample *s = vfind(sc, name, ap);
    va_end(ap);
    return s;
}

/* The value of a sample that must be there (labels as for find()). */
static double value(const struct scrape *sc, const char *what, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    const struct sample *s = vfind(sc, name, ap);
    va_end(ap);
    ck_assert_msg(s != NULL, "no sample %s", what);
    return s->v;
}

#define VALUE(sc, ...) value(sc, #__VA_ARGS__, __VA_ARGS__, NULL)

/* The number of samples of a family name (a sample name, exactly). */
static size_t count_named(const struct scrape *sc, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < sc->nsamples; i++)
        n += strcmp(sc->samples[i].name, name) == 0;
    return n;
}

/* ---- the tests ---- */

static struct config *parse(const char *text)
{
    struct buf errors = BUF_INIT;
    struct config *c = config_parse("routes.conf", text, strlen(text), &errors);
    ck_assert_msg(c != NULL, "%s", buf_cstr(&errors));
    buf_dispose(&errors);
    return c;
}

static char *write_text(const struct config *c, struct spool *spool)
{
    struct promtext_sources src = {.cfg = c, .spool = spool, .workers = 2};
    struct buf out = BUF_INIT;
    promtext_write(&out, &src);
    buf_cstr(&out);
    return buf_steal(&out);
}

static const char routes_conf[] = "upstream tm-legacy http://127.0.0.1:1/RPC2\n"
                                  "upstream tm-svc http://127.0.0.1:2/rpc kind=json\n"
                                  "route tm-read xmlrpc stock.get -> tm-svc\n"
                                  "route tm-canary xmlrpc stock.* -> canary 10% tm-svc tm-legacy\n"
                                  "route tm-rest * -> tm-legacy\n";

START_TEST(the_text_is_valid_exposition_format)
{
    struct config *c = parse(routes_conf);
    ck_assert_uint_eq(c->nroutes, 3);
    const struct route *read = &c->routes[0], *canary = &c->routes[1], *rest = &c->routes[2];
    /* A canary's [0] is its REST side, [1] its NEW one. */
    ck_assert_ptr_nonnull(canary->targets[1]);
    ck_assert_str_eq(canary->targets[0]->upstream, "tm-legacy");
    ck_assert_str_eq(canary->targets[1]->upstream, "tm-svc");
    ck_assert_ptr_null(read->targets[1]);

    uint64_t new0, all0;
    metrics_answered_calls(&new0, &all0);
    for (int i = 0; i < 3; i++)
        metrics_observe(read->targets[0], METRICS_OUTCOME_OK, 1000);        /* le 0.001 */
    metrics_observe(read->targets[0], METRICS_OUTCOME_FAULT, 3000);         /* le 0.005 */
    metrics_observe(canary->targets[0], METRICS_OUTCOME_OK, 20000);         /* le 0.025 */
    metrics_observe(canary->targets[0], METRICS_OUTCOME_OK, 20000);         /* le 0.025 */
    metrics_observe(canary->targets[0], METRICS_OUTCOME_TIMEOUT, 20000000); /* +Inf */
    metrics_observe(canary->targets[1], METRICS_OUTCOME_OK, 500);           /* le 0.0005 */
    metrics_observe(rest->targets[0], METRICS_OUTCOME_SERVER_ERROR, 2000);
    metrics_observe(c->unrouted, METRICS_OUTCOME_NO_ROUTE, 10);
    metrics_bump(&read->counters->requests);
    metrics_bump(&canary->counters->canary_new);
    metrics_count_upstream_error(metrics_upstream_counters("tm-legacy"), METRICS_UPSTREAM_TIMEOUT);
    metrics_count_adapter_fault(metrics_upstream_counters("tm-svc"), -32601);

    char *text = write_text(c, NULL);
    struct scrape sc;
    scrape_parse(text, &sc);

    /* strangler_requests_total: route, target, side, outcome. */
    ck_assert(VALUE(&sc, "strangler_requests_total", "route", "tm-read", "target", "tm-svc", "side",
                    "new", "outcome", "ok") == 3);
    ck_assert(VALUE(&sc, "strangler_requests_total", "route", "tm-read", "target", "tm-svc", "side",
                    "new", "outcome", "fault") == 1);
    ck_assert(VALUE(&sc, "strangler_requests_total", "route", "tm-canary", "target", "tm-legacy",
                    "side", "legacy", "outcome", "ok") == 2);
    ck_assert(VALUE(&sc, "strangler_requests_total", "route", "tm-canary", "target", "tm-legacy",
                    "side", "legacy", "outcome", "timeout") == 1);
    ck_assert(VALUE(&sc, "strangler_requests_total", "route", "tm-canary", "target", "tm-svc",
                    "side", "new", "outcome", "ok") == 1);
    ck_assert(VALUE(&sc, "strangler_requests_total", "route", "tm-rest", "target", "tm-legacy",
                    "side", "legacy", "outcome", "server_error") == 1);
    /* An outcome never seen is no series; ok always is one. */
    ck_assert_ptr_null(find(&sc, "strangler_requests_total", "route", "tm-canary", "target",
                            "tm-svc", "side", "new", "outcome", "fault", NULL));
    ck_assert(VALUE(&sc, "strangler_requests_total", "route", "tm-rest", "target", "tm-legacy",
                    "side", "legacy", "outcome", "ok") == 0);
    /* Every series of the family has the four labels, side new or legacy
     * (or empty for the calls no route took). */
    for (size_t i = 0; i < sc.nsamples; i++) {
        const struct sample *s = &sc.samples[i];
        if (strcmp(s->name, "strangler_requests_total") != 0)
            continue;
        ck_assert_int_eq(s->nlabels, 4);
        const char *side = label(s, "side");
        ck_assert_ptr_nonnull(label(s, "route"));
        ck_assert_ptr_nonnull(label(s, "target"));
        ck_assert_ptr_nonnull(label(s, "outcome"));
        ck_assert_ptr_nonnull(side);
        ck_assert_msg(strcmp(side, "new") == 0 || strcmp(side, "legacy") == 0 ||
                          (strcmp(side, "") == 0 && strcmp(label(s, "target"), "") == 0),
                      "line %d: side '%s'", s->line, side);
    }

    /* The histogram of tm-read: 3 at 1 ms, 1 at 3 ms. */
    ck_assert(VALUE(&sc, "strangler_request_duration_seconds_bucket", "route", "tm-read", "target",
                    "tm-svc", "le", "0.0005") == 0);
    ck_assert(VALUE(&sc, "strangler_request_duration_seconds_bucket", "route", "tm-read", "target",
                    "tm-svc", "le", "0.001") == 3);
    ck_assert(VALUE(&sc, "strangler_request_duration_seconds_bucket", "route", "tm-read", "target",
                    "tm-svc", "le", "0.0025") == 3);
    ck_assert(VALUE(&sc, "strangler_request_duration_seconds_bucket", "route", "tm-read", "target",
                    "tm-svc", "le", "0.005") == 4);
    ck_assert(VALUE(&sc, "strangler_request_duration_seconds_bucket", "route", "tm-read", "target",
                    "tm-svc", "le", "+Inf") == 4);
    ck_assert(VALUE(&sc, "strangler_request_duration_seconds_count", "route", "tm-read", "target",
                    "tm-svc") == 4);
    ck_assert(fabs(VALUE(&sc, "strangler_request_duration_seconds_sum", "route", "tm-read",
                         "target", "tm-svc") -
                   0.006) < 1e-9);
    /* The slow one is only in +Inf. */
    ck_assert(VALUE(&sc, "strangler_request_duration_seconds_bucket", "route", "tm-canary",
                    "target", "tm-legacy", "le", "10") == 2);
    ck_assert(VALUE(&sc, "strangler_request_duration_seconds_bucket", "route", "tm-canary",
                    "target", "tm-legacy", "le", "+Inf") == 3);
    ck_assert(fabs(VALUE(&sc, "strangler_request_duration_seconds_sum", "route", "tm-canary",
                         "target", "tm-legacy") -
                   20.04) < 1e-9);

    /* Errors and faults. */
    ck_assert(VALUE(&sc, "strangler_upstream_errors_total", "upstream", "tm-legacy", "error",
                    "timeout") == 1);
    ck_assert(
        VALUE(&sc, "strangler_adapter_faults_total", "upstream", "tm-svc", "code", "-32601") == 1);

    /* Routes in force, one sample each; dark-launch families only for the
     * routes that dark-launch. */
    const char *names[] = {"tm-read", "tm-canary", "tm-rest"};
    for (size_t i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(find(&sc, "strangler_route_requests_total", "route", names[i], NULL));
    ck_assert(VALUE(&sc, "strangler_route_requests_total", "route", "tm-read") ==
              (double)metrics_read(&read->counters->requests));
    ck_assert_uint_eq(count_named(&sc, "strangler_route_requests_total"), 3);
    ck_assert(VALUE(&sc, "strangler_canary_calls_total", "route", "tm-canary", "side", "new") ==
              (double)metrics_read(&canary->counters->canary_new));
    ck_assert_ptr_nonnull(
        find(&sc, "strangler_canary_calls_total", "route", "tm-canary", "side", "rest", NULL));
    ck_assert_ptr_null(
        find(&sc, "strangler_canary_calls_total", "route", "tm-read", "side", "new", NULL));

    /* The process. */
    ck_assert(VALUE(&sc, "strangler_routes") == 3);
    ck_assert(VALUE(&sc, "strangler_workers") == 2);
    ck_assert_uint_eq(count_named(&sc, "strangler_build_info"), 1);
    for (size_t i = 0; i < sc.nsamples; i++)
        if (strcmp(sc.samples[i].name, "strangler_build_info") == 0) {
            ck_assert(sc.samples[i].v == 1);
            ck_assert_int_eq(sc.samples[i].nlabels, 1);
            ck_assert_str_ne(label(&sc.samples[i], "version"), "");
        }
    ck_assert_ptr_nonnull(find(&sc, "strangler_config_reloads_total", "result", "success", NULL));
    ck_assert_ptr_nonnull(find(&sc, "strangler_config_reloads_total", "result", "failure", NULL));
    /* No spool: no event figures. */
    ck_assert_uint_eq(count_named(&sc, "strangler_spool_bytes"), 0);
    ck_assert_uint_eq(count_named(&sc, "strangler_events_spooled_total"), 0);

    /* The share: 3 + 1 + 1 new, 2 + 1 legacy (timeouts and unrouted calls
     * were not answered). */
    double share = VALUE(&sc, "strangler_new_service_share");
    double want = (double)(new0 + 5) / (double)(all0 + 8);
    ck_assert_msg(fabs(share - want) < 1e-6, "share %f, expected %f", share, want);
    scrape_free(&sc);
    free(text);
    config_unref(c);
}
END_TEST

START_TEST(the_share_follows_the_answered_calls)
{
    struct config *c = parse("upstream tm-sh-old http://127.0.0.1:1/RPC2\n"
                             "upstream tm-sh-new http://127.0.0.1:2/rpc kind=json\n"
                             "route tm-sh-a xmlrpc a.* -> tm-sh-new\n"
                             "route tm-sh-b * -> tm-sh-old\n");
    struct target_counters *n = c->routes[0].targets[0], *l = c->routes[1].targets[0];
    ck_assert_int_eq(n->new_side, 1);
    ck_assert_int_eq(l->new_side, 0);
    uint64_t new0, all0;
    metrics_answered_calls(&new0, &all0);
    const struct {
        int new_calls, legacy_calls;
    } steps[] = {{0, 1}, {1, 0}, {2, 0}, {0, 6}, {30, 0}};
    uint64_t news = 0, all = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        for (int k = 0; k < steps[i].new_calls; k++)
            metrics_observe(n, k % 2 ? METRICS_OUTCOME_OK : METRICS_OUTCOME_CLIENT_ERROR, 100);
        for (int k = 0; k < steps[i].legacy_calls; k++)
            metrics_observe(l, k % 2 ? METRICS_OUTCOME_FAULT : METRICS_OUTCOME_OK, 100);
        /* Unanswered calls change nothing. */
        metrics_observe(n, METRICS_OUTCOME_TIMEOUT, 100);
        metrics_observe(l, METRICS_OUTCOME_UPSTREAM_ERROR, 100);
        news += (uint64_t)steps[i].new_calls;
        all += (uint64_t)(steps[i].new_calls + steps[i].legacy_calls);
        char *text = write_text(c, NULL);
        struct scrape sc;
        scrape_parse(text, &sc);
        double share = VALUE(&sc, "strangler_new_service_share");
        double want = (double)(new0 + news) / (double)(all0 + all);
        ck_assert_msg(fabs(share - want) < 1e-6, "step %zu: share %f, expected %f", i, share, want);
        ck_assert(share >= 0 && share <= 1);
        scrape_free(&sc);
        free(text);
    }
    config_unref(c);
}
END_TEST

static void make_root(void)
{
    scratch_root_make("promtext");
}

START_TEST(event_figures_are_valid_too_with_a_spool)
{
    char dir[PATH_MAX], why[256];
    scratch_dir("spool", dir, sizeof(dir));
    struct spool_options opt = {.max_bytes = 1 << 20, .fsync = SPOOL_FSYNC_OFF};
    struct spool *spool = spool_open(dir, &opt, why, sizeof(why));
    ck_assert_msg(spool != NULL, "%s", why);
    struct spool_event ev = {.time_us = 1795255200000000ll,
                             .id = "e1",
                             .type = "t",
                             .key = "t",
                             .body = "{}",
                             .body_len = 2};
    ck_assert_int_eq(spool_append(spool, &ev), 0);
    ck_assert_int_eq(spool_append(spool, &ev), 0);

    struct config *c = parse("upstream tm-ev-l http://127.0.0.1:1/RPC2\n"
                             "route tm-ev * -> tm-ev-l\n");
    char *text = write_text(c, spool);
    struct scrape sc;
    scrape_parse(text, &sc);
    ck_assert(VALUE(&sc, "strangler_events_spooled_total") == 2);
    ck_assert(VALUE(&sc, "strangler_spool_unconfirmed_events") == 2);
    ck_assert(VALUE(&sc, "strangler_events_failed_total", "reason", "nacked") == 0);
    ck_assert(VALUE(&sc, "strangler_spool_full") == 0);
    ck_assert(VALUE(&sc, "strangler_broker_connected") == 0);
    scrape_free(&sc);
    free(text);
    config_unref(c);
    spool_close(spool);
}
END_TEST

/* The parser above is what the other tests trust: it must refuse what is
 * not the format. Each text runs in a forked test and must fail it. */
static const char *const not_the_format[] = {
    "x 1\n",                                                            /* no TYPE */
    "# TYPE x counter\nx_total 1\n",                                    /* outside its family */
    "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"1\"} one\n", /* not a float */
    "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"\\t\"} 1\n", /* bad escape */
    "# HELP x h\n# TYPE x counter\nx 1\n",                          /* a counter without _total */
    "# HELP x_total h\n# TYPE x_total counter\nx_total{a=\"1} 1\n", /* unterminated */
    "# HELP x_total h\n# TYPE x_total counter\nx_total 1\nx_total 2\n", /* same series */
    "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
    "h_sum 1\nh_count 1\n", /* not cumulative */
    "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
    "h_sum 1\nh_count 3\n",            /* count is not +Inf */
    "# HELP g h\n# TYPE g gauge\ng 1", /* no final newline */
    "# TYPE g gauge\ng 1\n",           /* no HELP */
};

START_TEST(the_checker_refuses_what_is_not_the_format)
{
    for (size_t i = 0; i < sizeof(not_the_format) / sizeof(not_the_format[0]); i++) {
        struct scrape sc;
        ck_assert_msg(scrape_check(not_the_format[i], &sc) == -1, "accepted %s", not_the_format[i]);
        ck_assert_str_ne(sc.error, "");
        scrape_free(&sc);
    }
}
END_TEST

START_TEST(the_checker_takes_what_is)
{
    struct scrape sc;
    scrape_parse("# HELP h A \\\\ help\\n text.\n# TYPE h histogram\n"
                 "h_bucket{a=\"x\\\"y\",le=\"0.5\"} 1\nh_bucket{a=\"x\\\"y\",le=\"+Inf\"} 2\n"
                 "h_sum{a=\"x\\\"y\"} 1.5\nh_count{a=\"x\\\"y\"} 2\n"
                 "# HELP g h\n# TYPE g gauge\ng -1.5e-3\n",
                 &sc);
    ck_assert_uint_eq(sc.nsamples, 5);
    ck_assert_str_eq(label(&sc.samples[0], "a"), "x\"y");
    ck_assert(sc.samples[4].v == -1.5e-3);
    scrape_free(&sc);
}
END_TEST

Suite *promtext_suite(void)
{
    Suite *s = suite_create("promtext");
    TCase *tc = tcase_create("promtext");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_unchecked_fixture(tc, make_root, scratch_root_remove);
    tcase_add_test(tc, the_text_is_valid_exposition_format);
    tcase_add_test(tc, the_share_follows_the_answered_calls);
    tcase_add_test(tc, event_figures_are_valid_too_with_a_spool);
    tcase_add_test(tc, the_checker_takes_what_is);
    tcase_add_test(tc, the_checker_refuses_what_is_not_the_format);
    suite_add_tcase(s, tc);
    return s;
}
