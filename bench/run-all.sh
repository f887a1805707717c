#!/bin/bash
# run-all.sh - every benchmark of sgnfs against NFS-Ganesha 4.3, one command.
#
#   bench/run-all.sh [BUILD_DIR]
#
# BUILD_DIR (default $BENCH_WORK/build) is configured if needed as a release
# build without tests (meson setup -Dbuildtype=release -Dtests=false) and
# built with ninja.  Then, on this machine, in the same run:
#
#   1. lock throughput and latency   (bench/lockbench.py, section lock)
#   2. NLM NULL ceiling              (same section, bench/nlm_null_bench)
#   3. failover timelines            (section failover)
#   4. isolation of the other groups (section isolation)
#   5. scale and memory per lock     (section scale, bench/lk_bench)
#   6. file service                  (bench/fileservice.sh: GETATTR, 1 GiB
#                                     copies by nfs-cp and bench/seqio_bench)
#
# and prints the table (sgnfs, Ganesha, ratio, target, met/missed).  It
# writes the raw figures to bench/results/<date>.json, the plots to
# bench/results/<date>/*.png, and the generated part of bench/RESULTS.md.
# Redo the table, plots and RESULTS.md from a raw file, without measuring:
#   bench/report.py --from bench/results/<date>.json --plots DIR --results-md bench/RESULTS.md
#
# Environment: BENCH_WORK (scratch, default /var/tmp/sgnfs-bench),
# BENCH_SECTIONS (default lock,failover,isolation,scale,fileservice), and
# those of lockbench.py (BENCH_SECONDS, BENCH_REPEAT, BENCH_FO_REPEAT,
# BENCH_GRACE, ...) and fileservice.sh (BENCH_FILE_MB, ...); BENCH_NS, the
# prefix of the network namespaces' names (default sgnfs-bench);
# BENCH_SG_EXTRA ([cluster] lines for every sgnfs node of both scripts,
# ';'-separated, e.g. "poll_spin_us = 50"; named in the report's settings);
# BENCH_PROFILE (default 1 when `perf` is in PATH; 0: off): one extra,
# unmeasured run of each sgnfs row under `perf record` of sgnfsd, summed by
# bench/perfprof.py into the raw figures and printed by report.py below the
# table ("Where sgnfsd's CPU went").
#
# Runs as root (network namespaces).  About 15 minutes on 2 cores.  Every
# process and namespace it starts is stopped on exit, whatever the exit path.
# Exit status: 0, or 1 if a section failed (the others still report).
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$SRC/bench
export BENCH_WORK=${BENCH_WORK:-/var/tmp/sgnfs-bench}
BUILD=$(realpath -m "${1:-$BENCH_WORK/build}")
SECTIONS=${BENCH_SECTIONS:-lock,failover,isolation,scale,fileservice}
# Prefix of every network namespace's name (lockbench.py, fileservice.sh too).
NSP=${BENCH_NS:-sgnfs-bench}
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$BENCH/results
OUT=$RESULTS/$STAMP.json
PLOTS=$RESULTS/$STAMP
LOG=$BENCH_WORK/run-all-$STAMP.log
LOCKJSON=$BENCH_WORK/lock-$STAMP.json
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
STATUS=0
CHILD=

log() { echo "[run-all $(date +%T)] $*" | tee -a "$LOG" >&2; }
die() { log "FATAL: $*"; exit 1; }

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		kill -TERM "$CHILD" 2>/dev/null      # lockbench.py / fileservice.sh clean up after themselves
		for _ in $(seq 50); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$CHILD" 2>/dev/null
	fi
	# whatever they could not: our namespaces only (names are ours)
	GANESHA_NS=$NSP-lk-ga GANESHA_WORK=$BENCH_WORK/lock/ganesha GANESHA_STOP_WAIT=2 \
		"$BENCH/ganesha.sh" stop >/dev/null 2>&1
	for ns in $NSP-lk-sg $NSP-lk-gc; do
		if ip netns list 2>/dev/null | grep -qw "^$ns"; then
			for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
			ip netns del "$ns" 2>/dev/null
		fi
	done
}
trap 'cleanup; exit $STATUS' EXIT
trap 'STATUS=130; exit' INT TERM

# run_bg TIMEOUT CMD...: run CMD as our child (so cleanup can stop it).
run_bg() {
	local t=$1 rc
	shift
	timeout --signal=TERM --kill-after=30 "$t" "$@" &
	CHILD=$!
	wait "$CHILD"
	rc=$?
	CHILD=
	return $rc
}

