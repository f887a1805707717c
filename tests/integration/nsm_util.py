"""
nsm_util.py - network namespaces, raw ONC RPC and the real nfs-common
daemons for the NSM tests (test_nsm_interop.py, test_nsm_hostile.py), on
top of harness.py.

Topology (a "Lab"), all in namespaces this process creates and deletes:

    netns sgn<K>-srv                       netns sgn<K>-<tag> (one per client)
      lo 127.0.0.1                           lo 127.0.0.1
      br0  10.99.K.1, .11, .21 (VIPs) <-veth-> sg<K><tag> 10.99.K.101, ...
      sgnfsd -n a, -n b (via a wrapper       rpcbind, rpc.statd, sm-notify,
        that runs them in this netns)        dumpcap, sgnfs-client, sockets

  * K (1..250) is reserved with an exclusive flock on
    /tmp/sgnfs-nsm-slots/K.lock, so two tests never share names; whatever a
    killed earlier run left behind under the same K (namespaces, their
    processes, /etc/netns/<name>) is removed before use.  10.99.K.0/24 only
    exists inside these namespaces: no address or route is added to the
    machine's own network namespace.
  * A client namespace gets /etc/netns/<name>/hosts (ip netns exec
    bind-mounts it over /etc/hosts) and, when it runs rpcbind, a private
    tmpfs on /run (rpcbind's socket and lock file), shared by everything
    started in it later: those are started with nsenter into rpcbind's
    network *and* mount namespaces.
  * Sockets in any namespace are opened from this process with setns(2) on
    the calling thread only (socket(2) binds the socket to the thread's
    namespace for life), so the test code itself sends and serves RPC from
    inside the namespaces.
  * sgnfsd runs through a wrapper script (cd to an empty directory, then
    exec ip netns exec <srv> sgnfsd ...), so harness.Cluster starts, kills
    and reaps it as usual and its pid is sgnfsd's own.

Python 3 standard library only.
"""

import ctypes
import errno
import fcntl
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

from harness import Skip, TestAbort, log

# ---------------------------------------------------------------------------
# Constants

PMAP_PROG, NFS_PROG, NSM_PROG, NLM_PROG = 100000, 100003, 100024, 100021
IPPROTO_TCP, IPPROTO_UDP = 6, 17

# NSM v1 procedures (XNFS)
SM_NULL, SM_STAT, SM_MON, SM_UNMON, SM_UNMON_ALL, SM_SIMU_CRASH, SM_NOTIFY = range(7)
STAT_SUCC, STAT_FAIL = 0, 1

# NLM procedures used here
NLM_TEST, NLM_LOCK, NLM_UNLOCK = 1, 2, 4
NLM_SHARE, NLM_NM_LOCK, NLM_FREE_ALL = 20, 22, 23
NLM_PRIV_SM_NOTIFY = 16       # the private statd -> lockd callback
NLM4_GRANTED, NLM4_DENIED, NLM4_DENIED_NOLOCKS = 0, 1, 2

MSG_CALL, MSG_REPLY = 0, 1
AUTH_NONE, AUTH_SYS = 0, 1
SUCCESS, PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR = range(6)
ACCEPT_NAMES = ['SUCCESS', 'PROG_UNAVAIL', 'PROG_MISMATCH', 'PROC_UNAVAIL',
                'GARBAGE_ARGS', 'SYSTEM_ERR']

SANITIZER_MARKERS = (b'ERROR: AddressSanitizer', b'ERROR: LeakSanitizer',
                     b'runtime error:', b'ERROR: ThreadSanitizer')

SLOT_DIR = '/tmp/sgnfs-nsm-slots'
NETNS_DIR = '/var/run/netns'
CLONE_NEWNET = 0x40000000


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


def need(h, *tools):
    """Skip unless every tool is installed; returns their paths."""
    return [h.need_tool(t) for t in tools]


# ---------------------------------------------------------------------------
# XDR


def u32(v):
    return struct.pack('>I', v & 0xffffffff)


def i32(v):
    return struct.pack('>i', v)


def u64(v):
    return struct.pack('>Q', v & 0xffffffffffffffff)


def xstr(s):
    """XDR string / variable opaque (any bytes, any length: we lie freely)."""
    if isinstance(s, str):
        s = s.encode('utf-8', 'surrogateescape')
    return u32(len(s)) + s + b'\0' * (-len(s) % 4)


def xfixed(b, n):
    b = (b + b'\0' * n)[:n]
    return b + b'\0' * (-n % 4)


