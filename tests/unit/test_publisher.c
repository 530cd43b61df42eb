/*
 * publisher.c against a real RabbitMQ: the ctest "rabbitmq" fixture starts a
 * private node and STRANGLER_E2E_STATE points at its state; without it the
 * suite fails (a skipped broker test would hide a broken publisher).
 *
 * Each test declares its own exchange and queue (unique names), appends to a
 * spool in a temporary directory, runs the publisher, and reads the queue
 * back with basic.get.
 */
#include "unit.h"
#include "common/clock.h"
#include "common/ids.h"
#include "interceptors/publisher.h"
#include "interceptors/spool.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <json-c/json.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- fixture: broker URL, temp dir, names ---- */

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/strangler-pub-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void forget_sent(void);

static void teardown(void)
{
    forget_sent();
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The broker's URL from ${STRANGLER_E2E_STATE}/rabbitmq/state.json. */
static char *broker_url(void)
{
    const char *state = getenv("STRANGLER_E2E_STATE");
    char path[512];
    ck_assert_msg(state != NULL && *state != '\0',
                  "STRANGLER_E2E_STATE is not set: run this suite through ctest, which starts "
                  "RabbitMQ (the rabbitmq fixture)");
    snprintf(path, sizeof(path), "%s/rabbitmq/state.json", state);
    json_object *o = json_object_from_file(path);
    ck_assert_msg(o != NULL, "cannot read %s: is the rabbitmq fixture running?", path);
    json_object *url = NULL;
    ck_assert_msg(json_object_object_get_ex(o, "url", &url), "%s has no \"url\"", path);
    char *copy = strdup(json_object_get_string(url));
    json_object_put(o);
    return copy;
}

static void unique_name(char *out, size_t len, const char *prefix)
{
    char id[IDS_UUID_LEN + 1];
    ids_new_uuid(id);
    snprintf(out, len, "%s.%d.%.8s", prefix, (int)getpid(), id);
}

static double now_ms(void)
{
    return (double)clock_monotonic_ns() / 1e6;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- a plain librabbitmq client for declaring and reading back ---- */

static void die_on_reply(amqp_rpc_reply_t r, const char *what)
{
    ck_assert_msg(r.reply_type == AMQP_RESPONSE_NORMAL, "%s failed (reply type %d, error %s)", what,
                  r.reply_type,
                  r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                      ? amqp_error_string2(r.library_error)
                      : "server exception");
}

static amqp_connection_state_t client_connect(const char *url)
{
    struct amqp_connection_info info;
    char *copy = strdup(url);
    struct timeval tv = {5, 0};
    ck_assert_int_eq(amqp_parse_url(copy, &info), AMQP_STATUS_OK);
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *sock = amqp_tcp_socket_new(c);
    ck_assert_ptr_nonnull(sock);
    ck_assert_int_eq(amqp_socket_open_noblock(sock, info.host, info.port, &tv), AMQP_STATUS_OK);
    die_on_reply(
        amqp_login(c, info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user, info.password),
        "login");
    amqp_channel_open(c, 1);
    die_on_reply(amqp_get_rpc_reply(c), "channel.open");
    free(copy);
    return c;
}

static void client_close(amqp_connection_state_t c)
{
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* The exchange as the publisher declares it, and an exclusive queue bound
 * to everything on it. */
static void declare(amqp_connection_state_t c, const char *exchange, const char *queue)
{
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"), 0, 1, 0,
                          0, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(c), "exchange.declare");
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 0, 1, 1, amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(c), "queue.declare");
    amqp_queue_bind(c, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes("#"), amqp_empty_table);
    die_on_reply(amqp_get_rpc_reply(c), "queue.bind");
}

static void delete_exchange(amqp_connection_state_t c, const char *exchange)
{
    amqp_exchange_delete(c, 1, amqp_cstring_bytes(exchange), 0);
    die_on_reply(amqp_get_rpc_reply(c), "exchange.delete");
}

static int bytes_eq(amqp_bytes_t b, const char *s, size_t len)
{
    return b.len == len && (len == 0 || memcmp(b.bytes, s, len) == 0);
}

static int bytes_eq_str(amqp_bytes_t b, const char *s)
{
    return bytes_eq(b, s, strlen(s));
}

/* Takes the next message off the queue and checks it is `ev`, published
 * to `exchange` with the properties DESIGN.md promises. Returns 0 when the
 * queue is empty. */
static int get_and_check(amqp_connection_state_t c, const char *queue, const char *exchange,
                         const struct spool_event *ev)
{
    amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(queue), 1);
    die_on_reply(r, "basic.get");
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return 0;
    ck_assert_int_eq(r.reply.id, AMQP_BASIC_GET_OK_METHOD);
    const amqp_basic_get_ok_t *ok = r.reply.decoded;
    ck_assert(bytes_eq_str(ok->exchange, exchange));
    ck_assert_msg(ev != NULL, "an unexpected message (a duplicate?) on the queue");
    amqp_message_t msg;
    die_on_reply(amqp_read_message(c, 1, &msg, 0), "read message");
    ck_assert_msg(bytes_eq_str(ok->routing_key, ev->key),
                  "seq %" PRIu64 " (%.*s): got routing key %.*s and body %.*s", ev->seq,
                  (int)ev->body_len, ev->body, (int)ok->routing_key.len,
                  (const char *)ok->routing_key.bytes, (int)msg.body.len,
                  (const char *)msg.body.bytes);
    const amqp_basic_properties_t *p = &msg.properties;
    amqp_flags_t want = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                        AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
                        AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_APP_ID_FLAG;
    ck_assert_uint_eq(p->_flags & want, want);
    ck_assert(bytes_eq_str(p->content_type, "application/cloudevents+json"));
    ck_assert_uint_eq(p->delivery_mode, 2);
    ck_assert_msg(bytes_eq_str(p->message_id, ev->id), "seq %" PRIu64 " out of order", ev->seq);
    ck_assert(bytes_eq_str(p->type, ev->type));
    ck_assert_uint_eq(p->timestamp, (uint64_t)(ev->time_us / 1000000));
    ck_assert(bytes_eq_str(p->app_id, "strangler"));
    ck_assert(bytes_eq(msg.body, ev->body, ev->body_len));
    amqp_destroy_message(&msg);
    return 1;
}

