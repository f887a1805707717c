/*
 * nlm_null_bench.c - the RPC ceiling: NLM NULL calls per second, on the same
 * path as the lock benchmark (src/rpc/rpc_clnt.h on a libuv loop, one
 * connection per simulated client host, each from its own address, with
 * AUTH_SYS as sgnfs-client sends it).
 *
 *   nlm_null_bench --server ADDR [--host ADDR] [--nhosts N] [--depth D]
 *                  [--duration S] [--warmup S] [--proto tcp|udp]
 *                  [--port P] [--pmap-port P] [--prog N] [--vers N] [--json]
 *                  [--poll-us N]
 *
 * Each host keeps D NULL calls in flight on its connection: every reply
 * sends the next call at once (the same pipelining as `sgnfs-client
 * bench-lock --depth D`, where a slot sends its LOCK or UNLOCK as soon as
 * the previous one is answered).  The server's NLM port comes from its
 * portmapper (GETPORT over UDP, as sgnfs-client does) unless --port is
 * given.  After --warmup seconds (not measured) it counts for --duration
 * seconds and prints
 *
 *   nlm-null hosts=N depth=D transport=tcp seconds=S calls=C calls/s=R
 *            p50_us=.. p99_us=.. max_us=.. errors=E
 *
 * (or one JSON object with --json).  Latency is per call, sent to answer
 * decoded.  --poll-us N polls up to N us before the loop sleeps (spin.h), as
 * `sgnfs-client bench-lock --poll-us N` does.  Exit status: 0, 1 if any call
 * failed, 64 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "rpc/rpc_clnt.h"
#include "spin.h"

#define NB_NLM_PROG 100021u
#define NB_MAX_HOSTS 100000u
#define NB_MAX_DEPTH 4096u

struct nb_run;

struct nb_slot {
	struct nb_host *host;
	uint64_t sent;                 /* uv_hrtime() of the call in flight */
};

struct nb_host {
	struct nb_run *run;
	struct sockaddr_in local;
	struct rpcc_clnt *clnt;
	struct nb_slot *slots;         /* depth of them */
};

struct nb_run {
	uv_loop_t loop;
	struct sockaddr_in server;
	uint16_t port, pmap_port;
	uint32_t prog, vers;
	enum rpcc_transport transport;
	unsigned nhosts, depth;
	double warmup, duration;
	bool json;

	struct nb_host *hosts;
	unsigned ports_pending;
	uint64_t t_measure, t_stop;    /* uv_hrtime() */
	bool measuring, stopping;
	uint64_t calls, errors;
	int first_err;
	unsigned inflight;
	uint32_t *lat;
	size_t nlat, caplat;
	uv_timer_t timer;
	uint64_t answers;              /* every answer, warm-up included: what --poll-us watches */
	struct spin spin;
};

static void nb_send(struct nb_slot *sl);

static void nb_stop(struct nb_run *r)
{
	uv_stop(&r->loop);
	spin_stop(&r->spin);
}

static uint64_t nb_input(void *arg, uint64_t *switches)
{
	const struct nb_run *r = arg;

	*switches = 0; /* every connection's answers are one source (cl_bench.c) */
	return r->answers;
}

static void nb_record(struct nb_run *r, uint64_t usec)
{
	if (r->nlat == r->caplat) {
		size_t cap = r->caplat ? r->caplat * 2 : 1u << 16;
		uint32_t *n = realloc(r->lat, cap * sizeof(*n));

		if (!n)
			return;
		r->lat = n;
		r->caplat = cap;
	}
	r->lat[r->nlat++] = usec > UINT32_MAX ? UINT32_MAX : (uint32_t)usec;
}

static void nb_done(const struct rpcc_reply *rep, void *arg)
{
	struct nb_slot *sl = arg;
	struct nb_run *r = sl->host->run;
	uint64_t now = uv_hrtime();

	r->inflight--;
	r->answers++;
	if (rep->err == -ECANCELED)
		return;
	if (r->measuring && now <= r->t_stop) {
		if (rep->err) {
			r->errors++;
			if (!r->first_err)
				r->first_err = rep->err;
		} else {
			r->calls++;
			nb_record(r, (now - sl->sent) / 1000u);
		}
	}
	if (r->stopping || r->errors > 100) {
		if (r->inflight == 0)
			nb_stop(r);
		return;
	}
	nb_send(sl);
}

static void nb_send(struct nb_slot *sl)
{
	struct nb_run *r = sl->host->run;
	int rc;

	sl->sent = uv_hrtime();
	rc = rpcc_call(sl->host->clnt, 0, NULL, NULL, NULL, 0, NULL, nb_done, sl);
	if (rc < 0) {
		r->errors++;
		if (!r->first_err)
			r->first_err = rc;
		return;
	}
	r->inflight++;
}

