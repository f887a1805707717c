#!/usr/bin/env python3
"""
test_nlm_grace_block - in grace, a blocking LOCK that conflicts only with
another owner's reservation (a lock held before the takeover, not yet
reclaimed) is queued (BLOCKED) and granted by the NLM_GRANTED callback, not
refused with DENIED_GRACE_PERIOD (a Linux client then sleeps 5 s before it
asks again; issue 17).

  g1: host 1 holds F 0..99; kill -9 + restart (journal: F is reserved).
      A waiter's blocking lock on 50..59 is BLOCKED; a non-blocking one from
      a third host is still refused (grace).  Host 1 reclaims F: the waiter
      now waits behind the real lock (no callback).  Host 1 unlocks: the
      waiter is called back and holds 50..59.
  g2: host 1 holds G 0..9; after the same restart a waiter blocks on it;
      host 1 reboots (SM_NOTIFY): its reservation goes and the waiter is
      called back.  A CANCEL of a request queued behind a reservation is
      granted and leaves nothing behind.
Simulated client hosts are 127.S.64.N.
"""
import os
import time

import harness
import nlm_util as nu
from harness import Export, Group
from nlm_util import Client, Hold


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=641)], grace=120),
                   Group('g2', [Export('g2/data', fsid=642)], grace=120)])
    paths = {}
    for rel, name in (('g1/data', 'F'), ('g2/data', 'G'), ('g2/data', 'K')):
        p = os.path.join(c.export(rel).path, name)
        with open(p, 'wb') as f:
            f.write(b'x' * 128)
        paths[name] = p
    v1, v2 = c.group('g1').vip, c.group('g2').vip
    nu.watch(c)
    c.start('a')
    nu.wait_online(h, c, ['g1', 'g2'])
    H = lambda n: nu.host(c, 64, n)
    h1a = Client(h, H(1), v1, svid=11)
    h1b = Client(h, H(1), v2, svid=11)
    h3 = Client(h, H(3), v1, svid=33)
    h1a.expect('host 1 locks F', 'lock', paths['F'], 0, 100, rc=0)
    h1b.expect('host 1 locks G', 'lock', paths['G'], 0, 10, rc=0)
    h1b.expect('host 1 locks K', 'lock', paths['K'], 0, 10, rc=0)

    c.kill9('a')
    c.start('a')
    st = nu.wait_served(h, c, ['g1', 'g2'])
    h.require(st.get('g1', {}).get('state') == 'grace' and st.get('g2', {}).get('state') == 'grace',
              'both groups are in grace after the restart')

    # g1: wait behind the reservation, then behind the reclaimed lock.
    w = Hold(h, H(2), v1, svid=22)
    h.require(w.wait_event('ready', 10) is not None, 'waiter host is ready')
    w.send('lock %s 50 10 block' % paths['F'])
    h.check(w.wait_for(lambda l: 'event=blocked' in l, 15) is not None,
            'a blocking lock behind a reservation is queued (BLOCKED), not refused')
    h.check(w.count('status=grace') == 0, 'no DENIED_GRACE_PERIOD for it')
    h3.expect('a non-blocking lock behind the reservation is still refused', 'lock',
              paths['F'], 55, 1, status='grace')
    h1a.expect('host 1 reclaims F', 'lock', paths['F'], 0, 100, opts=['--reclaim'], rc=0,
               status='granted')
    time.sleep(0.5)
    h.check(w.count('event=granted-callback') == 0,
            'the waiter is not granted while the reclaimed lock holds the range')
    h1a.expect('host 1 unlocks F', 'unlock', paths['F'], 0, 100, rc=0)
    h.check(w.wait_event('granted-callback', 15) is not None,
            'the waiter is granted by the GRANTED callback')
    h3.expect('the waiter holds 50..59 now', 'test', paths['F'], 55, 1, rc=1)

    # g2: the reservation goes with its owner's reboot.
    w2 = Hold(h, H(4), v2, svid=44)
    h.require(w2.wait_event('ready', 10) is not None, 'second waiter host is ready')
    w2.send('lock %s 0 10 block' % paths['G'])
    h.check(w2.wait_for(lambda l: 'event=blocked' in l, 15) is not None,
            'g2: the blocking lock behind a reservation is queued')
    i = w2.send('lock %s 0 10 block svid=45' % paths['K'])
    h.check(w2.wait_for(lambda l: 'event=blocked' in l and 'svid=45' in l, 15) is not None,
            'g2: a second one, on K, is queued')
    i = w2.send('cancel %s 0 10 svid=45' % paths['K'])
    r = w2.result(i, 15)
    h.check(r is not None and r.get('status') == 'granted',
            'CANCEL of a request queued behind a reservation is granted (got %s)' % r)
    # (a one-shot `sgnfs-client reboot` exits before its SM_NOTIFY goes out)
    r1 = Hold(h, H(1), v2, svid=11)
    h.require(r1.wait_event('ready', 10) is not None, 'host 1 is up again')
    r1.send('reboot')
    h.check(r1.wait_for(lambda l: 'event=sm-notify-sent' in l, 15) is not None,
            'host 1 reboots: SM_NOTIFY sent to g2')
    h.check(w2.wait_for(lambda l: 'event=granted-callback' in l and 'svid=44' in l, 15)
            is not None, 'g2: the waiter is granted once the reservation is dropped')
    time.sleep(0.5)
    h.check(w2.count('event=granted-callback') == 1,
            'the cancelled request on K was never granted')
    st = nu.status(h, c)
    kl = [l for l in nu.locks_of(st, 'g2') if l.get('svid') == 45]
    h.check(kl == [], 'nothing of the cancelled request is held (%s)' % kl)
    for x in (w, w2, r1):
        x.stop()
    nu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=240)
