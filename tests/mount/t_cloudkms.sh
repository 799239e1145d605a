#!/bin/bash
# Cloud KMSes end to end, through the real binary on a real FUSE mount,
# against the three request-verifying emulators (tests/emu/*_emu.py):
#  1. aws:///, gs:/// and azure-kms:/// URIs spelled as CockroachDB takes
#     them (credentials only in a 0600 --kms-file; Azure over TLS with a
#     throw-away CA given to kmsfs as KMSFS_CA_BUNDLE);
#  2. a chain written through the mount with all three, read back;
#  3. its ENCRYPTION-INFO has exactly the three map keys of CockroachDB's
#     vector encinfo-kms3.bin (SHA-256 of the master key IDs);
#  4. each KMS alone unlocks the chain;
#  5. two "regions" down (slow / 500 / dropped connections): the mount
#     still comes up in bounded time and reads; all three down: exit 1
#     with one clear line;
#  6. add-kms (named chain, LATEST, --all-chains) while mounted writes
#     ENCRYPTION-INFO-<n> with only the new key, never touches
#     ENCRYPTION-INFO, and the new local key alone opens the chain;
#  7. CockroachDB's write rule: a KMS unknown to a chain may read but not
#     write it (EACCES, log names the redacted URI and add-kms); a new
#     chain in that mount gets all four keys;
#  8. no credential, token or key in any kmsfs output or command line.
. "$(dirname "$0")/lib.sh"

EMU=$(cd "$MOUNT_DIR/../emu" && pwd)
EIK() { "$PY" "$TOOLS/encinfo_keys.py" "$@"; }
KMS3_VECTOR=$VECTORS/encinfo-kms3.bin
[[ -f $KMS3_VECTOR ]] || fail "missing vector $KMS3_VECTOR"
"$PY" -c 'import botocore, google.auth, cryptography' 2>/dev/null ||
	{ echo "SKIP: python3 botocore/google-auth/cryptography missing"; exit 77; }
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }

# ------------------------------------------------------------ local helpers

CLI_LOG=$T/cli.log # every kmsfs stdout/stderr outside kmount/kumount
: >"$CLI_LOG"
# kx ARGS...: run kmsfs; stdout -> $T/out, stderr -> $T/err, both kept.
kx() {
	local rc=0
	"$KMSFS_BIN" "$@" >"$T/out" 2>"$T/err" || rc=$?
	{ cat "$T/out" "$T/err"; } >>"$CLI_LOG"
	return "$rc"
}

urlq() { "$PY" -c 'import sys, urllib.parse as p; print(p.quote(sys.argv[1], safe=""))' "$1"; }

# emu_post BASEURL HOOK JSON
emu_post() {
	"$PY" - "$1/_emu/$2" "$3" <<'EOF' || fail "emulator hook $2 at $1 failed"
import sys, urllib.request as u
r = u.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
              headers={"Content-Type": "application/json"})
sys.exit(0 if u.urlopen(r, timeout=10).status == 200 else 1)
EOF
}
# emu_count aws|gcp|az KEY: one request counter of an emulator
emu_count() {
	local url
	case $1 in
	aws) url=$AWS_URL ;; gcp) url=$GCP_URL ;; az) url=$AZ_CTL ;;
	esac
	"$PY" - "$url/_emu/stats" "$2" "$1" <<'EOF' || fail "emulator stats at $url failed"
import json, sys, urllib.request as u
s = json.load(u.urlopen(sys.argv[1], timeout=10))
if sys.argv[3] == "aws":
    s = s["count"]
v = s.get(sys.argv[2], 0)
print(v if isinstance(v, int) else 0)
EOF
}
emu_reset_all() {
	emu_post "$AWS_URL" reset '{}'
	emu_post "$GCP_URL" reset '{}'
	emu_post "$AZ_CTL" reset '{}'
}

