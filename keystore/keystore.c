/*
 * keystore.c - the public keystore API: scheme table, KMS handles,
 * keyrings, and chain keys (create, unlock, check, add a KMS).
 *
 * The only caller through the provider table.  It checks what providers
 * return (a master key ID, a 32-byte data key, a blob of 1..KS_MAX_BLOB
 * bytes) and serialises the calls into one KMS with a mutex, so providers
 * need no locking of their own.
 *
 * Reading a chain follows CockroachDB (spec §2.4, §5.2): ENCRYPTION-INFO*
 * files newest first, KMS entries found by SHA-256(master key ID).
 * Unlocking is more forgiving than CockroachDB: any configured KMS with an
 * entry in any file may unlock, and a KMS failure moves on to the next
 * candidate.  The write paths (check_writable, add_kms) keep CockroachDB's
 * rules, including failing when any ENCRYPTION-INFO file is unreadable.
 */
#include "keystore.h"

#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "../lib/log.h"
#include "../lib/privfile.h"
#include "encinfo.h"
#include "kmsuri.h"
#include "provider.h"

#define KMS_FILE_MAX (1u << 20)

static const struct ks_provider *const scheme_table[] = {
    &ks_provider_local,
    &ks_provider_aws,
    &ks_provider_gcp,
    &ks_provider_azure,
};

#define KS_DOWN_SECONDS 60 /* how long a silent KMS is tried last */

struct ks_kms {
	const struct ks_provider *prov;
	void *state;
	char *name;	    /* redacted URI */
	const char *key_id; /* owned by state */
	uint8_t map_key[32];
	pthread_mutex_t lock; /* serialises calls into prov */
	time_t down_until;    /* unreachable lately: try it after the others */
};

struct ks_keyring {
	struct ks_kms **kms;
	size_t n;
	struct secret *pass;
};

/* --- KMS URIs ------------------------------------------------------------ */

enum ks_uri_exposure ks_uri_exposure(const char *uri)
{
	switch (kmsuri_uri_class(uri)) {
	case KMSURI_PLAIN:
		return KS_URI_SHOWABLE;
	case KMSURI_UNKNOWN:
		return KS_URI_UNKNOWN_PARAM;
	case KMSURI_IDENTITY:
	case KMSURI_SECRET:
		break;
	}
	return KS_URI_CREDENTIALS;
}

/* --- single KMS ---------------------------------------------------------- */

static bool provider_has(const struct ks_provider *p, const char *scheme)
{
	if (strcmp(p->scheme, scheme) == 0)
		return true;
	for (const char *const *a = p->aliases; a && *a; a++) {
		if (strcmp(*a, scheme) == 0)
			return true;
	}
	return false;
}

static int find_provider(const struct kmsuri *u, const struct ks_provider **out)
{
	for (size_t i = 0; i < sizeof(scheme_table) / sizeof(*scheme_table);
	     i++) {
		const struct ks_provider *p = scheme_table[i];

		if (!provider_has(p, u->scheme))
			continue;
		if (!p->built) {
			log_err("KMS URI %s: scheme %s: %s", u->redacted,
				u->scheme, p->build_hint);
			return -ENOTSUP;
		}
		*out = p;
		return 0;
	}
	log_err("KMS URI %s: no KMS provider for scheme %s (known: file, aws, "
		"aws-kms, gs, gcp-kms, azure-kms)",
		u->redacted, u->scheme);
	return -EINVAL;
}

static int set_key_id(struct ks_kms *k)
{
	k->key_id = k->prov->master_key_id(k->state);
	if (!k->key_id) {
		log_err("KMS %s: the provider gave no master key ID", k->name);
		return -EPROTO;
	}
	SHA256((const uint8_t *)k->key_id, strlen(k->key_id), k->map_key);
	return 0;
}

int ks_kms_open(const char *uri, struct ks_kms **out)
{
	struct ks_kms *k = NULL;
	struct kmsuri u;
	int r;

	*out = NULL;
	r = kmsuri_parse(uri, &u);
	if (r)
		return r;
	k = calloc(1, sizeof(*k));
	if (!k) {
		r = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&k->lock, NULL);
	k->name = strdup(u.redacted);
	r = k->name ? find_provider(&u, &k->prov) : -ENOMEM;
	if (!r)
		r = k->prov->open(&u, &k->state);
	if (r)
		k->state = NULL;
	if (!r)
		r = kmsuri_check_unused(&u);
	if (!r)
		r = set_key_id(k);
out:
	kmsuri_release(&u);
	if (r)
		ks_kms_free(k);
	else
		*out = k;
	return r;
}

void ks_kms_free(struct ks_kms *k)
{
	if (!k)
		return;
	if (k->state)
		k->prov->free(k->state);
	pthread_mutex_destroy(&k->lock);
	free(k->name);
	free(k);
}

const char *ks_kms_name(const struct ks_kms *k)
{
	return k->name;
}

const char *ks_kms_key_id(const struct ks_kms *k)
{
	return k->key_id;
}

