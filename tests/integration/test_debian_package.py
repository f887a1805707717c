"""
test_debian_package.py - the tree builds a Debian package that installs and
runs, and leaves the machine as it found it:

  1. a copy of the tree (the files git knows, as a fresh clone has them)
     builds with `dpkg-buildpackage -b -us -uc`;
  2. the package holds the binaries, the four man pages, the systemd unit
     sgnfsd@.service, the tmpfiles entry, /etc/sgnfs/cluster.ini and the
     OCF agents;
  3. `dpkg -i` installs it; a node started from /usr/sbin/sgnfsd serves a
     group, /usr/bin/sgnfsctl reports it online, SIGTERM stops it with
     exit 0; the installed man pages render without warnings;
  4. `dpkg --purge` removes it: none of its files remain.

Needs root and dpkg-buildpackage (skipped otherwise); skipped too if a
package named sgnfs is already installed (it is not ours to replace).
"""

import gzip
import os
import shutil
import subprocess
import time

import harness
from harness import Export, Group, Skip, TestAbort, log
import ops_util as ou

FILES = ('/usr/sbin/sgnfsd', '/usr/bin/sgnfsctl', '/usr/bin/sgnfs-client',
         '/usr/share/man/man8/sgnfsd.8.gz', '/usr/share/man/man8/sgnfsctl.8.gz',
         '/usr/share/man/man5/sgnfs.ini.5.gz', '/usr/share/man/man1/sgnfs-client.1.gz',
         '/lib/systemd/system/sgnfsd@.service', '/usr/lib/tmpfiles.d/sgnfs.conf',
         '/etc/sgnfs/cluster.ini', '/usr/lib/ocf/resource.d/sgnfs/sgnfsd',
         '/usr/lib/ocf/resource.d/sgnfs/group')


def run(argv, timeout=120, cwd=None, env=None):
    cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
                        env=env, timeout=timeout)
    return cp.returncode, cp.stdout.decode('utf-8', 'replace')


def dpkg(h, *args):
    """dpkg with a few retries while another dpkg/apt holds its lock."""
    for _ in range(60):
        rc, out = run(['dpkg'] + list(args), timeout=300)
        if rc == 0 or 'lock' not in out:
            return rc, out
        time.sleep(2)
    return rc, out


def copy_tree(src, dst):
    rc, out = run(['git', '-C', src, 'ls-files', '-z', '--cached', '--others',
                   '--exclude-standard'])
    if rc != 0:
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns('build*', '.git'))
        return
    for rel in out.split('\0'):
        if not rel or not os.path.isfile(os.path.join(src, rel)):
            continue
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel))


def test(h):
    if os.geteuid() != 0:
        raise Skip('needs root (dpkg -i)')
    h.need_tool('dpkg-buildpackage')
    rc, out = run(['dpkg-query', '-W', '-f=${Status}', 'sgnfs'])
    if rc == 0 and 'installed' in out and 'not-installed' not in out:
        raise Skip('a package named sgnfs is already installed here')
    src = os.environ.get('SGNFS_SRC', '')
    h.require(os.path.isfile(os.path.join(src, 'debian', 'control')), 'the tree has debian/')

    # ---- 1 -----------------------------------------------------------------
    work = os.path.join(h.tmp, 'pkg')
    tree = os.path.join(work, 'sgnfs')
    copy_tree(src, tree)
    env = dict(os.environ, DEB_BUILD_OPTIONS='nocheck parallel=2')
    env.pop('MESON_SOURCE_ROOT', None)
    log('dpkg-buildpackage -b -us -uc in %s' % tree)
    rc, out = run(['dpkg-buildpackage', '-b', '-us', '-uc'], timeout=1000, cwd=tree, env=env)
    with open(os.path.join(h.logdir, 'dpkg-buildpackage.log'), 'w') as f:
        f.write(out)
    h.logs.append((os.path.join(h.logdir, 'dpkg-buildpackage.log'), 'dpkg-buildpackage'))
    debs = [f for f in os.listdir(work) if f.startswith('sgnfs_') and f.endswith('.deb')]
    h.require(rc == 0 and len(debs) == 1, 'dpkg-buildpackage -b -us -uc: exit 0, one .deb '
              '(%d, %s)' % (rc, debs))
    deb = os.path.join(work, debs[0])

    # ---- 2 -----------------------------------------------------------------
    rc, listing = run(['dpkg-deb', '-c', deb])
    for f in FILES:
        h.check(' .%s' % f in listing or ' .%s\n' % f in listing,
                'the package holds %s' % f)

    # ---- 3 -----------------------------------------------------------------
    run_dir_before = os.path.exists('/run/sgnfs')
    rc, out = dpkg(h, '-i', deb)
    try:
        h.require(rc == 0, 'dpkg -i: exit 0 (%s)' % out[-300:])
        for f in FILES:
            h.check(os.path.exists(f), 'installed: %s' % f)
        rc, out = run(['/usr/sbin/sgnfsd', '--version'])
        h.check(rc == 0 and out.startswith('sgnfsd '), 'installed sgnfsd --version: %r' % out)
        unit = open('/lib/systemd/system/sgnfsd@.service').read()
        h.check('ExecStart=/usr/sbin/sgnfsd -f -c /etc/sgnfs/cluster.ini -n %i' in unit and
                'Type=notify' in unit, 'the unit runs the installed sgnfsd, Type=notify')
        for page in FILES[3:7]:
            text = gzip.open(page).read()
            cp = subprocess.run(['groff', '-ww', '-z', '-man'], input=text,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            h.check(cp.returncode == 0 and not cp.stderr, 'installed %s renders without '
                    'warnings (%r)' % (page, cp.stderr[:200]))
        # A node from the installed files.
        h.sgnfsd = '/usr/sbin/sgnfsd'
        os.environ['SGNFSCTL'] = '/usr/bin/sgnfsctl'
        c = h.cluster(groups=[Group('g1', [Export('s1', 101)], nodes=('a',))])
        a = c.start('a')
        rc, doc = ou.wait_status(c, lambda rc, d: rc == 0, 'g1 online from the installed node')
        h.check(ou.cluster_group(doc, 'g1')['owner'] == 'a' and
                ou.node_doc(doc, 'a')['status']['pid'] == a.pid,
                'installed sgnfsctl: g1 online on a (pid %d)' % a.pid)
        h.check(c.stop('a') == 0, 'the installed node stops with exit 0')
    finally:
        # ---- 4 -------------------------------------------------------------
        rc, out = dpkg(h, '--purge', 'sgnfs')
        h.check(rc == 0, 'dpkg --purge sgnfs: exit 0 (%s)' % out[-300:])
        left = [f for f in FILES if os.path.exists(f)]
        h.check(not left and not os.path.exists('/etc/sgnfs'),
                'nothing of the package is left (%s)' % left)
        # Its tmpfiles entry made /run/sgnfs at install; purge leaves it.
        if not run_dir_before and os.path.isdir('/run/sgnfs'):
            try:
                os.rmdir('/run/sgnfs')
            except OSError as e:
                h.check(False, '/run/sgnfs (made by the install) removed: %s' % e)


harness.main(test, timeout=1150)
