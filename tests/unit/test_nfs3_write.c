/*
 * test_nfs3_write.c - which WRITEs start their writeback at once
 * (nfs3_write_behind, src/nfs/nfs3_int.h): an UNSTABLE write of at least
 * NFS3_WRITE_BEHIND_MIN bytes does; a smaller one stays in the page cache
 * (a page rewritten soon would be written twice); DATA_SYNC and FILE_SYNC
 * never need it (they are made durable before the reply).
 *
 * And WRITE's argument decoder (nfs3_xdr_write_args): the data lands in an
 * iobuf.h buffer, byte for byte, and xdr_free gives a large one back to
 * the pool (kept for the next); lengths over NFS3_MAXDATA and truncated
 * data are refused, and what was taken is released (ASan: no leak).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "nfs/iobuf.h"
#include "nfs/nfs3_int.h"

static void test_write_behind(void **st)
{
	(void)st;
	assert_true(nfs3_write_behind(UNSTABLE, NFS3_WRITE_BEHIND_MIN));
	assert_true(nfs3_write_behind(UNSTABLE, 1u << 20));
	assert_false(nfs3_write_behind(UNSTABLE, NFS3_WRITE_BEHIND_MIN - 1));
	assert_false(nfs3_write_behind(UNSTABLE, 0));
	assert_false(nfs3_write_behind(DATA_SYNC, 1u << 20));
	assert_false(nfs3_write_behind(FILE_SYNC, 1u << 20));
	/* well below wtmax, so a client's usual 1 MiB and 512 KiB qualify */
	assert_true(NFS3_WRITE_BEHIND_MIN <= (512u << 10));
}

/* Encode a WRITE of @len bytes (pattern) with the generated encoder. */
static size_t enc_write(char *buf, size_t cap, u_int len, char *data)
{
	char fh[8] = "handle!";
	WRITE3args a = {
		.file = { .data = { .data_len = sizeof(fh), .data_val = fh } },
		.offset = 4096, .count = len, .stable = UNSTABLE,
		.data = { .data_len = len, .data_val = data },
	};
	XDR x;

	for (u_int i = 0; i < len; i++)
		data[i] = (char)(i * 13 + 1);
	xdrmem_create(&x, buf, (u_int)cap, XDR_ENCODE);
	assert_true(xdr_WRITE3args(&x, &a));
	return xdr_getpos(&x);
}

static void dec_check(const char *buf, size_t n, u_int len, const char *data)
{
	WRITE3args a;
	XDR x;

	memset(&a, 0, sizeof(a));
	xdrmem_create(&x, (char *)buf, (u_int)n, XDR_DECODE);
	assert_true(nfs3_xdr_write_args(&x, &a));
	assert_int_equal(a.file.data.data_len, 8);
	assert_int_equal(a.offset, 4096);
	assert_int_equal(a.count, len);
	assert_int_equal(a.stable, UNSTABLE);
	assert_int_equal(a.data.data_len, len);
	assert_memory_equal(a.data.data_val, data, len);
	xdr_free((xdrproc_t)nfs3_xdr_write_args, (char *)&a);
	assert_null(a.data.data_val);
	assert_null(a.file.data.data_val);
}

static void test_write_args(void **st)
{
	size_t cap = NFS3_MAXDATA + 1024, n;
	char *buf = malloc(cap), *data = malloc(NFS3_MAXDATA);
	WRITE3args a;
	XDR x;

	(void)st;
	assert_non_null(buf);
	assert_non_null(data);
	nfsb_drain();

	/* 1 MiB: into a pool buffer, which xdr_free gives back to the pool */
	n = enc_write(buf, cap, NFS3_MAXDATA, data);
	dec_check(buf, n, NFS3_MAXDATA, data);
	assert_int_equal(nfsb_kept(), 1);
	/* the next one reuses it */
	dec_check(buf, n, NFS3_MAXDATA, data);
	assert_int_equal(nfsb_kept(), 1);

	/* small: exact, not kept */
	n = enc_write(buf, cap, 5, data);
	dec_check(buf, n, 5, data);
	assert_int_equal(nfsb_kept(), 1);

	/* truncated data: refused; xdr_free releases what was taken */
	n = enc_write(buf, cap, 70000, data);
	memset(&a, 0, sizeof(a));
	xdrmem_create(&x, buf, (u_int)(n - 100), XDR_DECODE);
	assert_false(nfs3_xdr_write_args(&x, &a));
	xdr_free((xdrproc_t)nfs3_xdr_write_args, (char *)&a);
	assert_null(a.data.data_val);

	/* a length over NFS3_MAXDATA: refused before any allocation */
	n = enc_write(buf, cap, 8, data);
	{
		uint32_t big = htonl(NFS3_MAXDATA + 1);

		memcpy(buf + n - 8 - 4, &big, 4); /* the opaque's length word */
	}
	memset(&a, 0, sizeof(a));
	xdrmem_create(&x, buf, (u_int)n, XDR_DECODE);
	assert_false(nfs3_xdr_write_args(&x, &a));
	assert_null(a.data.data_val);
	xdr_free((xdrproc_t)nfs3_xdr_write_args, (char *)&a);

	nfsb_drain();
	free(buf);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_behind),
		cmocka_unit_test(test_write_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
