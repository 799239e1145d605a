/*
 * file.c - open-file state: what the backing file holds (probe), reads,
 * sizes, and the locked entry points.  Write sessions: file_write.c.
 *
 * Nonce safety argument: chunk i of a version is sealed exactly once,
 * with nonce(IV, i), when the session's frontier moves past it or when
 * the file is finished; the frontier only moves forward.  The unfinished
 * last chunk goes to the journal under a fresh random nonce per record,
 * never under the file's IV.  A write behind the frontier, any change of
 * a finished version, and the first write after a failed session start
 * a new version with a fresh random IV.  Only a brand-new file is written
 * in place, and its IV is fresh too.  So no (key, nonce) pair ever seals
 * two plaintexts.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "../lib/scratch.h"
#include "journal.h"

uint64_t kf_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t kf_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
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

uint64_t kfile_stat_size_of(uint64_t cipher, int version)
{
	if (version == CF_V1)
		return cipher >= CF_HEADER_SIZE + CF_TAG_SIZE
			   ? cipher - CF_HEADER_SIZE - CF_TAG_SIZE
			   : 1;
	if (version == 0)
		return kf_max(1, kfile_stat_size(cipher));
	if (version == CF_V2_OPEN) /* its complete chunks, and more */
		return (cipher - CF_HEADER_SIZE) / CF_CHUNK_CT_SIZE * CHUNK + 1;
	return kfile_stat_size(cipher);
}

int kf_pread(int fd, uint8_t *buf, size_t len, off_t off, size_t *got)
{
	return fdio_read_full(fd, buf, len, off, got) ? -EIO : 0;
}

/* Out of space is worth telling apart: the user can act on it. */
int kf_pwrite(int fd, const uint8_t *buf, size_t len, off_t off)
{
	int r = fdio_write_all(fd, buf, len, off);

	if (r == -ENOSPC || r == -EDQUOT)
		return -ENOSPC;
	return r ? -EIO : 0;
}

/* Read and authenticate chunk idx of a v2 layout: the chunk must have
 * exactly the plaintext length the size implies.  No log. */
static int chunk_quiet(const struct kfile *kf, int fd, const uint8_t *iv,
		       uint64_t size, uint64_t idx, uint8_t *ct, uint8_t *out)
{
	uint64_t want = idx < size / CHUNK ? CHUNK : size % CHUNK;
	size_t got;
	int r;

	r = kf_pread(fd, ct, (size_t)want + CF_TAG_SIZE, CT_OFF(idx), &got);
	if (r)
		return r;
	if (got != want + CF_TAG_SIZE)
		return -EBADMSG;
	return cf_open_chunk(kf->key, iv, idx, ct, got, out);
}

int kf_v2_chunk(const struct kfile *kf, int fd, const uint8_t *iv,
		uint64_t size, uint64_t idx, uint8_t *ct, uint8_t *out)
{
	int r = chunk_quiet(kf, fd, iv, size, idx, ct, out);

	if (r == -EIO)
		log_err("%s: read error in chunk %llu", kf->label,
			(unsigned long long)idx);
	if (r == -EBADMSG)
		log_err(
		    "%s: chunk %llu is damaged or truncated (authentication "
		    "failed)",
		    kf->label, (unsigned long long)idx);
	return r;
}

/* A v1 file: refused unless allowed; then authenticated whole, once. */
static int load_v1(struct kfile *kf, uint64_t cipher)
{
	int r;

	if (!(kf->flags & KFILE_ALLOW_V1)) {
		log_err("%s: a v1 file (CockroachDB 21.1 or older, one GCM "
			"message): refused; give --allow-v1 to read it",
			kf->label);
		return -EBADMSG;
	}
	r = cf_v1_open(kf->key, kf->fd, cipher, kf->iv, &kf->v1);
	if (r == -EBADMSG || r == -EFBIG)
		log_err("%s: v1 file %s", kf->label,
			r == -EFBIG ? "too large to authenticate (over 64 GiB)"
				    : "failed authentication");
	if (!r)
		kf->size = cf_v1_size(kf->v1);
	return r == -EFBIG ? -EBADMSG : r;
}

