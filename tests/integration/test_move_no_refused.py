#!/usr/bin/env python3
"""
A planned move never refuses a reconnecting client (issue 17).

During `sgnfsctl move`, the old owner stops reading its clients'
connections but keeps them open; it closes them only once the target
listens on the group's VIPs (the target locks .sgnfs/bound after its
binds), so the clients' reconnects land on a listener.  Closing them as
soon as the target holds the lease is too early: the target binds just
after it acquires, and a reconnect in between is refused (Linux then
waits 3 s).

The test widens that in-between on purpose, so a wrong order shows every
time instead of once in a busy CI run: the target is stopped (SIGSTOP)
before the move, and as soon as the old owner lets go of the VIP's UDP
port 2049 the test binds it itself, then lets the target run: its first
bind fails (EADDRINUSE) and it listens on nothing until it retries after
loading the group's state; the test lets the port go once the target has
logged that failure.  Should the test not get the port (the target bound
first), the move is repeated the other way, up to ATTEMPTS times.

Load: NCLIENTS clients, each connected to the VIP's NFS port; each sends
an RPC NULL call on every new connection, waits for the answer, then
waits for the server to close the connection, and reconnects at once
(like the kernel's RPC client); plus one CPU-bound process during the
move.

Then: a move to a node that is not running is refused (exit 1, the
reason on stderr) and the group stays; a move to a stopped (SIGSTOP)
target is answered by the owner without asking the target, and when that
target is killed before it took the group, the old owner takes it back.

Last, kill -9 of the owner: the standby takes the lease as its waiter
wakes on the dead owner's lock going, not at a later poll.

Checked (order and outcome, no durations):
  * the target logged its failed bind (the window was open), then that it
    listens, and only after that did the old owner log its handover done
    "another node has the group and listens on its VIPs";
  * no connect of any client was refused, from before the move until the
    group is online on the target;
  * every client's connection was closed by the old owner and its
    reconnect was answered (NULL call) by the target.
"""

import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import harness
import fo_util as fu
from harness import log

NCLIENTS = 12
ATTEMPTS = 6


def null_call(xid):
    """An RPC NULL call to NFS v3 (AUTH_NONE), with its record mark."""
    body = struct.pack('>IIIIIIIIII', xid, 0, 2, 100003, 3, 0, 0, 0, 0, 0)
    return struct.pack('>I', 0x80000000 | len(body)) + body


def recv_exact(s, n):
    b = b''
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            return None
        b += d
    return b


class Client(threading.Thread):
    """Connects to (vip, port); NULL call; waits for the server to close;
    reconnects at once.  events: list of (seq, what), in order."""

    seq = 0
    seq_lock = threading.Lock()

    def __init__(self, vip, port, src):
        super().__init__(daemon=True)
        self.vip, self.port, self.src = vip, port, src
        self.events = []
        self.stop = threading.Event()
        self.xid = int.from_bytes(os.urandom(4), 'big')

    def ev(self, what):
        with Client.seq_lock:
            Client.seq += 1
            self.events.append((Client.seq, what))

    def run(self):
        while not self.stop.is_set():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((self.src, 0))
                s.settimeout(60)
                try:
                    s.connect((self.vip, self.port))
                except ConnectionRefusedError:
                    self.ev('refused')
                    time.sleep(0.01)
                    continue
                except OSError as e:
                    self.ev('connect-error %s' % errno.errorcode.get(e.errno, e.errno))
                    time.sleep(0.01)
                    continue
                self.ev('connected')
                self.xid = (self.xid + 1) & 0xffffffff
                try:
                    s.sendall(null_call(self.xid))
                    mark = recv_exact(s, 4)
                    if mark is None:
                        self.ev('closed-before-reply')
                        continue
                    body = recv_exact(s, struct.unpack('>I', mark)[0] & 0x7fffffff)
                    ok = (body is not None and len(body) >= 24 and
                          struct.unpack('>IIIIII', body[:24]) == (self.xid, 1, 0, 0, 0, 0))
                    self.ev('reply' if ok else 'bad-reply')
                except OSError as e:
                    self.ev('io-error %s' % errno.errorcode.get(e.errno, e.errno))
                    continue
                # Idle until the server closes the connection.
                s.settimeout(0.2)
                while not self.stop.is_set():
                    try:
                        if s.recv(1) == b'':
                            self.ev('closed')
                            break
                    except socket.timeout:
                        continue
                    except OSError:
                        self.ev('closed')
                        break
            finally:
                s.close()


