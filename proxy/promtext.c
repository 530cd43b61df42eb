#include "proxy/promtext.h"

#include "common/clock.h"
#include "proxy/metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* ---- the format ---- */

static void put_family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the text format requires (\, " and newline). */
static void put_label_value(struct buf *b, const char *v)
{
    buf_append_char(b, '"');
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            buf_append_char(b, '\\');
        if (*v == '\n') {
            buf_append_str(b, "\\n");
            continue;
        }
        buf_append_char(b, *v);
    }
    buf_append_char(b, '"');
}

/* name{k1="v1",k2="v2"} value: labels as NULL-terminated key, value pairs. */
static void put_sample(struct buf *b, const char *name, const char *const *labels,
                       const char *value)
{
    buf_append_str(b, name);
    if (labels != NULL && labels[0] != NULL) {
        buf_append_char(b, '{');
        for (size_t i = 0; labels[i] != NULL; i += 2) {
            if (i > 0)
                buf_append_char(b, ',');
            buf_append_str(b, labels[i]);
            buf_append_char(b, '=');
            put_label_value(b, labels[i + 1]);
        }
        buf_append_char(b, '}');
    }
    buf_append_char(b, ' ');
    buf_append_str(b, value);
    buf_append_char(b, '\n');
}

static void put_u64_sample(struct buf *b, const char *name, const char *const *labels,
                           uint64_t value)
{
    char text[24];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
    put_sample(b, name, labels, text);
}

static void put_double_sample(struct buf *b, const char *name, const char *const *labels,
                              double value)
{
    char text[40];
    snprintf(text, sizeof(text), "%.6f", value);
    put_sample(b, name, labels, text);
}

/* A family of one unlabelled sample. */
static void put_metric(struct buf *b, const char *name, const char *type, const char *help,
                       uint64_t value)
{
    put_family(b, name, type, help);
    put_u64_sample(b, name, NULL, value);
}

/* ---- traffic ---- */

static void put_target_outcomes(void *arg, struct target_counters *t)
{
    struct buf *b = arg;
    const char *side = t->upstream[0] == '\0' ? "" : t->new_side ? "new" : "legacy";
    for (int o = 0; o < METRICS_OUTCOMES; o++) {
        uint64_t n = metrics_read(&t->outcomes[o]);
        if (n == 0 && o != METRICS_OUTCOME_OK)
            continue; /* an outcome never seen is no series, as client libraries do */
        const char *labels[] = {"route", t->route, "target",  t->upstream,
                                "side",  side,     "outcome", metrics_outcome_name(o),
                                NULL};
        put_u64_sample(b, "strangler_requests_total", labels, n);
    }
}

static void put_target_latency(void *arg, struct target_counters *t)
{
    struct buf *b = arg;
    uint64_t cumulative = 0;
    char le[32];
    for (int i = 0; i <= METRICS_LATENCY_BUCKETS; i++) {
        cumulative += metrics_read(&t->latency[i]);
        if (i < METRICS_LATENCY_BUCKETS)
            snprintf(le, sizeof(le), "%g", (double)metrics_latency_bounds_us[i] / 1e6);
        else
            snprintf(le, sizeof(le), "+Inf");
        const char *labels[] = {"route", t->route, "target", t->upstream, "le", le, NULL};
        put_u64_sample(b, "strangler_request_duration_seconds_bucket", labels, cumulative);
    }
    const char *labels[] = {"route", t->route, "target", t->upstream, NULL};
    put_double_sample(b, "strangler_request_duration_seconds_sum", labels,
                      (double)metrics_read(&t->latency_sum_us) / 1e6);
    put_u64_sample(b, "strangler_request_duration_seconds_count", labels, cumulative);
}

static void put_upstream_errors(void *arg, struct upstream_counters *u)
{
    for (int e = 0; e < METRICS_UPSTREAM_ERRORS; e++) {
        uint64_t n = metrics_read(&u->errors[e]);
        if (n == 0)
            continue;
        const char *labels[] = {"upstream", u->name, "error", metrics_upstream_error_name(e), NULL};
        put_u64_sample(arg, "strangler_upstream_errors_total", labels, n);
    }
}

