/*
 * nlm_cb.c - see nlm_cb.h.
 *
 * An endpoint is (client address, our VIP, NLM version, transport).  Its
 * first use asks the client's portmapper for the NLM port; calls made while
 * that question is out wait in the endpoint's queue, already encoded, so a
 * burst of grants to one client costs one GETPORT.  A failed lookup fails
 * the queued calls and is forgotten, so the next callback asks again (the
 * client's lockd may have restarted on another port).
 */
#include "nlm/nlm_cb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "log.h"
#include "nlm.h" /* NLM_PROG, generated from src/proto/nlm.x */
#include "saddr.h"

struct nlm_cb_op {
	struct nlm_cb_op *next;
	uint32_t proc;
	bool oneway;
	/* Arguments are kept encoded-by-reference: we re-run the encoder
	 * from a private copy made with XDR into a buffer. */
	char *buf;              /* owned: encoded arguments */
	size_t len;
	xdrproc_t xres;
	size_t res_size;
	rpcc_cb done;
	void *arg;
};

struct nlm_cb_ep {
	struct nlm_cb_ep *next;
	struct nlm_cb *owner;
	struct nlm_cb_target t;
	uint16_t port;               /* 0 until the portmapper answered */
	bool asking;
	struct rpcc_clnt *clnt;      /* owned, once port is known */
	struct nlm_cb_op *queue;     /* owned, waiting for the port */
	struct rpcc_getport_req *gp;
};

struct nlm_cb {
	uv_loop_t *loop;
	char *group;                 /* owned, for logs */
	struct nlm_cb_ep *eps;       /* owned */
	bool closing;
};

/* Pre-encoded arguments: an xdrproc_t that copies bytes verbatim. */
struct nlm_cb_raw {
	char *buf;
	size_t len;
};

static bool_t nlm_cb_xdr_raw(XDR *x, struct nlm_cb_raw *r)
{
	if (x->x_op != XDR_ENCODE)
		return TRUE;
	return xdr_opaque(x, r->buf, (u_int)r->len); /* len is a multiple of 4 */
}

int nlm_cb_new(uv_loop_t *loop, const char *group, struct nlm_cb **out)
{
	struct nlm_cb *cb = calloc(1, sizeof(*cb));

	if (!cb)
		return -ENOMEM;
	cb->loop = loop;
	cb->group = strdup(group);
	if (!cb->group) {
		free(cb);
		return -ENOMEM;
	}
	*out = cb;
	return 0;
}

static void nlm_cb_op_fail(struct nlm_cb_op *op, int err)
{
	if (!op->oneway && op->done) {
		struct rpcc_reply rep = { .err = err };
		op->done(&rep, op->arg);
	}
	free(op->buf);
	free(op);
}

static void nlm_cb_op_start(struct nlm_cb_ep *ep, struct nlm_cb_op *op)
{
	struct nlm_cb_raw raw = { op->buf, op->len };
	int rc;

	if (op->oneway)
		rc = rpcc_send(ep->clnt, op->proc, (xdrproc_t)nlm_cb_xdr_raw, &raw);
	else
		rc = rpcc_call(ep->clnt, op->proc, (xdrproc_t)nlm_cb_xdr_raw, &raw,
			       op->xres, op->res_size, NULL, op->done, op->arg);
	if (rc < 0) {
		nlm_cb_op_fail(op, rc);
		return;
	}
	free(op->buf);
	free(op);
}

static void nlm_cb_port_cb(int err, uint16_t port, void *arg)
{
	struct nlm_cb_ep *ep = arg;
	struct nlm_cb_op *q = ep->queue;

	ep->gp = NULL;
	ep->asking = false;
	ep->queue = NULL;
	if (err == 0 && !ep->owner->closing) {
		struct rpcc_opts o = { 0 };
		struct sockaddr_storage srv = ep->t.client, loc = ep->t.local;

		sa_set_port(&srv, port);
		sa_set_port(&loc, 0);
		o.server = (struct sockaddr *)&srv;
		o.local = (struct sockaddr *)&loc;
		o.prog = NLM_PROG;
		o.vers = ep->t.vers;
		o.transport = ep->t.tcp ? RPCC_TCP : RPCC_UDP;
		o.timeout.retrans_ms = 500;
		o.timeout.total_ms = 5000;
		err = rpcc_new(ep->owner->loop, &o, &ep->clnt);
		if (err == 0)
			ep->port = port;
	}
	if (err != 0 && !ep->owner->closing) {
		char a[80];
		log_warn("group=%s client=%s cannot reach its NLM service: %s", ep->owner->group,
			 rpc_addr_str(&ep->t.client, false, a, sizeof(a)), rpcc_strerror(err));
	}
	while (q) {
		struct nlm_cb_op *next = q->next;
		if (err == 0)
			nlm_cb_op_start(ep, q);
		else
			nlm_cb_op_fail(q, err);
		q = next;
	}
}

