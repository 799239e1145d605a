#!/bin/bash
# dev.sh - build kmsfs, then show it working or run every test.
#
#   ./dev.sh demo       build, mount a temporary store, show plaintext vs
#                       ciphertext, unmount
#   ./dev.sh test       build in build/ with -Werror: unit tests (Check),
#                       layering and format checks, mount tests; make
#                       distcheck (tarball, clean -Werror build without
#                       ../shared, unit tests, install); then again in
#                       build-san/ with ASan+UBSan; one overall
#                       "N passed, N failed"
#   ./dev.sh packages   print the Debian packages the build and tests need
#
# Both build commands first install missing packages with apt-get (skipped
# when all are installed), then run autoreconf -fi, configure (out of
# tree) and make.  Mount tests need root and /dev/fuse (else skipped).

set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

PACKAGES=(autoconf automake libtool pkg-config make gcc libfuse3-dev fuse3
	libssl-dev libcurl4-openssl-dev libconfig-dev libjson-c-dev check rsync
	gocryptfs attr xxd python3-cryptography python3-boto3 python3-botocore
	python3-google-auth python3-azure valgrind clang-format xfslibs-dev perl strace)

say() { printf '\n== %s\n' "$*"; }
die() { echo "dev.sh: $*" >&2; exit 1; }

install_deps() {
	local p missing=() sudo=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		echo "dev.sh: all ${#PACKAGES[@]} packages installed"
		return 0
	fi
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null || die "missing packages (${missing[*]}) and no sudo"
		sudo=(sudo)
	fi
	say "installing ${missing[*]}"
	"${sudo[@]}" apt-get update
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends "${missing[@]}"
}

bootstrap() {
	[[ ! -f $ROOT/config.status ]] ||
		die "the source tree is configured in place; run 'make distclean' there first (builds go to build/)"
	say "autoreconf -fi"
	autoreconf -fi
}

# build DIR [configure options...]
build() {
	local dir=$1
	shift
	say "configure${*:+ $*} in $dir/"
	mkdir -p "$dir"
	(cd "$dir" && "$ROOT/configure" "$@" >configure.out) ||
		{ tail -n 20 "$dir/configure.out" "$dir/config.log" 2>/dev/null | tail -n 30; return 1; }
	say "make in $dir/"
	make -C "$dir" -j"$(nproc)"
}

# ------------------------------------------------------------------ demo

cmd_demo() {
	install_deps
	bootstrap
	build build
	local k=$ROOT/build/kmsfs d uri
	d=$(mktemp -d /tmp/kmsfs-demo.XXXXXX)
	# shellcheck disable=SC2064
	trap "mountpoint -q '$d/mnt' && '$k' umount '$d/mnt'; rm -rf '$d'" EXIT
	mkdir "$d/store" "$d/mnt"

	say "kmsfs keygen $d/master.key"
	uri=$("$k" keygen "$d/master.key")
	echo "$uri"
	uri=$(grep -o 'file:///[^[:space:]]*' <<<"$uri" | head -n1)

	say "kmsfs mount --kms $uri $d/store $d/mnt"
	"$k" mount --kms "$uri" "$d/store" "$d/mnt"
	mkdir "$d/mnt/backup-2024"
	printf 'Hello from kmsfs.\nThis line is stored as AES-256-GCM ciphertext.\n' \
		>"$d/mnt/backup-2024/hello.txt"
	head -c 200000 /dev/urandom >"$d/mnt/backup-2024/data.bin"
	seq 1 1000 >"$d/mnt/backup-2024/numbers.txt"
	echo "a file at the collection root" >"$d/mnt/README"

	say "ls -l: the mount (plaintext sizes) | the backing store (ciphertext)"
	side_by_side <(cd "$d/mnt" && ls -l . backup-2024) \
		<(cd "$d/store" && ls -l . backup-2024)
	say "cat mnt/backup-2024/hello.txt | xxd store/backup-2024/hello.txt | head"
	side_by_side <(cat "$d/mnt/backup-2024/hello.txt") \
		<(xxd "$d/store/backup-2024/hello.txt" | head)
	say "ENCRYPTION-INFO (plaintext protobuf, hidden in the mount)"
	xxd "$d/store/backup-2024/ENCRYPTION-INFO" | head -n 4

	say "kmsfs umount $d/mnt"
	"$k" umount "$d/mnt"
	[[ -z $(ls -A "$d/mnt") ]] || die "mount point not empty after umount"
	echo "unmounted; the store keeps only ciphertext:"
	file "$d/store/backup-2024/hello.txt" 2>/dev/null || true
}

side_by_side() { # FILE FILE
	pr -m -t -w "${COLUMNS:-160}" "$1" "$2" | expand
}

# ------------------------------------------------------------------ test

LONG_SUITES="t_pjdfstest t_fsx t_fsstress"
PASSED=0
FAILED=0
SKIPPED=0
FAILURES=()

