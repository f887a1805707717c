/*
 * test_fh.c - NFSv3 file handles: the wire layout (round trip, every
 * truncation and extension, wrong version, inconsistent kernel handle
 * size, the 64-byte limit), fsid -> export mapping, the subtree path rule,
 * and real resolution through open_by_handle_at: a handle of export B
 * presented as export A is stale, a handle outlives the process state
 * that made it, garbage kernel bytes are stale or bad, never a crash.
 * The resolution tests need root (CAP_DAC_READ_SEARCH) and are skipped
 * otherwise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "config/config.h"
#include "nfs/export.h"
#include "nfs/fh.h"
#include "nfs/nfs_int.h"
#include "hkey.h"

static struct fh_key key_of(uint32_t fsid, int32_t type, uint32_t klen)
{
	struct fh_key k;

	memset(&k, 0, sizeof(k));
	k.fsid = fsid;
	k.ktype = type;
	k.klen = klen;
	for (uint32_t i = 0; i < klen; i++)
		k.kh[i] = (uint8_t)(0xa0 + i);
	return k;
}

static void test_round_trip(void **st)
{
	uint8_t buf[FH_SIZE_MAX];
	struct fh_key k = key_of(0xdeadbeef, -7, 8), out;
	int n = fh_encode(&k, buf, sizeof(buf));

	(void)st;
	assert_int_equal(n, FH_HDR_SIZE + 8 + FH_MAC_SIZE);
	assert_int_equal(buf[0], FH_VERSION);
	assert_int_equal(buf[1], 8);
	/* fsid is big-endian on the wire, whatever the host. */
	assert_int_equal(buf[2], 0xde);
	assert_int_equal(buf[5], 0xef);
	assert_int_equal(fh_decode(buf, (size_t)n, &out), 0);
	assert_int_equal(out.fsid, 0xdeadbeef);
	assert_int_equal(out.ktype, -7);
	assert_int_equal(out.klen, 8);
	assert_memory_equal(out.kh, k.kh, 8);
}

static void test_max_size(void **st)
{
	uint8_t buf[FH_SIZE_MAX + 8];
	struct fh_key k = key_of(1, 1, FH_KHANDLE_MAX), out;

	(void)st;
	assert_int_equal(FH_SIZE_MAX, 64);
	assert_int_equal(fh_encode(&k, buf, sizeof(buf)), 64);
	assert_int_equal(fh_decode(buf, 64, &out), 0);
	assert_int_equal(out.klen, FH_KHANDLE_MAX);
	/* One kernel byte more does not fit the protocol's 64 bytes. */
	k.klen = FH_KHANDLE_MAX + 1;
	assert_int_equal(fh_encode(&k, buf, sizeof(buf)), -EOVERFLOW);
	/* Nor does a buffer shorter than the handle. */
	k.klen = 8;
	assert_int_equal(fh_encode(&k, buf, FH_HDR_SIZE + 8 + FH_MAC_SIZE - 1), -EOVERFLOW);
	k.klen = 0;
	assert_int_equal(fh_encode(&k, buf, sizeof(buf)), -EINVAL);
	/* Longer than 64 on the wire: refused before anything is read. */
	memset(buf, 0, sizeof(buf));
	buf[0] = FH_VERSION;
	buf[1] = FH_KHANDLE_MAX + 1;
	assert_int_equal(fh_decode(buf, 65, &out), -NFSE_BADHANDLE);
}

static void test_every_truncation(void **st)
{
	uint8_t buf[FH_SIZE_MAX + 1];
	struct fh_key out;

	(void)st;
	for (uint32_t klen = 1; klen <= FH_KHANDLE_MAX; klen++) {
		struct fh_key k = key_of(42, 1, klen);
		int n = fh_encode(&k, buf, sizeof(buf));

		assert_int_equal(n, (int)(FH_HDR_SIZE + klen + FH_MAC_SIZE));
		for (int len = 0; len < n; len++)
			assert_int_equal(fh_decode(buf, (size_t)len, &out), -NFSE_BADHANDLE);
		/* One trailing byte too many is just as wrong. */
		buf[n] = 0;
		assert_int_equal(fh_decode(buf, (size_t)n + 1, &out), -NFSE_BADHANDLE);
		assert_int_equal(fh_decode(buf, (size_t)n, &out), 0);
	}
	assert_int_equal(fh_decode(NULL, 0, &out), -NFSE_BADHANDLE);
	assert_int_equal(fh_decode(NULL, 20, &out), -NFSE_BADHANDLE);
}

