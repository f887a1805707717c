#!/usr/bin/env python3
"""
test_nlm_reclaim_repeat - a reclaim of a lock (or share) its owner already
holds is GRANTED, out of grace and in grace, and that lock survives the
next failovers.

Why (issue 17, found with a Linux kernel client): a client whose statd was
unreachable at a takeover gets its SM_NOTIFY late.  Meanwhile it locked
anew (reclaim = FALSE, granted); the late notification makes it reclaim
the same lock (reclaim = TRUE).  Refused with DENIED_NOLOCKS, Linux drops
that lock from its reclaim list, the server keeps holding it, nobody
reclaims it at the next failover, and when that grace ends another host is
granted a range the first host's application still believes it holds.

Sequence (one node, journal on, so a restart after kill -9 recovers with
reservations and a grace that ends when everything is reclaimed):
  1. out of grace: lock -> granted; the same lock with reclaim -> granted;
     a reclaim of a range it does not hold -> denied_nolocks (nothing to
     reclaim); the lock still conflicts for another host.  Same for a
     share reservation.
  2. kill -9, restart: in grace; reclaim -> granted, reclaim again ->
     granted; another host is refused.
  3. kill -9, restart again: the lock is still reserved and reclaimable;
     another host is still refused.
Simulated client hosts are 127.S.63.N.
"""
import os

import harness
import nlm_util as nu
from harness import Export, Group
from nlm_util import Client


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=631)], grace=60)])
    e = c.export('g1/data')
    vip = c.group('g1').vip
    path = os.path.join(e.path, 'f')
    with open(path, 'wb') as f:
        f.write(b'x' * 64)
    nu.watch(c)
    c.start('a')
    nu.wait_online(h, c, ['g1'])
    H = lambda n: nu.host(c, 63, n)
    h1 = Client(h, H(1), vip, svid=101)
    h2 = Client(h, H(2), vip, svid=202)
    rec = ['--reclaim']

    # 1. out of grace
    h1.expect('new lock granted', 'lock', path, 0, 100, rc=0, status='granted')
    h1.expect('out of grace, a reclaim of the lock the owner holds is granted',
              'lock', path, 0, 100, opts=rec, rc=0, status='granted')
    h1.expect('out of grace, a reclaim of part of it is granted',
              'lock', path, 10, 5, opts=rec, rc=0, status='granted')
    h1.expect('out of grace, a reclaim of a range not held is refused',
              'lock', path, 0, 101, opts=rec, status='denied_nolocks')
    h1.expect('out of grace, a reclaim of the held range as shared is refused',
              'lock', path, 0, 100, opts=rec + ['--shared'], status='denied_nolocks')
    h2.expect('another host still conflicts with the lock', 'lock', path, 50, 1,
              rc=1, status='denied')
    sh = ['--access', 'rw', '--mode', 'w']
    h1.expect('share granted', 'share', path, opts=sh, rc=0, status='granted')
    h1.expect('out of grace, a reclaim of the share the owner holds is granted',
              'share', path, opts=sh + rec, rc=0, status='granted')
    h1.expect('out of grace, a reclaim of a share with other bits is refused',
              'share', path, opts=['--access', 'r', '--mode', 'w'] + rec,
              status='denied_nolocks')
    h2.expect('another host\'s writer is denied by the share', 'share', path,
              opts=['--access', 'w', '--mode', 'none'], status='denied')
    st = nu.status(h, c)
    h.check(len(nu.locks_of(st, 'g1', client=H(1))) == 1,
            'the server holds one lock of host 1 (%s)' % nu.locks_of(st, 'g1'))

    # 2. and 3. two failovers: in grace the repeat is granted too, and the
    # lock is never forgotten.
    for n in (1, 2):
        c.kill9('a')
        c.start('a')
        st = nu.wait_served(h, c, ['g1'])
        h.check(st.get('g1', {}).get('state') == 'grace',
                'restart %d: g1 is in grace (%s)' % (n, st.get('g1', {}).get('state')))
        h2.expect('restart %d: another host cannot take the reserved range' % n,
                  'lock', path, 50, 1, status='grace')
        h1.expect('restart %d: reclaim granted' % n, 'lock', path, 0, 100, opts=rec,
                  rc=0, status='granted')
        h1.expect('restart %d: the same reclaim again is granted' % n, 'lock', path, 0, 100,
                  opts=rec, rc=0, status='granted')
        h1.expect('restart %d: share reclaim granted' % n, 'share', path, opts=sh + rec,
                  rc=0, status='granted')
        h1.expect('restart %d: the same share reclaim again is granted' % n, 'share', path,
                  opts=sh + rec, rc=0, status='granted')
        nu.wait_online(h, c, ['g1'])
        h2.expect('restart %d: out of grace another host is still denied' % n,
                  'lock', path, 50, 1, rc=1, status='denied')
        h1.expect('restart %d: out of grace, the repeat reclaim is granted' % n,
                  'lock', path, 0, 100, opts=rec, rc=0, status='granted')
    # Each of host 1's calls above mounted the export again (MNT): the node
    # logs the first mount of a host, not every MOUNT call.
    mounted = [l for l in nu.log_text(c.nodes['a']).splitlines()
               if 'client=%s mounted ' % H(1) in l]
    h.check(len(mounted) == 1, 'the last daemon logged host 1\'s mount once, not per MNT '
            'call (%d lines)' % len(mounted))
    nu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=240)
