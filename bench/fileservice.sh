#!/bin/bash
# fileservice.sh - sgnfs against NFS-Ganesha 4.3 (FSAL VFS), same machine,
# same run, same clients, printed side by side with ratios.
#
#   bench/fileservice.sh [BUILD_DIR]        (default: <source>/build)
#
# Steps:
#   1. install nfs-ganesha, nfs-ganesha-vfs, libnfs-utils, libnfs-dev,
#      rpcbind if missing (apt-get);
#   2. configure (if needed) and build sgnfs in BUILD_DIR; getattr_bench comes
#      from BUILD_DIR/bench, or is compiled with gcc if the tree does not build;
#   3. for each server in turn, each alone in a private network namespace of
#      its own (so both get 127.0.0.1:111/2049 without colliding with anything):
#        start it, wait until nfs-ls works,
#        getattr_bench --depth 1, getattr_bench --depth 32,
#        nfs-cp a 1 GiB random file to the server, then back (timed with
#        date +%s.%N; both copies compared with cmp): one synchronous call
#        at a time, so this copy is bound by the client's round trip;
#        seqio_bench: the same size written and read back the way a kernel
#        client does it (BENCH_SEQ_DEPTH calls of BENCH_SEQ_BS KiB in flight
#        on one connection, UNSTABLE WRITEs then one COMMIT, every byte
#        read compared), stop it;
#   4. print the table and write bench/results/fileservice-<date>.json.
#
# Environment: BENCH_SECONDS (GETATTR seconds per run, default 5),
# BENCH_FILE_MB (MiB copied, default 1024), BENCH_SEQ_DEPTH (seqio_bench
# calls in flight, default 16), BENCH_SEQ_BS (its block, KiB, default 1024,
# capped by each server's FSINFO wtmax/rtmax), BENCH_SEQ_EXTRA (more
# seqio_bench options, e.g. --passes 4), BENCH_FS_ROWS (which
# measurements, default "getattr copy seqio"; also "null": NFS NULL at
# depth 1 through our own RPC client), BENCH_GETATTR_REPEATS
# (depth-1 runs per server, the median reported, default 3), BENCH_SERVERS (default
# "sgnfs ganesha"), BENCH_WORK (scratch, default /var/tmp/sgnfs-bench),
# BENCH_LOOP_CPU (sgnfs's loop_cpu; default none), BENCH_SG_EXTRA ([cluster]
# lines for sgnfs, ';'-separated, as lockbench.py), BENCH_PROFILE (1: after
# sgnfs's measured rows, one extra, unmeasured run of each of GETATTR depth
# 1, depth 32 and seqio_bench under `perf record` of sgnfsd, summed by
# bench/perfprof.py into sgnfs.profile of the JSON; 0: none; default 1 when
# perf is in PATH).
#
# Everything started here is stopped on exit, whatever the exit path (trap).
# A server that fails is reported as n/a; the exit status is then 1.
set -u

SRC=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$SRC/bench
BUILD=$(realpath -m "${1:-$SRC/build}")
WORK=${BENCH_WORK:-/var/tmp/sgnfs-bench}
SECS=${BENCH_SECONDS:-5}
FILE_MB=${BENCH_FILE_MB:-1024}
SEQ_DEPTH=${BENCH_SEQ_DEPTH:-16}
SEQ_BS=${BENCH_SEQ_BS:-1024}
SERVERS=${BENCH_SERVERS:-sgnfs ganesha}
ROWS=${BENCH_FS_ROWS:-getattr copy seqio}
GA_REPEATS=${BENCH_GETATTR_REPEATS:-3}
# BENCH_CLIENT_CPU: run getattr_bench on that CPU only (taskset), for
# both servers alike
PIN=
[ -n "${BENCH_CLIENT_CPU:-}" ] && PIN="taskset -c $BENCH_CLIENT_CPU"
SG_NS=${BENCH_NS:-sgnfs-bench}-sgnfs
SG_WORK=$WORK/sgnfs
export GANESHA_NS=${BENCH_NS:-sgnfs-bench}-ganesha
export GANESHA_WORK=$WORK/ganesha
GA_EXPORT=$GANESHA_WORK/export
SG_EXPORT=$SG_WORK/export
SRCFILE=$WORK/src.bin
BACKFILE=$WORK/readback.bin
STAMP=$(date +%Y%m%d-%H%M%S)
JSON=$BENCH/results/fileservice-$STAMP.json
LOG=$WORK/fileservice-$STAMP.log

