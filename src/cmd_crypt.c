/*
 * cmd_crypt.c - `kmsfs encrypt` and `kmsfs decrypt`: one file, one data
 * key, CockroachDB's format (cf_encrypt_fd / cf_decrypt_fd), no KMS.
 *
 * The data key file holds 64 hex digits or 32 raw bytes and is read into a
 * struct secret.  An output file is never written in place: the result
 * goes to OUT.tmp-XXXXXX (mode 0600), is fsync'd and renamed over OUT only
 * when the whole input was authentic, so a tampered or truncated input
 * never leaves partial plaintext under OUT.  The temporary file is
 * unlinked on failure and on SIGINT/SIGTERM/SIGHUP.
 */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fs/cformat.h"
#include "../lib/harden.h"
#include "../lib/hex.h"
#include "../lib/log.h"

#define CRYPT_KEY_HEX (2 * CF_KEY_SIZE)

struct crypt_out {
	const char *path; /* NULL: standard output */
	int fd;
};

/* The temporary file, for the signal handler (async-signal-safe unlink). */
static char crypt_tmp[PATH_MAX];
static const int crypt_sigs[] = {SIGINT, SIGTERM, SIGHUP};
#define CRYPT_NSIGS (sizeof(crypt_sigs) / sizeof(crypt_sigs[0]))

