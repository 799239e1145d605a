#!/bin/bash
# Files that kmsfs did not write, dropped into the backing store: a
# plaintext file (in a chain and at the root), a 7-byte "encrypt", a bare
# header, a header followed by garbage, an unknown version, a valid v2 file
# under another key: every read gives EIO and never shows their bytes.  A
# v2 file written by the independent encoder under the chain's key reads
# correctly with its plaintext size (files CockroachDB writes are
# readable), and a v1 file reads correctly or fails, never garbage.  A
# chain directory created behind kmsfs's back (no ENCRYPTION-INFO) serves
# nothing.  Reading never changes a byte of the backing store.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
echo "written by kmsfs" >"$MNT/c1/real"
echo "written by kmsfs" >"$MNT/rootreal"     # the root gets its key too
kumount "$MNT"

C=$STORE/c1
printf 'hello plaintext world, this is not encrypted\n' >"$C/plain.txt"
printf 'hello plaintext world at the root\n' >"$STORE/rootplain.txt"
printf 'encrypt' >"$C/seven"
{ printf 'encrypt\002'; head -c 12 /dev/zero; } >"$C/header-only"
{ printf 'encrypt\002'; head -c 5000 /dev/urandom; } >"$C/garbage-v2"
{ printf 'encrypt\011'; head -c 12 /dev/zero; head -c 100 /dev/urandom; } >"$C/badversion"
mkdata "$T/payload" 100000
crdb encrypt --key-hex "$(head -c 32 /dev/urandom | xxd -p -c 64)" \
	"$T/payload" -o "$C/otherkey"
KEY=$(crdb chain-key --passphrase-file "$PASS" --encinfo "$C/ENCRYPTION-INFO")
crdb encrypt --key-hex "$KEY" "$T/payload" -o "$C/foreign-v2"
crdb encrypt --key-hex "$KEY" --v1 "$T/payload" -o "$C/foreign-v1"

# a chain directory made behind kmsfs's back: it has no key at all
mkdir "$STORE/nokey"
printf 'plaintext in a chain without ENCRYPTION-INFO\n' >"$STORE/nokey/plain.txt"
(cd "$STORE" && find . -type f -exec sha256sum {} + | sort) >"$T/sums"

kmount "$STORE" "$MNT"
for f in c1/plain.txt rootplain.txt c1/seven c1/header-only c1/garbage-v2 \
	c1/badversion c1/otherkey; do
	rc=0
	cat "$MNT/$f" >"$T/got" 2>"$T/err" || rc=$?
	[[ $rc -ne 0 ]] || fail "reading foreign file $f succeeded"
	grep -q 'Input/output error' "$T/err" ||
		fail "reading foreign file $f: expected EIO, got: $(cat "$T/err")"
	[[ ! -s $T/got ]] || fail "reading foreign file $f returned $(stat -c %s "$T/got") bytes"
done
assert_eq "$(stat -c %s "$MNT/c1/foreign-v2")" 100000 "stat size of a v2 file written by crdb.py"
assert_cmp "$MNT/c1/foreign-v2" "$T/payload" "v2 file written by crdb.py under the chain key"
rc=0
cat "$MNT/c1/foreign-v1" >"$T/got" 2>"$T/err" || rc=$?
if [[ $rc -eq 0 ]]; then
	assert_cmp "$T/got" "$T/payload" "v1 file read through the mount"
else
	[[ ! -s $T/got ]] || cmp -s -n "$(stat -c %s "$T/got")" "$T/got" "$T/payload" ||
		fail "v1 file read failed after returning wrong bytes"
	note "v1 files are not readable through the mount (allowed)"
fi
assert_eq "$(cat "$MNT/c1/real")" "written by kmsfs" "kmsfs's own file next to foreign ones"
assert_eq "$(cat "$MNT/rootreal")" "written by kmsfs" "kmsfs's own root file next to foreign ones"
rc=0
cat "$MNT/nokey/plain.txt" >"$T/got" 2>"$T/err" || rc=$?
[[ $rc -ne 0 && ! -s $T/got ]] || fail "plaintext in a chain without a key was served"
note "chain without a key: $(cat "$T/err")"
kumount "$MNT"
(cd "$STORE" && find . -type f -exec sha256sum {} + | sort) >"$T/sums2"
diff "$T/sums" "$T/sums2" >"$T/diff" ||
	fail "reading foreign files changed the backing store: $(head -n 4 "$T/diff" | tr '\n' ' ')"
note ok
