#!/bin/bash
# bench.sh - kmsfs against a plain directory and gocryptfs, on one disk, in
# one run: what users feel (throughput, trees of small files, CPU).
#
#   sudo KMSFS_BIN=build/kmsfs bench/bench.sh                 # 512 MiB, 3 rounds
#   sudo KMSFS_BIN=build/kmsfs bench/bench.sh --quick         # smoke run (~1 min)
#   sudo KMSFS_BIN=build/kmsfs bench/bench.sh --only write,read --rounds 5
#   sudo KMSFS_BIN=build/kmsfs bench/bench.sh --base /old/build/kmsfs # before/after
#
# A benchmark to run by hand, not a test: it runs as root (drop_caches,
# FUSE mounts) and needs gocryptfs and fio (Debian: apt-get install
# gocryptfs fio); the fsx row also needs gcc and xfslibs-dev (it builds fsx
# from ../shared/third_party/xfstests-ltp, or $KMSFS_SHARED/third_party, into
# the scratch directory) and is skipped with a note without them.
#
# Options:
#   --rounds N      interleaved rounds (default 3): every row runs on plain,
#                   kmsfs, gocryptfs in turn, then the next row; N times over,
#                   the order turned by one each round (kmsfs, gocryptfs,
#                   plain in the second)
#   --size MiB      size of the big file (default 512)
#   --only ROWS     comma-separated subset of the rows below
#   --json FILE     write the machine, the settings, every raw sample and the
#                   summary to FILE
#   --dir DIR       parent of the scratch directory (default /var/tmp; keep it
#                   on the disk under test, here the one holding /work)
#   --tree DIR      the tree to untar (default /usr/include, ~8,900 entries)
#   --kmsfs-args S  extra words for 'kmsfs mount' (e.g. "-o max_read=131072")
#   --base BIN      another kmsfs binary (an older build) measured in the same
#                   rounds as a fourth target, "kmsfs before", on its own
#                   store: every row runs on plain, before, kmsfs, gocryptfs
#                   in turn, and the table gains the ratio kmsfs vs before
#   --quick         smoke run: 1,000 small files, 200 redirects and appends,
#                   fsx -N 2000, and unless given --size 32 and 1 round
#                   (numbers are not meaningful)
#
# Rows (ids for --only); "cold" means `sync; echo 3 >/proc/sys/vm/drop_caches`
# just before, and every timed step starts after a sync:
#   write     dd if=/dev/zero bs=1M count=SIZE conv=fdatasync (MB/s)
#   cpu       utime+stime of the kmsfs / gocryptfs daemon across that write,
#             per GiB written (s); with openssl's AES-256-GCM alone for scale
#   read      dd of that file to /dev/null, cold (MB/s)
#   warm      the same read again, by a new open, without dropping caches
#             (the kernel's page cache kept across opens) (MB/s)
#   par       4 dd readers in parallel, one per quarter of it, cold (MB/s total)
#   randread  fio 4k random reads (psync, queue depth 1, fixed seed,
#             SIZE/32 KiB reads), cold (IOPS)
#   untar     tar x of a tar of --tree (made once, kept in the page cache),
#             then sync (s)
#   ls        ls -lR of that tree, cold (s)
#   rm        rm -rf of it, then sync (s)
#   small     tar x of 5,000 x 4 KiB files (50 directories), then sync (s)
#   redirect  1,000 x 4 KiB files each written by the shell's `cmd >file`
#             (bash's printf: create, dup2, close, write, close), then
#             sync (s)
#   append    2,000 x (4 KiB append + fsync) on one file (s)
#   fsx       fsx -N 100000 -S 7 (s)
# MB/s are 10^6 bytes per second.  The zero-filled file is fine for all three
# targets: kmsfs and gocryptfs encrypt it and ext4 does not compress.
#
# Output: a machine line, then a Markdown table on stdout with per row the
# median (min-max) of each target and the ratios kmsfs vs gocryptfs and
# kmsfs vs plain (and kmsfs vs before, with --base), of medians, oriented
# so that > 1 means kmsfs is better
# (faster, or less CPU).  Progress goes to stderr.  Everything lives in one
# scratch directory, removed at exit; mounts are undone even on Ctrl-C.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
die() { echo "bench.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit "${1:-2}"; }
thou() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; } # 5000 -> 5,000

