#include "proxy/upstream.h"

#include "common/log.h"
#include "common/mem.h"

#include <errno.h>
/* Events are embedded in the connection structs (one allocation a
 * connection instead of four); that needs their layout. */
#include <event2/event_struct.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK    (16 * 1024)
#define MAX_RESP_HEAD (64 * 1024)

enum uc_state {
    UC_NONE = 0,
    UC_CONNECTING, /* non-blocking connect in progress */
    UC_SENDING,    /* request bytes left in out */
    UC_HEAD,       /* waiting for the response head */
    UC_BODY,       /* reading the body */
    UC_IDLE,       /* in the pool */
};

struct upstream_pool {
    struct event_base *base;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned timeout_ms;
    unsigned connect_timeout_ms;
    unsigned keepalive_max;
    unsigned keepalive_timeout_ms;
    struct upconn *idle; /* most recently used first: its TCP state is warmest */
    unsigned nidle;
    unsigned nbusy;
};

/* One connection. Owned by its pool while idle, by the exchange otherwise.
 * Only the worker thread of the pool touches it. */
struct upconn {
    struct upstream_pool *pool;
    struct upconn *next_idle;
    int fd;
    enum uc_state state;
    struct event rev, wev, timer;
    struct buf in;  /* response bytes not yet consumed */
    struct buf out; /* request bytes not yet written */
    const struct upstream_handler *h;
    void *ctx;
    int reused;    /* carried an exchange before this one */
    int got_bytes; /* a byte of this exchange's answer arrived */
    int head_request;
    int keep_alive;
    int paused;
    int in_callback;
    int cancelled;
    enum upstream_error pending_error; /* reported from the timer, never inline */
    int pending_errno;
    enum http_framing framing;
    uint64_t remaining;
    int body_done;
    struct http_chunked chunked;
};

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

const char *upstream_error_text(enum upstream_error err)
{
    switch (err) {
    case UPSTREAM_ERR_CONNECT:
        return "connection refused or unreachable";
    case UPSTREAM_ERR_CONNECT_TIMEOUT:
        return "connect timed out";
    case UPSTREAM_ERR_TIMEOUT:
        return "timed out waiting for the answer";
    case UPSTREAM_ERR_CLOSED:
        return "closed the connection before answering";
    case UPSTREAM_ERR_PROTOCOL:
        return "sent an invalid HTTP answer";
    case UPSTREAM_ERR_NONE:
        break;
    }
    return "no error";
}

struct upstream_pool *upstream_pool_new(struct event_base *base, const struct upstream_def *def)
{
    struct upstream_pool *p = mem_calloc(1, sizeof(*p));
    p->base = base;
    memcpy(&p->addr, &def->addr.sa, def->addr.len);
    p->addr_len = def->addr.len;
    p->timeout_ms = def->timeout_ms;
    p->connect_timeout_ms = def->connect_timeout_ms;
    p->keepalive_max = def->keepalive;
    p->keepalive_timeout_ms = def->keepalive_timeout_ms;
    return p;
}

int upstream_pool_serves(const struct upstream_pool *p, const struct upstream_def *def)
{
    return p->addr_len == def->addr.len && memcmp(&p->addr, &def->addr.sa, p->addr_len) == 0 &&
           p->timeout_ms == def->timeout_ms && p->connect_timeout_ms == def->connect_timeout_ms &&
           p->keepalive_max == def->keepalive &&
           p->keepalive_timeout_ms == def->keepalive_timeout_ms;
}

static void arm_timer(struct upconn *uc, unsigned ms)
{
    struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
    event_add(&uc->timer, &tv);
}

static void destroy(struct upconn *uc)
{
    event_del(&uc->rev);
    event_del(&uc->wev);
    event_del(&uc->timer);
    if (uc->fd >= 0)
        close(uc->fd);
    buf_dispose(&uc->in);
    buf_dispose(&uc->out);
    free(uc);
}

static void unlink_idle(struct upconn *uc)
{
    struct upconn **pp = &uc->pool->idle;
    while (*pp != NULL && *pp != uc)
        pp = &(*pp)->next_idle;
    if (*pp == uc) {
        *pp = uc->next_idle;
        uc->pool->nidle--;
    }
    uc->next_idle = NULL;
}

void upstream_pool_free(struct upstream_pool *p)
{
    if (p == NULL)
        return;
    while (p->idle != NULL) {
        struct upconn *uc = p->idle;
        p->idle = uc->next_idle;
        destroy(uc);
    }
    free(p);
}