void kf_forget_version(struct kfile *kf)
{
	kfc_drop(&kf->cache);
	cf_v1_free(kf->v1);
	kf->v1 = NULL;
	if (kf->ctail) {
		secret_wipe(kf->ctail, CF_CHUNK_SIZE);
		free(kf->ctail);
		kf->ctail = NULL;
	}
	kf->version = 0;
	kf->bad = 0;
	kf->empty = false;
	kf->reborn = false;
	kf->journal = false;
	kf->size = 0;
	kf->shown = 1;
	kf->nfull = 0;
}

static int open_journal(struct kfile *kf, const uint8_t iv[CF_IV_SIZE],
			int flags)
{
	char name[JNL_NAME_SIZE];
	int dfd, fd;

	if (!kf->host || !kf->host->dirfd)
		return -ENOENT;
	dfd = kf->host->dirfd(kf->host->ctx);
	if (dfd < 0)
		return dfd;
	jnl_name(iv, name);
	fd = openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		fd = -errno;
	close(dfd);
	return fd;
}

void kf_journal_remove(struct kfile *kf, const uint8_t iv[CF_IV_SIZE])
{
	char name[JNL_NAME_SIZE];
	int dfd;

	if (!kf->host || !kf->host->dirfd)
		return;
	dfd = kf->host->dirfd(kf->host->ctx);
	if (dfd < 0)
		return;
	jnl_name(iv, name);
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		log_warn("%s: could not remove its journal: %s", kf->label,
			 strerror(errno));
	close(dfd);
}

/* The record in the journal of an unfinished file: chunk nfull's bytes.
 * A complete chunk written after the record supersedes it (the end is
 * then unknown); chunks after a record that are not complete are cut. */
static void load_journal(struct kfile *kf)
{
	uint8_t *data = malloc(CF_CHUNK_SIZE), *buf = malloc(JNL_BUF_SIZE);
	uint64_t k, seq;
	size_t len;
	int fd, r = -ENOMEM;

	fd = open_journal(kf, kf->iv, O_RDONLY);
	if (fd >= 0)
		kf->journal = true;
	if (fd >= 0 && data && buf)
		r = jnl_read(fd, kf->key, kf->iv, &k, &seq, data, &len, buf);
	if (fd >= 0)
		close(fd);
	if (!r && k < kf->nfull &&
	    chunk_quiet(kf, kf->fd, kf->iv, (k + 1) * CHUNK, k, buf, buf) != 0)
		kf->nfull = k;
	if (!r && k == kf->nfull) {
		kf->ctail = data;
		kf->size = k * CHUNK + len;
		data = NULL;
	} else if (fd >= 0) {
		log_err("%s: was being written when kmsfs stopped; its "
			"journal %s, so it ends in an error after %llu bytes",
			kf->label,
			r ? "is unreadable" : "is older than its data",
			(unsigned long long)(kf->nfull * CHUNK));
	}
	free(buf);
	if (data)
		secret_wipe(data, CF_CHUNK_SIZE);
	free(data);
}

/* A CF_V2_OPEN file: complete chunks, then the journal's bytes (or an
 * unknown end, one byte past them, so that a reader gets EIO there). */
static int probe_open(struct kfile *kf, uint64_t cipher)
{
	uint8_t *ct = malloc(CF_CHUNK_CT_SIZE);
	uint64_t plain;
	int r;

	if (!ct)
		return -ENOMEM;
	kf->version = CF_V2_OPEN;
	kf->nfull = (cipher - CF_HEADER_SIZE) / CF_CHUNK_CT_SIZE;
	kf->size = kf->nfull * CHUNK + 1;
	/* Finished but for the version byte (stopped between the two). */
	if (cf_plain_size(cipher, &plain) == 0) {
		r = chunk_quiet(kf, kf->fd, kf->iv, plain, plain / CHUNK, ct,
				ct);
		if (r == 0) {
			kf->version = CF_V2;
			kf->size = plain;
		}
	}
	free(ct);
	if (kf->version == CF_V2_OPEN)
		load_journal(kf);
	return 0;
}

