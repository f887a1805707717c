"""
test_daemon.py - sgnfsd behaves like a system daemon (docs/operations.md):

  1. -V/--version, -h/--help exit 0 on stdout; a bad option exits 64; a
     file with errors exits 1, as does an unknown node;
  2. a second `sgnfsd -n a` while a runs exits 3, names the running pid,
     and leaves a's control socket and pid file alone: a still answers,
     with its own pid, and still serves its group;
  3. SIGTERM: exit 0, socket and pid file gone;
  4. after kill -9 the leftovers do not stop a restart;
  5. under systemd (NOTIFY_SOCKET): READY=1 with MAINPID arrives once the
     control socket answers; WATCHDOG=1 keeps arriving when WATCHDOG_USEC
     is set; STOPPING=1 on SIGTERM.
"""

import os
import signal
import socket
import subprocess
import time

import harness
from harness import Export, Group, TestAbort, log
import ops_util as ou


def run(argv, env=None):
    cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                        env=env)
    return cp.returncode, cp.stdout.decode(), cp.stderr.decode()


def node_pid(c, name):
    rc, doc = ou.status(c)
    st = (ou.node_doc(doc, name) or {}).get('status') or {}
    return st.get('pid')


def test(h):
    sgnfsd = h.env_path('SGNFSD')
    c = h.cluster(groups=[Group('g1', [Export('s1', 101)], nodes=('a',))])

    # ---- 1. command line ---------------------------------------------------
    for opt in ('-V', '--version'):
        rc, out, err = run([sgnfsd, opt])
        h.check(rc == 0 and out.startswith('sgnfsd ') and len(out.split()) == 2,
                '%s: exit 0, "sgnfsd VERSION" on stdout (%d %r %r)' % (opt, rc, out, err))
    for opt in ('-h', '--help'):
        rc, out, err = run([sgnfsd, opt])
        h.check(rc == 0 and out.startswith('usage: sgnfsd') and '--version' in out,
                '%s: exit 0, usage on stdout' % opt)
    rc, out, err = run([sgnfsd, '--no-such-option'])
    h.check(rc == 64 and 'usage' in err, 'bad option: exit 64, usage on stderr (%d)' % rc)
    bad = os.path.join(c.dir, 'bad.ini')
    with open(bad, 'w') as f:
        f.write('[cluster]\nname = x\nbogus_key = 1\n')
    rc, out, err = run([sgnfsd, '-t', '-c', bad])
    h.check(rc == 1 and 'bad.ini:3:' in err, '-t on a bad file: exit 1, error with its line')
    rc, out, err = run([sgnfsd, '-c', c.config_path, '-n', 'zz', '-f'])
    h.check(rc == 1 and 'no [node zz]' in err, 'unknown node: exit 1 (%d %r)' % (rc, err))

    # ---- 2. a second instance -------------------------------------------------
    a = c.start('a')
    sock = os.path.join(c.run_dir, 'a.sock')
    pidf = os.path.join(c.run_dir, 'a.pid')
    h.require(node_pid(c, 'a') == a.pid, 'a answers on its socket with its pid %d' % a.pid)
    ino = (os.stat(sock).st_ino, os.stat(pidf).st_ino)
    rc, out, err = run([sgnfsd, '-c', c.config_path, '-n', 'a', '-f'])
    h.check(rc == 3 and ('pid %d' % a.pid) in err,
            'second sgnfsd -n a: exit 3, names pid %d (%d %r)' % (a.pid, rc, err))
    h.check(os.path.exists(sock) and os.path.exists(pidf) and
            (os.stat(sock).st_ino, os.stat(pidf).st_ino) == ino,
            'a.sock and a.pid are the same files as before')
    h.check(open(pidf).read().strip() == str(a.pid), 'a.pid still holds %d' % a.pid)
    h.check(node_pid(c, 'a') == a.pid, 'a still answers on its socket, pid %d' % a.pid)
    rc, doc = ou.status(c)
    h.check(rc == 0 and ou.cluster_group(doc, 'g1')['owner'] == 'a', 'g1 still served by a')
    # The same from a daemonising (no -f) second instance: it must refuse
    # before forking, so the exit code reaches the shell.
    rc, out, err = run([sgnfsd, '-c', c.config_path, '-n', 'a'])
    h.check(rc == 3, 'second sgnfsd -n a without -f: exit 3 too (%d)' % rc)
    h.check(node_pid(c, 'a') == a.pid, 'a still answers')

    # ---- 3. clean stop ---------------------------------------------------------
    h.check(a.stop() == 0, 'SIGTERM: exit 0')
    h.check(not os.path.exists(sock) and not os.path.exists(pidf),
            'socket and pid file removed on a clean stop')

    # ---- 4. leftovers of a crash -------------------------------------------
    a = c.start('a')
    c.kill9('a')
    h.check(os.path.exists(sock) and os.path.exists(pidf), 'kill -9 leaves socket and pid file')
    a = c.start('a')
    h.check(node_pid(c, 'a') == a.pid, 'a restarted over the leftovers answers, pid %d' % a.pid)
    c.stop('a')

    # ---- 5. systemd readiness -----------------------------------------------
    nsock = os.path.join(c.dir, 'notify.sock')
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(nsock)
    ns.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=nsock, WATCHDOG_USEC='200000')
    logpath = os.path.join(h.logdir, 'node-a-notify.log')
    with open(logpath, 'wb') as lf:
        p = subprocess.Popen([sgnfsd, '-c', c.config_path, '-n', 'a', '-f'], stdout=lf,
                             stderr=subprocess.STDOUT, env=env, preexec_fn=harness._pdeathsig)
    h.logs.append((logpath, 'sgnfsd under NOTIFY_SOCKET'))
    h.helpers.append(p)
    msgs = []
    try:
        while not any('READY=1' in m for m in msgs):
            msgs.append(ns.recv(4096).decode())
        # At READY the control socket must already answer.
        h.check(node_pid(c, 'a') == p.pid, 'at READY=1 the control socket answers')
        ready = [m for m in msgs if 'READY=1' in m][0]
        h.check('MAINPID=%d' % p.pid in ready and 'STATUS=' in ready,
                'READY=1 carries MAINPID=%d and a STATUS line (%r)' % (p.pid, ready))
        dogs = 0
        while dogs < 3:
            m = ns.recv(4096).decode()
            msgs.append(m)
            dogs += m.count('WATCHDOG=1')
        h.check(True, 'WATCHDOG=1 keeps arriving (WATCHDOG_USEC=200000)')
        p.send_signal(signal.SIGTERM)
        while not any('STOPPING=1' in m for m in msgs):
            msgs.append(ns.recv(4096).decode())
        h.check(True, 'STOPPING=1 on SIGTERM')
    except socket.timeout:
        h.check(False, 'notifications arrive (got %r)' % msgs)
    h.check(p.wait(20) == 0, 'the notified node exits 0')
    ns.close()


harness.main(test, timeout=150)
