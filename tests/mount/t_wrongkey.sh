#!/bin/bash
# Mounting with the wrong key fails cleanly: a wrong passphrase, a
# different local master key, or a KMS for a passphrase store all make
# `kmsfs mount` (foreground and daemonizing) exit 1 with a message, leave
# nothing mounted and no daemon running, and change nothing in the store;
# the right key still works afterwards.
. "$(dirname "$0")/lib.sh"

# --- passphrase store
setup_passphrase "the right passphrase"
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
echo "chain data" >"$MNT/c1/f"
echo "root data" >"$MNT/r"
kumount "$MNT"
snap() { (cd "$1" && find . -type f -exec sha256sum {} + | sort); }
snap "$STORE" >"$T/before"

printf 'the wrong passphrase\n' >"$T/wrongpass"
chmod 600 "$T/wrongpass"
setup_kms   # a key the passphrase store has never seen

expect_refused() { # WHAT args...
	local what=$1
	shift
	assert_status 1 "$what" timeout 60 "$KMSFS_BIN" mount "$@"
	[[ -s $T/err ]] || fail "$what: exit 1 but no message"
	grep -qiE 'key|passphrase|decrypt|unlock' "$T/err" ||
		fail "$what: message does not say what is wrong: $(head -n 2 "$T/err")"
	note "$what: $(head -n 1 "$T/err")"
	assert_not_mounted "$MNT" "$what: $MNT is mounted"
	[[ -z $(find_daemon_pid "$MNT") ]] || fail "$what: a kmsfs daemon is still running"
}
expect_refused "wrong passphrase (-f)" -f --passphrase-file "$T/wrongpass" "$STORE" "$MNT"
expect_refused "wrong passphrase (daemon)" --passphrase-file "$T/wrongpass" "$STORE" "$MNT"
expect_refused "KMS key on a passphrase store" -f --kms "$KMS_URI" "$STORE" "$MNT"
snap "$STORE" >"$T/after"
diff "$T/before" "$T/after" >/dev/null || fail "failed mounts changed the store"

KEYARGS=(--passphrase-file "$PASS")
kmount "$STORE" "$MNT"
assert_eq "$(cat "$MNT/c1/f")" "chain data" "right passphrase after failed attempts"
kumount "$MNT"

# --- local KMS store
STORE2=$T/store2
mkdir "$STORE2"
KEYARGS=(--kms "$KMS_URI")
kmount "$STORE2" "$MNT"
mkdir "$MNT/c1"
echo "kms chain data" >"$MNT/c1/f"
echo "kms root data" >"$MNT/r"
kumount "$MNT"
snap "$STORE2" >"$T/before"
OTHER=$("$KMSFS_BIN" keygen "$T/other.key" | grep -o 'file:///[^[:space:]]*' | head -n1)
[[ -n $OTHER ]] || fail "keygen of a second key failed"
expect_refused "other master key (-f)" -f --kms "$OTHER" "$STORE2" "$MNT"
expect_refused "other master key (daemon)" --kms "$OTHER" "$STORE2" "$MNT"
expect_refused "passphrase on a KMS store" -f --passphrase-file "$T/wrongpass" "$STORE2" "$MNT"
snap "$STORE2" >"$T/after"
diff "$T/before" "$T/after" >/dev/null || fail "failed mounts changed the KMS store"
kmount "$STORE2" "$MNT"
assert_eq "$(cat "$MNT/c1/f")" "kms chain data" "right key after failed attempts"
kumount "$MNT"
note ok
