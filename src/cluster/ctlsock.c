/*
 * ctlsock.c - see ctlsock.h.  Each connection buffers at most one request
 * line; a client that sends more than CTL_MAX_REQ bytes without a newline,
 * or stays silent for CTL_TIMEOUT_MS, is disconnected.
 */
#include "cluster/ctlsock.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define CTL_MAX_REQ 4096
#define CTL_MAX_ARGS 8
#define CTL_TIMEOUT_MS 10000

const struct ctl_req_desc ctl_reqs[CTL_REQ_COUNT] = {
	[CTL_REQ_STATUS]    = { "status", 0, "", "the node status (docs/status.md)" },
	[CTL_REQ_METRICS]   = { "metrics", 0, "", "Prometheus text (docs/metrics.md)" },
	[CTL_REQ_RELOAD]    = { "reload", 0, "", "re-read the configuration file" },
	[CTL_REQ_LOG_LEVEL] = { "log-level", 1, "LEVEL", "log at LEVEL from now on" },
	[CTL_REQ_MOVE]      = { "move", 2, "GROUP NODE", "planned move of GROUP to NODE" },
	[CTL_REQ_DRAIN]     = { "drain", 0, "", "give up every group, take none" },
	[CTL_REQ_UNDRAIN]   = { "undrain", 0, "", "take groups again" },
	[CTL_REQ_START]     = { "start", 1, "GROUP", "managed: bring GROUP online here" },
	[CTL_REQ_STOP]      = { "stop", 1, "GROUP", "managed: take GROUP offline here" },
	[CTL_REQ_GROUP]     = { "group", 1, "GROUP", "GROUP's state on this node" },
};

int ctl_req_find(int argc, char *const *argv)
{
	for (int i = 0; argc > 0 && i < CTL_REQ_COUNT; i++)
		if (strcmp(argv[0], ctl_reqs[i].name) == 0 && argc - 1 == ctl_reqs[i].nargs)
			return i;
	return -1;
}

int ctl_req_line(char *buf, size_t len, enum ctl_req req, ...)
{
	size_t used;
	va_list ap;
	int rc = 0;

	used = (size_t)snprintf(buf, len, "%s", ctl_reqs[req].name);
	va_start(ap, req);
	for (int i = 0; i < ctl_reqs[req].nargs && rc == 0; i++) {
		const char *w = va_arg(ap, const char *);

		if (!w[0] || strpbrk(w, " \t\r\n"))
			rc = -EINVAL;
		else if (used < len)
			used += (size_t)snprintf(buf + used, len - used, " %s", w);
	}
	va_end(ap);
	if (rc == 0 && used >= len)
		rc = -ENAMETOOLONG;
	return rc;
}

struct ctl_server {
	uv_pipe_t pipe;
	ctl_handler_fn fn;
	void *arg;
	char *path;       /* owned */
};

struct ctl_conn {
	uv_pipe_t pipe;
	uv_timer_t timer;
	struct ctl_server *srv;
	char buf[CTL_MAX_REQ + 1];
	size_t len;
	bool done;
	int handles;
	uv_write_t wr;
	char *reply;      /* owned until the write completes */
	struct json_object *jreply; /* a deferred answer (ctl_defer), owned */
};

/* The request being dispatched right now (the loop runs one at a time),
 * so that a handler can ask to answer later without every handler taking
 * one more argument; whether it did. */
static struct ctl_conn *ctl_current;
static bool ctl_current_deferred;

static void ctl_conn_closed(uv_handle_t *h)
{
	struct ctl_conn *c = h->data;

	if (--c->handles == 0) {
		free(c->reply);
		json_object_put(c->jreply);
		free(c);
	}
}

static void ctl_conn_close(struct ctl_conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->pipe))
		return;
	uv_close((uv_handle_t *)&c->pipe, ctl_conn_closed);
	uv_close((uv_handle_t *)&c->timer, ctl_conn_closed);
}

static void ctl_written(uv_write_t *w, int status)
{
	ctl_conn_close(w->data);
}

static void ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct ctl_conn *c = h->data;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(CTL_MAX_REQ - c->len));
}

/* Send @len bytes of @line (owned from here, freed with the connection;
 * NULL: no answer) and close. */
static void ctl_send(struct ctl_conn *c, char *line, size_t len)
{
	uv_buf_t b;

	c->reply = line;
	if (!c->reply || len > UINT_MAX) {
		ctl_conn_close(c);
		return;
	}
	b = uv_buf_init(c->reply, (unsigned)len);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &b, 1, ctl_written) != 0)
		ctl_conn_close(c);
}

