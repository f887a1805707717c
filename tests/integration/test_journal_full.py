#!/usr/bin/env python3
"""
test_journal_full.py - the lock journal on a filesystem that fills up
(issue 6): new locks are refused, held locks are not lost, and service
comes back by itself once there is room.

g1's export is a 1 MiB tmpfs.  Nodes a, b; g1 (a b, grace 10 s).

  1. Three hosts hold a lock each.  A filler file takes every free byte.
     The first host then takes one lock after another: once the journal's
     next write fails, that lock is refused and taken back (never granted
     ahead of its record), later locks are refused (denied_nolocks, a log
     line says why), unlocks still work, and the held locks are all still
     in the table.  The filler goes: within a few seconds a
     compaction succeeds and locks are granted again.
  2. The journal fills its own filesystem: with only 96 KiB left, a
     LOCK+UNLOCK load runs for a few seconds, writing far more journal
     than that before a compaction is due.  Some requests are refused
     while the journal compacts (dropping the old file first, as there is
     no room for two), but the daemon keeps serving, logs that the journal
     is writable again each time, and the file stays small.
  3. kill -9 a: b loads the journal and reserves exactly the locks a held;
     the hosts reclaim and grace ends early.
"""

import errno
import os
import re
import subprocess
import time

import harness
import fo_util as fu
from harness import log, Skip

GRACE = 10
# [cluster] journal_io for this run (meson runs it as journal_full and, with
# JOURNAL_IO=thread, as journal_full_thread); empty: the default (uring).
JOURNAL_IO = os.environ.get('JOURNAL_IO', '')


def test(h):
    extra = {'journal_io': JOURNAL_IO} if JOURNAL_IO else None
    c = fu.three_nodes(h, [('g1', 'ab', GRACE)], cluster_extra=extra)
    export = fu.export_path(c, 'g1')
    cp = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m,mode=0777', 'tmpfs', export],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if cp.returncode != 0:
        raise Skip('cannot mount a tmpfs: %s' % cp.stdout.decode().strip())
    try:
        # The tmpfs hides the identity the harness wrote: initialise it anew.
        c.init_group('g1')
        run(h, c, export)
    finally:
        c.stop_all()
        subprocess.run(['umount', '-l', export])


def lock_cmd(ho, op, path, start, length):
    r = ho.command('%s %s %d %d' % (op, path, start, length))
    return r.get('status') if r else 'timeout'


