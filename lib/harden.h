/*
 * harden.h - make the process a poor place to steal keys from.
 *
 * Owns: process-wide settings that must be in place before the first key
 * is read or unwrapped: no core dumps (RLIMIT_CORE 0), not dumpable or
 * ptrace-attachable by other processes of the same user
 * (PR_SET_DUMPABLE 0), OpenSSL's secure heap (mlock'd pages that back
 * every struct secret), and a file-descriptor limit raised to the hard
 * limit for the filesystem.
 * Must not know: keys, FUSE, configuration.
 * Thread-safety: call once, from main's thread, before starting threads.
 */
#ifndef KMSFS_HARDEN_H
#define KMSFS_HARDEN_H

#define HARDEN_SECURE_HEAP (1u << 20) /* bytes of secure heap */
#define HARDEN_SECURE_MIN 32	      /* smallest secure allocation */

/*
 * Apply the settings above.  Returns 0, or a negative errno (logged) if
 * core dumps could not be disabled; callers must not load keys then.
 * A secure heap that cannot be mlock'd (RLIMIT_MEMLOCK too low) or the
 * descriptor limit not being raised is not an error: logged at debug
 * level.  Calling it again is harmless.
 */
int harden_process(void);

/*
 * Call in the child after fork() (fuse_daemonize): memory locks are not
 * inherited, so the secure heap is mlock'd again.  Returns 0, or a
 * negative errno logged at debug level (keys then may be swapped out but
 * are still excluded from core dumps).  Does nothing without a secure
 * heap.
 */
int harden_after_fork(void);

#endif
