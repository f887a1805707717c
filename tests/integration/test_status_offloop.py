#!/usr/bin/env python3
"""
test_status_offloop.py - the node status is written off the event loop: the
loop only copies what the status shows, a thread-pool job builds the json-c
objects and the text, and the loop answers other requests meanwhile
(docs/status.md, "Where the status is built").

g1's client list holds 20,001 entries, planted before the node starts (as
in test_status_large), so each status lists 5,000 of them (one group served:
its share of 10,000).  K status requests are sent on the control socket at
once; while they are outstanding, `metrics` requests are sent on it one
after another.  Checked, as order and outcome, never as time:
  * a metrics answer, made on the loop, counts a status job in flight
    (sgnfs_status_jobs >= 1): the loop answered it between taking a
    status and sending that status's answer.  Rendered on the loop, as
    before, no answer could ever see one, whatever the timing;
  * every status answer then arrives whole, as the schema says: 5,000
    clients listed of 20,001, the cut said;
  * afterwards no job is left (sgnfs_status_jobs 0) and every status went
    through the pool (sgnfs_status_jobs_total >= K);
  * a status asked while the node stops is answered or its connection
    closed, and the node still exits cleanly (under ASan: no leak, no use
    after free of the job).
"""
import json
import os
import re
import select
import socket
import threading

import harness
import nlm_util as nu
import fo_util as fu
from harness import Export, Group, log

N = 20001
LIST_MAX = 5000   # GRP_STATUS_LIST_TOTAL / (2 lists x 1 group)
K = 8             # statuses outstanding at once
ROUNDS = 5


def ctl_send(c, line):
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(120)
    u.connect(os.path.join(c.run_dir, 'a.sock'))
    u.sendall(line.encode() + b'\n')
    return u


def read_all(u):
    data = b''
    while True:
        b = u.recv(1 << 20)
        if not b:
            break
        data += b
    u.close()
    return data


def metrics(c):
    """(status jobs now, status jobs since start) from a `metrics` answer."""
    text = json.loads(read_all(ctl_send(c, 'metrics')).decode()).get('text', '')
    now = re.search(r'^sgnfs_status_jobs\{[^}]*\} (\d+)$', text, re.M)
    total = re.search(r'^sgnfs_status_jobs_total\{[^}]*\} (\d+)$', text, re.M)
    return (int(now.group(1)) if now else None, int(total.group(1)) if total else None)


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=891)], grace=1)])
    fu.plant_clients(c, 'g1', 'big', N)
    c.start('a')
    nu.wait_online(h, c, ['g1'], timeout=240)

    seen = None       # (metrics answers, status answers complete) when seen
    answers = []
    for rnd in range(ROUNDS):
        socks = [ctl_send(c, 'status') for _ in range(K)]
        bufs = {s: b'' for s in socks}
        open_ = set(socks)
        asked = 0
        while open_:
            # drain whatever status bytes have come, without waiting
            r, _, _ = select.select(list(open_), [], [], 0)
            for s in r:
                b = s.recv(1 << 20)
                if b:
                    bufs[s] += b
                else:
                    open_.discard(s)
                    s.close()
            if not open_:
                break
            jobs, _ = metrics(c)
            asked += 1
            if jobs is None:
                h.check(False, 'metrics have sgnfs_status_jobs')
                return
            if jobs >= 1 and seen is None:
                seen = (asked, K - len(open_))
                log('round %d: metrics answer %d counts %d status jobs in flight, '
                    '%d of %d statuses answered' % (rnd, asked, jobs, K - len(open_), K))
        answers += [bufs[s] for s in socks]
        if seen:
            break
        log('round %d: every status answered before a metrics answer saw one in flight; '
            'again' % rnd)
    h.check(seen is not None,
            'a metrics answer made on the loop while a status was being written off it '
            '(%d rounds of %d statuses)' % (ROUNDS, K))
    good = 0
    for data in answers:
        try:
            st = json.loads(data.decode())
        except ValueError:
            continue
        g1 = [g for g in st.get('groups', []) if g.get('name') == 'g1']
        if (st.get('schema') == 1 and g1 and g1[0].get('nclients') == N
                and len(g1[0].get('clients', [])) == LIST_MAX
                and g1[0].get('clients_truncated') is True
                and data.endswith(b'}\n') and data.count(b'\n') == 1):
            good += 1
    h.check(good == len(answers) and good >= K,
            'every status answer whole: %d of %d list %d of %d clients, cut said'
            % (good, len(answers), LIST_MAX, N))
    jobs, total = metrics(c)
    h.check(jobs == 0 and total is not None and total >= len(answers),
            'no status job left (%s), every status went through the pool (%s >= %d)'
            % (jobs, total, len(answers)))

    # The node stops while statuses are outstanding: each is answered or
    # its connection closed, and the node exits cleanly (the harness
    # checks the exit and, under ASan, the sanitizer's report).
    socks = [ctl_send(c, 'status') for _ in range(K)]
    got = {}

    def reader(s):
        try:
            got[s] = read_all(s)
        except OSError:
            got[s] = b''
    # read while the node stops: an answer larger than the socket's buffer
    # is written as the reader takes it
    threads = [threading.Thread(target=reader, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    c.stop('a')
    for t in threads:
        t.join(120)
    for s in socks:
        data = got.get(s)
        h.check(data is not None and (data == b'' or data.endswith(b'}\n')),
                'a status asked as the node stopped: answered whole or closed (%s bytes)'
                % (len(data) if data is not None else 'no answer read'))
    h.check(not c.nodes['a'].alive(), 'node a stopped')


if __name__ == '__main__':
    harness.main(test, timeout=600)
