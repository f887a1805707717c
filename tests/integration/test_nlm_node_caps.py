#!/usr/bin/env python3
"""
test_nlm_node_caps - the node bounds what all its clients together hold:
max_names (NLM caller names) and max_locks (locks, shares and waiters),
summed over every group the node serves, as the per-address caps bound one
address.  Without them, clients from enough addresses (each under its
per-address caps) grew the node's memory, its journals and its client
lists (a file per name) without end.  A reclaim passes them: what a client
held before a restart or a failover is taken back whatever the node holds.

One node serves g1 (journal on) and g2 (journal = no), max_names = 6,
max_locks = 8 (per address: the defaults).

  1. names across groups: 4 hosts lock in g1, 2 in g2 (6 names, 6 locks);
     a 7th name, in g2, is refused NLM4_DENIED_NOLOCKS, logged
     "max_names reached ... on the node"; a known name still locks.
  2. locks across groups: host 2 takes one more in g1 (8 locks); another
     in g1, which holds 6, is refused "max_locks reached"; after an UNLOCK
     in g2 the same lock in g1 is granted.  Status counts the 2 refusals.
  3. reclaims pass: kill -9 and restart.  g1 recovers its journal's
     reservations (4 names known), g2 has a plain grace (none known).  In
     g1's grace two new names take a lock each (6 names) and the known
     names fill the node (8 locks) with ranges nothing reserves; a 9th
     lock is refused.  Then g1's 7 reclaims are granted (over max_locks),
     and so is g2's 1, from a name new to the node (over max_names too).
     Once g1's grace ends (all it reserved is reclaimed), a new lock of a
     known name and a lock of a new name are refused; the node holds 16.

Order and outcome only.  Client hosts are 127.S.67.N.
"""
import os

import harness
import nlm_util as nu
from harness import Export, Group, log
from nlm_util import RawNLM