# mkkmsfile FILE URI...: a 0600 KMS file
mkkmsfile() {
	local f=$1
	shift
	(umask 077 && { echo "# t_cloudkms"; printf '%s\n' "$@"; } >"$f")
	assert_eq "$(stat -c %a "$f")" 600 "mode of $f"
}

# mapkeys FILE: sorted hex map keys of an ENCRYPTION-INFO file
mapkeys() { EIK keys "$1" | sort || fail "cannot parse $1"; }

FILES=(f.empty f.1 f.100 f.65535 f.65536 f.65537 f.200000 f.1048583)
mkplain() {
	local n
	mkdir -p "$T/plain"
	for f in "${FILES[@]}"; do
		n=${f#f.}
		[[ $n == empty ]] && n=0
		mkdata "$T/plain/$f" "$n"
	done
}
# readback MNT CHAIN WHAT: every file of CHAIN equals its plaintext
readback() {
	for f in "${FILES[@]}"; do
		assert_cmp "$1/$2/$f" "$T/plain/$f" "$2/$f ($3)"
	done
}

# mount_must_fail WHAT KEYOPTS...: `kmsfs mount -f` must exit without
# mounting (within 90 s); its exit status in MF_RC, output in $T/out, $T/err.
mount_must_fail() {
	local what=$1
	shift
	MF_RC=0
	"$KMSFS_BIN" mount -f "$@" "$STORE" "$MNT" >"$T/out" 2>"$T/err" &
	DAEMON_PID[$MNT]=$!
	WAIT_SECS=90 wait_for _mounted_or_dead "$MNT" "${DAEMON_PID[$MNT]}" ||
		fail "$what: neither failed nor mounted in 90s"
	assert_not_mounted "$MNT" "$what: it mounted"
	wait "${DAEMON_PID[$MNT]}" || MF_RC=$?
	unset "DAEMON_PID[$MNT]"
	{ cat "$T/out" "$T/err"; } >>"$CLI_LOG"
}

# No kmsfs process has a credential on its command line (what ps shows).
check_ps() { # WHAT
	local p cmd seen=0
	for p in /proc/[0-9]*; do
		cmd=$({ tr '\0' '\n' <"$p/cmdline"; } 2>/dev/null) || continue
		[[ $(head -n1 <<<"$cmd") == *kmsfs ]] || continue
		seen=$((seen + 1))
		if grep -q -F -f "$T/cred.pat" <<<"$cmd"; then
			fail "$1: /proc/${p#/proc/}/cmdline of kmsfs holds a secret"
		fi
	done
	[[ $seen -ge 1 ]] || fail "$1: no kmsfs process found to check"
}

# ------------------------------------------------------------ 1. emulators

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
AWS_AKID=AKIDEXAMPLE
AWS_SECRET=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY # aws_emu.py's USERS
AWS_KEY=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
AWS_KEY2=arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321
GCP_KEY=projects/p/locations/global/keyRings/r/cryptoKeys/k
AZ_KEY=my-key

# The emulators read a FIFO held open by this shell (fd 9): if the test is
# killed outright they see EOF and exit; normally they are killed by pid.
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
APORT=$(head -n1 "$T/emu.aws.out")
GPORT=$(head -n1 "$T/emu.gcp.out")
ZPORT=$(sed -n 1p "$T/emu.az.out")
ZHPORT=$(sed -n 2p "$T/emu.az.out")
AWS_URL=http://127.0.0.1:$APORT
GCP_URL=http://127.0.0.1:$GPORT
AZ_CTL=http://127.0.0.1:$ZHPORT
note "emulators: aws $APORT, gcp $GPORT, azure https $ZPORT / http $ZHPORT"

# Endpoints through the documented environment options (no credentials).
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
	AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_TENANT_ID \
	GOOGLE_APPLICATION_CREDENTIALS KMSFS_KMS
export AWS_EC2_METADATA_DISABLED=true
export KMSFS_CA_BUNDLE=$T/tls/ca.pem
export KMSFS_GCP_KMS_ENDPOINT=$GCP_URL
export KMSFS_GCP_TIMEOUT_MS=3000
export KMSFS_AZURE_VAULT_URL=https://127.0.0.1:$ZPORT
export AZURE_AUTHORITY_HOST=https://127.0.0.1:$ZPORT
export KMSFS_AZURE_TIMEOUT_MS=3000

GCP_CREDS=$("$PY" -c 'import base64, sys; print(base64.b64encode(open(sys.argv[1], "rb").read()).decode())' "$T/sa.json")
AWS_Q="AUTH=specified&AWS_ACCESS_KEY_ID=$AWS_AKID&AWS_SECRET_ACCESS_KEY=$(urlq "$AWS_SECRET")&REGION=us-east-1&AWS_ENDPOINT=$AWS_URL"
URI_AWS="aws:///$AWS_KEY?$AWS_Q"
URI_AWS2="aws:///$AWS_KEY2?$AWS_Q"
URI_GCP="gs:///$GCP_KEY?AUTH=specified&CREDENTIALS=$(urlq "$GCP_CREDS")"
URI_AZ="azure-kms:///$AZ_KEY/v1?AZURE_VAULT_NAME=kmsfsvault&AZURE_CLIENT_ID=$AZ_APP&AZURE_CLIENT_SECRET=$(urlq "$AZ_SECRET")&AZURE_TENANT_ID=$AZ_TENANT"
RED_AWS2="aws:///$AWS_KEY2?${AWS_Q/AWS_SECRET_ACCESS_KEY=$(urlq "$AWS_SECRET")/AWS_SECRET_ACCESS_KEY=redacted}"
mkkmsfile "$T/kms3" "$URI_AWS" "$URI_GCP" "$URI_AZ"
mkkmsfile "$T/kms.aws" "$URI_AWS"
mkkmsfile "$T/kms.gcp" "$URI_GCP"
mkkmsfile "$T/kms.az" "$URI_AZ"

# Credential secrets, in every spelling they could leak in.
SA_PEM_LINES=$("$PY" -c 'import json, sys; k = json.load(open(sys.argv[1]))["private_key"]
print("\n".join(l for l in k.splitlines() if len(l) >= 40 and "PRIVATE" not in l))' "$T/sa.json")
[[ $(wc -l <<<"$SA_PEM_LINES") -ge 10 ]] || fail "no service account private key in sa.json"
{
	printf '%s\n' "$AWS_SECRET" "$(urlq "$AWS_SECRET")" \
		"$AZ_SECRET" "$(urlq "$AZ_SECRET")" \
		"$GCP_CREDS" "$(urlq "$GCP_CREDS")" "${GCP_CREDS:100:48}" \
		"$SA_PEM_LINES"
} | awk 'length($0) >= 12' >"$T/cred.pat"

emu_reset_all

# Credentials are refused where ps would show them, and a KMS file others
# can read is refused (the error output is checked for secrets in 8.).
mount_must_fail "mount with credentials on the command line" --kms "$URI_AZ"
assert_eq "$MF_RC" 2 "exit status of mount --kms <URI with a secret>"
grep -q 'command line' "$T/err" || fail "mount --kms <secret URI>: unclear refusal: $(head -c 200 "$T/err")"
rc=0
kx add-kms "$STORE" chain1 --old-kms-file "$T/kms.aws" --new-kms "$URI_GCP" || rc=$?
assert_eq "$rc" 2 "exit status of add-kms --new-kms <URI with a secret>"
cp "$T/kms.aws" "$T/kms.loose"
chmod 644 "$T/kms.loose"
mount_must_fail "mount with a world-readable --kms-file" --kms-file "$T/kms.loose"
[[ $MF_RC -ne 0 ]] || fail "mount with a world-readable --kms-file exited 0"
grep -q 'chmod 600' "$T/err" || fail "world-readable --kms-file: unclear refusal: $(head -c 200 "$T/err")"

# ------------------------------------------------------------ 2. write + read

mkplain
KEYARGS=(--kms-file "$T/kms3")
kmount "$STORE" "$MNT" --log-level debug
check_ps "mount with three cloud KMSes"
mkdir "$MNT/chain1" || fail "mkdir chain1 with three cloud KMSes"
for f in "${FILES[@]}"; do cp "$T/plain/$f" "$MNT/chain1/$f"; done
mkdir "$MNT/chain2" || fail "mkdir chain2"
cp "$T/plain/f.200000" "$MNT/chain2/f.200000"
cp "$T/plain/f.100" "$MNT/chain2/f.100"
readback "$MNT" chain1 "written with three KMSes"
for f in "${FILES[@]}"; do
	assert_cipher_size "$STORE/chain1/$f" "$(stat -c %s "$T/plain/$f")"
done
[[ $(emu_count aws kms.Encrypt) -ge 2 ]] || fail "AWS emulator saw no Encrypt per chain"
[[ $(emu_count gcp encrypt) -ge 2 ]] || fail "GCP emulator saw no encrypt per chain"
[[ $(emu_count az kv_encrypt) -ge 2 ]] || fail "Azure emulator saw no encrypt per chain"
kumount "$MNT"

# ------------------------------------------------------------ 3. map keys

EI1=$STORE/chain1/ENCRYPTION-INFO
[[ -f $EI1 ]] || fail "no $EI1"
mapkeys "$KMS3_VECTOR" >"$T/keys.vector"
assert_eq "$(wc -l <"$T/keys.vector")" 3 "map entries in the CockroachDB vector"
mapkeys "$EI1" >"$T/keys.chain1"
assert_eq "$(wc -l <"$T/keys.chain1")" 3 "map entries in chain1/ENCRYPTION-INFO"
cmp -s "$T/keys.chain1" "$T/keys.vector" ||
	fail "chain1/ENCRYPTION-INFO map keys $(tr '\n' ' ' <"$T/keys.chain1") differ from encinfo-kms3.bin's $(tr '\n' ' ' <"$T/keys.vector")"
# CockroachDB stores Azure's raw RSA-OAEP-256 result: modulus-sized
assert_eq "$(EIK entries "$EI1" | awk -v k="$(EIK sha256 "$AZ_KEY")" '$1 == k {print $2}')" 256 \
	"size of the Azure entry's wrapped key (RSA-2048 result)"
crdb encinfo "$EI1" >"$T/ei.dump" || fail "crdb.py cannot parse chain1/ENCRYPTION-INFO"
grep -qx 'mode kms' "$T/ei.dump" || fail "chain1/ENCRYPTION-INFO is not KMS mode"
! compgen -G "$STORE/chain1/ENCRYPTION-INFO-*" >/dev/null || fail "unexpected ENCRYPTION-INFO-n in chain1"
cp "$EI1" "$T/ei1.orig"
cp "$STORE/chain2/ENCRYPTION-INFO" "$T/ei2.orig"

# ------------------------------------------------------------ 4. each alone

for k in aws gcp az; do
	emu_reset_all
	KEYARGS=(--kms-file "$T/kms.$k")
	kmount "$STORE" "$MNT" --log-level debug
	readback "$MNT" chain1 "unlocked by $k alone"
	assert_cmp "$MNT/chain2/f.200000" "$T/plain/f.200000" "chain2 ($k alone)"
	kumount "$MNT"
	case $k in
	aws) n=$(emu_count aws kms.Decrypt) ;;
	gcp) n=$(emu_count gcp decrypt) ;;
	az) n=$(emu_count az kv_decrypt) ;;
	esac
	[[ $n -ge 1 ]] || fail "the $k emulator served no decrypt when $k alone was configured"
