/*
 * cmd.h - the subcommands of the kmsfs program, and what they share.
 *
 * Owns: the const record of each subcommand (name, synopsis, help text,
 * entry point) that main.c dispatches on, and the helpers in
 * cmd_common.c that several subcommands need: one-line usage errors,
 * the key options (--kms, --kms-file, --passphrase-file, --config, ...)
 * and turning them into a struct ks_keyring.
 * Must not know: FUSE (only fs/fs.h's kfs_mount/kfs_cat).
 * Thread-safety: none; the command line is handled by main's thread.
 *
 * Entry points and helpers that say "returns an exit status" return
 * CMD_OK, CMD_FAIL (runtime failure, one line already printed) or
 * CMD_USAGE (bad command line, option value, configuration, or a key or
 * config file refused for its permissions or form; one line printed).
 */
#ifndef KMSFS_CMD_H
#define KMSFS_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../keystore/keystore.h"
#include "config.h"
#include "../lib/secret.h"

#define CMD_OK 0
#define CMD_FAIL 1
#define CMD_USAGE 2
/* Returned by option parsers only: --help was printed, stop, exit 0. */
#define CMD_HELP_SHOWN (-1)

struct cmd {
	const char *name;
	const char *synopsis; /* after "kmsfs NAME " */
	const char *summary;  /* one line for `kmsfs --help` */
	const char *help;     /* option list for `kmsfs help NAME` */
	/* argv[0] is the command name; returns an exit status. */
	int (*run)(const struct cmd *self, int argc, char **argv);
};

extern const struct cmd cmd_keygen;
extern const struct cmd cmd_mount;
extern const struct cmd cmd_umount;
extern const struct cmd cmd_cat;
extern const struct cmd cmd_encrypt;
extern const struct cmd cmd_decrypt;
extern const struct cmd cmd_addkms;
extern const struct cmd cmd_show;
extern const struct cmd cmd_verify;

/* --- cmd_common.c: messages ----------------------------------------- */

/* Print "kmsfs NAME: MESSAGE (see 'kmsfs help NAME')" on stderr and
 * return CMD_USAGE. */
int cmd_usage(const struct cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report getopt_long's '?' or ':' (opterr must be 0 and the optstring
 * must start with ':') as one line; returns CMD_USAGE. */
int cmd_bad_option(const struct cmd *c, int opt, char **argv);
/* Print c's full help on f; returns CMD_OK. */
int cmd_help(const struct cmd *c, FILE *f);
/* Map a negative errno from reading key sources (files, URIs; no network
 * involved) to an exit status: -ENOMEM and -EIO are CMD_FAIL, anything
 * else (-EINVAL, -EPERM, -ENOENT, -ENOTSUP, ...) is the user's to fix:
 * CMD_USAGE. */
int cmd_status(int r);

/* --- cmd_common.c: output helpers ---------------------------------- */

/* s as a JSON string literal (quotes, escapes) on f. */
void cmd_json_str(FILE *f, const char *s);
/* b as "1.5 GiB" (binary units) into out. */
void cmd_human_bytes(uint64_t b, char *out, size_t len);

/* --- cmd_common.c: options shared by mount and cat ----------------- */

enum cmd_opt {
	CMD_OPT_KMS = 0x100,
	CMD_OPT_KMS_FILE,
	CMD_OPT_PASSPHRASE_FILE,
	CMD_OPT_CONFIG,
	CMD_OPT_PROFILE,
	CMD_OPT_LOG_LEVEL,
	CMD_OPT_KNOWN_KEYS,
	CMD_OPT_ALLOW_V1,
};

#define CMD_KEY_LONGOPTS                                                       \
	{"kms", required_argument, NULL, CMD_OPT_KMS},                         \
	    {"kms-file", required_argument, NULL, CMD_OPT_KMS_FILE},           \
	    {"passphrase-file", required_argument, NULL,                       \
	     CMD_OPT_PASSPHRASE_FILE},                                         \
	    {"config", required_argument, NULL, CMD_OPT_CONFIG},               \
	    {"profile", required_argument, NULL, CMD_OPT_PROFILE},             \
	    {"log-level", required_argument, NULL, CMD_OPT_LOG_LEVEL},         \
	    {"known-keys", required_argument, NULL, CMD_OPT_KNOWN_KEYS},       \
	    {"allow-v1", no_argument, NULL, CMD_OPT_ALLOW_V1},                 \
	{                                                                      \
		"help", no_argument, NULL, 'h'                                 \
	}

