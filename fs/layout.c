/*
 * layout.c - layout profiles and the reserved-name policy.
 *
 * A profile is a const record: how deep its decisions go, which chain a
 * path is in, and which directories to look at when listing the chains
 * of a store.  Everything else (validation of paths, listing, LATEST,
 * the user's chain arguments) is written once here over those.
 */
#include "layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../keystore/keystore.h"
#include "../lib/fdio.h"

struct layout_profile {
	const char *name;
	const char *description;
	unsigned depth;
	/* chain of a valid path, written to out (fits: outlen > strlen) */
	void (*chain_of)(const char *path, bool is_dir, char *out);
	/* chain directories to consider besides the root, added to *l */
	int (*candidates)(int rootfd, char ***l, size_t *n);
	/* files outside every chain are stored as they are (no root key) */
	bool plaintext_outside_chains;
	/* the profile's own LATEST, or NULL: the newest ENCRYPTION-INFO */
	int (*latest)(int rootfd, char *out, size_t outlen);
};

/* --- helpers ---------------------------------------------------------- */

static int list_add(char ***l, size_t *n, const char *s)
{
	char **v = realloc(*l, (*n + 2) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	*l = v;
	v[*n] = strdup(s);
	if (!v[*n])
		return -ENOMEM;
	v[++*n] = NULL;
	return 0;
}

void layout_list_free(char **list)
{
	for (size_t i = 0; list && list[i]; i++)
		free(list[i]);
	free(list);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool path_valid(const char *path)
{
	const char *p = path;

	if (!*path)
		return true;
	for (;;) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!p[n])
			return true;
		p += n + 1;
	}
}

/* Entries of the directory at path (relative to rootfd) that are
 * directories, not reserved, not hidden.  Each added as "path/name". */
