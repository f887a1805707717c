#!/usr/bin/env python3
"""
test_inflight_budget - the bytes one host's calls in flight hold are
bounded (docs/configuration.md, Limits: max_inflight_mb_per_host).

One node, max_inflight_mb_per_host = 1, max_inflight_mb = 4:
  1. one connection pipelines 300 READs of 64 KiB (19 MiB of replies) and
     reads none of the replies: the node stops reading that connection at
     the host's bound (status rpc.inflight_stops_host), where before it
     queued up to 8 MiB of replies and 128 calls for it;
  2. meanwhile another address is answered, and so is a WRITE from the
     stopped host on a connection of its own holding nothing;
  3. once the client reads, every one of the 300 replies arrives, each
     with the right bytes of the file at its offset (the input left unread
     at the stop is fed again in order), and the node holds nothing after
     (rpc.inflight_bytes 0; the metric too);
  4. `sgnfsd -t` refuses max_inflight_mb = 0.
Outcomes only: every wait is for a state, bounded only against a hang.
Addresses: 127.S.72.N (S = the harness slot).
"""
import os
import time

import fo_util as fo
import harness
import hostile_util as hu
import nlm_util as nu
from harness import Export, Group, log

N_READS = 300
CHUNK = 64 << 10
FILE_SIZE = 4 << 20


def pattern(off, n):
    """The file's bytes at @off: each 4-byte word its own offset."""
    first = off - off % 4
    words = b''.join((w & 0xffffffff).to_bytes(4, 'big')
                     for w in range(first, off + n + 4, 4))
    return words[off - first:off - first + n]


def rpc_status(c):
    doc = fo.status_raw(c) or {}
    for nd in doc.get('nodes', []):
        st = nd.get('status')
        if st and 'rpc' in st:
            return st['rpc']
    return {}


def wait_rpc(c, pred, what, timeout=120):
    deadline = time.monotonic() + timeout
    r = {}
    while time.monotonic() < deadline:
        r = rpc_status(c)
        if r and pred(r):
            return r
        time.sleep(0.1)
    raise AssertionError('%s: never (last rpc status %r)' % (what, r))


def test(h):
    c = h.cluster([Group('g', [Export('g/data', fsid=761)], grace=1)],
                  cluster_extra={'max_inflight_mb_per_host': 1, 'max_inflight_mb': 4})
    e = c.export('g/data')
    with open(os.path.join(e.path, 'big'), 'wb') as f:
        f.write(pattern(0, FILE_SIZE))
    c.start('a')
    nu.wait_online(h, c, ['g'])
    vip = c.group('g').vip
    nfs = c.ports['nfs_port']
    hog = nu.host(c, 72, 1)

    m = hu.Tcp(vip, c.ports['mount_port'], timeout=30)
    _, root = hu.mnt(m, e.path.encode())
    m.close()
    p = hu.Tcp(vip, nfs, timeout=30, src=hog)
    fh = hu.lookup_fh(p.call(hu.NFS_PROG, 3, 3, hu.lookup_args(root, b'big'),
                             cred=hu.ROOT_CRED))
    h.require(fh is not None, 'LOOKUP of the file')
    base = wait_rpc(c, lambda r: 'inflight_stops_host' in r, 'status has the budget fields')

    # -- 1. 300 READs, no reply read -------------------------------------------
    xids = {}
    out = b''
    for i in range(N_READS):
        xid = hu.next_xid()
        off = (i * CHUNK) % FILE_SIZE
        xids[xid] = off
        out += hu.record(hu.call_msg(xid, hu.NFS_PROG, 3, 6, hu.read_args(fh, off, CHUNK),
                                     cred=hu.ROOT_CRED))
    h.require(p.send(out), 'the READs are sent')
    r = wait_rpc(c, lambda r: r['inflight_stops_host'] > base['inflight_stops_host'],
                 'the connection stops at the host bound')
    log('rpc status at the stop: %r' % r)
    h.check(r['inflight_stops_host'] > base['inflight_stops_host'],
            'the node stopped reading the connection at max_inflight_mb_per_host')

    # -- 2. others are still answered -----------------------------------------
    other = hu.Tcp(vip, nfs, timeout=30, src=nu.host(c, 72, 2))
    rr = other.call(hu.NFS_PROG, 3, 1, hu.getattr_args(fh), cred=hu.ROOT_CRED)
    h.check(rr.is_success() and rr.status() == hu.NFS3_OK,
            'another address is answered meanwhile')
    other.close()
    w = hu.Tcp(vip, nfs, timeout=30, src=hog)
    rr = w.call(hu.NFS_PROG, 3, 7, hu.write_args(fh, FILE_SIZE, b'tail', stable=2),
                cred=hu.ROOT_CRED)
    h.check(rr.is_success() and rr.status() == hu.NFS3_OK,
            'the stopped host is answered on a connection holding nothing')
    w.close()

    # -- 3. every reply, right bytes, nothing held after -----------------------
    bad = 0
    for _ in range(N_READS):
        rep = hu.Reply(p.recv_record(timeout=120))
        off = xids.pop(rep.xid, None)
        body = hu.Unpacker(rep.body)
        ok = off is not None and rep.is_success() and body.u32() == hu.NFS3_OK
        if ok:
            if body.u32():          # post_op_attr present: skip fattr3
                body.fixed(84)
            body.u32()              # count
            body.u32()              # eof
            ok = body.opaque(CHUNK) == pattern(off, CHUNK)
        bad += not ok
    h.check(bad == 0 and not xids, 'all %d READs answered with the right bytes (%d bad, '
            '%d missing)' % (N_READS, bad, len(xids)))
    p.close()
    r = wait_rpc(c, lambda r: r['inflight_bytes'] == 0, 'nothing held')
    h.check(r['inflight_bytes'] == 0, 'the node holds no bytes in flight after')
    met = h.run([fo.ctl_path(), '-c', c.config_path, 'metrics'], what='sgnfsctl metrics',
                quiet=True).stdout.decode()
    h.check('sgnfs_node_inflight_bytes{node="a"} 0' in met and
            'sgnfs_node_inflight_stops_total{node="a",bound="host"}' in met,
            'the metrics show the bytes held (0) and the stops')

    # -- 4. the bound is checked ------------------------------------------------
    c.cluster_extra['max_inflight_mb'] = 0
    c.write_config()
    res = h.run([h.sgnfsd, '-t', '-c', c.config_path], check=False, what='-t, max_inflight_mb 0')
    h.check(res.returncode != 0 and b'max_inflight_mb' in res.stderr + res.stdout,
            'sgnfsd -t refuses max_inflight_mb = 0')
    c.cluster_extra['max_inflight_mb'] = 4
    c.write_config()
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=300)
