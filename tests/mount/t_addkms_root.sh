#!/bin/bash
# add-kms and the collection root (issue 6): files at the root use the
# root's own chain, so `add-kms STORE .` must add a KMS to it and
# `--all-chains` must cover it; otherwise root files stay EACCES once the
# old KMS is gone.  Then a mount with only the new key reads every file,
# root files included.  Local master keys: no network.
. "$(dirname "$0")/lib.sh"

setup_kms
OLD=$KMS_URI
NEW=$("$KMSFS_BIN" keygen "$T/new.key" | grep -o 'file:///[^[:space:]]*' | head -n1)
NEW2=$("$KMSFS_BIN" keygen "$T/new2.key" | grep -o 'file:///[^[:space:]]*' | head -n1)

kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
mkdata "$T/a" 70000
cp "$T/a" "$MNT/c1/a"
cp "$T/a" "$MNT/rootfile"
kumount "$MNT"
[[ -f $STORE/ENCRYPTION-INFO ]] || fail "no root ENCRYPTION-INFO after writing a root file"

# --all-chains covers the root chain and c1
"$KMSFS_BIN" add-kms "$STORE" --all-chains --old-kms "$OLD" --new-kms "$NEW" \
	>"$T/out" 2>"$T/err" || fail "add-kms --all-chains: $(cat "$T/err")"
[[ -f $STORE/ENCRYPTION-INFO-2 ]] || fail "--all-chains skipped the collection root: $(cat "$T/out")"
[[ -f $STORE/c1/ENCRYPTION-INFO-2 ]] || fail "--all-chains skipped c1: $(cat "$T/out")"

# a named root chain ('.') is accepted
"$KMSFS_BIN" add-kms "$STORE" . --old-kms "$OLD" --new-kms "$NEW2" \
	>"$T/out" 2>"$T/err" || fail "add-kms STORE . refused: $(cat "$T/err")"
[[ -f $STORE/ENCRYPTION-INFO-3 ]] || fail "add-kms . wrote no ENCRYPTION-INFO-3: $(cat "$T/out")"

# the new keys alone read everything
KEYARGS=(--kms "$NEW")
kmount "$STORE" "$MNT"
assert_cmp "$MNT/rootfile" "$T/a" "root file with the added key"
assert_cmp "$MNT/c1/a" "$T/a" "chain file with the added key"
kumount "$MNT"
KEYARGS=(--kms "$NEW2")
kmount "$STORE" "$MNT"
assert_cmp "$MNT/rootfile" "$T/a" "root file with the key added by 'add-kms .'"
kumount "$MNT"

# a path that is no chain directory is a usage error
rc=0
"$KMSFS_BIN" add-kms "$STORE" c1/sub --old-kms "$OLD" --new-kms "$NEW" 2>"$T/err" || rc=$?
assert_eq "$rc" 2 "exit status of add-kms on a path that is not a chain"
note "ok"
