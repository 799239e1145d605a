#!/bin/bash
# More files than the daemon may hold fds: the daemon runs with an open
# file limit of 512 (soft and hard) and the mount gets 5,000 files, by tar
# and by one process creating files; then ls -lR, find and diff -r must
# all work and the backing store must hold no empty file (a failed create
# must not leave one).  Then the limit is really hit: one process holds
# 600 files of the mount open at once; the opens beyond what the daemon
# can serve fail with EMFILE, the daemon logs it, and once they are
# closed the mount works as before.  Then the same without file handles.
# Runs in about 30 s.
. "$(dirname "$0")/lib.sh"

LIMIT=512
N=5000
REAL_BIN=$KMSFS_BIN
KMSFS_BIN=$T/kmsfs-limited
printf '#!/bin/sh\nexec prlimit --nofile=%d:%d -- "%s" "$@"\n' \
	"$LIMIT" "$LIMIT" "$REAL_BIN" >"$KMSFS_BIN"
chmod +x "$KMSFS_BIN"

tdiff() { # A B WHAT
	diff -r --no-dereference "$1" "$2" >"$T/diff" 2>&1 ||
		fail "$3: diff -r differs: $(head -n 5 "$T/diff" | tr '\n' ' ')"
}

"$PY" "$TOOLS/mktree.py" "$T/src" "$N" --per-dir 700 >/dev/null
setup_passphrase
kmount "$STORE" "$MNT"
pid=${DAEMON_PID[$MNT]}
assert_eq "$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")" \
	"$LIMIT" "the daemon's open file limit"
mkdir "$MNT/c"

tar -C "$T/src" -cf - . | tar -C "$MNT/c" -xf - 2>"$T/tar.err" ||
	fail "tar of $N files into the mount: $(head -n 3 "$T/tar.err" | tr '\n' ' ')"
"$PY" - "$MNT/c/flat" "$N" <<'PYEOF' || fail "creating $N files in one directory failed"
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    with open(os.path.join(d, "g%05d" % i), "w") as f:
        f.write("%d\n" % i)
PYEOF

ls -lR "$MNT/c" >"$T/ls" 2>"$T/ls.err" ||
	fail "ls -lR: $(head -n 3 "$T/ls.err" | tr '\n' ' ')"
want=$(find "$T/src" | wc -l)
got=$(find "$MNT/c" -path "$MNT/c/flat" -prune -o -print 2>"$T/find.err" | wc -l)
[[ ! -s $T/find.err ]] || fail "find: $(head -n 3 "$T/find.err" | tr '\n' ' ')"
assert_eq "$got" "$want" "entries find sees in the mount"
assert_eq "$(find "$MNT/c/flat" -type f | wc -l)" "$N" "files in c/flat"
diff -r --no-dereference -x flat "$T/src" "$MNT/c" >"$T/diff" 2>&1 ||
	fail "diff -r: $(head -n 5 "$T/diff" | tr '\n' ' ')"
assert_eq "$(cat "$MNT/c/flat/g04999")" 4999 "a file of c/flat"
fds=$(ls "/proc/$pid/fd" | wc -l)
note "daemon fds after $((2 * N)) files: $fds"
[[ $fds -lt $LIMIT ]] || fail "the daemon holds $fds fds"

# The limit reached for real: one process opens files of the mount until
# the daemon runs out of fds (each open file takes two).  Then it tries
# to create a file with exactly 0, 1, 2 and 3 fds free in the daemon
# (closing files, and holding directories open, which take one each), so
# that creates fail at every step, also after the backing file was made.
"$PY" - "$MNT/c/flat" "$pid" "$LIMIT" >"$T/hold" <<'PYEOF'
import errno, os, sys, time
d, pid, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
files, dirs, fails, made = [], [], [], 0

def free():
    return limit - len(os.listdir("/proc/%s/fd" % pid))

for i in range(600):
    try:
        files.append(os.open(os.path.join(d, "g%05d" % i), os.O_RDONLY))
    except OSError as e:
        fails.append(errno.errorcode[e.errno])
        break
