/*
 * stock-service: the demo new service.
 *
 * It subscribes to the events Strangler intercepts from the legacy shop,
 * builds its own stock model from them (consumer.c, event.c, model.c) and
 * serves stock.get over the JSON contract (service.c), so that the
 * stock.get route can be flipped from the legacy to it. This file is the
 * command line and the wiring: parse options, bind HTTP, print the ready
 * line, start the consumer, run the event loop until SIGTERM or SIGINT,
 * then take everything down in reverse order.
 *
 * Exit status: 0 after a signal, 1 when it cannot start, 2 on bad usage.
 */
#include "common/log.h"
#include "common/mem.h"
#include "examples/stock-service/consumer.h"
#include "examples/stock-service/model.h"
#include "examples/stock-service/service.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_bindings[] = {"stock.#", "orders.#", "legacy.stock.#",
                                               "legacy.orders.#"};

struct options {
    char *host; /* owned */
    uint16_t port;
    const char *amqp_url;
    const char *exchange;
    const char *queue;
    const char *base;
    const char *learn_from;
    const char **bindings; /* owned array of borrowed argv strings */
    size_t n_bindings;
    int queue_given;

    /* --stream: read the stream `stream` instead of a queue of our own. */
    const char *stream;
    struct consumer_offset offset;
    const char *max_age;
    uint64_t max_bytes;
    int stream_option_given; /* some --stream-* option: needs --stream */
};

static void usage(FILE *f)
{
    fputs("usage: stock-service [--listen HOST:PORT] [--amqp URL] [--exchange NAME]\n"
          "                     [--queue NAME | --stream NAME [--stream-offset OFFSET]\n"
          "                      [--stream-max-age AGE] [--stream-max-bytes N]]\n"
          "                     [--bind KEY]... [--base PATH] [--learn-from UPSTREAM]\n"
          "                     [--log-level error|warn|info|debug]\n"
          "\n"
          "  --listen     HTTP address (default 127.0.0.1:9001; port 0 picks one)\n"
          "  --amqp       broker (default amqp://guest:guest@127.0.0.1:5672/%2f)\n"
          "  --exchange   topic exchange of the events (default strangler.events)\n"
          "  --queue      this service's durable queue (default stock-service)\n"
          "  --stream     read the events from this durable stream queue instead\n"
          "               of a queue of its own: a stream keeps them once read\n"
          "  --stream-offset OFFSET\n"
          "               where reading the stream starts: first (default), last,\n"
          "               next, a position, YYYY-MM-DDTHH:MM:SSZ or @SECONDS\n"
          "  --stream-max-age AGE\n"
          "               the stream's x-max-age, e.g. 30D (default: none)\n"
          "  --stream-max-bytes N\n"
          "               the stream's x-max-length-bytes (default: none); both\n"
          "               must be the ones the stream was declared with\n"
          "  --bind       routing key to bind, repeatable (default stock.# orders.#\n"
          "               legacy.stock.# legacy.orders.#)\n"
          "  --base       path prefix of JSON-contract calls (default /rpc)\n"
          "  --learn-from the upstream (as Strangler names it) whose answers build\n"
          "               the model (default legacy)\n",
          f);
}

/* Splits "HOST:PORT" or "[V6]:PORT". Returns 0, or -1 if malformed. */
static int parse_listen(const char *arg, struct options *o)
{
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || colon == arg)
        return -1;
    const char *host = arg;
    size_t host_len = (size_t)(colon - arg);
    if (host[0] == '[') {
        if (host_len < 3 || host[host_len - 1] != ']')
            return -1;
        host++;
        host_len -= 2;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return -1;
    free(o->host);
    o->host = mem_strndup(host, host_len);
    o->port = (uint16_t)port;
    return 0;
}

/* A positive decimal number of bytes that the broker can hold in its signed
 * 64-bit field. Returns 0, or -1. */
static int parse_bytes(const char *arg, uint64_t *out)
{
    if (arg[0] < '0' || arg[0] > '9')
        return -1; /* strtoumax would take a sign or spaces */
    char *end;
    errno = 0;
    uintmax_t v = strtoumax(arg, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0 || v > INT64_MAX)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    log_info("signal %d: shutting down", (int)sig);
    event_base_loopbreak(arg);
}

