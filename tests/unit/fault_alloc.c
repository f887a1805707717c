/*
 * fault_alloc.c - see fault_alloc.h.
 */
#include "fault_alloc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);

/* Atomic: the thread pool allocates too (a group's open); the count is
 * exact even then, only the order may differ from run to run. */
static _Atomic long fa_n;          /* allocations attempted */
static _Atomic long fa_nfailed;
static _Atomic long fa_at = -1;    /* index to fail */
static _Atomic size_t fa_max;

void fa_reset(void)
{
	fa_n = 0;
	fa_nfailed = 0;
	fa_at = -1;
	fa_max = 0;
}

void fa_fail_at(long n)
{
	fa_at = n;
}

long fa_calls(void)
{
	return fa_n;
}

long fa_failed(void)
{
	return fa_nfailed;
}

size_t fa_max_request(void)
{
	return fa_max;
}

/* Count one allocation of @size; false: refuse it. */
static bool fa_admit(size_t size)
{
	if (size > fa_max)
		fa_max = size;
	if (atomic_fetch_add(&fa_n, 1) == fa_at) {
		fa_nfailed++;
		errno = ENOMEM;
		return false;
	}
	return true;
}

void *__wrap_malloc(size_t size)
{
	return fa_admit(size) ? __real_malloc(size) : NULL;
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fa_admit(n * size) ? __real_calloc(n, size) : NULL;
}

void *__wrap_realloc(void *p, size_t size)
{
	return fa_admit(size) ? __real_realloc(p, size) : NULL;
}

char *__wrap_strdup(const char *s)
{
	return fa_admit(strlen(s) + 1) ? __real_strdup(s) : NULL;
}
