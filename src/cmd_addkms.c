/*
 * cmd_addkms.c - `kmsfs add-kms`: CockroachDB's ALTER BACKUP ... ADD
 * NEW_KMS ... WITH OLD_KMS, for one chain, the latest one, or all.
 *
 * Chains are found with the "toplevel" profile: a chain is a top-level
 * directory of BACKING that holds ENCRYPTION-INFO; LATEST is the one whose
 * ENCRYPTION-INFO has the newest mtime.  The work is ks_chain_add_kms's:
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
	const char *chain; /* a name or "LATEST"; NULL with --all-chains */
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
		return cmd_opt_profile(c, arg);
	case CMD_OPT_LOG_LEVEL:
		return cmd_opt_log_level(c, arg);
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
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int st = cmd_getopt(c, argc, argv, longopts, addkms_opt, a);

	if (st)
		return st;
	return addkms_args(c, argc, argv, a);
}

/* --- finding chains -------------------------------------------------- */

/* Chain names; unbounded, unlike struct cfg_list (a collection may hold
 * years of daily full backups). */
struct addkms_names {
	char **v;
	size_t n;
};

static int addkms_names_add(struct addkms_names *l, const char *name)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	l->v[l->n] = strdup(name);
	if (!l->v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

static void addkms_names_release(struct addkms_names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Is name a chain of bfd?  Fills *mtime with its ENCRYPTION-INFO's. */
static bool addkms_is_chain(int bfd, const char *name, struct timespec *mtime)
{
	char path[NAME_MAX + sizeof("/" KS_ENCINFO_NAME) + 1];
	struct stat st;

	if (fstatat(bfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISDIR(st.st_mode))
		return false;
	snprintf(path, sizeof(path), "%s/%s", name, KS_ENCINFO_NAME);
	if (fstatat(bfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return false;
	if (mtime)
		*mtime = st.st_mtim;
	return true;
}

static bool addkms_newer(const struct timespec *a, const char *aname,
			 const struct timespec *b, const char *bname)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec > b->tv_sec;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec > b->tv_nsec;
	return strcmp(aname, bname) > 0;
}

static int addkms_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every chain of bfd (sorted), or only the latest. 0 or -errno. */
static int addkms_scan(int bfd, bool latest, struct addkms_names *out)
{
	struct timespec t, best_t = {0, 0};
	char *best = NULL;
	struct dirent *de;
	int fd = dup(bfd), r = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (!r && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !addkms_is_chain(bfd, de->d_name, &t))
			continue;
		if (!latest) {
			r = addkms_names_add(out, de->d_name);
		} else if (!best ||
			   addkms_newer(&t, de->d_name, &best_t, best)) {
			free(best);
			best = strdup(de->d_name);
			best_t = t;
			r = best ? 0 : -ENOMEM;
		}
	}
	closedir(d);
	if (!r && best)
		r = addkms_names_add(out, best);
	free(best);
	if (!r && out->n > 1)
		qsort(out->v, out->n, sizeof(out->v[0]), addkms_cmp);
	return r;
}

/* One named chain: "./x/" is accepted as "x"; anything deeper is not. */
static int addkms_named(const struct cmd *c, int bfd, const char *chain,
			struct addkms_names *out)
{
	char name[NAME_MAX + 1];
	size_t len;

	while (!strncmp(chain, "./", 2))
		chain += 2;
	len = strlen(chain);
	while (len && chain[len - 1] == '/')
		len--;
	if (len > NAME_MAX)
		len = 0;
	memcpy(name, chain, len);
	name[len] = '\0';
	if (!len || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return cmd_usage(c, "CHAIN must be the name of a top-level "
				    "directory of BACKING");
	if (!addkms_is_chain(bfd, name, NULL)) {
		log_err("%s: not a backup chain (no %s in it)", name,
			KS_ENCINFO_NAME);
		return CMD_FAIL;
	}
	if (addkms_names_add(out, name)) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	return CMD_OK;
}

static int addkms_chains(const struct cmd *c, const struct addkms_opts *a,
			 int bfd, struct addkms_names *out)
{
	int r;

	if (a->chain && strcmp(a->chain, "LATEST") != 0)
		return addkms_named(c, bfd, a->chain, out);
	r = addkms_scan(bfd, !a->all, out);
	if (r) {
		log_err("cannot list %s: %s", a->backing, strerror(-r));
		return CMD_FAIL;
	}
	if (!out->n) {
		log_err("%s holds no backup chain (no top-level directory "
			"with %s)",
			a->backing, KS_ENCINFO_NAME);
		return CMD_FAIL;
	}
	return CMD_OK;
}

/* --- adding ---------------------------------------------------------- */

static const char *addkms_why(int r)
{
	switch (r) {
	case -ENOKEY:
		return "no old KMS key is one this chain was encrypted with";
	case -EEXIST:
		return "another ENCRYPTION-INFO file appeared meanwhile; run "
		       "again";
	default:
		return strerror(-r);
	}
}

static int addkms_one(int bfd, const char *name, struct ks_keyring *old,
		      struct ks_keyring *new)
{
	struct buf written;
	int dfd, r;

	dfd =
	    openat(bfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		log_err("%s: %s", name, strerror(errno));
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
	struct addkms_names chains = {NULL, 0};
	int bfd, st;

	bfd = open(a->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0) {
		log_err("backing store %s: %s", a->backing, strerror(errno));
		return CMD_FAIL;
	}
	st = addkms_chains(c, a, bfd, &chains);
	for (size_t i = 0; !st && i < chains.n; i++)
		if (addkms_one(bfd, chains.v[i], old, new))
			st = CMD_FAIL; /* and carry on with the others */
	addkms_names_release(&chains);
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
	    "CHAIN is a top-level directory of BACKING holding "
	    "ENCRYPTION-INFO; LATEST\nis the chain whose ENCRYPTION-INFO "
	    "is newest.  Writes ENCRYPTION-INFO-<n>\nand changes nothing "
	    "else: safe while mounted.\n",
    .run = addkms_run,
};
