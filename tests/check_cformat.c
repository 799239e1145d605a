/*
 * check_cformat.c - unit tests for fs/cformat.c.
 *
 * Ground truth first: every file CockroachDB itself encrypted
 * (shared/vectors/crdb) must decrypt, through the stream helper and chunk
 * by chunk.  Then kmsfs' own output is decrypted by an independent
 * implementation of the documented algorithm (tl_ref_decrypt_v2, itself
 * checked against CockroachDB's files), the spec §6.2 known answers are
 * checked, and each way of damaging a file (truncation, bit flips, wrong
 * key, reordering, trailing bytes, bad headers) must fail with the
 * documented code.
 */
#include "../fs/cformat.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "testlib.h"

#define VEC_DIR "vectors/crdb/"
#define VEC_KEY                                                                \
	"6b6d7366732d7075626c69632d746573742d6b65792d33326279746573212121"
#define KAT_KEY                                                                \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KAT_IV "000102030405060708090a0b"
#define NVEC_MIN 16 /* 13 v2 and 3 v1 cases, see vectors/README.md */

struct file {
	uint8_t *data;
	size_t len;
};

static void file_free(struct file *f)
{
	free(f->data);
	f->data = NULL;
	f->len = 0;
}

static struct file crdb_file(const char *name)
{
	char *rel, *path;
	struct file f;

	ck_assert_int_ge(asprintf(&rel, VEC_DIR "%s", name), 0);
	path = tl_shared_path(rel);
	ck_assert_msg(tl_read_file(path, &f.data, &f.len) == 0,
		      "cannot read %s", path);
	free(path);
	free(rel);
	return f;
}

static struct cf_key *key_hex(const char *hex)
{
	struct secret *s = secret_new(CF_KEY_SIZE);
	struct cf_key *k = NULL;

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(tl_hex_decode(hex, s->bytes, CF_KEY_SIZE),
			 CF_KEY_SIZE);
	ck_assert_int_eq(cf_key_new(s, &k), 0);
	secret_free(s);
	return k;
}

/* The vectors' key, set up before each test that uses it. */
static struct cf_key *vk;

static void vk_setup(void)
{
	vk = key_hex(VEC_KEY);
}

static void vk_teardown(void)
{
	cf_key_free(vk);
	vk = NULL;
}

static void assert_file_eq(const struct file *got, const struct file *want)
{
	ck_assert_uint_eq(got->len, want->len);
	ck_assert(want->len == 0 ||
		  memcmp(got->data, want->data, want->len) == 0);
}

typedef int (*fd_fn)(const struct cf_key *, int, int);

/* cf_decrypt_fd with v1 allowed (the vectors include v1 files). */
static int decrypt_all(const struct cf_key *k, int in, int out)
{
	return cf_decrypt_fd(k, in, out, CF_ALLOW_V1);
}

/* Run fn (cf_encrypt_fd or cf_decrypt_fd) from fd in (closed after) to
 * a memfd; *out gets what fn wrote, also when it failed. */
static int run_fd(fd_fn fn, const struct cf_key *k, int in, struct file *out)
{
	int o = tl_memfd(NULL, 0), r;

	r = fn(k, in, o);
	ck_assert_int_eq(tl_read_fd(o, &out->data, &out->len), 0);
	close(in);
	close(o);
	return r;
}

static int decrypt_mem(const struct cf_key *k, const uint8_t *ct, size_t len,
		       struct file *out)
{
	return run_fd(decrypt_all, k, tl_memfd(ct, len), out);
}

static int decrypt_rc(const struct cf_key *k, const uint8_t *ct, size_t len)
{
	struct file out;
	int r = decrypt_mem(k, ct, len, &out);

	file_free(&out);
	return r;
}

static struct file encrypt_mem(const struct cf_key *k, const uint8_t *plain,
			       size_t len)
{
	struct file out;

	ck_assert_int_eq(run_fd(cf_encrypt_fd, k, tl_memfd(plain, len), &out),
			 0);
	return out;
}

/* Decrypt through cf_open_v1 / cf_open_chunk, one chunk at a time. */
static struct file open_by_chunks(const struct cf_key *k, const struct file *ct,
				  int *version_out)
{
	uint8_t iv[CF_IV_SIZE];
	uint64_t plain, idx;
	size_t off = CF_HEADER_SIZE, n;
	struct file out;

	ck_assert_int_eq(cf_header_parse(ct->data, ct->len, version_out, iv),
			 0);
	ck_assert_uint_ge(ct->len, CF_HEADER_SIZE + CF_TAG_SIZE);
	if (*version_out == CF_V1)
		plain = ct->len - CF_HEADER_SIZE - CF_TAG_SIZE;
	else
		ck_assert_int_eq(cf_plain_size(ct->len, &plain), 0);
	out.len = plain;
	out.data = malloc(plain + 1);
	ck_assert_ptr_nonnull(out.data);
	if (*version_out == CF_V1) {
		ck_assert_int_eq(
		    cf_open_v1(k, iv, ct->data + off, ct->len - off, out.data),
		    0);
		return out;
	}
	for (idx = 0;; idx++) {
		n = ct->len - off;
		if (n > CF_CHUNK_CT_SIZE)
			n = CF_CHUNK_CT_SIZE;
		ck_assert_int_eq(cf_open_chunk(k, iv, idx, ct->data + off, n,
					       out.data + idx * CF_CHUNK_SIZE),
				 0);
		off += n;
		if (n < CF_CHUNK_CT_SIZE)
			break;
	}
	ck_assert_uint_eq(off, ct->len);
	ck_assert_uint_eq(idx + 1, cf_chunk_count(plain));
	return out;
}

