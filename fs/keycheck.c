/*
 * keycheck.c - the key-check file, sample files and "does this directory
 * hold encrypted files", over one bounded walk of a chain's directory.
 *
 * A KMS unwrap authenticates a data key, a passphrase does not: a wrong
 * passphrase derives a key too.  So the key must open the chain's
 * key-check file or, for chains written by CockroachDB, chunk 0 of one of
 * its encrypted files.  The walk looks only at the chain's own files
 * (the root's chain: the files directly in the root), so another chain's
 * files never make the right key look wrong.
 */
#include "keycheck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/hex.h"
#include "layout.h"

#define KEYCHECK_TEXT "kmsfs key check v1\n"
#define WALK_GO (-EAGAIN) /* a visit's "not this one, go on" */

/* One regular file of the chain: WALK_GO, or a result that ends the walk. */
typedef int (*walk_file_fn)(void *ctx, int fd);

struct walk {
	walk_file_fn fn;
	void *ctx;
	int files;    /* left to open */
	long entries; /* left to read */
};

static int walk_dir(int dirfd, int depth, struct walk *w);

static bool walk_skip(const char *name)
{
	if (name[0] == '.' && (!name[1] || strcmp(name, "..") == 0))
		return true;
	return layout_name_reserved(name);
}

static int walk_entry(int dirfd, const struct dirent *de, int depth,
		      struct walk *w)
{
	unsigned char type = de->d_type;
	struct stat st;
	int fd, r;