void ks_kms_map_key(const struct ks_kms *k, uint8_t out[32])
{
	memcpy(out, k->map_key, sizeof(k->map_key));
}

int ks_kms_wrap(struct ks_kms *k, const struct secret *dk, struct buf *out)
{
	struct buf blob;
	int r;

	if (dk->len != KS_DATA_KEY_SIZE)
		return -EINVAL;
	buf_init(&blob, KS_MAX_BLOB);
	pthread_mutex_lock(&k->lock);
	r = k->prov->wrap(k->state, dk, &blob);
	pthread_mutex_unlock(&k->lock);
	if (r == -E2BIG || (!r && blob.len == 0)) {
		log_err("KMS %s returned a wrapped key of a bad size (1..%d "
			"bytes expected)",
			k->name, KS_MAX_BLOB);
		r = -EPROTO;
	}
	if (!r)
		r = buf_add(out, blob.data, blob.len);
	buf_release(&blob);
	return r;
}

int ks_kms_unwrap(struct ks_kms *k, const uint8_t *blob, size_t len,
		  struct secret **dk_out)
{
	struct secret *dk = NULL;
	int r;

	*dk_out = NULL;
	if (len == 0 || len > KS_MAX_BLOB)
		return -EPROTO;
	pthread_mutex_lock(&k->lock);
	r = k->prov->unwrap(k->state, blob, len, &dk);
	/* One region's outage should cost one timeout, not one per chain. */
	k->down_until =
	    r == -ETIMEDOUT || r == -EAGAIN ? time(NULL) + KS_DOWN_SECONDS : 0;
	pthread_mutex_unlock(&k->lock);
	if (!r && (!dk || dk->len != KS_DATA_KEY_SIZE)) {
		log_err("KMS %s returned a data key of the wrong size",
			k->name);
		r = -EPROTO;
	}
	if (r) {
		secret_free(dk);
		return r;
	}
	*dk_out = dk;
	return 0;
}

static const struct encinfo_entry *entry_of(const struct encinfo *ei,
					    const struct ks_kms *k)
{
	return encinfo_get(ei, k->map_key, sizeof(k->map_key));
}

/* --- keyring ------------------------------------------------------------- */