/* Detaches the exchange from the connection and closes it. */
static void close_busy(struct upconn *uc)
{
    uc->pool->nbusy--;
    uc->h = NULL;
    uc->ctx = NULL;
    destroy(uc);
}

/* Ends the exchange with an error: the handler hears of it after the
 * connection is gone, so it may start a retry from inside on_error. */
static void fail(struct upconn *uc, enum upstream_error err, const char *detail)
{
    const struct upstream_handler *h = uc->h;
    void *ctx = uc->ctx;
    /* Stale: a reused connection the upstream had closed, noticed before
     * any byte of an answer. A timeout is never that: the request may be
     * running there. */
    int stale = uc->reused && !uc->got_bytes && err == UPSTREAM_ERR_CLOSED;
    close_busy(uc);
    if (h != NULL)
        h->on_error(ctx, err, stale, detail);
}

/* The answer ended: pool or close the connection, then tell the handler. */
static void finish(struct upconn *uc)
{
    const struct upstream_handler *h = uc->h;
    void *ctx = uc->ctx;
    struct upstream_pool *p = uc->pool;

    uc->h = NULL;
    uc->ctx = NULL;
    event_del(&uc->timer);
    if (uc->keep_alive && uc->in.len == 0 && p->nidle < p->keepalive_max) {
        p->nbusy--;
        uc->state = UC_IDLE;
        uc->reused = 1;
        uc->next_idle = p->idle;
        p->idle = uc;
        p->nidle++;
        event_add(&uc->rev, NULL); /* to notice the upstream closing it */
        arm_timer(uc, p->keepalive_timeout_ms);
    } else {
        close_busy(uc);
    }
    if (h != NULL)
        h->on_done(ctx);
}

/* Calls on_body; returns -1 if the handler cancelled, 1 to pause, 0 to go on. */
static int deliver(struct upconn *uc, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    uc->in_callback++;
    int pause = uc->h->on_body(uc->ctx, data, len);
    uc->in_callback--;
    if (uc->cancelled)
        return -1;
    return pause ? 1 : 0;
}

/*
 * Passes on what `in` holds of the body. Returns 0 when it may read more,
 * 1 when the exchange ended or failed (uc may be gone), 2 when paused.
 */
static int process_body(struct upconn *uc)
{
    size_t off = 0;
    while (!uc->body_done && off < uc->in.len) {
        const char *data = uc->in.data + off;
        size_t avail = uc->in.len - off, data_len = 0, used = 0;
        switch (uc->framing) {
        case HTTP_FRAMING_LENGTH:
            data_len = used = uc->remaining < avail ? (size_t)uc->remaining : avail;
            uc->remaining -= data_len;
            uc->body_done = uc->remaining == 0;
            break;
        case HTTP_FRAMING_EOF:
            data_len = used = avail;
            break;
        case HTTP_FRAMING_CHUNKED: {
            enum http_chunk_result r =
                http_chunked_feed(&uc->chunked, uc->in.data + off, avail, &used, &data, &data_len);
            if (r == HTTP_CHUNK_ERROR) {
                fail(uc, UPSTREAM_ERR_PROTOCOL, "malformed chunked body");
                return 1;
            }
            uc->body_done = r == HTTP_CHUNK_DONE;
            break;
        }
        case HTTP_FRAMING_NONE:
            uc->body_done = 1;
            break;
        }
        int rc = deliver(uc, data, data_len);
        if (rc < 0) {
            close_busy(uc);
            return 1;
        }
        off += used;
        if (rc > 0 && !uc->body_done) {
            buf_consume(&uc->in, off);
            uc->paused = 1;
            event_del(&uc->rev);
            event_del(&uc->timer); /* a slow client is not a slow upstream */
            return 2;
        }
    }
    buf_consume(&uc->in, off);
    if (!uc->body_done)
        return 0;
    /* Bytes after the end of the answer were never asked for: the
     * connection's framing can no longer be trusted. */
    if (uc->in.len > 0)
        uc->keep_alive = 0;
    finish(uc);
    return 1;
}

/* Parses the head in `in`. Returns 0 for more bytes, 1 when uc ended, 2 to
 * go on with the body. */
