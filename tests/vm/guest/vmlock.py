"""
vmlock.py - the guest's lock tool for the kernel-client tests: POSIX
(fcntl) byte-range locks and BSD flock, through the guest kernel's NFS
client and lockd.

  python3 /sgvm/vmlock.py OP FILE START LEN TYPE [hold]
    OP    try    F_SETLK   prints "locked" (exit 0) or "denied ERRNO" (exit 1)
          wait   F_SETLKW  prints "locked" once granted (exit 0), or an error
          test   F_GETLK   prints "free" or "conflict type=T start=S len=L pid=P"
          flock  flock(LOCK_EX|LOCK_NB) / LOCK_SH; START and LEN ignored
          flockw flock() blocking
    LEN   0 = to end of file;  TYPE x (exclusive/write) or s (shared/read)
    hold  after "locked", keep the lock until SIGTERM/SIGINT (then
          "released", exit 0); lines are flushed, so a test follows them in
          the output file.
"""
import errno
import fcntl
import os
import signal
import struct
import sys
import time


def out(msg):
    sys.stdout.write('%s %.3f\n' % (msg, time.monotonic()))
    sys.stdout.flush()


def main(argv):
    if len(argv) < 6:
        sys.stderr.write(__doc__)
        return 2
    op, path, start, length, typ = argv[1], argv[2], int(argv[3], 0), int(argv[4], 0), argv[5]
    hold = len(argv) > 6 and argv[6] == 'hold'
    stop = []
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
    signal.signal(signal.SIGINT, lambda s, f: stop.append(s))
    ltype = fcntl.F_WRLCK if typ == 'x' else fcntl.F_RDLCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    # struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
    fl = struct.pack('hhqqi', ltype, 0, start, length, 0)
    try:
        if op == 'test':
            r = fcntl.fcntl(fd, fcntl.F_GETLK, fl)
            t, _, s, ln, pid = struct.unpack('hhqqi', r)
            if t == fcntl.F_UNLCK:
                out('free')
            else:
                out('conflict type=%s start=%d len=%d pid=%d'
                    % ('x' if t == fcntl.F_WRLCK else 's', s, ln, pid))
            return 0
        if op in ('try', 'wait'):
            fcntl.fcntl(fd, fcntl.F_SETLK if op == 'try' else fcntl.F_SETLKW, fl)
        elif op in ('flock', 'flockw'):
            how = fcntl.LOCK_EX if typ == 'x' else fcntl.LOCK_SH
            fcntl.flock(fd, how | (fcntl.LOCK_NB if op == 'flock' else 0))
        else:
            sys.stderr.write('vmlock: unknown op %s\n' % op)
            return 2
    except OSError as e:
        out('denied %s' % errno.errorcode.get(e.errno, e.errno))
        return 1
    out('locked')
    if hold:
        while not stop:
            time.sleep(0.2)
        out('released')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
