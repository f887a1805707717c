#!/usr/bin/env python3
"""
test_lost_reply - the lost LOCK reply after a failover (issue 13 item 6),
reproduced by a scripted interleaving instead of luck in the kill loop.

What fault_kill9 saw: a LOCK in flight at the kill never got an answer
(the hold thread's "no answer within 40 s").  Matching the request end to
end (client events, the portmapper traffic, the server's lock table) shows
where it stops: not on the wire and not in the server, but in the client.
A request whose server's NLM port is being looked up again waits for that
lookup (state WAIT_PORT, no timer of its own: the lookup has one).  An
SM_NOTIFY naming that server drops the server's NLM handle and with it the
lookup in progress; a request the recovery re-sends (a reclaim, a blocked
lock) starts a new lookup, but a plain LOCK of a host that holds nothing
on that server was left waiting for a lookup nobody would ever finish.

After a failover every request in flight goes through a new lookup (the
connection to the dead node is refused, so the handle is dropped), and the
new owner's SM_NOTIFY arrives while that lookup is under way: exactly this
interleaving.  When the first transmission had already reached the new
owner, the server even held the lock the client was never told about.

The interleaving here, each step waiting for the previous one's outcome:
  1. one sgnfsd serving group g; the client host's portmapper traffic goes
     through a proxy in this test that forwards everything except NLM
     GETPORT, which it holds back;
  2. the host sends a LOCK; the proxy sees its NLM GETPORT (held);
  3. the test sends SM_NOTIFY naming the server to the host; the host
     reports event=notify (it has dropped the handle and the lookup);
  4. the proxy lets every held GETPORT through from now on.
Then the LOCK must be answered, granted, and held on the server; the
portmapper must have seen a second NLM GETPORT (the fix looks the port up
again for the requests that were waiting).
"""
import os
import socket
import struct
import threading

import harness
import hostile_util as hu
import nlm_util as nu
from harness import Export, Group, log

NSM_PROG, NSM_VERS, SM_NOTIFY = 100024, 1, 6


def rpc_call_fields(data):
    """(xid, prog, proc, args offset) of an RPC call datagram, or None."""
    try:
        xid, mtype, _rv, prog, _vers, proc = struct.unpack_from('>6I', data, 0)
        off = 24
        for _ in range(2):  # credential, verifier
            _fl, ln = struct.unpack_from('>2I', data, off)
            off += 8 + ((ln + 3) & ~3)
    except struct.error:
        return None
    if mtype != 0:
        return None
    return xid, prog, proc, off


class PmapProxy:
    """UDP portmapper proxy on (addr, port) in front of the real one at
    (addr, real_port).  NLM GETPORTs are held while self.hold is set."""

    def __init__(self, addr, port, real_port):
        self.real = (addr, real_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, port))
        self.sock.settimeout(0.2)
        self.mu = threading.Condition()
        self.hold = True
        self.held = []               # (data, client address)
        self.nlm_getports = 0
        self.stopping = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _forward(self, data, peer):
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(3)
        try:
            up.sendto(data, self.real)
            rep, _ = up.recvfrom(65536)
            self.sock.sendto(rep, peer)
        except OSError:
            pass
        finally:
            up.close()

    def _run(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            f = rpc_call_fields(data)
            is_nlm = False
            if f and f[1] == hu.PMAP_PROG and f[2] == 3 and len(data) >= f[3] + 4:
                is_nlm = struct.unpack_from('>I', data, f[3])[0] == hu.NLM_PROG
            with self.mu:
                if is_nlm:
                    self.nlm_getports += 1
                    log('proxy: NLM GETPORT #%d from %s:%d%s'
                        % (self.nlm_getports, peer[0], peer[1], ' (held)' if self.hold else ''))
                    if self.hold:
                        self.held.append((data, peer))
                        self.mu.notify_all()
                        continue
                self.mu.notify_all()
            self._forward(data, peer)

    def wait_nlm(self, n, timeout):
        with self.mu:
            return self.mu.wait_for(lambda: self.nlm_getports >= n, timeout)

    def release(self):
        with self.mu:
            self.hold = False
            held, self.held = self.held, []
        for data, peer in held:
            self._forward(data, peer)

    def close(self):
        self.stopping = True
        self.t.join(2)
        self.sock.close()


def sm_notify(to_addr, port, mon_name, state):
    args = hu.opaque(mon_name.encode()) + hu.u32(state)
    msg = hu.call_msg(hu.next_xid(), NSM_PROG, NSM_VERS, SM_NOTIFY, args)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(msg, (to_addr, port))
    finally:
        s.close()


def test(h):
    c = h.cluster([Group('g', [Export('g/data', fsid=731)], grace=1)])
    e = c.export('g/data')
    vip = c.group('g').vip
    path = os.path.join(e.path, 'f')
    with open(path, 'wb') as f:
        f.write(b'x' * 64)
    os.chmod(path, 0o666)
    nu.watch(c)
    c.start('a')
    nu.wait_online(h, c, ['g'])

    proxy_port = 20111
    proxy = PmapProxy(vip, proxy_port, c.ports['pmap_port'])
    try:
        addr = nu.host(c, 63, 1)
        nsm_port = 24046
        hold = nu.Hold(h, addr, vip, name='lr1', svid=7,
                       extra=['--pmap-port', str(proxy_port), '--timeout', '3000',
                              '--callbacks', '--cb-pmap-port', '20112',
                              '--cb-nlm-port', '24045', '--cb-nsm-port', str(nsm_port)])
        h.require(hold.wait_event('ready', 20) is not None, 'the client host is up')

        ident = hold.send('lock %s:%s 0 10 x' % (vip, path))
        h.require(proxy.wait_nlm(1, 30), 'the LOCK waits for the NLM port lookup (held)')
        h.check(hold.count('event=result id=%d ' % ident) == 0,
                'no answer yet: the request waits for its port')

        sm_notify(addr, nsm_port, vip, 3)
        h.require(hold.wait_event('notify', 20) is not None,
                  'the host took the SM_NOTIFY naming the server while the lookup ran')
        proxy.release()

        res = hold.result(ident, 30)
        h.check(res is not None, 'the LOCK in flight across the SM_NOTIFY is answered')
        h.check(res is not None and res.get('status') == 'granted',
                'and it is granted (%s)' % (res.get('status') if res else 'no answer'))
        h.check(proxy.nlm_getports >= 2,
                'the port was looked up again for the waiting request (%d NLM GETPORTs)'
                % proxy.nlm_getports)
        st = nu.status(h, c)
        locks = nu.locks_of(st, 'g', client='lr1')
        h.check(len(locks) == 1, 'the server holds the lock the client was told about (%d)'
                % len(locks))
        hold.stop()
    finally:
        proxy.close()
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=150)
