/*
 * cat.c - read one file of a collection without mounting (`kmsfs cat`).
 *
 * Asks the layout which chain holds the path, opens the file and the
 * chain directory beneath the backing root without following symbolic
 * links (the store is untrusted), unlocks the chain and streams the file
 * through the format layer.
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
#include "keycache.h"
#include "layout.h"

/* path without leading slashes or "./"; -ENOENT for a reserved name on
 * the way (kmsfs's own files are not part of the collection). */
static int clean_path(const char *path, char *out, size_t len)
{
	const char *p;

	while (*path == '/')
		path++;
	while (!strncmp(path, "./", 2))
		path += 2;
	if (strlen(path) >= len)
		return -ENAMETOOLONG;
	strcpy(out, path);
	for (p = out; *p; p += strcspn(p, "/"), p += *p == '/') {
		char part[256];
		size_t n = strcspn(p, "/");

		if (n >= sizeof(part))
			return -ENAMETOOLONG;
		memcpy(part, p, n);
		part[n] = '\0';
		if (layout_name_reserved(part))
			return -ENOENT;
	}
	return 0;
}

static int unlock_chain(struct keycache *kc, int rootfd, const char *chain,
			const struct cf_key **key)
{
	struct chain *c;
	int fd, r;

	fd = fdio_open_beneath(rootfd, chain, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	r = keycache_chain(kc, fd, chain, &c);
	close(fd);
	return r ? r : keycache_key_read(kc, c, key);
}

int kfs_cat(const char *backing, struct ks_keyring *keys, const char *profile,
	    const char *path, int out_fd)
{
	const struct layout_profile *prof;
	char rel[4096], chain[4096];
	int rootfd, fd = -1, r;
	struct keycache *kc = NULL;
	const struct cf_key *key;

	rootfd = open(backing, O_PATH | O_DIRECTORY | O_CLOEXEC);
	r = rootfd < 0 ? -errno : 0;
	prof = layout_resolve(profile, rootfd);
	if (!prof) {
		r = -EINVAL;
		goto out;
	}
	if (!r)
		r = clean_path(path, rel, sizeof(rel));
	if (!r)
		r = layout_chain_of(prof, rel, false, chain, sizeof(chain));
	if (!r) {
		fd = fdio_open_beneath(rootfd, rel, O_RDONLY);
		r = fd < 0 ? fd : 0;
	}
	if (r) {
		log_err("%s: %s", path,
			strerror(r == -EXDEV || r == -ELOOP ? ENOENT : -r));
		goto out;
	}
	r = keycache_new(keys, &kc);
	if (!r)
		r = unlock_chain(kc, rootfd, chain, &key);
	if (r) {
		log_err("%s: cannot unlock its backup chain", path);
		goto out;
	}
	r = cf_decrypt_fd(key, fd, out_fd);
	if (r)
		log_err("%s: %s", path, cf_strerror(r));
out:
	if (fd >= 0)
		close(fd);
	if (rootfd >= 0)
		close(rootfd);
	keycache_free(kc);
	return r;
}