/* ---- spool contents ---- */

/* What was appended, in order: confirmed segments leave the spool, so the
 * test keeps its own copy to compare the queue against. */
struct sent {
    char id[IDS_UUID_LEN + 1];
    char type[32];
    char key[32];
    int64_t time_us;
    char *body;
    size_t body_len;
};
static struct sent *sent;
static size_t nsent, sent_cap;

static void forget_sent(void)
{
    for (size_t i = 0; i < nsent; i++)
        free(sent[i].body);
    free(sent);
    sent = NULL;
    nsent = sent_cap = 0;
}

/* Appends n events numbered from `from`, with keys and types that vary. */
static void append_events(struct spool *s, unsigned from, unsigned n, size_t pad)
{
    for (unsigned i = from; i < from + n; i++) {
        if (nsent == sent_cap) {
            sent_cap = sent_cap ? sent_cap * 2 : 256;
            sent = realloc(sent, sent_cap * sizeof(*sent));
        }
        struct sent *e = &sent[nsent++];
        ids_new_uuid(e->id);
        snprintf(e->type, sizeof(e->type), "legacy.m%u", i % 3);
        snprintf(e->key, sizeof(e->key), "test.k%u", i % 5);
        e->time_us = clock_realtime_us();
        e->body = malloc(pad + 64);
        int len = snprintf(e->body, 64, "{\"id\":\"%s\",\"n\":%u,\"pad\":\"", e->id, i);
        memset(e->body + len, 'x', pad);
        memcpy(e->body + len + pad, "\"}", 2);
        e->body_len = (size_t)len + pad + 2;
        struct spool_event ev = {0, e->time_us, e->id, e->type, e->key, e->body, e->body_len};
        ck_assert_int_eq(spool_append(s, &ev), 0);
        ck_assert_uint_eq(ev.seq, nsent);
    }
}

static void wait_confirmed(struct spool *s, uint64_t seq, unsigned timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    while (spool_confirmed_seq(s) < seq && now_ms() < deadline)
        sleep_ms(10);
    ck_assert_msg(spool_confirmed_seq(s) >= seq, "confirmed %" PRIu64 " of %" PRIu64 " in %u ms",
                  spool_confirmed_seq(s), seq, timeout_ms);
}

/* Reads the whole queue and checks it holds exactly the appended events,
 * in append (spool) order: no loss, no duplicate. */
