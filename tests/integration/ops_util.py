"""
ops_util.py - helpers of the operations tests (status, daemon hygiene,
logs, reload, metrics, packaging): run sgnfsctl and read its JSON.

Python 3 standard library only.
"""

import json
import os
import subprocess
import time

import harness
from harness import TestAbort, log


def ctl_path():
    p = os.environ.get('SGNFSCTL', '')
    if not p or not os.access(p, os.X_OK):
        raise TestAbort('SGNFSCTL not set or not executable (%r)' % p)
    return p


def ctl(c, *args, timeout=20):
    """Run `sgnfsctl -c FILE ARGS...`; returns (exit code, stdout, stderr)."""
    argv = [ctl_path(), '-c', c.config_path] + list(args)
    cp = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        timeout=timeout, preexec_fn=harness._pdeathsig)
    return cp.returncode, cp.stdout.decode('utf-8', 'replace'), cp.stderr.decode('utf-8',
                                                                                  'replace')


def status(c):
    """(exit code, document) of `sgnfsctl status --json`."""
    rc, out, err = ctl(c, 'status', '--json')
    try:
        return rc, json.loads(out)
    except ValueError:
        raise TestAbort('sgnfsctl status --json is not JSON (exit %d): %r %r'
                        % (rc, out[:300], err[:300]))


def cluster_group(doc, name):
    for g in doc.get('groups', []):
        if g.get('name') == name:
            return g
    return None


def node_doc(doc, name):
    for n in doc.get('nodes', []):
        if n.get('name') == name:
            return n
    return None


def served(doc, node, group):
    """@group's object in @node's own status, or None."""
    st = (node_doc(doc, node) or {}).get('status') or {}
    for g in st.get('groups', []):
        if g.get('name') == group:
            return g
    return None


def wait_status(c, pred, what, timeout=30):
    """Poll `status --json` until pred(rc, doc); returns (rc, doc)."""
    deadline = time.monotonic() + timeout
    while True:
        rc, doc = status(c)
        if pred(rc, doc):
            return rc, doc
        if time.monotonic() > deadline:
            raise TestAbort('%s: not within %ds (exit %d, groups %s)'
                            % (what, timeout, rc, [(g['name'], g['state'], g.get('reason'))
                                                  for g in doc.get('groups', [])]))
        time.sleep(0.1)


def write_config(c):
    """c.write_config(), but atomic (temporary file, rename): a status
    poller reading the file meanwhile sees the old or the new one, never
    half of one."""
    tmp = c.config_path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(c.config_text())
    os.replace(tmp, c.config_path)