int kf_probe(struct kfile *kf)
{
	uint8_t hdr[CF_HEADER_SIZE];
	struct stat st;
	size_t got;
	int r;

	kf_forget_version(kf);
	if (fstat(kf->fd, &st) < 0)
		return -errno;
	if (st.st_size == 0) {
		/* New, or left empty by a crash: writable from scratch, but
		 * not readable until a session gives it content. */
		kf->bad = -EBADMSG;
		kf->empty = true;
		return 0;
	}
	r = kf_pread(kf->fd, hdr, sizeof(hdr), 0, &got);
	if (r)
		return r;
	kf->shown = kf_max(1, kfile_stat_size((uint64_t)st.st_size));
	r = cf_header_parse(hdr, got, &kf->version, kf->iv);
	if (r) {
		kf->version = 0;
		kf->bad = -EBADMSG;
		log_err("%s: not an encrypted file (%s); refusing to serve it",
			kf->label,
			r == -EBADMSG ? "no 'encrypt' header" : cf_strerror(r));
		return 0;
	}
	if (!kf->key)
		return -ENOKEY; /* ciphertext, and no key to read it */
	if (kf->version == CF_V1) {
		r = load_v1(kf, (uint64_t)st.st_size);
		if (r == -EBADMSG)
			kf->bad = r;
		return r == -EBADMSG ? 0 : r;
	}
	if (kf->version == CF_V2_OPEN)
		return probe_open(kf, (uint64_t)st.st_size);
	kf->size = kfile_stat_size((uint64_t)st.st_size);
	return 0;
}

int kfile_open(int fd, unsigned flags, const struct cf_key *key,
	       const struct kfile_host *host, const char *label,
	       struct kfile **out)
{
	bool writable = flags & KFILE_WRITABLE;
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
	kfc_init(&kf->cache);
	kf->fd = fd;
	kf->wfd = -1;
	kf->jfd = -1;
	kf->jdirfd = -1;
	kf->writable = writable;
	kf->flags = flags;
	kf->times[0].tv_nsec = kf->times[1].tv_nsec = UTIME_OMIT;
	kf->key = key;
	kf->host = host;
	r = kf_probe(kf);
	if (!r && kf->bad && !writable && !(kf->empty && (flags & KFILE_NEW))) {
		/* Nothing to read, nothing to replace it with: EIO now. */
		if (kf->empty)
			log_err("%s: empty backing file (an interrupted "
				"write?); refusing to serve it",
				kf->label);
		r = kf->bad;
	}
	if (r) {
		kf->fd = -1; /* the caller still owns fd on failure */
		kfile_close(kf);
		return r;
	}
	*out = kf;
	return 0;
}

void kfile_close(struct kfile *kf)
{
	if (!kf)
		return;
	kf_drop_session(kf);
	if (kf->fd >= 0)
		close(kf->fd);
	kf_forget_version(kf);
	if (kf->tail)
		secret_wipe(kf->tail, CF_CHUNK_SIZE);
	free(kf->tail);
	free(kf->ct);
	free(kf->jbuf);
	free(kf->label);
	kfc_release(&kf->cache);
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
	kfc_drop(&kf->cache); /* see file_cache.c */
	if (kf->writable) {
		close(fd);
	} else {
		close(kf->fd);
		kf->fd = fd;
		kf->writable = true;
	}
	pthread_rwlock_unlock(&kf->lock);
}

bool kfile_unfinished(struct kfile *kf)
{
	bool u;

	pthread_rwlock_rdlock(&kf->lock);
	u = !kf->session && kf->version == CF_V2_OPEN;
	pthread_rwlock_unlock(&kf->lock);
	return u;
}

uint64_t kfile_size(struct kfile *kf)
{
	uint64_t s;

	pthread_rwlock_rdlock(&kf->lock);
	s = kf->session ? kf->wsize : kf->bad ? kf->shown : kf->size;
	pthread_rwlock_unlock(&kf->lock);
	return s;
}

