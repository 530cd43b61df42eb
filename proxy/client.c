#include "proxy/client.h"

#include "common/log.h"
#include "common/mem.h"
#include "proxy/proxy.h"
#include "proxy/worker.h"

#include <arpa/inet.h>
#include <errno.h>
/* Events are embedded in the connection structs (one allocation a
 * connection instead of four); that needs their layout. */
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 4096

enum client_state {
    CS_NONE = 0,
    CS_IDLE,    /* between requests: keep-alive wait */
    CS_HEAD,    /* reading a request head */
    CS_BODY,    /* reading its body */
    CS_BUSY,    /* handed to the pipeline; the response is being produced */
    CS_CLOSING, /* writing a final error, then closing */
    CS_LINGER,  /* answered and shut down for writing; discarding input until the peer closes */
};

/* How long a closing connection keeps reading (and discarding) what the
 * client still sends. Closing a socket with unread input makes the kernel
 * send a reset, which can destroy the answer before the client reads it
 * (an error response to a request whose body was never read, say). */
#define LINGER_MS 2000

/*
 * One client connection. Memory for an idle connection is the struct
 * alone: buffers and the parsed request exist only while a request does,
 * so ten thousand idle keep-alive clients cost little.
 */
struct client {
    struct worker *w;
    struct client *next, *prev; /* the worker's list */
    int fd;
    enum client_state state;
    struct event rev, wev, timer;
    struct buf in;            /* raw request bytes, and whatever follows them */
    struct buf out;           /* response bytes not yet written */
    struct buf body;          /* the decoded body of a chunked request */
    struct http_request *req; /* the current request, pointing into `in` */
    struct http_chunked chunked;
    size_t raw_used; /* bytes of `in` the current request takes */
    struct txn *txn;
    char address[INET6_ADDRSTRLEN];
    unsigned keep_alive : 1;     /* this response may be followed by another request */
    unsigned response_ended : 1; /* the pipeline sent everything */
    unsigned dead : 1;           /* closing as soon as the stack unwinds */
    unsigned dispatching : 1;    /* inside proxy_handle() */
    unsigned sent_continue : 1;
    unsigned have_head : 1; /* req holds a parsed head (its pointers are live) */
    unsigned pipelined : 1; /* `in` already holds the next request: serve it */
};

