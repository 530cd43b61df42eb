#include "proxy/http.h"

#include <string.h>

/* tchar of RFC 9110 5.6.2: the characters allowed in methods and header
 * names. Table-driven because it is on every byte of every header name. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

#define FAIL(e, code, text)                                                                        \
    do {                                                                                           \
        (e)->status = (code);                                                                      \
        (e)->reason = (text);                                                                      \
        return -1;                                                                                 \
    } while (0)

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int case_eq(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int http_is_token_char(unsigned char c)
{
    return tchar[c];
}

int http_token_eq(const char *a, size_t a_len, const char *b)
{
    size_t b_len = strlen(b);
    return a_len == b_len && case_eq(a, b, a_len);
}

/*
 * Finds the blank line that ends a head. Returns the head length, 0 if it is
 * not there yet, -1 for a bare LF: RFC 9112 2.2 lets a recipient accept one,
 * but a proxy that does while the server behind it does not can be smuggled
 * past, so it is refused.
 */
static long find_head_end(const char *buf, size_t len)
{
    size_t line_start = 0;
    const char *p = buf;
    const char *end = buf + len;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t at = (size_t)(p - buf);
        if (at == 0 || buf[at - 1] != '\r')
            return -1;
        if (at - line_start == 1) /* the line was just "\r\n" */
            return (long)(at + 1);
        line_start = at + 1;
        p++;
    }
    return 0;
}

/* Splits off the next CRLF-terminated line of a head that find_head_end()
 * accepted, so an LF is there and a CR is before it. */
