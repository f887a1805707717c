"""
hostile_util.py - raw ONC RPC (RFC 5531) for tests that must send what no
well-behaved client library would: XDR packing by hand, record marks with
any length and last-fragment bit, any credential, any message type.

Nothing here trusts the server either: replies are parsed with explicit
bounds, every receive has a deadline, and a connection the server closed
(FIN or RST) is reported as such rather than as an exception.

Python 3 standard library only.
"""

import os
import select
import socket
import struct
import threading
import time

# ---- protocol constants (RFC 5531, RFC 1813, RFC 1833, XNFS) -------------

PMAP_PROG, PMAP_VERS = 100000, 2
NFS_PROG, NFS_VERS = 100003, 3
MOUNT_PROG, MOUNT_VERS = 100005, 3
NLM_PROG, NLM_VERS4 = 100021, 4

MSG_CALL, MSG_REPLY = 0, 1
MSG_ACCEPTED, MSG_DENIED = 0, 1
SUCCESS, PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL, GARBAGE_ARGS, SYSTEM_ERR = range(6)
RPC_MISMATCH, AUTH_ERROR = 0, 1
AUTH_OK, AUTH_BADCRED, AUTH_REJECTEDCRED, AUTH_BADVERF = 0, 1, 2, 3
AUTH_NONE, AUTH_SYS, AUTH_SHORT, AUTH_DH, RPCSEC_GSS = 0, 1, 2, 3, 6

IPPROTO_TCP, IPPROTO_UDP = 6, 17

NFS3_OK = 0
NFS3ERR_INVAL = 22
NFS3ERR_NAMETOOLONG = 63
NFS3ERR_STALE = 70
NFS3ERR_BADHANDLE = 10001
NF3REG, NF3DIR = 1, 2

LAST_FRAG = 0x80000000


class Closed(Exception):
    """The peer closed the connection (FIN or RST)."""


# ---- XDR packing ----------------------------------------------------------


def u32(v):
    return struct.pack('>I', v & 0xffffffff)


def u64(v):
    return struct.pack('>Q', v & 0xffffffffffffffff)


def pad(data):
    return data + b'\0' * (-len(data) % 4)


def opaque(data, length=None):
    """Variable-length opaque/string; @length overrides the announced
    length (a lie), the bytes that follow are @data as given."""
    if isinstance(data, str):
        data = data.encode()
    return u32(len(data) if length is None else length) + pad(data)


def auth_sys(stamp=1, machine=b'hostile', uid=0, gid=0, gids=(), ngids=None):
    """An AUTH_SYS credential body (RFC 5531 appendix A)."""
    body = u32(stamp) + opaque(machine) + u32(uid) + u32(gid)
    body += u32(len(gids) if ngids is None else ngids)
    for g in gids:
        body += u32(g)
    return body


def call_header(xid, prog, vers, proc, cred=(AUTH_NONE, b''), verf=(AUTH_NONE, b''),
                rpcvers=2, mtype=MSG_CALL):
    return (u32(xid) + u32(mtype) + u32(rpcvers) + u32(prog) + u32(vers) + u32(proc)
            + u32(cred[0]) + opaque(cred[1]) + u32(verf[0]) + opaque(verf[1]))


def call_msg(xid, prog, vers, proc, args=b'', **kw):
    return call_header(xid, prog, vers, proc, **kw) + args


def mark(length, last=True):
    return u32((LAST_FRAG if last else 0) | (length & 0x7fffffff))


def record(payload):
    """One record in one fragment."""
    return mark(len(payload)) + payload


def fragments(payload, sizes):
    """@payload cut into fragments of @sizes bytes (the rest goes into the
    last fragment; a size of 0 is an empty, legal fragment)."""
    out, pos = b'', 0
    for n in sizes:
        out += mark(n, last=False) + payload[pos:pos + n]
        pos += n
    return out + mark(len(payload) - pos) + payload[pos:]


def nfs_fh(data):
    return opaque(data)


# ---- XDR unpacking --------------------------------------------------------


class Unpacker:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def u32(self):
        if self.pos + 4 > len(self.data):
            raise ValueError('short XDR at %d' % self.pos)
        v = struct.unpack_from('>I', self.data, self.pos)[0]
        self.pos += 4
        return v

    def u64(self):
        hi = self.u32()
        return hi << 32 | self.u32()

    def opaque(self, limit=1 << 20):
        n = self.u32()
        if n > limit or self.pos + n > len(self.data):
            raise ValueError('opaque of %d bytes at %d' % (n, self.pos))
        v = self.data[self.pos:self.pos + n]
        self.pos += n + (-n % 4)
        return v

    def fixed(self, n):
        if self.pos + n > len(self.data):
            raise ValueError('short XDR at %d' % self.pos)
        v = self.data[self.pos:self.pos + n]
        self.pos += n + (-n % 4)
        return v

    def rest(self):
        return self.data[self.pos:]