OH = b'owner'


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=771)], grace=120),
                   Group('g2', [Export('g2/data', fsid=772)], grace=120,
                         extra={'journal': 'no'})],
                  cluster_extra={'max_names': 6, 'max_locks': 8})
    port = c.ports['nlm_port']
    vip = {g: c.group(g).vip for g in ('g1', 'g2')}
    paths = {}
    for g in ('g1', 'g2'):
        paths[g] = os.path.join(c.export('%s/data' % g).path, 'f')
        with open(paths[g], 'wb') as f:
            f.write(b'x' * 64)
        os.chmod(paths[g], 0o666)
    nu.watch(c)
    c.start('a')
    nu.wait_online(h, c, ['g1', 'g2'])
    H = lambda n: nu.host(c, 67, n)
    fh = {g: nu.resolve_fh(h, c, vip[g], paths[g], H(200)) for g in ('g1', 'g2')}

    def lock(g, n, off, name=None, reclaim=False):
        with RawNLM(H(n), vip[g], port) as k:
            return k.lock(name or 'h%d' % n, fh[g], OH, n, off, 1, reclaim=reclaim)

    def unlock(g, n, off):
        with RawNLM(H(n), vip[g], port) as k:
            return k.unlock('h%d' % n, fh[g], OH, n, off, 1)

    def name(st):
        return nu.STAT_NAMES[st] if 0 <= st < len(nu.STAT_NAMES) else st

    # (group, host, offset) of every lock held before the restart; ranges of
    # one owner are apart (adjacent ones merge into one lock).
    held = []

    # -- 1. names over both groups --------------------------------------------
    for n, g in ((1, 'g1'), (2, 'g1'), (3, 'g1'), (4, 'g1'), (5, 'g2'), (6, 'g2')):
        st = lock(g, n, 100 * n)
        h.check(st == nu.GRANTED, 'host %d locks in %s (%s)' % (n, g, name(st)))
        held.append((g, n, 100 * n))
    st = lock('g2', 7, 700)
    h.check(st == nu.DENIED_NOLOCKS, 'a 7th name, in g2, is refused DENIED_NOLOCKS '
            '(max_names = 6 over both groups) (%s)' % name(st))
    h.check(nu.wait_log(c.nodes['a'], 'max_names reached'), 'the refusal is logged')
    h.check('locks on the node' in nu.log_text(c.nodes['a']),
            'the line counts what the node holds')
    st = lock('g1', 1, 110)
    h.check(st == nu.GRANTED, 'a known name still locks (%s)' % name(st))
    held.append(('g1', 1, 110))

    # -- 2. locks over both groups --------------------------------------------
    st = lock('g1', 2, 210)
    h.check(st == nu.GRANTED, 'the 8th lock on the node is granted (%s)' % name(st))
    held.append(('g1', 2, 210))
    st = lock('g1', 3, 310)
    h.check(st == nu.DENIED_NOLOCKS, 'a 9th, in g1 (which holds 6), is refused '
            'DENIED_NOLOCKS (%s)' % name(st))
    h.check(nu.wait_log(c.nodes['a'], 'max_locks reached'), 'that refusal is logged')
    st = unlock('g2', 6, 600)
    h.check(st == nu.GRANTED, 'host 6 unlocks its lock in g2 (%s)' % name(st))
    held.remove(('g2', 6, 600))
    st = lock('g1', 3, 310)
    h.check(st == nu.GRANTED, 'then the lock in g1 is granted (%s)' % name(st))
    held.append(('g1', 3, 310))
    refused = sum(nu.status(h, c).get(g, {}).get('nlm', {}).get('refused_caps', 0)
                  for g in ('g1', 'g2'))
    h.check(refused == 2, 'status counts the 2 refusals (nlm.refused_caps: %d)' % refused)
    st = nu.status(h, c)
    h.require(sum(len(nu.locks_of(st, g)) for g in ('g1', 'g2')) == 8 and len(held) == 8,
              '8 locks held')

    # -- 3. reclaims pass the node's caps ---------------------------------------
    c.kill9('a')
    c.start('a')
    st = nu.wait_served(h, c, ['g1', 'g2'])
    h.require(all(st.get(g, {}).get('state') == 'grace' for g in ('g1', 'g2')),
              'both groups are in grace after the restart (%s)'
              % {g: st.get(g, {}).get('state') for g in ('g1', 'g2')})
    fill = [(7, 7000), (8, 8000), (1, 1000), (1, 1020), (2, 2000), (2, 2020),
            (3, 3000), (4, 4000)]
    for n, off in fill:
        r = lock('g1', n, off)
        h.check(r == nu.GRANTED, 'in g1\'s grace, host %d locks %d, which nothing '
                'reserves (%s)' % (n, off, name(r)))
    r = lock('g1', 3, 3020)
    h.check(r == nu.DENIED_NOLOCKS, 'the node is full: a 9th new lock is refused (%s)'
            % name(r))
    for g, n, off in held:
        r = lock(g, n, off, reclaim=True)
        h.check(r == nu.GRANTED, 'host %d reclaims %s:%d with the node full (%s)'
                % (n, g, off, name(r)))
    nu.wait_online(h, c, ['g1'])
    r = lock('g1', 3, 3040)
    h.check(r == nu.DENIED_NOLOCKS, 'after g1\'s grace a new lock of a known name is '
            'refused: 16 held (%s)' % name(r))
    r = lock('g1', 9, 9000)
    h.check(r == nu.DENIED_NOLOCKS, 'and so is a lock of a new name: 8 names (%s)'
            % name(r))
    st = nu.status(h, c)
    n_locks = sum(len(nu.locks_of(st, g)) for g in ('g1', 'g2'))
    log('after the reclaims the node holds %d locks' % n_locks)
    h.check(n_locks == 16, 'the node holds the 8 reclaimed and the 8 new (%d)' % n_locks)
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=300)
