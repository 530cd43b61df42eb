/*
 * static-backend: an XML-RPC server that answers every call with the same
 * small methodResponse, as fast as libevent can, so that a benchmark of the
 * proxy measures the proxy and not the server behind it.
 *
 *   static-backend [--listen 127.0.0.1:0] [--threads N]
 *
 * Every POST, whatever its body, gets 200 with a fixed methodResponse
 * (text/xml, a string result, not a fault, so an intercepting route raises
 * an event for it); any other method gets 405. A POST to a path under
 * /json (/json itself, /json/ANYTHING) is a JSON service instead, as the
 * proxy's JSON adapter calls one (POST BASE/METHOD, a JSON array of the
 * parameters): it gets 200 with the JSON string "ok" (application/json),
 * which the adapter turns into the same methodResponse.
 * Connections are HTTP/1.1 keep-alive, as evhttp serves them by default.
 * With --threads N, N threads each run their own event_base and evhttp on
 * the same port with SO_REUSEPORT (FIELD-NOTES.md: one base and one evhttp
 * per thread, never shared).
 *
 * Once listening it prints "static-backend listening on ADDR:PORT" with the
 * real port (port 0 picks a free one) and serves until SIGTERM or SIGINT.
 * Exit status: 0 after a signal, 1 when it cannot listen, 2 on a usage
 * error.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:0"
#define MAX_THREADS    16
#define BACKLOG        1024
/* Bounds, since evhttp has none by default (FIELD-NOTES.md). The calls a
 * benchmark sends are small; these only keep a stray client in check. */
#define MAX_BODY    (1 << 20)
#define MAX_HEADERS (16 << 10)
#define IDLE_S      60

enum backend_status {
    BACKEND_OK = 0,
    BACKEND_ERROR = 1,
    BACKEND_USAGE = 2,
};

/* The one answer, as Python's xmlrpc.server would write it. */
static const char answer[] = "<?xml version=\"1.0\"?>\n"
                             "<methodResponse>\n"
                             "<params>\n"
                             "<param>\n"
                             "<value><string>ok</string></value>\n"
                             "</param>\n"
                             "</params>\n"
                             "</methodResponse>\n";

/* What the JSON service answers every call with: the result, as JSON. */
static const char json_answer[] = "\"ok\"";
#define JSON_PREFIX "/json"

/* One serving thread. Its base and evhttp are touched by that thread
 * alone, except event_base_loopbreak() from main(), which libevent makes
 * safe once evthread_use_pthreads() has been called. */
struct server {
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    int started;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: static-backend [--listen ADDR:PORT] [--threads N]\n"
               "  Answers every POST with a fixed XML-RPC methodResponse (HTTP/1.1 keep-alive);\n"
               "  a POST under " JSON_PREFIX " gets the JSON string \"ok\" (application/json).\n"
               "  --listen ADDR:PORT  IPv4 address and port (default " DEFAULT_LISTEN
               "; 0: a free port)\n"
               "  --threads N         serving threads on one port with SO_REUSEPORT (default 1)\n");
}

/* "127.0.0.1:8000" into *addr. Port 0 is allowed (the kernel picks one),
 * which evutil_parse_sockaddr_port() refuses. Returns 0 or -1. */
static int parse_addr(const char *text, struct sockaddr_in *addr)
{
    char host[INET_ADDRSTRLEN];
    const char *colon = strrchr(text, ':');
    char *end = NULL;
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 || port > 65535)
        return -1;
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &addr->sin_addr) == 1 ? 0 : -1;
}

/* Returns 0, 1 for --help, or -1 after printing what is wrong. */
static int parse_args(int argc, char **argv, struct sockaddr_in *addr, int *threads)
{
    const char *listen_at = DEFAULT_LISTEN;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0)
            return 1;
        if (val == NULL) {
            fprintf(stderr, "static-backend: unknown or incomplete argument '%s'\n", opt);
            return -1;
        }
        i++;
        if (strcmp(opt, "--listen") == 0) {
            listen_at = val;
        } else if (strcmp(opt, "--threads") == 0) {
            char *end = NULL;
            errno = 0;
            long n = strtol(val, &end, 10);
            if (errno != 0 || end == val || *end != '\0' || n < 1 || n > MAX_THREADS) {
                fprintf(stderr, "static-backend: --threads wants 1 to %d, not '%s'\n", MAX_THREADS,
                        val);
                return -1;
            }
            *threads = (int)n;
        } else {
            fprintf(stderr, "static-backend: unknown argument '%s'\n", opt);
            return -1;
        }
    }
    if (parse_addr(listen_at, addr) < 0) {
        fprintf(stderr, "static-backend: --listen wants IPV4:PORT, not '%s'\n", listen_at);
        return -1;
    }
    return 0;
}