static int process_head(struct upconn *uc)
{
    for (;;) {
        struct http_response resp;
        struct http_error err;
        struct http_limits lim = {MAX_RESP_HEAD, HTTP_MAX_HEADERS};
        int n =
            http_parse_response(uc->in.data, uc->in.len, &lim, uc->head_request ? "HEAD" : "GET",
                                uc->head_request ? 4 : 3, &resp, &err);
        if (n == 0)
            return 0;
        if (n < 0) {
            fail(uc, UPSTREAM_ERR_PROTOCOL, err.reason);
            return 1;
        }
        if (resp.status < 200) {
            if (resp.status == 101) {
                fail(uc, UPSTREAM_ERR_PROTOCOL, "switched protocols unasked");
                return 1;
            }
            buf_consume(&uc->in, (size_t)n); /* interim: 100 Continue, 103 */
            continue;
        }
        uc->framing = resp.msg.framing;
        uc->remaining = resp.msg.framing == HTTP_FRAMING_LENGTH ? resp.msg.content_length : 0;
        uc->keep_alive = resp.msg.keep_alive && resp.msg.framing != HTTP_FRAMING_EOF;
        http_chunked_init(&uc->chunked);
        uc->body_done = resp.msg.framing == HTTP_FRAMING_NONE ||
                        (resp.msg.framing == HTTP_FRAMING_LENGTH && uc->remaining == 0);
        uc->state = UC_BODY;
        uc->in_callback++;
        uc->h->on_head(uc->ctx, &resp);
        uc->in_callback--;
        if (uc->cancelled) {
            close_busy(uc);
            return 1;
        }
        buf_consume(&uc->in, (size_t)n);
        return 2;
    }
}

static void process_input(struct upconn *uc)
{
    if (uc->state == UC_HEAD) {
        int rc = process_head(uc);
        if (rc != 2)
            return;
    }
    if (uc->state == UC_BODY)
        process_body(uc);
}

static void read_eof(struct upconn *uc)
{
    if (uc->state == UC_BODY && uc->framing == HTTP_FRAMING_EOF) {
        uc->keep_alive = 0;
        finish(uc);
        return;
    }
    fail(uc, UPSTREAM_ERR_CLOSED, uc->got_bytes ? "the answer was cut short" : "no answer");
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct upconn *uc = arg;
    (void)what;

    if (uc->state == UC_IDLE) {
        /* An idle connection has nothing to say: EOF, or bytes nobody asked
         * for. Either way it is finished. */
        unlink_idle(uc);
        destroy(uc);
        return;
    }
    buf_reserve(&uc->in, READ_CHUNK);
    ssize_t n = read(fd, uc->in.data + uc->in.len, uc->in.cap - uc->in.len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        fail(uc, UPSTREAM_ERR_CLOSED, strerror(errno));
        return;
    }
    if (n == 0) {
        read_eof(uc);
        return;
    }
    uc->in.len += (size_t)n;
    uc->got_bytes = 1;
    arm_timer(uc, uc->pool->timeout_ms); /* progress resets the wait */
    process_input(uc);
}

/* Writes what is left of the request; once it is all out, waits for the
 * answer. */
static void flush_request(struct upconn *uc)
{
    while (uc->out.len > 0) {
        ssize_t n = write(uc->fd, uc->out.data, uc->out.len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                event_add(&uc->wev, NULL);
                arm_timer(uc, uc->pool->timeout_ms); /* progress resets the wait */
                return;
            }
            fail(uc, uc->reused ? UPSTREAM_ERR_CLOSED : UPSTREAM_ERR_CONNECT, strerror(errno));
            return;
        }
        buf_consume(&uc->out, (size_t)n);
    }
    event_del(&uc->wev);
    uc->state = UC_HEAD;
    event_add(&uc->rev, NULL);
    arm_timer(uc, uc->pool->timeout_ms);
    /* A reused connection's read event stayed registered (take_idle): an
     * answer that came before the request was all out (an early 413) is
     * already in `in`, and no read event will announce it again. */
    if (uc->in.len > 0)
        process_input(uc);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct upconn *uc = arg;
    (void)what;
    if (uc->state == UC_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            fail(uc, UPSTREAM_ERR_CONNECT, strerror(err));
            return;
        }
        uc->state = UC_SENDING;
    }
    flush_request(uc);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct upconn *uc = arg;
    (void)fd;
    (void)what;
    if (uc->pending_error != UPSTREAM_ERR_NONE) {
        fail(uc, uc->pending_error, strerror(uc->pending_errno));
        return;
    }
    switch (uc->state) {
    case UC_IDLE:
        unlink_idle(uc);
        destroy(uc);
        return;
    case UC_CONNECTING:
        fail(uc, UPSTREAM_ERR_CONNECT_TIMEOUT, "connect timed out");
        return;
    default:
        fail(uc, UPSTREAM_ERR_TIMEOUT, "timed out");
        return;
    }
}

