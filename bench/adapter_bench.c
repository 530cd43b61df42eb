/*
 * adapter-bench: what the JSON adapter costs on one large call, next to the
 * network round trip that the call makes anyway.
 *
 * Issue 4 asks that XML-RPC -> JSON -> XML-RPC for a 100 KB struct-heavy
 * call cost less than the network round trip it replaces. This program
 * builds such a call deterministically, then times each step the proxy takes
 * for an adapted call, with the same functions and in the same way
 * (proxy.c): one arena per request, reset between requests, fresh buffers
 * for the upstream request and the client's answer.
 *
 *   (a) xr_parse_call(XR_PARSE_FULL)   the client's XML-RPC call
 *   (b) adapter_json_ops.encode        the parameters as the JSON body
 *   (c) adapter_json_ops.decode        the service's JSON answer (same size
 *                                      and shape as the parameters)
 *   (d) xr_write_response              the XML-RPC answer to the client
 *
 * It then times a loopback TCP exchange of the same sizes (keep-alive
 * connection, TCP_NODELAY, a server thread that reads the whole request and
 * answers), which is the cheapest round trip there is.
 *
 * Only time is measured, not allocations. The program exits non-zero only
 * when something fails (a parse, a socket); the figures never decide the
 * exit status.
 */
#include "common/buf.h"
#include "common/clock.h"
#include "common/mem.h"
#include "legacy-adapters/adapter.h"
#include "legacy-adapters/base64.h"
#include "legacy-adapters/xmlrpc.h"
#include "legacy-adapters/xrjson.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef BENCH_BUILD_TYPE
#define BENCH_BUILD_TYPE "unknown"
#endif

/* The call grows order by order until it reaches this size (issue 4). */
#define TARGET_BYTES (100 * 1024)

/* (a)-(d) take about 1.6 ms on the machine of RESULTS.md: 2000 iterations
 * plus the warm-up run for about 4 s, long enough for a stable p99. */
#define DEFAULT_ITERATIONS 2000
#define MAX_ITERATIONS     10000000ULL

/* A loopback peer that stops answering must not hang the run. */
#define SOCKET_TIMEOUT_S 10

#define APPEND_LIT(b, s) buf_append((b), (s), sizeof(s) - 1)
#define NELEM(a)         (sizeof(a) / sizeof((a)[0]))

enum step {
    STEP_PARSE = 0,
    STEP_ENCODE,
    STEP_DECODE,
    STEP_WRITE,
    STEP_TOTAL,
    STEP_COUNT,
};

static const char *const step_label[STEP_COUNT] = {
    "(a) parse XML-RPC call: `xr_parse_call` FULL",
    "(b) params to JSON body: `adapter_json_ops.encode`",
    "(c) JSON answer to result: `adapter_json_ops.decode`",
    "(d) result to XML-RPC: `xr_write_response`",
    "**total (a)+(b)+(c)+(d)**",
};

struct stats {
    double median_us;
    double p99_us;
    double min_us;
};

/* What the run built once and every iteration works on. */
struct workload {
    struct buf call;     /* the client's XML-RPC request */
    struct buf answer;   /* the service's JSON answer */
    struct buf json_req; /* the JSON body (b) produced, for the sizes line */
    struct buf response; /* the XML-RPC answer (d) produced */
    size_t orders;
    size_t structs;
};

/* --- A deterministic call --------------------------------------------------- */

/* xorshift64*: fixed seed, so every run and every machine gets the same
 * call byte for byte, and figures compare across runs. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) % n);
}

/* XML text as Python's xmlrpc.client escapes it: &, < and >. */
static void append_escaped(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '&')
            APPEND_LIT(b, "&amp;");
        else if (*s == '<')
            APPEND_LIT(b, "&lt;");
        else if (*s == '>')
            APPEND_LIT(b, "&gt;");
        else
            buf_append_char(b, *s);
    }
}

/*
 * The writers below lay the XML out as Python's xmlrpc.client does, since
 * that is what legacy clients send: the call is byte for byte what
 * xmlrpc.client.dumps() writes for the same values (checked with Python
 * 3.11), except <i8>, which Python refuses to send. A value inside a struct
 * is wrapped in <member> when name is set.
 */
