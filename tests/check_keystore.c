/*
 * check_keystore.c - unit tests for keystore/keystore.c, chainkey.c,
 * local.c and passphrase.c: PBKDF2 vectors; the local provider (keygen,
 * permission checks, wrap/unwrap, tampering, master key IDs); keyrings
 * (passphrase or KMS, URI files); chains in a temp dir (create, unlock with
 * each KMS, check_writable, ADD NEW_KMS as ENCRYPTION-INFO-N; which file and
 * which KMS each of them takes when several files hold entries); the
 * CockroachDB collection vector; and that no key ever reaches the log.
 */
#include "../keystore/keystore.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../keystore/encinfo.h"
#include "../lib/log.h"
#include "testlib.h"

/* Built with cloud providers, these URIs are parsed and found incomplete
 * (-EINVAL: no credentials for AUTH=specified); built without, the
 * scheme is known but not built (-ENOTSUP). */
#ifdef KMSFS_CLOUD_KMS
#define CLOUD_ERR (-EINVAL)
#else
#define CLOUD_ERR (-ENOTSUP)
#endif

#define PASS "correct horse battery staple"

/* --- helpers ------------------------------------------------------------ */

static void assert_hex(const struct secret *s, const char *hex)
{
	char got[2 * 32 + 1];

	ck_assert_uint_eq(s->len, 32);
	tl_hex_encode(s->bytes, 32, got);
	ck_assert_str_eq(got, hex);
}

/* A new local key <dir>/<name>; its URI into uri (512 bytes). */
static void make_key(const char *dir, const char *name, char *uri)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(ks_local_keygen(path), 0);
	snprintf(uri, 512, "file://%s", path);
}

/* A keyring of the given URIs (NULL-terminated). */
static struct ks_keyring *ring(const char *uri, ...)
{
	struct ks_keyring *r;
	va_list ap;

	ck_assert_int_eq(ks_keyring_new(&r), 0);
	va_start(ap, uri);
	for (; uri; uri = va_arg(ap, const char *))
		ck_assert_int_eq(ks_keyring_add_kms(r, uri), 0);
	va_end(ap);
	return r;
}

static int open_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static int unlock_eq(struct ks_keyring *r, int dfd, const struct secret *dk)
{
	struct secret *got = NULL;
	int rc = ks_chain_unlock(r, dfd, "t", &got);

	if (!rc)
		ck_assert(secret_equal(got, dk));
	else
		ck_assert_ptr_null(got);
	secret_free(got);
	return rc;
}

static size_t count_encinfo(int dfd)
{
	struct encinfo_names nm;
	size_t n;

	ck_assert_int_eq(encinfo_list(dfd, &nm), 0);
	n = nm.n;
	encinfo_names_release(&nm);
	return n;
}

/* --- PBKDF2 ------------------------------------------------------------- */

START_TEST(test_pbkdf2)
{
	uint8_t salt[16], zero[16] = {0};
	struct secret *k;

	for (size_t i = 0; i < 16; i++)
		salt[i] = (uint8_t)i;
	ck_assert_int_eq(
	    ks_derive_passphrase((const uint8_t *)"this is a a key", 15, salt,
				 16, &k),
	    0);
	assert_hex(k, "be6b0982d19f15f82cb0b2a4a12472ba"
		      "b60ceb1a2d9e58100aed486c3a4717a9");
	secret_free(k);
	ck_assert_int_eq(ks_derive_passphrase((const uint8_t *)PASS,
					      strlen(PASS), salt, 16, &k),
			 0);
	assert_hex(k, "b1799651c8c298d25843d678e5124c09"
		      "83183ece192a53174a4a04be9675351a");
	secret_free(k);
	ck_assert_int_eq(ks_derive_passphrase(NULL, 0, zero, 16, &k), 0);
	assert_hex(k, "54ed67d5e9c1a80664b4537b3c0861f4"
		      "4dd9f5d45339217125e7bc3460e3171b");
	secret_free(k);
}
END_TEST

/* --- local provider ------------------------------------------------------ */

