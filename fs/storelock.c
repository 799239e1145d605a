/*
 * storelock.c - the store's lock file: flock(2), not fcntl(2) locks,
 * because an fcntl lock belongs to the process and would stay behind
 * with the parent when the daemon forks; an flock belongs to the open
 * file, which the child inherits.
 *
 * A clean release unlinks the file while still holding the lock, so a
 * second mount may lock a file that no longer has a name; it checks
 * after locking that the name still leads to the locked file, and
 * starts over if not.
 */
#include "storelock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "../lib/mountinfo.h"
#include "layout.h"

#define SL_NAME LAYOUT_LOCK_NAME
#define SL_TRIES 8		/* lock attempts while the file is replaced */
#define SL_WAIT_MS 2000		/* for a holder that is going or forking */
#define SL_INFO (PATH_MAX + 64) /* the lock file's content, at most */

/* sl_lock_once: besides 0 (locked) and -errno */
enum { SL_NOFILE_RO = 1, SL_REPLACED = 2 };

struct storelock {
	int dirfd; /* O_PATH of the backing store */
	int fd;	   /* the lock file, flock'd */
	bool writable;
	char *backing;
	char *mountpoint;
};

static void sl_free(struct storelock *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	if (l->dirfd >= 0)
		close(l->dirfd);
	free(l->backing);
	free(l->mountpoint);
	free(l);
}

