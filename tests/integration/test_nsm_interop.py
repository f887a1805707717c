#!/usr/bin/env python3
"""
test_nsm_interop - sgnfs's NSM against the real daemons of Debian's
nfs-common (rpc.statd, sm-notify) and rpcbind, each client in a network
namespace of its own (see nsm_util.py for the topology).

  (a) Failover reaches the real statd.  A client namespace runs rpcbind and
      rpc.statd; a capture server (this process, on the namespace's
      loopback, registered as nlockmgr 100021 v4) plays the kernel's lockd.
      The client locks in g1 (so it is on g1's client list) and in g2, and
      SM_MONs both VIPs through its statd with my_proc 16.  kill -9 of g1's
      owner: the other node takes g1 over and sends SM_NOTIFY from g1's VIP.
      Required: statd accepted it (its log and the tshark capture show the
      call and the reply) and called lockd back with mon_name = g1's VIP,
      g1's new state number and our priv cookie; no callback for g2's VIP
      (g2 did not move).  The decoded SM_NOTIFY (tshark -V) is printed.
  (b) The real sm-notify announces the client's reboot.  After statd's
      SM_UNMON of g2's VIP, only sm/<g1 VIP> is left in its state
      directory; statd is killed (the "reboot") and `sm-notify -f -d -P DIR
      -v <client addr>` notifies g1's VIP.  Required: sgnfs drops the
      client's locks in g1 (status --json; another client now gets the same
      range) and only there (its g2 lock stays, and still blocks others).
      sm-notify announces the canonical name of -v (here "sgnfs-c1", from the
      namespace's /etc/hosts), so c1 locks under that caller_name, as a
      Linux client's lockd uses its host name.  A final probe (a NOTE, not
      a check) shows what happens when the two names differ.
"""
import os
import signal
import time

import harness
from harness import Export, Group, log
import nsm_util as nu

GRACE = 4
PRIV1 = b'sgnfs-g1-cookie!'
PRIV2 = b'sgnfs-g2-cookie!'


def read_state(c, group):
    path = os.path.join(c.group(group).exports[0].path, '.sgnfs', 'state')
    with open(path) as f:
        return int(f.read().strip())


def test(h):
    nu.need(h, 'rpcbind', 'rpc.statd', 'sm-notify', 'tshark', 'dumpcap', 'nsenter', 'rpcinfo')
    with nu.Lab(h) as lab:
        run(h, lab)


def run(h, lab):
    net = lab.net
    clients = '%s.0/24 127.0.0.0/8' % net
    c = lab.cluster([
        Group('g1', [Export('g1/data', fsid=101, clients=clients)], nodes=('a', 'b'), grace=GRACE),
        Group('g2', [Export('g2/data', fsid=201, clients=clients)], nodes=('b', 'a'), grace=GRACE),
    ])
    vip1, vip2 = c.group('g1').vip, c.group('g2').vip
    for g, f in (('g1', 'f1'), ('g2', 'f2')):
        with open(os.path.join(c.group(g).exports[0].path, f), 'w') as fh:
            fh.write('data\n')
    f1 = '/' + os.path.relpath(os.path.join(c.export('g1/data').path, 'f1'), '/')
    f2 = '/' + os.path.relpath(os.path.join(c.export('g2/data').path, 'f2'), '/')

    # Both nodes at once, so each group settles on its preferred node.
    na = c.start('a', wait=False)
    nb = c.start('b', wait=False)
    nu.wait_group(h, c, 'g1', owner='a', timeout=40)
    nu.wait_group(h, c, 'g2', owner='b', timeout=40)
    lab.wait_vip(c, vip1, na)
    lab.wait_vip(c, vip2, nb)

    c1 = lab.add_client('c1', [101], {net + '.101': 'sgnfs-c1'})
    c2 = lab.add_client('c2', [102], {net + '.102': 'sgnfs-c2'})
    h.require(lab.wait_reachable(c1, vip1, 2049) and lab.wait_reachable(c2, vip1, 2049),
              'client namespaces reach the VIPs over the bridge')
    # Like a Linux client's lockd, c1 names itself by its host name (the
    # name its /etc/hosts gives its address, which sm-notify will use too).
    name1 = 'sgnfs-c1'

    # --- the real client: rpcbind, statd, and "lockd" (our capture server)
    c1.start_rpcbind()
    statedir = os.path.join(h.tmp, 'nfs-c1')
    statd_port = c1.start_statd(statedir)
    cb = nu.CallbackServer(c1.ns)
    try:
        h.require(cb.register(), 'callback server registered as 100021 v4 udp+tcp with '
                  'the client namespace rpcbind (port %d)' % cb.port)
        c1.run(['rpcinfo', '-p', '127.0.0.1'], what='rpcinfo -p in the client namespace')
        part_a(h, lab, c, c1, c2, cb, statd_port, statedir, vip1, vip2, f1, f2, name1, na, nb)
        part_b(h, lab, c, c1, c2, statd_port, statedir, vip1, vip2, f1, f2, name1, nb)
    finally:
        cb.close()
    for nd in c.all_nodes:
        m = nu.sanitizer_report(nd.logpath)
        h.check(m is None, 'node log %s has no sanitizer report (%s)'
                % (os.path.basename(nd.logpath), m))