static void member_begin(struct buf *b, const char *name)
{
    if (name == NULL)
        return;
    APPEND_LIT(b, "<member>\n<name>");
    append_escaped(b, name);
    APPEND_LIT(b, "</name>\n");
}

static void member_end(struct buf *b, const char *name)
{
    if (name != NULL)
        APPEND_LIT(b, "</member>\n");
}

static void put_int(struct buf *b, const char *name, int64_t v)
{
    member_begin(b, name);
    /* 32-bit values are <int> by the spec; wider ones need <i8>. */
    if (v >= INT32_MIN && v <= INT32_MAX)
        buf_appendf(b, "<value><int>%" PRId64 "</int></value>\n", v);
    else
        buf_appendf(b, "<value><i8>%" PRId64 "</i8></value>\n", v);
    member_end(b, name);
}

static void put_string(struct buf *b, const char *name, const char *s)
{
    member_begin(b, name);
    APPEND_LIT(b, "<value><string>");
    append_escaped(b, s);
    APPEND_LIT(b, "</string></value>\n");
    member_end(b, name);
}

/* Cents as a double, written as Python's repr writes it: "12.5", "3.0".
 * For cents, "%.2f" less its trailing zeros (one digit kept) is that text. */
static void put_money(struct buf *b, const char *name, unsigned cents)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%.2f", cents / 100.0);

    for (int k = 0; k < 2 && n > 0 && text[n - 1] == '0' && text[n - 2] != '.'; k++)
        n--;
    member_begin(b, name);
    APPEND_LIT(b, "<value><double>");
    buf_append(b, text, (size_t)n);
    APPEND_LIT(b, "</double></value>\n");
    member_end(b, name);
}

static void put_bool(struct buf *b, const char *name, int v)
{
    member_begin(b, name);
    buf_appendf(b, "<value><boolean>%d</boolean></value>\n", v ? 1 : 0);
    member_end(b, name);
}

static void put_datetime(struct buf *b, const char *name, uint64_t *rng)
{
    member_begin(b, name);
    buf_appendf(b,
                "<value><dateTime.iso8601>2026%02u%02uT%02u:%02u:%02u</dateTime.iso8601></value>\n",
                1 + rng_below(rng, 12), 1 + rng_below(rng, 28), rng_below(rng, 24),
                rng_below(rng, 60), rng_below(rng, 60));
    member_end(b, name);
}

/* A small binary blob (a thumbnail hash, a signature): base64 text followed
 * by the newline that Python's base64.encodebytes ends with. */
static void put_base64(struct buf *b, const char *name, uint64_t *rng, size_t len)
{
    unsigned char bytes[64];

    for (size_t i = 0; i < len && i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)rng_next(rng);
    member_begin(b, name);
    APPEND_LIT(b, "<value><base64>\n");
    base64_encode(b, bytes, len < sizeof(bytes) ? len : sizeof(bytes));
    APPEND_LIT(b, "\n</base64></value>\n");
    member_end(b, name);
}

static void struct_begin(struct buf *b, const char *name)
{
    member_begin(b, name);
    APPEND_LIT(b, "<value><struct>\n");
}

static void struct_end(struct buf *b, const char *name)
{
    APPEND_LIT(b, "</struct></value>\n");
    member_end(b, name);
}

static void array_begin(struct buf *b, const char *name)
{
    member_begin(b, name);
    APPEND_LIT(b, "<value><array><data>\n");
}

static void array_end(struct buf *b, const char *name)
{
    APPEND_LIT(b, "</data></array></value>\n");
    member_end(b, name);
}

/* Text with multi-byte UTF-8 and XML specials, so the benchmark pays for
 * escaping and for UTF-8 checks the way real customer data makes it. */
