#!/usr/bin/env python3
"""
test_state_files - state no client can reach, and state files that cannot
hurt the node that reads them (issue 13 item 2).

  1. `sgnfsd -t` on the machine: an export inside another export of the
     same group (it would reach the first one's .sgnfs/), one inside
     another group's, one that is a symbolic link into another group's
     export, and one whose path does not exist are each reported, with the
     export's line; the good file passes.  A node started on the
     symlinked file anyway serves neither of the two groups.
  2. a FIFO planted as .sgnfs/target while node b stands by: b reads the
     target at every poll; it must log the file by name, stay alive (no
     blocked open, no watchdog exit) and still take the group over when
     node a dies.
  3. a FIFO planted as a client list entry and a 1 GiB sparse file as the
     journal: the group still comes online on the next start, each bad
     file is named in a log line, and the journal is kept aside.
     A FIFO as the NSM state file keeps the group from starting (it
     cannot know its state number), and the log and `sgnfsctl status` say
     which file is bad; the other group starts.
  4. a symbolic link planted at the NSM state file's temporary name,
     pointing at a file outside: bringing the group up (which rewrites
     the state number) leaves that file untouched, and the state file is a
     regular file again.
"""
import os
import re
import stat
import time

import harness
from harness import Export, Group, log


def wait_log(h, node, text, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(node.logpath, errors='replace') as f:
            if text in f.read():
                return h.check(True, what)
        if not node.alive():
            break
        time.sleep(0.2)
    return h.check(False, what)


def log_has(node, text):
    with open(node.logpath, errors='replace') as f:
        return text in f.read()


def check_t(h, c, text, expect_ok, what, expect_err=None):
    path = os.path.join(c.dir, 'check.ini')
    with open(path, 'w') as f:
        f.write(text)
    r = h.run([h.sgnfsd, '-t', '-c', path], check=False, what='sgnfsd -t: ' + what)
    err = r.stderr.decode(errors='replace')
    if expect_ok:
        h.check(r.returncode == 0, '-t accepts: %s' % what)
    else:
        h.check(r.returncode != 0 and (expect_err is None or expect_err in err),
                '-t refuses: %s (%r)' % (what, err.strip()[:300]))


def test(h):
    g1 = Group('g1', [Export('g1/data', fsid=101, squash='none')], nodes=('a', 'b'))
    g2 = Group('g2', [Export('g2/data', fsid=201, squash='none')], nodes=('a', 'b'))
    c = h.cluster([g1, g2])
    d1 = c.export('g1/data').path
    state = os.path.join(d1, '.sgnfs')

    # ---- 1. sgnfsd -t on this machine -----------------------------------
    good = c.config_text()
    check_t(h, c, good, True, 'the cluster as generated')
    os.makedirs(os.path.join(d1, 'sub'))
    head = ''.join(sec for sec in re.split(r'(?m)^(?=\[)', good)
                   if not sec.startswith('[export '))

    def exp(path, group, fsid):
        return ('[export %s]\ngroup = %s\nfsid = %d\nclients = 127.0.0.0/8\n\n'
                % (path, group, fsid))
    base = head + exp(d1, 'g1', 101) + exp(c.export('g2/data').path, 'g2', 201)
    check_t(h, c, base + exp(os.path.dirname(d1), 'g1', 102), False,
            'a later export of the same group around its first one', 'must not nest')
    check_t(h, c, base + exp(os.path.join(d1, 'sub'), 'g2', 202), False,
            "an export inside another group's export", 'must not nest')
    link = os.path.join(c.storage, 'g2link')
    os.symlink(os.path.join(d1, 'sub'), link)
    check_t(h, c, base + exp(link, 'g2', 203), False,
            "an export that is a symlink into another group's export", 'resolves to')
    check_t(h, c, base + exp(os.path.join(c.storage, 'nowhere'), 'g2', 204), False,
            'an export path that does not exist', 'does not exist')
    # The daemon started without -t on the symlinked file: g1, whose export
    # contains g2's once resolved, is not served, and the node says why.
    # (g2 is not served either: its path holds no initialised storage.)
    symlinked = os.path.join(c.dir, 'symlinked.ini')
    with open(symlinked, 'w') as f:
        f.write(head + exp(d1, 'g1', 101) + exp(link, 'g2', 203))
    good_path, c.config_path = c.config_path, symlinked
    a = c.start('a', wait=False)
    wait_log(h, a, 'group=g1 export %s (resolved' % d1, 'g1 is refused: its export contains '
             "g2's, resolved")
    h.check(a.alive(), 'the node runs on')
    c.stop('a')
    c.config_path = good_path

    # ---- 2. a FIFO as .sgnfs/target, read by a standby node --------------
    c.start('a')
    b = c.start('b')
    h.require(os.path.isdir(state), 'the group state directory exists')
    os.mkfifo(os.path.join(state, 'target'))
    wait_log(h, b, 'target: not a regular file',
             'node b names the FIFO target in a log line')
    h.check(b.alive(), 'node b is alive after reading the FIFO target')
    c.kill9('a')
    c.wait_vip(g1.vip, b, timeout=60)
    h.check(b.alive(), 'node b took group g1 over with the FIFO still there')
    c.stop('b')
    h.check(not os.path.lexists(os.path.join(state, 'target')),
            'the takeover removed the target (a planned move is over)')

    # ---- 3. a FIFO as a client list entry, 1 GiB sparse journal ----------
    clist = None
    for root, dirs, _files in os.walk(state):
        for dn in dirs:
            if dn.startswith('clients'):
                clist = os.path.join(root, dn)
    h.require(clist is not None, 'the client list directory exists (%s)' % os.listdir(state))
    os.mkfifo(os.path.join(clist, 'fifo-client'))
    jpath = os.path.join(state, 'journal')
    with open(jpath, 'wb') as f:
        f.truncate(1 << 30)
    a = c.start('a', timeout=60)
    h.check(a.alive(), 'node a is up')
    h.check(log_has(a, 'fifo-client') and log_has(a, 'not a regular file'),
            'the FIFO client list entry is named in a log line')
    h.check(log_has(a, '/journal: larger than the limit'),
            'the 1 GiB journal is named in a log line')
    h.check(os.path.exists(os.path.join(state, 'journal.damaged')) and
            os.path.getsize(jpath) < (1 << 20),
            'the oversized journal was kept aside and a new one written')
    c.stop('a')
    os.unlink(os.path.join(clist, 'fifo-client'))

    # ---- 3b. a FIFO as the NSM state file: the group cannot start, and both
    # the log and `sgnfsctl status` name the file --------------------------
    spath = os.path.join(state, 'state')
    os.rename(spath, spath + '.good')
    os.mkfifo(spath)
    a = c.start('a', wait=False)
    c.wait_vip(g2.vip, a, timeout=60)          # the other group is unaffected
    wait_log(h, a, '.sgnfs/state): not a regular file',
             'the FIFO NSM state file is named in a log line')
    r = h.run([h.env_path('SGNFSCTL'), '-c', c.config_path, 'status', '--json'], check=False,
              what='sgnfsctl status with g1 unable to start')
    out = r.stdout.decode(errors='replace')
    h.check('.sgnfs/state' in out and 'not a regular file' in out,
            'sgnfsctl status --json names the bad state file')
    h.check(a.alive(), 'node a is alive')
    c.stop('a')
    os.unlink(spath)
    os.rename(spath + '.good', spath)

    # ---- 4. a symlink planted at the state file's temporary name ----------
    victim = os.path.join(c.storage, 'victim')
    with open(victim, 'w') as f:
        f.write('precious\n')
    os.symlink(victim, os.path.join(state, '.state.tmp'))
    a = c.start('a')
    with open(victim) as f:
        h.check(f.read() == 'precious\n', 'the file the planted symlink names is untouched')
    st = os.lstat(os.path.join(state, 'state'))
    h.check(stat.S_ISREG(st.st_mode), 'the NSM state file is a regular file')
    with open(os.path.join(state, 'state')) as f:
        v = f.read().strip()
    log('NSM state after the restart: %s' % v)
    h.check(v.isdigit() and int(v) % 2 == 1, 'the state number is odd (up)')
    c.stop('a')


if __name__ == '__main__':
    harness.main(test, timeout=300)
