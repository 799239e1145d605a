/*
 * check_keycache.c - the key cache: chain creation, unlocking in a fresh cache
 * (as a new mount would), wrong-key detection through the key-check file and
 * through a sample file, lazy creation for a directory without ENCRYPTION-INFO,
 * the mount-time store check, and CockroachDB's refusal to write into a chain
 * that a configured KMS does not know.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../fs/keycache.h"
#include "../fs/layout.h"
#include "../lib/harden.h"
#include "../lib/log.h"
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

static struct ks_keyring *pass_ring(const char *pass)
{
	struct ks_keyring *r;

	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert_int_eq(
	    ks_keyring_set_passphrase(r, (const uint8_t *)pass, strlen(pass)),
	    0);
	return r;
}

static struct ks_keyring *local_ring(const char *name)
{
	char path[512], uri[600];
	struct ks_keyring *r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (access(path, F_OK) != 0)
		ck_assert_int_eq(ks_local_keygen(path), 0);
	snprintf(uri, sizeof(uri), "file://%s", path);
	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert_int_eq(ks_keyring_add_kms(r, uri), 0);
	return r;
}

static int mkchain(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	return open(path, O_RDONLY | O_DIRECTORY);
}

/* Create a chain with ring a in one cache, then unlock it with ring b
 * in a fresh cache; returns keycache_key_read's result. */
static int create_then_unlock(struct ks_keyring *a, struct ks_keyring *b,
			      const char *name)
{
	const struct cf_key *k1, *k2;
	struct keycache *kc;
	struct chain *c;
	int fd = mkchain(name), r;

	ck_assert_int_eq(keycache_new(a, &kc), 0);
	ck_assert_int_eq(keycache_chain(kc, fd, name, &c), 0);
	ck_assert_int_eq(keycache_chain_create(kc, c), 0);
	ck_assert_int_eq(keycache_chain_create(kc, c), -EEXIST);
	ck_assert_int_eq(keycache_key_read(kc, c, &k1), 0);
	keycache_free(kc);
	ck_assert_int_eq(faccessat(fd, "ENCRYPTION-INFO", F_OK, 0), 0);
	ck_assert_int_eq(keycache_new(b, &kc), 0);
	ck_assert_int_eq(keycache_chain(kc, fd, name, &c), 0);
	r = keycache_key_read(kc, c, &k2);
	keycache_free(kc);
	close(fd);
	return r;
}

START_TEST(test_passphrase_chain)
{
	struct ks_keyring *a = pass_ring("correct horse battery staple");
	struct ks_keyring *b = pass_ring("correct horse battery staple");
	struct ks_keyring *w = pass_ring("wrong");

	ck_assert_int_eq(create_then_unlock(a, b, "c1"), 0);
	/* A wrong passphrase derives a key too: the key check catches it. */
	ck_assert_int_eq(create_then_unlock(a, w, "c2"), -ENOKEY);
	ks_keyring_free(a);
	ks_keyring_free(b);
	ks_keyring_free(w);
}
END_TEST

START_TEST(test_kms_chain)
{
	struct ks_keyring *a = local_ring("k1"), *b = local_ring("k1");
	struct ks_keyring *other = local_ring("k2");

	ck_assert_int_eq(create_then_unlock(a, b, "c1"), 0);
	ck_assert_int_eq(create_then_unlock(a, other, "c2"), -ENOKEY);
	ks_keyring_free(a);
	ks_keyring_free(b);
	ks_keyring_free(other);
}
END_TEST

/* A chain written by CockroachDB has no key-check file: the key is
 * verified against one of its encrypted files instead. */
