/*
 * file_write.c - write sessions of struct kfile: chunks sealed in order,
 * checkpoints of the unfinished last chunk into the journal (flush,
 * fsync), finishing a version (last close), rewrites through a temporary,
 * and the one way a failed session ends.
 *
 * A session writes version wiv into wfd: the backing file itself for a
 * brand-new file (in place), else a temporary beside it.  Its header
 * carries CF_V2_OPEN until the final chunk is written, then CF_V2.  A
 * checkpoint seals every complete chunk, keeps chunk `frontier` in the
 * journal, and (for a temporary) renames the temporary over the file:
 * from then on the session goes on in place, so appending after an fsync
 * costs what it appends.  Finishing seals the final chunk under wiv,
 * writes CF_V2 and removes the journal.
 */
#include "file_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/scratch.h"
#include "journal.h"

static int sync_fd(int fd)
{
	return fdatasync(fd) < 0 ? -EIO : 0;
}

static int ensure_buffers(struct kfile *kf)
{
	if (!kf->tail)
		kf->tail = malloc(CF_CHUNK_SIZE);
	if (!kf->ct)
		kf->ct = malloc(CF_HEADER_SIZE + CF_CHUNK_CT_SIZE);
	if (!kf->jbuf)
		kf->jbuf = malloc(JNL_BUF_SIZE);
	return kf->tail && kf->ct && kf->jbuf ? 0 : -ENOMEM;
}

/* Logical length of chunk idx in the session. */
static size_t sess_len(const struct kfile *kf, uint64_t idx)
{
	uint64_t start = idx * CHUNK;

	return start < kf->wsize ? (size_t)kf_min(CHUNK, kf->wsize - start) : 0;
}

/* Chunk `frontier` of the session into the tail: old bytes up to
 * old_limit, zeros after. */
static int load_tail(struct kfile *kf)
{
	uint64_t start = kf->frontier * CHUNK;
	size_t len = sess_len(kf, kf->frontier), n_old = 0, got = 0;
	int r = 0;

	if (kf->tail_loaded)
		return 0;
	if (start < kf->old_limit)
		n_old = (size_t)kf_min(len, kf->old_limit - start);
	if (n_old)
		r = kf_old_chunk(kf, kf->frontier, kf->ct, kf->tail, &got);
	if (r)
		return r;
	if (got < n_old)
		return -EBADMSG;
	memset(kf->tail + n_old, 0, len - n_old);
	kf->tail_len = len;
	kf->tail_loaded = true;
	return 0;
}

static int write_header(struct kfile *kf, int version)
{
	uint8_t hdr[CF_HEADER_SIZE];
	int r;

	cf_header_build(kf->wiv, hdr);
	hdr[CF_VERSION_OFFSET] = (uint8_t)version;
	r = kf_pwrite(kf->wfd, hdr, sizeof(hdr), 0);
	if (!r) {
		kf->hdr = version;
		kf->wsynced = false;
	}
	return r;
}

/* k chunks from the frontier on are written: the frontier moves past
 * them, and the tail (if it held the old frontier) is free again. */
static void advance(struct kfile *kf, uint64_t k)
{
	kf->frontier += k;
	kf->tail_loaded = false;
	kf->tail_len = 0;
	kf->wsynced = false;
	kf->jdirty = true;
}

/* Seal the tail as chunk `frontier` (padded with zeros to its logical
 * length) and write it; the header goes out with chunk 0: CF_V2 when
 * this is the final chunk, else CF_V2_OPEN. */
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
	if (!kf->hdr) {
		/* Nothing was written yet, so the frontier is chunk 0. */
		cf_header_build(kf->wiv, kf->ct);
		if (len == CF_CHUNK_SIZE)
			kf->ct[CF_VERSION_OFFSET] = CF_V2_OPEN;
		hdr = CF_HEADER_SIZE;
		off = 0;
	}
	r = cf_seal_chunk(kf->key, kf->wiv, kf->frontier, kf->tail, len,
			  kf->ct + hdr);
	if (!r)
		r = kf_pwrite(kf->wfd, kf->ct, hdr + len + CF_TAG_SIZE, off);
	if (r)
		return r;
	if (hdr)
		kf->hdr = kf->ct[CF_VERSION_OFFSET];
	advance(kf, 1);
	return 0;
}

