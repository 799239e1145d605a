/*
 * check_fdio.c - unit tests for lib/fdio.c: whole reads at an offset and
 * at the current position (stopping at end of file), the bounded whole
 * read (exactly max is fine, one byte more is -EFBIG, a pipe delivering
 * in pieces is read whole), and whole writes.
 */
#include "../lib/fdio.h"

#include <check.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

START_TEST(test_read_full)
{
	int fd = tl_memfd("abcdefgh", 8);
	uint8_t b[16];
	size_t got = 99;

	ck_assert_int_eq(fdio_read_full(fd, b, 3, 2, &got), 0);
	ck_assert_uint_eq(got, 3);
	ck_assert_mem_eq(b, "cde", 3);
	ck_assert_int_eq(fdio_read_full(fd, b, 16, -1, &got), 0);
	ck_assert_uint_eq(got, 8); /* pread left the offset at 0 */
	ck_assert_int_eq(fdio_read_full(fd, b, 16, 6, &got), 0);
	ck_assert_uint_eq(got, 2);
	close(fd);
	ck_assert_int_eq(fdio_read_full(-1, b, 1, -1, &got), -EBADF);
}
END_TEST

START_TEST(test_read_max)
{
	int fd = tl_memfd("abcdefgh", 8);
	uint8_t b[16];
	size_t got;

	ck_assert_int_eq(fdio_read_max(fd, b, 8, &got), 0);
	ck_assert_uint_eq(got, 8);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(fdio_read_max(fd, b, 16, &got), 0);
	ck_assert_uint_eq(got, 8);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(fdio_read_max(fd, b, 7, &got), -EFBIG);
	close(fd);
}
END_TEST

START_TEST(test_read_max_pipe)
{
	uint8_t b[16];
	size_t got;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "abc", 3), 3);
	ck_assert_int_eq(write(p[1], "defg", 4), 4);
	close(p[1]);
	ck_assert_int_eq(fdio_read_max(p[0], b, sizeof(b), &got), 0);
	ck_assert_uint_eq(got, 7);
	ck_assert_mem_eq(b, "abcdefg", 7);
	close(p[0]);
}
END_TEST

START_TEST(test_write_all)
{
	int fd = tl_memfd("", 0);
	uint8_t b[16];
	size_t got;

	ck_assert_int_eq(fdio_write_all(fd, (const uint8_t *)"hello", 5, -1),
			 0);
	ck_assert_int_eq(fdio_write_all(fd, (const uint8_t *)"J", 1, 0), 0);
	ck_assert_int_eq(fdio_read_full(fd, b, sizeof(b), 0, &got), 0);
	ck_assert_uint_eq(got, 5);
	ck_assert_mem_eq(b, "Jello", 5);
	close(fd);
}
END_TEST

static Suite *fdio_suite(void)
{
	Suite *s = suite_create("fdio");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_read_full);
	tcase_add_test(tc, test_read_max);
	tcase_add_test(tc, test_read_max_pipe);
	tcase_add_test(tc, test_write_all);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(fdio_suite());
}