START_TEST(test_cockroach_chain_sample_verification)
{
	char *path = tl_shared_path(
	    "vectors/crdb-collection/collection/2023/07/14-211406.03");
	struct ks_keyring *good = pass_ring("correct horse battery staple");
	struct ks_keyring *bad = pass_ring("correct horse battery stapler");
	const struct cf_key *k;
	struct keycache *kc;
	struct chain *c;
	int fd = open(path, O_RDONLY | O_DIRECTORY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(keycache_new(good, &kc), 0);
	ck_assert_int_eq(keycache_chain(kc, fd, "full", &c), 0);
	ck_assert_int_eq(keycache_key_read(kc, c, &k), 0);
	keycache_free(kc);
	ck_assert_int_eq(keycache_new(bad, &kc), 0);
	ck_assert_int_eq(keycache_chain(kc, fd, "full", &c), 0);
	ck_assert_int_eq(keycache_key_read(kc, c, &k), -ENOKEY);
	keycache_free(kc);
	close(fd);
	free(path);
	ks_keyring_free(good);
	ks_keyring_free(bad);
}
END_TEST

START_TEST(test_lazy_chain_material)
{
	struct ks_keyring *a = pass_ring("p");
	const struct cf_key *k;
	struct keycache *kc;
	struct chain *c;
	int fd = mkchain("plain-dir");

	ck_assert_int_eq(keycache_new(a, &kc), 0);
	ck_assert_int_eq(keycache_chain(kc, fd, "plain-dir", &c), 0);
	ck_assert_int_eq(keycache_key_read(kc, c, &k), -ENOKEY);
	ck_assert_int_ne(faccessat(fd, "ENCRYPTION-INFO", F_OK, 0), 0);
	ck_assert_int_eq(keycache_key_write(kc, c, &k), 0);
	ck_assert_int_eq(faccessat(fd, "ENCRYPTION-INFO", F_OK, 0), 0);
	ck_assert_int_eq(keycache_key_read(kc, c, &k), 0);
	keycache_free(kc);
	close(fd);
	ks_keyring_free(a);
}
END_TEST

START_TEST(test_write_refused_for_unknown_kms)
{
	struct ks_keyring *a = local_ring("k1"), *both = local_ring("k1");
	char path[512], uri[600];
	const struct cf_key *k;
	struct keycache *kc;
	struct chain *c;

	ck_assert_int_eq(create_then_unlock(a, a, "c1"), 0);
	snprintf(path, sizeof(path), "%s/k2", dir);
	ck_assert_int_eq(ks_local_keygen(path), 0);
	snprintf(uri, sizeof(uri), "file://%s", path);
	ck_assert_int_eq(ks_keyring_add_kms(both, uri), 0);
	snprintf(path, sizeof(path), "%s/c1", dir);
	{
		int fd = open(path, O_RDONLY | O_DIRECTORY);

		ck_assert_int_eq(keycache_new(both, &kc), 0);
		ck_assert_int_eq(keycache_chain(kc, fd, "c1", &c), 0);
		ck_assert_int_eq(keycache_key_read(kc, c, &k), 0);
		ck_assert_int_eq(keycache_key_write(kc, c, &k), -ENOKEY);
		keycache_free(kc);
		close(fd);
	}
	ks_keyring_free(a);
	ks_keyring_free(both);
}
END_TEST

/* The chain at name of the fixture directory ("" for the directory
 * itself, the collection root), looked up in kc. */
static struct chain *chain_at(struct keycache *kc, const char *name)
{
	struct chain *c;
	int fd =
	    *name ? openat(dirfd_, name, O_RDONLY | O_DIRECTORY) : dup(dirfd_);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(keycache_chain(kc, fd, name, &c), 0);
	close(fd);
	return c;
}

/* A one-chunk encrypted file at path (relative to the fixture dir). */
static void put_sealed(const char *path, const struct cf_key *key,
		       const char *text)
{
	size_t n = strlen(text);
	uint8_t buf[CF_HEADER_SIZE + 256 + CF_TAG_SIZE], iv[CF_IV_SIZE];
	int fd;

	ck_assert_uint_le(n, 256);
	ck_assert_int_eq(cf_iv_random(iv), 0);
	cf_header_build(iv, buf);
	ck_assert_int_eq(cf_seal_chunk(key, iv, 0, (const uint8_t *)text, n,
				       buf + CF_HEADER_SIZE),
			 0);
	fd = openat(dirfd_, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, CF_HEADER_SIZE + n + CF_TAG_SIZE),
			 (ssize_t)(CF_HEADER_SIZE + n + CF_TAG_SIZE));
	close(fd);
}

/* Issue 8 item 6: the root chain is checked against the root's own
 * files, never against a file of another chain below it. */
START_TEST(test_root_checks_own_files)
{
	struct ks_keyring *r = pass_ring("p");
	const struct cf_key *k;
	struct keycache *kc;
	struct chain *root;

	ck_assert_int_eq(keycache_new(r, &kc), 0);
	root = chain_at(kc, "");
	ck_assert_int_eq(keycache_key_write(kc, root, &k), 0);
	put_sealed("rootfile", k, "root data");
	ck_assert_int_eq(mkdirat(dirfd_, "c1", 0755), 0);
	ck_assert_int_eq(keycache_chain_create(kc, chain_at(kc, "c1")), 0);
	ck_assert_int_eq(keycache_key_read(kc, chain_at(kc, "c1"), &k), 0);
	put_sealed("c1/f", k, "chain data");
	keycache_free(kc);
	/* without the root's key-check file: its own file decides */
	ck_assert_int_eq(unlinkat(dirfd_, ".kmsfs-keycheck", 0), 0);
	ck_assert_int_eq(keycache_new(r, &kc), 0);
	ck_assert_int_eq(keycache_key_read(kc, chain_at(kc, ""), &k), 0);
	keycache_free(kc);
	/* nothing of its own at all: a chain below never decides */
	ck_assert_int_eq(unlinkat(dirfd_, "rootfile", 0), 0);
	ck_assert_int_eq(keycache_new(r, &kc), 0);
	ck_assert_int_eq(keycache_key_read(kc, chain_at(kc, ""), &k), 0);
	keycache_free(kc);
	ks_keyring_free(r);
}
END_TEST

