#!/usr/bin/env python3
"""
test_nsm_hostile - hostile NSM / NLM input against a real sgnfsd, over raw
RPC from network namespaces (nsm_util.py), so that "loopback" and "another
host" are real: the node runs in the lab's server namespace with g1 and g2
on VIPs 10.99.K.1 and .11; the victim is 10.99.K.101 (its own namespace);
the third host is 10.99.K.103 (another namespace); loopback callers are
sockets on 127.0.0.1 inside the server namespace.

The victim holds a lock in g1 and one in g2.  Then every hostile input is
sent, one at a time, and after each one:

  * the reply is the expected one (refusal, GARBAGE_ARGS, or a harmless
    SUCCESS that changes nothing);
  * the victim's locks in g1 and g2 are exactly what they were;
  * the daemon is alive and its log has no sanitizer report;
  * the node's log, since the input was sent, names the refusal (or, for a
    name nobody holds, that the name holds nothing here).

Inputs: mon_name / caller_name containing '/', '..', a leading '.',
whitespace and control characters, "%n%s%x", an embedded NUL, bytes >= 0x80,
empty, 1024, 1025 and 5000 bytes; in SM_NOTIFY (third host, loopback),
SM_MON (loopback, third host), NLM LOCK, NM_LOCK, SHARE, FREE_ALL and the
private callback (procedure 16).  Impersonation: SM_NOTIFY and FREE_ALL
naming the victim from the third host (UDP, TCP, privileged port, NLM v3
and v4), procedure 16 from a non-privileged loopback port and from the
third host, SM_MON / SM_UNMON / SM_UNMON_ALL / SM_SIMU_CRASH from the
third host.

At the end: no file was created or removed outside the groups' state
directories (snapshot of the cluster's storage, run and config directories
and of the daemon's working directory), nothing named after a hostile input
exists anywhere but directly in a group's .sgnfs/clients/, the victim's
client-list entries are unchanged.  Controls prove the refusals were not
vacuous: procedure 16 from a privileged loopback port, then SM_NOTIFY from
the victim's own address, do free the victim's locks (each in its own
group only).
"""
import os
import time

import harness
from harness import Export, Group, log
import nsm_util as nu

MARK = 'sgnfsPWN'
LOG_SAFE_MAX = 96

# name -> True when sgnfs's name rules accept it (no '/', no whitespace or
# control character, no leading '.', 1..1024 bytes, as a C string).
NAMES = [
    (('../../../../../../../../tmp/%s-dotdot' % MARK).encode(), False),
    (('%s/../../../etc/passwd' % MARK).encode(), False),
    (('/tmp/%s-absolute' % MARK).encode(), False),
    (b'..', False),
    (b'.', False),
    (('.%s-hidden' % MARK).encode(), False),
    (('.tmp-%s' % MARK).encode(), False),          # the client list's temp prefix
    (('%s with space' % MARK).encode(), False),
    (('%s\ttab' % MARK).encode(), False),
    (('%s\nsgnfsd err: forged log line' % MARK).encode(), False),
    (('%s\x1b[31mansi' % MARK).encode(), False),
    (b'', False),
    (('%%n%%s%%x%%n%%s%%x-%s' % MARK).encode(), True),  # valid: no '/', no blank
    (('%s..dots' % MARK).encode(), True),
    ((MARK + '\xff\xfe').encode('latin-1'), True),
    ((MARK + '\0/../../../tmp/nul').encode(), True),   # a C string: "sgnfsPWN"
    ((MARK + 'L' * (1024 - len(MARK))).encode(), True),         # exactly 1024
    ((MARK + 'L' * (1025 - len(MARK))).encode(), False),        # 1025: over the XDR bound
    ((MARK + 'L' * (5000 - len(MARK))).encode(), False),
]


def log_escape(b):
    """The form sgnfsd's log_safe() gives these bytes (no truncation)."""
    out = []
    for c in b:
        if 0x20 <= c < 0x7f and c != 0x5c:
            out.append(chr(c))
        else:
            out.append('\\x%02x' % c)
    return ''.join(out)