static const char *const customers[] = {
    "Zoë Müller & Söhne <GmbH>",
    "Łódź Trading sp. z o.o.",
    "Café \"Le Procope\"",
    "ACME Corp",
    "Ørsted & Co",
    "東京商事株式会社",
    "Jürgen's <Werkstatt>",
    "Plain Old Customer Ltd",
};
static const char *const cities[] = {
    "München", "Kraków", "Göteborg", "São Paulo", "Zürich", "Paris", "Reykjavík", "Boston",
};
static const char *const tags[] = {
    "express", "fragile & heavy", "gift <wrap>", "b2b", "ünïcødé", "repeat",
};

/* One order: 4 structs (the order, its address, two lines), every XML-RPC
 * type but nil, and a nested struct and arrays. */
static void append_order(struct buf *b, uint64_t *rng, size_t i)
{
    char text[160];

    struct_begin(b, NULL);
    put_int(b, "id", 100000 + (int64_t)i);
    put_int(b, "customer_id", 10000 + rng_below(rng, 90000));
    put_int(b, "adjustment", -(int64_t)rng_below(rng, 500));
    put_int(b, "serial", 12884901888LL + (int64_t)i * 7919); /* beyond 32 bits: <i8> */
    put_string(b, "customer", customers[rng_below(rng, NELEM(customers))]);
    snprintf(text, sizeof(text), "Order #%zu: deliver < 5 pm & ring twice — “thanks”", i);
    put_string(b, "note", text);
    put_money(b, "total", 100 + rng_below(rng, 9999900));
    put_bool(b, "paid", i % 3 != 0);
    put_datetime(b, "created", rng);
    put_base64(b, "signature", rng, 18);

    struct_begin(b, "ship_to");
    snprintf(text, sizeof(text), "Hauptstraße %u", 1 + rng_below(rng, 200));
    put_string(b, "street", text);
    put_string(b, "city", cities[rng_below(rng, NELEM(cities))]);
    snprintf(text, sizeof(text), "%05u", rng_below(rng, 100000));
    put_string(b, "zip", text);
    put_string(b, "country", "DE");
    struct_end(b, "ship_to");

    array_begin(b, "lines");
    for (int l = 0; l < 2; l++) {
        struct_begin(b, NULL);
        snprintf(text, sizeof(text), "SKU-%05u", rng_below(rng, 100000));
        put_string(b, "sku", text);
        put_int(b, "qty", 1 + rng_below(rng, 20));
        put_money(b, "unit_price", 50 + rng_below(rng, 50000));
        struct_end(b, NULL);
    }
    array_end(b, "lines");

    array_begin(b, "tags");
    for (unsigned t = 0, n = 1 + rng_below(rng, 3); t < n; t++)
        put_string(b, NULL, tags[rng_below(rng, NELEM(tags))]);
    array_end(b, "tags");
    struct_end(b, NULL);
}

/*
 * Builds orders.import(batch, [order, ...], options) into *out, adding
 * orders until the whole call reaches TARGET_BYTES. Sets *orders to how many
 * it added.
 */
static void build_call(struct buf *out, size_t *orders)
{
    struct buf head = BUF_INIT, body = BUF_INIT, tail = BUF_INIT;
    uint64_t rng = 0x5eed2026c0ffee01ULL;
    size_t n = 0;

    APPEND_LIT(&head,
               "<?xml version='1.0'?>\n<methodCall>\n<methodName>orders.import</methodName>\n"
               "<params>\n<param>\n");
    put_string(&head, NULL, "batch 2026-11-01/0042");
    APPEND_LIT(&head, "</param>\n<param>\n");
    array_begin(&head, NULL);

    array_end(&tail, NULL);
    APPEND_LIT(&tail, "</param>\n<param>\n");
    struct_begin(&tail, NULL);
    put_bool(&tail, "dry_run", 0);
    put_string(&tail, "source", "legacy-erp");
    struct_end(&tail, NULL);
    APPEND_LIT(&tail, "</param>\n</params>\n</methodCall>\n");

    while (head.len + body.len + tail.len < TARGET_BYTES)
        append_order(&body, &rng, n++);

    buf_append(out, head.data, head.len);
    buf_append(out, body.data, body.len);
    buf_append(out, tail.data, tail.len);
    *orders = n;
    buf_dispose(&head);
    buf_dispose(&body);
    buf_dispose(&tail);
}

