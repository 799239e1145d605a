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
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../lib/log.h"

#define CMD_ENV_KMS "KMSFS_KMS"

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

static const char *const cmd_secret_params[] = {
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
    "AZURE_CLIENT_SECRET",   "AZURE_ACCOUNT_KEY", "CREDENTIALS",
    "BEARER_TOKEN",
};

static int cmd_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)(ch | 0x20);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Is the query parameter name[0..len) (percent-encoded, as Go's
 * url.Values would decode it) one that carries a credential? */
static bool cmd_param_is_secret(const char *name, size_t len)
{
	char dec[32];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (n + 1 >= sizeof(dec))
			return false; /* longer than any secret name */
		if (ch == '%' && i + 2 < len && cmd_hexval(name[i + 1]) >= 0 &&
		    cmd_hexval(name[i + 2]) >= 0) {
			ch = (char)(cmd_hexval(name[i + 1]) * 16 +
				    cmd_hexval(name[i + 2]));
			i += 2;
		}
		dec[n++] = ch;
	}
	dec[n] = '\0';
	for (size_t i = 0;
	     i < sizeof(cmd_secret_params) / sizeof(cmd_secret_params[0]); i++)
		if (strcasecmp(dec, cmd_secret_params[i]) == 0)
			return true;
	return false;
}

static bool cmd_uri_has_credentials(const char *uri)
{
	const char *p = strchr(uri, '?');

	while (p) {
		const char *name = p + 1;

		if (cmd_param_is_secret(name, strcspn(name, "=&#")))
			return true;
		p = strchr(name, '&');
	}
	return false;
}

int cmd_add_uri_arg(const struct cmd *c, struct cfg_list *l, const char *uri,
		    const char *fileopt)
{
	int r;

	if (cmd_uri_has_credentials(uri))
		return cmd_usage(c,
				 "credentials do not belong on the command "
				 "line (visible in ps); put the URI in a %s "
				 "(mode 0600)",
				 fileopt);
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
		return cmd_usage(c,
				 "unknown profile '%s' (the only "
				 "profile is 'toplevel')",
				 arg);
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

static int cmd_check_private(const char *what, const char *path, int fd)
{
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0) {
		r = -errno;
		log_err("%s %s: %s", what, path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("%s %s: not a regular file", what, path);
		return -EINVAL;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		log_err("%s %s must be owned by uid %u and not accessible by "
			"group or others (is uid %u, mode %04o; chmod 600)",
			what, path, (unsigned)geteuid(), (unsigned)st.st_uid,
			(unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static int cmd_read_all(int fd, uint8_t *p, size_t max, size_t *len_out)
{
	size_t len = 0;
	uint8_t probe;
	ssize_t n;

	while (len < max) {
		n = read(fd, p + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*len_out = len;
	if (len < max)
		return 0;
	do {
		n = read(fd, &probe, 1);
	} while (n < 0 && errno == EINTR);
	secret_wipe(&probe, sizeof(probe));
	if (n < 0)
		return -errno;
	return n ? -EFBIG : 0;
}

int cmd_read_private(const char *what, const char *path, size_t max,
		     struct secret **out)
{
	struct secret *s = NULL;
	int fd, r;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		log_err("%s %s: %s", what, path, strerror(-r));
		return r;
	}
	r = cmd_check_private(what, path, fd);
	if (r)
		goto out;
	s = secret_new(max);
	if (!s) {
		r = -ENOMEM;
		log_err("out of memory");
		goto out;
	}
	r = cmd_read_all(fd, s->bytes, max, &s->len);
	if (r == -EFBIG)
		log_err("%s %s is longer than %zu bytes", what, path, max);
	else if (r)
		log_err("%s %s: %s", what, path, strerror(-r));
out:
	close(fd);
	if (r)
		secret_free(s);
	else
		*out = s;
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
