/*
 * chainkey.c - a chain's data key and the ENCRYPTION-INFO* files of its
 * directory: create a chain, unlock it, check that it may be written,
 * add a KMS to it (ALTER BACKUP ... ADD NEW_KMS).
 *
 * Reading a chain follows CockroachDB (spec §2.4, §5.2) in what it reads:
 * ENCRYPTION-INFO* files newest first, KMS entries found by
 * SHA-256(master key ID).  One walker (walk_encinfo) reads and decodes
 * the files in that order for every reader; each says what to do with a
 * file and when to stop, and whether an unreadable file ends the walk.
 * Unlocking differs from CockroachDB where the store is not trusted (key
 * trust in keystore.h): every file is read and all must yield the same
 * key, and a key that only cloud KMSes unwrapped must be in the
 * known-keys record (known.c).  It is also more forgiving: any configured
 * KMS with an entry in any file may unlock, and a KMS failure moves on to
 * the next candidate.  add-kms unlocks the same way; check_writable keeps
 * CockroachDB's rules, including failing when any ENCRYPTION-INFO file is
 * unreadable.
 */
#include "keystore.h"
#include "keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../lib/log.h"
#include "encinfo.h"
#include "known.h"

static const struct encinfo_entry *entry_of(const struct encinfo *ei,
					    const struct ks_kms *k)
{
	return encinfo_get(ei, k->map_key, sizeof(k->map_key));
}

/* --- the walk over a chain's ENCRYPTION-INFO* files ---------------------- */

#define WALK_NEXT 0 /* a visit's "go on with the next older file" */
#define WALK_STOP 1 /* a visit's "done": the walk returns WALK_STOP */

/* Called with each decoded file; returns WALK_NEXT, WALK_STOP or a
 * negative errno, which ends the walk with that error. */
typedef int (*walk_visit_fn)(void *ctx, const char *name,
			     const struct encinfo *ei);

/* Visit the files of nm newest first.  A file that cannot be read or
 * decoded (encinfo_read logged why) ends the walk with its error when
 * strict; else it is skipped and the walk goes on.  Returns WALK_STOP, a
 * visit's error, the error of a bad file (strict: the first; else, once
 * every file was visited, the first that is not -EPROTO, or -EPROTO: so
 * -EPROTO says every bad file was malformed), or 0. */
static int walk_encinfo(int dirfd, const struct encinfo_names *nm, bool strict,
			walk_visit_fn visit, void *ctx)
{
	int file_err = 0;

	for (size_t i = nm->n; i-- > 0;) {
		struct encinfo ei;
		int rc;

		encinfo_init(&ei);
		rc = encinfo_read(dirfd, nm->v[i], &ei);
		if (!rc) {
			rc = visit(ctx, nm->v[i], &ei);
		} else if (!strict) {
			if (!file_err || file_err == -EPROTO)
				file_err = rc;
			rc = WALK_NEXT;
		}
		encinfo_release(&ei);
		if (rc)
			return rc;
	}
	return file_err;
}

static int list_chain(int dirfd, struct encinfo_names *names)
{
	int r = encinfo_list(dirfd, names);

	if (!r && !names->n) {
		/* Not an error by itself: a new chain gets one on first
		 * write; the caller says what missing means to it. */
		log_debug("no ENCRYPTION-INFO file found in the chain "
			  "directory");
		r = -ENOENT;
	}
	return r;
}

/* --- chains: create ------------------------------------------------------ */

/* Wrap dk with every KMS of r into ei's map, in keyring order. */
static int wrap_all(struct ks_keyring *r, const struct secret *dk,
		    struct encinfo *ei, const char *what)
{
	for (size_t i = 0; i < r->n; i++) {
		struct ks_kms *k = r->kms[i];
		struct buf blob;
		int rc;

		buf_init(&blob, KS_MAX_BLOB);
		rc = ks_kms_wrap(k, dk, &blob);
		if (rc)
			log_err("cannot wrap the %s with KMS %s: %s", what,
				k->name, strerror(-rc));
		else
			rc = encinfo_put(ei, k->map_key, sizeof(k->map_key),
					 blob.data, blob.len);
		buf_release(&blob);
		if (rc)
			return rc;
	}
	return 0;
}

