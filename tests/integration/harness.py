"""
harness.py - run real sgnfsd nodes for an integration test, and always
clean up after them.

A test is a function that receives a Harness:

    import harness

    def test(h):
        c = h.cluster(groups=[harness.Group('g1', exports=[
                                  harness.Export('rw', fsid=101)])])
        c.start('a')
        h.run([h.env_path('NFS3_PROCS'), ...])
        h.check(something, 'what was checked')

    harness.main(test, timeout=120)

What the harness guarantees:

  * Addresses.  Every cluster gets a private /16 of loopback, 127.S.0.0,
    where S (a "slot", 200..254) is reserved for this process with an
    exclusive flock on /tmp/sgnfs-it-slots/S.lock and probed free by
    binding the VIPs' ports.  Group number i (0-based) gets VIP
    127.S.(10*(i+1)).1 and, for a second VIP, .2.  So tests can run in
    parallel with each other, with other build directories, and with a
    demo cluster, without colliding.  Linux routes all of 127.0.0.0/8 to
    lo, so no interface setup is needed.
  * Processes.  Nodes run in the foreground (-f) in their own session,
    with stdout+stderr in <tmp>/logs/node-NAME.N.log, and with
    PR_SET_PDEATHSIG=SIGKILL, so they die even if this process is killed
    with SIGKILL by the test runner.  Stopping a node with SIGTERM expects
    exit status 0 (a crash or a sanitizer report fails the test).
  * Time.  main() arms a hard timeout (SIGALRM), and turns SIGTERM/SIGINT
    (meson's own timeout) into an exception, so cleanup runs in every case.
  * Cleanup.  Every node is killed and waited for, every helper process
    too; on failure every log is printed to stdout (which meson shows with
    --print-errorlogs); the temporary directory is removed unless
    SGNFS_KEEP_TMP=1.

Exit status of main(): 0 pass, 1 fail, 77 skip (meson's convention).

Python 3 standard library only.
"""

import ctypes
import errno
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77

DEFAULT_PORTS = {
    'nfs_port': 2049,
    'mount_port': 20048,
    'pmap_port': 111,
    'nlm_port': 4045,
    'nsm_port': 662,
}

SLOT_DIR = '/tmp/sgnfs-it-slots'
SLOT_RANGE = range(200, 255)


class TestTimeout(Exception):
    pass


class TestAbort(Exception):
    """Raised by Harness.require(): a fatal check failed."""


class Skip(Exception):
    pass


# ---------------------------------------------------------------------------
# Configuration model


class Export:
    """One [export] section.  @rel is the directory under the cluster's
    storage root (created by the harness); the exported path is absolute."""

    def __init__(self, rel, fsid, access='rw', squash='none', clients='127.0.0.0/8',
                 secure=None, anonuid=None, anongid=None):
        self.rel = rel
        self.fsid = fsid
        self.access = access
        self.squash = squash
        self.clients = clients
        self.secure = secure
        self.anonuid = anonuid
        self.anongid = anongid
        self.path = None           # set by Cluster


class Group:
    """One [group] section.  @nodes in preference order; @nvips VIPs are
    allocated by the cluster."""

    def __init__(self, name, exports, nodes=('a',), grace=5, nvips=1, extra=None):
        self.name = name
        self.exports = list(exports)
        self.nodes = list(nodes)
        self.grace = grace
        self.nvips = nvips
        self.extra = dict(extra or {})
        self.vips = []             # set by Cluster

    @property
    def vip(self):
        return self.vips[0]


# ---------------------------------------------------------------------------
# Helpers


