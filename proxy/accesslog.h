/*
 * accesslog: one JSON line per request, for operators and their log
 * pipelines.
 *
 *   {"time":"2026-11-21T10:00:00.123Z","request_id":"...","client":"10.0.0.7",
 *    "http_method":"POST","path":"/RPC2","method":"stock.get","calls":1,
 *    "route":"stock-read","target":"stock-svc","side":"new","status":200,
 *    "fault_code":null,"outcome":"ok","duration_ms":1.234,
 *    "bytes_in":312,"bytes_out":245}
 *
 * `access_log PATH|stdout|off [buffer=SIZE] [flush=DURATION]` in
 * routes.conf. Each worker writes through a writer of its own that buffers
 * whole lines (as nginx's `buffer=` does) and writes them with one write(2)
 * on an O_APPEND descriptor, so lines of different workers never
 * interleave; on stdout, when it is a pipe or a terminal, the workers take
 * turns (a lock around the write). A buffered line waits at most `flush`
 * (the worker's timer).
 *
 * logrotate renames the file and sends SIGUSR1: accesslog_reopen() opens
 * the path again and puts the new file in place of the old one under the
 * same descriptor number (dup2), so writers need no lock and never write
 * to a closed descriptor.
 */
#ifndef STRANGLER_PROXY_ACCESSLOG_H
#define STRANGLER_PROXY_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

struct accesslog;
struct accesslog_writer;

/* Opens the log at `path` ("stdout" for standard output). Returns it, or
 * NULL with the reason in err. Free with accesslog_close(). */
struct accesslog *accesslog_open(const char *path, char *err, size_t errlen);
void accesslog_close(struct accesslog *log);

/* The path it writes to ("stdout" or the file's). */
const char *accesslog_path(const struct accesslog *log);

/* Opens the path again (after logrotate moved the file). Returns 0, or -1
 * with the reason in err; the old file stays in use then. A no-op for
 * stdout. Any thread. */
int accesslog_reopen(struct accesslog *log, char *err, size_t errlen);

/* A writer for one thread, buffering up to buffer_bytes (0: each line is
 * written at once). Free with accesslog_writer_free(), which flushes. */
struct accesslog_writer *accesslog_writer_new(struct accesslog *log, size_t buffer_bytes);
void accesslog_writer_free(struct accesslog_writer *w);

/* One request, as the line says it. Strings may be NULL (written as null),
 * method and request_id are not NUL-terminated. */
struct accesslog_entry {
    int64_t time_us; /* wall clock, when the request arrived */
    const char *request_id;
    size_t request_id_len;
    const char *client;
    const char *http_method;
    size_t http_method_len;
    const char *path;
    size_t path_len;
    const char *method; /* the XML-RPC method, NULL when the body is no call */
    size_t method_len;
    size_t calls; /* a multicall's calls; 1 for a call, 0 for none */
    const char *route;
    const char *target;
    const char *side; /* "new", "legacy" or NULL */
    int status;       /* 0: none sent (the client left first) */
    int has_fault;
    int64_t fault_code;
    const char *outcome;
    uint64_t duration_us;
    uint64_t bytes_in, bytes_out;
};

/* Appends e's line; writes the buffer out when it is full. */
void accesslog_write(struct accesslog_writer *w, const struct accesslog_entry *e);

/* Writes out what is buffered (the worker's flush timer, and shutdown). */
void accesslog_flush(struct accesslog_writer *w);

#endif
