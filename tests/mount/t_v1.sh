#!/bin/bash
# v1 (one GCM message per file, CockroachDB 21.1 and older) is refused by
# default, as CockroachDB's own reader does now: through the mount (EIO
# and a log line naming the file), by `kmsfs cat`, `kmsfs decrypt` and
# `kmsfs verify`.
# With --allow-v1 it is read (and never written: EROFS), bounded in
# memory.  The downgrade of issue 8 (a v2 file cut to its first chunk with
# the version byte set to 1) is EIO by default; with --allow-v1 it reads
# as that chunk, which the format cannot tell from a real v1 file (chunk
# 0's nonce is the IV, as a v1 file's is): why v1 is off by default.
. "$(dirname "$0")/lib.sh"

K=$KMSFS_BIN
setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$MNT/c1"
mkdata "$T/big" 300000
cp "$T/big" "$MNT/c1/v2file"
kumount "$MNT"

KEY=$(crdb chain-key --passphrase-file "$PASS" --encinfo "$STORE/c1/ENCRYPTION-INFO")
printf '%s\n' "$KEY" >"$T/key"
chmod 600 "$T/key"
mkdata "$T/payload" 100000
crdb encrypt --key-hex "$KEY" --v1 "$T/payload" -o "$STORE/c1/old-v1"
# the downgrade: header and chunk 0 of a v2 file, version byte 1
head -c $((20 + CHUNK_CT)) "$STORE/c1/v2file" >"$STORE/c1/downgraded"
printf '\001' | dd of="$STORE/c1/downgraded" bs=1 seek=7 conv=notrunc status=none

# refused by default
kmount "$STORE" "$MNT"
for f in old-v1 downgraded; do
	cat "$MNT/c1/$f" >"$T/got" 2>"$T/err" && fail "$f read without --allow-v1"
	grep -q "Input/output error" "$T/err" || fail "$f: $(cat "$T/err")"
	[[ ! -s $T/got ]] || fail "$f: bytes returned"
	grep -q "c1/$f: a v1 file .*--allow-v1" "$DAEMON_LOG" ||
		fail "no log line naming $f and the option"
done
assert_cmp "$MNT/c1/v2file" "$T/big" "a v2 file next to them"
kumount "$MNT"
assert_status 1 "kmsfs cat of a v1 file" \
	"$K" cat --passphrase-file "$PASS" "$STORE" c1/old-v1
grep -q -- "--allow-v1" "$T/err" || fail "kmsfs cat: $(cat "$T/err")"
assert_status 1 "kmsfs decrypt of a v1 file" \
	"$K" decrypt --data-key-file "$T/key" "$STORE/c1/old-v1" "$T/out.v1"
grep -q -- "--allow-v1" "$T/err" || fail "kmsfs decrypt: $(cat "$T/err")"
[[ ! -e $T/out.v1 ]] || fail "kmsfs decrypt left an output"

# read with --allow-v1, never written
kmount "$STORE" "$MNT" --allow-v1
assert_cmp "$MNT/c1/old-v1" "$T/payload" "v1 file with --allow-v1"
assert_eq "$(stat -c %s "$MNT/c1/old-v1")" 100000 "stat size of the v1 file"
head -c "$CHUNK" "$T/big" >"$T/chunk0"
assert_cmp "$MNT/c1/downgraded" "$T/chunk0" "the downgrade with --allow-v1 (documented)"
echo more >>"$MNT/c1/old-v1" 2>"$T/err" && fail "a v1 file was written"
grep -q "Read-only file system" "$T/err" || fail "write to v1: $(cat "$T/err")"
assert_cmp "$MNT/c1/old-v1" "$T/payload" "v1 file after a refused write"
kumount "$MNT"
"$K" cat --passphrase-file "$PASS" --allow-v1 "$STORE" c1/old-v1 >"$T/cat" ||
	fail "kmsfs cat --allow-v1"
assert_cmp "$T/cat" "$T/payload" "kmsfs cat --allow-v1"
# verify: refused without --allow-v1, naming the option; with it, the
# v1 file is authenticated (and a changed byte in it is found)
assert_status 1 "kmsfs verify of a store with v1 files" \
	"$K" verify --passphrase-file "$PASS" "$STORE" --all
for f in old-v1 downgraded; do
	grep -q "c1/$f.*--allow-v1" "$T/out" "$T/err" ||
		fail "kmsfs verify: no line naming $f and the option"
done
assert_status 0 "kmsfs verify --allow-v1" \
	"$K" verify --passphrase-file "$PASS" --allow-v1 "$STORE" --all
cp "$STORE/c1/old-v1" "$T/old-v1.orig"
printf '\377' | dd of="$STORE/c1/old-v1" bs=1 seek=5000 conv=notrunc status=none
assert_status 1 "kmsfs verify --allow-v1 of a changed v1 file" \
	"$K" verify --passphrase-file "$PASS" --allow-v1 "$STORE" --all
grep -q "c1/old-v1.*failed to decrypt" "$T/out" "$T/err" ||
	fail "kmsfs verify --allow-v1: the changed v1 file is not named"
cp "$T/old-v1.orig" "$STORE/c1/old-v1"
"$K" decrypt --data-key-file "$T/key" --allow-v1 "$STORE/c1/old-v1" "$T/dec" ||
	fail "kmsfs decrypt --allow-v1"
assert_cmp "$T/dec" "$T/payload" "kmsfs decrypt --allow-v1"
"$K" decrypt --data-key-file "$T/key" --allow-v1 <"$STORE/c1/old-v1" >"$T/dec2" ||
	fail "kmsfs decrypt --allow-v1 from a pipe"
assert_cmp "$T/dec2" "$T/payload" "kmsfs decrypt --allow-v1 from a pipe"
note ok
