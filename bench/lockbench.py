#!/usr/bin/python3
"""
lockbench.py - the lock-service benchmarks of bench/run-all.sh: sgnfs against
NFS-Ganesha 4.3, on the same machine, in the same run.

  bench/lockbench.py --build BUILD_DIR --out FILE.json [--sections ...]

Sections (each writes its part of FILE.json; a failing section is recorded
with its error and the others still run):

  lock       LOCK+UNLOCK pairs (sgnfs-client bench-lock): pipelined (N hosts
             x M owners at depth D), single (1x1, depth 1), only-lock (many
             hosts, one owner, depth 1: every pair is its client's only lock,
             so a server that records clients per lock pays each time); and
             libnfs: a third-party client (libnfs's NLM v4, bench/getattr_bench
             --lock) on one connection at depth 32, an owner per slot.
             Runs alternate sgnfs (lock journal on, as shipped) / sgnfs with
             `journal = off` / Ganesha, repeated; medians and ratios.
  null       NLM NULL calls/s (bench/nlm_null_bench) at the same hosts x depth
             as the lock variants: the RPC ceiling of the lock path.  For
             the pipelined variant once more, journal off, with both load
             generators polling (--poll-us, BENCH_POLL_US) and the server's
             CPU per call measured (polled_pair).
  failover   kill -9 of the owner of a group holding H hosts x 10 locks
             (H = 100, 1000): milestones from the daemon log and the clients'
             event lines, with the lock journal on and off (off: the plain
             grace).  Ganesha: kill -9 + restart of the whole server (new
             "owner"), sm-notify of its statd list, reclaims in grace.
  isolation  p99 and refusals on the other groups while one fails over
             (sgnfs: 3 groups, bench-lock on two of them while the third's
             owner is killed; Ganesha: the export that did not move, after
             the restart).
  scale      lock ops/s on one file as the locks held on it grow 10 ->
             100,000 (bench-lock beside `hold`), the pure engine
             (bench/lk_bench), and sgnfsd's VmRSS per held lock with
             1,000,000 locks held.

Everything runs in private network namespaces (sgnfs in one, Ganesha with
its own rpcbind and rpc.statd in another, see ganesha.sh); the clients run
inside the namespace of the server they load.  Every process and namespace
started here is stopped on exit, whatever the exit path.

Environment: BENCH_WORK (scratch, default /var/tmp/sgnfs-bench), BENCH_SECONDS
(seconds per throughput run, default 4), BENCH_REPEAT (throughput repeats,
default 3), BENCH_FO_REPEAT (failover repeats, default 2), BENCH_GRACE (grace
seconds for both servers, default 10), BENCH_MEM_LOCKS (default 1000000),
BENCH_FO_HOSTS (client hosts per failover run, default 100,1000),
BENCH_SG_EXTRA ([cluster] lines for sgnfs, ';'-separated), BENCH_HOLD_TIMEOUT_MS
(per-call timeout of the hold client, default 10000),
BENCH_SCALE_STEPS (lock counts of the scale rows, default
10,100,1000,10000,100000; 10000 must be one: the memory baseline),
BENCH_ISO_HOSTS (hosts holding the failing group's locks, default 1000),
BENCH_ISO_REPEAT (sgnfs isolation repeats, default 5), BENCH_NS (prefix of the
network namespaces' names, default sgnfs-bench), BENCH_JOURNAL_IO (sgnfs's
[cluster] journal_io: uring or thread; default: not set, i.e. uring),
BENCH_POLL_US (the clients' --poll-us in the lock path's polled pair, default
50), BENCH_PROFILE (1: after the measured repeats of the lock section, one extra,
unmeasured run of each sgnfs row under `perf record` of sgnfsd, summed into
lock.VARIANT.profile.{sgnfs,sgnfs_nojournal,null_sgnfs} by bench/perfprof.py;
0: none; default 1 when perf is in PATH).

Python 3 standard library only.
"""

import argparse
import collections
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback

import perfprof

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(SRC, 'bench')
WORK = os.path.join(os.environ.get('BENCH_WORK', '/var/tmp/sgnfs-bench'), 'lock')
SECS = int(os.environ.get('BENCH_SECONDS', '4'))
REPEAT = int(os.environ.get('BENCH_REPEAT', '3'))
FO_REPEAT = int(os.environ.get('BENCH_FO_REPEAT', '2'))
GRACE = int(os.environ.get('BENCH_GRACE', '10'))
MEM_LOCKS = int(os.environ.get('BENCH_MEM_LOCKS', '1000000'))
# more [cluster] lines for every sgnfs cluster, ';'-separated (e.g. a longer
# watchdog_ms for the scale section on a loaded machine)
SG_EXTRA = [x.strip() for x in os.environ.get('BENCH_SG_EXTRA', '').split(';') if x.strip()]
# per-call timeout of the `hold` client (a loaded machine needs more)
HOLD_TIMEOUT_MS = int(os.environ.get('BENCH_HOLD_TIMEOUT_MS', '10000'))
SCALE_STEPS = [int(x) for x in
               os.environ.get('BENCH_SCALE_STEPS', '10,100,1000,10000,100000').split(',')]
# The lock path's polled pair (section_lock): both load generators poll this
# long before they sleep, so the server's sends never wake them.
POLL_US = int(os.environ.get('BENCH_POLL_US', '50'))
# [cluster] journal_io for sgnfs (uring | thread); empty: the default
JOURNAL_IO = os.environ.get('BENCH_JOURNAL_IO', '')
FO_HOSTS = [int(x) for x in os.environ.get('BENCH_FO_HOSTS', '100,1000').split(',')]
ISO_HOSTS = int(os.environ.get('BENCH_ISO_HOSTS', '1000'))
ISO_REPEAT = int(os.environ.get('BENCH_ISO_REPEAT', '5'))

NS_PREFIX = os.environ.get('BENCH_NS', 'sgnfs-bench')
SG_NS = NS_PREFIX + '-lk-sg'
GA_NS = NS_PREFIX + '-lk-ga'
# Ganesha's failover clients serve callbacks (PORTMAP on ADDR:111, NSM): not
# possible inside GA_NS, where rpcbind holds *:111.  They live in GC_NS,
# joined to GA_NS by a veth pair: Ganesha at GA_ADDR, hosts in GC_HOSTS.
GC_NS = NS_PREFIX + '-lk-gc'
GA_ADDR = '10.213.0.1'
GC_ADDR = '10.213.0.2'
GC_HOSTS = '10.214.0.0/16'
# Ganesha's RPC_Ioq_ThrdMax (its default, 200, deadlocks on a few hundred
# concurrent requests of new NLM clients: see ganesha.sh)
GA_THRDMAX = int(os.environ.get('BENCH_GANESHA_THRDMAX', '16384'))
GA_WORK = os.path.join(WORK, 'ganesha')

# Lock throughput variants: (name, hosts, owners per host, depth per host)
VARIANTS = [
    ('pipelined', 4, 4, 16),
    ('single', 1, 1, 1),
    ('only_lock', 64, 1, 1),
    # libnfs's NLM client (bench/getattr_bench --lock): 1 connection,
    # depth 32, each slot its own owner
    ('libnfs', 1, 32, 32),
]

LOGF = None


def log(msg):
    line = '[lockbench %s] %s' % (time.strftime('%H:%M:%S'), msg)
    print(line, file=sys.stderr, flush=True)
    if LOGF:
        LOGF.write(line + '\n')
        LOGF.flush()


class Abort(Exception):
    pass


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


# ---------------------------------------------------------------------------
# processes and namespaces we own