class Reply:
    """A decoded RPC reply.  Fields not present in this kind of reply are
    None.  @body is what follows an accepted SUCCESS header."""

    def __init__(self, data):
        p = Unpacker(data)
        self.raw = data
        self.xid = p.u32()
        self.mtype = p.u32()
        if self.mtype != MSG_REPLY:
            raise ValueError('message type %d is not a REPLY' % self.mtype)
        self.reply_stat = p.u32()
        self.accept_stat = self.reject_stat = self.auth_stat = None
        self.low = self.high = None
        self.body = b''
        if self.reply_stat == MSG_ACCEPTED:
            p.u32()
            p.opaque(400)
            self.accept_stat = p.u32()
            if self.accept_stat == PROG_MISMATCH:
                self.low, self.high = p.u32(), p.u32()
            self.body = p.rest()
        elif self.reply_stat == MSG_DENIED:
            self.reject_stat = p.u32()
            if self.reject_stat == RPC_MISMATCH:
                self.low, self.high = p.u32(), p.u32()
            elif self.reject_stat == AUTH_ERROR:
                self.auth_stat = p.u32()
            else:
                raise ValueError('reject_stat %d' % self.reject_stat)
        else:
            raise ValueError('reply_stat %d' % self.reply_stat)

    def is_success(self):
        return self.reply_stat == MSG_ACCEPTED and self.accept_stat == SUCCESS

    def describe(self):
        if self.reply_stat == MSG_ACCEPTED:
            names = ['SUCCESS', 'PROG_UNAVAIL', 'PROG_MISMATCH', 'PROC_UNAVAIL',
                     'GARBAGE_ARGS', 'SYSTEM_ERR']
            s = names[self.accept_stat] if self.accept_stat < len(names) else str(self.accept_stat)
            if self.low is not None:
                s += ' %d..%d' % (self.low, self.high)
            return 'MSG_ACCEPTED ' + s
        if self.reject_stat == RPC_MISMATCH:
            return 'MSG_DENIED RPC_MISMATCH %d..%d' % (self.low, self.high)
        return 'MSG_DENIED AUTH_ERROR auth_stat=%d' % self.auth_stat

    def status(self):
        """The first word of the results (nfsstat3, mountstat3 ...)."""
        return struct.unpack_from('>I', self.body, 0)[0] if len(self.body) >= 4 else None


def expect(reply, kind, *vals):
    """True if @reply is the named outcome:
       expect(r, 'success'), expect(r, 'accept', GARBAGE_ARGS),
       expect(r, 'prog_mismatch', lo, hi), expect(r, 'rpc_mismatch', lo, hi),
       expect(r, 'auth', AUTH_BADCRED)."""
    if reply is None:
        return False
    if kind == 'success':
        return reply.is_success()
    if kind == 'accept':
        return reply.reply_stat == MSG_ACCEPTED and reply.accept_stat == vals[0]
    if kind == 'prog_mismatch':
        return (reply.reply_stat == MSG_ACCEPTED and reply.accept_stat == PROG_MISMATCH
                and (reply.low, reply.high) == tuple(vals))
    if kind == 'rpc_mismatch':
        return (reply.reply_stat == MSG_DENIED and reply.reject_stat == RPC_MISMATCH
                and (reply.low, reply.high) == tuple(vals))
    if kind == 'auth':
        return (reply.reply_stat == MSG_DENIED and reply.reject_stat == AUTH_ERROR
                and reply.auth_stat == vals[0])
    raise ValueError(kind)


def show(reply):
    return 'no reply' if reply is None else reply.describe()


# ---- transports -----------------------------------------------------------

_xid_lock = threading.Lock()
_xid = [int.from_bytes(os.urandom(4), 'big') & 0x3fffffff]


def next_xid():
    with _xid_lock:
        _xid[0] = (_xid[0] + 1) & 0xffffffff
        return _xid[0]