def run(h, c, export):
    f1 = fu.lock_file(c, 'g1')
    with open(f1, 'wb') as f:
        f.write(b'\0' * 4096)
    os.chmod(f1, 0o666)
    fu.start_nodes(h, c, names=('a',))
    c.start('b', wait=False)
    v1 = c.group('g1').vip
    jpath = os.path.join(fu.statedir(c, 'g1'), 'journal')
    hf = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 10, nhosts=3, tag='full')
    h.require(hf.wait_holding(), '3 hosts hold a lock each')
    held0 = len(fu.status(c)['g1']['locks'])
    io = fu.status(c)['g1'].get('journal', {}).get('io')
    log('journal io: %s' % io)
    if JOURNAL_IO == 'thread':
        h.check(io == 'thread', 'journal_io = thread: batches go to the thread pool (%s)' % io)
    else:
        h.check(io in ('uring', 'thread'), 'the journal says how it writes (%s)' % io)

    # -- 1. someone else fills the filesystem -------------------------------------
    filler = os.path.join(export, 'filler')
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (65536, 4096, 512, 64, 8, 1):
            while True:
                try:
                    os.write(fd, b'x' * chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    log('filler: %d bytes' % os.path.getsize(filler))
    # Locks only, one at a time: each is its own batch, so the write that
    # fails carries a grant.
    statuses = []
    for i in range(3000):
        s = lock_cmd(hf, 'lock', f1, 1000 + 20 * i, 10)
        statuses.append(s)
        if s != 'granted':
            break
    failed_at = 1000 + 20 * (len(statuses) - 1)
    log('lock results while filling: %d granted, last %s' % (statuses.count('granted'),
                                                           statuses[-1]))
    h.check(statuses[-1] == 'denied_nolocks',
            'once the journal cannot grow, a lock is refused with denied_nolocks (%s after %d)'
            % (statuses[-1], len(statuses)))
    s = lock_cmd(hf, 'lock', f1, 900, 10)
    h.check(s == 'denied_nolocks', 'while full, new locks stay refused (%s)' % s)
    la = fu.node_log(c.nodes['a'])
    h.check('journal write failed (No space left on device)' in la,
            'a logged the failed journal write')
    h.check(re.search(r'client=\S+ lock refused: the journal cannot be written', la),
            'a logged the refusal with the client')
    # The lock whose record could not be written was answered with a
    # refusal (and taken back), not granted ahead of its record.
    h.check(re.search(r'client=\S+ LOCK refused: the journal cannot record it', la),
            'the grant caught by the failed write was refused and taken back')
    h.check(not [l for l in fu.status(c)['g1']['locks'] if l['start'] == failed_at],
            'it is not in the lock table')
    st = fu.status(c)
    held = [l for l in st['g1']['locks'] if l['start'] < 1000]
    h.check(len(held) == held0 == 3, 'the held locks are all still held (%d of %d)'
            % (len(held), held0))
    s = lock_cmd(hf, 'unlock', f1, 1000, 10)
    h.check(s == 'granted', 'unlock still works while full (%s)' % s)
    h.check(not [l for l in fu.status(c)['g1']['locks'] if l['start'] == 1000],
            'and the unlocked range is free')

    os.unlink(filler)
    t0 = time.monotonic()
    s = None
    while time.monotonic() - t0 < 10:
        s = lock_cmd(hf, 'lock', f1, 900, 10)
        if s == 'granted':
            break
        time.sleep(0.2)
    h.check(s == 'granted', 'with room again, locks are granted (after %.1f s)'
            % (time.monotonic() - t0))
    h.check('journal writable again after a compaction' in fu.node_log(c.nodes['a']),
            'a logged the journal writable again')

    # -- 2. the journal fills its own filesystem ----------------------------------
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            sv = os.statvfs(export)
            if sv.f_bavail * sv.f_frsize <= 96 << 10:
                break
            os.write(fd, b'x' * 4096)
    finally:
        os.close(fd)
    log('filler: %d bytes, %d free' % (os.path.getsize(filler),
                                       os.statvfs(export).f_bavail * os.statvfs(export).f_frsize))
    bench = [fu.client_path(), '--host', fu.client_addr(c, 2, 1), '--server', v1,
             '--timeout', '5000', '--depth', '8', '--owners', '4', '--duration', '4',
             'bench-lock', '%s:%s' % (v1, f1)]
    log('spawn: %s' % ' '.join(bench))
    cp = subprocess.run(bench, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = cp.stdout.decode('utf-8', 'replace')
    log('bench-lock: %s' % out.strip().replace('\n', ' | ')[:600])
    la = fu.node_log(c.nodes['a'])
    nback = la.count('journal writable again after a compaction')
    h.check(nback >= 2, 'the journal filled its filesystem and came back by itself (%d times)'
            % nback)
    time.sleep(1.5)    # a retry compaction, if the load ended on a full journal
    size = os.path.getsize(jpath)
    h.check(size < 600 << 10, 'the journal is small again (%d bytes)' % size)
    h.check(c.nodes['a'].alive(), 'a still serves')
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        s = lock_cmd(hf, 'lock', f1, 950, 10)
        if s == 'granted':
            break
        time.sleep(0.2)
    h.check(s == 'granted', 'a new lock is granted after the load (%s, %.1f s after it)'
            % (s, time.monotonic() - t0))
    os.unlink(filler)
    st = fu.status(c)
    before = sorted((l['client'], l['start'], l['end']) for l in st['g1']['locks'])
    log('g1 locks before the kill: %s' % before)

    # -- 3. takeover ------------------------------------------------------------
    t_kill = time.monotonic()
    c.kill9('a')
    fu.wait_group(h, c, 'g1', owner='b', timeout=10)
    lb = fu.node_log(c.nodes['b'])
    m = re.search(r'group=g1 journal loaded: .* (\d+) locks and 0 shares reserved', lb)
    h.check(m is not None and int(m.group(1)) == len(before),
            'b reserved exactly the %d locks a held (%s)' % (len(before),
                                                          m.group(0) if m else None))
    n = hf.wait_count('reclaim-done', 3, 15, since=t_kill)
    h.check(n == 3, 'the 3 hosts reclaimed (%d)' % n)
    st = fu.wait_for_status(h, c, lambda s: s.get('g1', {}).get('state') == 'online', GRACE - 3,
                            'g1 grace ends early on b')
    after = sorted((l['client'], l['start'], l['end']) for l in st['g1']['locks'])
    h.check(after == before, 'b holds exactly the locks a held (%d)' % len(after))
    hf.stop()
    fu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=240)
