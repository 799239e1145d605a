/*
 * kind.c - file kinds in the mount: the open file of any kind, and
 * checksum files kept right across writes and namespace changes.
 *
 * A "site" is one checksum file seen from its directory: the directory
 * (an fd of our own), the checksum's X there, X's kind and the chain key
 * to decrypt X.  Keys are looked up before ck_lock is taken (a first
 * lookup may call a KMS); everything that reads what X is happens under
 * ck_lock, so no checksum is mapped against an X that changes meanwhile.
 */
#include "kind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/fdio.h"
#include "../lib/log.h"
#include "ns.h"

#define KIND_PATH_MAX 4096
#define CK_SUFFIX "-CHECKSUM"

struct ck_site {
	int dirfd;
	bool has_x;
	char xname[NAME_MAX + 1];
	enum layout_kind xkind;
	const struct cf_key *key;
};

/* Per checksum inode: the pfile's host and the site of the operation in
 * progress (valid under ck_lock, between begin and end). */
struct kind_ck {
	struct pfile_host host;
	struct kfs *fs;
	struct kinode *in;
	struct ck_site site;
};

/* --- kinds ------------------------------------------------------------- */

/* "<path of dir>/<name>" into out. */
static int path_in(struct kfs *fs, struct kinode *dir, const char *name,
		   char *out, size_t len)
{
	size_t n;
	int r = ns_path(fs, dir, out, len);

	if (r)
		return r;
	n = strlen(out);
	if ((size_t)snprintf(out + n, len - n, "%s%s", n ? "/" : "", name) >=
	    len - n)
		return -ENAMETOOLONG;
	return 0;
}

enum layout_kind kind_at(struct kfs *fs, struct kinode *parent,
			 const char *name)
{
	char path[KIND_PATH_MAX];

	if (!layout_has_kinds(fs->layout) ||
	    path_in(fs, parent, name, path, sizeof(path)))
		return LAYOUT_ENCRYPTED;
	return layout_file_kind(fs->layout, path);
}

/* --- sites --------------------------------------------------------------- */

/* The key of the files in dir, NULL when none is at hand (or needed:
 * the root's chain holds no encrypted file in a profile with kinds). */
static const struct cf_key *dir_key(struct kfs *fs, struct kinode *dir)
{
	const struct cf_key *key;

	if (!dir || dir->chain == fs->root->chain ||
	    keycache_key_read(fs->kc, dir->chain, &key))
		return NULL;
	return key;
}

/* The site of checksum file name in dir; s->dirfd is -1 on failure. */
static int site_init(struct kfs *fs, struct kinode *dir, const char *name,
		     const struct cf_key *key, struct ck_site *s)
{
	char path[KIND_PATH_MAX];
	int d;

	memset(s, 0, sizeof(*s));
	s->key = key;
	d = inode_fd_get(fs, dir);
	if (d < 0)
		return d;
	s->dirfd = fcntl(d, F_DUPFD_CLOEXEC, 0);
	inode_fd_put(fs, dir);
	if (s->dirfd < 0)
		return -errno;
	s->has_x = layout_checksummed(name, s->xname, sizeof(s->xname)) == 0;
	if (s->has_x && path_in(fs, dir, s->xname, path, sizeof(path)) == 0)
		s->xkind = layout_file_kind(fs->layout, path);
	else
		s->has_x = false;
	return 0;
}

static void site_release(struct ck_site *s)
{
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->dirfd = -1;
}

static int site_basis(const struct ck_site *s, struct pf_basis *b)
{
	memset(b, 0, sizeof(*b));
	if (!s->has_x)
		return 0;
	return pfile_basis_at(s->dirfd, s->xname, s->xkind, s->key, b);
}

/* --- a checksum inode's pfile host ------------------------------------ */

/* in's directory, pinned, and name; NULL when its name is unknown. */
static struct kinode *name_of(struct kfs *fs, struct kinode *in, char *name,
			      size_t len)
{
	struct kinode *dir;

	pthread_mutex_lock(&fs->ns_lock);
	dir = in->parent;
	if (dir && strlen(in->name) < len) {
		strcpy(name, in->name);
		inode_pin(fs, dir);
	} else {
		dir = NULL;
	}
	pthread_mutex_unlock(&fs->ns_lock);
	return dir;
}

