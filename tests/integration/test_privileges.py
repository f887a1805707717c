#!/usr/bin/env python3
"""
test_privileges - sgnfsd runs with the least it needs (issue 13 item 5).

  1. Every thread of a running node (the loop, the thread pool after real
     NFS traffic, the watchdog) has in CapEff, CapPrm and CapBnd only the
     capabilities src/common/priv.h lists (intersected with what this
     machine gave the test), none of CAP_SYS_ADMIN, CAP_SYS_PTRACE,
     CAP_KILL, CAP_SYS_MODULE, NoNewPrivs is 1 and a seccomp filter is on
     (Seccomp: 2; docs/security.md).  The node still serves:
     a squashed client and a root client (squash = none) can create and
     write files.
  2. Where the test itself holds CAP_SYS_RESOURCE and can mount an ext4
     loop image: on an export whose filesystem keeps half its blocks for
     root, a squashed client that writes until NFS3ERR_NOSPC leaves the
     root-reserved blocks free (knfsd's rule: CAP_SYS_RESOURCE is dropped
     for a client identity that is not root).  Skipped otherwise, with a
     line saying why.
"""
import os
import shutil
import subprocess

import harness
from harness import Export, Group, log
from hostile_util import (AUTH_SYS, NFS3_OK, NFS_PROG, Tcp, Unpacker, auth_sys, lookup_args,
                          lookup_fh, mnt, nfs_fh, opaque, u32, u64)

CAP = {'CHOWN': 0, 'DAC_OVERRIDE': 1, 'DAC_READ_SEARCH': 2, 'FOWNER': 3, 'FSETID': 4,
       'KILL': 5, 'SETGID': 6, 'SETUID': 7, 'NET_BIND_SERVICE': 10, 'NET_ADMIN': 12,
       'NET_RAW': 13, 'SYS_MODULE': 16, 'SYS_PTRACE': 19, 'SYS_ADMIN': 21,
       'SYS_NICE': 23, 'SYS_RESOURCE': 24, 'MKNOD': 27}
KEEP = ['NET_BIND_SERVICE', 'DAC_READ_SEARCH', 'DAC_OVERRIDE', 'FOWNER', 'CHOWN', 'FSETID',
        'MKNOD', 'SETUID', 'SETGID', 'SYS_RESOURCE']
NFS3ERR_NOSPC = 28
USER = (AUTH_SYS, auth_sys(machine=b'privtest', uid=1000, gid=1000))
ROOT = (AUTH_SYS, auth_sys(machine=b'privtest', uid=0, gid=0))


