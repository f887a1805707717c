#!/usr/bin/env python3
"""
vm_stall_probe.py - does the machine itself stop now and then when one CPU
is kept busy?  (No sgnfs involved.)

Issue 12's takeover bench (group_open_bench.py) reads a few slow LOCK
answers per takeover that no thread of sgnfsd waited for: a perf sched
trace shows the loop never runnable-but-waiting nor in D state, the other
group's journal fdatasync taking 5-10 ms, and at that moment an idle CPU
whose woken kernel threads waited milliseconds to run.  On a virtual
machine that is the host not running the guest's vCPUs (a CPU quota of
the VM, or its host CPUs busy).  This probe shows it without sgnfsd:

  * a spinner process pinned to one CPU reads CLOCK_MONOTONIC in a loop;
    a jump of more than --gap ms is time its CPU did not run it (the only
    runnable thread there, so: the guest scheduler ran something else, or
    the vCPU itself was stopped);
  * meanwhile this process writes 512 bytes and fdatasyncs them in a loop
    on another CPU (what a journaled LOCK waits for), and reports the
    slow ones;
  * each phase --secs long: fdatasync alone, then with the spinner.

Stalls of the spinner that repeat at a fixed period (here 100 ms, 5-10 ms
each) and line up with the slow fdatasyncs are the host's doing; while
they last, any group's answer that waits for the disk or a CPU waits too.
Run under the bench lock (flock -o /work/bench.lock), on an idle machine.

Usage: python3 bench/vm_stall_probe.py [--secs 3] [--gap 1.5] [--dir DIR]
"""

import argparse
import ast
import os
import sys
import tempfile
import time


def spin(secs, gap_ms, cpu, wfd):
    """Child: spin on @cpu for @secs, report clock jumps over @gap_ms."""
    os.sched_setaffinity(0, {cpu})
    t0 = last = time.monotonic()
    gaps = []
    while True:
        t = time.monotonic()
        if t - t0 >= secs:
            break
        if (t - last) * 1e3 > gap_ms:
            gaps.append((last, (t - last) * 1e3))   # CLOCK_MONOTONIC, s
        last = t
    os.write(wfd, repr(gaps).encode())
    os._exit(0)


def fsync_loop(path, secs, cpu):
    os.sched_setaffinity(0, {cpu})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.pwrite(fd, b'\0' * (1 << 20), 0)
    os.fsync(fd)
    t0 = time.monotonic()
    lat, off = [], 0
    while time.monotonic() - t0 < secs:
        a = time.monotonic()
        os.pwrite(fd, b'y' * 512, off)
        os.fdatasync(fd)
        e = time.monotonic()
        lat.append((a, (e - a) * 1e3))
        off = (off + 512) % (1 << 20)
    os.close(fd)
    return lat


def summary(name, lat, gaps, gap_ms):
    # times as seconds after the first fdatasync, for both lists
    t0 = lat[0][0]
    lat = [(t - t0, v) for t, v in lat]
    gaps = None if gaps is None else [(t - t0, v) for t, v in gaps]
    ms = sorted(x[1] for x in lat)
    slow = [x for x in lat if x[1] > 2.5]
    print('%-22s fdatasync n=%d p50 %.2f p99 %.2f max %.2f ms; %d over 2.5 ms'
          % (name, len(ms), ms[len(ms) // 2], ms[int(len(ms) * 0.99)], ms[-1], len(slow)))
    if slow:
        print('  slow fdatasyncs (s: ms):', ' '.join('%.3f:%.1f' % x for x in slow[:40]))
    if gaps is not None:
        print('  spinner stopped %d times over %.1f ms, %.1f ms in all'
              % (len(gaps), gap_ms, sum(g for _, g in gaps)))
        if gaps:
            print('  (s: ms):', ' '.join('%.3f:%.1f' % g for g in gaps[:40]))
            # A period of the host's shows as the same phase every time
            # (CLOCK_MONOTONIC runs with the host's clock).
            print('  CLOCK_MONOTONIC mod 100 ms at each stall, ms:',
                  ' '.join('%.0f' % (((t + t0) % 0.1) * 1e3) for t, _ in gaps[:40]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--secs', type=float, default=3.0)
    ap.add_argument('--gap', type=float, default=1.5, help='ms')
    ap.add_argument('--dir', default=None, help='where to fdatasync (default: a temp dir '
                    'under /var/tmp, the disk the bench uses)')
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit('vm_stall_probe: needs two CPUs')
    d = tempfile.mkdtemp(prefix='vm-stall-', dir=a.dir or '/var/tmp')
    path = os.path.join(d, 'f')
    try:
        summary('fdatasync alone', fsync_loop(path, a.secs, cpus[-1]), None, a.gap)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            spin(a.secs + 0.4, a.gap, cpus[0], w)
        os.close(w)
        time.sleep(0.2)
        lat = fsync_loop(path, a.secs, cpus[-1])
        buf = b''
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            buf += chunk
        os.waitpid(pid, 0)
        summary('with CPU %d spinning' % cpus[0], lat, ast.literal_eval(buf.decode() or '[]'), a.gap)
    finally:
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)


if __name__ == '__main__':
    main()
