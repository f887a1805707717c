#!/usr/bin/env python3
"""
Claims 3, 4, 5, 11, 20 (and 13, 22): when group g1 fails over from node a
to node b, b initiates lock recovery for g1's filesystems, using g1's own
client list, read from g1's filesystem: it notifies every client on that
list to reclaim, and the reclaims restore the locks.

Cluster: nodes a, b, c; g1 (a b c, grace 6 s), g2 (b a c), g3 (c a b).
  * g1: 5 hosts x 2 locks (127.71.S.1-5); g2: 2 hosts; g3: 2 hosts.
  * While a serves g1, two entries are planted by hand in g1's client
    list on disk: host P (127.74.S.1, a running simulated host holding
    nothing) and a dead address (127.74.S.99).  a never learns of them;
    only a node that reads the list from g1's storage at takeover can
    notify P.

kill -9 a.  Checked:
  * b takes g1 (state number up, odd) and logs 7 client/VIP pairs to
    notify: the 5 lock holders + the 2 planted entries;
  * every g1 host and P get SM_NOTIFY from g1's VIP naming g1's VIP with
    the new state (event lines, and tshark when it can capture); the dead
    address does not hold up the others;
  * every g1 lock is reclaimed (event=reclaimed, record says held), and b
    reports exactly the locks the clients believe they hold;
  * after g1's grace, a new host asking for a held range is DENIED (the
    reclaimed locks really protect their ranges) and a free range is
    granted;
  * g2 and g3 hosts are not notified.
"""

import re
import time

import harness
import fo_util as fu
from harness import log


