#!/usr/bin/env python3
"""
test_loop_priority - where the event loop stands with the CPU scheduler
(`loop_priority`, common/thprio.h, docs/configuration.md).

  1. The default (`realtime`), as root: the loop thread (the main thread) runs
     SCHED_FIFO at priority 1, and the log says so; after a LOCK (a
     journal batch: write and fdatasync through io_uring) the journal's
     io_uring workers, which the kernel makes from the loop, run
     SCHED_FIFO 1 too; no other thread of the node (pool, low, libuv's
     pool, watchdog) has a real-time policy, although the loop created
     most of them; the node dropped CAP_SYS_NICE after taking it.
  2. `loop_priority = normal`: the loop is SCHED_OTHER and asks for the
     kernel's shortest slice (0.1 ms, where the kernel shows se.slice).
  3. `loop_priority = high`: `sgnfsd -t` names the key and the values.
  4. A reload that changes `loop_priority` is refused (set once, while the
     node held CAP_SYS_NICE), and the node keeps its loop where it was.
  5. `loop_cpu = N` (the highest CPU this test may use), with `loop_priority
     = normal`: the loop thread runs on CPU N only and every thread sgnfsd
     made (pool, low, libuv's pool, watchdog) runs on the other CPUs and
     never on N, although the loop made most of them; the status shows the
     loop's CPU and priority; the log says so; a reload changing loop_cpu
     is refused; `sgnfsd -t` refuses a CPU number out of range and one the
     process may not use (run on CPU 0 alone), naming the key.
  6. `poll_spin_us = 50`: a node started on one CPU does not poll (status
     `spin_us` 0, and the log says why); one with two CPUs polls (50).
"""
import os
import subprocess

import harness
import fo_util as fu
import hostile_util as hu
import nlm_util as nu
import ops_util as ou
from harness import Export, Group, log
from test_group_fairness import CAP_SYS_NICE, caps_eff, thread_info

RT = os.SCHED_FIFO


def threads(pid):
    """{tid: (comm, policy, rt priority, slice ns or None)}, from
    test_group_fairness's reading of /proc/PID/task."""
    out = {}
    for t, v in thread_info(pid).items():
        try:
            out[t] = (v[0], v[3], os.sched_getparam(t).sched_priority, v[5])
        except OSError:
            pass
    return out


def loop_status(c):
    """Node a's `loop` object in `sgnfsctl status --json` (None if absent)."""
    doc = fu.status_raw(c) or {}
    for nd in doc.get('nodes', []):
        if nd.get('name') == 'a':
            return (nd.get('status') or {}).get('loop')
    return None


def reload_refused(h, c, key, value):
    """Node a refuses a reload that sets [cluster] @key = @value, naming
    the key and asking for a restart."""
    c.cluster_extra[key] = value
    ou.write_config(c)
    rc, out, _ = ou.ctl(c, 'reload', 'a')
    h.check(rc == 1 and key in out and 'restart' in out,
            'a reload changing %s is refused, naming the key (%d %r)' % (key, rc, out))


def groups():
    return [Group('g1', [Export('g1/data', fsid=791)], grace=1)]


