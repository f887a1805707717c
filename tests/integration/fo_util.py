"""
fo_util.py - helpers for the failover / claim tests (test_claims_*.py,
test_failover_fast.py), on top of harness.py.

  * Tools: SGNFS_CLIENT and SGNFSCTL from the environment, else found next
    to SGNFSD in the build tree (<build>/src/client/sgnfs-client,
    <build>/src/ctl/sgnfsctl).
  * Topology: three_nodes() builds a cluster of nodes a, b, c with one
    export per group (storage under the harness's temporary directory) and
    a test file in every export.
  * Client hosts: client_addr(c, k, n) = 127.(70+k).S.n, where S is the
    cluster's reserved slot (harness), so simulated hosts live in 127.7x
    and never collide with another test running at the same time.
  * Status: status() parses `sgnfsctl status --json` into {group: {owner,
    state, grace_left, clients, locks}}; Poller samples it in a thread
    for the whole test, so "G2 never entered grace" is checked on every
    sample, not on one.
  * Hold: one `sgnfs-client ... hold` process (one or many hosts), its
    event lines collected by a thread, commands sent on stdin, and its
    --record file read back.
  * On-disk group state: the NSM state number (<statedir>/state) and the
    client list (<statedir>/clients/), read and planted directly.
  * Daemon logs: timestamps of "group=G online on node N" lines, and a
    scan for sanitizer reports.
  * Tshark: an optional capture of SM_NOTIFY on lo (skipped quietly when
    tshark cannot capture).

Python 3 standard library only.
"""

import bisect
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time

import harness
from harness import TestAbort, log

# sgnfs-client exit codes
EXIT_OK, EXIT_DENIED, EXIT_GRACE, EXIT_ERROR = 0, 1, 2, 3

SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer',
                     'runtime error:', 'ERROR: ThreadSanitizer',
                     'SUMMARY: UndefinedBehaviorSanitizer')

LOCKFILE = 'data'          # every export holds this file


# ---------------------------------------------------------------------------
# Tools


def _tool(var, rel):
    p = os.environ.get(var, '')
    if p and os.access(p, os.X_OK):
        return p
    d = os.environ.get('SGNFSD', '')
    if d:
        build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(d))))
        cand = os.path.join(build, rel)
        if os.access(cand, os.X_OK):
            return cand
    raise TestAbort('%s not set and %s not found next to SGNFSD' % (var, rel))


def client_path():
    return _tool('SGNFS_CLIENT', 'src/client/sgnfs-client')


def ctl_path():
    return _tool('SGNFSCTL', 'src/ctl/sgnfsctl')


def client_addr(c, k, n):
    """Simulated client host n (1..254) of family k (0..9): 127.7k.S.n."""
    return '127.%d.%d.%d' % (70 + k, c.slot, n)


# ---------------------------------------------------------------------------
# Topology


def three_nodes(h, groups, grace=20, log_level='info', cluster_extra=None, journal=None):
    """A cluster of nodes a, b, c.  @groups: list of (name, nodes) or
    (name, nodes, grace); group i gets one export <name>/fs, fsid 100+i,
    with an empty file LOCKFILE in it.  @journal: True/False sets every
    group's journal switch; None leaves the default (on)."""
    gs = []
    for i, spec in enumerate(groups):
        name, nodes = spec[0], spec[1]
        g_grace = spec[2] if len(spec) > 2 else grace
        extra = {} if journal is None else {'journal': 'on' if journal else 'off'}
        gs.append(harness.Group(name, exports=[harness.Export('%s/fs' % name, fsid=101 + i)],
                                nodes=tuple(nodes), grace=g_grace, extra=extra))
    c = h.cluster(groups=gs, nodes=['a', 'b', 'c'], log_level=log_level,
                  cluster_extra=cluster_extra)
    for g in gs:
        p = os.path.join(g.exports[0].path, LOCKFILE)
        with open(p, 'wb') as f:
            f.write(b'\0' * 4096)
        os.chmod(p, 0o666)
    return c