static int ck_begin(void *ctx)
{
	struct kind_ck *ck = ctx;
	struct kfs *fs = ck->fs;
	char name[NAME_MAX + 1];
	struct ck_site s = {.dirfd = -1};
	struct kinode *dir;
	int r = 0;

	dir = name_of(fs, ck->in, name, sizeof(name));
	if (dir) {
		r = site_init(fs, dir, name, NULL, &s);
		if (!r && s.has_x && s.xkind == LAYOUT_ENCRYPTED)
			s.key = dir_key(fs, dir);
		inode_unpin(fs, dir);
	}
	if (r)
		return r;
	pthread_mutex_lock(&fs->ck_lock);
	ck->site = s; /* no name: no X, the identity */
	return 0;
}

static int ck_basis(void *ctx, struct pf_basis *out)
{
	struct kind_ck *ck = ctx;
	int r = site_basis(&ck->site, out);

	if (r == -ENOKEY)
		log_err("%s: the chain's key is not available to map the "
			"checksum of %s",
			keycache_chain_label(ck->in->chain), ck->site.xname);
	return r;
}

static void ck_end(void *ctx)
{
	struct kind_ck *ck = ctx;

	site_release(&ck->site);
	pthread_mutex_unlock(&ck->fs->ck_lock);
}

/* --- open files ---------------------------------------------------------- */

bool kind_file_ready(struct kinode *in, bool writable)
{
	if (in->pf)
		return !writable || pfile_writable(in->pf);
	return in->kf && (!writable || kfile_writable(in->kf));
}

int kind_attach(struct kfs *fs, struct kinode *in, bool writable)
{
	char label[512];
	int fd = inode_reopen(fs, in, writable ? O_RDWR : O_RDONLY), r;

	if (fd < 0)
		return fd;
	if (in->pf) {
		pfile_set_writable_fd(in->pf, fd);
		return 0;
	}
	if (in->kind == LAYOUT_CHECKSUM && !in->ck) {
		in->ck = calloc(1, sizeof(*in->ck));
		if (!in->ck) {
			close(fd);
			return -ENOMEM;
		}
		in->ck->fs = fs;
		in->ck->in = in;
		in->ck->site.dirfd = -1;
		in->ck->host =
		    (struct pfile_host){in->ck, ck_begin, ck_basis, ck_end};
	}
	ns_label(fs, in, label, sizeof(label));
	r = pfile_open(fd, writable, in->ck ? &in->ck->host : NULL, label,
		       &in->pf);
	if (r)
		close(fd);
	return r;
}

void kind_attached(struct kfs *fs, struct kinode *in, bool writable)
{
	struct stat st;

	if (!writable || !layout_has_kinds(fs->layout) ||
	    fstatat(in->fd, "", &st, AT_EMPTY_PATH) < 0 || st.st_size)
		return;
	pthread_mutex_lock(&fs->ck_lock);
	in->ck_pending = true;
	pthread_mutex_unlock(&fs->ck_lock);
}

int kind_release(struct kfs *fs, struct kinode *in)
{
	int r = 0;

	if (in->kf) {
		r = kfile_commit(in->kf);
		if (!r)
			kind_settle(fs, in);
	}
	kind_detach(in);
	return r;
}

void kind_detach(struct kinode *in)
{
	kfile_close(in->kf);
	pfile_close(in->pf);
	in->kf = NULL;
	in->pf = NULL;
}

int kind_file_read(const struct kind_file *f, uint8_t *buf, size_t len,
		   uint64_t off, size_t *got, struct kfile_chunk *fresh)
{
	if (fresh)
		fresh->len = 0;
	return f->pf ? pfile_read(f->pf, buf, len, off, got)
		     : kfile_read(f->kf, buf, len, off, got, fresh);
}

int kind_file_write(const struct kind_file *f, const uint8_t *buf, size_t len,
		    uint64_t off)
{
	return f->pf ? pfile_write(f->pf, buf, len, off)
		     : kfile_write(f->kf, buf, len, off);
}

int kind_file_truncate(const struct kind_file *f, uint64_t size)
{
	return f->pf ? pfile_truncate(f->pf, size)
		     : kfile_truncate(f->kf, size);
}

bool kind_file_closers(const struct kind_file *f)
{
	return f->kf && kfile_closers(f->kf);
}

uint64_t kind_file_size(const struct kind_file *f)
{
	return f->pf ? pfile_size(f->pf) : kfile_size(f->kf);
}

int kind_file_commit(struct kfs *fs, struct kinode *in,
		     const struct kind_file *f)
{
	int r;

	if (f->pf)
		return pfile_commit(f->pf, false);
	r = kfile_commit(f->kf);
	if (!r)
		kind_settle(fs, in);
	return r;
}

/* Is in an encrypted file that a checksum file covers?  Such a file is
 * finished at each flush or fsync instead of being checkpointed: a
 * checkpoint leaves it to be finished in place later, which would change
 * its stored bytes under a checksum mapped to them. */
