/*
 * check_ns.c - the namespace core: what a new entry looks like in the
 * store.  A file created for a read-only open is a valid empty
 * ciphertext at once, and a failed create can be undone; device nodes
 * pass through; new entries belong to their creator (struct kcred), with
 * the parent's group and set-group-ID bit when the parent is
 * set-group-ID, and keep their set-user-ID bits; directories nest beyond
 * PATH_MAX of store path.  Ownership and device
 * cases need root (CAP_CHOWN, CAP_MKNOD) and are skipped without it.
 * Also the inode's gate between writers and the chunks reads hand to the
 * kernel's cache (inode_share_begin), which needs a file made here.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../fs/kfs.h"
#include "../fs/kind.h"
#include "../fs/ns.h"
#include "testlib.h"

static struct tl_kfs t;

static void setup(void)
{
	tl_kfs_init(&t);
}

static void teardown(void)
{
	tl_kfs_release(&t);
}

static void lstat_in_chain(const char *name, struct stat *st)
{
	ck_assert_msg(fstatat(t.chainfd, name, st, AT_SYMLINK_NOFOLLOW) == 0,
		      "%s: %s", name, strerror(errno));
}

static bool root_or_skip(const char *what)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "SKIP %s: needs root\n", what);
	return false;
}

/* open(O_CREAT|O_RDONLY, 0444): nothing will ever write the file, so it
 * must be a readable empty file right away, with exactly that mode. */
START_TEST(test_create_readonly_is_valid_empty)
{
	struct kinode *in;
	struct kind_file f;
	struct stat st;
	uint8_t buf[16];
	size_t got = 99;
	bool created;

	ck_assert_int_eq(ns_create(t.fs, t.chain, "ro", 0444, O_RDONLY, NULL,
				   &created, NULL),
			 0);
	ck_assert(created);
	lstat_in_chain("ro", &st);
	ck_assert_int_eq(st.st_size, CF_HEADER_SIZE + CF_TAG_SIZE);
	ck_assert_int_eq(st.st_mode & 07777, 0444);
	ck_assert_int_eq(inode_lookup(t.fs, t.chain, "ro", &st, &in), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(inode_open_file(t.fs, in, O_RDONLY, created, NULL, &f),
			 0);
	ck_assert_int_eq(kfile_read(f.kf, buf, sizeof(buf), 0, &got, NULL), 0);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(inode_release_file(t.fs, in, false), 0);
	inode_forget(t.fs, in, 1);
}
END_TEST

/* A writable create stays empty for its writer's in-place session; an
 * existing name is opened unless O_EXCL; undo removes only what it made. */
START_TEST(test_create_writable_and_undo)
{
	struct stat st;
	bool created;

	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "w", 0, O_WRONLY, NULL, &created, NULL),
	    0);
	ck_assert(created);
	lstat_in_chain("w", &st);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_mode & 07777, 0);
	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "w", 0644, O_RDWR, NULL, &created, NULL),
	    0);
	ck_assert(!created);
	ck_assert_int_eq(ns_create(t.fs, t.chain, "w", 0644, O_RDWR | O_EXCL,
				   NULL, &created, NULL),
			 -EEXIST);
	ns_create_undo(t.fs, t.chain, "w", NULL);
	ck_assert_int_eq(faccessat(t.chainfd, "w", F_OK, AT_SYMLINK_NOFOLLOW),
			 -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_mknod_devices_pass_through)
{
	struct stat st;

	if (!root_or_skip("device nodes"))
		return;
	ck_assert_int_eq(ns_mknod(t.fs, t.chain, "cdev", S_IFCHR | 0640,
				  makedev(1, 3), NULL),
			 0);
	ck_assert_int_eq(ns_mknod(t.fs, t.chain, "bdev", S_IFBLK | 0600,
				  makedev(7, 0), NULL),
			 0);
	lstat_in_chain("cdev", &st);
	ck_assert(S_ISCHR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_uint_eq(st.st_rdev, makedev(1, 3));
	lstat_in_chain("bdev", &st);
	ck_assert(S_ISBLK(st.st_mode));
	ck_assert_uint_eq(st.st_rdev, makedev(7, 0));
}
END_TEST

static void assert_owner(const char *name, uid_t uid, gid_t gid)
{
	struct stat st;

	lstat_in_chain(name, &st);
	ck_assert_msg(st.st_uid == uid && st.st_gid == gid,
		      "%s: owner %u:%u, expected %u:%u", name,
		      (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned)uid,
		      (unsigned)gid);
}

/* Every kind of new entry belongs to its creator. */
START_TEST(test_new_entries_belong_to_creator)
{
	const struct kcred who = {65534, 65533};
	static const char *names[] = {"f", "r", "d", "p", "s", "l"};
	bool created;

	if (!root_or_skip("ownership"))
		return;
	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "f", 0644, O_RDWR, &who, &created, NULL),
	    0);
	ck_assert_int_eq(ns_mknod(t.fs, t.chain, "r", S_IFREG | 0600, 0, &who),
			 0);
	ck_assert_int_eq(ns_mkdir(t.fs, t.chain, "d", 0755, &who), 0);
	ck_assert_int_eq(ns_mknod(t.fs, t.chain, "p", S_IFIFO | 0644, 0, &who),
			 0);
	ck_assert_int_eq(ns_mknod(t.fs, t.chain, "s", S_IFSOCK | 0644, 0, &who),
			 0);
	ck_assert_int_eq(ns_symlink(t.fs, t.chain, "l", "f", &who), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_owner(names[i], who.uid, who.gid);
}
END_TEST

