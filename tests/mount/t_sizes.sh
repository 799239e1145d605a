#!/bin/bash
# Files of the sizes around the 64 KiB chunk grid, written with cp and dd
# (several block sizes) into a chain and into the collection root, read
# back with cmp and dd, stat sizes exact, the backing bytes decrypted by
# the independent reader (tests/tools/crdb.py) with sizes following the v2
# size formula; `ls -l` of many files; everything again after a remount.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"

sizes=(0 1 15 65535 65536 65537 131071 131072 131073 $((1048576 + 7)))
names=()
for n in "${sizes[@]}"; do
	src=$T/src.$n
	mkdata "$src" "$n"
	cp "$src" "$MNT/c1/cp.$n"
	dd if="$src" of="$MNT/c1/dd4k.$n" bs=4096 status=none
	dd if="$src" of="$MNT/c1/dd10k.$n" bs=10000 status=none
	dd if="$src" of="$MNT/c1/dd1m.$n" bs=1M conv=fsync status=none
	cp "$src" "$MNT/root.$n"
	if [[ $n -le 15 ]]; then
		dd if="$src" of="$MNT/c1/dd1.$n" bs=1 status=none
		names+=("c1/dd1.$n")
	fi
	names+=("c1/cp.$n" "c1/dd4k.$n" "c1/dd10k.$n" "c1/dd1m.$n" "root.$n")
done

check_all() { # when
	local f n
	for f in "${names[@]}"; do
		n=${f##*.}
		assert_eq "$(stat -c %s "$MNT/$f")" "$n" "$1: stat size of $f"
		assert_cmp "$MNT/$f" "$T/src.$n" "$1: content of $f (cmp)"
		dd if="$MNT/$f" of="$T/back" bs=1000 status=none
		assert_cmp "$T/back" "$T/src.$n" "$1: content of $f (dd bs=1000)"
	done
}
check_all "while mounted"

# A new empty file is 0 bytes at once: the size the create reply gives is
# the one the kernel keeps for its attribute timeout.
: >"$T/src.0"
for i in 1 2 3; do
	cp "$T/src.0" "$MNT/c1/new.$i"
	assert_eq "$(stat -c %s "$MNT/c1/new.$i")" 0 "stat right after cp of an empty file"
	touch "$MNT/touched.$i"
	assert_eq "$(stat -c %s "$MNT/touched.$i")" 0 "stat right after touch of a new file"
done

# ls -l of many files: sizes spread over the chunk grid.
mkdir "$MNT/c1/many"
mkdata "$T/big" 1300000
: >"$T/many.expected"
for ((i = 0; i < 200; i++)); do
	n=$(((i * 7919) % 400000))
	((i % 10 == 0)) && n=$(((i / 10) * CHUNK))
	head -c "$n" "$T/big" >"$MNT/c1/many/f$i"
	echo "$n f$i" >>"$T/many.expected"
done
sort -k2 "$T/many.expected" >"$T/many.exp.sorted"
check_ls() {
	ls -l "$MNT/c1/many" | awk 'NR > 1 { print $5, $9 }' | sort -k2 >"$T/many.got"
	diff "$T/many.exp.sorted" "$T/many.got" >"$T/many.diff" ||
		fail "$1: ls -l sizes differ: $(head -n 5 "$T/many.diff" | tr '\n' ' ')"
}
check_ls "while mounted"
kumount "$MNT"

# Backing store: sizes by the v2 formula, bytes decrypt independently.
crdb decrypt-tree --passphrase-file "$PASS" "$STORE" "$T/dec" ||
	fail "crdb.py cannot decrypt the backing store"
for f in "${names[@]}"; do
	n=${f##*.}
	assert_cipher_size "$STORE/$f" "$n"
	assert_cmp "$T/dec/$f" "$T/src.$n" "backing $f decrypted by crdb.py"
done
# one file by its chain's ENCRYPTION-INFO explicitly
crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/c1/ENCRYPTION-INFO" \
	"$STORE/c1/cp.65537" -o "$T/one" || fail "crdb.py decrypt of c1/cp.65537"
assert_cmp "$T/one" "$T/src.65537" "c1/cp.65537 decrypted with c1/ENCRYPTION-INFO"
while read -r n name; do
	assert_cipher_size "$STORE/c1/many/$name" "$n"
done <"$T/many.expected"
crdb check-tree --passphrase-file "$PASS" "$STORE" >"$T/check" ||
	fail "crdb.py check-tree: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
crdb ivs --unique "$STORE" >/dev/null 2>"$T/ivs" ||
	fail "IVs not unique: $(head -n 3 "$T/ivs" | tr '\n' ' ')"

# Again after a remount: sizes now come from the backing files.
kmount "$STORE" "$MNT"
check_all "after remount"
check_ls "after remount"
kumount "$MNT"
note "ok: ${#names[@]} files, 200 in ls -l"