static int create_passphrase(struct ks_keyring *r, struct encinfo *ei,
			     struct secret **dk)
{
	uint8_t salt[KS_SALT_SIZE];
	int rc;

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	rc = encinfo_set_salt(ei, salt, sizeof(salt));
	if (!rc)
		rc = ks_derive_passphrase(r->pass->bytes, r->pass->len, salt,
					  sizeof(salt), dk);
	return rc;
}

int ks_chain_create(struct ks_keyring *r, struct secret **dk_out,
		    struct buf *encinfo_out)
{
	struct secret *dk = NULL;
	struct encinfo ei;
	int rc;

	*dk_out = NULL;
	encinfo_init(&ei);
	if (r->pass) {
		rc = create_passphrase(r, &ei, &dk);
	} else if (r->n) {
		rc = secret_random(&dk, KS_DATA_KEY_SIZE);
		if (!rc)
			rc = wrap_all(r, dk, &ei, "new chain key");
	} else {
		log_err("no KMS or passphrase configured: cannot create a "
			"chain key");
		rc = -EINVAL;
	}
	if (!rc)
		rc = encinfo_encode(&ei, encinfo_out);
	encinfo_release(&ei);
	if (rc)
		secret_free(dk);
	else
		*dk_out = dk;
	return rc;
}

int ks_chain_write_encinfo(int dirfd, const struct buf *encinfo)
{
	struct encinfo_names names;
	int r = encinfo_list(dirfd, &names);

	if (r)
		return r;
	if (names.n)
		r = -EEXIST;
	else
		r = encinfo_write(dirfd, KS_ENCINFO_NAME, encinfo->data,
				  encinfo->len);
	if (r == -EEXIST)
		log_err("the chain directory has an ENCRYPTION-INFO already; "
			"it is never rewritten");
	encinfo_names_release(&names);
	return r;
}

/* --- chains: read -------------------------------------------------------- */

/* When a file's entries are tried: KMSes whose unwrap proves who chose
 * the key (private_wrap) first, then the others; a KMS that just failed
 * to answer goes after all of those. */
static int try_rank(struct ks_kms *k)
{
	return (ks_kms_down(k) ? 2 : 0) + (k->prov->private_wrap ? 0 : 1);
}

/* Unlock from one decoded file.  *private_out: the KMS that unwrapped has
 * private_wrap.  *err keeps the last KMS error.  -ENOKEY: none did. */
static int unlock_file(struct ks_keyring *r, const struct encinfo *ei,
		       const char *fname, struct secret **dk_out,
		       bool *private_out, int *err)
{
	int *rank = calloc(r->n ? r->n : 1, sizeof(*rank));

	if (!rank)
		return -ENOMEM;
	for (size_t j = 0; j < r->n; j++)
		rank[j] = entry_of(ei, r->kms[j]) ? try_rank(r->kms[j]) : -1;
	for (int pass = 0; pass < 4; pass++) {
		for (size_t j = 0; j < r->n; j++) {
			struct ks_kms *k = r->kms[j];
			const struct encinfo_entry *e = entry_of(ei, k);
			int rc;

			if (rank[j] != pass)
				continue;
			rc = ks_kms_unwrap(k, e->val, e->vallen, dk_out);
			if (!rc) {
				*private_out = k->prov->private_wrap;
				free(rank);
				return 0;
			}
			log_warn("KMS %s could not unwrap the chain key in %s: "
				 "%s",
				 k->name, fname, strerror(-rc));
			*err = rc;
		}
	}
	free(rank);
	return -ENOKEY;
}

