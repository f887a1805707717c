#!/usr/bin/env python3
"""
test_drc - the duplicate-request cache (issue 13 item 8): a non-idempotent
NFSv3 call retransmitted with the same xid gets its first reply, not a
second execution.

One node, group g, drc_entries = 64, drc_entries_per_host = 16.  Client
host A (127.S.80.1) over raw RPC, each retransmission on a NEW connection
(another source port), as a client does after a reconnect:

  1. REMOVE f1 -> OK; the same call again -> the same reply bytes (OK), not
     NOENT;
  2. RENAME r1 -> r2 -> OK; again -> the same OK, not NOENT;
  3. CREATE EXCLUSIVE ex (verifier V) -> OK; SETATTR on it (what a client
     does right after, which overwrites the verifier it kept in the times);
     the CREATE again -> the same OK, not EXIST;
  4. the xid of step 1 with another body (REMOVE of a name that does not
     exist) is executed: NOENT, not the cached OK;
  5. the same REMOVE twice in one TCP segment: one execution, the copy that
     arrives while the first runs is dropped (in-progress drop counted);
  6. a host's share: A removes f3 (one more entry), host B (127.S.80.2)
     makes 200 entries (REMOVEs of missing names); A's retransmission of
     the f3 REMOVE still gets OK (B evicted its own entries, not A's), the
     node holds at most 16 of B's entries, and the evictions are counted;
  7. status JSON and metrics show hits, misses, in-progress drops and
     evictions.
Outcomes only; nothing is timed.
"""
import json
import os
import struct

import harness
import hostile_util as hu
import nlm_util as nu
from harness import Export, Group, log

SETATTR, CREATE, REMOVE, RENAME = 2, 8, 12, 14
NFS3ERR_NOENT, NFS3ERR_EXIST = 2, 17
EXCLUSIVE = 2
PER_HOST, NODE = 16, 64


def diropargs(dirfh, name):
    return hu.nfs_fh(dirfh) + hu.opaque(name)


def call_rec(xid, proc, args):
    return hu.record(hu.call_msg(xid, hu.NFS_PROG, 3, proc, args, cred=hu.ROOT_CRED))


def once(vip, port, src, xid, proc, args):
    """Send one call on a new connection from @src; its reply.  The
    connection is closed afterwards (a reconnect for the next one)."""
    t = hu.Tcp(vip, port, timeout=30, src=src)
    try:
        t.send(call_rec(xid, proc, args))
        return t.wait_reply(xid)
    finally:
        t.close()


def node_status(h, c):
    cp = h.run([nu.ctl_path(), '-c', c.config_path, 'status', '--json'], timeout=20,
               check=False, quiet=True)
    doc = json.loads(cp.stdout.decode())
    return doc['nodes'][0]['status']


def group_of(st, name):
    for g in st.get('groups', []):
        if g['name'] == name:
            return g
    return {}


