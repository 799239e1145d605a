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

struct layout_profile {
	const char *name;
	const char *description;
	unsigned depth;
	/* chain of a valid path, written to out (fits: outlen > strlen) */
	void (*chain_of)(const char *path, bool is_dir, char *out);
	/* chain directories to consider besides the root, added to *l */
	int (*candidates)(int rootfd, char ***l, size_t *n);
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

static const struct layout_profile profiles[] = {
    {
	.name = "toplevel",
	.description = "every top-level directory is a backup chain",
	.depth = 1,
	.chain_of = toplevel_chain_of,
	.candidates = toplevel_candidates,
    },
};

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
	return "toplevel";
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

static bool has_encinfo(int rootfd, const char *path)
{
	char f[4096 + sizeof(KS_ENCINFO_NAME)];
	struct stat st;

	snprintf(f, sizeof(f), "%s%s%s", path, *path ? "/" : "",
		 KS_ENCINFO_NAME);
	return fstatat(rootfd, f, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int layout_chains(const struct layout_profile *p, int rootfd, char ***out)
{
	char **cand = NULL, **l = calloc(1, sizeof(*l));
	size_t nc = 0, n = 0;
	int r = l ? 0 : -ENOMEM;

	if (!r)
		r = p->candidates(rootfd, &cand, &nc);
	if (!r && has_encinfo(rootfd, ""))
		r = list_add(&l, &n, "");
	if (!r && nc > 1)
		qsort(cand, nc, sizeof(*cand), cmp_str);
	for (size_t i = 0; !r && i < nc; i++) {
		if (layout_is_chain_dir(p, cand[i]) &&
		    has_encinfo(rootfd, cand[i]))
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

static bool newer(const struct stat *a, const char *an, const struct stat *b,
		  const char *bn)
{
	if (a->st_mtim.tv_sec != b->st_mtim.tv_sec)
		return a->st_mtim.tv_sec > b->st_mtim.tv_sec;
	if (a->st_mtim.tv_nsec != b->st_mtim.tv_nsec)
		return a->st_mtim.tv_nsec > b->st_mtim.tv_nsec;
	return strcmp(an, bn) > 0;
}

int layout_latest(const struct layout_profile *p, int rootfd, char *out,
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

bool layout_name_reserved(const char *name)
{
	return ks_is_encinfo_name(name) ||
	       strcmp(name, LAYOUT_KEYCHECK_NAME) == 0 ||
	       strncmp(name, LAYOUT_TMP_PREFIX, strlen(LAYOUT_TMP_PREFIX)) == 0;
}
