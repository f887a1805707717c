/*
 * config.c - load and validate the cluster INI file.
 *
 * The file is read in two passes over one in-memory tree:
 *
 *   1. parse: libinih splits "key = value" lines and calls cfg_on_key();
 *      each value is checked on its own (syntax, range) and stored in the
 *      object of the current section.  Things that only need what came
 *      before (a duplicate fsid, VIP or export path) are checked here too,
 *      at the line of the second occurrence.
 *   2. check: everything that needs the whole file (a group names a node
 *      declared further down, an export names a group, required keys,
 *      groups without exports, exports of different groups nested in each
 *      other), reported at the line of the offending key or section.
 *
 * Every error is recorded, nothing stops at the first one; they are printed
 * at the end sorted by line (pass 2 finds some late), and the tree is handed
 * out only when there were none.  After an error an object
 * may be partly filled (a list holds only its good elements, a name may be
 * NULL): pass 2 skips what is missing instead of reporting it twice.
 *
 * Why inih is fed by our own line reader (cfg_read_line) rather than given
 * the FILE: Debian's libinih (55) is built without INI_HANDLER_LINENO, so the
 * handler is never told the line; it never calls the handler for a section
 * without keys ("[node a]"); it truncates section names to 49 bytes (export
 * paths are longer); and it has multi-line values on, which turns an
 * indented "key = value" into a continuation of the previous key.  So the
 * reader counts lines, strips comments and leading blanks, handles section
 * headers itself and hands inih only blank lines and "key = value" lines.
 * Comment handling therefore does not depend on how inih was compiled.
 *
 * Hazard: the nodes/groups/exports arrays grow with realloc() during pass 1;
 * nothing may keep a pointer into them until pass 2 has finished.  Objects
 * are referred to by index meanwhile (struct cfg_sect.idx).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/stat.h>

#include <ini.h>
#include <nettle/sha2.h>

#include "config/config.h"
#include "hkey.h"
#include "log.h"
#include "saddr.h"
#include "sfile.h"

#define CFG_MAX_KEYS 40
#define CFG_MAX_RECORD_MIN 8192u
#define CFG_MAX_RECORD_MAX (16u * 1024 * 1024)
/* CPU_SETSIZE - 1: the highest CPU glibc's cpu_set_t holds. */
#define CFG_CPU_MAX 1023u

enum cfg_kind { SECT_NONE, SECT_BAD, SECT_CLUSTER, SECT_NODE, SECT_GROUP, SECT_EXPORT };

enum cfg_type {
	T_NAME,     /* char *, a valid name */
	T_ABSPATH,  /* char *, an absolute path */
	T_LOGLEVEL, /* char *, error|warn|info|debug */
	T_LOGTARGET,/* char *, auto|stderr|syslog|journal|/absolute/path */
	T_LISTEN,   /* struct cfg_listen: ADDR:PORT or [V6ADDR]:PORT */
	T_PORT,     /* uint16_t, 1..65535 */
	T_U32,      /* uint32_t in [min, max] */
	T_BOOL,     /* bool */
	T_ADDR,     /* node address */
	T_VIPS,     /* group vip list */
	T_NODES,    /* group node list */
	T_ACCESS,   /* export access */
	T_CLIENTS,  /* export clients */
	T_SQUASH,   /* export squash */
	T_FSID,     /* export fsid: uint32_t 1..2^32-1, unique */
	T_OWNERSHIP,/* enum cfg_ownership: lease | managed */
	T_JOURNAL_IO,/* bool journal_io_thread: uring | thread */
	T_LOOP_PRIO, /* bool loop_realtime: normal | realtime */
	T_CPU,      /* int: none (-1) | a CPU number 0..CFG_CPU_MAX */
	T_SECCOMP,  /* enum sbx_mode: on | log | off */
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t off;          /* field in the section's struct (scalar types) */
	uint32_t min, max;   /* T_U32 */
	bool required;
};

#define KEY(n, t, s, f, ...) { .name = n, .type = t, .off = offsetof(struct s, f), __VA_ARGS__ }

static const struct cfg_key cluster_keys[] = {
	KEY("name",         T_NAME,     cfg_cluster, name, .required = true),
	KEY("run_dir",      T_ABSPATH,  cfg_cluster, run_dir),
	KEY("nfs_port",     T_PORT,     cfg_cluster, nfs_port),
	KEY("mount_port",   T_PORT,     cfg_cluster, mount_port),
	KEY("pmap_port",    T_PORT,     cfg_cluster, pmap_port),
	KEY("nlm_port",     T_PORT,     cfg_cluster, nlm_port),
	KEY("nsm_port",     T_PORT,     cfg_cluster, nsm_port),
	KEY("use_rpcbind",  T_BOOL,     cfg_cluster, use_rpcbind),
	KEY("max_record",   T_U32,      cfg_cluster, max_record,
	    .min = CFG_MAX_RECORD_MIN, .max = CFG_MAX_RECORD_MAX),
	KEY("max_conns",    T_U32,      cfg_cluster, max_conns, .min = 1, .max = 1000000),
	KEY("max_conns_per_host", T_U32, cfg_cluster, max_conns_per_host, .min = 1, .max = 1000000),
	KEY("max_inflight_mb", T_U32,   cfg_cluster, max_inflight_mb, .min = 1, .max = 1048576),
	KEY("max_inflight_mb_per_host", T_U32, cfg_cluster, max_inflight_mb_per_host,
	    .min = 1, .max = 1048576),
	KEY("max_names_per_host", T_U32, cfg_cluster, max_names_per_host, .min = 1, .max = 1000000),
	KEY("max_queued_per_group", T_U32, cfg_cluster, max_queued_per_group, .min = 1, .max = 1000000),
	KEY("max_queued_per_host", T_U32, cfg_cluster, max_queued_per_host, .min = 1, .max = 1000000),
	KEY("max_locks_per_host", T_U32, cfg_cluster, max_locks_per_host, .min = 1, .max = 100000000),
	KEY("max_names",    T_U32,      cfg_cluster, max_names, .min = 1, .max = 100000000),
	KEY("max_locks",    T_U32,      cfg_cluster, max_locks, .min = 1, .max = 1000000000),
	KEY("open_handles", T_U32,      cfg_cluster, open_handles, .min = 0, .max = 1000000),
	KEY("drc_entries",  T_U32,      cfg_cluster, drc_entries, .min = 0, .max = 10000000),
	KEY("drc_entries_per_host", T_U32, cfg_cluster, drc_entries_per_host, .min = 1, .max = 10000000),
	KEY("drc_ttl",      T_U32,      cfg_cluster, drc_ttl_s, .min = 1, .max = 86400),
	KEY("seccomp",      T_SECCOMP,  cfg_cluster, seccomp),
	KEY("idle_timeout", T_U32,      cfg_cluster, idle_timeout_s, .min = 1, .max = 86400),
	KEY("watchdog_ms",  T_U32,      cfg_cluster, watchdog_ms, .min = 100, .max = 600000),
	KEY("log_level",    T_LOGLEVEL, cfg_cluster, log_level),
	KEY("handle_key",   T_ABSPATH,  cfg_cluster, handle_key),
	KEY("log",          T_LOGTARGET, cfg_cluster, log),
	KEY("metrics_listen", T_LISTEN, cfg_cluster, metrics_listen),
	KEY("ownership",    T_OWNERSHIP, cfg_cluster, ownership),
	KEY("journal_io",   T_JOURNAL_IO, cfg_cluster, journal_io_thread),
	KEY("journal_inflight", T_U32,  cfg_cluster, journal_inflight, .min = 1, .max = CFG_JOURNAL_INFLIGHT_MAX),
	KEY("journal_gather", T_BOOL,   cfg_cluster, journal_gather),
	KEY("loop_priority", T_LOOP_PRIO, cfg_cluster, loop_realtime),
	KEY("loop_cpu",     T_CPU,      cfg_cluster, loop_cpu),
	KEY("poll_spin_us", T_U32,      cfg_cluster, poll_spin_us, .min = 0, .max = CFG_POLL_SPIN_MAX_US),
	KEY("peer_port",    T_PORT,     cfg_cluster, peer_port),
	KEY("peer_key",     T_ABSPATH,  cfg_cluster, peer_key),
	{ .name = NULL },
};

