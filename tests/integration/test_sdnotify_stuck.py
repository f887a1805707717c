#!/usr/bin/env python3
"""
test_sdnotify_stuck.py - systemd's notification socket stops reading, the
node does not stop (src/daemon/sdnotify.c).

NOTIFY_SOCKET names a datagram socket the test binds and fills until it
takes no more, then does not read; WATCHDOG_USEC asks for a ping every
10 ms.  Under that:
  1. the node starts and answers on its control socket (READY=1 and the
     pings wait on the notification thread "sgnfs-notify", which runs at
     normal priority; sd_notify on the loop never returned, and sgnfsd's
     own watchdog ended the node);
  2. three reloads through the control socket are answered, and status
     answers between them, while every notification waits;
  3. once the test reads, it gets READY=1, then (RELOADING=1, READY=1)
     three times, then, after SIGTERM, STOPPING=1, in that order; the node
     exits 0;
  4. a node stopped while the receiver never reads exits 0 all the same,
     saying once that its last notifications were not sent.
Assertions are about order and outcome; timeouts only guard against hangs.
"""

import os
import socket
import threading

import harness
from harness import Export, Group, log
import ops_util as ou

RELOADS = 3


def fill(path):
    """Queue "JUNK" on @path until a socket that has sent nothing cannot
    send either: the receiver's queue is full, not a sender's buffer.
    Returns how many were queued."""
    n = 0
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sent = 0
        try:
            while True:
                s.sendto(b'JUNK', socket.MSG_DONTWAIT, path)
                sent += 1
        except BlockingIOError:
            pass
        finally:
            s.close()
        n += sent
        if not sent:
            return n


def receiver(h, path):
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.settimeout(60)           # hang guard
    junk = fill(path)
    h.require(junk > 0, 'the notification socket is full (%d datagrams queued)' % junk)
    return ns, junk


def read_all(ns, junk, msgs, stop_seen):
    """Every message up to STOPPING=1 into @msgs, the junk and WATCHDOG=1
    left out (a thread: it reads while the node is stopped)."""
    try:
        while True:
            m = ns.recv(4096).decode()
            if m == 'JUNK':
                junk -= 1
                continue
            if m == 'WATCHDOG=1':
                continue
            msgs.append(m)
            if m == 'STOPPING=1':
                stop_seen.set()
                return
    except socket.timeout:
        return


def notify_threads(pid):
    """Scheduling policies of @pid's threads named sgnfs-notify."""
    out = []
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                comm = f.read().strip()
            with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                fields = f.read().rsplit(') ', 1)[1].split()
        except OSError:
            continue
        if comm == 'sgnfs-notify':
            out.append(int(fields[41 - 3]))     # stat(5) field 41: policy
    return out


def kinds(msgs):
    out = []
    for m in msgs:
        if m.startswith('READY=1'):
            out.append('READY')
        elif m == 'RELOADING=1':
            out.append('RELOADING')
        elif m == 'STOPPING=1':
            out.append('STOPPING')
        elif m.startswith('STATUS='):
            continue            # coalesced: the newest unsent only
        else:
            out.append('?' + m)
    return out


def test(h):
    c = h.cluster(groups=[Group('g1', [Export('s1', 101)], nodes=('a',))])
    path = os.path.join(c.dir, 'notify.sock')
    ns, junk = receiver(h, path)
    os.environ['NOTIFY_SOCKET'] = path
    os.environ['WATCHDOG_USEC'] = '20000'
    try:
        # ---- 1. start with nobody reading -----------------------------------
        a = c.start('a')
        rc, doc = ou.status(c)
        st = (ou.node_doc(doc, 'a') or {}).get('status') or {}
        h.check(rc == 0 and st.get('pid') == a.pid,
                'the node answers on its control socket while READY=1 waits')
        h.check(st.get('systemd') == {'notify': True, 'dropped': 0},
                'status: notifications on, none dropped (%r)' % st.get('systemd'))

        # The sender is the node's thread "sgnfs-notify", at normal
        # priority whatever the loop's (common/thprio.h, thp_leave_loop).
        pol = notify_threads(a.pid)
        h.check(len(pol) == 1 and pol[0] == 0,
                'one sgnfs-notify thread, SCHED_OTHER (policies %r)' % pol)

        # ---- 2. reloads while nobody reads -----------------------------------
        for i in range(RELOADS):
            rc, out, err = ou.ctl(c, 'reload', 'a')
            h.check(rc == 0, 'reload %d answered while notifications wait (%d %r)'
                    % (i + 1, rc, (out + err)[:200]))
            rc, doc = ou.status(c)
            h.check(rc == 0, 'status answered after reload %d' % (i + 1))

        # ---- 3. the receiver reads: everything, in order -------------------
        msgs = []
        stop_seen = threading.Event()
        t = threading.Thread(target=read_all, args=(ns, junk, msgs, stop_seen))
        t.start()
        h.check(a.stop() == 0, 'the node exits 0 on SIGTERM')
        t.join(90)
        want = ['READY'] + ['RELOADING', 'READY'] * RELOADS + ['STOPPING']
        got = kinds(msgs)
        log('notifications received: %r' % msgs)
        h.check(got == want, 'READY=1, (RELOADING=1, READY=1) x%d, STOPPING=1 in order '
                '(got %r)' % (RELOADS, got))
        h.check(all('MAINPID=%d' % a.pid in m for m in msgs if m.startswith('READY=1')),
                'every READY=1 carries MAINPID=%d' % a.pid)
        ns.close()
        os.unlink(path)

        # ---- 4. stopped while nobody ever reads -----------------------------
        ns, junk = receiver(h, path)
        a = c.start('a')
        h.check(a.stop() == 0, 'a node whose notifications are never read exits 0 on SIGTERM')
        with open(a.logpath, 'rb') as f:
            text = f.read().decode('utf-8', 'replace')
        h.check(text.count('not sent at exit') == 1,
                'one line says the last notifications were not sent')
        ns.close()
    finally:
        os.environ.pop('NOTIFY_SOCKET', None)
        os.environ.pop('WATCHDOG_USEC', None)


harness.main(test, timeout=240)
