/*
 * cmd_mount.c - `kmsfs mount` and `kmsfs umount`.
 *
 * mount: settings from --config and the command line (cmd_common.c), the
 * process hardened before any key source is read, then kfs_mount(), which
 * checks the keys, mounts, daemonizes once the mount is ready and serves.
 * umount: only kmsfs mounts are unmounted (a typo must not unmount /srv);
 * root calls umount2() itself, anyone else goes through fusermount3.
 */
#include "cmd.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "../fs/fs.h"
#include "../lib/harden.h"
#include "../lib/log.h"
#include "../lib/mountinfo.h"

/* Append a comma-separated -o list to *opts. */
static int mount_add_opts(char **opts, const char *arg)
{
	size_t a = *opts ? strlen(*opts) : 0, b = strlen(arg);
	char *n;

	if (!b)
		return CMD_OK;
	n = realloc(*opts, a + b + 2);
	if (!n) {
		log_err("out of memory");
		return CMD_FAIL;
	}
	if (a)
		n[a++] = ',';
	memcpy(n + a, arg, b + 1);
	*opts = n;
	return CMD_OK;
}

/* Remove every option exactly equal to name (with val: every name=VALUE,
 * the last VALUE copied to val, or "" if it does not fit in vlen) from
 * the comma-separated list opts (in place); true if there was one.  For
 * options kmsfs handles itself, which libfuse would reject as unknown. */
static bool mount_take_opt(char *opts, const char *name, char *val, size_t vlen)
{
	size_t n = strlen(name);
	char *p = opts, *w = opts;
	bool found = false;

	if (!opts)
		return false;
	while (*p) {
		size_t len = strcspn(p, ",");

		if (!val && len == n && strncmp(p, name, n) == 0) {
			found = true;
		} else if (val && len > n && strncmp(p, name, n) == 0 &&
			   p[n] == '=') {
			found = true;
			snprintf(val, vlen, "%.*s",
				 len - n - 1 < vlen ? (int)(len - n - 1) : 0,
				 p + n + 1);
		} else if (len) {
			if (w != opts)
				*w++ = ',';
			memmove(w, p, len);
			w += len;
		}
		p += len + (p[len] == ',');
	}
	*w = '\0';
	return found;
}

struct mount_flags {
	bool fuse_debug;
	bool single_thread;
};

#define MOUNT_OPT_ACCEPT_NEW 0x300

static int mount_parse(const struct cmd *c, int argc, char **argv,
		       struct cmd_opts *o, struct mount_flags *f)
{
	static const struct option longopts[] = {
	    CMD_KEY_LONGOPTS,
	    {"foreground", no_argument, NULL, 'f'},
	    {"debug", no_argument, NULL, 'd'},
	    {"single-thread", no_argument, NULL, 's'},
	    {"options", required_argument, NULL, 'o'},
	    {"accept-new-keys", no_argument, NULL, MOUNT_OPT_ACCEPT_NEW},
	    {NULL, 0, NULL, 0},
	};
	int opt, st = CMD_OK;

	opterr = 0;
	while (!st && (opt = getopt_long(argc, argv, ":hfdso:", longopts,
					 NULL)) != -1) {
		switch (opt) {
		case 'h':
			cmd_help(c, stdout);
			return CMD_HELP_SHOWN;
		case 'f':
			o->cli.foreground = true;
			break;
		case 'd': /* tracing goes to stderr: stay in front */
			f->fuse_debug = true;
			o->cli.foreground = true;
			break;
		case 's':
			f->single_thread = true;
			break;
		case 'o':
			st = mount_add_opts(&o->cli.options, optarg);
			break;
		case MOUNT_OPT_ACCEPT_NEW:
			o->cli.accept_new_keys = true;
			break;
		case '?':
		case ':':
			return cmd_bad_option(c, opt, argv);
		default:
			st = cmd_common_opt(c, o, opt, optarg);
		}
	}
	if (!st && argc - optind == 1)
		return cmd_usage(c, "missing MOUNTPOINT");
	if (!st && argc - optind > 2)
		return cmd_usage(c, "too many arguments");
	if (!st && argc - optind == 2 &&
	    (cfg_set(&o->cli.backing, argv[optind]) ||
	     cfg_set(&o->cli.mountpoint, argv[optind + 1]))) {
		log_err("out of memory");
		st = CMD_FAIL;
	}
	return st;
}

