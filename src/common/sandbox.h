/*
 * sandbox.h - the seccomp filter of sgnfsd (docs/security.md, "System
 * calls").
 *
 * After start-up (capabilities dropped, sockets and threads made) sgnfsd
 * restricts itself, every thread at once (TSYNC), to an allow-list of the
 * system calls it and its libraries make: glibc, libuv (loop and thread
 * pool), libtirpc, libmicrohttpd, libsystemd, json-c, nettle, libcap-ng,
 * liburing.  What is not on the list is never executed:
 *   SBX_ON   the process is stopped: a SIGSYS handler writes one line
 *            naming the system call to stderr (the journal under systemd)
 *            and the process exits with status 159 (128 + SIGSYS);
 *   SBX_LOG  the call is allowed and the kernel logs it (audit / kernel
 *            log, "type=1326 ... syscall=N"), to find what a new library
 *            version needs before turning the filter on;
 *   SBX_OFF  no filter.
 * In a sanitizer build (ASan/LSan) the list also has what the sanitizer
 * runtime needs (LSan's leak check at exit stops the threads with
 * ptrace(2)).
 */
#ifndef SGNFS_SANDBOX_H
#define SGNFS_SANDBOX_H

#include <stddef.h>

enum sbx_mode { SBX_OFF = 0, SBX_LOG, SBX_ON };

/* "off", "log", "on". */
const char *sbx_mode_name(enum sbx_mode m);

/*
 * Build the filter for @mode and, if @load, install it on every thread of
 * the process.  @load false only checks that the filter can be built on
 * this machine (sgnfsd -t).  Returns 0 or -errno with the reason in @why.
 */
int sbx_apply(enum sbx_mode mode, int load, char *why, size_t whysz);

#endif
