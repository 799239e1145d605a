#!/bin/bash
# Inode fds under churn: the daemon may hold 256 fds (so it caches 64 idle
# ones) while, all at once, four writers rewrite the middle of their own
# file (each rewrite renames a new version over the old one and moves the
# inode's fd onto it), two processes chmod and stat those files, two
# walk and read a tree of 2,000 files (evicting and reopening fds all the
# time) and one renames files back and forth.  Fixed iteration counts, no
# timing.  Afterwards every file has its expected bytes and mode: an fd
# closed or reused under another thread would send a chmod or a write to
# the wrong file.  Under a ThreadSanitizer build (configure --enable-tsan)
# this is the race test of the fd cache.  Runs in about 20 s.
. "$(dirname "$0")/lib.sh"

LIMIT=256
REAL_BIN=$KMSFS_BIN
KMSFS_BIN=$T/kmsfs-limited
printf '#!/bin/sh\nexec prlimit --nofile=%d:%d -- "%s" "$@"\n' \
	"$LIMIT" "$LIMIT" "$REAL_BIN" >"$KMSFS_BIN"
chmod +x "$KMSFS_BIN"

"$PY" "$TOOLS/mktree.py" "$T/src" 2000 --per-dir 250 >/dev/null
setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c" "$MNT/c/hot" "$MNT/c/mv"
tar -C "$T/src" -cf - . | tar -C "$MNT/c" -xf - || fail "tar in"
mkdir "$T/hot"
for i in 0 1 2 3; do
	mkdata "$T/hot/h$i" $((200000 + i * 777))
	cp "$T/hot/h$i" "$MNT/c/hot/h$i"
	chmod 600 "$MNT/c/hot/h$i"
done
for i in $(seq 0 19); do echo "m$i" >"$MNT/c/mv/a$i"; done

# One worker: python3 - ROLE I (loops inside: a process per step would
# cost more than the step).
worker() {
	"$PY" - "$@" "$MNT/c" "$T" <<'PYEOF'
import os, sys
role, i, mnt, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
hot = ["%s/hot/h%d" % (mnt, j) for j in range(4)]
if role == "rewriter":  # 30 rewrites of 1000 bytes in chunk 1 of h<i>
    for k in range(30):
        patch = os.urandom(1000)
        for path in ("%s/hot/h%d" % (tmp, i), hot[i]):
            fd = os.open(path, os.O_WRONLY)
            os.pwrite(fd, patch, (70 + k) * 1000)
            os.close(fd)
elif role == "chmodder":  # 100 rounds of chmod + stat of every hot file
    for k in range(100):
        for path in hot:
            os.chmod(path, 0o640 if k % 2 else 0o600)
            os.stat(path)
    for path in hot:
        os.chmod(path, 0o600)
elif role == "walker":  # two walks, each stat'ing and reading every file
    for k in range(2):
        for root, dirs, files in os.walk(mnt):
            for f in files:
                p = os.path.join(root, f)
                if root.endswith("/mv"):  # the renamer's: names come and go
                    try:
                        os.lstat(p)
                    except FileNotFoundError:
                        pass
                    continue
                os.lstat(p)
                if not os.path.islink(p) and "/hot/" not in p:
                    with open(p, "rb") as fh:
                        fh.read()
elif role == "renamer":  # 100 rounds of moving 20 files away and back
    for k in range(100):
        for a, b in (("a", "b"), ("b", "a")):
            for j in range(20):
                os.rename("%s/mv/%s%d" % (mnt, a, j), "%s/mv/%s%d" % (mnt, b, j))
PYEOF
}

pids=() names=()
for i in 0 1 2 3; do
	worker rewriter "$i" &
	pids+=($!) names+=("rewriter $i")
done
for i in 0 1; do
	worker chmodder "$i" &
	pids+=($!) names+=("chmodder $i")
	worker walker "$i" &
	pids+=($!) names+=("walker $i")
done
worker renamer 0 &
pids+=($!) names+=(renamer)
for ((j = 0; j < ${#pids[@]}; j++)); do
	wait "${pids[$j]}" || fail "${names[$j]} failed"
done

check() { # WHAT
	local i
	for i in 0 1 2 3; do
		assert_cmp "$MNT/c/hot/h$i" "$T/hot/h$i" "$1: hot/h$i"
		assert_eq "$(stat -c %a "$MNT/c/hot/h$i")" 600 "$1: mode of hot/h$i"
	done
	for i in $(seq 0 19); do
		assert_eq "$(cat "$MNT/c/mv/a$i")" "m$i" "$1: mv/a$i"
	done
	(cd "$T/src" && find . -printf '%y %m %s %p\n' | sort) >"$T/want"
	(cd "$MNT/c" && find . -path ./hot -prune -o -path ./mv -prune -o \
		-printf '%y %m %s %p\n' | grep -v '^d [0-9]* [0-9]* \./\(hot\|mv\)$' |
		sort) >"$T/got"
	diff "$T/want" "$T/got" >"$T/diff" ||
		fail "$1: types, modes or sizes differ: $(head -n 4 "$T/diff" | tr '\n' ' ')"
	diff -r --no-dereference -x hot -x mv "$T/src" "$MNT/c" >"$T/diff" 2>&1 ||
		fail "$1: diff -r: $(head -n 4 "$T/diff" | tr '\n' ' ')"
}
check "after the churn"
fds=$(ls "/proc/${DAEMON_PID[$MNT]}/fd" | wc -l)
note "daemon fds after the churn: $fds"
[[ $fds -lt 100 ]] || fail "the daemon still holds $fds fds"
kumount "$MNT"
kmount "$STORE" "$MNT"
check "after remount"
kumount "$MNT"
note ok