def status_fields(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(':')
            out[k] = v.strip()
    return out


def my_caps():
    return int(status_fields('/proc/self/status')['CapPrm'], 16)


def create(conn, dirfh, name, cred):
    # CREATE3args: where (dir, name), how = UNCHECKED with an empty sattr3
    # (mode set: 0666).
    sattr = u32(1) + u32(0o666) + u32(0) + u32(0) + u32(0) + u32(0) + u32(0)
    r = conn.call(NFS_PROG, 3, 8, lookup_args(dirfh, name) + u32(0) + sattr, cred=cred,
                  timeout=10)
    return Unpacker(r.body).u32()


def write(conn, fh, off, data, cred):
    args = nfs_fh(fh) + u64(off) + u32(len(data)) + u32(2) + opaque(data)
    return Unpacker(conn.call(NFS_PROG, 3, 7, args, cred=cred, timeout=30).body).u32()


def check_caps(h, pid, allowed):
    tasks = os.listdir('/proc/%d/task' % pid)
    h.check(len(tasks) >= 2, 'sgnfsd runs %d threads (loop, pool, watchdog)' % len(tasks))
    bad = []
    for t in tasks:
        st = status_fields('/proc/%d/task/%s/status' % (pid, t))
        for k in ('CapEff', 'CapPrm', 'CapBnd'):
            v = int(st[k], 16)
            if v & ~allowed:
                bad.append('%s %s=%x (extra %x)' % (t, k, v, v & ~allowed))
        if st.get('NoNewPrivs') != '1':
            bad.append('%s NoNewPrivs=%s' % (t, st.get('NoNewPrivs')))
        # seccomp = on (the default): every thread is filtered (mode 2)
        if st.get('Seccomp') != '2':
            bad.append('%s Seccomp=%s' % (t, st.get('Seccomp')))
    log('allowed mask %x; threads %s' % (allowed, ' '.join(tasks)))
    h.check(not bad, 'every thread holds only the kept capabilities, NoNewPrivs and a '
            'seccomp filter: %s'
            % ('; '.join(bad[:6]) or 'ok'))
    st = status_fields('/proc/%d/status' % pid)
    eff = int(st['CapEff'], 16)
    for name in ('SYS_ADMIN', 'SYS_PTRACE', 'KILL', 'SYS_MODULE'):
        h.check(not eff & (1 << CAP[name]), 'CAP_%s is not held' % name)
    h.check(eff & (1 << CAP['DAC_READ_SEARCH']) != 0, 'CAP_DAC_READ_SEARCH is kept (handles)')


def test(h):
    if os.geteuid() != 0:
        raise harness.Skip('needs root')
    mine = my_caps()
    allowed = sum(1 << CAP[n] for n in KEEP) & mine
    g = Group('g1', [Export('g1/sq', fsid=101, squash='all'),
                     Export('g1/root', fsid=102, squash='none')])
    c = h.cluster([g])
    for rel in ('g1/sq', 'g1/root'):
        os.chmod(c.export(rel).path, 0o1777)
    node = c.start('a')
    m = Tcp(g.vip, c.ports['mount_port'], timeout=10)
    n = Tcp(g.vip, c.ports['nfs_port'], timeout=10)
    _, sq = mnt(m, c.export('g1/sq').path.encode())
    _, rt = mnt(m, c.export('g1/root').path.encode())
    h.check(create(n, sq, b'u', USER) == NFS3_OK, 'a squashed client creates a file')
    h.check(create(n, rt, b'r', ROOT) == NFS3_OK, 'a root client creates a file')
    fh = lookup_fh(n.call(NFS_PROG, 3, 3, lookup_args(rt, b'r'), cred=ROOT, timeout=10))
    h.check(fh is not None and write(n, fh, 0, b'x' * 100, ROOT) == NFS3_OK,
            'a root client writes')
    st = os.stat(os.path.join(c.export('g1/sq').path, 'u'))
    h.check(st.st_uid == 65534, 'the squashed file belongs to the anonymous uid (%d)' % st.st_uid)
    check_caps(h, node.pid, allowed)
    m.close()
    n.close()
    c.stop('a')

    # ---- 2. root-reserved blocks ------------------------------------------
    if not mine & (1 << CAP['SYS_RESOURCE']):
        log('SKIP part 2: this machine gives even root no CAP_SYS_RESOURCE, so root-reserved '
            'blocks cannot be reached by anyone here')
        return
    if not shutil.which('mkfs.ext4'):
        log('SKIP part 2: no mkfs.ext4')
        return
    img = os.path.join(h.tmp, 'ext4.img')
    with open(img, 'wb') as f:
        f.truncate(16 << 20)
    r = h.run(['mkfs.ext4', '-q', '-F', '-m', '50', img], check=False, what='mkfs.ext4')
    g2 = Group('g2', [Export('g2/fs', fsid=201, squash='all')])
    c2 = h.cluster([g2])
    mp = c2.export('g2/fs').path
    r = h.run(['mount', '-o', 'loop', img, mp], check=False, what='mount the ext4 image')
    if r.returncode != 0:
        log('SKIP part 2: cannot mount a loop image here')
        return
    try:
        os.chmod(mp, 0o1777)
        c2.start('a')
        m = Tcp(g2.vip, c2.ports['mount_port'], timeout=10)
        n = Tcp(g2.vip, c2.ports['nfs_port'], timeout=30)
        _, root = mnt(m, mp.encode())
        h.require(create(n, root, b'fill', USER) == NFS3_OK, 'the squashed client creates fill')
        fh = lookup_fh(n.call(NFS_PROG, 3, 3, lookup_args(root, b'fill'), cred=USER, timeout=10))
        off, st, chunk = 0, NFS3_OK, b'f' * 65536
        while st == NFS3_OK and off < (32 << 20):
            st = write(n, fh, off, chunk, USER)
            off += len(chunk) if st == NFS3_OK else 0
        vfs = os.statvfs(mp)
        log('wrote %d bytes; blocks %d free %d available %d' % (off, vfs.f_blocks, vfs.f_bfree,
                                                                vfs.f_bavail))
        h.check(st == NFS3ERR_NOSPC, 'the squashed client ends with NFS3ERR_NOSPC (%d)' % st)
        h.check(vfs.f_bfree >= vfs.f_blocks * 4 // 10,
                'the root-reserved blocks stay free (%d of %d free)' % (vfs.f_bfree, vfs.f_blocks))
        m.close()
        n.close()
        c2.stop('a')
    finally:
        subprocess.run(['umount', mp])


if __name__ == '__main__':
    harness.main(test, timeout=180)
