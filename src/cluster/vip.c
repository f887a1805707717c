/*
 * vip.c - add, announce and remove a VIP (what and why in vip.h).
 *
 * Addresses go through rtnetlink with libmnl (Debian's libmnl0): it builds
 * and parses the netlink headers and attributes and matches the kernel's
 * acknowledgement to our request (sequence number, port id); we only fill
 * the RTM_NEWADDR/RTM_DELADDR request.  One socket per call: calls are
 * rare (a takeover, a release) and a socket kept open would have to be
 * shared between the thread pool and the loop.
 *
 * The announcements are built here: an ARP packet is 28 bytes whose
 * layout is fixed by RFC 826, and a neighbour advertisement is an ICMPv6
 * message the kernel checksums for us (RFC 4861 section 4.4 and 7.2.6).
 */
#include "cluster/vip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

/* One RTM_NEWADDR (@add) or RTM_DELADDR request, acknowledged.  0 or -errno. */
static int vip_rtnl(bool add, const char *ifname, const struct sockaddr_storage *addr,
		    unsigned prefix)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	unsigned idx = if_nametoindex(ifname);
	bool v4 = addr->ss_family == AF_INET;
	const void *a = v4 ? (const void *)&((const struct sockaddr_in *)addr)->sin_addr
			   : (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
	size_t alen = v4 ? 4 : 16;
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	unsigned seq, portid;
	ssize_t n;
	int rc = 0;

	if (idx == 0)
		return -ENODEV;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	/* EXCL: an address already there is reported (EEXIST), so the caller
	 * knows it is not its own to remove later. */
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	nlh->nlmsg_seq = seq = (unsigned)time(NULL);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (unsigned char)addr->ss_family;
	ifa->ifa_prefixlen = (unsigned char)prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = idx;
	ifa->ifa_flags = v4 ? 0 : IFA_F_NODAD;
	mnl_attr_put(nlh, IFA_LOCAL, alen, a);
	mnl_attr_put(nlh, IFA_ADDRESS, alen, a);

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	/* The kernel's ack: an error message with error 0, or the errno. */
	if (mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) < 0)
		rc = -errno;
out:
	mnl_socket_close(nl);
	return rc;
}

int vip_add(const char *ifname, const struct sockaddr_storage *addr, unsigned prefix,
	    bool *added)
{
	int rc = vip_rtnl(true, ifname, addr, prefix);

	*added = rc == 0;
	return rc == -EEXIST ? 0 : rc;
}

int vip_del(const char *ifname, const struct sockaddr_storage *addr, unsigned prefix)
{
	return vip_rtnl(false, ifname, addr, prefix);
}

/* The Ethernet address of @ifname, through socket @fd.  0 or -errno. */
static int vip_mac(int fd, const char *ifname, unsigned char mac[ETH_ALEN])
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return -errno;
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		return -EOPNOTSUPP;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	return 0;
}

/* RFC 826 over Ethernet: the 28 bytes after the Ethernet header. */
struct vip_arp {
	uint16_t htype, ptype;
	uint8_t hlen, plen;
	uint16_t op;
	uint8_t sha[ETH_ALEN], spa[4], tha[ETH_ALEN], tpa[4];
} __attribute__((packed));

static int vip_garp(const char *ifname, unsigned idx, const struct in_addr *ip)
{
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = (int)idx, .sll_halen = ETH_ALEN };
	struct vip_arp pkt = { .htype = htons(ARPHRD_ETHER), .ptype = htons(ETH_P_IP),
			       .hlen = ETH_ALEN, .plen = 4, .op = htons(ARPOP_REQUEST) };
	int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP));
	int rc;

	if (fd < 0)
		return -errno;
	rc = vip_mac(fd, ifname, pkt.sha);
	if (rc < 0)
		goto out;
	/* A gratuitous ARP request: sender and target IP are both the VIP,
	 * target MAC unknown (zero); every host that has the VIP in its
	 * cache updates it to our MAC (RFC 5227 section 3, "ARP
	 * Announcement"). */
	memcpy(pkt.spa, ip, 4);
	memcpy(pkt.tpa, ip, 4);
	memset(to.sll_addr, 0xff, ETH_ALEN);
	if (sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}

