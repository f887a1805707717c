/*
 * tbucket.h - token buckets: "at most BURST at once, refilled at RATE a
 * second", for rate-limited log lines and for per-source limits.
 *
 * The caller passes the time (a monotonic clock in milliseconds, the
 * loop's uv_now() on the event loop): nothing here reads a clock, so the
 * buckets are tested without sleeping.  Not thread-safe: one owner each.
 */
#ifndef SGNFS_TBUCKET_H
#define SGNFS_TBUCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct tb_bucket {
	double tokens;
	uint64_t last_ms;
	bool started;        /* false: full at the first take */
	uint64_t refused;    /* takes refused since the last tb_refused_take() */
};

/*
 * Take one token at @now_ms from @b (at most @burst tokens, @rate added
 * per second).  True if there was one; false counts a refusal in
 * b->refused.
 */
bool tb_take(struct tb_bucket *b, double burst, double rate, uint64_t now_ms);
/* The refusals counted since the last call (for "N more not logged"); resets it. */
uint64_t tb_refused_take(struct tb_bucket *b);

/*
 * One bucket per source address, in a fixed table: memory does not grow
 * with the number of sources.  When the table is full, the entry used
 * longest ago among a few candidates is given to the new address (it
 * starts with a full bucket): an attacker with many addresses gets at
 * most one burst per address it makes us evict, and the caller's global
 * limit still bounds the total.
 */
struct tb_entry;
struct tb_table {
	struct tb_entry *e;  /* owned; tb_table_init/tb_table_free */
	size_t n;
	double burst, rate;
};

/* 0 or -ENOMEM; @n entries (a power of two is not needed). */
int tb_table_init(struct tb_table *t, size_t n, double burst, double rate);
void tb_table_free(struct tb_table *t);
/* tb_take() on @a's bucket (the port is ignored). */
bool tb_table_take(struct tb_table *t, const struct sockaddr_storage *a, uint64_t now_ms);

#endif
