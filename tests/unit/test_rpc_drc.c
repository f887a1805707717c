/*
 * test_rpc_drc.c - the duplicate-request cache's data structure (rpc_drc.h):
 * hit, in-progress drop, key fields, per-host share, node bound, expiry,
 * and that nothing in progress is ever evicted.  No sockets, no clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "rpc/rpc_drc.h"

static const int group_a = 1, group_b = 2;

static struct rpc_drc_key key(const char *ip, uint16_t port, uint32_t xid, const void *group)
{
	struct rpc_drc_key k;
	struct sockaddr_in *sin = (struct sockaddr_in *)&k.addr;

	memset(&k, 0, sizeof(k));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	inet_pton(AF_INET, ip, &sin->sin_addr);
	k.group = group;
	k.xid = xid;
	k.prog = 100003;
	k.vers = 3;
	k.proc = 12; /* REMOVE */
	k.len = 100;
	k.sum = rpc_drc_sum((const uint8_t *)"remove f", 8);
	return k;
}

static struct rpc_drc *mk(uint32_t max, uint32_t per_host, uint32_t ttl)
{
	struct rpc_drc_limits l = { .max_entries = max, .max_per_host = per_host, .ttl_ms = ttl };
	struct rpc_drc *d = NULL;

	assert_int_equal(rpc_drc_new(&l, &d), 0);
	return d;
}

static enum rpc_drc_result look(struct rpc_drc *d, const struct rpc_drc_key *k, uint64_t now,
				struct rpc_drc_entry **e, const uint8_t **r, size_t *n)
{
	struct rpc_drc_entry *dummy;
	const uint8_t *rd;
	size_t nd;

	return rpc_drc_lookup(d, k, now, e ? e : &dummy, r ? r : &rd, n ? n : &nd);
}

/* Make a done entry for @k with the reply "R<xid>". */
static void fill(struct rpc_drc *d, const struct rpc_drc_key *k, uint64_t now)
{
	struct rpc_drc_entry *e;
	char rep[32];

	assert_int_equal(look(d, k, now, &e, NULL, NULL), RPC_DRC_MISS);
	snprintf(rep, sizeof(rep), "R%u", k->xid);
	rpc_drc_done(d, e, (const uint8_t *)rep, strlen(rep), now);
}

static bool cached(struct rpc_drc *d, const struct rpc_drc_key *k, uint64_t now)
{
	const uint8_t *r;
	size_t n;
	char want[32];
	enum rpc_drc_result res = look(d, k, now, NULL, &r, &n);

	if (res == RPC_DRC_MISS) {
		/* a miss made an entry: forget it so it does not count */
		return false;
	}
	if (res != RPC_DRC_HIT)
		return false;
	snprintf(want, sizeof(want), "R%u", k->xid);
	return n == strlen(want) && memcmp(r, want, n) == 0;
}

static void test_hit_and_inprogress(void **s)
{
	struct rpc_drc *d = mk(16, 16, 1000);
	struct rpc_drc_key k = key("127.0.0.5", 700, 42, &group_a);
	struct rpc_drc_entry *e;
	struct rpc_drc_stats st;
	const uint8_t *r;
	size_t n;

	(void)s;
	assert_int_equal(look(d, &k, 0, &e, NULL, NULL), RPC_DRC_MISS);
	/* the same call while the first runs: dropped */
	assert_int_equal(look(d, &k, 1, NULL, NULL, NULL), RPC_DRC_INPROGRESS);
	rpc_drc_done(d, e, (const uint8_t *)"reply-bytes", 11, 2);
	/* a retransmission from another port (a new connection) */
	k = key("127.0.0.5", 901, 42, &group_a);
	assert_int_equal(look(d, &k, 3, NULL, &r, &n), RPC_DRC_HIT);
	assert_int_equal(n, 11);
	assert_memory_equal(r, "reply-bytes", 11);
	rpc_drc_stats(d, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.inprogress_drops, 1);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.hosts, 1);
	rpc_drc_free(d);
}

