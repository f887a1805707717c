#!/bin/sh
# Install the Debian 12 packages sgnfs needs to build, test and demo.
# Idempotent: does nothing when everything is already installed.
set -eu
PKGS="build-essential meson ninja-build pkg-config libuv1-dev libtirpc-dev
rpcsvc-proto libinih-dev libcmocka-dev libnfs-dev libnfs-utils tshark
nfs-common rpcbind iproute2 python3 procps psmisc
libjson-c-dev nettle-dev libsystemd-dev libmicrohttpd-dev"
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
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# nfs-common/rpcbind may start a system rpcbind that holds port 111 on
# every address; sgnfs answers PORTMAP itself on each VIP.
if pidof rpcbind >/dev/null 2>&1; then
	echo "deps: stopping the system rpcbind (sgnfs answers PORTMAP on its VIPs)"
	pkill -x rpcbind || true
fi
exit 0
