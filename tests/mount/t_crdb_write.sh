#!/bin/bash
# CockroachDB BACKUPs written into a mount, checked as CockroachDB RESTORE
# reads the backing store.  crdb_replay.py writes a full backup and two
# incrementals into an empty store mounted with --profile crdb, file by
# file as a cluster without an Enterprise licence does (plaintext, each
# through <final><digits>.tmp, fsync, rename, after MkdirAll; checksums
# over the plaintext; before each incremental it reads LATEST, the layers
# and their manifests with their checksums back through the mount).
# While mounted, the mount must show what was written (checksums over the
# plaintext); after unmounting, `crdb.py restore-check` must restore the
# store: LATEST resolved, the full backup's ENCRYPTION-INFO found, every
# -CHECKSUM equal to SHA-256 of the stored bytes, every file decrypted to
# what was written, LATEST, metadata/** and BACKUP-LOCK-* plaintext, no
# temporary left.  The chain's key exists before its first encrypted
# file.  Chains: a passphrase (v25.4 layout: backup index files), a local
# KMS key from `kmsfs keygen` (pre-22.1 layout: incrementals inside the
# full backup, root LATEST, BACKUP-CHECKPOINT rewritten in place), and the
# emulated AWS, GCP and Azure KMSes together (v23.1 layout; skipped without
# the emulators' Python modules), each of which alone must restore it.
. "$(dirname "$0")/lib.sh"

replay() { "$PY" "$TOOLS/crdb_replay.py" "$@"; }

# restore_check STORE WHAT KEYOPTS...: RESTORE's reading must succeed
restore_check() {
	local store=$1 what=$2
	shift 2
	crdb restore-check "$store" "$@" --expect-manifest "$T/m.json" \
		--ignore .kmsfs-keycheck >"$T/rc.out" 2>&1 ||
		fail "restore-check ($what): $(grep -E 'FAIL|error' "$T/rc.out" | head -n 4 | tr '\n' ' ')"
	grep -q ' 0 problem' "$T/rc.out" || fail "restore-check ($what): $(tail -n 1 "$T/rc.out")"
}

# key_first STORE: no encrypted file of a chain is older than the chain's
# ENCRYPTION-INFO.
key_first() {
	"$PY" - "$1" <<'EOF' || fail "an encrypted file is older than its chain's key"
import os, sys
store = sys.argv[1]
for top, dirs, files in os.walk(store):
    if "ENCRYPTION-INFO" not in files:
        continue
    key = os.stat(os.path.join(top, "ENCRYPTION-INFO")).st_mtime_ns
    rel = os.path.relpath(top, store)
    for d in (top, os.path.join(store, "incrementals", rel)):
        for t, _, fs in os.walk(d):
            for f in fs:
                p = os.path.join(t, f)
                with open(p, "rb") as fh:
                    enc = fh.read(7) == b"encrypt"
                if enc and os.stat(p).st_mtime_ns < key:
                    sys.exit("%s is older than %s/ENCRYPTION-INFO" % (p, top))
EOF
}

# write_and_check WHAT VERSION KEYOPTS...: one store, replayed, checked
write_and_check() {
	local what=$1 version=$2
	shift 2
	rm -rf "$STORE" && mkdir -p "$STORE"
	kmount "$STORE" "$MNT" --profile crdb
	grep -q 'profile: crdb' "$DAEMON_LOG" || fail "$what: mount did not print 'profile: crdb'"
	replay --version "$version" --seed 7 --incrementals 2 \
		--manifest "$T/m.json" "$MNT" >"$T/replay.out" 2>&1 ||
		fail "$what: replay into the mount: $(tail -n 3 "$T/replay.out" | tr '\n' ' ')"
	# what the mount shows: the plaintext collection that was written
	restore_check "$MNT" "$what, the mount"
	kumount "$MNT"
	restore_check "$STORE" "$what" "$@"
	key_first "$STORE"
	[[ -z $(find "$STORE" -name '*.tmp' -o -name '.kmsfs-tmp-*') ]] ||
		fail "$what: temporaries left on the store"
	note "$what: $(tail -n 1 "$T/rc.out")"
}

setup_passphrase
write_and_check "passphrase, v25.4" 25.4 --passphrase-file "$PASS"

setup_kms
printf '%s\n' "$KMS_URI" >"$T/kms.local"
chmod 600 "$T/kms.local"
write_and_check "local KMS key, v21.2" 21.2 --kms-file "$T/kms.local"

