#!/bin/bash
# fsstress (xfstests): 4 processes x 2,000 random namespace and data
# operations (create, write, truncate, link, rename, mkdir, mknod, symlink,
# fsync, xattrs, mmap, copy/clone ranges, ...) in a chain, for 3 fixed
# seeds one after another.  Afterwards every regular file in the mount must
# read back without error; after unmount no .kmsfs-tmp-* file may remain in
# the backing store, every backing file must decrypt (crdb.py check-tree)
# and no two files may share an IV.  fsstress is built at test time from
# shared/third_party.  Other seeds by hand: KMSFS_FSSTRESS_SEEDS="N ...".
# Runtime: 5.5-7 min on the 2-core VM under load (each seed 40-60 s,
# reading every file back 2-3.5 min).
# Timeout: 1800
. "$(dirname "$0")/lib.sh"

need_third_party xfstests-ltp
SEEDS=${KMSFS_FSSTRESS_SEEDS:-1 2 3}
[[ -f /usr/include/xfs/xfs.h ]] ||
	fail "xfslibs-dev not installed (./dev.sh packages)"
sh "$THIRD_PARTY/xfstests-ltp/build.sh" "$T/bin" >"$T/build.log" 2>&1 ||
	fail "building fsstress failed: $(tail -n 5 "$T/build.log" | tr '\n' ' ')"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"

note "other seeds: KMSFS_FSSTRESS_SEEDS=\"N ...\" (now: $SEEDS)"
for s in $SEEDS; do
	t0=$(now)
	rc=0
	"$T/bin/fsstress" -d "$MNT/c1/s$s" -p 4 -n 2000 -s "$s" \
		>"$T/fsstress.$s.out" 2>&1 || rc=$?
	[[ $rc -eq 0 ]] ||
		fail "fsstress -s $s exited $rc: $(tail -n 5 "$T/fsstress.$s.out" | tr '\n' ' ')"
	note "fsstress -p 4 -n 2000 -s $s ok in $(since "$t0")s"
	assert_mounted "$MNT"
done

# Every regular file reads back without error.
t0=$(now)
find "$MNT" -type f -print0 >"$T/files" 2>"$T/find.err" ||
	fail "find in the mount failed: $(head -n 3 "$T/find.err" | tr '\n' ' ')"
nfiles=0 nbad=0
: >"$T/readerr"
while IFS= read -r -d '' f; do
	nfiles=$((nfiles + 1))
	cat -- "$f" >/dev/null 2>>"$T/readerr" || nbad=$((nbad + 1))
done <"$T/files"
if [[ $nbad -ne 0 ]]; then
	echo "--- files that do not read back (first 20) ---"
	head -n 20 "$T/readerr"
	fail "$nbad of $nfiles files do not read back after fsstress"
fi
mib=$(find "$MNT" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s / 1048576 }')
note "all $nfiles files ($mib MiB) read back in $(since "$t0")s"
kumount "$MNT"

find "$STORE" -name '.kmsfs-tmp-*' >"$T/tmpfiles"
[[ ! -s $T/tmpfiles ]] ||
	fail "$(wc -l <"$T/tmpfiles") temporary files left in the store: $(head -n 3 "$T/tmpfiles" | tr '\n' ' ')"
crdb check-tree --passphrase-file "$PASS" "$STORE" >"$T/check" ||
	fail "crdb.py check-tree: $(grep -c BAD "$T/check") bad: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
crdb ivs --unique "$STORE" >/dev/null 2>"$T/ivs" ||
	fail "IVs not unique: $(head -n 3 "$T/ivs" | tr '\n' ' ')"
note "ok: $nfiles files"
