#!/bin/bash
# A new chain's key is wrapped by every configured KMS; if one wrap fails
# the chain is not created: mkdir fails, nothing is left in the store,
# and the log names the failing KMS with its credentials redacted.  Here
# the second KMS is an AWS URI whose endpoint is a closed local port.
# Writing into an existing chain still works with the KMSes it knows, and
# a directory is not half-made.
. "$(dirname "$0")/lib.sh"

setup_kms
SECRET="wrapfail-secret-$RANDOM$RANDOM"
printf '%s\n%s\n' "$KMS_URI" \
	"aws:///alias/backup?AUTH=specified&AWS_ACCESS_KEY_ID=AKIDWRAPFAIL&AWS_SECRET_ACCESS_KEY=$SECRET&REGION=us-east-1&AWS_ENDPOINT=http://127.0.0.1:1" \
	>"$T/uris"
chmod 600 "$T/uris"

# A chain made with the local key alone, before the broken KMS is added.
kmount "$STORE" "$MNT"
mkdir "$MNT/old"
echo "written before" >"$MNT/old/f"
kumount "$MNT"

KEYARGS=(--kms-file "$T/uris")
kmount "$STORE" "$MNT"
before=$(cd "$STORE" && find . | sort)
if mkdir "$MNT/new" 2>"$T/mkdir.err"; then
	fail "mkdir succeeded although one KMS could not wrap the key"
fi
grep -q 'Input/output error' "$T/mkdir.err" ||
	fail "mkdir error is not EIO: $(cat "$T/mkdir.err")"
after=$(cd "$STORE" && find . | sort)
assert_eq "$after" "$before" "store contents after the failed mkdir"
[[ ! -e $MNT/new ]] || fail "new exists in the mount after a failed mkdir"
# reading the old chain needs only one KMS: the local key unwraps
assert_eq "$(cat "$MNT/old/f")" "written before" "old chain through the mount"
kumount "$MNT"

grep -q 'cannot wrap the new chain key with KMS aws:///alias/backup' \
	"$DAEMON_LOG" || fail "the log does not name the failing KMS"
grep -q 'AWS_SECRET_ACCESS_KEY=redacted' "$DAEMON_LOG" ||
	fail "the failing KMS is not shown redacted"
! grep -q "$SECRET" "$DAEMON_LOG" "$T/mkdir.err" ||
	fail "the AWS secret key reached a log or an error message"