[ "$(id -u)" = 0 ] || die "run as root (network namespaces)"
mkdir -p "$BENCH_WORK" "$RESULTS" || die "cannot create $BENCH_WORK"
: >"$LOG"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
log "start: load average $LOAD0; $(nproc) CPUs; log $LOG"

# ---- dependencies (Debian packages; matplotlib is optional: no plots)
missing=()
for p in nfs-ganesha nfs-ganesha-vfs libnfs-utils libnfs-dev rpcbind nfs-common \
	 meson ninja-build gcc pkg-config libuv1-dev libtirpc-dev libinih-dev rpcsvc-proto; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}" >>"$LOG" 2>&1 ||
		die "apt-get install ${missing[*]} failed (see $LOG)"
fi
if ! "$PY" -c 'import matplotlib' 2>/dev/null; then
	log "installing python3-matplotlib (plots)"
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=600 install -y python3-matplotlib >>"$LOG" 2>&1 ||
		log "python3-matplotlib not installed: no plots"
fi

# ---- build
if [ ! -f "$BUILD/build.ninja" ]; then
	log "meson setup $BUILD (release, no tests)"
	timeout 300 meson setup "$BUILD" "$SRC" -Dbuildtype=release -Dtests=false >>"$LOG" 2>&1 ||
		die "meson setup failed (see $LOG)"
fi
log "ninja -C $BUILD"
if ! timeout 1200 ninja -C "$BUILD" >>"$LOG" 2>&1; then
	# another engineer's file may be mid-edit: build what the benchmark runs
	log "full build failed; building the benchmark's programs only"
	timeout 1200 ninja -C "$BUILD" src/daemon/sgnfsd src/client/sgnfs-client src/ctl/sgnfsctl \
		bench/nlm_null_bench bench/lk_bench >>"$LOG" 2>&1 || die "build failed (see $LOG)"
	timeout 300 ninja -C "$BUILD" bench/getattr_bench bench/seqio_bench >>"$LOG" 2>&1
fi
BUILDTYPE=$("$PY" -c 'import json,sys; print([o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"][0])' \
	"$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)
[ "$BUILDTYPE" = release ] || log "WARNING: $BUILD is a '$BUILDTYPE' build, not release"

# ---- 1-5: lock service
lock_sections=$(echo "$SECTIONS" | tr ',' '\n' | grep -v '^fileservice$' | paste -sd, -)
if [ -n "$lock_sections" ]; then
	log "=== lockbench.py: $lock_sections"
	# (no pipe: run_bg must run in this shell, so cleanup knows the child)
	run_bg 2400 "$PY" "$BENCH/lockbench.py" --build "$BUILD" --out "$LOCKJSON" \
		--sections "$lock_sections" > >(tee -a "$LOG" >&2) 2>&1
	rc=$?
	[ "$rc" = 0 ] || { log "lockbench.py exit $rc"; STATUS=1; }
fi

# ---- 6: file service
FSJSON=
if echo "$SECTIONS" | tr ',' '\n' | grep -qx fileservice; then
	log "=== fileservice.sh"
	mark=$BENCH_WORK/.fs-mark-$STAMP
	: >"$mark"
	run_bg 1500 "$BENCH/fileservice.sh" "$BUILD" > >(tee -a "$LOG" >&2) 2>&1
	rc=$?
	[ "$rc" = 0 ] || { log "fileservice.sh exit $rc"; STATUS=1; }
	FSJSON=$(find "$RESULTS" -maxdepth 1 -name 'fileservice-*.json' -newer "$mark" | sort | tail -1)
	rm -f "$mark"
fi

# ---- report
log "=== report (total $(( $(date +%s) - T0 )) s)"
"$PY" "$BENCH/report.py" --lock "$LOCKJSON" ${FSJSON:+--fileservice "$FSJSON"} \
	--out "$OUT" --plots "$PLOTS" --results-md "$BENCH/RESULTS.md" \
	--load-start "$LOAD0" --command "bench/run-all.sh $*" --build-type "$BUILDTYPE" ||
	{ log "report.py failed"; STATUS=1; }
log "done in $(( $(date +%s) - T0 )) s: $OUT; load average $(cut -d' ' -f1-3 /proc/loadavg) (start $LOAD0)"
