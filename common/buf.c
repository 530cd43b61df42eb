#include "common/buf.h"

#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_dispose(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
}

void buf_reserve(struct buf *b, size_t extra)
{
    size_t need = b->len + extra;
    if (need < b->len)
        need = SIZE_MAX; /* mem_realloc aborts on the impossible size */
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need && cap < SIZE_MAX / 2)
        cap *= 2;
    if (cap < need)
        cap = need;
    b->data = mem_realloc(b->data, cap);
    b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
    if (len == 0)
        return;
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void buf_append_str(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_append_char(struct buf *b, char c)
{
    buf_reserve(b, 1);
    b->data[b->len++] = c;
}

void buf_append_u64(struct buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    buf_reserve(b, n);
    while (n > 0)
        b->data[b->len++] = tmp[--n];
}

void buf_append_i64(struct buf *b, int64_t v)
{
    if (v < 0) {
        buf_append_char(b, '-');
        /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
        buf_append_u64(b, (uint64_t)0 - (uint64_t)v);
        return;
    }
    buf_append_u64(b, (uint64_t)v);
}

void buf_vappendf(struct buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    char probe[256];
    int n = vsnprintf(probe, sizeof(probe), fmt, ap);
    if (n < 0) {
        va_end(again);
        return;
    }
    if ((size_t)n < sizeof(probe)) {
        buf_append(b, probe, (size_t)n);
    } else {
        buf_reserve(b, (size_t)n + 1);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}

void buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vappendf(b, fmt, ap);
    va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

const char *buf_cstr(struct buf *b)
{
    buf_reserve(b, 1);
    b->data[b->len] = '\0';
    return b->data;
}

char *buf_steal(struct buf *b)
{
    buf_cstr(b);
    char *p = b->data;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