static const struct cfg_key node_keys[] = {
	KEY("address",      T_ADDR,     cfg_node, address),
	KEY("peer_port",    T_PORT,     cfg_node, peer_port),
	KEY("metrics_listen", T_LISTEN, cfg_node, metrics_listen),
	{ .name = NULL },
};

static const struct cfg_key group_keys[] = {
	KEY("vip",          T_VIPS,     cfg_group, vips, .required = true),
	KEY("nodes",        T_NODES,    cfg_group, nodes, .required = true),
	KEY("grace",        T_U32,      cfg_group, grace_s, .min = 1, .max = 3600),
	KEY("journal",      T_BOOL,     cfg_group, journal),
	KEY("client_idle",  T_U32,      cfg_group, client_idle_s, .min = 0, .max = 604800),
	KEY("ownership",    T_OWNERSHIP, cfg_group, ownership),
	{ .name = NULL },
};

static const struct cfg_key export_keys[] = {
	KEY("group",        T_NAME,     cfg_export, group_name, .required = true),
	KEY("fsid",         T_FSID,     cfg_export, fsid, .min = 1, .max = UINT32_MAX,
	    .required = true),
	KEY("access",       T_ACCESS,   cfg_export, rw),
	KEY("clients",      T_CLIENTS,  cfg_export, clients, .required = true),
	KEY("squash",       T_SQUASH,   cfg_export, root_squash),
	KEY("anonuid",      T_U32,      cfg_export, anonuid, .min = 0, .max = UINT32_MAX - 1),
	KEY("anongid",      T_U32,      cfg_export, anongid, .min = 0, .max = UINT32_MAX - 1),
	KEY("secure",       T_BOOL,     cfg_export, secure),
	{ .name = NULL },
};

static const struct cfg_key *const cfg_keys[] = {
	[SECT_CLUSTER] = cluster_keys,
	[SECT_NODE] = node_keys,
	[SECT_GROUP] = group_keys,
	[SECT_EXPORT] = export_keys,
};

static const char *const cfg_kind_name[] = {
	[SECT_CLUSTER] = "cluster",
	[SECT_NODE] = "node",
	[SECT_GROUP] = "group",
	[SECT_EXPORT] = "export",
};

_Static_assert(sizeof(cluster_keys) / sizeof(cluster_keys[0]) <= CFG_MAX_KEYS + 1,
	       "CFG_MAX_KEYS too small");

/* One good section header of the file, in file order (pass 1 -> pass 2). */
struct cfg_sect {
	enum cfg_kind kind;
	size_t idx;                  /* into c->nodes / groups / exports */
	int line;
	int key_line[CFG_MAX_KEYS];  /* line of each key of the table, 0: absent */
};

/* One error, kept until the end of cfg_load(). */
struct cfg_msg {
	int line;
	size_t seq;                  /* order of discovery, for a stable sort */
	char *text;
};

/* Lives for one cfg_load() call. */
struct cfg_parser {
	struct cfg_cluster *c;       /* being built; owned until handed out */
	const char *path;
	FILE *errs;
	FILE *in;
	char *buf;                   /* getline() buffer */
	size_t bufcap;
	int lineno;                  /* of the line inih is processing */
	unsigned nerrs;
	struct cfg_msg *msgs;        /* printed sorted by line at the end */
	size_t nmsgs, msgs_cap;
	int fatal;                   /* -errno (read error, ENOMEM): stop */
	struct cfg_sect *sects;
	size_t nsects, sects_cap;
	size_t nodes_cap, groups_cap, exports_cap;
	enum cfg_kind cur_kind;      /* SECT_NONE before the first header */
	size_t cur;                  /* index into sects when cur_kind is good */
	int cluster_line;            /* of the [cluster] header, 0: none yet */
	struct sha256_ctx sha;       /* of every byte read: the file's checksum */
};

/* Make room for one more element of @size in *@arr (capacity *@cap). */
static int cfg_grow(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *a;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	a = realloc(*arr, ncap * size);
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = ncap;
	return 0;
}

static void cfg_oom(struct cfg_parser *p)
{
	if (!p->fatal)
		p->fatal = -ENOMEM;
}

/*
 * Record an error at @line.  Errors are kept and printed at the end, in
 * line order, so that those found in pass 2 sit among the others.
 */
__attribute__((format(printf, 3, 4)))
static void cfg_err(struct cfg_parser *p, int line, const char *fmt, ...)
{
	struct cfg_msg *m;
	va_list ap;
	int n;

	p->nerrs++;
	if (!p->errs)
		return;
	if (cfg_grow((void **)&p->msgs, &p->msgs_cap, p->nmsgs, sizeof(*p->msgs))) {
		cfg_oom(p);
		return;
	}
	m = &p->msgs[p->nmsgs];
	m->line = line;
	m->seq = p->nmsgs;
	va_start(ap, fmt);
	n = vasprintf(&m->text, fmt, ap);
	va_end(ap);
	if (n < 0) {
		cfg_oom(p);
		return;
	}
	p->nmsgs++;
}

static int cfg_msg_cmp(const void *a, const void *b)
{
	const struct cfg_msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void cfg_print_errors(struct cfg_parser *p)
{
	qsort(p->msgs, p->nmsgs, sizeof(*p->msgs), cfg_msg_cmp);
	for (size_t i = 0; i < p->nmsgs; i++)
		fprintf(p->errs, "%s:%d: %s\n", p->path, p->msgs[i].line, p->msgs[i].text);
}

/* ---- value syntax ---------------------------------------------------- */

/* [A-Za-z0-9_-], 1..CFG_NAME_MAX-1 characters. */
static bool cfg_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CFG_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

#define CFG_NAME_RULE "1 to 63 of A-Z a-z 0-9 _ -"

/* NULL if @path is an absolute, normalised path; else why not. */
static const char *cfg_path_problem(const char *path)
{
	const char *s, *e;

	if (path[0] != '/')
		return "must be absolute (start with '/')";
	if (strcmp(path, "/") == 0)
		return NULL;
	if (path[strlen(path) - 1] == '/')
		return "must not end with '/'";
	for (s = path + 1; *s; s = *e ? e + 1 : e) {
		e = strchrnul(s, '/');
		if (e == s)
			return "must not contain '//'";
		if ((e - s == 1 && s[0] == '.') || (e - s == 2 && s[0] == '.' && s[1] == '.'))
			return "must not contain '.' or '..' components";
	}
	return NULL;
}

/* True if @inner lies strictly inside @outer (both normalised). */
static bool cfg_path_inside(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return strcmp(inner, "/") != 0;
	return strncmp(inner, outer, n) == 0 && inner[n] == '/';
}

/* Strict decimal: digits only, no sign, no blanks, no base prefix. */
static int cfg_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v > max || v < min)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

static int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static bool cfg_is_v4mapped(const uint8_t *a)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, pfx, sizeof(pfx)) == 0;
}

/*
 * One unicast host address for a VIP or node address, port 0.  NULL on
 * success, else why not.
 */
