#!/usr/bin/env python3
"""
seeds.py OUTDIR - write hand-made seed inputs for fuzz_xdr: for each target,
a few well-formed inputs (and some near misses), so the fuzzer starts from
real protocol shapes instead of discovering XDR from nothing.

The selector numbers follow fuzz_xdr.c: 0 call, 1 handle, 2 client name,
3 export path, then fz_decs[] in order (TARGETS below must list it in the
same order).  The seeds were merged into tests/fuzz/corpus/ after fuzzing;
rerun this only to start a corpus from scratch.
"""
import os
import struct
import sys


def u32(v):
    return struct.pack('>I', v & 0xffffffff)


def u64(v):
    return struct.pack('>Q', v & 0xffffffffffffffff)


def opaque(b):
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b + b'\0' * (-len(b) % 4)


def fixed(b, n):
    return (b + b'\0' * n)[:n] + b'\0' * (-n % 4)


FH = bytes([1, 8]) + u32(101) + u32(1) + b'\x11\x22\x33\x44\x55\x66\x77\x88'
fh3 = opaque(FH)
time3 = u32(1700000000) + u32(5)
fattr = (u32(1) + u32(0o644) + u32(1) + u32(0) + u32(0) + u64(4096) + u64(4096)
         + u32(0) + u32(0) + u64(101) + u64(12345) + time3 * 3)
post_attr = u32(1) + fattr
no_attr = u32(0)
wcc = u32(1) + u64(10) + time3 + time3 + post_attr
sattr_none = u32(0) * 4 + u32(0) * 2
sattr_all = (u32(1) + u32(0o755) + u32(1) + u32(1000) + u32(1) + u32(1000)
             + u32(1) + u64(0) + u32(2) + time3 + u32(1))
dirop = fh3 + opaque('name.txt')
post_fh = u32(1) + fh3

# Version 1/3 and 4 NLM locks.
lock3 = opaque('client.example') + opaque(FH) + opaque(b'owner-1') + u32(42) + u32(0) + u32(100)
lock4 = opaque('client.example') + opaque(FH) + opaque(b'owner-1') + u32(42) + u64(0) + u64(100)
share = opaque('client.example') + opaque(FH) + opaque(b'owner-1') + u32(3) + u32(1)
cookie = opaque(b'\1\2\3\4')
holder3 = u32(1) + u32(7) + opaque(b'oh') + u32(10) + u32(20)
holder4 = u32(1) + u32(7) + opaque(b'oh') + u64(10) + u64(1 << 40)
my_id = opaque('localhost') + u32(100021) + u32(4) + u32(16)
auth_sys = u32(5) + opaque('client') + u32(1000) + u32(1000) + u32(2) + u32(10) + u32(20)

entry = u32(1) + u64(77) + opaque('f1') + u64(1)
entryplus = u32(1) + u64(77) + opaque('f1') + u64(1) + post_attr + post_fh

