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

#endif