def export_path(c, group):
    return c.group(group).exports[0].path


def lock_file(c, group):
    """The path a client names to lock LOCKFILE of @group (MOUNT+LOOKUP)."""
    return os.path.join(export_path(c, group), LOCKFILE)


def statedir(c, group):
    return os.path.join(export_path(c, group), '.sgnfs')


def start_nodes(h, c, names=('a', 'b', 'c'), place=True, timeout=30):
    """Start the nodes, wait until every group is up somewhere, then (with
    @place) move each group that a faster-starting node took onto its
    most preferred node, so every test starts from the same placement.
    Returns the status."""
    for n in names:
        c.start(n, wait=False)
    want = [g.name for g in c.groups]
    st = wait_for_status(h, c, lambda s: all(g in s and s[g]['state'] in ('online', 'grace')
                                              for g in want),
                         timeout, 'groups %s come up' % want)
    if not place:
        return st
    for g in c.groups:
        pref = [n for n in g.nodes if n in names][0]
        if st[g.name]['owner'] != pref:
            ctl(h, c, 'move', g.name, pref)
            wait_group(h, c, g.name, owner=pref, timeout=timeout)
    return wait_for_status(h, c, lambda s: all(
        g.name in s and s[g.name]['state'] in ('online', 'grace')
        and s[g.name]['owner'] == [n for n in g.nodes if n in names][0] for g in c.groups),
        timeout, 'every group on its preferred node')


def ctl(h, c, *args, check=True):
    """Run sgnfsctl -c CONFIG ARGS...; returns (exit code, stdout)."""
    cp = subprocess.run([ctl_path(), '-c', c.config_path] + [str(a) for a in args],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                        preexec_fn=harness._pdeathsig)
    out = cp.stdout.decode('utf-8', 'replace')
    log('sgnfsctl %s -> %d %s%s' % (' '.join(str(a) for a in args), cp.returncode, out.strip(),
                                    cp.stderr.decode('utf-8', 'replace').strip()))
    if check:
        h.check(cp.returncode == 0, 'sgnfsctl %s exits 0' % ' '.join(str(a) for a in args))
    return cp.returncode, out


# ---------------------------------------------------------------------------
# Status


