/*
 * fuzz_xmlrpc_response: the bytes as an XML-RPC answer from an upstream.
 *
 * Checks, on every input:
 *   - xr_parse_response() and its libxml2-only and scanner-only variants
 *     agree as in fuzz_xmlrpc_call.c (same verdict, code, message and
 *     answer; the scanner accepts only what libxml2 reads the same way);
 *   - xr_write_response() of what was read parses back to the same answer;
 *   - xr_sniff_response() is stable as bytes arrive: once a prefix gives
 *     FAULT or NOT_FAULT, every longer prefix and the whole body give the
 *     same, and a faultCode read from a prefix is the one read from the
 *     whole;
 *   - the sniff never calls a fault what the parser reads as a result,
 *     unless the <methodResponse> start tag has attributes (the sniff skips
 *     to the first '>', which may sit inside an attribute value, so there
 *     the invariant does not hold and is not checked). The other way round
 *     (a fault the sniff misses, e.g. <ex:methodResponse>) is allowed: the
 *     sniff is for figures, xmlrpc.h.
 *   - xr_peek_method_name() on the same bytes stays inside them.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"

#include <stddef.h>
#include <stdint.h>

#define FAST_PATH_DECLINED "the fast path declined the body"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    xr_init();
    return 0;
}

/* The sniff of the first n bytes; checks what the sniff promises alone. */
static enum xr_sniff sniff(const char *body, size_t n, int64_t *code, int *known)
{
    enum xr_sniff s = xr_sniff_response(body, n, code, known);
    FUZZ_CHECK(s == XR_SNIFF_NOT_FAULT || s == XR_SNIFF_FAULT || s == XR_SNIFF_MORE, "sniff %d",
               (int)s);
    FUZZ_CHECK(s == XR_SNIFF_FAULT || *known == 0, "a code known without a fault");
    return s;
}

static void check_sniff_prefixes(const char *body, size_t size, enum xr_sniff whole,
                                 int64_t whole_code, int whole_known)
{
    /* Every short prefix, then a few longer ones: a streamed answer is
     * sniffed at whatever cut the network made. */
    size_t cuts[80], ncuts = 0;
    for (size_t n = 0; n < size && n < 64; n++)
        cuts[ncuts++] = n;
    for (size_t k = 1; k < 16 && size > 64; k++)
        cuts[ncuts++] = 64 + (size - 64) * k / 16;
    for (size_t i = 0; i < ncuts; i++) {
        int64_t code;
        int known;
        enum xr_sniff s = sniff(body, cuts[i], &code, &known);
        if (s == XR_SNIFF_MORE)
            continue;
        FUZZ_CHECK(s == whole, "prefix of %zu bytes sniffs %d, the whole %d", cuts[i], (int)s,
                   (int)whole);
        if (known)
            FUZZ_CHECK(whole_known && code == whole_code,
                       "prefix of %zu bytes reads code %lld, the whole %d/%lld", cuts[i],
                       (long long)code, whole_known, (long long)whole_code);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct arena *a = arena_new(0);
    struct xr_limits lim = {0};
    struct xr_response full = {0}, slow = {0}, fast = {0}, again = {0};
    struct xr_error efull = {0}, eslow = {0}, efast = {0}, eagain = {0};
    struct buf out = BUF_INIT;

    int rfull = xr_parse_response(a, body, size, &lim, &full, &efull);
    int rslow = xr_parse_response_flags(a, body, size, &lim, XR_PARSE_NO_FAST_PATH, &slow, &eslow);
    int rfast =
        xr_parse_response_flags(a, body, size, &lim, XR_PARSE_FAST_PATH_ONLY, &fast, &efast);

    FUZZ_CHECK(rfull == rslow, "entry point %d, libxml2 alone %d (%s / %s)", rfull, rslow,
               rfull ? efull.message : "ok", rslow ? eslow.message : "ok");
    if (rfull != 0) {
        FUZZ_CHECK(efull.code == eslow.code, "codes %d vs %d", efull.code, eslow.code);
        FUZZ_CHECK(strcmp(efull.message, eslow.message) == 0, "'%s' vs '%s'", efull.message,
                   eslow.message);
    } else {
        FUZZ_CHECK(fuzz_same_response(&full, &slow), "answer differs from libxml2's");
    }
    if (rfast == 0) {
        FUZZ_CHECK(rslow == 0, "the scanner accepted what libxml2 refuses: %s", eslow.message);
        FUZZ_CHECK(fuzz_same_response(&fast, &slow), "scanner's answer differs");
    } else {
        /* Either the scanner declined, or the document was read and
         * what it says was refused after parsing (a fault struct without
         * faultString), just as libxml2's reading of it is. */
        int declined =
            efast.code == XR_FAULT_INTERNAL && strcmp(efast.message, FAST_PATH_DECLINED) == 0;
        int same_error =
            rslow != 0 && efast.code == eslow.code && strcmp(efast.message, eslow.message) == 0;
        FUZZ_CHECK(declined || same_error, "the scanner failed with %d '%s' (libxml2: %s)",
                   efast.code, efast.message, rslow ? eslow.message : "ok");
    }

    int64_t code;
    int known;
    enum xr_sniff s = sniff(body, size, &code, &known);
    check_sniff_prefixes(body, size, s, code, known);
    if (rfull == 0 && !full.is_fault && s == XR_SNIFF_FAULT) {
        /* '=' between the root's name and <fault: attributes (or a
         * comment that holds one), where the check does not apply. */
        const char *m = memmem(body, size, "<methodResponse", 15);
        const char *f = m ? memmem(m, size - (size_t)(m - body), "<fault", 6) : NULL;
        int attributes = f == NULL || memchr(m, '=', (size_t)(f - m)) != NULL;
        FUZZ_CHECK(attributes, "the sniff says fault, the parser reads a result");
    }

    const char *peek = NULL;
    size_t peek_len = 0;
    if (xr_peek_method_name(body, size, &peek, &peek_len) == 1)
        FUZZ_CHECK(peek >= body && peek + peek_len <= body + size, "peek outside the body");

    if (rfull == 0) {
        struct xr_limits deep = {1024, 0};
        xr_write_response(&out, &full);
        int r = xr_parse_response(a, out.data, out.len, &deep, &again, &eagain);
        FUZZ_CHECK(r == 0, "written answer does not parse: %s\n%.*s", eagain.message, (int)out.len,
                   out.data);
        FUZZ_CHECK(fuzz_same_response(&full, &again), "answer changes when written");
    }

    buf_dispose(&out);
    arena_free(a);
    return 0;
}
