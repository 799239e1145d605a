/*
 * encinfo.c - EncryptionInfo wire format and the ENCRYPTION-INFO* files.
 *
 * A hand-written codec for a three-field message instead of a protobuf
 * library: the map keys are raw SHA-256 digests in a proto "string" field,
 * which protobuf-c and upb would reject as invalid UTF-8 (spec §2.2).  The
 * decoder reads through a bounded cursor; every length is checked against
 * what remains before it is used.  The store is untrusted, so decoding is
 * bounded: map records are first collected as views into the input (at
 * most ENCINFO_MAX_ENTRIES), repeated keys are found by sorting those
 * views, and only the surviving entries are copied.
 *
 * Map entries are encoded in insertion order.  CockroachDB builds the map
 * from a Go map (random order), so readers cannot depend on any order; the
 * test vector encinfo-kms3.bin (made by protoc from a text message) is in
 * insertion order, not sorted, and is reproduced byte for byte this way.
 */
#include "encinfo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/log.h"

#define WT_VARINT 0
#define WT_I64 1
#define WT_LEN 2
#define WT_SGROUP 3
#define WT_EGROUP 4
#define WT_I32 5
#define MAX_GROUP_DEPTH 32

/* --- the message in memory --------------------------------------------- */

void encinfo_init(struct encinfo *ei)
{
	memset(ei, 0, sizeof(*ei));
}

void encinfo_release(struct encinfo *ei)
{
	for (size_t i = 0; i < ei->n; i++) {
		free(ei->entries[i].key);
		free(ei->entries[i].val);
	}
	free(ei->entries);
	free(ei->salt);
	encinfo_init(ei);
}

/* A malloc'd copy of p[0..len), never NULL on success (even for len 0). */
static uint8_t *memdup0(const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);

	if (d && len)
		memcpy(d, p, len);
	return d;
}

int encinfo_set_salt(struct encinfo *ei, const uint8_t *salt, size_t len)
{
	uint8_t *s = NULL;

	if (len) {
		s = memdup0(salt, len);
		if (!s)
			return -ENOMEM;
	}
	free(ei->salt);
	ei->salt = s;
	ei->saltlen = len;
	return 0;
}

const struct encinfo_entry *encinfo_get(const struct encinfo *ei,
					const uint8_t *key, size_t keylen)
{
	for (size_t i = 0; i < ei->n; i++) {
		const struct encinfo_entry *e = &ei->entries[i];

		if (e->keylen == keylen &&
		    (!keylen || memcmp(e->key, key, keylen) == 0))
			return e;
	}
	return NULL;
}

static int grow_entries(struct encinfo *ei)
{
	struct encinfo_entry *n;
	size_t ncap;

	if (ei->n < ei->cap)
		return 0;
	ncap = ei->cap ? ei->cap * 2 : 4;
	n = reallocarray(ei->entries, ncap, sizeof(*n));
	if (!n)
		return -ENOMEM;
	ei->entries = n;
	ei->cap = ncap;
	return 0;
}

/* Append a new entry (the key is known not to be there yet). */
static int append_entry(struct encinfo *ei, const uint8_t *key, size_t keylen,
			const uint8_t *val, size_t vallen)
{
	struct encinfo_entry *e;
	uint8_t *k, *v;

	if (ei->n >= ENCINFO_MAX_ENTRIES)
		return -E2BIG;
	k = memdup0(key, keylen);
	v = memdup0(val, vallen);
	if (!k || !v || grow_entries(ei)) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	e = &ei->entries[ei->n++];
	e->key = k;
	e->keylen = keylen;
	e->val = v;
	e->vallen = vallen;
	return 0;
}

int encinfo_put(struct encinfo *ei, const uint8_t *key, size_t keylen,
		const uint8_t *val, size_t vallen)
{
	struct encinfo_entry *e =
	    (struct encinfo_entry *)encinfo_get(ei, key, keylen);
	uint8_t *v;

	if (!e)
		return append_entry(ei, key, keylen, val, vallen);
	v = memdup0(val, vallen);
	if (!v)
		return -ENOMEM;
	free(e->val);
	e->val = v;
	e->vallen = vallen;
	return 0;
}

/* --- encoding ------------------------------------------------------------ */

