#!/usr/bin/env python3
"""
VIPs in the embedded mode (docs/deployment.md "VIPs"): sgnfsd adds a VIP
written ADDR/PREFIX@IFACE to its interface at takeover, announces it
(gratuitous ARP for IPv4, unsolicited neighbour advertisement for IPv6),
removes it at release; a VIP it cannot bind yet is retried until it can.

Topology, all made here (names vip-PID-*), like tests/pacemaker does: a
network namespace per node (vip-PID-a, vip-PID-b), each with one veth
`vip0` (10.77.0.1, 10.77.0.2 /24), plugged into bridge vipbr0 in a
namespace of its own (vip-PID-sw); a client namespace vip-PID-cl
(10.77.0.100) on the same bridge, where an AF_PACKET listener
(vip_sniff.py) records every ARP packet and neighbour advertisement.  The
nodes share the storage directories (one mount namespace), so the lease
works across them as on a cluster filesystem.

    g1  vip = 10.77.0.50/24@vip0 fd77::50/64@vip0   nodes = a b
    g2  vip = 10.77.0.60 (no interface)               nodes = a

Checked, in order (never timings):
  * sgnfsd -t accepts the file, and rejects a bad interface name;
  * (a) a takes g1: both VIPs are on a's vip0, and the client saw a
    gratuitous ARP (request, sender IP = target IP = VIP, sender MAC =
    Ethernet source = a's MAC) and an unsolicited NA (from the VIP to
    ff02::1, hop limit 255, override, target the VIP, target link-layer
    address a's MAC); the client reaches the VIP over TCP, v4 and v6;
  * (d) g2's VIP is not on any interface: g2 is "binding" with the reason
    (cannot bind 10.77.0.60:PORT: ... (EADDRNOTAVAIL), retry N in M ms); once the test
    adds the address on a, g2 comes online without anyone touching a;
  * (c) move g1 to b: the VIPs leave a's vip0 and appear on b's, and b
    announces them with b's MAC;
  * (b) kill -9 b: a takes g1 over, adds the VIPs, announces them with
    a's MAC, and the client's neighbour entry for the VIP moves to a's
    MAC; the dead node's stale address stays in its namespace (nobody is
    left there to remove it) until b starts again, which removes it
    (its record in run_dir) before it serves anything;
  * a clean stop of a removes g1's VIPs, and leaves 10.77.0.60 (added by
    the test, not by sgnfsd) where it is.
"""

import json
import os
import subprocess
import sys
import threading
import time

import harness
import fo_util as fu
from harness import log, TestAbort

PID = os.getpid()
NS_SW = 'vip-%d-sw' % PID
NS = {'a': 'vip-%d-a' % PID, 'b': 'vip-%d-b' % PID, 'cl': 'vip-%d-cl' % PID}
ADDR = {'a': '10.77.0.1', 'b': '10.77.0.2', 'cl': '10.77.0.100'}
VIP4, VIP6, VIP_LATE = '10.77.0.50', 'fd77::50', '10.77.0.60'


def sh(argv, check=True):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    if check and p.returncode != 0:
        raise TestAbort('%s: exit %d: %s' % (' '.join(argv), p.returncode,
                                             p.stdout.decode().strip()))
    return p.stdout.decode()


def make_net():
    sh(['ip', 'netns', 'add', NS_SW])
    sh(['ip', '-n', NS_SW, 'link', 'add', 'vipbr0', 'type', 'bridge'])
    sh(['ip', '-n', NS_SW, 'link', 'set', 'vipbr0', 'up'])
    for k, ns in NS.items():
        sh(['ip', 'netns', 'add', ns])
        sh(['ip', 'link', 'add', 'vip-' + k, 'netns', NS_SW, 'type', 'veth', 'peer', 'name',
            'vip0', 'netns', ns])
        sh(['ip', '-n', NS_SW, 'link', 'set', 'vip-' + k, 'master', 'vipbr0', 'up'])
        sh(['ip', '-n', ns, 'addr', 'add', ADDR[k] + '/24', 'dev', 'vip0'])
        # Link-local and the VIP's subnet for IPv6 on the client: the
        # nodes add fd77::50/64 themselves.
        if k == 'cl':
            sh(['ip', '-n', ns, 'addr', 'add', 'fd77::100/64', 'dev', 'vip0', 'nodad'])
        sh(['ip', '-n', ns, 'link', 'set', 'vip0', 'up'])
        sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])


def drop_net():
    for ns in list(NS.values()) + [NS_SW]:
        sh(['ip', 'netns', 'del', ns], check=False)


def mac_of(k):
    return json.loads(sh(['ip', '-n', NS[k], '-j', 'link', 'show', 'vip0']))[0]['address']


def addrs_of(k):
    doc = json.loads(sh(['ip', '-n', NS[k], '-j', 'addr', 'show', 'dev', 'vip0']))
    return {a['local'] for a in doc[0].get('addr_info', [])}


