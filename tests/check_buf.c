/*
 * check_buf.c - unit tests for lib/buf.c against the contract in
 * lib/buf.h: growth, the max ceiling (-E2BIG leaves the buffer as it
 * was), data[len] == '\0' after every operation, addf, the secret flag,
 * whole-file reads at and over the ceiling, reset and release.
 */
#include "../lib/buf.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

/* The invariants buf.h promises after every call. */
static void assert_invariants(const struct buf *b)
{
	ck_assert_ptr_nonnull(b->data);
	ck_assert_uint_le(b->len, b->max);
	if (b->cap)
		ck_assert_uint_le(b->len, b->cap);
	else
		ck_assert_uint_eq(b->len, 0);
	ck_assert_uint_eq(b->data[b->len], '\0');
}

START_TEST(test_init)
{
	struct buf b;

	buf_init(&b, 0);
	assert_invariants(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.max, BUF_DEFAULT_MAX);
	ck_assert(!b.secret);
	ck_assert_str_eq((const char *)b.data, "");
	buf_release(&b);

	buf_init(&b, 123);
	ck_assert_uint_eq(b.max, 123);
	buf_release(&b);
}
END_TEST

START_TEST(test_growth)
{
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < 10000; i++) {
		ck_assert_int_eq(buf_addch(&b, (char)('a' + i % 26)), 0);
		assert_invariants(&b);
	}
	ck_assert_uint_eq(b.len, 10000);
	ck_assert_uint_ge(b.cap, 10000);
	for (i = 0; i < 10000; i++)
		ck_assert_uint_eq(b.data[i], 'a' + i % 26);
	ck_assert_uint_eq(strlen((const char *)b.data), 10000);
	buf_release(&b);
}
END_TEST

START_TEST(test_add_binary_and_empty)
{
	static const uint8_t bin[] = {0, 1, 0, 0xff};
	struct buf b;

	buf_init(&b, 0);
	ck_assert_int_eq(buf_add(&b, NULL, 0), 0);
	assert_invariants(&b);
	ck_assert_int_eq(buf_addstr(&b, ""), 0);
	assert_invariants(&b);
	ck_assert_int_eq(buf_add(&b, bin, sizeof(bin)), 0);
	assert_invariants(&b);
	ck_assert_uint_eq(b.len, sizeof(bin));
	ck_assert_mem_eq(b.data, bin, sizeof(bin));
	ck_assert_int_eq(buf_add(&b, bin, 0), 0);
	ck_assert_uint_eq(b.len, sizeof(bin));
	assert_invariants(&b);
	buf_release(&b);
}
END_TEST

START_TEST(test_grow_keeps_len)
{
	struct buf b;

	buf_init(&b, 0);
	ck_assert_int_eq(buf_addstr(&b, "abc"), 0);
	ck_assert_int_eq(buf_grow(&b, 5000), 0);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_uint_ge(b.cap, 5003);
	ck_assert_str_eq((const char *)b.data, "abc");
	assert_invariants(&b);
	buf_release(&b);
}
END_TEST

/* Every append past max fails with -E2BIG and changes nothing. */
static void assert_unchanged(const struct buf *b, const char *want)
{
	ck_assert_uint_eq(b->len, strlen(want));
	ck_assert_str_eq((const char *)b->data, want);
	assert_invariants(b);
}

START_TEST(test_max)
{
	struct buf b;

	buf_init(&b, 10);
	ck_assert_int_eq(buf_addstr(&b, "01234567"), 0);
	ck_assert_int_eq(buf_addstr(&b, "89X"), -E2BIG);
	assert_unchanged(&b, "01234567");
	ck_assert_int_eq(buf_addf(&b, "%s", "abc"), -E2BIG);
	assert_unchanged(&b, "01234567");
	ck_assert_int_eq(buf_grow(&b, 3), -E2BIG);
	ck_assert_int_eq(buf_grow(&b, SIZE_MAX), -E2BIG);
	ck_assert_int_eq(buf_add(&b, "x", SIZE_MAX), -E2BIG);
	assert_unchanged(&b, "01234567");
	ck_assert_int_eq(buf_addstr(&b, "89"), 0);
	assert_unchanged(&b, "0123456789");
	ck_assert_int_eq(buf_addch(&b, 'x'), -E2BIG);
	assert_unchanged(&b, "0123456789");
	ck_assert_int_eq(buf_add(&b, NULL, 0), 0);
	ck_assert_int_eq(buf_addf(&b, "%s", ""), 0);
	assert_unchanged(&b, "0123456789");
	ck_assert_uint_le(b.cap, 10);
	buf_release(&b);
}
END_TEST

START_TEST(test_max_first_add)
{
	struct buf b;

	buf_init(&b, 4);
	ck_assert_int_eq(buf_addstr(&b, "abcde"), -E2BIG);
	assert_unchanged(&b, "");
	ck_assert_int_eq(buf_addstr(&b, "abcd"), 0);
	assert_unchanged(&b, "abcd");
	buf_release(&b);
}
END_TEST

START_TEST(test_addf)
{
	char big[300];
	struct buf b;

	buf_init(&b, 0);
	ck_assert_int_eq(buf_addf(&b, "%s-%d", "x", 42), 0);
	assert_unchanged(&b, "x-42");
	ck_assert_int_eq(buf_addf(&b, "/%05u", 7u), 0);
	assert_unchanged(&b, "x-42/00007");
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(buf_addf(&b, "[%s]", big), 0);
	ck_assert_uint_eq(b.len, 10 + 2 + 299);
	ck_assert_int_eq(memcmp(b.data, "x-42/00007[zzz", 14), 0);
	ck_assert_uint_eq(b.data[b.len - 1], ']');
	assert_invariants(&b);
	buf_release(&b);
}
END_TEST

