#!/usr/bin/env python3
"""
test_open_handles - the open-handle cache (src/nfs/ohc.h) under change.

Two NFS clients (nfs3_procs shell, libnfs) on one group; a handle is
cached once it was looked up or resolved.  In order:

  1. LOOKUP then GETATTR x3 of a file: answered, and the group's status
     counts cache hits (the GETATTRs skip open_by_handle_at).
  2. The file is removed on the server's filesystem (not over NFS): its old
     handle is STALE for GETATTR, ACCESS and READ, even though the cache
     held a descriptor of the inode; after the file is recreated locally
     under the same name, the old handle is still STALE and a new LOOKUP
     reads the new content.  sgnfsd keeps no descriptor of the removed
     file afterwards.
  3. A file replaced on the server by rename(2) over it: old handle STALE,
     new LOOKUP sees the new file.
  4. Client 2 REMOVEs a file client 1 has cached: client 1's GETATTR is
     STALE, and sgnfsd holds no descriptor of the removed file right after
     the REMOVE (the cache dropped it, so its space is freed at once).
  5. Client 2 RENAMEs a file over one client 1 has cached: the replaced
     file's handle is STALE, the moved file's handle still works.
  6. Client 2 RMDIRs a cached directory: its handle is STALE.
  8. READ and WRITE through the cached data descriptors (ohc_data_fd): a
     WRITE then READs are served by descriptors opened once (the status
     counts data_opens and data_hits); COMMIT closes the write descriptor
     (nothing else was using the entry); a truncate and an in-place write
     on the server's filesystem and a WRITE by client 2 are seen by the
     next READ; a descriptor cached by root's calls serves no other user
     past the file's mode (uid 4000: READ of a 0600 file and WRITE of a
     0644 one are ACCES, the content unchanged); SETATTR of the size uses
     the held write descriptor with the same check (uid 4000: ACCES; root:
     done, no new descriptor) and, when none is held, leaves none open for
     writing after it; replaced by rename, the
     old handle's WRITE and READ are STALE; unlinked locally, WRITE is
     STALE and nothing of the file stays open.
  9. A read-only export: READs are served by a cached descriptor, and
     sgnfsd never holds one of its files open for writing (fdinfo), while
     the read-write export's WRITE did get one.
  7. Out of descriptors: a second node run with a descriptor limit far
     below the cache's size looks up and GETATTRs 300 files: every call
     succeeds, because running out (EMFILE) shrinks the cache, and the
     status counts those pressure evictions.
"""
import json
import os
import subprocess

import harness
from harness import Export, Group


class Shell:
    """One nfs3_procs shell: a libnfs client with its own connection."""

    def __init__(self, h, procs, vip, export, name):
        self.name = name
        self.p = subprocess.Popen([procs, 'shell', '--server', vip, '--export', export],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        line = ''
        for _ in range(10):            # conn_open reports its connections first
            line = self.p.stdout.readline().strip()
            if line == 'ready' or not line:
                break
        h.require(line == 'ready', '%s mounted the export (%r)' % (name, line))

    def __call__(self, cmd):
        try:
            self.p.stdin.write(cmd + '\n')
            self.p.stdin.flush()
        except BrokenPipeError:
            return "client gone"
        out = self.p.stdout.readline().strip()
        if not out and self.p.poll() is not None:
            out = 'client exited with %s' % self.p.returncode
        harness.log('%s: %s -> %s' % (self.name, cmd, out))
        return out

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()


def status(s):
    return s.split()[0] if s else ''


def field(s, name):
    for w in s.split():
        if w.startswith(name + '='):
            return w[len(name) + 1:]
    return None


def cache_status(h, c, group='g1'):
    cp = h.run([c.ctl_path(), '-c', c.config_path, 'status', '--json'], timeout=20,
               check=False, quiet=True)
    doc = json.loads(cp.stdout.decode())
    for g in doc['nodes'][0]['status'].get('groups', []):
        if g['name'] == group:
            return g.get('open_handles', {})
    return {}


def held_deleted(pid, path):
    """Descriptors of @pid that name @path as a removed file."""
    n = 0
    fddir = '/proc/%d/fd' % pid
    for fd in os.listdir(fddir):
        try:
            t = os.readlink(os.path.join(fddir, fd))
        except OSError:
            continue
        if t == path + ' (deleted)':
            n += 1
    return n


def open_modes(pid, path):
    """Access modes (O_RDONLY 0, O_WRONLY 1, O_RDWR 2) of @pid's descriptors
    open for I/O on @path (O_PATH ones left out)."""
    modes = []
    fddir = '/proc/%d/fd' % pid
    for fd in os.listdir(fddir):
        try:
            if os.readlink(os.path.join(fddir, fd)) != path:
                continue
            with open('/proc/%d/fdinfo/%s' % (pid, fd)) as f:
                flags = [int(x.split()[1], 8) for x in f if x.startswith('flags:')][0]
        except (OSError, IndexError):
            continue
        if not flags & os.O_PATH:
            modes.append(flags & os.O_ACCMODE)
    return modes


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)


