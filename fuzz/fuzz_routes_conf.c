/*
 * fuzz_routes_conf: the bytes as the text of a routes.conf.
 *
 * config_parse() reads it as it comes: a host name that does not resolve
 * is one more error (getaddrinfo, so a name the resolver has to ask about
 * costs a lookup; numeric addresses and localhost do not). Checks that a
 * text either loads, or does not and says why in "NAME:LINE: ..." lines,
 * and that a loaded snapshot frees cleanly (LeakSanitizer).
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "proxy/config.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf errors = BUF_INIT;

    struct config *c = config_parse("fuzz.conf", (const char *)data, size, &errors);
    if (c == NULL)
        FUZZ_CHECK(errors.len > 0 && strncmp(errors.data, "fuzz.conf:", 10) == 0,
                   "refused without a FILE:LINE message: '%.*s'", (int)errors.len,
                   errors.data ? errors.data : "");
    if (errors.len > 0)
        FUZZ_CHECK(errors.data[errors.len - 1] == '\n', "message not ended by a newline");
    config_unref(c);
    buf_dispose(&errors);
    return 0;
}