static const char *memline(const char **cursor, const char *end, size_t *line_len)
{
    const char *line = *cursor;
    const char *lf = memchr(line, '\n', (size_t)(end - line));
    *line_len = (size_t)(lf - 1 - line);
    *cursor = lf + 1;
    return line;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Field value characters: VCHAR, obs-text, SP and HTAB (RFC 9110 5.5). A NUL
 * or CR inside a value is how header injection starts. */
static int value_char_ok(unsigned char c)
{
    return c >= 0x20 ? c != 0x7f : c == '\t';
}

static int parse_decimal(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 18) /* 18 digits cannot overflow, and is an exabyte */
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* The names of enum http_header_id, lower case, by id. */
#define KNOWN(id, name) [id] = {name, sizeof(name) - 1}
static const struct {
    const char *name;
    size_t len;
} known_names[] = {
    KNOWN(HTTP_H_CONNECTION, "connection"),
    KNOWN(HTTP_H_KEEP_ALIVE, "keep-alive"),
    KNOWN(HTTP_H_PROXY_CONNECTION, "proxy-connection"),
    KNOWN(HTTP_H_TE, "te"),
    KNOWN(HTTP_H_TRAILER, "trailer"),
    KNOWN(HTTP_H_TRANSFER_ENCODING, "transfer-encoding"),
    KNOWN(HTTP_H_UPGRADE, "upgrade"),
    KNOWN(HTTP_H_CONTENT_LENGTH, "content-length"),
    KNOWN(HTTP_H_HOST, "host"),
    KNOWN(HTTP_H_EXPECT, "expect"),
    KNOWN(HTTP_H_X_REQUEST_ID, "x-request-id"),
    KNOWN(HTTP_H_X_FORWARDED_FOR, "x-forwarded-for"),
    KNOWN(HTTP_H_ACCEPT_ENCODING, "accept-encoding"),
    KNOWN(HTTP_H_X_STRANGLER_SHADOW, "x-strangler-shadow"),
};
#define NKNOWN (sizeof(known_names) / sizeof(known_names[0]))

static int is_known(const char *name, size_t len, enum http_header_id id)
{
    return known_names[id].len == len && case_eq(name, known_names[id].name, len);
}

/* The id of a header name. The first letter leaves at most three
 * candidates, and their lengths usually rule out all but one before a
 * comparison. */
static enum http_header_id header_id(const char *name, size_t len)
{
    static const enum http_header_id none[] = {HTTP_H_OTHER};
    static const enum http_header_id a[] = {HTTP_H_ACCEPT_ENCODING, HTTP_H_OTHER};
    static const enum http_header_id c[] = {HTTP_H_CONNECTION, HTTP_H_CONTENT_LENGTH, HTTP_H_OTHER};
    static const enum http_header_id e[] = {HTTP_H_EXPECT, HTTP_H_OTHER};
    static const enum http_header_id h[] = {HTTP_H_HOST, HTTP_H_OTHER};
    static const enum http_header_id k[] = {HTTP_H_KEEP_ALIVE, HTTP_H_OTHER};
    static const enum http_header_id pr[] = {HTTP_H_PROXY_CONNECTION, HTTP_H_OTHER};
    static const enum http_header_id t[] = {HTTP_H_TE, HTTP_H_TRAILER, HTTP_H_TRANSFER_ENCODING,
                                            HTTP_H_OTHER};
    static const enum http_header_id u[] = {HTTP_H_UPGRADE, HTTP_H_OTHER};
    static const enum http_header_id x[] = {HTTP_H_X_REQUEST_ID, HTTP_H_X_FORWARDED_FOR,
                                            HTTP_H_X_STRANGLER_SHADOW, HTTP_H_OTHER};
    const enum http_header_id *candidates = none;
    switch (lower((unsigned char)name[0])) {
    case 'a':
        candidates = a;
        break;
    case 'c':
        candidates = c;
        break;
    case 'e':
        candidates = e;
        break;
    case 'h':
        candidates = h;
        break;
    case 'k':
        candidates = k;
        break;
    case 'p':
        candidates = pr;
        break;
    case 't':
        candidates = t;
        break;
    case 'u':
        candidates = u;
        break;
    case 'x':
        candidates = x;
        break;
    }
    for (; *candidates != HTTP_H_OTHER; candidates++)
        if (is_known(name, len, *candidates))
            return *candidates;
    return HTTP_H_OTHER;
}

/* Marks hop-by-hop headers: the fixed set, plus every header the Connection
 * header names (RFC 9110 7.6.1). */
static int in_fixed_hop_set(const struct http_header *h)
{
    return h->id >= HTTP_H_CONNECTION && h->id <= HTTP_H_UPGRADE;
}

/* Headers a Connection header may not strip: the proxy re-writes them
 * itself, and a client naming them must not make a request leave without
 * its Host or framing. */
static int never_hop_by_hop(const struct http_header *h)
{
    return h->id == HTTP_H_HOST || h->id == HTTP_H_CONTENT_LENGTH || h->id == HTTP_H_X_REQUEST_ID;
}

/* Reads one Connection header: marks the headers it names, and notes the
 * close and keep-alive options in *close and *keep. */
static void read_connection(struct http_message *m, const struct http_header *conn, int *close,
                            int *keep)
{
    const char *p = conn->value, *end = conn->value + conn->value_len;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        const char *tok = p;
        while (p < end && *p != ',' && !is_ows(*p))
            p++;
        size_t tok_len = (size_t)(p - tok);
        if (tok_len == 0)
            continue;
        if (http_token_eq(tok, tok_len, "close"))
            *close = 1;
        else if (http_token_eq(tok, tok_len, "keep-alive"))
            *keep = 1;
        for (size_t i = 0; i < m->nheaders; i++) {
            struct http_header *h = &m->headers[i];
            if (h->name_len == tok_len && case_eq(h->name, tok, tok_len) && !never_hop_by_hop(h))
                h->hop_by_hop = 1;
        }
    }
}

/* Persistence (RFC 9112 9.3): "close" always wins; HTTP/1.1 is persistent
 * by default, HTTP/1.0 only with "keep-alive". */
static void decide_keep_alive(struct http_message *m)
{
    int close = 0, keep = 0;
    for (size_t i = 0; i < m->nheaders; i++)
        if (m->headers[i].id == HTTP_H_CONNECTION)
            read_connection(m, &m->headers[i], &close, &keep);
    m->keep_alive = !close && (m->version >= 11 || keep);
}

/*
 * Parses the header lines between `p` and `end` (the final empty line
 * excluded) into m, and derives the framing. `is_request` selects the rules
 * that differ: a request's TE must be exactly chunked and HTTP/1.1 needs a
 * Host.
 */