def test(h):
    c = h.cluster([Group('g', [Export('g/data', fsid=781, squash='none')], grace=1)],
                  cluster_extra={'drc_entries': NODE, 'drc_entries_per_host': PER_HOST})
    e = c.export('g/data')
    for name in ('f1', 'f3', 'r1'):
        with open(os.path.join(e.path, name), 'w') as f:
            f.write(name)
    nu.watch(c)
    c.start('a')
    nu.wait_online(h, c, ['g'])
    vip = c.group('g').vip
    port = c.ports['nfs_port']
    a, b = nu.host(c, 80, 1), nu.host(c, 80, 2)
    m = hu.Tcp(vip, c.ports['mount_port'], timeout=30, src=a)
    _, root = hu.mnt(m, e.path.encode())
    m.close()
    h.require(root is not None, 'MNT gives the root handle')

    # 1. REMOVE
    x1 = hu.next_xid()
    args1 = diropargs(root, b'f1')
    r1 = once(vip, port, a, x1, REMOVE, args1)
    h.require(r1.status() == hu.NFS3_OK, 'REMOVE f1 succeeds (%s)' % r1.status())
    h.check(not os.path.exists(os.path.join(e.path, 'f1')), 'f1 is gone')
    r1b = once(vip, port, a, x1, REMOVE, args1)
    h.check(r1b.status() == hu.NFS3_OK,
            'the REMOVE retransmitted on a new connection gets OK, not NOENT (%s)'
            % r1b.status())
    h.check(r1b.raw == r1.raw, 'and the very bytes of the first reply')

    # 2. RENAME
    x2 = hu.next_xid()
    args2 = diropargs(root, b'r1') + diropargs(root, b'r2')
    r2 = once(vip, port, a, x2, RENAME, args2)
    h.require(r2.status() == hu.NFS3_OK, 'RENAME r1 r2 succeeds (%s)' % r2.status())
    r2b = once(vip, port, a, x2, RENAME, args2)
    h.check(r2b.status() == hu.NFS3_OK and r2b.raw == r2.raw,
            'the RENAME retransmitted gets the first reply (OK), not NOENT (%s)'
            % r2b.status())
    h.check(os.path.exists(os.path.join(e.path, 'r2')), 'r2 exists')

    # 3. CREATE EXCLUSIVE, then SETATTR overwrites the verifier's times
    x3 = hu.next_xid()
    args3 = diropargs(root, b'ex') + hu.u32(EXCLUSIVE) + b'VERIFIER'
    r3 = once(vip, port, a, x3, CREATE, args3)
    h.require(r3.status() == hu.NFS3_OK, 'CREATE EXCLUSIVE ex succeeds (%s)' % r3.status())
    p = hu.Unpacker(r3.body)
    p.u32()
    h.require(p.u32() == 1, 'CREATE returns the handle')
    exfh = p.opaque(64)
    # sattr3: mode 0644, uid/gid/size unset, atime and mtime = server time
    sattr = hu.u32(1) + hu.u32(0o644) + hu.u32(0) * 3 + hu.u32(1) * 2
    rs = once(vip, port, a, hu.next_xid(), SETATTR, hu.nfs_fh(exfh) + sattr + hu.u32(0))
    h.require(rs.status() == hu.NFS3_OK, 'SETATTR on it succeeds (%s)' % rs.status())
    r3b = once(vip, port, a, x3, CREATE, args3)
    h.check(r3b.status() == hu.NFS3_OK and r3b.raw == r3.raw,
            'the CREATE EXCLUSIVE retransmitted after the SETATTR gets the first reply (OK), '
            'not EXIST (%s)' % r3b.status())

    # 4. the same xid with another body is a new call
    r4 = once(vip, port, a, x1, REMOVE, diropargs(root, b'no-such-file'))
    h.check(r4.status() == NFS3ERR_NOENT,
            'the xid of the first REMOVE with another name is executed: NOENT (%s)'
            % r4.status())

    # 5. two copies in one segment: one execution, one in-progress drop
    before = group_of(node_status(h, c), 'g').get('rpc', {}).get('drc', {})
    with open(os.path.join(e.path, 'f5'), 'w') as f:
        f.write('f5')
    x5 = hu.next_xid()
    rec5 = call_rec(x5, REMOVE, diropargs(root, b'f5'))
    t = hu.Tcp(vip, port, timeout=30, src=a)
    t.send(rec5 + rec5)
    r5 = t.wait_reply(x5)
    t.close()
    h.check(r5.status() == hu.NFS3_OK, 'REMOVE f5 sent twice at once: OK (%s)' % r5.status())
    r5b = once(vip, port, a, x5, REMOVE, diropargs(root, b'f5'))
    h.check(r5b.status() == hu.NFS3_OK and r5b.raw == r5.raw,
            'a later copy is answered from the cache (%s)' % r5b.status())
    after = group_of(node_status(h, c), 'g').get('rpc', {}).get('drc', {})
    h.check(after.get('inprogress_drops', 0) - before.get('inprogress_drops', 0) == 1,
            'the copy that arrived while the first ran was dropped, not executed (%s -> %s)'
            % (before, after))

    # 6. one host cannot flood the others out
    x6 = hu.next_xid()
    args6 = diropargs(root, b'f3')
    r6 = once(vip, port, a, x6, REMOVE, args6)
    h.require(r6.status() == hu.NFS3_OK, 'REMOVE f3 succeeds (%s)' % r6.status())
    t = hu.Tcp(vip, port, timeout=30, src=b)
    for i in range(200):
        xid = hu.next_xid()
        t.send(call_rec(xid, REMOVE, diropargs(root, b'missing-%d' % i)))
        rb = t.wait_reply(xid)
        if rb.status() != NFS3ERR_NOENT:
            h.check(False, 'flood REMOVE %d: %s' % (i, rb.status()))
            break
    t.close()
    st = node_status(h, c)
    drc = st.get('rpc', {}).get('drc', {})
    log('node drc after the flood: %s' % drc)
    r6b = once(vip, port, a, x6, REMOVE, args6)
    h.check(r6b.status() == hu.NFS3_OK and r6b.raw == r6.raw,
            'after 200 entries of host B, host A\'s retransmission still gets OK (%s)'
            % r6b.status())
    # A made 7 entries (REMOVE f1, RENAME, CREATE, SETATTR, the other
    # REMOVE with x1, f5, f3), B at most its share
    h.check(drc.get('entries', 999) <= PER_HOST + 7,
            'the node holds %s entries: B no more than its share of %d'
            % (drc.get('entries'), PER_HOST))
    h.check(drc.get('evictions', 0) >= 200 - PER_HOST,
            'B\'s surplus evicted its own entries (%s evictions)' % drc.get('evictions'))

    # 7. status and metrics
    g = group_of(st, 'g').get('rpc', {})
    log('group rpc status: %s' % g)
    h.check(g.get('drc', {}).get('hits', 0) >= 4, 'status counts the hits (%s)' % g)
    h.check(g.get('drc', {}).get('misses', 0) >= 200, 'and the misses')
    h.check('udp_dropped' in g and 'udp_dropped' in st.get('rpc', {}),
            'status shows the UDP drops, per group and per node')
    cp = h.run([nu.ctl_path(), '-c', c.config_path, 'metrics'], timeout=20, check=False,
               quiet=True)
    text = cp.stdout.decode()
    for name in ('sgnfs_drc_hits_total', 'sgnfs_drc_misses_total',
                 'sgnfs_drc_inprogress_drops_total', 'sgnfs_drc_evictions_total',
                 'sgnfs_rpc_udp_dropped_total', 'sgnfs_node_udp_dropped_total'):
        h.check(name in text, 'metrics have %s' % name)
    hits = [l for l in text.splitlines() if l.startswith('sgnfs_drc_hits_total{')]
    h.check(any(l.split()[-1] != '0' for l in hits), 'sgnfs_drc_hits_total counts (%s)' % hits)
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=150)