START_TEST(test_keygen)
{
	char *dir = tl_tmpdir_new(), path[400], uri[512];
	uint8_t *a, *b;
	size_t alen, blen;
	struct stat st;

	make_key(dir, "k", uri);
	snprintf(path, sizeof(path), "%s/k", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(st.st_size, 32);
	ck_assert_int_eq(tl_read_file(path, &a, &alen), 0);
	ck_assert_int_eq(ks_local_keygen(path), -EEXIST);
	ck_assert_int_eq(tl_read_file(path, &b, &blen), 0);
	ck_assert_uint_eq(blen, 32);
	ck_assert_mem_eq(a, b, 32); /* not overwritten */
	free(a);
	free(b);
	snprintf(path, sizeof(path), "%s/no/such/dir/k", dir);
	ck_assert_int_eq(ks_local_keygen(path), -ENOENT);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_local_refuses)
{
	char *dir = tl_tmpdir_new(), path[400], uri[512], *log;
	uint8_t bytes[33] = {0};
	struct ks_kms *k;

	make_key(dir, "k", uri);
	snprintf(path, sizeof(path), "%s/k", dir);
	tl_capture_begin();
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(ks_kms_open(uri, &k), -EPERM);
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(ks_kms_open(uri, &k), -EPERM);
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(ks_kms_open(uri, &k), 0);
	ks_kms_free(k);
	snprintf(path, sizeof(path), "%s/short", dir);
	ck_assert_int_eq(tl_write_file(path, bytes, 31), 0);
	snprintf(uri, sizeof(uri), "file://%s", path);
	ck_assert_int_eq(ks_kms_open(uri, &k), -EINVAL);
	ck_assert_int_eq(tl_write_file(path, bytes, 33), 0);
	ck_assert_int_eq(ks_kms_open(uri, &k), -EINVAL);
	snprintf(uri, sizeof(uri), "file://%s/missing", dir);
	ck_assert_int_eq(ks_kms_open(uri, &k), -ENOENT);
	snprintf(uri, sizeof(uri), "file://%s", dir);
	ck_assert_int_eq(ks_kms_open(uri, &k), -EINVAL);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(log, "chmod 600"));
	ck_assert_ptr_nonnull(strstr(log, "exactly 32 bytes"));
	free(log);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_local_wrap)
{
	char *dir = tl_tmpdir_new(), uri[512], uri2[512];
	struct secret *dk, *got;
	struct ks_kms *k, *k2;
	struct buf blob, blob2;

	make_key(dir, "a", uri);
	make_key(dir, "b", uri2);
	ck_assert_int_eq(ks_kms_open(uri, &k), 0);
	ck_assert_int_eq(ks_kms_open(uri2, &k2), 0);
	ck_assert_int_eq(secret_random(&dk, 32), 0);
	buf_init(&blob, 0);
	buf_init(&blob2, 0);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob2), 0);
	ck_assert_uint_eq(blob.len, 61);
	ck_assert_uint_eq(blob.data[0], 0x01);
	ck_assert(memcmp(blob.data, blob2.data, 61) != 0); /* fresh nonce */
	ck_assert_int_eq(ks_kms_unwrap(k, blob.data, blob.len, &got), 0);
	ck_assert(secret_equal(got, dk));
	secret_free(got);
	for (size_t i = 0; i < blob.len; i++) {
		blob.data[i] ^= 0x20;
		ck_assert_int_eq(ks_kms_unwrap(k, blob.data, blob.len, &got),
				 i == 0 ? -EPROTO : -EBADMSG);
		ck_assert_ptr_null(got);
		blob.data[i] ^= 0x20;
	}
	ck_assert_int_eq(ks_kms_unwrap(k, blob.data, 60, &got), -EPROTO);
	ck_assert_int_eq(ks_kms_unwrap(k, blob.data, 0, &got), -EPROTO);
	ck_assert_int_eq(ks_kms_unwrap(k2, blob.data, blob.len, &got),
			 -EBADMSG);
	buf_release(&blob);
	buf_release(&blob2);
	secret_free(dk);
	ks_kms_free(k);
	ks_kms_free(k2);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_local_key_id)
{
	char *dir = tl_tmpdir_new(), path[400], uri[512], uri2[512], uri3[512],
	     hex[65];
	struct ks_kms *k, *k2, *k3;
	uint8_t *key;
	size_t len;

	make_key(dir, "a", uri);
	make_key(dir, "other", uri3);
	snprintf(path, sizeof(path), "%s/a", dir);
	ck_assert_int_eq(tl_read_file(path, &key, &len), 0);
	ck_assert_int_eq(
	    mkdirat(AT_FDCWD, strcat(strcpy(path, dir), "/sub"), 0700), 0);
	strcat(path, "/copy");
	ck_assert_int_eq(tl_write_file(path, key, len), 0);
	snprintf(uri2, sizeof(uri2), "file://%s", path);
	ck_assert_int_eq(ks_kms_open(uri, &k), 0);
	ck_assert_int_eq(ks_kms_open(uri2, &k2), 0);
	ck_assert_int_eq(ks_kms_open(uri3, &k3), 0);
	ck_assert_str_eq(ks_kms_key_id(k), ks_kms_key_id(k2));
	ck_assert_str_ne(ks_kms_key_id(k), ks_kms_key_id(k3));
	tl_hex_encode(key, 32, hex);
	ck_assert_ptr_null(strstr(ks_kms_key_id(k), hex + 32));
	hex[32] = '\0';
	ck_assert_ptr_null(strstr(ks_kms_key_id(k), hex));
	ck_assert_ptr_null(strstr(ks_kms_key_id(k), dir));
	free(key);
	ks_kms_free(k);
	ks_kms_free(k2);
	ks_kms_free(k3);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

/* --- keyrings ------------------------------------------------------------ */

START_TEST(test_keyring_rules)
{
	char *dir = tl_tmpdir_new(), uri[512];
	struct ks_keyring *r;

	make_key(dir, "a", uri);
	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert(ks_keyring_empty(r));
	ck_assert_int_eq(ks_keyring_set_passphrase(r, (const uint8_t *)"p", 1),
			 0);
	ck_assert(ks_keyring_is_passphrase(r));
	ck_assert_int_eq(ks_keyring_add_kms(r, uri), -EINVAL);
	ks_keyring_free(r);
	r = ring(uri, NULL);
	ck_assert_uint_eq(ks_keyring_kms_count(r), 1);
	ck_assert_ptr_nonnull(ks_keyring_kms(r, 0));
	ck_assert_ptr_null(ks_keyring_kms(r, 1));
	ck_assert_int_eq(ks_keyring_set_passphrase(r, (const uint8_t *)"p", 1),
			 -EINVAL);
	ck_assert_int_eq(ks_keyring_add_kms(r, "s3:///bucket"), -EINVAL);
	ck_assert_int_eq(ks_keyring_add_kms(r, "aws:///k?REGION=r"), CLOUD_ERR);
	ck_assert_int_eq(ks_keyring_add_kms(r, "gs:///projects/p"), CLOUD_ERR);
	ck_assert_uint_eq(ks_keyring_kms_count(r), 1);
	ks_keyring_free(r);
	ks_keyring_free(NULL);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_keyring_file)
{
	char *dir = tl_tmpdir_new(), a[512], b[512], path[400], text[2048],
	     *log;
	struct ks_keyring *r;

	make_key(dir, "a", a);
	make_key(dir, "b", b);
	snprintf(path, sizeof(path), "%s/uris", dir);
	snprintf(text, sizeof(text),
		 "# KMS URIs\n\n   \n%s \t\r\n  # indented comment\n%s", a, b);
	ck_assert_int_eq(tl_write_file(path, text, strlen(text)), 0);
	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert_int_eq(ks_keyring_add_kms_file(r, path), 0);
	ck_assert_uint_eq(ks_keyring_kms_count(r), 2);
	ck_assert_str_eq(ks_kms_name(ks_keyring_kms(r, 1)), b);

	tl_capture_begin();
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(ks_keyring_add_kms_file(r, path), -EPERM);
	snprintf(text, sizeof(text), "%s\naws:///k?AWS_SECRET_ACCESS_KEY=Zq9\n",
		 a);
	ck_assert_int_eq(tl_write_file(path, text, strlen(text)), 0);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(ks_keyring_add_kms_file(r, path), CLOUD_ERR);
	ck_assert_uint_eq(ks_keyring_kms_count(r), 2); /* all or nothing */
	ck_assert_int_eq(tl_write_file(path, "# only\n\n", 8), 0);
	ck_assert_int_eq(ks_keyring_add_kms_file(r, path), -EINVAL);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(log, "chmod 600"));
	ck_assert_ptr_nonnull(strstr(log, "line 2"));
	ck_assert_ptr_null(strstr(log, "Zq9"));
	free(log);
	ks_keyring_free(r);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

/* --- chains -------------------------------------------------------------- */

START_TEST(test_chain_passphrase)
{
	char *dir = tl_tmpdir_new();
	struct secret *dk, *want;
	struct ks_keyring *r;
	struct buf ei;
	int dfd = open_dir(dir);

	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert_int_eq(ks_chain_unlock(r, dfd, "t", &dk), -ENOKEY);
	ck_assert_int_eq(
	    ks_keyring_set_passphrase(r, (const uint8_t *)PASS, strlen(PASS)),
	    0);
	ck_assert_int_eq(ks_chain_unlock(r, dfd, "t", &dk), -ENOENT);
	buf_init(&ei, 0);
	ck_assert_int_eq(ks_chain_create(r, &dk, &ei), 0);
	ck_assert_uint_eq(ei.len, 18);
	ck_assert_uint_eq(ei.data[0], 0x12);
	ck_assert_uint_eq(ei.data[1], 0x10);
	ck_assert_int_eq(ks_derive_passphrase((const uint8_t *)PASS,
					      strlen(PASS), ei.data + 2, 16,
					      &want),
			 0);
	ck_assert(secret_equal(dk, want));
	ck_assert_int_eq(ks_chain_write_encinfo(dfd, &ei), 0);
	ck_assert_int_eq(ks_chain_write_encinfo(dfd, &ei), -EEXIST);
	ck_assert_int_eq(unlock_eq(r, dfd, dk), 0);
	ck_assert_int_eq(ks_chain_check_writable(r, dfd), 0);
	buf_release(&ei);
	secret_free(dk);
	secret_free(want);
	ks_keyring_free(r);
	close(dfd);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

/* The CockroachDB collection: its full backup's ENCRYPTION-INFO. */
START_TEST(test_chain_crdb_collection)
{
	char *path = tl_shared_path(
	    "vectors/crdb-collection/collection/2023/07/14-211406.03");
	struct ks_keyring *r;
	struct secret *dk;
	int dfd = open_dir(path);

	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert_int_eq(
	    ks_keyring_set_passphrase(r, (const uint8_t *)PASS, strlen(PASS)),
	    0);
	ck_assert_int_eq(ks_chain_unlock(r, dfd, "t", &dk), 0);
	assert_hex(dk, "41a43ecbc7f48defc98455b017667d9d"
		       "b11a01e4576d940e1e6952e402b002cc");
	secret_free(dk);
	ks_keyring_free(r);
	close(dfd);
	free(path);
}
END_TEST

struct kms_fixture {
	char *dir;
	char a[512], b[512], c[512], d[512];
	int dfd;
	struct secret *dk;
};

/* A chain created with KMSes a and b, written into dir. */
static void fixture_setup(struct kms_fixture *f)
{
	struct ks_keyring *ab;
	uint8_t mk[32];
	struct encinfo ei;
	struct buf bytes;

	f->dir = tl_tmpdir_new();
	make_key(f->dir, "a", f->a);
	make_key(f->dir, "b", f->b);
	make_key(f->dir, "c", f->c);
	make_key(f->dir, "d", f->d);
	f->dfd = open_dir(f->dir);
	ab = ring(f->a, f->b, NULL);
	buf_init(&bytes, 0);
	ck_assert_int_eq(ks_chain_create(ab, &f->dk, &bytes), 0);
	ck_assert_int_eq(ks_chain_write_encinfo(f->dfd, &bytes), 0);
	encinfo_init(&ei);
	ck_assert_int_eq(encinfo_decode(bytes.data, bytes.len, &ei), 0);
	ck_assert_uint_eq(ei.n, 2);
	ck_assert_uint_eq(ei.saltlen, 0);
	for (size_t i = 0; i < 2; i++) { /* keyring order */
		ks_kms_map_key(ks_keyring_kms(ab, i), mk);
		ck_assert_mem_eq(ei.entries[i].key, mk, 32);
		ck_assert_uint_eq(ei.entries[i].vallen, 61);
	}
	encinfo_release(&ei);
	buf_release(&bytes);
	ks_keyring_free(ab);
}

static void fixture_teardown(struct kms_fixture *f)
{
	secret_free(f->dk);
	close(f->dfd);
	ck_assert_int_eq(tl_tmpdir_remove(f->dir), 0);
}

static int unlock_with(struct kms_fixture *f, const char *u1, const char *u2)
{
	struct ks_keyring *r = ring(u1, u2, NULL);
	int rc = unlock_eq(r, f->dfd, f->dk);

	ks_keyring_free(r);
	return rc;
}

static int writable_with(struct kms_fixture *f, const char *u1, const char *u2)
{
	struct ks_keyring *r = ring(u1, u2, NULL);
	int rc = ks_chain_check_writable(r, f->dfd);

	ks_keyring_free(r);
	return rc;
}

START_TEST(test_chain_kms)
{
	struct kms_fixture f;

	fixture_setup(&f);
	ck_assert_int_eq(unlock_with(&f, f.a, NULL), 0);
	ck_assert_int_eq(unlock_with(&f, f.b, NULL), 0);
	ck_assert_int_eq(unlock_with(&f, f.c, NULL), -ENOKEY);
	ck_assert_int_eq(unlock_with(&f, f.c, f.b), 0); /* forgiving */
	ck_assert_int_eq(writable_with(&f, f.a, f.b), 0);
	ck_assert_int_eq(writable_with(&f, f.b, NULL), 0);
	ck_assert_int_eq(writable_with(&f, f.c, NULL), -ENOKEY);
	ck_assert_int_eq(writable_with(&f, f.a, f.c), -ENOKEY);
	fixture_teardown(&f);
}
END_TEST

static int add_kms(struct kms_fixture *f, const char *old, const char *new,
		   struct buf *name)
{
	struct ks_keyring *o = ring(old, NULL), *n = ring(new, NULL);
	int rc = ks_chain_add_kms(o, n, f->dfd, name);

	ks_keyring_free(o);
	ks_keyring_free(n);
	return rc;
}

START_TEST(test_chain_add_kms)
{
	struct ks_keyring *c;
	struct kms_fixture f;
	struct encinfo ei;
	struct buf name;
	uint8_t mk[32];

	fixture_setup(&f);
	buf_init(&name, 0);
	ck_assert_int_eq(add_kms(&f, f.a, f.c, &name), 0);
	ck_assert_str_eq((const char *)name.data, "ENCRYPTION-INFO-2");
	encinfo_init(&ei);
	ck_assert_int_eq(encinfo_read(f.dfd, "ENCRYPTION-INFO-2", &ei), 0);
	ck_assert_uint_eq(ei.n, 1); /* only the new entry */
	c = ring(f.c, NULL);
	ks_kms_map_key(ks_keyring_kms(c, 0), mk);
	ck_assert_mem_eq(ei.entries[0].key, mk, 32);
	ks_keyring_free(c);
	encinfo_release(&ei);
	ck_assert_int_eq(unlock_with(&f, f.c, NULL), 0);
	ck_assert_int_eq(unlock_with(&f, f.a, NULL), 0);
	ck_assert_int_eq(writable_with(&f, f.c, NULL), 0);
	ck_assert_int_eq(writable_with(&f, f.a, f.c), -ENOKEY);

	/* an OLD_KMS that matches nothing: fails, writes nothing */
	ck_assert_int_eq(add_kms(&f, f.d, f.d, NULL), -ENOKEY);
	ck_assert_uint_eq(count_encinfo(f.dfd), 2);
	ck_assert_int_eq(unlock_with(&f, f.d, NULL), -ENOKEY);
	/* the ALTER-added key can ALTER in turn */
	buf_reset(&name);
	ck_assert_int_eq(add_kms(&f, f.c, f.d, &name), 0);
	ck_assert_str_eq((const char *)name.data, "ENCRYPTION-INFO-3");
	ck_assert_int_eq(unlock_with(&f, f.d, NULL), 0);
	buf_release(&name);
	fixture_teardown(&f);
}
END_TEST

START_TEST(test_chain_damaged)
{
	static const uint8_t junk[] = {0x12, 0x7f};
	struct kms_fixture f;
	struct encinfo ei;
	struct buf bytes;
	int fd;

	fixture_setup(&f);
	/* a malformed newer file: unlock goes on, writers refuse */
	fd = openat(f.dfd, "ENCRYPTION-INFO-2", O_WRONLY | O_CREAT, 0644);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), 2);
	close(fd);
	ck_assert_int_eq(unlock_with(&f, f.a, NULL), 0);
	ck_assert_int_eq(writable_with(&f, f.a, NULL), -EPROTO);
	ck_assert_int_eq(add_kms(&f, f.a, f.c, NULL), -EPROTO);
	ck_assert_int_eq(unlinkat(f.dfd, "ENCRYPTION-INFO-2", 0), 0);
	/* a tampered wrapped key: -EBADMSG */
	encinfo_init(&ei);
	ck_assert_int_eq(encinfo_read(f.dfd, "ENCRYPTION-INFO", &ei), 0);
	ei.entries[0].val[30] ^= 1;
	buf_init(&bytes, 0);
	ck_assert_int_eq(encinfo_encode(&ei, &bytes), 0);
	ck_assert_int_eq(unlinkat(f.dfd, "ENCRYPTION-INFO", 0), 0);
	ck_assert_int_eq(ks_chain_write_encinfo(f.dfd, &bytes), 0);
	ck_assert_int_eq(unlock_with(&f, f.a, NULL), -EBADMSG);
	ck_assert_int_eq(unlock_with(&f, f.a, f.b), 0);
	ck_assert_int_eq(add_kms(&f, f.a, f.c, NULL), -EBADMSG);
	ck_assert_uint_eq(count_encinfo(f.dfd), 1);
	buf_release(&bytes);
	encinfo_release(&ei);
	fixture_teardown(&f);
}
END_TEST