static int parse_headers(const char *p, const char *end, const struct http_limits *lim,
                         struct http_message *m, int is_request, struct http_error *err)
{
    const struct http_header *content_length = NULL, *transfer_encoding = NULL;
    size_t max_headers = lim->max_headers && lim->max_headers < HTTP_MAX_HEADERS ? lim->max_headers
                                                                                 : HTTP_MAX_HEADERS;

    m->nheaders = 0;
    while (p < end) {
        size_t len;
        const char *line = memline(&p, end, &len);
        if (len == 0)
            break;
        if (is_ows(line[0]))
            FAIL(err, 400, "obsolete line folding in header");
        size_t n = 0;
        while (n < len && tchar[(unsigned char)line[n]])
            n++;
        if (n == len || line[n] != ':')
            FAIL(err, 400, n == len ? "header line without a colon" : "invalid header name");
        if (n == 0)
            FAIL(err, 400, "empty header name");
        size_t v = n + 1, vend = len;
        while (v < vend && is_ows(line[v]))
            v++;
        while (vend > v && is_ows(line[vend - 1]))
            vend--;
        for (size_t i = v; i < vend; i++)
            if (!value_char_ok((unsigned char)line[i]))
                FAIL(err, 400, "control character in header value");
        if (m->nheaders == max_headers)
            FAIL(err, 431, "too many header fields");

        struct http_header *h = &m->headers[m->nheaders++];
        h->name = line;
        h->name_len = (uint32_t)n;
        h->value = line + v;
        h->value_len = (uint32_t)(vend - v);
        h->id = header_id(line, n);
        h->hop_by_hop = (unsigned)in_fixed_hop_set(h);

        if (h->id == HTTP_H_CONTENT_LENGTH) {
            if (content_length != NULL)
                FAIL(err, 400, "more than one Content-Length");
            content_length = h;
        } else if (h->id == HTTP_H_TRANSFER_ENCODING) {
            if (transfer_encoding != NULL)
                FAIL(err, 400, "more than one Transfer-Encoding");
            transfer_encoding = h;
        }
    }

    decide_keep_alive(m);

    m->framing = HTTP_FRAMING_NONE;
    m->content_length = 0;
    if (transfer_encoding != NULL) {
        if (content_length != NULL)
            FAIL(err, 400, "both Content-Length and Transfer-Encoding");
        if (m->version < 11)
            FAIL(err, 400, "Transfer-Encoding in an HTTP/1.0 message");
        if (!http_token_eq(transfer_encoding->value, transfer_encoding->value_len, "chunked"))
            FAIL(err, is_request ? 501 : 502, "unsupported Transfer-Encoding");
        m->framing = HTTP_FRAMING_CHUNKED;
    } else if (content_length != NULL) {
        if (parse_decimal(content_length->value, content_length->value_len, &m->content_length))
            FAIL(err, 400, "invalid Content-Length");
        m->framing = HTTP_FRAMING_LENGTH;
    }
    return 0;
}

static int parse_version(const char *s, size_t len, int *version)
{
    if (len != 8 || memcmp(s, "HTTP/", 5) != 0 || s[6] != '.')
        return -1;
    if (s[5] == '1' && (s[7] == '0' || s[7] == '1')) {
        *version = 10 + (s[7] - '0');
        return 0;
    }
    return s[5] >= '0' && s[5] <= '9' && s[7] >= '0' && s[7] <= '9' ? 1 : -1;
}

/* Reduces an absolute-form target (http://host/path) to its path, which is
 * all an origin server behind us should see. The authority is ignored: the
 * route, not the client, decides where a request goes, so this can never
 * turn the proxy into an open proxy. */
static int reduce_absolute_form(struct http_request *req)
{
    static const char slash[] = "/";
    const char *t = req->target;
    size_t len = req->target_len, skip;

    if (len > 7 && http_token_eq(t, 7, "http://"))
        skip = 7;
    else if (len > 8 && http_token_eq(t, 8, "https://"))
        skip = 8;
    else
        return -1;
    const char *path = memchr(t + skip, '/', len - skip);
    const char *query = memchr(t + skip, '?', len - skip);
    if (path == NULL || (query != NULL && query < path)) {
        /* No path: the origin-form is "/" (plus the query, dropped here as
         * it cannot be expressed without a path in the buffer). */
        req->target = slash;
        req->target_len = 1;
        return 0;
    }
    req->target = path;
    req->target_len = (uint32_t)(len - (size_t)(path - t));
    return 0;
}