/* What the files of a chain said, file by file, newest first. */
struct unlock_ctx {
	struct ks_keyring *r;
	struct secret *dk;   /* the key of the files so far */
	struct buf files;    /* their names, for messages */
	const char *differs; /* a file that yields another key */
	bool private_wrap;   /* one of them unwrapped by such a KMS */
	int kms_err;	     /* the last KMS error */
};

static int add_name(struct buf *b, const char *name)
{
	int rc = b->len ? buf_addstr(b, ", ") : 0;

	rc = rc ? rc : buf_addstr(b, name);
	return rc == -E2BIG ? 0 : rc; /* the list is for a message only */
}

static int unlock_visit(void *ctx, const char *name, const struct encinfo *ei)
{
	struct unlock_ctx *x = ctx;
	struct secret *dk = NULL;
	bool priv = false;
	int rc;

	rc = unlock_file(x->r, ei, name, &dk, &priv, &x->kms_err);
	if (rc)
		return rc == -ENOKEY ? WALK_NEXT : rc;
	if (x->dk && !secret_equal(dk, x->dk)) {
		secret_free(dk);
		x->differs = name;
		return -EKEYREJECTED;
	}
	if (!x->dk)
		x->dk = dk;
	else
		secret_free(dk);
	x->private_wrap = x->private_wrap || priv;
	return add_name(&x->files, name);
}

/* The directory of dirfd, for the known-keys record. */
static void dir_path(int dirfd, char *out, size_t outlen)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	n = readlink(proc, out, outlen - 1);
	out[n > 0 ? (size_t)n : 0] = '\0';
}

static void log_untrusted(const struct ks_keyring *r, const char *label,
			  const char *files, bool changed)
{
	const char *path = known_path(r->known);

	if (changed)
		log_err("chain %s: its key (from %s) is not the one recorded "
			"for it in %s: someone changed the store, or the chain "
			"was made again (then delete its old line there); "
			"refusing the chain",
			label, files, path);
	else
		log_err("chain %s: its key (from %s) was unwrapped only by "
			"KMSes that others can wrap for (Azure's public key, "
			"AWS or GCP Encrypt) and is not in the known-keys file "
			"%s; refusing the chain: if it is yours, mount once "
			"with --accept-new-keys, or copy that file from the "
			"machine that wrote the chain",
			label, files, path);
}

/* Key trust 2 for a key no private_wrap KMS unwrapped. */
static int check_known(struct ks_keyring *r, int dirfd, const char *label,
		       const struct secret *dk, const char *files)
{
	uint8_t fp[KNOWN_FP_SIZE];
	char where[4096];
	bool changed = false;
	int rc;

	if (!r->known) {
		log_err("chain %s: its key (from %s) was unwrapped only by "
			"KMSes that others can wrap for, and no known-keys "
			"file is configured; refusing the chain",
			label, files);
		return -EKEYREJECTED;
	}
	dir_path(dirfd, where, sizeof(where));
	rc = known_fingerprint(dk, fp);
	if (!rc)
		rc = known_lookup(r->known, fp, where, &changed);
	if (rc == 1)
		return 0;
	if (rc < 0)
		return -EKEYREJECTED; /* the file is unusable: logged */
	if (!changed && known_accept_new(r->known)) {
		rc = known_add(r->known, fp, where);
		if (!rc)
			log_warn("chain %s: its key (from %s) was accepted on "
				 "first use (--accept-new-keys) and recorded "
				 "in %s",
				 label, files, known_path(r->known));
		return rc ? -EKEYREJECTED : 0;
	}
	log_untrusted(r, label, files, changed);
	return -EKEYREJECTED;
}

/* Key trust 1 and 2 over the files nm of dirfd.  -ENOKEY (nothing logged)
 * when no configured KMS has a usable entry and none failed.  strict: an
 * unreadable file fails (CockroachDB's rule for writers).  *kms_failed:
 * a KMS failed to answer on the way. */