static void test_bad_version_and_size_field(void **st)
{
	uint8_t buf[FH_SIZE_MAX];
	struct fh_key k = key_of(7, 1, 12), out;
	int n = fh_encode(&k, buf, sizeof(buf));
	const uint8_t versions[] = { 0, 1, 3, 0x7f, 0xff };

	(void)st;
	for (size_t i = 0; i < sizeof(versions); i++) {
		buf[0] = versions[i];
		assert_int_equal(fh_decode(buf, (size_t)n, &out), -NFSE_BADHANDLE);
	}
	assert_int_equal(FH_VERSION, 2);
	buf[0] = FH_VERSION;
	/* The kernel handle size must agree with the handle's length. */
	for (int v = 0; v < 256; v++) {
		buf[1] = (uint8_t)v;
		assert_int_equal(fh_decode(buf, (size_t)n, &out),
				 v == 12 ? 0 : -NFSE_BADHANDLE);
	}
}

static const struct hk_set keys_a = { .cur = { 1, 2, 3, 4, 5, 6, 7, 8 } };

/* The MAC (issue 13 item 1): a handle whose fsid or kernel bytes were
 * changed by a client - another export's fsid on a real handle, generation
 * 0 on a guessed inode - or whose MAC is altered is refused, and the
 * caller tells it apart from a malformed handle (to log it). */
static void test_mac_refuses_forgery(void **st)
{
	uint8_t buf[FH_SIZE_MAX], bad[FH_SIZE_MAX];
	struct fh_key k = key_of(101, 1, 8), out;
	int n = fh_encode(&k, buf, sizeof(buf));

	(void)st;
	assert_int_equal(fh_decode(buf, (size_t)n, &out), 0);
	/* Relabelled: fsid 101 (ro, say) becomes 102 (rw). */
	memcpy(bad, buf, (size_t)n);
	bad[5] = 102;
	assert_int_equal(fh_decode(bad, (size_t)n, &out), -FH_EMAC);
	/* Generation zeroed (ext4 FILEID_INO32_GEN: inode, then generation). */
	memcpy(bad, buf, (size_t)n);
	memset(bad + FH_HDR_SIZE + 4, 0, 4);
	assert_int_equal(fh_decode(bad, (size_t)n, &out), -FH_EMAC);
	/* Every single flipped bit anywhere is caught: the header's by the
	 * shape checks or the MAC, the MAC's by the MAC. */
	for (int i = 0; i < n * 8; i++) {
		int rc;

		memcpy(bad, buf, (size_t)n);
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		rc = fh_decode(bad, (size_t)n, &out);
		assert_true(rc == -FH_EMAC || rc == -NFSE_BADHANDLE);
		if (i >= (FH_HDR_SIZE + 8) * 8)
			assert_int_equal(rc, -FH_EMAC);
	}
	/* A handle signed with another cluster's key. */
	{
		struct hk_set other = { .cur = { 9 } };

		fh_keys_install(&other);
		n = fh_encode(&k, bad, sizeof(bad));
		fh_keys_install(&keys_a);
		assert_int_equal(fh_decode(bad, (size_t)n, &out), -FH_EMAC);
	}
}

/* Rotation: the previous key still verifies, the one before it does not;
 * new handles are signed with the current key. */
static void test_mac_rotation(void **st)
{
	struct hk_set k2 = { .cur = { 2 }, .has_prev = true }, k3 = { .cur = { 3 }, .has_prev = true };
	uint8_t h1[FH_SIZE_MAX], h2[FH_SIZE_MAX];
	struct fh_key k = key_of(7, 1, 12), out;
	int n1, n2;

	(void)st;
	n1 = fh_encode(&k, h1, sizeof(h1));          /* keys_a */
	memcpy(k2.prev, keys_a.cur, HK_KEY_SIZE);
	fh_keys_install(&k2);
	assert_int_equal(fh_decode(h1, (size_t)n1, &out), 0);
	n2 = fh_encode(&k, h2, sizeof(h2));
	assert_memory_not_equal(h1 + FH_HDR_SIZE + 12, h2 + FH_HDR_SIZE + 12, FH_MAC_SIZE);
	memcpy(k3.prev, k2.cur, HK_KEY_SIZE);
	fh_keys_install(&k3);
	assert_int_equal(fh_decode(h2, (size_t)n2, &out), 0);
	assert_int_equal(fh_decode(h1, (size_t)n1, &out), -FH_EMAC);
	fh_keys_install(&keys_a);
}

/*
 * Verified handles are remembered per thread (fh.c, fh_vcache): a handle
 * decoded again decodes the same; one that differs from a remembered
 * handle only in its MAC's last byte (same cache entry, same body) is
 * still refused; and a key change forgets them all: a handle of a key no
 * longer installed is refused at once, though it verified a moment ago.
 */
