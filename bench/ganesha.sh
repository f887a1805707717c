#!/bin/bash
# ganesha.sh - run NFS-Ganesha (FSAL VFS, NFSv3 only) in a private network
# namespace, as the reference server for bench/fileservice.sh and
# bench/lockbench.py.
#
#   ganesha.sh start [DIR...]       start rpcbind (+ rpc.statd with NLM) and
#                                   ganesha.nfsd, one export per DIR (default
#                                   GANESHA_WORK/export), wait until MOUNT
#                                   and NFS answer, prove it with nfs-ls
#   ganesha.sh stop                 stop every daemon, delete the namespace
#   ganesha.sh exec CMD [ARG...]    run CMD inside the namespace
#   ganesha.sh status               print the portmapper table
#
# For the lock and failover benchmarks (GANESHA_NLM=1):
#   ganesha.sh kill                 kill -9 ganesha.nfsd only (rpcbind and
#                                   statd stay: the "machine" stays up), and
#                                   save statd's monitor list for `notify`
#   ganesha.sh start-nfsd           start ganesha.nfsd again in the running
#                                   namespace (with GANESHA_GRACE it enters
#                                   its grace period, like a new owner)
#   ganesha.sh notify [ADDR]        sm-notify every client of the saved list,
#                                   with mon_name ADDR (default 127.0.0.1: the
#                                   server address the clients use), as a
#                                   rebooted server does
#
# Simulated client hosts that serve callbacks (NSM SM_NOTIFY: `sgnfs-client
# hold`) cannot live in this namespace: rpcbind holds *:111 here, and a host
# serves PORTMAP on ADDR:111.  bench/lockbench.py puts them in a namespace
# of their own, joined to this one by a veth pair (routed, not loopback).
#   ganesha.sh nfsd-pid             print ganesha.nfsd's pid
#
# Environment: GANESHA_NS (network namespace, default sgnfs-bench-ganesha),
# GANESHA_WORK (config, logs, pid files, default /var/tmp/sgnfs-bench/ganesha),
# GANESHA_START_TIMEOUT (seconds, default 30), GANESHA_NLM (1: Enable_NLM and
# an rpc.statd of our own; default 0), GANESHA_GRACE (grace seconds after
# each start; default: Graceless, locks granted at once),
# GANESHA_STATD_PORT (default 32765; +1 is statd's outgoing port),
# GANESHA_STOP_WAIT (seconds `stop` waits after SIGTERM before SIGKILL,
# default 15), GANESHA_IOQ_THRDMAX (RPC_Ioq_ThrdMax, Ganesha's cap on RPC
# worker threads; default: Ganesha's own, 200.  With NLM, each first lock of
# a client holds a worker in a mutex while SM_MON goes to statd, whose reply
# needs a worker too: a few hundred concurrent requests of new clients stall
# the server until the SM_MON call times out.  lockbench.py raises it).
#
# Isolation, and why it is needed:
#  - The namespace has only its own loopback, so its 127.0.0.1:111/2049/20048
#    cannot collide with any other server on the machine (sgnfs runs in a
#    namespace of its own during the benchmark).
#  - rpcbind also listens on the UNIX socket /run/rpcbind.sock and takes a lock
#    file under /run; those live in the *file system*, shared by every
#    namespace.  `ip netns exec` already gives the command a private mount
#    namespace (slave propagation), so we mount a tmpfs over /run inside it:
#    rpcbind, rpc.statd and ganesha.nfsd (which registers through that UNIX
#    socket) share a /run that no other rpcbind on the machine can see or
#    clobber.  ganesha.nfsd is started in that mount namespace with nsenter
#    (through rpcbind's pid), so a restart registers with the same rpcbind.
#    Consequently pid files and logs go to GANESHA_WORK, never to /run, and
#    statd keeps its monitor list in GANESHA_WORK/statd (-P), not
#    /var/lib/nfs.
#  - Every daemon runs in the foreground in the background of a shell, so we
#    own its pid and can stop it with SIGTERM (its clean shutdown).
set -u

