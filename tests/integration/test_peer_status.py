"""
test_peer_status.py - `sgnfsctl status` reaches a node on "another
machine" through its peer port (docs/status.md, "Nodes on other machines";
protocol in src/cluster/peer.h), in order:

  1. node a runs here (its control socket is in run_dir); node b runs in
     a mount namespace of its own with a private tmpfs on run_dir, so its
     control socket is NOT reachable from here, as on another machine.
     `sgnfsctl status` shows b up (via peer, at its configured address)
     with its group g2, every group served, exit 0;
  2. a copy of the file naming another key as peer_key: b is refused (no
     status), and b logs the refusal and counts it;
  3. hostile bytes at b's peer port, each from its own source address: a
     1 MiB garbage request, a request cut short, a request with a bad
     magic, a flood of connections from one source (the per-source limit
     closes them before the hello), 40 sources holding connections open
     (32 at most are served); b stays up and still answers;
  4. b is killed: it is `down` with the reason naming its peer address,
     and g2 moves to a (next in its list).
"""

import os
import socket

import harness
from harness import Export, Group, log, write_handle_key
import ops_util as ou

PEER_PORT = 20050
HELLO = 40                     # "SGPEER01" + 32-byte challenge
REQ = 8 + 32 + 64 + 32


def connect_from(src, dst, port, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((dst, port))
    return s


def read_all(s, limit=1 << 20):
    """Bytes until the peer closes (or @limit)."""
    out = b''
    try:
        while len(out) < limit:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (ConnectionResetError, socket.timeout):
        pass
    return out


def test(h):
    # The slot is known only once the cluster exists: addresses are set
    # in node_extra after, and the file rewritten.
    c = h.cluster(nodes=['a', 'b'], groups=[
        Group('g1', [Export('s1', 101)], nodes=('a', 'b')),
        Group('g2', [Export('s2', 102)], nodes=('b', 'a')),
    ])
    addr = {'a': '127.%d.1.1' % c.slot, 'b': '127.%d.1.2' % c.slot}
    c.node_extra = {n: {'address': a} for n, a in addr.items()}
    c.cluster_extra['peer_port'] = PEER_PORT
    c.write_config()
    log('config:\n' + c.config_text())
    c.start('a')
    nb = c.start('b', own_run_dir=True)
    sock_b = os.path.join(c.run_dir, 'b.sock')
    h.require(not os.path.exists(sock_b),
              'b\'s control socket %s is not visible here (private run_dir)' % sock_b)
    h.require(os.path.exists(os.path.join(c.run_dir, 'a.sock')), 'a\'s control socket is')

    # ---- 1. b up through its peer port -----------------------------------
    rc, doc = ou.wait_status(c, lambda rc, d: ou.served(d, 'b', 'g2') is not None
                             and ou.served(d, 'a', 'g1') is not None,
                             'g1 on a and g2 on b, both seen')
    nb_doc = ou.node_doc(doc, 'b')
    na_doc = ou.node_doc(doc, 'a')
    h.check(rc == 0, 'status exits 0: every node answers, every group served (got %d)' % rc)
    h.check(nb_doc['up'] and nb_doc.get('via') == 'peer',
            'b is up, reached via peer (%s)' % {k: nb_doc.get(k) for k in ('up', 'via', 'error')})
    h.check(nb_doc.get('peer_address') == '%s:%d' % (addr['b'], PEER_PORT),
            'b\'s peer address is its configured address (%s)' % nb_doc.get('peer_address'))
    h.check(na_doc['up'] and na_doc.get('via') == 'socket', 'a is up, via its control socket')
    h.check(nb_doc['status']['pid'] == nb.pid, 'b\'s status is b\'s own (pid %d)' % nb.pid)
    g2 = ou.cluster_group(doc, 'g2')
    h.check(g2['state'] in ('online', 'grace') and g2['owner'] == 'b',
            'g2 served by b (%s)' % g2)
    h.check(nb_doc['config_matches'], 'b runs this file')
    rc, out, err = ou.ctl(c, 'status')
    line_b = [l for l in out.splitlines() if l.startswith('b ')]
    h.check(rc == 0 and line_b and ' up ' in line_b[0] and
            ('peer %s:%d' % (addr['b'], PEER_PORT)) in line_b[0],
            'text: b up via peer at its address (%r)' % line_b)
    answered0 = nb_doc['status']['peer']['answered']
    h.check(answered0 >= 1, 'b counts the answered request (%d)' % answered0)

    # ---- 2. a wrong key ---------------------------------------------------
    wrong = os.path.join(c.dir, 'wrong.key')
    write_handle_key(wrong, os.urandom(32))
    other = os.path.join(c.dir, 'wrong-key.ini')
    with open(other, 'w') as f:
        f.write(c.config_text().replace('[cluster]\n', '[cluster]\npeer_key = %s\n' % wrong, 1))
    cp = h.run([ou.ctl_path(), '-c', other, 'status', '--json'], check=False)
    import json
    wdoc = json.loads(cp.stdout.decode())
    wb = ou.node_doc(wdoc, 'b')
    h.check(not wb['up'] and wb['status'] is None and 'refused' in wb.get('error', ''),
            'with another key, b gives no status and the reason says refused (%r)'
            % wb.get('error'))
    h.check(ou.node_doc(wdoc, 'a')['up'], 'a still up through its socket with that file')
    h.check(cp.returncode == 3, 'exit 3: g2 is not seen served (got %d)' % cp.returncode)

    def b_status():
        rc, d = ou.status(c)
        return (ou.node_doc(d, 'b') or {}).get('status')

    st = b_status()
    h.check(st is not None and st['peer']['refused'] >= 1,
            'b counted the refused request (%s)' % (st or {}).get('peer'))
    with open(nb.logpath, 'rb') as f:
        logtxt = f.read().decode('utf-8', 'replace')
    h.check('peer: status request from 127.0.0.1' in logtxt and 'bad MAC' in logtxt,
            'b logged the refusal with the source and "bad MAC"')

    # ---- 3. hostile bytes -------------------------------------------------
    base = '127.%d.7.' % c.slot
    s = connect_from(base + '1', addr['b'], PEER_PORT)
    hello = s.recv(HELLO, socket.MSG_WAITALL)
    h.check(hello[:8] == b'SGPEER01' and len(hello) == HELLO, 'the hello comes first')
    try:
        s.sendall(os.urandom(1 << 20))
    except OSError as e:
        log('sending 1 MiB: %s (the node closed after its %d bytes)' % (e, REQ))
    rest = read_all(s)
    s.close()
    h.check(rest == b'', '1 MiB of garbage: no answer, closed (%d bytes back)' % len(rest))

    s = connect_from(base + '2', addr['b'], PEER_PORT)
    s.recv(HELLO, socket.MSG_WAITALL)
    s.sendall(b'SGPEER01' + b'\0' * 50)      # short, then gone
    s.close()

    s = connect_from(base + '3', addr['b'], PEER_PORT)
    s.recv(HELLO, socket.MSG_WAITALL)
    s.sendall(b'GET / HTTP/1.0\r\n\r\n' + b'x' * (REQ - 18))
    h.check(read_all(s) == b'', 'an HTTP request of the right size: no answer')
    s.close()

    # A flood from one source, one connection at a time: the per-source
    # bucket (10, then 2 a second) closes the rest before any hello.
    cut = 0
    for i in range(60):
        s = connect_from(base + '4', addr['b'], PEER_PORT)
        if s.recv(HELLO, socket.MSG_WAITALL) == b'':
            cut += 1
        s.close()
    h.check(cut > 0, 'a flood of 60 connections from one source: %d closed before the hello'
            % cut)
    # Many sources at once, each holding its connection open: past 32
    # open connections the node closes new ones before the hello.
    socks, held = [], 0
    for i in range(40):
        s = connect_from('127.%d.8.%d' % (c.slot, i + 1), addr['b'], PEER_PORT)
        socks.append(s)
        if s.recv(HELLO, socket.MSG_WAITALL) != b'':
            held += 1
    for s in socks:
        s.close()
    h.check(0 < held <= 32, '40 sources holding connections: at most 32 get a hello (%d)' % held)
    h.check(nb.alive(), 'b is alive after the hostile bytes')
    st = b_status()
    h.check(st is not None and st['peer']['limited'] >= cut and st['peer']['refused'] >= 3,
            'b still answers; counted %s' % (st or {}).get('peer'))

    # ---- 4. b killed ------------------------------------------------------
    c.kill9('b')
    rc, doc = ou.wait_status(c, lambda rc, d: ou.served(d, 'a', 'g2') is not None,
                             'g2 moves to a', timeout=60)
    nb_doc = ou.node_doc(doc, 'b')
    h.check(not nb_doc['up'] and ('peer %s:%d' % (addr['b'], PEER_PORT)) in nb_doc['error']
            and 'refused' in nb_doc['error'].lower(),
            'killed b is down, the reason names its peer address (%r)' % nb_doc['error'])
    h.check(rc == 2, 'exit 2: groups served, a node down (got %d)' % rc)


if __name__ == '__main__':
    harness.main(test, timeout=150)
