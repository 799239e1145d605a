/*
 * known.h - the known-keys record: fingerprints of the chain keys a user
 * has established, kept outside the backing store (ssh's known_hosts for
 * backup chains).  Private to keystore/.
 *
 * Owns: the file's format, reading it, appending to it, and the
 * fingerprint of a data key.  One line per key:
 *   kfp1:<64 hex digits> <UTC time> <chain directory>
 * The fingerprint is HMAC-SHA256(key, "kmsfs chain key fingerprint v1"):
 * it names the key without revealing it.  The chain directory (its
 * absolute path when recorded) is only a hint, used to say that a chain
 * was recorded with another key.  Lines that do not start with "kfp1:"
 * (comments, later versions) are ignored.  The file must be a regular
 * file owned by the effective uid with no group or other permission bits
 * (lib/privfile.h's rule); it is created so, in a directory of mode 0700,
 * and never holds more than KNOWN_FILE_MAX bytes.
 * Must not know: what a chain is or how keys are unwrapped.
 * Thread-safety: a struct ks_known has a lock, any thread may use it.
 * Several processes may share one file: appends are serialised by flock()
 * and fsync'd, and a lookup that misses reads the file again when it
 * changed since it was read.
 */
#ifndef KMSFS_KNOWN_H
#define KMSFS_KNOWN_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/secret.h"

#define KNOWN_FP_SIZE 32
#define KNOWN_FILE_MAX (16u << 20) /* about 100,000 records */

struct ks_known;

/* A record at path (not read yet: that happens at the first lookup).
 * accept_new: unknown keys may be recorded on first use.  0 or -ENOMEM. */
int known_new(const char *path, bool accept_new, struct ks_known **out);
void known_free(struct ks_known *k); /* NULL ok */
const char *known_path(const struct ks_known *k);
bool known_accept_new(const struct ks_known *k);

/* The fingerprint of a 32-byte data key.  0 or -EIO. */
int known_fingerprint(const struct secret *dk, uint8_t fp[KNOWN_FP_SIZE]);

/* Is fp recorded?  1 yes, 0 no (then *changed: the chain directory where
 * is recorded with another key), or -EPERM/-EIO/-E2BIG/-ENOMEM when the
 * file cannot be used (logged, naming it).  A missing file holds
 * nothing. */
int known_lookup(struct ks_known *k, const uint8_t fp[KNOWN_FP_SIZE],
		 const char *where, bool *changed);

/* Record fp for the chain directory where (creating the file and its
 * directory when needed); nothing is written when fp is recorded
 * already.  0 or -errno (logged, naming the file). */
int known_add(struct ks_known *k, const uint8_t fp[KNOWN_FP_SIZE],
	      const char *where);

#endif