static int key_read_fresh(struct ks_keyring *r, const char *name)
{
	const struct cf_key *k;
	struct keycache *kc;
	int rc;

	ck_assert_int_eq(keycache_new(r, &kc), 0);
	rc = keycache_key_read(kc, chain_at(kc, name), &k);
	keycache_free(kc);
	return rc;
}

/* Issue 8 item 7: a directory that holds encrypted files but lost its
 * ENCRYPTION-INFO gives EIO, is reported once, and is never given a new
 * key; once its files are gone it may start afresh (and the stale
 * key-check file is replaced). */
START_TEST(test_lost_encinfo_not_rekeyed)
{
	struct ks_keyring *r = local_ring("k1");
	const struct cf_key *k;
	struct keycache *kc;
	struct chain *c;
	uint8_t *ei;
	size_t eilen;
	char *log, path[512];

	ck_assert_int_eq(keycache_new(r, &kc), 0);
	ck_assert_int_eq(mkdirat(dirfd_, "c1", 0755), 0);
	ck_assert_int_eq(keycache_chain_create(kc, chain_at(kc, "c1")), 0);
	ck_assert_int_eq(keycache_key_read(kc, chain_at(kc, "c1"), &k), 0);
	put_sealed("c1/f", k, "chain data");
	keycache_free(kc);
	snprintf(path, sizeof(path), "%s/c1/ENCRYPTION-INFO", dir);
	ck_assert_int_eq(tl_read_file(path, &ei, &eilen), 0);
	ck_assert_int_eq(unlink(path), 0);

	ck_assert_int_eq(keycache_new(r, &kc), 0);
	c = chain_at(kc, "c1");
	tl_capture_begin();
	ck_assert_int_eq(keycache_key_read(kc, c, &k), -EIO);
	ck_assert_int_eq(keycache_key_write(kc, c, &k), -EIO);
	ck_assert_int_eq(keycache_key_read(kc, c, &k), -EIO);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(
	    log, "chain c1 holds encrypted files but no ENCRYPTION-INFO"));
	ck_assert_ptr_null(strstr(strstr(log, "no ENCRYPTION-INFO") + 1,
				  "no ENCRYPTION-INFO")); /* once */
	free(log);
	keycache_free(kc);
	ck_assert_int_ne(access(path, F_OK), 0);

	/* restored: as before */
	ck_assert_int_eq(tl_write_file(path, ei, eilen), 0);
	ck_assert_int_eq(key_read_fresh(r, "c1"), 0);
	/* given up: with its files removed the directory starts afresh */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(unlinkat(dirfd_, "c1/f", 0), 0);
	ck_assert_int_eq(keycache_new(r, &kc), 0);
	ck_assert_int_eq(keycache_key_write(kc, chain_at(kc, "c1"), &k), 0);
	keycache_free(kc);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(key_read_fresh(r, "c1"), 0);
	free(ei);
	ks_keyring_free(r);
}
END_TEST

/* Issue 8 item 5: with a chain that holds only its ENCRYPTION-INFO (no
 * key-check file, no data), a wrong passphrase used to mount and to
 * create new chains.  Now the store check says so and nothing is created
 * or written until a key is checked; a chain that can be checked makes
 * the wrong passphrase fail. */
