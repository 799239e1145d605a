/*
 * chainkey.c - a chain's data key and the ENCRYPTION-INFO* files of its
 * directory: create a chain, unlock it, check that it may be written,
 * add a KMS to it (ALTER BACKUP ... ADD NEW_KMS).
 *
 * Reading a chain follows CockroachDB (spec §2.4, §5.2): ENCRYPTION-INFO*
 * files newest first, KMS entries found by SHA-256(master key ID).  One
 * walker (walk_encinfo) reads and decodes the files in that order for all
 * four readers; each says what to do with a file and when to stop, and
 * whether an unreadable file ends the walk.  Unlocking is more forgiving
 * than CockroachDB: any configured KMS with an entry in any file may
 * unlock, and a KMS failure moves on to the next candidate.  The write
 * paths (check_writable, add_kms) keep CockroachDB's rules, including
 * failing when any ENCRYPTION-INFO file is unreadable.
 */
#include "keystore.h"
#include "keyring.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "../lib/log.h"
#include "encinfo.h"

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
 * visit's error, the error of a bad file (strict: the first; else the
 * oldest, once every file was visited), or 0. */
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

/* Unlock from one decoded file: each KMS of r with an entry, in
 * configured order, except that KMSes that just failed to answer go last
 * (pass 0: the others, pass 1: those).  *err keeps the last KMS error. */
static int unlock_file(struct ks_keyring *r, const struct encinfo *ei,
		       const char *fname, struct secret **dk_out, int *err)
{
	for (size_t j = 0; j < 2 * r->n; j++) {
		struct ks_kms *k = r->kms[j % r->n];
		const struct encinfo_entry *e = entry_of(ei, k);
		int rc;

		if (!e || ks_kms_down(k) != (j >= r->n))
			continue;
		rc = ks_kms_unwrap(k, e->val, e->vallen, dk_out);
		if (!rc)
			return 0;
		log_warn("KMS %s could not unwrap the chain key in %s: %s",
			 k->name, fname, strerror(-rc));
		*err = rc;
	}
	return -ENOKEY;
}

struct unlock_ctx {
	struct ks_keyring *r;
	struct secret **dk_out;
	int kms_err; /* the last KMS error */
};

static int unlock_visit(void *ctx, const char *name, const struct encinfo *ei)
{
	struct unlock_ctx *x = ctx;

	if (unlock_file(x->r, ei, name, x->dk_out, &x->kms_err))
		return WALK_NEXT;
	return WALK_STOP;
}

static int unlock_kms(struct ks_keyring *r, int dirfd,
		      const struct encinfo_names *nm, struct secret **dk_out)
{
	struct unlock_ctx x = {r, dk_out, 0};
	int rc = walk_encinfo(dirfd, nm, false, unlock_visit, &x);

	if (rc == WALK_STOP)
		return 0;
	if (x.kms_err || rc)
		return x.kms_err ? x.kms_err : rc;
	log_err("none of the %zu configured KMSes has an entry in the chain's "
		"ENCRYPTION-INFO files: configure a KMS the chain was "
		"encrypted (or later ALTERed) with",
		r->n);
	return -ENOKEY;
}

struct derive_ctx {
	const struct secret *pass;
	struct secret **dk_out;
};

/* CockroachDB takes the newest file's salt; take the newest salt. */
static int derive_visit(void *ctx, const char *name, const struct encinfo *ei)
{
	struct derive_ctx *x = ctx;
	int rc;

	if (!ei->saltlen)
		return WALK_NEXT;
	rc = ks_derive_passphrase(x->pass->bytes, x->pass->len, ei->salt,
				  ei->saltlen, x->dk_out);
	return rc ? rc : WALK_STOP;
}

static int unlock_passphrase(struct ks_keyring *r, int dirfd,
			     const struct encinfo_names *nm,
			     struct secret **dk_out)
{
	struct derive_ctx x = {r->pass, dk_out};
	int rc = walk_encinfo(dirfd, nm, false, derive_visit, &x);

