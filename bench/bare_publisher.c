/*
 * bare-publisher: what one librabbitmq publisher with confirms gets out of
 * a broker, as the yardstick for the proxy's publisher.
 *
 * The proxy's publisher (interceptors/publisher.c) reads events from the
 * spool and publishes them with publisher confirms and a window of
 * unconfirmed messages. This program does the publishing part alone, with
 * the same library, the same message shape and the same window, and nothing
 * else: no spool to read, no checkpoint to write, no second thread. What it
 * measures is the ceiling the proxy's publisher can approach on the same
 * broker, which is why events_bench.py runs both against one broker in one
 * run.
 *
 * Every message is what the proxy sends for an event (DESIGN.md "Events"):
 * persistent (delivery_mode 2), content_type "application/cloudevents+json",
 * a fresh UUID as message_id, type, timestamp and app_id "strangler", routed
 * by its type to a durable topic exchange. The body is --body-size bytes of
 * JSON. The connection is set up as the proxy's is (frame_max 131072, a 30 s
 * heartbeat, TCP_NODELAY).
 *
 * rabbitmq-c 0.11 has no helper for confirms (FIELD-NOTES.md), so the loop
 * is written out: publish while fewer than W messages are unconfirmed, then
 * block for a frame from the broker and take every frame already read
 * (basic.ack and basic.nack may cover many tags with `multiple`), and go on.
 * The clock runs from the first publish to the last ack; connecting and
 * declaring are not timed.
 *
 * Exit status: 0 when every message was confirmed, 1 on a broker or
 * connection error (a nack included: a benchmark whose messages the broker
 * refused measured nothing), 2 on a usage error. The rate never decides it.
 */
#include "common/clock.h"
#include "common/ids.h"
#include "common/mem.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define CHANNEL          1
#define FRAME_MAX        131072 /* as interceptors/publisher.c */
#define HEARTBEAT_S      30     /* the proxy's default */
#define CONTENT_TYPE     "application/cloudevents+json"
#define APP_ID           "strangler"
#define DEFAULT_EXCHANGE "strangler.events"
#define DEFAULT_TYPE     "legacy.bench.echo"
#define DEFAULT_MESSAGES 50000ul
#define DEFAULT_WINDOW   1000ul /* the proxy's default window */
#define DEFAULT_BODY     1024ul
#define MAX_MESSAGES     100000000ul
#define MAX_WINDOW       100000ul /* the largest window routes.conf accepts */
#define MAX_BODY         (16ul << 20)
#define SHORTSTR_MAX     255u
/* A broker that stops answering must not hang the run. */
#define IO_TIMEOUT_S 30

enum bare_status {
    BARE_OK = 0,
    BARE_ERROR = 1,
    BARE_USAGE = 2,
};

struct options {
    const char *url;
    const char *exchange;
    const char *type; /* AMQP type property and routing key */
    unsigned long messages;
    unsigned long window;
    unsigned long body_size;
};

/* The confirm bookkeeping. Tags are 1, 2, 3, ... on a fresh channel; slot
 * tag % window says whether that tag was acked, so single acks that arrive
 * out of order are counted once, and `acked` only moves past a tag when
 * everything up to it is acked. */
struct confirms {
    unsigned char *acked_slot; /* window entries */
    unsigned long window;
    uint64_t published; /* last tag used */
    uint64_t acked;     /* every tag <= acked is acked */
};

static const char usage_text[] =
    "usage: bare-publisher --url URL [--exchange EX] [--type T] [--messages N]\n"
    "                      [--window W] [--body-size B]\n"
    "\n"
    "Publishes N persistent messages of B bytes to the durable topic exchange EX\n"
    "(default " DEFAULT_EXCHANGE ") with routing key and type T (default " DEFAULT_TYPE "),\n"
    "with publisher confirms and at most W unconfirmed, and prints messages/s.\n"
    "Defaults: N 50000, W 1000, B 1024. The last line is for scripts:\n"
    "  result messages=N seconds=S rate=R cpu_seconds=C\n";

