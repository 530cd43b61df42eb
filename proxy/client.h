/*
 * client: the connections clients open to the proxy.
 *
 * Reads requests with the strict parser of http.c, enforces the limits and
 * deadlines of routes.conf (head size, body size, header and body
 * deadlines against slow clients, keep-alive idle time, send timeout),
 * answers what is malformed itself, and hands every complete request to
 * the pipeline in proxy.c. It then writes whatever the pipeline sends, with
 * backpressure, and keeps the connection for the next request when both
 * sides allow it. Pipelined requests are served one after the other.
 *
 * The request (head and body) stays in the client's buffer, untouched, from
 * the moment it is handed over until the pipeline frees its transaction.
 *
 * Worker thread only.
 */
#ifndef STRANGLER_PROXY_CLIENT_H
#define STRANGLER_PROXY_CLIENT_H

#include "proxy/http.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct client;
struct worker;

/* Takes over an accepted, non-blocking socket. */
void client_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peer_len);

/* Drain: closes the connection now if it is between requests; otherwise
 * makes it close after the current response. */
void client_drain(struct client *c);

/* Closes the connection at once, whatever it is doing (drain deadline). */
void client_close_now(struct client *c);

/* The worker's list of open connections is intrusive: these keep it. */
void client_link(struct client **head, struct client *c);
void client_unlink(struct client **head, struct client *c);
struct client *client_next(const struct client *c);

/* For the pipeline. */
struct worker *client_worker(const struct client *c);
const char *client_address(const struct client *c); /* peer IP as text */

/* Whether the connection stays open after this response; the pipeline
 * writes "Connection: close" when it does not. */
int client_keeps_alive(const struct client *c);

/* Forces the connection to close after this response (a body framed by
 * closing the connection, for instance). */
void client_close_after_response(struct client *c);

/* Queues bytes of the response, writing at once when nothing is waiting. */
void client_sendv(struct client *c, const struct iovec *iov, int iovcnt);
void client_send(struct client *c, const char *data, size_t len);

/* Bytes queued but not yet written: the pipeline pauses its upstream while
 * this is above CLIENT_HIGH_WATER and resumes on proxy_client_drained(). */
size_t client_pending(const struct client *c);
#define CLIENT_HIGH_WATER (256 * 1024)

/* The response is complete; once written, the pipeline's transaction is
 * freed and the connection goes on to the next request or closes. */
void client_end_response(struct client *c);

/* Gives up on the connection: closed as soon as control returns to the
 * event loop, the transaction freed. Safe from any pipeline callback. */
void client_abort(struct client *c);

#endif