done

# ------------------------------------------------------------ 5. regions down

# mount_timed WHAT: kmount with the kms file in KEYARGS, must be ready < 60 s
mount_timed() {
	local t0=$SECONDS
	WAIT_SECS=60 kmount "$STORE" "$MNT" --log-level debug
	note "$1: mounted in $((SECONDS - t0))s"
	[[ $((SECONDS - t0)) -lt 60 ]] || fail "$1: mount took $((SECONDS - t0))s"
}

# A: AWS hangs (kmsfs' 3 s timeout), GCP answers 500: Azure must serve.
emu_reset_all
emu_post "$AWS_URL" fault '{"mode": "slow", "target": "kms", "count": -1, "delay": 5}'
emu_post "$GCP_URL" fault '{"mode": "500", "target": "kms", "count": -1}'
KEYARGS=(--kms-file "$T/kms3")
t0=$SECONDS
mount_timed "AWS slow + GCP 500"
readback "$MNT" chain1 "AWS slow + GCP 500"
assert_cmp "$MNT/chain2/f.100" "$T/plain/f.100" "chain2 (AWS slow + GCP 500)"
[[ $((SECONDS - t0)) -lt 60 ]] || fail "reads with two KMSes down took $((SECONDS - t0))s"
kumount "$MNT"
[[ $(emu_count aws fault.slow) -ge 1 ]] || fail "AWS (first in the file) was not tried"
[[ $(emu_count gcp token) -ge 1 ]] || fail "GCP (second in the file) was not tried"
[[ $(emu_count az kv_decrypt) -ge 1 ]] || fail "Azure did not serve the unlock"
assert_eq "$(emu_count gcp decrypt)" 0 "GCP decrypts served while failing"
# The emulator finishes each slow request (and counts it) 5 s later; let
# those land now so that they cannot be counted by a later step.
_aws_drained() { [[ $(emu_count aws kms.Decrypt) -ge $(emu_count aws fault.slow) ]]; }
WAIT_SECS=30 wait_for _aws_drained || fail "the AWS emulator's slow requests never finished"