def neigh_of(k, ip):
    doc = json.loads(sh(['ip', '-n', NS[k], '-j', 'neigh', 'show', ip, 'dev', 'vip0']))
    return doc[0].get('lladdr') if doc else None


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            log('seen: %s' % what)
            return v
        if time.monotonic() > deadline:
            raise TestAbort('%s: not after %ds' % (what, timeout))
        time.sleep(0.05)


class Sniffer:
    """vip_sniff.py in the client's namespace; .packets grows as it reads."""

    def __init__(self, h):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'vip_sniff.py')
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', NS['cl'], sys.executable, '-u',
                                      path, 'vip0'], stdout=subprocess.PIPE,
                                     preexec_fn=harness._pdeathsig)
        h.helpers.append(self.proc)
        self.packets = []
        self.ready = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(20):
            raise TestAbort('the packet listener did not start')

    def _read(self):
        for line in self.proc.stdout:
            d = json.loads(line)
            if d.get('ready'):
                self.ready.set()
                continue
            log('wire: %s' % d)
            with self.lock:
                self.packets.append(d)

    def mark(self):
        with self.lock:
            return len(self.packets)

    def since(self, mark):
        with self.lock:
            return list(self.packets[mark:])


def garp_from(sn, mark, mac):
    return [p for p in sn.since(mark) if p['kind'] == 'arp' and p['op'] == 1
            and p['spa'] == VIP4 and p['tpa'] == VIP4 and p['sha'] == mac
            and p['eth_src'] == mac and p['tha'] == '00:00:00:00:00:00']


def na_from(sn, mark, mac):
    return [p for p in sn.since(mark) if p['kind'] == 'na' and p['target'] == VIP6
            and p['tlla'] == mac and p['eth_src'] == mac and p['override']
            and not p['solicited'] and p['hlim'] == 255 and p['src'] == VIP6
            and p['dst'] == 'ff02::1']


