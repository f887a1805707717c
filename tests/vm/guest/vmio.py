"""
vmio.py - the guest's I/O probe for the kernel-client tests: small
synchronous writes through the guest kernel's NFS client, one after the
other, each line "ok <start> <end>" (guest CLOCK_MONOTONIC, seconds) or
"err <errno name> <start> <end>", flushed, until SIGTERM.

  python3 /sgvm/vmio.py FILE [PAUSE_S]

Each write is 4 KiB at offset 0 followed by fsync (WRITE + COMMIT on the
wire), so every "ok" is an answer from the server.  The host reads the
lines afterwards: the longest wait of one write is how long a takeover
kept this client's I/O from completing (vm_util.io_stall).
"""
import errno
import os
import signal
import sys
import time


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    path = argv[1]
    pause = float(argv[2]) if len(argv) > 2 else 0.02
    stop = []
    signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
    buf = b'x' * 4096
    while not stop:
        t0 = time.monotonic()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.pwrite(fd, buf, 0)
                os.fsync(fd)
            finally:
                os.close(fd)
            sys.stdout.write('ok %.3f %.3f\n' % (t0, time.monotonic()))
        except OSError as e:
            sys.stdout.write('err %s %.3f %.3f\n' % (errno.errorcode.get(e.errno, e.errno), t0,
                                                    time.monotonic()))
        sys.stdout.flush()
        time.sleep(pause)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
