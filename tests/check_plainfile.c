/*
 * check_plainfile.c - plaintext and checksum files: the checksum mapping
 * (an involution swapping SHA-256(plaintext)[:4] and SHA-256(stored)[:4]),
 * the basis computed from CockroachDB's own v1 and v2 files (complete,
 * cut, damaged, missing, not encrypted, no key, a FIFO), passthrough of
 * plaintext files, and checksum files written whole, in pieces, grown and
 * shrunk past 4 bytes, with the host's lock always released.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fs/plainfile.h"
#include "testlib.h"

#define VEC_KEY                                                                \
	"6b6d7366732d7075626c69632d746573742d6b65792d33326279746573212121"

static char *dir;
static int dirfd_;
static struct cf_key *vk;

static void setup(void)
{
	struct secret *s = secret_new(CF_KEY_SIZE);

	dir = tl_tmpdir_new();
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(tl_hex_decode(VEC_KEY, s->bytes, CF_KEY_SIZE),
			 CF_KEY_SIZE);
	ck_assert_int_eq(cf_key_new(s, &vk), 0);
	secret_free(s);
}

static void teardown(void)
{
	cf_key_free(vk);
	close(dirfd_);
	tl_tmpdir_remove(dir);
}

/* SHA-256(data)[:4] */
static void ck4(const void *data, size_t len, uint8_t out[4])
{
	char hex[TL_SHA256_HEX_SIZE];

	tl_sha256_hex(data, len, hex);
	hex[8] = '\0';
	ck_assert_int_eq(tl_hex_decode(hex, out, 4), 4);
}

/* Copy vectors/crdb/<name> into the test directory as "X". */
static void put_vector(const char *name, uint8_t **data, size_t *len)
{
	char rel[128], *path, dst[512];

	snprintf(rel, sizeof(rel), "vectors/crdb/%s", name);
	path = tl_shared_path(rel);
	ck_assert_int_eq(tl_read_file(path, data, len), 0);
	free(path);
	snprintf(dst, sizeof(dst), "%s/X", dir);
	ck_assert_int_eq(tl_write_file(dst, *data, *len), 0);
}

static uint8_t *read_vector(const char *name, size_t *len)
{
	char rel[128], *path;
	uint8_t *d;

	snprintf(rel, sizeof(rel), "vectors/crdb/%s", name);
	path = tl_shared_path(rel);
	ck_assert_int_eq(tl_read_file(path, &d, len), 0);
	free(path);
	return d;
}

/* The basis of X must be (SHA(plain)[:4], SHA(stored)[:4]). */
static void check_vector(const char *enc, const char *plain)
{
	uint8_t *ct, *pt, p[4], s[4];
	size_t clen, plen;
	struct pf_basis b;

	put_vector(enc, &ct, &clen);
	pt = read_vector(plain, &plen);
	ck4(ct, clen, s);
	ck4(pt, plen, p);
	ck_assert_int_eq(pfile_basis_at(dirfd_, "X", LAYOUT_ENCRYPTED, vk, &b),
			 0);
	ck_assert(b.on);
	ck_assert_mem_eq(b.p, p, 4);
	ck_assert_mem_eq(b.s, s, 4);
	free(ct);
	free(pt);
}

START_TEST(test_map_involution)
{
	struct pf_basis b = {.on = true, .p = {1, 2, 3, 4}, .s = {5, 6, 7, 8}};
	uint8_t x[4] = {1, 2, 3, 4}, y[4] = {9, 9, 9, 9}, z[4];

	pfile_ck_map(&b, x, z);
	ck_assert_mem_eq(z, b.s, 4);
	pfile_ck_map(&b, z, z); /* in place, and back */
	ck_assert_mem_eq(z, b.p, 4);
	pfile_ck_map(&b, y, z);
	ck_assert_mem_eq(z, y, 4);
	b.on = false;
	pfile_ck_map(&b, x, z);
	ck_assert_mem_eq(z, x, 4);
}
END_TEST

START_TEST(test_basis_vectors)
{
	/* chunk edges of v2, and v1 (one GCM message) */
	check_vector("v2-0.enc", "v2-0.plain");
	check_vector("v2-100.enc", "v2-100.plain");
	check_vector("v2-65536.enc", "v2-65536.plain");
	check_vector("v2-131073.enc", "v2-131073.plain");
	check_vector("v1-33.enc", "v1-33.plain");
	check_vector("v1-70000.enc", "v1-70000.plain");
}
END_TEST

