#!/usr/bin/env python3
"""
fairness.py - another group's LOCK and GETATTR latency under a 10 s UDP
READDIRPLUS flood from one group's client, side by side with their
baseline, in one run (issue 13 item 3).  The test suite asserts only that
the other group is answered during a flood (test_group_fairness); the
times are measured here.

    SGNFSD=build/src/daemon/sgnfsd PYTHONPATH=tests/integration \
        python3 bench/fairness.py

Prints p50/p99/max of GETATTR (TCP, g2) and LOCK+UNLOCK (NLM over TCP, g2)
without and with the flood on g1, and p99 ratio.  BENCH_CALLS (default 300)
calls of each kind per phase; BENCH_FLOOD_S (default 10).  The flood runs
in a process of its own (in this one its sending thread would hold the GIL
and g2's calls would wait for Python, not for the server).  On a shared or
loaded machine the figures say so: note the load beside them; the flood's
sender takes a core of its own.
"""
import multiprocessing
import os
import socket
import time

import harness
import hostile_util as hu
import wire
import nlm_util as nu
from harness import Export, Group, log
from test_group_fairness import Flood, NFS_GETATTR, NFS_LOOKUP, group_rpc

CALLS = int(os.environ.get('BENCH_CALLS', '300'))
FLOOD_S = float(os.environ.get('BENCH_FLOOD_S', '10'))
# The flood's offered rate, READDIRPLUS datagrams per second: the default
# is about four times what sgnfs answers g1 here (~1,200/s), so g1's queue
# stays full and most of the flood is dropped, as in any flood.  0: as fast
# as the sender can, which on this machine is ~80,000/s from a Python loop
# that takes most of one of the two cores; a flooding client on another
# machine costs the server none of that.  Measured (20261205): the paced
# flood sent to a port nobody serves moved g2's p99 by 1.2x, so what the
# figures show beyond that is the server's work for g1.
FLOOD_RATE = int(os.environ.get('BENCH_FLOOD_RATE', '5000'))
# The flood's sender at this nice value (default 0).  On one machine the
# sender (a Python loop, a core of its own) competes with the server and
# g2's client for the CPUs, which a flooding client on another machine
# does not; 19 takes most of that out, to tell the server's share apart.
FLOOD_NICE = int(os.environ.get('BENCH_FLOOD_NICE', '0'))
# The measuring (g2) client at this nice value (default 0; below 0 needs
# root).  During the flood the g2 client itself waited for a CPU for up to
# 213 ms (perf sched latency, load 9 on two cores): that is in its
# figures, not the server's.  The loop's own wait is printed beside them.
CLIENT_NICE = int(os.environ.get('BENCH_CLIENT_NICE', '0'))
# The flood in this many windows of FLOOD_S / WINDOWS seconds, each after
# a baseline window as long (g1's queue worked off first), so both phases
# see the same load of a shared machine, whose swings between a 2 s
# baseline and the 10 s flood after it decided the ratio more than the
# server did.  1: the earlier layout (CALLS baseline calls, then the
# whole flood).
WINDOWS = max(1, int(os.environ.get('BENCH_WINDOWS', '5')))
# The node's loop_priority (normal, the default, or realtime), to compare
# the two in alternating runs; unset: the configuration's default.
LOOP_PRIORITY = os.environ.get('BENCH_LOOP_PRIORITY')
# The node's journal_io (uring, the default, or thread); unset: the default.
JOURNAL_IO = os.environ.get('BENCH_JOURNAL_IO')


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] if v else float('nan')


def measure(nfs, root2, k, fh2, until=None):
    ga, lk = [], []
    i = 0
    while (until is None and i < CALLS) or (until is not None and time.monotonic() < until):
        t0 = time.monotonic()
        nfs.call(hu.NFS_PROG, 3, NFS_GETATTR, hu.getattr_args(root2), cred=hu.ROOT_CRED,
                 timeout=120)
        ga.append(time.monotonic() - t0)
        t0 = time.monotonic()
        k.lock('bench', fh2, b'o', 1, i % 1000, 1)
        k.unlock('bench', fh2, b'o', 1, i % 1000, 1)
        lk.append(time.monotonic() - t0)
        i += 1
    return ga, lk


