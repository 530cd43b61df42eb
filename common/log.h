/*
 * log: the error log.
 *
 * One line per message on stderr, written with a single write(2) so lines
 * from different threads never interleave (`error_log PATH` makes a file
 * the process's stderr, so whatever a library writes there lands in it
 * too):
 *     2026-11-21T10:00:00.123Z [warn] upstream legacy: connection refused
 * The level is process-wide state, set once at start and on reload through
 * log_set_level(); reading it is a relaxed atomic load, cheap enough to test
 * before building a debug message.
 */
#ifndef STRANGLER_COMMON_LOG_H
#define STRANGLER_COMMON_LOG_H

#include <stddef.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

/* Messages above `level` are dropped. The default is LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug"; returns 0, or -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);

/* Nonzero when a message at `level` would be written. */
int log_enabled(enum log_level level);

/* Makes `path` the process's standard error, opened for appending (at start
 * and again on SIGUSR1, after logrotate moved the file). Returns 0, or -1
 * with the reason in err and stderr unchanged. */
int log_redirect(const char *path, char *err, size_t errlen);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG))                                                          \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif
