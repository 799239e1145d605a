/*
 * cmd_addkms.c - `kmsfs add-kms`: CockroachDB's ALTER BACKUP ... ADD
 * NEW_KMS ... WITH OLD_KMS, for one chain, the latest one, or all.
 *
 * Which directories are chains, and which is LATEST, is the layout's
 * answer (fs/layout.h), the same the mount uses; the collection root's
 * own chain counts too.  The work is ks_chain_add_kms's:
 * it only ever adds an ENCRYPTION-INFO-<n> file, so this is safe while
 * the store is mounted.  Credentials are read from --old-kms-file and
 * --new-kms-file; URIs carrying them are refused on the command line.
 */
#include "cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/harden.h"
#include "../fs/layout.h"
#include "../lib/fdio.h"
#include "../lib/log.h"

enum {
	ADDKMS_OLD = 0x200,
	ADDKMS_OLD_FILE,
	ADDKMS_NEW,
	ADDKMS_NEW_FILE,
	ADDKMS_ALL,
};

struct addkms_opts {
	struct cfg_list old_uris, old_files, new_uris, new_files;
	bool all;
	const char *backing;
	const char *chain;   /* a name or "LATEST"; NULL with --all-chains */
	const char *profile; /* NULL: the default */
	const char *known;   /* --known-keys, or NULL */
};

static void addkms_opts_release(struct addkms_opts *a)
{
	cfg_list_release(&a->old_uris);
	cfg_list_release(&a->old_files);
	cfg_list_release(&a->new_uris);
	cfg_list_release(&a->new_files);
}

static int addkms_opt(const struct cmd *c, void *ctx, int opt, const char *arg)
{
	struct addkms_opts *a = ctx;
	struct cfg_list *files =
	    opt == ADDKMS_OLD_FILE ? &a->old_files : &a->new_files;

	switch (opt) {
	case ADDKMS_OLD:
		return cmd_add_uri_arg(c, &a->old_uris, arg, "--old-kms-file");
	case ADDKMS_NEW:
		return cmd_add_uri_arg(c, &a->new_uris, arg, "--new-kms-file");
	case ADDKMS_OLD_FILE:
	case ADDKMS_NEW_FILE:
		if (cfg_list_add(files, arg))
			return cmd_usage(c, "too many KMS files");
		return CMD_OK;
	case ADDKMS_ALL:
		a->all = true;
		return CMD_OK;
	case CMD_OPT_PROFILE:
		a->profile = arg;
		return cmd_opt_profile(c, arg);
	case CMD_OPT_LOG_LEVEL:
		return cmd_opt_log_level(c, arg);
	case CMD_OPT_KNOWN_KEYS:
		a->known = arg;
		return CMD_OK;
	}
	return cmd_usage(c, "internal error: option %d", opt);
}

static int addkms_args(const struct cmd *c, int argc, char **argv,
		       struct addkms_opts *a)
{
	int want = a->all ? 1 : 2;

	if (argc - optind < want)
		return cmd_usage(
		    c, argc == optind
			   ? "missing BACKING"
			   : "missing CHAIN (a chain name, LATEST, or "
			     "--all-chains)");
	if (argc - optind > want)
		return cmd_usage(c, "too many arguments");
	a->backing = argv[optind];
	a->chain = a->all ? NULL : argv[optind + 1];
	if (!a->old_uris.n && !a->old_files.n)
		return cmd_usage(c, "--old-kms-file or --old-kms is required");
	if (!a->new_uris.n && !a->new_files.n)
		return cmd_usage(c, "--new-kms-file or --new-kms is required");
	return CMD_OK;
}

