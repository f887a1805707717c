"""
test_readme_demo.py - README's first command, `./scripts/demo.sh`, does what
README says and exits 0, in order:

  1. it builds (the plain build/, which this suite's sgnfsd must be: in the
     ASan or release suites the test is skipped), starts three nodes and
     four groups, and the files part shows each group writing and reading
     back 4 MiB, a read-only export refusing a write and a group's export
     refused through another group's VIP;
  2. the failover part: sg1's owner is killed, sg1's clients reclaim and
     sg1's grace ends; every other group grants every new-lock probe;
  3. the killed node is restarted and the final status shows all three
     nodes up (it used to show the restarted node down and exit 2: the
     status ran before the node answered);
  4. `./scripts/demo.sh stop` exits 0 and every node it started exits.

The demo runs in a directory of its own (SGNFS_DEMO_DIR), but on the demo's
fixed VIPs: if a demo cluster of the user's already serves them, the test
is skipped rather than fight it for the addresses.
"""

import os
import re
import socket
import subprocess
import tempfile
import time

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_VIPS = ('127.0.10.1', '127.0.20.1', '127.0.30.1', '127.0.40.1')


def listening(addr, port=2049):
    s = socket.socket()
    s.settimeout(1)
    try:
        return s.connect_ex((addr, port)) == 0
    finally:
        s.close()


def pids_alive(pids):
    alive = []
    for p in pids:
        try:
            os.kill(p, 0)
            alive.append(p)
        except ProcessLookupError:
            pass
    return alive


def test(h):
    plain = os.path.join(ROOT, 'build', 'src', 'daemon', 'sgnfsd')
    if os.path.realpath(os.environ.get('SGNFSD', plain)) != os.path.realpath(plain):
        raise harness.Skip('the demo runs the plain build (build/); this suite tests %s'
                           % os.environ.get('SGNFSD'))
    busy = [v for v in DEMO_VIPS if listening(v)]
    if busy:
        raise harness.Skip('a demo cluster already serves %s' % ', '.join(busy))
    demo_dir = tempfile.mkdtemp(prefix='sgnfs-readme-demo-', dir='/var/tmp')
    env = dict(os.environ, SGNFS_DEMO_DIR=demo_dir)
    demo = [os.path.join(ROOT, 'scripts', 'demo.sh')]
    pids = []
    try:
        r = subprocess.run(demo, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
        out = r.stdout
        for pidf in os.listdir(os.path.join(demo_dir, 'run')):
            if pidf.endswith('.pid'):
                with open(os.path.join(demo_dir, 'run', pidf)) as f:
                    pids.append(int(f.read().strip()))
        h.check(r.returncode == 0, './scripts/demo.sh exits 0 (%d); its last lines: %r'
                % (r.returncode, out.splitlines()[-6:]))

        # 1 -------------------------------------------------------------------
        for g in range(1, 5):
            h.check(re.search(r'sg%d via \S+: wrote and read back 4 MiB, identical' % g, out),
                    'sg%d wrote and read back 4 MiB through its VIP' % g)
        h.check(re.search(r'sg1 scratch \(access = ro\): write refused', out),
                'the read-only export refused a write')
        h.check(re.search(r"sg1's export via sg2's VIP: refused", out),
                'sg1\'s export refused through sg2\'s VIP')

        # 2 -------------------------------------------------------------------
        tl = out.split('== timeline')[-1].split('== after the failure')[0]
        h.check(re.search(r'sg1: client \S+ reclaim-done', tl) and 'sg1: grace over' in tl,
                'timeline: sg1\'s clients reclaim and its grace ends')
        probes = dict(re.findall(r'(sg\d): new-lock probes since the kill: (\d+ granted, 0 refused)',
                                 tl))
        h.check(all(g in probes and not probes[g].startswith('0 ') for g in ('sg2', 'sg3', 'sg4')),
                'sg2, sg3, sg4 granted every new-lock probe during the failover (%s)' % probes)

        # 3 -------------------------------------------------------------------
        final = out.split('restarted; it waits as a standby')[-1]
        states = dict(re.findall(r'^([abc])\s+(up|down)\b', final, re.M))
        h.check(states == {'a': 'up', 'b': 'up', 'c': 'up'},
                'the final status shows nodes a, b, c up (%s)' % states)
        h.check('Stop it with: ./scripts/demo.sh stop' in out, 'the demo prints how to stop it')
    finally:
        r = subprocess.run(demo + ['stop'], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        deadline = time.monotonic() + 30
        while pids_alive(pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        # 4 -------------------------------------------------------------------
        h.check(r.returncode == 0 and not pids_alive(pids),
                './scripts/demo.sh stop exits 0 (%d) and its %d nodes exit (left: %s)'
                % (r.returncode, len(pids), pids_alive(pids)))
        for p in pids_alive(pids):
            os.kill(p, 9)
        subprocess.run(['rm', '-rf', demo_dir])


harness.main(test, timeout=720)