def in_one_line(text, needle):
    """@needle (a string, or a tuple of strings that must all be on the
    same line) occurs in @text."""
    parts = (needle,) if isinstance(needle, str) else needle
    return any(all(p in ln for p in parts) for ln in text.splitlines())


def cstr(b):
    return b.split(b'\0', 1)[0]


def short(b):
    r = repr(b)
    return r if len(r) <= 60 else r[:40] + '...(%d bytes)' % len(b)


class Hostile:
    def __init__(self, h, lab, c, node, victim, third, vip1, vip2, fh1, fh2):
        self.h, self.lab, self.c, self.node = h, lab, c, node
        self.victim, self.third = victim, third
        self.vname = victim.addr
        self.vip1, self.vip2 = vip1, vip2
        self.fh1, self.fh2 = fh1, fh2
        self.tried = []
        self.baseline = None

    def victim_locks(self):
        st = nu.status(self.h, self.c)
        return nu.locks_of(st, 'g1', self.vname), nu.locks_of(st, 'g2', self.vname)

    def case(self, what, send, expect, logneedles):
        """Send one hostile input and check everything after it.
        @send() returns (Reply or None, text for the report); @expect(rep)
        says whether the reply is right; @logneedles: one of them must be
        in the node's log (new lines only)."""
        h = self.h
        off = nu.log_size(self.node)
        rep, shown = send()
        self.tried.append(what)
        ok = h.check(expect(rep), '%s: reply %s' % (what, shown))
        found = None
        deadline = time.monotonic() + 1.5
        while found is None and logneedles:
            text = nu.log_since(self.node, off)
            found = next((n for n in logneedles if in_one_line(text, n)), None)
            if found is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if logneedles:
            ok &= h.check(found is not None, '%s: the log names it (%r)'
                          % (what, found or logneedles[0]))
        ok &= h.check(self.node.alive(), '%s: the daemon is alive' % what)
        m = nu.sanitizer_report(self.node.logpath)
        ok &= h.check(m is None, '%s: no sanitizer report in the log (%s)' % (what, m))
        now = self.victim_locks()
        ok &= h.check(now == self.baseline, '%s: the victim\'s locks in g1 and g2 are intact' % what)
        if not ok:
            log('log since the input:\n' + nu.log_since(self.node, off))

    # -- senders ------------------------------------------------------------

    def nsm(self, ns, src, vip, proc, args, proto='udp', privileged=False):
        def send():
            rep = nu.rpc_once(ns, src, vip, 662, nu.NSM_PROG, 1, proc, args, proto=proto,
                              privileged=privileged)
            text = repr(rep)
            if rep is not None and rep.ok() and proc == nu.SM_MON:
                text += ' res_stat=%d' % nu.sm_stat_res(rep)[0]
            return rep, text
        return send

    def nlm(self, ns, src, vip, proc, args, vers=4, proto='udp', privileged=False):
        def send():
            rep = nu.rpc_once(ns, src, vip, 4045, nu.NLM_PROG, vers, proc, args, proto=proto,
                              privileged=privileged, cred=nu.auth_sys_cred())
            text = repr(rep)
            if rep is not None and rep.ok() and proc in (nu.NLM_LOCK, nu.NLM_NM_LOCK, nu.NLM_SHARE):
                text += ' stat=%d' % nu.nlm4_stat(rep)
            return rep, text
        return send


def void_ok(rep):
    return rep is not None and rep.ok()


def garbage(rep):
    return rep is not None and rep.accepted and rep.stat == nu.GARBAGE_ARGS


def mon_res(want):
    return lambda rep: rep is not None and rep.ok() and nu.sm_stat_res(rep)[0] == want


def nlm_res(want):
    return lambda rep: rep is not None and rep.ok() and nu.nlm4_stat(rep) == want


