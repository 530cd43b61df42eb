/*
 * publisher: one thread, one AMQP connection, events from the spool to
 * RabbitMQ with publisher confirms (see publisher.h for the contract).
 *
 * rabbitmq-c 0.11 has no confirm helper and services heartbeats only inside
 * its own calls (FIELD-NOTES.md), so this file runs the loop itself:
 *
 *     publish from the cursor while the window has room and we are not
 *     blocked -> poll(socket, spool eventfd, wake eventfd) with a timeout of
 *     at most a third of the heartbeat -> read every frame that is there
 *     without blocking (acks, nacks, returns, closes, blocked/unblocked) ->
 *     hand the spool the highest seq below which everything is acked, at
 *     most every CONFIRM_EVERY_NS.
 *
 * Delivery tags are per channel and restart at 1 on every connection, so the
 * window is a ring indexed by tag % window holding each message's spool seq.
 * Anything that goes wrong with the connection (socket error, nack, a close
 * from the broker) ends the session; the next one starts the cursor again
 * at the spool's confirmed seq, republishing whatever was not confirmed
 * (consumers de-duplicate by event id).
 *
 * Nothing in rabbitmq-c can be interrupted from another thread, and
 * amqp_basic_publish() can block forever on a socket the broker stopped
 * reading. So the TCP connect is ours (non-blocking, polled together with
 * the wake eventfd), and publisher_stop() keeps a dup() of the connected
 * socket that it can shutdown(2): that wakes any call blocked inside the
 * library, which is what makes stop bounded whatever the broker does.
 */
#include "interceptors/publisher.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL             1
#define DEFAULT_EXCHANGE    "strangler.events"
#define DEFAULT_WINDOW      1000u
#define DEFAULT_HEARTBEAT_S 30u
#define DEFAULT_CONNECT_MS  5000u
#define DEFAULT_BACKOFF_MS  10000u
#define BACKOFF_MIN_MS      100u
#define FRAME_MAX           131072
#define CONTENT_TYPE        "application/cloudevents+json"
#define APP_ID              "strangler"
#define SHORTSTR_MAX        255u
#define MS                  1000000ull /* nanoseconds */
/* The checkpoint is fsynced on every spool_confirm(); at 20k events/s this
 * keeps it to 20 fsyncs a second and bounds what a crash republishes. */
#define CONFIRM_EVERY_NS (50 * MS)
/* After a failed checkpoint write (full disk): retry, but not 20 times a
 * second with an error line each time. */
#define CONFIRM_RETRY_NS (1000 * MS)

/* How long after a wake for appends the next one may come (listen_to_spool). */
#define SPOOL_LINGER_NS (1 * MS)
/* At most one line a minute about events the broker returned unroutable. */
#define RETURN_LOG_GAP_NS (60000 * MS)
/* Closing politely must not eat publisher_stop()'s budget. */
#define CLOSE_TIMEOUT_MS 250u
/* How long publisher_stop() waits past the drain deadline before it pulls
 * the socket out from under a thread stuck inside rabbitmq-c. */
#define STOP_GRACE_MS 750u

struct publisher {
    /* Configuration: written by publisher_start(), read-only afterwards. */
    char *url_buf; /* parsed copy of the URL; info's strings point into it */
    struct amqp_connection_info info;
    char *display; /* the URL without the password: the only form logged */
    char *exchange;
    unsigned window, heartbeat_s, connect_timeout_ms, backoff_max_ms;
    struct spool *spool;

    pthread_t thread;
    int wake_fd; /* eventfd written once by publisher_stop(), never drained */
    atomic_int stopping;
    _Atomic uint64_t drain_deadline_ns;

    /* Shared between the thread and publisher_stop(), under `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t exited_cond; /* signalled when `exited` becomes 1 */
    int exited;
    int kick_fd;     /* dup() of the broker socket, -1 without one */
    int established; /* the session reached its publish loop */

    /* Statistics: written by the thread, read by anyone. */
    atomic_int connected, blocked;
    _Atomic uint64_t published, confirmed, nacked, returned, reconnects;
    uint64_t returns_logged; /* the publisher thread's own: rate-limits the log */
    uint64_t next_return_log_ns;
};

/* One unconfirmed message: its spool seq, and whether it was acked out of
 * order (before everything below it). */
struct inflight {
    uint64_t seq;
    int acked;
};

