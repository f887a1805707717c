#!/usr/bin/env python3
"""
Claims 9, 10, 16, 17, 19, 25, 26, 31, 37: while a failed-over group G1 is
recovering on node B, B's other group G2 is not recovered and keeps
granting locks.

Cluster: nodes a, b, c; g1 (a b c), g2 (b a c), g3 (c a b).  Clients:
  g1: 4 hosts x 3 locks (127.71.S.1-4) on g1's VIP
  g2: 3 hosts x 2 locks (127.72.S.1-3) on g2's VIP
  g3: 2 hosts x 1 lock  (127.73.S.1-2)
  g2 loop: 127.72.S.100 locks/unlocks one byte in g2 for the whole test.

kill -9 a.  Then, during g1's grace on b:
  * every g1 host gets SM_NOTIFY from g1's VIP naming g1's VIP with g1's
    new state number, and reclaims every lock; b then reports exactly the
    locks the g1 clients believe they hold (claims 3-5 in passing);
  * sandwich: status says g1 in grace; a new g1 lock is refused (exit 2);
    a new g2 lock is granted (exit 0); a new g1 lock is refused again;
    status still says g1 in grace (claims 9, 17, 25, 31, 37);
  * g2 never enters grace and never leaves b (sgnfsctl status sampled
    every 50 ms for the whole test), g2's hosts get no SM_NOTIFY, g2's
    state number and g2's locks on b are unchanged, b logs no recovery for
    g2, and the g2 loop sees zero refusals (claims 10, 16, 19, 26);
  * g3 (on c) likewise untouched.
"""

import time

import harness
import fo_util as fu
from harness import log


