#include "examples/stock-service/consumer.h"

#include "common/log.h"
#include "common/mem.h"
#include "examples/stock-service/event.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANNEL 1
/* Stream mode asks whether the stream exists with a passive declare, which
 * the broker answers for a missing queue by closing the channel: that
 * question gets a channel of its own so CHANNEL survives it. */
#define PROBE_CHANNEL 2

/* rabbitmq-c services heartbeats only inside its own calls (FIELD-NOTES):
 * the consume loop wakes every POLL_MS, far more often than half of
 * HEARTBEAT_S, so the broker never declares us dead while idle. */
#define HEARTBEAT_S 10
#define POLL_MS     250

#define CONNECT_TIMEOUT_MS 3000
#define RPC_TIMEOUT_MS     5000
#define CLOSE_TIMEOUT_MS   1000
#define PREFETCH           64
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000

struct consumer {
    /* Set before the thread starts and read-only afterwards. `info` points
     * into url_buf, which amqp_parse_url() cut up in place. */
    char *url_buf;
    struct amqp_connection_info info;
    char *exchange;
    char *queue;
    char *learn_from;
    char **bindings;
    size_t n_bindings;
    struct model *model;
    int stream;
    struct consumer_offset offset;
    char *max_age; /* NULL: no x-max-age */
    uint64_t max_bytes;
    pthread_t thread;

    /* Stream mode, consumer thread only: the position of the last message
     * handled (at first, the one before a configured start position), or
     * -1. A reconnect resumes after it, and nothing at or before it is
     * applied again. */
    int64_t last_offset;

    /* Written by consumer_stop(), polled by the thread. The mutex and the
     * condition only exist to cut a backoff sleep short. */
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
};

static struct timeval ms_to_timeval(unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static bool stopping(struct consumer *c)
{
    return atomic_load(&c->stop);
}

/* Splits url (modified in place) into info. Returns 0, or -1 with err. */
static int parse_url(char *url, struct amqp_connection_info *info, char *err, size_t errlen)
{
    if (amqp_parse_url(url, info) != AMQP_STATUS_OK) {
        snprintf(err, errlen, "not an AMQP URL (expected amqp://user:pass@host:port/vhost)");
        return -1;
    }
    if (info->ssl) {
        snprintf(err, errlen, "amqps:// is not supported by the demo service");
        return -1;
    }
    return 0;
}

int consumer_check_config(const struct consumer_config *cfg, char *err, size_t errlen)
{
    char *copy = mem_strdup(cfg->url);
    struct amqp_connection_info info;
    int rc = parse_url(copy, &info, err, errlen);
    free(copy);
    return rc;
}

/* Digits only (no sign, no space: strtoull would accept both). */
static int parse_u64(const char *s, uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int consumer_offset_parse(const char *text, struct consumer_offset *out)
{
    static const struct {
        const char *name;
        enum consumer_offset_kind kind;
    } names[] = {
        {"first", CONSUMER_OFFSET_FIRST},
        {"last", CONSUMER_OFFSET_LAST},
        {"next", CONSUMER_OFFSET_NEXT},
    };
    struct consumer_offset o = {.kind = CONSUMER_OFFSET_FIRST};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i].name) == 0) {
            o.kind = names[i].kind;
            *out = o;
            return 0;
        }
    }
    if (text[0] == '@') {
        o.kind = CONSUMER_OFFSET_TIMESTAMP;
        if (parse_u64(text + 1, &o.value) != 0)
            return -1;
    } else if (strchr(text, 'T') != NULL) {
        /* RFC 3339 restricted to UTC and whole seconds: the broker's
         * timestamps have a resolution of one second anyway. */
        struct tm tm = {0};
        const char *end = strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (end == NULL || *end != '\0')
            return -1;
        time_t t = timegm(&tm);
        if (t < 0)
            return -1;
        o.kind = CONSUMER_OFFSET_TIMESTAMP;
        o.value = (uint64_t)t;
    } else {
        o.kind = CONSUMER_OFFSET_ABSOLUTE;
        /* The broker reads the position as a signed 64-bit integer. */
        if (parse_u64(text, &o.value) != 0 || o.value > INT64_MAX)
            return -1;
    }
    *out = o;
    return 0;
}

