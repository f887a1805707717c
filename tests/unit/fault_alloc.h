/*
 * fault_alloc.h - a fault-injecting allocator for unit tests.
 *
 * A test program linked with fault_alloc_link_args (tests/unit/meson.build)
 * has every malloc, calloc, realloc and strdup of its own objects and of our
 * static libraries routed through here (ld --wrap; libc, libuv and libtirpc
 * internals are not).  A test counts the allocations one call makes, then
 * reruns the call failing the 1st, 2nd, ... Nth of them, checking each time
 * that it returns a clean error and (under ASan) leaks nothing.
 */
#ifndef SGNFS_TEST_FAULT_ALLOC_H
#define SGNFS_TEST_FAULT_ALLOC_H

#include <stddef.h>

/* Forget counts and stop failing. */
void fa_reset(void);
/* From now on, fail the allocation whose index (counted from the last
 * fa_reset, from 0) is @n; -1: fail none. */
void fa_fail_at(long n);
/* Allocations attempted since the last fa_reset. */
long fa_calls(void);
/* Allocations refused since the last fa_reset. */
long fa_failed(void);
/* The largest single request (bytes) since the last fa_reset. */
size_t fa_max_request(void);

#endif
