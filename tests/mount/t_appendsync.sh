#!/bin/bash
# Appends after fsync cost what they append (a WAL writer, a database's
# own backup writer): 2,000 x (4 KiB append + fsync) through the mount
# and on the plain disk underneath.  The file is never re-encrypted (the
# backing inode and IV stay the same, no temporary appears), nothing is
# sealed twice, and after close the backing file is a CockroachDB v2 file
# with exactly the data (crdb.py) and no journal is left.  Times are
# printed; the test fails only past 10x the plain disk, far from the
# ~50x a whole-file rewrite per fsync costs (3x is the goal; see README).
. "$(dirname "$0")/lib.sh"

N=${KMSFS_APPENDS:-2000}
setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
mkdata "$T/data" $((N * 4096))

appender() { # FILE -> seconds; stops half-way for $T/half, waits for $T/go
	"$PY" - "$1" "$N" "$T/data" "$T/half" "$T/go" <<'EOF'
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
src, half, go = sys.argv[3:6]
data = open(src, "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
t, paused = time.time(), 0.0
for i in range(n):
    if i == n // 2:
        p = time.time()
        open(half, "w").close()
        while not os.path.exists(go):
            time.sleep(0.01)
        paused += time.time() - p
    os.write(fd, data[i * 4096:(i + 1) * 4096])
    os.fsync(fd)
os.close(fd)
print("%.2f" % (time.time() - t - paused))
EOF
}

mkdir "$T/plain"
plain=$("$PY" - "$T/plain/wal" "$N" "$T/data" <<'EOF'
import os, sys, time
path, n, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(src, "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
t = time.time()
for i in range(n):
    os.write(fd, data[i * 4096:(i + 1) * 4096])
    os.fsync(fd)
os.close(fd)
print("%.2f" % (time.time() - t))
EOF
)

appender "$MNT/c1/wal" >"$T/secs" &
apid=$!
wait_for test -e "$T/half" || fail "the appender did not get half-way"
ino1=$(stat -c %i "$STORE/c1/wal")
iv1=$(xxd -p -s 8 -l 12 "$STORE/c1/wal")
temps=$(ls -A "$STORE/c1" | grep "^\.kmsfs-tmp-" | grep -vc journal || true)
[[ $temps -eq 0 ]] || fail "a temporary appeared: the file is being rewritten"
touch "$T/go"
wait "$apid" || fail "the appender failed"
secs=$(cat "$T/secs")
ino2=$(stat -c %i "$STORE/c1/wal")
iv2=$(xxd -p -s 8 -l 12 "$STORE/c1/wal")
[[ $ino1 == "$ino2" && $iv1 == "$iv2" ]] ||
	fail "the file was re-encrypted (inode $ino1 -> $ino2, IV $iv1 -> $iv2)"
assert_cmp "$MNT/c1/wal" "$T/data" "the appended file through the mount"
kumount "$MNT"

assert_crdb_plain "c1/wal" "$T/data"
assert_cipher_size "$STORE/c1/wal" $((N * 4096))
ls -A "$STORE/c1" | grep -q "^\.kmsfs-tmp-" && fail "a journal or temporary was left"
note "$N x (4 KiB append + fsync): kmsfs ${secs}s, plain disk ${plain}s"
"$PY" -c "import sys; sys.exit(0 if float('$secs') <= 10 * max(float('$plain'), 0.5) else 1)" ||
	fail "appends after fsync took ${secs}s, over 10x the plain disk (${plain}s)"
note ok
