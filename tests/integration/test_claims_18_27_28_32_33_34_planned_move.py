#!/usr/bin/env python3
"""
Claims 18, 27, 28, 32, 33, 34: a planned move of g1 from node a to node b
(`sgnfsctl move g1 b`) recovers g1's locks on b, while the locks of the
other groups are maintained and their locking service is not interrupted,
both on the node g1 leaves (a, serving g3: claim 18) and on the node g1
arrives at (b, serving g2: claims 27, 28, 33, 34).

Cluster: nodes a, b, c; g1 (a b c, grace 20 s), g2 (b a c), g3 (a c b).
Hosts: g1 3 x 2 locks, g2 2 x 1, g3 2 x 1, plus two loop hosts that
lock and unlock one byte as fast as they can in g3 (on a) and in g2 (on b)
for the whole move.

Checked:
  * the move: g1 leaves a and comes up on b in grace, state number up and
    odd; its hosts are notified from g1's VIP and reclaim everything; b
    holds exactly what they believe they hold;
  * both loops: zero refusals (no grace, no error, no timeout) and no
    pause of 1 s or more, from the move request until g1's reclaims are
    done plus 1 s;
  * g2 and g3 stay online on their nodes in every status sample (every
    50 ms), and in every sample their holders' locks are all present;
  * g2/g3 hosts get no SM_NOTIFY; g2/g3 state numbers unchanged; a never
    takes g3 offline;
  * during g1's grace, a new lock in g1 is refused (exit 2) while new
    locks in g3 (on a) and g2 (on b) are granted.
"""

import time

import harness
import fo_util as fu
from harness import log


