#!/usr/bin/env python3
"""
Managed ownership (docs/failover.md, "Managed ownership"): with
`ownership = managed` a node serves a group only when told over the
control socket (`sgnfsctl -n NODE start|stop|status GROUP`), never on its
own; the commands are synchronous and idempotent, and their exit codes
are what an OCF agent maps (0 online / done, 7 not served there, 1
refused or failed with the reason on stderr, 2 usage or config error).

Cluster: [cluster] ownership = managed; nodes a and b run.
  g1  managed (inherits the cluster's), nodes a b, grace 10 s, 2 lock holders
  g2  ownership = lease (its own override), nodes a b
  g3  managed, nodes a b and this host's short name (a node that never runs)

Checked, in order:
  * g2 comes up by its lease; g1 and g3 are served nowhere, also after
    both nodes had time to contend (a managed node never does);
  * start g1 on a: exit 0, and at that moment g1 is online on a (its VIP
    accepts a connection at the first try, status g1 -n a exits 0);
    start again: 0, and a logs "online" once;  status g1 -n b: 7;
  * two hosts lock in g1; stop g1 on a: 0, and at that moment the VIP
    refuses connections; stop again: 0; status -n a: 7;
  * start g1 on b: 0; the holders are notified by b and reclaim; b holds
    exactly what they believe they hold;
  * start/stop of the lease-owned g2: exit 1, "lease-owned" on stderr, g2
    untouched; move of the managed g1: refused;
  * a start that fails (g3's VIP port is taken): exit 1 with the reason;
    status: 1 with the same reason; stop: 0 and status 7; start again once
    the port is free: 0;
  * usage/config errors exit 2: unknown group, unknown node, node not in
    the group's list, and no -n on a host without a [node] of its name;
    without -n the node is the one named like this host;
  * stop on a node whose sgnfsd is not running: 0; status there: 7.
"""

import os
import re
import socket
import subprocess
import time

import harness
import fo_util as fu
from harness import log


def run_ctl(c, *args, config=None):
    """sgnfsctl -c CONFIG ARGS; (exit code, stdout, stderr)."""
    cp = subprocess.run([fu.ctl_path(), '-c', config or c.config_path] + list(args),
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                        preexec_fn=harness._pdeathsig)
    out, err = cp.stdout.decode(), cp.stderr.decode()
    log('sgnfsctl %s -> %d %s %s' % (' '.join(args), cp.returncode, out.strip(), err.strip()))
    return cp.returncode, out, err


def connects(vip, port):
    """One TCP connection attempt, no retry."""
    try:
        with socket.create_connection((vip, port), timeout=2):
            return True
    except OSError:
        return False