# ------------------------------------------------------------ cloud KMSes
# The emulators as tests/mount/t_cloudkms.sh starts them (there: what each
# request must look like; here: only that the three unlock the chain).
if ! "$PY" -c 'import botocore, google.auth, azure.identity, cryptography' 2>/dev/null ||
	! command -v openssl >/dev/null; then
	note "cloud KMS part skipped: python3 boto3/google-auth/azure or openssl missing"
	note ok
	exit 0
fi
EMU=$(cd "$MOUNT_DIR/../emu" && pwd)
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
AZ_SECRET="az~$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')+/&=Sec"
AWS_SECRET=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY # aws_emu.py's USERS
AWS_KEY=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
GCP_KEY=projects/p/locations/global/keyRings/r/cryptoKeys/k
AZ_KEY=my-key

# The emulators read a FIFO held open by this shell (fd 9): they exit on
# its EOF if the test is killed outright; normally they are killed by pid.
EMU_PIDS=()
mkfifo "$T/emu.fifo"
start_emu() { # NAME SCRIPT ARGS...
	local name=$1 script=$2
	shift 2
	"$PY" "$EMU/$script" "$@" <"$T/emu.fifo" >"$T/emu.$name.out" \
		2>"$T/emu.$name.err" 9>&- &
	EMU_PIDS+=($!)
	[[ ${#EMU_PIDS[@]} -gt 1 ]] || exec 9>"$T/emu.fifo"
}
_stop_emus() {
	local rc=$? p
	set +e
	for p in "${EMU_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${EMU_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	(exit "$rc")
	_cleanup
}
trap _stop_emus EXIT
start_emu aws aws_emu.py --exit-on-stdin-eof
start_emu gcp gcp_emu.py --sa-out "$T/sa.json" --exit-on-stdin-eof
start_emu az azure_emu.py --cert "$T/tls/srv.pem" --key "$T/tls/srv-key.pem" \
	--tenant "$AZ_TENANT" --app "$AZ_APP:$AZ_SECRET" \
	--vault-key "$AZ_KEY/v1" --watch-stdin
_ports() { [[ -s $T/emu.aws.out && -s $T/emu.gcp.out && -s $T/sa.json &&
	$(wc -l <"$T/emu.az.out") -ge 2 ]]; }
WAIT_SECS=30 wait_for _ports ||
	fail "emulators did not start: $(cat "$T"/emu.*.err | tail -n 5 | tr '\n' ' ')"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
	AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_TENANT_ID \
	GOOGLE_APPLICATION_CREDENTIALS KMSFS_KMS
export AWS_EC2_METADATA_DISABLED=true
export KMSFS_CA_BUNDLE=$T/tls/ca.pem
export KMSFS_GCP_KMS_ENDPOINT=http://127.0.0.1:$(head -n1 "$T/emu.gcp.out")
export KMSFS_AZURE_VAULT_URL=https://127.0.0.1:$(sed -n 1p "$T/emu.az.out")
export AZURE_AUTHORITY_HOST=$KMSFS_AZURE_VAULT_URL

urlq() { "$PY" -c 'import sys, urllib.parse as p; print(p.quote(sys.argv[1], safe=""))' "$1"; }
GCP_CREDS=$(base64 -w0 "$T/sa.json")
URI_AWS="aws:///$AWS_KEY?AUTH=specified&AWS_ACCESS_KEY_ID=AKIDEXAMPLE&AWS_SECRET_ACCESS_KEY=$(urlq "$AWS_SECRET")&REGION=us-east-1&AWS_ENDPOINT=http://127.0.0.1:$(head -n1 "$T/emu.aws.out")"
URI_GCP="gs:///$GCP_KEY?AUTH=specified&CREDENTIALS=$(urlq "$GCP_CREDS")"
URI_AZ="azure-kms:///$AZ_KEY/v1?AZURE_VAULT_NAME=kmsfsvault&AZURE_CLIENT_ID=$AZ_APP&AZURE_CLIENT_SECRET=$(urlq "$AZ_SECRET")&AZURE_TENANT_ID=$AZ_TENANT"
kmsfile() { # FILE URI...: a 0600 KMS file
	local f=$1
	shift
	(umask 077 && printf '%s\n' "$@" >"$f")
}
kmsfile "$T/kms3" "$URI_AWS" "$URI_GCP" "$URI_AZ"
kmsfile "$T/kms.aws" "$URI_AWS"
kmsfile "$T/kms.gcp" "$URI_GCP"
kmsfile "$T/kms.az" "$URI_AZ"
KEYARGS=(--kms-file "$T/kms3")
write_and_check "AWS+GCP+Azure, v23.1" 23.1 --kms-file "$T/kms.aws"
for k in gcp az; do
	restore_check "$STORE" "$k alone" --kms-file "$T/kms.$k"
done
note ok
