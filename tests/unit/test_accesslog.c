/*
 * accesslog.c: one JSON line per request, written at once or buffered,
 * reopened after logrotate, on real files in scratch directories.
 */
#include "unit.h"
#include "proxy/accesslog.h"
#include "scratch.h"

#include "common/buf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0 1795255200000000ll /* 2026-11-21T10:00:00Z */

static void make_root(void)
{
    scratch_root_make("accesslog");
}

/* A fresh directory with the log's path in it. */
static void log_path(const char *name, char *dir, char *path)
{
    scratch_dir(name, dir, PATH_MAX);
    ck_assert_int_lt(snprintf(path, PATH_MAX, "%s/access.log", dir), PATH_MAX);
}

static struct accesslog *open_log(const char *path)
{
    char err[512] = "";
    struct accesslog *log = accesslog_open(path, err, sizeof(err));
    ck_assert_msg(log != NULL, "%s", err);
    return log;
}

/* The file's bytes (stdio, so that the code under test does not check
 * itself); "" for a missing or empty file. The caller frees. */
static char *slurp(const char *path)
{
    struct buf b = BUF_INIT;
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            buf_append(&b, chunk, n);
        fclose(f);
    }
    buf_cstr(&b);
    return buf_steal(&b);
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* A request with every field set; `method` of method_len bytes. */
static struct accesslog_entry full_entry(const char *method, size_t method_len)
{
    struct accesslog_entry e = {
        .time_us = T0 + 123456,
        .request_id = "req-1-and-more",
        .request_id_len = 5,
        .client = "10.0.0.7",
        .http_method = "POSTED",
        .http_method_len = 4,
        .path = "/RPC2?x",
        .path_len = 5,
        .method = method,
        .method_len = method_len,
        .calls = 1,
        .route = "stock-read",
        .target = "stock-svc",
        .side = "new",
        .status = 200,
        .has_fault = 1,
        .fault_code = -32601,
        .outcome = "fault",
        .duration_us = 1234,
        .bytes_in = 312,
        .bytes_out = 245,
    };
    return e;
}

static struct accesslog_entry plain_entry(const char *id)
{
    struct accesslog_entry e = full_entry("stock.get", 9);
    e.request_id = id;
    e.request_id_len = strlen(id);
    e.has_fault = 0;
    e.outcome = "ok";
    return e;
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member %s", key);
    return v;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    ck_assert_msg(json_object_is_type(v, json_type_string), "%s is not a string", key);
    return json_object_get_string(v);
}

static int64_t get_int(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    ck_assert_msg(json_object_is_type(v, json_type_int), "%s is not an integer", key);
    return json_object_get_int64(v);
}

static void assert_null(json_object *o, const char *key)
{
    ck_assert_msg(get(o, key) == NULL, "%s is not null", key);
}

/* Parses one line (without its newline) strictly. */
static json_object *parse_line(const char *line, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, line, (int)len);
    ck_assert_msg(o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
                      json_tokener_get_parse_end(tok) == len,
                  "not one JSON value: %.*s", (int)len, line);
    json_tokener_free(tok);
    ck_assert(json_object_is_type(o, json_type_object));
    return o;
}

/* The n-th line (from 0) of text, parsed. */
static json_object *line_of(const char *text, size_t n)
{
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    const char *nl = strchr(p, '\n');
    ck_assert_msg(nl != NULL, "no line %zu in %.500s", n, text);
    return parse_line(p, (size_t)(nl - p));
}

static int is_rfc3339_ms(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
            return 0;
    return 1;
}

