#!/usr/bin/env python3
"""
test_handle_forgery - file handles are unforgeable (issue 13 item 1).

Two groups on one filesystem (sibling directories): g1 exports g1/rw
(fsid 102, rw), g2 exports g2/ro (fsid 201, ro).  A root-only file lies
outside every export.  As a hostile client with no special rights:

  1. the exact kernel handle of the root-only file (what a generation-0
     guess on ext4 amounts to, but certain), wrapped in a handle with g1's
     fsid -> NFS3ERR_BADHANDLE, and the file is not read;
  2. a real handle of a file in g2's read-only export, relabelled with
     g1's read-write fsid, sent to g1's VIP: WRITE -> NFS3ERR_BADHANDLE and
     the file is unchanged; NLM LOCK with it -> NLM4_STALE_FH;
  3. a real handle with one MAC bit flipped -> NFS3ERR_BADHANDLE;
  4. every refusal is logged ("bad MAC");
  5. a handle survives a failover to another node, and a key rotation
     (the old key kept as `previous`, picked up at the takeover); after a
     second rotation (picked up by `sgnfsctl reload`) the oldest handle is
     BADHANDLE and the new one works;
  6. `sgnfsd -t` refuses a key file readable by others and a missing key.
"""
import ctypes
import os
import struct
import time

import harness
from harness import Export, Group, log, write_handle_key
from hostile_util import (MOUNT_PROG, NFS3ERR_BADHANDLE, NFS3_OK, NFS_PROG, NLM_PROG,
                          ROOT_CRED, Tcp, Unpacker, lookup_args, lookup_fh, mnt,
                          nfs_fh, nlm4_lock_args, opaque, read_args, u32, u64)

NLM4_GRANTED, NLM4_STALE_FH = 0, 7