static void on_read(evutil_socket_t fd, short what, void *arg);
static void linger(struct client *c);
static void on_write(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void process_input(struct client *c);

static const struct config_limits *limits(const struct client *c)
{
    return &c->w->wc->cfg->limits;
}

static void arm_timer(struct client *c, unsigned ms)
{
    struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
    event_add(&c->timer, &tv);
}

/*
 * Output is waiting for the client. While a response is being written the
 * send timeout is the connection's timer; while a request is still being
 * read (a 100 Continue is queued) its header or body deadline stays, so a
 * client cannot trade the deadline for a send timeout.
 */
static void wait_writable(struct client *c)
{
    event_add(&c->wev, NULL);
    if (c->state == CS_BUSY || c->state == CS_CLOSING)
        arm_timer(c, limits(c)->send_timeout_ms);
}

static void client_free(struct client *c)
{
    if (c->txn != NULL) {
        struct txn *t = c->txn;
        c->txn = NULL;
        proxy_txn_free(t);
    }
    event_del(&c->rev);
    event_del(&c->wev);
    event_del(&c->timer);
    close(c->fd);
    buf_dispose(&c->in);
    buf_dispose(&c->out);
    buf_dispose(&c->body);
    worker_return_request(c->w, c->req);
    worker_client_closed(c->w, c);
    free(c);
}

void client_abort(struct client *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    event_del(&c->rev);
    event_del(&c->wev);
    /* Closing now could free the transaction under the pipeline's feet;
     * the timer fires once control is back in the event loop. */
    event_active(&c->timer, EV_TIMEOUT, 1);
}

void client_close_now(struct client *c)
{
    client_free(c);
}

struct client *client_next(const struct client *c)
{
    return c->next;
}

struct worker *client_worker(const struct client *c)
{
    return c->w;
}

const char *client_address(const struct client *c)
{
    return c->address;
}

int client_keeps_alive(const struct client *c)
{
    return c->keep_alive;
}

void client_close_after_response(struct client *c)
{
    c->keep_alive = 0;
}

size_t client_pending(const struct client *c)
{
    return c->out.len;
}

/* Writes out what is queued. Returns 0, or -1 when the connection failed
 * (and is being aborted). */
static int flush(struct client *c)
{
    while (c->out.len > 0) {
        ssize_t n = write(c->fd, c->out.data, c->out.len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            client_abort(c);
            return -1;
        }
        buf_consume(&c->out, (size_t)n);
    }
    if (c->out.len > 0)
        wait_writable(c);
    else
        event_del(&c->wev);
    return 0;
}

void client_sendv(struct client *c, const struct iovec *iov, int iovcnt)
{
    if (c->dead)
        return;
    size_t skip = 0;
    if (c->out.len == 0) {
        ssize_t n = writev(c->fd, iov, iovcnt);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            client_abort(c);
            return;
        }
        skip = n > 0 ? (size_t)n : 0;
    }
    for (int i = 0; i < iovcnt; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        buf_append(&c->out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
        skip = 0;
    }
    if (c->out.len > 0)
        wait_writable(c);
}

void client_send(struct client *c, const char *data, size_t len)
{
    struct iovec iov = {(void *)data, len};
    client_sendv(c, &iov, 1);
}

/* Writes a response the proxy makes itself (a refused request) and closes. */
static void reply_error(struct client *c, int status, const char *reason)
{
    struct buf b = BUF_INIT;
    size_t date_len;
    const char *date = worker_date_header(c->w, &date_len);
    buf_appendf(&b,
                "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n",
                status, http_status_reason(status), strlen(reason) + 12);
    buf_append(&b, date, date_len);
    buf_appendf(&b, "\r\nstrangler: %s\n", reason);
    log_debug("client %s: %d %s", c->address, status, reason);
    proxy_report_refused(c->w, c->address, status);
    c->state = CS_CLOSING;
    c->keep_alive = 0;
    event_del(&c->rev);
    client_send(c, b.data, b.len);
    buf_dispose(&b);
    if (c->out.len == 0 && !c->dead)
        linger(c);
}

/* The request is done and its response written: free it and go on. */
static void complete(struct client *c)
{
    if (c->txn != NULL) {
        struct txn *t = c->txn;
        c->txn = NULL;
        proxy_txn_free(t);
    }
    worker_return_request(c->w, c->req);
    c->req = NULL;
    c->have_head = 0;
    buf_consume(&c->in, c->raw_used);
    c->raw_used = 0;
    c->body.len = 0;
    c->response_ended = 0;
    c->sent_continue = 0;
    if (!c->keep_alive || c->w->draining) {
        linger(c);
        return;
    }
    c->state = CS_IDLE;
    event_add(&c->rev, NULL);
    if (c->in.len > 0) {
        /* A pipelined request is already here. It is served from the event
         * loop, not from this stack: answers the proxy makes at once would
         * otherwise recurse once per request, and one client's pipeline
         * would hold the loop. */
        c->pipelined = 1;
        event_active(&c->rev, EV_READ, 1);
        return;
    }
    /* Idle: give the memory back until the next request arrives. */
    buf_dispose(&c->in);
    buf_dispose(&c->out);
    buf_dispose(&c->body);
    arm_timer(c, limits(c)->keepalive_timeout_ms);
}

static void try_complete(struct client *c)
{
    if (c->response_ended && c->out.len == 0 && !c->dispatching && !c->dead)
        complete(c);
}

void client_end_response(struct client *c)
{
    c->response_ended = 1;
    try_complete(c);
}

static void dispatch(struct client *c, const char *body, size_t body_len)
{
    /* The read event stays registered while the request is served: taking
     * it out and putting it back would cost two epoll_ctl calls a request.
     * Bytes that do arrive meanwhile (a pipelined request, an EOF) switch
     * it off until the answer is complete (on_read). */
    c->state = CS_BUSY;
    event_del(&c->timer);
    c->keep_alive = c->req->msg.keep_alive && !c->w->draining;
    c->dispatching = 1;
    c->txn = proxy_handle(c, c->req, body, body_len);
    c->dispatching = 0;
    try_complete(c);
}

/* Makes room for `extra` more bytes in `in`, keeping the parsed request's
 * pointers valid if the buffer moves. */
static void reserve_input(struct client *c, size_t extra)
{
    const char *old = c->in.data;
    buf_reserve(&c->in, extra);
    if (c->have_head && old != NULL && c->in.data != old)
        http_request_rebase(c->req, old, c->in.data);
}

static void send_continue(struct client *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (c->req->expect_continue && !c->sent_continue) {
        c->sent_continue = 1;
        client_send(c, line, sizeof(line) - 1);
    }
}

/* Body framed by Content-Length: it sits in `in` right after the head. */
static void read_length_body(struct client *c)
{
    size_t head = c->req->msg.head_len;
    size_t need = head + (size_t)c->req->msg.content_length;
    if (c->in.len >= need) {
        c->raw_used = need;
        dispatch(c, c->in.data + head, (size_t)c->req->msg.content_length);
        return;
    }
    send_continue(c);
}

/* Drops the raw chunked bytes already decoded, between the head and `pos`,
 * so the framing (chunk extensions can be 4000 times the data) is never
 * held in memory. Returns the new position. */
static size_t drop_decoded(struct client *c, size_t pos)
{
    size_t head = c->req->msg.head_len;
    if (pos > head) {
        memmove(c->in.data + head, c->in.data + pos, c->in.len - pos);
        c->in.len -= pos - head;
    }
    return head;
}

/* Chunked body: decoded into c->body as it arrives (RFC 9112 7.1). */
static void read_chunked_body(struct client *c)
{
    size_t pos = c->raw_used;
    while (pos < c->in.len) {
        size_t used = 0, data_len = 0;
        const char *data = NULL;
        enum http_chunk_result r = http_chunked_feed(&c->chunked, c->in.data + pos, c->in.len - pos,
                                                     &used, &data, &data_len);
        pos += used;
        if (r == HTTP_CHUNK_ERROR) {
            reply_error(c, 400, "malformed chunked body");
            return;
        }
        if (r == HTTP_CHUNK_DATA) {
            if (c->body.len + data_len > limits(c)->max_body_size) {
                reply_error(c, 413, "request body exceeds max_body_size");
                return;
            }
            buf_append(&c->body, data, data_len);
        }
        if (r == HTTP_CHUNK_DONE) {
            c->raw_used = pos;
            dispatch(c, c->body.data ? c->body.data : "", c->body.len);
            return;
        }
    }
    c->raw_used = drop_decoded(c, pos);
    send_continue(c);
}

static void read_body(struct client *c)
{
    if (c->req->msg.framing == HTTP_FRAMING_CHUNKED)
        read_chunked_body(c);
    else
        read_length_body(c);
}

static void start_body(struct client *c)
{
    const struct http_message *m = &c->req->msg;
    c->raw_used = m->head_len;
    if (m->framing == HTTP_FRAMING_NONE ||
        (m->framing == HTTP_FRAMING_LENGTH && m->content_length == 0)) {
        dispatch(c, "", 0);
        return;
    }
    if (m->framing == HTTP_FRAMING_LENGTH && m->content_length > limits(c)->max_body_size) {
        reply_error(c, 413, "request body exceeds max_body_size");
        return;
    }
    c->state = CS_BODY;
    http_chunked_init(&c->chunked);
    arm_timer(c, limits(c)->client_body_timeout_ms); /* a deadline, not an idle timeout */
    read_body(c);
}

static void read_head(struct client *c)
{
    struct http_limits lim = {limits(c)->max_header_size, limits(c)->max_headers};
    struct http_error err;
    if (c->req == NULL)
        c->req = worker_take_request(c->w);
    int n = http_parse_request(c->in.data, c->in.len, &lim, c->req, &err);
    if (n < 0) {
        reply_error(c, err.status, err.reason);
        return;
    }
    if (n > 0) {
        c->have_head = 1;
        start_body(c);
    }
}

static void process_input(struct client *c)
{
    if (c->state == CS_IDLE) {
        /* The first byte of a request starts its header deadline: a client
         * that trickles a header byte at a time gets no more time. */
        c->state = CS_HEAD;
        arm_timer(c, limits(c)->client_header_timeout_ms);
    }
    if (c->state == CS_HEAD)
        read_head(c);
    else if (c->state == CS_BODY)
        read_body(c);
}

/* How much to read at once. A body announced by Content-Length is read in
 * steps of at most BODY_STEP, so a client that claims a large body and then
 * sends nothing holds no more memory than it has actually sent. */
#define BODY_STEP (64 * 1024)

static size_t read_room(const struct client *c)
{
    if (c->state != CS_BODY || c->req->msg.framing != HTTP_FRAMING_LENGTH)
        return READ_CHUNK;
    size_t need = c->req->msg.head_len + (size_t)c->req->msg.content_length;
    size_t missing = need > c->in.len ? need - c->in.len : 0;
    if (missing < READ_CHUNK)
        return READ_CHUNK;
    return missing < BODY_STEP ? missing : BODY_STEP;
}

/* Lingering: read and drop whatever comes until the client closes. */
static void discard_input(struct client *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = read(c->fd, sink, sizeof(sink));
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        client_free(c);
        return;
    }
}

