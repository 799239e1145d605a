#!/bin/bash
# No plaintext reaches the backing store: a marker string written through
# the mount in many ways (cp, small writes, appends, in-place dd across a
# chunk boundary, O_TRUNC rewrite, renamed and hard-linked files, a 3 MiB
# file full of it, at the root and in two chains) is readable through the
# mount but never found by grep -r in STORE, neither while mounted (after
# sync) nor after unmounting.  grep is first shown to find it in a copy.
. "$(dirname "$0")/lib.sh"

MARK="kmsfs-marker-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')-plaintext"
setup_passphrase
kmount "$STORE" "$MNT"
mkdir -p "$MNT/c1/d" "$MNT/c2"
for ((i = 0; i < 50000; i++)); do echo "$i $MARK"; done >"$T/full"
grep -q -F -- "$MARK" "$T/full" || fail "grep cannot find the marker in a plain file"

cp "$T/full" "$MNT/c1/full"
echo "$MARK" >"$MNT/c2/small"
echo "$MARK" >"$MNT/rootfile"
mkdata "$T/pad" 200000
cp "$T/pad" "$MNT/c1/d/patched"
printf '%s' "$MARK" | dd of="$MNT/c1/d/patched" bs=1 seek=$((CHUNK - 10)) conv=notrunc status=none
cp "$T/pad" "$MNT/c1/appended"
echo "$MARK" >>"$MNT/c1/appended"
echo "first version" >"$MNT/c2/rewritten"
echo "$MARK" >"$MNT/c2/rewritten"
echo "$MARK" >"$MNT/c1/tmpname"
mv "$MNT/c1/tmpname" "$MNT/c1/d/renamed"
ln "$MNT/c1/d/renamed" "$MNT/c1/hardlink"
exec 3>"$MNT/c1/openfile"
echo "$MARK" >&3
sync
for f in c1/full c2/small rootfile c1/d/patched c1/appended c2/rewritten \
	c1/d/renamed c1/hardlink; do
	grep -q -F -- "$MARK" "$MNT/$f" || fail "marker not readable through the mount in $f"
done
exec 3>&-
sync
assert_no_marker "$MARK" "$STORE"
kumount "$MNT"
assert_no_marker "$MARK" "$STORE"
grep -r -a -l -F -- "${MARK:0:20}" "$STORE" >/dev/null && fail "part of the marker found in STORE"
note ok
