/*
 * cmd_cat.c - `kmsfs cat`: print one decrypted file without mounting.
 *
 * Same key options as mount (cmd_common.c); the reading is kfs_cat's.
 * Useful to check a key against a backup, and on machines without FUSE.
 */
#include "cmd.h"

#include <getopt.h>
#include <unistd.h>

#include "../fs/fs.h"
#include "../lib/harden.h"
#include "../lib/log.h"

/* Positional arguments: [BACKING] PATH.  Returns an exit status. */
static int cat_args(const struct cmd *c, int argc, char **argv,
		    struct cmd_opts *o, const char **path)
{
	int n = argc - optind;

	if (n > 2)
		return cmd_usage(c, "too many arguments");
	if (n == 0)
		return cmd_usage(c, "missing PATH");
	if (n == 2 && cfg_set(&o->cli.backing, argv[optind])) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	*path = argv[argc - 1];
	while (**path == '/')
		(*path)++;
	if (!**path)
		return cmd_usage(c, "PATH must name a file inside BACKING");
	return CMD_OK;
}

static int cat_opt(const struct cmd *c, void *ctx, int opt, const char *arg)
{
	return cmd_common_opt(c, ctx, opt, arg);
}

static int cat_parse(const struct cmd *c, int argc, char **argv,
		     struct cmd_opts *o, const char **path)
{
	static const struct option longopts[] = {
	    CMD_KEY_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	int st = cmd_getopt(c, argc, argv, longopts, cat_opt, o);

	if (st)
		return st;
	return cat_args(c, argc, argv, o, path);
}

static int cat_run(const struct cmd *c, int argc, char **argv)
{
	struct ks_keyring *keys = NULL;
	const char *path = NULL;
	struct cmd_opts o;
	struct cfg s;
	int st, r;

	cmd_opts_init(&o);
	cfg_init(&s);
	st = cat_parse(c, argc, argv, &o, &path);
	if (st)
		goto out;
	if (harden_process()) {
		st = CMD_FAIL;
		goto out;
	}
	st = cmd_settings(c, &o, &s);
	if (!st && !s.backing)
		st = cmd_usage(c, "missing BACKING or PATH");
	if (!st)
		st = cmd_keyring(c, &s, &keys);
	if (st)
		goto out;
	r = kfs_cat(s.backing, keys, s.profile, path, s.allow_v1,
		    STDOUT_FILENO);
	st = r ? CMD_FAIL : CMD_OK; /* kfs_cat logged the failure */
out:
	if (st == CMD_HELP_SHOWN)
		st = CMD_OK;
	ks_keyring_free(keys);
	cfg_release(&s);
	cmd_opts_release(&o);
	return st;
}

const struct cmd cmd_cat = {
    .name = "cat",
    .synopsis = "[KEY OPTIONS] [BACKING] PATH",
    .summary = "decrypt one file of a backing store to standard output",
    .help = "PATH is relative to BACKING (which may come from "
	    "--config).\n" CMD_KEY_HELP,
    .run = cat_run,
};
