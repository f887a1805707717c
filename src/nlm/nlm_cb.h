/*
 * nlm_cb.h - calls from the server to a client's NLM service: NLM_GRANTED
 * (and GRANTED_MSG) when a blocked lock becomes available, and the _RES
 * answers to the asynchronous _MSG procedures.
 *
 * A callback goes to the address the request came from, to the port the
 * client's own portmapper gives for NLM (asked once, cached per endpoint),
 * and is sent *from* the address the request arrived on: the group's VIP,
 * which is the server the client knows.  Endpoints are per group and die
 * with it (nlm_cb_close), cancelling whatever is in flight.
 */
#ifndef SGNFS_NLM_CB_H
#define SGNFS_NLM_CB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include "rpc/rpc.h"
#include "rpc/rpc_clnt.h"

struct nlm_cb;

struct nlm_cb_target {
	struct sockaddr_storage client; /* the client's address (port ignored) */
	struct sockaddr_storage local;  /* our VIP it talked to (port ignored) */
	uint32_t vers;                  /* NLM version the client used */
	bool tcp;
};

int nlm_cb_new(uv_loop_t *loop, const char *group, struct nlm_cb **out);
/* Cancel everything (callbacks run with -ECANCELED) and free. */
void nlm_cb_close(struct nlm_cb *cb);

/* One-way call (the _RES procedures, GRANTED_MSG).  @args are encoded with
 * @xargs before this returns.  0 or -errno. */
int nlm_cb_send(struct nlm_cb *cb, const struct nlm_cb_target *t, uint32_t proc,
		xdrproc_t xargs, const void *args);

/* Call with a reply (GRANTED): @done runs exactly once, with the decoded
 * result or an error (rpc_clnt.h codes). */
int nlm_cb_call(struct nlm_cb *cb, const struct nlm_cb_target *t, uint32_t proc,
		xdrproc_t xargs, const void *args, xdrproc_t xres, size_t res_size,
		rpcc_cb done, void *arg);

#endif