static const char *cfg_addr_parse(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		uint8_t *b = (uint8_t *)&sin->sin_addr;
		sin->sin_family = AF_INET;
		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			return "is the unspecified address";
		if (b[0] >= 224)
			return "is a multicast or reserved address";
		return NULL;
	}
	if (strchr(s, '/'))
		return "is a network; a single address is needed here";
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			return "is the unspecified address";
		if (IN6_IS_ADDR_MULTICAST(&sin6->sin6_addr))
			return "is a multicast address";
		if (cfg_is_v4mapped(sin6->sin6_addr.s6_addr))
			return "is a v4-mapped IPv6 address; write it as IPv4";
		return NULL;
	}
	return "is not an IPv4 or IPv6 address";
}

static const char *cfg_addr_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	const void *a = ss->ss_family == AF_INET
		? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
		: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)n))
		snprintf(buf, n, "?");
	return buf;
}

/* Clear every bit of @a (@bytes long) beyond the first @prefix bits. */
static void cfg_mask(uint8_t *a, size_t bytes, unsigned prefix)
{
	for (size_t i = 0; i < bytes; i++) {
		unsigned bit = (unsigned)i * 8;
		if (bit >= prefix)
			a[i] = 0;
		else if (prefix - bit < 8)
			a[i] &= (uint8_t)(0xff << (8 - (prefix - bit)));
	}
}

/* cfg_net_parse() with a reason for the user in @why (@whylen bytes). */
static int cfg_net_parse_why(const char *s, struct cfg_net *net, char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN + 1], shown[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	size_t bytes;
	unsigned maxp;
	uint32_t prefix;
	uint8_t masked[16];

	memset(net, 0, sizeof(*net));
	if (hlen >= sizeof(host))
		goto bad_addr;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, net->addr) == 1) {
		net->family = AF_INET;
		bytes = 4;
		maxp = 32;
	} else if (inet_pton(AF_INET6, host, net->addr) == 1) {
		net->family = AF_INET6;
		bytes = 16;
		maxp = 128;
	} else {
		goto bad_addr;
	}
	prefix = maxp;
	if (slash && (strlen(slash + 1) > 3 ||
		      cfg_parse_u32(slash + 1, 0, maxp, &prefix) < 0)) {
		snprintf(why, whylen, "bad prefix length '/%s' (0..%u)", slash + 1, maxp);
		return -EINVAL;
	}
	net->prefix = prefix;
	memcpy(masked, net->addr, bytes);
	cfg_mask(masked, bytes, prefix);
	if (memcmp(masked, net->addr, bytes) != 0) {
		inet_ntop(net->family, masked, shown, sizeof(shown));
		snprintf(why, whylen, "host bits set beyond /%u; use %s/%u", prefix, shown,
			 prefix);
		return -EINVAL;
	}
	return 0;

bad_addr:
	snprintf(why, whylen, "not an IPv4 or IPv6 address or network");
	return -EINVAL;
}

int cfg_net_parse(const char *s, struct cfg_net *net)
{
	char why[128];

	return cfg_net_parse_why(s, net, why, sizeof(why));
}

/* The v4-mapped IPv6 form of an IPv4 address, IPv6 unchanged. */
static void cfg_as_v6(int family, const uint8_t *a, uint8_t out[16])
{
	if (family == AF_INET) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, a, 4);
	} else {
		memcpy(out, a, 16);
	}
}

bool cfg_net_match(const struct cfg_net *net, const struct sockaddr *sa)
{
	uint8_t want[16], have[16];
	unsigned prefix;

	/* An IPv4 address against an IPv4 network, as 32-bit words: the same
	 * answer as the v4-mapped form below, without building it.  Every
	 * NLM LOCK and UNLOCK asks this (the export's `clients`). */
	if (sa->sa_family == AF_INET && net->family == AF_INET && net->prefix <= 32) {
		uint32_t h = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr), w;
		uint32_t mask = net->prefix ? ~UINT32_C(0) << (32 - net->prefix) : 0;

		memcpy(&w, net->addr, 4);
		return ((h ^ ntohl(w)) & mask) == 0;
	}
	if (sa->sa_family == AF_INET)
		cfg_as_v6(AF_INET, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
			  have);
	else if (sa->sa_family == AF_INET6)
		cfg_as_v6(AF_INET6,
			  ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, have);
	else
		return false;
	if (net->family != AF_INET && net->family != AF_INET6)
		return false;
	cfg_as_v6(net->family, net->addr, want);
	/* An IPv4 /n is the v4-mapped /96+n. */
	prefix = net->family == AF_INET ? net->prefix + 96 : net->prefix;
	cfg_mask(have, 16, prefix);
	cfg_mask(want, 16, prefix);
	return memcmp(have, want, 16) == 0;
}

/* ---- pass 1: sections ------------------------------------------------- */

static void *cfg_obj(struct cfg_parser *p, const struct cfg_sect *s)
{
	switch (s->kind) {
	case SECT_CLUSTER: return p->c;
	case SECT_NODE:    return &p->c->nodes[s->idx];
	case SECT_GROUP:   return &p->c->groups[s->idx];
	case SECT_EXPORT:  return &p->c->exports[s->idx];
	default:           return NULL;
	}
}

/* "[group sg1]" for messages. */
static const char *cfg_sect_str(struct cfg_parser *p, const struct cfg_sect *s,
				char *buf, size_t n)
{
	const char *arg = NULL;

	switch (s->kind) {
	case SECT_NODE:   arg = p->c->nodes[s->idx].name; break;
	case SECT_GROUP:  arg = p->c->groups[s->idx].name; break;
	case SECT_EXPORT: arg = p->c->exports[s->idx].path; break;
	default: break;
	}
	snprintf(buf, n, "[%s%s%s]", cfg_kind_name[s->kind], arg ? " " : "", arg ? arg : "");
	return buf;
}

