#!/usr/bin/env python3
"""
Claims 8, 15, 24, 30, 36: after a failover the new node starts a period
(grace) for g1's clients to reclaim, during which it grants no new lock
on g1's filesystems; reclaims are granted.  The period is g1's alone and
ends at its timeout; a group with an empty client list has none.

Cluster: nodes a, b, c; g1 (a b c, grace 5 s), g2 (b a c), g3 (c a b).
g1: 3 hosts x 2 locks.

  * At start every group comes up without grace (empty lists), and a
    reclaim outside grace is refused (DENIED_NOLOCKS, exit 1).
  * kill -9 a: g1 comes up on b in grace.  For the whole grace period a
    new host's LOCK is refused with exit 2 (tried every ~0.2 s), and also
    TEST, SHARE and a new lock by an existing g1 client; a reclaim of a
    free range by a new host is granted, a conflicting reclaim is DENIED,
    UNLOCK is served; the g1 hosts reclaim everything.  Status shows g1 in
    grace with grace_left falling, never above 5.
  * Grace ends at its timeout: the first new g1 lock after it is granted;
    the measured period (status polling and b's log) is 5 s +- slack.
  * g2 on b grants new locks all the while.
  * kill -9 c: g3, whose client list is empty, comes online on its next
    node without grace and grants a new lock at once.
"""

import time

import harness
import fo_util as fu
from harness import log

GRACE = 5


