#!/usr/bin/env python3
"""
test_journal_damage.py - a torn or damaged lock journal at takeover
(issue 6): a torn last batch is dropped and recovery goes on with the
journal; damage anywhere else makes the group fall back to the plain
timeout grace, never to a wrong state.

Cluster: nodes a, b (c never runs); g1 (a b, grace 6 s).  Only one node
runs at a time, so the journal can be changed on disk between the kill of
one owner and the start of the next.

  1. Three hosts lock one range each, one after another (each grant is its
     own batch).  kill -9 a.  Half a record (a bad checksum, the batch
     after the last) is written after the last batch, into the zeroed
     space: the torn tail of a write that never finished.  b starts: it logs the torn batch dropped, reserves the 3
     locks, the hosts reclaim and grace ends early.
  2. kill -9 b.  One byte of the first lock record (batch 2, with batches
     written after it was acknowledged) is flipped.  a starts: it logs the damage and its
     offset, keeps the file as journal.damaged, and runs a plain grace: a
     new lock on a free range is refused with the grace status; the hosts
     reclaim; grace runs to its timeout.
  3. Once a has folded its own records (the reclaims; metrics: one fold,
     none failed), kill -9 a.  b starts and
     trusts the journal a rewrote when its grace ended: the 3 locks are reserved again and grace ends early.
  4. Two more hosts lock, one after the other: two batches, each written
     with nothing in flight (journal_inflight = 1), so the last one says
     "solo".  kill -9 b; one byte of the last-but-one batch's lock record
     is flipped (bit rot, not a torn write: the batch after it was written
     only once it was durable, and its grant answered).  a starts: it
     logs the damage at that record, keeps journal.damaged, runs a plain
     grace: a newcomer asking for the damaged record's range is refused
     (before the solo flag both batches were dropped as a torn tail, that
     range was reserved by nobody, and the newcomer got it while its
     holder still believed it held it).
"""

import os
import re
import struct
import time

import harness
import fo_util as fu
import ops_util as ou
from harness import log

GRACE = 6
MAGIC = 0x314a4753


def records(data):
    """[(offset, length, type, batch)] of the journal's well-formed prefix."""
    out, pos = [], 0
    while pos + 48 <= len(data):
        magic, _crc, ln = struct.unpack_from('<III', data, pos)
        if magic != MAGIC or ln < 48 or pos + ln > len(data):
            break
        out.append((pos, ln, data[pos + 12], struct.unpack_from('<Q', data, pos + 16)[0]))
        pos += ln
    return out


def journal_metric(h, c, node, name):
    """@name of g1 on @node, from `sgnfsctl metrics NODE`."""
    rc, out, _ = ou.ctl(c, 'metrics', node)
    s, _, problems = ou.parse_metrics(out)
    h.require(rc == 0 and not problems, 'sgnfsctl metrics %s (%d %s)' % (node, rc, problems[:3]))
    return ou.metric(s, name, group='g1')


def wait_metric(h, c, node, name, at_least, what, timeout=20):
    """Wait for @name of g1 on @node to reach @at_least (the order this
    test relies on, not a time); check it got there."""
    deadline = time.monotonic() + timeout
    while True:
        v = journal_metric(h, c, node, name)
        if v >= at_least or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    h.check(v >= at_least, '%s (%s = %d)' % (what, name, v))


def damage_and_start(h, c, jpath, data, rec_off, which):
    """Flip one byte inside the record at @rec_off of the journal @data, write
    it back, start node a: it must start g1 in a plain grace and log the
    damage at that record's offset (its latest such line)."""
    data[rec_off + 52] ^= 0x40
    with open(jpath, 'wb') as f:
        f.write(bytes(data))
    c.start('a', wait=False)
    st = fu.wait_group(h, c, 'g1', owner='a', timeout=10)
    h.check(st['g1']['state'] == 'grace', 'a starts g1 in grace')
    m = list(re.finditer(r'group=g1 journal damaged at offset (\d+): ([^\n]*)',
                         fu.node_log(c.nodes['a'])))
    h.check(m and int(m[-1].group(1)) == rec_off,
            'a logged the damage at %s offset %d: %s'
            % (which, rec_off, m[-1].group(0) if m else None))
    return st