def test(h):
    c = fu.three_nodes(h, [('g1', 'abc', 30), ('g2', 'bac'), ('g3', 'cab')],
                       # claim 8's period refuses every new lock: the plain grace
                       # (with the journal, grace refuses only what conflicts:
                       # test_journal_recovery)
                       journal=False)
    fu.start_nodes(h, c)
    st = fu.wait_for_status(h, c, lambda s: s.get('g1', {}).get('owner') == 'a'
                            and s.get('g2', {}).get('owner') == 'b'
                            and s.get('g3', {}).get('owner') == 'c', 10, 'placement')
    v1, v2, v3 = (c.group(g).vip for g in ('g1', 'g2', 'g3'))
    f1, f2, f3 = (fu.lock_file(c, g) for g in ('g1', 'g2', 'g3'))

    h1 = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 10, per_host=3, nhosts=4, tag='g1')
    h2 = fu.Hold(h, fu.client_addr(c, 2, 1), v2, f2, 0, 10, per_host=2, nhosts=3, tag='g2')
    h3 = fu.Hold(h, fu.client_addr(c, 3, 1), v3, f3, 0, 10, per_host=1, nhosts=2, tag='g3')
    for ho in (h1, h2, h3):
        h.require(ho.wait_holding(), '%s x%d holds its initial locks' % (ho.addr, ho.nhosts))
    loop2 = fu.LockLoop(h, fu.client_addr(c, 2, 100), v2, f2, start=5000, tag='loop2').begin()

    st = fu.status(c)
    g2_locks_before = fu.server_set(st, 'g2')
    g3_locks_before = fu.server_set(st, 'g3')
    h.check(fu.record_set([h2]) <= g2_locks_before and len(g2_locks_before) >= 3,
            'before: b reports the g2 locks the g2 hosts hold (%d)' % len(g2_locks_before))
    g1_state0 = fu.read_state(c, 'g1')
    g2_state0 = fu.read_state(c, 'g2')
    g3_state0 = fu.read_state(c, 'g3')
    h.check(g1_state0 is not None and g1_state0 % 2 == 1,
            'g1 state number is odd while up (%s)' % g1_state0)
    b_log_g2_notify0 = fu.node_log(c.nodes['b']).count('group=g2 notifying')

    cap = fu.Capture(h, 'net 127.71.%d.0/24 or net 127.72.%d.0/24 or net 127.73.%d.0/24'
                     % (c.slot, c.slot, c.slot))
    poller = fu.Poller(c, 0.05)
    time.sleep(0.5)
    t_kill = time.monotonic()
    c.kill9('a')

    # -- g1 comes up on b, in grace -------------------------------------
    st = fu.wait_group(h, c, 'g1', owner='b', timeout=10)
    log('g1 on b after %.3f s: %s' % (time.monotonic() - t_kill, fu.summary(st)))
    h.check(st['g1']['state'] == 'grace', 'g1 is in grace on b after the failover')
    g1_state = fu.read_state(c, 'g1')
    h.check(g1_state is not None and g1_state > g1_state0 and g1_state % 2 == 1,
            'g1 state number increased and is odd (%s -> %s)' % (g1_state0, g1_state))

    # -- the sandwich: g1 refuses, g2 grants, in the same grace period ------
    t_s0 = time.monotonic()
    st0 = fu.status(c)
    rc1, r1 = fu.one_shot(h, fu.client_addr(c, 1, 200), v1, 'lock', f1, 900, 1)
    rc2, r2 = fu.one_shot(h, fu.client_addr(c, 2, 200), v2, 'lock', f2, 900, 1)
    rc3, r3 = fu.one_shot(h, fu.client_addr(c, 1, 201), v1, 'lock', f1, 901, 1)
    rct, rt = fu.one_shot(h, fu.client_addr(c, 1, 202), v1, 'test', f1, 0, 1)
    st1 = fu.status(c)
    t_s1 = time.monotonic()
    log('sandwich took %.3f s' % (t_s1 - t_s0))
    h.check(st0.get('g1', {}).get('state') == 'grace' and st1.get('g1', {}).get('state') == 'grace',
            'g1 is in grace before and after the sandwich (%s, %s)'
            % (st0.get('g1', {}).get('state'), st1.get('g1', {}).get('state')))
    h.check(rc1 == fu.EXIT_GRACE and r1.get('status') == 'grace',
            'new lock in g1 during its grace refused: exit 2, grace (got %d %s)' % (rc1, r1.get('status')))
    h.check(rc2 == fu.EXIT_OK and r2.get('status') == 'granted',
            'new lock in g2 on b granted during g1\'s grace: exit 0 (got %d %s)' % (rc2, r2.get('status')))
    h.check(rc3 == fu.EXIT_GRACE, 'second new lock in g1 refused too: exit 2 (got %d)' % rc3)
    h.check(rct == fu.EXIT_GRACE and rt.get('status') == 'grace',
            'TEST in g1 during grace refused with grace (got %d %s)' % (rct, rt.get('status')))
    rcu, _ = fu.one_shot(h, fu.client_addr(c, 2, 200), v2, 'unlock', f2, 900, 1)
    h.check(rcu == 0, 'the new g2 lock is released again (exit %d)' % rcu)

    # -- g1's clients reclaim ----------------------------------------------
    n = h1.wait_count('reclaim-done', 4, 15, since=t_kill)
    h.check(n == 4, 'all 4 g1 hosts finished reclaiming (%d)' % n)
    fu.check_notified(h, h1, v1, g1_state, t_kill, nhosts=4, what='g1: ')
    lost = h1.events('lost', t_kill)
    h.check(not lost, 'no g1 lock was lost%s' % ('' if not lost else ': %s' % lost[:3]))
    recs = fu.record_states([h1])
    h.check(recs and all(s == 'held' and r >= 1 for s, r in recs.values()),
            'every g1 lock in the clients\' records is held and was reclaimed (%d)' % len(recs))
    st = fu.status(c)
    h.check(fu.server_set(st, 'g1') == fu.record_set([h1]),
            'b reports exactly the g1 locks the g1 clients believe they hold (%d)'
            % len(fu.record_set([h1])))
    h.check(st.get('g1', {}).get('state') == 'grace', 'g1 still in grace after reclaims')
    t_end = time.monotonic()
    # keep watching a little longer
    time.sleep(1.0)
    t_end2 = time.monotonic()
    loop2.end()
    poller.stop()
    cap.stop()
    pkts = cap.sm_notify()
    if pkts is not None:
        log('captured SM_NOTIFY: %s' % pkts)
        h.check(len(set(p[1] for p in pkts)) == 4,
                'tshark: SM_NOTIFY reached 4 g1 hosts (%s)' % sorted(set(p[1] for p in pkts)))
        h.check(all(p[0] == v1 and p[2] == v1 and p[3] == str(g1_state) and
                    p[1].startswith('127.71.') for p in pkts),
                'tshark: every SM_NOTIFY is from %s, names %s, state %s, to a g1 host'
                % (v1, v1, g1_state))

    # -- g2 and g3 untouched -------------------------------------------------
    fu.check_never_left(h, poller, 'g2', 'b', t_kill - 0.5, t_end2, ' (kill to end)')
    fu.check_never_left(h, poller, 'g3', 'c', t_kill - 0.5, t_end2, ' (kill to end)')
    g1_grace = [s for s in poller.states('g1', t_kill) if s[1] == 'grace']
    h.check(len(g1_grace) >= 3, 'the poller did see g1 in grace (%d samples): it would see g2\'s'
            % len(g1_grace))
    fu.check_not_notified(h, h2, 0, 'g2: ')
    fu.check_not_notified(h, loop2.hold, 0, 'g2 loop: ')
    fu.check_not_notified(h, h3, 0, 'g3: ')
    h.check(not h2.events('reclaim-start', 0), 'g2 hosts started no reclaim')
    h.check(fu.read_state(c, 'g2') == g2_state0,
            'g2 state number unchanged (%s -> %s)' % (g2_state0, fu.read_state(c, 'g2')))
    h.check(fu.read_state(c, 'g3') == g3_state0,
            'g3 state number unchanged (%s -> %s)' % (g3_state0, fu.read_state(c, 'g3')))
    st = fu.status(c)
    h.check(fu.server_set(st, 'g2') >= g2_locks_before - set(x for x in g2_locks_before if x[0] == fu.client_addr(c, 2, 100)),
            'the g2 locks held before the failover are still held on b')
    h.check(fu.record_set([h2]) <= fu.server_set(st, 'g2'),
            'b still reports every g2 lock the g2 hosts hold')
    h.check(fu.server_set(st, 'g3') == g3_locks_before, 'g3 locks on c unchanged')
    blog = fu.node_log(c.nodes['b'])
    h.check(blog.count('group=g2 notifying') == b_log_g2_notify0,
            'b started no notification for g2')
    h.check('group=g2 grace started' not in blog, 'b never started grace for g2')

    ops = loop2.window(t_kill, t_end)
    refused = loop2.refusals(t_kill, t_end2)
    h.check(len(ops) >= 10, 'g2 loop ran %d lock/unlock operations between kill and reclaim-done'
            % len(ops))
    h.check(not refused, 'g2 loop: zero refusals during g1\'s failover and grace%s'
            % ('' if not refused else ': %s' % refused[:5]))
    log('g2 loop: %d ops in the window, longest gap without a grant %.3f s'
        % (len(ops), loop2.max_gap(t_kill, t_end)))
    # The longest gap is reported above, not asserted (a loaded machine
    # stretches it); that g2 kept granting *during* g1's failover is an
    # order: grants that began after the kill and ended before g1 was back.
    inside = [r for r in ops if r[0] >= t_kill and r[1] <= t_end and r[3] == 'granted']
    h.check(len(inside) >= 1, 'g2 loop: %d grants began after the kill and completed before '
            'g1\'s recovery was over' % len(inside))
    fu.check_no_sanitizer_report(h, c)
    fu.check_no_daemon_errors(h, c)


harness.main(test, timeout=150)
