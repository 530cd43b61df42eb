#include "common/log.h"

#include "common/clock.h"
#include "common/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int current_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&current_level, memory_order_relaxed);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;

    char line[2048];
    size_t n = clock_format_rfc3339(line, clock_realtime_us());
    int k = snprintf(line + n, sizeof(line) - n, " [%s] ", level_names[level]);
    if (k > 0)
        n += (size_t)k;

    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (k < 0)
        k = 0;
    size_t text = n;
    n += (size_t)k;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2; /* truncated: keep the newline */
    /* Messages quote what clients sent (method names, parse errors): a
     * newline or an escape sequence in them must not forge a log line or
     * reach a terminal. */
    for (size_t i = text; i < n; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[n++] = '\n';

    /* One write per line; a short write to stderr is not worth a retry loop
     * that could interleave with another thread's line. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

int log_redirect(const char *path, char *err, size_t errlen)
{
    int fd = files_make_parent_dirs(path) == 0
                 ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)
                 : -1;
    if (fd < 0) {
        snprintf(err, errlen, "error_log %s: %s", path, strerror(errno));
        return -1;
    }
    /* In place under the same number: a thread writing meanwhile writes
     * whole lines to the old file or the new one. */
    int rc = dup2(fd, STDERR_FILENO) < 0 ? -1 : 0;
    if (rc != 0)
        snprintf(err, errlen, "error_log %s: %s", path, strerror(errno));
    close(fd);
    return rc;
}