static void test_verified_cache(void **st)
{
	struct hk_set other = { .cur = { 9 } };
	struct fh_key k = key_of(55, 2, 20), out, again;
	uint8_t h[FH_SIZE_MAX], bad[FH_SIZE_MAX];
	int n = fh_encode(&k, h, sizeof(h));

	(void)st;
	assert_int_equal(fh_decode(h, (size_t)n, &out), 0);
	assert_int_equal(fh_decode(h, (size_t)n, &again), 0);
	assert_memory_equal(&out, &again, sizeof(out));
	assert_int_equal(again.fsid, 55);
	assert_int_equal(again.klen, 20);
	memcpy(bad, h, (size_t)n);
	bad[n - 1] ^= 1;
	assert_int_equal(fh_decode(bad, (size_t)n, &out), -FH_EMAC);
	assert_int_equal(fh_decode(h, (size_t)n - 1, &out), -NFSE_BADHANDLE);
	fh_keys_install(&other);
	assert_int_equal(fh_decode(h, (size_t)n, &out), -FH_EMAC);
	fh_keys_install(&keys_a);
	assert_int_equal(fh_decode(h, (size_t)n, &out), 0);
}

static void test_fsid_mapping(void **st)
{
	struct cfg_export ce[3];
	struct nfs_exp ex[3];

	(void)st;
	memset(ce, 0, sizeof(ce));
	memset(ex, 0, sizeof(ex));
	ce[0].fsid = 101;
	ce[1].fsid = 102;
	ce[2].fsid = 0xffffffff;
	for (int i = 0; i < 3; i++)
		ex[i].cfg = &ce[i];
	assert_ptr_equal(fh_find_export(ex, 3, 101), &ex[0]);
	assert_ptr_equal(fh_find_export(ex, 3, 102), &ex[1]);
	assert_ptr_equal(fh_find_export(ex, 3, 0xffffffff), &ex[2]);
	assert_null(fh_find_export(ex, 3, 103));
	assert_null(fh_find_export(ex, 3, 0));
	assert_null(fh_find_export(ex, 0, 101));
	/* Only the group's own exports count: a shorter table does not see
	 * the third. */
	assert_null(fh_find_export(ex, 2, 0xffffffff));
}

static void test_path_rule(void **st)
{
	const char *r = "/srv/a";
	size_t n = strlen(r);

	(void)st;
	assert_true(fh_path_in_export(r, n, "/srv/a", true));
	assert_true(fh_path_in_export(r, n, "/srv/a/b/c", true));
	assert_true(fh_path_in_export(r, n, "/srv/a/f", false));
	assert_true(fh_path_in_export(r, n, "/srv/a/f (deleted)", false));
	assert_false(fh_path_in_export(r, n, "/srv/ab", true));
	assert_false(fh_path_in_export(r, n, "/srv/ab/c", false));
	assert_false(fh_path_in_export(r, n, "/srv", true));
	assert_false(fh_path_in_export(r, n, "/srv/b/f", false));
	assert_false(fh_path_in_export(r, n, "", true));
	/* A disconnected non-directory reads "/": accepted (fh.c explains);
	 * a directory never comes back disconnected, so "/" is outside. */
	assert_true(fh_path_in_export(r, n, "/", false));
	assert_false(fh_path_in_export(r, n, "/", true));
	assert_true(fh_path_in_export("/", 1, "/anything", true));
}

/* ---- resolution on a real filesystem (root only) --------------------- */

static char base[256], pa[300], pb[300];
static struct cfg_export ce_a, ce_b;
static struct nfs_exp ea, eb;

static int setup_fs(void **st)
{
	char p[400];

	(void)st;
	if (geteuid() != 0)
		return 0;
	snprintf(base, sizeof(base), "/var/tmp/test_fh.XXXXXX");
	assert_non_null(mkdtemp(base));
	snprintf(pa, sizeof(pa), "%s/a", base);
	snprintf(pb, sizeof(pb), "%s/b", base);
	assert_int_equal(mkdir(pa, 0755), 0);
	assert_int_equal(mkdir(pb, 0755), 0);
	snprintf(p, sizeof(p), "%s/a/dir", base);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/b/dir", base);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/b/secret", base);
	close(open(p, O_CREAT | O_WRONLY, 0600));
	snprintf(p, sizeof(p), "%s/a/file", base);
	close(open(p, O_CREAT | O_WRONLY, 0644));
	memset(&ce_a, 0, sizeof(ce_a));
	memset(&ce_b, 0, sizeof(ce_b));
	ce_a.path = pa;
	ce_a.fsid = 101;
	ce_b.path = pb;
	ce_b.fsid = 102;
	assert_int_equal(exp_open(&ce_a, false, &ea), 0);
	assert_int_equal(exp_open(&ce_b, false, &eb), 0);
	return 0;
}

