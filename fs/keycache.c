/*
 * keycache.c - chain objects and their keys.
 *
 * Chains are looked up by the (dev, ino) of their directory in a small
 * hash table and never freed before keycache_free, so callers may keep
 * plain pointers.  A removed chain moves to a graveyard list: still valid
 * for open files, no longer found by lookups.
 *
 * Key verification: a KMS unwrap authenticates the data key, a passphrase
 * does not.  So after unlocking, the key must open the chain's key-check
 * file (written when kmsfs creates a chain) or, for chains written by
 * CockroachDB, the first chunk of one encrypted file found near the top
 * of the chain.  A chain with no file at all accepts any key.
 */
#include "keycache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "layout.h"

#define KC_BUCKETS 4096
#define KC_RETRY_SECONDS 5
#define KC_SCAN_MAX 256 /* entries looked at when searching a sample */
#define KC_KEYCHECK_TEXT "kmsfs key check v1\n"

enum chain_state { CH_UNKNOWN, CH_READY, CH_FAILED };

struct chain {
	dev_t dev;
	ino_t ino;
	int dirfd; /* O_RDONLY|O_DIRECTORY */
	char *label;
	pthread_mutex_t lock;
	enum chain_state state;
	int err; /* when CH_FAILED */
	time_t failed_at;
	int writable; /* 0 unknown, 1 yes, <0 -errno */
	time_t
	    writable_at; /* when a refusal was decided (add-kms may fix it) */
	struct cf_key *key;
	struct chain *next; /* bucket or graveyard */
};

struct keycache {
	struct ks_keyring *keys;
	pthread_mutex_t lock;
	struct chain *bucket[KC_BUCKETS];
	struct chain *graveyard;
	size_t nkeys; /* keys held, removed chains' included (under lock) */
};

int keycache_new(struct ks_keyring *keys, struct keycache **out)
{
	struct keycache *kc = calloc(1, sizeof(*kc));

	if (!kc)
		return -ENOMEM;
	kc->keys = keys;
	pthread_mutex_init(&kc->lock, NULL);
	*out = kc;
	return 0;
}

static void chain_free(struct chain *c)
{
	cf_key_free(c->key);
	if (c->dirfd >= 0)
		close(c->dirfd);
	pthread_mutex_destroy(&c->lock);
	free(c->label);
	free(c);
}

static void chain_list_free(struct chain *c)
{
	while (c) {
		struct chain *next = c->next;

		chain_free(c);
		c = next;
	}
}

void keycache_free(struct keycache *kc)
{
	if (!kc)
		return;
	for (int i = 0; i < KC_BUCKETS; i++)
		chain_list_free(kc->bucket[i]);
	chain_list_free(kc->graveyard);
	pthread_mutex_destroy(&kc->lock);
	free(kc);
}

static unsigned kc_hash(dev_t dev, ino_t ino)
{
	return (unsigned)((ino * 2654435761u) ^ dev) % KC_BUCKETS;
}

static int chain_alloc(int dirfd, const struct stat *st, const char *label,
		       struct chain **out)
{
	struct chain *c = calloc(1, sizeof(*c));
	char proc[64];

	if (!c)
		return -ENOMEM;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	c->dirfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	c->label = strdup(*label ? label : "/");
	if (c->dirfd < 0 || !c->label) {
		int r = c->dirfd < 0 ? -errno : -ENOMEM;

		free(c->label);
		if (c->dirfd >= 0)
			close(c->dirfd);
		free(c);
		return r;
	}
	c->dev = st->st_dev;
	c->ino = st->st_ino;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

int keycache_chain(struct keycache *kc, int dirfd, const char *label,
		   struct chain **out)
{
	struct chain *c, *fresh = NULL;
	struct stat st;
	unsigned h;
	int r;

	if (fstat(dirfd, &st) < 0)
		return -errno;
	h = kc_hash(st.st_dev, st.st_ino);
	for (;;) {
		pthread_mutex_lock(&kc->lock);
		for (c = kc->bucket[h]; c; c = c->next) {
			if (c->dev == st.st_dev && c->ino == st.st_ino)
				break;
		}
		if (!c && fresh) {
			fresh->next = kc->bucket[h];
			kc->bucket[h] = fresh;
			c = fresh;
			fresh = NULL;
		}
		pthread_mutex_unlock(&kc->lock);
		if (c)
			break;
		/* Allocate outside the table lock (open() may block). */
		r = chain_alloc(dirfd, &st, label, &fresh);
		if (r)
			return r;
	}
	if (fresh)
		chain_free(fresh);
	*out = c;
	return 0;
}

void keycache_chain_removed(struct keycache *kc, struct chain *c)
{
	struct chain **pp;

	pthread_mutex_lock(&kc->lock);
	for (pp = &kc->bucket[kc_hash(c->dev, c->ino)]; *pp;
	     pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			c->next = kc->graveyard;
			kc->graveyard = c;
			break;
		}
	}
	pthread_mutex_unlock(&kc->lock);
}

const char *keycache_chain_label(const struct chain *c)
{
	return c->label;
}