static void split_query(struct http_request *req)
{
    const char *q = memchr(req->target, '?', req->target_len);
    req->path = req->target;
    if (q == NULL) {
        req->path_len = req->target_len;
        req->query = NULL;
        req->query_len = 0;
        return;
    }
    req->path_len = (uint32_t)(q - req->target);
    req->query = q + 1;
    req->query_len = (uint32_t)(req->target_len - req->path_len - 1);
}

static int parse_request_line(const char *line, size_t len, struct http_request *req,
                              struct http_error *err)
{
    size_t m = 0;
    while (m < len && tchar[(unsigned char)line[m]])
        m++;
    if (m == 0 || m > 32 || m == len || line[m] != ' ')
        FAIL(err, 400, "malformed request line");
    const char *target = line + m + 1;
    const char *sp = memchr(target, ' ', len - m - 1);
    if (sp == NULL || sp == target)
        FAIL(err, 400, "malformed request line");
    for (const char *c = target; c < sp; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            FAIL(err, 400, "invalid character in request target");
    int v = parse_version(sp + 1, (size_t)(line + len - sp - 1), &req->msg.version);
    if (v < 0)
        FAIL(err, 400, "malformed request line");
    if (v > 0)
        FAIL(err, 505, "HTTP version not supported");

    req->method = line;
    req->method_len = (uint32_t)m;
    req->target = target;
    req->target_len = (uint32_t)(sp - target);

    if (http_token_eq(req->method, m, "CONNECT"))
        FAIL(err, 405, "CONNECT is not served: this is a reverse proxy");
    if (req->target[0] == '*' && req->target_len == 1) {
        if (!http_token_eq(req->method, m, "OPTIONS"))
            FAIL(err, 400, "asterisk target outside OPTIONS");
    } else if (req->target[0] != '/' && reduce_absolute_form(req) != 0) {
        FAIL(err, 400, "request target is neither a path nor an absolute http URI");
    }
    split_query(req);
    return 0;
}

static int check_request_headers(struct http_request *req, struct http_error *err)
{
    const struct http_header *host = NULL;
    req->expect_continue = 0;
    for (size_t i = 0; i < req->msg.nheaders; i++) {
        const struct http_header *h = &req->msg.headers[i];
        if (h->id == HTTP_H_HOST) {
            if (host != NULL)
                FAIL(err, 400, "more than one Host");
            host = h;
        } else if (h->id == HTTP_H_EXPECT) {
            if (!http_token_eq(h->value, h->value_len, "100-continue"))
                FAIL(err, 417, "unsupported expectation");
            req->expect_continue = req->msg.version >= 11;
        }
    }
    if (host == NULL && req->msg.version >= 11)
        FAIL(err, 400, "HTTP/1.1 request without Host");
    req->host = host ? host->value : NULL;
    req->host_len = host ? host->value_len : 0;
    return 0;
}

static long locate_head(const char *buf, size_t len, size_t max, struct http_error *err)
{
    long end = find_head_end(buf, len);
    if (end < 0)
        FAIL(err, 400, "bare LF line ending");
    if (end == 0 && len > max)
        FAIL(err, 431, "request header fields too large");
    if ((size_t)end > max)
        FAIL(err, 431, "request header fields too large");
    return end;
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                       struct http_request *req, struct http_error *err)
{
    size_t skip = 0;
    /* RFC 9112 2.2: ignore empty lines before the request line (some
     * clients send a CRLF after a POST body). They count against the head
     * limit, or a client could stream them forever. */
    while (skip + 1 < len && buf[skip] == '\r' && buf[skip + 1] == '\n')
        skip += 2;
    if (skip >= lim->max_head_bytes)
        FAIL(err, 431, "request header fields too large");

    long end = locate_head(buf + skip, len - skip, lim->max_head_bytes - skip, err);
    if (end <= 0)
        return (int)end;

    const char *cursor = buf + skip, *head_end = buf + skip + end;
    size_t line_len;
    const char *line = memline(&cursor, head_end, &line_len);
    if (parse_request_line(line, line_len, req, err) != 0)
        return -1;
    if (parse_headers(cursor, head_end, lim, &req->msg, 1, err) != 0)
        return -1;
    if (check_request_headers(req, err) != 0)
        return -1;
    req->msg.head_len = skip + (size_t)end;
    return (int)req->msg.head_len;
}

int http_parse_response(const char *buf, size_t len, const struct http_limits *lim,
                        const char *request_method, size_t request_method_len,
                        struct http_response *resp, struct http_error *err)
{
    long end = find_head_end(buf, len);
    if (end < 0)
        FAIL(err, 502, "bare LF in upstream response");
    if (end == 0)
        return len > lim->max_head_bytes
                   ? (err->status = 502, err->reason = "upstream response head too large", -1)
                   : 0;
    if ((size_t)end > lim->max_head_bytes)
        FAIL(err, 502, "upstream response head too large");

