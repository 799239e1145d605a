#!/bin/bash
# Many chains in one mount (issue 8 item 3): 700 chains made through the
# mount, a file written into each, then all read back after a remount.
# Every chain key lives on the daemon's locked secure heap (1 MiB); each
# used to take a 2 KiB block there, so the 510th mkdir failed with ENOMEM
# and, after a remount, the chains past that gave EACCES without a log
# line.  Now a key takes 32 bytes (limit: 16,384 keys per mount).
. "$(dirname "$0")/lib.sh"

N=700
setup_kms
kmount "$STORE" "$MNT"
for ((i = 0; i < N; i++)); do
	mkdir "$MNT/c$i" 2>"$T/err" || fail "mkdir of chain $i: $(cat "$T/err")"
	echo "data of chain $i" >"$MNT/c$i/f" || fail "write into chain $i"
done
kumount "$MNT"
assert_eq "$(find "$STORE" -name ENCRYPTION-INFO | wc -l)" "$N" "chains in the store"
kmount "$STORE" "$MNT"
for ((i = 0; i < N; i++)); do
	assert_eq "$(cat "$MNT/c$i/f" 2>&1)" "data of chain $i" "chain $i after a remount"
done
echo "more" >"$MNT/c$((N - 1))/g" || fail "write after reading every chain"
kumount "$MNT"
! grep -q 'cannot hold its key' "$DAEMON_LOG" || fail "$(grep -m1 'cannot hold' "$DAEMON_LOG")"
note ok