/* --- Figures ---------------------------------------------------------------- */

static int compare_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Nearest-rank percentile of sorted samples, q in per mille: the smallest
 * sample that at least q/1000 of all samples do not exceed. Integers, so
 * that 99% of 2000 is rank 1980 and not 1981 by a rounding error. */
static uint64_t percentile(const uint64_t *sorted, size_t n, size_t q)
{
    size_t rank = (n * q + 999) / 1000;
    return sorted[rank < 1 ? 0 : rank - 1];
}

/* Sorts the samples in place (their order is not needed afterwards). */
static struct stats stats_of(uint64_t *ns, size_t n)
{
    struct stats s;

    qsort(ns, n, sizeof(*ns), compare_u64);
    s.median_us = (double)percentile(ns, n, 500) / 1e3;
    s.p99_us = (double)percentile(ns, n, 990) / 1e3;
    s.min_us = (double)ns[0] / 1e3;
    return s;
}

/* MB/s with MB = 10^6 bytes: bytes per microsecond. */
static double mb_per_s(size_t bytes, double us)
{
    return us > 0 ? (double)bytes / us : 0;
}

/* --- The adapter's steps ---------------------------------------------------- */

/*
 * Produces, once and outside any timing, the service's JSON answer that
 * step (c) decodes: the parameters written as JSON, so the answer has the
 * call's size and shape, as an import that echoes what it stored would.
 * Returns 0, or -1 after printing why.
 */
static int prepare(struct workload *w, const struct xr_limits *lim)
{
    struct arena *a = arena_new(8192);
    struct xr_call call;
    struct xr_error err;
    int rc = -1;

    if (xr_parse_call(a, w->call.data, w->call.len, lim, XR_PARSE_FULL, &call, &err) < 0) {
        fprintf(stderr, "adapter-bench: the generated call does not parse: %d %s\n", err.code,
                err.message);
        goto out;
    }
    if (xrjson_write_value(&w->answer, call.params, "result", &err) < 0) {
        fprintf(stderr, "adapter-bench: the parameters have no JSON form: %s\n", err.message);
        goto out;
    }
    rc = 0;
out:
    arena_free(a);
    return rc;
}

/*
 * Runs warmup + n requests through (a)-(d) and stores the last n timings of
 * each step in ns[step][i] (nanoseconds). Keeps the last JSON body and
 * XML-RPC answer in w for the sizes line. Returns 0, or -1 after printing
 * why.
 */
static int run_adapter(struct workload *w, const struct xr_limits *lim, size_t warmup, size_t n,
                       uint64_t *ns[STEP_COUNT])
{
    /* 8 KB first block, as proxy.c gives each transaction; reset keeps only
     * that block, so every request allocates the rest again, as a new
     * transaction's arena would. */
    struct arena *a = arena_new(8192);
    struct adapter_request req;
    struct buf xml = BUF_INIT;
    struct xr_call call;
    struct xr_response resp;
    struct xr_error err;
    int rc = -1;
    struct adapter_call ac = {
        .call = &call,
        .route = "orders",
        .upstream = "orders-service",
        .base_path = "/rpc",
        .request_id = "bench-0000000000000001",
        .limits = lim,
    };
    struct adapter_answer ans = {
        .status = 200,
        .content_type = "application/json",
        .content_type_len = sizeof("application/json") - 1,
        .body = w->answer.data,
        .body_len = w->answer.len,
    };

    adapter_request_init(&req);
    for (size_t it = 0; it < warmup + n; it++) {
        arena_reset(a);
        adapter_request_dispose(&req);
        adapter_request_init(&req);
        buf_dispose(&xml);

        uint64_t t0 = clock_monotonic_ns();
        if (xr_parse_call(a, w->call.data, w->call.len, lim, XR_PARSE_FULL, &call, &err) < 0) {
            fprintf(stderr, "adapter-bench: (a) parse failed: %d %s\n", err.code, err.message);
            goto out;
        }
        uint64_t t1 = clock_monotonic_ns();
        if (adapter_json_ops.encode(&ac, &req, &err) < 0) {
            fprintf(stderr, "adapter-bench: (b) encode failed: %d %s\n", err.code, err.message);
            goto out;
        }
        uint64_t t2 = clock_monotonic_ns();
        adapter_json_ops.decode(a, &ac, &ans, &resp);
        uint64_t t3 = clock_monotonic_ns();
        xr_write_response(&xml, &resp);
        uint64_t t4 = clock_monotonic_ns();

        /* A fault is still well-formed XML, and cheaper: timing one would
         * flatter the adapter. */
        if (resp.is_fault) {
            fprintf(stderr, "adapter-bench: (c) decode answered a fault: %.*s\n",
                    (int)resp.fault_string_len, resp.fault_string);
            goto out;
        }
        if (it < warmup)
            continue;
        size_t i = it - warmup;
        ns[STEP_PARSE][i] = t1 - t0;
        ns[STEP_ENCODE][i] = t2 - t1;
        ns[STEP_DECODE][i] = t3 - t2;
        ns[STEP_WRITE][i] = t4 - t3;
        ns[STEP_TOTAL][i] = t4 - t0;
    }

    /* The JSON body the service receives is the answer's twin: a body that
     * differs means the benchmark is not measuring what it says. */
    if (req.body.len != w->answer.len || memcmp(req.body.data, w->answer.data, req.body.len) != 0) {
        fprintf(stderr, "adapter-bench: the encoded body differs from the JSON answer\n");
        goto out;
    }
    buf_append(&w->json_req, req.body.data, req.body.len);
    buf_append(&w->response, xml.data, xml.len);
    rc = 0;
out:
    buf_dispose(&xml);
    adapter_request_dispose(&req);
    arena_free(a);
    return rc;
}