def test(h):
    c = fu.three_nodes(h, [('g1', 'ab', GRACE)])
    fu.start_nodes(h, c, names=('a',))
    v1, f1 = c.group('g1').vip, fu.lock_file(c, 'g1')
    jpath = os.path.join(fu.statedir(c, 'g1'), 'journal')
    holds = []
    for k in range(3):
        ho = fu.Hold(h, fu.client_addr(c, 1, 1 + k), v1, f1, 100 * k, 10, tag='h%d' % k)
        h.require(ho.wait_holding(), 'host %d holds [%d, %d]' % (k, 100 * k, 100 * k + 9))
        holds.append(ho)
    newcomer = fu.client_addr(c, 2, 1)

    # -- 1. torn tail ----------------------------------------------------------
    t_kill = time.monotonic()
    c.kill9('a')
    data = open(jpath, 'rb').read()
    recs = records(data)
    end = recs[-1][0] + recs[-1][1] if recs else 0
    h.require(len(recs) >= 4 and not any(data[end:]),
              'the journal parses as %d whole records (%d bytes), then %d bytes of zeroed space'
              % (len(recs), end, len(data) - end))
    last_off, last_len, _, last_batch = recs[-1]
    torn = bytearray(data[last_off:last_off + last_len])
    struct.pack_into('<Q', torn, 16, last_batch + 1)       # the next batch...
    with open(jpath, 'r+b') as f:
        f.seek(end)
        f.write(bytes(torn[:last_len // 2 + 4]))            # ...cut off mid-record
    c.start('b', wait=False)
    fu.wait_group(h, c, 'g1', owner='b', timeout=10)
    n = sum(ho.wait_count('reclaim-done', 1, 15, since=t_kill) for ho in holds)
    h.check(n == 3, 'every host reclaimed on b (%d)' % n)
    st = fu.wait_for_status(h, c, lambda s: s.get('g1', {}).get('state') == 'online', GRACE - 2,
                            'g1 grace ends early on b')
    lb = fu.node_log(c.nodes['b'])
    h.check('a torn last batch (never acknowledged) was dropped' in lb,
            'b logged the torn last batch as dropped')
    h.check(re.search(r'group=g1 journal loaded: .* 3 locks and 0 shares reserved', lb),
            'b reserved exactly the 3 locks')
    h.check(len(st['g1']['locks']) == 3, 'b holds the 3 locks (%d)' % len(st['g1']['locks']))

    # -- 2. damage in the middle -------------------------------------------------
    t_kill = time.monotonic()
    c.kill9('b')
    data = bytearray(open(jpath, 'rb').read())
    recs = records(bytes(data))
    lock_recs = [r for r in recs if r[2] == 2]
    # later by 2 batches or more: JR_INFLIGHT_MAX, the batches that may be torn together
    h.require(len(lock_recs) >= 2 and recs[-1][3] >= lock_recs[0][3] + 2,
              'a lock record with later batches after it exists')
    damage_and_start(h, c, jpath, data, lock_recs[0][0], 'the record\'s')
    h.check(os.path.exists(jpath + '.damaged'), 'the damaged journal is kept as journal.damaged')
    rc, _ = fu.one_shot(h, newcomer, v1, 'lock', '%s:%s' % (v1, f1), 5000, 10, timeout_ms=4000)
    h.check(rc == 2, 'plain grace: a new lock on a free range is refused with grace (exit %d)'
            % rc)
    n = sum(ho.wait_count('reclaim-done', 1, 15, since=t_kill) for ho in holds)
    h.check(n == 3, 'every host reclaimed on a (%d)' % n)
    time.sleep(0.5)
    h.check(fu.status(c)['g1']['state'] == 'grace', 'plain grace does not end at the last reclaim')
    st = fu.wait_for_status(h, c, lambda s: s.get('g1', {}).get('state') == 'online', GRACE + 5,
                            'g1 grace ends at its timeout')
    h.check(len(st['g1']['locks']) == 3, 'a holds the 3 reclaimed locks')

    # -- 3. the rewritten journal is trusted again -----------------------------------
    wait_metric(h, c, 'a', 'sgnfs_journal_folds_total', 1,
                'a folded its own records (the reclaims) at grace end, off the loop')
    h.check(journal_metric(h, c, 'a', 'sgnfs_journal_fold_failures_total') == 0 and
            journal_metric(h, c, 'a', 'sgnfs_journal_compactions_total') == 1,
            'a: no fold failed, one compaction')
    t_kill = time.monotonic()
    c.kill9('a')
    c.start('b', wait=False)
    fu.wait_group(h, c, 'g1', owner='b', timeout=10)
    n = sum(ho.wait_count('reclaim-done', 1, 15, since=t_kill) for ho in holds)
    h.check(n == 3, 'every host reclaimed on b again (%d)' % n)
    fu.wait_for_status(h, c, lambda s: s.get('g1', {}).get('state') == 'online', GRACE - 2,
                       'g1 grace ends early on b again')
    lb = fu.node_log(c.nodes['b'])
    h.check(re.search(r'group=g1 journal loaded: .* 3 locks and 0 shares reserved', lb),
            'b trusts the rewritten journal: 3 locks reserved')

    # -- 4. bit rot before a solo batch ---------------------------------------------
    for k in (3, 4):
        ho = fu.Hold(h, fu.client_addr(c, 1, 1 + k), v1, f1, 100 * k, 10, tag='h%d' % k)
        h.require(ho.wait_holding(), 'host %d holds [%d, %d]' % (k, 100 * k, 100 * k + 9))
        holds.append(ho)
    t_kill = time.monotonic()
    c.kill9('b')
    data = bytearray(open(jpath, 'rb').read())
    recs = records(bytes(data))
    last_batch = recs[-1][3]
    prev = [r for r in recs if r[3] == last_batch - 1 and r[2] == 2]
    h.require(recs[-1][2] == 2 and data[recs[-1][0] + 13] & 4 and len(prev) == 1,
              'the last batch is a lock record that says solo (flags %#x), the one before it '
              'a lock record' % data[recs[-1][0] + 13])
    damage_and_start(h, c, jpath, data, prev[0][0], 'the last-but-one batch\'s record')
    rc, _ = fu.one_shot(h, newcomer, v1, 'lock', '%s:%s' % (v1, f1), 300, 10, timeout_ms=4000)
    h.check(rc == 2, 'plain grace: a newcomer asking for the damaged record\'s range [300, 309] '
            'is refused with grace (exit %d)' % rc)
    n = sum(ho.wait_count('reclaim-done', 1, 15, since=t_kill) for ho in holds)
    h.check(n == 5, 'every host reclaimed on a (%d)' % n)
    st = fu.wait_for_status(h, c, lambda s: s.get('g1', {}).get('state') == 'online', GRACE + 5,
                            'g1 grace ends at its timeout')
    h.check(len(st['g1']['locks']) == 5, 'a holds the 5 reclaimed locks')

    for ho in holds:
        ho.stop()
    fu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=200)