static bool covered(struct kfs *fs, struct kinode *in)
{
	char path[KIND_PATH_MAX];
	size_t n;

	if (!layout_has_kinds(fs->layout) || in->kind != LAYOUT_ENCRYPTED ||
	    ns_path(fs, in, path, sizeof(path)))
		return false;
	n = strlen(path);
	if (n + sizeof(CK_SUFFIX) > sizeof(path))
		return false;
	memcpy(path + n, CK_SUFFIX, sizeof(CK_SUFFIX));
	return layout_file_kind(fs->layout, path) == LAYOUT_CHECKSUM;
}

int kind_file_sync(struct kfs *fs, struct kinode *in, const struct kind_file *f,
		   bool durable)
{
	int r;

	if (f->pf)
		return pfile_commit(f->pf, durable);
	if (covered(fs, in)) {
		r = kfile_commit(f->kf);
		if (!r && durable)
			r = kfile_sync(f->kf, true);
		if (!r)
			kind_settle(fs, in);
		return r;
	}
	r = kfile_sync(f->kf, durable);
	/* A file still being written settles when it is finished. */
	if (!r && !kfile_unfinished(f->kf))
		kind_settle(fs, in);
	return r;
}

/* --- settling a new X ---------------------------------------------------- */

/* ck_lock held.  X = xname in dirfd, now committed: its sibling checksum
 * showing P becomes S. */
static void settle_locked(int dirfd, const char *xname,
			  const struct cf_key *key)
{
	char ckname[NAME_MAX + 1];
	uint8_t c[PF_CK_SIZE];
	struct pf_basis b;
	struct stat st;
	size_t got;
	int fd;

	if ((size_t)snprintf(ckname, sizeof(ckname), "%s%s", xname,
			     CK_SUFFIX) >= sizeof(ckname))
		return;
	fd =
	    openat(dirfd, ckname, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size == PF_CK_SIZE &&
	    !fdio_read_full(fd, c, PF_CK_SIZE, 0, &got) && got == PF_CK_SIZE &&
	    !pfile_basis_at(dirfd, xname, LAYOUT_ENCRYPTED, key, &b) && b.on &&
	    !memcmp(c, b.p, PF_CK_SIZE) &&
	    fdio_write_all(fd, b.s, PF_CK_SIZE, 0))
		log_err("%s: could not store its checksum", ckname);
	close(fd);
}

void kind_settle(struct kfs *fs, struct kinode *in)
{
	char name[NAME_MAX + 1];
	const struct cf_key *key;
	struct kinode *dir;
	struct stat st;
	bool pending;

	pthread_mutex_lock(&fs->ck_lock);
	pending = in->ck_pending;
	pthread_mutex_unlock(&fs->ck_lock);
	if (!pending)
		return;
	dir = name_of(fs, in, name, sizeof(name));
	key = dir_key(fs, dir);
	pthread_mutex_lock(&fs->ck_lock);
	/* Still empty: nothing was committed yet. */
	if (fstatat(in->fd, "", &st, AT_EMPTY_PATH) == 0 && st.st_size) {
		int d = dir ? inode_fd_get(fs, dir) : -1;

		if (d >= 0) {
			settle_locked(d, name, key);
			inode_fd_put(fs, dir);
		}
		in->ck_pending = false;
	}
	pthread_mutex_unlock(&fs->ck_lock);
	if (dir)
		inode_unpin(fs, dir);
}

/* --- namespace changes --------------------------------------------------- */

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Record checksum file name in dir (if it is one of 4 bytes) with what
 * it shows now, to be found at (after, after_name) after the change. */
static void fix_add(struct kfs *fs, struct kind_fix *fx, struct kinode *dir,
		    const char *name, struct kinode *after,
		    const char *after_name)
{
	struct kind_fix_item *it = &fx->item[fx->n];
	struct stat st, other;
	struct ck_site s;
	struct pf_basis b;
	size_t got;
	int fd, dfd;

	if (fx->n == KIND_FIX_MAX || !dir || strlen(after_name) >= 256)
		return;
	dfd = inode_fd_get(fs, dir);
	if (dfd < 0)
		return;
	fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	inode_fd_put(fs, dir);
	if (fd < 0)
		return;
	for (int i = 0; i < fx->n; i++)
		if (fstat(fx->item[i].fd, &other) == 0 && fstat(fd, &st) == 0 &&
		    same_file(&st, &other))
			goto skip; /* met already */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size != PF_CK_SIZE ||
	    fdio_read_full(fd, it->shown, PF_CK_SIZE, 0, &got) ||
	    got != PF_CK_SIZE ||
	    site_init(fs, dir, name, dir == fx->pa ? fx->ka : fx->kb, &s))
		goto skip;
	if (site_basis(&s, &b) == 0) {
		pfile_ck_map(&b, it->shown, it->shown);
		it->fd = fd;
		it->dir = after;
		strcpy(it->name, after_name);
		fx->n++;
		fd = -1;
	}
	site_release(&s);
