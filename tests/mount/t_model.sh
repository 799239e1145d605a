#!/bin/bash
# Model-based random test: tests/tools/model.py applies mixed operations
# (create, write at random offsets, append, truncate/ftruncate, O_TRUNC
# reopen, rename incl. overwrite, link, unlink, mkdir, rmdir, symlink,
# chmod, several fds per file; and the kinds added for issue 7, see
# below) to the mount and to a plain directory side by side and compares
# outcomes (errno values) and the full state after every step.  Then: the
# state again after a remount, the backing store decrypted by crdb.py
# equals the plain directory (contents and modes; fifos and device nodes
# by type, mode and numbers), and every IV in the store is unique.
#
# Deterministic in CI: the fixed seeds below, a fixed number of steps
# each, no time limit; each seed in its own pair of chains of one mount.
# By hand (each knob alone or together):
#   KMSFS_MODEL_SEED=N         one seed instead (KMSFS_MODEL_SEED=random
#                              picks one and prints it)
#   KMSFS_MODEL_STEPS=N        steps per seed (CI: 800; by hand: 3000)
#   KMSFS_MODEL_KINDS=K        operation kinds added for issue 7: default
#                              (those kmsfs passes), all, none, or a list
#                              of futimens,umask,mkfifo,mknod_dev,creat_ro
#   KMSFS_MODEL_SECS=S         stop each seed early after S seconds
# e.g. KMSFS_MODEL_SEED=random KMSFS_MODEL_KINDS=all \
#      KMSFS_BIN=build/kmsfs tests/mount/run.sh t_model
. "$(dirname "$0")/lib.sh"

CI_SEEDS=(1 2 3 3294518720) # 3294518720 once crashed model.py itself

if [[ -n ${KMSFS_MODEL_SEED:-} ]]; then
	seed=$KMSFS_MODEL_SEED
	[[ $seed == random ]] && seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	[[ $seed =~ ^[0-9]+$ ]] || fail "KMSFS_MODEL_SEED must be a number or 'random'"
	seeds=("$seed")
	steps=${KMSFS_MODEL_STEPS:-3000}
else
	seeds=("${CI_SEEDS[@]}")
	steps=${KMSFS_MODEL_STEPS:-800}
fi
kinds=${KMSFS_MODEL_KINDS:-default}
limit=()
[[ -z ${KMSFS_MODEL_SECS:-} ]] || limit=(--time-limit "$KMSFS_MODEL_SECS")

"$PY" "$TOOLS/model.py" --self-test || fail "model.py --self-test"
setup_passphrase
kmount "$STORE" "$MNT"
mkdir "$T/plain"
note "seeds ${seeds[*]}, $steps steps each, kinds $kinds (one seed by hand: KMSFS_MODEL_SEED=N or =random; see the top of $0)"
chains=()
for seed in "${seeds[@]}"; do
	c="m${seed}a,m${seed}b"
	chains+=("$c")
	"$PY" "$TOOLS/model.py" --a "$MNT" --b "$T/plain" --seed "$seed" \
		--steps "$steps" --kinds "$kinds" --chains "$c" "${limit[@]}" ||
		fail "model test failed (seed $seed; rerun: KMSFS_MODEL_SEED=$seed KMSFS_MODEL_STEPS=$steps KMSFS_MODEL_KINDS=$kinds)"
done
kumount "$MNT"

all=$(IFS=,; echo "${chains[*]}")
kmount "$STORE" "$MNT"
"$PY" "$TOOLS/model.py" --a "$MNT" --b "$T/plain" --steps 0 --seed 0 --kinds none \
	--chains "$all" || fail "state differs after a remount (seeds ${seeds[*]})"
# Backing files the mount does not show (besides ENCRYPTION-INFO*) are
# kmsfs's own; they are left out of the comparison below, but listed.
(cd "$STORE" && find . -mindepth 1 | sort) >"$T/backing.list"
(cd "$MNT" && find . -mindepth 1 | sort) >"$T/mount.list"
comm -23 "$T/backing.list" "$T/mount.list" | grep -v '/ENCRYPTION-INFO[^/]*$' >"$T/hidden.list" || true
[[ ! -s $T/hidden.list ]] || note "backing-only (hidden) entries: $(tr '\n' ' ' <"$T/hidden.list")"
kumount "$MNT"

# fifos and device nodes carry no data: the same in the store as in the
# model, then out of the way of diff -r
specials() { (cd "$1" && find . \( -type p -o -type b -o -type c \) \
	-exec stat -c '%n %F %a %t:%T' {} + | sort); }
specials "$T/plain" >"$T/specials.plain"
specials "$STORE" >"$T/specials.store"
diff "$T/specials.plain" "$T/specials.store" >"$T/diff" ||
	fail "fifos/device nodes in the backing store differ from the model: $(head -n 5 "$T/diff" | tr '\n' ' ')"
[[ ! -s $T/specials.plain ]] || note "$(wc -l <"$T/specials.plain") fifos/device nodes match"
find "$T/plain" \( -type p -o -type b -o -type c \) -delete

crdb check-tree --passphrase-file "$PASS" "$STORE" >"$T/check" ||
	fail "crdb.py check-tree: $(grep BAD "$T/check" | head -n 3 | tr '\n' ' ')"
crdb decrypt-tree --passphrase-file "$PASS" "$STORE" "$T/dec" ||
	fail "crdb.py decrypt-tree failed"
while read -r h; do rm -rf "${T:?}/dec/$h"; done <"$T/hidden.list"
diff -r --no-dereference "$T/plain" "$T/dec" >"$T/diff" 2>&1 ||
	fail "backing store decrypted by crdb.py differs from the model: $(head -n 5 "$T/diff" | tr '\n' ' ')"
(cd "$T/plain" && find . -printf '%p %y %m\n' | sort) >"$T/modes.plain"
(cd "$T/dec" && find . -printf '%p %y %m\n' | sort) >"$T/modes.dec"
diff "$T/modes.plain" "$T/modes.dec" >"$T/diff" ||
	fail "modes in the backing store differ from the model: $(head -n 5 "$T/diff" | tr '\n' ' ')"
crdb ivs --unique "$STORE" >"$T/ivs" 2>"$T/ivs.err" ||
	fail "IVs not unique: $(head -n 3 "$T/ivs.err" | tr '\n' ' ')"
n=$(wc -l <"$T/ivs")
[[ $n -gt 5 ]] || fail "only $n encrypted files in the store after the model run"
note "ok: seeds ${seeds[*]}, $n files, IVs unique"
