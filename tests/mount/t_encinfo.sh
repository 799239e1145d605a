#!/bin/bash
# ENCRYPTION-INFO: mkdir of a chain writes a plaintext passphrase-mode
# ENCRYPTION-INFO (bytes 12 10 + 16-byte salt, a fresh salt per chain, and
# the collection root has its own); its key decrypts the chain's files.
# Through the mount it is hidden (not listed, not found) and cannot be
# created, opened for writing, renamed onto, renamed away, linked, removed,
# or shadowed by a directory or symlink of that name; the backing bytes
# never change.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1" "$MNT/c2"
[[ -f $STORE/c1/ENCRYPTION-INFO ]] || fail "mkdir c1 wrote no $STORE/c1/ENCRYPTION-INFO"
echo "chain file" >"$MNT/c1/f"
echo "root file" >"$MNT/r"
[[ -f $STORE/ENCRYPTION-INFO ]] || fail "no collection ENCRYPTION-INFO at the store root"

for e in c1/ENCRYPTION-INFO c2/ENCRYPTION-INFO ENCRYPTION-INFO; do
	assert_eq "$(stat -c %s "$STORE/$e")" 18 "size of $e"
	assert_eq "$(xxd -p -l 2 "$STORE/$e")" 1210 "first bytes of $e"
	crdb encinfo "$STORE/$e" >"$T/ei" || fail "crdb.py cannot parse $e"
	grep -qx 'mode passphrase' "$T/ei" || fail "$e is not passphrase mode"
done
s1=$(xxd -p -s 2 "$STORE/c1/ENCRYPTION-INFO")
s2=$(xxd -p -s 2 "$STORE/c2/ENCRYPTION-INFO")
s0=$(xxd -p -s 2 "$STORE/ENCRYPTION-INFO")
[[ $s1 != "$s2" && $s1 != "$s0" && $s2 != "$s0" ]] || fail "chains share a salt"
sha256sum "$STORE/c1/ENCRYPTION-INFO" "$STORE/ENCRYPTION-INFO" >"$T/ei.sums"

# hidden
ls -a "$MNT/c1" "$MNT" >"$T/ls"
grep -q ENCRYPTION-INFO "$T/ls" && fail "ls -a shows ENCRYPTION-INFO"
assert_eq "$(fsop stat "$MNT/c1/ENCRYPTION-INFO")" ENOENT "stat c1/ENCRYPTION-INFO"
assert_eq "$(fsop stat "$MNT/ENCRYPTION-INFO")" ENOENT "stat ENCRYPTION-INFO at the root"
find "$MNT" -name 'ENCRYPTION-INFO*' >"$T/find"
[[ ! -s $T/find ]] || fail "find shows $(head -n1 "$T/find")"

# protected: every attempt must fail and leave nothing behind
refuse() { # WHAT RESULT
	[[ $2 != ok* ]] || fail "$1 succeeded"
	note "$1: $2"
}
refuse "create c1/ENCRYPTION-INFO" "$(fsop creat "$MNT/c1/ENCRYPTION-INFO")"
refuse "write c1/ENCRYPTION-INFO" "$(fsop write "$MNT/c1/ENCRYPTION-INFO" x)"
refuse "create c1/ENCRYPTION-INFO-2" "$(fsop creat "$MNT/c1/ENCRYPTION-INFO-2")"
refuse "create ENCRYPTION-INFO at the root" "$(fsop creat "$MNT/ENCRYPTION-INFO")"
refuse "rename onto c1/ENCRYPTION-INFO" "$(fsop rename "$MNT/c1/f" "$MNT/c1/ENCRYPTION-INFO")"
refuse "rename onto c1/ENCRYPTION-INFO-7" "$(fsop rename "$MNT/c1/f" "$MNT/c1/ENCRYPTION-INFO-7")"
refuse "rename c1/ENCRYPTION-INFO away" "$(fsop rename "$MNT/c1/ENCRYPTION-INFO" "$MNT/c1/x")"
refuse "link to c1/ENCRYPTION-INFO" "$(fsop link "$MNT/c1/f" "$MNT/c1/ENCRYPTION-INFO")"
refuse "link from c1/ENCRYPTION-INFO" "$(fsop link "$MNT/c1/ENCRYPTION-INFO" "$MNT/c1/y")"
refuse "unlink c1/ENCRYPTION-INFO" "$(fsop unlink "$MNT/c1/ENCRYPTION-INFO")"
refuse "unlink ENCRYPTION-INFO at the root" "$(fsop unlink "$MNT/ENCRYPTION-INFO")"
refuse "mkdir c1/ENCRYPTION-INFO-dir" "$(fsop mkdir "$MNT/c1/ENCRYPTION-INFO-dir")"
refuse "symlink c1/ENCRYPTION-INFO-3" "$(fsop symlink f "$MNT/c1/ENCRYPTION-INFO-3")"
rm -f "$MNT/c1/ENCRYPTION-INFO" 2>/dev/null || true
rm -rf "$MNT/c1/ENCRYPTION-INFO"* 2>/dev/null || true
[[ -f $MNT/c1/f ]] || fail "c1/f vanished after a refused rename"
assert_eq "$(cat "$MNT/c1/f")" "chain file" "c1/f after refused operations"
sha256sum -c --quiet "$T/ei.sums" || fail "ENCRYPTION-INFO bytes changed"
ls -A "$STORE/c1" >"$T/ls"
grep '^ENCRYPTION-INFO' "$T/ls" | grep -vx ENCRYPTION-INFO >"$T/extra" &&
	fail "new ENCRYPTION-INFO* names in the backing chain: $(tr '\n' ' ' <"$T/extra")"
kumount "$MNT"

# the chain's key (PBKDF2 over the stored salt) decrypts the chain's files
crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/c1/ENCRYPTION-INFO" \
	"$STORE/c1/f" -o "$T/dec" || fail "c1/f does not decrypt with c1's ENCRYPTION-INFO"
assert_eq "$(cat "$T/dec")" "chain file" "c1/f decrypted by crdb.py"
crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/ENCRYPTION-INFO" \
	"$STORE/r" -o "$T/dec" || fail "root file does not decrypt with the root ENCRYPTION-INFO"
assert_eq "$(cat "$T/dec")" "root file" "root file decrypted by crdb.py"
sha256sum -c --quiet "$T/ei.sums" || fail "ENCRYPTION-INFO bytes changed by unmount"
note ok
