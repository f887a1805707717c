/*
 * vip.h - a VIP on a network interface: add it, announce it, remove it
 * (docs/deployment.md "VIPs").
 *
 * In the embedded (lease) mode, a VIP written `ADDR/PREFIX@IFACE` is
 * sgnfsd's to place: the new owner adds it to IFACE (rtnetlink through
 * libmnl) before it binds, announces it so that every host and switch on
 * the segment moves its ARP/neighbour entry to this machine's MAC
 * (gratuitous ARP for IPv4, an unsolicited neighbour advertisement with
 * the override flag for IPv6), and removes it at release.  IPv6 addresses
 * are added with IFA_F_NODAD: the lease already guarantees a single owner,
 * and duplicate address detection would keep the address "tentative" (not
 * bindable) for a second or more at every takeover.
 *
 * Needs CAP_NET_ADMIN (addresses) and CAP_NET_RAW (announcements); priv.c
 * keeps them only when cfg_manages_vips().  Every call is one short
 * syscall exchange with the kernel (no waiting on the network), safe on
 * any thread.
 */
#ifndef SGNFS_VIP_H
#define SGNFS_VIP_H

#include <stdbool.h>
#include <sys/socket.h>

/*
 * Add @addr/@prefix to interface @ifname.  0 with *@added true when this
 * call added it, 0 with *@added false when it was there already (then it
 * is not ours to remove), or -errno (-ENODEV: no such interface).
 */
int vip_add(const char *ifname, const struct sockaddr_storage *addr, unsigned prefix,
	    bool *added);

/* Remove @addr/@prefix from @ifname.  0, or -errno (-EADDRNOTAVAIL: it was
 * not there). */
int vip_del(const char *ifname, const struct sockaddr_storage *addr, unsigned prefix);

/*
 * Tell the segment behind @ifname that @addr is here now: one gratuitous
 * ARP request (IPv4: sender and target IP @addr, sender MAC the
 * interface's, to the broadcast address) or one unsolicited neighbour
 * advertisement (IPv6: override flag, target @addr, our MAC as target
 * link-layer address, to all nodes ff02::1, hop limit 255).  0, or -errno
 * (-EOPNOTSUPP: the interface has no Ethernet address, e.g. lo).
 */
int vip_announce(const char *ifname, const struct sockaddr_storage *addr);

/*
 * The record of the VIPs this node added and has not removed: a directory
 * (@dir, node-local: <run_dir>/<node>.vips) with one empty file per
 * address, named "IFACE ADDR PREFIX".  Written before the address is
 * added and removed after it is gone, so a node killed in between finds
 * at its next start (vip_rec_sweep) what it left on its interfaces, and
 * removes exactly that: never an address someone else added.  One file per
 * address, so groups adding on different pool threads never share one.
 * Not fsync'd: the addresses themselves do not survive a reboot either.
 * Each returns 0 or -errno.
 */
int vip_rec_note(const char *dir, const char *ifname, const struct sockaddr_storage *addr,
		 unsigned prefix);
int vip_rec_forget(const char *dir, const char *ifname, const struct sockaddr_storage *addr,
		   unsigned prefix);
/* Remove every address recorded in @dir from its interface and forget it;
 * @report (may be NULL) hears of each, with vip_del's result. */
int vip_rec_sweep(const char *dir,
		  void (*report)(void *arg, const char *ifname, const char *addr, unsigned prefix,
				 int rc),
		  void *arg);

#endif
