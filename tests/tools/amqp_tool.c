/*
 * amqp-tool: declares queues, binds them and reads events back, so the
 * end-to-end tests and the demo can check what reached RabbitMQ.
 *
 *   amqp-tool URL declare QUEUE [--exchange EX] [--bind KEY]...
 *                               [--stream [--max-age AGE] [--max-bytes N]]
 *   amqp-tool URL consume QUEUE [--count N] [--timeout-ms T] [--offset OFFSET]
 *   amqp-tool URL purge QUEUE
 *   amqp-tool URL delete QUEUE
 *
 * `declare` declares the exchange exactly as the publisher does (durable
 * topic), then the queue (durable; a stream with --stream, with x-max-age
 * and x-max-length-bytes when given) and binds it with each key.
 * `consume` prints one JSON line per message and acks it:
 *   {"routing_key", "exchange", ["stream_offset",] "properties":
 *    {"content_type", "delivery_mode", "message_id", "type", "timestamp",
 *    "app_id"}, "body": <the body as JSON if it is JSON, else a string>}
 * and stops after N messages or when none came for T ms (default 3000).
 * `stream_offset` is there only for a message read from a stream: its
 * position. --offset (x-stream-offset, for a stream) is first, last, next,
 * a position, YYYY-MM-DDTHH:MM:SSZ or @SECONDS since the epoch.
 *
 * Exit status: 0 done, 1 a broker or connection error, 2 a usage error.
 */
#include "common/buf.h"
#include "common/jsonw.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <json-c/json.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define CHANNEL            1
#define DEFAULT_EXCHANGE   "strangler.events"
#define DEFAULT_TIMEOUT_MS 3000ul
#define CONNECT_TIMEOUT_S  5
#define RPC_TIMEOUT_S      10
#define MAX_BINDS          64

enum tool_status {
    TOOL_OK = 0,
    TOOL_ERROR = 1,
    TOOL_USAGE = 2,
};

struct options {
    const char *url;
    const char *command;
    const char *queue;
    const char *exchange;
    const char *binds[MAX_BINDS];
    int nbinds;
    int stream;
    const char *max_age;     /* NULL: no x-max-age */
    unsigned long max_bytes; /* 0: no x-max-length-bytes */
    unsigned long count;     /* 0: no limit */
    unsigned long timeout_ms;
    const char *offset;              /* NULL: no x-stream-offset */
    amqp_field_value_t offset_value; /* offset as the broker reads it */
};

static const char usage_text[] =
    "usage: amqp-tool URL declare QUEUE [--exchange EX] [--bind KEY]...\n"
    "                                   [--stream [--max-age AGE] [--max-bytes N]]\n"
    "       amqp-tool URL consume QUEUE [--count N] [--timeout-ms T] [--offset OFFSET]\n"
    "       amqp-tool URL purge QUEUE\n"
    "       amqp-tool URL delete QUEUE\n"
    "\n"
    "URL is amqp://user:pass@host:port/vhost. declare makes the exchange "
    "(default\n" DEFAULT_EXCHANGE ") a durable topic exchange, the queue durable (a stream with\n"
    "--stream, with x-max-age AGE such as 30D and x-max-length-bytes N when given),\n"
    "and binds it with each KEY. consume prints one JSON line per message and acks\n"
    "it; it stops after N messages, or when none arrived for T ms (3000). OFFSET\n"
    "(x-stream-offset, for a stream) is first, last, next, a position,\n"
    "YYYY-MM-DDTHH:MM:SSZ or @SECONDS.\n";

static int usage(const char *problem)
{
    if (problem != NULL)
        fprintf(stderr, "amqp-tool: %s\n", problem);
    fputs(usage_text, stderr);
    return TOOL_USAGE;
}

/* ---- arguments ---- */