# B: Azure drops connections, AWS is down: GCP (last here) must serve.
emu_reset_all
mkkmsfile "$T/kms3.b" "$URI_AZ" "$URI_AWS" "$URI_GCP"
emu_post "$AZ_CTL" fault '{"target": "kv", "mode": "drop", "count": -1}'
emu_post "$AWS_URL" fault '{"mode": "down", "target": "any", "count": -1}'
KEYARGS=(--kms-file "$T/kms3.b")
mount_timed "Azure dropping + AWS down"
readback "$MNT" chain1 "Azure dropping + AWS down"
kumount "$MNT"
[[ $(emu_count az fault_kv) -ge 1 ]] || fail "Azure (first in the file) was not tried"
[[ $(emu_count aws fault.down) -ge 1 ]] || fail "AWS (second in the file) was not tried"
[[ $(emu_count gcp decrypt) -ge 1 ]] || fail "GCP did not serve the unlock"

# C: all three down: exit 1 and one clear line.
emu_reset_all
emu_post "$AWS_URL" fault '{"mode": "500", "target": "any", "count": -1}'
emu_post "$GCP_URL" fault '{"mode": "503", "target": "any", "count": -1}'
emu_post "$AZ_CTL" fault '{"target": "any", "mode": "status", "status": 500, "count": -1}'
t0=$SECONDS
mount_must_fail "mount with every KMS down" --kms-file "$T/kms3"
rc=$MF_RC
secs=$((SECONDS - t0))
note "all KMSes down: exit $rc after ${secs}s: $(tr '\n' '|' <"$T/err")"
assert_eq "$rc" 1 "exit status of mount with every KMS down"
[[ $secs -lt 60 ]] || fail "mount with every KMS down took ${secs}s to give up"
last=$(grep -v '^[[:space:]]*$' "$T/err" | tail -n 1)
[[ $last == *"cannot unlock"* ]] ||
	fail "mount with every KMS down: last message is not a clear summary: '$last'"
