#!/bin/bash
# Local KMS mode.  keygen writes 32 random bytes with mode 0600 and prints
# an absolute file:/// URI; two keygens differ.  A store mounted with that
# URI gets KMS-mode ENCRYPTION-INFO files (no salt, exactly one map entry
# with a 32-byte key = SHA-256 of the master key ID, a wrapped blob that
# differs per chain and does not contain the data key in the clear), the
# files survive a remount, stay well-formed v2 with unique IVs, and the
# backing store holds no plaintext.
. "$(dirname "$0")/lib.sh"

setup_kms
[[ $KMS_URI == file:///* ]] || fail "keygen URI is not absolute: $KMS_URI"
[[ ${KMS_URI#file://} -ef $KEYFILE ]] || fail "keygen URI $KMS_URI does not name $KEYFILE"
assert_eq "$(stat -c %s "$KEYFILE")" 32 "key file size"
assert_eq "$(stat -c %a "$KEYFILE")" 600 "key file mode"
"$KMSFS_BIN" keygen "$T/k2" >/dev/null || fail "second keygen failed"
cmp -s "$KEYFILE" "$T/k2" && fail "two keygens wrote the same key"
[[ $(od -An -tx1 "$KEYFILE" | tr -d ' \n' | sed 's/00//g') != "" ]] || fail "key is all zeros"

kmount "$STORE" "$MNT"
mkdir "$MNT/c1" "$MNT/c2"
MARK="kms-marker-$RANDOM$RANDOM$RANDOM"
for n in 0 100 65536 200000; do
	{ echo "$MARK"; head -c "$n" /dev/urandom; } >"$T/f.$n"
	cp "$T/f.$n" "$MNT/c1/f.$n"
	cp "$T/f.$n" "$MNT/c2/f.$n"
	cp "$T/f.$n" "$MNT/r.$n"
done
kumount "$MNT"

for e in c1/ENCRYPTION-INFO c2/ENCRYPTION-INFO ENCRYPTION-INFO; do
	crdb encinfo "$STORE/$e" >"$T/ei.${e//\//_}" || fail "crdb.py cannot parse $e"
	grep -qx 'mode kms' "$T/ei.${e//\//_}" || fail "$e is not KMS mode: $(head -n1 "$T/ei.${e//\//_}")"
	assert_eq "$(grep -c '^kms ' "$T/ei.${e//\//_}")" 1 "map entries in $e"
	key=$(awk '/^kms /{print $2}' "$T/ei.${e//\//_}")
	assert_eq "${#key}" 64 "map key length (hex) in $e"
done
b1=$(awk '/^kms /{print $3}' "$T/ei.c1_ENCRYPTION-INFO")
b2=$(awk '/^kms /{print $3}' "$T/ei.c2_ENCRYPTION-INFO")
k1=$(awk '/^kms /{print $2}' "$T/ei.c1_ENCRYPTION-INFO")
k2=$(awk '/^kms /{print $2}' "$T/ei.c2_ENCRYPTION-INFO")
[[ $b1 != "$b2" ]] || fail "two chains have the same wrapped data key"
assert_eq "$k1" "$k2" "map key (master key id hash) of the same KMS in two chains"
[[ ${#b1} -ge 64 ]] || fail "wrapped data key is only $((${#b1} / 2)) bytes"
crdb check-tree --structure-only "$STORE" >"$T/check" ||
	fail "backing store: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
crdb ivs --unique "$STORE" >/dev/null 2>"$T/ivs" ||
	fail "IVs not unique: $(head -n 3 "$T/ivs" | tr '\n' ' ')"
assert_no_marker "$MARK" "$STORE"
# the wrapped blob is not the data key: if it were, it would decrypt c1
for b in "$b1" "${b1:0:64}" "${b1: -64}"; do
	[[ ${#b} -eq 64 ]] || continue
	if crdb decrypt --key-hex "$b" "$STORE/c1/f.100" -o /dev/null 2>/dev/null; then
		fail "ENCRYPTION-INFO holds the data key in the clear"
	fi
done

kmount "$STORE" "$MNT"
for n in 0 100 65536 200000; do
	for f in c1/f.$n c2/f.$n r.$n; do
		assert_cmp "$MNT/$f" "$T/f.$n" "$f after remount"
	done
done
kumount "$MNT"
note ok
