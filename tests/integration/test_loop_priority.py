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
    # 4. a reload cannot change it
    c.cluster_extra['loop_priority'] = 'normal'
    ou.write_config(c)
    rc, out, _ = ou.ctl(c, 'reload', 'a')
    h.check(rc == 1 and 'loop_priority' in out and 'restart' in out,
            'a reload changing loop_priority is refused, naming the key (%d %r)' % (rc, out))
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


if __name__ == '__main__':
    harness.main(test, timeout=120)
