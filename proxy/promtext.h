/*
 * promtext: the process's figures in Prometheus text format (0.0.4), what
 * GET /metrics answers.
 *
 * Names start with strangler_ and follow Prometheus conventions: counters
 * end in _total, durations are in seconds, sizes in bytes, and each family
 * has its HELP and TYPE. The families a migration team reads first:
 *   strangler_requests_total{route,target,side,outcome}
 *   strangler_request_duration_seconds{route,target} (histogram)
 *   strangler_new_service_share (what share of the calls new services answer)
 * then upstream errors, adapter faults, dark launching, the event pipeline
 * (spool, publisher, broker) and configuration changes.
 *
 * Label values are escaped as the format requires; route and upstream
 * names need no escaping (config.c allows [A-Za-z0-9._-]) but fault codes
 * and error kinds go through the same writer all the same.
 */
#ifndef STRANGLER_PROXY_PROMTEXT_H
#define STRANGLER_PROXY_PROMTEXT_H

#include "common/buf.h"
#include "interceptors/intercept.h"
#include "interceptors/publisher.h"
#include "interceptors/spool.h"
#include "proxy/config.h"

/* What the figures come from; spool, interceptor and publisher may be NULL. */
struct promtext_sources {
    const struct config *cfg; /* the routes in force */
    struct spool *spool;
    struct interceptor *interceptor;
    struct publisher *publisher;
    unsigned workers;
};

/* Appends every family to out. */
void promtext_write(struct buf *out, const struct promtext_sources *src);

#endif