/* 1 when the request's target is /json or under it (/json/..., /json?...). */
static int is_json_target(const char *uri)
{
    size_t n = sizeof(JSON_PREFIX) - 1;
    return uri != NULL && strncmp(uri, JSON_PREFIX, n) == 0 &&
           (uri[n] == '\0' || uri[n] == '/' || uri[n] == '?');
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    /* References, not copies: the answers are static. */
    if (is_json_target(evhttp_request_get_uri(req))) {
        evhttp_add_header(headers, "Content-Type", "application/json");
        evbuffer_add_reference(out, json_answer, sizeof(json_answer) - 1, NULL, NULL);
    } else {
        evhttp_add_header(headers, "Content-Type", "text/xml");
        evbuffer_add_reference(out, answer, sizeof(answer) - 1, NULL, NULL);
    }
    evhttp_send_reply(req, 200, "OK", NULL);
}

/* A listening socket on addr with SO_REUSEPORT (set before bind, as the
 * kernel requires). Returns the fd, or -1 after printing why. */
static int listen_socket(const struct sockaddr_in *addr)
{
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("static-backend: socket");
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 || listen(fd, BACKLOG) < 0) {
        perror("static-backend: listen");
        close(fd);
        return -1;
    }
    return fd;
}

/* Sets up one server on an already listening socket, which it then owns.
 * Returns 0, or -1 after printing why (the socket is closed). */
static int server_init(struct server *s, int fd)
{
    s->base = event_base_new();
    if (s->base == NULL || (s->http = evhttp_new(s->base)) == NULL) {
        fprintf(stderr, "static-backend: cannot create an event base\n");
        close(fd);
        return -1;
    }
    evhttp_set_max_body_size(s->http, MAX_BODY);
    evhttp_set_max_headers_size(s->http, MAX_HEADERS);
    evhttp_set_timeout(s->http, IDLE_S);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(s->http, on_request, NULL);
    if (evhttp_accept_socket_with_handle(s->http, fd) == NULL) {
        fprintf(stderr, "static-backend: evhttp cannot accept on the socket\n");
        close(fd);
        return -1;
    }
    return 0;
}

static void server_dispose(struct server *s)
{
    if (s->http != NULL)
        evhttp_free(s->http); /* closes its listening socket */
    if (s->base != NULL)
        event_base_free(s->base);
}

static void *serve(void *arg)
{
    struct server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

int main(int argc, char **argv)
{
    struct server servers[MAX_THREADS];
    struct sockaddr_in addr;
    socklen_t addrlen = sizeof(addr);
    sigset_t sigs;
    int threads = 1, sig = 0, rc = BACKEND_ERROR;
    char text[INET_ADDRSTRLEN];

    memset(servers, 0, sizeof(servers));
    int args = parse_args(argc, argv, &addr, &threads);
    if (args != 0) {
        usage(args > 0 ? stdout : stderr);
        return args > 0 ? BACKEND_OK : BACKEND_USAGE;
    }
    /* Signals go to sigwait() in this thread only: block them before any
     * thread starts, so every thread inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "static-backend: libevent has no pthreads support\n");
        goto out;
    }
    /* The first socket picks the port when asked for 0; the others join it. */
    for (int i = 0; i < threads; i++) {
        int fd = listen_socket(&addr);
        if (fd < 0)
            goto out;
        if (i == 0 && getsockname(fd, (struct sockaddr *)&addr, &addrlen) < 0) {
            perror("static-backend: getsockname");
            close(fd);
            goto out;
        }
        if (server_init(&servers[i], fd) < 0)
            goto out;
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&servers[i].thread, NULL, serve, &servers[i]) != 0) {
            fprintf(stderr, "static-backend: cannot start a thread\n");
            goto out;
        }
        servers[i].started = 1;
    }
    inet_ntop(AF_INET, &addr.sin_addr, text, sizeof(text));
    printf("static-backend listening on %s:%d, %d thread%s\n", text, ntohs(addr.sin_port), threads,
           threads == 1 ? "" : "s");
    fflush(stdout);
    while (sigwait(&sigs, &sig) != 0)
        ;
    rc = BACKEND_OK;
out:
    for (int i = 0; i < threads; i++)
        if (servers[i].started) {
            event_base_loopbreak(servers[i].base);
            pthread_join(servers[i].thread, NULL);
        }
    for (int i = 0; i < threads; i++)
        server_dispose(&servers[i]);
    return rc;
}
