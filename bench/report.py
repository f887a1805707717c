#!/usr/bin/python3
"""
report.py - merge the raw figures of one bench/run-all.sh run, print the
table (sgnfs, Ganesha, ratio, target, met/missed), draw the PNG plots and
rewrite the generated part of bench/RESULTS.md.

  bench/report.py --lock LOCK.json [--fileservice FS.json] --out RUN.json
                  [--plots DIR] [--results-md bench/RESULTS.md]
                  [--load-start "x y z"] [--command CMD]
  bench/report.py --from RUN.json [--plots DIR] [--results-md FILE]

RUN.json holds everything: the machine, the load average at start and end,
every raw run and the medians, the table rows.  --from redoes the table,
plots and RESULTS.md from a RUN.json (no measuring).

RESULTS.md: only the text between the markers
  <!-- BEGIN GENERATED (bench/report.py) -->  and  <!-- END GENERATED -->
is replaced; the notes around it are kept.

Plots need matplotlib (python3-matplotlib); without it they are skipped with
a message, everything else still works.
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

BEGIN = '<!-- BEGIN GENERATED (bench/report.py) -->'
END = '<!-- END GENERATED -->'


def machine(load_start):
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    with open('/proc/loadavg') as f:
        load_end = ' '.join(f.read().split()[:3])
    mem = ''
    try:
        with open('/proc/meminfo') as f:
            mem = f.readline().split(':', 1)[1].strip()
    except OSError:
        pass

    def ver(pkg):
        try:
            return subprocess.run(['dpkg-query', '-W', '-f=${Version}', pkg],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  timeout=10).stdout.decode()
        except Exception:
            return ''
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(['git', '-C', src, 'describe', '--always', '--dirty'],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=10).stdout.decode().strip()
    except Exception:
        rev = ''
    return {'uname': ' '.join(platform.uname()), 'nproc': os.cpu_count(), 'cpu': cpu,
            'memory': mem, 'loadavg_start': load_start, 'loadavg_end': load_end,
            'sgnfs': rev, 'ganesha': ver('nfs-ganesha'), 'libnfs': ver('libnfs-utils'),
            'rpcbind': ver('rpcbind'), 'nfs-common': ver('nfs-common')}


# ---------------------------------------------------------------------------
# the table


def g(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(v, nd=None):
    if v is None:
        return 'n/a'
    if isinstance(v, bool):
        return 'yes' if v else 'no'
    if isinstance(v, str):
        return v
    if isinstance(v, int) and nd is None:
        return '{:,}'.format(v) if abs(v) >= 10000 else str(v)
    if nd is None:
        if abs(v) >= 100:
            nd = 0
        elif abs(v) >= 10:
            nd = 1
        else:
            nd = 2
    s = '%.*f' % (nd, v)
    if nd == 0 and abs(v) >= 10000:
        s = '{:,}'.format(int(round(v)))
    return s


def rows(run):
    """[(section, metric, sgnfs, ganesha, ratio, target, met)] ; met is
    True/False/None (no target)."""
    out = []
    L = run.get('lock', {}) or {}
    P = g(run, 'params', 'variants') or {}

    def var_label(v):
        p = P.get(v, {})
        return '%d hosts x %d owners, depth %d' % (p.get('hosts', 0), p.get('owners', 0),
                                                   p.get('depth', 0))

    class Rows(list):
        def append(self, r):
            s_, m_, a_, b_, q_, t_, ok_ = r
            # a target without a figure is unknown, not missed
            list.append(self, (s_, m_, a_, b_, q_, t_, None if a_ is None and ok_ is False
                               else ok_))
    out = Rows()
    for v, title in (('pipelined', 'pipelined'), ('single', 'single client, depth 1'),
                     ('only_lock', 'only-lock (each pair the client\'s only lock)'),
                     ('libnfs', 'pipelined, libnfs client, 1 connection')):
        m = g(L, v, 'median') or {}
        if v == 'libnfs' and not m:
            continue  # result files from before the row
        sg, ga = m.get('sgnfs', {}), m.get('ganesha', {})
        tgt = {'pipelined': 5.0, 'only_lock': 20.0, 'libnfs': 4.0}.get(v)
        r = m.get('ratio_pairs')
        out.append(('lock', 'LOCK+UNLOCK pairs/s, %s [%s]' % (title, var_label(v)),
                    sg.get('pairs_per_s'), ga.get('pairs_per_s'), r,
                    '>= %gx Ganesha' % tgt if tgt else '',
                    (r is not None and r >= tgt) if tgt else None))
        for k in ('p50_us', 'p99_us'):
            out.append(('lock', '  %s latency per RPC, us (lower is better)' % k[:3],
                        sg.get(k), ga.get(k), ratio(sg.get(k), ga.get(k)), '', None))
        nj = m.get('sgnfs_nojournal') or {}
        if nj:
            rnj = m.get('ratio_pairs_nojournal')
            tnj = 20.0 if v in ('pipelined', 'libnfs') else None
            out.append(('lock', '  the same with `journal = off` (journal on / off: %s)'
                        % fmt(m.get('journal_cost')), nj.get('pairs_per_s'),
                        ga.get('pairs_per_s'), rnj, '>= %gx Ganesha' % tnj if tnj else '',
                        (rnj is not None and rnj >= tnj) if tnj else None))
        # The libnfs client is one thread: its CPU over the measured window,
        # near 1.0, says the client and not the server bounds the row.
        if sg.get('client_cpu') is not None:
            out.append(('lock', '  the libnfs client\'s own CPU in the window, CPUs (near 1: '
                        'client-bound), journal on', sg.get('client_cpu'),
                        ga.get('client_cpu'), None, '', None))
        if nj.get('client_cpu') is not None:
            out.append(('lock', '  the same, `journal = off`', nj.get('client_cpu'),
                        ga.get('client_cpu'), None, '', None))
    m = g(L, 'pipelined', 'median') or {}
    out.append(('null', 'NLM NULL calls/s [%s]' % var_label('pipelined'),
                g(m, 'null_sgnfs', 'calls_per_s'), g(m, 'null_ganesha', 'calls_per_s'),
                ratio(g(m, 'null_sgnfs', 'calls_per_s'), g(m, 'null_ganesha', 'calls_per_s')),
                '', None))
    # The target is the issue's: journal off, so the ratio is the RPC and
    # lock path against the NULL ceiling, not the disk.  Older result files
    # have no journal-off ratio; their row stays empty rather than show the
    # journaled figure under the wrong label.
    r_nj = g(m, 'sgnfs_nojournal', 'rpcs_over_null')
    out.append(('null', 'lock path: lock RPCs/s / NULL calls/s, pipelined, `journal = off`',
                r_nj, g(m, 'ganesha', 'rpcs_over_null'), None, '>= 0.70',
                r_nj is not None and r_nj >= 0.70))
    # The polled pair (lockbench.polled_pair): the same ratio with both load
    # generators polling, so no reply wakes a sleeping client from inside
    # the server's send; and the servers' CPU per call, which is the
    # costs' ratio even where a client bounds a run's rate.
    # PL, not P: P is the variants' parameters, which var_label reads.
    PL = m.get('polled') or {}
    if PL:
        # sgnfsd's CPU in the polled runs: below about one CPU the server
        # waited for its client, that run's rate is the client's, and a
        # ratio over it says nothing about the ceiling: no verdict then.
        raw = g(L, 'pipelined', 'polled') or []
        busy = [(p['lock'].get('server_cpu'), p['null'].get('server_cpu')) for p in raw]
        busy = busy if busy and all(a is not None and b is not None for a, b in busy) else []
        null_cpu = median([b for _, b in busy]) if busy else None
        bound = null_cpu is not None and null_cpu >= 0.9
        rp = PL.get('rpcs_over_null')
        out.append(('null', '  the same, both load generators polling (`--poll-us %d`): the server '
                    'not charged for waking them%s' % (PL.get('poll_us', 0),
                                                       '' if bound else '; NULL client-bound, '
                                                       'so no verdict'),
                    rp, None, None, '>= 0.70',
                    (rp is not None and rp >= 0.70) if bound else None))
        if PL.get('cpu_null_over_lock') is not None:
            out.append(('null', '  server CPU per NULL call / per lock RPC, polling (%.2f / %.2f us)'
                        % (PL['null_server_us'], PL['lock_server_us']),
                        PL['cpu_null_over_lock'], None, None, '', None))
        if busy:
            out.append(('null', '  sgnfsd\'s CPU in the polled NULL run, CPUs (near 1: server-bound; '
                        'lower: the client bounds its rate; the lock run: %.2f)'
                        % median([a for a, _ in busy]), null_cpu, None, None, '', None))
    out.append(('null', '  the same with the journal on',
                g(m, 'sgnfs', 'rpcs_over_null'), g(m, 'ganesha', 'rpcs_over_null'), None,
                '', None))
    out.append(('null', '  (as pairs/s / NULL calls/s; a pair is 2 RPCs)',
                g(m, 'sgnfs', 'pairs_over_null'), g(m, 'ganesha', 'pairs_over_null'), None,
                '', None))
    m2 = g(L, 'only_lock', 'median') or {}
    out.append(('null', 'lock RPCs/s / NULL calls/s, only-lock [%s]' % var_label('only_lock'),
                g(m2, 'sgnfs', 'rpcs_over_null'), g(m2, 'ganesha', 'rpcs_over_null'), None,
                '', None))

    F = run.get('failover', {}) or {}
    for n in sorted(set(list((g(F, 'sgnfs', 'median') or {}).keys()) +
                        list((g(F, 'ganesha', 'median') or {}).keys())), key=int):
        sg = g(F, 'sgnfs', 'median', n) or {}
        ga = g(F, 'ganesha', 'median', n) or {}
        locks = sg.get('locks') or ga.get('locks')
        lab = '%s hosts x %d locks' % (n, (locks or 0) // int(n))
        out.append(('failover', 'kill -9 -> group online (Ganesha: restarted), s [%s]' % lab,
                    sg.get('online'), ga.get('online'), None, '', None))
        out.append(('failover', '  kill -> all clients notified, s',
                    sg.get('clients_notified_all'), ga.get('clients_notified_all'), None, '',
                    None))
        fin_sg, fin_ga = sg.get('all_reclaimed'), ga.get('all_reclaimed')
        tgt = n == '1000'
        if fin_sg is None and sg:
            fin_sg = 'not all (%s of %s)' % (fmt(sg.get('reclaimed_client_count')), fmt(locks))
        out.append(('failover', '  kill -> all locks reclaimed, s',
                    fin_sg, fin_ga if fin_ga is not None else
                    'not all (%s of %s)' % (fmt(ga.get('reclaimed_client_count')), fmt(locks))
                    if ga else None,
                    None, '<= 2 s' if tgt else '',
                    (isinstance(fin_sg, (int, float)) and fin_sg <= 2.0) if tgt else None))
        out.append(('failover', '  kill -> first new lock granted, s (grace %ss)' %
                    g(run, 'params', 'grace_s'),
                    sg.get('first_new_lock'), ga.get('first_new_lock'), None, '', None))
        out.append(('failover', '  kill -> grace ended, s (journal: when every lock is back)',
                    sg.get('grace_ended'), ga.get('grace_ended'), None, '', None))
        nj = g(F, 'sgnfs_nojournal', 'median', n) or {}
        if nj:
            out.append(('failover', '  with `journal = off`: kill -> all reclaimed / grace '
                        'ended / first new lock, s',
                        '%s / %s / %s' % (fmt(nj.get('all_reclaimed')), fmt(nj.get('grace_ended')),
                                          fmt(nj.get('first_new_lock'))), None, None, '', None))

    I = run.get('isolation', {}) or {}
    med = I.get('median', {}) or {}
    ga_iso = None
    for x in I.get('ganesha', []):
        if 'e2' in x:
            ga_iso = x['e2']
    for grp in ('g2', 'g3'):
        runs_g = [x[grp] for x in I.get('sgnfs', []) if grp in x]
        if not runs_g:
            continue
        # headline: median p99 during failover over median baseline p99 (a
        # single noisy baseline cannot swing it as it swings a single ratio)
        b_med = median([x.get('p99_base_us') for x in runs_g])
        f_med = median([x.get('p99_fo_us') for x in runs_g])
        r = ratio(f_med, b_med)
        ga_col = None
        if grp == 'g2' and ga_iso:
            ga_col = 'refuses all'
        out.append(('isolation', 'other group %s: p99 during failover / baseline (medians)' % grp,
                    r, ga_col, None, '<= 1.5x', r is not None and r <= 1.5))
        out.append(('isolation', '  %s p99 ratio of each run' % grp,
                    ', '.join(fmt(x.get('p99_ratio')) for x in runs_g), None, None, '', None))
        out.append(('isolation', '  %s p99 us, median: baseline -> during failover' % grp,
                    '%s -> %s' % (fmt(b_med), fmt(f_med)),
                    ('%s -> %s (answered: refusals)' % (fmt(ga_iso.get('p99_base_us')),
                                                      fmt(ga_iso.get('p99_fo_us')))
                     if ga_iso and grp == 'g2' else None), None, '', None))
        out.append(('isolation', '  %s p50 us, median: baseline -> during failover' % grp,
                    '%s -> %s' % (fmt(median([x.get('p50_base_us') for x in runs_g])),
                                  fmt(median([x.get('p50_fo_us') for x in runs_g]))),
                    None, None, '', None))
        out.append(('isolation', '  %s max us, worst run: baseline -> during failover' % grp,
                    '%s -> %s' % (fmt(max([x.get('max_base_us') or 0 for x in runs_g])),
                                  fmt(max([x.get('max_fo_us') or 0 for x in runs_g]))),
                    None, None, '', None))
        rf = sum(x.get('refused_fo') or 0 for x in runs_g)
        out.append(('isolation', '  %s refusals during failover (all runs)' % grp,
                    rf, g(ga_iso, 'refused_fo') if grp == 'g2' else None, None, '0', rf == 0))
    if ga_iso:
        out.append(('isolation', 'a group / export that did not move: kill -> first new lock, s',
                    'never refused', ga_iso.get('other_export_first_new_lock'), None, '',
                    None))
        out.append(('isolation', '  its LOCK+UNLOCK pairs/s: baseline -> after kill',
                    None, '%s -> %s' % (fmt(ga_iso.get('pairs_per_s_base')),
                                        fmt(ga_iso.get('pairs_per_s_fo'))), None, '', None))

    S = run.get('scale', {}) or {}
    srv = {e['locks']: e for e in S.get('server', [])}
    eng = {e['locks']: e for e in (g(S, 'engine', 'levels') or [])}
    for k in sorted(set(srv) | set(eng)):
        out.append(('scale', 'lock RPCs/s with %s locks held on the file (server | engine ops/s)'
                    % '{:,}'.format(k), g(srv, k, 'rpcs_per_s'), None, None,
                    'engine %s' % fmt(g(eng, k, 'ops_per_s')), None))
    if srv:
        lo, hi = min(srv), max(srv)
        f = ratio(g(srv, lo, 'rpcs_per_s'), g(srv, hi, 'rpcs_per_s'))
        out.append(('scale', 'server: ops/s at %s locks / at %s locks (fall)' %
                    ('{:,}'.format(lo), '{:,}'.format(hi)), f, None, None, '<= 2x',
                    f is not None and f <= 2.0))
    if eng:
        lo, hi = min(eng), max(eng)
        f = ratio(g(eng, lo, 'ops_per_s'), g(eng, hi, 'ops_per_s'))
        out.append(('scale', 'engine alone (bench/lk_bench, random gaps): fall %s -> %s locks' %
                    ('{:,}'.format(lo), '{:,}'.format(hi)), f, None, None, '(for reference)',
                    None))
    M = S.get('memory', {}) or {}
    if M:
        b = M.get('bytes_per_lock')
        # issue 16's target (the earlier table said <= 256, the first one's)
        out.append(('scale', 'sgnfsd VmRSS bytes per held lock, %s locks' %
                    '{:,}'.format(M.get('locks_held', 0)), b, None, None, '<= 200',
                    b is not None and b <= 200))
        out.append(('scale', '  same, counting the %s hosts\' connections and state' %
                    M.get('hosts'), M.get('bytes_per_lock_total'), None, None, '', None))
        kinds = M.get('bytes_per_lock_by_kind') or {}
        if kinds:
            out.append(('scale', '  of which: lock nodes\' pages | heap | other threads\' '
                        'arenas', '%s | %s | %s' % (fmt(kinds.get('anon_64k')),
                                                    fmt(kinds.get('heap')),
                                                    fmt(kinds.get('anon_big'))),
                        None, None, '', None))
        if M.get('peak_bytes_per_lock') is not None:
            out.append(('scale', '  peak (VmHWM) per held lock: journal folds under way, '
                        'requests in flight', M.get('peak_bytes_per_lock'), None, None, '',
                        None))
    em = g(S, 'engine', 'memory')
    if em:
        out.append(('scale', '  engine: bytes requested | malloc\'d per lock',
                    '%s | %s' % (fmt(em.get('bytes_per_lock')), fmt(em.get('malloc_bytes_per_lock'))),
                    None, None, '', None))

    FS = run.get('fileservice', {}) or {}
    P = FS.get('params', {}) or {}
    seq = 'depth %s x %s KiB, UNSTABLE + COMMIT' % (P.get('seq_depth', '?'), P.get('seq_bs_kib', '?'))
    fb = P.get('file_bytes') or (1 << 30)
    size = '1 GiB' if fb == 1 << 30 else '%d MiB' % (fb >> 20)
    # (key, label, target ratio): the targets; the nfs-cp rows keep
    # one synchronous call in flight, so they measure the client's round
    # trip more than either server and carry no target.
    for k, lab, tgt in (('getattr_d1_ops', 'GETATTR calls/s, depth 1 (median of %s runs)' %
                         P.get('getattr_d1_repeats', 1), 1.5),
                        ('getattr_d32_ops', 'GETATTR calls/s, depth 32', 2.0),
                        ('seq_write_MBps', '%s sequential write (seqio_bench, %s), MB/s' % (size, seq), 1.5),
                        ('seq_read_MBps', '%s sequential read (seqio_bench, same depth), MB/s' % size, 1.5),
                        ('write_MBps', '%s write, nfs-cp (one call in flight: client-bound), MB/s' % size, None),
                        ('read_MBps', '%s read, nfs-cp (one call in flight: client-bound), MB/s' % size, None)):
        a, b = g(FS, 'sgnfs', k), g(FS, 'ganesha', k)
        if a is None and b is None:
            continue
        r = ratio(a, b)
        out.append(('file', lab, a, b, r, '>= %gx Ganesha' % tgt if tgt else '',
                    None if tgt is None or r is None else r >= tgt))
    return out


def table_text(rs):
    w = max(len(r[1]) for r in rs) if rs else 40
    lines = ['%-*s %14s %14s %9s  %-16s %s' % (w, 'metric', 'sgnfs', 'ganesha', 'ratio',
                                               'target', 'met')]
    sec = None
    for s, m, a, b, r, t, ok in rs:
        if s != sec:
            lines.append('--- %s' % s)
            sec = s
        lines.append('%-*s %14s %14s %9s  %-16s %s' % (
            w, m, fmt(a), fmt(b), fmt(r) + ('x' if r is not None else ''), t,
            '' if ok is None else ('MET' if ok else 'MISSED')))
    return '\n'.join(lines)


def table_md(rs):
    lines = ['| metric | sgnfs | Ganesha 4.3 | sgnfs/Ganesha | target | |',
             '|---|---:|---:|---:|---|---|']
    sec = None
    for s, m, a, b, r, t, ok in rs:
        if s != sec:
            lines.append('| **%s** | | | | | |' % s)
            sec = s
        lines.append('| %s | %s | %s | %s | %s | %s |' % (
            m.strip().replace('|', '\\|'), fmt(a).replace('|', '\\|'), fmt(b),
            fmt(r) + ('x' if r is not None else ''), t.replace('|', '\\|'),
            '' if ok is None else ('**met**' if ok else '**MISSED**')))
    return '\n'.join(lines)


# ---------------------------------------------------------------------------
# where sgnfsd's CPU went: the perf summaries (bench/perfprof.py)


def profile_rows(run):
    """[(row label, summary)] of every profiled row, in the table's order;
    [] for a raw file from before the profiles."""
    out = []
    L = run.get('lock', {}) or {}
    for v, title in (('pipelined', 'pipelined'), ('single', 'single'),
                     ('only_lock', 'only-lock'), ('libnfs', 'libnfs client')):
        pr = g(L, v, 'profile') or {}
        for srv, what in (('sgnfs', 'LOCK+UNLOCK, journal on'),
                          ('sgnfs_nojournal', 'LOCK+UNLOCK, `journal = off`'),
                          ('null_sgnfs', 'NLM NULL')):
            if pr.get(srv):
                out.append(('%s, %s' % (title, what), pr[srv]))
    pr = g(run, 'fileservice', 'sgnfs', 'profile') or {}
    for k, lab in (('getattr_d1', 'GETATTR, depth 1'), ('getattr_d32', 'GETATTR, depth 32'),
                   ('seq', 'sequential write + read (seqio_bench, one run)')):
        if pr.get(k):
            out.append((lab, pr[k]))
    return out


def short_dso(d):
    """'[kernel.kallsyms]' -> 'k', 'libuv.so.1.0.0' -> 'libuv'."""
    if d == '[kernel.kallsyms]':
        return 'k'
    return re.sub(r'\.so(\.[0-9.]*)?$', '', d)


def short_sym(sym):
    # an unresolved address (a stripped library's static function): its
    # offset without perf's sixteen digits of zero padding
    m = re.match(r'^0x0*([0-9a-f]+)$', sym)
    return '0x' + m.group(1) if m else sym


def top_text(sm, n, md):
    q = '`' if md else ''
    return ', '.join('%.1f %s%s%s (%s)' % (pct, q, short_sym(sym), q, short_dso(dso))
                     for pct, dso, sym in (sm.get('top') or [])[:n])


def profile_md(prs):
    lines = ['### Where sgnfsd\'s CPU went (perf, one unmeasured run per row)', '',
             '`perf record -F 999 -g` of sgnfsd during one extra run of each row, after the '
             'measured ones (the sampling slows the daemon, so that run counts in no figure); '
             'self time, in % of the run\'s samples, of the symbols with the most; (k): the '
             'kernel.', '',
             '| row | samples | kernel / user | top symbols, % of samples (dso) |',
             '|---|---:|---:|---|']
    irq = False
    for lab, sm in prs:
        lines.append('| %s | %s | %.0f%% / %.0f%% | %s |' % (
            lab, fmt(sm.get('samples')), sm.get('kernel_pct') or 0, sm.get('user_pct') or 0,
            top_text(sm, 8, True).replace('|', '\\|')))
        irq = irq or any(t[2].endswith('_irq_enable') for t in sm.get('top') or [])
    if irq:
        # a paravirtual guest: the sampling timer's interrupt is held while
        # interrupts are off and taken where they are enabled again
        lines += ['', '`*_irq_enable` (k): in this VM perf samples on a timer interrupt, '
                  'which waits while the kernel runs with interrupts off and is taken where '
                  'it turns them back on; the kernel time spent with them off lands there. It '
                  'counts in the kernel share, not under the symbols that spent it.']
    return '\n'.join(lines)


def profile_text(prs):
    lines = ['--- where sgnfsd\'s CPU went (perf, one unmeasured run per row; '
             'self %, (k) = kernel)']
    for lab, sm in prs:
        lines.append('%s: %s samples, kernel %.0f%% user %.0f%%: %s' % (
            lab.replace('`', ''), fmt(sm.get('samples')), sm.get('kernel_pct') or 0,
            sm.get('user_pct') or 0, top_text(sm, 5, False)))
    return '\n'.join(lines)


# ---------------------------------------------------------------------------
# plots


def plots(run, d):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except Exception as e:
        print('report.py: no plots (%s); apt-get install python3-matplotlib' % e,
              file=sys.stderr)
        return []
    os.makedirs(d, exist_ok=True)
    made = []
    C = {'sgnfs': '#1f77b4', 'ganesha': '#d62728'}

    def save(fig, name):
        p = os.path.join(d, name)
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)

    L = run.get('lock') or {}
    vs = [v for v in ('pipelined', 'single', 'only_lock', 'libnfs') if g(L, v, 'median')]
    if vs:
        fig, ax = plt.subplots(1, 2, figsize=(11, 4))
        x = range(len(vs))
        for i, srv in enumerate(('sgnfs', 'ganesha')):
            ax[0].bar([j + i * 0.27 for j in x], [g(L, v, 'median', srv, 'pairs_per_s') or 0
                                                  for v in vs], 0.27, label=srv + ' lock pairs/s',
                      color=C[srv])
        ax[0].bar([j + 0.54 for j in x], [g(L, v, 'median', 'null_sgnfs', 'calls_per_s') or 0
                                          for v in vs], 0.27, label='sgnfs NULL calls/s',
                  color='#9ecae1')
        ax[0].set_xticks([j + 0.27 for j in x])
        ax[0].set_xticklabels(vs)
        ax[0].set_yscale('log')
        ax[0].set_ylabel('per second (log)')
        ax[0].set_title('LOCK+UNLOCK pairs/s (median)')
        ax[0].legend(fontsize=8)
        for i, srv in enumerate(('sgnfs', 'ganesha')):
            ax[1].bar([j + i * 0.2 for j in x], [g(L, v, 'median', srv, 'p50_us') or 0 for v in vs],
                      0.2, color=C[srv], label=srv + ' p50')
            ax[1].bar([j + 0.4 + i * 0.2 for j in x],
                      [g(L, v, 'median', srv, 'p99_us') or 0 for v in vs], 0.2, color=C[srv],
                      alpha=0.5, hatch='//', label=srv + ' p99')
        ax[1].set_xticks([j + 0.3 for j in x])
        ax[1].set_xticklabels(vs)
        ax[1].set_yscale('log')
        ax[1].set_ylabel('us per RPC (log)')
        ax[1].set_title('latency (median of runs)')
        ax[1].legend(fontsize=8)
        save(fig, 'lock.png')

    F = run.get('failover') or {}
    keys = [('online', 'online'), ('clients_notified_all', 'all notified'),
            ('all_reclaimed', 'all reclaimed'), ('first_new_lock', 'first new lock')]
    rowsf = []
    for srv in ('sgnfs', 'ganesha'):
        for n, m in sorted((g(F, srv, 'median') or {}).items(), key=lambda kv: int(kv[0])):
            rowsf.append(('%s %s hosts' % (srv, n), srv, m))
    if rowsf:
        fig, ax = plt.subplots(figsize=(10, 0.6 * len(rowsf) + 1.5))
        marks = ['o', 's', 'D', '*']
        for i, (lab, srv, m) in enumerate(rowsf):
            last = max([m.get(k) or 0 for k, _ in keys] + [0.01])
            ax.plot([0, last], [i, i], color=C[srv], lw=1)
            for (k, kl), mk in zip(keys, marks):
                if m.get(k) is not None:
                    ax.plot(max(m[k], 0.005), i, mk, color=C[srv], ms=8,
                            label=kl if i == 0 else None)
                elif k == 'all_reclaimed' and m.get('reclaimed_last') is not None:
                    # not every lock came back: where the last one did
                    ax.plot(m['reclaimed_last'], i, mk, color=C[srv], ms=8, mfc='none')
                    ax.annotate('%s of %s reclaimed' % (m.get('reclaimed_client_count'),
                                                        m.get('locks')),
                                (m['reclaimed_last'], i), textcoords='offset points',
                                xytext=(0, 8), fontsize=7, ha='center')
        ax.set_yticks(range(len(rowsf)))
        ax.set_yticklabels([r[0] for r in rowsf])
        ax.set_xscale('log')
        ax.set_xlabel('seconds after kill -9 (log)')
        ax.set_title('failover milestones (median); grace %ss' % g(run, 'params', 'grace_s'))
        ax.legend(fontsize=8, loc='lower right')
        ax.axvline(2.0, color='gray', ls=':', lw=1)
        save(fig, 'failover.png')

    I = run.get('isolation') or {}
    bars = []
    for x in I.get('sgnfs', []):
        for grp in ('g2', 'g3'):
            if grp in x:
                bars.append(('sgnfs %s' % grp, 'sgnfs', x[grp]))
    for x in I.get('ganesha', []):
        if 'e2' in x:
            bars.append(('ganesha e2', 'ganesha', x['e2']))
    if bars:
        fig, ax = plt.subplots(figsize=(9, 4))
        for i, (lab, srv, m) in enumerate(bars):
            ax.bar(i - 0.2, m.get('p99_base_us') or 0, 0.4, color=C[srv], alpha=0.5,
                   label='baseline p99' if i == 0 else None)
            ax.bar(i + 0.2, m.get('p99_fo_us') or 0, 0.4, color=C[srv],
                   label='during failover p99' if i == 0 else None)
            ax.text(i + 0.2, (m.get('p99_fo_us') or 1), 'refused %s' % m.get('refused_fo'),
                    ha='center', va='bottom', fontsize=7)
        ax.set_xticks(range(len(bars)))
        ax.set_xticklabels([b[0] for b in bars], fontsize=8)
        ax.set_yscale('log')
        ax.set_ylabel('p99 us per RPC (log)')
        ax.set_title('other groups while one fails over (each run)')
        ax.legend(fontsize=8)
        save(fig, 'isolation.png')

    S = run.get('scale') or {}
    srv = S.get('server') or []
    eng = g(S, 'engine', 'levels') or []
    if srv or eng:
        fig, ax = plt.subplots(figsize=(8, 4))
        if srv:
            b0 = srv[0]['rpcs_per_s']
            ax.plot([e['locks'] for e in srv], [e['rpcs_per_s'] / b0 for e in srv], 'o-',
                    color=C['sgnfs'], label='sgnfsd: lock RPCs/s (bench-lock)')
        if eng:
            b0 = eng[0]['ops_per_s']
            ax.plot([e['locks'] for e in eng], [e['ops_per_s'] / b0 for e in eng], 's--',
                    color='#2ca02c', label='engine alone: ops/s (lk_bench)')
        ax.axhline(0.5, color='gray', ls=':', lw=1, label='target floor (2x fall)')
        ax.set_xscale('log')
        ax.set_ylim(0, 1.3)
        ax.set_xlabel('locks held on the file (log)')
        ax.set_ylabel('relative to 10 locks')
        ax.set_title('lock operations as one file fills')
        ax.legend(fontsize=8)
        save(fig, 'scale.png')

    FS = run.get('fileservice') or {}
    ks = [k for k in ('getattr_d1_ops', 'getattr_d32_ops', 'seq_write_MBps', 'seq_read_MBps',
                      'write_MBps', 'read_MBps')
          if g(FS, 'sgnfs', k) is not None or g(FS, 'ganesha', k) is not None]
    if ks:
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
        for j, grp in enumerate((ks[:2], ks[2:])):
            for i, srvn in enumerate(('sgnfs', 'ganesha')):
                ax[j].bar([x + i * 0.4 for x in range(len(grp))],
                          [g(FS, srvn, k) or 0 for k in grp], 0.4, color=C[srvn], label=srvn)
            ax[j].set_xticks([x + 0.2 for x in range(len(grp))])
            ax[j].set_xticklabels(grp, fontsize=8)
            ax[j].legend(fontsize=8)
        ax[0].set_title('GETATTR calls/s')
        ax[1].set_title('1 GiB copies (seqio_bench, nfs-cp), MB/s')
        save(fig, 'fileservice.png')
    return made


# ---------------------------------------------------------------------------


def generated_md(run, rs, plot_paths, md_dir):
    M = run.get('machine', {})
    P = run.get('params', {})
    lines = [BEGIN, '',
             '## Latest run: %s' % run.get('date', ''), '',
             '- command: `%s` (%s build)' % (run.get('command', 'bench/run-all.sh'),
                                            run.get('build_type') or 'unknown'),
             '- machine: `%s`' % M.get('uname', ''),
             '- %s CPUs (`nproc`), %s, %s RAM' % (M.get('nproc'), M.get('cpu'), M.get('memory')),
             '- load average: %s at start, %s at end (other engineers\' tests share the '
             'machine; client and server share the same %s cores)' %
             (M.get('loadavg_start'), M.get('loadavg_end'), M.get('nproc')),
             '- versions: sgnfs `%s`, nfs-ganesha %s, libnfs %s, rpcbind %s, nfs-common '
             '(rpc.statd, sm-notify) %s' % (M.get('sgnfs'), M.get('ganesha'), M.get('libnfs'),
                                            M.get('rpcbind'), M.get('nfs-common')),
             '- settings: %s s per throughput run, %s repeats (medians; ratios are medians of '
             'per-repeat ratios), failover repeats %s, isolation repeats %s, grace %s s on '
             'both servers, Ganesha RPC_Ioq_ThrdMax %s' % (
                 P.get('seconds'), P.get('repeat'), P.get('fo_repeat'), P.get('iso_repeat'),
                 P.get('grace_s'), P.get('ganesha_rpc_ioq_thrdmax')),
             '- sgnfs settings beyond the defaults (`BENCH_SG_EXTRA`, every sgnfs row): %s'
             % ('; '.join('`%s`' % x for x in P.get('sg_extra') or []) or 'none'),
             '- raw figures: `%s`' % run.get('json_path', ''), '']
    errs = dict(run.get('errors', {}) or {})
    if errs:
        lines += ['**Sections that failed:** ' + '; '.join('%s: %s' % kv for kv in errs.items()),
                  '']
    lines += [table_md(rs), '']
    prs = profile_rows(run)
    if prs:
        lines += [profile_md(prs), '']
    if plot_paths:
        lines.append('Plots: ' + ', '.join('[%s](%s)' % (os.path.basename(p),
                                                         os.path.relpath(p, md_dir))
                                           for p in plot_paths))
        lines.append('')
        for p in plot_paths:
            lines.append('![%s](%s)' % (os.path.basename(p), os.path.relpath(p, md_dir)))
        lines.append('')
    lines.append(END)
    return '\n'.join(lines)


def update_md(path, block):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = ''
    if BEGIN in text and END in text:
        pre = text[:text.index(BEGIN)]
        post = text[text.index(END) + len(END):]
        text = pre + block + post
    else:
        text = (text.rstrip() + '\n\n' if text else '# Benchmark results\n\n') + block + '\n'
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lock')
    ap.add_argument('--fileservice')
    ap.add_argument('--out')
    ap.add_argument('--from', dest='from_')
    ap.add_argument('--plots')
    ap.add_argument('--results-md')
    ap.add_argument('--load-start', default='')
    ap.add_argument('--command', default='bench/run-all.sh')
    ap.add_argument('--build-type', default='')
    a = ap.parse_args()

    if a.from_:
        with open(a.from_) as f:
            run = json.load(f)
        out = a.from_
    else:
        if not a.out:
            ap.error('--out is needed')
        run = {}
        if a.lock and os.path.exists(a.lock):
            with open(a.lock) as f:
                run.update(json.load(f))
        if a.fileservice and os.path.exists(a.fileservice):
            with open(a.fileservice) as f:
                run['fileservice'] = json.load(f)
                run['fileservice']['json_path'] = a.fileservice
        run['date'] = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
        run['machine'] = machine(a.load_start or g(run, 'loadavg', 'start') or '')
        run['command'] = a.command
        run['build_type'] = a.build_type
        out = a.out
    run['json_path'] = os.path.relpath(out, os.path.dirname(os.path.abspath(a.results_md))
                                       if a.results_md else os.getcwd())
    rs = rows(run)
    run['table'] = [dict(zip(('section', 'metric', 'sgnfs', 'ganesha', 'ratio', 'target', 'met'),
                             r)) for r in rs]
    if not a.from_:
        tmp = out + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(run, f, indent=1, sort_keys=True)
        os.replace(tmp, out)
    print(table_text(rs))
    prs = profile_rows(run)
    if prs:
        print(profile_text(prs))
    M = run.get('machine', {})
    print('(load average %s at start, %s at end; %s CPUs; raw figures %s)' %
          (M.get('loadavg_start'), M.get('loadavg_end'), M.get('nproc'), out))
    made = plots(run, a.plots) if a.plots else []
    for p in made:
        print('plot: %s' % p)
    if a.results_md:
        update_md(a.results_md, generated_md(run, rs, made,
                                             os.path.dirname(os.path.abspath(a.results_md))))
        print('updated %s' % a.results_md)
    return 0


if __name__ == '__main__':
    sys.exit(main())
