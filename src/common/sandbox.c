/*
 * sandbox.c - the seccomp allow-list of sgnfsd (see sandbox.h).
 *
 * The list is by name and resolved by libseccomp for the running
 * architecture; a name this architecture does not have (open on arm64,
 * say) is skipped.  Arguments are not filtered: ioctl, fcntl, socket and
 * prctl are needed with many arguments by the libraries, and a filter on
 * them would break with the next library version.  What the list leaves
 * out is what a compromised server would want and sgnfsd never does:
 * execve, ptrace, mount, module loading, bpf, kexec, process_vm_*,
 * unshare/setns, keyctl, reboot, chroot, pivot_root, swapon, ...
 *
 * Hazards: the SIGSYS handler runs on whatever thread made the call, maybe
 * inside malloc: it only uses write(2) and _exit(2).
 */
#include "sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <seccomp.h>

#define SBX_EXIT_SIGSYS 159

static const char *const sbx_allowed[] = {
	/* memory, threads, signals, time */
	"brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "mlock", "munlock",
	"membarrier", "futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq",
	"set_tid_address", "clone", "clone3", "exit", "exit_group", "gettid", "getpid",
	"getppid", "tgkill", "tkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
	"rt_sigtimedwait", "rt_sigpending", "rt_sigsuspend", "sigaltstack", "restart_syscall",
	"sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler",
	"nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
	"times", "getrusage", "getrlimit", "setrlimit", "prlimit64", "uname", "sysinfo",
	/* setpriority, sched_setscheduler: a backlogged group's pool jobs run
	 * SCHED_IDLE or nicer (rpc_svc.c), a group's open nicer (group.c);
	 * sched_setattr: the pool's threads and a group's open ask for the
	 * short slice (thprio.h).  Without CAP_SYS_NICE none of them can
	 * raise a priority or take a real-time or deadline policy. */
	"getrandom", "getpriority", "setpriority", "sched_setscheduler", "sched_setattr",
	"sched_setaffinity", "arch_prctl", "prctl",
	/* identity: per request (setfsuid, setgroups through every thread),
	 * capabilities per request (libcap-ng) */
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
	"setgroups", "setfsuid", "setfsgid", "capget", "capset",
	/* files */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "open", "openat", "openat2", "close", "close_range", "creat",
	"stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "lseek",
	"fsync", "fdatasync", "sync_file_range", "syncfs", "fallocate", "ftruncate", "truncate",
	"rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir",
	"link", "linkat", "symlink", "symlinkat", "mknod", "mknodat", "readlink", "readlinkat",
	"chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown", "utimensat",
	"utimes", "utime", "futimesat", "access", "faccessat", "faccessat2", "getdents",
	"getdents64", "getcwd", "chdir", "fchdir", "umask", "name_to_handle_at",
	"open_by_handle_at", "flock", "fcntl", "fadvise64", "dup", "dup2", "dup3", "pipe",
	"pipe2", "ioctl", "sendfile", "copy_file_range", "splice", "tee", "memfd_create",
	"getxattr", "fgetxattr", "lgetxattr", "listxattr", "flistxattr", "llistxattr",
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	/* io_uring (liburing: the journal; the client list's load, sfdir.c,
	 * whose opens and reads inside the ring are not system calls) */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	/* sockets and the event loop */
	"socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "sendto",
	"recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "getsockname",
	"getpeername", "setsockopt", "getsockopt", "poll", "ppoll", "select", "pselect6",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "eventfd", "eventfd2", "timerfd_create", "timerfd_settime",
	"timerfd_gettime", "signalfd", "signalfd4",
	NULL
};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SBX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SBX_SANITIZER 1
#endif
#endif

#ifdef SBX_SANITIZER
/* LSan's leak check at exit runs a tracer that stops every thread with
 * ptrace and waits for it; the runtime reads its own maps and may spawn
 * the symbolizer.  Test builds only. */
static const char *const sbx_sanitizer[] = {
	"ptrace", "wait4", "waitid", "process_vm_readv", "kill", "execve", "vfork", "fork",
	"msync", NULL
};
#endif

const char *sbx_mode_name(enum sbx_mode m)
{
	return m == SBX_ON ? "on" : m == SBX_LOG ? "log" : "off";
}

/* Only async-signal-safe calls: the trapped call may have been made
 * inside malloc or with a lock held. */
static void sbx_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[200], num[16];
	int n = si->si_syscall, i = (int)sizeof(num);
	size_t len;

	(void)sig;
	(void)uc;
	num[--i] = '\0';
	if (n < 0)
		n = -n;
	do {
		num[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n && i > 0);
	strcpy(msg, "sgnfsd: seccomp: system call ");
	strcat(msg, num + i);
	strcat(msg, " is not on the allow-list; stopping (a bug: report it with "
		    "`scmp_sys_resolver N`; [cluster] seccomp = log runs meanwhile)\n");
	len = strlen(msg);
	if (write(STDERR_FILENO, msg, len) < 0) {
		/* nothing more can be done */
	}
	_exit(SBX_EXIT_SIGSYS);
}

static int sbx_add(scmp_filter_ctx ctx, const char *const *names)
{
	for (size_t i = 0; names[i]; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);

		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue; /* not on this architecture */
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int sbx_apply(enum sbx_mode mode, int load, char *why, size_t whysz)
{
	scmp_filter_ctx ctx;
	int rc;

	if (mode == SBX_OFF)
		return 0;
	ctx = seccomp_init(mode == SBX_ON ? SCMP_ACT_TRAP : SCMP_ACT_LOG);
	if (!ctx) {
		snprintf(why, whysz, "libseccomp cannot make a filter");
		return -ENOMEM;
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = sbx_add(ctx, sbx_allowed);
#ifdef SBX_SANITIZER
	if (rc == 0)
		rc = sbx_add(ctx, sbx_sanitizer);
#endif
	if (rc < 0) {
		snprintf(why, whysz, "cannot build the seccomp filter: %s", strerror(-rc));
		goto out;
	}
	if (!load)
		goto out;
	if (mode == SBX_ON) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = sbx_sigsys;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGSYS, &sa, NULL) < 0) {
			rc = -errno;
			snprintf(why, whysz, "cannot catch SIGSYS: %s", strerror(errno));
			goto out;
		}
	}
	rc = seccomp_load(ctx);
	if (rc < 0)
		snprintf(why, whysz, "cannot install the seccomp filter: %s", strerror(-rc));
out:
	seccomp_release(ctx);
	return rc;
}
