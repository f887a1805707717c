#!/usr/bin/env python3
"""
test_nlm_interop - NLM against independent implementations of the XDR:

  * nlm_interop (tests/integration/nlm_interop.c, built only with libnfs):
    libnfs's raw rpc_nlm4_* calls lock, test (the holder), conflict and
    unlock against sgnfsd: once through the VIP's portmapper on group g1,
    once connected straight to port 4045 on group g2;
  * sgnfs-client traffic that only our server's other encodings produce:
    NLM v1 and v3 (narrowed results, a holder above 4 GiB clamped), the
    _MSG/_RES calls, SHARE/UNSHARE, FREE_ALL, and a blocking lock granted
    through the server's GRANTED callback (the server calling the client);

all under a tshark capture on lo filtered to the two VIPs.  Wireshark's
dissectors then must find no malformed packet and no expert error, and
must see the NLM traffic: calls of versions 1, 3 and 4, the libnfs
program's caller_name, every synchronous call answered, a GRANTED call.

Client hosts are 127.S.63.N in the cluster's private /16.
"""
import os
import signal
import subprocess
import time

import harness
import nlm_util as nu
from harness import Export, Group, log
from nlm_util import Client

NLM_PROCS_SYNC = {'1', '2', '3', '4', '20', '21', '22'}   # TEST LOCK CANCEL UNLOCK SHARE UNSHARE NM_LOCK


