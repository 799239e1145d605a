/*
 * inode.c - the inode table, stat with plaintext sizes, open-file
 * attachment, and the filesystem's lifecycle.
 *
 * Operations reach an inode's backing object through an O_PATH fd
 * (inode_fd_get, fs/inode_fd.c) and the *at() calls, never by building
 * paths.  Names and the crash-safe replacement of rewritten files are
 * fs/ns.c's.
 */
#include "inode.h"

#include "kfs.h"
#include "kind.h"
#include "ns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "../lib/log.h"

#define KFS_BUCKETS 65536

static struct kinode *table_find(struct kfs *fs, dev_t dev, ino_t ino)
{
	struct kinode *in = fs->buckets[(ino ^ dev) % fs->nbuckets];

	while (in && !(in->dev == dev && in->ino == ino))
		in = in->hnext;
	return in;
}

static void bucket_add(struct kinode **buckets, size_t n, struct kinode *in)
{
	size_t h = (in->ino ^ in->dev) % n;

	in->hnext = buckets[h];
	buckets[h] = in;
}

/* Twice the buckets once there are more inodes than buckets, so that a
 * lookup stays O(1) with a million inodes.  Out of memory: stay. */
static void table_grow(struct kfs *fs)
{
	size_t n = fs->nbuckets * 2;
	struct kinode **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < fs->nbuckets; i++) {
		struct kinode *in = fs->buckets[i], *next;

		for (; in; in = next) {
			next = in->hnext;
			bucket_add(b, n, in);
		}
	}
	free(fs->buckets);
	fs->buckets = b;
	fs->nbuckets = n;
}

static void table_insert(struct kfs *fs, struct kinode *in)
{
	if (fs->count >= fs->nbuckets)
		table_grow(fs);
	bucket_add(fs->buckets, fs->nbuckets, in);
	fs->count++;
}

static void table_remove(struct kfs *fs, struct kinode *in)
{
	struct kinode **pp = &fs->buckets[(in->ino ^ in->dev) % fs->nbuckets];

	while (*pp && *pp != in)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = in->hnext;
		fs->count--;
	}
}

static void inode_destroy(struct kinode *in)
{
	kind_detach(in);
	free(in->ck);
	inode_fd_drop(in->fs, in);
	pthread_mutex_destroy(&in->lock);
	free(in->name);
	free(in);
}

/* Drop one reference of either kind; table_lock held.  Frees the inode
 * (and drops the pin it held on its parent) when nothing refers to it. */
static void unref_locked(struct kfs *fs, struct kinode *in, uint64_t nlookup,
			 unsigned pins)
{
	while (in) {
		struct kinode *parent;

		in->nlookup -= nlookup;
		in->pins -= pins;
		if (in->nlookup || in->pins || in == fs->root)
			return;
		table_remove(fs, in);
		parent = in->parent;
		inode_destroy(in);
		in = parent;
		nlookup = 0;
		pins = 1;
	}
}

void inode_pin(struct kfs *fs, struct kinode *in)
{
	pthread_mutex_lock(&fs->table_lock);
	in->pins++;
	pthread_mutex_unlock(&fs->table_lock);
}

void inode_unpin(struct kfs *fs, struct kinode *in)
{
	pthread_mutex_lock(&fs->table_lock);
	unref_locked(fs, in, 0, 1);
	pthread_mutex_unlock(&fs->table_lock);
}

void inode_forget(struct kfs *fs, struct kinode *in, uint64_t n)
{
	pthread_mutex_lock(&fs->table_lock);
	unref_locked(fs, in, n, 0);
	pthread_mutex_unlock(&fs->table_lock);
}

struct kinode *inode_find(struct kfs *fs, dev_t dev, ino_t ino)
{
	struct kinode *in;

	pthread_mutex_lock(&fs->table_lock);
	in = table_find(fs, dev, ino);
	if (in)
		in->pins++;
	pthread_mutex_unlock(&fs->table_lock);
	return in;
}

/* Point the inode at a new backing file (a re-encrypted version renamed
 * over the old one).  inode_fd_replace dup3s the new O_PATH fd onto the
 * inode's fd number. */
