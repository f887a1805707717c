#!/bin/sh
# build-guest.sh OUTDIR - build the test guest: a Debian kernel (vmlinuz) and
# a RAM root (initrd, an uncompressed cpio) made with mmdebstrap from the
# machine's own apt sources.  Non-interactive; needs root (mmdebstrap's root
# mode, chroot).  vm_util.py calls it once per recipe and caches OUTDIR
# (keyed by a hash of this file and guest/init).
#
# The root holds only what the kernel-client tests use: nfs-common
# (mount.nfs, rpc.statd, sm-notify), rpcbind, netbase (/etc/services: rpcbind
# and libtirpc resolve "sunrpc" by name), python3-minimal (the agent
# and the lock helper run from a read-only 9p share, so changing them needs
# no rebuild), iproute2, kmod and the few kernel modules the guest loads
# (virtio, 9p, NFSv3 + lockd); docs, locales, firmware and every other
# module are left out, so a guest boots in 1 GiB of RAM.
set -eu
out=${1:?usage: build-guest.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
suite=${SGNFS_VM_SUITE:-bookworm}
# modprobe names; their dependencies come along.
MODS="virtio_pci virtio_net virtio_console virtio_rng 9pnet_virtio 9p nfsv3"
PKGS="linux-image-amd64,nfs-common,rpcbind,netbase,kmod,iproute2,procps,mount,psmisc,python3-minimal"

tmp=$(mktemp -d /var/tmp/sgnfs-vm-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
root=$tmp/root

# The machine's apt sources (mmdebstrap reads them when given no mirror);
# no recommends, no docs, no locales.
mmdebstrap --variant=minbase --include="$PKGS" \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-exclude=/usr/lib/firmware/*' \
	"$suite" "$root"

kver=$(ls "$root/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -n1)
[ -n "$kver" ] || { echo "build-guest: no kernel in the root" >&2; exit 1; }
mkdir -p "$out.tmp"
cp "$root/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
echo "$kver" >"$out.tmp/kernel-version"

# Keep only the modules MODS need.
keep=$(chroot "$root" /usr/sbin/modprobe -S "$kver" --show-depends -a $MODS |
	sed -n 's/^insmod \([^ ]*\).*/\1/p' | sort -u)
mdir=$root/lib/modules/$kver
mkdir "$tmp/mods"
for m in $keep; do
	mkdir -p "$tmp/mods$(dirname "$m")"
	cp "$root$m" "$tmp/mods$m"
done
rm -rf "$mdir/kernel"
cp -a "$tmp/mods/lib/modules/$kver/kernel" "$mdir/" 2>/dev/null ||
	cp -a "$tmp/mods/usr/lib/modules/$kver/kernel" "$mdir/"
chroot "$root" /usr/sbin/depmod "$kver"

rm -rf "$root/boot" "$root/var/cache/apt" "$root/var/lib/apt/lists" \
	"$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale" \
	"$root/usr/lib/firmware"
install -m 0755 "$here/guest/init" "$root/init"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package} ${Version}\n' \
	>"$out.tmp/packages"
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$out.tmp/initrd"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "build-guest: kernel $kver, initrd $(du -m "$out/initrd" | cut -f1) MiB in $out"