static int unlock_kms(struct ks_keyring *r, int dirfd,
		      const struct encinfo_names *nm, const char *label,
		      bool strict, struct secret **dk_out, bool *kms_failed)
{
	struct unlock_ctx x = {.r = r};
	int rc;

	buf_init(&x.files, 4096);
	rc = walk_encinfo(dirfd, nm, strict, unlock_visit, &x);
	if (rc == -EKEYREJECTED)
		log_err("chain %s: %s and %s hold different keys: someone "
			"changed the store; refusing the chain (remove or "
			"restore the file that does not belong)",
			label, (const char *)x.files.data, x.differs);
	else if (rc == -ENOMEM || (rc && strict))
		; /* strict: an unreadable file fails */
	else if (x.dk)
		rc = 0; /* unreadable files unwrap nothing: not in the way */
	else
		rc = x.kms_err ? x.kms_err : rc ? rc : -ENOKEY;
	if (!rc && !x.private_wrap)
		rc = check_known(r, dirfd, label, x.dk,
				 (const char *)x.files.data);
	if (!rc) {
		*dk_out = x.dk;
		x.dk = NULL;
	}
	*kms_failed = x.kms_err != 0;
	secret_free(x.dk);
	buf_release(&x.files);
	return rc;
}

struct salt_ctx {
	struct buf salt;     /* the salt of the files so far */
	struct buf files;    /* their names */
	const char *differs; /* a file with another salt */
};

/* CockroachDB takes the newest file's salt; every salt must agree. */
static int salt_visit(void *ctx, const char *name, const struct encinfo *ei)
{
	struct salt_ctx *x = ctx;
	int rc;

	if (!ei->saltlen)
		return WALK_NEXT;
	if (x->salt.len && (x->salt.len != ei->saltlen ||
			    memcmp(x->salt.data, ei->salt, ei->saltlen))) {
		x->differs = name;
		return -EKEYREJECTED;
	}
	rc = x->salt.len ? 0 : buf_add(&x->salt, ei->salt, ei->saltlen);
	return rc ? rc : add_name(&x->files, name);
}

static int unlock_passphrase(struct ks_keyring *r, int dirfd,
			     const struct encinfo_names *nm, const char *label,
			     struct secret **dk_out)
{
	struct salt_ctx x;
	int rc;

	buf_init(&x.salt, ENCINFO_FILE_MAX);
	buf_init(&x.files, 4096);
	x.differs = NULL;
	rc = walk_encinfo(dirfd, nm, false, salt_visit, &x);
	if (rc == -EKEYREJECTED)
		log_err("chain %s: %s and %s hold different salts: someone "
			"changed the store; refusing the chain (remove or "
			"restore the file that does not belong)",
			label, (const char *)x.files.data, x.differs);
	else if (x.salt.len)
		rc = ks_derive_passphrase(r->pass->bytes, r->pass->len,
					  x.salt.data, x.salt.len, dk_out);
	else if (!rc)
		rc = -ENOKEY;
	if (rc == -ENOKEY)
		log_err("the chain is KMS-encrypted (its ENCRYPTION-INFO has "
			"no salt): configure its KMS instead of a passphrase");
	buf_release(&x.salt);
	buf_release(&x.files);
	return rc;
}

/* --- chains: the memo of a refusal -------------------------------------- */

/* Timestamps are coarse (a tick, or a second on some file systems): a
 * file whose ctime is this close to now may change again with the same
 * stat, so a signature over it is not remembered. */
#define SIG_RACY_SECONDS 1

struct chain_sig {
	uint8_t d[32];
	bool ok;       /* d was computed */
	bool racy;     /* a file changed within SIG_RACY_SECONDS */
	bool dir_only; /* d covers the directory itself */
};

