/*
 * test_nfs3_write.c - which WRITEs start their writeback at once
 * (nfs3_write_behind, src/nfs/nfs3_int.h): an UNSTABLE write of at least
 * NFS3_WRITE_BEHIND_MIN bytes does; a smaller one stays in the page cache
 * (a page rewritten soon would be written twice); DATA_SYNC and FILE_SYNC
 * never need it (they are made durable before the reply).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_behind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
