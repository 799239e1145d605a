/*
 * check_encinfo.c - unit tests for keystore/encinfo.c: the two
 * CockroachDB vectors decode to what vectors/README.md says and re-encode
 * byte for byte; truncations and bit flips never read out of bounds;
 * unknown fields are skipped and malformed wire data is refused; the
 * ENCRYPTION-INFO* files of a directory are listed, read and written as
 * CockroachDB does (including "-10" sorting before "-2").
 */
#include "../keystore/encinfo.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "../lib/log.h"
#include "testlib.h"

static const char *const kms3_ids[] = {
    "arn:aws:kms:us-east-1:111122223333:key/"
    "1234abcd-12ab-34cd-56ef-1234567890ab",
    "projects/p/locations/global/keyRings/r/cryptoKeys/k",
    "my-key",
};

static void load_vector(const char *name, uint8_t **data, size_t *len)
{
	char rel[128], *path;

	snprintf(rel, sizeof(rel), "vectors/crdb/%s", name);
	path = tl_shared_path(rel);
	ck_assert_int_eq(tl_read_file(path, data, len), 0);
	free(path);
}

/* The three values of encinfo-kms3.bin, in README order. */
static void kms3_value(size_t i, uint8_t *v, size_t *len)
{
	static const uint8_t deadbeef[] = {0xde, 0xad, 0xbe, 0xef};

	if (i == 0) {
		memcpy(v, deadbeef, sizeof(deadbeef));
		*len = sizeof(deadbeef);
	} else if (i == 1) {
		for (size_t j = 0; j < 32; j++)
			v[j] = (uint8_t)j;
		*len = 32;
	} else {
		memset(v, 1, 256);
		*len = 256;
	}
}

static void kms3_key(size_t i, uint8_t key[32])
{
	SHA256((const uint8_t *)kms3_ids[i], strlen(kms3_ids[i]), key);
}

static void assert_encodes_to(const struct encinfo *ei, const uint8_t *want,
			      size_t len)
{
	struct buf b;

	buf_init(&b, 0);
	ck_assert_int_eq(encinfo_encode(ei, &b), 0);
	ck_assert_uint_eq(b.len, len);
	ck_assert_mem_eq(b.data, want, len);
	buf_release(&b);
}

/* Decode from an exact-size heap copy so ASan sees any overread. */
static int decode_copy(const uint8_t *p, size_t len, struct encinfo *ei)
{
	uint8_t *c = malloc(len ? len : 1);
	int r;

	ck_assert_ptr_nonnull(c);
	if (len)
		memcpy(c, p, len);
	encinfo_init(ei);
	r = encinfo_decode(c, len, ei);
	free(c);
	return r;
}

START_TEST(test_vector_passphrase)
{
	struct encinfo ei;
	uint8_t *data, salt[16];
	size_t len;

	load_vector("encinfo-passphrase.bin", &data, &len);
	ck_assert_int_eq(decode_copy(data, len, &ei), 0);
	for (size_t i = 0; i < 16; i++)
		salt[i] = (uint8_t)i;
	ck_assert_uint_eq(ei.scheme, 0);
	ck_assert_uint_eq(ei.saltlen, 16);
	ck_assert_mem_eq(ei.salt, salt, 16);
	ck_assert_uint_eq(ei.n, 0);
	assert_encodes_to(&ei, data, len);
	encinfo_release(&ei);
	/* and from scratch */
	encinfo_init(&ei);
	ck_assert_int_eq(encinfo_set_salt(&ei, salt, 16), 0);
	assert_encodes_to(&ei, data, len);
	encinfo_release(&ei);
	free(data);
}
END_TEST

