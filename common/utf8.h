/*
 * utf8: reading UTF-8 strictly (RFC 3629).
 *
 * Text crosses three formats here (XML-RPC, JSON, HTTP headers) and every
 * writer must refuse what is not valid UTF-8 rather than pass it to a
 * consumer that will choke on it. This is the one decoder they share.
 */
#ifndef STRANGLER_COMMON_UTF8_H
#define STRANGLER_COMMON_UTF8_H

#include <stddef.h>

/*
 * Length of the valid UTF-8 sequence at s (at most `avail` bytes, avail >=
 * 1), with its code point in *cp; 0 when the bytes are not valid UTF-8:
 * a stray continuation byte, an overlong form, a surrogate, a code point
 * above U+10FFFF, or a sequence cut short.
 */
size_t utf8_decode(const unsigned char *s, size_t avail, unsigned *cp);

#endif
