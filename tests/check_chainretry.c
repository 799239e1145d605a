/*
 * check_chainretry.c - retrying a chain whose unlock failed (issue 8, 4):
 * a refusal that the bytes of its ENCRYPTION-INFO* files decide is not
 * read again while none of them changes; a changed, replaced or added
 * file is read; a KMS failure is tried again, files and all; a chain
 * over the file cap is not listed again while its directory is unchanged.
 *
 * Reads are counted by wrapping openat (see Makefile.am): every
 * ENCRYPTION-INFO* file is opened by name before it is read.  Each test
 * sleeps 2 seconds once (8 s in all): a file changed within a second is never
 * remembered (SIG_RACY_SECONDS in keystore/chainkey.c).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fs/keycache.h"
#include "testlib.h"

static int encinfo_opens;

int __real_openat(int dirfd, const char *path, int flags, ...);
int __wrap_openat(int dirfd, const char *path, int flags, ...);

int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (strncmp(path, "ENCRYPTION-INFO", 15) == 0)
		encinfo_opens++;
	return __real_openat(dirfd, path, flags, mode);
}

static char *dir;

static void setup(void)
{
	dir = tl_tmpdir_new();
}

static void teardown(void)
{
	tl_tmpdir_remove(dir);
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

/* Write name in chain with data (replacing it in place, same inode). */
static void put(const char *chain, const char *name, const void *data,
		size_t len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s", dir, chain, name);
	ck_assert_int_eq(tl_write_file(path, data, len), 0);
}

/* The ENCRYPTION-INFO of a new chain made with r, in dir/name. */
static void make_info(struct ks_keyring *r, const char *name, struct buf *out)
{
	char path[512];
	struct keycache *kc;
	struct chain *c;
	int fd = mkchain(name);

	ck_assert_int_eq(keycache_new(r, &kc), 0);
	ck_assert_int_eq(keycache_chain(kc, fd, name, &c), 0);
	ck_assert_int_eq(keycache_chain_create(kc, c), 0);
	keycache_free(kc);
	close(fd);
	snprintf(path, sizeof(path), "%s/%s/ENCRYPTION-INFO", dir, name);
	buf_init(out, 1 << 20);
	ck_assert_int_eq(tl_read_buf(path, out), 0);
}

/* keycache_key_read's result; *opens: how many ENCRYPTION-INFO* files it
 * opened. */
static int key_read(struct keycache *kc, struct chain *c, int *opens)
{
	const struct cf_key *k;
	int before = encinfo_opens, r;

	r = keycache_key_read(kc, c, &k);
	*opens = encinfo_opens - before;
	return r;
}

START_TEST(test_malformed_not_reread)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
	static const uint8_t junk2[] = {0xfe, 0xff, 0xff, 0xff, 0x0f, 0x01};
	struct ks_keyring *r = local_ring("k1");
	struct keycache *kc;
	struct chain *c;
	struct buf good;
	int fd, opens;
	char *log;

	make_info(r, "donor", &good);
	fd = mkchain("c");
	put("c", "ENCRYPTION-INFO", junk, sizeof(junk));
	sleep(2); /* older than SIG_RACY_SECONDS */
	ck_assert_int_eq(keycache_new(r, &kc), 0);
	keycache_set_retry_seconds(kc, 0);
	ck_assert_int_eq(keycache_chain(kc, fd, "c", &c), 0);
	ck_assert_int_eq(key_read(kc, c, &opens), -EPROTO);
	ck_assert_int_eq(opens, 1);
	/* Retries over the same bytes read nothing, and log nothing at
	 * the default level. */
	tl_capture_begin();
	ck_assert_int_eq(key_read(kc, c, &opens), -EPROTO);
	log = tl_capture_end();
	ck_assert_int_eq(opens, 0);
	ck_assert_str_eq(log, "");
	free(log);
	ck_assert_int_eq(key_read(kc, c, &opens), -EPROTO);
	ck_assert_int_eq(opens, 0);
	/* Rewritten in place, same size: read again. */
	put("c", "ENCRYPTION-INFO", junk2, sizeof(junk2));
	ck_assert_int_eq(key_read(kc, c, &opens), -EPROTO);
	ck_assert_int_eq(opens, 1);
	/* A valid ENCRYPTION-INFO-1 added (as add-kms would): noticed. */
	put("c", "ENCRYPTION-INFO-1", good.data, good.len);
	ck_assert_int_eq(key_read(kc, c, &opens), 0);
	ck_assert_int_eq(opens, 2);
	keycache_free(kc);
	buf_release(&good);
	close(fd);
	ks_keyring_free(r);
}
END_TEST

/* No configured KMS has an entry (the chain is another KMS's): -ENOKEY
 * for these bytes, remembered; a file added is read. */
