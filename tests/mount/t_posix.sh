#!/bin/bash
# POSIX semantics as on ext4 with -o allow_other (issue 7, requirement 2):
# new files, directories, FIFOs, sockets, device nodes and symlinks belong
# to the calling user (the parent's group under a set-group-ID directory)
# with exactly the caller's umask (the daemon's own umask, 022 here, must
# not apply again); open(O_CREAT) with a read-only mode or O_RDONLY works
# for a caller without write permission and leaves a valid empty file;
# mknod of character and block devices works; truncate and pwrite far
# beyond the maximum plaintext size fail with EFBIG and extensions beyond
# the free space with ENOSPC, at once, writing nothing; mtime and ctime
# after ftruncate, truncate and O_TRUNC are visible immediately.  About
# 5 s.
. "$(dirname "$0")/lib.sh"

chmod a+x "$T" "$(dirname "$T")" # other users must reach the mount point
setup_passphrase
umask 022 # the daemon's, which must not apply on top of the caller's
kmount "$STORE" "$MNT" -o allow_other
mkdir "$MNT/c"
chmod 1777 "$MNT/c"
C=$MNT/c
B=$STORE/c

as_user() { setpriv --reuid=65534 --regid=65533 --clear-groups "$@"; }
pyc() { "$PY" -c "$@"; }
owner() { stat -c %u:%g "$1"; }
modeof() { stat -c %a "$1"; }

# --- (C) ownership ----------------------------------------------------
as_user sh -c "cd '$C' && umask 022 && echo hi >f && mkdir d && mkfifo p &&
	ln -s f l && $PY -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"s\")'"
for e in f d p l s; do
	assert_eq "$(owner "$C/$e")" 65534:65533 "owner of new $e in the mount"
	assert_eq "$(stat -c %u:%g "$B/$e")" 65534:65533 "owner of new $e in the store"
done
assert_eq "$(as_user cat "$C/f")" hi "the creator reads its new file"
mkdir "$C/g"
chown 0:4242 "$C/g"
chmod 2777 "$C/g"
as_user sh -c "cd '$C/g' && umask 0 && touch f && mkdir d && $PY -c 'import os; os.close(os.open(\"x\", os.O_CREAT | os.O_WRONLY, 0o2775))'"
assert_eq "$(owner "$C/g/f")" 65534:4242 "file in a set-group-ID directory"
assert_eq "$(owner "$C/g/d")" 65534:4242 "directory in a set-group-ID directory"
assert_eq "$(modeof "$C/g/d")" 2777 "a new directory inherits set-group-ID"
# not in group 4242: the kernel strips set-group-ID from the file's mode
assert_eq "$(modeof "$C/g/x")" 775 "set-group-ID of a non-member's new file"
# handing a file over (chown) must not cost it its set-user-ID bit
as_user "$PY" -c "import os; os.close(os.open('$C/su', os.O_CREAT | os.O_WRONLY, 0o6755))"
assert_eq "$(modeof "$C/su")" 6755 "a user's new set-user-ID file"

# --- (D) umask --------------------------------------------------------
for u in 0 022 077; do
	as_user sh -c "cd '$C' && umask $u && mkdir dm$u && touch fm$u && mkfifo pm$u"
done
assert_eq "$(modeof "$C/dm0")" 777 "mkdir 0777 with umask 0"
assert_eq "$(modeof "$C/fm0")" 666 "touch with umask 0"
assert_eq "$(modeof "$C/pm0")" 666 "mkfifo with umask 0"
assert_eq "$(modeof "$C/dm022")" 755 "mkdir with umask 022"
assert_eq "$(modeof "$C/fm022")" 644 "touch with umask 022"
assert_eq "$(modeof "$C/dm077")" 700 "mkdir with umask 077"
assert_eq "$(modeof "$C/fm077")" 600 "touch with umask 077"

# --- (A) O_CREAT without write permission -----------------------------
as_user "$PY" - "$C" <<'PYEOF' || fail "O_CREAT with read-only modes as a user"
import os, sys
os.chdir(sys.argv[1])
for name, flags, mode in [("ro0444", os.O_RDONLY, 0o444),
                          ("ro0", os.O_RDONLY, 0),
                          ("wo0444", os.O_WRONLY, 0o444),
                          ("wo0", os.O_WRONLY, 0),
                          ("rw0", os.O_RDWR, 0)]:
    fd = os.open(name, os.O_CREAT | flags, mode)
    if flags != os.O_RDONLY:
        os.write(fd, b"data of " + name.encode())
    os.ftruncate(fd, 0) if name == "rw0" else None
    os.close(fd)
PYEOF
for e in ro0444 ro0 wo0444 wo0 rw0; do
	assert_eq "$(owner "$C/$e")" 65534:65533 "owner of $e"