/* ---- CockroachDB's own files ---------------------------------------- */

static json_object *vec_load(void)
{
	char *path = tl_shared_path(VEC_DIR "vectors.json");
	json_object *j = json_object_from_file(path);

	free(path);
	return j && json_object_is_type(j, json_type_array) ? j : NULL;
}

static const char *vec_str(json_object *o, const char *field)
{
	json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, field, &v) &&
			  json_object_is_type(v, json_type_string),
		      "vectors.json: %s missing", field);
	return json_object_get_string(v);
}

START_TEST(test_vectors_listed)
{
	json_object *j = vec_load();

	ck_assert_ptr_nonnull(j);
	ck_assert_uint_ge(json_object_array_length(j), NVEC_MIN);
	json_object_put(j);
}
END_TEST

START_TEST(test_vector)
{
	json_object *j = vec_load(), *o, *sz;
	struct file ct, pt, out;
	char sha[TL_SHA256_HEX_SIZE];
	uint8_t k_raw[CF_KEY_SIZE];
	struct cf_key *k;
	uint64_t plain;
	int version, v2;

	ck_assert_ptr_nonnull(j);
	o = json_object_array_get_idx(j, (size_t)_i);
	ck_assert(json_object_object_get_ex(o, "PlainSize", &sz));
	v2 = strcmp(vec_str(o, "Format"), "v2") == 0;
	ck_assert(v2 || strcmp(vec_str(o, "Format"), "v1") == 0);
	k = key_hex(vec_str(o, "Key"));
	ck_assert_int_eq(tl_hex_decode(vec_str(o, "Key"), k_raw, 32), 32);
	ct = crdb_file(vec_str(o, "Cipher"));
	pt = crdb_file(vec_str(o, "Plain"));
	ck_assert_uint_eq(pt.len, (uint64_t)json_object_get_int64(sz));
	tl_sha256_hex(pt.data, pt.len, sha);
	ck_assert_str_eq(sha, vec_str(o, "PlainSHA256"));

	ck_assert_int_eq(decrypt_mem(k, ct.data, ct.len, &out), 0);
	assert_file_eq(&out, &pt);
	tl_sha256_hex(out.data, out.len, sha);
	ck_assert_str_eq(sha, vec_str(o, "PlainSHA256"));
	file_free(&out);

	out = open_by_chunks(k, &ct, &version);
	ck_assert_int_eq(version, v2 ? CF_V2 : CF_V1);
	assert_file_eq(&out, &pt);
	file_free(&out);
	if (v2) {
		ck_assert_int_eq(tl_ref_decrypt_v2(k_raw, ct.data, ct.len,
						   &out.data, &out.len),
				 0);
		assert_file_eq(&out, &pt);
		file_free(&out);
		ck_assert_uint_eq(cf_cipher_size(pt.len), ct.len);
		ck_assert_int_eq(cf_plain_size(ct.len, &plain), 0);
		ck_assert_uint_eq(plain, pt.len);
	}
	file_free(&ct);
	file_free(&pt);
	cf_key_free(k);
	json_object_put(j);
}
END_TEST

/* ---- kmsfs' own files ------------------------------------------------ */

static const size_t rt_sizes[] = {0,	 1,	 12,	 65535,	 65536,
				  65537, 131071, 131072, 131073, 300001};

static uint8_t *pattern(size_t n)
{
	uint8_t *p = malloc(n + 1);
	size_t i;

	ck_assert_ptr_nonnull(p);
	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 131 + (i >> 16) * 7 + 1);
	return p;
}

START_TEST(test_roundtrip)
{
	uint8_t raw[CF_KEY_SIZE];
	struct file pt = {pattern(rt_sizes[_i]), rt_sizes[_i]}, ct, out;
	int version;

	ck_assert_int_eq(tl_hex_decode(VEC_KEY, raw, sizeof(raw)), 32);
	ct = encrypt_mem(vk, pt.data, pt.len);
	ck_assert_uint_eq(ct.len, cf_cipher_size(pt.len));
	ck_assert_int_eq(
	    tl_ref_decrypt_v2(raw, ct.data, ct.len, &out.data, &out.len), 0);
	assert_file_eq(&out, &pt);
	file_free(&out);
	ck_assert_int_eq(decrypt_mem(vk, ct.data, ct.len, &out), 0);
	assert_file_eq(&out, &pt);
	file_free(&out);
	out = open_by_chunks(vk, &ct, &version);
	ck_assert_int_eq(version, CF_V2);
	assert_file_eq(&out, &pt);
	file_free(&out);
	file_free(&ct);
	file_free(&pt);
}
END_TEST

