"""
test_status.py - the one status schema (docs/status.md) as an operator
sees it, in order:

  1. only node a runs: g1 and g3 are online on a; g2 (only b may serve it)
     is offline with the reason "b: node down"; `sgnfsctl status` exits 3;
     the VIPs, exports (access, squash, clients), the NSM state number
     (odd: up) and the SHA-256 of the configuration file are in the JSON;
     the text tables show the same, built from that JSON;
  2. b starts while something else holds g2's VIP on the NFS port: g2
     stays offline and the reason is the bind failure as b saw it;
  3. b restarts with the port free: every group is served, exit 0;
  4. the file changes (one comment line): both nodes still run the old
     one; status says which nodes differ and exits 4;
  5. a is killed: g1 moves to b, g3 (only a) goes offline with
     "a: node down", exit 3 again.
"""

import hashlib
import socket

import harness
from harness import Export, Group, log
import ops_util as ou


def test(h):
    c = h.cluster(nodes=['a', 'b'], groups=[
        Group('g1', [Export('s1', 101)], nodes=('a', 'b')),
        Group('g2', [Export('s2', 102, access='ro', squash='root',
                            clients='127.0.0.0/8 10.1.0.0/16')], nodes=('b',)),
        Group('g3', [Export('s3', 103, squash='all')], nodes=('a',), nvips=2),
    ])
    sha = hashlib.sha256(open(c.config_path, 'rb').read()).hexdigest()
    c.start('a')

    # ---- 1. a alone ------------------------------------------------------
    rc, doc = ou.wait_status(c, lambda rc, d: all(
        ou.served(d, 'a', g) for g in ('g1', 'g3')), 'g1 and g3 online on a')
    h.check(rc == 3, 'status exits 3 while g2 is not served (got %d)' % rc)
    g2 = ou.cluster_group(doc, 'g2')
    h.check(g2['state'] == 'offline' and g2['owner'] is None,
            'g2 offline, no owner (%s)' % g2)
    h.check(g2['reason'] == 'b: node down', 'g2: reason "b: node down" (%r)' % g2['reason'])
    g1 = ou.cluster_group(doc, 'g1')
    h.check(g1['owner'] == 'a' and g1['owners'] == ['a'] and g1['reason'] is None,
            'g1: owner a, no reason (%s)' % g1)
    na = ou.node_doc(doc, 'a')
    h.check(na['up'] and na['config_matches'], 'node a up, runs this file')
    h.check(na['status']['config']['sha256'] == sha and doc['config']['sha256'] == sha,
            'config sha256 is the file\'s (as sha256sum prints it)')
    h.check(na['status']['draining'] is False, 'a: not draining')
    h.check(ou.node_doc(doc, 'b')['up'] is False and ou.node_doc(doc, 'b')['status'] is None,
            'node b down, status null')
    s3 = ou.served(doc, 'a', 'g3')
    h.check(s3['vips'] == c.group('g3').vips, 'g3 lists both VIPs %s (%s)'
            % (c.group('g3').vips, s3['vips']))
    h.check(s3['nsm_state'] % 2 == 1, 'g3 NSM state number odd (up): %d' % s3['nsm_state'])
    e3 = s3['exports'][0]
    h.check(e3 == {'path': c.export('s3').path, 'fsid': 103, 'access': 'rw',
                   'clients': ['127.0.0.0/8'], 'squash': 'all'},
            'g3 export: path, fsid, access, clients, squash (%s)' % e3)
    h.check(doc['schema'] == 1 and na['status']['schema'] == 1, 'schema 1')

    rc, out, _ = ou.ctl(c, 'status')
    log('text status:\n' + out)
    lines = out.splitlines()
    row = [l for l in lines if l.startswith('g2 ')]
    h.check(rc == 3, 'text status exits 3 too (got %d)' % rc)
    h.check(row and row[0].split()[1:3] == ['-', 'offline'], 'text: g2 row offline (%s)' % row)
    h.check('    why: b: node down' in lines, 'text: the reason under g2')
    h.check(any(l.startswith('g3 ') and ' '.join(c.group('g3').vips) in l for l in lines),
            'text: g3 row shows both VIPs')
    h.check(any(l.split()[:5] == ['g2', '102', 'ro', 'root', c.export('s2').path]
                for l in lines), 'text: g2 export row (fsid, access, squash, path)')
    h.check(any(l.split()[:3] == ['a', 'up', str(c.nodes['a'].pid)] and sha[:12] in l
                for l in lines), 'text: node a up with its pid and config checksum')
    jhead = [l for l in lines if l.startswith('GROUP ') and 'JOURNAL' in l]
    jrow = [l.split() for l in lines if l.startswith('g1 ') and l.split()[1:2] == ['on']]
    h.check(jhead and jhead[0].split()[-1] == 'FORMAT' and jrow and jrow[0][-1] == '2',
            'text: g1\'s journal row ends with its file format, 2 (%s %s)' % (jhead, jrow))

    # ---- 2. b cannot bind g2's VIP ---------------------------------------
    vip2 = c.group('g2').vip
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((vip2, c.ports['nfs_port']))
    blocker.listen(1)
    c.start('b', wait=False)
    rc, doc = ou.wait_status(c, lambda rc, d: 'cannot bind' in
                             (ou.cluster_group(d, 'g2').get('reason') or ''),
                             'g2 offline with the bind failure as reason')
    reason = ou.cluster_group(doc, 'g2')['reason']
    h.check(reason.startswith('b: cannot bind %s:%d' % (vip2, c.ports['nfs_port']))
            and 'in use' in reason, 'g2 reason names b, the address and the error (%r)' % reason)
    h.check(rc == 3, 'exit 3 while g2 is offline (got %d)' % rc)
    blocker.close()
    c.stop('b')

    # ---- 3. all served -----------------------------------------------------
    c.start('b')
    rc, doc = ou.wait_status(c, lambda rc, d: rc == 0, 'status exits 0 with every group served')
    h.check(all(g['state'] in ('online', 'grace') for g in doc['groups']),
            'every group online or in grace (%s)' % [(g['name'], g['state'])
                                                     for g in doc['groups']])
    h.check(ou.cluster_group(doc, 'g2')['owner'] == 'b', 'g2 served by b')

    # ---- 4. the file changed under the running nodes -----------------------
    with open(c.config_path, 'a') as f:
        f.write('; edited after the nodes started\n')
    rc, doc = ou.status(c)
    h.check(rc == 4, 'status exits 4 when the nodes run another file (got %d)' % rc)
    h.check([n['config_matches'] for n in doc['nodes']] == [False, False],
            'both nodes: config_matches false')
    h.check(doc['config']['sha256'] != sha and
            all(n['status']['config']['sha256'] == sha for n in doc['nodes']),
            'the nodes report the checksum of what they loaded')
    rc, out, _ = ou.ctl(c, 'status')
    h.check(rc == 4 and out.count('(differs)') == 2, 'text: both nodes marked "(differs)"')
    c.write_config()

    # ---- 5. a dies ----------------------------------------------------------
    c.kill9('a')
    rc, doc = ou.wait_status(c, lambda rc, d: ou.cluster_group(d, 'g1')['owner'] == 'b',
                             'g1 moves to b')
    g3 = ou.cluster_group(doc, 'g3')
    h.check(g3['state'] == 'offline' and g3['reason'] == 'a: node down',
            'g3 offline, reason "a: node down" (%s)' % g3)
    h.check(rc == 3, 'exit 3 again (got %d)' % rc)
    c.stop('b')


harness.main(test, timeout=150)