ALL_ROWS=(write read warm par randread untar ls rm small redirect cpu append fsx)
ROUNDS=3 SIZE=512 JSON='' PARENT=/var/tmp TREE=/usr/include ONLY='' QUICK=''
KMSFS_ARGS='' SET_ROUNDS='' SET_SIZE='' BASE_BIN=''
NSMALL=5000 NREDIR=1000 NAPPEND=2000 FSX_OPS=100000
while [[ $# -gt 0 ]]; do
	case $1 in
	--rounds) ROUNDS=${2:?} SET_ROUNDS=1; shift ;;
	--size) SIZE=${2:?} SET_SIZE=1; shift ;;
	--only) ONLY=${2:?}; shift ;;
	--json) JSON=${2:?}; shift ;;
	--dir) PARENT=${2:?}; shift ;;
	--tree) TREE=${2:?}; shift ;;
	--kmsfs-args) KMSFS_ARGS=${2:?}; shift ;;
	--base) BASE_BIN=${2:?}; shift ;;
	--quick) QUICK=1 ;;
	-h | --help) usage 0 ;;
	*) echo "bench.sh: unknown argument '$1'" >&2; usage ;;
	esac
	shift
done
if [[ -n $QUICK ]]; then
	[[ -n $SET_ROUNDS ]] || ROUNDS=1
	[[ -n $SET_SIZE ]] || SIZE=32
	NSMALL=1000 NREDIR=200 NAPPEND=200 FSX_OPS=2000
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer"
[[ $SIZE =~ ^[0-9]+$ && $SIZE -ge 4 ]] || die "--size wants MiB, at least 4"

declare -A SEL=()
if [[ -z $ONLY ]]; then
	for r in "${ALL_ROWS[@]}"; do SEL[$r]=1; done
else
	IFS=, read -r -a want <<<"$ONLY"
	for r in "${want[@]}"; do
		[[ " ${ALL_ROWS[*]} " == *" $r "* ]] || die "unknown row '$r' (rows: ${ALL_ROWS[*]})"
		SEL[$r]=1
	done