int inode_repoint(struct kfs *fs, struct kinode *in, int newfd)
{
	char proc[64];
	struct stat st;
	int fd, r;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", newfd);
	fd = inode_openat(fs, AT_FDCWD, proc, O_PATH, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = inode_fd_replace(fs, in, fd);
	if (r)
		return r;
	pthread_mutex_lock(&fs->table_lock);
	table_remove(fs, in);
	in->dev = st.st_dev;
	in->ino = st.st_ino;
	table_insert(fs, in);
	pthread_mutex_unlock(&fs->table_lock);
	return 0;
}

/* --- lookup, stat, chains -------------------------------------------- */

static int inode_new(struct kfs *fs, struct kinode *parent, const char *name,
		     int fd, const struct stat *st, struct kinode **out)
{
	struct kinode *in = calloc(1, sizeof(*in));
	int r;

	if (!in)
		return -ENOMEM;
	r = ns_chain_at(fs, parent, name, S_ISDIR(st->st_mode), &in->chain);
	if (r) {
		free(in);
		return r;
	}
	in->fd = -1;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->type = st->st_mode & S_IFMT;
	in->depth = parent->depth + 1;
	in->fs = fs;
	if (S_ISREG(st->st_mode))
		in->kind = kind_at(fs, parent, name);
	ns_host_init(in);
	pthread_mutex_init(&in->lock, NULL);
	inode_fd_offer(fs, in, fd, true);
	*out = in;
	return 0;
}

static int stat_new(struct kfs *fs, struct kinode *in, struct stat *st,
		    bool made);

int inode_lookup(struct kfs *fs, struct kinode *parent, const char *name,
		 struct stat *st, struct kinode **out)
{
	struct kinode *in, *fresh = NULL;
	bool made = false;
	int fd, r;

	if (layout_name_reserved(name))
		return -ENOENT;
	fd = inode_fd_get(fs, parent);
	if (fd < 0)
		return fd;
	r = inode_openat(fs, fd, name, O_PATH | O_NOFOLLOW, 0);
	inode_fd_put(fs, parent);
	if (r < 0)
		return r;
	fd = r;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	pthread_mutex_lock(&fs->table_lock);
	in = table_find(fs, st->st_dev, st->st_ino);
	if (in)
		in->nlookup++;
	pthread_mutex_unlock(&fs->table_lock);
	if (in) {
		inode_fd_offer(fs, in, fd, false);
	} else {
		r = inode_new(fs, parent, name, fd, st, &fresh);
		if (r)
			return r;
		pthread_mutex_lock(&fs->table_lock);
		in = table_find(fs, st->st_dev, st->st_ino);
		if (!in) {
			in = fresh;
			fresh = NULL;
			made = true;
			table_insert(fs, in);
		}
		in->nlookup++;
		pthread_mutex_unlock(&fs->table_lock);
	}
	if (fresh)
		inode_destroy(fresh); /* lost a race: closes fd */
	ns_set_name(fs, in, parent, name);
	*out = in;
	return stat_new(fs, in, st, made);
}

/* Version byte of the backing file (0 if unknown); in->lock held. */
static int header_version(struct kinode *in, const struct stat *st)
{
	uint8_t hdr[CF_PREAMBLE_LEN + 1];
	int fd;

	if (in->hdr_size == st->st_size &&
	    in->hdr_mtime.tv_sec == st->st_mtim.tv_sec &&
	    in->hdr_mtime.tv_nsec == st->st_mtim.tv_nsec)
		return in->hdr_version;
	fd = inode_reopen(in->fs, in, O_RDONLY);
	if (fd < 0)
		return 0;
	in->hdr_version = 0;
	if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
	    memcmp(hdr, CF_PREAMBLE, CF_PREAMBLE_LEN) == 0)
		in->hdr_version = hdr[CF_PREAMBLE_LEN];
	close(fd);
	in->hdr_size = st->st_size;
	in->hdr_mtime = st->st_mtim;
	return in->hdr_version;
}

/* st_size of st (in's backing file) as the plaintext size shown; in->lock
 * held, in an encrypted regular file.  The header's version byte changes
 * the size only for v1 files (read with --allow-v1 alone; refused, they
 * read as EIO whatever their size) and for a file of exactly an empty
 * file's size (plaintext must not show 0 bytes): otherwise the v2
 * formula gives what kfile_stat_size_of would, also for an unfinished
 * file (complete chunks: one byte past them), with no open and read of
 * the header, which a cold `ls -lR` would pay per file. */
