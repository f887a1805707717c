#!/usr/bin/env python3
"""
The OCF resource agents ocf/sgnfsd and ocf/group (docs/deployment.md),
run by the resource-agents tools exactly as Pacemaker runs them.

Cluster: [cluster] ownership = managed; nodes a and b.  Node a is run by
the harness; node b only ever by the sgnfsd agent.
  g1  nodes a b

Checked, in order:
  * ocf-tester passes for ocf:sgnfs:group on g1 (node a): meta-data,
    validate-all, probe (7), start, monitor (0), start again, stop, stop
    again, monitor (7);
  * ocf-tester passes for ocf:sgnfs:sgnfsd on node b, and b's sgnfsd
    really ran and really stopped (its pid file's process is gone);
  * the group agent's monitor tells failure from offline: a start that
    fails (g1's storage identity removed) exits 1 with the reason in the
    agent's output, monitor then exits 1 (failed), not 7;
  * a probe of a stopped group says nothing on stderr;
  * validate-all: 6 (not configured) on a broken cluster file, on an
    unknown group and on an unknown node; 5 (not installed) when
    sgnfsctl or sgnfsd is missing.
"""

import os
import shutil
import subprocess

import harness
import fo_util as fu
from harness import log

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OCF_ROOT = '/usr/lib/ocf'


def agent(name):
    return os.path.join(SRC, 'ocf', name)


def run_agent(h, name, action, params, meta=None):
    """Run one agent action as the cluster's executor does; (rc, output)."""
    env = dict(os.environ)
    env['OCF_ROOT'] = OCF_ROOT
    env['OCF_RESOURCE_INSTANCE'] = 'it-' + name
    env['OCF_RESOURCE_TYPE'] = name
    env['OCF_RESOURCE_PROVIDER'] = 'sgnfs'
    env['__OCF_ACTION'] = action
    env['OCF_RESKEY_CRM_meta_timeout'] = '20000'
    for k, v in params.items():
        env['OCF_RESKEY_' + k] = v
    for k, v in (meta or {}).items():
        env['OCF_RESKEY_CRM_meta_' + k] = v
    p = subprocess.run([agent(name), action], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60,
                       preexec_fn=harness._pdeathsig)
    out, err = p.stdout.decode(), p.stderr.decode()
    log('%s %s -> %d %s %s' % (name, action, p.returncode, out.strip()[-300:], err.strip()))
    return p.returncode, out, err


def ocf_tester(h, name, params):
    argv = ['ocf-tester', '-n', 'it-' + name]
    for k, v in params.items():
        argv += ['-o', '%s=%s' % (k, v)]
    argv.append(agent(name))
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                       preexec_fn=harness._pdeathsig)
    out = p.stdout.decode()
    log('ocf-tester %s -> %d\n%s' % (name, p.returncode, out))
    return p.returncode, out


