/*
 * check_privfile.c - unit tests for lib/privfile.c: a 0600 file of ours
 * is read (into a buffer and into a secret); every group/other bit, a
 * foreign owner (as root), a directory, a FIFO (without blocking) and a
 * missing file are refused with the errno and the phrase privfile.h
 * promises; the size limits of both readers.
 */
#include "../lib/privfile.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

static char *dir;
static char path[512];

static void setup(void)
{
	dir = tl_tmpdir_new();
	snprintf(path, sizeof(path), "%s/key", dir);
	ck_assert_int_eq(tl_write_file(path, "0123456789", 10), 0);
	ck_assert_int_eq(chmod(path, 0600), 0);
}

static void teardown(void)
{
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}

static void assert_why(const char *why, const char *want)
{
	ck_assert_msg(strstr(why, want) != NULL, "'%s' lacks '%s'", why, want);
	ck_assert_msg(strstr(why, path) == NULL, "'%s' names the path", why);
}

START_TEST(test_open_ok)
{
	char why[PRIVFILE_WHY_MAX];
	int fd;

	ck_assert_int_eq(privfile_open(path, &fd, why), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(privfile_open(path, &fd, why), 0);
	close(fd);
}
END_TEST

static const mode_t bad_modes[] = {0640, 0604, 0660, 0602, 0620, 0610, 0601};

START_TEST(test_mode_refused)
{
	char why[PRIVFILE_WHY_MAX];
	int fd = 7;

	ck_assert_int_eq(chmod(path, bad_modes[_i]), 0);
	ck_assert_int_eq(privfile_open(path, &fd, why), -EPERM);
	ck_assert_int_eq(fd, -1);
	assert_why(why, "chmod 600");
	assert_why(why, "not accessible by group or others");
}
END_TEST

START_TEST(test_owner_refused)
{
	char why[PRIVFILE_WHY_MAX];
	int fd;

	if (geteuid() != 0)
		return; /* needs root to give the file away */
	ck_assert_int_eq(chown(path, 65534, 65534), 0);
	ck_assert_int_eq(privfile_open(path, &fd, why), -EPERM);
	assert_why(why, "owned by uid 0");
	assert_why(why, "is uid 65534, mode 0600");
}
END_TEST

START_TEST(test_not_regular)
{
	char why[PRIVFILE_WHY_MAX], fifo[600];
	int fd;

	ck_assert_int_eq(chmod(dir, 0700), 0);
	ck_assert_int_eq(privfile_open(dir, &fd, why), -EINVAL);
	ck_assert_str_eq(why, "not a regular file");
	/* O_NONBLOCK: a FIFO with no writer must not hang the caller */
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(privfile_open(fifo, &fd, why), -EINVAL);
	snprintf(fifo, sizeof(fifo), "%s/missing", dir);
	ck_assert_int_eq(privfile_open(fifo, &fd, why), -ENOENT);
	ck_assert_str_eq(why, "cannot open: No such file or directory");
}
END_TEST

START_TEST(test_read_buf)
{
	char why[PRIVFILE_WHY_MAX];
	struct buf b;

	buf_init_secret(&b, 10);
	ck_assert_int_eq(privfile_read_buf(path, &b, why), 0);
	ck_assert_str_eq((const char *)b.data, "0123456789");
	buf_release(&b);
	buf_init(&b, 9);
	ck_assert_int_eq(privfile_read_buf(path, &b, why), -E2BIG);
	ck_assert_str_eq(why, "larger than 9 bytes");
	buf_release(&b);
	ck_assert_int_eq(chmod(path, 0644), 0);
	buf_init(&b, 10);
	ck_assert_int_eq(privfile_read_buf(path, &b, why), -EPERM);
	ck_assert_uint_eq(b.len, 0);
	buf_release(&b);
}
END_TEST

START_TEST(test_read_secret)
{
	char why[PRIVFILE_WHY_MAX];
	struct secret *s = (struct secret *)1;

	ck_assert_int_eq(privfile_read_secret(path, 10, &s, why), 0);
	ck_assert_uint_eq(s->len, 10);
	ck_assert_mem_eq(s->bytes, "0123456789", 10);
	secret_free(s);
	ck_assert_int_eq(privfile_read_secret(path, 32, &s, why), 0);
	ck_assert_uint_eq(s->len, 10);
	secret_free(s);
	ck_assert_int_eq(privfile_read_secret(path, 9, &s, why), -EFBIG);
	ck_assert_ptr_null(s);
	ck_assert_str_eq(why, "longer than 9 bytes");
	ck_assert_int_eq(chmod(path, 0604), 0);
	ck_assert_int_eq(privfile_read_secret(path, 10, &s, why), -EPERM);
	ck_assert_ptr_null(s);
}
END_TEST

static Suite *privfile_suite(void)
{
	Suite *s = suite_create("privfile");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_ok);
	tcase_add_loop_test(tc, test_mode_refused, 0,
			    sizeof(bad_modes) / sizeof(bad_modes[0]));
	tcase_add_test(tc, test_owner_refused);
	tcase_add_test(tc, test_not_regular);
	tcase_add_test(tc, test_read_buf);
	tcase_add_test(tc, test_read_secret);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(privfile_suite());
}