START_TEST(test_reset)
{
	struct buf b;
	size_t cap;

	buf_init(&b, 0);
	buf_reset(&b); /* nothing allocated yet */
	assert_unchanged(&b, "");
	ck_assert_int_eq(buf_addstr(&b, "hello"), 0);
	cap = b.cap;
	buf_reset(&b);
	assert_unchanged(&b, "");
	ck_assert_uint_eq(b.cap, cap);
	ck_assert_int_eq(buf_addstr(&b, "again"), 0);
	assert_unchanged(&b, "again");
	buf_release(&b);
}
END_TEST

START_TEST(test_release)
{
	struct buf b;

	buf_init(&b, 100);
	ck_assert_int_eq(buf_addstr(&b, "data"), 0);
	buf_release(&b);
	assert_unchanged(&b, "");
	ck_assert_uint_eq(b.cap, 0);
	ck_assert_uint_eq(b.max, 100);
	ck_assert(!b.secret);
	buf_release(&b); /* twice is fine */
	ck_assert_int_eq(buf_addstr(&b, "reuse"), 0);
	assert_unchanged(&b, "reuse");
	buf_release(&b);
}
END_TEST

START_TEST(test_secret)
{
	static const char key[] = "0123456789abcdef0123456789abcdef";
	struct buf b;
	size_t i;

	buf_init_secret(&b, 0);
	ck_assert(b.secret);
	ck_assert_uint_eq(b.max, BUF_DEFAULT_MAX);
	ck_assert_int_eq(buf_addstr(&b, key), 0);
	/* Growth moves the contents (the old block is wiped, not visible). */
	ck_assert_int_eq(buf_grow(&b, 4096), 0);
	assert_unchanged(&b, key);
	/* Reset keeps the storage: the old bytes must be gone from it. */
	buf_reset(&b);
	assert_unchanged(&b, "");
	for (i = 0; i < sizeof(key) - 1; i++)
		ck_assert_uint_eq(b.data[i], 0);
	ck_assert(b.secret);
	buf_release(&b);
	ck_assert(b.secret); /* the flag survives release */
	ck_assert_uint_eq(b.cap, 0);
	assert_unchanged(&b, "");
}
END_TEST

/* Write a file of n bytes 'a'..'z' in dir, read it into a buffer whose
 * ceiling is max, and return buf_read_file's result. */
static int read_sized(const char *dir, size_t n, size_t max, struct buf *b)
{
	char path[256];
	uint8_t *data = malloc(n + 1);
	size_t i;
	int r;

	ck_assert_ptr_nonnull(data);
	for (i = 0; i < n; i++)
		data[i] = (uint8_t)('a' + i % 26);
	snprintf(path, sizeof(path), "%s/f%zu", dir, n);
	ck_assert_int_eq(tl_write_file(path, data, n), 0);
	buf_init(b, max);
	r = buf_read_file(b, path);
	if (r == 0) {
		ck_assert_uint_eq(b->len, n);
		ck_assert(n == 0 || memcmp(b->data, data, n) == 0);
	}
	assert_invariants(b);
	free(data);
	return r;
}

START_TEST(test_read_file_limit)
{
	/* Ceilings below, at and above buf_read_fd's 4096-byte step. */
	static const size_t maxes[] = {1, 100, 4096, 10000};
	char *dir = tl_tmpdir_new();
	struct buf b;
	size_t i;

	for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		ck_assert_int_eq(read_sized(dir, maxes[i], maxes[i], &b), 0);
		buf_release(&b);
		ck_assert_int_eq(read_sized(dir, maxes[i] + 1, maxes[i], &b),
				 -E2BIG);
		ck_assert_uint_le(b.len, maxes[i]);
		buf_release(&b);
	}
	ck_assert_int_eq(read_sized(dir, 0, 10, &b), 0);
	buf_release(&b);
	ck_assert_int_eq(read_sized(dir, 70000, 0, &b), 0);
	buf_release(&b);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_read_file_errors)
{
	char *dir = tl_tmpdir_new();
	char path[256];
	struct buf b;

	snprintf(path, sizeof(path), "%s/missing", dir);
	buf_init(&b, 0);
	ck_assert_int_eq(buf_read_file(&b, path), -ENOENT);
	assert_unchanged(&b, "");
	buf_release(&b);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_read_fd_pipe)
{
	struct buf b;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "through a pipe", 14), 14);
	close(p[1]);
	buf_init(&b, 0);
	ck_assert_int_eq(buf_read_fd(&b, p[0]), 0);
	assert_unchanged(&b, "through a pipe");
	close(p[0]);
	buf_release(&b);
}
END_TEST

static Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_init);
	tcase_add_test(tc, test_growth);
	tcase_add_test(tc, test_add_binary_and_empty);
	tcase_add_test(tc, test_grow_keeps_len);
	tcase_add_test(tc, test_max);
	tcase_add_test(tc, test_max_first_add);
	tcase_add_test(tc, test_addf);
	tcase_add_test(tc, test_reset);
	tcase_add_test(tc, test_release);
	tcase_add_test(tc, test_secret);
	tcase_add_test(tc, test_read_file_limit);
	tcase_add_test(tc, test_read_file_errors);
	tcase_add_test(tc, test_read_fd_pipe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(buf_suite());
}