START_TEST(test_vector_kms3)
{
	uint8_t *data, key[32], val[256];
	struct encinfo ei;
	size_t len, vlen;

	load_vector("encinfo-kms3.bin", &data, &len);
	ck_assert_int_eq(decode_copy(data, len, &ei), 0);
	ck_assert_uint_eq(ei.saltlen, 0);
	ck_assert_uint_eq(ei.n, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct encinfo_entry *e;

		kms3_key(i, key);
		kms3_value(i, val, &vlen);
		e = encinfo_get(&ei, key, 32);
		ck_assert_ptr_nonnull(e);
		ck_assert_ptr_eq(e, &ei.entries[i]); /* wire order kept */
		ck_assert_uint_eq(e->vallen, vlen);
		ck_assert_mem_eq(e->val, val, vlen);
	}
	assert_encodes_to(&ei, data, len);
	encinfo_release(&ei);
	/* from scratch, inserted in README order */
	encinfo_init(&ei);
	for (size_t i = 0; i < 3; i++) {
		kms3_key(i, key);
		kms3_value(i, val, &vlen);
		ck_assert_int_eq(encinfo_put(&ei, key, 32, val, vlen), 0);
	}
	assert_encodes_to(&ei, data, len);
	encinfo_release(&ei);
	free(data);
}
END_TEST

/* Spec §2.5: one entry, the ARN's map key and de ad be ef. */
START_TEST(test_spec_example)
{
	static const uint8_t v[] = {0xde, 0xad, 0xbe, 0xef};
	uint8_t want[42], key[32];
	struct encinfo ei;

	kms3_key(0, key);
	want[0] = 0x1a;
	want[1] = 0x28;
	want[2] = 0x0a;
	want[3] = 0x20;
	memcpy(want + 4, key, 32);
	want[36] = 0x12;
	want[37] = 0x04;
	memcpy(want + 38, v, 4);
	encinfo_init(&ei);
	ck_assert_int_eq(encinfo_put(&ei, key, 32, v, 4), 0);
	assert_encodes_to(&ei, want, sizeof(want));
	ei.scheme = 1; /* non-zero scheme: field 1 comes first */
	{
		struct buf b;

		buf_init(&b, 0);
		ck_assert_int_eq(encinfo_encode(&ei, &b), 0);
		ck_assert_uint_eq(b.len, 44);
		ck_assert_uint_eq(b.data[0], 0x08);
		ck_assert_uint_eq(b.data[1], 0x01);
		ck_assert_mem_eq(b.data + 2, want, sizeof(want));
		buf_release(&b);
	}
	encinfo_release(&ei);
}
END_TEST

static bool in_list(size_t v, const size_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i] == v)
			return true;
	}
	return false;
}

START_TEST(test_truncations)
{
	static const size_t ok_pass[] = {0, 18};
	static const size_t ok_kms[] = {0, 42, 112, 408};
	static const char *const names[] = {"encinfo-passphrase.bin",
					    "encinfo-kms3.bin"};

	for (size_t v = 0; v < 2; v++) {
		const size_t *ok = v ? ok_kms : ok_pass;
		size_t nok = v ? 4 : 2;
		uint8_t *data;
		size_t len;

		load_vector(names[v], &data, &len);
		ck_assert_uint_eq(len, v ? 408 : 18);
		for (size_t cut = 0; cut <= len; cut++) {
			struct encinfo ei;
			int r = decode_copy(data, cut, &ei);

			/* only whole fields decode */
			ck_assert_int_eq(r,
					 in_list(cut, ok, nok) ? 0 : -EPROTO);
			ck_assert(r == 0 || (ei.n == 0 && !ei.salt));
			encinfo_release(&ei);
		}
		free(data);
	}
}
END_TEST

