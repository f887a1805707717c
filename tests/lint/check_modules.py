#!/usr/bin/env python3
"""
check_modules.py - the module graph of src/ (docs/architecture.md) has no
loop, and no protocol module reaches into the service group's own header.

A module is a directory of src/; an arrow A -> B is an #include "B/..." in
a file of A (log.h, sbuf.h, sjson.h, version.h count as common).
group/gslot.h is the group's interface to the protocols and counts as a
module of its own ("gslot"), which includes nothing of ours.

Exit 0 when both hold, 1 (with what is wrong) otherwise.
"""
import collections
import os
import re
import sys

COMMON = ('log.h', 'sbuf.h', 'sjson.h', 'version.h')
PROTOCOLS = ('nfs', 'nlm', 'nsm')


def graph(src):
    edges = collections.defaultdict(set)
    bad = []
    mods = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    for m in mods:
        d = os.path.join(src, m)
        for f in sorted(os.listdir(d)):
            if not f.endswith(('.c', '.h')):
                continue
            me = 'gslot' if (m, f) == ('group', 'gslot.h') else m
            with open(os.path.join(d, f), encoding='utf-8') as fh:
                for line in fh:
                    mm = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not mm:
                        continue
                    inc = mm.group(1)
                    if inc in COMMON:
                        to = 'common'
                    elif '/' in inc:
                        to = inc.split('/')[0]
                        if inc == 'group/gslot.h':
                            to = 'gslot'
                        elif inc == 'group/group.h' and m in PROTOCOLS:
                            bad.append('%s/%s includes group/group.h' % (m, f))
                    else:
                        continue
                    if to != me and to in mods + ['gslot']:
                        edges[me].add(to)
    return edges, bad


def cycles(edges):
    found, state = [], {}

    def dfs(u, path):
        state[u] = 1
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1:
                found.append(path[path.index(v):] + [v])
            elif not state.get(v):
                dfs(v, path + [v])
        state[u] = 2

    for m in sorted(edges):
        if not state.get(m):
            dfs(m, [m])
    return found


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', '..', 'src')
    edges, bad = graph(src)
    for m in sorted(edges):
        print('%-8s -> %s' % (m, ' '.join(sorted(edges[m]))))
    loops = cycles(edges)
    for c in loops:
        print('LOOP: %s' % ' -> '.join(c))
    for b in bad:
        print('FORBIDDEN: %s' % b)
    if 'gslot' in edges:
        print('FORBIDDEN: group/gslot.h includes %s' % sorted(edges['gslot']))
    ok = not loops and not bad and 'gslot' not in edges
    print('module graph: %s' % ('no loop, protocols use group/gslot.h only' if ok else 'BROKEN'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
