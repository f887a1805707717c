"""
nlm_util.py - helpers for the NLM integration tests (test_nlm_*.py), on top
of harness.py.

  * Tool paths: SGNFS_CLIENT and SGNFSCTL from the environment (meson sets
    them), else found next to SGNFSD in the build tree.
  * Client addresses: host(c, k, n) = 127.S.k.n inside the cluster's own
    reserved /16, so simulated client hosts never collide with another test.
  * Client: one-shot sgnfs-client commands (--json), their exit code and
    parsed result.
  * Hold: a long-running "sgnfs-client hold" whose stdin takes commands and
    whose stdout (events, results) is read by a thread.
  * RawNLM: a minimal NLM client written here (ONC RPC, AUTH_SYS, XDR by
    hand) for what the tool cannot express on purpose: a 0-byte owner
    handle, the very same blocking LOCK sent again, many waiters at once.
  * status(): `sgnfsctl status --json`, per group.
  * check_no_sanitizer_report(): a daemon log with an ASan/UBSan report
    fails the test.

Python 3 standard library only.
"""

import json
import os
import random
import socket
import struct
import subprocess
import threading
import time

import harness
from harness import TestAbort, log

# NLM status codes (nlm4_stats)
GRANTED, DENIED, DENIED_NOLOCKS, BLOCKED, DENIED_GRACE, DEADLCK, ROFS, STALE_FH, FBIG, FAILED = range(10)
STAT_NAMES = ['granted', 'denied', 'denied_nolocks', 'blocked', 'grace', 'deadlock',
              'rofs', 'stale_fh', 'fbig', 'failed']

# sgnfs-client exit codes
EXIT_OK, EXIT_DENIED, EXIT_GRACE, EXIT_ERROR = 0, 1, 2, 3

U64 = (1 << 64) - 1

SANITIZER_MARKERS = (b'ERROR: AddressSanitizer', b'ERROR: LeakSanitizer',
                     b'runtime error:', b'ERROR: ThreadSanitizer')


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


def host(c, k, n):
    """A simulated client address in the cluster's private /16."""
    return '127.%d.%d.%d' % (c.slot, k, n)


# ---------------------------------------------------------------------------
# A daemon that died

_watched = []


def watch(c):
    """Make a failed Client.expect() abort the test with the daemon's last
    log lines when a node of @c has died on its own (not by kill9())."""
    _watched.append(c)


def require_alive(h):
    for c in _watched:
        for nd in c.nodes.values():
            if nd.expect_clean_exit and not nd.alive():
                try:
                    tail = log_text(nd).splitlines()[-15:]
                except OSError:
                    tail = []
                h.check(False, 'sgnfsd node %s is alive (it exited with status %s)'
                        % (nd.name, nd.proc.returncode))
                raise TestAbort('sgnfsd node %s died; last log lines:\n  %s'
                                % (nd.name, '\n  '.join(tail)))


# ---------------------------------------------------------------------------
# Sanitizers


def sanitizer_report(path):
    """The first sanitizer marker found in the file at @path, or None."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return None
    for m in SANITIZER_MARKERS:
        if m in data:
            return m.decode()
    return None


def check_no_sanitizer_report(h, c=None, nodes=None):
    """One check: no daemon log (of @nodes, else of every node @c or any
    cluster ever ran) holds "ERROR: AddressSanitizer", "runtime error:"
    (UBSan) or a LeakSanitizer report."""
    if nodes is None:
        clusters = [c] if c is not None else h.clusters
        nodes = [nd for cl in clusters for nd in cl.all_nodes]
    bad = []
    for nd in nodes:
        m = sanitizer_report(nd.logpath)
        if m is not None:
            bad.append('%s: %s' % (os.path.basename(nd.logpath), m))
    return h.check(not bad, 'no sanitizer report in %d daemon log(s)%s'
                   % (len(nodes), ' (found %s)' % '; '.join(bad) if bad else ''))


def log_text(node):
    with open(node.logpath, 'rb') as f:
        return f.read().decode('utf-8', 'replace')


def wait_log(node, needle, timeout=5.0):
    """Wait until @needle appears in @node's log; returns True if it did."""
    deadline = time.monotonic() + timeout
    while True:
        if needle in log_text(node):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# sgnfsctl status