/* Seal k whole chunks of buf as chunks frontier.. (the session holds
 * more after them, so none is the final chunk) straight from buf, and
 * write them with one pwrite; the tail is not used.  A failed write
 * leaves frontier where it was: the session then fails, and nothing
 * sealed here is kept or sealed again under this IV. */
static int seal_run(struct kfile *kf, const uint8_t *buf, size_t k)
{
	uint8_t *out =
	    scratch_get(SCRATCH_CT, CF_HEADER_SIZE + k * CF_CHUNK_CT_SIZE);
	off_t off = CT_OFF(kf->frontier);
	size_t n = 0;
	int r = 0;

	if (!out)
		return -ENOMEM;
	if (!kf->hdr) {
		/* Nothing was written yet, so the frontier is chunk 0. */
		cf_header_build(kf->wiv, out);
		out[CF_VERSION_OFFSET] = CF_V2_OPEN;
		n = CF_HEADER_SIZE;
		off = 0;
	}
	for (size_t i = 0; !r && i < k; i++, n += CF_CHUNK_CT_SIZE)
		r = cf_seal_chunk(kf->key, kf->wiv, kf->frontier + i,
				  buf + i * CF_CHUNK_SIZE, CF_CHUNK_SIZE,
				  out + n);
	if (!r)
		r = kf_pwrite(kf->wfd, out, n, off);
	if (r)
		return r;
	if (!kf->hdr)
		kf->hdr = CF_V2_OPEN;
	advance(kf, k);
	return 0;
}

int kf_begin(struct kfile *kf)
{
	int r;

	if (!kf->writable)
		return -EBADF;
	if (kf->version == CF_V1) {
		log_err("%s: a v1 file is only read, never written", kf->label);
		return -EROFS;
	}
	r = ensure_buffers(kf);
	if (!r)
		r = cf_iv_random(kf->wiv);
	if (r)
		return r;
	kf->stamped = false; /* every write of the backing file follows */
	/* In place: only a file with no bytes at all, or one a close made
	 * an empty file since it had none (kf->reborn): the shell's
	 * `cmd >file` closes the created fd once before the first write.
	 * Emptied again, it is where a crash after its create left it. */
	kf->inplace = kf->empty || (kf->reborn && ftruncate(kf->fd, 0) == 0);
	kf->reborn = false;
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
	kf->hdr = 0;
	kf->tail_loaded = false;
	kf->tail_len = 0;
	kf->frontier = 0;
	kf->wsize = kf->size;
	kf->old_limit = kf->bad ? 0 : kf->size;
	kf->wsynced = true;
	kf->wrenamed = false;
	kf->jdirty = true;
	kf->jdurable = false;
	kf->jseq = 0;
	return 0;
}

/* Close (and, unless keep, remove) the session's journal. */
static void journal_close(struct kfile *kf, bool keep)
{
	char name[JNL_NAME_SIZE];

	if (kf->jfd < 0)
		return;
	close(kf->jfd);
	if (!keep) {
		jnl_name(kf->wiv, name);
		if (unlinkat(kf->jdirfd, name, 0) < 0)
			log_warn("%s: could not remove its journal: %s",
				 kf->label, strerror(errno));
	}
	close(kf->jdirfd);
	kf->jfd = kf->jdirfd = -1;
}

/* Close and remove a rewrite's temporary (the only owner of wfd). */
static void drop_temp(struct kfile *kf)
{
	if (kf->wfd >= 0 && kf->wfd != kf->fd) {
		close(kf->wfd);
		kf->host->discard(kf->host->ctx, kf->tmpname);
	}
	kf->wfd = -1;
}

static void end_session(struct kfile *kf)
{
	kf->session = false;
	kf->wfd = -1;
	kf->tail_loaded = false;
	kf->tail_len = 0;
}

