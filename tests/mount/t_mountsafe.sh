#!/bin/bash
# Mount safety (issue 7, requirement 9).  Each refusal exits 1 with one
# line on stderr and mounts nothing:
# - a non-empty mount point, unless -o nonempty (then its files are hidden
#   while mounted and back afterwards);
# - a mount point that is already mounted: a live kmsfs mount, a tmpfs;
# - a second mount of a mounted store (also through a symlink to it): the
#   message names the first mount point and the daemon's pid, -f and
#   daemonized; the lock file .kmsfs-lock is hidden and protected in the
#   mount, and gone after a clean unmount;
# - after kill -9 of the daemon, a mount on the dead mount point says it is
#   a dead kmsfs mount and what to run; `kmsfs umount` clears it; the
#   crash left the store unlocked, so the next mount works and the data
#   is there.
. "$(dirname "$0")/lib.sh"

setup_passphrase
K=$KMSFS_BIN
MNT2=$T/mnt2
STORE2=$T/store2
mkdir -p "$MNT2" "$STORE2"

# refused WHAT REGEX cmd...: exit 1, exactly one line on stderr matching
# REGEX (grep -E), nothing mounted on $MNT2 by it.
refused() {
	local what=$1 re=$2 n
	shift 2
	assert_status 1 "$what" timeout 30 "$@"
	n=$(grep -c . "$T/err" || true)
	[[ $n -eq 1 ]] || fail "$what: expected one line on stderr, got $n: $(head -c 400 "$T/err" | tr '\n' '|')"
	grep -qE -- "$re" "$T/err" || fail "$what: message does not match /$re/: $(cat "$T/err")"
	note "$what: $(cat "$T/err")"
}
mounts_on() { awk -v m="$1" '$5 == m' /proc/self/mountinfo | wc -l; }

# --- a non-empty mount point
echo keep >"$MNT/keep"
refused "non-empty mount point" "$MNT is not empty.*-o nonempty" \
	"$K" mount -f "${KEYARGS[@]}" "$STORE" "$MNT"
assert_not_mounted "$MNT" "a non-empty mount point got mounted"
refused "non-empty mount point (daemonizing)" "$MNT is not empty" \
	"$K" mount "${KEYARGS[@]}" "$STORE" "$MNT"
assert_not_mounted "$MNT" "a non-empty mount point got mounted"
kmount "$STORE" "$MNT" -o nonempty
[[ ! -e $MNT/keep ]] || fail "-o nonempty: the directory's own file shows through the mount"
mkdir "$MNT/c1"
mkdata "$T/data" 100000
cp "$T/data" "$MNT/c1/f"
pid=${DAEMON_PID[$MNT]}

# --- the store is locked by its mount; the lock file is kmsfs's own
grep -qx "pid=$pid" "$STORE/.kmsfs-lock" ||
	fail "lock file does not name the daemon's pid $pid: $(tr '\n' ' ' <"$STORE/.kmsfs-lock")"
grep -qxF "mountpoint=$MNT" "$STORE/.kmsfs-lock" ||
	fail "lock file does not name $MNT: $(tr '\n' ' ' <"$STORE/.kmsfs-lock")"
refused "second mount of a mounted store" \
	"store $STORE is already mounted on $MNT by kmsfs \\(pid $pid\\)" \
	"$K" mount -f "${KEYARGS[@]}" "$STORE" "$MNT2"
assert_not_mounted "$MNT2" "a mounted store got mounted a second time"
ln -s "$STORE" "$T/alias"
refused "second mount through a symlink to the store" \
	"already mounted on $MNT by kmsfs \\(pid $pid\\)" \
	"$K" mount "${KEYARGS[@]}" "$T/alias" "$MNT2"