/* In a set-group-ID directory the group is the directory's and a new
 * directory inherits the bit; handing a file over (chown, which clears
 * set-user-ID bits) keeps the mode the kernel asked for. */
START_TEST(test_setgid_parent_and_setuid_modes)
{
	const struct kcred who = {65534, 65533};
	struct stat st;
	bool created;

	if (!root_or_skip("set-group-ID directories"))
		return;
	ck_assert_int_eq(fchown(t.chainfd, 0, 4242), 0);
	ck_assert_int_eq(fchmod(t.chainfd, 02777), 0);
	ck_assert_int_eq(ns_mkdir(t.fs, t.chain, "d", 0755, &who), 0);
	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "x", 06755, O_RDWR, &who, &created, NULL),
	    0);
	assert_owner("d", who.uid, 4242);
	assert_owner("x", who.uid, 4242);
	lstat_in_chain("d", &st);
	ck_assert_int_eq(st.st_mode & 07777, 02755);
	lstat_in_chain("x", &st);
	ck_assert_int_eq(st.st_mode & 07777, 06755);
}
END_TEST

/* A writable create keeps its file open for the open that follows: that
 * open writes through it (no second open of the name), the file still
 * belongs to its creator, and a read-only create keeps nothing. */
START_TEST(test_create_keeps_data_fd)
{
	const struct kcred who = {65534, 65533};
	struct kinode *in;
	struct kind_file f;
	struct stat st, fst;
	bool created;
	int fd = -1;

	if (!root_or_skip("ownership"))
		return;
	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "w", 0640, O_WRONLY, &who, &created, &fd),
	    0);
	ck_assert(created);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & (O_ACCMODE | O_NOATIME),
			 O_RDWR | O_NOATIME);
	ck_assert_int_eq(fstat(fd, &fst), 0);
	assert_owner("w", who.uid, who.gid);
	ck_assert_int_eq(inode_lookup(t.fs, t.chain, "w", &st, &in), 0);
	ck_assert(st.st_ino == fst.st_ino);
	ck_assert_int_eq(inode_open_file(t.fs, in, O_WRONLY, true, &fd, &f), 0);
	ck_assert_int_eq(fd, -1); /* taken */
	ck_assert_int_eq(kfile_write(f.kf, (const uint8_t *)"abc", 3, 0), 0);
	ck_assert_int_eq(inode_release_file(t.fs, in, true), 0);
	inode_forget(t.fs, in, 1);
	lstat_in_chain("w", &st);
	ck_assert_int_eq(st.st_size, CF_HEADER_SIZE + 3 + CF_TAG_SIZE);

	fd = -1;
	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "r", 0640, O_RDONLY, &who, &created, &fd),
	    0);
	ck_assert(created);
	ck_assert_int_eq(fd, -1);
}
END_TEST

