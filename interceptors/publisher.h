/*
 * publisher: the thread that moves events from the spool to RabbitMQ.
 *
 * The request path never touches the broker: workers append to the spool
 * and this thread, which owns the AMQP connection alone (rabbitmq-c
 * connections are single-threaded), publishes from it in spool order. It
 * uses publisher confirms with a window of unconfirmed messages, publishes
 * persistent messages to a durable topic exchange with routing key = the
 * event's key, mandatory (an event no queue is bound for comes back, and
 * is counted and logged rather than dropped in silence), and confirms the
 * spool only up to the highest sequence number below which everything was
 * acked. It reconnects with exponential backoff and then republishes
 * everything not yet confirmed; duplicates are expected and consumers
 * de-duplicate by the event id.
 *
 * AMQP properties per DESIGN.md: content_type
 * "application/cloudevents+json", delivery_mode 2, message_id = id,
 * type = type, timestamp, app_id "strangler".
 */
#ifndef STRANGLER_INTERCEPTORS_PUBLISHER_H
#define STRANGLER_INTERCEPTORS_PUBLISHER_H

#include "interceptors/spool.h"

#include <stdint.h>

struct publisher;

struct publisher_config {
    const char *url;      /* amqp://user:pass@host:port/vhost */
    const char *exchange; /* declared durable, type topic */
    unsigned window;      /* unconfirmed messages in flight; 0: 1000 */
    unsigned heartbeat_s; /* AMQP heartbeat; 0: 30 */
    unsigned connect_timeout_ms; /* 0: 5000 */
    unsigned backoff_max_ms;     /* cap on reconnect backoff; 0: 10000 */
};

/*
 * Checks the configuration (the URL must parse) and starts the thread.
 * Returns the publisher, or NULL with a message in err. The spool must
 * outlive the publisher. Strings in cfg are copied.
 */
struct publisher *publisher_start(const struct publisher_config *cfg, struct spool *s, char *err,
                                  size_t errlen);

/*
 * Stops the thread: keeps publishing and waiting for confirms for at most
 * drain_ms, then closes the connection and frees the publisher. Whatever is
 * left unconfirmed stays in the spool for the next start. NULL is a no-op.
 */
void publisher_stop(struct publisher *p, unsigned drain_ms);

struct publisher_stats {
    int connected; /* 1 while a channel in confirm mode is open */
    int blocked;   /* 1 while the broker has sent connection.blocked */
    uint64_t published;
    uint64_t confirmed;
    uint64_t nacked;
    uint64_t returned; /* published with no queue bound for their key */
    uint64_t reconnects;
};
void publisher_get_stats(struct publisher *p, struct publisher_stats *out);

#endif