/* Every field of the key tells calls apart. */
static void test_key_fields(void **s)
{
	struct rpc_drc *d = mk(64, 64, 1000);
	struct rpc_drc_key k = key("127.0.0.5", 700, 42, &group_a), o;

	(void)s;
	fill(d, &k, 0);
	assert_true(cached(d, &k, 1));
	o = k; o.sum ^= 1;
	assert_int_equal(look(d, &o, 1, NULL, NULL, NULL), RPC_DRC_MISS);
	o = k; o.len++;
	assert_int_equal(look(d, &o, 1, NULL, NULL, NULL), RPC_DRC_MISS);
	o = k; o.proc = 14;
	assert_int_equal(look(d, &o, 1, NULL, NULL, NULL), RPC_DRC_MISS);
	o = k; o.vers = 2;
	assert_int_equal(look(d, &o, 1, NULL, NULL, NULL), RPC_DRC_MISS);
	o = k; o.prog = 100021;
	assert_int_equal(look(d, &o, 1, NULL, NULL, NULL), RPC_DRC_MISS);
	o = k; o.group = &group_b;
	assert_int_equal(look(d, &o, 1, NULL, NULL, NULL), RPC_DRC_MISS);
	o = key("127.0.0.6", 700, 42, &group_a);
	assert_int_equal(look(d, &o, 1, NULL, NULL, NULL), RPC_DRC_MISS);
	o = key("127.0.0.5", 700, 43, &group_a);
	assert_int_equal(look(d, &o, 1, NULL, NULL, NULL), RPC_DRC_MISS);
	/* ... and the original is still there */
	assert_true(cached(d, &k, 2));
	rpc_drc_free(d);
}

/* A host at its share evicts only its own oldest entries. */
static void test_host_share(void **s)
{
	struct rpc_drc *d = mk(16, 4, 100000);
	struct rpc_drc_key good[8];
	struct rpc_drc_stats st;
	struct sockaddr_storage bad_addr;

	(void)s;
	for (uint32_t i = 0; i < 8; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "127.0.1.%u", i + 1);
		good[i] = key(ip, 700, 1000 + i, &group_a);
		fill(d, &good[i], i);
	}
	for (uint32_t i = 0; i < 1000; i++) {
		struct rpc_drc_key k = key("127.0.9.9", 800, i, &group_a);
		fill(d, &k, 10 + i);
		bad_addr = k.addr;
	}
	assert_int_equal(rpc_drc_host_entries(d, &bad_addr), 4);
	rpc_drc_stats(d, &st);
	assert_int_equal(st.entries, 12);
	assert_int_equal(st.evictions, 996);
	for (uint32_t i = 0; i < 8; i++)
		assert_true(cached(d, &good[i], 2000));
	/* the flooder's newest survive, its oldest went */
	struct rpc_drc_key newest = key("127.0.9.9", 800, 999, &group_a);
	struct rpc_drc_key oldest = key("127.0.9.9", 800, 0, &group_a);
	assert_true(cached(d, &newest, 2000));
	assert_false(cached(d, &oldest, 2000));
	rpc_drc_free(d);
}

/* The node bound: the node's oldest done entry goes first. */
static void test_node_bound(void **s)
{
	struct rpc_drc *d = mk(8, 8, 100000);
	struct rpc_drc_stats st;

	(void)s;
	for (uint32_t i = 0; i < 20; i++) {
		char ip[32];
		struct rpc_drc_key k;

		snprintf(ip, sizeof(ip), "127.0.2.%u", i + 1);
		k = key(ip, 700, i, &group_a);
		fill(d, &k, i);
	}
	rpc_drc_stats(d, &st);
	assert_int_equal(st.entries, 8);
	assert_int_equal(st.hosts, 8);
	assert_int_equal(st.evictions, 12);
	for (uint32_t i = 0; i < 20; i++) {
		char ip[32];
		struct rpc_drc_key k;

		snprintf(ip, sizeof(ip), "127.0.2.%u", i + 1);
		k = key(ip, 700, i, &group_a);
		if (i < 12)
			assert_int_equal(rpc_drc_host_entries(d, &k.addr), 0);
		else
			assert_true(cached(d, &k, 100));
	}
	rpc_drc_free(d);
}

/* In-progress entries are never evicted: with none done, no room. */
static void test_inprogress_never_evicted(void **s)
{
	struct rpc_drc *d = mk(4, 2, 100000);
	struct rpc_drc_entry *e[4];
	struct rpc_drc_key k;

	(void)s;
	for (uint32_t i = 0; i < 2; i++) {
		k = key("127.0.3.1", 700, i, &group_a);
		assert_int_equal(look(d, &k, 0, &e[i], NULL, NULL), RPC_DRC_MISS);
	}
	k = key("127.0.3.1", 700, 2, &group_a);
	assert_int_equal(look(d, &k, 0, NULL, NULL, NULL), RPC_DRC_NOCACHE);
	for (uint32_t i = 2; i < 4; i++) {
		k = key("127.0.3.2", 700, i, &group_a);
		assert_int_equal(look(d, &k, 0, &e[i], NULL, NULL), RPC_DRC_MISS);
	}
	k = key("127.0.3.3", 700, 9, &group_a);
	assert_int_equal(look(d, &k, 0, NULL, NULL, NULL), RPC_DRC_NOCACHE);
	/* the in-progress ones are all still there */
	for (uint32_t i = 0; i < 4; i++) {
		k = key(i < 2 ? "127.0.3.1" : "127.0.3.2", 700, i, &group_a);
		assert_int_equal(look(d, &k, 0, NULL, NULL, NULL), RPC_DRC_INPROGRESS);
	}
	/* one finishes: now it may make room */
	rpc_drc_done(d, e[0], (const uint8_t *)"x", 1, 1);
	k = key("127.0.3.3", 700, 9, &group_a);
	assert_int_equal(look(d, &k, 2, NULL, NULL, NULL), RPC_DRC_MISS);
	rpc_drc_free(d); /* frees the in-progress entries too (ASan: no leak) */
}

