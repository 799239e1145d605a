/*
 * testlib.c - helpers shared by the Check unit tests (see testlib.h).
 *
 * Kept deliberately plain: POSIX calls, libcrypto for SHA-256, nftw for
 * recursive removal.  Nothing here is linked into kmsfs itself.
 */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../fs/kfs.h"
#include "../fs/ns.h"

#define TL_READ_BUF_MAX (1u << 30)

const char *tl_shared_dir(void)
{
	const char *d = getenv("KMSFS_SHARED");

	if (d && *d)
		return d;
	return *KMSFS_SHARED_DIR ? KMSFS_SHARED_DIR : NULL;
}

char *tl_shared_path(const char *rel)
{
	const char *d = tl_shared_dir();
	char *p;

	if (asprintf(&p, "%s/%s", d ? d : "/nonexistent/kmsfs-shared", rel) < 0)
		abort();
	return p;
}

bool tl_have_shared(const char *rel, const char *what)
{
	char *p = tl_shared_path(rel);
	bool there = access(p, F_OK) == 0;

	if (!there)
		printf("SKIP %s: the shared test vectors (%s) are not there: "
		       "configure --with-shared=DIR or set KMSFS_SHARED=DIR\n",
		       what, tl_shared_dir() ? p : rel);
	fflush(stdout); /* before Check forks the tests */
	free(p);
	return there;
}

void tl_add_shared_test(TCase *tc, const TTest *t, const char *rel)
{
	if (tl_have_shared(rel, t->name))
		tcase_add_test(tc, t);
}

void tl_add_shared_loop_test(TCase *tc, const TTest *t, const char *rel,
			     int start, int end)
{
	if (tl_have_shared(rel, t->name))
		tcase_add_loop_test(tc, t, start, end);
}

int tl_read_fd(int fd, uint8_t **data_out, size_t *len_out)
{
	size_t len = 0, cap = 4096;
	uint8_t *d = malloc(cap + 1), *n;
	ssize_t got;

	if (!d)
		return -ENOMEM;
	(void)lseek(fd, 0, SEEK_SET); /* ESPIPE for pipes: read as is */
	for (;;) {
		if (len == cap) {
			n = realloc(d, 2 * cap + 1);
			if (!n)
				goto nomem;
			d = n;
			cap *= 2;
		}
		got = read(fd, d + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int r = -errno;

			free(d);
			return r;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	d[len] = '\0';
	*data_out = d;
	*len_out = len;
	return 0;
nomem:
	free(d);
	return -ENOMEM;
}

int tl_read_file(const char *path, uint8_t **data_out, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = tl_read_fd(fd, data_out, len_out);
	close(fd);
	return r;
}

int tl_read_buf(const char *path, struct buf *b)
{
	buf_init(b, TL_READ_BUF_MAX);
	return buf_read_file(b, path);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int tl_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r;

	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (close(fd) && !r)
		r = -errno;
	return r;
}

int tl_memfd(const void *data, size_t len)
{
	int fd = memfd_create("kmsfs-test", MFD_CLOEXEC);

	if (fd < 0 || write_all(fd, data, len) || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tl_hex_decode(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1, v;

	for (; *hex; hex++) {
		if (*hex == ' ' || *hex == '\t' || *hex == '\n')
			continue;
		v = hex_digit(*hex);
		if (v < 0)
			return -EINVAL;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap)
			return -E2BIG;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? (int)n : -EINVAL;
}

void tl_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void tl_sha256_hex(const void *data, size_t len, char out[TL_SHA256_HEX_SIZE])
{
	uint8_t md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		abort();
	tl_hex_encode(md, sizeof(md), out);
}

/* Nonce of chunk idx: a byte-wise big-endian add into bytes [4..12),
 * the carry out of byte 4 dropped (deliberately unlike cformat.c). */
static void ref_nonce(const uint8_t iv[12], uint64_t idx, uint8_t n[12])
{
	unsigned int sum, carry = 0;
	int i;

	memcpy(n, iv, 12);
	for (i = 11; i >= 4; i--) {
		sum = n[i] + (unsigned int)(idx & 0xff) + carry;
		n[i] = (uint8_t)sum;
		carry = sum >> 8;
		idx >>= 8;
	}
}

static int ref_open(const uint8_t key[32], const uint8_t nonce[12],
		    const uint8_t *ct, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t tag[16], fin[32];
	int n, ok;

	if (!c)
		return -ENOMEM;
	memcpy(tag, ct + len - 16, 16);
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) &&
	     (len == 16 || EVP_DecryptUpdate(c, out, &n, ct, (int)len - 16)) &&
	     EVP_DecryptFinal_ex(c, fin, &n) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -EBADMSG;
}

int tl_ref_decrypt_v2(const uint8_t key[32], const uint8_t *ct, size_t len,
		      uint8_t **plain_out, size_t *plain_len_out)
{
	size_t off = 20, n, plen = 0;
	uint8_t nonce[12], *p;
	uint64_t i;
	int r = 0;

	if (len < 20 || memcmp(ct, "encrypt\x02", 8))
		return -EINVAL;
	p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	/* storageccl's reader: chunk i is up to 65552 bytes at 20 + i *
	 * 65552; the first with less than 65536 bytes of plaintext ends
	 * the file, and it must end exactly there. */
	for (i = 0; r == 0; i++) {
		n = len - off < 65552 ? len - off : 65552;
		if (n < 16) {
			r = -EBADMSG;
			break;
		}
		ref_nonce(ct + 8, i, nonce);
		r = ref_open(key, nonce, ct + off, n, p + plen);
		plen += n - 16;
		off += n;
		if (n < 65552)
			break;
	}
	if (r) {
		free(p);
		return r;
	}
	*plain_out = p;
	*plain_len_out = plen;
	return 0;
}

char *tl_tmpdir_new(void)
{
	char *p = strdup("/tmp/kmsfs-test-XXXXXX");

	if (!p || !mkdtemp(p))
		abort();
	return p;
}

/* nftw stops on a nonzero return and hands it back: keep errno here. */
static int rm_errno;

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) == 0)
		return 0;
	rm_errno = errno;
	return 1;
}

