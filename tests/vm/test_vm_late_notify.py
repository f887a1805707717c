#!/usr/bin/env python3
"""
test_vm_late_notify - a Linux kernel client whose rpc.statd is down when
its group fails over, gets the SM_NOTIFY late, and keeps its lock through
the next failover (issue 17: "the lost lock").

  1. The guest locks and unlocks once on g1 (it is now on g1's client
     list), then its statd is killed.
  2. kill -9 of node a: b takes g1 over.  The journal holds no lock, so no
     grace; the SM_NOTIFY to the guest keeps failing (statd down).
  3. The guest takes lock B (a new lock, granted: the kernel still counts
     the server as monitored).  Then its statd starts again; the retried
     SM_NOTIFY lands and the kernel reclaims B: the server must answer
     GRANTED (it holds B for that very owner).  Refused, Linux drops B from
     its reclaim list ("lockd: failed to reclaim lock").
  4. kill -9 of node b: a takes g1 over with B reserved; the guest is
     notified and reclaims B.  Once grace is over, another host must still
     be refused B's range, and the guest's holder still holds it.
Fails on the code before the fix: step 3 gets DENIED_NOLOCKS, step 4
reclaims nothing, grace ends at its timeout and the other host is granted.
"""
import os

import vm_util
from harness import Export, Group, log
from nsm_util import status as ns_status, wait_group


def test(h):
    with vm_util.VmLab(h) as lab:
        c = lab.cluster([Group('g1', [Export('g1', fsid=1701)], nodes=('a', 'b'), grace=20)])
        e = c.export('g1')
        vip = c.group('g1').vip
        with open(os.path.join(e.path, 'f'), 'wb') as f:
            f.write(b'\0' * 4096)
        lab.start_node(c, 'a')
        c.start('b', wait=False)
        g, = lab.boot(1)
        other = vm_util.OtherHost(lab)
        g.setup(lab.hosts())
        g.mount(vip, e.path, '/mnt/g1')
        f = '/mnt/g1/f'

        # 1. on the list, nothing held; statd down.
        rc, w = g.lock('try', f, 0, 10)
        h.require(rc == 0 and w == 'locked', 'guest locks and unlocks once (%s)' % w)
        g.stop_statd()

        # 2. first failover, no grace (nothing journaled).
        c.kill9('a')
        wait_group(h, c, 'g1', owner='b')
        lab.wait_vip(vip)

        # 3. a new lock, then the late notification.
        g.hold('B', 'wait', f, 100, 100)
        h.require(g.wait_hold('B', timeout=90) == 'locked', 'guest takes lock B after the takeover')
        nb = c.nodes['b']
        off = os.path.getsize(nb.logpath)
        g.start_statd()
        got = vm_util.wait_for(lambda: g.run('grep -c "SM_NOTIFY" /var/log/statd.log',
                                             quiet=True)[1].strip() not in ('', '0'), 90)
        h.check(got, 'the retried SM_NOTIFY reaches the restarted statd')

        def reclaim_answered():
            with open(nb.logpath, 'rb') as fl:
                fl.seek(off)
                if b'reclaim out of grace' in fl.read():
                    return True
            return 'failed to reclaim' in g.run('dmesg', quiet=True)[1]
        h.check(vm_util.wait_for(reclaim_answered, 60),
                'the kernel reclaims B after the late SM_NOTIFY')
        dm = g.run('dmesg', quiet=True)[1]
        h.check('failed to reclaim' not in dm,
                'the kernel did not fail to reclaim B (no "lockd: failed to reclaim lock")')
        h.check(other.lock(vip, e.path + '/f', 150, 1) == 'denied',
                'out of grace, another host is refused B')

        # 4. second failover: B is reserved, reclaimed, and still held.
        c.start('a', wait=False)
        c.kill9('b')
        wait_group(h, c, 'g1', owner='a', state='online', timeout=60)
        st = ns_status(h, c)
        locks = [l for l in st.get('g1', {}).get('locks', []) if l.get('start') == 100]
        h.check(len(locks) == 1 and locks[0].get('client') == g.name,
                'after the second failover the server holds B for %s (%s)' % (g.name, locks))
        h.check(other.lock(vip, e.path + '/f', 150, 1) == 'denied',
                'after the second failover another host is still refused B')
        h.check(g.hold_state('B') == 'locked', 'the guest\'s holder still holds B')
        rc, w = g.lock('test', f, 150, 1)
        h.check(w == 'conflict', 'in the guest, F_GETLK sees B held (%s)' % w)
        g.release('B')
        h.check(vm_util.wait_for(lambda: other.lock(vip, e.path + '/f', 150, 1) == 'granted', 30),
                'once the guest unlocks, the other host gets it')
        log('late-notify scenario done')


vm_util.main(test, timeout=900)
