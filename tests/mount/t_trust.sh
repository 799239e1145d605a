#!/bin/bash
# Key substitution by a writer of the store (issue 8 item 1), replayed
# against the Azure emulator: Azure wraps with the key's public half, so
# anyone who can read that public key can wrap a data key of their own
# choosing for the chain's Azure entry.
#  A. plant ENCRYPTION-INFO-2 (the attacker's key K wrapped for the
#     configured Azure key), a key-check file and a file sealed under K:
#     the files disagree, so the chain is refused for reading and writing
#     with one log line naming both files;
#  B. replace ENCRYPTION-INFO itself: K is not in the known-keys record
#     written when the mount created the chain: refused, also with
#     --accept-new-keys (the record names the chain with another key);
#  C. a whole planted chain: refused by default, used (and recorded) with
#     --accept-new-keys, as documented;
#  D. the store put back: the chain reads as before, and a legitimate new
#     KMS entry (add-kms, same key) is accepted without a word.
. "$(dirname "$0")/lib.sh"

EMU=$(cd "$MOUNT_DIR/../emu" && pwd)
"$PY" -c 'import cryptography' 2>/dev/null ||
	{ echo "SKIP: python3 cryptography missing"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }

mkdir -p "$T/tls"
(
	cd "$T/tls"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem \
		-out ca.pem -days 2 -subj /CN=kmsfs-test-ca
	printf '[srv]\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
	openssl req -newkey rsa:2048 -nodes -keyout srv-key.pem -out srv.csr \
		-subj /CN=127.0.0.1
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca-key.pem \
		-CAcreateserial -out srv.pem -days 2 -extfile ext.cnf -extensions srv
) >"$T/tls/openssl.log" 2>&1 || fail "openssl could not make the test CA"

AZ_TENANT=72f988bf-86f1-41af-91ab-2d7cd011db47
AZ_APP=11111111-2222-3333-4444-555555555555
AZ_SECRET="az~$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')Sec"
AZ_KEY=my-key

# The emulator reads a FIFO held open by this shell: if the test is
# killed outright it sees EOF and exits; normally it is killed by pid.
mkfifo "$T/emu.fifo"
"$PY" "$EMU/azure_emu.py" --cert "$T/tls/srv.pem" --key "$T/tls/srv-key.pem" \
	--tenant "$AZ_TENANT" --app "$AZ_APP:$AZ_SECRET" \
	--vault-key "$AZ_KEY/v1" --watch-stdin <"$T/emu.fifo" \
	>"$T/emu.out" 2>"$T/emu.err" &
EMU_PID=$!
exec 9>"$T/emu.fifo"
_stop_emu() {
	local rc=$?
	set +e
	kill "$EMU_PID" 2>/dev/null
	wait "$EMU_PID" 2>/dev/null
	(exit "$rc")
	_cleanup
}
trap _stop_emu EXIT
_ports() { [[ $(wc -l <"$T/emu.out") -ge 2 ]]; }
WAIT_SECS=30 wait_for _ports || fail "emulator did not start: $(tail -n 3 "$T/emu.err")"
ZPORT=$(sed -n 1p "$T/emu.out")

unset AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_TENANT_ID KMSFS_KMS
export KMSFS_CA_BUNDLE=$T/tls/ca.pem
export KMSFS_AZURE_VAULT_URL=https://127.0.0.1:$ZPORT
export AZURE_AUTHORITY_HOST=https://127.0.0.1:$ZPORT
urlq() { "$PY" -c 'import sys, urllib.parse as p; print(p.quote(sys.argv[1], safe=""))' "$1"; }
(umask 077 && echo "azure-kms:///$AZ_KEY/v1?AZURE_VAULT_NAME=kmsfsvault&AZURE_CLIENT_ID=$AZ_APP&AZURE_CLIENT_SECRET=$(urlq "$AZ_SECRET")&AZURE_TENANT_ID=$AZ_TENANT" >"$T/kms.az")
KEYARGS=(--kms-file "$T/kms.az")

