"""
vm_util.py - unmodified Linux kernel NFS clients (qemu guests) against real
sgnfsd nodes, for the kernel-client tests (tests/vm/test_vm_*.py), on top of
tests/integration/harness.py and nsm_util.py.

Topology (a "VmLab"), all inside one network namespace this process makes:

    netns kvm<K>
      bridge kvmbr0: 10.77.K.11, .21, ... (group VIPs)
      sgnfsd -n a, -n b (through a wrapper that enters the namespace)
      tap kvmtap0 -> qemu guest 0, 10.77.K.101 (hostname kvmc0)
      tap kvmtap1 -> qemu guest 1, 10.77.K.102 (hostname kvmc1) ...

  * K (1..250) is reserved with an exclusive flock on
    /tmp/sgnfs-kvm-slots/K.lock; a namespace kvm<K> left by a killed run
    is removed first.  Nothing is added outside the namespace.
  * The guest (kernel + RAM root, tests/vm/build-guest.sh) is built once
    and cached in $SGNFS_VM_CACHE (default /var/cache/sgnfs-vm) under a hash
    of the recipe (build script, guest init, the machine's apt sources).
  * qemu runs under software emulation (-accel tcg), 1 GiB per guest.  Its
    serial console goes to the test's log; a virtio-serial port carries the
    agent protocol (guest/agent.py): each command's exit status and output.
    The tool share (tests/vm/guest, read-only 9p) holds the agent and the
    lock tool; a per-guest state directory (9p) is the guest's
    /var/lib/nfs, so statd's monitor list survives a guest reboot.
  * On failure, close() saves every live guest's dmesg and statd log into
    the test's log; it always kills qemu, the nodes and the namespace.

Python 3 standard library only.
"""

import base64
import fcntl
import hashlib
import os
import random
import shutil
import socket
import subprocess
import threading
import time

import harness
import nsm_util
from harness import Skip, TestAbort, log

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_DIR = os.path.join(HERE, 'guest')
SLOT_DIR = '/tmp/sgnfs-kvm-slots'
# The lab's namespace is <prefix><K>; a prefix of one's own keeps runs of
# several people on one machine apart by name (the slots stay shared).
NS_PREFIX = os.environ.get('SGNFS_VM_NS_PREFIX', 'kvm')
BOOT_TIMEOUT = int(os.environ.get('SGNFS_VM_BOOT_TIMEOUT', '180'))


# ---------------------------------------------------------------------------
# The guest image


def _recipe_hash():
    h = hashlib.sha256()
    for p in (os.path.join(HERE, 'build-guest.sh'), os.path.join(GUEST_DIR, 'init')):
        with open(p, 'rb') as f:
            h.update(f.read())
    # The image is what this machine's apt serves.
    for d in ('/etc/apt/sources.list', '/etc/apt/sources.list.d'):
        paths = [d] if os.path.isfile(d) else \
            sorted(os.path.join(d, n) for n in os.listdir(d)) if os.path.isdir(d) else []
        for p in paths:
            if os.path.isfile(p):
                with open(p, 'rb') as f:
                    h.update(p.encode() + f.read())
    return h.hexdigest()[:16]


def need_tools():
    """Skip unless this machine can run guests at all."""
    if os.geteuid() != 0:
        raise Skip('kernel-client tests need root (netns, tap, mmdebstrap)')
    for t in ('qemu-system-x86_64', 'mmdebstrap', 'cpio', 'ip', 'chroot'):
        if not shutil.which(t):
            raise Skip('%s not installed (scripts/deps.sh installs it)' % t)
    if not os.path.exists('/dev/net/tun'):
        raise Skip('no /dev/net/tun')


