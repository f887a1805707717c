#!/usr/bin/env python3
"""
Claims 6, 7, 14, 23: the node that takes a group over notifies the
group's clients with the group's own server identifiers, which are IP
addresses: one SM_NOTIFY per VIP of the group, sent from that VIP, with
mon_name = that VIP (the name the client monitors), never an identifier
of the node or of another group.

Cluster: nodes a, b, c; g1 (a b c) has TWO VIPs v1a, v1b; g2 (b c a) and
g3 (c a b) one each.
  * g1 hosts 127.71.S.1-3 hold locks through v1a (initial locks) AND
    through v1b (commands naming v1b:/path);
  * g1 host 127.75.S.1 uses only v1b;
  * g2 hosts 127.72.S.1-2, g3 hosts 127.73.S.1-2.

Round 1: kill -9 a; g1 goes to b (which serves g2).  Every g1 host gets
exactly one SM_NOTIFY from v1a naming v1a and one from v1b naming v1b,
both with g1's new state; locks taken through each VIP are reclaimed
through that VIP.  No SM_NOTIFY carries g2's VIP or any other address;
g2/g3 hosts get none (event lines and tshark).

Round 2: kill -9 b; g1 and g2 both go to c.  g1 hosts again get one
notification per g1 VIP only; g2 hosts get notifications from and naming
g2's VIP only; each carries its own group's state number.
"""

import collections
import time

import harness
import fo_util as fu
from harness import log


def per_vip(ho, since):
    """{(host, from, mon_name, state): count} of @ho's notifications."""
    out = collections.Counter()
    for e in ho.events('notify', since):
        out[(e['host'], e['from'], e['mon_name'], e['state'])] += 1
    return out


def check_round(h, c, holds, vips, state, since, what):
    """Each host of @holds got exactly one notification per VIP of @vips,
    from it and naming it, with @state, and nothing else."""
    for ho in holds:
        got = per_vip(ho, since)
        want = collections.Counter()
        for a in fu.host_addrs(ho.addr, ho.nhosts):
            for v in vips:
                want[(a, v, v, str(state))] = 1
        h.check(got == want, '%s: hosts of %s got exactly one SM_NOTIFY per VIP %s, from it, '
                'naming it, state %s%s' % (what, ho.addr, vips, state,
                                           '' if got == want else ' (got %s)' % dict(got)))