#define READ_AHEAD_KB_DEFAULT 4096u
#define READ_AHEAD_KB_MAX (1024u * 1024u)

/* -o read_ahead_kb=N: the mount's read-ahead window in KiB (0: the
 * kernel's 128), taken out of the options given to libfuse. */
static int mount_readahead(const struct cmd *c, char *opts, unsigned *kb)
{
	char val[16] = "", *end;
	unsigned long n;

	*kb = READ_AHEAD_KB_DEFAULT;
	if (!mount_take_opt(opts, "read_ahead_kb", val, sizeof(val)))
		return CMD_OK;
	errno = 0;
	n = strtoul(val, &end, 10);
	if (!*val || *end || errno || val[0] == '-' || n > READ_AHEAD_KB_MAX)
		return cmd_usage(c, "read_ahead_kb takes 0 to 1048576 (KiB)");
	*kb = (unsigned)n;
	return CMD_OK;
}

/* Is a equal to b or below it?  Both absolute and canonical. */
static bool mount_path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (n == 1) /* b is "/" */
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* Canonical absolute backing and mountpoint, checked for overlap. */
static int mount_resolve(const struct cmd *c, const struct cfg *s,
			 char **backing, char **mnt)
{
	if (!s->backing || !s->mountpoint)
		return cmd_usage(c, "missing BACKING and MOUNTPOINT (give "
				    "them, or set backing and mountpoint in "
				    "--config)");
	*backing = realpath(s->backing, NULL);
	if (!*backing) {
		log_err("backing store %s: %s", s->backing, strerror(errno));
		return CMD_FAIL;
	}
	*mnt = realpath(s->mountpoint, NULL);
	if (!*mnt && (errno == ENOTCONN || errno == ECONNABORTED)) {
		log_err("mount point %s is below a dead FUSE mount (its daemon "
			"is gone); unmount that first with 'kmsfs umount' or "
			"'fusermount3 -u'",
			s->mountpoint);
		return CMD_FAIL;
	}
	if (!*mnt) {
		log_err("mount point %s: %s", s->mountpoint, strerror(errno));
		return CMD_FAIL;
	}
	if (mount_path_within(*mnt, *backing) ||
	    mount_path_within(*backing, *mnt))
		return cmd_usage(c, "BACKING and MOUNTPOINT must not contain "
				    "each other");
	return CMD_OK;
}

static int mount_run(const struct cmd *c, int argc, char **argv)
{
	struct mount_flags f = {false, false};
	bool nonempty = false;
	unsigned read_ahead_kb = 0;
	struct ks_keyring *keys = NULL;
	char *backing = NULL, *mnt = NULL;
	struct kfs_options ko;
	struct cmd_opts o;
	struct cfg s;
	int st;

	cmd_opts_init(&o);
	cfg_init(&s);
	st = mount_parse(c, argc, argv, &o, &f);
	if (!st && harden_process())
		st = CMD_FAIL;
	if (!st)
		st = cmd_settings(c, &o, &s);
	if (!st) /* libfuse 3 dropped it: the check is ours (fs/mountpoint.h) */
		nonempty = mount_take_opt(s.options, "nonempty", NULL, 0);
	if (!st)
		st = mount_readahead(c, s.options, &read_ahead_kb);
	if (!st)
		st = mount_resolve(c, &s, &backing, &mnt);
	if (!st)
		st = cmd_keyring(c, &s, &keys);
	if (st)
		goto out;
	ko = (struct kfs_options){
	    .backing = backing,
	    .mountpoint = mnt,
	    .keys = keys,
	    .fuse_opts = s.options && *s.options ? s.options : NULL,
	    .profile = s.profile,
	    .foreground = s.foreground,
	    .fuse_debug = f.fuse_debug,
	    .single_thread = f.single_thread,
	    .nonempty = nonempty,
	    .allow_v1 = s.allow_v1,
	    .read_ahead_kb = read_ahead_kb,
	};
	st = kfs_mount(&ko);
out:
	ks_keyring_free(keys);
	free(backing);
	free(mnt);
	cfg_release(&s);
	cmd_opts_release(&o);
	return st == CMD_HELP_SHOWN ? CMD_OK : st;
}

