#!/usr/bin/env python3
"""
test_bench_lock - `sgnfs-client bench-lock` reports what the server did, in
order:

  1. --count 2000 pairs, 2 hosts x 2 owners x depth 8, against a real
     sgnfsd: the report says 2000 pairs, 4000 RPCs, none denied, no error,
     exit 0; the server's metrics counted exactly 2000 LOCK and 2000 UNLOCK
     calls of the group (nlockmgr v4, success) in the meantime, and it holds
     no lock of the bench's hosts afterwards; the same with --poll-us 50
     (the client polls before it sleeps, and still ends when the run does);
  2. another host holds the whole file: every one of 300 LOCKs is refused,
     reported as 300 denied, 0 pairs, 0 errors (exit 0), and the server
     counted 300 LOCK calls and no UNLOCK;
  3. the NLM port is one nobody listens on: every call fails, the run stops
     early with the errors counted (more than 100) and exit 3, polling or
     not; --poll-us above 1000 is refused as bad usage;
  4. the node is killed while a long run (10^9 pairs) has locks held: the run
     stops with errors counted and exit 3 (an UNLOCK refused at once by the
     dead server used to be retried for ever).
Simulated client hosts are 127.S.67.N.
"""
import json
import os
import signal
import subprocess
import time

import harness
import nlm_util as nu
import ops_util as ou
from harness import Export, Group, log
from nlm_util import Client


def bench(h, c, vip, path, count, extra=(), timeout=120):
    argv = [nu.client_path(), '--host', nu.host(c, 67, 1), '--nhosts', '2', '--server', vip,
            '--owners', '2', '--depth', '8', '--count', str(count), '--json',
            '--timeout', '5000'] + list(extra) + ['bench-lock', path]
    cp = h.run(argv, timeout=timeout, check=False)
    res = None
    for ln in cp.stdout.decode('utf-8', 'replace').splitlines():
        if ln.startswith('{'):
            res = json.loads(ln)
    h.require(res is not None, 'bench-lock printed its JSON report (exit %d)' % cp.returncode)
    return cp.returncode, res


