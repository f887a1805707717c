#!/usr/bin/env python3
"""
test_status_large.py - one status lists at most 10,000 entries of the lists
clients make long (each group's clients and locks), shared evenly between
the lists of the groups served: it is built on the event loop, and clients
decide how long those lists grow (docs/status.md).

g1's client list holds 20,001 entries, planted in the documented format
before the node starts (as after a failover of a busy group); g2 has one
real client holding one lock.  Two groups served: each list gets
10,000 / 4 = 2,500 entries.  Checked, as outcome:
  * g1: nclients is 20,001, the clients list has 2,500 entries and says it
    was cut (clients_truncated); its locks list is whole (empty, not cut);
  * g2, next to it in the same status: its one client and its one lock are
    listed whole, neither list cut;
  * the text tables give g1's whole counts and say its list was cut;
  * the node is still running.
Before, each list of each group was listed up to 100,000 entries: json-c
alone takes 1.3-1.9 s on this VM (idle to loaded) to build, write and free
the JSON of 100,000 clients and 100,000 locks, so a status of a node with a
few such groups could pass its watchdog (5 s).  The cut of the locks list
is checked in the unit test_nlm (test_status_lists_cut).
"""
import os
import time

import harness
import fo_util as fu
import nlm_util as nu
import ops_util as ou
from harness import Export, Group, log

N = 20001
LIST_MAX = 2500   # GRP_STATUS_LIST_TOTAL / (2 lists x 2 groups)


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=881)], grace=1),
                   Group('g2', [Export('g2/data', fsid=882)], grace=1)])
    d = os.path.join(fu.statedir(c, 'g1'), 'clients')
    os.makedirs(d, exist_ok=True)
    now = int(time.time())
    t0 = time.monotonic()
    for i in range(N):
        # addresses that answer nothing: g1's notifications go nowhere
        a = '127.%d.%d.%d' % (90 + (i >> 16), (i >> 8) & 255, (i & 255) or 1)
        with open(os.path.join(d, 'big-%06d' % i), 'w') as f:
            f.write('sgnfs-clist=1\nname=big-%06d\nadded=%d\naddr=%s\n' % (i, now, a))
    log('planted %d client list entries in %.1f s' % (N, time.monotonic() - t0))
    c.start('a')
    nu.wait_online(h, c, ['g1', 'g2'], timeout=240)
    f2 = fu.lock_file(c, 'g2')
    with open(f2, 'w') as f:
        f.write('x')
    ho = fu.Hold(h, fu.client_addr(c, 2, 1), c.group('g2').vip, f2, 0, 8, tag='H')
    h.require(ho.wait_holding(), 'a g2 client holds bytes 0-7')

    rc, doc = ou.status(c)
    g1, g2 = ou.served(doc, 'a', 'g1') or {}, ou.served(doc, 'a', 'g2') or {}
    h.check(g1.get('nclients') == N and len(g1.get('clients', [])) == LIST_MAX
            and g1.get('clients_truncated') is True,
            'g1: %s clients counted, %d listed, list cut: %s'
            % (g1.get('nclients'), len(g1.get('clients', [])), g1.get('clients_truncated')))
    h.check(g1.get('locks') == [] and g1.get('locks_truncated') is False,
            'g1: its locks list is whole (%s, truncated %s)'
            % (len(g1.get('locks', [])), g1.get('locks_truncated')))
    h.check(g2.get('nclients') == 1 and len(g2.get('clients', [])) == 1
            and g2.get('clients_truncated') is False
            and g2.get('nlocks') == 1 and len(g2.get('locks', [])) == 1
            and g2.get('locks_truncated') is False,
            'g2: its one client and one lock listed whole (%s)'
            % {k: g2.get(k) for k in ('nclients', 'nlocks', 'clients_truncated',
                                      'locks_truncated')})
    # the text tables: the whole counts in the group row, and the cut said
    rc, out, _ = ou.ctl(c, 'status')
    lines = out.splitlines()
    row = [l.split() for l in lines if l.startswith('g1 ') and 'online' in l]
    h.check(row and row[0][4:6] == [str(N), '0'],
            'text: g1 row counts %d clients and 0 locks (%s)' % (N, row[:1]))
    h.check('g1           (listed %d of %d clients, 0 of 0 locks: docs/status.md)'
            % (LIST_MAX, N) in lines, 'text: the cut of g1\'s list said')
    h.check(not any(l.startswith('g2 ') and 'listed' in l for l in lines),
            'text: no cut said for g2')
    ho.stop()
    h.check(c.nodes['a'].alive(), 'node a is still running')


if __name__ == '__main__':
    harness.main(test, timeout=600)
