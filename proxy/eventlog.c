/*
 * eventlog: the spool's retained events as a history (see eventlog.h).
 */
#include "proxy/eventlog.h"

#include "common/clock.h"
#include "common/jsonw.h"
#include "common/mem.h"
#include "proxy/config.h"
#include "proxy/router.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Output is written in chunks of about this much. */
#define TAIL_FLUSH_BYTES (64u << 10)

/* ---- --since ---- */

/* Reads exactly n digits at *p into *out, advancing *p. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)", RFC 3339 section 5.6
 * ('t', 'z' and a blank for 'T' accepted as the RFC allows). */
static int parse_rfc3339(const char *s, int64_t *us)
{
    struct tm tm = {0};
    int year, mon, day, hour, min, sec, off_h = 0, off_m = 0, sign = 0;
    int64_t frac_us = 0, scale = 100000;
    if (read_digits(&s, 4, &year) || expect(&s, '-') || read_digits(&s, 2, &mon) ||
        expect(&s, '-') || read_digits(&s, 2, &day))
        return -1;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return -1;
    s++;
    if (read_digits(&s, 2, &hour) || expect(&s, ':') || read_digits(&s, 2, &min) ||
        expect(&s, ':') || read_digits(&s, 2, &sec))
        return -1;
    if (*s == '.') {
        if (!isdigit((unsigned char)*++s))
            return -1;
        for (; isdigit((unsigned char)*s); s++, scale /= 10)
            frac_us += (*s - '0') * scale;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '+' ? 1 : -1;
        if (read_digits(&s, 2, &off_h) || expect(&s, ':') || read_digits(&s, 2, &off_m))
            return -1;
    } else {
        return -1;
    }
    if (*s != '\0' || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 ||
        sec > 60 || off_h > 23 || off_m > 59)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    t -= (time_t)sign * (off_h * 3600 + off_m * 60);
    *us = (int64_t)t * 1000000 + frac_us;
    return 0;
}

int eventlog_parse_since(const char *text, int64_t now_us, int64_t *since_us, char *why,
                         size_t whylen)
{
    unsigned long long ago_ms;
    if (parse_rfc3339(text, since_us) == 0)
        return 0;
    if (config_parse_duration_ms(text, &ago_ms) == 0 &&
        ago_ms <= (unsigned long long)now_us / 1000) {
        *since_us = now_us - (int64_t)ago_ms * 1000;
        return 0;
    }
    snprintf(why, whylen,
             "'%s' is neither an RFC 3339 time (2026-11-21T10:00:00Z) nor a span back from now "
             "(90s, 15m, 24h, 7d)",
             text);
    return -1;
}

/* ---- selecting and printing ---- */

int eventlog_match(const struct eventlog_filter *f, const struct spool_event *ev)
{
    if (f->since_us != 0 && ev->time_us < f->since_us)
        return 0;
    if (f->type_glob != NULL &&
        !router_glob_match(f->type_glob, strlen(f->type_glob), ev->type, strlen(ev->type)))
        return 0;
    return 1;
}

void eventlog_write_line(struct buf *out, const struct spool_event *ev, int confirmed)
{
    buf_append_str(out, "{\"seq\":");
    buf_append_u64(out, ev->seq);
    buf_append_str(out, ",\"key\":");
    jsonw_cstring(out, ev->key);
    buf_append_str(out, confirmed ? ",\"confirmed\":true" : ",\"confirmed\":false");
    /* The body is the CloudEvent the proxy wrote, and its CRC held: JSON. */
    buf_append_str(out, ",\"event\":");
    buf_append(out, ev->body, ev->body_len);
    buf_append_str(out, "}\n");
}

/* ---- replay ---- */

/* The copy of ev to append: the cursor's pointers last until its next call,
 * and the append may move the data they point into. */
struct replay_copy {
    struct buf id, type, key, body;
};

static struct spool_event copy_event(struct replay_copy *c, const struct spool_event *ev)
{
    buf_reset(&c->id);
    buf_reset(&c->type);
    buf_reset(&c->key);
    buf_reset(&c->body);
    buf_append_str(&c->id, ev->id);
    buf_append_str(&c->type, ev->type);
    buf_append_str(&c->key, ev->key);
    buf_append(&c->body, ev->body, ev->body_len);
    return (struct spool_event){
        .time_us = ev->time_us,
        .id = buf_cstr(&c->id),
        .type = buf_cstr(&c->type),
        .key = buf_cstr(&c->key),
        .body = buf_cstr(&c->body),
        .body_len = c->body.len,
    };
}

/* Why the replay must stop before appending ev, or NULL to go on. */
static const char *replay_stop_reason(struct spool *s, const atomic_int *stop)
{
    uint64_t max = spool_max_bytes(s);
    if (stop != NULL && atomic_load(stop))
        return "the proxy is stopping";
    if (max > 0 && spool_unconfirmed_bytes(s) >= max / 2)
        return "unconfirmed events fill half the spool's cap (the rest is kept for live "
               "traffic): the broker has to confirm what is queued first";
    return NULL;
}

