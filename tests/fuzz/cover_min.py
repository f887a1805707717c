#!/usr/bin/env python3
"""
cover_min.py [--branches] [--max N] COVBIN OUTDIR INPUT... - shrink a fuzz corpus to a few files
that keep its line and branch coverage, so the saved corpus stays small
(libFuzzer's -merge=1 keeps every file with a unique counter feature, which
is several hundred here).

COVBIN is fuzz_replay_cov from `COVERAGE=1 tests/fuzz/build.sh DIR`.  Each
input (files, or directories of files) is run alone; its covered lines
(with --branches also its taken branch directions: every "this field is
missing" exit of every decoder, several hundred files) are its features; a greedy set
cover picks inputs (first for the hand-written code, then for the
generated decoders), most new features first, smaller file on a tie, and
stops after N files if --max is given (the last picks add one feature each:
mostly the "return FALSE" line after one field of one decoder).  The
chosen files are copied to OUTDIR named by their SHA-1, like libFuzzer's.
Run it on a libFuzzer-merged corpus: it costs one replay per input.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


def features(covbin, path, tmp, branches):
    raw = os.path.join(tmp, 'f.profraw')
    prof = os.path.join(tmp, 'f.profdata')
    env = dict(os.environ, LLVM_PROFILE_FILE=raw)
    subprocess.run([covbin, path], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    subprocess.run(['llvm-profdata', 'merge', '-o', prof, raw], check=True)
    out = subprocess.run(['llvm-cov', 'export', '-format=lcov', '-instr-profile=' + prof,
                          covbin], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         check=True).stdout.decode()
    feats, sf = set(), ''
    for line in out.splitlines():
        if line.startswith('SF:'):
            sf = line[3:]
            if '/replay.c' in sf:      # the driver itself is not the target
                sf = ''
        elif not sf:
            continue
        elif line.startswith('DA:'):
            ln, n = line[3:].split(',')[:2]
            if n != '0':
                feats.add((sf, 'L', ln))
        elif branches and line.startswith('BRDA:'):
            ln, blk, br, n = line[5:].split(',')
            if n not in ('0', '-'):
                feats.add((sf, 'B', ln, blk, br))
    return feats


def main():
    args = sys.argv[1:]
    branches = bool(args) and args[0] == '--branches'
    if branches:
        args = args[1:]
    limit = None
    if len(args) > 1 and args[0] == '--max':
        limit, args = int(args[1]), args[2:]
    if len(args) < 3:
        sys.exit(__doc__)
    covbin, outdir, inputs = os.path.abspath(args[0]), args[1], args[2:]
    files = []
    for p in inputs:
        if os.path.isdir(p):
            files += [os.path.join(p, f) for f in sorted(os.listdir(p))
                      if os.path.isfile(os.path.join(p, f))]
        else:
            files.append(p)
    tmp = tempfile.mkdtemp(prefix='cover-min-')
    try:
        cov = {}
        for i, f in enumerate(files):
            cov[f] = features(covbin, f, tmp, branches)
            if i % 100 == 99:
                print('%d/%d inputs measured' % (i + 1, len(files)), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = set().union(*cov.values()) if cov else set()
    have, chosen = set(), []
    # Hand-written code first (src/: handles, names, the NLM widening),
    # then the generated decoders.
    for wanted in (lambda ft: '/gen/' not in ft[0], lambda ft: True):
        while len(chosen) != limit:
            best = max(files, key=lambda f: (len({x for x in cov[f] - have if wanted(x)}),
                                             -os.path.getsize(f)), default=None)
            if best is None or not {x for x in cov[best] - have if wanted(x)}:
                break
            have |= cov[best]
            chosen.append(best)
    os.makedirs(outdir, exist_ok=True)
    for f in chosen:
        with open(f, 'rb') as fh:
            data = fh.read()
        with open(os.path.join(outdir, hashlib.sha1(data).hexdigest()), 'wb') as fh:
            fh.write(data)
    print('%d of %d inputs keep %d of %d %s' % (len(chosen), len(files), len(have), len(total),
                                              'line/branch features' if branches else 'lines'))


if __name__ == '__main__':
    main()
