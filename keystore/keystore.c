/*
 * keystore.c - the public keystore API: scheme table, KMS handles and
 * keyrings.  Chain keys (create, unlock, check, add a KMS) are in
 * chainkey.c.
 *
 * The only caller through the provider table.  It checks what providers
 * return (a master key ID, a 32-byte data key, a blob of 1..KS_MAX_BLOB
 * bytes) and serialises the calls into one KMS with a mutex, so providers
 * need no locking of their own.
 */
#include "keystore.h"
#include "keyring.h"

#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "../lib/log.h"
#include "../lib/privfile.h"
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

bool ks_kms_down(struct ks_kms *k)
{
	bool down;

	pthread_mutex_lock(&k->lock);
	down = k->down_until && time(NULL) < k->down_until;
	pthread_mutex_unlock(&k->lock);
	return down;
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