static struct nlm_cb_ep *nlm_cb_ep_get(struct nlm_cb *cb, const struct nlm_cb_target *t)
{
	struct nlm_cb_ep *ep;

	for (ep = cb->eps; ep; ep = ep->next)
		if (ep->t.vers == t->vers && ep->t.tcp == t->tcp &&
		    sa_same_host(&ep->t.client, &t->client) && sa_same_host(&ep->t.local, &t->local))
			return ep;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->owner = cb;
	ep->t = *t;
	ep->next = cb->eps;
	cb->eps = ep;
	return ep;
}

static int nlm_cb_submit(struct nlm_cb *cb, const struct nlm_cb_target *t, struct nlm_cb_op *op,
			 xdrproc_t xargs, const void *args)
{
	struct nlm_cb_ep *ep;
	unsigned long len;
	XDR x;

	if (cb->closing)
		return -ESHUTDOWN;
	len = xdr_sizeof(xargs, (void *)args);
	op->buf = malloc(len ? len : 4);
	if (!op->buf)
		return -ENOMEM;
	xdrmem_create(&x, op->buf, (u_int)len, XDR_ENCODE);
	if (!xargs(&x, (void *)args)) {
		xdr_destroy(&x);
		free(op->buf);
		return -EINVAL;
	}
	op->len = xdr_getpos(&x);
	xdr_destroy(&x);
	ep = nlm_cb_ep_get(cb, t);
	if (!ep) {
		free(op->buf);
		return -ENOMEM;
	}
	if (ep->clnt) {
		nlm_cb_op_start(ep, op);
		return 0;
	}
	struct nlm_cb_op **tail = &ep->queue;
	while (*tail)
		tail = &(*tail)->next;
	*tail = op; /* FIFO: grants go out in the order they happened */
	if (!ep->asking) {
		struct sockaddr_storage pm = t->client, loc = t->local;
		int rc;

		sa_set_port(&pm, 111);
		sa_set_port(&loc, 0);
		ep->asking = true;
		rc = rpcc_getport(cb->loop, (struct sockaddr *)&pm, (struct sockaddr *)&loc,
				  NLM_PROG, t->vers, t->tcp ? IPPROTO_TCP : IPPROTO_UDP,
				  NULL, nlm_cb_port_cb, ep, &ep->gp);
		if (rc < 0) {
			ep->asking = false;
			*tail = NULL;
			free(op->buf);
			return rc;
		}
	}
	return 0;
}

int nlm_cb_send(struct nlm_cb *cb, const struct nlm_cb_target *t, uint32_t proc,
		xdrproc_t xargs, const void *args)
{
	struct nlm_cb_op *op = calloc(1, sizeof(*op));
	int rc;

	if (!op)
		return -ENOMEM;
	op->proc = proc;
	op->oneway = true;
	rc = nlm_cb_submit(cb, t, op, xargs, args);
	if (rc < 0)
		free(op);
	return rc;
}

int nlm_cb_call(struct nlm_cb *cb, const struct nlm_cb_target *t, uint32_t proc,
		xdrproc_t xargs, const void *args, xdrproc_t xres, size_t res_size,
		rpcc_cb done, void *arg)
{
	struct nlm_cb_op *op = calloc(1, sizeof(*op));
	int rc;

	if (!op)
		return -ENOMEM;
	op->proc = proc;
	op->xres = xres;
	op->res_size = res_size;
	op->done = done;
	op->arg = arg;
	rc = nlm_cb_submit(cb, t, op, xargs, args);
	if (rc < 0)
		free(op);
	return rc;
}

void nlm_cb_close(struct nlm_cb *cb)
{
	if (!cb)
		return;
	cb->closing = true;
	while (cb->eps) {
		struct nlm_cb_ep *ep = cb->eps;
		cb->eps = ep->next;
		if (ep->gp)
			rpcc_getport_cancel(ep->gp); /* fails the queue */
		while (ep->queue) {
			struct nlm_cb_op *op = ep->queue;
			ep->queue = op->next;
			nlm_cb_op_fail(op, -ECANCELED);
		}
		if (ep->clnt)
			rpcc_close(ep->clnt);
		free(ep);
	}
	free(cb->group);
	free(cb);
}
