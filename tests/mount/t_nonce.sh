#!/bin/bash
# No nonce reuse: every change of a file's contents (append, in-place
# write in the first and in a later chunk, shrink to a chunk boundary,
# extend, O_TRUNC rewrite, ftruncate through an open fd, rewrite of
# identical length) must leave the backing file under a fresh IV -- the
# final chunk is always rewritten, and sealing different bytes under the
# same key and nonce breaks GCM.  After each change (the file closed)
# the backing file decrypts with crdb.py to the expected contents.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
F=$MNT/c1/f
B=$STORE/c1/f
E=$T/expected
declare -A seen=()
step=0

check() { # WHAT
	local iv
	step=$((step + 1))
	assert_cmp "$F" "$E" "$1: content through the mount"
	crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/c1/ENCRYPTION-INFO" \
		"$B" -o "$T/dec" || fail "$1: backing file does not decrypt (crdb.py)"
	assert_cmp "$T/dec" "$E" "$1: backing file decrypted by crdb.py"
	assert_cipher_size "$B" "$(stat -c %s "$E")"
	iv=$(xxd -p -s 8 -l 12 "$B")
	[[ -z ${seen[$iv]:-} ]] || fail "$1: IV $iv reused (first used by: ${seen[$iv]})"
	seen[$iv]=$1
}

mkdata "$E" 150000
cp "$E" "$F"
check "create"
mkdata "$T/a" 3000
cat "$T/a" >>"$E"
cat "$T/a" >>"$F"
check "append"
patch() { # OFFSET BYTES WHAT
	mkdata "$T/p" "$2"
	dd if="$T/p" of="$E" bs="$2" seek="$1" oflag=seek_bytes conv=notrunc status=none
	dd if="$T/p" of="$F" bs="$2" seek="$1" oflag=seek_bytes conv=notrunc status=none
	check "$3"
}
patch 10 100 "write in chunk 0"
patch $((2 * CHUNK + 5)) 50 "write in the final chunk"
patch $((CHUNK - 3)) 7 "write across a chunk boundary"
truncate -s $((2 * CHUNK)) "$E" "$F"
check "shrink to a chunk boundary"
truncate -s $((2 * CHUNK + 1)) "$E" "$F"
check "extend by one byte"
truncate -s 300000 "$E" "$F"
check "extend with a hole"
mkdata "$E" 5000
cat "$E" >"$F"
check "O_TRUNC rewrite"
"$PY" - "$F" <<'PYEOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.ftruncate(fd, 1000)
os.close(fd)
PYEOF
truncate -s 1000 "$E"
check "ftruncate through an fd"
cp "$E" "$F"
check "rewrite with identical bytes"
kumount "$MNT"
note "ok: $step versions, $step distinct IVs"
