#!/bin/sh
# Install the Debian 12 packages sgnfs needs to build, test and demo.
# Idempotent: does nothing when everything is already installed.
set -eu
PKGS="build-essential meson ninja-build pkg-config libuv1-dev libtirpc-dev
rpcsvc-proto libinih-dev libcmocka-dev libnfs-dev libnfs-utils tshark
nfs-common rpcbind iproute2 python3 procps psmisc
libjson-c-dev nettle-dev liburing-dev libsystemd-dev libmicrohttpd-dev libcap-ng-dev libseccomp-dev libmnl-dev e2fsprogs
debhelper dpkg-dev groff-base man-db
pacemaker pacemaker-cli-utils corosync pcs resource-agents fence-agents kmod
util-linux qemu-system-x86 mmdebstrap cpio"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# tshark asks whether non-root users may capture; answer no.
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
	# Packages such as rpcbind start their daemon when installed; the tests
	# answer PORTMAP on their own 127.x VIPs, which a wildcard rpcbind on
	# :111 would block.  So nothing is started during this install (the
	# Debian policy-rc.d mechanism; an existing policy is left alone), and
	# no daemon that already runs is touched: sgnfs shares a host with
	# rpcbind through use_rpcbind (docs/operations.md).
	policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\n# scripts/deps.sh: start nothing while it installs\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
	[ -z "$policy" ] || rm -f "$policy"
fi
if pidof rpcbind >/dev/null 2>&1; then
	echo "deps: note: rpcbind runs on this host; integration tests that answer PORTMAP on"
	echo "deps: their VIPs need 127.x:111 free (see docs/operations.md, Coexistence)"
fi
exit 0
