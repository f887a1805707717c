"""
test_man_pages.py - every man page renders: `man -l` exits 0 with nothing
on stderr, and `groff -ww -z -man` (all warnings) prints nothing.
"""

import os
import subprocess

import harness

PAGES = ('sgnfsd.8', 'sgnfsctl.8', 'sgnfs.ini.5', 'sgnfs-client.1')


def test(h):
    mandir = os.path.join(os.environ.get('SGNFS_SRC', ''), 'docs', 'man')
    groff = h.need_tool('groff')
    man = h.need_tool('man')
    for p in PAGES:
        path = os.path.join(mandir, p)
        h.require(os.path.exists(path), '%s exists' % path)
        cp = subprocess.run([groff, '-ww', '-z', '-man', path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60)
        h.check(cp.returncode == 0 and not cp.stderr,
                'groff -ww -z -man %s: no warning (%r)' % (p, cp.stderr.decode()[:300]))
        env = dict(os.environ, MANWIDTH='80', MAN_KEEP_STDERR='1', LC_ALL='C.UTF-8')
        cp = subprocess.run([man, '--warnings', '-l', path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60, env=env)
        name = p.rsplit('.', 1)[0].upper()
        h.check(cp.returncode == 0 and not cp.stderr and cp.stdout.decode().startswith(name),
                'man -l %s: renders, starts with %s, nothing on stderr (%d %r)'
                % (p, name, cp.returncode, cp.stderr.decode()[:300]))


harness.main(test, timeout=120)
