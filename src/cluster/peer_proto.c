/*
 * peer_proto.c - the MACs of the peer status protocol and the asking side
 * (blocking sockets with a timeout per step; sgnfsctl).  Protocol in
 * peer.h.
 */
#include "cluster/peer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "saddr.h"

static const char peer_req_label[] = "sgnfs peer status request 1";
static const char peer_reply_label[] = "sgnfs peer status reply 1";

void peer_req_mac(const uint8_t key[HK_KEY_SIZE], const uint8_t *challenge,
		  const uint8_t *nonce, const uint8_t *name, uint8_t mac[PEER_MAC_LEN])
{
	struct hmac_sha256_ctx c;

	hmac_sha256_set_key(&c, HK_KEY_SIZE, key);
	/* The label with its NUL: no prefix of one label is another. */
	hmac_sha256_update(&c, sizeof(peer_req_label), (const uint8_t *)peer_req_label);
	hmac_sha256_update(&c, PEER_NONCE_LEN, challenge);
	hmac_sha256_update(&c, PEER_NONCE_LEN, nonce);
	hmac_sha256_update(&c, PEER_NAME_LEN, name);
	hmac_sha256_digest(&c, PEER_MAC_LEN, mac);
	explicit_bzero(&c, sizeof(c));
}

void peer_reply_mac(const uint8_t key[HK_KEY_SIZE], const uint8_t *challenge,
		    const uint8_t *nonce, const char *json, uint32_t len,
		    uint8_t mac[PEER_MAC_LEN])
{
	struct hmac_sha256_ctx c;
	uint8_t be[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			  (uint8_t)len };

	hmac_sha256_set_key(&c, HK_KEY_SIZE, key);
	hmac_sha256_update(&c, sizeof(peer_reply_label), (const uint8_t *)peer_reply_label);
	hmac_sha256_update(&c, PEER_NONCE_LEN, challenge);
	hmac_sha256_update(&c, PEER_NONCE_LEN, nonce);
	hmac_sha256_update(&c, sizeof(be), be);
	hmac_sha256_update(&c, len, (const uint8_t *)json);
	hmac_sha256_digest(&c, PEER_MAC_LEN, mac);
	explicit_bzero(&c, sizeof(c));
}

const uint8_t *peer_req_check(const struct hk_set *ks, const uint8_t *challenge,
			      const uint8_t *req, const char **why)
{
	const uint8_t *nonce = req + PEER_MAGIC_LEN;
	const uint8_t *name = nonce + PEER_NONCE_LEN;
	const uint8_t *mac = name + PEER_NAME_LEN;
	uint8_t want[PEER_MAC_LEN];

	if (memcmp(req, PEER_MAGIC, PEER_MAGIC_LEN) != 0) {
		*why = "not an sgnfs peer request";
		return NULL;
	}
	peer_req_mac(ks->cur, challenge, nonce, name, want);
	if (memeql_sec(want, mac, PEER_MAC_LEN))
		return ks->cur;
	if (ks->has_prev) {
		peer_req_mac(ks->prev, challenge, nonce, name, want);
		if (memeql_sec(want, mac, PEER_MAC_LEN))
			return ks->prev;
	}
	*why = "bad MAC (not signed with this cluster's peer key: another cluster, a "
	       "key not copied to every node, or forged)";
	return NULL;
}

/* ---- asking -------------------------------------------------------------- */

