/*
 * check_kind.c - file kinds through the FUSE-free core, as the mount uses
 * it (ns_*, inode_*, kind_file_*) on a crdb store: plaintext files stay
 * plaintext (and need no key), encrypted files are sealed, checksum files
 * hold SHA-256(stored X)[:4] on the store and SHA-256(plaintext X)[:4]
 * through the mount whichever of X and X-CHECKSUM comes first, through
 * CockroachDB's <final><digits>.tmp + rename or written in place, across
 * rewrites, renames and unlinks of X; renames and links that would change
 * a kind fail with EXDEV; kmsfs cat shows what the mount shows.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fs/fs.h"
#include "../fs/kfs.h"
#include "../fs/kind.h"
#include "../fs/ns.h"
#include "testlib.h"

#define PASS "correct horse battery staple"
#define FULL "2025/07/30-120000.00"

static char *dir;
static struct ks_keyring *ring;
static struct kfs *fs;

static void setup(void)
{
	dir = tl_tmpdir_new();
	ck_assert_int_eq(ks_keyring_new(&ring), 0);
	ck_assert_int_eq(ks_keyring_set_passphrase(ring, (const uint8_t *)PASS,
						   strlen(PASS)),
			 0);
	ck_assert_int_eq(kfs_new(dir, ring, layout_find("crdb"), &fs), 0);
}

static void teardown(void)
{
	kfs_free(fs);
	ks_keyring_free(ring);
	tl_tmpdir_remove(dir);
}

static struct kinode *lk(struct kinode *parent, const char *name)
{
	struct kinode *in;
	struct stat st;

	ck_assert_int_eq(inode_lookup(fs, parent, name, &st, &in), 0);
	return in;
}

/* mkdir -p through the mount; the directory's inode. */
static struct kinode *mkdirs(const char *path)
{
	struct kinode *d = fs->root;
	char buf[256], *save = NULL, *part;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		int r = ns_mkdir(fs, d, part, 0755, NULL);

		ck_assert(r == 0 || r == -EEXIST);
		d = lk(d, part);
	}
	return d;
}

/* Create (or replace the content of) name in d, as open(O_CREAT|O_TRUNC),
 * write, close. */
static void put(struct kinode *d, const char *name, const void *data,
		size_t len)
{
	struct kind_file f;
	struct kinode *in;
	bool created;

	ck_assert_int_eq(
	    ns_create(fs, d, name, 0644, O_RDWR, NULL, &created, NULL), 0);
	in = lk(d, name);
	ck_assert_int_eq(inode_open_file(fs, in, O_RDWR, false, NULL, &f), 0);
	ck_assert_int_eq(kind_file_truncate(&f, 0), 0);
	ck_assert_int_eq(kind_file_write(&f, data, len, 0), 0);
	ck_assert_int_eq(kind_file_sync(fs, in, &f, false), 0);
	ck_assert_int_eq(inode_release_file(fs, in, true), 0);
}

/* CockroachDB's local storage: <name><digits>.tmp, then a rename. */
static void crdb_put(struct kinode *d, const char *name, const void *data,
		     size_t len)
{
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s8123456.tmp", name);
	put(d, tmp, data, len);
	ck_assert_int_eq(ns_rename(fs, d, tmp, d, name, 0), 0);
}

/* What the mount shows of name in d. */
static size_t get(struct kinode *d, const char *name, uint8_t *buf, size_t cap)
{
	struct kinode *in = lk(d, name);
	struct kind_file f;
	size_t got;

	ck_assert_int_eq(inode_open_file(fs, in, O_RDONLY, false, NULL, &f), 0);
	ck_assert_int_eq(kind_file_read(&f, buf, cap, 0, &got, NULL), 0);
	ck_assert_int_eq(inode_release_file(fs, in, false), 0);
	return got;
}

/* The backing store's bytes of rel. */
static size_t stored(const char *rel, uint8_t *buf, size_t cap)
{
	char path[512];
	uint8_t *d;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	ck_assert_int_eq(tl_read_file(path, &d, &len), 0);
	ck_assert_uint_le(len, cap);
	memcpy(buf, d, len);
	free(d);
	return len;
}

