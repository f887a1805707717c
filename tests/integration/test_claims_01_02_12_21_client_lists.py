#!/usr/bin/env python3
"""
Claims 1, 2, 12, 21: one client list per service group, naming exactly the
clients that hold a lock on that group's filesystems, stored on the
group's own filesystem (<first export>/.sgnfs/clients/), where it survives
the nodes and is what drives notification.

Cluster: nodes a, b, c; g1 (a b c), g2 (b a c, client_idle = 0),
g3 (c a b).  Hosts:
  g1: 127.71.S.1-3        g2: 127.72.S.1-2        g3: 127.73.S.1-2
  M = 127.76.S.1 holds a lock in g1 AND in g3 (never in g2)
  D = 127.72.S.50 asks g2 for a conflicting lock (denied) and TESTs
  T = 127.72.S.3 locks in g2 and unlocks again (idle time 0)
  X = 127.77.S.1 a running host that holds nothing anywhere

Checked:
  * each group's list, on its filesystem and in sgnfsctl status, is
    exactly its own lock holders (M in g1 and g3 only; D never; T leaves
    g2's list once it holds nothing); entry contents (name, addr);
  * kill -9 of all three nodes at once: every list is still on disk,
    byte for byte;
  * while everything is down: g1's entry of 127.71.S.3 is removed and an
    entry for X is planted; g2's list is emptied;
  * restart: g1 notifies .1, .2, M and X (from g1's VIP) but not .3;
    g3 notifies its hosts and M (from g3's VIP); g2 comes up without
    grace and notifies nobody; each group's status list equals its disk
    list;
  * a clean stop of every node leaves the lists on disk.
"""

import os
import signal
import time

import harness
import fo_util as fu
from harness import log


def snapshot(c, group):
    d = os.path.join(fu.statedir(c, group), 'clients')
    out = {}
    for n in fu.client_files(c, group):
        with open(os.path.join(d, n), 'rb') as f:
            out[n] = f.read()
    return out