/* Wait for @events on @fd for at most @ms; 0, -ETIMEDOUT or -errno. */
static int peer_wait(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Read exactly @len bytes; 0, -ECONNRESET at a close before them, -errno. */
static int peer_read_full(int fd, void *buf, size_t len, int ms)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;
		int rc = peer_wait(fd, POLLIN, ms);

		if (rc < 0)
			return rc;
		n = read(fd, (uint8_t *)buf + got, len - got);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

static int peer_write_full(int fd, const void *buf, size_t len, int ms)
{
	size_t put = 0;

	while (put < len) {
		ssize_t n;
		int rc = peer_wait(fd, POLLOUT, ms);

		if (rc < 0)
			return rc;
		n = write(fd, (const uint8_t *)buf + put, len - put);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		put += (size_t)n;
	}
	return 0;
}

int peer_ask(const struct sockaddr_storage *addr, const struct hk_set *ks, const char *me,
	     int timeout_ms, char **json, char *why, size_t whylen)
{
	uint8_t hello[PEER_HELLO_LEN], req[PEER_REQ_LEN], lenb[4], mac[PEER_MAC_LEN];
	uint8_t want[PEER_MAC_LEN];
	uint8_t *nonce = req + PEER_MAGIC_LEN, *name = nonce + PEER_NONCE_LEN;
	char *body = NULL;
	uint32_t len;
	int fd, rc, err;
	socklen_t elen = sizeof(err);

	*json = NULL;
	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(why, whylen, "%s", strerror(-rc));
		return rc;
	}
	if (connect(fd, (const struct sockaddr *)addr, sa_len(addr)) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto fail;
		}
		rc = peer_wait(fd, POLLOUT, timeout_ms);
		if (rc < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
			rc = -errno;
			goto fail;
		}
		if (err) {
			rc = -err;
			goto fail;
		}
	}
	rc = peer_read_full(fd, hello, sizeof(hello), timeout_ms);
	if (rc == -ECONNRESET) {
		/* Closed before the hello: its per-source limit, or its
		 * connection limit (the node logs it). */
		snprintf(why, whylen, "the node closed the connection before its hello "
			 "(busy, or over its per-source limit)");
		rc = -ECONNABORTED;
		goto out;
	}
	if (rc < 0)
		goto fail;
	if (memcmp(hello, PEER_MAGIC, PEER_MAGIC_LEN) != 0) {
		snprintf(why, whylen, "not an sgnfs peer port (unexpected hello)");
		rc = -EPROTO;
		goto out;
	}
	memcpy(req, PEER_MAGIC, PEER_MAGIC_LEN);
	if (getrandom(nonce, PEER_NONCE_LEN, 0) != PEER_NONCE_LEN) {
		rc = -errno;
		goto fail;
	}
	memset(name, 0, PEER_NAME_LEN);
	memcpy(name, me, strnlen(me, PEER_NAME_LEN - 1));
	peer_req_mac(ks->cur, hello + PEER_MAGIC_LEN, nonce, name, req + PEER_REQ_LEN - PEER_MAC_LEN);
	rc = peer_write_full(fd, req, sizeof(req), timeout_ms);
	if (rc < 0)
		goto fail;
	rc = peer_read_full(fd, lenb, sizeof(lenb), timeout_ms);
	if (rc == -ECONNRESET) {
		snprintf(why, whylen, "the node refused the request (signed with another key? "
			 "its log says why)");
		rc = -EACCES;
		goto out;
	}
	if (rc < 0)
		goto fail;
	len = (uint32_t)lenb[0] << 24 | (uint32_t)lenb[1] << 16 | (uint32_t)lenb[2] << 8 | lenb[3];
	if (len > PEER_REPLY_MAX) {
		snprintf(why, whylen, "reply of %u bytes, over the limit of %u", len, PEER_REPLY_MAX);
		rc = -EMSGSIZE;
		goto out;
	}
	body = malloc((size_t)len + 1);
	if (!body) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = peer_read_full(fd, body, len, timeout_ms);
	if (rc == 0)
		rc = peer_read_full(fd, mac, sizeof(mac), timeout_ms);
	if (rc < 0)
		goto fail;
	body[len] = '\0';
	peer_reply_mac(ks->cur, hello + PEER_MAGIC_LEN, nonce, body, len, want);
	if (!memeql_sec(want, mac, PEER_MAC_LEN)) {
		snprintf(why, whylen, "the reply's MAC is wrong (not signed with our key)");
		rc = -EBADMSG;
		goto out;
	}
	if (strlen(body) != len) {
		snprintf(why, whylen, "the reply holds a NUL byte");
		rc = -EBADMSG;
		goto out;
	}
	*json = body;
	body = NULL;
	rc = 0;
	goto out;
fail:
	snprintf(why, whylen, "%s", strerror(-rc));
out:
	free(body);
	close(fd);
	return rc;
}
