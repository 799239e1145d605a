/*
 * check_storelock.c - the store lock: taking it writes the holder, a
 * second taker (another open file, as another process would have) is
 * refused with a message naming the holder's mount point and pid, a
 * holder whose mount point is gone is waited for, a clean release
 * removes the file, a stale file left by a crash is taken
 * over, a holder whose named pid is dead is reported without a pid, and
 * a symlink or fifo planted at the name is refused without following it.
 * The name is reserved (hidden by the mount).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../fs/layout.h"
#include "../fs/storelock.h"
#include "testlib.h"

static char *dir;
static char lockpath[512];

static void setup(void)
{
	dir = tl_tmpdir_new();
	snprintf(lockpath, sizeof(lockpath), "%s/" LAYOUT_LOCK_NAME, dir);
}

static void teardown(void)
{
	tl_tmpdir_remove(dir);
}

static char *lock_content(void)
{
	uint8_t *data;
	size_t len;

	ck_assert_int_eq(tl_read_file(lockpath, &data, &len), 0);
	return (char *)data;
}

START_TEST(test_reserved)
{
	ck_assert(layout_name_reserved(LAYOUT_LOCK_NAME));
	ck_assert_str_eq(LAYOUT_LOCK_NAME, ".kmsfs-lock");
}
END_TEST

START_TEST(test_second_refused_naming_first)
{
	struct storelock *a, *b = NULL;
	char want[128], *c, *msg;

	/* a holder's mount point that is mounted: no waiting for it */
	ck_assert_int_eq(storelock_acquire(dir, "/proc", &a), 0);
	ck_assert_ptr_nonnull(a);
	snprintf(want, sizeof(want), "pid=%ld\nmountpoint=/proc\n",
		 (long)getpid());
	c = lock_content();
	ck_assert_str_eq(c, want);
	free(c);

	tl_capture_begin();
	ck_assert_int_eq(storelock_acquire(dir, "/mnt/second", &b), -EBUSY);
	msg = tl_capture_end();
	ck_assert_ptr_null(b);
	snprintf(want, sizeof(want),
		 "already mounted on /proc by kmsfs (pid %ld)", (long)getpid());
	ck_assert_msg(strstr(msg, want), "message: %s", msg);
	ck_assert_msg(strstr(msg, "kmsfs umount /proc"), "message: %s", msg);
	free(msg);

	storelock_release(a);
	ck_assert_int_eq(access(lockpath, F_OK), -1); /* removed */
	ck_assert_int_eq(storelock_acquire(dir, "/mnt/second", &b), 0);
	storelock_release(b);
}
END_TEST

/* `kmsfs umount && kmsfs mount`: the old daemon may still hold the lock
 * for a moment after its mount point is gone; the new mount waits. */
START_TEST(test_going_holder_waited_for)
{
	struct storelock *l = NULL;
	struct timespec ms = {0, 1000 * 1000};
	pid_t child = fork();
	struct stat sb;
	int st;

	ck_assert_int_ge(child, 0);
	if (child == 0) {
		struct timespec wait = {0, 300 * 1000 * 1000};

		if (storelock_acquire(dir, "/nonexistent/mnt", &l))
			_exit(1);
		nanosleep(&wait, NULL);
		storelock_release(l);
		_exit(0);
	}
	while (stat(lockpath, &sb) != 0 || sb.st_size == 0)
		nanosleep(&ms, NULL); /* written once locked */
	ck_assert_int_eq(storelock_acquire(dir, "/mnt/next", &l), 0);
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	storelock_release(l);
}
END_TEST

START_TEST(test_stale_file_taken_over)
{
	static const char stale[] = "pid=1\nmountpoint=/mnt/crashed\nzzzz\n";
	struct storelock *l;
	char want[128], *c;

	ck_assert_int_eq(tl_write_file(lockpath, stale, strlen(stale)), 0);
	ck_assert_int_eq(storelock_acquire(dir, "/m", &l), 0);
	snprintf(want, sizeof(want), "pid=%ld\nmountpoint=/m\n",
		 (long)getpid());
	c = lock_content();
	ck_assert_str_eq(c, want);
	free(c);
	ck_assert_int_eq(storelock_set_pid(l), 0);
	storelock_release(l);
	ck_assert_int_eq(storelock_set_pid(NULL), 0);
	storelock_release(NULL);
}
END_TEST

/* A holder that wrote a pid that is gone (a daemon's parent): after a
 * short wait for the real pid, the message names the mount point only. */
START_TEST(test_dead_pid_not_named)
{
	struct storelock *l = NULL;
	char text[128], *msg;
	pid_t dead = fork();
	int fd;

	ck_assert_int_ge(dead, 0);
	if (dead == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
	snprintf(text, sizeof(text), "pid=%ld\nmountpoint=/mnt/x\n",
		 (long)dead);
	ck_assert_int_eq(tl_write_file(lockpath, text, strlen(text)), 0);
	fd = open(lockpath, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);

	tl_capture_begin();
	ck_assert_int_eq(storelock_acquire(dir, "/mnt/y", &l), -EBUSY);
	msg = tl_capture_end();
	ck_assert_msg(strstr(msg, "already mounted on /mnt/x by another kmsfs "
				  "process"),
		      "message: %s", msg);
	free(msg);
	close(fd);
}
END_TEST

START_TEST(test_planted_names_refused)
{
	struct storelock *l = NULL;
	char target[512];
	struct stat st;

	snprintf(target, sizeof(target), "%s/victim", dir);
	ck_assert_int_eq(tl_write_file(target, "keep", 4), 0);
	ck_assert_int_eq(symlink(target, lockpath), 0);
	tl_capture_begin();
	ck_assert_int_eq(storelock_acquire(dir, "/m", &l), -ELOOP);
	free(tl_capture_end());
	ck_assert_int_eq(stat(target, &st), 0);
	ck_assert_int_eq(st.st_size, 4);

	ck_assert_int_eq(unlink(lockpath), 0);
	ck_assert_int_eq(mkfifo(lockpath, 0600), 0);
	tl_capture_begin();
	ck_assert_int_eq(storelock_acquire(dir, "/m", &l), -EINVAL);
	free(tl_capture_end());
	ck_assert_ptr_null(l);
}
END_TEST

static Suite *storelock_suite(void)
{
	Suite *s = suite_create("storelock");
	TCase *tc = tcase_create("storelock");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_reserved);
	tcase_add_test(tc, test_second_refused_naming_first);
	tcase_add_test(tc, test_going_holder_waited_for);
	tcase_add_test(tc, test_stale_file_taken_over);
	tcase_add_test(tc, test_dead_pid_not_named);
	tcase_add_test(tc, test_planted_names_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(storelock_suite());
}