	if (type == DT_UNKNOWN &&
	    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		type = S_ISDIR(st.st_mode)   ? DT_DIR
		       : S_ISREG(st.st_mode) ? DT_REG
					     : DT_UNKNOWN;
	if (type == DT_DIR && depth > 0) {
		fd = openat(dirfd, de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return WALK_GO;
		r = walk_dir(fd, depth - 1, w);
		close(fd);
		return r;
	}
	if (type != DT_REG)
		return WALK_GO;
	fd = openat(dirfd, de->d_name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return WALK_GO;
	w->files--;
	r = w->fn(w->ctx, fd);
	close(fd);
	return r;
}

/* Visit the regular files of dirfd, and of its directories down to depth
 * more levels.  WALK_GO when every file was visited, -ERANGE when the
 * bounds were reached first, else what a visit returned. */
static int walk_dir(int dirfd, int depth, struct walk *w)
{
	struct dirent *de;
	int r = WALK_GO, fd;
	DIR *d;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return WALK_GO;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return WALK_GO;
	}
	while (r == WALK_GO && (de = readdir(d))) {
		if (w->entries-- <= 0 || w->files <= 0)
			r = -ERANGE;
		else if (!walk_skip(de->d_name))
			r = walk_entry(dirfd, de, depth, w);
	}
	closedir(d);
	return r;
}

static int walk_chain(int dirfd, bool root, int files, walk_file_fn fn,
		      void *ctx)
{
	struct walk w = {fn, ctx, files, KEYCHECK_MAX_ENTRIES};

	return walk_dir(dirfd, root ? 0 : KEYCHECK_MAX_DEPTH, &w);
}

/* --- verifying a key ----------------------------------------------------- */

struct sample {
	const struct cf_key *key;
	uint8_t *ct; /* CF_HEADER_SIZE + CF_CHUNK_CT_SIZE */
	uint8_t *pt; /* CF_CHUNK_SIZE */
	size_t ptlen;
};

/* Open chunk 0 of the file at fd: 0, -EBADMSG (the key does not open
 * it), or WALK_GO (not a usable sample: not v2 ciphertext, too short). */
static int sample_check(void *ctx, int fd)
{
	struct sample *s = ctx;
	uint8_t iv[CF_IV_SIZE];
	size_t n;
	int ver, r;

	if (fdio_read_full(fd, s->ct, CF_HEADER_SIZE + CF_CHUNK_CT_SIZE, 0,
			   &n) ||
	    n < CF_HEADER_SIZE + CF_TAG_SIZE)
		return WALK_GO;
	if (cf_header_parse(s->ct, n, &ver, iv) || ver != CF_V2)
		return WALK_GO; /* v1: one message for the whole file */
	r = cf_open_chunk(s->key, iv, 0, s->ct + CF_HEADER_SIZE,
			  n - CF_HEADER_SIZE, s->pt);
	s->ptlen = n - CF_HEADER_SIZE - CF_TAG_SIZE;
	return r == 0 || r == -EBADMSG ? r : WALK_GO;
}

static int check_keycheck_file(int dirfd, struct sample *s)
{
	int fd = openat(dirfd, LAYOUT_KEYCHECK_NAME,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int r;

	if (fd < 0)
		return WALK_GO;
	r = sample_check(s, fd);
	close(fd);
	if (r == 0 && (s->ptlen != strlen(KEYCHECK_TEXT) ||
		       memcmp(s->pt, KEYCHECK_TEXT, s->ptlen) != 0))
		r = -EBADMSG;
	return r;
}

int keycheck_verify(int dirfd, bool root, const struct cf_key *key)
{
	struct sample s = {key, malloc(CF_HEADER_SIZE + CF_CHUNK_CT_SIZE),
			   malloc(CF_CHUNK_SIZE), 0};
	int r;

	if (!s.ct || !s.pt) {
		r = -ENOMEM;
		goto out;
	}
	r = check_keycheck_file(dirfd, &s);
	if (r == WALK_GO)
		r = walk_chain(dirfd, root, KEYCHECK_MAX_SAMPLES, sample_check,
			       &s);
	if (r == WALK_GO || r == -ERANGE)
		r = -ENODATA;
out:
	if (s.pt)
		secret_wipe(s.pt, CF_CHUNK_SIZE);
	free(s.pt);
	free(s.ct);
	return r;
}

/* --- writing the key-check file ----------------------------------------- */

static int write_file(int dirfd, const char *name, const uint8_t *p, size_t len)
{
	int fd =
	    openat(dirfd, name,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	int r;

	if (fd < 0)
		return -errno;
	r = fdio_write_all(fd, p, len, 0);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

int keycheck_write(int dirfd, const struct cf_key *key)
{
	const size_t plen = strlen(KEYCHECK_TEXT);
	uint8_t out[CF_HEADER_SIZE + 64 + CF_TAG_SIZE], iv[CF_IV_SIZE];
	char tmp[64], hex[2 * 8 + 1];
	int r;

	r = cf_iv_random(iv);
	if (r)
		return r;
	cf_header_build(iv, out);
	r = cf_seal_chunk(key, iv, 0, (const uint8_t *)KEYCHECK_TEXT, plen,
			  out + CF_HEADER_SIZE);
	if (r)
		return r;
	hex_encode(iv + 4, 8, hex); /* random, and the IV is public */
	snprintf(tmp, sizeof(tmp), "%skeycheck-%s", LAYOUT_TMP_PREFIX, hex);
	r = write_file(dirfd, tmp, out, CF_HEADER_SIZE + plen + CF_TAG_SIZE);
	if (!r && renameat(dirfd, tmp, dirfd, LAYOUT_KEYCHECK_NAME) < 0)
		r = -errno;
	if (r)
		unlinkat(dirfd, tmp, 0);
	else if (fsync(dirfd) < 0)
		r = -errno;
	return r;
}

/* --- encrypted files without a key -------------------------------------- */

static int is_encrypted(void *ctx, int fd)
{
	char pre[CF_PREAMBLE_LEN];
	size_t n;

	(void)ctx;
	if (fdio_read_full(fd, (uint8_t *)pre, sizeof(pre), 0, &n) == 0 &&
	    n == sizeof(pre) && memcmp(pre, CF_PREAMBLE, CF_PREAMBLE_LEN) == 0)
		return 1;
	return WALK_GO;
}

int keycheck_holds_encrypted(int dirfd, bool root)
{
	int r = walk_chain(dirfd, root, KEYCHECK_MAX_FILES, is_encrypted, NULL);

	return r == WALK_GO ? 0 : r;
}
