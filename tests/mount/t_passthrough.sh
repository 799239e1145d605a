#!/bin/bash
# What passes through unchanged to the backing store: directory trees,
# names (spaces, UTF-8), modes (chmod), owners (chown), timestamps
# (touch -d), user xattrs (set, get, list, remove), symlinks (readlink),
# hard links (nlink, shared contents).  Errors pass through too (EEXIST,
# ENOTEMPTY, ENOENT).  stat shows the plaintext size, the backing file
# the ciphertext size; df works on the mount.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT"
mkdir -p "$MNT/c1/a/b/c"
[[ -d $STORE/c1/a/b/c ]] || fail "nested mkdir not in the backing store"
NAME='with space ünïcødé ✓.txt'
echo "hello" >"$MNT/c1/a/$NAME"
[[ -f $STORE/c1/a/$NAME ]] || fail "UTF-8 name not kept in the backing store"
assert_eq "$(ls "$MNT/c1/a" | grep -c 'ünïcødé')" 1 "UTF-8 name listed in the mount"

F=$MNT/c1/a/b/f
B=$STORE/c1/a/b/f
mkdata "$T/f" 70000
cp "$T/f" "$F"
assert_eq "$(stat -c %s "$F")" 70000 "plaintext size in the mount"
assert_cipher_size "$B" 70000

chmod 640 "$F"
assert_eq "$(stat -c %a "$F")" 640 "mode in the mount"
assert_eq "$(stat -c %a "$B")" 640 "mode in the backing store"
chmod 700 "$MNT/c1/a/b"
assert_eq "$(stat -c %a "$STORE/c1/a/b")" 700 "directory mode in the backing store"
chown 1234:4321 "$F"
assert_eq "$(stat -c %u:%g "$F")" 1234:4321 "owner in the mount"
assert_eq "$(stat -c %u:%g "$B")" 1234:4321 "owner in the backing store"
touch -m -d '2001-02-03 04:05:06 UTC' "$F"
assert_eq "$(stat -c %Y "$F")" 981173106 "mtime in the mount"
assert_eq "$(stat -c %Y "$B")" 981173106 "mtime in the backing store"
assert_cmp "$F" "$T/f" "content after metadata changes"

setfattr -n user.kmsfs.test -v "some value" "$F" || fail "setfattr failed"
assert_eq "$(getfattr --only-values -n user.kmsfs.test "$F")" "some value" "xattr in the mount"
assert_eq "$(getfattr --only-values -n user.kmsfs.test "$B")" "some value" "xattr in the backing store"
getfattr -d "$F" 2>/dev/null | grep -q 'user.kmsfs.test' || fail "listxattr does not show the xattr"
setfattr -x user.kmsfs.test "$F" || fail "removexattr failed"
getfattr -n user.kmsfs.test "$B" >/dev/null 2>&1 && fail "xattr still on the backing file after removal"

ln -s "../some/target name" "$MNT/c1/a/lnk"
assert_eq "$(readlink "$MNT/c1/a/lnk")" "../some/target name" "readlink in the mount"
assert_eq "$(readlink "$STORE/c1/a/lnk")" "../some/target name" "readlink in the backing store"
ln -s b/f "$MNT/c1/a/tofile"
assert_cmp "$MNT/c1/a/tofile" "$T/f" "reading through a symlink"

ln "$F" "$MNT/c1/hard"
assert_eq "$(stat -c %h "$F")" 2 "nlink after ln"
assert_eq "$(stat -c %h "$B")" 2 "backing nlink after ln"
echo "appended" >>"$MNT/c1/hard"
cat "$T/f" >"$T/f2"
echo "appended" >>"$T/f2"
assert_cmp "$F" "$T/f2" "write through one hard link seen through the other"
rm "$MNT/c1/hard"
assert_eq "$(stat -c %h "$F")" 1 "nlink after rm of the link"

assert_eq "$(fsop mkdir "$MNT/c1/a")" EEXIST "mkdir of an existing directory"
assert_eq "$(fsop rmdir "$MNT/c1/a")" ENOTEMPTY "rmdir of a non-empty directory"
assert_eq "$(fsop unlink "$MNT/c1/nonexistent")" ENOENT "unlink of a missing file"
assert_eq "$(fsop rmdir "$F")" ENOTDIR "rmdir of a file"
df "$MNT" >/dev/null || fail "df on the mount failed"
stat -f "$MNT" >/dev/null || fail "statfs on the mount failed"
kumount "$MNT"

kmount "$STORE" "$MNT"
assert_eq "$(stat -c %a:%u:%g:%Y:%s "$F")" "640:1234:4321:$(stat -c %Y "$B"):70009" "metadata after remount"
assert_cmp "$F" "$T/f2" "content after remount"
kumount "$MNT"
crdb check-tree --passphrase-file "$PASS" "$STORE" >"$T/check" ||
	fail "crdb.py check-tree: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
note ok