count() { # pass|fail|skip NAME
	case $1 in
	pass) PASSED=$((PASSED + 1)) ;;
	fail) FAILED=$((FAILED + 1)); FAILURES+=("$2") ;;
	skip) SKIPPED=$((SKIPPED + 1)) ;;
	esac
}

# Unit tests: count the automake harness's .trs results, show Check's
# summary line of every test program.
unit_tests() { # DIR LABEL
	local dir=$1 label=$2 trs res name found=0
	say "$label: make check"
	make -C "$dir" -j"$(nproc)" check || true
	for trs in "$dir"/tests/*.trs; do
		[[ -e $trs ]] || continue
		found=1
		name=$label/$(basename "$trs" .trs)
		res=$(sed -n 's/^:test-result: //p' "$trs" | head -n1)
		printf '%-32s %-5s %s\n' "$name" "$res" \
			"$(grep -h -E '^[0-9]+%: Checks' "${trs%.trs}.log" 2>/dev/null | tail -n1)"
		case $res in
		PASS | XFAIL) count pass "$name" ;;
		SKIP) count skip "$name" ;;
		*) count fail "$name" ;;
		esac
	done
	[[ $found -eq 1 ]] || count fail "$label/make-check (no test results: build failed?)"
}

mount_tests() { # DIR LABEL
	local dir=$1 label=$2 out=$1/check-mount.out summary p f s
	say "$label: make check-mount"
	make -C "$dir" check-mount 2>&1 | tee "$out" || true
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
	if [[ -z $summary ]]; then
		count fail "$label/check-mount (no summary)"
		return
	fi
	p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$summary")
	f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$summary")
	s=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$summary")
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	SKIPPED=$((SKIPPED + ${s:-0}))
	while read -r name; do FAILURES+=("$label/$name"); done \
		< <(sed -n 's/^FAIL: \([^ ]*\)$/\1/p' "$out")
}

test_build() { # DIR LABEL configure-options...
	local dir=$1 label=$2
	shift 2
	if ! build "$dir" "$@"; then
		count fail "$label/build"
		return
	fi
	unit_tests "$dir" "$label"
	if [[ $label == werror ]]; then
		make_target "$dir" "$label" check-layering
		make_target "$dir" "$label" check-format
	fi
	mount_tests "$dir" "$label"
}

make_target() { # DIR LABEL TARGET: one pass/fail line
	say "$2: make $3"
	if make -C "$1" "$3"; then
		count pass "$2/$3"
	else
		count fail "$2/$3"
	fi
}

# The tarball builds and passes its unit tests from a clean directory,
# without ../shared (those tests skip), and installs: one pass/fail line.
# Builds once more; runs no mount tests.
distcheck() { # DIR (configured)
	local dir=$1 out=$1/distcheck.out
	say "make distcheck (DISTCHECK_CONFIGURE_FLAGS=--enable-werror)"
	if make -C "$dir" -j"$(nproc)" distcheck \
		DISTCHECK_CONFIGURE_FLAGS=--enable-werror >"$out" 2>&1; then
		grep -E '^(# (TOTAL|PASS|SKIP|FAIL)|check-|check:|kmsfs-.* archives)' "$out" || true
		count pass distcheck
	else
		tail -n 40 "$out"
		count fail "distcheck (log: $out)"
	fi
}

cmd_test() {
	install_deps
	bootstrap
	test_build build werror --enable-werror
	distcheck build
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	# The public suites (pjdfstest, fsx, fsstress) take most of the time:
	# they run in the first build only; the sanitizer builds run every
	# other mount test.
	KMSFS_MOUNT_SKIP="$LONG_SUITES" \
		test_build build-san sanitizers --enable-sanitizers --enable-werror
	# ThreadSanitizer: a report stops the daemon (halt_on_error), and
	# tests/mount/lib.sh fails a test whose daemon log holds one.  It
	# slows the daemon 5-15x: the model test runs one of its seeds, and
	# the two single-threaded bulk copies (t_tree, t_sizes) run in the
	# other builds only.
	TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$ROOT/tests/tsan.supp:halt_on_error=1:exitcode=66:second_deadlock_stack=1} \
		KMSFS_MOUNT_SKIP="$LONG_SUITES t_tree t_sizes" \
		KMSFS_MODEL_SEED=${KMSFS_MODEL_SEED:-3} \
		KMSFS_MODEL_STEPS=${KMSFS_MODEL_STEPS:-400} \
		test_build build-tsan tsan --enable-tsan --enable-werror
	say "summary"
	local f
	for f in "${FAILURES[@]}"; do echo "failed: $f"; done
	local line="$PASSED passed, $FAILED failed"
	[[ $SKIPPED -gt 0 ]] && line+=", $SKIPPED skipped"
	echo "$line"
	[[ $FAILED -eq 0 ]]
}

case ${1:-} in
demo) cmd_demo ;;
test) cmd_test ;;
packages) echo "${PACKAGES[*]}" ;;
*)
	echo "usage: ./dev.sh demo|test|packages" >&2
	exit 2
	;;
esac
