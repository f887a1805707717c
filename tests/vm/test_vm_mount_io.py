#!/usr/bin/env python3
"""
test_vm_mount_io - a Linux kernel client mounts and uses sgnfs:

  * mount by IP over TCP; MOUNT over UDP (mountproto=udp, nosharecache so
    it is a mount of its own; Debian's kernel
    has NFS over UDP compiled out, so NFS itself stays on TCP); mount by
    host name;
  * data: 8 MiB written in the guest, checked by sha256 in the guest (after
    dropping its caches) and on the server's disk, and read back over the
    second mount;
  * Connectathon-style namespace operations (basic tests 1-9 in spirit):
    mkdir tree, create, write, rename across directories, hard link,
    symlink + readlink, readdir of 200 entries, remove, rmdir, each checked
    against the server's directory;
  * lockd's nsm_use_hostnames off (g1 is monitored by address) and on (g2,
    mounted as sg2, by name): a lock in each, then both groups move to the
    other node, and both locks are reclaimed.
"""
import os
import subprocess

import vm_util
from harness import Export, Group, log
from nsm_util import ctl_path, wait_group


def test(h):
    with vm_util.VmLab(h) as lab:
        c = lab.cluster([Group('g1', [Export('g1', fsid=1751)], nodes=('a', 'b'), grace=30),
                         Group('g2', [Export('g2', fsid=1752)], nodes=('a', 'b'), grace=30)])
        e1, e2 = c.export('g1'), c.export('g2')
        v1, v2 = c.group('g1').vip, c.group('g2').vip
        lab.start_node(c, 'a')
        c.start('b', wait=False)
        g, = lab.boot(1)
        g.setup(lab.hosts(), use_hostnames=False)
        g.mount(v1, e1.path, '/mnt/g1', opts='vers=3,proto=tcp')
        g.mount(v1, e1.path, '/mnt/udp', opts='vers=3,proto=tcp,mountproto=udp,nosharecache')
        g.mount('sg2', e2.path, '/mnt/g2', opts='vers=3,proto=tcp')
        mounts = g.run('cat /proc/mounts', quiet=True)[1]
        h.check('mountproto=udp' in mounts, 'the second mount used MOUNT over UDP')
        h.check('sg2:' in mounts, 'g2 is mounted by host name')

        # -- data -------------------------------------------------------------
        g.must('dd if=/dev/urandom of=/tmp/src bs=1M count=8 2>/dev/null')
        s = g.must('sha256sum /tmp/src').split()[0]
        g.must('cp /tmp/src /mnt/g1/data && sync', 'write 8 MiB')
        g.run('echo 3 > /proc/sys/vm/drop_caches')
        h.check(g.run('sha256sum /mnt/g1/data', quiet=True)[1].split()[:1] == [s],
                'read back in the guest: same sha256')
        h.check(g.run('sha256sum /mnt/udp/data', quiet=True)[1].split()[:1] == [s],
                'read through the mountproto=udp mount: same sha256')
        h.check(vm_util.checksum_host(os.path.join(e1.path, 'data')) == s,
                'the server\'s disk: same sha256')
        g.must('dd if=/tmp/src of=/mnt/g1/data bs=4096 seek=100 count=3 conv=notrunc 2>/dev/null '
               '&& sync', 'overwrite 12 KiB in the middle')
        with open(os.path.join(e1.path, 'data'), 'rb') as f:
            f.seek(100 * 4096)
            mid = f.read(3 * 4096)
        rc, out = g.run('head -c 12288 /tmp/src | sha256sum')
        import hashlib
        h.check(hashlib.sha256(mid).hexdigest() == out.split()[0],
                'the overwrite landed at the right offset on the server')

        # -- namespace operations -----------------------------------------------
        d = '/mnt/g1/ns'
        hd = os.path.join(e1.path, 'ns')
        g.ok('mkdir -p %s/a/b/c %s/x && for i in $(seq 1 200); do echo $i > %s/a/f$i; done' % (d, d, d),
             'mkdir a tree, create 200 files')
        h.check(len(os.listdir(os.path.join(hd, 'a'))) == 201, 'the server sees 200 files and b/')
        h.check(g.run('ls %s/a | wc -l' % d, quiet=True)[1].strip() == '201', 'readdir lists 201 entries')
        g.ok('mv %s/a/f1 %s/x/moved && mv %s/a/b %s/x/b2' % (d, d, d, d), 'rename a file and a directory')
        h.check(os.path.exists(os.path.join(hd, 'x/moved')) and
                not os.path.exists(os.path.join(hd, 'a/f1')) and
                os.path.isdir(os.path.join(hd, 'x/b2/c')), 'the server sees both renames')
        g.ok('ln %s/x/moved %s/a/hard && ln -s ../x/moved %s/a/soft' % (d, d, d), 'hard link and symlink')
        st = os.stat(os.path.join(hd, 'x/moved'))
        h.check(st.st_nlink == 2, 'link count 2 on the server (%d)' % st.st_nlink)
        h.check(os.readlink(os.path.join(hd, 'a/soft')) == '../x/moved', 'symlink target on the server')
        h.check(g.run('readlink %s/a/soft; cat %s/a/soft' % (d, d), quiet=True)[1].split() ==
                ['../x/moved', '1'], 'readlink and read through the symlink in the guest')
        h.check(g.run('stat -c %%h %s/a/hard' % d, quiet=True)[1].strip() == '2',
                'link count 2 in the guest')
        g.ok('rm %s/a/f2 %s/a/hard %s/a/soft && rm -r %s/x/b2' % (d, d, d, d), 'remove files, links, a tree')
        h.check(not os.path.exists(os.path.join(hd, 'x/b2')) and
                os.stat(os.path.join(hd, 'x/moved')).st_nlink == 1, 'the server sees the removals')
        g.ok('rm -r %s' % d, 'remove everything')
        h.check(not os.path.exists(hd), 'the tree is gone on the server')

        # -- nsm_use_hostnames off (g1) and on (g2) --------------------------------
        g.hold('A', 'try', '/mnt/g1/data', 0, 1)
        h.require(g.wait_hold('A') == 'locked', 'lock on g1 (nsm_use_hostnames=0)')
        g.must('echo 1 > /proc/sys/fs/nfs/nsm_use_hostnames')
        g.hold('B', 'try', '/mnt/g2/lockme', 0, 1)
        h.require(g.wait_hold('B') == 'locked', 'lock on g2 (nsm_use_hostnames=1)')
        slog = g.run('cat /var/log/statd.log', quiet=True)[1]
        mons = [ln for ln in slog.splitlines() if 'SM_MON' in ln or 'MONITOR' in ln.upper()]
        log('statd monitor lines: %s' % mons)
        h.check(any(v1 in ln for ln in mons), 'g1 is monitored by its address')
        h.check(any('sg2' in ln for ln in mons), 'g2 is monitored by its name')
        for grp in ('g1', 'g2'):
            cp = subprocess.run([ctl_path(), '-c', c.config_path, 'move', grp, 'b'],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            h.check(cp.returncode == 0, 'sgnfsctl move %s b exits 0 (%s)'
                    % (grp, cp.stdout.decode(errors='replace').strip()))
        for grp in ('g1', 'g2'):
            st = wait_group(h, c, grp, owner='b', state='online', timeout=120)
            h.check([l.get('client') for l in st[grp].get('locks', [])] == [g.name],
                    '%s: the lock was reclaimed on b' % grp)
        h.check('failed to reclaim' not in g.run('dmesg', quiet=True)[1], 'no failed reclaim')
        g.release('A')
        g.release('B')


vm_util.main(test, timeout=900)