def calls(h, c, proc):
    rc, out, err = ou.ctl(c, 'metrics', 'a')
    s, _, problems = ou.parse_metrics(out)
    h.require(rc == 0 and not problems, 'sgnfsctl metrics a (%d %s)' % (rc, problems[:3]))
    return ou.metric(s, 'sgnfs_rpc_calls_total', group='g1', program='nlockmgr', version='4',
                     procedure=proc, status='success')


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=671)], grace=2)])
    path = os.path.join(c.export('g1/data').path, 'F')
    with open(path, 'wb') as f:
        f.write(b'\0' * 4096)
    v1 = c.group('g1').vip
    c.start('a')
    nu.wait_online(h, c, ['g1'])
    bench_hosts = {nu.host(c, 67, 1), nu.host(c, 67, 2)}

    # ---- 1 ---------------------------------------------------------------
    l0, u0 = calls(h, c, 'LOCK'), calls(h, c, 'UNLOCK')
    rc, r = bench(h, c, v1, path, 2000)
    h.check(rc == 0 and r['pairs'] == 2000 and r['rpcs'] == 4000 and r['denied'] == 0 and
            r['errors'] == 0, 'bench-lock --count 2000: 2000 pairs, 4000 RPCs, nothing '
            'refused, exit 0 (%d %s)' % (rc, r))
    h.check(r['p50_us'] <= r['p99_us'] <= r['max_us'], 'p50 <= p99 <= max (%s)' % r)
    l1, u1 = calls(h, c, 'LOCK'), calls(h, c, 'UNLOCK')
    h.check(l1 - l0 == 2000 and u1 - u0 == 2000, 'the server counted 2000 LOCK and 2000 '
            'UNLOCK calls (%d, %d)' % (l1 - l0, u1 - u0))
    left = [lk for lk in nu.locks_of(nu.status(h, c), 'g1') if lk.get('client') in bench_hosts]
    h.check(left == [], 'the bench hosts hold nothing on the server afterwards (%s)' % left[:4])
    l0, u0 = l1, u1
    rc, r = bench(h, c, v1, path, 2000, extra=('--poll-us', '50'))
    l1, u1 = calls(h, c, 'LOCK'), calls(h, c, 'UNLOCK')
    h.check(rc == 0 and r['pairs'] == 2000 and r['rpcs'] == 4000 and r['errors'] == 0 and
            l1 - l0 == 2000 and u1 - u0 == 2000, 'bench-lock --poll-us 50 --count 2000: 2000 '
            'pairs, exit 0, the server counted 2000 LOCK and 2000 UNLOCK (%d %s %d %d)'
            % (rc, r, l1 - l0, u1 - u0))

    # ---- 2 ---------------------------------------------------------------
    other = Client(h, nu.host(c, 67, 9), v1, svid=9)
    other.expect('another host locks the whole file', 'lock', path, 0, 0, status='granted')
    l0, u0 = calls(h, c, 'LOCK'), calls(h, c, 'UNLOCK')
    rc, r = bench(h, c, v1, path, 300)
    h.check(rc == 0 and r['pairs'] == 0 and r['denied'] == 300 and r['errors'] == 0 and
            r['rpcs'] == 300, 'every LOCK refused: 300 denied, 0 pairs, 0 errors, exit 0 '
            '(%d %s)' % (rc, r))
    l1, u1 = calls(h, c, 'LOCK'), calls(h, c, 'UNLOCK')
    h.check(l1 - l0 == 300 and u1 - u0 == 0, 'the server counted 300 LOCK calls and no '
            'UNLOCK (%d, %d)' % (l1 - l0, u1 - u0))
    other.expect('the other host unlocks', 'unlock', path, 0, 0, status='granted')

    # ---- 3 ---------------------------------------------------------------
    rc, r = bench(h, c, v1, path, 1000000, extra=('--nlm-port', '9'))
    h.check(rc == nu.EXIT_ERROR and r['errors'] > 100 and r['pairs'] == 0,
            'nobody on the NLM port: errors counted, the run stops early, exit 3 (%d %s)'
            % (rc, r))
    rc, r = bench(h, c, v1, path, 1000000, extra=('--nlm-port', '9', '--poll-us', '50'))
    h.check(rc == nu.EXIT_ERROR and r['errors'] > 100 and r['pairs'] == 0,
            'the same while polling: the run stops early, exit 3 (%d %s)' % (rc, r))
    cp = h.run([nu.client_path(), '--server', v1, '--poll-us', '1001', 'bench-lock', path],
               timeout=30, check=False)
    h.check(cp.returncode == 64 and b'--poll-us' in cp.stderr,
            '--poll-us 1001: refused as bad usage, naming the option (%d %s)'
            % (cp.returncode, cp.stderr[-200:]))

    # ---- 4 ---------------------------------------------------------------
    argv = [nu.client_path(), '--host', nu.host(c, 67, 1), '--nhosts', '2', '--server', v1,
            '--owners', '2', '--depth', '8', '--count', str(10 ** 9), '--json',
            '--timeout', '2000', 'bench-lock', path]
    log('spawn: %s' % ' '.join(argv))
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=harness._pdeathsig)
    h.helpers.append(p)
    l0 = calls(h, c, 'LOCK')
    while calls(h, c, 'LOCK') - l0 < 2000 and p.poll() is None:
        time.sleep(0.05)
    c.kill9('a')
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
        h.check(False, 'bench-lock stops after the server died (it did not)')
        return
    r = [json.loads(ln) for ln in out.decode().splitlines() if ln.startswith('{')]
    h.check(p.returncode == nu.EXIT_ERROR and r and r[-1]['errors'] > 100 and
            r[-1]['pairs'] > 0, 'the server died mid-run: bench-lock stops, errors counted, '
            'exit 3 (%d %s %s)' % (p.returncode, r, err.decode()[-300:]))


harness.main(test, timeout=180)