NS=${GANESHA_NS:-sgnfs-bench-ganesha}
WORK=${GANESHA_WORK:-/var/tmp/sgnfs-bench/ganesha}
START_TIMEOUT=${GANESHA_START_TIMEOUT:-30}
NLM=${GANESHA_NLM:-0}
GRACE=${GANESHA_GRACE:-}
STATD_PORT=${GANESHA_STATD_PORT:-32765}
STOP_WAIT=${GANESHA_STOP_WAIT:-15}
IOQ_THRDMAX=${GANESHA_IOQ_THRDMAX:-}
MNT_PORT=20048
NFS_PORT=2049
NLM_PORT=32803
RQUOTA_PORT=875
PLUGINS=/usr/lib/x86_64-linux-gnu/ganesha

die() { echo "ganesha.sh: $*" >&2; exit 1; }
nsx() { ip netns exec "$NS" "$@"; }
# alive PID: running, not a zombie (our daemons are orphans: init reaps them
# when it likes, and kill -0 succeeds on a zombie)
alive() {
	kill -0 "$1" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# write_conf DIR...: one EXPORT per DIR.
write_conf() {
	local nlm=false graceless=true grace_lines="" ioq_line="" d id=0
	[ "$NLM" = 1 ] && nlm=true
	if [ -n "$GRACE" ]; then
		graceless=false
		# The lease may not outlast the grace period.
		grace_lines="Grace_Period = $GRACE; Lease_Lifetime = $((GRACE < 60 ? GRACE : 60));"
	fi
	[ -n "$IOQ_THRDMAX" ] && ioq_line="RPC_Ioq_ThrdMax = $IOQ_THRDMAX;"
	cat >"$WORK/ganesha.conf" <<EOF
# Generated by bench/ganesha.sh: NFSv3 only, FSAL VFS exports.
NFS_CORE_PARAM {
	Protocols = 3;
	NFS_Port = $NFS_PORT;
	MNT_Port = $MNT_PORT;
	NLM_Port = $NLM_PORT;
	Rquota_Port = $RQUOTA_PORT;
	Enable_NLM = $nlm;         # true only with our rpc.statd (GANESHA_NLM=1)
	Enable_RQUOTA = false;
	Enable_UDP = true;
	Clustered = false;
	$ioq_line
	mount_path_pseudo = false; # MOUNT by the real path, as sgnfs does
	Plugins_Dir = "$PLUGINS";
}
NFSV4 {
	Graceless = $graceless;    # true: never sit in a grace period after start
	$grace_lines
	RecoveryBackend = fs;
	RecoveryRoot = "$WORK/recovery";
}
EXPORT_DEFAULTS {
	Access_Type = RW;
}
EOF
	for d in "$@"; do
		id=$((id + 1))
		cat >>"$WORK/ganesha.conf" <<EOF
EXPORT {
	Export_Id = $id;
	Path = "$d";
	Pseudo = "$d";
	Protocols = 3;
	Transports = TCP, UDP;
	Access_Type = RW;
	Squash = No_Root_Squash;
	SecType = sys;
	FSAL {
		Name = VFS;
	}
}
EOF
	done
	cat >>"$WORK/ganesha.conf" <<EOF
LOG {
	Default_Log_Level = WARN;
	Components {
		ALL = WARN;
	}
}
EOF
}

# Wait until program $1 version $2 answers a NULL call over TCP at the port
# the namespace's portmapper gives.  Registered is not enough: after a
# kill -9 the dead server's registrations stay in rpcbind until the new one
# replaces them.
wait_prog() {
	local prog=$1 vers=$2 deadline=$(( $(date +%s) + START_TIMEOUT ))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		if timeout 3 ip netns exec "$NS" rpcinfo -t 127.0.0.1 "$prog" "$vers" >/dev/null 2>&1; then
			return 0
		fi
		if [ -f "$WORK/ganesha.pid" ] && ! alive "$(cat "$WORK/ganesha.pid")"; then
			echo "ganesha.sh: ganesha.nfsd exited; log:" >&2
			tail -20 "$WORK/ganesha.log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "ganesha.sh: program $prog v$vers does not answer after ${START_TIMEOUT}s" >&2
	return 1
}

# Stop the process whose pid is in file $1: SIGTERM, wait up to $2 s, SIGKILL.
stop_pidfile() {
	local f=$1 grace=$2 pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	rm -f "$f"
	[ -n "$pid" ] && alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < grace * 10; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	echo "ganesha.sh: pid $pid ignored SIGTERM for ${grace}s, killing" >&2
	kill -KILL "$pid" 2>/dev/null
	return 0
}

cmd_stop() {
	stop_pidfile "$WORK/ganesha.pid" "$STOP_WAIT"
	stop_pidfile "$WORK/statd.pid" 5
	stop_pidfile "$WORK/rpcbind.pid" 5
	if ip netns list 2>/dev/null | grep -qw "^$NS"; then
		# Anything still in the namespace was started by us (start, exec).
		for pid in $(ip netns pids "$NS" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$NS" 2>/dev/null || true
	fi
	return 0
}

# Run a command in the namespace *and* in the mount namespace of our rpcbind
# (its private /run), so ganesha.nfsd registers with our rpcbind and statd.
nsrun() {
	local pid
	pid=$(cat "$WORK/rpcbind.pid" 2>/dev/null) && alive "$pid" ||
		die "rpcbind is not running (ganesha.sh start first)"
	nsenter -t "$pid" -m -n -- "$@"
}

# Start ganesha.nfsd in the running namespace; wait until it answers.  The
# configuration is written again (same exports), so GANESHA_GRACE may differ
# from the first start: a restart can enter grace after a graceless start.
start_nfsd() {
	local -a dirs=()
	local try
	mapfile -t dirs <"$WORK/exports" || return 1
	write_conf "${dirs[@]}"
	# A server killed a moment ago may still hold its ports (its last
	# threads exiting): ganesha.nfsd then exits at once; try again.
	for try in 1 2 3 4 5; do
		start_nfsd_once && return 0
		[ -f "$WORK/ganesha.pid" ] && alive "$(cat "$WORK/ganesha.pid")" && return 1
		echo "ganesha.sh: ganesha.nfsd exited at start (try $try), retrying" >&2
		sleep 0.2
	done
	return 1
}

start_nfsd_once() {
	nsrun /bin/sh -c '
		W=$1
		ganesha.nfsd -F -L "$W/ganesha.log" -f "$W/ganesha.conf" \
			-p "$W/ganesha.nfsd.pid" >>"$W/ganesha.out" 2>&1 </dev/null &
		echo $! >"$W/ganesha.pid"
	' sh "$WORK" || return 1
	wait_prog 100005 3 && wait_prog 100003 3 || return 1
	if [ "$NLM" = 1 ]; then wait_prog 100021 4 || return 1; fi
	return 0
}

cmd_kill() {
	local pid
	pid=$(cat "$WORK/ganesha.pid" 2>/dev/null) || die "ganesha.nfsd is not running"
	kill -KILL "$pid" 2>/dev/null
	rm -f "$WORK/ganesha.pid"
	# Dead once gone, or a zombie (init reaps it when it likes) whose other
	# threads have all exited too: only then are its sockets closed (with
	# thousands of threads that takes a while after the leader is a zombie).
	local i
	for ((i = 0; i < 3000; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = Z ] &&
			[ "$(ls "/proc/$pid/task" 2>/dev/null | wc -l)" -le 1 ] && break
		sleep 0.01
	done
	# The clients statd was told to monitor are the ones to notify after
	# the "reboot".  Saved now: a starting ganesha may SM_UNMON_ALL.
	rm -rf "$WORK/notify"
	mkdir -p "$WORK/notify/sm" "$WORK/notify/sm.bak"
	cp -a "$WORK/statd/sm/." "$WORK/notify/sm/" 2>/dev/null
	[ -f "$WORK/statd/state" ] && cp -a "$WORK/statd/state" "$WORK/notify/state"
	return 0
}

cmd_notify() {
	local addr=${1:-127.0.0.1}
	# sm-notify sends, as mon_name, the *canonical name* of -v ADDR, which
	# it gets from a reverse lookup that must succeed.  The clients know the
	# server by ADDR, so give sm-notify (only: its own mount namespace) a
	# hosts file where ADDR's name is ADDR.  -f: even if the directory says
	# it was done; -d: foreground, log to stderr.
	{ echo "$addr $addr"; grep -v "^$addr[[:space:]]" /etc/hosts; } >"$WORK/notify-hosts"
	nsrun unshare -m /bin/sh -c '
		mount --bind "$1/notify-hosts" /etc/hosts || exit 1
		exec sm-notify -f -d -v "$2" -P "$1/notify"
	' sh "$WORK" "$addr" >>"$WORK/sm-notify.log" 2>&1
}

cmd_start() {
	local d
	local -a dirs=()

	command -v ganesha.nfsd >/dev/null || die "ganesha.nfsd not installed (apt-get install nfs-ganesha nfs-ganesha-vfs)"
	[ -e "$PLUGINS/libfsalvfs.so" ] || die "FSAL VFS missing (apt-get install nfs-ganesha-vfs)"
	command -v rpcbind >/dev/null || die "rpcbind not installed"
	command -v nfs-ls >/dev/null || die "nfs-ls not installed (apt-get install libnfs-utils)"
	command -v nsenter >/dev/null || die "nsenter not installed (util-linux)"
	if [ "$NLM" = 1 ]; then
		command -v rpc.statd >/dev/null || die "rpc.statd not installed (apt-get install nfs-common)"
	fi

	cmd_stop # a previous run may have died without cleaning up
	[ $# -gt 0 ] || set -- "$WORK/export"
	for d in "$@"; do
		mkdir -p "$d" || die "cannot create $d"
		dirs+=("$(cd "$d" && pwd -P)")
	done
	mkdir -p "$WORK/recovery" || die "cannot create $WORK"
	rm -rf "$WORK/statd" "$WORK/notify" "$WORK/recovery/"*
	mkdir -p "$WORK/statd/sm" "$WORK/statd/sm.bak" || die "cannot create $WORK/statd"
	printf '%s\n' "${dirs[@]}" >"$WORK/exports"
	: >"$WORK/ganesha.log"
	: >"$WORK/ganesha.out"

	ip netns add "$NS" || die "ip netns add $NS failed"
	nsx ip link set lo up || { cmd_stop; die "cannot bring up lo in $NS"; }

	# One shell inside the namespace mounts the private /run, starts rpcbind,
	# waits for its socket, then starts rpc.statd (NLM only).  Both are
	# backgrounded with their output in files, so the shell can exit and
	# leave them running; ganesha.nfsd joins them through nsenter.
	nsx /bin/sh -c '
		set -e
		W=$1 NLM=$2 SP=$3
		mount -t tmpfs -o mode=0755 sgnfs-bench-run /run
		mkdir -p /run/rpcbind /run/ganesha
		chown _rpc /run/rpcbind 2>/dev/null || true
		rpcbind -f -w >"$W/rpcbind.log" 2>&1 </dev/null &
		echo $! >"$W/rpcbind.pid"
		i=0
		while [ ! -S /run/rpcbind.sock ] && [ $i -lt 100 ]; do
			sleep 0.1; i=$((i + 1))
		done
		[ -S /run/rpcbind.sock ] || { echo "rpcbind did not start" >&2; exit 1; }
		if [ "$NLM" = 1 ]; then
			rpc.statd -F -d -L -p "$SP" -o $((SP + 1)) -P "$W/statd" \
				>"$W/statd.log" 2>&1 </dev/null &
			echo $! >"$W/statd.pid"
		fi
	' sh "$WORK" "$NLM" "$STATD_PORT" || { cmd_stop; die "could not start rpcbind in $NS"; }
	if [ "$NLM" = 1 ]; then
		wait_prog 100024 1 || { cat "$WORK/statd.log" >&2; cmd_stop; die "rpc.statd did not come up"; }
	fi
	start_nfsd || { cmd_stop; die "ganesha did not come up"; }

	# Registered is not serving: prove it with a real MOUNT + READDIRPLUS.
	for d in "${dirs[@]}"; do
		if ! timeout 10 ip netns exec "$NS" nfs-ls "nfs://127.0.0.1$d" >"$WORK/nfs-ls.out" 2>&1; then
			cat "$WORK/nfs-ls.out" >&2
			cmd_stop
			die "nfs-ls nfs://127.0.0.1$d failed"
		fi
	done
	echo "ganesha: serving ${dirs[*]} in netns $NS at 127.0.0.1 (pid $(cat "$WORK/ganesha.pid"); NLM=$NLM grace=${GRACE:-none})"
}

case "${1:-}" in
start)      shift; cmd_start "$@" ;;
stop)       cmd_stop ;;
exec)       shift; [ $# -gt 0 ] || die "exec needs a command"; nsx "$@" ;;
status)     nsx rpcinfo -p 127.0.0.1 ;;
kill)       cmd_kill ;;
start-nfsd) start_nfsd || die "ganesha.nfsd did not come back" ;;
notify)     shift; cmd_notify "$@" ;;
nfsd-pid)   cat "$WORK/ganesha.pid" ;;
*)          echo "usage: $0 start [DIR...] | stop | exec CMD... | status | kill | start-nfsd | notify [ADDR] | nfsd-pid" >&2
            exit 64 ;;
esac
