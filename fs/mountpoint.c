/*
 * mountpoint.c - refuse mount points that would hide something or stack.
 *
 * "Already mounted" comes from /proc/self/mountinfo (it sees bind mounts
 * of the parent's own file system too), backed by a device comparison
 * with the parent.  A dead FUSE mount may still answer a plain stat from
 * the kernel's attribute cache, so liveness is probed with a statx that
 * forces a round trip to the daemon.  The read-ahead window is set through
 * the mount's backing device info in sysfs, found by mountinfo's device.
 */
#include "mountpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/mountinfo.h"

static bool mp_is_dead(int err)
{
	return err == ENOTCONN || err == ECONNABORTED;
}

/* fstype: from mountinfo, or NULL if unknown. */
static int mp_dead(const char *path, const char *fstype)
{
	if (fstype && strcmp(fstype, "fuse.kmsfs") == 0)
		log_err("mount point %s is a dead kmsfs mount (its daemon is "
			"gone); run 'kmsfs umount %s' (or 'fusermount3 -u %s') "
			"first",
			path, path, path);
	else
		log_err("mount point %s is a dead FUSE mount (type %s, its "
			"daemon is gone); run 'fusermount3 -u %s' first",
			path, fstype ? fstype : "unknown", path);
	return -ENOTCONN;
}

/* path is a mount point: dead (a FUSE daemon died) or live? */
static int mp_mounted(const char *path, const struct mountinfo_entry *me)
{
	struct statx stx;

	if (strncmp(me->fstype, "fuse", 4) == 0 &&
	    statx(AT_FDCWD, path, AT_STATX_FORCE_SYNC, STATX_TYPE, &stx) < 0 &&
	    mp_is_dead(errno))
		return mp_dead(path, me->fstype);
	log_err("mount point %s is already a mount point (%s from %s); "
		"unmount that first or choose another directory",
		path, me->fstype, me->source);
	return -EBUSY;
}

/* Same device as the parent?  Catches a mount mountinfo did not show. */
static int mp_other_device(const char *path, const struct stat *st)
{
	char parent[PATH_MAX];
	struct stat pst;

	if (snprintf(parent, sizeof(parent), "%s/..", path) >=
		(int)sizeof(parent) ||
	    stat(parent, &pst) < 0 || pst.st_dev == st->st_dev)
		return 0;
	log_err("mount point %s is already a mount point (another file "
		"system than its parent); unmount that first or choose "
		"another directory",
		path);
	return -EBUSY;
}

static int mp_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int r = 0;

	if (!d) {
		r = -errno;
		log_err("cannot read mount point %s: %s", path, strerror(-r));
		return r;
	}
	errno = 0;
	while (!r && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = -ENOTEMPTY;
	if (!r && errno)
		r = -errno;
	closedir(d);
	if (r == -ENOTEMPTY)
		log_err("mount point %s is not empty and the mount would hide "
			"its files; use an empty directory, or -o nonempty",
			path);
	else if (r)
		log_err("cannot read mount point %s: %s", path, strerror(-r));
	return r;
}

int mountpoint_set_readahead(const char *path, unsigned kb)
{
	struct mountinfo_entry me;
	char sys[96], val[16];
	int fd, n, r = mountinfo_find(path, &me);

	if (r)
		return r;
	if (strcmp(me.fstype, "fuse.kmsfs") != 0)
		return -ENOENT;
	if (snprintf(sys, sizeof(sys), "/sys/class/bdi/%s/read_ahead_kb",
		     me.dev) >= (int)sizeof(sys))
		return -ENAMETOOLONG;
	n = snprintf(val, sizeof(val), "%u\n", kb);
	fd = open(sys, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = write(fd, val, (size_t)n) == n ? 0 : -errno;
	close(fd);
	return r;
}

int mountpoint_check(const char *path, bool nonempty)
{
	struct mountinfo_entry me;
	struct stat st;
	int r;

	r = mountinfo_find(path, &me);
	if (r == 0)
		return mp_mounted(path, &me);
	if (stat(path, &st) < 0) {
		r = -errno;
		if (mp_is_dead(-r))
			return mp_dead(path, NULL);
		log_err("mount point %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_err("mount point %s is not a directory", path);
		return -ENOTDIR;
	}
	r = mp_other_device(path, &st);
	if (!r && !nonempty)
		r = mp_empty(path);
	return r;
}
