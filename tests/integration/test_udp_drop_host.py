#!/usr/bin/env python3
"""
test_udp_drop_host - one host's UDP flood is dropped alone: its requests
waiting for the thread pool are bounded by max_queued_per_host, and another
host of the same group on the same address keeps being read and answered.

Before max_queued_per_host, the only bound was the group's queue
(max_queued_per_group): one flooding host filled it, and from then on the
group's UDP socket was not read at all, so every other client of the group
shared the flood's drops.

One node serves g1 with max_queued_per_group = 64 and max_queued_per_host =
2.  The node is stopped (SIGSTOP) while host A sends BURST UDP READDIRPLUS
calls of a 300-entry directory and then host B sends 2; they wait in the
socket's receive buffer in that order.  After SIGCONT the loop reads A's
first: at most 3 of a group's go to the pool at once, 2 more of A's may
wait, and the rest of A's are dropped as they are read; B's 2 then wait
(B has none waiting) and are answered.  The group's queue never holds more
than 4, so it never reaches its own bound, and the socket is never stopped.

Asserted, as order and outcome (nothing timed): both of B's calls are
answered; A's are each answered or counted as dropped, and some were
dropped; every drop of the group is a per-host one (node status
udp_dropped_host, metric sgnfs_node_udp_dropped_host_total); the log line
names A and max_queued_per_host, and no max_queued_per_group line appears;
A is answered afterwards.  Then, with A's address entry kept alive by
a TCP connection of A's, B fills the pool and its own bound while A sends
one more: A's count went back to zero, so that call waits and is answered
(nothing dropped); a count that only grew would drop it.

Addresses: the clients 127.S.80.1 (A) and 127.S.80.2 (B), S = the harness slot.
"""
import signal
import socket
import time

import harness
import hostile_util as hu
import nlm_util as nu
from harness import Export, Group, log
from test_group_fairness import readdirplus_args, NFS_READDIRPLUS
from test_udp_drop import answered_later, node_status, group_rpc, start_with_big_dir

BURST = 48      # under max_queued_per_group: only the per-host bound can drop


def udp_sock(src, dst):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((src, 0))
    s.connect(dst)
    s.setblocking(False)
    return s


def drain(s, into):
    """Every reply waiting on @s, by xid, into the dict @into."""
    while True:
        try:
            r = hu.Reply(s.recv(65536))
        except BlockingIOError:
            return
        into[r.xid] = r