declare -A R     # R[server.metric] = figure
declare -A NOTE  # NOTE[server] = why its figures are missing
SG_PID=
STATUS=0
# the profile runs (BENCH_PROFILE, see above)
PROFILE=${BENCH_PROFILE:-}
if [ "$PROFILE" != 0 ]; then
	command -v perf >/dev/null 2>&1 && PROFILE=1 || PROFILE=0
fi
declare -A PROF  # PROF[row] = perfprof.py's summary (one JSON object)
PERF_PID=

log() { echo "[fileservice $(date +%T)] $*" | tee -a "$LOG" >&2; }
die() { log "FATAL: $*"; exit 1; }
now() { date +%s.%N; }

# ---------------------------------------------------------------- cleanup

sgnfs_stop() {
	local i
	if [ -n "$SG_PID" ] && kill -0 "$SG_PID" 2>/dev/null; then
		kill -TERM "$SG_PID" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			kill -0 "$SG_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$SG_PID" 2>/dev/null && { log "sgnfsd ignored SIGTERM, killing"; kill -KILL "$SG_PID"; }
		wait "$SG_PID" 2>/dev/null
	fi
	SG_PID=
	if ip netns list 2>/dev/null | grep -qw "^$SG_NS"; then
		for pid in $(ip netns pids "$SG_NS" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null   # only ours can be in there
		done
		ip netns del "$SG_NS" 2>/dev/null
	fi
}

cleanup() {
	trap - EXIT INT TERM
	[ -n "$PERF_PID" ] && kill -KILL "$PERF_PID" 2>/dev/null
	sgnfs_stop
	"$BENCH/ganesha.sh" stop
	rm -f "$SRCFILE" "$BACKFILE" "$SG_EXPORT/bench.bin" "$GA_EXPORT/bench.bin" \
		"$SG_EXPORT/seq.bin" "$GA_EXPORT/seq.bin"
}
trap 'cleanup; exit $STATUS' EXIT
trap 'STATUS=130; exit' INT TERM

# ---------------------------------------------------------------- setup

need_root() { [ "$(id -u)" = 0 ] || die "run as root (network namespaces)"; }

install_deps() {
	local p missing=()
	for p in nfs-ganesha nfs-ganesha-vfs libnfs-utils libnfs-dev rpcbind; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}" >>"$LOG" 2>&1 ||
		die "apt-get install ${missing[*]} failed (see $LOG)"
}

SGNFSD=
GB=
SQ=
build() {
	if [ ! -f "$BUILD/build.ninja" ]; then
		log "meson setup $BUILD"
		timeout 300 meson setup "$BUILD" "$SRC" >>"$LOG" 2>&1 || log "meson setup failed (see $LOG)"
	fi
	if [ -f "$BUILD/build.ninja" ]; then
		log "ninja -C $BUILD"
		if ! timeout 1200 ninja -C "$BUILD" >>"$LOG" 2>&1; then
			# Something else (a test, a tool) may be mid-edit: build only
			# what the benchmark runs.
			log "full build failed; building sgnfsd and getattr_bench only"
			timeout 1200 ninja -C "$BUILD" src/daemon/sgnfsd >>"$LOG" 2>&1 ||
				log "ninja src/daemon/sgnfsd failed (see $LOG)"
			timeout 300 ninja -C "$BUILD" bench/getattr_bench bench/seqio_bench >>"$LOG" 2>&1 || true
		fi
	fi
	[ -x "$BUILD/src/daemon/sgnfsd" ] && SGNFSD=$BUILD/src/daemon/sgnfsd
	if [ -x "$BUILD/bench/getattr_bench" ] &&
	   [ "$BUILD/bench/getattr_bench" -nt "$BENCH/getattr_bench.c" ]; then
		GB=$BUILD/bench/getattr_bench
	else
		log "compiling getattr_bench directly (tree does not build it)"
		timeout 120 gcc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$WORK/getattr_bench" \
			"$BENCH/getattr_bench.c" -lnfs >>"$LOG" 2>&1 || die "cannot compile getattr_bench"
		GB=$WORK/getattr_bench
	fi
	if [ -x "$BUILD/bench/seqio_bench" ] &&
	   [ "$BUILD/bench/seqio_bench" -nt "$BENCH/seqio_bench.c" ]; then
		SQ=$BUILD/bench/seqio_bench
	else
		log "compiling seqio_bench directly (tree does not build it)"
		timeout 120 gcc -std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$WORK/seqio_bench" \
			"$BENCH/seqio_bench.c" -lnfs >>"$LOG" 2>&1 || die "cannot compile seqio_bench"
		SQ=$WORK/seqio_bench
	fi
}

