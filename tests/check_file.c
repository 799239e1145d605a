/*
 * check_file.c - struct kfile against a plain byte-array model.
 *
 * A seeded random mix of writes (sequential, random, far past the end),
 * truncates (shrink, grow), commits and reopens runs on a kfile over a
 * real file in a temporary directory; after every step the kfile's view
 * must equal the model, and after every commit the backing bytes must
 * decrypt to the model with the independent reference reader.
 * cf_seal_chunk and cf_seal_record are wrapped at link time (-Wl,--wrap)
 * to record every nonce sealed under: a repeat fails the test (nonce
 * reuse).
 * pwrite, pread, fsync, fdatasync, ftruncate and renameat are wrapped
 * too: a fault seam fails the Nth call made by kfile (a torn write for
 * pwrite), and the model runs again for every N with the nonce check on.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fs/file.h"
#include "../fs/journal.h"
#include "testlib.h"

/* --- nonce bookkeeping through the linker wrap --------------------------- */

/* Every nonce used to seal anything (chunks under a file's IV, journal
 * records under their own): a repeat is nonce reuse. */
static uint8_t (*seals)[CF_IV_SIZE];
static size_t nseals, capseals;

static void seal_note(const uint8_t nonce[CF_IV_SIZE], const char *what,
		      uint64_t idx)
{
	for (size_t i = 0; i < nseals; i++) {
		if (memcmp(seals[i], nonce, CF_IV_SIZE) == 0)
			ck_abort_msg("nonce reuse: %s %llu sealed under a "
				     "nonce used before",
				     what, (unsigned long long)idx);
	}
	if (nseals == capseals) {
		capseals = capseals ? capseals * 2 : 1024;
		seals = realloc(seals, capseals * sizeof(*seals));
		ck_assert_ptr_nonnull(seals);
	}
	memcpy(seals[nseals++], nonce, CF_IV_SIZE);
}

int __real_cf_seal_chunk(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
			 uint64_t idx, const uint8_t *plain, size_t len,
			 uint8_t *out);
int __wrap_cf_seal_chunk(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
			 uint64_t idx, const uint8_t *plain, size_t len,
			 uint8_t *out);
int __real_cf_seal_record(const struct cf_key *k,
			  const uint8_t nonce[CF_IV_SIZE], const uint8_t *aad,
			  size_t aadlen, const uint8_t *plain, size_t len,
			  uint8_t *out);
int __wrap_cf_seal_record(const struct cf_key *k,
			  const uint8_t nonce[CF_IV_SIZE], const uint8_t *aad,
			  size_t aadlen, const uint8_t *plain, size_t len,
			  uint8_t *out);

int __wrap_cf_seal_chunk(const struct cf_key *k, const uint8_t iv[CF_IV_SIZE],
			 uint64_t idx, const uint8_t *plain, size_t len,
			 uint8_t *out)
{
	uint8_t nonce[CF_IV_SIZE];

	cf_chunk_nonce(iv, idx, nonce);
	seal_note(nonce, "chunk", idx);
	return __real_cf_seal_chunk(k, iv, idx, plain, len, out);
}

int __wrap_cf_seal_record(const struct cf_key *k,
			  const uint8_t nonce[CF_IV_SIZE], const uint8_t *aad,
			  size_t aadlen, const uint8_t *plain, size_t len,
			  uint8_t *out)
{
	seal_note(nonce, "journal record", len);
	return __real_cf_seal_record(k, nonce, aad, aadlen, plain, len, out);
}

/* --- fault seam through the linker wrap ----------------------------------- */

static bool fault_counting; /* count calls only while kfile runs */
static long fault_calls;    /* calls counted so far */
static long fault_at = -1;  /* the call that fails; -1: none */
static int fault_errno = EIO;
static bool fault_fired;
static const char *fault_only; /* count only calls of this function */

static bool fault_call(const char *fn)
{
	if (!fault_counting || (fault_only && strcmp(fn, fault_only) != 0))
		return false;
	if (fault_calls++ != fault_at)
		return false;
	fault_fired = true;
	return true;
}

#define fault_now() fault_call(__func__ + sizeof("__wrap_") - 1)

ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);
int __real_ftruncate(int fd, off_t len);
int __wrap_ftruncate(int fd, off_t len);
int __real_renameat(int a, const char *an, int b, const char *bn);
int __real_fallocate(int fd, int mode, off_t off, off_t len);
int __wrap_fallocate(int fd, int mode, off_t off, off_t len);
int __real_close(int fd);
int __wrap_close(int fd);
int __wrap_renameat(int a, const char *an, int b, const char *bn);

ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (fault_now()) {
		/* torn: part of the bytes land, then the error */
		if (n > 1)
			(void)__real_pwrite(fd, buf, n / 2, off);
		errno = fault_errno;
		return -1;
	}
	return __real_pwrite(fd, buf, n, off);
}

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off)
{
	if (fault_now()) {
		errno = EIO;
		return -1;
	}
	return __real_pread(fd, buf, n, off);
}

/* A unit test cannot observe durability: the flushes themselves are
 * skipped (fstat checks the descriptor), which keeps the runs fast. */
int __wrap_fsync(int fd)
{
	struct stat st;

	if (fault_now()) {
		errno = EIO;
		return -1;
	}
	return fstat(fd, &st);
}

int __wrap_fdatasync(int fd)
{
	return __wrap_fsync(fd);
}

int __wrap_ftruncate(int fd, off_t len)
{
	if (fault_now()) {
		errno = fault_errno;
		return -1;
	}
	return __real_ftruncate(fd, len);
}

int __wrap_renameat(int a, const char *an, int b, const char *bn)
{
	if (fault_now()) {
		errno = fault_errno;
		return -1;
	}
	return __real_renameat(a, an, b, bn);
}

int __wrap_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (fault_now()) {
		errno = fault_errno;
		return -1;
	}
	return __real_fallocate(fd, mode, off, len);
}

/* Every descriptor is closed exactly once: a second close of a number
 * is a bug even when it fails harmlessly here (in the multi-threaded
 * daemon another thread may own the number by then). */
int __wrap_close(int fd)
{
	int r = __real_close(fd);

	if (r < 0 && errno == EBADF)
		ck_abort_msg(
		    "close(%d): descriptor was not open (closed twice?)", fd);
	return r;
}

/* --- a host over one directory -------------------------------------------- */

struct testhost {
	char *dir;
	int dirfd;
	const char *name;
	int replaces, copybacks;
	bool refuse_rename; /* act as if the file had several links */
};

static int th_mktemp(void *ctx, int *fd_out, char *name, size_t len)
{
	struct testhost *h = ctx;
	static unsigned seq;

	snprintf(name, len, ".kmsfs-tmp-test%u", seq++);
	*fd_out = openat(h->dirfd, name, O_RDWR | O_CREAT | O_EXCL, 0600);
	return *fd_out < 0 ? -errno : 0;
}

static int th_replace(void *ctx, const char *tmpname, int tmpfd)
{
	struct testhost *h = ctx;

	(void)tmpfd;
	if (h->refuse_rename) {
		h->copybacks++;
		return -ENOTSUP;
	}
	h->replaces++;
	return renameat(h->dirfd, tmpname, h->dirfd, h->name) < 0 ? -errno : 0;
}

static void th_discard(void *ctx, const char *tmpname)
{
	struct testhost *h = ctx;

	unlinkat(h->dirfd, tmpname, 0);
}

static int th_remove(void *ctx)
{
	struct testhost *h = ctx;

	return unlinkat(h->dirfd, h->name, 0) < 0 ? -errno : 0;
}