def test(h):
    c = fu.three_nodes(h, [('g1', 'abc', 6), ('g2', 'bac'), ('g3', 'cab')],
                       # claim 8's period refuses every new lock: the plain grace
                       # (with the journal, grace refuses only what conflicts:
                       # test_journal_recovery)
                       journal=False)
    fu.start_nodes(h, c)
    v1, v2, v3 = (c.group(g).vip for g in ('g1', 'g2', 'g3'))
    f1, f2, f3 = (fu.lock_file(c, g) for g in ('g1', 'g2', 'g3'))

    h1 = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 8, per_host=2, nhosts=5, tag='g1')
    h2 = fu.Hold(h, fu.client_addr(c, 2, 1), v2, f2, 0, 8, per_host=2, nhosts=2, tag='g2')
    h3 = fu.Hold(h, fu.client_addr(c, 3, 1), v3, f3, 0, 8, per_host=2, nhosts=2, tag='g3')
    for ho in (h1, h2, h3):
        h.require(ho.wait_holding(), '%s x%d holds its initial locks' % (ho.addr, ho.nhosts))
    p_addr = fu.client_addr(c, 4, 1)
    dead = fu.client_addr(c, 4, 99)
    hp = fu.Hold(h, p_addr, v1, tag='planted')
    h.require(hp.wait_for(lambda l: 'event=ready' in l, 10) is not None, 'host P is up')

    g1_hosts = fu.host_addrs(fu.client_addr(c, 1, 1), 5)
    h.check(fu.client_files(c, 'g1') == sorted(g1_hosts),
            'g1 list on g1\'s filesystem names exactly its 5 lock holders')
    fu.plant_client(c, 'g1', p_addr, [p_addr])
    fu.plant_client(c, 'g1', dead, [dead])
    st = fu.status(c)
    h.check(sorted(fu.clients_of(st, 'g1')) == sorted(g1_hosts),
            'a does not know the planted entries (they are only on disk)')
    state0 = fu.read_state(c, 'g1')
    g2s, g3s = fu.read_state(c, 'g2'), fu.read_state(c, 'g3')

    cap = fu.Capture(h, 'net 127.71.%d.0/24 or net 127.72.%d.0/24 or net 127.73.%d.0/24 '
                        'or net 127.74.%d.0/24' % ((c.slot,) * 4))
    t_kill = time.monotonic()
    c.kill9('a')
    st = fu.wait_group(h, c, 'g1', owner='b', timeout=10)
    log('g1 on b after %.3f s' % (time.monotonic() - t_kill))
    state1 = fu.read_state(c, 'g1')
    h.check(state1 is not None and state0 is not None and state1 > state0 and state1 % 2 == 1,
            'g1 state number increased and is odd (%s -> %s)' % (state0, state1))
    h.check(st['g1']['state'] == 'grace', 'g1 in grace on b: recovery started')

    n = h1.wait_count('reclaim-done', 5, 15, since=t_kill)
    h.check(n == 5, 'all 5 g1 hosts finished reclaiming (%d)' % n)
    h.check(hp.wait_count('notify', 1, 10, since=t_kill) == 1,
            'planted host P got SM_NOTIFY: b notified from the list on g1\'s storage')
    fu.check_notified(h, h1, v1, state1, t_kill, nhosts=5, what='g1: ')
    fu.check_notified(h, hp, v1, state1, t_kill, nhosts=1, what='planted P: ')

    blog = fu.node_log(c.nodes['b'])
    m = re.findall(r'group=g1 notifying (\d+) client address/VIP pairs \(state (\d+)\)', blog)
    h.check(m and m[-1] == ('7', str(state1)),
            'b notifies 7 client/VIP pairs for g1 with state %s (log: %s)' % (state1, m))
    for a in g1_hosts + [p_addr]:
        h.check('group=g1 client=%s notified at %s from %s (state %s)' % (a, a, v1, state1) in blog,
                'b logs g1 client %s notified from %s' % (a, v1))

    reclaimed = h1.events('reclaimed', t_kill)
    h.check(len(reclaimed) == 5 and all(e['server'] == v1 for e in reclaimed),
            'each g1 host reclaimed its (merged) lock through %s (%d)' % (v1, len(reclaimed)))
    h.check(not h1.events('lost', t_kill), 'no g1 lock lost')
    recs = fu.record_states([h1])
    h.check(len(recs) == 5 and all(s == 'held' and r == 1 for s, r in recs.values()),
            'records: 5 g1 locks held, each reclaimed once (%s)' % sorted(recs.values()))
    st = fu.status(c)
    h.check(fu.server_set(st, 'g1') == fu.record_set([h1]),
            'b reports exactly the g1 locks the clients believe they hold')
    h.check(sorted(fu.clients_of(st, 'g1')) == sorted(g1_hosts + [p_addr, dead]),
            'b\'s g1 client list is the on-disk list, planted entries included (%s)'
            % fu.clients_of(st, 'g1'))

    # Out of grace: the reclaimed locks hold their ranges.
    st = fu.wait_group(h, c, 'g1', owner='b', states=('online',), timeout=15)
    x = fu.client_addr(c, 1, 150)
    rc, r = fu.one_shot(h, x, v1, 'lock', f1, 0, 80)
    h.check(rc == fu.EXIT_DENIED, 'after grace, a new host\'s lock over the reclaimed ranges is '
            'denied (exit %d %s)' % (rc, r.get('status')))
    rc, r = fu.one_shot(h, x, v1, 'lock', f1, 80, 10)
    h.check(rc == fu.EXIT_OK, 'after grace, a new lock on a free range of g1 is granted (exit %d)' % rc)
    fu.one_shot(h, x, v1, 'unlock', f1, 80, 10)

    cap.stop()
    pkts = cap.sm_notify()
    if pkts is not None:
        log('captured SM_NOTIFY: %s' % pkts)
        dsts = set(p[1] for p in pkts)
        h.check(set(g1_hosts + [p_addr]) <= dsts,
                'tshark: SM_NOTIFY went to every g1 host and P (%s)' % sorted(dsts))
        h.check(all(p[0] == v1 and p[2] == v1 and p[3] == str(state1) for p in pkts),
                'tshark: every SM_NOTIFY is from %s naming %s, state %s' % (v1, v1, state1))
        h.check(not any(p[1].startswith('127.72.') or p[1].startswith('127.73.') for p in pkts),
                'tshark: no SM_NOTIFY to g2/g3 hosts')
    fu.check_not_notified(h, h2, 0, 'g2: ')
    fu.check_not_notified(h, h3, 0, 'g3: ')
    h.check(fu.read_state(c, 'g2') == g2s and fu.read_state(c, 'g3') == g3s,
            'g2 and g3 state numbers unchanged')
    fu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=150)