START_TEST(an_unbuffered_line_is_written_at_once_with_every_field)
{
    char dir[PATH_MAX], path[PATH_MAX];
    log_path("fields", dir, path);
    struct accesslog *log = open_log(path);
    ck_assert_str_eq(accesslog_path(log), path);
    struct accesslog_writer *w = accesslog_writer_new(log, 0);

    /* A method name with a quote, a backslash and control characters. */
    static const char method[] = "stock.\"get\"\\\x01\n\x1f.";
    struct accesslog_entry e = full_entry(method, sizeof(method) - 1);
    accesslog_write(w, &e);
    char *text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1);
    ck_assert_uint_eq(text[strlen(text) - 1], '\n');
    /* The control characters are escaped in the line, not written raw. */
    ck_assert_ptr_null(strchr(text, '\x01'));
    ck_assert_ptr_null(strchr(text, '\x1f'));
    ck_assert_ptr_nonnull(strstr(text, "\\\""));

    json_object *o = line_of(text, 0);
    ck_assert_int_eq(json_object_object_length(o), 16);
    ck_assert_str_eq(get_str(o, "time"), "2026-11-21T10:00:00.123Z");
    ck_assert(is_rfc3339_ms(get_str(o, "time")));
    ck_assert_str_eq(get_str(o, "request_id"), "req-1");
    ck_assert_str_eq(get_str(o, "client"), "10.0.0.7");
    ck_assert_str_eq(get_str(o, "http_method"), "POST");
    ck_assert_str_eq(get_str(o, "path"), "/RPC2");
    ck_assert_str_eq(get_str(o, "method"), method);
    ck_assert_int_eq(get_int(o, "calls"), 1);
    ck_assert_str_eq(get_str(o, "route"), "stock-read");
    ck_assert_str_eq(get_str(o, "target"), "stock-svc");
    ck_assert_str_eq(get_str(o, "side"), "new");
    ck_assert_int_eq(get_int(o, "status"), 200);
    ck_assert_int_eq(get_int(o, "fault_code"), -32601);
    ck_assert_str_eq(get_str(o, "outcome"), "fault");
    json_object *d = get(o, "duration_ms");
    ck_assert(json_object_is_type(d, json_type_double));
    ck_assert(fabs(json_object_get_double(d) - 1.234) < 1e-9);
    ck_assert_int_eq(get_int(o, "bytes_in"), 312);
    ck_assert_int_eq(get_int(o, "bytes_out"), 245);
    json_object_put(o);
    free(text);

    /* A second one: the file grows by exactly one line. */
    e = plain_entry("req-2");
    e.time_us = T0 + 86400ll * 1000000 + 999999;
    e.duration_us = 0;
    e.calls = 3;
    accesslog_write(w, &e);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 2);
    o = line_of(text, 1);
    ck_assert_str_eq(get_str(o, "request_id"), "req-2");
    ck_assert_str_eq(get_str(o, "time"), "2026-11-22T10:00:00.999Z");
    ck_assert_str_eq(get_str(o, "method"), "stock.get");
    assert_null(o, "fault_code");
    ck_assert_int_eq(get_int(o, "calls"), 3);
    ck_assert(json_object_get_double(get(o, "duration_ms")) == 0);
    json_object_put(o);
    free(text);
    accesslog_writer_free(w);
    accesslog_close(log);
}
END_TEST

