/*
 * decimal: doubles to and from decimal text, exactly and without printf or
 * strtod where that is provably safe.
 *
 * The XML-RPC and JSON readers and writers spend much of their time on
 * numbers: prices, quantities, ratios. Most of them are short decimals,
 * and for those the correctly rounded conversion can be done with one
 * multiplication or division of exact doubles (Clinger's fast path), both
 * ways. These functions take that path when it gives exactly what the slow
 * path (strtod, "%.15g".."%.17g") would, and tell the caller otherwise, so
 * the text and the bits never change, only the time it takes.
 */
#ifndef STRANGLER_COMMON_DECIMAL_H
#define STRANGLER_COMMON_DECIMAL_H

#include <stddef.h>

/*
 * Reads [+-]digits[.digits][(e|E)[+-]digits] (len bytes, all of them) into
 * *out when its digits make an integer M <= 2^53 and its value is
 * M * 10^E with |E| <= 22. Returns 0, or -1 when the text is not of that
 * form, which leaves it to strtod (the result would be the same).
 */
int decimal_parse_exact(const char *s, size_t len, double *out);

/*
 * Writes into out (at least 32 bytes, not NUL-terminated) the text
 * jsonw_format_double() writes for d, when d is m / 10^k with m <= 10^15
 * and the text is in fixed notation; returns its length, or 0 when d is not
 * such a number (the caller then formats it the slow way).
 */
size_t decimal_format_short(char *out, double d);

#endif
