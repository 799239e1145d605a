/*
 * keycache.c - chain objects and their keys.
 *
 * Chains are looked up by the (dev, ino) of their directory in a hash
 * table and never freed before keycache_free, so callers may keep plain
 * pointers.  A removed chain moves to a graveyard list: still valid for
 * open files, no longer found by lookups.
 *
 * Which key a chain has is keystore's answer (ks_chain_unlock: every
 * ENCRYPTION-INFO* file must agree, and a key that only KMSes anyone can
 * wrap for return must be in the known-keys record).  Here, on top:
 *  - the key must open the chain's own files (keycheck.c): a wrong
 *    passphrase derives a key too;
 *  - a passphrase nothing in the store could check is not used to write
 *    (keycache_check_store decides, any later check lifts it);
 *  - a directory that holds encrypted files but no ENCRYPTION-INFO has
 *    lost its key: its files give EIO and it is never given a new one.
 */
#include "keycache.h"

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
#include "keycheck.h"
#include "layout.h"

#define KC_BUCKETS 4096
#define KC_RETRY_SECONDS 5

enum chain_state { CH_UNKNOWN, CH_READY, CH_FAILED };

/* Has the passphrase been checked against the store?  KMS keys need no
 * check: an unwrap authenticates them. */
enum pass_state {
	PASS_UNKNOWN,	  /* no store check ran (cat, show, tests): allowed */
	PASS_CHECKED,	  /* a chain's files opened with it */
	PASS_UNCHECKABLE, /* chains exist, none has anything to check */
};

struct chain {
	dev_t dev;
	ino_t ino;
	int dirfd; /* O_RDONLY|O_DIRECTORY */
	char *label;
	bool root; /* the collection root: its chain is its own files only */
	pthread_mutex_t lock;
	enum chain_state state;
	int err; /* when CH_FAILED; -ENOENT: no ENCRYPTION-INFO (yet) */
	time_t failed_at;
	struct ks_chain_memo memo; /* a refusal its files alone decide */
	bool unchecked;	  /* CH_READY, passphrase, nothing to check it */
	bool lost_logged; /* the lost ENCRYPTION-INFO was reported */
	int writable;	  /* 0 unknown, 1 yes, <0 -errno */
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
	enum pass_state pass; /* under lock */
	int retry_seconds;    /* KC_RETRY_SECONDS, or a test's */
};