static int put_varint(struct buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return buf_add(b, tmp, n);
}

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static int put_bytes(struct buf *b, unsigned field, const uint8_t *p,
		     size_t len)
{
	int r = put_varint(b, (uint64_t)field << 3 | WT_LEN);

	if (!r)
		r = put_varint(b, len);
	if (!r)
		r = buf_add(b, p, len);
	return r;
}

static int put_entry(struct buf *b, const struct encinfo_entry *e)
{
	size_t sub = 1 + varint_size(e->keylen) + e->keylen + 1 +
		     varint_size(e->vallen) + e->vallen;
	int r = put_varint(b, 3 << 3 | WT_LEN);

	if (!r)
		r = put_varint(b, sub);
	if (!r)
		r = put_bytes(b, 1, e->key, e->keylen);
	if (!r)
		r = put_bytes(b, 2, e->val, e->vallen);
	return r;
}

int encinfo_encode(const struct encinfo *ei, struct buf *out)
{
	size_t start = out->len;
	int r = 0;

	if (ei->scheme) {
		r = put_varint(out, 1 << 3 | WT_VARINT);
		if (!r)
			r = put_varint(out, ei->scheme);
	}
	if (!r && ei->saltlen)
		r = put_bytes(out, 2, ei->salt, ei->saltlen);
	for (size_t i = 0; !r && i < ei->n; i++)
		r = put_entry(out, &ei->entries[i]);
	if (r) {
		out->len = start;
		if (out->cap)
			out->data[start] = '\0';
	}
	return r;
}

/* --- decoding ------------------------------------------------------------ */

struct rd {
	const uint8_t *p;
	const uint8_t *end;
};

static int get_varint(struct rd *d, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < 10; i++) {
		uint8_t c;

		if (d->p == d->end)
			return -EPROTO;
		c = *d->p++;
		/* The 10th byte carries bit 63 only. */
		if (i == 9 && c > 1)
			return -EPROTO;
		x |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EPROTO;
}

static int get_tag(struct rd *d, uint32_t *field, unsigned *wt)
{
	uint64_t t;
	int r = get_varint(d, &t);

	if (r)
		return r;
	if (t >> 3 == 0 || t >> 3 > 0x1fffffff)
		return -EPROTO;
	*field = (uint32_t)(t >> 3);
	*wt = (unsigned)(t & 7);
	return 0;
}

/* A length-delimited payload: sub covers it, d moves past it. */
static int get_len(struct rd *d, struct rd *sub)
{
	uint64_t n;
	int r = get_varint(d, &n);

	if (r)
		return r;
	if (n > (uint64_t)(d->end - d->p))
		return -EPROTO;
	sub->p = d->p;
	sub->end = d->p + n;
	d->p = sub->end;
	return 0;
}

static int skip_fixed(struct rd *d, size_t n)
{
	if ((size_t)(d->end - d->p) < n)
		return -EPROTO;
	d->p += n;
	return 0;
}

static int skip_field(struct rd *d, uint32_t field, unsigned wt, int depth)
{
	struct rd sub;
	uint64_t v;

	switch (wt) {
	case WT_VARINT:
		return get_varint(d, &v);
	case WT_I64:
		return skip_fixed(d, 8);
	case WT_LEN:
		return get_len(d, &sub);
	case WT_I32:
		return skip_fixed(d, 4);
	case WT_SGROUP:
		if (depth >= MAX_GROUP_DEPTH)
			return -EPROTO;
		for (;;) {
			uint32_t f;
			unsigned w;
			int r = get_tag(d, &f, &w);

			if (r)
				return r;
			if (w == WT_EGROUP)
				return f == field ? 0 : -EPROTO;
			r = skip_field(d, f, w, depth + 1);
			if (r)
				return r;
		}
	default: /* a stray end-group, or wire types 6 and 7 */
		return -EPROTO;
	}
}