static int addkms_parse(const struct cmd *c, int argc, char **argv,
			struct addkms_opts *a)
{
	static const struct option longopts[] = {
	    {"old-kms", required_argument, NULL, ADDKMS_OLD},
	    {"old-kms-file", required_argument, NULL, ADDKMS_OLD_FILE},
	    {"new-kms", required_argument, NULL, ADDKMS_NEW},
	    {"new-kms-file", required_argument, NULL, ADDKMS_NEW_FILE},
	    {"all-chains", no_argument, NULL, ADDKMS_ALL},
	    {"profile", required_argument, NULL, CMD_OPT_PROFILE},
	    {"log-level", required_argument, NULL, CMD_OPT_LOG_LEVEL},
	    {"known-keys", required_argument, NULL, CMD_OPT_KNOWN_KEYS},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int st = cmd_getopt(c, argc, argv, longopts, addkms_opt, a);

	if (st)
		return st;
	return addkms_args(c, argc, argv, a);
}

/* --- finding chains (fs/layout.h decides) ----------------------------- */

/* A one-chain list, as layout_chains gives. */
static int addkms_one_chain(const char *chain, char ***out)
{
	char **l = calloc(2, sizeof(*l));

	if (!l || !(l[0] = strdup(chain))) {
		free(l);
		return -ENOMEM;
	}
	*out = l;
	return 0;
}

static int addkms_named(const struct cmd *c, const struct addkms_opts *a,
			const struct layout_profile *lp, int bfd, char ***out)
{
	char chain[4096];

	if (layout_chain_arg(lp, a->chain, chain, sizeof(chain)))
		return cmd_usage(c,
				 "CHAIN must be a chain directory of BACKING "
				 "(profile %s), or . for the collection root",
				 layout_name(lp));
	if (!layout_has_encinfo(bfd, chain)) {
		log_err("%s: not a backup chain (no %s in it)",
			*chain ? chain : "/", KS_ENCINFO_NAME);
		return CMD_FAIL;
	}
	return addkms_one_chain(chain, out) ? CMD_FAIL : CMD_OK;
}

static int addkms_chains(const struct cmd *c, const struct addkms_opts *a,
			 int bfd, char ***out)
{
	const struct layout_profile *lp = layout_resolve(a->profile, bfd);
	char chain[4096];
	int r;

	if (a->chain && strcmp(a->chain, "LATEST") != 0)
		return addkms_named(c, a, lp, bfd, out);
	if (a->chain) {
		r = layout_latest(lp, bfd, chain, sizeof(chain));
		if (!r)
			r = addkms_one_chain(chain, out);
	} else {
		r = layout_chains(lp, bfd, out);
		if (!r && !(*out)[0]) {
			layout_list_free(*out);
			r = -ENOENT;
		}
	}
	if (r == -ENOENT)
		log_err("%s holds no backup chain (no chain directory with "
			"%s, profile %s)",
			a->backing, KS_ENCINFO_NAME, layout_name(lp));
	else if (r)
		log_err("cannot list %s: %s", a->backing, strerror(-r));
	return r ? CMD_FAIL : CMD_OK;
}

/* --- adding ---------------------------------------------------------- */

static const char *addkms_why(int r)
{
	switch (r) {
	case -ENOKEY:
		return "no old KMS key is one this chain was encrypted with";
	case -EKEYREJECTED:
		return "its key is not trusted (see above)";
	case -EEXIST:
		return "another ENCRYPTION-INFO file appeared meanwhile; run "
		       "again";
	default:
		return strerror(-r);
	}
}

static int addkms_one(int bfd, const char *chain, struct ks_keyring *old,
		      struct ks_keyring *new)
{
	const char *name = *chain ? chain : "/";
	struct buf written;
	int dfd, r;

	dfd = fdio_open_beneath(bfd, chain, O_RDONLY | O_DIRECTORY);
	if (dfd < 0) {
		log_err("%s: %s", name, strerror(-dfd));
		return CMD_FAIL;
	}
	buf_init(&written, 0);
	r = ks_chain_add_kms(old, new, dfd, &written);
	close(dfd);
	if (r)
		log_err("%s: nothing written: %s", name, addkms_why(r));
	else
		printf("%s: wrote %s\n", name, (const char *)written.data);
	fflush(stdout);
	buf_release(&written);
	return r ? CMD_FAIL : CMD_OK;
}

static int addkms_apply(const struct cmd *c, const struct addkms_opts *a,
			struct ks_keyring *old, struct ks_keyring *new)
{
	char **chains = NULL;
	int bfd, st;

	bfd = open(a->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0) {
		log_err("backing store %s: %s", a->backing, strerror(errno));
		return CMD_FAIL;
	}
	st = addkms_chains(c, a, bfd, &chains);
	for (size_t i = 0; !st && chains[i]; i++)
		if (addkms_one(bfd, chains[i], old, new))
			st = CMD_FAIL; /* and carry on with the others */
	layout_list_free(chains);
	close(bfd);
	return st;
}

static int addkms_run(const struct cmd *c, int argc, char **argv)
{
	struct addkms_opts a;
	struct ks_keyring *old = NULL, *new = NULL;
	int st;

	memset(&a, 0, sizeof(a));
	st = addkms_parse(c, argc, argv, &a);
	if (!st && harden_process())
		st = CMD_FAIL;
	if (!st)
		st = cmd_kms_keyring(&a.old_uris, &a.old_files, &old);
	if (!st)
		st = cmd_kms_keyring(&a.new_uris, &a.new_files, &new);
	if (!st)
		st = cmd_keyring_known(old, a.known, false);
	if (!st)
		st = cmd_keyring_known(new, a.known, false);
	if (!st)
		st = addkms_apply(c, &a, old, new);
	ks_keyring_free(old);
	ks_keyring_free(new);
	addkms_opts_release(&a);
	return st == CMD_HELP_SHOWN ? CMD_OK : st;
}

const struct cmd cmd_addkms = {
    .name = "add-kms",
    .synopsis = "BACKING (CHAIN|LATEST|--all-chains) --old-kms-file FILE "
		"--new-kms-file FILE",
    .summary = "let another KMS key open a chain (ALTER BACKUP ... ADD "
	       "NEW_KMS)",
    .help = "  --old-kms-file FILE  KMS URIs that can open the chain now "
	    "(mode 0600)\n"
	    "  --new-kms-file FILE  KMS URIs to add (mode 0600)\n"
	    "  --old-kms URI, --new-kms URI\n"
	    "                       the same on the command line (no "
	    "credentials)\n"
	    "  --all-chains         every chain of BACKING\n"
	    "  --log-level LEVEL    error, warn, info or debug\n"
	    "  --known-keys FILE    the record of chain keys to trust (as for "
	    "mount)\n"
	    "CHAIN is a chain directory of BACKING holding ENCRYPTION-INFO "
	    "(a top-level\ndirectory with the toplevel profile; . for the "
	    "collection root); LATEST is\nthe newest chain; --all-chains "
	    "includes the root.  Writes ENCRYPTION-INFO-<n>\nand changes "
	    "nothing else: safe while mounted.\n",
    .run = addkms_run,
};