class Runner:
    def __init__(self, build):
        self.build = build
        self.procs = []
        self.netns = set()
        self.ganesha_started = False
        self.tool = {
            'sgnfsd': os.path.join(build, 'src/daemon/sgnfsd'),
            'client': os.path.join(build, 'src/client/sgnfs-client'),
            'ctl': os.path.join(build, 'src/ctl/sgnfsctl'),
            'null': os.path.join(build, 'bench/nlm_null_bench'),
            'lk': os.path.join(build, 'bench/lk_bench'),
        }
        for k, p in self.tool.items():
            if not os.access(p, os.X_OK):
                raise Abort('%s not built (%s)' % (k, p))
        # built only where libnfs-dev is installed: the libnfs row needs it
        gb = os.path.join(build, 'bench/getattr_bench')
        self.tool_gb = gb if os.access(gb, os.X_OK) else None

    def spawn(self, cmd, **kw):
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def run(self, cmd, timeout, env=None, check=False):
        try:
            cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise Abort('timed out after %ss: %s' % (timeout, ' '.join(cmd)))
        out, err = cp.stdout.decode('utf-8', 'replace'), cp.stderr.decode('utf-8', 'replace')
        if LOGF:
            LOGF.write('$ %s -> %d\n%s%s' % (' '.join(cmd), cp.returncode, out[-2000:], err[-2000:]))
        if check and cp.returncode != 0:
            raise Abort('exit %d: %s: %s' % (cp.returncode, ' '.join(cmd), err.strip()[-500:]))
        return cp.returncode, out, err

    @staticmethod
    def stop(p, sig=signal.SIGTERM, wait=10):
        if p is None or p.poll() is not None:
            return
        try:
            p.send_signal(sig)
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        except ProcessLookupError:
            pass

    def netns_add(self, ns):
        self.netns_del(ns)
        subprocess.run(['ip', 'netns', 'add', ns], check=True, timeout=10)
        self.netns.add(ns)
        subprocess.run(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'],
                       check=True, timeout=10)

    def netns_del(self, ns):
        cp = subprocess.run(['ip', 'netns', 'list'], stdout=subprocess.PIPE, timeout=10)
        if not re.search(r'^%s\b' % re.escape(ns), cp.stdout.decode(), re.M):
            self.netns.discard(ns)
            return
        # Everything in our namespaces was started by us.
        cp = subprocess.run(['ip', 'netns', 'pids', ns], stdout=subprocess.PIPE, timeout=10)
        for pid in cp.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(['ip', 'netns', 'del', ns], timeout=10)
        self.netns.discard(ns)

    def ganesha(self, *args, grace=None, timeout=120, check=True):
        env = dict(os.environ, GANESHA_NS=GA_NS, GANESHA_WORK=GA_WORK, GANESHA_NLM='1',
                   GANESHA_STOP_WAIT='2', GANESHA_IOQ_THRDMAX=str(GA_THRDMAX))
        env.pop('GANESHA_GRACE', None)
        if grace:
            env['GANESHA_GRACE'] = str(grace)
        if args[0] == 'start':
            self.ganesha_started = True
        return self.run([os.path.join(BENCH, 'ganesha.sh')] + list(args), timeout, env=env,
                        check=check)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(5)
                except Exception:
                    pass
        if self.ganesha_started:
            try:
                self.ganesha('stop', timeout=60, check=False)
            except Exception:
                pass
        for ns in list(self.netns):
            try:
                self.netns_del(ns)
            except Exception:
                pass

    def ganesha_clients_netns(self):
        """GC_NS, linked to the running GA_NS by a veth pair (deleted with
        GA_NS); every address of GC_HOSTS is local in GC_NS (AnyIP)."""
        self.netns_add(GC_NS)
        for cmd in (['ip', '-n', GA_NS, 'link', 'add', 'vbga', 'type', 'veth', 'peer', 'name', 'vbgc'],
                    ['ip', '-n', GA_NS, 'link', 'set', 'vbgc', 'netns', GC_NS],
                    ['ip', '-n', GA_NS, 'addr', 'add', GA_ADDR + '/24', 'dev', 'vbga'],
                    ['ip', '-n', GA_NS, 'link', 'set', 'vbga', 'up'],
                    ['ip', '-n', GC_NS, 'addr', 'add', GC_ADDR + '/24', 'dev', 'vbgc'],
                    ['ip', '-n', GC_NS, 'link', 'set', 'vbgc', 'up'],
                    ['ip', '-n', GA_NS, 'route', 'add', GC_HOSTS, 'via', GC_ADDR],
                    ['ip', '-n', GC_NS, 'route', 'add', 'local', GC_HOSTS, 'dev', 'lo']):
            self.run(cmd, 10, check=True)

    # ---- tools run inside a namespace

    def nsx(self, ns):
        return ['ip', 'netns', 'exec', ns]

    def resolve(self, ns, server, path, host='127.9.9.9'):
        rc, out, err = self.run(self.nsx(ns) + [self.tool['client'], '--server', server,
                                               '--host', host, 'resolve', path], 30)
        m = re.search(r'\bfh=([0-9a-f]+)', out)
        if rc != 0 or not m:
            raise Abort('cannot resolve %s on %s: %s %s' % (path, server, out, err))
        return m.group(1)

    def run_json(self, cmd, timeout, what):
        """Run a bench tool; its result is the last line of its output that
        is a JSON object, with the exit status added as 'exit'."""
        rc, out, err = self.run(cmd, timeout)
        for line in reversed(out.splitlines()):
            if line.startswith('{'):
                r = json.loads(line)
                r['exit'] = rc
                return r
        raise Abort('%s printed no result (exit %d): %s' % (what, rc, err.strip()[-300:]))

    def bench_lock(self, ns, server, file, hosts, owners, depth, secs, host0='127.1.0.1',
                   poll_us=0):
        cmd = self.nsx(ns) + [self.tool['client'], '--server', server, '--host', host0,
                              '--nhosts', str(hosts), '--owners', str(owners),
                              '--depth', str(depth), '--duration', str(secs), '--json',
                              '--timeout', '5000', '--poll-us', str(poll_us), 'bench-lock', file]
        return self.run_json(cmd, secs + 120, 'bench-lock')

    def libnfs_lock(self, ns, server, export, name, depth, secs):
        if not self.tool_gb:
            raise Abort('bench/getattr_bench not built (libnfs-dev missing)')
        cmd = self.nsx(ns) + [self.tool_gb, server, export, '--lock', name, '--depth',
                              str(depth), '--conns', '1', '--seconds', str(secs),
                              '--warmup', '1', '--timeout', '30']
        return self.run_json(cmd, secs + 120, 'getattr_bench --lock')

    def null_bench(self, ns, server, hosts, depth, secs, host0='127.1.0.1', poll_us=0):
        cmd = self.nsx(ns) + [self.tool['null'], '--server', server, '--host', host0,
                              '--nhosts', str(hosts), '--depth', str(depth),
                              '--duration', str(secs), '--warmup', '1', '--json',
                              '--poll-us', str(poll_us)]
        return self.run_json(cmd, secs + 60, 'nlm_null_bench')


# ---------------------------------------------------------------------------
# an sgnfs cluster in SG_NS


