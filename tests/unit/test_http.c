#include "unit.h"
#include "proxy/http.h"

#include <stdio.h>
#include <string.h>

static const struct http_limits lim = {16 * 1024, HTTP_MAX_HEADERS};

/* Parses a complete request and returns the status it is refused with, or
 * 0 when it is accepted. */
static int refusal(const char *text)
{
    struct http_request req;
    struct http_error err = {0, NULL};
    int n = http_parse_request(text, strlen(text), &lim, &req, &err);
    if (n > 0)
        return 0;
    return n == 0 ? -1 : err.status;
}

START_TEST(parses_a_post_with_headers_and_query)
{
    const char *text = "POST /RPC2?x=1 HTTP/1.1\r\nHost: legacy\r\nContent-Length: 5\r\n"
                       "X-Custom:  spaced value \t\r\n\r\nhello";
    struct http_request req;
    struct http_error err;
    int n = http_parse_request(text, strlen(text), &lim, &req, &err);
    ck_assert_int_eq(n, (int)(strlen(text) - 5));
    ck_assert_int_eq(req.method_len, 4);
    ck_assert_int_eq(memcmp(req.method, "POST", 4), 0);
    ck_assert_int_eq(req.path_len, 5);
    ck_assert_int_eq(memcmp(req.path, "/RPC2", 5), 0);
    ck_assert_int_eq(req.query_len, 3);
    ck_assert_int_eq(memcmp(req.query, "x=1", 3), 0);
    ck_assert_int_eq(req.msg.version, 11);
    ck_assert_int_eq(req.msg.framing, HTTP_FRAMING_LENGTH);
    ck_assert_uint_eq(req.msg.content_length, 5);
    ck_assert_int_eq(req.msg.keep_alive, 1);
    const struct http_header *h = http_find_header(&req.msg, "x-custom");
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->value_len, 12);
    ck_assert_int_eq(memcmp(h->value, "spaced value", 12), 0);
}
END_TEST

START_TEST(incomplete_head_asks_for_more)
{
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\nHost: x\r\n"), -1);
    ck_assert_int_eq(refusal("GET / HTT"), -1);
}
END_TEST

START_TEST(smuggling_framing_variants_are_refused)
{
    /* Content-Length and Transfer-Encoding together */
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"),
                     400);
    /* two Content-Length headers, equal or not */
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                             "Content-Length: 4\r\n\r\n"),
                     400);
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                             "Content-Length: 3\r\n\r\n"),
                     400);
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), 400);
    /* whitespace before the colon hides the header from some parsers */
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n"), 400);
    /* obfuscated or stacked Transfer-Encoding */
    ck_assert_int_eq(
        refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"),
                     501);
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n"),
                     400);
    ck_assert_int_eq(refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    /* exactly "chunked", any case, is fine */
    ck_assert_int_eq(refusal("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"),
                     0);
}
END_TEST

