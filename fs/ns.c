/*
 * ns.c - the namespace core: names, namespace changes and their policy.
 *
 * Every *at() call that changes a name runs under kfs.ns_lock together
 * with the check it depends on, so a name cannot move in between.  Slow
 * work stays outside the lock: creating a chain's key (KMS calls), fsync,
 * copying xattrs.  The last name of each inode is tracked for crash-safe
 * rewrites: the new version is written to a temporary beside that name
 * and renamed over it, after checking under the lock that the name still
 * points at the inode and that it has a single link; otherwise the new
 * version is copied back into the same inode (fs/file.c).
 */
#include "ns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "cformat.h"
#include "kind.h"

#define NS_PATH_MAX 4096

/* --- names -------------------------------------------------------------- */

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

void ns_set_name(struct kfs *fs, struct kinode *in, struct kinode *parent,
		 const char *name)
{
	if (in == fs->root)
		return;
	pthread_mutex_lock(&fs->ns_lock);
	set_name_locked(fs, in, parent, name);
	pthread_mutex_unlock(&fs->ns_lock);
}

/* After an unlink/rmdir/rename away of parent/name: forget that name in
 * whichever inode carries it. */
static void name_gone(struct kfs *fs, const struct stat *st,
		      struct kinode *parent, const char *name)
{
	struct kinode *in = inode_find(fs, st->st_dev, st->st_ino);

	if (!in)
		return;
	pthread_mutex_lock(&fs->ns_lock);
	if (in->parent == parent && in->name && strcmp(in->name, name) == 0)
		set_name_locked(fs, in, NULL, NULL);
	pthread_mutex_unlock(&fs->ns_lock);
	inode_unpin(fs, in);
}

/* The entry moved to newparent/newname. */
static void name_moved(struct kfs *fs, const struct stat *st,
		       struct kinode *newparent, const char *newname)
{
	struct kinode *in = inode_find(fs, st->st_dev, st->st_ino);

	if (!in)
		return;
	in->depth = newparent->depth + 1;
	ns_set_name(fs, in, newparent, newname);
	inode_unpin(fs, in);
}

/* Components from in up to the root; ns_lock held.  Returns the count,
 * or -1 when a name is unknown or the tree is too deep. */
static int path_parts(struct kfs *fs, struct kinode *in, const char **parts,
		      int max)
{
	int n = 0;

	for (; in && in != fs->root; in = in->parent) {
		if (n == max || !in->name)
			return -1;
		parts[n++] = in->name;
	}
	return in ? n : -1;
}

static size_t join_parts(const char **parts, int n, const char *sep0, char *out,
			 size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	while (n-- > 0 && used < len)
		used += (size_t)snprintf(out + used, len - used, "%s%s",
					 used ? "/" : sep0, parts[n]);
	return used;
}

int ns_path(struct kfs *fs, struct kinode *in, char *out, size_t len)
{
	const char *parts[64];
	size_t used;
	int n;

	pthread_mutex_lock(&fs->ns_lock);
	n = path_parts(fs, in, parts, 64);
	used = n < 0 ? 0 : join_parts(parts, n, "", out, len);
	pthread_mutex_unlock(&fs->ns_lock);
	if (n < 0)
		return -ENOENT;
	return used >= len ? -ENAMETOOLONG : 0;
}

void ns_label(struct kfs *fs, struct kinode *in, char *out, size_t len)
{
	const char *parts[64];
	size_t n = 0;

	pthread_mutex_lock(&fs->ns_lock);
	for (; in && in != fs->root && n < 64; in = in->parent)
		parts[n++] = in->name ? in->name : "?";
	join_parts(parts, (int)n, "/", out, len);
	pthread_mutex_unlock(&fs->ns_lock);
	if (!out[0])
		snprintf(out, len, "/");
}

/* --- chains ------------------------------------------------------------- */

