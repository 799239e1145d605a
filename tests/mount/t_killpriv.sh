#!/bin/bash
# The daemon, not the kernel, removes set-ID bits and file capabilities
# (fs/ops_io.c claims FUSE_HANDLE_KILLPRIV_V2).  Before, the kernel made
# round trips of its own for them: a GETXATTR of security.capability
# ahead of every write(2) through a read-write handle (half the requests
# of such a stream), and a GETATTR ahead of every chown (one of about 12
# requests per file an untar makes).  What must hold:
#  - those requests are gone (counted in the daemon's request trace);
#  - what each change does to set-ID bits and capabilities is what a
#    local filesystem does: tests/tools/privs.py runs 340 cases (write,
#    append, truncate, open with O_TRUNC, fallocate, chown, by root and by
#    another user in or out of the file's group) on a plain directory and
#    on the mount, and the tables must match, as stat(2) sees them right
#    after each change and a second later.  On main before this change
#    an open with O_TRUNC by another user kept set-user-ID, set-group-ID
#    and capabilities;
#  - the bytes are exact through the mount and by crdb.py.
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT" -d -o allow_other
mkdir "$MNT/c1"

count() { # OPCODE FROM-LINE
	tail -n +"$(($2 + 1))" "$DAEMON_LOG" | grep -c "opcode: $1 " || true
}

# 1. 256 writes of 4 KiB through a read-write handle.
mkdata "$T/data" $((1024 * 1024))
before=$(wc -l <"$DAEMON_LOG")
"$PY" - "$T/data" "$MNT/c1/rw" <<'PYEOF' || fail "writing through a read-write handle failed"
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
for off in range(0, len(data), 4096):
    os.write(fd, data[off:off + 4096])
os.close(fd)
PYEOF
writes=$(count WRITE "$before")
getx=$(count GETXATTR "$before")
note "256 writes of 4 KiB, read-write handle: $writes WRITE and $getx GETXATTR requests"
[[ $writes -ge 256 ]] || fail "expected 256 WRITE requests, saw $writes"
[[ $getx -le 2 ]] ||
	fail "$getx GETXATTR requests for 256 writes through a read-write handle: the kernel still asks for security.capability before each write"
assert_cmp "$MNT/c1/rw" "$T/data" "the file written through a read-write handle"

# 2. What tar does per file: create, write, fchown, close; 50 files.
before=$(wc -l <"$DAEMON_LOG")
"$PY" - "$MNT/c1" <<'PYEOF' || fail "create, write, fchown, close failed"
import os, sys
for i in range(50):
    fd = os.open(os.path.join(sys.argv[1], "t%d" % i),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"x" * 4096)
    os.fchown(fd, 1, 1)
    os.close(fd)
PYEOF
getattr=$(count GETATTR "$before")
getx=$(count GETXATTR "$before")
note "50 files made, written and chowned: $getattr GETATTR and $getx GETXATTR requests"
# The kernel still refreshes the directory before each create (its
# attributes are dropped by the create before), and asks for
# security.capability ahead of each chown; no more a GETATTR of the file.
[[ $getattr -le 55 ]] ||
	fail "$getattr GETATTR requests for 50 files chowned: the kernel still refreshes each file's mode before a chown"

# 3. Privileges, case by case, against a plain directory.
mkdir "$T/plain" "$MNT/c1/privs"
chmod 777 "$T/plain" "$MNT/c1/privs"
"$PY" "$TOOLS/privs.py" "$T/plain" >"$T/plain.txt" ||
	fail "privs.py failed on a plain directory"
"$PY" "$TOOLS/privs.py" "$MNT/c1/privs" >"$T/mnt.txt" ||
	fail "privs.py failed on the mount"
[[ $(wc -l <"$T/plain.txt") -ge 300 ]] ||
	fail "privs.py printed $(wc -l <"$T/plain.txt") cases"
n=$(grep -cE ' nobody[a-z-]* +[0-7]{4},[a-z-]+ err=0 ' "$T/plain.txt" || true)
[[ $n -ge 200 ]] || fail "only $n changes by uid 65534 succeeded on a plain directory"
# Known: a root write to a file with both set-ID bits and capabilities
# also loses the set-ID bits that chown(2) removes (ext4 keeps them; root
# holds CAP_FSETID).  The kernel removes the capabilities and then sends
# an empty SETATTR, which the daemon cannot tell from chown(f, -1, -1).
# The capabilities must still go there.
known='^[0-7]{4} caps +(write-wronly|write-rdwr|append|fallocate) +root '
grep -E "$known" "$T/mnt.txt" | grep -vE -- '-> [0-7]{4},- later [0-7]{4},-$' &&
	fail "a root write kept file capabilities (above)"
if ! diff <(grep -vE "$known" "$T/plain.txt") <(grep -vE "$known" "$T/mnt.txt") >"$T/privs.diff"; then
	head -n 40 "$T/privs.diff"
	fail "set-ID bits or capabilities after a change differ from a plain directory (< plain, > mount; above)"
fi
note "$(wc -l <"$T/plain.txt") cases of set-ID bits and capabilities as on a plain directory"

kumount "$MNT"
assert_crdb_plain "c1/rw" "$T/data"
note ok