/*
 * Reads the XML-RPC answer (d) wrote back and writes its result as JSON
 * again: it must be the service's JSON answer byte for byte, or the steps
 * lost something on the way and their timings describe the wrong work.
 * Outside any timing. Returns 0, or -1 after printing why.
 */
static int check_round_trip(const struct workload *w, const struct xr_limits *lim)
{
    struct arena *a = arena_new(8192);
    struct buf json = BUF_INIT;
    struct xr_response r;
    struct xr_error err;
    int rc = -1;

    if (xr_parse_response(a, w->response.data, w->response.len, lim, &r, &err) < 0) {
        fprintf(stderr, "adapter-bench: the XML-RPC answer does not parse: %d %s\n", err.code,
                err.message);
        goto out;
    }
    if (r.is_fault || xrjson_write_value(&json, r.result, "result", &err) < 0 ||
        json.len != w->answer.len || memcmp(json.data, w->answer.data, json.len) != 0) {
        fprintf(stderr, "adapter-bench: the XML-RPC answer differs from the service's answer\n");
        goto out;
    }
    rc = 0;
out:
    buf_dispose(&json);
    arena_free(a);
    return rc;
}

/* --- The loopback round trip ------------------------------------------------ */

/* Reads exactly len bytes. Returns 1, 0 on end of stream before the first
 * byte, or -1 on an error or a short stream. */
static int read_full(int fd, char *p, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = recv(fd, p + got, len - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = ECONNRESET; /* for the caller's message; no call set it */
            return got == 0 ? 0 : -1;
        }
        got += (size_t)r;
    }
    return 1;
}

/* Writes all len bytes. Returns 0 or -1. MSG_NOSIGNAL: a vanished peer is an
 * error to report, not a SIGPIPE. */
