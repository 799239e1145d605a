/*
 * show.c - collect what `kmsfs show` prints.
 *
 * Layers: with the crdb profile a chain's full backup is its directory,
 * and its incrementals are the folders <8 digits>/<HHMMSS.ss>[-start]
 * under incrementals/<full>/ (22.1+) and inside the full directory
 * (pre-22.1); those are counted as their own layers, not the full one's.
 * With toplevel a chain is one layer.
 */
#include "show.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "cformat.h"
#include "keycache.h"

#define SHOW_DEPTH_MAX 64

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* "YYYYMMDD" + "HHMMSS.ss[-start]": an incremental's two folder names. */
static bool inc_names(const char *day, const char *time)
{
	return strlen(day) == 8 && digits(day, 8) && strlen(time) >= 9 &&
	       digits(time, 6) && time[6] == '.' && digits(time + 7, 2) &&
	       (!time[9] || time[9] == '-');
}

static void end_of_full(const char *path, char *out, size_t len)
{
	unsigned y, mo, d, h, mi, s, cs;

	out[0] = '\0';
	if (sscanf(path, "%4u/%2u/%2u-%2u%2u%2u.%2u", &y, &mo, &d, &h, &mi, &s,
		   &cs) == 7)
		snprintf(out, len, "%04u-%02u-%02u %02u:%02u:%02u.%02u", y, mo,
			 d, h, mi, s, cs);
}

static void end_of_inc(const char *day, const char *time, char *out, size_t len)
{
	snprintf(out, len, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s.%.2s", day, day + 4,
		 day + 6, time, time + 2, time + 4, time + 7);
}

struct walk {
	const struct layout_profile *lp;
	int rootfd;
	struct show_layer *layer;
	bool skip_incs; /* full backup of crdb: incrementals are layers */
	const char *chain;
	show_file_fn fn;
	void *ctx;
};

static int count_file(struct walk *w, const char *path, const struct stat *st)
{
	uint64_t plain = (uint64_t)st->st_size;

	w->layer->files++;
	w->layer->stored_bytes += (uint64_t)st->st_size;
	if (layout_file_kind(w->lp, path) == LAYOUT_ENCRYPTED &&
	    cf_plain_size((uint64_t)st->st_size, &plain))
		plain = 0; /* not a whole v2 file: verify says more */
	w->layer->plain_bytes += plain;
	return w->fn ? w->fn(w->ctx, w->layer, path, st) : 0;
}

/* A subdirectory in another chain (a chain below the root's) belongs to
 * that chain's listing, not this one's. */
static bool same_chain(const struct walk *w, const char *sub)
{
	char chain[4096];

	return layout_chain_of(w->lp, sub, true, chain, sizeof(chain)) == 0 &&
	       strcmp(chain, w->chain) == 0;
}

static int walk_dir(struct walk *w, const char *path, int depth)
{
	char sub[4096];
	struct dirent *de;
	struct stat st;
	int fd, r = 0;
	DIR *d;

	fd = fdio_open_beneath(w->rootfd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = fd < 0 ? fd : -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (!r && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (size_t)snprintf(sub, sizeof(sub), "%s%s%s", path,
				     *path ? "/" : "",
				     de->d_name) >= sizeof(sub))
			continue;
		if (layout_name_reserved(de->d_name)) {
			/* kmsfs's own: not counted; temporaries reported */
			if (w->fn && S_ISREG(st.st_mode) &&
			    !strncmp(de->d_name, LAYOUT_TMP_PREFIX,
				     strlen(LAYOUT_TMP_PREFIX)))
				r = w->fn(w->ctx, w->layer, sub, &st);
		} else if (S_ISREG(st.st_mode)) {
			r = count_file(w, sub, &st);
		} else if (S_ISDIR(st.st_mode) && depth < SHOW_DEPTH_MAX &&
			   !(w->skip_incs && depth == 0 &&
			     strlen(de->d_name) == 8 &&
			     digits(de->d_name, 8)) &&
			   same_chain(w, sub)) {
			r = walk_dir(w, sub, depth + 1);
		}
	}
	closedir(d);
	return r;
}