skip:
	if (fd >= 0)
		close(fd);
}

/* The checksum file of name ("<name>-CHECKSUM") in dir, staying there. */
static void fix_add_sibling(struct kfs *fs, struct kind_fix *fx,
			    struct kinode *dir, const char *name)
{
	char ck[NAME_MAX + 1];

	if ((size_t)snprintf(ck, sizeof(ck), "%s%s", name, CK_SUFFIX) <
	    sizeof(ck))
		fix_add(fs, fx, dir, ck, dir, ck);
}

static bool is_checksum_name(const char *name)
{
	char x[NAME_MAX + 1];

	return layout_checksummed(name, x, sizeof(x)) == 0;
}

static void fix_lock(struct kfs *fs, struct kind_fix *fx, struct kinode *pa,
		     struct kinode *pb)
{
	fx->pa = pa;
	fx->pb = pb;
	fx->ka = dir_key(fs, pa);
	fx->kb = pb == pa ? fx->ka : dir_key(fs, pb);
	pthread_mutex_lock(&fs->ck_lock);
	fx->locked = true;
}

void kind_fix_begin(struct kfs *fs, struct kind_fix *fx, enum kind_op op,
		    struct kinode *pa, const char *a, struct kinode *pb,
		    const char *b)
{
	memset(fx, 0, sizeof(*fx));
	if (!layout_has_kinds(fs->layout))
		return;
	fix_lock(fs, fx, op == KIND_LINK ? pb : pa, pb);
	if (op != KIND_LINK)
		fix_add_sibling(fs, fx, pa, a);
	if (op != KIND_UNLINK)
		fix_add_sibling(fs, fx, pb, b);
	if ((op == KIND_RENAME || op == KIND_EXCHANGE) && is_checksum_name(a))
		fix_add(fs, fx, pa, a, pb, b);
	if (op == KIND_EXCHANGE && is_checksum_name(b))
		fix_add(fs, fx, pb, b, pa, a);
}

void kind_fix_begin_replace(struct kfs *fs, struct kind_fix *fx,
			    struct kinode *in)
{
	char name[NAME_MAX + 1];
	struct kinode *dir;

	memset(fx, 0, sizeof(*fx));
	if (!layout_has_kinds(fs->layout))
		return;
	dir = name_of(fs, in, name, sizeof(name));
	if (!dir)
		return;
	fx->pinned = dir;
	fix_lock(fs, fx, dir, dir);
	fix_add_sibling(fs, fx, dir, name);
}

/* Store item it's shown value under the X it has now. */
static void fix_apply(struct kfs *fs, struct kind_fix *fx,
		      struct kind_fix_item *it)
{
	uint8_t want[PF_CK_SIZE], cur[PF_CK_SIZE];
	struct stat st, named;
	struct ck_site s;
	struct pf_basis b;
	size_t got;

	int dfd = inode_fd_get(fs, it->dir), gone;

	if (dfd < 0)
		return;
	gone = fstat(it->fd, &st) || st.st_size != PF_CK_SIZE ||
	       fstatat(dfd, it->name, &named, AT_SYMLINK_NOFOLLOW) ||
	       !same_file(&st, &named);
	inode_fd_put(fs, it->dir);
	if (gone)
		return; /* gone or changed: nothing to keep */
	if (site_init(fs, it->dir, it->name,
		      it->dir == fx->pa ? fx->ka : fx->kb, &s))
		return;
	if (site_basis(&s, &b) == 0) {
		pfile_ck_map(&b, it->shown, want);
		if (fdio_read_full(it->fd, cur, PF_CK_SIZE, 0, &got) == 0 &&
		    got == PF_CK_SIZE && memcmp(cur, want, PF_CK_SIZE) &&
		    fdio_write_all(it->fd, want, PF_CK_SIZE, 0))
			log_err("%s: could not store its checksum", it->name);
	}
	site_release(&s);
}

void kind_fix_end(struct kfs *fs, struct kind_fix *fx)
{
	for (int i = 0; i < fx->n; i++) {
		fix_apply(fs, fx, &fx->item[i]);
		close(fx->item[i].fd);
	}
	fx->n = 0;
	if (fx->locked)
		pthread_mutex_unlock(&fs->ck_lock);
	fx->locked = false;
	if (fx->pinned)
		inode_unpin(fs, fx->pinned);
	fx->pinned = NULL;
}
