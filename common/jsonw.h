/*
 * jsonw: writing JSON text into a buf.
 *
 * Events, the JSON contract and the admin API all emit JSON. Writing text
 * directly is several times faster than building json-c objects only to
 * serialise them, and it lets us control the two details that matter for
 * fidelity: doubles are printed in the shortest form that reads back to the
 * same bits (and always look like doubles: 1.0, not 1), and strings are
 * escaped per RFC 8259 with invalid UTF-8 replaced by U+FFFD rather than
 * passed through to consumers that would choke on it.
 *
 * This module only writes; reading JSON into XML-RPC values is xrjson.c's
 * own single-pass parser, and json-c reads the admin API's small bodies.
 */
#ifndef STRANGLER_COMMON_JSONW_H
#define STRANGLER_COMMON_JSONW_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Appends `s` (len bytes, may contain NULs) as a quoted JSON string. */
void jsonw_string(struct buf *b, const char *s, size_t len);

/* Same for a NUL-terminated string. */
void jsonw_cstring(struct buf *b, const char *s);

void jsonw_i64(struct buf *b, int64_t v);

/*
 * Appends a double in the shortest form that strtod() reads back exactly,
 * with ".0" added when the text would otherwise look like an integer.
 * Returns 0, or -1 (appending nothing) for NaN and infinities, which JSON
 * cannot represent.
 */
int jsonw_double(struct buf *b, double d);

/*
 * Writes the shortest round-trip text of a finite double into out (at least
 * 32 bytes) and returns its length. Shared with the XML-RPC writer so both
 * wire formats print doubles identically.
 */
size_t jsonw_format_double(char *out, double d);

#endif
