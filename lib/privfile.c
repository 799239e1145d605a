/*
 * privfile.c - open a file that holds secrets, refuse it unless only we
 * can read and write it, read it whole.
 */
#include "privfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"

static int privfile_check(int fd, char *why)
{
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(why, PRIVFILE_WHY_MAX, "cannot stat: %s",
			 strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, PRIVFILE_WHY_MAX, "not a regular file");
		return -EINVAL;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(why, PRIVFILE_WHY_MAX,
			 "must be owned by uid %u and not accessible by group "
			 "or others (is uid %u, mode %04o; chmod 600)",
			 (unsigned)geteuid(), (unsigned)st.st_uid,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int privfile_open(const char *path, int *fd_out, char why[PRIVFILE_WHY_MAX])
{
	int fd, r;

	*fd_out = -1;
	why[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(why, PRIVFILE_WHY_MAX, "cannot open: %s",
			 strerror(-r));
		return r;
	}
	r = privfile_check(fd, why);
	if (r) {
		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

int privfile_read_buf(const char *path, struct buf *b,
		      char why[PRIVFILE_WHY_MAX])
{
	int fd, r = privfile_open(path, &fd, why);

	if (r)
		return r;
	r = buf_read_fd(b, fd);
	close(fd);
	if (r == -E2BIG)
		snprintf(why, PRIVFILE_WHY_MAX, "larger than %zu bytes",
			 b->max);
	else if (r)
		snprintf(why, PRIVFILE_WHY_MAX, "cannot read: %s",
			 strerror(-r));
	return r;
}

int privfile_read_secret(const char *path, size_t max, struct secret **out,
			 char why[PRIVFILE_WHY_MAX])
{
	struct secret *s = NULL;
	int fd, r;

	*out = NULL;
	r = privfile_open(path, &fd, why);
	if (r)
		return r;
	s = secret_new(max);
	if (!s) {
		r = -ENOMEM;
		snprintf(why, PRIVFILE_WHY_MAX, "out of memory");
		goto out;
	}
	r = fdio_read_max(fd, s->bytes, max, &s->len);
	if (r == -EFBIG)
		snprintf(why, PRIVFILE_WHY_MAX, "longer than %zu bytes", max);
	else if (r)
		snprintf(why, PRIVFILE_WHY_MAX, "cannot read: %s",
			 strerror(-r));
out:
	close(fd);
	if (r)
		secret_free(s);
	else
		*out = s;
	return r;
}
