#!/bin/bash
# Parallel writers: 8 processes each write their own multi-MiB file (each
# with another block size) and one region of a shared file (regions not
# aligned to chunks, so neighbours share chunks), all at the same time,
# while readers re-read finished files.  Then every file is compared, the
# backing store is checked with crdb.py, and everything again after a
# remount.
. "$(dirname "$0")/lib.sh"

N=8
REGION=300007
setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1" "$MNT/c2"
mkdata "$T/shared.src" $((N * REGION))
truncate -s $((N * REGION)) "$MNT/c1/shared"
for ((i = 0; i < N; i++)); do
	mkdata "$T/own.$i" $((3 * 1048576 + i * 1111))
done

writer() {
	local i=$1 chain=c$(($1 % 2 + 1))
	dd if="$T/own.$i" of="$MNT/$chain/own.$i" bs=$((4096 * (i + 1) + 100)) \
		status=none || return 1
	dd if="$T/shared.src" of="$MNT/c1/shared" bs=$((1000 + i * 517)) \
		skip=$((i * REGION)) seek=$((i * REGION)) count=$REGION \
		iflag=skip_bytes,count_bytes oflag=seek_bytes conv=notrunc \
		status=none || return 1
	cmp -s "$MNT/$chain/own.$i" "$T/own.$i" || return 2
}
pids=()
for ((i = 0; i < N; i++)); do
	writer "$i" &
	pids+=($!)
done
for ((i = 0; i < N; i++)); do
	rc=0
	wait "${pids[$i]}" || rc=$?
	[[ $rc -eq 0 ]] || fail "writer $i failed (rc $rc: 1 = write error, 2 = read back differs)"
done

check_all() {
	local i
	for ((i = 0; i < N; i++)); do
		assert_cmp "$MNT/c$((i % 2 + 1))/own.$i" "$T/own.$i" "$1: own.$i"
	done
	assert_cmp "$MNT/c1/shared" "$T/shared.src" "$1: shared file regions"
}
check_all "after parallel writes"

# Parallel readers of everything.
pids=()
for ((i = 0; i < N; i++)); do
	cmp -s "$MNT/c$((i % 2 + 1))/own.$i" "$T/own.$i" &
	pids+=($!)
	cmp -s "$MNT/c1/shared" "$T/shared.src" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || fail "a parallel reader saw different bytes"
done
kumount "$MNT"

crdb check-tree --passphrase-file "$PASS" "$STORE" >"$T/check" ||
	fail "crdb.py check-tree: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/c1/ENCRYPTION-INFO" \
	"$STORE/c1/shared" -o "$T/dec" || fail "backing c1/shared does not decrypt"
assert_cmp "$T/dec" "$T/shared.src" "backing c1/shared decrypted by crdb.py"
crdb ivs --unique "$STORE" >/dev/null 2>"$T/ivs" ||
	fail "IVs not unique: $(head -n 3 "$T/ivs" | tr '\n' ' ')"
kmount "$STORE" "$MNT"
check_all "after remount"
kumount "$MNT"
note ok
