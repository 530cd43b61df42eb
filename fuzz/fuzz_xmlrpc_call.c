/*
 * fuzz_xmlrpc_call: the bytes as the body of an XML-RPC call.
 *
 * Checks, on every input:
 *   - xr_parse_call() in full, with XR_PARSE_METHOD_ONLY, with libxml2 alone
 *     (XR_PARSE_NO_FAST_PATH) and with the scanner alone
 *     (XR_PARSE_FAST_PATH_ONLY) never crash and never leak;
 *   - the entry point and libxml2 alone agree: same verdict, same fault
 *     code and message, same method and parameters (xmlrpc.h: "the results,
 *     error codes and messages are libxml2's either way");
 *   - what the scanner accepts, libxml2 accepts too, as the same call
 *     (xrscan.h); when it does not accept, it declines, with
 *     XR_FAULT_INTERNAL;
 *   - a call read in full is read by XR_PARSE_METHOD_ONLY too, with the
 *     same method name;
 *   - xr_write_call() of what was read parses back to the same call;
 *   - xr_peek_method_name(), when it answers, names the method the parser
 *     reads (checked only when the parser reads the call).
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

static int same_method(const struct xr_call *a, const struct xr_call *b)
{
    return a->method_len == b->method_len && memcmp(a->method, b->method, a->method_len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct arena *a = arena_new(0);
    struct xr_limits lim = {0};
    struct xr_call full = {0}, only = {0}, slow = {0}, fast = {0}, again = {0};
    struct xr_error efull = {0}, eonly = {0}, eslow = {0}, efast = {0}, eagain = {0};
    struct buf out = BUF_INIT;

    int rfull = xr_parse_call(a, body, size, &lim, XR_PARSE_FULL, &full, &efull);
    int ronly = xr_parse_call(a, body, size, &lim, XR_PARSE_METHOD_ONLY, &only, &eonly);
    int rslow = xr_parse_call(a, body, size, &lim, XR_PARSE_NO_FAST_PATH, &slow, &eslow);
    int rfast = xr_parse_call(a, body, size, &lim, XR_PARSE_FAST_PATH_ONLY, &fast, &efast);

    FUZZ_CHECK(rfull == rslow, "entry point %d, libxml2 alone %d (%s / %s)", rfull, rslow,
               rfull ? efull.message : "ok", rslow ? eslow.message : "ok");
    if (rfull != 0) {
        FUZZ_CHECK(efull.code == eslow.code, "codes %d vs %d", efull.code, eslow.code);
        FUZZ_CHECK(strcmp(efull.message, eslow.message) == 0, "'%s' vs '%s'", efull.message,
                   eslow.message);
    } else {
        FUZZ_CHECK(same_method(&full, &slow), "method '%s' vs '%s'", full.method, slow.method);
        FUZZ_CHECK(fuzz_same_value(full.params, slow.params), "params differ from libxml2's");
        FUZZ_CHECK(ronly == 0, "method-only failed on a call read in full: %s", eonly.message);
        FUZZ_CHECK(same_method(&full, &only), "method '%s' vs method-only '%s'", full.method,
                   only.method);
        FUZZ_CHECK(only.params == NULL, "method-only returned params");
    }
    if (rfast == 0) {
        FUZZ_CHECK(rslow == 0, "the scanner accepted what libxml2 refuses: %s", eslow.message);
        FUZZ_CHECK(same_method(&fast, &slow), "method '%s' vs '%s'", fast.method, slow.method);
        FUZZ_CHECK(fuzz_same_value(fast.params, slow.params), "scanner's params differ");
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

    const char *peek = NULL;
    size_t peek_len = 0;
    if (xr_peek_method_name(body, size, &peek, &peek_len) == 1) {
        FUZZ_CHECK(peek != NULL && peek >= body && peek + peek_len <= body + size,
                   "peek points outside the body");
        if (rfull == 0)
            FUZZ_CHECK(peek_len == full.method_len && memcmp(peek, full.method, peek_len) == 0,
                       "peek '%.*s' vs parser '%s'", (int)peek_len, peek, full.method);
    }

    if (rfull == 0) {
        /* What was read, written and read again, is the same call. */
        struct xr_limits deep = {1024, 0};
        xr_write_call(&out, full.method, full.method_len, full.params);
        int r = xr_parse_call(a, out.data, out.len, &deep, XR_PARSE_FULL, &again, &eagain);
        FUZZ_CHECK(r == 0, "written call does not parse: %s\n%.*s", eagain.message, (int)out.len,
                   out.data);
        FUZZ_CHECK(same_method(&full, &again), "method '%s' written back as '%s'", full.method,
                   again.method);
        FUZZ_CHECK(fuzz_same_value(full.params, again.params), "params change when written");
    }

    buf_dispose(&out);
    arena_free(a);
    return 0;
}
