/*
 * consumer: the thread that feeds intercepted events into the model.
 *
 * It owns the only AMQP connection (rabbitmq-c connections belong to one
 * thread) and nothing else touches the broker, so the HTTP side never
 * waits on it. On each (re)connect it declares the events exchange exactly
 * as the proxy does (topic, durable, not auto-deleted, not internal), its
 * own durable queue, and one binding per routing key, then consumes with
 * manual acks: a message is acked only after the model has applied it, so
 * a crash in between means a redelivery, which the model's de-duplication
 * absorbs. When the broker goes away it reconnects with exponential backoff
 * (100 ms doubling to 5 s) until stopped.
 */
#ifndef STRANGLER_EXAMPLES_STOCK_CONSUMER_H
#define STRANGLER_EXAMPLES_STOCK_CONSUMER_H

#include "examples/stock-service/model.h"

#include <stddef.h>

struct consumer;

struct consumer_config {
    const char *url;             /* amqp://user:pass@host:port/vhost */
    const char *exchange;        /* topic exchange the proxy publishes to */
    const char *queue;           /* this service's durable queue */
    const char *const *bindings; /* routing keys bound to the queue */
    size_t n_bindings;
    const char *learn_from;      /* the upstream whose answers build the model */
};

/*
 * Checks that cfg->url parses as an AMQP URL. Returns 0, or -1 with a
 * message in err (errlen bytes).
 */
int consumer_check_config(const struct consumer_config *cfg, char *err, size_t errlen);

/*
 * Starts the consumer thread; it applies events to m, which must outlive
 * the consumer. Strings in cfg are copied. Returns the consumer, or NULL
 * (logged) when the configuration is invalid or the thread cannot start.
 */
struct consumer *consumer_start(const struct consumer_config *cfg, struct model *m);

/*
 * Stops the thread (it notices within a quarter of a second, or once a
 * connection attempt in progress times out), closes the connection
 * politely when there is one, joins the thread and frees the consumer.
 * NULL is a no-op.
 */
void consumer_stop(struct consumer *c);

#endif
