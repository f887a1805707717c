#!/usr/bin/env python3
"""
group_open_bench.py - takeover of a large group while another group on the
taking-over node keeps serving LOCK (issue 12, "Must show").

Two cases, side by side in one run, each on its own two-node cluster
(harness.py, the test suite's, so the bench runs the same binaries):

  journal  group "big" whose journal holds LOCKS (default 1,000,000) locks
           (a real client's lock plus synthetic ones appended by jr_grow);
  clients  group "big" whose client list holds CLIENTS (default 100,000)
           entries (planted in the documented format, addresses that do
           not answer, so the notifier works for the whole run).

In each: node a serves "big", node b serves "other", and a lock loop host
takes and releases one byte of "other" on b as fast as it can.  Then:
kill -9 a; b takes "big" over (big is `ownership = managed`, so the bench
decides the moment: `sgnfsctl -n b start big`, after the state on disk was
made large), and the loop keeps running.  Reported per case:

  * kill -> online: from the kill to `start` returning with "big" online
    (includes the time the bench took to grow the state while no node
    served it: reported separately, and subtracted);
  * start -> online: what the node itself took;
  * b alive at the end (no watchdog exit; watchdog_ms = 5000, the default);
  * the "other" loop: p50/p99/max LOCK+UNLOCK latency and the longest time
    without an answer, in a baseline window (the loop alone, 5 s before the
    kill) and in the takeover window (start -> online + 1 s);
  * the same loop's LOCK calls as the server answered them: from the call
    to the reply on the wire (a capture of the other group's VIP on lo,
    read by tshark), so what the server took is told apart from what the
    bench's own client, on the same two cores, took to send and read.

Usage: SGNFSD=... SGNFSCTL=... SGNFS_CLIENT=... JR_GROW=... \
       PYTHONPATH=tests/integration python3 bench/group_open_bench.py [--quick]
(`--quick`: 100,000 locks and 10,000 clients; BENCH_CASES=clients (or
journal): that case only, its json in group_open-clients.json (group_open-journal.json) so
the file of a full run is kept; BENCH_PERF=DIR: a perf
profile of the taking-over node from each start to online + 1 s, DIR/CASE.data
(with BENCH_PERF_SCHED=1: the scheduler's events of every CPU instead, for
`perf sched timehist -i DIR/CASE.data --state`);
BENCH_WIRE_ROWS=1: every LOCK answer of the takeover window in the json, as
(seconds after start, ms call -> reply); BENCH_REPEAT=N: each case N times,
the cases alternating, and the wire p99s also pooled over the N runs (a
baseline of a few hundred microseconds measured over 4.5 s swings from run
to run by more than the 1.5x under test: the pooled figure compares every
baseline LOCK with every takeover LOCK).)  Results go to
bench/results/group_open.json and stdout; BENCH_LOOP_PRIORITY, BENCH_LOOP_CPU: the
nodes' loop_priority and loop_cpu (default: the highest CPU, see LOOP_CPU) ("wire" columns: the server's
LOCK answer time p99 from the capture; 0 when dumpcap/tshark are missing).  Run as root (ports < 1024).
On a virtual machine, a takeover's wire p99 also counts the times the host
stopped the whole VM (seen here: 5-10 ms every 100 ms while one CPU is kept
busy, whoever keeps it so); bench/vm_stall_probe.py shows whether and when
it does, without sgnfsd (bench/RESULTS.md, notes of 2026-12-06 13:20).
"""

import json
import os
import subprocess
import sys
import time

import harness
import wire
import fo_util as fu
from harness import log

QUICK = '--quick' in sys.argv
LOCKS = 100000 if QUICK else int(os.environ.get('BENCH_LOCKS', '1000000'))
CLIENTS = 10000 if QUICK else int(os.environ.get('BENCH_CLIENTS', '100000'))
# The nodes' loop_priority (normal, the default, or realtime), to compare
# the two in alternating runs; unset: the configuration's default.
LOOP_PRIORITY = os.environ.get('BENCH_LOOP_PRIORITY')
# The nodes' loop_cpu, likewise: by default the highest CPU the bench may
# use, as on a node that runs one sgnfsd (docs/configuration.md, loop_cpu:
# the taking-over node is the only live one during the takeover); 'none'
# to compare with the loop unpinned.
LOOP_CPU = os.environ.get('BENCH_LOOP_CPU') or (
    str(max(os.sched_getaffinity(0))) if len(os.sched_getaffinity(0)) > 1 else None)
