/* metrics_http.c - see metrics_http.h. */
#include "daemon/metrics_http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "log.h"

#define MH_MAX_CONNS 16
#define MH_CONN_TIMEOUT_S 10

struct mh_server {
	struct MHD_Daemon *mhd;     /* owned */
	uv_poll_t poll;             /* on MHD's epoll descriptor */
	uv_timer_t timer;           /* MHD's own timeouts */
	mh_render_fn render;
	void *arg;
	int handles;                /* open uv handles, for the close */
};

static void mh_run(struct mh_server *s);

static void mh_poll_cb(uv_poll_t *p, int status, int events)
{
	mh_run(p->data);
}

static void mh_timer_cb(uv_timer_t *t)
{
	mh_run(t->data);
}

/* Let MHD do what is due, then wait for its descriptor or its next
 * timeout, whichever first. */
static void mh_run(struct mh_server *s)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(s->mhd);
	if (MHD_get_timeout(s->mhd, &ms) == MHD_YES)
		uv_timer_start(&s->timer, mh_timer_cb, ms, 0);
	else
		uv_timer_stop(&s->timer);
}

static enum MHD_Result mh_answer(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version,
				 const char *upload_data, size_t *upload_data_size, void **ctx)
{
	struct mh_server *s = cls;
	struct MHD_Response *r;
	struct sbuf out = { 0 };
	unsigned code = MHD_HTTP_OK;
	enum MHD_Result rc;
	char *text;

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		sb_printf(&out, "only GET /metrics\n");
	} else if (strcmp(url, "/metrics") != 0) {
		code = MHD_HTTP_NOT_FOUND;
		sb_printf(&out, "not found; the metrics are at /metrics\n");
	} else {
		s->render(s->arg, &out);
	}
	text = sb_take(&out);
	if (!text)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
						    : "text/plain; charset=utf-8");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return rc;
}

/* MHD's own messages (bind failures, bad requests) go to our log. */
static void mh_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("metrics: %s", line);
}

int mh_start(uv_loop_t *loop, const struct sockaddr *addr, mh_render_fn render, void *arg,
	     struct mh_server **out)
{
	struct mh_server *s = calloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	int rc;

	if (!s)
		return -ENOMEM;
	s->render = render;
	s->arg = arg;
	if (addr->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, mh_answer, s,
				  MHD_OPTION_SOCK_ADDR, addr,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)MH_MAX_CONNS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)MH_CONN_TIMEOUT_S,
				  MHD_OPTION_EXTERNAL_LOGGER, mh_log, NULL,
				  MHD_OPTION_END);
	if (!s->mhd) {
		rc = errno ? -errno : -EADDRINUSE;
		free(s);
		return rc;
	}
	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		MHD_stop_daemon(s->mhd);
		free(s);
		return -ENOTSUP;
	}
	uv_poll_init(loop, &s->poll, info->epoll_fd);
	uv_timer_init(loop, &s->timer);
	s->poll.data = s->timer.data = s;
	s->handles = 2;
	uv_poll_start(&s->poll, UV_READABLE, mh_poll_cb);
	mh_run(s);
	*out = s;
	return 0;
}

static void mh_closed(uv_handle_t *h)
{
	struct mh_server *s = h->data;

	if (--s->handles == 0) {
		MHD_stop_daemon(s->mhd);
		free(s);
	}
}

void mh_stop(struct mh_server *s)
{
	if (!s)
		return;
	uv_poll_stop(&s->poll);
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->poll, mh_closed);
	uv_close((uv_handle_t *)&s->timer, mh_closed);
}
