#!/bin/bash
# A full disk loses nothing that was there before and leaves nothing
# unreadable.  The store is a 16 MiB ext4 image on a loop device (no
# reserved blocks); free space is set exactly with a filler file outside
# the chains (lost+found).
#  1. A file with two links (rewritten through a temporary, then copied
#     back into its inode) gets an append whose copy-back does not fit:
#     the append fails and both names still read the original.
#  2. New files are copied in until the disk is full: each one reads back
#     what was written, or (the one that hit the full disk) is absent or a
#     valid file holding a prefix of it.
#  3. After a remount with space again (which finishes files a full disk
#     left unfinished), the backing store is well-formed (crdb.py
#     check-tree: no empty or half-written file, no temporary or journal
#     left) and no IV was used twice.
#  4. With space again, the append works through both names.
. "$(dirname "$0")/lib.sh"

command -v mkfs.ext4 >/dev/null || { echo "no mkfs.ext4"; exit 77; }

IMG=$T/store.img
_loop_cleanup() {
	local rc=$?
	set +e
	if mountpoint -q "$MNT"; then
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	for pid in "${DAEMON_PID[@]}"; do
		WAIT_SECS=5 wait_for _dead "$pid" || kill -9 "$pid" 2>/dev/null
	done
	DAEMON_PID=()
	mountpoint -q "$STORE" && { umount "$STORE" || umount -l "$STORE"; }
	(exit "$rc")
	_cleanup
}
trap _loop_cleanup EXIT

truncate -s 16M "$IMG"
mkfs.ext4 -q -F -m 0 -O ^has_journal "$IMG" || fail "mkfs.ext4"
mount -o loop "$IMG" "$STORE" 2>/dev/null || { echo "no loop device to mount an image"; exit 77; }

# fill_to BYTES: leave BYTES free on the store (filler in lost+found).
fill_to() {
	local avail
	rm -f "$STORE/lost+found/fill"
	sync -f "$STORE"
	avail=$(df -B1 --output=avail "$STORE" | tail -n 1)
	if ((avail > $1)); then
		fallocate -l $((avail - $1)) "$STORE/lost+found/fill" ||
			fail "fallocate of the filler"
	fi
	sync -f "$STORE"
}

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"

# 1. two links, an append whose copy-back cannot get its space
mkdata "$T/a" 1048576
cp "$T/a" "$MNT/c1/a"
ln "$MNT/c1/a" "$MNT/c1/b"
mkdata "$T/more" 1048576
# the temporary (2 MiB) fits, the old inode's growth (1 MiB) does not
fill_to $((2560 * 1024))
if cat "$T/more" >>"$MNT/c1/a" 2>"$T/err"; then
	fail "an append needing 1 MiB more than was free succeeded"
fi
grep -q "No space left on device" "$T/err" ||
	fail "append on a full disk: not ENOSPC: $(cat "$T/err")"
assert_cmp "$MNT/c1/a" "$T/a" "first link after a failed append"
assert_cmp "$MNT/c1/b" "$T/a" "second link after a failed append"
grep -q "kmsfs-tmp" <(ls -A "$STORE/c1") && fail "temporary left in the store"

# 2. new files until the disk is full
fill_to $((3 * 1048576))
full=0
for ((i = 1; i <= 20; i++)); do
	mkdata "$T/n.$i" 300000
	if ! cp "$T/n.$i" "$MNT/c1/n.$i" 2>"$T/err"; then
		grep -q "No space left on device" "$T/err" ||
			fail "new file $i: not ENOSPC: $(cat "$T/err")"
		full=$((full + 1))
	fi
done
((full > 0)) || fail "the disk never filled up"
for ((i = 1; i <= 20; i++)); do
	f=$MNT/c1/n.$i
	[[ -e $f ]] || continue
	cat "$f" >"$T/got" 2>"$T/err" || fail "n.$i unreadable: $(cat "$T/err")"
	n=$(stat -c %s "$T/got")
	cmp -s -n "$n" "$T/got" "$T/n.$i" || fail "n.$i: not a prefix of what was written"
done
note "$full of 20 new files hit the full disk"

# 3. the store, once the next mount (with space again) has finished what
# a full disk interrupted
kumount "$MNT"
rm -f "$STORE/lost+found/fill"
kmount "$STORE" "$MNT"
for ((i = 1; i <= 20; i++)); do
	f=$MNT/c1/n.$i
	[[ -e $f ]] || continue
	cat "$f" >"$T/got" 2>"$T/err" || fail "n.$i unreadable after remount"
	n=$(stat -c %s "$T/got")
	cmp -s -n "$n" "$T/got" "$T/n.$i" || fail "n.$i changed after remount"
done
kumount "$MNT"
ls -A "$STORE/c1" | grep -q "^\.kmsfs-tmp-" && fail "temporary or journal left"
mkdir "$T/copy"
cp -a "$STORE/c1" "$T/copy/"
crdb check-tree --passphrase-file "$PASS" "$T/copy" >"$T/check" ||
	fail "backing store: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
crdb ivs --unique "$T/copy" >/dev/null || fail "an IV was used twice"

# 4. with space, the append works through both names
kmount "$STORE" "$MNT"
cat "$T/more" >>"$MNT/c1/a" || fail "append with free space"
cat "$T/a" "$T/more" >"$T/ab"
assert_cmp "$MNT/c1/a" "$T/ab" "first link after the append"
assert_cmp "$MNT/c1/b" "$T/ab" "second link after the append"
kumount "$MNT"
note ok