def client_connects(ip, port):
    code = ('import socket,sys\n'
            's = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n'
            's.close()\n')
    p = subprocess.run(['ip', 'netns', 'exec', NS['cl'], sys.executable, '-c', code, ip,
                        str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    log('client connect %s:%d -> %d %s' % (ip, port, p.returncode, p.stdout.decode().strip()))
    return p.returncode == 0


def state_of(c, group, node):
    st = fu.status_raw(c) or {}
    for nd in st.get('nodes', []):
        if nd.get('name') != node:
            continue
        for g in (nd.get('status') or {}).get('groups', []):
            if g.get('name') == group:
                return g
    return None


def test(h):
    if os.geteuid() != 0:
        raise harness.Skip('needs root (network namespaces)')
    h.need_tool('ip')
    gs = [harness.Group('g1', [harness.Export('g1/fs', fsid=101)], nodes=('a', 'b'), grace=2),
          harness.Group('g2', [harness.Export('g2/fs', fsid=102)], nodes=('a',), grace=2)]
    c = h.cluster(groups=gs, nodes=['a', 'b'])
    gs[0].vips = ['%s/24@vip0' % VIP4, '%s/64@vip0' % VIP6]
    gs[1].vips = [VIP_LATE]
    c.write_config()
    p = subprocess.run([h.sgnfsd, '-t', '-c', c.config_path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    h.check(p.returncode == 0, 'sgnfsd -t accepts ADDR/PREFIX@IFACE (%s)'
            % p.stdout.decode().strip())
    bad = c.config_path + '.bad'
    with open(bad, 'w') as f:
        f.write(c.config_text().replace('%s/24@vip0' % VIP4, '%s/24@vip0/x' % VIP4))
    p = subprocess.run([h.sgnfsd, '-t', '-c', bad], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode()
    h.check(p.returncode != 0 and "'vip0/x' is not a valid interface name" in out,
            'sgnfsd -t rejects a bad interface name (%s)' % out.strip())

    drop_net()
    try:
        make_net()
        run(h, c)
    finally:
        c.kill_all()
        drop_net()


def run(h, c):
    mac = {'a': mac_of('a'), 'b': mac_of('b')}
    sn = Sniffer(h)

    # -- (a) takeover on a: added, announced, reachable ---------------------
    m = sn.mark()
    c.start('a', wait=False, wrap=('ip', 'netns', 'exec', NS['a']))
    fu.wait_group(h, c, 'g1', owner='a', timeout=30)
    h.check({VIP4, VIP6} <= addrs_of('a'), 'g1 online on a: both VIPs are on a\'s vip0 (%s)'
            % sorted(addrs_of('a')))
    wait(lambda: garp_from(sn, m, mac['a']), 20, 'gratuitous ARP for %s from a (%s)'
         % (VIP4, mac['a']))
    wait(lambda: na_from(sn, m, mac['a']), 20, 'unsolicited NA for %s from a' % VIP6)
    h.check(True, 'a announced g1\'s VIPs with its MAC (ARP and NA)')
    h.check(client_connects(VIP4, c.ports['nfs_port']), 'the client reaches %s:nfs' % VIP4)
    h.check(client_connects(VIP6, c.ports['nfs_port']), 'the client reaches [%s]:nfs' % VIP6)
    h.check(neigh_of('cl', VIP4) == mac['a'], 'the client\'s neighbour entry for %s is a\'s MAC'
            % VIP4)

    # -- (d) g2: no address yet -> binding, online once it is added ---------
    g2 = wait(lambda: (lambda g: g if g and g.get('state') == 'binding' else None)(
        state_of(c, 'g2', 'a')), 20, 'g2 binding on a')
    why = g2.get('reason', '')
    h.check(why.startswith('cannot bind %s:' % VIP_LATE) and 'EADDRNOTAVAIL' in why and
            ', retry ' in why and ' ms' in why, 'g2 says why it is not online: %s' % why)
    h.check(VIP_LATE not in addrs_of('a'), 'sgnfsd did not add g2\'s VIP (no @IFACE)')
    sh(['ip', '-n', NS['a'], 'addr', 'add', VIP_LATE + '/24', 'dev', 'vip0'])
    fu.wait_group(h, c, 'g2', owner='a', timeout=30)
    h.check(True, 'g2 online on a once its address was added')
    h.check(client_connects(VIP_LATE, c.ports['nfs_port']), 'the client reaches %s:nfs'
            % VIP_LATE)

    # -- (c) planned move to b ------------------------------------------------
    c.start('b', wait=False, wrap=('ip', 'netns', 'exec', NS['b']))
    wait(lambda: state_of(c, 'g1', 'b') is None and fu.status_raw(c) is not None
         and any(nd.get('name') == 'b' and nd.get('status')
                 for nd in fu.status_raw(c).get('nodes', [])), 20, 'b up, standby for g1')
    m = sn.mark()
    fu.ctl(h, c, 'move', 'g1', 'b')
    fu.wait_group(h, c, 'g1', owner='b', timeout=30)
    h.check(not ({VIP4, VIP6} & addrs_of('a')), 'after the move, g1\'s VIPs left a\'s vip0 (%s)'
            % sorted(addrs_of('a')))
    h.check({VIP4, VIP6} <= addrs_of('b'), 'after the move, g1\'s VIPs are on b\'s vip0')
    wait(lambda: garp_from(sn, m, mac['b']), 20, 'gratuitous ARP for %s from b' % VIP4)
    wait(lambda: na_from(sn, m, mac['b']), 20, 'unsolicited NA for %s from b' % VIP6)
    # a may still send a scheduled repeat of its own announcement until it
    # releases g1 (on a loaded machine, after the mark); b announces only
    # after that release, so none of a's may follow b's first one.
    pk = sn.since(m)

    def ann(p, who):
        return p['eth_src'] == mac[who] and (
            (p['kind'] == 'arp' and p.get('op') == 1 and p.get('spa') == VIP4) or
            (p['kind'] == 'na' and p.get('target') == VIP6 and not p.get('solicited')))
    fb = next((i for i, p in enumerate(pk) if ann(p, 'b')), None)
    late = [p for p in pk[fb:] if ann(p, 'a')] if fb is not None else []
    h.check(fb is not None and not late, 'a sent no announcement for g1 once b announced it '
            '(%d after b\'s first)' % len(late))
    wait(lambda: neigh_of('cl', VIP4) == mac['b'], 20, 'the client\'s entry for %s moved to b'
         % VIP4)

    # -- (b) kill -9 of b: a takes over and announces -------------------------
    m = sn.mark()
    c.kill9('b')
    fu.wait_group(h, c, 'g1', owner='a', timeout=30)
    h.check({VIP4, VIP6} <= addrs_of('a'), 'after kill -9 of b, g1\'s VIPs are on a\'s vip0')
    wait(lambda: garp_from(sn, m, mac['a']), 20, 'gratuitous ARP for %s from a after the kill'
         % VIP4)
    wait(lambda: na_from(sn, m, mac['a']), 20, 'unsolicited NA for %s from a after the kill'
         % VIP6)
    wait(lambda: neigh_of('cl', VIP4) == mac['a'], 20, 'the client\'s entry for %s moved back '
         'to a' % VIP4)
    h.check(client_connects(VIP4, c.ports['nfs_port']), 'the client reaches %s:nfs on a'
            % VIP4)
    h.check(VIP4 in addrs_of('b'), 'the killed node\'s stale address is still in its '
            'namespace (nobody was left to remove it)')
    c.start('b', wait=False, wrap=('ip', 'netns', 'exec', NS['b']))
    wait(lambda: not ({VIP4, VIP6} & addrs_of('b')), 20,
         'b, started again, removed the stale VIPs it had added')
    h.check(state_of(c, 'g1', 'a') is not None, 'g1 stayed on a')
    c.stop('b')

    # -- clean stop of a ------------------------------------------------------
    c.stop('a')
    left = addrs_of('a')
    h.check(not ({VIP4, VIP6} & left), 'a\'s clean stop removed g1\'s VIPs (%s)' % sorted(left))
    h.check(VIP_LATE in left, 'a left %s alone (the test added it, not sgnfsd)' % VIP_LATE)
    fu.check_no_sanitizer_report(h, c)


harness.main(test, timeout=150)