def status(h, c):
    """The cluster's status (sgnfsctl status --json) as a dict of group
    name -> group object (state, clients, locks)."""
    cp = h.run([ctl_path(), '-c', c.config_path, 'status', '--json'], timeout=20,
               check=False, quiet=True)
    try:
        doc = json.loads(cp.stdout.decode())
    except ValueError:
        raise TestAbort('sgnfsctl status --json is not JSON: %r' % cp.stdout[:300])
    groups = {}
    for nd in doc.get('nodes', []):
        st = nd.get('status')
        if not st:
            continue
        for g in st.get('groups', []):
            groups[g['name']] = g
    return groups


def locks_of(st, group, client=None, fh=None):
    g = st.get(group, {})
    return [l for l in g.get('locks', [])
            if (client is None or l['client'] == client) and (fh is None or l['file'] == fh)]


def clients_of(st, group):
    return [x['name'] for x in st.get(group, {}).get('clients', [])]


def wait_served(h, c, groups, timeout=30):
    """Wait until every group in @groups is served (in grace or online): an
    opening group is listed as standby while its state is read off the
    loop, even though its VIP may already accept connections."""
    deadline = time.monotonic() + timeout
    while True:
        st = status(h, c)
        if all(st.get(g, {}).get('state') in ('grace', 'online') for g in groups):
            return st
        if time.monotonic() > deadline:
            raise TestAbort('groups %s not served after %ds: %s'
                            % (groups, timeout, {g: st.get(g, {}).get('state') for g in groups}))
        time.sleep(0.05)


def wait_online(h, c, groups, timeout=30):
    """Wait until every group in @groups is online and out of grace."""
    deadline = time.monotonic() + timeout
    while True:
        st = status(h, c)
        if all(st.get(g, {}).get('state') == 'online' for g in groups):
            return st
        if time.monotonic() > deadline:
            raise TestAbort('groups %s not online and out of grace after %ds: %s'
                            % (groups, timeout, {g: st.get(g, {}).get('state') for g in groups}))
        time.sleep(0.1)


# ---------------------------------------------------------------------------
# One-shot sgnfs-client commands


class Result:
    def __init__(self, rc, lines, stdout, stderr):
        self.rc = rc
        self.lines = lines          # parsed JSON result lines, one per host
        self.stdout = stdout
        self.stderr = stderr

    @property
    def r(self):
        return self.lines[0] if self.lines else {}

    @property
    def status(self):
        return self.r.get('status')

    @property
    def holder(self):
        return self.r.get('holder')

    def __repr__(self):
        return 'rc=%d %s' % (self.rc, json.dumps(self.r) if self.lines else self.stderr.strip()[-300:])


