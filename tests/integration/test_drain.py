#!/usr/bin/env python3
"""
drain / undrain with the embedded lease (docs/failover.md): a drained node
hands each of its groups to the next live node of the group's list, at
once, and takes none until `sgnfsctl undrain`.

Cluster: nodes a, b, c; g1 nodes b c a (the list of the issue: draining b
used to leave g1 offline, because c and a kept waiting for b, alive and
ahead of them in the list).  g2 nodes a b c stays on a throughout.  g3
may only be served by c.

Checked, in order:
  * g1 comes up on b; a host holds a lock in g1;
  * drain b: `sgnfsctl drain` returns (exit 0) only once g1 is served by
    c (the next node of its list): the first status after it shows g1 on
    c, no polling; the host reclaims there; b's status says it is
    draining; g2 never leaves a;
  * undrain b: b is serving again (status), g1 stays on c (no failback);
  * drain c: g1 goes back to b (ahead of a in g1's list, serving again)
    before drain returns; g3 has nowhere to go: drain exits 3 at once and
    names g3 on stderr;
  * undrain c: g3 is served by c again;
  * undrain of a node that is not draining, and drain of an unknown node,
    exit as documented (0, and 1 with a message).
"""

import subprocess

import harness
import fo_util as fu
from harness import log


def ctl(c, *args):
    p = subprocess.run([fu.ctl_path(), '-c', c.config_path] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=150,
                       preexec_fn=harness._pdeathsig)
    out = p.stdout.decode()
    err = p.stderr.decode()
    log('sgnfsctl %s -> %d %s %s' % (' '.join(args), p.returncode, out.strip(), err.strip()))
    return p.returncode, out + err


def draining(c, node):
    doc = fu.status_raw(c) or {}
    for nd in doc.get('nodes', []):
        if nd.get('name') == node:
            return (nd.get('status') or {}).get('draining')
    return None


def test(h):
    gs = [harness.Group('g1', [harness.Export('g1/fs', fsid=101)], nodes=('b', 'c', 'a'),
                        grace=10),
          harness.Group('g2', [harness.Export('g2/fs', fsid=102)], nodes=('a', 'b', 'c'),
                        grace=10),
          harness.Group('g3', [harness.Export('g3/fs', fsid=103)], nodes=('c',), grace=10)]
    c = h.cluster(groups=gs, nodes=['a', 'b', 'c'])
    import os
    for g in gs:
        p = os.path.join(g.exports[0].path, fu.LOCKFILE)
        with open(p, 'wb') as f:
            f.write(b'\0' * 4096)
        os.chmod(p, 0o666)
    for n in ('a', 'b', 'c'):
        c.start(n, wait=False)
    fu.wait_group(h, c, 'g1', owner='b', timeout=30)
    fu.wait_group(h, c, 'g2', owner='a', timeout=30)
    fu.wait_group(h, c, 'g3', owner='c', timeout=30)
    f1 = fu.lock_file(c, 'g1')
    ho = fu.Hold(h, fu.client_addr(c, 1, 1), c.group('g1').vip, f1, 0, 8, per_host=1,
                 nhosts=1, tag='g1')
    h.require(ho.wait_holding(), 'a g1 host holds its lock on b')

    # -- drain b: g1 goes to c at once ---------------------------------------
    rc, out = ctl(c, 'drain', 'b')
    h.check(rc == 0, 'drain b: exit 0')
    h.check('group g1: ' in out and ' on node c' in out, 'drain b says where g1 went')
    # drain returned: g1 must be served already, on c; no waiting here.
    st = fu.status(c)
    h.check(st.get('g1', {}).get('owners') == ['c'] and
            st['g1']['state'] in ('online', 'grace'),
            'when drain b returns, g1 is served by c, the next node of its list (%s)'
            % fu.summary(st))
    h.check(ho.wait_count('reclaimed', 1, 30) >= 1, 'the g1 host reclaimed on c')
    h.check(draining(c, 'b') is True, 'b\'s status says it is draining')
    st = fu.status(c)
    h.check(st.get('g2', {}).get('owners') == ['a'], 'g2 stayed on a (%s)' % fu.summary(st))

    # -- undrain b: serving again, no failback -------------------------------
    rc, out = ctl(c, 'undrain', 'b')
    h.check(rc == 0, 'undrain b: exit 0')
    h.check(draining(c, 'b') is False, 'b\'s status: no longer draining')
    st = fu.status(c)
    h.check(st.get('g1', {}).get('owners') == ['c'],
            'g1 stays on c after undrain (no failback) (%s)' % fu.summary(st))

    # -- drain c: g1 to b, ahead of a in its list -----------------------------
    rc, out = ctl(c, 'drain', 'c')
    h.check(rc == 3, 'drain c: exit 3, g3 has no other node (got %d)' % rc)
    h.check('group g3 is not served (no other node' in out,
            'drain c names g3 and why it is not served')
    st = fu.status(c)
    h.check(st.get('g1', {}).get('owners') == ['b'] and
            st['g1']['state'] in ('online', 'grace'),
            'when drain c returns, g1 is back on b (undrained, ahead of a) (%s)'
            % fu.summary(st))
    h.check('g3' not in st, 'g3 is served by nobody while c drains (%s)' % fu.summary(st))
    rc, out = ctl(c, 'undrain', 'c')
    h.check(rc == 0, 'undrain c: exit 0')
    fu.wait_group(h, c, 'g3', owner='c', timeout=30)
    h.check(True, 'g3 served by c again after undrain')
    rc, out = ctl(c, 'undrain', 'a')
    h.check(rc == 0, 'undrain of a node that is not draining: exit 0')
    rc, out = ctl(c, 'drain', 'nosuch')
    h.check(rc != 0, 'drain of an unknown node: non-zero exit')
    ho.stop()
    c.stop_all()


harness.main(test, timeout=180)