int consumer_max_age_check(const char *text)
{
    /* RabbitMQ's own check: digits, then exactly one unit. */
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || text[digits] == '\0' || strchr("YMDhms", text[digits]) == NULL ||
        text[digits + 1] != '\0')
        return -1;
    if (strspn(text, "0") == digits)
        return -1; /* zero would keep nothing */
    return 0;
}

/* The offset as the log shows it and the option spells it. */
static void format_offset(const struct consumer_offset *o, char *out, size_t outlen)
{
    switch (o->kind) {
    case CONSUMER_OFFSET_FIRST:
        snprintf(out, outlen, "first");
        break;
    case CONSUMER_OFFSET_LAST:
        snprintf(out, outlen, "last");
        break;
    case CONSUMER_OFFSET_NEXT:
        snprintf(out, outlen, "next");
        break;
    case CONSUMER_OFFSET_ABSOLUTE:
        snprintf(out, outlen, "offset %" PRIu64, o->value);
        break;
    case CONSUMER_OFFSET_TIMESTAMP:
        snprintf(out, outlen, "@%" PRIu64, o->value);
        break;
    }
}

/* Describes a failed reply in err, for the log. */
static void describe_reply(amqp_rpc_reply_t r, const char *what, char *err, size_t errlen)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(err, errlen, "%s: ok", what);
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(err, errlen, "%s: no reply", what);
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(err, errlen, "%s: %s", what, amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(err, errlen, "%s: connection closed by the broker: %u %.*s", what,
                     m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(err, errlen, "%s: channel closed by the broker: %u %.*s", what, m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(err, errlen, "%s: unexpected broker method 0x%08x", what,
                     (unsigned)r.reply.id);
        }
        break;
    }
}

static int rpc_ok(amqp_connection_state_t conn, const char *what, char *err, size_t errlen)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    describe_reply(r, what, err, errlen);
    return -1;
}

/*
 * Stream mode: a stream holds only what was published after it was
 * declared, so a stream this service creates has no history to give it.
 * That is an operational mistake (the stream must exist from the day
 * interception starts) worth a warning, but not fatal: the service still
 * works from now on. Returns 0, or -1 with err when the connection failed.
 */