START_TEST(test_fresh_iv)
{
	struct file a = encrypt_mem(vk, (const uint8_t *)"x", 1);
	struct file b = encrypt_mem(vk, (const uint8_t *)"x", 1);

	ck_assert_int_eq(memcmp(a.data, b.data, 8), 0);
	ck_assert_int_ne(memcmp(a.data + 8, b.data + 8, CF_IV_SIZE), 0);
	file_free(&a);
	file_free(&b);
}
END_TEST

/* Run fn reading from a pipe that a child feeds in 997-byte writes, so
 * that reads come back short and do not line up with chunks. */
static int run_pipe(fd_fn fn, const struct file *in, struct file *out)
{
	size_t off, n;
	int p[2], r, st;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		for (off = 0; off < in->len; off += n) {
			n = in->len - off < 997 ? in->len - off : 997;
			if (write(p[1], in->data + off, n) != (ssize_t)n)
				_exit(1);
		}
		_exit(0);
	}
	close(p[1]);
	r = run_fd(fn, vk, p[0], out);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return r;
}

START_TEST(test_pipes)
{
	struct file pt = {pattern(200003), 200003}, ct, out;
	struct file v1 = crdb_file("v1-70000.enc");
	struct file v1pt = crdb_file("v1-70000.plain");

	ck_assert_int_eq(run_pipe(cf_encrypt_fd, &pt, &ct), 0);
	ck_assert_uint_eq(ct.len, cf_cipher_size(pt.len));
	ck_assert_int_eq(run_pipe(decrypt_all, &ct, &out), 0);
	assert_file_eq(&out, &pt);
	file_free(&out);
	ck_assert_int_eq(run_pipe(decrypt_all, &v1, &out), 0);
	assert_file_eq(&out, &v1pt);
	file_free(&out);
	file_free(&v1pt);
	file_free(&v1);
	file_free(&ct);
	file_free(&pt);
}
END_TEST

/* ---- spec §6.2 known answers ------------------------------------------ */

/* Build a v2 file under the fixed KAT IV with cf_seal_chunk. */
static struct file kat_file(const uint8_t *plain, size_t len)
{
	struct cf_key *k = key_hex(KAT_KEY);
	uint8_t iv[CF_IV_SIZE];
	struct file f;
	uint64_t i, n = cf_chunk_count(len);
	size_t off = CF_HEADER_SIZE, pl;

	ck_assert_int_eq(tl_hex_decode(KAT_IV, iv, sizeof(iv)), CF_IV_SIZE);
	f.len = cf_cipher_size(len);
	f.data = malloc(f.len + 1);
	ck_assert_ptr_nonnull(f.data);
	cf_header_build(iv, f.data);
	for (i = 0; i < n; i++) {
		pl = i + 1 < n ? CF_CHUNK_SIZE : len % CF_CHUNK_SIZE;
		ck_assert_int_eq(cf_seal_chunk(k, iv, i,
					       plain + i * CF_CHUNK_SIZE, pl,
					       f.data + off),
				 0);
		off += pl + CF_TAG_SIZE;
	}
	ck_assert_uint_eq(off, f.len);
	cf_key_free(k);
	return f;
}

static void assert_kat_hex(const uint8_t *plain, size_t len,
			   const char *want_hex)
{
	struct file f = kat_file(plain, len), out;
	uint8_t want[64];
	int n = tl_hex_decode(want_hex, want, sizeof(want));
	struct cf_key *k = key_hex(KAT_KEY);

	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(f.len, (size_t)n);
	ck_assert_mem_eq(f.data, want, (size_t)n);
	ck_assert_int_eq(decrypt_mem(k, f.data, f.len, &out), 0);
	ck_assert_uint_eq(out.len, len);
	ck_assert(len == 0 || memcmp(out.data, plain, len) == 0);
	file_free(&out);
	file_free(&f);
	cf_key_free(k);
}

START_TEST(test_kat_small)
{
	char sha[TL_SHA256_HEX_SIZE];
	struct file f;

	assert_kat_hex(NULL, 0,
		       "656e637279707402000102030405060708090a0b "
		       "f4c2db1dc38805a37b92171c5d0a81cc");
	assert_kat_hex((const uint8_t *)"hello world\n", 12,
		       "656e637279707402000102030405060708090a0b "
		       "2f67ba77aac5b574ff2df381 "
		       "67d815bb82abfc50a9eecc5c02ba4b11");
	f = kat_file(NULL, 0); /* its CHECKSUM is SHA-256[:4] */
	tl_sha256_hex(f.data, f.len, sha);
	ck_assert_int_eq(strncmp(sha, "583b2d45", 8), 0);
	file_free(&f);
}
END_TEST

/* Seals and opens take keyed contexts from a pool per key (cformat.c):
 * whatever ran before on a context (another key's pool, a failed open, an
 * encryption), each call gives the known answer of its own key and
 * nonce, also from several threads at once. */
static const uint8_t kat_iv[CF_IV_SIZE] = {0, 1, 2, 3, 4,  5,
					   6, 7, 8, 9, 10, 11};
static const char kat_ct[] = "2f67ba77aac5b574ff2df381"
			     "67d815bb82abfc50a9eecc5c02ba4b11";

static struct cf_key *pool_kat, *pool_other;