def guest_image(h=None):
    """The cached guest directory (vmlinuz, initrd, kernel-version),
    building it first if needed (several minutes, once per recipe)."""
    need_tools()
    cache = os.environ.get('SGNFS_VM_CACHE', '/var/cache/sgnfs-vm')
    os.makedirs(cache, exist_ok=True)
    out = os.path.join(cache, 'guest-' + _recipe_hash())
    if os.path.exists(os.path.join(out, 'initrd')):
        return out
    lockfd = os.open(os.path.join(cache, 'build.lock'), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lockfd, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, 'initrd')):
            log('building the guest into %s (once per recipe)' % out)
            t0 = time.monotonic()
            argv = [os.path.join(HERE, 'build-guest.sh'), out]
            if h is not None:
                h.run(argv, timeout=1500, what='build-guest.sh')
            else:
                subprocess.run(argv, check=True, timeout=1500)
            if not os.path.exists(os.path.join(out, 'initrd')):
                raise TestAbort('build-guest.sh made no initrd')
            log('guest built in %.0f s' % (time.monotonic() - t0))
            # Older builds are of no use any more.
            for n in os.listdir(cache):
                if n.startswith('guest-') and os.path.join(cache, n) != out:
                    shutil.rmtree(os.path.join(cache, n), ignore_errors=True)
    finally:
        os.close(lockfd)
    return out


# ---------------------------------------------------------------------------
# One guest