def kernel_handle(path):
    """(handle_type, bytes) of @path from name_to_handle_at(2)."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(8 + 128)
    struct.pack_into('=Ii', buf, 0, 128, 0)
    mid = ctypes.c_int()
    if libc.name_to_handle_at(-100, path.encode(), buf, ctypes.byref(mid), 0) != 0:
        raise OSError(ctypes.get_errno(), 'name_to_handle_at ' + path)
    nbytes, htype = struct.unpack_from('=Ii', buf, 0)
    return htype, buf.raw[8:8 + nbytes]


def relabel(fh, fsid):
    return fh[:2] + struct.pack('>I', fsid) + fh[6:]


def status(r):
    return Unpacker(r.body).u32()


def getattr_st(conn, fh):
    return status(conn.call(NFS_PROG, 3, 1, nfs_fh(fh), cred=ROOT_CRED, timeout=10))


def lookup(conn, dirfh, name):
    return lookup_fh(conn.call(NFS_PROG, 3, 3, lookup_args(dirfh, name), cred=ROOT_CRED,
                               timeout=10))


def write_st(conn, fh, data):
    args = nfs_fh(fh) + u64(0) + u32(len(data)) + u32(2) + opaque(data)
    return status(conn.call(NFS_PROG, 3, 7, args, cred=ROOT_CRED, timeout=10))


def nlm_lock_st(conn, fh, caller):
    r = conn.call(NLM_PROG, 4, 2, nlm4_lock_args(fh=fh, caller=caller, oh=b'o-' + caller),
                  cred=ROOT_CRED, timeout=10)
    p = Unpacker(r.body)
    p.opaque(1024)
    return p.u32()


def test(h):
    g1 = Group('g1', [Export('g1/rw', fsid=102, squash='none')], nodes=('a', 'b'))
    g2 = Group('g2', [Export('g2/ro', fsid=201, access='ro', squash='none')], nodes=('a', 'b'))
    c = h.cluster([g1, g2])
    e_rw, e_ro = c.export('g1/rw'), c.export('g2/ro')
    secret = os.path.join(c.storage, 'secret')
    with open(secret, 'w') as f:
        f.write('root only\n')
    os.chmod(secret, 0o600)
    with open(os.path.join(e_ro.path, 'ro-file'), 'w') as f:
        f.write('read-only export\n')
    with open(os.path.join(e_rw.path, 'rw-file'), 'w') as f:
        f.write('read-write export\n')

    c.start('a')
    p1 = Tcp(g1.vip, c.ports['nfs_port'], timeout=10)
    m1 = Tcp(g1.vip, c.ports['mount_port'], timeout=10)
    m2 = Tcp(g2.vip, c.ports['mount_port'], timeout=10)
    p2 = Tcp(g2.vip, c.ports['nfs_port'], timeout=10)
    _, root1 = mnt(m1, e_rw.path.encode())
    _, root2 = mnt(m2, e_ro.path.encode())
    rw_fh = lookup(p1, root1, b'rw-file')
    ro_fh = lookup(p2, root2, b'ro-file')
    h.require(rw_fh is not None and ro_fh is not None, 'LOOKUP gives real handles')
    h.check(getattr_st(p1, rw_fh) == NFS3_OK, 'a real handle works')
    klen = rw_fh[1]
    trailer = len(rw_fh) - 10 - klen
    log('handle: %d bytes, kernel part %d, trailer %d' % (len(rw_fh), klen, trailer))

    # 1. The root-only file outside every export, by its exact kernel handle.
    htype, kh = kernel_handle(secret)
    forged = bytes([rw_fh[0], len(kh)]) + struct.pack('>Ii', 102, htype) + kh + \
        b'\0' * trailer
    st = getattr_st(p1, forged)
    h.check(st == NFS3ERR_BADHANDLE,
            'the kernel handle of a file outside every export is BADHANDLE (got %d)' % st)
    r = p1.call(NFS_PROG, 3, 6, read_args(forged, 0, 100), cred=ROOT_CRED, timeout=10)
    h.check(b'root only' not in r.body, 'the root-only file was not read')
    h.check(status(r) == NFS3ERR_BADHANDLE, 'READ with it is BADHANDLE (got %d)' % status(r))
    # ext4 style generation 0: the same with the generation zeroed.
    if htype == 1 and len(kh) == 8:
        st = getattr_st(p1, forged[:10 + 4] + b'\0' * 4 + forged[18:])
        h.check(st == NFS3ERR_BADHANDLE, 'generation 0 is BADHANDLE (got %d)' % st)

    # 2. A real handle of g2's read-only export relabelled as g1's rw export.
    relabelled = relabel(ro_fh, 102)
    st = write_st(p1, relabelled, b'OVERWRITTEN')
    h.check(st == NFS3ERR_BADHANDLE,
            'WRITE with a ro handle relabelled to a rw fsid is BADHANDLE (got %d)' % st)
    with open(os.path.join(e_ro.path, 'ro-file')) as f:
        h.check(f.read() == 'read-only export\n', 'the read-only file is unchanged')
    n1 = Tcp(g1.vip, c.ports['nlm_port'], timeout=10)
    deadline = time.monotonic() + 60
    while nlm_lock_st(n1, rw_fh, b'probe') != NLM4_GRANTED and time.monotonic() < deadline:
        time.sleep(0.5)            # the group's grace after start
    st = nlm_lock_st(n1, relabelled, b'forger')
    h.check(st == NLM4_STALE_FH, 'NLM LOCK with the relabelled handle is STALE_FH (got %d)' % st)

    # 3. One MAC bit flipped.
    flipped = rw_fh[:-1] + bytes([rw_fh[-1] ^ 1])
    st = getattr_st(p1, flipped)
    h.check(st == NFS3ERR_BADHANDLE, 'a handle with one bit flipped is BADHANDLE (got %d)' % st)

    # 4. Logged.
    with open(c.nodes['a'].logpath, errors='replace') as f:
        text = f.read()
    h.check('bad MAC' in text and 'group=g1' in text, 'the refusals are logged with the group')
    for conn in (p1, m1, m2, p2, n1):
        conn.close()

    # 5a. Failover: node a dies, node b serves both groups, old handles work.
    c.kill9('a')
    c.start('b')
    c.wait_vip(g1.vip, c.nodes['b'], timeout=60)
    p1 = Tcp(g1.vip, c.ports['nfs_port'], timeout=10)
    h.check(getattr_st(p1, rw_fh) == NFS3_OK, 'a handle from node a works on node b')
    p1.close()
    # 5b. Rotation: new current key, the old one as previous.  The group
    # moves back to a, which loads the new file at takeover.
    with open(c.handle_key) as f:
        k0 = bytes.fromhex(f.read().split('=')[1].strip())
    k1, k2 = os.urandom(32), os.urandom(32)
    write_handle_key(c.handle_key, k1, k0)
    c.stop('b')
    c.start('a')
    c.wait_vip(g1.vip, c.nodes['a'], timeout=60)
    p1 = Tcp(g1.vip, c.ports['nfs_port'], timeout=10)
    m1 = Tcp(g1.vip, c.ports['mount_port'], timeout=10)
    h.check(getattr_st(p1, rw_fh) == NFS3_OK, 'a handle signed with the previous key works')
    _, root1b = mnt(m1, e_rw.path.encode())
    new_fh = lookup(p1, root1b, b'rw-file')
    h.check(new_fh is not None and new_fh != rw_fh and new_fh[:-trailer] == rw_fh[:-trailer],
            'new handles carry a MAC of the new key')
    p1.close()
    m1.close()
    # The second rotation is picked up by a reload, without a restart.
    write_handle_key(c.handle_key, k2, k1)
    h.run([h.env_path('SGNFSCTL'), '-c', c.config_path, 'reload', 'a'], what='sgnfsctl reload a')
    p1 = Tcp(g1.vip, c.ports['nfs_port'], timeout=10)
    st = getattr_st(p1, rw_fh)
    h.check(st == NFS3ERR_BADHANDLE, 'after a second rotation the oldest handle is BADHANDLE '
            '(got %d)' % st)
    h.check(getattr_st(p1, new_fh) == NFS3_OK, 'the handle of the previous key still works')
    p1.close()
    c.stop('a')

    # 6. sgnfsd -t and the key file.
    os.chmod(c.handle_key, 0o644)
    r = h.run([h.sgnfsd, '-t', '-c', c.config_path], check=False, what='-t, key readable by all')
    h.check(r.returncode != 0, 'sgnfsd -t refuses a handle key readable by others')
    os.chmod(c.handle_key, 0o600)
    r = h.run([h.sgnfsd, '-t', '-c', c.config_path], check=False, what='-t, good key')
    h.check(r.returncode == 0, 'sgnfsd -t accepts the 0600 key')
    os.unlink(c.handle_key)
    r = h.run([h.sgnfsd, '-t', '-c', c.config_path], check=False, what='-t, no key file')
    h.check(r.returncode != 0, 'sgnfsd -t refuses a missing key file')


if __name__ == '__main__':
    harness.main(test, timeout=240)
