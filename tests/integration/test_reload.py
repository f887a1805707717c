"""
test_reload.py - a reload (SIGHUP, `sgnfsctl reload`) changes exports live
and touches nothing else (docs/operations.md), in order:

  1. nodes a (g1, g2) and b (g3) serve; an export not yet in the file
     cannot be mounted through g1's VIP ("not exported by this group");
  2. with a lock/unlock loop running against each of g1, g2 and g3, the
     export is added to g1 in the file and node a gets SIGHUP: a survives
     and logs the change; b reloads through `sgnfsctl reload b`;
  3. the new export mounts, and a lock on a file in it is granted; the
     loops go on: every lock of every group was granted before, during
     and after the reload (none refused), and status never showed g1, g2
     or g3 other than online on its node;
  4. `clients` of the new export narrowed to another network: MNT is
     refused by the export's rule; the export removed: "not exported";
     [cluster] journal_inflight 1 -> 2 -> 1, journal_gather yes -> no
     -> yes and poll_spin_us 0 -> 50 -> 0 are applied live, named in the
     answer and the log, shown in status, and g1's journal grants locks
     under each;
  5. what cannot change live is refused with the reason, and the old
     configuration stays in force: g2's grace (sgnfsctl reload exits 1,
     the node still reports the old checksum), then a file with an
     error (SIGHUP; the logged reason names the file and line).
"""

import os
import signal
import time

import harness
from harness import Export, TestAbort, log
from test_loop_priority import loop_status
import fo_util as fu
import hostile_util as hu
import ops_util as ou

MNT3ERR_ACCES = 13


def mnt_status(c, vip, path):
    conn = hu.Tcp(vip, c.ports['mount_port'])
    try:
        st, _ = hu.mnt(conn, path.encode())
        return st
    finally:
        conn.sock.close()


def wait_log(node, needle, timeout=20):
    deadline = time.monotonic() + timeout
    while needle not in fu.node_log(node):
        if time.monotonic() > deadline:
            raise TestAbort('node %s never logged %r' % (node.name, needle))
        time.sleep(0.05)


def sha_of(c, node):
    rc, doc = ou.status(c)
    return ((ou.node_doc(doc, node) or {}).get('status') or {}).get('config', {}).get('sha256')