void kf_drop_session(struct kfile *kf)
{
	if (!kf->session)
		return;
	if (!kf->inplace)
		drop_temp(kf);
	journal_close(kf, kf->inplace);
	end_session(kf);
}

/* --- the journal --------------------------------------------------------- */

static int journal_open(struct kfile *kf)
{
	char name[JNL_NAME_SIZE];
	int dfd, fd, r;

	if (kf->jfd >= 0)
		return 0;
	dfd = kf->host->dirfd ? kf->host->dirfd(kf->host->ctx) : -ENOENT;
	if (dfd < 0)
		return dfd;
	jnl_name(kf->wiv, name);
	fd = openat(dfd, name,
		    O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = errno == ENOSPC || errno == EDQUOT ? -ENOSPC : -EIO;
		close(dfd);
		return r;
	}
	kf->jfd = fd;
	kf->jdirfd = dfd;
	kf->jnew = true;
	return 0;
}

static int journal_sync(struct kfile *kf)
{
	if (kf->jfd < 0 || kf->jdurable)
		return 0;
	if (sync_fd(kf->jfd) || (kf->jnew && fsync(kf->jdirfd) < 0))
		return -EIO;
	kf->jnew = false;
	kf->jdurable = true;
	return 0;
}

/* Record chunk `frontier` (the loaded tail, len bytes of it) in the
 * journal; with durable, sync it and its name.  A file with no name
 * known (unlinked) has nothing to recover it by: no journal. */
static int journal_put(struct kfile *kf, size_t len, bool durable)
{
	int r = journal_open(kf);

	if (r == -ENOENT)
		return 0;
	if (!r)
		r = jnl_write(kf->jfd, kf->key, kf->wiv, kf->frontier, kf->jseq,
			      kf->tail, len, kf->jbuf);
	if (r)
		return r;
	kf->jseq++;
	kf->jk = kf->frontier;
	kf->jdirty = false;
	kf->jdurable = false;
	return durable ? journal_sync(kf) : 0;
}

/* --- publishing ---------------------------------------------------------- */

/* Room for total bytes in the old inode before anything in it changes,
 * so that a full disk fails here with the old version intact. */
static int reserve(int fd, uint64_t total)
{
	static const uint8_t zeros[4096];
	struct stat st;
	off_t off;
	int r = 0;

	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)total) == 0)
		return 0;
	if (errno == ENOSPC || errno == EDQUOT)
		return -ENOSPC;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -EIO;
	/* No fallocate here: zeros past the old end, taken back on error. */
	if (fstat(fd, &st) < 0)
		return -EIO;
	for (off = st.st_size; !r && (uint64_t)off < total;
	     off += (off_t)sizeof(zeros))
		r = kf_pwrite(fd, zeros,
			      (size_t)kf_min(sizeof(zeros), total - off), off);
	if (r)
		(void)!ftruncate(fd, st.st_size);
	return r;
}

static int copy_once(struct kfile *kf, uint64_t total)
{
	uint8_t *buf = kf->ct;
	off_t off = 0;
	int r = 0;

	while (!r && (uint64_t)off < total) {
		size_t want = (size_t)kf_min(CF_CHUNK_CT_SIZE, total - off),
		       got;

		r = kf_pread(kf->wfd, buf, want, off, &got);
		if (!r && got != want)
			r = -EIO;
		if (!r)
			r = kf_pwrite(kf->fd, buf, want, off);
		off += (off_t)want;
	}
	if (!r && ftruncate(kf->fd, (off_t)total) < 0)
		r = -EIO;
	if (!r && fsync(kf->fd) < 0)
		r = -EIO;
	return r;
}

/* Copy the temporary (total bytes) into the old inode (several hard
 * links: renaming would split them).  The space is reserved first, so
 * only an I/O error can stop the copy half-way; it is then tried once
 * more.  Not crash-atomic; documented.  The caller drops the temporary. */