/* Returns 0, 1 (--help, exit 0) or -1 (usage error, logged). */
static int parse_options(int argc, char **argv, struct options *o)
{
    enum {
        OPT_LISTEN = 1,
        OPT_AMQP,
        OPT_EXCHANGE,
        OPT_QUEUE,
        OPT_BIND,
        OPT_BASE,
        OPT_LEARN_FROM,
        OPT_STREAM,
        OPT_STREAM_OFFSET,
        OPT_STREAM_MAX_AGE,
        OPT_STREAM_MAX_BYTES,
        OPT_LOG_LEVEL,
        OPT_HELP,
    };
    static const struct option table[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"amqp", required_argument, NULL, OPT_AMQP},
        {"exchange", required_argument, NULL, OPT_EXCHANGE},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"bind", required_argument, NULL, OPT_BIND},
        {"base", required_argument, NULL, OPT_BASE},
        {"learn-from", required_argument, NULL, OPT_LEARN_FROM},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"stream-offset", required_argument, NULL, OPT_STREAM_OFFSET},
        {"stream-max-age", required_argument, NULL, OPT_STREAM_MAX_AGE},
        {"stream-max-bytes", required_argument, NULL, OPT_STREAM_MAX_BYTES},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int opt;
    enum log_level level;

    while ((opt = getopt_long(argc, argv, "h", table, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            if (parse_listen(optarg, o) != 0) {
                log_error("--listen %s: expected HOST:PORT", optarg);
                return -1;
            }
            break;
        case OPT_AMQP:
            o->amqp_url = optarg;
            break;
        case OPT_EXCHANGE:
            o->exchange = optarg;
            break;
        case OPT_QUEUE:
            o->queue = optarg;
            o->queue_given = 1;
            break;
        case OPT_BIND:
            /* The first --bind replaces the defaults; later ones add. */
            o->bindings = mem_realloc(o->bindings, (o->n_bindings + 1) * sizeof(*o->bindings));
            o->bindings[o->n_bindings++] = optarg;
            break;
        case OPT_BASE:
            if (optarg[0] != '/') {
                log_error("--base %s: must start with /", optarg);
                return -1;
            }
            o->base = optarg;
            break;
        case OPT_LEARN_FROM:
            o->learn_from = optarg;
            break;
        case OPT_STREAM:
            o->stream = optarg;
            break;
        case OPT_STREAM_OFFSET:
            if (consumer_offset_parse(optarg, &o->offset) != 0) {
                log_error("--stream-offset %s: expected first, last, next, a position,"
                          " YYYY-MM-DDTHH:MM:SSZ or @SECONDS",
                          optarg);
                return -1;
            }
            o->stream_option_given = 1;
            break;
        case OPT_STREAM_MAX_AGE:
            if (consumer_max_age_check(optarg) != 0) {
                log_error("--stream-max-age %s: expected a positive number and one unit of"
                          " Y, M, D, h, m, s (e.g. 30D)",
                          optarg);
                return -1;
            }
            o->max_age = optarg;
            o->stream_option_given = 1;
            break;
        case OPT_STREAM_MAX_BYTES:
            if (parse_bytes(optarg, &o->max_bytes) != 0) {
                log_error("--stream-max-bytes %s: expected a positive number of bytes", optarg);
                return -1;
            }
            o->stream_option_given = 1;
            break;
        case OPT_LOG_LEVEL:
            if (log_level_parse(optarg, &level) != 0) {
                log_error("--log-level %s: expected error, warn, info or debug", optarg);
                return -1;
            }
            log_set_level(level);
            break;
        case OPT_HELP:
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        log_error("unexpected argument: %s", argv[optind]);
        return -1;
    }
    if (o->stream != NULL && o->queue_given) {
        log_error("--queue and --stream: give one, the queue the events are read from");
        return -1;
    }
    if (o->stream == NULL && o->stream_option_given) {
        log_error("--stream-offset, --stream-max-age and --stream-max-bytes need --stream");
        return -1;
    }
    if (o->stream != NULL)
        o->queue = o->stream;
    if (o->exchange[0] == '\0' || o->queue[0] == '\0') {
        log_error("--exchange, --queue and --stream must not be empty");
        return -1;
    }
    if (o->n_bindings == 0) {
        size_t n = sizeof(default_bindings) / sizeof(default_bindings[0]);
        o->bindings = mem_calloc(n, sizeof(*o->bindings));
        for (size_t i = 0; i < n; i++)
            o->bindings[i] = default_bindings[i];
        o->n_bindings = n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 1;
    struct options o = {
        .host = mem_strdup("127.0.0.1"),
        .port = 9001,
        .amqp_url = "amqp://guest:guest@127.0.0.1:5672/%2f",
        .exchange = "strangler.events",
        .queue = "stock-service",
        .base = "/rpc",
        .learn_from = "legacy",
        .offset = {.kind = CONSUMER_OFFSET_FIRST}, /* a late reader wants the history */
    };
    struct event_base *base = NULL;
    struct event *sigterm = NULL;
    struct event *sigint = NULL;
    struct model *model = NULL;
    struct service *svc = NULL;
    struct consumer *consumer = NULL;
    char err[256];

    int parsed = parse_options(argc, argv, &o);
    if (parsed != 0) {
        rc = parsed > 0 ? 0 : 2;
        goto out;
    }
    struct consumer_config ccfg = {
        .url = o.amqp_url,
        .exchange = o.exchange,
        .queue = o.queue,
        .bindings = o.bindings,
        .n_bindings = o.n_bindings,
        .learn_from = o.learn_from,
        .stream = o.stream != NULL,
        .offset = o.offset,
        .max_age = o.max_age,
        .max_bytes = o.max_bytes,
    };
    if (consumer_check_config(&ccfg, err, sizeof(err)) != 0) {
        log_error("--amqp %s: %s", o.amqp_url, err);
        rc = 2;
        goto out;
    }

    /* A client hanging up mid-reply must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    base = event_base_new();
    if (base == NULL) {
        log_error("cannot create the event loop");
        goto out;
    }
    model = model_new();
    struct service_config scfg = {.host = o.host, .port = o.port, .base = o.base};
    svc = service_new(base, &scfg, model, err, sizeof(err));
    if (svc == NULL) {
        log_error("%s", err);
        goto out;
    }
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0) {
        log_error("cannot install signal handlers");
        goto out;
    }

    /* The HTTP side is ready now; the event feed catches up in the
     * background (GET /model says "feed_connected" once it is subscribed). */
    char address[160];
    service_format_address(svc, address, sizeof(address));
    printf("stock-service listening on %s\n", address);
    fflush(stdout);

    consumer = consumer_start(&ccfg, model);
    if (consumer == NULL)
        goto out;

    if (event_base_dispatch(base) < 0) {
        log_error("event loop failed");
        goto out;
    }
    rc = 0;
out:
    /* The consumer writes to the model: stop it first. */
    consumer_stop(consumer);
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    service_free(svc);
    if (base != NULL)
        event_base_free(base);
    model_free(model);
    free(o.bindings);
    free(o.host);
    libevent_global_shutdown();
    return rc;
}