/* Open chunk 0 of the file at fd (any v1/v2 file) with key. 0 if it
 * authenticates, -EBADMSG if not, -EAGAIN if the file is not a usable
 * sample (not encrypted, too short). */
static int sample_check(int fd, const struct cf_key *key, uint8_t *ct,
			uint8_t *pt)
{
	uint8_t iv[CF_IV_SIZE];
	ssize_t n;
	int ver;

	n = pread(fd, ct, CF_HEADER_SIZE + CF_CHUNK_CT_SIZE, 0);
	if (n < CF_HEADER_SIZE + CF_TAG_SIZE)
		return -EAGAIN;
	if (cf_header_parse(ct, (size_t)n, &ver, iv))
		return -EAGAIN;
	if (ver == CF_V1)
		return -EAGAIN; /* whole-file message: too costly here */
	return cf_open_chunk(key, iv, 0, ct + CF_HEADER_SIZE,
			     (size_t)n - CF_HEADER_SIZE, pt);
}

/* Depth-limited search of dirfd for a file the key must open. */
static int sample_scan(int dirfd, const struct cf_key *key, int depth,
		       int *budget, uint8_t *ct, uint8_t *pt)
{
	struct dirent *de;
	int r = -EAGAIN, fd;
	DIR *d;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -EAGAIN;
	}
	while (r == -EAGAIN && (*budget)-- > 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || strcmp(de->d_name, "..") == 0))
			continue;
		if (layout_name_reserved(de->d_name))
			continue;
		if (de->d_type == DT_DIR && depth > 0) {
			int sub = openat(dirfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (sub >= 0) {
				r = sample_scan(sub, key, depth - 1, budget, ct,
						pt);
				close(sub);
			}
		} else if (de->d_type == DT_REG) {
			int f = openat(dirfd, de->d_name,
				       O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

			if (f >= 0) {
				r = sample_check(f, key, ct, pt);
				close(f);
			}
		}
	}
	closedir(d);
	return r;
}

static int verify_key(struct chain *c, const struct cf_key *key)
{
	int budget = KC_SCAN_MAX, r, fd;
	uint8_t *ct = malloc(CF_HEADER_SIZE + CF_CHUNK_CT_SIZE);
	uint8_t *pt = malloc(CF_CHUNK_SIZE);

	if (!ct || !pt) {
		r = -ENOMEM;
		goto out;
	}
	fd = openat(c->dirfd, LAYOUT_KEYCHECK_NAME, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		r = sample_check(fd, key, ct, pt);
		close(fd);
		if (r == 0 &&
		    memcmp(pt, KC_KEYCHECK_TEXT, strlen(KC_KEYCHECK_TEXT)) != 0)
			r = -EBADMSG;
		if (r != -EAGAIN)
			goto out;
	}
	r = sample_scan(c->dirfd, key, 3, &budget, ct, pt);
	if (r == -EAGAIN)
		r = 0; /* nothing to check against: an empty chain */
out:
	if (pt)
		secret_wipe(pt, CF_CHUNK_SIZE);
	free(pt);
	free(ct);
	return r;
}

