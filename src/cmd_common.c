/*
 * cmd_common.c - what the subcommands share: one-line usage errors, the
 * key options, and turning configured key sources into a keyring.
 *
 * Key sources, strongest first: the command line, the --config file, the
 * KMSFS_KMS environment variable, and finally a passphrase typed on the
 * terminal.  Secrets read here (passphrase files, typed passphrases)
 * only ever live in a struct secret; KMS URIs with credential parameters
 * are refused on argv because every user can read argv with ps.
 */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../fs/layout.h"
#include "../lib/log.h"
#include "../lib/privfile.h"

#define CMD_ENV_KMS "KMSFS_KMS"
#define CMD_ENV_KNOWN "KMSFS_KNOWN_KEYS"
#define CMD_KNOWN_ROOT "/var/lib/kmsfs/known-keys"
#define CMD_KNOWN_USER "kmsfs/known-keys" /* under the XDG state dir */

/* --- messages -------------------------------------------------------- */

int cmd_usage(const struct cmd *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kmsfs %s: ", c->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'kmsfs help %s')\n", c->name);
	return CMD_USAGE;
}

int cmd_bad_option(const struct cmd *c, int opt, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	int len = (int)strcspn(arg, "=");

	/* Never echo an option's value: it might be a credential. */
	if (opt == ':' && strncmp(arg, "--", 2) == 0)
		return cmd_usage(c, "option '%.*s' needs a value", len, arg);
	if (opt == ':')
		return cmd_usage(c, "option '-%c' needs a value", optopt);
	if (optopt)
		return cmd_usage(c, "unknown option '-%c'", optopt);
	return cmd_usage(c, "unknown option '%.*s'", len, arg);
}

int cmd_help(const struct cmd *c, FILE *f)
{
	fprintf(f, "usage: kmsfs %s %s\n\n%s\n", c->name, c->synopsis,
		c->summary);
	if (c->help && *c->help)
		fprintf(f, "\n%s", c->help);
	return CMD_OK;
}

int cmd_status(int r)
{
	if (r == 0)
		return CMD_OK;
	if (r == -ENOMEM || r == -EIO)
		return CMD_FAIL;
	return CMD_USAGE;
}

/* --- options --------------------------------------------------------- */

void cmd_opts_init(struct cmd_opts *o)
{
	cfg_init(&o->cli);
	o->config = NULL;
}

void cmd_opts_release(struct cmd_opts *o)
{
	cfg_release(&o->cli);
	o->config = NULL;
}

/* argv is visible to every user (ps): refuse credentials there, and
 * parameters no KMS takes, which may be misspelt credentials.  Never
 * echo the URI. */
static int cmd_check_uri_arg(const struct cmd *c, const char *uri,
			     const char *fileopt)
{
	switch (ks_uri_exposure(uri)) {
	case KS_URI_SHOWABLE:
		return CMD_OK;
	case KS_URI_UNKNOWN_PARAM:
		return cmd_usage(c,
				 "the KMS URI has a query parameter that no "
				 "KMS takes (not shown: it may be a misspelt "
				 "credential, and the command line is visible "
				 "in ps): check the spelling, and give "
				 "credentials in a %s (mode 0600)",
				 fileopt);
	case KS_URI_CREDENTIALS:
		break;
	}
	return cmd_usage(c,
			 "credentials do not belong on the command line "
			 "(visible in ps); put the URI in a %s (mode 0600)",
			 fileopt);
}

int cmd_add_uri_arg(const struct cmd *c, struct cfg_list *l, const char *uri,
		    const char *fileopt)
{
	int r = cmd_check_uri_arg(c, uri, fileopt);

	if (r)
		return r;
	if (!*uri)
		return cmd_usage(c, "empty KMS URI");
	r = cfg_list_add(l, uri);
	if (r == -E2BIG)
		return cmd_usage(c, "more than %u KMS URIs", CFG_MAX_LIST);
	if (r) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	return CMD_OK;
}

static int cmd_set(char **field, const char *arg)
{
	if (cfg_set(field, arg)) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	return CMD_OK;
}

int cmd_opt_profile(const struct cmd *c, const char *arg)
{
	if (cfg_check_profile(arg))
		return cmd_usage(c, "unknown profile '%s' (known: %s)", arg,
				 layout_known());
	return CMD_OK;
}

