/*
 * upstream: connections to the servers behind the proxy, pooled per worker.
 *
 * A pool holds the idle keep-alive connections to one upstream address, for
 * one worker; nothing in it is shared between threads, so it takes no locks.
 * upstream_send() takes an idle connection (or opens one without blocking),
 * writes the request, parses the response (http.c) and hands it to the
 * caller's handler as a head, body spans and an end. A connection goes back
 * to the pool only when the response ended cleanly and both sides allow
 * keep-alive.
 *
 * Stale connections: an idle connection the upstream closes is noticed by
 * its read event and dropped, and idle ones are closed after the upstream's
 * keepalive_timeout, which should be below the server's own. When a reused
 * connection still dies before the first response byte, the handler learns
 * that it was stale and decides whether the request may be sent again: this
 * module never resends on its own (unlike libcurl, which silently resends a
 * POST; FIELD-NOTES.md), because only the caller knows whether the call is
 * safe to repeat.
 *
 * Callbacks run on the worker's thread. A handler may call upstream_cancel()
 * from inside a callback.
 */
#ifndef STRANGLER_PROXY_UPSTREAM_H
#define STRANGLER_PROXY_UPSTREAM_H

#include "proxy/config.h"
#include "proxy/http.h"

#include <event2/event.h>
#include <stddef.h>
#include <sys/uio.h>

struct upstream_pool;
struct upconn;

enum upstream_error {
    UPSTREAM_ERR_NONE = 0,
    UPSTREAM_ERR_CONNECT,         /* refused, unreachable */
    UPSTREAM_ERR_CONNECT_TIMEOUT, /* no connection within connect_timeout */
    UPSTREAM_ERR_TIMEOUT,         /* no answer (or no progress) within timeout */
    UPSTREAM_ERR_CLOSED,          /* the upstream closed before the answer was complete */
    UPSTREAM_ERR_PROTOCOL,        /* the answer is not valid HTTP/1.1 */
};

struct upstream_handler {
    /* The final response head (1xx heads are skipped). Pointers in resp are
     * valid during the call only. */
    void (*on_head)(void *ctx, const struct http_response *resp);
    /* A span of the decoded body. Return nonzero to pause reading until
     * upstream_resume() (the client is slower than the upstream). */
    int (*on_body)(void *ctx, const char *data, size_t len);
    /* The body ended; the connection is already back in the pool or closed. */
    void (*on_done)(void *ctx);
    /* The exchange failed and the connection is closed. `stale` is set when
     * a reused connection died before any byte of an answer arrived. */
    void (*on_error)(void *ctx, enum upstream_error err, int stale, const char *detail);
};

/* A pool for `def` on a worker's event base. Free with upstream_pool_free(). */
struct upstream_pool *upstream_pool_new(struct event_base *base, const struct upstream_def *def);

/* Closes idle connections and frees the pool. In-flight connections must
 * have finished or been cancelled. NULL is a no-op. */
void upstream_pool_free(struct upstream_pool *p);

/* Nonzero when the pool connects where def points, with def's timeouts and
 * keep-alive limits: upstreams that agree on all of it share a pool, and a
 * reload that changes none of it keeps the pool and its idle connections. */
int upstream_pool_serves(const struct upstream_pool *p, const struct upstream_def *def);

/*
 * Sends a request (the iov is copied where it cannot be written at once)
 * and returns the connection carrying it; the handler reports the outcome
 * exactly once through on_done or on_error, never before this returns.
 * `method` is the request's method (HEAD responses have no body); `fresh`
 * forbids reusing an idle connection.
 */
struct upconn *upstream_send(struct upstream_pool *p, const struct iovec *iov, int iovcnt,
                             const char *method, size_t method_len, int fresh,
                             const struct upstream_handler *h, void *ctx);

/* Resumes reading after on_body asked for a pause. */
void upstream_resume(struct upconn *uc);

/* Abandons the exchange: no more callbacks, and the connection is closed
 * (its answer is unread, so it cannot be reused). */
void upstream_cancel(struct upconn *uc);

/* "connection refused", "timed out": for messages. */
const char *upstream_error_text(enum upstream_error err);

#endif