const struct cmd cmd_mount = {
    .name = "mount",
    .synopsis = "[OPTIONS] BACKING MOUNTPOINT",
    .summary = "mount a backing store as a plaintext view",
    .help = "options:\n"
	    "  -f, --foreground       stay in the foreground, log to "
	    "stderr\n"
	    "  -d, --debug            trace FUSE requests (implies -f)\n"
	    "  -s, --single-thread    serve requests in one thread\n"
	    "  -o OPT[,OPT...]        FUSE mount options, e.g. allow_other "
	    "(repeatable);\n"
	    "                         nonempty: allow a non-empty mount "
	    "point;\n"
	    "                         read_ahead_kb=N: read-ahead window "
	    "(default 4096,\n"
	    "                         0: the kernel's 128)\n"
	    "  --accept-new-keys      use and record the key of a chain that "
	    "only cloud\n"
	    "                         KMSes open and --known-keys does not "
	    "hold yet\n"
	    "BACKING and MOUNTPOINT may come from --config.  The command "
	    "returns once\nthe mount is ready.\n" CMD_KEY_HELP,
    .run = mount_run,
};

/* --- umount ---------------------------------------------------------- */

/* Absolute path to the mount point; a dead FUSE mount (ENOTCONN) cannot
 * be resolved, so then the path is only made absolute. */
static char *umount_abspath(const char *arg)
{
	char cwd[PATH_MAX], *p = realpath(arg, NULL);
	size_t len;

	if (p || errno != ENOTCONN)
		return p;
	if (arg[0] == '/') {
		p = strdup(arg);
	} else if (getcwd(cwd, sizeof(cwd))) {
		p = malloc(strlen(cwd) + strlen(arg) + 2);
		if (p)
			sprintf(p, "%s/%s", strcmp(cwd, "/") ? cwd : "", arg);
	}
	len = p ? strlen(p) : 0;
	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	return p;
}

/* fs/ops.c mounts with subtype=kmsfs. */
static bool umount_is_kmsfs(const char *type)
{
	return strcmp(type, "fuse.kmsfs") == 0;
}

static int umount_do(char *mnt, bool lazy)
{
	char *const argv[] = {"fusermount3", "-u", lazy ? "-z" : mnt,
			      lazy ? (char *)mnt : NULL, NULL};

	if (geteuid() != 0) {
		fflush(NULL);
		execvp(argv[0], argv);
		log_err("cannot run fusermount3: %s (is fuse3 installed?)",
			strerror(errno));
		return CMD_FAIL;
	}
	if (umount2(mnt, lazy ? MNT_DETACH : 0) == 0)
		return CMD_OK;
	if (errno == EBUSY)
		log_err("%s is busy: a process still uses it (see 'fuser -vm "
			"%s'), or detach it with 'kmsfs umount -l'",
			mnt, mnt);
	else if (errno == EINVAL)
		log_err("%s is not mounted", mnt);
	else
		log_err("cannot unmount %s: %s", mnt, strerror(errno));
	return CMD_FAIL;
}

static int umount_run(const struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"lazy", no_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct mountinfo_entry me;
	bool lazy = false;
	int opt, r, st;
	char *mnt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hl", longopts, NULL)) != -1) {
		if (opt == 'h')
			return cmd_help(c, stdout);
		if (opt != 'l')
			return cmd_bad_option(c, opt, argv);
		lazy = true;
	}
	if (argc - optind != 1)
		return cmd_usage(c, argc - optind ? "too many arguments"
						  : "missing MOUNTPOINT");
	mnt = umount_abspath(argv[optind]);
	if (!mnt) {
		log_err("%s: %s", argv[optind], strerror(errno));
		return CMD_FAIL;
	}
	r = mountinfo_find(mnt, &me);
	if (r == -ENOENT) {
		log_err("%s is not mounted", mnt);
		st = CMD_FAIL;
	} else if (r) {
		log_err("cannot read /proc/self/mountinfo: %s", strerror(-r));
		st = CMD_FAIL;
	} else if (!umount_is_kmsfs(me.fstype)) {
		log_err("%s is not a kmsfs mount (type %s); not unmounting it",
			mnt, me.fstype);
		st = CMD_FAIL;
	} else {
		st = umount_do(mnt, lazy);
	}
	free(mnt);
	return st;
}

const struct cmd cmd_umount = {
    .name = "umount",
    .synopsis = "[-l] MOUNTPOINT",
    .summary = "unmount a kmsfs mount",
    .help = "  -l, --lazy   detach now, finish when no longer busy\n"
	    "As root this calls umount2(); otherwise it runs fusermount3 "
	    "-u.\n",
    .run = umount_run,
};
