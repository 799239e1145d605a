/*
 * cmd_show.c - `kmsfs show`: what a backing store holds, without keys
 * (SHOW BACKUPS and a little of SHOW BACKUP): the layout profile, LATEST,
 * every chain with its layers, file counts, plaintext and stored bytes,
 * and its ENCRYPTION-INFO files with their entries, each named by the
 * configured KMS whose master key ID hashes to it (redacted URI) or as
 * `unknown key <first 8 hex>`.  With key options, whether they unlock
 * each chain.  A table, or --json for scripts.  The collecting is
 * fs/show.c's; this file only prints.
 */
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../fs/show.h"
#include "../lib/harden.h"
#include "../lib/log.h"

enum { SHOW_JSON = 0x300 };

struct show_opts {
	struct cmd_opts o;
	bool json;
};

static int show_opt(const struct cmd *c, void *ctx, int opt, const char *arg)
{
	struct show_opts *s = ctx;

	if (opt == SHOW_JSON) {
		s->json = true;
		return CMD_OK;
	}
	return cmd_common_opt(c, &s->o, opt, arg);
}

static int show_parse(const struct cmd *c, int argc, char **argv,
		      struct show_opts *s)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, SHOW_JSON},
	    CMD_KEY_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	int st = cmd_getopt(c, argc, argv, longopts, show_opt, s);

	if (st)
		return st;
	if (argc - optind > 1)
		return cmd_usage(c, "too many arguments");
	if (argc - optind == 1 && cfg_set(&s->o.cli.backing, argv[optind])) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	return CMD_OK;
}

static bool keys_given(const struct cfg *s)
{
	return s->kms.n || s->kms_files.n || s->passphrase_file;
}

/* --- output ------------------------------------------------------------ */

static void hex8(const uint8_t *k, char out[9])
{
	for (int i = 0; i < 4; i++)
		snprintf(out + 2 * i, 3, "%02x", k[i]);
}

static const char *unlock_text(int r)
{
	if (r == 1)
		return "not tried (no keys given)";
	if (r == 0)
		return "yes";
	if (r == -ENOKEY || r == -EBADMSG)
		return "no (no matching key, or a wrong passphrase)";
	return "no (KMS unreachable or refused)";
}

static void json_encinfo(FILE *f, const struct ks_encinfo_desc *d)
{
	char h[9];

	fputs("{\"name\":", f);
	cmd_json_str(f, d->name);
	fprintf(f, ",\"readable\":%s,\"scheme\":\"%s\",\"entries\":[",
		d->err ? "false" : "true",
		d->err		? "unknown"
		: d->passphrase ? "passphrase"
				: "kms");
	for (size_t k = 0; k < d->n; k++) {
		hex8(d->map_key[k], h);
		fprintf(f, "%s{\"key\":\"%s\",\"kms\":", k ? "," : "", h);
		if (d->kms[k])
			cmd_json_str(f, ks_kms_name(d->kms[k]));
		else
			fputs("null", f);
		fputc('}', f);
	}
	fputs("]}", f);
}

static void json_chain(FILE *f, const struct show_chain *c)
{
	fputs("{\"path\":", f);
	cmd_json_str(f, *c->path ? c->path : "/");
	fputs(",\"layers\":[", f);
	for (size_t j = 0; j < c->nlayers; j++) {
		const struct show_layer *l = &c->layers[j];

		fprintf(f, "%s{\"path\":", j ? "," : "");
		cmd_json_str(f, l->path);
		fprintf(f,
			",\"type\":\"%s\",\"end_time\":\"%s\",\"files\":%llu,"
			"\"plaintext_bytes\":%llu,\"stored_bytes\":%llu}",
			l->full ? "full" : "incremental", l->end,
			(unsigned long long)l->files,
			(unsigned long long)l->plain_bytes,
			(unsigned long long)l->stored_bytes);
	}
	fputs("],\"encryption_info\":[", f);
	for (size_t j = 0; j < c->encinfo.n; j++) {
		fputs(j ? "," : "", f);
		json_encinfo(f, &c->encinfo.files[j]);
	}
	fputs("],\"unlocks\":", f);
	fputs(c->unlock == 1 ? "null" : c->unlock ? "false" : "true", f);
	fputc('}', f);
}