/* A map record as it appears on the wire, pointing into the input. */
struct rec {
	const uint8_t *key, *val;
	size_t keylen, vallen;
	bool dup; /* a later repeat of an earlier key */
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static int recs_add(struct recs *rs, const struct rd *key, const struct rd *val)
{
	struct rec *e;

	if (rs->n >= ENCINFO_MAX_ENTRIES)
		return -E2BIG;
	if (rs->n == rs->cap) {
		size_t ncap = rs->cap ? rs->cap * 2 : 8;

		e = reallocarray(rs->v, ncap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		rs->v = e;
		rs->cap = ncap;
	}
	e = &rs->v[rs->n++];
	e->key = key->p;
	e->keylen = (size_t)(key->end - key->p);
	e->val = val->p;
	e->vallen = (size_t)(val->end - val->p);
	e->dup = false;
	return 0;
}

static int decode_entry(struct rd *d, struct recs *rs)
{
	struct rd key = {NULL, NULL}, val = {NULL, NULL};

	while (d->p < d->end) {
		uint32_t field;
		unsigned wt;
		int r = get_tag(d, &field, &wt);

		if (r)
			return r;
		if ((field == 1 || field == 2) && wt != WT_LEN)
			return -EPROTO;
		if (field == 1)
			r = get_len(d, &key);
		else if (field == 2)
			r = get_len(d, &val);
		else
			r = skip_field(d, field, wt, 0);
		if (r)
			return r;
	}
	return recs_add(rs, &key, &val);
}

static int decode_field(struct rd *d, uint32_t field, unsigned wt,
			struct encinfo *ei, struct recs *rs)
{
	struct rd sub;
	int r;

	if (field > 3)
		return skip_field(d, field, wt, 0);
	if (wt != (field == 1 ? WT_VARINT : WT_LEN))
		return -EPROTO;
	if (field == 1)
		return get_varint(d, &ei->scheme);
	r = get_len(d, &sub);
	if (r)
		return r;
	if (field == 2)
		return encinfo_set_salt(ei, sub.p, (size_t)(sub.end - sub.p));
	return decode_entry(&sub, rs);
}

static int key_cmp(const struct rec *a, const struct rec *b)
{
	if (a->keylen != b->keylen)
		return a->keylen < b->keylen ? -1 : 1;
	return a->keylen ? memcmp(a->key, b->key, a->keylen) : 0;
}

/* By key, then by wire position (the records sit in one array). */
static int cmp_recs(const void *a, const void *b)
{
	const struct rec *x = *(const struct rec *const *)a;
	const struct rec *y = *(const struct rec *const *)b;
	int c = key_cmp(x, y);

	if (c)
		return c;
	return x < y ? -1 : x > y;
}

/* Go's map semantics in O(n log n): sort, then in each run of one key the
 * first record takes the last value and the others are dropped. */
static int mark_dups(struct recs *rs)
{
	struct rec **by_key = reallocarray(NULL, rs->n, sizeof(*by_key));
	size_t i = 0;

	if (!by_key)
		return -ENOMEM;
	for (size_t j = 0; j < rs->n; j++)
		by_key[j] = &rs->v[j];
	qsort(by_key, rs->n, sizeof(*by_key), cmp_recs);
	while (i < rs->n) {
		struct rec *first = by_key[i++];

		for (; i < rs->n && !key_cmp(first, by_key[i]); i++) {
			by_key[i]->dup = true;
			first->val = by_key[i]->val;
			first->vallen = by_key[i]->vallen;
		}
	}
	free(by_key);
	return 0;
}

static int copy_recs(struct recs *rs, struct encinfo *ei)
{
	int r = rs->n > 1 ? mark_dups(rs) : 0;

	for (size_t i = 0; !r && i < rs->n; i++) {
		const struct rec *e = &rs->v[i];

		if (!e->dup)
			r = append_entry(ei, e->key, e->keylen, e->val,
					 e->vallen);
	}
	return r;
}

int encinfo_decode(const uint8_t *p, size_t len, struct encinfo *ei)
{
	struct rd d = {p, p + len};
	struct recs rs = {NULL, 0, 0};
	int r = 0;

	while (!r && d.p < d.end) {
		uint32_t field;
		unsigned wt;

		r = get_tag(&d, &field, &wt);
		if (!r)
			r = decode_field(&d, field, wt, ei, &rs);
	}
	if (!r)
		r = copy_recs(&rs, ei);
	free(rs.v);
	if (r)
		encinfo_release(ei);
	return r;
}

/* --- files --------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void encinfo_names_release(struct encinfo_names *names)
{
	for (size_t i = 0; i < names->n; i++)
		free(names->v[i]);
	free(names->v);
	names->v = NULL;
	names->n = 0;
}

static bool is_dir_entry(DIR *dir, const struct dirent *de)
{
	struct stat st;

	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false; /* reading it will report the problem */
	return S_ISDIR(st.st_mode);
}

static int names_add(struct encinfo_names *names, const char *name)
{
	char **v;
	char *s;

	if (names->n >= ENCINFO_MAX_FILES) {
		log_err("more than %d ENCRYPTION-INFO files in one chain "
			"directory: refused",
			ENCINFO_MAX_FILES);
		return -EPROTO;
	}
	s = strdup(name);
	v = s ? reallocarray(names->v, names->n + 1, sizeof(*v)) : NULL;
	if (!v) {
		free(s);
		return -ENOMEM;
	}
	v[names->n++] = s;
	names->v = v;
	return 0;
}

static int scan_dir(DIR *dir, struct encinfo_names *names)
{
	const size_t plen = strlen(ENCINFO_PREFIX);

	for (;;) {
		struct dirent *de;
		int r;

		errno = 0;
		de = readdir(dir);
		if (!de)
			return errno ? -errno : 0;
		if (strncmp(de->d_name, ENCINFO_PREFIX, plen) != 0 ||
		    is_dir_entry(dir, de))
			continue;
		r = names_add(names, de->d_name);
		if (r)
			return r;
	}
}

int encinfo_list(int dirfd, struct encinfo_names *out)
{
	DIR *dir = NULL;
	int fd, r;

	out->v = NULL;
	out->n = 0;
	/* A private open of "." so that the caller's fd offset is untouched. */
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	r = scan_dir(dir, out);
	closedir(dir);
	if (r)
		goto fail;
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), cmp_names);
	return 0;