static void expect_queue_is_sent(amqp_connection_state_t c, const char *queue, const char *exchange)
{
    for (size_t i = 0; i < nsent; i++) {
        const struct sent *e = &sent[i];
        struct spool_event ev = {i + 1, e->time_us, e->id, e->type, e->key, e->body, e->body_len};
        ck_assert_msg(get_and_check(c, queue, exchange, &ev) == 1, "seq %zu never arrived", i + 1);
    }
    ck_assert_int_eq(get_and_check(c, queue, exchange, NULL), 0);
}

static struct spool *open_spool(void)
{
    char err[256];
    struct spool_options opt = {.segment_bytes = 64 * 1024};
    struct spool *s = spool_open(tmpdir, &opt, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

/* ---- tests ---- */

START_TEST(events_arrive_in_order_with_properties_and_get_confirmed)
{
    char *url = broker_url();
    char exchange[96], queue[96], err[256];
    unique_name(exchange, sizeof(exchange), "strangler.test");
    unique_name(queue, sizeof(queue), "q");
    amqp_connection_state_t c = client_connect(url);
    declare(c, exchange, queue);

    struct spool *s = open_spool();
    append_events(s, 0, 300, 200);
    /* A small window makes the ring wrap many times. */
    struct publisher_config cfg = {url, exchange, 16, 5, 2000, 1000};
    struct publisher *p = publisher_start(&cfg, s, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    wait_confirmed(s, 300, 20000);

    /* Appends while it runs are picked up through the notify fd. */
    for (unsigned k = 0; k < 10; k++) {
        append_events(s, 300 + k * 20, 20, 50);
        sleep_ms(5);
    }
    wait_confirmed(s, 500, 20000);
    struct publisher_stats st;
    publisher_get_stats(p, &st);
    ck_assert_int_eq(st.connected, 1);
    ck_assert_int_eq(st.blocked, 0);
    ck_assert_uint_eq(st.published, 500);
    ck_assert_uint_eq(st.confirmed, 500);
    ck_assert_uint_eq(st.nacked, 0);
    ck_assert_uint_eq(st.reconnects, 0);
    publisher_stop(p, 2000);

    ck_assert_uint_eq(spool_confirmed_seq(s), spool_last_seq(s));
    expect_queue_is_sent(c, queue, exchange);
    delete_exchange(c, exchange);
    client_close(c);
    spool_close(s);
    free(url);
}
END_TEST

START_TEST(restart_resumes_after_the_confirmed_seq)
{
    char *url = broker_url();
    char exchange[96], queue[96], err[256];
    unique_name(exchange, sizeof(exchange), "strangler.test");
    unique_name(queue, sizeof(queue), "q");
    amqp_connection_state_t c = client_connect(url);
    declare(c, exchange, queue);
    struct publisher_config cfg = {url, exchange, 0, 0, 0, 0};

    struct spool *s = open_spool();
    append_events(s, 0, 50, 10);
    struct publisher *p = publisher_start(&cfg, s, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    wait_confirmed(s, 50, 20000);
    publisher_stop(p, 1000);
    spool_close(s);

    /* A later run (a restarted proxy) publishes only what is new. */
    s = open_spool();
    ck_assert_uint_eq(spool_confirmed_seq(s), 50);
    append_events(s, 50, 30, 10);
    p = publisher_start(&cfg, s, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    wait_confirmed(s, 80, 20000);
    publisher_stop(p, 1000);

    expect_queue_is_sent(c, queue, exchange);
    delete_exchange(c, exchange);
    client_close(c);
    spool_close(s);
    free(url);
}
END_TEST

START_TEST(stop_drains_what_is_pending)
{
    char *url = broker_url();
    char exchange[96], queue[96], err[256];
    unique_name(exchange, sizeof(exchange), "strangler.test");
    unique_name(queue, sizeof(queue), "q");
    amqp_connection_state_t c = client_connect(url);
    declare(c, exchange, queue);
    struct publisher_config cfg = {url, exchange, 64, 0, 0, 0};

    struct spool *s = open_spool();
    struct publisher *p = publisher_start(&cfg, s, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    double deadline = now_ms() + 10000;
    struct publisher_stats st;
    do {
        sleep_ms(10);
        publisher_get_stats(p, &st);
    } while (!st.connected && now_ms() < deadline);
    ck_assert_int_eq(st.connected, 1);
    /* Appended right before stop: the drain publishes and confirms it. */
    append_events(s, 0, 200, 100);
    publisher_stop(p, 5000);
    ck_assert_uint_eq(spool_confirmed_seq(s), 200);
    expect_queue_is_sent(c, queue, exchange);
    delete_exchange(c, exchange);
    client_close(c);
    spool_close(s);
    free(url);
}
END_TEST

/* A port on which nothing listens: bound, then released. */
static int closed_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A "broker" that completes the TCP handshake (the kernel does, from the
 * backlog) and then never says a word. */
static int silent_listener(int *port)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void expect_prompt_stop(const char *url)
{
    char err[256];
    struct spool *s = open_spool();
    append_events(s, 0, 10, 10);
    struct publisher_config cfg = {url, NULL, 0, 0, 10000, 0};
    struct publisher *p = publisher_start(&cfg, s, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    sleep_ms(400);
    struct publisher_stats st;
    publisher_get_stats(p, &st);
    ck_assert_int_eq(st.connected, 0);
    ck_assert_uint_eq(st.published, 0);

    double t0 = now_ms();
    publisher_stop(p, 5000);
    double took = now_ms() - t0;
    ck_assert_msg(took < 1000, "publisher_stop took %.0f ms", took);
    ck_assert_uint_eq(spool_confirmed_seq(s), 0);
    ck_assert_uint_eq(spool_last_seq(s), 10);
    spool_close(s);

    /* Still all there for the next start. */
    s = open_spool();
    ck_assert_uint_eq(spool_confirmed_seq(s), 0);
    ck_assert_uint_eq(spool_last_seq(s), 10);
    spool_close(s);
}

START_TEST(stop_is_prompt_when_the_broker_refuses)
{
    char url[128];
    snprintf(url, sizeof(url), "amqp://guest:guest@127.0.0.1:%d/%%2f", closed_port());
    expect_prompt_stop(url);
}
END_TEST

START_TEST(stop_is_prompt_when_the_broker_never_answers)
{
    char url[128];
    int port;
    int fd = silent_listener(&port);
    snprintf(url, sizeof(url), "amqp://guest:guest@127.0.0.1:%d/%%2f", port);
    expect_prompt_stop(url);
    close(fd);
}
END_TEST

START_TEST(bad_url_is_refused_without_echoing_it)
{
    char err[256] = "";
    struct spool *s = open_spool();
    struct publisher_config cfg = {"amqpz://user:s3cret@host/", NULL, 0, 0, 0, 0};
    ck_assert_ptr_null(publisher_start(&cfg, s, err, sizeof(err)));
    ck_assert_str_ne(err, "");
    ck_assert_ptr_null(strstr(err, "s3cret"));
    publisher_stop(NULL, 0);
    spool_close(s);
}
END_TEST

/* Not a benchmark, but it prints the rate so regressions show in logs. */
START_TEST(backlog_throughput)
{
    char *url = broker_url();
    char exchange[96], queue[96], err[256];
    const unsigned n = 20000;
    unique_name(exchange, sizeof(exchange), "strangler.test");
    unique_name(queue, sizeof(queue), "q");
    amqp_connection_state_t c = client_connect(url);
    declare(c, exchange, queue);
    struct spool *s = open_spool();
    append_events(s, 0, n, 330); /* about 400-byte bodies */

    struct publisher_config cfg = {url, exchange, 1000, 0, 0, 0};
    double t0 = now_ms();
    struct publisher *p = publisher_start(&cfg, s, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    wait_confirmed(s, n, 25000);
    double took = now_ms() - t0;
    publisher_stop(p, 1000);
    fprintf(stderr,
            "publisher: %u events of ~400 bytes confirmed in %.0f ms (%.0f/s, window 1000)\n", n,
            took, n * 1000.0 / took);
    amqp_queue_delete(c, 1, amqp_cstring_bytes(queue), 0, 0);
    die_on_reply(amqp_get_rpc_reply(c), "queue.delete");
    delete_exchange(c, exchange);
    client_close(c);
    spool_close(s);
    free(url);
}
END_TEST

Suite *publisher_suite(void)
{
    Suite *s = suite_create("publisher");
    TCase *tc = tcase_create("publisher");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, events_arrive_in_order_with_properties_and_get_confirmed);
    tcase_add_test(tc, restart_resumes_after_the_confirmed_seq);
    tcase_add_test(tc, stop_drains_what_is_pending);
    tcase_add_test(tc, stop_is_prompt_when_the_broker_refuses);
    tcase_add_test(tc, stop_is_prompt_when_the_broker_never_answers);
    tcase_add_test(tc, bad_url_is_refused_without_echoing_it);
    tcase_add_test(tc, backlog_throughput);
    suite_add_tcase(s, tc);
    return s;
}