int kf_old_chunk(struct kfile *kf, uint64_t idx, uint8_t *ct, uint8_t *out,
		 size_t *len)
{
	uint64_t start = idx * CHUNK;

	*len = start < kf->size ? (size_t)kf_min(CHUNK, kf->size - start) : 0;
	if (kf->bad)
		return kf->bad;
	switch (kf->version) {
	case CF_V1:
		return cf_v1_read(kf->key, kf->v1, kf->fd, idx, ct, out, len);
	case CF_V2:
		return kf_v2_chunk(kf, kf->fd, kf->iv, kf->size, idx, ct, out);
	case CF_V2_OPEN:
		if (idx < kf->nfull)
			return kf_v2_chunk(kf, kf->fd, kf->iv, kf->size, idx,
					   ct, out);
		if (kf->ctail && idx == kf->nfull) {
			memcpy(out, kf->ctail, *len);
			return 0;
		}
		if (*len)
			log_err("%s: ends after %llu bytes: it was being "
				"written when kmsfs stopped",
				kf->label,
				(unsigned long long)(kf->nfull * CHUNK));
		return *len ? -EBADMSG : 0;
	default:
		return 0;
	}
}

/* Logical length of chunk idx in the session. */
static size_t sess_len(const struct kfile *kf, uint64_t idx)
{
	uint64_t start = idx * CHUNK;

	return start < kf->wsize ? (size_t)kf_min(CHUNK, kf->wsize - start) : 0;
}

/* Session content of chunk idx beyond what is sealed or held: old bytes
 * up to old_limit, zeros after. */
static int sess_old_view(struct kfile *kf, uint64_t idx, uint8_t *ct,
			 uint8_t *out, size_t *len)
{
	uint64_t start = idx * CHUNK;
	size_t n_old = 0, got = 0;
	int r = 0;

	*len = sess_len(kf, idx);
	if (start < kf->old_limit)
		n_old = (size_t)kf_min(*len, kf->old_limit - start);
	if (n_old)
		r = kf_old_chunk(kf, idx, ct, out, &got);
	if (r)
		return r;
	if (got < n_old)
		return -EBADMSG;
	memset(out + n_old, 0, *len - n_old);
	return 0;
}

/* Content of chunk idx as a reader sees it now. */
static int chunk_now(struct kfile *kf, uint64_t idx, uint8_t *ct, uint8_t *out,
		     size_t *len)
{
	if (!kf->session)
		return kf_old_chunk(kf, idx, ct, out, len);
	if (idx < kf->frontier) {
		*len = CF_CHUNK_SIZE;
		return kf_v2_chunk(kf, kf->wfd, kf->wiv, kf->wsize, idx, ct,
				   out);
	}
	if (idx == kf->frontier && kf->tail_loaded) {
		*len = sess_len(kf, idx);
		memcpy(out, kf->tail, kf->tail_len);
		memset(out + kf->tail_len, 0, *len - kf->tail_len);
		return 0;
	}
	return sess_old_view(kf, idx, ct, out, len);
}

/* A read that reaches the end of a finished v2 file also checks the
 * final chunk when the range did not cover it (size a multiple of 64 KiB:
 * the final chunk is a bare tag), so a file cut at a chunk boundary or
 * with a forged end cannot pass for complete. */
static int check_final(struct kfile *kf, uint8_t *ct, uint8_t *pt,
		       struct kfile_chunk *fresh)
{
	size_t len;

	if (kf->session || kf->version != CF_V2 || kf->size % CHUNK)
		return 0;
	fresh->len = 0; /* pt is the final chunk's now */
	return kf_old_chunk(kf, kf->size / CHUNK, ct, pt, &len);
}

/* A read of a finished v2 file over chunks first..last (two or more):
 * one pread for all their ciphertext (ct: room for it), each chunk opened
 * straight into buf when the read covers it whole, else through pt (and
 * the chunk cache).  Any failure returns nonzero with nothing logged:
 * the caller then reads chunk by chunk, which names the damaged chunk. */