static struct upconn *conn_new(struct upstream_pool *p, int fd)
{
    struct upconn *uc = mem_calloc(1, sizeof(*uc));
    uc->pool = p;
    uc->fd = fd;
    event_assign(&uc->rev, p->base, fd, EV_READ | EV_PERSIST, on_readable, uc);
    event_assign(&uc->wev, p->base, fd, EV_WRITE | EV_PERSIST, on_writable, uc);
    evtimer_assign(&uc->timer, p->base, on_timer, uc);
    return uc;
}

/* Opens a connection without blocking. Errors are reported through the
 * timer so that upstream_send() never calls the handler itself. */
static struct upconn *conn_open(struct upstream_pool *p)
{
    int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct upconn *uc = conn_new(p, fd);
    if (fd < 0) {
        uc->pending_error = UPSTREAM_ERR_CONNECT;
        uc->pending_errno = errno;
        return uc;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&p->addr, p->addr_len) == 0) {
        uc->state = UC_SENDING;
    } else if (errno == EINPROGRESS) {
        uc->state = UC_CONNECTING;
    } else {
        uc->pending_error = UPSTREAM_ERR_CONNECT;
        uc->pending_errno = errno;
    }
    return uc;
}

static struct upconn *take_idle(struct upstream_pool *p)
{
    struct upconn *uc = p->idle;
    if (uc == NULL)
        return NULL;
    p->idle = uc->next_idle;
    p->nidle--;
    uc->next_idle = NULL;
    /* The read event stays registered: the answer comes on it, and an EOF
     * that beats the request (the upstream closed the idle connection) is
     * read as "no answer" on a reused connection, which is what it is.
     * Keeping it saves two epoll_ctl calls a request. */
    event_del(&uc->timer);
    return uc;
}

/* Writes as much of iov as the socket takes now and keeps the rest. A
 * failed write leaves everything in `out`; the write event then finds the
 * error and reports it. */
static void write_or_keep(struct upconn *uc, const struct iovec *iov, int iovcnt)
{
    size_t skip = 0;
    if (uc->state == UC_SENDING) {
        ssize_t n = writev(uc->fd, iov, iovcnt);
        if (n > 0)
            skip = (size_t)n;
    }
    for (int i = 0; i < iovcnt; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        buf_append(&uc->out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
        skip = 0;
    }
}

struct upconn *upstream_send(struct upstream_pool *p, const struct iovec *iov, int iovcnt,
                             const char *method, size_t method_len, int fresh,
                             const struct upstream_handler *h, void *ctx)
{
    struct upconn *uc = fresh ? NULL : take_idle(p);
    if (uc == NULL)
        uc = conn_open(p);
    else
        uc->state = UC_SENDING;
    p->nbusy++;
    uc->h = h;
    uc->ctx = ctx;
    uc->got_bytes = 0;
    uc->paused = 0;
    uc->head_request = method_len == 4 && memcmp(method, "HEAD", 4) == 0;
    uc->body_done = 0;
    uc->in.len = 0;
    uc->out.len = 0;

    if (uc->pending_error != UPSTREAM_ERR_NONE) {
        event_active(&uc->timer, EV_TIMEOUT, 1);
        return uc;
    }
    write_or_keep(uc, iov, iovcnt);
    if (uc->state == UC_CONNECTING) {
        event_add(&uc->wev, NULL);
        arm_timer(uc, p->connect_timeout_ms);
    } else if (uc->out.len > 0) {
        event_add(&uc->wev, NULL);
        arm_timer(uc, p->timeout_ms);
    } else {
        uc->state = UC_HEAD;
        event_add(&uc->rev, NULL);
        arm_timer(uc, p->timeout_ms);
    }
    return uc;
}

void upstream_resume(struct upconn *uc)
{
    if (!uc->paused)
        return;
    uc->paused = 0;
    if (process_body(uc) == 0) {
        event_add(&uc->rev, NULL);
        arm_timer(uc, uc->pool->timeout_ms);
    }
}

void upstream_cancel(struct upconn *uc)
{
    if (uc->in_callback) {
        /* Inside one of its own callbacks: the caller up the stack frees it
         * when the callback returns. */
        uc->cancelled = 1;
        uc->h = NULL;
        return;
    }
    close_busy(uc);
}
