/*
 * storelock.h - one kmsfs mount per backing store.
 *
 * Owns: the lock file LAYOUT_LOCK_NAME (".kmsfs-lock", a reserved name:
 * the mount neither shows nor lets anyone create, rename or remove it) at
 * the root of the backing store.  The serving process holds an flock(2)
 * on it for its whole life: the lock belongs to the open file, so it
 * survives the daemon's fork, and the kernel drops it when the process
 * dies, so a crash never leaves a store locked.  The file names its
 * holder ("pid=N" and "mountpoint=PATH" lines) for the refusal message of
 * a second mount.  A clean release removes it; after a crash it stays,
 * unlocked, and the next mount takes it over.
 * Must not know: FUSE, keys, the file format.
 * Thread-safety: taken and released once per process, by one thread.
 */
#ifndef KMSFS_STORELOCK_H
#define KMSFS_STORELOCK_H

struct storelock;

/* Lock the store at backing for a mount on mountpoint (both absolute).
 * Returns 0 with *out set (NULL if the store is read-only to us and has
 * no lock file: no mount can change it, so it is mounted unlocked, with
 * one warning), or, with one line logged: -EBUSY another process holds
 * the lock (the line names its mount point and pid, when it can be
 * read; a holder whose mount point is no longer mounted, or whose named
 * pid is gone, is given up to 2 s to finish or record itself first),
 * -ELOOP the lock file is a symlink, -EINVAL it is not a regular file,
 * -EAGAIN it kept being replaced while locking, or another -errno from
 * opening or writing it. */
int storelock_acquire(const char *backing, const char *mountpoint,
		      struct storelock **out);

/* After daemonizing: record the calling process as the holder.
 * Returns 0 or -errno (logged).  NULL: nothing to do. */
int storelock_set_pid(struct storelock *l);

/* Remove the lock file (if it is still ours) and drop the lock.  Call
 * when nothing more will be written to the store.  NULL ok. */
void storelock_release(struct storelock *l);

#endif
