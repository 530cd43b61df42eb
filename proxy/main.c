/*
 * strangler: the command line and the process around the workers.
 *
 * The main thread owns what exists once per process: the configuration in
 * force (through control.h), the spool, the interceptor and the publisher
 * thread. It starts the workers, then runs a small event loop of its own for
 * signals and the admin API: SIGHUP and POST /reload re-read routes.conf (a
 * bad file is reported and the running table stays), PUT /routes/NAME flips
 * a route, SIGTERM and SIGINT drain the workers and exit 0.
 *
 * `strangler routes`, `strangler flip` and `strangler reload` are the admin
 * API's command-line client (adminctl.h); they run instead of the proxy.
 */
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "interceptors/intercept.h"
#include "interceptors/publisher.h"
#include "interceptors/spool.h"
#include "legacy-adapters/xmlrpc.h"
#include "proxy/accesslog.h"
#include "proxy/admin.h"
#include "proxy/adminctl.h"
#include "proxy/config.h"
#include "proxy/control.h"
#include "proxy/eventlog.h"
#include "proxy/guard.h"
#include "proxy/inventory.h"
#include "proxy/metrics.h"
#include "proxy/worker.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PUBLISHER_DRAIN_MS 5000
/* How long a flip waits for every worker to serve from the new table. */
#define INSTALL_WAIT_MS 2000

/* Everything the process owns once. Main thread only. */
struct process {
    const char *config_path;
    struct config *cfg; /* in force: owned until control exists, then control's */
    struct control *control;
    struct admin *admin;
    struct event_base *base;
    struct worker *workers;
    unsigned nworkers;
    struct spool *spool;
    struct interceptor *interceptor;
    struct publisher *publisher;
    struct event *housekeeping;   /* once a second: spool retention */
    struct inventory *inventory;  /* the methods seen (NULL: max_methods 0) */
    struct accesslog *access_log; /* NULL: off */
    char *error_log; /* the path opened at start (a reload does not move it), or NULL */
};

/* After the first usage line and the admin commands' (adminctl_usage). */
static const char usage_text[] =
    "\n"
    "A strangler-fig proxy for XML-RPC monoliths: routes each call to the legacy\n"
    "system or to a new service (adapting XML-RPC to JSON), and raises events\n"
    "from intercepted calls onto RabbitMQ.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE  routes.conf to use (default ./routes.conf)\n"
    "  --check            validate FILE and exit: 0 when valid, else 1 with\n"
    "                     FILE:LINE: message for each error\n"
    "  -h, --help         this text\n"
    "  --version          the version\n"
    "\n"
    "commands (clients of the admin API named by FILE's admin line; the token\n"
    "comes from --token-file, $STRANGLER_ADMIN_TOKEN or FILE's admin token):\n"
    "  routes             the routes in force, with their counters\n"
    "  methods            every XML-RPC method seen: calls, faults, latency, who\n"
    "                     serves it; most called first (the migration backlog)\n"
    "  flip NAME ACTION   sends route NAME's calls to ACTION (an upstream), live,\n"
    "                     and writes it to FILE\n"
    "  reload             re-reads FILE\n"
    "  events replay      publishes the retained events again (all, or those\n"
    "                     --since a time or span, of --type GLOB): a late\n"
    "                     service builds its model from history\n"
    "  events tail        prints the retained events as JSON lines, from the\n"
    "                     spool's files (no admin API needed)\n"
    "\n"
    "signals: SIGHUP re-reads FILE; SIGTERM and SIGINT finish the requests in\n"
    "flight and exit 0; SIGUSR1 reopens the access and error logs (logrotate).\n"
    "\n"
    "admin API (on the admin address; a token on all but /healthz and the\n"
    "dashboard's files): GET / (the migration dashboard), GET /healthz,\n"
    "GET /routes, GET /routes/NAME, PUT /routes/NAME, POST /reload, GET /methods,\n"
    "GET /metrics (Prometheus), POST /events/replay.\n"
    "\n"
    "routes.conf directives:\n"
    "  listen HOST:PORT                        where clients connect\n"
    "  admin [HOST:PORT] [token=env:VAR|file:PATH]...\n"
    "                                          the admin API; a token file holds\n"
    "                                          SECRET, or NAME SECRET lines\n"
    "  workers N                               threads, each with its own event loop\n"
    "  upstream NAME URL [kind=xmlrpc|json] [role=new|legacy] [timeout=MS]\n"
    "                    [connect_timeout=MS] [keepalive=N] [keepalive_timeout=MS]\n"
    "  events AMQP-URL [exchange=NAME] [window=N] [heartbeat=S] [source=URI]\n"
    "  spool DIR [fsync=batch|always|off] [fsync_interval=MS] [max=SIZE]\n"
    "            [retain=DURATION] [full=skip|refuse] [segment=SIZE]\n"
    "  route NAME MATCH [header NAME=VALUE]... -> ACTION [intercept[=TYPE]]\n"
    "        [key=ROUTING-KEY] [on=success|all] [redact=PATH,...] [map=METHOD:PATH]\n"
    "        [ignore=PATH,...] [tolerance=X] [rollback=errors|mismatches>N%/DURATION]\n"
    "        ACTION: UPSTREAM | shadow PRIMARY CANDIDATE [readonly] [sample=N%]\n"
    "              | canary N% NEW REST [sticky=param:N|header:NAME]\n"
    "              | fallback PRIMARY BACKUP [readonly]\n"
    "        MATCH: xmlrpc GLOB | http METHOD PATH[*] | *\n"
    "  log_level error|warn|info|debug\n"
    "  error_log PATH|stderr                   where the error log goes\n"
    "  access_log PATH|stdout|off [buffer=SIZE] [flush=DURATION]\n"
    "                                          one JSON line per request\n"
    "  max_header_size SIZE     max_headers N        max_body_size SIZE\n"
    "  client_header_timeout MS client_body_timeout MS keepalive_timeout MS\n"
    "  send_timeout MS          drain_timeout MS     max_connections N\n"
    "  xml_max_depth N          xml_max_elements N   max_multicall_calls N\n"
    "  max_shadows N            max_methods N\n";

