#!/bin/bash
# Nothing secret in the logs: with --log-level debug (foreground, stderr)
# a session of mkdir, writes, reads, a tampered file and a failed mount
# with a wrong passphrase must not log the passphrase, the derived chain
# keys or the local master key (hex, either case, or any 8-byte end of it).  The log must
# not be empty (debug logging is on).
. "$(dirname "$0")/lib.sh"

PASSTEXT="swordfish-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
setup_passphrase "$PASSTEXT"
kmount "$STORE" "$MNT" --log-level debug
mkdir "$MNT/c1"
mkdata "$T/d" 100000
cp "$T/d" "$MNT/c1/f"
cp "$T/d" "$MNT/rootf"
cat "$MNT/c1/f" >/dev/null
kumount "$MNT"
printf '\x00' | dd of="$STORE/c1/f" bs=1 seek=100 conv=notrunc status=none
kmount "$STORE" "$MNT" --log-level debug
cat "$MNT/c1/f" >/dev/null 2>&1 || true
kumount "$MNT"
printf 'wrong %s\n' "$PASSTEXT" >"$T/wrong"
chmod 600 "$T/wrong"
timeout 30 "$KMSFS_BIN" mount -f --log-level debug --passphrase-file "$T/wrong" \
	"$STORE" "$MNT" >>"$DAEMON_LOG" 2>&1 || true
assert_not_mounted "$MNT"

# a KMS session too
setup_kms
STORE2=$T/store2
mkdir "$STORE2"
kmount "$STORE2" "$MNT" --log-level debug
mkdir "$MNT/c1"
cp "$T/d" "$MNT/c1/f"
kumount "$MNT"

[[ $(wc -l <"$DAEMON_LOG") -ge 3 ]] || fail "debug log has almost nothing in it"
secrets=("$PASSTEXT")
for e in "$STORE/c1/ENCRYPTION-INFO" "$STORE/ENCRYPTION-INFO"; do
	secrets+=("$(crdb chain-key --passphrase-file "$PASS" --encinfo "$e")")
done
secrets+=("$(xxd -p -c 64 "$KEYFILE")")
for s in "${secrets[@]}"; do
	for v in "$s" "${s^^}" "${s:0:16}" "${s: -16}"; do
		! grep -q -i -F -- "$v" "$DAEMON_LOG" ||
			fail "the log contains a secret (${v:0:6}...): $(grep -i -F -m1 -- "$v" "$DAEMON_LOG" | head -c 200)"
	done
done
note "ok: $(wc -l <"$DAEMON_LOG") log lines checked for ${#secrets[@]} secrets"
