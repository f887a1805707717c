#!/usr/bin/env python3
"""
test_libnfs_tools - an unmodified client (libnfs's nfs-ls, nfs-cat, nfs-cp)
against a real sgnfsd: list an export, read a small file, copy a 64 MiB
random file to the server and back, compare byte for byte.  Two groups on
one node, so the second group's VIP is exercised too, and the URL forms
libnfs clients use (export root, file below a subdirectory, ?version=3).
"""
import filecmp
import os

import harness
from harness import Export, Group

BIG = 64 * 1024 * 1024


def test(h):
    for tool in ('nfs-ls', 'nfs-cat', 'nfs-cp'):
        h.need_tool(tool)
    c = h.cluster([
        Group('g1', [Export('g1/data', fsid=101, squash='none')]),
        Group('g2', [Export('g2/pub', fsid=201, access='ro', squash='root')]),
    ])
    e1 = c.export('g1/data')
    e2 = c.export('g2/pub')
    vip1, vip2 = c.group('g1').vip, c.group('g2').vip

    small = b'hello from sgnfs\n' * 3
    with open(os.path.join(e1.path, 'small.txt'), 'wb') as f:
        f.write(small)
    os.makedirs(os.path.join(e1.path, 'sub', 'deeper'))
    with open(os.path.join(e1.path, 'sub', 'deeper', 'nested.txt'), 'wb') as f:
        f.write(b'nested\n')
    with open(os.path.join(e2.path, 'README'), 'wb') as f:
        f.write(b'read-only group\n')
    os.chmod(os.path.join(e2.path, 'README'), 0o644)

    c.start('a')
    url1 = 'nfs://%s%s' % (vip1, e1.path)
    url2 = 'nfs://%s%s' % (vip2, e2.path)

    # nfs-ls: the export root lists our files.
    cp = h.run(['nfs-ls', url1], timeout=30, what='nfs-ls export root')
    out = cp.stdout.decode('utf-8', 'replace')
    h.check('small.txt' in out, 'nfs-ls lists small.txt')
    h.check('sub' in out, 'nfs-ls lists sub')
    cp = h.run(['nfs-ls', '-R', url1], timeout=30, what='nfs-ls -R')
    h.check('nested.txt' in cp.stdout.decode('utf-8', 'replace'), 'nfs-ls -R finds sub/deeper/nested.txt')
    cp = h.run(['nfs-ls', url2], timeout=30, what='nfs-ls second group')
    h.check('README' in cp.stdout.decode('utf-8', 'replace'), 'nfs-ls on the second VIP lists README')
    cp = h.run(['nfs-ls', '-D', 'nfs://%s' % vip1], timeout=30, check=False,
               what='nfs-ls -D (export list)')
    out = cp.stdout.decode('utf-8', 'replace')
    h.check(e1.path in out, 'export list of %s names %s' % (vip1, e1.path))
    h.check(e2.path not in out, 'export list of %s does not name the other group\'s %s'
            % (vip1, e2.path))

    # nfs-cat: small files, several URL forms.
    cp = h.run(['nfs-cat', url1 + '/small.txt'], timeout=30, what='nfs-cat small.txt')
    h.check(cp.stdout == small, 'nfs-cat returns the file byte for byte')
    cp = h.run(['nfs-cat', url1 + '/small.txt?version=3'], timeout=30,
               what='nfs-cat with ?version=3')
    h.check(cp.stdout == small, 'nfs-cat ?version=3 returns the file')
    cp = h.run(['nfs-cat', url1 + '/sub/deeper/nested.txt'], timeout=30,
               what='nfs-cat nested path')
    h.check(cp.stdout == b'nested\n', 'nfs-cat of a file two directories down')
    cp = h.run(['nfs-cat', url2 + '/README'], timeout=30, what='nfs-cat from ro group')
    h.check(cp.stdout == b'read-only group\n', 'nfs-cat from the read-only export')
    cp = h.run(['nfs-cat', url1 + '/no-such-file'], timeout=30, check=False)
    h.check(cp.returncode != 0, 'nfs-cat of a missing file fails')
    # The other group's export is not reachable through this group's VIP.
    cp = h.run(['nfs-cat', 'nfs://%s%s/README' % (vip1, e2.path)], timeout=30, check=False)
    h.check(cp.returncode != 0 and b'read-only group' not in cp.stdout,
            'the second group\'s export is refused on the first group\'s VIP')

    # nfs-cp: 64 MiB of random data there and back.
    src = os.path.join(h.tmp, 'big.src')
    back = os.path.join(h.tmp, 'big.back')
    with open(src, 'wb') as f:
        left = BIG
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n
    h.run(['nfs-cp', src, url1 + '/big.bin'], timeout=180, what='nfs-cp 64 MiB to the server')
    stored = os.path.join(e1.path, 'big.bin')
    h.check(os.path.exists(stored) and os.path.getsize(stored) == BIG,
            'the server stored 64 MiB (got %s)' % (os.path.getsize(stored) if os.path.exists(stored) else 'none'))
    h.check(os.path.exists(stored) and filecmp.cmp(src, stored, shallow=False),
            'the file on the server\'s disk is identical to the source')
    h.run(['nfs-cp', url1 + '/big.bin', back], timeout=180, what='nfs-cp 64 MiB from the server')
    cp = h.run(['cmp', src, back], timeout=60, what='cmp source and copy back')
    h.check(cp.returncode == 0, 'the 64 MiB round trip is byte-for-byte identical')

    # Several clients at once, each with its own file, both directions.
    n = 4
    srcs = []
    for i in range(n):
        path = os.path.join(h.tmp, 'par%d.src' % i)
        with open(path, 'wb') as f:
            f.write(os.urandom(8 * 1024 * 1024 + i * 4097))
        srcs.append(path)
    h.run_parallel([['nfs-cp', p, '%s/par%d.bin' % (url1, i)] for i, p in enumerate(srcs)],
                   timeout=180, what='%d concurrent nfs-cp to the server' % n)
    h.run_parallel([['nfs-cp', '%s/par%d.bin' % (url1, i), p + '.back']
                    for i, p in enumerate(srcs)],
                   timeout=180, what='%d concurrent nfs-cp from the server' % n)
    for i, p in enumerate(srcs):
        h.check(os.path.exists(p + '.back') and filecmp.cmp(p, p + '.back', shallow=False),
                'concurrent copy %d came back byte-for-byte' % i)

    # A write to the read-only export is refused and leaves nothing behind.
    cp = h.run(['nfs-cp', os.path.join(e1.path, 'small.txt'), url2 + '/new.txt'],
               timeout=30, check=False)
    h.check(cp.returncode != 0, 'nfs-cp to the read-only export fails')
    h.check(not os.path.exists(os.path.join(e2.path, 'new.txt')),
            'nothing was created in the read-only export')

    c.stop('a')


if __name__ == '__main__':
    harness.main(test, timeout=300)