static int parse_ulong(const char *s, unsigned long *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* x-max-age as RabbitMQ accepts it: digits and one unit ("30D"). */
static int valid_max_age(const char *s)
{
    size_t digits = strspn(s, "0123456789");
    return digits > 0 && s[digits] != '\0' && strchr("YMDhms", s[digits]) != NULL &&
           s[digits + 1] == '\0';
}

/*
 * x-stream-offset as the broker reads it: "first", "last" and "next" as
 * strings, a position as a long, a point in time only as an AMQP timestamp
 * (the same number as a long would be a position). Returns 0, or -1.
 */
static int parse_offset(const char *s, amqp_field_value_t *out)
{
    unsigned long v;
    if (strcmp(s, "first") == 0 || strcmp(s, "last") == 0 || strcmp(s, "next") == 0) {
        out->kind = AMQP_FIELD_KIND_UTF8;
        out->value.bytes = amqp_cstring_bytes(s);
    } else if (s[0] == '@' && parse_ulong(s + 1, &v) == 0) {
        out->kind = AMQP_FIELD_KIND_TIMESTAMP;
        out->value.u64 = v;
    } else if (strchr(s, 'T') != NULL) {
        struct tm tm = {0};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        time_t t = end != NULL && *end == '\0' ? timegm(&tm) : -1;
        if (t < 0)
            return -1;
        out->kind = AMQP_FIELD_KIND_TIMESTAMP;
        out->value.u64 = (uint64_t)t;
    } else if (parse_ulong(s, &v) == 0 && v <= INT64_MAX) {
        out->kind = AMQP_FIELD_KIND_I64;
        out->value.i64 = (int64_t)v;
    } else {
        return -1;
    }
    return 0;
}

/* Options valid for the command; returns 0, or -1 after printing usage. */
static int parse_option(struct options *o, int argc, char **argv, int *i)
{
    const char *opt = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    int declare = strcmp(o->command, "declare") == 0;
    int consume = strcmp(o->command, "consume") == 0;

    if (declare && strcmp(opt, "--stream") == 0) {
        o->stream = 1;
        return 0;
    }
    if (val == NULL) {
        fprintf(stderr, "amqp-tool: %s needs a value\n", opt);
        return -1;
    }
    (*i)++;
    int ok = 1;
    if (declare && strcmp(opt, "--exchange") == 0 && *val != '\0')
        o->exchange = val;
    else if (declare && strcmp(opt, "--bind") == 0 && o->nbinds < MAX_BINDS)
        o->binds[o->nbinds++] = val;
    else if (consume && strcmp(opt, "--count") == 0)
        ok = parse_ulong(val, &o->count) == 0;
    else if (consume && strcmp(opt, "--timeout-ms") == 0)
        ok = parse_ulong(val, &o->timeout_ms) == 0;
    else if (declare && strcmp(opt, "--max-age") == 0 && valid_max_age(val))
        o->max_age = val;
    else if (declare && strcmp(opt, "--max-bytes") == 0)
        ok = parse_ulong(val, &o->max_bytes) == 0 && o->max_bytes > 0 && o->max_bytes <= INT64_MAX;
    else if (consume && strcmp(opt, "--offset") == 0 && parse_offset(val, &o->offset_value) == 0)
        o->offset = val;
    else
        ok = 0;
    if (!ok) {
        fprintf(stderr, "amqp-tool: %s %s: unknown option or bad value for %s\n", opt, val,
                o->command);
        return -1;
    }
    return 0;
}

static int parse_args(struct options *o, int argc, char **argv)
{
    static const char *const commands[] = {"declare", "consume", "purge", "delete"};
    int known = 0;
    memset(o, 0, sizeof(*o));
    o->exchange = DEFAULT_EXCHANGE;
    o->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (argc < 4)
        return -1;
    o->url = argv[1];
    o->command = argv[2];
    o->queue = argv[3];
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        known |= strcmp(o->command, commands[k]) == 0;
    if (!known) {
        fprintf(stderr, "amqp-tool: unknown command %s\n", o->command);
        return -1;
    }
    for (int i = 4; i < argc; i++)
        if (parse_option(o, argc, argv, &i) < 0)
            return -1;
    if (!o->stream && (o->max_age != NULL || o->max_bytes > 0)) {
        fprintf(stderr, "amqp-tool: --max-age and --max-bytes are for a stream (--stream)\n");
        return -1;
    }
    return 0;
}

/* ---- connection ---- */

static int check_reply(amqp_rpc_reply_t r, const char *what)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        fprintf(stderr, "amqp-tool: %s: %s\n", what, amqp_error_string2(r.library_error));
        return -1;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            fprintf(stderr, "amqp-tool: %s: broker closed the connection: %u %.*s\n", what,
                    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            fprintf(stderr, "amqp-tool: %s: broker closed the channel: %u %.*s\n", what,
                    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            fprintf(stderr, "amqp-tool: %s: unexpected method 0x%08x\n", what, r.reply.id);
        }
        return -1;
    default:
        fprintf(stderr, "amqp-tool: %s: no reply\n", what);
        return -1;
    }
}

