#!/usr/bin/env python3
"""
test_vm_two_groups - one kernel client holds locks in two groups served by
the same node; one group moves (`sgnfsctl move`).  The moved group's lock
is reclaimed on the new owner; the other group's lock is untouched: never
in grace, never reclaimed (its lock record on the server keeps its place),
and another host is refused it all along.
"""
import os
import subprocess

import vm_util
from harness import Export, Group, log
from nsm_util import ctl_path, status as ns_status, wait_group


def test(h):
    with vm_util.VmLab(h) as lab:
        c = lab.cluster([Group('g1', [Export('g1', fsid=1741)], nodes=('a', 'b'), grace=30),
                         Group('g2', [Export('g2', fsid=1742)], nodes=('a', 'b'), grace=30)])
        e1, e2 = c.export('g1'), c.export('g2')
        v1, v2 = c.group('g1').vip, c.group('g2').vip
        for e in (e1, e2):
            with open(os.path.join(e.path, 'p'), 'wb') as f:
                f.write(b'\0' * 4096)
        na = lab.start_node(c, 'a')
        c.start('b', wait=False)
        g, = lab.boot(1)
        other = vm_util.OtherHost(lab)
        g.setup(lab.hosts())
        g.mount(v1, e1.path, '/mnt/g1')
        g.mount(v2, e2.path, '/mnt/g2')
        g.hold('A', 'try', '/mnt/g1/p', 0, 10)
        g.hold('B', 'try', '/mnt/g2/p', 0, 10)
        h.require(g.wait_hold('A') == 'locked' and g.wait_hold('B') == 'locked',
                  'the guest holds a lock in each group')
        before = ns_status(h, c).get('g1', {}).get('locks', [])
        wait_group(h, c, 'g2', owner='a')
        off = os.path.getsize(na.logpath)
        cp = subprocess.run([ctl_path(), '-c', c.config_path, 'move', 'g2', 'b'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        log('sgnfsctl move: %d %s' % (cp.returncode, cp.stdout.decode(errors='replace')))
        h.check(cp.returncode == 0, 'sgnfsctl move g2 b exits 0')
        h.check(other.lock(v1, e1.path + '/p', 5, 1) == 'denied',
                'during the move another host is refused the g1 lock')
        st = wait_group(h, c, 'g2', owner='b', state='online', timeout=90)
        h.check([l.get('client') for l in st['g2'].get('locks', [])] == [g.name],
                'g2\'s lock was reclaimed on b')
        h.check(st.get('g1', {}).get('state') == 'online' and st['g1'].get('_node') == 'a',
                'g1 stays online on a')
        h.check(st['g1'].get('locks', []) == before,
                'g1\'s lock is untouched (%s)' % st['g1'].get('locks'))
        with open(na.logpath) as f:
            f.seek(off)
            alog = f.read()
        h.check('group=g1 grace' not in alog and 'group=g1 client=%s reclaimed' % g.name not in alog,
                'g1 had no grace and no reclaim')
        h.check(other.lock(v1, e1.path + '/p', 5, 1) == 'denied',
                'after the move another host is still refused the g1 lock')
        h.check(other.lock(v2, e2.path + '/p', 5, 1) == 'denied',
                'and the g2 lock on its new owner')
        h.check('failed to reclaim' not in g.run('dmesg', quiet=True)[1],
                'the guest failed to reclaim nothing')
        g.release('A')
        g.release('B')


vm_util.main(test, timeout=900)