int ns_chain_at(struct kfs *fs, struct kinode *parent, const char *name,
		bool is_dir, struct chain **out)
{
	char path[NS_PATH_MAX], chain[NS_PATH_MAX];
	size_t n;
	int fd, r;

	if (parent->depth + 1 > layout_depth(fs->layout)) {
		*out = parent->chain;
		return 0;
	}
	r = ns_path(fs, parent, path, sizeof(path));
	if (r)
		return r;
	n = strlen(path);
	if ((size_t)snprintf(path + n, sizeof(path) - n, "%s%s", n ? "/" : "",
			     name) >= sizeof(path) - n)
		return -ENAMETOOLONG;
	r = layout_chain_of(fs->layout, path, is_dir, chain, sizeof(chain));
	if (r)
		return r;
	if (!chain[0]) {
		*out = fs->root->chain;
		return 0;
	}
	fd = fdio_open_beneath(fs->rootfd, chain, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return fd;
	r = keycache_chain(fs->kc, fd, chain, out);
	close(fd);
	return r;
}

/* Would a directory named name in parent start a chain (hold its own
 * ENCRYPTION-INFO)?  path receives its store path, for logs.  Deep
 * directories never do; their paths may not even fit in path (PATH_MAX
 * below the mount point is fine). */
static int starts_chain(struct kfs *fs, struct kinode *parent, const char *name,
			char *path, size_t len, bool *yes)
{
	int r;

	*yes = false;
	if (parent->depth + 1 > layout_depth(fs->layout))
		return 0;
	r = ns_path(fs, parent, path, len - strlen(name) - 1);
	if (r)
		return r;
	if (*path)
		strcat(path, "/");
	strcat(path, name);
	*yes = layout_is_chain_dir(fs->layout, path);
	return 0;
}

/* A new directory that starts a chain gets its key and ENCRYPTION-INFO
 * now (KMS calls: outside ns_lock); if that fails it is removed again. */
static int start_chain(struct kfs *fs, struct kinode *parent, const char *name)
{
	struct chain *c;
	char path[NS_PATH_MAX];
	bool yes;
	int r, pfd;

	r = starts_chain(fs, parent, name, path, sizeof(path), &yes);
	if (r || !yes)
		return r;
	r = ns_chain_at(fs, parent, name, true, &c);
	if (!r)
		r = keycache_chain_create(fs->kc, c);
	if (r) {
		log_err("mkdir %s: could not create the chain's key: %s", path,
			strerror(r == -ENOKEY ? EACCES : -r));
		pfd = inode_fd_get(fs, parent);
		if (pfd < 0)
			return r;
		pthread_mutex_lock(&fs->ns_lock);
		unlinkat(pfd, name, AT_REMOVEDIR);
		pthread_mutex_unlock(&fs->ns_lock);
		inode_fd_put(fs, parent);
	}
	return r;
}

/* --- making names ------------------------------------------------------- */

/* Hand the new entry name in dirfd (open as fd when fd >= 0) to its
 * creator (see struct kcred in ns.h).  chown clears the set-user-ID and
 * set-group-ID bits of a non-directory even when root calls it, so they
 * are put back: mode is what the kernel asked for, already stripped per
 * the creator's rights.  A failure is not the creator's fault: warn
 * once, keep the entry.  ns_lock held. */
static void give_to(int dirfd, const char *name, int fd, mode_t mode,
		    const struct kcred *who)
{
	static bool warned;
	struct stat dir, st;
	gid_t gid;
	int r;

	if (!who)
		return;
	r = fd >= 0 ? fstat(fd, &st)
		    : fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW);
	if (r < 0 || fstat(dirfd, &dir) < 0)
		return;
	gid = dir.st_mode & S_ISGID ? dir.st_gid : who->gid;
	if (st.st_uid == who->uid && st.st_gid == gid)
		return;
	r = fd >= 0 ? fchown(fd, who->uid, gid)
		    : fchownat(dirfd, name, who->uid, gid, AT_SYMLINK_NOFOLLOW);
	if (r < 0) {
		if (!warned)
			log_warn("cannot give new entries to their creator "
				 "(uid %u): %s; they stay the daemon's",
				 (unsigned)who->uid, strerror(errno));
		warned = true;
		return;
	}
	if (S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode) ||
	    !(mode & (S_ISUID | S_ISGID)))
		return;
	if (fd >= 0)
		(void)fchmod(fd, mode & 07777);
	else
		(void)fchmodat(dirfd, name, mode & 07777, AT_SYMLINK_NOFOLLOW);
}

