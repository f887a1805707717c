#!/usr/bin/env python3
"""
test_vm_client_reboot - a kernel client crashes (qemu killed: its RAM is
gone, its /var/lib/nfs stays, as on a disk) and reboots: its statd's
sm-notify tells the group's VIP, sgnfs frees what it held, and the other
guest's blocked F_SETLKW is granted by the callback.  The rebooted guest
can mount and lock again.
"""
import os

import vm_util
from harness import Export, Group
from nsm_util import status as ns_status


def locks_of(h, c, client):
    return [l for l in ns_status(h, c).get('g1', {}).get('locks', []) if l.get('client') == client]


def test(h):
    with vm_util.VmLab(h) as lab:
        c = lab.cluster([Group('g1', [Export('g1', fsid=1731)], nodes=('a',), grace=5)])
        e = c.export('g1')
        vip = c.group('g1').vip
        with open(os.path.join(e.path, 'p'), 'wb') as f:
            f.write(b'\0' * 4096)
        lab.start_node(c, 'a')
        g0, g1 = lab.boot(2)
        for g in (g0, g1):
            g.setup(lab.hosts())
            g.mount(vip, e.path, '/mnt/g1')
        p = '/mnt/g1/p'
        g0.hold('L', 'try', p, 0, 0)
        h.require(g0.wait_hold('L') == 'locked', 'guest 0 holds all of p')
        h.check(len(locks_of(h, c, g0.name)) == 1, 'the server holds guest 0\'s lock')
        # (statd names the record after the VIP's name in /etc/hosts, sg1)
        sm = g0.run('ls /var/lib/nfs/sm', quiet=True)[1].split()
        h.check(sm == ['sg1'], 'guest 0\'s statd monitors the server, on its disk (%s)' % sm)
        g1.hold('W', 'wait', p, 0, 1)

        g0.crash()
        h.check(g1.hold_state('W') == '', 'guest 1 still waits while guest 0 is down')
        h.check(len(locks_of(h, c, g0.name)) == 1, 'the crashed guest\'s lock is kept until it says so')
        g0.start()
        # At boot the guest's statd runs sm-notify: SM_NOTIFY to the VIP.
        g0.setup(lab.hosts())
        h.check(vm_util.wait_for(lambda: locks_of(h, c, g0.name) == [], 60),
                'the reboot notification frees guest 0\'s lock on the server')
        h.check(g1.wait_hold('W', timeout=90) == 'locked',
                'guest 1\'s waiter is granted once the rebooted guest\'s lock is gone')
        g0.mount(vip, e.path, '/mnt/g1')
        h.check(g0.lock('try', p, 0, 1)[1] == 'denied', 'the rebooted guest sees guest 1\'s lock')
        h.check(g0.lock('try', p, 100, 1)[1] == 'locked', 'and locks elsewhere in p again')
        g1.release('W')


vm_util.main(test, timeout=900)
