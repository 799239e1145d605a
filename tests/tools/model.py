#!/usr/bin/python3
"""model.py - seeded random operations on two trees, compared after each step.

    model.py --a MOUNT --b PLAIN [--seed S] [--steps N] [--chains c1,c2]
             [--kinds default|all|none|K1,K2]
    model.py --self-test

Applies the same random sequence of file system operations (create, write
at random offsets, append, truncate/ftruncate, O_TRUNC reopen, rename incl.
overwrite, link, unlink, mkdir, rmdir, symlink, chmod, several open fds per
file, reads through fds and fresh opens) to tree A (a kmsfs mount) and tree
B (a plain directory on an ordinary file system, the model).  Every
operation must have the same outcome on both sides (same result or same
errno, same bytes read).  After every step the touched paths are compared,
and every --full-every steps the whole state: names, types, sizes, nlink,
modes, contents and symlink targets.  Operations stay inside the given
chain directories and never cross them.  On a difference it prints the
seed, the step, the operation and the last operations, and exits 1.

Errors are compared as errno values, wherever they come from: an
operation, or the stat/read of the state comparison (an ENOENT or ENOTDIR
there means "absent"; any other errno is part of the state).  The walk is
sorted, so a seed replays the same operations on any file system.

Operation kinds added for issue 7 (--kinds; each is compared like the
rest):
  futimens   open a file, maybe write, set atime/mtime on the fd, close;
             the mtime must be the one set, and stays compared until the
             file is modified again (times of files not set this way are
             not compared)
  umask      change the process umask (0, 002, 022, 027, 077); creations
             then use modes 0644/0666/0777/0600/0640/0755 too
  mkfifo     fifos (never opened; renamed, linked, chmod'ed, unlinked)
  mknod_dev  character and block device nodes (root only; never opened)
  creat_ro   open(O_CREAT) with a read-only mode (0444, 0400, 0, 0555,
             0440), read-only, write-only or read-write, new or existing
--kinds none gives the operation mix of the model before they were
added.  DEFAULT_KINDS lists those kmsfs passes today; switch the others
on there as their fixes land.
"""

import argparse
import errno
import hashlib
import os
import random
import stat
import sys
import time

CHUNK = 65536
NEW_KINDS = ("futimens", "umask", "mkfifo", "mknod_dev", "creat_ro")
# What kmsfs passes today: all of them since issue 7's fixes landed.
# Before them (CI seeds 1, 2, 3, 600 steps, each kind alone) futimens
# failed (mtime lost at close, requirement 3), umask (the daemon's umask
# applied again, 2D), mknod_dev (EPERM, 2B), creat_ro (EBADF, 2A).
DEFAULT_KINDS = NEW_KINDS
# Times set by futimens are far in the past; a file whose model mtime is
# below this has not been modified since, so its mtime is compared.
SYNTH_MTIME_MAX = 1200000000 * 10**9


class Mismatch(Exception):
    pass


def outcome(fn):
    """Run fn; ('ok', value) or ('err', errno name)."""
    try:
        return ("ok", fn())
    except OSError as e:
        return ("err", errno.errorcode.get(e.errno, str(e.errno)))


def short(v):
    if isinstance(v, (bytes, bytearray)):
        return "<%d bytes sha %s>" % (len(v), hashlib.sha256(v).hexdigest()[:12])
    return repr(v)


def ename(err):
    return errno.errorcode.get(err, str(err))