class SgCluster:
    """Nodes and groups of one scenario, with fresh storage: every group's
    export is a new directory holding an empty 4 KiB file `data`."""

    def __init__(self, r, name, groups, nodes=('a',), extra=''):
        self.r = r
        self.dir = os.path.join(WORK, 'sg-' + name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(os.path.join(self.dir, 'run'))
        self.ini = os.path.join(self.dir, 'sgnfs.ini')
        self.groups = groups          # [(name, vip, [nodes])]
        self.procs = {}
        self.logs = {}
        key = os.path.join(self.dir, 'handle.key')
        r.run([r.tool['ctl'], 'keygen', key], 10, check=True)
        lines = ['; written by bench/lockbench.py', '[cluster]', 'name = bench-%s' % name,
                 'run_dir = %s/run' % self.dir, 'log_level = info', 'max_conns = 100000',
                 'handle_key = %s' % key, extra] + SG_EXTRA
        if JOURNAL_IO:
            lines.insert(3, 'journal_io = %s' % JOURNAL_IO)
        for n in nodes:
            lines.append('[node %s]' % n)
        for i, spec in enumerate(groups):
            g, vip, gn = spec[:3]
            exp = self.export(g)
            os.makedirs(exp)
            with open(os.path.join(exp, 'data'), 'wb') as f:
                f.write(b'\0' * 4096)
            os.chmod(os.path.join(exp, 'data'), 0o666)
            lines += ['[group %s]' % g, 'vip = %s' % vip, 'nodes = %s' % ' '.join(gn),
                      'grace = %d' % GRACE] + list(spec[3:]) + [
                      '[export %s]' % exp, 'group = %s' % g, 'fsid = %d' % (201 + i),
                      'access = rw', 'clients = 127.0.0.0/8', 'squash = none']
        with open(self.ini, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        r.run([r.tool['sgnfsd'], '-t', '-c', self.ini], 10, check=True)
        for spec in groups:  # no node serves a group whose storage lacks its identity
            r.run([r.tool['ctl'], '-c', self.ini, 'init', spec[0]], 10, check=True)

    def export(self, g):
        return os.path.join(self.dir, 'exp', g)

    def start(self, node):
        logf = open(os.path.join(self.dir, 'node-%s.log' % node), 'w')
        self.logs[node] = logf.name
        self.procs[node] = self.r.spawn(self.r.nsx(SG_NS) + [self.r.tool['sgnfsd'], '-c', self.ini,
                                                              '-n', node, '-f'],
                                        stdout=logf, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        logf.close()

    def status(self):
        """{group: {owner, state, grace_left, clients, locks}}, clients and
        locks the daemon's counts."""
        rc, out, err = self.r.run([self.r.tool['ctl'], '-c', self.ini, 'status', '--json'], 20)
        try:
            doc = json.loads(out)
        except ValueError:
            return {}
        st = {}
        for nd in doc.get('nodes', []):
            for g in (nd.get('status') or {}).get('groups', []):
                e = dict(g)
                e['owner'] = nd['name']
                # the counts: the lists are cut (docs/status.md)
                for k in ('clients', 'locks'):
                    e[k] = e['n' + k]
                st[g['name']] = e
        return st

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for n, p in self.procs.items():
                if p.poll() is not None and n not in getattr(self, 'killed', ()):
                    raise Abort('sgnfsd %s exited (%s) waiting for %s; log %s' %
                                (n, p.returncode, what, self.logs[n]))
            st = self.status()
            if pred(st):
                return st
            time.sleep(0.1)
        raise Abort('timed out waiting for %s' % what)

    def wait_placed(self, placement, timeout=30):
        """placement: {group: node}; online (or grace) there."""
        return self.wait(lambda st: all(g in st and st[g]['owner'] == n and
                                        st[g]['state'] in ('online', 'grace')
                                        for g, n in placement.items()),
                         timeout, 'placement %s' % placement)

    def kill9(self, node):
        self.killed = getattr(self, 'killed', set()) | {node}
        p = self.procs[node]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)

    def pid(self, node):
        return self.procs[node].pid

    def rss_kb(self, node, field='VmRSS'):
        with open('/proc/%d/status' % self.pid(node)) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
        return None

    def rss_parts_kb(self, node):
        """Where the node's resident memory is, from /proc/PID/smaps: kB
        resident by kind of mapping (heap: the main arena's brk; anon_64k:
        mappings of exactly 64 KiB, the lock nodes' pages (src/lock/lk_slab.c);
        anon_big: other anonymous mappings >= 1 MiB, i.e. other threads'
        malloc arenas and large blocks; anon_other; file; stack)."""
        parts = collections.Counter()
        kind = None
        with open('/proc/%d/smaps' % self.pid(node)) as f:
            for line in f:
                head = line.split()
                if '-' in head[0] and not head[0].endswith(':'):
                    lo, hi = (int(x, 16) for x in head[0].split('-'))
                    name = head[5] if len(head) > 5 else ''
                    size = hi - lo
                    if name == '[heap]':
                        kind = 'heap'
                    elif name.startswith('[stack'):
                        kind = 'stack'
                    elif name.startswith('['):
                        kind = 'anon_other'
                    elif name:
                        kind = 'file'
                    elif size == 64 << 10:
                        kind = 'anon_64k'
                    elif size >= 1 << 20:
                        kind = 'anon_big'
                    else:
                        kind = 'anon_other'
                elif head[0] == 'Rss:' and kind:
                    parts[kind] += int(head[1])
        return dict(parts)

    def stop(self):
        for p in self.procs.values():
            Runner.stop(p, signal.SIGTERM, 10)


# ---------------------------------------------------------------------------
# a long-running `sgnfs-client hold` and what it prints


TS_RE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z host=(\S+) event=(\S+)(.*)$')


def parse_iso(s):
    return datetime.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%f').replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Hold:
    """One `sgnfs-client hold` process: N hosts from host0, commands on
    stdin, results counted, event lines kept with their timestamps."""

    def __init__(self, r, ns, server, host0, nhosts, quiet=False, name='hold', extra=()):
        self.r = r
        cmd = r.nsx(ns) + [r.tool['client'], '--server', server, '--host', host0,
                           '--nhosts', str(nhosts), '--timeout', str(HOLD_TIMEOUT_MS)] + list(extra)
        if quiet:
            cmd.append('--quiet')
        cmd.append('hold')
        self.errf = open(os.path.join(WORK, '%s.stderr' % name), 'w')
        self.p = r.spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errf,
                         bufsize=1 << 20)
        self.cv = threading.Condition()
        self.nres = 0
        self.status = collections.Counter()
        self.events = []           # (t, host, event, rest)
        self.last_result = None
        self.ready = False
        self.th = threading.Thread(target=self._reader, daemon=True)
        self.th.start()
        if quiet:
            # no event lines, no "ready": a NULL call answered is the sign
            self.send(['null\n'])
            self.wait_results(1, 60)
            with self.cv:
                self.ready = True
                self.nres = 0
                self.status.clear()
        deadline = time.time() + 60
        with self.cv:
            while not self.ready and self.p.poll() is None and time.time() < deadline:
                self.cv.wait(0.2)
        if not self.ready:
            raise Abort('hold (%d hosts) did not start: see %s' % (nhosts, self.errf.name))

    def _reader(self):
        for raw in self.p.stdout:
            line = raw.decode('utf-8', 'replace').rstrip('\n')
            if ' event=result ' in line:
                m = re.search(r' status=(\S+)', line)
                with self.cv:
                    self.nres += 1
                    self.status[m.group(1) if m else '?'] += 1
                    self.last_result = (time.time(), line)
                    self.cv.notify_all()
                continue
            m = TS_RE.match(line)
            if m:
                ev = (parse_iso(m.group(1)), m.group(2), m.group(3), m.group(4))
                with self.cv:
                    if ev[2] == 'ready':
                        self.ready = True
                    self.events.append(ev)
                    self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def send(self, lines):
        try:
            self.p.stdin.write(''.join(lines).encode())
            self.p.stdin.flush()
        except BrokenPipeError:
            raise Abort('hold exited (see %s)' % self.errf.name)

    def wait_results(self, n, timeout):
        deadline = time.time() + timeout
        with self.cv:
            while self.nres < n:
                if self.p.poll() is not None:
                    raise Abort('hold exited (see %s)' % self.errf.name)
                left = deadline - time.time()
                if left <= 0:
                    raise Abort('hold: %d of %d results after %ss (%s)' %
                                (self.nres, n, timeout, dict(self.status)))
                self.cv.wait(min(left, 0.5))

    def take_locks(self, fh, nhosts, count, base, first=0, batch=20000, timeout=600):
        """@count exclusive 8-byte locks on fh, 16 bytes apart (a gap between
        any two, so none merge): lock i (from @first) is taken by host
        i mod nhosts on [base + 16 i, base + 16 i + 7].  Returns seconds."""
        want = self.nres
        t0 = time.time()
        buf = []
        for i in range(first, first + count):
            buf.append('@#%d lock fh:%s %d 8\n' % (i % nhosts, fh, base + 16 * i))
            if len(buf) >= batch:
                buf.append('wait\n')
                want += batch
                self.send(buf)
                buf = []
        if buf:
            want += len(buf)
            self.send(buf)
        self.wait_results(want, timeout)
        return time.time() - t0

    def take_shared_all(self, fh, nhosts, lines, base, first=0, batch=20, timeout=900):
        """@lines lines `@all lock fh:FH OFF 8 s`: every host takes a shared
        lock on [base + 16 k, base + 16 k + 7] (k from @first): nhosts x lines
        locks, each of its own owner, none conflicting, none merging.  One
        line serves every host: the tool's per-line cost is O(hosts), so
        `@#INDEX` lines cannot build a million locks in reasonable time."""
        want = self.nres
        t0 = time.time()
        buf = []
        for k in range(first, first + lines):
            buf.append('@all lock fh:%s %d 8 s\n' % (fh, base + 16 * k))
            if len(buf) >= batch:
                buf.append('wait\n')
                want += batch * nhosts
                self.send(buf)
                buf = []
        if buf:
            want += len(buf) * nhosts
            self.send(buf)
        self.wait_results(want, timeout)
        return time.time() - t0

    def count(self, event):
        with self.cv:
            return sum(1 for e in self.events if e[2] == event)

    def events_of(self, event):
        with self.cv:
            return [e for e in self.events if e[2] == event]

    def stop(self):
        Runner.stop(self.p, signal.SIGTERM, 15)
        self.errf.close()


class Prober:
    """Tries a new (non-reclaim) lock every `every` s from its own host until
    one is granted; records when.  One-shot sgnfs-client runs, so a dead or
    restarting server costs it nothing but failed attempts."""

    def __init__(self, r, ns, server, fh, host, start, every=0.05):
        self.r, self.ns, self.server, self.fh, self.host = r, ns, server, fh, host
        self.start_off, self.every = start, every
        self.t_granted = None
        self.attempts = collections.Counter()
        self.stopping = False
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        cmd = self.r.nsx(self.ns) + [self.r.tool['client'], '--server', self.server,
                                     '--host', self.host, '--timeout', '1000', '--no-callbacks',
                                     'lock', 'fh:%s' % self.fh, str(self.start_off), '8']
        while not self.stopping:
            t0 = time.time()
            try:
                cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    timeout=10)
                rc = cp.returncode
            except subprocess.TimeoutExpired:
                rc = 'timeout'
            self.attempts[rc] += 1
            if rc == 0:
                self.t_granted = time.time()
                return
            time.sleep(max(0, self.every - (time.time() - t0)))

    def join(self, timeout):
        self.th.join(timeout)
        self.stopping = True
        return self.t_granted


