"""
test_logging.py - where sgnfsd's log lines go (docs/operations.md), in
order:

  1. stderr (the default in the foreground): ISO 8601 UTC timestamp,
     "sgnfsd[PID]", "node=a", level;
  2. log = DIR/%n.log: the lines go to DIR/a.log in the same form and not
     to stderr; `sgnfsctl log-level debug` makes debug lines appear (an
     undecodable call), `log-level error` makes info lines stop (the
     shutdown line), and status shows the level and the file;
  3. log = syslog where /dev/log is a socket of ours (private mount
     namespace): the lines arrive there, with the node; the thread that
     waits for the reader (sgnfs-log) runs at normal priority; when that reader
     stops reading, the node keeps answering (its loop never waits for a
     log line), lines beyond what can wait are dropped and counted (status
     log.dropped, one stderr line), the reader gets "N log lines dropped
     here" once it reads again, and a SIGTERM with lines still waiting
     ends the node with exit 0 and a stderr line naming how many;
  4. log = syslog where there is no /dev/log: stderr says so, then the
     lines come on stderr (never silently dropped);
  5. log = journal where journald's socket is ours: native entries with
     MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, SGNFS_NODE and SGNFS_GROUP; a
     journal that stops reading is met as syslog is in 3;
  6. log = journal without journald: stderr says so, lines on stderr.
"""

import os
import re
import shutil
import socket
import struct
import time

import harness
from harness import Export, Group, TestAbort, log
import ops_util as ou

ISO = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z'


def read(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def wait_for(pred, what, timeout=20):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TestAbort('%s: not within %ds' % (what, timeout))
        time.sleep(0.05)


def in_namespace(h, c, name, setup):
    """Start node a under `unshare --mount` after the shell lines @setup."""
    script = '; '.join(setup + ['exec %s -c %s -n a -f' % (h.sgnfsd, c.config_path)])
    return h.spawn(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-ec',
                    script], 'node-a-%s.log' % name)


def recv_all(s, until, what, timeout=20):
    """Datagrams from @s until until(list of texts) holds."""
    got = []
    s.settimeout(timeout)
    try:
        while not until(got):
            got.append(s.recv(65536).decode('utf-8', 'replace'))
    except socket.timeout:
        raise TestAbort('%s: not received within %ds (got %r)' % (what, timeout, got[-5:]))
    return got


def flood_unread(h, c, vip, what, base=0):
    """With the reader not read: debug lines (one per undecodable UDP call)
    until the node says it dropped more than @base.  Every status in between must be
    answered: a loop waiting for the reader would answer none.  Returns the
    node's log.dropped."""
    rc, out, err = ou.ctl(c, 'log-level', 'debug')
    h.check(rc == 0, '%s: log-level debug (%r)' % (what, err))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dropped, answered = 0, 0
    for _ in range(100):
        for _ in range(300):
            u.sendto(b'\0\0\0\1', (vip, c.ports['nfs_port']))
        time.sleep(0.05)
        rc, doc = ou.status(c)
        if rc != 0:
            break
        answered += 1
        dropped = ou.node_doc(doc, 'a')['status']['log']['dropped']
        if dropped > base:
            break
    u.close()
    h.check(rc == 0 and dropped > base,
            '%s: reader not reading: the node answered %d statuses and dropped %d lines '
            '(status log.dropped)' % (what, answered, dropped))
    return dropped


def drain(s):
    """Everything @s holds now, as texts."""
    got = []
    s.setblocking(False)
    try:
        while True:
            got.append(s.recv(65536).decode('utf-8', 'replace'))
    except BlockingIOError:
        pass
    s.setblocking(True)
    return got


def stop(h, p, what):
    p.send_signal(15)
    h.check(p.wait(20) == 0, '%s: node exits 0' % what)


