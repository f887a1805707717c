#!/usr/bin/env python3
"""
test_tshark_decode - Wireshark's dissectors are an independent reading of
RFC 5531 (RPC, record marking), PORTMAP, MOUNT v3 and NFSv3 (RFC 1813).
Capture a client session on lo, filtered to the test's VIP, and require:

  * no malformed packet and no expert info of severity "error";
  * PORTMAP, MOUNT and NFS packets present (the capture is not empty or
    mis-dissected);
  * every RPC call in the capture got a reply (same xid).

The session: nfs-ls, nfs-cat, nfs-cp both ways (libnfs tools), then, if
available, nfs3_procs, which calls every NFSv3 procedure including the
error paths, so every reply encoding the server has is dissected.
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

import harness
from harness import Export, Group


def tshark_read(h, pcap, args, what):
    # Packets on lo can reach the capture out of order (several CPUs);
    # without reassembling them, a large READ reply is not decoded.
    argv = ['tshark', '-r', pcap] + harness.tshark_rpc_args('tshark', pcap) + args
    return h.run(argv, timeout=180, what=what, quiet=True)


def count_lines(cp):
    return len([l for l in cp.stdout.decode('utf-8', 'replace').splitlines() if l.strip()])


def test(h):
    h.need_tool('tshark')
    for tool in ('nfs-ls', 'nfs-cat', 'nfs-cp'):
        h.need_tool(tool)
    procs = os.environ.get('NFS3_PROCS', '')
    c = h.cluster([
        Group('g1', [Export('g1/rw', fsid=101, squash='none'),
                     Export('g1/ro', fsid=102, access='ro', squash='none')]),
        Group('g2', [Export('g2/other', fsid=201, squash='none')]),
    ])
    rw, ro, other = c.export('g1/rw'), c.export('g1/ro'), c.export('g2/other')
    vip = c.group('g1').vip
    with open(os.path.join(rw.path, 'hello.txt'), 'w') as f:
        f.write('hello, wireshark\n')
    with open(os.path.join(ro.path, 'readme.txt'), 'w') as f:
        f.write('read-only content\n')
    os.makedirs(os.path.join(ro.path, 'subdir'))
    src = os.path.join(h.tmp, 'data.src')
    with open(src, 'wb') as f:
        f.write(os.urandom(3 * 1024 * 1024 + 123))

    c.start('a')

    pcap = os.path.join(h.tmp, 'session.pcapng')
    # dumpcap is what "tshark -w" runs; started directly, it is our own
    # child and dies with the harness (PR_SET_PDEATHSIG) even on SIGKILL.
    capture = shutil.which('dumpcap') or 'tshark'
    tshark = h.spawn([capture, '-n', '-i', 'lo', '-B', '128', '-f', 'host %s' % vip, '-w', pcap],
                     'tshark-capture.log')
    caplog = os.path.join(h.logdir, 'tshark-capture.log')
    deadline = time.monotonic() + 30
    while True:
        with open(caplog, 'rb') as f:
            text = f.read()
        if b'Capturing on' in text:
            break
        if tshark.poll() is not None:
            if b'ermission' in text or b'not permitted' in text:
                raise harness.Skip('tshark cannot capture on lo: %s' % text.decode('utf-8', 'replace'))
            raise harness.TestAbort('tshark exited: %s' % text.decode('utf-8', 'replace'))
        if time.monotonic() > deadline:
            raise harness.TestAbort('tshark did not start capturing')
        time.sleep(0.1)
    time.sleep(1.0)  # the capture filter is attached after the banner on some versions

    url = 'nfs://%s%s' % (vip, rw.path)
    h.run(['nfs-ls', url], timeout=30, what='nfs-ls')
    h.run(['nfs-ls', '-D', 'nfs://%s' % vip], timeout=30, what='nfs-ls -D (MOUNT EXPORT)')
    cp = h.run(['nfs-cat', url + '/hello.txt'], timeout=30, what='nfs-cat')
    h.check(cp.stdout == b'hello, wireshark\n', 'nfs-cat content')
    h.run(['nfs-cp', src, url + '/copy.bin'], timeout=60, what='nfs-cp to the server')
    back = os.path.join(h.tmp, 'data.back')
    h.run(['nfs-cp', url + '/copy.bin', back], timeout=60, what='nfs-cp from the server')
    h.run(['cmp', src, back], timeout=30, what='cmp round trip')
    # A client whose privileged source port is another protocol's
    # well-known port (639 MSDP, 646 LDP, 179 BGP) must still be read as RPC
    # (a CI run failed when libnfs happened to bind 639; see tshark_rpc_args).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # over our own TIME_WAIT
        for port in (639, 646, 179):
            try:
                s.bind(('0.0.0.0', port))
                break
            except OSError:        # another test's client holds it right now
                continue
        s.settimeout(30)
        s.connect((vip, 2049))
        body = struct.pack('>10I', 0x639, 0, 2, 100003, 3, 0, 0, 0, 0, 0)   # NFS NULL
        s.sendall(struct.pack('>I', 0x80000000 | len(body)) + body)
        h.check(len(s.recv(4096)) >= 28, 'NFS NULL from source port %d answered'
                % s.getsockname()[1])
    if procs and os.access(procs, os.X_OK):
        h.run([procs, 'procs', '--server', vip, '--rw', rw.path, '--ro', ro.path,
               '--other-server', c.group('g2').vip, '--other', other.path],
              timeout=240, what='nfs3_procs (every procedure, on the wire)', quiet=True)
    else:
        print('NFS3_PROCS not available: capturing the libnfs tools only')

    time.sleep(1.0)
    tshark.send_signal(signal.SIGINT)
    try:
        tshark.wait(30)
    except subprocess.TimeoutExpired:
        tshark.kill()
        tshark.wait()
    h.require(os.path.exists(pcap) and os.path.getsize(pcap) > 0, 'the capture file is not empty')
    print('capture: %d bytes' % os.path.getsize(pcap))

    cp = tshark_read(h, pcap, ['-Y', '_ws.malformed || _ws.expert.severity == error'],
                     'tshark: malformed / expert errors')
    bad = count_lines(cp)
    if bad:
        # Details first, the one-line list with each packet's expert
        # message last: a CI log shows only the tail of a failed test.
        cp2 = tshark_read(h, pcap, ['-V', '-Y', '_ws.malformed || _ws.expert.severity == error',
                                    '-c', '3'], 'tshark: details of the first bad packets')
        print(cp2.stdout.decode('utf-8', 'replace')[:30000])
        cp3 = tshark_read(h, pcap, ['-Y', '_ws.malformed || _ws.expert.severity == error',
                                    '-T', 'fields', '-E', 'occurrence=f', '-e', 'frame.number',
                                    '-e', 'tcp.stream', '-e', 'udp.srcport', '-e', 'rpc.xid',
                                    '-e', '_ws.expert.message', '-e', '_ws.col.Info'],
                          'tshark: the bad packets, one line each')
        print(cp3.stdout.decode('utf-8', 'replace')[:6000])
    h.check(bad == 0, 'no malformed packet and no expert error (%d found)' % bad)

    for proto, flt in (('PORTMAP', 'portmap'), ('MOUNT', 'mount'), ('NFS', 'nfs'),
                       ('NFS READDIRPLUS', 'nfs.procedure_v3 == 17'),
                       ('NFS WRITE', 'nfs.procedure_v3 == 7'),
                       ('NFS COMMIT', 'nfs.procedure_v3 == 21')):
        if proto in ('NFS READDIRPLUS', 'NFS COMMIT') and not procs:
            continue
        n = count_lines(tshark_read(h, pcap, ['-Y', flt], 'tshark: %s packets' % proto))
        h.check(n > 0, 'the capture holds %s packets (%d)' % (proto, n))

    # Every call answered: compare the xids of calls and replies.
    cp = tshark_read(h, pcap, ['-Y', 'rpc', '-T', 'fields', '-E', 'occurrence=a',
                               '-E', 'aggregator=,', '-e', 'rpc.xid', '-e', 'rpc.msgtyp'],
                     'tshark: rpc xids')
    calls, replies = set(), set()
    for line in cp.stdout.decode('utf-8', 'replace').splitlines():
        parts = line.split('\t')
        if len(parts) != 2:
            continue
        xids, types = parts[0].split(','), parts[1].split(',')
        for x, t in zip(xids, types):
            (calls if t.strip() == '0' else replies).add(x.strip())
    missing = calls - replies
    h.check(len(calls) > 0, 'the capture holds RPC calls (%d distinct xids)' % len(calls))
    with open(caplog, 'rb') as f:
        text = f.read()
    # tshark: "N packets dropped from lo"; dumpcap: "received/dropped on
    # interface 'lo': R/D".
    m = (re.search(rb'(\d+) packets? dropped', text) or
         re.search(rb'received/dropped on interface[^:]*: \d+/(\d+)', text))
    dropped = int(m.group(1)) if m else 0
    if missing and dropped > 0:
        print('note - %d calls without a reply in the capture, but the capture dropped %d '
              'packets: not counted' % (len(missing), dropped))
    else:
        h.check(not missing, 'every RPC call has a reply (%d unanswered: %s)'
                % (len(missing), ' '.join(sorted(missing)[:10])))
    c.stop('a')


if __name__ == '__main__':
    harness.main(test, timeout=280)
