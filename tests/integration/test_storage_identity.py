#!/usr/bin/env python3
"""
Storage identity (src/cluster/storage.h, docs/deployment.md): a group is
only ever served from the storage it was initialised on, by `sgnfsctl
init`; an empty mount point is never served.

Failover-LUN layout, embedded lease: g1's storage is an ext4 image (the
"LUN") that is mounted on one node at a time.  Node a and node b each run
in a mount namespace of their own (same network namespace, so the VIP is
one address); the image is mounted at <tmp>/mnt/g1 in a's namespace only.
The host's <tmp>/mnt/g1 (what b sees) is an empty directory.

Checked, in order:
  * without `sgnfsctl init`, no node serves g1 (a has the storage but no
    identity) and a's status says why; nothing is created on the storage;
  * after init (run where the storage is mounted, in a's namespace): a
    serves g1; b does not, its status names the missing identity, and b
    has created nothing in its empty mount point;
  * a is killed and its namespace (and mount) is gone: b still does not
    serve g1 while the storage is absent - the VIP refuses connections
    for a while, and b's status says why;
  * the image is mounted in b's namespace: b takes g1 over, the VIP
    answers, the NSM state number continues a's;
  * init is idempotent; a copy of .sgnfs/ on another filesystem is refused
    as the wrong storage (init without --force exits 1), and so is another
    group's identity.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import harness
import fo_util as fu
from harness import log


class MountNs:
    """A mount namespace kept alive by a `sleep`; commands run inside it
    with nsenter."""

    def __init__(self, h, name):
        self.h = h
        self.name = name
        self.holder = subprocess.Popen(['unshare', '--mount', '--propagation', 'private',
                                        'sleep', 'infinity'], preexec_fn=harness._pdeathsig)
        me = os.stat('/proc/self/ns/mnt').st_ino
        for _ in range(200):
            try:
                if os.stat('/proc/%d/ns/mnt' % self.holder.pid).st_ino != me:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        h.procs.append(self.holder) if hasattr(h, 'procs') else None

    def argv(self, argv):
        return ['nsenter', '-t', str(self.holder.pid), '-m', '--'] + list(argv)

    def run(self, argv, check=True):
        p = subprocess.run(self.argv(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = p.stdout.decode()
        log('[%s] %s -> %d %s' % (self.name, ' '.join(argv), p.returncode, out.strip()))
        if check and p.returncode != 0:
            raise harness.TestAbort('%s: %s failed' % (self.name, ' '.join(argv)))
        return p.returncode, out

    def destroy(self):
        if self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()


def start_node(h, c, ns, node):
    logpath = os.path.join(h.logdir, 'node-%s.log' % node)
    logf = open(logpath, 'wb')
    proc = subprocess.Popen(ns.argv([h.sgnfsd, '-c', c.config_path, '-n', node, '-f']),
                            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=harness._pdeathsig)
    logf.close()
    nd = harness.Node(c, node, proc, logpath, [])
    c.nodes[node] = nd
    c.all_nodes.append(nd)
    h.logs.append((logpath, 'sgnfsd node %s in namespace %s' % (node, ns.name)))
    return nd


def connects(vip, port):
    try:
        with socket.create_connection((vip, port), timeout=1):
            return True
    except OSError:
        return False


def reason_of(c, node, group):
    doc = fu.status_raw(c) or {}
    for nd in doc.get('nodes', []):
        if nd.get('name') == node:
            for s in (nd.get('status') or {}).get('standby', []):
                if s.get('name') == group:
                    return s.get('reason', '')
    return None


def wait_reason(h, c, node, group, word, timeout=20):
    deadline = time.monotonic() + timeout
    r = None
    while time.monotonic() < deadline:
        r = reason_of(c, node, group)
        if r and word in r:
            return r
        time.sleep(0.2)
    return r


def test(h):
    for tool in ('mkfs.ext4', 'losetup', 'unshare', 'nsenter'):
        h.need_tool(tool)
    # The export is the mount point itself, the layout in which a standby
    # used to create .sgnfs/ in the empty directory and serve it.
    gs = [harness.Group('g1', [harness.Export('mnt/g1', fsid=101)], nodes=('a', 'b'),
                        grace=5)]
    c = h.cluster(groups=gs, init=False)
    e = c.export('mnt/g1')
    mnt = e.path                # on the host (b's view): an empty directory
    vip, nfs = c.group('g1').vip, c.ports['nfs_port']

    img = os.path.join(c.dir, 'lun.img')
    with open(img, 'wb') as f:
        f.truncate(16 << 20)
    h.run(['mkfs.ext4', '-q', '-F', img])
    ns_a, ns_b = MountNs(h, 'A'), MountNs(h, 'B')
    loop = None
    try:
        loop = subprocess.run(['losetup', '--find', '--show', img], stdout=subprocess.PIPE,
                              check=True).stdout.decode().strip()
        ns_a.run(['mount', loop, mnt])
        ns_a.run(['rmdir', os.path.join(mnt, 'lost+found')])

        # -- not initialised: nobody serves ---------------------------------
        start_node(h, c, ns_a, 'a')
        start_node(h, c, ns_b, 'b')
        r = wait_reason(h, c, 'a', 'g1', 'init')
        h.check(r is not None and 'sgnfsctl init g1' in r,
                'a does not serve the uninitialised g1, and says to run init (%s)' % r)
        h.check(not connects(vip, nfs), 'g1\'s VIP refuses connections')
        rc, out = ns_a.run(['ls', '-A', e.path], check=False)
        h.check(out.strip() == '', 'nothing was created on the uninitialised storage')

        # -- init where the storage is mounted -------------------------------
        rc, out = ns_a.run([c.ctl_path(), '-c', c.config_path, 'init', 'g1'], check=False)
        h.require(rc == 0 and 'initialised' in out, 'sgnfsctl init g1 in a\'s namespace')
        fu.wait_group(h, c, 'g1', owner='a', timeout=30)
        h.check(connects(vip, nfs), 'a serves g1 once initialised')
        r = wait_reason(h, c, 'b', 'g1', 'identity')
        h.check(r is not None and 'absent' in r,
                'b reports g1\'s storage absent there (%s)' % r)
        h.check(os.listdir(mnt) == [], 'b created nothing in its empty mount point')
        s_a = None
        rc, out = ns_a.run(['cat', os.path.join(e.path, '.sgnfs', 'state')], check=False)
        if rc == 0:
            s_a = int(out.split()[0])

        # -- a dies and its mount goes: b must not serve ----------------------
        c.nodes['a'].expect_clean_exit = False
        c.kill9('a')
        ns_a.destroy()                     # the LUN is unmounted with a's namespace
        t_end = time.monotonic() + 4
        served = False
        while time.monotonic() < t_end:    # 4 s: well past the lease poll and settle
            served |= connects(vip, nfs)
            time.sleep(0.2)
        h.check(not served, 'b never serves g1 while the storage is absent')
        st = fu.status(c)
        h.check('g1' not in st, 'status: g1 served by nobody (%s)' % fu.summary(st))
        r = reason_of(c, 'b', 'g1')
        h.check(r is not None and 'absent' in r, 'b\'s status says why (%s)' % r)
        h.check(os.listdir(mnt) == [], 'still nothing in b\'s empty mount point')

        # -- the storage arrives at b ----------------------------------------
        ns_b.run(['mount', loop, mnt])
        fu.wait_group(h, c, 'g1', owner='b', timeout=30)
        h.check(connects(vip, nfs), 'b serves g1 once the storage is mounted there')
        rc, out = ns_b.run(['cat', os.path.join(e.path, '.sgnfs', 'state')], check=False)
        s_b = int(out.split()[0]) if rc == 0 else None
        h.check(s_a is not None and s_b is not None and s_b > s_a,
                'the NSM state number continues on the same storage (%s -> %s)' % (s_a, s_b))

        # -- init: idempotent; wrong storage refused -------------------------
        rc, out = ns_b.run([c.ctl_path(), '-c', c.config_path, 'init', 'g1'], check=False)
        h.check(rc == 0 and 'already initialised' in out, 'init again: 0, already initialised')
        other = tempfile.mkdtemp(prefix='other-', dir='/dev/shm')
        try:
            ns_b.run(['cp', '-a', os.path.join(e.path, '.sgnfs'), other])
            cfg2 = os.path.join(c.dir, 'copy.ini')
            with open(c.config_path) as f:
                txt = f.read()
            with open(cfg2, 'w') as f:
                f.write(txt.replace('[export %s]' % e.path, '[export %s]' % other))
            p = subprocess.run([c.ctl_path(), '-c', cfg2, 'init', 'g1'],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out = p.stdout.decode()
            log('init on a copy: %d %s' % (p.returncode, out.strip()))
            h.check(p.returncode == 1 and 'wrong storage' in out,
                    'a copy of .sgnfs/ on another filesystem: init refuses it (1)')
            with open(os.path.join(other, '.sgnfs', 'identity')) as f:
                ident = f.read()
            with open(os.path.join(other, '.sgnfs', 'identity'), 'w') as f:
                f.write(ident.replace('group g1', 'group g9'))
            p = subprocess.run([c.ctl_path(), '-c', cfg2, 'init', 'g1'],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            h.check(p.returncode == 1 and 'belongs to group g9' in p.stdout.decode(),
                    'another group\'s identity: init refuses it (1)')
        finally:
            shutil.rmtree(other, ignore_errors=True)
        c.stop('b')
    finally:
        c.kill_all()
        ns_b.destroy()
        ns_a.destroy()
        if loop:
            subprocess.run(['losetup', '-d', loop])


harness.main(test, timeout=150)
