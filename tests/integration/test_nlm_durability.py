#!/usr/bin/env python3
"""
test_nlm_durability - the client list is durable before any grant.

Part 1, kill -9 right after a grant, repeatedly: start sgnfsd; a client
host with a new name (and a new address) takes a lock (or a share, over
TCP or UDP, NLM v4 or v3, LOCK or LOCK_MSG); the moment the client prints
"granted" the daemon gets SIGKILL; the client's entry must then be in
<export>/.sgnfs/clients/ with its name and address, and the restarted
daemon must list every client so far.

Part 2, an unwritable client list: with `chattr +i` on .sgnfs/clients
(root ignores mode bits), a new client's LOCK, blocking LOCK and SHARE are
refused with DENIED_NOLOCKS (exit 1), never granted, and the log names the
failure; a client already on the list keeps locking; after `chattr -i`
the new client is granted.

Client hosts are 127.S.62.N in the cluster's private /16.
"""
import os
import subprocess
import time

import harness
import nlm_util as nu
from harness import Export, Group, log
from nlm_util import Client

ITERATIONS = int(os.environ.get('SGNFS_DURABILITY_ITERATIONS', '24'))
MODES = ['tcp4', 'udp4', 'tcp3', 'share', 'msg', 'udp3-block']


def entry_path(e, name):
    return os.path.join(e.path, '.sgnfs', 'clients', name)


def read_entry(path):
    try:
        with open(path) as f:
            kv = {}
            addrs = []
            for ln in f.read().splitlines():
                k, _, v = ln.partition('=')
                if k == 'addr':
                    addrs.append(v)
                else:
                    kv[k] = v
            kv['addr'] = addrs
            return kv
    except OSError:
        return None


def lock_argv(c, vip, addr, name, mode, f, i):
    argv = [nu.client_path(), '--host', addr, '--server', vip, '--name', name,
            '--svid', str(100 + i), '--json', '--timeout', '8000']
    if mode == 'udp4':
        argv += ['--proto', 'udp']
    elif mode == 'tcp3':
        argv += ['--vers', '3']
    elif mode == 'msg':
        argv += ['--msg']
    elif mode == 'udp3-block':
        argv += ['--proto', 'udp', '--vers', '3', '--block']
    if mode == 'share':
        return argv + ['share', f]
    return argv + ['lock', f, str(i * 16), '16']


def kill_after_grant(h, c, vip, e, f, i, mode):
    """One iteration; returns True when it passed."""
    name = 'dur-%d-%d' % (c.slot, i)
    addr = nu.host(c, 62, i + 1)
    argv = lock_argv(c, vip, addr, name, mode, f, i)
    logpath = os.path.join(h.logdir, 'dur-%02d.log' % i)
    log('run: %s' % ' '.join(argv))
    with open(logpath, 'wb') as errf:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errf,
                             stdin=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=harness._pdeathsig)
    h.helpers.append(p)
    h.logs.append((logpath, 'client %s (stderr)' % name))
    granted = False
    first = b''
    deadline = time.monotonic() + 20
    for line in p.stdout:
        first = line
        if b'"status":"granted"' in line:
            granted = True
            c.kill9('a')          # at once: nothing more may happen first
            break
        if time.monotonic() > deadline:
            break
        if line.startswith(b'{'):
            break
    if not granted:
        c.kill9('a')
    p.wait(20)
    ok = h.check(granted, '#%02d %-10s client %s is granted (%s)'
                 % (i, mode, name, first.decode('utf-8', 'replace').strip()[:160]))
    ent = read_entry(entry_path(e, name))
    ok &= h.check(ent is not None and ent.get('name') == name and addr in ent.get('addr', [])
                  and ent.get('sgnfs-clist') == '1' and ent.get('added', '').isdigit(),
                  '#%02d %-10s after kill -9 its entry is on disk with name %s and addr %s (got %s)'
                  % (i, mode, name, addr, ent))
    ok &= h.check(not os.path.exists(os.path.join(e.path, '.sgnfs', 'clients', '.tmp-' + name)),
                  '#%02d %-10s no half-written temporary file left for it' % (i, mode))
    return ok


def start_node(h, c, groups):
    c.start('a')
    return nu.wait_online(h, c, groups, timeout=60)