int keycache_new(struct ks_keyring *keys, struct keycache **out)
{
	struct keycache *kc = calloc(1, sizeof(*kc));

	if (!kc)
		return -ENOMEM;
	kc->keys = keys;
	kc->retry_seconds = KC_RETRY_SECONDS;
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

void keycache_set_retry_seconds(struct keycache *kc, int seconds)
{
	kc->retry_seconds = seconds;
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
	c->root = !*label || strcmp(label, "/") == 0;
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

static bool is_passphrase(const struct keycache *kc)
{
	return ks_keyring_is_passphrase(kc->keys);
}

static enum pass_state pass_get(struct keycache *kc)
{
	enum pass_state p;

	pthread_mutex_lock(&kc->lock);
	p = kc->pass;
	pthread_mutex_unlock(&kc->lock);
	return p;
}

static void pass_set(struct keycache *kc, enum pass_state p)
{
	pthread_mutex_lock(&kc->lock);
	kc->pass = p;
	pthread_mutex_unlock(&kc->lock);
}

/* The kernel and the tools see "no usable key" for a chain that is not
 * one yet or whose key is refused; the reason was logged. */
static int user_err(int r)
{
	return r == -ENOENT || r == -EKEYREJECTED ? -ENOKEY : r;
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

/* Called with c->lock held.  The key must open the chain's own files;
 * a passphrase key with nothing to open is kept, marked unchecked. */
static int chain_unlock(struct keycache *kc, struct chain *c)
{
	struct secret *dk = NULL;
	struct cf_key *key = NULL;
	int r;

	r = ks_chain_unlock_memo(kc->keys, c->dirfd, c->label, &c->memo, &dk);
	if (r)
		return r;
	r = key_new(kc, c, dk, &key);
	secret_free(dk);
	if (r)
		return r;
	r = keycheck_verify(c->dirfd, c->root, key);
	c->unchecked = r == -ENODATA && is_passphrase(kc);
	if (r == -ENODATA)
		r = 0;
	else if (!r && is_passphrase(kc))
		pass_set(kc, PASS_CHECKED);
	if (r) {
		key_free(kc, key);
		if (r == -ENOMEM)
			return r;
		log_err("chain %s: the key does not decrypt its files "
			"(wrong passphrase or key?)",
			c->label);
		return -ENOKEY;
	}
	c->key = key;
	c->state = CH_READY;
	c->lost_logged = false;
	return 0;
}

/* Called with c->lock held, when c has no ENCRYPTION-INFO: -ENOENT for a
 * directory that may be given a key, -EIO (logged once) for one that
 * holds encrypted files and so has lost its ENCRYPTION-INFO. */
static int chain_without_info(struct chain *c)
{
	int h = keycheck_holds_encrypted(c->dirfd, c->root);

	if (h == 0)
		return -ENOENT;
	if (!c->lost_logged)
		log_err("chain %s holds %s but no ENCRYPTION-INFO: its files "
			"give EIO and nothing is written there; restore "
			"ENCRYPTION-INFO from a copy of the store (or remove "
			"those files to start the directory afresh)",
			c->label,
			h > 0 ? "encrypted files" : "too many files to tell");
	c->lost_logged = true;
	return -EIO;
}

/* Called with c->lock held. */
static int chain_create_locked(struct keycache *kc, struct chain *c)
{
	struct secret *dk = NULL;
	struct cf_key *key = NULL;
	struct buf info;
	int r;

	if (is_passphrase(kc) && pass_get(kc) == PASS_UNCHECKABLE) {
		log_err("chain %s: not created: the passphrase has not been "
			"checked against any chain of the store (see the "
			"mount's first lines)",
			c->label);
		return -ENOKEY;
	}
	buf_init(&info, 0);
	r = ks_chain_create(kc->keys, &dk, &info);
	if (!r)
		r = key_new(kc, c, dk, &key);
	/* Recorded before it is used: a crash leaves a stale record, never
	 * a chain whose key a later mount cannot establish. */
	if (!r)
		r = ks_chain_record(kc->keys, c->dirfd, c->label, dk);
	if (!r)
		r = ks_chain_write_encinfo(c->dirfd, &info);
	if (r)
		goto out;
	r = keycheck_write(c->dirfd, key);
	if (r)
		log_warn("chain %s: could not write the key-check file: %s",
			 c->label, strerror(-r));
	r = 0;
	c->key = key;
	key = NULL;
	c->state = CH_READY;
	c->unchecked = false;
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

/* Called with c->lock held: make sure the key is there for reading.
 * Returns the raw code: -ENOENT (no ENCRYPTION-INFO, may be created),
 * -EKEYREJECTED (keystore refused the key), -EIO (lost), ... */
static int chain_ready_locked(struct keycache *kc, struct chain *c)
{
	int r;

	if (c->state == CH_READY)
		return 0;
	if (c->state == CH_FAILED &&
	    time(NULL) - c->failed_at < kc->retry_seconds)
		return c->err;
	r = chain_unlock(kc, c);
	if (r == -ENOENT)
		r = chain_without_info(c);
	if (r) {
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
	if (!r)
		*out = c->key;
	pthread_mutex_unlock(&c->lock);
	return user_err(r);
}

/* Called with c->lock held, c ready: may new data go into c?  The
 * answer is kept; a refusal is asked again after KC_RETRY_SECONDS
 * (`kmsfs add-kms` may have run, another chain may have checked the
 * passphrase). */
static int chain_writable_locked(struct keycache *kc, struct chain *c)
{
	int r;

	if (c->writable < 0 && time(NULL) - c->writable_at >= kc->retry_seconds)
		c->writable = 0;
	if (c->writable)
		return c->writable < 0 ? -ENOKEY : 0;
	if (c->unchecked && pass_get(kc) == PASS_UNCHECKABLE) {
		log_err("chain %s: refusing to write: the passphrase has not "
			"been checked against any chain of the store (see the "
			"mount's first lines)",
			c->label);
		r = -ENOKEY;
	} else {
		r = ks_chain_check_writable(kc->keys, c->dirfd);
		if (r)
			log_err("chain %s: refusing to write: a configured KMS "
				"is not in its ENCRYPTION-INFO; add it with "
				"`kmsfs add-kms` first",
				c->label);
	}
	c->writable = r ? r : 1;
	c->writable_at = time(NULL);
	return c->writable < 0 ? -ENOKEY : 0;
}

int keycache_key_write(struct keycache *kc, struct chain *c,
		       const struct cf_key **out)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = chain_ready_locked(kc, c);
	if (r == -ENOENT)
		r = chain_create_locked(kc, c);
	if (!r)
		r = chain_writable_locked(kc, c);
	if (!r)
		*out = c->key;
	pthread_mutex_unlock(&c->lock);
	return user_err(r);
}

/* --- the mount-time check ------------------------------------------------ */

/* The chain at path (relative to rootfd), made ready: its raw code, and
 * whether the key was checked against its files. */
static int try_chain(struct keycache *kc, int rootfd, const char *path,
		     bool *checked)
{
	struct chain *c;
	int fd, r;

	*checked = false;
	fd = fdio_open_beneath(rootfd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	r = keycache_chain(kc, fd, path, &c);
	close(fd);
	if (r)
		return r;
	pthread_mutex_lock(&c->lock);
	r = chain_ready_locked(kc, c);
	*checked = !r && !c->unchecked;
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every chain directory without an ENCRYPTION-INFO (not in with_info)
 * that holds encrypted files is reported now (chain_without_info). */
static void report_lost(struct keycache *kc, const struct layout_profile *p,
			int rootfd, char **with_info)
{
	char **dirs = NULL, **named = with_info;
	size_t n = 0;
	bool checked;

	if (named[0] && !*named[0])
		named++; /* the root's chain, first: it is probed below */
	while (named[n])
		n++;
	if (!with_info[0] || *with_info[0])
		try_chain(kc, rootfd, "", &checked);
	if (layout_chain_dirs(p, rootfd, &dirs))
		return;
	for (size_t i = 0; dirs[i]; i++) {
		if (*dirs[i] &&
		    !bsearch(&dirs[i], named, n, sizeof(*named), cmp_path))
			try_chain(kc, rootfd, dirs[i], &checked);
	}
	layout_list_free(dirs);
}

struct tally {
	int tried, checked, unchecked, rejected, last;
};

/* What the tries say about the keys; 0 when the mount may go on. */
static int verdict(struct keycache *kc, const struct tally *t)
{
	if (t->checked || t->tried == 0)
		return 0;
	if (t->rejected && !is_passphrase(kc))
		return 0; /* a KMS unwrapped: the keys are right */
	if (!t->last && t->unchecked) {
		pass_set(kc, PASS_UNCHECKABLE);
		log_warn("cannot check the passphrase: none of the %d backup "
			 "chain(s) of the store holds a file to check it "
			 "against; reading works, but no chain is created or "
			 "written until one can be checked (a chain that "
			 "holds nothing but ENCRYPTION-INFO can be removed)",
			 t->tried);
		return 0;
	}
	if (!t->last && t->rejected)
		log_err("cannot use any of the %d backup chain(s) in the "
			"store: their ENCRYPTION-INFO files disagree (see "
			"above)",
			t->tried);
	else if (!t->last || t->last == -ENOKEY || t->last == -EBADMSG)
		log_err("cannot unlock any of the %d backup chain(s) in the "
			"store with the given keys: wrong passphrase or key?",
			t->tried);
	else
		log_err("cannot unlock any of the %d backup chain(s) in the "
			"store: no configured KMS could unwrap a key (%s); "
			"check that a KMS is reachable and allows Decrypt",
			t->tried, strerror(-t->last));
	return t->last ? t->last : -ENOKEY;
}

int keycache_check_store(struct keycache *kc,
			 const struct layout_profile *layout, int rootfd)
{
	struct tally t = {0, 0, 0, 0, 0};
	char **chains;
	bool checked;
	int r;

	r = layout_chains(layout, rootfd, &chains);
	if (r) {
		log_err("cannot list the chains of the store: %s",
			strerror(-r));
		return r;
	}
	report_lost(kc, layout, rootfd, chains);
	for (size_t i = 0; chains[i] && !t.checked; i++) {
		t.tried++;
		r = try_chain(kc, rootfd, chains[i], &checked);
		if (checked)
			t.checked++;
		else if (!r)
			t.unchecked++;
		else if (r == -EKEYREJECTED)
			t.rejected++;
		else
			t.last = r;
		if (r == -EKEYREJECTED && !is_passphrase(kc))
			break; /* the keys unwrap; the chain itself is refused
				*/
	}
	layout_list_free(chains);
	return verdict(kc, &t);
}
