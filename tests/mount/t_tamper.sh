#!/bin/bash
# Tampering with backing files.  One flipped byte in chunk 2 of a 5-chunk
# file: reading chunk 2 gives EIO, chunk 0 reads fine, no read ever returns
# bytes that differ from the original, cat fails with EIO after at most the
# clean prefix, stat still shows the full size, the daemon log names the
# file and chunk 2.  A flipped IV byte fails the whole file; a flipped byte
# in the final tag fails the end.  Untouched files read fine.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
SIZE=$((4 * CHUNK + 1000))
for f in tampered.bin ivflip.bin tagflip.bin clean.bin; do
	mkdata "$T/$f" "$SIZE"
	cp "$T/$f" "$MNT/c1/$f"
done
kumount "$MNT"

flip() { # FILE OFFSET
	local b
	b=$(xxd -p -s "$2" -l 1 "$1")
	printf "\\x$(printf %02x $((0x$b ^ 0x5a)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
	[[ $(xxd -p -s "$2" -l 1 "$1") != "$b" ]] || fail "flip of $1 at $2 did not change it"
}
flip "$STORE/c1/tampered.bin" $((20 + 2 * CHUNK_CT + 100))
flip "$STORE/c1/ivflip.bin" 12
flip "$STORE/c1/tagflip.bin" $(($(stat -c %s "$STORE/c1/tagflip.bin") - 1))
# the independent reader agrees that these are broken
for f in tampered.bin ivflip.bin tagflip.bin; do
	if crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/c1/ENCRYPTION-INFO" \
		"$STORE/c1/$f" -o /dev/null 2>/dev/null; then
		fail "crdb.py accepts tampered $f: the test setup is wrong"
	fi
done

# expect_cat_eio FILE MAXGOOD: cat fails with EIO; what it printed is a
# prefix of the original no longer than MAXGOOD bytes.
expect_cat_eio() {
	local rc=0 n
	cat "$MNT/c1/$1" >"$T/got" 2>"$T/err" || rc=$?
	[[ $rc -ne 0 ]] || fail "cat of tampered $1 succeeded with $(stat -c %s "$T/got") of $SIZE bytes (stat size now $(stat -c %s "$MNT/c1/$1")): damage turned into a silent EOF"
	grep -q 'Input/output error' "$T/err" ||
		fail "cat of tampered $1: expected EIO, got: $(cat "$T/err")"
	n=$(stat -c %s "$T/got")
	cmp -s -n "$n" "$T/got" "$T/$1" || fail "cat of tampered $1 returned wrong bytes"
	[[ $n -le $2 ]] || fail "cat of tampered $1 returned $n bytes, more than the $2 before the damage"
}

kmount "$STORE" "$MNT"
expect_cat_eio tampered.bin $((2 * CHUNK))
fsop chunks "$MNT/c1/tampered.bin" "$T/tampered.bin" >"$T/chunks"
note "tampered.bin chunks: $(tr '\n' ',' <"$T/chunks")"
! grep -q WRONG "$T/chunks" || fail "a read of tampered.bin returned wrong bytes: $(tr '\n' ' ' <"$T/chunks")"
grep -qx '0 ok' "$T/chunks" || fail "chunk 0 of tampered.bin (undamaged) unreadable: $(head -n1 "$T/chunks")"
grep -qx '2 EIO' "$T/chunks" || fail "chunk 2 of tampered.bin (damaged) did not give EIO: $(sed -n 3p "$T/chunks")"
assert_eq "$(stat -c %s "$MNT/c1/tampered.bin")" "$SIZE" "stat size of tampered.bin after failed reads"
expect_cat_eio tampered.bin $((2 * CHUNK))   # again: no cached success

grep 'tampered.bin' "$DAEMON_LOG" >"$T/logl" || fail "daemon log does not name tampered.bin"
grep -qiE 'chunk[^0-9]{0,4}2([^0-9]|$)' "$T/logl" ||
	fail "daemon log line for tampered.bin does not name chunk 2: $(head -n 2 "$T/logl")"

expect_cat_eio ivflip.bin 0
assert_eq "$(fsop pread "$MNT/c1/ivflip.bin" 0 100)" EIO "first bytes of a file with a flipped IV"
expect_cat_eio tagflip.bin $((4 * CHUNK))
fsop chunks "$MNT/c1/tagflip.bin" "$T/tagflip.bin" >"$T/chunks"
! grep -q WRONG "$T/chunks" || fail "a read of tagflip.bin returned wrong bytes"
grep -qx '0 ok' "$T/chunks" || fail "chunk 0 of tagflip.bin unreadable"
grep -qx '4 EIO' "$T/chunks" || fail "final chunk of tagflip.bin did not give EIO: $(tail -n1 "$T/chunks")"

assert_cmp "$MNT/c1/clean.bin" "$T/clean.bin" "untouched file next to tampered ones"
kumount "$MNT"
note ok
