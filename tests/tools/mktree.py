#!/usr/bin/python3
"""mktree.py - a deterministic tree of many small files, for scale tests.

  mktree.py DIR N [--per-dir K]

Makes N regular files under DIR (created if missing) in directories of
at most K files (default 1000), two levels deep (d0000/d0000/f000000).
File i holds i % 301 bytes derived from i (so sizes 0..300, some empty),
every 97th file also gets a symlink beside it.  Same N, same tree: no
randomness.  Prints the number of directories, files and symlinks.
"""

import argparse
import os


def content(i):
    n = i % 301
    seed = ("%d:" % i).encode()
    return (seed * (n // len(seed) + 1))[:n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("n", type=int)
    ap.add_argument("--per-dir", type=int, default=1000)
    a = ap.parse_args()
    dirs = files = links = 0
    cur = None
    for i in range(a.n):
        d = i // a.per_dir
        if d != cur:
            cur = d
            path = os.path.join(a.dir, "d%04d" % (d // 100), "d%04d" % (d % 100))
            os.makedirs(path, exist_ok=True)
            dirs += 1
        name = os.path.join(path, "f%06d" % i)
        with open(name, "wb") as f:
            f.write(content(i))
        files += 1
        if i % 97 == 0:
            os.symlink("f%06d" % i, name + ".lnk")
            links += 1
    print("dirs %d files %d symlinks %d" % (dirs, files, links))


if __name__ == "__main__":
    main()
