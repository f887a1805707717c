/*
 * jr_grow - make a group's next open slow the honest way: append one batch
 * of N exclusive locks, held by synthetic clients that will never reclaim
 * them, to the group's lock journal.
 *
 *   jr_grow STATEDIR GROUP N [HOSTS]
 *
 * The journal must load whole and complete (run this while no node serves
 * the group, e.g. after kill -9 of its owner and before another node takes
 * it).  The batch goes right after the last good batch, numbered one past
 * it, so the next load replays everything there was plus N locks of HOSTS
 * clients (default 1000) named "synth-<i>", one byte each on a file handle
 * no real file has.  Used by test_group_open_slow.py and the bench.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal.h"

static int count(void *arg, const struct jr_rec *r)
{
	(void)r;
	++*(size_t *)arg;
	return 0;
}

int main(int argc, char **argv)
{
	struct jr_load_info li;
	char path[4200], host[32];
	static const char fh[] = "jr_grow synthetic file handle";
	size_t n, hosts = 1000, seen = 0, cap = 1u << 20, len = 0;
	off_t at;
	char *buf;
	int fd, rc;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: jr_grow STATEDIR GROUP N [HOSTS]\n");
		return 64;
	}
	n = strtoul(argv[3], NULL, 10);
	if (argc == 5)
		hosts = strtoul(argv[4], NULL, 10);
	if (n == 0 || hosts == 0) {
		fprintf(stderr, "jr_grow: N and HOSTS must be positive\n");
		return 64;
	}
	snprintf(path, sizeof(path), "%s/journal", argv[1]);
	rc = jr_load(path, argv[2], count, &seen, &li);
	if (rc < 0 || !li.complete) {
		fprintf(stderr, "jr_grow: %s: %s\n", path,
			rc < 0 ? strerror(-rc) : "not complete (a plain grace would follow)");
		return 1;
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	buf = malloc(cap);
	if (fd < 0 || !buf) {
		perror("jr_grow");
		return 1;
	}
	at = li.valid_end;
	for (size_t i = 0; i < n; i++) {
		int hl = snprintf(host, sizeof(host), "synth-%zu", i % hosts);
		/* Two bytes apart, so no two locks of one owner touch and merge. */
		struct jr_rec r = {
			.type = JR_LOCK, .host = host, .hostlen = (size_t)hl, .svid = 1,
			.oh = "o", .ohlen = 1, .fh = fh, .fhlen = sizeof(fh) - 1, .excl = true,
			.start = 2 * (uint64_t)i, .end = 2 * (uint64_t)i,
		};
		ssize_t w;

		if (cap - len < jr_rec_size(&r)) {
			if (pwrite(fd, buf, len, at) != (ssize_t)len) {
				perror("jr_grow: write");
				return 1;
			}
			at += (off_t)len;
			len = 0;
		}
		w = jr_rec_encode(&r, li.last_batch + 1, i + 1 == n, buf + len, cap - len);
		if (w < 0) {
			fprintf(stderr, "jr_grow: encode: %s\n", strerror((int)-w));
			return 1;
		}
		len += (size_t)w;
	}
	if (pwrite(fd, buf, len, at) != (ssize_t)len || fdatasync(fd) < 0) {
		perror("jr_grow: write");
		return 1;
	}
	printf("jr_grow: %s: %zu records kept, %zu locks of %zu clients added in batch %llu\n",
	       path, seen, n, hosts, (unsigned long long)li.last_batch + 1);
	close(fd);
	free(buf);
	return 0;
}