assert_not_mounted "$MNT2" "a mounted store got mounted a second time"
! ls -A "$MNT" | grep -q kmsfs-lock || fail "the lock file is listed in the mount"
assert_eq "$(fsop stat "$MNT/.kmsfs-lock")" ENOENT "stat of the lock file through the mount"
assert_eq "$(fsop unlink "$MNT/.kmsfs-lock")" ENOENT "unlink of the lock file through the mount"
assert_eq "$(fsop creat "$MNT/c1/.kmsfs-lock")" EPERM "creating a file named .kmsfs-lock"
assert_eq "$(fsop rename "$MNT/c1/f" "$MNT/.kmsfs-lock")" EPERM "renaming onto .kmsfs-lock"
assert_eq "$(fsop mkdir "$MNT/.kmsfs-lock")" EPERM "mkdir .kmsfs-lock"
[[ -f $STORE/.kmsfs-lock ]] || fail "the lock file went away while mounted"

# --- a mount point that is already mounted
setup_passphrase "another passphrase"
refused "mount over a live kmsfs mount" \
	"$MNT is already a mount point \\(fuse.kmsfs from $STORE\\)" \
	"$K" mount -f "${KEYARGS[@]}" -o nonempty "$STORE2" "$MNT"
assert_eq "$(mounts_on "$MNT")" 1 "mounts stacked on $MNT"
mkdir "$T/tm"
DAEMON_PID[$T/tm]=""   # lib.sh's cleanup unmounts it if we fail
mount -t tmpfs kmsfs-test "$T/tm" || fail "cannot mount a tmpfs for the test"
refused "mount over a tmpfs" "$T/tm is already a mount point \\(tmpfs" \
	"$K" mount -f "${KEYARGS[@]}" "$STORE2" "$T/tm"
assert_eq "$(mounts_on "$T/tm")" 1 "mounts stacked on $T/tm"
umount "$T/tm" || fail "cannot unmount the test's tmpfs"
unset "DAEMON_PID[$T/tm]"
setup_passphrase

kumount "$MNT"
[[ ! -e $STORE/.kmsfs-lock ]] || fail "lock file left in the store after a clean unmount"
[[ $(cat "$MNT/keep") == keep ]] || fail "-o nonempty: the directory's own file is gone after unmount"
rm "$MNT/keep"

# --- daemonized: the message names the daemon, not its exited parent
kmount_daemon "$STORE" "$MNT"
pid=${DAEMON_PID[$MNT]}
refused "second mount of a store mounted by a daemon" \
	"already mounted on $MNT by kmsfs \\(pid $pid\\)" \
	"$K" mount "${KEYARGS[@]}" "$STORE" "$MNT2"
kumount "$MNT"

# --- kill -9: a dead mount point
kmount "$STORE" "$MNT"
pid=${DAEMON_PID[$MNT]}
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
# (stat may still answer from the kernel's attribute cache; a listing
# cannot, and the check must not depend on that cache either)
! ls "$MNT" >/dev/null 2>"$T/ls.err" && grep -q 'not connected' "$T/ls.err" ||
	fail "ls of the mount point after kill -9 did not fail with ENOTCONN"
dead="$MNT is a dead kmsfs mount.*'kmsfs umount $MNT'.*'fusermount3 -u $MNT'"
refused "mount on a dead mount point" "$dead" \
	"$K" mount -f "${KEYARGS[@]}" "$STORE" "$MNT"
refused "mount on a dead mount point (daemonizing)" "$dead" \
	"$K" mount "${KEYARGS[@]}" "$STORE" "$MNT"
assert_eq "$(mounts_on "$MNT")" 1 "mounts on the dead mount point"
assert_status 0 "kmsfs umount of a dead mount" timeout 30 "$K" umount "$MNT"
assert_not_mounted "$MNT" "the dead mount is still there after kmsfs umount"
unset "DAEMON_PID[$MNT]"
[[ -f $STORE/.kmsfs-lock ]] || fail "kill -9 removed the lock file (expected it left, unlocked)"
kmount "$STORE" "$MNT"
assert_cmp "$MNT/c1/f" "$T/data" "file written before the crash"
grep -qx "pid=${DAEMON_PID[$MNT]}" "$STORE/.kmsfs-lock" ||
	fail "the new mount did not take over the stale lock file"
kumount "$MNT"
note ok