opened = len(files)
for want in range(4):
    while free() < want and files:
        before = free()
        os.close(files.pop())
        for _ in range(500):  # release reaches the daemon asynchronously
            if free() > before:
                break
            time.sleep(0.01)
    while free() > want:
        dirs.append(os.open(d, os.O_RDONLY | os.O_DIRECTORY))
    try:
        fd = os.open(os.path.join(d, "new-%d" % want),
                     os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        files.append(fd)
        made += 1
    except OSError as e:
        fails.append(errno.errorcode[e.errno])
for fd in files + dirs:
    os.close(fd)
print(opened, made, " ".join(sorted(set(fails))))
PYEOF
read -r opened made errs <"$T/hold"
note "files held open at the limit: $opened; creates that worked with 0-3 fds free: $made; errors: ${errs:-none}"
[[ $opened -gt 100 && $opened -lt 600 ]] ||
	fail "$opened of 600 files could be opened with a limit of $LIMIT"
[[ $errs == EMFILE ]] || fail "opens at the limit failed with '$errs', not EMFILE"
grep -q "open file limit" "$DAEMON_LOG" ||
	fail "the daemon did not log hitting its open file limit"
assert_eq "$(ls "$MNT/c/flat" | grep -c '^new-')" "$made" \
	"names left by creates at the limit"
ls "$MNT" >/dev/null || fail "ls of the mount root after the limit was hit"
diff -r --no-dereference -x flat "$T/src" "$MNT/c" >"$T/diff" 2>&1 ||
	fail "diff -r after the limit was hit: $(head -n 5 "$T/diff" | tr '\n' ' ')"
echo new >"$MNT/c/after" || fail "create after the limit was hit"
kumount "$MNT"

empty=$(find "$STORE" -type f -size 0 | head -n 3)
[[ -z $empty ]] || fail "empty backing files: $(echo "$empty" | tr '\n' ' ')"
kmount "$STORE" "$MNT"
diff -r --no-dereference -x flat -x after "$T/src" "$MNT/c" >"$T/diff" 2>&1 ||
	fail "diff -r after remount: $(head -n 5 "$T/diff" | tr '\n' ' ')"
kumount "$MNT"

# Without CAP_DAC_READ_SEARCH there are no file handles: the daemon says
# so and keeps an fd per inode the kernel caches.  Files work as before;
# at the limit what needs a new fd fails (EMFILE, logged) until the
# kernel forgets inodes, then the mount works again.
printf '#!/bin/sh\nexec setpriv --bounding-set=-dac_read_search -- prlimit --nofile=%d:%d -- "%s" "$@"\n' \
	"$LIMIT" "$LIMIT" "$REAL_BIN" >"$KMSFS_BIN"
: >"$DAEMON_LOG"
kmount "$STORE" "$MNT"
grep -q "no usable file handles" "$DAEMON_LOG" ||
	fail "no log line about the missing file handles"
"$PY" "$TOOLS/mktree.py" "$T/small" 300 --per-dir 100 >/dev/null
mkdir "$MNT/c/small"
tar -C "$T/small" -cf - . | tar -C "$MNT/c/small" -xf - ||
	fail "tar in without file handles"
diff -r --no-dereference "$T/small" "$MNT/c/small" >"$T/diff" 2>&1 ||
	fail "diff -r without file handles: $(head -n 5 "$T/diff" | tr '\n' ' ')"
"$PY" - "$MNT/c/many" >"$T/many" <<'PYEOF'
import errno, os, sys
d = sys.argv[1]
os.mkdir(d)
errs = set()
for i in range(600):
    try:
        with open(os.path.join(d, "h%03d" % i), "w") as f:
            f.write("x")
    except OSError as e:
        errs.add(errno.errorcode[e.errno])
print(" ".join(sorted(errs)))
PYEOF
[[ $(cat "$T/many") == EMFILE ]] ||
	fail "600 creates with no file handles and 512 fds: errors '$(cat "$T/many")', expected EMFILE"
grep -q "open file limit" "$DAEMON_LOG" || fail "the limit was not logged"
sync
echo 2 >/proc/sys/vm/drop_caches # the kernel forgets unused inodes
WAIT_SECS=10 wait_for ls "$MNT/c" >/dev/null 2>&1 ||
	fail "ls of a directory after the limit was hit and the cache dropped"
assert_cmp "$MNT/c/small/d0000/d0000/f000002" "$T/small/d0000/d0000/f000002" \
	"a file read after the limit was hit"
kumount "$MNT"
note ok