int cmd_opt_log_level(const struct cmd *c, const char *arg)
{
	enum log_level lvl;

	if (log_parse_level(arg, &lvl))
		return cmd_usage(c, "log level must be error, warn, "
				    "info or debug");
	log_set_level(lvl); /* now: harden_process() may log */
	return CMD_OK;
}

int cmd_getopt(const struct cmd *c, int argc, char **argv,
	       const struct option *longopts, cmd_opt_fn fn, void *ctx)
{
	int opt, st;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			cmd_help(c, stdout);
			return CMD_HELP_SHOWN;
		}
		if (opt == '?' || opt == ':')
			return cmd_bad_option(c, opt, argv);
		st = fn(c, ctx, opt, optarg);
		if (st)
			return st;
	}
	return CMD_OK;
}

int cmd_common_opt(const struct cmd *c, struct cmd_opts *o, int opt,
		   const char *arg)
{
	int st;

	switch (opt) {
	case CMD_OPT_KMS:
		return cmd_add_uri_arg(c, &o->cli.kms, arg, "--kms-file");
	case CMD_OPT_KMS_FILE:
		if (cfg_list_add(&o->cli.kms_files, arg))
			return cmd_usage(c, "too many --kms-file options");
		return CMD_OK;
	case CMD_OPT_PASSPHRASE_FILE:
		return cmd_set(&o->cli.passphrase_file, arg);
	case CMD_OPT_CONFIG:
		o->config = arg;
		return CMD_OK;
	case CMD_OPT_PROFILE:
		st = cmd_opt_profile(c, arg);
		return st ? st : cmd_set(&o->cli.profile, arg);
	case CMD_OPT_LOG_LEVEL:
		st = cmd_opt_log_level(c, arg);
		return st ? st : cmd_set(&o->cli.log_level, arg);
	case CMD_OPT_KNOWN_KEYS:
		return cmd_set(&o->cli.known_keys, arg);
	case CMD_OPT_ALLOW_V1:
		o->cli.allow_v1 = true;
		return CMD_OK;
	}
	return cmd_usage(c, "internal error: option %d", opt);
}

/* --- settings -------------------------------------------------------- */

/* KMSFS_KMS: URIs separated by white space.  The variable is wiped and
 * removed so that a daemon does not keep credentials in its environment. */
static int cmd_env_kms(const struct cmd *c, struct cfg *s)
{
	char *v = getenv(CMD_ENV_KMS);
	char *copy, *tok, *save = NULL;
	size_t len;
	int st = CMD_OK;

	if (!v || !*v)
		return CMD_OK;
	len = strlen(v);
	copy = strdup(v);
	secret_wipe(v, len);
	unsetenv(CMD_ENV_KMS);
	if (!copy) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	for (tok = strtok_r(copy, " \t\r\n", &save); tok && !st;
	     tok = strtok_r(NULL, " \t\r\n", &save))
		if (cfg_list_add(&s->kms, tok))
			st =
			    cmd_usage(c, CMD_ENV_KMS " holds more than %u URIs",
				      CFG_MAX_LIST);
	secret_wipe(copy, len);
	free(copy);
	return st;
}

int cmd_settings(const struct cmd *c, struct cmd_opts *o, struct cfg *out)
{
	char err[512];
	enum log_level lvl;
	int r;

	if (o->config) {
		r = cfg_load(out, o->config, err, sizeof(err));
		if (r) {
			fprintf(stderr, "kmsfs %s: %s\n", c->name, err);
			return r == -ENOMEM ? CMD_FAIL : CMD_USAGE;
		}
	}
	cfg_override(out, &o->cli);
	if (!cfg_has_keys(out)) {
		r = cmd_env_kms(c, out);
		if (r)
			return r;
	}
	if (out->passphrase_file && (out->kms.n || out->kms_files.n))
		return cmd_usage(c, "use either KMS URIs or a passphrase, not "
				    "both");
	if (out->log_level && log_parse_level(out->log_level, &lvl) == 0)
		log_set_level(lvl);
	return CMD_OK;
}

/* --- private files --------------------------------------------------- */

int cmd_read_private(const char *what, const char *path, size_t max,
		     struct secret **out)
{
	char why[PRIVFILE_WHY_MAX];
	int r = privfile_read_secret(path, max, out, why);