static void print_usage(FILE *out)
{
    fputs("usage: strangler [-c FILE] [--check]\n", out);
    fputs(adminctl_usage, out);
    fputs(eventlog_tail_usage_line, out);
    fputs(usage_text, out);
}

static void apply_log_level(const struct config *cfg)
{
    enum log_level level;
    if (log_level_parse(cfg->log_level, &level) == 0)
        log_set_level(level);
    else
        log_warn("log_level %s is not error, warn, info or debug; keeping the current level",
                 cfg->log_level);
}

/* Loads the file; errors and warnings go to stderr as FILE:LINE lines. */
static struct config *load_or_report(const char *path)
{
    struct buf messages = BUF_INIT;
    struct config *cfg = config_load(path, &messages);
    if (messages.len > 0)
        fputs(buf_cstr(&messages), stderr);
    buf_dispose(&messages);
    return cfg;
}

static int start_publisher(struct process *p)
{
    const struct config_events *e = &p->cfg->events;
    if (e->url == NULL)
        return 0;
    struct publisher_config pc = {
        .url = e->url,
        .exchange = e->exchange,
        .window = e->window,
        .heartbeat_s = e->heartbeat_s,
    };
    char err[256];
    p->publisher = publisher_start(&pc, p->spool, err, sizeof(err));
    if (p->publisher == NULL) {
        log_error("events: %s", err);
        return -1;
    }
    return 0;
}

static int same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int same_spool_options(const struct spool_options *a, const struct spool_options *b)
{
    return a->segment_bytes == b->segment_bytes && a->fsync == b->fsync &&
           a->fsync_interval_ms == b->fsync_interval_ms && a->max_bytes == b->max_bytes &&
           a->retain_ms == b->retain_ms && a->full == b->full;
}

/* Reports what a reload cannot change while the process runs. */
static void warn_fixed_settings(const struct config *old, const struct config *next)
{
    if (strcmp(old->listen.text, next->listen.text) != 0)
        log_warn("reload: listen changed to %s; it takes a restart, still on %s", next->listen.text,
                 old->listen.text);
    if (old->workers != next->workers)
        log_warn("reload: workers changed to %u; it takes a restart, still %u", next->workers,
                 old->workers);
    if (!same_string(old->admin.addr.text, next->admin.addr.text))
        log_warn("reload: the admin address changed to %s; it takes a restart",
                 next->admin.enabled ? next->admin.addr.text : "(none)");
    if (strcmp(old->spool_dir, next->spool_dir) != 0 ||
        !same_spool_options(&old->spool, &next->spool))
        log_warn("reload: the spool line changed; it takes a restart, still %s as before",
                 old->spool_dir);
    if (!same_string(old->access_log.path, next->access_log.path) ||
        old->access_log.buffer_bytes != next->access_log.buffer_bytes ||
        old->access_log.flush_ms != next->access_log.flush_ms)
        log_warn("reload: the access_log line changed; it takes a restart");
    if (!same_string(old->error_log, next->error_log))
        log_warn("reload: error_log changed; it takes a restart");
    if ((old->max_methods == 0) != (next->max_methods == 0))
        log_warn("reload: max_methods %s the method inventory; it takes a restart",
                 next->max_methods == 0 ? "turns off" : "turns on");
}

