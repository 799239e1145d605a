/*
 * fdio.c - read/pread and write/pwrite until done.
 */
#include "fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "secret.h"

int fdio_read_full(int fd, uint8_t *buf, size_t len, off_t off, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = off < 0 ? read(fd, buf + done, len - done)
				    : pread(fd, buf + done, len - done,
					    off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

int fdio_read_max(int fd, uint8_t *buf, size_t max, size_t *got)
{
	uint8_t probe;
	size_t extra = 0;
	int r = fdio_read_full(fd, buf, max, -1, got);

	if (r || *got < max)
		return r;
	r = fdio_read_full(fd, &probe, 1, -1, &extra);
	secret_wipe(&probe, sizeof(probe));
	if (r)
		return r;
	return extra ? -EFBIG : 0;
}

int fdio_write_all(int fd, const uint8_t *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n =
		    off < 0 ? write(fd, buf, len) : pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
		if (off >= 0)
			off += n;
	}
	return 0;
}

/* Without openat2 (Linux < 5.6): one component at a time. */
static int open_walk(int dirfd, const char *path, int flags)
{
	char part[256];
	int fd = -1, at = dirfd;

	for (;;) {
		size_t n = strcspn(path, "/");
		int next;

		if (n == 0 || n >= sizeof(part) ||
		    (n == 2 && path[0] == '.' && path[1] == '.')) {
			if (fd >= 0)
				close(fd);
			return n >= sizeof(part) ? -ENAMETOOLONG : -EXDEV;
		}
		memcpy(part, path, n);
		part[n] = '\0';
		next = openat(at, part,
			      (path[n] ? O_PATH | O_DIRECTORY : flags) |
				  O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		if (next < 0)
			return -errno;
		if (!path[n])
			return next;
		fd = at = next;
		path += n + 1;
	}
}

int fdio_open_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
	    .resolve =
		RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	if (!*path)
		path = ".";
	fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		return open_walk(dirfd, path, flags);
	return fd < 0 ? -errno : (int)fd;
}