START_TEST(absent_strings_are_null)
{
    char dir[PATH_MAX], path[PATH_MAX];
    log_path("nulls", dir, path);
    struct accesslog *log = open_log(path);
    struct accesslog_writer *w = accesslog_writer_new(log, 0);
    struct accesslog_entry e = {
        .time_us = T0,
        .http_method = "GET",
        .http_method_len = 3,
        .path = "/",
        .path_len = 1,
        .outcome = "client_closed",
    };
    accesslog_write(w, &e);
    char *text = slurp(path);
    json_object *o = line_of(text, 0);
    ck_assert_int_eq(json_object_object_length(o), 16);
    const char *nulls[] = {"request_id", "client", "method",    "route",
                           "target",     "side",   "fault_code"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        assert_null(o, nulls[i]);
    ck_assert_int_eq(get_int(o, "calls"), 0);
    ck_assert_int_eq(get_int(o, "status"), 0);
    ck_assert_str_eq(get_str(o, "time"), "2026-11-21T10:00:00.000Z");
    ck_assert_str_eq(get_str(o, "outcome"), "client_closed");
    json_object_put(o);
    free(text);
    accesslog_writer_free(w);
    accesslog_close(log);
}
END_TEST

/* The header lets every string be NULL, written as null; the outcome too. */
START_TEST(a_null_outcome_is_null)
{
    char dir[PATH_MAX], path[PATH_MAX];
    log_path("null-outcome", dir, path);
    struct accesslog *log = open_log(path);
    struct accesslog_writer *w = accesslog_writer_new(log, 0);
    struct accesslog_entry e = plain_entry("r");
    e.outcome = NULL;
    accesslog_write(w, &e);
    char *text = slurp(path);
    json_object *o = line_of(text, 0);
    assert_null(o, "outcome");
    json_object_put(o);
    free(text);
    accesslog_writer_free(w);
    accesslog_close(log);
}
END_TEST

START_TEST(a_buffered_writer_waits_for_a_flush_or_a_full_buffer)
{
    char dir[PATH_MAX], path[PATH_MAX];
    log_path("buffered", dir, path);
    struct accesslog *log = open_log(path);
    const size_t limit = 1024;
    struct accesslog_writer *w = accesslog_writer_new(log, limit);
    struct accesslog_entry e = plain_entry("req-buffered");

    accesslog_write(w, &e);
    char *text = slurp(path);
    ck_assert_str_eq(text, "");
    free(text);
    accesslog_flush(w);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1);
    size_t line_len = strlen(text);
    ck_assert_uint_lt(line_len, limit / 2);
    free(text);
    /* Nothing buffered: a flush writes nothing more. */
    accesslog_flush(w);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1);
    free(text);

    /* Lines wait until they fill the buffer, then all go at once. */
    size_t to_fill = (limit + line_len - 1) / line_len;
    for (size_t i = 1; i < to_fill; i++) {
        accesslog_write(w, &e);
        text = slurp(path);
        ck_assert_msg(count_lines(text) == 1, "after %zu lines of %zu bytes: written", i, line_len);
        free(text);
    }
    accesslog_write(w, &e);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1 + to_fill);
    ck_assert_uint_eq(strlen(text), line_len * (1 + to_fill));
    for (size_t i = 0; i < 1 + to_fill; i++)
        json_object_put(line_of(text, i));
    free(text);

    /* Freeing the writer writes what it holds. */
    accesslog_write(w, &e);
    accesslog_write(w, &e);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1 + to_fill);
    free(text);
    accesslog_writer_free(w);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 3 + to_fill);
    free(text);
    accesslog_close(log);
}
END_TEST

START_TEST(a_buffer_is_full_at_exactly_its_size)
{
    char dir[PATH_MAX], path[PATH_MAX];
    log_path("exact", dir, path);
    struct accesslog *log = open_log(path);
    struct accesslog_entry e = plain_entry("req-exact");
    /* One line written at once, to learn its length. */
    struct accesslog_writer *w = accesslog_writer_new(log, 0);
    accesslog_write(w, &e);
    accesslog_writer_free(w);
    char *text = slurp(path);
    size_t line_len = strlen(text);
    free(text);
    /* A buffer of exactly three lines: the third fills it. */
    w = accesslog_writer_new(log, 3 * line_len);
    accesslog_write(w, &e);
    accesslog_write(w, &e);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1);
    free(text);
    accesslog_write(w, &e);
    text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 4);
    free(text);
    accesslog_writer_free(w);
    accesslog_close(log);
}
END_TEST

START_TEST(a_line_longer_than_the_buffer_is_written_at_once)
{
    char dir[PATH_MAX], path[PATH_MAX];
    log_path("long-line", dir, path);
    struct accesslog *log = open_log(path);
    struct accesslog_writer *w = accesslog_writer_new(log, 64);
    char method[300];
    memset(method, 'm', sizeof(method));
    struct accesslog_entry e = full_entry(method, sizeof(method));
    accesslog_write(w, &e);
    char *text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1);
    json_object *o = line_of(text, 0);
    ck_assert_uint_eq(strlen(get_str(o, "method")), sizeof(method));
    json_object_put(o);
    free(text);
    accesslog_writer_free(w);
    accesslog_close(log);
}
END_TEST

