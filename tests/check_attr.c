/*
 * check_attr.c - attribute changes: a truncation (through an open file
 * or by name) updates mtime and ctime at once, also when the size stays;
 * sizes past KFILE_MAX_SIZE fail with EFBIG and extensions that cannot
 * fit in the store fail with ENOSPC, both before anything is written.
 * Set-ID bits and file capabilities are found and removed for writes
 * that bypass the kernel's page cache as the kernel removes them.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "../fs/attr.h"
#include "../fs/kfs.h"
#include "../fs/ns.h"
#include "testlib.h"

static struct tl_kfs t;
static struct kinode *in;
static struct kind_file f;
static struct kfile *kf; /* f.kf */

/* A file "f" with 100 bytes, open read-write through kf. */
static void setup(void)
{
	static const uint8_t data[100] = {1, 2, 3};
	struct stat st;
	bool created;

	tl_kfs_init(&t);
	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "f", 0644, O_RDWR, NULL, &created, NULL),
	    0);
	ck_assert_int_eq(inode_lookup(t.fs, t.chain, "f", &st, &in), 0);
	ck_assert_int_eq(inode_open_file(t.fs, in, O_RDWR, true, NULL, &f), 0);
	kf = f.kf;
	ck_assert_int_eq(kfile_write(kf, data, sizeof(data), 0), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
}

static void teardown(void)
{
	inode_release_file(t.fs, in, true);
	inode_forget(t.fs, in, 1);
	tl_kfs_release(&t);
}

/* Put the backing file's mtime an hour back. */
static void age(void)
{
	struct timespec tv[2] = {{0, UTIME_OMIT}, {time(NULL) - 3600, 0}};

	ck_assert_int_eq(utimensat(t.chainfd, "f", tv, AT_SYMLINK_NOFOLLOW), 0);
}

static void assert_fresh_times(void)
{
	struct stat st;
	time_t now = time(NULL);

	ck_assert_int_eq(inode_stat(t.fs, in, &st), 0);
	ck_assert_msg(st.st_mtime >= now - 5 && st.st_ctime >= now - 5,
		      "mtime %ld ctime %ld, now %ld", (long)st.st_mtime,
		      (long)st.st_ctime, (long)now);
}

START_TEST(test_ftruncate_updates_times_now)
{
	struct stat st;

	age();
	ck_assert_int_eq(attr_truncate(t.fs, in, &f, 10), 0);
	assert_fresh_times();
	ck_assert_int_eq(inode_stat(t.fs, in, &st), 0);
	ck_assert_int_eq(st.st_size, 10);
	/* also when the size stays, as on ext4 */
	ck_assert_int_eq(kfile_commit(kf), 0);
	age();
	ck_assert_int_eq(attr_truncate(t.fs, in, &f, 10), 0);
	assert_fresh_times();
}
END_TEST

START_TEST(test_truncate_by_name_updates_times)
{
	struct kattr a = {.valid = KATTR_SIZE, .size = 7};

	age();
	ck_assert_int_eq(attr_set(t.fs, in, NULL, &a), 0);
	assert_fresh_times();
}
END_TEST

/* An explicit mtime in the same request wins. */
START_TEST(test_truncate_with_explicit_mtime)
{
	struct kattr a = {.valid = KATTR_SIZE | KATTR_MTIME, .size = 3};
	struct stat st;

	a.mtime.tv_sec = 1000000000;
	ck_assert_int_eq(attr_set(t.fs, in, &f, &a), 0);
	ck_assert_int_eq(inode_stat(t.fs, in, &st), 0);
	ck_assert_int_eq(st.st_mtime, 1000000000);
}
END_TEST