START_TEST(test_basis_off)
{
	char path[512];
	struct pf_basis b;
	uint8_t *ct;
	size_t len;

	/* missing, and a name that is not a regular file */
	ck_assert_int_eq(pfile_basis_at(dirfd_, "X", LAYOUT_ENCRYPTED, vk, &b),
			 0);
	ck_assert(!b.on);
	snprintf(path, sizeof(path), "%s/X", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(pfile_basis_at(dirfd_, "X", LAYOUT_ENCRYPTED, vk, &b),
			 0);
	ck_assert(!b.on);
	unlink(path);
	/* plaintext kinds never map, whatever the content */
	put_vector("v2-100.enc", &ct, &len);
	ck_assert_int_eq(pfile_basis_at(dirfd_, "X", LAYOUT_PLAINTEXT, vk, &b),
			 0);
	ck_assert(!b.on);
	/* an encrypted file and no key */
	ck_assert_int_eq(
	    pfile_basis_at(dirfd_, "X", LAYOUT_ENCRYPTED, NULL, &b), -ENOKEY);
	/* damaged: one bit */
	ct[len / 2] ^= 1;
	ck_assert_int_eq(tl_write_file(path, ct, len), 0);
	ck_assert_int_eq(pfile_basis_at(dirfd_, "X", LAYOUT_ENCRYPTED, vk, &b),
			 0);
	ck_assert(!b.on);
	free(ct);
	/* cut at a chunk boundary (being written), empty, not encrypted */
	put_vector("v2-131072.enc", &ct, &len);
	ck_assert_int_eq(tl_write_file(path, ct, 20 + 65552), 0);
	ck_assert_int_eq(pfile_basis_at(dirfd_, "X", LAYOUT_ENCRYPTED, vk, &b),
			 0);
	ck_assert(!b.on);
	ck_assert_int_eq(tl_write_file(path, "", 0), 0);
	ck_assert_int_eq(
	    pfile_basis_at(dirfd_, "X", LAYOUT_ENCRYPTED, NULL, &b), 0);
	ck_assert(!b.on);
	ck_assert_int_eq(tl_write_file(path, "lock", 4), 0);
	ck_assert_int_eq(
	    pfile_basis_at(dirfd_, "X", LAYOUT_ENCRYPTED, NULL, &b), 0);
	ck_assert(!b.on);
	free(ct);
}
END_TEST

/* --- open files ------------------------------------------------------- */

static struct pf_basis host_b = {
    .on = true, .p = {'P', 'P', 'P', 'P'}, .s = {'S', 'S', 'S', 'S'}};
static int host_depth, host_calls, host_err;

static int h_begin(void *ctx)
{
	(void)ctx;
	ck_assert_int_eq(host_depth, 0);
	host_depth++;
	return 0;
}

static int h_basis(void *ctx, struct pf_basis *out)
{
	(void)ctx;
	ck_assert_int_eq(host_depth, 1);
	host_calls++;
	*out = host_b;
	return host_err;
}

static void h_end(void *ctx)
{
	(void)ctx;
	host_depth--;
}

static const struct pfile_host host = {NULL, h_begin, h_basis, h_end};

static struct pfile *open_f(const char *name, bool ck)
{
	char path[512];
	struct pfile *pf;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pfile_open(fd, true, ck ? &host : NULL, name, &pf), 0);
	return pf;
}

/* The backing file's bytes. */
static size_t stored(const char *name, uint8_t *buf, size_t cap)
{
	char path[512];
	uint8_t *d;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(tl_read_file(path, &d, &len), 0);
	ck_assert_uint_le(len, cap);
	memcpy(buf, d, len);
	free(d);
	return len;
}

static size_t shown(struct pfile *pf, uint8_t *buf, size_t cap)
{
	size_t got;

	ck_assert_int_eq(pfile_read(pf, buf, cap, 0, &got), 0);
	return got;
}

START_TEST(test_plaintext_passthrough)
{
	struct pfile *pf = open_f("LATEST", false);
	uint8_t buf[64];
	size_t got;

	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"/2023/07", 8, 0), 0);
	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"PPPP", 4, 10), 0);
	ck_assert_uint_eq(pfile_size(pf), 14);
	ck_assert_uint_eq(stored("LATEST", buf, sizeof(buf)), 14);
	ck_assert_mem_eq(buf, "/2023/07\0\0PPPP", 14);
	ck_assert_int_eq(pfile_truncate(pf, 4), 0);
	ck_assert_uint_eq(shown(pf, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "/202", 4); /* 4 bytes: never mapped */
	ck_assert_int_eq(pfile_read(pf, buf, 10, 3, &got), 0);
	ck_assert_uint_eq(got, 1);
	ck_assert_int_eq(pfile_commit(pf, true), 0);
	ck_assert_int_eq(host_calls, 0);
	pfile_close(pf);
}
END_TEST

START_TEST(test_readonly)
{
	char path[512];
	struct pfile *pf;
	uint8_t buf[8];
	int fd;

	snprintf(path, sizeof(path), "%s/r", dir);
	ck_assert_int_eq(tl_write_file(path, "lock", 4), 0);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(pfile_open(fd, false, NULL, "r", &pf), 0);
	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"x", 1, 0), -EBADF);
	ck_assert_int_eq(pfile_truncate(pf, 0), -EBADF);
	ck_assert(!pfile_writable(pf));
	pfile_set_writable_fd(pf, open(path, O_RDWR));
	ck_assert(pfile_writable(pf));
	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"L", 1, 0), 0);
	ck_assert_uint_eq(shown(pf, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "Lock", 4);
	pfile_close(pf);
}
END_TEST