# attacker_encinfo OUT KEYHEX: an ENCRYPTION-INFO whose only entry is
# KEYHEX wrapped for the vault key with nothing but its public half
# (RSA-OAEP-256), the way anyone allowed to read the public key can.
attacker_encinfo() {
	"$PY" - "$1" "$2" "https://127.0.0.1:$ZPORT" "$AZ_TENANT" "$AZ_APP" \
		"$AZ_SECRET" "$AZ_KEY" "$T/tls/ca.pem" <<'EOF' || fail "could not forge an ENCRYPTION-INFO"
import base64, hashlib, json, ssl, sys, urllib.parse, urllib.request
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
out, keyhex, base, tenant, app, secret, name, ca = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
form = urllib.parse.urlencode({"grant_type": "client_credentials",
    "client_id": app, "client_secret": secret,
    "scope": "https://vault.azure.net/.default"}).encode()
tok = json.load(urllib.request.urlopen(urllib.request.Request(
    "%s/%s/oauth2/v2.0/token" % (base, tenant), data=form), context=ctx))
req = urllib.request.Request("%s/keys/%s?api-version=7.4" % (base, name),
    headers={"Authorization": "Bearer " + tok["access_token"]})
jwk = json.load(urllib.request.urlopen(req, context=ctx))["key"]
b64 = lambda s: int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")
pub = rsa.RSAPublicNumbers(b64(jwk["e"]), b64(jwk["n"])).public_key()
blob = pub.encrypt(bytes.fromhex(keyhex), padding.OAEP(
    mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
def field(n, data):
    ln, v = len(data), b""
    while True:
        v += bytes([(ln & 0x7F) | (0x80 if ln > 0x7F else 0)])
        ln >>= 7
        if not ln:
            break
    return bytes([n << 3 | 2]) + v + data
entry = field(1, hashlib.sha256(name.encode()).digest()) + field(2, blob)
open(out, "wb").write(field(3, entry))
EOF
}

# plant DIR KEYHEX: the attacker's key-check file and a file under KEYHEX
plant() {
	printf 'kmsfs key check v1\n' >"$T/kc.plain"
	printf 'planted by the attacker\n' >"$T/evil.plain"
	crdb encrypt --key-hex "$2" "$T/kc.plain" -o "$T/kc.enc" || fail "crdb encrypt"
	crdb encrypt --key-hex "$2" "$T/evil.plain" -o "$1/evil" || fail "crdb encrypt"
	cp "$T/kc.enc" "$1/.kmsfs-keycheck"
}

logmark() { LOGSTART=$(($(wc -l <"$DAEMON_LOG") + 1)); }
logsince() { tail -n +"$LOGSTART" "$DAEMON_LOG"; }

# ------------------------------------------------------------ the chain

kmount "$STORE" "$MNT"
mkdir "$MNT/c1" || fail "mkdir c1 with Azure"
echo "the real data" >"$MNT/c1/f"
kumount "$MNT"
cp "$STORE/c1/ENCRYPTION-INFO" "$T/ei.orig"
cp "$STORE/c1/.kmsfs-keycheck" "$T/kc.orig"

K=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
attacker_encinfo "$T/evil.ei" "$K"

# ------------------------------------------------------------ A

cp "$T/evil.ei" "$STORE/c1/ENCRYPTION-INFO-2"
plant "$STORE/c1" "$K"
logmark
kmount "$STORE" "$MNT"
assert_eq "$(fsop read "$MNT/c1/evil")" EACCES "A: reading the planted file"
assert_eq "$(fsop read "$MNT/c1/f")" EACCES "A: reading the real file"
assert_eq "$(fsop write "$MNT/c1/new" data)" EACCES "A: writing into the chain"
[[ ! -e $STORE/c1/new ]] || fail "A: a refused write left c1/new in the store"
kumount "$MNT"
logsince | grep -q 'chain c1: ENCRYPTION-INFO-2 and ENCRYPTION-INFO hold different keys' ||
	fail "A: no log line naming both files: $(logsince | grep c1 | head -n 3)"
# the record the mount wrote when it created c1, outside the store
[[ -s $KMSFS_KNOWN_KEYS ]] || fail "creating c1 recorded no key in $KMSFS_KNOWN_KEYS"
assert_eq "$(stat -c %a "$KMSFS_KNOWN_KEYS")" 600 "mode of the known-keys file"
grep -q "^kfp1:[0-9a-f]\{64\} .* $STORE/c1\$" "$KMSFS_KNOWN_KEYS" ||
	fail "no record for $STORE/c1: $(cat "$KMSFS_KNOWN_KEYS")"

# ------------------------------------------------------------ B

rm "$STORE/c1/ENCRYPTION-INFO-2"
cp "$T/evil.ei" "$STORE/c1/ENCRYPTION-INFO"
for opt in "" --accept-new-keys; do
	logmark
	kmount "$STORE" "$MNT" $opt
	assert_eq "$(fsop read "$MNT/c1/evil")" EACCES "B ($opt): reading the planted file"
	assert_eq "$(fsop write "$MNT/c1/new" data)" EACCES "B ($opt): writing into the chain"
	kumount "$MNT"
	logsince | grep -q "chain c1: its key (from ENCRYPTION-INFO) is not the one recorded for it in $KMSFS_KNOWN_KEYS" ||
		fail "B ($opt): no clear log line: $(logsince | grep c1 | head -n 3)"
done
[[ ! -e $STORE/c1/new ]] || fail "B: a refused write left c1/new in the store"

# ------------------------------------------------------------ C

mkdir "$STORE/p"
cp "$T/evil.ei" "$STORE/p/ENCRYPTION-INFO"
plant "$STORE/p" "$K"
cp "$T/ei.orig" "$STORE/c1/ENCRYPTION-INFO"
cp "$T/kc.orig" "$STORE/c1/.kmsfs-keycheck"
rm "$STORE/c1/evil"
logmark
kmount "$STORE" "$MNT"
assert_eq "$(fsop read "$MNT/p/evil")" EACCES "C: reading a planted chain"
assert_eq "$(cat "$MNT/c1/f")" "the real data" "C: the real chain, put back"
kumount "$MNT"
logsince | grep -q "chain p: its key (from ENCRYPTION-INFO) was unwrapped only by KMSes that others can wrap for" ||
	fail "C: no clear log line: $(logsince | grep 'chain p' | head -n 3)"
logmark
kmount "$STORE" "$MNT" --accept-new-keys
assert_eq "$(cat "$MNT/p/evil")" "planted by the attacker" "C: a new chain with --accept-new-keys"
kumount "$MNT"
logsince | grep -q "chain p: its key (from ENCRYPTION-INFO) was accepted on first use" ||
	fail "C: accepting the new chain was not logged"
rm -r "$STORE/p"

# ------------------------------------------------------------ D

setup_kms # a local key, added the legitimate way
"$KMSFS_BIN" add-kms "$STORE" c1 --old-kms-file "$T/kms.az" --new-kms "$KMS_URI" \
	>"$T/out" 2>"$T/err" || fail "add-kms: $(cat "$T/err")"
KEYARGS=(--kms-file "$T/kms.az")
logmark
kmount "$STORE" "$MNT"
assert_eq "$(cat "$MNT/c1/f")" "the real data" "D: after add-kms"
echo more >"$MNT/c1/g" || fail "D: write into c1"
kumount "$MNT"
! logsince | grep -q 'refus' || fail "D: a refusal: $(logsince | grep -m1 refus)"
note ok