/* Connects, logs in and opens channel 1. Returns the connection (the
 * caller destroys it), or NULL after printing why; never prints the
 * password. */
static amqp_connection_state_t tool_connect(const char *url)
{
    struct amqp_connection_info info;
    struct timeval connect_tv = {CONNECT_TIMEOUT_S, 0}, rpc_tv = {RPC_TIMEOUT_S, 0};
    char *copy = strdup(url);
    amqp_connection_state_t conn = NULL;
    amqp_connection_state_t out = NULL;

    if (copy == NULL || amqp_parse_url(copy, &info) != AMQP_STATUS_OK) {
        fprintf(stderr, "amqp-tool: invalid URL (expected amqp://user:pass@host:port/vhost)\n");
        goto done;
    }
    conn = amqp_new_connection();
    amqp_socket_t *sock = conn != NULL ? amqp_tcp_socket_new(conn) : NULL;
    if (sock == NULL) {
        fprintf(stderr, "amqp-tool: out of memory\n");
        goto done;
    }
    int rc = amqp_socket_open_noblock(sock, info.host, info.port, &connect_tv);
    if (rc != AMQP_STATUS_OK) {
        fprintf(stderr, "amqp-tool: connecting to %s:%d: %s\n", info.host, info.port,
                amqp_error_string2(rc));
        goto done;
    }
    amqp_set_handshake_timeout(conn, &rpc_tv);
    amqp_set_rpc_timeout(conn, &rpc_tv);
    if (check_reply(amqp_login(conn, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0,
                               AMQP_SASL_METHOD_PLAIN, info.user, info.password),
                    "login") < 0)
        goto done;
    amqp_channel_open(conn, CHANNEL);
    if (check_reply(amqp_get_rpc_reply(conn), "channel.open") < 0)
        goto done;
    out = conn;
    conn = NULL;
done:
    if (conn != NULL)
        amqp_destroy_connection(conn);
    free(copy);
    return out;
}

static void tool_close(amqp_connection_state_t conn)
{
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

/* ---- commands ---- */

static int cmd_declare(amqp_connection_state_t conn, const struct options *o)
{
    amqp_table_entry_t stream_args[3];
    amqp_table_t args = amqp_empty_table;
    if (o->stream) {
        int n = 0;
        stream_args[n].key = amqp_cstring_bytes("x-queue-type");
        stream_args[n].value.kind = AMQP_FIELD_KIND_UTF8;
        stream_args[n++].value.value.bytes = amqp_cstring_bytes("stream");
        if (o->max_age != NULL) {
            stream_args[n].key = amqp_cstring_bytes("x-max-age");
            stream_args[n].value.kind = AMQP_FIELD_KIND_UTF8;
            stream_args[n++].value.value.bytes = amqp_cstring_bytes(o->max_age);
        }
        if (o->max_bytes > 0) {
            /* The same type as stock-service sends: the broker compares
             * re-declarations by type class and value. */
            stream_args[n].key = amqp_cstring_bytes("x-max-length-bytes");
            stream_args[n].value.kind = AMQP_FIELD_KIND_I64;
            stream_args[n++].value.value.i64 = (int64_t)o->max_bytes;
        }
        args.num_entries = n;
        args.entries = stream_args;
    }
    /* The same arguments as the publisher, so either may declare first. */
    amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(o->exchange),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    if (check_reply(amqp_get_rpc_reply(conn), "exchange.declare") < 0)
        return TOOL_ERROR;
    amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(o->queue), 0, 1, 0, 0, args);
    if (check_reply(amqp_get_rpc_reply(conn), "queue.declare") < 0)
        return TOOL_ERROR;
    for (int i = 0; i < o->nbinds; i++) {
        amqp_queue_bind(conn, CHANNEL, amqp_cstring_bytes(o->queue),
                        amqp_cstring_bytes(o->exchange), amqp_cstring_bytes(o->binds[i]),
                        amqp_empty_table);
        if (check_reply(amqp_get_rpc_reply(conn), "queue.bind") < 0)
            return TOOL_ERROR;
    }
    return TOOL_OK;
}

