#!/usr/bin/env python3
"""
test_fault_kill9.py - kill -9 the owner of a service group at random
instants during a lock workload, many times, and check lock recovery after
every failover (issue 4, "Fault tests"; claims 3-10, 27-37).

Cluster: 3 nodes (a, b, c), 3 groups with rotated preferences (g0: a b c,
g1: b c a, g2: c a b; g2 has two VIPs), grace FAULT_GRACE s (default 3),
two files per group.

Workload, running throughout:
  * NHOSTS simulated client hosts, each one `sgnfs-client hold` process
    (callbacks on, --record), driven by its own thread: lock (exclusive or
    shared), unlock, re-lock, over 3 owners (svids) per host and small
    overlapping ranges on the same files, so conflicts are frequent.  A
    host talks to one VIP per group.
  * short-lived one-shot `sgnfs-client lock` / `unlock` processes under the
    same host names (other svids), on every group, also while a group
    recovers: these are the "new locks" that grace must keep out.

Each iteration: wait a random delay, pick a group at random, kill -9 its
owner (which fails over every group that node serves), pause the hold
threads on the affected groups, snapshot what every host believes it holds
(its --record) and each group's client list, wait until each affected
group is online elsewhere, restart the killed node, wait until every
listed client was notified and finished reclaiming (or grace + 5 s), then
check:

  (1) no two owners hold conflicting locks: in every group's lock table
      (sgnfsctl status --json), and in what the hosts believe they hold in
      the recovered groups; each group has exactly one owner;
  (2) every lock a host believed it held at the kill is held by it on the
      new owner (reclaimed), or the host was notified (from that VIP, with
      the new state number) and reported it lost; every lock a host
      believes it holds after recovery is held on the server; a host
      holding a lock was on the group's client list;
  (3) every client on the group's list was sent SM_NOTIFY from every VIP
      of the group, naming that VIP, with the new state number;
  and, stricter than (2): no lock is lost while its group is still in
  grace (a reclaim refused in grace means grace did not protect it), the
  new owner is in grace when its list is non-empty, and the state number
  strictly increases and is odd.
A lock touched by a command that was in flight at the kill (its reply may
have been lost with the node) is exempt from the reclaimed-or-lost check.

Environment: FAULT_ITERATIONS (default 50), FAULT_SEED (default: random,
printed), FAULT_GRACE (default 3), FAULT_HOSTS (default 5),
FAULT_MAX_DELAY (seconds before a kill, default 1.2), FAULT_MAX_BAD
(stop after this many iterations with violations, default 3),
FAULT_JOURNAL (on | off, default on: every group's lock journal; with it
on, grace ends as soon as every journaled lock is back, so "the new owner
is in grace" is not required: the checks that no lock is lost and none is
granted twice are what holds it to account).
"""

import os
import random
import statistics
import subprocess
import sys
import threading
import time

import harness
from harness import TestAbort, log
import fault_util as fu

ITERATIONS = int(os.environ.get('FAULT_ITERATIONS', '50'))
SEED = int(os.environ.get('FAULT_SEED') or random.SystemRandom().randrange(1, 1 << 31))
GRACE = int(os.environ.get('FAULT_GRACE', '3'))
NHOSTS = int(os.environ.get('FAULT_HOSTS', '5'))
MAX_DELAY = float(os.environ.get('FAULT_MAX_DELAY', '1.2'))
MAX_BAD = int(os.environ.get('FAULT_MAX_BAD', '3'))
JOURNAL = os.environ.get('FAULT_JOURNAL', 'on')
SHOW_MAX = 25                  # violations printed per iteration (all are counted)
SLOW_MS = 1000                 # a takeover slower than this is reported
NODES = ['a', 'b', 'c']
SVIDS = 3                      # owners per hold host
HOLD_SVID0 = 1000              # hold host k: svids 1000+10k ..
SHORT_SVID0 = 5000             # short-lived processes: 5000..