START_TEST(test_unchecked_passphrase)
{
	struct ks_keyring *right = pass_ring("right"), *wrong = pass_ring("w");
	const struct cf_key *k;
	struct secret *dk;
	struct keycache *kc;
	struct buf info;
	char *log;
	int fd = mkchain("only");

	buf_init(&info, 0);
	ck_assert_int_eq(ks_chain_create(right, &dk, &info), 0);
	ck_assert_int_eq(ks_chain_write_encinfo(fd, &info), 0);
	close(fd);
	ck_assert_int_eq(keycache_new(wrong, &kc), 0);
	tl_capture_begin();
	ck_assert_int_eq(keycache_check_store(kc, layout_find(NULL), dirfd_),
			 0);
	ck_assert_int_eq(mkdirat(dirfd_, "new", 0755), 0);
	ck_assert_int_eq(keycache_chain_create(kc, chain_at(kc, "new")),
			 -ENOKEY);
	ck_assert_int_eq(keycache_key_write(kc, chain_at(kc, "only"), &k),
			 -ENOKEY);
	ck_assert_int_eq(keycache_key_read(kc, chain_at(kc, "only"), &k), 0);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(log, "cannot check the passphrase"));
	free(log);
	keycache_free(kc);
	ck_assert_int_ne(faccessat(dirfd_, "new/ENCRYPTION-INFO", F_OK, 0), 0);

	/* a chain with a key-check file: the wrong passphrase fails */
	ck_assert_int_eq(create_then_unlock(right, right, "checked"), 0);
	ck_assert_int_eq(keycache_new(wrong, &kc), 0);
	ck_assert_int_eq(keycache_check_store(kc, layout_find(NULL), dirfd_),
			 -ENOKEY);
	keycache_free(kc);
	ck_assert_int_eq(keycache_new(right, &kc), 0);
	ck_assert_int_eq(keycache_check_store(kc, layout_find(NULL), dirfd_),
			 0);
	ck_assert_int_eq(keycache_chain_create(kc, chain_at(kc, "new")), 0);
	ck_assert_int_eq(keycache_key_write(kc, chain_at(kc, "only"), &k), 0);
	keycache_free(kc);
	buf_release(&info);
	secret_free(dk);
	ks_keyring_free(right);
	ks_keyring_free(wrong);
}
END_TEST

START_TEST(test_check_store)
{
	struct ks_keyring *a = pass_ring("alpha"), *b = pass_ring("beta");
	struct keycache *kc;

	ck_assert_int_eq(keycache_new(b, &kc), 0);
	ck_assert_int_eq(keycache_check_store(kc, layout_find(NULL), dirfd_),
			 0); /* empty */
	keycache_free(kc);
	ck_assert_int_eq(create_then_unlock(a, a, "one"), 0);
	ck_assert_int_eq(keycache_new(b, &kc), 0);
	ck_assert_int_eq(keycache_check_store(kc, layout_find(NULL), dirfd_),
			 -ENOKEY);
	keycache_free(kc);
	ck_assert_int_eq(create_then_unlock(b, b, "two"), 0);
	ck_assert_int_eq(keycache_new(b, &kc), 0);
	ck_assert_int_eq(keycache_check_store(kc, layout_find(NULL), dirfd_),
			 0); /* one opens */
	keycache_free(kc);
	ks_keyring_free(a);
	ks_keyring_free(b);
}
END_TEST

/* Issue 8 item 3: 10,000 chains in one cache, on the real (1 MiB, locked)
 * secure heap: every chain is created, then unlocked again in a fresh
 * cache as after a remount, and every key works.  Before keys were
 * stored compactly, the 510th chain failed with ENOMEM. */
#define MANY_CHAINS 10000

/* Check records every assertion: the loops below test plainly. */
#define MANY_CHECK(cond, what, i)                                              \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg("chain %d: %s failed", (i), (what));      \
	} while (0)

static void many_create(struct ks_keyring *r)
{
	struct keycache *kc;

	ck_assert_int_eq(keycache_new(r, &kc), 0);
	for (int i = 0; i < MANY_CHAINS; i++) {
		char name[32];
		struct chain *c;
		int fd;

		snprintf(name, sizeof(name), "c%05d", i);
		MANY_CHECK(mkdirat(dirfd_, name, 0755) == 0, "mkdir", i);
		fd = openat(dirfd_, name, O_RDONLY | O_DIRECTORY);
		MANY_CHECK(fd >= 0, "open", i);
		MANY_CHECK(keycache_chain(kc, fd, name, &c) == 0, "lookup", i);
		close(fd);
		MANY_CHECK(keycache_chain_create(kc, c) == 0, "create", i);
	}
	keycache_free(kc);
}