def test(h):
    if not shutil.which('ocf-tester') or not os.path.exists(
            os.path.join(OCF_ROOT, 'lib/heartbeat/ocf-shellfuncs')):
        raise harness.Skip('resource-agents (ocf-tester, ocf-shellfuncs) not installed')
    gs = [harness.Group('g1', [harness.Export('g1/fs', fsid=101)], nodes=('a', 'b'), grace=5)]
    c = h.cluster(groups=gs, nodes=['a', 'b'], cluster_extra={'ownership': 'managed'})
    ctl = fu.ctl_path()
    base = {'config': c.config_path, 'sgnfsctl': ctl, 'sgnfsd': h.sgnfsd}
    c.start('a', wait=False)
    p_a = dict(base, group='g1', node='a')
    for _ in range(100):
        if run_agent(h, 'group', 'monitor', p_a)[0] == 7:
            break
        import time
        time.sleep(0.1)

    # -- ocf-tester, group --------------------------------------------------
    rc, out = ocf_tester(h, 'group', p_a)
    h.check(rc == 0 and 'passed all tests' in out, 'ocf-tester passes for ocf:sgnfs:group')
    h.check(run_agent(h, 'group', 'monitor', p_a)[0] == 7,
            'after ocf-tester g1 is stopped again (monitor 7)')

    # -- ocf-tester, sgnfsd (node b) -----------------------------------------
    p_b = dict(base, node='b')
    rc, out = ocf_tester(h, 'sgnfsd', p_b)
    h.check(rc == 0 and 'passed all tests' in out, 'ocf-tester passes for ocf:sgnfs:sgnfsd')
    rc, _, _ = run_agent(h, 'sgnfsd', 'start', p_b)
    h.require(rc == 0, 'sgnfsd agent start -n b: 0')
    with open(os.path.join(c.run_dir, 'b.pid')) as f:
        pid_b = int(f.read().strip())
    h.check(os.path.exists('/proc/%d' % pid_b), 'node b runs (pid %d)' % pid_b)
    rc, _, _ = run_agent(h, 'group', 'start', dict(p_a, node='b'))
    h.check(rc == 0, 'group agent start g1 on b, the agent-run node: 0')
    rc, _, _ = run_agent(h, 'group', 'stop', dict(p_a, node='b'))
    h.check(rc == 0, 'group agent stop g1 on b: 0')
    rc, _, _ = run_agent(h, 'sgnfsd', 'stop', p_b)
    h.check(rc == 0 and not os.path.exists('/proc/%d' % pid_b),
            'sgnfsd agent stop: 0 and node b\'s process is gone')
    rc, _, _ = run_agent(h, 'sgnfsd', 'monitor', p_b)
    h.check(rc == 7, 'sgnfsd agent monitor of the stopped node b: 7 (%d)' % rc)
    rc, _, _ = run_agent(h, 'sgnfsd', 'stop', p_b)
    h.check(rc == 0, 'sgnfsd agent stop again: 0 (idempotent)')

    # -- a failed start is 1, not 7 -----------------------------------------
    sd = os.path.join(c.export('g1/fs').path, '.sgnfs')
    ident = os.path.join(sd, 'identity')
    h.require(os.path.exists(ident), 'g1 was initialised (%s)' % ident)
    os.rename(ident, ident + '.away')
    rc, out, err = run_agent(h, 'group', 'start', p_a)
    h.check(rc == 1 and 'identity' in (out + err),
            'start g1 without its storage identity: 1, and the reason names the identity')
    rc, _, err = run_agent(h, 'group', 'monitor', p_a)
    h.check(rc == 1, 'monitor after the failed start: 1 (failed), not 7 (%d)' % rc)
    os.rename(ident + '.away', ident)
    rc, _, _ = run_agent(h, 'group', 'start', p_a)
    h.check(rc == 0, 'start once the identity is back: 0')
    rc, _, _ = run_agent(h, 'group', 'stop', p_a)
    h.check(rc == 0, 'stop: 0')

    # -- probes are quiet ---------------------------------------------------
    rc, _, err = run_agent(h, 'group', 'monitor', p_a, meta={'interval': '0'})
    h.check(rc == 7 and err.strip() == '', 'a probe of the stopped g1: 7, nothing on stderr')

    # -- validate-all -------------------------------------------------------
    bad = os.path.join(c.dir, 'bad.ini')
    with open(bad, 'w') as f:
        f.write('[cluster]\nname = x\nno_such_key = 1\n')
    for name, params, want, what in [
            ('group', dict(p_a, config=bad), 6, 'a broken cluster file'),
            ('group', dict(p_a, group='nosuch'), 6, 'an unknown group'),
            ('group', dict(p_a, node='nosuch'), 6, 'an unknown node'),
            ('group', dict(p_a, sgnfsctl='/nonexistent/sgnfsctl'), 5, 'no sgnfsctl'),
            ('group', dict(p_a, sgnfsd='/nonexistent/sgnfsd'), 5, 'no sgnfsd'),
            ('sgnfsd', dict(p_b, config=bad), 6, 'a broken cluster file'),
            ('sgnfsd', dict(p_b, node='nosuch'), 6, 'an unknown node'),
            ('sgnfsd', dict(p_b, sgnfsd='/nonexistent/sgnfsd'), 5, 'no sgnfsd')]:
        rc, _, _ = run_agent(h, name, 'validate-all', params)
        h.check(rc == want, '%s validate-all with %s: %d (%d)' % (name, what, want, rc))


harness.main(test, timeout=300)