START_TEST(a_reopen_after_a_rename_starts_a_new_file)
{
    char dir[PATH_MAX], path[PATH_MAX], rotated[PATH_MAX + 8], err[512];
    log_path("rotate", dir, path);
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    struct accesslog *log = open_log(path);
    struct accesslog_writer *now = accesslog_writer_new(log, 0);
    struct accesslog_writer *later = accesslog_writer_new(log, 4096);

    struct accesslog_entry a = plain_entry("before"), b = plain_entry("after"),
                           c = plain_entry("buffered");
    accesslog_write(now, &a);
    accesslog_write(later, &c); /* held across the rotation */
    /* logrotate: rename, then SIGUSR1. Until the reopen, lines follow the
     * file to its new name. */
    ck_assert_int_eq(rename(path, rotated), 0);
    accesslog_write(now, &a);
    ck_assert_int_eq(accesslog_reopen(log, err, sizeof(err)), 0);
    accesslog_write(now, &b);
    accesslog_flush(later);

    char *old = slurp(rotated), *new = slurp(path);
    ck_assert_uint_eq(count_lines(old), 2);
    ck_assert_uint_eq(count_lines(new), 2);
    json_object *o = line_of(old, 0);
    ck_assert_str_eq(get_str(o, "request_id"), "before");
    json_object_put(o);
    o = line_of(old, 1);
    ck_assert_str_eq(get_str(o, "request_id"), "before");
    json_object_put(o);
    o = line_of(new, 0);
    ck_assert_str_eq(get_str(o, "request_id"), "after");
    json_object_put(o);
    o = line_of(new, 1);
    ck_assert_str_eq(get_str(o, "request_id"), "buffered");
    json_object_put(o);
    free(old);
    free(new);

    /* A reopen without a rename appends to the same file. */
    ck_assert_int_eq(accesslog_reopen(log, err, sizeof(err)), 0);
    accesslog_write(now, &b);
    new = slurp(path);
    ck_assert_uint_eq(count_lines(new), 3);
    free(new);
    /* The file is made with no permissions for others. */
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0007, 0);

    accesslog_writer_free(now);
    accesslog_writer_free(later);
    accesslog_close(log);
}
END_TEST

START_TEST(a_failed_reopen_keeps_the_old_file)
{
    char dir[PATH_MAX], path[PATH_MAX], moved[PATH_MAX + 8], err[512] = "";
    log_path("reopen-fails", dir, path);
    snprintf(moved, sizeof(moved), "%s.gone", dir);
    struct accesslog *log = open_log(path);
    struct accesslog_writer *w = accesslog_writer_new(log, 0);
    struct accesslog_entry e = plain_entry("kept");
    accesslog_write(w, &e);
    /* The folder goes away and a file takes its name: the path cannot be
     * opened again. */
    ck_assert_int_eq(rename(dir, moved), 0);
    scratch_write(dir, "in the way\n", 0600);
    ck_assert_int_eq(accesslog_reopen(log, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    ck_assert_msg(strstr(err, strerror(ENOTDIR)) != NULL, "%s", err);
    /* Lines go on to the file it had. */
    accesslog_write(w, &e);
    char moved_file[PATH_MAX + 32];
    snprintf(moved_file, sizeof(moved_file), "%s/access.log", moved);
    char *text = slurp(moved_file);
    ck_assert_uint_eq(count_lines(text), 2);
    free(text);
    accesslog_writer_free(w);
    accesslog_close(log);
}
END_TEST

START_TEST(an_unopenable_path_is_refused_with_the_reason)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[512] = "";
    scratch_dir("unopenable", dir, sizeof(dir));
    /* A file where a folder should be. */
    char blocker[PATH_MAX + 32];
    snprintf(blocker, sizeof(blocker), "%s/file", dir);
    scratch_write(blocker, "not a folder\n", 0600);
    snprintf(path, sizeof(path), "%s/file/access.log", dir);
    ck_assert_ptr_null(accesslog_open(path, err, sizeof(err)));
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    ck_assert_msg(strstr(err, strerror(ENOTDIR)) != NULL, "%s", err);
    /* A folder, not a file. */
    err[0] = '\0';
    ck_assert_ptr_null(accesslog_open(dir, err, sizeof(err)));
    ck_assert_msg(strstr(err, dir) != NULL, "%s", err);
    ck_assert_msg(strstr(err, strerror(EISDIR)) != NULL, "%s", err);
}
END_TEST

/* A fresh checkout's ./var/access.log: the folders are made. */
START_TEST(missing_folders_are_made)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[512] = "";
    scratch_dir("folders", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/var/log/access.log", dir);
    struct accesslog *log = accesslog_open(path, err, sizeof(err));
    ck_assert_msg(log != NULL, "%s", err);
    struct accesslog_writer *w = accesslog_writer_new(log, 0);
    struct accesslog_entry e = plain_entry("made");
    accesslog_write(w, &e);
    accesslog_writer_free(w);
    accesslog_close(log);
    char *text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1);
    free(text);
}
END_TEST