static void ck4(const void *data, size_t len, uint8_t out[4])
{
	char hex[TL_SHA256_HEX_SIZE];

	tl_sha256_hex(data, len, hex);
	hex[8] = '\0';
	ck_assert_int_eq(tl_hex_decode(hex, out, 4), 4);
}

/* The store's rel-CHECKSUM must be SHA-256(stored rel)[:4] and the
 * mount's SHA-256(plain)[:4]. */
static void assert_checksum_right(struct kinode *d, const char *name,
				  const char *rel, const void *plain,
				  size_t len)
{
	static uint8_t buf[1 << 18];
	uint8_t want[4], c[8];
	char ckname[256], ckrel[512];
	size_t n;

	snprintf(ckname, sizeof(ckname), "%s-CHECKSUM", name);
	snprintf(ckrel, sizeof(ckrel), "%s-CHECKSUM", rel);
	n = stored(rel, buf, sizeof(buf));
	ck_assert_uint_gt(n, len); /* encrypted */
	ck4(buf, n, want);
	ck_assert_uint_eq(stored(ckrel, c, sizeof(c)), 4);
	ck_assert_mem_eq(c, want, 4);
	ck4(plain, len, want);
	ck_assert_uint_eq(get(d, ckname, c, sizeof(c)), 4);
	ck_assert_mem_eq(c, want, 4);
}

static const char manifest[] = "\x1f\x8b\x08 a gzipped manifest, roughly";
static const char other[] = "\x1f\x8b\x08 another manifest";

