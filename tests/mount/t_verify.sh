#!/bin/bash
# kmsfs verify (issue 9): never writes; authenticates every chunk; finds
# truncation, a bit flip, a wrong -CHECKSUM, plaintext where ciphertext
# is expected and the reverse, a chain without ENCRYPTION-INFO, leftover
# temporaries; exit 0 clean, 1 damaged, 2 usage; --json; a store written
# through a mount verifies clean.
. "$(dirname "$0")/lib.sh"

setup_passphrase "correct horse battery staple"
C=$T/coll
cp -a "$SHARED/vectors/crdb-collection/collection" "$C"
chmod -R u+w "$C"
FULL=$C/2023/07/14-211406.03
INC=$C/incrementals/2023/07/14-211406.03/20230714/221406.03

v() { "$KMSFS_BIN" verify "${KEYARGS[@]}" "$@"; }

v "$C" >"$T/out" || fail "the intact sample collection does not verify: $(cat "$T/out")"
grep -q '^clean: 1 chain(s), 8 files' "$T/out" || fail "clean line: $(cat "$T/out")"
v "$C" LATEST >/dev/null || fail "verify LATEST"
before=$(find "$C" -printf '%p %s %T@\n' | sort | sha256sum)

# damage, one kind per file
sst=$(ls "$FULL"/data/*.sst | head -n1)
sst2=$(ls "$FULL"/data/*.sst | tail -n1)
printf '\x01' | dd of="$sst" bs=1 seek=30000 conv=notrunc status=none  # bit flip
truncate -s 65572 "$sst2"                                               # cut at a chunk boundary
printf 'lock' >"$INC/BACKUP-LOCK-99"
cp "$sst" "$C/2023/07/14-211406.03/BACKUP-LOCK-98"                    # ciphertext where plaintext belongs
printf 'plain data' >"$INC/data/7.sst"                                  # plaintext where ciphertext belongs
printf '\0\0\0\0' >"$INC/BACKUP_MANIFEST-CHECKSUM"                     # wrong checksum
: >"$FULL/.kmsfs-tmp-0011223344556677"                                  # leftover temporary
mkdir -p "$C/2024/01/02-030405.06/data"
cp "$sst" "$C/2024/01/02-030405.06/data/1.sst"                          # chain without ENCRYPTION-INFO

rc=0
v "$C" >"$T/out" 2>"$T/err" || rc=$?
assert_eq "$rc" 1 "exit status on a damaged store"
for want in "$(basename "$sst"): .*" "$(basename "$sst2"): .*" \
	"BACKUP-LOCK-98: encrypted where plaintext is expected" \
	"data/7.sst: not encrypted" "BACKUP_MANIFEST-CHECKSUM: checksum mismatch" \
	".kmsfs-tmp-0011223344556677: leftover temporary" \
	"2024/01/02-030405.06: holds files but no ENCRYPTION-INFO"; do
	grep -q -- "$want" "$T/out" || fail "verify did not report '$want': $(cat "$T/out")"
done
grep -q 'BACKUP-LOCK-99' "$T/out" && fail "a plaintext lock file was reported: $(cat "$T/out")"
grep -q '^DAMAGED' "$T/out" || fail "no DAMAGED summary"
v --json "$C" >"$T/json" || true
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["clean"] is False and len(d["problems"]) >= 7, d' "$T/json" ||
	fail "--json report: $(cat "$T/json")"

# never writes: only our own edits above changed the tree
rm -rf "$C" && cp -a "$SHARED/vectors/crdb-collection/collection" "$C"
before=$(find "$C" -printf '%p %s %T@ %m\n' | sort | sha256sum)
v "$C" >/dev/null || fail "verify of a fresh copy"
after=$(find "$C" -printf '%p %s %T@ %m\n' | sort | sha256sum)
assert_eq "$after" "$before" "store after verify"

# usage errors
rc=0; v "$C" nonsense/deep 2>/dev/null || rc=$?
assert_eq "$rc" 2 "exit status for a target that is no chain"
rc=0; v "$C" LATEST --all 2>/dev/null || rc=$?
assert_eq "$rc" 2 "exit status for two targets"

# a wrong passphrase is damage to report, not a crash
printf 'wrong\n' >"$T/wrong"; chmod 600 "$T/wrong"
rc=0; "$KMSFS_BIN" verify --passphrase-file "$T/wrong" "$C" >"$T/out" 2>&1 || rc=$?
assert_eq "$rc" 1 "exit status with a wrong passphrase"
grep -q 'cannot unlock the chain' "$T/out" || fail "wrong key not reported: $(cat "$T/out")"

# a toplevel store written through the mount verifies clean
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
mkdata "$T/big" 300000
cp "$T/big" "$MNT/c1/big"
echo root >"$MNT/rootfile"
kumount "$MNT"
v "$STORE" >"$T/out" || fail "store written through kmsfs does not verify: $(cat "$T/out")"
note "ok"
