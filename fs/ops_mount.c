/*
 * ops_mount.c - kfs_mount: check the keys against the store, mount,
 * daemonize once ready, serve until unmounted, wipe keys.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include "ops_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/harden.h"
#include "../lib/log.h"
#include "mountpoint.h"
#include "recover.h"
#include "storelock.h"

/* --- mounting ---------------------------------------------------------- */

static int build_args(const struct kfs_options *o, struct fuse_args *args)
{
	char opts[PATH_MAX + 128];
	int r = 0;

	/* Kernel permission checks on our attributes; no allow_other
	 * unless the user asks for it with -o. */
	snprintf(opts, sizeof(opts),
		 "default_permissions,subtype=kmsfs,fsname=%s",
		 strchr(o->backing, ',') ? "kmsfs" : o->backing);
	r |= fuse_opt_add_arg(args, "kmsfs");
	r |= fuse_opt_add_arg(args, "-o");
	r |= fuse_opt_add_arg(args, opts);
	if (o->fuse_opts && *o->fuse_opts) {
		r |= fuse_opt_add_arg(args, "-o");
		r |= fuse_opt_add_arg(args, o->fuse_opts);
	}
	if (o->fuse_debug)
		r |= fuse_opt_add_arg(args, "-d");
	return r ? -ENOMEM : 0;
}

/* A written file's buffers (fs/file_write.c: 3 x 64 KiB) and a read
 * file's chunk cache (fs/file_cache.c: 256 KiB) are freed at its last
 * close.  glibc would hand a freed top of a thread's heap back to the
 * kernel each time (madvise), and take it again at the next open
 * (mprotect, page faults): for an untar, a few syscalls and dozens of
 * faults per file.  Keep up to 8 MiB free per heap, and serve blocks
 * up to 1 MiB (a request) from the heaps rather than from mmap. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
#endif
}

static int serve(struct fuse_session *se, const struct kfs_options *o)
{
	struct fuse_loop_config *cfg;
	int r;

	tune_malloc();
	if (o->single_thread)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_idle_threads(cfg, 10);
	fuse_loop_cfg_set_max_threads(cfg, 64);
	r = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return r;
}

static int check_dirs(const struct kfs_options *o)
{
	struct stat st;
	int r;

	if (stat(o->backing, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_err("backing store %s is not a directory", o->backing);
		return 2;
	}
	r = mountpoint_check(o->mountpoint, o->nonempty);
	return r == -ENOTDIR ? 2 : r ? 1 : 0;
}

/* --profile, or what the store looks like. */
static const struct layout_profile *pick_layout(const struct kfs_options *o)
{
	const struct layout_profile *p;
	int fd = open(o->backing, O_PATH | O_DIRECTORY | O_CLOEXEC);

	p = layout_resolve(o->profile, fd);
	if (fd >= 0)
		close(fd);
	if (!p)
		log_err("unknown layout profile '%s' (known: %s)", o->profile,
			layout_known());
	return p;
}

int kfs_mount(const struct kfs_options *o)
{
	const struct layout_profile *prof = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct storelock *lock = NULL;
	struct kfs *fs = NULL;
	int status = 1, r;

	status = check_dirs(o);
	if (status)
		return status;
	prof = pick_layout(o);
	if (!prof)
		return 2;
	status = 1;
	if (storelock_acquire(o->backing, o->mountpoint, &lock))
		goto out;
	if (kfs_new(o->backing, o->keys, prof, &fs))
		goto out;
	fs->allow_v1 = o->allow_v1;
	if (keycache_check_store(fs->kc, fs->layout, fs->rootfd))
		goto out;
	/* What a crash left behind (fs/recover.h); logged per file. */
	if (recover_store(fs->rootfd, prof, fs->kc, NULL))
		log_warn("could not sweep %s for interrupted writes",
			 o->backing);
	if (build_args(o, &args))
		goto out;
	se = fuse_session_new(&args, &kmsfs_ops, sizeof(kmsfs_ops), fs);
	if (!se) {
		log_err("invalid FUSE options: %s",
			o->fuse_opts ? o->fuse_opts : "");
		status = 2;
		goto out;
	}
	fs->se = se;
	/* see open_handle in fs/ops_file.c */
	fs->write_direct = !o->single_thread;
	fs->share_reads = !o->single_thread;
	if (fuse_set_signal_handlers(se) ||
	    fuse_session_mount(se, o->mountpoint)) {
		log_err("cannot mount on %s", o->mountpoint);
		goto out;
	}
	if (ops_io_setup(se, o->mountpoint, o->read_ahead_kb)) {
		log_err("cannot set up the FUSE session on %s", o->mountpoint);
		fuse_session_unmount(se);
		goto out;
	}
	if (!o->foreground) {
		fuse_daemonize(0);
		/* mlock'd memory is not inherited across fork() */
		harden_after_fork();
		log_use_syslog(true);
		storelock_set_pid(lock); /* the daemon's, not its parent's */
	}
	log_info("mounted %s on %s (profile: %s)", o->backing, o->mountpoint,
		 layout_name(prof));
	r = serve(se, o);
	fuse_session_unmount(se);
	log_info("unmounted %s; keys wiped", o->mountpoint);
	status = r < 0 ? 1 : 0;
out:
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_opt_free_args(&args);
	kfs_free(fs);
	storelock_release(lock);
	return status;
}
