/*
 * check_hex.c - unit tests for lib/hex.c: every digit of both cases,
 * the characters just outside each range, "%XX"-style pairs that end
 * early, whole decodes (odd length, bad digit) and the lowercase
 * encoder round trip.
 */
#include "../lib/hex.h"

#include <check.h>
#include <errno.h>
#include <string.h>

#include "testlib.h"

START_TEST(test_digit)
{
	static const char bad[] = "/:@G`g \xff";

	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(hex_digit((char)('0' + i)), i);
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(hex_digit((char)('a' + i)), 10 + i);
		ck_assert_int_eq(hex_digit((char)('A' + i)), 10 + i);
	}
	for (size_t i = 0; i < sizeof(bad) - 1; i++)
		ck_assert_int_eq(hex_digit(bad[i]), -1);
	ck_assert_int_eq(hex_digit('\0'), -1);
}
END_TEST

START_TEST(test_byte)
{
	ck_assert_int_eq(hex_byte("00"), 0);
	ck_assert_int_eq(hex_byte("fF"), 255);
	ck_assert_int_eq(hex_byte("41x"), 0x41);
	ck_assert_int_eq(hex_byte("4"), -1); /* ends after one digit */
	ck_assert_int_eq(hex_byte(""), -1);  /* s[1] not read */
	ck_assert_int_eq(hex_byte("g0"), -1);
	ck_assert_int_eq(hex_byte("0g"), -1);
}
END_TEST

START_TEST(test_decode)
{
	uint8_t out[4] = {0};

	ck_assert_int_eq(hex_decode("DEADbeef", 8, out), 0);
	ck_assert_mem_eq(out, "\xde\xad\xbe\xef", 4);
	ck_assert_int_eq(hex_decode("", 0, out), 0);
	ck_assert_int_eq(hex_decode("abc", 3, out), -EINVAL);
	ck_assert_int_eq(hex_decode("ab c", 4, out), -EINVAL);
	ck_assert_int_eq(hex_decode("0x00", 4, out), -EINVAL);
	/* len is obeyed: a trailing non-digit is not looked at */
	ck_assert_int_eq(hex_decode("0102zz", 4, out), 0);
	ck_assert_mem_eq(out, "\x01\x02", 2);
}
END_TEST

START_TEST(test_encode)
{
	uint8_t in[256], back[256];
	char text[2 * 256 + 1];

	for (int i = 0; i < 256; i++)
		in[i] = (uint8_t)i;
	hex_encode(in, sizeof(in), text);
	ck_assert_uint_eq(strlen(text), 512);
	ck_assert(strncmp(text, "000102", 6) == 0);
	ck_assert_str_eq(text + 500, "fafbfcfdfeff");
	ck_assert_int_eq(hex_decode(text, 512, back), 0);
	ck_assert_mem_eq(back, in, sizeof(in));
	hex_encode(in, 0, text);
	ck_assert_str_eq(text, "");
}
END_TEST

static Suite *hex_suite(void)
{
	Suite *s = suite_create("hex");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_digit);
	tcase_add_test(tc, test_byte);
	tcase_add_test(tc, test_decode);
	tcase_add_test(tc, test_encode);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(hex_suite());
}