int eventlog_replay(struct spool *s, const struct eventlog_filter *f, const atomic_int *stop,
                    struct eventlog_replay_result *res)
{
    uint64_t end = spool_last_seq(s);
    struct replay_copy copy = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT};
    struct spool_event ev;
    const char *reason;
    int rc = -1, got;

    memset(res, 0, sizeof(*res));
    spool_pin(s, 1); /* before the cursor finds the first segment: nothing goes meanwhile */
    struct spool_cursor *c = spool_cursor_new(s, 0);
    while ((got = spool_cursor_next(c, &ev)) == 1 && ev.seq <= end) {
        spool_pin(s, ev.seq);
        if (!eventlog_match(f, &ev))
            continue;
        if ((reason = replay_stop_reason(s, stop)) != NULL) {
            res->resume_us = ev.time_us;
            snprintf(res->why, sizeof(res->why), "%s", reason);
            rc = 1;
            goto out;
        }
        struct spool_event dup = copy_event(&copy, &ev);
        int appended = spool_append(s, &dup);
        if (appended == SPOOL_APPEND_FULL) {
            res->resume_us = ev.time_us;
            snprintf(res->why, sizeof(res->why), "the spool is at its cap");
            rc = 1;
            goto out;
        }
        if (appended != 0) {
            snprintf(res->why, sizeof(res->why), "the spool could not be written (see the log)");
            goto out;
        }
        res->replayed++;
    }
    if (got < 0) {
        snprintf(res->why, sizeof(res->why), "the spool could not be read (see the log)");
        goto out;
    }
    rc = 0;
out:
    spool_cursor_free(c);
    spool_pin(s, 0);
    buf_dispose(&copy.id);
    buf_dispose(&copy.type);
    buf_dispose(&copy.key);
    buf_dispose(&copy.body);
    return rc;
}

/* ---- strangler events tail ---- */

struct tail_options {
    const char *since;
    const char *type;
    const char *spool; /* --spool DIR: no config needed */
};

const char eventlog_tail_usage_line[] =
    "       strangler [-c FILE] events tail [--since TIME|SPAN] [--type GLOB] [--spool DIR]\n";

static const char tail_usage[] =
    "usage: strangler [-c FILE] events tail [--since TIME|SPAN] [--type GLOB] [--spool DIR]\n"
    "  prints the spool's retained events, oldest first, one JSON line each:\n"
    "  {\"seq\":N,\"key\":K,\"confirmed\":BOOL,\"event\":{...}}\n";

static int tail_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "strangler: events tail: %s%s\n%s", what, arg ? arg : "", tail_usage);
    return 2;
}

/* Returns 0 to go on, 1 after --help, 2 after a usage message. */
static int parse_tail_options(int argc, char **argv, struct tail_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = strcmp(a, "--since") == 0   ? &o->since
                            : strcmp(a, "--type") == 0  ? &o->type
                            : strcmp(a, "--spool") == 0 ? &o->spool
                                                        : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(tail_usage, stdout);
            return 1;
        }
        if (slot == NULL)
            return tail_usage_error("unknown argument ", a);
        if (i + 1 >= argc)
            return tail_usage_error(a, " needs a value");
        *slot = argv[++i];
    }
    return 0;
}

/* The spool directory: --spool, else the config's spool line. */
static char *tail_spool_dir(const char *config_path, const struct tail_options *o)
{
    if (o->spool != NULL)
        return mem_strdup(o->spool);
    struct buf messages = BUF_INIT;
    struct config *cfg = config_load(config_path, &messages);
    char *dir = cfg != NULL ? mem_strdup(cfg->spool_dir) : NULL;
    if (cfg == NULL)
        fputs(buf_cstr(&messages), stderr);
    buf_dispose(&messages);
    config_unref(cfg);
    return dir;
}

static int tail_print(struct spool *s, const struct eventlog_filter *f)
{
    struct spool_cursor *c = spool_cursor_new(s, 0);
    struct buf out = BUF_INIT;
    struct spool_event ev;
    uint64_t confirmed = spool_confirmed_seq(s);
    int got;
    while ((got = spool_cursor_next(c, &ev)) == 1) {
        if (!eventlog_match(f, &ev))
            continue;
        eventlog_write_line(&out, &ev, ev.seq <= confirmed);
        if (out.len >= TAIL_FLUSH_BYTES) {
            fwrite(out.data, 1, out.len, stdout);
            buf_reset(&out);
        }
    }
    if (out.len > 0)
        fwrite(out.data, 1, out.len, stdout);
    buf_dispose(&out);
    spool_cursor_free(c);
    return got < 0 ? -1 : 0;
}

int eventlog_tail_main(const char *config_path, int argc, char **argv)
{
    struct tail_options o = {0};
    struct eventlog_filter f = {0};
    char why[256];
    char *dir = NULL;
    struct spool *s = NULL;
    int rc = parse_tail_options(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc = 2;
    if (o.since != NULL &&
        eventlog_parse_since(o.since, clock_realtime_us(), &f.since_us, why, sizeof(why)) != 0) {
        tail_usage_error("--since: ", why);
        goto out;
    }
    f.type_glob = o.type;
    dir = tail_spool_dir(config_path, &o);
    if (dir == NULL)
        goto out;
    rc = 1;
    s = spool_open_readonly(dir, why, sizeof(why));
    if (s == NULL) {
        fprintf(stderr, "strangler: events tail: %s\n", why);
        goto out;
    }
    if (tail_print(s, &f) != 0) {
        fprintf(stderr, "strangler: events tail: %s: a segment could not be read\n", dir);
        goto out;
    }
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    spool_close(s);
    free(dir);
    return rc;
}
