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
import random
import socket
import struct

import harness
from harness import Export, Group

ANONUID = 4000


# ---- NFS over UDP (libnfs's raw API is TCP only): a few calls by hand ----

def _xdr_opaque(b):
    return struct.pack('>I', len(b)) + b + b'\0' * ((4 - len(b) % 4) % 4)


def _udp_call(addr, prog, vers, proc, args):
    """One AUTH_SYS (uid 0) call over UDP; returns the body after the
    accept_stat (asserted SUCCESS), or None if no reply came."""
    xid = random.getrandbits(32)
    cred = struct.pack('>IIIII', 0, 0, 0, 0, 0)  # stamp, machine "", uid, gid, no gids
    msg = (struct.pack('>IIIIII', xid, 0, 2, prog, vers, proc) +
           struct.pack('>I', 1) + _xdr_opaque(cred) + struct.pack('>II', 0, 0) + args)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(2)
        for _ in range(3):
            s.sendto(msg, addr)
            try:
                data = s.recv(70000)
            except socket.timeout:
                continue
            rxid, mtype, rstat, _vfl, vlen = struct.unpack('>IIIII', data[:20])
            off = 20 + vlen + (4 - vlen % 4) % 4
            accept = struct.unpack('>I', data[off:off + 4])[0]
            if rxid != xid or mtype != 1 or rstat != 0 or accept != 0:
                raise harness.TestAbort('UDP reply: xid %x type %d reply_stat %d accept %d'
                                        % (rxid, mtype, rstat, accept))
            return data[off + 4:]
    finally:
        s.close()
    return None


def _skip_post_op_attr(body, off):
    follows = struct.unpack('>I', body[off:off + 4])[0]
    return off + 4 + (84 if follows else 0)


def udp_checks(h, vip, export_path, data):
    """MNT, FSINFO, LOOKUP and an oversized READ over UDP: the server must
    clamp READ to what fits a datagram (and what FSINFO says)."""
    body = _udp_call((vip, 20048), 100005, 3, 1, _xdr_opaque(export_path.encode()))
    if not h.check(body is not None, 'MOUNT MNT over UDP gets a reply'):
        return
    st, fhlen = struct.unpack('>II', body[:8])
    if not h.check(st == 0, 'MOUNT MNT over UDP: status %d' % st):
        return
    root = _xdr_opaque(body[8:8 + fhlen])
    body = _udp_call((vip, 2049), 100003, 3, 19, root)
    if not h.check(body is not None and struct.unpack('>I', body[:4])[0] == 0,
                   'FSINFO over UDP: NFS3_OK'):
        return
    off = _skip_post_op_attr(body, 4)
    rtmax = struct.unpack('>I', body[off:off + 4])[0]
    h.check(0 < rtmax <= 65000, 'FSINFO over UDP: rtmax %d fits a datagram' % rtmax)
    body = _udp_call((vip, 2049), 100003, 3, 3, root + _xdr_opaque(b'udp.bin'))
    if not h.check(body is not None and struct.unpack('>I', body[:4])[0] == 0,
                   'LOOKUP udp.bin over UDP: NFS3_OK'):
        return
    fhlen = struct.unpack('>I', body[4:8])[0]
    fh = _xdr_opaque(body[8:8 + fhlen])
    for count in (4096, 1 << 20):
        body = _udp_call((vip, 2049), 100003, 3, 6, fh + struct.pack('>QI', 100, count))
        if not h.check(body is not None, 'READ %d bytes over UDP gets a reply' % count):
            continue
        st = struct.unpack('>I', body[:4])[0]
        off = _skip_post_op_attr(body, 4)
        n, eof, dlen = struct.unpack('>III', body[off:off + 12])
        got = body[off + 12:off + 12 + dlen]
        h.check(st == 0 and n == dlen and 0 < n <= min(count, rtmax) and got == data[100:100 + n],
                'READ %d bytes at 100 over UDP: status %d, %d bytes (<= rtmax), content right'
                % (count, st, n))


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
    udp_data = os.urandom(256 * 1024)
    with open(os.path.join(sq.path, 'udp.bin'), 'wb') as f:
        f.write(udp_data)

    c.start('a')
    cp = h.run([procs, 'procs',
                '--server', c.group('g1').vip, '--rw', rw.path, '--ro', ro.path,
                '--squash', sq.path, '--anonuid', ANONUID,
                '--other-server', c.group('g2').vip, '--other', other.path],
               timeout=240, what='nfs3_procs procs')
    out = cp.stdout.decode('utf-8', 'replace')
    h.check('FAIL' not in out, 'nfs3_procs reports no failed check')

    udp_checks(h, c.group('g1').vip, sq.path, udp_data)

    # What the server did must be visible on its disk.
    h.check(not os.path.exists(os.path.join(rw.path, 'bigdir')),
            'bigdir (1000 files created, then removed over NFS) is gone from the disk')
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
