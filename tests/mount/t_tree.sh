#!/bin/bash
# A real tree (/usr/include, or $KMSFS_TREE) through the mount with tar and
# rsync: tar in, rsync in, diff -r against the source; a second rsync
# (by mtime+size and by checksum) must find nothing to do, so contents,
# sizes, modes and mtimes all passed through; rsync and tar back out and
# diff again; finally the backing store decrypted by crdb.py must equal the
# source tree.
. "$(dirname "$0")/lib.sh"

SRC=${KMSFS_TREE:-/usr/include}
[[ -d $SRC ]] || { echo "no $SRC"; exit 77; }
setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"

tdiff() { # A B WHAT
	diff -r --no-dereference "$1" "$2" >"$T/diff" 2>&1 ||
		fail "$3: diff -r differs: $(head -n 5 "$T/diff" | tr '\n' ' ')"
}

tar -C "$(dirname "$SRC")" -cf - "$(basename "$SRC")" |
	tar -C "$MNT/c1" -xf - || fail "tar into the mount failed"
tdiff "$SRC" "$MNT/c1/$(basename "$SRC")" "tar in"

rsync -a "$SRC/" "$MNT/c1/rs/" || fail "rsync into the mount failed"
tdiff "$SRC" "$MNT/c1/rs" "rsync in"
rsync -ai --dry-run "$SRC/" "$MNT/c1/rs/" >"$T/rs1"
[[ ! -s $T/rs1 ]] ||
	fail "second rsync (size+mtime+perms) wants changes: $(head -n 3 "$T/rs1" | tr '\n' ' ')"
rsync -aic --dry-run "$SRC/" "$MNT/c1/rs/" >"$T/rs2"
[[ ! -s $T/rs2 ]] ||
	fail "rsync --checksum finds differences: $(head -n 3 "$T/rs2" | tr '\n' ' ')"

mkdir "$T/out1" "$T/out2"
rsync -a "$MNT/c1/rs/" "$T/out1/" || fail "rsync out of the mount failed"
tdiff "$SRC" "$T/out1" "rsync out"
rsync -ai --dry-run "$SRC/" "$T/out1/" >"$T/rs3"
[[ ! -s $T/rs3 ]] ||
	fail "metadata changed on the way out: $(head -n 3 "$T/rs3" | tr '\n' ' ')"
tar -C "$MNT/c1" -cf - "$(basename "$SRC")" | tar -C "$T/out2" -xf - ||
	fail "tar out of the mount failed"
tdiff "$SRC" "$T/out2/$(basename "$SRC")" "tar out"
kumount "$MNT"

crdb check-tree --passphrase-file "$PASS" "$STORE" >"$T/check" ||
	fail "crdb.py check-tree: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
crdb decrypt-tree --passphrase-file "$PASS" "$STORE" "$T/dec" ||
	fail "crdb.py decrypt-tree failed"
tdiff "$SRC" "$T/dec/c1/rs" "backing store decrypted by crdb.py (rsync copy)"
tdiff "$SRC" "$T/dec/c1/$(basename "$SRC")" "backing store decrypted by crdb.py (tar copy)"
crdb ivs --unique "$STORE" >/dev/null 2>"$T/ivs" ||
	fail "IVs not unique: $(head -n 3 "$T/ivs" | tr '\n' ' ')"
note "ok: $(find "$SRC" | wc -l) entries, three copies"