static int cmd_purge(amqp_connection_state_t conn, const struct options *o)
{
    amqp_queue_purge(conn, CHANNEL, amqp_cstring_bytes(o->queue));
    return check_reply(amqp_get_rpc_reply(conn), "queue.purge") < 0 ? TOOL_ERROR : TOOL_OK;
}

static int cmd_delete(amqp_connection_state_t conn, const struct options *o)
{
    amqp_queue_delete(conn, CHANNEL, amqp_cstring_bytes(o->queue), 0, 0);
    return check_reply(amqp_get_rpc_reply(conn), "queue.delete") < 0 ? TOOL_ERROR : TOOL_OK;
}

/* ---- consume: printing ---- */

static void put_bytes(struct buf *b, amqp_bytes_t v)
{
    jsonw_string(b, v.bytes != NULL ? v.bytes : "", v.len);
}

static void put_prop(struct buf *b, const char *name, int set, amqp_bytes_t v, int first)
{
    if (!first)
        buf_append_char(b, ',');
    jsonw_cstring(b, name);
    buf_append_char(b, ':');
    if (set)
        put_bytes(b, v);
    else
        buf_append_str(b, "null");
}

static void put_properties(struct buf *b, const amqp_basic_properties_t *p)
{
    amqp_flags_t f = p->_flags;
    buf_append_str(b, "{");
    put_prop(b, "content_type", f & AMQP_BASIC_CONTENT_TYPE_FLAG, p->content_type, 1);
    buf_append_str(b, ",\"delivery_mode\":");
    if (f & AMQP_BASIC_DELIVERY_MODE_FLAG)
        buf_append_u64(b, p->delivery_mode);
    else
        buf_append_str(b, "null");
    put_prop(b, "message_id", f & AMQP_BASIC_MESSAGE_ID_FLAG, p->message_id, 0);
    put_prop(b, "type", f & AMQP_BASIC_TYPE_FLAG, p->type, 0);
    buf_append_str(b, ",\"timestamp\":");
    if (f & AMQP_BASIC_TIMESTAMP_FLAG)
        buf_append_u64(b, p->timestamp);
    else
        buf_append_str(b, "null");
    put_prop(b, "app_id", f & AMQP_BASIC_APP_ID_FLAG, p->app_id, 0);
    buf_append_char(b, '}');
}

/*
 * The body as JSON when it is JSON (strict RFC 8259, the whole body), else
 * as a string. Valid JSON on one line is copied as it is, keeping number
 * spellings and member order byte for byte; JSON spread over several lines
 * is re-serialised so the output stays one line per message.
 */
static void put_body(struct buf *b, amqp_bytes_t body)
{
    const char *text = body.bytes != NULL ? body.bytes : "";
    size_t len = body.len;
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\n' || text[len - 1] == '\r' ||
                       text[len - 1] == '\t'))
        len--;
    json_tokener *tok = json_tokener_new();
    json_object *o = NULL;
    if (tok != NULL && len > 0 && len < (size_t)INT32_MAX) {
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, text, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != len) {
            json_object_put(o);
            o = NULL;
        }
    }
    if (o == NULL)
        jsonw_string(b, text, body.len);
    else if (memchr(text, '\n', len) == NULL && memchr(text, '\r', len) == NULL)
        buf_append(b, text, len);
    else
        buf_append_str(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    if (tok != NULL)
        json_tokener_free(tok);
}

/* The x-stream-offset header RabbitMQ adds to a message read from a
 * stream (its position). Returns 0, or -1 when there is none. */
static int stream_offset(const amqp_basic_properties_t *p, uint64_t *out)
{
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return -1;
    for (int i = 0; i < p->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &p->headers.entries[i];
        if (e->key.len != strlen("x-stream-offset") ||
            memcmp(e->key.bytes, "x-stream-offset", e->key.len) != 0)
            continue;
        if (e->value.kind == AMQP_FIELD_KIND_I64 && e->value.value.i64 >= 0) {
            *out = (uint64_t)e->value.value.i64;
            return 0;
        }
        if (e->value.kind == AMQP_FIELD_KIND_U64) {
            *out = e->value.value.u64;
            return 0;
        }
        return -1;
    }
    return -1;
}

