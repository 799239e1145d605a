/*
 * dir.c - directory streams with kmsfs's own names hidden.
 */
#include "dir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

struct kdir {
	DIR *dp;
	struct dirent *entry; /* peeked, not consumed */
	off_t offset;
};

int kdir_open(struct kinode *in, struct kdir **out)
{
	struct kdir *d = calloc(1, sizeof(*d));
	int fd, r;

	if (!d)
		return -ENOMEM;
	fd = inode_reopen(in->fs, in, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		r = fd < 0 ? fd : -errno;
		if (fd >= 0)
			close(fd);
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

void kdir_close(struct kdir *d)
{
	if (!d)
		return;
	closedir(d->dp);
	free(d);
}

void kdir_seek(struct kdir *d, off_t off)
{
	if (off == d->offset)
		return;
	seekdir(d->dp, off);
	d->entry = NULL;
	d->offset = off;
}

int kdir_peek(struct kdir *d, struct dirent **de_out, off_t *next_out)
{
	while (!d->entry) {
		errno = 0;
		d->entry = readdir(d->dp);
		if (!d->entry) {
			*de_out = NULL;
			return errno ? -errno : 0;
		}
		if (layout_name_reserved(d->entry->d_name))
			kdir_consume(d);
	}
	*de_out = d->entry;
	*next_out = telldir(d->dp);
	return 0;
}

void kdir_consume(struct kdir *d)
{
	d->entry = NULL;
	d->offset = telldir(d->dp);
}

int kdir_fsync(struct kdir *d, bool datasync)
{
	int fd = dirfd(d->dp);

	return (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? -errno : 0;
}