NLM_LOCK = 2
CASES = [c for c in os.environ.get('BENCH_CASES', 'journal,clients').split(',') if c]
REPEAT = int(os.environ.get('BENCH_REPEAT', '1'))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results',
                   'group_open.json' if CASES == ['journal', 'clients']
                   else 'group_open-%s.json' % '-'.join(CASES))


def loop_stats(lp, t0, t1):
    ops = [r for r in lp.window(t0, t1) if r[0] >= t0]
    lat = [(r[1] - r[0]) * 1000.0 for r in ops]
    # longest time without an answer: between consecutive completions,
    # and from the window's start / to its end
    ends = sorted(r[1] for r in ops)
    pts = [t0] + [t for t in ends if t0 <= t <= t1] + [t1]
    gap = max(b - a for a, b in zip(pts, pts[1:])) * 1000.0
    return {'ops': len(ops), 'refused': len([r for r in ops if r[3] != 'granted']),
            'p50_ms': wire.pct(lat, 50), 'p99_ms': wire.pct(lat, 99), 'max_ms': max(lat) if lat else None,
            'longest_unanswered_ms': gap}


def wire_stats(rows, t0, t1):
    """The other group's LOCK answers in [t0, t1] on the wire."""
    return wire.stats(rows, t0, t1, wire.NLM_PROG, NLM_LOCK)


