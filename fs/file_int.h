/*
 * file_int.h - what fs/file.c (open, probe, read) and fs/file_write.c
 * (write sessions) share about struct kfile.  Private to them.
 */
#ifndef KMSFS_FILE_INT_H
#define KMSFS_FILE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "file.h"

#define CHUNK ((uint64_t)CF_CHUNK_SIZE)
#define CT_OFF(i) ((off_t)(CF_HEADER_SIZE + (uint64_t)(i)*CF_CHUNK_CT_SIZE))

/* Decrypted chunks of the committed version (file_cache.c). */
#define KF_CACHE_N 4
struct kf_cache_ent {
	uint64_t idx;
	size_t len; /* 0: empty */
	uint64_t used;
};
struct kf_cache {
	pthread_mutex_t lock; /* leaf: taken under kfile.lock only */
	uint8_t *data;	      /* KF_CACHE_N chunks, allocated on first put */
	struct kf_cache_ent ent[KF_CACHE_N];
	uint64_t clock;
};

struct kfile {
	pthread_rwlock_t lock;
	const struct cf_key *key;
	const struct kfile_host *host;
	char *label;
	unsigned flags; /* KFILE_* */
	bool writable;
	bool failed; /* a session failed: the last close does not retry */
	bool closed; /* kfile_commit left data in it, and it stays open */
	int werr; /* error of a failed session, reported by the next commit */
	struct timespec times[2]; /* set by the user (UTIME_OMIT: not) */
	bool stamped; /* times put back since kmsfs last wrote (keep_times) */

	/* committed version: what the backing file fd holds */
	int fd;
	int version; /* CF_V1, CF_V2, CF_V2_OPEN; 0: none (empty, bad) */
	int bad;     /* reads fail with it */
	bool empty;  /* the backing file had no bytes at all */
	/* Empty, and only since a close finished it in place: the backing
	 * file had no bytes when it was opened and nothing was synced
	 * since, so a next session may start over in place (kf_begin). */
	bool reborn;
	bool journal; /* CF_V2_OPEN: a journal of iv exists beside it */
	uint8_t iv[CF_IV_SIZE];
	uint64_t size;	  /* plaintext size (end unknown: one past nfull) */
	uint64_t shown;	  /* bad: the size stat shows (at least 1) */
	uint64_t nfull;	  /* CF_V2_OPEN: complete chunks in fd */
	uint8_t *ctail;	  /* CF_V2_OPEN: chunk nfull; NULL: end unknown */
	struct cf_v1 *v1; /* CF_V1: authenticated once, read by chunk */

	/* write session */
	bool session, inplace, tail_loaded;
	int hdr; /* version byte of the header in wfd; 0: not written */
	int wfd;
	char tmpname[64];
	uint8_t wiv[CF_IV_SIZE];
	uint64_t frontier;  /* chunks sealed in wfd */
	uint64_t wsize;	    /* plaintext size of the new version */
	uint64_t old_limit; /* old bytes beyond frontier still valid */
	uint8_t *tail;	    /* chunk `frontier`, tail_len bytes valid */
	size_t tail_len;
	uint8_t *ct;   /* header + one sealed chunk */
	bool wsynced;  /* nothing written to wfd since its last sync */
	bool wrenamed; /* the temporary replaced the file (temp sessions) */

	/* the session's journal (fs/journal.h) */
	int jfd, jdirfd;
	bool jnew;     /* its name is not synced yet */
	bool jdirty;   /* the tail or frontier changed since the last record */
	bool jdurable; /* the last record is synced */
	uint64_t jseq; /* records written */
	uint64_t jk;   /* chunk index of the last record */
	uint8_t *jbuf;

	struct kf_cache cache; /* used only without a session */
};

uint64_t kf_min(uint64_t a, uint64_t b);
int kf_pread(int fd, uint8_t *buf, size_t len, off_t off, size_t *got);
int kf_pwrite(int fd, const uint8_t *buf, size_t len, off_t off);
/* Plaintext of chunk idx of the committed version, *len bytes. */
int kf_old_chunk(struct kfile *kf, uint64_t idx, uint8_t *ct, uint8_t *out,
		 size_t *len);
/* Read and authenticate chunk idx of a v2 layout of plaintext size. */
int kf_v2_chunk(const struct kfile *kf, int fd, const uint8_t *iv,
		uint64_t size, uint64_t idx, uint8_t *ct, uint8_t *out);
/* Learn the committed version from fd again (after a failed session). */
int kf_probe(struct kfile *kf);
/* Forget the committed version's derived state (v1 text, journal tail). */
void kf_forget_version(struct kfile *kf);
/* Remove the journal of the version with IV iv beside the file. */
void kf_journal_remove(struct kfile *kf, const uint8_t iv[CF_IV_SIZE]);

/* file_cache.c.  kfc_get: copy up to n bytes at in of chunk idx into dst
 * and set *clen to the chunk's length, if it is cached.  kfc_put: cache
 * an authenticated chunk.  kfc_drop: forget (and wipe) every chunk;
 * kfc_release: also free. */
void kfc_init(struct kf_cache *c);
void kfc_release(struct kf_cache *c);
void kfc_drop(struct kf_cache *c);
bool kfc_get(struct kf_cache *c, uint64_t idx, size_t in, uint8_t *dst,
	     size_t n, size_t *clen);
void kfc_put(struct kf_cache *c, uint64_t idx, const uint8_t *pt, size_t len);

/* file_write.c */
int kf_finish(struct kfile *kf);
int kf_checkpoint(struct kfile *kf, bool durable);
int kf_write(struct kfile *kf, const uint8_t *buf, size_t len, uint64_t off);
int kf_truncate(struct kfile *kf, uint64_t size);
int kf_begin(struct kfile *kf);
void kf_drop_session(struct kfile *kf);

#endif