/* A valid empty ciphertext (header + empty final chunk) for parent's
 * chain. */
static int empty_ciphertext(struct kfs *fs, struct kinode *parent,
			    uint8_t buf[CF_HEADER_SIZE + CF_TAG_SIZE])
{
	const struct cf_key *key;
	uint8_t iv[CF_IV_SIZE];
	int r;

	r = keycache_key_write(fs->kc, parent->chain, &key);
	if (!r)
		r = cf_iv_random(iv);
	if (r)
		return r;
	cf_header_build(iv, buf);
	return cf_seal_chunk(key, iv, 0, iv, 0, buf + CF_HEADER_SIZE);
}

/* Create name as a new regular file (O_EXCL), with content when buf is
 * not NULL, and hand it to who.  -EEXIST when it exists.  With keep, the
 * file stays open for reading and writing in *keep (a handle's data fd:
 * no second open of the name).  ns_lock held. */
static int new_file(struct kfs *fs, int dirfd, const char *name, mode_t mode,
		    const struct kcred *who, const uint8_t *buf, size_t len,
		    int *keep)
{
	/* O_NOATIME as inode_reopen asks it: the creator owns the file. */
	int acc = keep ? O_RDWR | O_NOATIME : O_WRONLY;
	int fd, r = 0;

	fd = inode_openat(fs, dirfd, name, acc | O_CREAT | O_EXCL | O_NOFOLLOW,
			  mode & 07777);
	if (fd < 0)
		return fd;
	if (buf)
		r = fdio_write_all(fd, buf, len, 0);
	if (!r)
		give_to(dirfd, name, fd, mode, who);
	if (keep && !r) {
		*keep = fd;
		return 0;
	}
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r)
		unlinkat(dirfd, name, 0);
	return r;
}

int ns_mknod(struct kfs *fs, struct kinode *parent, const char *name,
	     mode_t mode, dev_t rdev, const struct kcred *who)
{
	uint8_t buf[CF_HEADER_SIZE + CF_TAG_SIZE];
	bool enc =
	    S_ISREG(mode) && kind_at(fs, parent, name) == LAYOUT_ENCRYPTED;
	int r, pfd;

	if (layout_name_reserved(name))
		return -EPERM;
	if (enc) {
		r = empty_ciphertext(fs, parent, buf);
		if (r)
			return r;
	} else if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode) &&
		   !S_ISCHR(mode) && !S_ISBLK(mode)) {
		return -EINVAL;
	}
	pfd = inode_fd_get(fs, parent);
	if (pfd < 0)
		return pfd;
	pthread_mutex_lock(&fs->ns_lock);
	if (S_ISREG(mode)) {
		/* a file stored as it is starts with no bytes */
		r = new_file(fs, pfd, name, mode, who, enc ? buf : NULL,
			     sizeof(buf), NULL);
	} else {
		r = mknodat(pfd, name, mode, rdev) < 0 ? -errno : 0;
		if (!r)
			give_to(pfd, name, -1, mode, who);
	}
	pthread_mutex_unlock(&fs->ns_lock);
	inode_fd_put(fs, parent);
	return r;
}

int ns_create(struct kfs *fs, struct kinode *parent, const char *name,
	      mode_t mode, int flags, const struct kcred *who,
	      bool *created_out, int *datafd)
{
	uint8_t buf[CF_HEADER_SIZE + CF_TAG_SIZE];
	bool enc = kind_at(fs, parent, name) == LAYOUT_ENCRYPTED;
	bool readonly = (flags & O_ACCMODE) == O_RDONLY;
	const struct cf_key *key;
	struct stat st;
	int r, pfd;

	*created_out = false;
	if (layout_name_reserved(name))
		return -EPERM;
	/* No key, no file: fail before anything reaches the store.  A
	 * read-only create gets its empty ciphertext at once (no writer will
	 * ever finish it). */
	r = !enc       ? 0
	    : readonly ? empty_ciphertext(fs, parent, buf)
		       : keycache_key_write(fs->kc, parent->chain, &key);
	if (r)
		return r;
	pfd = inode_fd_get(fs, parent);
	if (pfd < 0)
		return pfd;
	pthread_mutex_lock(&fs->ns_lock);
	r = new_file(fs, pfd, name, mode, who, enc && readonly ? buf : NULL,
		     sizeof(buf), enc && !readonly ? datafd : NULL);
	if (r == -EEXIST && !(flags & O_EXCL)) {
		/* Made meanwhile by someone else: open that one. */
		r = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno
								     : 0;
		if (!r && !S_ISREG(st.st_mode))
			r = S_ISDIR(st.st_mode) ? -EISDIR : -EEXIST;
	} else if (!r) {
		*created_out = true;
	}
	pthread_mutex_unlock(&fs->ns_lock);
	inode_fd_put(fs, parent);
	return r;
}