class Unpacker:
    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def u32(self):
        if self.pos + 4 > len(self.data):
            raise ValueError('short XDR at %d' % self.pos)
        v = struct.unpack_from('>I', self.data, self.pos)[0]
        self.pos += 4
        return v

    def i32(self):
        v = self.u32()
        return v - (1 << 32) if v & 0x80000000 else v

    def opaque(self, limit=1 << 16):
        n = self.u32()
        if n > limit or self.pos + n > len(self.data):
            raise ValueError('opaque of %d bytes at %d' % (n, self.pos))
        v = self.data[self.pos:self.pos + n]
        self.pos += n + (-n % 4)
        return v

    def fixed(self, n):
        if self.pos + n > len(self.data):
            raise ValueError('short fixed opaque at %d' % self.pos)
        v = self.data[self.pos:self.pos + n]
        self.pos += n + (-n % 4)
        return v

    def done(self):
        return self.pos >= len(self.data)


# ---- RPC messages (RFC 5531) ----------------------------------------------

_xid = random.randrange(1 << 31)
_xid_lock = threading.Lock()


def next_xid():
    global _xid
    with _xid_lock:
        _xid = (_xid + 1) & 0xffffffff
        return _xid


def auth_sys_cred(machine='sgnfs-nsm-test', uid=0, gid=0):
    body = u32(int(time.time())) + xstr(machine) + u32(uid) + u32(gid) + u32(0)
    return u32(AUTH_SYS) + xstr(body)


def call_msg(xid, prog, vers, proc, args=b'', cred=None):
    cred = cred if cred is not None else u32(AUTH_NONE) + u32(0)
    return (u32(xid) + u32(MSG_CALL) + u32(2) + u32(prog) + u32(vers) + u32(proc)
            + cred + u32(AUTH_NONE) + u32(0) + args)


class Reply:
    """A parsed RPC reply: .accepted (bool), .stat (accept_stat or None),
    .body (the result bytes of an accepted SUCCESS)."""

    def __init__(self, data):
        u = Unpacker(data)
        self.xid = u.u32()
        if u.u32() != MSG_REPLY:
            raise ValueError('not a reply')
        self.accepted = u.u32() == 0
        self.stat = None
        self.body = b''
        if self.accepted:
            u.u32()          # verifier flavour
            u.opaque()       # verifier body
            self.stat = u.u32()
            self.body = data[u.pos:]

    def ok(self):
        return self.accepted and self.stat == SUCCESS

    def __repr__(self):
        if not self.accepted:
            return 'MSG_DENIED'
        return ACCEPT_NAMES[self.stat] if self.stat < len(ACCEPT_NAMES) else str(self.stat)


# ---------------------------------------------------------------------------
# Namespaces and sockets in them

_libc = ctypes.CDLL(None, use_errno=True)
_ns_lock = threading.Lock()


def netns_socket(ns, family=socket.AF_INET, kind=socket.SOCK_DGRAM):
    """A socket that lives in network namespace @ns (None: ours)."""
    if ns is None:
        return socket.socket(family, kind)
    with _ns_lock:
        own = os.open('/proc/thread-self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
        try:
            tgt = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(own)
            raise
        try:
            if _libc.setns(tgt, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, 'setns(%s): %s' % (ns, os.strerror(e)))
            try:
                return socket.socket(family, kind)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    # This thread would now live in the wrong namespace.
                    os._exit(70)
        finally:
            os.close(tgt)
            os.close(own)


def bound_socket(ns, kind, addr='0.0.0.0', port=0, privileged=False):
    """A socket in @ns bound to @addr:@port; with @privileged, to a free
    port below 1024 (as the real statd and lockd do)."""
    s = netns_socket(ns, socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if privileged and port == 0:
        ports = list(range(600, 1024))
        random.shuffle(ports)
        for p in ports:
            try:
                s.bind((addr, p))
                return s
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    s.close()
                    raise
        s.close()
        raise TestAbort('no free privileged port on %s in %s' % (addr, ns))
    s.bind((addr, port))
    return s


class Rpc:
    """One RPC call from a socket in @ns bound to @src (port @sport, or a
    privileged one), over UDP (retransmitted) or TCP (record marking)."""

    def __init__(self, ns, src, dst, port, proto='udp', sport=0, privileged=False):
        self.ns, self.src, self.dst, self.port, self.proto = ns, src, dst, port, proto
        kind = socket.SOCK_DGRAM if proto == 'udp' else socket.SOCK_STREAM
        self.s = bound_socket(ns, kind, src, sport, privileged)
        self.sport = self.s.getsockname()[1]
        if proto == 'tcp':
            self.s.settimeout(5)
            self.s.connect((dst, port))
        self.buf = b''

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def call(self, prog, vers, proc, args=b'', timeout=3.0, cred=None, expect_reply=True):
        """The Reply, or None if nothing came back within @timeout."""
        xid = next_xid()
        msg = call_msg(xid, prog, vers, proc, args, cred)
        deadline = time.monotonic() + timeout
        if self.proto == 'udp':
            resend = 0.0
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return None
                if now >= resend:
                    self.s.sendto(msg, (self.dst, self.port))
                    resend = now + 0.5
                if not expect_reply:
                    return None
                r, _, _ = select.select([self.s], [], [], min(deadline, resend) - now)
                if not r:
                    continue
                data, _ = self.s.recvfrom(1 << 16)
                try:
                    rep = Reply(data)
                except ValueError:
                    continue
                if rep.xid == xid:
                    return rep
        self.s.sendall(u32(0x80000000 | len(msg)) + msg)
        if not expect_reply:
            return None
        while True:
            rec = self._record(deadline)
            if rec is None:
                return None
            try:
                rep = Reply(rec)
            except ValueError:
                continue
            if rep.xid == xid:
                return rep

    def _record(self, deadline):
        out = b''
        while True:
            while len(self.buf) < 4:
                if not self._fill(deadline):
                    return None
            mark = struct.unpack('>I', self.buf[:4])[0]
            n = mark & 0x7fffffff
            while len(self.buf) < 4 + n:
                if not self._fill(deadline):
                    return None
            out += self.buf[4:4 + n]
            self.buf = self.buf[4 + n:]
            if mark & 0x80000000:
                return out

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.s], [], [], left)
        if not r:
            return False
        try:
            data = self.s.recv(1 << 16)
        except OSError:
            return False
        if not data:
            return False
        self.buf += data
        return True


