#include "unit.h"
#include "common/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

START_TEST(append_grows_and_keeps_bytes)
{
    struct buf b = BUF_INIT;
    for (int i = 0; i < 1000; i++)
        buf_append(&b, "abc", 3);
    ck_assert_uint_eq(b.len, 3000);
    ck_assert_uint_ge(b.cap, b.len);
    ck_assert_int_eq(memcmp(b.data + 2997, "abc", 3), 0);
    buf_dispose(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(integers_print_in_decimal_including_extremes)
{
    struct buf b = BUF_INIT;
    buf_append_i64(&b, INT64_MIN);
    buf_append_char(&b, ' ');
    buf_append_i64(&b, INT64_MAX);
    buf_append_char(&b, ' ');
    buf_append_u64(&b, 0);
    ck_assert_str_eq(buf_cstr(&b), "-9223372036854775808 9223372036854775807 0");
    buf_dispose(&b);
}
END_TEST

START_TEST(appendf_handles_long_output)
{
    struct buf b = BUF_INIT;
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_appendf(&b, "<%s>", big);
    ck_assert_uint_eq(b.len, 1001);
    ck_assert_int_eq(b.data[0], '<');
    ck_assert_int_eq(b.data[1000], '>');
    buf_dispose(&b);
}
END_TEST

START_TEST(consume_moves_the_rest_to_the_front)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "GET / HTTP/1.1\r\n\r\nnext");
    buf_consume(&b, 18);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_str_eq(buf_cstr(&b), "next");
    buf_consume(&b, 100);
    ck_assert_uint_eq(b.len, 0);
    buf_dispose(&b);
}
END_TEST

START_TEST(steal_hands_over_a_terminated_string)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "owned");
    char *s = buf_steal(&b);
    ck_assert_str_eq(s, "owned");
    ck_assert_ptr_null(b.data);
    free(s);
}
END_TEST

Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, append_grows_and_keeps_bytes);
    tcase_add_test(tc, integers_print_in_decimal_including_extremes);
    tcase_add_test(tc, appendf_handles_long_output);
    tcase_add_test(tc, consume_moves_the_rest_to_the_front);
    tcase_add_test(tc, steal_hands_over_a_terminated_string);
    suite_add_tcase(s, tc);
    return s;
}
