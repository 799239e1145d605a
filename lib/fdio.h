/*
 * fdio.h - whole reads and writes on file descriptors.
 *
 * Owns: the EINTR and short-transfer loops, so no caller writes them
 * again.  Must not know: what the bytes are.
 * Thread-safety: reentrant (pread/pwrite variants share no offset).
 */
#ifndef KMSFS_FDIO_H
#define KMSFS_FDIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read until len bytes or end of file (off < 0: at the current offset).
 * *got < len means end of file.  Returns 0 or -errno. */
int fdio_read_full(int fd, uint8_t *buf, size_t len, off_t off, size_t *got);
/* Read the rest of fd (at the current offset) into buf[0..max): *got
 * bytes.  Returns 0, -errno, or -EFBIG when there is more than max bytes
 * to read (one byte past max is read to tell, and wiped: buf may be a
 * key). */
int fdio_read_max(int fd, uint8_t *buf, size_t max, size_t *got);
/* Write all len bytes (off < 0: at the current offset).  0 or -errno
 * (-EIO if the file accepts no more bytes without an error). */
int fdio_write_all(int fd, const uint8_t *buf, size_t len, off_t off);

/* Open path (relative, '/'-separated) beneath dirfd without following
 * any symbolic link and without leaving dirfd's tree ("..", absolute
 * paths): the backing store is untrusted.  flags as for openat; O_CLOEXEC
 * and O_NOFOLLOW are added.  Returns the fd or -errno (-ELOOP for a
 * symlink on the way, -EXDEV for an escape). */
int fdio_open_beneath(int dirfd, const char *path, int flags);

#endif