# (name, [inputs]) in fz_decs[] order.
TARGETS = [
    ('GETATTR3args', [fh3]),
    ('SETATTR3args', [fh3 + sattr_all + u32(0), fh3 + sattr_none + u32(1) + time3]),
    ('LOOKUP3args', [dirop]),
    ('ACCESS3args', [fh3 + u32(0x3f)]),
    ('READLINK3args', [fh3]),
    ('READ3args', [fh3 + u64(0) + u32(4096)]),
    ('WRITE3args', [fh3 + u64(0) + u32(5) + u32(2) + opaque(b'hello')]),
    ('CREATE3args', [dirop + u32(0) + sattr_all, dirop + u32(1) + sattr_none,
                     dirop + u32(2) + b'verifier']),
    ('MKDIR3args', [dirop + sattr_all]),
    ('SYMLINK3args', [dirop + sattr_none + opaque('../target')]),
    ('MKNOD3args', [dirop + u32(4) + sattr_none + u32(1) + u32(3), dirop + u32(7) + sattr_none,
                    dirop + u32(1)]),
    ('REMOVE3args', [dirop]),
    ('RMDIR3args', [dirop]),
    ('RENAME3args', [dirop + fh3 + opaque('new')]),
    ('LINK3args', [fh3 + dirop]),
    ('READDIR3args', [fh3 + u64(0) + b'\0' * 8 + u32(4096)]),
    ('READDIRPLUS3args', [fh3 + u64(0) + b'\0' * 8 + u32(1024) + u32(8192)]),
    ('FSSTAT3args', [fh3]),
    ('FSINFO3args', [fh3]),
    ('PATHCONF3args', [fh3]),
    ('COMMIT3args', [fh3 + u64(0) + u32(0)]),
    ('mnt3_dirpath', [opaque('/srv/export'), opaque('/')]),
    ('nlm3_testargs', [cookie + u32(1) + lock3]),
    ('nlm3_lockargs', [cookie + u32(1) + u32(1) + lock3 + u32(0) + u32(3)]),
    ('nlm3_cancargs', [cookie + u32(1) + u32(1) + lock3]),
    ('nlm3_unlockargs', [cookie + lock3]),
    ('nlm3_testres', [cookie + u32(1) + holder3, cookie + u32(0)]),
    ('nlm3_res', [cookie + u32(0)]),
    ('nlm3_shareargs', [cookie + share + u32(0)]),
    ('nlm3_notify', [opaque('client.example') + u32(3)]),
    ('nlm4_testargs', [cookie + u32(1) + lock4]),
    ('nlm4_lockargs', [cookie + u32(1) + u32(1) + lock4 + u32(1) + u32(5)]),
    ('nlm4_cancargs', [cookie + u32(0) + u32(1) + lock4]),
    ('nlm4_unlockargs', [cookie + lock4]),
    ('nlm4_testres', [cookie + u32(1) + holder4, cookie + u32(9)]),
    ('nlm4_res', [cookie + u32(4)]),
    ('nlm4_shareargs', [cookie + share + u32(1)]),
    ('nlm4_notify', [opaque('client.example') + u32(7)]),
    ('sgn_sm_name', [opaque('client.example')]),
    ('sgn_mon', [opaque('client.example') + my_id + b'P' * 16]),
    ('sgn_mon_id', [opaque('client.example') + my_id]),
    ('sgn_my_id', [my_id]),
    ('sgn_stat_chge', [opaque('server.example') + u32(3)]),
    ('sgn_status', [opaque('server.example') + u32(5) + b'Q' * 16]),
    ('pmap_mapping', [u32(100003) + u32(3) + u32(6) + u32(2049)]),
    ('rpcm_msg', [u32(1) + u32(0) + u32(2) + u32(100003) + u32(3) + u32(0) + u32(1)
                  + opaque(auth_sys) + u32(0) + u32(0),
                  u32(1) + u32(1) + u32(0) + u32(0) + u32(0) + u32(2) + u32(3) + u32(3),
                  u32(1) + u32(1) + u32(1) + u32(1) + u32(1)]),
    ('rpcm_authsys_parms', [auth_sys]),
    ('GETATTR3res', [u32(0) + fattr, u32(70)]),
    ('SETATTR3res', [u32(0) + wcc, u32(1) + wcc]),
    ('LOOKUP3res', [u32(0) + fh3 + post_attr + post_attr, u32(2) + no_attr]),
    ('ACCESS3res', [u32(0) + post_attr + u32(0x1f)]),
    ('READLINK3res', [u32(0) + post_attr + opaque('target')]),
    ('READ3res', [u32(0) + post_attr + u32(5) + u32(1) + opaque(b'hello')]),
    ('WRITE3res', [u32(0) + wcc + u32(5) + u32(2) + b'writever']),
    ('CREATE3res', [u32(0) + post_fh + post_attr + wcc]),
    ('MKDIR3res', [u32(0) + post_fh + post_attr + wcc]),
    ('SYMLINK3res', [u32(0) + post_fh + post_attr + wcc]),
    ('MKNOD3res', [u32(0) + post_fh + post_attr + wcc]),
    ('REMOVE3res', [u32(0) + wcc]),
    ('RMDIR3res', [u32(66) + wcc]),
    ('RENAME3res', [u32(0) + wcc + wcc]),
    ('LINK3res', [u32(0) + post_attr + wcc]),
    ('READDIR3res', [u32(0) + post_attr + b'cookieve' + entry * 3 + u32(0) + u32(1)]),
    ('READDIRPLUS3res', [u32(0) + post_attr + b'cookieve' + entryplus * 2 + u32(0) + u32(1)]),
    ('FSSTAT3res', [u32(0) + post_attr + u64(1 << 30) * 3 + u64(1000) * 3 + u32(0)]),
    ('FSINFO3res', [u32(0) + post_attr + u32(1 << 20) * 3 + u32(1 << 20) * 3 + u32(4096)
                    + u64(1 << 62) + u32(0) + u32(1) + u32(0x1b)]),
    ('PATHCONF3res', [u32(0) + post_attr + u32(32000) + u32(255) + u32(1) * 4]),
    ('COMMIT3res', [u32(0) + wcc + b'writever']),
    ('mnt3_mountres', [u32(0) + fh3 + u32(2) + u32(1) + u32(0), u32(13)]),
    ('mnt3_mountlist', [u32(1) + opaque('host') + opaque('/srv') + u32(0), u32(0)]),
    ('mnt3_exports', [u32(1) + opaque('/srv') + u32(1) + opaque('*') + u32(0) + u32(0)]),
    ('pmap_dump_res', [u32(1) + u32(100003) + u32(3) + u32(6) + u32(2049) + u32(0)]),
    ('sgn_sm_stat_res', [u32(0) + u32(3)]),
    ('sgn_sm_stat', [u32(3)]),
    ('nlm4_shareres', [cookie + u32(0) + u32(1)]),
    ('nlm3_shareres', [cookie + u32(0) + u32(1)]),
]