	if (rc == WALK_STOP)
		return 0;
	if (rc)
		return rc;
	log_err("the chain is KMS-encrypted (its ENCRYPTION-INFO has no "
		"salt): configure its KMS instead of a passphrase");
	return -ENOKEY;
}

int ks_chain_unlock(struct ks_keyring *r, int dirfd, struct secret **dk_out)
{
	struct encinfo_names names;
	int rc;

	*dk_out = NULL;
	if (ks_keyring_empty(r)) {
		log_err("no KMS or passphrase configured: cannot unlock");
		return -ENOKEY;
	}
	rc = list_chain(dirfd, &names);
	if (rc)
		return rc;
	if (r->pass)
		rc = unlock_passphrase(r, dirfd, &names, dk_out);
	else
		rc = unlock_kms(r, dirfd, &names, dk_out);
	encinfo_names_release(&names);
	return rc;
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

struct old_match {
	size_t kms;	 /* index in the old keyring; SIZE_MAX: none yet */
	struct buf blob; /* its entry in the newest file holding it */
};

struct old_ctx {
	const struct ks_keyring *old;
	struct old_match *m;
};

/* The first old KMS, in keyring order, with an entry in this file, if it
 * comes before the one found in newer files. */
static int old_visit(void *ctx, const char *name, const struct encinfo *ei)
{
	struct old_ctx *x = ctx;
	int rc = 0;

	for (size_t j = 0; j < x->old->n && j < x->m->kms; j++) {
		const struct encinfo_entry *e = entry_of(ei, x->old->kms[j]);

		if (!e)
			continue;
		x->m->kms = j;
		buf_reset(&x->m->blob);
		rc = buf_add(&x->m->blob, e->val, e->vallen);
		break;
	}
	return rc ? rc : WALK_NEXT;
}

/* Read every file (any failure fails, as in CockroachDB) and find the
 * first old KMS, in keyring order, with an entry; newest file first. */
static int find_old(struct ks_keyring *old, int dirfd,
		    const struct encinfo_names *nm, struct old_match *m)
{
	struct old_ctx x = {old, m};
	int rc = walk_encinfo(dirfd, nm, true, old_visit, &x);

	if (rc)
		return rc;
	if (m->kms != SIZE_MAX)
		return 0;
	log_err("no key in OLD_KMS matches a key that was previously used to "
		"encrypt the backup");
	return -ENOKEY;
}

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

int ks_chain_add_kms(struct ks_keyring *old_keys, struct ks_keyring *new_keys,
		     int dirfd, struct buf *name_out)
{
	struct old_match m = {.kms = SIZE_MAX};
	struct encinfo_names names = {NULL, 0};
	struct secret *dk = NULL;
	struct ks_kms *k;
	int rc;

	if (!is_kms_ring(old_keys, "OLD_KMS") ||
	    !is_kms_ring(new_keys, "NEW_KMS"))
		return -EINVAL;
	buf_init(&m.blob, ENCINFO_FILE_MAX);
	rc = list_chain(dirfd, &names);
	if (!rc)
		rc = find_old(old_keys, dirfd, &names, &m);
	if (rc)
		goto out;
	k = old_keys->kms[m.kms];
	/* CockroachDB does not try another KMS when this one fails. */
	rc = ks_kms_unwrap(k, m.blob.data, m.blob.len, &dk);
	if (rc) {
		log_err("KMS %s could not unwrap the chain key: %s", k->name,
			strerror(-rc));
		goto out;
	}
	rc = write_new_info(new_keys, dirfd, names.n, dk, name_out);
out:
	secret_free(dk);
	buf_release(&m.blob);
	encinfo_names_release(&names);
	return rc;
}

bool ks_is_encinfo_name(const char *name)
{
	return strncmp(name, KS_ENCINFO_NAME, strlen(KS_ENCINFO_NAME)) == 0;
}
