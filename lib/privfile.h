/*
 * privfile.h - opening and reading the files that hold secrets: key
 * files, passphrase files, KMS URI files, the configuration file.
 *
 * Owns: the one rule for such files, checked on the open descriptor so
 * that what is checked is what is read: a regular file, owned by the
 * effective uid, with no group or other permission bits.  Files are
 * opened with O_NONBLOCK (a FIFO cannot hang the caller) and O_NOCTTY.
 * Must not know: what a file holds.  Logs nothing: on failure why holds
 * one phrase without the path ("not a regular file", "must be owned by
 * uid 0 and not accessible by group or others (is uid 1000, mode 0644;
 * chmod 600)", "cannot open: No such file or directory"), and the caller
 * logs "<what> <path>: <why>".
 * Thread-safety: reentrant.
 */
#ifndef KMSFS_PRIVFILE_H
#define KMSFS_PRIVFILE_H

#include <stddef.h>

#include "buf.h"
#include "secret.h"

#define PRIVFILE_WHY_MAX 160

/* Open path read-only and check it.  On success *fd_out is the caller's
 * to close.  Returns 0, the -errno of open or fstat, -EINVAL (not a
 * regular file) or -EPERM (owner or mode). */
int privfile_open(const char *path, int *fd_out, char why[PRIVFILE_WHY_MAX]);

/* privfile_open, then read the whole file into b (initialised by the
 * caller, whose max bounds the size; flag it secret when it may hold
 * credentials).  privfile_open's errors, the -errno of read, or -E2BIG
 * (larger than b's max). */
int privfile_read_buf(const char *path, struct buf *b,
		      char why[PRIVFILE_WHY_MAX]);

/* privfile_open, then read the whole file into a new secret of at most
 * max (<= SECRET_MAX) bytes; *out is the caller's (secret_free).
 * privfile_open's errors, the -errno of read, -EFBIG (longer than max)
 * or -ENOMEM. */
int privfile_read_secret(const char *path, size_t max, struct secret **out,
			 char why[PRIVFILE_WHY_MAX]);

#endif
