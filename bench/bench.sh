#!/bin/bash
# bench.sh - kmsfs against a plain directory and gocryptfs, on one disk.
#
#   sudo KMSFS_BIN=build/kmsfs bench/bench.sh            # 1 GiB
#   sudo BENCH_MB=64 KMSFS_BIN=build/kmsfs bench/bench.sh   # quick run
#
# A benchmark to run by hand (root: it drops the page cache), not a test.
# For (a) a plain directory, (b) kmsfs with a local key and (c) gocryptfs
# (initialised non-interactively with -extpass), all under $BENCH_DIR
# (default /var/tmp/kmsfs-bench, i.e. the same disk):
#   write    dd if=/dev/zero bs=1M count=$BENCH_MB conv=fdatasync
#   read     the same file after echo 3 > /proc/sys/vm/drop_caches
#   untar    tar x of a tar of /usr/include (made once), then sync
#   ls -lR   of that tree, caches dropped first
#   rm -rf   of that tree, then sync
# and prints a Markdown table of seconds (and MiB/s for write/read) with the
# ratios kmsfs/gocryptfs and kmsfs/plain (ratios of times: > 1 means
# kmsfs is slower).  The zero-filled file is fine for all three: each
# encrypts, so nothing compresses.

set -euo pipefail

MB=${BENCH_MB:-1024}
DIR=${BENCH_DIR:-/var/tmp/kmsfs-bench}
TREE=${BENCH_TREE:-/usr/include}
here=$(cd "$(dirname "$0")" && pwd)
KMSFS_BIN=${KMSFS_BIN:-$here/../build/kmsfs}

die() { echo "bench.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (drop_caches, FUSE mounts)"
[[ -x $KMSFS_BIN ]] || die "KMSFS_BIN=$KMSFS_BIN is not an executable (build first)"
KMSFS_BIN=$(cd "$(dirname "$KMSFS_BIN")" && pwd)/$(basename "$KMSFS_BIN")
command -v gocryptfs >/dev/null || die "gocryptfs is not installed (apt-get install gocryptfs)"
[[ -d $TREE ]] || die "no $TREE to untar"

mkdir -p "$DIR"
W=$(mktemp -d "$DIR/run.XXXXXX")
KMS_PID=
cleanup() {
	set +e
	for m in "$W/kmsfs.mnt" "$W/gocryptfs.mnt"; do
		mountpoint -q "$m" && { fusermount3 -u "$m" || fusermount3 -u -z "$m"; }
	done
	[[ -n $KMS_PID ]] && wait "$KMS_PID" 2>/dev/null
	grep -q " $W/" /proc/mounts || rm -rf "$W"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# --- the three targets
mkdir -p "$W/plain" "$W/kmsfs.store" "$W/kmsfs.mnt" "$W/gocryptfs.cipher" "$W/gocryptfs.mnt"
"$KMSFS_BIN" keygen "$W/master.key" >"$W/uri"
URI=$(grep -o 'file:///[^[:space:]]*' "$W/uri" | head -n1)
"$KMSFS_BIN" mount -f --kms "$URI" "$W/kmsfs.store" "$W/kmsfs.mnt" 2>"$W/kmsfs.log" &
KMS_PID=$!
for ((i = 0; i < 100; i++)); do mountpoint -q "$W/kmsfs.mnt" && break; sleep 0.1; done
mountpoint -q "$W/kmsfs.mnt" || die "kmsfs did not mount: $(tail -n 3 "$W/kmsfs.log")"
mkdir "$W/kmsfs.mnt/bench"     # a chain

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/gocryptfs.pass"
chmod 600 "$W/gocryptfs.pass"
gocryptfs -q -init -extpass "cat $W/gocryptfs.pass" "$W/gocryptfs.cipher" >/dev/null 2>&1 ||
	die "gocryptfs -init failed"
gocryptfs -q -extpass "cat $W/gocryptfs.pass" "$W/gocryptfs.cipher" "$W/gocryptfs.mnt" \
	>/dev/null 2>&1 || die "gocryptfs mount failed"

declare -A TARGET=([plain]=$W/plain [kmsfs]=$W/kmsfs.mnt/bench [gocryptfs]=$W/gocryptfs.mnt)
SYSTEMS=(plain kmsfs gocryptfs)

# --- the tar, made once, on the same disk
tar -C "$(dirname "$TREE")" -cf "$W/tree.tar" "$(basename "$TREE")"
TAR_MB=$(( $(stat -c %s "$W/tree.tar") / 1048576 ))
NFILES=$(tar -tf "$W/tree.tar" | wc -l)

declare -A R=()
for s in "${SYSTEMS[@]}"; do
	d=${TARGET[$s]}
	echo "bench: $s ..." >&2
	drop_caches
	t0=$(now)
	dd if=/dev/zero of="$d/big" bs=1M count="$MB" conv=fdatasync status=none
	t1=$(now)
	R[$s.write]=$(secs "$t0" "$t1")
	drop_caches
	t0=$(now)
	dd if="$d/big" of=/dev/null bs=1M status=none
	t1=$(now)
	R[$s.read]=$(secs "$t0" "$t1")
	rm -f "$d/big"
	drop_caches
	t0=$(now)
	tar -C "$d" -xf "$W/tree.tar"
	sync
	t1=$(now)
	R[$s.untar]=$(secs "$t0" "$t1")
	drop_caches
	t0=$(now)
	ls -lR "$d" >/dev/null
	t1=$(now)
	R[$s.ls]=$(secs "$t0" "$t1")
	t0=$(now)
	rm -rf "${d:?}/$(basename "$TREE")"
	sync
	t1=$(now)
	R[$s.rm]=$(secs "$t0" "$t1")
done

mbps() { awk -v m="$MB" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", m / s; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
cell() { # system op
	local v=${R[$1.$2]}
	case $2 in
	write | read) echo "$v s ($(mbps "$v") MiB/s)" ;;
	*) echo "$v s" ;;
	esac
}

echo
echo "kmsfs benchmark: $(uname -r), $(nproc) CPUs, $(df --output=source "$DIR" | tail -n1) ($(findmnt -n -o FSTYPE --target "$DIR")), $(date -u +%Y-%m-%d)"
echo
echo "| operation | plain | kmsfs | gocryptfs | kmsfs/gocryptfs | kmsfs/plain |"
echo "|---|---|---|---|---|---|"
for op in write read untar ls rm; do
	case $op in
	write) label="write $MB MiB (dd bs=1M, fdatasync)" ;;
	read) label="read $MB MiB (cold cache)" ;;
	untar) label="untar $TREE ($TAR_MB MiB, $NFILES entries)" ;;
	ls) label="ls -lR (cold cache)" ;;
	rm) label="rm -rf" ;;
	esac
	echo "| $label | $(cell plain $op) | $(cell kmsfs $op) | $(cell gocryptfs $op) |" \
		"$(ratio "${R[kmsfs.$op]}" "${R[gocryptfs.$op]}") | $(ratio "${R[kmsfs.$op]}" "${R[plain.$op]}") |"
done
echo
echo "Ratios are of elapsed times (> 1: kmsfs slower); $(gocryptfs -version 2>/dev/null | head -n1 | cut -d';' -f1)."