static int th_dirfd(void *ctx)
{
	struct testhost *h = ctx;
	int fd = openat(h->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static const uint8_t test_key[32] = "kmsfs-check-file-test-key-32byt";
static struct cf_key *key;
static struct testhost th;
static struct kfile_host host = {.ctx = &th,
				 .mktemp = th_mktemp,
				 .replace = th_replace,
				 .discard = th_discard,
				 .dirfd = th_dirfd,
				 .remove = th_remove};

static void setup(void)
{
	struct secret *s = secret_dup(test_key, 32);

	ck_assert_int_eq(cf_key_new(s, &key), 0);
	secret_free(s);
	th.dir = tl_tmpdir_new();
	th.dirfd = open(th.dir, O_RDONLY | O_DIRECTORY);
	th.name = "f";
	th.replaces = th.copybacks = 0;
	th.refuse_rename = false;
	nseals = 0;
	fault_at = -1;
	fault_counting = false;
	fault_only = NULL;
}

static void teardown(void)
{
	close(th.dirfd);
	tl_tmpdir_remove(th.dir);
	cf_key_free(key);
	free(seals);
	seals = NULL;
	nseals = capseals = 0;
}

static struct kfile *open_kf(bool create)
{
	struct kfile *kf;
	int fd =
	    openat(th.dirfd, th.name, O_RDWR | (create ? O_CREAT : 0), 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	    kfile_open(fd, KFILE_WRITABLE, key, &host, th.name, &kf), 0);
	if (create)
		ck_assert_int_eq(kfile_begin_new(kf), 0);
	return kf;
}

/* The backing file decrypts (independently) to model[0..len). */
static void check_backing(const uint8_t *model, size_t len)
{
	uint8_t *ct, *pt;
	size_t ctlen, ptlen;
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", th.dir, th.name);
	ck_assert_int_eq(tl_read_file(path, &ct, &ctlen), 0);
	ck_assert_uint_eq(ctlen, cf_cipher_size(len));
	ck_assert_int_eq(tl_ref_decrypt_v2(test_key, ct, ctlen, &pt, &ptlen),
			 0);
	ck_assert_uint_eq(ptlen, len);
	ck_assert(len == 0 || memcmp(pt, model, len) == 0);
	free(ct);
	free(pt);
}

static void check_view(struct kfile *kf, const uint8_t *model, size_t len)
{
	uint8_t *buf = malloc(len + 100);
	size_t got;

	ck_assert_uint_eq(kfile_size(kf), len);
	ck_assert_int_eq(kfile_read(kf, buf, len + 100, 0, &got, NULL), 0);
	ck_assert_uint_eq(got, len);
	ck_assert(len == 0 || memcmp(buf, model, len) == 0);
	free(buf);
}

static void write_all(struct kfile *kf, const uint8_t *data, size_t len,
		      size_t step)
{
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;

		ck_assert_int_eq(kfile_write(kf, data + off, n, off), 0);
	}
}

static int count_temps(void);

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len ? len : 1);

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 16));
	return p;
}

START_TEST(test_sizes)
{
	static const size_t sizes[] = {0,     1,      15,     65535,  65536,
				       65537, 131071, 131072, 131073, 1048583};
	size_t n = sizes[_i];
	uint8_t *data = pattern(n, 7);
	struct kfile *kf = open_kf(true);

	write_all(kf, data, n, 4096 * 3 + 5);
	check_view(kf, data, n);
	ck_assert_int_eq(kfile_commit(kf), 0);
	check_view(kf, data, n);
	kfile_close(kf);
	check_backing(data, n);
	ck_assert_int_eq(th.replaces, 0); /* a new file is written in place */
	kf = open_kf(false);
	check_view(kf, data, n);
	kfile_close(kf);
	free(data);
}
END_TEST

static void corrupt(off_t off, int truncate_to);

/* Writes of more than a chunk seal their whole chunks straight from the
 * caller's buffer with one pwrite (file_write.c, seal_run): 1 MiB writes
 * from chunk-aligned and unaligned starts, into a new file (in place) and
 * over an old one (a temporary), decrypt independently to the model. */
START_TEST(test_big_writes)
{
	static const size_t starts[] = {0, 1, 65535, 65536, 100000};
	size_t len = 5 * 1048576 + 777, start = starts[_i];
	uint8_t *data = pattern(len, 11), *data2 = pattern(len, 12);
	struct kfile *kf = open_kf(true);

	if (start)
		ck_assert_int_eq(kfile_write(kf, data, start, 0), 0);
	for (size_t off = start; off < len; off += 1048576) {
		size_t n = len - off < 1048576 ? len - off : 1048576;

		ck_assert_int_eq(kfile_write(kf, data + off, n, off), 0);
	}
	check_view(kf, data, len);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	check_backing(data, len);
	ck_assert_int_eq(th.replaces, 0);
	/* over the old version: a rewrite, then a checkpoint in between */
	kf = open_kf(false);
	memcpy(data2, data, start);
	for (size_t off = start; off < len; off += 1048576) {
		size_t n = len - off < 1048576 ? len - off : 1048576;

		ck_assert_int_eq(kfile_write(kf, data2 + off, n, off), 0);
		if (off == start)
			ck_assert_int_eq(kfile_sync(kf, false), 0);
	}
	check_view(kf, data2, len);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	check_backing(data2, len);
	free(data);
	free(data2);
}
END_TEST

/* A read over several chunks of a finished file takes their ciphertext
 * with one pread (file.c, read_span): every start and length around the
 * chunk grid reads the model, and a damaged chunk fails exactly the reads
 * that touch it, with no bytes of it served. */
START_TEST(test_span_reads)
{
	static const size_t offs[] = {0,      1,      65535,  65536, 65537,
				      131071, 131072, 200000, 327679};
	static const size_t lens[] = {65536,  65537,  131072, 131073,
				      200000, 262144, 1048576};
	size_t len = 5 * 65536 + 123;
	uint8_t *data = pattern(len, 21), *buf = malloc(1048576 + 100);
	struct kfile *kf = open_kf(true);
	size_t got;

	write_all(kf, data, len, 1048576);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	kf = open_kf(false);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (size_t j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			size_t off = offs[i], n = lens[j];
			size_t want = off >= len      ? 0
				      : len - off < n ? len - off
						      : n;

			memset(buf, 0xee, n);
			ck_assert_int_eq(
			    kfile_read(kf, buf, n, off, &got, NULL), 0);
			ck_assert_uint_eq(got, want);
			ck_assert(want == 0 ||
				  memcmp(buf, data + off, want) == 0);
		}
	}
	/* one backing read for a read over all six chunks */
	fault_at = -1;
	fault_calls = 0;
	fault_only = "pread";
	fault_counting = true;
	ck_assert_int_eq(kfile_read(kf, buf, len, 0, &got, NULL), 0);
	fault_counting = false;
	fault_only = NULL;
	ck_assert_uint_eq(got, len);
	ck_assert_int_eq(fault_calls, 1);
	kfile_close(kf);
	corrupt(CF_HEADER_SIZE + 2 * CF_CHUNK_CT_SIZE + 100, -1); /* chunk 2 */
	kf = open_kf(false);
	ck_assert_int_eq(kfile_read(kf, buf, 131072, 0, &got, NULL), 0);
	ck_assert(memcmp(buf, data, 131072) == 0);
	ck_assert_int_eq(kfile_read(kf, buf, 196608, 65536, &got, NULL),
			 -EBADMSG);
	ck_assert_int_eq(kfile_read(kf, buf, 1048576, 0, &got, NULL), -EBADMSG);
	ck_assert_int_eq(kfile_read(kf, buf, 131072, 196608, &got, NULL), 0);
	ck_assert(memcmp(buf, data + 196608, 131072) == 0);
	kfile_close(kf);
	free(buf);
	free(data);
}
END_TEST