class Client:
    """A simulated client host: sgnfs-client runs with --host ADDR --server
    VIP (and whatever else is given) for every command."""

    def __init__(self, h, addr, server, name=None, svid=None, vers=None, proto=None,
                 extra=(), nlm_port=None, timeout_ms=8000):
        self.h = h
        self.addr = addr
        self.server = server
        self.name = name or addr
        self.svid = svid
        self.base = ['--host', addr, '--server', server, '--json',
                     '--timeout', str(timeout_ms)]
        if name:
            self.base += ['--name', name]
        if svid is not None:
            self.base += ['--svid', str(svid)]
        if vers:
            self.base += ['--vers', str(vers)]
        if proto:
            self.base += ['--proto', proto]
        self.base += list(extra)

    def oh(self, svid=None):
        """The default owner handle the tool sends, hex."""
        return ('%d@%s' % (svid if svid is not None else self.svid, self.name)).encode().hex()

    def argv(self, cmd, *args, opts=()):
        return [client_path()] + self.base + list(opts) + [cmd] + [str(a) for a in args]

    def run(self, cmd, *args, opts=(), timeout=30):
        cp = self.h.run(self.argv(cmd, *args, opts=opts), timeout=timeout, check=False,
                        quiet=True)
        lines = []
        for ln in cp.stdout.decode('utf-8', 'replace').splitlines():
            ln = ln.strip()
            if ln.startswith('{'):
                try:
                    lines.append(json.loads(ln))
                except ValueError:
                    pass
        return Result(cp.returncode, lines, cp.stdout.decode('utf-8', 'replace'),
                      cp.stderr.decode('utf-8', 'replace'))

    def expect(self, what, cmd, *args, rc=None, status=None, opts=(), timeout=30):
        """Run and check the exit code and/or the status; returns Result."""
        res = self.run(cmd, *args, opts=opts, timeout=timeout)
        ok = (rc is None or res.rc == rc) and (status is None or res.status == status)
        exp = ', '.join(x for x in ('rc=%s' % rc if rc is not None else '',
                                    'status=%s' % status if status else '') if x)
        self.h.check(ok, '%s [%s %s %s: want %s, got %s]'
                     % (what, self.addr, cmd, ' '.join(str(a) for a in args), exp,
                        'rc=%d status=%s' % (res.rc, res.status) if ok else repr(res)))
        if not ok:
            require_alive(self.h)
        return res

    def spawn(self, cmd, *args, opts=(), logname=None):
        """Start a command in the background (e.g. lock --block)."""
        argv = self.argv(cmd, *args, opts=opts)
        logname = logname or 'bg-%s-%s-%d.log' % (cmd, self.addr, random.randrange(1 << 30))
        return self.h.spawn(argv, logname), os.path.join(self.h.logdir, logname)


def wait_file_text(path, needle, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, 'rb') as f:
                if needle in f.read().decode('utf-8', 'replace'):
                    return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        if proc is not None and proc.poll() is not None:
            # one more look: the line may have been the last one
            try:
                with open(path, 'rb') as f:
                    return needle in f.read().decode('utf-8', 'replace')
            except OSError:
                return False
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# sgnfs-client hold: a host that stays up and takes commands