START_TEST(test_bitflips)
{
	static const char *const names[] = {"encinfo-passphrase.bin",
					    "encinfo-kms3.bin"};

	for (size_t v = 0; v < 2; v++) {
		uint8_t *data;
		size_t len;

		load_vector(names[v], &data, &len);
		for (size_t bit = 0; bit < len * 8; bit++) {
			struct encinfo ei;
			struct buf b;
			int r;

			data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			r = decode_copy(data, len, &ei);
			ck_assert(r == 0 || r == -EPROTO);
			buf_init(&b, 0);
			if (r == 0)
				ck_assert_int_eq(encinfo_encode(&ei, &b), 0);
			buf_release(&b);
			encinfo_release(&ei);
			data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		free(data);
	}
}
END_TEST

START_TEST(test_unknown_fields)
{
	/* salt 00 01, then unknown fields of every wire type, then a map
	 * entry that carries an unknown field of its own. */
	static const uint8_t msg[] = {
	    0x12, 0x02, 0x00, 0x01,			    /* salt */
	    0x48, 0xff, 0x01,				    /* 9: varint */
	    0x51, 1,	2,    3,    4,	  5,	6,    7, 8, /* 10: fixed64 */
	    0x5a, 0x03, 'a',  'b',  'c',		    /* 11: bytes */
	    0x65, 1,	2,    3,    4,			    /* 12: fixed32 */
	    0x6b, 0x08, 0x05, 0x73, 0x74, 0x6c,		    /* 13: group */
	    0x1a, 0x09, 0x0a, 0x01, 'k',  0x18, 0x07, /* entry, 3: varint */
	    0x12, 0x02, 'v',  'w',
	};
	static const uint8_t want[] = {0x12, 0x02, 0x00, 0x01, 0x1a, 0x07, 0x0a,
				       0x01, 'k',  0x12, 0x02, 'v',  'w'};
	struct encinfo ei;

	ck_assert_int_eq(decode_copy(msg, sizeof(msg), &ei), 0);
	ck_assert_uint_eq(ei.saltlen, 2);
	ck_assert_uint_eq(ei.n, 1);
	ck_assert_ptr_nonnull(encinfo_get(&ei, (const uint8_t *)"k", 1));
	assert_encodes_to(&ei, want, sizeof(want));
	encinfo_release(&ei);
}
END_TEST

struct bad_case {
	const char *what;
	uint8_t bytes[16];
	size_t len;
};

START_TEST(test_malformed)
{
	static const struct bad_case cases[] = {
	    {"field 0", {0x02, 0x00}, 2},
	    {"wire type 6", {0x0e, 0x00}, 2},
	    {"wire type 7", {0x0f, 0x00}, 2},
	    {"salt as varint", {0x10, 0x01}, 2},
	    {"scheme as bytes", {0x0a, 0x00}, 2},
	    {"map as fixed32", {0x1d, 0, 0, 0, 0}, 5},
	    {"map key as varint", {0x1a, 0x02, 0x08, 0x01}, 4},
	    {"length past end", {0x12, 0x05, 0x00}, 3},
	    {"entry length past end", {0x1a, 0x04, 0x0a, 0x05, 'a', 'b'}, 6},
	    {"stray end group", {0x4c}, 1},
	    {"unterminated group", {0x4b, 0x08, 0x01}, 3},
	    {"mismatched end group", {0x4b, 0x54}, 2},
	    {"11-byte varint",
	     {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	      0x00},
	     12},
	    {"10th varint byte > 1",
	     {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02},
	     11},
	    {"tag too large", {0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 6},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct encinfo ei;
		int r = decode_copy(cases[i].bytes, cases[i].len, &ei);

		ck_assert_msg(r == -EPROTO, "%s: %d", cases[i].what, r);
		encinfo_release(&ei);
	}
}
END_TEST

START_TEST(test_limits_and_dupes)
{
	/* 10-byte varint with bit 63 set is fine; groups nest 32 deep. */
	static const uint8_t big[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
				      0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t dup[] = {0x1a, 0x06, 0x0a, 0x01, 'k',  0x12,
				      0x01, 'a',  0x1a, 0x06, 0x0a, 0x01,
				      'k',  0x12, 0x01, 'b',  0x1a, 0x00};
	uint8_t deep[80];
	struct encinfo ei;
	size_t n = 0;

	ck_assert_int_eq(decode_copy(big, sizeof(big), &ei), 0);
	ck_assert(ei.scheme == UINT64_MAX);
	encinfo_release(&ei);
	ck_assert_int_eq(decode_copy(dup, sizeof(dup), &ei), 0);
	ck_assert_uint_eq(ei.n, 2); /* "k" once, and an empty key */
	ck_assert_uint_eq(ei.entries[0].vallen, 1);
	ck_assert_uint_eq(ei.entries[0].val[0], 'b'); /* last value wins */
	ck_assert_uint_eq(ei.entries[1].keylen, 0);
	encinfo_release(&ei);
	for (int d = 0; d < 33; d++)
		deep[n++] = 0x4b; /* 33 nested groups of field 9 */
	for (int d = 0; d < 33; d++)
		deep[n++] = 0x4c;
	ck_assert_int_eq(decode_copy(deep, n, &ei), -EPROTO);
	ck_assert_int_eq(decode_copy(deep + 1, n - 2, &ei), 0);
	encinfo_release(&ei);
}
END_TEST

/* --- files ------------------------------------------------------------ */

static void make_file(int dfd, const char *name, const void *p, size_t len)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* CPU seconds this process has used. */
static double cpu_now(void)
{
	struct timespec ts;

	ck_assert_int_eq(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts), 0);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One map record with key k[0..kl) and no value: 1a <4+kl> 0a <kl> k. */
static size_t put_record(uint8_t *p, const uint8_t *k, size_t kl)
{
	p[0] = 0x1a;
	p[1] = (uint8_t)(2 + kl);
	p[2] = 0x0a;
	p[3] = (uint8_t)kl;
	memcpy(p + 4, k, kl);
	return 4 + kl;
}

/* Issue 8 item 4: a 1 MiB file of 159,158 distinct map keys (every 2-byte
 * key, then 3-byte keys) took 22 CPU seconds to decode. */
START_TEST(test_planted_1mib)
{
	const size_t max = ENCINFO_FILE_MAX;
	uint8_t *p = malloc(max), k[3];
	char *dir = tl_tmpdir_new();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	struct encinfo ei;
	size_t len = 0, n = 0;
	char *log;
	double t;

	ck_assert_ptr_nonnull(p);
	for (unsigned i = 0; i < 65536; i++, n++) {
		k[0] = (uint8_t)(i >> 8);
		k[1] = (uint8_t)i;
		len += put_record(p + len, k, 2);
	}
	for (unsigned i = 0; len + 7 <= max; i++, n++) {
		k[0] = (uint8_t)(i >> 16);
		k[1] = (uint8_t)(i >> 8);
		k[2] = (uint8_t)i;
		len += put_record(p + len, k, 3);
	}
	ck_assert_uint_eq(n, 159158);
	ck_assert_int_ge(dfd, 0);
	make_file(dfd, "ENCRYPTION-INFO-2", p, len);
	t = cpu_now();
	encinfo_init(&ei);
	ck_assert_int_eq(encinfo_decode(p, len, &ei), -E2BIG);
	ck_assert_uint_eq(ei.n, 0);
	tl_capture_begin();
	ck_assert_int_eq(encinfo_read(dfd, "ENCRYPTION-INFO-2", &ei), -EPROTO);
	log = tl_capture_end();
	t = cpu_now() - t;
	ck_assert_msg(t < 0.5, "decoding took %.3f CPU seconds", t);
	/* one line naming the file and the limit */
	ck_assert_ptr_nonnull(strstr(log, "ENCRYPTION-INFO-2 has more than "
					  "1024 KMS entries"));
	ck_assert_ptr_eq(strchr(log, '\n'), log + strlen(log) - 1);
	free(log);
	encinfo_release(&ei);
	free(p);
	close(dfd);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

/* ENCINFO_MAX_ENTRIES distinct entries decode (in well under a second:
 * the duplicate check is not quadratic); one more wire record, even a
 * repeated key, is refused; encinfo_put keeps the same cap. */
START_TEST(test_entry_limit)
{
	const size_t nmax = ENCINFO_MAX_ENTRIES;
	uint8_t *p = malloc((nmax + 1) * 36), k[32] = {0};
	struct encinfo ei;
	size_t len = 0;
	double t;

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < nmax; i++) {
		k[30] = (uint8_t)(i >> 8);
		k[31] = (uint8_t)i;
		len += put_record(p + len, k, 32);
	}
	t = cpu_now();
	ck_assert_int_eq(decode_copy(p, len, &ei), 0);
	ck_assert_msg(cpu_now() - t < 0.5, "decoding took too long");
	ck_assert_uint_eq(ei.n, nmax);
	ck_assert_mem_eq(ei.entries[nmax - 1].key, k, 32);
	ck_assert_int_eq(encinfo_put(&ei, k, 32, k, 1), 0); /* replace */
	ck_assert_uint_eq(ei.entries[nmax - 1].vallen, 1);
	k[0] = 1;
	ck_assert_int_eq(encinfo_put(&ei, k, 32, k, 1), -E2BIG);
	ck_assert_uint_eq(ei.n, nmax);
	encinfo_release(&ei);
	/* one more record, repeating the first key */
	len += put_record(p + len, p + 4, 32);
	ck_assert_int_eq(decode_copy(p, len, &ei), -E2BIG);
	ck_assert_uint_eq(ei.n, 0);
	encinfo_release(&ei);
	free(p);
}
END_TEST

/* Repeated keys: first position, last value, whatever the interleaving. */
START_TEST(test_dupes_interleaved)
{
	/* a=1 b=2 a=3 c=4 b=5 a=6 */
	static const char seq[] = "a1b2a3c4b5a6";
	uint8_t msg[6 * 8];
	struct encinfo ei;
	size_t len = 0;

	for (size_t i = 0; i < 6; i++) {
		uint8_t *e = msg + len;

		e[0] = 0x1a;
		e[1] = 6;
		e[2] = 0x0a;
		e[3] = 1;
		e[4] = (uint8_t)seq[2 * i];
		e[5] = 0x12;
		e[6] = 1;
		e[7] = (uint8_t)seq[2 * i + 1];
		len += 8;
	}
	ck_assert_int_eq(decode_copy(msg, len, &ei), 0);
	ck_assert_uint_eq(ei.n, 3);
	ck_assert_mem_eq(ei.entries[0].key, "a", 1);
	ck_assert_mem_eq(ei.entries[0].val, "6", 1);
	ck_assert_mem_eq(ei.entries[1].key, "b", 1);
	ck_assert_mem_eq(ei.entries[1].val, "5", 1);
	ck_assert_mem_eq(ei.entries[2].key, "c", 1);
	ck_assert_mem_eq(ei.entries[2].val, "4", 1);
	encinfo_release(&ei);
}
END_TEST

START_TEST(test_dir_list)
{
	static const char *const want[] = {
	    "ENCRYPTION-INFO", "ENCRYPTION-INFO-10", "ENCRYPTION-INFO-2",
	    "ENCRYPTION-INFO-3", "ENCRYPTION-INFOx"};
	static const char *const files[] = {
	    "ENCRYPTION-INFO-2", "ENCRYPTION-INFO-10", "ENCRYPTION-INFOx",
	    "ENCRYPTION-INFO",	 "ENCRYPTION-INFO-3",  "encryption-info",
	    "XENCRYPTION-INFO",	 "ENCRYPTION-INF",     "BACKUP_MANIFEST"};
	char *dir = tl_tmpdir_new();
	struct encinfo_names nm;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	ck_assert_int_ge(dfd, 0);
	ck_assert_int_eq(encinfo_list(dfd, &nm), 0);
	ck_assert_uint_eq(nm.n, 0);
	encinfo_names_release(&nm);
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
		make_file(dfd, files[i], "", 0);
	ck_assert_int_eq(mkdirat(dfd, "ENCRYPTION-INFO-dir", 0755), 0);
	ck_assert_int_eq(encinfo_list(dfd, &nm), 0);
	ck_assert_uint_eq(nm.n, 5);
	for (size_t i = 0; i < 5; i++)
		ck_assert_str_eq(nm.v[i], want[i]);
	encinfo_names_release(&nm);
	close(dfd);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

/* At most ENCINFO_MAX_FILES per directory. */
START_TEST(test_dir_max_files)
{
	char *dir = tl_tmpdir_new();
	struct encinfo_names nm;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	char name[64];

	ck_assert_int_ge(dfd, 0);
	make_file(dfd, "ENCRYPTION-INFO", "", 0);
	for (int i = 2; i <= ENCINFO_MAX_FILES; i++) {
		snprintf(name, sizeof(name), "ENCRYPTION-INFO-%d", i);
		make_file(dfd, name, "", 0);
	}
	ck_assert_int_eq(encinfo_list(dfd, &nm), 0);
	ck_assert_uint_eq(nm.n, ENCINFO_MAX_FILES);
	encinfo_names_release(&nm);
	make_file(dfd, "ENCRYPTION-INFOx", "", 0);
	ck_assert_int_eq(encinfo_list(dfd, &nm), -EPROTO);
	ck_assert_uint_eq(nm.n, 0);
	ck_assert_ptr_null(nm.v);
	close(dfd);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_next_name)
{
	struct buf b;

	buf_init(&b, 0);
	ck_assert_int_eq(encinfo_next_name(0, &b), 0);
	ck_assert_str_eq((const char *)b.data, "ENCRYPTION-INFO");
	buf_reset(&b);
	ck_assert_int_eq(encinfo_next_name(1, &b), 0);
	ck_assert_str_eq((const char *)b.data, "ENCRYPTION-INFO-2");
	buf_reset(&b);
	ck_assert_int_eq(encinfo_next_name(9, &b), 0);
	ck_assert_str_eq((const char *)b.data, "ENCRYPTION-INFO-10");
	buf_reset(&b);
	ck_assert_int_eq(encinfo_next_name(ENCINFO_MAX_FILES - 1, &b), 0);
	buf_reset(&b);
	ck_assert_int_eq(encinfo_next_name(ENCINFO_MAX_FILES, &b), -E2BIG);
	ck_assert_uint_eq(b.len, 0);
	buf_release(&b);
}
END_TEST

START_TEST(test_dir_read_write)
{
	static const uint8_t bad[] = {0x12, 0x05, 0x00};
	char *dir = tl_tmpdir_new();
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	uint8_t *data, *big;
	struct encinfo ei;
	struct stat st;
	size_t len;

	ck_assert_int_ge(dfd, 0);
	load_vector("encinfo-kms3.bin", &data, &len);
	ck_assert_int_eq(encinfo_write(dfd, "ENCRYPTION-INFO", data, len), 0);
	ck_assert_int_eq(fstatat(dfd, "ENCRYPTION-INFO", &st, 0), 0);
	ck_assert_int_eq(st.st_size, (off_t)len);
	ck_assert_int_eq(encinfo_write(dfd, "ENCRYPTION-INFO", data, 3),
			 -EEXIST);
	ck_assert_int_eq(encinfo_write(dfd, "a/b", data, 3), -EINVAL);
	ck_assert_int_eq(encinfo_write(dfd, "", data, 3), -EINVAL);
	encinfo_init(&ei);
	ck_assert_int_eq(encinfo_read(dfd, "ENCRYPTION-INFO", &ei), 0);
	ck_assert_uint_eq(ei.n, 3); /* the -EEXIST write changed nothing */
	assert_encodes_to(&ei, data, len);
	encinfo_release(&ei);

	ck_assert_int_eq(encinfo_read(dfd, "ENCRYPTION-INFO-9", &ei), -ENOENT);
	make_file(dfd, "ENCRYPTION-INFO-2", bad, sizeof(bad));
	ck_assert_int_eq(encinfo_read(dfd, "ENCRYPTION-INFO-2", &ei), -EPROTO);
	big = calloc(1, ENCINFO_FILE_MAX + 1);
	ck_assert_ptr_nonnull(big);
	make_file(dfd, "ENCRYPTION-INFO-3", big, ENCINFO_FILE_MAX + 1);
	ck_assert_int_eq(encinfo_read(dfd, "ENCRYPTION-INFO-3", &ei), -EPROTO);
	ck_assert_int_eq(mkfifoat(dfd, "ENCRYPTION-INFO-4", 0600), 0);
	ck_assert_int_eq(encinfo_read(dfd, "ENCRYPTION-INFO-4", &ei), -EIO);
	encinfo_release(&ei);
	free(big);
	free(data);
	close(dfd);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

static Suite *encinfo_suite(void)
{
	Suite *s = suite_create("encinfo");
	TCase *tc = tcase_create("wire");
	TCase *tf = tcase_create("files");

	tl_add_shared_test(tc, test_vector_passphrase, "vectors/crdb");
	tl_add_shared_test(tc, test_vector_kms3, "vectors/crdb");
	tcase_add_test(tc, test_spec_example);
	tl_add_shared_test(tc, test_truncations, "vectors/crdb");
	tl_add_shared_test(tc, test_bitflips, "vectors/crdb");
	tcase_add_test(tc, test_unknown_fields);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_limits_and_dupes);
	tcase_add_test(tc, test_dupes_interleaved);
	tcase_add_test(tc, test_entry_limit);
	tcase_add_test(tc, test_planted_1mib);
	tcase_add_test(tf, test_dir_list);
	tcase_add_test(tf, test_dir_max_files);
	tcase_add_test(tf, test_next_name);
	tl_add_shared_test(tf, test_dir_read_write, "vectors/crdb");
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tf);
	return s;
}

int main(void)
{
	log_set_level(LOG_LVL_DEBUG);
	return tl_run(encinfo_suite());
}
