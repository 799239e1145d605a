/*
 * provider.h - the KMS provider table.  Private to keystore/.
 *
 * Every scheme is a const struct ks_provider (curl's Curl_handler idea).
 * keystore.c is the only caller through the table and checks what a
 * provider returns (data key length, blob size).  A provider that is not
 * compiled in still has an entry with built == false and a build hint.
 *
 * Contract for each callback (state is what open returned):
 *  open(u, &state): consume the URI's parameters with kmsuri_take (the
 *      caller rejects leftovers), validate them, do no network I/O.
 *      -EINVAL with one logged line naming the problem.
 *  master_key_id(state): CockroachDB's MasterKeyID (spec §3.4); a string
 *      owned by state.
 *  wrap(state, dk, out): append the opaque wrapped blob to out.
 *  unwrap(state, blob, len, &dk): new secret holding the data key.
 *  free(state): wipe and free; accepts NULL.
 *  private_wrap: only holders of the master key's secret can wrap for it
 *      (a local key file), so an unwrap proves who chose the data key.
 *      False for cloud KMSes: Azure wraps with the key's public half, AWS
 *      and GCP for anyone allowed Encrypt.
 * Calls on one state are serialised by keystore.c.
 */
#ifndef KMSFS_PROVIDER_H
#define KMSFS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"
#include "../lib/secret.h"
#include "kmsuri.h"

#define KS_MAX_BLOB 8192 /* longest wrapped key a provider may return */

struct ks_provider {
	const char *scheme;	    /* canonical name */
	const char *const *aliases; /* NULL-terminated, or NULL */
	bool built;
	bool private_wrap;
	const char *build_hint; /* said when !built */
	int (*open)(struct kmsuri *u, void **state_out);
	const char *(*master_key_id)(void *state);
	int (*wrap)(void *state, const struct secret *dk, struct buf *out);
	int (*unwrap)(void *state, const uint8_t *blob, size_t len,
		      struct secret **dk_out);
	void (*free)(void *state);
};

extern const struct ks_provider ks_provider_local;
extern const struct ks_provider ks_provider_aws;
extern const struct ks_provider ks_provider_gcp;
extern const struct ks_provider ks_provider_azure;

#endif
