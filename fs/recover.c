/*
 * recover.c - the sweep at mount: remove rewrite temporaries, finish the
 * files that were being written (journals), one log line per file.
 *
 * A depth-first walk with one directory open per level.  A directory's
 * entries are read first (names of subdirectories, temporaries and
 * journals collected), then acted on, then the subdirectories are
 * visited; the chain of each directory follows the layout profile.  An
 * interrupted file is finished through struct kfile itself over a small
 * host that works by (directory, name), like the mount's.
 */
#include "recover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "../lib/log.h"
#include "file.h"
#include "journal.h"

#define MAX_DEPTH 512

struct names {
	char **v;
	size_t n, cap;
};

static int names_add(struct names *l, const char *name)
{
	char *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	l->v[l->n++] = copy;
	return 0;
}

static void names_free(struct names *l)
{
	while (l->n > 0)
		free(l->v[--l->n]);
	free(l->v);
}

struct sweep {
	const struct layout_profile *prof;
	struct keycache *kc;
	struct recover_stats *st;
	char path[PATH_MAX]; /* of the directory being swept, for logs */
	size_t chainlen;     /* path[0..chainlen) is its chain's */
};

/* --- a kfile host over (directory, name) --------------------------------- */

struct dirhost {
	int dirfd;
	const char *name;
};

static int dh_mktemp(void *ctx, int *fd_out, char *name, size_t len)
{
	struct dirhost *h = ctx;
	uint8_t rnd[8];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	snprintf(name, len, "%s%02x%02x%02x%02x%02x%02x%02x%02x",
		 LAYOUT_TMP_PREFIX, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		 rnd[5], rnd[6], rnd[7]);
	*fd_out =
	    openat(h->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return *fd_out < 0 ? -errno : 0;
}

/* The new version keeps what the user set on the old one. */
static void keep_attrs(int oldfd, int tmpfd, const struct stat *st)
{
	char names[4096], val[4096];
	struct timespec tv[2] = {st->st_atim, st->st_mtim};
	ssize_t n = flistxattr(oldfd, names, sizeof(names)), vn;

	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
		vn = fgetxattr(oldfd, names + i, val, sizeof(val));
		if (vn >= 0 &&
		    fsetxattr(tmpfd, names + i, val, (size_t)vn, 0) < 0)
			log_warn("could not keep xattr %s on a finished file",
				 names + i);
	}
	/* chown first: it clears set-user-ID, chmod then restores it. */
	(void)!fchown(tmpfd, st->st_uid, st->st_gid);
	(void)!fchmod(tmpfd, st->st_mode & 07777);
	(void)!futimens(tmpfd, tv);
}