class Guest:
    """A qemu guest on tap kvmtap<idx>; commands through the agent."""

    def __init__(self, lab, idx, name=None):
        self.lab = lab
        self.h = lab.h
        self.idx = idx
        self.name = name or 'kvmc%d' % idx
        self.addr = '%s.%d' % (lab.net, 101 + idx)
        self.tap = 'kvmtap%d' % idx
        self.statedir = os.path.join(lab.h.tmp, 'guest-%s-state' % self.name)
        os.makedirs(self.statedir, exist_ok=True)
        self.sock_path = os.path.join(lab.h.tmp, 'guest-%s.agent' % self.name)
        self.proc = None
        self.sock = None
        self.boots = 0
        self.boot_s = None
        self._cv = threading.Condition()
        self._done = {}
        self._hello = None
        self._next = 0
        self._reader = None

    # -- life ----------------------------------------------------------------

    def start(self, wait=True):
        lab = self.lab
        if self.boots == 0:
            nsm_util._ip('-n', lab.ns, 'tuntap', 'add', 'dev', self.tap, 'mode', 'tap')
            nsm_util._ip('-n', lab.ns, 'link', 'set', self.tap, 'master', 'kvmbr0')
            nsm_util._ip('-n', lab.ns, 'link', 'set', self.tap, 'up')
        self.boots += 1
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        mac = '52:54:00:77:%02x:%02x' % (lab.k, self.idx)
        append = ('console=ttyS0 panic=-1 quiet loglevel=4 sgvm.addr=%s/24 sgvm.name=%s'
                  % (self.addr, self.name))
        argv = ['ip', 'netns', 'exec', lab.ns, 'qemu-system-x86_64',
                '-name', 'sgnfs-%s' % self.name,
                '-accel', 'tcg', '-cpu', 'max', '-smp', '1', '-m', '1024',
                '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
                '-kernel', os.path.join(lab.image, 'vmlinuz'),
                '-initrd', os.path.join(lab.image, 'initrd'),
                '-append', append,
                '-serial', 'stdio',
                '-netdev', 'tap,id=n0,ifname=%s,script=no,downscript=no' % self.tap,
                '-device', 'virtio-net-pci,netdev=n0,mac=%s' % mac,
                '-device', 'virtio-rng-pci',
                '-device', 'virtio-serial-pci',
                '-chardev', 'socket,id=agent,path=%s,server=on,wait=off' % self.sock_path,
                '-device', 'virtserialport,chardev=agent,name=sgvm.agent',
                '-virtfs', 'local,path=%s,mount_tag=sgvm,security_model=none,readonly=on'
                % GUEST_DIR,
                '-virtfs', 'local,path=%s,mount_tag=state,security_model=passthrough'
                % self.statedir]
        self.t_start = time.monotonic()
        self.proc = self.h.spawn(argv, 'guest-%s.console.%d.log' % (self.name, self.boots))
        self._connect()
        if wait:
            self.wait_booted()
        return self

    def _connect(self):
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise TestAbort('qemu for %s exited with %s' % (self.name, self.proc.returncode))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock_path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise TestAbort('no agent socket for %s' % self.name)
                time.sleep(0.05)
        with self._cv:
            self.sock = s
            self._hello = None
            self._done = {}
        self._reader = threading.Thread(target=self._read, args=(s,), daemon=True)
        self._reader.start()

    def _read(self, s):
        buf = b''
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b''
            if not chunk:
                with self._cv:
                    if self.sock is s:
                        self.sock = None
                    self._cv.notify_all()
                return
            buf += chunk
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                parts = line.decode('ascii', 'replace').split(' ')
                with self._cv:
                    if parts[0] == 'HELLO' and len(parts) >= 2:
                        self._hello = parts[1]
                    elif parts[0] == 'DONE' and len(parts) >= 3:
                        out = base64.b64decode(parts[3]) if len(parts) > 3 else b''
                        self._done[parts[1]] = (int(parts[2]), out.decode('utf-8', 'replace'))
                    self._cv.notify_all()

    def wait_booted(self):
        deadline = time.monotonic() + BOOT_TIMEOUT
        with self._cv:
            while self._hello is None:
                if self.proc.poll() is not None:
                    raise TestAbort('guest %s stopped during boot (qemu status %s)'
                                    % (self.name, self.proc.returncode))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestAbort('guest %s did not boot within %d s' % (self.name, BOOT_TIMEOUT))
                self._cv.wait(min(left, 0.5))
        self.boot_s = time.monotonic() - self.t_start
        print('FIGURE: guest %s boot %d: %.1f s (qemu start to agent up; guest uptime %s s)'
              % (self.name, self.boots, self.boot_s, self._hello), flush=True)
        return self.boot_s

    def crash(self):
        """Power cut: qemu killed with SIGKILL; the guest's RAM is gone, its
        /var/lib/nfs (state share) stays."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        with self._cv:
            s, self.sock = self.sock, None
        if s is not None:
            s.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None and self.sock is not None

    # -- commands --------------------------------------------------------------

    def run(self, cmd, timeout=60, quiet=False):
        """Run @cmd (sh) in the guest; returns (exit status, output).  The
        host waits @timeout + 15 s at most (the agent kills it at @timeout)."""
        with self._cv:
            if self.sock is None:
                raise TestAbort('guest %s: agent not connected' % self.name)
            self._next += 1
            ident = '%d' % self._next
            msg = 'RUN %s %d %s\n' % (ident, timeout, base64.b64encode(cmd.encode()).decode())
            self.sock.sendall(msg.encode())
            deadline = time.monotonic() + timeout + 15
            while ident not in self._done:
                left = deadline - time.monotonic()
                if left <= 0 or self.sock is None:
                    raise TestAbort('guest %s: no answer to %r' % (self.name, cmd[:200]))
                self._cv.wait(min(left, 1.0))
            rc, out = self._done.pop(ident)
        if not quiet:
            text = out if len(out) < 4000 else out[:2000] + '\n[...]\n' + out[-1500:]
            log('[%s] $ %s -> %d%s' % (self.name, cmd, rc,
                                       ('\n' + text.rstrip()) if text.strip() else ''))
        return rc, out

    def ok(self, cmd, what=None, timeout=60):
        """Run @cmd; its exit status 0 is a check.  Returns the output."""
        rc, out = self.run(cmd, timeout=timeout)
        self.h.check(rc == 0, '%s: %s (exit %d)' % (self.name, what or cmd, rc))
        return out

    def must(self, cmd, what=None, timeout=60):
        """Like ok(), but a failure aborts the test."""
        rc, out = self.run(cmd, timeout=timeout)
        self.h.require(rc == 0, '%s: %s (exit %d)' % (self.name, what or cmd, rc))
        return out

    # -- NFS client helpers ----------------------------------------------------

    def setup(self, hosts, use_hostnames=False):
        """/etc/hosts (@hosts: name -> address), lockd's nsm_use_hostnames,
        then rpc.statd (foreground, debug log /var/log/statd.log)."""
        lines = ['127.0.0.1 localhost', '%s %s' % (self.addr, self.name)]
        lines += ['%s %s' % (a, n) for n, a in sorted(hosts.items())]
        self.must("printf '%s\\n' > /etc/hosts" % '\\n'.join(lines), 'write /etc/hosts')
        self.must('echo %d > /proc/sys/fs/nfs/nsm_use_hostnames' % (1 if use_hostnames else 0),
                  'nsm_use_hostnames = %d' % (1 if use_hostnames else 0))
        self.start_statd()

    def start_statd(self):
        # Registered with rpcbind once it logs that it waits for calls.
        self.must('L=/var/log/statd.log; W="Waiting for client connections"; '
                  'n=$(grep -c "$W" $L 2>/dev/null); '
                  'setsid rpc.statd -F -d </dev/null >>$L 2>&1 & '
                  'for i in $(seq 200); do [ "$(grep -c "$W" $L)" -gt "${n:-0}" ] && '
                  'rpcinfo -T udp 127.0.0.1 100024 1 >/dev/null && exit 0; sleep 0.1; done; exit 1',
                  'rpc.statd starts')

    def stop_statd(self):
        self.run('pkill -9 -x rpc.statd; for i in $(seq 50); do pgrep -x rpc.statd >/dev/null '
                 '|| exit 0; sleep 0.1; done; exit 1')

    def mount(self, server, export, mnt, opts='vers=3,proto=tcp', what=None):
        self.must('mkdir -p %s && mount -t nfs -o %s %s:%s %s' % (mnt, opts, server, export, mnt),
                  what or 'mount -o %s %s:%s %s' % (opts, server, export, mnt), timeout=120)

    def lock(self, op, path, start, length, typ='x', timeout=60):
        """vmlock.py OP once (try/test/flock): (exit status, first word)."""
        rc, out = self.run('python3 /sgvm/vmlock.py %s %s %d %d %s' % (op, path, start, length, typ),
                           timeout=timeout)
        words = out.split()
        return rc, (words[0] if words else '')

    def hold(self, tag, op, path, start, length, typ='x'):
        """Start vmlock.py OP ... hold in the background; its output goes to
        /tmp/hold-@tag.out.  Returns nothing; see held(), release()."""
        self.must('setsid python3 /sgvm/vmlock.py %s %s %d %d %s hold </dev/null '
                  '>/tmp/hold-%s.out 2>&1 & echo $! > /tmp/hold-%s.pid'
                  % (op, path, start, length, typ, tag, tag), 'start holder %s' % tag)

    def hold_state(self, tag):
        rc, out = self.run('cat /tmp/hold-%s.out' % tag, quiet=True)
        words = [ln.split()[0] for ln in out.splitlines() if ln.split()]
        return words[-1] if words else ''

    def wait_hold(self, tag, state='locked', timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            st = self.hold_state(tag)
            if st == state or (st and st != 'locked' and st != state and state == 'locked'):
                return st
            if time.monotonic() > deadline:
                return st
            time.sleep(0.2)

    def release(self, tag):
        self.run('kill $(cat /tmp/hold-%s.pid) 2>/dev/null; for i in $(seq 100); do '
                 'kill -0 $(cat /tmp/hold-%s.pid) 2>/dev/null || exit 0; sleep 0.1; done; exit 1'
                 % (tag, tag))

    def io_start(self, tag, path, pause=0.02):
        """Start vmio.py on @path in the background (small write + fsync,
        again and again); its lines go to /tmp/io-@tag.out."""
        self.must('setsid python3 /sgvm/vmio.py %s %s </dev/null >/tmp/io-%s.out 2>&1 & '
                  'echo $! > /tmp/io-%s.pid' % (path, pause, tag, tag), 'start I/O probe %s' % tag)

    def io_lines(self, tag):
        """[(ok, start, end)] of the probe's writes so far (guest clock)."""
        out = []
        for ln in self.run('cat /tmp/io-%s.out' % tag, quiet=True)[1].splitlines():
            f = ln.split()
            try:
                if len(f) == 3 and f[0] == 'ok':
                    out.append((True, float(f[1]), float(f[2])))
                elif len(f) == 4 and f[0] == 'err':
                    out.append((False, float(f[2]), float(f[3])))
            except ValueError:
                pass
        return out

    def io_count(self, tag):
        return sum(1 for ok, _, _ in self.io_lines(tag) if ok)

    def io_stop(self, tag):
        self.run('kill $(cat /tmp/io-%s.pid) 2>/dev/null; for i in $(seq 100); do '
                 'kill -0 $(cat /tmp/io-%s.pid) 2>/dev/null || exit 0; sleep 0.1; done; exit 1'
                 % (tag, tag))
        return self.io_lines(tag)

    def collect(self, why):
        """dmesg and the statd log into the test's logs."""
        if not self.alive():
            return
        for what, cmd in (('dmesg', 'dmesg'), ('statd', 'cat /var/log/statd.log'),
                          ('mounts', 'cat /proc/mounts; cat /proc/fs/nfsfs/servers 2>/dev/null; '
                                     'cat /proc/locks; ls -l /var/lib/nfs/sm /var/lib/nfs/sm.bak')):
            try:
                rc, out = self.run(cmd, timeout=20, quiet=True)
            except TestAbort:
                continue
            path = os.path.join(self.h.logdir, 'guest-%s-%s.log' % (self.name, what))
            with open(path, 'w') as f:
                f.write(out)
            self.h.logs.append((path, 'guest %s %s (%s)' % (self.name, what, why)))