static int write_keycheck(struct chain *c, const struct cf_key *key)
{
	const size_t plen = strlen(KC_KEYCHECK_TEXT);
	uint8_t out[CF_HEADER_SIZE + 64 + CF_TAG_SIZE], iv[CF_IV_SIZE];
	size_t len = CF_HEADER_SIZE + plen + CF_TAG_SIZE;
	int fd, r;

	r = cf_iv_random(iv);
	if (r)
		return r;
	cf_header_build(iv, out);
	r = cf_seal_chunk(key, iv, 0, (const uint8_t *)KC_KEYCHECK_TEXT, plen,
			  out + CF_HEADER_SIZE);
	if (r)
		return r;
	fd = openat(c->dirfd, LAYOUT_KEYCHECK_NAME,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	r = write(fd, out, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -EIO;
	close(fd);
	return r;
}

/* The key of chain c as a cf_key, counted against KEYCACHE_MAX_KEYS. */
static int key_new(struct keycache *kc, const struct chain *c,
		   const struct secret *dk, struct cf_key **out)
{
	int r = 0;

	pthread_mutex_lock(&kc->lock);
	if (kc->nkeys < KEYCACHE_MAX_KEYS)
		kc->nkeys++;
	else
		r = -ENOMEM;
	pthread_mutex_unlock(&kc->lock);
	if (r) {
		log_err("chain %s: cannot hold its key: this mount holds the "
			"keys of %d chains, its limit (removed chains count "
			"until unmount); unmount and mount again",
			c->label, KEYCACHE_MAX_KEYS);
		return r;
	}
	r = cf_key_new(dk, out);
	if (r) {
		log_err("chain %s: cannot hold its key: out of locked memory "
			"(the secure heap is full): %s",
			c->label, strerror(-r));
		pthread_mutex_lock(&kc->lock);
		kc->nkeys--;
		pthread_mutex_unlock(&kc->lock);
	}
	return r;
}

/* Drop a key made by key_new (NULL ok). */
static void key_free(struct keycache *kc, struct cf_key *key)
{
	if (!key)
		return;
	cf_key_free(key);
	pthread_mutex_lock(&kc->lock);
	kc->nkeys--;
	pthread_mutex_unlock(&kc->lock);
}

/* Called with c->lock held. */
static int chain_unlock(struct keycache *kc, struct chain *c)
{
	struct secret *dk = NULL;
	struct cf_key *key = NULL;
	int r;

	r = ks_chain_unlock(kc->keys, c->dirfd, &dk);
	if (r)
		return r;
	r = key_new(kc, c, dk, &key);
	secret_free(dk);
	if (r)
		return r;
	r = verify_key(c, key);
	if (r) {
		key_free(kc, key);
		log_err("chain %s: the key does not decrypt its files "
			"(wrong passphrase or key?)",
			c->label);
		return r == -ENOMEM ? r : -ENOKEY;
	}
	c->key = key;
	c->state = CH_READY;
	return 0;
}

/* Called with c->lock held. */
static int chain_create_locked(struct keycache *kc, struct chain *c)
{
	struct secret *dk = NULL;
	struct cf_key *key = NULL;
	struct buf info;
	int r;

	buf_init(&info, 0);
	r = ks_chain_create(kc->keys, &dk, &info);
	if (r)
		goto out;
	r = key_new(kc, c, dk, &key);
	if (r)
		goto out;
	r = ks_chain_write_encinfo(c->dirfd, &info);
	if (r)
		goto out;
	r = write_keycheck(c, key);
	if (r)
		log_warn("chain %s: could not write the key-check file: %s",
			 c->label, strerror(-r));
	r = 0;
	c->key = key;
	key = NULL;
	c->state = CH_READY;
	c->writable = 1;
	log_info("chain %s: created with a new data key", c->label);
out:
	key_free(kc, key);
	secret_free(dk);
	buf_release(&info);
	return r;
}

int keycache_chain_create(struct keycache *kc, struct chain *c)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = c->state == CH_READY ? -EEXIST : chain_create_locked(kc, c);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Called with c->lock held: make sure the key is there for reading. */
static int chain_ready_locked(struct keycache *kc, struct chain *c)
{
	int r;

	if (c->state == CH_READY)
		return 0;
	if (c->state == CH_FAILED &&
	    time(NULL) - c->failed_at < KC_RETRY_SECONDS)
		return c->err;
	r = chain_unlock(kc, c);
	if (r && r != -ENOENT) {
		c->state = CH_FAILED;
		c->err = r;
		c->failed_at = time(NULL);
	}
	return r;
}

int keycache_key_read(struct keycache *kc, struct chain *c,
		      const struct cf_key **out)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = chain_ready_locked(kc, c);
	if (r == -ENOENT)
		r = -ENOKEY; /* a directory that is not a chain yet */
	if (!r)
		*out = c->key;
	pthread_mutex_unlock(&c->lock);
	return r;
}

int keycache_key_write(struct keycache *kc, struct chain *c,
		       const struct cf_key **out)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = chain_ready_locked(kc, c);
	if (r == -ENOENT)
		r = chain_create_locked(kc, c);
	if (r)
		goto out;
	if (c->writable < 0 && time(NULL) - c->writable_at >= KC_RETRY_SECONDS)
		c->writable = 0; /* `kmsfs add-kms` may have run meanwhile */
	if (c->writable == 0) {
		r = ks_chain_check_writable(kc->keys, c->dirfd);
		c->writable = r ? r : 1;
		c->writable_at = time(NULL);
		if (r)
			log_err("chain %s: refusing to write: a configured KMS "
				"is not in its ENCRYPTION-INFO; add it with "
				"`kmsfs add-kms` first",
				c->label);
	}
	r = c->writable < 0 ? -ENOKEY : 0;
	if (!r)
		*out = c->key;
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Unlock one chain (by its path) in a fresh lookup. */
static int try_chain(struct keycache *kc, int rootfd, const char *path)
{
	const struct cf_key *key;
	struct chain *c;
	int fd, r;

	fd = fdio_open_beneath(rootfd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	r = keycache_chain(kc, fd, path, &c);
	close(fd);
	return r ? r : keycache_key_read(kc, c, &key);
}

int keycache_check_store(struct keycache *kc,
			 const struct layout_profile *layout, int rootfd)
{
	int tried = 0, last = 0, r = 0;
	char **chains;

	r = layout_chains(layout, rootfd, &chains);
	if (r) {
		log_err("cannot list the chains of the store: %s",
			strerror(-r));
		return r;
	}
	for (size_t i = 0; chains[i]; i++) {
		tried++;
		r = try_chain(kc, rootfd, chains[i]);
		if (r == 0)
			break;
		last = r;
	}
	layout_list_free(chains);
	if (r == 0 || tried == 0)
		return 0;
	if (!last || last == -ENOKEY || last == -EBADMSG)
		log_err("cannot unlock any of the %d backup chain(s) in the "
			"store with the given keys: wrong passphrase or key?",
			tried);
	else
		log_err("cannot unlock any of the %d backup chain(s) in the "
			"store: no configured KMS could unwrap a key (%s); "
			"check that a KMS is reachable and allows Decrypt",
			tried, strerror(-last));
	return last ? last : -ENOKEY;
}
