#!/bin/bash
# A CockroachDB collection (shared vectors/crdb-collection: a full backup,
# an incremental under incrementals/, metadata/latest/LATEST-*, plaintext
# BACKUP-LOCK-*, BACKUP_MANIFEST-CHECKSUM over the ciphertext) mounted with
# its passphrase: the crdb profile is detected, the mount shows exactly
# expected/ (names, sizes, contents), `kmsfs cat` shows the same, and
# `ls -lR` decrypts nothing: with every encrypted file damaged on the
# store after mounting, ls -lR still lists the right sizes, without a read
# error and without reading file contents (the daemon's rchar), while
# reading a damaged file fails.
. "$(dirname "$0")/lib.sh"

COLL=$SHARED/vectors/crdb-collection
EXP=$COLL/expected
[[ -d $COLL/collection ]] || { echo "SKIP: no vectors at $COLL"; exit 77; }
cp -a "$COLL/collection/." "$STORE/"
chmod -R u+w "$STORE"
setup_passphrase 'correct horse battery staple'

listing() { # DIR: type, size (files) and path of every entry
	(cd "$1" && find . -mindepth 1 -printf '%y %p\n' -type f -printf 's %s %p\n' | sort)
}

kmount "$STORE" "$MNT"
grep -q 'profile: crdb' "$DAEMON_LOG" || fail "mount did not print 'profile: crdb'"
diff -r "$MNT" "$EXP" >"$T/diff" 2>&1 ||
	fail "mount differs from expected/: $(head -n 5 "$T/diff" | tr '\n' ' ')"
listing "$MNT" >"$T/got"
listing "$EXP" >"$T/want"
diff "$T/got" "$T/want" >"$T/diff" ||
	fail "names or sizes differ: $(head -n 5 "$T/diff" | tr '\n' ' ')"
# plaintext files are not encrypted on the store either, checksums are not
for f in metadata/latest/LATEST-ffeeddccbbaa 2023/07/14-211406.03/BACKUP-LOCK-1234; do
	assert_cmp "$STORE/$f" "$EXP/$f" "plaintext $f on the store"
done
cmp -s "$STORE/2023/07/14-211406.03/BACKUP_MANIFEST-CHECKSUM" \
	"$EXP/2023/07/14-211406.03/BACKUP_MANIFEST-CHECKSUM" &&
	fail "the store's checksum is over the plaintext"
kumount "$MNT"

# kmsfs cat: every kind as the mount shows it
(cd "$EXP" && find . -type f -printf '%P\n') | while read -r f; do
	"$KMSFS_BIN" cat "${KEYARGS[@]}" "$STORE" "$f" >"$T/cat" 2>"$T/err" ||
		fail "kmsfs cat $f: $(head -c 300 "$T/err")"
	assert_cmp "$T/cat" "$EXP/$f" "kmsfs cat $f"
done

# ls -lR decrypts nothing: damage every encrypted file once mounted
kmount "$STORE" "$MNT"
pid=${DAEMON_PID[$MNT]}
while read -r f; do
	[[ $f == */ENCRYPTION-INFO* ]] && continue
	head -c 7 "$f" | grep -q '^encrypt' || continue
	size=$(stat -c %s "$f")
	printf '\xff' | dd of="$f" bs=1 seek=$((size - 1)) conv=notrunc status=none
done < <(find "$STORE" -type f)
before=$(awk '/^rchar/ {print $2}' "/proc/$pid/io")
ls -lR "$MNT" >"$T/ls" 2>"$T/ls.err" || fail "ls -lR failed: $(head -c 300 "$T/ls.err")"
listing "$MNT" >"$T/got"
after=$(awk '/^rchar/ {print $2}' "/proc/$pid/io")
diff "$T/got" "$T/want" >"$T/diff" ||
	fail "sizes differ once files are damaged: $(head -n 5 "$T/diff" | tr '\n' ' ')"
grep -q 300000 "$T/ls" || fail "ls -lR does not show the 300000-byte file"
# FUSE requests and 8-byte header peeks only; the store holds 370 KB
((after - before < 65536)) || fail "ls -lR made the daemon read $((after - before)) bytes"
grep -qiE 'damaged|authentication' "$DAEMON_LOG" &&
	fail "ls -lR decrypted something: $(grep -iE 'damaged|authentication' "$DAEMON_LOG" | head -n 1)"
cat "$MNT/2023/07/14-211406.03/data/812345678901234567.sst" >/dev/null 2>&1 &&
	fail "a damaged file read without error"
kumount "$MNT"
note ok
