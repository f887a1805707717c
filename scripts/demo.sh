#!/bin/sh
# Start a working sgnfs cluster on this machine and show it doing its job.
#
#   ./scripts/demo.sh         install, build, start 3 nodes / 4 groups, demo
#   ./scripts/demo.sh stop    stop the demo cluster
#
# Nodes run on loopback; each group's VIP is a 127.x address (Linux routes
# all of 127.0.0.0/8 to lo); shared storage is directories under $DEMO.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=${SGNFS_DEMO_DIR:-/var/tmp/sgnfs-demo}
CONF=$DEMO/cluster.ini

stop_cluster() {
	for pidf in "$DEMO"/run/*.pid; do
		[ -e "$pidf" ] || continue
		kill "$(cat "$pidf")" 2>/dev/null || true
	done
	sleep 0.5
}

if [ "${1:-}" = stop ]; then
	stop_cluster
	echo "demo cluster stopped"
	exit 0
fi

./scripts/deps.sh
if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null
fi
ninja -C build >/dev/null
SGNFSD=$ROOT/build/src/daemon/sgnfsd

stop_cluster
rm -rf "$DEMO/storage" "$DEMO/run" "$DEMO/log"  # a fresh demo every time
mkdir -p "$DEMO/run" "$DEMO/log"
for g in sg1 sg2 sg3 sg4; do
	mkdir -p "$DEMO/storage/$g/data"
done
mkdir -p "$DEMO/storage/sg1/scratch"

# The key every node signs and checks file handles with (docs/security.md).
[ -f "$DEMO/handle.key" ] || build/src/ctl/sgnfsctl keygen "$DEMO/handle.key" >/dev/null

cat > "$CONF" <<INI
; sgnfs demo cluster: 3 nodes, 4 service groups, storage as directories
[cluster]
name = demo
run_dir = $DEMO/run
handle_key = $DEMO/handle.key

[node a]
[node b]
[node c]

[group sg1]
vip = 127.0.10.1
nodes = a b c
grace = 15

[group sg2]
vip = 127.0.20.1
nodes = b c a
grace = 15

[group sg3]
vip = 127.0.30.1
nodes = c a b
grace = 15

[group sg4]
vip = 127.0.40.1
nodes = b a c
grace = 15

[export $DEMO/storage/sg1/data]
group = sg1
fsid = 101
clients = 127.0.0.0/8
squash = none

[export $DEMO/storage/sg1/scratch]
group = sg1
fsid = 102
access = ro
clients = 127.0.0.0/8

[export $DEMO/storage/sg2/data]
group = sg2
fsid = 201
clients = 127.0.0.0/8
squash = none

[export $DEMO/storage/sg3/data]
group = sg3
fsid = 301
clients = 127.0.0.0/8
squash = none

[export $DEMO/storage/sg4/data]
group = sg4
fsid = 401
clients = 127.0.0.0/8
squash = none
INI

echo "== checking the configuration"
"$SGNFSD" -t -c "$CONF"

echo "== initialising each group's storage (no node serves a group without it)"
for g in sg1 sg2 sg3 sg4; do
	build/src/ctl/sgnfsctl -c "$CONF" init "$g"
done

echo "== starting nodes a, b, c (logs in $DEMO/log)"
for n in a b c; do
	setsid "$SGNFSD" -c "$CONF" -n "$n" -f >"$DEMO/log/$n.log" 2>&1 < /dev/null &
done
for vip in 127.0.10.1 127.0.20.1 127.0.30.1 127.0.40.1; do
	i=0
	until nfs-ls "nfs://$vip$DEMO/storage/" >/dev/null 2>&1 || [ $i -ge 50 ]; do
		i=$((i + 1)); sleep 0.1
	done
done
sleep 0.5
build/src/ctl/sgnfsctl -c "$CONF" status

echo "== file service on every group"
head -c 4M /dev/urandom > "$DEMO/payload"
for g in 1 2 3 4; do
	vip=127.0.${g}0.1
	url="nfs://$vip$DEMO/storage/sg$g/data"
	nfs-cp "$DEMO/payload" "$url/payload.bin"
	rm -f "$DEMO/payload.back"
	nfs-cp "$url/payload.bin" "$DEMO/payload.back"
	if cmp -s "$DEMO/payload" "$DEMO/payload.back"; then
		echo "sg$g via $vip: wrote and read back 4 MiB, identical"
	else
		echo "sg$g via $vip: MISMATCH" && exit 1
	fi
	nfs-ls "$url/"
done
echo "== a read-only export refuses writes"
if nfs-cp "$DEMO/payload" "nfs://127.0.10.1$DEMO/storage/sg1/scratch/x" 2>/dev/null; then
	echo "read-only export accepted a write!" && exit 1
fi
echo "sg1 scratch (access = ro): write refused"
echo "== a group's files are not served on another group's VIP"
if nfs-ls "nfs://127.0.20.1$DEMO/storage/sg1/data/" >/dev/null 2>&1; then
	echo "sg1 export visible via sg2's VIP!" && exit 1
fi
echo "sg1's export via sg2's VIP: refused"
echo
echo "== failover: clients hold locks in every group; the owner of sg1 is killed"
python3 scripts/demo_failover.py "$ROOT/build" "$CONF" "$DEMO"
echo
build/src/ctl/sgnfsctl -c "$CONF" status
echo
echo "The cluster keeps running.  Config: $CONF  Logs: $DEMO/log"
echo "Stop it with: ./scripts/demo.sh stop"
