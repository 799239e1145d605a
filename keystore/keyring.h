/*
 * keyring.h - the inside of a KMS handle and of a keyring.  Private to
 * keystore/.
 *
 * Owns: nothing; keystore.c creates, changes and frees both structs, and
 * chainkey.c reads them to unlock, check and extend chains.
 * Thread-safety: a keyring is not changed once built; each KMS's lock
 * serialises the calls into its provider and guards down_until.
 */
#ifndef KMSFS_KEYRING_H
#define KMSFS_KEYRING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../lib/secret.h"
#include "keystore.h"
#include "provider.h"

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
	struct secret *pass; /* or KMSes, never both */
};

/* Did k time out or throttle within the last minute (so that it is tried
 * after the others)? */
bool ks_kms_down(struct ks_kms *k);

#endif