int ks_keyring_new(struct ks_keyring **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static void drop_kms_from(struct ks_keyring *r, size_t from)
{
	while (r->n > from)
		ks_kms_free(r->kms[--r->n]);
}

void ks_keyring_free(struct ks_keyring *r)
{
	if (!r)
		return;
	drop_kms_from(r, 0);
	free(r->kms);
	secret_free(r->pass);
	free(r);
}

static int refuse_mix(void)
{
	log_err("KMS URIs and a passphrase cannot be used together: "
		"configure one or the other");
	return -EINVAL;
}

int ks_keyring_add_kms(struct ks_keyring *r, const char *uri)
{
	struct ks_kms **v, *k;
	int rc;

	if (r->pass)
		return refuse_mix();
	rc = ks_kms_open(uri, &k);
	if (rc)
		return rc;
	v = reallocarray(r->kms, r->n + 1, sizeof(*v));
	if (!v) {
		ks_kms_free(k);
		return -ENOMEM;
	}
	v[r->n++] = k;
	r->kms = v;
	return 0;
}

/* Add each URI line of text (modified in place); *count gets how many. */
static int add_uri_lines(struct ks_keyring *r, char *text, const char *path,
			 size_t *count)
{
	size_t lineno = 0;
	char *line = text;

	*count = 0;
	while (line && *line) {
		char *nl = strchr(line, '\n');
		char *end = nl ? nl : line + strlen(line);
		int rc;

		lineno++;
		while (end > line && strchr(" \t\r\f\v", end[-1]))
			*--end = '\0';
		*end = '\0';
		line += strspn(line, " \t");
		if (*line && *line != '#') {
			rc = ks_keyring_add_kms(r, line);
			if (rc) {
				log_err("KMS URI file %s, line %zu: unusable "
					"URI, so no URI of the file was added",
					path, lineno);
				return rc;
			}
			(*count)++;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

int ks_keyring_add_kms_file(struct ks_keyring *r, const char *path)
{
	char why[PRIVFILE_WHY_MAX];
	size_t before = r->n, count = 0;
	struct buf b;
	int rc;

	if (r->pass)
		return refuse_mix();
	buf_init_secret(&b, KMS_FILE_MAX);
	rc = privfile_read_buf(path, &b, why);
	if (rc)
		log_err("KMS URI file %s: %s", path, why);
	if (!rc && memchr(b.data, '\0', b.len)) {
		log_err("KMS URI file %s is not a text file", path);
		rc = -EINVAL;
	}
	if (!rc)
		rc = add_uri_lines(r, (char *)b.data, path, &count);
	if (!rc && !count) {
		log_err("KMS URI file %s holds no KMS URI", path);
		rc = -EINVAL;
	}
	if (rc)
		drop_kms_from(r, before);
	buf_release(&b);
	return rc;
}

int ks_keyring_set_passphrase(struct ks_keyring *r, const uint8_t *p,
			      size_t len)
{
	struct secret *s;

	if (r->n)
		return refuse_mix();
	if (len > SECRET_MAX) {
		log_err("the passphrase is longer than %d bytes", SECRET_MAX);
		return -EINVAL;
	}
	s = secret_dup(p, len);
	if (!s)
		return -ENOMEM;
	secret_free(r->pass);
	r->pass = s;
	return 0;
}

bool ks_keyring_empty(const struct ks_keyring *r)
{
	return !r->n && !r->pass;
}

bool ks_keyring_is_passphrase(const struct ks_keyring *r)
{
	return r->pass != NULL;
}

size_t ks_keyring_kms_count(const struct ks_keyring *r)
{
	return r->n;
}

struct ks_kms *ks_keyring_kms(const struct ks_keyring *r, size_t i)
{
	return i < r->n ? r->kms[i] : NULL;
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

/* Unlock from one decoded file: each KMS of r with an entry, in order.
 * *err keeps the last KMS error. */
static bool kms_down(struct ks_kms *k)
{
	bool down;

	pthread_mutex_lock(&k->lock);
	down = k->down_until && time(NULL) < k->down_until;
	pthread_mutex_unlock(&k->lock);
	return down;
}

/* Configured order, except that KMSes that just failed to answer go
 * last (pass 0: the others, pass 1: those). */
static int unlock_file(struct ks_keyring *r, const struct encinfo *ei,
		       const char *fname, struct secret **dk_out, int *err)
{
	for (size_t j = 0; j < 2 * r->n; j++) {
		struct ks_kms *k = r->kms[j % r->n];
		const struct encinfo_entry *e = entry_of(ei, k);
		int rc;

		if (!e || kms_down(k) != (j >= r->n))
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

static int unlock_kms(struct ks_keyring *r, int dirfd,
		      const struct encinfo_names *nm, struct secret **dk_out)
{
	int kms_err = 0, file_err = 0;

	for (size_t i = nm->n; i-- > 0;) {
		struct encinfo ei;
		int rc;

		encinfo_init(&ei);
		rc = encinfo_read(dirfd, nm->v[i], &ei);
		if (rc)
			file_err = rc;
		else
			rc = unlock_file(r, &ei, nm->v[i], dk_out, &kms_err);
		encinfo_release(&ei);
		if (!rc)
			return 0;
	}
	if (kms_err || file_err)
		return kms_err ? kms_err : file_err;
	log_err("none of the %zu configured KMSes has an entry in the chain's "
		"ENCRYPTION-INFO files: configure a KMS the chain was "
		"encrypted (or later ALTERed) with",
		r->n);
	return -ENOKEY;
}

static int unlock_passphrase(struct ks_keyring *r, int dirfd,
			     const struct encinfo_names *nm,
			     struct secret **dk_out)
{
	int file_err = 0;

	/* CockroachDB takes the newest file's salt; take the newest salt. */
	for (size_t i = nm->n; i-- > 0;) {
		bool salted = false;
		struct encinfo ei;
		int rc;

		encinfo_init(&ei);
		rc = encinfo_read(dirfd, nm->v[i], &ei);
		if (rc)
			file_err = rc;
		else if ((salted = ei.saltlen > 0))
			rc = ks_derive_passphrase(r->pass->bytes, r->pass->len,
						  ei.salt, ei.saltlen, dk_out);
		encinfo_release(&ei);
		if (salted)
			return rc;
	}
	if (file_err)
		return file_err;
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

static int scan_writable(struct ks_keyring *r, int dirfd,
			 const struct encinfo_names *nm, bool *seen)
{
	bool found = false;
	int file_err = 0;

	for (size_t i = nm->n; i-- > 0;) {
		struct encinfo ei;
		int rc;

		encinfo_init(&ei);
		rc = encinfo_read(dirfd, nm->v[i], &ei);
		if (rc)
			file_err = rc;
		else if (all_in_file(r, &ei, seen))
			found = true;
		encinfo_release(&ei);
	}
	if (file_err)
		return file_err;
	if (found)
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

/* Read every file (any failure fails, as in CockroachDB) and find the
 * first old KMS, in keyring order, with an entry; newest file first. */
static int find_old(struct ks_keyring *old, int dirfd,
		    const struct encinfo_names *nm, struct old_match *m)
{
	for (size_t i = nm->n; i-- > 0;) {
		const struct encinfo_entry *e;
		struct encinfo ei;
		int rc;

		encinfo_init(&ei);
		rc = encinfo_read(dirfd, nm->v[i], &ei);
		for (size_t j = 0; !rc && j < old->n && j < m->kms; j++) {
			e = entry_of(&ei, old->kms[j]);
			if (!e)
				continue;
			m->kms = j;
			buf_reset(&m->blob);
			rc = buf_add(&m->blob, e->val, e->vallen);
			break;
		}
		encinfo_release(&ei);
		if (rc)
			return rc;
	}
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
