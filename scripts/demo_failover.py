#!/usr/bin/env python3
"""Failover demo: kill the owner of one service group and show, as a
timeline, that only that group recovers while every other group keeps
granting locks.

Run by scripts/demo.sh after the cluster is up.  Arguments: the build dir
and the cluster config written by demo.sh.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

BUILD, CONF, DEMO = sys.argv[1], sys.argv[2], sys.argv[3]
CLIENT = os.path.join(BUILD, "src/client/sgnfs-client")
CTL = os.path.join(BUILD, "src/ctl/sgnfsctl")
GROUPS = {"sg1": "127.0.10.1", "sg2": "127.0.20.1", "sg3": "127.0.30.1", "sg4": "127.0.40.1"}
T0 = time.time()
events = []
lock = threading.Lock()


def ev(what):
    with lock:
        events.append((time.time(), what))


def status():
    out = subprocess.run([CTL, "-c", CONF, "status", "--json"], capture_output=True, text=True)
    return json.loads(out.stdout)


def owners():
    res = {}
    for n in status()["nodes"]:
        if n["up"]:
            for g in n["status"]["groups"]:
                res[g["name"]] = (n["name"], g["state"], g.get("grace_left", 0))
    return res


def datafile(g):
    return f"{DEMO}/storage/{g}/data/locked.dat"


def main():
    for g in GROUPS:
        with open(datafile(g), "w") as f:
            f.write("x" * 4096)
    # Two client hosts per group hold locks, serve callbacks, reclaim on notify.
    holders = []
    for i, (g, vip) in enumerate(GROUPS.items()):
        for k in range(2):
            host = f"127.5{i}.0.{k + 1}"
            p = subprocess.Popen(
                [CLIENT, "--host", host, "--server", vip, "--callbacks", "hold",
                 datafile(g), str(k * 100), "100"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True)
            holders.append((g, host, p))

    def reader(g, host, p):
        for line in p.stdout:
            m = re.search(r"event=(notify|reclaimed|reclaim-done|lost)\b", line)
            if m:
                what = m.group(1)
                detail = ""
                if what == "notify":
                    fm = re.search(r"from=(\S+) mon_name=(\S+) state=(\d+)", line)
                    detail = f" (SM_NOTIFY from {fm.group(1)}, mon_name {fm.group(2)}, state {fm.group(3)})" if fm else ""
                ev(f"{g}: client {host} {what}{detail}")

    for h in holders:
        threading.Thread(target=reader, args=h, daemon=True).start()
    time.sleep(2)

    print("\n== before the failure")
    for g, (node, state, _) in sorted(owners().items()):
        print(f"   {g:4} on node {node}: {state}")

    # A probe host asks every group for a NEW lock every 250 ms.
    stop = threading.Event()
    probe_results = {g: [] for g in GROUPS}

    def probe():
        n = 0
        while not stop.is_set():
            for g, vip in GROUPS.items():
                n += 1
                r = subprocess.run([CLIENT, "--host", "127.59.0.1", "--server", vip, "--svid", "4242",
                                    "--timeout", "2000", "--quiet", "lock", datafile(g),
                                    str(1000 + n), "1"], capture_output=True, text=True)
                res = {0: "granted", 1: "denied", 2: "refused: grace"}.get(r.returncode, "error")
                probe_results[g].append((time.time(), res))
                subprocess.run([CLIENT, "--host", "127.59.0.1", "--server", vip, "--svid", "4242", "--quiet",
                                "--timeout", "2000", "unlock", datafile(g), str(1000 + n), "1"],
                               capture_output=True)
            time.sleep(0.25)

    pt = threading.Thread(target=probe, daemon=True)
    pt.start()
    time.sleep(1.5)

    victim = owners()["sg1"][0]
    pid = int(open(f"{DEMO}/run/{victim}.pid").read())
    ev(f"kill -9 node {victim} (owner of sg1)")
    kill_t = time.time()
    os.kill(pid, signal.SIGKILL)

    # Watch sg1 come back and its grace end.
    online_t = None
    while time.time() - kill_t < 40:
        o = owners()
        if "sg1" in o and online_t is None:
            online_t = time.time()
            ev(f"sg1: online on node {o['sg1'][0]} ({o['sg1'][1]}"
               + (f", {o['sg1'][2]} s grace left)" if o['sg1'][1] == "grace" else ")"))
        if online_t and o.get("sg1", ("", "", 0))[1] == "online":
            ev("sg1: grace over, new locks granted again")
            break
        time.sleep(0.1)
    time.sleep(1)
    stop.set()
    pt.join(timeout=10)

    # Summarise what the probe saw per group during the recovery window.
    for g in GROUPS:
        seen = [r for t, r in probe_results[g] if t >= kill_t]
        granted = sum(1 for r in seen if r == "granted")
        refused = len(seen) - granted
        ev(f"{g}: new-lock probes since the kill: {granted} granted, {refused} refused")
    for _, _, p in holders:
        try:
            p.stdin.write("quit\n")
            p.stdin.flush()
        except BrokenPipeError:
            pass
    for _, _, p in holders:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()

    print("\n== timeline (ms after the kill)")
    for t, what in sorted(events):
        print(f"   {int((t - kill_t) * 1000):+7d}  {what}")
    print("\n== after the failure")
    for g, (node, state, left) in sorted(owners().items()):
        print(f"   {g:4} on node {node}: {state}")
    # Restart the killed node so the demo cluster is whole again, and wait
    # until it answers: the status that follows would otherwise show it
    # down (and exit 2) while it is still starting.
    subprocess.Popen([os.path.join(BUILD, "src/daemon/sgnfsd"), "-c", CONF, "-n", victim, "-f"],
                     stdout=open(f"{DEMO}/log/{victim}.log", "a"), stderr=subprocess.STDOUT,
                     start_new_session=True)
    deadline = time.monotonic() + 30
    while subprocess.run([os.path.join(BUILD, "src/ctl/sgnfsctl"), "-c", CONF, "-n", victim,
                          "ping"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).returncode != 0:
        if time.monotonic() > deadline:
            sys.exit(f"node {victim} did not answer within 30 s of its restart: "
                     f"see {DEMO}/log/{victim}.log")
        time.sleep(0.1)
    print(f"\n(node {victim} restarted; it waits as a standby: groups do not fail back)")


if __name__ == "__main__":
    main()