/* One connection's worth of state; the publisher thread's alone. */
struct session {
    struct publisher *p;
    amqp_connection_state_t conn;
    int fd; /* the socket, owned by conn once handed over */
    struct spool_cursor *cursor;
    struct inflight *ring;    /* window slots, indexed by tag % window */
    uint64_t published_tag;   /* last delivery tag used; tags start at 1 */
    uint64_t acked_tag;       /* every tag <= acked_tag is acked */
    uint64_t acked_seq;       /* spool seq of acked_tag: safe to confirm */
    uint64_t last_seq;        /* spool seq of the last message published */
    uint64_t confirmed_seq;   /* what the spool was last told */
    uint64_t next_confirm_ns; /* no spool_confirm() before this, unless forced */
    uint64_t last_rx_ns;      /* when the broker last sent us anything */
    uint64_t cursor_retry_ns; /* after a spool read error: when to retry */
    int caught_up;            /* the cursor had nothing at the last read */
    uint64_t spool_listen_ns; /* no wake for appends before this (listen_to_spool) */
    int blocked;              /* connection.blocked in force */
    int logged_in;            /* a connection.close is owed on the way out */
    int broken;               /* the socket is unusable: just drop it */
    int got_ack;              /* the broker confirmed something this session */
    int warned_clip;
};

/* ---- small helpers ---- */

static const char *errstr(int e, char *tmp, size_t len)
{
    return strerror_r(e, tmp, len); /* the GNU variant: returns the text */
}

static int stopping(const struct publisher *p)
{
    return atomic_load(&p->stopping);
}

