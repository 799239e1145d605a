#!/bin/bash
# kill -9 of the daemon while a big write is in progress.  Files closed
# before the kill (the last one closed immediately before it, one rewritten
# in place) must be intact after a remount; the file being written must
# read as a prefix of what was written or fail with EIO (or be absent),
# never show other bytes; no other names appear; the backing store apart
# from the interrupted file is well-formed; and the remount itself is not
# confused by the broken file.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
mkdata "$T/big" $((64 * 1048576))
closed=()
for ((i = 1; i <= 8; i++)); do
	mkdata "$T/closed.$i" $((i * 70001))
	cp "$T/closed.$i" "$MNT/c1/closed.$i"
	closed+=("closed.$i")
done
# one file rewritten in place and closed
mkdata "$T/mod" 300000
cp "$T/mod" "$MNT/c1/mod"
mkdata "$T/patch" 5000
dd if="$T/patch" of="$T/mod" bs=5000 seek=13 oflag=seek_bytes conv=notrunc status=none
dd if="$T/patch" of="$MNT/c1/mod" bs=5000 seek=13 oflag=seek_bytes conv=notrunc status=none
closed+=(mod)

# the in-progress writer: 200 chunks written, then it holds the file open
( dd if="$T/big" bs=65536 count=200 status=none && touch "$T/flag" &&
	exec sleep 120 ) >"$MNT/c1/inprogress" &
wpid=$!
wait_for test -e "$T/flag" || fail "the writer did not get going"
mkdata "$T/last" 123457
cp "$T/last" "$MNT/c1/last"
closed+=(last)
kill9 "$MNT"
kill "$wpid" 2>/dev/null || true
wait "$wpid" 2>/dev/null || true

kmount "$STORE" "$MNT"
for f in "${closed[@]}"; do
	assert_cmp "$MNT/c1/$f" "$T/$f" "file $f closed before the kill"
done
if [[ -e $MNT/c1/inprogress ]]; then
	rc=0
	cat "$MNT/c1/inprogress" >"$T/got" 2>"$T/err" || rc=$?
	n=$(stat -c %s "$T/got")
	cmp -s -n "$n" "$T/got" "$T/big" ||
		fail "interrupted file shows bytes that were never written (first $n bytes differ)"
	if [[ $rc -ne 0 ]]; then
		grep -q 'Input/output error' "$T/err" ||
			fail "interrupted file: read failed with something other than EIO: $(cat "$T/err")"
	fi
	note "interrupted file: $n bytes readable, cat exit $rc"
fi
ls -A "$MNT/c1" | grep -v -x -e 'closed\.[0-9]*' -e mod -e last -e inprogress \
	>"$T/extra" && fail "unexpected names after the crash: $(tr '\n' ' ' <"$T/extra")"
kumount "$MNT"

# Everything but the interrupted file must be well-formed on the backing store.
mkdir "$T/rest"
cp -a "$STORE/." "$T/rest/"
rm -f "$T/rest/c1/inprogress"
crdb check-tree --passphrase-file "$PASS" "$T/rest" >"$T/check" ||
	fail "backing store after the crash: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
note ok
