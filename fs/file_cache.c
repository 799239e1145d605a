/*
 * file_cache.c - a few decrypted chunks of an open file's committed
 * version, so that small reads inside one chunk (4 KiB reads of a 64 KiB
 * chunk) authenticate and decrypt it once.
 *
 * Correctness: a chunk enters only after it authenticated, and the whole
 * cache is dropped by every entry point of fs/file.c that takes the
 * kfile's lock for writing (write, truncate, sync, commit, new session,
 * new fd) and by kf_forget_version (a probe of the backing file).  Those
 * are the only ways the committed version changes, and a reader fills the
 * cache under the read lock, so no reader can put a chunk of an old
 * version in after the drop.  Sessions do not use it (their reads hold
 * the write lock and see the tail).  The plaintext is wiped when the
 * cache is dropped and when the file is closed.
 */
#include "file_int.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/secret.h"

void kfc_init(struct kf_cache *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

/* c->lock held. */
static void drop_locked(struct kf_cache *c)
{
	for (int i = 0; i < KF_CACHE_N; i++) {
		if (c->ent[i].len)
			secret_wipe(c->data + (size_t)i * CF_CHUNK_SIZE,
				    c->ent[i].len);
		c->ent[i].len = 0;
	}
}

void kfc_drop(struct kf_cache *c)
{
	pthread_mutex_lock(&c->lock);
	drop_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void kfc_release(struct kf_cache *c)
{
	if (c->data) {
		drop_locked(c);
		free(c->data);
		c->data = NULL;
	}
	pthread_mutex_destroy(&c->lock);
}

bool kfc_get(struct kf_cache *c, uint64_t idx, size_t in, uint8_t *dst,
	     size_t n, size_t *clen)
{
	bool hit = false;

	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < KF_CACHE_N && c->data; i++) {
		struct kf_cache_ent *e = &c->ent[i];

		if (!e->len || e->idx != idx)
			continue;
		*clen = e->len;
		if (in < e->len)
			memcpy(dst, c->data + (size_t)i * CF_CHUNK_SIZE + in,
			       n < e->len - in ? n : e->len - in);
		e->used = ++c->clock;
		hit = true;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void kfc_put(struct kf_cache *c, uint64_t idx, const uint8_t *pt, size_t len)
{
	int victim = 0;

	if (len == 0 || len > CF_CHUNK_SIZE)
		return;
	pthread_mutex_lock(&c->lock);
	if (!c->data)
		c->data = malloc((size_t)KF_CACHE_N * CF_CHUNK_SIZE);
	for (int i = 0; i < KF_CACHE_N && c->data; i++) {
		if (c->ent[i].len && c->ent[i].idx == idx) {
			victim = -1; /* another reader put it in meanwhile */
			break;
		}
		if (c->ent[i].used < c->ent[victim].used || !c->ent[i].len)
			victim = i;
		if (!c->ent[i].len)
			break;
	}
	if (c->data && victim >= 0) {
		memcpy(c->data + (size_t)victim * CF_CHUNK_SIZE, pt, len);
		c->ent[victim].idx = idx;
		c->ent[victim].len = len;
		c->ent[victim].used = ++c->clock;
	}
	pthread_mutex_unlock(&c->lock);
}
