#include "unit.h"
#include "common/utf8.h"

static size_t decode(const char *s, size_t len, unsigned *cp)
{
    return utf8_decode((const unsigned char *)s, len, cp);
}

START_TEST(valid_sequences_of_every_length)
{
    unsigned cp = 0;
    ck_assert_uint_eq(decode("A", 1, &cp), 1);
    ck_assert_uint_eq(cp, 'A');
    ck_assert_uint_eq(decode("\xc3\xa9", 2, &cp), 2);
    ck_assert_uint_eq(cp, 0xe9);
    ck_assert_uint_eq(decode("\xe2\x82\xac", 3, &cp), 3);
    ck_assert_uint_eq(cp, 0x20ac);
    ck_assert_uint_eq(decode("\xf0\x9f\x98\x80", 4, &cp), 4);
    ck_assert_uint_eq(cp, 0x1f600);
    ck_assert_uint_eq(decode("\xf4\x8f\xbf\xbf", 4, &cp), 4);
    ck_assert_uint_eq(cp, 0x10ffff);
}
END_TEST

START_TEST(invalid_sequences_are_refused)
{
    unsigned cp;
    ck_assert_uint_eq(decode("\x80", 1, &cp), 0);             /* stray continuation */
    ck_assert_uint_eq(decode("\xc0\xaf", 2, &cp), 0);         /* overlong '/' */
    ck_assert_uint_eq(decode("\xe0\x80\xaf", 3, &cp), 0);     /* overlong, 3 bytes */
    ck_assert_uint_eq(decode("\xed\xa0\x80", 3, &cp), 0);     /* surrogate U+D800 */
    ck_assert_uint_eq(decode("\xf4\x90\x80\x80", 4, &cp), 0); /* above U+10FFFF */
    ck_assert_uint_eq(decode("\xe2\x82", 2, &cp), 0);         /* cut short */
    ck_assert_uint_eq(decode("\xc3\x28", 2, &cp), 0);         /* not a continuation */
    ck_assert_uint_eq(decode("\xff", 1, &cp), 0);
}
END_TEST

Suite *utf8_suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("utf8");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, valid_sequences_of_every_length);
    tcase_add_test(tc, invalid_sequences_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
