#!/bin/bash
# kmsfs show (issue 9): no keys needed; lists the profile, every chain
# with its layers, file counts, plaintext and stored bytes, and each
# ENCRYPTION-INFO entry as the configured KMS (redacted) or "unknown key
# <8 hex>"; with keys, whether they unlock each chain; --json parses.
# Also the shared CockroachDB sample collection (profile crdb detected,
# LATEST, one full backup and one incremental).
. "$(dirname "$0")/lib.sh"

setup_kms
K1=$KMS_URI
K2=$("$KMSFS_BIN" keygen "$T/k2.key" | grep -o 'file:///[^[:space:]]*' | head -n1)
kmount "$STORE" "$MNT"
mkdir "$MNT/nightly"
mkdata "$T/a" 100000
cp "$T/a" "$MNT/nightly/a"
cp "$T/a" "$MNT/nightly/b"
kumount "$MNT"
"$KMSFS_BIN" add-kms "$STORE" nightly --old-kms "$K1" --new-kms "$K2" >/dev/null ||
	fail "add-kms"

"$KMSFS_BIN" show "$STORE" >"$T/out" 2>"$T/err" || fail "show without keys: $(cat "$T/err")"
grep -q '^profile: toplevel' "$T/out" || fail "no profile line: $(cat "$T/out")"
grep -Eq '^  full .* 2 +200000 +[0-9]+  nightly$' "$T/out" ||
	fail "nightly layer line wrong: $(cat "$T/out")"
grep -q 'ENCRYPTION-INFO-2: KMS' "$T/out" || fail "ENCRYPTION-INFO-2 not listed"
[[ $(grep -c 'unknown key [0-9a-f]\{8\}$' "$T/out") -ge 2 ]] ||
	fail "entries without keys should be 'unknown key <hex>': $(cat "$T/out")"
grep -q 'not tried' "$T/out" || fail "no-keys run claims to have tried keys"

"$KMSFS_BIN" show --kms "$K2" "$STORE" >"$T/out2" 2>"$T/err" || fail "show --kms: $(cat "$T/err")"
grep -qF "    $K2" "$T/out2" || fail "the configured KMS is not named: $(cat "$T/out2")"
grep -q 'unlocks with the given keys: yes' "$T/out2" || fail "K2 should unlock nightly: $(cat "$T/out2")"

"$KMSFS_BIN" show --json --kms "$K1" "$STORE" >"$T/json" || fail "show --json"
"$PY" - "$T/json" <<'PYEOF' || fail "show --json: unexpected content: $(cat "$T/json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["profile"] == "toplevel"
c = [c for c in d["chains"] if c["path"] == "nightly"][0]
assert c["layers"][0]["files"] == 2 and c["layers"][0]["plaintext_bytes"] == 200000
assert [e["name"] for e in c["encryption_info"]] == ["ENCRYPTION-INFO", "ENCRYPTION-INFO-2"]
assert c["unlocks"] is True
PYEOF

# the CockroachDB sample collection (read-only: show never writes)
COLL=$SHARED/vectors/crdb-collection/collection
"$KMSFS_BIN" show "$COLL" >"$T/crdb" || fail "show on the crdb sample"
grep -q '^profile: crdb' "$T/crdb" || fail "crdb profile not detected: $(cat "$T/crdb")"
grep -q '^latest:  2023/07/14-211406.03' "$T/crdb" || fail "LATEST not resolved"
grep -Eq '^  incremental 2023-07-14 22:14:06.03 +3 ' "$T/crdb" ||
	fail "incremental layer missing: $(cat "$T/crdb")"
setup_passphrase "correct horse battery staple"
"$KMSFS_BIN" show "${KEYARGS[@]}" "$COLL" | grep -q 'unlocks with the given keys: yes' ||
	fail "the sample's passphrase does not unlock it in show"
note "ok"