    const char *cursor = buf, *head_end = buf + end;
    size_t line_len;
    const char *line = memline(&cursor, head_end, &line_len);
    /* status-line = HTTP-version SP status-code SP [ reason-phrase ] */
    if (line_len < 12 || parse_version(line, 8, &resp->msg.version) != 0 || line[8] != ' ')
        FAIL(err, 502, "malformed upstream status line");
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            FAIL(err, 502, "malformed upstream status line");
        status = status * 10 + (line[i] - '0');
    }
    if (status < 100 || (line_len > 12 && line[12] != ' '))
        FAIL(err, 502, "malformed upstream status line");
    resp->status = status;
    resp->reason = line_len > 13 ? line + 13 : "";
    resp->reason_len = line_len > 13 ? (uint32_t)(line_len - 13) : 0;
    for (uint32_t i = 0; i < resp->reason_len; i++)
        if (!value_char_ok((unsigned char)resp->reason[i]))
            FAIL(err, 502, "control character in upstream reason phrase");

    if (parse_headers(cursor, head_end, lim, &resp->msg, 0, err) != 0) {
        err->status = 502;
        return -1;
    }
    /* RFC 9112 6.3: no body after HEAD, 1xx, 204 and 304, whatever the
     * headers say. Otherwise a response without framing runs to EOF. */
    if (http_token_eq(request_method, request_method_len, "HEAD") || status < 200 ||
        status == 204 || status == 304) {
        resp->msg.framing = HTTP_FRAMING_NONE;
    } else if (resp->msg.framing == HTTP_FRAMING_NONE) {
        resp->msg.framing = HTTP_FRAMING_EOF;
        resp->msg.keep_alive = 0;
    }
    resp->msg.head_len = (size_t)end;
    return (int)end;
}

static void rebase_ptr(const char **p, const char *old_base, const char *new_base, size_t span)
{
    if (*p != NULL && *p >= old_base && *p <= old_base + span)
        *p = new_base + (*p - old_base);
}

void http_request_rebase(struct http_request *req, const char *old_base, const char *new_base)
{
    /* Pointers that do not point into the old buffer (the static "/" of a
     * reduced absolute-form) stay as they are. */
    size_t span = req->msg.head_len;
    rebase_ptr(&req->method, old_base, new_base, span);
    rebase_ptr(&req->target, old_base, new_base, span);
    rebase_ptr(&req->path, old_base, new_base, span);
    rebase_ptr(&req->query, old_base, new_base, span);
    rebase_ptr(&req->host, old_base, new_base, span);
    for (size_t i = 0; i < req->msg.nheaders; i++) {
        rebase_ptr(&req->msg.headers[i].name, old_base, new_base, span);
        rebase_ptr(&req->msg.headers[i].value, old_base, new_base, span);
    }
}

const struct http_header *http_find_header(const struct http_message *m, const char *name)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (http_token_eq(m->headers[i].name, m->headers[i].name_len, name))
            return &m->headers[i];
    return NULL;
}

