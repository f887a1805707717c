/*
 * cl_main.c - sgnfs-client: the scriptable command line over the client
 * library (cl.h).  One-shot commands (lock, test, unlock, ...) run on every
 * simulated host at once and exit with the most severe result; "hold" keeps
 * the hosts running, serving callbacks and reclaiming after SM_NOTIFY, and
 * takes further commands on stdin; "bench-lock" is the load generator.
 *
 * Output: results go to stdout, one line per host (key=value, or JSON with
 * --json).  Event lines (blocked, granted-callback, notify, reclaimed, ...)
 * go to stdout in hold mode, where they are the point, and to stderr
 * otherwise; --quiet drops them.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>

#include "client/cl.h"
#include "client/cl_bench.h"
#include "nlm.h"
#include "spin.h"

#define CM_MAX_ARGS 16

static const char cm_usage[] =
"usage: sgnfs-client [options] COMMAND [args]\n"
"\n"
"Simulates NFS client hosts (lockd + statd of a kernel client), each on its\n"
"own address, against an sgnfs service group (or any NLM server).\n"
"\n"
"Commands (run on every simulated host):\n"
"  null                      ping the server's NLM service\n"
"  resolve FILE              print FILE's NFS file handle\n"
"  lock FILE START LEN       take a lock (LEN 0 = to end of file)\n"
"  test FILE START LEN       test for a conflicting lock; prints the holder\n"
"  unlock FILE START LEN     release\n"
"  cancel FILE START LEN     cancel a blocked lock request\n"
"  share FILE                DOS share reservation (--mode, --access)\n"
"  unshare FILE              release a share reservation\n"
"  free-all                  NLM FREE_ALL: the server forgets this host's locks\n"
"  reboot                    simulate a reboot: new NSM state, SM_NOTIFY to --server\n"
"  hold [FILE START LEN]     take the lock (with --per-host K: K locks per host),\n"
"                            then keep running: serve callbacks, reclaim after\n"
"                            SM_NOTIFY, read commands on stdin, until signalled\n"
"  bench-lock FILE           LOCK+UNLOCK pairs: --depth D per host, --owners M,\n"
"                            --duration S or --count N; prints pairs/s, p50, p99\n"
"\n"
"FILE is /path (MOUNT + LOOKUP on --server), SERVER:/path, fh:HEX or\n"
"SERVER:fh:HEX.  START and LEN are byte offsets (decimal or 0x hex).\n"
"\n"
"Hosts and servers:\n"
"  --host ADDR        first simulated host address (default 127.1.0.1)\n"
"  --name NAME        caller_name (default: the host address; with --nhosts,\n"
"                     NAME-0, NAME-1, ...)\n"
"  --nhosts N         N hosts on consecutive addresses (default 1)\n"
"  --server ADDR      the server (a service group VIP)\n"
"Protocol:\n"
"  --proto udp|tcp    transport for NLM, MOUNT and NFS (default tcp)\n"
"  --vers 1|3|4       NLM version (default 4; 1 and 3 have 32-bit offsets)\n"
"  --msg              use the asynchronous _MSG / _RES procedures\n"
"  --pmap-port P      the server's portmapper port (default 111)\n"
"  --nlm-port P, --mount-port P, --nfs-port P   skip the portmapper\n"
"  --timeout MS       per RPC, retransmissions included (default 10000)\n"
"  --uid N --gid N    AUTH_SYS credentials (default 0 0)\n"
"Locks:\n"
"  --excl | --shared  lock type (default --excl)\n"
"  --block            wait for the server's GRANTED callback\n"
"  --wait MS          with --block: CANCEL and fail after MS (default: forever)\n"
"  --reclaim          send reclaim = TRUE\n"
"  --svid N           owner process id (default: this process's pid)\n"
"  --oh HEX           owner handle (default \"<svid>@<name>\")\n"
"  --mode none|r|w|rw share: what to deny others (default none)\n"
"  --access r|w|rw    share: what this owner does (default rw)\n"
"  --per-host K       hold: K disjoint locks of LEN bytes per host from START\n"
"  --release-on-exit  hold: unlock everything before exiting\n"
"Callbacks (on for hold, --block and --msg, off otherwise):\n"
"  --callbacks | --no-callbacks\n"
"  --cb-pmap-port P --cb-nlm-port P --cb-nsm-port P  (default 111, 4045, 4046)\n"
"  --poll MS          re-poll a blocked lock (default 30000)\n"
"  --reclaim-time MS  keep retrying reclaims for (default 120000)\n"
"Benchmark:\n"
"  --depth D --owners M --duration S --count N\n"
"  --poll-us N        poll up to N us before sleeping between answers (0..1000,\n"
"                     default 0; on one machine a sleeping client's wake-up\n"
"                     is paid inside the server's send)\n"
"Output:\n"
"  --json             results as JSON\n"
"  --record FILE      keep FILE updated with the JSON record of held locks\n"
"  --quiet            no event lines\n"
"  -h, --help         this text\n"
"\n"
"hold reads one command per line on stdin:\n"
"  [@HOST] lock FILE START LEN [x|s] [block] [wait=MS] [svid=N] [reclaim]\n"
"  [@HOST] test|unlock|cancel FILE START LEN [x|s] [svid=N]\n"
"  [@HOST] share|unshare FILE [mode=M] [access=A] [svid=N]\n"
"  [@HOST] free-all | reboot | null\n"
"  status   print the record as one JSON line    wait   finish earlier commands first\n"
"  quit     exit (as on SIGTERM)\n"
"  @HOST is an address, a name, #INDEX or all (default: the first host).\n"
"  SIGUSR1 prints the record too.\n"
"\n"
"Exit status: 0 ok, 1 denied (conflict, deadlock, no locks), 2 grace period,\n"
"3 error or timeout, 64 usage.  With several hosts, the highest of theirs.\n";

enum cm_cmd {
	CM_NULL, CM_RESOLVE, CM_LOCK, CM_TEST, CM_UNLOCK, CM_CANCEL, CM_SHARE, CM_UNSHARE,
	CM_FREE_ALL, CM_REBOOT, CM_HOLD, CM_BENCH,
};

static const struct { const char *name; enum cm_cmd cmd; int nargs; } cm_cmds[] = {
	{ "null", CM_NULL, 0 },      { "resolve", CM_RESOLVE, 1 }, { "lock", CM_LOCK, 3 },
	{ "test", CM_TEST, 3 },      { "unlock", CM_UNLOCK, 3 },   { "cancel", CM_CANCEL, 3 },
	{ "share", CM_SHARE, 1 },    { "unshare", CM_UNSHARE, 1 }, { "free-all", CM_FREE_ALL, 0 },
	{ "reboot", CM_REBOOT, 0 },  { "hold", CM_HOLD, -1 },      { "bench-lock", CM_BENCH, 1 },
};

struct cm_app;

/* One command on one host. */
struct cm_job {
	struct cm_app *app;
	struct cl_host *host;
	struct cl_server *srv;
	enum cm_cmd cmd;
	unsigned id;                  /* hold: the command's number */
	char path[CL_MAX_PATH];       /* as given, without "SERVER:" */
	struct cl_lockreq rq;
	struct cl_result res;
	bool resolved;
	int exit_code;
};