int tl_tmpdir_remove(char *path)
{
	int r, e;

	if (!path)
		return 0;
	rm_errno = 0;
	r = nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	e = r == 1 ? rm_errno : errno;
	free(path);
	return r ? -e : 0;
}

static FILE *cap_file;
static int cap_saved = -1;

void tl_capture_begin(void)
{
	fflush(stderr);
	cap_file = tmpfile();
	if (!cap_file)
		abort();
	cap_saved = dup(STDERR_FILENO);
	if (cap_saved < 0 || dup2(fileno(cap_file), STDERR_FILENO) < 0)
		abort();
}

char *tl_capture_end(void)
{
	uint8_t *text;
	size_t len;

	fflush(stderr);
	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	cap_saved = -1;
	if (tl_read_fd(fileno(cap_file), &text, &len))
		abort();
	fclose(cap_file);
	fputs((char *)text, stderr);
	return (char *)text;
}

int tl_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void tl_kfs_init(struct tl_kfs *t)
{
	static const char pass[] = "tl_kfs passphrase";
	char path[512];
	struct stat st;

	umask(0); /* as the daemon runs (fs/ns.h) */
	t->dir = tl_tmpdir_new();
	if (ks_keyring_new(&t->keys) ||
	    ks_keyring_set_passphrase(t->keys, (const uint8_t *)pass,
				      strlen(pass)) ||
	    kfs_new(t->dir, t->keys, layout_find("toplevel"), &t->fs) ||
	    ns_mkdir(t->fs, t->fs->root, "c", 0777, NULL) ||
	    inode_lookup(t->fs, t->fs->root, "c", &st, &t->chain))
		abort();
	snprintf(path, sizeof(path), "%s/c", t->dir);
	t->chainfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->chainfd < 0)
		abort();
}

void tl_kfs_release(struct tl_kfs *t)
{
	close(t->chainfd);
	kfs_free(t->fs);
	ks_keyring_free(t->keys);
	tl_tmpdir_remove(t->dir);
}