/* ---- arguments ---- */

static int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Returns 0 with *o filled, 1 for --help, -1 after printing what is wrong. */
static int parse_args(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0)
            return 1;
        if (val == NULL) {
            fprintf(stderr, "bare-publisher: unknown or incomplete argument '%s'\n", opt);
            return -1;
        }
        i++;
        if (strcmp(opt, "--url") == 0)
            o->url = val;
        else if (strcmp(opt, "--exchange") == 0 && *val != '\0')
            o->exchange = val;
        else if (strcmp(opt, "--type") == 0 && *val != '\0' && strlen(val) <= SHORTSTR_MAX)
            o->type = val;
        else if (strcmp(opt, "--messages") == 0)
            ok = parse_ulong(val, 1, MAX_MESSAGES, &o->messages) == 0;
        else if (strcmp(opt, "--window") == 0)
            ok = parse_ulong(val, 1, MAX_WINDOW, &o->window) == 0;
        else if (strcmp(opt, "--body-size") == 0)
            ok = parse_ulong(val, 16, MAX_BODY, &o->body_size) == 0;
        else
            ok = 0;
        if (!ok) {
            fprintf(stderr, "bare-publisher: invalid %s '%s'\n", opt, val);
            return -1;
        }
    }
    if (o->url == NULL) {
        fprintf(stderr, "bare-publisher: --url is required\n");
        return -1;
    }
    return 0;
}

/* ---- the message ---- */

/* A JSON body of exactly `len` bytes (len >= 16): {"data":"xxx..."}. The
 * broker does not look inside; JSON only so that a consumer reading the
 * queue by mistake sees something sensible. */