/* Hash the stat of name (at dirfd) into md: never its bytes. */
static int sig_add(EVP_MD_CTX *md, int dirfd, const char *name,
		   struct chain_sig *s)
{
	int64_t v[9] = {0};
	struct stat st;

	if (fstatat(dirfd, name, &st, 0) < 0) {
		v[0] = errno;
	} else {
		v[1] = (int64_t)st.st_dev;
		v[2] = (int64_t)st.st_ino;
		v[3] = st.st_mode;
		v[4] = st.st_size;
		v[5] = st.st_mtim.tv_sec;
		v[6] = st.st_mtim.tv_nsec;
		v[7] = st.st_ctim.tv_sec;
		v[8] = st.st_ctim.tv_nsec;
		if (st.st_ctim.tv_sec >= time(NULL) - SIG_RACY_SECONDS)
			s->racy = true;
	}
	return EVP_DigestUpdate(md, name, strlen(name) + 1) &&
	       EVP_DigestUpdate(md, v, sizeof(v));
}

/* The signature of the files nm of dirfd and of r's known-keys file; nm
 * NULL: of the directory itself. */
static void sig_take(const struct ks_keyring *r, int dirfd,
		     const struct encinfo_names *nm, struct chain_sig *s)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned len;
	int ok;

	memset(s, 0, sizeof(*s));
	s->dir_only = !nm;
	ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (size_t i = 0; ok && nm && i < nm->n; i++)
		ok = sig_add(md, dirfd, nm->v[i], s);
	if (ok && !nm)
		ok = sig_add(md, dirfd, ".", s);
	if (ok && r->known)
		ok = EVP_DigestUpdate(md, "", 1) &&
		     sig_add(md, AT_FDCWD, known_path(r->known), s);
	s->ok = ok && EVP_DigestFinal_ex(md, s->d, &len);
	EVP_MD_CTX_free(md);
}

/* Does memo hold a refusal of exactly these files?  (Logged at debug.) */
static bool memo_hit(const struct ks_chain_memo *memo,
		     const struct chain_sig *s, const char *label)
{
	if (!memo || !memo->err || !s->ok || memo->dir_only != s->dir_only ||
	    memcmp(memo->sig, s->d, sizeof(s->d)) != 0)
		return false;
	log_debug("chain %s: its ENCRYPTION-INFO files are unchanged since "
		  "they were refused (%s): not read again",
		  label, strerror(-memo->err));
	return true;
}

/* Remember rc in memo if the bytes of the files alone decided it. */
static void memo_note(struct ks_chain_memo *memo, const struct chain_sig *s,
		      int rc, bool kms_failed)
{
	bool permanent = rc == -EKEYREJECTED ||
			 (!kms_failed && (rc == -ENOKEY || rc == -EPROTO));

	if (!memo)
		return;
	memset(memo, 0, sizeof(*memo));
	if (!permanent || !s->ok || s->racy)
		return;
	memcpy(memo->sig, s->d, sizeof(s->d));
	memo->err = rc;
	memo->dir_only = s->dir_only;
}

/* Unlock from the files nm; *kms_failed as unlock_kms. */
static int unlock_files(struct ks_keyring *r, int dirfd,
			const struct encinfo_names *nm, const char *label,
			struct secret **dk_out, bool *kms_failed)
{
	int rc;

	if (r->pass)
		return unlock_passphrase(r, dirfd, nm, label, dk_out);
	rc = unlock_kms(r, dirfd, nm, label, false, dk_out, kms_failed);
	if (rc == -ENOKEY)
		log_err(
		    "none of the %zu configured KMSes has an entry in the "
		    "ENCRYPTION-INFO files of chain %s: configure a KMS the "
		    "chain was encrypted (or later ALTERed) with",
		    r->n, label);
	return rc;
}

int ks_chain_unlock_memo(struct ks_keyring *r, int dirfd, const char *label,
			 struct ks_chain_memo *memo, struct secret **dk_out)
{
	struct encinfo_names names = {NULL, 0};
	struct chain_sig sig = {.ok = false};
	bool kms_failed = false;
	int rc;

