#include "common/decimal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The powers of ten that doubles hold exactly: 5^22 < 2^53. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define POW10_EXACT_MAX ((int)(sizeof(pow10_exact) / sizeof(pow10_exact[0])) - 1)

/* The largest integer below which doubles hold every integer. */
#define EXACT_INT_MAX ((uint64_t)1 << 53)

/*
 * Reads [+-]digits[.digits][(e|E)[+-]digits] (at least one mantissa digit)
 * without strtod, when its digits make an integer M <= 2^53 and its value
 * is M * 10^E with |E| <= 22: M and 10^E are exact doubles, so one
 * multiplication or division, rounded correctly as IEEE 754 does, gives
 * exactly the double strtod's correct rounding gives (Clinger's fast path,
 * "How to Read Floating Point Numbers Accurately", 1990). That covers the
 * prices and quantities clients send. Returns 0 with *out set, or -1 to
 * leave the text to strtod.
 */
int decimal_parse_exact(const char *s, size_t len, double *out)
{
    size_t i = 0, digits = 0;
    uint64_t m = 0;
    int neg = 0, frac = 0, exp = 0, exp_neg = 0;

    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    for (int seen_point = 0; i < len; i++) {
        if (s[i] == '.' && !seen_point) {
            seen_point = 1;
            continue;
        }
        if (s[i] < '0' || s[i] > '9')
            break;
        m = m * 10 + (uint64_t)(s[i] - '0');
        if (m > EXACT_INT_MAX)
            return -1;
        digits++;
        frac += seen_point;
        if (frac > 1000) /* zeros after the point keep m small: stop counting */
            return -1;
    }
    if (digits == 0)
        return -1;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < len && (s[i] == '+' || s[i] == '-'))
            exp_neg = s[i++] == '-';
        size_t first = i;
        for (; i < len && s[i] >= '0' && s[i] <= '9' && exp <= 1000; i++)
            exp = exp * 10 + (s[i] - '0');
        if (i == first)
            return -1; /* "1e": strtod leaves the 'e', so the text is refused */
    }
    int e = (exp_neg ? -exp : exp) - frac;
    if (i != len || e < -POW10_EXACT_MAX || e > POW10_EXACT_MAX)
        return -1;
    double v = e >= 0 ? (double)m * pow10_exact[e] : (double)m / pow10_exact[-e];
    *out = neg ? -v : v;
    return 0;
}

/* Writes the decimal digits of v, most significant first, ending at `end`;
 * returns where they start. */
static char *format_u64(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

/*
 * Writes m * 10^-k in the fixed notation of "%.15g", ending at `end`: the
 * integer part, then the fraction without trailing zeros, or ".0" for an
 * integer as jsonw adds. Returns where the text starts.
 */
static char *format_fixed(char *end, uint64_t m, int k)
{
    char *p = end;

    for (; k > 0 && m % 10 == 0; k--)
        m /= 10;
    if (k == 0) {
        p -= 2;
        memcpy(p, ".0", 2);
        return format_u64(p, m);
    }
    for (; k > 0; k--) {
        *--p = (char)('0' + m % 10);
        m /= 10;
    }
    *--p = '.';
    return format_u64(p, m);
}

/*
 * jsonw writes "%.15g" when that reads back as d (else "%.16g" or
 * "%.17g"), plus ".0" when the text looks like an integer. Here d is
 * searched as m / 10^k with m an integer of at most 10^15 and k <= 22: m
 * and 10^k are then exact doubles and the division rounds correctly, as
 * strtod does, so the decimal m * 10^-k, of at most 15 significant digits,
 * reads back as d. No other decimal of 15 significant digits lies within
 * half an ulp of d (they are at least 10^-15 * d apart, half an ulp is at
 * most 2^-53 * d), so that decimal is exactly what "%.15g" prints, in its
 * fixed notation when its decimal exponent is between -4 and 14 (C11
 * 7.21.6.1, the g conversion); other exponents are left to jsonw.
 */
size_t decimal_format_short(char *out, double d)
{
    double a = fabs(d);
    char tmp[48];
    char *end = tmp + sizeof(tmp), *p = end;

    if (d == 0) {
        p -= 3;
        memcpy(p, "0.0", 3);
    } else if (a >= 1e-4 && a < 1e15) {
        for (int k = 0; k <= POW10_EXACT_MAX; k++) {
            double scaled = a * pow10_exact[k];
            if (scaled >= 1e15)
                return 0;
            double m = floor(scaled + 0.5);
            if (m / pow10_exact[k] == a) {
                p = format_fixed(end, (uint64_t)m, k);
                break;
            }
        }
        if (p == end)
            return 0;
    } else {
        return 0;
    }
    if (signbit(d))
        *--p = '-';
    memcpy(out, p, (size_t)(end - p));
    return (size_t)(end - p);
}
