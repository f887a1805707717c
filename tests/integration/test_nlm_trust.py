#!/usr/bin/env python3
"""
test_nlm_trust - NLM trusts no more than it must (issue 13 item 4).

  1. GRANTED_RES: a third host answering a GRANTED_MSG (cookies 1..64, then
     the real cookie it sniffed) with DENIED does not take the lock back
     from the host it was granted to; the real host's answer is heard.
  1b. A refused grant (GRANTED_RES with DENIED) of a range the owner
     partly held frees nothing the owner held before.
  2. The export's `clients` hold for NLM as for MOUNT/NFS: a host outside
     them gets NLM4_DENIED for LOCK (nothing granted) and for TEST (no
     holder revealed), with a log line.
  3. LOCK_MSG cycles of a client that never answers GRANTED_MSG cost
     bounded memory: the records waiting for GRANTED_RES stay at or under
     their cap per address (status nlm.granted_res_waiting), and another
     client's record waiting meanwhile is not pushed out: its refusal
     afterwards still takes the grant back.
  4. FREE_ALL naming an unknown host from an unknown address costs a
     constant number of address-index probes (status nlm.address_probes),
     not one per host; FREE_ALL from a known host's address under another
     name still frees that host.
  5. Per-address caps (issue 13 item 3): made-up caller_names from one
     address are refused with NLM4_DENIED_NOLOCKS past max_names_per_host,
     and the address's locks past max_locks_per_host; another address is
     not affected.

Assertions are on outcomes and counters, never on time.  Client addresses
are 127.S.64.0/24 (S = the harness slot); the refused host is 127.S.99.1.
"""
import os
import socket
import struct
import threading

import harness
import nlm_util as nu
from harness import Export, Group, log
from nlm_util import RawNLM, XdrW, XdrR

P_LOCK_MSG, P_GRANTED_MSG, P_GRANTED_RES = 7, 10, 15
PMAP_GETPORT = 3
NAMES_CAP = 20
LOCKS_CAP = 30