def describe(full):
    """What the comparison sees of one entry (not following symlinks);
    None if it does not exist.  A file's mtime comes last, for
    comparable()."""
    try:
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(full))
        if stat.S_ISDIR(st.st_mode):
            return ("dir", oct(stat.S_IMODE(st.st_mode)))
        if not stat.S_ISREG(st.st_mode):
            return ("special", stat.S_IFMT(st.st_mode),
                    oct(stat.S_IMODE(st.st_mode)), st.st_rdev)
        h = hashlib.sha256()
        with open(full, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
        return ("file", oct(stat.S_IMODE(st.st_mode)), st.st_size,
                st.st_nlink, h.hexdigest()[:16], st.st_mtime_ns)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        return ("err", ename(e.errno))


def snapshot(root, only=None, chains=None):
    """{relpath: describe()} for the paths in `only`, or for the whole
    tree under each of `chains` (default: all of root), sorted."""
    if only is not None:
        return {rel: describe(os.path.join(root, rel)) for rel in only}
    out = {}
    cut = len(root.rstrip("/")) + 1

    def err(e):
        out[e.filename[cut:] + "/"] = ("listing", ename(e.errno))

    tops = [os.path.join(root, c) for c in chains] if chains else [root]
    for top in tops:
        if top != root:
            out[top[cut:]] = describe(top)
        for dirpath, dirnames, filenames in os.walk(top, onerror=err):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                out[full[cut:]] = describe(full)
    return out


def comparable(sa, sb):
    """Both snapshots over the same keys, a file's mtime kept only where
    the model's is one futimens set (the file was not modified since)."""
    def norm(d, k):
        r = sb.get(k)
        if d and d[0] == "file" and not (
                r and r[0] == "file" and r[-1] < SYNTH_MTIME_MAX):
            return d[:-1]
        return d
    keys = set(sa) | set(sb)
    return ({k: norm(sa.get(k, "absent"), k) for k in keys},
            {k: norm(sb.get(k, "absent"), k) for k in keys})


class Side:
    def __init__(self, root):
        self.root = root
        self.fds = {}   # handle id -> os fd

    def p(self, rel):
        return os.path.join(self.root, rel)


class Model:
    def __init__(self, a, b, seed, chains, max_handles=6, kinds=()):
        self.rng = random.Random(seed)
        self.sides = [Side(a), Side(b)]
        self.chains = chains
        self.max_handles = max_handles
        self.next_handle = 1
        self.handles = {}   # id -> (flags, path opened, chain)
        self.history = []
        self.counts = {}
        self.skip_ops = ()
        self.kinds = set(kinds)
        self.specials = []  # fifos and device nodes: never opened
        self.full_every = 1
        self.steps_done = 0

    # ---------------------------------------------------- choosing

    def entries(self):
        """Entries of B (the model) by kind: dirs (incl. chain roots),
        files, links, each as (relpath, chain)."""
        dirs, files, links, self.specials = [], [], [], []
        broot = self.sides[1].root
        cut = len(broot.rstrip("/")) + 1
        for c in self.chains:
            dirs.append((c, c))
            for dirpath, dirnames, filenames in os.walk(os.path.join(broot, c)):
                dirnames.sort()
                for name in sorted(dirnames + filenames):
                    full = os.path.join(dirpath, name)
                    rel = full[cut:]
                    st = os.lstat(full)
                    if stat.S_ISLNK(st.st_mode):
                        links.append((rel, c))
                    elif stat.S_ISDIR(st.st_mode):
                        dirs.append((rel, c))
                    elif stat.S_ISREG(st.st_mode):
                        files.append((rel, c))
                    else:
                        self.specials.append((rel, c))
        return dirs, files, links

    def new_name(self, dirs, prefix, chain=None):
        cands = [d for d in dirs if chain is None or d[1] == chain]
        d, c = self.rng.choice(cands)
        depth = d.count("/")
        if prefix == "d" and depth >= 3:
            d, c = c, c
        return os.path.join(d, "%s%d" % (prefix, self.rng.randrange(12))), c

    def data(self, n=None):
        r = self.rng
        if n is None:
            k = r.random()
            if k < 0.55:
                n = r.randrange(0, 5000)
            elif k < 0.9:
                n = r.choice([CHUNK, 2 * CHUNK]) + r.randrange(-300, 300)
            else:
                n = r.randrange(0, 3 * CHUNK + 10)
            n = max(n, 0)
        if r.random() < 0.15:
            return bytes([r.randrange(256)]) * n
        return r.randbytes(n)

    def offset(self, size):
        r = self.rng
        k = r.random()
        if k < 0.4:
            return r.randrange(0, size + 1)
        if k < 0.8:
            return max(0, r.randrange(0, 4) * CHUNK + r.randrange(-20, 20))
        return size + r.randrange(0, 2 * CHUNK)   # past EOF: a hole

    def size(self):
        r = self.rng
        k = r.random()
        if k < 0.3:
            return 0 if r.random() < 0.3 else r.randrange(0, 5000)
        if k < 0.8:
            return max(0, r.randrange(0, 4) * CHUNK + r.randrange(-3, 4))
        return r.randrange(0, 3 * CHUNK)

    # ---------------------------------------------------- applying

    def both(self, desc, fn, touched=()):
        """Apply fn(side) on A and B; compare outcomes and touched paths
        (unless the whole state is compared right after this step)."""
        self.history.append(desc)
        self.counts[desc[0]] = self.counts.get(desc[0], 0) + 1
        ra = outcome(lambda: fn(self.sides[0]))
        rb = outcome(lambda: fn(self.sides[1]))
        if ra != rb:
            raise Mismatch("outcome differs: mount %s, model %s"
                           % (tuple(map(short, ra)), tuple(map(short, rb))))
        if touched and (self.steps_done + 1) % self.full_every != 0:
            self.compare(snapshot(self.sides[0].root, touched),
                         snapshot(self.sides[1].root, touched))
        return rb

    def compare(self, sa, sb):
        na, nb = comparable(sa, sb)
        if na != nb:
            raise Mismatch(diff_states(na, nb))

    def step(self):
        r = self.rng
        dirs, files, links = self.entries()
        ops = [("create", 10), ("write_at", 10), ("append", 6),
               ("truncate", 5), ("otrunc", 5), ("rename", 7), ("link", 4),
               ("unlink", 5 + (len(files) > 30) * 20), ("mkdir", 3),
               ("rmdir", 2 + (len(dirs) > 10) * 8), ("symlink", 3),
               ("chmod", 3), ("read", 5), ("open", 6), ("fd", 25)]
        ops += [(n, w) for n, w in (("futimens", 4), ("umask", 2),
                                    ("mkfifo", 2), ("mknod_dev", 2),
                                    ("creat_ro", 3)) if n in self.kinds]
        ops = [(n, w) for n, w in ops if n not in self.skip_ops]
        total = sum(w for _, w in ops)
        pick = r.randrange(total)
        for name, w in ops:
            if pick < w:
                break
            pick -= w
        getattr(self, "op_" + name)(dirs, files, links)

    def pick_file(self, files, dirs):
        if files and self.rng.random() < 0.9:
            return self.rng.choice(files)
        return self.new_name(dirs, "f")   # usually ENOENT

    def mode(self, default):
        """A creation mode: the old fixed one, or (with the umask kind)
        one that the umask visibly changes."""
        if "umask" not in self.kinds:
            return default
        return self.rng.choice([default, 0o666, 0o777, 0o600, 0o640, 0o755])

    def openable(self, path):
        """False if opening path would reach a fifo or device node (a
        fifo open blocks; the mount is nodev).  Only with the mkfifo and
        mknod_dev kinds can that happen."""
        if not self.specials:
            return True
        try:
            st = os.stat(self.sides[1].p(path))
        except OSError:
            return True             # fails the same way on both sides
        return stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)

    def op_stat(self, path):
        """In place of an open of a fifo or device node."""
        self.both(("stat", path), lambda s: describe(s.p(path)), [path])

    def op_create(self, dirs, files, links):
        path, _ = self.new_name(dirs, "f")
        data = self.data()
        mode = self.mode(0o644)

        def fn(s):
            fd = os.open(s.p(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
            try:
                return os.write(fd, data)
            finally:
                os.close(fd)
        self.both(("create", path, len(data)) + self.mdesc(mode, 0o644), fn,
                  [path])

    def op_write_at(self, dirs, files, links):
        path, _ = self.pick_file(files, dirs)
        size = self.cur_size(path)
        off, data = self.offset(size), self.data()
        if not self.openable(path):
            return self.op_stat(path)

        def fn(s):
            fd = os.open(s.p(path), os.O_WRONLY)
            try:
                return os.pwrite(fd, data, off)
            finally:
                os.close(fd)
        self.both(("write_at", path, off, len(data)), fn, [path])

    def op_append(self, dirs, files, links):
        path, _ = self.pick_file(files, dirs)
        data = self.data()
        if not self.openable(path):
            return self.op_stat(path)

        def fn(s):
            fd = os.open(s.p(path), os.O_WRONLY | os.O_APPEND)
            try:
                return os.write(fd, data)
            finally:
                os.close(fd)
        self.both(("append", path, len(data)), fn, [path])

    def op_truncate(self, dirs, files, links):
        path, _ = self.pick_file(files, dirs)
        n = self.size()
        self.both(("truncate", path, n),
                  lambda s: os.truncate(s.p(path), n), [path])

    def op_otrunc(self, dirs, files, links):
        path, _ = self.pick_file(files, dirs)
        data = self.data()
        creat = os.O_CREAT if self.rng.random() < 0.3 else 0
        mode = self.mode(0o640) if creat else 0o640
        if not self.openable(path):
            return self.op_stat(path)

        def fn(s):
            fd = os.open(s.p(path), os.O_WRONLY | os.O_TRUNC | creat, mode)
            try:
                return os.write(fd, data)
            finally:
                os.close(fd)
        self.both(("otrunc", path, creat, len(data)) + self.mdesc(mode, 0o640),
                  fn, [path])

    def op_rename(self, dirs, files, links):
        r = self.rng
        movable = (files + links + self.specials
                   + [d for d in dirs if d[0] not in self.chains])
        if not movable:
            return self.op_create(dirs, files, links)
        src, chain = r.choice(movable)
        same = [e for e in movable + dirs if e[1] == chain and e[0] != chain]
        if same and r.random() < 0.4:
            dst = r.choice(same)[0]            # overwrite / type clash
        else:
            dst, _ = self.new_name(dirs, r.choice("fds"), chain)
        self.both(("rename", src, dst),
                  lambda s: os.rename(s.p(src), s.p(dst)), [src, dst])

    def op_link(self, dirs, files, links):
        if not files + links + self.specials:
            return self.op_create(dirs, files, links)
        src, chain = self.rng.choice(files + links + self.specials)
        dst, _ = self.new_name(dirs, "f", chain)
        self.both(("link", src, dst),
                  lambda s: os.link(s.p(src), s.p(dst),
                                    follow_symlinks=False), [src, dst])

    def op_unlink(self, dirs, files, links):
        cands = files + links + self.specials
        if not cands or self.rng.random() < 0.05:
            cands = [d for d in dirs if d[0] not in self.chains] or cands
        if not cands:
            return
        path, _ = self.rng.choice(cands)
        self.both(("unlink", path), lambda s: os.unlink(s.p(path)), [path])

    def op_mkdir(self, dirs, files, links):
        path, _ = self.new_name(dirs, "d")
        mode = self.mode(0o755)
        self.both(("mkdir", path) + self.mdesc(mode, 0o755),
                  lambda s: os.mkdir(s.p(path), mode), [path])

    def op_rmdir(self, dirs, files, links):
        cands = [d for d in dirs if d[0] not in self.chains]
        if not cands:
            return self.op_mkdir(dirs, files, links)
        path, _ = self.rng.choice(cands)
        self.both(("rmdir", path), lambda s: os.rmdir(s.p(path)), [path])

    def op_symlink(self, dirs, files, links):
        path, _ = self.new_name(dirs, "s")
        target = self.rng.choice(["f1", "../f2", "d0/f3", "nowhere",
                                  "x" * 200, "s1"])
        self.both(("symlink", target, path),
                  lambda s: os.symlink(target, s.p(path)), [path])

    def op_chmod(self, dirs, files, links):
        if files + self.specials and self.rng.random() < 0.7:
            path, _ = self.rng.choice(files + self.specials)
            mode = self.rng.choice([0o600, 0o644, 0o400, 0o755, 0o640,
                                    0o000, 0o4755])
        else:
            path, _ = self.rng.choice([d for d in dirs
                                       if d[0] not in self.chains] or dirs)
            mode = self.rng.choice([0o755, 0o700, 0o750, 0o1777])
        self.both(("chmod", path, oct(mode)),
                  lambda s: os.chmod(s.p(path), mode), [path])

    def op_read(self, dirs, files, links):
        path, _ = self.pick_file(files, dirs)
        size = self.cur_size(path)
        off = self.offset(size)
        n = self.rng.choice([1, 100, 4096, CHUNK, CHUNK + 1, 3 * CHUNK])
        if not self.openable(path):
            return self.op_stat(path)

        def fn(s):
            fd = os.open(s.p(path), os.O_RDONLY)
            try:
                return os.pread(fd, n, off)
            finally:
                os.close(fd)
        self.both(("read", path, off, n), fn)

    def op_open(self, dirs, files, links):
        if len(self.handles) >= self.max_handles:
            return self.op_close_one()
        r = self.rng
        opened = [h[1] for h in self.handles.values()]
        if opened and r.random() < 0.5:
            path = r.choice(opened)      # several fds on one file
        else:
            path, _ = self.pick_file(files, dirs)
        flags = r.choice([os.O_RDWR, os.O_RDONLY, os.O_WRONLY,
                          os.O_RDWR | os.O_APPEND, os.O_RDWR | os.O_TRUNC,
                          os.O_RDWR | os.O_CREAT])
        mode = self.mode(0o644) if flags & os.O_CREAT else 0o644
        if not self.openable(path):
            return self.op_stat(path)
        h = self.next_handle
        self.next_handle += 1

        def fn(s):
            s.fds[h] = os.open(s.p(path), flags, mode)
            return None
        res = self.both(("open", h, path, flags) + self.mdesc(mode, 0o644),
                        fn, [path])
        if res[0] == "ok":
            self.handles[h] = (flags, path)
        else:
            for s in self.sides:
                fd = s.fds.pop(h, None)
                if fd is not None:
                    os.close(fd)

    def op_close_one(self):
        h = self.rng.choice(sorted(self.handles))
        path = self.handles.pop(h)[1]

        def fn(s):
            os.close(s.fds.pop(h))
        self.both(("close", h), fn, [path])

    def op_fd(self, dirs, files, links):
        if not self.handles:
            return self.op_open(dirs, files, links)
        r = self.rng
        h = r.choice(sorted(self.handles))
        path = self.handles[h][1]
        what = r.choice([w for w in ["pwrite", "pwrite", "write", "pread",
                                     "pread", "read", "seek", "ftruncate",
                                     "fstat", "fsync", "close"]
                         if "fd_" + w not in self.skip_ops])
        if what == "close":
            return self.op_close_one()
        size = self.fd_size(h)
        if what == "pwrite":
            off, data = self.offset(size), self.data()
            fn, desc = (lambda s: os.pwrite(s.fds[h], data, off),
                        (what, h, off, len(data)))
        elif what == "write":
            data = self.data()
            fn, desc = lambda s: os.write(s.fds[h], data), (what, h, len(data))
        elif what == "pread":
            off, n = self.offset(size), r.choice([1, 777, CHUNK, 2 * CHUNK])
            fn, desc = lambda s: os.pread(s.fds[h], n, off), (what, h, off, n)
        elif what == "read":
            n = r.choice([10, 5000, CHUNK + 3])
            fn, desc = lambda s: os.read(s.fds[h], n), (what, h, n)
        elif what == "seek":
            off = self.offset(size)
            fn, desc = (lambda s: os.lseek(s.fds[h], off, os.SEEK_SET),
                        (what, h, off))
        elif what == "ftruncate":
            n = self.size()
            fn, desc = lambda s: os.ftruncate(s.fds[h], n), (what, h, n)
        elif what == "fstat":
            def fn(s):
                st = os.fstat(s.fds[h])
                return (st.st_size, oct(stat.S_IMODE(st.st_mode)),
                        st.st_nlink)
            desc = (what, h)
        else:
            fn, desc = lambda s: os.fsync(s.fds[h]), (what, h)
        self.both(("fd_" + desc[0],) + desc[1:], fn, [path])

    @staticmethod
    def mdesc(mode, default):
        return () if mode == default else (oct(mode),)

    # ------------------------------------------ kinds added for issue 7

    def op_futimens(self, dirs, files, links):
        r = self.rng
        path, _ = self.pick_file(files, dirs)
        flags = r.choice([os.O_WRONLY, os.O_RDWR, os.O_RDWR | os.O_APPEND,
                          os.O_WRONLY | os.O_TRUNC, os.O_RDONLY])
        data = self.data() if flags != os.O_RDONLY and r.random() < 0.6 \
            else b""
        # ns precision, years 2001-2004: below SYNTH_MTIME_MAX
        at = (1000000000 + r.randrange(100000000)) * 10**9 + r.randrange(10**9)
        mt = (1000000000 + r.randrange(100000000)) * 10**9 + r.randrange(10**9)
        if not self.openable(path):
            return self.op_stat(path)

        def fn(s):
            fd = os.open(s.p(path), flags)
            try:
                if data:
                    os.write(fd, data)
                os.utime(fd, ns=(at, mt))
            finally:
                os.close(fd)
            return os.lstat(s.p(path)).st_mtime_ns
        self.both(("futimens", path, flags, len(data), mt), fn, [path])

    def op_umask(self, dirs, files, links):
        mask = self.rng.choice([0o000, 0o002, 0o022, 0o027, 0o077])
        self.history.append(("umask", oct(mask)))
        self.counts["umask"] = self.counts.get("umask", 0) + 1
        os.umask(mask)

    def op_mkfifo(self, dirs, files, links):
        path, _ = self.new_name(dirs, "p")
        mode = self.mode(0o644)
        self.both(("mkfifo", path, oct(mode)),
                  lambda s: os.mkfifo(s.p(path), mode), [path])

    def op_mknod_dev(self, dirs, files, links):
        path, _ = self.new_name(dirs, "v")
        kind, dev = self.rng.choice([(stat.S_IFCHR, os.makedev(1, 3)),
                                     (stat.S_IFBLK, os.makedev(7, 0))])
        mode = self.mode(0o644)
        self.both(("mknod_dev", path, oct(kind | mode), os.major(dev),
                   os.minor(dev)),
                  lambda s: os.mknod(s.p(path), kind | mode, dev), [path])

    def op_creat_ro(self, dirs, files, links):
        r = self.rng
        if files and r.random() < 0.25:
            path = r.choice(files)[0]            # exists already
        else:
            path = self.new_name(dirs, "f")[0]
        mode = r.choice([0o444, 0o400, 0o000, 0o555, 0o440])
        acc = r.choice([os.O_RDONLY, os.O_WRONLY, os.O_RDWR])
        excl = os.O_EXCL if r.random() < 0.5 else 0
        data = self.data() if acc != os.O_RDONLY else b""
        if not self.openable(path):
            return self.op_stat(path)

        def fn(s):
            fd = os.open(s.p(path), os.O_CREAT | excl | acc, mode)
            try:
                n = os.write(fd, data) if data else 0
                return n, oct(stat.S_IMODE(os.fstat(fd).st_mode))
            finally:
                os.close(fd)
        self.both(("creat_ro", path, oct(mode), acc, excl, len(data)), fn,
                  [path])

    def cur_size(self, path):
        try:
            return os.lstat(self.sides[1].p(path)).st_size
        except OSError:
            return 0

    def fd_size(self, h):
        return os.fstat(self.sides[1].fds[h]).st_size

    def close_all(self):
        while self.handles:
            self.op_close_one()

    def compare_all(self):
        self.compare(snapshot(self.sides[0].root, chains=self.chains),
                     snapshot(self.sides[1].root, chains=self.chains))


def diff_states(sa, sb):
    lines = ["state differs (mount vs model):"]
    for k in sorted(set(sa) | set(sb)):
        if sa.get(k, "absent") != sb.get(k, "absent"):
            lines.append("  %s: mount %s, model %s"
                         % (k, sa.get(k, "absent"), sb.get(k, "absent")))
    return "\n".join(lines[:40])


def self_test():
    """The harness's own handling of errors on the plain side: seed
    3294518720 once crashed it (the lstat of a path whose parent had
    become a file raised NotADirectoryError, and only FileNotFoundError
    was caught).  Errors are errno values, whichever exception class."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "f"), "w").close()
        os.symlink("loop", os.path.join(d, "loop"))
        os.mkfifo(os.path.join(d, "p"), 0o640)
        under_file = os.path.join(d, "f", "x")
        checks = [
            (describe(under_file), None),
            (describe(os.path.join(d, "nope", "x")), None),
            (describe(os.path.join(d, "loop", "x")), ("err", "ELOOP")),
            (describe(os.path.join(d, "p")),
             ("special", stat.S_IFIFO, "0o640", 0)),
            (snapshot(d, ["f/x", "loop/x"]),
             {"f/x": None, "loop/x": ("err", "ELOOP")}),
            (outcome(lambda: os.lstat(under_file)), ("err", "ENOTDIR")),
            (outcome(lambda: os.rmdir(os.path.join(d, "f"))),
             ("err", "ENOTDIR")),
            (outcome(lambda: os.open(under_file, os.O_CREAT | os.O_RDWR)),
             ("err", "ENOTDIR")),
        ]
        for n, (got, want) in enumerate(checks):
            if got != want:
                print("model: self-test %d: got %r, expected %r"
                      % (n, got, want))
                return 1
        sa = {"f": ("file", "0o644", 1, 1, "h", SYNTH_MTIME_MAX - 1)}
        sb = {"f": ("file", "0o644", 1, 1, "h", SYNTH_MTIME_MAX - 2)}
        if comparable(sa, sb)[0] == comparable(sa, sb)[1]:
            print("model: self-test: a lost futimens mtime went unnoticed")
            return 1
        sa["f"] = sa["f"][:-1] + (SYNTH_MTIME_MAX + 5,)
        sb["f"] = sb["f"][:-1] + (SYNTH_MTIME_MAX + 9,)
        if comparable(sa, sb)[0] != comparable(sa, sb)[1]:
            print("model: self-test: ordinary mtimes were compared")
            return 1
    print("model: self-test ok")
    return 0


def parse_kinds(text):
    """--kinds: "default", "all", "none", or a comma-separated list."""
    if text == "default":
        return list(DEFAULT_KINDS)
    if text == "all":
        kinds = list(NEW_KINDS)
    elif text in ("none", ""):
        kinds = []
    else:
        kinds = text.split(",")
    bad = [k for k in kinds if k not in NEW_KINDS]
    if bad:
        sys.exit("model.py: unknown kind(s) %s (known: %s)"
                 % (",".join(bad), ",".join(NEW_KINDS)))
    if "mknod_dev" in kinds and os.geteuid() != 0:
        print("model: not root: mknod_dev left out")
        kinds.remove("mknod_dev")
    return kinds


def run(m, a):
    """Steps, then close everything and compare; returns the step."""
    start = time.monotonic()
    step = 0
    m.compare_all()
    for step in range(1, a.steps + 1):
        m.steps_done = step - 1
        m.step()
        if step % a.full_every == 0:
            m.compare_all()
        if a.time_limit and time.monotonic() - start > a.time_limit:
            print("model: time limit reached after %d steps" % step)
            break
        if step % 500 == 0:
            print("model: step %d (%.0fs)" % (step, time.monotonic() - start),
                  flush=True)
    m.steps_done = step
    step += 1
    m.close_all()
    m.compare_all()
    print("model: ok, seed %d, %d steps in %.1fs; ops: %s"
          % (a.seed, step - 1, time.monotonic() - start,
             ", ".join("%s=%d" % kv for kv in sorted(m.counts.items()))))
    return step


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="tree under test (mount)")
    ap.add_argument("--b", required=True, help="model (plain directory)")
    ap.add_argument("--seed", type=int,
                    default=int.from_bytes(os.urandom(4), "big"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--chains", default="c1,c2")
    ap.add_argument("--full-every", type=int, default=1)
    ap.add_argument("--skip-ops", default="",
                    help="comma-separated operations never to pick")
    ap.add_argument("--kinds", default="default",
                    help="operation kinds added for issue 7: default (%s), "
                    "all, none, or a list of %s"
                    % (",".join(DEFAULT_KINDS) or "none", ",".join(NEW_KINDS)))
    ap.add_argument("--time-limit", type=float, default=0,
                    help="stop early (successfully) after this many seconds")
    a = ap.parse_args()
    chains = a.chains.split(",")
    kinds = parse_kinds(a.kinds)
    kinds_arg = ",".join(kinds) or "none"
    print("model: seed %d, %d steps, chains %s, kinds %s (replay: --seed %d "
          "--kinds %s)" % (a.seed, a.steps, chains, kinds_arg, a.seed,
                           kinds_arg), flush=True)
    os.umask(0o022)     # the same start on every machine
    for c in chains:
        for root in (a.a, a.b):
            if not os.path.isdir(os.path.join(root, c)):
                os.mkdir(os.path.join(root, c))
    m = Model(a.a, a.b, a.seed, chains, kinds=kinds)
    m.skip_ops = tuple(filter(None, a.skip_ops.split(",")))
    m.full_every = a.full_every
    step = 0
    try:
        step = run(m, a)
    except Mismatch as e:
        step = m.steps_done + 1
        print("FAIL model: seed %d, kinds %s, step %d, op %s"
              % (a.seed, kinds_arg, step, m.history[-1:]))
        print(e)
        print("last operations:")
        for h in m.history[-15:]:
            print("   ", h)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