class Workload:
    """The hold threads and the short-lived lock processes."""

    def __init__(self, h, c, holds, seed):
        self.h = h
        self.c = c
        self.holds = holds
        self.seed = seed
        self.mu = threading.Lock()
        self.idle_cv = threading.Condition(self.mu)
        self.paused = set()        # group names the hold threads leave alone
        self.inflight = {}         # hold index -> command dict
        self.stopping = threading.Event()
        self.stats = {}            # (kind, status) -> count
        self.errors = []           # liveness problems
        self.threads = []

    def vip_for(self, k, g):
        return g.vips[k % len(g.vips)]

    def _count(self, key):
        with self.mu:
            self.stats[key] = self.stats.get(key, 0) + 1

    def start(self):
        for k in range(len(self.holds)):
            t = threading.Thread(target=self._hold_loop, args=(k,), daemon=True)
            t.start()
            self.threads.append(t)
        for j in range(2):
            t = threading.Thread(target=self._short_loop, args=(j,), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(40)

    @staticmethod
    def _range(rng):
        start = rng.randrange(0, 16) * 8
        ln = 0 if rng.random() < 0.03 else rng.choice([8, 16, 24, 32, 64])
        return start, ln

    def _hold_loop(self, k):
        rng = random.Random(self.seed * 1009 + k)
        hold = self.holds[k]
        while not self.stopping.is_set():
            with self.mu:
                groups = [g for g in self.c.groups if g.name not in self.paused]
                if not groups:
                    cmd = None
                else:
                    g = rng.choice(groups)
                    vip = self.vip_for(k, g)
                    svid = HOLD_SVID0 + 10 * k + rng.randrange(SVIDS)
                    path = rng.choice(g.files)
                    r = rng.random()
                    if r < 0.45:
                        op, typ = 'lock', 'x'
                    elif r < 0.65:
                        op, typ = 'lock', 's'
                    else:
                        op, typ = 'unlock', 'x'
                    start, ln = self._range(rng)
                    cmd = {'group': g.name, 'host': hold.name, 'svid': svid, 'file': path,
                           'start': start, 'len': ln, 'op': op}
            if cmd is None:
                time.sleep(0.02)
                continue
            if cmd['op'] == 'unlock' and rng.random() < 0.7:
                # mostly release something this host holds there
                mine = [e for e in hold.read_record() if e['server'] == vip and
                        e.get('type') in ('excl', 'shared')]
                if mine:
                    e = rng.choice(mine)
                    cmd.update(svid=int(e['svid']), file=e['file'],
                               start=int(e['start']), len=int(e['len']))
            with self.mu:
                if cmd['group'] in self.paused:
                    continue
                self.inflight[k] = cmd
            line = '%s %s:%s %d %d %s svid=%d' % (cmd['op'], vip, cmd['file'], cmd['start'],
                                                 cmd['len'], typ, cmd['svid'])
            cid = hold.send(line)
            res = hold.wait_result(cid, 40)
            with self.mu:
                self.inflight.pop(k, None)
                self.idle_cv.notify_all()
                key = ('hold-' + cmd['op'], res.get('status') if res else 'no-answer')
                self.stats[key] = self.stats.get(key, 0) + 1
            if res is None:
                self.errors.append('host %s: no answer within 40 s to: %s' % (hold.name, line))
                if not hold.alive():
                    return
            time.sleep(rng.uniform(0, 0.03))

    def _short_loop(self, j):
        rng = random.Random(self.seed * 7919 + 100 + j)
        owned = []
        client = fu.client_path()
        while not self.stopping.is_set():
            k = rng.randrange(len(self.holds))
            hold = self.holds[k]
            if owned and rng.random() < 0.5:
                k, g, svid, path, start, ln, shared = owned.pop(rng.randrange(len(owned)))
                hold = self.holds[k]
                op = 'unlock'
            else:
                g = rng.choice(self.c.groups)
                svid = SHORT_SVID0 + 100 * j + rng.randrange(4)
                path = rng.choice(g.files)
                start, ln = self._range(rng)
                shared = rng.random() < 0.3
                op = 'lock'
            vip = self.vip_for(k, g)
            argv = [client, '--host', hold.addr, '--name', hold.name, '--server', vip,
                    '--no-callbacks', '--timeout', '3000', '--quiet', '--svid', str(svid)]
            if shared:
                argv.append('--shared')
            argv += [op, '%s:%s' % (vip, path), str(start), str(ln)]
            try:
                cp = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    timeout=20)
                rc = cp.returncode
            except subprocess.TimeoutExpired:
                rc = 'hung'
                self.errors.append('short-lived %s did not finish in 20 s' % ' '.join(argv))
            name = {0: 'granted', 1: 'denied', 2: 'grace', 3: 'error'}.get(rc, str(rc))
            self._count(('short-' + op, name))
            if op == 'lock' and rc == 0:
                owned.append((k, g, svid, path, start, ln, shared))
            time.sleep(rng.uniform(0.01, 0.08))

    # -- pausing the hold threads on failed-over groups ----------------------

    def pause(self, names):
        """Stop the hold threads sending to @names; returns the commands
        that were in flight there (exempt from the reclaimed-or-lost
        check: their replies may have died with the node)."""
        with self.mu:
            self.paused |= set(names)
            return [dict(c) for c in self.inflight.values() if c['group'] in names]

    def wait_idle(self, names, timeout):
        deadline = time.monotonic() + timeout
        with self.idle_cv:
            while any(c['group'] in names for c in self.inflight.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.idle_cv.wait(left)
            return True

    def resume(self, names):
        with self.mu:
            self.paused -= set(names)


def exempt(entry, cmds):
    first, last = fu.rec_range(entry)
    for c in cmds:
        if c['file'] != entry['file']:
            continue
        if c['host'] == entry['host'] and c['svid'] == int(entry['svid']):
            return True
        c0, c1 = fu.rec_range(c)
        if not (c1 < first or last < c0):
            return True
    return False


def test(h):
    log('seed %d (FAULT_SEED=%d to repeat), %d iterations, grace %d s, %d hosts, journal %s'
        % (SEED, SEED, ITERATIONS, GRACE, NHOSTS, JOURNAL))
    print('fault seed: %d' % SEED, flush=True)
    rng = random.Random(SEED)
    groups = []
    for i in range(3):
        prefs = NODES[i:] + NODES[:i]
        groups.append(harness.Group('g%d' % i, nodes=prefs, grace=GRACE,
                                    nvips=2 if i == 2 else 1,
                                    exports=[harness.Export('g%d' % i, fsid=301 + i)],
                                    extra={'journal': JOURNAL}))
    c = h.cluster(groups=groups)
    for g in groups:
        g.files = []
        for fn in ('f0', 'f1'):
            p = os.path.join(g.exports[0].path, fn)
            with open(p, 'w') as f:
                f.write('x' * 512)
            os.chmod(p, 0o666)
            g.files.append(p)
    for n in NODES:
        c.start(n, wait=False)
    deadline = time.monotonic() + 30
    while True:
        st = fu.status(c)
        views = fu.group_views(st)
        if len(fu.nodes_up(st)) == len(NODES) and all(len(views.get(g.name, [])) == 1
                                                      for g in groups):
            break
        if time.monotonic() > deadline:
            raise TestAbort('cluster did not come up: %s' % st)
        time.sleep(0.1)
    log('owners: %s' % {g: v[0][0] for g, v in views.items()})

    holds = []
    for k in range(NHOSTS):
        addr = '127.%d.1.%d' % (c.slot, k + 1)
        holds.append(fu.Hold(h, addr, 'fh%d' % k, groups[0].vip,
                             os.path.join(h.tmp, 'record-%d.json' % k), 'hold-%d.log' % k))
    for hd in holds:
        hd.wait_ready()
    byname = {hd.name: hd for hd in holds}
    wl = Workload(h, c, holds, SEED)
    wl.start()
    time.sleep(1.0)

    totals = {'violations': 0, 'bad_iters': 0, 'kills': 0, 'failovers': 0,
              'before': 0, 'reclaimed': 0, 'lost': 0, 'exempt': 0, 'notified': 0,
              'orphans': 0}
    takeover_ms, recovered_ms = [], []
    bad_kinds = {}
    last_state = {}

    shown = [0]

    def violation(kind, what):
        totals['violations'] += 1
        bad_kinds[kind] = bad_kinds.get(kind, 0) + 1
        shown[0] += 1
        if shown[0] <= SHOW_MAX:
            h.check(False, '[%s] %s' % (kind, what))
        else:
            h.checks += 1          # counted, not printed (see the summary)
            h.failures += 1

    it = 0
    for it in range(1, ITERATIONS + 1):
        shown[0] = 0
        delay = rng.uniform(0.05, MAX_DELAY)
        time.sleep(delay)
        nviol = totals['violations']
        st = fu.status(c)
        views = fu.group_views(st)
        for g in groups:
            if len(views.get(g.name, [])) != 1:
                violation('owner', 'iteration %d: group %s has %d owners before the kill: %s'
                          % (it, g.name, len(views.get(g.name, [])),
                             [n for n, _ in views.get(g.name, [])]))
        target = rng.choice(groups)
        if not views.get(target.name):
            raise TestAbort('group %s has no owner' % target.name)
        victim = views[target.name][0][0]
        affected = [g for g in groups if views.get(g.name) and views[g.name][0][0] == victim]
        names = {g.name for g in affected}
        for g in affected:
            last_state.setdefault(g.name, fu.nsm_state(g))
        marks = {hd.name: hd.mark() for hd in holds}
        t_kill = time.time()
        c.kill9(victim)
        totals['kills'] += 1
        totals['failovers'] += len(affected)
        inflight = wl.pause(names)
        rpre = {hd.name: hd.read_record() for hd in holds}
        lists = {g.name: fu.client_list(g) for g in affected}

        # -- takeover: each affected group online on another node --------
        first_state, t_online, new_owner = {}, {}, {}
        deadline = time.monotonic() + 15
        while len(t_online) < len(affected):
            if time.monotonic() > deadline:
                raise TestAbort('iteration %d: %s not online 15 s after kill -9 %s'
                                % (it, sorted(names - set(t_online)), victim))
            v2 = fu.group_views(fu.status(c))
            now = time.time()
            for g in affected:
                if g.name in t_online:
                    continue
                vs = [(n, gv) for n, gv in v2.get(g.name, []) if n != victim]
                if vs:
                    first_state[g.name] = vs[0][1]['state']
                    t_online[g.name] = now
                    new_owner[g.name] = vs[0][0]
            time.sleep(0.02)
        new_state = {g.name: fu.nsm_state(g) for g in affected}
        for g in affected:
            takeover_ms.append((t_online[g.name] - t_kill) * 1000)
        c.start(victim, wait=False)

        # -- recovery: every listed client notified and done reclaiming ----
        def recovered(g, hd, evs):
            n = new_state[g.name]
            for vip in g.vips:
                idx = None
                for i, e in enumerate(evs):
                    if (e.get('event') == 'notify' and e.get('from') == vip and
                            e.get('mon_name') == vip and int(e.get('state', -1)) == n):
                        idx = i
                        break
                if idx is None:
                    return False
                if not any(e.get('event') in ('reclaim-done', 'notify-ignored',
                                              'notify-duplicate') and
                           vip in (e.get('server'), e.get('mon_name')) for e in evs[idx + 1:]):
                    return False
            return True

        rec_deadline = max(t_online.values()) + GRACE + 5
        for g in affected:
            for name in sorted(lists[g.name]):
                hd = byname.get(name)
                if hd is None:
                    continue
                left = max(0.0, rec_deadline - time.time())
                hd.wait_for(lambda evs, g=g, hd=hd: recovered(g, hd, evs[marks[hd.name]:]),
                            left)
        if not wl.wait_idle(names, max(1.0, rec_deadline - time.time()) + 10):
            violation('liveness', 'iteration %d: hold commands in flight at the kill '
                      'still unanswered' % it)
        t_rec = time.time()
        recovered_ms.append((t_rec - t_kill) * 1000)

        # -- checks ----------------------------------------------------------
        st2 = fu.status(c)
        v2 = fu.group_views(st2)
        now_rec = {hd.name: hd.read_record() for hd in holds}
        evs = {hd.name: hd.events_since(marks[hd.name]) for hd in holds}
        for g in groups:
            owners = v2.get(g.name, [])
            if len(owners) != 1 and g.name not in names:
                violation('owner', 'iteration %d: group %s has %d owners: %s'
                          % (it, g.name, len(owners), [n for n, _ in owners]))
            for _, gv in owners:
                for a, b in fu.conflicts(gv.get('locks', [])):
                    violation('1-conflict', 'iteration %d: group %s: %s conflicts with %s'
                              % (it, g.name, fu.fmt_srv(a), fu.fmt_srv(b)))
        line_parts = []
        for g in affected:
            n = new_state[g.name]
            prev = last_state.get(g.name)
            if n is None or n % 2 != 1 or (prev is not None and n <= prev):
                violation('state', 'iteration %d: group %s state number %s after %s '
                          '(must be odd and larger)' % (it, g.name, n, prev))
            last_state[g.name] = n
            if JOURNAL == 'off' and lists[g.name] and first_state[g.name] != 'grace' and \
                    t_online[g.name] - t_kill < GRACE - 0.5:
                violation('grace', 'iteration %d: group %s came up %s (not in grace) on %s '
                          'with %d clients listed' % (it, g.name, first_state[g.name],
                                                      new_owner[g.name], len(lists[g.name])))
            owners = [gv for _, gv in v2.get(g.name, [])]
            if len(owners) != 1:
                violation('owner', 'iteration %d: group %s has %d owners after failover'
                          % (it, g.name, len(owners)))
                continue
            slocks = owners[0].get('locks', [])
            vips = set(g.vips)

            # (3) every listed client notified from every VIP, new state
            for name in sorted(lists[g.name]):
                hd = byname.get(name)
                if hd is None:
                    log('note: %s lists unknown client %r (not checked)' % (g.name, name))
                    continue
                for vip in g.vips:
                    ok = any(e.get('event') == 'notify' and e.get('from') == vip and
                             e.get('mon_name') == vip and int(e.get('state', -1)) == n
                             for e in evs[name])
                    if ok:
                        totals['notified'] += 1
                    else:
                        violation('3-notify', 'iteration %d: client %s on %s\'s list got no '
                                  'SM_NOTIFY from %s with state %d' % (it, name, g.name, vip, n))

            # (2) what hosts believed at the kill: reclaimed, or notified + lost
            before = reclaimed = lost = nexempt = 0
            grace_end = t_online[g.name] + GRACE
            for name, entries in rpre.items():
                notified = {e.get('from') for e in evs[name] if e.get('event') == 'notify'
                            and int(e.get('state', -1)) == n}
                for e in entries:
                    if e['server'] not in vips or e.get('type') not in ('excl', 'shared'):
                        continue
                    before += 1
                    if name not in lists[g.name]:
                        violation('2-list', 'iteration %d: %s holds %s but is not on %s\'s '
                                  'client list' % (it, name, fu.fmt_rec(e), g.name))
                    if fu.covered(e, slocks):
                        reclaimed += 1
                        continue
                    if exempt(e, inflight):
                        nexempt += 1
                        continue
                    lostev = [x for x in evs[name] if x.get('event') == 'lost' and
                              fu.same_entry_event(x, e)]
                    if e['server'] in notified and lostev:
                        lost += 1
                        x = lostev[0]
                        if x['t'] is not None and x['t'] < grace_end - 0.5:
                            violation('2-grace', 'iteration %d: %s lost %s during %s\'s grace '
                                      '(why=%s, %.2f s before grace end)'
                                      % (it, name, fu.fmt_rec(e), g.name, x.get('why'),
                                         grace_end - x['t']))
                        continue
                    violation('2-held', 'iteration %d: %s believed it held %s; the new owner '
                              '%s does not have it, and the client was %s'
                              % (it, name, fu.fmt_rec(e), new_owner[g.name],
                                 'notified but reported no loss' if e['server'] in notified
                                 else 'never notified'))
            # ... and what they believe now is held on the server
            believed = []
            for name, entries in now_rec.items():
                for e in entries:
                    if e['server'] not in vips or e.get('type') not in ('excl', 'shared'):
                        continue
                    believed.append(e)
                    if not fu.covered(e, slocks):
                        violation('2-held', 'iteration %d: %s believes it holds %s (state %s) '
                                  'after recovery; %s does not have it'
                                  % (it, name, fu.fmt_rec(e), e.get('state'),
                                     new_owner[g.name]))
            for a, b in fu.believed_conflicts(believed):
                violation('1-conflict', 'iteration %d: %s and %s both believe they hold '
                          'conflicting locks: %s / %s' % (it, a['host'], b['host'],
                                                         fu.fmt_rec(a), fu.fmt_rec(b)))
            # orphans (server holds a hold-owner lock nobody believes in): a
            # client-side race is possible, so only reported
            for sl in slocks:
                if HOLD_SVID0 <= int(sl['svid']) < SHORT_SVID0:
                    if not any(e['host'] == sl['client'] and int(e['svid']) == int(sl['svid'])
                               and e['fh'] == sl['file'] for e in believed):
                        totals['orphans'] += 1
            totals['before'] += before
            totals['reclaimed'] += reclaimed
            totals['lost'] += lost
            totals['exempt'] += nexempt
            line_parts.append('%s->%s up %dms state %d %s, list %d, held %d: reclaimed %d '
                              'lost %d exempt %d, server locks %d'
                              % (g.name, new_owner[g.name], (t_online[g.name] - t_kill) * 1000,
                                 n, first_state[g.name], len(lists[g.name]), before, reclaimed,
                                 lost, nexempt, len(slocks)))

        # -- every other iteration: stay paused through the end of grace and
        # check that what was reclaimed is still held once grace is over
        after_grace = ''
        if rng.random() < 0.5:
            deadline = max(t_online.values()) + GRACE + 3
            while True:
                v3 = fu.group_views(fu.status(c))
                states = {g.name: [gv['state'] for _, gv in v3.get(g.name, [])] for g in affected}
                if all(s == ['online'] for s in states.values()):
                    break
                if time.time() > deadline:
                    violation('grace-end', 'iteration %d: grace not over %d s after it began: %s'
                              % (it, GRACE + 3, states))
                    break
                time.sleep(0.1)
            held = 0
            for g in affected:
                slocks = [l for _, gv in v3.get(g.name, []) for l in gv.get('locks', [])]
                for a, b in fu.conflicts(slocks):
                    violation('1-conflict', 'iteration %d: group %s after grace: %s conflicts '
                              'with %s' % (it, g.name, fu.fmt_srv(a), fu.fmt_srv(b)))
                for hd in holds:
                    for e in hd.read_record():
                        if e['server'] not in g.vips or e.get('type') not in ('excl', 'shared'):
                            continue
                        held += 1
                        if not fu.covered(e, slocks):
                            violation('2-held', 'iteration %d: after %s\'s grace, %s believes '
                                      'it holds %s; the server does not have it'
                                      % (it, g.name, hd.name, fu.fmt_rec(e)))
            after_grace = '; after grace: %d believed locks checked' % held

        for e in wl.errors:
            violation('liveness', e)
        wl.errors.clear()

        # the killed node back before the next kill
        deadline = time.monotonic() + 30
        while victim not in fu.nodes_up(fu.status(c)):
            if time.monotonic() > deadline:
                raise TestAbort('node %s did not come back after restart' % victim)
            time.sleep(0.05)
        wl.resume(names)
        bad = totals['violations'] - nviol
        if shown[0] > SHOW_MAX:
            print('(%d more violations in iteration %d not shown)' % (shown[0] - SHOW_MAX, it))
        print('iteration %d/%d: kill -9 %s (%s) after %.2fs; %s; recovered in %dms%s; %s'
              % (it, ITERATIONS, victim, ','.join(sorted(names)),
                 delay, '; '.join(line_parts),
                 (t_rec - t_kill) * 1000, after_grace, 'OK' if not bad else '%d VIOLATIONS' % bad),
              flush=True)
        if bad:
            totals['bad_iters'] += 1
            if totals['bad_iters'] >= MAX_BAD:
                print('stopping after %d iterations with violations' % totals['bad_iters'],
                      flush=True)
                break

    wl.stop()
    for e in wl.errors:
        violation('liveness', e)
    for hd in holds:
        hd.stop()

    def pct(v, p):
        if not v:
            return 0
        v = sorted(v)
        return v[min(len(v) - 1, int(p * len(v)))]

    print('=' * 72)
    print('SUMMARY seed=%d iterations=%d kills=%d failovers=%d violations=%d '
          '(iterations with violations: %d)'
          % (SEED, it, totals['kills'], totals['failovers'], totals['violations'],
             totals['bad_iters']))
    if bad_kinds:
        print('  violations by kind: %s' % ', '.join('%s=%d' % kv for kv in sorted(bad_kinds.items())))
    print('  kill -> online ms: median %.0f, p90 %.0f, max %.0f'
          % (statistics.median(takeover_ms) if takeover_ms else 0, pct(takeover_ms, 0.9),
             max(takeover_ms) if takeover_ms else 0))
    print('  takeovers slower than %d ms: %d (the takeover time is reported, not checked)'
          % (SLOW_MS, sum(1 for t in takeover_ms if t > SLOW_MS)))
    print('  kill -> recovered ms: median %.0f, p90 %.0f, max %.0f'
          % (statistics.median(recovered_ms) if recovered_ms else 0, pct(recovered_ms, 0.9),
             max(recovered_ms) if recovered_ms else 0))
    print('  locks held at kills: %d; reclaimed %d, lost %d, exempt (in flight) %d; '
          'notifications seen %d; orphan server locks (info) %d'
          % (totals['before'], totals['reclaimed'], totals['lost'], totals['exempt'],
             totals['notified'], totals['orphans']))
    print('  workload: %s' % ', '.join('%s:%s=%d' % (k[0], k[1], v)
                                       for k, v in sorted(wl.stats.items())))
    print('=' * 72, flush=True)
    h.check(totals['violations'] == 0, '%d failovers after %d kills: no violation'
            % (totals['failovers'], totals['kills']))
    h.check(totals['before'] > 0 and totals['reclaimed'] > 0,
            'the workload held locks at the kills and they were reclaimed')


if __name__ == '__main__':
    harness.main(test, timeout=int(os.environ.get('FAULT_TIMEOUT', 120 + 12 * ITERATIONS)))