static int write_full(int fd, const char *p, size_t len)
{
    size_t sent = 0;

    while (sent < len) {
        ssize_t r = send(fd, p + sent, len - sent, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        sent += (size_t)r;
    }
    return 0;
}

/* Nagle would hold back the last partial segment of each message waiting
 * for an ACK, and add tens of milliseconds that no proxy leaves on. The
 * timeouts keep a stuck peer from hanging the run. */
static int tune_socket(int fd)
{
    int one = 1;
    struct timeval tv = {SOCKET_TIMEOUT_S, 0};

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        return -1;
    return 0;
}

/* Pins the calling thread to one CPU. Returns 0, or -1 with errno set. */
static int pin_self(int cpu)
{
    cpu_set_t set;
    int e;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    e = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (e != 0)
        errno = e;
    return e != 0 ? -1 : 0;
}

/* The far end: one keep-alive connection, read a whole request, answer. */
struct peer {
    int listen_fd;
    size_t request_len;
    const char *answer;
    size_t answer_len;
    int cpu;    /* where the server thread runs */
    int failed; /* written by the server thread, read after the join */
};

static void *serve(void *arg)
{
    struct peer *p = arg;
    char *in = mem_alloc(p->request_len);
    int fd = accept(p->listen_fd, NULL, NULL);
    int r;

    p->failed = 1;
    if (fd < 0 || tune_socket(fd) < 0 || pin_self(p->cpu) < 0)
        goto out;
    while ((r = read_full(fd, in, p->request_len)) == 1)
        if (write_full(fd, p->answer, p->answer_len) < 0)
            goto out;
    p->failed = r < 0;
out:
    if (fd >= 0)
        close(fd);
    free(in);
    return NULL;
}

/*
 * Times warmup + n round trips over one loopback connection: request_len
 * bytes out, the whole answer back, and stores the last n in ns. The client
 * (this thread) runs on cpu_client, the server thread on cpu_server: left
 * to the scheduler, the two ends share a CPU in some runs and not in others,
 * and on a VM the round trip then doubles or quarters from run to run.
 * Restores this thread's CPU affinity before returning.
 * Returns 0, or -1 after printing why.
 */
static int run_loopback(const char *request, size_t request_len, const char *answer,
                        size_t answer_len, int cpu_client, int cpu_server, size_t warmup, size_t n,
                        uint64_t *ns)
{
    struct peer p = {-1, request_len, answer, answer_len, cpu_server, 0};
    struct sockaddr_in addr;
    socklen_t addr_len = sizeof(addr);
    pthread_t server;
    cpu_set_t saved;
    char *in = mem_alloc(answer_len);
    int fd = -1, started = 0, pinned = 0, rc = -1, e;
    const char *what = NULL;

    if ((e = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved)) != 0) {
        errno = e;
        what = "read this thread's CPU affinity";
        goto out;
    }
    if (pin_self(cpu_client) < 0) {
        what = "pin the client to its CPU";
        goto out;
    }
    pinned = 1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0; /* any free port, read back below */
    p.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (p.listen_fd < 0 || bind(p.listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(p.listen_fd, 1) < 0 ||
        getsockname(p.listen_fd, (struct sockaddr *)&addr, &addr_len) < 0) {
        what = "listen on 127.0.0.1:0";
        goto out;
    }
    /* Connect before the server thread exists: the kernel completes the
     * handshake into the backlog, so the thread's accept() cannot wait for
     * a client that failed to come, and the join below cannot hang. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || tune_socket(fd) < 0 || connect(fd, (struct sockaddr *)&addr, addr_len) < 0) {
        what = "connect";
        goto out;
    }
    if ((e = pthread_create(&server, NULL, serve, &p)) != 0) {
        errno = e;
        what = "start the server thread";
        goto out;
    }
    started = 1;
    for (size_t it = 0; it < warmup + n; it++) {
        uint64_t t0 = clock_monotonic_ns();
        if (write_full(fd, request, request_len) < 0 || read_full(fd, in, answer_len) != 1) {
            what = "exchange";
            goto out;
        }
        uint64_t t1 = clock_monotonic_ns();
        if (it >= warmup)
            ns[it - warmup] = t1 - t0;
    }
    rc = 0;
out:
    if (what != NULL)
        fprintf(stderr, "adapter-bench: loopback: cannot %s: %s\n", what, strerror(errno));
    if (fd >= 0)
        close(fd); /* the server reads end of stream and returns */
    if (started) {
        pthread_join(server, NULL);
        if (p.failed && rc == 0) {
            fprintf(stderr, "adapter-bench: loopback: the server thread failed\n");
            rc = -1;
        }
    }
    if (p.listen_fd >= 0)
        close(p.listen_fd);
    if (pinned)
        pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
    free(in);
    return rc;
}

/* The first `max` CPUs this process may run on, into cpus. Returns how many
 * it found, or -1 after printing why. */
static int usable_cpus(int *cpus, int max)
{
    cpu_set_t set;
    int found = 0;

    if (sched_getaffinity(0, sizeof(set), &set) < 0) {
        fprintf(stderr, "adapter-bench: cannot read the CPU affinity: %s\n", strerror(errno));
        return -1;
    }
    for (int c = 0; c < CPU_SETSIZE && found < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[found++] = c;
    return found;
}

/* --- Main -------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: adapter-bench [--iterations N]\n"
            "  Times the JSON adapter's steps on a ~100 KB struct-heavy XML-RPC call and a\n"
            "  loopback TCP round trip of the same sizes; prints a markdown table.\n"
            "  --iterations N   timed iterations and round trips (default %d)\n",
            DEFAULT_ITERATIONS);
}

/* Returns 0 with *iterations set, 1 for --help, -1 on a bad argument. */
static int parse_args(int argc, char **argv, size_t *iterations)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
        if (strcmp(argv[i], "--iterations") != 0 || i + 1 >= argc) {
            fprintf(stderr, "adapter-bench: unknown or incomplete argument '%s'\n", argv[i]);
            return -1;
        }
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(argv[++i], &end, 10);
        if (errno != 0 || end == argv[i] || *end != '\0' || argv[i][0] == '-' || v < 1 ||
            v > MAX_ITERATIONS) {
            fprintf(stderr, "adapter-bench: --iterations wants 1 to %llu, not '%s'\n",
                    MAX_ITERATIONS, argv[i]);
            return -1;
        }
        *iterations = (size_t)v;
    }
    return 0;
}

