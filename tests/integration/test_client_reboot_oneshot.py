#!/usr/bin/env python3
"""
test_client_reboot_oneshot - `sgnfs-client ... reboot` run once (not in
hold mode) returns only after its SM_NOTIFY has been answered: the moment
it exits, the server has already released what the "rebooted" host held.
(It used to exit at once, and the SM_NOTIFY never left.)

  host 1 locks F 0..9 and G 0..9 (one-shot commands: the server keeps the
  locks); a one-shot reboot of host 1; right after it exits, status shows
  no lock of host 1 and another host is granted F 0..9 at once.
Simulated client hosts are 127.S.65.N.
"""
import os

import harness
import nlm_util as nu
from harness import Export, Group
from nlm_util import Client


def test(h):
    c = h.cluster([Group('g1', [Export('g1/data', fsid=651)], grace=5)])
    paths = {}
    for name in ('F', 'G'):
        p = os.path.join(c.export('g1/data').path, name)
        with open(p, 'wb') as f:
            f.write(b'x' * 64)
        paths[name] = p
    v1 = c.group('g1').vip
    c.start('a')
    nu.wait_online(h, c, ['g1'])
    h1 = Client(h, nu.host(c, 65, 1), v1, svid=11)
    h2 = Client(h, nu.host(c, 65, 2), v1, svid=22)
    h1.expect('host 1 locks F', 'lock', paths['F'], 0, 10, rc=0)
    h1.expect('host 1 locks G', 'lock', paths['G'], 0, 10, rc=0)
    h.require(len(nu.locks_of(nu.status(h, c), 'g1', client=h1.name)) == 2,
              'the server holds both of host 1\'s locks')
    h2.expect('host 2 is refused F while host 1 holds it', 'lock', paths['F'], 0, 10,
              status='denied')
    h1.expect('a one-shot reboot of host 1 exits 0', 'reboot', rc=0)
    # No waiting: the command's return is the event.
    left = nu.locks_of(nu.status(h, c), 'g1', client=h1.name)
    h.check(left == [], 'when the reboot command has returned, host 1 holds nothing (%s)' % left)
    h2.expect('host 2 is granted F at once', 'lock', paths['F'], 0, 10, status='granted')


harness.main(test, timeout=60)