static ssize_t cfg_node_idx(const struct cfg_cluster *c, const char *name)
{
	for (size_t i = 0; i < c->nnodes; i++)
		if (strcmp(c->nodes[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t cfg_group_idx(const struct cfg_cluster *c, const char *name)
{
	for (size_t i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* Create the object a good header names; 0, or -1 if it is to be ignored. */
static int cfg_new_object(struct cfg_parser *p, enum cfg_kind kind, const char *arg,
			  size_t *idx)
{
	struct cfg_cluster *c = p->c;
	char *dup = NULL;
	ssize_t other;
	const char *why;

	switch (kind) {
	case SECT_CLUSTER:
		if (*arg) {
			cfg_err(p, p->lineno, "[cluster] takes no name (got '%s')", arg);
			return -1;
		}
		if (p->cluster_line) {
			cfg_err(p, p->lineno, "second [cluster] section (the first is at line %d)",
				p->cluster_line);
			return -1;
		}
		p->cluster_line = p->lineno;
		*idx = 0;
		return 0;
	case SECT_NODE:
	case SECT_GROUP:
		if (!cfg_name_ok(arg)) {
			cfg_err(p, p->lineno, "bad %s name '%s' (" CFG_NAME_RULE ")",
				cfg_kind_name[kind], arg);
			return -1;
		}
		other = kind == SECT_NODE ? cfg_node_idx(c, arg) : cfg_group_idx(c, arg);
		if (other >= 0) {
			cfg_err(p, p->lineno, "second [%s %s] (the first is at line %d)",
				cfg_kind_name[kind], arg,
				kind == SECT_NODE ? c->nodes[other].line : c->groups[other].line);
			return -1;
		}
		break;
	case SECT_EXPORT:
		why = cfg_path_problem(arg);
		if (why) {
			cfg_err(p, p->lineno, "export path '%s' %s", arg, why);
			return -1;
		}
		for (size_t i = 0; i < c->nexports; i++) {
			if (strcmp(c->exports[i].path, arg) == 0) {
				cfg_err(p, p->lineno, "second [export %s] (the first is at line %d)",
					arg, c->exports[i].line);
				return -1;
			}
		}
		break;
	default:
		return -1;
	}

	dup = strdup(arg);
	if (!dup)
		goto err_oom;
	if (kind == SECT_NODE) {
		if (cfg_grow((void **)&c->nodes, &p->nodes_cap, c->nnodes, sizeof(*c->nodes)))
			goto err_free;
		struct cfg_node *n = &c->nodes[c->nnodes];
		memset(n, 0, sizeof(*n));
		n->name = dup;
		n->line = p->lineno;
		*idx = c->nnodes++;
	} else if (kind == SECT_GROUP) {
		if (cfg_grow((void **)&c->groups, &p->groups_cap, c->ngroups, sizeof(*c->groups)))
			goto err_free;
		struct cfg_group *g = &c->groups[c->ngroups];
		memset(g, 0, sizeof(*g));
		g->name = dup;
		g->grace_s = 45;
		g->journal = true;
		g->client_idle_s = 300;
		g->line = p->lineno;
		*idx = c->ngroups++;
	} else {
		if (cfg_grow((void **)&c->exports, &p->exports_cap, c->nexports,
			     sizeof(*c->exports)))
			goto err_free;
		struct cfg_export *e = &c->exports[c->nexports];
		memset(e, 0, sizeof(*e));
		e->path = dup;
		e->rw = true;
		e->root_squash = true;
		e->anonuid = e->anongid = 65534;
		e->line = p->lineno;
		*idx = c->nexports++;
	}
	return 0;

err_free:
	free(dup);
err_oom:
	cfg_oom(p);
	return -1;
}

/* A "[...]" line, comments and outer blanks already stripped. */
static void cfg_on_section(struct cfg_parser *p, char *s)
{
	static const enum cfg_kind kinds[] = { SECT_CLUSTER, SECT_NODE, SECT_GROUP, SECT_EXPORT };
	char *close = strchr(s, ']');
	enum cfg_kind kind = SECT_BAD;
	char *word, *arg;
	size_t idx;

	p->cur_kind = SECT_BAD;
	if (!close) {
		cfg_err(p, p->lineno, "section header without ']'");
		return;
	}
	if (close[1] != '\0') {
		cfg_err(p, p->lineno, "text after the section header's ']'");
		return;
	}
	*close = '\0';
	word = s + 1;
	while (*word == ' ' || *word == '\t')
		word++;
	arg = word + strcspn(word, " \t");
	if (*arg) {
		*arg++ = '\0';
		arg += strspn(arg, " \t");
		for (char *e = arg + strlen(arg); e > arg && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = '\0';
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(word, cfg_kind_name[kinds[i]]) == 0)
			kind = kinds[i];
	if (kind == SECT_BAD) {
		cfg_err(p, p->lineno, "unknown section [%s]; expected [cluster], [node NAME], "
			"[group NAME] or [export /PATH]", word);
		return;
	}
	if (kind != SECT_CLUSTER && !*arg) {
		cfg_err(p, p->lineno, "[%s] needs a %s: [%s %s]", word,
			kind == SECT_EXPORT ? "path" : "name", word,
			kind == SECT_EXPORT ? "/PATH" : "NAME");
		return;
	}
	if (cfg_new_object(p, kind, arg, &idx) < 0)
		return;
	if (cfg_grow((void **)&p->sects, &p->sects_cap, p->nsects, sizeof(*p->sects))) {
		/* The object exists and will be freed with the tree. */
		cfg_oom(p);
		return;
	}
	memset(&p->sects[p->nsects], 0, sizeof(p->sects[0]));
	p->sects[p->nsects].kind = kind;
	p->sects[p->nsects].idx = idx;
	p->sects[p->nsects].line = p->lineno;
	p->cur = p->nsects++;
	p->cur_kind = kind;
}

/* ---- pass 1: values --------------------------------------------------- */

/*
 * Split @value at blanks and commas and call @fn for each element; an
 * element's error is reported by @fn, the others still run.
 */
static void cfg_each_word(struct cfg_parser *p, const char *value, void *obj,
			  void (*fn)(struct cfg_parser *, void *, const char *), size_t *count)
{
	char *copy = strdup(value), *save = NULL, *w;

	*count = 0;
	if (!copy) {
		cfg_oom(p);
		return;
	}
	for (w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
		(*count)++;
		fn(p, obj, w);
	}
	free(copy);
}

/*
 * A network interface name as the kernel accepts it (dev_valid_name):
 * 1 to IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or white space.
 */
static bool cfg_ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(((struct cfg_vip_if *)0)->ifname))
		return false;
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *c = s; *c; c++)
		if (*c == '/' || *c == ':' || isspace((unsigned char)*c) || !isprint((unsigned char)*c))
			return false;
	return true;
}

/* ADDR[/PREFIX][@IFACE]: the address, and how it is placed (cfg_vip_if). */
static void cfg_add_vip(struct cfg_parser *p, void *obj, const char *w)
{
	struct cfg_group *g = obj;
	struct sockaddr_storage ss;
	struct cfg_vip_if vi = { .ifname = "", .prefix = 0 };
	char addr[128], a[INET6_ADDRSTRLEN];
	char *at, *slash;
	const char *why;
	struct sockaddr_storage *v;
	struct cfg_vip_if *vf;
	long prefix = -1;

	if (strlen(w) >= sizeof(addr)) {
		cfg_err(p, p->lineno, "vip '%.40s...' is too long", w);
		return;
	}
	snprintf(addr, sizeof(addr), "%s", w);
	at = strchr(addr, '@');
	if (at) {
		*at++ = '\0';
		if (!cfg_ifname_ok(at)) {
			cfg_err(p, p->lineno, "vip '%s': '%s' is not a valid interface name (1 to 15 "
				"characters, no '/', ':' or space)", w, at);
			return;
		}
		snprintf(vi.ifname, sizeof(vi.ifname), "%s", at);
	}
	slash = strchr(addr, '/');
	if (slash) {
		char *end;

		*slash++ = '\0';
		errno = 0;
		prefix = strtol(slash, &end, 10);
		if (!*slash || *end || errno || prefix < 1 || prefix > 128) {
			cfg_err(p, p->lineno, "vip '%s': bad prefix length '%s'", w, slash);
			return;
		}
		if (!at) {
			cfg_err(p, p->lineno, "vip '%s' is a network; a single address is needed "
				"here (a prefix length goes with an interface: ADDR/PREFIX@IFACE)", w);
			return;
		}
	}
	why = cfg_addr_parse(addr, &ss);
	if (why) {
		cfg_err(p, p->lineno, "vip '%s' %s", w, why);
		return;
	}
	if (prefix > (ss.ss_family == AF_INET ? 32 : 128)) {
		cfg_err(p, p->lineno, "vip '%s': prefix length %ld is too long for the address", w,
			prefix);
		return;
	}
	vi.prefix = (uint8_t)(prefix > 0 ? prefix : ss.ss_family == AF_INET ? 32 : 128);
	for (size_t i = 0; i < p->c->ngroups; i++) {
		const struct cfg_group *o = &p->c->groups[i];
		for (size_t j = 0; j < o->nvips; j++) {
			if (!sa_same_host(&o->vips[j], &ss))
				continue;
			if (o == g)
				cfg_err(p, p->lineno, "vip %s is listed twice",
					cfg_addr_str(&ss, a, sizeof(a)));
			else
				cfg_err(p, p->lineno, "vip %s is already a vip of group %s (line %d)",
					cfg_addr_str(&ss, a, sizeof(a)), o->name, o->line);
			return;
		}
	}
	v = realloc(g->vips, (g->nvips + 1) * sizeof(*g->vips));
	if (!v) {
		cfg_oom(p);
		return;
	}
	g->vips = v;
	vf = realloc(g->vip_ifs, (g->nvips + 1) * sizeof(*g->vip_ifs));
	if (!vf) {
		cfg_oom(p);
		return;
	}
	g->vip_ifs = vf;
	g->vip_ifs[g->nvips] = vi;
	g->vips[g->nvips++] = ss;
}

bool cfg_manages_vips(const struct cfg_cluster *c)
{
	for (size_t i = 0; i < c->ngroups; i++) {
		const struct cfg_group *g = &c->groups[i];

		for (size_t v = 0; g->ownership != CFG_OWN_MANAGED && v < g->nvips; v++)
			if (g->vip_ifs[v].ifname[0])
				return true;
	}
	return false;
}

static void cfg_add_node(struct cfg_parser *p, void *obj, const char *w)
{
	struct cfg_group *g = obj;
	char **v, *dup;

	if (!cfg_name_ok(w)) {
		cfg_err(p, p->lineno, "bad node name '%s' (" CFG_NAME_RULE ")", w);
		return;
	}
	for (size_t i = 0; i < g->nnodes; i++) {
		if (strcmp(g->nodes[i], w) == 0) {
			cfg_err(p, p->lineno, "node %s is listed twice", w);
			return;
		}
	}
	v = realloc(g->nodes, (g->nnodes + 1) * sizeof(*g->nodes));
	if (!v) {
		cfg_oom(p);
		return;
	}
	g->nodes = v;
	dup = strdup(w);
	if (!dup) {
		cfg_oom(p);
		return;
	}
	g->nodes[g->nnodes++] = dup;
}

static void cfg_add_client(struct cfg_parser *p, void *obj, const char *w)
{
	struct cfg_export *e = obj;
	struct cfg_net net, *v;
	char why[128];

	if (cfg_net_parse_why(w, &net, why, sizeof(why)) < 0) {
		cfg_err(p, p->lineno, "clients: '%s': %s", w, why);
		return;
	}
	v = realloc(e->clients, (e->nclients + 1) * sizeof(*e->clients));
	if (!v) {
		cfg_oom(p);
		return;
	}
	e->clients = v;
	e->clients[e->nclients++] = net;
}

static int cfg_set_str(struct cfg_parser *p, char **field, const char *value)
{
	char *dup = strdup(value);

	if (!dup) {
		cfg_oom(p);
		return -1;
	}
	free(*field);
	*field = dup;
	return 0;
}

/* A number for key @k in [@min, @max]; 0, or -1 after reporting why not. */
static int cfg_number(struct cfg_parser *p, const struct cfg_key *k, const char *value,
		      uint32_t min, uint32_t max, uint32_t *u)
{
	int rc = cfg_parse_u32(value, min, max, u);

	if (rc == -EINVAL)
		cfg_err(p, p->lineno, "%s = '%s': not a number (decimal digits only)",
			k->name, value);
	else if (rc < 0)
		cfg_err(p, p->lineno, "%s = %s is out of range (%u..%u)", k->name, value,
			min, max);
	return rc < 0 ? -1 : 0;
}

/* Store @value for key @k in @obj (the current section's object). */
/* A bool key written as one of two words: @w1 sets @field to @v1, @w2 to
 * the other value. */
static void cfg_set_word_bool(struct cfg_parser *p, const struct cfg_key *k, const char *value,
			      void *field, const char *w1, bool v1, const char *w2)
{
	if (strcmp(value, w1) == 0)
		*(bool *)field = v1;
	else if (strcmp(value, w2) == 0)
		*(bool *)field = !v1;
	else
		cfg_err(p, p->lineno, "%s = '%s': expected %s or %s", k->name, value, w1, w2);
}

static void cfg_set(struct cfg_parser *p, const struct cfg_key *k, void *obj,
		    const char *value)
{
	void *field = (char *)obj + k->off;
	enum log_level lvl;
	const char *why;
	uint32_t u;
	size_t n = 0;
	bool b;

	switch (k->type) {
	case T_NAME:
		if (!cfg_name_ok(value)) {
			cfg_err(p, p->lineno, "%s = '%s': not a valid name (" CFG_NAME_RULE ")",
				k->name, value);
			return;
		}
		cfg_set_str(p, field, value);
		return;
	case T_ABSPATH:
		if (value[0] != '/') {
			cfg_err(p, p->lineno, "%s = '%s': must be an absolute path", k->name, value);
			return;
		}
		cfg_set_str(p, field, value);
		return;
	case T_LOGLEVEL:
		if (log_level_parse(value, &lvl) < 0) {
			cfg_err(p, p->lineno, "%s = '%s': expected error, warn, info or debug",
				k->name, value);
			return;
		}
		cfg_set_str(p, field, value);
		return;
	case T_LOGTARGET:
		if (value[0] != '/' && strcmp(value, "auto") != 0 && strcmp(value, "stderr") != 0 &&
		    strcmp(value, "syslog") != 0 && strcmp(value, "journal") != 0) {
			cfg_err(p, p->lineno, "%s = '%s': expected auto, stderr, syslog, journal or "
				"an absolute path", k->name, value);
			return;
		}
		cfg_set_str(p, field, value);
		return;
	case T_LISTEN: {
		struct cfg_listen *l = field;
		char host[INET6_ADDRSTRLEN + 2];
		const char *colon = strrchr(value, ':');
		size_t hl = colon ? (size_t)(colon - value) : 0;

		if (!colon || hl == 0 || hl >= sizeof(host) ||
		    cfg_parse_u32(colon + 1, 1, 65535, &u) < 0) {
			cfg_err(p, p->lineno, "%s = '%s': expected ADDRESS:PORT ([ADDRESS]:PORT "
				"for IPv6)", k->name, value);
			return;
		}
		memcpy(host, value, hl);
		host[hl] = '\0';
		if (host[0] == '[' && host[hl - 1] == ']') {
			memmove(host, host + 1, hl - 2);
			host[hl - 2] = '\0';
		}
		memset(&l->addr, 0, sizeof(l->addr));
		if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&l->addr)->sin_addr) == 1) {
			((struct sockaddr_in *)&l->addr)->sin_family = AF_INET;
			((struct sockaddr_in *)&l->addr)->sin_port = htons((uint16_t)u);
		} else if (inet_pton(AF_INET6, host,
				     &((struct sockaddr_in6 *)&l->addr)->sin6_addr) == 1) {
			((struct sockaddr_in6 *)&l->addr)->sin6_family = AF_INET6;
			((struct sockaddr_in6 *)&l->addr)->sin6_port = htons((uint16_t)u);
		} else {
			cfg_err(p, p->lineno, "%s = '%s': '%s' is not an IPv4 or IPv6 address",
				k->name, value, host);
			return;
		}
		l->set = true;
		return;
	}
	case T_PORT:
		if (cfg_number(p, k, value, 1, 65535, &u) == 0)
			*(uint16_t *)field = (uint16_t)u;
		return;
	case T_U32:
		if (cfg_number(p, k, value, k->min, k->max, &u) == 0)
			*(uint32_t *)field = u;
		return;
	case T_FSID:
		if (cfg_number(p, k, value, k->min, k->max, &u) < 0)
			return;
		for (size_t i = 0; i < p->c->nexports; i++) {
			const struct cfg_export *o = &p->c->exports[i];
			if (o != obj && o->fsid == u) {
				cfg_err(p, p->lineno, "fsid %u is already the fsid of export %s (line %d)",
					u, o->path, o->line);
				return;
			}
		}
		*(uint32_t *)field = u;
		return;
	case T_BOOL:
		if (cfg_parse_bool(value, &b) < 0) {
			cfg_err(p, p->lineno, "%s = '%s': expected yes or no (true/false, on/off, 1/0)",
				k->name, value);
			return;
		}
		*(bool *)field = b;
		return;
	case T_SECCOMP:
		if (strcasecmp(value, "on") == 0)
			*(enum sbx_mode *)field = SBX_ON;
		else if (strcasecmp(value, "log") == 0)
			*(enum sbx_mode *)field = SBX_LOG;
		else if (strcasecmp(value, "off") == 0)
			*(enum sbx_mode *)field = SBX_OFF;
		else
			cfg_err(p, p->lineno, "%s = '%s': expected on, log or off", k->name, value);
		return;
	case T_OWNERSHIP:
		if (strcasecmp(value, "lease") == 0)
			*(enum cfg_ownership *)field = CFG_OWN_LEASE;
		else if (strcasecmp(value, "managed") == 0)
			*(enum cfg_ownership *)field = CFG_OWN_MANAGED;
		else
			cfg_err(p, p->lineno, "%s = '%s': expected lease or managed", k->name, value);
		return;
	case T_JOURNAL_IO:
		cfg_set_word_bool(p, k, value, field, "uring", false, "thread");
		return;
	case T_LOOP_PRIO:
		cfg_set_word_bool(p, k, value, field, "realtime", true, "normal");
		return;
	case T_CPU:
		if (strcmp(value, "none") == 0)
			*(int *)field = -1;
		else if (cfg_parse_u32(value, 0, CFG_CPU_MAX, &u) == 0)
			*(int *)field = (int)u;
		else
			cfg_err(p, p->lineno, "%s = '%s': expected none or a CPU number (0..%u)",
				k->name, value, CFG_CPU_MAX);
		return;
	case T_ADDR: {
		struct cfg_node *node = obj;
		why = cfg_addr_parse(value, &node->address);
		if (why) {
			cfg_err(p, p->lineno, "%s '%s' %s", k->name, value, why);
			return;
		}
		node->has_address = true;
		return;
	}
	case T_VIPS:
		cfg_each_word(p, value, obj, cfg_add_vip, &n);
		break;
	case T_NODES:
		cfg_each_word(p, value, obj, cfg_add_node, &n);
		break;
	case T_CLIENTS:
		cfg_each_word(p, value, obj, cfg_add_client, &n);
		break;
	case T_ACCESS: {
		struct cfg_export *e = obj;
		if (strcasecmp(value, "rw") == 0)
			e->rw = true;
		else if (strcasecmp(value, "ro") == 0)
			e->rw = false;
		else
			cfg_err(p, p->lineno, "access = '%s': expected rw or ro", value);
		return;
	}
	case T_SQUASH: {
		struct cfg_export *e = obj;
		if (strcasecmp(value, "root") == 0) {
			e->root_squash = true;
			e->all_squash = false;
		} else if (strcasecmp(value, "none") == 0) {
			e->root_squash = e->all_squash = false;
		} else if (strcasecmp(value, "all") == 0) {
			e->root_squash = e->all_squash = true;
		} else {
			cfg_err(p, p->lineno, "squash = '%s': expected root, none or all", value);
		}
		return;
	}
	}
	/* The list types: an empty list (only separators) is an error. */
	if (n == 0 && !p->fatal)
		cfg_err(p, p->lineno, "%s needs at least one %s", k->name,
			k->type == T_NODES ? "node name" : "address");
}

/* inih's handler: one "key = value" line.  Always 1: errors are ours. */
static int cfg_on_key(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parser *p = user;
	const struct cfg_key *keys;
	struct cfg_sect *s;
	char sect[CFG_NAME_MAX + PATH_MAX];
	size_t k;

	(void)section; /* inih's copy is truncated; ours is p->sects[p->cur] */
	if (p->fatal)
		return 1;
	if (p->cur_kind == SECT_BAD)
		return 1; /* the header was reported; its keys would only add noise */
	if (!*name) {
		cfg_err(p, p->lineno, "no key name before '='");
		return 1;
	}
	if (p->cur_kind == SECT_NONE) {
		cfg_err(p, p->lineno, "'%s' is outside any section (start with [cluster])", name);
		return 1;
	}
	s = &p->sects[p->cur];
	keys = cfg_keys[s->kind];
	for (k = 0; keys[k].name; k++)
		if (strcmp(keys[k].name, name) == 0)
			break;
	if (!keys[k].name) {
		cfg_err(p, p->lineno, "unknown key '%s' in %s", name,
			cfg_sect_str(p, s, sect, sizeof(sect)));
		return 1;
	}
	if (s->key_line[k]) {
		cfg_err(p, p->lineno, "duplicate key '%s' (first set at line %d)", name,
			s->key_line[k]);
		return 1;
	}
	s->key_line[k] = p->lineno;
	if (!*value) {
		cfg_err(p, p->lineno, "%s needs a value", name);
		return 1;
	}
	cfg_set(p, &keys[k], cfg_obj(p, s), value);
	return 1;
}

/* ---- pass 1: lines ---------------------------------------------------- */

/* Cut a ';' or '#' comment that starts the line or follows a blank. */
static void cfg_strip_comment(char *s)
{
	for (char *q = s; *q; q++) {
		if ((*q == ';' || *q == '#') && (q == s || q[-1] == ' ' || q[-1] == '\t')) {
			*q = '\0';
			return;
		}
	}
}

/*
 * inih's reader (fgets-like, into @str of @num bytes): one line of the file
 * per call, as inih should see it.  Counts lines for the handler, and
 * reports what inih would not tell us (see the file header).
 */
static char *cfg_read_line(char *str, int num, void *stream)
{
	struct cfg_parser *p = stream;
	/* inih needs room for "\r\n\0" beyond the text (ini.h, INI_MAX_LINE). */
	size_t max = num > 3 ? (size_t)num - 3 : 0;
	ssize_t n;
	size_t len;
	char *s, *e;

	if (p->fatal)
		return NULL;
	errno = 0;
	n = getline(&p->buf, &p->bufcap, p->in);
	if (n < 0) {
		if (ferror(p->in))
			p->fatal = errno ? -errno : -EIO;
		else if (errno == ENOMEM)
			p->fatal = -ENOMEM;
		return NULL;
	}
	p->lineno++;
	sha256_update(&p->sha, (size_t)n, (const uint8_t *)p->buf);
	str[0] = '\0';
	s = p->buf;
	len = (size_t)n;
	if (len && s[len - 1] == '\n')
		len--;
	if (len && s[len - 1] == '\r')
		len--;
	s[len] = '\0';
	if (strlen(s) != len) {
		cfg_err(p, p->lineno, "line contains a NUL byte");
		return str;
	}
	if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;
		len -= 3;
	}
	if (len > max) {
		cfg_err(p, p->lineno, "line too long (%zu characters, at most %zu)", len, max);
		return str;
	}
	cfg_strip_comment(s);
	s += strspn(s, " \t");
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]);)
		*--e = '\0';
	if (!*s)
		return str;
	if (*s == '[') {
		cfg_on_section(p, s);
		return str;
	}
	if (!strchr(s, '=')) {
		cfg_err(p, p->lineno, "expected 'key = value' or a [section] header");
		return str;
	}
	memcpy(str, s, strlen(s) + 1); /* fits: strlen(s) <= len <= max */
	return str;
}

