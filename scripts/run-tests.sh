#!/bin/sh
# run-tests.sh - configure, build and run the whole test suite in one build
# directory.  Installs nothing (scripts/test.sh and scripts/deps.sh do).
#
#   scripts/run-tests.sh [--asan|--release] [--builddir DIR] [--suite NAME]... [-- MESON-TEST-ARGS]
#
#   --asan          build with -Db_sanitize=address,undefined (default dir build-asan/)
#   --release       build optimised as the package and the benchmarks are
#                   (-Dbuildtype=release, -O3; default dir build-release/):
#                   gcc's deeper analysis at -O3 finds warnings -O0 does not
#   --builddir DIR  build directory (default build/, or build-asan/ with --asan)
#   --suite NAME    run only this meson suite (unit, integration, ...); repeatable
#   --busy          run the tests with two CPU-bound processes beside them
#                   (started after the build, stopped when the tests end)
#
# The last line of the output is always exactly "N passed, N failed"
# (skipped tests are in neither count; a build failure counts as one
# failure).  Exit status: 0 if nothing failed, 1 otherwise.
set -u
cd "$(dirname "$0")/.." || exit 1

asan=0
release=0
busy=0
dir=""
suites=""
while [ $# -gt 0 ]; do
	case "$1" in
	--asan) asan=1 ;;
	--release) release=1 ;;
	--busy) busy=1 ;;
	--builddir) shift; dir=${1:?--builddir needs a directory} ;;
	--builddir=*) dir=${1#--builddir=} ;;
	--suite) shift; suites="$suites --suite ${1:?--suite needs a name}" ;;
	--) shift; break ;;
	-h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-tests.sh: unknown argument '$1' (try --help)" >&2
	   echo "0 passed, 1 failed"; exit 1 ;;
	esac
	shift
done
[ "$asan" = 1 ] && [ "$release" = 1 ] && {
	echo "run-tests.sh: --asan and --release are two builds; run them one at a time" >&2
	echo "0 passed, 1 failed"; exit 1; }
if [ -z "$dir" ]; then
	if [ "$asan" = 1 ]; then dir=build-asan
	elif [ "$release" = 1 ]; then dir=build-release
	else dir=build; fi
fi

fail_early() {
	echo "run-tests.sh: $1" >&2
	echo "0 passed, 1 failed"
	exit 1
}

if [ "$asan" = 1 ]; then
	opts="-Db_sanitize=address,undefined -Db_lundef=false"
elif [ "$release" = 1 ]; then
	opts="-Db_sanitize=none -Dbuildtype=release"
else
	opts="-Db_sanitize=none"
fi
if [ -f "$dir/build.ninja" ]; then
	# shellcheck disable=SC2086
	meson configure "$dir" $opts -Dtests=true >/dev/null || fail_early "meson configure $dir failed"
else
	# shellcheck disable=SC2086
	meson setup "$dir" $opts -Dtests=true || fail_early "meson setup $dir failed"
fi
ninja -C "$dir" || fail_early "build in $dir failed"

rm -f "$dir/meson-logs/testlog.json"
busy_pids=""
stop_busy() {
	for p in $busy_pids; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	busy_pids=""
}
if [ "$busy" = 1 ]; then
	# Two CPU-bound loops, as on a shared CI machine; only these pids are
	# stopped afterwards.
	for _ in 1 2; do
		sh -c 'while :; do :; done' &
		busy_pids="$busy_pids $!"
	done
	trap 'stop_busy' EXIT INT TERM
	echo "run-tests.sh: busy mode: CPU-bound processes$busy_pids beside the tests"
fi
# shellcheck disable=SC2086
meson test -C "$dir" --print-errorlogs $suites "$@"
mrc=$?
stop_busy

# Count from meson's machine-readable log (one JSON object per test).
counts=$(python3 - "$dir/meson-logs/testlog.json" <<'PY' 2>/dev/null
import json, sys
ok = bad = skip = 0
try:
    with open(sys.argv[1]) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line).get('result', '')
            if r in ('OK', 'EXPECTEDFAIL'):
                ok += 1
            elif r == 'SKIP':
                skip += 1
            else:               # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, ...
                bad += 1
except OSError:
    sys.exit(1)
print(ok, bad, skip)
PY
)
if [ -z "$counts" ]; then
	# No log (meson test could not run at all).
	[ "$mrc" -eq 0 ] && fail_early "meson test wrote no testlog.json"
	fail_early "meson test failed before running tests (status $mrc)"
fi
set -- $counts
passed=$1 failed=$2 skipped=$3
if [ "$mrc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	failed=1  # meson failed for a reason the log does not show
fi
[ "$skipped" -gt 0 ] && echo "run-tests.sh: $skipped test(s) skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