def one_case(h, kind):
    big = harness.Group('big', [harness.Export('big/fs', fsid=201)], nodes=('a', 'b'),
                        grace=5, extra={'ownership': 'managed'})
    other = harness.Group('other', [harness.Export('other/fs', fsid=202)], nodes=('b', 'a'),
                          grace=5)
    extra = dict(([('loop_priority', LOOP_PRIORITY)] if LOOP_PRIORITY else [])
                 + ([('loop_cpu', LOOP_CPU)] if LOOP_CPU else []))
    c = h.cluster(groups=[big, other], nodes=['a', 'b'], cluster_extra=extra or None)
    for g in (big, other):
        p = os.path.join(g.exports[0].path, fu.LOCKFILE)
        with open(p, 'wb') as f:
            f.write(b'\0' * 4096)
        os.chmod(p, 0o666)
    c.start('a', wait=False)
    c.start('b', wait=False)
    fu.wait_group(h, c, 'other', owner='b', timeout=30)
    rc, _ = fu.ctl(h, c, '-n', 'a', 'start', 'big')
    h.require(rc == 0, 'big online on a')
    ho = fu.Hold(h, fu.client_addr(c, 1, 1), big.vip, fu.lock_file(c, 'big'), 0, 8, tag='H')
    h.require(ho.wait_holding(), 'H holds a lock in big')
    cap = wire.start(other.vip, 'group_open_%s' % kind)
    lp = fu.LockLoop(h, fu.client_addr(c, 2, 100), other.vip, fu.lock_file(c, 'other'),
                     start=5000, tag='loop').begin()
    t_loop = time.monotonic()
    time.sleep(5.0)

    t_kill = time.monotonic()
    c.kill9('a')
    t_g0 = time.monotonic()
    if kind == 'journal':
        cp = subprocess.run([h.env_path('JR_GROW'), fu.statedir(c, 'big'), 'big', str(LOCKS)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        log(cp.stdout.decode().strip())
        h.require(cp.returncode == 0, 'jr_grow')
    else:
        fu.plant_clients(c, 'big', 'bench', CLIENTS)
        os.sync()
    t_grown = time.monotonic()
    prof = None
    if os.environ.get('BENCH_PERF'):
        # where b's time goes during the start (perf report -i FILE), or,
        # with BENCH_PERF_SCHED=1, who waited for a CPU and who held it
        # (perf sched timehist -i FILE --state: every CPU, every thread)
        out = os.path.join(os.environ['BENCH_PERF'], kind + '.data')
        if os.environ.get('BENCH_PERF_SCHED'):
            cmd = ['perf', 'sched', 'record', '-g', '-q', '-o', out]
        else:
            cmd = ['perf', 'record', '-g', '-q', '-k', 'CLOCK_MONOTONIC', '-p',
                   str(c.nodes['b'].pid), '-o', out]
        prof = subprocess.Popen(cmd)
        time.sleep(1.0)
    bpid = c.nodes['b'].pid
    cpu0 = loop_cpu_ms(bpid)
    t_start = time.monotonic()
    rc, out = fu.ctl(h, c, '-n', 'b', 'start', 'big')
    t_online = time.monotonic()
    cpu1 = loop_cpu_ms(bpid)
    h.check(rc == 0, 'start big on b: exit 0')
    time.sleep(1.0)
    t_end = time.monotonic()
    cpu2 = loop_cpu_ms(bpid)
    if prof:
        # the whole takeover window: the loop's work after online (the
        # notifications, grace) counts against the other group too
        prof.send_signal(2)
        prof.wait(timeout=60)
    lp.end()
    rows = wire.times(cap)
    alive = c.nodes['b'].alive()
    # the baseline: the loop alone, before the kill (the takeover window
    # is usually longer; both report p99 and the longest silence)
    base = loop_stats(lp, t_loop + 0.5, t_kill)
    during = loop_stats(lp, t_start, t_end)
    opening, online = loop_stats(lp, t_start, t_online), loop_stats(lp, t_online, t_end)
    blog = fu.node_log(c.nodes['b'])
    res = {
        'case': kind, 'locks': LOCKS if kind == 'journal' else 1,
        'clients': CLIENTS if kind == 'clients' else 1,
        'kill_to_online_s': t_online - t_kill - (t_grown - t_g0),
        'start_to_online_s': t_online - t_start,
        'state_growth_s': t_grown - t_g0,
        'b_alive': alive, 'watchdog_exit': 'watchdog' in blog,
        'baseline': base, 'takeover': during, 'takeover_opening': opening,
        'takeover_online': online,
        'p99_ratio': (during['p99_ms'] / base['p99_ms']
                      if base['p99_ms'] and during['p99_ms'] else None),
        'wire_baseline': wire_stats(rows, t_loop + 0.5, t_kill),
        # every LOCK answer time of both windows (ms), for the pooled p99
        # of BENCH_REPEAT runs
        'wire_baseline_ms': [round(ms, 3) for ms in wire.select(
            rows, [(t_loop + 0.5, t_kill)], wire.NLM_PROG, NLM_LOCK)],
        'wire_takeover_ms': [round(ms, 3) for ms in wire.select(
            rows, [(t_start, t_end)], wire.NLM_PROG, NLM_LOCK)],
        'wire_takeover': wire_stats(rows, t_start, t_end),
        # the takeover window in its two parts: while the state is read
        # (start -> online) and once the group serves (online -> + 1 s:
        # install, grace, the notifications' start)
        'wire_opening': wire_stats(rows, t_start, t_online),
        'wire_online': wire_stats(rows, t_online, t_end),
        # CPU time of b's event loop thread (schedstat, ns precision):
        # what the install, grace and the notifications' start cost it
        'loop_cpu_opening_ms': cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None,
        'loop_cpu_online_ms': cpu2 - cpu1 if cpu1 is not None and cpu2 is not None else None,
        'loadavg': open('/proc/loadavg').read().split()[:3],
    }
    if prof:
        # perf's clock is CLOCK_MONOTONIC (-k): perf script --time A,B
        # with these picks the open or the online second
        res['t_start_mono'], res['t_online_mono'] = t_start, t_online
    if os.environ.get('BENCH_WIRE_ROWS'):
        # each LOCK of the takeover window: (s after start, ms call -> reply)
        res['wire_rows'] = [(round(t - t_start, 4), round(ms, 3)) for t, pg, pc, ms in rows
                            if pg == wire.NLM_PROG and pc == NLM_LOCK and t_start <= t <= t_end]
        res['online_after_start_s'] = t_online - t_start
        # CLOCK_MONOTONIC of the start: the rows' times mod the host's
        # period line up with vm_stall_probe.py's stops
        res['t_start_mono'] = t_start
    log(json.dumps({k: v for k, v in res.items()
                    if k not in ('wire_rows', 'wire_baseline_ms', 'wire_takeover_ms')}, indent=1))
    ho.stop()
    c.stop_all()
    return res


def loop_cpu_ms(pid):
    """ms of CPU the thread @pid (a process's main thread: sgnfsd's event
    loop) has run, from /proc/PID/task/PID/schedstat; None if unreadable."""
    try:
        with open('/proc/%d/task/%d/schedstat' % (pid, pid)) as f:
            return int(f.read().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def test(h):
    for var in ('JR_GROW', 'SGNFSCTL', 'SGNFS_CLIENT'):
        h.env_path(var)
    h.require(CASES and all(c in ('journal', 'clients') for c in CASES),
              'BENCH_CASES: journal and/or clients')
    h.require(REPEAT >= 1, 'BENCH_REPEAT: 1 or more')
    results = [one_case(h, c) for _ in range(REPEAT) for c in CASES]
    pooled = {}
    for case in CASES:
        rs = [r for r in results if r['case'] == case]
        base = [ms for r in rs for ms in r['wire_baseline_ms']]
        take = [ms for r in rs for ms in r['wire_takeover_ms']]
        bp, tp = wire.pct(base, 99), wire.pct(take, 99)
        pooled[case] = {'runs': len(rs), 'baseline_calls': len(base), 'takeover_calls': len(take),
                        'wire_baseline_p99_ms': bp, 'wire_takeover_p99_ms': tp,
                        'wire_p99_ratio': tp / bp if bp and tp else None,
                        'kill_to_online_s': [r['kill_to_online_s'] for r in rs]}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump({'when': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
                   'quick': QUICK, 'repeat': REPEAT, 'pooled': pooled,
                   'loop_cpu': LOOP_CPU or 'none', 'loop_priority': LOOP_PRIORITY or 'default',
                   # the raw answer times only with BENCH_WIRE_ROWS (the
                   # file is kept in the tree)
                   'results': [r if os.environ.get('BENCH_WIRE_ROWS') else
                               {k: v for k, v in r.items()
                                if k not in ('wire_baseline_ms', 'wire_takeover_ms')}
                               for r in results]},
                  f, indent=1)
    print('\n%-8s %10s %10s %8s %9s %9s %9s %9s %8s %10s %10s %7s' % (
        'case', 'kill->on s', 'start->on', 'b alive', 'base p99', 'take p99', 'ratio',
        'max gap', 'refused', 'wire base', 'wire take', 'ratio'))
    for r in results:
        wb, wt = r['wire_baseline']['p99_ms'], r['wire_takeover']['p99_ms']
        print('%-8s %10.2f %10.2f %8s %9.2f %9.2f %9.2f %9.0f %8d %10.2f %10.2f %7.2f' % (
            r['case'], r['kill_to_online_s'], r['start_to_online_s'], r['b_alive'],
            r['baseline']['p99_ms'] or 0, r['takeover']['p99_ms'] or 0, r['p99_ratio'] or 0,
            r['takeover']['longest_unanswered_ms'], r['takeover']['refused'], wb or 0, wt or 0,
            wt / wb if wb and wt else 0))
    print('\n%-8s %13s %13s %13s %13s (p99 ms of the takeover window\'s two parts)' % (
        'case', 'open (loop)', 'online (loop)', 'open (wire)', 'online (wire)'))
    for r in results:
        print('%-8s %13.2f %13.2f %13.2f %13.2f' % (
            r['case'], r['takeover_opening']['p99_ms'] or 0, r['takeover_online']['p99_ms'] or 0,
            r['wire_opening']['p99_ms'] or 0, r['wire_online']['p99_ms'] or 0))
    print('\n%-8s %17s %17s (CPU ms of b\'s event loop thread)' % (
        'case', 'start -> online', 'online -> +1 s'))
    for r in results:
        print('%-8s %17.1f %17.1f' % (r['case'], r['loop_cpu_opening_ms'] or 0,
                                      r['loop_cpu_online_ms'] or 0))
    if REPEAT > 1:
        print('\n%-8s %5s %12s %12s %10s %10s %7s  %s' % (
            'case', 'runs', 'base LOCKs', 'take LOCKs', 'wire base', 'wire take', 'ratio',
            'kill -> online s (pooled over the runs: wire p99 ms)'))
        for case, p in pooled.items():
            print('%-8s %5d %12d %12d %10.2f %10.2f %7.2f  %s' % (
                case, p['runs'], p['baseline_calls'], p['takeover_calls'],
                p['wire_baseline_p99_ms'] or 0, p['wire_takeover_p99_ms'] or 0,
                p['wire_p99_ratio'] or 0, ' '.join('%.2f' % t for t in p['kill_to_online_s'])))
    for r in results:
        h.check(r['b_alive'] and not r['watchdog_exit'], '%s: b alive, no watchdog exit'
                % r['case'])


harness.main(test, timeout=3000)
