#!/usr/bin/env python3
"""guest_build - build (or find in the cache) the kernel-client test guest,
so the tests after it only boot it.  Skips (77) where guests cannot run."""
import sys

import harness
import vm_util


def test(h):
    d = vm_util.guest_image(h)
    with open(d + '/kernel-version') as f:
        kver = f.read().strip()
    h.check(kver != '', 'guest kernel %s, image %s' % (kver, d))


harness.main(test, timeout=1700)
