/*
 * fuzz_http_request: the bytes as what a client sends on a connection.
 *
 * http_parse_request() reads the head with the proxy's default limits
 * (max_header_size 16 KiB, max_headers 100, as config.c sets them). When
 * a head parses, the bytes after it go through the chunked decoder,
 * whatever the framing (the decoder must survive any bytes), fed in one
 * piece and then again byte by byte.
 *
 * Checks: the parser returns a head length within the bytes, every string
 * of the request points inside them, the framing fields are consistent,
 * an error has a 4xx/5xx status and a reason; the chunked decoder consumes
 * at most what it is given, hands out data only from inside the input, and
 * reaches the same verdict and the same body whole and byte by byte.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "proxy/http.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INSIDE(p, n, base, size)                                                                   \
    ((n) == 0 || ((const char *)(p) >= (base) && (const char *)(p) + (n) <= (base) + (size)))

/* An absolute-form target without a path is reduced to a static "/"
 * (http.c, reduce_absolute_form). */
#define INSIDE_OR_SLASH(p, n, base, size) (INSIDE(p, n, base, size) || ((n) == 1 && *(p) == '/'))

/* Feeds in[0..len) to a fresh decoder, step bytes at a time (0: all at
 * once), collecting the body. Returns the last result. */
static enum http_chunk_result decode(const char *in, size_t len, size_t step, struct buf *body)
{
    struct http_chunked c;
    enum http_chunk_result r = HTTP_CHUNK_MORE;
    size_t off = 0;

    http_chunked_init(&c);
    while (off < len) {
        size_t avail = len - off;
        size_t n = step && step < avail ? step : avail;
        size_t used = 0;
        const char *d = NULL;
        size_t dlen = 0;
        r = http_chunked_feed(&c, in + off, n, &used, &d, &dlen);
        FUZZ_CHECK(used <= n, "consumed %zu of %zu", used, n);
        if (r == HTTP_CHUNK_ERROR || r == HTTP_CHUNK_DONE)
            return r;
        if (r == HTTP_CHUNK_DATA) {
            FUZZ_CHECK(INSIDE(d, dlen, in + off, n), "data outside the input");
            FUZZ_CHECK(dlen > 0, "empty data span");
            buf_append(body, d, dlen);
        } else {
            FUZZ_CHECK(used == n, "MORE after consuming %zu of %zu", used, n);
        }
        FUZZ_CHECK(used > 0 || r == HTTP_CHUNK_DATA, "no progress");
        off += used;
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct http_limits lim = {16 * 1024, 100};
    static struct http_request req; /* large: keep it off the stack */
    struct http_error err = {0};

    memset(&req, 0, sizeof(req));
    int n = http_parse_request(in, size, &lim, &req, &err);
    if (n < 0) {
        FUZZ_CHECK(err.status >= 400 && err.status <= 599, "status %d", err.status);
        FUZZ_CHECK(err.reason != NULL, "no reason");
        return 0;
    }
    if (n == 0)
        return 0;
    FUZZ_CHECK((size_t)n <= size && (size_t)n == req.msg.head_len, "head %d of %zu", n, size);
    FUZZ_CHECK(req.msg.nheaders <= lim.max_headers, "%zu headers", req.msg.nheaders);
    FUZZ_CHECK(INSIDE(req.method, req.method_len, in, (size_t)n), "method");
    FUZZ_CHECK(req.method_len > 0, "empty method");
    FUZZ_CHECK(INSIDE_OR_SLASH(req.target, req.target_len, in, (size_t)n), "target");
    FUZZ_CHECK(INSIDE_OR_SLASH(req.path, req.path_len, in, (size_t)n), "path");
    if (req.query != NULL)
        FUZZ_CHECK(INSIDE(req.query, req.query_len, in, (size_t)n), "query");
    if (req.host != NULL)
        FUZZ_CHECK(INSIDE(req.host, req.host_len, in, (size_t)n), "host");
    for (size_t i = 0; i < req.msg.nheaders; i++) {
        const struct http_header *h = &req.msg.headers[i];
        FUZZ_CHECK(INSIDE(h->name, h->name_len, in, (size_t)n), "header name %zu", i);
        FUZZ_CHECK(INSIDE(h->value, h->value_len, in, (size_t)n), "header value %zu", i);
        FUZZ_CHECK(h->name_len > 0, "empty header name");
    }
    FUZZ_CHECK(req.msg.version == 10 || req.msg.version == 11, "version %d", req.msg.version);
    FUZZ_CHECK(req.msg.framing != HTTP_FRAMING_EOF, "a request framed by EOF");
    if (req.msg.version == 11)
        FUZZ_CHECK(req.host != NULL, "HTTP/1.1 without Host");

    /* The body, as chunks: whole, then byte by byte; same verdict and body
     * (MORE and DATA both mean "not finished" for the whole input). */
    struct buf whole = BUF_INIT, bytes = BUF_INIT;
    const char *rest = in + n;
    size_t rest_len = size - (size_t)n;
    enum http_chunk_result r1 = decode(rest, rest_len, 0, &whole);
    enum http_chunk_result r2 = decode(rest, rest_len, 1, &bytes);
    int done1 = r1 == HTTP_CHUNK_DONE || r1 == HTTP_CHUNK_ERROR ? r1 : HTTP_CHUNK_MORE;
    int done2 = r2 == HTTP_CHUNK_DONE || r2 == HTTP_CHUNK_ERROR ? r2 : HTTP_CHUNK_MORE;
    FUZZ_CHECK(done1 == done2, "whole %d, byte by byte %d", (int)r1, (int)r2);
    if (done1 == HTTP_CHUNK_DONE)
        FUZZ_CHECK(whole.len == bytes.len &&
                       (whole.len == 0 || memcmp(whole.data, bytes.data, whole.len) == 0),
                   "bodies differ: %zu vs %zu bytes", whole.len, bytes.len);
    buf_dispose(&whole);
    buf_dispose(&bytes);
    return 0;
}