void ns_create_undo(struct kfs *fs, struct kinode *parent, const char *name,
		    struct kinode *in)
{
	struct stat st;
	bool same;
	int pfd = inode_fd_get(fs, parent);

	if (pfd < 0)
		return;
	pthread_mutex_lock(&fs->ns_lock);
	same = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode) &&
	       (!in || (st.st_dev == in->dev && st.st_ino == in->ino));
	if (same && unlinkat(pfd, name, 0) < 0)
		same = false;
	pthread_mutex_unlock(&fs->ns_lock);
	inode_fd_put(fs, parent);
	if (same)
		name_gone(fs, &st, parent, name);
}

int ns_mkdir(struct kfs *fs, struct kinode *parent, const char *name,
	     mode_t mode, const struct kcred *who)
{
	int r, pfd;

	if (layout_name_reserved(name))
		return -EPERM;
	pfd = inode_fd_get(fs, parent);
	if (pfd < 0)
		return pfd;
	pthread_mutex_lock(&fs->ns_lock);
	r = mkdirat(pfd, name, mode) < 0 ? -errno : 0;
	if (!r)
		give_to(pfd, name, -1, mode, who);
	pthread_mutex_unlock(&fs->ns_lock);
	inode_fd_put(fs, parent);
	return r ? r : start_chain(fs, parent, name);
}

int ns_symlink(struct kfs *fs, struct kinode *parent, const char *name,
	       const char *target, const struct kcred *who)
{
	int r, pfd;

	if (layout_name_reserved(name))
		return -EPERM;
	pfd = inode_fd_get(fs, parent);
	if (pfd < 0)
		return pfd;
	pthread_mutex_lock(&fs->ns_lock);
	r = symlinkat(target, pfd, name) < 0 ? -errno : 0;
	if (!r)
		give_to(pfd, name, -1, 0, who);
	pthread_mutex_unlock(&fs->ns_lock);
	inode_fd_put(fs, parent);
	return r;
}

int ns_link(struct kfs *fs, struct kinode *in, struct kinode *newparent,
	    const char *newname)
{
	struct kind_fix fx;
	char proc[64];
	int r, fd, pfd;

	if (layout_name_reserved(newname))
		return -EPERM;
	if (in->chain != newparent->chain)
		return -EXDEV; /* the data is sealed under another key */
	if (in->type == S_IFREG && in->kind != kind_at(fs, newparent, newname))
		return -EXDEV; /* stored as another kind */
	fd = inode_fd_get(fs, in);
	if (fd < 0)
		return fd;
	pfd = inode_fd_get(fs, newparent);
	if (pfd < 0) {
		inode_fd_put(fs, in);
		return pfd;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	kind_fix_begin(fs, &fx, KIND_LINK, NULL, NULL, newparent, newname);
	pthread_mutex_lock(&fs->ns_lock);
	r = linkat(AT_FDCWD, proc, pfd, newname, AT_SYMLINK_FOLLOW) < 0 ? -errno
									: 0;
	pthread_mutex_unlock(&fs->ns_lock);
	kind_fix_end(fs, &fx);
	inode_fd_put(fs, newparent);
	inode_fd_put(fs, in);
	return r;
}

/* --- removing names ----------------------------------------------------- */

int ns_unlink(struct kfs *fs, struct kinode *parent, const char *name)
{
	struct kind_fix fx;
	struct stat st;
	int r = 0, pfd;

	if (layout_name_reserved(name))
		return -ENOENT;
	pfd = inode_fd_get(fs, parent);
	if (pfd < 0)
		return pfd;
	kind_fix_begin(fs, &fx, KIND_UNLINK, parent, name, NULL, NULL);
	pthread_mutex_lock(&fs->ns_lock);
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    unlinkat(pfd, name, 0) < 0)
		r = -errno;
	pthread_mutex_unlock(&fs->ns_lock);
	kind_fix_end(fs, &fx);
	inode_fd_put(fs, parent);
	if (!r)
		name_gone(fs, &st, parent, name);
	return r;
}