static int copy_back(struct kfile *kf, uint64_t total)
{
	int r = reserve(kf->fd, total);

	if (r)
		return r;
	r = copy_once(kf, total);
	if (r) {
		log_err("%s: copying the new version into place failed (%s); "
			"trying once more",
			kf->label, strerror(-r));
		r = copy_once(kf, total);
	}
	return r;
}

/* Did a rename put another file in place of fd's only name? */
static bool renamed_away(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_nlink == 0;
}

/* Put the temporary (total bytes, synced here) in place of the file;
 * the session then goes on in place.  0, or -errno with the file as it
 * was, or -errno with the new version in place (kf->wrenamed). */
static int publish_temp(struct kfile *kf, uint64_t total)
{
	int r;

	if (fsync(kf->wfd) < 0)
		return -EIO;
	r = kf->host->replace(kf->host->ctx, kf->tmpname, kf->wfd);
	if (r == -ENOTSUP) {
		r = copy_back(kf, total);
		if (r)
			return r;
		drop_temp(kf);
	} else if (r && !renamed_away(kf->fd)) {
		return r;
	} else {
		close(kf->fd);
		kf->fd = kf->wfd;
	}
	/* The old version and its journal, if any, are gone. */
	if (kf->version == CF_V2_OPEN && kf->journal)
		kf_journal_remove(kf, kf->iv);
	kf_forget_version(kf);
	memcpy(kf->iv, kf->wiv, CF_IV_SIZE);
	kf->version = CF_V2_OPEN;
	kf->wfd = kf->fd;
	kf->inplace = true;
	kf->wrenamed = true;
	kf->old_limit = 0; /* every old byte is in the new version now */
	if (r)
		log_err("%s: the new version is in place, but syncing it "
			"failed: %s",
			kf->label, strerror(-r));
	return r;
}

/* --- ending a session ---------------------------------------------------- */

/* What a failed in-place session can keep without sealing anything
 * more under its IV: its complete chunks, and the tail (or nothing
 * after the chunks, if the tail does not fit) in the journal. */
static int salvage(struct kfile *kf)
{
	size_t len = kf->tail_loaded ? kf->tail_len : 0;
	int r = 0;

	if (ftruncate(kf->fd, CT_OFF(kf->frontier)) < 0)
		r = -EIO;
	if (!r && kf->hdr != CF_V2_OPEN)
		r = write_header(kf, CF_V2_OPEN);
	if (!r)
		r = journal_put(kf, len, false);
	if (r == -ENOSPC && len)
		r = journal_put(kf, 0, false);
	return r;
}

static int write_empty(struct kfile *kf)
{
	uint8_t buf[CF_HEADER_SIZE + CF_TAG_SIZE], iv[CF_IV_SIZE];
	int r;

	r = cf_iv_random(iv);
	if (!r) {
		cf_header_build(iv, buf);
		r = cf_seal_chunk(kf->key, iv, 0, buf, 0, buf + CF_HEADER_SIZE);
	}
	if (!r && ftruncate(kf->fd, 0) < 0)
		r = -EIO;
	if (!r)
		r = kf_pwrite(kf->fd, buf, sizeof(buf), 0);
	if (r)
		(void)!ftruncate(kf->fd, 0);
	return r;
}

/* A failed in-place session keeps what it can (salvage), else goes back
 * to its last record (the other slot: a failed record write never
 * touches it), else leaves a valid empty file; then the committed
 * version is learnt from the disk, as after a crash. */
static void revert_inplace(struct kfile *kf)
{
	int r = salvage(kf);

	if (r && kf->jseq > 0 && ftruncate(kf->fd, CT_OFF(kf->jk)) == 0)
		r = 0;
	journal_close(kf, !r);
	if (r)
		r = write_empty(kf);
	if (r && kf->host->remove && kf->host->remove(kf->host->ctx) == 0) {
		log_err("%s: removed: it could not even be left an empty file "
			"(%s)",
			kf->label, strerror(-r));
		r = 0;
	} else if (r) {
		log_err("%s: could not even leave an empty file: %s", kf->label,
			strerror(-r));
	}
	if (kf_probe(kf) || (kf->bad && !kf->empty))
		log_err("%s: unreadable after a failed write", kf->label);
}

