/*
 * cmd_verify.c - `kmsfs verify`: read a backing store back, authenticate
 * everything, write nothing.  Exit 0 clean, 1 damage found (or a chain
 * that the keys do not open), 2 usage.  A progress line on a terminal;
 * a JSON report with --json.  The checking is fs/verify.c's.
 */
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../fs/verify.h"
#include "../lib/harden.h"
#include "../lib/log.h"

enum { VERIFY_JSON = 0x400, VERIFY_ALL, VERIFY_THREADS };

struct verify_cli {
	struct cmd_opts o;
	bool json, all;
	unsigned threads;
	const char *target;
};

static int verify_opt(const struct cmd *c, void *ctx, int opt, const char *arg)
{
	struct verify_cli *v = ctx;
	char *end;
	long n;

	switch (opt) {
	case VERIFY_JSON:
		v->json = true;
		return CMD_OK;
	case VERIFY_ALL:
		v->all = true;
		return CMD_OK;
	case VERIFY_THREADS:
		n = strtol(arg, &end, 10);
		if (*end || n < 1 || n > 64)
			return cmd_usage(c, "--threads takes 1 to 64");
		v->threads = (unsigned)n;
		return CMD_OK;
	}
	return cmd_common_opt(c, &v->o, opt, arg);
}

static int verify_parse(const struct cmd *c, int argc, char **argv,
			struct verify_cli *v)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, VERIFY_JSON},
	    {"all", no_argument, NULL, VERIFY_ALL},
	    {"threads", required_argument, NULL, VERIFY_THREADS},
	    CMD_KEY_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	int st = cmd_getopt(c, argc, argv, longopts, verify_opt, v);
	int n = argc - optind;

	if (st)
		return st;
	if (n > 2)
		return cmd_usage(c, "too many arguments");
	if (n == 2 && v->all)
		return cmd_usage(c, "give a CHAIN, LATEST or --all, not two");
	if (n >= 1 && cfg_set(&v->o.cli.backing, argv[optind])) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	v->target = n == 2 ? argv[optind + 1] : NULL;
	return CMD_OK;
}

/* --- output -------------------------------------------------------------- */

struct bar {
	struct timespec t0;
};

static void progress(void *ctx, uint64_t bytes, uint64_t total, uint64_t files,
		     uint64_t nfiles)
{
	struct bar *b = ctx;
	struct timespec t;
	char done[32], all[32], rate[32];
	double s, r;

	clock_gettime(CLOCK_MONOTONIC, &t);
	s = (double)(t.tv_sec - b->t0.tv_sec) +
	    (double)(t.tv_nsec - b->t0.tv_nsec) / 1e9;
	r = s > 0 ? (double)bytes / s : 0;
	cmd_human_bytes(bytes, done, sizeof(done));
	cmd_human_bytes(total, all, sizeof(all));
	cmd_human_bytes((uint64_t)r, rate, sizeof(rate));
	fprintf(stderr, "\r%3d%%  %s / %s  %llu/%llu files  %s/s  ETA %.0f s ",
		total ? (int)(100 * bytes / total) : 100, done, all,
		(unsigned long long)files, (unsigned long long)nfiles, rate,
		r > 0 ? (double)(total - bytes) / r : 0.0);
	if (files == nfiles && bytes == total)
		fputc('\n', stderr);
}

static void print_report(const struct verify_report *r, bool json)
{
	char b[32];

	if (json) {
		printf("{\"clean\":%s,\"chains\":%llu,\"files\":%llu,"
		       "\"bytes\":%llu,\"seconds\":%.3f,\"problems\":[",
		       r->nproblems ? "false" : "true",
		       (unsigned long long)r->chains,
		       (unsigned long long)r->files,
		       (unsigned long long)r->bytes, r->seconds);
		for (size_t i = 0; i < r->nproblems; i++) {
			printf("%s{\"path\":", i ? "," : "");
			cmd_json_str(stdout, r->problems[i].path);
			fputs(",\"problem\":", stdout);
			cmd_json_str(stdout, r->problems[i].what);
			fputc('}', stdout);
		}
		puts("]}");
		return;
	}
	for (size_t i = 0; i < r->nproblems; i++)
		printf("%s: %s\n", r->problems[i].path, r->problems[i].what);
	cmd_human_bytes(r->bytes, b, sizeof(b));
	printf(
	    "%s: %llu chain(s), %llu files, %s in %.1f s (%.0f MiB/s)\n",
	    r->nproblems ? "DAMAGED" : "clean", (unsigned long long)r->chains,
	    (unsigned long long)r->files, b, r->seconds,
	    r->seconds > 0 ? (double)r->bytes / 1048576.0 / r->seconds : 0.0);
}

/* --- the command -----------------------------------------------------------
 */

static int verify_go(const struct verify_cli *v, const struct cfg *s,
		     struct ks_keyring *keys)
{
	struct verify_opts o = {
	    .backing = s->backing,
	    .profile = s->profile,
	    .target = v->target,
	    .keys = keys,
	    .threads = v->threads,
	    .allow_v1 = s->allow_v1,
	};
	struct verify_report rep;
	struct bar bar;
	int r;

	if (!v->json && isatty(STDERR_FILENO)) {
		clock_gettime(CLOCK_MONOTONIC, &bar.t0);
		o.progress = progress;
		o.progress_ctx = &bar;
	}
	r = verify_run(&o, &rep);
	if (r == -EINVAL)
		return CMD_USAGE; /* logged */
	if (r) {
		verify_report_release(&rep);
		return CMD_FAIL;
	}
	print_report(&rep, v->json);
	r = rep.nproblems ? CMD_FAIL : CMD_OK;
	verify_report_release(&rep);
	return r;
}

static int verify_cmd(const struct cmd *c, int argc, char **argv)
{
	struct ks_keyring *keys = NULL;
	struct verify_cli v;
	struct cfg s;
	int st;

	memset(&v, 0, sizeof(v));
	cmd_opts_init(&v.o);
	cfg_init(&s);
	st = verify_parse(c, argc, argv, &v);
	if (!st && harden_process())
		st = CMD_FAIL;
	if (!st)
		st = cmd_settings(c, &v.o, &s);
	if (!st && !s.backing)
		st = cmd_usage(c, "missing BACKING");
	if (!st)
		st = cmd_keyring(c, &s, &keys);
	if (!st)
		st = verify_go(&v, &s, keys);
	if (st == CMD_HELP_SHOWN)
		st = CMD_OK;
	ks_keyring_free(keys);
	cfg_release(&s);
	cmd_opts_release(&v.o);
	return st;
}

const struct cmd cmd_verify = {
    .name = "verify",
    .synopsis = "[KEY OPTIONS] [--json] [--threads N] BACKING "
		"[CHAIN|LATEST|--all]",
    .summary = "authenticate every file of a backing store; writes nothing",
    .help = "  --all                  every chain (the default)\n"
	    "  --json                 one JSON report on standard output\n"
	    "  --threads N            readers (default: one per core)\n"
	    "Checks every chunk of every encrypted file (truncation "
	    "included), every\n-CHECKSUM against the bytes it covers, "
	    "plaintext and encrypted files\nwhere the other is expected, "
	    "chains without ENCRYPTION-INFO, leftover\ntemporary files.  "
	    "Exit 0 clean, 1 damage found, 2 usage.\n" CMD_KEY_HELP,
    .run = verify_cmd,
};
