#!/usr/bin/python3
"""model.py - seeded random operations on two trees, compared after each step.

    model.py --a MOUNT --b PLAIN [--seed S] [--steps N] [--chains c1,c2]

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


def snapshot(root, only=None):
    """{relpath: description} for the whole tree (or for the paths in
    `only`), not following symlinks."""
    out = {}

    def describe(full):
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(full))
        if stat.S_ISDIR(st.st_mode):
            return ("dir", oct(stat.S_IMODE(st.st_mode)))
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with open(full, "rb") as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
            return ("file", oct(stat.S_IMODE(st.st_mode)), st.st_size,
                    st.st_nlink, h.hexdigest()[:16])
        return ("other", stat.S_IFMT(st.st_mode))

    if only is not None:
        for rel in only:
            full = os.path.join(root, rel)
            try:
                out[rel] = describe(full)
            except FileNotFoundError:
                out[rel] = None
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = describe(full)
    return out


class Side:
    def __init__(self, root):
        self.root = root
        self.fds = {}   # handle id -> os fd

    def p(self, rel):
        return os.path.join(self.root, rel)


class Model:
    def __init__(self, a, b, seed, chains, max_handles=6):
        self.rng = random.Random(seed)
        self.sides = [Side(a), Side(b)]
        self.chains = chains
        self.max_handles = max_handles
        self.next_handle = 1
        self.handles = {}   # id -> (flags, path opened, chain)
        self.history = []
        self.counts = {}
        self.skip_ops = ()

    # ---------------------------------------------------- choosing

    def entries(self):
        """Entries of B (the model) by kind: dirs (incl. chain roots),
        files, links, each as (relpath, chain)."""
        dirs, files, links = [], [], []
        broot = self.sides[1].root
        for c in self.chains:
            dirs.append((c, c))
            for dirpath, dirnames, filenames in os.walk(os.path.join(broot, c)):
                for name in dirnames + filenames:
                    full = os.path.join(dirpath, name)
                    rel = os.path.relpath(full, broot)
                    st = os.lstat(full)
                    if stat.S_ISLNK(st.st_mode):
                        links.append((rel, c))
                    elif stat.S_ISDIR(st.st_mode):
                        dirs.append((rel, c))
                    else:
                        files.append((rel, c))
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
        """Apply fn(side) on A and B; compare outcomes and touched paths."""
        self.history.append(desc)
        self.counts[desc[0]] = self.counts.get(desc[0], 0) + 1
        ra = outcome(lambda: fn(self.sides[0]))
        rb = outcome(lambda: fn(self.sides[1]))
        if ra != rb:
            raise Mismatch("outcome differs: mount %s, model %s"
                           % (tuple(map(short, ra)), tuple(map(short, rb))))
        if touched:
            sa = snapshot(self.sides[0].root, touched)
            sb = snapshot(self.sides[1].root, touched)
            if sa != sb:
                raise Mismatch(diff_states(sa, sb))
        return rb

    def step(self):
        r = self.rng
        dirs, files, links = self.entries()
        ops = [("create", 10), ("write_at", 10), ("append", 6),
               ("truncate", 5), ("otrunc", 5), ("rename", 7), ("link", 4),
               ("unlink", 5 + (len(files) > 30) * 20), ("mkdir", 3),
               ("rmdir", 2 + (len(dirs) > 10) * 8), ("symlink", 3),
               ("chmod", 3), ("read", 5), ("open", 6), ("fd", 25)]
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

    def op_create(self, dirs, files, links):
        path, _ = self.new_name(dirs, "f")
        data = self.data()

        def fn(s):
            fd = os.open(s.p(path), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                return os.write(fd, data)
            finally:
                os.close(fd)
        self.both(("create", path, len(data)), fn, [path])

    def op_write_at(self, dirs, files, links):
        path, _ = self.pick_file(files, dirs)
        size = self.cur_size(path)
        off, data = self.offset(size), self.data()

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

        def fn(s):
            fd = os.open(s.p(path), os.O_WRONLY | os.O_TRUNC | creat, 0o640)
            try:
                return os.write(fd, data)
            finally:
                os.close(fd)
        self.both(("otrunc", path, creat, len(data)), fn, [path])

    def op_rename(self, dirs, files, links):
        r = self.rng
        movable = files + links + [d for d in dirs if d[0] not in self.chains]
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
        if not files + links:
            return self.op_create(dirs, files, links)
        src, chain = self.rng.choice(files + links)
        dst, _ = self.new_name(dirs, "f", chain)
        self.both(("link", src, dst),
                  lambda s: os.link(s.p(src), s.p(dst),
                                    follow_symlinks=False), [src, dst])

    def op_unlink(self, dirs, files, links):
        cands = files + links
        if not cands or self.rng.random() < 0.05:
            cands = [d for d in dirs if d[0] not in self.chains] or cands
        if not cands:
            return
        path, _ = self.rng.choice(cands)
        self.both(("unlink", path), lambda s: os.unlink(s.p(path)), [path])

    def op_mkdir(self, dirs, files, links):
        path, _ = self.new_name(dirs, "d")
        self.both(("mkdir", path), lambda s: os.mkdir(s.p(path), 0o755),
                  [path])

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
        if files and self.rng.random() < 0.7:
            path, _ = self.rng.choice(files)
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
        h = self.next_handle
        self.next_handle += 1

        def fn(s):
            s.fds[h] = os.open(s.p(path), flags, 0o644)
            return None
        res = self.both(("open", h, path, flags), fn, [path])
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
        sa = snapshot(self.sides[0].root)
        sb = snapshot(self.sides[1].root)
        if sa != sb:
            raise Mismatch(diff_states(sa, sb))


def diff_states(sa, sb):
    lines = ["state differs (mount vs model):"]
    for k in sorted(set(sa) | set(sb)):
        if sa.get(k, "absent") != sb.get(k, "absent"):
            lines.append("  %s: mount %s, model %s"
                         % (k, sa.get(k, "absent"), sb.get(k, "absent")))
    return "\n".join(lines[:40])


def main():
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
    ap.add_argument("--time-limit", type=float, default=0,
                    help="stop early (successfully) after this many seconds")
    a = ap.parse_args()
    chains = a.chains.split(",")
    print("model: seed %d, %d steps, chains %s (replay: --seed %d)"
          % (a.seed, a.steps, chains, a.seed), flush=True)
    for c in chains:
        for root in (a.a, a.b):
            if not os.path.isdir(os.path.join(root, c)):
                os.mkdir(os.path.join(root, c))
    m = Model(a.a, a.b, a.seed, chains)
    m.skip_ops = tuple(filter(None, a.skip_ops.split(",")))
    start = time.monotonic()
    step = 0
    try:
        m.compare_all()
        for step in range(1, a.steps + 1):
            m.step()
            if step % a.full_every == 0:
                m.compare_all()
            if a.time_limit and time.monotonic() - start > a.time_limit:
                print("model: time limit reached after %d steps" % step)
                break
            if step % 500 == 0:
                print("model: step %d (%.0fs)" % (step, time.monotonic() - start),
                      flush=True)
        step += 1
        m.close_all()
        m.compare_all()
    except Mismatch as e:
        print("FAIL model: seed %d, step %d, op %s" % (a.seed, step,
                                                       m.history[-1:]))
        print(e)
        print("last operations:")
        for h in m.history[-15:]:
            print("   ", h)
        return 1
    print("model: ok, seed %d, %d steps in %.1fs; ops: %s"
          % (a.seed, step - 1, time.monotonic() - start,
             ", ".join("%s=%d" % kv for kv in sorted(m.counts.items()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
