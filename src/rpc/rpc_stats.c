/* rpc_stats.c - see rpc_stats.h. */
#include "rpc/rpc_stats.h"

#include <ctype.h>
#include <stdio.h>

#include "rpc/rpc_int.h"

static const char *const rpcst_outcome_names[RPCST_NOUT] = {
	"success", "garbage_args", "system_err", "noreply", "dropped",
};
static const char *const rpcst_reject_names[RPCST_NREJ] = {
	"prog_unavail", "prog_mismatch", "proc_unavail", "auth_error", "rpc_mismatch",
};

void rpc_listener_set_stats(struct rpc_listener *l, struct rpc_stats *st)
{
	l->stats = st;
}

/* "nfs", "mount", ... from the table's name. */
static void rpcst_prog_label(const struct rpc_prog *p, char *buf, size_t n)
{
	size_t i = 0;

	for (const char *s = p->name; *s && i + 1 < n; s++)
		buf[i++] = (char)tolower((unsigned char)*s);
	buf[i] = '\0';
}

static bool rpcst_proc_name(const struct rpc_prog *p, unsigned v, unsigned proc,
			    uint32_t *vers, const char **name)
{
	const struct rpc_vers *rv;

	if (p->vers_lo + v > p->vers_hi)
		return false;
	rv = p->vers[v];
	if (!rv || proc >= rv->nprocs || !rv->procs[proc].fn)
		return false;
	*vers = rv->vers;
	*name = rv->procs[proc].name;
	return true;
}

void rpc_stats_write(const struct rpc_svc *svc, struct rpc_stats *const *st,
		     const char *const *labels, size_t n, struct sbuf *out)
{
	char lb[512], prog[32];
	size_t np = svc->nprogs < RPCST_NPROG ? svc->nprogs : RPCST_NPROG;

	mt_family(out, "sgnfs_rpc_calls_total", "counter",
		  "RPC calls that reached a procedure, by program, version, procedure and outcome.");
	for (size_t i = 0; i < n; i++) {
		for (size_t p = 0; p < np; p++) {
			rpcst_prog_label(svc->progs[p], prog, sizeof(prog));
			for (unsigned v = 0; v < RPCST_NVERS; v++) {
				for (unsigned pr = 0; pr < RPCST_NPROC; pr++) {
					const char *name;
					uint32_t vers;

					if (!rpcst_proc_name(svc->progs[p], v, pr, &vers, &name))
						continue;
					for (unsigned o = 0; o < RPCST_NOUT; o++) {
						uint64_t c = st[i]->calls[p][v][pr][o];
						if (!c)
							continue;
						snprintf(lb, sizeof(lb), "%s,program=\"%s\",version=\"%u\","
							 "procedure=\"%s\",status=\"%s\"", labels[i],
							 prog, vers, name, rpcst_outcome_names[o]);
						mt_u64(out, "sgnfs_rpc_calls_total", lb, c);
					}
				}
			}
		}
	}
	mt_family(out, "sgnfs_rpc_duration_seconds", "histogram",
		  "Time from a call's arrival to its reply, by program and procedure.");
	for (size_t i = 0; i < n; i++) {
		for (size_t p = 0; p < np; p++) {
			rpcst_prog_label(svc->progs[p], prog, sizeof(prog));
			for (unsigned pr = 0; pr < RPCST_NPROC; pr++) {
				const struct mt_hist *h = &st[i]->latency[p][pr];
				const char *name = NULL;
				uint32_t vers;

				if (!h->count)
					continue;
				/* The name of the highest version that has the
				 * procedure: v4 NLM names are the ones operators know. */
				for (unsigned v = 0; v < RPCST_NVERS; v++)
					rpcst_proc_name(svc->progs[p], v, pr, &vers, &name);
				snprintf(lb, sizeof(lb), "%s,program=\"%s\",procedure=\"%s\"", labels[i],
					 prog, name ? name : "unknown");
				mt_hist_write(out, "sgnfs_rpc_duration_seconds", lb, h);
			}
		}
	}
	mt_family(out, "sgnfs_rpc_rejected_calls_total", "counter",
		  "RPC calls refused before reaching a procedure, by reason.");
	for (size_t i = 0; i < n; i++)
		for (unsigned r = 0; r < RPCST_NREJ; r++) {
			snprintf(lb, sizeof(lb), "%s,reason=\"%s\"", labels[i], rpcst_reject_names[r]);
			mt_u64(out, "sgnfs_rpc_rejected_calls_total", lb, st[i]->rejected[r]);
		}
	mt_family(out, "sgnfs_rpc_received_bytes_total", "counter",
		  "Bytes received on the group's VIPs (TCP and UDP).");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_rpc_received_bytes_total", labels[i], st[i]->bytes_in);
	mt_family(out, "sgnfs_rpc_sent_bytes_total", "counter",
		  "Bytes sent from the group's VIPs (TCP and UDP).");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_rpc_sent_bytes_total", labels[i], st[i]->bytes_out);
	mt_family(out, "sgnfs_rpc_connections_accepted_total", "counter",
		  "TCP connections accepted on the group's VIPs.");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_rpc_connections_accepted_total", labels[i],
		       st[i]->conns_accepted);
	mt_family(out, "sgnfs_rpc_udp_dropped_total", "counter",
		  "UDP requests dropped because the group's queue for the thread pool was full or their source address had max_queued_per_host requests waiting.");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_rpc_udp_dropped_total", labels[i], st[i]->udp_dropped);
	mt_family(out, "sgnfs_rpc_pool_lowered_total", "counter",
		  "Thread-pool jobs of the group run at a lower CPU priority: the group was backlogged while another group was active.");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_rpc_pool_lowered_total", labels[i], st[i]->pool_lowered);
	mt_family(out, "sgnfs_rpc_pool_udp_sent_total", "counter",
		  "UDP replies of the group's thread-pool jobs sent by the pool thread, not the event loop.");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_rpc_pool_udp_sent_total", labels[i], st[i]->pool_udp_sent);
	mt_family(out, "sgnfs_drc_hits_total", "counter",
		  "Retransmitted non-idempotent calls answered from the duplicate-request cache.");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_drc_hits_total", labels[i], st[i]->drc_hits);
	mt_family(out, "sgnfs_drc_misses_total", "counter",
		  "Non-idempotent calls not in the duplicate-request cache (executed).");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_drc_misses_total", labels[i], st[i]->drc_misses);
	mt_family(out, "sgnfs_drc_inprogress_drops_total", "counter",
		  "Retransmissions dropped because the same call was still executing.");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_drc_inprogress_drops_total", labels[i],
		       st[i]->drc_inprogress_drops);
	mt_family(out, "sgnfs_rpc_connections", "gauge",
		  "TCP connections open on the group's VIPs.");
	for (size_t i = 0; i < n; i++)
		mt_u64(out, "sgnfs_rpc_connections", labels[i], st[i]->conns_open);
}