/* ---- pass 2 ----------------------------------------------------------- */

static void cfg_check_required(struct cfg_parser *p)
{
	char sect[CFG_NAME_MAX + PATH_MAX];

	for (size_t i = 0; i < p->nsects; i++) {
		const struct cfg_sect *s = &p->sects[i];
		const struct cfg_key *keys = cfg_keys[s->kind];
		for (size_t k = 0; keys[k].name; k++)
			if (keys[k].required && !s->key_line[k])
				cfg_err(p, s->line, "%s: missing required key '%s'",
					cfg_sect_str(p, s, sect, sizeof(sect)), keys[k].name);
	}
}

static int cfg_key_line(const struct cfg_sect *s, const char *name)
{
	const struct cfg_key *keys = cfg_keys[s->kind];

	for (size_t k = 0; keys[k].name; k++)
		if (strcmp(keys[k].name, name) == 0)
			return s->key_line[k];
	return 0;
}

/* Group -> node references, export -> group references. */
static void cfg_check_refs(struct cfg_parser *p)
{
	struct cfg_cluster *c = p->c;

	for (size_t i = 0; i < p->nsects; i++) {
		const struct cfg_sect *s = &p->sects[i];
		if (s->kind == SECT_GROUP) {
			const struct cfg_group *g = &c->groups[s->idx];
			for (size_t j = 0; j < g->nnodes; j++)
				if (cfg_node_idx(c, g->nodes[j]) < 0)
					cfg_err(p, cfg_key_line(s, "nodes"),
						"group %s: unknown node '%s' (there is no [node %s])",
						g->name, g->nodes[j], g->nodes[j]);
		} else if (s->kind == SECT_EXPORT) {
			struct cfg_export *e = &c->exports[s->idx];
			ssize_t gi;
			if (!e->group_name)
				continue;
			gi = cfg_group_idx(c, e->group_name);
			if (gi < 0) {
				cfg_err(p, cfg_key_line(s, "group"),
					"export %s: unknown group '%s' (there is no [group %s])",
					e->path, e->group_name, e->group_name);
				continue;
			}
			/* Safe now: the groups array no longer moves. */
			e->group = &c->groups[gi];
			e->group->nexports++;
		}
	}
}

