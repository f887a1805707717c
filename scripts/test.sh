#!/bin/sh
# The whole test suite: installs what it needs, then builds and runs every
# test twice, in a normal build and in an ASan+UBSan build, and builds the
# release (-O3) configuration, running its unit tests (the package and the
# benchmarks are built that way, and -O3 finds warnings the others do
# not).  The last line is "N passed, N failed" over every run.
#
#   scripts/test.sh          plain, ASan and release builds
#   scripts/test.sh --busy   the same, each with two CPU-bound processes
#                            running beside the suite (tests assert order
#                            and outcome, never time: this proves it)
#   scripts/test.sh --ci     plain, ASan and release, then the plain build
#                            once more in busy mode (what .ci/run does)
set -u
cd "$(dirname "$0")/.."
variants="plain asan release"
case "${1:-}" in
'') ;;
--busy) variants="plain-busy asan-busy" ;;
--ci) variants="plain asan release plain-busy" ;;
-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "test.sh: unknown argument '$1' (try --help)" >&2
   echo "0 passed, 1 failed"; exit 1 ;;
esac
./scripts/deps.sh || exit 1
total_pass=0
total_fail=0
rc=0
for variant in $variants; do
	out=$(mktemp)
	args=""
	case "$variant" in
	asan*) args="--asan" ;;
	release) args="--release --suite unit" ;;
	esac
	case "$variant" in
	*-busy) args="$args --busy" ;;
	esac
	echo "test.sh: === $variant ==="
	# shellcheck disable=SC2086
	./scripts/run-tests.sh $args 2>&1 | tee "$out"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n1)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "test.sh: $variant build did not report results"
		total_fail=$((total_fail + 1))
		rc=1
		continue
	fi
	p=${line%% passed*}
	f=${line#*, }; f=${f%% failed}
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	[ "$f" -eq 0 ] || rc=1
done
echo "$total_pass passed, $total_fail failed"
exit $rc
