/*
 * check_layout.c - layout profiles: which chain holds a path (root files,
 * chain directories, deep entries), chain arguments as users type them,
 * listing a store's chains (the collection root included), LATEST, and
 * the reserved names.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../fs/layout.h"
#include "../keystore/keystore.h"
#include "testlib.h"

static char *dir;
static int dirfd_;

static void setup(void)
{
	dir = tl_tmpdir_new();
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
}

static void teardown(void)
{
	close(dirfd_);
	tl_tmpdir_remove(dir);
}

static const char *chain_of(const char *path, bool is_dir)
{
	static char out[256];

	ck_assert_int_eq(
	    layout_chain_of(layout_find(NULL), path, is_dir, out, sizeof(out)),
	    0);
	return out;
}

START_TEST(test_profiles)
{
	const struct layout_profile *p = layout_find(NULL);

	ck_assert_str_eq(layout_name(p), "toplevel");
	ck_assert_ptr_eq(layout_find("toplevel"), p);
	ck_assert_ptr_null(layout_find("nope"));
	ck_assert_uint_eq(layout_depth(p), 1);
	ck_assert_ptr_nonnull(strstr(layout_known(), "toplevel"));
}
END_TEST

START_TEST(test_toplevel_chain_of)
{
	const struct layout_profile *p = layout_find(NULL);
	char out[8];

	ck_assert_str_eq(chain_of("", true), "");
	ck_assert_str_eq(chain_of("README", false), "");
	ck_assert_str_eq(chain_of("nightly", true), "nightly");
	ck_assert_str_eq(chain_of("nightly/db.dump", false), "nightly");
	ck_assert_str_eq(chain_of("nightly/a/b/c", true), "nightly");
	ck_assert(layout_is_chain_dir(p, ""));
	ck_assert(layout_is_chain_dir(p, "nightly"));
	ck_assert(!layout_is_chain_dir(p, "nightly/sub"));
	ck_assert_int_eq(layout_chain_of(p, "a/../b", false, out, sizeof(out)),
			 -EINVAL);
	ck_assert_int_eq(layout_chain_of(p, "a//b", false, out, sizeof(out)),
			 -EINVAL);
	ck_assert_int_eq(layout_chain_of(p, "/a", false, out, sizeof(out)),
			 -EINVAL);
	ck_assert_int_eq(
	    layout_chain_of(p, "averyveryverylongname", true, out, sizeof(out)),
	    -ENAMETOOLONG);
}
END_TEST

START_TEST(test_chain_arg)
{
	const struct layout_profile *p = layout_find(NULL);
	char out[64];

	ck_assert_int_eq(layout_chain_arg(p, "nightly", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "nightly");
	ck_assert_int_eq(layout_chain_arg(p, "./nightly/", out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "nightly");
	/* the collection root is a chain too (its files need a key) */
	ck_assert_int_eq(layout_chain_arg(p, ".", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(layout_chain_arg(p, "/", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(layout_chain_arg(p, "a/b", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(layout_chain_arg(p, "..", out, sizeof(out)), -EINVAL);
}
END_TEST

static void touch(const char *rel, time_t mtime)
{
	char path[512];
	struct timespec tv[2] = {{mtime, 0}, {mtime, 0}};

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	ck_assert_int_eq(tl_write_file(path, "x", 1), 0);
	ck_assert_int_eq(utimensat(AT_FDCWD, path, tv, 0), 0);
}

static void mkd(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	ck_assert_int_eq(mkdir(path, 0700), 0);
}

START_TEST(test_chains_and_latest)
{
	const struct layout_profile *p = layout_find(NULL);
	char **l, out[64];

	ck_assert_int_eq(layout_chains(p, dirfd_, &l), 0);
	ck_assert_ptr_null(l[0]); /* empty store */
	layout_list_free(l);
	ck_assert_int_eq(layout_latest(p, dirfd_, out, sizeof(out)), -ENOENT);

	mkd("b");
	mkd("a");
	mkd("plain"); /* no ENCRYPTION-INFO: not a chain */
	mkd("a/sub");
	touch("a/" KS_ENCINFO_NAME, 2000);
	touch("b/" KS_ENCINFO_NAME, 1000);
	touch("a/sub/" KS_ENCINFO_NAME, 3000); /* not a chain directory */
	touch(KS_ENCINFO_NAME, 4000);	       /* the root's own chain */
	ck_assert_int_eq(layout_chains(p, dirfd_, &l), 0);
	ck_assert_str_eq(l[0], "");
	ck_assert_str_eq(l[1], "a");
	ck_assert_str_eq(l[2], "b");
	ck_assert_ptr_null(l[3]);
	layout_list_free(l);
	/* LATEST is a backup, never the root's chain */
	ck_assert_int_eq(layout_latest(p, dirfd_, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a");
}
END_TEST

static const char *crdb_chain(const char *path, bool is_dir)
{
	static char out[256];

	ck_assert_int_eq(layout_chain_of(layout_find("crdb"), path, is_dir, out,
					 sizeof(out)),
			 0);
	return out;
}

START_TEST(test_crdb_chain_of)
{
	const struct layout_profile *p = layout_find("crdb");
	const char *full = "2023/07/14-211406.03";

	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(crdb_chain("LATEST", false), "");
	ck_assert_str_eq(crdb_chain("LATEST123.tmp", false), "");
	ck_assert_str_eq(crdb_chain("metadata/latest/LATEST-ff", false), "");
	ck_assert_str_eq(crdb_chain("2023", true), "");
	ck_assert_str_eq(crdb_chain("2023/07", true), "");
	ck_assert_str_eq(crdb_chain(full, true), full);
	ck_assert_str_eq(
	    crdb_chain("2023/07/14-211406.03/BACKUP_MANIFEST", false), full);
	ck_assert_str_eq(crdb_chain("2023/07/14-211406.03/data/1.sst", false),
			 full);
	/* pre-22.1 incrementals inside the full backup's directory */
	ck_assert_str_eq(
	    crdb_chain("2023/07/14-211406.03/20230714/221406.03/data/2.sst",
		       false),
	    full);
	/* 22.1+ incrementals, with and without v25.2's start suffix */
	ck_assert_str_eq(crdb_chain("incrementals", true), "");
	ck_assert_str_eq(crdb_chain("incrementals/2023/07", true), "");
	ck_assert_str_eq(crdb_chain("incrementals/2023/07/14-211406.03", true),
			 full);
	ck_assert_str_eq(
	    crdb_chain("incrementals/2023/07/14-211406.03/20230714/"
		       "221406.03-20230714-211406.03/BACKUP_MANIFEST",
		       false),
	    full);
	/* a user-named full backup directory */
	ck_assert_str_eq(crdb_chain("mybackup", true), "mybackup");
	ck_assert_str_eq(crdb_chain("mybackup/data/1.sst", false), "mybackup");
	ck_assert_str_eq(crdb_chain("incrementals/mybackup/20230714/x", true),
			 "mybackup");
	ck_assert_str_eq(crdb_chain("README", false), "");
	ck_assert(layout_is_chain_dir(p, full));
	ck_assert(!layout_is_chain_dir(p, "2023/07"));
	ck_assert(!layout_is_chain_dir(p, "incrementals/2023/07/14-211406.03"));
}
END_TEST

START_TEST(test_file_kinds)
{
	const struct layout_profile *c = layout_find("crdb"),
				    *t = layout_find(NULL);

	ck_assert_int_eq(layout_file_kind(t, "LATEST"), LAYOUT_ENCRYPTED);
	ck_assert_int_eq(layout_file_kind(t, "c/BACKUP-LOCK-1"),
			 LAYOUT_ENCRYPTED);
	ck_assert_int_eq(layout_file_kind(c, "LATEST"), LAYOUT_PLAINTEXT);
	ck_assert_int_eq(layout_file_kind(c, "LATEST1234.tmp"),
			 LAYOUT_PLAINTEXT);
	ck_assert_int_eq(layout_file_kind(c, "metadata/latest/LATEST-ab"),
			 LAYOUT_PLAINTEXT);
	ck_assert_int_eq(layout_file_kind(c, "metadata/index/a/b_metadata.pb"),
			 LAYOUT_PLAINTEXT);
	ck_assert_int_eq(
	    layout_file_kind(c, "2023/07/14-211406.03/BACKUP-LOCK-77"),
	    LAYOUT_PLAINTEXT);
	ck_assert_int_eq(
	    layout_file_kind(c, "2023/07/14-211406.03/BACKUP_MANIFEST"),
	    LAYOUT_ENCRYPTED);
	ck_assert_int_eq(
	    layout_file_kind(c, "2023/07/14-211406.03/BACKUP_MANIFEST55.tmp"),
	    LAYOUT_ENCRYPTED);
	ck_assert_int_eq(
	    layout_file_kind(c,
			     "2023/07/14-211406.03/BACKUP_MANIFEST-CHECKSUM"),
	    LAYOUT_CHECKSUM);
	ck_assert_int_eq(
	    layout_file_kind(
		c, "2023/07/14-211406.03/progress/BACKUP-CHECKPOINT-ab-CHECKSUM"
		   "123.tmp"),
	    LAYOUT_CHECKSUM);
	ck_assert_int_eq(layout_file_kind(c, "2023/07/14-211406.03/x.tmp"),
			 LAYOUT_ENCRYPTED);
}
END_TEST

START_TEST(test_checksummed)
{
	char x[64];

	ck_assert(!layout_has_kinds(layout_find("toplevel")));
	ck_assert(layout_has_kinds(layout_find("crdb")));
	ck_assert_int_eq(
	    layout_checksummed("BACKUP_MANIFEST-CHECKSUM", x, sizeof(x)), 0);
	ck_assert_str_eq(x, "BACKUP_MANIFEST");
	/* CockroachDB's temporary of a checksum covers the final X */
	ck_assert_int_eq(layout_checksummed("BACKUP-CHECKPOINT-a9-CHECKSUM"
					    "8123456.tmp",
					    x, sizeof(x)),
			 0);
	ck_assert_str_eq(x, "BACKUP-CHECKPOINT-a9");
	ck_assert_int_eq(layout_checksummed("-CHECKSUM", x, sizeof(x)),
			 -EINVAL);
	ck_assert_int_eq(layout_checksummed("X-CHECKSUM.tmp", x, sizeof(x)),
			 -EINVAL);
	ck_assert_int_eq(layout_checksummed("BACKUP_MANIFEST", x, sizeof(x)),
			 -EINVAL);
	ck_assert_int_eq(layout_checksummed("a/X-CHECKSUM", x, sizeof(x)),
			 -EINVAL);
	ck_assert_int_eq(layout_checksummed("XYZ-CHECKSUM", x, 3),
			 -ENAMETOOLONG);
}
END_TEST

START_TEST(test_crdb_sample_collection)
{
	char *coll = tl_shared_path("vectors/crdb-collection/collection");
	const struct layout_profile *p;
	char out[64], **l;
	int fd;

	fd = open(coll, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	p = layout_detect(fd);
	ck_assert_str_eq(layout_name(p), "crdb");
	ck_assert_str_eq(layout_name(layout_detect(dirfd_)), "toplevel");
	ck_assert_int_eq(layout_chains(p, fd, &l), 0);
	ck_assert_str_eq(l[0], "2023/07/14-211406.03");
	ck_assert_ptr_null(l[1]);
	layout_list_free(l);
	ck_assert_int_eq(layout_latest(p, fd, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "2023/07/14-211406.03");
	close(fd);
	free(coll);
}
END_TEST

START_TEST(test_reserved_names)
{
	ck_assert(layout_name_reserved("ENCRYPTION-INFO"));
	ck_assert(layout_name_reserved("ENCRYPTION-INFO-2"));
	ck_assert(layout_name_reserved(".kmsfs-keycheck"));
	ck_assert(layout_name_reserved(".kmsfs-tmp-0011223344556677"));
	ck_assert(!layout_name_reserved("encryption-info"));
	ck_assert(!layout_name_reserved("BACKUP_MANIFEST"));
	ck_assert(!layout_name_reserved(".kmsfs"));
}
END_TEST

static Suite *layout_suite(void)
{
	Suite *s = suite_create("layout");
	TCase *tc = tcase_create("layout");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_profiles);
	tcase_add_test(tc, test_toplevel_chain_of);
	tcase_add_test(tc, test_chain_arg);
	tcase_add_test(tc, test_chains_and_latest);
	tcase_add_test(tc, test_crdb_chain_of);
	tcase_add_test(tc, test_file_kinds);
	tcase_add_test(tc, test_checksummed);
	tl_add_shared_test(tc, test_crdb_sample_collection,
			   "vectors/crdb-collection/collection");
	tcase_add_test(tc, test_reserved_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(layout_suite());
}