static char *make_body(size_t len)
{
    static const char head[] = "{\"data\":\"";
    static const char tail[] = "\"}";
    char *b = mem_alloc(len);
    memset(b, 'x', len);
    memcpy(b, head, sizeof(head) - 1);
    memcpy(b + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    return b;
}

/* ---- talking to the broker ---- */

/* Prints what went wrong with the last RPC; returns 0 if nothing did. */
static int check_reply(amqp_rpc_reply_t r, const char *step)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        fprintf(stderr, "bare-publisher: %s: no reply\n", step);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        fprintf(stderr, "bare-publisher: %s: %s\n", step, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            fprintf(stderr, "bare-publisher: %s: broker closed the connection: %u %.*s\n", step,
                    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            fprintf(stderr, "bare-publisher: %s: broker closed the channel: %u %.*s\n", step,
                    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            fprintf(stderr, "bare-publisher: %s: unexpected method 0x%08x\n", step, r.reply.id);
        }
        break;
    }
    return -1;
}

/*
 * Connects and logs in as the proxy's publisher does, opens channel 1 in
 * confirm mode and declares the exchange (durable topic, the publisher's
 * arguments, so the declaration is idempotent). Returns 0 with *out set
 * (the caller destroys it), or -1 after printing why.
 */
static int connect_broker(const struct options *o, amqp_connection_state_t *out)
{
    struct amqp_connection_info info;
    struct timeval tv = {IO_TIMEOUT_S, 0};
    amqp_connection_state_t conn = NULL;
    char *url = mem_strdup(o->url); /* amqp_parse_url() writes into it */
    int one = 1, rc = -1;

    amqp_default_connection_info(&info);
    if (amqp_parse_url(url, &info) != AMQP_STATUS_OK || info.ssl) {
        fprintf(stderr,
                "bare-publisher: invalid URL (expected amqp://user:pass@host:port/vhost)\n");
        goto out;
    }
    conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (sock == NULL) {
        fprintf(stderr, "bare-publisher: cannot create a socket object\n");
        goto out;
    }
    int st = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
    if (st != AMQP_STATUS_OK) {
        fprintf(stderr, "bare-publisher: cannot connect to %s:%d: %s\n", info.host, info.port,
                amqp_error_string2(st));
        goto out;
    }
    setsockopt(amqp_get_sockfd(conn), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (amqp_set_rpc_timeout(conn, &tv) != AMQP_STATUS_OK) {
        fprintf(stderr, "bare-publisher: cannot set the RPC timeout\n");
        goto out;
    }
    if (check_reply(amqp_login(conn, info.vhost, 0, FRAME_MAX, HEARTBEAT_S, AMQP_SASL_METHOD_PLAIN,
                               info.user, info.password),
                    "login") < 0)
        goto out;
    amqp_channel_open(conn, CHANNEL);
    if (check_reply(amqp_get_rpc_reply(conn), "channel.open") < 0)
        goto out;
    amqp_confirm_select(conn, CHANNEL);
    if (check_reply(amqp_get_rpc_reply(conn), "confirm.select") < 0)
        goto out;
    amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(o->exchange),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    if (check_reply(amqp_get_rpc_reply(conn), "exchange.declare") < 0)
        goto out;
    *out = conn;
    conn = NULL;
    rc = 0;
out:
    if (conn != NULL)
        amqp_destroy_connection(conn);
    free(url);
    return rc;
}

/* Marks `tag` acked (every outstanding tag up to it with `multiple`) and
 * moves the fully acked prefix on. Returns 0, or -1 for a tag never used. */
static int on_ack(struct confirms *c, uint64_t tag, int multiple)
{
    if (tag == 0 && multiple)
        tag = c->published; /* "everything outstanding", AMQP 0-9-1 basic.ack */
    if (tag > c->published) {
        fprintf(stderr, "bare-publisher: ack for tag %llu, only %llu published\n",
                (unsigned long long)tag, (unsigned long long)c->published);
        return -1;
    }
    for (uint64_t t = multiple ? c->acked + 1 : tag; t <= tag && t > c->acked; t++)
        c->acked_slot[t % c->window] = 1;
    while (c->acked < c->published && c->acked_slot[(c->acked + 1) % c->window]) {
        c->acked++;
        c->acked_slot[c->acked % c->window] = 0; /* free for tag acked + window */
    }
    return 0;
}

/* One frame from the broker. Returns 0, or -1 for anything that ends the
 * run: a nack, a close, a returned message (mandatory is off, so none is
 * expected). */
static int handle_frame(amqp_connection_state_t conn, struct confirms *c, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0; /* heartbeats; rabbitmq-c answers them itself */
    const void *d = f->payload.method.decoded;
    amqp_rpc_reply_t r = {AMQP_RESPONSE_SERVER_EXCEPTION, f->payload.method, 0};
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD:
        return on_ack(c, ((const amqp_basic_ack_t *)d)->delivery_tag,
                      ((const amqp_basic_ack_t *)d)->multiple);
    case AMQP_BASIC_NACK_METHOD:
        fprintf(stderr, "bare-publisher: the broker nacked tag %llu%s\n",
                (unsigned long long)((const amqp_basic_nack_t *)d)->delivery_tag,
                ((const amqp_basic_nack_t *)d)->multiple ? " and before" : "");
        return -1;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        check_reply(r, "publishing");
        if (f->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_ok_t ok = {0};
            amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        }
        return -1;
    default:
        fprintf(stderr, "bare-publisher: unexpected method 0x%08x\n", f->payload.method.id);
        return -1;
    }
}

/* Blocks until the broker sends a frame (at most IO_TIMEOUT_S), then takes
 * every frame rabbitmq-c has already read, so one wake-up handles a whole
 * burst of acks. Returns 0, or -1 after printing why. */
static int read_frames(amqp_connection_state_t conn, struct confirms *c)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    amqp_frame_t f;
    int rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
    for (;;) {
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "bare-publisher: waiting for confirms: %s\n",
                    rc == AMQP_STATUS_TIMEOUT ? "nothing from the broker for 30 s"
                                              : amqp_error_string2(rc));
            return -1;
        }
        if (handle_frame(conn, c, &f) < 0)
            return -1;
        if (!amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn))
            break;
        /* The rest of a frame already begun is on its way; still bounded. */
        rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
    }
    amqp_maybe_release_buffers(conn);
    return 0;
}