START_TEST(malformed_lines_are_refused)
{
    ck_assert_int_eq(refusal("GET / HTTP/1.1\nHost: x\n\n"), 400);             /* bare LF */
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n"), 400); /* mixed */
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n"), 400);
    const char nul[] = "GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n";
    struct http_request req;
    struct http_error err;
    ck_assert_int_eq(http_parse_request(nul, sizeof(nul) - 1, &lim, &req, &err), -1);
    ck_assert_int_eq(err.status, 400);
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\n\r\n"), 400); /* no Host */
    ck_assert_int_eq(refusal("GET / HTTP/1.0\r\n\r\n"), 0);   /* 1.0 needs none */
    ck_assert_int_eq(refusal("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
    ck_assert_int_eq(refusal("GET / HTTX/1.1\r\nHost: x\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"), 417);
}
END_TEST

START_TEST(targets_connect_absolute_and_asterisk)
{
    ck_assert_int_eq(refusal("CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"), 405);
    ck_assert_int_eq(refusal("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    ck_assert_int_eq(refusal("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    ck_assert_int_eq(refusal("GET example.com HTTP/1.1\r\nHost: x\r\n\r\n"), 400);

    const char *text = "GET http://elsewhere.example/api/x?y=2 HTTP/1.1\r\nHost: x\r\n\r\n";
    struct http_request req;
    struct http_error err;
    ck_assert_int_gt(http_parse_request(text, strlen(text), &lim, &req, &err), 0);
    ck_assert_int_eq(req.path_len, 6);
    ck_assert_int_eq(memcmp(req.path, "/api/x", 6), 0);
    ck_assert_int_eq(req.target_len, 10);
}
END_TEST

START_TEST(limits_give_431)
{
    char big[20000];
    memcpy(big, "GET / HTTP/1.1\r\nHost: x\r\nX: ", 28);
    memset(big + 28, 'a', sizeof(big) - 28);
    struct http_request req;
    struct http_error err;
    ck_assert_int_eq(http_parse_request(big, sizeof(big), &lim, &req, &err), -1);
    ck_assert_int_eq(err.status, 431);

    struct http_limits few = {16 * 1024, 3};
    const char *text = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    ck_assert_int_eq(http_parse_request(text, strlen(text), &few, &req, &err), -1);
    ck_assert_int_eq(err.status, 431);
}
END_TEST

START_TEST(connection_header_decides_keep_alive_and_hop_by_hop)
{
    const char *text = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\n"
                       "X-Secret: 1\r\nKeep-Alive: 5\r\nX-Kept: 2\r\n\r\n";
    struct http_request req;
    struct http_error err;
    ck_assert_int_gt(http_parse_request(text, strlen(text), &lim, &req, &err), 0);
    ck_assert_int_eq(req.msg.keep_alive, 0);
    ck_assert_int_eq(http_find_header(&req.msg, "x-secret")->hop_by_hop, 1);
    ck_assert_int_eq(http_find_header(&req.msg, "keep-alive")->hop_by_hop, 1);
    ck_assert_int_eq(http_find_header(&req.msg, "connection")->hop_by_hop, 1);
    ck_assert_int_eq(http_find_header(&req.msg, "x-kept")->hop_by_hop, 0);

    const char *old = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    ck_assert_int_gt(http_parse_request(old, strlen(old), &lim, &req, &err), 0);
    ck_assert_int_eq(req.msg.keep_alive, 1);
    const char *old_plain = "GET / HTTP/1.0\r\n\r\n";
    ck_assert_int_gt(http_parse_request(old_plain, strlen(old_plain), &lim, &req, &err), 0);
    ck_assert_int_eq(req.msg.keep_alive, 0);
}
END_TEST

START_TEST(rebase_follows_a_moved_buffer)
{
    char a[128], b[128];
    const char *text = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
    strcpy(a, text);
    struct http_request req;
    struct http_error err;
    ck_assert_int_gt(http_parse_request(a, strlen(a), &lim, &req, &err), 0);
    memcpy(b, a, sizeof(a));
    memset(a, 'Z', sizeof(a));
    http_request_rebase(&req, a, b);
    ck_assert_int_eq(memcmp(req.path, "/x", 2), 0);
    ck_assert_int_eq(memcmp(req.host, "h", 1), 0);
    ck_assert_int_eq(memcmp(http_find_header(&req.msg, "host")->value, "h", 1), 0);
}
END_TEST

START_TEST(responses_frame_by_status_method_and_headers)
{
    struct http_response r;
    struct http_error err;
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    ck_assert_int_gt(http_parse_response(ok, strlen(ok), &lim, "POST", 4, &r, &err), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.msg.framing, HTTP_FRAMING_LENGTH);
    /* HEAD: no body whatever Content-Length says */
    ck_assert_int_gt(http_parse_response(ok, strlen(ok), &lim, "HEAD", 4, &r, &err), 0);
    ck_assert_int_eq(r.msg.framing, HTTP_FRAMING_NONE);
    const char *eof = "HTTP/1.0 200 OK\r\nServer: old\r\n\r\n";
    ck_assert_int_gt(http_parse_response(eof, strlen(eof), &lim, "GET", 3, &r, &err), 0);
    ck_assert_int_eq(r.msg.framing, HTTP_FRAMING_EOF);
    ck_assert_int_eq(r.msg.keep_alive, 0);
    const char *nocontent = "HTTP/1.1 204 No Content\r\n\r\n";
    ck_assert_int_gt(http_parse_response(nocontent, strlen(nocontent), &lim, "GET", 3, &r, &err),
                     0);
    ck_assert_int_eq(r.msg.framing, HTTP_FRAMING_NONE);
    const char *noreason = "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
    ck_assert_int_gt(http_parse_response(noreason, strlen(noreason), &lim, "GET", 3, &r, &err), 0);
    const char *bad = "HTTP/1.1 2x0 OK\r\n\r\n";
    ck_assert_int_eq(http_parse_response(bad, strlen(bad), &lim, "GET", 3, &r, &err), -1);
    ck_assert_int_eq(err.status, 502);
}
END_TEST

/* Feeds a chunked body as if it arrived `step` bytes at a time and returns
 * the decoded data (and in *rest the bytes left after it), or NULL when the
 * decoder refuses it or it never ends. */
static char *dechunk(const char *in, size_t step, size_t *rest)
{
    static char out[1024];
    struct http_chunked c;
    size_t len = strlen(in), received = 0, pos = 0, o = 0;
    http_chunked_init(&c);
    for (;;) {
        if (pos == received) {
            if (received == len)
                return NULL;
            received = received + step < len ? received + step : len;
        }
        size_t used, data_len;
        const char *data;
        enum http_chunk_result r =
            http_chunked_feed(&c, in + pos, received - pos, &used, &data, &data_len);
        pos += used;
        if (r == HTTP_CHUNK_ERROR)
            return NULL;
        if (r == HTTP_CHUNK_DATA) {
            memcpy(out + o, data, data_len);
            o += data_len;
        } else if (r == HTTP_CHUNK_DONE) {
            out[o] = '\0';
            *rest = len - pos;
            return out;
        }
    }
}

START_TEST(chunked_bodies_decode_in_any_split)
{
    const char *body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    for (size_t step = 1; step <= strlen(body); step++) {
        size_t rest = 0;
        char *out = dechunk(body, step, &rest);
        ck_assert_ptr_nonnull(out);
        ck_assert_str_eq(out, "hello, world");
        ck_assert_uint_eq(rest, 4);
    }
}
END_TEST

START_TEST(chunk_size_tricks_are_refused)
{
    size_t rest;
    ck_assert_ptr_null(dechunk("0x5\r\nhello\r\n0\r\n\r\n", 64, &rest));
    ck_assert_ptr_null(dechunk("-0\r\n\r\n", 64, &rest));
    ck_assert_ptr_null(dechunk("5\nhello\r\n0\r\n\r\n", 64, &rest)); /* bare LF */
    ck_assert_ptr_null(dechunk("5\r\nhelloXX0\r\n\r\n", 64, &rest)); /* no CRLF after data */
    ck_assert_ptr_null(dechunk("ffffffffffffffff1\r\n", 64, &rest)); /* overflow */
    ck_assert_ptr_null(dechunk(" 5\r\nhello\r\n0\r\n\r\n", 64, &rest));
    /* After the size, blanks may only lead to an extension (BWS ";"). */
    ck_assert_ptr_null(dechunk("5 5\r\nhello\r\n0\r\n\r\n", 64, &rest));
    ck_assert_ptr_null(dechunk("5 junk\r\nhello\r\n0\r\n\r\n", 64, &rest));
    ck_assert_ptr_nonnull(dechunk("5 \t ;a=b\r\nhello\r\n0\r\n\r\n", 1, &rest));
    ck_assert_ptr_nonnull(dechunk("5 \r\nhello\r\n0\r\n\r\n", 64, &rest));
    ck_assert_ptr_nonnull(dechunk("00005\r\nhello\r\n0\r\n\r\n", 64, &rest));
}
END_TEST

/* Every header gets the id of the name the proxy acts on, whatever its
 * case, and no other name gets one. */
START_TEST(headers_are_known_by_id_whatever_their_case)
{
    static const struct {
        const char *name;
        enum http_header_id id;
    } cases[] = {
        {"Connection", HTTP_H_CONNECTION},
        {"KEEP-ALIVE", HTTP_H_KEEP_ALIVE},
        {"proxy-connection", HTTP_H_PROXY_CONNECTION},
        {"TE", HTTP_H_TE},
        {"Trailer", HTTP_H_TRAILER},
        {"transfer-encoding", HTTP_H_TRANSFER_ENCODING},
        {"Upgrade", HTTP_H_UPGRADE},
        {"content-LENGTH", HTTP_H_CONTENT_LENGTH},
        {"X-Request-Id", HTTP_H_X_REQUEST_ID},
        {"x-forwarded-for", HTTP_H_X_FORWARDED_FOR},
        {"Accept-Encoding", HTTP_H_ACCEPT_ENCODING},
        {"X-Strangler-Shadow", HTTP_H_X_STRANGLER_SHADOW},
        {"Expect", HTTP_H_EXPECT},
        {"Content-Type", HTTP_H_OTHER},
        {"X-Request-Ids", HTTP_H_OTHER},
        {"Hos", HTTP_H_OTHER},
        {"T", HTTP_H_OTHER},
        {"Tea", HTTP_H_OTHER},
        {"xylophone", HTTP_H_OTHER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "GET / HTTP/1.1\r\nHost: a\r\n%s: 1\r\n\r\n", cases[i].name);
        struct http_request req;
        struct http_error err;
        if (cases[i].id == HTTP_H_EXPECT)
            snprintf(text, sizeof(text),
                     "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
        if (cases[i].id == HTTP_H_TRANSFER_ENCODING)
            snprintf(text, sizeof(text),
                     "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n");
        if (cases[i].id == HTTP_H_CONTENT_LENGTH)
            snprintf(text, sizeof(text), "POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 0\r\n\r\n");
        ck_assert_msg(http_parse_request(text, strlen(text), &lim, &req, &err) > 0, "%s: %s",
                      cases[i].name, err.reason);
        ck_assert_uint_eq(req.msg.nheaders, 2);
        ck_assert_uint_eq(req.msg.headers[0].id, HTTP_H_HOST);
        ck_assert_msg(req.msg.headers[1].id == cases[i].id, "%s: id %u", cases[i].name,
                      (unsigned)req.msg.headers[1].id);
        /* The fixed hop-by-hop set, and nothing else, is hop-by-hop. */
        int hop = cases[i].id >= HTTP_H_CONNECTION && cases[i].id <= HTTP_H_UPGRADE;
        ck_assert_int_eq(req.msg.headers[1].hop_by_hop, hop);
    }
}
END_TEST

Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, parses_a_post_with_headers_and_query);
    tcase_add_test(tc, incomplete_head_asks_for_more);
    tcase_add_test(tc, smuggling_framing_variants_are_refused);
    tcase_add_test(tc, malformed_lines_are_refused);
    tcase_add_test(tc, targets_connect_absolute_and_asterisk);
    tcase_add_test(tc, limits_give_431);
    tcase_add_test(tc, connection_header_decides_keep_alive_and_hop_by_hop);
    tcase_add_test(tc, rebase_follows_a_moved_buffer);
    tcase_add_test(tc, headers_are_known_by_id_whatever_their_case);
    tcase_add_test(tc, responses_frame_by_status_method_and_headers);
    tcase_add_test(tc, chunked_bodies_decode_in_any_split);
    tcase_add_test(tc, chunk_size_tricks_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