/* Write an ENCRYPTION-INFO* file holding salt (may be NULL) and, if
 * kms_uri is set, an entry for that KMS with the blob val[0..len). */
static void put_file(int dfd, const char *name, const uint8_t *salt,
		     const char *kms_uri, const uint8_t *val, size_t len)
{
	struct ks_keyring *r;
	struct encinfo ei;
	struct buf bytes;
	uint8_t mk[32];

	encinfo_init(&ei);
	buf_init(&bytes, 0);
	if (salt)
		ck_assert_int_eq(encinfo_set_salt(&ei, salt, KS_SALT_SIZE), 0);
	if (kms_uri) {
		r = ring(kms_uri, NULL);
		ks_kms_map_key(ks_keyring_kms(r, 0), mk);
		ck_assert_int_eq(encinfo_put(&ei, mk, 32, val, len), 0);
		ks_keyring_free(r);
	}
	ck_assert_int_eq(encinfo_encode(&ei, &bytes), 0);
	ck_assert_int_eq(encinfo_write(dfd, name, bytes.data, bytes.len), 0);
	buf_release(&bytes);
	encinfo_release(&ei);
}

/* A passphrase chain takes its salt from the salted files: unsalted and
 * malformed files are passed over; salted ones must all agree (issue 8
 * item 1: a planted salt is refused, naming both files). */
