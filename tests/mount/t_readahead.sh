#!/bin/bash
# The mount's read-ahead window (fs/ops_io.c sets it once FUSE_INIT is
# answered): 4096 KiB by default, `-o read_ahead_kb=N` to choose, 0 for
# the kernel's own 128 KiB.  A FUSE mount starts at 128 KiB, so before
# this a cold sequential read came as 128 KiB READ requests, one at a
# time; with the window open it comes as requests of 1 MiB (the most a
# request carries), several in flight.  What must hold:
#  - the window is what was asked for, on the mount's own device info;
#  - a cold read of 64 MiB makes at most 80 READ requests (64 of 1 MiB;
#    main before this made 512), and 512 with read_ahead_kb=0;
#  - the bytes are exact through the mount and by crdb.py;
#  - a bad value is refused with one line and exit status 2, unmounted.
. "$(dirname "$0")/lib.sh"

ra_of() { # MOUNTPOINT: its read_ahead_kb
	cat "/sys/class/bdi/$(mountpoint -d "$1")/read_ahead_kb"
}
count() { # OPCODE FROM-LINE
	tail -n +"$(($2 + 1))" "$DAEMON_LOG" | grep -c "opcode: $1 " || true
}
cold_reads() { # FILE: READ requests of a cold read of FILE, into $T/got
	local before
	sync
	echo 3 >/proc/sys/vm/drop_caches
	before=$(wc -l <"$DAEMON_LOG")
	dd if="$1" of="$T/got" bs=1M status=none || fail "reading $1 failed"
	count READ "$before"
}

setup_passphrase
kmount "$STORE" "$MNT" -d
assert_eq "$(ra_of "$MNT")" 4096 "read_ahead_kb of a mount by default"
mkdir "$MNT/c1"
mkdata "$T/data" $((64 * 1024 * 1024))
cp "$T/data" "$MNT/c1/big"
reads=$(cold_reads "$MNT/c1/big")
note "cold read of 64 MiB, default read-ahead: $reads READ requests"
[[ $reads -le 80 ]] ||
	fail "$reads READ requests for a cold read of 64 MiB: the read-ahead window is not open"
assert_cmp "$T/got" "$T/data" "64 MiB read cold through the mount"
kumount "$MNT"
assert_crdb_plain "c1/big" "$T/data"

kmount "$STORE" "$MNT" -d -o read_ahead_kb=0
assert_eq "$(ra_of "$MNT")" 128 "read_ahead_kb=0 leaves the kernel's"
reads=$(cold_reads "$MNT/c1/big")
note "cold read of 64 MiB, read_ahead_kb=0: $reads READ requests"
[[ $reads -ge 400 ]] || fail "read_ahead_kb=0: only $reads READ requests of 128 KiB"
assert_cmp "$T/got" "$T/data" "64 MiB read cold with the kernel's read-ahead"
kumount "$MNT"

kmount "$STORE" "$MNT" -o allow_other,read_ahead_kb=256
assert_eq "$(ra_of "$MNT")" 256 "read_ahead_kb=256 beside another option"
grep -q " $MNT fuse.kmsfs .*allow_other" /proc/mounts ||
	fail "allow_other next to read_ahead_kb did not reach the mount"
assert_cmp "$MNT/c1/big" "$T/data" "64 MiB read with read_ahead_kb=256"
kumount "$MNT"

for bad in abc -1 "" 1048577 12k 00000000000000000000001; do
	assert_status 2 "read_ahead_kb=$bad" \
		"$KMSFS_BIN" mount "${KEYARGS[@]}" -o "read_ahead_kb=$bad" "$STORE" "$MNT"
	grep -q "read_ahead_kb takes 0 to 1048576" "$T/err" ||
		fail "read_ahead_kb=$bad: $(cat "$T/err")"
	[[ $(wc -l <"$T/err") -eq 1 ]] || fail "read_ahead_kb=$bad: more than one line: $(cat "$T/err")"
	! mountpoint -q "$MNT" || fail "read_ahead_kb=$bad mounted"
done
note ok