/* The kept fd serves only the inode it was made for: when the name was
 * taken by another file meanwhile, the open opens that file. */
START_TEST(test_data_fd_of_another_file_is_refused)
{
	struct kinode *in;
	struct kind_file f;
	struct stat st;
	bool created;
	int fd = -1, keep;

	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "a", 0644, O_RDWR, NULL, &created, &fd),
	    0);
	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "b", 0644, O_RDWR, NULL, &created, NULL),
	    0);
	ck_assert_int_eq(inode_lookup(t.fs, t.chain, "b", &st, &in), 0);
	keep = fd;
	ck_assert_int_eq(inode_open_file(t.fs, in, O_RDWR, true, &fd, &f), 0);
	ck_assert_int_eq(fd, keep); /* not taken: the caller closes it */
	ck_assert_int_eq(kfile_write(f.kf, (const uint8_t *)"abc", 3, 0), 0);
	ck_assert_int_eq(inode_release_file(t.fs, in, true), 0);
	inode_forget(t.fs, in, 1);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 0); /* "a" untouched */
	lstat_in_chain("b", &st);
	ck_assert_int_eq(st.st_size, CF_HEADER_SIZE + 3 + CF_TAG_SIZE);
	close(fd);
}
END_TEST

/* A writer's open, in a thread of its own. */
struct opener {
	struct kinode *in;
	int r;
	atomic_bool opened;
};

static void *open_writer(void *arg)
{
	struct opener *o = arg;
	struct kind_file f;

	o->r = inode_open_file(t.fs, o->in, O_WRONLY, false, NULL, &f);
	atomic_store(&o->opened, true);
	if (!o->r)
		o->r = inode_release_file(t.fs, o->in, true);
	return NULL;
}

static void open_and_close_writer(struct kinode *in)
{
	struct kind_file f;

	ck_assert_int_eq(inode_open_file(t.fs, in, O_RDWR, false, NULL, &f), 0);
	ck_assert_int_eq(inode_release_file(t.fs, in, true), 0);
}

/* A read's chunk goes into the kernel's cache only when no writer had the
 * file open since the read began, and a writer's open waits for a store
 * in flight (inode.h): else a store of older bytes could land over what
 * the writer put in that cache. */