START_TEST(test_append_after_commit_reencrypts)
{
	uint8_t *data = pattern(200000, 3), iv1[CF_IV_SIZE], iv2[CF_IV_SIZE];
	struct kfile *kf = open_kf(true);
	char path[512];
	uint8_t *ct;
	size_t len;

	write_all(kf, data, 100000, 65536);
	ck_assert_int_eq(kfile_commit(kf), 0);
	snprintf(path, sizeof(path), "%s/f", th.dir);
	ck_assert_int_eq(tl_read_file(path, &ct, &len), 0);
	memcpy(iv1, ct + 8, CF_IV_SIZE);
	free(ct);
	ck_assert_int_eq(kfile_write(kf, data + 100000, 100000, 100000), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	ck_assert_int_eq(th.replaces, 1);
	check_backing(data, 200000);
	ck_assert_int_eq(tl_read_file(path, &ct, &len), 0);
	memcpy(iv2, ct + 8, CF_IV_SIZE);
	free(ct);
	ck_assert(memcmp(iv1, iv2, CF_IV_SIZE) != 0);
	free(data);
}
END_TEST

/* Small reads at off of kf read as model[off..]: got min(n, len - off). */
static void check_small(struct kfile *kf, const uint8_t *model, size_t len,
			size_t off, size_t n)
{
	uint8_t buf[4096];
	size_t got, want = off < len ? (len - off < n ? len - off : n) : 0;

	ck_assert_uint_le(n, sizeof(buf));
	ck_assert_int_eq(kfile_read(kf, buf, n, off, &got, NULL), 0);
	ck_assert_uint_eq(got, want);
	ck_assert(want == 0 || memcmp(buf, model + off, want) == 0);
}

/* 4 KiB reads go through the cache of decrypted chunks (file_cache.c):
 * every write, truncation and commit must drop it, or these reads would
 * see the old version. */
START_TEST(test_chunk_cache_follows_writes)
{
	size_t len = 200000;
	uint8_t *model = pattern(300000, 5), *b = pattern(4096, 77);
	struct kfile *kf = open_kf(true);
	int fd;

	write_all(kf, model, len, 65536);
	ck_assert_int_eq(kfile_commit(kf), 0);
	for (size_t off = 0; off < len; off += 12288)
		check_small(kf, model, len, off, 4096);
	/* An overwrite inside a cached chunk: seen during the session and
	 * after it is committed. */
	ck_assert_int_eq(kfile_write(kf, b, 4096, 8192), 0);
	memcpy(model + 8192, b, 4096);
	check_small(kf, model, len, 8192, 4096);
	ck_assert_int_eq(kfile_commit(kf), 0);
	for (size_t off = 0; off < len; off += 4096)
		check_small(kf, model, len, off, 4096);
	/* Truncations, shorter and longer (zeros), through the cache. */
	ck_assert_int_eq(kfile_truncate(kf, 70000), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	len = 70000;
	check_small(kf, model, len, 65536, 4096);
	check_small(kf, model, len, 100000, 4096);
	ck_assert_int_eq(kfile_truncate(kf, 150000), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	memset(model + 70000, 0, 80000);
	len = 150000;
	for (size_t off = 61440; off < len; off += 4096)
		check_small(kf, model, len, off, 4096);
	/* An append (a new session) and a write by a second handle that
	 * joins a read-only one (kfile_set_writable_fd). */
	ck_assert_int_eq(kfile_write(kf, b, 4096, len), 0);
	ck_assert_int_eq(kfile_sync(kf, true), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	memcpy(model + len, b, 4096);
	len += 4096;
	check_small(kf, model, len, len - 4096, 4096);
	kfile_close(kf);
	fd = openat(th.dirfd, th.name, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(kfile_open(fd, 0, key, &host, th.name, &kf), 0);
	check_small(kf, model, len, 0, 4096);
	fd = openat(th.dirfd, th.name, O_RDWR);
	ck_assert_int_ge(fd, 0);
	kfile_set_writable_fd(kf, fd);
	memset(b, 0xa5, 4096);
	ck_assert_int_eq(kfile_write(kf, b, 100, 10), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	memcpy(model + 10, b, 100);
	check_small(kf, model, len, 0, 4096);
	kfile_close(kf);
	check_backing(model, len);
	free(model);
	free(b);
}
END_TEST

/* What a crash now would leave: a second kfile over the backing file
 * reads as model. */
static void check_crash_view(const uint8_t *model, size_t len)
{
	struct kfile *kf;
	int fd = openat(th.dirfd, th.name, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(kfile_open(fd, 0, key, &host, th.name, &kf), 0);
	check_view(kf, model, len);
	kfile_close(kf);
}

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* The states the file went through since its last explicit sync or
 * commit: kfile also commits by itself (a write behind the frontier, a
 * truncation below it), and a failure or a crash falls back to such a
 * state. */
struct history {
	uint8_t *data[160];
	size_t len[160];
	int n;
};

static void hist_add(struct history *h, const uint8_t *d, size_t len)
{
	ck_assert_int_lt(h->n, 160);
	h->data[h->n] = malloc(len + 1);
	memcpy(h->data[h->n], d, len);
	h->len[h->n++] = len;
}

static void hist_clear(struct history *h)
{
	while (h->n > 0)
		free(h->data[--h->n]);
}

static bool hist_has(const struct history *h, const uint8_t *d, size_t len)
{
	for (int i = 0; i < h->n; i++)
		if (same(h->data[i], h->len[i], d, len))
			return true;
	return false;
}

/*
 * A crash: the kfile goes away unfinished and the file is opened again.
 * It reads as a state since its last sync, or (complete chunks written
 * after the last record) as a prefix of the model up to an unknown end
 * that gives -EBADMSG; the model goes on from what is readable.
 */
static void crash(struct kfile **kf, uint8_t **model, size_t *len,
		  const struct history *h)
{
	size_t n, got, p = 0;
	uint8_t *buf;
	int r;

	kfile_close(*kf);
	*kf = open_kf(false);
	n = (size_t)kfile_size(*kf);
	buf = malloc(n + 1);
	r = kfile_read(*kf, buf, n + 1, 0, &got, NULL);
	if (r == 0) {
		ck_assert_msg(hist_has(h, buf, got),
			      "after a crash: %zu bytes, none of the states "
			      "since the last sync",
			      got);
		free(*model);
		*model = buf;
		*len = got;
		return;
	}
	ck_assert_int_eq(r, -EBADMSG);
	while (p + CF_CHUNK_SIZE <= n &&
	       kfile_read(*kf, buf + p, CF_CHUNK_SIZE, p, &got, NULL) == 0 &&
	       got == CF_CHUNK_SIZE)
		p += CF_CHUNK_SIZE;
	ck_assert_msg(p <= *len && memcmp(buf, *model, p) == 0,
		      "after a crash: the complete chunks are not the model's");
	ck_assert_int_eq(kfile_truncate(*kf, p), 0);
	*len = p;
	free(buf);
}

/* One random operation on kf and the model. */
static void random_op(struct kfile **kf, uint8_t **model, size_t *len,
		      unsigned *seed, struct history *h)
{
	unsigned op = (unsigned)rand_r(seed) % 11;
	size_t off, n;

	if (op < 5) {
		off = (size_t)rand_r(seed) % (*len + 140000);
		n = 1 + (size_t)rand_r(seed) % 150000;
		if (op == 0)
			off = *len; /* append */
		if (off + n > *len) {
			*model = realloc(*model, off + n);
			memset(*model + *len, 0, off + n - *len);
			*len = off + n;
		}
		for (size_t i = 0; i < n; i++)
			(*model)[off + i] = (uint8_t)rand_r(seed);
		ck_assert_int_eq(kfile_write(*kf, *model + off, n, off), 0);
	} else if (op < 7) {
		n = (size_t)rand_r(seed) % (*len + 100000 + 1);
		if (n > *len) {
			*model = realloc(*model, n);
			memset(*model + *len, 0, n - *len);
		}
		*len = n;
		ck_assert_int_eq(kfile_truncate(*kf, n), 0);
	} else if (op < 9) {
		ck_assert_int_eq(kfile_sync(*kf, op == 8), 0);
		check_crash_view(*model, *len);
		hist_clear(h);
	} else if (op == 9) {
		ck_assert_int_eq(kfile_commit(*kf), 0);
		kfile_close(*kf);
		check_backing(*model, *len);
		*kf = open_kf(false);
		hist_clear(h);
	} else {
		crash(kf, model, len, h);
		hist_clear(h);
	}
	hist_add(h, *model, *len);
}

START_TEST(test_random_model)
{
	unsigned seed = 1000 + (unsigned)_i;
	struct kfile *kf = open_kf(true);
	uint8_t *model = malloc(1);
	struct history h = {.n = 0};
	size_t len = 0;

	th.refuse_rename = _i == 2; /* also the copy-back path */
	hist_add(&h, model, 0);
	for (int step = 0; step < 120; step++) {
		random_op(&kf, &model, &len, &seed, &h);
		check_view(kf, model, len);
	}
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	check_backing(model, len);
	if (_i == 2)
		ck_assert_int_gt(th.copybacks, 0);
	hist_clear(&h);
	free(model);
}
END_TEST

static void corrupt(off_t off, int truncate_to)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/f", th.dir);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	if (truncate_to >= 0) {
		ck_assert_int_eq(ftruncate(fd, truncate_to), 0);
	} else {
		uint8_t b;

		ck_assert_int_eq(pread(fd, &b, 1, off), 1);
		b ^= 0x01;
		ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
	}
	close(fd);
}

START_TEST(test_tamper_gives_ebadmsg_on_that_chunk_only)
{
	uint8_t *data = pattern(200000, 9), buf[1000];
	struct kfile *kf = open_kf(true);
	size_t got;

	write_all(kf, data, 200000, 50000);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	corrupt(CF_HEADER_SIZE + CF_CHUNK_CT_SIZE + 100, -1); /* chunk 1 */
	kf = open_kf(false);
	ck_assert_int_eq(kfile_read(kf, buf, sizeof(buf), 1000, &got, NULL), 0);
	ck_assert(memcmp(buf, data + 1000, sizeof(buf)) == 0);
	ck_assert_int_eq(kfile_read(kf, buf, sizeof(buf), 70000, &got, NULL),
			 -EBADMSG);
	ck_assert_int_eq(kfile_read(kf, buf, sizeof(buf), 140000, &got, NULL),
			 0);
	/* Rewriting a damaged file fails instead of sealing garbage. */
	ck_assert_int_eq(kfile_write(kf, buf, 10, 0), 0);
	ck_assert_int_eq(kfile_commit(kf), -EBADMSG);
	kfile_close(kf);
	free(data);
}
END_TEST

/* A read that decrypted a chunk and returned only part of it names that
 * chunk, whole and authenticated (op_read hands it to the kernel's
 * cache); a read that decrypted none, a failed read and a read whose end
 * check reused the buffer name none. */
START_TEST(test_read_names_fresh_chunk)
{
	uint8_t *data = pattern(3 * CF_CHUNK_SIZE, 12),
		*buf = malloc(CF_CHUNK_SIZE);
	struct kfile *kf = open_kf(true);
	struct kfile_chunk c;
	size_t got;

	write_all(kf, data, 3 * CF_CHUNK_SIZE, 50000);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	kf = open_kf(false);
	ck_assert_int_eq(kfile_read(kf, buf, 4096, 70000, &got, &c), 0);
	ck_assert_uint_eq(c.off, CF_CHUNK_SIZE);
	ck_assert_uint_eq(c.len, CF_CHUNK_SIZE);
	ck_assert(memcmp(c.pt, data + CF_CHUNK_SIZE, CF_CHUNK_SIZE) == 0);
	/* again: served by the file's chunk cache, nothing decrypted */
	ck_assert_int_eq(kfile_read(kf, buf, 4096, 80000, &got, &c), 0);
	ck_assert_uint_eq(c.len, 0);
	/* a whole chunk, decrypted straight into the reply */
	ck_assert_int_eq(kfile_read(kf, buf, CF_CHUNK_SIZE, 0, &got, &c), 0);
	ck_assert_uint_eq(c.len, 0);
	/* across two chunks: the last one */
	ck_assert_int_eq(
	    kfile_read(kf, buf, 8192, 2 * CF_CHUNK_SIZE - 4096, &got, &c), 0);
	ck_assert_uint_eq(c.off, 2 * CF_CHUNK_SIZE);
	ck_assert(memcmp(c.pt, data + 2 * CF_CHUNK_SIZE, c.len) == 0);
	kfile_close(kf);
	/* the end of a file of whole chunks checks its final (empty) chunk
	 * in the same buffer */
	kf = open_kf(false);
	ck_assert_int_eq(
	    kfile_read(kf, buf, 4096, 3 * CF_CHUNK_SIZE - 4096, &got, &c), 0);
	ck_assert_uint_eq(got, 4096);
	ck_assert_uint_eq(c.len, 0);
	kfile_close(kf);
	corrupt(CF_HEADER_SIZE + 100, -1); /* chunk 0 */
	kf = open_kf(false);
	ck_assert_int_eq(kfile_read(kf, buf, 4096, 100, &got, &c), -EBADMSG);
	ck_assert_uint_eq(c.len, 0);
	kfile_close(kf);
	free(buf);
	free(data);
}
END_TEST

START_TEST(test_truncated_at_chunk_boundary)
{
	uint8_t *data = pattern(131072, 4), buf[4096];
	struct kfile *kf = open_kf(true);
	struct stat st;
	char path[512];
	size_t got;

	write_all(kf, data, 131072, 65536);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	corrupt(0, CF_HEADER_SIZE + 2 * CF_CHUNK_CT_SIZE);
	snprintf(path, sizeof(path), "%s/f", th.dir);
	ck_assert_int_eq(stat(path, &st), 0);
	/* stat shows one byte past the intact data so readers reach it */
	ck_assert_uint_eq(kfile_stat_size((uint64_t)st.st_size), 131073);
	kf = open_kf(false);
	ck_assert_int_eq(kfile_read(kf, buf, sizeof(buf), 0, &got, NULL), 0);
	ck_assert_int_eq(
	    kfile_read(kf, buf, sizeof(buf), 131072 - 100, &got, NULL),
	    -EBADMSG);
	kfile_close(kf);
	/* a forged "empty final chunk" (16 bytes of chunk 2) fails too */
	corrupt(0, CF_HEADER_SIZE + 2 * CF_CHUNK_CT_SIZE + 16);
	kf = open_kf(false);
	ck_assert_uint_eq(kfile_size(kf), 131072);
	ck_assert_int_eq(
	    kfile_read(kf, buf, sizeof(buf), 131072 - 4096, &got, NULL),
	    -EBADMSG);
	kfile_close(kf);
	free(data);
}
END_TEST

START_TEST(test_plaintext_file_refused_but_replaceable)
{
	static const char text[] = "this is not encrypted at all\n";
	uint8_t buf[64];
	struct kfile *kf;
	size_t got;
	char path[512];

	snprintf(path, sizeof(path), "%s/f", th.dir);
	ck_assert_int_eq(tl_write_file(path, text, sizeof(text)), 0);
	kf = open_kf(false);
	ck_assert_int_eq(kfile_read(kf, buf, sizeof(buf), 0, &got, NULL),
			 -EBADMSG);
	ck_assert_int_eq(kfile_truncate(kf, 0), 0);
	ck_assert_int_eq(kfile_write(kf, (const uint8_t *)"ok", 2, 0), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	check_backing((const uint8_t *)"ok", 2);
}
END_TEST

START_TEST(test_readonly_refuses_writes)
{
	struct kfile *kf = open_kf(true);
	int fd;

	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	fd = openat(th.dirfd, "f", O_RDONLY);
	ck_assert_int_eq(kfile_open(fd, 0, key, &host, "f", &kf), 0);
	ck_assert_int_eq(kfile_write(kf, (const uint8_t *)"x", 1, 0), -EBADF);
	ck_assert_int_eq(kfile_truncate(kf, 5), -EBADF);
	kfile_close(kf);
	check_backing(NULL, 0);
}
END_TEST

/* A failed chunk write ends the session: a retry into the same chunk is
 * sealed under a new IV (the wrapper fails on a repeated nonce). */
START_TEST(test_failed_write_retry_uses_fresh_iv)
{
	uint8_t *a = pattern(70000, 1), *b = pattern(70000, 2);
	struct kfile *kf = open_kf(true);

	fault_errno = ENOSPC;
	fault_calls = 0;
	fault_at = 0; /* the pwrite of chunk 0 */
	fault_counting = true;
	ck_assert_int_eq(kfile_write(kf, a, 70000, 0), -ENOSPC);
	fault_counting = false;
	ck_assert_int_eq(kfile_write(kf, b, 70000, 0), 0);
	/* the error is reported once more, at the next commit */
	ck_assert_int_eq(kfile_commit(kf), -ENOSPC);
	ck_assert_int_eq(kfile_commit(kf), 0);
	check_view(kf, b, 70000);
	kfile_close(kf);
	check_backing(b, 70000);
	free(a);
	free(b);
}
END_TEST

/* A new file whose first commit fails is left readable (what was
 * written is kept: the tail in the journal), and the failure is
 * reported, not a 0 from a commit over an unreadable file. */
START_TEST(test_failed_new_file_left_readable)
{
	uint8_t *a = pattern(1000, 3);
	struct kfile *kf = open_kf(true);

	ck_assert_int_eq(kfile_write(kf, a, 1000, 0), 0);
	fault_errno = ENOSPC;
	fault_calls = 0;
	fault_at = 0; /* the pwrite of the final chunk */
	fault_counting = true;
	ck_assert_int_eq(kfile_commit(kf), -ENOSPC);
	fault_counting = false;
	check_view(kf, a, 1000);	       /* kept in the journal */
	ck_assert_int_eq(kfile_commit(kf), 0); /* no retry on this kfile */
	kfile_close(kf);
	kf = open_kf(false);
	check_view(kf, a, 1000);
	ck_assert_int_eq(kfile_commit(kf), 0); /* the next one finishes it */
	kfile_close(kf);
	check_backing(a, 1000);
	ck_assert_int_eq(count_temps(), 0);
	free(a);
}
END_TEST

/* Times set on the open file survive kfile's own later writes (flush,
 * finish); a write after them moves the mtime again. */
START_TEST(test_times_survive_close)
{
	const struct timespec tv[2] = {{1000000000, 5}, {1000000001, 7}};
	uint8_t *data = pattern(100000, 8);
	struct kfile *kf = open_kf(true);
	struct stat st;

	write_all(kf, data, 100000, 65536);
	kfile_set_times(kf, tv);
	ck_assert_int_eq(kfile_sync(kf, false), 0);
	ck_assert_int_eq(fstatat(th.dirfd, "f", &st, 0), 0);
	ck_assert(st.st_mtim.tv_sec == 1000000001 && st.st_mtim.tv_nsec == 7);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(fstatat(th.dirfd, "f", &st, 0), 0);
	ck_assert(st.st_mtim.tv_sec == 1000000001 && st.st_mtim.tv_nsec == 7);
	ck_assert(st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 5);
	/* a rewrite (new inode) gets them too */
	ck_assert_int_eq(kfile_write(kf, data, 10, 3), 0);
	kfile_set_times(kf, tv);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(fstatat(th.dirfd, "f", &st, 0), 0);
	ck_assert(st.st_mtim.tv_sec == 1000000001 && st.st_mtim.tv_nsec == 7);
	/* set, then written: the write wins */
	kfile_set_times(kf, tv);
	ck_assert_int_eq(kfile_write(kf, data, 10, 99990), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(fstatat(th.dirfd, "f", &st, 0), 0);
	ck_assert_int_gt(st.st_mtim.tv_sec, 1000000001);
	kfile_close(kf);
	free(data);
}
END_TEST

/* The times are put back once after kmsfs's writes, not at every
 * commit: a flush and the release after it commit twice, and a second
 * futimens there was a syscall per file for nothing.  A write arms it
 * again. */
START_TEST(test_times_once)
{
	const struct timespec tv[2] = {{1000000000, 5}, {1000000001, 7}};
	const struct timespec other[2] = {{1200000000, 0}, {1200000001, 0}};
	uint8_t *data = pattern(1000, 9);
	struct kfile *kf = open_kf(true);
	struct stat st;

	write_all(kf, data, 1000, 1000);
	kfile_set_times(kf, tv);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(fstatat(th.dirfd, "f", &st, 0), 0);
	ck_assert(st.st_mtim.tv_sec == 1000000001 && st.st_mtim.tv_nsec == 7);
	/* nothing written since: neither a commit nor a sync sets them */
	ck_assert_int_eq(utimensat(th.dirfd, "f", other, 0), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(kfile_sync(kf, true), 0);
	ck_assert_int_eq(fstatat(th.dirfd, "f", &st, 0), 0);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1200000001);
	ck_assert_int_eq(st.st_atim.tv_sec, 1200000000);
	/* a write: the commit puts the atime back (the mtime is the
	 * write's) */
	ck_assert_int_eq(kfile_write(kf, data, 10, 5), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(fstatat(th.dirfd, "f", &st, 0), 0);
	ck_assert(st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 5);
	ck_assert_int_gt(st.st_mtim.tv_sec, 1200000001);
	kfile_close(kf);
	free(data);
}
END_TEST

/* A v1 file (one GCM message under the header's IV) of data[0..len). */
static void write_v1(const char *name, const uint8_t *data, size_t len)
{
	uint8_t iv[CF_IV_SIZE] = {4, 5, 6}, *buf = malloc(len + 36);
	char path[512];

	cf_header_build(iv, buf);
	buf[CF_VERSION_OFFSET] = CF_V1;
	ck_assert_int_eq(
	    __real_cf_seal_record(key, iv, NULL, 0, data, len, buf + 20), 0);
	snprintf(path, sizeof(path), "%s/%s", th.dir, name);
	ck_assert_int_eq(tl_write_file(path, buf, len + 36), 0);
	free(buf);
}

/* Damaged backing files (0 bytes, plaintext, a cut v1 file) give EIO
 * at a read-only open; opened for writing, every read fails and the
 * size never shows 0 (a reader would take it for an empty file). */
START_TEST(test_damaged_files_eio)
{
	static const char *names[] = {"empty", "plain36", "plain", "v1cut"};
	uint8_t buf[100], *data = pattern(5000, 9);
	struct kfile *kf;
	char path[512];
	size_t got;
	int fd;

	snprintf(path, sizeof(path), "%s/empty", th.dir);
	ck_assert_int_eq(tl_write_file(path, "", 0), 0);
	snprintf(path, sizeof(path), "%s/plain36", th.dir);
	ck_assert_int_eq(tl_write_file(path, data, 36), 0);
	snprintf(path, sizeof(path), "%s/plain", th.dir);
	ck_assert_int_eq(tl_write_file(path, "hello, world\n", 13), 0);
	write_v1("v1cut", data, 5000);
	snprintf(path, sizeof(path), "%s/v1cut", th.dir);
	ck_assert_int_eq(truncate(path, 36 + 4000), 0);
	for (int i = 0; i < 4; i++) {
		fd = openat(th.dirfd, names[i], O_RDONLY);
		ck_assert_int_eq(kfile_open(fd, 0, key, &host, names[i], &kf),
				 -EBADMSG);
		close(fd);
		fd = openat(th.dirfd, names[i], O_RDWR);
		ck_assert_int_eq(
		    kfile_open(fd, KFILE_WRITABLE, key, &host, names[i], &kf),
		    0);
		ck_assert_uint_ge(kfile_size(kf), 1);
		ck_assert_int_eq(
		    kfile_read(kf, buf, sizeof(buf), 0, &got, NULL), -EBADMSG);
		ck_assert_int_eq(kfile_commit(kf), 0); /* left as it was */
		kfile_close(kf);
	}
	/* keyless: a file that is not ciphertext is damaged, one that is
	 * is a key problem */
	fd = openat(th.dirfd, "plain", O_RDONLY);
	ck_assert_int_eq(kfile_open(fd, 0, NULL, &host, "plain", &kf),
			 -EBADMSG);
	close(fd);
	fd = openat(th.dirfd, "v1cut", O_RDONLY);
	ck_assert_int_eq(kfile_open(fd, 0, NULL, &host, "v1cut", &kf), -ENOKEY);
	close(fd);
	free(data);
}
END_TEST

/* v1: refused unless KFILE_ALLOW_V1; then read by chunk, never written. */
START_TEST(test_v1_allowed_read_only)
{
	uint8_t *data = pattern(60000, 10), *buf = malloc(150001);
	struct kfile *kf;
	size_t got;
	int fd;

	write_v1("old", data, 60000);
	fd = openat(th.dirfd, "old", O_RDONLY);
	ck_assert_int_eq(kfile_open(fd, 0, key, &host, "old", &kf), -EBADMSG);
	close(fd);
	fd = openat(th.dirfd, "old", O_RDWR);
	ck_assert_int_eq(kfile_open(fd, KFILE_WRITABLE | KFILE_ALLOW_V1, key,
				    &host, "old", &kf),
			 0);
	ck_assert_uint_eq(kfile_size(kf), 60000);
	ck_assert_int_eq(kfile_read(kf, buf, 150001, 0, &got, NULL), 0);
	ck_assert_uint_eq(got, 60000);
	ck_assert_mem_eq(buf, data, 60000);
	ck_assert_int_eq(kfile_read(kf, buf, 100, 59990, &got, NULL), 0);
	ck_assert_uint_eq(got, 10);
	ck_assert_int_eq(kfile_write(kf, data, 1, 0), -EROFS);
	ck_assert_int_eq(kfile_truncate(kf, 0), -EROFS);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	free(buf);
	free(data);
}
END_TEST

/* --- the model under injected faults -------------------------------------- */

/* The whole view of kf, malloc'd; the read must succeed. */
static uint8_t *view_of(struct kfile *kf, size_t *len)
{
	size_t n = (size_t)kfile_size(kf), got;
	uint8_t *buf = malloc(n + 1);
	int r = kfile_read(kf, buf, n + 1, 0, &got, NULL);

	ck_assert_msg(r == 0, "file unreadable after call %ld failed: %s",
		      fault_at, strerror(-r));
	ck_assert_uint_eq(got, n);
	*len = n;
	return buf;
}

static int count_temps(void)
{
	DIR *d = opendir(th.dir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		n += strncmp(e->d_name, ".kmsfs-tmp-", 11) == 0;
	closedir(d);
	return n;
}

/* Longest write of the fault model, and its steps per run: longer writes
 * seal whole chunks in one run (file_write.c, seal_run) but make every
 * run of the model slower (test_faults_in_whole_chunk_runs). */
static size_t fault_wmax = 100000;
static int fault_steps = 24;

/* Fail call number `at` (-1: none) with err from now on. */
static void fault_arm(long at, int err)
{
	fault_at = at;
	fault_calls = 0;
	fault_fired = false;
	fault_errno = err;
}

/* One random operation on kf (model updated as if it succeeded); returns
 * kfile's result.  *op_out says which kind it was. */
static int faulty_op(struct kfile **kf, uint8_t **model, size_t *len,
		     unsigned *seed, unsigned *op_out)
{
	unsigned op = (unsigned)rand_r(seed) % 10;
	size_t off, n;
	int r;

	*op_out = op;
	if (op < 5) {
		off = (size_t)rand_r(seed) % (*len + 70000);
		n = 1 + (size_t)rand_r(seed) % fault_wmax;
		if (op == 0)
			off = *len;
		if (off + n > *len) {
			*model = realloc(*model, off + n);
			memset(*model + *len, 0, off + n - *len);
			*len = off + n;
		}
		for (size_t i = 0; i < n; i++)
			(*model)[off + i] = (uint8_t)rand_r(seed);
		return kfile_write(*kf, *model + off, n, off);
	}
	if (op < 7) {
		n = (size_t)rand_r(seed) % (*len + 70000 + 1);
		if (n > *len) {
			*model = realloc(*model, n);
			memset(*model + *len, 0, n - *len);
		}
		*len = n;
		return kfile_truncate(*kf, n);
	}
	if (op < 9)
		return kfile_sync(*kf, op == 8);
	r = kfile_commit(*kf);
	fault_counting = false;
	kfile_close(*kf);
	*kf = open_kf(false);
	return r;
}

/* What a failed write in place may keep: a prefix of the file with each
 * byte from before or after the operation (or empty). */
static bool partly(const uint8_t *v, size_t vlen, const struct history *h,
		   const uint8_t *after, size_t alen)
{
	const uint8_t *before = h->data[h->n - 1];
	size_t blen = h->len[h->n - 1];

	if (vlen > (alen > blen ? alen : blen))
		return false;
	for (size_t i = 0; i < vlen; i++) {
		uint8_t b = i < blen ? before[i] : 0,
			a = i < alen ? after[i] : 0;

		if (v[i] != a && v[i] != b)
			return false;
	}
	return true;
}

/*
 * The model with call number `at` failing (-1: none); returns how many
 * calls kfile made.  After a failed operation the file must read as one
 * of the states it may fall back to (after the operation, a state since
 * the last commit, empty), and the test goes on from what it reads.
 */
static long run_faulty(unsigned seed, long at, int err)
{
	struct history h = {.n = 0};
	uint8_t *model = malloc(1), *view;
	size_t len = 0, vlen;
	struct kfile *kf;
	unsigned op;
	int r;

	unlinkat(th.dirfd, th.name, 0);
	fault_arm(at, err);
	kf = open_kf(true);
	hist_add(&h, model, 0);
	for (int step = 0; step < fault_steps; step++) {
		hist_add(&h, model, len);
		fault_counting = true;
		r = faulty_op(&kf, &model, &len, &seed, &op);
		fault_counting = false;
		if (r) {
			ck_assert_msg(
			    fault_fired,
			    "error %d without a fault (at %ld, op %u, step %d)",
			    r, at, op, step);
			view = view_of(kf, &vlen);
			ck_assert_msg(same(view, vlen, model, len) ||
					  hist_has(&h, view, vlen) ||
					  partly(view, vlen, &h, model, len),
				      "call %ld failed (op %u, r %d): the file "
				      "reads as none of the states it may fall "
				      "back to (%zu bytes, model %zu)",
				      at, op, r, vlen, len);
			free(model);
			model = view;
			len = vlen;
		} else if (op == 9 && !kfile_unfinished(kf)) {
			check_backing(model, len);
			hist_clear(&h);
		} else if (op >= 7) {
			check_crash_view(model, len);
			hist_clear(&h);
		}
		check_view(kf, model, len);
	}
	r = kfile_commit(kf);
	ck_assert(r == 0 || fault_fired);
	kfile_close(kf);
	kf = open_kf(false); /* finishes what a failure left unfinished */
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	check_backing(model, len);
	kf = open_kf(false);
	check_view(kf, model, len);
	kfile_close(kf);
	ck_assert_int_eq(count_temps(), 0);
	hist_clear(&h);
	free(model);
	return fault_calls;
}

START_TEST(test_faults_keep_nonces_and_files)
{
	static const int errs[] = {ENOSPC, EIO};
	unsigned seed = 2000 + (unsigned)_i / 2;
	int err = errs[_i % 2];
	long total;

	th.refuse_rename = _i >= 4; /* the copy-back path */
	total = run_faulty(seed, -1, err);
	ck_assert_int_gt(total, 10);
	fprintf(stderr, "fault seam: seed %u, %ld calls\n", seed, total);
	for (long at = 0; at < total; at++)
		run_faulty(seed, at, err);
	fault_at = -1;
}
END_TEST

/* The same with writes of up to three chunks, so that every call of a
 * run of whole chunks sealed at once (one pwrite) fails in turn: in
 * place, through a temporary, and copied back. */
START_TEST(test_faults_in_whole_chunk_runs)
{
	static const int errs[] = {EIO, ENOSPC, EIO};
	unsigned seed = 2100 + (unsigned)_i;
	long total;

	fault_wmax = 200000;
	fault_steps = 12;
	th.refuse_rename = _i == 2; /* the copy-back path */
	total = run_faulty(seed, -1, errs[_i]);
	ck_assert_int_gt(total, 10);
	fprintf(stderr, "fault seam (runs): seed %u, %ld calls\n", seed, total);
	for (long at = 0; at < total; at++)
		run_faulty(seed, at, errs[_i]);
	fault_at = -1;
	fault_wmax = 100000;
	fault_steps = 24;
}
END_TEST

/* The shell's `cmd >file` closes the created fd once before the first
 * write, so the file is committed empty first.  Written then, it goes on
 * in place (no temporary, rename or fsync), unless that empty version
 * was synced; with each call failing in turn it reads empty or written. */
static long redirect_run(long at, bool synced, const uint8_t *data, size_t n)
{
	struct kfile *kf;
	uint8_t *view;
	size_t vlen;
	int r;

	unlinkat(th.dirfd, th.name, 0);
	th.replaces = 0;
	fault_arm(at, EIO);
	kf = open_kf(true);
	fault_counting = true;
	r = kfile_commit(kf);
	if (!r && synced)
		r = kfile_sync(kf, true);
	if (!r)
		r = kfile_write(kf, data, n, 0);
	if (!r)
		r = kfile_commit(kf);
	fault_counting = false;
	ck_assert(r == 0 || fault_fired);
	kfile_close(kf);
	kf = open_kf(false);
	view = view_of(kf, &vlen);
	ck_assert_msg(vlen == 0 || same(view, vlen, data, n),
		      "call %ld failed: %zu bytes read, neither empty nor "
		      "what was written",
		      at, vlen);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	check_backing(view, vlen);
	ck_assert_int_eq(count_temps(), 0);
	free(view);
	return fault_calls;
}

START_TEST(test_redirect_writes_in_place)
{
	uint8_t *data = pattern(4096 + 70000 * (size_t)_i, 5);
	size_t n = 4096 + 70000 * (size_t)_i;
	long total;

	total = redirect_run(-1, false, data, n);
	ck_assert_int_eq(th.replaces, 0);
	check_backing(data, n);
	redirect_run(-1, true, data, n);
	ck_assert_int_eq(th.replaces, 1); /* the synced empty file is kept */
	for (long at = 0; at < total; at++)
		redirect_run(at, false, data, n);
	fault_at = -1;
	free(data);
}
END_TEST

/* A file that had data keeps its empty version when it is truncated to 0
 * and closed: the next write goes through a temporary again. */
START_TEST(test_emptied_file_not_reborn)
{
	uint8_t *data = pattern(5000, 7);
	struct kfile *kf = open_kf(true);

	write_all(kf, data, 5000, 5000);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	kf = open_kf(false);
	th.replaces = 0;
	ck_assert_int_eq(kfile_truncate(kf, 0), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(th.replaces, 1);
	write_all(kf, data, 5000, 5000);
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert_int_eq(th.replaces, 2);
	kfile_close(kf);
	check_backing(data, 5000);
	free(data);
}
END_TEST

/* kfile_closers: written again after a commit that left data in it (the
 * caller then checkpoints at a close and finishes at the last one); a
 * commit of the empty new file (the shell's first close) does not count. */
START_TEST(test_closers)
{
	uint8_t *data = pattern(100000, 9);
	struct kfile *kf = open_kf(true);

	ck_assert_int_eq(kfile_commit(kf), 0);
	write_all(kf, data, 50000, 50000);
	ck_assert(!kfile_closers(kf));
	ck_assert_int_eq(kfile_commit(kf), 0);
	ck_assert(!kfile_closers(kf));
	ck_assert_int_eq(kfile_write(kf, data + 50000, 50000, 50000), 0);
	ck_assert(kfile_closers(kf));
	ck_assert_int_eq(kfile_sync(kf, false), 0);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	check_backing(data, 100000);
	kf = open_kf(false);
	ck_assert(!kfile_closers(kf));
	kfile_close(kf);
	free(data);
}
END_TEST

/* A file with several links is rewritten through a temporary and copied
 * back; a full disk must fail before the old inode changes. */
START_TEST(test_copyback_full_disk_keeps_original)
{
	uint8_t *data = pattern(300000, 5);
	struct kfile *kf = open_kf(true);

	th.refuse_rename = true;
	write_all(kf, data, 200000, 65536);
	ck_assert_int_eq(kfile_commit(kf), 0);
	kfile_close(kf);
	kf = open_kf(false);
	ck_assert_int_eq(kfile_write(kf, data + 200000, 100000, 200000), 0);
	fault_errno = ENOSPC;
	fault_only = "fallocate";
	fault_calls = 0;
	fault_at = 0;
	fault_counting = true;
	ck_assert_int_eq(kfile_commit(kf), -ENOSPC);
	fault_counting = false;
	check_view(kf, data, 200000);
	kfile_close(kf);
	check_backing(data, 200000);
	ck_assert_int_eq(count_temps(), 0);
	free(data);
}
END_TEST

/* The temporary's descriptor has one owner: a failed copy into the old
 * inode is tried once more and closes it once (the close wrapper fails
 * the test on a second close). */
START_TEST(test_copyback_failure_closes_temp_once)
{
	uint8_t *data = pattern(100000, 6);
	struct kfile *kf = open_kf(true);

	th.refuse_rename = true;
	write_all(kf, data, 100000, 65536);
	ck_assert_int_eq(kfile_commit(kf), 0);
	memset(data + 5, 0xab, 10);
	ck_assert_int_eq(kfile_write(kf, data + 5, 10, 5), 0);
	fault_only = "fsync";
	fault_calls = 0;
	fault_at = 1; /* 0: the temporary's, 1: the old inode's after copy */
	fault_counting = true;
	ck_assert_int_eq(kfile_commit(kf), 0);
	fault_counting = false;
	ck_assert(fault_fired);
	check_view(kf, data, 100000);
	kfile_close(kf);
	check_backing(data, 100000);
	ck_assert_int_eq(count_temps(), 0);
	free(data);
}
END_TEST

/* --- the journal ---------------------------------------------------------- */

START_TEST(test_journal_names)
{
	uint8_t iv[CF_IV_SIZE], got[CF_IV_SIZE];
	char name[JNL_NAME_SIZE];

	for (int i = 0; i < CF_IV_SIZE; i++)
		iv[i] = (uint8_t)(0xf1 * i + 3);
	jnl_name(iv, name);
	ck_assert_str_eq(name, ".kmsfs-tmp-journal-03f4e5d6c7b8a99a8b7c6d5e");
	ck_assert_int_eq(jnl_name_iv(name, got), 0);
	ck_assert_mem_eq(got, iv, CF_IV_SIZE);
	ck_assert_int_eq(jnl_name_iv(".kmsfs-tmp-journal-03", got), -EINVAL);
	ck_assert_int_eq(
	    jnl_name_iv(".kmsfs-tmp-journal-03F4E5D6C7B8A99A8B7C6D5E", got),
	    -EINVAL);
	ck_assert_int_eq(
	    jnl_name_iv(".kmsfs-tmp-0123456789abcdef0123456789ab", got),
	    -EINVAL);
}
END_TEST

/* Two slots: the newest authentic record wins, a torn or damaged one
 * leaves the other, another version's records are not taken. */
START_TEST(test_journal_slots)
{
	uint8_t iv[CF_IV_SIZE] = {1, 2, 3}, other[CF_IV_SIZE] = {9};
	uint8_t *a = pattern(CF_CHUNK_SIZE, 1), *b = pattern(5000, 2);
	uint8_t *data = malloc(CF_CHUNK_SIZE), *buf = malloc(JNL_BUF_SIZE);
	uint64_t k, seq;
	size_t len;
	int fd = openat(th.dirfd, "j", O_RDWR | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_eq(jnl_read(fd, key, iv, &k, &seq, data, &len, buf),
			 -ENOENT);
	ck_assert_int_eq(jnl_write(fd, key, iv, 7, 0, a, CF_CHUNK_SIZE, buf),
			 0);
	ck_assert_int_eq(jnl_write(fd, key, iv, 8, 1, b, 5000, buf), 0);
	ck_assert_int_eq(jnl_read(fd, key, iv, &k, &seq, data, &len, buf), 0);
	ck_assert(k == 8 && seq == 1 && len == 5000);
	ck_assert_mem_eq(data, b, 5000);
	ck_assert_int_eq(jnl_read(fd, key, other, &k, &seq, data, &len, buf),
			 -ENOENT);
	/* record 2 torn half-way: record 1 (the other slot) stands */
	ck_assert_int_eq(jnl_write(fd, key, iv, 9, 2, a, 1000, buf), 0);
	ck_assert_int_eq(pwrite(fd, b, 500, JNL_HDR_SIZE + 500), 500);
	ck_assert_int_eq(jnl_read(fd, key, iv, &k, &seq, data, &len, buf), 0);
	ck_assert(k == 8 && seq == 1 && len == 5000);
	/* a flipped bit in record 1: nothing authentic is left */
	ck_assert_int_eq(pread(fd, buf, 1, JNL_SLOT + JNL_HDR_SIZE + 10), 1);
	buf[0] ^= 1;
	ck_assert_int_eq(pwrite(fd, buf, 1, JNL_SLOT + JNL_HDR_SIZE + 10), 1);
	ck_assert_int_eq(jnl_read(fd, key, iv, &k, &seq, data, &len, buf),
			 -ENOENT);
	/* an empty record is a record */
	ck_assert_int_eq(jnl_write(fd, key, iv, 0, 3, a, 0, buf), 0);
	ck_assert_int_eq(jnl_read(fd, key, iv, &k, &seq, data, &len, buf), 0);
	ck_assert(k == 0 && seq == 3 && len == 0);
	ck_assert_int_eq(
	    jnl_write(fd, key, iv, 0, 4, a, CF_CHUNK_SIZE + 1, buf), -EINVAL);
	close(fd);
	free(a);
	free(b);
	free(data);
	free(buf);
}
END_TEST

static Suite *file_suite(void)
{
	Suite *s = suite_create("file");
	TCase *tc = tcase_create("kfile");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_sizes, 0, 10);
	tcase_add_loop_test(tc, test_big_writes, 0, 5);
	tcase_add_test(tc, test_span_reads);
	tcase_add_test(tc, test_append_after_commit_reencrypts);
	tcase_add_test(tc, test_chunk_cache_follows_writes);
	tcase_add_loop_test(tc, test_random_model, 0, 3);
	tcase_add_test(tc, test_tamper_gives_ebadmsg_on_that_chunk_only);
	tcase_add_test(tc, test_read_names_fresh_chunk);
	tcase_add_test(tc, test_truncated_at_chunk_boundary);
	tcase_add_test(tc, test_plaintext_file_refused_but_replaceable);
	tcase_add_test(tc, test_readonly_refuses_writes);
	tcase_add_test(tc, test_times_survive_close);
	tcase_add_test(tc, test_times_once);
	tcase_add_test(tc, test_damaged_files_eio);
	tcase_add_test(tc, test_v1_allowed_read_only);
	tcase_add_test(tc, test_failed_write_retry_uses_fresh_iv);
	tcase_add_test(tc, test_failed_new_file_left_readable);
	tcase_add_loop_test(tc, test_redirect_writes_in_place, 0, 2);
	tcase_add_test(tc, test_emptied_file_not_reborn);
	tcase_add_test(tc, test_closers);
	tcase_add_test(tc, test_copyback_full_disk_keeps_original);
	tcase_add_test(tc, test_copyback_failure_closes_temp_once);
	tcase_add_loop_test(tc, test_faults_keep_nonces_and_files, 0, 6);
	tcase_add_loop_test(tc, test_faults_in_whole_chunk_runs, 0, 3);
	suite_add_tcase(s, tc);
	tc = tcase_create("journal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_journal_names);
	tcase_add_test(tc, test_journal_slots);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(file_suite());
}
