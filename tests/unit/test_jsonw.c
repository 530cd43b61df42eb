#include "unit.h"
#include "common/jsonw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *write_string(struct buf *b, const char *s, size_t len)
{
    b->len = 0;
    jsonw_string(b, s, len);
    return buf_cstr(b);
}

START_TEST(strings_escape_quotes_controls_and_keep_utf8)
{
    struct buf b = BUF_INIT;
    ck_assert_str_eq(write_string(&b, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    ck_assert_str_eq(write_string(&b, "\n\t\x01", 3), "\"\\n\\t\\u0001\"");
    ck_assert_str_eq(write_string(&b, "caf\xc3\xa9 \xe2\x82\xac", 9),
                     "\"caf\xc3\xa9 \xe2\x82\xac\"");
    ck_assert_str_eq(write_string(&b, "\xf0\x9f\x98\x80", 4), "\"\xf0\x9f\x98\x80\"");
    /* An embedded NUL is data, not the end of the string. */
    ck_assert_str_eq(write_string(&b, "a\0b", 3), "\"a\\u0000b\"");
    buf_dispose(&b);
}
END_TEST

START_TEST(invalid_utf8_becomes_replacement_character)
{
    struct buf b = BUF_INIT;
    /* a lone continuation byte, an overlong '/', a UTF-16 surrogate, and a
     * sequence cut short at the end */
    ck_assert_str_eq(write_string(&b, "\x80", 1), "\"\xef\xbf\xbd\"");
    ck_assert_str_eq(write_string(&b, "\xc0\xaf", 2), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    ck_assert_str_eq(write_string(&b, "\xed\xa0\x80", 3),
                     "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
    ck_assert_str_eq(write_string(&b, "x\xe2\x82", 3), "\"x\xef\xbf\xbd\xef\xbf\xbd\"");
    buf_dispose(&b);
}
END_TEST

START_TEST(doubles_round_trip_in_shortest_form)
{
    static const double cases[] = {0.1,    1.0 / 3.0,     1e-300, 1.7976931348623157e308,
                                   5e-324, 123456789.125, -2.5,   100.0};
    char text[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jsonw_format_double(text, cases[i]);
        ck_assert_msg(strtod(text, NULL) == cases[i], "%s does not read back", text);
    }
    jsonw_format_double(text, 0.1);
    ck_assert_str_eq(text, "0.1");
    jsonw_format_double(text, 100.0);
    ck_assert_str_eq(text, "100.0");
    jsonw_format_double(text, -0.0);
    ck_assert_str_eq(text, "-0.0");
    ck_assert(signbit(strtod(text, NULL)));
}
END_TEST

START_TEST(non_finite_doubles_are_refused)
{
    struct buf b = BUF_INIT;
    ck_assert_int_eq(jsonw_double(&b, NAN), -1);
    ck_assert_int_eq(jsonw_double(&b, INFINITY), -1);
    ck_assert_int_eq(jsonw_double(&b, -INFINITY), -1);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(jsonw_double(&b, 2.0), 0);
    ck_assert_str_eq(buf_cstr(&b), "2.0");
    buf_dispose(&b);
}
END_TEST

Suite *jsonw_suite(void)
{
    Suite *s = suite_create("jsonw");
    TCase *tc = tcase_create("jsonw");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, strings_escape_quotes_controls_and_keep_utf8);
    tcase_add_test(tc, invalid_utf8_becomes_replacement_character);
    tcase_add_test(tc, doubles_round_trip_in_shortest_form);
    tcase_add_test(tc, non_finite_doubles_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