def test(h):
    c = fu.three_nodes(h, [('g1', 'abc', GRACE), ('g2', 'bac'), ('g3', 'cab')],
                       # claim 8's period refuses every new lock: the plain grace
                       # (with the journal, grace refuses only what conflicts:
                       # test_journal_recovery)
                       journal=False)
    st = fu.start_nodes(h, c)
    h.check(all(st[g]['state'] == 'online' for g in ('g1', 'g2', 'g3')),
            'with empty client lists every group comes up without grace (%s)' % fu.summary(st))
    v1, v2, v3 = (c.group(g).vip for g in ('g1', 'g2', 'g3'))
    f1, f2, f3 = (fu.lock_file(c, g) for g in ('g1', 'g2', 'g3'))

    rc, r = fu.one_shot(h, fu.client_addr(c, 1, 90), v1, 'lock', f1, 3000, 1, extra=['--reclaim'])
    h.check(rc == fu.EXIT_DENIED and r.get('status') == 'denied_nolocks',
            'a reclaim outside grace is refused: exit 1, denied_nolocks (got %d %s)'
            % (rc, r.get('status')))

    h1 = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 10, per_host=2, nhosts=3, tag='g1')
    h.require(h1.wait_holding(), 'g1 hosts hold their locks')
    poller = fu.Poller(c, 0.05)

    t_kill = time.monotonic()
    c.kill9('a')
    st = fu.wait_group(h, c, 'g1', owner='b', timeout=10)
    t_up = time.monotonic()
    h.check(st['g1']['state'] == 'grace' and 0 < st['g1']['grace_left'] <= GRACE,
            'g1 comes up on b in grace, grace_left %s <= %d' % (st['g1'].get('grace_left'), GRACE))

    # -- inside grace --------------------------------------------------------
    newh = fu.client_addr(c, 1, 100)
    rc, r = fu.one_shot(h, newh, v1, 'lock', f1, 2000, 1)
    h.check(rc == fu.EXIT_GRACE and r.get('status') == 'grace',
            'grace: new LOCK by a new host refused, exit 2 (got %d %s)' % (rc, r.get('status')))
    rc, r = fu.one_shot(h, newh, v1, 'test', f1, 2000, 1)
    h.check(rc == fu.EXIT_GRACE, 'grace: TEST refused, exit 2 (got %d %s)' % (rc, r.get('status')))
    rc, r = fu.one_shot(h, newh, v1, 'share', f1)
    h.check(rc == fu.EXIT_GRACE, 'grace: new SHARE refused, exit 2 (got %d %s)' % (rc, r.get('status')))
    r = h1.command('@#0 lock %s 2100 1' % f1)
    h.check(r is not None and r.get('status') == 'grace',
            'grace: a new lock by an existing g1 client refused with grace (%s)'
            % (r and r.get('status')))
    rh = fu.client_addr(c, 1, 101)
    rc, r = fu.one_shot(h, rh, v1, 'lock', f1, 2200, 5, extra=['--reclaim'])
    h.check(rc == fu.EXIT_OK, 'grace: a reclaim of a free range is granted (exit %d %s)'
            % (rc, r.get('status')))
    h.check(h1.wait_count('reclaim-done', 3, 10, since=t_kill) == 3, 'g1 hosts reclaimed')
    rc, r = fu.one_shot(h, fu.client_addr(c, 1, 102), v1, 'lock', f1, 0, 10, extra=['--reclaim'])
    h.check(rc == fu.EXIT_DENIED and r.get('status') == 'denied',
            'grace: a reclaim conflicting with a reclaimed lock is denied (exit %d %s)'
            % (rc, r.get('status')))
    rc, r = fu.one_shot(h, rh, v1, 'unlock', f1, 2200, 5)
    h.check(rc == fu.EXIT_OK, 'grace: UNLOCK is served (exit %d)' % rc)
    rc, r = fu.one_shot(h, fu.client_addr(c, 2, 100), v2, 'lock', f2, 2000, 1)
    h.check(rc == fu.EXIT_OK, 'grace of g1: a new lock in g2 (on b) is granted (exit %d)' % rc)
    fu.one_shot(h, fu.client_addr(c, 2, 100), v2, 'unlock', f2, 2000, 1)
    h.check(fu.status(c)['g1']['state'] == 'grace', 'g1 still in grace after these checks')
    recs = fu.record_states([h1])
    h.check(len(recs) == 3 and all(s == 'held' and n == 1 for s, n in recs.values()),
            'every g1 lock reclaimed (%s)' % sorted(recs.values()))

    # -- keep asking for a new lock until one is granted ----------------------
    tries = []
    deadline = time.monotonic() + GRACE + 10
    granted_at = None
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        before = fu.status(c).get('g1', {}).get('state')
        rc, r = fu.one_shot(h, newh, v1, 'lock', f1, 2000, 1)
        tries.append((round(t0 - t_up, 2), before, rc))
        if rc == fu.EXIT_OK:
            granted_at = time.monotonic()
            break
        time.sleep(0.2)
    poller.stop()
    log('new-lock attempts (s since g1 up, status before, exit): %s' % tries)
    h.check(granted_at is not None, 'a new g1 lock is granted once grace ends')
    bad = [t for t in tries[:-1] if t[2] != fu.EXIT_GRACE]
    h.check(not bad, 'every refused attempt was refused for grace (exit 2): %s' % (bad or 'yes'))
    h.check(all(t[1] == 'grace' for t in tries[:-1]),
            'status said grace before every refused attempt')
    if granted_at:
        h.check(granted_at - t_up >= GRACE - 1.0,
                'no new g1 lock granted before the grace timeout (first after %.2f s)'
                % (granted_at - t_up))
    graces = [s for s in poller.states('g1', t_kill) if s[1] == 'grace']
    onl = [s for s in poller.states('g1', t_kill) if s[1] == 'online']
    if graces and onl:
        dur = onl[0][0] - graces[0][0]
        log('g1 grace as seen by sgnfsctl status: %.2f s (configured %d)' % (dur, GRACE))
        # Only the lower bound is the claim (grace is not cut short); a
        # loaded machine may end it late, which is no failure.
        h.check(GRACE - 1.0 <= dur, 'grace lasted %.2f s, not less than configured (%d s)'
                % (dur, GRACE))
    blog = fu.node_log(c.nodes['b'])
    ts_s = fu.log_times(c.nodes['b'], 'group=g1 grace started')
    ts_e = fu.log_times(c.nodes['b'], 'group=g1 grace ended')
    if h.check(ts_s and ts_e, 'b logs grace start and end for g1'):
        log('g1 grace per b\'s log: %.3f s' % fu.sod_delta(ts_e[-1], ts_s[-1]))
        h.check(fu.sod_delta(ts_e[-1], ts_s[-1]) >= GRACE - 0.5,
                'logged grace is not shorter than %d s' % GRACE)
    h.check('group=g2 grace' not in blog, 'b never started a grace for g2')
    fu.check_never_left(h, poller, 'g2', 'b', t_kill, granted_at or time.monotonic(),
                        ' (g1\'s whole grace)')
    maxleft = max((st.get('g1', {}).get('grace_left', 0) for t, st in poller.samples), default=0)
    h.check(maxleft <= GRACE, 'grace_left never above %d (max %d)' % (GRACE, maxleft))
    lefts = [st['g1']['grace_left'] for t, st in poller.samples
             if st.get('g1', {}).get('state') == 'grace']
    h.check(lefts and lefts == sorted(lefts, reverse=True) and lefts[0] > lefts[-1],
            'grace_left counts down (%s ... %s)' % (lefts[:1], lefts[-1:]))
    fu.one_shot(h, newh, v1, 'unlock', f1, 2000, 1)

    # -- a group with an empty client list: no grace ---------------------------
    h.check(fu.client_files(c, 'g3') == [], 'g3 client list is empty')
    t3 = time.monotonic()
    c.kill9('c')
    st = fu.wait_group(h, c, 'g3', owner='b', timeout=10)
    h.check(st['g3']['state'] == 'online', 'g3 (empty list) comes up on b without grace (%s)'
            % st['g3']['state'])
    rc, r = fu.one_shot(h, fu.client_addr(c, 3, 1), v3, 'lock', f3, 0, 1)
    h.check(rc == fu.EXIT_OK, 'g3 grants a new lock right after its takeover (exit %d, %.3f s '
            'after kill)' % (rc, time.monotonic() - t3))
    blog = fu.node_log(c.nodes['b'])
    h.check('group=g3 client list is empty: no grace needed' in blog and
            'group=g3 grace started' not in blog, 'b logs no grace for g3')
    fu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=150)
