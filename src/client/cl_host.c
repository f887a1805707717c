/*
 * cl_host.c - the process (cl_ctx), its simulated hosts and their handles on
 * servers; event lines; small helpers shared by the tool.
 *
 * Teardown order matters because callbacks run synchronously when a handle
 * closes: pending requests are completed first (users see -ECANCELED), then
 * RPC handles are closed (their in-flight calls find their requests done),
 * then servers and records are freed.  A host's listeners are freed by the
 * RPC layer after their last request; the host itself is freed from their
 * release callback, and the ctx when its last host is gone.
 */
#include "client/cl_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void cl_ctx_finalize(struct cl_ctx *ctx);

uint64_t cl_now_ms(const struct cl_ctx *ctx)
{
	return uv_now(ctx->loop);
}

const struct cl_config *cl_ctx_config(const struct cl_ctx *ctx)
{
	return &ctx->cfg;
}

int cl_ctx_new(uv_loop_t *loop, const struct cl_config *cfg, struct cl_ctx **out)
{
	struct cl_ctx *ctx = calloc(1, sizeof(*ctx));
	int rc;

	if (!ctx)
		return -ENOMEM;
	ctx->loop = loop;
	ctx->cfg = *cfg;
	if (!ctx->cfg.nlm_vers)
		ctx->cfg.nlm_vers = 4;
	if (ctx->cfg.nlm_vers != 1 && ctx->cfg.nlm_vers != 3 && ctx->cfg.nlm_vers != 4) {
		free(ctx);
		return -EINVAL;
	}
	if (!ctx->cfg.pmap_port)
		ctx->cfg.pmap_port = 111;
	if (!ctx->cfg.cb_pmap_port)
		ctx->cfg.cb_pmap_port = CL_DEF_CB_PMAP_PORT;
	if (!ctx->cfg.cb_nlm_port)
		ctx->cfg.cb_nlm_port = CL_DEF_CB_NLM_PORT;
	if (!ctx->cfg.cb_nsm_port)
		ctx->cfg.cb_nsm_port = CL_DEF_CB_NSM_PORT;
	if (!ctx->cfg.poll_ms)
		ctx->cfg.poll_ms = CL_DEF_POLL_MS;
	if (!ctx->cfg.reclaim_ms)
		ctx->cfg.reclaim_ms = CL_DEF_RECLAIM_MS;
	/* Cookies differ between runs, so a server's duplicate detection
	 * never mistakes a new run's request for an old one. */
	ctx->cookie_seq = uv_hrtime();
	if (ctx->cfg.callbacks) {
		rc = cl_svc_init(ctx);
		if (rc < 0) {
			free(ctx);
			return rc;
		}
	}
	*out = ctx;
	return 0;
}

/* ---- hosts ----------------------------------------------------------------- */

/* rpc_listener release callback: the listener and its last request are gone.
 * Hosts stay allocated until the ctx is finalized, so @arg is valid. */
void cl_host_listener_released(void *arg)
{
	struct cl_host *h = arg;
	struct cl_ctx *ctx = h->ctx;

	ctx->listeners_open--;
	if (ctx->closing && ctx->listeners_open == 0)
		cl_ctx_finalize(ctx);
}

static void cl_host_close_listeners(struct cl_host *h)
{
	for (int i = 0; i < 3; i++) {
		if (h->lsn[i]) {
			struct rpc_listener *l = h->lsn[i];
			h->lsn[i] = NULL;
			rpc_listener_close(l);
		}
	}
}

static void cl_server_free(struct cl_server *s)
{
	if (s->gp) {
		struct rpcc_getport_req *gp = s->gp;
		s->gp = NULL;
		rpcc_getport_cancel(gp);
	}
	if (s->nlm) {
		struct rpcc_clnt *c = s->nlm;
		s->nlm = NULL;
		rpcc_close(c);
	}
	cl_nfs_server_free(s);
	free(s);
}

static void cl_host_teardown(struct cl_host *h)
{
	cl_nlm_cancel_all(h);
	cl_nsm_cancel_all(h);
	while (h->servers) {
		struct cl_server *s = h->servers;
		h->servers = s->next;
		cl_server_free(s);
	}
	cl_record_free(h);
	cl_host_close_listeners(h);
}

