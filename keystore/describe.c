/*
 * describe.c - what a chain's ENCRYPTION-INFO* files say, for `kmsfs show`
 * and `kmsfs verify`: scheme, map entries, and which configured KMS each
 * entry belongs to.  Nothing is unwrapped and no KMS is called.
 */
#include "keystore.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "encinfo.h"

static const struct ks_kms *match_kms(const struct ks_keyring *r,
				      const uint8_t key[32])
{
	uint8_t mk[32];

	for (size_t i = 0; r && i < ks_keyring_kms_count(r); i++) {
		const struct ks_kms *k = ks_keyring_kms(r, i);

		ks_kms_map_key(k, mk);
		if (CRYPTO_memcmp(mk, key, 32) == 0)
			return k;
	}
	return NULL;
}

static int describe_file(int dirfd, const char *name,
			 const struct ks_keyring *r, struct ks_encinfo_desc *d)
{
	struct encinfo ei;

	d->name = strdup(name);
	if (!d->name)
		return -ENOMEM;
	encinfo_init(&ei);
	d->err = encinfo_read(dirfd, name, &ei);
	if (d->err)
		return 0; /* shown as unreadable, not fatal */
	d->passphrase = ei.saltlen > 0 && ei.n == 0;
	d->map_key = calloc(ei.n ? ei.n : 1, sizeof(*d->map_key));
	d->kms = calloc(ei.n ? ei.n : 1, sizeof(*d->kms));
	if (!d->map_key || !d->kms) {
		encinfo_release(&ei);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ei.n; i++) {
		if (ei.entries[i].keylen != 32)
			continue; /* not a SHA-256: matches no KMS */
		memcpy(d->map_key[d->n], ei.entries[i].key, 32);
		d->kms[d->n++] = match_kms(r, ei.entries[i].key);
	}
	encinfo_release(&ei);
	return 0;
}

int ks_chain_describe(int dirfd, const struct ks_keyring *r,
		      struct ks_chain_desc *out)
{
	struct encinfo_names names = {NULL, 0};
	int rc = encinfo_list(dirfd, &names);

	memset(out, 0, sizeof(*out));
	if (rc)
		return rc;
	if (!names.n) {
		encinfo_names_release(&names);
		return -ENOENT;
	}
	out->files = calloc(names.n, sizeof(*out->files));
	if (!out->files)
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < names.n; i++) {
		rc = describe_file(dirfd, names.v[i], r, &out->files[i]);
		out->n = i + 1;
	}
	encinfo_names_release(&names);
	if (rc)
		ks_chain_desc_release(out);
	return rc;
}

void ks_chain_desc_release(struct ks_chain_desc *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->files[i].name);
		free(d->files[i].map_key);
		free(d->files[i].kms);
	}
	free(d->files);
	memset(d, 0, sizeof(*d));
}
