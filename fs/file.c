/*
 * file.c - open-file state: committed version + optional write session.
 *
 * Nonce safety argument: chunk i of a version is sealed exactly once,
 * with nonce(IV, i), when the session's frontier moves past it or at
 * commit; the frontier only moves forward.  A write behind the frontier
 * (or any change once a version is committed) starts a new version with
 * a fresh random IV.  Only a brand-new file is written in place, and its
 * IV is fresh too.  So no (key, nonce) pair ever seals two plaintexts.
 */
#include "file.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/log.h"

#define CHUNK ((uint64_t)CF_CHUNK_SIZE)
#define ROOM_CHECK_MIN (1024 * CHUNK) /* 64 MiB, see check_room */
#define CT_OFF(i) ((off_t)(CF_HEADER_SIZE + (uint64_t)(i)*CF_CHUNK_CT_SIZE))

struct kfile {
	pthread_rwlock_t lock;
	const struct cf_key *key;
	const struct kfile_host *host;
	char *label;
	bool writable;

	/* committed version */
	int fd;
	int version; /* 1, 2; 0: none (empty or not encrypted) */
	int bad;     /* header error, reads fail with it */
	bool empty;  /* the backing file had no bytes at all */
	uint8_t iv[CF_IV_SIZE];
	uint64_t size;	  /* plaintext size */
	uint8_t *v1plain; /* whole plaintext of a v1 file */

	/* write session */
	bool session, inplace, header_done, tail_loaded;
	int wfd;
	char tmpname[64];
	uint8_t wiv[CF_IV_SIZE];
	uint64_t frontier;  /* chunks sealed in wfd */
	uint64_t wsize;	    /* plaintext size of the new version */
	uint64_t old_limit; /* old bytes beyond frontier still valid */
	uint8_t *tail;	    /* chunk `frontier`, tail_len bytes valid */
	size_t tail_len;
	uint8_t *ct; /* header + one sealed chunk */
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

uint64_t kfile_stat_size(uint64_t cipher)
{
	uint64_t plain;

	if (cf_plain_size(cipher, &plain) == 0)
		return plain;
	if (cipher < CF_HEADER_SIZE)
		return 1;
	return (cipher - CF_HEADER_SIZE) / CF_CHUNK_CT_SIZE * CHUNK + 1;
}

static int pread_full(int fd, uint8_t *buf, size_t len, off_t off, size_t *got)
{
	return fdio_read_full(fd, buf, len, off, got) ? -EIO : 0;
}

/* Out of space is worth telling apart: the user can act on it. */
static int pwrite_full(int fd, const uint8_t *buf, size_t len, off_t off)
{
	int r = fdio_write_all(fd, buf, len, off);

	if (r == -ENOSPC || r == -EDQUOT)
		return -ENOSPC;
	return r ? -EIO : 0;
}

/* Read and authenticate chunk idx of a v2 file: the chunk must have
 * exactly the plaintext length the file size implies. */
static int v2_chunk(const struct kfile *kf, int fd, const uint8_t *iv,
		    uint64_t size, uint64_t idx, uint8_t *ct, uint8_t *out)
{
	uint64_t want = idx < size / CHUNK ? CHUNK : size % CHUNK;
	size_t got;
	int r;

	r = pread_full(fd, ct, (size_t)want + CF_TAG_SIZE, CT_OFF(idx), &got);
	if (r) {
		log_err("%s: read error in chunk %llu", kf->label,
			(unsigned long long)idx);
		return r;
	}
	if (got != want + CF_TAG_SIZE)
		r = -EBADMSG;
	else
		r = cf_open_chunk(kf->key, iv, idx, ct, got, out);
	if (r == -EBADMSG)
		log_err(
		    "%s: chunk %llu is damaged or truncated (authentication "
		    "failed)",
		    kf->label, (unsigned long long)idx);
	return r;
}

static int load_v1(struct kfile *kf, uint64_t cipher)
{
	size_t body = (size_t)(cipher - CF_HEADER_SIZE), got;
	uint8_t *ct = malloc(body ? body : 1);
	int r;

	kf->v1plain = malloc(body ? body : 1);
	if (!ct || !kf->v1plain) {
		free(ct);
		return -ENOMEM;
	}
	r = pread_full(kf->fd, ct, body, CF_HEADER_SIZE, &got);
	if (!r && got != body)
		r = -EBADMSG;
	if (!r)
		r = cf_open_v1(kf->key, kf->iv, ct, body, kf->v1plain);
	free(ct);
	if (r == -EBADMSG)
		log_err("%s: v1 file failed authentication", kf->label);
	kf->size = r ? 0 : body - CF_TAG_SIZE;
	return r;
}

/* Learn the committed version from the backing file. */
static int probe(struct kfile *kf)
{
	uint8_t hdr[CF_HEADER_SIZE];
	struct stat st;
	size_t got;
	int r;

	if (fstat(kf->fd, &st) < 0)
		return -errno;
	if (st.st_size == 0) {
		/* New, or left empty by a crash: writable from scratch, but
		 * not readable until a session gives it content. */
		kf->version = 0;
		kf->size = 0;
		kf->bad = -EBADMSG;
		kf->empty = true;
		return 0;
	}
	r = pread_full(kf->fd, hdr, sizeof(hdr), 0, &got);
	if (r)
		return r;
	r = cf_header_parse(hdr, got, &kf->version, kf->iv);
	if (r) {
		kf->bad = -EBADMSG;
		log_err("%s: not an encrypted file (%s); refusing to serve it",
			kf->label,
			r == -EBADMSG ? "no 'encrypt' header" : cf_strerror(r));
		return 0;
	}
	if (kf->version == CF_V1) {
		r = load_v1(kf, (uint64_t)st.st_size);
		if (r == -EBADMSG)
			kf->bad = r;
		return r == -EBADMSG ? 0 : r;
	}
	kf->size = kfile_stat_size((uint64_t)st.st_size);
	return 0;
}

int kfile_open(int fd, bool writable, const struct cf_key *key,
	       const struct kfile_host *host, const char *label,
	       struct kfile **out)
{
	struct kfile *kf = calloc(1, sizeof(*kf));
	int r;

