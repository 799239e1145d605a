/*
 * inode_fd.c - the backing fds of inodes: file handles, a bounded cache
 * of idle O_PATH fds, reopening, and what happens at the fd limit.
 *
 * Design (see fs/inode.h and README "Scale"): an inode's O_PATH fd is
 * open while a thread uses it (fd_users > 0: inode_fd_get until
 * inode_fd_put, or an open file), and afterwards stays in an LRU of idle
 * fds until the cache is full.  Only an idle fd is ever closed, under
 * kfs.fd_lock, so no thread can use a number that was closed or handed
 * out again.  A closed fd is reopened from the inode's file handle with
 * open_by_handle_at on the backing root.  Inodes without a handle keep
 * their fd until they are freed.
 */
#include "inode.h"

#include "kfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"

#define FD_CACHE_MIN 16
#define FD_CACHE_MAX 65536
#define EVICT_BATCH 64

union handle_buf {
	struct file_handle fh;
	char bytes[sizeof(struct file_handle) + MAX_HANDLE_SZ];
};

static size_t handle_size(const struct file_handle *fh)
{
	return sizeof(*fh) + fh->handle_bytes;
}

/* --- the cache of idle fds (fd_lock held) ----------------------------- */

static void lru_unlink(struct kfs *fs, struct kinode *in)
{
	if (in->lru_prev)
		in->lru_prev->lru_next = in->lru_next;
	else
		fs->lru_head = in->lru_next;
	if (in->lru_next)
		in->lru_next->lru_prev = in->lru_prev;
	else
		fs->lru_tail = in->lru_prev;
	in->lru_prev = in->lru_next = NULL;
}

static void lru_push(struct kfs *fs, struct kinode *in)
{
	in->lru_prev = NULL;
	in->lru_next = fs->lru_head;
	if (fs->lru_head)
		fs->lru_head->lru_prev = in;
	else
		fs->lru_tail = in;
	fs->lru_head = in;
}

/* Is in's fd in the cache of idle ones? */
static bool idle(const struct kinode *in)
{
	return in->fd >= 0 && in->fh && in->fd_users == 0;
}

/* Take in's fd out of the cache's books / put it back (fd_lock held). */
static void unbook(struct kfs *fs, struct kinode *in)
{
	if (idle(in))
		lru_unlink(fs, in);
	if (in->fd >= 0 && in->fh)
		fs->fd_cached--;
}

static void book(struct kfs *fs, struct kinode *in)
{
	if (in->fd >= 0 && in->fh)
		fs->fd_cached++;
	if (idle(in))
		lru_push(fs, in);
}

static void use_locked(struct kfs *fs, struct kinode *in)
{
	if (idle(in))
		lru_unlink(fs, in);
	in->fd_users++;
}

/* Take up to max idle fds out of the cache while more than keep are
 * open; the caller closes them after dropping fd_lock. */
static size_t evict_locked(struct kfs *fs, size_t keep, int *fds, size_t max)
{
	size_t n = 0;

	while (n < max && fs->fd_cached > keep && fs->lru_tail) {
		struct kinode *in = fs->lru_tail;

		lru_unlink(fs, in);
		fds[n++] = in->fd;
		in->fd = -1;
		fs->fd_cached--;
	}
	return n;
}