struct cm_app {
	uv_loop_t loop;
	struct cl_config cfg;
	struct cl_ctx *ctx;
	bool json, quiet, hold, release_on_exit;
	bool have_server;
	struct sockaddr_in server;
	struct sockaddr_in first_host;
	const char *name;
	unsigned nhosts, per_host;
	struct cl_lockreq dflt;       /* from the options */
	bool callbacks_set, callbacks;
	struct cl_bench_opts bench;
	int worst;                    /* exit code so far */
	unsigned pending;             /* jobs not answered */
	unsigned initial_pending;     /* hold: initial locks not answered */
	/* hold mode */
	uv_signal_t sig[3];
	bool sigs_open;
	uv_stream_t *in;              /* stdin, or NULL */
	union { uv_pipe_t pipe; uv_tty_t tty; } inh;
	char *inbuf;
	size_t inlen;
	struct cm_line *lines, *lines_tail;
	bool waiting;                 /* a "wait" line holds the queue */
	bool stopping;
	unsigned next_id;
};

struct cm_line {
	struct cm_line *next;
	char text[];
};

static int cm_severity(int code)
{
	/* usage > error > grace > denied > ok */
	switch (code) {
	case CL_EXIT_OK:     return 0;
	case CL_EXIT_DENIED: return 1;
	case CL_EXIT_GRACE:  return 2;
	case CL_EXIT_ERROR:  return 3;
	default:             return 4;
	}
}

static void cm_account(struct cm_app *app, int code)
{
	if (cm_severity(code) > cm_severity(app->worst))
		app->worst = code;
}

static int cm_num(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-')
		return -1;
	*out = strtoull(s, &end, 0);
	return errno || *end ? -1 : 0;
}

