/*
 * peer.c - the answering side of peer status (protocol in peer.h).
 *
 * Hazards, and what bounds them:
 *   - anyone who can reach the node address can connect: each source
 *     address gets PEER_BURST connections at once and PEER_RATE a second
 *     after that (tbucket.h); past it the connection is closed unread;
 *   - at most PEER_MAX_CONNS connections are open at a time;
 *   - a connection's buffer is the fixed request: libuv is offered only
 *     the bytes still missing, so nothing past PEER_REQ_LEN is ever read,
 *     and a connection that has not sent them in PEER_TIMEOUT_MS closes;
 *   - a refused request gets no answer, and a log line (PEER_LOG_BURST
 *     lines, then a count of those left out).
 */
#include "cluster/peer.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "saddr.h"
#include "tbucket.h"

#define PEER_MAX_CONNS  32
#define PEER_TIMEOUT_MS 5000
#define PEER_BURST      10.0
#define PEER_RATE       2.0
#define PEER_SOURCES    256
#define PEER_LOG_BURST  10.0
#define PEER_LOG_RATE   1.0

struct peer_server {
	uv_tcp_t tcp;
	struct hk_set keys;            /* wiped at close */
	peer_status_fn fn;
	void *arg;
	struct tb_table sources;       /* per source address */
	struct tb_bucket logs;         /* refusal log lines */
	unsigned nconns;               /* open connections, on @conns */
	struct peer_conn *conns;
	struct peer_stats stats;
	bool closing;                  /* freed when the listener and every
					* connection have closed */
	bool listener_closed;
};

struct peer_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	struct peer_server *srv;
	struct sockaddr_storage from;
	uint8_t hello[PEER_HELLO_LEN];
	uint8_t req[PEER_REQ_LEN];
	size_t len;                    /* bytes of req[] received */
	uint8_t key[HK_KEY_SIZE];      /* the key that verified the request (a
					* copy: a reload may replace the
					* server's while the reply is framed
					* off the loop); wiped at free */
	uint8_t *out;                  /* reply being written; owned */
	int handles;                   /* open libuv handles (tcp, timer) */
	bool deferred;                 /* the status fn has the call until
					* peer_call_done: the struct stays */
	bool closed;                   /* ... though its handles are closed */
	struct peer_conn *next, **pprev; /* on srv->conns */
};

static void peer_srv_maybe_free(struct peer_server *s);

/* Log a refusal unless the log bucket is empty. */
static void peer_log_refusal(struct peer_server *s, const struct sockaddr_storage *from,
			     const char *what)
{
	char a[64];

	if (!tb_take(&s->logs, PEER_LOG_BURST, PEER_LOG_RATE, uv_now(s->tcp.loop)))
		return;
	log_warn("peer: status request from %s refused: %s (%llu more not logged)",
		 sa_str(from, true, a, sizeof(a)), what,
		 (unsigned long long)tb_refused_take(&s->logs));
}

/* A request refused (bad, or not whole in time): counted and logged. */
static void peer_refuse(struct peer_server *s, const struct sockaddr_storage *from,
			const char *what)
{
	s->stats.refused++;
	peer_log_refusal(s, from, what);
}

/* Both handles closed and nobody holds the call: unlink and free. */
static void peer_conn_free(struct peer_conn *c)
{
	struct peer_server *s = c->srv;

	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	s->nconns--;
	free(c->out);
	explicit_bzero(c->key, sizeof(c->key));
	free(c);
	peer_srv_maybe_free(s);
}

static void peer_conn_closed(uv_handle_t *h)
{
	struct peer_conn *c = h->data;

	if (--c->handles > 0)
		return;
	/* A status still being made for it (the node stops, or the asker
	 * went): peer_call_done frees it, once. */
	if (c->deferred) {
		c->closed = true;
		return;
	}
	peer_conn_free(c);
}

static void peer_conn_close(struct peer_conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	uv_close((uv_handle_t *)&c->tcp, peer_conn_closed);
	uv_close((uv_handle_t *)&c->timer, peer_conn_closed);
}

static void peer_timeout(uv_timer_t *t)
{
	struct peer_conn *c = t->data;

	peer_refuse(c->srv, &c->from, "no whole request in time");
	peer_conn_close(c);
}

static void peer_written(uv_write_t *w, int status)
{
	peer_conn_close(w->data);
}

/* The request is whole: check it, then ask for the status (answered by
 * peer_call_done) or close. */
static void peer_handle(struct peer_conn *c)
{
	struct peer_server *s = c->srv;
	const uint8_t *key, *nonce = c->req + PEER_MAGIC_LEN;
	const char *why = NULL, *nm = (const char *)(nonce + PEER_NONCE_LEN);
	char name[LOG_SAFE_MAX], a[64];

	key = peer_req_check(&s->keys, c->hello + PEER_MAGIC_LEN, c->req, &why);
	if (!key) {
		peer_refuse(s, &c->from, why);
		peer_conn_close(c);
		return;
	}
	memcpy(c->key, key, sizeof(c->key));
	/* Counted before the status is made, so it includes this answer. */
	s->stats.answered++;
	log_debug("peer: status asked by %s from %s",
		  log_safe(name, sizeof(name), nm, strnlen(nm, PEER_NAME_LEN)),
		  sa_str(&c->from, true, a, sizeof(a)));
	c->deferred = true;
	s->fn(s->arg, (struct peer_call *)c);
}

