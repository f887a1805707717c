/*
 * ctlsock.h - the node's control socket (UNIX domain, <run_dir>/<node>.sock,
 * mode 0600): the one seam through which sgnfsctl, an OCF resource agent
 * or a test reads state and moves groups.
 *
 * Protocol: the client sends one request line ("status", "move G N",
 * "drain", "undrain", and for managed groups "start G", "stop G",
 * "group G"), at most 4 KiB; the node answers with
 * one JSON object on one line and closes.  Errors are {"error": "..."}.
 */
#ifndef SGNFS_CTLSOCK_H
#define SGNFS_CTLSOCK_H

#include <uv.h>
#include "sjson.h"

struct ctl_server;

/*
 * The control requests, described once: sgnfsd dispatches by this table
 * and sgnfsctl builds its request lines from it.  A request line is the
 * name followed by exactly @nargs words (@args says which).
 */
enum ctl_req {
	CTL_REQ_STATUS, CTL_REQ_METRICS, CTL_REQ_RELOAD, CTL_REQ_LOG_LEVEL, CTL_REQ_MOVE,
	CTL_REQ_DRAIN, CTL_REQ_UNDRAIN, CTL_REQ_START, CTL_REQ_STOP, CTL_REQ_GROUP,
	CTL_REQ_COUNT
};

struct ctl_req_desc {
	const char *name;
	int nargs;
	const char *args;     /* the words after the name, for people */
	const char *what;
};

extern const struct ctl_req_desc ctl_reqs[CTL_REQ_COUNT];

/* The request @argv (@argc words, the name first) is, or -1 when no
 * request has that name and that many words. */
int ctl_req_find(int argc, char *const *argv);

/*
 * Request line @req with its words (exactly ctl_reqs[req].nargs strings
 * follow) into @buf (@len bytes), without the newline.  0, or -EINVAL
 * (a word is empty or holds a blank) or -ENAMETOOLONG.
 */
int ctl_req_line(char *buf, size_t len, enum ctl_req req, ...);

/*
 * Handle one request: @argv[0] is the command.  Fill @reply, an empty JSON
 * object owned by the caller (add "error" on failure).  Runs on the loop
 * thread.
 */
typedef void (*ctl_handler_fn)(void *arg, int argc, char **argv, struct json_object *reply);

/*
 * From inside a handler only: answer this request later.  The reply object
 * the handler got stays valid, owned by the call, until ctl_call_done()
 * sends it; fill it before calling that.  Returns NULL outside a handler.
 * Every deferred call must be done exactly once (also at shutdown).
 */
struct ctl_call;
struct ctl_call *ctl_defer(void);
/* From inside a handler only, after ctl_defer: answer now after all (the
 * reply object, filled on return, is sent as usual). */
void ctl_undefer(void);
void ctl_call_done(struct ctl_call *call);
/*
 * Or answer with text already written (off the loop, so that a long
 * answer costs the loop no serialising): @line is the whole answer, one
 * JSON object and its "\n", @len bytes, malloc'd; ownership passes here,
 * also when it cannot be sent (NULL: the connection closes unanswered).
 * The call's reply object is freed unused.  One of the two, once.
 */
void ctl_call_done_text(struct ctl_call *call, char *line, size_t len);

/* Listen on @path (an old socket file there is replaced).  0 or -errno. */
int ctl_listen(uv_loop_t *loop, const char *path, ctl_handler_fn fn, void *arg,
	       struct ctl_server **out);
void ctl_close(struct ctl_server *s);

#endif
