#!/usr/bin/env python3
"""
test_host_limits - one host cannot exhaust the node (issue 13 item 3).

One node, max_conns = 600, max_conns_per_host = 64:
  1. record buffers: 500 connections (10 addresses x 50) each announce a
     1 MiB record and send 100 bytes of it; the node's RSS grows by far
     less than 500 MiB (buffers grow with the bytes that arrive);
  2. per-host slots: one address opens 1,100 idle connections; another
     address still gets its calls answered, and the node holds no more
     than max_conns connections (its descriptors say so);
  3. node-wide eviction: two more addresses open 64 idle connections
     each, past max_conns; a new host is still answered (idle
     connections were evicted for it);
  4. RLIMIT_NOFILE was raised to fit max_conns at start-up.
Outcomes only: every "answered" is a reply to a call, no time is measured.
Addresses: 127.S.70.N and up (S = the harness slot).
"""
import os
import resource
import socket
import struct

import harness
import hostile_util as hu
import nlm_util as nu
from harness import Export, Group, log

MAX_CONNS = 600
PER_HOST = 64


def open_conns(addr, vip, port, n, payload=b''):
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((addr, 0))
        s.settimeout(5)
        try:
            s.connect((vip, port))
            if payload:
                s.sendall(payload)
        except OSError:
            s.close()
            continue
        out.append(s)
    return out


def answered(addr, vip, port):
    """An NLM NULL from @addr over a new connection is answered."""
    try:
        with nu.RawNLM(addr, vip, port, timeout=30) as k:
            k.call(nu.P_NULL, b'')
        return True
    except (OSError, nu.RpcError) as e:
        log('NULL from %s: %s' % (addr, e))
        return False


def vm_data_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmData:'):
                return int(line.split()[1])
    return 0


def sockets_of(pid):
    n = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            if os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith('socket:'):
                n += 1
        except OSError:
            pass
    return n


def test(h):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    c = h.cluster([Group('g', [Export('g/data', fsid=751)], grace=1)],
                  cluster_extra={'max_conns': MAX_CONNS, 'max_conns_per_host': PER_HOST})
    vip = c.group('g').vip
    port = c.ports['nlm_port']
    nu.watch(c)
    # Start the node with a soft descriptor limit of 1024, as systemd and
    # most shells give it: it must raise the limit itself.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        node = c.start('a')
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    nu.wait_online(h, c, ['g'])
    pid = node.proc.pid
    held = []
    try:
        # -- 4. RLIMIT_NOFILE ---------------------------------------------------
        with open('/proc/%d/limits' % pid) as f:
            lim = [l for l in f if l.startswith('Max open files')]
        nofile = int(lim[0].split()[3]) if lim and lim[0].split()[3].isdigit() else 0
        h.check(nofile >= MAX_CONNS + 1024, 'RLIMIT_NOFILE raised to fit max_conns (%d)' % nofile)

        # -- 1. announced records do not allocate --------------------------------
        rss0, data0 = hu.vm_rss_kib(pid), vm_data_kib(pid)
        head = hu.mark(1 << 20, last=True) + b'\0' * 100
        for a in range(10):
            held += open_conns(nu.host(c, 71, a + 1), vip, port, 50, head)
        h.require(answered(nu.host(c, 79, 1), vip, port), 'the node answers after 500 partial records')
        rss1, data1 = hu.vm_rss_kib(pid), vm_data_kib(pid)
        grow = (rss1 - rss0) // 1024
        dgrow = (data1 - data0) // 1024
        log('RSS %d KiB -> %d KiB, VmData %d KiB -> %d KiB with %d connections announcing '
            '1 MiB each' % (rss0, rss1, data0, data1, len(held)))
        h.check(len(held) == 500 and grow < 100,
                '500 connections announcing 1 MiB records: RSS grew %d MiB (< 100, not 500)'
                % grow)
        # untouched pages are not resident: what was allocated shows in VmData
        h.check(dgrow < 100, 'and allocated memory (VmData) grew %d MiB (< 100)' % dgrow)

        # -- 2. one address, 1,100 idle connections -------------------------------
        hog = nu.host(c, 70, 1)
        held += open_conns(hog, vip, port, 1100)
        h.check(answered(nu.host(c, 70, 2), vip, port),
                'after 1,100 idle connections from one address another host is answered')
        n = sockets_of(pid)
        h.check(n <= MAX_CONNS + 100, 'the node holds %d sockets (max_conns %d plus listeners)'
                % (n, MAX_CONNS))

        # -- 3. past max_conns: idle connections are evicted for a new host --------
        for a in (3, 4):
            held += open_conns(nu.host(c, 70, a), vip, port, PER_HOST)
        h.check(answered(nu.host(c, 70, 9), vip, port),
                'with every slot of the node taken by idle connections, a new host is answered')
        n = sockets_of(pid)
        h.check(n <= MAX_CONNS + 100, 'and the node still holds %d sockets' % n)
    finally:
        for s in held:
            s.close()
    h.check(answered(nu.host(c, 70, 10), vip, port), 'the node answers after it all')
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=300)
