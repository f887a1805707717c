"""
wire.py - the server's answer times as seen on the wire, for the benches
that share the server's two cores with their own clients.

A bench's client measures from its own send to its own read, which
includes the time the client waited for a CPU (on this machine the clients,
a flood's sender and the server share two cores).  A capture on lo of the
traffic of one address, read by tshark (`rpc.time`: from a call to its
reply on the wire), tells what the server itself took.

    cap = wire.start('127.0.0.5', 'tag')    # None without dumpcap
    ...                                     # the calls
    rows = wire.times(cap)                  # [(t, program, procedure, ms)]
    wire.stats(rows, t0, t1, 100021, 2)     # NLM LOCK answered in [t0, t1]

Times are the bench's time.monotonic(), so windows taken around the calls
select the replies that belong to them.
"""

import os
import subprocess
import time

NFS_PROG = 100003
NLM_PROG = 100021


def pct(xs, p):
    """The @p-th percentile (0..100) of @xs, None when empty."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def start(host, tag):
    """A capture of @host's traffic on lo, or None without dumpcap."""
    path = os.path.join(os.environ.get('TMPDIR', '/tmp'), 'wire_%s_%d.pcapng' % (tag, os.getpid()))
    try:
        p = subprocess.Popen(['dumpcap', '-q', '-i', 'lo', '-f', 'host %s' % host, '-w', path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None
    time.sleep(1.0)  # dumpcap has lo open before the first measured call
    return p, path


def times(cap):
    """[(monotonic time of the reply, program, procedure, ms from call to
    reply)] of every RPC reply in @cap, or [] when it cannot be read.  The
    capture is stopped and its file removed."""
    if not cap:
        return []
    p, path = cap
    p.send_signal(2)
    p.wait(timeout=30)
    off = time.time() - time.monotonic()
    try:
        out = subprocess.run(['tshark', '-r', path, '-Y', 'rpc.msgtyp == 1', '-T', 'fields',
                              '-E', 'occurrence=a', '-e', 'frame.time_epoch',
                              '-e', 'rpc.program', '-e', 'rpc.procedure', '-e', 'rpc.time'],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=600).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return []
    finally:
        os.unlink(path)
    rows = []
    for line in out.splitlines():
        f = line.split('\t')
        if len(f) != 4 or not f[3]:
            continue
        # several replies in one segment: one value each, comma-separated
        progs, procs, rts = f[1].split(','), f[2].split(','), f[3].split(',')
        if not (len(progs) == len(procs) == len(rts)):
            continue
        t = float(f[0]) - off
        for prog, proc, rt in zip(progs, procs, rts):
            rows.append((t, int(prog), int(proc), float(rt) * 1000.0))
    return rows


def select(rows, windows, prog, proc):
    """The ms of the @prog/@proc replies that fall in any of @windows
    [(t0, t1), ...]."""
    return [ms for t, pg, pc, ms in rows
            if pg == prog and pc == proc and any(a <= t <= b for a, b in windows)]


def stats(rows, t0, t1, prog, proc):
    """p50/p99/max of the @prog/@proc replies in [t0, t1]."""
    lat = select(rows, [(t0, t1)], prog, proc)
    return {'calls': len(lat), 'p50_ms': pct(lat, 50), 'p99_ms': pct(lat, 99),
            'max_ms': max(lat) if lat else None}