/*
 * End a failed session.  Nothing sealed under its IV is sealed again: the
 * next write starts a new version under a fresh IV.  A rewrite's
 * temporary is dropped, so the committed version stays as it was; a file
 * written in place keeps what could be kept (see revert_inplace).  The
 * error is kept for the next kfile_sync/kfile_commit.
 */
static int fail_session(struct kfile *kf, int r)
{
	log_err("%s: could not write the new version: %s", kf->label,
		strerror(-r));
	if (kf->inplace) {
		revert_inplace(kf);
	} else {
		drop_temp(kf);
		journal_close(kf, false);
	}
	end_session(kf);
	kf->failed = true;
	if (!kf->werr)
		kf->werr = r;
	return r;
}

/* Seal every complete chunk, keep chunk `frontier` in the journal and,
 * for a temporary, put it in place of the file (synced first, with its
 * journal: a crash must leave the old version or this one). */
static int checkpoint(struct kfile *kf, bool durable)
{
	size_t len = sess_len(kf, kf->wsize / CHUNK);
	int r = 0;

	while (!r && kf->frontier < kf->wsize / CHUNK)
		r = seal_frontier(kf);
	if (!r)
		r = load_tail(kf);
	if (r)
		return r;
	if (kf->tail_len < len) /* a hole at the end reads as zeros */
		memset(kf->tail + kf->tail_len, 0, len - kf->tail_len);
	kf->tail_len = len;
	if (!kf->hdr)
		r = write_header(kf, CF_V2_OPEN);
	if (!r && durable && !kf->wsynced)
		r = sync_fd(kf->wfd);
	if (!r && durable)
		kf->wsynced = true;
	durable = durable || !kf->inplace;
	if (!r && kf->jdirty)
		r = journal_put(kf, kf->tail_len, durable);
	else if (!r && durable)
		r = journal_sync(kf);
	if (!r && !kf->inplace)
		r = publish_temp(kf, (uint64_t)CT_OFF(kf->frontier));
	return r;
}

int kf_checkpoint(struct kfile *kf, bool durable)
{
	bool was_temp = kf->session && !kf->inplace;
	int r;

	/* A synced empty version is kept (see kf_begin). */
	if (durable)
		kf->reborn = false;
	if (!kf->session)
		return durable && kf->writable ? sync_fd(kf->fd) : 0;
	/* A small file at a close (most closes are the last one): finished
	 * at once, cheaper than a journal; a later write rewrites it, all
	 * of it in the tail anyway. */
	if (!durable && kf->wsize < CHUNK && kf->frontier == 0 && !kf->jseq)
		return kf_finish(kf);
	r = checkpoint(kf, durable);
	/* A temporary that replaced the file goes on in place. */
	if (r && !(was_temp && kf->inplace))
		return fail_session(kf, r);
	return r;
}

/* Seal what is left, mark the file finished, put it in place. */
static int finish(struct kfile *kf)
{
	int r = 0, r2;

	while (!r && kf->frontier <= kf->wsize / CHUNK)
		r = seal_frontier(kf);
	if (!r && kf->hdr == CF_V2_OPEN) {
		if (kf->jdurable) /* durable before its journal goes */
			r = sync_fd(kf->wfd);
		r2 = write_header(kf, CF_V2); /* all data is out: mark it */
		r = r ? r : r2;
	}
	if (!kf->inplace && kf->frontier > kf->wsize / CHUNK)
		r = r ? r : publish_temp(kf, cf_cipher_size(kf->wsize));
	return r;
}