static void shown_size(struct kinode *in, struct stat *st)
{
	uint64_t n = (uint64_t)st->st_size;
	bool ver = in->fs->allow_v1 || n == CF_HEADER_SIZE + CF_TAG_SIZE;

	if (in->kf)
		st->st_size = (off_t)kfile_size(in->kf);
	else if (n >= CF_HEADER_SIZE + CF_TAG_SIZE && ver)
		st->st_size =
		    (off_t)kfile_stat_size_of(n, header_version(in, st));
	else
		st->st_size = (off_t)kfile_stat_size(n);
}

/* The stat reply of a lookup: st is the backing file's, taken just now.
 * An inode the lookup just made, that no one has opened since, cannot
 * have changed its data (kmsfs changes data only through open files):
 * no second stat of it (a cold `ls -lR` costs one per entry). */
static int stat_new(struct kfs *fs, struct kinode *in, struct stat *st,
		    bool made)
{
	bool enc = in->type == S_IFREG && in->kind == LAYOUT_ENCRYPTED;
	bool done = made && !enc;

	if (made && enc) {
		pthread_mutex_lock(&in->lock);
		done = !in->opened && S_ISREG(st->st_mode);
		if (done)
			shown_size(in, st);
		pthread_mutex_unlock(&in->lock);
	}
	return done ? 0 : inode_stat(fs, in, st);
}

int inode_stat(struct kfs *fs, struct kinode *in, struct stat *st)
{
	bool enc = in->type == S_IFREG && in->kind == LAYOUT_ENCRYPTED;
	int fd, r = 0;

	/* An encrypted file's backing size is read under its lock: the
	 * last release may be finishing it (its size and header change)
	 * right now. */
	if (enc)
		pthread_mutex_lock(&in->lock);
	/* The kernel may still hold the name kmsfs removed (fs/file.h's
	 * host remove): it is gone. */
	if (enc && in->nopen == 0 && atomic_load(&in->removed)) {
		r = -ENOENT;
		goto out;
	}
	fd = inode_fd_get(fs, in);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	inode_fd_put(fs, in);
	if (r || !enc || !S_ISREG(st->st_mode))
		goto out; /* other kinds are stored as they are shown */
	shown_size(in, st);
out:
	if (enc)
		pthread_mutex_unlock(&in->lock);
	return r;
}

/* --- open files ------------------------------------------------------- */

static int reopen(struct kfs *fs, struct kinode *in, bool writable)
{
	return inode_reopen(fs, in, writable ? O_RDWR : O_RDONLY);
}

/* The fd the create left open (ns_create), taken from *datafd when it is
 * in's backing file; else a fresh open of in. */
static int data_fd(struct kfs *fs, struct kinode *in, bool writable,
		   int *datafd)
{
	struct stat st;
	int fd;

	if (!writable || !datafd || *datafd < 0 || fstat(*datafd, &st) < 0 ||
	    st.st_dev != in->dev || st.st_ino != in->ino)
		return reopen(fs, in, writable);
	fd = *datafd;
	*datafd = -1;
	return fd;
}

/* in->lock held. */
static int attach(struct kfs *fs, struct kinode *in, bool writable, bool fresh,
		  int *datafd)
{
	const struct cf_key *key;
	char label[512];
	int fd, r;

	if (in->kind != LAYOUT_ENCRYPTED)
		return kind_attach(fs, in, writable);
	kind_attached(fs, in, writable);
	r = writable ? keycache_key_write(fs->kc, in->chain, &key)
		     : keycache_key_read(fs->kc, in->chain, &key);
	if (r == -ENOKEY && !writable) {
		/* kfile_open reads the header once: ciphertext gives the key
		 * error back, anything else is refused as damaged (EIO and a
		 * log line), never decrypted with no key. */
		key = NULL;
		r = 0;
	}
	if (r)
		return r;
	if (in->kf) {
		/* A writer joins readers: the file needs a writable fd. */
		fd = reopen(fs, in, true);
		if (fd < 0)
			return fd;
		kfile_set_writable_fd(in->kf, fd);
		return 0;
	}
	fd = data_fd(fs, in, writable, datafd);
	if (fd < 0)
		return fd;
	ns_label(fs, in, label, sizeof(label));
	r = kfile_open(fd,
		       (writable ? KFILE_WRITABLE : 0) |
			   (fresh ? KFILE_NEW : 0) |
			   (fs->allow_v1 ? KFILE_ALLOW_V1 : 0),
		       key, &in->host, label, &in->kf);
	if (r) {
		close(fd);
		return r;
	}
	return fresh ? kfile_begin_new(in->kf) : 0;
}

