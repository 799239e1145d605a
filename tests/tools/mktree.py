#!/usr/bin/python3
"""mktree.py - write a large tree of small files, the same for a seed.

  mktree.py [--files N] [--per-dir M] [--max-size B] [--seed S] DIR

Creates ceil(N / M) directories d0000, d0001, ... under DIR with M files
f0000, f0001, ... each (the last directory holds the rest), N files in all.
Each file's size is uniform in 0..B bytes and its content a slice of a
1 MiB pseudo-random pool, both from the seed, so two runs with the same
arguments give byte-identical trees.  Prints "N files, D dirs, BYTES bytes".
Used by tests/mount/t_million.sh (1,000,000 files: ~1 min on the VM).
"""

import argparse
import os
import random
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000000)
    ap.add_argument("--per-dir", type=int, default=1000)
    ap.add_argument("--max-size", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("dir")
    a = ap.parse_args()
    if a.files < 0 or a.per_dir < 1 or a.max_size < 0:
        ap.error("bad sizes")

    rng = random.Random(a.seed)
    pool = rng.randbytes(1 << 20)
    top = len(pool) - a.max_size
    total = 0
    ndirs = (a.files + a.per_dir - 1) // a.per_dir
    os.makedirs(a.dir, exist_ok=True)
    done = 0
    for d in range(ndirs):
        sub = os.path.join(a.dir, "d%04d" % d)
        os.mkdir(sub)
        for i in range(min(a.per_dir, a.files - done)):
            size = rng.randint(0, a.max_size)
            off = rng.randint(0, top)
            fd = os.open(os.path.join(sub, "f%04d" % i),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, pool[off:off + size])
            finally:
                os.close(fd)
            total += size
            done += 1
    print("%d files, %d dirs, %d bytes" % (done, ndirs, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