def part_a(h, lab, c, c1, c2, cb, statd_port, statedir, vip1, vip2, f1, f2, name1, na, nb):
    log('=== (a) failover of g1 reaches the real rpc.statd of %s ===' % c1.addr)
    rc, r = nu.sgnfs_client(h, c1, c1.addr, vip1, 'lock', f1, 0, 100, extra=('--name', name1))
    h.require(rc == 0, 'client %s locks %s [0,100) in g1 (rc %d)' % (c1.addr, f1, rc))
    rc, r = nu.sgnfs_client(h, c1, c1.addr, vip2, 'lock', f2, 0, 100, extra=('--name', name1))
    h.require(rc == 0, 'client %s locks %s [0,100) in g2 (rc %d)' % (c1.addr, f2, rc))
    st = nu.status(h, c)
    h.check(name1 in nu.clients_of(st, 'g1') and name1 in nu.clients_of(st, 'g2'),
            'the client is on the client lists of g1 and g2: %s / %s'
            % (nu.clients_of(st, 'g1'), nu.clients_of(st, 'g2')))
    entry = os.path.join(c.export('g1/data').path, '.sgnfs', 'clients', name1)
    h.check(os.path.exists(entry) and ('addr=%s' % c1.addr) in open(entry).read(),
            'g1 client list entry %s records address %s' % (entry, c1.addr))

    # The client's lockd asks its statd to monitor both servers.
    for vip, priv in ((vip1, PRIV1), (vip2, PRIV2)):
        rep = nu.rpc_once(c1.ns, '127.0.0.1', '127.0.0.1', statd_port, nu.NSM_PROG, 1,
                          nu.SM_MON, nu.sm_mon_args(vip, '127.0.0.1', priv=priv))
        h.require(rep is not None and rep.ok() and nu.sm_stat_res(rep)[0] == nu.STAT_SUCC,
                  'real rpc.statd accepts SM_MON %s (my_prog 100021 my_vers 4 my_proc 16) '
                  'from loopback: %r' % (vip, rep))
        h.check(os.path.exists(os.path.join(statedir, 'sm', vip)),
                'statd recorded %s/sm/%s' % (statedir, vip))

    state_before = read_state(c, 'g1')
    cap = nu.Capture(h, c1, c1.ifname, 'udp', 'sm-notify-failover')
    t_kill = time.monotonic()
    c.kill9('a')
    nu.wait_group(h, c, 'g1', owner='b', state='grace', timeout=30)
    state = read_state(c, 'g1')
    h.check(state > state_before and state % 2 == 1,
            'g1 state number went from %d to %d (odd: up)' % (state_before, state))

    got = cb.wait(lambda x: x.get('mon_name') == vip1, timeout=30)
    cap.stop()
    h.require(got, 'rpc.statd called its lockd back after the failover of g1 '
              '(%.1f s after kill -9)' % ((got[0]['t'] - t_kill) if got else -1))
    x = got[0]
    h.check(x['prog'] == nu.NLM_PROG and x['vers'] == 4 and x['proc'] == 16,
            'callback is 100021 v%d proc %d' % (x['vers'], x['proc']))
    h.check(x['mon_name'] == vip1, 'callback mon_name %r = g1 VIP %s' % (x['mon_name'], vip1))
    h.check(x['state'] == state, 'callback state %d = g1 state number %d' % (x['state'], state))
    h.check(x['priv'] == PRIV1, 'callback carries the priv cookie of SM_MON %r' % x['priv'])
    h.check(x['src'][0] == '127.0.0.1' and x['src'][1] < 1024,
            'callback comes from a privileged loopback port %s:%d' % x['src'])

    slog = c1.statd_log()
    h.check('Received SM_NOTIFY from %s, state: %d' % (vip1, state) in slog,
            'statd log: "Received SM_NOTIFY from %s, state: %d"' % (vip1, state))
    h.check('Callback to 127.0.0.1 (for %s) succeeded' % vip1 in slog,
            'statd log: callback for %s succeeded' % vip1)
    h.check(nu.wait_log(nb, 'group=g1 client=%s notified at %s from %s (state %d)'
                        % (name1, c1.addr, vip1, state), timeout=10),
            'node b logs that %s was notified from %s' % (c1.addr, vip1))

    # The capture: our SM_NOTIFY as the client saw it, and statd's reply.
    print('\n---- tshark -V -Y stat (SM_NOTIFY after kill -9 of g1\'s owner) ----')
    print(cap.tshark(['-V', '-O', 'rpc,stat', '-Y', 'stat']), flush=True)
    print('---- end of decode ----\n', flush=True)
    calls = cap.fields('stat.procedure_v1 == 6 && rpc.msgtyp == 0',
                       ['frame.number', 'ip.src', 'ip.dst', 'udp.srcport', 'rpc.xid',
                        'stat.mon_id.name', 'stat.state'])
    replies = cap.fields('stat && rpc.msgtyp == 1',
                         ['frame.number', 'ip.src', 'ip.dst', 'rpc.xid', 'rpc.state_accept'])
    log('SM_NOTIFY calls %s, replies %s' % (calls, replies))
    ours = [cl for cl in calls if cl[1] == vip1 and cl[2] == c1.addr and cl[5] == vip1
            and cl[6] == str(state)]
    h.check(ours, 'capture: SM_NOTIFY from %s to %s, mon_name %s, state %d' %
            (vip1, c1.addr, vip1, state))
    answered = [rp for rp in replies for cl in ours
                if rp[1] == c1.addr and rp[2] == vip1 and rp[3] == cl[4] and rp[4] == '0']
    h.check(answered, 'capture: statd answered it (same xid, accept_stat SUCCESS)')
    getport = cap.fields('portmap.procedure_v2 == 3 && rpc.msgtyp == 0',
                         ['ip.src', 'ip.dst', 'portmap.prog'])
    h.check(any(g[0] == vip1 and g[1] == c1.addr and g[2] == '100024' for g in getport),
            'capture: PMAP GETPORT(100024) from %s to the client portmapper: %s' % (vip1, getport))
    time.sleep(2)
    h.check(not [x for x in cb.calls if x.get('mon_name') == vip2],
            'no callback for g2 VIP %s (g2 did not move)' % vip2)
    st = nu.status(h, c)
    h.check(nu.locks_of(st, 'g2', name1), 'the client still holds its g2 lock: %s'
            % nu.locks_of(st, 'g2', name1))