/* A writer, once counted in in->nwriters, waits for the stores of reads
 * that began before it (see inode.h; each takes microseconds, or as long
 * as a read another thread serves). */
static void wait_shares(struct kinode *in)
{
	const struct timespec tick = {0, 50 * 1000};

	while (atomic_load(&in->sharing))
		nanosleep(&tick, NULL);
}

unsigned inode_data_gen(struct kinode *in)
{
	return atomic_load(&in->wgen);
}

bool inode_share_begin(struct kfs *fs, struct kinode *in, unsigned gen)
{
	bool ok;

	if (atomic_fetch_add(&fs->sharing, 1) >= KFS_SHARE_MAX) {
		atomic_fetch_sub(&fs->sharing, 1);
		return false;
	}
	/* Not waiting for in->lock: a last close may hold it for a commit,
	 * and the read's reply waits for this call. */
	ok = pthread_mutex_trylock(&in->lock) == 0;
	if (ok) {
		ok = in->nwriters == 0 && atomic_load(&in->wgen) == gen;
		if (ok)
			atomic_fetch_add(&in->sharing, 1);
		pthread_mutex_unlock(&in->lock);
	}
	if (ok)
		inode_pin(fs, in); /* the handle may go before the store */
	else
		atomic_fetch_sub(&fs->sharing, 1);
	return ok;
}

void inode_share_end(struct kfs *fs, struct kinode *in)
{
	atomic_fetch_sub(&in->sharing, 1);
	atomic_fetch_sub(&fs->sharing, 1);
	inode_unpin(fs, in);
}

int inode_open_file(struct kfs *fs, struct kinode *in, int flags, bool fresh,
		    int *datafd, struct kind_file *out)
{
	bool writable = (flags & O_ACCMODE) != O_RDONLY;
	bool first;
	int r = 0;

	pthread_mutex_lock(&in->lock);
	/* An open file keeps its inode's fd: stat of a file unlinked while
	 * open must still work, and a rewrite dup3s onto it. */
	first = in->nopen == 0;
	if (first && atomic_load(&in->removed))
		r = -ENOENT; /* see inode_stat */
	else if (first)
		r = inode_fd_get(fs, in);
	if (r < 0)
		goto out;
	r = 0;
	if (!kind_file_ready(in, writable))
		r = attach(fs, in, writable, fresh, datafd);
	if (r) {
		if (first)
			inode_fd_put(fs, in);
		goto out;
	}
	in->nopen++;
	in->opened = true;
	if (writable) {
		in->nwriters++;
		atomic_fetch_add(&in->wgen, 1);
	}
	out->kf = in->kf;
	out->pf = in->pf;
	/* see inode.h */
	out->keep_cache = false;
	if (in->kind != LAYOUT_ENCRYPTED || writable ||
	    kfile_writable(in->kf)) {
		in->kcache_ok = false;
	} else {
		out->keep_cache = in->kcache_ok;
		in->kcache_ok = true;
	}
out:
	pthread_mutex_unlock(&in->lock);
	if (!r && writable)
		wait_shares(in);
	return r;
}

int inode_release_file(struct kfs *fs, struct kinode *in, bool writable)
{
	int r = 0;

	/* The last close finishes the file (fs/file.h) under in->lock: a
	 * stat meanwhile waits, and so never sees the backing file between
	 * kmsfs's last write and the times set on it again after it. */
	pthread_mutex_lock(&in->lock);
	if (writable && in->nwriters) {
		in->nwriters--;
		atomic_fetch_add(&in->wgen, 1);
	}
	if (in->nopen && --in->nopen == 0) {
		/* commits, keeps checksum files right, closes */
		r = kind_release(fs, in);
		/* kmsfs changed the header (finished, rewritten): its times
		 * may have been set back, so the cache key cannot tell. */
		in->hdr_size = -1;
		inode_fd_put(fs, in);
	}
	pthread_mutex_unlock(&in->lock);
	return r;
}

