/*
 * base64: the standard base64 alphabet of RFC 4648, section 4, with padding.
 *
 * Both wire formats carry binary data this way: XML-RPC's <base64> element
 * and the JSON contract's {"$base64": "..."}. Encoding always pads and never
 * breaks lines. Decoding skips the whitespace that XML-RPC writers put
 * between lines (Python's xmlrpc.client breaks every 76 characters) and
 * accepts the final group with or without its padding; anything else that is
 * not in the alphabet is an error, so corrupted data is refused rather than
 * silently shortened.
 */
#ifndef STRANGLER_ADAPTERS_BASE64_H
#define STRANGLER_ADAPTERS_BASE64_H

#include "common/buf.h"
#include "common/mem.h"

#include <stddef.h>

/* Appends the base64 text of `len` bytes at `data` to out. */
void base64_encode(struct buf *out, const void *data, size_t len);

/*
 * Decodes `len` bytes of base64 text into arena memory. On success sets *out
 * to the bytes (NUL-terminated for convenience, the NUL not counted) and
 * *out_len to their count, and returns 0. Returns -1, touching neither, when
 * the text is not base64.
 */
int base64_decode(struct arena *a, const char *text, size_t len, const char **out, size_t *out_len);

#endif
