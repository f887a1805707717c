"""
pcmk_cluster.py - a real Corosync + Pacemaker cluster of "machines" made
of Linux namespaces on this one host, for the sgnfs Pacemaker test.

Each machine (n1, n2, n3) is
  * a network namespace pcmk-nN, with one veth (pcmk0, 10.231.0.1N/24)
    plugged into the bridge pcmkbr0, which lives in a namespace of its own
    (pcmk-br), so the cluster's traffic never touches the host's network;
  * a mount namespace (private propagation) in which /etc/corosync,
    /var/lib/pacemaker, /var/lib/corosync, /var/log/{pacemaker,cluster},
    /run and /dev/shm are the machine's own (bind mounts of <tmp>/nN/...,
    tmpfs for /run and /dev/shm); /usr/sbin and /usr/lib/ocf/resource.d
    are overlays that add this tree's fence and resource agents, so the
    host's directories are never written;
  * a UTS namespace with hostname nN.
One process, the holder (`sleep`), keeps the namespaces alive; everything
else enters them with nsenter.  corosync and pacemakerd run in the
foreground, started directly (no systemd).  Fencing is fence_sgnfs_ns,
which kills every process of the victim's network namespace (holder
included): the machine is "powered off" and its mounts go with it.

Cleanup (Cluster.destroy, always called by the test's finally and by the
signal handlers) powers every machine off the same way, deletes the
namespaces and detaches loop devices the test attached.

Only one such cluster runs at a time on a host (an exclusive flock on
/run/pcmk-sgnfs-test.lock): names and addresses are fixed.
"""

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCROOT = os.path.dirname(os.path.dirname(HERE))
LOCK = '/run/pcmk-sgnfs-test.lock'
BR_NS = 'pcmk-br'
BRIDGE = 'pcmkbr0'
SUBNET = '10.231.0'