def rpc_once(ns, src, dst, port, prog, vers, proc, args=b'', proto='udp', sport=0,
             privileged=False, timeout=3.0, cred=None):
    with Rpc(ns, src, dst, port, proto, sport, privileged) as r:
        return r.call(prog, vers, proc, args, timeout=timeout, cred=cred)


# ---- PORTMAP v2 -----------------------------------------------------------


def pmap_getport(ns, src, host, prog, vers, prot=IPPROTO_UDP, timeout=3.0):
    rep = rpc_once(ns, src, host, 111, PMAP_PROG, 2, 3,
                   u32(prog) + u32(vers) + u32(prot) + u32(0), timeout=timeout)
    if rep is None or not rep.ok():
        return 0
    return Unpacker(rep.body).u32()


def pmap_set(ns, prog, vers, prot, port, unset=False):
    """Register with the portmapper on 127.0.0.1 of @ns, from a privileged
    loopback port (what rpcbind wants of a SET over UDP)."""
    rep = rpc_once(ns, '127.0.0.1', '127.0.0.1', 111, PMAP_PROG, 2, 2 if unset else 1,
                   u32(prog) + u32(vers) + u32(prot) + u32(port), privileged=True)
    return rep is not None and rep.ok() and Unpacker(rep.body).u32() == 1


# ---- NSM and NLM arguments -----------------------------------------------


def sm_mon_args(mon_name, my_name, my_prog=NLM_PROG, my_vers=4, my_proc=NLM_PRIV_SM_NOTIFY,
                priv=b'\0' * 16):
    return xstr(mon_name) + xstr(my_name) + u32(my_prog) + u32(my_vers) + u32(my_proc) + \
        xfixed(priv, 16)


def sm_unmon_args(mon_name, my_name, my_prog=NLM_PROG, my_vers=4, my_proc=NLM_PRIV_SM_NOTIFY):
    return xstr(mon_name) + xstr(my_name) + u32(my_prog) + u32(my_vers) + u32(my_proc)


def sm_unmon_all_args(my_name, my_prog=NLM_PROG, my_vers=4, my_proc=NLM_PRIV_SM_NOTIFY):
    return xstr(my_name) + u32(my_prog) + u32(my_vers) + u32(my_proc)


def sm_notify_args(mon_name, state):
    return xstr(mon_name) + i32(state)


def sm_status_args(mon_name, state, priv=b'\0' * 16):
    """The private callback's argument (NLM procedure 16)."""
    return xstr(mon_name) + i32(state) + xfixed(priv, 16)


def sm_stat_res(rep):
    """(res_stat, state) of an SM_STAT / SM_MON reply."""
    u = Unpacker(rep.body)
    return u.u32(), u.i32()


def nlm4_lock_args(caller, fh, oh=b'hostile-owner', svid=7, start=0, length=1, excl=True,
                   block=False, reclaim=False, state=1, cookie=b'ck'):
    lock = xstr(caller) + xstr(fh) + xstr(oh) + i32(svid) + u64(start) + u64(length)
    return xstr(cookie) + u32(int(block)) + u32(int(excl)) + lock + u32(int(reclaim)) + \
        i32(state)


def nlm4_share_args(caller, fh, oh=b'hostile-share', mode=0, access=1, reclaim=False,
                    cookie=b'ck'):
    return xstr(cookie) + xstr(caller) + xstr(fh) + xstr(oh) + u32(mode) + u32(access) + \
        u32(int(reclaim))