static void close_all(const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Close every idle fd (the process ran out of them). */
static void reclaim(struct kfs *fs)
{
	int fds[EVICT_BATCH];
	size_t n;

	do {
		pthread_mutex_lock(&fs->fd_lock);
		n = evict_locked(fs, 0, fds, EVICT_BATCH);
		pthread_mutex_unlock(&fs->fd_lock);
		close_all(fds, n);
	} while (n == EVICT_BATCH);
}

/* Give in the O_PATH fd (taken over) unless it has one already; with
 * use, also take a use of it.  Returns in's fd. */
static int install(struct kfs *fs, struct kinode *in, int fd, bool use)
{
	int spare = -1, fds[4], ret;
	size_t n;

	pthread_mutex_lock(&fs->fd_lock);
	if (in->fd >= 0) {
		spare = fd;
		if (use)
			use_locked(fs, in);
	} else {
		in->fd = fd;
		in->fd_users += use;
		book(fs, in);
	}
	ret = in->fd;
	n = evict_locked(fs, fs->fd_cap, fds, 4);
	pthread_mutex_unlock(&fs->fd_lock);
	if (spare >= 0)
		close(spare);
	close_all(fds, n);
	return ret;
}

/* --- the fd limit ------------------------------------------------------- */

/* One line for a failure at the fd limit; further ones within a second
 * are counted and reported with the next line (or at unmount). */
static void log_limit(struct kfs *fs, int err)
{
	struct timespec now;
	unsigned long skipped;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&fs->fd_lock);
	if (now.tv_sec - fs->fd_log_at < 1) {
		fs->fd_log_skip++;
		pthread_mutex_unlock(&fs->fd_lock);
		return;
	}
	skipped = fs->fd_log_skip;
	fs->fd_log_skip = 0;
	fs->fd_log_at = now.tv_sec;
	pthread_mutex_unlock(&fs->fd_lock);
	if (skipped)
		log_err("%lu more operations failed at the open file limit",
			skipped);
	log_err("an operation failed: out of file descriptors (%s; open file "
		"limit %lu); raise the limit (ulimit -n, LimitNOFILE=) or "
		"open fewer files at once",
		strerror(err), fs->fd_limit);
}

void inode_fds_release(struct kfs *fs)
{
	if (fs->fd_log_skip)
		log_err("%lu more operations failed at the open file limit",
			fs->fd_log_skip);
}

/* After an open failed with errno: true when it is worth one more try
 * (out of fds for the first time: the idle ones were closed).  When out
 * of fds for good, logs.  errno is kept. */
static bool retry_open(struct kfs *fs, int *tries)
{
	int err = errno;

	if (err != EMFILE && err != ENFILE)
		return false;
	if ((*tries)++ == 0) {
		reclaim(fs);
		errno = err;
		return true;
	}
	log_limit(fs, err);
	errno = err;
	return false;
}

static int open_handle(struct kfs *fs, struct file_handle *fh, int flags)
{
	int fd, tries = 0;

	while ((fd = open_by_handle_at(fs->mountfd, fh, flags | O_CLOEXEC)) <
		   0 &&
	       retry_open(fs, &tries))
		;
	return fd < 0 ? -errno : fd;
}

int inode_openat(struct kfs *fs, int dirfd, const char *name, int flags,
		 mode_t mode)
{
	int fd, tries = 0;

	while ((fd = openat(dirfd, name, flags | O_CLOEXEC, mode)) < 0 &&
	       retry_open(fs, &tries))
		;
	return fd < 0 ? -errno : fd;
}

/* --- using an inode's fd ------------------------------------------------ */

/* With fd_lock held: take a use of in's open fd (returned), or copy its
 * handle to h and return -1, or -ESTALE when it has neither. */
static int use_or_handle(struct kfs *fs, struct kinode *in, union handle_buf *h)
{
	if (in->fd >= 0) {
		use_locked(fs, in);
		return in->fd;
	}
	if (!in->fh)
		return -ESTALE;
	memcpy(h, in->fh, handle_size(in->fh));
	return -1;
}

int inode_fd_get(struct kfs *fs, struct kinode *in)
{
	union handle_buf h;
	int fd;

	pthread_mutex_lock(&fs->fd_lock);
	fd = use_or_handle(fs, in, &h);
	pthread_mutex_unlock(&fs->fd_lock);
	if (fd != -1)
		return fd;
	fd = open_handle(fs, &h.fh, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return fd;
	return install(fs, in, fd, true);
}

void inode_fd_put(struct kfs *fs, struct kinode *in)
{
	int fds[4];
	size_t n = 0;

	pthread_mutex_lock(&fs->fd_lock);
	if (--in->fd_users == 0 && idle(in)) {
		lru_push(fs, in);
		n = evict_locked(fs, fs->fd_cap, fds, 4);
	}
	pthread_mutex_unlock(&fs->fd_lock);
	close_all(fds, n);
}

static int reopen_flags(struct kfs *fs, struct kinode *in, int flags)
{
	union handle_buf h;
	char proc[64];
	int fd;

	pthread_mutex_lock(&fs->fd_lock);
	fd = use_or_handle(fs, in, &h);
	pthread_mutex_unlock(&fs->fd_lock);
	if (fd < -1)
		return fd;
	if (fd == -1)
		return open_handle(fs, &h.fh, flags);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	fd = inode_openat(fs, AT_FDCWD, proc, flags, 0);
	inode_fd_put(fs, in);
	return fd;
}

int inode_reopen(struct kfs *fs, struct kinode *in, int flags)
{
	int fd;

	/* kmsfs's own reads (headers, re-encryption, a file's chunks) must
	 * not move the backing atime, which holds the user's: with relatime
	 * a read after touch -a into the past would set it to now.  Only
	 * the owner (or CAP_FOWNER) may ask for that. */
	if (!(flags & O_DIRECTORY)) {
		fd = reopen_flags(fs, in, flags | O_NOATIME);
		if (fd != -EPERM)
			return fd;
	}
	return reopen_flags(fs, in, flags);
}

/* --- for fs/inode.c ----------------------------------------------------- */

/* The handle of the object at fd, or NULL when it cannot be reopened by
 * one (handles off, another mount, a file system without them). */
static struct file_handle *make_handle(struct kfs *fs, int fd)
{
	union handle_buf h;
	struct file_handle *fh;
	int mount_id;

	if (fs->mountfd < 0)
		return NULL;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &h.fh, &mount_id, AT_EMPTY_PATH) < 0 ||
	    mount_id != fs->mount_id)
		return NULL;
	fh = malloc(handle_size(&h.fh));
	if (fh)
		memcpy(fh, &h, handle_size(&h.fh));
	return fh;
}