make_source_file() {
	local avail_mb need_mb=$((FILE_MB * 4 + 512))
	avail_mb=$(df -Pm "$WORK" | awk 'NR == 2 { print $4 }')
	[ "$avail_mb" -ge "$need_mb" ] || die "$WORK has ${avail_mb} MB free, need ${need_mb} MB"
	log "creating ${FILE_MB} MiB random source file"
	timeout 600 head -c $((FILE_MB * 1048576)) /dev/urandom >"$SRCFILE" || die "cannot create $SRCFILE"
}

# ---------------------------------------------------------------- sgnfs

sgnfs_start() {
	local deadline
	mkdir -p "$SG_EXPORT" "$SG_WORK/run" || return 1
	rm -f "$SG_WORK/handle.key"
	"$(dirname "$SGNFSD")/../ctl/sgnfsctl" keygen "$SG_WORK/handle.key" >/dev/null || return 1
	cat >"$SG_WORK/sgnfs.ini" <<EOF
; written by bench/fileservice.sh: one node, one group, one export
[cluster]
name = bench
run_dir = $SG_WORK/run
handle_key = $SG_WORK/handle.key
log_level = warn
${BENCH_LOOP_CPU:+loop_cpu = $BENCH_LOOP_CPU}
$(printf '%s' "${BENCH_SG_EXTRA:-}" | tr ';' '\n')

[node a]

[group bench]
vip = 127.0.0.1
nodes = a

[export $SG_EXPORT]
group = bench
fsid = 101
access = rw
clients = 127.0.0.0/8
squash = none
EOF
	timeout 10 "$SGNFSD" -t -c "$SG_WORK/sgnfs.ini" >>"$LOG" 2>&1 ||
		{ log "sgnfsd -t rejects the config (see $LOG)"; return 1; }
	"$(dirname "$SGNFSD")/../ctl/sgnfsctl" -c "$SG_WORK/sgnfs.ini" init bench >>"$LOG" 2>&1 ||
		{ log "sgnfsctl init bench failed (see $LOG)"; return 1; }
	sgnfs_stop
	ip netns add "$SG_NS" && ip netns exec "$SG_NS" ip link set lo up || return 1
	# ip netns exec execs the command, so $! is sgnfsd itself.
	ip netns exec "$SG_NS" "$SGNFSD" -c "$SG_WORK/sgnfs.ini" -n a -f \
		>"$SG_WORK/sgnfsd.log" 2>&1 </dev/null &
	SG_PID=$!
	deadline=$(($(date +%s) + 20))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		if ! kill -0 "$SG_PID" 2>/dev/null; then
			log "sgnfsd exited during start; its log:"
			tail -n 20 "$SG_WORK/sgnfsd.log" | tee -a "$LOG" >&2
			return 1
		fi
		timeout 5 ip netns exec "$SG_NS" nfs-ls "nfs://127.0.0.1$SG_EXPORT" >/dev/null 2>&1 &&
			{ log "sgnfs: serving $SG_EXPORT in netns $SG_NS (pid $SG_PID)"; return 0; }
		sleep 0.3
	done
	log "sgnfs did not serve nfs-ls within 20 s; its log:"
	tail -n 20 "$SG_WORK/sgnfsd.log" | tee -a "$LOG" >&2
	return 1
}

# ---------------------------------------------------------------- measuring

