/*
 * main.c - the kmsfs program: pick the subcommand and run it.
 *
 * Owns: the table of subcommands, `kmsfs help [COMMAND]`, `--help` and
 * `--version`.  Everything else (options, keys, exit statuses) belongs to
 * the subcommand files; each is a const struct cmd record (cmd.h).
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "../lib/log.h"

#ifndef KMSFS_VERSION
#define KMSFS_VERSION "unknown"
#endif

static const struct cmd *const commands[] = {
    &cmd_mount,	  &cmd_umount, &cmd_cat,  &cmd_keygen, &cmd_encrypt,
    &cmd_decrypt, &cmd_addkms, &cmd_show, &cmd_verify,
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cmd *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static int print_overview(FILE *f)
{
	fputs("usage: kmsfs COMMAND [ARGS]\n\n"
	      "Serve CockroachDB encrypted BACKUP collections as plaintext "
	      "through FUSE.\n\ncommands:\n",
	      f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i]->name,
			commands[i]->summary);
	fputs("  help      show help for a command\n\n"
	      "Run 'kmsfs help COMMAND' for a command's options; see "
	      "kmsfs(1).\n",
	      f);
	return CMD_OK;
}

static int run_help(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 3)
		return print_overview(stdout);
	c = find_command(argv[2]);
	if (!c) {
		fprintf(stderr,
			"kmsfs: unknown command '%s' (see 'kmsfs "
			"--help')\n",
			argv[2]);
		return CMD_USAGE;
	}
	return cmd_help(c, stdout);
}

static int flush_stdout(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("kmsfs: write error on standard output");
		return status ? status : CMD_FAIL;
	}
	return status;
}

int main(int argc, char **argv)
{
	const struct cmd *c;
	const char *name = argc > 1 ? argv[1] : NULL;

	log_init("kmsfs");
	if (!name) {
		fputs("kmsfs: missing command (see 'kmsfs --help')\n", stderr);
		return CMD_USAGE;
	}
	if (!strcmp(name, "help") || !strcmp(name, "--help") ||
	    !strcmp(name, "-h"))
		return flush_stdout(run_help(argc, argv));
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		puts("kmsfs " KMSFS_VERSION);
		return flush_stdout(CMD_OK);
	}
	c = find_command(name);
	if (!c) {
		fprintf(stderr,
			"kmsfs: unknown command '%s' (see 'kmsfs "
			"--help')\n",
			name);
		return CMD_USAGE;
	}
	return flush_stdout(c->run(c, argc - 1, argv + 1));
}
