/*
 * inode.c - inode table, names, and open-file attachment.
 *
 * Each inode keeps an O_PATH fd to its backing object, so operations use
 * the *at() calls and never build paths.  The last name an inode was seen
 * under is tracked only for crash-safe rewrites: the new version is
 * written to a temporary beside that name and renamed over it, after
 * checking (under the namespace lock) that the name still points at the
 * inode and that it has a single link.  Otherwise the new version is
 * copied back into the same inode.
 */
#include "inode.h"

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
	if (in->kf)
		kfile_close(in->kf);
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

static void inode_pin(struct kfs *fs, struct kinode *in)
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

/* ns_lock held. */
static void set_name_locked(struct kfs *fs, struct kinode *in,
			    struct kinode *parent, const char *name)
{
	struct kinode *old = in->parent;
	char *copy = parent ? strdup(name) : NULL;

	if (parent && !copy)
		parent = NULL; /* out of memory: forget the name */
	if (parent)
		inode_pin(fs, parent);
	free(in->name);
	in->name = copy;
	in->parent = parent;
	if (old)
		inode_unpin(fs, old);
}

void inode_set_name(struct kfs *fs, struct kinode *in, struct kinode *parent,
		    const char *name)
{
	if (in == fs->root)
		return;
	pthread_mutex_lock(&fs->ns_lock);
	set_name_locked(fs, in, parent, name);
	pthread_mutex_unlock(&fs->ns_lock);
}

void inode_name_gone(struct kfs *fs, dev_t dev, ino_t ino,
		     struct kinode *parent, const char *name)
{
	struct kinode *in = inode_find(fs, dev, ino);

	if (!in)
		return;
	pthread_mutex_lock(&fs->ns_lock);
	if (in->parent == parent && in->name && strcmp(in->name, name) == 0)
		set_name_locked(fs, in, NULL, NULL);
	pthread_mutex_unlock(&fs->ns_lock);
	inode_unpin(fs, in);
}

/* Path of in relative to the root, for logs ("?" parts if unknown). */
static void inode_label(struct kinode *in, char *out, size_t len)
{
	struct kfs *fs = in->fs;
	const char *parts[64];
	size_t n = 0, used = 0;

	pthread_mutex_lock(&fs->ns_lock);
	for (; in && in != fs->root && n < 64; in = in->parent)
		parts[n++] = in->name ? in->name : "?";
	out[0] = '\0';
	while (n-- > 0 && used < len)
		used +=
		    (size_t)snprintf(out + used, len - used, "/%s", parts[n]);
	pthread_mutex_unlock(&fs->ns_lock);
	if (!out[0])
		snprintf(out, len, "/");
}

/* --- crash-safe rewrite: struct kfile_host over an inode ------------- */

static int host_mktemp(void *ctx, int *fd_out, char *name, size_t namelen)
{
	struct kinode *in = ctx;
	struct kfs *fs = in->fs;
	uint8_t rnd[8];
	int dirfd, fd;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	snprintf(name, namelen, "%s%02x%02x%02x%02x%02x%02x%02x%02x",
		 CHAIN_TMP_PREFIX, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		 rnd[5], rnd[6], rnd[7]);
	pthread_mutex_lock(&fs->ns_lock);
	/* Beside the file when its name is known, else at the root (the
	 * new version is then copied back, see host_replace). */
	dirfd = openat(in->parent ? in->parent->fd : fs->rootfd, ".",
		       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pthread_mutex_unlock(&fs->ns_lock);
	if (dirfd < 0)
		return -errno;
	fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int r = -errno;

		close(dirfd);
		return r;
	}
	if (in->tmp_dirfd >= 0)
		close(in->tmp_dirfd);
	in->tmp_dirfd = dirfd;
	*fd_out = fd;
	return 0;
}

/* A new version must keep the user's extended attributes. */
static void copy_xattrs(int opath_fd, int tmpfd)
{
	char proc[64], names[4096], val[4096];
	ssize_t n, vn;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", opath_fd);
	n = listxattr(proc, names, sizeof(names));
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
		vn = getxattr(proc, names + i, val, sizeof(val));
		if (vn >= 0 &&
		    fsetxattr(tmpfd, names + i, val, (size_t)vn, 0) < 0)
			log_warn("could not keep xattr %s on a rewritten file",
				 names + i);
	}
}

