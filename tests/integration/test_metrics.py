"""
test_metrics.py - the Prometheus metrics (docs/metrics.md) move as the
cluster does, scraped over HTTP (metrics_listen, libmicrohttpd) and through
`sgnfsctl metrics`, in order:

  1. nodes a (g1, journal off, grace 20) and b (g2, journal on) serve;
     every scrape is a valid exposition (a TYPE before each family, one
     TYPE per family, cumulative histograms); other paths are 404, POST
     is 405; `sgnfsctl metrics b` has the same families as HTTP, and
     `sgnfsctl metrics` one exposition with the samples of a and b;
  2. a lock/unlock loop against g2: on b, LOCK and UNLOCK calls of g2
     (nlockmgr v4, success) grew by exactly the operations the loop made,
     their latency histograms counted as many, the journal made batches
     and timed as many fsyncs, bytes and connections moved; g1's counters
     on a did not; with poll_spin_us = 1000 b's loop counted spins after
     the calls, a's (no input) none;
  3. a host holds a lock in g1: a shows 1 lock and 1 client in g1;
  4. kill -9 a: on b, g1's takeovers went 0 -> 1 with one takeover
     duration observed, g1 is in grace with seconds left, one SM_NOTIFY
     was sent and answered, the reclaimed lock is counted on b; g2 stayed
     online and out of grace in every scrape.
"""

import os
import signal
import time
import urllib.error
import urllib.request

import harness
from harness import TestAbort, log
import fo_util as fu
import ops_util as ou

PORT = 19100


def scrape(h, url):
    with urllib.request.urlopen(url, timeout=10) as r:
        ctype = r.headers.get('Content-Type', '')
        text = r.read().decode()
    s, types, problems = ou.parse_metrics(text)
    h.check(not problems and ctype.startswith('text/plain; version=0.0.4'),
            'scrape %s: a valid exposition (%s)' % (url, problems[:3] or ctype))
    return s, types