#define CMD_KEY_HELP                                                           \
	"key options:\n"                                                       \
	"  --kms URI              a KMS master key (repeatable; credentials "  \
	"belong\n"                                                             \
	"                         in a --kms-file, not on the command line)\n" \
	"  --kms-file FILE        KMS URIs, one per line, # comments "         \
	"(mode 0600;\n"                                                        \
	"                         repeatable)\n"                               \
	"  --passphrase-file FILE the backup passphrase (mode 0600)\n"         \
	"  --config FILE          settings file (mode 0600); options given "   \
	"here win\n"                                                           \
	"  --profile NAME         collection layout: toplevel or crdb "        \
	"(default:\n"                                                          \
	"                         detected from the store)\n"                  \
	"  --log-level LEVEL      error, warn, info or debug\n"                \
	"  --known-keys FILE      chain keys to trust (default: "              \
	"$KMSFS_KNOWN_KEYS,\n"                                                 \
	"                         /var/lib/kmsfs/known-keys for root,\n"       \
	"                         ~/.local/state/kmsfs/known-keys else)\n"     \
	"  --allow-v1             read v1 files (CockroachDB 21.1 or older; "  \
	"never\n"                                                              \
	"                         written, at most 64 GiB each)\n"             \
	"Without a key option the config file's keys, then $KMSFS_KMS are "    \
	"used;\nelse the passphrase is asked for on the terminal.\n"

struct cmd_opts {
	struct cfg cli;	    /* what the command line said */
	const char *config; /* --config FILE, or NULL */
};

void cmd_opts_init(struct cmd_opts *o);
void cmd_opts_release(struct cmd_opts *o);

/* Take one of the CMD_OPT_* options above.  Returns an exit status
 * (CMD_USAGE for a --kms URI carrying credentials, a bad profile or log
 * level). */
int cmd_common_opt(const struct cmd *c, struct cmd_opts *o, int opt,
		   const char *arg);
/* --profile and --log-level checks (log level applied at once); return
 * an exit status. */
int cmd_opt_profile(const struct cmd *c, const char *arg);
int cmd_opt_log_level(const struct cmd *c, const char *arg);

/* The option loop of a command whose only short option is -h: help
 * prints and returns CMD_HELP_SHOWN, unknown or incomplete options are
 * one usage line, every other option goes to fn (stop on non-CMD_OK). */
struct option;
typedef int (*cmd_opt_fn)(const struct cmd *c, void *ctx, int opt,
			  const char *arg);
int cmd_getopt(const struct cmd *c, int argc, char **argv,
	       const struct option *longopts, cmd_opt_fn fn, void *ctx);

/* Add a KMS URI given on the command line to l, refusing URIs with
 * credential parameters (visible in ps) without echoing them; the message
 * suggests the file option fileopt instead.  Returns an exit status. */
int cmd_add_uri_arg(const struct cmd *c, struct cfg_list *l, const char *uri,
		    const char *fileopt);

/*
 * Final settings: the --config file (if any), overridden by the command
 * line (o->cli is emptied), then KMSFS_KMS from the environment if still
 * no key source is named.  Applies the log level.  Checks that KMS and
 * passphrase are not both given.  out must be empty (cfg_init).
 * Returns an exit status.
 */
int cmd_settings(const struct cmd *c, struct cmd_opts *o, struct cfg *out);

/*
 * Build the keyring s names.  With no key source at all and stdin a
 * terminal, ask for the passphrase on /dev/tty.  Call harden_process()
 * first.  *out is the caller's (ks_keyring_free).  Returns an exit status.
 */
int cmd_keyring(const struct cmd *c, const struct cfg *s,
		struct ks_keyring **out);

/* A keyring of KMSes only, from URIs and files of URIs (add-kms).
 * Returns an exit status. */
int cmd_kms_keyring(const struct cfg_list *uris, const struct cfg_list *files,
		    struct ks_keyring **out);

/*
 * Give kr its known-keys record (ks_keyring_set_known): path if set
 * (--known-keys, the config's known_keys), else $KMSFS_KNOWN_KEYS, else
 * /var/lib/kmsfs/known-keys for root and
 * ${XDG_STATE_HOME:-~/.local/state}/kmsfs/known-keys for others; made
 * absolute (a daemon changes to /).  Returns an exit status.
 */
int cmd_keyring_known(struct ks_keyring *kr, const char *path, bool accept_new);

/*
 * Read a private file (a passphrase or key) into a new secret of at most
 * max bytes (<= SECRET_MAX).  The file must be a regular file owned by
 * the effective uid with no group/other permission bits.  Errors are
 * printed naming what (e.g. "passphrase file") and path.  Returns 0,
 * -EPERM (owner/mode), -EINVAL (not a regular file), -EFBIG (longer than
 * max), -ENOMEM, or the -errno of open/read.
 */
int cmd_read_private(const char *what, const char *path, size_t max,
		     struct secret **out);

#endif