static int warn_if_stream_missing(struct consumer *c, amqp_connection_state_t conn, char *err,
                                  size_t errlen)
{
    amqp_channel_open(conn, PROBE_CHANNEL);
    if (rpc_ok(conn, "channel.open", err, errlen) != 0)
        return -1;
    amqp_queue_declare(conn, PROBE_CHANNEL, amqp_cstring_bytes(c->queue), 1 /* passive */,
                       0 /* durable */, 0 /* exclusive */, 0 /* auto_delete */, amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        r = amqp_channel_close(conn, PROBE_CHANNEL, AMQP_REPLY_SUCCESS);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            describe_reply(r, "channel.close", err, errlen);
            return -1;
        }
        return 0;
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
        ((const amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_FOUND) {
        /* The broker keeps a closed channel until the client confirms. */
        amqp_channel_close_ok_t ok = {0};
        int st = amqp_send_method(conn, PROBE_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        if (st != AMQP_STATUS_OK) {
            snprintf(err, errlen, "channel.close-ok: %s", amqp_error_string2(st));
            return -1;
        }
        log_warn("event feed: stream %s did not exist: creating it now, so it holds no history;"
                 " declare the stream when interception starts",
                 c->queue);
        return 0;
    }
    describe_reply(r, "queue.declare (passive)", err, errlen);
    return -1;
}

/*
 * The arguments of queue.declare, in entries (room for 3): none for a
 * classic queue; for a stream its type and retention. RabbitMQ deletes a
 * stream's oldest segment files once they are all older than x-max-age or
 * once the stream is over x-max-length-bytes; without either it keeps
 * everything.
 */
static amqp_table_t queue_arguments(const struct consumer *c, amqp_table_entry_t *entries)
{
    amqp_table_t args = amqp_empty_table;
    if (!c->stream)
        return args;
    int n = 0;
    entries[n].key = amqp_cstring_bytes("x-queue-type");
    entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[n++].value.value.bytes = amqp_cstring_bytes("stream");
    if (c->max_age != NULL) {
        entries[n].key = amqp_cstring_bytes("x-max-age");
        entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[n++].value.value.bytes = amqp_cstring_bytes(c->max_age);
    }
    if (c->max_bytes > 0) {
        entries[n].key = amqp_cstring_bytes("x-max-length-bytes");
        entries[n].value.kind = AMQP_FIELD_KIND_I64;
        entries[n++].value.value.i64 = (int64_t)c->max_bytes; /* checked <= INT64_MAX */
    }
    args.num_entries = n;
    args.entries = entries;
    return args;
}

/*
 * Where the next stream subscription starts. The first one starts where
 * configured; a later one (after a reconnect) just after the last message
 * handled, because starting again from "first" would replay the history
 * over a model that holds it, rolling quantities back until it caught up
 * (and past the last 8192 ids, de-duplication would not even notice).
 */
static struct consumer_offset start_offset(const struct consumer *c)
{
    struct consumer_offset o = c->offset;
    if (c->last_offset >= 0) {
        o.kind = CONSUMER_OFFSET_ABSOLUTE;
        o.value = (uint64_t)c->last_offset + 1;
    }
    return o;
}

/* The arguments of basic.consume, in *entry: none for a classic queue; for
 * a stream, x-stream-offset. */
static amqp_table_t consume_arguments(const struct consumer *c, amqp_table_entry_t *entry)
{
    amqp_table_t args = amqp_empty_table;
    if (!c->stream)
        return args;
    struct consumer_offset o = start_offset(c);
    entry->key = amqp_cstring_bytes("x-stream-offset");
    switch (o.kind) {
    case CONSUMER_OFFSET_FIRST:
    case CONSUMER_OFFSET_LAST:
    case CONSUMER_OFFSET_NEXT:
        entry->value.kind = AMQP_FIELD_KIND_UTF8;
        entry->value.value.bytes = amqp_cstring_bytes(o.kind == CONSUMER_OFFSET_FIRST  ? "first"
                                                      : o.kind == CONSUMER_OFFSET_LAST ? "last"
                                                                                       : "next");
        break;
    case CONSUMER_OFFSET_ABSOLUTE:
        /* The broker takes a position as a signed 64-bit integer ("long")
         * and a point in time only as an AMQP timestamp: the same number
         * sent as a long would be read as a position. */
        entry->value.kind = AMQP_FIELD_KIND_I64;
        entry->value.value.i64 = (int64_t)o.value;
        break;
    case CONSUMER_OFFSET_TIMESTAMP:
        entry->value.kind = AMQP_FIELD_KIND_TIMESTAMP;
        entry->value.value.u64 = o.value;
        break;
    }
    args.num_entries = 1;
    args.entries = entry;
    return args;
}

/*
 * Connects, logs in, declares the topology and starts consuming. Returns the
 * connection, ready for session_run(), or NULL with err.
 */
static amqp_connection_state_t session_open(struct consumer *c, char *err, size_t errlen)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_connection_state_t ready = NULL;
    if (conn == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    amqp_socket_t *sock = amqp_tcp_socket_new(conn);
    if (sock == NULL) {
        snprintf(err, errlen, "cannot create a socket");
        goto out;
    }
    struct timeval connect_tv = ms_to_timeval(CONNECT_TIMEOUT_MS);
    int st = amqp_socket_open_noblock(sock, c->info.host, c->info.port, &connect_tv);
    if (st != AMQP_STATUS_OK) {
        snprintf(err, errlen, "connect to %s:%d: %s", c->info.host, c->info.port,
                 amqp_error_string2(st));
        goto out;
    }
    /* Without these an unresponsive broker would hold the thread, and
     * with it shutdown, forever. */
    struct timeval rpc_tv = ms_to_timeval(RPC_TIMEOUT_MS);
    amqp_set_handshake_timeout(conn, &rpc_tv);
    amqp_set_rpc_timeout(conn, &rpc_tv);

    amqp_rpc_reply_t r = amqp_login(conn, c->info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, HEARTBEAT_S,
                                    AMQP_SASL_METHOD_PLAIN, c->info.user, c->info.password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        describe_reply(r, "login", err, errlen);
        goto out;
    }
    amqp_channel_open(conn, CHANNEL);
    if (rpc_ok(conn, "channel.open", err, errlen) != 0)
        goto out;

    /* The same arguments as the proxy's publisher: declaring an existing
     * exchange with different ones is a channel error. */
    amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(c->exchange),
                          amqp_cstring_bytes("topic"), 0 /* passive */, 1 /* durable */,
                          0 /* auto_delete */, 0 /* internal */, amqp_empty_table);
    if (rpc_ok(conn, "exchange.declare", err, errlen) != 0)
        goto out;

    if (c->stream && warn_if_stream_missing(c, conn, err, errlen) != 0)
        goto out;

    /* Durable and not exclusive: events published while this service is
     * down wait in the queue instead of being lost. A stream must be
     * durable and not exclusive anyway. */
    amqp_bytes_t queue = amqp_cstring_bytes(c->queue);
    amqp_table_entry_t queue_entries[3];
    amqp_queue_declare(conn, CHANNEL, queue, 0 /* passive */, 1 /* durable */, 0 /* exclusive */,
                       0 /* auto_delete */, queue_arguments(c, queue_entries));
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        describe_reply(r, "queue.declare", err, errlen);
        /* The broker's text names the argument but not the remedy. */
        if (c->stream && r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
            ((const amqp_channel_close_t *)r.reply.decoded)->reply_code ==
                AMQP_PRECONDITION_FAILED) {
            size_t used = strlen(err);
            snprintf(err + used, errlen - used,
                     " (declare the stream with the arguments it already has:"
                     " --stream-max-age, --stream-max-bytes)");
        }
        goto out;
    }
    for (size_t i = 0; i < c->n_bindings; i++) {
        amqp_queue_bind(conn, CHANNEL, queue, amqp_cstring_bytes(c->exchange),
                        amqp_cstring_bytes(c->bindings[i]), amqp_empty_table);
        if (rpc_ok(conn, "queue.bind", err, errlen) != 0)
            goto out;
    }
    /* Bounded prefetch: unacked messages are held in our memory. A stream
     * also refuses consumers without one: its acks are the credit that
     * lets the broker send the next messages. */
    amqp_basic_qos(conn, CHANNEL, 0, PREFETCH, 0);
    if (rpc_ok(conn, "basic.qos", err, errlen) != 0)
        goto out;
    amqp_table_entry_t offset_entry;
    amqp_basic_consume(conn, CHANNEL, queue, amqp_empty_bytes, 0 /* no_local */, 0 /* no_ack */,
                       0 /* exclusive */, consume_arguments(c, &offset_entry));
    if (rpc_ok(conn, "basic.consume", err, errlen) != 0)
        goto out;

    ready = conn;
    conn = NULL;
out:
    if (conn != NULL)
        amqp_destroy_connection(conn);
    return ready;
}