static void test_expiry_and_forget(void **s)
{
	struct rpc_drc *d = mk(16, 16, 100);
	struct rpc_drc_key k = key("127.0.4.1", 700, 1, &group_a);
	struct rpc_drc_key big = key("127.0.4.1", 700, 2, &group_a);
	struct rpc_drc_entry *e;
	struct rpc_drc_stats st;
	static uint8_t huge[RPC_DRC_MAX_REPLY + 1];

	(void)s;
	fill(d, &k, 1000);
	assert_true(cached(d, &k, 1099));
	rpc_drc_stats(d, &st);
	assert_int_equal(st.expired, 0);
	/* at ttl it is gone: executed again */
	assert_int_equal(look(d, &k, 1100, &e, NULL, NULL), RPC_DRC_MISS);
	rpc_drc_stats(d, &st);
	assert_int_equal(st.expired, 1);
	/* a failed call is forgotten, not replayed */
	rpc_drc_done(d, e, NULL, 0, 1100);
	assert_int_equal(look(d, &k, 1101, &e, NULL, NULL), RPC_DRC_MISS);
	rpc_drc_done(d, e, (const uint8_t *)"ok", 2, 1101);
	/* a reply too big to keep is forgotten */
	assert_int_equal(look(d, &big, 1101, &e, NULL, NULL), RPC_DRC_MISS);
	rpc_drc_done(d, e, huge, sizeof(huge), 1101);
	assert_int_equal(look(d, &big, 1102, &e, NULL, NULL), RPC_DRC_MISS);
	rpc_drc_done(d, e, NULL, 0, 1102);
	rpc_drc_stats(d, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.hosts, 1);
	rpc_drc_free(d);
}

static void test_off(void **s)
{
	struct rpc_drc *d = mk(0, 0, 100);
	struct rpc_drc_key k = key("127.0.4.1", 700, 1, &group_a);

	(void)s;
	assert_int_equal(look(d, &k, 0, NULL, NULL, NULL), RPC_DRC_NOCACHE);
	assert_int_equal(look(d, &k, 0, NULL, NULL, NULL), RPC_DRC_NOCACHE);
	rpc_drc_free(d);
}

/* The checksum sees every byte of a WRITE-sized call, in the words and in
 * the tail, and the length. */
static void test_sum_every_byte(void **state)
{
	size_t len = (1u << 20) + 13, pos[] = { 0, 1, 7, 8, 31, 32, 4096, (1u << 20) - 1,
						(1u << 20), (1u << 20) + 12 };
	uint8_t *b = malloc(len);
	uint64_t base;

	(void)state;
	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 131 + 7);
	base = rpc_drc_sum(b, len);
	assert_int_equal(rpc_drc_sum(b, len), base);
	for (size_t j = 0; j < sizeof(pos) / sizeof(pos[0]); j++) {
		b[pos[j]] ^= 0x40;
		assert_true(rpc_drc_sum(b, len) != base);
		b[pos[j]] ^= 0x40;
	}
	/* Two words swapped between lanes: another call. */
	memcpy(b + 64, "ABCDEFGH", 8);
	memcpy(b + 72, "IJKLMNOP", 8);
	base = rpc_drc_sum(b, len);
	memcpy(b + 64, "IJKLMNOP", 8);
	memcpy(b + 72, "ABCDEFGH", 8);
	assert_true(rpc_drc_sum(b, len) != base);
	/* A prefix is another call (a zero byte appended too). */
	memset(b, 0, 64);
	assert_true(rpc_drc_sum(b, 40) != rpc_drc_sum(b, 41));
	assert_true(rpc_drc_sum(b, 32) != rpc_drc_sum(b, 33));
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_inprogress),
		cmocka_unit_test(test_sum_every_byte),
		cmocka_unit_test(test_key_fields),
		cmocka_unit_test(test_host_share),
		cmocka_unit_test(test_node_bound),
		cmocka_unit_test(test_inprogress_never_evicted),
		cmocka_unit_test(test_expiry_and_forget),
		cmocka_unit_test(test_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