	if (!kf)
		return -ENOMEM;
	kf->label = strdup(label);
	if (!kf->label) {
		free(kf);
		return -ENOMEM;
	}
	pthread_rwlock_init(&kf->lock, NULL);
	kf->fd = fd;
	kf->wfd = -1;
	kf->writable = writable;
	kf->key = key;
	kf->host = host;
	r = probe(kf);
	if (r) {
		kf->fd = -1; /* the caller still owns fd on failure */
		kfile_close(kf);
		return r;
	}
	*out = kf;
	return 0;
}

static void drop_session(struct kfile *kf)
{
	if (kf->session && !kf->inplace && kf->wfd >= 0) {
		close(kf->wfd);
		kf->host->discard(kf->host->ctx, kf->tmpname);
	}
	kf->wfd = -1;
	kf->session = false;
}

void kfile_close(struct kfile *kf)
{
	if (!kf)
		return;
	drop_session(kf);
	if (kf->fd >= 0)
		close(kf->fd);
	if (kf->tail)
		secret_wipe(kf->tail, CF_CHUNK_SIZE);
	if (kf->v1plain)
		secret_wipe(kf->v1plain, kf->size);
	free(kf->tail);
	free(kf->ct);
	free(kf->v1plain);
	free(kf->label);
	pthread_rwlock_destroy(&kf->lock);
	free(kf);
}

bool kfile_writable(struct kfile *kf)
{
	bool w;

	pthread_rwlock_rdlock(&kf->lock);
	w = kf->writable;
	pthread_rwlock_unlock(&kf->lock);
	return w;
}

void kfile_set_writable_fd(struct kfile *kf, int fd)
{
	pthread_rwlock_wrlock(&kf->lock);
	if (kf->writable) {
		close(fd);
	} else {
		close(kf->fd);
		kf->fd = fd;
		kf->writable = true;
	}
	pthread_rwlock_unlock(&kf->lock);
}

uint64_t kfile_size(struct kfile *kf)
{
	uint64_t s;

	pthread_rwlock_rdlock(&kf->lock);
	s = kf->session ? kf->wsize : kf->size;
	pthread_rwlock_unlock(&kf->lock);
	return s;
}

/* Plaintext of chunk idx of the committed version, len bytes. */
static int old_chunk(struct kfile *kf, uint64_t idx, uint8_t *ct, uint8_t *out,
		     size_t *len)
{
	uint64_t start = idx * CHUNK;

	*len = start < kf->size ? (size_t)min_u64(CHUNK, kf->size - start) : 0;
	if (kf->bad)
		return kf->bad;
	if (kf->version == CF_V1) {
		memcpy(out, kf->v1plain + start, *len);
		return 0;
	}
	if (kf->version == 0)
		return 0;
	return v2_chunk(kf, kf->fd, kf->iv, kf->size, idx, ct, out);
}

static int ensure_buffers(struct kfile *kf)
{
	if (!kf->tail)
		kf->tail = malloc(CF_CHUNK_SIZE);
	if (!kf->ct)
		kf->ct = malloc(CF_HEADER_SIZE + CF_CHUNK_CT_SIZE);
	return kf->tail && kf->ct ? 0 : -ENOMEM;
}

/* Logical length of chunk idx in the session. */
static size_t sess_len(const struct kfile *kf, uint64_t idx)
{
	uint64_t start = idx * CHUNK;

	return start < kf->wsize ? (size_t)min_u64(CHUNK, kf->wsize - start)
				 : 0;
}

/* Session content of chunk idx > frontier, or == frontier before the
 * tail is loaded: old bytes up to old_limit, zeros after. */
static int sess_old(struct kfile *kf, uint64_t idx, uint8_t *ct, uint8_t *out,
		    size_t *len)
{
	uint64_t start = idx * CHUNK;
	size_t n_old = 0, got = 0;
	int r = 0;

	*len = sess_len(kf, idx);
	if (start < kf->old_limit)
		n_old = (size_t)min_u64(*len, kf->old_limit - start);
	if (n_old)
		r = old_chunk(kf, idx, ct, out, &got);
	if (r)
		return r;
	if (got < n_old)
		return -EBADMSG;
	memset(out + n_old, 0, *len - n_old);
	return 0;
}

static int load_tail(struct kfile *kf)
{
	size_t len;
	int r;

	if (kf->tail_loaded)
		return 0;
	r = sess_old(kf, kf->frontier, kf->ct, kf->tail, &len);
	if (r)
		return r;
	kf->tail_len = len;
	kf->tail_loaded = true;
	return 0;
}

/* Seal the tail as chunk `frontier` (padded with zeros to its logical
 * length) and write it; the header goes out with chunk 0. */
static int seal_frontier(struct kfile *kf)
{
	size_t len = sess_len(kf, kf->frontier), hdr = 0;
	off_t off = CT_OFF(kf->frontier);
	int r;

	r = load_tail(kf);
	if (r)
		return r;
	if (kf->tail_len < len)
		memset(kf->tail + kf->tail_len, 0, len - kf->tail_len);
	if (!kf->header_done) {
		/* Nothing was written yet, so the frontier is chunk 0. */
		cf_header_build(kf->wiv, kf->ct);
		hdr = CF_HEADER_SIZE;
		off = 0;
	}
	r = cf_seal_chunk(kf->key, kf->wiv, kf->frontier, kf->tail, len,
			  kf->ct + hdr);
	if (!r)
		r = pwrite_full(kf->wfd, kf->ct, hdr + len + CF_TAG_SIZE, off);
	if (r)
		return r;
	kf->header_done = true;
	kf->frontier++;
	kf->tail_loaded = false;
	kf->tail_len = 0;
	return 0;
}

/* See kfile_write: refuse an extension from size `from` to `to` that
 * cannot succeed, before writing gigabytes in vain.  Small extensions
 * are not checked (the writes report a full disk). */
static int check_room(const struct kfile *kf, uint64_t from, uint64_t to)
{
	struct statvfs sv;

	if (to > KFILE_MAX_SIZE)
		return -EFBIG;
	if (to <= from || to - from < ROOM_CHECK_MIN ||
	    fstatvfs(kf->fd, &sv) < 0)
		return 0;
	if (cf_cipher_size(to) - cf_cipher_size(from) >
	    (uint64_t)sv.f_bfree * sv.f_frsize)
		return -ENOSPC;
	return 0;
}

static int sess_begin(struct kfile *kf)
{
	int r;

	if (!kf->writable)
		return -EBADF;
	r = ensure_buffers(kf);
	if (!r)
		r = cf_iv_random(kf->wiv);
	if (r)
		return r;
	kf->inplace = kf->empty; /* only a file with no bytes at all */
	if (kf->inplace) {
		kf->wfd = kf->fd;
	} else {
		r = kf->host->mktemp(kf->host->ctx, &kf->wfd, kf->tmpname,
				     sizeof(kf->tmpname));
		if (r) {
			log_err("%s: cannot create a temporary file for "
				"re-encryption: %s",
				kf->label, strerror(-r));
			return r;
		}
	}
	kf->session = true;
	kf->header_done = false;
	kf->tail_loaded = false;
	kf->tail_len = 0;
	kf->frontier = 0;
	kf->wsize = kf->size;
	kf->old_limit = kf->bad ? 0 : kf->size;
	return 0;
}

int kfile_begin_new(struct kfile *kf)
{
	int r = 0;

	pthread_rwlock_wrlock(&kf->lock);
	if (!kf->session && kf->empty)
		r = sess_begin(kf);
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

/* Copy the finished temporary into the old inode (several hard links:
 * renaming would split them).  Not crash-atomic; documented. */
static int copy_back(struct kfile *kf)
{
	uint64_t total = cf_cipher_size(kf->wsize);
	uint8_t *buf = kf->ct;
	off_t off = 0;
	int r = 0;

	while (!r && (uint64_t)off < total) {
		size_t want = (size_t)min_u64(CF_CHUNK_CT_SIZE, total - off),
		       got;

		r = pread_full(kf->wfd, buf, want, off, &got);
		if (!r && got != want)
			r = -EIO;
		if (!r)
			r = pwrite_full(kf->fd, buf, want, off);
		off += (off_t)want;
	}
	if (!r && (ftruncate(kf->fd, (off_t)total) < 0 || fsync(kf->fd) < 0))
		r = -EIO;
	close(kf->wfd);
	kf->host->discard(kf->host->ctx, kf->tmpname);
	return r;
}

/* Publish the finished new version. */
static int sess_publish(struct kfile *kf, bool sync)
{
	int r = 0;

	if (kf->inplace)
		return sync && fdatasync(kf->wfd) < 0 ? -EIO : 0;
	if (fsync(kf->wfd) < 0)
		return -EIO;
	r = kf->host->replace(kf->host->ctx, kf->tmpname, kf->wfd);
	if (r == -ENOTSUP)
		return copy_back(kf); /* closes and removes the temporary */
	if (r)
		return r;
	close(kf->fd);
	kf->fd = kf->wfd;
	return 0;
}

static int commit_locked(struct kfile *kf, bool sync)
{
	int r = 0;

	if (!kf->session)
		return sync && kf->writable && fdatasync(kf->fd) < 0 ? -EIO : 0;
	while (!r && kf->frontier <= kf->wsize / CHUNK)
		r = seal_frontier(kf);
	if (!r)
		r = sess_publish(kf, sync);
	if (r) {
		log_err("%s: could not write the new version: %s", kf->label,
			strerror(-r));
		drop_session(kf);
		return r;
	}
	if (kf->v1plain) {
		secret_wipe(kf->v1plain, kf->size);
		free(kf->v1plain);
		kf->v1plain = NULL;
	}
	memcpy(kf->iv, kf->wiv, CF_IV_SIZE);
	kf->version = CF_V2;
	kf->size = kf->wsize;
	kf->bad = 0;
	kf->empty = false;
	kf->session = false;
	kf->wfd = -1;
	return 0;
}

int kfile_commit(struct kfile *kf, bool sync)
{
	int r;

	pthread_rwlock_wrlock(&kf->lock);
	r = commit_locked(kf, sync);
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

/* Make sure a session is open whose frontier is at or before chunk idx:
 * otherwise the data there is sealed already and a new version starts. */
static int sess_reach(struct kfile *kf, uint64_t idx)
{
	int r;

	if (kf->session && idx < kf->frontier) {
		r = commit_locked(kf, false);
		if (r)
			return r;
	}
	return kf->session ? 0 : sess_begin(kf);
}

static int write_locked(struct kfile *kf, const uint8_t *buf, size_t len,
			uint64_t off)
{
	uint64_t pos = off;
	int r;

	if (len > KFILE_MAX_SIZE || off > KFILE_MAX_SIZE - len)
		return -EFBIG;
	r = check_room(kf, kf->session ? kf->wsize : kf->size, off + len);
	if (!r)
		r = sess_reach(kf, off / CHUNK);
	if (r)
		return r;
	if (off + len > kf->wsize)
		kf->wsize = off + len; /* bytes in a hole read as zeros */
	while (kf->frontier < off / CHUNK) {
		r = seal_frontier(kf);
		if (r)
			return r;
	}
	while (len) {
		size_t in = (size_t)(pos % CHUNK);
		size_t n = (size_t)min_u64(len, CHUNK - in);

		r = load_tail(kf);
		if (r)
			return r;
		if (kf->tail_len < in)
			memset(kf->tail + kf->tail_len, 0, in - kf->tail_len);
		memcpy(kf->tail + in, buf, n);
		if (kf->tail_len < in + n)
			kf->tail_len = in + n;
		pos += n;
		buf += n;
		len -= n;
		if (len) {
			r = seal_frontier(kf);
			if (r)
				return r;
		}
	}
	return 0;
}

int kfile_write(struct kfile *kf, const uint8_t *buf, size_t len, uint64_t off)
{
	int r;

	if (len == 0)
		return 0;
	pthread_rwlock_wrlock(&kf->lock);
	r = write_locked(kf, buf, len, off);
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

static int truncate_locked(struct kfile *kf, uint64_t size)
{
	int r;

	if (!kf->session && size == kf->size && !kf->bad && kf->version)
		return 0;
	r = check_room(kf, kf->session ? kf->wsize : kf->size, size);
	if (r)
		return r;
	/* Chunks below the frontier that reach past size are sealed. */
	r = kf->session && size < kf->frontier * CHUNK
		? commit_locked(kf, false)
		: 0;
	if (!r && !kf->session)
		r = sess_begin(kf);
	if (r)
		return r;
	if (size < kf->wsize) {
		uint64_t start = kf->frontier * CHUNK;

		if (kf->old_limit > size)
			kf->old_limit = size;
		if (kf->tail_loaded && start + kf->tail_len > size)
			kf->tail_len = (size_t)(size - start);
	}
	kf->wsize = size;
	return 0;
}

int kfile_truncate(struct kfile *kf, uint64_t size)
{
	int r;

	pthread_rwlock_wrlock(&kf->lock);
	r = truncate_locked(kf, size);
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

/* Content of chunk idx as a reader sees it now. */
static int chunk_now(struct kfile *kf, uint64_t idx, uint8_t *ct, uint8_t *out,
		     size_t *len)
{
	if (!kf->session)
		return old_chunk(kf, idx, ct, out, len);
	if (idx < kf->frontier) {
		*len = CF_CHUNK_SIZE;
		return v2_chunk(kf, kf->wfd, kf->wiv, kf->wsize, idx, ct, out);
	}
	if (idx == kf->frontier && kf->tail_loaded) {
		*len = sess_len(kf, idx);
		memcpy(out, kf->tail, kf->tail_len);
		memset(out + kf->tail_len, 0, *len - kf->tail_len);
		return 0;
	}
	return sess_old(kf, idx, ct, out, len);
}

/* A read that reaches the end of a committed v2 file also checks the
 * final chunk when the range did not cover it (size a multiple of 64 KiB:
 * the final chunk is a bare tag), so a file cut at a chunk boundary or
 * with a forged end cannot pass for complete. */
static int check_final(struct kfile *kf, uint8_t *ct, uint8_t *pt)
{
	size_t len;

	if (kf->session || kf->version != CF_V2 || kf->size % CHUNK)
		return 0;
	return old_chunk(kf, kf->size / CHUNK, ct, pt, &len);
}

static int read_locked(struct kfile *kf, uint8_t *buf, size_t len, uint64_t off,
		       size_t *got, uint8_t *ct, uint8_t *pt)
{
	uint64_t size = kf->session ? kf->wsize : kf->size;
	size_t done = 0;
	int r = 0;

	if (!kf->session && kf->bad) {
		if (kf->empty)
			log_err(
			    "%s: empty backing file (an interrupted write?)",
			    kf->label);
		return kf->bad;
	}
	if (off >= size)
		len = 0;
	else if (len > size - off)
		len = (size_t)(size - off);
	while (!r && done < len) {
		uint64_t pos = off + done, idx = pos / CHUNK;
		size_t in = (size_t)(pos % CHUNK), clen, n;
		bool direct = in == 0 && len - done >= CHUNK;
		uint8_t *dst = direct ? buf + done : pt;

		r = chunk_now(kf, idx, ct, dst, &clen);
		if (r)
			break;
		if (clen <= in) {
			r = -EBADMSG; /* file shorter than its size says */
			break;
		}
		n = (size_t)min_u64(len - done, clen - in);
		if (!direct)
			memcpy(buf + done, pt + in, n);
		done += n;
	}
	if (!r && off + len >= size)
		r = check_final(kf, ct, pt);
	*got = done;
	return r;
}

int kfile_read(struct kfile *kf, uint8_t *buf, size_t len, uint64_t off,
	       size_t *got)
{
	uint8_t *ct = malloc(CF_HEADER_SIZE + CF_CHUNK_CT_SIZE);
	uint8_t *pt = malloc(CF_CHUNK_SIZE);
	int r = -ENOMEM;

	*got = 0;
	if (!ct || !pt)
		goto out;
	pthread_rwlock_rdlock(&kf->lock);
	if (kf->session) {
		/* The tail and the temporary belong to the writer. */
		pthread_rwlock_unlock(&kf->lock);
		pthread_rwlock_wrlock(&kf->lock);
	}
	r = read_locked(kf, buf, len, off, got, ct, pt);
	pthread_rwlock_unlock(&kf->lock);
out:
	free(pt); /* file data, not key material */
	free(ct);
	return r;
}