/*
 * The position of a message in a stream, from the x-stream-offset header
 * that RabbitMQ adds to each delivery from a stream. Returns 0, or -1 when
 * there is none (not a stream, or an unexpected type).
 */
static int message_offset(const amqp_basic_properties_t *p, int64_t *out)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return -1;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        static const char key[] = "x-stream-offset";
        if (e->key.len != sizeof(key) - 1 || memcmp(e->key.bytes, key, sizeof(key) - 1) != 0)
            continue;
        switch (e->value.kind) {
        case AMQP_FIELD_KIND_I64:
            if (e->value.value.i64 < 0)
                return -1;
            *out = e->value.value.i64;
            return 0;
        case AMQP_FIELD_KIND_U64:
            if (e->value.value.u64 > INT64_MAX)
                return -1;
            *out = (int64_t)e->value.value.u64;
            return 0;
        default:
            return -1;
        }
    }
    return -1;
}

static void handle_message(struct consumer *c, const amqp_message_t *msg)
{
    struct event ev;
    const char *why = NULL;
    int64_t offset = -1;
    if (c->stream && message_offset(&msg->properties, &offset) == 0) {
        /* The broker starts a subscription at a chunk boundary, so after a
         * resume the first messages can be ones already handled. */
        if (offset <= c->last_offset) {
            log_debug("stream offset %" PRId64 ": already handled, skipped", offset);
            return;
        }
        c->last_offset = offset;
    }
    if (event_decode(&ev, msg->body.bytes, msg->body.len, c->learn_from, &why) != 0) {
        /* Acked and dropped all the same: redelivering a message that can
         * never parse would only loop forever. */
        log_warn("dropping a message that is not a usable event: %s", why);
        model_note_invalid(c->model);
        return;
    }
    enum model_apply_result res = model_apply(c->model, ev.id, ev.ops, ev.n_ops);
    log_debug("event %s: %s", ev.id,
              res == MODEL_APPLY_APPLIED     ? "applied"
              : res == MODEL_APPLY_DUPLICATE ? "duplicate, ignored"
                                             : "nothing to apply");
    event_dispose(&ev);
}