def part_b(h, lab, c, c1, c2, statd_port, statedir, vip1, vip2, f1, f2, name1, nb):
    log('=== (b) the real sm-notify of %s announces its reboot to g1 ===' % c1.addr)
    nu.wait_group(h, c, 'g1', owner='b', state='online', timeout=GRACE + 30)
    rc, _ = nu.sgnfs_client(h, c1, c1.addr, vip1, 'lock', f1, 0, 100, extra=('--name', name1))
    h.require(rc == 0, 'client %s locks %s [0,100) in g1 again, on node b (rc %d)'
              % (c1.addr, f1, rc))
    for vip, f, g in ((vip1, f1, 'g1'), (vip2, f2, 'g2')):
        rc, _ = nu.sgnfs_client(h, c2, c2.addr, vip, 'lock', f, 50, 10, svid=77)
        h.check(rc == 1, 'before: client %s is denied [50,60) of %s in %s (rc %d)'
                % (c2.addr, f, g, rc))
    st = nu.status(h, c)
    before_g2 = nu.locks_of(st, 'g2', name1)
    h.require(nu.locks_of(st, 'g1', name1) and before_g2,
              'before: the client holds locks in g1 and g2')

    # statd forgets g2 (SM_UNMON), so the "rebooted" client notifies g1 only.
    rep = nu.rpc_once(c1.ns, '127.0.0.1', '127.0.0.1', statd_port, nu.NSM_PROG, 1, nu.SM_UNMON,
                      nu.sm_unmon_args(vip2, '127.0.0.1'))
    h.check(rep is not None and rep.ok(), 'real statd accepts SM_UNMON %s: %r' % (vip2, rep))
    sm = sorted(os.listdir(os.path.join(statedir, 'sm')))
    h.require(sm == [vip1], '%s/sm holds only %s: %s' % (statedir, vip1, sm))
    with open(os.path.join(statedir, 'sm', vip1)) as f:
        record = f.read()                # statd's record, for the probe below
    log('statd record for %s: %r' % (vip1, record))
    c1.stop_statd(signal.SIGKILL)
    log('rpc.statd of %s killed (the client "reboots")' % c1.addr)

    off = nu.log_size(nb)
    cap = nu.Capture(h, c1, c1.ifname, 'udp', 'sm-notify-reboot')
    smn = h.need_tool('sm-notify')
    cp = c1.run([smn, '-f', '-d', '-P', statedir, '-v', c1.addr], timeout=120, check=False)
    h.check(cp.returncode == 0, 'sm-notify -f -d -P %s -v %s exits 0 (got %d)'
            % (statedir, c1.addr, cp.returncode))
    cap.stop()
    print('\n---- tshark -V -Y stat (the real sm-notify) ----')
    print(cap.tshark(['-V', '-O', 'rpc,stat', '-Y', 'stat']), flush=True)
    print('---- end of decode ----\n', flush=True)
    calls = cap.fields('stat.procedure_v1 == 6 && rpc.msgtyp == 0',
                       ['ip.src', 'ip.dst', 'stat.mon_id.name', 'stat.state'])
    h.check(any(x[0] == c1.addr and x[1] == vip1 and x[2] == name1 for x in calls),
            'capture: sm-notify sent SM_NOTIFY(mon_name %s, its canonical name for -v %s) '
            'from %s to %s: %s' % (name1, c1.addr, c1.addr, vip1, calls))
    h.check(not any(x[1] == vip2 for x in calls), 'capture: nothing was sent to g2 VIP %s' % vip2)

    h.check(nu.wait_log(nb, 'group=g1 client=%s SM_NOTIFY: client restarted, releasing its locks here'
                        % name1, offset=off, timeout=10),
            'node b logs that g1 releases the locks of %s on its SM_NOTIFY' % name1)
    text = nu.log_since(nb, off)
    h.check('group=g2 client=%s' % name1 not in text,
            'node b logs nothing about %s in g2' % name1)
    st = nu.status(h, c)
    h.check(not nu.locks_of(st, 'g1', name1), 'after: the client holds no lock in g1: %s'
            % nu.locks_of(st, 'g1', name1))
    h.check(nu.locks_of(st, 'g2', name1) == before_g2,
            'after: its g2 lock is untouched: %s' % nu.locks_of(st, 'g2', name1))
    rc, _ = nu.sgnfs_client(h, c2, c2.addr, vip1, 'lock', f1, 50, 10, svid=77)
    h.check(rc == 0, 'after: client %s gets [50,60) of %s in g1 (rc %d)' % (c2.addr, f1, rc))
    rc, _ = nu.sgnfs_client(h, c2, c2.addr, vip2, 'lock', f2, 50, 10, svid=77)
    h.check(rc == 1, 'after: client %s is still denied [50,60) of %s in g2 (rc %d)'
            % (c2.addr, f2, rc))
    probe_name_mismatch(h, c, c2, record, vip1, nb)