static struct timeval ms_to_tv(unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static int ms_until(uint64_t deadline_ns, uint64_t now_ns)
{
    if (deadline_ns <= now_ns)
        return 0;
    uint64_t ms = (deadline_ns - now_ns + MS - 1) / MS;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* An AMQP short string (routing key, message id, type) holds 255 bytes at
 * most; rabbitmq-c would fail the encoding halfway through a publish. The
 * interceptor refuses longer ones, so this only guards old spools. */
static amqp_bytes_t shortstr(struct session *ss, const char *s)
{
    amqp_bytes_t b = amqp_cstring_bytes(s);
    if (b.len > SHORTSTR_MAX) {
        if (!ss->warned_clip)
            log_warn("publisher %s: clipping a %zu-byte AMQP short string to %u bytes",
                     ss->p->display, b.len, SHORTSTR_MAX);
        ss->warned_clip = 1;
        b.len = SHORTSTR_MAX;
    }
    return b;
}

static void describe_reply(amqp_rpc_reply_t r, char *out, size_t len)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(out, len, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(out, len, "no reply");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(out, len, "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(out, len, "broker closed the connection: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(out, len, "broker closed the channel: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(out, len, "unexpected method 0x%08x", r.reply.id);
        }
        break;
    }
}

/* ---- closes from the broker ---- */

/* connection.close: answer close-ok (AMQP 0-9-1 §1.4.2.5) and drop the
 * connection without closing it again. */
static void answer_connection_close(struct session *ss)
{
    amqp_connection_close_ok_t ok = {0};
    amqp_send_method(ss->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    ss->logged_in = 0;
}

/* channel.close: answer close-ok; the connection itself stays usable and is
 * closed politely on the way out. */
static void answer_channel_close(struct session *ss, amqp_channel_t channel)
{
    amqp_channel_close_ok_t ok = {0};
    if (amqp_send_method(ss->conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != AMQP_STATUS_OK)
        ss->broken = 1;
}

/* Checks the reply of the last RPC; on failure logs it, answers a close
 * from the broker, and returns -1. */
static int check_reply(struct session *ss, amqp_rpc_reply_t r, const char *step)
{
    char why[320];
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    describe_reply(r, why, sizeof(why));
    if (!stopping(ss->p))
        log_warn("publisher %s: %s: %s", ss->p->display, step, why);
    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION)
        ss->broken = 1;
    else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
        answer_connection_close(ss);
    else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
        answer_channel_close(ss, CHANNEL);
    return -1;
}

/* ---- connecting ---- */

/*
 * Socket options. rabbitmq-c keeps the socket non-blocking and waits in
 * poll(2), so SO_SNDTIMEO/SO_RCVTIMEO only matter if it is ever switched to
 * blocking; what bounds a write to a broker that vanished is
 * TCP_USER_TIMEOUT (unacknowledged data) and keepalive (an idle link).
 */
static void tune_socket(int fd, unsigned heartbeat_s)
{
    int one = 1;
    unsigned hb = heartbeat_s > 0 ? heartbeat_s : DEFAULT_HEARTBEAT_S;
    int idle = (int)hb, intvl = (int)(hb / 3 > 0 ? hb / 3 : 1), cnt = 3;
    unsigned user_timeout_ms = 2 * hb * 1000;
    struct timeval tv = ms_to_tv(2 * hb * 1000);

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Waits for a non-blocking connect to finish, or for publisher_stop().
 * Returns 0, or -1 with errno (ETIMEDOUT, ECANCELED, the connect error). */
static int connect_wait(struct publisher *p, int fd, uint64_t deadline_ns)
{
    struct pollfd pfd[2] = {{fd, POLLOUT, 0}, {p->wake_fd, POLLIN, 0}};
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    for (;;) {
        if (stopping(p)) {
            errno = ECANCELED;
            return -1;
        }
        int n = poll(pfd, 2, ms_until(deadline_ns, clock_monotonic_ns()));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (pfd[0].revents != 0)
            break;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -1;
    if (soerr != 0) {
        errno = soerr;
        return -1;
    }
    return 0;
}

/* Connects to the broker within connect_timeout_ms, trying each address.
 * Returns the socket (non-blocking), or -1 after logging why. */
static int tcp_connect(struct publisher *p)
{
    struct addrinfo hints, *res = NULL;
    char port[16], tmp[128];
    int fd = -1, e = 0;
    uint64_t deadline = clock_monotonic_ns() + (uint64_t)p->connect_timeout_ms * MS;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", p->info.port);
    int gai = getaddrinfo(p->info.host, port, &hints, &res);
    if (gai != 0) {
        log_warn("publisher %s: cannot resolve %s: %s", p->display, p->info.host,
                 gai_strerror(gai));
        goto out;
    }
    for (struct addrinfo *ai = res; ai != NULL && fd < 0 && !stopping(p); ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && connect_wait(p, fd, deadline) == 0))
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0 && !stopping(p))
        log_warn("publisher %s: cannot connect: %s", p->display, errstr(e, tmp, sizeof(tmp)));
out:
    if (res != NULL)
        freeaddrinfo(res);
    return fd;
}

/* Lets publisher_stop() reach the socket; see the file comment. */
static void set_kick_fd(struct publisher *p, int fd)
{
    pthread_mutex_lock(&p->lock);
    if (p->kick_fd >= 0)
        close(p->kick_fd);
    p->kick_fd = fd >= 0 ? dup(fd) : -1;
    if (fd < 0)
        p->established = 0;
    pthread_mutex_unlock(&p->lock);
}

static amqp_rpc_reply_t login(struct session *ss)
{
    struct publisher *p = ss->p;
    /* Capabilities the broker only uses for clients that announce them
     * (connection.blocked in particular, FIELD-NOTES.md). */
    amqp_table_entry_t caps[3];
    caps[0].key = amqp_cstring_bytes("publisher_confirms");
    caps[1].key = amqp_cstring_bytes("connection.blocked");
    caps[2].key = amqp_cstring_bytes("consumer_cancel_notify");
    for (int i = 0; i < 3; i++) {
        caps[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        caps[i].value.value.boolean = 1;
    }
    amqp_table_entry_t props[2];
    props[0].key = amqp_cstring_bytes("capabilities");
    props[0].value.kind = AMQP_FIELD_KIND_TABLE;
    props[0].value.value.table = (amqp_table_t){3, caps};
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes("strangler publisher");
    amqp_table_t table = {2, props};

    return amqp_login_with_properties(ss->conn, p->info.vhost, 0, FRAME_MAX, (int)p->heartbeat_s,
                                      &table, AMQP_SASL_METHOD_PLAIN, p->info.user,
                                      p->info.password);
}

/* Channel 1 in confirm mode, and the exchange (durable topic; declaring it
 * is idempotent as long as everybody uses the same arguments). */
static int open_channel(struct session *ss)
{
    amqp_connection_state_t c = ss->conn;
    amqp_channel_open(c, CHANNEL);
    if (check_reply(ss, amqp_get_rpc_reply(c), "channel.open") < 0)
        return -1;
    amqp_confirm_select(c, CHANNEL);
    if (check_reply(ss, amqp_get_rpc_reply(c), "confirm.select") < 0)
        return -1;
    amqp_exchange_declare(c, CHANNEL, amqp_cstring_bytes(ss->p->exchange),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    return check_reply(ss, amqp_get_rpc_reply(c), "exchange.declare");
}

/* Connects, logs in and prepares the channel. Returns 0, or -1 (logged). */
static int session_open(struct session *ss)
{
    struct publisher *p = ss->p;
    struct timeval tv = ms_to_tv(p->connect_timeout_ms);

    ss->conn = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(ss->conn);
    if (sock == NULL) {
        log_error("publisher %s: cannot create a socket object", p->display);
        return -1;
    }
    if ((ss->fd = tcp_connect(p)) < 0)
        return -1;
    tune_socket(ss->fd, p->heartbeat_s);
    amqp_tcp_socket_set_sockfd(sock, ss->fd); /* conn owns the fd now */
    set_kick_fd(p, ss->fd);
    if (stopping(p))
        return -1; /* publisher_stop() may have looked before the kick fd existed */
    amqp_set_handshake_timeout(ss->conn, &tv);
    amqp_set_rpc_timeout(ss->conn, &tv);
    if (check_reply(ss, login(ss), "login") < 0)
        return -1;
    ss->logged_in = 1;
    if (open_channel(ss) < 0)
        return -1;

    pthread_mutex_lock(&p->lock);
    p->established = 1;
    pthread_mutex_unlock(&p->lock);
    ss->ring = mem_calloc(p->window, sizeof(*ss->ring));
    ss->confirmed_seq = ss->acked_seq = ss->last_seq = spool_confirmed_seq(p->spool);
    ss->cursor = spool_cursor_new(p->spool, ss->confirmed_seq);
    ss->last_rx_ns = clock_monotonic_ns();
    ss->next_confirm_ns = ss->last_rx_ns + CONFIRM_EVERY_NS;
    atomic_store(&p->connected, 1);
    log_info("publisher %s: connected; publishing to exchange %s from seq %llu", p->display,
             p->exchange, (unsigned long long)ss->confirmed_seq + 1);
    return 0;
}

/* ---- confirms ---- */

/* Tells the spool how far everything is acked: at most every
 * CONFIRM_EVERY_NS, or now when `force`. */
static void maybe_confirm(struct session *ss, int force)
{
    if (ss->acked_seq <= ss->confirmed_seq)
        return;
    uint64_t now = clock_monotonic_ns();
    if (!force && now < ss->next_confirm_ns)
        return;
    if (spool_confirm(ss->p->spool, ss->acked_seq) == 0) {
        ss->confirmed_seq = ss->acked_seq;
        ss->next_confirm_ns = now + CONFIRM_EVERY_NS;
    } else {
        ss->next_confirm_ns = now + CONFIRM_RETRY_NS; /* the spool logged why */
    }
}

/* basic.ack: marks the tag (or every tag up to it, with `multiple`), then
 * advances the fully acked prefix. Returns 0, or -1 for a tag we never
 * used (the broker and we disagree: start over). */
static int on_ack(struct session *ss, uint64_t tag, int multiple)
{
    unsigned w = ss->p->window;
    if (tag == 0 && multiple)
        tag = ss->published_tag; /* "all outstanding", AMQP 0-9-1 basic.ack */
    if (tag > ss->published_tag) {
        log_warn("publisher %s: ack for delivery tag %llu, only %llu published; reconnecting",
                 ss->p->display, (unsigned long long)tag, (unsigned long long)ss->published_tag);
        return -1;
    }
    if (tag <= ss->acked_tag)
        return 0;
    uint64_t newly = 0;
    for (uint64_t t = multiple ? ss->acked_tag + 1 : tag; t <= tag; t++) {
        if (!ss->ring[t % w].acked)
            newly++;
        ss->ring[t % w].acked = 1;
    }
    while (ss->acked_tag < ss->published_tag && ss->ring[(ss->acked_tag + 1) % w].acked) {
        ss->acked_tag++;
        ss->acked_seq = ss->ring[ss->acked_tag % w].seq;
    }
    atomic_fetch_add(&ss->p->confirmed, newly);
    ss->got_ack = 1;
    return 0;
}

/* basic.nack: the broker could not take the messages. Keep what is
 * confirmed below them and start over from there (republishing). */
static int on_nack(struct session *ss, uint64_t tag, int multiple)
{
    uint64_t count = multiple && tag > ss->acked_tag ? tag - ss->acked_tag : 1;
    atomic_fetch_add(&ss->p->nacked, count);
    log_warn("publisher %s: broker nacked delivery tag %llu%s; reconnecting to republish",
             ss->p->display, (unsigned long long)tag, multiple ? " and before" : "");
    return -1;
}

/*
 * basic.return: events are published mandatory, so an event whose routing
 * key no queue is bound to comes back instead of vanishing. The broker
 * still acks it (the spool moves on: republishing would be returned again),
 * but the loss of that delivery is counted and said out loud, at most once
 * every RETURN_LOG_GAP_NS; while the spool retains the event (retain=),
 * `strangler events replay` can send it again once a queue is bound.
 */
static int on_return(struct session *ss, const amqp_frame_t *f)
{
    struct publisher *p = ss->p;
    const amqp_basic_return_t *m = f->payload.method.decoded;
    uint64_t total = atomic_fetch_add(&p->returned, 1) + 1;
    uint64_t now = clock_monotonic_ns();
    if (now >= p->next_return_log_ns) {
        log_warn("publisher %s: the broker returned an event with key '%.*s' (%u %.*s): no queue "
                 "is bound for it; %llu returned since the last such line, %llu in all (while "
                 "the spool retains them, `strangler events replay` sends them again)",
                 p->display, (int)m->routing_key.len, (const char *)m->routing_key.bytes,
                 m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes,
                 (unsigned long long)(total - p->returns_logged), (unsigned long long)total);
        p->returns_logged = total;
        p->next_return_log_ns = now + RETURN_LOG_GAP_NS;
    }
    amqp_message_t msg;
    if (check_reply(ss, amqp_read_message(ss->conn, f->channel, &msg, 0), "basic.return") < 0)
        return -1;
    amqp_destroy_message(&msg);
    return 0;
}

static void on_blocked(struct session *ss, int blocked, const amqp_frame_t *f)
{
    ss->blocked = blocked;
    atomic_store(&ss->p->blocked, blocked);
    if (blocked) {
        const amqp_connection_blocked_t *m = f->payload.method.decoded;
        log_warn("publisher %s: broker blocked publishing: %.*s", ss->p->display,
                 (int)m->reason.len, (const char *)m->reason.bytes);
    } else {
        log_info("publisher %s: broker unblocked publishing", ss->p->display);
    }
}

/* One frame from the broker. Returns 0, or -1 to end the session. */
static int handle_frame(struct session *ss, const amqp_frame_t *f)
{
    char why[320];
    if (f->frame_type != AMQP_FRAME_METHOD)
        return 0;
    const void *d = f->payload.method.decoded;
    amqp_rpc_reply_t r = {AMQP_RESPONSE_SERVER_EXCEPTION, f->payload.method, 0};
    switch (f->payload.method.id) {
    case AMQP_BASIC_ACK_METHOD:
        return on_ack(ss, ((const amqp_basic_ack_t *)d)->delivery_tag,
                      ((const amqp_basic_ack_t *)d)->multiple);
    case AMQP_BASIC_NACK_METHOD:
        return on_nack(ss, ((const amqp_basic_nack_t *)d)->delivery_tag,
                       ((const amqp_basic_nack_t *)d)->multiple);
    case AMQP_BASIC_RETURN_METHOD:
        return on_return(ss, f);
    case AMQP_CONNECTION_BLOCKED_METHOD:
        on_blocked(ss, 1, f);
        return 0;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        on_blocked(ss, 0, f);
        return 0;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        describe_reply(r, why, sizeof(why));
        log_warn("publisher %s: %s; reconnecting", ss->p->display, why);
        if (f->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
            answer_connection_close(ss);
        else
            answer_channel_close(ss, f->channel);
        return -1;
    default:
        log_debug("publisher %s: ignoring method 0x%08x", ss->p->display, f->payload.method.id);
        return 0;
    }
}

/* Reads every frame that can be had without waiting. Returns 0, or -1 to
 * end the session. */
static int read_frames(struct session *ss)
{
    /* A microsecond rather than zero: with a zero timeout rabbitmq-c never
     * compares against its own heartbeat deadline, so it would not notice a
     * broker that went silent. */
    const struct timeval tv = {0, 1};
    char tmp[128];
    for (;;) {
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(ss->conn, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            ss->broken = 1;
            log_warn("publisher %s: connection lost: %s", ss->p->display,
                     rc == AMQP_STATUS_SOCKET_ERROR ? errstr(errno, tmp, sizeof(tmp))
                                                    : amqp_error_string2(rc));
            return -1;
        }
        ss->last_rx_ns = clock_monotonic_ns();
        if (handle_frame(ss, &f) < 0)
            return -1;
    }
    amqp_maybe_release_buffers(ss->conn);
    return 0;
}

/* ---- publishing ---- */

static int publish_one(struct session *ss, const struct spool_event *ev)
{
    struct publisher *p = ss->p;
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                   AMQP_BASIC_APP_ID_FLAG;
    props.content_type = amqp_cstring_bytes(CONTENT_TYPE);
    props.delivery_mode = 2; /* persistent */
    props.message_id = shortstr(ss, ev->id);
    props.type = shortstr(ss, ev->type);
    props.timestamp = ev->time_us > 0 ? (uint64_t)(ev->time_us / 1000000) : 0;
    props.app_id = amqp_cstring_bytes(APP_ID);
    amqp_bytes_t body = {ev->body_len, (void *)ev->body};

    int rc = amqp_basic_publish(ss->conn, CHANNEL, amqp_cstring_bytes(p->exchange),
                                shortstr(ss, ev->key), 1 /* mandatory: see on_return */, 0, &props,
                                body);
    if (rc != AMQP_STATUS_OK) {
        ss->broken = 1;
        if (!stopping(p))
            log_warn("publisher %s: publish failed: %s", p->display, amqp_error_string2(rc));
        return -1;
    }
    uint64_t tag = ++ss->published_tag;
    ss->ring[tag % p->window] = (struct inflight){ev->seq, 0};
    ss->last_seq = ev->seq;
    atomic_fetch_add(&p->published, 1);
    return 0;
}

/* After a spool read error the cursor is stuck on a corrupt record; try a
 * fresh one from the last published seq now and then (the spool logs each
 * attempt), rather than skipping events silently. */
static int cursor_ready(struct session *ss, uint64_t now)
{
    if (ss->cursor_retry_ns == 0)
        return 1;
    if (now < ss->cursor_retry_ns)
        return 0;
    spool_cursor_free(ss->cursor);
    ss->cursor = spool_cursor_new(ss->p->spool, ss->last_seq);
    ss->cursor_retry_ns = 0;
    return 1;
}

static int can_publish(const struct session *ss)
{
    return !ss->blocked && !ss->caught_up && ss->cursor_retry_ns == 0 &&
           ss->published_tag - ss->acked_tag < ss->p->window;
}

/* Publishes from the cursor while the window has room. Returns 0, or -1 to
 * end the session. */
static int publish_some(struct session *ss)
{
    if (!cursor_ready(ss, clock_monotonic_ns()))
        return 0;
    while (can_publish(ss)) {
        struct spool_event ev;
        int r = spool_cursor_next(ss->cursor, &ev);
        if (r == 0) {
            ss->caught_up = 1;
            break;
        }
        if (r < 0) {
            ss->cursor_retry_ns = clock_monotonic_ns() + (uint64_t)ss->p->backoff_max_ms * MS;
            break;
        }
        if (publish_one(ss, &ev) < 0)
            return -1;
    }
    return 0;
}

/* ---- the loop ---- */

/* Everything appended so far is published and acked. Compared with the
 * spool's last seq rather than `caught_up`, which may predate appends made
 * just before publisher_stop() (their wake-up may not be read yet). */
static int drained(const struct session *ss)
{
    return ss->published_tag == ss->acked_tag && ss->last_seq >= spool_last_seq(ss->p->spool);
}

/* How long the next poll may sleep: a third of the heartbeat (so heartbeats
 * go out in time), less when a confirm, a cursor retry or the drain
 * deadline is due sooner. */
static int poll_timeout(const struct session *ss, uint64_t now)
{
    int hb = amqp_get_heartbeat(ss->conn);
    int t = hb > 0 ? hb * 1000 / 3 : 1000;
    if (ss->acked_seq > ss->confirmed_seq) {
        int c = ms_until(ss->next_confirm_ns, now);
        t = c < t ? c : t;
    }
    if (ss->cursor_retry_ns != 0) {
        int c = ms_until(ss->cursor_retry_ns, now);
        t = c < t ? c : t;
    }
    if (stopping(ss->p)) {
        int c = ms_until(atomic_load(&ss->p->drain_deadline_ns), now);
        t = c < t ? c : t;
    }
    return t;
}

/*
 * Whether to wake for appends to the spool now. Not while the window is
 * full or the broker blocks us (an ack or an unblock wakes us through the
 * socket, and nothing could be published before it), and not within
 * SPOOL_LINGER_NS of the last wake: under load the thread would otherwise
 * wake for every single event, its cost dominated by the wake-up rather
 * than the publish. Lingering a millisecond batches them, as Kafka's
 * linger.ms does, for a latency the broker's own round trip dwarfs.
 */
static int listen_to_spool(const struct session *ss, uint64_t now)
{
    return ss->caught_up && !ss->blocked && ss->published_tag - ss->acked_tag < ss->p->window &&
           now >= ss->spool_listen_ns;
}

/* Sleeps until the broker, the spool or publisher_stop() has something,
 * unless there is work to do right away. Returns 0, or -1 when the broker
 * went silent past twice its heartbeat. */
static int wait_io(struct session *ss)
{
    struct publisher *p = ss->p;
    /* rabbitmq-c buffers: frames already read must not wait for the socket. */
    if (amqp_frames_enqueued(ss->conn) || amqp_data_in_buffer(ss->conn) || can_publish(ss))
        return 0;
    uint64_t now = clock_monotonic_ns();
    /* amqp_get_sockfd() rather than ss->fd: rabbitmq-c closes the socket
     * itself on some errors, and then reports -1, which poll(2) skips. */
    struct pollfd pfd[3] = {
        {amqp_get_sockfd(ss->conn), POLLIN, 0}, {-1, POLLIN, 0}, {-1, POLLIN, 0}};
    int timeout = poll_timeout(ss, now);
    /* Once stopping, the wake fd stays readable; leave it out or we spin. */
    if (!stopping(p))
        pfd[1].fd = p->wake_fd;
    if (listen_to_spool(ss, now))
        pfd[2].fd = spool_notify_fd(p->spool);
    else if (ss->caught_up && now < ss->spool_listen_ns &&
             ms_until(ss->spool_listen_ns, now) < timeout)
        timeout = ms_until(ss->spool_listen_ns, now);
    int n = poll(pfd, 3, timeout);
    now = clock_monotonic_ns();
    if (n > 0 && pfd[2].revents != 0) {
        spool_notify_drain(p->spool);
        ss->caught_up = 0;
        ss->spool_listen_ns = now + SPOOL_LINGER_NS;
    }
    if (n > 0 && pfd[0].revents != 0)
        ss->last_rx_ns = now;
    int hb = amqp_get_heartbeat(ss->conn);
    if (hb > 0 && now - ss->last_rx_ns > 2 * (uint64_t)hb * 1000 * MS) {
        log_warn("publisher %s: nothing from the broker for %d s; reconnecting", p->display,
                 2 * hb);
        ss->broken = 1;
        return -1;
    }
    return 0;
}

static int time_to_leave(const struct session *ss)
{
    if (!stopping(ss->p))
        return 0;
    return drained(ss) || clock_monotonic_ns() >= atomic_load(&ss->p->drain_deadline_ns);
}

static void session_loop(struct session *ss)
{
    while (!time_to_leave(ss)) {
        if (publish_some(ss) < 0 || wait_io(ss) < 0 || read_frames(ss) < 0)
            return;
        maybe_confirm(ss, 0);
    }
}

/* Confirms what was acked, closes politely when the connection is still
 * sound, and releases everything of the session. */
static void session_close(struct session *ss)
{
    struct publisher *p = ss->p;
    maybe_confirm(ss, 1);
    if (ss->conn != NULL && ss->logged_in && !ss->broken) {
        struct timeval tv = ms_to_tv(CLOSE_TIMEOUT_MS);
        amqp_set_rpc_timeout(ss->conn, &tv);
        amqp_connection_close(ss->conn, AMQP_REPLY_SUCCESS);
    }
    set_kick_fd(p, -1);
    if (ss->conn != NULL)
        amqp_destroy_connection(ss->conn); /* closes the socket */
    else if (ss->fd >= 0)
        close(ss->fd);
    spool_cursor_free(ss->cursor);
    free(ss->ring);
    atomic_store(&p->connected, 0);
    atomic_store(&p->blocked, 0);
}

/* One connection from connect to close. Returns 1 when the broker
 * confirmed something (the link works: reset the backoff), else 0. */
static int session_run(struct publisher *p)
{
    struct session ss;
    memset(&ss, 0, sizeof(ss));
    ss.p = p;
    ss.fd = -1;
    if (session_open(&ss) == 0)
        session_loop(&ss);
    session_close(&ss);
    return ss.got_ack;
}

/* Sleeps ms, or less if publisher_stop() is called meanwhile. */
static void sleep_unless_stopped(struct publisher *p, unsigned ms)
{
    struct pollfd pfd = {p->wake_fd, POLLIN, 0};
    uint64_t deadline = clock_monotonic_ns() + (uint64_t)ms * MS;
    while (!stopping(p)) {
        int left = ms_until(deadline, clock_monotonic_ns());
        if (left == 0 || poll(&pfd, 1, left) > 0)
            break;
    }
}

/* A delay in [backoff/2, backoff] ("equal jitter"), so proxies that lost
 * the broker together do not come back in lockstep. */
static unsigned jitter(unsigned backoff, uint64_t *rng)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    unsigned half = backoff / 2;
    return half + (unsigned)(*rng % (half + 1));
}

static void *publisher_main(void *arg)
{
    struct publisher *p = arg;
    unsigned backoff = BACKOFF_MIN_MS;
    uint64_t rng = clock_monotonic_ns() ^ ((uint64_t)(uintptr_t)p << 16) ^ (uint64_t)getpid();
    if (rng == 0)
        rng = 0x9e3779b97f4a7c15ull;

    while (!stopping(p)) {
        if (session_run(p))
            backoff = BACKOFF_MIN_MS;
        if (stopping(p))
            break;
        atomic_fetch_add(&p->reconnects, 1);
        unsigned delay = jitter(backoff, &rng);
        log_info("publisher %s: reconnecting in %u ms", p->display, delay);
        sleep_unless_stopped(p, delay);
        backoff = backoff >= p->backoff_max_ms / 2 ? p->backoff_max_ms : backoff * 2;
    }
    pthread_mutex_lock(&p->lock);
    p->exited = 1;
    pthread_cond_broadcast(&p->exited_cond);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- start, stop, stats ---- */

static char *display_url(const struct amqp_connection_info *i)
{
    struct buf b = BUF_INIT;
    const char *vhost = strcmp(i->vhost, "/") == 0 ? "%2f" : i->vhost;
    buf_appendf(&b, "amqp://%s@%s:%d/%s", i->user, i->host, i->port, vhost);
    return buf_steal(&b);
}

static void publisher_free(struct publisher *p)
{
    if (p == NULL)
        return;
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    if (p->kick_fd >= 0)
        close(p->kick_fd);
    pthread_cond_destroy(&p->exited_cond);
    pthread_mutex_destroy(&p->lock);
    free(p->url_buf);
    free(p->display);
    free(p->exchange);
    free(p);
}

static struct publisher *publisher_alloc(const struct publisher_config *cfg, struct spool *s)
{
    struct publisher *p = mem_calloc(1, sizeof(*p));
    pthread_condattr_t ca;
    p->wake_fd = p->kick_fd = -1;
    p->spool = s;
    p->exchange = mem_strdup(cfg->exchange != NULL ? cfg->exchange : DEFAULT_EXCHANGE);
    p->window = cfg->window > 0 ? cfg->window : DEFAULT_WINDOW;
    p->heartbeat_s = cfg->heartbeat_s > 0 ? cfg->heartbeat_s : DEFAULT_HEARTBEAT_S;
    p->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS;
    p->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : DEFAULT_BACKOFF_MS;
    if (p->backoff_max_ms < BACKOFF_MIN_MS)
        p->backoff_max_ms = BACKOFF_MIN_MS;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->exited_cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&p->stopping, 0);
    return p;
}

/* Parses a copy of the URL (amqp_parse_url() writes into its input). */
static int parse_url(struct publisher *p, const char *url, char *err, size_t errlen)
{
    p->url_buf = mem_strdup(url);
    amqp_default_connection_info(&p->info);
    if (amqp_parse_url(p->url_buf, &p->info) != AMQP_STATUS_OK) {
        /* Not echoed: a URL that does not parse may still hold a password. */
        snprintf(err, errlen,
                 "publisher: invalid AMQP URL (expected amqp://user:pass@host:port/vhost)");
        return -1;
    }
    if (p->info.ssl) {
        snprintf(err, errlen, "publisher: amqps:// is not supported");
        return -1;
    }
    p->display = display_url(&p->info);
    return 0;
}

/* The thread runs with every signal blocked: signals are the main thread's
 * business, and a handler running here could interrupt rabbitmq-c. */
static int start_thread(struct publisher *p)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->thread, NULL, publisher_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

struct publisher *publisher_start(const struct publisher_config *cfg, struct spool *s, char *err,
                                  size_t errlen)
{
    struct publisher *p = NULL;
    char tmp[128];
    if (cfg == NULL || cfg->url == NULL || s == NULL) {
        snprintf(err, errlen, "publisher: no AMQP URL or no spool");
        goto fail;
    }
    p = publisher_alloc(cfg, s);
    if (parse_url(p, cfg->url, err, errlen) < 0)
        goto fail;
    if ((p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "publisher: eventfd: %s", errstr(errno, tmp, sizeof(tmp)));
        goto fail;
    }
    int rc = start_thread(p);
    if (rc != 0) {
        snprintf(err, errlen, "publisher: cannot start its thread: %s",
                 errstr(rc, tmp, sizeof(tmp)));
        goto fail;
    }
    return p;
fail:
    publisher_free(p);
    return NULL;
}

/* Shuts the broker socket down under the thread's feet (see the file
 * comment): any rabbitmq-c call blocked on it returns with an error. */
static void kick_locked(struct publisher *p)
{
    if (p->kick_fd >= 0)
        shutdown(p->kick_fd, SHUT_RDWR);
}

/* Waits until the thread says it is done or `deadline_ns` passes. */
static void wait_exited_locked(struct publisher *p, uint64_t deadline_ns)
{
    while (!p->exited) {
        uint64_t now = clock_monotonic_ns();
        if (now >= deadline_ns)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t left = deadline_ns - now;
        ts.tv_sec += (time_t)(left / 1000000000ull);
        ts.tv_nsec += (long)(left % 1000000000ull);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->exited_cond, &p->lock, &ts);
    }
}

void publisher_stop(struct publisher *p, unsigned drain_ms)
{
    if (p == NULL)
        return;
    uint64_t deadline = clock_monotonic_ns() + (uint64_t)drain_ms * MS;
    atomic_store(&p->drain_deadline_ns, deadline);
    atomic_store(&p->stopping, 1);
    uint64_t one = 1;
    if (write(p->wake_fd, &one, sizeof(one)) < 0)
        log_debug("publisher %s: wake: write failed", p->display);

    pthread_mutex_lock(&p->lock);
    /* Nothing to drain without an established session: a thread still
     * logging in (maybe to a broker that never answers) is cut short now. */
    if (!p->established)
        kick_locked(p);
    wait_exited_locked(p, deadline + STOP_GRACE_MS * MS);
    if (!p->exited) {
        log_warn("publisher %s: still busy %u ms past the drain deadline; closing its socket",
                 p->display, STOP_GRACE_MS);
        kick_locked(p);
    }
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    log_info("publisher %s: stopped", p->display);
    publisher_free(p);
}

void publisher_get_stats(struct publisher *p, struct publisher_stats *out)
{
    out->connected = atomic_load(&p->connected);
    out->blocked = atomic_load(&p->blocked);
    out->published = atomic_load(&p->published);
    out->confirmed = atomic_load(&p->confirmed);
    out->nacked = atomic_load(&p->nacked);
    out->returned = atomic_load(&p->returned);
    out->reconnects = atomic_load(&p->reconnects);
}