# ---------------------------------------------------------------------------
# The lab


class VmLab:
    """Namespace kvm<K> with bridge kvmbr0 (VIPs), sgnfsd nodes and guests.
    Use with `with`; close() cleans up everything, even on failure."""

    def __init__(self, h):
        self.h = h
        self.closed = False
        self.lock_fd = None
        self.k = None
        self.guests = []
        self.failed = False
        need_tools()
        self.image = guest_image(h)
        self._reserve()
        self.ns = '%s%d' % (NS_PREFIX, self.k)
        self.net = '10.77.%d' % self.k
        self._remove_leftovers()
        try:
            nsm_util._ip('netns', 'add', self.ns)
            nsm_util._ip('-n', self.ns, 'link', 'set', 'lo', 'up')
            nsm_util._ip('-n', self.ns, 'link', 'add', 'kvmbr0', 'type', 'bridge')
            nsm_util._ip('-n', self.ns, 'link', 'set', 'kvmbr0', 'up')
            # Bridge ports forward at once (no STP learning delay).
            nsm_util._ip('-n', self.ns, 'link', 'set', 'kvmbr0', 'type', 'bridge',
                         'forward_delay', '0')
            nsm_util._ip('-n', self.ns, 'addr', 'add', self.net + '.1/24', 'dev', 'kvmbr0')
            with open(os.path.join(self.image, 'kernel-version')) as f:
                self.kernel = f.read().strip()
            log('vm lab: namespace %s, bridge kvmbr0, %s.0/24, guest kernel %s'
                % (self.ns, self.net, self.kernel))
        except BaseException:
            self.close()
            raise

    def _reserve(self):
        os.makedirs(SLOT_DIR, exist_ok=True)
        ks = list(range(1, 251))
        random.shuffle(ks)
        for k in ks:
            fd = os.open(os.path.join(SLOT_DIR, '%d.lock' % k), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.lock_fd, self.k = fd, k
            return
        raise TestAbort('no free slot in %s' % SLOT_DIR)

    def _remove_leftovers(self):
        for name in nsm_util._netns_list():
            rest = name[len(NS_PREFIX):]
            if not name.startswith(NS_PREFIX) or not rest.isdigit():
                continue
            k = int(rest)
            if k == self.k:
                log('removing leftover namespace %s' % name)
                nsm_util._kill_netns(name)
                continue
            path = os.path.join(SLOT_DIR, '%d.lock' % k)
            if not os.path.exists(path):
                continue
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            try:
                log('removing leftover namespace %s (slot free)' % name)
                nsm_util._kill_netns(name)
            finally:
                os.close(fd)

    def vip(self, i):
        return '%s.%d' % (self.net, 10 * i + 11)

    def cluster(self, groups, **kw):
        """A harness cluster whose nodes run in the namespace; group i gets
        VIP 10.77.K.(10*i+11) on kvmbr0, every export is open to 10.77.K.0/24."""
        h = self.h
        real = os.environ.get('SGNFSD', '')
        if not real or not os.access(real, os.X_OK):
            raise TestAbort('SGNFSD not set or not executable (%r)' % real)
        cwd = os.path.join(h.tmp, 'daemon-cwd')
        os.makedirs(cwd, exist_ok=True)
        wrapper = os.path.join(h.tmp, 'sgnfsd-in-%s' % self.ns)
        with open(wrapper, 'w') as f:
            f.write('#!/bin/sh\n# run sgnfsd inside the vm lab namespace\n'
                    'cd "%s" || exit 70\nexec ip netns exec %s "%s" "$@"\n' % (cwd, self.ns, real))
        os.chmod(wrapper, 0o755)
        h.sgnfsd = wrapper
        c = h.cluster(groups, **kw)
        for i, g in enumerate(c.groups):
            g.vips = [self.vip(i)]
            nsm_util._ip('-n', self.ns, 'addr', 'add', g.vips[0] + '/24', 'dev', 'kvmbr0')
            for e in g.exports:
                e.clients = '%s.0/24' % self.net
                # The guests write as root; the tests check data, not squash.
                e.squash = 'none'
        c.write_config()
        log('vm lab config %s:\n%s' % (c.config_path, c.config_text()))
        self.c = c
        return c

    def start_node(self, c, node):
        """Start @node and wait until the VIPs of the groups it serves first
        answer, seen from inside the namespace."""
        nd = c.start(node, wait=False)
        for g in c.groups:
            if g.nodes[0] == node:
                self.wait_vip(g.vip, nd)
        return nd

    def wait_vip(self, vip, node=None, timeout=30, ports=(2049, 20048, 111, 4045)):
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                if node is not None and not node.alive():
                    raise TestAbort('node %s exited with status %s'
                                    % (node.name, node.proc.returncode))
                s = nsm_util.netns_socket(self.ns, socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(0.5)
                try:
                    s.connect((vip, port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TestAbort('%s:%d does not answer after %ds' % (vip, port, timeout))
                    time.sleep(0.05)
                finally:
                    s.close()

    def guest(self, name=None):
        g = Guest(self, len(self.guests), name)
        self.guests.append(g)
        return g

    def boot(self, n):
        """Start @n guests at once (they boot in parallel), wait for all."""
        gs = [self.guest() for _ in range(n)]
        for g in gs:
            g.start(wait=False)
        for g in gs:
            g.wait_booted()
        return gs

    def hosts(self):
        """name -> address of the VIPs (sg<i>) and guests, for /etc/hosts."""
        out = {}
        for i, g in enumerate(self.c.groups):
            out['sg%d' % (i + 1)] = g.vip
        for g in self.guests:
            out[g.name] = g.addr
        return out

    def close(self, failed=False):
        if self.closed:
            return
        self.closed = True
        failed = failed or self.failed or self.h.failures > 0
        if failed:
            for g in self.guests:
                try:
                    g.collect('test failed')
                except Exception as e:
                    log('collecting from %s: %s' % (g.name, e))
        for g in self.guests:
            try:
                g.crash()
            except Exception as e:
                log('stopping %s: %s' % (g.name, e))
        for c in self.h.clusters:
            try:
                if failed:
                    c.kill_all()
                else:
                    c.stop_all()
            except Exception as e:
                log('stopping cluster: %s' % e)
                c.kill_all()
        if self.k is not None:
            nsm_util._kill_netns(self.ns)
            log('vm lab %s removed' % self.ns)
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.close(failed=et is not None)


def checksum_host(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def main(test, timeout):
    harness.main(test, timeout=timeout)


class OtherHost:
    """A simulated client host (sgnfs-client) on 10.77.K.@n inside the lab,
    for "may another host take this range now?"."""

    def __init__(self, lab, n=200, svid=777):
        self.lab = lab
        self.addr = '%s.%d' % (lab.net, n)
        self.svid = svid
        nsm_util._ip('-n', lab.ns, 'addr', 'add', self.addr + '/24', 'dev', 'kvmbr0')

    def lock(self, server, path, start, length, reclaim=False):
        """One non-blocking LOCK; returns the status word ('granted',
        'denied', 'grace', ...)."""
        argv = ['ip', 'netns', 'exec', self.lab.ns, nsm_util.client_path(), '--host', self.addr,
                '--server', server, '--json', '--no-callbacks', '--timeout', '8000',
                '--svid', str(self.svid)] + (['--reclaim'] if reclaim else []) + \
            ['lock', path, str(start), str(length)]
        cp = self.lab.h.run(argv, check=False, timeout=30, quiet=True)
        st = ''
        for ln in cp.stdout.decode('utf-8', 'replace').splitlines():
            if ln.startswith('{'):
                import json
                try:
                    st = json.loads(ln).get('status', '')
                except ValueError:
                    pass
        log('other host %s: lock %s %d %d -> %s' % (self.addr, path, start, length, st or
                                                     cp.stderr.decode(errors='replace')[-200:]))
        return st

    def unlock(self, server, path, start, length):
        argv = ['ip', 'netns', 'exec', self.lab.ns, nsm_util.client_path(), '--host', self.addr,
                '--server', server, '--json', '--no-callbacks', '--timeout', '8000',
                '--svid', str(self.svid), 'unlock', path, str(start), str(length)]
        self.lab.h.run(argv, check=False, timeout=30, quiet=True)


def wait_for(pred, timeout, step=0.2):
    """Poll @pred until it returns something true (returned) or @timeout s
    pass (returns the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def io_stall(lines, after=0):
    """The longest time the probe went without a completed write, from the
    @after'th line on: (seconds, guest time it ended), or (None, None)."""
    best, at, prev = None, None, None
    for ok, _, end in lines[after:]:
        if not ok:
            continue
        if prev is not None and (best is None or end - prev > best):
            best, at = end - prev, end
        prev = end
    return best, at


class Capture:
    """dumpcap on the lab's bridge (inside its namespace), BPF @bpf; the
    pcap is kept in the test's log directory."""

    def __init__(self, lab, bpf, name='capture'):
        self.lab = lab
        self.h = lab.h
        self.ok = False
        self.pcap = os.path.join(self.h.logdir, '%s-%d.pcap' % (name, random.randrange(1 << 30)))
        self.tshark = shutil.which('tshark')
        dumpcap = shutil.which('dumpcap')
        if not self.tshark or not dumpcap:
            log('tshark/dumpcap not installed (scripts/deps.sh installs them)')
            self.proc = None
            return
        self.errf = open(self.pcap + '.log', 'wb')
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', lab.ns, dumpcap, '-i', 'kvmbr0',
                                      '-f', bpf, '-w', self.pcap, '-q'],
                                     stdout=self.errf, stderr=self.errf, start_new_session=True,
                                     preexec_fn=harness._pdeathsig)
        self.h.helpers.append(self.proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(self.pcap) and os.path.getsize(self.pcap) > 0:
                self.ok = True
                break
            time.sleep(0.05)
        if not self.ok:
            log('dumpcap did not start on kvmbr0')

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            time.sleep(0.5)  # what is in flight reaches the file
            self.proc.send_signal(2)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tcp_refused(self, server):
        """TCP connections to @server that it refused: a SYN to it answered
        by a RST, never by a SYN-ACK.  [(client, port)]; also returns the
        number of SYNs seen, so a capture that saw nothing is noticed."""
        cp = subprocess.run([self.tshark, '-r', self.pcap, '-n', '-T', 'fields',
                             '-e', 'tcp.stream', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'tcp.dstport',
                             '-e', 'tcp.flags.syn', '-e', 'tcp.flags.ack', '-e', 'tcp.flags.reset'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if cp.returncode != 0:
            log('tshark: %s' % cp.stderr.decode('utf-8', 'replace')[-500:])
        syn, synack, rst = {}, set(), set()

        def flag(v):
            return v in ('1', 'True', 'true')
        for ln in cp.stdout.decode('utf-8', 'replace').splitlines():
            f = ln.split('\t')
            if len(f) < 7:
                continue
            st, src, dst, dport = f[0], f[1], f[2], f[3]
            s_, a_, r_ = flag(f[4]), flag(f[5]), flag(f[6])
            if s_ and not a_ and dst == server:
                syn[st] = (src, dport)
            elif s_ and a_ and src == server:
                synack.add(st)
            elif r_ and src == server:
                rst.add(st)
        refused = [syn[st] for st in syn if st in rst and st not in synack]
        return refused, len(syn)