int http_method_idempotent(const char *method, size_t len)
{
    static const char *const idempotent[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < sizeof(idempotent) / sizeof(idempotent[0]); i++)
        if (len == strlen(idempotent[i]) && memcmp(method, idempotent[i], len) == 0)
            return 1;
    return 0;
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

/* Chunked decoding states. */
enum {
    CH_SIZE = 0,   /* hex digits of the chunk size */
    CH_SIZE_BLANK, /* blanks after the size: only more blanks, ';' or CR may follow */
    CH_EXT,        /* chunk extension, skipped */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START, /* start of a trailer line or of the final CRLF */
    CH_TRAILER,       /* inside a trailer line, skipped */
    CH_TRAILER_LF,
    CH_FINAL_LF,
    CH_DONE,
};

void http_chunked_init(struct http_chunked *c)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* One byte of the size line. Returns 0, or -1 when it is malformed. */
static int chunk_size_byte(struct http_chunked *c, char ch)
{
    int h = hex_value(ch);
    if (h >= 0) {
        /* 15 hex digits are 2^60 bytes; more can only be an overflow
         * attempt ("chunk-size overflow" smuggling). */
        if (++c->digits > 15)
            return -1;
        c->remaining = (c->remaining << 4) | (uint64_t)h;
        return 0;
    }
    if (c->digits == 0)
        return -1; /* "-0", "0x1", " 1": a size must start with a hex digit */
    if (ch == '\r')
        c->state = CH_SIZE_LF;
    else if (ch == ';')
        c->state = CH_EXT;
    else if (ch == ' ' || ch == '\t')
        c->state = CH_SIZE_BLANK;
    else
        return -1;
    return 0;
}

/* After "5 ": RFC 9112 7.1.1 allows blanks before a ';' (BWS), nothing
 * else: "5 5" or "5 junk" read as 5 would let a parser that reads them
 * otherwise see another body. */
static int chunk_blank_byte(struct http_chunked *c, char ch)
{
    if (ch == ' ' || ch == '\t')
        return ++c->line_bytes > HTTP_CHUNK_LINE_MAX ? -1 : 0;
    if (ch == ';')
        c->state = CH_EXT;
    else if (ch == '\r')
        c->state = CH_SIZE_LF;
    else
        return -1;
    return 0;
}

enum http_chunk_result http_chunked_feed(struct http_chunked *c, const char *in, size_t len,
                                         size_t *consumed, const char **data, size_t *data_len)
{
    size_t i = 0;
    while (i < len) {
        char ch = in[i];
        switch (c->state) {
        case CH_SIZE:
            if (chunk_size_byte(c, ch) != 0)
                goto fail;
            i++;
            break;
        case CH_SIZE_BLANK:
            if (chunk_blank_byte(c, ch) != 0)
                goto fail;
            i++;
            break;
        case CH_EXT:
        case CH_TRAILER:
            if (ch == '\n' || ++c->line_bytes > HTTP_CHUNK_LINE_MAX)
                goto fail;
            if (ch == '\r')
                c->state = c->state == CH_EXT ? CH_SIZE_LF : CH_TRAILER_LF;
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                goto fail;
            i++;
            c->line_bytes = 0;
            c->state = c->remaining == 0 ? CH_TRAILER_START : CH_DATA;
            break;
        case CH_DATA: {
            size_t avail = len - i;
            size_t take = c->remaining < avail ? (size_t)c->remaining : avail;
            *data = in + i;
            *data_len = take;
            c->remaining -= take;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            *consumed = i + take;
            return HTTP_CHUNK_DATA;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                goto fail;
            c->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                goto fail;
            c->state = CH_SIZE;
            c->digits = 0;
            c->remaining = 0;
            i++;
            break;
        case CH_TRAILER_START:
            c->state = ch == '\r' ? CH_FINAL_LF : CH_TRAILER;
            if (ch == '\n')
                goto fail;
            if (c->state == CH_TRAILER)
                c->line_bytes++;
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                goto fail;
            c->state = CH_TRAILER_START;
            i++;
            break;
        case CH_FINAL_LF:
            if (ch != '\n')
                goto fail;
            c->state = CH_DONE;
            *consumed = i + 1;
            return HTTP_CHUNK_DONE;
        default:
            goto fail;
        }
    }
    *consumed = i;
    return HTTP_CHUNK_MORE;

fail:
    *consumed = i;
    return HTTP_CHUNK_ERROR;
}
