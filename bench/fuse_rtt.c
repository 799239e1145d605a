/*
 * fuse_rtt.c - the cost of one FUSE round trip on this machine, with a
 * daemon that does no work: one file, "f", whose every getxattr is
 * answered ENODATA at once.  Timing getxattr(2) on it from a loop gives
 * the floor under any FUSE filesystem's per-request cost here (the
 * kernel's request, the wakeups, the daemon's read and reply), to set
 * beside kmsfs's own (see README, "Performance").  Not built by make:
 *
 *   cc -O2 -o fuse_rtt bench/fuse_rtt.c $(pkg-config --cflags --libs fuse3)
 *   ./fuse_rtt MOUNTPOINT [-mt]    # -mt: libfuse's multi-threaded loop,
 *                                  # as kmsfs runs; default one thread
 *   (time getxattr on MOUNTPOINT/f, then fusermount3 -u MOUNTPOINT)
 */
#define _DEFAULT_SOURCE /* S_IFDIR, S_IFREG under -std=c11 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define FILE_INO 2

static void fill(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0755 : S_IFREG | 0644;
	st->st_nlink = ino == FUSE_ROOT_ID ? 2 : 1;
}

static void rtt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, "f") != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = FILE_INO;
	e.attr_timeout = e.entry_timeout = 3600;
	fill(FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void rtt_getattr(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	fill(ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void rtt_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static const struct fuse_lowlevel_ops ops = {
    .lookup = rtt_lookup,
    .getattr = rtt_getattr,
    .getxattr = rtt_getxattr,
};

int main(int argc, char **argv)
{
	char *fargv[] = {argv[0], NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, fargv);
	struct fuse_loop_config *cfg;
	struct fuse_session *se;
	int mt = argc > 2 && strcmp(argv[2], "-mt") == 0, r = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: %s MOUNTPOINT [-mt]\n", argv[0]);
		return 2;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se || fuse_session_mount(se, argv[1]) != 0)
		return 1;
	if (mt) {
		cfg = fuse_loop_cfg_create();
		r = cfg ? fuse_session_loop_mt(se, cfg) : 1;
		fuse_loop_cfg_destroy(cfg);
	} else {
		r = fuse_session_loop(se);
	}
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	return r ? 1 : 0;
}