def test(h):
    host = socket.gethostname().split('.')[0]
    host_ok = bool(re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_-]{0,62}', host)) and host not in 'ab'
    g3_nodes = ('a', 'b', host) if host_ok else ('a', 'b')
    gs = [harness.Group('g1', [harness.Export('g1/fs', fsid=101)], nodes=('a', 'b'), grace=10),
          harness.Group('g2', [harness.Export('g2/fs', fsid=102)], nodes=('a', 'b'), grace=5,
                        extra={'ownership': 'lease'}),
          harness.Group('g3', [harness.Export('g3/fs', fsid=103)], nodes=g3_nodes, grace=5,
                        extra={'ownership': 'managed'})]
    c = h.cluster(groups=gs, nodes=['a', 'b'] + ([host] if host_ok else []),
                  cluster_extra={'ownership': 'managed'})
    for g in gs:
        p = os.path.join(g.exports[0].path, fu.LOCKFILE)
        with open(p, 'wb') as f:
            f.write(b'\0' * 4096)
        os.chmod(p, 0o666)
    nfs = c.ports['nfs_port']
    v1, v3 = c.group('g1').vip, c.group('g3').vip
    f1 = fu.lock_file(c, 'g1')

    c.start('a', wait=False)
    c.start('b', wait=False)
    fu.wait_group(h, c, 'g2', owner='a', timeout=20)
    # b may take g2 only after LEASE_SETTLE_MS; wait past it so that any
    # node that would contend for a managed group has had its chance.
    time.sleep(2.5)
    st = fu.status(c)
    h.check('g1' not in st and 'g3' not in st,
            'managed g1 and g3 are served nowhere until started (%s)' % fu.summary(st))
    for n in ('a', 'b'):
        rc, _, _ = run_ctl(c, '-n', n, 'status', 'g1')
        h.check(rc == 7, 'status g1 -n %s before any start: exit 7 (%d)' % (n, rc))

    # -- start on a: synchronous, idempotent ---------------------------------
    rc, out, _ = run_ctl(c, '-n', 'a', 'start', 'g1')
    h.require(rc == 0, 'start g1 -n a: exit 0 (%d)' % rc)
    h.check(connects(v1, nfs), 'g1\'s VIP accepts a connection right when start returns')
    rc, _, _ = run_ctl(c, '-n', 'a', 'status', 'g1')
    h.check(rc == 0, 'status g1 -n a after start: exit 0 (%d)' % rc)
    st = fu.status(c)
    h.check(st.get('g1', {}).get('owner') == 'a' and st['g1']['owners'] == ['a'],
            'g1 served by a alone (%s)' % fu.summary(st))
    h.check(st['g1'].get('ownership') == 'managed' and st['g2'].get('ownership') == 'lease',
            'status reports ownership managed for g1, lease for g2')
    rc, _, _ = run_ctl(c, '-n', 'a', 'start', 'g1')
    h.check(rc == 0, 'start g1 -n a again: exit 0 (idempotent)')
    h.check(fu.node_log(c.nodes['a']).count('group=g1 online on node a') == 1,
            'the second start did not restart g1')
    rc, _, _ = run_ctl(c, '-n', 'b', 'status', 'g1')
    h.check(rc == 7, 'status g1 -n b while a serves it: exit 7 (%d)' % rc)

    ho = fu.Hold(h, fu.client_addr(c, 1, 1), v1, f1, 0, 8, per_host=1, nhosts=2, tag='g1')
    h.require(ho.wait_holding(), 'two g1 hosts hold their locks on a')
    held = fu.record_set([ho])
    s_a = fu.read_state(c, 'g1')

    # -- stop on a ----------------------------------------------------------
    rc, _, _ = run_ctl(c, '-n', 'a', 'stop', 'g1')
    h.require(rc == 0, 'stop g1 -n a: exit 0 (%d)' % rc)
    h.check(not connects(v1, nfs), 'g1\'s VIP refuses connections right when stop returns')
    rc, _, _ = run_ctl(c, '-n', 'a', 'status', 'g1')
    h.check(rc == 7, 'status g1 -n a after stop: exit 7 (%d)' % rc)
    rc, _, _ = run_ctl(c, '-n', 'a', 'stop', 'g1')
    h.check(rc == 0, 'stop g1 -n a again: exit 0 (idempotent)')
    time.sleep(0.5)
    h.check('g1' not in fu.status(c), 'g1 stays offline: no node takes it on its own')

    # -- start on b: the clients reclaim ------------------------------------
    t_b = time.monotonic()
    rc, _, _ = run_ctl(c, '-n', 'b', 'start', 'g1')
    h.require(rc == 0, 'start g1 -n b: exit 0 (%d)' % rc)
    rc, _, _ = run_ctl(c, '-n', 'b', 'status', 'g1')
    h.check(rc == 0, 'status g1 -n b: exit 0')
    s_b = fu.read_state(c, 'g1')
    h.check(s_b is not None and s_a is not None and s_b > s_a and s_b % 2 == 1,
            'g1 state number up and odd on b (%s -> %s)' % (s_a, s_b))
    n = ho.wait_count('reclaim-done', 2, 20, since=t_b)
    h.check(n == 2, 'both g1 hosts reclaimed on b (%d)' % n)
    fu.check_notified(h, ho, v1, s_b, t_b, nhosts=2, what='g1 on b: ')
    recs = fu.record_states([ho])
    h.check(recs and all(s == 'held' for s, _ in recs.values()),
            'every g1 lock held after the reclaim (%s)' % sorted(recs.values()))
    h.check(fu.server_set(fu.status(c), 'g1') == held,
            'b holds exactly the g1 locks the clients believe they hold')

    # -- a lease-owned group is refused; a managed group is not moved --------
    for n, cmd in (('a', 'start'), ('b', 'stop'), ('a', 'stop')):
        rc, _, err = run_ctl(c, '-n', n, cmd, 'g2')
        h.check(rc == 1 and 'lease-owned' in err,
                '%s g2 -n %s refused: exit 1, "lease-owned" on stderr (%d)' % (cmd, n, rc))
    rc, _, _ = run_ctl(c, '-n', 'a', 'status', 'g2')
    h.check(rc == 0, 'status of the lease-owned g2 on a: exit 0 (%d)' % rc)
    rc, _, _ = run_ctl(c, '-n', 'b', 'status', 'g2')
    h.check(rc == 7, 'status of the lease-owned g2 on b: exit 7 (%d)' % rc)
    h.check(fu.status(c).get('g2', {}).get('owners') == ['a'], 'g2 still on a alone')
    rc, out = fu.ctl(h, c, 'move', 'g1', 'a', check=False)
    h.check(rc == 1 and 'managed' in out, 'move of the managed g1 refused (%d)' % rc)
    h.check(fu.status(c).get('g1', {}).get('owners') == ['b'], 'g1 still on b alone')

    # -- a failed start -------------------------------------------------------
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind((v3, nfs))
    blocker.listen(1)
    rc, _, err = run_ctl(c, '-n', 'a', 'start', 'g3')
    h.check(rc == 1 and 'cannot bind' in err,
            'start g3 with its VIP port taken: exit 1, reason on stderr (%d %r)' % (rc, err))
    rc, out, err = run_ctl(c, '-n', 'a', 'status', 'g3')
    h.check(rc == 1 and 'cannot bind' in out + err,
            'status g3 -n a after the failed start: exit 1 with the reason (%d)' % rc)
    h.check(not connects(v3, c.ports['mount_port']), 'nothing of g3 stays bound')
    blocker.close()
    rc, _, _ = run_ctl(c, '-n', 'a', 'stop', 'g3')
    h.check(rc == 0, 'stop g3 -n a after the failure: exit 0')
    rc, _, _ = run_ctl(c, '-n', 'a', 'status', 'g3')
    h.check(rc == 7, 'status g3 -n a after the stop: exit 7 (%d)' % rc)
    rc, _, _ = run_ctl(c, '-n', 'a', 'start', 'g3')
    h.check(rc == 0, 'start g3 -n a once the port is free: exit 0 (%d)' % rc)

    # -- usage and config errors; the default node ---------------------------
    bad = [(('-n', 'a', 'start', 'nosuch'), 'unknown group'),
           (('-n', 'z', 'status', 'g1'), 'unknown node')]
    if host_ok:
        bad.append((('-n', host, 'start', 'g1'), 'node not in the group\'s nodes list'))
    for args, what in bad:
        rc, _, _ = run_ctl(c, *args)
        h.check(rc == 2, '%s: exit 2 (%d)' % (what, rc))
    if host_ok:
        rc, _, err = run_ctl(c, 'status', 'g3')
        h.check(rc == 7 and 'not running' in err,
                'status g3 without -n asks node %s (not running): exit 7 (%d)' % (host, rc))
        rc, _, _ = run_ctl(c, 'stop', 'g3')
        h.check(rc == 0, 'stop g3 on node %s whose sgnfsd is not running: exit 0 (%d)'
                % (host, rc))
        other = os.path.join(c.dir, 'no-host.ini')
        with open(c.config_path) as f:
            txt = f.read()
        with open(other, 'w') as f:
            f.write(txt.replace('[node %s]\n' % host, '').replace(' %s\n' % host, '\n'))
        rc, _, err = run_ctl(c, 'status', 'g1', config=other)
        h.check(rc == 2 and 'no [node %s]' % host in err,
                'no -n and no [node %s] in the file: exit 2, said so (%d %r)' % (host, rc, err))
    else:
        log('host name %r is not usable as a node name: default-node checks skipped' % host)

    fu.check_no_sanitizer_report(h, c)
    fu.check_no_daemon_errors(h, c, allow=(r'group=g3 cannot (bind|come online)',))


harness.main(test, timeout=150)
