#!/bin/bash
# The offline commands.  `kmsfs decrypt` reads every CockroachDB-written
# vector (v2, and v1 with --allow-v1) with the vectors' key and rejects a
# truncated, a tampered and a 7-byte file (exit 1); `kmsfs encrypt` output has the v2
# size, a fresh IV each time, and decrypts with crdb.py; crdb.py output
# decrypts with `kmsfs decrypt`; both key file forms (64 hex chars, 32
# raw bytes) and stdin/stdout work; a key file readable by others is
# refused.  `kmsfs cat --kms URI STORE path` prints files of a chain and
# of the root without mounting, and fails (exit 1) on a tampered file, a
# missing file and a wrong key.
. "$(dirname "$0")/lib.sh"

K=$KMSFS_BIN
# --- vectors (v1 only with --allow-v1: t_v1.sh)
VKEY=$(
	"$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Key"])' \
		"$VECTORS/vectors.json"
)
printf '%s\n' "$VKEY" >"$T/vkey"
chmod 600 "$T/vkey"
n=0
for enc in "$VECTORS"/v[12]-*.enc; do
	plain=${enc%.enc}.plain
	v1=()
	[[ $(basename "$enc") == v1-* ]] && v1=(--allow-v1) # else refused
	rc=0
	"$K" decrypt --data-key-file "$T/vkey" "${v1[@]}" "$enc" "$T/out" 2>"$T/err" || rc=$?
	[[ $rc -eq 0 ]] || fail "kmsfs decrypt $(basename "$enc"): exit $rc: $(cat "$T/err")"
	assert_cmp "$T/out" "$plain" "kmsfs decrypt of CockroachDB vector $(basename "$enc")"
	n=$((n + 1))
done
[[ $n -ge 16 ]] || fail "only $n vectors found in $VECTORS"
head -c $((20 + 2 * CHUNK_CT)) "$VECTORS/v2-131072.enc" >"$T/trunc.enc"
cp "$VECTORS/v2-65537.enc" "$T/flip.enc"
chmod 644 "$T/flip.enc"
printf '\x01' | dd of="$T/flip.enc" bs=1 seek=30000 conv=notrunc status=none
head -c 7 "$VECTORS/v2-100.enc" >"$T/seven.enc"
for bad in trunc flip seven; do
	assert_status 1 "kmsfs decrypt of the $bad vector" \
		"$K" decrypt --data-key-file "$T/vkey" "$T/$bad.enc" "$T/out.$bad"
	[[ -s $T/err ]] || fail "kmsfs decrypt of the $bad vector: no message"
done
grep -qi 'not appear to be encrypted\|invalid encryption header' "$T/err" ||
	fail "7-byte file: message is not CockroachDB's: $(cat "$T/err")"

# --- encrypt / decrypt round trips, both key forms
head -c 32 /dev/urandom >"$T/rawkey"
xxd -p -c 64 "$T/rawkey" | tr -d '\n' >"$T/hexkey"   # no newline; vkey has one
chmod 600 "$T/rawkey" "$T/hexkey"
for n in 0 1 65535 65536 65537 131072 1048583; do
	mkdata "$T/p.$n" "$n"
	"$K" encrypt --data-key-file "$T/hexkey" "$T/p.$n" "$T/c.$n" || fail "kmsfs encrypt ($n bytes) failed"
	assert_cipher_size "$T/c.$n" "$n"
	crdb decrypt --key-file "$T/hexkey" "$T/c.$n" -o "$T/d.$n" ||
		fail "crdb.py cannot decrypt kmsfs encrypt output ($n bytes)"
	assert_cmp "$T/d.$n" "$T/p.$n" "kmsfs encrypt -> crdb.py decrypt ($n bytes)"
	"$K" decrypt --data-key-file "$T/rawkey" <"$T/c.$n" >"$T/e.$n" ||
		fail "kmsfs decrypt (raw key, stdin/stdout) failed ($n bytes)"
	assert_cmp "$T/e.$n" "$T/p.$n" "kmsfs encrypt -> kmsfs decrypt ($n bytes)"
	crdb encrypt --key-file "$T/hexkey" "$T/p.$n" -o "$T/f.$n"
	"$K" decrypt --data-key-file "$T/hexkey" "$T/f.$n" "$T/g.$n" ||
		fail "kmsfs decrypt of crdb.py output failed ($n bytes)"
	assert_cmp "$T/g.$n" "$T/p.$n" "crdb.py encrypt -> kmsfs decrypt ($n bytes)"
done
"$K" encrypt --data-key-file "$T/hexkey" <"$T/p.65537" >"$T/c2" || fail "encrypt stdin->stdout failed"
[[ $(xxd -p -s 8 -l 12 "$T/c2") != "$(xxd -p -s 8 -l 12 "$T/c.65537")" ]] ||
	fail "two encryptions of the same file used the same IV"
head -c 32 /dev/urandom | xxd -p -c 64 >"$T/otherkey"
chmod 600 "$T/otherkey"
assert_status 1 "kmsfs decrypt with the wrong key" \
	"$K" decrypt --data-key-file "$T/otherkey" "$T/c.1"
chmod 644 "$T/otherkey"
rc=0
"$K" decrypt --data-key-file "$T/otherkey" "$T/c.1" >/dev/null 2>"$T/err" || rc=$?
[[ $rc -ne 0 ]] || fail "a data key file readable by others was accepted"

# --- cat without mounting (local KMS)
setup_kms
kmount "$STORE" "$MNT"
mkdir -p "$MNT/c1/sub"
mkdata "$T/cat1" 200000
cp "$T/cat1" "$MNT/c1/sub/file"
cp "$T/p.65536" "$MNT/rootfile"
cp "$T/cat1" "$MNT/c1/tampered"
kumount "$MNT"
"$K" cat --kms "$KMS_URI" "$STORE" c1/sub/file >"$T/out" 2>"$T/err" ||
	fail "kmsfs cat c1/sub/file failed: $(cat "$T/err")"
assert_cmp "$T/out" "$T/cat1" "kmsfs cat of a chain file"
"$K" cat --kms "$KMS_URI" "$STORE" rootfile >"$T/out" 2>"$T/err" ||
	fail "kmsfs cat rootfile failed: $(cat "$T/err")"
assert_cmp "$T/out" "$T/p.65536" "kmsfs cat of a root file"
printf '\x01' | dd of="$STORE/c1/tampered" bs=1 seek=100000 conv=notrunc status=none
assert_status 1 "kmsfs cat of a tampered file" "$K" cat --kms "$KMS_URI" "$STORE" c1/tampered
assert_status 1 "kmsfs cat of a missing file" "$K" cat --kms "$KMS_URI" "$STORE" c1/nonexistent
OTHER=$("$K" keygen "$T/other.key" | grep -o 'file:///[^[:space:]]*' | head -n1)
assert_status 1 "kmsfs cat with another master key" "$K" cat --kms "$OTHER" "$STORE" c1/sub/file
[[ ! -s $T/out ]] || fail "kmsfs cat with the wrong key printed $(stat -c %s "$T/out") bytes"
crdb check-tree --structure-only "$STORE" >"$T/check" ||
	fail "backing store structure: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
note ok