static bool pool_round(void)
{
	uint8_t ct[12 + CF_TAG_SIZE], want[12 + CF_TAG_SIZE], pt[12];
	bool ok = true;

	tl_hex_decode(kat_ct, want, sizeof(want));
	ok &= cf_seal_chunk(pool_kat, kat_iv, 0,
			    (const uint8_t *)"hello world\n", 12, ct) == 0 &&
	      memcmp(ct, want, sizeof(ct)) == 0;
	ok &= cf_open_chunk(pool_other, kat_iv, 0, ct, sizeof(ct), pt) ==
	      -EBADMSG;
	ok &= cf_open_chunk(pool_kat, kat_iv, 0, ct, sizeof(ct), pt) == 0 &&
	      memcmp(pt, "hello world\n", 12) == 0;
	ok &= cf_seal_chunk(pool_other, kat_iv, 0, pt, 12, ct) == 0 &&
	      memcmp(ct, want, sizeof(ct)) != 0;
	ok &=
	    cf_open_chunk(pool_kat, kat_iv, 0, ct, sizeof(ct), pt) == -EBADMSG;
	ok &= cf_open_chunk(pool_other, kat_iv, 0, ct, sizeof(ct), pt) == 0 &&
	      memcmp(pt, "hello world\n", 12) == 0;
	return ok;
}

static void *pool_thread(void *arg)
{
	bool *ok = arg;

	for (int i = 0; i < 300; i++)
		*ok &= pool_round();
	return NULL;
}