static int read_span(struct kfile *kf, uint8_t *buf, size_t len, uint64_t off,
		     uint8_t *ct, uint8_t *pt, struct kfile_chunk *fresh)
{
	uint64_t first = off / CHUNK, last = (off + len - 1) / CHUNK;
	uint64_t end = kf_min(kf->size, (last + 1) * CHUNK);
	/* Whole chunks up to last, then last's bytes and its tag (a bare
	 * final tag past last is check_final's). */
	size_t ctlen = (size_t)(CT_OFF(last) - CT_OFF(first)) +
		       (size_t)(end - last * CHUNK) + CF_TAG_SIZE;
	size_t got, done = 0;
	int r;

	r = kf_pread(kf->fd, ct, ctlen, CT_OFF(first), &got);
	if (r || got != ctlen)
		return -EIO;
	for (uint64_t idx = first; idx <= last; idx++) {
		size_t clen = (size_t)kf_min(CHUNK, kf->size - idx * CHUNK);
		size_t in = idx == first ? (size_t)(off % CHUNK) : 0;
		size_t n = (size_t)kf_min(len - done, clen - in);
		uint8_t *c = ct + (size_t)(CT_OFF(idx) - CT_OFF(first));

		if (in == 0 && n == clen) {
			r = cf_open_chunk(kf->key, kf->iv, idx, c,
					  clen + CF_TAG_SIZE, buf + done);
		} else {
			r = cf_open_chunk(kf->key, kf->iv, idx, c,
					  clen + CF_TAG_SIZE, pt);
			if (!r) {
				kfc_put(&kf->cache, idx, pt, clen);
				memcpy(buf + done, pt + in, n);
				*fresh =
				    (struct kfile_chunk){idx * CHUNK, pt, clen};
			}
		}
		if (r)
			return r;
		done += n;
	}
	return 0;
}

static int read_locked(struct kfile *kf, uint8_t *buf, size_t len, uint64_t off,
		       size_t *got, uint8_t *ct, uint8_t *pt,
		       struct kfile_chunk *fresh)
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
	if (len && !kf->session && kf->version == CF_V2 &&
	    (off + len - 1) / CHUNK > off / CHUNK &&
	    read_span(kf, buf, len, off, ct, pt, fresh) == 0)
		done = len;
	while (!r && done < len) {
		uint64_t pos = off + done, idx = pos / CHUNK;
		size_t in = (size_t)(pos % CHUNK), clen, n;
		bool direct = in == 0 && len - done >= CHUNK;
		bool cached = !direct && !kf->session;
		uint8_t *dst = direct ? buf + done : pt;

		if (cached && kfc_get(&kf->cache, idx, in, buf + done,
				      len - done, &clen)) {
			dst = NULL; /* copied already */
		} else {
			r = chunk_now(kf, idx, ct, dst, &clen);
			if (r)
				break;
			if (cached) {
				kfc_put(&kf->cache, idx, pt, clen);
				*fresh =
				    (struct kfile_chunk){idx * CHUNK, pt, clen};
			}
		}
		if (clen <= in) {
			r = -EBADMSG; /* file shorter than its size says */
			break;
		}
		n = (size_t)kf_min(len - done, clen - in);
		if (dst == pt)
			memcpy(buf + done, pt + in, n);
		done += n;
	}
	if (!r && off + len >= size)
		r = check_final(kf, ct, pt, fresh);
	*got = done;
	return r;
}

int kfile_read(struct kfile *kf, uint8_t *buf, size_t len, uint64_t off,
	       size_t *got, struct kfile_chunk *fresh)
{
	/* Room for the ciphertext of every chunk the read touches. */
	size_t span = len / CHUNK + 2;
	uint8_t *ct =
	    scratch_get(SCRATCH_CT, CF_HEADER_SIZE + span * CF_CHUNK_CT_SIZE);
	uint8_t *pt = scratch_get(SCRATCH_PT, CF_CHUNK_SIZE);
	struct kfile_chunk none;
	int r;

	*got = 0;
	if (!fresh)
		fresh = &none;
	fresh->len = 0;
	if (!ct || !pt)
		return -ENOMEM;
	/* A read changes nothing (chunk_now only reads the session's tail,
	 * temporary and old version; the chunk cache has its own lock), so
	 * readers share the lock also while a write session is open: only
	 * writers, which change the session, exclude them. */
	pthread_rwlock_rdlock(&kf->lock);
	r = read_locked(kf, buf, len, off, got, ct, pt, fresh);
	pthread_rwlock_unlock(&kf->lock);
	if (r)
		fresh->len = 0;
	return r;
}