/* Does the name still lead to the file we hold open? */
static bool sl_ours(const struct storelock *l)
{
	struct stat a, b;

	return fstat(l->fd, &a) == 0 &&
	       fstatat(l->dirfd, SL_NAME, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Open (creating) the lock file.  A store we may not write is opened
 * read-only.  0, SL_NOFILE_RO if it is read-only and there is no lock
 * file, or -errno (logged).  O_NONBLOCK: a fifo planted there must not
 * hang us. */
static int sl_open(struct storelock *l)
{
	int flags = O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
	struct stat st;
	int r;

	l->fd = openat(l->dirfd, SL_NAME, flags | O_RDWR | O_CREAT, 0600);
	l->writable = l->fd >= 0;
	if (l->fd < 0 && (errno == EROFS || errno == EACCES || errno == EPERM))
		l->fd = openat(l->dirfd, SL_NAME, flags | O_RDONLY);
	if (l->fd < 0 && !l->writable && errno == ENOENT)
		return SL_NOFILE_RO;
	if (l->fd < 0 || fstat(l->fd, &st) < 0) {
		r = -errno;
		log_err("cannot open lock file %s/%s: %s%s", l->backing,
			SL_NAME, strerror(-r),
			r == -ELOOP ? " (it is a symlink; remove it)" : "");
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("lock file %s/%s is not a regular file; remove it",
			l->backing, SL_NAME);
		return -EINVAL;
	}
	return 0;
}

/* The holder named in the lock file: its pid (0 if none) and mount point
 * (control characters shown as '?'). */
static long sl_holder(int fd, char *mnt, size_t n)
{
	char buf[SL_INFO], *line, *nl;
	size_t got;
	long pid = 0;

	mnt[0] = '\0';
	if (fdio_read_full(fd, (uint8_t *)buf, sizeof(buf) - 1, 0, &got))
		return 0;
	buf[got] = '\0';
	for (line = buf; line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(line, "pid=", 4) == 0)
			pid = strtol(line + 4, NULL, 10);
		else if (strncmp(line, "mountpoint=", 11) == 0)
			snprintf(mnt, n, "%s", line + 11);
	}
	for (char *p = mnt; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return pid > 0 ? pid : 0;
}

static bool sl_alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void sl_report(const struct storelock *l, long pid, const char *mnt)
{
	if (mnt[0] && pid)
		log_err("backing store %s is already mounted on %s by kmsfs "
			"(pid %ld); unmount that first ('kmsfs umount %s')",
			l->backing, mnt, pid, mnt);
	else if (mnt[0])
		log_err("backing store %s is already mounted on %s by another "
			"kmsfs process; unmount that first ('kmsfs umount %s')",
			l->backing, mnt, mnt);
	else
		log_err("backing store %s is in use by another kmsfs process "
			"(it holds %s/%s)",
			l->backing, l->backing, SL_NAME);
}

/* Take the lock, waiting a moment while the holder looks transient: its
 * mount point is no longer mounted (it is finishing after an unmount, so
 * `kmsfs umount && kmsfs mount` works), or the pid it names is gone (a
 * daemonizing holder records its own pid just after its parent exits).
 * 0 locked, -EBUSY held (one line naming the holder), -errno (logged). */
static int sl_lock_wait(const struct storelock *l)
{
	struct timespec ten_ms = {0, 10 * 1000 * 1000};
	struct mountinfo_entry me;
	char mnt[SL_INFO];
	bool alive = false;
	long pid;

	for (int i = 0; i <= SL_WAIT_MS / 10; i++) {
		if (flock(l->fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK) {
			int r = -errno;

			log_err("cannot lock %s/%s: %s", l->backing, SL_NAME,
				strerror(-r));
			return r;
		}
		pid = sl_holder(l->fd, mnt, sizeof(mnt));
		alive = pid && sl_alive(pid);
		if ((!pid || alive) &&
		    (!mnt[0] || mountinfo_find(mnt, &me) != -ENOENT))
			break;
		nanosleep(&ten_ms, NULL);
	}
	sl_report(l, alive ? pid : 0, mnt);
	return -EBUSY;
}

/* One attempt: 0 locked, SL_NOFILE_RO (read-only store without a lock
 * file), SL_REPLACED (the name now leads elsewhere: try again), or -errno
 * (logged). */
static int sl_lock_once(struct storelock *l)
{
	int r = sl_open(l);

	if (!r)
		r = sl_lock_wait(l);
	if (r)
		return r;
	if (sl_ours(l))
		return 0;
	close(l->fd);
	l->fd = -1;
	return SL_REPLACED;
}

static int sl_write(struct storelock *l)
{
	char buf[SL_INFO];
	int n, r;

	n = snprintf(buf, sizeof(buf), "pid=%ld\nmountpoint=%s\n",
		     (long)getpid(), l->mountpoint);
	if (n < 0 || (size_t)n >= sizeof(buf))
		r = -ENAMETOOLONG;
	else if (ftruncate(l->fd, 0) < 0)
		r = -errno;
	else
		r = fdio_write_all(l->fd, (const uint8_t *)buf, (size_t)n, 0);
	if (r)
		log_err("cannot write lock file %s/%s: %s", l->backing, SL_NAME,
			strerror(-r));
	return r;
}

int storelock_acquire(const char *backing, const char *mountpoint,
		      struct storelock **out)
{
	struct storelock *l = calloc(1, sizeof(*l));
	int r = -ENOMEM;

	*out = NULL;
	if (!l)
		return r;
	l->fd = l->dirfd = -1;
	l->backing = strdup(backing);
	l->mountpoint = strdup(mountpoint);
	if (!l->backing || !l->mountpoint)
		goto out;
	l->dirfd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0) {
		r = -errno;
		log_err("backing store %s: %s", backing, strerror(-r));
		goto out;
	}
	r = SL_REPLACED;
	for (int i = 0; i < SL_TRIES && r == SL_REPLACED; i++)
		r = sl_lock_once(l);
	if (r == SL_REPLACED) {
		r = -EAGAIN;
		log_err("lock file %s/%s keeps being replaced; is another "
			"kmsfs mounting or unmounting this store?",
			backing, SL_NAME);
	}
	if (r == SL_NOFILE_RO) {
		log_warn("backing store %s is read-only here: mounting it "
			 "without a lock",
			 backing);
		r = 0;
		goto out;
	}
	if (!r && l->writable && (r = sl_write(l)) != 0) {
		storelock_release(l);
		return r;
	}
	if (!r) {
		*out = l;
		l = NULL;
	}
out:
	sl_free(l);
	return r;
}

int storelock_set_pid(struct storelock *l)
{
	return l && l->writable ? sl_write(l) : 0;
}

void storelock_release(struct storelock *l)
{
	if (!l)
		return;
	if (l->fd >= 0 && l->writable && sl_ours(l) &&
	    unlinkat(l->dirfd, SL_NAME, 0) < 0)
		log_warn("cannot remove lock file %s/%s: %s", l->backing,
			 SL_NAME, strerror(errno));
	sl_free(l);
}