static void linger(struct client *c)
{
    c->state = CS_LINGER;
    shutdown(c->fd, SHUT_WR);
    buf_dispose(&c->in);
    buf_dispose(&c->out);
    event_del(&c->wev);
    event_add(&c->rev, NULL);
    arm_timer(c, LINGER_MS);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)what;
    if (c->state == CS_LINGER) {
        discard_input(c);
        return;
    }
    if (c->pipelined) {
        c->pipelined = 0;
        process_input(c);
        return;
    }
    if (c->state == CS_BUSY) {
        /* Not read now: the request being served points into `in`. */
        event_del(&c->rev);
        return;
    }
    size_t room = read_room(c);
    if (c->in.cap - c->in.len < room)
        reserve_input(c, room);
    ssize_t n = read(fd, c->in.data + c->in.len, c->in.cap - c->in.len);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            client_abort(c);
        return;
    }
    if (n == 0) {
        /* Closed between requests: normal. Closed mid-request: nothing can
         * be answered to a client that is gone. */
        client_abort(c);
        return;
    }
    c->in.len += (size_t)n;
    process_input(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (flush(c) != 0)
        return;
    if (c->out.len > 0)
        return;
    if (c->state == CS_CLOSING) {
        linger(c);
        return;
    }
    if (c->state != CS_BUSY)
        return; /* a 100 Continue went out; the request's deadline still runs */
    event_del(&c->timer);
    if (c->response_ended)
        try_complete(c);
    else if (c->txn != NULL)
        proxy_client_drained(c->txn);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (c->dead) {
        client_free(c);
        return;
    }
    switch (c->state) {
    case CS_HEAD:
        reply_error(c, 408, "timed out reading the request head");
        return;
    case CS_BODY:
        reply_error(c, 408, "timed out reading the request body");
        return;
    default:
        /* Keep-alive idle, or a client that stopped reading its answer. */
        client_free(c);
        return;
    }
}

void client_drain(struct client *c)
{
    c->keep_alive = 0;
    if (c->state == CS_IDLE && c->in.len == 0)
        client_abort(c);
}

static void format_address(struct client *c, const struct sockaddr *peer)
{
    c->address[0] = '\0';
    if (peer->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, c->address,
                  sizeof(c->address));
    else if (peer->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, c->address,
                  sizeof(c->address));
}

void client_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    (void)peer_len;
    struct client *c = mem_calloc(1, sizeof(*c));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->w = w;
    c->fd = fd;
    c->state = CS_IDLE;
    format_address(c, peer);
    event_assign(&c->rev, w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    event_assign(&c->wev, w->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    evtimer_assign(&c->timer, w->base, on_timer, c);
    worker_client_opened(w, c);
    event_add(&c->rev, NULL);
    arm_timer(c, limits(c)->keepalive_timeout_ms);
}

void client_link(struct client **head, struct client *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

void client_unlink(struct client **head, struct client *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
}
