#!/usr/bin/env python3
"""
sgnfs under a real Corosync + Pacemaker cluster (docs/deployment.md).

Three machines n1, n2, n3 (pcmk_cluster.py: network, mount and UTS
namespaces, a bridge), STONITH on with fence_sgnfs_ns.  One client
machine (pcmk-cl, 10.231.0.50-59) runs sgnfs-client hosts.

sgnfs: ownership = managed; groups g1, g2, g3, each with its own LUN (an
ext4 image on a loop device, initialised once with `sgnfsctl init`) and
VIP 10.231.0.10N.  Pacemaker: the ocf:sgnfs:sgnfsd clone; per group a
resource group gN = Filesystem (the LUN) + IPaddr2 (the VIP) +
ocf:sgnfs:group, started after the clone, gN preferring nN.

Checked, in order:
  1. every group comes up on its preferred machine, and each group's
     client host takes a lock through the VIP;
  2. corosync of g1's machine is killed (token 1000 ms): that machine is
     fenced (every process of it gone, the fencing history says so), g1
     comes up on another machine, g1's client is notified and reclaims its
     lock, and while g1 moves, g2 and g3 never pause: each stays online on
     its machine (status polled throughout), their NSM state numbers do not
     change, and new locks on them are granted (never "grace") during g1's
     recovery;
  3. `pcs resource move g2 n3`: g2 goes offline on n2 and online on n3, its
     client reclaims;
  4. kill -9 of the sgnfsd on the machine that serves g3: Pacemaker's
     monitor sees it, restarts the clone instance and g3 comes back;
  5. n1 is booted again and rejoins; the token is raised to 3000 ms on
     every machine (corosync-cfgtool -R); corosync of g1's machine is
     killed: fenced, g1 comes up elsewhere, its client reclaims.
Printed: node kill -> group online (sgnfsctl status GROUP exits 0 on the
new machine), for token 1000 and 3000 ms.

Needs root, corosync, pacemaker, pcs, resource-agents, fence-agents, a
loop device; skips (77) without them.  Run time: 3-4 minutes.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pcmk_cluster as pc  # noqa: E402
from pcmk_cluster import log  # noqa: E402

SKIP = 77
SGNFSD = os.environ.get('SGNFSD', '')
SGNFSCTL = os.environ.get('SGNFSCTL', '')
CLIENT = os.environ.get('SGNFS_CLIENT', '')
GROUPS = ['g1', 'g2', 'g3']


class Fail(Exception):
    pass


class Checks:
    def __init__(self):
        self.n = 0
        self.failed = 0
        self.failures = []

    def check(self, cond, what):
        self.n += 1
        if cond:
            print('ok   - ' + what)
        else:
            self.failed += 1
            self.failures.append(what)
            print('FAIL - ' + what)
        sys.stdout.flush()
        return cond

    def require(self, cond, what):
        if not self.check(cond, what):
            raise Fail(what)


def vip(g):
    return '%s.%d' % (pc.SUBNET, 100 + int(g[1:]))


class Setup:
    def __init__(self, c, ck):
        self.c = c
        self.ck = ck
        self.cfg = os.path.join(c.tmp, 'sgnfs.ini')
        self.key = os.path.join(c.tmp, 'handle.key')
        self.mnt = {g: os.path.join(c.tmp, 'mnt', g) for g in GROUPS}
        self.dev = {}
        self.holds = {}

    def storage(self):
        pc.sh([SGNFSCTL, 'keygen', self.key])
        lines = ['[cluster]', 'name = pcmk', 'run_dir = /run/sgnfs', 'ownership = managed',
                 'handle_key = %s' % self.key, 'log = /var/log/cluster/sgnfs-%n.log', '']
        for m in self.c.machines:
            lines += ['[node %s]' % m.name, '']
        for i, g in enumerate(GROUPS):
            order = [self.c.machines[(i + k) % 3].name for k in range(3)]
            lines += ['[group %s]' % g, 'vip = %s' % vip(g), 'nodes = %s' % ' '.join(order),
                      'grace = 20', '',
                      '[export %s]' % self.mnt[g], 'group = %s' % g, 'fsid = %d' % (101 + i),
                      'access = rw', 'clients = %s.0/24' % pc.SUBNET, 'squash = none', '']
        with open(self.cfg, 'w') as f:
            f.write('\n'.join(lines))
        for g in GROUPS:
            os.makedirs(self.mnt[g])
        pc.sh([SGNFSD, '-t', '-c', self.cfg])
        for g in GROUPS:
            img = os.path.join(self.c.tmp, g + '.img')
            with open(img, 'wb') as f:
                f.truncate(16 << 20)
            pc.sh(['mkfs.ext4', '-q', '-F', img])
            self.dev[g] = self.c.losetup(img)
            # Initialise the LUN once, where it is mounted (a private mount
            # namespace of our own, never the host's).
            pc.sh(['unshare', '--mount', '--propagation', 'private', 'sh', '-ec',
                   'mount %s %s; rmdir %s/lost+found; %s -c %s init %s; '
                   'head -c 4096 /dev/zero > %s/f; chmod 666 %s/f; umount %s'
                   % (self.dev[g], self.mnt[g], self.mnt[g], SGNFSCTL, self.cfg, g,
                      self.mnt[g], self.mnt[g], self.mnt[g])])

    def resources(self):
        """The configuration docs/deployment.md gives as pcs commands, built
        as one CIB and installed with one cibadmin --replace (pcs takes
        seconds per command on a loaded machine)."""
        c = self.c
        m1 = c.machines[0]
        p = m1.run(['cibadmin', '--query'])
        cib = ET.fromstring(p.stdout)
        conf = cib.find('configuration')

        def nv(parent, pid, name, value):
            ET.SubElement(parent, 'nvpair', id='%s-%s' % (pid, name), name=name, value=value)

        def prim(parent, rid, cls, typ, params, monitor, provider=None):
            a = {'id': rid, 'class': cls, 'type': typ}
            if provider:
                a['provider'] = provider
            e = ET.SubElement(parent, 'primitive', a)
            ia = ET.SubElement(e, 'instance_attributes', id=rid + '-ia')
            for k, v in params:
                nv(ia, rid + '-ia', k, v)
            ops = ET.SubElement(e, 'operations')
            ET.SubElement(ops, 'op', id=rid + '-monitor', name='monitor', **monitor)
            return e

        props = conf.find('crm_config').find('cluster_property_set')
        if props is None:
            props = ET.SubElement(conf.find('crm_config'), 'cluster_property_set',
                                  id='cib-bootstrap-options')
        nv(props, 'opt', 'stonith-enabled', 'true')
        nv(props, 'opt', 'stonith-timeout', '30s')
        rd = conf.find('rsc_defaults')
        if rd is None:
            rd = ET.SubElement(conf, 'rsc_defaults')
        ma = ET.SubElement(rd, 'meta_attributes', id='rsc-defaults')
        nv(ma, 'rsc-defaults', 'resource-stickiness', '100')

        res = conf.find('resources')
        prim(res, 'fence-ns', 'stonith', 'fence_sgnfs_ns',
             [('node_dir', c.node_dir), ('pcmk_host_list', 'n1 n2 n3'),
              ('pcmk_reboot_action', 'off')], {'interval': '30s'})
        clone = ET.SubElement(res, 'clone', id='sgnfsd-clone')
        prim(clone, 'sgnfsd', 'ocf', 'sgnfsd',
             [('config', self.cfg), ('sgnfsd', SGNFSD), ('sgnfsctl', SGNFSCTL)],
             {'interval': '2s', 'timeout': '20s'}, provider='sgnfs')
        cons = conf.find('constraints')
        for i, g in enumerate(GROUPS):
            grp = ET.SubElement(res, 'group', id=g)
            prim(grp, g + '-fs', 'ocf', 'Filesystem',
                 [('device', self.dev[g]), ('directory', self.mnt[g]), ('fstype', 'ext4')],
                 {'interval': '10s', 'timeout': '40s'}, provider='heartbeat')
            prim(grp, g + '-vip', 'ocf', 'IPaddr2',
                 [('ip', vip(g)), ('cidr_netmask', '24'), ('nic', 'pcmk0')],
                 {'interval': '10s', 'timeout': '20s'}, provider='heartbeat')
            prim(grp, g + '-sg', 'ocf', 'group',
                 [('config', self.cfg), ('group', g), ('sgnfsd', SGNFSD),
                  ('sgnfsctl', SGNFSCTL)], {'interval': '2s', 'timeout': '20s'},
                 provider='sgnfs')
            ET.SubElement(cons, 'rsc_order', id='order-' + g, first='sgnfsd-clone', then=g,
                          kind='Mandatory')
            ET.SubElement(cons, 'rsc_colocation', id='colo-' + g, rsc=g,
                          **{'with-rsc': 'sgnfsd-clone', 'score': 'INFINITY'})
            ET.SubElement(cons, 'rsc_location', id='prefer-' + g, rsc=g,
                          node='n%d' % (i + 1), score='50')
        path = os.path.join(c.tmp, 'cib.xml')
        with open(path, 'wb') as f:
            f.write(ET.tostring(cib))
        p = m1.run(['cibadmin', '--replace', '--xml-file', path], check=False)
        self.ck.require(p.returncode == 0, 'cibadmin --replace installs the configuration (%s)'
                        % p.stdout.strip()[:300])

    # -- observing -------------------------------------------------------
    def where(self, g):
        """Machines on which crm_mon shows g's sgnfs resource started."""
        m = next(x for x in self.c.machines if x.alive())
        p = m.run(['crm_resource', '--locate', '--resource', g + '-sg'], check=False,
                  timeout=30)
        return re.findall(r'is running on: (\S+)', p.stdout)

    def online_on(self, g, mname):
        return self.status_of(g, mname)[0] == 0

    def status_of(self, g, mname):
        """(exit code, output) of sgnfsctl -n MNAME status G on MNAME."""
        m = self.c.m(mname)
        if not m.alive():
            return 7, 'machine is off'
        p = m.run([SGNFSCTL, '-c', self.cfg, '-n', mname, 'status', g], check=False,
                  timeout=30)
        return p.returncode, p.stdout.strip()

    def wait_online(self, g, timeout=90, exclude=()):
        """Wait until some machine (not in @exclude) serves g; its name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for mname in self.where(g):
                if mname not in exclude and self.online_on(g, mname):
                    return mname
            time.sleep(0.2)
        return None

    def locks_of(self, g, mname, client):
        """The locks @client holds in g on @mname (node status JSON)."""
        p = self.c.m(mname).run([SGNFSCTL, '-c', self.cfg, 'status', '--json'],
                                check=False, timeout=30)
        try:
            doc = json.loads(p.stdout)
            node = next(n for n in doc['nodes'] if n['name'] == mname)
            grp = next(x for x in node['status']['groups'] if x['name'] == g)
        except (ValueError, KeyError, TypeError, StopIteration):
            return ['no status of %s on %s' % (g, mname)]
        return [lk for lk in grp.get('locks', []) if lk.get('client') == client]

    def nsm_state(self, g, mname):
        p = self.c.m(mname).run(['cat', os.path.join(self.mnt[g], '.sgnfs', 'state')],
                                check=False)
        try:
            return int(p.stdout.split()[0])
        except (ValueError, IndexError):
            return None

    # -- clients ---------------------------------------------------------
    def hold(self, g, host):
        logp = os.path.join(self.c.tmp, 'client-%s.log' % g)
        f = open(logp, 'ab')
        argv = self.c.client_argv([CLIENT, '--server', vip(g), '--host', host, '--callbacks',
                                   '--timeout', '3000', 'hold', self.mnt[g] + '/f', '0', '8'])
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.PIPE,
                             start_new_session=True)
        f.close()
        self.c.client_procs.append(p)
        self.holds[g] = (p, logp)
        return p

    def client_log(self, g):
        with open(self.holds[g][1], errors='replace') as f:
            return f.read()

    def wait_client(self, g, pattern, timeout=60, after=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            txt = self.client_log(g)
            if re.search(pattern, txt[after:]):
                return True
            if self.holds[g][0].poll() is not None:
                return False
            time.sleep(0.2)
        return False

    def lock_once(self, g, host, start):
        """One fresh lock + unlock on g from @host; sgnfs-client's exit code
        (the unlock's when the lock was granted).  Both name the same owner
        (--svid): an unlock from another owner would leave the lock held, and
        the next move of g would then reserve it for a host that never
        reclaims."""
        def run(cmd):
            return subprocess.run(self.c.client_argv(
                [CLIENT, '--server', vip(g), '--host', host, '--timeout', '3000',
                 '--svid', '4242', cmd, self.mnt[g] + '/f', str(start), '1']),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        p = run('lock')
        out = p.stdout.decode(errors='replace').strip()
        if p.returncode != 0:
            return p.returncode, out
        u = run('unlock')
        return u.returncode, out + ' / unlock: ' + u.stdout.decode(errors='replace').strip()


class Watch(threading.Thread):
    """While a failover runs: poll that @groups stay online on their
    machines, and take fresh locks on them."""

    def __init__(self, s, placement):
        super().__init__(daemon=True)
        self.s = s
        self.placement = dict(placement)
        self.stop_ev = threading.Event()
        self.samples = {g: [] for g in placement}
        self.locks = {g: [] for g in placement}

    def run(self):
        k = 0
        while not self.stop_ev.is_set():
            for i, (g, mname) in enumerate(self.placement.items()):
                self.samples[g].append(self.s.status_of(g, mname))
                rc, out = self.s.lock_once(g, '%s.%d' % (pc.SUBNET, 57 + i), 100 + k)
                self.locks[g].append((rc, out))
            k += 1


def kill_corosync(s, mname, ck, token):
    """Kill @mname's corosync; check fencing and that its groups move while
    the others never pause.  Returns {group: seconds to online}."""
    c = s.c
    mine = [g for g in GROUPS if mname in s.where(g)]
    others = {g: s.where(g)[0] for g in GROUPS if g not in mine}
    states = {g: s.nsm_state(g, m) for g, m in others.items()}
    offsets = {g: len(s.client_log(g)) for g in mine}
    w = Watch(s, others)
    w.start()
    time.sleep(1)
    m = c.m(mname)
    pids = m.pid_of('corosync')
    ck.require(pids, '%s runs corosync' % mname)
    t0 = time.monotonic()
    for p in pids:
        os.kill(p, signal.SIGKILL)
    log('token %d ms: killed corosync of %s (groups %s)' % (token, mname, ' '.join(mine)))
    took = {}
    for g in mine:
        to = s.wait_online(g, timeout=120, exclude=(mname,))
        took[g] = time.monotonic() - t0
        ck.check(to is not None, 'token %d: %s online again on %s, %.1f s after the kill of '
                 '%s\'s corosync' % (token, g, to, took[g], mname))
    w.stop_ev.set()
    w.join(timeout=60)
    # Fenced: the fence agent killed every process of the machine.
    deadline = time.monotonic() + 30
    while m.holder.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    ck.check(m.holder.poll() is not None and not pc.procs_in_netns(m.netns_ino()),
             '%s was fenced: none of its processes is left' % mname)
    alive = next(x for x in c.machines if x.alive())
    p = alive.run(['stonith_admin', '--history', mname], check=False)
    ck.check('successful' in p.stdout or 'succeeded' in p.stdout,
             'the fencing history shows %s fenced (%s)' % (mname, p.stdout.strip()[:200]))
    for g in mine:
        ck.check(s.wait_client(g, r'event=reclaimed', timeout=60, after=offsets[g]),
                 'token %d: %s\'s client was notified and reclaimed its lock' % (token, g))
    for g, mn in others.items():
        # A sample that says offline or failed is a pause; a query that did
        # not get an answer (the control socket timed out on this loaded
        # host) is shown, not counted: the fresh locks below and the state
        # number say whether the group paused.
        paused = [x for x in w.samples[g] if x[0] == 7 or 'offline' in x[1] or
                  'failed on node' in x[1]]
        unanswered = [x for x in w.samples[g] if x[0] != 0 and x not in paused]
        ck.check(w.samples[g] and not paused,
                 'token %d: %s online on %s in every one of %d status samples during the '
                 'failover (%d unanswered: %s)' % (token, g, mn, len(w.samples[g]),
                                                   len(unanswered), unanswered[:3]))
        codes = [rc for rc, _ in w.locks[g]]
        ck.check(codes and all(rc == 0 for rc in codes),
                 'token %d: every one of %d fresh locks on %s during the failover was '
                 'granted (exit codes %s)' % (token, len(codes), g, codes))
        left = s.locks_of(g, mn, '%s.%d' % (pc.SUBNET, 57 + list(others).index(g)))
        ck.check(left == [], 'token %d: %s holds none of those fresh locks once each was '
                 'unlocked (%s)' % (token, g, left[:3]))
        ck.check(s.nsm_state(g, mn) == states[g],
                 'token %d: %s\'s NSM state number unchanged (%s)' % (token, g, states[g]))
    return took


def test(ck):
    c = pc.Cluster(token_ms=1000)
    s = Setup(c, ck)
    failed = True
    figures = {}
    try:
        t_boot = time.monotonic()
        c.boot()
        c.client_ns()
        s.storage()
        c.wait_quorum()
        log('quorum %.1f s after boot' % (time.monotonic() - t_boot))
        p = c.machines[0].run(['corosync-cmapctl', 'runtime.config.totem.token'], check=False)
        ck.check('= 1650' in p.stdout, 'the running token is 1000 + 650 ms for the third '
                 'node (%s)' % p.stdout.strip())
        s.resources()

        # 1. placement, clients -------------------------------------------
        for i, g in enumerate(GROUPS):
            on = s.wait_online(g, timeout=120)
            ck.require(on == 'n%d' % (i + 1), '%s online on its preferred machine n%d (%s)'
                       % (g, i + 1, on))
        for i, g in enumerate(GROUPS):
            s.hold(g, '%s.%d' % (pc.SUBNET, 51 + i))
            ck.require(s.wait_client(g, r'event=holding', timeout=30),
                       '%s\'s client holds its lock through %s' % (g, vip(g)))

        # 2. node failure, token 1000 ms ------------------------------------
        figures[1000] = kill_corosync(s, 'n1', ck, 1000)

        # 3. planned move --------------------------------------------------
        off = len(s.client_log('g2'))
        d_before = c.m('n2').pid_of('sgnfsd')
        p = c.pcs(['resource', 'move', 'g2', 'n3'], check=False)
        ck.check(p.returncode == 0, 'pcs resource move g2 n3: %s' % p.stdout.strip()[:200])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not s.online_on('g2', 'n3'):
            time.sleep(0.2)
        ck.check(s.online_on('g2', 'n3') and not s.online_on('g2', 'n2'),
                 'g2 moved: online on n3, not on n2')
        ck.check(s.wait_client('g2', r'event=reclaimed', timeout=60, after=off),
                 'g2\'s client reclaimed after the planned move')
        # A clean move: sgnfsd on n2 let go of the LUN itself (stop), so
        # Filesystem's stop did not have to kill it to unmount.
        ck.check(d_before and c.m('n2').pid_of('sgnfsd') == d_before,
                 'n2\'s sgnfsd survived the move (%s -> %s): the group stop released the '
                 'storage' % (d_before, c.m('n2').pid_of('sgnfsd')))
        c.pcs(['resource', 'clear', 'g2'], check=False)

        # 4. kill -9 of one sgnfsd -------------------------------------------
        m3 = c.m('n3')
        pids = m3.pid_of('sgnfsd')
        ck.require(len(pids) == 1, 'n3 runs one sgnfsd (%s)' % pids)
        os.kill(pids[0], signal.SIGKILL)
        t_k = time.monotonic()
        back = {}
        for g in ('g2', 'g3'):
            back[g] = s.wait_online(g, timeout=120)
        ck.check(all(back.values()), 'after kill -9 of n3\'s sgnfsd, g2 and g3 are online '
                 'again (%s) after %.1f s' % (back, time.monotonic() - t_k))
        new = m3.pid_of('sgnfsd')
        ck.check(new and new != pids, 'Pacemaker restarted n3\'s sgnfsd (%s -> %s)'
                 % (pids, new))

        # 5. n1 back, token 3000 ms, node failure again --------------------
        m1 = c.m('n1')
        before = {g: s.where(g) for g in GROUPS}
        before_state = {g: s.nsm_state(g, before[g][0]) for g in GROUPS if before[g]}
        m1.boot()
        m1.start_cluster_stack()
        c.wait_quorum(timeout=120)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (
                m1.pid_of('sgnfsd') and m1.run([SGNFSCTL, '-c', s.cfg, '-n', 'n1', 'ping'],
                                               check=False).returncode == 0):
            time.sleep(0.5)
        ck.check(bool(m1.pid_of('sgnfsd')), 'n1 rejoined and runs its sgnfsd clone instance')
        # Let Pacemaker finish what the rejoin made it do, then see that it
        # did not move or restart any group (stickiness beats the location
        # preference; a new sgnfsd instance must not restart groups served
        # elsewhere).
        p = m1.run(['crm_resource', '--wait', '--timeout', '120'], check=False, timeout=150)
        ck.check(p.returncode == 0, 'the cluster settled after n1 rejoined (%s)'
                 % (p.stdout or '').strip()[:200])
        for g in GROUPS:
            on = s.wait_online(g, timeout=120)
            ck.check(on is not None and [on] == before[g],
                     'after n1 rejoined, %s is still served where it was (%s -> %s)'
                     % (g, before[g], on))
            ck.check(on is not None and s.nsm_state(g, on) == before_state.get(g),
                     'after n1 rejoined, %s was not restarted (NSM state %s -> %s)'
                     % (g, before_state.get(g), on and s.nsm_state(g, on)))
        c.token_ms = 3000
        for m in c.machines:
            with open(os.path.join(m.root, 'etc-corosync', 'corosync.conf'), 'w') as f:
                f.write(c.corosync_conf())
        p = m1.run(['corosync-cfgtool', '-R'], check=False)
        ck.check(p.returncode == 0, 'corosync-cfgtool -R (token 3000 ms)')
        # corosync adds token_coefficient (650 ms) per node beyond two.
        p = m1.run(['corosync-cmapctl', 'totem.token'], check=False)
        ck.check('= 3000' in p.stdout, 'the configured token is 3000 ms (%s)' % p.stdout.strip())
        p = m1.run(['corosync-cmapctl', 'runtime.config.totem.token'], check=False)
        ck.check('= 3650' in p.stdout, 'the running token is 3000 + 650 ms for the third node '
                 '(%s)' % p.stdout.strip())
        victim = s.wait_online('g1', timeout=120)
        ck.require(victim is not None, 'g1 is served somewhere before the last kill')
        figures[3000] = kill_corosync(s, victim, ck, 3000)
        failed = ck.failed > 0
    except Fail:
        pass
    except Exception:
        traceback.print_exc()
        ck.check(False, 'no exception')
    finally:
        for tok, took in sorted(figures.items()):
            for g, t in sorted(took.items()):
                print('MEASURED token %d ms: kill of the owner\'s corosync -> %s online on '
                      'another machine: %.1f s' % (tok, g, t))
        if failed or ck.failed:
            for g in s.holds:
                print('==== client %s ====' % g)
                print(s.client_log(g)[-3000:])
        c.destroy(failed=failed or ck.failed > 0)


def main():
    if os.geteuid() != 0:
        print('SKIP: needs root')
        return SKIP
    for tool in ('corosync', 'pacemakerd', 'pcs', 'crm_mon', 'crm_resource', 'stonith_admin',
                 'losetup', 'mkfs.ext4', 'nsenter', 'unshare'):
        if not shutil.which(tool):
            print('SKIP: %s not installed' % tool)
            return SKIP
    if not os.path.exists('/usr/lib/ocf/resource.d/heartbeat/IPaddr2') or \
       not os.path.exists('/usr/share/fence/fencing.py'):
        print('SKIP: resource-agents or fence-agents not installed')
        return SKIP
    if not (SGNFSD and SGNFSCTL and CLIENT):
        print('SKIP: SGNFSD, SGNFSCTL and SGNFS_CLIENT must name the programs')
        return SKIP
    ck = Checks()

    def on_term(signum, frame):
        raise Fail('signal %d' % signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    test(ck)
    # Repeated after the daemons' logs so that a tail of the output names
    # what failed.
    for what in ck.failures:
        print('FAILED - ' + what)
    print('test_pacemaker: %s (%d checks, %d failed)'
          % ('PASS' if ck.failed == 0 else 'FAIL', ck.n, ck.failed))
    return 0 if ck.failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