int inode_flush_file(struct kfs *fs, struct kinode *in,
		     const struct kind_file *f)
{
	int r;

	/* The last handle's close finishes the file, unless it is written
	 * between several closes of that handle (see kfile_closers): the
	 * release then does. */
	pthread_mutex_lock(&in->lock);
	r = in->nopen == 1 && !kind_file_closers(f)
		? kind_file_commit(fs, in, f)
		: kind_file_sync(fs, in, f, false);
	pthread_mutex_unlock(&in->lock);
	return r;
}

int inode_set_times(struct kinode *in, const struct timespec tv[2])
{
	char proc[64];
	int fd, r;

	/* Under the inode lock: the last release cannot finish the file
	 * between the two. */
	pthread_mutex_lock(&in->lock);
	fd = inode_fd_get(in->fs, in);
	if (fd < 0) {
		pthread_mutex_unlock(&in->lock);
		return fd;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	r = utimensat(AT_FDCWD, proc, tv, 0) < 0 ? -errno : 0;
	if (!r && in->kf)
		kfile_set_times(in->kf, tv);
	inode_fd_put(in->fs, in);
	pthread_mutex_unlock(&in->lock);
	return r;
}

/* --- the filesystem --------------------------------------------------- */

int kfs_new(const char *backing, struct ks_keyring *keys,
	    const struct layout_profile *layout, struct kfs **out)
{
	struct kfs *fs = calloc(1, sizeof(*fs));
	struct stat st;
	int r;

	if (!fs)
		return -ENOMEM;
	fs->rootfd = -1;
	fs->mountfd = -1;
	fs->keys = keys;
	fs->layout = layout;
	fs->nbuckets = KFS_BUCKETS;
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_mutex_init(&fs->ns_lock, NULL);
	pthread_mutex_init(&fs->fd_lock, NULL);
	pthread_mutex_init(&fs->ck_lock, NULL);
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	fs->root = calloc(1, sizeof(*fs->root));
	if (!fs->buckets || !fs->root) {
		r = -ENOMEM;
		goto fail;
	}
	fs->rootfd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->rootfd < 0 || fstat(fs->rootfd, &st) < 0) {
		r = -errno;
		log_err("cannot open backing directory %s: %s", backing,
			strerror(-r));
		goto fail;
	}
	r = inode_fds_init(fs);
	if (r)
		goto fail;
	r = keycache_new(keys, &fs->kc);
	if (r)
		goto fail;
	r = keycache_chain(fs->kc, fs->rootfd, "/", &fs->root->chain);
	if (r)
		goto fail;
	fs->root->fd = fs->rootfd;
	fs->root->dev = st.st_dev;
	fs->root->ino = st.st_ino;
	fs->root->type = S_IFDIR;
	fs->root->nlookup = 1;
	fs->root->pins = 1;
	fs->root->tmp_dirfd = -1;
	fs->root->fs = fs;
	pthread_mutex_init(&fs->root->lock, NULL);
	table_insert(fs, fs->root);
	*out = fs;
	return 0;
fail:
	kfs_free(fs);
	return r;
}

void kfs_free(struct kfs *fs)
{
	if (!fs)
		return;
	inode_fds_release(fs);
	for (size_t i = 0; fs->buckets && i < fs->nbuckets; i++) {
		struct kinode *in = fs->buckets[i];

		while (in) {
			struct kinode *next = in->hnext;

			if (in != fs->root)
				inode_destroy(in);
			in = next;
		}
	}
	if (fs->root && fs->root->fs)
		pthread_mutex_destroy(&fs->root->lock);
	free(fs->root);
	free(fs->buckets);
	if (fs->rootfd >= 0)
		close(fs->rootfd);
	if (fs->mountfd >= 0)
		close(fs->mountfd);
	keycache_free(fs->kc);
	pthread_mutex_destroy(&fs->fd_lock);
	pthread_mutex_destroy(&fs->ck_lock);
	pthread_mutex_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->table_lock);
	free(fs);
}