START_TEST(stdout_is_written_to_and_never_closed)
{
    char dir[PATH_MAX], path[PATH_MAX], err[512];
    log_path("stdout", dir, path);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_ge(saved, 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    close(fd);

    struct accesslog *log = open_log("stdout");
    ck_assert_str_eq(accesslog_path(log), "stdout");
    ck_assert_int_eq(accesslog_reopen(log, err, sizeof(err)), 0);
    struct accesslog_writer *w = accesslog_writer_new(log, 0);
    struct accesslog_entry e = plain_entry("to-stdout");
    accesslog_write(w, &e);
    accesslog_writer_free(w);
    accesslog_close(log);
    int still_open = fcntl(STDOUT_FILENO, F_GETFD) != -1;

    ck_assert_int_eq(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
    close(saved);
    ck_assert(still_open);
    char *text = slurp(path);
    ck_assert_uint_eq(count_lines(text), 1);
    json_object *o = line_of(text, 0);
    ck_assert_str_eq(get_str(o, "request_id"), "to-stdout");
    json_object_put(o);
    free(text);
}
END_TEST

/* Sends the error log (stderr) to `path` until restore_stderr(). */
static int capture_stderr(const char *path)
{
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    return saved;
}

static void restore_stderr(int saved)
{
    ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
}

/* How many times `what` occurs in text. */
static size_t occurrences(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

START_TEST(a_full_disk_drops_lines_and_says_so_once)
{
    char dir[PATH_MAX], errlog[PATH_MAX + 8];
    scratch_dir("full", dir, sizeof(dir));
    snprintf(errlog, sizeof(errlog), "%s/err", dir);
    int saved = capture_stderr(errlog);

    struct accesslog *log = open_log("/dev/full");
    struct accesslog_writer *w = accesslog_writer_new(log, 0);
    struct accesslog_entry e = plain_entry("lost");
    for (int i = 0; i < 5; i++)
        accesslog_write(w, &e);
    struct accesslog_writer *b = accesslog_writer_new(log, 1 << 20);
    accesslog_write(b, &e);
    accesslog_writer_free(b);
    accesslog_writer_free(w);
    accesslog_close(log);

    restore_stderr(saved);
    char *text = slurp(errlog);
    /* Once per writer, not once a line. */
    size_t said = occurrences(text, "dropping lines");
    ck_assert_msg(said == 2, "said %zu times:\n%s", said, text);
    ck_assert_ptr_nonnull(strstr(text, "/dev/full"));
    free(text);
}
END_TEST

/* A flush with nothing buffered (the worker's timer) must not end the
 * failing state: nothing was written. */
START_TEST(an_empty_flush_does_not_say_writing_works_again)
{
    char dir[PATH_MAX], errlog[PATH_MAX + 8];
    scratch_dir("full-timer", dir, sizeof(dir));
    snprintf(errlog, sizeof(errlog), "%s/err", dir);
    int saved = capture_stderr(errlog);

    struct accesslog *log = open_log("/dev/full");
    struct accesslog_writer *w = accesslog_writer_new(log, 0);
    struct accesslog_entry e = plain_entry("lost");
    /* A line, then the worker's flush timer with nothing to write, three
     * times over: the disk stays full all along. */
    for (int i = 0; i < 3; i++) {
        accesslog_write(w, &e);
        accesslog_flush(w);
    }
    accesslog_writer_free(w);
    accesslog_close(log);

    restore_stderr(saved);
    char *text = slurp(errlog);
    size_t said = occurrences(text, "dropping lines");
    ck_assert_msg(said == 1, "said %zu times:\n%s", said, text);
    ck_assert_msg(strstr(text, "writing again") == NULL, "%s", text);
    free(text);
}
END_TEST

/* ---- several writers at once ---- */

#define WRITERS 4
#define LINES   500

struct writer_job {
    struct accesslog *log;
    int id;
};

static void *write_lines(void *arg)
{
    struct writer_job *job = arg;
    /* Odd buffer sizes, so flushes fall mid-way through other writers'. */
    struct accesslog_writer *w = accesslog_writer_new(job->log, 300 + 700 * (size_t)job->id);
    char id[32];
    for (int i = 0; i < LINES; i++) {
        snprintf(id, sizeof(id), "w%d-%d", job->id, i);
        struct accesslog_entry e = plain_entry(id);
        accesslog_write(w, &e);
    }
    accesslog_writer_free(w);
    return NULL;
}

START_TEST(lines_of_several_writers_never_interleave)
{
    char dir[PATH_MAX], path[PATH_MAX];
    log_path("writers", dir, path);
    struct accesslog *log = open_log(path);
    pthread_t th[WRITERS];
    struct writer_job jobs[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        jobs[i] = (struct writer_job){log, i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, write_lines, &jobs[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    accesslog_close(log);

    char *text = slurp(path);
    ck_assert_uint_eq(count_lines(text), WRITERS * LINES);
    /* Each line whole, each writer's lines in its order. */
    int next[WRITERS] = {0};
    const char *p = text;
    for (size_t n = 0; n < WRITERS * LINES; n++) {
        const char *nl = strchr(p, '\n');
        json_object *o = parse_line(p, (size_t)(nl - p));
        int wid = -1, seq = -1;
        ck_assert_int_eq(sscanf(get_str(o, "request_id"), "w%d-%d", &wid, &seq), 2);
        ck_assert(wid >= 0 && wid < WRITERS);
        ck_assert_int_eq(seq, next[wid]);
        next[wid]++;
        json_object_put(o);
        p = nl + 1;
    }
    free(text);
}
END_TEST

Suite *accesslog_suite(void)
{
    Suite *s = suite_create("accesslog");
    TCase *tc = tcase_create("accesslog");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_unchecked_fixture(tc, make_root, scratch_root_remove);
    tcase_add_test(tc, an_unbuffered_line_is_written_at_once_with_every_field);
    tcase_add_test(tc, absent_strings_are_null);
    tcase_add_test(tc, a_buffered_writer_waits_for_a_flush_or_a_full_buffer);
    tcase_add_test(tc, a_buffer_is_full_at_exactly_its_size);
    tcase_add_test(tc, a_line_longer_than_the_buffer_is_written_at_once);
    tcase_add_test(tc, a_reopen_after_a_rename_starts_a_new_file);
    tcase_add_test(tc, a_failed_reopen_keeps_the_old_file);
    tcase_add_test(tc, an_unopenable_path_is_refused_with_the_reason);
    tcase_add_test(tc, missing_folders_are_made);
    tcase_add_test(tc, stdout_is_written_to_and_never_closed);
    tcase_add_test(tc, a_full_disk_drops_lines_and_says_so_once);
    tcase_add_test(tc, lines_of_several_writers_never_interleave);
    tcase_add_test(tc, a_null_outcome_is_null);
    tcase_add_test(tc, an_empty_flush_does_not_say_writing_works_again);
    suite_add_tcase(s, tc);

    return s;
}