def test(h):
    h.need_tool('unshare')
    c = h.cluster(groups=[Group('g1', [Export('s1', 101)], nodes=('a',))])
    vip = c.group('g1').vip

    # ---- 1. stderr -------------------------------------------------------
    a = c.start('a')
    text = read(a.logpath)
    m = re.search(r'^(%s) sgnfsd\[(\d+)\] node=a info: node a running' % ISO, text, re.M)
    h.check(m is not None and int(m.group(2)) == a.pid,
            'stderr: "<ISO 8601> sgnfsd[%d] node=a info: node a running" (%r)'
            % (a.pid, text[:300]))
    if m:
        h.check(m.group(1)[:10] == time.strftime('%Y-%m-%d', time.gmtime()),
                'the timestamp carries today\'s UTC date')
    rc, doc = ou.status(c)
    lg = ou.node_doc(doc, 'a')['status']['log']
    h.check(lg == {'level': 'info', 'target': 'stderr', 'dropped': 0, 'queued': 0}, 'status: log %s' % lg)
    c.stop('a')

    # ---- 2. a file, and the level at run time ----------------------------
    ldir = os.path.join(c.dir, 'logs')
    os.makedirs(ldir)
    c.cluster_extra['log'] = os.path.join(ldir, '%n.log')
    c.write_config()
    lf = os.path.join(ldir, 'a.log')
    a = c.start('a')
    h.check(re.search(r'^%s sgnfsd\[%d\] node=a info: node a running' % (ISO, a.pid),
                      read(lf), re.M) is not None, 'log file %s has the start line' % lf)
    h.check('node a running' not in read(a.logpath), 'and stderr does not')
    rc, doc = ou.status(c)
    lg = ou.node_doc(doc, 'a')['status']['log']
    h.check(lg == {'level': 'info', 'target': 'file', 'file': lf, 'dropped': 0,
                  'queued': 0},
            'status: log %s' % lg)

    def junk():
        # A 4-byte record: an undecodable call header, logged at debug.
        with socket.create_connection((vip, c.ports['nfs_port']), timeout=5) as s:
            s.sendall(struct.pack('>I', 0x80000004) + b'\0\0\0\0')
            time.sleep(0.2)
    junk()
    h.check('undecodable call header' not in read(lf), 'at info: no debug line')
    rc, out, err = ou.ctl(c, 'log-level', 'debug')
    h.check(rc == 0 and '"log_level":"debug"' in out and '"was":"info"' in out,
            'sgnfsctl log-level debug: exit 0 (%d %r %r)' % (rc, out, err))
    junk()
    wait_for(lambda: 'undecodable call header' in read(lf), 'a debug line in the file')
    h.check(True, 'at debug: the undecodable call is logged')
    h.check('log level info -> debug' in read(lf), 'the change itself is logged')
    rc, out, err = ou.ctl(c, 'log-level', 'loud')
    h.check(rc == 1 and 'error' in out, 'log-level loud: refused, exit 1 (%d %r)' % (rc, out))
    rc, out, err = ou.ctl(c, 'log-level', 'error', 'a')
    h.check(rc == 0, 'log-level error a: exit 0')
    n = read(lf).count('undecodable call header')
    junk()
    c.stop('a')
    text = read(lf)
    h.check(text.count('undecodable call header') == n and 'shutting down' not in text,
            'at error: neither the debug line nor the info shutdown line')
    del c.cluster_extra['log']

    # ---- 3. syslog, /dev/log ours ----------------------------------------
    c.cluster_extra['log'] = 'syslog'
    c.write_config()
    fakedev = os.path.join(c.dir, 'dev')
    os.makedirs(fakedev)
    open(os.path.join(fakedev, 'null'), 'w').close()
    logsock = os.path.join(c.dir, 'devlog.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(logsock)
    os.chmod(logsock, 0o666)
    # /dev is replaced by a directory holding null (the real one) and a
    # log symlink to our socket, in this node's mount namespace only.
    devsetup = ['mount --bind /dev/null %s/null' % fakedev, 'mount --rbind %s /dev' % fakedev]
    os.symlink(logsock, os.path.join(fakedev, 'log'))
    p = in_namespace(h, c, 'syslog', devsetup)
    got = recv_all(s, lambda g: any('node a running' in x for x in g), 'syslog lines')
    first = [x for x in got if 'node a running' in x][0]
    h.check(re.match(r'<30>.*sgnfsd\[%d\]: node=a node a running' % p.pid, first) is not None,
            'syslog: <daemon.info> sgnfsd[%d]: node=a ... (%r)' % (p.pid, first))
    errlog = os.path.join(h.logdir, 'node-a-syslog.log')
    h.check('node a running' not in read(errlog), 'syslog: nothing on stderr')
    # The thread that waits for the reader left the loop's real-time policy
    # (the nodes here run loop_priority = realtime).
    writer = [int(t) for t in os.listdir('/proc/%d/task' % p.pid)
              if read('/proc/%d/task/%s/comm' % (p.pid, t)).strip() == 'sgnfs-log']
    h.check(len(writer) == 1 and os.sched_getscheduler(writer[0]) == os.SCHED_OTHER and
            os.sched_getscheduler(p.pid) == os.SCHED_FIFO,
            'syslog: one sgnfs-log thread, at normal priority beside the real-time loop (%r)'
            % [(t, os.sched_getscheduler(t)) for t in writer])
    # The reader stops reading.
    dropped = flood_unread(h, c, vip, 'syslog')
    h.check(read(errlog).count('its reader is not keeping up') == 1,
            'syslog: stderr says once that lines are being dropped (%r)' % read(errlog)[-400:])
    # It reads again: what waited arrives, then the count of what did not,
    # then what came after.
    got = drain(s)
    rc, out, err = ou.ctl(c, 'log-level', 'info')
    got += recv_all(s, lambda g: any('log level debug -> info' in x for x in g),
                    'syslog lines after the reader is back')
    notes = [(i, re.search(r'^<28>.*node=a (\d+) log lines dropped here: the syslog reader', x))
             for i, x in enumerate(got) if 'log lines dropped here' in x]
    back = [i for i, x in enumerate(got) if 'log level debug -> info' in x]
    rc, doc = ou.status(c)
    total = ou.node_doc(doc, 'a')['status']['log']['dropped']
    h.check(notes and all(m for i, m in notes) and
            sum(int(m.group(1)) for i, m in notes) == total >= dropped and notes[0][0] < back[0],
            'syslog: the reader, back, gets <daemon.warning> "N log lines dropped here", the '
            'Ns adding up to status log.dropped (%d), before the later lines (%r)'
            % (total, [got[i] for i, m in notes]))
    # Not read again, lines waiting at SIGTERM: exit 0 all the same.
    flood_unread(h, c, vip, 'syslog, again', base=total)
    stop(h, p, 'syslog, reader not reading')
    h.check(re.search(r'\d+ log lines for syslog not delivered at exit', read(errlog)),
            'syslog: stderr names the lines not delivered at exit')

    # ---- 4. syslog, no /dev/log ------------------------------------------
    os.unlink(os.path.join(fakedev, 'log'))
    p = in_namespace(h, c, 'nodevlog', devsetup)
    errlog = os.path.join(h.logdir, 'node-a-nodevlog.log')
    wait_for(lambda: 'node a running' in read(errlog), 'the start line on stderr')
    text = read(errlog)
    h.check('log = syslog, but nothing listens on /dev/log' in text and
            'logging to stderr instead' in text, 'no /dev/log: stderr says so')
    h.check(text.index('nothing listens on /dev/log') < text.index('node a running'),
            'and says so before the first event line')
    stop(h, p, 'no /dev/log')
    s.close()

    # ---- 5. the journal, ours ------------------------------------------------
    c.cluster_extra['log'] = 'journal'
    c.write_config()
    jsock = os.path.join(c.dir, 'journal.sock')
    j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    j.bind(jsock)
    jsetup = ['mount -t tmpfs ops-run-systemd /run/systemd', 'mkdir /run/systemd/journal',
              'ln -s %s /run/systemd/journal/socket' % jsock]
    p = in_namespace(h, c, 'journal', jsetup)
    got = recv_all(j, lambda g: any('group=g1 online' in x for x in g), 'journal entries')
    fields = [dict(l.split('=', 1) for l in x.split('\n') if '=' in l) for x in got]
    run = [f for f in fields if 'node a running' in f.get('MESSAGE', '')]
    on = [f for f in fields if f.get('MESSAGE', '').startswith('group=g1 online')]
    h.check(run and run[0].get('PRIORITY') == '6' and run[0].get('SYSLOG_IDENTIFIER') == 'sgnfsd'
            and run[0].get('SGNFS_NODE') == 'a', 'journal: MESSAGE, PRIORITY=6, '
            'SYSLOG_IDENTIFIER=sgnfsd, SGNFS_NODE=a (%s)' % run[:1])
    h.check(on and on[0].get('SGNFS_GROUP') == 'g1', 'journal: SGNFS_GROUP=g1 on the group\'s '
            'event (%s)' % on[:1])
    flood_unread(h, c, vip, 'journal')
    drain(j)
    rc, out, err = ou.ctl(c, 'log-level', 'info')
    got = recv_all(j, lambda g: any('log level debug -> info' in x for x in g),
                   'journal entries after the reader is back')
    h.check(any('log lines dropped here: the journal reader' in x for x in got),
            'journal: the reader, back, gets "N log lines dropped here"')
    stop(h, p, 'journal')
    j.close()

    # ---- 6. the journal, absent ----------------------------------------------
    jsetup = ['mount -t tmpfs ops-run-systemd /run/systemd']
    p = in_namespace(h, c, 'nojournal', jsetup)
    errlog = os.path.join(h.logdir, 'node-a-nojournal.log')
    wait_for(lambda: 'node a running' in read(errlog), 'the start line on stderr')
    h.check('log = journal, but journald\'s socket /run/systemd/journal/socket is missing; '
            'logging to stderr instead' in read(errlog), 'no journald: stderr says so')
    stop(h, p, 'no journald')


harness.main(test, timeout=150)
