/*
 * saddr.h - socket address helpers every module shares: compare, hash,
 * set the port, print.  AF_INET and AF_INET6 only; any other family
 * compares equal only to itself and prints as "?".
 *
 * "Normalised" means: the family and the address kept, everything else
 * (port, flow info, scope, padding) zero, so two normalised addresses of
 * one host compare equal with sa_same() and hash alike with sa_hash().
 */
#ifndef SGNFS_SADDR_H
#define SGNFS_SADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* @a with the port cleared and nothing but the address kept, into @out. */
void sa_norm(const struct sockaddr_storage *a, struct sockaddr_storage *out);
/* True if @a and @b are the same host (the ports are not compared). */
bool sa_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* The host part of @a (not the port) hashed under the process key
 * (shash.h): a client cannot pick addresses that share a chain. */
uint64_t sa_hash(const struct sockaddr_storage *a);
/* Set the port of @a (AF_INET or AF_INET6; others unchanged). */
void sa_set_port(struct sockaddr_storage *a, uint16_t port);
/* The port of @a, host order; 0 for other families. */
uint16_t sa_port(const struct sockaddr_storage *a);
/* Length of the sockaddr of @a's family, for bind/connect. */
socklen_t sa_len(const struct sockaddr_storage *a);
/*
 * "1.2.3.4", "1.2.3.4:5", "::1", "[::1]:5" into @buf (@len bytes, 64 is
 * always enough); returns @buf.
 */
const char *sa_str(const struct sockaddr_storage *a, bool with_port, char *buf, size_t len);

#endif
