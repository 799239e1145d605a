/*
 * ops_io.c - the session's reads and writes of /dev/fuse
 * (fuse_session_custom_io): libfuse's own, except around the answer to
 * FUSE_INIT, which libfuse 3.14 gives no way to shape:
 *
 *  - the answer also claims FUSE_HANDLE_KILLPRIV_V2 when the kernel
 *    offers it.  With it the kernel leaves removing set-ID bits and file
 *    capabilities on write, truncate and chown to the daemon (kill_privs
 *    in ops_file.c), and stops making two round trips of its own for
 *    them: a GETXATTR of security.capability ahead of each write(2)
 *    through its page cache, and a GETATTR ahead of each chown
 *    (FUSE_CAP_HANDLE_KILLPRIV_V2 came with a later libfuse);
 *  - once it is answered, the mount's read-ahead window is set (to
 *    ops_io_setup's read_ahead_kb).  A FUSE mount starts at the
 *    kernel's 128 KiB, and the kernel lowers it to the answer's
 *    max_readahead then, so it can only be raised after: a sequential
 *    reader then gets requests of up to 1 MiB, several in flight,
 *    instead of 128 KiB ones.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include "ops_int.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/log.h"
#include "mountpoint.h"

/* The FUSE_INIT being answered, 0 once answered (one session a process),
 * and whether it offered FUSE_HANDLE_KILLPRIV_V2. */
static _Atomic uint64_t init_unique;
static atomic_bool init_killpriv;
/* Set by ops_io_setup before the session runs. */
static const char *mount_path;
static unsigned mount_ra_kb;

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;
	const struct fuse_init_in *init = (const void *)(h + 1);

	(void)userdata;

	if (n >= (ssize_t)(sizeof(*h) + offsetof(struct fuse_init_in, flags) +
			   sizeof(init->flags)) &&
	    h->opcode == FUSE_INIT && init->major == FUSE_KERNEL_VERSION) {
		atomic_store(&init_killpriv,
			     (init->flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
		atomic_store(&init_unique, h->unique);
	}
	return n;
}

static void set_readahead(void)
{
	int r = mountpoint_set_readahead(mount_path, mount_ra_kb);

	if (!r)
		log_debug("read-ahead: %u KiB", mount_ra_kb);
	else
		log_info("read-ahead left at the kernel's (%s): %s",
			 r == -EACCES ? "setting it needs root"
				      : "cannot set it",
			 strerror(-r));
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct kfs *fs = userdata;
	const struct fuse_out_header *oh = iov[0].iov_base;
	uint64_t init =
	    atomic_load_explicit(&init_unique, memory_order_relaxed);
	bool answered = false;
	ssize_t n;

	/* The kernel sends nothing else before it has the INIT reply. */
	if (init && count >= 2 && iov[0].iov_len == sizeof(*oh) &&
	    oh->unique == init) {
		struct fuse_init_out *out = iov[1].iov_base;

		answered = oh->error == 0;
		if (answered && atomic_load(&init_killpriv) &&
		    iov[1].iov_len >= offsetof(struct fuse_init_out, flags) +
					  sizeof(out->flags)) {
			out->flags |= FUSE_HANDLE_KILLPRIV_V2;
			atomic_store(&fs->killpriv, true);
		}
		atomic_store(&init_unique, 0);
	}
	n = writev(fd, iov, count);
	/* The kernel took the answer (and its max_readahead) in writev. */
	if (answered && n >= 0 && mount_ra_kb)
		set_readahead();
	return n;
}

int ops_io_setup(struct fuse_session *se, const char *mountpoint,
		 unsigned read_ahead_kb)
{
	/* userdata: the struct kfs given to fuse_session_new */
	static const struct fuse_custom_io io = {.read = io_read,
						 .writev = io_writev};

	mount_path = mountpoint;
	mount_ra_kb = mountpoint ? read_ahead_kb : 0;
	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}