def nlm4_notify_args(name, state=0):
    """FREE_ALL's argument (nlm4_notify)."""
    return xstr(name) + i32(state)


def nlm4_stat(rep):
    """The status of an nlm4_res reply (cookie, stat)."""
    u = Unpacker(rep.body)
    u.opaque()
    return u.u32()


# ---------------------------------------------------------------------------
# A tiny RPC server: what the real rpc.statd calls back


class CallbackServer:
    """UDP and TCP on 127.0.0.1 in @ns, answering every call to program
    100021 (any version) with an empty SUCCESS and recording it.  Register
    it with the namespace's rpcbind with register()."""

    def __init__(self, ns, prog=NLM_PROG):
        self.ns = ns
        self.prog = prog
        self.calls = []           # dicts: proc, vers, mon_name, state, priv, src, proto, t
        self.cond = threading.Condition()
        self.udp = bound_socket(ns, socket.SOCK_DGRAM, '127.0.0.1', 0)
        self.port = self.udp.getsockname()[1]
        self.tcp = bound_socket(ns, socket.SOCK_STREAM, '127.0.0.1', self.port)
        self.tcp.listen(8)
        self.conns = {}
        self.stop_r, self.stop_w = os.pipe()
        self.registered = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def register(self, versions=(4,)):
        ok = True
        for v in versions:
            # PMAP v2 UNSET drops every protocol of (prog, vers): first.
            pmap_set(self.ns, self.prog, v, IPPROTO_UDP, 0, unset=True)
            for prot in (IPPROTO_UDP, IPPROTO_TCP):
                if pmap_set(self.ns, self.prog, v, prot, self.port):
                    self.registered.append((v, prot))
                else:
                    ok = False
        return ok

    def _handle(self, data, src, proto):
        try:
            u = Unpacker(data)
            xid = u.u32()
            if u.u32() != MSG_CALL or u.u32() != 2:
                return None
            prog, vers, proc = u.u32(), u.u32(), u.u32()
            u.u32(); u.opaque()      # credential
            u.u32(); u.opaque()      # verifier
        except ValueError:
            return None
        stat = SUCCESS if prog == self.prog else PROG_UNAVAIL
        rec = {'proc': proc, 'vers': vers, 'prog': prog, 'src': src, 'proto': proto,
               't': time.monotonic(), 'raw': data[u.pos:]}
        if prog == self.prog and proc in (16, 24):
            try:
                rec['mon_name'] = u.opaque().decode('utf-8', 'replace')
                rec['state'] = u.i32()
                rec['priv'] = u.fixed(16)
            except ValueError as e:
                rec['error'] = str(e)
        if proc != 0:
            with self.cond:
                self.calls.append(rec)
                self.cond.notify_all()
            log('callback server: %s call prog %d vers %d proc %d from %s:%d %s'
                % (proto, prog, vers, proc, src[0], src[1],
                   {k: rec[k] for k in ('mon_name', 'state', 'priv') if k in rec}))
        return u32(xid) + u32(MSG_REPLY) + u32(0) + u32(AUTH_NONE) + u32(0) + u32(stat)

    def _run(self):
        while True:
            rl = [self.udp, self.tcp, self.stop_r] + list(self.conns)
            try:
                r, _, _ = select.select(rl, [], [], 1.0)
            except (OSError, ValueError):
                return
            for s in r:
                if s == self.stop_r:
                    return
                if s is self.udp:
                    data, src = self.udp.recvfrom(1 << 16)
                    rep = self._handle(data, src, 'udp')
                    if rep:
                        self.udp.sendto(rep, src)
                elif s is self.tcp:
                    c, src = self.tcp.accept()
                    self.conns[c] = [b'', src]
                else:
                    try:
                        data = s.recv(1 << 16)
                    except OSError:
                        data = b''
                    if not data:
                        s.close()
                        del self.conns[s]
                        continue
                    st = self.conns[s]
                    st[0] += data
                    while len(st[0]) >= 4:
                        n = struct.unpack('>I', st[0][:4])[0] & 0x7fffffff
                        if len(st[0]) < 4 + n:
                            break
                        rec, st[0] = st[0][4:4 + n], st[0][4 + n:]
                        rep = self._handle(rec, st[1], 'tcp')
                        if rep:
                            s.sendall(u32(0x80000000 | len(rep)) + rep)

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [c for c in self.calls if pred(c)]
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.cond.wait(left)

    def close(self):
        for v in sorted(set(v for v, _ in self.registered)):
            try:
                pmap_set(self.ns, self.prog, v, IPPROTO_UDP, 0, unset=True)
            except OSError:
                pass
        os.write(self.stop_w, b'x')
        self.thread.join(5)
        for s in [self.udp, self.tcp] + list(self.conns):
            s.close()
        os.close(self.stop_r)
        os.close(self.stop_w)


