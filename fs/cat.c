/*
 * cat.c - read one file of a collection without mounting (`kmsfs cat`).
 *
 * Walks the path from the backing root with O_NOFOLLOW at every step,
 * asking the layout profile which directory is the file's chain, then
 * unlocks that chain and reads the file through a read-only struct kfile,
 * as the mount does: the same checks (end of file, damage, the v1 rule),
 * and an unfinished file reads through its journal.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "cformat.h"
#include "chain.h"
#include "file.h"
#include "keycache.h"

#define CAT_STEP (1u << 20)

/* Open the directory holding the last component of path; *chainfd gets
 * the chain directory.  base receives the last component. */
static int walk(int rootfd, const struct chain_profile *prof, char *path,
		int *dirfd_out, int *chainfd_out, char **base)
{
	int dirfd = dup(rootfd), chainfd = dup(rootfd);
	unsigned depth = 0;
	char *save = NULL, *tok, *next;

	tok = strtok_r(path, "/", &save);
	while (tok && (next = strtok_r(NULL, "/", &save))) {
		int sub;

		if (chain_name_reserved(tok) || strcmp(tok, "..") == 0) {
			close(dirfd);
			close(chainfd);
			return -ENOENT;
		}
		sub = openat(dirfd, tok,
			     O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(dirfd);
		if (sub < 0) {
			close(chainfd);
			return -errno;
		}
		dirfd = sub;
		if (prof->starts_chain(++depth, tok)) {
			close(chainfd);
			chainfd = dup(sub);
		}
		tok = next;
	}
	if (!tok || chain_name_reserved(tok)) {
		close(dirfd);
		close(chainfd);
		return -ENOENT;
	}
	*dirfd_out = dirfd;
	*chainfd_out = chainfd;
	*base = tok;
	return 0;
}

/* A read-only kfile needs only the directory (for a journal). */
static int cat_dirfd(void *ctx)
{
	int fd = openat(*(int *)ctx, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* Copy the plaintext of fd to out_fd.  0 or -errno (logged by kfile). */
static int cat_file(int fd, int dirfd, const struct cf_key *key, bool allow_v1,
		    const char *label, int out_fd)
{
	const struct kfile_host host = {.ctx = &dirfd, .dirfd = cat_dirfd};
	uint8_t *buf = malloc(CAT_STEP);
	struct kfile *kf = NULL;
	uint64_t off = 0;
	size_t got = CAT_STEP;
	int r = buf ? 0 : -ENOMEM;

	if (!r)
		r = kfile_open(fd, allow_v1 ? KFILE_ALLOW_V1 : 0, key, &host,
			       label, &kf);
	if (r)
		close(fd);
	while (!r && got == CAT_STEP) {
		r = kfile_read(kf, buf, CAT_STEP, off, &got);
		if (!r && got && fdio_write_all(out_fd, buf, got, -1))
			r = -EIO;
		off += got;
	}
	kfile_close(kf);
	free(buf); /* file data, not key material */
	return r;
}

int kfs_cat(const char *backing, struct ks_keyring *keys, const char *profile,
	    const char *path, bool allow_v1, int out_fd)
{
	const struct chain_profile *prof = chain_profile_find(profile);
	int rootfd = -1, dirfd = -1, chainfd = -1, fd, r;
	struct keycache *kc = NULL;
	const struct cf_key *key;
	char *copy = strdup(path), *base = NULL;
	struct chain *c;

	if (!copy || !prof) {
		free(copy);
		return copy ? -EINVAL : -ENOMEM;
	}
	rootfd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	r = rootfd < 0 ? -errno
		       : walk(rootfd, prof, copy, &dirfd, &chainfd, &base);
	if (r) {
		log_err("%s: %s", path, strerror(-r));
		goto out;
	}
	r = keycache_new(keys, &kc);
	if (!r)
		r = keycache_chain(kc, chainfd, path, &c);
	if (!r)
		r = keycache_key_read(kc, c, &key);
	if (r) {
		log_err("%s: cannot unlock its backup chain", path);
		goto out;
	}
	fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		log_err("%s: %s", path, strerror(-r));
		goto out;
	}
	r = cat_file(fd, dirfd, key, allow_v1, path, out_fd);
	if (r)
		log_err("%s: %s", path,
			r == -EIO ? strerror(EIO) : cf_strerror(r));
out:
	if (dirfd >= 0)
		close(dirfd);
	if (chainfd >= 0)
		close(chainfd);
	if (rootfd >= 0)
		close(rootfd);
	keycache_free(kc);
	free(copy);
	return r;
}