def _pdeathsig():
    """preexec_fn: the child gets SIGKILL when the harness dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:
        pass


_last_bind_error = ['']


def _port_free(addr, port, kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        # TCP: ignore TIME_WAIT leftovers (a listener still conflicts).
        # UDP: no SO_REUSEADDR, or a bound socket would not conflict.
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        return True
    except OSError as e:
        if e.errno == errno.EACCES:
            raise Skip('cannot bind %s:%d (%s); run as root or grant '
                       'CAP_NET_BIND_SERVICE' % (addr, port, e.strerror))
        _last_bind_error[0] = '%s:%d/%s: %s' % (
            addr, port, 'tcp' if kind == socket.SOCK_STREAM else 'udp', e.strerror)
        return False
    finally:
        s.close()


def tshark_rpc_args(tshark, pcap):
    """tshark options that read every TCP and UDP port of a capture as ONC RPC.

    For callers whose capture holds only sgnfs traffic (filtered to its
    VIPs).  Without a "decode as" for a connection's ports, tshark tries the
    lower port's dissector first, so a client's privileged source port
    (libnfs binds below 1024 as root) that is another protocol's
    well-known port is read as that protocol: a CI run saw 639 -> 2049
    read as MSDP ("unknown TLV type", an expert error).  Naming every port
    of the capture makes the reading the same on every run."""
    cp = subprocess.run([tshark, '-n', '-r', pcap, '-T', 'fields', '-e', 'tcp.port',
                         '-e', 'udp.port'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=180)
    tcp, udp = set(), set()
    for line in cp.stdout.decode('ascii', 'replace').splitlines():
        cols = line.split('\t')
        for col, ports in zip(cols, (tcp, udp)):
            # ICMP errors quote a UDP header: more than one value per column.
            ports.update(int(v) for v in col.split(',') if v.strip().isdigit())
    args = ['-n', '-o', 'tcp.reassemble_out_of_order:TRUE']
    for proto, ports in (('tcp', tcp), ('udp', udp)):
        for port in sorted(ports):
            args += ['-d', '%s.port==%d,rpc' % (proto, port)]
    return args


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


# ---------------------------------------------------------------------------
# Node processes


class Node:
    def __init__(self, cluster, name, proc, logpath, argv):
        self.cluster = cluster
        self.name = name
        self.proc = proc
        self.logpath = logpath
        self.argv = argv
        self.expect_clean_exit = True

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        """SIGKILL, as a crash would; the exit status is not checked."""
        self.expect_clean_exit = False
        if self.alive():
            log('kill -9 node %s (pid %d)' % (self.name, self.pid))
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def stop(self, timeout=20):
        """SIGTERM, wait up to @timeout s (then SIGKILL); returns the exit
        status and records a failure if it was not 0."""
        h = self.cluster.h
        if self.alive():
            log('stop node %s (pid %d)' % (self.name, self.pid))
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                h.check(False, 'node %s exits within %ds of SIGTERM' % (self.name, timeout))
                self.kill9()
                return None
        rc = self.proc.returncode
        if self.expect_clean_exit:
            h.check(rc == 0, 'node %s exited with status 0 (got %s)' % (self.name, rc))
        self.expect_clean_exit = False
        return rc


def write_handle_key(path, current, previous=None):
    """Write a handle key file (format in src/common/hkey.h), mode 0600,
    replacing @path atomically."""
    tmp = path + '.tmp'
    if os.path.lexists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write('current = %s\n' % current.hex())
        if previous is not None:
            f.write('previous = %s\n' % previous.hex())
    os.rename(tmp, path)


class Cluster:
    """A cluster INI file plus its storage directories and node processes."""

    def __init__(self, h, groups, nodes=None, name='it', cluster_extra=None,
                 ports=None, log_level='info', init=True, node_extra=None):
        self.h = h
        self.groups = list(groups)
        names = []
        for g in self.groups:
            for n in g.nodes:
                if n not in names:
                    names.append(n)
        self.node_names = list(nodes) if nodes else names
        self.name = name
        self.cluster_extra = dict(cluster_extra or {})
        self.node_extra = dict(node_extra or {})   # name -> {key: value}
        self.ports = dict(DEFAULT_PORTS)
        self.ports.update(ports or {})
        self.log_level = log_level
        self.dir = tempfile.mkdtemp(prefix='c-', dir=h.tmp)
        self.storage = os.path.join(self.dir, 'storage')
        self.run_dir = os.path.join(self.dir, 'run')
        self.config_path = os.path.join(self.dir, 'cluster.ini')
        # The file handle key every node shares (src/common/hkey.h): made
        # once, so restarts and failovers keep verifying the same handles.
        self.handle_key = os.path.join(self.dir, 'handle.key')
        write_handle_key(self.handle_key, os.urandom(32))
        self.nodes = {}            # name -> Node (current process)
        self.all_nodes = []        # every Node ever started
        os.makedirs(self.storage)
        self.slot = h.reserve_slot(self._slot_ok)
        for i, g in enumerate(self.groups):
            g.vips = ['127.%d.%d.%d' % (self.slot, 10 * (i + 1), j + 1)
                      for j in range(g.nvips)]
            for e in g.exports:
                e.path = os.path.join(self.storage, e.rel)
                os.makedirs(e.path, exist_ok=True)
        self.write_config()
        if init:
            for g in self.groups:
                self.init_group(g.name)

    def ctl_path(self):
        p = os.environ.get('SGNFSCTL')
        if not p:
            p = os.path.join(os.path.dirname(os.path.dirname(self.h.sgnfsd)), 'ctl',
                             'sgnfsctl')
        return p

    def init_group(self, name, extra=()):
        """sgnfsctl init GROUP: write the group's storage identity (no node
        serves a group without it; src/cluster/storage.h)."""
        p = subprocess.run([self.ctl_path(), '-c', self.config_path, 'init'] + list(extra)
                           + [name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        if p.returncode != 0:
            raise TestAbort('sgnfsctl init %s: %s' % (name, p.stdout.decode().strip()))

    def _slot_ok(self, slot):
        for i, g in enumerate(self.groups):
            for j in range(g.nvips):
                vip = '127.%d.%d.%d' % (slot, 10 * (i + 1), j + 1)
                for key in ('nfs_port', 'mount_port', 'pmap_port', 'nlm_port'):
                    if not _port_free(vip, self.ports[key], socket.SOCK_STREAM):
                        return False
                    if not _port_free(vip, self.ports[key], socket.SOCK_DGRAM):
                        return False
        return True

    def group(self, name):
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)

    def export(self, rel):
        for g in self.groups:
            for e in g.exports:
                if e.rel == rel:
                    return e
        raise KeyError(rel)

    def config_text(self):
        out = ['; generated by tests/integration/harness.py', '[cluster]',
               'name = %s' % self.name, 'run_dir = %s' % self.run_dir,
               'log_level = %s' % self.log_level,
               'handle_key = %s' % self.handle_key]
        for k, v in self.ports.items():
            out.append('%s = %d' % (k, v))
        for k, v in self.cluster_extra.items():
            out.append('%s = %s' % (k, v))
        out.append('')
        for n in self.node_names:
            out.append('[node %s]' % n)
            for k, v in self.node_extra.get(n, {}).items():
                out.append('%s = %s' % (k, v))
            out.append('')
        for g in self.groups:
            out += ['[group %s]' % g.name, 'vip = %s' % ' '.join(g.vips),
                    'nodes = %s' % ' '.join(g.nodes), 'grace = %d' % g.grace]
            for k, v in g.extra.items():
                out.append('%s = %s' % (k, v))
            out.append('')
            for e in g.exports:
                out += ['[export %s]' % e.path, 'group = %s' % g.name,
                        'fsid = %d' % e.fsid, 'access = %s' % e.access,
                        'clients = %s' % e.clients, 'squash = %s' % e.squash]
                if e.secure is not None:
                    out.append('secure = %s' % e.secure)
                if e.anonuid is not None:
                    out.append('anonuid = %d' % e.anonuid)
                if e.anongid is not None:
                    out.append('anongid = %d' % e.anongid)
                out.append('')
        return '\n'.join(out) + '\n'

    def write_config(self):
        with open(self.config_path, 'w') as f:
            f.write(self.config_text())

    # -- processes ---------------------------------------------------------

    def start(self, node, wait=True, extra_args=(), timeout=20, own_run_dir=False, wrap=()):
        """Start sgnfsd -n @node; with @wait, return once every VIP of
        every group whose first node is @node answers on TCP.  With
        @own_run_dir the node runs in a mount namespace of its own with a
        private tmpfs on run_dir, as on another machine: its control
        socket and pid file are not visible here (needs root).  @wrap runs
        it through a command that execs it (e.g. ip netns exec NS)."""
        if node in self.nodes and self.nodes[node].alive():
            raise RuntimeError('node %s already running' % node)
        n = sum(1 for x in self.all_nodes if x.name == node)
        logpath = os.path.join(self.h.logdir, 'node-%s.%d.log' % (node, n))
        argv = [self.h.sgnfsd, '-c', self.config_path, '-n', node, '-f'] + list(extra_args)
        if own_run_dir:
            os.makedirs(self.run_dir, exist_ok=True)
            # unshare execs sh, sh execs sgnfsd: the pid stays the node's.
            argv = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
                    'mount -t tmpfs -o mode=0755 sgnfs-run "$0" && exec "$@"',
                    self.run_dir] + argv
        argv = list(wrap) + argv
        log('start: %s  (log %s)' % (' '.join(argv), logpath))
        logf = open(logpath, 'wb')
        env = dict(os.environ)
        env.setdefault('ASAN_OPTIONS', 'abort_on_error=0:detect_leaks=1')
        env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1:halt_on_error=1')
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_pdeathsig, env=env)
        logf.close()
        nd = Node(self, node, proc, logpath, argv)
        self.nodes[node] = nd
        self.all_nodes.append(nd)
        self.h.logs.append((logpath, 'sgnfsd node %s (pid %d)' % (node, proc.pid)))
        if wait:
            for g in self.groups:
                if g.nodes[0] == node:
                    for vip in g.vips:
                        self.wait_vip(vip, nd, timeout=timeout)
            if not own_run_dir:
                self.wait_opened(nd, timeout=max(timeout, 60))
        return nd

    def wait_opened(self, node, timeout=60):
        """Wait until @node opens no group.  A VIP is bound (and held)
        before the group's state is read off the loop, so it answers while
        the group is still opening: its journal, state number and client
        list are not those of the new run yet."""
        deadline = time.monotonic() + timeout
        last = ''
        while True:
            if not node.alive():
                raise TestAbort('node %s exited with status %s while opening its groups'
                                % (node.name, node.proc.returncode))
            p = subprocess.run([self.ctl_path(), '-c', self.config_path, 'status', '--json'],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            try:
                doc = json.loads(p.stdout.decode())
                st = next(n for n in doc.get('nodes', []) if n.get('name') == node.name)
                st = st.get('status')
                opening = [g['name'] for g in (st or {}).get('standby', [])
                           if g.get('reason', '').startswith('opening')]
                if st is not None and not opening:
                    return
                last = 'opening %s' % opening if st else 'no status'
            except (ValueError, StopIteration) as e:
                last = 'status not readable: %s' % e
            if time.monotonic() > deadline:
                raise TestAbort('node %s still opening after %ds (%s)' % (node.name, timeout, last))
            time.sleep(0.05)

    def wait_vip(self, vip, node=None, timeout=20, ports=('nfs_port', 'mount_port', 'pmap_port')):
        """Wait until @vip accepts TCP connections on @ports."""
        deadline = time.monotonic() + timeout
        for key in ports:
            port = self.ports[key]
            while True:
                if node is not None and not node.alive():
                    raise TestAbort('node %s exited with status %s before %s:%d answered'
                                    % (node.name, node.proc.returncode, vip, port))
                try:
                    with socket.create_connection((vip, port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TestAbort('%s:%d does not answer after %ds' % (vip, port, timeout))
                    time.sleep(0.05)
        log('%s answers on %s' % (vip, ', '.join(ports)))

    def stop(self, node, timeout=20):
        return self.nodes[node].stop(timeout)

    def kill9(self, node):
        self.nodes[node].kill9()

    def stop_all(self):
        for nd in self.all_nodes:
            if nd.alive():
                nd.stop()

    def kill_all(self):
        for nd in self.all_nodes:
            if nd.alive():
                nd.expect_clean_exit = False
                try:
                    nd.proc.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
                nd.proc.wait()


# ---------------------------------------------------------------------------
# The harness


class Harness:
    def __init__(self, name):
        self.name = name
        self.failures = 0
        self.checks = 0
        self.clusters = []
        self.helpers = []          # background Popen objects to reap
        self.logs = []             # (path, title), dumped on failure
        self.slot_fds = []
        self.tmp = tempfile.mkdtemp(prefix='sgnfs-it-%s-' % name)
        os.chmod(self.tmp, 0o755)
        self.logdir = os.path.join(self.tmp, 'logs')
        os.makedirs(self.logdir)
        self.sgnfsd = os.environ.get('SGNFSD', '')

    # -- checks ------------------------------------------------------------

    def check(self, cond, what):
        self.checks += 1
        if cond:
            print('ok   - %s' % what, flush=True)
        else:
            self.failures += 1
            print('FAIL - %s' % what, flush=True)
        return bool(cond)

    def require(self, cond, what):
        """A check whose failure makes the rest of the test meaningless."""
        if not self.check(cond, what):
            raise TestAbort(what)

    # -- environment -------------------------------------------------------

    def env_path(self, var, skip_if_missing=False):
        p = os.environ.get(var, '')
        if not p or not os.access(p, os.X_OK):
            if skip_if_missing:
                raise Skip('%s not set or not executable (%r)' % (var, p))
            raise TestAbort('%s not set or not executable (%r)' % (var, p))
        return p

    def need_tool(self, name):
        p = shutil.which(name)
        if not p:
            raise Skip('%s not installed' % name)
        return p

    def reserve_slot(self, probe):
        """Reserve a loopback /16 (127.S.0.0) for this process: an exclusive
        flock held until exit, then a bind probe."""
        os.makedirs(SLOT_DIR, exist_ok=True)
        try:
            os.chmod(SLOT_DIR, 0o1777)
        except OSError:
            pass
        slots = list(SLOT_RANGE)
        random.shuffle(slots)
        for s in slots:
            path = os.path.join(SLOT_DIR, '%d.lock' % s)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            if probe(s):
                self.slot_fds.append(fd)
                log('address slot 127.%d.0.0/16' % s)
                return s
            os.close(fd)
        raise TestAbort('no free 127.S.0.0/16 slot for S in %d..%d (last bind error: %s; '
                        'a wildcard listener on one of the ports, e.g. a system rpcbind '
                        'on 0.0.0.0:111, blocks every VIP)'
                        % (SLOT_RANGE[0], SLOT_RANGE[-1], _last_bind_error[0]))

    def cluster(self, groups, **kw):
        if not self.sgnfsd:
            self.sgnfsd = self.env_path('SGNFSD')
        c = Cluster(self, groups, **kw)
        self.clusters.append(c)
        log('config %s:\n%s' % (c.config_path, c.config_text()))
        return c

    # -- helper processes --------------------------------------------------

    def run(self, argv, timeout=60, check=True, what=None, input=None, env=None,
            quiet=False):
        """Run @argv to completion (killed after @timeout s).  Its output is
        saved to a log file and printed; with @check, exit status 0 is a
        check.  Returns the CompletedProcess (stdout/stderr as bytes)."""
        argv = [str(a) for a in argv]
        n = len(self.logs)
        logpath = os.path.join(self.logdir, 'run-%02d-%s.log' % (n, os.path.basename(argv[0])))
        log('run: %s' % ' '.join(argv))
        try:
            cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL if input is None else None,
                                input=input, timeout=timeout, preexec_fn=_pdeathsig,
                                env=env)
        except subprocess.TimeoutExpired as e:
            with open(logpath, 'wb') as f:
                f.write(e.stdout or b'')
                f.write(e.stderr or b'')
            self.logs.append((logpath, ' '.join(argv)))
            self.check(False, '%s finishes within %ds' % (what or argv[0], timeout))
            raise TestAbort('%s timed out' % argv[0])
        with open(logpath, 'wb') as f:
            f.write(cp.stdout)
            f.write(b'\n--- stderr ---\n')
            f.write(cp.stderr)
        if not quiet:
            for stream in (cp.stdout, cp.stderr):
                text = stream.decode('utf-8', 'replace')
                if len(text) > 20000:
                    text = text[:10000] + '\n[... %d bytes ...]\n' % (len(text) - 20000) + text[-10000:]
                if text.strip():
                    sys.stdout.write(text if text.endswith('\n') else text + '\n')
            sys.stdout.flush()
        if check:
            self.check(cp.returncode == 0, '%s exits 0 (got %d)' % (what or ' '.join(argv), cp.returncode))
        return cp

    def run_parallel(self, argvs, timeout=120, what='parallel'):
        """Run every argv in @argvs at once; wait for all (all killed after
        @timeout s).  Each exit status 0 is a check.  Returns the exit codes."""
        procs = []
        for i, argv in enumerate(argvs):
            argv = [str(a) for a in argv]
            logpath = os.path.join(self.logdir, 'par-%02d-%02d-%s.log'
                                   % (len(self.logs), i, os.path.basename(argv[0])))
            log('run (parallel %d/%d): %s' % (i + 1, len(argvs), ' '.join(argv)))
            f = open(logpath, 'wb')
            procs.append((argv, subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL,
                                                 preexec_fn=_pdeathsig)))
            f.close()
            self.logs.append((logpath, ' '.join(argv)))
        self.helpers.extend(p for _, p in procs)
        deadline = time.monotonic() + timeout
        codes = []
        for argv, p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.check(False, '%s: %s finishes within %ds' % (what, argv[0], timeout))
            codes.append(p.returncode)
            self.check(p.returncode == 0, '%s: %s exits 0 (got %s)'
                       % (what, ' '.join(argv), p.returncode))
        return codes

    def spawn(self, argv, logname):
        """Start a background helper (output to a log); reaped at cleanup."""
        logpath = os.path.join(self.logdir, logname)
        log('spawn: %s' % ' '.join(argv))
        f = open(logpath, 'wb')
        p = subprocess.Popen([str(a) for a in argv], stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=_pdeathsig)
        f.close()
        self.helpers.append(p)
        self.logs.append((logpath, ' '.join(str(a) for a in argv)))
        return p

    # -- cleanup -----------------------------------------------------------

    def cleanup(self, failed):
        for c in self.clusters:
            try:
                if failed:
                    c.kill_all()
                else:
                    c.stop_all()
            except Exception:
                traceback.print_exc()
                c.kill_all()
        for p in self.helpers:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        failed = failed or self.failures > 0
        # A sanitizer report in a node log is a failure even if the node
        # happened to exit 0.
        for path, title in self.logs:
            if os.path.basename(path).startswith('node-') and os.path.exists(path):
                with open(path, 'rb') as f:
                    data = f.read()
                for marker in (b'ERROR: AddressSanitizer', b'ERROR: LeakSanitizer',
                               b'runtime error:'):
                    if marker in data:
                        self.check(False, '%s: no sanitizer report (%s)' % (title, marker.decode()))
                        failed = True
        if failed:
            for path, title in self.logs:
                if not os.path.exists(path):
                    continue
                with open(path, 'rb') as f:
                    data = f.read()
                if len(data) > 200000:
                    data = data[:50000] + b'\n[... truncated ...]\n' + data[-100000:]
                print('\n======== %s (%s) ========' % (title, path))
                sys.stdout.write(data.decode('utf-8', 'replace'))
                print('======== end of %s ========' % title, flush=True)
        for fd in self.slot_fds:
            os.close(fd)
        return failed

    def remove_tmp(self):
        """The test's directory goes (SGNFS_KEEP_TMP=1 keeps it).  Not under
        the cleanup's bound: removing a tree of 100,000 planted client files
        on a disk loaded by other suites took longer than that bound, and
        that is not the server's time (test_status_large in CI)."""
        if os.environ.get('SGNFS_KEEP_TMP') == '1':
            log('keeping %s' % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _raise_timeout(signum, frame):
    raise TestTimeout('hard timeout')


def _raise_term(signum, frame):
    raise TestTimeout('killed by signal %d (runner timeout?)' % signum)


def main(test, timeout=120, name=None):
    """Run @test(harness) with a hard @timeout (seconds); exit 0/1/77."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    timeout = int(os.environ.get('SGNFS_IT_TIMEOUT', timeout))
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.signal(signal.SIGTERM, _raise_term)
    signal.signal(signal.SIGINT, _raise_term)
    h = None
    failed = True
    skipped = None
    try:
        h = Harness(name)
        signal.alarm(timeout)
        test(h)
        failed = h.failures > 0
    except Skip as e:
        skipped = str(e)
        failed = False
    except TestAbort as e:
        print('ABORT: %s' % e, flush=True)
    except TestTimeout as e:
        print('ABORT: %s after %ds' % (e, timeout), flush=True)
    except Exception:
        traceback.print_exc()
    finally:
        signal.alarm(0)
        # Cleanup itself is bounded too.
        signal.alarm(60)
        try:
            if h is not None:
                failed = h.cleanup(failed)
        except TestTimeout:
            print('ABORT: cleanup timed out', flush=True)
            failed = True
        signal.alarm(0)
        if h is not None:
            h.remove_tmp()
    if skipped is not None:
        print('SKIP: %s' % skipped)
        sys.exit(SKIP)
    checks = h.checks if h else 0
    fails = h.failures if h else 0
    print('%s: %s (%d checks, %d failed)' % (name, 'FAIL' if failed else 'PASS', checks, fails))
    sys.exit(1 if failed else 0)