assert_eq "$(grep -c 'cannot unlock' "$T/err")" 1 "summary lines on stderr"
emu_reset_all

# ------------------------------------------------------------ 6. add-kms

kx keygen "$T/local1.key" || fail "kmsfs keygen local1: $(cat "$T/err")"
URI_L1=$(grep -o 'file:///[^[:space:]]*' "$T/out" | head -n1)
kx keygen "$T/localB.key" || fail "kmsfs keygen localB: $(cat "$T/err")"
URI_LB=$(grep -o 'file:///[^[:space:]]*' "$T/out" | head -n1)
[[ -n $URI_L1 && -n $URI_LB ]] || fail "keygen printed no file:/// URI"
mkkmsfile "$T/kms.l1" "$URI_L1"
mkkmsfile "$T/kms.lB" "$URI_LB"
MK_L1=$(EIK local-mapkey "$T/local1.key") || fail "local-mapkey local1"
MK_LB=$(EIK local-mapkey "$T/localB.key") || fail "local-mapkey localB"

KEYARGS=(--kms-file "$T/kms3")
kmount "$STORE" "$MNT" --log-level debug
cat "$MNT/chain1/f.100" >/dev/null || fail "read chain1 before add-kms"

# a) a named chain, old = AWS only, new = local1, while mounted
n0=$(emu_count aws kms.Decrypt)
kx add-kms "$STORE" chain1 --old-kms-file "$T/kms.aws" --new-kms-file "$T/kms.l1" ||
	fail "add-kms chain1 (AWS -> local1) exited non-zero: $(cat "$T/err")"