# getattr SERVER NS EXPORT DEPTH: fills R[SERVER.getattr_dDEPTH_{ops,p50_us,p99_us}]
getattr() {
	local s=$1 ns=$2 exp=$3 d=$4 out k i all=() line
	# Depth 1 is one call at a time: its rate is the round trip, which
	# depends on whether the scheduler put the server's thread on the
	# client's CPU (no wake-up of the other, halted vCPU) or not (sgnfs:
	# p50 ~30 us against ~41 us here), and that is decided anew for each
	# connection.  So depth 1 runs GA_REPEATS times, a new connection
	# each, and the run with the median rate is reported; all are logged.
	local reps=1
	[ "$d" = 1 ] && reps=$GA_REPEATS
	for ((i = 0; i < reps; i++)); do
		out=$(timeout $((SECS + 60)) ip netns exec "$ns" $PIN "$GB" 127.0.0.1 "$exp" \
			--depth "$d" --seconds "$SECS" 2>>"$LOG") ||
			{ log "$s: getattr_bench --depth $d failed (see $LOG)"; return 1; }
		echo "$s depth $d run $((i + 1))/$reps: $out" >>"$LOG"
		all+=("$out")
	done
	out=$(printf '%s\n' "${all[@]}" |
		sort -t= -k2 -n | sed -n "$(( (reps + 1) / 2 ))p")
	R[$s.getattr_d${d}_ops]=$(sed -n 's/.*getattr_ops_per_sec=\([0-9]*\).*/\1/p' <<<"$out")
	R[$s.getattr_d${d}_p50_us]=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$out")
	R[$s.getattr_d${d}_p99_us]=$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' <<<"$out")
	for k in ops p50_us p99_us; do
		[ -n "${R[$s.getattr_d${d}_$k]}" ] || { log "$s: cannot parse '$out'"; return 1; }
	done
	if [ "$reps" -gt 1 ]; then
		line=$(printf '%s\n' "${all[@]}" | sed -n 's/.*getattr_ops_per_sec=\([0-9]*\).*/\1/p' | paste -sd' ')
		R[$s.getattr_d${d}_runs]="$line"
		log "$s: depth $d: $out (median of $reps runs: $line)"
	else
		log "$s: depth $d: $out"
	fi
}

mbps() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / t / 1e6 }'; }