static void print_json(FILE *f, const struct show_collection *col)
{
	fputs("{\"profile\":", f);
	cmd_json_str(f, layout_name(col->layout));
	fputs(",\"latest\":", f);
	if (col->latest[0])
		cmd_json_str(f, col->latest);
	else
		fputs("null", f);
	fputs(",\"chains\":[", f);
	for (size_t i = 0; i < col->n; i++) {
		fputs(i ? "," : "", f);
		json_chain(f, &col->chains[i]);
	}
	fputs("]}\n", f);
}

static void table_chain(FILE *f, const struct show_chain *c)
{
	char h[9];

	fprintf(f, "\n%s\n", *c->path ? c->path : "/ (collection root)");
	fprintf(f, "  %-11s %-22s %8s %14s %14s  %s\n", "type", "end time",
		"files", "plaintext", "stored", "path");
	for (size_t j = 0; j < c->nlayers; j++) {
		const struct show_layer *l = &c->layers[j];

		fprintf(f, "  %-11s %-22s %8llu %14llu %14llu  %s\n",
			l->full ? "full" : "incremental",
			l->end[0] ? l->end : "-", (unsigned long long)l->files,
			(unsigned long long)l->plain_bytes,
			(unsigned long long)l->stored_bytes,
			*l->path ? l->path : "/");
	}
	for (size_t j = 0; j < c->encinfo.n; j++) {
		const struct ks_encinfo_desc *d = &c->encinfo.files[j];

		fprintf(f, "  %s: %s\n", d->name,
			d->err		? "unreadable"
			: d->passphrase ? "passphrase (salt)"
					: "KMS");
		for (size_t k = 0; k < d->n; k++) {
			hex8(d->map_key[k], h);
			if (d->kms[k])
				fprintf(f, "    %s\n", ks_kms_name(d->kms[k]));
			else
				fprintf(f, "    unknown key %s\n", h);
		}
	}
	fprintf(f, "  unlocks with the given keys: %s\n",
		unlock_text(c->unlock));
}

static void print_table(FILE *f, const struct show_collection *col)
{
	fprintf(f, "profile: %s\nlatest:  %s\nchains:  %zu\n",
		layout_name(col->layout),
		col->latest[0] ? col->latest : "(none)", col->n);
	for (size_t i = 0; i < col->n; i++)
		table_chain(f, &col->chains[i]);
}

/* --- the command ------------------------------------------------------- */

static int show_run(const struct cmd *c, int argc, char **argv)
{
	struct show_collection col;
	struct ks_keyring *keys = NULL;
	struct show_opts so;
	struct cfg s;
	int st, r;

	memset(&so, 0, sizeof(so));
	cmd_opts_init(&so.o);
	cfg_init(&s);
	st = show_parse(c, argc, argv, &so);
	if (!st && harden_process())
		st = CMD_FAIL;
	if (!st)
		st = cmd_settings(c, &so.o, &s);
	if (!st && !s.backing)
		st = cmd_usage(c, "missing BACKING");
	if (!st && keys_given(&s))
		st = cmd_keyring(c, &s, &keys);
	if (st)
		goto out;
	r = show_collect(s.backing, s.profile, keys, &col);
	if (r == -EINVAL)
		st = cmd_usage(c, "unknown profile");
	else if (r)
		st = CMD_FAIL; /* logged */
	if (r)
		goto out;
	if (so.json)
		print_json(stdout, &col);
	else
		print_table(stdout, &col);
	show_release(&col);
out:
	if (st == CMD_HELP_SHOWN)
		st = CMD_OK;
	ks_keyring_free(keys);
	cfg_release(&s);
	cmd_opts_release(&so.o);
	return st;
}

const struct cmd cmd_show = {
    .name = "show",
    .synopsis = "[KEY OPTIONS] [--json] BACKING",
    .summary = "list the chains, layers and keys of a backing store "
	       "(no keys needed)",
    .help = "  --json                 one JSON object on standard output\n"
	    "Without key options nothing is unwrapped; with them, each "
	    "chain says\nwhether they unlock it.\n" CMD_KEY_HELP,
    .run = show_run,
};
