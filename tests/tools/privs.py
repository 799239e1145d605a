#!/usr/bin/env python3
"""privs.py - what each change to a file does to its set-ID bits and file
capabilities, as a table, to compare a kmsfs mount with a local
filesystem.

    privs.py DIR

For every case (a starting mode, with or without file capabilities; an
operation; the caller: root, or uid 65534 in or out of the file's
group), makes DIR/f<N> owned by 65534:65534, runs the operation, and
prints one line: the case, then the mode (07777 bits) and whether
security.capability is still there, as stat(2) and getxattr(2) through
DIR see them right after the operation, and again after a second.
DIR must let uid 65534 in (mode 0777); the directories above need not.

The Linux kernel removes these on write, truncate and chown to stop a
file changed by one user from keeping another's privileges.  On a FUSE
mount either the kernel does it, or the daemon, when the kernel was
told the daemon would (FUSE_HANDLE_KILLPRIV_V2).  Run as root.
"""
import os
import struct
import sys
import time

CAPS = "security.capability"
# VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE; permitted CAP_NET_BIND_SERVICE
CAPS_VALUE = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
NOBODY = 65534
OTHER_GID = 4242  # a group uid 65534 is not in

MODES = [0o4755, 0o2755, 0o2745, 0o6775, 0o0755]


def has_caps(path):
    try:
        os.getxattr(path, CAPS)
        return True
    except OSError:
        return False


def op_write_wronly(p):
    fd = os.open(p, os.O_WRONLY)
    os.pwrite(fd, b"w", 1)
    os.close(fd)


def op_write_rdwr(p):
    fd = os.open(p, os.O_RDWR)
    os.pwrite(fd, b"w", 1)
    os.close(fd)


def op_append(p):
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"a")
    os.close(fd)


def op_ftruncate(p):
    fd = os.open(p, os.O_RDWR)
    os.ftruncate(fd, 2)
    os.close(fd)


def op_truncate(p):
    os.truncate(p, 1)


def op_open_trunc(p):
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)


def op_fallocate(p):
    fd = os.open(p, os.O_RDWR)
    os.posix_fallocate(fd, 0, 8192)
    os.close(fd)


def op_chown_group(p):
    os.chown(p, -1, NOBODY)


def op_chown_none(p):
    os.chown(p, -1, -1)


def op_chown_user(p):
    os.chown(p, 1, 1)


def op_utime(p):
    os.utime(p, (1, 1))


def op_read(p):
    with open(p, "rb") as f:
        f.read()


OPS = [
    ("write-wronly", op_write_wronly, True),
    ("write-rdwr", op_write_rdwr, True),
    ("append", op_append, True),
    ("ftruncate", op_ftruncate, True),
    ("truncate", op_truncate, True),
    ("open-trunc", op_open_trunc, True),
    ("fallocate", op_fallocate, True),
    ("chown-group", op_chown_group, True),
    ("chown-none", op_chown_none, True),
    ("chown-user", op_chown_user, False),  # root only
    ("utime", op_utime, True),
    ("read", op_read, True),
]

CALLERS = [("root", None), ("nobody", NOBODY), ("nobody-other-group", OTHER_GID)]


def run_as(gid, fn, path):
    """fn(path) as uid 65534 with group gid, in a child; returns errno or 0.
    The child enters the file's directory first, as root, so that the
    directories above it need not let uid 65534 through."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.chdir(os.path.dirname(path))
            path = os.path.basename(path)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            fn(path)
        except OSError as e:
            code = e.errno or 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def state(p):
    return "%04o,%s" % (os.stat(p).st_mode & 0o7777, "caps" if has_caps(p) else "-")


def main():
    d = sys.argv[1]
    cases = []
    n = 0
    for mode in MODES:
        for caps in (False, True):
            for opname, fn, for_nobody in OPS:
                for caller, gid in CALLERS:
                    if caller != "root" and not for_nobody:
                        continue
                    p = os.path.join(d, "f%d" % n)
                    n += 1
                    with open(p, "wb") as f:
                        f.write(b"abc")
                    os.chown(p, NOBODY, NOBODY)
                    os.chmod(p, mode)
                    if caps:
                        os.setxattr(p, CAPS, CAPS_VALUE)
                    before = state(p)
                    if caller == "root":
                        try:
                            fn(p)
                            err = 0
                        except OSError as e:
                            err = e.errno
                    else:
                        err = run_as(gid, fn, p)
                    cases.append((p, "%04o %-5s %-13s %-19s %s err=%d" % (
                        mode, "caps" if caps else "-", opname, caller, before, err),
                        state(p)))
    time.sleep(1.1)
    for p, label, now in cases:
        print("%s -> %s later %s" % (label, now, state(p)))
        os.unlink(p)


if __name__ == "__main__":
    main()
