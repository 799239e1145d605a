/*
 * config.h - the kmsfs configuration file, as a validated plain struct.
 *
 * Owns: reading a libconfig file (the only user of libconfig), refusing
 * files that others could read or write, rejecting unknown keys and wrong
 * types (naming the key and line), and merging command-line values over
 * file values.  The struct holds paths and strings only; it does not open
 * key files or parse KMS URIs (keystore/ does that later).
 * Must not know: FUSE, keystore/, the file format.
 * Thread-safety: none; a struct cfg has one owner.
 *
 * Keys (all optional):
 *   backing = "/srv/backup";            mountpoint = "/mnt/backup";
 *   kms = ["file:///etc/kmsfs/a.key"];  kms_file = "/etc/kmsfs/kms";
 *   passphrase_file = "/etc/kmsfs/pw";  foreground = false;
 *   options = "allow_other";            profile = "toplevel";
 *   log_level = "info";
 *   known_keys = "/var/lib/kmsfs/known-keys";  accept_new_keys = false;
 * kms and kms_file take a string or a list/array of strings.
 */
#ifndef KMSFS_CONFIG_H
#define KMSFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CFG_MAX_SIZE (64u << 10) /* a config file is small */
#define CFG_MAX_LIST 64		 /* entries in kms / kms_file */

struct cfg_list {
	char **v;
	size_t n;
};

struct cfg {
	char *backing;
	char *mountpoint;
	struct cfg_list kms;	   /* URIs; may hold credentials: wiped */
	struct cfg_list kms_files; /* files of URIs, one per line */
	char *passphrase_file;
	bool foreground;
	bool allow_v1;	      /* read v1 files (CockroachDB <= 21.1) */
	char *options;	      /* comma-separated FUSE -o list */
	char *profile;	      /* validated: cfg_check_profile() */
	char *log_level;      /* validated: error|warn|info|debug */
	char *known_keys;     /* the known-keys record (key trust) */
	bool accept_new_keys; /* record unknown chain keys on first use */
};

/* Empty configuration (every pointer NULL, foreground false). */
void cfg_init(struct cfg *c);
/* Free everything, wiping the KMS URIs; leaves c empty. */
void cfg_release(struct cfg *c);

/*
 * Read path into c (which must be empty).  The file must be a regular
 * file owned by the effective uid with no group/other permission bits.
 * On failure c is left empty and err (errlen bytes, always terminated)
 * holds one line naming the file, line and key.  Returns 0, -EPERM
 * (ownership or mode), -EINVAL (syntax, unknown key, type or value
 * error, @include), -E2BIG (larger than CFG_MAX_SIZE), -ENOMEM, or the
 * -errno of open/read.
 */
int cfg_load(struct cfg *c, const char *path, char *err, size_t errlen);

/* Replace *field by a copy of value.  0 or -ENOMEM. */
int cfg_set(char **field, const char *value);
/* Append a copy of value.  0, -ENOMEM or -E2BIG (more than CFG_MAX_LIST). */
int cfg_list_add(struct cfg_list *l, const char *value);
/* Wipe and free every entry; leaves l empty. */
void cfg_list_release(struct cfg_list *l);

/* Does c name any key source (kms, kms_file or passphrase_file)? */
bool cfg_has_keys(const struct cfg *c);

/*
 * Command-line values win: move every value set in over into base
 * (over is left empty).  If over names any key source, all key sources
 * of base are dropped first, so that a --passphrase-file on the command
 * line replaces kms URIs from the file instead of conflicting with them.
 * foreground and accept_new_keys are set when either has them.
 */
void cfg_override(struct cfg *base, struct cfg *over);

/* Is name a known layout profile?  0 or -EINVAL ("toplevel" only). */
int cfg_check_profile(const char *name);

#endif