def test(h):
    procs = h.env_path('NFS3_PROCS', skip_if_missing=True)
    g = Group('g1', [Export('g1/data', fsid=301, squash='none'),
                     Export('g1/ro', fsid=303, access='ro', squash='none')])
    c = h.cluster([g])
    root = c.export('g1/data').path
    roroot = c.export('g1/ro').path
    write(os.path.join(roroot, 'r1'), 'readonly\n')
    node = c.start('a')
    one = Shell(h, procs, g.vip, root, 'client1')
    two = Shell(h, procs, g.vip, root, 'client2')
    three = Shell(h, procs, g.vip, roroot, 'client3')
    try:
        # 1. hits
        write(os.path.join(root, 'f1'), 'first\n')
        h.require(status(one('lookup f1 root f1')) == 'NFS3_OK', 'LOOKUP f1')
        before = cache_status(h, c)
        h.require(before.get('limit', 0) > 0, 'status shows the cache (%s)' % before)
        for _ in range(3):
            h.check(status(one('getattr f1')) == 'NFS3_OK', 'GETATTR f1 through the cache')
        after = cache_status(h, c)
        h.check(after.get('hits', 0) >= before.get('hits', 0) + 3,
                'three GETATTRs were cache hits (%s -> %s)' % (before, after))

        # 2. removed and recreated on the server itself
        p1 = os.path.join(root, 'f1')
        h.require(status(one('read f1')) == 'NFS3_OK', 'READ f1 before')
        os.unlink(p1)
        h.check(status(one('getattr f1')) == 'STALE',
                'GETATTR of a file removed locally is STALE, not served by the cached descriptor')
        h.check(status(one('access f1')) == 'STALE', 'ACCESS of it is STALE')
        h.check(status(one('read f1')) == 'STALE', 'READ of it is STALE')
        h.check(held_deleted(node.pid, p1) == 0,
                'sgnfsd holds no descriptor of the removed file once found stale')
        write(p1, 'second\n')
        h.check(status(one('getattr f1')) == 'STALE',
                'the old handle stays STALE after the name is recreated')
        r = one('lookup f1new root f1')
        h.check(status(r) == 'NFS3_OK', 'LOOKUP of the recreated file')
        h.check(field(one('read f1new'), 'data') == 'second|', 'READ gives the new content')

        # 3. replaced on the server by rename over it
        p2 = os.path.join(root, 'f2')
        write(p2, 'old2\n')
        h.require(status(one('lookup f2 root f2')) == 'NFS3_OK', 'LOOKUP f2')
        h.require(status(one('getattr f2')) == 'NFS3_OK', 'GETATTR f2')
        write(p2 + '.tmp', 'new2\n')
        os.rename(p2 + '.tmp', p2)
        h.check(status(one('getattr f2')) == 'STALE',
                'GETATTR of a file replaced locally by rename is STALE')
        h.require(status(one('lookup f2b root f2')) == 'NFS3_OK', 'LOOKUP f2 again')
        h.check(field(one('read f2b'), 'data') == 'new2|', 'READ gives the replacement')

        # 4. another client removes a cached file
        p3 = os.path.join(root, 'f3')
        write(p3, 'three\n')
        h.require(status(one('lookup f3 root f3')) == 'NFS3_OK', 'client1 LOOKUP f3')
        h.require(status(one('getattr f3')) == 'NFS3_OK', 'client1 GETATTR f3')
        h.require(held_deleted(node.pid, p3) == 0, 'nothing of f3 is deleted yet')
        h.check(status(two('remove root f3')) == 'NFS3_OK', 'client2 REMOVE f3')
        h.check(held_deleted(node.pid, p3) == 0,
                'right after REMOVE sgnfsd holds no descriptor of f3 (dropped from the cache)')
        h.check(status(one('getattr f3')) == 'STALE',
                'client1 GETATTR of the file client2 removed is STALE')

        # 5. another client renames over a cached file
        write(os.path.join(root, 'f4'), 'four\n')
        write(os.path.join(root, 'f5'), 'five\n')
        h.require(status(one('lookup f4 root f4')) == 'NFS3_OK', 'client1 LOOKUP f4')
        h.require(status(one('lookup f5 root f5')) == 'NFS3_OK', 'client1 LOOKUP f5')
        h.require(status(one('getattr f4')) == 'NFS3_OK', 'client1 GETATTR f4')
        h.check(status(two('rename root f5 root f4')) == 'NFS3_OK', 'client2 RENAME f5 over f4')
        h.check(held_deleted(node.pid, os.path.join(root, 'f4')) == 0,
                'sgnfsd holds no descriptor of the replaced f4')
        h.check(status(one('getattr f4')) == 'STALE',
                'the handle of the file renamed over is STALE')
        h.check(field(one('read f5'), 'data') == 'five|',
                'the moved file\'s handle still reads it under its new name')

        # 6. another client removes a cached directory
        os.mkdir(os.path.join(root, 'd1'))
        h.require(status(one('lookup d1 root d1')) == 'NFS3_OK', 'client1 LOOKUP d1')
        h.require(status(one('getattr d1')) == 'NFS3_OK', 'client1 GETATTR d1')
        h.check(status(two('rmdir root d1')) == 'NFS3_OK', 'client2 RMDIR d1')
        h.check(status(one('getattr d1')) == 'STALE', 'GETATTR of the removed directory is STALE')
        st = cache_status(h, c)
        h.check(st.get('drops', 0) >= 4, 'the status counts dropped entries (%s)' % st)

        # 8. READ/WRITE through cached data descriptors
        p6 = os.path.join(root, 'f6')
        write(p6, 'sixsix\n')
        os.chmod(p6, 0o644)
        h.require(status(one('lookup f6 root f6')) == 'NFS3_OK', 'LOOKUP f6')
        st0 = cache_status(h, c)
        h.check(status(one('write f6 SIX')) == 'NFS3_OK', 'WRITE f6')
        for _ in range(3):
            h.check(field(one('read f6'), 'data') == 'SIXsix|', 'READ f6 gives what WRITE wrote')
        st1 = cache_status(h, c)
        h.check(st1.get('data_opens', 0) - st0.get('data_opens', 0) == 2 and
                st1.get('data_hits', 0) - st0.get('data_hits', 0) >= 2,
                'one read and one write descriptor opened, the later READs reuse it (%s -> %s)'
                % (st0, st1))
        h.check(1 in open_modes(node.pid, p6), 'sgnfsd holds f6 open for writing (%s)'
                % open_modes(node.pid, p6))
        h.check(status(one('commit f6')) == 'NFS3_OK', 'COMMIT f6')
        h.check(1 not in open_modes(node.pid, p6),
                'after the COMMIT sgnfsd no longer holds f6 open for writing (%s)'
                % open_modes(node.pid, p6))
        h.check(field(one('read f6'), 'data') == 'SIXsix|', 'READ f6 after the COMMIT')
        os.truncate(p6, 3)
        h.check(field(one('read f6'), 'data') == 'SIX', 'READ after a local truncate sees it')
        with open(p6, 'r+') as f:
            f.write('abcd')
        h.check(field(one('read f6'), 'data') == 'abcd', 'READ after a local write sees it')
        h.require(status(two('lookup f6 root f6')) == 'NFS3_OK', 'client2 LOOKUP f6')
        h.check(status(two('write f6 ZZ')) == 'NFS3_OK', 'client2 WRITE f6')
        h.check(field(one('read f6'), 'data') == 'ZZcd', 'client1 READ sees client2\'s WRITE')
        # Another user: the descriptors root's calls opened must not help.
        os.chmod(p6, 0o600)
        h.require(one('uid 4000 4000') == 'ok', 'client1 as uid 4000')
        h.check(status(one('read f6')) == 'ACCES', 'uid 4000 READ of a 0600 root file: ACCES')
        h.check(status(one('write f6 no')) == 'ACCES', 'uid 4000 WRITE of it: ACCES')
        os.chmod(p6, 0o644)
        h.check(field(one('read f6'), 'data') == 'ZZcd', 'uid 4000 READ of it at 0644')
        h.check(status(one('write f6 no')) == 'ACCES', 'uid 4000 WRITE of a 0644 root file: ACCES')
        # SETATTR of the size goes through the same write descriptor (held
        # since client2's WRITE) with the same per-call check.
        h.require(1 in open_modes(node.pid, p6), 'a write descriptor of f6 is held (%s)'
                  % open_modes(node.pid, p6))
        h.check(status(one('truncate f6 1')) == 'ACCES',
                'uid 4000 SETATTR size of a 0644 root file: ACCES')
        h.require(one('uid 0 0') == 'ok', 'client1 as root again')
        with open(p6) as f:
            h.check(f.read() == 'ZZcd', 'the refused WRITEs and SETATTR changed nothing')
        st0 = cache_status(h, c)
        h.check(status(one('truncate f6 3')) == 'NFS3_OK', 'root SETATTR size 3 of f6')
        h.check(field(one('read f6'), 'data') == 'ZZc', 'READ after SETATTR size 3')
        st1 = cache_status(h, c)
        h.check(st1.get('data_opens', 0) == st0.get('data_opens', 0) and
                st1.get('data_hits', 0) - st0.get('data_hits', 0) >= 2,
                'SETATTR size and the READ were served by the held descriptors, none '
                'opened (%s -> %s)' % (st0, st1))
        h.check(status(one('commit f6')) == 'NFS3_OK', 'COMMIT f6 (closes the write descriptor)')
        h.check(status(one('truncate f6 2')) == 'NFS3_OK', 'root SETATTR size 2 of f6')
        h.check(field(one('read f6'), 'data') == 'ZZ', 'READ after SETATTR size 2')
        h.check(1 not in open_modes(node.pid, p6),
                'a SETATTR alone leaves f6 not open for writing (%s)' % open_modes(node.pid, p6))
        # Replaced by rename on the server: WRITE (first) and READ STALE.
        write(p6 + '.tmp', 'seven\n')
        os.rename(p6 + '.tmp', p6)
        h.check(status(one('write f6 late')) == 'STALE',
                'WRITE to a file replaced locally by rename is STALE')
        h.check(status(one('read f6')) == 'STALE', 'READ of it is STALE')
        with open(p6) as f:
            h.check(f.read() == 'seven\n', 'the replacement is untouched')
        # Unlinked on the server: WRITE STALE, nothing held.
        p7 = os.path.join(root, 'f7')
        write(p7, 'eight\n')
        h.require(status(one('lookup f7 root f7')) == 'NFS3_OK', 'LOOKUP f7')
        h.require(status(one('write f7 E')) == 'NFS3_OK', 'WRITE f7')
        h.require(field(one('read f7'), 'data') == 'Eight|', 'READ f7')
        os.unlink(p7)
        h.check(status(one('write f7 x')) == 'STALE', 'WRITE to a file unlinked locally is STALE')
        h.check(held_deleted(node.pid, p7) == 0,
                'sgnfsd holds no descriptor (data or O_PATH) of the unlinked file')

        # 9. read-only export
        r1 = os.path.join(roroot, 'r1')
        h.require(status(three('lookup r1 root r1')) == 'NFS3_OK', 'LOOKUP r1 (ro export)')
        for _ in range(2):
            h.check(field(three('read r1'), 'data') == 'readonly|', 'READ r1 (ro export)')
        h.check(status(three('write r1 x')) == 'ROFS', 'WRITE on the read-only export: ROFS')
        modes = open_modes(node.pid, r1)
        h.check(modes == [0], 'the read-only export\'s file is held open for reading '
                'only, once (modes %s)' % modes)
    finally:
        one.close()
        two.close()
        three.close()
    c.stop('a')

    # 7. descriptor pressure: a limit the daemon cannot raise, a cache larger
    # than it.  The node needs ~40 descriptors of its own.
    g2 = Group('g2', [Export('g2/data', fsid=302, squash='none')])
    c2 = h.cluster([g2], name='it2', cluster_extra={'open_handles': '100000', 'max_conns': '16'})
    root2 = c2.export('g2/data').path
    nfiles = 300
    for i in range(nfiles):
        write(os.path.join(root2, 'p%03d' % i), 'x%d\n' % i)
    c2.start('a', wrap=['prlimit', '--nofile=160:160', '--'])
    sh = Shell(h, procs, g2.vip, root2, 'client3')
    bad = []
    try:
        for i in range(nfiles):
            n = 'p%03d' % i
            if status(sh('lookup %s root %s' % ('p' if i else 'first', n))) != 'NFS3_OK':
                bad.append('LOOKUP ' + n)
            elif status(sh('getattr ' + ('p' if i else 'first'))) != 'NFS3_OK':
                bad.append('GETATTR ' + n)
        h.check(not bad, 'all %d LOOKUP+GETATTR succeed past the descriptor limit (failed: %s)'
                % (nfiles, bad[:5]))
        h.check(status(sh('getattr first')) == 'NFS3_OK', 'the first file, evicted, resolves again')
    finally:
        sh.close()
    st = cache_status(h, c2, 'g2')
    h.check(st.get('pressure_evictions', 0) > 0,
            'running out of descriptors evicted cached handles (%s)' % st)
    h.check(0 < st.get('entries', 0) < nfiles, 'the cache holds fewer than %d (%s)' % (nfiles, st))
    c2.stop('a')


if __name__ == '__main__':
    harness.main(test, timeout=150)
