/*
 * verify.c - read a whole store back and report what is wrong.
 *
 * First every chain's files are listed (fs/show.c's walk, so verify sees
 * what show counts), then worker threads take files from one shared
 * index: encrypted ones are decrypted to nowhere through the format
 * layer (which authenticates every chunk and the final one), plaintext
 * ones are only checked not to be ciphertext, checksums are recomputed
 * over the stored bytes of the file they cover.
 */
#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "cformat.h"
#include "keycache.h"
#include "journal.h"
#include "layout.h"
#include "show.h"

struct item {
	char *path;
	uint64_t size;
	const struct cf_key *key; /* NULL: the chain did not unlock */
	bool tmp;
};

struct run {
	const struct verify_opts *o;
	const struct layout_profile *lp;
	int rootfd;
	struct keycache *kc;
	struct item *items;
	size_t n, cap;
	const struct cf_key *key; /* of the chain being listed */
	atomic_size_t next;
	atomic_uint_fast64_t bytes, files;
	uint64_t total;
	pthread_mutex_t lock; /* problems */
	struct verify_report *rep;
	atomic_bool done;
};

static void problem(struct run *x, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(struct run *x, const char *path, const char *fmt, ...)
{
	struct verify_problem *v;
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&x->lock);
	v = realloc(x->rep->problems, (x->rep->nproblems + 1) * sizeof(*v));
	if (v) {
		x->rep->problems = v;
		v += x->rep->nproblems;
		v->path = strdup(*path ? path : "/");
		v->what = strdup(what);
		if (v->path && v->what)
			x->rep->nproblems++;
	}
	pthread_mutex_unlock(&x->lock);
}

static int add_item(void *ctx, const struct show_layer *layer, const char *path,
		    const struct stat *st)
{
	struct run *x = ctx;
	const char *base = strrchr(path, '/');
	struct item *v;

	(void)layer;
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 256;

		v = realloc(x->items, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		x->items = v;
		x->cap = cap;
	}
	v = &x->items[x->n];
	v->path = strdup(path);
	if (!v->path)
		return -ENOMEM;
	v->size = (uint64_t)st->st_size;
	v->key = x->key;
	base = base ? base + 1 : path;
	v->tmp = !strncmp(base, LAYOUT_TMP_PREFIX, strlen(LAYOUT_TMP_PREFIX));
	x->total += v->size;
	x->n++;
	return 0;
}

/* The version byte of fd's header (CF_V1, CF_V2, CF_V2_OPEN), else 0. */
static int header_version(int fd)
{
	uint8_t h[CF_PREAMBLE_LEN + 1];
	size_t got = 0;

	if (fdio_read_full(fd, h, sizeof(h), 0, &got) || got != sizeof(h) ||
	    memcmp(h, CF_PREAMBLE, CF_PREAMBLE_LEN))
		return 0;
	return h[CF_PREAMBLE_LEN];
}

static void check_encrypted(struct run *x, const struct item *it, int fd,
			    int null_fd)
{
	int v = header_version(fd), r;

	if (v == CF_V2_OPEN) {
		problem(x, it->path,
			"unfinished: it was being written when kmsfs stopped; "
			"mount the store once to finish it");
		return;
	}
	if (v != CF_V1 && v != CF_V2) {
		problem(x, it->path,
			"not encrypted where CockroachDB's format is expected");
		return;
	}
	if (!it->key)
		return; /* the chain's own problem says why */
	r = cf_decrypt_fd(it->key, fd, null_fd,
			  x->o->allow_v1 ? CF_ALLOW_V1 : 0);
	if (r)
		problem(x, it->path, "%s", cf_strerror(r));
}

