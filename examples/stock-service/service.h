/*
 * service: the stock service's HTTP side, speaking the JSON contract.
 *
 * When the proxy routes an XML-RPC call m(p1, ...) to this service it
 * POSTs the JSON array [p1, ...] to BASE/m (DESIGN.md, "The JSON contract").
 * This module answers those calls from the model, plus two plain endpoints:
 *
 *   POST BASE/stock.get ["SKU"] -> 200 {"sku", "name", "qty", "price"}
 *                                  404 {"faultCode": 404,
 *                                       "faultString": "unknown sku: SKU"}
 *                                  400 {"faultCode": 400, ...} wrong params
 *   POST BASE/other             -> 404 {"faultCode": -32601, ...}
 *   GET  /model                 -> the whole model (model_write_json())
 *   GET  /healthz               -> 200 "ok"
 *
 * Faults copy the legacy shop's codes and texts exactly, so a client cannot
 * tell which side answered. It runs on one libevent event_base, in that
 * base's thread only (evhttp is not thread-safe); the model is the only
 * thing it shares with the consumer thread.
 */
#ifndef STRANGLER_EXAMPLES_STOCK_SERVICE_H
#define STRANGLER_EXAMPLES_STOCK_SERVICE_H

#include "examples/stock-service/model.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct service;

struct service_config {
    const char *host; /* address to listen on, e.g. "127.0.0.1" or "::1" */
    uint16_t port;    /* 0 picks a free port */
    const char *base; /* path prefix of the JSON contract, e.g. "/rpc" */
};

/*
 * Binds the listener and registers the handlers on `base`. m must outlive
 * the service. Returns the service, or NULL with a message in err (errlen
 * bytes) when the address cannot be bound. Free with service_free().
 */
struct service *service_new(struct event_base *base, const struct service_config *cfg,
                            struct model *m, char *err, size_t errlen);

/* Writes the bound address as "HOST:PORT" ("[HOST]:PORT" for IPv6) into
 * out (outlen bytes), with the real port when 0 was asked for. */
void service_format_address(const struct service *s, char *out, size_t outlen);

/* Closes the listener and its connections. NULL is a no-op. */
void service_free(struct service *s);

#endif