def probe_name_mismatch(h, c, c2, record, vip1, nb):
    """Informational (no check): c2 locked under caller_name = its address
    (sgnfs-client's default) while its /etc/hosts names it sgnfs-c2, so the
    real sm-notify announces "sgnfs-c2".  sgnfs matches SM_NOTIFY by name
    only; a Linux server's statd also matches the sender's address."""
    st = nu.status(h, c)
    held = nu.locks_of(st, 'g1', c2.addr)
    sd = os.path.join(h.tmp, 'nfs-c2')
    os.makedirs(os.path.join(sd, 'sm'), exist_ok=True)
    os.makedirs(os.path.join(sd, 'sm.bak'), exist_ok=True)
    # The record the real statd wrote in c1 for g1's VIP.
    with open(os.path.join(sd, 'sm', vip1), 'w') as f:
        f.write(record)
    c2.start_rpcbind()                   # a private /run for sm-notify's pid file
    off = nu.log_size(nb)
    c2.run([h.need_tool('sm-notify'), '-f', '-d', '-P', sd, '-v', c2.addr], timeout=120,
           check=False, quiet=True)
    time.sleep(1)
    text = nu.log_since(nb, off)
    line = [ln for ln in text.splitlines() if 'SM_NOTIFY' in ln]
    after = nu.locks_of(nu.status(h, c), 'g1', c2.addr)
    print('NOTE: client %s (caller_name %s, /etc/hosts name sgnfs-c2) held %d g1 lock(s); the '
          'real sm-notify -v %s announced mon_name "sgnfs-c2"; sgnfs logged %s; %d lock(s) '
          'left' % (c2.addr, c2.addr, len(held), c2.addr, line, len(after)), flush=True)


if __name__ == '__main__':
    harness.main(test, timeout=240)
