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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fs/layout.h"
#include "../fs/keycache.h"
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
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(keycache_suite());
}