START_TEST(test_checksum_whole)
{
	struct pfile *pf = open_f("X-CHECKSUM", true);
	uint8_t buf[16];

	/* CockroachDB's write: the plaintext checksum, stored as S */
	ck_assert_int_eq(pfile_write(pf, host_b.p, 4, 0), 0);
	ck_assert_uint_eq(stored("X-CHECKSUM", buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, host_b.s, 4);
	ck_assert_uint_eq(shown(pf, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, host_b.p, 4);
	ck_assert_uint_eq(pfile_size(pf), 4);
	/* a wrong one stays wrong on both sides */
	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"PPPX", 4, 0), 0);
	stored("X-CHECKSUM", buf, sizeof(buf));
	ck_assert_mem_eq(buf, "PPPX", 4);
	/* one byte changed back: P again, stored S */
	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"P", 1, 3), 0);
	stored("X-CHECKSUM", buf, sizeof(buf));
	ck_assert_mem_eq(buf, host_b.s, 4);
	/* the stored bytes written through the mount are a mismatch */
	ck_assert_int_eq(pfile_write(pf, host_b.s, 4, 0), 0);
	stored("X-CHECKSUM", buf, sizeof(buf));
	ck_assert_mem_eq(buf, host_b.p, 4);
	ck_assert_uint_eq(shown(pf, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, host_b.s, 4);
	ck_assert_int_eq(host_depth, 0);
	pfile_close(pf);
}
END_TEST

START_TEST(test_checksum_pieces)
{
	struct pfile *pf = open_f("c", true);
	uint8_t buf[16];
	size_t got;

	/* two halves: stored raw at 2 bytes, mapped at 4 */
	ck_assert_int_eq(pfile_write(pf, host_b.p, 2, 0), 0);
	ck_assert_uint_eq(stored("c", buf, sizeof(buf)), 2);
	ck_assert_mem_eq(buf, "PP", 2);
	ck_assert_int_eq(pfile_write(pf, host_b.p, 2, 2), 0);
	stored("c", buf, sizeof(buf));
	ck_assert_mem_eq(buf, host_b.s, 4);
	/* a read from the middle */
	ck_assert_int_eq(pfile_read(pf, buf, 8, 2, &got), 0);
	ck_assert_uint_eq(got, 2);
	ck_assert_mem_eq(buf, "PP", 2);
	/* grown past 4: what it showed, then the new bytes */
	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"zz", 2, 4), 0);
	ck_assert_uint_eq(stored("c", buf, sizeof(buf)), 6);
	ck_assert_mem_eq(buf, "PPPPzz", 6);
	ck_assert_uint_eq(shown(pf, buf, sizeof(buf)), 6);
	ck_assert_mem_eq(buf, "PPPPzz", 6);
	/* cut back to 4: mapped again; to 2: what it showed */
	ck_assert_int_eq(pfile_truncate(pf, 4), 0);
	ck_assert_uint_eq(stored("c", buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, host_b.s, 4);
	ck_assert_int_eq(pfile_truncate(pf, 2), 0);
	ck_assert_uint_eq(stored("c", buf, sizeof(buf)), 2);
	ck_assert_mem_eq(buf, "PP", 2);
	/* extended by truncation to 4: zeros, not P: stored as they are */
	ck_assert_int_eq(pfile_truncate(pf, 4), 0);
	ck_assert_uint_eq(stored("c", buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "PP\0\0", 4);
	ck_assert_int_eq(host_depth, 0);
	pfile_close(pf);
}
END_TEST

START_TEST(test_checksum_host_error)
{
	struct pfile *pf = open_f("e", true);
	uint8_t buf[16];
	size_t got;

	ck_assert_int_eq(pfile_write(pf, host_b.p, 4, 0), 0);
	host_err = -ENOKEY;
	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"Q", 1, 0), -ENOKEY);
	ck_assert_int_eq(pfile_read(pf, buf, 4, 0, &got), -ENOKEY);
	ck_assert_int_eq(host_depth, 0);
	host_err = 0;
	stored("e", buf, sizeof(buf));
	ck_assert_mem_eq(buf, host_b.s, 4); /* untouched */
	/* not 4 bytes: no basis needed */
	host_err = -ENOKEY;
	ck_assert_int_eq(pfile_truncate(pf, 0), -ENOKEY);
	host_err = 0;
	ck_assert_int_eq(pfile_truncate(pf, 0), 0);
	host_err = -ENOKEY;
	ck_assert_int_eq(pfile_write(pf, (const uint8_t *)"abcdef", 6, 0), 0);
	host_err = 0;
	pfile_close(pf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plainfile");
	TCase *tc = tcase_create("all");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_map_involution);
	tl_add_shared_test(tc, test_basis_vectors, "vectors/crdb/");
	tl_add_shared_test(tc, test_basis_off, "vectors/crdb/");
	tcase_add_test(tc, test_plaintext_passthrough);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_checksum_whole);
	tcase_add_test(tc, test_checksum_pieces);
	tcase_add_test(tc, test_checksum_host_error);
	suite_add_tcase(s, tc);
	return tl_run(s);
}
