#include "unit.h"
#include "common/decimal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The slow path the fast one must equal, byte for byte: the shortest of
 * "%.15g", "%.16g", "%.17g" that reads back, with ".0" added when the text
 * looks like an integer (jsonw's rule, written out here independently). */
static size_t slow_format(char *out, double d)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 40, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (strpbrk(out, ".eEni") == NULL) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t next_u64(void)
{
    /* xorshift64*: reproducible, and good enough to spread test values. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Doubles of the shapes people send (short decimals, integers, tiny and
 * huge ones) and arbitrary bit patterns. */
static double random_double(void)
{
    uint64_t r = next_u64();
    switch (r % 5) {
    case 0: {
        double m = (double)(next_u64() % 1000000000000000ULL);
        return m / pow(10, (double)(next_u64() % 23)) * (r & 8 ? -1 : 1);
    }
    case 1:
        return (double)(int64_t)(next_u64() % 100000) / 100.0;
    case 2:
        return (double)(int64_t)next_u64();
    case 3:
        return ldexp((double)(next_u64() >> 11), (int)(next_u64() % 200) - 100);
    default: {
        uint64_t bits = next_u64();
        double d;
        memcpy(&d, &bits, sizeof(d));
        return isfinite(d) ? d : 1.5;
    }
    }
}

START_TEST(short_format_equals_printf_whenever_it_answers)
{
    char fast[40], slow[40];
    unsigned answered = 0;
    for (int i = 0; i < 300000; i++) {
        double d = random_double();
        size_t n = decimal_format_short(fast, d);
        if (n == 0)
            continue;
        answered++;
        size_t m = slow_format(slow, d);
        ck_assert_msg(n == m && memcmp(fast, slow, n) == 0, "%.17g: fast '%.*s', printf '%s'", d,
                      (int)n, fast, slow);
    }
    /* The fast path must really be taken for the common shapes. */
    ck_assert_uint_gt(answered, 100000);
    ck_assert_uint_eq(decimal_format_short(fast, 1e300), 0);
    ck_assert_uint_eq(decimal_format_short(fast, 5e-324), 0);
    ck_assert_uint_eq(decimal_format_short(fast, 0.1), 3);
    ck_assert_int_eq(memcmp(fast, "0.1", 3), 0);
    ck_assert_uint_eq(decimal_format_short(fast, -0.0), 4);
    ck_assert_int_eq(memcmp(fast, "-0.0", 4), 0);
    ck_assert_uint_eq(decimal_format_short(fast, 24.0), 4);
    ck_assert_int_eq(memcmp(fast, "24.0", 4), 0);
}
END_TEST

START_TEST(exact_parse_equals_strtod_whenever_it_answers)
{
    char text[64];
    unsigned answered = 0;
    for (int i = 0; i < 300000; i++) {
        uint64_t r = next_u64();
        int n;
        if (r % 3 == 0)
            n = snprintf(text, sizeof(text), "%s%llu.%0*llu", r & 8 ? "-" : "",
                         (unsigned long long)(next_u64() % 1000000), (int)(next_u64() % 12 + 1),
                         (unsigned long long)(next_u64() % 100000000000ULL));
        else if (r % 3 == 1)
            n = snprintf(text, sizeof(text), "%llue%s%d",
                         (unsigned long long)(next_u64() % 100000000000000000ULL),
                         r & 16 ? "-" : "", (int)(next_u64() % 30));
        else
            n = snprintf(text, sizeof(text), "%.*g", (int)(next_u64() % 17 + 1), random_double());
        double fast, slow = strtod(text, NULL);
        if (decimal_parse_exact(text, (size_t)n, &fast) != 0)
            continue;
        answered++;
        ck_assert_msg(memcmp(&fast, &slow, sizeof(fast)) == 0, "'%s': fast %.17g, strtod %.17g",
                      text, fast, slow);
    }
    ck_assert_uint_gt(answered, 50000);
    double d;
    ck_assert_int_eq(decimal_parse_exact("-0.0", 4, &d), 0);
    ck_assert(d == 0.0 && signbit(d));
    ck_assert_int_eq(decimal_parse_exact("1e", 2, &d), -1);
    ck_assert_int_eq(decimal_parse_exact("12x", 3, &d), -1);
    ck_assert_int_eq(decimal_parse_exact("9007199254740993", 16, &d), -1); /* above 2^53 */
    ck_assert_int_eq(decimal_parse_exact("1e23", 4, &d), -1);
}
END_TEST

Suite *decimal_suite(void)
{
    Suite *s = suite_create("decimal");
    TCase *tc = tcase_create("decimal");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, short_format_equals_printf_whenever_it_answers);
    tcase_add_test(tc, exact_parse_equals_strtod_whenever_it_answers);
    suite_add_tcase(s, tc);
    return s;
}