fi
sel() { [[ -n ${SEL[$1]:-} ]]; }
sel_any() { local r; for r; do sel "$r" && return 0; done; return 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (drop_caches, FUSE mounts)"
KMSFS_BIN=${KMSFS_BIN:-$root/build/kmsfs}
[[ -x $KMSFS_BIN ]] || die "KMSFS_BIN=$KMSFS_BIN is not an executable (build first)"
KMSFS_BIN=$(cd "$(dirname "$KMSFS_BIN")" && pwd)/$(basename "$KMSFS_BIN")
if [[ -n $BASE_BIN ]]; then
	[[ -x $BASE_BIN ]] || die "--base $BASE_BIN is not an executable"
	BASE_BIN=$(cd "$(dirname "$BASE_BIN")" && pwd)/$(basename "$BASE_BIN")
fi
command -v gocryptfs >/dev/null || die "gocryptfs is not installed (apt-get install gocryptfs)"
command -v fusermount3 >/dev/null || die "fusermount3 is not installed (apt-get install fuse3)"
PY=/usr/bin/python3
[[ -x $PY ]] || die "$PY is needed (summary, helpers)"
if sel randread && ! command -v fio >/dev/null; then
	die "fio is not installed: apt-get install fio, or leave out the randread row (--only)"
fi
if sel_any untar ls rm; then
	[[ -d $TREE ]] || die "no $TREE to untar (--tree)"
fi
[[ -d $PARENT ]] || die "--dir $PARENT is not a directory"
PARENT=$(cd "$PARENT" && pwd)

W=$(mktemp -d "$PARENT/kmsfs-bench.XXXXXX")
KMS_PID='' GOC_PID='' BASE_PID=''
BG_PIDS=()
SAMPLES=$W/samples.tsv ROWSF=$W/rows.tsv META=$W/meta.tsv NOTES=$W/notes.txt
: >"$SAMPLES"
: >"$ROWSF"
: >"$META"
: >"$NOTES"

# stop a daemon we started: it exits once its mount is gone
stop_daemon() { # pid
	local i
	[[ -n $1 ]] || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
cleanup() {
	local p m
	set +e
	trap - INT TERM
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for m in "$W/kmsfs.mnt" "$W/base.mnt" "$W/gocryptfs.mnt"; do
		mountpoint -q "$m" || continue
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m"
	done
	stop_daemon "$KMS_PID"
	stop_daemon "$BASE_PID"
	stop_daemon "$GOC_PID"
	if grep -q " $W/" /proc/mounts; then
		echo "bench.sh: $W still has mounts; not removed" >&2
	else
		rm -rf "$W"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "bench: $*" >&2; }
note() { echo "$*" >>"$NOTES"; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
us_to_s() { printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
mbps() { awk -v b="$1" -v us="$2" 'BEGIN { printf "%.1f", (us > 0 ? b / us : 0) }'; } # bytes, µs
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# utime+stime of a process (all its threads), in clock ticks
cpu_ticks() {
	local line rest
	read -r line <"/proc/$1/stat" || return 1
	rest=${line##*) }
	# shellcheck disable=SC2086 # split the fields on purpose
	set -- $rest
	echo $((${12} + ${13}))
}
mounted() { mountpoint -q "$1" || { echo "bench.sh: $1 is no longer mounted" >&2; return 1; }; }

# --- the machine
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
ram=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
fs_src=$(findmnt -n -o SOURCE --target "$W" | head -n1)
fs_type=$(findmnt -n -o FSTYPE --target "$W" | head -n1)
disk=$(lsblk -no PKNAME "$fs_src" 2>/dev/null | head -n1 || true)
[[ -n $disk ]] || disk=$(basename "$fs_src")
dev_info=$fs_src
if [[ -d /sys/block/$disk ]]; then
	drv=$(basename "$(readlink -f "/sys/block/$disk/device/driver" 2>/dev/null)" 2>/dev/null || true)
	model=$(sed 's/ *$//' "/sys/block/$disk/device/model" 2>/dev/null || true)
	rota=$(cat "/sys/block/$disk/queue/rotational" 2>/dev/null || echo "?")
	dsize=$(lsblk -dno SIZE "/dev/$disk" 2>/dev/null | tr -d ' ' || true)
	rota="sysfs rotational=$rota"
	dev_info="$fs_src (${model:+$model, }${drv:+$drv, }$dsize, $rota)"
fi
# The revision of the checkout the binary was built in (KMSFS_BIN may come
# from another tree than this script).
rev_of() { git -C "$(dirname "$(readlink -f "$1")")" describe --always --dirty 2>/dev/null || echo unknown; }
kmsfs_rev=$(rev_of "$KMSFS_BIN")
goc_ver=$(gocryptfs -version 2>/dev/null | head -n1 | cut -d';' -f1)
MACHINE="$cpu_model, $(nproc) cores, $ram RAM, Linux $(uname -r), $fs_type on $dev_info"
meta machine "$MACHINE"
meta cpu_model "$cpu_model"
meta cores "$(nproc)"
meta ram "$ram"
meta kernel "$(uname -r)"
meta fs "$fs_type"
meta device "$dev_info"
meta loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta kmsfs "$kmsfs_rev"
[[ -z $BASE_BIN ]] || meta base "$(rev_of "$BASE_BIN")"
meta gocryptfs "$goc_ver"
meta fio "$(fio --version 2>/dev/null || echo none)"
meta rounds "$ROUNDS"
meta size_mib "$SIZE"
meta quick "${QUICK:-0}"
meta kmsfs_args "$KMSFS_ARGS"
say "$MACHINE"
say "scratch directory $W"

# --- rows: id, label, unit, which way is better
row() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$ROWSF"; }
QUARTER=$((SIZE / 4))
RR_IOS=$((SIZE * 1024 / 32))
TREE_NAME=$(basename "$TREE")
row write "sequential write, dd bs=1M + fdatasync, $SIZE MiB (MB/s)" MB/s higher
row read "sequential read, cold (MB/s)" MB/s higher
row warm "sequential re-read, warm, new open (MB/s)" MB/s higher
row par "4 parallel readers, cold (MB/s total)" MB/s higher
row randread "fio 4k random read, cold, $RR_IOS reads (IOPS)" IOPS higher
row untar "untar $TREE (ENTRIES entries) + sync (s)" s lower
row ls "ls -lR of it, cold (s)" s lower
row rm "rm -rf of it + sync (s)" s lower
row small "$(thou "$NSMALL") x 4 KiB files untarred + sync (s)" s lower
row redirect "$(thou "$NREDIR") x 4 KiB files by the shell's cmd >file + sync (s)" s lower
row cpu "daemon CPU per GiB written (s)" s lower
row append "$(thou "$NAPPEND") x (4 KiB append + fsync) (s)" s lower
row fsx "fsx -N $FSX_OPS -S 7 (s)" s lower
for r in "${ALL_ROWS[@]}"; do sel "$r" && meta "selected" "$r"; done

record() { # row system round value
	printf '%s\t%s\t%s\t%s\n' "$@" >>"$SAMPLES"
	say "  $1 $2: $4"
}

# --- the three targets
SYSTEMS=(plain kmsfs gocryptfs)
[[ -z $BASE_BIN ]] || SYSTEMS=(plain base kmsfs gocryptfs)
meta systems "${SYSTEMS[*]}"
declare -A TARGET=([plain]=$W/plain [kmsfs]=$W/kmsfs.mnt/bench [gocryptfs]=$W/gocryptfs.mnt
	[base]=$W/base.mnt/bench)
declare -A MOUNTP=([kmsfs]=$W/kmsfs.mnt [gocryptfs]=$W/gocryptfs.mnt [base]=$W/base.mnt)
declare -A DAEMON=()
mkdir -p "$W/plain" "$W/kmsfs.store" "$W/kmsfs.mnt" "$W/gocryptfs.cipher" "$W/gocryptfs.mnt"

wait_mount() { # mountpoint pid log
	local i
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$1" && return 0
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	die "$1 did not mount: $(tail -n 3 "$3")"
}

"$KMSFS_BIN" keygen "$W/master.key" >"$W/uri"
URI=$(grep -o 'file:///[^[:space:]]*' "$W/uri" | head -n1)
[[ -n $URI ]] || die "kmsfs keygen printed no file:// URI"
# shellcheck disable=SC2086 # --kmsfs-args is a list of words
"$KMSFS_BIN" mount -f $KMSFS_ARGS --kms "$URI" "$W/kmsfs.store" "$W/kmsfs.mnt" \
	2>"$W/kmsfs.log" &
KMS_PID=$!
DAEMON[kmsfs]=$KMS_PID
wait_mount "$W/kmsfs.mnt" "$KMS_PID" "$W/kmsfs.log"
mkdir "$W/kmsfs.mnt/bench" # a chain
if [[ -n $BASE_BIN ]]; then
	mkdir -p "$W/base.store" "$W/base.mnt"
	# shellcheck disable=SC2086 # --kmsfs-args is a list of words
	"$BASE_BIN" mount -f $KMSFS_ARGS --kms "$URI" "$W/base.store" "$W/base.mnt" \
		2>"$W/base.log" &
	BASE_PID=$!
	DAEMON[base]=$BASE_PID
	wait_mount "$W/base.mnt" "$BASE_PID" "$W/base.log"
	mkdir "$W/base.mnt/bench"
fi

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/gocryptfs.pass"
chmod 600 "$W/gocryptfs.pass"
gocryptfs -q -init -passfile "$W/gocryptfs.pass" "$W/gocryptfs.cipher" >"$W/gocryptfs.log" 2>&1 ||
	die "gocryptfs -init failed: $(tail -n 3 "$W/gocryptfs.log")"
gocryptfs -fg -q -passfile "$W/gocryptfs.pass" "$W/gocryptfs.cipher" "$W/gocryptfs.mnt" \
	>>"$W/gocryptfs.log" 2>&1 &
GOC_PID=$!
DAEMON[gocryptfs]=$GOC_PID
wait_mount "$W/gocryptfs.mnt" "$GOC_PID" "$W/gocryptfs.log"

# --- inputs, made once
if sel_any untar ls rm; then
	tar -C "$(dirname "$TREE")" -cf "$W/tree.tar" "$TREE_NAME" 2>"$W/tar.log" ||
		die "tar of $TREE failed: $(tail -n 2 "$W/tar.log")"
	ENTRIES=$(tar -tf "$W/tree.tar" | wc -l)
	sed -i "s|(ENTRIES entries)|($(thou "$ENTRIES") entries)|" "$ROWSF"
	meta tree_entries "$ENTRIES"
fi
if sel small; then
	# NSMALL files of 4 KiB (fixed pseudo-random bytes) in 50 directories
	"$PY" -c '
import io, random, sys, tarfile
n, out = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(7)
with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as t:
    for d in range(50):
        ti = tarfile.TarInfo("small/d%02d" % d)
        ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
        t.addfile(ti)
    for i in range(n):
        ti = tarfile.TarInfo("small/d%02d/f%05d" % (i % 50, i))
        ti.size, ti.mode, ti.mtime = 4096, 0o644, 1700000000
        t.addfile(ti, io.BytesIO(rnd.randbytes(4096)))
' "$NSMALL" "$W/small.tar"
fi
FSX=
if sel fsx; then
	shared=${KMSFS_SHARED:-$root/../shared}
	if [[ ! -x $shared/third_party/xfstests-ltp/build.sh ]]; then
		note "fsx: skipped, no $shared/third_party/xfstests-ltp/build.sh (set KMSFS_SHARED)"
	elif [[ ! -f /usr/include/xfs/xfs.h ]]; then
		note "fsx: skipped, xfslibs-dev is not installed (apt-get install xfslibs-dev)"
	elif ! "$shared/third_party/xfstests-ltp/build.sh" "$W/tools" >"$W/fsx-build.log" 2>&1; then
		note "fsx: skipped, building fsx failed: $(tail -n 1 "$W/fsx-build.log")"
	else
		FSX=$W/tools/fsx
	fi
	[[ -n $FSX ]] || { say "$(tail -n1 "$NOTES")"; unset 'SEL[fsx]'; }
fi
AES=
if sel cpu && command -v openssl >/dev/null; then
	# k = 1000 bytes per second for 64 KiB AES-256-GCM blocks, one core
	k=$(openssl speed -evp aes-256-gcm -bytes 65536 -seconds 1 2>/dev/null |
		awk '/^(AES-256-GCM|aes-256-gcm)/ { sub(/k$/, "", $NF); print $NF }')
	[[ -n $k ]] && AES=$(awk -v k="$k" 'BEGIN { printf "%.2f", 1073741824 / (k * 1000) }')
	meta aes_s_per_gib "$AES"
fi

# --- the steps; each sets VAL and returns non-zero on failure

step_write() { # sys dir
	local t0 t1 c0 c1 pid=${DAEMON[$1]:-}
	rm -f "$2/big" || return 1
	sync
	[[ -z $pid ]] || c0=$(cpu_ticks "$pid") || return 1
	t0=$(now_us)
	dd if=/dev/zero of="$2/big" bs=1M count="$SIZE" conv=fdatasync status=none || return 1
	t1=$(now_us)
	[[ -z $pid ]] || c1=$(cpu_ticks "$pid") || return 1
	VAL=$(mbps $((SIZE * 1048576)) $((t1 - t0)))
	CPU=-
	[[ -z $pid ]] || CPU=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v mb="$SIZE" \
		'BEGIN { printf "%.3f", t / hz / (mb / 1024) }')
}
step_read() {
	local t0 t1
	drop_caches
	t0=$(now_us)
	dd if="$2/big" of=/dev/null bs=1M status=none || return 1
	t1=$(now_us)
	VAL=$(mbps $((SIZE * 1048576)) $((t1 - t0)))
}
step_warm() {
	local t0 t1
	dd if="$2/big" of=/dev/null bs=1M status=none || return 1
	t0=$(now_us)
	dd if="$2/big" of=/dev/null bs=1M status=none || return 1
	t1=$(now_us)
	VAL=$(mbps $((SIZE * 1048576)) $((t1 - t0)))
}
step_par() {
	local t0 t1 i rc=0
	drop_caches
	BG_PIDS=()
	t0=$(now_us)
	for ((i = 0; i < 4; i++)); do
		dd if="$2/big" of=/dev/null bs=1M skip=$((i * QUARTER)) count=$QUARTER status=none &
		BG_PIDS+=($!)
	done
	for i in "${BG_PIDS[@]}"; do wait "$i" || rc=1; done
	t1=$(now_us)
	BG_PIDS=()
	[[ $rc -eq 0 ]] || return 1
	VAL=$(mbps $((4 * QUARTER * 1048576)) $((t1 - t0)))
}
step_randread() {
	drop_caches
	fio --name=randread --filename="$2/big" --rw=randread --bs=4k --size="${SIZE}M" \
		--ioengine=psync --iodepth=1 --number_ios="$RR_IOS" --randrepeat=1 \
		--invalidate=1 --output-format=json --output="$W/fio.json" >"$W/fio.log" 2>&1 ||
		{ tail -n 3 "$W/fio.log" >&2; return 1; }
	VAL=$("$PY" -c 'import json, sys; print("%.0f" % json.load(open(sys.argv[1]))["jobs"][0]["read"]["iops"])' \
		"$W/fio.json") || return 1
}
timed() { # command...: VAL = seconds
	local t0 t1
	t0=$(now_us)
	"$@" || return 1
	t1=$(now_us)
	VAL=$(us_to_s $((t1 - t0)))
}
untar_sync() { tar -C "$1" -xf "$2" && sync; }
rm_sync() { rm -rf "$1" && sync; }
step_untar() {
	sync
	cat "$W/tree.tar" >/dev/null
	timed untar_sync "$2" "$W/tree.tar"
}
step_ls() {
	drop_caches
	timed ls -lR "$2/$TREE_NAME" >/dev/null
}
step_rm() {
	sync
	timed rm_sync "${2:?}/$TREE_NAME"
}
step_small() {
	local r
	sync
	cat "$W/small.tar" >/dev/null
	timed untar_sync "$2" "$W/small.tar"
	r=$?
	rm -rf "${2:?}/small"
	return $r
}
redirect_sync() { # dir n
	local data i
	data=$(head -c 3072 /dev/zero | base64 -w0) # 4,096 bytes
	mkdir "$1" || return 1
	for ((i = 0; i < $2; i++)); do printf '%s' "$data" >"$1/f$i" || return 1; done
	sync
}
step_redirect() {
	local r
	sync
	timed redirect_sync "${2:?}/redirect" "$NREDIR"
	r=$?
	rm -rf "${2:?}/redirect"
	return $r
}
step_append() {
	sync
	VAL=$("$PY" -c '
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
buf = b"\xa5" * 4096
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
t0 = time.perf_counter()
for _ in range(n):
    if os.write(fd, buf) != len(buf):
        sys.exit("short write")
    os.fsync(fd)
t1 = time.perf_counter()
os.close(fd)
print("%.6f" % (t1 - t0))
' "$2/append" "$NAPPEND") || return 1
	rm -f "$2/append"
}
step_fsx() { # sys dir
	local log=$W/fsx-$1.log
	mkdir -p "$W/fsx-$1"
	sync
	if ! timed "$FSX" -q -N "$FSX_OPS" -S 7 -P "$W/fsx-$1" "$2/fsx" >"$log" 2>&1; then
		tail -n 5 "$log" >&2
		return 1
	fi
	rm -f "$2/fsx"
}

# run one step on one system and record it (or its failure)
run() { # row step sys round
	local d=${TARGET[$3]}
	VAL=
	if [[ $3 == plain ]] || mounted "${MOUNTP[$3]}"; then
		if "$2" "$3" "$d"; then
			[[ $1 == - ]] || record "$1" "$3" "$4" "$VAL"
			return 0
		fi
	fi
	say "  $2 on $3 failed"
	[[ $1 == - ]] || record "$1" "$3" "$4" fail
	return 1
}

for ((round = 1; round <= ROUNDS; round++)); do
	# The order turns by one each round: a row's first target meets a
	# disk its predecessor left busy (its writeback, the discards of
	# its rm) less often than the others, so no target is always first.
	ORDER=()
	for ((i = 0; i < ${#SYSTEMS[@]}; i++)); do
		ORDER+=("${SYSTEMS[(i + round - 1) % ${#SYSTEMS[@]}]}")
	done
	say "round $round/$ROUNDS (${ORDER[*]})"
	if sel_any write cpu read warm par randread; then
		for s in "${ORDER[@]}"; do
			if run "$(sel write && echo write || echo -)" step_write "$s" "$round"; then
				[[ $s == plain ]] || ! sel cpu || record cpu "$s" "$round" "$CPU"
			else
				[[ $s == plain ]] || ! sel cpu || record cpu "$s" "$round" fail
			fi
		done
		for r in read warm par randread; do
			sel "$r" || continue
			for s in "${ORDER[@]}"; do run "$r" "step_$r" "$s" "$round" || true; done
		done
	fi
	if sel_any untar ls rm; then
		for s in "${ORDER[@]}"; do
			run "$(sel untar && echo untar || echo -)" step_untar "$s" "$round" || true
		done
		if sel ls; then
			for s in "${ORDER[@]}"; do run ls step_ls "$s" "$round" || true; done
		fi
		for s in "${ORDER[@]}"; do
			run "$(sel rm && echo rm || echo -)" step_rm "$s" "$round" || true
		done
	fi
	for r in small redirect append fsx; do
		sel "$r" || continue
		for s in "${ORDER[@]}"; do run "$r" "step_$r" "$s" "$round" || true; done
	done
done
for s in "${SYSTEMS[@]}"; do rm -f "${TARGET[$s]}/big"; done
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"

# --- the summary: Markdown on stdout, everything in --json
"$PY" - "$ROWSF" "$SAMPLES" "$META" "$NOTES" "$JSON" <<'EOF'
import json, statistics, sys

rows_f, samples_f, meta_f, notes_f, json_f = sys.argv[1:6]
meta, selected = {}, []
for line in open(meta_f):
    k, v = line.rstrip("\n").split("\t", 1)
    if k == "selected":
        selected.append(v)
    else:
        meta[k] = v
SYSTEMS = meta.get("systems", "plain kmsfs gocryptfs").split()
BASE = "base" in SYSTEMS
rows = []
for line in open(rows_f):
    rid, label, unit, better = line.rstrip("\n").split("\t")
    rows.append(dict(id=rid, label=label, unit=unit, better=better))
samples = {}
for line in open(samples_f):
    rid, sysname, rnd, val = line.rstrip("\n").split("\t")
    v = None if val == "fail" else float(val)
    samples.setdefault(rid, {}).setdefault(sysname, []).append(v)
notes = [l.rstrip("\n") for l in open(notes_f) if l.strip()]


def fmt(v, unit):
    if unit in ("MB/s", "IOPS"):
        return "%.0f" % v
    return "%.3f" % v if v < 0.1 else "%.2f" % v


def ratio(r, k, o):
    if k is None or o is None or k <= 0 or o <= 0:
        return None
    return k / o if r["better"] == "higher" else o / k


out_rows = []
for r in rows:
    if r["id"] not in selected or r["id"] not in samples:
        continue
    per = {}
    for s in SYSTEMS:
        vals = samples[r["id"]].get(s)
        if not vals:
            continue
        ok = [v for v in vals if v is not None]
        per[s] = dict(samples=vals, failed=len(vals) - len(ok),
                      median=statistics.median(ok) if ok else None,
                      min=min(ok) if ok else None, max=max(ok) if ok else None)
    med = {s: per[s]["median"] for s in per}
    r = dict(r, results=per,
             kmsfs_vs_gocryptfs=ratio(r, med.get("kmsfs"), med.get("gocryptfs")),
             kmsfs_vs_plain=ratio(r, med.get("kmsfs"), med.get("plain")))
    if BASE:
        r["kmsfs_vs_base"] = ratio(r, med.get("kmsfs"), med.get("base"))
    out_rows.append(r)

rounds = int(meta.get("rounds", "1"))
print()
print("Machine: " + meta["machine"])
NAMES = dict(plain="plain", base="kmsfs before", kmsfs="kmsfs", gocryptfs="gocryptfs")
print("kmsfs %s%s, %s, %d round%s interleaved (%s per row, the order "
      "turned by one each round), "
      "load average %s at start, %s at end, %s."
      % (meta["kmsfs"], " (before: %s)" % meta["base"] if BASE else "",
         meta["gocryptfs"], rounds, "s" if rounds > 1 else "",
         ", ".join(NAMES[s] for s in SYSTEMS),
         meta["loadavg"], meta.get("loadavg_end", "?"), meta["date"]))
print()
head = ["figure"] + [NAMES[s] for s in SYSTEMS] + ["kmsfs vs gocryptfs", "kmsfs vs plain"]
if BASE:
    head.append("kmsfs vs before")
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in out_rows:
    cells = []
    for s in SYSTEMS:
        p = r["results"].get(s)
        if p is None:
            cells.append("-")
        elif p["median"] is None:
            cells.append("fail")
        else:
            c = fmt(p["median"], r["unit"])
            if len(p["samples"]) > 1:
                c += " (%s-%s)" % (fmt(p["min"], r["unit"]), fmt(p["max"], r["unit"]))
            if p["failed"]:
                c += " [%d failed]" % p["failed"]
            cells.append(c)
    x = lambda v: "-" if v is None else "%.2fx" % v
    rg, rp = x(r["kmsfs_vs_gocryptfs"]), x(r["kmsfs_vs_plain"])
    if r["id"] == "cpu" and meta.get("aes_s_per_gib"):
        rp = "AES-256-GCM alone: %s" % meta["aes_s_per_gib"]
    tail = [rg, rp] + ([x(r["kmsfs_vs_base"])] if BASE else [])
    print("| " + " | ".join([r["label"]] + cells + tail) + " |")
print()
print("Cells: median (min-max) over the rounds. Ratios are of medians and read "
      "> 1 = kmsfs better (higher throughput, or less time or CPU); < 1 = kmsfs worse.")
if any(r["id"] == "cpu" for r in out_rows) and meta.get("aes_s_per_gib"):
    print("AES-256-GCM alone: openssl speed, 64 KiB blocks, one core, seconds per GiB.")
if meta.get("quick") == "1":
    print("Quick run (--quick): small sizes; a smoke test, not a measurement.")
for n in notes:
    print("Note: " + n)

if json_f:
    with open(json_f, "w") as f:
        json.dump(dict(meta=meta, selected=selected, notes=notes, rows=out_rows), f, indent=1)
        f.write("\n")
EOF