def test(h):
    if os.geteuid() != 0:
        raise harness.Skip('needs root (SCHED_FIFO needs CAP_SYS_NICE)')
    # 1. real-time, the default: no loop_priority key
    c = h.cluster(groups(), name='rt')
    c.start('a')
    nu.wait_online(h, c, ['g1'])
    # a LOOKUP, so the pool's threads exist (started with the first job)
    e = c.export('g1/data')
    open(os.path.join(e.path, 'f'), 'w').close()
    m = hu.Tcp(c.group('g1').vip, c.ports['mount_port'])
    root = hu.mnt(m, e.path)[1]
    m.close()
    n = hu.Tcp(c.group('g1').vip, c.ports['nfs_port'])
    h.check(hu.lookup_fh(n.call(hu.NFS_PROG, 3, 3, hu.lookup_args(root, 'f'), cred=hu.ROOT_CRED))
            is not None, 'a LOOKUP answered')
    n.close()
    # LOCKs: their journal batches go through io_uring (the default
    # journal_io); the first batch of a journal did not always need a worker
    for k in range(3):
        rc, _ = fu.one_shot(h, nu.host(c, 5, 1 + k), c.group('g1').vip, 'lock',
                            '%s:%s' % (c.group('g1').vip, os.path.join(e.path, 'f')), 10 * k, 1)
        h.check(rc == 0, 'LOCK %d granted (exit %d)' % (k, rc))
    pid = c.nodes['a'].pid
    th = threads(pid)
    log('threads: %s' % th)
    h.check(th.get(pid, (None, None))[1:3] == (RT, 1),
            'the loop thread runs SCHED_FIFO priority 1 (%s)' % (th.get(pid),))
    iou = {t: v for t, v in th.items() if v[0].startswith('iou-wrk')}
    h.check(iou and all(v[1:3] == (RT, 1) for v in iou.values()),
            'the journal\'s io_uring workers (%d) run SCHED_FIFO priority 1, as the loop that '
            'made them (%s)' % (len(iou), iou))
    others = {t: v for t, v in th.items() if t != pid and t not in iou}
    h.check(len(others) >= 5 and all(v[1] in (os.SCHED_OTHER, os.SCHED_IDLE) and v[2] == 0
                                     for v in others.values()),
            'every other thread (%d) runs a normal policy: none kept the loop\'s' %
            len(others))
    pool = [v for v in others.values() if v[0] == 'sgnfs-pool']
    h.check(pool and all(v[3] in (None, 100000) for v in pool),
            'the sgnfs-pool threads ask for the short slice themselves (%s)' % pool)
    h.check(not caps_eff(pid) & (1 << CAP_SYS_NICE),
            'CAP_SYS_NICE dropped after the loop took its priority (CapEff %x)' % caps_eff(pid))
    h.check('event loop runs SCHED_FIFO priority 1' in fu.node_log(c.nodes['a']),
            'the log says where the loop runs')
    # (poll_spin_us off by default: the loop never spun)
    h.check(loop_status(c) == {'priority': 'realtime', 'cpu': None, 'spin_us': 0,
                               'spin_hits': 0, 'spin_misses': 0},
            'the status says so: realtime, not pinned, no busy polling (%s)' % loop_status(c))
    # 4. a reload cannot change it
    reload_refused(h, c, 'loop_priority', 'normal')
    h.check(threads(pid).get(pid, (None, None))[1] == RT, 'the loop stays SCHED_FIFO')
    c.stop_all()

    # 2. normal, on request
    c = h.cluster(groups(), name='normal', cluster_extra={'loop_priority': 'normal'})
    c.start('a')
    nu.wait_online(h, c, ['g1'])
    pid = c.nodes['a'].pid
    th = threads(pid)
    loop = th.get(pid)
    h.check(loop is not None and loop[1] == os.SCHED_OTHER,
            'with loop_priority = normal the loop is SCHED_OTHER (%s)' % (loop,))
    if loop is not None and loop[3] is not None:
        h.check(loop[3] == 100000, 'and asks for a 0.1 ms slice (%s)' % (loop,))
    else:
        log('SKIP slice check: this kernel shows no se.slice')
    h.check(not any(v[1] & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO for v in th.values()),
            'no thread runs SCHED_FIFO')
    h.check('SCHED_FIFO' not in fu.node_log(c.nodes['a']), 'the log claims no real-time loop')
    cfg = c.config_path
    c.stop_all()

    # 3. a bad value
    with open(cfg) as f:
        text = f.read()
    bad = cfg + '.bad'
    with open(bad, 'w') as f:
        f.write(text.replace('loop_priority = normal', 'loop_priority = high', 1))
    r = subprocess.run([h.sgnfsd, '-t', '-c', bad], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    out = r.stdout.decode()
    h.check(r.returncode == 1 and "loop_priority = 'high': expected realtime or normal" in out,
            'sgnfsd -t refuses loop_priority = high, naming the values (exit %d: %s)'
            % (r.returncode, out.strip()))

    # 5. the loop pinned
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise harness.Skip('loop_cpu needs two CPUs to separate the loop from the rest '
                           '(this test may use %s)' % cpus)
    pin = cpus[-1]
    # with the loop in the fair scheduler: libuv's pool is then not made
    # ahead by a thread of sgnfsd's own (the real-time case's reason), and
    # must still not inherit the loop's CPU
    c = h.cluster(groups(), name='pinned', cluster_extra={'loop_cpu': str(pin),
                                                          'loop_priority': 'normal'})
    c.start('a')
    nu.wait_online(h, c, ['g1'])
    e = c.export('g1/data')
    m = hu.Tcp(c.group('g1').vip, c.ports['mount_port'])
    h.check(hu.mnt(m, e.path)[1] is not None, 'a MNT answered (the pool started)')
    m.close()
    pid = c.nodes['a'].pid
    th = threads(pid)
    aff = {}
    for t in th:
        try:
            aff[t] = os.sched_getaffinity(t)
        except OSError:
            pass
    log('affinities: %s' % {th[t][0] + '/' + str(t): sorted(a) for t, a in aff.items()})
    h.check(aff.get(pid) == {pin}, 'with loop_cpu = %d the loop thread runs on CPU %d only (%s)'
            % (pin, pin, aff.get(pid)))
    made = {t: a for t, a in aff.items() if t != pid and not th[t][0].startswith('iou-wrk')}
    h.check(len(made) >= 5 and all(a and pin not in a for a in made.values()),
            'every other thread sgnfsd made (%d) runs off CPU %d, on the others (%s)'
            % (len(made), pin, sorted({tuple(sorted(a)) for a in made.values()})))
    h.check('event loop pinned to CPU %d (loop_cpu)' % pin in fu.node_log(c.nodes['a']),
            'the log says where the loop is pinned')
    h.check(loop_status(c) == {'priority': 'normal', 'cpu': pin, 'spin_us': 0,
                               'spin_hits': 0, 'spin_misses': 0},
            'the status says so: normal, CPU %d (%s)' % (pin, loop_status(c)))
    reload_refused(h, c, 'loop_cpu', 'none')
    h.check(os.sched_getaffinity(pid) == {pin}, 'the loop stays on CPU %d' % pin)
    cfg = c.config_path
    c.stop_all()
    with open(cfg) as f:
        text = f.read()
    for val, pre, want in (('1024', None, "loop_cpu = '1024': expected none or a CPU number"),
                           ('-1', None, "loop_cpu = '-1': expected none or a CPU number"),
                           (str(pin), lambda: os.sched_setaffinity(0, {cpus[0]}),
                            'loop_cpu = %d: not a CPU sgnfsd may use on this machine '
                            '(it may use CPU %d)' % (pin, cpus[0]))):
        with open(bad, 'w') as f:
            f.write(text.replace('loop_cpu = none', 'loop_cpu = %s' % val, 1))
        r = subprocess.run([h.sgnfsd, '-t', '-c', bad], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, preexec_fn=pre)
        out = r.stdout.decode()
        h.check(r.returncode == 1 and want in out,
                'sgnfsd -t refuses loop_cpu = %s%s, naming the key (exit %d: %s)'
                % (val, ' run on CPU %d alone' % cpus[0] if pre else '', r.returncode,
                   out.strip()))

    # 6. busy polling: a node that may use one CPU only does not poll (it
    # would keep whatever else runs there off the CPU); with two it does
    for name, wrap, want, line in (
            ('spin1', ('taskset', '-c', str(cpus[0])), 0,
             'poll_spin_us = 50, but the node may use one CPU only: the loop does not poll'),
            ('spin2', (), 50, 'the loop polls up to 50 us before it sleeps (poll_spin_us)')):
        c = h.cluster(groups(), name=name, cluster_extra={'poll_spin_us': '50'})
        c.start('a', wrap=wrap)
        nu.wait_online(h, c, ['g1'])
        st = loop_status(c) or {}
        h.check(st.get('spin_us') == want and line in fu.node_log(c.nodes['a']),
                'poll_spin_us = 50%s: status spin_us %d, logged (%s)'
                % (' on CPU %d alone' % cpus[0] if wrap else '', want, st))
        c.stop_all()


if __name__ == '__main__':
    harness.main(test, timeout=120)
