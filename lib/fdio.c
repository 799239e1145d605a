/*
 * fdio.c - read/pread and write/pwrite until done.
 */
#include "fdio.h"

#include <errno.h>
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
