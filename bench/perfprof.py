#!/usr/bin/python3
"""
perfprof.py - where a server's CPU went during one benchmark run: `perf
record` of the running daemon, summed into a small dict the raw figures
keep and bench/report.py prints under the table.

The profiled run is always an extra one, never a measured one: sampling
with call chains costs the daemon time, so its figures would be low.

    prof = perfprof.start(pid, '/var/tmp/x.data', log)   # None: not profiling
    ...                                                  # the extra run
    summary = perfprof.stop(prof, log)                   # None on any failure

    perfprof.py summarize FILE      (for a shell script that ran perf record
                                     itself: the summary as one JSON line, or
                                     nothing and exit 1)

The summary: {'samples': N, 'kernel_pct': x, 'user_pct': y, 'top': [[pct,
dso, symbol], ...]} with the 10 symbols of most self time (no children: a
symbol's own samples) of at least 1%.  kernel_pct counts the samples perf
marks [k] (the kernel and its modules, e.g. ext4, which are dsos of their
own), user_pct the rest.

BENCH_PROFILE: 1 (profile), 0 (do not); default 1 when `perf` is in PATH.
A perf that fails is logged and leaves no summary; it never fails a bench.

Python 3 standard library only.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

FREQ = 999      # Hz: not a multiple of the kernel's tick, so not in step with it
TOP = 10
MIN_PCT = 1.0


def enabled():
    v = os.environ.get('BENCH_PROFILE', '')
    if v == '0':
        return False
    return shutil.which('perf') is not None


def start(pid, path, log=None):
    """`perf record -g` of every thread of @pid into @path until stop();
    None when profiling is off or perf cannot start."""
    if not enabled():
        return None
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    # -p without a command: perf samples until SIGINT, so the window is
    # exactly the run's, whatever it takes (a fixed `sleep` would cut a
    # slow run or sample an idle daemon after a fast one).
    cmd = ['perf', 'record', '-F', str(FREQ), '-g', '-p', str(pid), '-o', path]
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    except OSError as e:
        if log:
            log('perf record of pid %d: %s (no profile)' % (pid, e))
        return None
    # perf takes 0.2-0.5 s (more on a loaded machine) to open its events: a
    # run started at once would go partly or, when short, wholly unsampled.
    # Its perf_event descriptors are the sign it is attached; the events are
    # enabled just after, once the target's maps are written.
    deadline = time.time() + 15
    while time.time() < deadline and p.poll() is None and not attached(p.pid):
        time.sleep(0.02)
    time.sleep(0.2)
    return p, path, pid


def attached(ppid):
    """Whether process @ppid holds a perf_event descriptor."""
    try:
        for fd in os.listdir('/proc/%d/fd' % ppid):
            try:
                if 'perf_event' in os.readlink('/proc/%d/fd/%s' % (ppid, fd)):
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def stop(prof, log=None):
    """Stop the recording and summarise it; None (logged) if anything failed."""
    if prof is None:
        return None
    p, path, pid = prof
    out = ''
    try:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        try:
            out = p.communicate(timeout=60)[0].decode('utf-8', 'replace')
        except subprocess.TimeoutExpired:
            p.kill()
            out = p.communicate()[0].decode('utf-8', 'replace')
        # perf record exits 130 after SIGINT (or 0, by version); anything
        # else, e.g. the pid gone before it attached, is a failure
        if p.returncode not in (0, 130, -signal.SIGINT):
            raise RuntimeError('perf record exit %s: %s' % (p.returncode, out.strip()[-300:]))
        return summarize(path)
    except Exception as e:
        if log:
            log('perf profile of pid %d failed: %s (no profile)' % (pid, e))
        return None


def summarize(path):
    """The summary of perf data file @path (see the module's comment);
    raises RuntimeError when perf report fails or finds no samples."""
    # -n: sample counts, summed here (the header's "Samples: 4K" is
    # rounded); -t TAB: fields unpadded by alignment, so a symbol with
    # spaces still parses; -g none: no call chains in the text.
    cmd = ['perf', 'report', '-i', path, '--stdio', '--no-children', '--sort', 'dso,sym',
           '-n', '-g', 'none', '-t', '\t']
    try:
        cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError('perf report: %s' % e)
    if cp.returncode != 0:
        raise RuntimeError('perf report exit %d: %s' %
                           (cp.returncode, cp.stderr.decode('utf-8', 'replace').strip()[-300:]))
    rows = []       # [samples, dso, symbol, kernel?]
    for line in cp.stdout.decode('utf-8', 'replace').splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        f = [x.strip() for x in line.split('\t')]
        if len(f) < 4 or not f[1].isdigit():
            continue
        sym = '\t'.join(f[3:]).strip()
        kern = sym.startswith('[k]')
        if sym[:1] == '[' and sym[2:4] == '] ':
            sym = sym[4:]
        rows.append([int(f[1]), f[2], sym, kern])
    total = sum(r[0] for r in rows)
    if not total:
        raise RuntimeError('no samples in %s' % path)
    kern = sum(r[0] for r in rows if r[3])
    rows.sort(key=lambda r: -r[0])
    top = [[round(100.0 * n / total, 1), dso, sym] for n, dso, sym, _ in rows[:TOP]
           if 100.0 * n / total >= MIN_PCT]
    return {'samples': total, 'kernel_pct': round(100.0 * kern / total, 1),
            'user_pct': round(100.0 * (total - kern) / total, 1), 'top': top}


def main(argv):
    if len(argv) == 3 and argv[1] == 'summarize':
        try:
            print(json.dumps(summarize(argv[2]), sort_keys=True))
        except RuntimeError as e:
            print('perfprof.py: %s' % e, file=sys.stderr)
            return 1
        return 0
    print('usage: perfprof.py summarize FILE', file=sys.stderr)
    return 64


if __name__ == '__main__':
    sys.exit(main(sys.argv))
