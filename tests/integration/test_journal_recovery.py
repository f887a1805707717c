#!/usr/bin/env python3
"""
test_journal_recovery.py - recovery with the lock journal (issue 6): grace
ends when every journaled lock is back, and refuses only what conflicts.

Cluster: nodes a, b, c; g1 (a b c, grace 40 s), g2 (b c a, grace 4 s); the
journal is on (the default).

  1. Responsive clients: 5 hosts x 2 locks in g1.  kill -9 a: b takes g1,
     every host reclaims, and g1's grace ends within a second of the last
     reclaim (measured; the grace timeout is 40 s).
  2. A slow client: host S holds [1000, 1015] in g1 and is stopped
     (SIGSTOP) before b is killed, so it cannot answer SM_NOTIFY.  a (back
     up) or c takes g1.  While S has not reclaimed, in g1:
       - a new lock on a free range is granted at once (in grace);
       - a new lock on S's range is refused with the grace status, as is
         a TEST of it;
       - a new lock on a range another host reclaimed is denied;
       - g1 stays in grace.
     S is continued: the notifier's retry reaches it, it reclaims, and
     grace ends within a second of that; S's range is then denied to
     others (S holds it).
  3. A client that never comes back: host Z holds a g2 lock and is killed
     (SIGKILL) before g2's owner is; on the new owner Z's range is refused
     with the grace status until g2's 4 s timeout, then granted; the log
     says the unreclaimed lock was dropped.
"""

import os
import re
import signal
import time

import harness
import fo_util as fu
from harness import log

GRACE1 = 40
GRACE2 = 4


