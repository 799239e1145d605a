/*
 * known.c - the known-keys record (format and rules in known.h).
 *
 * In memory: two sets of 32-byte digests, the recorded fingerprints and
 * the SHA-256 of each recorded chain directory, in open-addressing tables
 * (digests are uniform: their first bytes are the hash).  The file is
 * read at the first lookup and again when a lookup misses and the file
 * changed since (another mount or command recorded a key meanwhile).
 */
#include "known.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../lib/buf.h"
#include "../lib/fdio.h"
#include "../lib/hex.h"
#include "../lib/log.h"
#include "../lib/privfile.h"

#define KNOWN_TAG "kfp1:"
#define KNOWN_FP_INFO "kmsfs chain key fingerprint v1"
#define KNOWN_HEADER                                                           \
	"# kmsfs known chain keys: fingerprint, when recorded (UTC), chain "   \
	"directory.\n# See KEY TRUST in kmsfs(1).\n"

/* --- a set of digests ---------------------------------------------------- */

struct dset {
	uint8_t (*v)[32];
	uint8_t *used;
	size_t cap, n; /* cap: 0 or a power of two */
};

static size_t dset_slot(const struct dset *s, const uint8_t *x)
{
	uint64_t h;
	size_t i;

	memcpy(&h, x, sizeof(h));
	i = (size_t)h & (s->cap - 1);
	while (s->used[i] && memcmp(s->v[i], x, 32) != 0)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static bool dset_has(const struct dset *s, const uint8_t *x)
{
	return s->cap && s->used[dset_slot(s, x)];
}

static void dset_clear(struct dset *s)
{
	free(s->v);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

static int dset_add(struct dset *s, const uint8_t *x);

static int dset_grow(struct dset *s)
{
	struct dset g = {NULL, NULL, s->cap ? 2 * s->cap : 64, 0};

	g.v = calloc(g.cap, sizeof(*g.v));
	g.used = calloc(g.cap, 1);
	if (!g.v || !g.used) {
		dset_clear(&g);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (s->used[i])
			dset_add(&g, s->v[i]); /* fits: no growth */
	}
	dset_clear(s);
	*s = g;
	return 0;
}

static int dset_add(struct dset *s, const uint8_t *x)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap && dset_grow(s))
		return -ENOMEM;
	i = dset_slot(s, x);
	if (!s->used[i]) {
		memcpy(s->v[i], x, 32);
		s->used[i] = 1;
		s->n++;
	}
	return 0;
}

/* --- the record ---------------------------------------------------------- */

struct ks_known {
	char *path;
	bool accept_new;
	pthread_mutex_t lock;
	bool loaded;
	struct stat st; /* the file as last read; st_ino 0: there was none */
	struct dset keys;
	struct dset where;
};

int known_new(const char *path, bool accept_new, struct ks_known **out)
{
	struct ks_known *k = calloc(1, sizeof(*k));

	*out = NULL;
	if (!k || !(k->path = strdup(path))) {
		free(k);
		return -ENOMEM;
	}
	k->accept_new = accept_new;
	pthread_mutex_init(&k->lock, NULL);
	*out = k;
	return 0;
}

void known_free(struct ks_known *k)
{
	if (!k)
		return;
	dset_clear(&k->keys);
	dset_clear(&k->where);
	pthread_mutex_destroy(&k->lock);
	free(k->path);
	free(k);
}

const char *known_path(const struct ks_known *k)
{
	return k->path;
}

bool known_accept_new(const struct ks_known *k)
{
	return k->accept_new;
}

int known_fingerprint(const struct secret *dk, uint8_t fp[KNOWN_FP_SIZE])
{
	unsigned int len = 0;

	if (!HMAC(EVP_sha256(), dk->bytes, (int)dk->len,
		  (const uint8_t *)KNOWN_FP_INFO, strlen(KNOWN_FP_INFO), fp,
		  &len) ||
	    len != KNOWN_FP_SIZE)
		return -EIO;
	return 0;
}

static int where_digest(const char *where, uint8_t out[32])
{
	return EVP_Digest(where, strlen(where), out, NULL, EVP_sha256(),
			  NULL) == 1
		   ? 0
		   : -EIO;
}

/* "kfp1:<hex> <time> <where>": add the fingerprint and where's digest. */
static int parse_line(struct ks_known *k, const char *line)
{
	uint8_t fp[KNOWN_FP_SIZE], wd[32];
	const char *p = line + strlen(KNOWN_TAG);
	int r;

	if (strncmp(line, KNOWN_TAG, strlen(KNOWN_TAG)) != 0 ||
	    strnlen(p, 2 * KNOWN_FP_SIZE) < 2 * KNOWN_FP_SIZE ||
	    hex_decode(p, 2 * KNOWN_FP_SIZE, fp) != 0)
		return 0;
	p += 2 * KNOWN_FP_SIZE;
	if (*p && *p != ' ')
		return 0;
	r = dset_add(&k->keys, fp);
	p += strspn(p, " ");
	p += strcspn(p, " "); /* the time */
	p += strspn(p, " ");
	if (!r && *p && where_digest(p, wd) == 0)
		r = dset_add(&k->where, wd);
	return r;
}

static int parse(struct ks_known *k, char *text)
{
	int r = 0;

	dset_clear(&k->keys);
	dset_clear(&k->where);
	for (char *line = text, *nl; !r && line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		r = parse_line(k, line);
	}
	return r;
}

