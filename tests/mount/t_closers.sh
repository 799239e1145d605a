#!/bin/bash
# One open file written by several processes in turn, each closing it
# when it exits: the shell's `{ a; b; c; } >file`, or
# `for db in ...; do pg_dump "$db"; done >all.sql`.  Each exit is a close
# (FUSE flush) of a file that stays open.  Finishing the file at each of
# them made the next writer rewrite all of it (a new version, so a new IV
# in the header, after each writer: quadratic in the file's size); now
# only the second writer rewrites what the first one wrote, and the last
# close finishes the file.  The IVs are counted, not inode numbers (a
# freed inode's number comes back).  The content is exact through the
# mount and, after unmount, by crdb.py.
. "$(dirname "$0")/lib.sh"

N=6
setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
for i in $(seq 1 $N); do mkdata "$T/part$i" $((3 * 1024 * 1024 + i * 1000)); done
for i in $(seq 1 $N); do cat "$T/part$i"; done >"$T/all"

{
	for i in $(seq 1 $N); do
		cat "$T/part$i" || exit 1
		xxd -p -s 8 -l 12 "$STORE/c1/dump" >>"$T/ivs"
	done
} >"$MNT/c1/dump" || fail "a writer failed"
assert_cmp "$MNT/c1/dump" "$T/all" "the file written by $N processes in turn"
ivs=$(sort -u "$T/ivs" | wc -l)
note "versions (IVs) of the backing file seen after each of the $N writers: $ivs"
[[ $ivs -le 2 ]] ||
	fail "the file was rewritten $((ivs - 1)) times for $N writers (once at most)"

# A dup closed between writes of one process is the same case.
"$PY" - "$MNT/c1/dup" "$T/all" <<'PYEOF' || fail "dup writer failed"
import os, sys
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
step = len(data) // 4 + 1
for i in range(0, len(data), step):
    d = os.dup(fd)
    os.write(d, data[i:i + step])
    os.close(d)
os.close(fd)
PYEOF
assert_cmp "$MNT/c1/dup" "$T/all" "the file written through closed dups"
kumount "$MNT"

for f in dump dup; do
	assert_crdb_plain "c1/$f" "$T/all"
	assert_cipher_size "$STORE/c1/$f" "$(stat -c %s "$T/all")"
done
ls -A "$STORE/c1" | grep -q "^\.kmsfs-tmp-" && fail "a journal or temporary was left"
note ok