class Tcp:
    """One TCP connection speaking record marking."""

    def __init__(self, addr, port, timeout=5.0, connect=True, src=None):
        self.addr = (addr, port)
        self.src = (src, 0) if src else None
        self.timeout = timeout
        self.sock = None
        self.buf = b''
        if connect:
            self.connect()

    def connect(self):
        self.sock = socket.create_connection(self.addr, timeout=self.timeout,
                                             source_address=self.src)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def fileno(self):
        return self.sock.fileno()

    def close(self, reset=False):
        if self.sock is None:
            return
        if reset:
            # SO_LINGER 0: close() sends an RST instead of a FIN.
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack('ii', 1, 0))
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None

    def send(self, data):
        """Send everything; False if the peer closed meanwhile."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False
        except OSError:
            return False

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout('no data')
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            raise Closed('reset')
        except socket.timeout:
            raise socket.timeout('no data')
        if not chunk:
            raise Closed('eof')
        self.buf += chunk

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        v, self.buf = self.buf[:n], self.buf[n:]
        return v

    def recv_record(self, timeout=None, limit=1 << 24):
        """The next whole record; raises Closed or socket.timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out = b''
        while True:
            m = struct.unpack('>I', self._take(4, deadline))[0]
            n = m & 0x7fffffff
            if len(out) + n > limit:
                raise ValueError('reply record of %d bytes' % (len(out) + n))
            out += self._take(n, deadline)
            if m & LAST_FRAG:
                return out

    def call(self, prog, vers, proc, args=b'', timeout=None, **kw):
        """One call; returns the Reply to it (other xids are skipped)."""
        xid = next_xid()
        if not self.send(record(call_msg(xid, prog, vers, proc, args, **kw))):
            raise Closed('send failed')
        return self.wait_reply(xid, timeout)

    def wait_reply(self, xid, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            r = Reply(self.recv_record(max(0.001, deadline - time.monotonic())))
            if r.xid == xid:
                return r

    def wait_closed(self, timeout=3.0):
        """Wait for the peer to close.  Returns (closed, data_received):
        closed is True on FIN/RST within @timeout."""
        deadline = time.monotonic() + timeout
        got = b''
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, got
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True, got
            except socket.timeout:
                return False, got
            except OSError:
                return True, got
            if not chunk:
                return True, got
            got += chunk

    def peer_closed_now(self):
        """Non-blocking: True if a FIN/RST is already pending."""
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            self.sock.setblocking(False)
            chunk = self.sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            try:
                self.sock.setblocking(True)
            except OSError:
                pass
        return chunk == b''


class Udp:
    def __init__(self, addr, port, timeout=2.0):
        self.addr = (addr, port)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)

    def close(self):
        self.sock.close()

    def send(self, payload):
        self.sock.send(payload)

    def recv_replies(self, timeout):
        """Every datagram that arrives within @timeout, as Reply objects
        (or the raw bytes when they do not parse as one)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return out
            except ConnectionRefusedError:
                continue
            try:
                out.append(Reply(d))
            except ValueError:
                out.append(d)

    def call(self, prog, vers, proc, args=b'', timeout=None, **kw):
        """One call, one try; the Reply or None."""
        xid = next_xid()
        self.send(call_msg(xid, prog, vers, proc, args, **kw))
        return self.wait_reply(xid, timeout)

    def wait_reply(self, xid, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionRefusedError:
                continue
            try:
                r = Reply(d)
            except ValueError:
                continue
            if r.xid == xid:
                return r

    def drain(self):
        self.recv_replies(0.05)


# ---- protocol helpers -------------------------------------------------------


ROOT_CRED = (AUTH_SYS, auth_sys(machine=b'hostile-test', uid=0, gid=0))


def mnt(conn, path):
    """MOUNT v3 MNT; returns (status, handle bytes or None)."""
    r = conn.call(MOUNT_PROG, MOUNT_VERS, 1, opaque(path), cred=ROOT_CRED)
    if not r.is_success():
        raise ValueError('MNT %s: %s' % (path, r.describe()))
    p = Unpacker(r.body)
    st = p.u32()
    return st, (p.opaque(64) if st == 0 else None)


def getattr_args(fh):
    return nfs_fh(fh)


def lookup_args(dirfh, name):
    return nfs_fh(dirfh) + opaque(name)


def write_args(fh, offset, data, count=None, stable=2, length=None):
    return (nfs_fh(fh) + u64(offset) + u32(len(data) if count is None else count)
            + u32(stable) + opaque(data, length))


def read_args(fh, offset, count):
    return nfs_fh(fh) + u64(offset) + u32(count)


def lookup_fh(reply):
    """The object handle of a LOOKUP3resok, or None."""
    p = Unpacker(reply.body)
    if p.u32() != NFS3_OK:
        return None
    return p.opaque(64)


def getattr_type(reply):
    """(nfsstat3, ftype3 or None) of a GETATTR reply."""
    p = Unpacker(reply.body)
    st = p.u32()
    return st, (p.u32() if st == NFS3_OK else None)


def pmap_getport_args(prog, vers, prot):
    return u32(prog) + u32(vers) + u32(prot) + u32(0)


def nlm4_lock_args(cookie=b'c', fh=b'', caller=b'hostile', oh=b'owner', svid=1,
                   offset=0, length=0, block=False, exclusive=True, reclaim=False, state=1):
    return (opaque(cookie) + u32(block) + u32(exclusive) + opaque(caller) + opaque(fh)
            + opaque(oh) + u32(svid) + u64(offset) + u64(length) + u32(reclaim) + u32(state))


# ---- the daemon process -----------------------------------------------------


def vm_rss_kib(pid):
    """VmRSS of @pid in KiB, or None if it is gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def has_asan(pid):
    """True if the process carries AddressSanitizer (its shadow memory makes
    RSS figures much larger and freed memory sits in a quarantine)."""
    try:
        with open('/proc/%d/maps' % pid) as f:
            if 'libasan' in f.read():
                return True
        with open('/proc/%d/exe' % pid, 'rb') as f:
            return b'__asan_init' in f.read()
    except OSError:
        return False


SANITIZER_MARKERS = (b'ERROR: AddressSanitizer', b'ERROR: LeakSanitizer',
                     b'runtime error:', b'ERROR: UndefinedBehaviorSanitizer')


def sanitizer_reports(logpath):
    """The sanitizer markers found in @logpath."""
    try:
        with open(logpath, 'rb') as f:
            data = f.read()
    except OSError:
        return []
    return [m.decode() for m in SANITIZER_MARKERS if m in data]
