#!/usr/bin/env python3
"""
test_udp_drop - a group's UDP requests beyond its pool queue are dropped,
counted and logged with the client's address (issue 13 item 3, UDP
back-pressure).

One node serves g1 with max_queued_per_group = 1.  The node is stopped
(SIGSTOP) while one client sends BURST UDP READDIRPLUS calls of a
300-entry directory; they wait in the socket's receive buffer.  After
SIGCONT the loop reads them in batches: at most RPC_POOL_JOBS (4) go to
the pool and one waits in the group's queue, so the rest of a batch
cannot be taken.

Asserted, as order and outcome (nothing timed): the group's and the node's
udp_dropped in status went up, and so did sgnfs_rpc_udp_dropped_total in
the metrics; the log names the dropping client's address; every datagram
sent was either answered or counted as dropped (none lost silently); and
the group still answers a later call from the same client.

Addresses: the client 127.S.80.1 (S = the harness slot).
"""
import json
import os
import signal
import socket
import time

import harness
import hostile_util as hu
import nlm_util as nu
from harness import Export, Group, log
from test_group_fairness import readdirplus_args, NFS_LOOKUP, NFS_READDIRPLUS

BURST = 64      # fits the server socket's default receive buffer


def node_status(h, c):
    cp = h.run([nu.ctl_path(), '-c', c.config_path, 'status', '--json'], timeout=30,
               check=False, quiet=True)
    return json.loads(cp.stdout.decode())['nodes'][0]['status']


def group_rpc(st, name):
    for g in st.get('groups', []):
        if g['name'] == name:
            return g.get('rpc', {})
    return {}


def start_with_big_dir(h, c):
    """Give g1's export a 300-entry directory 'big' (a READDIRPLUS of it
    is slow work for the pool), start node a; (node, handle of big)."""
    e1 = c.export('g1/data')
    v1 = c.group('g1').vip
    big = os.path.join(e1.path, 'big')
    os.mkdir(big)
    for i in range(300):
        open(os.path.join(big, 'entry-with-a-long-name-%04d' % i), 'w').close()
    node = c.start('a')
    nu.wait_online(h, c, ['g1'])

    m = hu.Tcp(v1, c.ports['mount_port'])
    _, root1 = hu.mnt(m, e1.path)
    m.close()
    n1 = hu.Tcp(v1, c.ports['nfs_port'])
    bigfh = hu.lookup_fh(n1.call(hu.NFS_PROG, 3, NFS_LOOKUP, hu.lookup_args(root1, 'big'),
                                 cred=hu.ROOT_CRED))
    n1.close()
    h.require(bigfh is not None, 'handle of g1/big')
    return node, bigfh


def answered_later(s, xid, args):
    """Send READDIRPLUS @xid on the UDP socket @s (blocking mode from now
    on) and wait for its reply among any late ones: answered with NFS3_OK?
    The 60 s wait only bounds a failing run."""
    s.setblocking(True)
    s.settimeout(60)
    s.send(hu.call_msg(xid, hu.NFS_PROG, 3, NFS_READDIRPLUS, args, cred=hu.ROOT_CRED))
    try:
        while True:
            r = hu.Reply(s.recv(65536))
            if r.xid == xid:
                return r.is_success()
    except socket.timeout:
        return False


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=791)], grace=1)],
                  cluster_extra={'max_queued_per_group': 1})
    v1 = c.group('g1').vip
    node, bigfh = start_with_big_dir(h, c)

    before = node_status(h, c)
    g_before = group_rpc(before, 'g1').get('udp_dropped')
    n_before = before.get('rpc', {}).get('udp_dropped')
    h.require(g_before is not None and n_before is not None,
              'status has udp_dropped for the group (%s) and the node (%s)'
              % (g_before, n_before))

    src = nu.host(c, 80, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((src, 0))
    s.connect((v1, c.ports['nfs_port']))
    args = readdirplus_args(bigfh)
    node.proc.send_signal(signal.SIGSTOP)
    try:
        for xid in range(1, BURST + 1):
            s.send(hu.call_msg(0x5500 + xid, hu.NFS_PROG, 3, NFS_READDIRPLUS, args,
                               cred=hu.ROOT_CRED))
    finally:
        node.proc.send_signal(signal.SIGCONT)

    # Collect answers until every datagram is accounted for (answered or
    # counted as dropped); the deadline only bounds a failing run.
    answered = set()
    dropped = 0
    s.settimeout(0.5)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            r = hu.Reply(s.recv(65536))
            answered.add(r.xid)
            continue
        except socket.timeout:
            pass
        dropped = group_rpc(node_status(h, c), 'g1').get('udp_dropped', 0) - g_before
        if len(answered) + dropped >= BURST:
            break
    after = node_status(h, c)
    dropped = group_rpc(after, 'g1').get('udp_dropped', 0) - g_before
    n_dropped = after.get('rpc', {}).get('udp_dropped', 0) - n_before
    log('%d sent, %d answered, %d dropped (group), %d (node)'
        % (BURST, len(answered), dropped, n_dropped))
    h.check(dropped > 0, 'the group\'s udp_dropped went up (%d)' % dropped)
    h.check(n_dropped == dropped, 'so did the node\'s, by as much (%d)' % n_dropped)
    h.check(len(answered) > 0, 'the requests the group took were answered (%d)'
            % len(answered))
    h.check(len(answered) + dropped == BURST,
            'every datagram was answered or counted as dropped (%d + %d of %d)'
            % (len(answered), dropped, BURST))
    h.check(nu.wait_log(node, 'rpc: client %s:' % src, timeout=10) and
            'UDP request dropped' in nu.log_text(node),
            'the log line of the drop names the client (%s)' % src)
    cp = h.run([nu.ctl_path(), '-c', c.config_path, 'metrics'], timeout=30, check=False,
               quiet=True)
    lines = [l for l in cp.stdout.decode().splitlines()
             if l.startswith('sgnfs_rpc_udp_dropped_total{') and 'g1' in l]
    h.check(any(int(float(l.split()[-1])) >= dropped for l in lines),
            'sgnfs_rpc_udp_dropped_total counts them (%s)' % lines)

    # The drops were back-pressure, not a wedged group: the same client
    # is answered afterwards.
    h.check(answered_later(s, 0x7700, args), 'a later READDIRPLUS is answered')
    s.close()
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=240)