static void print_row(const char *label, const struct stats *s, size_t bytes)
{
    printf("| %s | %.1f | %.1f | %.1f | %.0f |\n", label, s->median_us, s->p99_us, s->min_us,
           mb_per_s(bytes, s->median_us));
}

/* Where the two ends of a loopback exchange run, and what came of it. */
struct loopback {
    const char *where;
    int cpu_client;
    int cpu_server;
    struct stats st;
};

static void print_report(const struct workload *w, size_t warmup, size_t n,
                         const struct stats st[STEP_COUNT], const struct loopback *lb, size_t nlb)
{
    /* Which XML each step handles: the call for (a) and (b), the answer
     * for (c) and (d), both for the total. */
    size_t xml_bytes[STEP_COUNT] = {w->call.len, w->call.len, w->response.len, w->response.len,
                                    w->call.len + w->response.len};
    /* Transfer time alone, by arithmetic, of these two messages at 1 Gbit/s. */
    double gbit_us = (double)(w->call.len + w->response.len) * 8 / 1e3;
#ifdef __OPTIMIZE__
    const char *optimized = "";
#else
    const char *optimized = " (NOT optimized: these figures say nothing about a release build)";
#endif
    char label[160];

    printf("adapter-bench: the JSON adapter on one struct-heavy XML-RPC call\n\n");
    printf("- build: %s%s\n", BENCH_BUILD_TYPE, optimized);
    printf("- call: orders.import(batch, orders, options): %zu orders, %zu structs\n", w->orders,
           w->structs);
    printf("- sizes: XML-RPC call %zu bytes; JSON body (b) %zu bytes; JSON answer (c) %zu bytes; "
           "XML-RPC answer (d) %zu bytes\n",
           w->call.len, w->json_req.len, w->answer.len, w->response.len);
    printf("- %zu timed iterations after %zu warm-up; one arena per request (8 KB first block), "
           "reset between requests, as proxy.c does\n",
           n, warmup);
    printf("- loopback: one keep-alive TCP connection, TCP_NODELAY, %zu bytes out and %zu back "
           "per round trip, %zu timed after %zu warm-up\n",
           w->call.len, w->response.len, n, warmup);
    printf("- allocations: not measured (time only)\n");
    printf("- MB/s = XML bytes the step handles / median (MB = 10^6 bytes): the call for (a) and "
           "(b), the answer for (c) and (d), both for the total and the round trips\n\n");

    printf("| step | median µs | p99 µs | min µs | MB/s of XML |\n");
    printf("| --- | ---: | ---: | ---: | ---: |\n");
    for (int s = 0; s < STEP_COUNT; s++)
        print_row(step_label[s], &st[s], xml_bytes[s]);
    for (size_t k = 0; k < nlb; k++) {
        snprintf(label, sizeof(label), "loopback TCP round trip, %s (CPU %d and %d)", lb[k].where,
                 lb[k].cpu_client, lb[k].cpu_server);
        print_row(label, &lb[k].st, w->call.len + w->response.len);
    }

    printf("\n");
    for (size_t k = 0; k < nlb; k++)
        printf("ratio, adapter total / loopback round trip %s (medians): %.1f\n", lb[k].where,
               st[STEP_TOTAL].median_us / lb[k].st.median_us);
    printf("\nA loopback round trip is the strictest comparison there is: no wire, no NIC, no "
           "switch.\nWith both ends on one CPU it costs the kernel's copies alone; on two CPUs "
           "it also pays\nfor waking the other end's thread, as two processes do. A real network "
           "round trip is\nlarger: on a LAN, about 0.1-0.5 ms of latency plus transfer; these "
           "two messages alone\ntake %.0f µs to transfer at 1 Gbit/s (arithmetic, not measured).\n",
           gbit_us);
}

