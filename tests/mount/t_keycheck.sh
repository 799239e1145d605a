#!/bin/bash
# What the store says about a key, through the real mount (issue 8):
#  item 5: a store whose only chain holds nothing but ENCRYPTION-INFO
#     cannot check a passphrase: a wrong one mounts (reading is harmless)
#     but the mount says so, creates no chain and writes nothing;
#  item 6: without the root's key-check file, the right key still opens
#     the root's files (they alone decide, not the chains below);
#  item 7: a chain directory that lost its ENCRYPTION-INFO is reported at
#     mount time (and by verify), its files give EIO, nothing is written
#     there (no new key), and it reads again once ENCRYPTION-INFO is put
#     back.
. "$(dirname "$0")/lib.sh"

logmark() { LOGSTART=$(($(wc -l <"$DAEMON_LOG") + 1)); }
logsince() { tail -n +"$LOGSTART" "$DAEMON_LOG"; }

setup_passphrase "the right passphrase"
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
echo "chain data" >"$MNT/c1/f"
echo "root data" >"$MNT/r"
kumount "$MNT"

# ------------------------------------------------------------ item 6
mv "$STORE/.kmsfs-keycheck" "$T/root.keycheck"
kmount "$STORE" "$MNT"
assert_eq "$(cat "$MNT/r" 2>&1)" "root data" "6: root file without the root's key-check file"
kumount "$MNT"
mv "$T/root.keycheck" "$STORE/.kmsfs-keycheck"

# ------------------------------------------------------------ item 7
mv "$STORE/c1/ENCRYPTION-INFO" "$T/c1.ei"
# the root's own mtime moves with the store lock (.kmsfs-lock) of each mount
snap() { (cd "$STORE" && find . -mindepth 1 -exec stat -c '%n %s %Y' {} + | sort); }
snap >"$T/before"
logmark
kmount "$STORE" "$MNT"
logsince | grep -q 'chain c1 holds encrypted files but no ENCRYPTION-INFO' ||
	fail "7: the mount did not report c1: $(logsince | head -n 5)"
assert_eq "$(fsop read "$MNT/c1/f")" EIO "7: reading a file of c1"
assert_eq "$(fsop write "$MNT/c1/new" x)" EIO "7: a new file in c1"
assert_eq "$(fsop write "$MNT/c1/f" x)" EIO "7: writing c1/f"
assert_eq "$(cat "$MNT/r")" "root data" "7: the root's files"
kumount "$MNT"
snap >"$T/after"
diff "$T/before" "$T/after" >"$T/diff" || fail "7: the store changed: $(head -n 4 "$T/diff")"
assert_eq "$(logsince | grep -c 'no ENCRYPTION-INFO')" 1 "7: lines reporting c1"
"$KMSFS_BIN" verify "${KEYARGS[@]}" "$STORE" --all >"$T/verify" 2>&1 || true
grep -q 'holds files but no ENCRYPTION-INFO' "$T/verify" ||
	fail "7: kmsfs verify does not report c1: $(head -n 20 "$T/verify")"
mv "$T/c1.ei" "$STORE/c1/ENCRYPTION-INFO"
kmount "$STORE" "$MNT"
assert_eq "$(cat "$MNT/c1/f")" "chain data" "7: c1 with its ENCRYPTION-INFO back"
kumount "$MNT"

# ------------------------------------------------------------ item 5
STORE2=$T/store2
mkdir -p "$STORE2/c1"
cp "$STORE/c1/ENCRYPTION-INFO" "$STORE2/c1/"
printf 'a wrong passphrase\n' >"$T/wrong"
chmod 600 "$T/wrong"
KEYARGS=(--passphrase-file "$T/wrong")
logmark
kmount "$STORE2" "$MNT"
logsince | grep -q 'cannot check the passphrase' ||
	fail "5: the mount did not say it cannot check the key: $(logsince | head -n 3)"
if mkdir "$MNT/c2" 2>"$T/err"; then
	fail "5: a new chain was created under an unchecked passphrase"
fi
assert_eq "$(fsop write "$MNT/c1/f" x)" EACCES "5: writing into the unchecked chain"
assert_eq "$(fsop write "$MNT/rootfile" x)" EACCES "5: a file at the root"
kumount "$MNT"
assert_eq "$(cd "$STORE2" && find . | sort | tr '\n' ' ')" ". ./c1 ./c1/ENCRYPTION-INFO " \
	"5: the store after the refused writes"
note ok