/* SHA-256(stored bytes of fd)[:4]. */
static int checksum_fd(int fd, uint8_t out[4])
{
	uint8_t buf[65536], md[32];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned mdlen = 0;
	off_t off = 0;
	size_t got;
	int r = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) ? 0 : -ENOMEM;

	while (!r && !(r = fdio_read_full(fd, buf, sizeof(buf), off, &got)) &&
	       got) {
		if (!EVP_DigestUpdate(c, buf, got))
			r = -EIO;
		off += (off_t)got;
	}
	if (!r && !EVP_DigestFinal_ex(c, md, &mdlen))
		r = -EIO;
	EVP_MD_CTX_free(c);
	if (!r)
		memcpy(out, md, 4);
	return r;
}

static void check_checksum(struct run *x, const struct item *it, int fd)
{
	char covered[4096];
	uint8_t want[4], have[5];
	size_t n = strlen(it->path) - strlen("-CHECKSUM"), got = 0;
	int cfd;

	if (n >= sizeof(covered) || strcmp(it->path + n, "-CHECKSUM") != 0)
		return; /* a temporary's name: its file is elsewhere */
	memcpy(covered, it->path, n);
	covered[n] = '\0';
	cfd = fdio_open_beneath(x->rootfd, covered, O_RDONLY);
	if (cfd < 0)
		return; /* CockroachDB skips the check without the file */
	if (fdio_read_full(fd, have, sizeof(have), 0, &got) || got != 4)
		problem(x, it->path, "not a 4-byte checksum (%zu bytes)", got);
	else if (checksum_fd(cfd, want) == 0 && memcmp(want, have, 4))
		problem(x, it->path,
			"checksum mismatch: CockroachDB would refuse %s",
			covered);
	close(cfd);
}

static void check_item(struct run *x, const struct item *it, int null_fd)
{
	int fd;

	if (it->tmp) {
		const char *base = strrchr(it->path, '/');

		base = base ? base + 1 : it->path;
		problem(x, it->path, "%s",
			strncmp(base, JNL_PREFIX, strlen(JNL_PREFIX))
			    ? "leftover temporary file of kmsfs"
			    : "journal of an interrupted write: mount the "
			      "store once to finish its file");
		return;
	}
	fd = fdio_open_beneath(x->rootfd, it->path, O_RDONLY);
	if (fd < 0) {
		problem(x, it->path, "cannot open: %s", strerror(-fd));
		return;
	}
	switch (layout_file_kind(x->lp, it->path)) {
	case LAYOUT_ENCRYPTED:
		check_encrypted(x, it, fd, null_fd);
		break;
	case LAYOUT_PLAINTEXT:
		if (header_version(fd))
			problem(x, it->path,
				"encrypted where plaintext is expected");
		break;
	case LAYOUT_CHECKSUM:
		check_checksum(x, it, fd);
		break;
	}
	close(fd);
}

static void *worker(void *arg)
{
	struct run *x = arg;
	int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	size_t i;

	while ((i = atomic_fetch_add(&x->next, 1)) < x->n) {
		check_item(x, &x->items[i], null_fd);
		atomic_fetch_add(&x->bytes, x->items[i].size);
		atomic_fetch_add(&x->files, 1);
	}
	if (null_fd >= 0)
		close(null_fd);
	return NULL;
}