static void nb_timer(uv_timer_t *t)
{
	struct nb_run *r = t->data;

	if (!r->measuring) {
		r->measuring = true;
		r->t_measure = uv_hrtime();
		r->t_stop = r->t_measure + (uint64_t)(r->duration * 1e9);
		uv_timer_start(&r->timer, nb_timer, (uint64_t)(r->duration * 1000), 0);
		return;
	}
	r->stopping = true;
	if (r->inflight == 0)
		nb_stop(r);
}

static int nb_open(struct nb_host *h, uint16_t port)
{
	struct nb_run *r = h->run;
	struct sockaddr_in srv = r->server;
	struct rpcc_auth auth = { .flavor = RPCC_AUTH_SYS, .ngids = 1 };
	struct rpcc_opts o = { 0 };

	inet_ntop(AF_INET, &h->local.sin_addr, auth.machinename, sizeof(auth.machinename));
	srv.sin_port = htons(port);
	o.server = (const struct sockaddr *)&srv;
	o.local = (const struct sockaddr *)&h->local;
	o.prog = r->prog;
	o.vers = r->vers;
	o.transport = r->transport;
	o.auth = &auth;
	o.timeout.total_ms = 10000;
	return rpcc_new(&r->loop, &o, &h->clnt);
}

static void nb_start(struct nb_run *r)
{
	for (unsigned i = 0; i < r->nhosts; i++)
		for (unsigned k = 0; k < r->depth; k++)
			nb_send(&r->hosts[i].slots[k]);
	r->timer.data = r;
	if (r->warmup > 0) {
		uv_timer_start(&r->timer, nb_timer, (uint64_t)(r->warmup * 1000), 0);
	} else {
		nb_timer(&r->timer);
	}
}

static void nb_port_cb(int err, uint16_t port, void *arg)
{
	struct nb_host *h = arg;
	struct nb_run *r = h->run;

	if (err == 0)
		err = nb_open(h, port);
	if (err) {
		fprintf(stderr, "nlm_null_bench: %s: NLM port: %s\n",
			inet_ntoa(h->local.sin_addr), rpcc_strerror(err));
		exit(1);
	}
	if (--r->ports_pending == 0)
		nb_start(r);
}

static int nb_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t nb_pct(const struct nb_run *r, double p)
{
	if (r->nlat == 0)
		return 0;
	return r->lat[(size_t)(p * (double)(r->nlat - 1) + 0.5)];
}

static void usage(FILE *f)
{
	fprintf(f, "usage: nlm_null_bench --server ADDR [--host ADDR] [--nhosts N] [--depth D]\n"
		   "                      [--duration S] [--warmup S] [--proto tcp|udp] [--port P]\n"
		   "                      [--pmap-port P] [--prog N] [--vers N] [--json]\n"
		   "                      [--poll-us N]\n");
}