/* Unlock every chain in a fresh cache; its key seals and opens. */
static void many_unlock(struct ks_keyring *r)
{
	static const uint8_t pt[5] = "hello";
	uint8_t iv[CF_IV_SIZE] = {0}, ct[sizeof(pt) + CF_TAG_SIZE],
		back[sizeof(pt)];
	const struct cf_key *k;
	struct keycache *kc;

	ck_assert_int_eq(keycache_new(r, &kc), 0);
	for (int i = 0; i < MANY_CHAINS; i++) {
		char name[32];
		struct chain *c;
		int fd;

		snprintf(name, sizeof(name), "c%05d", i);
		fd = openat(dirfd_, name, O_RDONLY | O_DIRECTORY);
		MANY_CHECK(fd >= 0, "open", i);
		MANY_CHECK(keycache_chain(kc, fd, name, &c) == 0, "lookup", i);
		close(fd);
		MANY_CHECK(keycache_key_read(kc, c, &k) == 0, "unlock", i);
		MANY_CHECK(keycache_key_write(kc, c, &k) == 0, "key_write", i);
		MANY_CHECK(cf_seal_chunk(k, iv, 0, pt, sizeof(pt), ct) == 0,
			   "seal", i);
		MANY_CHECK(cf_open_chunk(k, iv, 0, ct, sizeof(ct), back) == 0 &&
			       memcmp(back, pt, sizeof(pt)) == 0,
			   "open", i);
	}
	keycache_free(kc);
}

/* Each chain costs three fsyncs: on tmpfs they are free (0.5 s for the
 * test, against about 3 minutes on this disk). */
static char *scale_dir(void)
{
	char *p = strdup("/dev/shm/kmsfs-test-XXXXXX");
	struct statfs sf;

	if (p && statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC &&
	    (uint64_t)sf.f_bavail * sf.f_bsize >= (256u << 20) && mkdtemp(p))
		return p;
	free(p);
	return tl_tmpdir_new();
}

START_TEST(test_many_chains)
{
	char *fixture_dir = dir;
	int fixture_fd = dirfd_;
	struct ks_keyring *r;

	/* The real secure heap (and the descriptor limit raised: the cache
	 * holds a directory descriptor per chain). */
	ck_assert_int_eq(harden_process(), 0);
	log_set_level(LOG_LVL_WARN); /* no line per chain */
	dir = scale_dir();
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
	r = local_ring("k1");
	many_create(r);
	many_unlock(r);
	ks_keyring_free(r);
	close(dirfd_);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
	dir = fixture_dir;
	dirfd_ = fixture_fd;
}
END_TEST

/* The limit is stated and logged: removed chains keep their keys (open
 * files may use them), so one directory removed and found again over and
 * over fills the cache; the key past KEYCACHE_MAX_KEYS is refused with a
 * line saying why. */
START_TEST(test_key_limit)
{
	struct ks_keyring *r;
	const struct cf_key *k;
	struct keycache *kc;
	struct rlimit rl;
	struct chain *c;
	char *log;

	ck_assert_int_eq(harden_process(), 0);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < KEYCACHE_MAX_KEYS + 256) {
		fprintf(stderr, "test_key_limit: skipped: %ju descriptors\n",
			(uintmax_t)rl.rlim_cur);
		return; /* a directory descriptor per chain */
	}
	log_set_level(LOG_LVL_WARN);
	r = local_ring("k1");
	ck_assert_int_eq(create_then_unlock(r, r, "c"), 0);
	ck_assert_int_eq(keycache_new(r, &kc), 0);
	for (int i = 0; i < KEYCACHE_MAX_KEYS; i++) {
		c = chain_at(kc, "c");
		MANY_CHECK(keycache_key_read(kc, c, &k) == 0, "unlock", i);
		keycache_chain_removed(kc, c);
	}
	tl_capture_begin();
	c = chain_at(kc, "c");
	ck_assert_int_eq(keycache_key_read(kc, c, &k), -ENOMEM);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(log, "chain c: cannot hold its key: this "
					  "mount holds the keys of 16384 "
					  "chains, its limit"));
	free(log);
	keycache_free(kc);
	ks_keyring_free(r);
}
END_TEST

static Suite *keycache_suite(void)
{
	Suite *s = suite_create("keycache");
	TCase *tc = tcase_create("chain");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_passphrase_chain);
	tcase_add_test(tc, test_kms_chain);
	tl_add_shared_test(tc, test_cockroach_chain_sample_verification,
			   "vectors/crdb-collection");
	tcase_add_test(tc, test_lazy_chain_material);
	tcase_add_test(tc, test_write_refused_for_unknown_kms);
	tcase_add_test(tc, test_check_store);
	tcase_add_test(tc, test_root_checks_own_files);
	tcase_add_test(tc, test_lost_encinfo_not_rekeyed);
	tcase_add_test(tc, test_unchecked_passphrase);
	suite_add_tcase(s, tc);
	tc = tcase_create("scale");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_many_chains);
	tcase_add_test(tc, test_key_limit);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(keycache_suite());
}