static void *reporter(void *arg)
{
	struct run *x = arg;
	struct timespec ts = {0, 500 * 1000 * 1000};

	while (!atomic_load(&x->done)) {
		x->o->progress(x->o->progress_ctx, atomic_load(&x->bytes),
			       x->total, atomic_load(&x->files), x->n);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* The chain's key into x->key: 0, 1 when it has no ENCRYPTION-INFO, or
 * -errno of unlocking it. */
static int unlock(struct run *x, const char *path)
{
	struct chain *ch;
	int fd, r;

	x->key = NULL;
	fd = fdio_open_beneath(x->rootfd, path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	if (faccessat(fd, KS_ENCINFO_NAME, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		r = 1;
	else if (!(r = keycache_chain(x->kc, fd, path, &ch)))
		r = keycache_key_read(x->kc, ch, &x->key);
	close(fd);
	return r;
}

/* Unlock one chain and list its files. */
static int list_chain(struct run *x, const char *path)
{
	struct show_chain c = {.path = (char *)path};
	size_t before = x->n;
	int r = unlock(x, path), w;

	if (r < 0 && r != -ENOKEY && r != -EBADMSG && r != -EACCES &&
	    r != -ETIMEDOUT && r != -EAGAIN && r != -EPROTO)
		return r;
	x->rep->chains++;
	w = show_chain_files(x->lp, x->rootfd, &c, add_item, x);
	for (size_t i = 0; i < c.nlayers; i++)
		free(c.layers[i].path);
	free(c.layers);
	if (w)
		return w;
	if (r == 1 && x->n > before)
		problem(x, path,
			"holds files but no ENCRYPTION-INFO: they cannot be "
			"decrypted");
	else if (r < 0)
		problem(x, path, "cannot unlock the chain: %s",
			r == -ENOKEY || r == -EBADMSG ? "no given key opens it"
						      : strerror(-r));
	return 0;
}

static int targets(struct run *x, char ***out)
{
	const char *t = x->o->target;
	char chain[4096];
	int r;

	if (!t)
		return layout_chain_dirs(x->lp, x->rootfd, out);
	if (!strcmp(t, "LATEST"))
		r = layout_latest(x->lp, x->rootfd, chain, sizeof(chain));
	else
		r = layout_chain_arg(x->lp, t, chain, sizeof(chain));
	if (r) {
		log_err("%s: %s", t,
			r == -ENOENT ? "no LATEST backup in the store"
				     : "not a chain directory of the store");
		return r == -ENOENT ? r : -EINVAL;
	}
	*out = calloc(2, sizeof(**out));
	if (!*out || !((*out)[0] = strdup(chain))) {
		free(*out);
		return -ENOMEM;
	}
	return 0;
}

static int check_all(struct run *x)
{
	unsigned nt = x->o->threads;
	pthread_t th[64], rep;
	bool have_rep = false;
	size_t started = 0;

	if (!nt) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);

		nt = c > 0 ? (unsigned)c : 1;
	}
	if (nt > 64)
		nt = 64;
	if (x->o->progress && pthread_create(&rep, NULL, reporter, x) == 0)
		have_rep = true;
	while (started < nt &&
	       pthread_create(&th[started], NULL, worker, x) == 0)
		started++;
	if (!started)
		worker(x);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	atomic_store(&x->done, true);
	if (have_rep) {
		pthread_join(rep, NULL);
		x->o->progress(x->o->progress_ctx, x->total, x->total, x->n,
			       x->n);
	}
	return 0;
}

static int run_store(struct run *x)
{
	char **l = NULL;
	int r = targets(x, &l);

	for (size_t i = 0; !r && l[i]; i++)
		r = list_chain(x, l[i]);
	layout_list_free(l);
	if (!r)
		r = check_all(x);
	return r;
}

int verify_run(const struct verify_opts *o, struct verify_report *out)
{
	struct run x = {.o = o, .rep = out};
	struct timespec t0, t1;
	int r;

	memset(out, 0, sizeof(*out));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_mutex_init(&x.lock, NULL);
	x.rootfd = open(o->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.rootfd < 0) {
		r = -errno;
		log_err("backing store %s: %s", o->backing, strerror(-r));
		goto out;
	}
	x.lp = layout_resolve(o->profile, x.rootfd);
	r = x.lp ? keycache_new(o->keys, &x.kc) : -EINVAL;
	if (!r)
		r = run_store(&x);
out:
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out->seconds = (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	out->files = atomic_load(&x.files);
	out->bytes = atomic_load(&x.bytes);
	for (size_t i = 0; i < x.n; i++)
		free(x.items[i].path);
	free(x.items);
	keycache_free(x.kc);
	if (x.rootfd >= 0)
		close(x.rootfd);
	pthread_mutex_destroy(&x.lock);
	return r;
}

void verify_report_release(struct verify_report *r)
{
	for (size_t i = 0; i < r->nproblems; i++) {
		free(r->problems[i].path);
		free(r->problems[i].what);
	}
	free(r->problems);
	memset(r, 0, sizeof(*r));
}