/* Send @reply (owned; put here) as the answer and close. */
static void ctl_answer(struct ctl_conn *c, struct json_object *reply)
{
	const char *text = sj_text(reply);
	size_t len = text ? strlen(text) : 0;
	char *line = text ? malloc(len + 2) : NULL;

	if (line) {
		memcpy(line, text, len);
		memcpy(line + len, "\n", 2);
	}
	json_object_put(reply);
	ctl_send(c, line, len + 1);
}

struct ctl_call *ctl_defer(void)
{
	if (!ctl_current)
		return NULL;
	ctl_current_deferred = true;
	return (struct ctl_call *)ctl_current;
}

void ctl_undefer(void)
{
	if (ctl_current)
		ctl_current_deferred = false;
}

void ctl_call_done(struct ctl_call *call)
{
	struct ctl_conn *c = (struct ctl_conn *)call;
	struct json_object *reply = c->jreply;

	c->jreply = NULL;
	ctl_answer(c, reply);
}

void ctl_call_done_text(struct ctl_call *call, char *line, size_t len)
{
	struct ctl_conn *c = (struct ctl_conn *)call;

	/* The reply object was not used: the answer came written. */
	json_object_put(c->jreply);
	c->jreply = NULL;
	ctl_send(c, line, len);
}

static void ctl_dispatch(struct ctl_conn *c)
{
	char *argv[CTL_MAX_ARGS + 1], *save = NULL, *tok;
	struct json_object *reply = json_object_new_object();
	int argc = 0;

	for (tok = strtok_r(c->buf, " \t\r", &save); tok && argc < CTL_MAX_ARGS;
	     tok = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (!reply) {
		ctl_conn_close(c);
		return;
	}
	if (argc == 0) {
		sj_add(reply, "error", json_object_new_string("empty request"));
	} else {
		ctl_current = c;
		ctl_current_deferred = false;
		c->srv->fn(c->srv->arg, argc, argv, reply);
		ctl_current = NULL;
		if (ctl_current_deferred) {
			/* Answered by ctl_call_done; the client waits as long
			 * as the work takes, so the idle timeout stops. */
			uv_timer_stop(&c->timer);
			c->jreply = reply;
			return;
		}
	}
	ctl_answer(c, reply);
}

static void ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct ctl_conn *c = s->data;
	char *nl;

	if (n < 0 || c->done) {
		if (!c->done)
			ctl_conn_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	nl = memchr(c->buf, '\n', c->len);
	if (!nl) {
		if (c->len >= CTL_MAX_REQ) {
			log_warn("control: request over %d bytes refused", CTL_MAX_REQ);
			ctl_conn_close(c);
		}
		return;
	}
	*nl = '\0';
	c->done = true;
	uv_read_stop(s);
	ctl_dispatch(c);
}

static void ctl_timeout(uv_timer_t *t)
{
	ctl_conn_close(t->data);
}

static void ctl_accept(uv_stream_t *srv, int status)
{
	struct ctl_server *s = srv->data;
	struct ctl_conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->srv = s;
	uv_pipe_init(srv->loop, &c->pipe, 0);
	uv_timer_init(srv->loop, &c->timer);
	c->pipe.data = c->timer.data = c;
	c->handles = 2;
	if (uv_accept(srv, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc, ctl_read) != 0) {
		ctl_conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, ctl_timeout, CTL_TIMEOUT_MS, 0);
}

static void ctl_srv_closed(uv_handle_t *h)
{
	struct ctl_server *s = h->data;
	free(s->path);
	free(s);
}

int ctl_listen(uv_loop_t *loop, const char *path, ctl_handler_fn fn, void *arg,
	       struct ctl_server **out)
{
	struct ctl_server *s = calloc(1, sizeof(*s));
	mode_t old;
	int rc;

	if (!s)
		return -ENOMEM;
	s->fn = fn;
	s->arg = arg;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}
	uv_pipe_init(loop, &s->pipe, 0);
	s->pipe.data = s;
	unlink(path);
	old = umask(0077); /* the socket can move groups: owner only */
	rc = uv_pipe_bind(&s->pipe, path);
	umask(old);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->pipe, 16, ctl_accept);
	if (rc != 0) {
		uv_close((uv_handle_t *)&s->pipe, ctl_srv_closed);
		return rc;
	}
	*out = s;
	return 0;
}

void ctl_close(struct ctl_server *s)
{
	if (!s)
		return;
	unlink(s->path);
	uv_close((uv_handle_t *)&s->pipe, ctl_srv_closed);
}