def test(h):
    c = fu.three_nodes(h, [('g1', 'abc', 20), ('g2', 'bac', 20), ('g3', 'cab', 20)],
                       # the plain grace of claim 8 (the journal's grace is
                       # tested in test_journal_recovery)
                       journal=False)
    c.group('g2').extra['client_idle'] = 0
    c.write_config()
    fu.start_nodes(h, c)
    v1, v2, v3 = (c.group(g).vip for g in ('g1', 'g2', 'g3'))
    f1, f2, f3 = (fu.lock_file(c, g) for g in ('g1', 'g2', 'g3'))

    h1 = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 10, per_host=1, nhosts=3, tag='g1')
    h2 = fu.Hold(h, fu.client_addr(c, 2, 1), v2, f2, 0, 10, per_host=1, nhosts=2, tag='g2')
    h3 = fu.Hold(h, fu.client_addr(c, 3, 1), v3, f3, 0, 10, per_host=1, nhosts=2, tag='g3')
    M = fu.client_addr(c, 6, 1)
    hm = fu.Hold(h, M, v1, f1, 500, 10, per_host=1, tag='M')
    X = fu.client_addr(c, 7, 1)
    hx = fu.Hold(h, X, v1, tag='X')
    for ho in (h1, h2, h3, hm):
        h.require(ho.wait_holding(), '%s x%d holds its initial locks' % (ho.addr, ho.nhosts))
    r = hm.command('lock %s:%s 500 10' % (v3, f3))
    h.require(r is not None and r.get('status') == 'granted', 'M also holds a lock in g3 (%s)' % r)

    # D asks g2 (client_idle 0) for a conflicting lock and is denied.  The
    # server writes a new client to the list before the lock engine
    # decides (src/nlm/nlm_svc.c, nlm_ensure_listed), so D may appear for
    # a moment, but never as holding, and must be gone at once.
    D = fu.client_addr(c, 2, 50)
    rc, _ = fu.one_shot(h, D, v2, 'lock', f2, 0, 5)
    h.check(rc == fu.EXIT_DENIED, 'D\'s conflicting g2 lock is denied (exit %d)' % rc)
    st = fu.status(c)
    dh = [x for x in st['g2']['clients'] if x['name'] == D]
    h.check(not dh or not dh[0]['holding'], 'D is not listed as holding in g2 (%s)' % dh)
    rc, _ = fu.one_shot(h, D, v2, 'test', f2, 0, 5)
    h.check(rc == fu.EXIT_DENIED, 'D\'s TEST finds the conflict (exit %d)' % rc)
    deadline = time.monotonic() + 5
    while D in fu.client_files(c, 'g2') and time.monotonic() < deadline:
        time.sleep(0.1)
    h.check(D not in fu.client_files(c, 'g2'), 'D (denied, holds nothing) is not on g2\'s list')
    T = fu.client_addr(c, 2, 3)
    rc, _ = fu.one_shot(h, T, v2, 'lock', f2, 900, 1)
    h.check(rc == fu.EXIT_OK, 'T locks in g2 (exit %d)' % rc)
    h.check(T in fu.client_files(c, 'g2'), 'T is on g2\'s list on disk while it holds a lock')
    rc, _ = fu.one_shot(h, T, v2, 'unlock', f2, 900, 1)
    h.check(rc == fu.EXIT_OK, 'T unlocks in g2 (exit %d)' % rc)
    deadline = time.monotonic() + 5
    while T in fu.client_files(c, 'g2') and time.monotonic() < deadline:
        time.sleep(0.1)
    h.check(T not in fu.client_files(c, 'g2'),
            'T, holding nothing, leaves g2\'s list (client_idle 0)')

    want = {
        'g1': sorted(fu.host_addrs(h1.addr, 3) + [M]),
        'g2': sorted(fu.host_addrs(h2.addr, 2)),
        'g3': sorted(fu.host_addrs(h3.addr, 2) + [M]),
    }
    st = fu.status(c)
    for g in ('g1', 'g2', 'g3'):
        h.check(fu.client_files(c, g) == want[g],
                '%s list on %s/.sgnfs/clients is exactly its lock holders %s (got %s)'
                % (g, g, want[g], fu.client_files(c, g)))
        h.check(fu.clients_of(st, g) == want[g], '%s list in sgnfsctl status is the same (%s)'
                % (g, fu.clients_of(st, g)))
        for n in want[g]:
            e = fu.client_entry(c, g, n)
            h.check(e.get('sgnfs-clist') == '1' and e.get('name') == n and e['addr'] == [n],
                    '%s entry %s: format 1, name and address (%s)' % (g, n, e))
    ondisk = sum((fu.client_files(c, g) for g in ('g1', 'g2', 'g3')), [])
    h.check(D not in ondisk, 'D is on no list on disk')
    h.check(X not in ondisk, 'X (holds nothing) is on no list on disk')
    # the list lives in the group's own export, not in a node-local place
    for g in ('g1', 'g2', 'g3'):
        h.check(fu.statedir(c, g).startswith(fu.export_path(c, g) + os.sep),
                '%s\'s list is inside %s\'s export' % (g, g))
    h.check(not any(os.path.exists(os.path.join(c.run_dir, x)) and
                    os.path.isdir(os.path.join(c.run_dir, x)) for x in ('clients', 'sm')),
            'no client list in the node-local run_dir')

    # -- the whole cluster crashes ---------------------------------------------
    snap = {g: snapshot(c, g) for g in ('g1', 'g2', 'g3')}
    state0 = {g: fu.read_state(c, g) for g in ('g1', 'g2', 'g3')}
    for n in ('a', 'b', 'c'):
        c.nodes[n].expect_clean_exit = False
    for n in ('a', 'b', 'c'):
        os.kill(c.nodes[n].pid, signal.SIGKILL)
    for n in ('a', 'b', 'c'):
        c.nodes[n].proc.wait()
    log('killed a, b, c')
    for g in ('g1', 'g2', 'g3'):
        h.check(snapshot(c, g) == snap[g], '%s list survives the crash of every node, byte for '
                'byte' % g)

    # -- edit the lists while every group is down ------------------------------
    gone = fu.client_addr(c, 1, 3)
    fu.remove_client(c, 'g1', gone)
    fu.plant_client(c, 'g1', X, [X])
    for n in fu.client_files(c, 'g2'):
        fu.remove_client(c, 'g2', n)
    t_restart = time.monotonic()
    st = fu.start_nodes(h, c, place=False)
    log('after restart: %s' % fu.summary(st))
    s1, s3 = fu.read_state(c, 'g1'), fu.read_state(c, 'g3')
    h.check(s1 > state0['g1'] and s1 % 2 == 1 and s3 > state0['g3'] and s3 % 2 == 1,
            'g1 and g3 state numbers up and odd (%s -> %s, %s -> %s)'
            % (state0['g1'], s1, state0['g3'], s3))
    h.check(st['g1']['state'] == 'grace' and st['g3']['state'] == 'grace',
            'g1 and g3 (lists not empty) come up in grace')
    h.check(st['g2']['state'] == 'online', 'g2 (list emptied on disk) comes up without grace (%s)'
            % st['g2']['state'])

    n = h1.wait_count('notify', 2, 10, since=t_restart)
    h.check(hx.wait_count('notify', 1, 10, since=t_restart) == 1,
            'X, planted in g1\'s list while down, is notified')
    h.check(hm.wait_count('notify', 2, 10, since=t_restart) == 2, 'M is notified twice (g1 and g3)')
    h3.wait_count('reclaim-done', 2, 10, since=t_restart)
    time.sleep(0.5)
    ev1 = h1.events('notify', t_restart)
    h.check(sorted(e['host'] for e in ev1) == sorted(fu.host_addrs(h1.addr, 2)),
            'g1 notifies .1 and .2 but not %s, removed from the list (%s)'
            % (gone, sorted(e['host'] for e in ev1)))
    h.check(all(e['from'] == v1 and e['mon_name'] == v1 and e['state'] == str(s1) for e in ev1),
            'g1 notifications from/naming %s with state %s' % (v1, s1))
    exx = hx.events('notify', t_restart)
    h.check(exx and all(e['from'] == v1 and e['mon_name'] == v1 for e in exx),
            'X\'s notification is g1\'s (from/naming %s)' % v1)
    em = sorted((e['from'], e['mon_name'], e['state']) for e in hm.events('notify', t_restart))
    h.check(em == sorted([(v1, v1, str(s1)), (v3, v3, str(s3))]),
            'M gets one notification per group it locks in, each from/naming that group\'s VIP '
            '(%s)' % em)
    ev3 = h3.events('notify', t_restart)
    h.check(sorted(e['host'] for e in ev3) == sorted(fu.host_addrs(h3.addr, 2)) and
            all(e['from'] == v3 and e['mon_name'] == v3 for e in ev3),
            'g3 notifies its hosts from %s' % v3)
    fu.check_not_notified(h, h2, t_restart, 'g2 (list emptied): ')
    h.check(len(h1.events('reclaimed', t_restart)) == 2, 'g1 .1 and .2 reclaimed')
    h.check(len(hm.events('reclaimed', t_restart)) == 2, 'M reclaimed in g1 and g3')

    st = fu.status(c)
    for g in ('g1', 'g2', 'g3'):
        h.check(fu.clients_of(st, g) == fu.client_files(c, g),
                '%s: the owner\'s list is the list on disk (%s)' % (g, fu.client_files(c, g)))
    h.check(fu.client_files(c, 'g1') == sorted(fu.host_addrs(h1.addr, 2) + [M, X]),
            'g1 list after restart: .1, .2, M, X')
    h.check(fu.client_files(c, 'g2') == [], 'g2 list still empty')

    # -- a clean stop keeps the lists -------------------------------------------
    snap = {g: sorted(fu.client_files(c, g)) for g in ('g1', 'g3')}
    fu.check_no_sanitizer_report(h, c)
    c.stop_all()
    for g in ('g1', 'g3'):
        h.check(sorted(fu.client_files(c, g)) == snap[g],
                '%s list survives a clean stop of every node (%s)' % (g, fu.client_files(c, g)))
    st_even = [fu.read_state(c, g) for g in ('g1', 'g2', 'g3')]
    h.check(all(s is not None and s % 2 == 0 for s in st_even),
            'after a clean stop every state number is even (%s)' % st_even)


harness.main(test, timeout=150)