def test(h):
    c = fu.three_nodes(h, [('g1', ['a']), ('g2', ['a']), ('g3', ['b'])], grace=5)
    fu.start_nodes(h, c, names=('a', 'b'))
    fu.wait_for_status(h, c, lambda s: all(s.get(g, {}).get('state') == 'online'
                                           for g in ('g1', 'g2', 'g3')), 30,
                       'g1, g2, g3 online and out of grace')
    g1 = c.group('g1')
    extra = Export('g1/extra', fsid=150)
    extra.path = os.path.join(c.storage, extra.rel)
    os.makedirs(extra.path)
    xfile = os.path.join(extra.path, 'x')
    with open(xfile, 'wb') as f:
        f.write(b'\0' * 64)
    os.chmod(xfile, 0o666)

    # ---- 1 ---------------------------------------------------------------
    notexp = 'MNT %s refused: not exported by this group' % extra.path
    st = mnt_status(c, g1.vip, extra.path)
    h.check(st == MNT3ERR_ACCES and fu.node_log(c.nodes['a']).count(notexp) == 1,
            'before the reload: MNT %s refused (ACCES, got %d), "not exported" logged'
            % (extra.path, st))

    # ---- 2 ---------------------------------------------------------------
    loops = {g: fu.LockLoop(h, fu.client_addr(c, i, 1), c.group(g).vip,
                            fu.lock_file(c, g), tag='loop-' + g).begin()
             for i, g in enumerate(('g1', 'g2', 'g3'))}
    poller = fu.Poller(c)
    time.sleep(1.0)
    old_sha = sha_of(c, 'a')
    g1.exports.append(extra)
    ou.write_config(c)
    t_hup = time.monotonic()
    os.kill(c.nodes['a'].pid, signal.SIGHUP)
    wait_log(c.nodes['a'], 'node a reloaded')
    t_done = time.monotonic()
    h.check(c.nodes['a'].alive(), 'node a is alive after SIGHUP')
    log_a = fu.node_log(c.nodes['a'])
    h.check('group=g1 export %s added (fsid 150) on node a (reload)' % extra.path in log_a,
            'a logs the added export')
    h.check(sha_of(c, 'a') not in (None, old_sha), 'a reports the new checksum')
    rc, out, err = ou.ctl(c, 'reload', 'b')
    h.check(rc == 0 and '"result":"reloaded"' in out and '"changes":[]' in out,
            'sgnfsctl reload b: exit 0, reloaded, no change for b (%d %r %r)' % (rc, out, err))
    rc, doc = ou.status(c)
    h.check([ou.node_doc(doc, n).get('config_matches') for n in ('a', 'b')] == [True, True],
            'status: a and b run the file as it is now')

    # ---- 3 ---------------------------------------------------------------
    st = mnt_status(c, g1.vip, extra.path)
    h.check(st == 0, 'after the reload: MNT %s succeeds (got %d)' % (extra.path, st))
    rc, r = fu.one_shot(h, fu.client_addr(c, 5, 1), g1.vip, 'lock', xfile, 0, 1)
    h.check(rc == 0 and r.get('status') == 'granted',
            'a lock on %s in the new export is granted (%d %s)' % (xfile, rc, r))
    time.sleep(1.0)
    t_end = time.monotonic()
    poller.stop()
    for g, lp in loops.items():
        lp.end()
        res = lp.window(0, t_end)
        before = [x for x in res if x[1] < t_hup and x[3] == 'granted']
        during_after = [x for x in res if x[0] >= t_hup and x[3] == 'granted']
        after = [x for x in res if x[0] > t_done and x[3] == 'granted']
        h.check(not lp.refusals(), '%s: no lock operation refused across the reload (%s)'
                % (g, lp.refusals()[:3]))
        h.check(before and during_after and after,
                '%s: grants before (%d), from SIGHUP on (%d) and after the reload (%d)'
                % (g, len(before), len(during_after), len(after)))
    for g, owner in (('g1', 'a'), ('g2', 'a'), ('g3', 'b')):
        fu.check_never_left(h, poller, g, owner, t_hup - 0.5, t_end, ' (reload)')

    # ---- 4 ---------------------------------------------------------------
    extra.clients = '10.9.0.0/16'
    ou.write_config(c)
    rc, out, err = ou.ctl(c, 'reload', 'a')
    h.check(rc == 0 and 'export %s: clients changed' % extra.path in out,
            'clients narrowed: reloaded, the change named (%r)' % out)
    st = mnt_status(c, g1.vip, extra.path)
    h.check(st == MNT3ERR_ACCES and 'export=%s refused' % extra.path in fu.node_log(c.nodes['a']),
            'MNT from 127.x now refused by the export\'s clients (ACCES, got %d)' % st)
    g1.exports.remove(extra)
    ou.write_config(c)
    rc, out, err = ou.ctl(c, 'reload')
    h.check('export %s removed (fsid 150)' % extra.path in out and
            out.count('"result":"reloaded"') == 2,
            'export removed: a and b reloaded, the removal named (%r)' % out)
    h.check(rc == 1 and 'node c:' in err, 'sgnfsctl reload exits 1: node c (not running) '
            'did not answer (%d %r)' % (rc, err))
    st = mnt_status(c, g1.vip, extra.path)
    h.check(st == MNT3ERR_ACCES and fu.node_log(c.nodes['a']).count(notexp) == 2,
            'the removed export: MNT refused, "not exported" again (got %d)' % st)

    # The live [cluster] journal keys: each change reloaded, named, logged;
    # a lock of g1 (journal on) granted under it; status shows it.
    steps = [('journal_inflight', str(frm), str(to),
              lambda jr, to=to: jr.get('inflight') == to and jr.get('format') == 2)
             for frm, to in ((1, 2), (2, 1))]
    steps += [('journal_gather', frm, to,
               lambda jr, to=to: jr.get('gather') is (to == 'yes') and
               isinstance(jr.get('gathered'), int))
              for frm, to in (('yes', 'no'), ('no', 'yes'))]
    # (not the journal's: node a's `loop` object shows it)
    steps += [('poll_spin_us', frm, to, lambda jr, to=to: (loop_status(c) or {}).get('spin_us') == int(to))
              for frm, to in (('0', '50'), ('50', '0'))]
    for k, (key, frm, to, shown) in enumerate(steps):
        c.cluster_extra[key] = to
        ou.write_config(c)
        rc, out, err = ou.ctl(c, 'reload', 'a')
        change = '[cluster] %s %s -> %s' % (key, frm, to)
        h.check(rc == 0 and '"result":"reloaded"' in out and change in out and
                'node a %s (reload)' % change in fu.node_log(c.nodes['a']),
                '%s %s -> %s: reloaded live, the change named and logged (%r)'
                % (key, frm, to, out))
        rc, r = fu.one_shot(h, fu.client_addr(c, 6, 1 + k), g1.vip, 'lock', fu.lock_file(c, 'g1'),
                            1001 + k, 1)
        h.check(rc == 0 and r.get('status') == 'granted',
                '%s %s: a lock of g1 (journal on) granted (%d %s)' % (key, to, rc, r))
        rc, doc = ou.status(c)
        jr = (ou.served(doc, 'a', 'g1') or {}).get('journal', {})
        h.check(shown(jr), 'status shows %s = %s (g1\'s journal %s, a\'s loop %s)'
                % (key, to, jr, loop_status(c)))

    # ---- 5 ---------------------------------------------------------------
    good_sha = sha_of(c, 'a')
    c.group('g2').grace = 9
    ou.write_config(c)
    rc, out, err = ou.ctl(c, 'reload', 'a')
    h.check(rc == 1 and '[group g2] grace: 5 -> 9' in out and 'restart' in out,
            'grace change refused with the reason, exit 1 (%d %r)' % (rc, out))
    h.check(sha_of(c, 'a') == good_sha, 'a keeps the configuration in force')
    h.check('reload refused, the old configuration stays in force: [group g2] grace'
            in fu.node_log(c.nodes['a']), 'a logs the refusal')
    rc, doc = ou.status(c)
    h.check(ou.node_doc(doc, 'a').get('config_matches') is False,
            'status shows a runs another file than this one')
    c.group('g2').grace = 5
    ou.write_config(c)
    with open(c.config_path, 'a') as f:
        f.write('[group g9]\nvip = not-an-address\n')
    # sgnfsctl itself refuses a broken file, so this one goes by SIGHUP.
    os.kill(c.nodes['a'].pid, signal.SIGHUP)
    wait_log(c.nodes['a'], 'reload refused, the old configuration stays in force: '
             'the file has errors: %s:' % c.config_path)
    h.check(True, 'a file with errors: refused, the reason names the file and line')
    ou.write_config(c)
    h.check(sha_of(c, 'a') == good_sha and c.nodes['a'].alive(), 'a still runs the old file')
    fu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=240)
