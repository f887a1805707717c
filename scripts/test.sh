#!/bin/sh
# The whole test suite: installs what it needs, then builds and runs every
# test twice, in a normal build and in an ASan+UBSan build.  The last line
# is "N passed, N failed" over both.
set -u
cd "$(dirname "$0")/.."
./scripts/deps.sh || exit 1
total_pass=0
total_fail=0
rc=0
for variant in plain asan; do
	out=$(mktemp)
	if [ "$variant" = asan ]; then
		./scripts/run-tests.sh --asan 2>&1 | tee "$out"
	else
		./scripts/run-tests.sh 2>&1 | tee "$out"
	fi
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