def schedstat(pid):
    """(ns on a CPU, ns runnable and waiting for one) of thread @pid
    (/proc/PID/schedstat; the event loop is the main thread)."""
    try:
        with open('/proc/%d/schedstat' % pid) as f:
            run, wait = f.read().split()[:2]
        return int(run), int(wait)
    except (OSError, ValueError):
        return 0, 0


def flood_proc(src, vip, port, fh, stop, out):
    """The flood in a process of its own: in the measuring process its
    sending thread would hold the GIL, and g2's calls would wait for the
    interpreter (5 ms switch interval), not for the server."""
    if FLOOD_NICE:
        os.nice(FLOOD_NICE)
    f = Flood(src, vip, port, fh, rate=FLOOD_RATE)
    f.start()
    stop.wait()
    f.finish()
    out.put((f.sent, f.answers))


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=771)], grace=1),
                   Group('g2', [Export('g2/data', fsid=772)], grace=1)],
                  cluster_extra=dict(([('loop_priority', LOOP_PRIORITY)] if LOOP_PRIORITY else [])
                                     + ([('journal_io', JOURNAL_IO)] if JOURNAL_IO else [])))
    e1, e2 = c.export('g1/data'), c.export('g2/data')
    v1, v2 = c.group('g1').vip, c.group('g2').vip
    big = os.path.join(e1.path, 'big')
    os.mkdir(big)
    for i in range(300):
        open(os.path.join(big, 'entry-with-a-long-name-%04d' % i), 'w').close()
    with open(os.path.join(e2.path, 'f'), 'w') as f:
        f.write('y')
    c.start('a')
    nu.wait_online(h, c, ['g1', 'g2'])
    m = hu.Tcp(v1, c.ports['mount_port'])
    root1 = hu.mnt(m, e1.path)[1]
    m.close()
    n1 = hu.Tcp(v1, c.ports['nfs_port'])
    bigfh = hu.lookup_fh(n1.call(hu.NFS_PROG, 3, NFS_LOOKUP, hu.lookup_args(root1, 'big'),
                                 cred=hu.ROOT_CRED))
    n1.close()
    m = hu.Tcp(v2, c.ports['mount_port'])
    root2 = hu.mnt(m, e2.path)[1]
    m.close()
    src = nu.host(c, 81, 1)
    nfs = hu.Tcp(v2, c.ports['nfs_port'], timeout=120, src=src)
    fh2 = hu.lookup_fh(nfs.call(hu.NFS_PROG, 3, NFS_LOOKUP, hu.lookup_args(root2, 'f'),
                                cred=hu.ROOT_CRED))
    if CLIENT_NICE:
        os.nice(CLIENT_NICE)
    pid = c.nodes['a'].pid
    base_ga, base_lk, fl_ga, fl_lk = [], [], [], []
    base_w, fl_w = [], []                   # the windows, for the capture
    sb, sf = [0, 0, 0.0], [0, 0, 0.0]       # loop run ns, wait ns, seconds
    sent = answers = 0
    win = FLOOD_S / WINDOWS

    def add(acc, s0, t0):
        s1 = schedstat(pid)
        acc[0] += s1[0] - s0[0]
        acc[1] += s1[1] - s0[1]
        acc[2] += time.monotonic() - t0

    # g2's calls as the server answered them (the flood goes to v1: not
    # captured, so the capture costs the flood nothing)
    cap = wire.start(v2, 'fairness')
    with nu.RawNLM(src, v2, c.ports['nlm_port'], timeout=120) as k:
        for w in range(WINDOWS):
            # Baseline: g1 idle (its queue worked off after the last
            # window); as long as the flood window, or CALLS calls if one.
            for _ in range(600):
                if not group_rpc(h, c, 'g1').get('queued') and \
                        not group_rpc(h, c, 'g1').get('pool_jobs'):
                    break
                time.sleep(0.05)
            s0, t0 = schedstat(pid), time.monotonic()
            ga, lk = measure(nfs, root2, k, fh2,
                             until=None if WINDOWS == 1 else time.monotonic() + win)
            add(sb, s0, t0)
            base_w.append((t0, time.monotonic()))
            base_ga += ga
            base_lk += lk
            stop, out = multiprocessing.Event(), multiprocessing.Queue()
            fp = multiprocessing.Process(target=flood_proc, args=(nu.host(c, 80, 1), v1,
                                                                   c.ports['nfs_port'], bigfh,
                                                                   stop, out))
            fp.start()
            time.sleep(0.5)     # the flood under way before the first measured call
            s0, t0 = schedstat(pid), time.monotonic()
            ga, lk = measure(nfs, root2, k, fh2, until=time.monotonic() + win)
            add(sf, s0, t0)
            fl_w.append((t0, time.monotonic()))
            fl_ga += ga
            fl_lk += lk
            stop.set()
            n_sent, n_answers = out.get(timeout=30)
            sent += n_sent
            answers += n_answers
            fp.join(10)
    nfs.close()
    rows = wire.times(cap)
    rpc1, rpc2 = group_rpc(h, c, 'g1'), group_rpc(h, c, 'g2')
    load = open('/proc/loadavg').read().split()[:3]
    print('=' * 72)
    print('g2 latency, baseline vs during a %.0f s UDP READDIRPLUS flood of g1 in %d '
          'window(s) (offered %s/s: %d sent, %d answered; sender at nice %d, g2 client at '
          'nice %d, loop_priority %s); loadavg %s' % (
              FLOOD_S, WINDOWS, FLOOD_RATE or 'max', sent, answers, FLOOD_NICE, CLIENT_NICE,
              LOOP_PRIORITY or 'default', ' '.join(load)))
    print('%-10s %8s %10s %10s %10s %12s' % ('call', 'phase', 'n', 'p50 ms', 'p99 ms',
                                             'p99 ratio'))
    for name, b, f in (('GETATTR', base_ga, fl_ga), ('LOCK+UNLK', base_lk, fl_lk)):
        print('%-10s %8s %10d %10.3f %10.3f %12s' % (name, 'base', len(b), pct(b, .5) * 1e3,
                                                   pct(b, .99) * 1e3, ''))
        print('%-10s %8s %10d %10.3f %10.3f %12.2f' % (name, 'flood', len(f), pct(f, .5) * 1e3,
                                                     pct(f, .99) * 1e3,
                                                     pct(f, .99) / pct(b, .99)))
    # The same calls on the wire: from the call to its reply, what the
    # server took without the measuring client's own waits for a CPU.
    if rows:
        print('on the wire (the server\'s answer time, dumpcap on lo + tshark rpc.time):')
        for name, prog, proc in (('GETATTR', wire.NFS_PROG, NFS_GETATTR),
                                 ('LOCK', wire.NLM_PROG, 2), ('UNLOCK', wire.NLM_PROG, 4)):
            b = wire.select(rows, base_w, prog, proc)
            f = wire.select(rows, fl_w, prog, proc)
            if b and f:
                print('%-10s %8s %10d %10.3f %10.3f %12s' % (name, 'base', len(b), wire.pct(b, 50),
                                                           wire.pct(b, 99), ''))
                print('%-10s %8s %10d %10.3f %10.3f %12.2f' % (
                    name, 'flood', len(f), wire.pct(f, 50), wire.pct(f, 99),
                    wire.pct(f, 99) / wire.pct(b, 99)))
    else:
        print('on the wire: no capture (dumpcap or tshark missing)')
    # The loop thread's CPU and its wait for a CPU, per second of each
    # phase: what the server itself spent and lost to the scheduler.
    print('event loop, ms per s: base run %.1f wait %.1f; flood run %.1f wait %.1f'
          % (sb[0] / 1e6 / sb[2], sb[1] / 1e6 / sb[2], sf[0] / 1e6 / sf[2],
             sf[1] / 1e6 / sf[2]))
    print('g1 pool jobs %s (%s at lower priority), UDP dropped %s; g2 pool jobs %s (%s lower)'
          % (rpc1.get('pool_done'), rpc1.get('pool_lowered'), rpc1.get('udp_dropped'),
             rpc2.get('pool_done'), rpc2.get('pool_lowered')))
    print('=' * 72, flush=True)
    h.check(len(fl_ga) > 0 and len(fl_lk) > 0, 'g2 was served during the flood')


if __name__ == '__main__':
    harness.main(test, timeout=300)
