/*
 * ns.h - the namespace core: every change to the names of the store.
 *
 * Owns: kfs.ns_lock (no other file takes it), each inode's last known
 * name (parent + entry name), the namespace policy (reserved names,
 * which chain an entry belongs to, creating a chain's key when a
 * directory that starts one is made, refusing moves and links across
 * chains with EXDEV, removing kmsfs's own files when a directory is
 * removed), and the crash-safe replacement of a re-encrypted file
 * (struct kfile_host: temporary beside the file, rename over it).
 * Must not know: FUSE.  Callers pass inodes they hold a reference on.
 * Thread-safety: every function may be called from any thread; see the
 * lock order in fs/kfs.h.  Names are read and changed under ns_lock, so
 * a name cannot move between a check and its use.
 *
 * Errors: -errno of the backing store's calls, and the policy's own:
 * -EPERM (a reserved name), -EXDEV (the entry's data is sealed under
 * another chain's key), -ENOKEY (no key to write into the chain).
 */
#ifndef KMSFS_NS_H
#define KMSFS_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kfs.h"

/* Who makes a new entry.  The daemon creates every entry itself (it may
 * run as root for many users with -o allow_other) and then hands it to
 * the creator, as a local file system would have made it: owner uid;
 * group gid, or the parent's group when the parent directory is
 * set-group-ID (the entry then inherits the group, and a directory the
 * bit, as the kernel does for any creator).  NULL: the daemon keeps it. */
struct kcred {
	uid_t uid;
	gid_t gid;
};

/* Modes are applied exactly as given: the kernel has already applied the
 * caller's umask and its set-group-ID rules, and the daemon runs with
 * umask 0 (fs/ops.c sets it at init).  An entry whose ownership cannot be
 * handed over (a backing store without chown) stays the daemon's, with
 * one warning in the log. */

/* Make a regular file, FIFO, socket or character or block device
 * (mknod).  A regular file gets a valid empty ciphertext under the
 * parent chain's key; the others have no content to encrypt and are
 * made as they are (the kernel has checked CAP_MKNOD for devices). */
int ns_mknod(struct kfs *fs, struct kinode *parent, const char *name,
	     mode_t mode, dev_t rdev, const struct kcred *who);
/* Create the backing file of a regular file about to be opened (create),
 * after checking there is a key to write it with.  flags: the open flags;
 * O_EXCL is honoured; a file opened read-only gets its valid empty
 * ciphertext now (no write session will ever give it one), a writable
 * one is left empty for the session of its first writer (written in
 * place).  *created_out: whether this call made the file; if the open
 * that follows fails, ns_create_undo removes it again.  datafd (may be
 * NULL): an encrypted file made for writing stays open, for reading and
 * writing, in *datafd (else it is left alone), for the open that follows
 * (inode_open_file), which spares a second open of it. */
int ns_create(struct kfs *fs, struct kinode *parent, const char *name,
	      mode_t mode, int flags, const struct kcred *who,
	      bool *created_out, int *datafd);
/* Remove name in parent again after a failed create, if it still is the
 * file that ns_create made (in: its inode, or NULL when the lookup
 * failed: then whatever regular file has the name). */
void ns_create_undo(struct kfs *fs, struct kinode *parent, const char *name,
		    struct kinode *in);
/* mkdir; a directory that starts a chain gets its key and
 * ENCRYPTION-INFO now, or is removed again (the error is returned). */
int ns_mkdir(struct kfs *fs, struct kinode *parent, const char *name,
	     mode_t mode, const struct kcred *who);
int ns_symlink(struct kfs *fs, struct kinode *parent, const char *name,
	       const char *target, const struct kcred *who);
int ns_link(struct kfs *fs, struct kinode *in, struct kinode *newparent,
	    const char *newname);
/* unlink/rmdir of a reserved name: -ENOENT.  rmdir: -ENOTEMPTY when the
 * directory holds anything but kmsfs's own files, which it removes. */
int ns_unlink(struct kfs *fs, struct kinode *parent, const char *name);
int ns_rmdir(struct kfs *fs, struct kinode *parent, const char *name);
/* renameat2 with RENAME_NOREPLACE / RENAME_EXCHANGE; -EINVAL for other
 * flags. */
int ns_rename(struct kfs *fs, struct kinode *parent, const char *name,
	      struct kinode *newparent, const char *newname, unsigned flags);

/* The chain an entry would belong to under name in parent (a directory
 * when is_dir): its own if the layout makes it a chain, the parent's
 * when it inherits, or whatever chain the layout names. */
int ns_chain_at(struct kfs *fs, struct kinode *parent, const char *name,
		bool is_dir, struct chain **out);

/* Record that name in parent is (now) a name of in. */
void ns_set_name(struct kfs *fs, struct kinode *in, struct kinode *parent,
		 const char *name);
/* The inode's path relative to the root ("" for the root), for the
 * layout.  -ENOENT when a name on the way is unknown, -ENAMETOOLONG. */
int ns_path(struct kfs *fs, struct kinode *in, char *out, size_t len);
/* The same for logs: "/a/b", with "?" for unknown parts.  Never fails. */
void ns_label(struct kfs *fs, struct kinode *in, char *out, size_t len);

/* Point in->host at the crash-safe replacement callbacks. */
void ns_host_init(struct kinode *in);

#endif