	*dk_out = NULL;
	if (ks_keyring_empty(r)) {
		log_err("no KMS or passphrase configured: cannot unlock");
		return -ENOKEY;
	}
	/* Over the file cap the listing itself is the refusal: a directory
	 * that did not change is not listed again. */
	if (memo && memo->dir_only) {
		sig_take(r, dirfd, NULL, &sig);
		if (memo_hit(memo, &sig, label))
			return memo->err;
	}
	rc = list_chain(dirfd, &names);
	if (rc == -EPROTO)
		sig_take(r, dirfd, NULL, &sig);
	if (!rc) {
		sig_take(r, dirfd, &names, &sig);
		if (memo_hit(memo, &sig, label)) {
			rc = memo->err;
			goto out;
		}
		rc = unlock_files(r, dirfd, &names, label, dk_out, &kms_failed);
	}
	memo_note(memo, &sig, rc, kms_failed);
out:
	encinfo_names_release(&names);
	return rc;
}

int ks_chain_unlock(struct ks_keyring *r, int dirfd, const char *label,
		    struct secret **dk_out)
{
	return ks_chain_unlock_memo(r, dirfd, label, NULL, dk_out);
}

/* Does a key wrapped by r need the known-keys record to be trusted? */
static bool needs_record(const struct ks_keyring *r)
{
	for (size_t j = 0; j < r->n; j++) {
		if (!r->kms[j]->prov->private_wrap)
			return true;
	}
	return false;
}

static int record_key(struct ks_known *known, int dirfd, const char *label,
		      const struct secret *dk)
{
	uint8_t fp[KNOWN_FP_SIZE];
	char where[4096];
	int rc;

	if (!known) {
		log_warn("chain %s: no known-keys file is configured: a later "
			 "mount with only cloud KMSes will refuse this chain",
			 label);
		return 0;
	}
	dir_path(dirfd, where, sizeof(where));
	rc = known_fingerprint(dk, fp);
	return rc ? rc : known_add(known, fp, where);
}

int ks_chain_record(struct ks_keyring *r, int dirfd, const char *label,
		    const struct secret *dk)
{
	if (r->pass || !needs_record(r))
		return 0;
	return record_key(r->known, dirfd, label, dk);
}

/* --- chains: write checks ------------------------------------------------ */

/* Is every KMS of r in ei?  Marks seen[j] for each that is. */
static bool all_in_file(const struct ks_keyring *r, const struct encinfo *ei,
			bool *seen)
{
	bool all = true;

	for (size_t j = 0; j < r->n; j++) {
		if (entry_of(ei, r->kms[j]))
			seen[j] = true;
		else
			all = false;
	}
	return all;
}

static void explain_unwritable(const struct ks_keyring *r, const bool *seen)
{
	for (size_t j = 0; j < r->n; j++) {
		if (seen[j])
			continue;
		log_err(
		    "KMS %s is not a key of this chain: CockroachDB would "
		    "refuse it; add it first (ALTER BACKUP ... ADD NEW_KMS)",
		    r->kms[j]->name);
		return;
	}
	log_err("the configured KMSes are recorded in different "
		"ENCRYPTION-INFO files and CockroachDB needs them in one: "
		"configure only the KMSes of one file");
}

struct writable_ctx {
	const struct ks_keyring *r;
	bool *seen;
	bool found; /* a file has every KMS of r */
};

static int writable_visit(void *ctx, const char *name, const struct encinfo *ei)
{
	struct writable_ctx *x = ctx;

	if (all_in_file(x->r, ei, x->seen))
		x->found = true;
	return WALK_NEXT;
}