START_TEST(test_share_excludes_writers)
{
	struct opener o = {.r = -1};
	struct kinode *in;
	struct kind_file f;
	struct stat st;
	pthread_t th;
	bool created;
	unsigned gen;

	ck_assert_int_eq(
	    ns_create(t.fs, t.chain, "s", 0644, O_RDWR, NULL, &created, NULL),
	    0);
	ck_assert_int_eq(inode_lookup(t.fs, t.chain, "s", &st, &in), 0);
	ck_assert_int_eq(inode_open_file(t.fs, in, O_RDWR, true, NULL, &f), 0);
	ck_assert_int_eq(kfile_write(f.kf, (const uint8_t *)"abc", 3, 0), 0);
	ck_assert_int_eq(inode_release_file(t.fs, in, true), 0);

	gen = inode_data_gen(in);
	ck_assert(inode_share_begin(t.fs, in, gen));
	inode_share_end(t.fs, in);

	/* a writer came and went since the read began */
	open_and_close_writer(in);
	ck_assert(!inode_share_begin(t.fs, in, gen));

	/* a writer has it open */
	ck_assert_int_eq(inode_open_file(t.fs, in, O_RDWR, false, NULL, &f), 0);
	ck_assert(!inode_share_begin(t.fs, in, inode_data_gen(in)));
	ck_assert_int_eq(inode_release_file(t.fs, in, true), 0);

	/* a store in flight: a writer's open returns only after it */
	ck_assert(inode_share_begin(t.fs, in, inode_data_gen(in)));
	o.in = in;
	ck_assert_int_eq(pthread_create(&th, NULL, open_writer, &o), 0);
	usleep(200 * 1000);
	ck_assert_msg(!atomic_load(&o.opened),
		      "a writer opened the file during a store");
	inode_share_end(t.fs, in);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert(atomic_load(&o.opened));
	ck_assert_int_eq(o.r, 0);

	/* a reader's open does not wait */
	ck_assert(inode_share_begin(t.fs, in, inode_data_gen(in)));
	ck_assert_int_eq(inode_open_file(t.fs, in, O_RDONLY, false, NULL, &f),
			 0);
	ck_assert_int_eq(inode_release_file(t.fs, in, false), 0);
	inode_share_end(t.fs, in);

	/* at most KFS_SHARE_MAX stores at once in the mount */
	gen = inode_data_gen(in);
	for (int i = 0; i < KFS_SHARE_MAX; i++)
		ck_assert(inode_share_begin(t.fs, in, gen));
	ck_assert(!inode_share_begin(t.fs, in, gen));
	for (int i = 0; i < KFS_SHARE_MAX; i++)
		inode_share_end(t.fs, in);
	ck_assert(inode_share_begin(t.fs, in, gen));
	inode_share_end(t.fs, in);
	inode_forget(t.fs, in, 1);
}
END_TEST

/* kmsfs's own names stay reserved for every kind of entry. */
START_TEST(test_reserved_names_refused)
{
	bool created;

	ck_assert_int_eq(ns_create(t.fs, t.chain, "ENCRYPTION-INFO", 0644,
				   O_RDWR, NULL, &created, NULL),
			 -EPERM);
	ck_assert(!created);
	ck_assert_int_eq(ns_mknod(t.fs, t.chain, ".kmsfs-keycheck",
				  S_IFCHR | 0644, makedev(1, 3), NULL),
			 -EPERM);
}
END_TEST

/* Directories nest as deep as the kernel allows (PATH_MAX below the
 * mount point), although their store path is then longer than that. */
START_TEST(test_mkdir_beyond_path_max)
{
	struct kinode *dir = t.chain, *sub;
	char name[256];
	struct stat st;

	memset(name, 'd', 255);
	name[255] = '\0';
	for (int i = 0; i < 20; i++) {
		ck_assert_msg(ns_mkdir(t.fs, dir, name, 0755, NULL) == 0,
			      "mkdir at depth %d", i + 2);
		ck_assert_int_eq(inode_lookup(t.fs, dir, name, &st, &sub), 0);
		dir = sub; /* the kernel's reference keeps it */
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ns");
	TCase *tc = tcase_create("ns");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_create_readonly_is_valid_empty);
	tcase_add_test(tc, test_create_writable_and_undo);
	tcase_add_test(tc, test_mknod_devices_pass_through);
	tcase_add_test(tc, test_new_entries_belong_to_creator);
	tcase_add_test(tc, test_setgid_parent_and_setuid_modes);
	tcase_add_test(tc, test_create_keeps_data_fd);
	tcase_add_test(tc, test_data_fd_of_another_file_is_refused);
	tcase_add_test(tc, test_share_excludes_writers);
	tcase_add_test(tc, test_reserved_names_refused);
	tcase_add_test(tc, test_mkdir_beyond_path_max);
	suite_add_tcase(s, tc);
	return tl_run(s);
}