def call(prog, vers, proc, args, cred=True):
    c = (u32(1) + opaque(auth_sys)) if cred else (u32(0) + u32(0))
    return (u32(0x1234) + u32(0) + u32(2) + u32(prog) + u32(vers) + u32(proc) + c
            + u32(0) + u32(0) + args)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = []
    by_name = dict(TARGETS)
    # 0: whole calls, one per procedure family.
    calls = [
        (100003, 3, 0, b''), (100003, 3, 1, by_name['GETATTR3args'][0]),
        (100003, 3, 3, by_name['LOOKUP3args'][0]), (100003, 3, 7, by_name['WRITE3args'][0]),
        (100003, 3, 8, by_name['CREATE3args'][2]), (100003, 3, 17, by_name['READDIRPLUS3args'][0]),
        (100005, 3, 1, by_name['mnt3_dirpath'][0]), (100005, 1, 3, by_name['mnt3_dirpath'][1]),
        (100021, 1, 2, by_name['nlm3_lockargs'][0]), (100021, 3, 20, by_name['nlm3_shareargs'][0]),
        (100021, 4, 2, by_name['nlm4_lockargs'][0]), (100021, 4, 23, by_name['nlm4_notify'][0]),
        (100021, 4, 12, by_name['nlm4_res'][0]), (100024, 1, 2, by_name['sgn_mon'][0]),
        (100024, 1, 6, by_name['sgn_stat_chge'][0]), (100000, 2, 3, by_name['pmap_mapping'][0]),
        (100021, 4, 16, by_name['sgn_status'][0]),
    ]
    for i, (p, v, pr, a) in enumerate(calls):
        seeds.append(u32(0) + call(p, v, pr, a, cred=(i % 2 == 0)))
    seeds.append(u32(0) + by_name['rpcm_msg'][1])
    # 1: handles; 2: client names; 3: export paths.
    seeds += [u32(1) + FH, u32(1) + FH[:10], u32(1) + bytes([1, 54]) + b'\0' * 62]
    seeds += [u32(2) + b'client.example.com', u32(2) + b'10.0.0.1', u32(2) + b'.hidden',
              u32(2) + b'a/b']
    seeds += [u32(3) + b'\x01/srv/a\0/srv/a/b', u32(3) + b'\x00/srv/a\0/', u32(3) + b'\x01/\0/x',
              u32(3) + b'\x01/srv/a\0/srv/ab']
    for i, (name, inputs) in enumerate(TARGETS):
        for data in inputs:
            seeds.append(u32(4 + i) + data)
    for n, s in enumerate(seeds):
        with open(os.path.join(out, 'seed-%03d' % n), 'wb') as f:
            f.write(s)
    print('%d seeds in %s' % (len(seeds), out))


if __name__ == '__main__':
    main()