def log(msg):
    sys.stdout.write('[%s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stdout.flush()


def sh(argv, check=True, timeout=60, input=None):
    """Run @argv on the host; returns CompletedProcess (text)."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise RuntimeError('%s -> %d: %s' % (' '.join(argv), p.returncode, p.stdout))
    return p


def procs_in_netns(ino):
    out = []
    for d in os.listdir('/proc'):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            if os.stat('/proc/%s/ns/net' % d).st_ino == ino:
                out.append(int(d))
        except OSError:
            pass
    return out


def kill_netns_procs(ino):
    for _ in range(100):
        pids = procs_in_netns(ino)
        if not pids:
            return True
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return False


class Machine:
    def __init__(self, cluster, idx):
        self.c = cluster
        self.idx = idx
        self.name = 'n%d' % idx
        self.ns = 'pcmk-' + self.name
        self.addr = '%s.%d' % (SUBNET, 10 + idx)
        self.root = os.path.join(cluster.tmp, self.name)
        self.holder = None
        self.procs = []

    # -- running things inside ------------------------------------------
    def argv(self, argv):
        return ['nsenter', '-t', str(self.holder.pid), '-m', '-u', '-n', '--'] + list(argv)

    def run(self, argv, check=True, timeout=60, env=None, input=None):
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run(self.argv(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout, env=e, input=input)
        if check and p.returncode != 0:
            raise RuntimeError('%s: %s -> %d: %s' % (self.name, ' '.join(argv), p.returncode,
                                                     p.stdout))
        return p

    def spawn(self, argv, logname, env=None):
        e = dict(os.environ)
        e.update(env or {})
        f = open(os.path.join(self.root, 'log', logname), 'ab')
        p = subprocess.Popen(self.argv(argv), stdout=f, stderr=subprocess.STDOUT, env=e,
                             start_new_session=True)
        f.close()
        self.procs.append(p)
        return p

    def netns_ino(self):
        return os.stat('/run/netns/' + self.ns).st_ino

    def alive(self):
        return self.holder is not None and self.holder.poll() is None

    # -- boot and power off -----------------------------------------------
    def boot(self):
        self.procs = []
        r = self.root
        if self.holder is not None:
            # A reboot: the network namespace outlived the fenced machine,
            # but a real machine comes back with only its own address (a
            # VIP left on pcmk0 would make IPaddr2's probe report the group
            # active here, and Pacemaker would restart it where it runs).
            sh(['ip', '-n', self.ns, 'addr', 'flush', 'dev', 'pcmk0'])
            sh(['ip', '-n', self.ns, 'addr', 'add', self.addr + '/24', 'dev', 'pcmk0'])
        dirs = ['etc-corosync', 'var-lib-pacemaker/cib', 'var-lib-pacemaker/pengine',
                'var-lib-pacemaker/blackbox', 'var-lib-pacemaker/cores', 'var-lib-corosync',
                'var-log-pacemaker', 'var-log-cluster', 'log']
        for d in dirs:
            os.makedirs(os.path.join(r, d), exist_ok=True)
        sh(['chown', '-R', 'hacluster:haclient', os.path.join(r, 'var-lib-pacemaker'),
            os.path.join(r, 'var-log-pacemaker')])
        with open(os.path.join(r, 'etc-corosync', 'corosync.conf'), 'w') as f:
            f.write(self.c.corosync_conf())
        self.holder = subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, 'unshare', '--mount', '--uts',
             '--propagation', 'private', 'sleep', 'infinity'], start_new_session=True)
        # The holder is ready once its mount namespace differs from ours.
        for _ in range(200):
            try:
                if os.stat('/proc/%d/ns/mnt' % self.holder.pid).st_ino != \
                   os.stat('/proc/self/ns/mnt').st_ino and \
                   os.readlink('/proc/%d/exe' % self.holder.pid).endswith('sleep'):
                    break
            except OSError:
                pass
            time.sleep(0.02)
        binds = [('etc-corosync', '/etc/corosync'),
                 ('var-lib-pacemaker', '/var/lib/pacemaker'),
                 ('var-lib-corosync', '/var/lib/corosync'),
                 ('var-log-pacemaker', '/var/log/pacemaker')]
        script = ['set -e', 'hostname %s' % self.name]
        for src, dst in binds:
            script.append('mount --bind %s %s' % (os.path.join(r, src), dst))
        script += [
            'mkdir -p /var/log/cluster && mount --bind %s /var/log/cluster'
            % os.path.join(r, 'var-log-cluster'),
            'mount -t tmpfs -o mode=755 pcmk-run /run',
            'mkdir -p /run/sgnfs',
            'mount -t tmpfs -o mode=1777 pcmk-shm /dev/shm',
            'mount -t overlay pcmk-sbin -o lowerdir=%s:/usr/sbin /usr/sbin'
            % self.c.sbin_extra,
            'mount -t overlay pcmk-ocf -o lowerdir=%s:/usr/lib/ocf/resource.d '
            '/usr/lib/ocf/resource.d' % self.c.ocf_extra,
            'ip link set lo up',
        ]
        self.run(['sh', '-c', '\n'.join(script)])
        with open(os.path.join(self.c.node_dir, self.name + '.ns'), 'w') as f:
            f.write('%d %d\n' % (self.holder.pid, self.netns_ino()))

    def start_cluster_stack(self):
        self.spawn(['corosync', '-f'], 'corosync.out')
        # pacemakerd waits for corosync itself; the environment says where
        # its daemons log (no syslog here).
        self.spawn(['pacemakerd'], 'pacemakerd.out',
                   env={'PCMK_logfile': '/var/log/pacemaker/pacemaker.log',
                        'PCMK_debug': 'no'})

    def power_off(self):
        """Like fence_sgnfs_ns: every process of the machine dies at once."""
        if self.holder is None:
            return
        try:
            kill_netns_procs(self.netns_ino())
        except OSError:
            pass
        self.holder.wait(timeout=10)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []

    def pid_of(self, exe):
        """Pids of processes of this machine whose executable is @exe."""
        out = []
        for p in procs_in_netns(self.netns_ino()):
            try:
                if os.path.basename(os.readlink('/proc/%d/exe' % p)) == exe:
                    out.append(p)
            except OSError:
                pass
        return out


class Cluster:
    def __init__(self, nnodes=3, token_ms=1000, keep=False):
        self.nnodes = nnodes
        self.token_ms = token_ms
        self.keep = keep or os.environ.get('SGNFS_KEEP_TMP') == '1'
        self.lockf = open(LOCK, 'w')
        fcntl.flock(self.lockf, fcntl.LOCK_EX)
        self.tmp = tempfile.mkdtemp(prefix='pcmk-sgnfs-')
        os.chmod(self.tmp, 0o755)
        self.node_dir = os.path.join(self.tmp, 'machines')
        self.sbin_extra = os.path.join(self.tmp, 'sbin-extra')
        self.ocf_extra = os.path.join(self.tmp, 'ocf-extra')
        for d in (self.node_dir, self.sbin_extra, os.path.join(self.ocf_extra, 'sgnfs')):
            os.makedirs(d)
        shutil.copy(os.path.join(HERE, 'fence_sgnfs_ns'), self.sbin_extra)
        for a in ('sgnfsd', 'group'):
            shutil.copy(os.path.join(SRCROOT, 'ocf', a), os.path.join(self.ocf_extra, 'sgnfs'))
        self.machines = [Machine(self, i + 1) for i in range(nnodes)]
        self.loops = []
        self.client = None          # (netns name, address) once made
        self.client_procs = []
        self.destroyed = False

    def corosync_conf(self):
        nodes = ''.join('\tnode {\n\t\tring0_addr: %s\n\t\tname: %s\n\t\tnodeid: %d\n\t}\n'
                        % (m.addr, m.name, m.idx) for m in self.machines)
        return ('totem {\n\tversion: 2\n\tcluster_name: pcmk-sgnfs\n\ttransport: knet\n'
                '\ttoken: %d\n\tcrypto_cipher: none\n\tcrypto_hash: none\n}\n'
                'logging {\n\tto_logfile: yes\n\tlogfile: /var/log/cluster/corosync.log\n'
                '\tto_syslog: no\n\tto_stderr: no\n\ttimestamp: on\n}\n'
                'quorum {\n\tprovider: corosync_votequorum\n}\n'
                'nodelist {\n%s}\n' % (self.token_ms, nodes))

    def m(self, name):
        return next(x for x in self.machines if x.name == name)

    # -- lifecycle -------------------------------------------------------
    def _clean_leftovers(self):
        """Namespaces of an earlier run that was killed before cleanup."""
        p = sh(['ip', 'netns', 'list'], check=False)
        for line in p.stdout.splitlines():
            name = line.split()[0] if line.split() else ''
            if name.startswith('pcmk-'):
                try:
                    kill_netns_procs(os.stat('/run/netns/' + name).st_ino)
                except OSError:
                    pass
                sh(['ip', 'netns', 'del', name], check=False)

    def network(self):
        self._clean_leftovers()
        sh(['ip', 'netns', 'add', BR_NS])
        sh(['ip', '-n', BR_NS, 'link', 'add', BRIDGE, 'type', 'bridge'])
        sh(['ip', '-n', BR_NS, 'link', 'set', BRIDGE, 'up'])
        for m in self.machines:
            sh(['ip', 'netns', 'add', m.ns])
            host, peer = 'pcmk-%sb' % m.name, 'pcmk-%sm' % m.name
            sh(['ip', 'link', 'add', host, 'netns', BR_NS, 'type', 'veth', 'peer', 'name',
                peer, 'netns', m.ns])
            sh(['ip', '-n', BR_NS, 'link', 'set', host, 'master', BRIDGE, 'up'])
            sh(['ip', '-n', m.ns, 'link', 'set', peer, 'name', 'pcmk0'])
            sh(['ip', '-n', m.ns, 'addr', 'add', m.addr + '/24', 'dev', 'pcmk0'])
            sh(['ip', '-n', m.ns, 'link', 'set', 'pcmk0', 'up'])
            sh(['ip', '-n', m.ns, 'link', 'set', 'lo', 'up'])

    def client_ns(self, addr_last=50):
        """A client host on the bridge: netns pcmk-cl, 10.231.0.@addr_last."""
        ns, addr = 'pcmk-cl', '%s.%d' % (SUBNET, addr_last)
        sh(['ip', 'netns', 'add', ns])
        sh(['ip', 'link', 'add', 'pcmk-clb', 'netns', BR_NS, 'type', 'veth', 'peer', 'name',
            'pcmk0', 'netns', ns])
        sh(['ip', '-n', BR_NS, 'link', 'set', 'pcmk-clb', 'master', BRIDGE, 'up'])
        sh(['ip', '-n', ns, 'addr', 'add', addr + '/24', 'dev', 'pcmk0'])
        for i in range(1, 10):    # more client host addresses
            sh(['ip', '-n', ns, 'addr', 'add', '%s.%d/24' % (SUBNET, addr_last + i),
                'dev', 'pcmk0'])
        sh(['ip', '-n', ns, 'link', 'set', 'pcmk0', 'up'])
        sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
        self.client = (ns, addr)
        return ns

    def client_argv(self, argv):
        return ['ip', 'netns', 'exec', self.client[0]] + list(argv)

    def boot(self):
        self.network()
        for m in self.machines:
            m.boot()
        for m in self.machines:
            m.start_cluster_stack()

    def wait_quorum(self, timeout=120):
        """Every machine that runs sees all running machines online and the
        cluster quorate with a DC elected."""
        deadline = time.time() + timeout
        want = [m.name for m in self.machines if m.alive()]
        last = ''
        while time.time() < deadline:
            ok = True
            for m in self.machines:
                if not m.alive():
                    continue
                p = m.run(['crm_mon', '-1', '-X'], check=False, timeout=30)
                last = p.stdout
                if p.returncode != 0 or 'with_quorum="true"' not in p.stdout:
                    ok = False
                    break
                for n in want:
                    if ('name="%s"' % n) not in p.stdout or \
                       not self._node_online(p.stdout, n):
                        ok = False
                if not ok:
                    break
            if ok:
                return
            time.sleep(1)
        raise RuntimeError('no quorum within %ds; last crm_mon:\n%s' % (timeout, last))

    @staticmethod
    def _node_online(xml, name):
        i = xml.find('<node name="%s"' % name)
        if i < 0:
            return False
        j = xml.find('>', i)
        return 'online="true"' in xml[i:j]

    def pcs(self, args, on=None, check=True, timeout=120):
        m = on or next(x for x in self.machines if x.alive())
        return m.run(['pcs'] + list(args), check=check, timeout=timeout)

    def losetup(self, image):
        p = sh(['losetup', '--find', '--show', image])
        dev = p.stdout.strip()
        self.loops.append(dev)
        return dev

    def destroy(self, failed=False):
        if self.destroyed:
            return
        self.destroyed = True
        for m in self.machines:
            try:
                m.power_off()
            except Exception as e:  # keep cleaning the rest
                log('cleanup %s: %s' % (m.name, e))
        for p in self.client_procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.client:
            try:
                kill_netns_procs(os.stat('/run/netns/' + self.client[0]).st_ino)
            except OSError:
                pass
            sh(['ip', 'netns', 'del', self.client[0]], check=False)
        for dev in self.loops:
            sh(['losetup', '-d', dev], check=False)
        for m in self.machines:
            sh(['ip', 'netns', 'del', m.ns], check=False)
        sh(['ip', 'netns', 'del', BR_NS], check=False)
        if failed:
            self.dump_logs()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log('kept %s' % self.tmp)
        fcntl.flock(self.lockf, fcntl.LOCK_UN)
        self.lockf.close()

    def dump_logs(self):
        for m in self.machines:
            for rel in ('log', 'var-log-pacemaker', 'var-log-cluster'):
                d = os.path.join(m.root, rel)
                if not os.path.isdir(d):
                    continue
                for fn in sorted(os.listdir(d)):
                    path = os.path.join(d, fn)
                    if not os.path.isfile(path):
                        continue
                    with open(path, errors='replace') as f:
                        lines = f.readlines()
                    sys.stdout.write('==== %s %s/%s (last 150 lines) ====\n'
                                     % (m.name, rel, fn))
                    sys.stdout.writelines(lines[-150:])
        sys.stdout.flush()