def status_raw(c, timeout=10):
    """`sgnfsctl status --json` as a dict (None if it did not answer)."""
    try:
        cp = subprocess.run([ctl_path(), '-c', c.config_path, 'status', '--json'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=timeout, preexec_fn=harness._pdeathsig)
    except subprocess.TimeoutExpired:
        return None
    try:
        return json.loads(cp.stdout.decode())
    except ValueError:
        return None


def status(c, timeout=10):
    """{group: {'owner', 'state', 'grace_left', 'clients', 'locks'}} for
    every group some node reports; a group reported by two nodes gets
    'owners' with both (and 'owner' the first)."""
    return status_of(status_raw(c, timeout))


def status_of(doc):
    """status() from a status_raw() document (None: nothing answered)."""
    out = {}
    if doc is None:
        return out
    for nd in doc.get('nodes', []):
        st = nd.get('status')
        if not st:
            continue
        for g in st.get('groups', []):
            e = dict(g)
            e['owner'] = nd['name']
            if g['name'] in out:
                out[g['name']].setdefault('owners', [out[g['name']]['owner']])
                out[g['name']]['owners'].append(nd['name'])
            else:
                e['owners'] = [nd['name']]
                out[g['name']] = e
    return out


def wait_for_status(h, c, pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        st = status(c)
        if pred(st):
            return st
        if time.monotonic() > deadline:
            raise TestAbort('%s: not after %ds (status %s)'
                            % (what, timeout, summary(st)))
        time.sleep(0.05)


def wait_group(h, c, group, owner=None, states=('online', 'grace'), timeout=20):
    """Wait until @group is up (in @states) on @owner (any if None)."""
    return wait_for_status(
        h, c, lambda st: group in st and st[group]['state'] in states
        and (owner is None or st[group]['owner'] == owner),
        timeout, 'group %s %s on %s' % (group, '/'.join(states), owner or 'any node'))


def summary(st):
    return {g: '%s@%s%s' % (e['state'], ','.join(e['owners']),
                            '(%ds)' % e['grace_left'] if e['state'] == 'grace' else '')
            for g, e in sorted(st.items())}


def clients_of(st, group):
    return sorted(x['name'] for x in st.get(group, {}).get('clients', []))


class Poller:
    """Samples `sgnfsctl status --json` every @interval s in a thread.
    samples: list of (monotonic time, status dict)."""

    def __init__(self, c, interval=0.05):
        self.c = c
        self.interval = interval
        self.samples = []
        # per sample, the nodes whose status it holds: one that did not
        # answer in time (a loaded machine) says nothing about its groups
        self.who = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.is_set():
            doc = status_raw(self.c, timeout=5)
            who = frozenset(nd['name'] for nd in (doc or {}).get('nodes', [])
                            if nd.get('status'))
            with self.lock:
                self.samples.append((time.monotonic(), status_of(doc)))
                self.who.append(who)
            self.stop_ev.wait(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.t.join(10)
        return self.samples

    def states(self, group, since=None, node=None):
        """[(t, state or 'absent', owners)] of @group (with @node: only
        the samples in which @node answered)."""
        with self.lock:
            out = []
            for (t, st), who in zip(self.samples, self.who):
                if since is not None and t < since:
                    continue
                if node is not None and node not in who:
                    continue
                e = st.get(group)
                out.append((t, e['state'] if e else 'absent', e['owners'] if e else []))
            return out

    def answered(self, node, t_from, t_to):
        """[(t, status)] of the samples in [t_from, t_to] in which @node
        answered."""
        with self.lock:
            return [(t, st) for (t, st), who in zip(self.samples, self.who)
                    if t_from <= t <= t_to and node in who]

    def unanswered(self, node, t_from, t_to):
        with self.lock:
            return sum(1 for (t, _), who in zip(self.samples, self.who)
                       if t_from <= t <= t_to and node not in who)

    def count(self):
        with self.lock:
            return len(self.samples)


# ---------------------------------------------------------------------------
# On-disk group state


def read_state(c, group):
    """The group's NSM state number from <statedir>/state (None if absent)."""
    try:
        with open(os.path.join(statedir(c, group), 'state')) as f:
            txt = f.read().strip()
    except OSError:
        return None
    m = re.search(r'-?\d+', txt)
    return int(m.group(0)) if m else None


def client_files(c, group):
    """Names of the files in the group's client list directory."""
    d = os.path.join(statedir(c, group), 'clients')
    try:
        return sorted(n for n in os.listdir(d) if not n.startswith('.'))
    except OSError:
        return []


def client_entry(c, group, name):
    """The key=value lines of client @name's entry (dict; 'addr' a list)."""
    p = os.path.join(statedir(c, group), 'clients', name)
    out = {'addr': []}
    with open(p) as f:
        for ln in f:
            ln = ln.rstrip('\n')
            if '=' not in ln:
                continue
            k, v = ln.split('=', 1)
            if k == 'addr':
                out['addr'].append(v)
            else:
                out[k] = v
    return out


def plant_client(c, group, name, addrs):
    """Write a client list entry by hand, in the documented format."""
    d = os.path.join(statedir(c, group), 'clients')
    os.makedirs(d, exist_ok=True)
    body = 'sgnfs-clist=1\nname=%s\nadded=%d\n' % (name, int(time.time()))
    body += ''.join('addr=%s\n' % a for a in addrs)
    tmp = os.path.join(d, '.plant-%s' % name)
    with open(tmp, 'w') as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(d, name))


def plant_clients(c, group, prefix, n):
    """Write @n client list entries PREFIX-000000... in the documented
    format, each with an address in 127.90/15 that answers nothing (their
    notifications go nowhere); no fsync per file (a bench or a test that
    needs many measures what follows, not the planting)."""
    d = os.path.join(statedir(c, group), 'clients')
    os.makedirs(d, exist_ok=True)
    now = int(time.time())
    for i in range(n):
        a = '127.%d.%d.%d' % (90 + (i >> 16), (i >> 8) & 255, (i & 255) or 1)
        with open(os.path.join(d, '%s-%06d' % (prefix, i)), 'w') as f:
            f.write('sgnfs-clist=1\nname=%s-%06d\nadded=%d\naddr=%s\n' % (prefix, i, now, a))


def remove_client(c, group, name):
    os.unlink(os.path.join(statedir(c, group), 'clients', name))


# ---------------------------------------------------------------------------
# Daemon logs


def node_log(node):
    try:
        with open(node.logpath, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


# 2026-12-04T07:30:01.123Z sgnfsd[1234] node=a info: ... (docs/operations.md)
_LOGTS = re.compile(r'^\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d)\.(\d{3})Z ')


def log_times(node, needle):
    """UTC seconds-of-day of every line of @node's log containing @needle."""
    out = []
    for ln in node_log(node).splitlines():
        if needle in ln:
            m = _LOGTS.match(ln)
            if m:
                hh, mm, ss, ms = (int(x) for x in m.groups())
                out.append(hh * 3600 + mm * 60 + ss + ms / 1000.0)
    return out


def utc_sod(t=None):
    """Seconds of the UTC day of wall-clock time @t (now if None)."""
    t = time.time() if t is None else t
    return t % 86400.0


def sod_delta(later, earlier):
    """@later - @earlier in seconds of the day, across midnight."""
    d = later - earlier
    if d < -43200:
        d += 86400
    return d


def check_no_sanitizer_report(h, c):
    ok = True
    for nd in c.all_nodes:
        txt = node_log(nd)
        found = [m for m in SANITIZER_MARKERS if m in txt]
        ok &= h.check(not found, 'daemon log %s: no sanitizer report%s'
                      % (os.path.basename(nd.logpath), ' (found %s)' % found if found else ''))
    return ok


def check_no_daemon_errors(h, c, allow=()):
    """No 'error:' log line other than those matching @allow (regexes)."""
    bad = []
    for nd in c.all_nodes:
        for ln in node_log(nd).splitlines():
            if ' error: ' in ln and not any(re.search(a, ln) for a in allow):
                bad.append('%s: %s' % (os.path.basename(nd.logpath), ln))
    h.check(not bad, 'no unexpected error lines in daemon logs%s'
            % ('' if not bad else ': ' + '; '.join(bad[:5])))


# ---------------------------------------------------------------------------
# Client hosts


def parse_kv(line):
    """key=value pairs of an event/result line ("quoted" values allowed)."""
    out = {}
    for m in re.finditer(r'(\w[\w-]*)=("([^"]*)"|\S*)', line):
        out[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(2)
    return out


def one_shot(h, addr, server, cmd, *args, svid=4242, timeout_ms=8000, extra=(), timeout=30):
    """Run one sgnfs-client command as host @addr against @server;
    returns (exit code, parsed JSON result or {})."""
    argv = [client_path(), '--host', addr, '--server', server, '--json',
            '--timeout', str(timeout_ms), '--svid', str(svid)] + list(extra) + \
           [cmd] + [str(a) for a in args]
    try:
        cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, timeout=timeout,
                            preexec_fn=harness._pdeathsig)
    except subprocess.TimeoutExpired:
        return -1, {}
    res = {}
    for ln in cp.stdout.decode('utf-8', 'replace').splitlines():
        if ln.startswith('{'):
            try:
                res = json.loads(ln)
            except ValueError:
                pass
    return cp.returncode, res


class Hold:
    """`sgnfs-client --callbacks ... hold FILE START LEN` for @nhosts hosts
    from @addr, each holding @per_host locks of @length bytes.  Event and
    result lines are collected by a thread; the record (what each host
    believes it holds) is kept in <logdir>/record-*.json."""

    def __init__(self, h, addr, server, path=None, start=0, length=16, per_host=1,
                 nhosts=1, svid=None, extra=(), tag=None, record=True):
        self.h = h
        self.addr = addr
        self.server = server
        self.nhosts = nhosts
        tag = tag or '%s-%d' % (addr, random.randrange(1 << 30))
        self.record = os.path.join(h.logdir, 'record-%s.json' % tag)
        argv = [client_path(), '--host', addr, '--server', server, '--callbacks',
                '--timeout', '5000']
        if record:
            argv += ['--record', self.record]
        if nhosts > 1:
            argv += ['--nhosts', str(nhosts)]
        if path is not None:
            argv += ['--per-host', str(per_host)]
        if svid is not None:
            argv += ['--svid', str(svid)]
        argv += list(extra) + ['hold']
        if path is not None:
            argv += [path, str(start), str(length)]
        self.logpath = os.path.join(h.logdir, 'hold-%s.log' % tag)
        log('spawn: %s' % ' '.join(argv))
        self.logf = open(self.logpath, 'wb')
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=harness._pdeathsig)
        h.helpers.append(self.proc)
        h.logs.append((self.logpath, 'hold %s x%d' % (addr, nhosts)))
        self.lines = []            # (monotonic time, line)
        self.cond = threading.Condition()
        self.next_id = 0
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()

    def _reader(self):
        for raw in self.proc.stdout:
            now = time.monotonic()
            ln = raw.decode('utf-8', 'replace').rstrip('\n')
            try:
                self.logf.write(raw)
                self.logf.flush()
            except ValueError:
                pass
            with self.cond:
                self.lines.append((now, ln))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def alive(self):
        return self.proc.poll() is None

    def send(self, line):
        """Send one command; returns its id (its result says id=N)."""
        self.next_id += 1
        self.proc.stdin.write((line + '\n').encode())
        self.proc.stdin.flush()
        return self.next_id

    def wait_for(self, pred, timeout=10.0, since=0.0):
        """The first (time, line) after @since satisfying @pred, or None.
        Lines are kept in arrival order, so each line is looked at once per
        call: a long-running host (LockLoop: thousands of results) must not
        make every later wait rescan them all (the scan grew with the run
        and took a core of the bench's two, its cost landing on the later
        of any two windows compared)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = bisect.bisect_left(self.lines, (since,))
            while True:
                while i < len(self.lines):
                    t, ln = self.lines[i]
                    i += 1
                    if t >= since and pred(ln):
                        return t, ln
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.t.is_alive()):
                    return None
                self.cond.wait(min(left, 0.2))

    def events(self, event, since=0.0):
        """Parsed lines of @event (e.g. 'notify') after @since.  For
        'notify', one line per call: a UDP retransmission of an SM_NOTIFY
        (the same XID from the same sender, sent again when the answer was
        slow, as on a loaded machine) is the same notification, and the
        client, which keeps no duplicate-request cache, logs it twice; a
        second call (a new XID) is counted."""
        key = 'event=%s ' % event
        with self.cond:
            evs = [dict(parse_kv(ln), _t=t) for t, ln in self.lines
                   if t >= since and key in ln + ' ']
        if event != 'notify':
            return evs
        seen, calls = set(), []
        for e in evs:
            call = (e.get('from'), e.get('xid'))
            if e.get('xid') is not None and call in seen:
                continue
            seen.add(call)
            calls.append(e)
        return calls

    def wait_count(self, event, n, timeout, since=0.0, where=None):
        """Wait until at least @n @event lines (after @since, matching
        @where(kv)) were seen; returns the count seen."""
        deadline = time.monotonic() + timeout
        while True:
            evs = [e for e in self.events(event, since) if where is None or where(e)]
            if len(evs) >= n or time.monotonic() > deadline or not self.alive():
                return len(evs)
            with self.cond:
                self.cond.wait(0.1)

    def wait_holding(self, timeout=30):
        r = self.wait_for(lambda l: 'event=holding' in l or 'event=exit' in l, timeout)
        return r is not None and 'event=holding' in r[1]

    def command(self, line, timeout=15.0):
        """Send @line and wait for its result line; returns the parsed
        result (dict) or None on timeout."""
        since = time.monotonic()  # its result can only come after this
        ident = self.send(line)
        r = self.wait_for(lambda l: 'event=result id=%d ' % ident in l, timeout, since=since)
        return parse_kv(r[1]) if r else None

    def status_record(self, timeout=20.0):
        """The record as the running tool prints it for a `status`
        command (works without --record); None on timeout."""
        since = time.monotonic()
        self.send('status')
        r = self.wait_for(lambda l: l.startswith('{"hosts"'), timeout, since=since)
        try:
            return json.loads(r[1]) if r else None
        except ValueError:
            return None

    def read_record(self):
        """The --record JSON (None if the tool never wrote one: it has
        held nothing yet)."""
        for _ in range(20):
            try:
                with open(self.record) as f:
                    return json.load(f)
            except FileNotFoundError:
                return None
            except (OSError, ValueError):
                time.sleep(0.05)
        return None

    def held(self):
        """[(host addr, server, fh, start, len, type, state, reclaimed)]."""
        doc = self.read_record() or {'hosts': []}
        out = []
        for hst in doc.get('hosts', []):
            for lk in hst.get('locks', []):
                out.append((hst['addr'], lk['server'], lk['fh'], lk['start'], lk['len'],
                            lk['type'], lk['state'], lk.get('reclaimed', 0), lk['svid'],
                            lk['oh']))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.t.join(5)
        try:
            self.logf.close()
        except Exception:
            pass


def host_addrs(first, n):
    """@n consecutive IPv4 addresses from @first."""
    a = [int(x) for x in first.split('.')]
    v = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]
    return ['%d.%d.%d.%d' % ((x >> 24) & 255, (x >> 16) & 255, (x >> 8) & 255, x & 255)
            for x in range(v, v + n)]


def _last(start, length):
    return (1 << 64) - 1 if length == 0 else start + length - 1


def conflicts(locks):
    """Pairs of conflicting locks among @locks: (owner, key, start, len,
    type) tuples; same key (server file), overlapping, at least one
    exclusive, different owner."""
    out = []
    by_key = {}
    for lk in locks:
        by_key.setdefault(lk[1], []).append(lk)
    for key, ls in by_key.items():
        ls = sorted(ls, key=lambda x: x[2])
        for i in range(len(ls)):
            for j in range(i + 1, len(ls)):
                a, b = ls[i], ls[j]
                if b[2] > _last(a[2], a[3]):
                    break
                if a[0] != b[0] and ('excl' in (a[4], b[4])):
                    out.append((a, b))
    return out


def server_locks(st, group):
    """(owner, file, start, len, type) of every lock the server reports
    for @group."""
    out = []
    for lk in st.get(group, {}).get('locks', []):
        out.append(lk)
    return out


# ---------------------------------------------------------------------------
# Tshark


class Capture:
    """tshark on lo for SM_NOTIFY (NSM procedure 6) and NLM; None-safe:
    if tshark cannot capture, .ok is False and checks are skipped."""

    def __init__(self, h, bpf):
        self.h = h
        self.ok = False
        self.proc = None
        self.pcap = os.path.join(h.logdir, 'capture-%d.pcap' % random.randrange(1 << 30))
        tshark = shutil.which('tshark')
        dumpcap = shutil.which('dumpcap')
        if not tshark or not dumpcap or os.environ.get('SGNFS_NO_TSHARK') == '1':
            log('tshark/dumpcap not available: no capture')
            return
        self.tshark = tshark
        errlog = os.path.join(h.logdir, 'dumpcap-%d.log' % random.randrange(1 << 30))
        self.errf = open(errlog, 'wb')
        self.proc = subprocess.Popen([dumpcap, '-i', 'lo', '-f', bpf, '-w', self.pcap, '-q'],
                                     stdout=self.errf, stderr=self.errf,
                                     start_new_session=True, preexec_fn=harness._pdeathsig)
        h.helpers.append(self.proc)
        # dumpcap is capturing once the file exists with its header
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if os.path.exists(self.pcap) and os.path.getsize(self.pcap) > 0:
                self.ok = True
                break
            time.sleep(0.05)
        if not self.ok:
            log('dumpcap did not start: no capture')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            time.sleep(0.3)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def sm_notify(self):
        """[(src ip, dst ip, mon_name, state)] of every SM_NOTIFY call seen."""
        if not self.ok:
            return None
        # Decode UDP/TCP on any port as ONC RPC where it looks like it.
        cp = subprocess.run([self.tshark, '-r', self.pcap, '-o', 'rpc.defragment_rpc_over_tcp:TRUE',
                             '-Y', 'stat.procedure_v1 == 6 && rpc.msgtyp == 0',
                             '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst',
                             '-e', 'stat.mon_id.name', '-e', 'stat.state',
                             '-d', 'udp.port==4046,rpc', '-d', 'tcp.port==4046,rpc'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        out = []
        for ln in cp.stdout.decode('utf-8', 'replace').splitlines():
            f = ln.split('\t')
            if len(f) >= 4:
                out.append((f[0], f[1], f[2], f[3]))
        if cp.returncode != 0:
            log('tshark: %s' % cp.stderr.decode('utf-8', 'replace')[-500:])
        return out


# ---------------------------------------------------------------------------
# Lock views: what clients believe (records) and what the server reports


def record_set(holds, server=None, docs=()):
    """{(client, svid, oh, fh, start, last)} of every lock the @holds
    believe they hold (through @server if given); @docs: records already
    read (e.g. Hold.status_record())."""
    out = set()
    for doc in [ho.read_record() for ho in holds] + list(docs):
        doc = doc or {'hosts': []}
        for hst in doc.get('hosts', []):
            for lk in hst.get('locks', []):
                if server is not None and lk['server'] != server:
                    continue
                if lk['type'] == 'share':
                    continue
                out.add((hst['name'], lk['svid'], lk['oh'], lk['fh'], lk['start'],
                         _last(lk['start'], lk['len'])))
    return out


def record_states(holds):
    """{(host addr, start): (state, reclaimed)} of every recorded lock."""
    out = {}
    for ho in holds:
        doc = ho.read_record() or {'hosts': []}
        for hst in doc.get('hosts', []):
            for lk in hst.get('locks', []):
                out[(hst['addr'], lk['server'], lk['start'])] = (lk['state'], lk.get('reclaimed', 0))
    return out


def server_set(st, group):
    """{(client, svid, owner, fh, start, last)} of @group's locks per status."""
    out = set()
    for lk in st.get(group, {}).get('locks', []):
        end = lk['end']
        if not isinstance(end, int):
            end = (1 << 64) - 1
        out.add((lk['client'], lk['svid'], lk['owner'], lk['file'], lk['start'], end))
    return out


def server_conflicts(st, group):
    """Pairs of @group's server locks held by different owners that
    overlap on the same file with at least one exclusive."""
    ls = []
    for lk in st.get(group, {}).get('locks', []):
        end = lk['end'] if isinstance(lk['end'], int) else (1 << 64) - 1
        ls.append(((lk['client'], lk['svid'], lk['owner']), lk['file'], lk['start'],
                   end - lk['start'] + 1, 'excl' if lk['type'].startswith('excl') else 'shared'))
    return conflicts(ls)


# ---------------------------------------------------------------------------
# A lock/unlock loop against one group, in a thread


class LockLoop:
    """Host @addr (a Hold without initial locks) takes and releases one
    byte at @start of @path through @server as fast as it can; every
    result is kept as (monotonic time, op, status)."""

    def __init__(self, h, addr, server, path, start=1000, tag=None):
        self.hold = Hold(h, addr, server, tag=tag)
        self.path = path
        self.start = start
        self.results = []
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.t = None

    def begin(self):
        if not self.hold.wait_for(lambda l: 'event=ready' in l, 10):
            raise TestAbort('lock loop host %s did not start' % self.hold.addr)
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def _run(self):
        while not self.stop_ev.is_set():
            for op in ('lock', 'unlock'):
                t0 = time.monotonic()
                r = self.hold.command('%s %s %d 1' % (op, self.path, self.start), timeout=8)
                with self.lock:
                    self.results.append((t0, time.monotonic(), op,
                                         r.get('status') if r else 'timeout'))
                if r is None:
                    return

    def end(self):
        self.stop_ev.set()
        if self.t:
            self.t.join(20)
        return self.results

    def window(self, t_from, t_to):
        """Results of operations that overlapped [t_from, t_to]."""
        with self.lock:
            return [r for r in self.results if r[1] >= t_from and r[0] <= t_to]

    def refusals(self, t_from=0.0, t_to=float('inf')):
        return [r for r in self.window(t_from, t_to) if r[3] != 'granted']

    def max_gap(self, t_from, t_to):
        """The longest time in [t_from, t_to] without a completed grant."""
        ts = sorted(r[1] for r in self.window(t_from, t_to) if r[3] == 'granted')
        pts = [t_from] + [t for t in ts if t_from <= t <= t_to] + [t_to]
        return max(b - a for a, b in zip(pts, pts[1:]))


# ---------------------------------------------------------------------------
# Common checks


def check_never_left(h, poller, group, owner, t_from, t_to, what=''):
    """Every status sample of [t_from, t_to] shows @group online (not in
    grace, not absent) on @owner."""
    samples = [s for s in poller.states(group, node=owner) if t_from <= s[0] <= t_to]
    bad = [(round(t - t_from, 3), s, o) for t, s, o in samples if s != 'online' or o != [owner]]
    h.check(len(samples) >= 3, '%s: status sampled %d times during the window%s (%d more '
            'in which %s did not answer in time)' % (group, len(samples), what,
                                                     poller.unanswered(owner, t_from, t_to),
                                                     owner))
    return h.check(not bad, '%s stays online (never in grace, never absent) on %s in all %d '
                   'status samples%s%s' % (group, owner, len(samples), what,
                                          '' if not bad else ': %s' % bad[:5]))


def check_notified(h, ho, vip, state, since, nhosts=1, what=''):
    """Each of @ho's @nhosts hosts got SM_NOTIFY from @vip naming @vip with
    @state (after @since), and no other notification."""
    evs = [e for e in ho.events('notify', since) if e.get('state') == str(state)]
    good = [e for e in evs if e.get('from') == vip and e.get('mon_name') == vip]
    hosts = sorted(set(e['host'] for e in good))
    h.check(len(hosts) == nhosts,
            '%s%d/%d hosts of %s got SM_NOTIFY from=%s mon_name=%s state=%s'
            % (what, len(hosts), nhosts, ho.addr, vip, vip, state))
    other = [e for e in ho.events('notify', since) if e not in good]
    h.check(not other, '%s%s: no SM_NOTIFY other than from/naming %s with state %s%s'
            % (what, ho.addr, vip, state, '' if not other else ': %s' % other[:3]))


def check_not_notified(h, ho, since, what=''):
    evs = ho.events('notify', since)
    return h.check(not evs, '%s%s (x%d) got no SM_NOTIFY%s'
                   % (what, ho.addr, ho.nhosts, '' if not evs else ': %s' % evs[:3]))