/* Process CPU time (user + system, every thread) in seconds. */
static double cpu_seconds(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Publishes o->messages messages with at most o->window unconfirmed and
 * waits for the last confirm. Returns 0 with the wall time in *ns and the
 * CPU time in *cpu, or -1 after printing why.
 */
static int publish_all(amqp_connection_state_t conn, const struct options *o, uint64_t *ns,
                       double *cpu)
{
    struct confirms c = {mem_calloc(o->window, 1), o->window, 0, 0};
    char *body = make_body(o->body_size);
    char id[IDS_UUID_LEN + 1];
    amqp_basic_properties_t props;
    amqp_bytes_t exchange = amqp_cstring_bytes(o->exchange);
    amqp_bytes_t key = amqp_cstring_bytes(o->type);
    amqp_bytes_t payload = {o->body_size, body};
    int rc = -1;

    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                   AMQP_BASIC_APP_ID_FLAG;
    props.content_type = amqp_cstring_bytes(CONTENT_TYPE);
    props.delivery_mode = 2; /* persistent */
    props.type = key;
    props.app_id = amqp_cstring_bytes(APP_ID);

    double cpu0 = cpu_seconds();
    uint64_t t0 = clock_monotonic_ns();
    while (c.acked < o->messages) {
        while (c.published < o->messages && c.published - c.acked < o->window) {
            /* A fresh id per message, as the proxy's events have: the
             * generator's cost is part of making an event, not of
             * publishing one, but it is small and keeps the frames alike. */
            ids_new_uuid(id);
            props.message_id = amqp_cstring_bytes(id);
            props.timestamp = (uint64_t)time(NULL);
            int st = amqp_basic_publish(conn, CHANNEL, exchange, key, 0, 0, &props, payload);
            if (st != AMQP_STATUS_OK) {
                fprintf(stderr, "bare-publisher: publish: %s\n", amqp_error_string2(st));
                goto out;
            }
            c.published++;
        }
        if (read_frames(conn, &c) < 0)
            goto out;
    }
    *ns = clock_monotonic_ns() - t0;
    *cpu = cpu_seconds() - cpu0;
    rc = 0;
out:
    free(c.acked_slot);
    free(body);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {.exchange = DEFAULT_EXCHANGE,
                        .type = DEFAULT_TYPE,
                        .messages = DEFAULT_MESSAGES,
                        .window = DEFAULT_WINDOW,
                        .body_size = DEFAULT_BODY};
    amqp_connection_state_t conn = NULL;
    uint64_t ns = 0;
    double cpu = 0;
    int rc = BARE_ERROR;

    int args = parse_args(argc, argv, &o);
    if (args != 0) {
        fputs(usage_text, args > 0 ? stdout : stderr);
        return args > 0 ? BARE_OK : BARE_USAGE;
    }
    if (connect_broker(&o, &conn) < 0)
        goto out;
    if (publish_all(conn, &o, &ns, &cpu) < 0)
        goto out;
    double s = (double)ns / 1e9;
    printf("bare-publisher (librabbitmq %s): %lu messages of %lu bytes to exchange %s, "
           "window %lu: %.3f s, %.0f messages/s, %.1f µs CPU per message\n",
           amqp_version(), o.messages, o.body_size, o.exchange, o.window, s, (double)o.messages / s,
           cpu * 1e6 / (double)o.messages);
    printf("result messages=%lu seconds=%.6f rate=%.1f cpu_seconds=%.3f\n", o.messages, s,
           (double)o.messages / s, cpu);
    rc = BARE_OK;
out:
    if (conn != NULL) {
        if (rc == BARE_OK)
            check_reply(amqp_connection_close(conn, AMQP_REPLY_SUCCESS), "connection.close");
        amqp_destroy_connection(conn);
    }
    return rc;
}
