"""
agent.py - runs inside the test guest (started by /init from the read-only
9p share), driven by tests/vm/vm_util.py over the virtio-serial port
"sgvm.agent".  Python standard library (python3-minimal) only.

Line protocol, ASCII, one message per line:
  host -> guest   RUN <id> <timeout s> <base64 of a sh command>
  guest -> host   HELLO <uptime s>                   once, when started
                  DONE <id> <exit status> <base64 of stdout+stderr>
Commands run concurrently (one thread each: a blocking lock and the
command that releases it can both be in flight); exit status 124 means
the command was killed at its timeout, 125 that it could not start.
"""
import base64
import os
import subprocess
import sys
import threading


def port_path():
    base = '/sys/class/virtio-ports'
    for p in sorted(os.listdir(base)):
        try:
            with open(os.path.join(base, p, 'name')) as f:
                if f.read().strip() == 'sgvm.agent':
                    return '/dev/' + p
        except OSError:
            pass
    raise SystemExit('agent: no virtio port named sgvm.agent')


def main():
    fd = os.open(port_path(), os.O_RDWR)
    wlock = threading.Lock()

    def send(line):
        data = (line + '\n').encode()
        with wlock:
            while data:
                n = os.write(fd, data)
                data = data[n:]

    def run(ident, timeout, cmd):
        try:
            p = subprocess.Popen(['sh', '-c', cmd], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        except OSError as e:
            send('DONE %s 125 %s' % (ident, base64.b64encode(str(e).encode()).decode()))
            return
        try:
            out, _ = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, 9)
            except OSError:
                pass
            out, _ = p.communicate()
            out += b'\n[agent: killed after %ds]\n' % timeout
            rc = 124
        send('DONE %s %d %s' % (ident, rc, base64.b64encode(out).decode()))

    with open('/proc/uptime') as f:
        send('HELLO %s' % f.read().split()[0])
    buf = b''
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            # The host side is not connected: poll again.
            import time
            time.sleep(0.2)
            continue
        buf += chunk
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            parts = line.decode('ascii', 'replace').split(' ', 3)
            if len(parts) != 4 or parts[0] != 'RUN':
                continue
            try:
                cmd = base64.b64decode(parts[3]).decode('utf-8', 'replace')
                timeout = int(parts[2])
            except ValueError:
                send('DONE %s 125 %s' % (parts[1], base64.b64encode(b'bad request').decode()))
                continue
            threading.Thread(target=run, args=(parts[1], timeout, cmd), daemon=True).start()


if __name__ == '__main__':
    sys.exit(main())