/* Called with k->lock held. */
static int known_read(struct ks_known *k)
{
	char why[PRIVFILE_WHY_MAX];
	struct buf b;
	int fd, r;

	r = privfile_open(k->path, &fd, why);
	if (r == -ENOENT) {
		memset(&k->st, 0, sizeof(k->st));
		dset_clear(&k->keys);
		dset_clear(&k->where);
		k->loaded = true;
		return 0;
	}
	if (r) {
		log_err("known-keys file %s: %s", k->path, why);
		return r;
	}
	buf_init(&b, KNOWN_FILE_MAX);
	r = fstat(fd, &k->st) < 0 ? -errno : buf_read_fd(&b, fd);
	close(fd);
	if (!r)
		r = buf_addch(&b, '\0');
	if (!r)
		r = parse(k, (char *)b.data);
	buf_release(&b);
	if (r)
		log_err("known-keys file %s: cannot read it: %s", k->path,
			r == -E2BIG ? "larger than 16 MiB" : strerror(-r));
	k->loaded = !r;
	return r;
}

/* Called with k->lock held: read the file if it changed since. */
static int known_refresh(struct ks_known *k)
{
	struct stat st;

	if (!k->loaded)
		return known_read(k);
	if (stat(k->path, &st) < 0)
		st.st_ino = 0;
	if (st.st_ino == k->st.st_ino && st.st_size == k->st.st_size &&
	    st.st_mtim.tv_sec == k->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == k->st.st_mtim.tv_nsec)
		return 0;
	return known_read(k);
}

int known_lookup(struct ks_known *k, const uint8_t fp[KNOWN_FP_SIZE],
		 const char *where, bool *changed)
{
	uint8_t wd[32];
	int r;

	*changed = false;
	pthread_mutex_lock(&k->lock);
	r = k->loaded ? 0 : known_read(k);
	if (!r && !dset_has(&k->keys, fp))
		r = known_refresh(k);
	if (!r)
		r = dset_has(&k->keys, fp);
	if (r == 0 && where && where_digest(where, wd) == 0)
		*changed = dset_has(&k->where, wd);
	pthread_mutex_unlock(&k->lock);
	return r;
}

/* mkdir -p of path's directory; the directories made get mode 0700. */
static int make_parent(const char *path)
{
	char *d = strdup(path), *slash;
	int r = 0;

	if (!d)
		return -ENOMEM;
	slash = strrchr(d, '/');
	if (slash && slash != d) {
		*slash = '\0';
		for (char *p = d + 1; !r; p++) {
			char c = *p;

			if (c != '/' && c != '\0')
				continue;
			*p = '\0';
			if (mkdir(d, 0700) < 0 && errno != EEXIST)
				r = -errno;
			*p = c;
			if (!c)
				break;
		}
	}
	free(d);
	return r;
}

/* The line for fp: time and where (control characters become '?'). */
static int format_line(const uint8_t fp[KNOWN_FP_SIZE], const char *where,
		       struct buf *line)
{
	char hex[2 * KNOWN_FP_SIZE + 1], when[32];
	time_t now = time(NULL);
	struct tm tm;
	int r;

	hex_encode(fp, KNOWN_FP_SIZE, hex);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	r = buf_addf(line, "%s%s %s ", KNOWN_TAG, hex, when);
	for (const char *p = where ? where : "?"; !r && *p; p++)
		r = buf_addch(line, (unsigned char)*p < 0x20 ? '?' : *p);
	return r ? r : buf_addch(line, '\n');
}

/* Append line to the file under an exclusive flock, then fsync.  *ours:
 * whether the file was as last read before the append (nobody else
 * wrote meanwhile), and then k->st is brought up to date. */
static int append(struct ks_known *k, const struct buf *line, bool *ours)
{
	struct stat st;
	int fd, r;

	*ours = false;
	fd = open(k->path,
		  O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
		      O_NOCTTY,
		  0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077)) {
		close(fd);
		return -EPERM;
	}
	r = flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0 ? -errno : 0;
	*ours = !r && st.st_ino == k->st.st_ino && st.st_size == k->st.st_size;
	if (!r && st.st_size == 0) {
		*ours = true; /* a new file */
		r = fdio_write_all(fd, (const uint8_t *)KNOWN_HEADER,
				   strlen(KNOWN_HEADER), -1);
	}
	if (!r)
		r = fdio_write_all(fd, line->data, line->len, -1);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (!r && *ours && fstat(fd, &k->st) < 0)
		*ours = false;
	if (close(fd) < 0 && !r)
		r = -errno;
	return r;
}

int known_add(struct ks_known *k, const uint8_t fp[KNOWN_FP_SIZE],
	      const char *where)
{
	struct buf line;
	uint8_t wd[32];
	bool ours;
	int r;

	buf_init(&line, 8192);
	pthread_mutex_lock(&k->lock);
	r = known_refresh(k);
	if (!r && dset_has(&k->keys, fp))
		goto out;
	if (!r)
		r = format_line(fp, where, &line);
	if (!r)
		r = make_parent(k->path);
	if (!r)
		r = append(k, &line, &ours);
	if (r) {
		log_err("known-keys file %s: cannot record a chain key: %s%s",
			k->path, strerror(-r),
			r == -EPERM ? " (it must be a regular file owned by "
				      "this user, mode 0600)"
				    : "");
		goto out;
	}
	r = dset_add(&k->keys, fp);
	if (!r && where && where_digest(where, wd) == 0)
		r = dset_add(&k->where, wd);
	if (!ours) /* another writer's lines too: read them at a miss */
		memset(&k->st, 0, sizeof(k->st));
out:
	pthread_mutex_unlock(&k->lock);
	buf_release(&line);
	return r;
}