# copy SERVER NS EXPORT: 1 GiB write then read back, both verified with cmp.
copy() {
	local s=$1 ns=$2 exp=$3 t0 t1 bytes
	local url="nfs://127.0.0.1$exp/bench.bin"
	bytes=$(stat -c %s "$SRCFILE")
	rm -f "$exp/bench.bin" "$BACKFILE"
	sync

	t0=$(now)
	timeout 900 ip netns exec "$ns" nfs-cp "$SRCFILE" "$url" >>"$LOG" 2>&1 ||
		{ log "$s: nfs-cp write failed"; return 1; }
	t1=$(now)
	R[$s.write_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	R[$s.write_MBps]=$(mbps "$bytes" "${R[$s.write_s]}")
	timeout 600 cmp "$SRCFILE" "$exp/bench.bin" >>"$LOG" 2>&1 ||
		{ log "$s: file on the server differs from the source"; return 1; }

	t0=$(now)
	timeout 900 ip netns exec "$ns" nfs-cp "$url" "$BACKFILE" >>"$LOG" 2>&1 ||
		{ log "$s: nfs-cp read failed"; return 1; }
	t1=$(now)
	R[$s.read_s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	R[$s.read_MBps]=$(mbps "$bytes" "${R[$s.read_s]}")
	timeout 600 cmp "$SRCFILE" "$BACKFILE" >>"$LOG" 2>&1 ||
		{ log "$s: file read back differs from the source"; return 1; }
	R[$s.verified]=true
	R[$s.bytes]=$bytes
	log "$s: write ${R[$s.write_s]} s (${R[$s.write_MBps]} MB/s), read ${R[$s.read_s]} s (${R[$s.read_MBps]} MB/s), cmp ok"
	rm -f "$exp/bench.bin" "$BACKFILE"
}

# seqio SERVER NS EXPORT: seqio_bench, pipelined write + COMMIT + read, checked.
seqio() {
	local s=$1 ns=$2 exp=$3 out k
	rm -f "$exp/seq.bin"
	sync
	out=$(timeout 900 ip netns exec "$ns" "$SQ" 127.0.0.1 "$exp" seq.bin --mb "$FILE_MB" \
		--bs "$SEQ_BS" --depth "$SEQ_DEPTH" ${BENCH_SEQ_EXTRA:-} 2>>"$LOG") ||
		{ log "$s: seqio_bench failed (see $LOG)"; rm -f "$exp/seq.bin"; return 1; }
	for k in write_MBps read_MBps write_s commit_s read_s wbs rbs committed; do
		R[$s.seq_$k]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$out" "$k") ||
			{ log "$s: cannot parse '$out'"; return 1; }
	done
	log "$s: seqio depth $SEQ_DEPTH: $out"
	rm -f "$exp/seq.bin"
}

# nfsnull SERVER NS: NFSv3 NULL at depth 1 over our own RPC client
# (bench/nlm_null_bench --prog 100003 --vers 3): the transport's round
# trip with no work, against which GETATTR depth 1 reads.
nfsnull() {
	local s=$1 ns=$2 out nb
	nb=$(dirname "$GB")/nlm_null_bench
	[ -x "$nb" ] || nb=$BUILD/bench/nlm_null_bench
	out=$(timeout $((SECS + 60)) ip netns exec "$ns" $PIN "$nb" --server 127.0.0.1 \
		--prog 100003 --vers 3 --depth 1 --duration "$SECS" 2>>"$LOG") ||
		{ log "$s: nlm_null_bench (NFS NULL) failed (see $LOG)"; return 1; }
	R[$s.null_d1_ops]=$(sed -n 's/.*calls\/s=\([0-9.]*\).*/\1/p' <<<"$out")
	R[$s.null_d1_p50_us]=$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' <<<"$out")
	log "$s: NFS NULL depth 1: $out"
}

# ---------------------------------------------------------------- profiles

# perf_attached PID: whether process PID holds a perf_event descriptor
perf_attached() {
	local f
	for f in /proc/"$1"/fd/*; do
		[[ $(readlink "$f" 2>/dev/null) == *perf_event* ]] && return 0
	done
	return 1
}

# prof_start NAME: perf record of sgnfsd into $WORK/profile/NAME.data, until
# prof_stop.  Returns once perf is attached: it takes 0.2-0.5 s to open its
# events, and a run started before would go partly unsampled.
prof_start() {
	local i
	mkdir -p "$WORK/profile" || return 1
	rm -f "$WORK/profile/$1.data"
	perf record -F 999 -g -p "$SG_PID" -o "$WORK/profile/$1.data" >>"$LOG" 2>&1 </dev/null &
	PERF_PID=$!
	for ((i = 0; i < 750; i++)); do
		perf_attached "$PERF_PID" && break
		kill -0 "$PERF_PID" 2>/dev/null || break
		sleep 0.02
	done
	sleep 0.2   # the events are enabled once sgnfsd's maps are written
}

# prof_stop NAME: stop the recording, keep its summary in PROF[NAME]; a
# failed perf costs the profile only (logged).
prof_stop() {
	local i out
	# perf sets its own SIGINT handler, so the SIGINT that a background
	# job of a script ignores still reaches it
	kill -INT "$PERF_PID" 2>/dev/null
	for ((i = 0; i < 600; i++)); do
		kill -0 "$PERF_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$PERF_PID" 2>/dev/null
	wait "$PERF_PID" 2>/dev/null
	PERF_PID=
	if out=$(timeout 300 python3 "$BENCH/perfprof.py" summarize "$WORK/profile/$1.data" 2>>"$LOG"); then
		PROF[$1]=$out
		log "sgnfs: profile $1: $out"
	else
		log "sgnfs: profile $1 failed (see $LOG); no profile"
	fi
}

# profile NS EXPORT: one extra run of each measured row (GETATTR depth 1,
# depth 32, seqio) under perf, after the measured ones: the sampling slows
# sgnfsd, so these runs count in no figure.
profile() {
	local ns=$1 exp=$2 row d
	for row in $ROWS; do
		case $row in
		getattr)
			for d in 1 32; do
				prof_start getattr_d$d
				timeout $((SECS + 60)) ip netns exec "$ns" $PIN "$GB" 127.0.0.1 "$exp" \
					--depth "$d" --seconds "$SECS" >>"$LOG" 2>&1 ||
					log "sgnfs: profile run getattr_bench --depth $d failed"
				prof_stop getattr_d$d
			done ;;
		seqio)
			rm -f "$exp/seq.bin"
			sync
			prof_start seq
			timeout 900 ip netns exec "$ns" "$SQ" 127.0.0.1 "$exp" seq.bin --mb "$FILE_MB" \
				--bs "$SEQ_BS" --depth "$SEQ_DEPTH" ${BENCH_SEQ_EXTRA:-} >>"$LOG" 2>&1 ||
				log "sgnfs: profile run seqio_bench failed"
			prof_stop seq
			rm -f "$exp/seq.bin" ;;
		esac
	done
}

measure() {
	local s=$1 ns=$2 exp=$3 row
	for row in $ROWS; do
		case $row in
		getattr) getattr "$s" "$ns" "$exp" 1 && getattr "$s" "$ns" "$exp" 32 || return 1 ;;
		copy)    copy "$s" "$ns" "$exp" || return 1 ;;
		seqio)   seqio "$s" "$ns" "$exp" || return 1 ;;
		null)    nfsnull "$s" "$ns" || return 1 ;;
		*)       log "unknown row $row"; return 1 ;;
		esac
	done
}

run_sgnfs() {
	if [ -z "$SGNFSD" ]; then
		NOTE[sgnfs]="sgnfsd not built"; return 1
	fi
	sgnfs_start || { NOTE[sgnfs]="sgnfsd did not start/serve"; sgnfs_stop; return 1; }
	measure sgnfs "$SG_NS" "$SG_EXPORT" || NOTE[sgnfs]="a measurement failed"
	[ "$PROFILE" = 1 ] && [ -z "${NOTE[sgnfs]:-}" ] && profile "$SG_NS" "$SG_EXPORT"
	kill -0 "$SG_PID" 2>/dev/null || { NOTE[sgnfs]="sgnfsd died during the run"; }
	sgnfs_stop
	[ -z "${NOTE[sgnfs]:-}" ]
}

run_ganesha() {
	timeout 120 "$BENCH/ganesha.sh" start "$GA_EXPORT" 2>&1 | tee -a "$LOG" >&2
	[ "${PIPESTATUS[0]}" = 0 ] || { NOTE[ganesha]="ganesha did not start"; return 1; }
	measure ganesha "$GANESHA_NS" "$GA_EXPORT" || NOTE[ganesha]="a measurement failed"
	timeout 60 "$BENCH/ganesha.sh" stop
	[ -z "${NOTE[ganesha]:-}" ]
}

# ---------------------------------------------------------------- report

METRICS="null_d1_ops null_d1_p50_us getattr_d1_ops getattr_d1_p50_us getattr_d1_p99_us getattr_d32_ops getattr_d32_p50_us getattr_d32_p99_us write_MBps read_MBps seq_write_MBps seq_read_MBps"
label() {
	case $1 in
	null_d1_ops)        echo "NFS NULL calls/s, depth 1 (own client)" ;;
	null_d1_p50_us)     echo "NFS NULL p50 us, depth 1 (lower=better)" ;;
	getattr_d1_ops)     echo "GETATTR ops/s, depth 1" ;;
	getattr_d1_p50_us)  echo "GETATTR p50 us, depth 1 (lower=better)" ;;
	getattr_d1_p99_us)  echo "GETATTR p99 us, depth 1 (lower=better)" ;;
	getattr_d32_ops)    echo "GETATTR ops/s, depth 32" ;;
	getattr_d32_p50_us) echo "GETATTR p50 us, depth 32 (lower=better)" ;;
	getattr_d32_p99_us) echo "GETATTR p99 us, depth 32 (lower=better)" ;;
	write_MBps)         echo "${FILE_MB} MiB nfs-cp write, MB/s" ;;
	read_MBps)          echo "${FILE_MB} MiB nfs-cp read, MB/s" ;;
	seq_write_MBps)     echo "${FILE_MB} MiB write, depth ${SEQ_DEPTH}, MB/s" ;;
	seq_read_MBps)      echo "${FILE_MB} MiB read, depth ${SEQ_DEPTH}, MB/s" ;;
	esac
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
jnum() { [ -n "${1:-}" ] && echo "$1" || echo null; }

report() {
	local m a b
	printf '\n%-42s %12s %12s %14s\n' metric sgnfs ganesha sgnfs/ganesha
	for m in $METRICS; do
		a=${R[sgnfs.$m]:-}; b=${R[ganesha.$m]:-}
		printf '%-42s %12s %12s %14s\n' "$(label "$m")" "${a:-n/a}" "${b:-n/a}" "$(ratio "$a" "$b")"
	done
	for s in sgnfs ganesha; do
		[ -n "${NOTE[$s]:-}" ] && printf '%s: %s\n' "$s" "${NOTE[$s]}"
	done
	printf '(MB = 10^6 bytes; client and server share %s cores; load average %s at start; log %s)\n' \
		"$(nproc)" "$LOAD0" "$LOG"

	mkdir -p "$BENCH/results"
	# The tree the measured binary was built from, which is not this
	# script's own when BUILD_DIR belongs to another checkout.
	BUILT_FROM=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["directories"]["source"])' \
		"$BUILD/meson-info/meson-info.json" 2>/dev/null || echo "$SRC")
	{
		printf '{\n  "date": "%s",\n' "$(date -Iseconds)"
		printf '  "host": {"kernel": "%s", "cpus": %s, "loadavg_at_start": "%s", "loadavg_at_end": "%s"},\n' \
			"$(uname -r)" "$(nproc)" "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)"
		printf '  "versions": {"sgnfs": "%s", "ganesha": "%s", "libnfs": "%s"},\n' \
			"$(git -C "$BUILT_FROM" describe --always --dirty 2>/dev/null || echo unknown)" \
			"$(dpkg-query -W -f='${Version}' nfs-ganesha 2>/dev/null)" \
			"$(dpkg-query -W -f='${Version}' libnfs-utils 2>/dev/null)"
		printf '  "params": {"getattr_seconds": %s, "getattr_d1_repeats": %s, "file_bytes": %s, "seq_depth": %s, "seq_bs_kib": %s, "sg_extra": "%s", "transport": "tcp", "address": "127.0.0.1 in a private netns per server"},\n' \
			"$SECS" "$GA_REPEATS" "$((FILE_MB * 1048576))" "$SEQ_DEPTH" "$SEQ_BS" \
			"$(printf '%s' "${BENCH_SG_EXTRA:-}" | tr -d '"\\')"
		for s in sgnfs ganesha; do
			printf '  "%s": {' "$s"
			for m in $METRICS write_s read_s seq_write_s seq_commit_s seq_read_s seq_wbs seq_rbs; do
				printf '"%s": %s, ' "$m" "$(jnum "${R[$s.$m]:-}")"
			done
			printf '"getattr_d1_runs": [%s], ' "$(tr ' ' ',' <<<"${R[$s.getattr_d1_runs]:-}")"
			if [ "$s" = sgnfs ]; then
				local psep= pk
				printf '"profile": {'
				for pk in getattr_d1 getattr_d32 seq; do
					[ -n "${PROF[$pk]:-}" ] || continue
					printf '%s"%s": %s' "$psep" "$pk" "${PROF[$pk]}"; psep=', '
				done
				printf '}, '
			fi
			printf '"seq_committed": "%s", "verified": %s, "note": "%s"},\n' "${R[$s.seq_committed]:-}" \
				"${R[$s.verified]:-false}" "${NOTE[$s]:-}"
		done
		printf '  "ratio_sgnfs_over_ganesha": {'
		local sep=
		for m in $METRICS; do
			a=$(ratio "${R[sgnfs.$m]:-}" "${R[ganesha.$m]:-}")
			[ "$a" = n/a ] && a=null
			printf '%s"%s": %s' "$sep" "$m" "$a"; sep=', '
		done
		printf '}\n}\n'
	} >"$JSON"
	echo "raw figures: $JSON"
}

# ---------------------------------------------------------------- main

need_root
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)  # other work on the machine skews every figure
mkdir -p "$WORK" || die "cannot create $WORK"
: >"$LOG"
install_deps
build
case " $ROWS " in *" copy "*) make_source_file ;; esac
for s in $SERVERS; do
	case $s in
	sgnfs)   log "=== sgnfs ($SGNFSD)";   run_sgnfs   || STATUS=1 ;;
	ganesha) log "=== ganesha";           run_ganesha || STATUS=1 ;;
	*)       die "unknown server $s" ;;
	esac
done
report