static void crypt_on_signal(int sig)
{
	if (crypt_tmp[0])
		unlink(crypt_tmp);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void crypt_block_signals(bool block)
{
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < CRYPT_NSIGS; i++)
		sigaddset(&set, crypt_sigs[i]);
	sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* raw holds 64 hex digits: decode into a new 32-byte secret. */
static int crypt_unhex(const struct secret *raw, struct secret **out)
{
	struct secret *k = secret_new(CF_KEY_SIZE);

	if (!k)
		return -ENOMEM;
	if (hex_decode((const char *)raw->bytes, CRYPT_KEY_HEX, k->bytes)) {
		secret_free(k);
		return -EINVAL;
	}
	*out = k;
	return 0;
}

/* Returns an exit status; *key_out is ready for cf_encrypt_fd. */
static int crypt_load_key(const char *path, struct cf_key **key_out)
{
	struct secret *raw = NULL, *k = NULL;
	int r;

	r = cmd_read_private("data key file", path, CRYPT_KEY_HEX + 1, &raw);
	if (r)
		return cmd_status(r);
	if (raw->len == CRYPT_KEY_HEX + 1 && raw->bytes[CRYPT_KEY_HEX] == '\n')
		raw->len--;
	if (raw->len == CF_KEY_SIZE) {
		k = raw;
		raw = NULL;
	} else if (raw->len == CRYPT_KEY_HEX) {
		r = crypt_unhex(raw, &k);
	} else {
		r = -EINVAL;
	}
	secret_free(raw);
	if (r == -EINVAL)
		log_err("data key file %s must hold exactly 64 hex digits or "
			"32 raw bytes",
			path);
	if (!r)
		r = cf_key_new(k, key_out);
	secret_free(k);
	if (r == -ENOMEM)
		log_err("out of memory");
	return cmd_status(r);
}

static int crypt_open_in(const char *path, int *fd_out)
{
	struct stat st;
	int fd;

	if (!path || !strcmp(path, "-")) {
		*fd_out = STDIN_FILENO;
		return CMD_OK;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		log_err("%s: %s", path, strerror(errno));
		return CMD_FAIL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		log_err("%s: is a directory", path);
		close(fd);
		return CMD_FAIL;
	}
	*fd_out = fd;
	return CMD_OK;
}

static int crypt_out_open(struct crypt_out *o, const char *path)
{
	struct sigaction sa;
	int n;

	o->path = path && strcmp(path, "-") ? path : NULL;
	o->fd = STDOUT_FILENO;
	if (!o->path)
		return CMD_OK;
	n = snprintf(crypt_tmp, sizeof(crypt_tmp), "%s.tmp-XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(crypt_tmp)) {
		crypt_tmp[0] = '\0';
		log_err("%s: path too long", path);
		return CMD_FAIL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = crypt_on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < CRYPT_NSIGS; i++)
		sigaction(crypt_sigs[i], &sa, NULL);
	crypt_block_signals(true);
	o->fd = mkostemp(crypt_tmp, O_CLOEXEC);
	if (o->fd < 0) {
		log_err("cannot create %s: %s", crypt_tmp, strerror(errno));
		crypt_tmp[0] = '\0';
	}
	crypt_block_signals(false);
	return o->fd < 0 ? CMD_FAIL : CMD_OK;
}

/* Remove the temporary file; signals blocked so the handler cannot race. */
static void crypt_drop_tmp(void)
{
	crypt_block_signals(true);
	unlink(crypt_tmp);
	crypt_tmp[0] = '\0';
	crypt_block_signals(false);
}

static void crypt_out_abort(struct crypt_out *o)
{
	if (!o->path || o->fd < 0)
		return;
	close(o->fd);
	o->fd = -1;
	crypt_drop_tmp();
}

static void crypt_sync_dir(const char *path)
{
	char *copy = strdup(path);
	char *slash = copy ? strrchr(copy, '/') : NULL;
	int fd;

	if (!copy)
		return;
	if (slash)
		*(slash == copy ? slash + 1 : slash) = '\0';
	fd = open(slash ? copy : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

static int crypt_out_commit(struct crypt_out *o)
{
	int r = 0;

	if (!o->path)
		return CMD_OK;
	if (fsync(o->fd) < 0)
		r = -errno;
	if (close(o->fd) < 0 && !r)
		r = -errno;
	o->fd = -1;
	if (r) {
		log_err("%s: %s", crypt_tmp, strerror(-r));
		crypt_drop_tmp();
		return CMD_FAIL;
	}
	crypt_block_signals(true);
	if (rename(crypt_tmp, o->path) < 0) {
		r = -errno;
		unlink(crypt_tmp);
	}
	crypt_tmp[0] = '\0';
	crypt_block_signals(false);
	if (r) {
		log_err("cannot rename to %s: %s", o->path, strerror(-r));
		return CMD_FAIL;
	}
	crypt_sync_dir(o->path);
	return CMD_OK;
}

static int crypt_transform(bool enc, const struct cf_key *key, const char *in,
			   const char *out, unsigned flags)
{
	struct crypt_out o = {.path = NULL, .fd = -1};
	int infd = -1;
	int st, r;

	st = crypt_open_in(in, &infd);
	if (st)
		return st;
	st = crypt_out_open(&o, out);
	if (st)
		goto out;
	r = enc ? cf_encrypt_fd(key, infd, o.fd)
		: cf_decrypt_fd(key, infd, o.fd, flags);
	if (r) {
		log_err("%s %s: %s", enc ? "encrypting" : "decrypting",
			in && strcmp(in, "-") ? in : "standard input",
			cf_strerror(r));
		crypt_out_abort(&o);
		st = CMD_FAIL;
		goto out;
	}
	st = crypt_out_commit(&o);
out:
	if (infd > STDERR_FILENO)
		close(infd);
	return st;
}

static int crypt_run(const struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"data-key-file", required_argument, NULL, 'k'},
	    {"allow-v1", no_argument, NULL, '1'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool enc = c == &cmd_encrypt;
	const char *keyfile = NULL, *in, *out;
	struct cf_key *key = NULL;
	unsigned flags = 0;
	int opt, st;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 'h')
			return cmd_help(c, stdout);
		if (opt == '1' && !enc)
			flags |= CF_ALLOW_V1;
		else if (opt == 'k')
			keyfile = optarg;
		else
			return cmd_bad_option(c, opt, argv);
	}
	if (!keyfile)
		return cmd_usage(c, "--data-key-file is required");
	if (argc - optind > 2)
		return cmd_usage(c, "too many arguments");
	in = optind < argc ? argv[optind] : NULL;
	out = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (enc && (!out || !strcmp(out, "-")) && isatty(STDOUT_FILENO))
		return cmd_usage(c,
				 "refusing to write encrypted data to a "
				 "terminal; give OUT or redirect the output");
	if (harden_process())
		return CMD_FAIL;
	st = crypt_load_key(keyfile, &key);
	if (!st)
		st = crypt_transform(enc, key, in, out, flags);
	cf_key_free(key);
	return st;
}

#define CRYPT_HELP                                                             \
	"  --data-key-file FILE  the chain's 32-byte data key: 64 hex digits " \
	"(and an\n"                                                            \
	"                        optional newline) or 32 raw bytes; mode "     \
	"0600\n"                                                               \
	"IN and OUT default to standard input and output ('-' also means "     \
	"them).\n"

const struct cmd cmd_encrypt = {
    .name = "encrypt",
    .synopsis = "--data-key-file FILE [IN [OUT]]",
    .summary = "encrypt one file as CockroachDB does (format v2)",
    .help = CRYPT_HELP "OUT is written to a temporary file and renamed "
		       "into place when complete.\n",
    .run = crypt_run,
};

const struct cmd cmd_decrypt = {
    .name = "decrypt",
    .synopsis = "--data-key-file FILE [--allow-v1] [IN [OUT]]",
    .summary = "decrypt one CockroachDB-encrypted file (format v2, or v1 "
	       "with --allow-v1)",
    .help = CRYPT_HELP "  --allow-v1            also v1 files (CockroachDB "
		       "21.1 or older): refused\n"
		       "                        otherwise; at most 64 GiB from "
		       "a file, 64 MiB from\n"
		       "                        a pipe\n"
		       "OUT appears only if all of IN was authentic: "
		       "nothing is left under OUT on failure.\n",
    .run = crypt_run,
};
