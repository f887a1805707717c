#!/usr/bin/env python3
"""
Claims 29, 35: while g1's locks are recovered after a failover between
nodes a and b, a group served by a *different* node (g2 on c) keeps its
locks and its locking service.

Cluster: nodes a, b, c; g1 (a b c, grace 20 s), g2 (c a b), g3 (b a c).
Hosts: g1 3 x 2 locks, g2 2 x 2 locks, g3 2 x 1; a loop host locks and
unlocks in g2 (on c) all the time.

Round 1: kill -9 a; g1 goes to b.  Round 2: a is restarted and g1 is moved
back with `sgnfsctl move g1 a`.  In each round:
  * g1's hosts are notified (from/naming g1's VIP, new state) and reclaim;
    the owner holds exactly what they believe they hold;
  * a new g1 lock is refused (exit 2) while a new g2 lock is granted;
  * g2 stays online on c in every status sample; its holders' locks are
    present in every sample; the g2 loop sees zero refusals and no pause
    of 1 s; g2's hosts get no SM_NOTIFY and its state number is unchanged;
    c's log shows no recovery for g2.
"""

import time

import harness
import fo_util as fu
from harness import log


def round_checks(h, c, what, h1, h2, loop2, poller, t0, held2, s2_0, v1, v2, f1, f2, owner):
    st = fu.wait_group(h, c, 'g1', owner=owner, timeout=15)
    log('%s: g1 up on %s after %.3f s' % (what, owner, time.monotonic() - t0))
    h.check(st['g1']['state'] == 'grace', '%s: g1 in grace on %s' % (what, owner))
    s1 = fu.read_state(c, 'g1')
    rc1, _ = fu.one_shot(h, fu.client_addr(c, 1, 200), v1, 'lock', f1, 900, 1)
    rc2, _ = fu.one_shot(h, fu.client_addr(c, 2, 200), v2, 'lock', f2, 900, 1)
    h.check(rc1 == fu.EXIT_GRACE, '%s: new g1 lock refused during grace, exit 2 (%d)' % (what, rc1))
    h.check(rc2 == fu.EXIT_OK, '%s: new g2 lock on c granted meanwhile (exit %d)' % (what, rc2))
    h.check(fu.status(c)['g1']['state'] == 'grace', '%s: g1 still in grace' % what)
    fu.one_shot(h, fu.client_addr(c, 2, 200), v2, 'unlock', f2, 900, 1)
    n = h1.wait_count('reclaim-done', 3, 15, since=t0)
    h.check(n == 3, '%s: g1 hosts reclaimed (%d)' % (what, n))
    fu.check_notified(h, h1, v1, s1, t0, nhosts=3, what='%s: g1: ' % what)
    h.check(fu.server_set(fu.status(c), 'g1') == fu.record_set([h1]),
            '%s: %s holds exactly the g1 locks the clients believe they hold' % (what, owner))
    t_done = time.monotonic()
    time.sleep(0.5)
    t_end = time.monotonic()
    fu.check_never_left(h, poller, 'g2', 'c', t0, t_end, ' (%s)' % what)
    missing = [round(t - t0, 3) for t, st in poller.answered('c', t0, t_end)
               if not held2 <= fu.server_set(st, 'g2')]
    h.check(not missing, '%s: g2 holders\' locks present in every status sample%s'
            % (what, '' if not missing else ' (missing at %s)' % missing[:5]))
    ops = loop2.window(t0, t_done)
    ref = loop2.refusals(t0, t_end)
    gap = loop2.max_gap(t0, t_done)
    log('%s: g2 loop %d ops, longest gap %.3f s' % (what, len(ops), gap))
    h.check(len(ops) >= 5 and not ref, '%s: g2 loop ran %d ops with zero refusals%s'
            % (what, len(ops), '' if not ref else ': %s' % ref[:5]))
    inside = [r for r in ops if r[0] >= t0 and r[1] <= t_done and r[3] == 'granted']
    h.check(len(inside) >= 1, '%s: g2 loop: %d grants began and completed inside the window '
            '(the gap is reported, not asserted)' % (what, len(inside)))
    fu.check_not_notified(h, h2, 0, '%s: g2: ' % what)
    fu.check_not_notified(h, loop2.hold, 0, '%s: g2 loop: ' % what)
    h.check(fu.read_state(c, 'g2') == s2_0, '%s: g2 state number unchanged' % what)
    return s1


def test(h):
    c = fu.three_nodes(h, [('g1', 'abc', 20), ('g2', 'cab'), ('g3', 'bac')],
                       # the plain grace of claim 8 (the journal's grace is
                       # tested in test_journal_recovery)
                       journal=False)
    fu.start_nodes(h, c)
    v1, v2, v3 = (c.group(g).vip for g in ('g1', 'g2', 'g3'))
    f1, f2, f3 = (fu.lock_file(c, g) for g in ('g1', 'g2', 'g3'))

    h1 = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 10, per_host=2, nhosts=3, tag='g1')
    h2 = fu.Hold(h, fu.client_addr(c, 2, 1), v2, f2, 0, 10, per_host=2, nhosts=2, tag='g2')
    h3 = fu.Hold(h, fu.client_addr(c, 3, 1), v3, f3, 0, 10, per_host=1, nhosts=2, tag='g3')
    for ho in (h1, h2, h3):
        h.require(ho.wait_holding(), '%s x%d holds its initial locks' % (ho.addr, ho.nhosts))
    loop2 = fu.LockLoop(h, fu.client_addr(c, 2, 100), v2, f2, start=5000, tag='loop2').begin()
    held2 = fu.record_set([h2])
    s1_0, s2_0 = fu.read_state(c, 'g1'), fu.read_state(c, 'g2')
    clog_g2_life0 = [l for l in fu.node_log(c.nodes['c']).splitlines()
                     if 'group=g2 ' in l and 'client=' not in l]
    poller = fu.Poller(c, 0.05)
    time.sleep(0.5)

    # round 1: crash of a
    t1 = time.monotonic()
    c.kill9('a')
    s1 = round_checks(h, c, 'crash a->b', h1, h2, loop2, poller, t1, held2, s2_0, v1, v2, f1, f2, 'b')
    h.check(s1 > s1_0 and s1 % 2 == 1, 'g1 state up and odd (%s -> %s)' % (s1_0, s1))
    fu.check_not_notified(h, h3, 0, 'crash: g3 (on b): ')

    # round 2: a comes back; g1 is moved to it
    c.start('a', wait=False)
    fu.wait_for_status(h, c, lambda st: any(n['name'] == 'a' and n['up']
                                            for n in (fu.status_raw(c) or {}).get('nodes', [])),
                       10, 'node a answers')
    time.sleep(0.2)
    t2 = time.monotonic()
    fu.ctl(h, c, 'move', 'g1', 'a')
    s1b = round_checks(h, c, 'move b->a', h1, h2, loop2, poller, t2, held2, s2_0, v1, v2, f1, f2, 'a')
    h.check(s1b > s1 and s1b % 2 == 1, 'g1 state up and odd again (%s -> %s)' % (s1, s1b))

    loop2.end()
    poller.stop()
    clog = fu.node_log(c.nodes['c'])
    life = [l for l in clog.splitlines() if 'group=g2 ' in l and 'client=' not in l]
    h.check(len(life) == len(clog_g2_life0),
            'c logged no lifecycle event for g2 after the start (%s)' % life[len(clog_g2_life0):])
    h.check('group=g2 grace' not in clog and clog.count('group=g2 notifying') == 1,
            'c started no recovery for g2')
    fu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=150)