START_TEST(test_chain_walk_salt)
{
	static const uint8_t junk[] = {0x12, 0x7f}, s1[16] = {1}, s2[16] = {2},
			     blob[4] = {1, 2, 3, 4};
	char *dir = tl_tmpdir_new(), a[512], *log;
	struct secret *want, *got;
	struct ks_keyring *r;
	int dfd = open_dir(dir);

	make_key(dir, "a", a);
	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert_int_eq(
	    ks_keyring_set_passphrase(r, (const uint8_t *)PASS, strlen(PASS)),
	    0);
	ck_assert_int_eq(encinfo_write(dfd, "ENCRYPTION-INFO-4", junk, 2), 0);
	ck_assert_int_eq(ks_chain_unlock(r, dfd, "t", &got), -EPROTO);
	put_file(dfd, "ENCRYPTION-INFO", s1, NULL, NULL, 0);
	put_file(dfd, "ENCRYPTION-INFO-10", s1, NULL, NULL, 0);
	put_file(dfd, "ENCRYPTION-INFO-3", NULL, a, blob, sizeof(blob));
	ck_assert_int_eq(ks_derive_passphrase((const uint8_t *)PASS,
					      strlen(PASS), s1, 16, &want),
			 0);
	ck_assert_int_eq(unlock_eq(r, dfd, want), 0);
	secret_free(want);
	put_file(dfd, "ENCRYPTION-INFO-2", s2, NULL, NULL, 0);
	tl_capture_begin();
	ck_assert_int_eq(ks_chain_unlock(r, dfd, "t", &got), -EKEYREJECTED);
	log = tl_capture_end();
	ck_assert_ptr_null(got);
	ck_assert_ptr_nonnull(
	    strstr(log, "ENCRYPTION-INFO-2 and ENCRYPTION-INFO-10 hold "
			"different salts"));
	free(log);
	ks_keyring_free(r);
	close(dfd);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

/* ADD NEW_KMS unlocks with the OLD_KMSes as reading does (CockroachDB
 * stops at the first one; here the key must be trusted): when c's entry
 * fails, a's opens the chain. */
START_TEST(test_chain_walk_old_kms)
{
	struct ks_keyring *ca, *ac, *n;
	struct kms_fixture f;
	struct encinfo ei;
	struct buf bytes;

	fixture_setup(&f);
	ck_assert_int_eq(add_kms(&f, f.a, f.c, NULL), 0);
	/* spoil c's entry in ENCRYPTION-INFO-2 */
	encinfo_init(&ei);
	ck_assert_int_eq(encinfo_read(f.dfd, "ENCRYPTION-INFO-2", &ei), 0);
	ei.entries[0].val[30] ^= 1;
	buf_init(&bytes, 0);
	ck_assert_int_eq(encinfo_encode(&ei, &bytes), 0);
	ck_assert_int_eq(unlinkat(f.dfd, "ENCRYPTION-INFO-2", 0), 0);
	ck_assert_int_eq(
	    encinfo_write(f.dfd, "ENCRYPTION-INFO-2", bytes.data, bytes.len),
	    0);
	ca = ring(f.c, f.a, NULL);
	ac = ring(f.a, f.c, NULL);
	n = ring(f.d, NULL);
	ck_assert_int_eq(ks_chain_add_kms(ca, n, f.dfd, NULL), 0);
	ck_assert_uint_eq(count_encinfo(f.dfd), 3);
	ck_assert_int_eq(ks_chain_add_kms(ac, n, f.dfd, NULL), 0);
	ck_assert_uint_eq(count_encinfo(f.dfd), 4);
	/* unlocking is forgiving: c fails, a unlocks */
	ck_assert_int_eq(unlock_eq(ca, f.dfd, f.dk), 0);
	ck_assert_int_eq(unlock_with(&f, f.d, NULL), 0);
	ks_keyring_free(ca);
	ks_keyring_free(ac);
	ks_keyring_free(n);
	buf_release(&bytes);
	encinfo_release(&ei);
	fixture_teardown(&f);
}
END_TEST

START_TEST(test_chain_bad_input)
{
	struct ks_keyring *empty, *pass;
	struct kms_fixture f;
	struct secret *dk;
	struct buf bytes;

	fixture_setup(&f);
	ck_assert_int_eq(ks_keyring_new(&empty), 0);
	ck_assert_int_eq(ks_keyring_new(&pass), 0);
	ck_assert_int_eq(
	    ks_keyring_set_passphrase(pass, (const uint8_t *)"x", 1), 0);
	buf_init(&bytes, 0);
	ck_assert_int_eq(ks_chain_create(empty, &dk, &bytes), -EINVAL);
	ck_assert_ptr_null(dk);
	ck_assert_uint_eq(bytes.len, 0);
	ck_assert_int_eq(ks_chain_add_kms(pass, empty, f.dfd, NULL), -EINVAL);
	ck_assert_int_eq(ks_chain_check_writable(empty, f.dfd), -ENOKEY);
	/* a passphrase for a KMS chain: no salt to derive from */
	ck_assert_int_eq(ks_chain_unlock(pass, f.dfd, "t", &dk), -ENOKEY);
	ck_assert(ks_is_encinfo_name("ENCRYPTION-INFO"));
	ck_assert(ks_is_encinfo_name("ENCRYPTION-INFO-12"));
	ck_assert(!ks_is_encinfo_name("encryption-info"));
	ck_assert(!ks_is_encinfo_name("BACKUP_MANIFEST"));
	buf_release(&bytes);
	ks_keyring_free(empty);
	ks_keyring_free(pass);
	fixture_teardown(&f);
}
END_TEST

/* Full verbosity, every path that logs: no key bytes in the output. */
START_TEST(test_no_secret_in_log)
{
	char *dir = tl_tmpdir_new(), path[400], uri[512], *log, hex[65];
	struct ks_keyring *r;
	struct secret *dk = NULL;
	struct buf ei;
	uint8_t *key;
	size_t len;
	int dfd = open_dir(dir);

	log_set_level(LOG_LVL_DEBUG);
	tl_capture_begin();
	make_key(dir, "a", uri);
	r = ring(uri, NULL);
	buf_init(&ei, 0);
	ck_assert_int_eq(ks_chain_create(r, &dk, &ei), 0);
	ck_assert_int_eq(ks_chain_write_encinfo(dfd, &ei), 0);
	ck_assert_int_eq(ks_chain_write_encinfo(dfd, &ei), -EEXIST);
	ck_assert_int_eq(unlock_eq(r, dfd, dk), 0);
	ks_keyring_free(r);
	snprintf(path, sizeof(path), "%s/a", dir);
	chmod(path, 0644);
	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert_int_eq(ks_keyring_add_kms(r, uri), -EPERM);
	ck_assert_int_eq(
	    ks_keyring_set_passphrase(r, (const uint8_t *)PASS, strlen(PASS)),
	    0);
	ck_assert_int_eq(ks_chain_unlock(r, dfd, "t", &(struct secret *){NULL}),
			 -ENOKEY);
	ks_keyring_free(r);
	log = tl_capture_end();
	ck_assert_int_eq(tl_read_file(path, &key, &len), 0);
	tl_hex_encode(key, 32, hex);
	ck_assert_ptr_null(strstr(log, hex));
	tl_hex_encode(dk->bytes, 32, hex);
	ck_assert_ptr_null(strstr(log, hex));
	ck_assert_ptr_null(strstr(log, PASS));
	ck_assert(memmem(log, strlen(log), key, 8) == NULL);
	free(key);
	free(log);
	buf_release(&ei);
	secret_free(dk);
	close(dfd);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

static Suite *keystore_suite(void)
{
	Suite *s = suite_create("keystore");
	TCase *tp = tcase_create("pbkdf2");
	TCase *tl = tcase_create("local");
	TCase *tc = tcase_create("chains");

	tcase_set_timeout(tp, 60);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tp, test_pbkdf2);
	tcase_add_test(tl, test_keygen);
	tcase_add_test(tl, test_local_refuses);
	tcase_add_test(tl, test_local_wrap);
	tcase_add_test(tl, test_local_key_id);
	tcase_add_test(tl, test_keyring_rules);
	tcase_add_test(tl, test_keyring_file);
	tcase_add_test(tc, test_chain_passphrase);
	tl_add_shared_test(tc, test_chain_crdb_collection,
			   "vectors/crdb-collection");
	tcase_add_test(tc, test_chain_kms);
	tcase_add_test(tc, test_chain_add_kms);
	tcase_add_test(tc, test_chain_damaged);
	tcase_add_test(tc, test_chain_walk_salt);
	tcase_add_test(tc, test_chain_walk_old_kms);
	tcase_add_test(tc, test_chain_bad_input);
	tcase_add_test(tc, test_no_secret_in_log);
	suite_add_tcase(s, tp);
	suite_add_tcase(s, tl);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	log_set_level(LOG_LVL_DEBUG);
	return tl_run(keystore_suite());
}