START_TEST(test_no_entry_not_reread)
{
	struct ks_keyring *mine = local_ring("k1"), *other = local_ring("k2");
	struct keycache *kc;
	struct chain *c;
	struct buf good, theirs;
	int fd, opens;

	make_info(mine, "donor", &good);
	make_info(other, "theirs", &theirs);
	fd = mkchain("c");
	put("c", "ENCRYPTION-INFO", theirs.data, theirs.len);
	sleep(2);
	ck_assert_int_eq(keycache_new(mine, &kc), 0);
	keycache_set_retry_seconds(kc, 0);
	ck_assert_int_eq(keycache_chain(kc, fd, "c", &c), 0);
	ck_assert_int_eq(key_read(kc, c, &opens), -ENOKEY);
	ck_assert_int_eq(opens, 1);
	ck_assert_int_eq(key_read(kc, c, &opens), -ENOKEY);
	ck_assert_int_eq(opens, 0);
	/* add-kms's file for a configured KMS: read, and it unlocks. */
	put("c", "ENCRYPTION-INFO-2", good.data, good.len);
	ck_assert_int_eq(key_read(kc, c, &opens), 0);
	ck_assert_int_eq(opens, 2);
	keycache_free(kc);
	buf_release(&good);
	buf_release(&theirs);
	close(fd);
	ks_keyring_free(mine);
	ks_keyring_free(other);
}
END_TEST

/* A KMS that fails to unwrap is asked again, its file read again. */
START_TEST(test_kms_failure_retried)
{
	struct ks_keyring *r = local_ring("k1");
	struct keycache *kc;
	struct chain *c;
	struct buf bad;
	int fd, opens;

	make_info(r, "donor", &bad);
	/* The wrapped key is the last field: break its GCM tag. */
	bad.data[bad.len - 1] ^= 0x01;
	fd = mkchain("c");
	put("c", "ENCRYPTION-INFO", bad.data, bad.len);
	sleep(2);
	ck_assert_int_eq(keycache_new(r, &kc), 0);
	keycache_set_retry_seconds(kc, 0);
	ck_assert_int_eq(keycache_chain(kc, fd, "c", &c), 0);
	ck_assert_int_ne(key_read(kc, c, &opens), 0);
	ck_assert_int_eq(opens, 1);
	ck_assert_int_ne(key_read(kc, c, &opens), 0);
	ck_assert_int_eq(opens, 1);
	keycache_free(kc);
	buf_release(&bad);
	close(fd);
	ks_keyring_free(r);
}
END_TEST

/* Over the cap on files per chain: the listing is the refusal; while the
 * directory does not change it is not listed (nor logged) again. */
START_TEST(test_too_many_files_not_relisted)
{
	struct ks_keyring *r = local_ring("k1");
	struct keycache *kc;
	struct chain *c;
	int fd = mkchain("c"), opens;
	char name[64], *log;

	for (int i = 0; i <= 256; i++) {
		snprintf(name, sizeof(name), "ENCRYPTION-INFO-%d", i + 1);
		put("c", name, "", 0);
	}
	sleep(2);
	ck_assert_int_eq(keycache_new(r, &kc), 0);
	keycache_set_retry_seconds(kc, 0);
	ck_assert_int_eq(keycache_chain(kc, fd, "c", &c), 0);
	ck_assert_int_eq(key_read(kc, c, &opens), -EPROTO);
	ck_assert_int_eq(opens, 0);
	tl_capture_begin();
	ck_assert_int_eq(key_read(kc, c, &opens), -EPROTO);
	log = tl_capture_end();
	ck_assert_str_eq(log, "");
	free(log);
	/* One removed: listed and read again (empty messages, no entry). */
	snprintf(name, sizeof(name), "%s/c/ENCRYPTION-INFO-1", dir);
	ck_assert_int_eq(unlink(name), 0);
	ck_assert_int_eq(key_read(kc, c, &opens), -ENOKEY);
	ck_assert_int_eq(opens, 256);
	keycache_free(kc);
	close(fd);
	ks_keyring_free(r);
}
END_TEST

/* Within the retry interval nothing is tried at all (as before). */
START_TEST(test_interval_answers_from_memory)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff};
	struct ks_keyring *r = local_ring("k1");
	struct keycache *kc;
	struct chain *c;
	int fd = mkchain("c"), opens;

	put("c", "ENCRYPTION-INFO", junk, sizeof(junk));
	ck_assert_int_eq(keycache_new(r, &kc), 0);
	ck_assert_int_eq(keycache_chain(kc, fd, "c", &c), 0);
	ck_assert_int_eq(key_read(kc, c, &opens), -EPROTO);
	ck_assert_int_eq(opens, 1);
	/* Just written: not remembered, but the 5 s interval holds. */
	ck_assert_int_eq(key_read(kc, c, &opens), -EPROTO);
	ck_assert_int_eq(opens, 0);
	keycache_free(kc);
	close(fd);
	ks_keyring_free(r);
}
END_TEST

static Suite *chainretry_suite(void)
{
	Suite *s = suite_create("chainretry");
	TCase *tc = tcase_create("retry");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_malformed_not_reread);
	tcase_add_test(tc, test_no_entry_not_reread);
	tcase_add_test(tc, test_kms_failure_retried);
	tcase_add_test(tc, test_too_many_files_not_relisted);
	tcase_add_test(tc, test_interval_answers_from_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(chainretry_suite());
}
