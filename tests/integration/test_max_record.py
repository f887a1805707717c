#!/usr/bin/env python3
"""
test_max_record - FSINFO's rtmax/wtmax respect [cluster] max_record, down to
its smallest value (issue 13 item 8).

With max_record = 8192, FSINFO must advertise at most 4096 (a WRITE's data
plus its RPC and NFS headers must fit one record), and a WRITE and a READ of
exactly what FSINFO advertised must work on one TCP connection, which stays
open.  Then the same with max_record = 20480 (16 KiB advertised).
"""
import os

import harness
from harness import Export, Group
from hostile_util import (NFS3_OK, NFS_PROG, ROOT_CRED, Tcp, Unpacker, lookup_args,
                          lookup_fh, mnt, nfs_fh, opaque, read_args, u32, u64)


def fsinfo(conn, fh):
    r = conn.call(NFS_PROG, 3, 19, nfs_fh(fh), cred=ROOT_CRED, timeout=10)
    p = Unpacker(r.body)
    st = p.u32()
    if st != NFS3_OK:
        return st, None, None
    if p.u32():
        p.fixed(84)             # fattr3
    rtmax = p.u32()
    p.u32(), p.u32()
    wtmax = p.u32()
    return st, rtmax, wtmax


def run(h, max_record, want):
    g = Group('g1', [Export('g1/data', fsid=101, squash='none')])
    c = h.cluster([g], cluster_extra={'max_record': str(max_record)})
    e = c.export('g1/data')
    with open(os.path.join(e.path, 'f'), 'wb') as f:
        f.write(b'\0')
    c.start('a')
    m = Tcp(g.vip, c.ports['mount_port'], timeout=10)
    n = Tcp(g.vip, c.ports['nfs_port'], timeout=10)
    _, root = mnt(m, e.path.encode())
    fh = lookup_fh(n.call(NFS_PROG, 3, 3, lookup_args(root, b'f'), cred=ROOT_CRED, timeout=10))
    st, rtmax, wtmax = fsinfo(n, root)
    h.check(st == NFS3_OK and wtmax == want and rtmax == want,
            'max_record %d: FSINFO rtmax %s wtmax %s (want %d)' % (max_record, rtmax, wtmax, want))
    if wtmax:
        data = b'w' * wtmax
        args = nfs_fh(fh) + u64(0) + u32(len(data)) + u32(2) + opaque(data)
        r = n.call(NFS_PROG, 3, 7, args, cred=ROOT_CRED, timeout=10)
        h.check(Unpacker(r.body).u32() == NFS3_OK, 'a WRITE of wtmax bytes is answered OK')
        r = n.call(NFS_PROG, 3, 6, read_args(fh, 0, rtmax), cred=ROOT_CRED, timeout=10)
        h.check(Unpacker(r.body).u32() == NFS3_OK, 'a READ of rtmax bytes on the same '
                'connection is answered OK')
    m.close()
    n.close()
    c.stop('a')


def test(h):
    run(h, 8192, 4096)
    run(h, 20480, 16384)


if __name__ == '__main__':
    harness.main(test, timeout=120)
