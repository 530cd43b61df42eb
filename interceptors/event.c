/*
 * event: writes the CloudEvent for one intercepted exchange.
 *
 * The text is written directly with jsonw rather than built as a json-c tree:
 * the request path produces one event per intercepted call, and the attribute
 * order of DESIGN.md ("Events") is part of what consumers see in logs and
 * diffs, so we keep it fixed here.
 */
#include "interceptors/event.h"

#include "common/clock.h"
#include "common/jsonw.h"
#include "legacy-adapters/xrjson.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* A NUL-terminated string, or null when the proxy had none (e.g. no route
 * name for a request that never matched one). */
static void put_cstring_or_null(struct buf *out, const char *s)
{
    if (s == NULL)
        buf_append_str(out, "null");
    else
        jsonw_cstring(out, s);
}

/* `"name":` for the next member of the current object. The names are the
 * event format's own, plain ASCII: nothing to escape, so no escaper runs
 * over them for every event. */
static void put_key(struct buf *out, const char *name)
{
    size_t n = strlen(name);
    buf_reserve(out, n + 3);
    buf_append_char(out, '"');
    buf_append(out, name, n);
    buf_append(out, "\":", 2);
}

/*
 * duration_ms with three decimals (microsecond resolution, which is what the
 * proxy measures). Written by integer arithmetic instead of printf("%.3f") so
 * the decimal separator can never follow a locale; a non-finite duration
 * (a clock bug) becomes null rather than invalid JSON.
 */
static void put_duration_ms(struct buf *out, double ms)
{
    if (!isfinite(ms) || fabs(ms) > 9.0e12) {
        buf_append_str(out, "null");
        return;
    }
    int64_t us = llround(ms * 1000.0);
    uint64_t mag = us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us;
    char frac[4] = {(char)('0' + mag / 100 % 10), (char)('0' + mag / 10 % 10),
                    (char)('0' + mag % 10), '\0'};
    if (us < 0)
        buf_append_char(out, '-');
    buf_append_u64(out, mag / 1000);
    buf_append_char(out, '.');
    buf_append(out, frac, 3);
}

/* The answer: "result" (the value, or null for a fault or when there was no
 * answer), followed by "fault" only when the answer was a fault. */
static int put_answer(struct buf *out, const struct xr_response *r, struct xr_error *err)
{
    put_key(out, "result");
    if (r == NULL || r->is_fault || r->result == NULL) {
        buf_append_str(out, "null");
    } else if (xrjson_write_value(out, r->result, "result", err) < 0) {
        return -1;
    }
    if (r == NULL || !r->is_fault)
        return 0;
    buf_append_str(out, ",\"fault\":{\"faultCode\":");
    jsonw_i64(out, r->fault_code);
    buf_append_str(out, ",\"faultString\":");
    if (r->fault_string == NULL)
        jsonw_string(out, "", 0);
    else
        jsonw_string(out, r->fault_string, r->fault_string_len);
    buf_append_char(out, '}');
    return 0;
}

/* The "data" object. params NULL (a call parsed for routing only) is
 * written as null: it means "not known", which [] would misstate. */
static int put_data(struct buf *out, const struct event_exchange *x, struct xr_error *err)
{
    buf_append_char(out, '{');
    put_key(out, "method");
    put_cstring_or_null(out, x->method);
    buf_append_char(out, ',');
    put_key(out, "params");
    if (x->params == NULL)
        buf_append_str(out, "null");
    else if (xrjson_write_value(out, x->params, "params", err) < 0)
        return -1;
    buf_append_char(out, ',');
    if (put_answer(out, x->response, err) < 0)
        return -1;
    buf_append_char(out, ',');
    put_key(out, "route");
    put_cstring_or_null(out, x->route);
    buf_append_char(out, ',');
    put_key(out, "upstream");
    put_cstring_or_null(out, x->upstream);
    buf_append_char(out, ',');
    put_key(out, "status");
    jsonw_i64(out, x->status);
    buf_append_char(out, ',');
    put_key(out, "duration_ms");
    put_duration_ms(out, x->duration_ms);
    buf_append_char(out, ',');
    put_key(out, "request_id");
    put_cstring_or_null(out, x->request_id);
    buf_append_char(out, '}');
    return 0;
}

/* Everything up to and including `"data":`; the caller writes the data
 * object and the closing brace. Attribute order as in DESIGN.md;
 * CloudEvents 1.0 JSON format, section 3. */
static void put_envelope(struct buf *out, const struct event_envelope *env, const char *subject)
{
    char time[CLOCK_RFC3339_LEN + 1];
    clock_format_rfc3339(time, env->time_us);
    buf_append_str(out, "{\"specversion\":\"1.0\",");
    put_key(out, "id");
    jsonw_cstring(out, env->id);
    buf_append_char(out, ',');
    put_key(out, "source");
    put_cstring_or_null(out, env->source);
    buf_append_char(out, ',');
    put_key(out, "type");
    put_cstring_or_null(out, env->type);
    buf_append_char(out, ',');
    put_key(out, "time");
    jsonw_string(out, time, CLOCK_RFC3339_LEN);
    buf_append_str(out, ",\"datacontenttype\":\"application/json\",");
    put_key(out, "subject");
    put_cstring_or_null(out, subject);
    buf_append_char(out, ',');
    put_key(out, "data");
}

int event_write(struct buf *out, const struct event_envelope *env, const struct event_exchange *x,
                struct xr_error *err)
{
    put_envelope(out, env, x->method);
    if (put_data(out, x, err) < 0)
        return -1;
    buf_append_char(out, '}');
    return 0;
}

void event_write_with_data(struct buf *out, const struct event_envelope *env, const char *subject,
                           const char *data, size_t len)
{
    put_envelope(out, env, subject);
    buf_append(out, data, len);
    buf_append_char(out, '}');
}

void event_default_type(struct buf *out, const char *method)
{
    buf_append_str(out, "legacy.");
    if (method != NULL)
        buf_append_str(out, method);
}
