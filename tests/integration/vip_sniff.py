#!/usr/bin/env python3
"""
vip_sniff.py IFACE - print every ARP packet and every ICMPv6 neighbour
advertisement seen on IFACE, one JSON object per line, until killed.

Run inside a network namespace (ip netns exec NS python3 vip_sniff.py
IFACE) by test_vip.py, which asserts on the packets' content.  Prints
{"ready": true} once the socket is bound, so the test starts nothing
before the listener can see it.

    {"kind": "arp", "eth_src": MAC, "op": 1|2, "sha": MAC, "spa": IP,
     "tha": MAC, "tpa": IP}
    {"kind": "na", "eth_src": MAC, "src": IP6, "dst": IP6, "hlim": N,
     "override": bool, "solicited": bool, "target": IP6, "tlla": MAC|null}

Python 3 standard library only.
"""

import json
import socket
import struct
import sys

ETH_P_ALL = 0x0003


def mac(b):
    return ':'.join('%02x' % x for x in b)


def main():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((sys.argv[1], 0))
    print(json.dumps({'ready': True}), flush=True)
    while True:
        f = s.recv(65535)
        if len(f) < 14:
            continue
        etype = struct.unpack('!H', f[12:14])[0]
        p = f[14:]
        if etype == 0x0806 and len(p) >= 28:
            htype, ptype, hlen, plen, op = struct.unpack('!HHBBH', p[:8])
            if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
                continue
            print(json.dumps({'kind': 'arp', 'eth_src': mac(f[6:12]), 'op': op,
                              'sha': mac(p[8:14]), 'spa': socket.inet_ntoa(p[14:18]),
                              'tha': mac(p[18:24]), 'tpa': socket.inet_ntoa(p[24:28])}),
                  flush=True)
        elif etype == 0x86dd and len(p) >= 40 + 24:
            nxt, hlim = p[6], p[7]
            icmp = p[40:]
            # No extension headers on a neighbour advertisement (RFC 4861).
            if nxt != 58 or icmp[0] != 136:
                continue
            flags = icmp[4]
            tlla = None
            opts = icmp[24:]
            while len(opts) >= 8 and opts[1]:
                if opts[0] == 2 and len(opts) >= 8:
                    tlla = mac(opts[2:8])
                opts = opts[opts[1] * 8:]
            print(json.dumps({'kind': 'na', 'eth_src': mac(f[6:12]),
                              'src': socket.inet_ntop(socket.AF_INET6, p[8:24]),
                              'dst': socket.inet_ntop(socket.AF_INET6, p[24:40]),
                              'hlim': hlim, 'override': bool(flags & 0x20),
                              'solicited': bool(flags & 0x40),
                              'target': socket.inet_ntop(socket.AF_INET6, icmp[8:24]),
                              'tlla': tlla}), flush=True)


if __name__ == '__main__':
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    except OSError:
        pass  # the interface went away with its namespace: the test is over
