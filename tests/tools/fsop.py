#!/usr/bin/python3
"""fsop.py - one system call, its outcome as a word, for shell tests.

Prints "ok" (plus a value for some calls) or the errno name (EXDEV, EIO,
ENOENT, ...) on stdout and exits 0 either way, so a test can write
    [ "$(fsop.py rename a b)" = EXDEV ]
without guessing at a tool's error message.

  rename SRC DST | link SRC DST | symlink TARGET PATH | unlink P | rmdir P
  mkdir P | creat P | write P TEXT | stat P (ok SIZE MODE) | read P
  pread FILE OFF LEN [-o OUT]   ok N, the bytes go to OUT
  chunks FILE EXPECTED          one line per 64 KiB chunk of EXPECTED,
      each read with a fresh fd: "i ok", "i short N" (a correct prefix),
      "i WRONG" (bytes differ: never acceptable) or "i ERRNO"
"""

import errno
import os
import sys

CHUNK = 65536


def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def pread_fresh(path, off, n):
    fd = os.open(path, os.O_RDONLY)
    try:
        out = b""
        while len(out) < n:
            b = os.pread(fd, n - len(out), off + len(out))
            if not b:
                break
            out += b
        return out
    finally:
        os.close(fd)


def chunks(path, expected):
    with open(expected, "rb") as f:
        want = f.read()
    n = max(1, -(-len(want) // CHUNK))
    for i in range(n):
        exp = want[i * CHUNK:(i + 1) * CHUNK]
        try:
            got = pread_fresh(path, i * CHUNK, CHUNK)
        except OSError as e:
            print("%d %s" % (i, ename(e)))
            continue
        if got == exp:
            print("%d ok" % i)
        elif exp.startswith(got):
            print("%d short %d" % (i, len(got)))
        else:
            print("%d WRONG" % i)


def main(argv):
    op, args = argv[1], argv[2:]
    try:
        if op == "rename":
            os.rename(args[0], args[1])
        elif op == "link":
            os.link(args[0], args[1], follow_symlinks=False)
        elif op == "symlink":
            os.symlink(args[0], args[1])
        elif op == "unlink":
            os.unlink(args[0])
        elif op == "rmdir":
            os.rmdir(args[0])
        elif op == "mkdir":
            os.mkdir(args[0])
        elif op == "creat":
            os.close(os.open(args[0], os.O_CREAT | os.O_WRONLY, 0o644))
        elif op == "write":
            fd = os.open(args[0], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            try:
                os.write(fd, args[1].encode())
            finally:
                os.close(fd)
        elif op == "stat":
            st = os.lstat(args[0])
            print("ok %d %o" % (st.st_size, st.st_mode & 0o7777))
            return 0
        elif op == "read":
            with open(args[0], "rb") as f:
                f.read()
        elif op == "pread":
            data = pread_fresh(args[0], int(args[1]), int(args[2]))
            if len(args) > 4 and args[3] == "-o":
                with open(args[4], "wb") as f:
                    f.write(data)
            print("ok %d" % len(data))
            return 0
        elif op == "chunks":
            chunks(args[0], args[1])
            return 0
        else:
            print("fsop.py: unknown op %s" % op, file=sys.stderr)
            return 2
    except OSError as e:
        print(ename(e))
        return 0
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