/* --- locked entry points to write sessions (file_write.c) ------------- */

int kfile_begin_new(struct kfile *kf)
{
	int r = 0;

	pthread_rwlock_wrlock(&kf->lock);
	kfc_drop(&kf->cache); /* see file_cache.c */
	if (!kf->session && kf->empty)
		r = kf_begin(kf);
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

void kfile_set_times(struct kfile *kf, const struct timespec tv[2])
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_rwlock_wrlock(&kf->lock);
	for (int i = 0; i < 2; i++) {
		if (tv[i].tv_nsec != UTIME_OMIT)
			kf->times[i] = tv[i].tv_nsec == UTIME_NOW ? now : tv[i];
	}
	kf->stamped = false;
	pthread_rwlock_unlock(&kf->lock);
}

/* The user's times again, after kmsfs wrote to the backing file: once
 * (a flush and the release after it commit twice).  kf->stamped is
 * cleared by whatever may write it: a write, a truncation, a commit or
 * sync with a session open, kf_begin. */
static void keep_times(struct kfile *kf)
{
	if (kf->stamped || (kf->times[0].tv_nsec == UTIME_OMIT &&
			    kf->times[1].tv_nsec == UTIME_OMIT))
		return;
	if (futimens(kf->fd, kf->times) < 0)
		log_warn("%s: could not keep the times set on it: %s",
			 kf->label, strerror(errno));
	else
		kf->stamped = true;
}

int kfile_write(struct kfile *kf, const uint8_t *buf, size_t len, uint64_t off)
{
	int r;

	if (len == 0)
		return 0;
	pthread_rwlock_wrlock(&kf->lock);
	kfc_drop(&kf->cache); /* see file_cache.c */
	r = kf_write(kf, buf, len, off);
	kf->times[1].tv_nsec = UTIME_OMIT; /* a write changes the mtime */
	kf->stamped = false;
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

int kfile_truncate(struct kfile *kf, uint64_t size)
{
	int r;

	pthread_rwlock_wrlock(&kf->lock);
	kfc_drop(&kf->cache); /* see file_cache.c */
	r = kf_truncate(kf, size);
	kf->times[1].tv_nsec = UTIME_OMIT;
	kf->stamped = false;
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

/* r, else the error of a session that failed since the last report. */
static int report(struct kfile *kf, int r)
{
	if (kf->werr && !r)
		r = kf->werr;
	kf->werr = 0;
	return r;
}

int kfile_sync(struct kfile *kf, bool durable)
{
	int r;

	pthread_rwlock_wrlock(&kf->lock);
	kfc_drop(&kf->cache); /* see file_cache.c */
	kf->stamped = kf->stamped && !kf->session;
	r = report(kf, kf_checkpoint(kf, durable));
	keep_times(kf);
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

int kfile_commit(struct kfile *kf)
{
	int r;

	pthread_rwlock_wrlock(&kf->lock);
	kfc_drop(&kf->cache); /* see file_cache.c */
	kf->stamped = kf->stamped && !kf->session;
	r = report(kf, kf_finish(kf));
	kf->closed = kf->closed || (!kf->session && kf->size > 0);
	keep_times(kf);
	pthread_rwlock_unlock(&kf->lock);
	return r;
}

bool kfile_closers(struct kfile *kf)
{
	bool c;

	/* A session open since such a commit: written (or truncated)
	 * after it. */
	pthread_rwlock_rdlock(&kf->lock);
	c = kf->closed && kf->session;
	pthread_rwlock_unlock(&kf->lock);
	return c;
}