/*
 * A frame other than a delivery arrived. Returns 0 to keep consuming, or -1
 * with err when the broker closed the channel or the connection.
 */
static int handle_other_frame(amqp_connection_state_t conn, char *err, size_t errlen)
{
    amqp_frame_t frame;
    struct timeval tv = ms_to_timeval(POLL_MS);
    int st = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
    if (st == AMQP_STATUS_TIMEOUT)
        return 0;
    if (st != AMQP_STATUS_OK) {
        snprintf(err, errlen, "%s", amqp_error_string2(st));
        return -1;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD)
        return 0;
    switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
        const amqp_channel_close_t *m = frame.payload.method.decoded;
        snprintf(err, errlen, "channel closed by the broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return -1;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
        const amqp_connection_close_t *m = frame.payload.method.decoded;
        snprintf(err, errlen, "connection closed by the broker: %u %.*s", m->reply_code,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        return -1;
    }
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(err, errlen, "the broker cancelled our consumer (queue deleted?)");
        return -1;
    default:
        return 0;
    }
}

/*
 * Consumes until stopped (returns 0) or until the session breaks (returns
 * -1 with err). Each message is applied, then acked.
 */
static int session_run(struct consumer *c, amqp_connection_state_t conn, char *err, size_t errlen)
{
    while (!stopping(c)) {
        amqp_envelope_t env;
        struct timeval tv = ms_to_timeval(POLL_MS);
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            handle_message(c, &env.message);
            int st = amqp_basic_ack(conn, env.channel, env.delivery_tag, 0);
            amqp_destroy_envelope(&env);
            if (st != AMQP_STATUS_OK) {
                snprintf(err, errlen, "basic.ack: %s", amqp_error_string2(st));
                return -1;
            }
            continue;
        }
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            continue;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (handle_other_frame(conn, err, errlen) != 0)
                return -1;
            continue;
        }
        describe_reply(r, "consume", err, errlen);
        return -1;
    }
    return 0;
}