def grace_end_after(h, c, group, t_from, limit):
    """Seconds from @t_from until sgnfsctl shows @group out of grace."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        st = fu.status(c)
        if group in st and st[group]['state'] == 'online':
            return time.monotonic() - t_from
        time.sleep(0.02)
    return None


def lock(h, c, addr, server, path, start, length, cmd='lock', svid=7777):
    rc, _ = fu.one_shot(h, addr, server, cmd, '%s:%s' % (server, path), start, length,
                        svid=svid, timeout_ms=4000)
    return rc


def test(h):
    c = fu.three_nodes(h, [('g1', 'abc', GRACE1), ('g2', 'bca', GRACE2)])
    fu.start_nodes(h, c)
    v1, v2 = c.group('g1').vip, c.group('g2').vip
    f1, f2 = fu.lock_file(c, 'g1'), fu.lock_file(c, 'g2')
    newcomer = fu.client_addr(c, 5, 1)

    # -- 1. responsive clients ------------------------------------------------
    hr = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 8, per_host=2, nhosts=5, tag='resp')
    h.require(hr.wait_holding(), '5 g1 hosts hold their locks')
    hs = fu.Hold(h, fu.client_addr(c, 2, 1), v1, f1, 1000, 16, tag='slow')
    h.require(hs.wait_holding(), 'slow host S holds [1000, 1015] in g1')
    hz = fu.Hold(h, fu.client_addr(c, 3, 1), v2, f2, 2000, 16, tag='gone')
    h.require(hz.wait_holding(), 'host Z holds [2000, 2015] in g2')

    t_kill = time.monotonic()
    c.kill9('a')
    fu.wait_group(h, c, 'g1', owner='b', timeout=10)
    n = hr.wait_count('reclaim-done', 5, 20, since=t_kill)
    n_s = hs.wait_count('reclaim-done', 1, 20, since=t_kill)
    h.check(n == 5 and n_s == 1, 'every g1 host reclaimed after kill -9 a (%d + %d)' % (n, n_s))
    last = max(e['_t'] for e in hr.events('reclaim-done', t_kill) + hs.events('reclaim-done', t_kill))
    took = grace_end_after(h, c, 'g1', last, 10)
    # The order, not the delay: grace ended after the last reclaim and
    # before its timeout could end it (the log line below says why).
    h.check(took is not None and (last - t_kill) + took < GRACE1,
            'g1 grace ended after the last reclaim, before its %d s timeout (%s s after it; '
            'kill -> grace end %.3f s)' % (GRACE1, '%.3f' % took if took is not None else 'never',
                                           (last - t_kill) + (took or 0)))
    log_b = fu.node_log(c.nodes['b'])
    m = re.search(r'group=g1 every reservation is back \((\d+),.*?(\d+) ms into grace', log_b)
    h.check(m is not None, 'b logged why g1 grace ended early: %s' % (m.group(0) if m else None))
    c.start('a', wait=False)

    # -- 2. a slow client ----------------------------------------------------------
    os.kill(hs.proc.pid, signal.SIGSTOP)
    t_kill = time.monotonic()
    c.kill9('b')
    st = fu.wait_for_status(h, c, lambda s: s.get('g1', {}).get('owner') not in (None, 'b'),
                            10, 'g1 moves off b')
    n = hr.wait_count('reclaim-done', 5, 20, since=t_kill)
    h.check(n == 5, 'the responsive hosts reclaimed on %s (%d)' % (st['g1']['owner'], n))
    time.sleep(0.3)
    st = fu.status(c)
    h.check(st['g1']['state'] == 'grace', 'g1 stays in grace while S has not reclaimed (%s)'
            % st['g1']['state'])
    rc = lock(h, c, newcomer, v1, f1, 5000, 16)
    h.check(rc == 0, 'in grace, a new lock on a free range is granted at once (exit %d)' % rc)
    rc = lock(h, c, newcomer, v1, f1, 1004, 4)
    h.check(rc == 2, 'in grace, a new lock on S\'s range is refused with grace (exit %d)' % rc)
    rc = lock(h, c, newcomer, v1, f1, 1000, 16, cmd='test')
    h.check(rc == 2, 'in grace, TEST of S\'s range is refused with grace (exit %d)' % rc)
    rc = lock(h, c, newcomer, v1, f1, 0, 4)
    h.check(rc == 1, 'in grace, a new lock on a reclaimed range is denied (exit %d)' % rc)
    st = fu.status(c)
    h.check(st['g1']['state'] == 'grace', 'g1 still in grace after those checks')

    t_cont = time.monotonic()
    os.kill(hs.proc.pid, signal.SIGCONT)
    n_s = hs.wait_count('reclaim-done', 1, 30, since=t_kill)
    h.check(n_s == 1, 'S reclaimed once continued (%.1f s after SIGCONT)'
            % (time.monotonic() - t_cont))
    if n_s:
        t_rec = hs.events('reclaim-done', t_kill)[0]['_t']
        took = grace_end_after(h, c, 'g1', t_rec, 10)
        h.check(took is not None and (t_rec - t_kill) + took < GRACE1,
                'g1 grace ended after S\'s reclaim, before its %d s timeout (%s s after it)'
                % (GRACE1, '%.3f' % took if took is not None else 'never'))
    rc = lock(h, c, newcomer, v1, f1, 1004, 4)
    h.check(rc == 1, 'after grace, S\'s range is denied to others: S holds it (exit %d)' % rc)
    srv = fu.server_locks(fu.status(c), 'g1')
    log('g1 locks on c: %s' % (srv,))
    h.check(not fu.server_conflicts(fu.status(c), 'g1'), 'no conflicting locks in g1')
    c.start('b', wait=False)

    # -- 3. a client that never comes back ------------------------------------------
    os.kill(hz.proc.pid, signal.SIGKILL)
    hz.proc.wait()
    st = fu.status(c)
    g2_owner = st['g2']['owner']
    t_kill = time.monotonic()
    c.kill9(g2_owner)
    st = fu.wait_for_status(h, c, lambda s: s.get('g2', {}).get('owner') not in (None, g2_owner),
                            10, 'g2 moves off %s' % g2_owner)
    rc = lock(h, c, newcomer, v2, f2, 2000, 16)
    h.check(rc == 2, 'while Z has not reclaimed, its g2 range is refused with grace (exit %d)'
            % rc)
    rc = lock(h, c, newcomer, v2, f2, 3000, 16)
    h.check(rc == 0, 'a free g2 range is granted meanwhile (exit %d)' % rc)
    _, out = fu.ctl(h, c, 'status', check=False)   # 2: the killed node is down
    m = re.search(r'^g2\s+on\s+(\d+)\s', out, re.M)
    h.check(m is not None and int(m.group(1)) >= 1,
            'sgnfsctl status (text) shows g2\'s journal on, Z\'s range still reserved (%s)'
            % (m.group(0).strip() if m else None))
    took = grace_end_after(h, c, 'g2', t_kill, GRACE2 + 6)
    h.check(took is not None and took >= GRACE2 - 1,
            'g2 grace ran to its %d s timeout for Z (%s s)'
            % (GRACE2, '%.1f' % took if took is not None else 'never'))
    rc = lock(h, c, newcomer, v2, f2, 2000, 16)
    h.check(rc == 0, 'after the timeout Z\'s range is granted to others (exit %d)' % rc)
    owner = fu.status(c)['g2']['owner']
    h.check('were not reclaimed in grace: dropped' in fu.node_log(c.nodes[owner]),
            'the new owner logged the unreclaimed reservation as dropped')

    for ho in (hr, hs):
        ho.stop()
    fu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=240)