grep -q 'chain1: wrote ENCRYPTION-INFO-2' "$T/out" || fail "add-kms chain1 said: $(cat "$T/out")"
[[ -f $STORE/chain1/ENCRYPTION-INFO-2 ]] || fail "add-kms wrote no chain1/ENCRYPTION-INFO-2"
assert_eq "$(mapkeys "$STORE/chain1/ENCRYPTION-INFO-2")" "$MK_L1" "entries of chain1/ENCRYPTION-INFO-2 (only the local key)"
assert_cmp "$EI1" "$T/ei1.orig" "chain1/ENCRYPTION-INFO after add-kms"
[[ ! -e $STORE/chain2/ENCRYPTION-INFO-2 ]] || fail "add-kms chain1 touched chain2"
[[ $(emu_count aws kms.Decrypt) -gt $n0 ]] || fail "add-kms did not unwrap with the old (AWS) KMS"
# the mount goes on working and still hides the new file
readback "$MNT" chain1 "mounted while add-kms ran"
ls -a "$MNT/chain1" >"$T/ls"
! grep -q ENCRYPTION-INFO "$T/ls" || fail "the mount lists ENCRYPTION-INFO*"
cp "$T/plain/f.65537" "$MNT/chain1/g.65537" || fail "write into chain1 after add-kms"
assert_cmp "$MNT/chain1/g.65537" "$T/plain/f.65537" "chain1/g.65537"

# b) an OLD_KMS that never encrypted chain1 is refused, nothing written
mkkmsfile "$T/kms.aws2" "$URI_AWS2"
rc=0
kx add-kms "$STORE" chain1 --old-kms-file "$T/kms.aws2" --new-kms-file "$T/kms.lB" || rc=$?
assert_eq "$rc" 1 "add-kms with a foreign OLD_KMS: exit status"
grep -q 'OLD_KMS' "$T/err" || fail "add-kms with a foreign OLD_KMS: unclear error: $(cat "$T/err")"
[[ ! -e $STORE/chain1/ENCRYPTION-INFO-3 ]] || fail "a refused add-kms wrote chain1/ENCRYPTION-INFO-3"

# c) LATEST = chain2 (its ENCRYPTION-INFO is the newest), old = GCP
kx add-kms "$STORE" LATEST --old-kms-file "$T/kms.gcp" --new-kms-file "$T/kms.l1" ||
	fail "add-kms LATEST exited non-zero: $(cat "$T/err")"