static int add_layer(struct show_chain *c, const char *path, bool full,
		     struct show_layer **out)
{
	struct show_layer *v =
	    realloc(c->layers, (c->nlayers + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	c->layers = v;
	v += c->nlayers;
	memset(v, 0, sizeof(*v));
	v->path = strdup(path);
	if (!v->path)
		return -ENOMEM;
	v->full = full;
	c->nlayers++;
	*out = v;
	return 0;
}

/* Incrementals under base (<base>/<day>/<time>) as layers. */
static int add_incs(struct walk *w, struct show_chain *c, const char *base)
{
	char inc[4096];
	struct dirent *de, *te;
	int fd, r = 0;
	DIR *d;

	fd = fdio_open_beneath(w->rootfd, base, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	d = fdopendir(fd);
	while (!r && d && (de = readdir(d))) {
		int tfd = strlen(de->d_name) == 8 && digits(de->d_name, 8)
			      ? openat(fd, de->d_name,
				       O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					   O_CLOEXEC)
			      : -1;
		DIR *td = tfd >= 0 ? fdopendir(tfd) : NULL;

		while (!r && td && (te = readdir(td))) {
			struct show_layer *l;

			if (!inc_names(de->d_name, te->d_name) ||
			    (size_t)snprintf(inc, sizeof(inc), "%s/%s/%s", base,
					     de->d_name,
					     te->d_name) >= sizeof(inc))
				continue;
			r = add_layer(c, inc, false, &l);
			if (r)
				break;
			end_of_inc(de->d_name, te->d_name, l->end,
				   sizeof(l->end));
			w->layer = l;
			w->skip_incs = false;
			r = walk_dir(w, inc, 1);
		}
		if (td)
			closedir(td);
		else if (tfd >= 0)
			close(tfd);
	}
	if (d)
		closedir(d);
	else
		close(fd);
	return r;
}

static int cmp_layer(const void *a, const void *b)
{
	const struct show_layer *x = a, *y = b;

	if (x->full != y->full)
		return x->full ? -1 : 1;
	return strcmp(x->end, y->end);
}

int show_chain_files(const struct layout_profile *lp, int rootfd,
		     struct show_chain *c, show_file_fn fn, void *ctx)
{
	struct walk w = {
	    .lp = lp, .rootfd = rootfd, .chain = c->path, .fn = fn, .ctx = ctx};
	bool crdb = layout_depth(lp) > 1; /* layers beyond the full one */
	struct show_layer *full;
	char inc[4096];
	int r;

	r = add_layer(c, c->path, true, &full);
	if (r)
		return r;
	end_of_full(c->path, full->end, sizeof(full->end));
	w.layer = full;
	w.skip_incs = crdb;
	r = walk_dir(&w, c->path, 0);
	if (!r && crdb) {
		r = add_incs(&w, c, c->path); /* pre-22.1: inside the full */
		snprintf(inc, sizeof(inc), "incrementals/%s", c->path);
		if (!r)
			r = add_incs(&w, c, inc);
	}
	if (!r)
		qsort(c->layers, c->nlayers, sizeof(*c->layers), cmp_layer);
	return r;
}

static int collect_chain(struct walk *w, struct show_chain *c,
			 struct ks_keyring *keys)
{
	int r = show_chain_files(w->lp, w->rootfd, c, NULL, NULL), fd;

	if (r)
		return r;
	fd = fdio_open_beneath(w->rootfd, c->path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	r = ks_chain_describe(fd, keys, &c->encinfo);
	close(fd);
	return r == -ENOENT ? 0 : r;
}

/* Unwrap and verify the chain's key as a mount would. */
static int try_unlock(struct keycache *kc, int rootfd, const char *path)
{
	const struct cf_key *key;
	struct chain *ch;
	int fd, r;

	fd = fdio_open_beneath(rootfd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	r = keycache_chain(kc, fd, path, &ch);
	close(fd);
	return r ? r : keycache_key_read(kc, ch, &key);
}

static int collect_all(struct show_collection *out, struct walk *w,
		       struct ks_keyring *keys)
{
	struct keycache *kc = NULL;
	char **l = NULL;
	size_t n = 0;
	int r = layout_chains(w->lp, w->rootfd, &l);

	while (!r && l[n])
		n++;
	if (!r && n && !(out->chains = calloc(n, sizeof(*out->chains))))
		r = -ENOMEM;
	if (!r && keys)
		r = keycache_new(keys, &kc);
	for (size_t i = 0; !r && i < n; i++) {
		struct show_chain *c = &out->chains[i];

		out->n = i + 1;
		c->unlock = 1;
		c->path = strdup(l[i]);
		r = c->path ? collect_chain(w, c, keys) : -ENOMEM;
		if (!r && kc)
			c->unlock = try_unlock(kc, w->rootfd, c->path);
	}
	keycache_free(kc);
	layout_list_free(l);
	return r;
}

int show_collect(const char *backing, const char *profile,
		 struct ks_keyring *keys, struct show_collection *out)
{
	struct walk w;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.rootfd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.rootfd < 0) {
		r = -errno;
		log_err("backing store %s: %s", backing, strerror(-r));
		return r;
	}
	w.lp = out->layout = layout_resolve(profile, w.rootfd);
	r = w.lp ? 0 : -EINVAL;
	if (!r &&
	    layout_latest(w.lp, w.rootfd, out->latest, sizeof(out->latest)))
		out->latest[0] = '\0';
	if (!r)
		r = collect_all(out, &w, keys);
	if (r && r != -EINVAL)
		log_err("%s: cannot read the collection: %s", backing,
			strerror(-r));
	close(w.rootfd);
	if (r)
		show_release(out);
	return r;
}

void show_release(struct show_collection *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct show_chain *ch = &c->chains[i];

		for (size_t j = 0; j < ch->nlayers; j++)
			free(ch->layers[j].path);
		free(ch->layers);
		free(ch->path);
		ks_chain_desc_release(&ch->encinfo);
	}
	free(c->chains);
	c->chains = NULL;
	c->n = 0;
}
