"""
fault_util.py - helpers for the fault tests (test_fault_kill9.py and the
soak, scripts/soak.sh), on top of harness.py.

  * tool paths: SGNFS_CLIENT / SGNFSCTL from the environment, else next to
    SGNFSD in the build tree;
  * Hold: one long-running `sgnfs-client hold` process (one simulated host)
    driven through its stdin one command at a time, with a thread that
    parses its event lines and keeps them, in order;
  * cluster views: `sgnfsctl status --json` reduced to owners, group states
    and lock tables; a group's client list and NSM state number read from
    its storage;
  * the invariants themselves (pure functions over those views), so the
    test only sequences kills and waits.

Python 3 standard library only.
"""

import json
import os
import re
import subprocess
import threading
import time
import calendar

from harness import TestAbort, log

U64 = (1 << 64) - 1

# sgnfs-client exit codes
EXIT_OK, EXIT_DENIED, EXIT_GRACE, EXIT_ERROR = 0, 1, 2, 3


# ---------------------------------------------------------------------------
# Tools


def _tool(var, rel):
    p = os.environ.get(var, '')
    if p and os.access(p, os.X_OK):
        return p
    d = os.environ.get('SGNFSD', '')
    if d:
        # <build>/src/daemon/sgnfsd -> <build>/<rel>
        build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(d))))
        cand = os.path.join(build, rel)
        if os.access(cand, os.X_OK):
            return cand
    raise TestAbort('%s not set and %s not found next to SGNFSD' % (var, rel))


def client_path():
    return _tool('SGNFS_CLIENT', 'src/client/sgnfs-client')


def ctl_path():
    return _tool('SGNFSCTL', 'src/ctl/sgnfsctl')


# ---------------------------------------------------------------------------
# Event lines of sgnfs-client

_KV = re.compile(r'(\w+)=("([^"]*)"|\S+)')
_TS = re.compile(r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z ')


def parse_event(line):
    """'2026-...Z host=A event=notify from=V ...' -> dict with 't' (epoch
    seconds, or None for untimed result lines) and every key=value."""
    ev = {}
    m = _TS.match(line)
    if m:
        y, mo, d, hh, mi, ss, ms = (int(x) for x in m.groups())
        ev['t'] = calendar.timegm((y, mo, d, hh, mi, ss)) + ms / 1000.0
        line = line[m.end():]
    else:
        ev['t'] = None
    for k, v, q in _KV.findall(line):
        ev[k] = q if v.startswith('"') else v
    return ev


class Hold:
    """One simulated client host: `sgnfs-client hold` with callbacks, a
    JSON record, and commands on stdin sent one at a time (the caller
    serialises them; see command())."""

    def __init__(self, h, addr, name, server, record, logname, timeout_ms=5000,
                 reclaim_ms=15000):
        self.h = h
        self.addr = addr
        self.name = name
        self.record = record
        self.events = []           # parsed event dicts, in arrival order
        self.cv = threading.Condition()
        self.next_id = 0
        self.results = {}          # id -> result event
        self.logpath = os.path.join(h.logdir, logname)
        argv = [client_path(), '--host', addr, '--name', name, '--server', server,
                '--record', record, '--timeout', str(timeout_ms),
                '--reclaim-time', str(reclaim_ms), '--callbacks', 'hold']
        log('spawn: %s' % ' '.join(argv))
        self.logf = open(self.logpath, 'w')
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
        h.helpers.append(self.proc)
        h.logs.append((self.logpath, 'client host %s (%s)' % (name, addr)))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.logf.write(line)
            self.logf.flush()
            ev = parse_event(line.strip())
            with self.cv:
                self.events.append(ev)
                if ev.get('event') == 'result' and 'id' in ev:
                    self.results[int(ev['id'])] = ev
                self.cv.notify_all()
        with self.cv:
            self.events.append({'t': None, 'event': 'eof'})
            self.cv.notify_all()

    def wait_ready(self, timeout=20):
        if not self.wait_for(lambda evs: any(e.get('event') == 'ready' for e in evs), timeout):
            raise TestAbort('client host %s did not start' % self.name)

    def wait_for(self, pred, timeout):
        """Wait until pred(events) is true; returns whether it became true."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while not pred(self.events):
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive():
                    return pred(self.events)
                self.cv.wait(min(left, 0.2))
            return True

    def alive(self):
        return self.proc.poll() is None

    def send(self, line):
        """Send one command; returns its id (the tool numbers every command
        line, in order, from 1)."""
        with self.cv:
            self.next_id += 1
            cid = self.next_id
        try:
            self.proc.stdin.write(line + '\n')
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return None            # the process is gone: wait_result() says so
        return cid

    def wait_result(self, cid, timeout):
        if cid is None:
            return None
        deadline = time.monotonic() + timeout
        with self.cv:
            while cid not in self.results:
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive():
                    return None
                self.cv.wait(min(left, 0.2))
            return self.results.pop(cid)

    def mark(self):
        with self.cv:
            return len(self.events)

    def events_since(self, mark):
        with self.cv:
            return list(self.events[mark:])

    def read_record(self):
        try:
            with open(self.record) as f:
                rec = json.load(f)
        except FileNotFoundError:
            return []
        locks = []
        for hst in rec.get('hosts', []):
            for lk in hst.get('locks', []):
                lk = dict(lk)
                lk['host'] = hst['name']
                locks.append(lk)
        return locks

    def stop(self):
        if self.alive():
            try:
                self.proc.stdin.write('quit\n')
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        self.logf.close()


# ---------------------------------------------------------------------------
# Cluster views


def status(c, timeout=20):
    """`sgnfsctl status --json` (exit 2 when a node is down is normal)."""
    cp = subprocess.run([ctl_path(), '-c', c.config_path, 'status', '--json'],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        timeout=timeout)
    try:
        return json.loads(cp.stdout)
    except ValueError:
        raise TestAbort('sgnfsctl status --json: unparsable output %r (stderr %r)'
                        % (cp.stdout[:500], cp.stderr[:500]))


def group_views(st):
    """group name -> list of (node, group status dict) for every node that
    reports the group (exactly one when all is well)."""
    out = {}
    for n in st.get('nodes', []):
        s = n.get('status') or {}
        for g in s.get('groups', []):
            if g.get('state') != 'offline':
                out.setdefault(g['name'], []).append((n['name'], g))
    return out


def nodes_up(st):
    return {n['name'] for n in st.get('nodes', []) if n.get('up')}


def statedir(group):
    return os.path.join(group.exports[0].path, '.sgnfs')


def client_list(group):
    """Client names on the group's list on its storage (file name = name
    for the short names used here; temporaries skipped)."""
    d = os.path.join(statedir(group), 'clients')
    names = set()
    try:
        for fn in os.listdir(d):
            if fn.startswith('.'):
                continue
            name = fn
            try:
                with open(os.path.join(d, fn)) as f:
                    for line in f:
                        if line.startswith('name='):
                            name = line[5:].rstrip('\n')
                            break
            except OSError:
                pass
            names.add(name)
    except FileNotFoundError:
        pass
    return names


def nsm_state(group):
    try:
        with open(os.path.join(statedir(group), 'state')) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------
# Locks and the invariants


def rec_range(lk):
    """A record entry's inclusive [first, last] (len 0 = to end of file)."""
    s, n = int(lk['start']), int(lk['len'])
    return s, (U64 if n == 0 or n - 1 > U64 - s else s + n - 1)