def test(h):
    c = fu.three_nodes(h, [('g1', 'abc', 20), ('g2', 'bac'), ('g3', 'acb')],
                       # the plain grace of claim 8 (the journal's grace is
                       # tested in test_journal_recovery)
                       journal=False)
    fu.start_nodes(h, c)
    v1, v2, v3 = (c.group(g).vip for g in ('g1', 'g2', 'g3'))
    f1, f2, f3 = (fu.lock_file(c, g) for g in ('g1', 'g2', 'g3'))

    h1 = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 10, per_host=2, nhosts=3, tag='g1')
    h2 = fu.Hold(h, fu.client_addr(c, 2, 1), v2, f2, 0, 10, per_host=1, nhosts=2, tag='g2')
    h3 = fu.Hold(h, fu.client_addr(c, 3, 1), v3, f3, 0, 10, per_host=1, nhosts=2, tag='g3')
    for ho in (h1, h2, h3):
        h.require(ho.wait_holding(), '%s x%d holds its initial locks' % (ho.addr, ho.nhosts))
    loop3 = fu.LockLoop(h, fu.client_addr(c, 3, 100), v3, f3, start=5000, tag='loop3').begin()
    loop2 = fu.LockLoop(h, fu.client_addr(c, 2, 100), v2, f2, start=5000, tag='loop2').begin()
    held2, held3 = fu.record_set([h2]), fu.record_set([h3])
    s1_0, s2_0, s3_0 = (fu.read_state(c, g) for g in ('g1', 'g2', 'g3'))
    poller = fu.Poller(c, 0.05)
    time.sleep(0.5)

    t_move = time.monotonic()
    rc, out = fu.ctl(h, c, 'move', 'g1', 'b')
    h.check('"released"' in out, 'a released g1 for b (%s)' % out.strip().replace('\n', ' | '))
    st = fu.wait_group(h, c, 'g1', owner='b', timeout=15)
    t_up = time.monotonic()
    log('g1 up on b %.3f s after the move request' % (t_up - t_move))
    h.check(st['g1']['state'] == 'grace', 'g1 comes up on b in grace')
    s1 = fu.read_state(c, 'g1')
    h.check(s1 is not None and s1 > s1_0 and s1 % 2 == 1,
            'g1 state number up and odd (%s -> %s)' % (s1_0, s1))

    # during g1's grace
    rc1, _ = fu.one_shot(h, fu.client_addr(c, 1, 200), v1, 'lock', f1, 900, 1)
    rc3, _ = fu.one_shot(h, fu.client_addr(c, 3, 200), v3, 'lock', f3, 900, 1)
    rc2, _ = fu.one_shot(h, fu.client_addr(c, 2, 200), v2, 'lock', f2, 900, 1)
    rc1b, _ = fu.one_shot(h, fu.client_addr(c, 1, 200), v1, 'lock', f1, 900, 1)
    h.check(fu.status(c)['g1']['state'] == 'grace', 'g1 still in grace after the probes')
    h.check(rc1 == fu.EXIT_GRACE and rc1b == fu.EXIT_GRACE,
            'new g1 lock during g1\'s grace refused, exit 2 (%d, %d)' % (rc1, rc1b))
    h.check(rc3 == fu.EXIT_OK, 'new g3 lock on a (the node g1 left) granted meanwhile (exit %d)' % rc3)
    h.check(rc2 == fu.EXIT_OK, 'new g2 lock on b (the node g1 came to) granted meanwhile (exit %d)'
            % rc2)
    fu.one_shot(h, fu.client_addr(c, 3, 200), v3, 'unlock', f3, 900, 1)
    fu.one_shot(h, fu.client_addr(c, 2, 200), v2, 'unlock', f2, 900, 1)

    n = h1.wait_count('reclaim-done', 3, 15, since=t_move)
    h.check(n == 3, 'all 3 g1 hosts finished reclaiming (%d)' % n)
    t_done = time.monotonic()
    log('g1 reclaims done %.3f s after the move request' % (t_done - t_move))
    fu.check_notified(h, h1, v1, s1, t_move, nhosts=3, what='g1: ')
    recs = fu.record_states([h1])
    h.check(recs and all(s == 'held' and r == 1 for s, r in recs.values()),
            'every g1 lock held and reclaimed once (%s)' % sorted(recs.values()))
    h.check(fu.server_set(fu.status(c), 'g1') == fu.record_set([h1]),
            'b holds exactly the g1 locks the clients believe they hold')
    time.sleep(1.0)
    t_end = time.monotonic()
    loop3.end()
    loop2.end()
    poller.stop()

    for name, lp in (('g3 on a', loop3), ('g2 on b', loop2)):
        ops = lp.window(t_move, t_end)
        ref = lp.refusals(t_move, t_end)
        gap = lp.max_gap(t_move, t_end)
        log('%s loop: %d ops during the move, longest gap without a grant %.3f s'
            % (name, len(ops), gap))
        h.check(len(ops) >= 20, '%s loop ran %d operations during the move' % (name, len(ops)))
        h.check(not ref, '%s loop: zero refusals during the move%s'
                % (name, '' if not ref else ': %s' % ref[:5]))
        inside = [r for r in ops if r[0] >= t_move and r[1] <= t_end and r[3] == 'granted']
        h.check(len(inside) >= 1, '%s loop: %d grants began and completed during the move '
                '(the gap is reported, not asserted)' % (name, len(inside)))

    fu.check_never_left(h, poller, 'g3', 'a', t_move, t_end, ' (move)')
    fu.check_never_left(h, poller, 'g2', 'b', t_move, t_end, ' (move)')
    for g, held, owner in (('g2', held2, 'b'), ('g3', held3, 'a')):
        missing = [round(t - t_move, 3) for t, st in poller.answered(owner, t_move, t_end)
                   if not held <= fu.server_set(st, g)]
        h.check(not missing, '%s: its holders\' %d locks are present in every status sample '
                'during g1\'s recovery%s' % (g, len(held), '' if not missing else
                                               ' (missing at %s)' % missing[:5]))
    for ho, what in ((h2, 'g2: '), (h3, 'g3: '), (loop2.hold, 'g2 loop: '), (loop3.hold, 'g3 loop: ')):
        fu.check_not_notified(h, ho, 0, what)
    h.check(fu.read_state(c, 'g2') == s2_0 and fu.read_state(c, 'g3') == s3_0,
            'g2 and g3 state numbers unchanged')
    alog = fu.node_log(c.nodes['a'])
    h.check('group=g1 planned move from node a to node b' in alog, 'a logs the planned move')
    h.check('group=g3 going offline' not in alog.split('group=g3 online on node a')[-1],
            'a never takes g3 offline during the move')
    h.check('group=g2 grace' not in fu.node_log(c.nodes['b']), 'b never starts grace for g2')
    fu.check_no_sanitizer_report(h, c)
    fu.check_no_daemon_errors(h, c)


harness.main(test, timeout=150)
