#!/usr/bin/env python3
"""
test_vm_locks - two Linux kernel clients (lockd) contend through sgnfs:
fcntl byte-range locks (F_SETLK, F_GETLK, shared/exclusive, to end of
file, beyond 1 TiB), flock(2) with local_lock=none (sent as whole-file
NLM locks), and a blocking F_SETLKW that the server grants by its
NLM_GRANTED callback when the holder lets go.
"""
import os
import time

import vm_util
from harness import Export, Group

TIB = 1 << 40


def test(h):
    with vm_util.VmLab(h) as lab:
        c = lab.cluster([Group('g1', [Export('g1', fsid=1711)], nodes=('a',), grace=5)])
        e = c.export('g1')
        vip = c.group('g1').vip
        for n in ('p', 'q', 'r'):
            with open(os.path.join(e.path, n), 'wb') as f:
                f.write(b'\0' * 4096)
        nd = lab.start_node(c, 'a')
        g0, g1 = lab.boot(2)
        for g in (g0, g1):
            g.setup(lab.hosts())
            g.mount(vip, e.path, '/mnt/g1', opts='vers=3,proto=tcp,local_lock=none')
        p, q, r = '/mnt/g1/p', '/mnt/g1/q', '/mnt/g1/r'

        # fcntl: exclusive, shared, to EOF, beyond 1 TiB.
        g0.hold('x', 'try', p, 0, 100, 'x')
        h.require(g0.wait_hold('x') == 'locked', 'guest 0 holds p 0..99 exclusive')
        h.check(g1.lock('try', p, 50, 10)[1] == 'denied', 'guest 1: overlapping F_SETLK denied')
        h.check(g1.lock('try', p, 100, 10)[1] == 'locked', 'guest 1: adjacent range granted')
        rc, out = g1.run('python3 /sgvm/vmlock.py test %s 0 0 x' % p)
        h.check(out.startswith('conflict type=x start=0 len=100'),
                'guest 1: F_GETLK reports guest 0\'s lock (%s)' % out.strip())
        g0.release('x')
        h.check(g1.lock('try', p, 50, 10)[1] == 'locked', 'guest 1: granted once released')

        g0.hold('s', 'try', q, 0, 0, 's')
        h.require(g0.wait_hold('s') == 'locked', 'guest 0 holds q shared to EOF')
        h.check(g1.lock('try', q, 10, 10, 's')[1] == 'locked', 'guest 1: shared over shared granted')
        h.check(g1.lock('try', q, 5 * TIB, 1, 'x')[1] == 'denied',
                'guest 1: exclusive beyond 1 TiB denied by the to-EOF shared lock')
        g0.release('s')
        g0.hold('t', 'try', q, 2 * TIB, 4096, 'x')
        h.require(g0.wait_hold('t') == 'locked', 'guest 0 locks 4 KiB at 2 TiB')
        h.check(g1.lock('try', q, 2 * TIB + 4095, 1)[1] == 'denied', 'guest 1: its last byte is taken')
        h.check(g1.lock('try', q, 2 * TIB + 4096, 1)[1] == 'locked', 'guest 1: the byte after is free')
        g0.release('t')

        # flock with local_lock=none: whole-file locks across hosts.
        g0.hold('f', 'flock', r, 0, 0, 'x')
        h.require(g0.wait_hold('f') == 'locked', 'guest 0 flock(LOCK_EX) on r')
        h.check(g1.lock('flock', r, 0, 0, 'x')[1] == 'denied', 'guest 1: flock(LOCK_EX|LOCK_NB) denied')
        h.check(g1.lock('try', r, 1000, 1)[1] == 'denied',
                'guest 1: an fcntl lock in r is denied too (flock is a whole-file NLM lock)')
        g0.release('f')
        h.check(g1.lock('flock', r, 0, 0, 'x')[1] == 'locked', 'guest 1: flock granted after release')

        # Blocking: F_SETLKW waits, the server calls it back.
        g0.hold('b', 'try', p, 0, 0, 'x')
        h.require(g0.wait_hold('b') == 'locked', 'guest 0 holds all of p')
        g1.hold('w', 'wait', p, 10, 10, 'x')
        # (no event to wait for: the check below can only miss a wrong
        # grant that comes later, never fail a right run)
        time.sleep(2)
        h.check(g1.hold_state('w') == '', 'guest 1 is not granted while guest 0 holds p')
        off = os.path.getsize(nd.logpath)
        g0.release('b')
        h.check(g1.wait_hold('w', timeout=60) == 'locked', 'guest 1\'s F_SETLKW is granted')
        with open(nd.logpath) as f:
            f.seek(off)
            h.check('blocked lock granted; calling back' in f.read(),
                    'it came through the server\'s NLM_GRANTED callback')
        h.check(g0.lock('try', p, 15, 1)[1] == 'denied', 'guest 0 now sees guest 1\'s lock')
        g1.release('w')
        st = vm_util.nsm_util.status(h, c)
        h.check(st.get('g1', {}).get('locks', []) == [],
                'nothing is left locked on the server (%s)' % st.get('g1', {}).get('locks'))


vm_util.main(test, timeout=900)