static int scan_writable(struct ks_keyring *r, int dirfd,
			 const struct encinfo_names *nm, bool *seen)
{
	struct writable_ctx x = {r, seen, false};
	int rc = walk_encinfo(dirfd, nm, false, writable_visit, &x);

	if (rc)
		return rc;
	if (x.found)
		return 0;
	explain_unwritable(r, seen);
	return -ENOKEY;
}

int ks_chain_check_writable(struct ks_keyring *r, int dirfd)
{
	struct encinfo_names names;
	bool *seen;
	int rc;

	if (r->pass)
		return 0;
	if (!r->n) {
		log_err("no KMS configured: cannot write into the chain");
		return -ENOKEY;
	}
	rc = list_chain(dirfd, &names);
	if (rc)
		return rc;
	seen = calloc(r->n, sizeof(*seen));
	rc = seen ? scan_writable(r, dirfd, &names, seen) : -ENOMEM;
	free(seen);
	encinfo_names_release(&names);
	return rc;
}

/* --- chains: ALTER BACKUP ... ADD NEW_KMS -------------------------------- */

static int write_new_info(struct ks_keyring *new_keys, int dirfd, size_t count,
			  const struct secret *dk, struct buf *name_out)
{
	struct encinfo ei;
	struct buf bytes, name;
	int rc;

	encinfo_init(&ei);
	buf_init(&bytes, ENCINFO_FILE_MAX);
	buf_init(&name, 64);
	rc = wrap_all(new_keys, dk, &ei, "chain key for the new KMS");
	if (!rc)
		rc = encinfo_encode(&ei, &bytes);
	if (!rc)
		rc = encinfo_next_name(count, &name);
	if (!rc)
		rc = encinfo_write(dirfd, (const char *)name.data, bytes.data,
				   bytes.len);
	if (rc == -EEXIST)
		log_err("%s exists already (another ADD NEW_KMS at the same "
			"time?): try again",
			(const char *)name.data);
	if (!rc && name_out)
		rc = buf_addstr(name_out, (const char *)name.data);
	buf_release(&name);
	buf_release(&bytes);
	encinfo_release(&ei);
	return rc;
}

static bool is_kms_ring(const struct ks_keyring *r, const char *what)
{
	if (!r->pass && r->n)
		return true;
	log_err("adding a KMS needs %s given as KMS URIs", what);
	return false;
}

/* CockroachDB unwraps with the first OLD_KMS it finds; here the old keys
 * unlock as for reading (key trust), so that add-kms never wraps for a
 * new KMS a key someone planted in the store. */
int ks_chain_add_kms(struct ks_keyring *old_keys, struct ks_keyring *new_keys,
		     int dirfd, struct buf *name_out)
{
	struct encinfo_names names = {NULL, 0};
	struct secret *dk = NULL;
	char label[4096];
	int rc;

	if (!is_kms_ring(old_keys, "OLD_KMS") ||
	    !is_kms_ring(new_keys, "NEW_KMS"))
		return -EINVAL;
	dir_path(dirfd, label, sizeof(label));
	rc = list_chain(dirfd, &names);
	if (!rc)
		rc = unlock_kms(old_keys, dirfd, &names, label, true, &dk,
				&(bool){false});
	if (rc == -ENOKEY)
		log_err("no key in OLD_KMS matches a key that was previously "
			"used to encrypt the backup");
	else if (rc && rc != -EKEYREJECTED)
		log_err("OLD_KMS could not unwrap the chain key: %s",
			strerror(-rc));
	if (!rc && needs_record(new_keys))
		rc = record_key(new_keys->known ? new_keys->known
						: old_keys->known,
				dirfd, label, dk);
	if (!rc)
		rc = write_new_info(new_keys, dirfd, names.n, dk, name_out);
	secret_free(dk);
	encinfo_names_release(&names);
	return rc;
}

bool ks_is_encinfo_name(const char *name)
{
	return strncmp(name, KS_ENCINFO_NAME, strlen(KS_ENCINFO_NAME)) == 0;
}