int kf_finish(struct kfile *kf)
{
	int r;

	if (!kf->session) {
		/* Interrupted by a crash or a failed write, but known up to
		 * its end: write it out finished, under a fresh IV. */
		if (!kf->writable || kf->version != CF_V2_OPEN || !kf->ctail ||
		    kf->failed)
			return 0;
		r = kf_begin(kf);
		if (r)
			return r;
		log_info("%s: finishing a file whose writing was interrupted",
			 kf->label);
	}
	r = finish(kf);
	/* Once every chunk is where it belongs, a failed sync or mark is
	 * reported but the version stands (a reader finds it complete). */
	if (r && !(kf->inplace && kf->frontier > kf->wsize / CHUNK))
		return fail_session(kf, r);
	journal_close(kf, false);
	kf_forget_version(kf);
	/* Written in place from no bytes (not through a temporary), to no
	 * bytes, never synced: see kf_begin. */
	kf->reborn =
	    kf->inplace && !kf->wrenamed && kf->wsize == 0 && !kf->jdurable;
	memcpy(kf->iv, kf->wiv, CF_IV_SIZE);
	kf->version = CF_V2;
	kf->size = kf->wsize;
	end_session(kf);
	if (r)
		log_err("%s: written, but syncing it failed: %s", kf->label,
			strerror(-r));
	return r;
}

/* --- writes -------------------------------------------------------------- */

/* Make sure a session is open whose frontier is at or before chunk idx:
 * otherwise the data there is sealed already and a new version starts. */
static int sess_reach(struct kfile *kf, uint64_t idx)
{
	int r;

	if (kf->session && idx < kf->frontier) {
		r = kf_finish(kf);
		if (r)
			return r;
	}
	return kf->session ? 0 : kf_begin(kf);
}

/* Put len bytes at off into the open session (whose frontier is at or
 * before chunk off / CHUNK). */
static int sess_write(struct kfile *kf, const uint8_t *buf, size_t len,
		      uint64_t off)
{
	uint64_t pos = off;
	int r;

	if (off + len > kf->wsize)
		kf->wsize = off + len; /* bytes in a hole read as zeros */
	while (kf->frontier < off / CHUNK) {
		r = seal_frontier(kf);
		if (r)
			return r;
	}
	while (len) {
		size_t in = (size_t)(pos % CHUNK);
		size_t n = (size_t)kf_min(len, CHUNK - in);

		/* The frontier is chunk pos / CHUNK here.  Whole chunks with
		 * more bytes after them are sealed straight from buf; the
		 * last piece goes to the tail, as a write may end anywhere. */
		if (in == 0 && len > CHUNK) {
			size_t k = (len - 1) / CHUNK;

			r = seal_run(kf, buf, k);
			if (r)
				return r;
			pos += (uint64_t)k * CHUNK;
			buf += k * CHUNK;
			len -= k * CHUNK;
			continue;
		}
		r = load_tail(kf);
		if (r)
			return r;
		if (kf->tail_len < in)
			memset(kf->tail + kf->tail_len, 0, in - kf->tail_len);
		memcpy(kf->tail + in, buf, n);
		if (kf->tail_len < in + n)
			kf->tail_len = in + n;
		kf->jdirty = true;
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

#define ROOM_CHECK_MIN (1024 * CHUNK) /* 64 MiB, see check_room */

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

int kf_write(struct kfile *kf, const uint8_t *buf, size_t len, uint64_t off)
{
	int r;

	if (len > KFILE_MAX_SIZE || off > KFILE_MAX_SIZE - len)
		return -EFBIG;
	r = check_room(kf, kf->session ? kf->wsize : kf->size, off + len);
	if (!r)
		r = sess_reach(kf, off / CHUNK);
	if (r)
		return r; /* no session, or it failed already */
	r = sess_write(kf, buf, len, off);
	return r ? fail_session(kf, r) : 0;
}

int kf_truncate(struct kfile *kf, uint64_t size)
{
	int r;

	if (!kf->session && size == kf->size && !kf->bad && kf->version)
		return 0;
	r = check_room(kf, kf->session ? kf->wsize : kf->size, size);
	if (r)
		return r;
	/* Chunks below the frontier that reach past size are sealed. */
	r = kf->session && size < kf->frontier * CHUNK ? kf_finish(kf) : 0;
	if (!r && !kf->session)
		r = kf_begin(kf);
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
	kf->jdirty = true;
	return 0;
}
