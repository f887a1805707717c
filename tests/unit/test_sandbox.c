/*
 * test_sandbox.c - the seccomp filter sgnfsd installs (common/sandbox.h),
 * applied for real in a child process:
 *   on:  the child keeps working (memory, files, sockets, threads' calls),
 *        /proc says Seccomp: 2, and a call off the list (unshare) stops
 *        it with status 159 and a line naming the call on stderr;
 *   log: the same call is allowed;
 *   off: no filter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "sandbox.h"

/* Seccomp mode of this process from /proc (0 none, 2 filter), or -1. */
static int seccomp_mode(void)
{
	char line[256];
	int mode = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "Seccomp:", 8) == 0)
			mode = atoi(line + 8);
	fclose(f);
	return mode;
}

static void *t_thread(void *arg)
{
	return arg;
}

/* Child: filter, ordinary work, then the forbidden call.  Exit codes:
 * 10+ a step failed, 0 the forbidden call returned. */
static int child(enum sbx_mode mode)
{
	char why[160], buf[16];
	pthread_t t;
	int fd, sv[2];
	void *p;

	if (sbx_apply(mode, 1, why, sizeof(why)) < 0) {
		fprintf(stderr, "apply: %s\n", why);
		return 10;
	}
	if (seccomp_mode() != (mode == SBX_OFF ? 0 : 2))
		return 11;
	p = malloc(1 << 20);
	if (!p)
		return 12;
	free(p);
	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0)
		return 13;
	close(fd);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || write(sv[0], "x", 1) != 1 ||
	    read(sv[1], buf, 1) != 1)
		return 14;
	if (pthread_create(&t, NULL, t_thread, NULL) != 0 || pthread_join(t, NULL) != 0)
		return 15;
	/* Off the list: what an exploit would want, never sgnfsd. */
	syscall(SYS_unshare, 0);
	return 0;
}

/* Run child(@mode); its wait status and what it wrote to stderr. */
static int run(enum sbx_mode mode, char *err, size_t errlen)
{
	int pfd[2], st = -1;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], STDERR_FILENO);
		_exit(child(mode));
	}
	close(pfd[1]);
	while (got + 1 < errlen && (n = read(pfd[0], err + got, errlen - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void test_on_refuses(void **s)
{
	char err[512], num[32];
	int st = run(SBX_ON, err, sizeof(err));

	(void)s;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 159);
	snprintf(num, sizeof(num), "system call %d ", (int)SYS_unshare);
	assert_non_null(strstr(err, num));
	assert_non_null(strstr(err, "not on the allow-list"));
}

static void test_log_allows(void **s)
{
	char err[512];
	int st = run(SBX_LOG, err, sizeof(err));

	(void)s;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_off(void **s)
{
	char err[512];
	int st = run(SBX_OFF, err, sizeof(err));

	(void)s;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_check_only(void **s)
{
	char why[160];

	(void)s;
	/* -t builds the filter without installing it */
	assert_int_equal(sbx_apply(SBX_ON, 0, why, sizeof(why)), 0);
	assert_int_equal(seccomp_mode(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_only),
		cmocka_unit_test(test_on_refuses),
		cmocka_unit_test(test_log_allows),
		cmocka_unit_test(test_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