LOG_RE = re.compile(r'^(\d\d):(\d\d):(\d\d)\.(\d{3}) sgnfsd (\w+): (.*)$')


def daemon_log(path, near):
    """[(epoch, message)] of an sgnfsd log; its HH:MM:SS.mmm (UTC) are put on
    the day that brings them closest to @near."""
    out = []
    day = datetime.datetime.fromtimestamp(near, datetime.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0).timestamp()
    with open(path, errors='replace') as f:
        for line in f:
            m = LOG_RE.match(line.rstrip('\n'))
            if not m:
                continue
            t = day + int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)) + \
                int(m.group(4)) / 1000.0
            if t - near > 43200:
                t -= 86400
            elif near - t > 43200:
                t += 86400
            out.append((t, m.group(6)))
    return out


def first_last(ts):
    return (min(ts), max(ts)) if ts else (None, None)


def rel(t, t0):
    return None if t is None else round(t - t0, 3)


# ---------------------------------------------------------------------------
# sections


def proc_cpu_ticks(pid):
    """utime + stime of process @pid, all its threads, in clock ticks."""
    with open('/proc/%d/stat' % pid) as f:
        x = f.read()
    x = x[x.rindex(')') + 2:].split()
    return int(x[11]) + int(x[12])


def with_server_cpu(pid, fn):
    """fn()'s result, with 'server_us_per_call': process @pid's CPU (every
    thread) per call, sampled over the middle of the run (from 1.5 s in, for
    SECS - 2.5 s: inside the measured window of both load generators, after
    their connects and, for NULL, its warm-up).  Where the rate is bounded
    by the client rather than the server, the rates' ratio is not the
    servers' costs' ratio; this is."""
    out = {}
    th = threading.Thread(target=lambda: out.__setitem__('r', fn()))
    th.start()
    span = max(SECS - 2.5, 0.5)
    time.sleep(1.5)
    hz = os.sysconf('SC_CLK_TCK')
    try:
        a = proc_cpu_ticks(pid)
        time.sleep(span)
        z = proc_cpu_ticks(pid)
    except OSError:
        a = z = None
    th.join()
    if 'r' not in out:
        raise Abort('load generator failed (see the log)')
    res = out['r']
    rate = res.get('rpcs_per_s') or res.get('calls_per_s')
    if a is not None and rate:
        res['server_cpu'] = (z - a) / hz / span
        res['server_us_per_call'] = res['server_cpu'] / rate * 1e6
    return res


def cpu_median(m, runs):
    """m['client_cpu']: the median of the runs' own client CPU, where every
    run has one (the libnfs client reports it; near one CPU, it and not the
    server bounds the row)."""
    if runs and all('client_cpu' in x for x in runs):
        m['client_cpu'] = median([x['client_cpu'] for x in runs])


def polled_median(pairs):
    """The polled pairs' medians: rates, the rates' ratio and the servers'
    CPU per call (NULL over lock: the share of a lock RPC's server cost a
    NULL costs; the same figure as the rates' ratio when the server bounds
    both runs)."""
    m = {'poll_us': pairs[0]['poll_us'],
         'lock_rpcs_per_s': median([p['lock']['rpcs_per_s'] for p in pairs]),
         'null_calls_per_s': median([p['null']['calls_per_s'] for p in pairs]),
         'rpcs_over_null': median([p['lock']['rpcs_per_s'] / p['null']['calls_per_s']
                                   for p in pairs if p['null']['calls_per_s']])}
    cpu = [(p['lock'].get('server_us_per_call'), p['null'].get('server_us_per_call'))
           for p in pairs]
    if cpu and all(a and b for a, b in cpu):
        m['lock_server_us'] = median([a for a, _ in cpu])
        m['null_server_us'] = median([b for _, b in cpu])
        m['cpu_null_over_lock'] = median([b / a for a, b in cpu])
    return m


