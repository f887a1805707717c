/*
 * metrics_http.h - the optional HTTP listener for Prometheus
 * (metrics_listen = ADDR:PORT): GET /metrics answers the node's metrics in
 * the text exposition format; every other path is 404, every other method
 * 405.  HTTP is libmicrohttpd's; we only hand it the text.
 *
 * libmicrohttpd runs without a thread of its own (MHD_USE_EPOLL, external
 * polling): its epoll descriptor is watched by the node's libuv loop, so
 * the metrics are rendered on the loop thread, where the state they read
 * lives, without locks.
 */
#ifndef SGNFS_METRICS_HTTP_H
#define SGNFS_METRICS_HTTP_H

#include <sys/socket.h>
#include <uv.h>

#include "sbuf.h"

struct mh_server;

/* Render the metrics into @out (called on the loop thread). */
typedef void (*mh_render_fn)(void *arg, struct sbuf *out);

/* Listen on @addr; 0 and *out, or -errno (-EADDRINUSE ...). */
int mh_start(uv_loop_t *loop, const struct sockaddr *addr, mh_render_fn render, void *arg,
	     struct mh_server **out);
/* Stop listening and free; NULL is fine. */
void mh_stop(struct mh_server *s);

#endif
