#!/usr/bin/env python3
"""
test_nfs3_procs - every NFSv3 procedure and MOUNT MNT/DUMP/UMNT/EXPORT,
success and error cases, through nfs3_procs (libnfs raw RPC) against one
sgnfsd serving two groups:

  g1 (VIP1): rw/ (rw, squash none), ro/ (ro), sq/ (rw, root squashed to
             anonuid 4000)
  g2 (VIP2): other/ (its root handle, sent to VIP1, must be STALE)
"""
import os

import harness
from harness import Export, Group

ANONUID = 4000


def test(h):
    procs = h.env_path('NFS3_PROCS', skip_if_missing=True)
    c = h.cluster([
        Group('g1', [Export('g1/rw', fsid=101, squash='none'),
                     Export('g1/ro', fsid=102, access='ro', squash='none'),
                     Export('g1/sq', fsid=103, squash='root', anonuid=ANONUID,
                            anongid=ANONUID)]),
        Group('g2', [Export('g2/other', fsid=201, squash='none')]),
    ])
    rw, ro, sq = c.export('g1/rw'), c.export('g1/ro'), c.export('g1/sq')
    other = c.export('g2/other')
    with open(os.path.join(ro.path, 'readme.txt'), 'w') as f:
        f.write('read-only content\n')
    os.makedirs(os.path.join(ro.path, 'subdir'))
    os.chmod(sq.path, 0o777)

    c.start('a')
    cp = h.run([procs, 'procs',
                '--server', c.group('g1').vip, '--rw', rw.path, '--ro', ro.path,
                '--squash', sq.path, '--anonuid', ANONUID,
                '--other-server', c.group('g2').vip, '--other', other.path],
               timeout=240, what='nfs3_procs procs')
    out = cp.stdout.decode('utf-8', 'replace')
    h.check('FAIL' not in out, 'nfs3_procs reports no failed check')

    # What the server did must be visible on its disk.
    h.check(os.path.isdir(os.path.join(rw.path, 'bigdir')) and
            len(os.listdir(os.path.join(rw.path, 'bigdir'))) == 1000,
            'bigdir on disk holds the 1000 files created over NFS')
    h.check(os.path.exists(os.path.join(rw.path, 'd1', 'moved')),
            'the file renamed across directories is on disk at d1/moved')
    h.check(os.listdir(ro.path) == ['readme.txt', 'subdir'] or
            sorted(os.listdir(ro.path)) == ['readme.txt', 'subdir'],
            'nothing was created in the read-only export')
    h.check(not os.path.exists(os.path.join(other.path, 'intruder')),
            'nothing was created in the other group through the wrong VIP')
    c.stop('a')


if __name__ == '__main__':
    harness.main(test, timeout=280)