def test(h):
    with nu.Lab(h) as lab:
        run(h, lab)


def run(h, lab):
    net = lab.net
    clients = '%s.0/24 127.0.0.0/8' % net
    c = lab.cluster([
        Group('g1', [Export('g1/data', fsid=101, clients=clients)], nodes=('a',), grace=2),
        Group('g2', [Export('g2/data', fsid=201, clients=clients)], nodes=('a',), grace=2),
    ])
    vip1, vip2 = c.group('g1').vip, c.group('g2').vip
    for g, f in (('g1', 'f1'), ('g2', 'f2')):
        with open(os.path.join(c.group(g).exports[0].path, f), 'w') as fh:
            fh.write('data\n')
    f1 = os.path.join(c.export('g1/data').path, 'f1')
    f2 = os.path.join(c.export('g2/data').path, 'f2')
    node = c.start('a', wait=False)
    nu.wait_group(h, c, 'g1', owner='a', timeout=30)
    nu.wait_group(h, c, 'g2', owner='a', timeout=30)
    lab.wait_vip(c, vip1, node)
    lab.wait_vip(c, vip2, node)

    victim = lab.add_client('v', [101])
    third = lab.add_client('x', [103])
    h.require(lab.wait_reachable(victim, vip1, 2049) and lab.wait_reachable(third, vip2, 2049),
              'client namespaces reach the VIPs')
    for vip, f, g in ((vip1, f1, 'g1'), (vip2, f2, 'g2')):
        rc, _ = nu.sgnfs_client(h, victim, victim.addr, vip, 'lock', f, 0, 100)
        h.require(rc == 0, 'victim %s locks [0,100) of %s in %s' % (victim.addr, f, g))
    rc, r1 = nu.sgnfs_client(h, victim, victim.addr, vip1, 'resolve', f1)
    rc2, r2 = nu.sgnfs_client(h, victim, victim.addr, vip2, 'resolve', f2)
    h.require(rc == 0 and rc2 == 0 and r1.get('fh') and r2.get('fh'), 'file handles resolved')
    fh1, fh2 = bytes.fromhex(r1['fh']), bytes.fromhex(r2['fh'])

    t = Hostile(h, lab, c, node, victim, third, vip1, vip2, fh1, fh2)
    t.baseline = t.victim_locks()
    h.require(t.baseline[0] and t.baseline[1], 'victim holds locks in g1 and g2: %s' % (t.baseline,))
    roots = [c.dir, lab.daemon_cwd]
    statedirs = [os.path.join(g.exports[0].path, '.sgnfs') for g in c.groups]
    before = nu.snapshot(roots)
    ventries = {}
    for sd in statedirs:
        p = os.path.join(sd, 'clients', t.vname)
        with open(p, 'rb') as f:
            ventries[p] = f.read()

    X = third.ns, third.addr              # the third host
    L = lab.srv, '127.0.0.1'              # loopback on the server's machine

    # ---- 1. hostile names in every procedure that carries one -------------
    for name, valid in NAMES:
        esc = log_escape(cstr(name))[:24]
        toolong = len(name) > 1024
        tag = short(name)
        if toolong:
            exp_void, exp_mon_lb, exp_lock = garbage, garbage, garbage
            garb = ['GARBAGE', 'garbage', 'undecodable', 'too long']
        else:
            exp_void, exp_mon_lb = void_ok, mon_res(nu.STAT_SUCC)
            exp_lock = nlm_res(nu.NLM4_GRANTED if valid else nu.NLM4_DENIED_NOLOCKS)
            garb = []
        held = [('client=%s' % esc, ' SM_NOTIFY: holds nothing here')]
        t.case('SM_NOTIFY mon_name=%s from third host %s' % (tag, third.addr),
               t.nsm(*X, vip1, nu.SM_NOTIFY, nu.sm_notify_args(name, 7)),
               exp_void, held + garb)
        t.case('SM_NOTIFY mon_name=%s from loopback (tcp)' % tag,
               t.nsm(*L, vip2, nu.SM_NOTIFY, nu.sm_notify_args(name, 7), proto='tcp'),
               exp_void, held + garb)
        # From loopback SM_MON is allowed and does nothing: no log line due.
        t.case('SM_MON mon_name=my_name=%s from loopback' % tag,
               t.nsm(*L, vip1, nu.SM_MON, nu.sm_mon_args(name, name)),
               exp_mon_lb, garb)
        t.case('SM_MON mon_name=%s from third host' % tag,
               t.nsm(*X, vip1, nu.SM_MON, nu.sm_mon_args(name, name)),
               mon_res(nu.STAT_FAIL) if not toolong else garbage,
               ['SM_MON from %s' % third.addr] + garb)
        lockargs = nu.nlm4_lock_args(name, fh1, oh=b'hostile', svid=9, start=1000, length=10)
        refused = [('client=%s' % esc, ' refused: unusable caller_name')]
        added = [('client=%s' % esc, ' added to client list')]
        t.case('NLM4 LOCK caller_name=%s from third host' % tag,
               t.nlm(*X, vip1, nu.NLM_LOCK, lockargs), exp_lock,
               (added if valid else refused) if not toolong else garb)
        t.case('NLM4 NM_LOCK caller_name=%s from third host (tcp)' % tag,
               t.nlm(*X, vip1, nu.NLM_NM_LOCK,
                     nu.nlm4_lock_args(name, fh1, oh=b'hostile-nm', svid=9, start=2000,
                                       length=10), proto='tcp'),
               exp_lock, ([] if valid else refused) if not toolong else garb)
        t.case('NLM4 SHARE caller_name=%s from third host' % tag,
               t.nlm(*X, vip2, nu.NLM_SHARE, nu.nlm4_share_args(name, fh2)),
               exp_lock, (added if valid else refused) if not toolong else garb)
        t.case('NLM4 FREE_ALL name=%s from third host' % tag,
               t.nlm(*X, vip1, nu.NLM_FREE_ALL, nu.nlm4_notify_args(name, 3)),
               exp_void, ([('client=%s' % esc, ' FREE_ALL')] if valid else
                          [('client=%s' % esc, ' FREE_ALL: holds nothing here')])
               if not toolong else garb)
        t.case('NLM4 procedure 16 mon_name=%s from a privileged loopback port' % tag,
               t.nlm(*L, vip1, nu.NLM_PRIV_SM_NOTIFY, nu.sm_status_args(name, 9), privileged=True),
               exp_void, [('client=%s' % esc, ' statd callback')] if not toolong else garb)
    # Valid names may hold any byte >= 0x80; the status must stay JSON.
    out, _ = nu.status_raw(c)
    h.check(nu.utf8_ok(out), 'sgnfsctl status --json is valid UTF-8 (RFC 8259) with every '
            'accepted hostile name on the client lists')

    # ---- 2. impersonation: naming the victim from elsewhere ---------------
    V = t.vname.encode()
    notaddr = 'client=%s SM_NOTIFY from %s refused: not an address of that client'
    for vip in (vip1, vip2):
        t.case('SM_NOTIFY mon_name=victim from third host to %s' % vip,
               t.nsm(*X, vip, nu.SM_NOTIFY, nu.sm_notify_args(V, 99)),
               void_ok, [notaddr % (t.vname, third.addr)])
    t.case('SM_NOTIFY mon_name=victim from third host, privileged port, tcp',
           t.nsm(*X, vip1, nu.SM_NOTIFY, nu.sm_notify_args(V, 101), proto='tcp', privileged=True),
           void_ok, [notaddr % (t.vname, third.addr)])
    t.case('SM_NOTIFY mon_name="victim\\0junk" from third host',
           t.nsm(*X, vip1, nu.SM_NOTIFY, nu.sm_notify_args(V + b'\0junk', 103)),
           void_ok, [notaddr % (t.vname, third.addr)])
    for vers in (3, 4):
        for proto in ('udp', 'tcp'):
            t.case('NLM%d FREE_ALL name=victim from third host (%s)' % (vers, proto),
                   t.nlm(*X, vip1, nu.NLM_FREE_ALL, nu.nlm4_notify_args(V, 5), vers=vers,
                         proto=proto),
                   void_ok, ['client=%s FREE_ALL from %s refused' % (t.vname, third.addr)])
    t.case('NLM4 FREE_ALL name=victim from third host to g2',
           t.nlm(*X, vip2, nu.NLM_FREE_ALL, nu.nlm4_notify_args(V, 5)),
           void_ok, ['group=g2 client=%s FREE_ALL from %s refused' % (t.vname, third.addr)])
    t.case('NLM4 procedure 16 mon_name=victim from a non-privileged loopback port',
           t.nlm(*L, vip1, nu.NLM_PRIV_SM_NOTIFY, nu.sm_status_args(V, 11)),
           void_ok, ['private SM_NOTIFY callback from 127.0.0.1'])
    t.case('NLM4 procedure 16 mon_name=victim from third host, privileged port',
           t.nlm(*X, vip1, nu.NLM_PRIV_SM_NOTIFY, nu.sm_status_args(V, 13), privileged=True),
           void_ok, ['private SM_NOTIFY callback from %s' % third.addr])
    t.case('NLM1 procedure 16 mon_name=victim from third host (tcp)',
           t.nlm(*X, vip2, nu.NLM_PRIV_SM_NOTIFY, nu.sm_status_args(V, 15), vers=1, proto='tcp'),
           void_ok, ['private SM_NOTIFY callback from %s' % third.addr])
    t.case('SM_MON mon_name=victim from third host',
           t.nsm(*X, vip1, nu.SM_MON, nu.sm_mon_args(V, third.addr)),
           mon_res(nu.STAT_FAIL), ['SM_MON from %s' % third.addr])
    t.case('SM_MON from the victim\'s own (non-loopback) address',
           t.nsm(victim.ns, victim.addr, vip2, nu.SM_MON, nu.sm_mon_args(vip2, victim.addr)),
           mon_res(nu.STAT_FAIL), ['SM_MON from %s' % victim.addr])
    t.case('SM_UNMON mon_name=victim from third host',
           t.nsm(*X, vip1, nu.SM_UNMON, nu.sm_unmon_args(V, third.addr)),
           void_ok, ['SM_UNMON from %s' % third.addr])
    t.case('SM_UNMON_ALL from third host',
           t.nsm(*X, vip1, nu.SM_UNMON_ALL, nu.sm_unmon_all_args(third.addr)),
           void_ok, ['SM_UNMON_ALL from %s' % third.addr])
    t.case('SM_SIMU_CRASH from third host',
           t.nsm(*X, vip1, nu.SM_SIMU_CRASH, b''),
           void_ok, ['SM_SIMU_CRASH from %s' % third.addr])

    # ---- 3. the file system ------------------------------------------------
    after = nu.snapshot(roots)

    def inside(p):
        return any(p == sd or p.startswith(sd + '/') for sd in statedirs)
    created = sorted(p for p in after if p not in before)
    removed = sorted(p for p in before if p not in after)
    h.check(not [p for p in created if not inside(p)],
            'no file created outside the state directories: %s'
            % [p for p in created if not inside(p)])
    h.check(not [p for p in removed if not inside(p)],
            'no file removed outside the state directories: %s'
            % [p for p in removed if not inside(p)])
    h.check(not removed, 'nothing removed inside them either: %s' % removed)
    bad = []
    for p in created:
        d, n = os.path.split(p)
        if not (os.path.basename(d) == 'clients' and os.path.dirname(d) in statedirs
                and after[p][0] == 'f' and not n.startswith('.') and '/' not in n
                and not any(ch.isspace() for ch in n)):
            bad.append(p)
    h.check(not bad, 'every new entry is a plain file directly in a .sgnfs/clients/ with a '
            'safe name: %s' % bad)
    log('new client-list entries: %s' % [os.path.basename(p)[:40] for p in created])
    for p, data in ventries.items():
        with open(p, 'rb') as f:
            h.check(f.read() == data, 'victim entry %s unchanged' % p)
    strays = []
    for d in ('/', '/tmp', '/etc', '/var/lib/nfs', h.tmp, lab.daemon_cwd, c.storage,
              os.path.dirname(c.storage)):
        try:
            strays += [os.path.join(d, n) for n in os.listdir(d) if MARK in n]
        except OSError:
            pass
    for p, _ in after.items():
        if MARK in os.path.basename(p) and p not in created:
            strays.append(p)
    h.check(not strays, 'nothing named after a hostile input outside .sgnfs/clients/: %s' % strays)

    # ---- 4. controls: the honest paths do work ----------------------------
    off = nu.log_size(node)
    rep = nu.rpc_once(*L, vip1, 4045, nu.NLM_PROG, 4, nu.NLM_PRIV_SM_NOTIFY,
                      nu.sm_status_args(V, 17), privileged=True)
    h.check(void_ok(rep), 'control: procedure 16 naming the victim from a privileged loopback '
            'port is answered (%r)' % rep)
    h.check(nu.wait_log(node, 'group=g1 client=%s statd callback: client restarted' % t.vname,
                        offset=off), 'control: ... and g1 releases the victim\'s locks')
    g1, g2 = t.victim_locks()
    h.check(not g1 and g2 == t.baseline[1], 'control: victim has no lock in g1, its g2 lock '
            'stays: %s / %s' % (g1, g2))
    off = nu.log_size(node)
    rep = nu.rpc_once(victim.ns, victim.addr, vip2, 662, nu.NSM_PROG, 1, nu.SM_NOTIFY,
                      nu.sm_notify_args(V, 21))
    h.check(void_ok(rep), 'control: SM_NOTIFY from the victim\'s own address to g2 (%r)' % rep)
    h.check(nu.wait_log(node, 'group=g2 client=%s SM_NOTIFY: client restarted' % t.vname,
                        offset=off), 'control: ... and g2 releases the victim\'s locks')
    g1, g2 = t.victim_locks()
    h.check(not g1 and not g2, 'control: victim holds nothing now: %s / %s' % (g1, g2))
    h.check(node.alive(), 'the daemon is still alive')

    # ---- 5. note: the address rule binds a name to every address it used --
    # (docs/nlm.md: a host is its caller_name, whatever address it uses), so
    # a third host that once locks *as* the victim may then notify for it.
    rc, _ = nu.sgnfs_client(h, victim, victim.addr, vip1, 'lock', f1, 0, 100)
    rep = nu.rpc_once(*X, vip1, 4045, nu.NLM_PROG, 4, nu.NLM_LOCK,
                      nu.nlm4_lock_args(V, fh1, oh=b'impostor', svid=5, start=5000, length=1),
                      cred=nu.auth_sys_cred())
    off = nu.log_size(node)
    nu.rpc_once(*X, vip1, 662, nu.NSM_PROG, 1, nu.SM_NOTIFY, nu.sm_notify_args(V, 23))
    freed = nu.wait_log(node, 'group=g1 client=%s SM_NOTIFY: client restarted' % t.vname,
                        offset=off, timeout=2)
    print('NOTE: third host %s LOCKed as %r (stat %s), then its SM_NOTIFY naming the victim '
          '%s the victim\'s g1 locks' % (third.addr, t.vname,
                                          nu.nlm4_stat(rep) if rep and rep.ok() else rep,
                                          'FREED' if freed else 'did not free'), flush=True)

    print('\nhostile inputs tried (%d):' % len(t.tried))
    for w in t.tried:
        print('  - ' + w)
    print(flush=True)


if __name__ == '__main__':
    harness.main(test, timeout=300)