void inode_fd_offer(struct kfs *fs, struct kinode *in, int fd, bool fresh)
{
	if (fresh)
		in->fh = make_handle(fs, fd); /* not shared yet */
	install(fs, in, fd, false);
}

void inode_fd_drop(struct kfs *fs, struct kinode *in)
{
	int fd;

	pthread_mutex_lock(&fs->fd_lock);
	unbook(fs, in);
	fd = in->fd;
	in->fd = -1;
	pthread_mutex_unlock(&fs->fd_lock);
	if (fd >= 0)
		close(fd);
	free(in->fh);
	in->fh = NULL;
}

int inode_fd_replace(struct kfs *fs, struct kinode *in, int fd)
{
	struct file_handle *fh = make_handle(fs, fd), *tmp;
	int r = 0, spare = -1;

	pthread_mutex_lock(&fs->fd_lock);
	unbook(fs, in);
	if (in->fd < 0) {
		in->fd = fd;
	} else {
		/* dup3 onto the same number: a thread using in->fd sees
		 * the old file or the new one, never a closed number. */
		spare = fd;
		if (dup3(fd, in->fd, O_CLOEXEC) < 0)
			r = -errno;
	}
	if (!r) {
		tmp = in->fh;
		in->fh = fh;
		fh = tmp;
	}
	book(fs, in);
	pthread_mutex_unlock(&fs->fd_lock);
	free(fh);
	if (spare >= 0)
		close(spare);
	return r;
}

/* Can objects below the root be reopened by handle?  Needs
 * CAP_DAC_READ_SEARCH and a backing file system that exports handles. */
static int probe_handles(struct kfs *fs)
{
	union handle_buf h;
	int fd;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fs->rootfd, "", &h.fh, &fs->mount_id,
			      AT_EMPTY_PATH) < 0)
		return -errno;
	fs->mountfd =
	    openat(fs->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->mountfd < 0)
		return -errno;
	fd = open_by_handle_at(fs->mountfd, &h.fh, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;

		close(fs->mountfd);
		fs->mountfd = -1;
		return r;
	}
	close(fd);
	return 0;
}

int inode_fds_init(struct kfs *fs)
{
	struct rlimit rl;
	int r;

	fs->fd_log_at = -10;
	fs->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
	fs->fd_cap = fs->fd_limit / 4;
	if (fs->fd_cap < FD_CACHE_MIN)
		fs->fd_cap = FD_CACHE_MIN;
	if (fs->fd_cap > FD_CACHE_MAX)
		fs->fd_cap = FD_CACHE_MAX;
	r = probe_handles(fs);
	if (r)
		log_info(
		    "the backing store gives no usable file handles (%s): "
		    "kmsfs keeps one fd per cached inode, so the mount "
		    "holds about %lu files at a time (the open file limit)",
		    strerror(-r), fs->fd_limit);
	else
		log_debug("backing fds: reopened by file handle, at most %zu "
			  "idle ones kept (open file limit %lu)",
			  fs->fd_cap, fs->fd_limit);
	return 0;
}