/* chown(-1, -1) changes nothing but ctime, as on ext4. */
START_TEST(test_empty_change_updates_ctime)
{
	struct kattr a = {.valid = 0};
	struct stat st, after;

	ck_assert_int_eq(inode_stat(t.fs, in, &st), 0);
	usleep(20000); /* past the backing file system's clock granularity */
	ck_assert_int_eq(attr_set(t.fs, in, NULL, &a), 0);
	ck_assert_int_eq(inode_stat(t.fs, in, &after), 0);
	ck_assert_msg(after.st_ctim.tv_sec > st.st_ctim.tv_sec ||
			  (after.st_ctim.tv_sec == st.st_ctim.tv_sec &&
			   after.st_ctim.tv_nsec > st.st_ctim.tv_nsec),
		      "ctime unchanged");
	ck_assert_int_eq(after.st_mtim.tv_sec, st.st_mtim.tv_sec);
	ck_assert_int_eq(after.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
}
END_TEST

static off_t backing_size(void)
{
	struct stat st;

	ck_assert_int_eq(fstatat(t.chainfd, "f", &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_size;
}

START_TEST(test_huge_sizes_efbig)
{
	static const uint8_t b = 'x';
	off_t before = backing_size();
	struct stat st;

	ck_assert_int_eq(attr_truncate(t.fs, in, &f, 999999999999999ULL),
			 -EFBIG);
	ck_assert_int_eq(attr_truncate(t.fs, in, &f, KFILE_MAX_SIZE + 1),
			 -EFBIG);
	ck_assert_int_eq(kfile_write(kf, &b, 1, KFILE_MAX_SIZE), -EFBIG);
	ck_assert_int_eq(kfile_write(kf, &b, 1, UINT64_MAX), -EFBIG);
	ck_assert_int_eq(inode_stat(t.fs, in, &st), 0);
	ck_assert_int_eq(st.st_size, 100);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(backing_size(), before);
}
END_TEST

/* An extension whose ciphertext exceeds the free space fails at once. */
START_TEST(test_extension_beyond_free_space_enospc)
{
	static const uint8_t b = 'x';
	off_t before = backing_size();
	struct statvfs sv;
	uint64_t beyond;

	ck_assert_int_eq(fstatvfs(t.chainfd, &sv), 0);
	beyond = (uint64_t)sv.f_bfree * sv.f_frsize * 2 + (1ULL << 30);
	if (beyond > KFILE_MAX_SIZE) {
		fprintf(stderr, "SKIP ENOSPC check: the store has more than "
				"8 TiB free\n");
		return;
	}
	ck_assert_int_eq(attr_truncate(t.fs, in, &f, beyond), -ENOSPC);
	ck_assert_int_eq(kfile_write(kf, &b, 1, beyond), -ENOSPC);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(backing_size(), before);
}
END_TEST

static mode_t backing_mode(void)
{
	struct stat st;

	ck_assert_int_eq(fstatat(t.chainfd, "f", &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_mode & 07777;
}

static void set_mode(mode_t mode)
{
	struct kattr a = {.valid = KATTR_MODE, .mode = mode};

	ck_assert_int_eq(attr_set(t.fs, in, NULL, &a), 0);
}

START_TEST(test_privs_found_and_flagged)
{
	ck_assert_int_eq(attr_privs(in), 0);
	ck_assert(!atomic_load(&in->privs));
	set_mode(02644); /* set-group-ID without group execute counts */
	ck_assert(atomic_load(&in->privs));
	ck_assert_int_eq(attr_privs(in), 1);
	set_mode(0644);
	ck_assert_int_eq(attr_privs(in), 0);
	set_mode(04755);
	ck_assert_int_eq(attr_privs(in), 1);
}
END_TEST

/* What a write by (uid, groups) leaves of mode; the file's group is the
 * test's own. */
static mode_t after_write(mode_t mode, uid_t uid, const gid_t *groups, size_t n)
{
	set_mode(mode);
	ck_assert_int_eq(attr_kill_privs(in, uid, groups, n), 0);
	return backing_mode();
}

START_TEST(test_kill_privs_as_the_kernel)
{
	gid_t mine = getegid(), other[] = {mine + 1, mine + 2};
	gid_t with[] = {mine + 1, mine};

	/* root stands for CAP_FSETID: keeps both */
	ck_assert_uint_eq(after_write(06755, 0, other, 2), 06755);
	ck_assert_uint_eq(after_write(04755, 1000, &mine, 1), 0755);
	/* set-group-ID with group execute goes for any writer */
	ck_assert_uint_eq(after_write(02775, 1000, &mine, 1), 0775);
	/* without group execute only for a writer outside the group */
	ck_assert_uint_eq(after_write(02764, 1000, with, 2), 02764);
	ck_assert_uint_eq(after_write(02764, 1000, other, 2), 0764);
	ck_assert_uint_eq(after_write(0644, 1000, other, 2), 0644);
}
END_TEST

START_TEST(test_kill_privs_removes_capabilities)
{
	/* VFS_CAP_REVISION_2, cap_net_bind_service permitted */
	static const uint32_t caps[5] = {0x02000000, 1u << 10, 0, 0, 0};
	char proc[64];
	int fd = openat(t.chainfd, "f", O_RDONLY);

	ck_assert_int_ge(fd, 0);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (fsetxattr(fd, "security.capability", caps, sizeof(caps), 0) < 0) {
		fprintf(stderr, "SKIP capabilities: %s\n", strerror(errno));
		close(fd);
		return;
	}
	ck_assert_int_eq(attr_privs(in), 1);
	/* also for root */
	ck_assert_int_eq(attr_kill_privs(in, 0, NULL, 0), 0);
	ck_assert_int_lt(fgetxattr(fd, "security.capability", NULL, 0), 0);
	ck_assert_int_eq(errno, ENODATA);
	ck_assert_int_eq(attr_privs(in), 0);
	/* and through attr_setxattr, which flags the inode */
	atomic_store(&in->privs, false);
	ck_assert_int_eq(
	    attr_setxattr(in, "security.capability", caps, sizeof(caps), 0), 0);
	ck_assert(atomic_load(&in->privs));
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("attr");
	TCase *tc = tcase_create("attr");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ftruncate_updates_times_now);
	tcase_add_test(tc, test_truncate_by_name_updates_times);
	tcase_add_test(tc, test_truncate_with_explicit_mtime);
	tcase_add_test(tc, test_empty_change_updates_ctime);
	tcase_add_test(tc, test_huge_sizes_efbig);
	tcase_add_test(tc, test_extension_beyond_free_space_enospc);
	tcase_add_test(tc, test_privs_found_and_flagged);
	tcase_add_test(tc, test_kill_privs_as_the_kernel);
	tcase_add_test(tc, test_kill_privs_removes_capabilities);
	suite_add_tcase(s, tc);
	return tl_run(s);
}