fail:
	encinfo_names_release(out);
	if (r == -ENOMEM || r == -EPROTO)
		return r;
	log_err("cannot list the chain directory for ENCRYPTION-INFO: %s",
		strerror(-r));
	return -EIO;
}

static int read_fd(int fd, const char *name, struct buf *b)
{
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto io;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("%s is not a regular file", name);
		return -EIO;
	}
	if (st.st_size > (off_t)ENCINFO_FILE_MAX)
		goto big;
	r = buf_read_fd(b, fd);
	if (r == -E2BIG)
		goto big;
	if (r)
		goto io;
	return 0;
big:
	log_err("%s is larger than %u bytes: not an ENCRYPTION-INFO file", name,
		ENCINFO_FILE_MAX);
	return -EPROTO;
io:
	log_err("cannot read %s: %s", name, strerror(-r));
	return r == -ENOMEM ? r : -EIO;
}

int encinfo_read(int dirfd, const char *name, struct encinfo *ei)
{
	struct buf b;
	int fd, r;

	buf_init(&b, ENCINFO_FILE_MAX);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		log_err("cannot open %s: %s", name, strerror(-r));
		if (r != -ENOENT)
			r = -EIO;
		goto out;
	}
	r = read_fd(fd, name, &b);
	close(fd);
	if (r)
		goto out;
	r = encinfo_decode(b.data, b.len, ei);
	if (r == -EPROTO)
		log_err("%s is not a valid EncryptionInfo message", name);
	if (r == -E2BIG) {
		log_err("%s has more than %d KMS entries: not a real "
			"ENCRYPTION-INFO file, refused",
			name, ENCINFO_MAX_ENTRIES);
		r = -EPROTO;
	}
out:
	buf_release(&b);
	return r;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fsync_dir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int encinfo_write(int dirfd, const char *name, const uint8_t *p, size_t len)
{
	int fd, r;

	if (!*name || strchr(name, '/'))
		return -EINVAL;
	fd = openat(dirfd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		r = -errno;
		if (r == -EEXIST)
			return r;
		goto io;
	}
	r = write_all(fd, p, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (r) {
		unlinkat(dirfd, name, 0);
		goto io;
	}
	r = fsync_dir(dirfd);
	if (r)
		goto io;
	return 0;
io:
	log_err("cannot write %s: %s", name, strerror(-r));
	return -EIO;
}

int encinfo_next_name(size_t count, struct buf *out)
{
	if (count >= ENCINFO_MAX_FILES) {
		log_err("the chain directory has %zu ENCRYPTION-INFO files, "
			"the most kmsfs reads: no file can be added",
			count);
		return -E2BIG;
	}
	if (count == 0)
		return buf_addstr(out, ENCINFO_PREFIX);
	return buf_addf(out, "%s-%zu", ENCINFO_PREFIX, count + 1);
}