/* Closes the connection; `polite` when it is still healthy. NULL is a no-op. */
static void session_close(amqp_connection_state_t conn, bool polite)
{
    if (conn == NULL)
        return;
    if (polite) {
        /* A broker that stopped answering must not hold up shutdown. */
        struct timeval tv = ms_to_timeval(CLOSE_TIMEOUT_MS);
        amqp_set_rpc_timeout(conn, &tv);
        amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
        amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
}

/* Sleeps for ms, or less when consumer_stop() is called meanwhile. */
static void backoff_sleep(struct consumer *c, unsigned ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->lock);
    while (!stopping(c)) {
        if (pthread_cond_timedwait(&c->wake, &c->lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&c->lock);
}

static void log_subscribed(const struct consumer *c)
{
    if (!c->stream) {
        log_info("event feed: consuming queue %s bound to exchange %s (%zu keys)", c->queue,
                 c->exchange, c->n_bindings);
        return;
    }
    char from[64];
    struct consumer_offset o = start_offset(c);
    format_offset(&o, from, sizeof(from));
    log_info("event feed: reading stream %s from %s, bound to exchange %s (%zu keys)", c->queue,
             from, c->exchange, c->n_bindings);
}

static void *consumer_main(void *arg)
{
    struct consumer *c = arg;
    unsigned backoff_ms = BACKOFF_MIN_MS;
    char err[512];

    while (!stopping(c)) {
        amqp_connection_state_t conn = session_open(c, err, sizeof(err));
        if (conn == NULL) {
            if (stopping(c))
                break;
            log_warn("event feed: %s; retrying in %u ms", err, backoff_ms);
        } else {
            log_subscribed(c);
            backoff_ms = BACKOFF_MIN_MS;
            model_set_feed_connected(c->model, 1);
            int rc = session_run(c, conn, err, sizeof(err));
            model_set_feed_connected(c->model, 0);
            session_close(conn, rc == 0);
            if (rc == 0)
                break;
            log_warn("event feed lost: %s; reconnecting in %u ms", err, backoff_ms);
        }
        backoff_sleep(c, backoff_ms);
        backoff_ms = backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2;
    }
    return NULL;
}

static void consumer_free(struct consumer *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_bindings; i++)
        free(c->bindings[i]);
    free(c->bindings);
    free(c->url_buf);
    free(c->exchange);
    free(c->queue);
    free(c->learn_from);
    free(c->max_age);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

struct consumer *consumer_start(const struct consumer_config *cfg, struct model *m)
{
    struct consumer *c = mem_calloc(1, sizeof(*c));
    struct consumer *started = NULL;
    char err[256];

    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&c->stop, false);

    c->url_buf = mem_strdup(cfg->url);
    if (parse_url(c->url_buf, &c->info, err, sizeof(err)) != 0) {
        log_error("--amqp %s: %s", cfg->url, err);
        goto out;
    }
    c->exchange = mem_strdup(cfg->exchange);
    c->queue = mem_strdup(cfg->queue);
    c->learn_from = mem_strdup(cfg->learn_from);
    c->bindings = mem_calloc(cfg->n_bindings ? cfg->n_bindings : 1, sizeof(*c->bindings));
    for (size_t i = 0; i < cfg->n_bindings; i++)
        c->bindings[i] = mem_strdup(cfg->bindings[i]);
    c->n_bindings = cfg->n_bindings;
    c->model = m;
    c->stream = cfg->stream;
    c->offset = cfg->offset;
    c->max_age = cfg->max_age != NULL ? mem_strdup(cfg->max_age) : NULL;
    c->max_bytes = cfg->max_bytes;
    /* Starting at position V is resuming after V - 1, and the same
     * filter then drops anything before V that a chunk boundary brings. */
    c->last_offset = -1;
    if (c->stream && c->offset.kind == CONSUMER_OFFSET_ABSOLUTE)
        c->last_offset = (int64_t)c->offset.value - 1;

    /* Signals belong to the event loop (libevent turns them into events
     * there); the new thread inherits this mask and never sees them. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&c->thread, NULL, consumer_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_error("cannot start the consumer thread: %s", strerror(rc));
        goto out;
    }

    started = c;
    c = NULL;
out:
    consumer_free(c);
    return started;
}

void consumer_stop(struct consumer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    atomic_store(&c->stop, true);
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    consumer_free(c);
}
