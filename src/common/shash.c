/*
 * shash.c - SipHash-1-3 and its keys; see shash.h.
 */
#include "shash.h"

#include "log.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND(v0, v1, v2, v3) do {					\
	v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);	\
	v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);	\
} while (0)

/* One unaligned 64-bit load: GCC did not merge the byte-by-byte form,
 * which cost more than the SipRound it feeds (8 loads, 7 shifts, 7 ors). */
static inline uint64_t load_le64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

uint64_t sh_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k1 ^ 0x7465646279746573ULL;
	uint64_t m, last = (uint64_t)len << 56;
	size_t i, tail = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load_le64(p + i);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t j = 0; j < tail; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	v3 ^= last;
	SIPROUND(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

int sh_key_new(struct sh_key *out)
{
	uint64_t k[2];
	size_t got = 0;

	while (got < sizeof(k)) {
		ssize_t n = getrandom((char *)k + got, sizeof(k) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == sizeof(k)) {
		out->k0 = k[0];
		out->k1 = k[1];
		return 0;
	}
	{
		int rc = errno ? -errno : -EIO;
		struct timespec ts;

		log_warn("no random hash key from the kernel (getrandom: %s): a table's key is "
			 "made from the clock, which a client may guess", strerror(-rc));

		clock_gettime(CLOCK_REALTIME, &ts);
		out->k0 = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)out;
		out->k1 = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ull ^ (uintptr_t)&got;
		return rc;
	}
}

static struct sh_key sh_proc_key;
static pthread_once_t sh_proc_once = PTHREAD_ONCE_INIT;

static void sh_proc_init(void)
{
	(void)sh_key_new(&sh_proc_key);
}

const struct sh_key *sh_process_key(void)
{
	pthread_once(&sh_proc_once, sh_proc_init);
	return &sh_proc_key;
}