	if (r)
		log_err("%s %s: %s", what, path, why);
	return r;
}

/* --- the passphrase typed on the terminal ---------------------------- */

static volatile sig_atomic_t cmd_tty_signal;

static void cmd_tty_catch(int sig)
{
	cmd_tty_signal = sig;
}

static const int cmd_tty_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP};
#define CMD_TTY_NSIGS (sizeof(cmd_tty_sigs) / sizeof(cmd_tty_sigs[0]))

/* Read one line from the terminal into s; -EINTR on a signal, -EFBIG
 * when longer than SECRET_MAX, -EIO on EOF before any newline. */
static int cmd_tty_read(int fd, struct secret *s)
{
	bool too_long = false;
	char ch = 0;
	ssize_t n;

	int r = 0;

	s->len = 0;
	for (;;) {
		n = read(fd, &ch, 1);
		if (cmd_tty_signal) {
			r = -EINTR;
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = s->len ? 0 : -EIO;
			break;
		}
		if (ch == '\n' || ch == '\r')
			break;
		if (s->len < SECRET_MAX)
			s->bytes[s->len++] = (uint8_t)ch;
		else
			too_long = true;
	}
	secret_wipe(&ch, sizeof(ch));
	if (!r && too_long)
		r = -EFBIG;
	return r;
}

/* Echo off, signals caught (so that ^C restores the terminal), read. */
static int cmd_tty_getpass(int fd, const char *prompt, struct secret *s)
{
	struct sigaction sa, old_sa[CMD_TTY_NSIGS];
	struct termios old_t, t;
	int r;

	if (tcgetattr(fd, &old_t) < 0)
		return -errno;
	t = old_t;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	t.c_lflag |= ECHONL | ICANON;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cmd_tty_catch;
	sigemptyset(&sa.sa_mask);
	cmd_tty_signal = 0;
	for (size_t i = 0; i < CMD_TTY_NSIGS; i++)
		sigaction(cmd_tty_sigs[i], &sa, &old_sa[i]);
	if (write(fd, prompt, strlen(prompt)) < 0 ||
	    tcsetattr(fd, TCSAFLUSH, &t) < 0)
		r = -errno;
	else
		r = cmd_tty_read(fd, s);
	tcsetattr(fd, TCSAFLUSH, &old_t);
	for (size_t i = 0; i < CMD_TTY_NSIGS; i++)
		sigaction(cmd_tty_sigs[i], &old_sa[i], NULL);
	if (cmd_tty_signal)
		raise(cmd_tty_signal);
	return r;
}

static int cmd_prompt_passphrase(const char *backing, struct secret **out)
{
	char prompt[512];
	struct secret *s;
	int fd, r;

	*out = NULL;
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		log_err("cannot open /dev/tty to ask for the passphrase: %s",
			strerror(-r));
		return r;
	}
	snprintf(prompt, sizeof(prompt),
		 "Passphrase for %s: ", backing ? backing : "the backup");
	s = secret_new(SECRET_MAX);
	r = s ? cmd_tty_getpass(fd, prompt, s) : -ENOMEM;
	close(fd);
	if (r == -EFBIG)
		log_err("passphrase longer than %d bytes", SECRET_MAX);
	else if (r == -EINTR)
		log_err("passphrase entry interrupted");
	else if (r)
		log_err("cannot read the passphrase: %s", strerror(-r));
	else if (s->len == 0) {
		r = -EINVAL;
		log_err("empty passphrase");
	}
	if (r)
		secret_free(s);
	else
		*out = s;
	return r;
}

/* --- keyrings -------------------------------------------------------- */