static bool nb_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", 1, NULL, 's' }, { "host", 1, NULL, 'h' },
		{ "nhosts", 1, NULL, 'n' }, { "depth", 1, NULL, 'd' },
		{ "duration", 1, NULL, 't' }, { "warmup", 1, NULL, 'w' },
		{ "proto", 1, NULL, 'P' }, { "port", 1, NULL, 'p' },
		{ "pmap-port", 1, NULL, 'm' }, { "prog", 1, NULL, 'g' },
		{ "vers", 1, NULL, 'v' }, { "json", 0, NULL, 'j' },
		{ "poll-us", 1, NULL, 'S' },
		{ "help", 0, NULL, 'H' }, { NULL, 0, NULL, 0 },
	};
	static struct nb_run r;
	struct in_addr host0;
	unsigned poll_us = 0;
	double v;
	int c;

	memset(&r, 0, sizeof(r));
	r.server.sin_family = AF_INET;
	r.pmap_port = 111;
	r.prog = NB_NLM_PROG;
	r.vers = 4;
	r.transport = RPCC_TCP;
	r.nhosts = 1;
	r.depth = 1;
	r.duration = 5;
	r.warmup = 1;
	inet_pton(AF_INET, "127.1.0.1", &host0);
	bool have_server = false;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (inet_pton(AF_INET, optarg, &r.server.sin_addr) != 1)
				goto bad;
			have_server = true;
			break;
		case 'h':
			if (inet_pton(AF_INET, optarg, &host0) != 1)
				goto bad;
			break;
		case 'n': if (!nb_num(optarg, 1, NB_MAX_HOSTS, &v)) goto bad; r.nhosts = (unsigned)v; break;
		case 'd': if (!nb_num(optarg, 1, NB_MAX_DEPTH, &v)) goto bad; r.depth = (unsigned)v; break;
		case 't': if (!nb_num(optarg, 0.1, 3600, &v)) goto bad; r.duration = v; break;
		case 'w': if (!nb_num(optarg, 0, 3600, &v)) goto bad; r.warmup = v; break;
		case 'p': if (!nb_num(optarg, 1, 65535, &v)) goto bad; r.port = (uint16_t)v; break;
		case 'm': if (!nb_num(optarg, 1, 65535, &v)) goto bad; r.pmap_port = (uint16_t)v; break;
		case 'g': if (!nb_num(optarg, 1, 4294967295.0, &v)) goto bad; r.prog = (uint32_t)v; break;
		case 'v': if (!nb_num(optarg, 1, 4294967295.0, &v)) goto bad; r.vers = (uint32_t)v; break;
		case 'P':
			if (strcmp(optarg, "tcp") == 0)
				r.transport = RPCC_TCP;
			else if (strcmp(optarg, "udp") == 0)
				r.transport = RPCC_UDP;
			else
				goto bad;
			break;
		case 'S': if (!nb_num(optarg, 0, SPIN_MAX_US, &v)) goto bad; poll_us = (unsigned)v; break;
		case 'j': r.json = true; break;
		case 'H': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc || !have_server)
		goto bad;

	signal(SIGPIPE, SIG_IGN);
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	uv_loop_init(&r.loop);
	r.hosts = calloc(r.nhosts, sizeof(*r.hosts));
	if (!r.hosts)
		return 1;
	uv_timer_init(&r.loop, &r.timer);
	r.ports_pending = r.nhosts;
	for (unsigned i = 0; i < r.nhosts; i++) {
		struct nb_host *h = &r.hosts[i];
		int rc;

		h->run = &r;
		h->local.sin_family = AF_INET;
		h->local.sin_addr.s_addr = htonl(ntohl(host0.s_addr) + i);
		h->slots = calloc(r.depth, sizeof(*h->slots));
		if (!h->slots)
			return 1;
		for (unsigned k = 0; k < r.depth; k++)
			h->slots[k].host = h;
		if (r.port) {
			rc = nb_open(h, r.port);
			if (rc) {
				fprintf(stderr, "nlm_null_bench: %s\n", rpcc_strerror(rc));
				return 1;
			}
			continue;
		}
		struct sockaddr_in pm = r.server;

		pm.sin_port = htons(r.pmap_port);
		rc = rpcc_getport(&r.loop, (const struct sockaddr *)&pm,
				  (const struct sockaddr *)&h->local, r.prog, r.vers,
				  r.transport == RPCC_TCP ? IPPROTO_TCP : IPPROTO_UDP,
				  NULL, nb_port_cb, h, NULL);
		if (rc) {
			fprintf(stderr, "nlm_null_bench: getport: %s\n", rpcc_strerror(rc));
			return 1;
		}
	}
	if (r.port)
		nb_start(&r);
	spin_init(&r.spin, poll_us, nb_input, &r);
	spin_run(&r.spin, &r.loop);

	double secs = r.measuring ? (double)((r.stopping ? r.t_stop : uv_hrtime()) - r.t_measure) / 1e9 : 0;
	double cps = secs > 0 ? (double)r.calls / secs : 0;

	qsort(r.lat, r.nlat, sizeof(*r.lat), nb_cmp);
	if (r.json)
		printf("{\"hosts\":%u,\"depth\":%u,\"transport\":\"%s\",\"seconds\":%.3f,"
		       "\"calls\":%llu,\"calls_per_s\":%.0f,\"p50_us\":%u,\"p99_us\":%u,"
		       "\"max_us\":%u,\"errors\":%llu}\n",
		       r.nhosts, r.depth, r.transport == RPCC_TCP ? "tcp" : "udp", secs,
		       (unsigned long long)r.calls, cps, nb_pct(&r, 0.5), nb_pct(&r, 0.99),
		       r.nlat ? r.lat[r.nlat - 1] : 0, (unsigned long long)r.errors);
	else
		printf("nlm-null hosts=%u depth=%u transport=%s seconds=%.3f calls=%llu "
		       "calls/s=%.0f p50_us=%u p99_us=%u max_us=%u errors=%llu\n",
		       r.nhosts, r.depth, r.transport == RPCC_TCP ? "tcp" : "udp", secs,
		       (unsigned long long)r.calls, cps, nb_pct(&r, 0.5), nb_pct(&r, 0.99),
		       r.nlat ? r.lat[r.nlat - 1] : 0, (unsigned long long)r.errors);
	if (r.errors)
		fprintf(stderr, "nlm_null_bench: %llu errors, first: %s\n",
			(unsigned long long)r.errors, rpcc_strerror(r.first_err));
	/* The process exits here; the handles die with it (a benchmark does
	 * not need an orderly close of thousands of connections). */
	fflush(stdout);
	_exit(r.errors ? 1 : 0);

bad:
	usage(stderr);
	return 64;
}
