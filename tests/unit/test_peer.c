/*
 * test_peer.c - the pieces of peer status that need no sockets
 * (src/cluster/peer.h, src/common/tbucket.h, src/common/saddr.h):
 * a request verifies with the current or previous key and with nothing
 * else; every byte of it is covered by the MAC; the reply MAC binds the
 * challenge, the nonce and the text; token buckets give the burst, then
 * the rate, per source address, with no clock of their own; the address
 * helpers compare and hash hosts without their ports; the control request
 * table finds a request only with its number of words and builds lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "cluster/ctlsock.h"
#include "cluster/peer.h"
#include "saddr.h"
#include "tbucket.h"

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* A request signed with @key for @challenge. */
static void make_req(const uint8_t *key, const uint8_t *challenge, uint8_t *req)
{
	uint8_t *nonce = req + PEER_MAGIC_LEN, *name = nonce + PEER_NONCE_LEN;

	memcpy(req, PEER_MAGIC, PEER_MAGIC_LEN);
	fill(nonce, PEER_NONCE_LEN, 3);
	memset(name, 0, PEER_NAME_LEN);
	memcpy(name, "sgnfsctl@x", 10);
	peer_req_mac(key, challenge, nonce, name, req + PEER_REQ_LEN - PEER_MAC_LEN);
}

static void test_request_keys(void **st)
{
	struct hk_set ks = { 0 };
	uint8_t other[HK_KEY_SIZE], challenge[PEER_NONCE_LEN], req[PEER_REQ_LEN];
	const char *why = NULL;

	(void)st;
	fill(ks.cur, HK_KEY_SIZE, 1);
	fill(ks.prev, HK_KEY_SIZE, 2);
	fill(other, HK_KEY_SIZE, 9);
	fill(challenge, sizeof(challenge), 5);

	make_req(ks.cur, challenge, req);
	assert_ptr_equal(peer_req_check(&ks, challenge, req, &why), ks.cur);

	/* previous verifies only while the file has it */
	make_req(ks.prev, challenge, req);
	assert_null(peer_req_check(&ks, challenge, req, &why));
	ks.has_prev = true;
	assert_ptr_equal(peer_req_check(&ks, challenge, req, &why), ks.prev);

	make_req(other, challenge, req);
	why = NULL;
	assert_null(peer_req_check(&ks, challenge, req, &why));
	assert_non_null(strstr(why, "bad MAC"));

	/* another challenge: a recorded request is worth nothing */
	make_req(ks.cur, challenge, req);
	challenge[0] ^= 1;
	assert_null(peer_req_check(&ks, challenge, req, &why));
	challenge[0] ^= 1;

	/* every byte after the magic is covered */
	for (size_t i = PEER_MAGIC_LEN; i < PEER_REQ_LEN; i++) {
		make_req(ks.cur, challenge, req);
		req[i] ^= 0x40;
		assert_null(peer_req_check(&ks, challenge, req, &why));
	}
	make_req(ks.cur, challenge, req);
	req[0] = 'X';
	why = NULL;
	assert_null(peer_req_check(&ks, challenge, req, &why));
	assert_string_equal(why, "not an sgnfs peer request");
}

static void test_reply_mac(void **st)
{
	uint8_t key[HK_KEY_SIZE], ch[PEER_NONCE_LEN], no[PEER_NONCE_LEN];
	uint8_t a[PEER_MAC_LEN], b[PEER_MAC_LEN];
	const char *j = "{\"node\":\"b\"}";

	(void)st;
	fill(key, sizeof(key), 1);
	fill(ch, sizeof(ch), 2);
	fill(no, sizeof(no), 3);
	peer_reply_mac(key, ch, no, j, (uint32_t)strlen(j), a);
	peer_reply_mac(key, ch, no, j, (uint32_t)strlen(j), b);
	assert_memory_equal(a, b, PEER_MAC_LEN);
	peer_reply_mac(key, ch, no, j, (uint32_t)strlen(j) - 1, b);
	assert_memory_not_equal(a, b, PEER_MAC_LEN);
	no[31] ^= 1;
	peer_reply_mac(key, ch, no, j, (uint32_t)strlen(j), b);
	assert_memory_not_equal(a, b, PEER_MAC_LEN);
	no[31] ^= 1;
	ch[0] ^= 1;
	peer_reply_mac(key, ch, no, j, (uint32_t)strlen(j), b);
	assert_memory_not_equal(a, b, PEER_MAC_LEN);
	/* a request MAC over the same bytes is another MAC (labels differ) */
	{
		uint8_t name[PEER_NAME_LEN] = { 0 };
		peer_req_mac(key, ch, no, name, b);
		assert_memory_not_equal(a, b, PEER_MAC_LEN);
	}
}

