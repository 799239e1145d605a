/*
 * cmd_keygen.c - `kmsfs keygen PATH`: make a local master key.
 *
 * The key itself is made by the keystore (ks_local_keygen: 32 random
 * bytes, mode 0600, never overwriting).  This file prints the URI that
 * names it, file:// plus the absolute path, percent-encoded so that the
 * keystore's URI parser gets the same path back.
 */
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/harden.h"
#include "../lib/log.h"

static void keygen_print_uri(const char *abs)
{
	static const char hex[] = "0123456789ABCDEF";

	fputs("file://", stdout);
	for (const unsigned char *p = (const unsigned char *)abs; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/-._~", *p))
			putchar(*p);
		else
			printf("%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
	putchar('\n');
}

static int keygen_run(const struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *abs;
	int opt, r;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 'h')
			return cmd_help(c, stdout);
		return cmd_bad_option(c, opt, argv);
	}
	if (argc - optind != 1)
		return cmd_usage(c, argc - optind ? "too many arguments"
						  : "missing PATH");
	if (harden_process())
		return CMD_FAIL;
	r = ks_local_keygen(argv[optind]);
	if (r)
		return CMD_FAIL; /* logged by the keystore */
	abs = realpath(argv[optind], NULL);
	if (!abs) {
		log_err("%s: created, but cannot resolve its path: %s",
			argv[optind], strerror(errno));
		return CMD_FAIL;
	}
	keygen_print_uri(abs);
	free(abs);
	return CMD_OK;
}

const struct cmd cmd_keygen = {
    .name = "keygen",
    .synopsis = "PATH",
    .summary = "create a local master key file and print its file:// URI",
    .help = "Writes 32 random bytes to PATH (mode 0600; an existing file "
	    "is never\noverwritten) and prints the URI to give to --kms, "
	    "e.g. file:///etc/kmsfs/master.key.\n"
	    "Keep a copy of the key: without it the backups cannot be "
	    "read.\n",
    .run = keygen_run,
};