def settle(h, c, socks, calls, g_before):
    """Drain each (socket, dict) of @socks until every one of the @calls sent
    is answered or counted in g1's udp_dropped (from @g_before); the
    deadline only bounds a failing run.  Returns the drops."""
    deadline = time.monotonic() + 120
    dropped = 0
    while time.monotonic() < deadline:
        time.sleep(0.2)
        for s, into in socks:
            drain(s, into)
        dropped = group_rpc(node_status(h, c), 'g1').get('udp_dropped', 0) - g_before
        if sum(len(into) for _, into in socks) + dropped >= calls:
            break
    return dropped


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=793)], grace=1)],
                  cluster_extra={'max_queued_per_group': 64, 'max_queued_per_host': 2})
    v1 = c.group('g1').vip
    node, bigfh = start_with_big_dir(h, c)

    before = node_status(h, c)
    g_before = group_rpc(before, 'g1').get('udp_dropped')
    nh_before = before.get('rpc', {}).get('udp_dropped_host')
    h.require(g_before is not None and nh_before is not None,
              'status has the group\'s udp_dropped (%s) and the node\'s udp_dropped_host (%s)'
              % (g_before, nh_before))

    src_a, src_b = nu.host(c, 80, 1), nu.host(c, 80, 2)
    dst = (v1, c.ports['nfs_port'])
    sa, sb = udp_sock(src_a, dst), udp_sock(src_b, dst)
    # Held open to the end: A's per-address entry lives as long as this.
    ta = socket.create_connection(dst, timeout=10, source_address=(src_a, 0))
    args = readdirplus_args(bigfh)
    b_xids = [0x6601, 0x6602]
    node.proc.send_signal(signal.SIGSTOP)
    try:
        for xid in range(1, BURST + 1):
            sa.send(hu.call_msg(0x5500 + xid, hu.NFS_PROG, 3, NFS_READDIRPLUS, args,
                                cred=hu.ROOT_CRED))
        for xid in b_xids:
            sb.send(hu.call_msg(xid, hu.NFS_PROG, 3, NFS_READDIRPLUS, args,
                                cred=hu.ROOT_CRED))
    finally:
        node.proc.send_signal(signal.SIGCONT)

    got_a, got_b = {}, {}
    settle(h, c, ((sa, got_a), (sb, got_b)), BURST + len(b_xids), g_before)
    after = node_status(h, c)
    dropped = group_rpc(after, 'g1').get('udp_dropped', 0) - g_before
    host_dropped = after.get('rpc', {}).get('udp_dropped_host', 0) - nh_before
    log('A: %d sent, %d answered; %d dropped (group), %d of them per host; B: %d of %d answered'
        % (BURST, len(got_a), dropped, host_dropped, len(got_b), len(b_xids)))
    h.check(all(x in got_b and got_b[x].is_success() for x in b_xids),
            'both of B\'s READDIRPLUS calls are answered, behind A\'s flood (%s)'
            % sorted(got_b))
    h.check(dropped > 0, 'some of A\'s were dropped (%d)' % dropped)
    h.check(host_dropped == dropped,
            'every drop was by max_queued_per_host (%d of %d)' % (host_dropped, dropped))
    h.check(len(got_a) + dropped == BURST,
            'each of A\'s was answered or counted as dropped (%d + %d of %d)'
            % (len(got_a), dropped, BURST))
    h.check(nu.wait_log(node, 'rpc: client %s to ' % src_a, timeout=10) and
            'max_queued_per_host' in nu.log_text(node),
            'the drop\'s log line names A (%s) and max_queued_per_host' % src_a)
    h.check('rpc: client %s to ' % src_b not in nu.log_text(node),
            'no drop line names B')
    h.check('max_queued_per_group' not in nu.log_text(node),
            'the group\'s own bound was never reached')
    cp = h.run([nu.ctl_path(), '-c', c.config_path, 'metrics'], timeout=30, check=False,
               quiet=True)
    lines = [l for l in cp.stdout.decode().splitlines()
             if l.startswith('sgnfs_node_udp_dropped_host_total{')]
    h.check(any(int(float(l.split()[-1])) >= dropped for l in lines),
            'sgnfs_node_udp_dropped_host_total counts them (%s)' % lines)

    # A bound, not a ban: A is answered once its queue is down.
    h.check(answered_later(sa, 0x7701, args), 'a later READDIRPLUS of A is answered')
    sa.setblocking(False)

    # A's count went back down, too: while B fills the pool (3) and its own
    # bound (2), the node has max_queued_per_host waiting, so A's next call
    # is looked up, and A's entry is still the same one (A's TCP connection
    # holds it): it must show nothing waiting, and the call waits and is
    # answered.  A count that only grew would drop it.
    before2 = group_rpc(node_status(h, c), 'g1').get('udp_dropped', 0)
    got_a, got_b = {}, {}
    b_xids = list(range(0x6611, 0x6616))
    node.proc.send_signal(signal.SIGSTOP)
    try:
        for xid in b_xids:
            sb.send(hu.call_msg(xid, hu.NFS_PROG, 3, NFS_READDIRPLUS, args, cred=hu.ROOT_CRED))
        sa.send(hu.call_msg(0x7702, hu.NFS_PROG, 3, NFS_READDIRPLUS, args, cred=hu.ROOT_CRED))
    finally:
        node.proc.send_signal(signal.SIGCONT)
    dropped = settle(h, c, ((sa, got_a), (sb, got_b)), len(b_xids) + 1, before2)
    log('round 2: B %d of %d answered, A %d of 1, %d dropped'
        % (len(got_b), len(b_xids), len(got_a), dropped))
    h.check(0x7702 in got_a and got_a[0x7702].is_success() and dropped == 0,
            'with B at its bound, A\'s next call waits and is answered, nothing dropped '
            '(A %s, %d dropped)' % (sorted(got_a), dropped))
    h.check(all(x in got_b for x in b_xids), 'all of B\'s %d are answered (%d)'
            % (len(b_xids), len(got_b)))
    ta.close()
    sa.close()
    sb.close()
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=240)
