/*
 * inode.c - the inode table, stat with plaintext sizes, open-file
 * attachment, and the filesystem's lifecycle.
 *
 * Each inode keeps an O_PATH fd to its backing object, so operations use
 * the *at() calls and never build paths.  Names and the crash-safe
 * replacement of rewritten files are fs/ns.c's.
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

static void table_insert(struct kfs *fs, struct kinode *in)
{
	size_t h = (in->ino ^ in->dev) % fs->nbuckets;

	in->hnext = fs->buckets[h];
	fs->buckets[h] = in;
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
	if (in->fd >= 0)
		close(in->fd);
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
 * over the old one).  The new O_PATH fd is dup3'd onto the inode's fd
 * number, so a thread using in->fd meanwhile sees the old or the new
 * file, never a closed or reused number. */
int inode_repoint(struct kfs *fs, struct kinode *in, int newfd)
{
	char proc[64];
	struct stat st;
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", newfd);
	fd = open(proc, O_PATH | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || dup3(fd, in->fd, O_CLOEXEC) < 0) {
		int r = -errno;

		if (fd >= 0)
			close(fd);
		return r;
	}
	close(fd);
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
	in->fd = fd;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->type = st->st_mode & S_IFMT;
	in->depth = parent->depth + 1;
	in->fs = fs;
	if (S_ISREG(st->st_mode))
		in->kind = kind_at(fs, parent, name);
	ns_host_init(in);
	pthread_mutex_init(&in->lock, NULL);
	*out = in;
	return 0;
}

int inode_lookup(struct kfs *fs, struct kinode *parent, const char *name,
		 struct stat *st, struct kinode **out)
{
	struct kinode *in, *fresh = NULL;
	int fd, r;

	if (layout_name_reserved(name))
		return -ENOENT;
	fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
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
	if (!in) {
		r = inode_new(fs, parent, name, fd, st, &fresh);
		if (r) {
			close(fd);
			return r;
		}
		pthread_mutex_lock(&fs->table_lock);
		in = table_find(fs, st->st_dev, st->st_ino);
		if (!in) {
			in = fresh;
			fresh = NULL;
			table_insert(fs, in);
		}
		in->nlookup++;
		pthread_mutex_unlock(&fs->table_lock);
	}
	if (fresh)
		inode_destroy(fresh); /* lost a race: closes fd */
	else if (in->fd != fd)
		close(fd);
	ns_set_name(fs, in, parent, name);
	*out = in;
	return inode_stat(fs, in, st);
}

static int reopen(int opath_fd, bool writable);

/* Version byte of the backing file (0 if unknown); in->lock held. */
static int header_version(struct kinode *in, const struct stat *st)
{
	uint8_t hdr[CF_PREAMBLE_LEN + 1];
	int fd;

	if (in->hdr_size == st->st_size &&
	    in->hdr_mtime.tv_sec == st->st_mtim.tv_sec &&
	    in->hdr_mtime.tv_nsec == st->st_mtim.tv_nsec)
		return in->hdr_version;
	fd = reopen(in->fd, false);
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

int inode_stat(struct kfs *fs, struct kinode *in, struct stat *st)
{
	uint64_t n;

	(void)fs;
	if (fstatat(in->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode) || in->kind != LAYOUT_ENCRYPTED)
		return 0; /* other kinds are stored as they are shown */
	n = (uint64_t)st->st_size;
	pthread_mutex_lock(&in->lock);
	if (in->kf)
		st->st_size = (off_t)kfile_size(in->kf);
	else if (n >= CF_HEADER_SIZE + CF_TAG_SIZE &&
		 header_version(in, st) == CF_V1)
		st->st_size = (off_t)(n - CF_HEADER_SIZE - CF_TAG_SIZE);
	else
		st->st_size = (off_t)kfile_stat_size(n);
	pthread_mutex_unlock(&in->lock);
	return 0;
}

/* --- open files ------------------------------------------------------- */

static int reopen(int opath_fd, bool writable)
{
	char proc[64];
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", opath_fd);
	fd = open(proc, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static bool looks_encrypted(int opath_fd)
{
	char pre[CF_PREAMBLE_LEN];
	int fd = reopen(opath_fd, false);
	bool yes;

	if (fd < 0)
		return true; /* cannot tell: keep the key error */
	yes = pread(fd, pre, sizeof(pre), 0) == (ssize_t)sizeof(pre) &&
	      memcmp(pre, CF_PREAMBLE, CF_PREAMBLE_LEN) == 0;
	close(fd);
	return yes;
}

/* in->lock held. */
static int attach(struct kfs *fs, struct kinode *in, bool writable, bool fresh)
{
	const struct cf_key *key;
	char label[512];
	int fd, r;

	if (in->kind != LAYOUT_ENCRYPTED)
		return kind_attach(fs, in, writable);
	kind_attached(fs, in, writable);
	r = writable ? keycache_key_write(fs->kc, in->chain, &key)
		     : keycache_key_read(fs->kc, in->chain, &key);
	if (r == -ENOKEY && !writable && !looks_encrypted(in->fd)) {
		/* Not ciphertext at all: open it keyless so that reads
		 * report it (EIO and a log line), not a key problem. */
		key = NULL;
		r = 0;
	}
	if (r)
		return r;
	if (in->kf) {
		/* A writer joins readers: the file needs a writable fd. */
		fd = reopen(in->fd, true);
		if (fd < 0)
			return fd;
		kfile_set_writable_fd(in->kf, fd);
		return 0;
	}
	fd = reopen(in->fd, writable);
	if (fd < 0)
		return fd;
	ns_label(fs, in, label, sizeof(label));
	r = kfile_open(fd, writable, key, &in->host, label, &in->kf);
	if (r) {
		close(fd);
		return r;
	}
	return fresh ? kfile_begin_new(in->kf) : 0;
}

int inode_open_file(struct kfs *fs, struct kinode *in, int flags, bool fresh,
		    struct kind_file *out)
{
	bool writable = (flags & O_ACCMODE) != O_RDONLY;
	int r = 0;

	pthread_mutex_lock(&in->lock);
	if (!kind_file_ready(in, writable))
		r = attach(fs, in, writable, fresh);
	if (!r) {
		in->nopen++;
		out->kf = in->kf;
		out->pf = in->pf;
	}
	pthread_mutex_unlock(&in->lock);
	return r;
}

int inode_release_file(struct kfs *fs, struct kinode *in)
{
	int r = 0;

	pthread_mutex_lock(&in->lock);
	if (in->nopen && --in->nopen == 0)
		r = kind_release(fs, in);
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
	fs->keys = keys;
	fs->layout = layout;
	fs->nbuckets = KFS_BUCKETS;
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_mutex_init(&fs->ns_lock, NULL);
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
	keycache_free(fs->kc);
	pthread_mutex_destroy(&fs->ck_lock);
	pthread_mutex_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->table_lock);
	free(fs);
}
