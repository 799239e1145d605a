#!/bin/bash
# Damaged backing files always give EIO, never an empty or short file
# that a reader copies with exit status 0: a 0-byte file, plaintext (also
# one of exactly 36 bytes, which the v2 size formula maps to 0) and a v1
# file cut short (read with --allow-v1, where v1 is accepted at all).
# Each is checked as is, and while another process holds it open for
# writing (the size then comes from the open file, which said 0 before).
. "$(dirname "$0")/lib.sh"

setup_passphrase
kmount "$STORE" "$MNT" --allow-v1
mkdir "$MNT/c1"
echo ok >"$MNT/c1/good"
kumount "$MNT"

KEY=$(crdb chain-key --passphrase-file "$PASS" --encinfo "$STORE/c1/ENCRYPTION-INFO")
: >"$STORE/c1/empty"
head -c 36 /dev/urandom >"$STORE/c1/plain36"
echo "not encrypted at all" >"$STORE/c1/plain"
mkdata "$T/v1" 5000
crdb encrypt --key-hex "$KEY" --v1 "$T/v1" -o "$STORE/c1/v1cut"
truncate -s 4036 "$STORE/c1/v1cut"
kmount "$STORE" "$MNT" --allow-v1

check_eio() { # FILE WHAT
	local n
	n=$(stat -c %s "$1")
	((n >= 1)) || fail "$2: stat shows size $n"
	cat "$1" >"$T/out" 2>"$T/err" && fail "$2: cat succeeded ($(stat -c %s "$T/out") bytes)"
	grep -q "Input/output error" "$T/err" || fail "$2: cat: $(cat "$T/err")"
	cp "$1" "$T/copy" 2>/dev/null && fail "$2: cp succeeded"
	sha256sum "$1" >/dev/null 2>&1 && fail "$2: sha256sum succeeded"
	return 0
}

for f in empty plain36 plain v1cut; do
	check_eio "$MNT/c1/$f" "$f"
	exec 3<>"$MNT/c1/$f"
	check_eio "$MNT/c1/$f" "$f (held open for writing)"
	exec 3>&-
done
assert_cmp "$MNT/c1/good" <(echo ok) "the intact file"
kumount "$MNT"
[[ $(stat -c %s "$STORE/c1/empty") -eq 0 ]] || fail "empty was changed"
grep -q "c1/plain: not an encrypted file" "$DAEMON_LOG" ||
	fail "no log line naming the plaintext file"
note ok