static void test_bucket(void **st)
{
	struct tb_bucket b = { 0 };
	int n = 0;

	(void)st;
	while (tb_take(&b, 5, 2, 1000))
		n++;
	assert_int_equal(n, 5);                      /* the burst */
	assert_false(tb_take(&b, 5, 2, 1000));
	assert_false(tb_take(&b, 5, 2, 1499));       /* 0.998 tokens */
	assert_true(tb_take(&b, 5, 2, 1500));        /* 2 a second: one by now */
	assert_false(tb_take(&b, 5, 2, 1500));
	assert_int_equal(tb_refused_take(&b), 4);
	assert_int_equal(tb_refused_take(&b), 0);
	assert_false(tb_take(&b, 5, 2, 100));        /* clock went back: no refill */
	n = 0;
	while (tb_take(&b, 5, 2, 100000))
		n++;
	assert_int_equal(n, 5);                      /* never more than the burst */
}

static struct sockaddr_storage v4(const char *s, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	inet_pton(AF_INET, s, &a->sin_addr);
	return ss;
}

static void test_table(void **st)
{
	struct tb_table t;
	struct sockaddr_storage x = v4("10.0.0.1", 1), x2 = v4("10.0.0.1", 2),
				y = v4("10.0.0.2", 1);
	char buf[64];

	(void)st;
	assert_int_equal(tb_table_init(&t, 4, 2, 1), 0);
	assert_true(tb_table_take(&t, &x, 0));
	assert_true(tb_table_take(&t, &x2, 0));      /* same host, other port */
	assert_false(tb_table_take(&t, &x, 0));
	assert_true(tb_table_take(&t, &y, 0));       /* another host has its own */
	/* more hosts than entries: each new one still gets its burst */
	for (int i = 0; i < 20; i++) {
		char a[32];
		struct sockaddr_storage z;

		snprintf(a, sizeof(a), "10.1.0.%d", i + 1);
		z = v4(a, 9);
		assert_true(tb_table_take(&t, &z, (uint64_t)i));
	}
	tb_table_free(&t);

	assert_true(sa_same_host(&x, &x2));
	assert_false(sa_same_host(&x, &y));
	assert_true(sa_hash(&x) == sa_hash(&x2));
	sa_set_port(&x, 20050);
	assert_int_equal(sa_port(&x), 20050);
	assert_string_equal(sa_str(&x, true, buf, sizeof(buf)), "10.0.0.1:20050");
	assert_string_equal(sa_str(&x, false, buf, sizeof(buf)), "10.0.0.1");
	{
		struct sockaddr_storage n6;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&n6;

		memset(&n6, 0, sizeof(n6));
		a6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "::1", &a6->sin6_addr);
		sa_set_port(&n6, 7);
		assert_string_equal(sa_str(&n6, true, buf, sizeof(buf)), "[::1]:7");
		sa_norm(&n6, &n6);
		assert_int_equal(sa_port(&n6), 0);
		assert_false(sa_same_host(&n6, &x));
	}
}

/* The one table of control requests (cluster/ctlsock.h): a request is
 * found only with its own number of words, and lines are built from it. */
static void test_ctl_table(void **st)
{
	char *ok[] = { "move", "g1", "b" }, *few[] = { "move", "g1" }, *bad[] = { "nosuch" };
	char *dr[] = { "drain" }, *drx[] = { "drain", "x" };
	char buf[32];

	(void)st;
	assert_int_equal(ctl_req_find(3, ok), CTL_REQ_MOVE);
	assert_int_equal(ctl_req_find(2, few), -1);
	assert_int_equal(ctl_req_find(1, bad), -1);
	assert_int_equal(ctl_req_find(1, dr), CTL_REQ_DRAIN);
	assert_int_equal(ctl_req_find(2, drx), -1);
	assert_int_equal(ctl_req_find(0, dr), -1);
	for (int i = 0; i < CTL_REQ_COUNT; i++)
		assert_non_null(ctl_reqs[i].name);
	assert_int_equal(ctl_req_line(buf, sizeof(buf), CTL_REQ_MOVE, "g1", "b"), 0);
	assert_string_equal(buf, "move g1 b");
	assert_int_equal(ctl_req_line(buf, sizeof(buf), CTL_REQ_STATUS), 0);
	assert_string_equal(buf, "status");
	assert_int_equal(ctl_req_line(buf, sizeof(buf), CTL_REQ_MOVE, "g 1", "b"), -EINVAL);
	assert_int_equal(ctl_req_line(buf, sizeof(buf), CTL_REQ_START, ""), -EINVAL);
	assert_int_equal(ctl_req_line(buf, 8, CTL_REQ_MOVE, "g1", "b"), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_keys),
		cmocka_unit_test(test_reply_mac),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_ctl_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