static int list_subdirs(int rootfd, const char *path, char ***l, size_t *n)
{
	char full[4096];
	struct dirent *de;
	struct stat st;
	int fd, r = 0;
	DIR *d;

	fd = openat(rootfd, *path ? path : ".",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while (!r && (de = readdir(d))) {
		if (de->d_name[0] == '.' || layout_name_reserved(de->d_name))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if ((size_t)snprintf(full, sizeof(full), "%s%s%s", path,
				     *path ? "/" : "",
				     de->d_name) >= sizeof(full))
			continue;
		r = list_add(l, n, full);
	}
	closedir(d);
	return r;
}

/* Regular files of the directory at path, each added as "path/name". */
static int list_files(int rootfd, const char *path, char ***l, size_t *n)
{
	char full[4096];
	struct dirent *de;
	struct stat st;
	int fd, r = 0;
	DIR *d;

	fd = fdio_open_beneath(rootfd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while (!r && (de = readdir(d))) {
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((size_t)snprintf(full, sizeof(full), "%s/%s", path,
				     de->d_name) < sizeof(full))
			r = list_add(l, n, full);
	}
	closedir(d);
	return r;
}

/* --- toplevel ---------------------------------------------------------- */

static void toplevel_chain_of(const char *path, bool is_dir, char *out)
{
	size_t n = strcspn(path, "/");

	if (!path[n] && !is_dir)
		n = 0; /* a file at the root: the root's chain */
	memcpy(out, path, n);
	out[n] = '\0';
}

static int toplevel_candidates(int rootfd, char ***l, size_t *n)
{
	return list_subdirs(rootfd, "", l, n);
}

/* --- crdb: CockroachDB's collections (spec 4.1) ------------------------- */

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* "DD-HHMMSS.ss", the last part of a full backup's directory. */
static bool crdb_full_leaf(const char *s, size_t n)
{
	return n == 12 && all_digits(s, 2) && s[2] == '-' &&
	       all_digits(s + 3, 6) && s[9] == '.' && all_digits(s + 10, 2);
}

/* Length of the full backup's directory at the start of path (a
 * "YYYY/MM/DD-HHMMSS.ss" tree, or one user-named directory that is none
 * of the collection's own), 0 when path is not inside one.  A bare name
 * (no '/') counts only when it is a directory. */
static size_t crdb_full_len(const char *path, bool is_dir)
{
	size_t n0 = strcspn(path, "/"), n1, n2;
	const char *p1, *p2;

	if (all_digits(path, n0) && n0 == 4) {
		if (!path[n0])
			return 0;
		p1 = path + n0 + 1;
		n1 = strcspn(p1, "/");
		if (!p1[n1] || n1 != 2 || !all_digits(p1, 2))
			return 0;
		p2 = p1 + n1 + 1;
		n2 = strcspn(p2, "/");
		if (!crdb_full_leaf(p2, n2) || (!p2[n2] && !is_dir))
			return 0;
		return (size_t)(p2 + n2 - path);
	}
	if ((n0 == 12 && !strncmp(path, "incrementals", 12)) ||
	    (n0 == 8 && !strncmp(path, "metadata", 8)))
		return 0;
	return path[n0] || is_dir ? n0 : 0;
}

static void crdb_chain_of(const char *path, bool is_dir, char *out)
{
	const char *full = path;
	size_t n;

	if (!strncmp(path, "incrementals/", 13))
		full = path + 13;
	n = crdb_full_len(full, full == path ? is_dir : true);
	/* incrementals/<full> itself and below share the full backup's key;
	 * "incrementals/2023" and such are not in a chain yet */
	if (full != path && n && !full[n] && !is_dir)
		n = 0;
	memcpy(out, full, n);
	out[n] = '\0';
}

static int crdb_candidates(int rootfd, char ***l, size_t *n)
{
	char **years = NULL, **months = NULL;
	size_t ny = 0, nm = 0;
	int r = list_subdirs(rootfd, "", &years, &ny);

	for (size_t i = 0; !r && i < ny; i++) {
		if (strlen(years[i]) != 4 || !all_digits(years[i], 4)) {
			if (strcmp(years[i], "incrementals") &&
			    strcmp(years[i], "metadata"))
				r = list_add(l, n, years[i]); /* user-named */
			continue;
		}
		r = list_subdirs(rootfd, years[i], &months, &nm);
	}
	for (size_t i = 0; !r && i < nm; i++)
		r = list_subdirs(rootfd, months[i], l, n);
	layout_list_free(years);
	layout_list_free(months);
	return r;
}

/* LATEST as CockroachDB resolves it (spec 4.2): the first non-empty
 * metadata/latest/LATEST-* in sorted order (newest sorts first), else
 * the root LATEST; the content is "/YYYY/MM/DD-HHMMSS.ss". */
static int crdb_read_latest(int rootfd, char *out, size_t outlen);

static const struct layout_profile profiles[] = {
    {
	.name = "toplevel",
	.description = "every top-level directory is a backup chain",
	.depth = 1,
	.chain_of = toplevel_chain_of,
	.candidates = toplevel_candidates,
    },
    {
	.name = "crdb",
	.description = "a CockroachDB collection: full backups at "
		       "YYYY/MM/DD-HHMMSS.ss (or a named subdirectory), "
		       "incrementals/ sharing their key",
	.depth = 4,
	.plaintext_outside_chains = true,
	.chain_of = crdb_chain_of,
	.candidates = crdb_candidates,
	.latest = crdb_read_latest,
    },
};

static int read_small(int rootfd, const char *path, char *out, size_t outlen)
{
	int fd = fdio_open_beneath(rootfd, path, O_RDONLY);
	size_t got = 0;
	int r;

	if (fd < 0)
		return fd;
	r = fdio_read_full(fd, (uint8_t *)out, outlen - 1, 0, &got);
	close(fd);
	if (r)
		return r;
	if (got == outlen - 1)
		return -ENAMETOOLONG;
	out[got] = '\0';
	return 0;
}

static int crdb_read_latest(int rootfd, char *out, size_t outlen)
{
	char **l = NULL, buf[4096];
	size_t n = 0, len;
	int r = list_files(rootfd, "metadata/latest", &l, &n);
	const char *s;

	buf[0] = '\0';
	if (!r && n > 1)
		qsort(l, n, sizeof(*l), cmp_str);
	for (size_t i = 0; !r && i < n && !buf[0]; i++) {
		if (!strncmp(strrchr(l[i], '/') + 1, "LATEST-", 7))
			r = read_small(rootfd, l[i], buf, sizeof(buf));
	}
	layout_list_free(l);
	if (!r && !buf[0])
		r = read_small(rootfd, "LATEST", buf, sizeof(buf));
	if (r)
		return r;
	for (s = buf; *s == '/'; s++)
		;
	len = strcspn(s, "\r\n");
	while (len && s[len - 1] == '/')
		len--;
	if (!len)
		return -ENOENT; /* CockroachDB: "malformed LATEST file" */
	if (len >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* --- the API ------------------------------------------------------------ */

const struct layout_profile *layout_find(const char *name)
{
	if (!name)
		return &profiles[0];
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	}
	return NULL;
}

const char *layout_name(const struct layout_profile *p)
{
	return p->name;
}

const char *layout_description(const struct layout_profile *p)
{
	return p->description;
}

const char *layout_known(void)
{
	return "toplevel, crdb";
}

unsigned layout_depth(const struct layout_profile *p)
{
	return p->depth;
}

int layout_chain_of(const struct layout_profile *p, const char *path,
		    bool is_dir, char *out, size_t outlen)
{
	if (!path_valid(path))
		return -EINVAL;
	if (strlen(path) >= outlen)
		return -ENAMETOOLONG;
	p->chain_of(path, is_dir, out);
	return 0;
}

bool layout_is_chain_dir(const struct layout_profile *p, const char *path)
{
	char chain[4096];

	return layout_chain_of(p, path, true, chain, sizeof(chain)) == 0 &&
	       strcmp(chain, path) == 0;
}

bool layout_has_encinfo(int rootfd, const char *path)
{
	char f[4096 + sizeof(KS_ENCINFO_NAME)];
	struct stat st;

	snprintf(f, sizeof(f), "%s%s%s", path, *path ? "/" : "",
		 KS_ENCINFO_NAME);
	return fstatat(rootfd, f, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

static int chain_list(const struct layout_profile *p, int rootfd,
		      bool need_encinfo, char ***out)
{
	char **cand = NULL, **l = calloc(1, sizeof(*l));
	size_t nc = 0, n = 0;
	int r = l ? 0 : -ENOMEM;

	if (!r)
		r = p->candidates(rootfd, &cand, &nc);
	if (!r && layout_has_encinfo(rootfd, ""))
		r = list_add(&l, &n, "");
	if (!r && nc > 1)
		qsort(cand, nc, sizeof(*cand), cmp_str);
	for (size_t i = 0; !r && i < nc; i++) {
		if (layout_is_chain_dir(p, cand[i]) &&
		    (!need_encinfo || layout_has_encinfo(rootfd, cand[i])))
			r = list_add(&l, &n, cand[i]);
	}
	layout_list_free(cand);
	if (r) {
		layout_list_free(l);
		return r;
	}
	*out = l;
	return 0;
}

int layout_chains(const struct layout_profile *p, int rootfd, char ***out)
{
	return chain_list(p, rootfd, true, out);
}

int layout_chain_dirs(const struct layout_profile *p, int rootfd, char ***out)
{
	return chain_list(p, rootfd, false, out);
}

static bool newer(const struct stat *a, const char *an, const struct stat *b,
		  const char *bn)
{
	if (a->st_mtim.tv_sec != b->st_mtim.tv_sec)
		return a->st_mtim.tv_sec > b->st_mtim.tv_sec;
	if (a->st_mtim.tv_nsec != b->st_mtim.tv_nsec)
		return a->st_mtim.tv_nsec > b->st_mtim.tv_nsec;
	return strcmp(an, bn) > 0;
}

static int newest_encinfo(const struct layout_profile *p, int rootfd, char *out,
			  size_t outlen)
{
	char **l = NULL, f[4096 + sizeof(KS_ENCINFO_NAME)];
	const char *best = NULL;
	struct stat st, best_st;
	int r = layout_chains(p, rootfd, &l);

	for (size_t i = 0; !r && l[i]; i++) {
		if (!*l[i])
			continue; /* the root's chain is not a backup */
		snprintf(f, sizeof(f), "%s/%s", l[i], KS_ENCINFO_NAME);
		if (fstatat(rootfd, f, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!best || newer(&st, l[i], &best_st, best)) {
			best = l[i];
			best_st = st;
		}
	}
	if (!r && !best)
		r = -ENOENT;
	if (!r && strlen(best) >= outlen)
		r = -ENAMETOOLONG;
	if (!r)
		strcpy(out, best);
	layout_list_free(l);
	return r;
}

int layout_latest(const struct layout_profile *p, int rootfd, char *out,
		  size_t outlen)
{
	if (p->latest)
		return p->latest(rootfd, out, outlen);
	return newest_encinfo(p, rootfd, out, outlen);
}

int layout_chain_arg(const struct layout_profile *p, const char *arg, char *out,
		     size_t outlen)
{
	size_t len;

	while (*arg == '/')
		arg++;
	while (!strncmp(arg, "./", 2))
		arg += 2;
	if (!strcmp(arg, "."))
		arg = "";
	len = strlen(arg);
	while (len && arg[len - 1] == '/')
		len--;
	if (len >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, arg, len);
	out[len] = '\0';
	if (!path_valid(out) || !layout_is_chain_dir(p, out))
		return -EINVAL;
	return 0;
}

/* Length of name without a "<digits>.tmp" suffix. */
static size_t strip_tmp(const char *name)
{
	size_t n = strlen(name), d = 0;

	if (n < 5 || strcmp(name + n - 4, ".tmp"))
		return n;
	while (d < n - 4 && name[n - 5 - d] >= '0' && name[n - 5 - d] <= '9')
		d++;
	return d && d < n - 4 ? n - 4 - d : n;
}

enum layout_kind layout_file_kind(const struct layout_profile *p,
				  const char *path)
{
	const char *base = strrchr(path, '/');
	char chain[4096];
	size_t n;

	if (!p->plaintext_outside_chains)
		return LAYOUT_ENCRYPTED;
	base = base ? base + 1 : path;
	n = strip_tmp(base);
	if (n >= 9 && !strncmp(base + n - 9, "-CHECKSUM", 9))
		return LAYOUT_CHECKSUM;
	if (!strncmp(base, "BACKUP-LOCK-", 12))
		return LAYOUT_PLAINTEXT;
	if (layout_chain_of(p, path, false, chain, sizeof(chain)) || !*chain)
		return LAYOUT_PLAINTEXT;
	return LAYOUT_ENCRYPTED;
}

bool layout_has_kinds(const struct layout_profile *p)
{
	return p->plaintext_outside_chains;
}

int layout_checksummed(const char *name, char *out, size_t outlen)
{
	size_t n = strip_tmp(name);

	if (strchr(name, '/') || n <= 9 ||
	    strncmp(name + n - 9, "-CHECKSUM", 9))
		return -EINVAL;
	n -= 9;
	if (n >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, name, n);
	out[n] = '\0';
	return 0;
}

static bool exists(int rootfd, const char *path)
{
	struct stat st;

	return fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

const struct layout_profile *layout_detect(int rootfd)
{
	const struct layout_profile *crdb = layout_find("crdb");
	char **l = NULL;
	size_t n = 0;
	bool yes = exists(rootfd, "metadata/latest") ||
		   exists(rootfd, "LATEST") || exists(rootfd, "incrementals");

	if (!yes && crdb->candidates(rootfd, &l, &n) == 0) {
		for (size_t i = 0; !yes && i < n; i++)
			yes = strchr(l[i], '/') && /* YYYY/MM/DD-... */
			      layout_is_chain_dir(crdb, l[i]);
	}
	layout_list_free(l);
	return yes ? crdb : layout_find(NULL);
}

const struct layout_profile *layout_resolve(const char *name, int rootfd)
{
	return name ? layout_find(name) : layout_detect(rootfd);
}

bool layout_name_reserved(const char *name)
{
	return ks_is_encinfo_name(name) ||
	       strcmp(name, LAYOUT_KEYCHECK_NAME) == 0 ||
	       strcmp(name, LAYOUT_LOCK_NAME) == 0 ||
	       strncmp(name, LAYOUT_TMP_PREFIX, strlen(LAYOUT_TMP_PREFIX)) == 0;
}
