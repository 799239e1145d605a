/*
 * cat.c - read one file of a collection without mounting (`kmsfs cat`).
 *
 * Asks the layout which chain holds the path, opens the file and the
 * chain directory beneath the backing root without following symbolic
 * links (the store is untrusted), unlocks the chain and streams the file
 * through the format layer.  Files the layout stores as they are come out
 * as they are; a checksum file comes out as the mount shows it (over the
 * plaintext of the file it covers, fs/plainfile.h), which needs the
 * chain's key only when that file is encrypted.  An encrypted file is
 * read through a read-only struct kfile, as the mount reads it: the same
 * checks (end of file, damage, the v1 rule), and an unfinished file reads
 * through its journal.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "../lib/scratch.h"
#include "cformat.h"
#include "file.h"
#include "keycache.h"
#include "layout.h"
#include "plainfile.h"

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

#define CAT_STEP (1u << 20)

/* A read-only kfile needs only the directory (for a journal). */
static int cat_dirfd(void *ctx)
{
	int fd = openat(*(int *)ctx, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* Copy the plaintext of fd (taken over) to out_fd.  0 or -errno (logged
 * by kfile). */
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
		r = kfile_read(kf, buf, CAT_STEP, off, &got, NULL);
		if (!r && got && fdio_write_all(out_fd, buf, got, -1))
			r = -EIO;
		off += got;
	}
	kfile_close(kf);
	free(buf);	   /* file data, not key material */
	scratch_release(); /* kfile_read's, in a thread that goes on */
	return r;
}

/* Copy in_fd to out_fd from offset 0. */
static int copy_fd(int in_fd, int out_fd)
{
	uint8_t buf[65536];
	off_t off = 0;
	size_t got;
	int r;

	do {
		r = fdio_read_full(in_fd, buf, sizeof(buf), off, &got);
		if (!r && got)
			r = fdio_write_all(out_fd, buf, got, -1);
		off += (off_t)got;
	} while (!r && got == sizeof(buf));
	return r ? -EIO : 0;
}

/* The basis of the checksum file of xpath's file (in dirfd as xname);
 * the chain is unlocked only when that file is encrypted. */
static int basis_of(struct keycache *kc, const struct layout_profile *prof,
		    int rootfd, int dirfd, const char *xpath, const char *xname,
		    struct pf_basis *b)
{
	enum layout_kind k = layout_file_kind(prof, xpath);
	const struct cf_key *key;
	char chain[4096];
	int r;

	r = pfile_basis_at(dirfd, xname, k, NULL, b);
	if (r != -ENOKEY)
		return r;
	r = layout_chain_of(prof, xpath, false, chain, sizeof(chain));
	if (!r)
		r = unlock_chain(kc, rootfd, chain, &key);
	return r ? r : pfile_basis_at(dirfd, xname, k, key, b);
}

/* The checksum file fd at rel, as the mount shows it. */
static int cat_checksum(struct keycache *kc, const struct layout_profile *prof,
			int rootfd, const char *rel, int fd, int out_fd)
{
	const char *base = strrchr(rel, '/');
	size_t dlen = base ? (size_t)(base - rel) : 0, got;
	char dir[4096], xpath[4096 + 256];
	struct pf_basis b = {.on = false};
	uint8_t c[PF_CK_SIZE];
	int dirfd, r;

	memcpy(dir, rel, dlen);
	dir[dlen] = '\0';
	base = base ? base + 1 : rel;
	r = fdio_read_full(fd, c, sizeof(c), 0, &got);
	if (r || got != PF_CK_SIZE || lseek(fd, 0, SEEK_END) != PF_CK_SIZE)
		return r ? -EIO : copy_fd(fd, out_fd); /* not mapped */
	snprintf(xpath, sizeof(xpath), "%s%s", dir, dlen ? "/" : "");
	if (layout_checksummed(base, xpath + strlen(xpath),
			       sizeof(xpath) - strlen(xpath)) == 0) {
		dirfd = fdio_open_beneath(rootfd, dlen ? dir : ".", O_RDONLY);
		if (dirfd < 0)
			return dirfd;
		r = basis_of(kc, prof, rootfd, dirfd, xpath,
			     xpath + (dlen ? dlen + 1 : 0), &b);
		close(dirfd);
	}
	if (r)
		return r;
	pfile_ck_map(&b, c, c);
	return fdio_write_all(out_fd, c, sizeof(c), -1) ? -EIO : 0;
}

int kfs_cat(const char *backing, struct ks_keyring *keys, const char *profile,
	    const char *path, bool allow_v1, int out_fd)
{
	const struct layout_profile *prof;
	char rel[4096], chain[4096], dir[4096];
	int rootfd, fd = -1, dirfd = -1, r;
	struct keycache *kc = NULL;
	const struct cf_key *key;
	enum layout_kind kind;

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
	kind = layout_file_kind(prof, rel);
	if (!r && kind == LAYOUT_PLAINTEXT)
		r = copy_fd(fd, out_fd);
	else if (!r && kind == LAYOUT_CHECKSUM)
		r = cat_checksum(kc, prof, rootfd, rel, fd, out_fd);
	if (r || kind != LAYOUT_ENCRYPTED) {
		if (r == -ENOKEY)
			log_err("%s: cannot unlock the backup chain of the "
				"file it covers",
				path);
		else if (r)
			log_err("%s: %s", path, strerror(-r));
		goto out;
	}
	r = unlock_chain(kc, rootfd, chain, &key);
	if (r) {
		log_err("%s: cannot unlock its backup chain", path);
		goto out;
	}
	/* The file's directory, where its journal would be. */
	snprintf(dir, sizeof(dir), "%s", rel);
	*(strrchr(dir, '/') ? strrchr(dir, '/') : dir) = '\0';
	dirfd = fdio_open_beneath(rootfd, dir[0] ? dir : ".",
				  O_RDONLY | O_DIRECTORY);
	if (dirfd < 0) {
		r = dirfd;
		log_err("%s: %s", path, strerror(-r));
		goto out;
	}
	r = cat_file(fd, dirfd, key, allow_v1, path, out_fd);
	fd = -1; /* taken over */
	if (r)
		log_err("%s: %s", path,
			r == -EIO ? strerror(EIO) : cf_strerror(r));
out:
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	if (rootfd >= 0)
		close(rootfd);
	keycache_free(kc);
	return r;
}
