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


def set_node_keys(c, keys):
    """Write the config with extra keys in [node] sections: keys = {node:
    {key: value}} (the harness writes [node] sections bare)."""
    text = c.config_text()
    for n, kv in keys.items():
        add = ''.join('%s = %s\n' % (k, v) for k, v in kv.items())
        text = text.replace('[node %s]\n' % n, '[node %s]\n%s' % (n, add), 1)
    tmp = c.config_path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, c.config_path)


def parse_metrics(text):
    """Prometheus text -> ({(name, ((label, value), ...)): float}, {family: type},
    [problems]).  Checks what a scraper relies on: a TYPE before a family's
    samples, one TYPE per family, a family's samples together (not split by
    another family's), cumulative buckets ending in +Inf == count."""
    import re
    samples, types, problems = {}, {}, []
    current, done = None, set()
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    lab_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for ln in text.splitlines():
        if not ln:
            continue
        if ln.startswith('# TYPE '):
            _, _, name, typ = ln.split(' ', 3)
            if name in types:
                problems.append('TYPE %s twice' % name)
            types[name] = typ
            continue
        if ln.startswith('#'):
            continue
        m = line_re.match(ln)
        if not m:
            problems.append('bad line %r' % ln)
            continue
        name, labels, val = m.group(1), m.group(2) or '', m.group(3)
        base = name
        for suf in ('_bucket', '_sum', '_count'):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == 'histogram':
                base = name[:-len(suf)]
        if base not in types:
            problems.append('%s without a TYPE before it' % name)
        if base != current:
            if base in done:
                problems.append('family %s split by another family' % base)
            if current is not None:
                done.add(current)
            current = base
        key = (name, tuple(sorted(lab_re.findall(labels))))
        if key in samples:
            problems.append('sample twice: %s' % (key,))
        samples[key] = float(val)
    # histograms: cumulative, +Inf == count
    for (name, labels), v in samples.items():
        if not name.endswith('_count') or types.get(name[:-6]) != 'histogram':
            continue
        base = name[:-6]
        bks = sorted(((float('inf') if dict(l)['le'] == '+Inf' else float(dict(l)['le'])), bv)
                     for (n, l), bv in samples.items() if n == base + '_bucket' and
                     tuple(x for x in l if x[0] != 'le') == labels)
        vals = [bv for _, bv in bks]
        if vals != sorted(vals) or not bks or bks[-1][0] != float('inf') or vals[-1] != v:
            problems.append('histogram %s%s not cumulative or +Inf != count' % (base, labels))
    return samples, types, problems


def metric(samples, name, **labels):
    """The value of the one sample of @name with @labels (a subset); 0 if
    none; raises if several match."""
    want = set(labels.items())
    hits = [v for (n, l), v in samples.items() if n == name and want <= set(l)]
    if len(hits) > 1:
        raise TestAbort('%s %s matches %d samples' % (name, labels, len(hits)))
    return hits[0] if hits else 0.0
