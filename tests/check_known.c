/*
 * check_known.c - key trust (issue 8 item 1) below the mount: the
 * known-keys record (keystore/known.c): the fingerprint against an
 * independent HMAC, creating the file (0600, in directories made 0700)
 * with one line per key, lookups by a second reader and reading again
 * when another writer appended, the chain directory recorded with another
 * key, lines that are not records, and a file others may write refused;
 * and ks_chain_unlock refusing a chain whose ENCRYPTION-INFO files hold
 * different keys.  (Cloud-only keys and the record end to end: the mount
 * test t_trust, against the Azure emulator.)
 */
#include "../keystore/known.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../keystore/encinfo.h"
#include "../keystore/keystore.h"
#include "testlib.h"

static char *dir;
static char path[512];

static void setup(void)
{
	dir = tl_tmpdir_new();
	snprintf(path, sizeof(path), "%s/state/kmsfs/known-keys", dir);
}

static void teardown(void)
{
	tl_tmpdir_remove(dir);
}

static void fp_of(uint8_t seed, uint8_t fp[KNOWN_FP_SIZE])
{
	struct secret *k = secret_new(32);

	for (int i = 0; i < 32; i++)
		k->bytes[i] = (uint8_t)(seed + i);
	ck_assert_int_eq(known_fingerprint(k, fp), 0);
	secret_free(k);
}

static int lookup(struct ks_known *k, const uint8_t *fp, const char *where,
		  bool *changed)
{
	bool dummy;

	return known_lookup(k, fp, where, changed ? changed : &dummy);
}

START_TEST(test_fingerprint)
{
	uint8_t fp[KNOWN_FP_SIZE], fp1[KNOWN_FP_SIZE];
	char hex[2 * KNOWN_FP_SIZE + 1];

	/* HMAC-SHA256(key = 00..1f, "kmsfs chain key fingerprint v1"),
	 * computed with Python's hmac module */
	fp_of(0, fp);
	tl_hex_encode(fp, sizeof(fp), hex);
	ck_assert_str_eq(hex, "93ced774434c1189758b853a244c7ece"
			      "73108371f09a049e8e800aabf8d33a06");
	fp_of(1, fp1);
	ck_assert_mem_ne(fp, fp1, sizeof(fp));
}
END_TEST

START_TEST(test_add_and_lookup)
{
	uint8_t a[KNOWN_FP_SIZE], b[KNOWN_FP_SIZE];
	struct ks_known *k1, *k2;
	struct stat st;
	char sub[600], *text;
	size_t len;
	regex_t re;

	fp_of(0, a);
	fp_of(1, b);
	ck_assert_int_eq(known_new(path, false, &k1), 0);
	ck_assert(!known_accept_new(k1));
	ck_assert_str_eq(known_path(k1), path);
	ck_assert_int_eq(lookup(k1, a, "/s/c1", NULL), 0); /* no file yet */
	ck_assert_int_eq(known_add(k1, a, "/s/c1"), 0);
	ck_assert_int_eq(known_add(k1, a, "/s/c1"), 0); /* once only */
	ck_assert_int_eq(lookup(k1, a, "/s/c1", NULL), 1);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	snprintf(sub, sizeof(sub), "%s/state", dir);
	ck_assert_int_eq(stat(sub, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(tl_read_file(path, (uint8_t **)&text, &len), 0);
	text = realloc(text, len + 1);
	text[len] = '\0';
	ck_assert_int_eq(regcomp(&re,
				 "^#[^\n]*\n#[^\n]*\nkfp1:[0-9a-f]{64} "
				 "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z "
				 "/s/c1\n$",
				 REG_EXTENDED),
			 0);
	ck_assert_msg(regexec(&re, text, 0, NULL, 0) == 0, "file: %s", text);
	regfree(&re);
	free(text);

	/* a second process sees the record, and later ones of the first */
	ck_assert_int_eq(known_new(path, true, &k2), 0);
	ck_assert(known_accept_new(k2));
	ck_assert_int_eq(lookup(k2, a, NULL, NULL), 1);
	ck_assert_int_eq(lookup(k2, b, NULL, NULL), 0);
	ck_assert_int_eq(known_add(k1, b, "/s/c2"), 0);
	ck_assert_int_eq(lookup(k2, b, NULL, NULL), 1);
	known_free(k1);
	known_free(k2);
}
END_TEST

START_TEST(test_changed_and_junk)
{
	static const char junk[] = "garbage\n# comment\nkfp1:zz /x\n"
				   "kfp1:0123 short\n\n";
	uint8_t a[KNOWN_FP_SIZE], b[KNOWN_FP_SIZE];
	struct ks_known *k;
	bool changed;
	FILE *f;

	fp_of(0, a);
	fp_of(1, b);
	ck_assert_int_eq(known_new(path, false, &k), 0);
	ck_assert_int_eq(known_add(k, a, "/s/c1"), 0);
	known_free(k);
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(junk, f), 0);
	fclose(f);
	ck_assert_int_eq(known_new(path, false, &k), 0);
	ck_assert_int_eq(lookup(k, a, "/s/c1", &changed), 1);
	ck_assert_int_eq(lookup(k, b, "/s/c1", &changed), 0);
	ck_assert(changed); /* c1 is recorded, with another key */
	ck_assert_int_eq(lookup(k, b, "/s/c2", &changed), 0);
	ck_assert(!changed);
	known_free(k);
}
END_TEST

START_TEST(test_unsafe_file_refused)
{
	uint8_t a[KNOWN_FP_SIZE], b[KNOWN_FP_SIZE];
	struct ks_known *k;
	char *log;

	fp_of(0, a);
	fp_of(1, b);
	ck_assert_int_eq(known_new(path, false, &k), 0);
	ck_assert_int_eq(known_add(k, a, "/s/c1"), 0);
	known_free(k);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(known_new(path, false, &k), 0);
	tl_capture_begin();
	ck_assert_int_eq(lookup(k, a, NULL, NULL), -EPERM);
	ck_assert_int_eq(known_add(k, b, "/s/c2"), -EPERM);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(log, "chmod 600"));
	free(log);
	known_free(k);
}
END_TEST

