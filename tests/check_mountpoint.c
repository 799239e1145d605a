/*
 * check_mountpoint.c - mount point refusals that need no root: a
 * non-empty directory (unless nonempty), not a directory, missing, and
 * "already a mount point" (/proc is one), and the device mountinfo gives
 * a mount (the read-ahead setting finds the mount's sysfs entry by it).
 * Dead FUSE mounts and live kmsfs mounts are covered by
 * tests/mount/t_mountsafe.sh, the read-ahead by tests/mount/t_readahead.sh.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../fs/mountpoint.h"
#include "../lib/mountinfo.h"
#include "testlib.h"

static char *dir;

static void setup(void)
{
	dir = tl_tmpdir_new();
}

static void teardown(void)
{
	tl_tmpdir_remove(dir);
}

static int check_quiet(const char *path, bool nonempty, char **msg_out)
{
	int r;

	tl_capture_begin();
	r = mountpoint_check(path, nonempty);
	*msg_out = tl_capture_end();
	return r;
}

START_TEST(test_empty_ok)
{
	ck_assert_int_eq(mountpoint_check(dir, false), 0);
}
END_TEST

START_TEST(test_nonempty)
{
	char path[512], *msg;

	snprintf(path, sizeof(path), "%s/.hidden", dir);
	ck_assert_int_eq(tl_write_file(path, "x", 1), 0);
	ck_assert_int_eq(check_quiet(dir, false, &msg), -ENOTEMPTY);
	ck_assert_msg(strstr(msg, "is not empty") && strstr(msg, "-o nonempty"),
		      "message: %s", msg);
	free(msg);
	ck_assert_int_eq(mountpoint_check(dir, true), 0);
}
END_TEST

START_TEST(test_not_a_directory)
{
	char path[512], *msg;

	snprintf(path, sizeof(path), "%s/file", dir);
	ck_assert_int_eq(tl_write_file(path, "x", 1), 0);
	ck_assert_int_eq(check_quiet(path, true, &msg), -ENOTDIR);
	free(msg);
	snprintf(path, sizeof(path), "%s/missing", dir);
	ck_assert_int_eq(check_quiet(path, true, &msg), -ENOENT);
	free(msg);
}
END_TEST

START_TEST(test_already_mounted)
{
	char *msg;

	if (access("/proc/self/mountinfo", R_OK) != 0)
		return; /* no /proc here: nothing to test against */
	ck_assert_int_eq(check_quiet("/proc", true, &msg), -EBUSY);
	ck_assert_msg(strstr(msg, "already a mount point (proc"), "message: %s",
		      msg);
	free(msg);
}
END_TEST

START_TEST(test_mount_device)
{
	struct mountinfo_entry me;
	struct stat st;
	char want[24];

	if (access("/proc/self/mountinfo", R_OK) != 0)
		return;
	ck_assert_int_eq(mountinfo_find("/proc", &me), 0);
	ck_assert_int_eq(stat("/proc", &st), 0);
	snprintf(want, sizeof(want), "%u:%u", major(st.st_dev),
		 minor(st.st_dev));
	ck_assert_str_eq(me.dev, want);
	ck_assert_str_eq(me.fstype, "proc");
	/* Not a kmsfs mount: its read-ahead is not ours to set. */
	ck_assert_int_eq(mountpoint_set_readahead("/proc", 4096), -ENOENT);
	ck_assert_int_eq(mountpoint_set_readahead(dir, 4096), -ENOENT);
}
END_TEST

static Suite *mountpoint_suite(void)
{
	Suite *s = suite_create("mountpoint");
	TCase *tc = tcase_create("mountpoint");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty_ok);
	tcase_add_test(tc, test_nonempty);
	tcase_add_test(tc, test_not_a_directory);
	tcase_add_test(tc, test_already_mounted);
	tcase_add_test(tc, test_mount_device);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(mountpoint_suite());
}