class PortBlocker(threading.Thread):
    """Binds UDP (vip, port) as soon as it is free, until released."""

    def __init__(self, vip, port):
        super().__init__(daemon=True)
        self.vip, self.port = vip, port
        self.sock = None
        self.got = threading.Event()
        self.quit = threading.Event()

    def run(self):
        while not self.quit.is_set():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((self.vip, self.port))
            except OSError:
                s.close()
                continue
            self.sock = s
            self.got.set()
            return

    def release(self):
        self.quit.set()
        self.join()
        if self.sock:
            self.sock.close()


def wait_until(pred, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def since(node, off):
    with open(node.logpath, 'rb') as f:
        f.seek(off)
        return f.read().decode('utf-8', 'replace')


def line_index(text, needle):
    for i, ln in enumerate(text.splitlines()):
        if needle in ln:
            return i
    return -1


def test(h):
    c = fu.three_nodes(h, [('g1', 'ab', 5)], journal=False)
    fu.start_nodes(h, c, names=('a', 'b'))
    vip = c.group('g1').vip
    port = c.ports['nfs_port']
    clients = [Client(vip, port, fu.client_addr(c, 1, i + 1)) for i in range(NCLIENTS)]
    for cl in clients:
        cl.start()
    h.require(wait_until(lambda: all(any(w == 'reply' for _, w in cl.events)
                                             for cl in clients), 30),
              'every client is connected and answered before the move')

    owner, target = 'a', 'b'
    widened = False
    for attempt in range(ATTEMPTS):
        src, dst = c.nodes[owner], c.nodes[target]
        off_src, off_dst = os.path.getsize(src.logpath), os.path.getsize(dst.logpath)
        marks = [len(cl.events) for cl in clients]
        burner = subprocess.Popen([sys.executable, '-c', 'while True: pass'],
                                  preexec_fn=harness._pdeathsig)
        blocker = PortBlocker(vip, port)
        blocker.start()
        # The target is stopped until the test has the port, so that it
        # cannot bind first (it still runs, holding node.<name>: the move
        # is allowed, and sgnfsctl does not ask it).
        os.kill(dst.proc.pid, signal.SIGSTOP)
        try:
            try:
                rc, out = fu.ctl(h, c, 'move', 'g1', target)
                h.require(rc == 0 and '"released"' in out,
                          'attempt %d: %s released g1 for %s' % (attempt, owner, target))
                # The target either failed its first bind (the test has
                # the port) or bound before the test got it.
                lost = not wait_until(lambda: blocker.got.is_set(), 10)
            finally:
                os.kill(dst.proc.pid, signal.SIGCONT)
            if not lost:
                h.require(wait_until(
                    lambda: 'group=g1 cannot bind on node %s' % target in since(dst, off_dst)
                    or 'group=g1 listens on all its VIPs' in since(dst, off_dst), 30),
                    'attempt %d: %s either fails its bind or listens' % (attempt, target))
                lost = 'group=g1 cannot bind on node %s' % target not in since(dst, off_dst)
        finally:
            blocker.release()
        fu.wait_group(h, c, 'g1', owner=target, timeout=30)
        h.require(wait_until(
            lambda: 'group=g1 handover from node %s done' % owner in since(src, off_src), 30),
            'attempt %d: %s finished its handover' % (attempt, owner))
        h.require(wait_until(
            lambda: all(any(w == 'reply' for _, w in cl.events[m:])
                        for cl, m in zip(clients, marks)), 30),
            'attempt %d: every client reconnected and was answered after the move' % attempt)
        burner.kill()
        burner.wait()
        tsrc, tdst = since(src, off_src), since(dst, off_dst)
        log('attempt %d (%s -> %s): the test %s the race for the port'
            % (attempt, owner, target, 'lost' if lost else 'won'))
        refused = [(i, w) for i, (cl, m) in enumerate(zip(clients, marks))
                   for _, w in cl.events[m:] if w != 'connected' and w != 'reply'
                   and w != 'closed']
        h.check(refused == [], 'attempt %d: no client connect refused or failed during the '
                'move (%s)' % (attempt, refused[:6]))
        h.check(all(any(w == 'closed' for _, w in cl.events[m:])
                    for cl, m in zip(clients, marks)),
                'attempt %d: %s closed every client\'s connection (they reconnected)'
                % (attempt, owner))
        h.check('another node has the group and listens on its VIPs' in tsrc,
                'attempt %d: %s handed over once %s listened (%s)' % (
                    attempt, owner, target,
                    [ln for ln in tsrc.splitlines() if 'handover' in ln][:1]))
        if not lost:
            widened = True
            i_fail = line_index(tdst, 'group=g1 cannot bind on node %s' % target)
            i_bound = line_index(tdst, 'group=g1 listens on all its VIPs')
            h.check(0 <= i_fail < i_bound,
                    'attempt %d: %s listened only after its failed bind (lines %d, %d)'
                    % (attempt, target, i_fail, i_bound))
            break
        owner, target = target, owner
    h.check(widened, 'the window between taking the lease and listening was widened in one '
            'of %d moves' % ATTEMPTS)
    for cl in clients:
        cl.stop.set()
    for cl in clients:
        cl.join(5)

    # A move to a node that is not running is refused at once (exit 1, the
    # reason on stderr) and the group stays where it is.
    cur, other = target, owner
    fu.wait_group(h, c, 'g1', owner=cur, timeout=30)
    off_cur = os.path.getsize(c.nodes[cur].logpath)
    c.stop(other)
    cp = subprocess.run([fu.ctl_path(), '-c', c.config_path, 'move', 'g1', other],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                        preexec_fn=harness._pdeathsig)
    err = cp.stderr.decode('utf-8', 'replace')
    log('move to the stopped node: %d %s %s' % (cp.returncode, cp.stdout.decode().strip(), err))
    h.check(cp.returncode == 1 and 'node %s is not running' % other in err,
            'sgnfsctl move g1 %s (not running) exits 1 saying so (%d: %s)'
            % (other, cp.returncode, err.strip()))
    st = fu.status(c)
    h.check(st.get('g1', {}).get('owners') == [cur] and st['g1']['state'] in ('online', 'grace'),
            'g1 stays online on %s (%s)' % (cur, fu.summary(st)))
    h.check('planned move to node %s refused' % other in since(c.nodes[cur], off_cur),
            '%s logged the refused move' % cur)

    # A target that is stopped (SIGSTOP) does not hold sgnfsctl up: the
    # owner answers, the target is not asked.  Killed before it took the
    # group, its move hint is void: the old owner takes the group back
    # (no wait for the hint to expire) and ends its handover on listening.
    c.start(other)
    h.require(wait_until(lambda: any(n['name'] == other and n['up'] for n in
                                     (fu.status_raw(c) or {}).get('nodes', [])), 30, 0.05),
              '%s answers again after its restart' % other)
    off_cur = os.path.getsize(c.nodes[cur].logpath)
    pid = c.nodes[other].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        cp = subprocess.run([fu.ctl_path(), '-c', c.config_path, 'move', 'g1', other],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                            preexec_fn=harness._pdeathsig)
        out = cp.stdout.decode('utf-8', 'replace')
        h.check(cp.returncode == 0 and '"released"' in out and
                not any(ln.startswith(other + ':') for ln in out.splitlines()),
                'sgnfsctl move g1 %s (stopped) exits 0 on %s\'s answer, without asking %s (%s)'
                % (other, cur, other, out.strip()))
    finally:
        c.kill9(other)
    fu.wait_group(h, c, 'g1', owner=cur, timeout=30)
    tcur = since(c.nodes[cur], off_cur)
    h.check('planned move to node %s ignored by node %s' % (other, cur) in tcur,
            '%s voids the move hint of the dead %s' % (cur, other))
    h.check('this node serves the group again and listens on its VIPs' in tcur,
            '%s ends its handover once it listens again itself' % cur)

    # kill -9 of the owner: the standby's lease waiter, asleep in
    # F_OFD_SETLKW while the owner held the lease, wakes as the dead
    # owner's lock goes, and the standby takes the group right then rather
    # than at its next lease poll (the polls are skipped while it waits).
    c.start(other)
    h.require(wait_until(lambda: any(n['name'] == other and n['up'] for n in
                                     (fu.status_raw(c) or {}).get('nodes', [])), 30, 0.05),
              '%s answers again after its restart' % other)
    off_other = os.path.getsize(c.nodes[other].logpath)
    c.kill9(cur)
    fu.wait_group(h, c, 'g1', owner=other, timeout=30)
    acq = [ln for ln in since(c.nodes[other], off_other).splitlines()
           if 'lease acquired by node %s' % other in ln]
    h.check(len(acq) == 1 and 'woken as the owner\'s lock went' in acq[0],
            'after kill -9 of %s, %s took the lease when woken by its release (%s)'
            % (cur, other, acq))
    fu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=150)