static void put_fault_count(struct buf *b, const char *upstream, const char *code, uint64_t n)
{
    const char *labels[] = {"upstream", upstream, "code", code, NULL};
    put_u64_sample(b, "strangler_adapter_faults_total", labels, n);
}

static void put_adapter_faults(void *arg, struct upstream_counters *u)
{
    struct metrics_fault_code codes[METRICS_MAX_FAULT_CODES];
    size_t n;
    uint64_t other;
    char code[24];
    metrics_read_faults(u, codes, &n, &other);
    for (size_t i = 0; i < n; i++) {
        snprintf(code, sizeof(code), "%lld", (long long)codes[i].code);
        put_fault_count(arg, u->name, code, codes[i].count);
    }
    if (other > 0)
        put_fault_count(arg, u->name, "other", other);
}

static void put_traffic(struct buf *b)
{
    uint64_t new_side, all;
    put_family(b, "strangler_requests_total", "counter",
               "Calls and requests by route, the upstream that was to answer (target), its side "
               "(new service or legacy) and outcome; a multicall counts each of its calls.");
    metrics_foreach_target(put_target_outcomes, b);
    put_family(b, "strangler_request_duration_seconds", "histogram",
               "Time from a request's arrival to the last byte of its answer, by route and "
               "target.");
    metrics_foreach_target(put_target_latency, b);
    metrics_answered_calls(&new_side, &all);
    put_family(b, "strangler_new_service_share", "gauge",
               "Share (0 to 1) of the calls answered by an upstream since the start that new "
               "services answered: how much of the traffic is strangled.");
    put_double_sample(b, "strangler_new_service_share", NULL,
                      all ? (double)new_side / (double)all : 0.0);
    put_family(b, "strangler_upstream_errors_total", "counter",
               "Exchanges an upstream gave no answer to, by kind: connect, connect_timeout, "
               "timeout, closed, protocol, too_large.");
    metrics_foreach_upstream(put_upstream_errors, b);
    put_family(b, "strangler_adapter_faults_total", "counter",
               "Faults answered for calls through a new service's adapter, by fault code (the "
               "service's own, or -32300 and the like where the adapter made one).");
    metrics_foreach_upstream(put_adapter_faults, b);
}

/* ---- routes ---- */

/* One counter family, per route in force, from a field of route_counters. */
static void put_route_family(struct buf *b, const struct config *cfg, const char *name,
                             const char *help, size_t offset)
{
    put_family(b, name, "counter", help);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct route *r = &cfg->routes[i];
        atomic_uint_fast64_t *c = (atomic_uint_fast64_t *)((char *)r->counters + offset);
        const char *labels[] = {"route", r->name, NULL};
        put_u64_sample(b, name, labels, metrics_read(c));
    }
}

/* A family of one sample per route in `mode` and value of one label, from
 * fields of route_counters (offsets, NULL-terminated values). */
static void put_route_split(struct buf *b, const struct config *cfg, enum route_mode mode,
                            const char *name, const char *help, const char *label,
                            const char *const *values, const size_t *offsets)
{
    put_family(b, name, "counter", help);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct route *r = &cfg->routes[i];
        if (r->mode != mode)
            continue;
        for (size_t k = 0; values[k] != NULL; k++) {
            atomic_uint_fast64_t *c = (atomic_uint_fast64_t *)((char *)r->counters + offsets[k]);
            const char *labels[] = {"route", r->name, label, values[k], NULL};
            put_u64_sample(b, name, labels, metrics_read(c));
        }
    }
}

#define RC(f) offsetof(struct route_counters, f)

