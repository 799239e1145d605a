#!/bin/bash
# kill -9 of the daemon with writers in every state; then the next mount
# recovers (fs/recover.h), with a log line per file, and nothing hidden
# stays in the store.
#  a. a new file: fsync at 1 MiB + 500, 100 bytes more (no chunk done):
#     reads exactly what it held at the fsync, and is a finished v2 file.
#  b. a new file: fsync at 3 MiB + 1000, then 500 KiB more (complete chunks
#     written after the fsync): reads its complete chunks, a prefix of
#     what was written and at least what was fsync'd, then EIO.
#  c. a rewrite of an existing file (overwrite in the middle), no fsync:
#     the old version, its temporary removed.
#  d. a rewrite with an fsync (the temporary renamed in place then): what
#     it held at the fsync.
#  e. a new file written with a close (flush) in the middle by a child
#     process, then more: it stays a file written in place (no
#     temporary in the store while it is written).
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
mkdata "$T/data" $((4 * 1048576))
mkdata "$T/old" 300000
cp "$T/old" "$MNT/c1/c"
cp "$T/old" "$MNT/c1/d"

# writer FILE FLAG STEPS...: each step "w N" (write the next N bytes of
# $T/data at the current offset), "s" (fsync), "o OFF N" (overwrite N
# bytes at OFF from $T/data); then touch FLAG and hold the file open.
writer() {
	"$PY" - "$@" <<'EOF' &
import os, sys, time
path, flag, steps = sys.argv[1], sys.argv[2], sys.argv[3:]
data = open(os.environ["DATA"], "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
pos, i = 0, 0
while i < len(steps):
    if steps[i] == "w":
        n = int(steps[i + 1]); os.pwrite(fd, data[pos:pos + n], pos)
        pos += n; i += 2
    elif steps[i] == "s":
        os.fsync(fd); i += 1
    else:
        off, n = int(steps[i + 1]), int(steps[i + 2])
        os.pwrite(fd, data[off:off + n], off); i += 3
open(flag, "w").close()
time.sleep(300)
EOF
}
export DATA=$T/data
writer "$MNT/c1/a" "$T/fa" w $((1048576 + 500)) s w 100
writer "$MNT/c1/b" "$T/fb" w $((3 * 1048576 + 1000)) s w 512000
writer "$MNT/c1/c" "$T/fc" o 100000 70000
writer "$MNT/c1/d" "$T/fd" o 100000 70000 s
# e: a child closes its copy of the fd (a flush) between two writes
( dd if="$T/data" bs=1M count=1 status=none && sleep 0.5 &&
	dd if="$T/data" bs=1M skip=1 count=1 status=none && touch "$T/fe" &&
	exec sleep 300 ) >"$MNT/c1/e" &
for f in fa fb fc fd fe; do
	wait_for test -e "$T/$f" || fail "writer $f did not get going"
done
ls -A "$STORE/c1" | grep -q "^\.kmsfs-tmp-[0-9a-f]*$" && {
	# c has a temporary (a rewrite); e must not
	n=$(ls -A "$STORE/c1" | grep -c "^\.kmsfs-tmp-[0-9a-f]*$")
	[[ $n -eq 1 ]] || fail "$n temporaries while writing (only c's expected)"
}
kill9 "$MNT"
kill $(jobs -p) 2>/dev/null || true
wait 2>/dev/null || true

# verify (which never writes) names what the next mount will finish
rc=0
"$KMSFS_BIN" verify "${KEYARGS[@]}" "$STORE" --all >"$T/verify" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "verify after kill -9: exit $rc, not 1: $(tail -n 3 "$T/verify")"
grep -q "c1/a.*unfinished.*mount the store once" "$T/verify" ||
	fail "verify does not name a as unfinished: $(head -n 5 "$T/verify")"
grep -q "journal-.*journal of an interrupted write" "$T/verify" ||
	fail "verify does not name a journal: $(head -n 5 "$T/verify")"

kmount "$STORE" "$MNT"
# a: what it held at the fsync
head -c $((1048576 + 500)) "$T/data" >"$T/a"
assert_cmp "$MNT/c1/a" "$T/a" "a (fsync'd, 100 bytes more)"
# b: complete chunks, at least the fsync'd part, then EIO
rc=0
cat "$MNT/c1/b" >"$T/got" 2>"$T/err" || rc=$?
n=$(stat -c %s "$T/got")
((rc != 0)) && grep -q "Input/output error" "$T/err" ||
	fail "b: expected EIO at its end (rc $rc: $(cat "$T/err"))"
((n >= 3 * 1048576 + 1000)) || fail "b: only $n bytes readable, less than fsync'd"
cmp -s -n "$n" "$T/got" "$T/data" || fail "b: bytes that were never written"
# c: the old version
assert_cmp "$MNT/c1/c" "$T/old" "c (rewrite without fsync)"
# d: the new version as of its fsync
cp "$T/old" "$T/d"
dd if="$T/data" of="$T/d" bs=1 skip=100000 seek=100000 count=70000 \
	conv=notrunc status=none
assert_cmp "$MNT/c1/d" "$T/d" "d (rewrite with fsync)"
# e: both megabytes (the second after the flush)
head -c 2097152 "$T/data" >"$T/e"
assert_cmp "$MNT/c1/e" "$T/e" "e (written across a flush)"
grep -q "recovery: removed .*/c1/\.kmsfs-tmp-" "$DAEMON_LOG" ||
	fail "no log line for the removed temporary"
grep -q "recovery: /c1/a was being written" "$DAEMON_LOG" ||
	fail "no log line for the finished file a"
kumount "$MNT"

leftover=$(ls -A "$STORE/c1" | grep "^\.kmsfs-tmp-" || true)
[[ -z $leftover ]] || fail "left in the store after recovery: $leftover"
mkdir "$T/rest"
cp -a "$STORE/." "$T/rest/"
rm -f "$T/rest/c1/b"
crdb check-tree --passphrase-file "$PASS" "$T/rest" >"$T/check" ||
	fail "store after recovery: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
note ok: b reads $n bytes then EIO
