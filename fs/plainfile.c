/*
 * plainfile.c - plaintext and checksum files, and the checksum mapping.
 *
 * A plaintext file is the backing file itself: no state beyond its fd.
 * A checksum file differs from that only while it is 4 bytes long, and
 * only in those 4 bytes, so every operation on one works on the backing
 * file and fixes up at most 4 bytes under the host's lock.  A write that
 * leaves the file at 4 bytes (CockroachDB's only write: 4 bytes into an
 * empty file) is built in memory and stored mapped with one pwrite.
 */
#include "plainfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../lib/fdio.h"
#include "../lib/log.h"

#define V1_BODY_MAX (256u << 20) /* larger v1 files are not checksummed */

struct pfile {
	pthread_rwlock_t lock; /* fd, writable */
	int fd;
	bool writable;
	const struct pfile_host *host; /* NULL: plaintext */
	char *label;
};

/* --- the basis: digests of X ----------------------------------------- */

struct digests {
	EVP_MD_CTX *p, *s;
};

static int digests_init(struct digests *d)
{
	d->p = EVP_MD_CTX_new();
	d->s = EVP_MD_CTX_new();
	if (!d->p || !d->s || !EVP_DigestInit_ex(d->p, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(d->s, EVP_sha256(), NULL))
		return -ENOMEM;
	return 0;
}

static void digests_final(struct digests *d, struct pf_basis *out)
{
	uint8_t md[EVP_MAX_MD_SIZE];

	EVP_DigestFinal_ex(d->p, md, NULL);
	memcpy(out->p, md, PF_CK_SIZE);
	EVP_DigestFinal_ex(d->s, md, NULL);
	memcpy(out->s, md, PF_CK_SIZE);
	out->on = memcmp(out->p, out->s, PF_CK_SIZE) != 0;
}

static void digests_release(struct digests *d)
{
	EVP_MD_CTX_free(d->p);
	EVP_MD_CTX_free(d->s);
}

/* Hash a v2 file's chunks and their plaintexts.  1: complete and
 * authentic; 0: not (truncated, damaged, another key); -errno. */
static int hash_v2(int fd, const struct cf_key *key, const uint8_t *iv,
		   struct digests *d, uint8_t *ct)
{
	off_t off = CF_HEADER_SIZE;
	size_t got;

	for (uint64_t idx = 0;; idx++) {
		if (fdio_read_full(fd, ct, CF_CHUNK_CT_SIZE, off, &got))
			return -EIO;
		if (got < CF_TAG_SIZE)
			return 0; /* the short final chunk is missing */
		EVP_DigestUpdate(d->s, ct, got);
		if (cf_open_chunk(key, iv, idx, ct, got, ct))
			return 0;
		EVP_DigestUpdate(d->p, ct, got - CF_TAG_SIZE);
		if (got < CF_CHUNK_CT_SIZE)
			return 1;
		off += (off_t)got;
	}
}

static int hash_v1(int fd, const struct cf_key *key, const uint8_t *iv,
		   uint64_t size, struct digests *d)
{
	size_t body = (size_t)(size - CF_HEADER_SIZE), got;
	uint8_t *ct;
	int r = 0;

	if (size < CF_HEADER_SIZE + CF_TAG_SIZE || body > V1_BODY_MAX)
		return 0;
	ct = malloc(body);
	if (!ct)
		return -ENOMEM;
	if (fdio_read_full(fd, ct, body, CF_HEADER_SIZE, &got))
		r = -EIO;
	else if (got == body) {
		EVP_DigestUpdate(d->s, ct, body);
		if (cf_open_v1(key, iv, ct, body, ct) == 0) {
			EVP_DigestUpdate(d->p, ct, body - CF_TAG_SIZE);
			r = 1;
		}
	}
	secret_wipe(ct, body);
	free(ct);
	return r;
}

/* Digests of the encrypted file fd; out->on stays false unless it is a
 * complete authentic ciphertext. */
static int basis_of_fd(int fd, const struct cf_key *key, struct pf_basis *out)
{
	uint8_t hdr[CF_HEADER_SIZE], iv[CF_IV_SIZE], *ct = NULL;
	struct digests d = {NULL, NULL};
	struct stat st;
	int version, r;
	size_t got;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (fdio_read_full(fd, hdr, sizeof(hdr), 0, &got))
		return -EIO;
	if (cf_header_parse(hdr, got, &version, iv))
		return 0; /* not a ciphertext: nothing to map */
	if (!key)
		return -ENOKEY;
	r = digests_init(&d);
	if (!r && version == CF_V2 && !(ct = malloc(CF_CHUNK_CT_SIZE)))
		r = -ENOMEM;
	if (r)
		goto out;
	EVP_DigestUpdate(d.s, hdr, sizeof(hdr));
	if (version == CF_V1)
		r = hash_v1(fd, key, iv, (uint64_t)st.st_size, &d);
	else
		r = hash_v2(fd, key, iv, &d, ct);
	if (r == 1)
		digests_final(&d, out);
out:
	if (ct)
		secret_wipe(ct, CF_CHUNK_CT_SIZE);
	free(ct);
	digests_release(&d);
	return r < 0 ? r : 0;
}

int pfile_basis_at(int dirfd, const char *xname, enum layout_kind xkind,
		   const struct cf_key *key, struct pf_basis *out)
{
	int fd, r;

	memset(out, 0, sizeof(*out));
	if (xkind != LAYOUT_ENCRYPTED)
		return 0; /* stored = plaintext: P = S */
	/* O_NONBLOCK: a FIFO under X's name must not hang us. */
	fd = openat(dirfd, xname,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == EIO || errno == ENOMEM ? -errno : 0;
	r = basis_of_fd(fd, key, out);
	close(fd);
	return r;
}

void pfile_ck_map(const struct pf_basis *b, const uint8_t in[PF_CK_SIZE],
		  uint8_t out[PF_CK_SIZE])
{
	const uint8_t *to = in;

	if (b->on && !memcmp(in, b->p, PF_CK_SIZE))
		to = b->s;
	else if (b->on && !memcmp(in, b->s, PF_CK_SIZE))
		to = b->p;
	memmove(out, to, PF_CK_SIZE);
}

/* --- open files -------------------------------------------------------- */

int pfile_open(int fd, bool writable, const struct pfile_host *host,
	       const char *label, struct pfile **out)
{
	struct pfile *pf = calloc(1, sizeof(*pf));

	if (!pf || !(pf->label = strdup(label))) {
		free(pf);
		return -ENOMEM;
	}
	pthread_rwlock_init(&pf->lock, NULL);
	pf->fd = fd;
	pf->writable = writable;
	pf->host = host;
	*out = pf;
	return 0;
}

void pfile_close(struct pfile *pf)
{
	if (!pf)
		return;
	close(pf->fd);
	pthread_rwlock_destroy(&pf->lock);
	free(pf->label);
	free(pf);
}

bool pfile_writable(struct pfile *pf)
{
	bool w;

	pthread_rwlock_rdlock(&pf->lock);
	w = pf->writable;
	pthread_rwlock_unlock(&pf->lock);
	return w;
}

void pfile_set_writable_fd(struct pfile *pf, int fd)
{
	pthread_rwlock_wrlock(&pf->lock);
	if (pf->writable) {
		close(fd);
	} else {
		close(pf->fd);
		pf->fd = fd;
		pf->writable = true;
	}
	pthread_rwlock_unlock(&pf->lock);
}

static int backing_size(int fd, uint64_t *out)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -EIO;
	*out = (uint64_t)st.st_size;
	return 0;
}

uint64_t pfile_size(struct pfile *pf)
{
	uint64_t n = 0;

	pthread_rwlock_rdlock(&pf->lock);
	(void)backing_size(pf->fd, &n);
	pthread_rwlock_unlock(&pf->lock);
	return n;
}

/* Out of space is worth telling apart: the user can act on it. */
static int io_err(int r)
{
	return r == -ENOSPC || r == -EDQUOT ? -ENOSPC : -EIO;
}

/* The 4 bytes a 4-byte checksum file shows. */
static int ck_shown(struct pfile *pf, uint8_t img[PF_CK_SIZE])
{
	struct pf_basis b;
	size_t got;
	int r;

	if (fdio_read_full(pf->fd, img, PF_CK_SIZE, 0, &got) ||
	    got != PF_CK_SIZE)
		return -EIO;
	r = pf->host->basis(pf->host->ctx, &b);
	if (!r)
		pfile_ck_map(&b, img, img);
	return r;
}

static int ck_read(struct pfile *pf, uint8_t *buf, size_t len, uint64_t off,
		   size_t *got)
{
	uint8_t img[PF_CK_SIZE];
	uint64_t size;
	int r;

	r = backing_size(pf->fd, &size);
	if (!r && size != PF_CK_SIZE)
		return fdio_read_full(pf->fd, buf, len, (off_t)off, got) ? -EIO
									 : 0;
	if (!r)
		r = ck_shown(pf, img);
	if (r)
		return r;
	*got = off < PF_CK_SIZE ? PF_CK_SIZE - (size_t)off : 0;
	if (*got > len)
		*got = len;
	memcpy(buf, img + off, *got);
	return 0;
}

int pfile_read(struct pfile *pf, uint8_t *buf, size_t len, uint64_t off,
	       size_t *got)
{
	int r;

	*got = 0;
	pthread_rwlock_rdlock(&pf->lock);
	if (!pf->host) {
		r = fdio_read_full(pf->fd, buf, len, (off_t)off, got) ? -EIO
								      : 0;
	} else {
		r = pf->host->begin(pf->host->ctx);
		if (!r) {
			r = ck_read(pf, buf, len, off, got);
			pf->host->end(pf->host->ctx);
		}
	}
	pthread_rwlock_unlock(&pf->lock);
	return r;
}

/* A change of a checksum file: buf/len/off for a write, or buf NULL and
 * off the new size for a truncation. */
static int ck_change(struct pfile *pf, const uint8_t *buf, size_t len,
		     uint64_t off)
{
	uint64_t size0, size1;
	uint8_t img[PF_CK_SIZE] = {0};
	struct pf_basis b;
	size_t got;
	int r;

	r = backing_size(pf->fd, &size0);
	if (r)
		return r;
	size1 = !buf ? off : off + len > size0 ? off + len : size0;
	if (size0 == PF_CK_SIZE)
		r = ck_shown(pf, img);
	else if (size1 == PF_CK_SIZE &&
		 fdio_read_full(pf->fd, img, PF_CK_SIZE, 0, &got))
		r = -EIO;
	if (r)
		return r;
	if (size1 == PF_CK_SIZE) {
		/* Build what the file shows afterwards, store it mapped. */
		if (buf)
			memcpy(img + off, buf, len);
		r = pf->host->basis(pf->host->ctx, &b);
		if (r)
			return r;
		pfile_ck_map(&b, img, img);
		r = fdio_write_all(pf->fd, img, PF_CK_SIZE, 0);
		if (!r && size0 > PF_CK_SIZE && ftruncate(pf->fd, PF_CK_SIZE))
			r = -errno;
		return r ? io_err(r) : 0;
	}
	/* Leaving 4 bytes: the file holds what it showed, then changes. */
	if (size0 == PF_CK_SIZE)
		r = fdio_write_all(pf->fd, img, PF_CK_SIZE, 0);
	if (!r && buf)
		r = fdio_write_all(pf->fd, buf, len, (off_t)off);
	else if (!r && ftruncate(pf->fd, (off_t)off) < 0)
		r = -errno;
	return r ? io_err(r) : 0;
}

static int change(struct pfile *pf, const uint8_t *buf, size_t len,
		  uint64_t off)
{
	int r;

	pthread_rwlock_rdlock(&pf->lock);
	if (!pf->writable) {
		r = -EBADF;
	} else if (!pf->host) {
		if (buf)
			r = fdio_write_all(pf->fd, buf, len, (off_t)off);
		else
			r = ftruncate(pf->fd, (off_t)off) < 0 ? -errno : 0;
		r = r ? io_err(r) : 0;
	} else {
		r = pf->host->begin(pf->host->ctx);
		if (!r) {
			r = ck_change(pf, buf, len, off);
			pf->host->end(pf->host->ctx);
		}
	}
	pthread_rwlock_unlock(&pf->lock);
	if (r == -EIO || r == -ENOSPC)
		log_err("%s: write failed: %s", pf->label, strerror(-r));
	return r;
}

int pfile_write(struct pfile *pf, const uint8_t *buf, size_t len, uint64_t off)
{
	return len ? change(pf, buf, len, off) : 0;
}

int pfile_truncate(struct pfile *pf, uint64_t size)
{
	return change(pf, NULL, 0, size);
}

int pfile_commit(struct pfile *pf, bool sync)
{
	int r = 0;

	pthread_rwlock_rdlock(&pf->lock);
	if (sync && pf->writable && fdatasync(pf->fd) < 0)
		r = -EIO;
	pthread_rwlock_unlock(&pf->lock);
	return r;
}