/*
 * No export may contain another, of any group.  Across groups, a file would
 * belong to two groups (two owners, two lock tables: two clients granted
 * the same exclusive lock through two VIPs).  Within one group, an export
 * around the group's first export would reach its .sgnfs/ (journal, lease,
 * client list) by name.  This compares the configured strings;
 * cfg_check_host() repeats it on resolved paths (symlinks followed).
 */
static void cfg_check_nesting(struct cfg_parser *p)
{
	const struct cfg_cluster *c = p->c;

	for (size_t j = 0; j < c->nexports; j++) {
		const struct cfg_export *b = &c->exports[j];
		for (size_t i = 0; i < j; i++) {
			const struct cfg_export *a = &c->exports[i];
			bool b_in_a = cfg_path_inside(b->path, a->path);
			if (!a->group || !b->group)
				continue;
			if (!b_in_a && !cfg_path_inside(a->path, b->path))
				continue;
			cfg_err(p, b->line, "export %s (group %s) is %s export %s (group %s, line %d);"
				" exports must not nest",
				b->path, b->group->name, b_in_a ? "inside" : "around",
				a->path, a->group->name, a->line);
		}
	}
}

static void cfg_check_groups(struct cfg_parser *p)
{
	for (size_t i = 0; i < p->c->ngroups; i++) {
		const struct cfg_group *g = &p->c->groups[i];
		if (g->nexports == 0)
			cfg_err(p, g->line, "group %s has no [export] (each group needs one: "
				"its state lives in .sgnfs/ of its first export)", g->name);
	}
}

