# lib.sh - helpers for the kmsfs mount tests; sourced by every t_*.sh.
#
# Each test gets a private directory $T under /tmp (or $KMSFS_TEST_TMP) with
# a backing store $STORE and a mount point $MNT.  Daemons run in the
# foreground (-f) in the background of the test shell so that their stderr
# log ($T/daemon.log) can be read and their exit status checked; an EXIT
# trap always unmounts and stops every daemon the test started (by pid).
# Assertions fail with one clear line; the test then exits 1 and run.sh
# shows the log tail.

set -euo pipefail

: "${KMSFS_BIN:?KMSFS_BIN must point to the kmsfs binary}"
[[ $KMSFS_BIN == /* ]] || KMSFS_BIN=$PWD/$KMSFS_BIN
MOUNT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOLS=$(cd "$MOUNT_DIR/../tools" && pwd)
PY=/usr/bin/python3
SHARED=${KMSFS_SHARED:-$(cd "$MOUNT_DIR/../../.." && pwd)/shared}
VECTORS=$SHARED/vectors/crdb
THIRD_PARTY=$SHARED/third_party  # public suites, built at test time
TEST_NAME=$(basename "$0" .sh)
CHUNK=65536
CHUNK_CT=65552

T=$(mktemp -d "${KMSFS_TEST_TMP:-/tmp}/kmsfs-$TEST_NAME.XXXXXX")
STORE=$T/store
MNT=$T/mnt
DAEMON_LOG=$T/daemon.log
mkdir -p "$STORE" "$MNT"
: >"$DAEMON_LOG"
# The record of trusted chain keys: per test, never the machine's.
export KMSFS_KNOWN_KEYS=$T/known-keys

declare -A DAEMON_PID=()   # mount point -> pid of the daemon we started
LOOP_MOUNTS=()             # file systems small_store mounted
KEYARGS=()                 # key options for kmount (setup_passphrase/kms)

# ------------------------------------------------------------ messages

note() { printf '# %s\n' "$*"; }

fail() {
	printf 'FAIL: %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# skip REASON: the test does not apply here; run.sh prints "SKIP: name
# (REASON)" from the last line of the output.
skip() {
	printf '%s\n' "$*"
	exit 77
}

# need_third_party NAME: skip unless the suite $THIRD_PARTY/NAME is there.
need_third_party() {
	[[ -d $THIRD_PARTY/$1 ]] ||
		skip "no $THIRD_PARTY/$1 (KMSFS_SHARED points to shared/)"
}

# now: wall clock in seconds (ns resolution); since T0: seconds elapsed
# since T0, one decimal.
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

crdb() { "$PY" "$TOOLS/crdb.py" "$@"; }
fsop() { "$PY" "$TOOLS/fsop.py" "$@"; }

# ------------------------------------------------------------ cleanup

_cleanup() {
	local rc=$? m pid
	set +e
	for m in "${!DAEMON_PID[@]}"; do
		# a dead daemon's mount fails mountpoint -q (ENOTCONN)
		if mountpoint -q "$m" || grep -q " $m " /proc/mounts; then
			fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"
		fi
	done
	for m in "${!DAEMON_PID[@]}"; do
		pid=${DAEMON_PID[$m]}
		[[ -n $pid ]] || continue
		WAIT_SECS=5 wait_for _dead "$pid" || kill -9 "$pid" 2>/dev/null
	done
	for m in "${LOOP_MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	# A sanitizer build's report in a daemon fails the test, whatever
	# the daemon did next.
	if grep -qE 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' \
		"$DAEMON_LOG" 2>/dev/null; then
		echo "FAIL: $TEST_NAME: a sanitizer reported in the daemon log:" >&2
		grep -m 3 -A 12 -E 'WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer|runtime error:' \
			"$DAEMON_LOG" >&2
		[[ $rc -eq 0 || $rc -eq 77 ]] && rc=1
	fi
	# never remove a tree something is still mounted in
	if grep -q " $T/" /proc/mounts; then
		echo "lib.sh: $T still has mounts; not removed" >&2
	elif [[ ($rc -ne 0 && $rc -ne 77) || -n ${KMSFS_KEEP:-} ]]; then
		if [[ -s $DAEMON_LOG ]]; then
			echo "--- daemon log tail ($DAEMON_LOG) ---" >&2
			tail -n 25 "$DAEMON_LOG" >&2
		fi
		if [[ -n ${KMSFS_KEEP:-} ]]; then
			echo "lib.sh: kept $T" >&2
		else
			rm -rf "$T"
		fi
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------ keys

# A passphrase file (0600) and KEYARGS for it.
setup_passphrase() {
	PASS=$T/pass
	printf '%s\n' "${1:-correct horse battery staple $$}" >"$PASS"
	chmod 600 "$PASS"
	KEYARGS=(--passphrase-file "$PASS")
}

# A local master key via `kmsfs keygen` and KEYARGS for it.
setup_kms() {
	KEYFILE=$T/master.key
	KMS_URI=$("$KMSFS_BIN" keygen "$KEYFILE") ||
		fail "kmsfs keygen $KEYFILE failed"
	KMS_URI=$(printf '%s\n' "$KMS_URI" | grep -o 'file:///[^[:space:]]*' |
		head -n1)
	[[ -n $KMS_URI ]] || fail "kmsfs keygen printed no file:/// URI"
	KEYARGS=(--kms "$KMS_URI")
}

# ------------------------------------------------------------ mounting

# small_store MIB: put $STORE on an ext4 file system of its own, MIB MiB
# (a loop mount of a sparse image in $T), so that a runaway writer meets
# ENOSPC there instead of filling the host's disk.  Unmounted by the trap.
small_store() {
	truncate -s "${1}M" "$T/store.img"
	mkfs.ext4 -q -F "$T/store.img" >"$T/mkfs.out" 2>&1 ||
		fail "mkfs.ext4 of the store image failed: $(tail -n 2 "$T/mkfs.out")"
	mount -o loop "$T/store.img" "$STORE" ||
		fail "cannot loop-mount the store image (no loop devices?)"
	LOOP_MOUNTS+=("$STORE")
	rmdir "$STORE/lost+found"   # an empty store, like a fresh directory
}

# wait_for COND-COMMAND... : poll up to $WAIT_SECS (default 20) seconds.
wait_for() {
	local i
	for ((i = 0; i < ${WAIT_SECS:-20} * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# A ThreadSanitizer build (configure --enable-tsan) reads its options
# here; libfuse is not instrumented, see tests/tsan.supp.
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$MOUNT_DIR/../tsan.supp second_deadlock_stack=1}

_sanitizer_check() {
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer|ThreadSanitizer' \
		"$DAEMON_LOG"; then
		fail "sanitizer report in the daemon log ($(grep -m1 -E 'Sanitizer|runtime error' "$DAEMON_LOG"))"
	fi
}

# kmount STORE MNT [extra mount options...]: foreground daemon in the
# background, KEYARGS for keys, log to $DAEMON_LOG; returns once mounted.
kmount() {
	local store=$1 mnt=$2 pid
	shift 2
	"$KMSFS_BIN" mount -f "${KEYARGS[@]}" "$@" "$store" "$mnt" \
		>>"$DAEMON_LOG" 2>&1 &
	pid=$!
	DAEMON_PID[$mnt]=$pid
	if ! wait_for _mounted_or_dead "$mnt" "$pid"; then
		fail "mount of $mnt not ready after ${WAIT_SECS:-20}s"
	fi
	if ! mountpoint -q "$mnt"; then
		local rc=0
		wait "$pid" || rc=$?
		unset "DAEMON_PID[$mnt]"
		fail "kmsfs mount -f exited ($rc) without mounting $mnt: $(tail -n 3 "$DAEMON_LOG" | tr '\n' ' ')"
	fi
}
_mounted_or_dead() { mountpoint -q "$1" || ! kill -0 "$2" 2>/dev/null; }

# kmount_daemon STORE MNT [extra...]: the default (daemonizing) mode.  The
# command must return 0 only once the file system is mounted.
kmount_daemon() {
	local store=$1 mnt=$2 rc=0
	shift 2
	timeout 60 "$KMSFS_BIN" mount "${KEYARGS[@]}" "$@" "$store" "$mnt" \
		>>"$DAEMON_LOG" 2>&1 || rc=$?
	[[ $rc -eq 0 ]] || fail "kmsfs mount (daemonizing) exited $rc"
	mountpoint -q "$mnt" ||
		fail "kmsfs mount returned 0 but $mnt is not mounted yet"
	DAEMON_PID[$mnt]=$(find_daemon_pid "${DAEMON_WORD:-$mnt}")
	[[ -n ${DAEMON_PID[$mnt]} ]] ||
		fail "no kmsfs daemon process found for $mnt"
}

# The pid of the `kmsfs mount` process whose command line has the word $1
# (the mount point, or the config file); empty if there is none.
find_daemon_pid() {
	local p cmd
	for p in /proc/[0-9]*; do
		[[ ${p#/proc/} == "$$" || ${p#/proc/} == "$BASHPID" ]] && continue
		cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		[[ $cmd == *kmsfs*" mount "*" $1 "* && $cmd != timeout* ]] &&
			{ echo "${p#/proc/}"; return 0; }
	done
	return 0
}

# kumount MNT: `kmsfs umount`, then the daemon must exit 0 and leave no
# sanitizer report.
kumount() {
	local mnt=$1 pid rc=0
	pid=${DAEMON_PID[$mnt]:-}
	timeout 30 "$KMSFS_BIN" umount "$mnt" >>"$DAEMON_LOG" 2>&1 || rc=$?
	[[ $rc -eq 0 ]] || fail "kmsfs umount $mnt exited $rc"
	! mountpoint -q "$mnt" || fail "$mnt still mounted after kmsfs umount"
	if [[ -n $pid ]]; then
		wait_for _dead "$pid" ||
			fail "daemon $pid still running 20s after umount"
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		# a daemonized process is not our child: wait gives 127
		[[ $rc -eq 0 || $rc -eq 127 ]] ||
			fail "daemon for $mnt exited $rc after a clean unmount"
	fi
	unset "DAEMON_PID[$mnt]"
	_sanitizer_check
}
_dead() { ! kill -0 "$1" 2>/dev/null; }

# kill9 MNT: crash the daemon and clear the dead mount.
kill9() {
	local mnt=$1 pid=${DAEMON_PID[$1]}
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	unset "DAEMON_PID[$mnt]"
}

# daemon_pid MNT: the pid of the daemon serving MNT (started by kmount).
daemon_pid() {
	[[ -n ${DAEMON_PID[$1]:-} ]] || fail "no daemon recorded for $1"
	echo "${DAEMON_PID[$1]}"
}

# daemon_kib MNT FIELD: a /proc/PID/status field of MNT's daemon in KiB
# (VmRSS now, VmHWM the peak resident set so far).
daemon_kib() {
	local pid
	pid=$(daemon_pid "$1")
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$pid/status"
}

# ------------------------------------------------------------ assertions

assert_eq() { # ACTUAL EXPECTED WHAT
	[[ "$1" == "$2" ]] || fail "$3: got '$1', expected '$2'"
}

assert_cmp() { # FILE EXPECTED WHAT
	local out
	out=$(cmp "$1" "$2" 2>&1) || fail "$3: $out"
}

# The backing file STORE/CHAIN/PATH decrypts, by the independent reader
# (crdb.py with the chain's ENCRYPTION-INFO and $PASS), to exactly PLAIN.
assert_crdb_plain() { # CHAIN/PATH PLAIN
	crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/${1%%/*}/ENCRYPTION-INFO" \
		"$STORE/$1" -o "$T/crdb.dec" || fail "$1 does not decrypt (crdb.py)"
	assert_cmp "$T/crdb.dec" "$2" "$1 decrypted by crdb.py"
}

assert_mounted() { mountpoint -q "$1" || fail "$1 is not mounted"; }
assert_not_mounted() { ! mountpoint -q "$1" || fail "${2:-$1 is mounted}"; }

# assert_status N WHAT cmd...: exit status must be N; stderr -> $T/err
assert_status() {
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	[[ $rc -eq $want ]] ||
		fail "$what: exit $rc, expected $want (stderr: $(head -c 300 "$T/err" | tr '\n' ' '))"
}

# A readable plaintext file of N bytes that is not all one byte.
mkdata() { # FILE BYTES
	head -c "$2" /dev/urandom >"$1"
}

# The backing file's size must be what a v2 writer produces.
assert_cipher_size() { # BACKINGFILE PLAINBYTES
	local want got
	want=$((20 + $2 + 16 * ($2 / CHUNK + 1)))   # spec §1.3
	got=$(stat -c %s "$1")
	[[ $got -eq $want ]] ||
		fail "$1: backing size $got, expected $want for $2 plaintext bytes"
}

assert_no_marker() { # MARKER DIR
	if grep -r -a -l -F -- "$1" "$2" >"$T/grep.out" 2>/dev/null; then
		fail "marker found in plaintext under $2: $(head -n 3 "$T/grep.out" | tr '\n' ' ')"
	fi
}
