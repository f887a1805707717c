#!/usr/bin/env python3
"""
test_nlm_locking - NLM on loopback: several simulated client hosts
(sgnfs-client, plus a raw NLM client from nlm_util for what the tool will
not send) against one sgnfsd serving two service groups.

Every section uses its own file, so a failure in one does not cascade.
Client hosts are 127.S.61.N inside the cluster's private 127.S.0.0/16.
"""
import os
import time

import harness
import nlm_util as nu
from harness import Export, Group
from nlm_util import Client, Hold, RawNLM, U64

G4 = 1 << 32


def test(h):
    c = h.cluster([
        Group('g1', [Export('g1/data', fsid=611)], grace=1),
        Group('g2', [Export('g2/data', fsid=612)], grace=1),
    ])
    e1, e2 = c.export('g1/data'), c.export('g2/data')
    vip1, vip2 = c.group('g1').vip, c.group('g2').vip
    nlm_port = c.ports['nlm_port']

    def mk(e, name):
        p = os.path.join(e.path, name)
        with open(p, 'wb') as f:
            f.write(b'x' * 64)
        return p

    files = {n: mk(e1, n) for n in 'A B C C2 D E F G H I I2 I3 J K K2 L M M2 M3 N O O2 O3 P Q'.split()}
    g2file = mk(e2, 'other')

    nu.watch(c)
    c.start('a')
    nu.wait_online(h, c, ['g1', 'g2'])
    H = lambda n: nu.host(c, 61, n)

    # Owners: every Client carries a fixed --svid, so unlocks match.
    def cl(n, svid=None, **kw):
        return Client(h, H(n), vip1, svid=svid if svid is not None else 1000 + n, **kw)

    h1, h2, h3, h4 = cl(1), cl(2), cl(3), cl(4)

    # -- conflicting exclusive locks ---------------------------------------------
    f = files['A']
    h1.expect('exclusive lock granted', 'lock', f, 0, 100, rc=0, status='granted')
    h2.expect('a second host\'s overlapping exclusive lock is denied', 'lock', f, 50, 10,
              rc=1, status='denied')
    cl(1, svid=77).expect('another svid on the same host conflicts too', 'lock', f, 99, 1,
                          rc=1, status='denied')
    h1.expect('the holder relocking its own range is granted', 'lock', f, 0, 100, rc=0)
    h2.expect('outside the range is granted', 'lock', f, 100, 10, rc=0)

    # -- shared locks --------------------------------------------------------------
    f = files['B']
    sh = ['--shared']
    h1.expect('shared lock granted', 'lock', f, 0, 100, opts=sh, rc=0)
    h2.expect('shared + overlapping shared granted', 'lock', f, 50, 100, opts=sh, rc=0)
    h3.expect('exclusive over a shared lock denied', 'lock', f, 120, 5, rc=1, status='denied')
    h3.expect('exclusive past both shared locks granted', 'lock', f, 150, 10, rc=0)
    h3.expect('shared over shared granted', 'lock', f, 0, 10, opts=sh, rc=0)
    h4.expect('shared over an exclusive lock denied', 'lock', f, 155, 1, opts=sh, rc=1)
    h4.expect('TEST exclusive over shared finds a holder', 'test', f, 60, 1, rc=1, status='denied')
    h4.expect('TEST shared over shared finds no conflict', 'test', f, 60, 1, opts=sh, rc=0,
              status='granted')

    # -- TEST returns the holder, owner handles of 1024 and of 0 bytes ------------
    f = files['C']
    big_oh = bytes((i * 7 + 3) & 0xff for i in range(1024))
    h1b = Client(h, H(1), vip1, svid=4242, extra=['--oh', big_oh.hex()])
    h1b.expect('lock with a 1024-byte owner handle granted', 'lock', f, 10, 20, rc=0)
    res = h2.expect('TEST over it reports a conflict', 'test', f, 0, 100, rc=1, status='denied')
    ho = res.holder or {}
    h.check(ho.get('svid') == 4242 and ho.get('type') == 'excl' and ho.get('start') == 10
            and ho.get('len') == 20, 'TEST holder is svid 4242, excl, 10+20 (got %s)'
            % {k: v for k, v in ho.items() if k != 'oh'})
    h.check(ho.get('oh') == big_oh.hex(), 'TEST holder carries the whole 1024-byte owner handle '
            '(got %d bytes)' % (len(ho.get('oh', '')) // 2))
    h1b.expect('TEST by the holder itself finds no conflict', 'test', f, 0, 100, rc=0)
    h2.expect('TEST of a free range finds no conflict', 'test', f, 30, 10, rc=0, status='granted')
    h2.expect('TEST of the touching byte before finds no conflict', 'test', f, 9, 1, rc=0)

    fh_c2 = nu.resolve_fh(h, c, vip1, files['C2'], H(9))
    with RawNLM(H(5), vip1, nlm_port) as raw:
        st = raw.lock(H(5), fh_c2, b'', 55, 0, 10)
        h.check(st == nu.GRANTED, 'raw LOCK with a 0-byte owner handle granted (got %s)' % st)
        st, holder = raw.test(H(6), fh_c2, b'', 66, 5, 1)
        h.check(st == nu.DENIED and holder is not None and holder['oh'] == b''
                and holder['svid'] == 55 and holder['start'] == 0 and holder['len'] == 10,
                'raw TEST reports the holder with its 0-byte owner handle (got %s %s)' % (st, holder))
        st, holder = raw.test(H(5), fh_c2, b'', 55, 5, 1)
        h.check(st == nu.GRANTED, 'the 0-byte owner does not conflict with itself (got %s)' % st)
        st, _ = raw.test(H(5), fh_c2, b'\0', 55, 5, 1)
        h.check(st == nu.DENIED, 'owner handle "" and "\\0" are different owners (got %s)' % st)
    res = h2.expect('the tool\'s TEST sees the 0-byte owner too', 'test', files['C2'], 0, 1, rc=1)
    h.check((res.holder or {}).get('oh') == '' and (res.holder or {}).get('svid') == 55,
            'holder oh is empty through the tool (got %s)' % res.holder)
    st = nu.status(h, c)
    lk = [l for l in nu.locks_of(st, 'g1', client=H(5)) if l['svid'] == 55]
    h.check(len(lk) == 1 and lk[0]['owner'] == '', 'status shows the 0-byte owner lock (got %s)' % lk)

    # -- touching versus overlapping by one byte ----------------------------------
    f = files['D']
    h1.expect('lock 0..99', 'lock', f, 0, 100, rc=0)
    h2.expect('lock 100..149 touching it is granted', 'lock', f, 100, 50, rc=0)
    h3.expect('lock of byte 99 (overlap by one) denied', 'lock', f, 99, 1, rc=1)
    h3.expect('lock 90..100 (overlaps both by one) denied', 'lock', f, 90, 11, rc=1)
    h3.expect('lock of byte 149 denied', 'lock', f, 149, 1, rc=1)
    h3.expect('lock of byte 150 (touching) granted', 'lock', f, 150, 1, rc=0)
    res = h4.expect('TEST 95..104 reports the first holder', 'test', f, 95, 10, rc=1)
    h.check((res.holder or {}).get('svid') in (1001, 1002), 'TEST names one of the two holders (got %s)'
            % res.holder)

    # -- lock to EOF (length 0) -------------------------------------------------
    f = files['E']
    h1.expect('lock from 1000 to EOF granted', 'lock', f, 1000, 0, rc=0)
    h2.expect('byte 999 below it granted', 'lock', f, 999, 1, rc=0)
    h2.expect('byte 2^40 inside it denied', 'lock', f, 1 << 40, 1, rc=1)
    h2.expect('the last byte 2^64-1 inside it denied', 'lock', f, U64, 1, rc=1)
    res = h3.expect('TEST far beyond finds the EOF lock', 'test', f, 1 << 50, 7, rc=1)
    h.check((res.holder or {}).get('start') == 1000 and (res.holder or {}).get('len') == 0,
            'the EOF holder is reported as 1000 + len 0 (got %s)' % res.holder)
    st = nu.status(h, c)
    lk = [l for l in nu.locks_of(st, 'g1', client=H(1)) if l['start'] == 1000]
    h.check(len(lk) == 1 and lk[0]['end'] == 'eof', 'status shows the lock ending at eof (got %s)' % lk)

    # -- the largest offsets and FBIG -------------------------------------------
    f = files['F']
    h1.expect('lock of the last 10 bytes (2^64-10 + 10) granted', 'lock', f, U64 - 9, 10, rc=0)
    h2.expect('lock of byte 2^64-1 denied', 'lock', f, U64, 1, rc=1)
    h2.expect('lock of byte 2^64-11 granted', 'lock', f, U64 - 10, 1, rc=0)
    h2.expect('LOCK one byte beyond 2^64 is FBIG', 'lock', f, U64 - 9, 11, rc=3, status='fbig')
    h2.expect('LOCK 2^64-1 + 2 is FBIG', 'lock', f, U64, 2, rc=3, status='fbig')
    h2.expect('TEST one byte beyond 2^64 is FBIG', 'test', f, U64 - 9, 11, rc=3, status='fbig')
    h1.expect('UNLOCK one byte beyond 2^64 is FBIG', 'unlock', f, U64 - 9, 11, rc=3, status='fbig')
    h2.expect('the FBIG UNLOCK released nothing', 'lock', f, U64, 1, rc=1)
    h1.expect('UNLOCK of the exact range granted', 'unlock', f, U64 - 9, 10, rc=0)
    h2.expect('byte 2^64-1 is free now', 'lock', f, U64, 1, rc=0)
    st = nu.status(h, c)
    lk = nu.locks_of(st, 'g1', client=H(2))
    h.check(any(l['start'] == U64 and l['end'] == 'eof' for l in lk),
            'status shows the lock of byte 2^64-1 (it ends at eof)')

    # -- split by unlocking a middle byte ----------------------------------------
    f = files['G']
    fh_g = nu.resolve_fh(h, c, vip1, f, H(9)).hex()
    h1.expect('lock 0..9', 'lock', f, 0, 10, rc=0)
    h1.expect('unlock byte 5', 'unlock', f, 5, 1, rc=0)
    h2.expect('byte 5 is free', 'lock', f, 5, 1, rc=0)
    h3.expect('byte 4 still held', 'lock', f, 4, 1, rc=1)
    h3.expect('byte 6 still held', 'lock', f, 6, 1, rc=1)
    st = nu.status(h, c)
    ranges = sorted((l['start'], l['end']) for l in nu.locks_of(st, 'g1', client=H(1), fh=fh_g))
    h.check(ranges == [(0, 4), (6, 9)], 'status shows the split ranges 0-4 and 6-9 (got %s)' % ranges)

    # -- blocking lock granted through GRANTED ----------------------------------
    for i, (vers, proto) in enumerate(((4, 'tcp'), (3, 'udp'), (1, 'tcp'), (4, 'udp'))):
        f = files['H'] if i == 0 else mk(e1, 'H-%d' % i)
        holder = cl(11)
        waiter = Client(h, H(12 + i), vip1, svid=1200 + i, vers=vers, proto=proto)
        holder.expect('holder locks (for v%d/%s waiter)' % (vers, proto), 'lock', f, 0, 10, rc=0)
        p, lp = waiter.spawn('lock', f, 0, 10, opts=['--block', '--poll', '600000'])
        h.check(nu.wait_file_text(lp, 'event=blocked', 10, proc=p),
                'v%d/%s blocking lock is queued (event=blocked)' % (vers, proto))
        h.check(p.poll() is None, 'v%d/%s the blocked client keeps waiting' % (vers, proto))
        holder.expect('holder unlocks', 'unlock', f, 0, 10, rc=0)
        try:
            rc = p.wait(15)
        except Exception:
            rc = None
        h.check(rc == 0, 'v%d/%s blocked lock granted after the unlock (exit %s)' % (vers, proto, rc))
        h.check(nu.wait_file_text(lp, 'event=granted-callback', 1),
                'v%d/%s it came through the server\'s GRANTED callback' % (vers, proto))
        holder.expect('v%d/%s the waiter holds it now' % (vers, proto), 'test', f, 0, 1, rc=1)

    # -- CANCEL -------------------------------------------------------------------
    hold = Hold(h, H(20), vip1, svid=2000)
    h.require(hold.wait_event('ready', 10) is not None, 'hold host is ready')
    f = files['I']
    h1.expect('holder locks I', 'lock', f, 0, 10, rc=0)
    i1 = hold.send('lock %s 0 10 block' % f)
    h.check(hold.wait_event('blocked', 10) is not None, 'blocking lock on I is queued')
    i2 = hold.send('cancel %s 0 10' % f)
    r = hold.result(i2)
    h.check(r is not None and r.get('status') == 'granted', 'CANCEL of the queued request granted (got %s)' % r)
    h1.expect('holder unlocks I', 'unlock', f, 0, 10, rc=0)
    time.sleep(0.5)
    h.check(hold.count('event=granted-callback') == 0, 'no GRANTED callback after the cancel')
    h2.expect('I is free for someone else: the cancelled waiter got nothing', 'lock', f, 0, 10, rc=0)

    f = files['I2']
    i3 = hold.send('lock %s 0 10' % f)
    r = hold.result(i3)
    h.check(r is not None and r.get('status') == 'granted', 'hold host locks I2 (got %s)' % r)
    i4 = hold.send('cancel %s 0 10' % f)
    r = hold.result(i4)
    h.check(r is not None and r.get('status') == 'denied', 'CANCEL with nothing queued is denied (got %s)' % r)
    h2.expect('CANCEL did not release the held lock', 'lock', f, 0, 10, rc=1)

    f = files['I3']
    h1.expect('another host holds I3 15..19', 'lock', f, 15, 5, rc=0)
    i5 = hold.send('lock %s 0 10' % f)
    r = hold.result(i5)
    h.check(r is not None and r.get('status') == 'granted', 'hold host locks I3 0..9 (got %s)' % r)
    hold.send('lock %s 0 20 block' % f)
    h.check(hold.wait_for(lambda l: 'event=blocked' in l and 'start=0 len=20' in l, 10) is not None,
            'its request to extend to 0..19 is queued')
    i7 = hold.send('cancel %s 0 20' % f)
    r = hold.result(i7)
    h.check(r is not None and r.get('status') == 'granted', 'CANCEL of the extension granted (got %s)' % r)
    h2.expect('bytes 0..9 still held after cancelling an overlapping wait', 'lock', f, 0, 1, rc=1)
    h2.expect('bytes 0..9 still held (last byte)', 'lock', f, 9, 1, rc=1)
    h1.expect('I3 15..19 released', 'unlock', f, 15, 5, rc=0)
    time.sleep(0.3)
    h2.expect('10..14 never granted to the cancelled request', 'lock', f, 10, 5, rc=0)

    # -- a retransmitted blocking LOCK reuses its waiter -------------------------
    f = files['J']
    fh_j = nu.resolve_fh(h, c, vip1, f, H(9))
    h1.expect('holder locks J', 'lock', f, 0, 10, rc=0)
    hold.send('lock %s 0 10 block svid=2100' % f)
    h.check(hold.wait_for(lambda l: 'event=blocked' in l and 'svid=2100' in l, 10) is not None,
            'hold host waits for J')
    oh = ('2100@%s' % H(20)).encode()
    sts = []
    with RawNLM(H(20), vip1, nlm_port) as raw:
        args = raw.lock_args(H(20), fh_j, oh, 2100, 0, 10, block=True)
        same_xid = raw.send(nu.P_LOCK, args)
        raw.recv()
        for k in range(80):
            # first a true retransmission (same xid), then re-polls
            r = raw.call(nu.P_LOCK, args, xid=same_xid if k < 5 else None)
            r.opaque()
            sts.append(r.u32())
    h.check(all(s == nu.BLOCKED for s in sts),
            '80 retransmissions of the blocking LOCK all answered BLOCKED, never DENIED_NOLOCKS '
            '(got %s)' % sorted(set(sts)))
    # the per-client cap on waiters exists: 65 different owners of one
    # host queued on J, the 65th is refused
    with RawNLM(H(21), vip1, nlm_port) as raw:
        sts = [raw.lock(H(21), fh_j, b'o%d' % k, 3000 + k, 0, 10, block=True) for k in range(65)]
    h.check(sts[:64] == [nu.BLOCKED] * 64 and sts[64] == nu.DENIED_NOLOCKS,
            'the per-client cap: 64 distinct waiters queued, the 65th DENIED_NOLOCKS '
            '(got %s..%s)' % (sorted(set(sts[:64])), sts[64]))
    h1.expect('holder unlocks J', 'unlock', f, 0, 10, rc=0)
    h.check(hold.wait_for(lambda l: 'event=granted-callback' in l and 'svid=2100' in l, 10) is not None,
            'the first waiter (the retransmitted one) is granted through GRANTED')
    time.sleep(0.5)
    h.check(hold.count('event=granted-callback') == 1 and hold.count('granted-unwanted') == 0,
            'exactly one GRANTED callback reached the host (one waiter, not several)')
    st = nu.status(h, c)
    lk = nu.locks_of(st, 'g1', client=H(20), fh=fh_j.hex())
    h.check(len(lk) == 1 and lk[0]['svid'] == 2100 and (lk[0]['start'], lk[0]['end']) == (0, 9),
            'status shows one lock of svid 2100 on J (got %s)' % lk)
    Client(h, H(21), vip1).expect('FREE_ALL clears the 64 raw waiters', 'free-all', rc=0)
    hold.stop()

    # -- _MSG forms ---------------------------------------------------------------
    f = files['K']
    m6 = Client(h, H(30), vip1, svid=3006, extra=['--msg'])
    m7 = Client(h, H(31), vip1, svid=3007, extra=['--msg'])
    m6.expect('LOCK_MSG granted through LOCK_RES', 'lock', f, 0, 10, rc=0, status='granted')
    res = m7.expect('TEST_MSG reports the holder through TEST_RES', 'test', f, 5, 1, rc=1, status='denied')
    h.check((res.holder or {}).get('svid') == 3006, 'TEST_RES holder svid 3006 (got %s)' % res.holder)
    m7.expect('LOCK_MSG conflicting denied through LOCK_RES', 'lock', f, 5, 1, rc=1, status='denied')
    m6.expect('UNLOCK_MSG granted through UNLOCK_RES', 'unlock', f, 0, 10, rc=0, status='granted')
    m7.expect('TEST_MSG after the unlock finds nothing', 'test', f, 5, 1, rc=0, status='granted')
    f = files['K2']
    m6.expect('LOCK_MSG on K2', 'lock', f, 0, 10, rc=0)
    p, lp = m7.spawn('lock', f, 0, 10, opts=['--block', '--poll', '600000'])
    h.check(nu.wait_file_text(lp, 'event=blocked', 10, proc=p), 'blocking LOCK_MSG queued')
    m6.expect('UNLOCK_MSG on K2', 'unlock', f, 0, 10, rc=0)
    try:
        rc = p.wait(15)
    except Exception:
        rc = None
    h.check(rc == 0 and nu.wait_file_text(lp, 'event=granted-callback', 1),
            'the LOCK_MSG waiter is granted through GRANTED_MSG (exit %s)' % rc)
    m3 = Client(h, H(32), vip1, svid=3008, vers=3, proto='udp', extra=['--msg'])
    m3.expect('v3 TEST_MSG over UDP sees the granted waiter', 'test', f, 0, 1, rc=1)

    # -- SHARE / UNSHARE ----------------------------------------------------------
    f = files['L']
    s1, s2, s3, s4 = cl(41), cl(42), cl(43), cl(44)
    s1.expect('SHARE access=r deny=w granted', 'share', f, opts=['--access', 'r', '--mode', 'w'], rc=0)
    s2.expect('SHARE access=w conflicts with deny=w', 'share', f, opts=['--access', 'w'], rc=1,
              status='denied')
    s2.expect('SHARE access=rw conflicts with deny=w', 'share', f, opts=['--access', 'rw'], rc=1)
    s2.expect('SHARE access=r deny=none granted', 'share', f, opts=['--access', 'r'], rc=0)
    s3.expect('SHARE deny=r conflicts with existing readers', 'share', f,
              opts=['--access', 'r', '--mode', 'r'], rc=1)
    s3.expect('SHARE access=r deny=w is compatible with the others', 'share', f,
              opts=['--access', 'r', '--mode', 'w'], rc=0)
    s1.expect('UNSHARE granted', 'unshare', f, opts=['--access', 'r', '--mode', 'w'], rc=0)
    s4.expect('still denied: the third host denies write', 'share', f, opts=['--access', 'w'], rc=1)
    s3.expect('UNSHARE of the third', 'unshare', f, opts=['--access', 'r', '--mode', 'w'], rc=0)
    s4.expect('SHARE access=w granted once nobody denies write', 'share', f, opts=['--access', 'w'], rc=0)
    s1.expect('SHARE deny=rw denied while others hold the file', 'share', f,
              opts=['--access', 'r', '--mode', 'rw'], rc=1)
    s2.expect('UNSHARE', 'unshare', f, opts=['--access', 'r'], rc=0)
    s4.expect('UNSHARE', 'unshare', f, opts=['--access', 'w'], rc=0)
    s1.expect('SHARE deny=rw granted on an unshared file', 'share', f,
              opts=['--access', 'rw', '--mode', 'rw'], rc=0)
    s2.expect('any SHARE is denied then', 'share', f, opts=['--access', 'r'], rc=1)
    s1.expect('UNSHARE deny=rw', 'unshare', f, opts=['--access', 'rw', '--mode', 'rw'], rc=0)

    # -- FREE_ALL -----------------------------------------------------------------
    victim = 'victim-%d' % c.slot
    hv = Client(h, H(50), vip1, name=victim, svid=5000)
    hx = Client(h, H(51), vip1, name=victim, svid=5001)     # same name, other address
    hv.expect('victim locks M', 'lock', files['M'], 0, 10, rc=0)
    hv.expect('victim locks M2', 'lock', files['M2'], 100, 0, rc=0)
    hv.expect('victim SHARE M3 deny=rw', 'share', files['M3'], opts=['--mode', 'rw'], rc=0)
    Client(h, H(50), vip2, name=victim).expect('FREE_ALL for the victim sent to the other group',
                                               'free-all', rc=0)
    hx.expect('FREE_ALL naming the victim from another address (no error reply)', 'free-all', rc=0)
    time.sleep(0.3)
    st = nu.status(h, c)
    h.check(len(nu.locks_of(st, 'g1', client=victim)) == 2,
            'the victim still holds its 2 locks after both FREE_ALLs (got %d)'
            % len(nu.locks_of(st, 'g1', client=victim)))
    h2.expect('M still locked by the victim', 'lock', files['M'], 0, 1, rc=1)
    h2.expect('M3 share still held by the victim', 'share', files['M3'], rc=1)
    h.check(nu.wait_log(c.nodes['a'], 'FREE_ALL from %s refused' % H(51)),
            'the refused FREE_ALL is logged with its source address')
    hv.expect('FREE_ALL from the victim\'s own address', 'free-all', rc=0)
    time.sleep(0.3)
    st = nu.status(h, c)
    h.check(nu.locks_of(st, 'g1', client=victim) == [],
            'no lock of the victim left after its own FREE_ALL')
    h2.expect('M is free', 'lock', files['M'], 0, 10, rc=0)
    h2.expect('M2 is free', 'lock', files['M2'], 1000, 1, rc=0)
    h2.expect('M3 share is free', 'share', files['M3'], rc=0)

    # -- NLM v1 and v3 beside v4 --------------------------------------------------
    f = files['N']
    v4a = cl(61)
    v1b = cl(62, vers=1)
    v3b = cl(63, vers=3)
    v3c = cl(64, vers=3, proto='udp')
    v1d = cl(65, vers=1, proto='udp')
    v4a.expect('v4 exclusive 0..99', 'lock', f, 0, 100, rc=0)
    v1b.expect('v1 lock over it denied', 'lock', f, 50, 10, rc=1, status='denied')
    res = v3b.expect('v3 TEST sees the v4 holder', 'test', f, 50, 10, rc=1)
    h.check((res.holder or {}).get('svid') == 1061 and res.holder.get('start') == 0
            and res.holder.get('len') == 100, 'v3 holder is svid 1061 0+100 (got %s)' % res.holder)
    v3c.expect('v3/udp shared 200..209', 'lock', f, 200, 10, opts=['--shared'], rc=0)
    v4a.expect('v4 exclusive inside the v3 shared lock denied', 'lock', f, 205, 1, rc=1)
    res = v1d.expect('v1/udp TEST sees the v3 shared holder', 'test', f, 200, 10, rc=1)
    h.check((res.holder or {}).get('type') == 'shared' and res.holder.get('svid') == 1064,
            'v1 holder is the v3 shared lock (got %s)' % res.holder)
    v1b.expect('v1 shared beside v3 shared granted', 'lock', f, 205, 10, opts=['--shared'], rc=0)
    v3c.expect('v3 unlock', 'unlock', f, 200, 10, rc=0)
    v1b.expect('v1 unlock', 'unlock', f, 205, 10, rc=0)
    v1d.expect('v1 exclusive now granted', 'lock', f, 200, 10, rc=0)
    res = v4a.expect('v4 TEST sees the v1 holder', 'test', f, 209, 1, rc=1)
    h.check((res.holder or {}).get('svid') == 1065, 'v4 holder is the v1 lock (got %s)' % res.holder)
    v4a.expect('v4 unlock', 'unlock', f, 0, 100, rc=0)
    v3b.expect('v3 lock where v4 was', 'lock', f, 0, 100, rc=0)

    # -- a v4 lock above 4 GiB seen through v3 TEST --------------------------------
    v3t = cl(70, vers=3)
    h1.expect('v4 lock at 5 GiB', 'lock', files['O'], 5 * G4, 10, rc=0)
    res = v3t.expect('v3 TEST of the whole file sees it', 'test', files['O'], 0, 0, rc=1)
    h.check((res.holder or {}).get('start') == G4 - 1 and res.holder.get('len') == 0,
            'v3 holder is clamped to offset 2^32-1, len 0 (got %s)' % res.holder)
    h1.expect('v4 lock from 2^32-10 across 4 GiB', 'lock', files['O2'], G4 - 10, 100, rc=0)
    res = v3t.expect('v3 TEST sees it', 'test', files['O2'], G4 - 20, 15, rc=1)
    h.check((res.holder or {}).get('start') == G4 - 10 and res.holder.get('len') == 0,
            'v3 holder keeps its offset, len 0 (to EOF) (got %s)' % res.holder)
    h1.expect('v4 lock below 4 GiB', 'lock', files['O3'], 100, 10, rc=0)
    res = v3t.expect('v3 TEST sees it', 'test', files['O3'], 0, 0, rc=1)
    h.check((res.holder or {}).get('start') == 100 and res.holder.get('len') == 10,
            'a range below 4 GiB is reported unchanged (got %s)' % res.holder)
    h1.expect('v4 lock ending at exactly 2^32-1', 'lock', files['O3'], G4 - 16, 16, rc=0)
    res = v3t.expect('v3 TEST sees it', 'test', files['O3'], G4 - 1, 1, rc=1)
    h.check((res.holder or {}).get('start') == G4 - 16 and res.holder.get('len') == 16,
            'a range ending at 2^32-1 is reported unchanged (got %s)' % res.holder)

    # -- a handle of the other group ----------------------------------------------
    fh2 = nu.resolve_fh(h, c, vip2, g2file, H(9)).hex()
    wrong = 'fh:' + fh2
    h1.expect('v4 LOCK with g2\'s handle on g1\'s VIP is STALE_FH', 'lock', wrong, 0, 10,
              rc=3, status='stale_fh')
    h1.expect('v4 TEST with g2\'s handle on g1\'s VIP is STALE_FH', 'test', wrong, 0, 10,
              rc=3, status='stale_fh')
    h1.expect('v4 UNLOCK with g2\'s handle on g1\'s VIP is STALE_FH', 'unlock', wrong, 0, 10,
              rc=3, status='stale_fh')
    cl(1, vers=3).expect('v3 LOCK with g2\'s handle is denied (DENIED_NOLOCKS)', 'lock', wrong, 0, 10,
                         rc=1, status='denied_nolocks')
    cl(1, vers=1).expect('v1 TEST with g2\'s handle is denied', 'test', wrong, 0, 10, rc=1)
    h1.expect('SHARE with g2\'s handle is refused', 'share', wrong, rc=3, status='stale_fh')
    h1.expect('a garbage handle is STALE_FH', 'lock', 'fh:0badc0de', 0, 10, rc=3, status='stale_fh')
    g2c = Client(h, H(80), vip2, svid=8000)
    g2c.expect('the handle works on its own group\'s VIP', 'lock', 'fh:' + fh2, 0, 10, rc=0)
    fh1 = nu.resolve_fh(h, c, vip1, files['P'], H(9)).hex()
    g2c.expect('g1\'s handle on g2\'s VIP is STALE_FH', 'lock', 'fh:' + fh1, 0, 10, rc=3,
               status='stale_fh')

    # -- a group's locks never appear in the other group --------------------------
    g2only = Client(h, H(81), vip2, name='g2only-%d' % c.slot, svid=8100)
    g2only.expect('a host that locks only in g2', 'lock', g2file, 100, 10, rc=0)
    h1.expect('g1 lock on Q', 'lock', files['Q'], 0, 10, rc=0)
    st = nu.status(h, c)
    g1fh = {l['file'] for l in st['g1']['locks']}
    g2fh = {l['file'] for l in st['g2']['locks']}
    h.check(g2fh == {fh2}, 'g2 reports locks only on its own file (got %d files)' % len(g2fh))
    h.check(fh2 not in g1fh and len(g1fh) > 5, 'g1 reports none of g2\'s locks (%d files)' % len(g1fh))
    h.check(sorted((l['client'], l['start']) for l in st['g2']['locks'])
            == sorted([(H(80), 0), ('g2only-%d' % c.slot, 100)]),
            'g2 lists exactly the two locks taken there (got %s)'
            % [(l['client'], l['start']) for l in st['g2']['locks']])
    h.check(set(nu.clients_of(st, 'g2')) == {H(80), 'g2only-%d' % c.slot},
            'g2\'s client list holds exactly the hosts that locked there (got %s)'
            % nu.clients_of(st, 'g2'))
    h.check('g2only-%d' % c.slot not in nu.clients_of(st, 'g1'),
            'a host that locked only in g2 is not on g1\'s client list')
    h.check(H(1) in nu.clients_of(st, 'g1') and H(1) not in nu.clients_of(st, 'g2'),
            'a host that locked only in g1 is not on g2\'s client list')
    for gname, e in (('g1', e1), ('g2', e2)):
        d = os.path.join(e.path, '.sgnfs', 'clients')
        on_disk = set(os.listdir(d)) if os.path.isdir(d) else set()
        h.check(set(nu.clients_of(st, gname)) <= on_disk,
                '%s: every listed client has its file in %s' % (gname, d))
    h.check('g2only-%d' % c.slot not in os.listdir(os.path.join(e1.path, '.sgnfs', 'clients')),
            'g1\'s client directory has no entry for the g2-only host')

    # ---------------------------------------------------------------------------
    nu.check_no_sanitizer_report(h, c)
    c.stop('a')
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=240)
