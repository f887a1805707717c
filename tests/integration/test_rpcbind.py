"""
test_rpcbind.py - sgnfsd shares a host with rpcbind and rpc.statd
(use_rpcbind = yes; docs/operations.md, Coexistence), in a private network
namespace (ops-rpcb-PID) where rpcbind -w and rpc.statd run, in order:

  1. rpcbind answers, rpc.statd has registered NSM;
  2. a node starts beside them: its group comes online; rpcbind lists NFS
     v3, MOUNT v1-3 and NLM v1/3/4 on sgnfsd's ports, while NSM stays
     rpc.statd's (and the node's log says it left it alone);
  3. clients that know only the VIP find everything through rpcbind:
     nfs-ls lists the export, sgnfs-client takes a lock;
  4. SIGTERM: exit 0; sgnfsd's registrations are gone, rpc.statd's NSM is
     still there, rpcbind and rpc.statd still run;
  5. after a kill -9 the stale registrations do not stop a restart.
"""

import os
import re
import signal
import subprocess
import time

import harness
from harness import Export, Group, TestAbort, log
import nsm_util as nu
import ops_util as ou


def test(h):
    if os.geteuid() != 0:
        raise harness.Skip('needs root (network namespaces)')
    rpcbind = h.need_tool('rpcbind')
    statd = h.need_tool('rpc.statd')
    rpcinfo = h.need_tool('rpcinfo')
    nfs_ls = h.need_tool('nfs-ls')
    client = os.environ.get('SGNFS_CLIENT', '')
    ns = 'ops-rpcb-%d' % os.getpid()
    # A leak inside libtirpc's rpcbind calls, not ours (the file says which).
    os.environ['LSAN_OPTIONS'] = 'suppressions=%s' % os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'lsan-libtirpc.supp')
    c = h.cluster(groups=[Group('g1', [Export('s1', 101)], nodes=('a',))],
                  cluster_extra={'use_rpcbind': 'yes'})
    vip = c.group('g1').vip
    with open(os.path.join(c.export('s1').path, 'hello'), 'w') as f:
        f.write('hi\n')
    lockfile = os.path.join(c.export('s1').path, 'lockme')
    with open(lockfile, 'wb') as f:
        f.write(b'\0' * 64)
    os.chmod(lockfile, 0o666)
    statedir = os.path.join(c.dir, 'statd')
    for d in ('sm', 'sm.bak'):
        os.makedirs(os.path.join(statedir, d))

    nu._kill_netns(ns)
    subprocess.run(['ip', 'netns', 'add', ns], check=True)
    try:
        subprocess.run(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'], check=True)
        script = ('mount -t tmpfs -o mode=0755 ops-rpcb-run /run && mkdir -p /run/rpcbind && '
                  '(chown _rpc /run/rpcbind 2>/dev/null || true) && exec %s -f -w' % rpcbind)
        rb = h.spawn(['ip', 'netns', 'exec', ns, 'sh', '-c', script], 'rpcbind.log')
        inns = ['nsenter', '-t', str(rb.pid), '-n', '-m', '--']

        def rpcinfo_p():
            cp = subprocess.run(inns + [rpcinfo, '-p', '127.0.0.1'], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=20)
            rows = set()
            for ln in cp.stdout.decode().splitlines()[1:]:
                f = ln.split()
                if len(f) >= 4 and f[0].isdigit():
                    rows.add((int(f[0]), int(f[1]), f[2], int(f[3])))
            return cp.returncode, rows

        deadline = time.monotonic() + 15
        while rpcinfo_p()[0] != 0:
            h.require(rb.poll() is None and time.monotonic() < deadline, 'rpcbind answers in %s' % ns)
            time.sleep(0.1)
        st = h.spawn(inns + [statd, '-F', '-L', '-P', statedir], 'rpc.statd.log')

        # ---- 1 -----------------------------------------------------------
        deadline = time.monotonic() + 15
        while not any(r[0] == 100024 for r in rpcinfo_p()[1]):
            h.require(st.poll() is None and time.monotonic() < deadline, 'rpc.statd registers')
            time.sleep(0.1)
        statd_rows = {r for r in rpcinfo_p()[1] if r[0] == 100024}
        h.check(statd_rows and all(r[3] != c.ports['nsm_port'] for r in statd_rows),
                'rpc.statd registered NSM on its own port(s): %s' % sorted(statd_rows))

        # ---- 2 -----------------------------------------------------------
        def start_node(n):
            return h.spawn(inns + [h.sgnfsd, '-c', c.config_path, '-n', 'a', '-f'],
                           'node-a.%d.log' % n)
        node = start_node(0)
        ou.wait_status(c, lambda rc, d: rc == 0, 'g1 online beside rpcbind')
        rc, rows = rpcinfo_p()
        want = {(100003, 3, p, 2049) for p in ('tcp', 'udp')} | \
               {(100005, v, p, 20048) for v in (1, 2, 3) for p in ('tcp', 'udp')} | \
               {(100021, v, p, 4045) for v in (1, 3, 4) for p in ('tcp', 'udp')}
        h.check(want <= rows, 'rpcbind lists NFS, MOUNT and NLM on sgnfsd\'s ports (missing %s)'
                % sorted(want - rows))
        h.check({r for r in rows if r[0] == 100024} == statd_rows,
                'NSM is still rpc.statd\'s registration')
        nlog = lambda n: open(os.path.join(h.logdir, 'node-a.%d.log' % n)).read()
        h.check('the host\'s rpc.statd): left to it' in nlog(0), 'the node says it left NSM to '
                'rpc.statd')

        # ---- 3 -----------------------------------------------------------
        cp = subprocess.run(inns + [nfs_ls, 'nfs://%s%s/' % (vip, c.export('s1').path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = cp.stdout.decode()
        h.check(cp.returncode == 0 and 'hello' in out, 'nfs-ls through rpcbind lists the export '
                '(%d %r)' % (cp.returncode, out[-300:]))
        if client:
            cp = subprocess.run(inns + [client, '--host', '127.%d.70.1' % c.slot, '--server', vip,
                                        '--json', '--timeout', '8000', 'lock', lockfile, '0', '1'],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            out = cp.stdout.decode()
            h.check(cp.returncode == 0 and '"status":"granted"' in out,
                    'sgnfs-client finds NLM through rpcbind: lock granted (%r)' % out[-300:])

        # ---- 4 -----------------------------------------------------------
        node.send_signal(signal.SIGTERM)
        h.check(node.wait(20) == 0, 'the node stops with exit 0')
        rc, rows = rpcinfo_p()
        h.check(not {r for r in rows if r[0] in (100003, 100005, 100021)},
                'its registrations are gone (%s)' % sorted(r for r in rows if r[0] != 100024))
        h.check({r for r in rows if r[0] == 100024} == statd_rows and rb.poll() is None and
                st.poll() is None, 'rpc.statd\'s NSM stays; rpcbind and rpc.statd still run')

        # ---- 5 -----------------------------------------------------------
        node = start_node(1)
        ou.wait_status(c, lambda rc, d: rc == 0, 'g1 online again')
        node.send_signal(signal.SIGKILL)
        node.wait(20)
        h.check(want <= rpcinfo_p()[1], 'kill -9 leaves the registrations behind')
        node = start_node(2)
        ou.wait_status(c, lambda rc, d: rc == 0, 'g1 online after the restart over stale entries')
        h.check(True, 'a restart replaces its own stale registrations')
        node.send_signal(signal.SIGTERM)
        h.check(node.wait(20) == 0, 'and stops with exit 0')
    finally:
        nu._kill_netns(ns)
        h.check(ns not in nu._netns_list(), 'namespace %s removed' % ns)


harness.main(test, timeout=200)