done
assert_eq "$(modeof "$C/ro0444")" 444 "mode of ro0444"
assert_eq "$(modeof "$C/ro0")" 0 "mode of ro0"
assert_eq "$(as_user cat "$C/ro0444" | wc -c)" 0 "ro0444 reads empty"
assert_eq "$(stat -c %s "$C/ro0444")" 0 "size of ro0444"
assert_eq "$(cat "$C/ro0")" "" "ro0 reads empty (as root)"
assert_cipher_size "$B/ro0444" 0
assert_cipher_size "$B/ro0" 0
assert_eq "$(cat "$C/wo0444")" "data of wo0444" "wo0444"
assert_eq "$(cat "$C/wo0")" "data of wo0" "wo0"
assert_eq "$(stat -c %s "$C/rw0")" 0 "rw0"
# a create the kernel refuses (no write permission on the directory)
# leaves nothing behind
mkdir -m 755 "$C/closed"
as_user touch "$C/closed/x" 2>/dev/null && fail "create in a 0755 root directory"
[[ ! -e $B/closed/x ]] || fail "a refused create left $B/closed/x"

# --- (B) device nodes -------------------------------------------------
mknod "$C/null" c 1 3
mknod "$C/loop" b 7 0
assert_eq "$(stat -c '%F %t:%T' "$C/null")" "character special file 1:3" "mknod c"
assert_eq "$(stat -c '%F %t:%T' "$C/loop")" "block special file 7:0" "mknod b"
assert_eq "$(stat -c '%F %t:%T' "$B/null")" "character special file 1:3" "mknod c in the store"
mv "$C/null" "$C/null2"
rm "$C/null2" "$C/loop"

# --- (E) huge sizes ---------------------------------------------------
echo x >"$C/big"
before=$(du -sk "$STORE" | cut -f1)
start=$SECONDS
err=$(truncate -s 999999999999999 "$C/big" 2>&1) && fail "truncate -s 999999999999999 succeeded"
[[ $err == *"File too large"* ]] || fail "truncate -s 999999999999999: $err (expected EFBIG)"
max=$(((1 << 44) - (1 << 32)))
truncate -s $((max + 1)) "$C/big" 2>/dev/null && fail "truncate past the maximum succeeded"
"$PY" - "$C/big" "$max" "$B" <<'PYEOF' || fail "pwrite at huge offsets"
import errno, os, sys
path, mx, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fd = os.open(path, os.O_WRONLY)
for off in (mx, 1 << 50):
    try:
        os.pwrite(fd, b"x", off)
        sys.exit("pwrite at %d succeeded" % off)
    except OSError as e:
        if e.errno != errno.EFBIG:
            sys.exit("pwrite at %d: %s, expected EFBIG" % (off, e))
sv = os.statvfs(store)
beyond = sv.f_bfree * sv.f_frsize * 2 + (1 << 30)
if beyond < mx:  # else the store is too large to check ENOSPC here
    for what in ("pwrite", "ftruncate"):
        try:
            if what == "pwrite":
                os.pwrite(fd, b"x", beyond)
            else:
                os.ftruncate(fd, beyond)
            sys.exit("%s at %d succeeded" % (what, beyond))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                sys.exit("%s at %d: %s, expected ENOSPC" % (what, beyond, e))
os.close(fd)
PYEOF
((SECONDS - start < 20)) || fail "refusing huge sizes took $((SECONDS - start)) s"
after=$(du -sk "$STORE" | cut -f1)
((after - before < 1024)) || fail "huge sizes wrote $((after - before)) KiB to the store"
assert_eq "$(cat "$C/big")" x "content after refused huge sizes"

# --- (F) times after truncation, visible at once ----------------------
"$PY" - "$C" <<'PYEOF' || fail "times after truncation"
import os, sys, time
os.chdir(sys.argv[1])
def aged(name):
    with open(name, "wb") as f:
        f.write(b"0123456789" * 1000)
    os.utime(name, (time.time() - 3600, time.time() - 3600))
    st = os.stat(name)  # now cached by the kernel for a second
    assert time.time() - st.st_mtime > 3000, (name, st.st_mtime)
def fresh(name, how, size):
    st = os.stat(name)
    now = time.time()
    for t in ("st_mtime", "st_ctime"):
        if now - getattr(st, t) > 5:
            sys.exit("%s: %s %s is stale after %s" % (name, t, getattr(st, t), how))
    if st.st_size != size:
        sys.exit("%s: size %d after %s, expected %d" % (name, st.st_size, how, size))
aged("t1")
fd = os.open("t1", os.O_RDWR)
os.ftruncate(fd, 123)
fresh("t1", "ftruncate (open)", 123)
os.close(fd)
fresh("t1", "ftruncate (closed)", 123)
aged("t2")
os.truncate("t2", 10000)  # same size: times still change, as on ext4
fresh("t2", "truncate to the same size", 10000)
aged("t3")
os.close(os.open("t3", os.O_WRONLY | os.O_TRUNC))
fresh("t3", "O_TRUNC", 0)
PYEOF

kumount "$MNT"
note "POSIX semantics ok"