static int vip_unsolicited_na(const char *ifname, unsigned idx, const struct in6_addr *ip)
{
	struct {
		struct nd_neighbor_advert na;
		struct nd_opt_hdr opt;
		unsigned char mac[ETH_ALEN];
	} __attribute__((packed)) pkt;
	struct sockaddr_in6 src = { .sin6_family = AF_INET6, .sin6_addr = *ip };
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_scope_id = idx };
	int hops = 255, ifi = (int)idx;
	int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMPV6);
	int rc;

	if (fd < 0)
		return -errno;
	memset(&pkt, 0, sizeof(pkt));
	rc = vip_mac(fd, ifname, pkt.mac);
	if (rc < 0)
		goto out;
	if (IN6_IS_ADDR_LINKLOCAL(ip))
		src.sin6_scope_id = idx;
	/* RFC 4861 7.2.6: from the address itself, to all nodes, hop limit
	 * 255 (receivers drop anything else), Override set so caches that
	 * hold the old owner's MAC take ours; not Solicited. */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifi, sizeof(ifi)) < 0 ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		rc = -errno;
		goto out;
	}
	inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
	pkt.na.nd_na_type = ND_NEIGHBOR_ADVERT;
	pkt.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
	pkt.na.nd_na_target = *ip;
	pkt.opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
	pkt.opt.nd_opt_len = 1; /* in units of 8 bytes: type, length, 6-byte MAC */
	if (sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}

int vip_announce(const char *ifname, const struct sockaddr_storage *addr)
{
	unsigned idx = if_nametoindex(ifname);

	if (idx == 0)
		return -ENODEV;
	if (addr->ss_family == AF_INET)
		return vip_garp(ifname, idx, &((const struct sockaddr_in *)addr)->sin_addr);
	return vip_unsolicited_na(ifname, idx, &((const struct sockaddr_in6 *)addr)->sin6_addr);
}

/* "IFACE ADDR PREFIX" for the record file of one address. */
static int vip_rec_name(char *buf, size_t n, const char *ifname,
			const struct sockaddr_storage *addr, unsigned prefix)
{
	char a[INET6_ADDRSTRLEN];
	const void *ap = addr->ss_family == AF_INET
		? (const void *)&((const struct sockaddr_in *)addr)->sin_addr
		: (const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr;

	if (!inet_ntop(addr->ss_family, ap, a, sizeof(a)))
		return -EINVAL;
	if ((size_t)snprintf(buf, n, "%s %s %u", ifname, a, prefix) >= n)
		return -ENAMETOOLONG;
	return 0;
}

int vip_rec_note(const char *dir, const char *ifname, const struct sockaddr_storage *addr,
		 unsigned prefix)
{
	char name[128];
	int dfd, fd, rc = vip_rec_name(name, sizeof(name), ifname, addr, prefix);

	if (rc < 0)
		return rc;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return -errno;
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	rc = fd < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	close(dfd);
	return rc;
}

int vip_rec_forget(const char *dir, const char *ifname, const struct sockaddr_storage *addr,
		   unsigned prefix)
{
	char name[128], path[4400];
	int rc = vip_rec_name(name, sizeof(name), ifname, addr, prefix);

	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int vip_rec_sweep(const char *dir,
		  void (*report)(void *arg, const char *ifname, const char *addr, unsigned prefix,
				 int rc),
		  void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		char ifname[IF_NAMESIZE + 1], a[INET6_ADDRSTRLEN + 1], tail;
		struct sockaddr_storage ss;
		unsigned prefix;
		int rc;

		if (e->d_name[0] == '.')
			continue;
		/* Only names this file wrote: anything else is left alone. */
		memset(&ss, 0, sizeof(ss));
		if (sscanf(e->d_name, "%16s %46s %u%c", ifname, a, &prefix, &tail) != 3 ||
		    strlen(ifname) >= IF_NAMESIZE || prefix > 128)
			continue;
		if (inet_pton(AF_INET, a, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else
			continue;
		rc = vip_del(ifname, &ss, prefix);
		if (report)
			report(arg, ifname, a, prefix, rc);
		/* Gone, or its interface is: forget it.  Another failure
		 * (no permission) is tried again at the next start. */
		if (rc == 0 || rc == -EADDRNOTAVAIL || rc == -ENODEV)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
	return 0;
}
