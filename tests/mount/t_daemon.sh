#!/bin/bash
# The default daemonizing mode: `kmsfs mount` returns 0 only once the mount
# is usable, the daemon has core dumps off, files written through it
# persist; `kmsfs umount` unmounts and the daemon exits (its keys go with
# it); an external fusermount3 -u also ends the daemon; a mount from a
# --config file (daemonizing and foreground) works; -o options reach the
# kernel mount.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount_daemon "$STORE" "$MNT"
pid=${DAEMON_PID[$MNT]}
note "daemon pid $pid"
mkdir "$MNT/c1"
mkdata "$T/data" 200000
cp "$T/data" "$MNT/c1/f"
assert_cmp "$MNT/c1/f" "$T/data" "read back through the daemonized mount"
grep -qE '^Max core file size +0 +0' "/proc/$pid/limits" ||
	fail "daemon can dump core: $(grep 'core file' "/proc/$pid/limits")"
ppid=$(awk '{print $4}' "/proc/$pid/stat")
[[ $ppid != "$$" ]] || fail "daemon is still a child of the shell: it did not daemonize"
kumount "$MNT"
_dead "$pid" || fail "daemon $pid still alive after kmsfs umount"

# external unmount ends the daemon too
kmount_daemon "$STORE" "$MNT"
pid=${DAEMON_PID[$MNT]}
assert_cmp "$MNT/c1/f" "$T/data" "read after remount"
fusermount3 -u "$MNT" || fail "fusermount3 -u failed"
wait_for _dead "$pid" || fail "daemon $pid survives fusermount3 -u"
unset "DAEMON_PID[$MNT]"

# --config, daemonizing
cat >"$T/kmsfs.conf" <<CONF
backing = "$STORE";
mountpoint = "$MNT";
passphrase_file = "$PASS";
foreground = false;
log_level = "info";
CONF
chmod 600 "$T/kmsfs.conf"
rc=0
timeout 60 "$KMSFS_BIN" mount --config "$T/kmsfs.conf" >>"$DAEMON_LOG" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || fail "mount --config (daemonizing) exited $rc"
assert_mounted "$MNT"
DAEMON_PID[$MNT]=$(find_daemon_pid "$T/kmsfs.conf")
[[ -n ${DAEMON_PID[$MNT]} ]] || fail "no daemon found for the --config mount"
assert_cmp "$MNT/c1/f" "$T/data" "read through the --config mount"
kumount "$MNT"

# --config with foreground = true stays in front until unmounted
sed -i 's/^foreground = false;/foreground = true;/' "$T/kmsfs.conf"
"$KMSFS_BIN" mount --config "$T/kmsfs.conf" >>"$DAEMON_LOG" 2>&1 &
DAEMON_PID[$MNT]=$!
wait_for _mounted_or_dead "$MNT" "${DAEMON_PID[$MNT]}" || fail "foreground --config mount not ready"
assert_mounted "$MNT"
kill -0 "${DAEMON_PID[$MNT]}" || fail "foreground --config mount: the process we started is gone"
assert_cmp "$MNT/c1/f" "$T/data" "read through the foreground --config mount"
kumount "$MNT"

# -o passes FUSE options to the kernel mount
KEYARGS=(--passphrase-file "$PASS")
kmount "$STORE" "$MNT" -o allow_other
awk -v m="$MNT" '$2 == m { print $4 }' /proc/mounts >"$T/opts"
grep -q allow_other "$T/opts" || fail "-o allow_other not in the mount options: $(cat "$T/opts")"
assert_cmp "$MNT/c1/f" "$T/data" "read through the -o allow_other mount"
kumount "$MNT"
note ok
