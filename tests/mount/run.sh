#!/bin/bash
# run.sh - run the kmsfs mount tests.
#
#   KMSFS_BIN=/path/to/kmsfs tests/mount/run.sh [t_name ...]
#
# Runs every tests/mount/t_*.sh (or the ones named), each under a timeout
# (KMSFS_TEST_TIMEOUT seconds if set, else the test's own "# Timeout: N"
# header line, else 900), after the self-test of the
# independent CockroachDB reader (tests/tools/crdb.py verify-vectors).
# Prints "PASS: name", "FAIL: name" (with the tail of its log) or
# "SKIP: name", then exactly one line "N passed, N failed" (", N skipped"
# when any).  Exit 1 if any failed.  Needs root and /dev/fuse; without them
# every test is skipped.  Logs go to $KMSFS_TEST_LOGDIR (kept), else to a
# temporary directory that is removed when everything passed.
# KMSFS_KEEP=1 keeps each test's files (store, mount point, daemon log).

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
tools=$(cd "$here/../tools" && pwd)

# test_timeout NAME: seconds a test may run (see above).
test_timeout() {
	local t
	t=$(head -n 30 "$here/$1.sh" |
		sed -n 's/^# Timeout: \([0-9][0-9]*\)$/\1/p' | head -n 1)
	echo "${KMSFS_TEST_TIMEOUT:-${t:-900}}"
}

tests=()
if [[ $# -gt 0 ]]; then
	for t in "$@"; do
		t=$(basename "$t" .sh)
		[[ $t == t_* ]] || t=t_$t
		[[ -f $here/$t.sh ]] || { echo "run.sh: no test $here/$t.sh" >&2; exit 2; }
		tests+=("$t")
	done
else
	for f in "$here"/t_*.sh; do
		tests+=("$(basename "$f" .sh)")
	done
fi

if [[ $(id -u) -ne 0 || ! -c /dev/fuse ]]; then
	echo "SKIP: mount tests need root and /dev/fuse"
	echo "0 passed, 0 failed, ${#tests[@]} skipped"
	exit 0
fi
if [[ -z ${KMSFS_BIN:-} || ! -x ${KMSFS_BIN:-} ]]; then
	echo "run.sh: KMSFS_BIN must point to the kmsfs binary" >&2
	exit 2
fi
KMSFS_BIN=$(cd "$(dirname "$KMSFS_BIN")" && pwd)/$(basename "$KMSFS_BIN")
export KMSFS_BIN

keep_logs=${KMSFS_TEST_LOGDIR:+yes}
logdir=${KMSFS_TEST_LOGDIR:-$(mktemp -d /tmp/kmsfs-mount-logs.XXXXXX)}
mkdir -p "$logdir"
KMSFS_TEST_TMP=$(mktemp -d /tmp/kmsfs-run.XXXXXX)
export KMSFS_TEST_TMP

pass=0 failed=0 skipped=0

report_fail() { # name log
	echo "FAIL: $1"
	echo "----- $1: last lines of $2 -----"
	tail -n 40 "$2" | sed 's/^/    /'
	echo "-----"
}

# Any mount a test left behind under our temp root is removed, and the
# test fails: lib.sh's trap should have done it.
sweep_mounts() {
	local m found=1
	while read -r _ m _; do
		case $m in
		"$KMSFS_TEST_TMP"/*)
			found=0
			fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"
			;;
		esac
	done </proc/mounts
	return $found
}

# 0. the independent reader must be right before anything relies on it.
if /usr/bin/python3 "$tools/crdb.py" verify-vectors >"$logdir/crdb_selftest.log" 2>&1; then
	echo "PASS: crdb_selftest"
	pass=$((pass + 1))
else
	report_fail crdb_selftest "$logdir/crdb_selftest.log"
	echo "run.sh: tests/tools/crdb.py is wrong; not running the mount tests"
	echo "$pass passed, $((failed + 1)) failed"
	exit 1
fi

# KMSFS_MOUNT_SKIP="t_a t_b": tests this run leaves out (dev.sh runs the
# long public suites in one of its two builds only).
skip_list=" ${KMSFS_MOUNT_SKIP:-} "

for t in "${tests[@]}"; do
	if [[ $skip_list == *" $t "* ]]; then
		echo "SKIP: $t (KMSFS_MOUNT_SKIP: run in the other build)"
		skipped=$((skipped + 1))
		continue
	fi
	log=$logdir/$t.log
	start=$SECONDS
	rc=0
	timeout_s=$(test_timeout "$t")
	timeout -k 20 "$timeout_s" bash "$here/$t.sh" >"$log" 2>&1 </dev/null || rc=$?
	secs=$((SECONDS - start))
	if sweep_mounts; then
		echo "run.sh: $t left a mount behind" >>"$log"
		[[ $rc -eq 0 ]] && rc=1
	fi
	if [[ $rc -eq 124 || $rc -eq 137 ]]; then
		echo "run.sh: $t timed out after ${timeout_s}s" >>"$log"
	fi
	case $rc in
	0) echo "PASS: $t (${secs}s)"; pass=$((pass + 1)) ;;
	77) echo "SKIP: $t ($(tail -n 1 "$log"))"; skipped=$((skipped + 1)) ;;
	*) report_fail "$t" "$log"; failed=$((failed + 1)) ;;
	esac
done

rmdir "$KMSFS_TEST_TMP" 2>/dev/null || true
if [[ $failed -eq 0 && -z $keep_logs ]]; then
	rm -rf "$logdir"
else
	echo "logs: $logdir"
fi
summary="$pass passed, $failed failed"
[[ $skipped -gt 0 ]] && summary+=", $skipped skipped"
echo "$summary"
[[ $failed -eq 0 ]]
