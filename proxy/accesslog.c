#include "proxy/accesslog.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct accesslog {
    char *path;
    int fd;      /* stays the same number for the log's life (reopen dup2s onto it) */
    int is_file; /* 0 for stdout */
    /* A write(2) of many lines is whole only on a regular file opened for
     * appending; on a pipe or a terminal (stdout under a supervisor) a
     * write above PIPE_BUF may be split, so writers take turns there. */
    int serialize;
    pthread_mutex_t lock;
};

struct accesslog_writer {
    struct accesslog *log;
    size_t limit;
    struct buf buf;
    int failing; /* the last write failed: said once, not once a line */
};

static int open_file(const char *path, char *err, size_t errlen)
{
    int fd = files_make_parent_dirs(path) == 0
                 ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)
                 : -1;
    if (fd < 0)
        snprintf(err, errlen, "access_log %s: %s", path, strerror(errno));
    return fd;
}

struct accesslog *accesslog_open(const char *path, char *err, size_t errlen)
{
    struct accesslog *log = mem_calloc(1, sizeof(*log));
    log->path = mem_strdup(path);
    log->is_file = strcmp(path, "stdout") != 0;
    log->fd = log->is_file ? open_file(path, err, errlen) : STDOUT_FILENO;
    pthread_mutex_init(&log->lock, NULL);
    if (log->fd < 0) {
        accesslog_close(log);
        return NULL;
    }
    struct stat st;
    log->serialize = fstat(log->fd, &st) != 0 || !S_ISREG(st.st_mode);
    return log;
}

void accesslog_close(struct accesslog *log)
{
    if (log == NULL)
        return;
    if (log->is_file && log->fd >= 0)
        close(log->fd);
    pthread_mutex_destroy(&log->lock);
    free(log->path);
    free(log);
}

const char *accesslog_path(const struct accesslog *log)
{
    return log->path;
}

int accesslog_reopen(struct accesslog *log, char *err, size_t errlen)
{
    if (!log->is_file)
        return 0;
    int fd = open_file(log->path, err, errlen);
    if (fd < 0)
        return -1;
    /* Atomic for the writers: at every instant log->fd is one open file,
     * the old one until dup2 returns, the new one after. */
    int rc = dup2(fd, log->fd) < 0 ? -1 : 0;
    if (rc != 0)
        snprintf(err, errlen, "access_log %s: %s", log->path, strerror(errno));
    close(fd);
    return rc;
}

struct accesslog_writer *accesslog_writer_new(struct accesslog *log, size_t buffer_bytes)
{
    struct accesslog_writer *w = mem_calloc(1, sizeof(*w));
    w->log = log;
    w->limit = buffer_bytes;
    return w;
}

void accesslog_writer_free(struct accesslog_writer *w)
{
    if (w == NULL)
        return;
    accesslog_flush(w);
    buf_dispose(&w->buf);
    free(w);
}

void accesslog_flush(struct accesslog_writer *w)
{
    size_t off = 0;
    if (w->log->serialize)
        pthread_mutex_lock(&w->log->lock);
    while (off < w->buf.len) {
        ssize_t n = write(w->log->fd, w->buf.data + off, w->buf.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* A full disk must not stop the proxy: the lines are dropped,
             * and the error log says so once until writing works again. */
            if (!w->failing)
                log_error("access_log %s: %s; dropping lines until it can be written", w->log->path,
                          n < 0 ? strerror(errno) : "nothing written");
            w->failing = 1;
            break;
        }
        off += (size_t)n;
    }
    if (w->log->serialize)
        pthread_mutex_unlock(&w->log->lock);
    if (off == w->buf.len && off > 0 && w->failing) {
        log_warn("access_log %s: writing again", w->log->path);
        w->failing = 0;
    }
    w->buf.len = 0;
}

static void put_string(struct buf *b, const char *key, const char *s, size_t len)
{
    buf_append_str(b, key);
    if (s == NULL)
        buf_append_str(b, "null");
    else
        jsonw_string(b, s, len);
}

void accesslog_write(struct accesslog_writer *w, const struct accesslog_entry *e)
{
    struct buf *b = &w->buf;
    char at[CLOCK_RFC3339_LEN + 1];
    clock_format_rfc3339(at, e->time_us);
    buf_append_str(b, "{\"time\":\"");
    buf_append(b, at, CLOCK_RFC3339_LEN);
    buf_append_char(b, '"');
    put_string(b, ",\"request_id\":", e->request_id, e->request_id_len);
    put_string(b, ",\"client\":", e->client, e->client ? strlen(e->client) : 0);
    put_string(b, ",\"http_method\":", e->http_method, e->http_method_len);
    put_string(b, ",\"path\":", e->path, e->path_len);
    put_string(b, ",\"method\":", e->method, e->method_len);
    buf_append_str(b, ",\"calls\":");
    buf_append_u64(b, e->calls);
    put_string(b, ",\"route\":", e->route, e->route ? strlen(e->route) : 0);
    put_string(b, ",\"target\":", e->target, e->target ? strlen(e->target) : 0);
    put_string(b, ",\"side\":", e->side, e->side ? strlen(e->side) : 0);
    buf_append_str(b, ",\"status\":");
    buf_append_u64(b, (uint64_t)e->status);
    buf_append_str(b, ",\"fault_code\":");
    if (e->has_fault)
        jsonw_i64(b, e->fault_code);
    else
        buf_append_str(b, "null");
    put_string(b, ",\"outcome\":", e->outcome, e->outcome ? strlen(e->outcome) : 0);
    buf_appendf(b, ",\"duration_ms\":%.3f,\"bytes_in\":", (double)e->duration_us / 1000.0);
    buf_append_u64(b, e->bytes_in);
    buf_append_str(b, ",\"bytes_out\":");
    buf_append_u64(b, e->bytes_out);
    buf_append_str(b, "}\n");
    if (b->len >= w->limit)
        accesslog_flush(w);
}