/* --- files that disagree ---------------------------------------------------
 */

/* A keyring of one new local key <dir>/<name>; its URI into uri. */
static struct ks_keyring *local_ring(const char *name, char uri[600])
{
	struct ks_keyring *r;
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	ck_assert_int_eq(ks_local_keygen(p), 0);
	snprintf(uri, 600, "file://%s", p);
	ck_assert_int_eq(ks_keyring_new(&r), 0);
	ck_assert_int_eq(ks_keyring_add_kms(r, uri), 0);
	return r;
}

/* An ENCRYPTION-INFO* file whose one entry is dk wrapped by r's KMS. */
static void put_wrapped(int dfd, const char *name, struct ks_keyring *r,
			const struct secret *dk)
{
	struct ks_kms *k = ks_keyring_kms(r, 0);
	struct buf blob, bytes;
	struct encinfo ei;
	uint8_t mk[32];

	encinfo_init(&ei);
	buf_init(&blob, 0);
	buf_init(&bytes, 0);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ks_kms_map_key(k, mk);
	ck_assert_int_eq(encinfo_put(&ei, mk, 32, blob.data, blob.len), 0);
	ck_assert_int_eq(encinfo_encode(&ei, &bytes), 0);
	ck_assert_int_eq(encinfo_write(dfd, name, bytes.data, bytes.len), 0);
	buf_release(&bytes);
	buf_release(&blob);
	encinfo_release(&ei);
}

/* Every file the keyring can unwrap must yield the same key: with
 * ENCRYPTION-INFO-2 wrapping another key for KMS b, a keyring with a and
 * b refuses the chain, naming both files, and add-kms with it writes
 * nothing; a keyring with only a (or only b) sees one key. */
START_TEST(test_files_disagree)
{
	char ua[600], ub[600], uc[600], *log;
	struct ks_keyring *a = local_ring("a", ua), *b = local_ring("b", ub);
	struct ks_keyring *c = local_ring("c", uc), *ab;
	struct secret *k1, *k2, *got;
	struct encinfo_names nm;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	ck_assert_int_eq(secret_random(&k1, 32), 0);
	ck_assert_int_eq(secret_random(&k2, 32), 0);
	put_wrapped(dfd, "ENCRYPTION-INFO", a, k1);
	put_wrapped(dfd, "ENCRYPTION-INFO-2", b, k2);
	ck_assert_int_eq(ks_chain_unlock(a, dfd, "c9", &got), 0);
	ck_assert(secret_equal(got, k1));
	secret_free(got);
	ck_assert_int_eq(ks_keyring_new(&ab), 0);
	ck_assert_int_eq(ks_keyring_add_kms(ab, ua), 0);
	ck_assert_int_eq(ks_keyring_add_kms(ab, ub), 0);
	tl_capture_begin();
	ck_assert_int_eq(ks_chain_unlock(ab, dfd, "c9", &got), -EKEYREJECTED);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(ks_chain_add_kms(ab, c, dfd, NULL), -EKEYREJECTED);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(log, "chain c9: ENCRYPTION-INFO-2 and "
					  "ENCRYPTION-INFO hold different "
					  "keys"));
	free(log);
	ck_assert_int_eq(encinfo_list(dfd, &nm), 0);
	ck_assert_uint_eq(nm.n, 2);
	encinfo_names_release(&nm);
	/* the same key in both: a legitimate ADD NEW_KMS */
	ck_assert_int_eq(unlinkat(dfd, "ENCRYPTION-INFO-2", 0), 0);
	put_wrapped(dfd, "ENCRYPTION-INFO-2", b, k1);
	ck_assert_int_eq(ks_chain_unlock(ab, dfd, "c9", &got), 0);
	ck_assert(secret_equal(got, k1));
	secret_free(got);
	secret_free(k1);
	secret_free(k2);
	close(dfd);
	ks_keyring_free(a);
	ks_keyring_free(b);
	ks_keyring_free(c);
	ks_keyring_free(ab);
}
END_TEST

static Suite *known_suite(void)
{
	Suite *s = suite_create("known");
	TCase *tc = tcase_create("record");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fingerprint);
	tcase_add_test(tc, test_add_and_lookup);
	tcase_add_test(tc, test_changed_and_junk);
	tcase_add_test(tc, test_unsafe_file_refused);
	tcase_add_test(tc, test_files_disagree);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(known_suite());
}
