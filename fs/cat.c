/*
 * cat.c - read one file of a collection without mounting (`kmsfs cat`).
 *
 * Walks the path from the backing root with O_NOFOLLOW at every step,
 * asking the layout profile which directory is the file's chain, then
 * unlocks that chain and streams the file through the format layer.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/log.h"
#include "cformat.h"
#include "chain.h"
#include "keycache.h"

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

int kfs_cat(const char *backing, struct ks_keyring *keys, const char *profile,
	    const char *path, int out_fd)
{
	const struct chain_profile *prof = chain_profile_find(profile);
	int rootfd = -1, dirfd = -1, chainfd = -1, fd = -1, r;
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
	r = fd < 0 ? -errno : cf_decrypt_fd(key, fd, out_fd);
	if (r)
		log_err("%s: %s", path, fd < 0 ? strerror(-r) : cf_strerror(r));
out:
	if (fd >= 0)
		close(fd);
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
