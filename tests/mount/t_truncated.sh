#!/bin/bash
# Backing files cut short.  Cut exactly at a chunk boundary (the empty
# final chunk of a 131072-byte file dropped; the short final chunk of a
# 3-chunk+100 file dropped), inside the final chunk, to the bare header,
# and inside the header: each reads with EIO at the end (cat fails, what
# it printed is a correct prefix), the intact leading chunk still reads, and
# an untouched file is fine.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
declare -A size=([x1]=131072 [x2]=$((3 * CHUNK + 100)) [x3]=200000
	[x4]=65537 [x5]=1000 [ok]=200000)
for f in "${!size[@]}"; do
	mkdata "$T/$f" "${size[$f]}"
	cp "$T/$f" "$MNT/c1/$f"
done
kumount "$MNT"

declare -A cut=([x1]=$((20 + 2 * CHUNK_CT)) [x2]=$((20 + 3 * CHUNK_CT))
	[x3]=$(($(stat -c %s "$STORE/c1/x3") - 5)) [x4]=20 [x5]=10)
for f in "${!cut[@]}"; do
	truncate -s "${cut[$f]}" "$STORE/c1/$f"
done

kmount "$STORE" "$MNT"
for f in "${!cut[@]}"; do
	rc=0
	cat "$MNT/c1/$f" >"$T/got" 2>"$T/err" || rc=$?
	[[ $rc -ne 0 ]] || fail "cat of $f (backing cut to ${cut[$f]} bytes) succeeded: truncation not detected"
	grep -q 'Input/output error' "$T/err" ||
		fail "cat of truncated $f: expected EIO, got: $(cat "$T/err")"
	n=$(stat -c %s "$T/got")
	cmp -s -n "$n" "$T/got" "$T/$f" || fail "truncated $f returned wrong bytes"
done
for f in x1 x2; do
	fsop chunks "$MNT/c1/$f" "$T/$f" >"$T/chunks"
	! grep -q WRONG "$T/chunks" || fail "a read of truncated $f returned wrong bytes"
	grep -qx '0 ok' "$T/chunks" || fail "chunk 0 of truncated $f unreadable: $(head -n1 "$T/chunks")"
	rc=0
	cmp "$MNT/c1/$f" "$T/$f" >/dev/null 2>"$T/err" || rc=$?
	[[ $rc -ne 0 ]] || fail "$f reads complete although its final chunk is gone"
done
assert_cmp "$MNT/c1/ok" "$T/ok" "untouched file"
kumount "$MNT"
note ok