grep -q 'chain2: wrote ENCRYPTION-INFO-2' "$T/out" || fail "add-kms LATEST said: $(cat "$T/out")"
assert_eq "$(mapkeys "$STORE/chain2/ENCRYPTION-INFO-2")" "$MK_L1" "entries of chain2/ENCRYPTION-INFO-2"
[[ ! -e $STORE/chain1/ENCRYPTION-INFO-3 ]] || fail "add-kms LATEST touched chain1"

# d) --all-chains, old = Azure, new = localB
kx add-kms "$STORE" --all-chains --old-kms-file "$T/kms.az" --new-kms-file "$T/kms.lB" ||
	fail "add-kms --all-chains exited non-zero: $(cat "$T/err")"
for c in chain1 chain2; do
	grep -q "$c: wrote ENCRYPTION-INFO-3" "$T/out" || fail "add-kms --all-chains said: $(cat "$T/out")"
	assert_eq "$(mapkeys "$STORE/$c/ENCRYPTION-INFO-3")" "$MK_LB" "entries of $c/ENCRYPTION-INFO-3"
done
kumount "$MNT"
assert_cmp "$EI1" "$T/ei1.orig" "chain1/ENCRYPTION-INFO after three add-kms"
assert_cmp "$STORE/chain2/ENCRYPTION-INFO" "$T/ei2.orig" "chain2/ENCRYPTION-INFO after add-kms"

# e) the new keys alone open the chains; no cloud KMS is asked
emu_reset_all
logstart=$(($(wc -l <"$DAEMON_LOG") + 1))
KEYARGS=(--kms-file "$T/kms.l1")
kmount "$STORE" "$MNT" --log-level debug
readback "$MNT" chain1 "only the local key added by add-kms"
assert_cmp "$MNT/chain1/g.65537" "$T/plain/f.65537" "chain1/g.65537 (local key only)"
assert_cmp "$MNT/chain2/f.200000" "$T/plain/f.200000" "chain2 (local key added via LATEST)"
kumount "$MNT"
KEYARGS=(--kms-file "$T/kms.lB")
kmount "$STORE" "$MNT" --log-level debug
readback "$MNT" chain1 "only the key added by --all-chains"
assert_cmp "$MNT/chain2/f.100" "$T/plain/f.100" "chain2 (key added by --all-chains)"
kumount "$MNT"
assert_eq "$(($(emu_count aws kms.Decrypt) + $(emu_count gcp decrypt) + $(emu_count az kv_decrypt)))" 0 \
	"cloud decrypts during local-key-only mounts"
tail -n +"$logstart" "$DAEMON_LOG" >"$T/log6"
grep -q 'http ' "$T/log6" &&
	fail "a local-key-only mount talked to a cloud KMS: $(grep -m1 'http ' "$T/log6")"

# The data keys, independently: both new entries wrap the chain's key.
DK1=$(EIK local-unwrap "$T/local1.key" "$STORE/chain1/ENCRYPTION-INFO-2") || fail "cannot unwrap chain1/ENCRYPTION-INFO-2"
assert_eq "$(EIK local-unwrap "$T/localB.key" "$STORE/chain1/ENCRYPTION-INFO-3")" "$DK1" "chain1 key in ENCRYPTION-INFO-3"
DK2=$(EIK local-unwrap "$T/local1.key" "$STORE/chain2/ENCRYPTION-INFO-2") || fail "cannot unwrap chain2/ENCRYPTION-INFO-2"
[[ $DK1 != "$DK2" ]] || fail "chain1 and chain2 share a data key"
crdb decrypt --key-hex "$DK1" "$STORE/chain1/f.65537" -o "$T/dec" || fail "chain1 key from ENCRYPTION-INFO-2 does not decrypt chain1"
assert_cmp "$T/dec" "$T/plain/f.65537" "crdb.py decrypt of chain1/f.65537"

# ------------------------------------------------------------ 7. write rule