static int cm_u32(const char *s, uint32_t *out)
{
	uint64_t v;

	if (cm_num(s, &v) < 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int cm_addr(const char *s, struct sockaddr_in *out)
{
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	return inet_pton(AF_INET, s, &out->sin_addr) == 1 ? 0 : -1;
}

static int cm_mode(const char *s, uint32_t *out)
{
	static const char *const m[] = { "none", "r", "w", "rw" };

	for (uint32_t i = 0; i < 4; i++)
		if (!strcmp(s, m[i])) {
			*out = i;
			return 0;
		}
	return -1;
}

/* "SERVER:/path" -> server + path; "/path" and "fh:.." use --server. */
static int cm_split_file(struct cm_app *app, const char *spec, struct sockaddr_in *srv,
			 char *path, size_t pathsz)
{
	const char *colon = strchr(spec, ':');

	if (colon && strncmp(spec, "fh:", 3) != 0) {
		char host[INET_ADDRSTRLEN];
		size_t n = (size_t)(colon - spec);

		if (n >= sizeof(host))
			return -1;
		memcpy(host, spec, n);
		host[n] = '\0';
		if (cm_addr(host, srv) < 0)
			return -1;
		spec = colon + 1;
	} else {
		if (!app->have_server)
			return -1;
		*srv = app->server;
	}
	if (strlen(spec) >= pathsz || (spec[0] != '/' && strncmp(spec, "fh:", 3) != 0))
		return -1;
	snprintf(path, pathsz, "%s", spec);
	return 0;
}

/* ---- results ---------------------------------------------------------------- */

static const char *cm_cmd_name(enum cm_cmd c)
{
	for (size_t i = 0; i < sizeof(cm_cmds) / sizeof(cm_cmds[0]); i++)
		if (cm_cmds[i].cmd == c)
			return cm_cmds[i].name;
	return "?";
}

static void cm_print_result(struct cm_job *j)
{
	struct cm_app *app = j->app;
	const struct cl_result *r = &j->res;
	const char *status = r->err ? "error" : cl_stat_name(r->stat);
	char fh[2 * CL_MAX_NETOBJ + 1], oh[2 * CL_MAX_NETOBJ + 1];
	FILE *f = stdout;

	cl_blob_hex(&j->rq.file.fh, fh, sizeof(fh));
	if (app->json) {
		fprintf(f, "{\"host\":\"%s\",", cl_host_addr(j->host));
		if (app->hold)
			fprintf(f, "\"id\":%u,", j->id);
		fprintf(f, "\"op\":\"%s\",\"server\":\"%s\",\"status\":\"%s\",\"exit\":%d",
			cm_cmd_name(j->cmd), j->srv ? cl_server_name(j->srv) : "",
			status, j->exit_code);
		if (r->err)
			fprintf(f, ",\"error\":\"%s\"", rpcc_strerror(r->err));
		if (j->cmd == CM_RESOLVE || j->cmd == CM_LOCK || j->cmd == CM_TEST ||
		    j->cmd == CM_UNLOCK || j->cmd == CM_CANCEL || j->cmd == CM_SHARE ||
		    j->cmd == CM_UNSHARE)
			fprintf(f, ",\"file\":\"%s\",\"fh\":\"%s\",\"svid\":%u", j->path, fh,
				j->rq.svid);
		if (j->cmd == CM_LOCK || j->cmd == CM_TEST || j->cmd == CM_UNLOCK ||
		    j->cmd == CM_CANCEL)
			fprintf(f, ",\"start\":%llu,\"len\":%llu,\"type\":\"%s\"",
				(unsigned long long)j->rq.start, (unsigned long long)j->rq.len,
				j->rq.exclusive ? "excl" : "shared");
		if (r->has_holder)
			fprintf(f, ",\"holder\":{\"type\":\"%s\",\"svid\":%u,\"oh\":\"%s\","
				"\"start\":%llu,\"len\":%llu}", r->holder_excl ? "excl" : "shared",
				r->holder_svid, cl_blob_hex(&r->holder_oh, oh, sizeof(oh)),
				(unsigned long long)r->holder_start,
				(unsigned long long)r->holder_len);
		if (j->cmd == CM_SHARE || j->cmd == CM_UNSHARE)
			fprintf(f, ",\"sequence\":%d", r->sequence);
		fprintf(f, ",\"usec\":%llu}\n", (unsigned long long)r->usec);
	} else {
		fprintf(f, "host=%s ", cl_host_addr(j->host));
		if (app->hold)
			fprintf(f, "event=result id=%u ", j->id);
		fprintf(f, "op=%s server=%s status=%s", cm_cmd_name(j->cmd),
			j->srv ? cl_server_name(j->srv) : "-", status);
		if (r->err)
			fprintf(f, " error=\"%s\"", rpcc_strerror(r->err));
		if (j->cmd == CM_RESOLVE || j->cmd == CM_LOCK || j->cmd == CM_TEST ||
		    j->cmd == CM_UNLOCK || j->cmd == CM_CANCEL || j->cmd == CM_SHARE ||
		    j->cmd == CM_UNSHARE)
			fprintf(f, " file=%s fh=%s svid=%u", j->path, fh, j->rq.svid);
		if (j->cmd == CM_LOCK || j->cmd == CM_TEST || j->cmd == CM_UNLOCK ||
		    j->cmd == CM_CANCEL)
			fprintf(f, " start=%llu len=%llu type=%s", (unsigned long long)j->rq.start,
				(unsigned long long)j->rq.len, j->rq.exclusive ? "excl" : "shared");
		if (r->has_holder)
			fprintf(f, " holder_type=%s holder_svid=%u holder_oh=%s holder_start=%llu "
				"holder_len=%llu", r->holder_excl ? "excl" : "shared",
				r->holder_svid, cl_blob_hex(&r->holder_oh, oh, sizeof(oh)),
				(unsigned long long)r->holder_start,
				(unsigned long long)r->holder_len);
		if (j->cmd == CM_SHARE || j->cmd == CM_UNSHARE)
			fprintf(f, " sequence=%d", r->sequence);
		fprintf(f, " usec=%llu\n", (unsigned long long)r->usec);
	}
	fflush(f);
}

static void cm_process_lines(struct cm_app *app);
static void cm_shutdown(struct cm_app *app);
static void cm_stop(struct cm_app *app);

static void cm_job_finish(struct cm_job *j)
{
	struct cm_app *app = j->app;

	bool initial = j->id == 0;

	j->exit_code = cl_result_exit(&j->res);
	/* TEST that finds a conflict is a "denied" answer too */
	if (j->cmd == CM_TEST && !j->res.err && j->res.stat == NLM4_DENIED)
		j->exit_code = CL_EXIT_DENIED;
	/* in hold mode only the initial locks decide the exit status: a
	 * script's own commands report through their result lines */
	if (!app->hold || initial)
		cm_account(app, j->exit_code);
	cm_print_result(j);
	free(j);
	app->pending--;
	if (app->hold && initial && --app->initial_pending == 0 && app->ctx) {
		if (app->worst != CL_EXIT_OK) {
			cl_event(app->ctx, NULL, "event=exit why=initial-lock-failed");
			cm_stop(app);
			return;
		}
		cl_event(app->ctx, NULL, "event=holding");
	}
	if (app->hold) {
		if (app->waiting && app->pending == 0) {
			app->waiting = false;
			cm_process_lines(app);
		}
	} else if (app->pending == 0) {
		cm_shutdown(app);
	}
}

static void cm_job_done(const struct cl_result *r, void *arg)
{
	struct cm_job *j = arg;

	j->res = *r;
	cm_job_finish(j);
}

static void cm_job_fail(struct cm_job *j, int err)
{
	memset(&j->res, 0, sizeof(j->res));
	j->res.err = err;
	cm_job_finish(j);
}

static void cm_job_run(struct cm_job *j)
{
	int rc = 0;

	switch (j->cmd) {
	case CM_NULL:     rc = cl_null(j->srv, cm_job_done, j); break;
	case CM_LOCK:     rc = cl_lock(j->srv, &j->rq, cm_job_done, j); break;
	case CM_TEST:     rc = cl_test(j->srv, &j->rq, cm_job_done, j); break;
	case CM_UNLOCK:   rc = cl_unlock(j->srv, &j->rq, cm_job_done, j); break;
	case CM_CANCEL:   rc = cl_cancel(j->srv, &j->rq, cm_job_done, j); break;
	case CM_SHARE:    rc = cl_share(j->srv, &j->rq, cm_job_done, j); break;
	case CM_UNSHARE:  rc = cl_unshare(j->srv, &j->rq, cm_job_done, j); break;
	case CM_FREE_ALL: rc = cl_free_all(j->srv, cm_job_done, j); break;
	case CM_RESOLVE:  {
		struct cl_result ok = { 0 };
		cm_job_done(&ok, j);
		return;
	}
	default:          rc = -EINVAL; break;
	}
	if (rc < 0)
		cm_job_fail(j, rc);
}

static void cm_resolved(int err, const struct cl_file *f, void *arg)
{
	struct cm_job *j = arg;

	if (err) {
		cm_job_fail(j, err);
		return;
	}
	j->rq.file = *f;
	j->resolved = true;
	cm_job_run(j);
}

/* Start @cmd on @h; @file may be NULL for commands without one. */
static int cm_job_start(struct cm_app *app, struct cl_host *h, enum cm_cmd cmd,
			const char *file, const struct cl_lockreq *rq, unsigned id)
{
	struct cm_job *j = calloc(1, sizeof(*j));
	struct sockaddr_in srv = app->server;
	int rc;

	if (!j)
		return -ENOMEM;
	j->app = app;
	j->host = h;
	j->cmd = cmd;
	j->id = id;
	j->rq = *rq;
	if (file && cm_split_file(app, file, &srv, j->path, sizeof(j->path)) < 0) {
		free(j);
		return -EINVAL;
	}
	if (!file && !app->have_server) {
		free(j);
		return -EDESTADDRREQ;
	}
	rc = cl_server_get(h, &srv, &j->srv);
	if (rc < 0) {
		free(j);
		return rc;
	}
	app->pending++;
	if (cmd == CM_REBOOT) {
		/* Done once every SM_NOTIFY is answered (or failed): a one-shot
		 * reboot must not exit before they went out. */
		rc = cl_host_reboot(h, cm_job_done, j);
		if (rc < 0)
			cm_job_fail(j, rc);
		return 0;
	}
	if (file) {
		rc = cl_resolve(j->srv, j->path, cm_resolved, j);
		if (rc < 0)
			cm_job_fail(j, rc);
		return 0;
	}
	cm_job_run(j);
	return 0;
}

/* ---- shutdown, signals ------------------------------------------------------ */

static void cm_handle_closed(uv_handle_t *h)
{
}

static void cm_shutdown(struct cm_app *app)
{
	if (app->stopping)
		return;
	app->stopping = true;
	if (app->sigs_open) {
		for (int i = 0; i < 3; i++)
			uv_close((uv_handle_t *)&app->sig[i], cm_handle_closed);
		app->sigs_open = false;
	}
	if (app->in) {
		uv_close((uv_handle_t *)app->in, cm_handle_closed);
		app->in = NULL;
	}
	if (app->ctx) {
		cl_ctx_close(app->ctx);
		app->ctx = NULL;
	}
}

static void cm_print_status(struct cm_app *app)
{
	if (!app->ctx)
		return;
	cl_record_json(app->ctx, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

static void cm_release_done(const struct cl_result *r, void *arg)
{
	struct cm_app *app = arg;

	if (--app->pending == 0)
		cm_shutdown(app);
}

/* hold: stop, releasing every lock first if asked to. */
static void cm_stop(struct cm_app *app)
{
	if (app->stopping || !app->ctx)
		return;
	if (app->release_on_exit) {
		app->release_on_exit = false;
		app->pending = 0;
		for (size_t i = 0; i < cl_host_count(app->ctx); i++) {
			struct cl_host *h = cl_host_at(app->ctx, i);

			for (struct cl_lock *lk = cl_host_locks(h); lk; lk = lk->next) {
				struct cl_lockreq rq;
				int rc;

				memset(&rq, 0, sizeof(rq));
				rq.file = lk->file;
				rq.svid = lk->svid;
				rq.oh = lk->oh;
				rq.start = lk->start;
				rq.len = lk->len;
				rq.mode = lk->mode;
				rq.access = lk->access;
				rc = lk->is_share ? cl_unshare(lk->srv, &rq, cm_release_done, app)
						  : cl_unlock(lk->srv, &rq, cm_release_done, app);
				if (rc == 0)
					app->pending++;
			}
		}
		/* unlocking changes the record we are walking: the calls have
		 * copied what they need and change it only when answered */
		if (app->pending)
			return;
	}
	cm_shutdown(app);
}

static void cm_signal(uv_signal_t *s, int signum)
{
	struct cm_app *app = s->data;

	if (signum == SIGUSR1)
		cm_print_status(app);
	else
		cm_stop(app);
}

/* ---- hold: commands on stdin --------------------------------------------- */

static int cm_tokenize(char *line, char **argv, int max)
{
	int n = 0;

	for (char *p = strtok(line, " \t\r"); p && n < max; p = strtok(NULL, " \t\r"))
		argv[n++] = p;
	return n;
}

static void cm_say(struct cm_app *app, unsigned id, const char *what, const char *detail)
{
	if (app->ctx)
		cl_event(app->ctx, NULL, "event=%s id=%u detail=\"%s\"", what, id, detail);
}

/* Parse and start one command line; returns false when it must wait. */
static void cm_run_line(struct cm_app *app, char *text)
{
	char *argv[CM_MAX_ARGS];
	int argc = cm_tokenize(text, argv, CM_MAX_ARGS);
	unsigned id = ++app->next_id;
	const char *hostkey = NULL;
	struct cl_lockreq rq = app->dflt;
	enum cm_cmd cmd;
	int a = 0, need;
	size_t i;

	if (argc == 0 || argv[0][0] == '#')
		return;
	if (argv[0][0] == '@') {
		hostkey = argv[0] + 1;
		a = 1;
	}
	if (a >= argc)
		{ cm_say(app, id, "bad-command", "nothing after @HOST"); return; }
	if (!strcmp(argv[a], "status"))
		{ cm_print_status(app); return; }
	if (!strcmp(argv[a], "quit"))
		{ cm_stop(app); return; }
	for (i = 0; i < sizeof(cm_cmds) / sizeof(cm_cmds[0]); i++)
		if (!strcmp(cm_cmds[i].name, argv[a]))
			break;
	if (i == sizeof(cm_cmds) / sizeof(cm_cmds[0]) || cm_cmds[i].cmd == CM_HOLD ||
	    cm_cmds[i].cmd == CM_BENCH)
		{ cm_say(app, id, "bad-command", argv[a]); return; }
	cmd = cm_cmds[i].cmd;
	need = cm_cmds[i].nargs;
	if (argc - a - 1 < need)
		{ cm_say(app, id, "bad-command", "missing arguments"); return; }
	if (need == 3 && (cm_num(argv[a + 2], &rq.start) < 0 || cm_num(argv[a + 3], &rq.len) < 0))
		{ cm_say(app, id, "bad-command", "bad START or LEN"); return; }
	rq.block = false;
	rq.reclaim = false;
	rq.wait_ms = 0;
	for (int k = a + 1 + need; k < argc; k++) {
		const char *t = argv[k];

		if (!strcmp(t, "x") || !strcmp(t, "excl"))
			rq.exclusive = true;
		else if (!strcmp(t, "s") || !strcmp(t, "shared"))
			rq.exclusive = false;
		else if (!strcmp(t, "block"))
			rq.block = true;
		else if (!strcmp(t, "reclaim"))
			rq.reclaim = true;
		else if (!strncmp(t, "wait=", 5) && cm_u32(t + 5, &rq.wait_ms) == 0)
			;
		else if (!strncmp(t, "svid=", 5) && cm_u32(t + 5, &rq.svid) == 0)
			rq.oh.len = app->dflt.svid == rq.svid ? app->dflt.oh.len : 0;
		else if (!strncmp(t, "mode=", 5) && cm_mode(t + 5, &rq.mode) == 0)
			;
		else if (!strncmp(t, "access=", 7) && cm_mode(t + 7, &rq.access) == 0 && rq.access)
			;
		else
			{ cm_say(app, id, "bad-command", t); return; }
	}
	if (cmd == CM_LOCK && rq.block && !app->callbacks)
		{ cm_say(app, id, "bad-command", "block needs --callbacks"); return; }

	/* A command that fails at once may have shut the context down. */
	for (size_t h = 0; app->ctx && h < cl_host_count(app->ctx); h++) {
		struct cl_host *host = cl_host_at(app->ctx, h);
		int rc;

		if (hostkey ? (strcmp(hostkey, "all") && host != cl_host_find(app->ctx, hostkey))
			    : h != 0)
			continue;
		rc = cm_job_start(app, host, cmd, need >= 1 ? argv[a + 1] : NULL, &rq, id);
		if (rc < 0) {
			cm_say(app, id, "bad-command", strerror(-rc));
			return;
		}
	}
}

static void cm_process_lines(struct cm_app *app)
{
	while (app->lines && !app->waiting && !app->stopping) {
		struct cm_line *l = app->lines;

		app->lines = l->next;
		if (!app->lines)
			app->lines_tail = NULL;
		if (!strcmp(l->text, "wait")) {
			if (app->pending > 0)
				app->waiting = true;
		} else {
			cm_run_line(app, l->text);
		}
		free(l);
	}
}

static void cm_queue_line(struct cm_app *app, const char *s, size_t n)
{
	struct cm_line *l;

	while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	l = malloc(sizeof(*l) + n + 1);
	if (!l)
		return;
	memcpy(l->text, s, n);
	l->text[n] = '\0';
	l->next = NULL;
	if (app->lines_tail)
		app->lines_tail->next = l;
	else
		app->lines = l;
	app->lines_tail = l;
}

static void cm_feed(struct cm_app *app, const char *p, size_t n)
{
	char *nb = realloc(app->inbuf, app->inlen + n);
	size_t start = 0;

	if (!nb)
		return;
	app->inbuf = nb;
	memcpy(app->inbuf + app->inlen, p, n);
	app->inlen += n;
	for (size_t i = 0; i < app->inlen; i++) {
		if (app->inbuf[i] == '\n') {
			cm_queue_line(app, app->inbuf + start, i - start);
			start = i + 1;
		}
	}
	memmove(app->inbuf, app->inbuf + start, app->inlen - start);
	app->inlen -= start;
	if (app->inlen > 65536)
		app->inlen = 0; /* no line is that long: drop it */
	cm_process_lines(app);
}

static void cm_in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char b[4096];

	*buf = uv_buf_init(b, sizeof(b));
}

static void cm_in_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct cm_app *app = s->data;

	if (n > 0) {
		cm_feed(app, buf->base, (size_t)n);
	} else if (n < 0) {
		/* EOF: a last unterminated line still counts; keep serving */
		if (app->inlen)
			cm_feed(app, "\n", 1);
		uv_close((uv_handle_t *)s, cm_handle_closed);
		app->in = NULL;
	}
}

static void cm_stdin_start(struct cm_app *app)
{
	uv_handle_type t = uv_guess_handle(0);
	int rc = -1;

	if (t == UV_TTY) {
		rc = uv_tty_init(&app->loop, &app->inh.tty, 0, 1);
		app->in = (uv_stream_t *)&app->inh.tty;
	} else if (t == UV_NAMED_PIPE || t == UV_TCP) {
		rc = uv_pipe_init(&app->loop, &app->inh.pipe, 0);
		if (rc == 0)
			rc = uv_pipe_open(&app->inh.pipe, 0);
		app->in = (uv_stream_t *)&app->inh.pipe;
	} else if (t == UV_FILE) {
		/* a regular file: finite, read it now */
		char b[4096];
		ssize_t n;

		while ((n = read(0, b, sizeof(b))) > 0)
			cm_feed(app, b, (size_t)n);
		if (app->inlen)
			cm_feed(app, "\n", 1);
		app->in = NULL;
		return;
	}
	if (rc != 0) {
		if (app->in)
			uv_close((uv_handle_t *)app->in, cm_handle_closed);
		app->in = NULL;
		return;
	}
	app->in->data = app;
	uv_read_start(app->in, cm_in_alloc, cm_in_read);
}

/* ---- main ------------------------------------------------------------------ */

enum {
	OPT_HOST = 256, OPT_NAME, OPT_NHOSTS, OPT_SERVER, OPT_PROTO, OPT_VERS, OPT_MSG, OPT_PMAP_PORT,
	OPT_NLM_PORT, OPT_MOUNT_PORT, OPT_NFS_PORT, OPT_TIMEOUT, OPT_UID, OPT_GID, OPT_EXCL, OPT_SHARED,
	OPT_BLOCK, OPT_WAIT, OPT_RECLAIM, OPT_SVID, OPT_OH, OPT_MODE, OPT_ACCESS, OPT_PER_HOST,
	OPT_RELEASE, OPT_CALLBACKS, OPT_NO_CALLBACKS, OPT_CB_PMAP, OPT_CB_NLM, OPT_CB_NSM, OPT_POLL,
	OPT_RECLAIM_TIME, OPT_DEPTH, OPT_OWNERS, OPT_DURATION, OPT_COUNT, OPT_POLL_US, OPT_JSON, OPT_RECORD, OPT_QUIET,
};

static const struct option cm_opts[] = {
	{ "host", 1, NULL, OPT_HOST },           { "name", 1, NULL, OPT_NAME },
	{ "nhosts", 1, NULL, OPT_NHOSTS },       { "server", 1, NULL, OPT_SERVER },
	{ "proto", 1, NULL, OPT_PROTO },         { "vers", 1, NULL, OPT_VERS },
	{ "msg", 0, NULL, OPT_MSG },             { "pmap-port", 1, NULL, OPT_PMAP_PORT },
	{ "nlm-port", 1, NULL, OPT_NLM_PORT },   { "mount-port", 1, NULL, OPT_MOUNT_PORT },
	{ "nfs-port", 1, NULL, OPT_NFS_PORT },   { "timeout", 1, NULL, OPT_TIMEOUT },
	{ "uid", 1, NULL, OPT_UID },             { "gid", 1, NULL, OPT_GID },
	{ "excl", 0, NULL, OPT_EXCL },           { "shared", 0, NULL, OPT_SHARED },
	{ "block", 0, NULL, OPT_BLOCK },         { "wait", 1, NULL, OPT_WAIT },
	{ "reclaim", 0, NULL, OPT_RECLAIM },     { "svid", 1, NULL, OPT_SVID },
	{ "oh", 1, NULL, OPT_OH },               { "mode", 1, NULL, OPT_MODE },
	{ "access", 1, NULL, OPT_ACCESS },       { "per-host", 1, NULL, OPT_PER_HOST },
	{ "release-on-exit", 0, NULL, OPT_RELEASE },
	{ "callbacks", 0, NULL, OPT_CALLBACKS }, { "no-callbacks", 0, NULL, OPT_NO_CALLBACKS },
	{ "cb-pmap-port", 1, NULL, OPT_CB_PMAP }, { "cb-nlm-port", 1, NULL, OPT_CB_NLM },
	{ "cb-nsm-port", 1, NULL, OPT_CB_NSM },  { "poll", 1, NULL, OPT_POLL },
	{ "reclaim-time", 1, NULL, OPT_RECLAIM_TIME },
	{ "depth", 1, NULL, OPT_DEPTH },         { "owners", 1, NULL, OPT_OWNERS },
	{ "duration", 1, NULL, OPT_DURATION },   { "count", 1, NULL, OPT_COUNT },
	{ "poll-us", 1, NULL, OPT_POLL_US },
	{ "json", 0, NULL, OPT_JSON },           { "record", 1, NULL, OPT_RECORD },
	{ "quiet", 0, NULL, OPT_QUIET },         { "help", 0, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int cm_usage_err(const char *what, const char *arg)
{
	fprintf(stderr, "sgnfs-client: %s%s%s\nTry 'sgnfs-client --help'.\n", what,
		arg ? ": " : "", arg ? arg : "");
	return CL_EXIT_USAGE;
}

static int cm_port(const char *s, uint16_t *out)
{
	uint64_t v;

	if (cm_num(s, &v) < 0 || v == 0 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int cm_parse(struct cm_app *app, int argc, char **argv)
{
	uint64_t v;
	int c;

	app->nhosts = 1;
	cm_addr("127.1.0.1", &app->first_host);
	app->cfg.proto = RPCC_TCP;
	app->dflt.svid = (uint32_t)getpid();
	app->dflt.exclusive = true;
	app->dflt.access = FSA4_RW;
	app->bench.depth = 1;
	app->bench.owners = 1;
	app->bench.seconds = 5;
	while ((c = getopt_long(argc, argv, "h", cm_opts, NULL)) != -1) {
		const char *a = optarg;

		switch (c) {
		case 'h':
			fputs(cm_usage, stdout);
			exit(0);
		case OPT_HOST:
			if (cm_addr(a, &app->first_host) < 0)
				return cm_usage_err("bad --host", a);
			break;
		case OPT_NAME:
			if (!*a || strlen(a) > CL_MAX_NAME - 16)
				return cm_usage_err("bad --name", a);
			app->name = a;
			break;
		case OPT_NHOSTS:
			if (cm_num(a, &v) < 0 || v == 0 || v > 65536)
				return cm_usage_err("bad --nhosts", a);
			app->nhosts = (unsigned)v;
			break;
		case OPT_SERVER:
			if (cm_addr(a, &app->server) < 0)
				return cm_usage_err("bad --server", a);
			app->have_server = true;
			break;
		case OPT_PROTO:
			if (!strcmp(a, "tcp"))
				app->cfg.proto = RPCC_TCP;
			else if (!strcmp(a, "udp"))
				app->cfg.proto = RPCC_UDP;
			else
				return cm_usage_err("bad --proto", a);
			break;
		case OPT_VERS:
			if (cm_u32(a, &app->cfg.nlm_vers) < 0 ||
			    (app->cfg.nlm_vers != 1 && app->cfg.nlm_vers != 3 && app->cfg.nlm_vers != 4))
				return cm_usage_err("bad --vers", a);
			break;
		case OPT_MSG:          app->cfg.use_msg = true; break;
		case OPT_PMAP_PORT:
			if (cm_port(a, &app->cfg.pmap_port) < 0)
				return cm_usage_err("bad --pmap-port", a);
			break;
		case OPT_NLM_PORT:
			if (cm_port(a, &app->cfg.nlm_port) < 0)
				return cm_usage_err("bad --nlm-port", a);
			break;
		case OPT_MOUNT_PORT:
			if (cm_port(a, &app->cfg.mount_port) < 0)
				return cm_usage_err("bad --mount-port", a);
			break;
		case OPT_NFS_PORT:
			if (cm_port(a, &app->cfg.nfs_port) < 0)
				return cm_usage_err("bad --nfs-port", a);
			break;
		case OPT_TIMEOUT:
			if (cm_u32(a, &app->cfg.timeout.total_ms) < 0 || !app->cfg.timeout.total_ms)
				return cm_usage_err("bad --timeout", a);
			break;
		case OPT_UID:
			if (cm_u32(a, &app->cfg.uid) < 0)
				return cm_usage_err("bad --uid", a);
			break;
		case OPT_GID:
			if (cm_u32(a, &app->cfg.gid) < 0)
				return cm_usage_err("bad --gid", a);
			break;
		case OPT_EXCL:         app->dflt.exclusive = true; break;
		case OPT_SHARED:       app->dflt.exclusive = false; break;
		case OPT_BLOCK:        app->dflt.block = true; break;
		case OPT_WAIT:
			if (cm_u32(a, &app->dflt.wait_ms) < 0)
				return cm_usage_err("bad --wait", a);
			break;
		case OPT_RECLAIM:      app->dflt.reclaim = true; break;
		case OPT_SVID:
			if (cm_u32(a, &app->dflt.svid) < 0)
				return cm_usage_err("bad --svid", a);
			break;
		case OPT_OH:
			if (cl_blob_from_hex(&app->dflt.oh, a) < 0)
				return cm_usage_err("bad --oh (hex, at most 1024 bytes)", a);
			break;
		case OPT_MODE:
			if (cm_mode(a, &app->dflt.mode) < 0)
				return cm_usage_err("bad --mode", a);
			break;
		case OPT_ACCESS:
			if (cm_mode(a, &app->dflt.access) < 0 || app->dflt.access == 0)
				return cm_usage_err("bad --access", a);
			break;
		case OPT_PER_HOST:
			if (cm_num(a, &v) < 0 || v == 0 || v > 1000000)
				return cm_usage_err("bad --per-host", a);
			app->per_host = (unsigned)v;
			break;
		case OPT_RELEASE:      app->release_on_exit = true; break;
		case OPT_CALLBACKS:    app->callbacks_set = app->callbacks = true; break;
		case OPT_NO_CALLBACKS: app->callbacks_set = true; app->callbacks = false; break;
		case OPT_CB_PMAP:
			if (cm_port(a, &app->cfg.cb_pmap_port) < 0)
				return cm_usage_err("bad --cb-pmap-port", a);
			break;
		case OPT_CB_NLM:
			if (cm_port(a, &app->cfg.cb_nlm_port) < 0)
				return cm_usage_err("bad --cb-nlm-port", a);
			break;
		case OPT_CB_NSM:
			if (cm_port(a, &app->cfg.cb_nsm_port) < 0)
				return cm_usage_err("bad --cb-nsm-port", a);
			break;
		case OPT_POLL:
			if (cm_u32(a, &app->cfg.poll_ms) < 0 || !app->cfg.poll_ms)
				return cm_usage_err("bad --poll", a);
			break;
		case OPT_RECLAIM_TIME:
			if (cm_u32(a, &app->cfg.reclaim_ms) < 0 || !app->cfg.reclaim_ms)
				return cm_usage_err("bad --reclaim-time", a);
			break;
		case OPT_DEPTH:
			if (cm_num(a, &v) < 0 || v == 0 || v > 100000)
				return cm_usage_err("bad --depth", a);
			app->bench.depth = (unsigned)v;
			break;
		case OPT_OWNERS:
			if (cm_num(a, &v) < 0 || v == 0 || v > 100000)
				return cm_usage_err("bad --owners", a);
			app->bench.owners = (unsigned)v;
			break;
		case OPT_POLL_US:
			if (cm_num(a, &v) < 0 || v > SPIN_MAX_US)
				return cm_usage_err("bad --poll-us", a);
			app->bench.poll_us = (unsigned)v;
			break;
		case OPT_DURATION:
			if (cm_num(a, &v) < 0 || v == 0 || v > 86400)
				return cm_usage_err("bad --duration", a);
			app->bench.seconds = (unsigned)v;
			break;
		case OPT_COUNT:
			if (cm_num(a, &v) < 0 || v == 0)
				return cm_usage_err("bad --count", a);
			app->bench.count = v;
			break;
		case OPT_JSON:         app->json = true; break;
		case OPT_RECORD:       app->cfg.record_path = a; break;
		case OPT_QUIET:        app->quiet = true; break;
		default:
			return cm_usage_err("unknown option", NULL);
		}
	}
	return 0;
}

/* Raise the descriptor limit: every host has up to seven sockets. */
static void cm_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int cm_add_hosts(struct cm_app *app)
{
	uint32_t base = ntohl(app->first_host.sin_addr.s_addr);

	for (unsigned i = 0; i < app->nhosts; i++) {
		struct sockaddr_in a = app->first_host;
		char name[CL_MAX_NAME + 1];
		struct cl_host *h;
		int rc;

		a.sin_addr.s_addr = htonl(base + i);
		if (app->name && app->nhosts > 1)
			snprintf(name, sizeof(name), "%s-%u", app->name, i);
		else if (app->name)
			snprintf(name, sizeof(name), "%s", app->name);
		rc = cl_host_add(app->ctx, &a, app->name ? name : NULL, &h);
		if (rc < 0) {
			char s[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &a.sin_addr, s, sizeof(s));
			fprintf(stderr, "sgnfs-client: host %s: %s%s\n", s, strerror(-rc),
				rc == -EADDRINUSE ? " (another sgnfs-client serves this host?)" : "");
			return rc;
		}
	}
	return 0;
}

/* bench-lock: resolve once (on the first host), then run. */
struct cm_bench_ctx {
	struct cm_app *app;
	bool done;
	int err;
	struct cl_file file;
};

static void cm_bench_resolved(int err, const struct cl_file *f, void *arg)
{
	struct cm_bench_ctx *b = arg;

	b->done = true;
	b->err = err;
	if (!err)
		b->file = *f;
	uv_stop(&b->app->loop);
}

static int cm_bench(struct cm_app *app, const char *file)
{
	struct cm_bench_ctx b = { .app = app };
	struct sockaddr_in srv;
	char path[CL_MAX_PATH];
	struct cl_server *s;
	int rc;

	if (cm_split_file(app, file, &srv, path, sizeof(path)) < 0)
		return cm_usage_err("bad FILE (and is --server given?)", file);
	app->bench.server = srv;
	app->bench.svid_base = app->dflt.svid;
	app->bench.tcp = app->cfg.proto == RPCC_TCP;
	rc = cl_server_get(cl_host_at(app->ctx, 0), &srv, &s);
	if (rc == 0)
		rc = cl_resolve(s, path, cm_bench_resolved, &b);
	if (rc == 0) {
		uv_run(&app->loop, UV_RUN_DEFAULT);
		rc = b.err;
	}
	if (rc < 0) {
		fprintf(stderr, "sgnfs-client: %s: %s\n", file, rpcc_strerror(rc));
		return CL_EXIT_ERROR;
	}
	rc = cl_bench_run(&app->loop, app->ctx, &app->bench, &b.file, stdout, app->json);
	return rc < 0 ? CL_EXIT_ERROR : CL_EXIT_OK;
}

int main(int argc, char **argv)
{
	static struct cm_app app_storage;
	struct cm_app *app = &app_storage;
	enum cm_cmd cmd;
	const char *file = NULL;
	int nargs, rc;
	size_t i;

	rc = cm_parse(app, argc, argv);
	if (rc)
		return rc;
	if (optind >= argc)
		return cm_usage_err("no command", NULL);
	for (i = 0; i < sizeof(cm_cmds) / sizeof(cm_cmds[0]); i++)
		if (!strcmp(cm_cmds[i].name, argv[optind]))
			break;
	if (i == sizeof(cm_cmds) / sizeof(cm_cmds[0]))
		return cm_usage_err("unknown command", argv[optind]);
	cmd = cm_cmds[i].cmd;
	nargs = argc - optind - 1;
	if (cmd == CM_HOLD) {
		if (nargs != 0 && nargs != 3)
			return cm_usage_err("hold takes no arguments or FILE START LEN", NULL);
	} else if (nargs != cm_cmds[i].nargs) {
		return cm_usage_err("wrong number of arguments for", argv[optind]);
	}
	if (nargs >= 1)
		file = argv[optind + 1];
	if (cm_cmds[i].nargs == 3 || (cmd == CM_HOLD && nargs == 3)) {
		if (cm_num(argv[optind + 2], &app->dflt.start) < 0)
			return cm_usage_err("bad START", argv[optind + 2]);
		if (cm_num(argv[optind + 3], &app->dflt.len) < 0)
			return cm_usage_err("bad LEN", argv[optind + 3]);
	}
	if (file) {
		struct sockaddr_in srv;
		char path[CL_MAX_PATH];
		if (cm_split_file(app, file, &srv, path, sizeof(path)) < 0)
			return cm_usage_err("bad FILE (/path needs --server)", file);
	} else if (!app->have_server) {
		return cm_usage_err("--server is required", NULL);
	}
	if (app->per_host && cmd != CM_HOLD)
		return cm_usage_err("--per-host is for hold", NULL);
	if (app->dflt.wait_ms && !app->dflt.block)
		return cm_usage_err("--wait needs --block", NULL);

	app->hold = cmd == CM_HOLD;
	app->cfg.callbacks = app->callbacks_set ? app->callbacks
						: (app->hold || app->cfg.use_msg ||
						   (cmd == CM_LOCK && app->dflt.block));
	app->callbacks = app->cfg.callbacks;
	if (((cmd == CM_LOCK && app->dflt.block) || app->cfg.use_msg) && !app->cfg.callbacks)
		return cm_usage_err("--block and --msg need callbacks (drop --no-callbacks)", NULL);
	if (!app->quiet)
		app->cfg.events = app->hold ? stdout : stderr;

	signal(SIGPIPE, SIG_IGN);
	cm_raise_nofile();
	uv_loop_init(&app->loop);
	rc = cl_ctx_new(&app->loop, &app->cfg, &app->ctx);
	if (rc < 0) {
		fprintf(stderr, "sgnfs-client: %s\n", strerror(-rc));
		return CL_EXIT_ERROR;
	}
	rc = cm_add_hosts(app);
	if (rc < 0) {
		app->worst = CL_EXIT_ERROR;
		cm_shutdown(app);
		goto run;
	}

	if (cmd == CM_BENCH) {
		app->worst = cm_bench(app, file);
		cm_shutdown(app);
		goto run;
	}

	if (app->hold) {
		static const int sigs[3] = { SIGINT, SIGTERM, SIGUSR1 };

		for (int k = 0; k < 3; k++) {
			uv_signal_init(&app->loop, &app->sig[k]);
			app->sig[k].data = app;
			uv_signal_start(&app->sig[k], cm_signal, sigs[k]);
		}
		app->sigs_open = true;
		cl_event(app->ctx, NULL, "event=ready hosts=%u callbacks=%s", app->nhosts,
			 app->cfg.callbacks ? "on" : "off");
	}

	for (size_t h = 0; h < cl_host_count(app->ctx); h++) {
		struct cl_host *host = cl_host_at(app->ctx, h);

		if (app->hold && !file)
			break;
		if (app->hold && app->per_host) {
			for (unsigned k = 0; k < app->per_host; k++) {
				struct cl_lockreq rq = app->dflt;
				uint64_t span = rq.len ? rq.len : 1;

				rq.start = app->dflt.start + ((uint64_t)h * app->per_host + k) * span;
				rq.len = span;
				if (cm_job_start(app, host, CM_LOCK, file, &rq, 0) < 0)
					app->worst = CL_EXIT_ERROR;
				else
					app->initial_pending++;
			}
			continue;
		}
		rc = cm_job_start(app, host, app->hold ? CM_LOCK : cmd, file, &app->dflt, 0);
		if (rc == 0 && app->hold)
			app->initial_pending++;
		if (rc < 0) {
			fprintf(stderr, "sgnfs-client: %s\n", strerror(-rc));
			cm_account(app, CL_EXIT_ERROR);
		}
	}
	if (app->hold)
		cm_stdin_start(app);
	else if (app->pending == 0)
		cm_shutdown(app);

run:
	uv_run(&app->loop, UV_RUN_DEFAULT);
	/* anything left (a failed start) is closed now */
	if (app->ctx)
		cm_shutdown(app);
	uv_run(&app->loop, UV_RUN_DEFAULT);
	free(app->inbuf);
	while (app->lines) {
		struct cm_line *l = app->lines;
		app->lines = l->next;
		free(l);
	}
	if (uv_loop_close(&app->loop) != 0)
		fprintf(stderr, "sgnfs-client: warning: handles left open at exit\n");
	return app->worst;
}