class Bench:
    def __init__(self, r, out_path):
        self.r = r
        self.out_path = out_path
        self.res = {'params': {'seconds': SECS, 'repeat': REPEAT, 'fo_repeat': FO_REPEAT,
                               'grace_s': GRACE, 'mem_locks': MEM_LOCKS,
                               'ganesha_rpc_ioq_thrdmax': GA_THRDMAX,
                               'iso_repeat': ISO_REPEAT, 'fo_hosts': FO_HOSTS,
                               'iso_hosts': ISO_HOSTS, 'profile': perfprof.enabled(),
                               'sg_extra': SG_EXTRA,
                               'variants': {v[0]: {'hosts': v[1], 'owners': v[2], 'depth': v[3]}
                                            for v in VARIANTS}},
                    'loadavg': {'start': loadavg()}}
        self.sg = None          # the throughput cluster (lock, null, scale)
        self.sg_file = None
        self.ga_file = None

    def save(self):
        self.res['loadavg']['end'] = loadavg()
        tmp = self.out_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.res, f, indent=1, sort_keys=True)
        os.replace(tmp, self.out_path)

    # ---- servers for the throughput sections

    def up_sgnfs(self):
        if self.sg and all(p.poll() is None for p in self.sg.procs.values()):
            return
        self.r.netns_add(SG_NS)
        # g1 as shipped (lock journal on); g0 with it off, for its cost
        self.sg = SgCluster(self.r, 'tput', [('g1', '127.0.10.1', ['a']),
                                             ('g0', '127.0.11.1', ['a'], 'journal = off')])
        self.sg.start('a')
        self.sg.wait_placed({'g1': 'a', 'g0': 'a'})
        self.sg_file = os.path.join(self.sg.export('g1'), 'data')
        self.sg_file_nj = os.path.join(self.sg.export('g0'), 'data')
        with open(os.path.join(self.sg.export('g1'), 'scale'), 'wb') as f:
            f.write(b'\0' * 4096)
        os.chmod(os.path.join(self.sg.export('g1'), 'scale'), 0o666)

    def down_sgnfs(self):
        if self.sg:
            self.sg.stop()
            self.sg = None
        self.r.netns_del(SG_NS)

    def up_ganesha(self, grace=None):
        self.down_ganesha()
        exps = [os.path.join(GA_WORK, 'e1'), os.path.join(GA_WORK, 'e2')]
        for e in exps:
            shutil.rmtree(e, ignore_errors=True)
            os.makedirs(e)
            for fn in ('data', 'scale'):
                with open(os.path.join(e, fn), 'wb') as f:
                    f.write(b'\0' * 4096)
                os.chmod(os.path.join(e, fn), 0o666)
        self.r.ganesha('start', *exps, grace=grace)
        self.ga_file = os.path.join(exps[0], 'data')
        return exps

    def down_ganesha(self):
        if self.r.ganesha_started:
            self.r.ganesha('stop', timeout=60, check=False)

    # ---- 1. lock throughput and latency; 2. NULL ceiling

    def polled_pair(self, hosts, owners, depth, rep):
        """The lock path against the NULL ceiling once more, journal off, with
        both load generators polling POLL_US before they sleep: on one
        machine, a reply that finds its client asleep wakes it from inside
        the server's send (loopback delivers in the sender's context), and
        the faster the client, the less often.  A server on a network never
        pays that.  Each run also measures the server's CPU per call."""
        pid = self.sg.pid('a')
        lk = with_server_cpu(pid, lambda: self.r.bench_lock(
            SG_NS, '127.0.11.1', self.sg_file_nj, hosts, owners, depth, SECS, poll_us=POLL_US))
        nl = with_server_cpu(pid, lambda: self.r.null_bench(
            SG_NS, '127.0.10.1', hosts, depth, SECS, poll_us=POLL_US))
        log('polled (--poll-us %d) rep %d: lock %6.0f RPCs/s at %.2f us of server CPU each, '
            'NULL %6.0f calls/s at %.2f us' % (POLL_US, rep + 1, lk['rpcs_per_s'],
                                              lk.get('server_us_per_call') or 0,
                                              nl['calls_per_s'],
                                              nl.get('server_us_per_call') or 0))
        return {'lock': lk, 'null': nl, 'poll_us': POLL_US}

    def section_lock(self):
        self.up_sgnfs()
        self.up_ganesha()
        out = {}
        for name, hosts, owners, depth in VARIANTS:
            out[name] = {'hosts': hosts, 'owners': owners, 'depth': depth,
                         'sgnfs': [], 'sgnfs_nojournal': [], 'ganesha': [],
                         'null_sgnfs': [], 'null_ganesha': []}
        self.res['lock'] = out
        for rep in range(REPEAT):
            for name, hosts, owners, depth in VARIANTS:
                for srv in ('sgnfs', 'sgnfs_nojournal', 'ganesha'):
                    ns, server, file = {
                        'sgnfs': (SG_NS, '127.0.10.1', self.sg_file),
                        'sgnfs_nojournal': (SG_NS, '127.0.11.1', self.sg_file_nj),
                        'ganesha': (GA_NS, '127.0.0.1', self.ga_file)}[srv]
                    if name == 'libnfs':
                        b = self.r.libnfs_lock(ns, server, os.path.dirname(file),
                                               os.path.basename(file), depth, SECS)
                    else:
                        b = self.r.bench_lock(ns, server, file, hosts, owners, depth, SECS)
                    b['loadavg'] = loadavg()
                    out[name][srv].append(b)
                    log('lock %-9s %-15s rep %d: %6.0f pairs/s p50 %5d us p99 %6d us '
                        'denied %d errors %d' % (name, srv, rep + 1, b['pairs_per_s'], b['p50_us'],
                                                 b['p99_us'], b['denied'], b['errors']))
                for srv in ('sgnfs', 'ganesha'):
                    ns, server = ((SG_NS, '127.0.10.1') if srv == 'sgnfs' else (GA_NS, '127.0.0.1'))
                    n = self.r.null_bench(ns, server, hosts, depth, SECS)
                    out[name]['null_' + srv].append(n)
                    log('null %-9s %-7s rep %d: %6.0f calls/s p50 %5d us p99 %6d us errors %d' %
                        (name, srv, rep + 1, n['calls_per_s'], n['p50_us'], n['p99_us'],
                         n['errors']))
                if name == 'pipelined':
                    out[name].setdefault('polled', []).append(
                        self.polled_pair(hosts, owners, depth, rep))
                self.save()
        if perfprof.enabled():
            self.profile_lock(out)
        for name in out:
            v = out[name]
            m = {}
            for srv in ('sgnfs', 'ganesha'):
                runs = v[srv]
                m[srv] = {k: median([x[k] for x in runs])
                          for k in ('pairs_per_s', 'rpcs_per_s', 'p50_us', 'p99_us', 'max_us')}
                cpu_median(m[srv], runs)
                m[srv]['refused'] = sum(x['denied'] + x['errors'] for x in runs)
                nulls = v['null_' + srv]
                m['null_' + srv] = {k: median([x[k] for x in nulls])
                                    for k in ('calls_per_s', 'p50_us', 'p99_us')}
                # per run pair: lock RPCs/s over NULL calls/s (one lock RPC vs one NULL RPC)
                m[srv]['rpcs_over_null'] = median(
                    [a['rpcs_per_s'] / b['calls_per_s'] for a, b in zip(runs, nulls)
                     if b['calls_per_s']])
                m[srv]['pairs_over_null'] = median(
                    [a['pairs_per_s'] / b['calls_per_s'] for a, b in zip(runs, nulls)
                     if b['calls_per_s']])
            m['ratio_pairs'] = median([a['pairs_per_s'] / b['pairs_per_s']
                                       for a, b in zip(v['sgnfs'], v['ganesha'])
                                       if b['pairs_per_s']])
            nj = v['sgnfs_nojournal']
            m['sgnfs_nojournal'] = {k: median([x[k] for x in nj])
                                    for k in ('pairs_per_s', 'rpcs_per_s', 'p50_us', 'p99_us',
                                              'max_us')}
            cpu_median(m['sgnfs_nojournal'], nj)
            # The lock-path target is with the journal off: the ratio
            # then measures the RPC and lock-engine path alone, not fdatasync.
            # NULL does not touch the journal, so each repeat's NULL run on
            # the journaled group is the same ceiling for both.
            m['sgnfs_nojournal']['rpcs_over_null'] = median(
                [a['rpcs_per_s'] / b['calls_per_s'] for a, b in zip(nj, v['null_sgnfs'])
                 if b['calls_per_s']])
            if v.get('polled'):
                m['polled'] = polled_median(v['polled'])
            m['ratio_pairs_nojournal'] = median([a['pairs_per_s'] / b['pairs_per_s']
                                                 for a, b in zip(nj, v['ganesha'])
                                                 if b['pairs_per_s']])
            m['journal_cost'] = median([a['pairs_per_s'] / b['pairs_per_s']
                                        for a, b in zip(v['sgnfs'], nj) if b['pairs_per_s']])
            m['ratio_p99'] = median([a['p99_us'] / b['p99_us']
                                     for a, b in zip(v['sgnfs'], v['ganesha']) if b['p99_us']])
            v['median'] = m
        self.save()

    def profile_lock(self, out):
        """One extra run of each sgnfs row of the lock section (journal on,
        off, NULL) while perf samples sgnfsd: out[variant]['profile'][srv].
        Extra, never measured: the sampling slows the daemon.  A perf that
        fails leaves that row without a profile and the bench goes on."""
        pdir = os.path.join(WORK, 'profile')
        os.makedirs(pdir, exist_ok=True)
        pid = self.sg.pid('a')
        for name, hosts, owners, depth in VARIANTS:
            prof = out[name]['profile'] = {}
            for srv in ('sgnfs', 'sgnfs_nojournal', 'null_sgnfs'):
                data = os.path.join(pdir, '%s-%s.data' % (name, srv))
                p = perfprof.start(pid, data, log)
                if p is None:
                    continue
                ok = False
                try:
                    if srv == 'null_sgnfs':
                        self.r.null_bench(SG_NS, '127.0.10.1', hosts, depth, SECS)
                    else:
                        server, file = {'sgnfs': ('127.0.10.1', self.sg_file),
                                        'sgnfs_nojournal': ('127.0.11.1', self.sg_file_nj)}[srv]
                        if name == 'libnfs':
                            self.r.libnfs_lock(SG_NS, server, os.path.dirname(file),
                                               os.path.basename(file), depth, SECS)
                        else:
                            self.r.bench_lock(SG_NS, server, file, hosts, owners, depth, SECS)
                    ok = True
                except Abort as e:
                    # the measured figures are in already: lose the profile only
                    log('profile %s %s: the run failed: %s (no profile)' % (name, srv, e))
                finally:
                    sm = perfprof.stop(p, log)
                if sm and ok:
                    prof[srv] = sm
                    log('profile %-9s %-15s %d samples, kernel %.0f%%: %s' % (
                        name, srv, sm['samples'], sm['kernel_pct'],
                        ', '.join('%s %.1f%%' % (t[2], t[0]) for t in sm['top'][:3])))
            self.save()

    # ---- 3. failover

    def sg_failover_once(self, nhosts, per_host=10, journal=True):
        r = self.r
        r.netns_add(SG_NS)
        c = SgCluster(r, 'fo%d' % nhosts, [('g1', '127.0.20.1', ['a', 'b'],
                                            'journal = %s' % ('on' if journal else 'off'))],
                      nodes=('a', 'b'))
        hold = None
        prober = None
        try:
            c.start('a')
            c.wait_placed({'g1': 'a'})
            c.start('b')
            time.sleep(0.5)
            fh = r.resolve(SG_NS, '127.0.20.1', os.path.join(c.export('g1'), 'data'))
            hold = Hold(r, SG_NS, '127.0.20.1', '127.4.0.1', nhosts, name='fo-sg-%d' % nhosts)
            t_take = hold.take_locks(fh, nhosts, nhosts * per_host, 0)
            if hold.status['granted'] != nhosts * per_host:
                raise Abort('initial locks: %s' % dict(hold.status))
            st = c.status()['g1']
            log('sgnfs failover %d hosts: %d locks held (%d clients) in %.2fs' %
                (nhosts, st['locks'], st['clients'], t_take))
            time.sleep(1.0)          # node b watches the lease; all quiet
            t_kill = time.time()
            c.kill9('a')
            prober = Prober(r, SG_NS, '127.0.20.1', fh, '127.9.0.1', 1 << 40)
            want = nhosts * per_host
            deadline = time.time() + GRACE + 60
            while time.time() < deadline:
                if hold.count('reclaimed') + hold.count('lost') >= want and \
                        hold.count('reclaim-done') >= nhosts:
                    break
                time.sleep(0.05)
            t_first = prober.join(GRACE + 30)
            time.sleep(0.3)
            ev = daemon_log(c.logs['b'], t_kill)

            def at(pat):
                ts = [t for t, msg in ev if t >= t_kill - 1 and re.search(pat, msg)]
                return ts

            notified = at(r'group=g1 client=\S+ notified at')
            reclaimed_srv = at(r'group=g1 client=\S+ reclaimed a lock')
            first_notify = {}
            for e in hold.events_of('notify'):
                first_notify.setdefault(e[1], e[0])
            cl_notify = list(first_notify.values())
            cl_recl = [e[0] for e in hold.events_of('reclaimed')]
            cl_done = [e[0] for e in hold.events_of('reclaim-done')]
            run = {
                'hosts': nhosts, 'locks': want, 'locks_held_before': st['locks'],
                'lease_acquired': rel(first_last(at(r'group=g1 lease acquired by node b'))[0], t_kill),
                'online': rel(first_last(at(r'group=g1 online on node b'))[0], t_kill),
                'notified_first': rel(first_last(notified)[0], t_kill),
                'notified_all': rel(first_last(notified)[1], t_kill),
                'notified_count': len(notified),
                'clients_notified_all': rel(first_last(cl_notify)[1], t_kill),
                'clients_notified_count': len(cl_notify),
                'reclaimed_server_all': rel(first_last(reclaimed_srv)[1], t_kill),
                'reclaimed_server_count': len(reclaimed_srv),
                'reclaimed_client_count': len(cl_recl),
                'lost': hold.count('lost'),
                'all_reclaimed': rel(first_last(cl_done)[1], t_kill)
                if len(cl_done) >= nhosts and hold.count('lost') == 0 else None,
                'hosts_done': len(cl_done),
                'grace_ended': rel(first_last(at(r'group=g1 grace ended'))[0], t_kill),
                'first_new_lock': rel(t_first, t_kill),
                'probe_attempts': dict((str(k), v) for k, v in prober.attempts.items()),
                'loadavg': loadavg(),
            }
            return run
        finally:
            if prober:
                prober.stopping = True
            if hold:
                hold.stop()
            c.stop()
            r.netns_del(SG_NS)

    def ga_failover_once(self, nhosts, per_host=10, iso_secs=None):
        """Ganesha: hold, kill -9, restart (grace), sm-notify, reclaims.  The
        clients are in GC_NS (they serve SM_NOTIFY).  With iso_secs:
        bench-lock on export 2 (that did not "move") before, and right after
        the restart, for the isolation section."""
        r = self.r
        exps = self.up_ganesha(grace=None)   # graceless first start: take locks at once
        r.ganesha_clients_netns()
        hold = None
        prober = None
        iso_prober = None
        notify = None
        iso = None
        try:
            fh = r.resolve(GC_NS, GA_ADDR, os.path.join(exps[0], 'data'), host='10.214.9.9')
            fh2 = r.resolve(GC_NS, GA_ADDR, os.path.join(exps[1], 'data'), host='10.214.9.9')
            hold = Hold(r, GC_NS, GA_ADDR, '10.214.0.1', nhosts, name='fo-ga-%d' % nhosts)
            # At most 50 requests at a time: Ganesha 4.3 stops answering
            # (every request times out) when a few hundred requests of new
            # clients arrive at once (each first lock waits for SM_MON).
            t_take = hold.take_locks(fh, nhosts, nhosts * per_host, 0, batch=50, timeout=900)
            if hold.status['granted'] != nhosts * per_host:
                raise Abort('initial locks on ganesha: %s' % dict(hold.status))
            log('ganesha failover %d hosts: %d locks held in %.2fs' %
                (nhosts, nhosts * per_host, t_take))
            if iso_secs:
                iso = {'baseline': r.bench_lock(GC_NS, GA_ADDR, os.path.join(exps[1], 'data'),
                                                2, 2, 4, iso_secs, host0='10.214.100.1')}
            time.sleep(1.0)
            t_kill = time.time()
            r.ganesha('kill', timeout=30)
            t_killed = time.time()
            # the restarted server is the new owner: it enters its grace period
            r.ganesha('start-nfsd', grace=GRACE, timeout=120)
            t_online = time.time()
            prober = Prober(r, GC_NS, GA_ADDR, fh, '10.214.200.1', 1 << 40)
            if iso_secs:
                iso_prober = Prober(r, GC_NS, GA_ADDR, fh2, '10.214.200.2', 1 << 40)
            t_notify0 = time.time()
            notify = r.spawn([os.path.join(BENCH, 'ganesha.sh'), 'notify', GA_ADDR],
                             env=dict(os.environ, GANESHA_NS=GA_NS, GANESHA_WORK=GA_WORK,
                                      GANESHA_NLM='1', GANESHA_IOQ_THRDMAX=str(GA_THRDMAX)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if iso_secs:
                iso['failover'] = r.bench_lock(GC_NS, GA_ADDR, os.path.join(exps[1], 'data'),
                                               2, 2, 4, iso_secs, host0='10.214.100.1')
            want = nhosts * per_host
            # Reclaims refused after the grace period are retried by the
            # clients for minutes: stop waiting well after Ganesha's grace.
            deadline = t_kill + GRACE + 30
            while time.time() < deadline:
                if hold.count('reclaimed') + hold.count('lost') >= want and \
                        hold.count('reclaim-done') >= nhosts:
                    break
                time.sleep(0.05)
            t_first = prober.join(max(1, t_kill + GRACE + 40 - time.time()))
            if iso_prober:
                iso['other_export_first_new_lock'] = rel(
                    iso_prober.join(max(1, t_kill + GRACE + 40 - time.time())), t_kill)
            # first notification of each host (sm-notify retransmits, and
            # sends a second one with the name cut at its first dot)
            first_notify = {}
            for e in hold.events_of('notify'):
                if 'mon_name=%s ' % GA_ADDR in e[3]:
                    first_notify.setdefault(e[1], e[0])
            cl_notify = list(first_notify.values())
            cl_recl = [e[0] for e in hold.events_of('reclaimed')]
            cl_done = [e[0] for e in hold.events_of('reclaim-done')]
            run = {
                'hosts': nhosts, 'locks': want,
                'killed': rel(t_killed, t_kill),
                'online': rel(t_online, t_kill),
                'notify_started': rel(t_notify0, t_kill),
                'clients_notified_first': rel(first_last(cl_notify)[0], t_kill),
                'clients_notified_all': rel(first_last(cl_notify)[1], t_kill),
                'clients_notified_count': len(cl_notify),
                'reclaimed_client_count': len(cl_recl),
                'reclaimed_last': rel(first_last(cl_recl)[1], t_kill),
                'lost': hold.count('lost'),
                'all_reclaimed': rel(first_last(cl_done)[1], t_kill)
                if len(cl_done) >= nhosts and hold.count('lost') == 0 else None,
                'hosts_done': len(cl_done),
                'waited_s': rel(time.time(), t_kill),
                'first_new_lock': rel(t_first, t_kill),
                'probe_attempts': dict((str(k), v) for k, v in prober.attempts.items()),
                'loadavg': loadavg(),
            }
            if iso_secs:
                run['isolation'] = iso
            return run
        finally:
            for p in (prober, iso_prober):
                if p:
                    p.stopping = True
            if notify:
                Runner.stop(notify, signal.SIGTERM, 5)
            if hold:
                hold.stop()
            self.down_ganesha()
            r.netns_del(GC_NS)

    def section_failover(self):
        self.down_sgnfs()
        out = {'sgnfs': {}, 'sgnfs_nojournal': {}, 'ganesha': {}}
        self.res['failover'] = out
        for n in FO_HOSTS:
            for srv in ('sgnfs', 'sgnfs_nojournal', 'ganesha'):
                runs = out[srv].setdefault(str(n), [])
                for rep in range(FO_REPEAT):
                    try:
                        run = (self.sg_failover_once(n) if srv == 'sgnfs' else
                               self.sg_failover_once(n, journal=False)
                               if srv == 'sgnfs_nojournal' else self.ga_failover_once(n))
                    except Abort as e:
                        log('failover %s %d rep %d failed: %s' % (srv, n, rep + 1, e))
                        run = {'error': str(e)}
                    runs.append(run)
                    log('failover %s %d hosts rep %d: %s' % (srv, n, rep + 1, json.dumps(run)))
                    self.save()
        for srv in out:
            for n, runs in list(out[srv].items()):
                if n == 'median':
                    continue
                keys = set(k for run in runs for k, v in run.items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool))
                out[srv].setdefault('median', {})[n] = {
                    k: median([run.get(k) for run in runs]) for k in sorted(keys)}
        self.save()

    # ---- 4. isolation

    def sg_isolation_once(self, nhosts=1000, per_host=10, secs=6, kill_at=1.5):
        r = self.r
        r.netns_add(SG_NS)
        c = SgCluster(r, 'iso', [('g1', '127.0.30.1', ['a', 'b']),
                                 ('g2', '127.0.30.2', ['b', 'a']),
                                 ('g3', '127.0.30.3', ['b', 'a'])], nodes=('a', 'b'))
        hold = None
        try:
            c.start('a')
            c.start('b')
            c.wait_placed({'g1': 'a', 'g2': 'b', 'g3': 'b'})
            fh = r.resolve(SG_NS, '127.0.30.1', os.path.join(c.export('g1'), 'data'))
            hold = Hold(r, SG_NS, '127.0.30.1', '127.4.0.1', nhosts, name='iso-sg')
            hold.take_locks(fh, nhosts, nhosts * per_host, 0)
            if hold.status['granted'] != nhosts * per_host:
                raise Abort('initial locks: %s' % dict(hold.status))

            def pair():
                res = {}
                ths = []
                for g, h0 in (('g2', '127.6.0.1'), ('g3', '127.7.0.1')):
                    vip = '127.0.30.%s' % g[1]

                    def go(g=g, vip=vip, h0=h0):
                        res[g] = r.bench_lock(SG_NS, vip, os.path.join(c.export(g), 'data'),
                                              2, 2, 4, secs, host0=h0)
                    th = threading.Thread(target=go)
                    th.start()
                    ths.append(th)
                return res, ths

            res_base, ths = pair()
            for th in ths:
                th.join(secs + 130)
            time.sleep(0.5)
            res_fo, ths = pair()
            time.sleep(kill_at)
            t_kill = time.time()
            c.kill9('a')
            for th in ths:
                th.join(secs + 130)
            deadline = time.time() + 30
            while time.time() < deadline and hold.count('reclaim-done') < nhosts:
                time.sleep(0.1)
            ev = daemon_log(c.logs['b'], t_kill)
            online = [t for t, m in ev if t >= t_kill - 1 and 'group=g1 online on node b' in m]
            cl_done = [e[0] for e in hold.events_of('reclaim-done')]
            st = c.status()
            run = {'hosts': nhosts, 'locks': nhosts * per_host, 'secs': secs, 'kill_at': kill_at,
                   'baseline': res_base, 'failover': res_fo,
                   'g1_online': rel(first_last(online)[0], t_kill),
                   'g1_all_reclaimed': rel(first_last(cl_done)[1], t_kill),
                   'g2_g3_grace_seen': any(st.get(g, {}).get('state') == 'grace' for g in ('g2', 'g3')),
                   'loadavg': loadavg()}
            for g in ('g2', 'g3'):
                b, f = res_base[g], res_fo[g]
                run[g] = {'p99_base_us': b['p99_us'], 'p99_fo_us': f['p99_us'],
                          'p99_ratio': f['p99_us'] / b['p99_us'] if b['p99_us'] else None,
                          'p50_base_us': b['p50_us'], 'p50_fo_us': f['p50_us'],
                          'max_base_us': b['max_us'], 'max_fo_us': f['max_us'],
                          'refused_base': b['denied'] + b['errors'],
                          'refused_fo': f['denied'] + f['errors'],
                          'pairs_per_s_base': b['pairs_per_s'], 'pairs_per_s_fo': f['pairs_per_s']}
            return run
        finally:
            if hold:
                hold.stop()
            c.stop()
            r.netns_del(SG_NS)

    def section_isolation(self):
        self.down_sgnfs()
        out = {'sgnfs': [], 'ganesha': []}
        self.res['isolation'] = out
        for rep in range(ISO_REPEAT):
            try:
                run = self.sg_isolation_once(ISO_HOSTS)
            except Abort as e:
                run = {'error': str(e)}
            out['sgnfs'].append(run)
            log('isolation sgnfs rep %d: %s' % (rep + 1, json.dumps(
                {k: v for k, v in run.items() if k not in ('baseline', 'failover')})))
            self.save()
        try:
            run = self.ga_failover_once(ISO_HOSTS, iso_secs=6)
            iso = run.get('isolation', {})
            b, f = iso.get('baseline'), iso.get('failover')
            g = {'p99_base_us': b['p99_us'], 'p99_fo_us': f['p99_us'],
                 'p99_ratio': f['p99_us'] / b['p99_us'] if b['p99_us'] else None,
                 'p50_base_us': b['p50_us'], 'p50_fo_us': f['p50_us'],
                 'max_base_us': b['max_us'], 'max_fo_us': f['max_us'],
                 'refused_base': b['denied'] + b['errors'],
                 'refused_fo': f['denied'] + f['errors'],
                 'pairs_per_s_base': b['pairs_per_s'], 'pairs_per_s_fo': f['pairs_per_s'],
                 'other_export_first_new_lock': iso.get('other_export_first_new_lock')}
            out['ganesha'].append({'e2': g, 'run': run})
            log('isolation ganesha: %s' % json.dumps(g))
        except Abort as e:
            out['ganesha'].append({'error': str(e)})
            log('isolation ganesha failed: %s' % e)
        med = {}
        for g in ('g2', 'g3'):
            runs = [x[g] for x in out['sgnfs'] if g in x]
            if runs:
                med[g] = {k: median([x[k] for x in runs]) for k in runs[0]}
                med[g]['refused_fo_total'] = sum(x['refused_fo'] for x in runs)
        out['median'] = med
        self.save()

    # ---- 5. scale

    def section_scale(self):
        r = self.r
        self.up_sgnfs()
        c = self.sg
        out = {'server': [], 'engine': None, 'memory': {}}
        self.res['scale'] = out
        # the pure engine first (no server involved)
        rc, o, e = r.run([r.tool['lk'], '--json', '--pairs', '1000000',
                          '--mem-locks', str(MEM_LOCKS)], 600)
        try:
            out['engine'] = json.loads(o.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out['engine'] = {'error': (o + e)[-500:]}
        log('engine: %s' % json.dumps(out['engine']))
        self.save()

        scale_file = os.path.join(c.export('g1'), 'scale')
        fh = r.resolve(SG_NS, '127.0.10.1', scale_file)
        # Many hosts, few locks each: the tool's record walks a host's locks
        # on every grant, so locks per host, not the total, sets its pace.
        nhosts = 4000
        base_x = 1 << 40               # exclusive locks, one host each (@#i lines)
        base_s = 1 << 41               # shared locks, every host (@all lines)
        name, hosts, owners, depth = VARIANTS[0]
        rss0 = c.rss_kb('a')
        st0 = c.status()['g1']
        hold = Hold(r, SG_NS, '127.0.10.1', '127.5.0.1', nhosts, quiet=True, name='scale',
                    extra=['--no-callbacks'])
        held_x = 0                     # exclusive locks taken (region base_x)
        held_s = 0                     # @all lines taken (region base_s)
        rss_a = locks_a = None
        parts_a = {}

        def grow(target):
            nonlocal held_x, held_s
            t0 = time.time()
            add = target - (held_x + held_s * nhosts)
            if add >= nhosts:
                n = add // nhosts
                hold.take_shared_all(fh, nhosts, n, base_s, first=held_s)
                held_s += n
                add -= n * nhosts
            if add > 0:
                hold.take_locks(fh, nhosts, add, base_x, first=held_x)
                held_x += add
            if hold.status['granted'] != hold.nres:
                raise Abort('scale: not every lock granted: %s' % dict(hold.status))
            return time.time() - t0

        try:
            # BENCH_SCALE_STEPS (e.g. 10000): only those milestones, for a
            # memory-only run; 10000 must stay (the RSS baseline is taken there)
            for k in SCALE_STEPS:
                t = grow(k)
                # the daemon's own count
                on_srv = c.status()['g1']['locks'] - st0['locks'] if k <= 10000 else None
                if k == 10000:
                    # every scale host now holds >= 2 locks: its connection
                    # and host state are in the RSS from here on
                    rss_a, locks_a = c.rss_kb('a'), k
                    parts_a = c.rss_parts_kb('a')
                runs = [r.bench_lock(SG_NS, '127.0.10.1', scale_file, hosts, owners, depth, SECS)
                        for _ in range(2)]
                e = {'locks': k, 'locks_on_server': on_srv, 'granted': hold.status['granted'],
                     'take_s': round(t, 3),
                     'rpcs_per_s': median([x['rpcs_per_s'] for x in runs]),
                     'pairs_per_s': median([x['pairs_per_s'] for x in runs]),
                     'p50_us': median([x['p50_us'] for x in runs]),
                     'p99_us': median([x['p99_us'] for x in runs]),
                     'errors': sum(x['errors'] + x['denied'] for x in runs),
                     'loadavg': loadavg()}
                out['server'].append(e)
                log('scale: %s' % json.dumps(e))
                self.save()
            # memory: grow to MEM_LOCKS, VmRSS before/after
            t_mem = grow(MEM_LOCKS)
            # A journal fold (docs/journal.md, "Compaction") holds the folded
            # part of the file and a second lock table while it runs: the
            # locks' own memory is measured once none is under way; the peak
            # (VmHWM) is reported beside it.
            t_fold = time.time() + 300
            while time.time() < t_fold and (c.status().get('g1', {}).get('journal') or {}).get('folding'):
                time.sleep(0.5)
            jst = c.status().get('g1', {}).get('journal') or {}
            time.sleep(0.5)
            rss1 = c.rss_kb('a')
            hwm1 = c.rss_kb('a', 'VmHWM')
            parts1 = c.rss_parts_kb('a')
            n = hold.status['granted']
            if n != MEM_LOCKS:
                raise Abort('memory: %d of %d locks granted (%s)' % (n, MEM_LOCKS,
                                                                   dict(hold.status)))
            out['memory'] = {
                'locks_held': n, 'hosts': nhosts, 'shared_lines': held_s, 'exclusive': held_x,
                'rss_before_kB': rss0, 'rss_at_10000_kB': rss_a, 'rss_after_kB': rss1,
                # the locks alone: from 10,000 locks (every host connected) to n
                'bytes_per_lock': round((rss1 - rss_a) * 1024.0 / (n - locks_a), 1),
                # everything, the 4000 hosts' connections and state included
                'bytes_per_lock_total': round((rss1 - rss0) * 1024.0 / n, 1),
                # the highest RSS since start (a fold's transient memory in it)
                'hwm_kB': hwm1,
                'peak_bytes_per_lock': round((hwm1 - rss_a) * 1024.0 / (n - locks_a), 1),
                'journal': {k: jst.get(k) for k in ('bytes', 'compactions', 'folds', 'folding')},
                # what grew, by kind of mapping (rss_parts_kb), per lock
                'bytes_per_lock_by_kind': {
                    k: round((parts1.get(k, 0) - parts_a.get(k, 0)) * 1024.0 / (n - locks_a), 1)
                    for k in sorted(set(parts1) | set(parts_a))},
                'take_s': round(t_mem, 2),
                'take_locks_per_s': round((n - 100000) / t_mem) if t_mem else None}
            log('memory: %s' % json.dumps(out['memory']))
        finally:
            hold.stop()
        self.save()


def main():
    global LOGF
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--sections', default='lock,failover,isolation,scale')
    a = ap.parse_args()
    if os.geteuid() != 0:
        print('lockbench.py: run as root (network namespaces)', file=sys.stderr)
        return 1
    os.makedirs(WORK, exist_ok=True)
    LOGF = open(os.path.join(WORK, 'lockbench.log'), 'w')
    r = None

    def on_signal(sig, frm):
        raise KeyboardInterrupt('signal %d' % sig)
    signal.signal(signal.SIGTERM, on_signal)
    status = 0
    try:
        r = Runner(os.path.abspath(a.build))
        b = Bench(r, a.out)
        for s in a.sections.split(','):
            t0 = time.time()
            log('=== %s (load average %s)' % (s, loadavg()))
            try:
                getattr(b, 'section_' + s)()
            except Abort as e:
                log('%s FAILED: %s' % (s, e))
                b.res.setdefault('errors', {})[s] = str(e)
                status = 1
            except Exception as e:
                log('%s FAILED: %s' % (s, traceback.format_exc()))
                b.res.setdefault('errors', {})[s] = repr(e)
                status = 1
            b.res.setdefault('section_seconds', {})[s] = round(time.time() - t0, 1)
            b.save()
        b.down_sgnfs()
        b.down_ganesha()
    except KeyboardInterrupt:
        log('interrupted')
        status = 130
    except Abort as e:
        log('FATAL: %s' % e)
        status = 1
    finally:
        if r:
            r.cleanup()
    return status


if __name__ == '__main__':
    sys.exit(main())