/* group->exports, in file order; only on a good file.  Also settles each
 * group's ownership, which may come from [cluster] further down. */
static int cfg_link_exports(struct cfg_cluster *c)
{
	for (size_t i = 0; i < c->ngroups; i++)
		if (c->groups[i].ownership == CFG_OWN_INHERIT)
			c->groups[i].ownership = c->ownership;
	for (size_t i = 0; i < c->ngroups; i++) {
		c->groups[i].exports = calloc(c->groups[i].nexports, sizeof(struct cfg_export *));
		if (!c->groups[i].exports)
			return -ENOMEM;
		c->groups[i].nexports = 0;
	}
	for (size_t i = 0; i < c->nexports; i++) {
		struct cfg_group *g = c->exports[i].group;
		g->exports[g->nexports++] = &c->exports[i];
	}
	for (size_t i = 0; i < c->ngroups; i++) {
		struct cfg_group *g = &c->groups[i];

		if (g->nexports == 0)
			continue;
		if (asprintf(&g->statedir, "%s/" SF_STATE_DIR, g->exports[0]->path) < 0) {
			g->statedir = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static void cfg_check(struct cfg_parser *p)
{
	if (!p->cluster_line)
		cfg_err(p, 1, "no [cluster] section");
	if (p->c->nnodes == 0)
		cfg_err(p, 1, "no [node NAME] section");
	cfg_check_required(p);
	cfg_check_refs(p);
	cfg_check_groups(p);
	cfg_check_nesting(p);
	for (size_t i = 0; i < p->nsects; i++)
		if (p->sects[i].kind == SECT_CLUSTER)
			p->c->handle_key_line = cfg_key_line(&p->sects[i], "handle_key");
}

/* ---- entry points ------------------------------------------------------ */

static struct cfg_cluster *cfg_new(const char *path)
{
	struct cfg_cluster *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->path = strdup(path);
	c->run_dir = strdup("/run/sgnfs");
	c->log_level = strdup("info");
	c->log = strdup("auto");
	if (!c->path || !c->run_dir || !c->log_level || !c->log) {
		cfg_free(c);
		return NULL;
	}
	c->nfs_port = 2049;
	c->mount_port = 20048;
	c->pmap_port = 111;
	c->nlm_port = 4045;
	c->nsm_port = 662;
	c->peer_port = 20050; /* PEER_DEFAULT_PORT (cluster/peer.h) */
	c->use_rpcbind = false;
	c->max_record = 1024 * 1024 + 4096; /* a 1 MiB READ/WRITE plus headers */
	c->max_conns = 1024;
	c->max_conns_per_host = 64;
	c->max_inflight_mb = 1024;
	c->max_inflight_mb_per_host = 64;
	c->max_names_per_host = 1024;
	c->max_queued_per_group = 256;
	c->max_queued_per_host = 64;
	c->max_locks_per_host = 65536;
	c->max_names = 65536;
	c->max_locks = 4194304;
	c->idle_timeout_s = 300;
	c->drc_entries = 16384;
	c->open_handles = 4096;
	c->drc_entries_per_host = 1024;
	c->drc_ttl_s = 120;
	c->seccomp = SBX_ON;
	c->watchdog_ms = 5000;
	c->journal_inflight = 1;
	c->journal_gather = true;
	c->ownership = CFG_OWN_LEASE;
	/* Real-time loop by default: docs/configuration.md, loop_priority. */
	c->loop_realtime = true;
	c->loop_cpu = -1;
	return c;
}

int cfg_load(const char *path, FILE *errs, struct cfg_cluster **out)
{
	struct cfg_parser p = { .path = path, .errs = errs, .cur_kind = SECT_NONE };
	int rc;

	*out = NULL;
	p.in = fopen(path, "re");
	if (!p.in)
		return -errno;
	p.c = cfg_new(path);
	if (!p.c) {
		rc = -ENOMEM;
		goto out_close;
	}
	sha256_init(&p.sha);
	rc = ini_parse_stream(cfg_read_line, &p, cfg_on_key, &p);
	if (rc == -2)
		cfg_oom(&p);
	else if (rc > 0 && p.nerrs == 0) /* inih refused a line we passed: a bug */
		cfg_err(&p, rc, "syntax error");
	if (!p.fatal)
		cfg_check(&p);
	if (p.fatal) {
		rc = p.fatal;
	} else if (p.nerrs) {
		rc = -EINVAL;
		if (p.errs)
			cfg_print_errors(&p);
	} else {
		rc = cfg_link_exports(p.c);
		if (rc == 0) {
			static const char hex[] = "0123456789abcdef";
			uint8_t d[SHA256_DIGEST_SIZE];

			sha256_digest(&p.sha, sizeof(d), d);
			for (size_t i = 0; i < sizeof(d); i++) {
				p.c->sha256[2 * i] = hex[d[i] >> 4];
				p.c->sha256[2 * i + 1] = hex[d[i] & 15];
			}
			*out = p.c;
			p.c = NULL;
		}
	}
	cfg_free(p.c);
	for (size_t i = 0; i < p.nmsgs; i++)
		free(p.msgs[i].text);
	free(p.msgs);
	free(p.sects);
	free(p.buf);
out_close:
	fclose(p.in);
	return rc;
}

void cfg_free(struct cfg_cluster *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nnodes; i++)
		free(c->nodes[i].name);
	for (size_t i = 0; i < c->ngroups; i++) {
		struct cfg_group *g = &c->groups[i];
		for (size_t j = 0; j < g->nnodes; j++)
			free(g->nodes[j]);
		free(g->nodes);
		free(g->vips);
		free(g->vip_ifs);
		free(g->exports);
		free(g->statedir);
		free(g->name);
	}
	for (size_t i = 0; i < c->nexports; i++) {
		free(c->exports[i].path);
		free(c->exports[i].group_name);
		free(c->exports[i].clients);
	}
	free(c->nodes);
	free(c->groups);
	free(c->exports);
	free(c->path);
	free(c->name);
	free(c->run_dir);
	free(c->log_level);
	free(c->handle_key);
	free(c->peer_key);
	free(c->log);
	free(c);
}

/* ---- checks against this machine (sgnfsd -t) --------------------------- */

int cfg_check_host(const struct cfg_cluster *c, FILE *errs)
{
	char **real = calloc(c->nexports ? c->nexports : 1, sizeof(char *));
	struct hk_set ks;
	char why[200];
	int nerrs = 0;

	if (!real)
		return -ENOMEM;
	if (!c->handle_key) {
		fprintf(errs, "%s: [cluster] has no handle_key: every file handle is signed with "
			"a key all nodes share; create one with `sgnfsctl keygen FILE` and name it "
			"as handle_key = FILE\n", c->path);
		nerrs++;
	} else if (hk_load(c->handle_key, &ks, why, sizeof(why)) < 0) {
		fprintf(errs, "%s:%d: handle_key %s: %s\n", c->path, c->handle_key_line,
			c->handle_key, why);
		nerrs++;
	}
	explicit_bzero(&ks, sizeof(ks));
	if (c->peer_key && hk_load(c->peer_key, &ks, why, sizeof(why)) < 0) {
		fprintf(errs, "%s: peer_key %s: %s\n", c->path, c->peer_key, why);
		nerrs++;
	}
	explicit_bzero(&ks, sizeof(ks));
	if (c->loop_cpu >= 0) {
		cpu_set_t cs;

		if (sched_getaffinity(0, sizeof(cs), &cs) == 0 && !CPU_ISSET(c->loop_cpu, &cs)) {
			/* Name the CPUs it may use, so the fix is in the message. */
			char list[128];
			size_t n = 0;
			bool cut = false;

			list[0] = '\0';
			for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
				if (!CPU_ISSET(cpu, &cs))
					continue;
				if (n + 16 >= sizeof(list)) {
					cut = true;
					break;
				}
				n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%d", n ? "," : "",
						      cpu);
			}
			fprintf(errs, "%s: loop_cpu = %d: not a CPU sgnfsd may use on this machine "
				"(it may use CPU%s %s%s); the node would run with its loop not pinned\n",
				c->path, c->loop_cpu, CPU_COUNT(&cs) > 1 ? "s" : "", list,
				cut ? ",..." : "");
			nerrs++;
		}
	}
	for (size_t i = 0; i < c->nexports; i++) {
		const struct cfg_export *e = &c->exports[i];
		struct stat st;

		real[i] = realpath(e->path, NULL);
		if (!real[i]) {
			fprintf(errs, "%s:%d: export %s: %s\n", c->path, e->line, e->path,
				errno == ENOENT ? "does not exist" : strerror(errno));
			nerrs++;
		} else if (stat(real[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			fprintf(errs, "%s:%d: export %s: not a directory\n", c->path, e->line,
				e->path);
			nerrs++;
		}
	}
	/* Resolved, symlinks followed: /srv/g2/link -> /srv/g1/data nests as
	 * surely as /srv/g1/data does.  Equal resolved paths nest too. */
	for (size_t j = 0; j < c->nexports; j++) {
		for (size_t i = 0; i < j; i++) {
			const struct cfg_export *a = &c->exports[i], *b = &c->exports[j];
			bool same, b_in_a;

			if (!real[i] || !real[j])
				continue;
			same = strcmp(real[i], real[j]) == 0;
			b_in_a = cfg_path_inside(real[j], real[i]);
			if (!same && !b_in_a && !cfg_path_inside(real[i], real[j]))
				continue;
			fprintf(errs, "%s:%d: export %s (group %s) resolves to %s, which is %s "
				"export %s (group %s, line %d, resolves to %s); exports must not nest\n",
				c->path, b->line, b->path, b->group->name, real[j],
				same ? "the same directory as" : b_in_a ? "inside" : "around",
				a->path, a->group->name, a->line, real[i]);
			nerrs++;
		}
	}
	for (size_t i = 0; i < c->nexports; i++)
		free(real[i]);
	free(real);
	return nerrs;
}

const struct cfg_node *cfg_node_find(const struct cfg_cluster *c, const char *name)
{
	ssize_t i = cfg_node_idx(c, name);

	return i < 0 ? NULL : &c->nodes[i];
}

bool cfg_node_peer_addr(const struct cfg_cluster *c, const struct cfg_node *n,
			struct sockaddr_storage *out)
{
	uint16_t port = n->peer_port ? n->peer_port : c->peer_port;

	if (!n->has_address)
		return false;
	*out = n->address;
	if (out->ss_family == AF_INET)
		((struct sockaddr_in *)out)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)out)->sin6_port = htons(port);
	return true;
}

const char *cfg_peer_key_path(const struct cfg_cluster *c)
{
	return c->peer_key ? c->peer_key : c->handle_key;
}

const char *cfg_ownership_name(enum cfg_ownership o)
{
	return o == CFG_OWN_MANAGED ? "managed" : "lease";
}

const struct cfg_group *cfg_group_find(const struct cfg_cluster *c, const char *name)
{
	ssize_t i = cfg_group_idx(c, name);

	return i < 0 ? NULL : &c->groups[i];
}

const struct cfg_export *cfg_export_by_fsid(const struct cfg_cluster *c, uint32_t fsid)
{
	for (size_t i = 0; i < c->nexports; i++)
		if (c->exports[i].fsid == fsid)
			return &c->exports[i];
	return NULL;
}

const struct cfg_export *cfg_export_by_path(const struct cfg_cluster *c, const char *path)
{
	for (size_t i = 0; i < c->nexports; i++)
		if (strcmp(c->exports[i].path, path) == 0)
			return &c->exports[i];
	return NULL;
}