def test(h):
    # Busy polling at its bound (1 ms): the loop's spins are counted.
    c = fu.three_nodes(h, [('g1', ['a', 'b'], 20), ('g2', ['b'])],
                       cluster_extra={'poll_spin_us': '1000'})
    c.group('g1').extra['journal'] = 'off'
    url = {n: 'http://127.%d.0.%d:%d/metrics' % (c.slot, i + 1, PORT)
           for i, n in enumerate(('a', 'b'))}
    ou.set_node_keys(c, {n: {'metrics_listen': url[n][7:-8]} for n in ('a', 'b')})
    fu.start_nodes(h, c, names=('a', 'b'))
    fu.wait_for_status(h, c, lambda s: all(s.get(g, {}).get('state') == 'online'
                                           for g in ('g1', 'g2')), 40, 'g1, g2 online')

    # ---- 1 ---------------------------------------------------------------
    sa0, _ = scrape(h, url['a'])
    sb0, types = scrape(h, url['b'])
    for path, code in (('/', 404), ('/metricsx', 404)):
        try:
            urllib.request.urlopen(url['b'].replace('/metrics', path), timeout=10)
            got = 200
        except urllib.error.HTTPError as e:
            got = e.code
        h.check(got == code, 'GET %s: %d (got %d)' % (path, code, got))
    try:
        urllib.request.urlopen(urllib.request.Request(url['b'], data=b'x', method='POST'),
                               timeout=10)
        got = 200
    except urllib.error.HTTPError as e:
        got = e.code
    h.check(got == 405, 'POST /metrics: 405 (got %d)' % got)
    rc, out, err = ou.ctl(c, 'metrics', 'b')
    s_ctl, types_ctl, problems = ou.parse_metrics(out)
    h.check(rc == 0 and not problems and set(types_ctl) == set(types),
            'sgnfsctl metrics b: the same families as HTTP (%d %s)' % (rc, problems[:3]))
    # every node at once: one exposition, each family once, the samples of
    # both running nodes in it (a concatenation repeats every TYPE); node c
    # is configured but not running: named on stderr, exit 1
    rc, out, err = ou.ctl(c, 'metrics')
    s_all, types_all, problems = ou.parse_metrics(out)
    nodes_all = {dict(lab).get('node') for (_, lab) in s_all}
    h.check(not problems and set(types_all) == set(types) and nodes_all == {'a', 'b'},
            'sgnfsctl metrics (every node): one valid exposition with the same families and '
            'samples of a and b (%s %s)' % (problems[:3], sorted(x for x in nodes_all if x)))
    h.check(rc == 1 and 'node c' in err, 'sgnfsctl metrics: exit 1 naming node c, which is '
            'not running (%d %r)' % (rc, err.strip()[:200]))
    for fam in ('sgnfs_rpc_calls_total', 'sgnfs_rpc_duration_seconds', 'sgnfs_nlm_locks',
                'sgnfs_nlm_clients', 'sgnfs_nlm_waiters', 'sgnfs_group_in_grace',
                'sgnfs_group_grace_remaining_seconds', 'sgnfs_journal_batches_total',
                'sgnfs_journal_gathered_total', 'sgnfs_loop_spin_hits_total',
                'sgnfs_loop_spin_misses_total',
                'sgnfs_journal_fsync_duration_seconds', 'sgnfs_nsm_notify_sent_total',
                'sgnfs_nsm_notify_answered_total', 'sgnfs_nsm_notify_given_up_total',
                'sgnfs_group_takeovers_total', 'sgnfs_group_takeover_duration_seconds',
                'sgnfs_rpc_connections', 'sgnfs_rpc_received_bytes_total',
                'sgnfs_rpc_sent_bytes_total'):
        h.check(fam in types, 'family %s is exposed' % fam)

    # ---- 2: lock workload on g2 ------------------------------------------
    loop = fu.LockLoop(h, fu.client_addr(c, 0, 1), c.group('g2').vip, fu.lock_file(c, 'g2'),
                       tag='loop-g2').begin()
    time.sleep(1.5)
    res = loop.end()
    n_lock = sum(1 for r in res if r[2] == 'lock')
    n_unlock = sum(1 for r in res if r[2] == 'unlock')
    h.require(n_lock > 0 and not loop.refusals(), 'the loop made %d LOCK and %d UNLOCK, none '
              'refused' % (n_lock, n_unlock))
    loop.hold.stop()
    sb1, _ = scrape(h, url['b'])
    sa1, _ = scrape(h, url['a'])
    g2 = dict(node='b', group='g2')

    def d(s1, s0, name, **kw):
        return ou.metric(s1, name, **kw) - ou.metric(s0, name, **kw)
    for proc, n in (('LOCK', n_lock), ('UNLOCK', n_unlock)):
        got = d(sb1, sb0, 'sgnfs_rpc_calls_total', program='nlockmgr', version='4',
                procedure=proc, status='success', **g2)
        h.check(got == n, 'g2 %s calls (nlockmgr v4, success) grew by %d (got %d)'
                % (proc, n, got))
        got = d(sb1, sb0, 'sgnfs_rpc_duration_seconds_count', program='nlockmgr',
                procedure=proc, **g2)
        h.check(got == n, 'g2 %s latency histogram counted %d (got %d)' % (proc, n, got))
    batches = d(sb1, sb0, 'sgnfs_journal_batches_total', **g2)
    fsyncs = d(sb1, sb0, 'sgnfs_journal_fsync_duration_seconds_count', **g2)
    h.check(batches >= 1 and fsyncs == batches, 'g2 journal: %d batches, %d fsyncs timed'
            % (batches, fsyncs))
    h.check(d(sb1, sb0, 'sgnfs_rpc_received_bytes_total', **g2) > 0 and
            d(sb1, sb0, 'sgnfs_rpc_sent_bytes_total', **g2) > 0 and
            d(sb1, sb0, 'sgnfs_rpc_connections_accepted_total', **g2) >= 1,
            'g2 bytes in, bytes out and accepted connections grew')
    h.check(d(sa1, sa0, 'sgnfs_rpc_calls_total', group='g1', procedure='LOCK',
              status='success') == 0, 'g1 (on a) counted no LOCK meanwhile')
    # The loop's busy polling follows the node's RPC input: b's loop
    # spun after the loop's calls (each sent right after the last reply;
    # whether a spin caught the next depends on the client getting a CPU
    # meanwhile, so both outcomes count); a had no input, so it did not.
    spin = {n: (d(s1, s0, 'sgnfs_loop_spin_hits_total', node=n),
                d(s1, s0, 'sgnfs_loop_spin_misses_total', node=n))
            for n, s1, s0 in (('a', sa1, sa0), ('b', sb1, sb0))}
    h.check(sum(spin['b']) > 0 and spin['a'] == (0, 0),
            'poll_spin_us = 1000: b\'s loop spun after calls (%d hits, %d misses); a, with no '
            'input, did not spin (%d, %d)' % (spin['b'] + spin['a']))

    # ---- 3: a lock held in g1 --------------------------------------------
    ho = fu.Hold(h, fu.client_addr(c, 1, 1), c.group('g1').vip, fu.lock_file(c, 'g1'),
                 tag='hold-g1')
    h.require(ho.wait_holding(), 'a host holds a lock in g1')
    sa2, _ = scrape(h, url['a'])
    g1a = dict(node='a', group='g1')
    h.check(ou.metric(sa2, 'sgnfs_nlm_locks', **g1a) == 1 and
            ou.metric(sa2, 'sgnfs_nlm_clients', **g1a) == 1,
            'a: g1 has 1 lock and 1 client (%s, %s)' % (ou.metric(sa2, 'sgnfs_nlm_locks', **g1a),
                                                       ou.metric(sa2, 'sgnfs_nlm_clients', **g1a)))
    h.check(ou.metric(sa2, 'sgnfs_group_takeovers_total', **g1a) == 1,
            'a: g1 came online there once')

    # ---- 4: failover -------------------------------------------------------
    sb2, _ = scrape(h, url['b'])
    g1b = dict(node='b', group='g1')
    h.check(ou.metric(sb2, 'sgnfs_group_online', **g1b) == 0 and
            ou.metric(sb2, 'sgnfs_group_takeovers_total', **g1b) == 0,
            'b: g1 not online there, no takeover yet')
    t_kill = time.monotonic()
    c.kill9('a')
    fu.wait_group(h, c, 'g1', owner='b', timeout=30)
    sb3, _ = scrape(h, url['b'])
    h.check(ou.metric(sb3, 'sgnfs_group_takeovers_total', **g1b) == 1 and
            ou.metric(sb3, 'sgnfs_group_takeover_duration_seconds_count', **g1b) == 1,
            'b: g1 takeovers 0 -> 1, one takeover duration observed')
    h.check(ou.metric(sb3, 'sgnfs_group_in_grace', **g1b) == 1 and
            0 < ou.metric(sb3, 'sgnfs_group_grace_remaining_seconds', **g1b) <= 20,
            'b: g1 in grace with %s s left' % ou.metric(sb3, 'sgnfs_group_grace_remaining_seconds',
                                                       **g1b))
    h.check(ou.metric(sb3, 'sgnfs_nsm_notify_sent_total', **g1b) == 1,
            'b: one SM_NOTIFY sent for g1 (one client, one VIP)')
    h.require(ho.wait_count('reclaim-done', 1, 20, since=t_kill) == 1, 'the host reclaimed')
    deadline = time.monotonic() + 20
    while True:
        sb4, _ = scrape(h, url['b'])
        if ou.metric(sb4, 'sgnfs_nsm_notify_answered_total', **g1b) == 1 or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    h.check(ou.metric(sb4, 'sgnfs_nsm_notify_answered_total', **g1b) == 1 and
            ou.metric(sb4, 'sgnfs_nsm_notify_given_up_total', **g1b) == 0,
            'b: the notification was answered, none given up')
    h.check(ou.metric(sb4, 'sgnfs_nlm_locks', **g1b) == 1 and
            ou.metric(sb4, 'sgnfs_rpc_calls_total', program='nlockmgr', procedure='LOCK',
                      status='success', **g1b) >= 1,
            'b: the reclaimed lock is held in g1 and its LOCK counted')
    for s in (sb0, sb1, sb2, sb3, sb4):
        if not (ou.metric(s, 'sgnfs_group_online', node='b', group='g2') == 1 and
                ou.metric(s, 'sgnfs_group_in_grace', node='b', group='g2') == 0):
            h.check(False, 'g2 online and out of grace in every scrape of b')
            break
    else:
        h.check(True, 'g2 online and out of grace in all 5 scrapes of b')
    ho.stop()
    fu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=240)