/* Logs each FILE:LINE line of a load, prefixed. */
static void log_lines(enum log_level level, const char *prefix, struct buf *lines)
{
    if (lines->len == 0)
        return;
    char *save = NULL;
    for (char *l = strtok_r((char *)buf_cstr(lines), "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save))
        log_msg(level, "%s%s", prefix, l);
}

/* control's install hook: every worker serves from next before this
 * returns (or a warning says which did not in time), and what a snapshot
 * change implies for the process follows. */
static void install_config(void *arg, struct config *old, struct config *next)
{
    struct process *p = arg;
    p->cfg = next;
    warn_fixed_settings(old, next);
    apply_log_level(next);
    if (p->inventory != NULL && next->max_methods > 0)
        inventory_set_max_methods(p->inventory, next->max_methods);
    for (unsigned i = 0; i < p->nworkers; i++)
        worker_set_config(&p->workers[i], next);
    /* One deadline for all: the main loop (signals, the admin API) waits at
     * most INSTALL_WAIT_MS, however many workers there are. */
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += INSTALL_WAIT_MS / 1000;
    deadline.tv_nsec += (long)(INSTALL_WAIT_MS % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    for (unsigned i = 0; i < p->nworkers; i++)
        if (worker_wait_config(&p->workers[i], next, &deadline) != 0)
            log_warn("worker %u did not take the new table within %d ms", i, INSTALL_WAIT_MS);
    int events_changed = !same_string(old->events.url, next->events.url) ||
                         !same_string(old->events.exchange, next->events.exchange);
    if (events_changed) {
        publisher_stop(p->publisher, PUBLISHER_DRAIN_MS);
        p->publisher = NULL;
        start_publisher(p);
    }
}

static void reload(struct process *p)
{
    struct control_outcome o;
    control_outcome_init(&o);
    if (control_reload(p->control, "SIGHUP", &o) != 0) {
        log_error("reload rejected: %s", buf_cstr(&o.error));
        log_lines(LOG_LEVEL_ERROR, "reload rejected: ", &o.messages);
    } else {
        log_lines(LOG_LEVEL_WARN, "reload: ", &o.messages);
    }
    control_outcome_dispose(&o);
}

/* SIGUSR1, after logrotate moved the files: both logs start anew at their
 * paths. A failure keeps the old file in use, and says so. */
static void reopen_logs(struct process *p)
{
    char err[512];
    if (p->error_log != NULL && log_redirect(p->error_log, err, sizeof(err)) != 0)
        log_error("SIGUSR1: %s; still writing to the old file", err);
    if (p->access_log != NULL && accesslog_reopen(p->access_log, err, sizeof(err)) != 0)
        log_error("SIGUSR1: %s; still writing to the old file", err);
    log_info("SIGUSR1: logs reopened");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct process *p = arg;
    (void)what;
    if (sig == SIGHUP) {
        reload(p);
        return;
    }
    if (sig == SIGUSR1) {
        reopen_logs(p);
        return;
    }
    log_info("signal %d: finishing requests in flight, then exiting", (int)sig);
    for (unsigned i = 0; i < p->nworkers; i++)
        worker_drain(&p->workers[i]);
    event_base_loopexit(p->base, NULL);
}

/* The spool first, then control takes over the snapshot (it raises its
 * events into the spool), then what publishes and records. */
static int open_sinks(struct process *p)
{
    char err[512];
    p->spool = spool_open(p->cfg->spool_dir, &p->cfg->spool, err, sizeof(err));
    if (p->spool == NULL) {
        log_error("%s", err);
        return -1;
    }
    p->control = control_new(p->cfg, p->spool, install_config, p);
    p->interceptor = interceptor_events_new(p->spool, p->cfg->events.source);
    return start_publisher(p);
}

/* Retention is by age, so it needs a clock even when no event arrives and
 * no broker confirms anything. */
static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
    struct process *p = arg;
    (void)fd;
    (void)what;
    spool_trim(p->spool);
}

static int start_housekeeping(struct process *p)
{
    static const struct timeval every_second = {1, 0};
    p->housekeeping = event_new(p->base, -1, EV_PERSIST, on_housekeeping, p);
    if (p->housekeeping == NULL || event_add(p->housekeeping, &every_second) != 0) {
        log_error("cannot start the housekeeping timer");
        return -1;
    }
    return 0;
}

/*
 * A route's rollback guard tripped (guard.h): send the route back to its
 * legacy side with a flip, so that it is audited, raises
 * strangler.route.changed and is written to routes.conf like one by hand.
 */
static void on_guard_trip(void *arg, const char *route, uint64_t calls, uint64_t bad)
{
    struct process *p = arg;
    const struct route *r = config_find_route(p->cfg, route);
    const struct upstream_def *legacy = r != NULL ? route_legacy_side(r) : NULL;
    struct control_outcome o;
    if (r == NULL || r->mode == ROUTE_DIRECT || legacy == NULL) {
        /* Flipped or reloaded meanwhile (or calls of the old table still
         * reporting): nothing to roll back, and the guard must stay armed
         * for the next ramp. */
        if (r != NULL)
            guard_reset(r->counters);
        return;
    }
    log_warn("rollback guard: route %s: %llu of the last %llu calls on its new side %s went "
             "wrong (%s); sending it back to %s",
             route, (unsigned long long)bad, (unsigned long long)calls, route_new_side(r)->name,
             r->guard.on_mismatches ? "mismatches" : "errors", legacy->name);
    /* The flip installs a new snapshot and may free the one r lives in;
     * the counters are the process's and stay. */
    struct route_counters *counters = r->counters;
    char *to = mem_strdup(legacy->name);
    control_outcome_init(&o);
    if (control_flip(p->control, "rollback guard", route, to, &o) != 0)
        log_error("rollback guard: route %s: the flip to %s was refused: %s", route, to,
                  buf_cstr(&o.error));
    else
        metrics_bump(&counters->rollbacks);
    /* Armed again either way: a refused flip is tried at the next trip. */
    guard_reset(counters);
    free(to);
    control_outcome_dispose(&o);
}

static int start_admin(struct process *p)
{
    char err[512];
    if (!p->cfg->admin.enabled)
        return 0;
    p->admin = admin_start(p->base, p->control, err, sizeof(err));
    if (p->admin == NULL) {
        log_error("%s", err);
        return -1;
    }
    struct admin_events events = {p->spool, p->interceptor, &p->publisher};
    admin_attach_events(p->admin, &events);
    admin_attach_inventory(p->admin, p->inventory);
    log_info("admin API listening on %s%s", admin_address(p->admin),
             p->cfg->admin.ntokens ? "" : " (no token: loopback only)");
    return 0;
}

/* Binds every worker's socket first (so a busy port fails the start before
 * any thread runs, and port 0 resolves to one port for all), then starts
 * the threads. */
static int start_workers(struct process *p)
{
    char err[512];
    unsigned n = p->cfg->workers;
    int *fds = mem_calloc(n, sizeof(*fds));
    int rc = -1;

    for (unsigned i = 0; i < n; i++) {
        fds[i] = worker_bind(&p->cfg->listen, err, sizeof(err));
        if (fds[i] < 0) {
            log_error("%s", err);
            while (i-- > 0)
                close(fds[i]);
            goto out;
        }
    }
    struct worker_shared shared = {
        .interceptor = p->interceptor,
        .inventory = p->inventory,
        .access_log = p->access_log,
        .access_buffer = p->cfg->access_log.buffer_bytes,
        .access_flush_ms = p->cfg->access_log.flush_ms,
    };
    p->workers = mem_calloc(n, sizeof(*p->workers));
    for (unsigned i = 0; i < n; i++) {
        p->nworkers = i + 1; /* joined on the way out, started or not */
        if (worker_start(&p->workers[i], i, p->cfg, fds[i], &shared, err, sizeof(err)) != 0) {
            log_error("%s", err);
            for (unsigned k = i + 1; k < n; k++)
                close(fds[k]);
            goto out;
        }
    }
    rc = 0;
out:
    free(fds);
    return rc;
}

static void stop_everything(struct process *p)
{
    for (unsigned i = 0; i < p->nworkers; i++)
        worker_drain(&p->workers[i]);
    for (unsigned i = 0; i < p->nworkers; i++)
        worker_join(&p->workers[i]);
    free(p->workers);
    admin_free(p->admin);
    guard_stop();
    if (p->housekeeping != NULL)
        event_free(p->housekeeping);
    publisher_stop(p->publisher, PUBLISHER_DRAIN_MS);
    interceptor_free(p->interceptor);
    if (p->control != NULL)
        control_free(p->control);
    else
        config_unref(p->cfg);
    spool_close(p->spool);
    inventory_free(p->inventory);
    accesslog_close(p->access_log);
    free(p->error_log);
    if (p->base)
        event_base_free(p->base);
}

/* The error log, the access log and the method inventory, before any
 * worker logs or counts. */
static int open_logs(struct process *p)
{
    char err[512];
    if (p->cfg->error_log != NULL) {
        if (log_redirect(p->cfg->error_log, err, sizeof(err)) != 0) {
            log_error("%s", err);
            return -1;
        }
        p->error_log = mem_strdup(p->cfg->error_log);
    }
    if (p->cfg->access_log.path != NULL) {
        p->access_log = accesslog_open(p->cfg->access_log.path, err, sizeof(err));
        if (p->access_log == NULL) {
            log_error("%s", err);
            return -1;
        }
    }
    if (p->cfg->max_methods > 0)
        p->inventory = inventory_new(p->cfg->workers, p->cfg->max_methods, clock_realtime_us());
    return 0;
}

static int run(struct process *p)
{
    int rc = 1;
    struct event *signals[5] = {NULL};
    const int signos[5] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1, 0};

    /* Until its handler is in place (after the spool's recovery and the
     * workers' start), a logrotate's SIGUSR1 must not end the process. */
    signal(SIGUSR1, SIG_IGN);
    apply_log_level(p->cfg);
    metrics_mark_start(clock_realtime_us());
    p->base = event_base_new();
    if (p->base == NULL || open_logs(p) != 0 || open_sinks(p) != 0 || start_housekeeping(p) != 0 ||
        guard_start(p->base, on_guard_trip, p) != 0 || start_workers(p) != 0 || start_admin(p) != 0)
        goto out;
    for (int i = 0; signos[i] != 0; i++) {
        signals[i] = evsignal_new(p->base, signos[i], on_signal, p);
        event_add(signals[i], NULL);
    }
    log_info("strangler %s listening on %s, %u worker%s, %zu routes", PROJECT_VERSION,
             p->cfg->listen.text, p->nworkers, p->nworkers == 1 ? "" : "s", p->cfg->nroutes);
    event_base_dispatch(p->base);
    rc = 0;
out:
    for (int i = 0; signals[i] != NULL; i++)
        event_free(signals[i]);
    /* Already draining: a second SIGTERM must not kill the process halfway
     * (drain_timeout bounds the wait; SIGKILL remains for the impatient). */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    stop_everything(p);
    return rc;
}

int main(int argc, char **argv)
{
    struct process p = {.config_path = "routes.conf"};
    int check_only = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "events") == 0 && i + 1 < argc && strcmp(argv[i + 1], "tail") == 0)
            return eventlog_tail_main(p.config_path, argc - i - 1, argv + i + 1);
        if (strcmp(a, "routes") == 0 || strcmp(a, "flip") == 0 || strcmp(a, "reload") == 0 ||
            strcmp(a, "events") == 0 || strcmp(a, "methods") == 0)
            return adminctl_main(p.config_path, argc - i, argv + i);
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            p.config_path = argv[++i];
        } else if (strcmp(a, "--check") == 0) {
            check_only = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("strangler %s\n", PROJECT_VERSION);
            return 0;
        } else {
            fprintf(stderr, "strangler: unknown argument '%s'\n\n", a);
            print_usage(stderr);
            return 2;
        }
    }

    p.cfg = load_or_report(p.config_path);
    if (p.cfg == NULL)
        return 1;
    if (check_only) {
        printf("%s: ok (%zu routes, %zu upstreams)\n", p.config_path, p.cfg->nroutes,
               p.cfg->nupstreams);
        config_unref(p.cfg);
        return 0;
    }

    /* Before any event base exists: workers are woken from other threads. */
    evthread_use_pthreads();
    /* A client or upstream that hangs up mid-write is an error return, not a
     * reason to die. */
    signal(SIGPIPE, SIG_IGN);
    xr_init();
    int rc = run(&p);
    metrics_shutdown();
    xr_cleanup();
    libevent_global_shutdown();
    return rc;
}