/* A directory about to be removed: -ENOTEMPTY if it holds anything but
 * kmsfs's own files (ENCRYPTION-INFO*, key check, temporaries), else
 * remove those so that rmdir can proceed.  ns_lock held. */
static int clear_own_entries(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (!r && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    !layout_name_reserved(de->d_name))
			r = -ENOTEMPTY;
	}
	if (!r) {
		rewinddir(d);
		while ((de = readdir(d))) {
			if (layout_name_reserved(de->d_name))
				unlinkat(dirfd, de->d_name, 0);
		}
	}
	closedir(d);
	return r;
}

int ns_rmdir(struct kfs *fs, struct kinode *parent, const char *name)
{
	struct chain *c = NULL;
	struct stat st;
	int r, fd, pfd;

	if (layout_name_reserved(name))
		return -ENOENT;
	/* A chain directory's key is forgotten with it. */
	r = ns_chain_at(fs, parent, name, true, &c);
	if (r && r != -ENOENT)
		return r;
	if (r || c == parent->chain)
		c = NULL;
	pfd = inode_fd_get(fs, parent);
	if (pfd < 0)
		return pfd;
	pthread_mutex_lock(&fs->ns_lock);
	fd =
	    inode_openat(fs, pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
	r = fd < 0 ? fd : clear_own_entries(fd);
	if (!r && fstat(fd, &st) < 0)
		r = -errno;
	if (!r && unlinkat(pfd, name, AT_REMOVEDIR) < 0)
		r = -errno;
	pthread_mutex_unlock(&fs->ns_lock);
	inode_fd_put(fs, parent);
	if (fd >= 0)
		close(fd);
	if (!r && c)
		keycache_chain_removed(fs->kc, c);
	if (!r)
		name_gone(fs, &st, parent, name);
	return r;
}

/* --- rename ------------------------------------------------------------- */

/* Would moving the entry at (from, name) to (to, newname) change the key
 * its data is sealed under?  Then the move would make it unreadable.  A
 * chain directory carries its key (its ENCRYPTION-INFO) along: it may
 * move to wherever a directory starts a chain, and nowhere else. */
static int check_move(struct kfs *fs, struct kinode *from, const char *name,
		      struct kinode *to, const char *newname, struct stat *st)
{
	char path[NS_PATH_MAX];
	bool src_chain = false, dst_chain = false;
	struct chain *a, *b;
	int r, fd = inode_fd_get(fs, from);

	if (fd < 0)
		return fd;
	r = fstatat(fd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	inode_fd_put(fs, from);
	if (r)
		return r;
	if (S_ISDIR(st->st_mode)) {
		r = starts_chain(fs, from, name, path, sizeof(path),
				 &src_chain);
		if (!r)
			r = starts_chain(fs, to, newname, path, sizeof(path),
					 &dst_chain);
		if (r)
			return r;
		if (src_chain || dst_chain)
			return src_chain && dst_chain ? 0 : -EXDEV;
	}
	r = ns_chain_at(fs, from, name, S_ISDIR(st->st_mode), &a);
	if (!r)
		r = ns_chain_at(fs, to, newname, S_ISDIR(st->st_mode), &b);
	if (!r && a != b)
		r = -EXDEV;
	/* A file stored as one kind (encrypted, plaintext, checksum) must
	 * not take a name of another: the caller copies instead. */
	if (!r && S_ISREG(st->st_mode) &&
	    kind_at(fs, from, name) != kind_at(fs, to, newname))
		r = -EXDEV;
	return r;
}

/* A directory replaced by a rename must be empty, as for rmdir: remove
 * kmsfs's own files from it first (-ENOTEMPTY when it holds anything
 * else).  ns_lock held. */
static int clear_target_locked(struct kfs *fs, int nfd, const char *newname)
{
	int fd, r;

	fd = inode_openat(fs, nfd, newname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW,
			  0);
	if (fd < 0)
		return fd;
	r = clear_own_entries(fd);
	close(fd);
	return r;
}

int ns_rename(struct kfs *fs, struct kinode *parent, const char *name,
	      struct kinode *newparent, const char *newname, unsigned flags)
{
	struct stat src, dst;
	bool had_dst, xchg = flags & RENAME_EXCHANGE, over_dir;
	struct chain *gone = NULL;
	struct kind_fix fx;
	int r, fd, nfd;

	if (layout_name_reserved(name) || layout_name_reserved(newname))
		return -EPERM;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	r = check_move(fs, parent, name, newparent, newname, &src);
	if (r)
		return r;
	nfd = inode_fd_get(fs, newparent);
	if (nfd < 0)
		return nfd;
	had_dst = fstatat(nfd, newname, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	if (had_dst && xchg)
		r = check_move(fs, newparent, newname, parent, name, &dst);
	fd = r ? r : inode_fd_get(fs, parent);
	if (fd < 0) {
		inode_fd_put(fs, newparent);
		return fd;
	}
	over_dir =
	    had_dst && !flags && S_ISDIR(src.st_mode) && S_ISDIR(dst.st_mode);
	/* A chain directory replaced by another takes its key along. */
	if (over_dir && (ns_chain_at(fs, newparent, newname, true, &gone) ||
			 gone == newparent->chain))
		gone = NULL;
	kind_fix_begin(fs, &fx, xchg ? KIND_EXCHANGE : KIND_RENAME, parent,
		       name, newparent, newname);
	pthread_mutex_lock(&fs->ns_lock);
	r = over_dir ? clear_target_locked(fs, nfd, newname) : 0;
	if (!r && renameat2(fd, name, nfd, newname, flags) < 0)
		r = -errno;
	pthread_mutex_unlock(&fs->ns_lock);
	kind_fix_end(fs, &fx);
	inode_fd_put(fs, parent);
	inode_fd_put(fs, newparent);
	if (r)
		return r;
	if (gone)
		keycache_chain_removed(fs->kc, gone);
	if (had_dst && !xchg)
		name_gone(fs, &dst, newparent, newname);
	if (had_dst && xchg)
		name_moved(fs, &dst, parent, name);
	name_moved(fs, &src, newparent, newname);
	return 0;
}

/* --- crash-safe replacement: struct kfile_host over an inode ------------ */

static int host_mktemp(void *ctx, int *fd_out, char *name, size_t namelen)
{
	struct kinode *in = ctx, *dir;
	struct kfs *fs = in->fs;
	uint8_t rnd[8];
	int dirfd, fd;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	snprintf(name, namelen, "%s%02x%02x%02x%02x%02x%02x%02x%02x",
		 LAYOUT_TMP_PREFIX, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		 rnd[5], rnd[6], rnd[7]);
	pthread_mutex_lock(&fs->ns_lock);
	/* Beside the file when its name is known, else at the root (the
	 * new version is then copied back, see host_replace). */
	dir = in->parent ? in->parent : fs->root;
	dirfd = inode_reopen(fs, dir, O_RDONLY | O_DIRECTORY);
	fd = dirfd < 0 ? dirfd
		       : inode_openat(fs, dirfd, name,
				      O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		int r = fd;

		pthread_mutex_unlock(&fs->ns_lock);
		if (dirfd >= 0)
			close(dirfd);
		return r;
	}
	pthread_mutex_unlock(&fs->ns_lock);
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

/* Can the temporary replace the file (fd) by a rename?  Only when the
 * file's one name is known and in the temporary's directory; ns_lock
 * held. */
static bool replaceable_locked(struct kfs *fs, struct kinode *in, int fd,
			       struct stat *cur)
{
	struct stat named;
	bool ok;
	int pfd;

	if (!in->parent || fstat(fd, cur) < 0 || cur->st_nlink != 1)
		return false;
	pfd = inode_fd_get(fs, in->parent);
	if (pfd < 0)
		return false;
	ok = same_dir(pfd, in->tmp_dirfd) &&
	     fstatat(pfd, in->name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
	     named.st_dev == cur->st_dev && named.st_ino == cur->st_ino;
	inode_fd_put(fs, in->parent);
	return ok;
}

static int host_replace(void *ctx, const char *tmpname, int tmpfd)
{
	struct kinode *in = ctx;
	struct kfs *fs = in->fs;
	struct kind_fix fx;
	struct stat cur;
	int r, fd = inode_fd_get(fs, in);

	if (fd < 0)
		return fd;
	/* Slow preparation first, outside the namespace lock. */
	if (fstat(fd, &cur) < 0 || cur.st_nlink != 1) {
		inode_fd_put(fs, in);
		return -ENOTSUP;
	}
	copy_xattrs(fd, tmpfd);
	/* chown first: it clears set-user-ID, chmod then restores it. */
	(void)fchown(tmpfd, cur.st_uid, cur.st_gid);
	(void)fchmod(tmpfd, cur.st_mode & 07777);
	kind_fix_begin_replace(fs, &fx, in);
	pthread_mutex_lock(&fs->ns_lock);
	if (!replaceable_locked(fs, in, fd, &cur)) {
		pthread_mutex_unlock(&fs->ns_lock);
		kind_fix_end(fs, &fx);
		inode_fd_put(fs, in);
		return -ENOTSUP;
	}
	/* The name is in tmp_dirfd's directory (checked above). */
	r = renameat(in->tmp_dirfd, tmpname, in->tmp_dirfd, in->name) < 0
		? -errno
		: 0;
	pthread_mutex_unlock(&fs->ns_lock);
	kind_fix_end(fs, &fx);
	inode_fd_put(fs, in);
	if (r) {
		/* tmp_dirfd stays: host_discard removes the temporary. */
		log_err("rename of a re-encrypted file failed: %s",
			strerror(-r));
		return r;
	}
	r = inode_repoint(fs, in, tmpfd);
	if (fsync(in->tmp_dirfd) < 0 && !r)
		r = -EIO;
	close(in->tmp_dirfd);
	in->tmp_dirfd = -1;
	return r;
}

/* A new file a full disk left with nothing valid in it goes. */
static int host_remove(void *ctx)
{
	struct kinode *in = ctx;
	struct kfs *fs = in->fs;
	struct kinode *parent;
	struct stat st;
	int r = -ENOENT, pfd;

	pthread_mutex_lock(&fs->ns_lock);
	parent = in->parent;
	pfd = parent ? inode_fd_get(fs, parent) : -ENOENT;
	if (pfd >= 0) {
		if (fstatat(pfd, in->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == in->dev && st.st_ino == in->ino)
			r = unlinkat(pfd, in->name, 0) < 0 ? -errno : 0;
		inode_fd_put(fs, parent);
	}
	if (!r) {
		set_name_locked(fs, in, NULL, NULL);
		atomic_store(&in->removed, true);
	}
	pthread_mutex_unlock(&fs->ns_lock);
	return r;
}

/* The directory of the file's name, for its journal. */
static int host_dirfd(void *ctx)
{
	struct kinode *in = ctx;
	struct kfs *fs = in->fs;
	int fd = -ENOENT;

	pthread_mutex_lock(&fs->ns_lock);
	if (in->parent)
		fd = inode_reopen(fs, in->parent, O_RDONLY | O_DIRECTORY);
	pthread_mutex_unlock(&fs->ns_lock);
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

void ns_host_init(struct kinode *in)
{
	in->tmp_dirfd = -1;
	in->host.ctx = in;
	in->host.mktemp = host_mktemp;
	in->host.replace = host_replace;
	in->host.discard = host_discard;
	in->host.dirfd = host_dirfd;
	in->host.remove = host_remove;
}