static void print_envelope(const amqp_envelope_t *env)
{
    struct buf b = BUF_INIT;
    uint64_t offset;
    buf_append_str(&b, "{\"routing_key\":");
    put_bytes(&b, env->routing_key);
    buf_append_str(&b, ",\"exchange\":");
    put_bytes(&b, env->exchange);
    if (stream_offset(&env->message.properties, &offset) == 0) {
        buf_append_str(&b, ",\"stream_offset\":");
        buf_append_u64(&b, offset);
    }
    buf_append_str(&b, ",\"properties\":");
    put_properties(&b, &env->message.properties);
    buf_append_str(&b, ",\"body\":");
    put_body(&b, env->message.body);
    buf_append_str(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout); /* a test may read lines while we wait for more */
    buf_dispose(&b);
}

/* ---- consume: the loop ---- */

/* A method other than basic.deliver arrived on the consumer's connection.
 * Returns 0 to carry on, or -1 (after printing why) to stop. */
static int unexpected_frame(amqp_connection_state_t conn)
{
    amqp_frame_t f;
    struct timeval tv = {1, 0};
    if (amqp_simple_wait_frame_noblock(conn, &f, &tv) != AMQP_STATUS_OK)
        return 0;
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0;
    amqp_rpc_reply_t r = {AMQP_RESPONSE_SERVER_EXCEPTION, f.payload.method, 0};
    switch (f.payload.method.id) {
    case AMQP_BASIC_CANCEL_METHOD:
        fprintf(stderr, "amqp-tool: the broker cancelled the consumer (queue deleted?)\n");
        return -1;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        check_reply(r, "consume");
        return -1;
    default:
        return 0;
    }
}

static int start_consumer(amqp_connection_state_t conn, const struct options *o)
{
    amqp_table_entry_t offset_arg;
    amqp_table_t args = amqp_empty_table;
    /* A stream queue refuses consumers without a prefetch limit. */
    uint16_t prefetch = o->count > 0 && o->count < 1000 ? (uint16_t)o->count : 1000;
    amqp_basic_qos(conn, CHANNEL, 0, prefetch, 0);
    if (check_reply(amqp_get_rpc_reply(conn), "basic.qos") < 0)
        return -1;
    if (o->offset != NULL) {
        offset_arg.key = amqp_cstring_bytes("x-stream-offset");
        offset_arg.value = o->offset_value;
        args.num_entries = 1;
        args.entries = &offset_arg;
    }
    amqp_basic_consume(conn, CHANNEL, amqp_cstring_bytes(o->queue), amqp_empty_bytes, 0, 0, 0,
                       args);
    return check_reply(amqp_get_rpc_reply(conn), "basic.consume");
}

static int cmd_consume(amqp_connection_state_t conn, const struct options *o)
{
    unsigned long received = 0;
    if (start_consumer(conn, o) < 0)
        return TOOL_ERROR;
    while (o->count == 0 || received < o->count) {
        struct timeval tv = {(time_t)(o->timeout_ms / 1000),
                             (suseconds_t)(o->timeout_ms % 1000) * 1000};
        amqp_envelope_t env;
        amqp_maybe_release_buffers(conn);
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            break; /* quiet for timeout_ms: done */
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            if (unexpected_frame(conn) < 0)
                return TOOL_ERROR;
            continue;
        }
        if (check_reply(r, "consume") < 0)
            return TOOL_ERROR;
        print_envelope(&env);
        int rc = amqp_basic_ack(conn, CHANNEL, env.delivery_tag, 0);
        amqp_destroy_envelope(&env);
        if (rc != AMQP_STATUS_OK) {
            fprintf(stderr, "amqp-tool: basic.ack: %s\n", amqp_error_string2(rc));
            return TOOL_ERROR;
        }
        received++;
    }
    return TOOL_OK;
}

int main(int argc, char **argv)
{
    struct options o;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return TOOL_OK;
        }
    if (parse_args(&o, argc, argv) < 0)
        return usage(argc < 4 ? "missing arguments" : NULL);

    amqp_connection_state_t conn = tool_connect(o.url);
    if (conn == NULL)
        return TOOL_ERROR;
    int rc;
    if (strcmp(o.command, "declare") == 0)
        rc = cmd_declare(conn, &o);
    else if (strcmp(o.command, "consume") == 0)
        rc = cmd_consume(conn, &o);
    else if (strcmp(o.command, "purge") == 0)
        rc = cmd_purge(conn, &o);
    else
        rc = cmd_delete(conn, &o);
    tool_close(conn);
    return rc;
}
