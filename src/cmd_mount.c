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

#define MOUNTINFO "/proc/self/mountinfo"

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

struct mount_flags {
	bool fuse_debug;
	bool single_thread;
};

static int mount_parse(const struct cmd *c, int argc, char **argv,
		       struct cmd_opts *o, struct mount_flags *f)
{
	static const struct option longopts[] = {
	    CMD_KEY_LONGOPTS,
	    {"foreground", no_argument, NULL, 'f'},
	    {"debug", no_argument, NULL, 'd'},
	    {"single-thread", no_argument, NULL, 's'},
	    {"options", required_argument, NULL, 'o'},
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
	if (!*mnt && errno == ENOTCONN) {
		log_err("mount point %s is a dead kmsfs mount; run 'kmsfs "
			"umount %s' first",
			s->mountpoint, s->mountpoint);
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
	    .allow_v1 = s.allow_v1,
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
	    "(repeatable)\n"
	    "BACKING and MOUNTPOINT may come from --config.  The command "
	    "returns once\nthe mount is ready.\n" CMD_KEY_HELP,
    .run = mount_run,
};

/* --- umount ---------------------------------------------------------- */

/* Undo mountinfo's octal escapes (\040 for space, ...) in place. */
static void umount_unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* If line describes a mount on path, copy its type into type (cap n). */
static bool umount_match(char *line, const char *path, char *type, size_t n)
{
	char *save = NULL, *mp, *sep, *fstype;

	if (!strtok_r(line, " ", &save)) /* mount ID */
		return false;
	for (int i = 0; i < 3; i++) /* parent ID, major:minor, root */
		if (!strtok_r(NULL, " ", &save))
			return false;
	mp = strtok_r(NULL, " ", &save);
	sep = save ? strstr(save, " - ") : NULL;
	if (!mp || !sep)
		return false;
	umount_unescape(mp);
	if (strcmp(mp, path) != 0)
		return false;
	fstype = strtok_r(sep + 3, " ", &save);
	snprintf(type, n, "%s", fstype ? fstype : "?");
	return true;
}

/* Type of the topmost mount on path; -ENOENT if nothing is mounted. */
static int umount_find(const char *path, char *type, size_t n)
{
	FILE *f = fopen(MOUNTINFO, "re");
	char *line = NULL;
	size_t cap = 0;
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (umount_match(line, path, type, n))
			r = 0; /* keep going: later lines are stacked on top */
	}
	free(line);
	fclose(f);
	return r;
}

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
	char type[64], *mnt;
	bool lazy = false;
	int opt, r, st;

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
	r = umount_find(mnt, type, sizeof(type));
	if (r == -ENOENT) {
		log_err("%s is not mounted", mnt);
		st = CMD_FAIL;
	} else if (r) {
		log_err("cannot read " MOUNTINFO ": %s", strerror(-r));
		st = CMD_FAIL;
	} else if (!umount_is_kmsfs(type)) {
		log_err("%s is not a kmsfs mount (type %s); not unmounting it",
			mnt, type);
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