# ---------------------------------------------------------------------------
# The lab: namespaces, veths, daemons


def _ip(*args, check=True):
    cp = subprocess.run(['ip'] + [str(a) for a in args], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=30)
    if check and cp.returncode != 0:
        raise TestAbort('ip %s: %s' % (' '.join(str(a) for a in args),
                                       cp.stderr.decode(errors='replace').strip()))
    return cp


def _netns_list():
    cp = _ip('netns', 'list', check=False)
    return [ln.split()[0] for ln in cp.stdout.decode().splitlines() if ln.strip()]


def _kill_netns(name):
    """Kill what still runs in namespace @name (only ours: the name carries
    our reserved slot) and delete it with its /etc/netns directory."""
    if name in _netns_list():
        for _ in range(50):
            cp = _ip('netns', 'pids', name, check=False)
            pids = [int(p) for p in cp.stdout.split() if p.strip().isdigit()]
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        _ip('netns', 'del', name, check=False)
    shutil.rmtree(os.path.join('/etc/netns', name), ignore_errors=True)


class Client:
    """One client namespace: @addrs on its veth, optional rpcbind + statd."""

    def __init__(self, lab, tag, addrs):
        self.lab = lab
        self.tag = tag
        self.ns = '%s-%s' % (lab.prefix, tag)
        self.ifname = 'sg%d%s' % (lab.k, tag)
        self.addrs = list(addrs)
        self.rpcbind = None
        self.statd = None
        self.statedir = None

    @property
    def addr(self):
        return self.addrs[0]

    def exec_argv(self, argv):
        """Run @argv in this namespace (with rpcbind's private /run once
        rpcbind runs)."""
        argv = [str(a) for a in argv]
        if self.rpcbind is not None and self.rpcbind.poll() is None:
            return ['nsenter', '-t', str(self.rpcbind.pid), '-n', '-m', '--'] + argv
        return ['ip', 'netns', 'exec', self.ns] + argv

    def run(self, argv, **kw):
        return self.lab.h.run(self.exec_argv(argv), **kw)

    def spawn(self, argv, logname):
        return self.lab.h.spawn(self.exec_argv(argv), logname)

    def socket(self, kind=socket.SOCK_DGRAM):
        return netns_socket(self.ns, socket.AF_INET, kind)

    def start_rpcbind(self):
        """rpcbind -f -w with a private tmpfs on /run; returns once it
        answers PORTMAP on 127.0.0.1."""
        h = self.lab.h
        rpcbind = h.need_tool('rpcbind')
        script = ('mount -t tmpfs -o mode=0755 sgnfs-nsm-run /run && mkdir -p /run/rpcbind && '
                  '(chown _rpc /run/rpcbind 2>/dev/null || true) && exec %s -f -w' % rpcbind)
        self.rpcbind = h.spawn(['ip', 'netns', 'exec', self.ns, 'sh', '-c', script],
                               'rpcbind-%s.log' % self.tag)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.rpcbind.poll() is not None:
                raise TestAbort('rpcbind in %s exited with %s' % (self.ns, self.rpcbind.returncode))
            try:
                if pmap_getport(self.ns, '127.0.0.1', '127.0.0.1', PMAP_PROG, 2, timeout=0.5):
                    log('rpcbind runs in %s (pid %d)' % (self.ns, self.rpcbind.pid))
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TestAbort('rpcbind in %s does not answer' % self.ns)

    def start_statd(self, statedir):
        """The real rpc.statd, foreground, debug log, own state directory,
        not running sm-notify itself (-L).  Returns its UDP port."""
        h = self.lab.h
        statd = h.need_tool('rpc.statd')
        self.statedir = statedir
        for d in ('sm', 'sm.bak'):
            os.makedirs(os.path.join(statedir, d), exist_ok=True)
        self.statd = self.spawn([statd, '-F', '-L', '-d', '-P', statedir],
                                'rpc.statd-%s.log' % self.tag)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.statd.poll() is not None:
                raise TestAbort('rpc.statd in %s exited with %s' % (self.ns, self.statd.returncode))
            port = pmap_getport(self.ns, '127.0.0.1', '127.0.0.1', NSM_PROG, 1, timeout=0.5)
            if port:
                log('rpc.statd runs in %s (pid %d), udp port %d' % (self.ns, self.statd.pid, port))
                return port
            time.sleep(0.1)
        raise TestAbort('rpc.statd in %s did not register' % self.ns)

    def stop_statd(self, sig=signal.SIGKILL):
        if self.statd is not None and self.statd.poll() is None:
            self.statd.send_signal(sig)
            self.statd.wait(10)

    def statd_log(self):
        for path, title in self.lab.h.logs:
            if os.path.basename(path) == 'rpc.statd-%s.log' % self.tag:
                with open(path, 'rb') as f:
                    return f.read().decode('utf-8', 'replace')
        return ''