int peer_call_frame(const struct peer_call *call, const char *json, size_t len,
		    uint8_t **out, size_t *outlen)
{
	const struct peer_conn *c = (const struct peer_conn *)call;
	uint8_t *o;

	*out = NULL;
	if (len > PEER_REPLY_MAX)
		return -EMSGSIZE;
	o = malloc(4 + len + PEER_MAC_LEN);
	if (!o)
		return -ENOMEM;
	o[0] = (uint8_t)(len >> 24);
	o[1] = (uint8_t)(len >> 16);
	o[2] = (uint8_t)(len >> 8);
	o[3] = (uint8_t)len;
	memcpy(o + 4, json, len);
	peer_reply_mac(c->key, c->hello + PEER_MAGIC_LEN, c->req + PEER_MAGIC_LEN, json,
		       (uint32_t)len, o + 4 + len);
	*out = o;
	*outlen = 4 + len + PEER_MAC_LEN;
	return 0;
}

void peer_call_done(struct peer_call *call, uint8_t *out, size_t outlen)
{
	struct peer_conn *c = (struct peer_conn *)call;
	uv_buf_t b;

	c->deferred = false;
	c->out = out;               /* owned by the connection from here */
	if (c->closed) {
		peer_conn_free(c);
		return;
	}
	if (!out || outlen > UINT_MAX) {
		peer_conn_close(c);   /* the status fn logged why */
		return;
	}
	b = uv_buf_init((char *)c->out, (unsigned)outlen);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, peer_written) != 0)
		peer_conn_close(c);
}

static void peer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct peer_conn *c = h->data;

	/* Only what is still missing of the one fixed-size request. */
	*b = uv_buf_init((char *)c->req + c->len, (unsigned)(PEER_REQ_LEN - c->len));
}

static void peer_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct peer_conn *c = st->data;

	if (n == 0)
		return;
	if (n < 0) {
		if (c->len > 0)
			peer_refuse(c->srv, &c->from, "closed in the middle of its request");
		peer_conn_close(c);
		return;
	}
	c->len += (size_t)n;
	if (c->len < PEER_REQ_LEN)
		return;
	uv_read_stop(st);
	uv_timer_stop(&c->timer);
	peer_handle(c);
}

static void peer_hello_written(uv_write_t *w, int status)
{
	struct peer_conn *c = w->data;

	if (status < 0)
		peer_conn_close(c);
}

static void peer_accept(uv_stream_t *ls, int status)
{
	struct peer_server *s = ls->data;
	struct peer_conn *c;
	int len = sizeof(struct sockaddr_storage);
	uv_buf_t b;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		/* Take the connection off the backlog anyway. */
		uv_tcp_t tmp;
		uv_tcp_init(ls->loop, &tmp);
		if (uv_accept(ls, (uv_stream_t *)&tmp) == 0)
			uv_close((uv_handle_t *)&tmp, NULL);
		return;
	}
	c->srv = s;
	uv_tcp_init(ls->loop, &c->tcp);
	uv_timer_init(ls->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	s->nconns++;
	c->next = s->conns;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &s->conns;
	s->conns = c;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 ||
	    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->from, &len) != 0) {
		peer_conn_close(c);
		return;
	}
	if (!tb_table_take(&s->sources, &c->from, uv_now(ls->loop))) {
		s->stats.limited++;
		peer_log_refusal(s, &c->from, "over its per-source rate");
		peer_conn_close(c);
		return;
	}
	if (s->nconns > PEER_MAX_CONNS) {
		s->stats.limited++;
		peer_log_refusal(s, &c->from, "too many connections open");
		peer_conn_close(c);
		return;
	}
	memcpy(c->hello, PEER_MAGIC, PEER_MAGIC_LEN);
	if (getrandom(c->hello + PEER_MAGIC_LEN, PEER_NONCE_LEN, 0) != PEER_NONCE_LEN) {
		log_err("peer: getrandom: %s", strerror(errno));
		peer_conn_close(c);
		return;
	}
	b = uv_buf_init((char *)c->hello, sizeof(c->hello));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, peer_hello_written) != 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, peer_alloc, peer_read) != 0) {
		peer_conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, peer_timeout, PEER_TIMEOUT_MS, 0);
}

int peer_listen(uv_loop_t *loop, const struct sockaddr_storage *addr, const struct hk_set *ks,
		peer_status_fn fn, void *arg, struct peer_server **out)
{
	struct peer_server *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	if (tb_table_init(&s->sources, PEER_SOURCES, PEER_BURST, PEER_RATE) < 0) {
		free(s);
		return -ENOMEM;
	}
	s->keys = *ks;
	s->fn = fn;
	s->arg = arg;
	uv_tcp_init(loop, &s->tcp);
	s->tcp.data = s;
	rc = uv_tcp_bind(&s->tcp, (const struct sockaddr *)addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->tcp, 16, peer_accept);
	if (rc != 0) {
		peer_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void peer_server_set_keys(struct peer_server *s, const struct hk_set *ks)
{
	if (s)
		s->keys = *ks;
}

void peer_server_stats(const struct peer_server *s, struct peer_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (s)
		*out = s->stats;
}

static void peer_srv_maybe_free(struct peer_server *s)
{
	if (!s->listener_closed || s->nconns > 0)
		return;
	explicit_bzero(&s->keys, sizeof(s->keys));
	tb_table_free(&s->sources);
	free(s);
}

static void peer_srv_closed(uv_handle_t *h)
{
	struct peer_server *s = h->data;

	s->listener_closed = true;
	peer_srv_maybe_free(s);
}

void peer_close(struct peer_server *s)
{
	if (!s || s->closing)
		return;
	s->closing = true;
	for (struct peer_conn *c = s->conns; c; c = c->next)
		peer_conn_close(c);
	uv_close((uv_handle_t *)&s->tcp, peer_srv_closed);
}