int main(int argc, char **argv)
{
    /* The proxy's defaults for xml_max_depth and xml_max_elements
     * (proxy/config.c), so parsing pays for the same checks. */
    struct xr_limits lim = {.max_depth = 64, .max_elements = 1000000};
    struct workload w = {BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, 0, 0};
    uint64_t *ns[STEP_COUNT] = {NULL};
    uint64_t *rt_ns = NULL;
    struct stats st[STEP_COUNT];
    struct loopback lb[2];
    int cpus[2], ncpus;
    size_t n = DEFAULT_ITERATIONS, warmup;
    int rc = 1;

    int args = parse_args(argc, argv, &n);
    if (args != 0) {
        usage(args > 0 ? stdout : stderr);
        return args > 0 ? 0 : 2;
    }
    /* Warm caches, the allocator and the branch predictors first, so the
     * figures describe a proxy that has been running for a while. */
    warmup = n / 10 < 20 ? 20 : n / 10;

    xr_init();
    build_call(&w.call, &w.orders);
    w.structs = w.orders * 4 + 1; /* each order holds 4 (append_order), plus options */
    for (int s = 0; s < STEP_COUNT; s++)
        ns[s] = mem_alloc(n * sizeof(uint64_t));
    rt_ns = mem_alloc(n * sizeof(uint64_t));

    if (prepare(&w, &lim) < 0 || run_adapter(&w, &lim, warmup, n, ns) < 0 ||
        check_round_trip(&w, &lim) < 0)
        goto out;
    if ((ncpus = usable_cpus(cpus, 2)) < 1)
        goto out;
    /* The two-CPU exchange needs a second CPU; a machine without one only
     * gets the one-CPU row. */
    lb[0] = (struct loopback){"both ends on one CPU", cpus[0], cpus[0], {0, 0, 0}};
    lb[1] = (struct loopback){"ends on two CPUs", cpus[0], cpus[ncpus - 1], {0, 0, 0}};
    for (int k = 0; k < ncpus; k++) {
        if (run_loopback(w.call.data, w.call.len, w.response.data, w.response.len, lb[k].cpu_client,
                         lb[k].cpu_server, warmup, n, rt_ns) < 0)
            goto out;
        lb[k].st = stats_of(rt_ns, n);
    }
    for (int s = 0; s < STEP_COUNT; s++)
        st[s] = stats_of(ns[s], n);
    print_report(&w, warmup, n, st, lb, (size_t)ncpus);
    rc = 0;
out:
    for (int s = 0; s < STEP_COUNT; s++)
        free(ns[s]);
    free(rt_ns);
    buf_dispose(&w.call);
    buf_dispose(&w.answer);
    buf_dispose(&w.json_req);
    buf_dispose(&w.response);
    xr_cleanup();
    return rc;
}