def test(h):
    c = h.cluster([
        Group('g1', [Export('g1/data', fsid=621)], grace=1),
        Group('g2', [Export('g2/data', fsid=622)], grace=1),
    ])
    nu.watch(c)
    e1 = c.export('g1/data')
    vip1 = c.group('g1').vip
    f = os.path.join(e1.path, 'dur')
    with open(f, 'wb') as fh:
        fh.write(b'd' * 4096)

    # -- part 1: kill -9 right after each grant --------------------------------
    names = []
    passed = 0
    for i in range(ITERATIONS):
        st = start_node(h, c, ['g1', 'g2'])
        listed = set(nu.clients_of(st, 'g1'))
        h.check(set(names) <= listed,
                '#%02d restarted daemon lists all %d earlier clients (missing %s)'
                % (i, len(names), sorted(set(names) - listed)))
        mode = MODES[i % len(MODES)]
        if kill_after_grant(h, c, vip1, e1, f, i, mode):
            passed += 1
        names.append('dur-%d-%d' % (c.slot, i))
        nu.check_no_sanitizer_report(h, nodes=[c.all_nodes[-1]])
    h.check(passed == ITERATIONS, '%d of %d kill -9 iterations found the client on disk'
            % (passed, ITERATIONS))

    # -- part 2: the client list cannot be written ---------------------------
    h.need_tool('chattr')
    st = start_node(h, c, ['g1', 'g2'])
    node = c.nodes['a']
    cdir = os.path.join(e1.path, '.sgnfs', 'clients')
    known = Client(h, nu.host(c, 62, 200), vip1, name='known-%d' % c.slot, svid=7)
    known.expect('a client listed before the directory is frozen', 'lock', f, 0, 1, rc=0)
    newname = 'frozen-%d' % c.slot
    new = Client(h, nu.host(c, 62, 201), vip1, name=newname, svid=8)
    new_block = Client(h, nu.host(c, 62, 202), vip1, name=newname + '-b', svid=9,
                       extra=['--block', '--wait', '5000'])
    new_share = Client(h, nu.host(c, 62, 203), vip1, name=newname + '-s', svid=10)
    before = sorted(os.listdir(cdir))
    cp = h.run(['chattr', '+i', cdir], timeout=10, check=False, quiet=True)
    if cp.returncode != 0:
        raise harness.Skip('chattr +i not supported here: %s' % cp.stderr.decode().strip())
    try:
        probe = os.path.join(cdir, '.probe')
        try:
            open(probe, 'w').close()
            os.unlink(probe)
            frozen = False
        except OSError:
            frozen = True
        h.require(frozen, 'chattr +i makes %s unwritable even for root' % cdir)
        new.expect('LOCK of a new client is refused DENIED_NOLOCKS', 'lock', f, 100, 10,
                   rc=1, status='denied_nolocks')
        new.expect('again (no grant on retry)', 'lock', f, 100, 10, rc=1, status='denied_nolocks')
        new_block.expect('a blocking LOCK of a new client is refused too', 'lock', f, 110, 10,
                         rc=1, status='denied_nolocks')
        new_share.expect('SHARE of a new client is refused too', 'share', f, rc=1,
                         status='denied_nolocks')
        st = nu.status(h, c)
        h.check(nu.locks_of(st, 'g1', client=newname) == [] and
                nu.locks_of(st, 'g1', client=newname + '-b') == [],
                'status shows no lock of the refused clients')
        known.expect('a client already on the list still locks (no write needed)', 'lock', f, 1, 1,
                     rc=0)
        h.check(nu.wait_log(node, 'client=%s cannot record client on the group\'s storage' % newname),
                'the log names the failed write of client %s' % newname)
        h.check(nu.wait_log(node, 'its locks are refused'), 'the log says its locks are refused')
        h.check(sorted(os.listdir(cdir)) == before, 'nothing was added to the frozen directory')
    finally:
        subprocess.run(['chattr', '-i', cdir], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    new.expect('after chattr -i the new client is granted', 'lock', f, 100, 10, rc=0,
               status='granted')
    ent = read_entry(entry_path(e1, newname))
    h.check(ent is not None and ent.get('name') == newname, 'and its entry is on disk now')
    new_share.expect('the share client too', 'share', f, rc=0)
    Client(h, nu.host(c, 62, 205), vip1, svid=12).expect(
        'the refused blocking request left no waiter: 110..119 is free', 'lock', f, 110, 10, rc=0)

    nu.check_no_sanitizer_report(h, c)
    c.stop('a')
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=420)
