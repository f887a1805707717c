#!/usr/bin/env python3
"""
test_handle_stability - file handles outlive the server process.

A client takes handles (the export root, a directory and a file it created
through NFS, a file that was already on disk) from one sgnfsd; then

  1. the node is stopped cleanly and started again;
  2. the node is killed with SIGKILL and the group is brought up by a
     different node (b) on the same directories;

and after each, the saved handles are sent again WITHOUT a new MNT, as a
client holding them across a restart or failover would: GETATTR, READ,
LOOKUP (same handle bytes), READDIR and WRITE must work, and the write
verifier must have changed (so clients resend uncommitted data).
"""
import os

import harness
from harness import Export, Group

TEXT = 'this file existed on disk before the server started\n'


def test(h):
    procs = h.env_path('NFS3_PROCS', skip_if_missing=True)
    g = Group('g1', [Export('g1/data', fsid=101, squash='none')], nodes=('a', 'b'))
    c = h.cluster([g])
    e = c.export('g1/data')
    with open(os.path.join(e.path, 'ondisk.txt'), 'w') as f:
        f.write(TEXT)
    handles = os.path.join(h.tmp, 'handles.txt')

    c.start('a')
    h.run([procs, 'dump-handles', '--server', g.vip, '--export', e.path,
           '--expect', TEXT, '--out', handles], timeout=60, what='dump handles from node a')
    h.require(os.path.exists(handles), 'handles were saved')
    with open(handles) as f:
        log_lines = f.read()
    print(log_lines, end='')

    # 1. Clean restart of the same node.
    c.stop('a')
    c.start('a')
    h.run([procs, 'reuse-handles', '--server', g.vip, '--expect', TEXT, '--in', handles],
          timeout=60, what='reuse handles after a restart of node a')

    # 2. Crash, and the group comes up on another node.
    c.kill9('a')
    g.nodes = ['b', 'a']
    c.write_config()
    c.start('b')
    h.run([procs, 'reuse-handles', '--server', g.vip, '--expect', TEXT, '--in', handles],
          timeout=60, what='reuse handles on node b after node a was killed')
    c.stop('b')


if __name__ == '__main__':
    harness.main(test, timeout=150)