int cl_host_add(struct cl_ctx *ctx, const struct sockaddr_in *addr, const char *name,
		struct cl_host **out)
{
	struct cl_host *h;
	int rc;

	if (ctx->closing)
		return -ESHUTDOWN;
	if (addr->sin_family != AF_INET)
		return -EAFNOSUPPORT;
	if (name && (strlen(name) == 0 || strlen(name) > CL_MAX_NAME))
		return -EINVAL;
	if (ctx->nhosts == ctx->cap) {
		size_t cap = ctx->cap ? ctx->cap * 2 : 8;
		struct cl_host **n = realloc(ctx->hosts, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		ctx->hosts = n;
		ctx->cap = cap;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ctx = ctx;
	h->addr = *addr;
	h->addr.sin_port = 0;
	inet_ntop(AF_INET, &h->addr.sin_addr, h->addrstr, sizeof(h->addrstr));
	snprintf(h->name, sizeof(h->name), "%s", name ? name : h->addrstr);
	/* NSM state: odd while up and larger after every restart of the tool,
	 * as a real statd's persistent counter would be. */
	h->state = (int32_t)((((uint64_t)time(NULL) - 1600000000u) * 2 + 1) & 0x7fffffff) | 1;
	if (ctx->cfg.callbacks) {
		rc = cl_svc_start_host(h);
		if (rc < 0) {
			/* Listeners that did open refer to h until released:
			 * keep it on the dead list, freed with the ctx. */
			cl_host_close_listeners(h);
			h->next_dead = ctx->dead;
			ctx->dead = h;
			return rc;
		}
	}
	ctx->hosts[ctx->nhosts++] = h;
	*out = h;
	return 0;
}

size_t cl_host_count(const struct cl_ctx *ctx)
{
	return ctx->nhosts;
}

struct cl_host *cl_host_at(const struct cl_ctx *ctx, size_t i)
{
	return i < ctx->nhosts ? ctx->hosts[i] : NULL;
}

struct cl_host *cl_host_find(const struct cl_ctx *ctx, const char *key)
{
	if (key[0] == '#') {
		char *end;
		unsigned long i = strtoul(key + 1, &end, 10);
		return *end == '\0' && key[1] ? cl_host_at(ctx, i) : NULL;
	}
	for (size_t i = 0; i < ctx->nhosts; i++)
		if (!strcmp(ctx->hosts[i]->addrstr, key) || !strcmp(ctx->hosts[i]->name, key))
			return ctx->hosts[i];
	return NULL;
}

const char *cl_host_name(const struct cl_host *h)
{
	return h->name;
}

const char *cl_host_addr(const struct cl_host *h)
{
	return h->addrstr;
}

int32_t cl_host_state(const struct cl_host *h)
{
	return h->state;
}

struct cl_lock *cl_host_locks(const struct cl_host *h)
{
	return h->locks;
}

unsigned cl_host_pending(const struct cl_host *h)
{
	return h->nreqs;
}

/* ---- servers --------------------------------------------------------------- */

struct cl_server *cl_server_by_addr(struct cl_host *h, const struct in_addr *a)
{
	for (struct cl_server *s = h->servers; s; s = s->next)
		if (s->addr.sin_addr.s_addr == a->s_addr)
			return s;
	return NULL;
}

int cl_server_get(struct cl_host *h, const struct sockaddr_in *vip, struct cl_server **out)
{
	struct cl_server *s;

	if (h->ctx->closing)
		return -ESHUTDOWN;
	if (vip->sin_family != AF_INET)
		return -EAFNOSUPPORT;
	s = cl_server_by_addr(h, &vip->sin_addr);
	if (s) {
		*out = s;
		return 0;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->host = h;
	s->addr = *vip;
	s->addr.sin_port = 0;
	s->vers = h->ctx->cfg.nlm_vers;
	inet_ntop(AF_INET, &s->addr.sin_addr, s->name, sizeof(s->name));
	s->next = h->servers;
	h->servers = s;
	*out = s;
	return 0;
}

const char *cl_server_name(const struct cl_server *s)
{
	return s->name;
}

unsigned cl_server_reclaiming(const struct cl_server *s)
{
	return s->reclaiming;
}

void cl_server_drop_nlm(struct cl_server *s)
{
	if (s->gp) {
		struct rpcc_getport_req *gp = s->gp;
		s->gp = NULL;
		rpcc_getport_cancel(gp);
	}
	if (s->nlm) {
		/* cleared first: the cancelled calls' callbacks may look up the
		 * port again, and must not find the closing handle */
		struct rpcc_clnt *c = s->nlm;
		s->nlm = NULL;
		rpcc_close(c);
	}
	cl_nlm_lookup_again(s);
}

/* ---- closing ------------------------------------------------------------- */

static void cl_ctx_finalize(struct cl_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nhosts; i++)
		free(ctx->hosts[i]);
	free(ctx->hosts);
	while (ctx->dead) {
		struct cl_host *h = ctx->dead;
		ctx->dead = h->next_dead;
		free(h);
	}
	if (ctx->svc)
		rpc_svc_free(ctx->svc);
	free(ctx);
}

void cl_ctx_close(struct cl_ctx *ctx)
{
	if (ctx->closing)
		return;
	/* the record as it stands when we stop, before teardown empties it */
	if (ctx->cfg.record_path)
		cl_record_write(ctx, ctx->cfg.record_path);
	ctx->closing = true;
	for (size_t i = 0; i < ctx->nhosts; i++)
		cl_host_teardown(ctx->hosts[i]);
	if (ctx->listeners_open == 0)
		cl_ctx_finalize(ctx);
}

void cl_record_changed(struct cl_ctx *ctx)
{
	if (ctx->closing || !ctx->cfg.record_path)
		return;
	if (cl_record_write(ctx, ctx->cfg.record_path) < 0 && !ctx->record_dirty) {
		ctx->record_dirty = true;
		cl_event(ctx, NULL, "event=error what=record-write path=%s", ctx->cfg.record_path);
	}
}

/* ---- events and helpers ------------------------------------------------ */

void cl_event(const struct cl_ctx *ctx, const struct cl_host *h, const char *fmt, ...)
{
	FILE *f = ctx->cfg.events;
	struct timespec ts;
	struct tm tm;
	char when[40];
	va_list ap;

	if (!f)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "%s.%03ldZ host=%s ", when, ts.tv_nsec / 1000000, h ? h->addrstr : "-");
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
}

const char *cl_stat_name(int stat)
{
	static const char *const names[] = {
		"granted", "denied", "denied_nolocks", "blocked", "grace",
		"deadlock", "rofs", "stale_fh", "fbig", "failed",
	};

	return stat >= 0 && stat < (int)(sizeof(names) / sizeof(names[0])) ? names[stat]
									    : "error";
}

int cl_result_exit(const struct cl_result *r)
{
	if (r->err)
		return CL_EXIT_ERROR;
	switch (r->stat) {
	case 0:  return CL_EXIT_OK;       /* NLM4_GRANTED */
	case 1:                           /* NLM4_DENIED */
	case 2:                           /* NLM4_DENIED_NOLOCKS */
	case 3:                           /* NLM4_BLOCKED (not waited for) */
	case 5:  return CL_EXIT_DENIED;   /* NLM4_DEADLCK */
	case 4:  return CL_EXIT_GRACE;    /* NLM4_DENIED_GRACE_PERIOD */
	default: return CL_EXIT_ERROR;    /* ROFS, STALE_FH, FBIG, FAILED, unknown */
	}
}

int cl_blob_from_hex(struct cl_blob *b, const char *hex)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > CL_MAX_NETOBJ)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		char two[3] = { hex[2 * i], hex[2 * i + 1], 0 };
		char *end;

		v = (unsigned)strtoul(two, &end, 16);
		if (*end)
			return -EINVAL;
		b->val[i] = (uint8_t)v;
	}
	b->len = (uint32_t)(n / 2);
	return 0;
}

char *cl_blob_hex(const struct cl_blob *b, char *buf, size_t bufsz)
{
	size_t o = 0;

	if (bufsz)
		buf[0] = '\0';
	for (uint32_t i = 0; i < b->len && o + 3 <= bufsz; i++, o += 2)
		snprintf(buf + o, 3, "%02x", b->val[i]);
	return buf;
}
