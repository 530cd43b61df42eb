/*
 * buf: a growable byte buffer.
 *
 * The proxy reads sockets into bufs, builds upstream requests, XML and JSON
 * in them, and writes them out. The layout is public because bufs are
 * embedded in connection and request structs; touch the fields directly to
 * read, use the functions to grow.
 *
 * Invariant: data[0..len) holds the bytes; cap >= len; data is NULL only when
 * cap is 0. A buf owns its data; buf_dispose() releases it. The bytes are not
 * NUL-terminated unless buf_cstr() is called.
 */
#ifndef STRANGLER_COMMON_BUF_H
#define STRANGLER_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Releases the storage; the buf is empty and reusable afterwards. */
void buf_dispose(struct buf *b);

/* Empties b, keeping its storage for what comes next. */
void buf_reset(struct buf *b);

/* Makes room for at least `extra` more bytes after len. */
void buf_reserve(struct buf *b, size_t extra);

/* Appends bytes. */
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);

/* Appends the decimal form of an integer. */
void buf_append_i64(struct buf *b, int64_t v);
void buf_append_u64(struct buf *b, uint64_t v);

/* Appends printf-style formatted text. */
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vappendf(struct buf *b, const char *fmt, va_list ap);

/* Drops the first n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Returns data NUL-terminated (the NUL is not counted in len). */
const char *buf_cstr(struct buf *b);

/* Hands the storage to the caller (who frees it with free()); b is emptied. */
char *buf_steal(struct buf *b);

#endif
