/*
 * testlib.h - helpers shared by the Check unit tests.
 *
 * Owns: finding the shared test vectors, whole-file and whole-fd reads,
 * hex, SHA-256, a reference decrypter and temporary directories.  Test code
 * only: helpers that cannot fail in a sane test environment abort() instead of
 * returning an error, the others return 0 or a negative errno like the rest of
 * kmsfs. Thread-safety: none needed (Check runs one test per process or
 * thread).
 */
#ifndef KMSFS_TESTLIB_H
#define KMSFS_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "../lib/buf.h"

#define TL_SHA256_HEX_SIZE 65 /* 64 hex digits and a NUL */

/* The shared directory (vectors/, spec/): $KMSFS_SHARED when set, else
 * the one configure found beside the source tree or was given
 * (--with-shared=DIR); NULL when neither. */
const char *tl_shared_dir(void);

/* "<shared dir>/<rel>", malloc'd; the caller frees it.  Without a shared
 * directory, a path that does not exist. */
char *tl_shared_path(const char *rel);

/* Does <shared dir>/<rel> exist?  If not, print on stdout (the test's
 * log) "SKIP <what>: ..." naming --with-shared=DIR and KMSFS_SHARED, and
 * return false. */
bool tl_have_shared(const char *rel, const char *what);

/* Add test t to tc (as tcase_add_test / tcase_add_loop_test) when
 * <shared dir>/<rel> exists; else print its SKIP line. */
void tl_add_shared_test(TCase *tc, const TTest *t, const char *rel);
void tl_add_shared_loop_test(TCase *tc, const TTest *t, const char *rel,
			     int start, int end);

/* Read from fd (rewound to offset 0 when seekable) to EOF into a
 * malloc'd, NUL-terminated block; the caller frees *data_out.  Returns 0,
 * -errno from read, or -ENOMEM. */
int tl_read_fd(int fd, uint8_t **data_out, size_t *len_out);

/* Same for the file at path; -errno from open as well. */
int tl_read_file(const char *path, uint8_t **data_out, size_t *len_out);

/* Initialise b (ceiling 1 GiB) and read the file at path into it, as
 * buf_read_file.  The caller releases b, even on error. */
int tl_read_buf(const char *path, struct buf *b);

/* Create or truncate path (mode 0600) and write data[0..len).  Returns 0
 * or -errno. */
int tl_write_file(const char *path, const void *data, size_t len);

/* An anonymous file (memfd) holding data[0..len) with its offset at 0.
 * Aborts on failure; the caller closes it. */
int tl_memfd(const void *data, size_t len);

/* Decode hex (either case; spaces, tabs and newlines are skipped) into
 * out[0..cap).  Returns the number of bytes, -EINVAL (odd digit count or
 * not hex) or -E2BIG (more than cap bytes). */
int tl_hex_decode(const char *hex, uint8_t *out, size_t cap);

/* Lowercase hex of in[0..len) into out, which holds 2 * len + 1. */
void tl_hex_encode(const uint8_t *in, size_t len, char *out);

/* Lowercase hex SHA-256 of data[0..len). */
void tl_sha256_hex(const void *data, size_t len, char out[TL_SHA256_HEX_SIZE]);

/* The documented v2 reader (spec §1.3), written apart from fs/cformat.c
 * with raw EVP calls, so that tests can check files kmsfs wrote without
 * trusting the code under test.  Decrypts ct[0..len) under the 32-byte
 * key into a malloc'd block the caller frees.  Returns 0, -EINVAL (no v2
 * header), -EBADMSG (authentication failed, truncated, trailing bytes)
 * or -ENOMEM. */
int tl_ref_decrypt_v2(const uint8_t key[32], const uint8_t *ct, size_t len,
		      uint8_t **plain_out, size_t *plain_len_out);

/* A fresh private directory under /tmp, malloc'd path; aborts on
 * failure.  tl_tmpdir_remove deletes it with everything inside (without
 * following symlinks) and frees path; accepts NULL.  Returns 0 or -errno
 * (the first failure). */
char *tl_tmpdir_new(void);
int tl_tmpdir_remove(char *path);

/* Capture what is written to stderr (log lines) from now on;
 * tl_capture_end restores stderr, echoes the text there (so it stays in
 * the test log) and returns it malloc'd. */
void tl_capture_begin(void);
char *tl_capture_end(void);

/* A filesystem core (fs/kfs.h) over a fresh temporary store: passphrase
 * keys, the toplevel layout, and one chain directory "c" made through
 * fs/ns.c (mode 0777), looked up once; the process umask becomes 0, as
 * in the daemon.  Aborts on failure;
 * tl_kfs_release removes the store. */
struct tl_kfs {
	char *dir; /* the store */
	struct ks_keyring *keys;
	struct kfs *fs;
	struct kinode *chain;
	int chainfd; /* O_RDONLY of the chain's backing directory */
};
void tl_kfs_init(struct tl_kfs *t);
void tl_kfs_release(struct tl_kfs *t);

/* Run every test of s, print Check's summary, free the runner; returns
 * the process exit status (EXIT_FAILURE if any test failed). */
int tl_run(Suite *s);

#endif