static int cmd_passphrase_file(const char *path, struct secret **out)
{
	struct secret *s;
	int r;

	r = cmd_read_private("passphrase file", path, SECRET_MAX, &s);
	if (r)
		return r;
	/* Files written by editors and echo end in a newline. */
	if (s->len && s->bytes[s->len - 1] == '\n')
		s->len--;
	if (s->len && s->bytes[s->len - 1] == '\r')
		s->len--;
	if (!s->len) {
		log_err("passphrase file %s is empty", path);
		secret_free(s);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

static int cmd_keyring_passphrase(const struct cfg *s, struct ks_keyring *kr)
{
	struct secret *pw = NULL;
	int r;

	if (s->passphrase_file)
		r = cmd_passphrase_file(s->passphrase_file, &pw);
	else
		r = cmd_prompt_passphrase(s->backing, &pw);
	if (r)
		return r;
	r = ks_keyring_set_passphrase(kr, pw->bytes, pw->len);
	secret_free(pw);
	return r;
}

static int cmd_keyring_add(struct ks_keyring *kr, const struct cfg_list *uris,
			   const struct cfg_list *files)
{
	int r;

	for (size_t i = 0; i < uris->n; i++) {
		r = ks_keyring_add_kms(kr, uris->v[i]);
		if (r)
			return r;
	}
	for (size_t i = 0; i < files->n; i++) {
		r = ks_keyring_add_kms_file(kr, files->v[i]);
		if (r)
			return r;
	}
	return 0;
}

int cmd_keyring(const struct cmd *c, const struct cfg *s,
		struct ks_keyring **out)
{
	struct ks_keyring *kr = NULL;
	int r;

	*out = NULL;
	if (!cfg_has_keys(s) && !isatty(STDIN_FILENO))
		return cmd_usage(c, "no key given: use --kms, --kms-file, "
				    "--passphrase-file or " CMD_ENV_KMS);
	r = ks_keyring_new(&kr);
	if (r) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	if (s->passphrase_file || !cfg_has_keys(s))
		r = cmd_keyring_passphrase(s, kr);
	else
		r = cmd_keyring_add(kr, &s->kms, &s->kms_files);
	if (!r && ks_keyring_empty(kr)) {
		r = -ENOKEY;
		log_err("no KMS URI found in the key sources");
	}
	if (r) {
		ks_keyring_free(kr);
		return r == -EINTR ? CMD_FAIL : cmd_status(r);
	}
	r = cmd_keyring_known(kr, s->known_keys, s->accept_new_keys);
	if (r) {
		ks_keyring_free(kr);
		return r;
	}
	*out = kr;
	return CMD_OK;
}

int cmd_kms_keyring(const struct cfg_list *uris, const struct cfg_list *files,
		    struct ks_keyring **out)
{
	struct ks_keyring *kr = NULL;
	int r;

	*out = NULL;
	r = ks_keyring_new(&kr);
	if (r) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	r = cmd_keyring_add(kr, uris, files);
	if (!r && ks_keyring_empty(kr)) {
		r = -ENOKEY;
		log_err("no KMS URI found in the key sources");
	}
	if (r) {
		ks_keyring_free(kr);
		return cmd_status(r);
	}
	*out = kr;
	return CMD_OK;
}

/* --- the known-keys record ------------------------------------------- */

/* The default record: root's under /var/lib, a user's in the XDG state
 * directory.  NULL when there is no home to put it in. */
static char *cmd_known_default(void)
{
	const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char *p = NULL;

	if (geteuid() == 0)
		return strdup(CMD_KNOWN_ROOT);
	if (state && state[0] == '/') {
		if (asprintf(&p, "%s/%s", state, CMD_KNOWN_USER) < 0)
			p = NULL;
	} else if (home && home[0] == '/') {
		if (asprintf(&p, "%s/.local/state/%s", home, CMD_KNOWN_USER) <
		    0)
			p = NULL;
	}
	return p;
}

/* path made absolute against the current directory. */
static char *cmd_abs(const char *path)
{
	char cwd[PATH_MAX], *p = NULL;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&p, "%s/%s", cwd, path) < 0)
		return NULL;
	return p;
}

int cmd_keyring_known(struct ks_keyring *kr, const char *path, bool accept_new)
{
	const char *env = getenv(CMD_ENV_KNOWN);
	char *p;
	int r;

	if (ks_keyring_is_passphrase(kr))
		return CMD_OK; /* a passphrase key is never chosen by others */
	if (!path && env && *env)
		path = env;
	p = path ? cmd_abs(path) : cmd_known_default();
	if (!p && !path) {
		log_warn("no home directory for the known-keys record: chains "
			 "that only cloud KMSes open are refused; give "
			 "--known-keys FILE");
		return CMD_OK;
	}
	r = p ? ks_keyring_set_known(kr, p, accept_new) : -ENOMEM;
	free(p);
	if (r) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	return CMD_OK;
}

void cmd_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void cmd_human_bytes(uint64_t b, char *out, size_t len)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}