static void put_routes(struct buf *b, const struct config *cfg)
{
    put_route_family(b, cfg, "strangler_route_requests_total",
                     "Calls and requests each route took.", RC(requests));
    put_route_family(b, cfg, "strangler_route_faults_total",
                     "Calls answered with a fault, where the proxy read the answer.", RC(faults));
    put_route_family(b, cfg, "strangler_route_upstream_errors_total",
                     "Calls the upstream gave no answer to: refused, timed out, cut.", RC(errors));
    put_route_family(b, cfg, "strangler_route_events_total",
                     "Events recorded for the route's calls.", RC(events));
    static const char *const results[] = {"match", "mismatch", "error", "dropped", NULL};
    static const size_t result_fields[] = {RC(shadow_matches), RC(shadow_mismatches),
                                           RC(shadow_errors), RC(shadow_dropped)};
    put_route_split(b, cfg, ROUTE_SHADOW, "strangler_shadow_comparisons_total",
                    "Shadow copies by result: the candidate's answer matched the primary's, "
                    "differed, could not be compared (error), or was not sent (dropped).",
                    "result", results, result_fields);
    static const char *const sides[] = {"new", "rest", NULL};
    static const size_t side_fields[] = {RC(canary_new), RC(canary_rest)};
    put_route_split(b, cfg, ROUTE_CANARY, "strangler_canary_calls_total",
                    "Calls a canary route sent to its new side and to the rest.", "side", sides,
                    side_fields);
    put_route_family(b, cfg, "strangler_shadow_sent_total", "Shadow copies sent to the candidate.",
                     RC(shadow_sent));
    put_route_family(b, cfg, "strangler_fallbacks_total",
                     "Calls sent again to a fallback route's backup.", RC(fallbacks));
    put_route_family(b, cfg, "strangler_rollbacks_total",
                     "Times the rollback guard sent the route back to its legacy side.",
                     RC(rollbacks));
}

/* ---- events ---- */

/* The event pipeline, from the interceptor through the spool to the broker:
 * what a migration team watches to know events flow and nothing is lost. */
static void put_events(struct buf *b, const struct promtext_sources *src)
{
    if (src->spool == NULL)
        return;
    struct interceptor_stats is = {0};
    struct spool_stats ss;
    struct publisher_stats ps = {0};
    if (src->interceptor != NULL)
        interceptor_get_stats(src->interceptor, &is);
    spool_get_stats(src->spool, &ss);
    if (src->publisher != NULL)
        publisher_get_stats(src->publisher, &ps);
    int64_t oldest_s = ss.oldest_unconfirmed_time_us > 0
                           ? (clock_realtime_us() - ss.oldest_unconfirmed_time_us) / 1000000
                           : 0;

    put_metric(b, "strangler_events_spooled_total", "counter",
               "Events appended to the spool (the last sequence number).", ss.last_seq);
    put_metric(b, "strangler_events_skipped_total", "counter",
               "Intercepted calls whose event could not be spooled (spool full or disk error).",
               is.skipped);
    put_metric(b, "strangler_events_skipped_full_total", "counter",
               "Events not spooled because the spool was at its cap (full=skip).",
               ss.full_refusals);
    put_metric(b, "strangler_events_published_total", "counter",
               "Events sent to the broker by the running publisher, republished ones included.",
               ps.published);
    put_metric(b, "strangler_events_confirmed_total", "counter",
               "Events the broker confirmed to the running publisher.", ps.confirmed);
    put_family(b, "strangler_events_failed_total", "counter",
               "Events that did not go as they should, by reason: nacked (the broker refused "
               "them; they are published again), returned (no queue was bound for their key), "
               "append_error (the spool could not write them).");
    const char *nacked[] = {"reason", "nacked", NULL};
    const char *returned[] = {"reason", "returned", NULL};
    const char *append_error[] = {"reason", "append_error", NULL};
    put_u64_sample(b, "strangler_events_failed_total", nacked, ps.nacked);
    put_u64_sample(b, "strangler_events_failed_total", returned, ps.returned);
    put_u64_sample(b, "strangler_events_failed_total", append_error, ss.append_errors);
    put_metric(b, "strangler_events_nacked_total", "counter",
               "Events the broker refused (nack); they are republished.", ps.nacked);
    put_metric(b, "strangler_events_returned_total", "counter",
               "Events the broker returned because no queue was bound for their key.", ps.returned);
    put_metric(b, "strangler_broker_reconnects_total", "counter",
               "Connections to the broker opened after the first.", ps.reconnects);
    put_metric(b, "strangler_broker_configured", "gauge",
               "1 when routes.conf has an events line; 0: the spool is the sink, nothing is "
               "published.",
               (uint64_t)(src->cfg->events.url != NULL));
    put_metric(b, "strangler_broker_connected", "gauge",
               "1 while a confirm-mode channel to the broker is open.", (uint64_t)ps.connected);
    put_metric(b, "strangler_broker_blocked", "gauge",
               "1 while the broker blocks publishing (connection.blocked).", (uint64_t)ps.blocked);
    put_metric(b, "strangler_spool_confirmed_seq", "gauge",
               "Sequence number up to which the broker confirmed everything.", ss.confirmed_seq);
    put_metric(b, "strangler_spool_unconfirmed_events", "gauge",
               "Events spooled and not yet confirmed by the broker.",
               ss.last_seq - ss.confirmed_seq);
    put_metric(b, "strangler_spool_bytes", "gauge", "Bytes of every segment on disk.", ss.bytes);
    put_metric(b, "strangler_spool_retained_bytes", "gauge",
               "Bytes of confirmed events kept for replay.", ss.retained_bytes);
    put_metric(b, "strangler_spool_segments", "gauge", "Segment files on disk.", ss.segments);
    put_metric(b, "strangler_spool_full", "gauge",
               "1 while unconfirmed events fill the spool to its cap (the alarm).",
               (uint64_t)ss.full);
    put_metric(b, "strangler_spool_oldest_unconfirmed_age_seconds", "gauge",
               "Age of the oldest event the broker has not confirmed; 0 when none.",
               oldest_s > 0 ? (uint64_t)oldest_s : 0);
    put_metric(b, "strangler_spool_append_errors_total", "counter",
               "Appends that failed to write (disk full, I/O error).", ss.append_errors);
    put_metric(b, "strangler_spool_fsyncs_total", "counter", "fdatasync calls on segments.",
               ss.fsyncs);
}

