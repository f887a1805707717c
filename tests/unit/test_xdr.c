/*
 * test_xdr.c - edge cases of the generated XDR (rpcmsg.x) as linked with
 * libtirpc: empty and maximum-length opaques and strings, one past the
 * maximum, lengths near 2^32 in short buffers, truncated bodies and
 * non-zero padding.
 *
 * Padding rule (documented here and in docs/protocol.md): RFC 4506 says
 * padding bytes are zero, but like Linux knfsd we do not reject a message
 * whose padding is not; the value decodes and the next item stays aligned.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "rpc/rpc.h"
#include "rpcmsg.h"

/* Append a big-endian 32-bit word. */
static size_t put32(uint8_t *b, size_t o, uint32_t v)
{
	v = htonl(v);
	memcpy(b + o, &v, 4);
	return o + 4;
}

static bool decode_auth(const uint8_t *b, size_t len, rpcm_opaque_auth *a)
{
	XDR x;
	bool ok;

	memset(a, 0, sizeof(*a));
	xdrmem_create(&x, (char *)b, (u_int)len, XDR_DECODE);
	ok = xdr_rpcm_opaque_auth(&x, a);
	xdr_destroy(&x);
	return ok;
}

static void test_opaque_empty(void **st)
{
	uint8_t b[8];
	rpcm_opaque_auth a;
	size_t o = put32(b, 0, 1);

	o = put32(b, o, 0);
	assert_true(decode_auth(b, o, &a));
	assert_int_equal(a.body.body_len, 0);
	xdr_free((xdrproc_t)xdr_rpcm_opaque_auth, (char *)&a);
}

static void test_opaque_max_and_one_past(void **st)
{
	uint8_t b[8 + 404];
	rpcm_opaque_auth a;
	size_t o = put32(b, 0, 1);

	o = put32(b, o, 400);
	memset(b + o, 0xab, 400);
	assert_true(decode_auth(b, o + 400, &a));
	assert_int_equal(a.body.body_len, 400);
	assert_int_equal((uint8_t)a.body.body_val[399], 0xab);
	xdr_free((xdrproc_t)xdr_rpcm_opaque_auth, (char *)&a);

	put32(b, 4, 401);
	memset(b + 8, 0, 404);
	assert_false(decode_auth(b, sizeof(b), &a));
	xdr_free((xdrproc_t)xdr_rpcm_opaque_auth, (char *)&a);
}

static void test_length_near_2_32_short_buffer(void **st)
{
	uint8_t b[12];
	rpcm_opaque_auth a;
	size_t o = put32(b, 0, 1);

	o = put32(b, o, 0xfffffffcu);
	o = put32(b, o, 0);
	assert_false(decode_auth(b, o, &a));
	xdr_free((xdrproc_t)xdr_rpcm_opaque_auth, (char *)&a);
	put32(b, 4, 0xffffffffu);
	assert_false(decode_auth(b, o, &a));
	xdr_free((xdrproc_t)xdr_rpcm_opaque_auth, (char *)&a);
}

static void test_opaque_truncated(void **st)
{
	uint8_t b[8 + 10];
	rpcm_opaque_auth a;
	size_t o = put32(b, 0, 1);

	o = put32(b, o, 300); /* claims 300, only 10 present */
	memset(b + o, 1, 10);
	assert_false(decode_auth(b, sizeof(b), &a));
	xdr_free((xdrproc_t)xdr_rpcm_opaque_auth, (char *)&a);
}

/* authsys body: stamp, machinename, uid, gid, gids<16> */
static size_t build_authsys(uint8_t *b, size_t namelen, uint32_t ngids, uint8_t padbyte)
{
	size_t o = put32(b, 0, 7);
	o = put32(b, o, (uint32_t)namelen);
	memset(b + o, 'm', namelen);
	o += namelen;
	while (o % 4) /* padding */
		b[o++] = padbyte;
	o = put32(b, o, 1000);
	o = put32(b, o, 100);
	o = put32(b, o, ngids);
	for (uint32_t i = 0; i < ngids; i++)
		o = put32(b, o, 2000 + i);
	return o;
}

static bool decode_authsys(const uint8_t *b, size_t len, rpcm_authsys_parms *p)
{
	XDR x;
	bool ok;

	memset(p, 0, sizeof(*p));
	xdrmem_create(&x, (char *)b, (u_int)len, XDR_DECODE);
	ok = xdr_rpcm_authsys_parms(&x, p);
	xdr_destroy(&x);
	return ok;
}

static void test_string_bounds(void **st)
{
	static uint8_t b[1024];
	rpcm_authsys_parms p;
	size_t n;

	n = build_authsys(b, 0, 0, 0);
	assert_true(decode_authsys(b, n, &p));
	assert_string_equal(p.machinename, "");
	xdr_free((xdrproc_t)xdr_rpcm_authsys_parms, (char *)&p);

	n = build_authsys(b, 255, 16, 0);
	assert_true(decode_authsys(b, n, &p));
	assert_int_equal(strlen(p.machinename), 255);
	assert_int_equal(p.gids.gids_len, 16);
	assert_int_equal(p.gids.gids_val[15], 2015);
	xdr_free((xdrproc_t)xdr_rpcm_authsys_parms, (char *)&p);

	n = build_authsys(b, 256, 0, 0);
	assert_false(decode_authsys(b, n, &p));
	xdr_free((xdrproc_t)xdr_rpcm_authsys_parms, (char *)&p);

	n = build_authsys(b, 10, 17, 0);
	assert_false(decode_authsys(b, n, &p));
	xdr_free((xdrproc_t)xdr_rpcm_authsys_parms, (char *)&p);
}

static void test_nonzero_padding_tolerated(void **st)
{
	static uint8_t b[256];
	rpcm_authsys_parms p;
	size_t n = build_authsys(b, 5, 2, 0xee); /* 3 pad bytes of 0xee */

	assert_true(decode_authsys(b, n, &p));
	assert_string_equal(p.machinename, "mmmmm");
	/* Alignment survived the dirty padding. */
	assert_int_equal(p.uid, 1000);
	assert_int_equal(p.gid, 100);
	assert_int_equal(p.gids.gids_len, 2);
	xdr_free((xdrproc_t)xdr_rpcm_authsys_parms, (char *)&p);
}

static void test_encode_roundtrip_padding_zero(void **st)
{
	rpcm_opaque_auth a = { .flavor = 1 };
	char body[3] = { 1, 2, 3 };
	uint8_t b[64];
	XDR x;

	memset(b, 0x55, sizeof(b));
	a.body.body_len = 3;
	a.body.body_val = body;
	xdrmem_create(&x, (char *)b, sizeof(b), XDR_ENCODE);
	assert_true(xdr_rpcm_opaque_auth(&x, &a));
	assert_int_equal(xdr_getpos(&x), 12);
	xdr_destroy(&x);
	assert_int_equal(b[11], 0); /* we always send zero padding */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opaque_empty),
		cmocka_unit_test(test_opaque_max_and_one_past),
		cmocka_unit_test(test_length_near_2_32_short_buffer),
		cmocka_unit_test(test_opaque_truncated),
		cmocka_unit_test(test_string_bounds),
		cmocka_unit_test(test_nonzero_padding_tolerated),
		cmocka_unit_test(test_encode_roundtrip_padding_zero),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