class FakeLockd:
    """A client host's portmapper (UDP 111 on @addr) and NLM callback port:
    records the GRANTED_MSG calls the server sends there."""

    def __init__(self, addr):
        self.addr = addr
        self.nlm = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.nlm.bind((addr, 0))
        self.nlm_port = self.nlm.getsockname()[1]
        self.pm = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.pm.bind((addr, 111))
        self.mu = threading.Condition()
        self.granted = []          # cookies of GRANTED_MSG calls, in order
        self.stop = False
        self.threads = [threading.Thread(target=self._pm, daemon=True),
                        threading.Thread(target=self._nlm, daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _call(data):
        r = XdrR(data)
        xid, mtype, _rv, prog, vers, proc = (r.u32() for _ in range(6))
        r.u32(); r.opaque(); r.u32(); r.opaque()
        return xid, mtype, prog, vers, proc, r

    def _pm(self):
        self.pm.settimeout(0.2)
        while not self.stop:
            try:
                data, peer = self.pm.recvfrom(65536)
                xid, mtype, prog, _v, proc, _r = self._call(data)
            except (socket.timeout, ValueError, struct.error):
                continue
            except OSError:
                return
            if mtype != 0 or proc != PMAP_GETPORT:
                continue
            rep = XdrW().u32(xid).u32(1).u32(0).u32(0).opaque(b'').u32(0).u32(self.nlm_port)
            self.pm.sendto(bytes(rep.b), peer)

    def _nlm(self):
        self.nlm.settimeout(0.2)
        while not self.stop:
            try:
                data, _peer = self.nlm.recvfrom(65536)
                _xid, mtype, _p, _v, proc, r = self._call(data)
            except (socket.timeout, ValueError, struct.error):
                continue
            except OSError:
                return
            if mtype == 0 and proc == P_GRANTED_MSG:
                with self.mu:
                    self.granted.append(r.opaque())
                    self.mu.notify_all()

    def wait_granted(self, n, timeout=20):
        with self.mu:
            self.mu.wait_for(lambda: len(self.granted) >= n, timeout)
            return list(self.granted)

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(2)
        self.nlm.close()
        self.pm.close()


def lock_msg_args(caller, fh, oh, svid, off, ln, cookie=b'lm'):
    w = XdrW().opaque(cookie).bool(True).bool(True)
    w.string(caller).opaque(fh).opaque(oh).i32(svid).u64(off).u64(ln)
    w.bool(False).i32(1)
    return bytes(w.b)


def granted_res_args(cookie, stat):
    return bytes(XdrW().opaque(cookie).u32(stat).b)


def nlm_status(h, c):
    return nu.status(h, c).get('g', {}).get('nlm', {})


def test(h):
    c = h.cluster([Group('g', [Export('g/data', fsid=741)], grace=1)],
                  cluster_extra={'max_names_per_host': NAMES_CAP,
                                 'max_locks_per_host': LOCKS_CAP})
    e = c.export('g/data')
    # the client hosts' networks only: 127.S.99.1 is refused
    e.clients = ' '.join('127.%d.%d.0/24' % (c.slot, k) for k in (64, 65, 66))
    c.write_config()
    vip = c.group('g').vip
    port = c.ports['nlm_port']
    paths = {}
    for n in ('granted', 'clients', 'cycles', 'caps'):
        paths[n] = os.path.join(e.path, n)
        with open(paths[n], 'wb') as f:
            f.write(b'x' * 64)
        os.chmod(paths[n], 0o666)
    nu.watch(c)
    c.start('a')
    nu.wait_online(h, c, ['g'])
    H = lambda n: nu.host(c, 64, n)
    refused = nu.host(c, 99, 1)
    fh = {n: nu.resolve_fh(h, c, vip, p, H(200)) for n, p in paths.items()}
    OH = b'owner'

    # -- 1. GRANTED_RES only from the address the GRANTED_MSG went to -------
    holder, waiter, third = H(1), H(2), H(3)
    fake = FakeLockd(waiter)
    fake2 = FakeLockd(H(5))
    try:
        with RawNLM(holder, vip, port) as hn, RawNLM(waiter, vip, port, proto='udp') as wn, \
                RawNLM(third, vip, port, proto='udp') as tn, \
                RawNLM(H(5), vip, port, proto='udp') as w2n:
            f = fh['granted']
            h.require(hn.lock('hold', f, OH, 1, 0, 10) == nu.GRANTED, 'the holder locks')
            wn.call(P_LOCK_MSG, lock_msg_args('wait', f, OH, 2, 0, 10))
            h.require(hn.unlock('hold', f, OH, 1, 0, 10) == nu.GRANTED, 'the holder unlocks')
            cookies = fake.wait_granted(1)
            h.require(len(cookies) == 1, 'the waiter got GRANTED_MSG')
            h.check(cookies[0] not in [struct.pack('<Q', i) for i in range(1, 65)],
                    'the GRANTED_MSG cookie is not a small counter')
            for i in range(1, 65):
                tn.send(P_GRANTED_RES, granted_res_args(struct.pack('<Q', i), nu.DENIED))
            tn.call(P_GRANTED_RES, granted_res_args(cookies[0], nu.DENIED))
            locks = nu.locks_of(nu.status(h, c), 'g', client='wait')
            h.check(len(locks) == 1, 'a third host answering DENIED (cookies 1..64 and the '
                    'real one) did not take the lock back (%d held)' % len(locks))
            st, holder_info = tn.test('thief', f, OH, 9, 0, 10)
            h.check(st == nu.DENIED, 'so the range is still taken for others (%s)'
                    % nu.STAT_NAMES[st])
            h.check(nlm_status(h, c).get('granted_res_waiting') == 1,
                    'the record waits for the real answer')
            wn.call(P_GRANTED_RES, granted_res_args(cookies[0], nu.GRANTED))
            h.check(nlm_status(h, c).get('granted_res_waiting') == 0,
                    'the waiter\'s own GRANTED_RES is heard and frees the record')
            h.check(len(nu.locks_of(nu.status(h, c), 'g', client='wait')) == 1,
                    'and the waiter keeps its lock')
            wn.unlock('wait', f, OH, 2, 0, 10)

            # -- 1b. a refused grant frees nothing the owner held before ------
            # The waiter holds [20,30), then asks for [0,30) behind the
            # holder.  Granted by callback, it answers DENIED: the server
            # must not unlock [0,30), which would free [20,30) the client
            # still holds (another host could then take it).
            h.require(wn.lock('wait', f, OH, 2, 20, 10) == nu.GRANTED,
                      'the waiter holds [20,30)')
            h.require(hn.lock('hold', f, OH, 1, 0, 10) == nu.GRANTED, 'the holder locks again')
            wn.call(P_LOCK_MSG, lock_msg_args('wait', f, OH, 2, 0, 30))
            h.require(hn.unlock('hold', f, OH, 1, 0, 10) == nu.GRANTED, 'the holder unlocks')
            cookies = fake.wait_granted(2)
            h.require(len(cookies) == 2, 'the waiter got a second GRANTED_MSG')
            wn.call(P_GRANTED_RES, granted_res_args(cookies[1], nu.DENIED))
            h.check(nu.wait_log(c.nodes['a'], 'not taken back (client answered GRANTED_MSG '
                                'with a refusal)'),
                    'the refusal is logged, the grant kept')
            locks = nu.locks_of(nu.status(h, c), 'g', client='wait')
            h.check(any(l['start'] <= 20 and l['end'] >= 29 for l in locks),
                    'after refusing the grant of [0,30) the waiter still holds [20,30) (%s)'
                    % [(l['start'], l['end']) for l in locks])
            st, _ = tn.test('thief', f, OH, 9, 20, 10)
            h.check(st == nu.DENIED, 'so [20,30) is still taken for others (%s)'
                    % nu.STAT_NAMES[st])
            wn.unlock('wait', f, OH, 2, 0, 30)

            # -- 3. LOCK_MSG cycles never answered: bounded, per address too ----
            f = fh['cycles']
            # First another client's grant waits for its answer: the
            # cycles must not push its record out.
            h.require(hn.lock('hold', f, OH, 1, 100, 10) == nu.GRANTED,
                      'the holder locks [100,110)')
            w2n.call(P_LOCK_MSG, lock_msg_args('wait2', f, OH, 3, 100, 10))
            h.require(hn.unlock('hold', f, OH, 1, 100, 10) == nu.GRANTED,
                      'the holder unlocks [100,110)')
            c2 = fake2.wait_granted(1)
            h.require(len(c2) == 1, 'the second waiter got GRANTED_MSG')
            ncycles = 300
            for i in range(ncycles):
                if hn.lock('hold', f, OH, 1, 0, 10) != nu.GRANTED:
                    h.check(False, 'cycle %d: holder lock granted' % i)
                    break
                wn.call(P_LOCK_MSG, lock_msg_args('wait', f, OH, 2, 0, 10))
                hn.unlock('hold', f, OH, 1, 0, 10)
                # the grant happened inside the holder's UNLOCK: the waiter
                # holds the range now; give it up (never answering GRANTED_MSG)
                wn.unlock('wait', f, OH, 2, 0, 10)
            ns = nlm_status(h, c)
            waiting = ns.get('granted_res_waiting', ncycles)
            log('after %d unanswered LOCK_MSG cycles: %s' % (ncycles, ns))
            h.check(waiting <= 32 + 1, '%d unanswered LOCK_MSG cycles of one address keep '
                    '%s records (32 per address, and the other client\'s)' % (ncycles, waiting))
            w2n.call(P_GRANTED_RES, granted_res_args(c2[0], nu.DENIED))
            h.check(not nu.locks_of(nu.status(h, c), 'g', client='wait2'),
                    'the other client\'s refusal, after %d cycles of another address, is '
                    'still heard: the grant it refused is taken back' % ncycles)
    finally:
        fake.close()
        fake2.close()

    # -- 2. the export's clients hold for NLM ---------------------------------
    with RawNLM(H(4), vip, port) as ok:
        h.require(ok.lock('okhost', fh['clients'], OH, 4, 0, 10) == nu.GRANTED,
                  'a host inside the clients locks')
    with RawNLM(refused, vip, port) as bad:
        st, holder_info = bad.test('evil', fh['clients'], OH, 5, 0, 10)
        # DENIED carries a holder on the wire: it must be empty, not okhost's
        h.check(st == nu.DENIED and (holder_info is None or
                                     (holder_info['svid'] != 4 and holder_info['oh'] != OH)),
                'TEST from a host outside clients: DENIED, no holder revealed (%s, %s)'
                % (nu.STAT_NAMES[st], holder_info))
        st = bad.lock('evil', fh['clients'], OH, 5, 100, 10)
        h.check(st == nu.DENIED, 'LOCK from a host outside clients is DENIED (%s)'
                % nu.STAT_NAMES[st])
        made_up = bytearray(fh['clients'])
        made_up[-1] ^= 0x5a
        st = bad.lock('evil', bytes(made_up), OH, 5, 100, 10)
        h.check(st in (nu.DENIED, nu.STALE_FH), 'a made-up handle from there is refused (%s)'
                % nu.STAT_NAMES[st])
    h.check(not nu.locks_of(nu.status(h, c), 'g', client='evil'), 'nothing was granted to it')
    h.check(nu.wait_log(c.nodes['a'], 'refused: address not in its clients'),
            'the refusal is logged')

    # -- 4. FREE_ALL for an unknown host: constant cost ----------------------
    nhosts = 120
    for n in range(nhosts):
        with RawNLM(nu.host(c, 65, n + 1), vip, port) as k:
            st = k.lock('fa%d' % n, fh['caps'], OH, 1, 1000 + n, 1)
            if st != nu.GRANTED:
                h.check(False, 'host %d lock granted (%s)' % (n, nu.STAT_NAMES[st]))
                break
    p0 = nlm_status(h, c).get('address_probes', 0)
    with RawNLM(nu.host(c, 66, 1), vip, port, proto='udp') as k:
        for i in range(10):
            k.free_all('nobody-%d' % i)
    p1 = nlm_status(h, c).get('address_probes', 0)
    log('address probes for 10 FREE_ALLs of unknown hosts among %d: %d' % (nhosts, p1 - p0))
    h.check(p1 - p0 <= 10 * 8, '10 FREE_ALLs naming unknown hosts from an unknown address '
            'probe %d index entries (bounded by a bucket, not %d hosts each)' % (p1 - p0, nhosts))
    with RawNLM(nu.host(c, 65, 7), vip, port, proto='udp') as k:
        k.free_all('another-name-of-fa6')
    h.check(not nu.locks_of(nu.status(h, c), 'g', client='fa6'),
            'FREE_ALL from a known host\'s address under another name still frees it')

    # -- 5. caps per source address ------------------------------------------
    capper = H(10)
    granted = refused_n = 0
    with RawNLM(capper, vip, port) as k:
        for n in range(100):
            st = k.lock('made-up-%d' % n, fh['caps'], OH, 1, 5000 + n, 1)
            if st == nu.GRANTED:
                granted += 1
            elif st == nu.DENIED_NOLOCKS:
                refused_n += 1
    h.check(granted == NAMES_CAP and refused_n == 60 + 40 - NAMES_CAP,
            'made-up caller_names from one address: %d granted (cap %d), %d refused '
            'DENIED_NOLOCKS' % (granted, NAMES_CAP, refused_n))
    h.check(nu.wait_log(c.nodes['a'], 'max_names_per_host reached'), 'the cap is logged')
    granted = 0
    with RawNLM(H(11), vip, port) as k:
        for n in range(LOCKS_CAP + 10):
            if k.lock('many', fh['caps'], OH, 1, 9000 + 2 * n, 1) == nu.GRANTED:
                granted += 1
    h.check(granted == LOCKS_CAP, 'locks from one address stop at max_locks_per_host '
            '(%d of %d granted)' % (granted, LOCKS_CAP + 10))
    with RawNLM(H(12), vip, port) as k:
        h.check(k.lock('other', fh['caps'], OH, 1, 20000, 1) == nu.GRANTED,
                'another address is not affected')
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=300)