/* ---- the process ---- */

static void put_process(struct buf *b, const struct promtext_sources *src)
{
    struct process_counters *pc = metrics_process();
    put_family(b, "strangler_build_info", "gauge", "Always 1; the version is a label.");
    const char *version[] = {"version", PROJECT_VERSION, NULL};
    put_u64_sample(b, "strangler_build_info", version, 1);
    put_family(b, "strangler_start_time_seconds", "gauge",
               "When the process started, in seconds since the Unix epoch.");
    put_double_sample(b, "strangler_start_time_seconds", NULL,
                      (double)atomic_load(&pc->started_us) / 1e6);
    put_metric(b, "strangler_workers", "gauge", "Worker threads serving clients.", src->workers);
    put_metric(b, "strangler_routes", "gauge", "Routes in the table in force.", src->cfg->nroutes);
    put_family(b, "strangler_config_reloads_total", "counter",
               "Reloads of routes.conf (SIGHUP, POST /reload) by result.");
    const char *ok[] = {"result", "success", NULL};
    const char *failed[] = {"result", "failure", NULL};
    put_u64_sample(b, "strangler_config_reloads_total", ok, metrics_read(&pc->reloads));
    put_u64_sample(b, "strangler_config_reloads_total", failed, metrics_read(&pc->reloads_failed));
    put_family(b, "strangler_route_flips_total", "counter",
               "Flips of a route's action (PUT /routes/NAME, strangler flip, the rollback "
               "guard) by result.");
    put_u64_sample(b, "strangler_route_flips_total", ok, metrics_read(&pc->flips));
    put_u64_sample(b, "strangler_route_flips_total", failed, metrics_read(&pc->flips_refused));
    put_family(b, "strangler_config_last_change_timestamp_seconds", "gauge",
               "When the table in force was installed (start, reload or flip), in seconds since "
               "the Unix epoch.");
    put_double_sample(b, "strangler_config_last_change_timestamp_seconds", NULL,
                      (double)atomic_load(&pc->last_change_us) / 1e6);
}

void promtext_write(struct buf *out, const struct promtext_sources *src)
{
    put_traffic(out);
    put_routes(out, src->cfg);
    put_events(out, src);
    put_process(out, src);
}