static int teardown_fs(void **st)
{
	char cmd[400];

	(void)st;
	if (geteuid() != 0)
		return 0;
	exp_close(&ea);
	exp_close(&eb);
	exp_close(&ea);            /* idempotent */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static int key_of_path(const struct nfs_exp *e, const char *rel, struct fh_key *k)
{
	return fh_key_at(e->cfg->fsid, e->root_fd, rel, k, NULL);
}

static void test_resolve(void **st)
{
	struct fh_key k, k2;
	struct stat sb;
	uint8_t wire[FH_SIZE_MAX];
	int fd, n;

	(void)st;
	if (geteuid() != 0)
		skip();
	/* The root handle exp_open made resolves to the root. */
	assert_int_equal(fh_decode(ea.root_fh, ea.root_fh_len, &k), 0);
	assert_int_equal(k.fsid, 101);
	assert_int_equal(fh_open(&ea, &k, &fd, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_ino, ea.ino);
	close(fd);

	/* A file, through the wire format. */
	assert_int_equal(key_of_path(&ea, "file", &k), 0);
	n = fh_encode(&k, wire, sizeof(wire));
	assert_true(n > FH_HDR_SIZE);
	assert_int_equal(fh_decode(wire, (size_t)n, &k2), 0);
	assert_int_equal(fh_open(&ea, &k2, &fd, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	close(fd);

	/* The same bytes still work after the export is closed and opened
	 * again (a restarted or moved group): nothing per-process inside. */
	exp_close(&ea);
	assert_int_equal(exp_open(&ce_a, false, &ea), 0);
	assert_int_equal(fh_open(&ea, &k2, &fd, &sb), 0);
	close(fd);
}

static void test_cross_export_is_stale(void **st)
{
	struct fh_key k;
	struct stat sb;
	int fd;

	(void)st;
	if (geteuid() != 0)
		skip();
	/* b's directory and b's file presented through export a (same
	 * filesystem, so the kernel would happily open them). */
	assert_int_equal(key_of_path(&eb, "dir", &k), 0);
	assert_int_equal(fh_open(&ea, &k, &fd, &sb), -ESTALE);
	assert_int_equal(key_of_path(&eb, "secret", &k), 0);
	assert_int_equal(fh_open(&ea, &k, &fd, &sb), -ESTALE);
	/* The parent of both exports is outside both. */
	assert_int_equal(fh_key_at(101, ea.root_fd, "..", &k, NULL), 0);
	assert_int_equal(fh_open(&ea, &k, &fd, &sb), -ESTALE);
	/* Through its own export it is fine. */
	assert_int_equal(key_of_path(&eb, "dir", &k), 0);
	assert_int_equal(fh_open(&eb, &k, &fd, &sb), 0);
	close(fd);
}

static void test_state_dir_unreachable(void **st)
{
	struct nfs_exp holder;
	struct fh_key k;
	struct stat sb;
	char p[400];
	int fd;

	(void)st;
	if (geteuid() != 0)
		skip();
	snprintf(p, sizeof(p), "%s/a/.sgnfs", base);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/.sgnfs/lease", base);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/.sgnfsx", base);
	assert_int_equal(mkdir(p, 0700), 0);
	/* The export that holds the group's state refuses handles into it. */
	assert_int_equal(exp_open(&ce_a, true, &holder), 0);
	assert_int_equal(key_of_path(&holder, ".sgnfs", &k), 0);
	assert_int_equal(fh_open(&holder, &k, &fd, &sb), -ESTALE);
	assert_int_equal(key_of_path(&holder, ".sgnfs/lease", &k), 0);
	assert_int_equal(fh_open(&holder, &k, &fd, &sb), -ESTALE);
	assert_int_equal(key_of_path(&holder, ".sgnfsx", &k), 0);
	assert_int_equal(fh_open(&holder, &k, &fd, &sb), 0);
	close(fd);
	/* Another export of the same tree has no such directory. */
	assert_int_equal(key_of_path(&ea, ".sgnfs", &k), 0);
	assert_int_equal(fh_open(&ea, &k, &fd, &sb), 0);
	close(fd);
	exp_close(&holder);
}

static void test_garbage_kernel_handle(void **st)
{
	struct fh_key k;
	struct stat sb;
	int fd, rc;

	(void)st;
	if (geteuid() != 0)
		skip();
	assert_int_equal(key_of_path(&ea, "file", &k), 0);
	/* A deleted file's handle is stale. */
	{
		char p[400];

		snprintf(p, sizeof(p), "%s/a/gone", base);
		close(open(p, O_CREAT | O_WRONLY, 0644));
		assert_int_equal(key_of_path(&ea, "gone", &k), 0);
		assert_int_equal(unlink(p), 0);
		assert_int_equal(fh_open(&ea, &k, &fd, &sb), -ESTALE);
	}
	/* Flipped bits in the generation / inode: stale or bad, never OK
	 * and never a crash. */
	assert_int_equal(key_of_path(&ea, "file", &k), 0);
	for (uint32_t i = 0; i < k.klen; i++) {
		struct fh_key bad = k;

		bad.kh[i] ^= 0x5a;
		rc = fh_open(&ea, &bad, &fd, &sb);
		if (rc == 0) {
			close(fd);     /* landed on another inode inside a: allowed */
			continue;
		}
		assert_true(rc == -ESTALE || rc == -NFSE_BADHANDLE);
	}
	/* Unknown handle type. */
	k.ktype = 0x7fff;
	rc = fh_open(&ea, &k, &fd, &sb);
	assert_true(rc == -ESTALE || rc == -NFSE_BADHANDLE);
}

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(700);
	assert_int_equal(inet_pton(AF_INET, a, &in->sin_addr), 1);
	return ss;
}

/* The bad-MAC log line's own limiter: a forger's flood spends its own
 * host's bucket, another host's line still goes out, the node-wide
 * bucket bounds many addresses, the lines left out are counted into the
 * next one, and time refills (no clock read: times are passed in). */
static void test_badmac_limiter(void **state)
{
	struct fh_badmac_lim l = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct sockaddr_storage forger = v4("192.0.2.66"), other = v4("192.0.2.7");
	uint64_t quiet = 0, now = 5000;
	unsigned logged = 0;
	char a[32];

	(void)state;
	for (int i = 0; i < 1000; i++)
		logged += fh_badmac_take(&l, &forger, now, &quiet);
	assert_int_equal(logged, FH_BADMAC_HOST_BURST);
	/* Another host, at the same instant, is not starved by the flood. */
	assert_true(fh_badmac_take(&l, &other, now, &quiet));
	assert_int_equal(quiet, 1000 - FH_BADMAC_HOST_BURST);
	/* The forger from another port is the same host. */
	((struct sockaddr_in *)&forger)->sin_port = htons(901);
	assert_false(fh_badmac_take(&l, &forger, now, &quiet));
	/* Its bucket refills at its rate: one line after 1/rate seconds. */
	now += (uint64_t)(1000.0 / FH_BADMAC_HOST_RATE);
	assert_true(fh_badmac_take(&l, &forger, now, &quiet));
	assert_int_equal(quiet, 1);
	assert_false(fh_badmac_take(&l, &forger, now, &quiet));

	/* Many made-up addresses: the node-wide bucket bounds the sum. */
	struct fh_badmac_lim m = { .mu = PTHREAD_MUTEX_INITIALIZER };
	logged = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(a, sizeof(a), "198.51.100.%d", i);
		struct sockaddr_storage s = v4(a);
		logged += fh_badmac_take(&m, &s, now, &quiet);
	}
	assert_int_equal(logged, FH_BADMAC_ALL_BURST);
	tb_table_free(&l.hosts);
	tb_table_free(&m.hosts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_max_size),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_bad_version_and_size_field),
		cmocka_unit_test(test_mac_refuses_forgery),
		cmocka_unit_test(test_mac_rotation),
		cmocka_unit_test(test_verified_cache),
		cmocka_unit_test(test_fsid_mapping),
		cmocka_unit_test(test_path_rule),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_cross_export_is_stale),
		cmocka_unit_test(test_state_dir_unreachable),
		cmocka_unit_test(test_garbage_kernel_handle),
		cmocka_unit_test(test_badmac_limiter),
	};

	/* Before any key is installed nothing can be signed or verified. */
	{
		struct fh_key k = key_of(1, 1, 8), out;
		uint8_t b[FH_SIZE_MAX] = { FH_VERSION, 8 };

		if (fh_encode(&k, b, sizeof(b)) != -ENOKEY ||
		    fh_decode(b, FH_HDR_SIZE + 8 + FH_MAC_SIZE, &out) != -FH_EMAC) {
			fprintf(stderr, "handles signed or verified without a key\n");
			return 1;
		}
	}
	fh_keys_install(&keys_a);
	return cmocka_run_group_tests(tests, setup_fs, teardown_fs);
}