START_TEST(test_kinds_stored)
{
	struct kinode *full = mkdirs(FULL), *data, *latest;
	uint8_t buf[256];
	struct stat st;
	char path[512];

	snprintf(path, sizeof(path), "%s/" FULL "/ENCRYPTION-INFO", dir);
	ck_assert_int_eq(access(path, F_OK), 0); /* key before any file */
	put(full, "BACKUP-LOCK-77", "lock", 4);
	ck_assert_uint_eq(stored(FULL "/BACKUP-LOCK-77", buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "lock", 4);
	data = mkdirs(FULL "/data");
	put(data, "1.sst", "sst bytes", 9);
	ck_assert_uint_eq(stored(FULL "/data/1.sst", buf, sizeof(buf)),
			  20 + 9 + 16);
	ck_assert_mem_eq(buf, "encrypt\x02", 8);
	ck_assert_uint_eq(get(data, "1.sst", buf, sizeof(buf)), 9);
	/* outside every chain: plaintext, and no key for the root */
	latest = mkdirs("metadata/latest");
	crdb_put(latest, "LATEST-ffee", "/" FULL, strlen(FULL) + 1);
	ck_assert_uint_eq(
	    stored("metadata/latest/LATEST-ffee", buf, sizeof(buf)),
	    strlen(FULL) + 1);
	snprintf(path, sizeof(path), "%s/ENCRYPTION-INFO", dir);
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_int_eq(inode_stat(fs, lk(latest, "LATEST-ffee"), &st), 0);
	ck_assert_int_eq(st.st_size, strlen(FULL) + 1);
	ck_assert_int_eq(inode_stat(fs, lk(data, "1.sst"), &st), 0);
	ck_assert_int_eq(st.st_size, 9);
}
END_TEST

START_TEST(test_crdb_order)
{
	struct kinode *full = mkdirs(FULL);
	uint8_t p[4];

	crdb_put(full, "BACKUP_MANIFEST", manifest, sizeof(manifest));
	ck4(manifest, sizeof(manifest), p);
	crdb_put(full, "BACKUP_MANIFEST-CHECKSUM", p, 4);
	assert_checksum_right(full, "BACKUP_MANIFEST", FULL "/BACKUP_MANIFEST",
			      manifest, sizeof(manifest));
}
END_TEST

START_TEST(test_checksum_first)
{
	struct kinode *full = mkdirs(FULL), *prog;
	uint8_t p[4];

	/* through temporaries and renames */
	ck4(manifest, sizeof(manifest), p);
	crdb_put(full, "BACKUP_METADATA-CHECKSUM", p, 4);
	crdb_put(full, "BACKUP_METADATA", manifest, sizeof(manifest));
	assert_checksum_right(full, "BACKUP_METADATA", FULL "/BACKUP_METADATA",
			      manifest, sizeof(manifest));
	/* X written in place after its checksum */
	prog = mkdirs(FULL "/progress");
	put(prog, "BACKUP-CHECKPOINT-a1-CHECKSUM", p, 4);
	put(prog, "BACKUP-CHECKPOINT-a1", manifest, sizeof(manifest));
	assert_checksum_right(prog, "BACKUP-CHECKPOINT-a1",
			      FULL "/progress/BACKUP-CHECKPOINT-a1", manifest,
			      sizeof(manifest));
}
END_TEST

START_TEST(test_rewrites)
{
	struct kinode *full = mkdirs(FULL), *in;
	struct kind_file f;
	uint8_t p[4];

	ck4(manifest, sizeof(manifest), p);
	crdb_put(full, "BACKUP-CHECKPOINT", manifest, sizeof(manifest));
	crdb_put(full, "BACKUP-CHECKPOINT-CHECKSUM", p, 4);
	/* the same content renamed over it (a new IV: new stored bytes) */
	crdb_put(full, "BACKUP-CHECKPOINT", manifest, sizeof(manifest));
	assert_checksum_right(full, "BACKUP-CHECKPOINT",
			      FULL "/BACKUP-CHECKPOINT", manifest,
			      sizeof(manifest));
	/* rewritten in place (a re-encryption renamed over it) */
	in = lk(full, "BACKUP-CHECKPOINT");
	ck_assert_int_eq(inode_open_file(fs, in, O_RDWR, false, NULL, &f), 0);
	ck_assert_int_eq(kind_file_write(&f, (const uint8_t *)manifest, 4, 0),
			 0);
	ck_assert_int_eq(kind_file_sync(fs, in, &f, true), 0);
	ck_assert_int_eq(inode_release_file(fs, in, true), 0);
	assert_checksum_right(full, "BACKUP-CHECKPOINT",
			      FULL "/BACKUP-CHECKPOINT", manifest,
			      sizeof(manifest));
	/* new content, then its checksum */
	crdb_put(full, "BACKUP-CHECKPOINT", other, sizeof(other));
	ck4(other, sizeof(other), p);
	crdb_put(full, "BACKUP-CHECKPOINT-CHECKSUM", p, 4);
	assert_checksum_right(full, "BACKUP-CHECKPOINT",
			      FULL "/BACKUP-CHECKPOINT", other, sizeof(other));
}
END_TEST

START_TEST(test_mismatch_kept)
{
	struct kinode *full = mkdirs(FULL);
	uint8_t p[4], c[8], wrong[4] = {1, 2, 3, 4};

	crdb_put(full, "BACKUP_MANIFEST", manifest, sizeof(manifest));
	crdb_put(full, "BACKUP_MANIFEST-CHECKSUM", wrong, 4);
	stored(FULL "/BACKUP_MANIFEST-CHECKSUM", c, sizeof(c));
	ck_assert_mem_eq(c, wrong, 4);
	get(full, "BACKUP_MANIFEST-CHECKSUM", c, sizeof(c));
	ck_assert_mem_eq(c, wrong, 4);
	/* X goes: the checksum keeps showing what it showed */
	ck4(manifest, sizeof(manifest), p);
	crdb_put(full, "BACKUP_MANIFEST-CHECKSUM", p, 4);
	ck_assert_int_eq(ns_unlink(fs, full, "BACKUP_MANIFEST"), 0);
	stored(FULL "/BACKUP_MANIFEST-CHECKSUM", c, sizeof(c));
	ck_assert_mem_eq(c, p, 4);
	get(full, "BACKUP_MANIFEST-CHECKSUM", c, sizeof(c));
	ck_assert_mem_eq(c, p, 4);
}
END_TEST

START_TEST(test_checksum_renamed)
{
	struct kinode *full = mkdirs(FULL);
	uint8_t p[4], c[8];

	crdb_put(full, "A", manifest, sizeof(manifest));
	crdb_put(full, "B", other, sizeof(other));
	ck4(manifest, sizeof(manifest), p);
	crdb_put(full, "A-CHECKSUM", p, 4);
	/* moved to cover B: shows the same, a mismatch on both sides */
	ck_assert_int_eq(
	    ns_rename(fs, full, "A-CHECKSUM", full, "B-CHECKSUM", 0), 0);
	stored(FULL "/B-CHECKSUM", c, sizeof(c));
	ck_assert_mem_eq(c, p, 4);
	ck_assert_int_eq(
	    ns_rename(fs, full, "B-CHECKSUM", full, "A-CHECKSUM", 0), 0);
	assert_checksum_right(full, "A", FULL "/A", manifest, sizeof(manifest));
	/* B renamed over A: A's checksum now covers B's bytes */
	ck_assert_int_eq(ns_rename(fs, full, "B", full, "A", 0), 0);
	stored(FULL "/A-CHECKSUM", c, sizeof(c));
	ck_assert_mem_eq(c, p, 4);
	get(full, "A-CHECKSUM", c, sizeof(c));
	ck_assert_mem_eq(c, p, 4);
}
END_TEST

START_TEST(test_kind_changes_exdev)
{
	struct kinode *full = mkdirs(FULL);

	put(full, "a", "x", 1);
	put(full, "BACKUP-LOCK-1", "lock", 4);
	ck_assert_int_eq(ns_rename(fs, full, "a", full, "BACKUP-LOCK-2", 0),
			 -EXDEV);
	ck_assert_int_eq(ns_rename(fs, full, "BACKUP-LOCK-1", full, "b", 0),
			 -EXDEV);
	ck_assert_int_eq(ns_rename(fs, full, "a", full, "a-CHECKSUM", 0),
			 -EXDEV);
	ck_assert_int_eq(ns_link(fs, lk(full, "a"), full, "BACKUP-LOCK-3"),
			 -EXDEV);
	ck_assert_int_eq(
	    ns_rename(fs, full, "BACKUP-LOCK-1", full, "BACKUP-LOCK-19.tmp", 0),
	    0);
	ck_assert_int_eq(ns_link(fs, lk(full, "a"), full, "c"), 0);
}
END_TEST

static size_t cat(const char *rel, uint8_t *buf, size_t cap)
{
	int fd = memfd_create("cat", 0);
	off_t n;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(kfs_cat(dir, ring, NULL, rel, false, fd), 0);
	n = lseek(fd, 0, SEEK_CUR);
	ck_assert_int_le(n, cap);
	ck_assert_int_eq(pread(fd, buf, (size_t)n, 0), n);
	close(fd);
	return (size_t)n;
}

START_TEST(test_cat)
{
	struct kinode *full = mkdirs(FULL), *meta = mkdirs("metadata");
	uint8_t p[4], buf[256];

	crdb_put(full, "BACKUP_MANIFEST", manifest, sizeof(manifest));
	ck4(manifest, sizeof(manifest), p);
	crdb_put(full, "BACKUP_MANIFEST-CHECKSUM", p, 4);
	put(full, "BACKUP-LOCK-5", "lock", 4);
	put(meta, "x", "1234", 4);
	put(meta, "x-CHECKSUM", "abcd", 4);
	ck_assert_uint_eq(cat(FULL "/BACKUP_MANIFEST", buf, sizeof(buf)),
			  sizeof(manifest));
	ck_assert_mem_eq(buf, manifest, sizeof(manifest));
	ck_assert_uint_eq(
	    cat(FULL "/BACKUP_MANIFEST-CHECKSUM", buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, p, 4);
	ck_assert_uint_eq(cat(FULL "/BACKUP-LOCK-5", buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "lock", 4);
	ck_assert_uint_eq(cat("metadata/x-CHECKSUM", buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "abcd", 4);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kind");
	TCase *tc = tcase_create("all");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_kinds_stored);
	tcase_add_test(tc, test_crdb_order);
	tcase_add_test(tc, test_checksum_first);
	tcase_add_test(tc, test_rewrites);
	tcase_add_test(tc, test_mismatch_kept);
	tcase_add_test(tc, test_checksum_renamed);
	tcase_add_test(tc, test_kind_changes_exdev);
	tcase_add_test(tc, test_cat);
	suite_add_tcase(s, tc);
	return tl_run(s);
}
