#!/bin/bash
# Command-line and config errors: bad options, bad or unknown KMS URIs,
# conflicting key options, missing arguments, a config file readable by
# others, unknown config keys, config syntax errors and bad values all exit
# 2 with exactly one line on stderr and mount nothing.  Runtime problems
# (missing backing store, keygen over an existing file, umount of something
# that is not a kmsfs mount) exit 1 with one line; keygen never overwrites.
. "$(dirname "$0")/lib.sh"

setup_passphrase
K=$KMSFS_BIN
one_line() { # WHAT
	local n
	n=$(grep -c . "$T/err" || true)
	[[ $n -eq 1 ]] || fail "$1: expected one line on stderr, got $n: $(head -c 400 "$T/err" | tr '\n' '|')"
	! grep -q 'correct horse' "$T/err" || fail "$1: message shows the passphrase"
}
usage() { # WHAT args...
	local what=$1
	shift
	assert_status 2 "$what" timeout 30 "$@"
	one_line "$what"
	assert_not_mounted "$MNT" "$what: $MNT got mounted"
	note "$what: $(cat "$T/err")"
}
runtime() { # WHAT args...
	local what=$1
	shift
	assert_status 1 "$what" timeout 30 "$@"
	one_line "$what"
	assert_not_mounted "$MNT" "$what: $MNT got mounted"
	note "$what: $(cat "$T/err")"
}

"$K" keygen "$T/k" >/dev/null || fail "keygen $T/k failed"
usage "no command" "$K"
usage "unknown command" "$K" frobnicate
usage "mount without arguments" "$K" mount
usage "mount without mount point" "$K" mount "${KEYARGS[@]}" "$STORE"
usage "mount with too many arguments" "$K" mount "${KEYARGS[@]}" "$STORE" "$MNT" extra
usage "unknown option" "$K" mount --frobnicate "${KEYARGS[@]}" "$STORE" "$MNT"
usage "option missing its value" "$K" mount "$STORE" "$MNT" --kms
usage "not a URI" "$K" mount -f --kms 'not a uri' "$STORE" "$MNT"
usage "unknown KMS scheme" "$K" mount -f --kms 'nosuchkms:///key' "$STORE" "$MNT"
usage "unknown KMS query parameter" "$K" mount -f --kms "file://$T/k?BOGUS=1" "$STORE" "$MNT"
# a misspelt credential is refused on the command line, its value unsaid
usage "misspelt credential" "$K" mount -f --kms "file://$T/k?AWS_SECRET_KEY=MiSsPeLt" "$STORE" "$MNT"
! grep -q MiSsPeLt "$T/err" || fail "misspelt credential: its value was echoed"
# a secret split by an unencoded '&': the tail is not echoed either
printf 'file://%s?AWS_SECRET_ACCESS_KEY=ab&TaIlSeCrEt\n' "$T/k" >"$T/split.uris"
chmod 600 "$T/split.uris"
assert_status 2 "secret split by '&'" timeout 30 "$K" mount -f --kms-file "$T/split.uris" "$STORE" "$MNT"
! grep -q TaIlSeCrEt "$T/err" || fail "secret split by '&': its tail was echoed"
assert_not_mounted "$MNT"
usage "KMS and passphrase together" "$K" mount -f --kms "file://$T/k" "${KEYARGS[@]}" "$STORE" "$MNT"
usage "bad log level" "$K" mount -f --log-level loud "${KEYARGS[@]}" "$STORE" "$MNT"
usage "cat without a path" "$K" cat "${KEYARGS[@]}" "$STORE"
usage "encrypt without a key" "$K" encrypt /dev/null "$T/x"

# config files
conf() { # NAME MODE CONTENT
	printf '%s\n' "$3" >"$T/$1"
	chmod "$2" "$T/$1"
}
good="backing = \"$STORE\";
mountpoint = \"$MNT\";
passphrase_file = \"$PASS\";
foreground = true;"
conf readable.conf 644 "$good"
usage "config readable by others" "$K" mount --config "$T/readable.conf"
conf unknown.conf 600 "$good
frobnicate = 1;"
usage "config with an unknown key" "$K" mount --config "$T/unknown.conf"
conf syntax.conf 600 "backing = \"$STORE\" mountpoint"
usage "config syntax error" "$K" mount --config "$T/syntax.conf"
conf type.conf 600 "$good
log_level = 7;"
usage "config value of the wrong type" "$K" mount --config "$T/type.conf"
conf uri.conf 600 "backing = \"$STORE\";
mountpoint = \"$MNT\";
kms = [ \"nosuchkms:///key\" ];
foreground = true;"
usage "config with an unknown KMS scheme" "$K" mount --config "$T/uri.conf"
usage "missing config file" "$K" mount --config "$T/nonexistent.conf"

# key files readable by others
cp "$PASS" "$T/pass644"
chmod 644 "$T/pass644"
rc=0
timeout 30 "$K" mount -f --passphrase-file "$T/pass644" "$STORE" "$MNT" >"$T/out" 2>"$T/err" || rc=$?
[[ $rc -eq 1 || $rc -eq 2 ]] || fail "passphrase file mode 0644: exit $rc, expected 2 (or 1)"
one_line "passphrase file mode 0644"
assert_not_mounted "$MNT"
note "passphrase file mode 0644 ($rc): $(cat "$T/err")"

# runtime failures
runtime "missing backing store" "$K" mount -f "${KEYARGS[@]}" "$T/nonexistent" "$MNT"
runtime "umount of a directory that is not mounted" "$K" umount "$MNT"
"$K" keygen "$T/key1" >/dev/null || fail "keygen failed"
sum=$(sha256sum <"$T/key1")
runtime "keygen over an existing file" "$K" keygen "$T/key1"
assert_eq "$(sha256sum <"$T/key1")" "$sum" "key file after a refused keygen"
note ok
