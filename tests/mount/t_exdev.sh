#!/bin/bash
# Chains are separate key domains: rename(2) and link(2) between two
# chains, or between a chain and the collection root, fail with EXDEV and
# change nothing; inside one chain they work.  mv (which falls back to
# copy+unlink on EXDEV) moves a file across chains, and the backing copy is
# then encrypted under the destination chain's key, not the source's.  A
# chain directory moves with its key: renamed at the root, or an empty one
# over another.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir -p "$MNT/c1/sub" "$MNT/c2"
echo "file in c1" >"$MNT/c1/f"
echo "dir file" >"$MNT/c1/sub/g"
echo "file at root" >"$MNT/rootf"
echo "file in c2" >"$MNT/c2/h"

expect_exdev() { # OP SRC DST
	assert_eq "$(fsop "$1" "$MNT/$2" "$MNT/$3")" EXDEV "$1 $2 -> $3"
	[[ -e $MNT/$2 ]] || fail "$1 $2 -> $3 failed but removed $2"
}
expect_exdev rename c1/f c2/f
expect_exdev rename c1/f c2/h          # over an existing file
expect_exdev rename c1/sub c2/sub      # a directory
expect_exdev rename c1/f rootf2
expect_exdev rename rootf c1/rootf
expect_exdev link c1/f c2/f
expect_exdev link c1/f rootlink
expect_exdev link rootf c2/rootf
[[ ! -e $MNT/c2/f && ! -e $MNT/rootf2 && ! -e $MNT/c2/sub && ! -e $MNT/rootlink ]] ||
	fail "a failed cross-chain operation left a name behind"
assert_eq "$(cat "$MNT/c2/h")" "file in c2" "c2/h after a refused overwrite"

# Inside one chain both work.
assert_eq "$(fsop rename "$MNT/c1/f" "$MNT/c1/sub/f2")" ok "rename inside c1"
assert_eq "$(fsop link "$MNT/c1/sub/f2" "$MNT/c1/f3")" ok "link inside c1"
assert_eq "$(cat "$MNT/c1/f3")" "file in c1" "content after rename+link"

# A chain directory carries its key along: at the root it can be renamed,
# and an empty one can replace another (which loses its key); it cannot
# move into a chain, nor a chain's subdirectory become a chain.
mkdir "$MNT/c3" "$MNT/e1" "$MNT/e2"
echo "file in c3" >"$MNT/c3/f"
assert_eq "$(fsop rename "$MNT/c3" "$MNT/c4")" ok "rename a chain at the root"
assert_eq "$(cat "$MNT/c4/f")" "file in c3" "a renamed chain's file"
echo "new in c4" >"$MNT/c4/g"
assert_eq "$(fsop rename "$MNT/e1" "$MNT/e2")" ok "an empty chain over another"
[[ ! -e $MNT/e1 && -d $MNT/e2 ]] || fail "e1 over e2 did not move"
assert_eq "$(fsop rename "$MNT/e2" "$MNT/c4")" ENOTEMPTY "a chain over a non-empty one"
expect_exdev rename c4 c1/c4      # a chain into another chain
expect_exdev rename c1/sub sub    # a subdirectory out to the root
echo "new in e2" >"$MNT/e2/h"

# mv copies across chains; the copy is under c2's key.
mv "$MNT/c1/f3" "$MNT/c2/moved" || fail "mv across chains failed"
assert_eq "$(cat "$MNT/c2/moved")" "file in c1" "content after mv across chains"
kumount "$MNT"

crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/c2/ENCRYPTION-INFO" \
	"$STORE/c2/moved" -o "$T/dec" || fail "c2/moved does not decrypt under c2's key"
assert_eq "$(cat "$T/dec")" "file in c1" "c2/moved decrypted by crdb.py"
if crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/c1/ENCRYPTION-INFO" \
	"$STORE/c2/moved" -o "$T/dec" 2>/dev/null; then
	fail "c2/moved also decrypts under c1's key: chains share a key"
fi
for f in c4/f c4/g e2/h; do
	crdb decrypt --passphrase-file "$PASS" --encinfo "$STORE/${f%/*}/ENCRYPTION-INFO" \
		"$STORE/$f" -o "$T/dec" || fail "$f does not decrypt under its chain's key"
done
[[ ! -e $STORE/e1 ]] || fail "e1 left behind in the store"
crdb check-tree --passphrase-file "$PASS" "$STORE" >"$T/check" ||
	fail "crdb.py check-tree: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
note ok