class Hold:
    """`sgnfs-client ... hold` with commands on stdin; stdout lines (events
    and results) are collected by a thread.  Killed at cleanup by the
    harness (it is in h.helpers)."""

    def __init__(self, h, addr, server, name=None, svid=None, vers=None, proto=None,
                 extra=(), file_args=()):
        self.h = h
        self.addr = addr
        self.name = name or addr
        argv = [client_path(), '--host', addr, '--server', server]
        if name:
            argv += ['--name', name]
        if svid is not None:
            argv += ['--svid', str(svid)]
        if vers:
            argv += ['--vers', str(vers)]
        if proto:
            argv += ['--proto', proto]
        argv += list(extra) + ['hold'] + [str(a) for a in file_args]
        self.logpath = os.path.join(h.logdir, 'hold-%s-%d.log' % (addr, random.randrange(1 << 30)))
        log('spawn: %s' % ' '.join(argv))
        self.logf = open(self.logpath, 'wb')
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.logf, start_new_session=True,
                                     preexec_fn=harness._pdeathsig)
        h.helpers.append(self.proc)
        h.logs.append((self.logpath, 'hold ' + addr))
        self.lines = []
        self.cond = threading.Condition()
        self.next_id = 0
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()

    def _reader(self):
        for raw in self.proc.stdout:
            ln = raw.decode('utf-8', 'replace').rstrip('\n')
            try:
                self.logf.write(raw)
                self.logf.flush()
            except ValueError:
                pass
            with self.cond:
                self.lines.append(ln)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def send(self, line):
        """Send one command line; returns its id (results say id=N)."""
        self.next_id += 1
        self.proc.stdin.write((line + '\n').encode())
        self.proc.stdin.flush()
        return self.next_id

    def wait_for(self, pred, timeout=10.0):
        """The first collected line that satisfies @pred, or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ln in self.lines:
                    if pred(ln):
                        return ln
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.t.is_alive()):
                    return None
                self.cond.wait(min(left, 0.2))

    def wait_event(self, event, timeout=10.0, extra=''):
        return self.wait_for(lambda l: ('event=%s ' % event) in l + ' ' and extra in l, timeout)

    def result(self, ident, timeout=10.0):
        """The parsed key=value result line of command @ident, or None."""
        ln = self.wait_for(lambda l: 'event=result id=%d ' % ident in l, timeout)
        r = parse_kv(ln) if ln else None
        if r is None or r.get('status') == 'error':
            require_alive(self.h)
        return r

    def count(self, needle):
        with self.cond:
            return sum(1 for l in self.lines if needle in l)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
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


def parse_kv(line):
    """key=value pairs of a result/event line ("quoted values" allowed)."""
    out = {}
    i = 0
    n = len(line)
    while i < n:
        while i < n and line[i] == ' ':
            i += 1
        j = i
        while j < n and line[j] not in '= ':
            j += 1
        if j >= n or line[j] != '=':
            i = j + 1
            continue
        key = line[i:j]
        j += 1
        if j < n and line[j] == '"':
            k = line.find('"', j + 1)
            k = n if k < 0 else k
            out[key] = line[j + 1:k]
            i = k + 1
        else:
            k = line.find(' ', j)
            k = n if k < 0 else k
            out[key] = line[j:k]
            i = k
    return out


# ---------------------------------------------------------------------------
# A raw NLM client (ONC RPC by hand)


class XdrW:
    def __init__(self):
        self.b = bytearray()

    def u32(self, v):
        self.b += struct.pack('>I', v & 0xffffffff)
        return self

    def i32(self, v):
        self.b += struct.pack('>i', v)
        return self

    def u64(self, v):
        self.b += struct.pack('>Q', v & U64)
        return self

    def bool(self, v):
        return self.u32(1 if v else 0)

    def opaque(self, data):
        data = bytes(data)
        self.u32(len(data))
        self.b += data + b'\0' * ((4 - len(data) % 4) % 4)
        return self

    def string(self, s):
        return self.opaque(s.encode() if isinstance(s, str) else s)


class XdrR:
    def __init__(self, data):
        self.d = bytes(data)
        self.p = 0

    def u32(self):
        v, = struct.unpack_from('>I', self.d, self.p)
        self.p += 4
        return v

    def i32(self):
        v, = struct.unpack_from('>i', self.d, self.p)
        self.p += 4
        return v

    def u64(self):
        v, = struct.unpack_from('>Q', self.d, self.p)
        self.p += 8
        return v

    def opaque(self):
        n = self.u32()
        v = self.d[self.p:self.p + n]
        if len(v) != n:
            raise ValueError('short opaque')
        self.p += n + (4 - n % 4) % 4
        return v


NLM_PROG = 100021
P_NULL, P_TEST, P_LOCK, P_CANCEL, P_UNLOCK = 0, 1, 2, 3, 4
P_SHARE, P_UNSHARE, P_NM_LOCK, P_FREE_ALL = 20, 21, 22, 23


class RpcError(Exception):
    pass


class RawNLM:
    """One NLM connection from @local (an address, ephemeral port) to
    @server:@port.  Calls are synchronous; nothing here serves callbacks."""

    def __init__(self, local, server, port=4045, vers=4, proto='tcp', machinename=None,
                 timeout=5.0):
        self.vers = vers
        self.proto = proto
        self.timeout = timeout
        self.machinename = machinename or local
        self.xid = random.randrange(1 << 31)
        kind = socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM
        self.s = socket.socket(socket.AF_INET, kind)
        self.s.settimeout(timeout)
        self.s.bind((local, 0))
        self.s.connect((server, port))

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def _header(self, xid, proc):
        w = XdrW()
        w.u32(xid).u32(0).u32(2).u32(NLM_PROG).u32(self.vers).u32(proc)
        cred = XdrW().u32(int(time.time())).string(self.machinename).u32(0).u32(0).u32(1).u32(0)
        w.u32(1).opaque(cred.b)          # AUTH_SYS
        w.u32(0).opaque(b'')             # verifier AUTH_NONE
        return w.b

    def send(self, proc, body, xid=None):
        """Send a call without waiting; returns its xid."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        msg = bytes(self._header(xid, proc)) + bytes(body)
        if self.proto == 'tcp':
            self.s.sendall(struct.pack('>I', 0x80000000 | len(msg)) + msg)
        else:
            self.s.send(msg)
        return xid

    def _recv_exact(self, n):
        b = bytearray()
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise RpcError('connection closed')
            b += chunk
        return bytes(b)

    def recv(self):
        """One reply: (xid, XdrR positioned at the results)."""
        if self.proto == 'tcp':
            data = b''
            while True:
                mark, = struct.unpack('>I', self._recv_exact(4))
                data += self._recv_exact(mark & 0x7fffffff)
                if mark & 0x80000000:
                    break
        else:
            data = self.s.recv(65536)
        r = XdrR(data)
        xid = r.u32()
        if r.u32() != 1:
            raise RpcError('not a reply')
        if r.u32() != 0:
            raise RpcError('call rejected')
        r.u32()
        r.opaque()                       # verifier
        st = r.u32()
        if st != 0:
            raise RpcError('accept_stat %d' % st)
        return xid, r

    def call(self, proc, body, xid=None):
        want = self.send(proc, body, xid)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            got, r = self.recv()
            if got == want:
                return r
        raise RpcError('timed out')

    # -- argument encoders --------------------------------------------------

    def _alock(self, w, caller, fh, oh, svid, off, ln):
        w.string(caller).opaque(fh).opaque(oh).i32(svid)
        if self.vers == 4:
            w.u64(off).u64(ln)
        else:
            w.u32(off).u32(ln)

    def lock_args(self, caller, fh, oh, svid, off, ln, excl=True, block=False,
                  reclaim=False, state=1, cookie=b'ck'):
        w = XdrW().opaque(cookie).bool(block).bool(excl)
        self._alock(w, caller, fh, oh, svid, off, ln)
        w.bool(reclaim).i32(state)
        return w.b

    def _res(self, r):
        r.opaque()                       # cookie
        return r.u32()

    def lock(self, *a, **kw):
        return self._res(self.call(P_LOCK, self.lock_args(*a, **kw)))

    def test(self, caller, fh, oh, svid, off, ln, excl=True, cookie=b'ck'):
        """(stat, holder dict or None)."""
        w = XdrW().opaque(cookie).bool(excl)
        self._alock(w, caller, fh, oh, svid, off, ln)
        r = self.call(P_TEST, w.b)
        r.opaque()
        st = r.u32()
        holder = None
        if st == DENIED:
            hx = bool(r.u32())
            hsvid = r.i32()
            hoh = r.opaque()
            if self.vers == 4:
                hoff, hlen = r.u64(), r.u64()
            else:
                hoff, hlen = r.u32(), r.u32()
            holder = {'exclusive': hx, 'svid': hsvid, 'oh': hoh, 'start': hoff, 'len': hlen}
        return st, holder

    def unlock(self, caller, fh, oh, svid, off, ln, cookie=b'ck'):
        w = XdrW().opaque(cookie)
        self._alock(w, caller, fh, oh, svid, off, ln)
        return self._res(self.call(P_UNLOCK, w.b))

    def cancel(self, caller, fh, oh, svid, off, ln, excl=True, block=True, cookie=b'ck'):
        w = XdrW().opaque(cookie).bool(block).bool(excl)
        self._alock(w, caller, fh, oh, svid, off, ln)
        return self._res(self.call(P_CANCEL, w.b))

    def free_all(self, name, state=0):
        self.call(P_FREE_ALL, XdrW().string(name).i32(state).b)


def resolve_fh(h, c, server, path, addr):
    """The NFS file handle (bytes) of @path on @server, via sgnfs-client."""
    cl = Client(h, addr, server)
    res = cl.run('resolve', path)
    if res.rc != 0 or not res.r.get('fh'):
        raise TestAbort('cannot resolve %s on %s: %r' % (path, server, res))
    return bytes.fromhex(res.r['fh'])