class Lab:
    """The server namespace with a bridge carrying the VIPs, and client
    namespaces attached to it.  Always call close() (use `with`)."""

    def __init__(self, h):
        self.h = h
        self.clients = {}
        self.closed = False
        self.lock_fd = None
        self.k = None
        if os.geteuid() != 0:
            raise Skip('network namespaces are impossible here: ip netns needs root '
                       '(euid %d)' % os.geteuid())
        if not shutil.which('ip') or not shutil.which('nsenter'):
            raise Skip('network namespaces are impossible here: ip or nsenter missing')
        cp = subprocess.run(['ip', 'netns', 'list'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
        if cp.returncode != 0:
            raise Skip('network namespaces are impossible here: ip netns list: %s'
                       % cp.stderr.decode(errors='replace').strip())
        self._reserve()
        self.prefix = 'sgn%d' % self.k
        self.srv = '%s-srv' % self.prefix
        self.net = '10.99.%d' % self.k
        self._remove_leftovers()
        try:
            cp = _ip('netns', 'add', self.srv, check=False)
            if cp.returncode != 0:
                raise Skip('ip netns add is impossible here: %s'
                           % cp.stderr.decode(errors='replace').strip())
            _ip('-n', self.srv, 'link', 'set', 'lo', 'up')
            _ip('-n', self.srv, 'link', 'add', 'br0', 'type', 'bridge')
            _ip('-n', self.srv, 'link', 'set', 'br0', 'up')
            self.vip_addrs = []
            log('lab: namespace %s, bridge br0, network %s.0/24' % (self.srv, self.net))
        except BaseException:
            self.close()
            raise

    def _reserve(self):
        os.makedirs(SLOT_DIR, exist_ok=True)
        ks = list(range(1, 251))
        random.shuffle(ks)
        for k in ks:
            fd = os.open(os.path.join(SLOT_DIR, '%d.lock' % k), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.lock_fd, self.k = fd, k
            return
        raise TestAbort('no free lab slot in %s' % SLOT_DIR)

    def _remove_leftovers(self):
        """Namespaces sgn<K>-* of a run that was killed (SIGKILL leaves no
        chance to clean up): ours, or any K whose slot lock nobody holds."""
        for name in _netns_list():
            if not name.startswith('sgn') or '-' not in name:
                continue
            ks = name[3:].split('-', 1)[0]
            if not ks.isdigit():
                continue
            if int(ks) != self.k:
                path = os.path.join(SLOT_DIR, '%s.lock' % ks)
                if not os.path.exists(path):
                    continue
                fd = os.open(path, os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue            # a live test owns it
                try:
                    log('removing leftover namespace %s (slot %s is free)' % (name, ks))
                    _kill_netns(name)
                finally:
                    os.close(fd)
            else:
                log('removing leftover namespace %s' % name)
                _kill_netns(name)

    def vip(self, i):
        """The VIP of group number @i: 10.99.K.(10*i+1)."""
        return '%s.%d' % (self.net, 10 * i + 1)

    def add_vip(self, addr):
        _ip('-n', self.srv, 'addr', 'add', addr + '/24', 'dev', 'br0')
        self.vip_addrs.append(addr)

    def add_client(self, tag, hosts, hostnames=None):
        """A client namespace @tag with addresses 10.99.K.@hosts[i];
        @hostnames maps address -> name for its /etc/hosts."""
        c = Client(self, tag, ['%s.%d' % (self.net, n) for n in hosts])
        self.clients[tag] = c
        etc = os.path.join('/etc/netns', c.ns)
        os.makedirs(etc, exist_ok=True)
        lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback']
        for a, n in (hostnames or {}).items():
            lines.append('%s\t%s' % (a, n))
        with open(os.path.join(etc, 'hosts'), 'w') as f:
            f.write('# generated by tests/integration/nsm_util.py\n' + '\n'.join(lines) + '\n')
        # No name server is reachable from the namespace: fail lookups at once.
        with open(os.path.join(etc, 'resolv.conf'), 'w') as f:
            f.write('# generated by tests/integration/nsm_util.py: no DNS\n'
                    'options timeout:1 attempts:1\n')
        _ip('netns', 'add', c.ns)
        _ip('-n', c.ns, 'link', 'set', 'lo', 'up')
        _ip('link', 'add', c.ifname, 'netns', c.ns, 'type', 'veth',
            'peer', 'name', c.ifname + 'p', 'netns', self.srv)
        _ip('-n', self.srv, 'link', 'set', c.ifname + 'p', 'master', 'br0')
        _ip('-n', self.srv, 'link', 'set', c.ifname + 'p', 'up')
        for a in c.addrs:
            _ip('-n', c.ns, 'addr', 'add', a + '/24', 'dev', c.ifname)
        _ip('-n', c.ns, 'link', 'set', c.ifname, 'up')
        log('lab: client namespace %s, %s %s' % (c.ns, c.ifname, ' '.join(c.addrs)))
        return c

    def wait_reachable(self, client, addr, port, timeout=10):
        """Wait until @client's namespace reaches @addr:@port over TCP
        (bridge ports take a moment to forward)."""
        deadline = time.monotonic() + timeout
        while True:
            s = client.socket(socket.SOCK_STREAM)
            s.settimeout(0.5)
            try:
                s.connect((addr, port))
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
            finally:
                s.close()

    # -- sgnfsd in the server namespace ------------------------------------

    def cluster(self, groups, **kw):
        """A harness cluster whose nodes run in the server namespace and
        whose group i has VIP 10.99.K.(10*i+1)."""
        h = self.h
        real = os.environ.get('SGNFSD', '')
        if not real or not os.access(real, os.X_OK):
            raise TestAbort('SGNFSD not set or not executable (%r)' % real)
        cwd = os.path.join(h.tmp, 'daemon-cwd')
        os.makedirs(cwd, exist_ok=True)
        wrapper = os.path.join(h.tmp, 'sgnfsd-in-%s' % self.srv)
        with open(wrapper, 'w') as f:
            f.write('#!/bin/sh\n# run sgnfsd inside the lab server namespace\n'
                    'cd "%s" || exit 70\nexec ip netns exec %s "%s" "$@"\n' % (cwd, self.srv, real))
        os.chmod(wrapper, 0o755)
        self.daemon_cwd = cwd
        h.sgnfsd = wrapper
        c = h.cluster(groups, **kw)
        for i, g in enumerate(c.groups):
            g.vips = [self.vip(i)]
            self.add_vip(g.vips[0])
        c.write_config()
        log('lab config %s:\n%s' % (c.config_path, c.config_text()))
        return c

    def wait_vip(self, c, vip, node=None, timeout=20,
                 ports=(2049, 20048, 111, 4045, 662)):
        """Wait until @vip accepts TCP on @ports, seen from inside the
        server namespace."""
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                if node is not None and not node.alive():
                    raise TestAbort('node %s exited with status %s' % (node.name, node.proc.returncode))
                s = netns_socket(self.srv, socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(0.5)
                try:
                    s.connect((vip, port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TestAbort('%s:%d does not answer after %ds' % (vip, port, timeout))
                    time.sleep(0.05)
                finally:
                    s.close()
        log('%s answers on %s' % (vip, ports))

    def close(self):
        if self.closed:
            return
        self.closed = True
        # Daemons first (harness.cleanup would stop them later, but the
        # namespaces must be empty to disappear).
        for c in self.h.clusters:
            try:
                c.stop_all()
            except Exception as e:
                log('stopping cluster: %s' % e)
                c.kill_all()
        for c in self.clients.values():
            for p in (c.statd, c.rpcbind):
                if p is not None and p.poll() is None:
                    try:
                        p.kill()
                        p.wait(5)
                    except Exception:
                        pass
        if self.k is not None:
            for name in _netns_list():
                if name.startswith(self.prefix + '-'):
                    _kill_netns(name)
            for c in self.clients.values():
                shutil.rmtree(os.path.join('/etc/netns', c.ns), ignore_errors=True)
            shutil.rmtree(os.path.join('/etc/netns', self.srv), ignore_errors=True)
            try:
                os.rmdir('/etc/netns')      # only if empty (ip netns does not need it)
            except OSError:
                pass
            log('lab %s removed' % self.prefix)
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ---------------------------------------------------------------------------
# Capture


class Capture:
    """dumpcap on an interface of a namespace, written to a pcap in the
    harness's log directory."""

    def __init__(self, h, client, iface, bpf, name):
        self.h = h
        self.pcap = os.path.join(h.logdir, name + '.pcap')
        dumpcap = h.need_tool('dumpcap')
        self.proc = h.spawn(['ip', 'netns', 'exec', client.ns, dumpcap, '-i', iface, '-f', bpf,
                             '-w', self.pcap, '-q'], name + '.dumpcap.log')
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TestAbort('dumpcap exited with %s' % self.proc.returncode)
            if os.path.exists(self.pcap) and os.path.getsize(self.pcap) > 0:
                time.sleep(0.3)
                return
            time.sleep(0.05)
        raise TestAbort('dumpcap did not start on %s in %s' % (iface, client.ns))

    def stop(self):
        if self.proc.poll() is None:
            time.sleep(0.5)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tshark(self, args, timeout=60):
        cp = subprocess.run(['tshark', '-n', '-r', self.pcap] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return cp.stdout.decode('utf-8', 'replace')

    def fields(self, display_filter, fields):
        out = self.tshark(['-Y', display_filter, '-T', 'fields', '-E', 'separator=|'] +
                          sum([['-e', f] for f in fields], []))
        return [ln.split('|') for ln in out.splitlines() if ln.strip()]


# ---------------------------------------------------------------------------
# sgnfsctl status and sgnfs-client


def status_raw(c):
    """The bytes `sgnfsctl status --json` prints."""
    cp = subprocess.run([ctl_path(), '-c', c.config_path, 'status', '--json'],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    return cp.stdout, cp.stderr


def utf8_ok(data):
    try:
        data.decode('utf-8')
        return True
    except UnicodeDecodeError:
        return False


def status(h, c):
    """group name -> group object of `sgnfsctl status --json`.  Bytes that
    are not UTF-8 (client names may hold any byte >= 0x21) are decoded as
    surrogates here; status_raw() + utf8_ok() check the encoding itself."""
    out, err = status_raw(c)
    try:
        doc = json.loads(out.decode('utf-8', 'surrogateescape'))
    except ValueError:
        raise TestAbort('sgnfsctl status --json is not JSON: %r %r' % (out[:300], err[:300]))
    groups = {}
    for nd in doc.get('nodes', []):
        st = nd.get('status')
        if not st:
            continue
        for g in st.get('groups', []):
            g['_node'] = nd.get('name')
            groups[g['name']] = g
    return groups


def locks_of(st, group, client=None):
    return sorted((l for l in st.get(group, {}).get('locks', [])
                   if client is None or l.get('client') == client),
                  key=lambda l: json.dumps(l, sort_keys=True))


def clients_of(st, group):
    return sorted(x['name'] for x in st.get(group, {}).get('clients', []))


def wait_group(h, c, group, owner=None, state='online', timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        st = status(h, c)
        g = st.get(group, {})
        if g.get('state') == state and (owner is None or g.get('_node') == owner):
            return st
        if time.monotonic() > deadline:
            raise TestAbort('group %s not %s on %s after %ds: %s'
                            % (group, state, owner, timeout,
                               {k: (v.get('state'), v.get('_node')) for k, v in st.items()}))
        time.sleep(0.1)


def sgnfs_client(h, client, addr, server, cmd, *args, svid=4242, timeout_ms=8000, extra=()):
    """One sgnfs-client command in @client's namespace as host @addr;
    (exit code, parsed JSON result or {})."""
    argv = client.exec_argv([client_path(), '--host', addr, '--server', server, '--json',
                             '--no-callbacks', '--timeout', str(timeout_ms),
                             '--svid', str(svid)] + list(extra) + [cmd] + [str(a) for a in args])
    cp = h.run(argv, check=False, timeout=timeout_ms / 1000 + 20, quiet=True)
    res = {}
    for ln in cp.stdout.decode('utf-8', 'replace').splitlines():
        if ln.startswith('{'):
            try:
                res = json.loads(ln)
            except ValueError:
                pass
    log('sgnfs-client %s %s %s -> rc %d %s' % (addr, cmd, ' '.join(str(a) for a in args),
                                               cp.returncode, json.dumps(res) if res else
                                               cp.stderr.decode(errors='replace').strip()[-200:]))
    return cp.returncode, res


# ---------------------------------------------------------------------------
# Logs and file trees


def log_text(node):
    with open(node.logpath, 'rb') as f:
        return f.read().decode('utf-8', 'replace')


def log_size(node):
    try:
        return os.path.getsize(node.logpath)
    except OSError:
        return 0


def log_since(node, offset):
    with open(node.logpath, 'rb') as f:
        f.seek(offset)
        return f.read().decode('utf-8', 'replace')


def wait_log(node, needle, offset=0, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        if needle in log_since(node, offset):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def sanitizer_report(path):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        return None
    for m in SANITIZER_MARKERS:
        if m in data:
            return m.decode()
    return None


def snapshot(roots):
    """{path: (kind, size, inode)} of everything under @roots (lstat, no
    symlink following)."""
    out = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        out[root] = ('d', 0, os.lstat(root).st_ino)
        for dp, dns, fns in os.walk(root, followlinks=False):
            for n in dns + fns:
                p = os.path.join(dp, n)
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                kind = 'd' if os.path.isdir(p) and not os.path.islink(p) else \
                    'l' if os.path.islink(p) else 'f'
                out[p] = (kind, st.st_size if kind == 'f' else 0, st.st_ino)
    return out