def test(h):
    tshark = h.need_tool('tshark')
    interop = os.environ.get('NLM_INTEROP', '')
    if not interop or not os.access(interop, os.X_OK):
        raise harness.Skip('NLM_INTEROP not built (libnfs missing?)')
    c = h.cluster([
        Group('g1', [Export('g1/data', fsid=631)], grace=1),
        Group('g2', [Export('g2/data', fsid=632)], grace=1),
    ])
    nu.watch(c)
    e1, e2 = c.export('g1/data'), c.export('g2/data')
    vip1, vip2 = c.group('g1').vip, c.group('g2').vip
    for e in (e1, e2):
        for n in ('interop', 'tool', 'big'):
            with open(os.path.join(e.path, n), 'wb') as f:
                f.write(b'i' * 128)
    c.start('a')
    nu.wait_online(h, c, ['g1', 'g2'])

    pcap = os.path.join(h.tmp, 'nlm.pcapng')
    cap_log = os.path.join(h.logdir, 'tshark-capture.log')
    argv = [tshark, '-i', 'lo', '-n', '-f', 'host %s or host %s' % (vip1, vip2), '-w', pcap]
    log('capture: %s' % ' '.join(argv))
    capf = open(cap_log, 'wb')
    cap = subprocess.Popen(argv, stdout=capf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           start_new_session=True, preexec_fn=harness._pdeathsig)
    capf.close()
    h.helpers.append(cap)
    h.logs.append((cap_log, 'tshark capture'))
    h.require(nu.wait_file_text(cap_log, 'Capturing on', 20, proc=cap),
              'tshark is capturing on lo')
    time.sleep(1.0)

    caller = 'nlm-interop-%d' % c.slot
    # libnfs, through g1's portmapper
    cp = h.run([interop, vip1, e1.path, 'interop', caller], timeout=60, check=False)
    h.check(cp.returncode == 0, 'nlm_interop against %s (portmapper) passes (exit %d)'
            % (vip1, cp.returncode))
    # libnfs, straight to g2's NLM port
    cp = h.run([interop, vip2, e2.path, 'interop', caller + '-direct', str(c.ports['nlm_port'])],
               timeout=60, check=False)
    h.check(cp.returncode == 0, 'nlm_interop against %s:%d (direct) passes (exit %d)'
            % (vip2, c.ports['nlm_port'], cp.returncode))
    # the lock it left nowhere: nothing remains in either group
    st = nu.status(h, c)
    h.check(not [l for g in ('g1', 'g2') for l in st[g]['locks'] if l['client'].startswith(caller)],
            'nlm_interop left no lock behind')

    # our own client, for the encodings libnfs does not exercise
    H = lambda n: nu.host(c, 63, n)
    f1 = os.path.join(e1.path, 'tool')
    big = os.path.join(e1.path, 'big')
    a4 = Client(h, H(1), vip1, svid=41)
    a4.expect('v4 lock', 'lock', f1, 0, 100, rc=0)
    a4.expect('v4 lock above 4 GiB', 'lock', big, 6 << 32, 10, rc=0)
    for vers, proto in ((1, 'tcp'), (1, 'udp'), (3, 'tcp'), (3, 'udp')):
        cl = Client(h, H(10 + vers * 2 + (proto == 'udp')), vip1, svid=50 + vers, vers=vers,
                    proto=proto)
        cl.expect('v%d/%s TEST sees the v4 holder' % (vers, proto), 'test', f1, 10, 10, rc=1)
        cl.expect('v%d/%s LOCK denied' % (vers, proto), 'lock', f1, 10, 10, rc=1)
        res = cl.expect('v%d/%s TEST of a lock above 4 GiB' % (vers, proto), 'test', big, 0, 0, rc=1)
        h.check((res.holder or {}).get('start') == (1 << 32) - 1,
                'v%d/%s holder clamped to 2^32-1 (got %s)' % (vers, proto, res.holder))
        cl.expect('v%d/%s LOCK granted elsewhere' % (vers, proto), 'lock', f1, 200 + vers * 10,
                  5, rc=0)
        cl.expect('v%d/%s UNLOCK' % (vers, proto), 'unlock', f1, 200 + vers * 10, 5, rc=0)
    m = Client(h, H(20), vip1, svid=60, extra=['--msg'])
    m.expect('TEST_MSG/TEST_RES with a holder', 'test', f1, 0, 1, rc=1)
    m.expect('LOCK_MSG/LOCK_RES', 'lock', f1, 300, 1, rc=0)
    m.expect('UNLOCK_MSG/UNLOCK_RES', 'unlock', f1, 300, 1, rc=0)
    m3 = Client(h, H(21), vip1, svid=61, vers=3, proto='udp', extra=['--msg'])
    m3.expect('v3 TEST_MSG over UDP with a holder', 'test', f1, 0, 1, rc=1)
    s4 = Client(h, H(22), vip1, svid=62)
    s4.expect('SHARE', 'share', f1, opts=['--mode', 'w', '--access', 'r'], rc=0)
    Client(h, H(23), vip1, svid=63).expect('SHARE conflict', 'share', f1, opts=['--access', 'w'],
                                           rc=1)
    Client(h, H(24), vip1, svid=64, vers=3).expect('v3 SHARE conflict', 'share', f1,
                                                   opts=['--access', 'w'], rc=1)
    s4.expect('UNSHARE', 'unshare', f1, rc=0)
    w = Client(h, H(25), vip1, svid=65)
    p, lp = w.spawn('lock', f1, 50, 1, opts=['--block', '--poll', '600000'])
    h.check(nu.wait_file_text(lp, 'event=blocked', 10, proc=p), 'a blocking lock is queued')
    a4.expect('the holder unlocks', 'unlock', f1, 0, 100, rc=0)
    try:
        rc = p.wait(15)
    except subprocess.TimeoutExpired:
        rc = None
    h.check(rc == 0, 'the blocked lock is granted by GRANTED (exit %s)' % rc)
    w.expect('FREE_ALL', 'free-all', rc=0)
    a4.expect('FREE_ALL', 'free-all', rc=0)
    Client(h, H(1), vip2).expect('FREE_ALL on the other VIP', 'free-all', rc=0)

    time.sleep(1.0)
    cap.send_signal(signal.SIGINT)
    try:
        cap.wait(20)
    except subprocess.TimeoutExpired:
        cap.kill()
        cap.wait()
    h.require(os.path.exists(pcap) and os.path.getsize(pcap) > 0, 'the capture file is not empty')

    base = [tshark, '-r', pcap] + harness.tshark_rpc_args(tshark, pcap)
    cp = h.run(base + ['-Y', '_ws.malformed || _ws.expert.severity==error'], timeout=120,
               check=False, quiet=True)
    bad = [l for l in cp.stdout.decode('utf-8', 'replace').splitlines() if l.strip()]
    h.check(cp.returncode == 0 and not bad, 'no malformed packet and no expert error (%d found%s)'
            % (len(bad), ': ' + '; '.join(bad[:5]) if bad else ''))

    cp = h.run(base + ['-2', '-Y', 'nlm', '-T', 'fields', '-E', 'separator=|',
                       '-e', 'frame.number', '-e', 'rpc.msgtyp', '-e', 'rpc.programversion',
                       '-e', 'rpc.procedure', '-e', 'rpc.reqframe', '-e', 'nlm.lock.caller_name',
                       '-e', 'ip.src', '-e', 'ip.dst', '-e', 'rpc.repframe'],
               timeout=120, check=False, quiet=True)
    rows = [l.split('|') for l in cp.stdout.decode('utf-8', 'replace').splitlines() if l.strip()]
    h.check(len(rows) > 50, 'tshark decodes NLM packets (%d frames)' % len(rows))
    calls = {}            # (version, proc) -> number of calls
    sync_calls = []       # frames of synchronous calls to the server
    answered = set()      # call frames linked to their reply (in either direction)
    callers = set()
    granted_from_vip = 0
    for r in rows:
        r += [''] * (9 - len(r))
        typs, vers, procs = r[1].split(','), r[2].split(','), r[3].split(',')
        callers.update(x for x in r[5].split(',') if x)
        # Wireshark links a call and its reply both ways; which field
        # carries the link on which side has varied between versions.
        links = [x for x in (r[4] + ',' + r[8]).split(',') if x]
        if '0' in typs and links:
            answered.add(r[0])
        if '1' in typs:
            answered.update(links)
        for i, t in enumerate(typs):
            if t != '0':
                continue
            v = vers[i] if i < len(vers) else ''
            pr = procs[i] if i < len(procs) else ''
            calls[(v, pr)] = calls.get((v, pr), 0) + 1
            if pr == '5' and r[6] in (vip1, vip2):
                granted_from_vip += 1
            if pr in NLM_PROCS_SYNC and r[7] in (vip1, vip2):
                sync_calls.append(r[0])
    unanswered = [f for f in sync_calls if f not in answered]
    versions = {v for (v, _) in calls}
    log('NLM calls seen (version, procedure): count = %s' % sorted(calls.items()))
    h.check({'1', '3', '4'} <= versions, 'NLM calls of versions 1, 3 and 4 decoded (got %s)'
            % sorted(versions))
    for proc, name in (('1', 'TEST'), ('2', 'LOCK'), ('3', 'CANCEL'), ('4', 'UNLOCK'),
                       ('6', 'TEST_MSG'), ('7', 'LOCK_MSG'), ('11', 'TEST_RES'),
                       ('12', 'LOCK_RES'), ('20', 'SHARE'), ('21', 'UNSHARE'),
                       ('23', 'FREE_ALL')):
        n = sum(v for (vv, p), v in calls.items() if p == proc)
        h.check(n > 0, 'NLM %s calls decoded (%d)' % (name, n))
    h.check(caller in callers and caller + '-direct' in callers,
            'the libnfs program\'s caller_names appear in the decoded locks')
    h.check(granted_from_vip > 0, 'the server\'s GRANTED callback was decoded (%d)' % granted_from_vip)
    h.check(sync_calls and not unanswered, 'every synchronous NLM call to the server got a reply '
            '(%d calls; unanswered frames: %s)' % (len(sync_calls), unanswered[:10]))

    nu.check_no_sanitizer_report(h, c)
    c.stop('a')
    nu.check_no_sanitizer_report(h, c)


if __name__ == '__main__':
    harness.main(test, timeout=300)
