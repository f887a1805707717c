#!/bin/sh
# soak.sh - the kill -9 fault test (tests/integration/test_fault_kill9.py)
# with many more iterations than CI runs.  Not run in CI.
#
#   scripts/soak.sh [-n ITERATIONS] [-r ROUNDS] [-s SEED] [-b BUILDDIR] [-k]
#
#   -n  kills per round (default 1000)
#   -r  rounds, each a fresh cluster with its own seed (default 1)
#   -s  seed of the first round (default: random; round i uses SEED+i)
#   -b  build directory holding src/daemon/sgnfsd, src/client/sgnfs-client,
#       src/ctl/sgnfsctl (default build/; built with ninja first)
#   -k  keep going after a failed round (default: stop at the first)
#
# Any FAULT_* variable of the test passes through (FAULT_GRACE,
# FAULT_HOSTS, FAULT_MAX_DELAY, FAULT_MAX_BAD).  Each round's full output
# goes to $SOAK_LOGS/round-N.log (default /tmp/sgnfs-soak-DATE); a summary
# of every round follows, and the exit status is non-zero if any round
# failed.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)

iters=1000
rounds=1
seed=""
build=build
keep=0
while getopts n:r:s:b:kh opt; do
	case $opt in
	n) iters=$OPTARG ;;
	r) rounds=$OPTARG ;;
	s) seed=$OPTARG ;;
	b) build=$OPTARG ;;
	k) keep=1 ;;
	*) sed -n '2,18p' "$0"; exit 64 ;;
	esac
done
case $build in /*) ;; *) build=$root/$build ;; esac

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" || exit 1
fi
ninja -C "$build" || exit 1
for t in src/daemon/sgnfsd src/client/sgnfs-client src/ctl/sgnfsctl; do
	[ -x "$build/$t" ] || { echo "soak.sh: $build/$t missing" >&2; exit 1; }
done
if [ -z "$seed" ]; then
	seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	seed=$((seed % 2147483647 + 1))
fi

logs=${SOAK_LOGS:-/tmp/sgnfs-soak-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$logs"
summary=$logs/summary.txt
: >"$summary"
failed=0
i=0
start=$(date +%s)
while [ "$i" -lt "$rounds" ]; do
	s=$((seed + i))
	log=$logs/round-$i.log
	echo "soak round $((i + 1))/$rounds: $iters kills, seed $s (log $log)"
	t0=$(date +%s)
	# ~2.5 s per kill at most, plus start-up and shutdown
	SGNFSD=$build/src/daemon/sgnfsd \
	SGNFS_CLIENT=$build/src/client/sgnfs-client \
	SGNFSCTL=$build/src/ctl/sgnfsctl \
	PYTHONPATH=$root/tests/integration \
	PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
	FAULT_ITERATIONS=$iters FAULT_SEED=$s \
	FAULT_TIMEOUT=$((300 + iters * 25 / 10)) \
		python3 tests/integration/test_fault_kill9.py >"$log" 2>&1
	rc=$?
	t1=$(date +%s)
	{
		echo "round $i seed $s: exit $rc, $((t1 - t0)) s"
		sed -n '/^SUMMARY/,/^====/p' "$log" | sed '/^====/d'
		grep -E '^test_fault_kill9: ' "$log"
	} | tee -a "$summary"
	if [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		echo "first failures of round $i:" | tee -a "$summary"
		grep -E '^(FAIL|ABORT)' "$log" | head -n 10 | tee -a "$summary"
		[ "$keep" = 1 ] || { i=$((i + 1)); break; }
	fi
	i=$((i + 1))
done
end=$(date +%s)
echo "soak: $i round(s) of $iters kills, $failed failed, $((end - start)) s; seeds from $seed" \
	| tee -a "$summary"
[ "$failed" -eq 0 ]
