#!/bin/bash
# Times set on an open file survive its close (tar, cp -p/-a and rsync
# set them before or right after close, while kmsfs still writes the
# file out): after tar -x into the mount, tar -d reports nothing; cp -a
# keeps every mtime; a second rsync -a transfers nothing.  A write after
# futimens still moves the mtime (as on ext4).
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"

mkdir -p "$T/src/sub"
i=0
for size in 0 1 5000 65536 65537 200000 1048583; do
	i=$((i + 1))
	mkdata "$T/src/f$i" "$size"
	touch -d "2001-02-0$((i % 9 + 1)) 04:05:06.$((123456789 + i))" "$T/src/f$i"
	cp -p "$T/src/f$i" "$T/src/sub/g$i"
done
touch -d "2002-03-04 05:06:07.5" "$T/src/sub"
(cd "$T" && tar -cf src.tar src)

# tar -x, then tar -d
tar -C "$MNT/c1" -xf "$T/src.tar"
tar -C "$MNT/c1" -df "$T/src.tar" >"$T/diff" 2>&1 ||
	fail "tar -d: $(head -n 3 "$T/diff" | tr '\n' ' ')"
[[ ! -s $T/diff ]] || fail "tar -d: $(head -n 3 "$T/diff" | tr '\n' ' ')"

# cp -a keeps every mtime (to the nanosecond)
cp -a "$T/src" "$MNT/c1/cpa"
(cd "$T/src" && find . -printf '%P %s %T@\n' | sort) >"$T/want"
(cd "$MNT/c1/cpa" && find . -printf '%P %s %T@\n' | sort) >"$T/got"
diff "$T/want" "$T/got" >"$T/d" || fail "cp -a: $(head -n 3 "$T/d" | tr '\n' ' ')"

# a second rsync -a transfers nothing
rsync -a "$T/src/" "$MNT/c1/rs/"
rsync -a --stats "$T/src/" "$MNT/c1/rs/" >"$T/stats"
grep -q "Number of regular files transferred: 0" "$T/stats" ||
	fail "second rsync -a: $(grep 'files transferred' "$T/stats")"

# futimens, then a write: the write wins (mtime moves on)
"$PY" - "$MNT/c1/w" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x" * 70000)
os.utime(fd, ns=(10**18, 10**18))
os.write(fd, b"y")
os.close(fd)
EOF
m=$(stat -c %Y "$MNT/c1/w")
((m > 1000000000 + 100000000)) || fail "a write after futimens kept the old mtime ($m)"
# A writer's close(2) finishes the file before it returns: nothing kmsfs
# does in the directory (a journal removed) comes after, where it would
# undo the times cp -a / tar / rsync -a set on the directory next.  The
# close of a dup is a flush with the file still open: the store must
# hold the finished file then, and no journal.
"$PY" - "$MNT/c1/fl" "$STORE/c1" <<'EOF' || fail "a close(2) left the file unfinished"
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, os.urandom(200000))
os.close(os.dup(fd))
names = os.listdir(sys.argv[2])
with open(os.path.join(sys.argv[2], "fl"), "rb") as f:
    version = f.read(8)[7]
os.close(fd)
if version != 2 or any(n.startswith(".kmsfs-tmp-") for n in names):
    sys.exit("after close: header version %#x, store %s" % (version, sorted(names)))
EOF

# kmsfs's own reads of the backing file never move the atime set on it
# (with relatime the store would set it to now on the first read after an
# atime older than the mtime: pjdfstest utimensat/05.t)
head -c 100000 /dev/urandom >"$MNT/c1/at"
touch -m -d @1990000000 "$MNT/c1/at"
touch -a -d @1980000000 "$MNT/c1/at"
cat "$MNT/c1/at" >/dev/null
stat -c %s "$MNT/c1/at" >/dev/null
sleep 1.2 # past the attribute timeout: the next stat asks the daemon
a=$(stat -c %X "$MNT/c1/at")
assert_eq "$a" 1980000000 "atime after kmsfs read the file"
a=$(stat -c %X "$STORE/c1/at")
assert_eq "$a" 1980000000 "backing atime after kmsfs read the file"
kumount "$MNT"
# and on the backing store too (what a backup of the store sees)
kmount "$STORE" "$MNT"
tar -C "$MNT/c1" -df "$T/src.tar" >"$T/diff" 2>&1 ||
	fail "tar -d after remount: $(head -n 3 "$T/diff" | tr '\n' ' ')"
kumount "$MNT"
note ok