def test(h):
    gs = [('g1', 'abc', 20), ('g2', 'bca'), ('g3', 'cab')]
    c = fu.three_nodes(h, gs)
    # a second VIP for g1: rewrite the config before any node starts
    c.group('g1').nvips = 2
    c.group('g1').vips = [c.group('g1').vips[0], c.group('g1').vips[0][:-1] + '2']
    c.write_config()
    fu.start_nodes(h, c)
    v1a, v1b = c.group('g1').vips
    v2, v3 = c.group('g2').vip, c.group('g3').vip
    f1, f2, f3 = (fu.lock_file(c, g) for g in ('g1', 'g2', 'g3'))
    c.wait_vip(v1b)

    h1 = fu.Hold(h, fu.client_addr(c, 1, 1), v1a, f1, 0, 10, per_host=1, nhosts=3, tag='g1')
    h1b = fu.Hold(h, fu.client_addr(c, 5, 1), v1b, f1, 500, 10, per_host=1, nhosts=1, tag='g1b')
    h2 = fu.Hold(h, fu.client_addr(c, 2, 1), v2, f2, 0, 10, per_host=1, nhosts=2, tag='g2')
    h3 = fu.Hold(h, fu.client_addr(c, 3, 1), v3, f3, 0, 10, per_host=1, nhosts=2, tag='g3')
    for ho in (h1, h1b, h2, h3):
        h.require(ho.wait_holding(), '%s x%d holds its initial locks' % (ho.addr, ho.nhosts))
    for i in range(3):
        r = h1.command('@#%d lock %s:%s %d 10' % (i, v1b, f1, 200 + 10 * i))
        h.require(r is not None and r.get('status') == 'granted',
                  'g1 host #%d also locks through %s (%s)' % (i, v1b, r))
    recs = fu.record_states([h1])
    h.check(sorted(k[1] for k in recs) == sorted([v1a] * 3 + [v1b] * 3),
            'g1 hosts hold 3 locks through %s and 3 through %s' % (v1a, v1b))

    cap = fu.Capture(h, 'net 127.71.%d.0/24 or net 127.72.%d.0/24 or net 127.73.%d.0/24 '
                        'or net 127.75.%d.0/24' % ((c.slot,) * 4))

    # -- round 1: a dies, g1 goes to b --------------------------------------
    t1 = time.monotonic()
    c.kill9('a')
    fu.wait_group(h, c, 'g1', owner='b', timeout=10)
    s1 = fu.read_state(c, 'g1')
    h.check(h1.wait_count('reclaim-done', 6, 15, since=t1) == 6,
            'round 1: g1 hosts finished reclaiming through both VIPs')
    time.sleep(0.5)     # any stray or duplicate notification would arrive now
    check_round(h, c, [h1, h1b], [v1a, v1b], s1, t1, 'round 1')
    rec = h1.events('reclaimed', t1)
    h.check(sorted((e['server'], e['start']) for e in rec) ==
            sorted([(v1a, str(10 * i)) for i in range(3)] + [(v1b, str(200 + 10 * i)) for i in range(3)]),
            'round 1: each lock was reclaimed through the VIP it was taken on')
    h.check(len(h1b.events('reclaimed', t1)) == 1, 'round 1: the v1b-only host reclaimed its lock')
    fu.check_not_notified(h, h2, 0, 'round 1: g2: ')
    fu.check_not_notified(h, h3, 0, 'round 1: g3: ')
    st = fu.status(c)
    h.check(fu.server_set(st, 'g1') == fu.record_set([h1, h1b]),
            'round 1: b holds exactly the g1 locks the clients believe they hold')

    # -- round 2: b dies, g1 and g2 go to c ---------------------------------
    t2 = time.monotonic()
    c.kill9('b')
    fu.wait_group(h, c, 'g1', owner='c', timeout=10)
    fu.wait_group(h, c, 'g2', owner='c', timeout=10)
    s1b, s2 = fu.read_state(c, 'g1'), fu.read_state(c, 'g2')
    h.check(s1b > s1, 'g1 state number increased again (%s -> %s)' % (s1, s1b))
    h.check(h1.wait_count('reclaim-done', 6, 15, since=t2) == 6 and
            h2.wait_count('reclaim-done', 2, 15, since=t2) == 2,
            'round 2: g1 and g2 hosts finished reclaiming')
    time.sleep(0.5)
    check_round(h, c, [h1, h1b], [v1a, v1b], s1b, t2, 'round 2 g1')
    check_round(h, c, [h2], [v2], s2, t2, 'round 2 g2')
    fu.check_not_notified(h, h3, 0, 'round 2: g3: ')
    st = fu.status(c)
    h.check(fu.server_set(st, 'g1') == fu.record_set([h1, h1b]) and
            fu.server_set(st, 'g2') == fu.record_set([h2]),
            'round 2: c holds exactly the g1 and g2 locks the clients believe they hold')

    cap.stop()
    pkts = cap.sm_notify()
    if pkts is not None:
        log('captured SM_NOTIFY: %s' % pkts)
        g1h = set(fu.host_addrs(h1.addr, 3) + [h1b.addr])
        g2h = set(fu.host_addrs(h2.addr, 2))
        bad = [p for p in pkts if not (
            (p[1] in g1h and p[0] in (v1a, v1b) and p[2] == p[0] and p[3] in (str(s1), str(s1b))) or
            (p[1] in g2h and p[0] == v2 and p[2] == v2 and p[3] == str(s2)))]
        h.check(pkts and not bad, 'tshark: %d SM_NOTIFY, each from its group\'s VIP naming that '
                'VIP with that group\'s state, to that group\'s hosts%s'
                % (len(pkts), '' if not bad else ' (bad: %s)' % bad))
        pairs = set((p[1], p[0], p[3]) for p in pkts)
        want = set((a, v, str(s)) for a in g1h for v in (v1a, v1b) for s in (s1, s1b)) | \
            set((a, v2, str(s2)) for a in g2h)
        h.check(want <= pairs, 'tshark: every (host, VIP, state) notification was on the wire '
                '(missing %s)' % sorted(want - pairs))
    fu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=150)