static int dh_replace(void *ctx, const char *tmpname, int tmpfd)
{
	struct dirhost *h = ctx;
	struct stat st;
	int oldfd, r = 0;

	oldfd = openat(h->dirfd, h->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (oldfd < 0 || fstat(oldfd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_nlink != 1) {
		r = -ENOTSUP; /* copied back into the inode: links stay */
		goto out;
	}
	keep_attrs(oldfd, tmpfd, &st);
	if (fsync(tmpfd) < 0 ||
	    renameat(h->dirfd, tmpname, h->dirfd, h->name) < 0 ||
	    fsync(h->dirfd) < 0)
		r = -errno;
out:
	if (oldfd >= 0)
		close(oldfd);
	return r;
}

static void dh_discard(void *ctx, const char *tmpname)
{
	struct dirhost *h = ctx;

	(void)unlinkat(h->dirfd, tmpname, 0);
}

static int dh_dirfd(void *ctx)
{
	struct dirhost *h = ctx;
	int fd = openat(h->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* --- interrupted files -----------------------------------------------------
 */

/* Finish dirfd/name (unfinished, with a journal) under its chain's key.
 * 1: finished; 0: it could not be (end unknown); -errno. */
static int finish_file(struct sweep *s, int dirfd, int chainfd,
		       const char *name, const char *label)
{
	struct dirhost dh = {dirfd, name};
	const struct kfile_host host = {.ctx = &dh,
					.mktemp = dh_mktemp,
					.replace = dh_replace,
					.discard = dh_discard,
					.dirfd = dh_dirfd,
					.remove = NULL};
	const struct cf_key *key;
	struct kfile *kf = NULL;
	char clabel[PATH_MAX];
	struct chain *c;
	struct stat st;
	int fd, r;

	snprintf(clabel, sizeof(clabel), "%.*s", (int)s->chainlen, s->path);
	r = keycache_chain(s->kc, chainfd, clabel[0] ? clabel : "/", &c);
	if (!r)
		r = keycache_key_read(s->kc, c, &key);
	if (r)
		return r;
	fd = openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	r = kfile_open(fd, KFILE_WRITABLE, key, &host, label, &kf);
	if (r) {
		close(fd);
		return r;
	}
	r = kfile_commit(kf);
	if (!r)
		r = kfile_unfinished(kf) ? 0 : 1;
	kfile_close(kf);
	return r;
}

/* The IV and version byte of the header of dirfd/name; -errno. */
static int header_of(int dirfd, const char *name, uint8_t iv[CF_IV_SIZE],
		     int *version)
{
	uint8_t hdr[CF_HEADER_SIZE];
	size_t got = 0;
	ssize_t n;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (got < sizeof(hdr) &&
	       (n = pread(fd, hdr + got, sizeof(hdr) - got, (off_t)got)) > 0)
		got += (size_t)n;
	close(fd);
	return cf_header_parse(hdr, got, version, iv);
}

/* The regular file in dirfd whose header carries iv, into *name_out
 * (malloc'd) and *version; -ENOENT. */
static int find_by_iv(int dirfd, const uint8_t iv[CF_IV_SIZE], char **name_out,
		      int *version)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	uint8_t got[CF_IV_SIZE];
	struct dirent *e;
	int r = -ENOENT;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while (r == -ENOENT && (e = readdir(d))) {
		if ((e->d_type != DT_REG && e->d_type != DT_UNKNOWN) ||
		    layout_name_reserved(e->d_name))
			continue;
		if (header_of(dirfd, e->d_name, got, version) == 0 &&
		    memcmp(got, iv, CF_IV_SIZE) == 0) {
			*name_out = strdup(e->d_name);
			r = *name_out ? 0 : -ENOMEM;
		}
	}
	closedir(d);
	return r;
}

static void remove_entry(struct sweep *s, int dirfd, const char *name,
			 const char *why)
{
	if (unlinkat(dirfd, name, 0) < 0) {
		log_warn("recovery: could not remove %s/%s: %s", s->path, name,
			 strerror(errno));
		return;
	}
	s->st->removed++;
	log_info("recovery: removed %s/%s (%s)", s->path, name, why);
}

static void do_journal(struct sweep *s, int dirfd, int chainfd,
		       const char *jname)
{
	char label[PATH_MAX + 256], *name = NULL;
	uint8_t iv[CF_IV_SIZE];
	int version = 0, r;

	if (jnl_name_iv(jname, iv) ||
	    find_by_iv(dirfd, iv, &name, &version) != 0) {
		remove_entry(s, dirfd, jname,
			     "a journal whose file is gone: it was deleted or "
			     "moved before kmsfs stopped");
		return;
	}
	snprintf(label, sizeof(label), "%s/%s", s->path, name);
	if (version != CF_V2_OPEN) {
		remove_entry(s, dirfd, jname, "the journal of a finished file");
	} else if (!s->kc) {
		s->st->kept++;
	} else if ((r = finish_file(s, dirfd, chainfd, name, label)) == 1) {
		s->st->finished++;
		log_info("recovery: %s was being written when kmsfs stopped; "
			 "finished it as of its last flush or fsync",
			 label);
	} else if (r == 0) {
		remove_entry(s, dirfd, jname,
			     "a journal that does not reach its file's end: "
			     "it reads up to its last complete chunk, then "
			     "EIO");
	} else {
		s->st->kept++;
		log_warn("recovery: %s was being written when kmsfs stopped "
			 "and could not be finished now (%s); it reads "
			 "through its journal",
			 label, strerror(-r));
	}
	free(name);
}

/* --- the walk ------------------------------------------------------------ */

static bool is_dir(int dirfd, const struct dirent *e)
{
	struct stat st;

	if (e->d_type != DT_UNKNOWN)
		return e->d_type == DT_DIR;
	return fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/* Read dirfd: subdirectories into subs, journals into jnls; rewrite
 * temporaries go at once. */
static int scan(struct sweep *s, int dirfd, struct names *subs,
		struct names *jnls)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	uint8_t iv[CF_IV_SIZE];
	int r = 0;

	if (!d) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (!r && (e = readdir(d))) {
		const char *n = e->d_name;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (strncmp(n, LAYOUT_TMP_PREFIX, strlen(LAYOUT_TMP_PREFIX)))
			r = is_dir(dirfd, e) ? names_add(subs, n) : 0;
		else if (jnl_name_iv(n, iv) == 0)
			r = names_add(jnls, n);
		else if (!is_dir(dirfd, e))
			remove_entry(s, dirfd, n,
				     "an interrupted rewrite's temporary; "
				     "its file kept its previous version");
	}
	closedir(d);
	return r;
}

static void sweep_dir(struct sweep *s, int dirfd, int chainfd, unsigned depth)
{
	struct names subs = {0}, jnls = {0};
	size_t plen = strlen(s->path);
	int r = scan(s, dirfd, &subs, &jnls);

	if (r)
		log_warn("recovery: cannot read %s: %s",
			 s->path[0] ? s->path : "/", strerror(-r));
	for (size_t i = 0; i < jnls.n; i++)
		do_journal(s, dirfd, chainfd, jnls.v[i]);
	for (size_t i = 0; i < subs.n && depth < MAX_DEPTH; i++) {
		int sub =
		    openat(dirfd, subs.v[i],
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (sub < 0)
			continue;
		if (layout_name_reserved(subs.v[i])) {
			close(sub);
			continue;
		}
		size_t saved = s->chainlen;
		bool chain;

		snprintf(s->path + plen, sizeof(s->path) - plen, "/%s",
			 subs.v[i]);
		chain = layout_is_chain_dir(s->prof, s->path + 1);
		if (chain)
			s->chainlen = strlen(s->path);
		sweep_dir(s, sub, chain ? sub : chainfd, depth + 1);
		s->chainlen = saved;
		s->path[plen] = '\0';
		close(sub);
	}
	names_free(&subs);
	names_free(&jnls);
}

int recover_store(int rootfd, const struct layout_profile *prof,
		  struct keycache *kc, struct recover_stats *out)
{
	struct recover_stats dummy;
	struct sweep s = {.prof = prof, .kc = kc, .st = out ? out : &dummy};
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	memset(s.st, 0, sizeof(*s.st));
	if (fd < 0)
		return -errno;
	sweep_dir(&s, fd, fd, 0);
	close(fd);
	return 0;
}