static bool same_dir(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Point the inode at the new backing file after the rename. */
static int rekey(struct kfs *fs, struct kinode *in, int tmpfd)
{
	char proc[64];
	struct stat st;
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", tmpfd);
	fd = open(proc, O_PATH | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	pthread_mutex_lock(&fs->table_lock);
	table_remove(fs, in);
	close(in->fd);
	in->fd = fd;
	in->dev = st.st_dev;
	in->ino = st.st_ino;
	table_insert(fs, in);
	pthread_mutex_unlock(&fs->table_lock);
	return 0;
}

static int host_replace(void *ctx, const char *tmpname, int tmpfd)
{
	struct kinode *in = ctx;
	struct kfs *fs = in->fs;
	struct stat cur, named;
	bool renamed = false;
	int r = -ENOTSUP;

	pthread_mutex_lock(&fs->ns_lock);
	if (!in->parent || fstat(in->fd, &cur) < 0 || cur.st_nlink != 1 ||
	    !same_dir(in->parent->fd, in->tmp_dirfd))
		goto out;
	if (fstatat(in->parent->fd, in->name, &named, AT_SYMLINK_NOFOLLOW) <
		0 ||
	    named.st_dev != cur.st_dev || named.st_ino != cur.st_ino)
		goto out;
	copy_xattrs(in->fd, tmpfd);
	/* chown first: it clears set-user-ID, chmod then restores it. */
	(void)fchown(tmpfd, cur.st_uid, cur.st_gid);
	(void)fchmod(tmpfd, cur.st_mode & 07777);
	if (renameat(in->tmp_dirfd, tmpname, in->parent->fd, in->name) < 0) {
		r = -errno;
		log_err("rename of a re-encrypted file failed: %s",
			strerror(-r));
		goto out;
	}
	renamed = true;
	r = rekey(fs, in, tmpfd);
	if (fsync(in->tmp_dirfd) < 0 && !r)
		r = -EIO;
out:
	pthread_mutex_unlock(&fs->ns_lock);
	if (renamed) { /* else host_discard still needs it */
		close(in->tmp_dirfd);
		in->tmp_dirfd = -1;
	}
	return r;
}

/* A new file a full disk left with nothing valid in it goes. */
static int host_remove(void *ctx)
{
	struct kinode *in = ctx;
	struct kfs *fs = in->fs;
	struct stat st;
	int r = -ENOENT;

	pthread_mutex_lock(&fs->ns_lock);
	if (in->parent &&
	    fstatat(in->parent->fd, in->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_dev == in->dev && st.st_ino == in->ino)
		r = unlinkat(in->parent->fd, in->name, 0) < 0 ? -errno : 0;
	if (!r)
		set_name_locked(fs, in, NULL, NULL);
	pthread_mutex_unlock(&fs->ns_lock);
	return r;
}

/* The directory of the file's name, for its journal. */
static int host_dirfd(void *ctx)
{
	struct kinode *in = ctx;
	int fd = -ENOENT;

	pthread_mutex_lock(&in->fs->ns_lock);
	if (in->parent) {
		fd = openat(in->parent->fd, ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fd = fd < 0 ? -errno : fd;
	}
	pthread_mutex_unlock(&in->fs->ns_lock);
	return fd;
}

static void host_discard(void *ctx, const char *tmpname)
{
	struct kinode *in = ctx;

	if (in->tmp_dirfd < 0)
		return;
	if (unlinkat(in->tmp_dirfd, tmpname, 0) < 0)
		log_warn("could not remove temporary %s: %s", tmpname,
			 strerror(errno));
	close(in->tmp_dirfd);
	in->tmp_dirfd = -1;
}

/* --- lookup, stat, chains -------------------------------------------- */

int inode_chain_at(struct kfs *fs, struct kinode *parent, const char *name,
		   int fd, bool is_dir, struct chain **out)
{
	if (is_dir && fs->profile->starts_chain(parent->depth + 1, name))
		return keycache_chain(fs->kc, fd, name, out);
	*out = parent->chain;
	return 0;
}

static int inode_new(struct kfs *fs, struct kinode *parent, const char *name,
		     int fd, const struct stat *st, struct kinode **out)
{
	struct kinode *in = calloc(1, sizeof(*in));
	int r;

	if (!in)
		return -ENOMEM;
	r = inode_chain_at(fs, parent, name, fd, S_ISDIR(st->st_mode),
			   &in->chain);
	if (r) {
		free(in);
		return r;
	}
	in->fd = fd;
	in->dev = st->st_dev;
	in->ino = st->st_ino;
	in->type = st->st_mode & S_IFMT;
	in->depth = parent->depth + 1;
	in->tmp_dirfd = -1;
	in->fs = fs;
	in->host.ctx = in;
	in->host.mktemp = host_mktemp;
	in->host.replace = host_replace;
	in->host.discard = host_discard;
	in->host.dirfd = host_dirfd;
	in->host.remove = host_remove;
	pthread_mutex_init(&in->lock, NULL);
	*out = in;
	return 0;
}

int inode_lookup(struct kfs *fs, struct kinode *parent, const char *name,
		 struct stat *st, struct kinode **out)
{
	struct kinode *in, *fresh = NULL;
	int fd, r;

	if (chain_name_reserved(name))
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
	inode_set_name(fs, in, parent, name);
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
	bool reg = in->type == S_IFREG;
	uint64_t n;
	int r = 0;

	(void)fs;
	/* A regular file's size is read under its lock: the last release
	 * may be finishing it (its backing size changes) right now. */
	if (reg)
		pthread_mutex_lock(&in->lock);
	if (fstatat(in->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (r || !reg || !S_ISREG(st->st_mode))
		goto out;
	n = (uint64_t)st->st_size;
	if (in->kf)
		st->st_size = (off_t)kfile_size(in->kf);
	else if (n >= CF_HEADER_SIZE + CF_TAG_SIZE)
		st->st_size =
		    (off_t)kfile_stat_size_of(n, header_version(in, st));
	else
		st->st_size = (off_t)kfile_stat_size(n);
out:
	if (reg)
		pthread_mutex_unlock(&in->lock);
	return r;
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

/* in->lock held. */
static int attach(struct kfs *fs, struct kinode *in, bool writable, bool fresh)
{
	const struct cf_key *key;
	char label[512];
	int fd, r;

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
		fd = reopen(in->fd, true);
		if (fd < 0)
			return fd;
		kfile_set_writable_fd(in->kf, fd);
		return 0;
	}
	fd = reopen(in->fd, writable);
	if (fd < 0)
		return fd;
	inode_label(in, label, sizeof(label));
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

int inode_open_file(struct kfs *fs, struct kinode *in, int flags, bool fresh,
		    struct kfile **out)
{
	bool writable = (flags & O_ACCMODE) != O_RDONLY;
	int r = 0;

	pthread_mutex_lock(&in->lock);
	if (!in->kf || (writable && !kfile_writable(in->kf)))
		r = attach(fs, in, writable, fresh);
	if (!r) {
		in->nopen++;
		*out = in->kf;
	}
	pthread_mutex_unlock(&in->lock);
	return r;
}

int inode_release_file(struct kfs *fs, struct kinode *in)
{
	int r = 0;

	(void)fs;
	pthread_mutex_lock(&in->lock);
	if (in->nopen && --in->nopen == 0 && in->kf) {
		r = kfile_commit(in->kf);
		kfile_close(in->kf);
		in->kf = NULL;
	}
	pthread_mutex_unlock(&in->lock);
	return r;
}

int inode_set_times(struct kinode *in, const struct timespec tv[2])
{
	char proc[64];
	int r;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", in->fd);
	/* Under the inode lock: the last release cannot finish the file
	 * between the two. */
	pthread_mutex_lock(&in->lock);
	r = utimensat(AT_FDCWD, proc, tv, 0) < 0 ? -errno : 0;
	if (!r && in->kf)
		kfile_set_times(in->kf, tv);
	pthread_mutex_unlock(&in->lock);
	return r;
}

/* --- the filesystem --------------------------------------------------- */

int kfs_new(const char *backing, struct ks_keyring *keys,
	    const struct chain_profile *profile, struct kfs **out)
{
	struct kfs *fs = calloc(1, sizeof(*fs));
	struct stat st;
	int r;

	if (!fs)
		return -ENOMEM;
	fs->rootfd = -1;
	fs->keys = keys;
	fs->profile = profile;
	fs->nbuckets = KFS_BUCKETS;
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_mutex_init(&fs->ns_lock, NULL);
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
	pthread_mutex_destroy(&fs->ns_lock);
	pthread_mutex_destroy(&fs->table_lock);
	free(fs);
}