START_TEST(test_pooled_contexts)
{
	pthread_t t[4];
	bool ok[4];

	pool_kat = key_hex(KAT_KEY);
	pool_other = key_hex("1f1e1d1c1b1a19181716151413121110"
			     "0f0e0d0c0b0a09080706050403020100");
	for (int i = 0; i < 3; i++)
		ck_assert(pool_round());
	for (int i = 0; i < 4; i++) {
		ok[i] = true;
		ck_assert_int_eq(
		    pthread_create(&t[i], NULL, pool_thread, &ok[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert(ok[i]);
	}
	cf_key_free(pool_kat);
	cf_key_free(pool_other);
	pool_kat = pool_other = NULL;
}
END_TEST

START_TEST(test_kat_zeros)
{
	uint8_t *zeros = calloc(1, 65537);
	char sha[TL_SHA256_HEX_SIZE];
	struct file f;

	ck_assert_ptr_nonnull(zeros);
	f = kat_file(zeros, 65536);
	ck_assert_uint_eq(f.len, 65588);
	tl_sha256_hex(f.data, f.len, sha);
	ck_assert_str_eq(sha, "bb0489fcac7ec576f3f8f49bd7e20114"
			      "2e9a2d86f23f76f2350f609c798d4a7d");
	file_free(&f);
	f = kat_file(zeros, 65537);
	ck_assert_uint_eq(f.len, 65589);
	tl_sha256_hex(f.data, f.len, sha);
	ck_assert_str_eq(sha, "ee4b5c8c5e86d370e54b982a0dc0f2be"
			      "8c6028709a7b80f67cf1fd3df52e51ff");
	file_free(&f);
	free(zeros);
}
END_TEST

static void assert_nonce(const char *iv_hex, uint64_t idx, const char *want_hex)
{
	uint8_t iv[CF_IV_SIZE], want[CF_IV_SIZE], got[CF_IV_SIZE];

	ck_assert_int_eq(tl_hex_decode(iv_hex, iv, sizeof(iv)), CF_IV_SIZE);
	ck_assert_int_eq(tl_hex_decode(want_hex, want, sizeof(want)),
			 CF_IV_SIZE);
	cf_chunk_nonce(iv, idx, got);
	ck_assert_mem_eq(got, want, CF_IV_SIZE);
}

START_TEST(test_nonce)
{
	assert_nonce("aabbccdd ffffffffffffffff", 1,
		     "aabbccdd 0000000000000000");
	assert_nonce("aabbccdd ffffffffffffffff", 0,
		     "aabbccdd ffffffffffffffff");
	assert_nonce("aabbccdd ffffffffffffffff", 3,
		     "aabbccdd 0000000000000002");
	assert_nonce("00000000 00000000000000ff", 1,
		     "00000000 0000000000000100");
	assert_nonce(KAT_IV, UINT64_MAX, "00010203 040506070809 0a0a");
	assert_nonce(KAT_IV, 0x0100000000000000ull,
		     "00010203 050506070809 0a0b");
}
END_TEST

START_TEST(test_sizes)
{
	static const uint64_t map[][2] = {
	    {36, 0},	    {37, 1},	    {48, 12},	      {65571, 65535},
	    {65588, 65536}, {65589, 65537}, {131140, 131072}, {131141, 131073},
	};
	static const uint64_t bad[] = {
	    0,	   1,	  19,	  20,	  35,
	    65572, 65587, 131124, 131139, 20 + 3 * 65552 + 15};
	uint64_t p, i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		ck_assert_int_eq(cf_plain_size(map[i][0], &p), 0);
		ck_assert_uint_eq(p, map[i][1]);
		ck_assert_uint_eq(cf_cipher_size(map[i][1]), map[i][0]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cf_plain_size(bad[i], &p) == -EBADMSG,
			      "size %" PRIu64 " accepted", bad[i]);
	for (i = 0; i < 5 * 65536 + 3; i += 4099) {
		ck_assert_int_eq(cf_plain_size(cf_cipher_size(i), &p), 0);
		ck_assert_uint_eq(p, i);
	}
	ck_assert_uint_eq(cf_chunk_count(0), 1);
	ck_assert_uint_eq(cf_chunk_count(65535), 1);
	ck_assert_uint_eq(cf_chunk_count(65536), 2);
	ck_assert_uint_eq(cf_chunk_count(131073), 3);
}
END_TEST

/* ---- headers and arguments -------------------------------------------- */

static int parse(const void *buf, size_t len)
{
	uint8_t iv[CF_IV_SIZE];
	int version;

	return cf_header_parse(buf, len, &version, iv);
}

START_TEST(test_header)
{
	uint8_t iv[CF_IV_SIZE], hdr[CF_HEADER_SIZE], got[CF_IV_SIZE];
	int version;

	ck_assert_int_eq(tl_hex_decode(KAT_IV, iv, sizeof(iv)), CF_IV_SIZE);
	cf_header_build(iv, hdr);
	ck_assert_int_eq(memcmp(hdr, "encrypt\x02", 8), 0);
	ck_assert_int_eq(cf_header_parse(hdr, sizeof(hdr), &version, got), 0);
	ck_assert_int_eq(version, CF_V2);
	ck_assert_mem_eq(got, iv, CF_IV_SIZE);
	hdr[7] = 1;
	ck_assert_int_eq(cf_header_parse(hdr, sizeof(hdr), &version, got), 0);
	ck_assert_int_eq(version, CF_V1);
	ck_assert_int_eq(parse("", 0), -EBADMSG);
	ck_assert_int_eq(parse("a", 1), -EBADMSG);
	ck_assert_int_eq(parse("notenc!", 7), -EBADMSG);
	ck_assert_int_eq(parse("Encrypt\x02xxxxxxxxxxxx", 20), -EBADMSG);
	ck_assert_int_eq(parse("encryp", 6), -EBADMSG);
	/* CockroachDB: preamble present but short = invalid header. */
	ck_assert_int_eq(parse("encrypt", 7), -EPROTO);
	ck_assert_int_eq(parse(hdr, 19), -EPROTO);
	/* kmsfs's "unfinished" mark parses; cf_decrypt_fd refuses it */
	hdr[7] = CF_V2_OPEN;
	ck_assert_int_eq(cf_header_parse(hdr, sizeof(hdr), &version, got), 0);
	ck_assert_int_eq(version, CF_V2_OPEN);
	hdr[7] = 3;
	ck_assert_int_eq(parse(hdr, 20), -ENOTSUP);
	hdr[7] = 0;
	ck_assert_int_eq(parse(hdr, 20), -ENOTSUP);
	hdr[7] = 0xff;
	ck_assert_int_eq(parse(hdr, 20), -ENOTSUP);
}
END_TEST

/* kmsfs's sealed record: one GCM message with associated data, which is
 * authenticated too; its nonce is the one given (a fresh random IV). */
START_TEST(test_record)
{
	struct cf_key *k = key_hex(KAT_KEY);
	uint8_t nonce[CF_IV_SIZE], aad[40], pt[300], ct[300 + CF_TAG_SIZE],
	    out[300], chunk[300 + CF_TAG_SIZE];

	memset(nonce, 7, sizeof(nonce));
	memset(aad, 'a', sizeof(aad));
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)i;
	ck_assert_int_eq(
	    cf_seal_record(k, nonce, aad, sizeof(aad), pt, sizeof(pt), ct), 0);
	ck_assert_int_eq(
	    cf_open_record(k, nonce, aad, sizeof(aad), ct, sizeof(ct), out), 0);
	ck_assert_mem_eq(out, pt, sizeof(pt));
	/* same key stream as a chunk under the same nonce: the nonce is
	 * the only thing that keeps records apart from chunks */
	ck_assert_int_eq(cf_seal_chunk(k, nonce, 0, pt, sizeof(pt), chunk), 0);
	ck_assert_mem_eq(chunk, ct, sizeof(pt));
	ck_assert(memcmp(chunk + sizeof(pt), ct + sizeof(pt), CF_TAG_SIZE));
	aad[3] ^= 1;
	ck_assert_int_eq(
	    cf_open_record(k, nonce, aad, sizeof(aad), ct, sizeof(ct), out),
	    -EBADMSG);
	aad[3] ^= 1;
	ct[5] ^= 1;
	ck_assert_int_eq(
	    cf_open_record(k, nonce, aad, sizeof(aad), ct, sizeof(ct), out),
	    -EBADMSG);
	ck_assert_int_eq(
	    cf_open_record(k, nonce, aad, sizeof(aad), ct, 15, out), -EBADMSG);
	ck_assert_int_eq(
	    cf_seal_record(k, nonce, aad, 0, pt, CF_CHUNK_SIZE + 1, ct),
	    -EINVAL);
	cf_key_free(k);
}
END_TEST

/* v1 is refused unless asked for (CockroachDB's own reader refuses it
 * now); when read, it is authenticated whole first, then read by 64 KiB
 * pieces that must still hash to what was authenticated. */
START_TEST(test_v1_policy_and_bounded_read)
{
	struct file v1 = crdb_file("v1-70000.enc");
	struct file v1pt = crdb_file("v1-70000.plain");
	uint8_t iv[CF_IV_SIZE], *ct = malloc(CF_CHUNK_SIZE),
				*pt = malloc(CF_CHUNK_SIZE);
	int fd = tl_memfd(v1.data, v1.len), o = tl_memfd(NULL, 0), version;
	struct cf_v1 *v;
	size_t len;

	ck_assert_int_eq(cf_decrypt_fd(vk, fd, o, 0), -EPROTONOSUPPORT);
	ck_assert_ptr_nonnull(
	    strstr(cf_strerror(-EPROTONOSUPPORT), "--allow-v1"));
	ck_assert_int_eq(cf_header_parse(v1.data, v1.len, &version, iv), 0);
	ck_assert_int_eq(cf_v1_open(vk, fd, v1.len, iv, &v), 0);
	ck_assert_uint_eq(cf_v1_size(v), 70000);
	ck_assert_int_eq(cf_v1_read(vk, v, fd, 0, ct, pt, &len), 0);
	ck_assert_uint_eq(len, CF_CHUNK_SIZE);
	ck_assert_mem_eq(pt, v1pt.data, len);
	ck_assert_int_eq(cf_v1_read(vk, v, fd, 1, ct, pt, &len), 0);
	ck_assert_uint_eq(len, 70000 - CF_CHUNK_SIZE);
	ck_assert_mem_eq(pt, v1pt.data + CF_CHUNK_SIZE, len);
	ck_assert_int_eq(cf_v1_read(vk, v, fd, 2, ct, pt, &len), 0);
	ck_assert_uint_eq(len, 0);
	/* changed after the check: that piece is refused, not decrypted */
	ck_assert_int_eq(pwrite(fd, "X", 1, 20 + 70000 - 5), 1);
	ck_assert_int_eq(cf_v1_read(vk, v, fd, 1, ct, pt, &len), -EBADMSG);
	ck_assert_int_eq(cf_v1_read(vk, v, fd, 0, ct, pt, &len), 0);
	cf_v1_free(v);
	ck_assert_int_eq(cf_v1_open(vk, fd, v1.len, iv, &v), -EBADMSG);
	ck_assert_int_eq(cf_v1_open(vk, fd, CF_V1_MAX + 37, iv, &v), -EFBIG);
	ck_assert_int_eq(cf_v1_open(vk, fd, 35, iv, &v), -EBADMSG);
	close(fd);
	close(o);
	free(ct);
	free(pt);
	file_free(&v1);
	file_free(&v1pt);
}
END_TEST

START_TEST(test_bad_headers_fd)
{
	struct file ct = crdb_file("v2-100.enc"), out;

	ck_assert_int_eq(decrypt_rc(vk, (const uint8_t *)"notenc!", 7),
			 -EBADMSG);
	ck_assert_int_eq(decrypt_rc(vk, (const uint8_t *)"a", 1), -EBADMSG);
	ck_assert_int_eq(decrypt_rc(vk, NULL, 0), -EBADMSG);
	ck_assert_int_eq(decrypt_rc(vk, ct.data, 7), -EPROTO);
	ck_assert_int_eq(decrypt_rc(vk, ct.data, 19), -EPROTO);
	ct.data[7] = 3;
	ck_assert_int_eq(decrypt_mem(vk, ct.data, ct.len, &out), -ENOTSUP);
	ck_assert_uint_eq(out.len, 0);
	file_free(&out);
	ct.data[7] = CF_V2_OPEN; /* unfinished: only a kfile reads it */
	ck_assert_int_eq(decrypt_mem(vk, ct.data, ct.len, &out), -ENOTSUP);
	ck_assert_uint_eq(out.len, 0);
	file_free(&out);
	file_free(&ct);
}
END_TEST

START_TEST(test_args)
{
	struct secret *s = secret_new(16);
	struct cf_key *k = vk; /* non-NULL: cf_key_new must clear it */
	uint8_t iv[CF_IV_SIZE] = {0}, *big = calloc(1, CF_CHUNK_CT_SIZE + 17);

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(cf_key_new(s, &k), -EINVAL);
	ck_assert_ptr_null(k);
	secret_free(s);
	cf_key_free(NULL);
	k = vk;
	ck_assert_int_eq(cf_seal_chunk(k, iv, 0, big, CF_CHUNK_SIZE + 1, big),
			 -EINVAL);
	ck_assert_int_eq(
	    cf_open_chunk(k, iv, 0, big, CF_CHUNK_CT_SIZE + 1, big), -EINVAL);
	ck_assert_int_eq(cf_open_chunk(k, iv, 0, big, 15, big), -EBADMSG);
	ck_assert_int_eq(cf_open_chunk(k, iv, 0, big, 0, big), -EBADMSG);
	ck_assert_int_eq(cf_open_v1(k, iv, big, 15, big), -EBADMSG);
	/* In place, as the stream helpers use it. */
	ck_assert_int_eq(cf_seal_chunk(k, iv, 5, big, CF_CHUNK_SIZE, big), 0);
	ck_assert_int_eq(cf_open_chunk(k, iv, 5, big, CF_CHUNK_CT_SIZE, big),
			 0);
	ck_assert_int_eq(big[0] | big[CF_CHUNK_SIZE - 1], 0);
	ck_assert_int_eq(cf_iv_random(iv), 0);
	free(big);
}
END_TEST

START_TEST(test_strerror)
{
	ck_assert_str_eq(cf_strerror(-EPROTO), "invalid encryption header");
	ck_assert_ptr_nonnull(strstr(cf_strerror(-EBADMSG),
				     "failed to decrypt — maybe incorrect "
				     "key"));
	ck_assert_ptr_nonnull(
	    strstr(cf_strerror(-EBADMSG), "does not appear to be encrypted"));
	ck_assert_ptr_nonnull(strstr(cf_strerror(-ENOTSUP),
				     "unexpected encryption scheme/config "
				     "version"));
	ck_assert_ptr_nonnull(cf_strerror(-EIO));
	ck_assert_ptr_nonnull(cf_strerror(-12345));
}
END_TEST

/* ---- damaged files ----------------------------------------------------- */

START_TEST(test_truncated_at_boundary)
{
	struct file ct = crdb_file("v2-131072.enc"), out;

	ck_assert_uint_eq(ct.len, 20 + 2 * 65552 + 16);
	ck_assert_int_eq(decrypt_mem(vk, ct.data, 20 + 2 * 65552, &out),
			 -EBADMSG);
	/* Authentic chunks before the cut were written (header says so). */
	ck_assert_uint_eq(out.len, 131072);
	file_free(&out);
	ck_assert_int_eq(decrypt_rc(vk, ct.data, 20 + 65552), -EBADMSG);
	ck_assert_int_eq(decrypt_rc(vk, ct.data, 20), -EBADMSG);
	file_free(&ct);
}
END_TEST

START_TEST(test_truncated_inside)
{
	static const size_t cuts[] = {
	    21, 35, 20 + 65551, 20 + 65552 + 15, 20 + 65552 + 100, 131140};
	struct file ct = crdb_file("v2-131073.enc");
	struct file v1 = crdb_file("v1-70000.enc");
	size_t i;

	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		ck_assert_msg(decrypt_rc(vk, ct.data, cuts[i]) == -EBADMSG,
			      "cut at %zu accepted", cuts[i]);
	ck_assert_int_eq(decrypt_rc(vk, v1.data, v1.len - 1), -EBADMSG);
	ck_assert_int_eq(decrypt_rc(vk, v1.data, 35), -EBADMSG);
	ck_assert_int_eq(decrypt_rc(vk, v1.data, 20), -EBADMSG);
	file_free(&v1);
	file_free(&ct);
}
END_TEST

/* Positions in v2-131073.enc (chunks at 20, 65572, 131124): first and
 * last byte of each chunk, inside a chunk, and the IV in the header. */
static const size_t flips[] = {20,     21,     1000,   65571,  65572, 100000,
			       131123, 131124, 131125, 131140, 8,     19};

START_TEST(test_bitflip)
{
	struct file ct = crdb_file("v2-131073.enc");
	struct file v1 = crdb_file("v1-70000.enc");

	ct.data[flips[_i]] ^= 0x01;
	ck_assert_int_eq(decrypt_rc(vk, ct.data, ct.len), -EBADMSG);
	ct.data[flips[_i]] ^= 0x81;
	ck_assert_int_eq(decrypt_rc(vk, ct.data, ct.len), -EBADMSG);
	if (flips[_i] < v1.len) {
		v1.data[flips[_i]] ^= 0x40;
		ck_assert_int_eq(decrypt_rc(vk, v1.data, v1.len), -EBADMSG);
	}
	file_free(&v1);
	file_free(&ct);
}
END_TEST

START_TEST(test_wrong_key)
{
	static const char *const names[] = {
	    "v2-0.enc", "v2-100.enc", "v2-131073.enc", "v1-0.enc", "v1-33.enc"};
	struct cf_key *k = key_hex("7b6d7366732d7075626c69632d746573742d6b6"
				   "5792d33326279746573212121");
	struct file ct;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ct = crdb_file(names[i]);
		ck_assert_msg(decrypt_rc(k, ct.data, ct.len) == -EBADMSG,
			      "%s opened with a wrong key", names[i]);
		file_free(&ct);
	}
	cf_key_free(k);
}
END_TEST

START_TEST(test_reordered_chunks)
{
	struct file ct = crdb_file("v2-200000.enc");
	struct file other = crdb_file("v2-131073.enc");
	uint8_t *c0 = ct.data + 20, *c1 = c0 + 65552;
	uint8_t *tmp = malloc(65552);

	ck_assert_ptr_nonnull(tmp);
	ck_assert_int_eq(decrypt_rc(vk, ct.data, ct.len), 0);
	memcpy(tmp, c0, 65552); /* swap chunks 0 and 1 */
	memcpy(c0, c1, 65552);
	memcpy(c1, tmp, 65552);
	ck_assert_int_eq(decrypt_rc(vk, ct.data, ct.len), -EBADMSG);
	memcpy(c0, tmp, 65552); /* chunk 0 twice */
	ck_assert_int_eq(decrypt_rc(vk, ct.data, ct.len), -EBADMSG);
	/* chunk 1 of another file under the same key (other IV) */
	memcpy(c1, other.data + 20 + 65552, 65552);
	ck_assert_int_eq(decrypt_rc(vk, ct.data, ct.len), -EBADMSG);
	free(tmp);
	file_free(&other);
	file_free(&ct);
}
END_TEST

static int decrypt_appended(const struct cf_key *k, const struct file *ct,
			    const uint8_t *extra, size_t n)
{
	uint8_t *d = malloc(ct->len + n);
	int r;

	ck_assert_ptr_nonnull(d);
	memcpy(d, ct->data, ct->len);
	memcpy(d + ct->len, extra, n);
	r = decrypt_rc(k, d, ct->len + n);
	free(d);
	return r;
}

START_TEST(test_appended)
{
	struct file ct = crdb_file("v2-131072.enc");
	struct file small = crdb_file("v2-100.enc");
	struct file v1 = crdb_file("v1-33.enc");
	uint8_t *zeros = calloc(1, 65552);

	ck_assert_ptr_nonnull(zeros);
	ck_assert_int_eq(decrypt_appended(vk, &small, zeros, 1), -EBADMSG);
	ck_assert_int_eq(decrypt_appended(vk, &ct, zeros, 1), -EBADMSG);
	ck_assert_int_eq(decrypt_appended(vk, &ct, zeros, 65552), -EBADMSG);
	/* The empty final chunk again: looks like a tag, still rejected. */
	ck_assert_int_eq(decrypt_appended(vk, &ct, ct.data + ct.len - 16, 16),
			 -EBADMSG);
	ck_assert_int_eq(decrypt_appended(vk, &v1, zeros, 1), -EBADMSG);
	free(zeros);
	file_free(&v1);
	file_free(&small);
	file_free(&ct);
}
END_TEST

START_TEST(test_wrong_chunk_index)
{
	struct file ct = crdb_file("v2-131073.enc");
	uint8_t iv[CF_IV_SIZE], *out = malloc(CF_CHUNK_SIZE);
	int version;

	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(cf_header_parse(ct.data, ct.len, &version, iv), 0);
	ck_assert_int_eq(
	    cf_open_chunk(vk, iv, 1, ct.data + 20 + 65552, 65552, out), 0);
	ck_assert_int_eq(
	    cf_open_chunk(vk, iv, 0, ct.data + 20 + 65552, 65552, out),
	    -EBADMSG);
	ck_assert_int_eq(
	    cf_open_chunk(vk, iv, 2, ct.data + 20 + 65552, 65552, out),
	    -EBADMSG);
	free(out);
	file_free(&ct);
}
END_TEST

/* How many cases vectors.json lists; 0 when it cannot be read (then
 * test_vectors_listed fails and says so). */
static int vec_count(void)
{
	json_object *j = vec_load();
	int n = j ? (int)json_object_array_length(j) : 0;

	json_object_put(j);
	return n;
}

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 60); /* sanitizers and valgrind are slow */
	tcase_add_checked_fixture(tc, vk_setup, vk_teardown);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *cformat_suite(void)
{
	Suite *s = suite_create("cformat");
	TCase *tc;

	tc = tcase(s, "crdb-vectors");
	tl_add_shared_test(tc, test_vectors_listed, VEC_DIR);
	tl_add_shared_loop_test(tc, test_vector, VEC_DIR, 0, vec_count());
	tc = tcase(s, "kmsfs-files");
	tcase_add_loop_test(tc, test_roundtrip, 0,
			    sizeof(rt_sizes) / sizeof(rt_sizes[0]));
	tcase_add_test(tc, test_fresh_iv);
	tl_add_shared_test(tc, test_pipes, VEC_DIR);
	tc = tcase(s, "known-answers");
	tcase_add_test(tc, test_kat_small);
	tcase_add_test(tc, test_kat_zeros);
	tcase_add_test(tc, test_pooled_contexts);
	tcase_add_test(tc, test_nonce);
	tcase_add_test(tc, test_sizes);
	tc = tcase(s, "headers-args");
	tcase_add_test(tc, test_header);
	tl_add_shared_test(tc, test_bad_headers_fd, VEC_DIR);
	tcase_add_test(tc, test_record);
	tl_add_shared_test(tc, test_v1_policy_and_bounded_read, VEC_DIR);
	tcase_add_test(tc, test_args);
	tcase_add_test(tc, test_strerror);
	tc = tcase(s, "damaged");
	tl_add_shared_test(tc, test_truncated_at_boundary, VEC_DIR);
	tl_add_shared_test(tc, test_truncated_inside, VEC_DIR);
	tl_add_shared_loop_test(tc, test_bitflip, VEC_DIR, 0,
				sizeof(flips) / sizeof(flips[0]));
	tl_add_shared_test(tc, test_wrong_key, VEC_DIR);
	tl_add_shared_test(tc, test_reordered_chunks, VEC_DIR);
	tl_add_shared_test(tc, test_appended, VEC_DIR);
	tl_add_shared_test(tc, test_wrong_chunk_index, VEC_DIR);
	return s;
}

int main(void)
{
	return tl_run(cformat_suite());
}