emu_reset_all
mkkmsfile "$T/kms4" "$URI_AWS2" "$URI_AWS" "$URI_GCP" "$URI_AZ"
KEYARGS=(--kms-file "$T/kms4")
logstart=$(($(wc -l <"$DAEMON_LOG") + 1))
kmount "$STORE" "$MNT" --log-level debug
check_ps "mount with four KMSes"
readback "$MNT" chain1 "with a fourth KMS unknown to chain1"
assert_eq "$(fsop write "$MNT/chain1/new.txt" hello)" EACCES "new file in chain1 with an unknown KMS configured"
[[ ! -e $STORE/chain1/new.txt ]] || fail "a refused write left chain1/new.txt in the store"
[[ ! -e $MNT/chain1/new.txt ]] || fail "a refused write left chain1/new.txt in the mount"
tail -n +"$logstart" "$DAEMON_LOG" >"$T/log7"
grep -F -q -- "$RED_AWS2" "$T/log7" ||
	fail "the log does not name the unknown KMS as $RED_AWS2: $(grep -m2 -i 'refus\|not a key' "$T/log7" | tr '\n' ' ')"
grep -q 'add-kms' "$T/log7" || fail "the refusal does not mention add-kms"
mkdir "$MNT/chain3" || fail "mkdir chain3 with four KMSes"
cp "$T/plain/f.200000" "$MNT/chain3/f.200000" || fail "write into the new chain3"
assert_cmp "$MNT/chain3/f.200000" "$T/plain/f.200000" "chain3/f.200000"
kumount "$MNT"
{ cat "$T/keys.vector"; EIK sha256 "$AWS_KEY2"; } | sort >"$T/keys.want4"
mapkeys "$STORE/chain3/ENCRYPTION-INFO" >"$T/keys.chain3"
assert_eq "$(wc -l <"$T/keys.chain3")" 4 "map entries of the new chain3"
cmp -s "$T/keys.chain3" "$T/keys.want4" || fail "chain3 map keys are not the four KMSes' hashes"
[[ $(emu_count aws kms.Encrypt) -ge 2 ]] || fail "chain3: AWS did not wrap for both AWS keys"
assert_cmp "$EI1" "$T/ei1.orig" "chain1/ENCRYPTION-INFO at the end"

# ------------------------------------------------------------ 8. no secrets

cp "$T/cred.pat" "$T/secret.pat"
{
	echo "ya29.emu-" # every GCP access token the emulator issues
	# every Azure access token the emulator issues starts with this header
	"$PY" -c 'import base64, json; print(base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).rstrip(b"=").decode())'
	for kf in "$T/local1.key" "$T/localB.key"; do
		xxd -p -c 64 "$kf"
	done
	for dk in "$DK1" "$DK2"; do echo "$dk"; done
} >"$T/keys.list"
while read -r s; do
	printf '%s\n' "$s"
	if [[ $s =~ ^[0-9a-f]{64}$ ]]; then # a key: hex ends, base64 forms
		printf '%s\n' "${s:0:16}" "${s: -16}"
		"$PY" -c 'import base64, sys; b = bytes.fromhex(sys.argv[1])
print(base64.b64encode(b).decode()); print(base64.urlsafe_b64encode(b).rstrip(b"=").decode())' "$s"
	fi
done <"$T/keys.list" >>"$T/secret.pat"
[[ $(wc -l <"$T/secret.pat") -ge 30 ]] || fail "too few secrets collected"
[[ $(wc -l <"$DAEMON_LOG") -ge 50 ]] || fail "the debug log has almost nothing in it"
grep -q 'http POST' "$DAEMON_LOG" || fail "no debug-level (http) lines in the daemon log"
for log in "$DAEMON_LOG" "$CLI_LOG"; do
	if grep -n -i -F -f "$T/secret.pat" "$log" >"$T/leak"; then
		fail "$(basename "$log") leaks a secret: $(head -n1 "$T/leak" | head -c 160)"
	fi
done
note "ok: $(cat "$DAEMON_LOG" "$CLI_LOG" | wc -l) log lines checked for $(wc -l <"$T/secret.pat") secret strings"
