/*
 * saddr.c - see saddr.h.
 */
#include "saddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "shash.h"

void sa_norm(const struct sockaddr_storage *a, struct sockaddr_storage *out)
{
	sa_family_t fam = a->ss_family;

	/* @a and @out may be the same object: read before clearing. */
	if (fam == AF_INET) {
		struct in_addr ia = ((const struct sockaddr_in *)a)->sin_addr;
		memset(out, 0, sizeof(*out));
		((struct sockaddr_in *)out)->sin_addr = ia;
	} else if (fam == AF_INET6) {
		struct in6_addr ia = ((const struct sockaddr_in6 *)a)->sin6_addr;
		memset(out, 0, sizeof(*out));
		((struct sockaddr_in6 *)out)->sin6_addr = ia;
	} else {
		memset(out, 0, sizeof(*out));
	}
	out->ss_family = fam;
}

bool sa_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return true;
}

uint64_t sa_hash(const struct sockaddr_storage *a)
{
	uint8_t buf[1 + sizeof(struct in6_addr)];
	size_t len = 1;

	buf[0] = (uint8_t)a->ss_family;
	if (a->ss_family == AF_INET) {
		memcpy(buf + 1, &((const struct sockaddr_in *)a)->sin_addr, sizeof(struct in_addr));
		len += sizeof(struct in_addr);
	} else if (a->ss_family == AF_INET6) {
		memcpy(buf + 1, &((const struct sockaddr_in6 *)a)->sin6_addr,
		       sizeof(struct in6_addr));
		len += sizeof(struct in6_addr);
	}
	return sh_hash(sh_process_key(), buf, len);
}

void sa_set_port(struct sockaddr_storage *a, uint16_t port)
{
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = htons(port);
	else if (a->ss_family == AF_INET6)
		((struct sockaddr_in6 *)a)->sin6_port = htons(port);
}

uint16_t sa_port(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return 0;
}

socklen_t sa_len(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	     : a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(*a);
}

const char *sa_str(const struct sockaddr_storage *a, bool with_port, char *buf, size_t len)
{
	char h[INET6_ADDRSTRLEN] = "?";

	if (a->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, h, sizeof(h));
	else if (a->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, h, sizeof(h));
	if (with_port)
		snprintf(buf, len, a->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", h, sa_port(a));
	else
		snprintf(buf, len, "%s", h);
	return buf;
}