def srv_end(lk):
    """A server lock's inclusive last byte ("eof" = to end of file)."""
    e = lk['end']
    return U64 if e in ('eof', 'EOF', None) else int(e)


def srv_excl(lk):
    return lk['type'] in ('exclusive', 'excl', 'x')


def srv_owner(lk):
    return (lk['client'], int(lk['svid']), lk['owner'])


def conflicts(locks):
    """Pairs of server locks (one group's table) on the same file whose
    ranges overlap, of different owners, at least one exclusive."""
    byfile = {}
    for lk in locks:
        byfile.setdefault(lk['file'], []).append(lk)
    bad = []
    for f, lst in byfile.items():
        lst = sorted(lst, key=lambda l: int(l['start']))
        for i, a in enumerate(lst):
            for b in lst[i + 1:]:
                if int(b['start']) > srv_end(a):
                    break
                if srv_owner(a) != srv_owner(b) and (srv_excl(a) or srv_excl(b)):
                    bad.append((a, b))
    return bad


def believed_conflicts(entries):
    """The same over client records (entries of several hosts)."""
    bad = []
    lst = [e for e in entries if e.get('type') in ('excl', 'shared')]
    for i, a in enumerate(lst):
        a0, a1 = rec_range(a)
        for b in lst[i + 1:]:
            if a['fh'] != b['fh']:
                continue
            b0, b1 = rec_range(b)
            if a1 < b0 or b1 < a0:
                continue
            if (a['host'], a['svid'], a['oh']) == (b['host'], b['svid'], b['oh']):
                continue
            if a['type'] == 'excl' or b['type'] == 'excl':
                bad.append((a, b))
    return bad


def covered(entry, server_locks):
    """Is the record entry's whole range held on the server by the same
    owner (host, svid, owner handle), on the same file, with the same type?"""
    first, last = rec_range(entry)
    want_excl = entry['type'] == 'excl'
    spans = sorted((int(l['start']), srv_end(l)) for l in server_locks
                   if l['client'] == entry['host'] and int(l['svid']) == int(entry['svid'])
                   and l['owner'] == entry['oh'] and l['file'] == entry['fh']
                   and srv_excl(l) == want_excl)
    pos = first
    for s, e in spans:
        if s > pos:
            break
        if e >= pos:
            if e >= last:
                return True
            pos = e + 1
    return False


def fmt_srv(lk):
    return '%s/svid=%s/%s %s [%s,%s]' % (lk['client'], lk['svid'], lk['owner'][:12],
                                         lk['type'], lk['start'],
                                         'EOF' if srv_end(lk) == U64 else lk['end'])


def fmt_rec(lk):
    first, last = rec_range(lk)
    return '%s/svid=%s %s %s [%d,%s] via %s' % (lk['host'], lk['svid'], lk['type'],
                                              os.path.basename(lk['file']), first,
                                              'EOF' if last == U64 else last, lk['server'])


def same_entry_event(ev, lk):
    """Does a reclaimed/lost event name this record entry?"""
    return (ev.get('server') == lk['server'] and ev.get('file') == lk['file'] and
            int(ev.get('svid', -1)) == int(lk['svid']) and
            int(ev.get('start', -1)) == int(lk['start']) and
            int(ev.get('len', -1)) == int(lk['len']) and
            ev.get('type') == lk['type'])
