/*
 * http: HTTP/1.1 message parsing (RFC 9110, RFC 9112), for both sides of
 * the proxy.
 *
 * The parser is strict on purpose. A proxy that reads a message differently
 * from the server behind it is the root of request smuggling, so whatever
 * RFC 9112 allows a recipient to reject, and whatever libevent's evhttp is
 * known to let through (FIELD-NOTES.md), is rejected here with a status that
 * says why: two Content-Length headers, a Transfer-Encoding other than
 * exactly "chunked", both framing headers together, bare LF line endings,
 * obs-fold, control characters in values, whitespace before a colon, empty
 * header names, signed or hex chunk sizes, HTTP/1.1 without Host.
 *
 * Parsing is zero-copy: every string in a parsed message points into the
 * caller's buffer, which must stay put while the message is used (see
 * http_request_rebase() for when it has to move).
 */
#ifndef STRANGLER_PROXY_HTTP_H
#define STRANGLER_PROXY_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Headers a message may carry; more is 431 (requests) or an error. */
#define HTTP_MAX_HEADERS 100

/*
 * The header names the proxy acts on, recognised once when a head is
 * parsed, so that forwarding a request compares a small number per header
 * and not a string per name it knows.
 */
enum http_header_id {
    HTTP_H_OTHER = 0,
    HTTP_H_CONNECTION,
    HTTP_H_KEEP_ALIVE,
    HTTP_H_PROXY_CONNECTION,
    HTTP_H_TE,
    HTTP_H_TRAILER,
    HTTP_H_TRANSFER_ENCODING,
    HTTP_H_UPGRADE,
    HTTP_H_CONTENT_LENGTH,
    HTTP_H_HOST,
    HTTP_H_EXPECT,
    HTTP_H_X_REQUEST_ID,
    HTTP_H_X_FORWARDED_FOR,
    HTTP_H_ACCEPT_ENCODING,
    HTTP_H_X_STRANGLER_SHADOW,
};

struct http_header {
    const char *name;
    const char *value; /* leading and trailing whitespace trimmed */
    uint32_t name_len;
    uint32_t value_len;
    unsigned hop_by_hop : 1; /* never forwarded (RFC 9110 7.6.1) */
    unsigned id : 5;         /* enum http_header_id */
};

/* How a message body is delimited. */
enum http_framing {
    HTTP_FRAMING_NONE = 0, /* no body */
    HTTP_FRAMING_LENGTH,   /* Content-Length bytes */
    HTTP_FRAMING_CHUNKED,  /* Transfer-Encoding: chunked */
    HTTP_FRAMING_EOF,      /* until the connection closes (responses only) */
};

/* Fields common to requests and responses. */
struct http_message {
    int version; /* 10 for HTTP/1.0, 11 for HTTP/1.1 */
    size_t head_len;
    enum http_framing framing;
    uint64_t content_length; /* with HTTP_FRAMING_LENGTH */
    int keep_alive;          /* the sender allows another message after this one */
    size_t nheaders;
    struct http_header headers[HTTP_MAX_HEADERS];
};

struct http_request {
    struct http_message msg;
    const char *method;
    const char *target; /* origin-form as sent (absolute-form is reduced to it) */
    const char *path;   /* target up to '?' */
    const char *query;  /* after '?', or NULL */
    const char *host;   /* Host header value, or NULL */
    uint32_t method_len, target_len, path_len, query_len, host_len;
    int expect_continue; /* Expect: 100-continue */
};

struct http_response {
    struct http_message msg;
    int status;
    const char *reason;
    uint32_t reason_len;
};

/* Limits that come from configuration. */
struct http_limits {
    size_t max_head_bytes; /* request line + headers; beyond is 431 */
    size_t max_headers;    /* at most HTTP_MAX_HEADERS */
};

/* Why a message was refused: the status to answer and a short reason that
 * goes into the error body and the log. */
struct http_error {
    int status;
    const char *reason; /* static string */
};

/*
 * Parses a request head from buf[0..len). Returns the head length (> 0) when
 * a complete head was parsed into *req, 0 when more bytes are needed, or -1
 * with *err when the request must be refused. The framing fields say how
 * many body bytes follow; a request body is never EOF-framed.
 */
int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, struct http_error *err);

/*
 * Parses a response head the same way. `request_method` decides whether a
 * body follows (HEAD never has one, RFC 9112 6.3). Interim (1xx) responses
 * are parsed like any other; the caller skips them.
 */
int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        const char *request_method, size_t request_method_len,
                        struct http_response *resp, struct http_error *err);

/* Moves every pointer of a parsed request from old_base to new_base, after
 * the buffer that holds it was reallocated. */
void http_request_rebase(struct http_request *req, const char *old_base, const char *new_base);

/* The first header called `name` (case-insensitive), or NULL. */
const struct http_header *http_find_header(const struct http_message *m, const char *name);

/* Nonzero when the two strings are equal ignoring ASCII case. */
int http_token_eq(const char *a, size_t a_len, const char *b);

/* Nonzero when c may appear in a method or a header name (tchar, RFC 9110
 * 5.6.2). */
int http_is_token_char(unsigned char c);

/* Nonzero when a method is idempotent (RFC 9110 9.2.2), so a request that
 * died on a stale keep-alive connection may be sent again. */
int http_method_idempotent(const char *method, size_t len);

/* The reason phrase for a status code Strangler generates itself. */
const char *http_status_reason(int status);

/*
 * Incremental chunked-body decoder (RFC 9112 7.1). Chunk extensions are
 * skipped and trailers discarded, each bounded by HTTP_CHUNK_LINE_MAX.
 */
#define HTTP_CHUNK_LINE_MAX 4096

struct http_chunked {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t line_bytes;  /* bytes in the current size/extension/trailer line */
    int digits;
};

enum http_chunk_result {
    HTTP_CHUNK_ERROR = -1,
    HTTP_CHUNK_MORE = 0, /* all input consumed, the body goes on */
    HTTP_CHUNK_DATA = 1, /* (*data, *data_len) is a span of body bytes */
    HTTP_CHUNK_DONE = 2, /* the last chunk and trailers were read */
};

void http_chunked_init(struct http_chunked *c);

/*
 * Feeds in[0..len). Sets *consumed to the bytes used. On HTTP_CHUNK_DATA,
 * (*data, *data_len) is a span inside `in` to pass on; call again with the
 * rest. On HTTP_CHUNK_DONE, bytes after *consumed belong to the next
 * message.
 */
enum http_chunk_result http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
                                         size_t *consumed, const char **data, size_t *data_len);

#endif
