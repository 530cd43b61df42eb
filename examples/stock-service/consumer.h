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
 *
 * In stream mode the queue is a RabbitMQ stream, an append-only log that
 * consumers read without removing anything. The first subscription starts
 * at the configured offset (normally "first": the whole history); after a
 * reconnect it resumes just after the last message it applied, so the
 * history is not replayed over a model that already holds it.
 */
#ifndef STRANGLER_EXAMPLES_STOCK_CONSUMER_H
#define STRANGLER_EXAMPLES_STOCK_CONSUMER_H

#include "examples/stock-service/model.h"

#include <stddef.h>
#include <stdint.h>

struct consumer;

/* Where a stream consumer starts reading: the x-stream-offset argument of
 * basic.consume. RabbitMQ stores a stream in chunks of messages and starts
 * LAST and TIMESTAMP at a chunk boundary, so they may deliver a few
 * messages from just before the point asked for. */
enum consumer_offset_kind {
    CONSUMER_OFFSET_FIRST = 0, /* the oldest message the stream still holds */
    CONSUMER_OFFSET_LAST,      /* the last chunk written, then what follows */
    CONSUMER_OFFSET_NEXT,      /* only what is written after subscribing */
    CONSUMER_OFFSET_ABSOLUTE,  /* the message at position `value` (from 0) */
    CONSUMER_OFFSET_TIMESTAMP, /* the first chunk written at or after `value`,
                                * in seconds since 1970-01-01T00:00:00Z */
};

struct consumer_offset {
    enum consumer_offset_kind kind;
    uint64_t value; /* ABSOLUTE and TIMESTAMP only */
};

struct consumer_config {
    const char *url;             /* amqp://user:pass@host:port/vhost */
    const char *exchange;        /* topic exchange the proxy publishes to */
    const char *queue;           /* this service's durable queue, or the stream */
    const char *const *bindings; /* routing keys bound to the queue */
    size_t n_bindings;
    const char *learn_from;      /* the upstream whose answers build the model */

    /* Stream mode: `queue` is a stream queue (x-queue-type "stream"),
     * declared with the retention arguments below and read from `offset`.
     * Reading a stream removes nothing, so any number of services can each
     * read the whole history. The retention arguments must be the same as
     * in every other declaration of that stream, or the broker refuses the
     * declaration (406 PRECONDITION_FAILED). */
    int stream;
    struct consumer_offset offset; /* where the first subscription starts */
    const char *max_age;           /* x-max-age ("7D", "12h"), NULL for none */
    uint64_t max_bytes;            /* x-max-length-bytes, 0 for none */
};

/*
 * Checks that cfg->url parses as an AMQP URL. Returns 0, or -1 with a
 * message in err (errlen bytes).
 */
int consumer_check_config(const struct consumer_config *cfg, char *err, size_t errlen);

/*
 * Parses a stream offset: "first", "last", "next", a position (decimal
 * digits), or a point in time, either "YYYY-MM-DDTHH:MM:SSZ" (UTC) or
 * "@SECONDS" since the epoch. Returns 0 and sets *out, or -1.
 */
int consumer_offset_parse(const char *text, struct consumer_offset *out);

/*
 * Checks a stream's x-max-age as RabbitMQ accepts it: a positive number
 * followed by one unit, Y, M, D, h, m or s ("7D"). Returns 0, or -1.
 */
int consumer_max_age_check(const char *text);

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
