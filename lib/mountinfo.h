/*
 * mountinfo.h - what is mounted where, from /proc/self/mountinfo.
 *
 * Owns: parsing mountinfo lines (octal escapes included) and finding the
 * topmost mount on a path.  Must not know: which mounts are kmsfs's, or
 * what to do about them (callers decide).
 * Thread-safety: reentrant.
 */
#ifndef KMSFS_MOUNTINFO_H
#define KMSFS_MOUNTINFO_H

#include <stddef.h>

struct mountinfo_entry {
	char fstype[64];  /* e.g. "fuse.kmsfs", "tmpfs" */
	char source[256]; /* e.g. the backing store; "none" */
	char dev[24];	  /* its st_dev as "major:minor", e.g. "0:38" */
};

/* The topmost mount whose mount point is path (absolute and canonical,
 * as realpath() gives it): its type, source and device, truncated to fit.
 * Returns 0, -ENOENT if nothing is mounted on path, or -errno when
 * /proc/self/mountinfo cannot be read (nothing logged). */
int mountinfo_find(const char *path, struct mountinfo_entry *out);

#endif
